"""The event log (appended in the transaction of every write) and store settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from lineage.context import current_user
from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.errors import (
    LineageError,
)
from lineage.storage.base import ReadTxn, WriteTxn
from lineage.storage.schema.keys import EVENT_GENESIS, EVENT_TAG, put_or_delete, seq_key

# -- events and settings --------------------------------------------------------------------


def append_event(txn: WriteTxn, action: str, details: dict[str, Any]) -> int:
    """Append an event to the hash chain (see :mod:`lineage.storage.events`); return its
    sequence number. Its ``prev`` is the SHA-256 of the previous event's stored bytes, and
    its time never runs backwards."""
    last = last_event(txn)
    seq, prev, floor = 0, EVENT_GENESIS, 0.0
    if last is not None:
        from hashlib import sha256  # imported on the first write: opening needs no hashlib
        seq, prev = last[0] + 1, sha256(last[1]).digest()
        try:  # a damaged last event is verify's to report; it then sets no floor
            floor = float(encoding.decode(last[1])[2]["time"])
        except (LineageError, LookupError, TypeError, ValueError, OverflowError):
            pass
    body = {**details, "action": action, "seq": seq, "prev": prev,
            "time": max(time.time(), floor), "user": current_user()}
    txn.put("events", seq_key(seq), encoding.encode([EVENT_TAG, 1, body]))
    return seq


def last_event(txn: ReadTxn) -> tuple[int, bytes] | None:
    """``(sequence number, stored bytes)`` of the newest event, or ``None``."""
    return next(events(txn, reverse=True), None)


def event_time(txn: ReadTxn, seq: int) -> float:
    """When event ``seq`` happened (``KeyError`` if there is no such event)."""
    value = txn.get("events", seq_key(seq))
    if value is None:
        raise KeyError(seq)
    return float(encoding.decode(value)[2]["time"])


def events(txn: ReadTxn, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]:
    """``(sequence number, stored bytes)`` of every event, oldest (or newest) first."""
    return ((int.from_bytes(k, "big"), v) for k, v in txn.items("events", reverse=reverse))


def added_seq(txn: ReadTxn, digest: Digest) -> int | None:
    """The number of the event that added record ``digest`` (``None``: older, or absent)."""
    return None if (value := txn.get("added", digest)) is None else int.from_bytes(value, "big")


def get_setting(txn: ReadTxn, name: str) -> Any:
    """A store-wide setting, or ``None``."""
    value = txn.get("settings", name.encode())
    return None if value is None else encoding.decode(value)


def put_setting(txn: WriteTxn, name: str, value: Any) -> None:
    """Set a store-wide setting (``None`` removes it)."""
    encoded = None if value is None else encoding.encode(value)
    put_or_delete(txn, "settings", name.encode(), encoded)
