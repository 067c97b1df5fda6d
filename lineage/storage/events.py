"""The event log: every write, in order, sealed by a SHA-256 hash chain.

Every write that changes what a store says — a record added, a ref moved, a policy changed,
an override, a gc — appends an event in the same transaction (see
:func:`lineage.storage.schema.append_event`). An event is the canonical encoding of
``["lineage/event", 1, {"seq", "time", "user", "action", "prev", ...details}]``; ``prev`` is
the SHA-256 of the previous event's stored bytes (32 zero bytes for the first), so an edited,
removed or reordered event breaks every link after it. XXH3 stays the content address (it is
fast); SHA-256 is the seal (it resists an adversary). Events hold digests, names, who, when
and why — never data values.

Actions and their details:

- ``start`` ``{"records": n, "history": {name: entries}}``: the chain begins (a new store,
  or a store made before the log existed, whose earlier history the counts delimit);
- ``record`` ``{"digest", "kind", "name"}``: a record was added;
- ``ref`` ``{"name", "position", "ref", "key", "target", "previous", "reason", "skipped"}``:
  a ref moved; it matches the name's history entry at ``position`` (``skipped``, the checks
  a forced promotion overrode, is absent from events written before it was sealed);
- ``gc`` ``{"removed": [digest]}``: unreachable records were removed;
- ``policy`` ``{"stage", "reason", "policy"}``: a stage's policy changed (``policy`` is the
  digest of its canonical encoding, ``None`` when reset to the built-in default);
- ``override`` ``{"name", "stage", "target", "reason", "skipped"}``: a promotion skipped
  its checks;
- ``pull`` ``{"remote", "records", "refs", "stores", "kept"}``: refs and records came from a
  remote; ``kept`` (absent before it was added) lists ``[ref, name, key, target]`` of each
  stage or tag whose local move was kept over the remote's moves, now in the history.

:func:`verify_chain` checks every link, the history against the ``ref`` events, and
optionally a *checkpoint* — the head hash a reviewer kept — so that a chain cut short or
rewritten before it is caught too. :mod:`lineage.storage.crosscheck` then compares the live
tables with what the chain says.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import RefEntry
from lineage.errors import CorruptRecordError, LineageError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn

__all__ = ["ChainObserver", "ChainReport", "Event", "read_events", "start_chain",
           "verify_chain"]

_KNOWN: Final = frozenset({"seq", "time", "user", "action", "prev"})


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the event log. ``hash`` is the SHA-256 of its stored bytes (hex)."""

    seq: int
    time: float
    user: str
    action: str
    details: dict[str, Any]
    prev: str
    hash: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"seq", "time" (ISO 8601), "user", "action", "prev", "hash", ...details}``
        with digests as hex."""
        return {"seq": self.seq, "time": iso_time(self.time), "user": self.user,
                "action": self.action, **jsonable(self.details), "prev": self.prev,
                "hash": self.hash}

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in sorted(self.details.items()))
        return f"#{self.seq} {iso_time(self.time)} {self.user} {self.action} {shown}"


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        return value.hex()[:12]
    if isinstance(value, list) and len(value) > 3:
        return f"[{len(value)} items]"
    return str(jsonable(value))


def decode_event(seq: int, data: bytes) -> Event:
    """Parse stored event bytes.

    Raises:
        CorruptRecordError: they are not a well-formed event.
    """
    from hashlib import sha256  # imported on first use: opening a store needs none

    try:
        value = encoding.decode(data)
    except CorruptRecordError as exc:
        raise CorruptRecordError(f"event {seq} is malformed: {exc}") from None
    if not (isinstance(value, list) and len(value) == 3 and value[0] == schema.EVENT_TAG
            and isinstance(value[2], dict)):
        raise CorruptRecordError(f"event {seq} is not a lineage event")
    body = value[2]
    kinds = {"seq": (int,), "time": (int, float), "user": (str,), "action": (str,),
             "prev": (bytes,)}
    wrong = sorted(key for key, allowed in kinds.items() if type(body.get(key)) not in allowed)
    if wrong or not all(type(key) is str for key in body):
        raise CorruptRecordError(f"event {seq} is malformed: {', '.join(wrong) or 'its keys'}")
    return Event(seq=body["seq"], time=float(body["time"]), user=body["user"],
                 action=body["action"], details={k: v for k, v in body.items() if k not in _KNOWN},
                 prev=body["prev"].hex(), hash=sha256(data).hexdigest())


def read_events(txn: ReadTxn, *, since: float | None = None) -> Iterator[Event]:
    """The events, oldest first; with ``since`` (epoch seconds), those at or after it."""
    for seq, data in schema.events(txn):
        event = decode_event(seq, data)
        if since is None or event.time >= since:
            yield event


def start_chain(backend: Backend) -> None:
    """Begin the event log of a store that has none (new, or made before the log existed).

    Idempotent and safe against concurrent openers: the check is repeated inside the write.
    """
    with backend.read() as txn:
        if schema.last_event(txn) is not None:
            return

    def start(txn: WriteTxn) -> None:
        if schema.last_event(txn) is not None:
            return
        counts = {name: len(schema.history(txn, name)) for name in schema.history_names(txn)}
        records = sum(1 for _ in schema.digest_entries(txn, "records"))
        schema.append_event(txn, "start", {"records": records, "history": counts})

    backend.write(start)


@dataclass(slots=True)
class ChainReport:
    """What :func:`verify_chain` found: how many events, the head hash, the problems."""

    events: int = 0
    head: str | None = None
    problems: list[str] = field(default_factory=list)


class ChainObserver(Protocol):
    """Given what :func:`verify_chain` reads, to check more against it in the same pass."""

    def see(self, event: Event) -> None:
        """Take each well-formed event, oldest first."""

    def see_history(self, name: str, entries: list[RefEntry]) -> None:
        """Take each name's whole history (after every event was seen)."""


def verify_chain(txn: ReadTxn, *, checkpoint: str | None = None,
                 observer: ChainObserver | None = None) -> ChainReport:
    """Check every link of the chain, the history against the ``ref`` events, and
    ``checkpoint`` (a head hash kept elsewhere) against the chain.

    Each problem names the first broken link or the entry that disagrees. ``observer`` is
    shown every event and every history read (to check the tables against them).
    """
    from hashlib import sha256

    report = ChainReport()
    previous: bytes | None = None
    hashes: set[str] = set()
    start_counts: dict[str, int] = {}
    refs: dict[tuple[str, int], dict[str, Any]] = {}
    broken = False
    for seq, data in schema.events(txn):
        report.events += 1
        expected_prev = schema.EVENT_GENESIS if previous is None else sha256(
            previous).digest()
        try:
            event = decode_event(seq, data)
        except LineageError as exc:
            report.problems.append(f"event {seq}: {exc}")
            broken, previous = True, data
            continue
        hashes.add(event.hash)
        if observer is not None:
            observer.see(event)
        if not broken and (event.seq != seq or seq != report.events - 1):
            report.problems.append(f"event {seq}: out of sequence (a missing or reordered "
                                   f"event before it); the chain breaks here")
            broken = True
        elif not broken and bytes.fromhex(event.prev) != expected_prev:
            report.problems.append(f"event {seq}: its previous-hash does not match event "
                                   f"{seq - 1}: an event at or before it was edited or removed")
            broken = True
        if event.action == "start":
            counts = event.details.get("history") or {}
            if type(counts) is dict and all(type(n) is int for n in counts.values()):
                start_counts = counts
            else:
                report.problems.append(f"event {seq}: its history counts are malformed")
        elif event.action == "ref":
            position = event.details.get("position")
            if type(position) is int:
                refs[(str(event.details.get("name")), position)] = event.details
            else:
                report.problems.append(f"event {seq}: its history position is malformed")
        previous = data
    report.head = sha256(previous).hexdigest() if previous is not None else None
    if checkpoint is not None and checkpoint.lower() not in hashes:
        report.problems.append(f"checkpoint {checkpoint[:16]} is not in the chain: the log was "
                               "cut short or rewritten before it")
    _check_history(txn, refs, start_counts, report, observer)
    return report


def _check_history(txn: ReadTxn, refs: dict[tuple[str, int], dict[str, Any]],
                   start_counts: dict[str, int], report: ChainReport,
                   observer: ChainObserver | None) -> None:
    """Every history entry after the chain began has a matching ``ref`` event, and back."""
    seen = set()
    for name in schema.history_names(txn):
        try:
            entries = schema.history(txn, name)
        except CorruptRecordError as exc:
            report.problems.append(f"history of {name!r}: {exc}")
            continue
        if observer is not None:
            observer.see_history(name, entries)
        for position, entry in enumerate(entries):
            if position < start_counts.get(name, 0):
                continue  # written before the event log existed
            seen.add((name, position))
            event = refs.get((name, position))
            if event is None:
                report.problems.append(f"history of {name!r} entry {position} has no event: "
                                       "it was added outside lineage")
                continue
            recorded = (event.get("ref"), event.get("key"), _digest(event.get("target")),
                        _digest(event.get("previous")), event.get("reason"))
            skipped = event.get("skipped")  # sealed since it was added to ref events
            if recorded != (entry.ref, entry.key, entry.target, entry.previous, entry.reason) \
                    or (skipped is not None and tuple(skipped) != entry.skipped):
                report.problems.append(f"history of {name!r} entry {position} differs from "
                                       "its event: it was edited")
    for name, position in sorted(set(refs) - seen):
        report.problems.append(f"event for history of {name!r} entry {position} has no "
                               "entry: the history was truncated")


def _digest(value: Any) -> Digest | None:
    return Digest(value) if isinstance(value, bytes) and len(value) == 16 else None
