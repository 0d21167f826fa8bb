#!/usr/bin/env python
"""Screenshots of the Dagster UI for the README: the asset graph and a birthday partition's metadata.

    .venv/bin/python scripts/screenshots.py            # writes docs/asset-graph.png, docs/birthday-partition.png
    .venv/bin/python scripts/screenshots.py --out DIR  # somewhere else (the test suite does this)

In a temporary working directory it runs `loyalty demo` on the embedded default (SQLite), starts
`dagster dev` on it, and drives headless Chromium (Debian's `chromium` package:
`apt-get install -y chromium`) to take the pictures. It exits non-zero, with the reason, if the
code location does not load, the demo fails, or a page shows an error or lacks what it should show
(each page's DOM is dumped and checked before its screenshot is kept)."""

from __future__ import annotations

import argparse
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.dagster_processes import (  # noqa: E402
    BIN,
    DagsterProcessError,
    GraphQL,
    environment,
    free_port,
    start_dev,
    wait_until_loaded,
)

WINDOW = (1600, 1000)
PARTITION_WINDOW = (1600, 1300)
VIRTUAL_TIME_BUDGET_MS = 20000
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
# Visible text that means the page is broken rather than showing what was asked for.
ERROR_MARKERS = [
    "unexpected graphql error",
    "python error",
    "pythonerror",
    "traceback (most recent call last)",
    "something went wrong",
    "an unexpected error",
    "error loading",
    "failed to load",
    "could not be loaded",
    "page not found",
    "no assets were found",
    "not found in",
    "dagsterinvariantviolationerror",
]
# The embedded instance with the first-visit newsletter dialog off (it would cover the screenshot).
INSTANCE_YAML = """\
# Written by scripts/screenshots.py: the embedded SQLite instance of `loyalty demo`.
telemetry:
  enabled: false
nux:
  enabled: false
"""


class ScreenshotError(Exception):
    pass


WORKSPACE = """{ workspaceOrError { __typename ... on PythonError { message }
  ... on Workspace { locationEntries { name loadStatus locationOrLoadError { __typename
    ... on PythonError { message } ... on RepositoryLocation { repositories { assetNodes { assetKey { path } } } } } } } } }"""
MATERIALIZATIONS = """{ assetNodeOrError(assetKey: {path: ["birthday_log"]}) { __typename
  ... on AssetNode { assetMaterializations(limit: 20) { partition metadataEntries { label } } } } }"""


def location_assets(gql: GraphQL, server) -> list[str]:
    """Asset names of the loaded code location; fails on a load error or a server that died."""
    entries = wait_until_loaded(gql, 180, query=WORKSPACE, watch=[server])
    return sorted(
        "/".join(node["assetKey"]["path"])
        for entry in entries
        for repo in entry["locationOrLoadError"]["repositories"]
        for node in repo["assetNodes"]
    )


def birthday_partition(gql: GraphQL) -> str:
    """The demo's rewarded birthday partition (today's, every program), as recorded by Dagster."""
    node = gql(MATERIALIZATIONS)["assetNodeOrError"]
    if node["__typename"] != "AssetNode":
        raise ScreenshotError(f"birthday_log is not in the asset graph: {node}")
    for event in node["assetMaterializations"]:
        labels = {entry["label"] for entry in event["metadataEntries"]}
        if event["partition"] and "per_program" in labels:
            return event["partition"]
    raise ScreenshotError(f"no materialized birthday partition with metadata: {node['assetMaterializations']}")


def visible_text(dom: str) -> str:
    dom = re.sub(r"(?is)<(script|style|noscript)[^>]*>.*?</\1>", " ", dom)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom))).strip()


def check_page(name: str, text: str, must_show: list[str]) -> None:
    lowered = text.lower()
    found = [marker for marker in ERROR_MARKERS if marker in lowered]
    if found:
        raise ScreenshotError(f"{name}: the page shows an error ({', '.join(found)}): {text[:1500]}")
    missing = [item for item in must_show if item not in text]
    if missing:
        raise ScreenshotError(f"{name}: the page does not show {missing} (still loading or broken?): {text[:1500]}")


def chromium(
    binary: str, profile: Path, url: str, window: tuple[int, int], *action: str
) -> subprocess.CompletedProcess:
    args = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        *action,
        url,
    ]
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise ScreenshotError(f"chromium failed ({result.returncode}) on {url}: {result.stderr[-2000:]}")
    return result


def capture(
    binary: str, work: Path, name: str, url: str, window: tuple[int, int], must_show: list[str], out: Path
) -> Path:
    """Check the page's rendered DOM, then take its screenshot."""
    profile = work / f"chromium-{name}"  # a fresh profile: no state from earlier visits
    dom = chromium(binary, profile, url, window, "--dump-dom").stdout
    check_page(name, visible_text(dom), must_show)
    target = out / f"{name}.png"
    target.unlink(missing_ok=True)
    chromium(binary, profile, url, window, f"--screenshot={target}")
    if not target.is_file() or target.read_bytes()[:8] != b"\x89PNG\r\n\x1a\n":
        raise ScreenshotError(f"{name}: chromium wrote no PNG to {target}")
    return target


_STARTED = time.monotonic()


def _progress(step: str) -> None:
    print(f"[{time.monotonic() - _STARTED:5.1f}s] {step}", file=sys.stderr, flush=True)


def run(out: Path, chromium_binary: str, keep: bool) -> list[Path]:
    work = Path(tempfile.mkdtemp(prefix="loyalty-screenshots-"))
    home = work / ".loyalty"
    env = environment(
        dagster_home=home / "dagster_home", app_url=f"sqlite:///{home / 'loyalty.db'}", work=home, timezone=None
    )
    (home / "dagster_home").mkdir(parents=True)
    (home / "dagster_home" / "dagster.yaml").write_text(INSTANCE_YAML)
    server = None
    try:
        demo = subprocess.run(
            [str(BIN / "loyalty"), "demo"],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
        )
        if demo.returncode != 0:
            raise ScreenshotError(
                f"loyalty demo failed ({demo.returncode}):\n{demo.stdout[-3000:]}\n{demo.stderr[-3000:]}"
            )
        _progress("loyalty demo done")
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        server = start_dev(env, work, port, cwd=work)
        gql = GraphQL(base_url)
        assets = location_assets(gql, server)
        _progress("dagster dev is serving the code location")
        partition = birthday_partition(gql)
        out.mkdir(parents=True, exist_ok=True)
        groups = ",".join(f"global@global:{group}" for group in ("ingestion", "birthdays"))
        graph_url = f"{base_url}/asset-groups?" + urllib.parse.urlencode({"expanded": groups})
        partition_url = f"{base_url}/assets/birthday_log?" + urllib.parse.urlencode(
            {"view": "partitions", "partition": partition}
        )
        shots = [
            capture(
                chromium_binary,
                work,
                "asset-graph",
                graph_url,
                WINDOW,
                ["ingestion", "birthdays", "raw_upload", "validated_users", "passes", "birthday_log"],
                out,
            ),
            capture(
                chromium_binary,
                work,
                "birthday-partition",
                partition_url,
                PARTITION_WINDOW,
                [
                    partition,
                    "Materialized",
                    "rewarded_now",
                    "points_total",
                    "per_program",
                    "sample_messages",
                    "Happy birthday Ada",
                ],
                out,
            ),
        ]
        expected = {"raw_upload", "validated_users", "users", "passes", "birthday_log", "birthday_notifications"}
        if not expected <= set(assets):
            raise ScreenshotError(f"the code location lists {assets}, expected at least {sorted(expected)}")
        _progress("screenshots taken")
        return shots
    finally:
        if server is not None:
            server.stop()
            _progress("dagster dev stopped")
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="folder for the PNGs (default: docs/)")
    parser.add_argument(
        "--chromium", default=os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary working directory")
    args = parser.parse_args(argv)
    if not Path(args.chromium).is_file():
        print(
            f"screenshots: chromium not found at {args.chromium} (Debian: apt-get install -y chromium)", file=sys.stderr
        )
        return 3
    started = time.monotonic()
    try:
        shots = run(args.out.resolve(), args.chromium, args.keep)
    except (ScreenshotError, DagsterProcessError, subprocess.TimeoutExpired) as exc:
        print(f"screenshots: FAILED - {exc}", file=sys.stderr)
        return 1
    for shot in shots:
        print(f"wrote {shot}")
    print(f"screenshots took {time.monotonic() - started:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
