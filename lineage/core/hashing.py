"""Digests of bytes and files (XXH3-128), and content-defined chunking.

A :class:`Digest` is the 16 raw bytes of an XXH3-128 hash; it prints as 32 lowercase hex
characters. A blob's digest is XXH3-128 of its whole content, so it equals what
``xxh128sum`` prints for the same file, whatever the chunking.

Large content is cut into content-defined chunks (FastCDC 2020, ~64 KiB on average), so an
edit early in a file moves only the chunks around it and the rest deduplicate.
"""

from __future__ import annotations

import functools
import mmap
import os
import threading
from collections.abc import Iterator
from typing import Final, NamedTuple

import xxhash

__all__ = [
    "CHUNK_AVG",
    "CHUNK_MAX",
    "CHUNK_MIN",
    "Chunk",
    "Digest",
    "chunk_buffer",
    "digest_bytes",
    "digest_file",
    "map_file",
]

DIGEST_SIZE: Final = 16
READ_LIMIT: Final = 1024 * 1024  # smaller files are read into memory, larger ones mapped
CHUNK_MIN: Final = 16 * 1024
CHUNK_AVG: Final = 48 * 1024  # FastCDC's effective mean is avg + min: ~64 KiB
CHUNK_MAX: Final = 256 * 1024
_HEX = frozenset("0123456789abcdef")


class Digest(bytes):
    """A 16-byte XXH3-128 digest; ``str()`` gives 32 lowercase hex characters."""

    __slots__ = ()

    def __new__(cls, raw: bytes | bytearray | memoryview) -> Digest:
        """Wrap 16 raw bytes; raise ``ValueError`` for any other length."""
        if len(raw) != DIGEST_SIZE:
            raise ValueError(f"a digest is {DIGEST_SIZE} bytes, got {len(raw)}")
        return super().__new__(cls, raw)

    @classmethod
    def from_hex(cls, text: str) -> Digest:
        """Parse 32 hex characters; raise ``ValueError`` on anything else."""
        if len(text) != 2 * DIGEST_SIZE or not _HEX.issuperset(text.lower()):
            raise ValueError(f"not a 32-character hex digest: {text!r}")
        return cls(bytes.fromhex(text))

    @property
    def hex32(self) -> str:
        """The digest as 32 lowercase hex characters."""
        return self.hex()

    @property
    def short(self) -> str:
        """The first 12 hex characters, for display."""
        return self.hex()[:12]

    def __str__(self) -> str:
        return self.hex()

    def __repr__(self) -> str:
        return f"Digest('{self.hex()}')"


def is_hex(text: str) -> bool:
    """Whether ``text`` is non-empty and made only of lowercase hex characters."""
    return bool(text) and _HEX.issuperset(text)


#: ``Digest(raw)`` without the length check, for slices known to be 16 bytes (index keys)
unchecked_digest: Final = functools.partial(bytes.__new__, Digest)


def digest_bytes(data: bytes | bytearray | memoryview | mmap.mmap) -> Digest:
    """XXH3-128 of ``data``."""
    digest: Digest = unchecked_digest(xxhash.xxh3_128_digest(data))  # always 16 bytes
    return digest


def map_file(path: str | os.PathLike[str]) -> mmap.mmap | bytes:
    """Map a file read-only; a file under ``READ_LIMIT`` bytes is read instead (cheaper
    than a map), and an empty file (which mmap refuses) gives ``b""``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size < READ_LIMIT:
            return _read_all(fd, size)
        return mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    first = os.read(fd, size + 1)
    if len(first) == size:  # all the file held when stat'ed, as a map would see it
        return first
    parts = [first]  # a short read, or a file that grew: read on to the end
    while part := os.read(fd, 64 * 1024):  # small: a read allocates its whole buffer first
        parts.append(part)
    return b"".join(parts)


def digest_file(path: str | os.PathLike[str]) -> Digest:
    """XXH3-128 of a file's content, read through a memory map (a large file is never
    loaded whole)."""
    data = map_file(path)
    try:
        return digest_bytes(data)
    finally:
        if isinstance(data, mmap.mmap):
            data.close()


class Chunk(NamedTuple):
    """One content-defined piece of a blob: where it starts, its bytes and their digest."""

    offset: int
    data: memoryview
    digest: Digest

    @property
    def length(self) -> int:
        """Number of bytes in the chunk."""
        return len(self.data)


_chunker_local = threading.local()


def _chunker() -> object:
    # A FastCDC instance is not safe to share between threads; keep one per thread.
    cdc = getattr(_chunker_local, "cdc", None)
    if cdc is None:
        from pyfastcdc import FastCDC

        cdc = FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX)
        _chunker_local.cdc = cdc
    return cdc


def chunk_buffer(data: bytes | bytearray | memoryview | mmap.mmap) -> Iterator[Chunk]:
    """Cut ``data`` into content-defined chunks, each with its XXH3-128 digest.

    The chunks' ``data`` are views into ``data``; they stay valid while ``data`` does.
    Content shorter than ``CHUNK_MIN`` is one chunk; empty content yields nothing.
    """
    view = memoryview(data)
    if len(view) <= CHUNK_MIN:
        if len(view):
            yield Chunk(0, view, digest_bytes(view))
        return
    for piece in _chunker().cut_buf(view):  # type: ignore[attr-defined]
        part = view[piece.offset : piece.offset + piece.length]
        yield Chunk(piece.offset, part, Digest(xxhash.xxh3_128_digest(part)))
