"""Dagster's own processes on an instance, driven over the webserver's GraphQL API as the UI does.

One home for what the end-to-end test (tests/e2e/test_webserver_daemon.py), the scale benchmark
(benchmarks/scale.py) and the screenshots script (scripts/screenshots.py) each need: start
`dagster-webserver`, `dagster-daemon` or `dagster dev` in a process group of its own with its
output in a log file, wait until the code location is loaded, send GraphQL documents, launch a
backfill and wait for runs, and stop every process the caller started (SIGTERM, then SIGKILL),
pass or fail. It imports nothing of the pipeline, so a benchmark or a script can use it on an
instance of its own:

    env = environment(dagster_home=home, app_url=url, work=root, dagster_postgres=dagster_url)
    with Deployment(env, log_dir=root) as deployment:
        deployment.wait_until_loaded()
        backfill_id = launch_backfill(deployment.gql, days, ["birthday_log"], "title")
        wait_for_backfill(deployment.gql, backfill_id, 150, watch=deployment)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKSPACE_YAML = REPO / "workspace.yaml"
PRODUCTION_INSTANCE_YAML = REPO / "deploy" / "dagster.yaml"
LOCATION = "loyalty_pipeline.definitions"
REPOSITORY = "__repository__"

TERMINAL_RUN = {"SUCCESS", "FAILURE", "CANCELED"}
TERMINAL_BACKFILL = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}

# Errors of a process that is not ready yet (not listening, or closing the connection): retried.
NOT_READY = (urllib.error.URLError, ConnectionError, TimeoutError)


class DagsterProcessError(Exception):
    """A Dagster process or its API did not do what was asked; the message says what and shows logs."""


class GraphQLError(DagsterProcessError):
    pass


class WaitTimeout(DagsterProcessError):
    pass


class ProcessExited(DagsterProcessError):
    pass


# --- processes -------------------------------------------------------------------------------------


class Process:
    """A command in its own process group with its output in `<log_dir>/<name>.log`; stop() ends
    the whole group (the webserver's code server and the daemon's run workers are children)."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict,
        log_dir: Path,
        *,
        cwd: Path = REPO,
        stop_signals: tuple[tuple[int, float], ...] = ((signal.SIGTERM, 30), (signal.SIGKILL, 10)),
    ):
        self.name, self.stop_signals = name, stop_signals
        self.log = Path(log_dir) / f"{name}.log"
        self._handle = self.log.open("wb")
        self._stopped = False
        self.popen = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- last lines of {self.name} ({self.log}) ---\n" + "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise ProcessExited(f"{self.name} exited with {self.popen.returncode}\n{self.tail()}")

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        pgid = self.popen.pid  # start_new_session: the group id is the leader's pid
        for sig, grace in self.stop_signals:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                continue
            if not _group_alive(pgid):
                break
        if _group_alive(pgid):  # the leader exited but children (code server, run workers) remain
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._handle.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_webserver(env: dict, log_dir: Path, port: int, name: str = "dagster-webserver") -> Process:
    args = [str(BIN / "dagster-webserver"), "-w", str(WORKSPACE_YAML), "-h", "127.0.0.1", "-p", str(port)]
    return Process(name, args, env, log_dir)


def start_daemon(env: dict, log_dir: Path, name: str = "dagster-daemon") -> Process:
    return Process(name, [str(BIN / "dagster-daemon"), "run", "-w", str(WORKSPACE_YAML)], env, log_dir)


def start_dev(env: dict, log_dir: Path, port: int, cwd: Path, name: str = "dagster-dev") -> Process:
    """`dagster dev`: webserver and daemon under one command, which shuts them down on Ctrl-C."""
    args = [str(BIN / "dagster"), "dev", "-w", str(WORKSPACE_YAML), "-h", "127.0.0.1", "-p", str(port)]
    stop_signals = ((signal.SIGINT, 30), (signal.SIGTERM, 10), (signal.SIGKILL, 10))
    return Process(name, args, env, log_dir, cwd=cwd, stop_signals=stop_signals)


def run_command(args: list[str], env: dict, *, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run one of this environment's commands (`args[0]`: `loyalty`, `dagster`, ...) in the repository
    to its end, as an operator does from a shell; a non-zero exit raises with the command's output."""
    result = subprocess.run(
        [str(BIN / args[0]), *args[1:]], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise DagsterProcessError(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result


def production_home(home: Path) -> Path:
    """A Dagster home with the production instance config (deploy/dagster.yaml: Postgres storage
    from the DAGSTER_PG_* variables, queued runs)."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PRODUCTION_INSTANCE_YAML, home / "dagster.yaml")
    return home


def environment(
    *,
    dagster_home: Path,
    app_url: str,
    work: Path,
    dagster_postgres=None,
    frozen_now: datetime | None = None,
    timezone: str | None = "UTC",
) -> dict[str, str]:
    """The processes' environment: this one's without any LOYALTY_ or DAGSTER_ variable (nothing
    leaks in from the caller's shell), the instance in `dagster_home` (on the database of the
    SQLAlchemy URL `dagster_postgres` for deploy/dagster.yaml), the application database, uploads
    and the notification log under `work`, and optionally a pinned clock."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOYALTY_", "DAGSTER_"))}
    env.update(
        {
            "DAGSTER_HOME": str(dagster_home),
            "LOYALTY_DATABASE_URL": app_url,
            "LOYALTY_UPLOADS_DIR": str(work / "uploads"),
            "LOYALTY_NOTIFICATION_LOG": str(work / "notifications.jsonl"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if dagster_postgres is not None:
        from sqlalchemy.engine import make_url

        url = make_url(dagster_postgres)
        env.update(
            {
                "DAGSTER_PG_HOST": url.host or "127.0.0.1",
                "DAGSTER_PG_PORT": str(url.port or 5432),
                "DAGSTER_PG_USERNAME": url.username or "postgres",
                "DAGSTER_PG_PASSWORD": url.password or "",
                "DAGSTER_PG_DB": url.database,
            }
        )
    if timezone is not None:
        env["LOYALTY_TIMEZONE"] = timezone
    if frozen_now is not None:
        env["LOYALTY_FROZEN_NOW"] = frozen_now.isoformat()
    return env


# --- waiting ---------------------------------------------------------------------------------------


def wait_for(what: str, probe: Callable, timeout: float, *, interval: float = 1.0, watch: Iterable[Process] = ()):
    """Call `probe` until it returns something truthy that is not a string (a string is "not yet,
    because ..."); a process that is not ready (connection refused or reset) is retried. Every
    process in `watch` must stay alive meanwhile; on timeout the error shows the last value and
    their logs."""
    watch = list(watch)
    deadline = time.monotonic() + timeout
    last = None
    while True:
        for process in watch:
            process.check_alive()
        try:
            last = probe()
        except NOT_READY as exc:
            last = f"{type(exc).__name__}: {exc}"
        else:
            if last and not isinstance(last, str):
                return last
        if time.monotonic() > deadline:
            logs = "\n".join(process.tail() for process in watch)
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {last!r}\n{logs}")
        time.sleep(interval)


# --- GraphQL ---------------------------------------------------------------------------------------


class GraphQL:
    """The webserver's GraphQL endpoint: `gql(document, variables)` is the `data` of the answer."""

    def __init__(self, base_url: str, timeout: float = 60):
        self.url, self.timeout = f"{base_url}/graphql", timeout

    def __call__(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = json.load(response)
        except urllib.error.HTTPError as exc:  # Dagster answers a PythonError with HTTP 500 and a JSON body
            raise GraphQLError(f"GraphQL HTTP {exc.code}: {exc.read().decode()[:3000]}") from None
        if payload.get("errors"):
            raise GraphQLError(f"GraphQL errors: {payload['errors']}")
        return payload["data"]


# The documents more than one caller sends (the UI's, trimmed to what the callers read).
WORKSPACE = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message } } } } } }"""
RUNS = """query($f: RunsFilter) { runsOrError(filter: $f) { __typename
  ... on Runs { results { runId jobName status startTime endTime tags { key value } } }
  ... on PythonError { message } } }"""
LAUNCH_BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) { __typename
  ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on UnauthorizedError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename
  ... on PartitionBackfill { status numPartitions error { message } } ... on PythonError { message } } }"""


def selector(**name) -> dict:
    """A schedule or sensor of the code location: selector(sensorName="upload_sensor")."""
    return {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, **name}


def wait_until_loaded(gql: GraphQL, timeout: float = 180, *, query: str = WORKSPACE, watch=()) -> list[dict]:
    """The workspace's location entries once every one is loaded; an error if one failed to load.
    `query` may select more of each entry, with at least `name loadStatus locationOrLoadError
    { __typename }`."""

    def loaded():
        data = gql(query)["workspaceOrError"]
        if data["__typename"] != "Workspace":
            raise DagsterProcessError(f"workspace error: {data}")
        entries = data["locationEntries"]
        return entries if entries and all(e["loadStatus"] == "LOADED" for e in entries) else str(entries)

    entries = wait_for("the webserver to load the code location", loaded, timeout, watch=watch)
    for entry in entries:
        location = entry["locationOrLoadError"]
        if location is None or location["__typename"] != "RepositoryLocation":
            raise DagsterProcessError(f"code location {entry['name']} failed to load: {location}")
    return entries


def find_runs(gql: GraphQL, *, tags: dict | None = None, run_ids: list[str] | None = None) -> list[dict]:
    """The runs with all of `tags` (or those ids), each with its tags as a dict."""
    run_filter: dict = {}
    if tags:
        run_filter["tags"] = [{"key": k, "value": v} for k, v in tags.items()]
    if run_ids is not None:
        run_filter["runIds"] = run_ids
    data = gql(RUNS, {"f": run_filter})["runsOrError"]
    if data["__typename"] != "Runs":
        raise GraphQLError(f"runs: {data}")
    return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in data["results"]]


def wait_for_runs(
    gql: GraphQL,
    what: str,
    timeout: float,
    *,
    tags: dict | None = None,
    run_ids: list[str] | None = None,
    finished: bool = True,
    until: Callable[[list[dict]], bool] = bool,
    interval: float = 2.0,
    watch=(),
) -> list[dict]:
    """The runs of `find_runs(gql, tags=, run_ids=)` once `until(runs)` holds (default: there are some)
    and, with `finished`, every one has ended (succeeded, failed or cancelled)."""

    def ready():
        found = find_runs(gql, tags=tags, run_ids=run_ids)
        done = until(found) and (not finished or all(r["status"] in TERMINAL_RUN for r in found))
        return found if done else f"{[(r['tags'].get('dagster/partition'), r['status']) for r in found]}"

    return wait_for(what, ready, timeout, interval=interval, watch=watch)


def launch_backfill(
    gql: GraphQL, partition_names: list[str], assets: list[str], title: str, run_config: dict | None = None
) -> str:
    """A backfill as the UI launches it (the asset page's Materialize, the partitions, and the
    launchpad's config if any); its id."""
    params = {"partitionNames": partition_names, "assetSelection": [{"path": [a]} for a in assets], "title": title}
    if run_config:
        params["runConfigData"] = json.dumps(run_config)
    data = gql(LAUNCH_BACKFILL, {"p": params})["launchPartitionBackfill"]
    if data["__typename"] != "LaunchBackfillSuccess":
        raise GraphQLError(f"backfill not launched: {data}")
    return data["backfillId"]


def wait_for_backfill(gql: GraphQL, backfill_id: str, timeout: float, *, watch=()) -> dict:
    """The backfill (status, numPartitions, error) once it has ended, however it ended."""

    def ended():
        backfill = gql(BACKFILL, {"id": backfill_id})["partitionBackfillOrError"]
        return backfill if backfill.get("status") in TERMINAL_BACKFILL else f"status {backfill.get('status')}"

    return wait_for(f"backfill {backfill_id} to finish", ended, timeout, interval=2, watch=watch)


# --- the two production processes together ---------------------------------------------------------


class Deployment:
    """`dagster-webserver` and `dagster-daemon` on one instance (the production processes), on a
    free port unless given (the environment may have to name the UI's URL); a `with` block stops both at its end, pass or fail."""

    def __init__(self, env: dict, log_dir: Path, *, port: int | None = None, graphql_timeout: float = 60):
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.gql = GraphQL(self.base_url, timeout=graphql_timeout)
        self.processes: list[Process] = []
        try:
            self.webserver = start_webserver(env, log_dir, self.port)
            self.processes.append(self.webserver)
            self.daemon = start_daemon(env, log_dir)
            self.processes.append(self.daemon)
        except BaseException:
            self.stop()
            raise

    def wait_until_loaded(self, timeout: float = 180, *, query: str = WORKSPACE) -> list[dict]:
        return wait_until_loaded(self.gql, timeout, query=query, watch=self.processes)

    def __iter__(self):  # `watch=deployment`: both processes
        return iter(self.processes)

    def logs(self) -> str:
        return "\n".join(process.tail() for process in self.processes)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
