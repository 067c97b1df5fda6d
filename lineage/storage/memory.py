"""An in-memory backend: plain dicts, used as the reference model in tests.

It keeps the same atomicity contract as LMDB: a write transaction works on a copy-on-write
overlay that replaces the committed state only when the transaction function returns.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

from lineage.errors import StoreError
from lineage.storage.base import Backend, KeysFromItems
from lineage.storage.schema import NAMESPACES

__all__ = ["MemoryBackend"]

T = TypeVar("T")
_DELETED = object()


class _Snapshot(KeysFromItems):
    """A read view over one committed state."""

    def __init__(self, state: dict[str, dict[bytes, bytes]]) -> None:
        self._state = state

    def get(self, namespace: str, key: bytes) -> bytes | None:
        return self._state[namespace].get(bytes(key))

    def items(
        self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        table = self._state[namespace]
        keys = sorted(k for k in table if k.startswith(prefix))
        if reverse:
            keys.reverse()
        for key in keys:
            yield key, table[key]


class _Overlay(_Snapshot):
    """A write transaction: changes recorded aside until commit."""

    def __init__(self, state: dict[str, dict[bytes, bytes]]) -> None:
        super().__init__(state)
        self.changes: dict[str, dict[bytes, object]] = {ns: {} for ns in NAMESPACES}

    def get(self, namespace: str, key: bytes) -> bytes | None:
        key = bytes(key)
        changed = self.changes[namespace].get(key)
        if changed is _DELETED:
            return None
        if changed is not None:
            return changed  # type: ignore[return-value]
        return super().get(namespace, key)

    def items(
        self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        merged = dict(self._state[namespace])
        for key, value in self.changes[namespace].items():
            if value is _DELETED:
                merged.pop(key, None)
            else:
                merged[key] = value  # type: ignore[assignment]
        keys = sorted(k for k in merged if k.startswith(prefix))
        if reverse:
            keys.reverse()
        for key in keys:
            yield key, merged[key]

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        self.changes[namespace][bytes(key)] = bytes(value)

    def delete(self, namespace: str, key: bytes) -> bool:
        existed = self.get(namespace, key) is not None
        self.changes[namespace][bytes(key)] = _DELETED
        return existed


class MemoryBackend(Backend):
    """Dict-backed storage; nothing survives the process."""

    def __init__(self) -> None:
        self._state: dict[str, dict[bytes, bytes]] = {ns: {} for ns in NAMESPACES}
        self._chunk_bytes: list[bytes] = []
        self._lock = threading.RLock()
        self._closed = False

    @property
    def location(self) -> str:
        return ":memory:"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("the store is closed; open it again with lineage.open()")

    @contextmanager
    def read(self) -> Iterator[_Snapshot]:  # type: ignore[override]
        self._check_open()
        with self._lock:
            frozen = {ns: dict(table) for ns, table in self._state.items()}
        yield _Snapshot(frozen)

    def write(self, apply: Callable[[_Overlay], T]) -> T:
        self._check_open()
        with self._lock:
            overlay = _Overlay(self._state)
            result = apply(overlay)
            for namespace, changes in overlay.changes.items():
                table = self._state[namespace]
                for key, value in changes.items():
                    if value is _DELETED:
                        table.pop(key, None)
                    else:
                        table[key] = value  # type: ignore[assignment]
            return result

    def write_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        self._check_open()
        with self._lock:
            locations = []
            for _digest, data in chunks:
                locations.append(len(self._chunk_bytes).to_bytes(8, "big"))
                self._chunk_bytes.append(bytes(data))
            return locations

    def read_chunk(self, location: bytes) -> bytes:
        self._check_open()
        index = int.from_bytes(location, "big")
        if not 0 <= index < len(self._chunk_bytes):
            raise StoreError(f"chunk location {location.hex()} is outside the store")
        return self._chunk_bytes[index]

    def corrupt_chunk(self, location: bytes, data: bytes) -> None:
        """Overwrite stored chunk bytes in place (for tests of integrity checks)."""
        self._chunk_bytes[int.from_bytes(location, "big")] = data

    def orphaned_bytes(self) -> int:
        self._check_open()
        with self._lock:
            live = {int.from_bytes(v, "big") for v in self._state["chunks"].values()}
            return sum(len(data) for index, data in enumerate(self._chunk_bytes)
                       if index not in live)

    def compact(self) -> int:
        self._check_open()
        with self._lock:
            live = {int.from_bytes(v, "big") for v in self._state["chunks"].values()}
            freed = 0
            for index, data in enumerate(self._chunk_bytes):
                if index not in live and data:
                    freed += len(data)
                    self._chunk_bytes[index] = b""
            return freed

    def close(self) -> None:
        self._closed = True

