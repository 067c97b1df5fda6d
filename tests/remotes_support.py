"""Fixtures for remote tests: a real S3-compatible server (moto's) on 127.0.0.1, started
and stopped by the suite, and a remote URL of either kind (a local directory or S3).

Import the fixtures into a test module: ``from remotes_support import remote, s3_server``.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Server:
    endpoint: str

    def filesystem(self) -> Any:
        import s3fs

        return s3fs.S3FileSystem(endpoint_url=self.endpoint, key="testing", secret="testing",
                                 skip_instance_cache=True)

    def bucket(self) -> str:
        name = f"t-{uuid.uuid4().hex[:20]}"
        self.filesystem().mkdir(name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3 server on a free loopback port, for the whole session."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    saved = {key: os.environ.get(key) for key in _CREDENTIALS}
    os.environ.update(_CREDENTIALS)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@dataclass
class RemoteUnderTest:
    """A remote's URL, how it is reached, and raw access to its files for tampering."""

    kind: str
    url: str
    fs: Any
    root: str

    def files(self, under: str = "") -> list[str]:
        base = f"{self.root}/{under}".rstrip("/")
        try:
            found = self.fs.find(base)
        except FileNotFoundError:
            return []
        return sorted(p[len(self.root.rstrip("/")) + 1:] if p.startswith(self.root.rstrip("/"))
                      else p.split(self.root.strip("/") + "/", 1)[-1] for p in found)

    def read(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(f"{self.root}/{path}"))

    def write(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.root}/{path}", data)


@pytest.fixture(params=["dir", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path,
           monkeypatch: pytest.MonkeyPatch) -> RemoteUnderTest:
    """A fresh, empty remote: a local directory, or a prefix in a new bucket on moto's S3
    server reached through ``AWS_ENDPOINT_URL`` (as a user's environment would)."""
    if request.param == "dir":
        import fsspec

        root = str(tmp_path / "remote")
        return RemoteUnderTest("dir", root, fsspec.filesystem("file"), root)
    server: S3Server = request.getfixturevalue("s3_server")
    monkeypatch.setenv("AWS_ENDPOINT_URL", server.endpoint)
    bucket = server.bucket()
    return RemoteUnderTest("s3", f"s3://{bucket}/team", server.filesystem(), f"{bucket}/team")


@pytest.fixture(scope="session")
def s3_server_with_auth() -> Iterator[str]:
    """A second moto server, in its own process, that checks credentials: any key it did
    not issue is refused (403), as a real S3 refuses bad credentials. Its one unchecked
    request makes the bucket ``team-bucket``."""
    port = free_port()
    environment = {**os.environ, **_CREDENTIALS, "INITIAL_NO_AUTH_ACTION_COUNT": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        endpoint = f"http://127.0.0.1:{port}"
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="team-bucket")
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)
