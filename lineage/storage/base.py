"""The storage interface every backend implements: namespaced keys, transactions, chunk bytes.

A backend knows nothing of records or revisions. It offers

- read transactions (:meth:`Backend.read`) over the named namespaces of ``bytes -> bytes``
  listed in :data:`lineage.storage.schema.NAMESPACES` (whose module owns every key layout);
- atomic write transactions (:meth:`Backend.write`): a function is run against a write
  transaction and either all its puts and deletes become visible together or none do. The
  function may be called more than once (a backend retries after growing its map), so it
  must not have side effects outside the transaction;
- chunk bytes (:meth:`Backend.write_chunks`, :meth:`Backend.read_chunk`): written and made
  durable *outside* the write transaction, returning an opaque location that the caller
  stores in the ``chunks`` namespace inside one. Until that transaction commits, the bytes
  are unreachable garbage, which :meth:`Backend.compact` may reclaim.

``lineage.testing.StoreContract`` is the test suite every backend must pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol, TypeVar

__all__ = ["Backend", "ReadTxn", "WriteTxn"]

T = TypeVar("T")

class ReadTxn(Protocol):
    """A consistent read-only view of the store."""

    def get(self, namespace: str, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        ...

    def items(
        self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs whose key starts with ``prefix``, in key order."""
        ...

    def keys(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
             ) -> Iterator[bytes]:
        """The keys of :meth:`items`, in the same order (index scans need no values)."""
        ...


class KeysFromItems:
    """``keys()`` for a transaction type whose ``items()`` is all it has (the in-memory
    views); LMDB's own transaction reads keys without their values instead."""

    def items(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
              ) -> Iterator[tuple[bytes, bytes]]:
        raise NotImplementedError

    def keys(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
             ) -> Iterator[bytes]:
        """The keys of :meth:`items`, in the same order."""
        return (key for key, _ in self.items(namespace, prefix, reverse=reverse))


class WriteTxn(ReadTxn, Protocol):
    """A read view that can also change the store, all at once on commit."""

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        ...

    def delete(self, namespace: str, key: bytes) -> bool:
        """Remove ``key``; return whether it was there."""
        ...


class Backend(ABC):
    """Durable storage for one store directory (or memory)."""

    @property
    def underlying(self) -> Backend:
        """The backend holding this one's records: itself, or for a view (a point-in-time
        view), the backend it looks through. Two handles whose backends share one
        ``underlying`` are handles on the same store."""
        return self

    @abstractmethod
    def read(self) -> ReadTxnContext:
        """A context manager yielding a :class:`ReadTxn`."""

    @abstractmethod
    def write(self, apply: Callable[[WriteTxn], T]) -> T:
        """Run ``apply`` in one atomic write transaction and return its result.

        If ``apply`` raises, nothing it did is kept and the exception propagates.
        ``apply`` may run more than once; it must only act through the transaction.
        """

    @abstractmethod
    def write_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        """Durably store chunk bytes outside any transaction; return one location each."""

    @abstractmethod
    def read_chunk(self, location: bytes) -> memoryview | bytes:
        """The bytes at ``location`` (as returned by :meth:`write_chunks`)."""

    # Optional refinements, used when adding large content; the defaults are always correct.

    def append_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        """Like :meth:`write_chunks`, but the bytes need only be durable after
        :meth:`sync_chunks`, so that the disk can work while the caller chunks."""
        return self.write_chunks(chunks)

    def sync_chunks(self) -> None:
        """Make every chunk this process stored with :meth:`append_chunks` durable before
        any later write transaction of this backend commits (at once, or as it begins)."""
        return None  # write_chunks, the default append_chunks, is durable already

    def read_run(self, locations: Sequence[bytes]) -> memoryview | bytes | None:
        """The bytes of chunks stored back to back, as one buffer; ``None`` when they are
        not, and the caller reads them one by one."""
        return None

    def discard_chunks(self, locations: Sequence[bytes]) -> None:
        """Take back chunks stored but never named by a committed transaction (an add that
        failed). Best effort: what stays is garbage for :meth:`compact`."""
        return None  # the default keeps them, as garbage

    def orphaned_bytes(self) -> int:
        """Bytes of stored chunks that nothing names (left by failed or killed adds) and
        :meth:`compact` would reclaim now."""
        return 0

    def check_structure(self) -> list[str]:
        """Problems in the backend's own files that reading through it could crash on
        (checked without reading through it); ``[]`` when there are none or it has none."""
        return []

    @abstractmethod
    def compact(self) -> int:
        """Reclaim the bytes of chunks no longer named in the ``chunks`` namespace.

        Live chunks may move; their locations are updated in the same transaction that
        makes the move visible. Returns the number of bytes freed.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the backend; further use raises :class:`~lineage.errors.StoreError`."""

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the store lives (a directory, or ``":memory:"``)."""


class ReadTxnContext(Protocol):
    """What :meth:`Backend.read` returns."""

    def __enter__(self) -> ReadTxn: ...

    def __exit__(self, *exc: object) -> None: ...
