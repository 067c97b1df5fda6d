"""The event log travels with the content.

Every store's event log is one SHA-256 hash chain (:mod:`lineage.storage.events`). A store
is known on a remote by its *store id*: the first 32 hex characters of the SHA-256 of its
first event, fixed when the store was made. A push appends the events the remote lacks,
as one immutable segment ``events/<store id>/<first>-<last>`` holding the raw event bytes,
after checking that the remote's copy ends exactly where this store's chain continues (a
copied store directory whose log has diverged is refused, never spliced).

A pull reads every other store's segments, checks each chain link by link from its first
event, and returns each store's event count and head hash. The pulling store then appends
one ``pull`` event naming the remote, the records that arrived and those heads: its own
chain seals what it received, and ``verify`` on it checks its whole chain as ever. The
other stores' events stay on the remote, checkable by anyone against those heads.
"""

from __future__ import annotations

import hashlib
from typing import Final

from lineage.core import encoding
from lineage.errors import CorruptRecordError, IntegrityError, RemoteError
from lineage.remotes.connection import Connection
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.events import decode_event

__all__ = ["pull_heads", "push_events", "store_id"]

_SEGMENT_TAG: Final = "lineage/events"


def store_id(txn: ReadTxn) -> str:
    """This store's id on remotes (see the module docstring).

    Raises:
        CorruptRecordError: the store has no event log (it always has, once opened).
    """
    first = next(schema.events(txn), None)
    if first is None:
        raise CorruptRecordError("the store has no event log; open it with lineage.open()")
    return hashlib.sha256(first[1]).hexdigest()[:32]


def _segments(connection: Connection, store: str) -> list[tuple[int, int, str]]:
    """``(first, last, path)`` of a store's segments on the remote, in order."""
    found = []
    for path in connection.find("events", store):
        first, _, last = path.rsplit("/", 1)[-1].partition("-")
        try:
            found.append((int(first), int(last), path))
        except ValueError:
            continue  # not a segment (a temporary file of an interrupted write)
    return sorted(found)


def _decode_segment(path: str, data: bytes) -> list[bytes]:
    try:
        tag, version, events = encoding.decode(data)
        if tag != _SEGMENT_TAG or version != 1:
            raise ValueError("not an event segment")
        return [bytes(e) for e in events]
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"event segment {path} on the remote is malformed: {exc}"
                                 ) from None


def push_events(connection: Connection, txn: ReadTxn) -> int:
    """Send the events of this store the remote lacks; return how many were sent.

    Raises:
        RemoteError: the remote's copy of this store's log differs from the log here.
    """
    own = store_id(txn)
    segments = _segments(connection, own)
    events = list(schema.events(txn))
    sent_up_to = segments[-1][1] if segments else -1
    if sent_up_to >= 0:
        path = segments[-1][2]
        last = _decode_segment(path, connection.cat([path])[path])[-1]
        if sent_up_to >= len(events) or events[sent_up_to][1] != last:
            raise RemoteError(
                f"remote {connection.label} holds a different event log for this store (id "
                f"{own}) than the one here: was the store directory copied? Events were not "
                "pushed; give the copy its own log by creating a new store and pulling into it")
    new = [data for seq, data in events if seq > sent_up_to]
    if not new:
        return 0
    first = sent_up_to + 1
    path = f"events/{own}/{first:012d}-{first + len(new) - 1:012d}"
    segment = encoding.encode([_SEGMENT_TAG, 1, new])
    if not connection.create(path, segment) and connection.cat([path])[path] != segment:
        raise RemoteError(f"remote {connection.label}: another process pushed different events "
                          f"for this store (id {own}) meanwhile; push again")
    return len(new)


def pull_heads(connection: Connection, own: str) -> dict[str, dict[str, object]]:
    """``{store id: {"events": count, "head": sha256 hex}}`` of every other store's log on
    the remote, each chain checked from its first event.

    Raises:
        IntegrityError: a chain is broken (an event edited, removed or reordered).
    """
    heads: dict[str, dict[str, object]] = {}
    stores = sorted({p.split("/")[1] for p in connection.find("events") if p.count("/") == 2})
    for store in stores:
        if store == own:
            continue
        segments = _segments(connection, store)
        contents = connection.cat([path for _f, _l, path in segments])
        previous: bytes | None = None
        count = 0
        for first, last, path in segments:
            events = _decode_segment(path, contents[path])
            if first != count or last != first + len(events) - 1:
                raise IntegrityError(f"event log of store {store} on the remote has a gap or "
                                     f"overlap at segment {path}; nothing was pulled")
            for data in events:
                event = decode_event(count, data)
                expected = (schema.EVENT_GENESIS if previous is None
                            else hashlib.sha256(previous).digest())
                if event.seq != count or bytes.fromhex(event.prev) != expected:
                    raise IntegrityError(f"event log of store {store} on the remote is broken "
                                         f"at event {count}: an event was edited, removed or "
                                         "reordered; nothing was pulled")
                previous, count = data, count + 1
        if previous is not None:
            heads[store] = {"events": count, "head": hashlib.sha256(previous).hexdigest()}
    return heads
