"""Point-in-time views: a backend as it stood at a past moment, read-only.

:class:`AsOfBackend` wraps a backend; every read transaction it gives sees the store as of
``when``:

- a record exists if the event that added it came at or before ``when`` (records made
  before the event log existed count as always present, except runs, which exist from their
  start time);
- index entries and edges show only when every record they name exists then;
- versions and history entries show only when written at or before ``when``;
- stages and tags are replayed from the history: each points where its last move at or
  before ``when`` left it (so v1.0 → v1.1 → back to v1.0 answers right for every interval);
- content (chunks, blobs) is read as it is: it is addressed by digest and never changes.

Every query, diff, report or export over such a view answers as of that moment, without
knowing it is one. Writing raises :class:`~lineage.errors.StoreError`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from lineage.core.hashing import Digest
from lineage.errors import StoreError
from lineage.storage import schema
from lineage.storage.base import Backend, KeysFromItems, ReadTxn, WriteTxn

__all__ = ["AsOfBackend"]

T = TypeVar("T")


class AsOfBackend(Backend):
    """A read-only view of ``inner`` as it stood at ``when`` (epoch seconds)."""

    def __init__(self, inner: Backend, when: float) -> None:
        self._inner = inner
        self.when = when

    @property
    def location(self) -> str:
        return self._inner.location

    @property
    def underlying(self) -> Backend:
        return self._inner.underlying

    @contextmanager
    def read(self) -> Iterator[ReadTxn]:  # type: ignore[override]
        with self._inner.read() as txn:
            yield _AsOfTxn(txn, self.when)

    def write(self, apply: Callable[[WriteTxn], T]) -> T:
        raise StoreError("a point-in-time view is read-only; write to the store itself")

    def write_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        raise StoreError("a point-in-time view is read-only; write to the store itself")

    def read_chunk(self, location: bytes) -> memoryview | bytes:
        return self._inner.read_chunk(location)

    def read_run(self, locations: Sequence[bytes]) -> memoryview | bytes | None:
        return self._inner.read_run(locations)

    def compact(self) -> int:
        raise StoreError("a point-in-time view is read-only; run gc on the store itself")

    def close(self) -> None:
        """Nothing to release: the view does not own the backend it looks through."""


class _AsOfTxn(KeysFromItems):
    """A read transaction that hides what did not exist at ``when``."""

    def __init__(self, txn: ReadTxn, when: float) -> None:
        self._txn = txn
        self._when = when
        self._cutoff = _last_event_at_or_before(txn, when)
        self._visible: dict[Digest, bool] = {}
        self._refs: dict[str, dict[bytes, bytes]] | None = None

    def get(self, namespace: str, key: bytes) -> bytes | None:
        if namespace in ("stages", "tags"):
            return self._replayed(namespace).get(bytes(key))
        value = self._txn.get(namespace, key)
        if value is None or not self._shows(namespace, key, value):
            return None
        return value

    def items(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
              ) -> Iterator[tuple[bytes, bytes]]:
        if namespace in ("stages", "tags"):
            table = self._replayed(namespace)
            keys = sorted((k for k in table if k.startswith(prefix)), reverse=reverse)
            yield from ((k, table[k]) for k in keys)
            return
        for key, value in self._txn.items(namespace, prefix, reverse=reverse):
            if self._shows(namespace, key, value):
                yield key, value

    def _shows(self, namespace: str, key: bytes, value: bytes) -> bool:
        if namespace == "version_keys":
            name, version = schema.split_name_key(key)
            entry = schema.version_entry(self._txn, name, version)
            return entry is not None and entry.time <= self._when and self.exists(entry.target)
        when = schema.entry_time(namespace, key, value)
        if when is not None and when > self._when:
            return False
        return all(self.exists(d) for d in schema.entry_records(namespace, key, value))

    def exists(self, digest: Digest) -> bool:
        """Whether record ``digest`` existed at the view's moment."""
        known = self._visible.get(digest)
        if known is None:
            known = self._visible[digest] = self._existed(digest)
        return known

    def _existed(self, digest: Digest) -> bool:
        added = schema.added_seq(self._txn, digest)
        if added is not None:
            return self._cutoff is not None and added <= self._cutoff
        if schema.raw_record(self._txn, digest) is None:
            return False
        if schema.is_kind(self._txn, digest, "run"):  # before the log: a run from its start
            started = getattr(schema.read_record(self._txn, digest), "started", 0.0)
            return float(started) <= self._when
        return True

    def _replayed(self, namespace: str) -> dict[bytes, bytes]:
        if self._refs is None:
            self._refs = _replay_refs(self._txn, self._when)
        return self._refs[namespace]


def _replay_refs(txn: ReadTxn, when: float) -> dict[str, dict[bytes, bytes]]:
    """Stages and tags as the history left them at ``when``, keyed as the store keys them."""
    stages: dict[bytes, bytes] = {}
    tags: dict[bytes, bytes] = {}
    for name in schema.history_names(txn):
        for entry in schema.history(txn, name):
            if entry.time > when:
                continue  # pulled moves keep their own times, so a history need not be sorted
            if entry.ref == "stage":
                table, key = stages, schema.name_key(entry.name, entry.key)
            elif entry.ref == "tag" and entry.name == entry.key:
                table, key = tags, entry.key.encode()
            else:
                continue
            if entry.target is None:
                table.pop(key, None)
            else:
                table[key] = bytes(entry.target)
    return {"stages": stages, "tags": tags}


def _last_event_at_or_before(txn: ReadTxn, when: float) -> int | None:
    """The sequence number of the newest event at or before ``when`` (event times never run
    backwards, so a binary search over sequence numbers finds it)."""
    last = schema.last_event(txn)
    if last is None:
        return None
    times = _EventTimes(txn)
    position = bisect.bisect_right(times, when, hi=last[0] + 1)
    return position - 1 if position > 0 else None


class _EventTimes:
    """Event times by sequence number, read on demand (for :func:`bisect.bisect_right`)."""

    def __init__(self, txn: ReadTxn) -> None:
        self._txn = txn

    def __getitem__(self, seq: int) -> float:
        return schema.event_time(self._txn, seq)

    def __len__(self) -> int:  # pragma: no cover - bisect is always given ``hi``
        raise TypeError("give bisect an upper bound")


def describe_moment(backend: Any) -> float | None:
    """The moment a backend views, or ``None`` for a live store."""
    return backend.when if isinstance(backend, AsOfBackend) else None
