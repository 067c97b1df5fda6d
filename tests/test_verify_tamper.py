"""verify checks the live tables against the event chain: a stage, a version, the stored
policies, a record or the ``added`` index changed directly in LMDB (the chain left intact)
is reported by name, while every store lineage itself wrote verifies clean.

Each tampering test builds a real store, closes it, edits its LMDB environment through the
``lmdb`` module (keys built by :mod:`lineage.storage.schema`, values written raw, no event),
reopens it and reads what ``verify`` says.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import lmdb
import pytest

import lineage
from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.errors import PromotionBlocked, RevisionNotFound
from lineage.storage import schema
from lineage.storage.base import KeysFromItems
from lineage.storage.crosscheck import POLICY_SETTING

# -- tampering through the lmdb module -----------------------------------------------------


class RawTxn(KeysFromItems):
    """A write transaction straight on the LMDB environment: what someone holding the files
    can do. It satisfies the ``WriteTxn`` protocol, so the schema helpers build the keys."""

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self._txn, self._dbs = txn, dbs

    def get(self, namespace: str, key: bytes) -> bytes | None:
        value = self._txn.get(key, db=self._dbs[namespace])
        return None if value is None else bytes(value)

    def items(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
              ) -> Iterator[tuple[bytes, bytes]]:
        found = [(bytes(k), bytes(v)) for k, v in self._txn.cursor(db=self._dbs[namespace])
                 if bytes(k).startswith(prefix)]
        return iter(found[::-1] if reverse else found)

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[namespace])

    def delete(self, namespace: str, key: bytes) -> bool:
        return bool(self._txn.delete(key, db=self._dbs[namespace]))


def tamper(path: Path, edit: Callable[[RawTxn], None]) -> None:
    """Apply ``edit`` to the closed store at ``path`` in one raw LMDB write transaction."""
    env = lmdb.open(str(path), max_dbs=len(schema.NAMESPACES) + 2, subdir=True)
    try:
        dbs = {ns: env.open_db(ns.encode()) for ns in schema.NAMESPACES}
        with env.begin(write=True) as txn:
            edit(RawTxn(txn, dbs))
    finally:
        env.close()


def problems_after(path: Path, edit: Callable[[RawTxn], None]) -> list[str]:
    tamper(path, edit)
    with lineage.open(path) as store:
        report = store.verify()
    assert not report.ok
    return report.problems


# -- the stores ----------------------------------------------------------------------------


def build(path: Path) -> dict[str, Digest]:
    """A registry: two model versions (v1.1 in production), a dataset, a run, a tag, and a
    production policy. Returns the digests by label; the store is closed."""
    with lineage.open(path) as store:
        cohort = store.add(b"cohort rows", name="cohort", version="v1")
        with store.run("train", params={"C": 0.5}) as run:
            run.log_input("cohort@v1")
            old = run.log_artifact(b"weights 1.0", name="model", version="v1.0")
        new = store.add(b"weights 1.1", name="model", version="v1.1")
        store.promote("model@v1.1", "production", reason="validated on testset@v2")
        store.tag("model@v1.0", "baseline")
        store.set_policy("production", checks=["evaluated", "lint"],
                         metrics={"sensitivity": (">=", 0.9)}, reason="board decision")
        assert store.verify().ok, store.verify().problems
    return {"v1.0": old.raw_digest, "v1.1": new.raw_digest, "cohort": cohort.raw_digest}


@pytest.fixture
def built(tmp_path: Path) -> tuple[Path, dict[str, Digest]]:
    path = tmp_path / "store"
    return path, build(path)


# -- the five tamperings -------------------------------------------------------------------


def test_a_repointed_stage_is_reported(built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built
    problems = problems_after(path, lambda txn: schema.put_stage(
        txn, "model", "production", digests["v1.0"]))
    with lineage.open(path) as store:
        assert store.resolve("model@production").raw_digest == digests["v1.0"]  # it took
    (problem,) = [p for p in problems if p.startswith("stage model@production:")]
    assert f"points at {digests['v1.0'].hex()}" in problem
    assert f"left it at {digests['v1.1'].hex()}" in problem and "outside lineage" in problem


def test_a_removed_stage_and_a_stage_never_moved_are_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built

    def edit(txn: RawTxn) -> None:
        schema.put_stage(txn, "model", "production", None)
        schema.put_stage(txn, "model", "shadow", digests["v1.0"])

    problems = problems_after(path, edit)
    assert any(p.startswith("stage model@production: points at nothing") for p in problems)
    assert any(p.startswith("stage model@shadow:") and "no move" in p for p in problems)


def test_a_repointed_tag_is_reported(built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built
    problems = problems_after(path, lambda txn: schema.put_tag(txn, "baseline", digests["v1.1"]))
    assert any(p.startswith("tag baseline:") and digests["v1.1"].hex() in p for p in problems)


def test_a_repointed_version_is_reported(built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built

    def edit(txn: RawTxn) -> None:
        entry = schema.version_entry(txn, "model", "v1.1")
        assert entry is not None
        schema.put_version(txn, "model", entry._replace(target=digests["v1.0"]))

    problems = problems_after(path, edit)
    with lineage.open(path) as store:
        assert store.resolve("model@v1.1").raw_digest == digests["v1.0"]  # it took
    (problem,) = [p for p in problems if p.startswith("version model@v1.1:")]
    assert digests["v1.0"].hex() in problem and digests["v1.1"].hex() in problem
    assert "the event that created it (event " in problem


def test_a_version_added_or_removed_outside_lineage_is_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built

    def edit(txn: RawTxn) -> None:
        latest = schema.latest_version(txn, "model")
        assert latest is not None
        schema.put_version(txn, "model", schema.VersionEntry(
            latest.seq + 1, "v9", digests["v1.0"], latest.time + 1))
        cohort = schema.version_entry(txn, "cohort", "v1")
        assert cohort is not None
        schema.put_version(txn, "cohort", cohort._replace(version="v0"))  # relabelled

    problems = problems_after(path, edit)
    assert any(p.startswith("version model@v9:") and "created by no move" in p
               for p in problems)
    assert any(p.startswith("version cohort@v1:") and "cohort@v0" in p for p in problems)
    assert any(p.startswith("version label cohort@v1:") for p in problems)


def test_a_version_whose_time_was_moved_is_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, _digests = built

    def edit(txn: RawTxn) -> None:
        entry = schema.version_entry(txn, "model", "v1.1")
        assert entry is not None
        schema.put_version(txn, "model", entry._replace(time=entry.time + 86_400))

    problems = problems_after(path, edit)
    assert any(p.startswith("version model@v1.1: its time differs") for p in problems)


@pytest.mark.parametrize("stored", [None, {}, {"production": {
    "checks": [], "metrics": {}, "min_subgroup": None, "after": []}}],
    ids=["deleted", "emptied", "gate-disabled"])
def test_emptied_or_replaced_policies_are_reported(
        built: tuple[Path, dict[str, Digest]], stored: Any) -> None:
    path, _digests = built
    problems = problems_after(path, lambda txn: schema.put_setting(txn, POLICY_SETTING, stored))
    with lineage.open(path) as store:
        assert "metric sensitivity >= 0.9" not in store.policy("production").describe()
    (problem,) = [p for p in problems if p.startswith("policy of stage 'production':")]
    assert "its last policy event (event " in problem and "outside lineage" in problem


def test_a_policy_set_for_a_stage_outside_lineage_is_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, _digests = built

    def edit(txn: RawTxn) -> None:
        table = schema.get_setting(txn, POLICY_SETTING)
        table["staging"] = {"checks": ["lint"], "metrics": {}, "min_subgroup": None,
                            "after": []}
        schema.put_setting(txn, POLICY_SETTING, table)

    problems = problems_after(path, edit)
    (problem,) = [p for p in problems if p.startswith("policy of stage 'staging':")]
    assert "no policy event" in problem


def test_a_record_deleted_although_an_event_names_it_is_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built
    problems = problems_after(path, lambda txn: txn.delete("records", digests["cohort"]))
    (problem,) = [p for p in problems if p.startswith(f"record {digests['cohort'].hex()} "
                                                      "(cohort): added by event")]
    assert "missing from records" in problem and "missing from records" in problem


def test_a_record_added_outside_lineage_is_reported(
        built: tuple[Path, dict[str, Digest]], tmp_path: Path) -> None:
    path, _digests = built
    with lineage.open(":memory:") as scratch:  # a well-formed record the store never had
        stray = scratch.add(b"smuggled in")
    problems = problems_after(path, lambda txn: txn.put("records", stray.raw_digest,
                                                        stray.encode()))
    assert f"record {stray.raw_digest.hex()}: no event added it: it was added outside " \
        "lineage" in problems


def test_a_scrambled_added_index_is_reported(built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built

    def scramble(txn: RawTxn) -> None:
        for digest, seq in list(schema.digest_entries(txn, "added")):
            txn.put("added", digest, seq[::-1])  # the event numbers' bytes reversed

    problems = problems_after(path, scramble)
    with lineage.open(path) as store:
        with pytest.raises(RevisionNotFound):
            store.as_of(time.time()).resolve("model@v1.1")  # what the tampering broke
    (problem,) = [p for p in problems if p.startswith(f"record {digests['v1.1'].hex()} (model):")]
    assert "the added index says event" in problem and "outside lineage" in problem


def test_an_added_entry_moved_to_another_event_or_dropped_is_reported(
        built: tuple[Path, dict[str, Digest]]) -> None:
    path, digests = built

    def edit(txn: RawTxn) -> None:
        later = schema.added_seq(txn, digests["v1.1"])
        assert later is not None
        txn.put("added", digests["v1.0"], later.to_bytes(8, "big"))  # a later birth
        txn.delete("added", digests["cohort"])

    problems = problems_after(path, edit)
    assert any(p.startswith(f"record {digests['v1.0'].hex()} (model): the added index says "
                            "event") for p in problems)
    assert any(p.startswith(f"record {digests['cohort'].hex()} (cohort): the added index has "
                            "no entry") for p in problems)


def test_the_cli_names_the_problem_and_exits_non_zero(
        built: tuple[Path, dict[str, Digest]], capsys: pytest.CaptureFixture[str]) -> None:
    from lineage.cli import main

    path, digests = built
    tamper(path, lambda txn: schema.put_stage(txn, "model", "production", digests["v1.0"]))
    assert main(["--store", str(path), "verify"]) != 0
    captured = capsys.readouterr()
    assert "verify found 1 problem" in captured.err
    assert "stage model@production: points at" in captured.out


# -- stores lineage wrote verify clean -----------------------------------------------------


def test_a_busy_registry_verifies_clean(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with lineage.open(path) as store:
        for version in ("v1", "v2", "v3"):
            store.add(f"weights {version}".encode(), name="model", version=version,
                      kind="model")
        store.add(b"scratch, named by nothing")
        with pytest.raises(PromotionBlocked):
            store.promote("model@v1", "production")
        store.promote("model@v1", "production", force=True, reason="pilot, signed off")
        store.promote("model@v2", "production", force=True, reason="hotfix")
        store.set_policy("staging", checks=[], after=["production"], reason="light gate")
        store.promote("model@v2", "staging")
        store.promote("model@v1", "staging")  # back again
        store.clear_stage("model", "staging", reason="retired")
        store.tag("model@v1", "baseline")
        store.tag("model@v2", "baseline", reason="moved on")
        store.tag("model@v3", "candidate")
        store.untag("candidate")
        store.set_policy("production", metrics={"sensitivity": (">=", 0.9)}, reason="board")
        store.set_policy("production", metrics={"sensitivity": (">=", 0.95)}, reason="tighter")
        store.reset_policy("staging", reason="no gate")
        assert store.gc().records == 1
        store.add(b"scratch, named by nothing")  # re-added after gc
        assert store.gc().records == 1
        report = store.verify()
        assert report.ok, report.problems
        assert any(e.action == "override" for e in store.events())
    with lineage.open(path) as store:  # and again after a reopen
        assert store.verify().ok


def test_a_memory_store_verifies_clean() -> None:
    with lineage.open(":memory:") as store:
        store.add(b"w", name="model", version="v1")
        store.promote("model@v1", "production")
        store.set_policy("production", checks=["lint"])
        assert store.verify().ok, store.verify().problems


def forget_the_log(txn: Any) -> None:
    """Make a store look as if it was written before the event log existed."""
    for namespace in ("events", "added"):
        for key, _ in list(txn.items(namespace)):
            txn.delete(namespace, key)


def test_a_store_upgraded_from_before_the_log_verifies_clean(tmp_path: Path) -> None:
    path = tmp_path / "old"
    with lineage.open(path) as store:
        for version in ("v1", "v2"):
            store.add(f"weights {version}".encode(), name="model", version=version)
        store.add(b"scratch before the log")
        store.promote("model@v1", "production")
        store.tag("model@v1", "baseline")
        store._write(forget_the_log)
    with lineage.open(path) as store:  # the chain starts at the upgrade
        assert store.events()[0].details["records"] == 3
        assert store.verify().ok, store.verify().problems
        store.add(b"weights v3", name="model", version="v3")
        store.promote("model@v2", "production")
        store.tag("model@v2", "baseline")
        assert store.gc().records == 1  # the scratch from before the log
        report = store.verify()
        assert report.ok, report.problems


def test_tables_from_before_the_log_are_checked_against_its_history(tmp_path: Path) -> None:
    path = tmp_path / "old"
    with lineage.open(path) as store:
        v1 = store.add(b"weights v1", name="model", version="v1")
        v2 = store.add(b"weights v2", name="model", version="v2")
        store.promote("model@v2", "production")
        store._write(forget_the_log)
    lineage.open(path).close()  # the upgrade

    def edit(txn: RawTxn) -> None:
        schema.put_stage(txn, "model", "production", v1.raw_digest)
        txn.delete("records", v2.raw_digest)

    problems = problems_after(path, edit)
    assert any(p.startswith("stage model@production:") and "before the event log" in p
               for p in problems)
    assert any(p.startswith("records: 1 of the 2 records from before the event log are "
                            "missing") for p in problems)


# -- a pull that kept this store's move -------------------------------------------------------


def diverged(tmp_path: Path) -> tuple[Path, dict[str, Digest]]:
    """alice keeps her model@production (v3) over bob's (v2), now later in her history."""
    remote = str(tmp_path / "remote")
    with lineage.open(tmp_path / "alice") as alice:
        digests = {v: alice.add({"model": v}, name="model", version=v).raw_digest
                   for v in ("v1", "v2", "v3")}
        alice.promote("model@v1", "production", reason="first")
        alice.push(remote)
        with lineage.open(tmp_path / "bob") as bob:
            bob.pull(remote)
            bob.promote("model@v2", "production", reason="bob: better")
            bob.push(remote)
        alice.promote("model@v3", "production", reason="alice: newer")
        assert alice.pull(remote).notes
        assert alice.resolve("model@production").raw_digest == digests["v3"]
        assert alice.log("model")[-1].target == digests["v2"]  # the history ends with bob's
        pull = alice.events()[-1]
        assert pull.action == "pull"
        assert pull.details["kept"] == [["stage", "model", "production", digests["v3"]]]
        assert alice.verify().ok, alice.verify().problems
    return tmp_path / "alice", digests


def test_a_stage_a_pull_kept_is_checked_against_the_kept_move(tmp_path: Path) -> None:
    path, digests = diverged(tmp_path)
    problems = problems_after(path, lambda txn: schema.put_stage(
        txn, "model", "production", digests["v2"]))  # what the history alone would say
    (problem,) = [p for p in problems if p.startswith("stage model@production:")]
    assert f"left it at {digests['v3'].hex()}" in problem


def test_a_pull_from_before_kept_was_recorded_still_verifies(tmp_path: Path) -> None:
    path, digests = diverged(tmp_path)

    def drop_kept(txn: RawTxn) -> None:  # rewrite the chain as an older lineage wrote it
        previous = schema.EVENT_GENESIS
        for seq, data in list(schema.events(txn)):
            tag, version, body = encoding.decode(data)
            if body["action"] == "pull":
                del body["kept"]
            body["prev"] = previous
            forged = encoding.encode([tag, version, body])
            txn.put("events", seq.to_bytes(8, "big"), forged)
            previous = hashlib.sha256(forged).digest()

    tamper(path, drop_kept)
    with lineage.open(path) as store:
        assert store.verify().ok, store.verify().problems
        store.promote("model@v1", "production", reason="after the pull, exact again")
    problems = problems_after(path, lambda txn: schema.put_stage(
        txn, "model", "production", digests["v3"]))
    assert any(p.startswith("stage model@production:") for p in problems)
