"""verify checks the derived indexes against the records: an index entry changed directly
in LMDB (a step's call key repointed, an edge dropped, a kind or metric entry forged) is
reported by index, while every store lineage itself wrote verifies clean.

The stores are real; the tampering goes through the ``lmdb`` module, as in
``test_verify_tamper.py``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from test_verify_tamper import RawTxn, problems_after

import lineage
from lineage.core.hashing import digest_bytes
from lineage.core.records import Run
from lineage.storage import schema


def build(path: Path) -> dict[str, Any]:
    """Memoized steps (two calls, two call keys), a parent run with two children recorded
    inside it, an artifact derived from another, params and metrics. Returns the runs by
    role (``steps``, ``parent``, ``children``); the store is closed."""
    calls = []

    @lineage.step
    def double(x: int) -> int:
        calls.append(x)
        return 2 * x

    with lineage.open(path) as store:
        raw = store.add(b"raw rows", name="raw")
        store.add(b"clean rows", name="clean", derived_from=[raw])
        assert (double(1), double(2), double(1)) == (2, 4, 2) and calls == [1, 2]
        with store.run("sweep"):
            for c in (0.1, 1.0):
                with store.run("train", params={"C": c}) as child:
                    child.log_input("clean")
                    child.log_metric("auc", 0.8 + c / 10)
        assert store.verify().ok, store.verify().problems
        (parent,) = store.runs("sweep")
        return {"steps": [run for run in store.runs() if run.call_key is not None],
                "parent": parent, "children": store.runs("train")}


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "store"
    return path, build(path)


def test_a_store_with_steps_nested_runs_and_derivations_verifies_clean(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, made = built
    with lineage.open(path) as store:
        report = store.verify()
        assert report.ok, report.problems
    assert len(made["steps"]) == 2 and len(made["children"]) == 2
    assert all(child.parent == made["parent"].id for child in made["children"])


def test_a_repointed_call_key_is_reported(built: tuple[Path, dict[str, Any]]) -> None:
    """The step cache would answer double(1) with double(2)'s run: verify names it."""
    path, made = built
    one, two = made["steps"]

    def repoint(txn: RawTxn) -> None:
        txn.put("call_keys", one.call_key, two.raw_digest)

    problems = problems_after(path, repoint)
    assert problems == [
        "the step cache's index of call keys: 1 entry naming a run other than its owner "
        f"(call key {one.call_key.hex()}); the index disagrees with the records: restore the "
        "store from a backup"]


def test_a_dropped_edge_is_reported_in_the_direction_it_was_dropped(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, _made = built

    def drop_an_incoming_used_edge(txn: RawTxn) -> None:
        key = next(k for k, _v in txn.items("edges_in") if k[16:17] == schema.EDGE_USED)
        txn.delete("edges_in", key)

    problems = problems_after(path, drop_an_incoming_used_edge)
    assert len(problems) == 1
    assert problems[0].startswith("the lineage edges (incoming): 1 entry missing for stored "
                                  "records (")
    assert re.search(r"\(used edge [0-9a-f]{32} → [0-9a-f]{32}\)", problems[0])


def test_forged_kind_and_metric_entries_and_a_lost_run_id_are_reported(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, made = built
    ghost = digest_bytes(b"no such record")
    train = made["children"][0]

    dropped: list[bytes] = []

    def forge(txn: RawTxn) -> None:
        txn.put("by_kind", b"model\0" + ghost, b"")
        dropped.append(next(k for k, _v in txn.items("run_metrics", schema.key_part("auc"))))
        txn.delete("run_metrics", dropped[0])
        txn.delete("run_ids", train.id.encode())

    problems = problems_after(path, forge)
    assert [p.split(":")[0] for p in problems] == [
        "the index by kind", "the index of run ids", "the metrics index"]
    assert f"1 entry no record owns (model {ghost.hex()})" in problems[0]
    assert f"1 entry missing for stored runs (run id {train.id!r})" in problems[1]
    assert f"1 entry missing for stored records (run {dropped[0][-16:].hex()})" in problems[2]


def test_parent_run_edges_must_join_two_stored_runs_both_ways(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, made = built
    parent, (first, second) = made["parent"].raw_digest, made["children"]
    ghost = digest_bytes(b"no such run")

    def adopt_a_ghost_and_drop_half_an_edge(txn: RawTxn) -> None:
        schema.add_edge(txn, second.raw_digest, schema.EDGE_CHILD, ghost)
        assert txn.delete("edges_in", first.raw_digest + schema.EDGE_CHILD + parent)

    problems = problems_after(path, adopt_a_ghost_and_drop_half_an_edge)
    assert [p.split("; the index")[0] for p in problems] == [
        "the lineage edges (outgoing): 1 parent-run edge not joining two stored runs "
        f"(child_of edge {second.digest} → {ghost.hex()})",
        "the lineage edges (incoming): 1 parent-run edge missing (stored outgoing only) "
        f"(child_of edge {parent.hex()} → {first.digest})"]


def test_cache_hits_in_other_runs_and_steps_bound_by_path_verify_clean(tmp_path: Path) -> None:
    """A run gets an edge to the cached run a step hit returned (whatever that run's
    ``parent``), and to a step bound to the store's path (another handle on the same
    store): neither is damage."""
    path = tmp_path / "store"
    with lineage.open(path) as store:

        @lineage.step(store=store)
        def double(x: int) -> int:
            return 2 * x

        @lineage.step(store=str(path))
        def triple(x: int) -> int:
            return 3 * x

        with store.run("a"):
            assert (double(3), triple(3)) == (6, 9)
        with store.run("b"):
            assert double(3) == 6  # a hit: b gets an edge to a's step run
        report = store.verify()
        assert report.ok, report.problems
        (a,), (b,) = store.runs("a"), store.runs("b")
        steps = {run.op: run.raw_digest for run in store.runs() if run.call_key}
        with store._read() as txn:
            assert {d for _e, d in schema.downstream(txn, a.raw_digest, schema.EDGE_CHILD)} \
                == {steps["double"], steps["triple"]}
            assert [d for _e, d in schema.downstream(txn, b.raw_digest, schema.EDGE_CHILD)] \
                == [steps["double"]]


def test_a_record_whose_entries_cannot_be_formed_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "store"
    forged = Run(op="evil", id="x", started=-1.0)  # no index key holds a negative time
    with lineage.open(path) as store:
        store.add(b"honest", name="honest")
        store._write(lambda txn: txn.put("records", forged.raw_digest, forged.encode()))
        problems = store.verify().problems
    assert any(p.startswith(f"record {forged.digest}: its index entries cannot be formed")
               for p in problems), problems


def test_a_damaged_record_is_one_problem_not_one_per_index(
    built: tuple[Path, dict[str, Any]]
) -> None:
    """The record check names a damaged run; the entries naming it are left unchecked
    rather than each reported as an index no record owns."""
    path, made = built
    run = made["children"][0]

    def damage(txn: RawTxn) -> None:
        data = bytearray(txn.get("records", run.raw_digest) or b"")
        data[len(data) // 2] ^= 0x01
        txn.put("records", run.raw_digest, bytes(data))

    problems = problems_after(path, damage)
    assert len(problems) == 1 and problems[0].startswith(f"record {run.digest}:"), problems


def test_every_derived_index_has_a_name_in_problems() -> None:
    from lineage.storage.indexcheck import INDEX_NAMES

    assert set(INDEX_NAMES) == set(schema.DERIVED_INDEXES)
