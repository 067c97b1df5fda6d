"""The event log: every write appends a hash-chained event; verify names the first broken
link, an edited history entry, and a chain cut short or rewritten before a kept checkpoint."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

import lineage
from lineage.core import encoding
from lineage.errors import InvalidQuery
from lineage.storage import schema
from lineage.storage.events import decode_event
from lineage.store import Store


def _populate(store: Store) -> None:
    store.add(b"cohort v1", name="cohort", version="v1")
    with store.run("train", params={"C": 0.5}) as run:
        run.log_input("cohort@v1")
        run.log_artifact(b"weights", name="model", version="v1")
    store.promote("model@v1", "production", reason="validated on testset@v1")
    store.tag("model@v1", "best")


def _put_raw_event(store: Store, seq: int, data: bytes) -> None:
    store._write(lambda txn: txn.put("events", seq.to_bytes(8, "big"), data))


def _raw_event(store: Store, seq: int) -> bytes:
    with store._read() as txn:
        return dict(schema.events(txn))[seq]


def test_every_write_appends_one_event_in_order(store: Store) -> None:
    _populate(store)
    events = store.events()
    assert events[0].action == "start"
    actions = [e.action for e in events[1:]]
    assert actions.count("record") >= 4  # cohort, weights, the run, its environment
    refs = [(e.details["name"], e.details["ref"], e.details["key"]) for e in events
            if e.action == "ref"]
    assert ("cohort", "version", "v1") in refs and ("model", "stage", "production") in refs
    assert ("best", "tag", "best") in refs and ("model", "tag", "best") in refs
    assert [e.seq for e in events] == list(range(len(events)))
    assert all(b.prev == a.hash for a, b in zip(events, events[1:], strict=False))
    times = [e.time for e in events]
    assert times == sorted(times)
    promoted = next(e for e in events if e.action == "ref" and e.details["ref"] == "stage")
    assert promoted.details["reason"] == "validated on testset@v1"


def test_events_hold_digests_and_names_never_data_values(store: Store) -> None:
    secret = b"patient 0042: HIV positive"
    store.add(secret, name="note")
    raw = b"".join(_raw_event(store, e.seq) for e in store.events())
    assert secret not in raw
    assert store.verify().ok


def test_a_clean_store_verifies_and_reports_its_head(store: Store) -> None:
    _populate(store)
    report = store.verify()
    assert report.ok, report.problems
    assert report.events == len(store.events())
    assert report.head == store.events()[-1].hash
    assert store.verify(checkpoint=report.head).ok


def test_an_edited_event_is_detected_at_the_next_link(store: Store) -> None:
    _populate(store)
    target = 3
    tag, version, body = encoding.decode(_raw_event(store, target))
    body["user"] = "mallory"
    _put_raw_event(store, target, encoding.encode([tag, version, body]))
    problems = store.verify().problems
    assert any(p.startswith(f"event {target + 1}:") and "previous-hash" in p for p in problems)


def test_a_removed_event_breaks_the_sequence(store: Store) -> None:
    _populate(store)
    store._write(lambda txn: txn.delete("events", (2).to_bytes(8, "big")))
    assert any("out of sequence" in p for p in store.verify().problems)


def test_an_edited_history_entry_is_detected(store: Store) -> None:
    _populate(store)
    with store._read() as txn:
        key, value = next((k, v) for k, v in txn.items("history")
                          if b"model" in k and b"production" in v)
    forged = value.replace(b"validated on testset@v1", b"approved by the board!!")
    store._write(lambda txn: txn.put("history", key, forged))
    assert any("differs from its event" in p for p in store.verify().problems)


def test_erasing_that_a_promotion_was_forced_is_detected(store: Store) -> None:
    from sklearn.linear_model import LogisticRegression

    from lineage.core.records import RefEntry

    with store.run("train") as run:  # no evaluation: the production gate fails
        run.log_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), name="model")
    store.promote("model", "production", force=True, reason="trial")
    with store._read() as txn:
        key, value = next((k, v) for k, v in txn.items("history") if b"production" in v)
    entry = RefEntry.decode(value)
    assert entry.skipped and store.verify().ok
    store._write(lambda txn: txn.put("history", key, entry.replace(skipped=()).encode()))
    assert any("differs from its event" in p for p in store.verify().problems)


def test_a_chain_cut_short_is_caught_only_with_a_checkpoint(store: Store) -> None:
    _populate(store)
    head = store.verify().head
    assert head is not None
    last = store.events()[-1].seq
    store._write(lambda txn: txn.delete("events", last.to_bytes(8, "big")))
    report = store.verify(checkpoint=head)
    assert any("checkpoint" in p and "cut short or rewritten" in p for p in report.problems)


def test_a_rewritten_chain_is_caught_by_the_checkpoint(store: Store) -> None:
    _populate(store)
    head = store.verify().head
    assert head is not None
    # forge a whole new, internally consistent chain with one event altered
    with store._read() as txn:
        originals = list(schema.events(txn))
    previous = schema.EVENT_GENESIS
    forged_chain = []
    for seq, data in originals:
        tag, version, body = encoding.decode(data)
        if seq == 1:
            body["user"] = "mallory"
        body["prev"] = previous
        forged = encoding.encode([tag, version, body])
        forged_chain.append((seq, forged))
        previous = hashlib.sha256(forged).digest()

    def rewrite(txn: object) -> None:
        for seq, data in forged_chain:
            txn.put("events", seq.to_bytes(8, "big"), data)  # type: ignore[attr-defined]

    store._write(rewrite)
    assert not any("previous-hash" in p for p in store.verify().problems)  # consistent...
    assert not store.verify(checkpoint=head).ok  # ...but not the chain the reviewer saw


def test_a_store_made_before_the_event_log_starts_its_chain_at_the_upgrade(
        tmp_path: Path) -> None:
    store = lineage.open(tmp_path / "old")
    _populate(store)

    def forget_the_log(txn: object) -> None:
        for key, _ in list(txn.items("events")):  # type: ignore[attr-defined]
            txn.delete("events", key)  # type: ignore[attr-defined]
        for key, _ in list(txn.items("added")):  # type: ignore[attr-defined]
            txn.delete("added", key)  # type: ignore[attr-defined]

    store._write(forget_the_log)
    store.close()
    reopened = lineage.open(tmp_path / "old")
    try:
        start = reopened.events()[0]
        assert start.action == "start" and start.seq == 0
        assert start.details["records"] > 0 and start.details["history"]["model"] == 3
        reopened.promote("model@v1", "staging")
        assert reopened.verify().ok, reopened.verify().problems
    finally:
        reopened.close()


def test_events_since_a_moment(store: Store) -> None:
    _populate(store)
    events = store.events()
    middle = events[len(events) // 2]
    assert store.events(since=middle.time)[0].time >= middle.time
    assert store.events(since="2999-01-01") == []
    with pytest.raises(InvalidQuery, match="not a date"):
        store.events(since="yesterday-ish")


def test_cli_events_and_verify_checkpoint(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from lineage.cli import main

    home = str(tmp_path / "store")
    with lineage.open(home) as store:
        _populate(store)
        head = store.verify().head
    assert main(["--store", home, "events", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["head"] == head and data["events"][0]["action"] == "start"
    assert main(["--store", home, "verify", "--checkpoint", head or ""]) == 0
    capsys.readouterr()
    assert main(["--store", home, "verify", "--checkpoint", "00" * 32]) == 1
    captured = capsys.readouterr()
    assert "verify found 1 problem" in captured.err
    assert "cut short or rewritten" in captured.out


def test_decoding_a_damaged_event_is_a_typed_error() -> None:
    from lineage.errors import CorruptRecordError

    with pytest.raises(CorruptRecordError):
        decode_event(0, encoding.encode(["lineage/event", 1, {"seq": "x"}]))
