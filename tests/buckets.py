"""A real S3-protocol server for the tests: moto's standalone server in a subprocess on 127.0.0.1,
started by the test session itself (nothing to install or run beforehand), and buckets on it."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3
from botocore.config import Config

from loyalty_pipeline.config import Settings

REGION = "us-east-1"
# moto accepts any key while it does not enforce authentication (MotoServer.enforce_auth).
ACCESS_KEY = "loyalty-test-key"
SECRET_KEY = "loyalty-test-secret"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MotoServer:
    def __init__(self, log: Path):
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,  # its own process group: stop() ends it and nothing else
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"moto server did not start: see {log}") from None
                time.sleep(0.2)

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY, service: str = "s3"):
        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def create_user(self, name: str) -> tuple[str, str]:
        """An IAM user allowed every S3 action: its access key id and secret, which moto generates
        (the only keys it accepts once it enforces authentication)."""
        iam = self.client(service="iam")
        iam.create_user(UserName=name)
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName=name, PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def enforce_auth(self, enforce: bool) -> None:
        """From now on, check every request's credentials against moto's IAM (or stop checking)."""
        body = b"0" if enforce else b"inf"
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/reset-auth", data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@dataclass
class Bucket:
    server: MotoServer
    name: str
    prefix: str = "uploads"
    access_key: str = ACCESS_KEY  # what the test's own requests and settings() sign with
    secret_key: str = SECRET_KEY

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}"

    def put(self, key: str, content: str | bytes) -> str:
        """Upload `content` as the upload `key`; its ETag."""
        body = content.encode() if isinstance(content, str) else content
        return self.client().put_object(Bucket=self.name, Key=self.object_key(key), Body=body)["ETag"]

    def delete(self, key: str) -> None:
        self.client().delete_object(Bucket=self.name, Key=self.object_key(key))

    def client(self):
        return self.server.client(self.access_key, self.secret_key)

    def settings(self, settings: Settings, **overrides) -> Settings:
        """`settings` with its uploads in this bucket."""
        values = dict(
            uploads_url=self.url,
            uploads_endpoint_url=self.server.endpoint,
            uploads_region=REGION,
            uploads_access_key_id=self.access_key,
            uploads_secret_access_key=self.secret_key,
        )
        return replace(settings, **{**values, **overrides})


def new_bucket(server: MotoServer, prefix: str = "uploads") -> Bucket:
    name = f"loyalty-{uuid.uuid4().hex[:16]}"
    server.client().create_bucket(Bucket=name)
    return Bucket(server, name, prefix)


SLOW_DOWN = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


@dataclass
class FlakyProxy:
    """An endpoint in front of `server` on 127.0.0.1 that answers the first `failures` requests
    with 503 SlowDown (S3's throttling), then forwards: what a retry has to get through."""

    server: MotoServer
    failures: int
    seen: list[int] = field(default_factory=list)  # the status answered to each request

    def __post_init__(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if len(proxy.seen) < proxy.failures:
                    proxy.seen.append(503)
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(SLOW_DOWN)))
                    self.end_headers()
                    self.wfile.write(SLOW_DOWN)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.server.port, timeout=30)
                upstream.request(self.command, self.path, body=body, headers=dict(self.headers))
                answer = upstream.getresponse()
                payload = answer.read()
                proxy.seen.append(answer.status)
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
