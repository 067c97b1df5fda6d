"""Faults a test plants in a real store: a snapshot of every namespace to compare with, an
XXH3 collision, a flipped byte in a file or in a stored chunk (wherever the chunk lives)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import xxhash

from lineage.core.hashing import Digest
from lineage.storage.base import Backend
from lineage.storage.schema import NAMESPACES

__all__ = ["collide", "flip_byte", "flip_chunk_byte", "snapshot"]


def snapshot(backend: Backend) -> dict[str, dict[bytes, bytes]]:
    """Every key and value of every namespace, to compare a store before and after."""
    with backend.read() as txn:
        return {ns: dict(txn.items(ns)) for ns in NAMESPACES}


class _CollidingXxhash:
    """``xxhash`` whose XXH3-128 maps some digests to others: a crafted collision."""

    def __init__(self, mapping: dict[bytes, bytes]) -> None:
        self.mapping = mapping

    def xxh3_128_digest(self, data: Any) -> bytes:
        real: bytes = xxhash.xxh3_128_digest(data)
        return self.mapping.get(real, real)

    def __getattr__(self, name: str) -> Any:
        return getattr(xxhash, name)


def collide(monkeypatch: pytest.MonkeyPatch, evil: bytes, good: bytes) -> None:
    """Make content ``evil`` hash to the digest of ``good`` everywhere lineage hashes."""
    from lineage.core import hashing

    real = xxhash.xxh3_128_digest
    monkeypatch.setattr(hashing, "xxhash", _CollidingXxhash({real(evil): real(good)}))


def flip_byte(path: Path, offset: int) -> None:
    """Invert one byte of a file in place (to simulate bit rot)."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([old[0] ^ 0xFF]))


def flip_chunk_byte(backend: Backend, chunk: bytes, index: int) -> None:
    """Invert byte ``index`` of stored chunk ``chunk`` of an LMDB backend, where it lives:
    a pack file, or the LMDB value of a small chunk kept inline (see
    :mod:`lineage.storage.lmdb`)."""
    from lineage.storage import schema
    from lineage.storage.packs import split_location

    with backend.read() as txn:
        location = schema.chunk_location(txn, Digest(chunk))
    if location is None:
        raise KeyError(f"no chunk {chunk.hex()}")
    if location[:1] == b"=":  # inline: the location holds the bytes
        flipped = bytearray(location)
        flipped[1 + index] ^= 0xFF
        backend.write(lambda txn: schema.put_chunk_location(txn, Digest(chunk), bytes(flipped)))
        return
    offset, _length, pack = split_location(location)
    flip_byte(Path(backend.location) / "packs" / f"{pack}.pack", offset + index)
