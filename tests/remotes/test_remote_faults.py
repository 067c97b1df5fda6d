"""Remotes under bad input and faults; their configuration; remote gc; the command line.

Faults are real: a bucket that does not exist on moto's server, a second moto server that
checks credentials, a port nothing listens on, and a filesystem (registered with fsspec
like any other) whose network connection drops for a number of calls.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import fsspec
import pytest
from fsspec.implementations.local import LocalFileSystem
from remotes_support import RemoteUnderTest, S3Server, free_port

import lineage
from lineage.cli import main
from lineage.errors import InvalidName, InvalidRemote, RemoteError, RemoteNotFound
from lineage.remotes import packing
from lineage.remotes.config import Remote
from lineage.remotes.connection import RETRIES, connect
from lineage.remotes.gc import collect
from lineage.store import Store


def snapshot(store: Store) -> tuple[int, int, list[str]]:
    return len(store.events()), len(store.artifacts()), store.names()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = lineage.open(tmp_path / "store")
    opened.add({"C": 0.5}, name="config")
    opened.add(os.urandom(300_000), name="blob")
    return opened


# -- bad input and unreachable remotes ---------------------------------------------------------


def test_an_unknown_scheme_is_one_clear_error(store: Store) -> None:
    before = snapshot(store)
    with pytest.raises(InvalidRemote, match="unknown scheme 'nosuch'"):
        store.push("nosuch://bucket/x")
    assert snapshot(store) == before


def test_a_missing_bucket_is_one_clear_error(store: Store, s3_server: S3Server,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    before = snapshot(store)
    with pytest.raises(RemoteError, match="bucket does not exist"):
        store.push("s3://no-such-bucket-here/team")
    with pytest.raises(RemoteError):
        store.pull("s3://no-such-bucket-here/team")
    assert snapshot(store) == before


def test_bad_credentials_are_one_clear_error(store: Store, s3_server_with_auth: str,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server_with_auth)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    before = snapshot(store)
    with pytest.raises(RemoteError, match="access denied"):
        store.push("s3://team-bucket/x")
    assert snapshot(store) == before


def test_an_unreachable_endpoint_is_one_clear_error(store: Store,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    before = snapshot(store)
    with pytest.raises(RemoteError, match="unreachable"):
        store.pull("s3://bucket/x")
    assert snapshot(store) == before


class FlakyFileSystem(LocalFileSystem):
    """A local directory reached over a network that drops the next ``failures`` calls."""

    protocol = "flaky"
    failures: ClassVar[int] = 0
    dropped: ClassVar[int] = 0

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(auto_mkdir=True, **kwargs)

    @classmethod
    def _strip_protocol(cls, path: Any) -> Any:
        text = str(path)
        return super()._strip_protocol(text[len("flaky://"):] if text.startswith("flaky://")
                                       else text)

    @classmethod
    def _drop(cls) -> None:
        if cls.failures > 0:
            cls.failures -= 1
            cls.dropped += 1
            raise ConnectionResetError("connection reset by peer")

    def cat_file(self, *args: Any, **kwargs: Any) -> Any:
        self._drop()
        return super().cat_file(*args, **kwargs)

    def cat_ranges(self, *args: Any, **kwargs: Any) -> Any:
        self._drop()
        return super().cat_ranges(*args, **kwargs)

    def pipe_file(self, *args: Any, **kwargs: Any) -> Any:
        self._drop()
        return super().pipe_file(*args, **kwargs)

    def _open(self, *args: Any, **kwargs: Any) -> Any:
        self._drop()
        return super()._open(*args, **kwargs)


@pytest.fixture
def flaky(tmp_path: Path) -> str:
    fsspec.register_implementation("flaky", FlakyFileSystem, clobber=True)
    FlakyFileSystem.failures = FlakyFileSystem.dropped = 0
    return f"flaky://{tmp_path / 'flaky-remote'}"


def test_network_errors_mid_transfer_are_retried(store: Store, flaky: str,
                                                 tmp_path: Path) -> None:
    connection = connect(Remote(None, flaky))
    connection.sleep = lambda _seconds: None
    FlakyFileSystem.failures = RETRIES - 1
    from lineage.remotes.transfer import pull, push

    report = push(store._backend, connection, Remote(None, flaky))
    assert report.records == 2 and FlakyFileSystem.dropped == RETRIES - 1
    other = lineage.open(tmp_path / "other")
    FlakyFileSystem.failures = RETRIES - 1
    pull(other._backend, connection, Remote(None, flaky))
    assert other.read_bytes("blob") == store.read_bytes("blob")


def test_a_network_error_outlasting_the_retries_is_reported_and_changes_nothing(
        store: Store, flaky: str, tmp_path: Path) -> None:
    from lineage.remotes.transfer import pull, push

    connection = connect(Remote(None, flaky))
    connection.sleep = lambda _seconds: None
    push(store._backend, connection, Remote(None, flaky))
    other = lineage.open(tmp_path / "other")
    before = snapshot(other)
    FlakyFileSystem.failures = 1000
    with pytest.raises(RemoteError, match=f"after {RETRIES} attempt"):
        pull(other._backend, connection, Remote(None, flaky))
    assert snapshot(other) == before
    FlakyFileSystem.failures = 0
    pull(other._backend, connection, Remote(None, flaky))
    assert other.read_bytes("blob") == store.read_bytes("blob")


# -- configuration -----------------------------------------------------------------------------


def test_remotes_are_configured_without_secrets(store: Store, tmp_path: Path) -> None:
    added = store.remote_add("origin", "s3://bucket/team", endpoint_url="http://127.0.0.1:9",
                             client_kwargs={"region_name": "eu-west-1"})
    assert added == Remote("origin", "s3://bucket/team",
                           {"endpoint_url": "http://127.0.0.1:9",
                            "client_kwargs": {"region_name": "eu-west-1"}})
    for secret in ({"secret": "x"}, {"key": "AKIA"}, {"token": "t"},
                   {"client_kwargs": {"aws_secret_access_key": "x"}}, {"password": "p"}):
        with pytest.raises(InvalidRemote, match="credential"):
            store.remote_add("other", "s3://b/x", **secret)
    with pytest.raises(InvalidRemote, match="password"):
        store.remote_add("other", "https://user:pw@example.org/x")
    with pytest.raises(InvalidName):
        store.remote_add("origin", str(tmp_path / "elsewhere"))
    with pytest.raises(InvalidName):
        store.remote_add("bad/name", str(tmp_path))
    assert store.remotes() == [added]
    reopened = lineage.open(store.path)
    assert reopened.remotes() == [added]
    raw = b"".join((Path(store.path) / "data.mdb").read_bytes().split(b"\0"))
    assert b"AKIA" not in raw
    assert [e.details["name"] for e in store.events() if e.action == "remote"] == ["origin"]
    store.remote_remove("origin")
    assert store.remotes() == []
    with pytest.raises(RemoteNotFound):
        store.remote_remove("origin")


def test_the_default_remote_is_the_only_one_or_origin(store: Store, tmp_path: Path) -> None:
    with pytest.raises(RemoteNotFound, match="no remote is configured"):
        store.push()
    store.remote_add("backup", str(tmp_path / "backup"))
    assert store.push().records == 2
    store.remote_add("team", str(tmp_path / "team"))
    with pytest.raises(RemoteNotFound, match="--remote"):
        store.push()
    store.remote_add("origin", str(tmp_path / "origin"))
    assert store.push().remote == "origin"
    with pytest.raises(RemoteNotFound, match="no remote named 'nope'"):
        store.pull("nope")


# -- remote gc ---------------------------------------------------------------------------------


class Interrupt(BaseException):
    pass


def test_remote_gc_is_a_dry_run_unless_asked_and_keeps_what_is_named(
        remote: RemoteUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packing, "PACK_BYTES", 256 * 1024)
    alice = lineage.open(tmp_path / "alice")
    alice.add(os.urandom(2 * 1024 * 1024), name="data")
    calls = 0

    def stop(_count: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 12:
            raise Interrupt

    with pytest.raises(Interrupt):
        alice.push(remote.url, progress=stop)
    connection = connect(Remote(None, remote.url))
    files = remote.files()
    assert collect(connection).young > 0  # within the grace period: nothing to do
    later = time.time() + 3600
    dry = collect(connection, grace=60, now=later)
    assert dry.dry_run and dry.packs > 0 and dry.leases == 1
    assert remote.files() == files
    done = collect(connection, dry_run=False, grace=60, now=later)
    assert done.packs == dry.packs and done.objects == dry.objects
    assert not any(f.startswith("leases/") for f in remote.files())

    alice.push(remote.url)
    assert collect(connection, dry_run=False, grace=0).objects == 0  # all live now
    bob = lineage.open(tmp_path / "bob")
    bob.pull(remote.url)
    assert bob.read_bytes("data") == alice.read_bytes("data")
    assert bob.verify().ok


def test_remote_gc_keeps_what_a_live_lease_names(remote: RemoteUnderTest, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.core import encoding
    from lineage.remotes.layout import load_state

    monkeypatch.setattr(packing, "PACK_BYTES", 256 * 1024)
    alice = lineage.open(tmp_path / "alice")
    alice.add(os.urandom(1024 * 1024), name="data")
    with pytest.raises(Interrupt):
        alice.push(remote.url, progress=lambda _n: (_ for _ in ()).throw(Interrupt()) if
                   len(remote.files("packs")) >= 4 else None)
    connection = connect(Remote(None, remote.url))
    held = sorted(load_state(connection).chunk_home)
    later = time.time() + 3600
    remote.write(f"leases/someone-{int((later - 1) * 1e9)}-1",
                 encoding.encode(["lineage/lease", 1, held]))
    assert collect(connection, dry_run=False, grace=60, now=later).objects == 0
    assert sorted(load_state(connection).chunk_home) == held


# -- the command line --------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_remote_push_pull(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    alice, bob, url = str(tmp_path / "alice"), str(tmp_path / "bob"), str(tmp_path / "r")
    for where in (alice, bob):
        assert run_cli(capsys, "--store", where, "init")[0] == 0
    data = tmp_path / "d.txt"
    data.write_text("hello\n")
    assert run_cli(capsys, "--store", alice, "add", str(data), "--name", "d")[0] == 0
    assert run_cli(capsys, "--store", alice, "remote", "add", "origin", url)[0] == 0
    code, out, _ = run_cli(capsys, "--store", alice, "remote", "list", "--json")
    assert code == 0 and json.loads(out)["remotes"] == [
        {"name": "origin", "url": url, "options": {}}]
    code, out, _ = run_cli(capsys, "--store", alice, "push", "--json")
    pushed = json.loads(out)
    assert code == 0 and pushed["direction"] == "push" and pushed["records"] == 1
    code, out, _ = run_cli(capsys, "--store", alice, "push")
    assert code == 0 and "up to date" in out
    code, out, _ = run_cli(capsys, "--store", bob, "pull", "--remote", url, "d", "--json")
    assert code == 0 and json.loads(out)["records"] == 1
    code, out, _ = run_cli(capsys, "--store", bob, "show", "d", "--json")
    assert json.loads(out)["name"] == "d"
    code, out, _ = run_cli(capsys, "--store", alice, "remote", "gc", "--json")
    assert code == 0 and json.loads(out)["dry_run"] is True
    assert run_cli(capsys, "--store", alice, "remote", "remove", "origin")[0] == 0


@pytest.mark.parametrize("args, message", [
    (("push", "--remote", "nosuch://x"), "unknown scheme"),
    (("pull", "--remote", "nope"), "no remote named 'nope'"),
    (("remote", "add", "s3", "s3://b/x", "--option", "secret=abc"), "credential"),
    (("remote", "remove", "nope"), "no remote named"),
])
def test_cli_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 args: tuple[str, ...], message: str) -> None:
    where = str(tmp_path / "s")
    run_cli(capsys, "--store", where, "init")
    code, out, err = run_cli(capsys, "--store", where, *args)
    assert code == 1 and out == ""
    assert err.startswith("lineage: error:") and message in err and err.count("\n") == 1


def test_cli_remote_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    where = str(tmp_path / "s")
    run_cli(capsys, "--store", where, "init")
    code, _out, err = run_cli(capsys, "--store", where, "remote", "add", "only-a-name")
    assert code == 2 and "remote add NAME URL" in err
    code, _out, err = run_cli(capsys, "--store", where, "remote", "frobnicate")
    assert code == 2 and "unknown action" in err


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_any_fsspec_url_is_a_remote(store: Store, tmp_path: Path, scheme: str) -> None:
    url = (f"memory://lineage-test-{time.time_ns()}" if scheme == "memory"
           else f"file://{tmp_path / 'remote'}")
    assert store.push(url).records == 2
    other = lineage.open(tmp_path / "other")
    other.pull(url)
    assert other.read_bytes("blob") == store.read_bytes("blob")
    assert other.load("config") == {"C": 0.5}
