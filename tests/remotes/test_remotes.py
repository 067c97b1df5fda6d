"""Push and pull through a real remote: a local directory and moto's S3 server (parametrized).

Each test builds real LMDB stores in a temporary directory, moves content through the
remote, and checks what a person would: the pulled store answers the same queries, diffs
and loads, verifies clean, and nothing damaged or conflicting ever becomes visible.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from remotes_support import RemoteUnderTest

import lineage
from lineage.errors import IntegrityError, RefConflict
from lineage.store import Store


def make_store(path: Path) -> Store:
    return lineage.open(path)


def build_history(store: Store, tmp: Path) -> dict[str, Any]:
    """A small team history: a dataset file, two trainings, a stage, a tag, metric series."""
    data = tmp / "train.csv"
    data.write_text("age,malignant\n" + "".join(f"{i % 90},{i % 2}\n" for i in range(400)))
    dataset = store.add(data, name="dataset", version="v1", kind="dataset", target="malignant",
                        meta={"origin": "site A", "biases": "one site"})
    for version, c in (("v1", 1.0), ("v2", 0.3)):
        with store.run("train", params={"C": c}) as run:
            run.log_input("dataset@v1")
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1 + c), step=step)
            run.log_artifact(np.full(1000, c), name="model", version=version)
    store.promote("model@v2", "production", reason="reviewed")
    store.tag("model@v1", "baseline")
    return {"dataset": dataset.digest}


def record_count(store: Store) -> int:
    return len(store.artifacts()) + len(store.runs())


# -- push, pull, query across ------------------------------------------------------------------


def test_pull_into_an_empty_store_answers_the_same_queries(
        remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    pushed = alice.push(remote.url)
    assert pushed.records == record_count(alice)
    assert pushed.bytes > 0 and pushed.refs >= 4

    bob = make_store(tmp_path / "bob")
    pulled = bob.pull(remote.url)
    assert pulled.records == pushed.records and pulled.chunks == pushed.chunks
    assert bob.resolve("model@production") == alice.resolve("model@v2")
    assert bob.resolve("baseline") == alice.resolve("model@v1")
    assert [r.digest for r in bob.runs(op="train")] == [r.digest for r in alice.runs(op="train")]
    assert bob.runs(params={"C": 0.3})[0].outputs == alice.runs(params={"C": 0.3})[0].outputs
    train = bob.runs(params={"C": 1.0})[0]
    assert bob.metric_history(train, "loss") == alice.metric_history(train, "loss")
    assert bob.read_bytes("dataset@v1") == alice.read_bytes("dataset@v1")
    np.testing.assert_array_equal(bob.load("model@v2"), np.full(1000, 0.3))
    assert bob.diff("model@v1", "model@v2").to_dict() == \
        alice.diff("model@v1", "model@v2").to_dict()
    assert [a.digest for a in bob.ancestors("model@v2")] == \
        [a.digest for a in alice.ancestors("model@v2")]
    assert [e.to_dict() for e in bob.log("model")][:3] == \
        [e.to_dict() for e in alice.log("model")][:3]
    report = bob.verify()
    assert report.ok, report.problems
    last = bob.events()[-1]
    assert last.action == "pull" and len(last.details["records"]) == pulled.records


def test_second_push_and_pull_move_nothing(remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    alice.push(remote.url)
    files = remote.files()
    again = alice.push(remote.url)
    assert (again.objects, again.bytes, again.refs, again.events) == (0, 0, 0, 0)
    assert again.skipped > 0
    assert remote.files() == files

    bob = make_store(tmp_path / "bob")
    bob.pull(remote.url)
    events = len(bob.events())
    second = bob.pull(remote.url)
    assert (second.objects, second.bytes, second.refs) == (0, 0, 0)
    assert len(bob.events()) == events  # a pull that brings nothing writes nothing


def test_push_after_a_small_edit_sends_only_the_new_chunks(
        remote: RemoteUnderTest, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    content = bytearray(rng.integers(0, 256, 8 * 1024 * 1024, dtype=np.uint8).tobytes())
    big = tmp_path / "big.bin"
    big.write_bytes(content)
    store = make_store(tmp_path / "s")
    store.add(big, name="big")
    first = store.push(remote.url)
    start = len(content) // 2
    content[start:start + len(content) // 50] = rng.integers(
        0, 256, len(content) // 50, dtype=np.uint8).tobytes()  # 2 % rewritten
    big.write_bytes(content)
    store.add(big, name="big")
    second = store.push(remote.url)
    assert first.bytes > len(content)
    assert 0 < second.bytes <= 0.05 * len(content), second

    other = make_store(tmp_path / "o")
    other.pull(remote.url, ["big@v1"])
    fetched = other.pull(remote.url)
    assert fetched.bytes <= 0.05 * len(content)
    assert other.read_bytes("big@v2") == bytes(content)


def test_small_objects_travel_in_packs(remote: RemoteUnderTest, tmp_path: Path) -> None:
    tree = tmp_path / "many"
    for i in range(300):
        (tree / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 10}" / f"f{i}.txt").write_text(f"file {i}\n" * (i % 7 + 1))
    store = make_store(tmp_path / "s")
    store.add(tree, name="many")
    report = store.push(remote.url)
    assert report.blobs == 301
    assert len([f for f in remote.files("packs")]) == 2  # one .pack and its .meta
    other = make_store(tmp_path / "o")
    other.pull(remote.url)
    restored = other.checkout("many", tmp_path / "restored")
    assert (restored / "d3" / "f13.txt").read_text() == (tree / "d3" / "f13.txt").read_text()


def test_pull_of_a_revision_brings_its_lineage_only(remote: RemoteUnderTest,
                                                    tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    alice.add({"unrelated": True}, name="notes")
    alice.push(remote.url)
    bob = make_store(tmp_path / "bob")
    bob.pull(remote.url, ["model@v1"])
    assert bob.resolve("model@v1") == alice.resolve("model@v1")
    assert bob.resolve("dataset@v1") == alice.resolve("dataset@v1")  # its lineage
    assert bob.runs(op="train", params={"C": 1.0})
    assert "notes" not in bob.names()
    assert bob.verify().ok


# -- integrity and interruption --------------------------------------------------------------


def _corrupt_first_pack(remote: RemoteUnderTest) -> None:
    pack = next(f for f in remote.files("packs") if f.endswith(".pack"))
    data = bytearray(remote.read(pack))
    data[len(data) // 2] ^= 0xFF
    remote.write(pack, bytes(data))


def test_a_corrupted_remote_object_is_refused_and_nothing_enters(
        remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    alice.push(remote.url)
    _corrupt_first_pack(remote)
    bob = make_store(tmp_path / "bob")
    bob.add({"mine": 1}, name="mine")
    before = (record_count(bob), len(bob.events()))
    with pytest.raises(IntegrityError) as caught:
        bob.pull(remote.url)
    assert caught.value.expected is not None and caught.value.actual is not None
    assert (record_count(bob), len(bob.events())) == before
    assert bob.names() == ["mine"]
    assert bob.verify().ok


def test_a_corrupted_pack_meta_is_refused(remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    alice.push(remote.url)
    meta = next(f for f in remote.files("packs") if f.endswith(".meta"))
    data = bytearray(remote.read(meta))
    data[-3] ^= 0x01
    remote.write(meta, bytes(data))
    bob = make_store(tmp_path / "bob")
    with pytest.raises(IntegrityError):
        bob.pull(remote.url)
    assert bob.names() == []


class Interrupt(BaseException):
    """Stands for Ctrl-C or a killed process in the middle of a push."""


@pytest.mark.parametrize("stop_after", [1, 2, 3, 5])
def test_an_interrupted_push_leaves_the_remote_consistent_and_the_next_completes(
        remote: RemoteUnderTest, tmp_path: Path, stop_after: int) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    alice.add(big, name="big")
    calls = 0

    def interrupt(_count: int) -> None:
        nonlocal calls
        calls += 1
        if calls >= stop_after:
            raise Interrupt

    with pytest.raises(Interrupt):
        alice.push(remote.url, progress=interrupt)
    early = make_store(tmp_path / "early")
    early.pull(remote.url)  # whatever refs made it name content that is there
    assert early.verify().ok
    assert not early.names()  # content first: no ref was written yet

    done = alice.push(remote.url)
    assert done.refs > 0
    bob = make_store(tmp_path / "bob")
    bob.pull(remote.url)
    assert bob.read_bytes("big") == big.read_bytes()
    assert sorted(bob.names()) == sorted(alice.names())
    assert bob.verify().ok


def test_a_tampered_event_log_on_the_remote_is_refused(remote: RemoteUnderTest,
                                                       tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    build_history(alice, tmp_path)
    alice.push(remote.url)
    segment = remote.files("events")[0]
    data = remote.read(segment)
    remote.write(segment, data.replace(b"reviewed", b"REVIEWED"))
    bob = make_store(tmp_path / "bob")
    with pytest.raises(IntegrityError, match="event log"):
        bob.pull(remote.url)
    assert bob.names() == []


# -- refs: compare-and-swap and merging by history -------------------------------------------


def test_a_second_person_pushing_other_content_for_the_same_version_gets_refconflict(
        remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice, bob = make_store(tmp_path / "alice"), make_store(tmp_path / "bob")
    alice.add({"C": 1.0}, name="config", version="v1")
    alice.push(remote.url)
    ref = "refs/versions/config/v1"
    before, files = remote.read(ref), remote.files()
    bob.add({"C": 2.0}, name="config", version="v1")
    with pytest.raises(RefConflict) as caught:
        bob.push(remote.url)
    assert caught.value.ref == "config@v1"
    assert caught.value.theirs == alice.resolve("config@v1").raw_digest
    assert caught.value.ours == bob.resolve("config@v1").raw_digest
    assert remote.read(ref) == before
    assert [f for f in remote.files() if not f.startswith("leases")] == \
        [f for f in files if not f.startswith("leases")]  # refused before sending anything
    with pytest.raises(RefConflict):
        bob.pull(remote.url)  # and pulling it would contradict bob's own v1
    assert bob.load("config@v1") == {"C": 2.0}


def test_stage_moves_merge_by_their_history(remote: RemoteUnderTest, tmp_path: Path) -> None:
    alice = make_store(tmp_path / "alice")
    for version in ("v1", "v2", "v3"):
        alice.add({"model": version}, name="model", version=version)
    alice.promote("model@v1", "production", reason="first")
    alice.push(remote.url)

    bob = make_store(tmp_path / "bob")
    bob.pull(remote.url)
    bob.promote("model@v2", "production", reason="bob: better")
    bob.push(remote.url)  # bob has every move the remote has: a fast-forward

    alice.promote("model@v3", "production", reason="alice: newer")
    with pytest.raises(RefConflict, match="pull first") as caught:
        alice.push(remote.url)
    assert caught.value.theirs == bob.resolve("model@v2").raw_digest
    merged = alice.pull(remote.url)
    assert merged.notes and "model@production" in merged.notes[0]
    assert alice.resolve("model@production") == alice.resolve("model@v3")  # alice is ahead
    reasons = [e.reason for e in alice.log("model") if e.ref == "stage"]
    assert reasons == ["first", "alice: newer", "bob: better"]  # nothing lost
    alice.push(remote.url)
    bob.pull(remote.url)
    assert bob.resolve("model@production") == bob.resolve("model@v3")
    assert [e.reason for e in bob.log("model") if e.ref == "stage"] == \
        ["first", "bob: better", "alice: newer"]
    assert bob.verify().ok and alice.verify().ok


def test_racing_pushes_for_one_stage_position_conflict(remote: RemoteUnderTest,
                                                       tmp_path: Path) -> None:
    from lineage.remotes import refs as remote_refs
    from lineage.remotes.config import Remote
    from lineage.remotes.connection import connect
    from lineage.remotes.layout import load_state

    alice, bob = make_store(tmp_path / "alice"), make_store(tmp_path / "bob")
    alice.add({"m": 1}, name="model", version="v1")
    alice.push(remote.url)
    bob.pull(remote.url)
    connection = connect(Remote(None, remote.url))
    plans = []
    for store, reason in ((alice, "a"), (bob, "b")):
        store.promote("model@v1", "prod", reason=reason)
        with store._read() as txn:
            plans.append(remote_refs.plan_push(remote_refs.local_refs(txn),
                                               load_state(connection), None))
    assert remote_refs.write_push(connection, plans[0]) == 1
    with pytest.raises(RefConflict, match="while this push ran"):
        remote_refs.write_push(connection, plans[1])
