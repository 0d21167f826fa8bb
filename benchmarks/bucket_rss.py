"""Peak RSS of reading a 1,000,000-row upload from a folder and from a bucket (moto's S3 server on
127.0.0.1): the bucket's object is streamed to a temporary file, so the two should be within 10 %.

    .venv/bin/python benchmarks/bucket_rss.py [--rows 1000000]

Each read runs in a fresh interpreter, which reports its own VmHWM (reset by exec)."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

KEY = "joes-pizza/big.csv"
CHILD = """
import sys
import loyalty_pipeline  # the allocator option polars reads, as in a run
from loyalty_pipeline.csv_reader import read_upload
from loyalty_pipeline.upload_store import open_store
key, location, endpoint = sys.argv[1], sys.argv[2], sys.argv[3:]
options = dict(endpoint_url=endpoint[0], region="us-east-1", access_key_id="k", secret_access_key="s") if endpoint else {}
with open_store(location, **options).local_copy(key) as local:
    read_upload(local, file_label=key)
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")).split()[1])
"""


def peak_kb(*args: str) -> int:
    out = subprocess.run([sys.executable, "-c", CHILD, KEY, *args], check=True, capture_output=True, text=True)
    return int(out.stdout.split()[-1])


def main() -> None:
    from tests.buckets import MotoServer, new_bucket

    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "uploads"
        source = folder / KEY
        source.parent.mkdir(parents=True)
        subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "generate_csv.py"), str(source), "--rows", str(args.rows)],
            check=True,
            capture_output=True,
        )
        server = MotoServer(Path(work) / "moto.log")
        try:
            bucket = new_bucket(server)
            server.client().upload_file(str(source), bucket.name, bucket.object_key(KEY))
            size = source.stat().st_size
            folder_kb = peak_kb(str(folder))
            bucket_kb = peak_kb(bucket.url, server.endpoint)
        finally:
            server.stop()
    print(f"{args.rows} rows, {size} bytes")
    print(
        f"folder peak RSS {folder_kb / 1024:.0f} MB, bucket {bucket_kb / 1024:.0f} MB ({bucket_kb / folder_kb - 1:+.1%})"
    )


if __name__ == "__main__":
    main()
