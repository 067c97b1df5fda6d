"""The backend contract (lineage.testing.StoreContract) on LMDB and on the memory model."""

from __future__ import annotations

from pathlib import Path

from lineage.storage.base import Backend
from lineage.storage.lmdb import LmdbBackend
from lineage.storage.memory import MemoryBackend
from lineage.testing import StoreContract, flip_chunk_byte


class TestLmdbBackend(StoreContract):
    persistent = True

    def make_backend(self, path: Path) -> Backend:
        return LmdbBackend(path)

    def corrupt_chunk(self, backend: Backend, location: bytes) -> None:
        with backend.read() as txn:
            (chunk,) = [key for key, value in txn.items("chunks") if value == location]
        flip_chunk_byte(backend, chunk, 0)


class TestMemoryBackend(StoreContract):
    persistent = False

    def make_backend(self, path: Path) -> Backend:
        return MemoryBackend()

    def corrupt_chunk(self, backend: Backend, location: bytes) -> None:
        assert isinstance(backend, MemoryBackend)
        data = bytearray(backend.read_chunk(location))
        data[0] ^= 0xFF
        backend.corrupt_chunk(location, bytes(data))
