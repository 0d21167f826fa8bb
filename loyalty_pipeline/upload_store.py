"""Where uploaded files live: `<root>/<program_slug>/<file>` in a folder (FolderStore here), or
`<prefix>/<program_slug>/<file>` in an object store bucket (loyalty_pipeline.bucket_store). Both
are an `UploadStore`; `open_store` picks one from LOYALTY_UPLOADS_URL or LOYALTY_UPLOADS_DIR.

The upload sensor asks the store for the files that may have changed since its last look; the
ingestion reads them through it. A look costs what changed, not every file ever uploaded: a
program folder's mtime moves whenever a file in it is created, renamed or deleted, so only folders
that moved (and those the sensor asks to revisit) are listed. A file rewritten in place leaves its
folder's mtime alone, so every tick also lists one slice of the folders: each folder is listed at
least every SWEEP_TICKS ticks."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import zlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from loyalty_pipeline.names import UPLOAD_SUFFIXES, InvalidName, check_slug, upload_key, upload_path

# Every folder is listed at least once in this many ticks (a file rewritten in place is seen then).
SWEEP_TICKS = 40
# A look at every folder (the first tick, or after the cursor was reset) is spread over ticks of this
# many folders: at 1,000,000 files one pass in one tick took 52 s, close to the daemon's 60 s limit on
# a sensor evaluation, and a tick over it would start the pass again forever.
FULL_PASS_FOLDERS = 1000
# A folder changed this shortly before the last look may have changed again within the same
# timestamp granularity: list it once more.
_MTIME_SLACK_NS = 2_000_000_000


@dataclass(frozen=True)
class StoredFile:
    key: str  # <program_slug>/<file name>
    size: int
    change_marker: str  # differs whenever the content may differ (size and mtime here)
    modified: float  # epoch seconds of the last write: a file still being written is recent


@dataclass
class Scan:
    files: list[StoredFile]
    problems: list[str]  # names and links refused, with the reason
    state: dict  # the store's part of the sensor cursor: small, whatever the number of files
    full: bool  # every folder was listed


class UploadFileMissing(FileNotFoundError):
    """One upload is gone (deleted or renamed since it was listed): that file fails, not the run."""


class UploadStoreError(Exception):
    """The store itself cannot be used (credentials refused, bucket missing, endpoint unreachable
    after the retries): one line that says which, for the sensor tick or the run to fail with."""


class UploadStore(Protocol):
    """What the sensor and the ingestion need from the place uploads live. Keys are always
    `<program_slug>/<file>`, checked by loyalty_pipeline.names before anything is read."""

    # Whether a file still being written can be listed: a folder shows a file while it is copied in
    # (the sensor waits for it to settle); a bucket lists an object only once its upload completed.
    lists_partial_files: bool

    def describe(self) -> str:
        """Where the store is, without credentials: for logs and run metadata."""

    def stat(self, key: str) -> StoredFile:
        """The upload as it is now; UploadFileMissing if it is gone."""

    def sha256(self, key: str) -> str:
        """The content's sha256, streamed; UploadFileMissing if it is gone."""

    def local_copy(self, key: str) -> AbstractContextManager[Path]:
        """A local file with the upload's content for the readers (which need a path), named as the
        upload; removed afterwards if it was a copy."""

    def put(self, local_file: Path, key: str) -> None:
        """Store a local file as `key`, atomically: the sensor never sees half of it."""

    def scan(self, state: dict | None, revisit: set[str] = frozenset()) -> Scan:
        """The files to compare with `uploads` this tick, and the state for the next one."""


def hash_blocks(handle: BinaryIO, block_size: int = 1 << 20) -> str:
    """sha256 of a stream read block by block: never the whole file in memory."""
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(block_size), b""):
        digest.update(block)
    return digest.hexdigest()


def open_store(
    location: str | Path,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> UploadStore:
    """A FolderStore for a local folder (a path or file://), a BucketStore for an fsspec URL
    (s3://bucket/prefix; gs:// and az:// with the gcs and azure extras). The options are the S3
    connection's; without credentials the AWS default chain applies (environment, IAM role)."""
    text = str(location)
    protocol, sep, rest = text.partition("://")
    if not sep or protocol in ("file", "local"):
        return FolderStore(rest if sep else text)
    from loyalty_pipeline.bucket_store import BucketStore

    return BucketStore(
        text,
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )


def configured_store(settings) -> UploadStore:
    """The store of a Settings or LoyaltySettings: LOYALTY_UPLOADS_URL when set, else the folder
    LOYALTY_UPLOADS_DIR (both have the same field names)."""
    return open_store(
        settings.uploads_url or settings.uploads_dir,
        endpoint_url=settings.uploads_endpoint_url,
        region=settings.uploads_region,
        access_key_id=settings.uploads_access_key_id,
        secret_access_key=settings.uploads_secret_access_key,
    )


class FolderStore:
    lists_partial_files = True

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def path(self, key: str) -> Path:
        return upload_path(self.root, key)

    def stat(self, key: str) -> StoredFile:
        """The file as it is now; UploadFileMissing if it is gone."""
        path = self.path(key)
        try:
            info = os.stat(path, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise UploadFileMissing(f"{key}: file not found at {path}") from exc
        if not os.path.isfile(path) or os.path.islink(path):
            raise UploadFileMissing(f"{key}: not a regular file at {path}")
        return _stored(key, info)

    def sha256(self, key: str) -> str:
        try:
            with self.path(key).open("rb") as handle:
                return hash_blocks(handle)
        except FileNotFoundError as exc:
            raise UploadFileMissing(f"{key}: file not found in {self.describe()}") from exc

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self.path(key)  # already local: the file itself

    def put(self, local_file: Path, key: str) -> None:
        """Copy a local file in as `key`, atomically: the sensor never sees half of it."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")  # not an upload suffix: never picked up
        shutil.copyfile(local_file, partial)
        os.replace(partial, target)

    def scan(self, state: dict | None, revisit: set[str] = frozenset()) -> Scan:
        """Files of the folders that changed since the scan that returned `state`, of the folders in
        `revisit`, and of this tick's sweep slice. Without a `since` (a first look) every folder is
        listed, FULL_PASS_FOLDERS per tick in name order; the pass then counts as of its start."""
        state = state or {}
        since = state.get("since")
        tick = int(state.get("tick", 0))
        files: list[StoredFile] = []
        problems: list[str] = []
        if not self.root.is_dir():
            return Scan(files, problems, {"since": None, "tick": tick}, full=True)
        started_ns = time.time_ns() if since is not None or not state.get("pass_from") else state["pass_started"]
        pass_from = state.get("pass_from") or ""
        passed: list[str] = []  # the folders this tick of a pass lists
        more = False  # a pass has folders left for the next tick
        with os.scandir(self.root) as entries:
            folders = sorted(entries, key=lambda e: e.name)
        for folder in folders:
            if folder.name.startswith("."):
                continue
            if folder.is_symlink():
                problems.append(f"{folder.name}: links outside the uploads directory")
                continue
            if not folder.is_dir(follow_symlinks=False):
                continue
            try:
                check_slug(folder.name)
            except InvalidName as exc:
                problems.append(str(exc))
                continue
            if since is None:
                listed = folder.name > pass_from and len(passed) < FULL_PASS_FOLDERS
                more = more or (folder.name > pass_from and not listed)
                if listed:
                    passed.append(folder.name)
            else:
                changed = folder.stat(follow_symlinks=False).st_mtime_ns >= since - _MTIME_SLACK_NS
                swept = zlib.crc32(folder.name.encode()) % SWEEP_TICKS == tick % SWEEP_TICKS
                listed = changed or swept
            if listed or folder.name in revisit:
                self._list_folder(folder, files, problems)
        if more:  # the pass goes on after its last folder; folders changed meanwhile are listed once it ends
            state = {"since": None, "tick": tick, "pass_from": passed[-1], "pass_started": started_ns}
            return Scan(files, problems, state, full=False)
        return Scan(files, problems, {"since": started_ns, "tick": tick + 1}, full=since is None)

    def _list_folder(self, folder: os.DirEntry, files: list[StoredFile], problems: list[str]) -> None:
        with os.scandir(folder.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if Path(entry.name).suffix.lower() not in UPLOAD_SUFFIXES:
                    continue
                try:
                    key = upload_key(folder.name, entry.name)
                except InvalidName as exc:
                    problems.append(str(exc))
                    continue
                # A symlink could make the pipeline read (or hang on) any file the process can open.
                if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                    problems.append(f"{key}: links outside the uploads directory or is not a regular file")
                    continue
                files.append(_stored(key, entry.stat(follow_symlinks=False)))


def _stored(key: str, info: os.stat_result) -> StoredFile:
    return StoredFile(key, info.st_size, f"{info.st_size}:{info.st_mtime_ns}", info.st_mtime)
