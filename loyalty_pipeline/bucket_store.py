"""Uploads in an object store bucket: `<prefix>/<program_slug>/<file>` under a URL such as
`s3://bucket/prefix` (AWS S3, Supabase Storage, MinIO: any S3-compatible endpoint), read through
fsspec (s3fs; gcsfs and adlfs for gs:// and az:// with the `gcs` and `azure` extras).

A bucket has no folder mtimes to say what changed, and listing a prefix of 1,000,000 objects every
tick is not acceptable, so a scan lists at most PAGES_PER_TICK pages of PAGE_KEYS keys, starting
after the last key the previous scan listed (the one key kept in the sensor's cursor) and wrapping
around at the end: every object is listed once per pass, a pass of N objects taking
N / (PAGES_PER_TICK * PAGE_KEYS) ticks. Program folders the sensor asks to revisit are listed in
full besides. What follows from the listing is the folder's: the `uploads` table decides what is
new from the change marker `<size>:<etag>`.

An object is listed only once its upload has completed (a multipart upload in progress is not an
object yet), so nothing listed is half-written. Transient errors (5xx, throttling, timeouts,
dropped connections) are retried by botocore's standard retry mode; what retrying cannot fix
(credentials refused, no such bucket) is an UploadStoreError of one line, a vanished object an
UploadFileMissing."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath

from loyalty_pipeline.errors import first_line
from loyalty_pipeline.names import UPLOAD_SUFFIXES, InvalidName, check_slug, split_upload_key, upload_key
from loyalty_pipeline.upload_store import Scan, StoredFile, UploadFileMissing, UploadStoreError, hash_blocks

# S3 returns at most 1000 keys a page. 50 pages (~1-5 s against S3) a tick: a bucket of up to
# 50,000 objects is listed whole every tick; 1,000,000 objects take 20 ticks a pass (5 minutes at
# the sensor's 15-second interval).
PAGE_KEYS = 1000
PAGES_PER_TICK = 50
# botocore's standard mode retries 5xx answers, throttling (SlowDown, 503) and timeouts with
# exponential backoff and jitter, RETRY_ATTEMPTS attempts a call in all; each attempt waits at most
# the timeouts below for the server. s3fs loops S3FS_RETRIES times around that on throttling and
# resumes a download cut off mid-body (which botocore does not), so a call that is throttled for
# good is tried RETRY_ATTEMPTS * S3FS_RETRIES times (~30 s) before its one-line error.
RETRY_ATTEMPTS = 4
S3FS_RETRIES = 2
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
# Reading an object for its hash: large enough for few requests, small enough to never matter.
READ_BLOCK_BYTES = 8 * 1024 * 1024


class BucketStore:
    lists_partial_files = False  # S3 lists an object only once its PUT or multipart upload completed

    def __init__(
        self,
        url: str,
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ):
        import fsspec

        self.url = url.rstrip("/")
        self.protocol, _, path = self.url.partition("://")
        self.bucket, _, prefix = path.partition("/")
        if not self.bucket:
            raise UploadStoreError(f"{url}: no bucket in the uploads URL (expected {self.protocol}://bucket/prefix)")
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.s3 = self.protocol in ("s3", "s3a")
        options: dict = {}
        if self.s3:
            options = {
                "endpoint_url": endpoint_url,
                "client_kwargs": {"region_name": region} if region else {},
                "config_kwargs": {
                    "retries": {"total_max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
                    "connect_timeout": CONNECT_TIMEOUT_SECONDS,
                    "read_timeout": READ_TIMEOUT_SECONDS,
                    # Supabase Storage and MinIO answer on one host for every bucket (path style);
                    # AWS's own endpoint takes the default (virtual-hosted) style.
                    **({"s3": {"addressing_style": "path"}} if endpoint_url else {}),
                },
                # Listings change under us: every stat is asked of the server, never of a cache.
                "use_listings_cache": False,
            }
            if access_key_id and secret_access_key:
                options |= {"key": access_key_id, "secret": secret_access_key}
        self.fs = fsspec.filesystem(self.protocol, **options)
        if self.s3:
            self.fs.retries = S3FS_RETRIES  # s3fs's own default (5) would multiply botocore's attempts

    def describe(self) -> str:
        return self.url + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def _object(self, key: str) -> str:
        """The object path of a checked upload key (bucket/prefix/program/file)."""
        slug, file_name = split_upload_key(key)
        return f"{self.bucket}/{self.prefix}{slug}/{file_name}"

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """s3fs's errors as ours: one line each, without the botocore chain behind it."""
        try:
            yield
        except (UploadFileMissing, UploadStoreError, InvalidName):
            raise
        except FileNotFoundError:
            if key is not None and self._bucket_exists():
                raise UploadFileMissing(f"{key}: object not found in {self.describe()}") from None
            raise UploadStoreError(f"{self.describe()}: bucket {self.bucket!r} does not exist") from None
        except PermissionError as exc:
            raise UploadStoreError(
                f"{self.describe()}: access denied ({first_line(exc)}): check the access key and secret "
                "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket's policy"
            ) from None
        except Exception as exc:
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise UploadStoreError(
                    f"{self.describe()}: no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
                ) from None
            raise UploadStoreError(f"{self.describe()}: {_reason(exc)} (after the retries)") from None

    def _bucket_exists(self) -> bool:
        try:
            if self.s3:
                self.fs.call_s3("list_objects_v2", Bucket=self.bucket, MaxKeys=1)
            else:
                self.fs.ls(self.bucket, detail=False, refresh=True)
        except FileNotFoundError:
            return False
        except Exception:
            return True  # another error says nothing about the object: keep the object's answer
        return True

    def stat(self, key: str) -> StoredFile:
        path = self._object(key)  # refuses an unsafe key before anything is asked of the server
        with self._errors(key):
            info = self.fs.info(path)
        if info.get("type") != "file":
            raise UploadFileMissing(f"{key}: object not found in {self.describe()}")
        return self._stored(key, info)

    def sha256(self, key: str) -> str:
        path = self._object(key)
        with self._errors(key), self.fs.open(path, "rb", block_size=READ_BLOCK_BYTES, cache_type="none") as handle:
            return hash_blocks(handle, READ_BLOCK_BYTES)

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """The object streamed to a temporary file (64 KB at a time, one connection: s3fs's
        concurrent download would hold its parts in memory), removed when the reader is done."""
        path = self._object(key)
        folder = Path(tempfile.mkdtemp(prefix="loyalty-upload-"))
        try:
            local = folder / PurePosixPath(path).name  # the upload's name: the readers go by its suffix
            with self._errors(key):
                if self.s3:
                    self.fs.get_file(path, str(local), max_concurrency=1)
                else:
                    self.fs.get_file(path, str(local))
            yield local
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def put(self, local_file: Path, key: str) -> None:
        # An S3 PUT (or multipart upload, for a large file) becomes visible only once complete.
        path = self._object(key)
        with self._errors():
            self.fs.put_file(str(local_file), path)

    def scan(self, state: dict | None, revisit: set[str] = frozenset()) -> Scan:
        """This tick's pages of the listing, continuing after the last key the previous scan saw,
        and the folders in `revisit` whole."""
        state = state or {}
        after = state.get("after")
        objects, last = self._list("", after, PAGES_PER_TICK)
        seen = {name for name, _ in objects}
        for slug in sorted(revisit):
            try:
                check_slug(slug)
            except InvalidName:
                continue
            more, _ = self._list(f"{slug}/", None, None)
            objects += [entry for entry in more if entry[0] not in seen]
        files: list[StoredFile] = []
        problems: list[str] = []
        for name, info in sorted(objects, key=lambda entry: entry[0]):
            self._classify(name, info, files, problems)
        full = after is None and last is None
        return Scan(files, problems, {"after": last}, full)

    def _list(self, under: str, after: str | None, max_pages: int | None) -> tuple[list[tuple[str, dict]], str | None]:
        """(name under the prefix, info) of the objects under `under` after the key `after`, at
        most `max_pages` pages; and the last name listed when the listing stopped before its end."""
        if not self.s3:
            return self._list_whole(under, after)
        objects: list[tuple[str, dict]] = []
        request = {"Bucket": self.bucket, "Prefix": self.prefix + under, "MaxKeys": PAGE_KEYS}
        pages = 0
        with self._errors():
            while True:
                if after:
                    request["StartAfter"] = self.prefix + after
                page = self.fs.call_s3("list_objects_v2", **request)
                pages += 1
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.prefix) :]
                    objects.append((name, {"size": item["Size"], "etag": item.get("ETag"), "at": item["LastModified"]}))
                    after = name
                if not page.get("IsTruncated") or not page.get("Contents"):
                    return objects, None
                if max_pages is not None and pages >= max_pages:
                    return objects, after

    def _list_whole(self, under: str, after: str | None) -> tuple[list[tuple[str, dict]], None]:
        """Other fsspec protocols: the whole prefix, each scan (no start-after paging here)."""
        root = f"{self.bucket}/{self.prefix}{under}".rstrip("/")
        with self._errors():
            found = self.fs.find(root, detail=True)
        start = len(f"{self.bucket}/{self.prefix}")
        objects = [
            (path[start:], {"size": info.get("size", 0), "etag": _etag(info), "at": info.get("updated") or 0})
            for path, info in found.items()
            if info.get("type") == "file"
        ]
        return objects, None

    def _classify(self, name: str, info: dict, files: list[StoredFile], problems: list[str]) -> None:
        """A listed object as an upload, a refusal with the reason, or nothing (not an upload:
        Supabase's `.emptyFolderPlaceholder`, folder markers, other kinds of files)."""
        if PurePosixPath(name).suffix.lower() not in UPLOAD_SUFFIXES or name.endswith("/"):
            return
        parts = name.split("/")
        if len(parts) != 2:
            where = "outside any program folder" if len(parts) == 1 else "in a subfolder of a program folder"
            problems.append(f"{name!r}: {where} (uploads are <program_slug>/<file>)")
            return
        try:
            key = upload_key(*parts)
        except InvalidName as exc:
            problems.append(f"{name!r}: {exc}")
            return
        files.append(_stored_from(key, info["size"], info["etag"], info["at"]))

    def _stored(self, key: str, info: dict) -> StoredFile:
        return _stored_from(key, int(info.get("size") or 0), _etag(info), info.get("LastModified") or 0)


def _etag(info: dict) -> str | None:
    # s3fs: ETag; gcsfs: md5Hash or generation; adlfs: etag. Any of them changes with the content.
    for field in ("ETag", "etag", "md5Hash", "generation", "VersionId", "mtime"):
        if info.get(field):
            return str(info[field])
    return None


def _stored_from(key: str, size: int, etag: str | None, at) -> StoredFile:
    modified = at.timestamp() if isinstance(at, datetime) else float(at or 0)
    return StoredFile(key, int(size), f"{size}:{(etag or '').strip(chr(34))}", modified)


def _reason(exc: BaseException) -> str:
    """S3's error code and message (s3fs keeps the botocore error as the cause), else the type's."""
    response = getattr(exc.__cause__, "response", None) or {}
    code = response.get("Error", {}).get("Code")
    message = first_line(exc)
    if isinstance(exc, OSError) and exc.strerror:
        message = str(exc.strerror).strip().splitlines()[0]
    return f"{code or type(exc).__name__}: {message}"
