"""The backend contract (lineage.testing.StoreContract) on LMDB and on the memory model."""

from __future__ import annotations

import struct
from pathlib import Path

from lineage.storage.base import Backend
from lineage.storage.lmdb import LmdbBackend
from lineage.storage.memory import MemoryBackend
from lineage.testing import StoreContract, flip_byte


class TestLmdbBackend(StoreContract):
    persistent = True

    def make_backend(self, path: Path) -> Backend:
        return LmdbBackend(path)

    def corrupt_chunk(self, backend: Backend, location: bytes) -> None:
        offset, _length = struct.unpack_from(">QQ", location)
        pack = Path(backend.location) / "packs" / f"{location[16:].decode()}.pack"
        flip_byte(pack, offset)


class TestMemoryBackend(StoreContract):
    persistent = False

    def make_backend(self, path: Path) -> Backend:
        return MemoryBackend()

    def corrupt_chunk(self, backend: Backend, location: bytes) -> None:
        assert isinstance(backend, MemoryBackend)
        data = bytearray(backend.read_chunk(location))
        data[0] ^= 0xFF
        backend.corrupt_chunk(location, bytes(data))
