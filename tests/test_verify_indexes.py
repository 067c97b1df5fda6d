"""verify checks the derived indexes against the records: an index entry changed directly
in LMDB (a step's call key repointed, an edge dropped, a kind or metric entry forged) is
reported by index, while every store lineage itself wrote verifies clean.

The stores are real; the tampering goes through the ``lmdb`` module, as in
``test_verify_tamper.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_verify_tamper import RawTxn, problems_after

import lineage
from lineage.core.hashing import Digest, digest_bytes
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
        "the step cache's index of call keys: 1 entries naming a run that does not own them "
        f"({one.call_key.hex()}); the index disagrees with the records: restore the store "
        "from a backup"]


def test_a_dropped_edge_is_reported_in_the_direction_it_was_dropped(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, _made = built

    def drop_an_incoming_used_edge(txn: RawTxn) -> None:
        key = next(k for k, _v in txn.items("edges_in") if k[16:17] == schema.EDGE_USED)
        txn.delete("edges_in", key)

    problems = problems_after(path, drop_an_incoming_used_edge)
    assert len(problems) == 1
    assert problems[0].startswith("the lineage edges (incoming): 1 entries missing for "
                                  "stored records (")


def test_forged_kind_and_metric_entries_and_a_lost_run_id_are_reported(
    built: tuple[Path, dict[str, Any]]
) -> None:
    path, made = built
    ghost = digest_bytes(b"no such record")
    train = made["children"][0]

    def forge(txn: RawTxn) -> None:
        txn.put("by_kind", b"model\0" + ghost, b"")
        metric = next(k for k, _v in txn.items("run_metrics", schema.key_part("auc")))
        txn.delete("run_metrics", metric)
        txn.delete("run_ids", train.id.encode())

    problems = problems_after(path, forge)
    assert [p.split(":")[0] for p in problems] == [
        "the index by kind", "the index of run ids", "the metrics index"]
    assert "1 entries no record owns" in problems[0] and ghost.hex() in problems[0]
    assert "1 entries missing for stored runs" in problems[1]
    assert "1 entries missing for stored records" in problems[2]


def test_parent_run_edges_are_checked_both_ways(built: tuple[Path, dict[str, Any]]) -> None:
    path, made = built
    parent, (first, second) = made["parent"].raw_digest, made["children"]
    stranger: Digest = made["steps"][0].raw_digest

    def unlink_one_child_and_adopt_a_stranger(txn: RawTxn) -> None:
        assert txn.delete("edges_out", parent + schema.EDGE_CHILD + first.raw_digest)
        assert txn.delete("edges_in", first.raw_digest + schema.EDGE_CHILD + parent)
        schema.add_edge(txn, second.raw_digest, schema.EDGE_CHILD, stranger)

    problems = problems_after(path, unlink_one_child_and_adopt_a_stranger)
    assert len(problems) == 2
    assert problems[0].startswith("the lineage edges (outgoing): 1 parent-run edges no run "
                                  f"stands behind ({second.digest}")
    assert problems[1].startswith("the lineage edges (incoming): 1 child runs without the "
                                  f"edge from their parent run ({first.digest}")
