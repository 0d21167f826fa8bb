"""Where uploaded files live: `<root>/<program_slug>/<file>` in a folder.

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
from dataclasses import dataclass
from pathlib import Path

from loyalty_pipeline.names import UPLOAD_SUFFIXES, InvalidName, check_slug, upload_key, upload_path

# Every folder is listed at least once in this many ticks (a file rewritten in place is seen then).
SWEEP_TICKS = 20
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
    pass


class FolderStore:
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
        digest = hashlib.sha256()
        try:
            with self.path(key).open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        except FileNotFoundError as exc:
            raise UploadFileMissing(f"{key}: file not found in {self.describe()}") from exc
        return digest.hexdigest()

    def put(self, local_file: Path, key: str) -> None:
        """Copy a local file in as `key`, atomically: the sensor never sees half of it."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.part")  # not an upload suffix: never picked up
        shutil.copyfile(local_file, partial)
        os.replace(partial, target)

    def scan(self, state: dict | None, revisit: set[str] = frozenset()) -> Scan:
        """Files of the folders that changed since the scan that returned `state` (all of them
        without one), of the folders in `revisit`, and of this tick's sweep slice."""
        state = state or {}
        since = state.get("since")
        tick = int(state.get("tick", 0))
        started_ns = time.time_ns()
        files: list[StoredFile] = []
        problems: list[str] = []
        if not self.root.is_dir():
            return Scan(files, problems, {"since": None, "tick": tick}, full=True)
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
            changed = since is None or folder.stat(follow_symlinks=False).st_mtime_ns >= since - _MTIME_SLACK_NS
            swept = zlib.crc32(folder.name.encode()) % SWEEP_TICKS == tick % SWEEP_TICKS
            if changed or swept or folder.name in revisit:
                self._list_folder(folder, files, problems)
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
