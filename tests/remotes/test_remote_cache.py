"""The local copies of a remote's write-once files (lineage.remotes.cache): a second push or
pull to an object store fetches none of them again, a copy is never used for a file the
remote no longer holds as it was (replaced, removed by a remote gc) nor when it is damaged,
and a remote that gives no ETag (a directory) gets no copies."""

from __future__ import annotations

from pathlib import Path

import pytest
from remotes_support import RemoteUnderTest, S3Server

import lineage
from lineage.remotes import connection as connection_module
from lineage.remotes.cache import FOLDER, RemoteCache, cacheable
from lineage.remotes.config import Remote
from lineage.remotes.connection import Connection, connect


def _history(store: lineage.Store, versions: int) -> None:
    for number in range(versions):
        with store.run("train", params={"C": number}) as run:
            run.log_metric("auc", 0.5 + number / 100)
            run.log_artifact({"weights": [number]}, name="model", version=f"v{number}")
    store.promote("model@v0", "production", reason="first")


def _pushed_twice(path: Path, url: str, versions: int) -> lineage.Store:
    """A store with ``versions`` trainings, pushed twice to ``url`` (the second push reads
    what the first wrote, so it keeps a copy of each)."""
    store = lineage.open(path)
    _history(store, versions)
    store.push(url)
    store.push(url)
    return store


def _fetched(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every path the connections fetch from now on (the cache answers the others)."""
    paths: list[str] = []
    fetch = Connection._fetch

    def recording(self: Connection, wanted: list[str]) -> dict[str, bytes]:
        paths.extend(wanted)
        return fetch(self, wanted)

    monkeypatch.setattr(Connection, "_fetch", recording)
    return paths


@pytest.fixture
def s3_remote(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> RemoteUnderTest:
    """A fresh prefix on moto's S3 server: an object store, whose ETags tie a copy to its
    file (a directory gives none, so nothing is kept for it)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    bucket = s3_server.bucket()
    return RemoteUnderTest("s3", f"s3://{bucket}/team", s3_server.filesystem(),
                           f"{bucket}/team")


def test_a_second_push_or_pull_fetches_no_file_it_has_read(
        s3_remote: RemoteUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = lineage.open(tmp_path / "alice")
    _history(alice, 3)
    alice.push(s3_remote.url)
    alice.add({"C": 9}, name="model", version="v9")
    alice.push(s3_remote.url)  # reads what the first push wrote: now kept
    alice.push(s3_remote.url)  # reads what the second wrote (a push keeps what it reads)
    bob = lineage.open(tmp_path / "bob")
    bob.pull(s3_remote.url)
    fetched = _fetched(monkeypatch)
    again = alice.push(s3_remote.url)
    assert (again.objects, again.refs) == (0, 0)
    second = bob.pull(s3_remote.url)
    assert (second.objects, second.refs) == (0, 0)
    assert [p for p in fetched if cacheable(p)] == []
    assert bob.resolve("model@v9") == alice.resolve("model@v9")
    assert bob.verify().ok


def test_a_replaced_file_is_fetched_again(s3_remote: RemoteUnderTest, tmp_path: Path) -> None:
    """A remote emptied and pushed to again holds other bytes at the same paths."""
    connection = connect(Remote(None, s3_remote.url))
    connection.cache = RemoteCache(tmp_path / "store", s3_remote.url)
    connection.put("refs/tags/baseline/00000000", b"first")
    assert connection.find("refs") == ["refs/tags/baseline/00000000"]
    assert connection.cat(["refs/tags/baseline/00000000"]) == {
        "refs/tags/baseline/00000000": b"first"}
    for replacement in (b"other", b"longer one"):  # the same size, then another size
        connection.put("refs/tags/baseline/00000000", replacement)
        connection.find("refs")
        assert connection.cat(["refs/tags/baseline/00000000"])[
            "refs/tags/baseline/00000000"] == replacement


def test_a_damaged_copy_is_fetched_again_and_replaced(
        s3_remote: RemoteUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = _pushed_twice(tmp_path / "alice", s3_remote.url, 2)
    copies = sorted((tmp_path / "alice" / FOLDER).rglob("packs%2F*.meta"))
    assert copies
    damaged = copies[0].read_bytes()
    copies[0].write_bytes(damaged[:-1] + bytes([damaged[-1] ^ 1]))
    fetched = _fetched(monkeypatch)
    assert alice.push(s3_remote.url).objects == 0
    assert [p for p in fetched if cacheable(p)] == [
        "packs/" + copies[0].name.split("%2F", 1)[1]]
    assert copies[0].read_bytes() == damaged


def test_copies_of_files_a_remote_gc_removed_are_dropped(
        s3_remote: RemoteUnderTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lineage.remotes import gc as remote_gc

    alice = lineage.open(tmp_path / "alice")
    _history(alice, 3)
    for number in range(3):  # three pushes, three packs
        alice.add({"extra": number})
        alice.push(s3_remote.url)
    alice.gc()
    remote_gc.collect(connect(Remote(None, s3_remote.url)), dry_run=False, grace=0)
    alice.push(s3_remote.url)  # lists the remote again: copies of removed files go
    folder = next((tmp_path / "alice" / FOLDER).iterdir())
    kept = {p.name for p in folder.iterdir()}
    listed = {p.replace("/", "%2F") for p in s3_remote.files() if cacheable(p)}
    assert kept <= listed
    bob = lineage.open(tmp_path / "bob")
    bob.pull(s3_remote.url)
    assert bob.verify().ok


def test_an_in_memory_store_keeps_no_copies(remote: RemoteUnderTest, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Connection] = []
    original = connection_module.connect

    def recording(*args: object, **kwargs: object) -> Connection:
        made = original(*args, **kwargs)  # type: ignore[arg-type]
        built.append(made)
        return made

    monkeypatch.setattr("lineage.remotes.operations.connect", recording)
    store = lineage.open(":memory:")
    store.add({"C": 1}, name="config")
    store.push(remote.url)
    assert built and all(c.cache is None for c in built)


def test_a_remote_without_etags_gets_no_copies(remote: RemoteUnderTest,
                                               tmp_path: Path) -> None:
    """A directory's files have only times, which can repeat on a coarse clock (a file
    replaced within one tick would look unchanged)."""
    from lineage.remotes.connection import _identity

    assert _identity({"size": 3, "mtime": 1.5}) is None
    assert _identity({"size": 3, "ETag": '"a"'}) != _identity({"size": 3, "ETag": '"b"'})
    _pushed_twice(tmp_path / "alice", remote.url, 1)
    kept = list((tmp_path / "alice" / FOLDER).rglob("*"))
    assert (remote.kind == "s3") == any(p.is_file() for p in kept)
