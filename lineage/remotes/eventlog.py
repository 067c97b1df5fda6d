"""The event log travels with the content.

Every store's event log is one SHA-256 hash chain (:mod:`lineage.storage.events`). A store
is known on a remote by its *store id*: the first 32 hex characters of the SHA-256 of its
first event, fixed when the store was made. A push appends the events the remote lacks,
as one immutable segment ``events/<store id>/<first>`` holding the raw event bytes,
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
_RACES: Final = 8  # times a push re-reads after losing a race for the next segment


def store_id(txn: ReadTxn) -> str:
    """This store's id on remotes (see the module docstring).

    Raises:
        CorruptRecordError: the store has no event log (it always has, once opened).
    """
    first = next(schema.events(txn), None)
    if first is None:
        raise CorruptRecordError("the store has no event log; open it with lineage.open()")
    return hashlib.sha256(first[1]).hexdigest()[:32]


def _segments(connection: Connection, store: str) -> list[tuple[int, str]]:
    """``(first seq, path)`` of a store's segments on the remote, in order."""
    found = []
    for path in connection.find("events", store):
        try:
            found.append((int(path.rsplit("/", 1)[-1]), path))
        except ValueError:
            continue  # not a segment (a temporary file of an interrupted write)
    return sorted(found)


def _decode_segment(path: str, data: bytes) -> list[bytes]:
    try:
        tag, version, events = encoding.decode(data)
        if tag != _SEGMENT_TAG or version != 1 or not events:
            raise ValueError("not an event segment")
        return [bytes(e) for e in events]
    except (ValueError, TypeError) as exc:
        raise CorruptRecordError(f"event segment {path} on the remote is malformed: {exc}"
                                 ) from None


def push_events(connection: Connection, txn: ReadTxn) -> int:
    """Send the events of this store the remote lacks; return how many were sent.

    Segments are named by their first event's number and made by exclusive create, so two
    processes pushing one store at once never write overlapping segments: the one that
    loses the race reads what the other sent and sends the rest.

    Raises:
        RemoteError: the remote's copy of this store's log differs from the log here.
    """
    own = store_id(txn)
    events = list(schema.events(txn))
    for _attempt in range(_RACES):
        segments = _segments(connection, own)
        sent_up_to = -1
        if segments:
            first, path = segments[-1]
            sent = _decode_segment(path, connection.cat([path])[path])
            sent_up_to = first + len(sent) - 1
            for offset, data in enumerate(sent):
                if first + offset < len(events) and events[first + offset][1] != data:
                    raise RemoteError(
                        f"remote {connection.label} holds a different event log for this "
                        f"store (id {own}) than the one here: was the store directory copied? "
                        "Nothing was pushed; give the copy a log of its own by creating a new "
                        "store and pulling into it")
        new = [data for seq, data in events if seq > sent_up_to]
        if not new:
            return 0
        path = f"events/{own}/{sent_up_to + 1:012d}"
        if connection.create(path, encoding.encode([_SEGMENT_TAG, 1, new])):
            return len(new)
    raise RemoteError(f"remote {connection.label}: other processes kept pushing this store's "
                      "events at the same time; push again")


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
        contents = connection.cat([path for _first, path in segments])
        previous: bytes | None = None
        count = 0
        for first, path in segments:
            events = _decode_segment(path, contents[path])
            if first != count:
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
