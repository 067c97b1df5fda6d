"""Blobs: content named by chunks, committed with collision checks, read back verified.

Adding content is two-phase so that LMDB's single writer is held only briefly:

1. staging (:mod:`lineage.storage.staging`, no write transaction): chunk and hash the bytes,
   look up which chunks the store already has, compare those byte for byte (an XXH3
   collision raises :class:`CollisionError`), and write only the new chunks to the
   backend's chunk area (durable before any transaction naming them commits);
2. :meth:`StagedBlob.commit` (inside the caller's write transaction): name the new chunks and
   the blob manifest in the index, after checking that every reused chunk is still there
   (else :class:`ChunkVanished`: stage again) and comparing, byte for byte, whatever another
   writer stored under one of our digests since we staged (else :class:`CollisionError`).

Nothing is visible until phase 2 commits; if it never does, phase 1's bytes are garbage that
``gc`` reclaims.
"""

from __future__ import annotations

import bisect
import functools
import io
import threading
from collections.abc import Callable, Iterator
from typing import Any, Final

import msgpack
import xxhash

from lineage.core import encoding
from lineage.core.encoding import EXT_DIGEST
from lineage.core.hashing import Chunk, Digest, digest_bytes
from lineage.errors import ChunkVanished, CollisionError, IntegrityError, LineageError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn

__all__ = ["BlobFile", "StagedBlob", "check_existing_blob", "check_existing_chunk", "collision",
           "encode_digests", "iter_blob", "read_blob", "same_bytes"]

_NUMPY_COMPARE: Final = 256 * 1024
_COMPARE_BLOCK: Final = 1024 * 1024
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


class StagedBlob:
    """Content whose new chunks are durable but not yet named in the index.

    ``new_locations`` maps each chunk this staging wrote to where it lies; ``children``
    lists the blobs a directory's manifest names; ``written`` counts the bytes it appended.
    ``reused`` marks a blob the store already held when it was staged (a stat-cache hit):
    its chunks are not listed, and committing only checks that it is still there.
    """

    __slots__ = ("backend", "children", "chunks", "digest", "new_locations", "reused", "size",
                 "written")

    def __init__(self, digest: Digest, size: int, chunks: list[Digest],
                 new_locations: dict[Digest, bytes] | None = None,
                 children: list[Digest] | None = None, written: int = 0, *,
                 backend: Backend, reused: bool = False) -> None:
        self.digest = digest
        self.size = size
        self.chunks = chunks
        self.new_locations = {} if new_locations is None else new_locations
        self.children = [] if children is None else children
        self.written = written
        self.backend = backend
        self.reused = reused

    def __repr__(self) -> str:
        return (f"StagedBlob({self.digest}, {self.size} bytes, {len(self.chunks)} chunks, "
                f"{len(self.new_locations)} new, reused={self.reused})")

    def commit(self, txn: WriteTxn) -> bool:
        """Name this blob and its new chunks in ``txn``; return whether the blob is new.

        A chunk we wrote that another writer named meanwhile, and a manifest another writer
        stored meanwhile with other chunks or size, are compared byte for byte with ours.

        Raises:
            ChunkVanished: a reused chunk or reused blob is gone; stage again.
            CollisionError: another writer stored different bytes under one of our digests.
            IntegrityError: stored bytes that should match ours are corrupt, or the blob
                would be stored without chunks although it is not empty.
        """
        stored = schema.raw_manifest(txn, self.digest)
        if self.reused:
            if stored is None:
                raise ChunkVanished(
                    f"content {self.digest.hex()} was removed (by gc) before its add "
                    "committed; stage it again"
                )
            return False
        encoded = encode_digests([self.size, self.chunks, self.children])
        if stored == encoded:  # stored meanwhile (or before) as the same chunks
            for chunk, ours in self.new_locations.items():
                named = schema.chunk_location(txn, chunk)
                if named is not None and named != ours:
                    _check_same_chunk(self.backend, chunk, ours, named)
            return False
        unnamed = self._check_chunks(txn)
        if stored is not None:
            self._check_same_content(txn)
            return False
        if self.size and not self.chunks:
            raise IntegrityError(
                f"refusing to store content {self.digest.hex()} of {self.size} bytes "
                "without its chunks; stage it again"
            )
        for chunk, location in unnamed:
            schema.put_chunk_location(txn, chunk, location)
        schema.put_manifest(txn, self.digest, encoded)
        return True

    def _check_chunks(self, txn: ReadTxn) -> list[tuple[Digest, bytes]]:
        """The chunks to name; compares those another writer named since we wrote them."""
        unnamed = []
        for chunk in self.chunks:
            ours = self.new_locations.get(chunk)
            named = schema.chunk_location(txn, chunk)
            if named is None:
                if ours is None:
                    raise ChunkVanished(
                        f"chunk {chunk.hex()} was removed (by gc) before its add committed; "
                        "stage it again"
                    )
                unnamed.append((chunk, ours))
            elif ours is not None and named != ours:
                _check_same_chunk(self.backend, chunk, ours, named)
        return unnamed

    def _check_same_content(self, txn: ReadTxn) -> None:
        """Compare the stored blob of our digest (other chunks or size) with our bytes."""
        stored = iter_blob(self.backend, txn, self.digest)
        ours = (
            self.backend.read_chunk(self.new_locations.get(chunk) or _location(txn, chunk))
            for chunk in self.chunks
        )
        if not _same_stream(stored, ours):
            for _part in stored:  # corrupt stored content raises IntegrityError instead
                pass
            raise collision(self.digest)


def _location(txn: ReadTxn, chunk: Digest) -> bytes:
    location = schema.chunk_location(txn, chunk)
    if location is None:  # checked just before, in the same transaction
        raise ChunkVanished(f"chunk {chunk.hex()} was removed before its add committed")
    return location


def _check_same_chunk(backend: Backend, digest: Digest, ours: bytes, named: bytes) -> None:
    """Compare the chunk another writer named under ``digest`` with the copy we wrote."""
    stored, mine = backend.read_chunk(named), backend.read_chunk(ours)
    if same_bytes(stored, mine):
        return
    for what, data in (("stored", stored), ("staged", mine)):
        actual = digest_bytes(data)
        if actual != digest:
            raise IntegrityError(
                f"{what} chunk {digest.hex()} is corrupt (its bytes hash to {actual.hex()}); "
                "run `lineage verify`", expected=digest, actual=actual)
    raise collision(digest)


def _same_stream(left: Iterator[memoryview | bytes], right: Iterator[memoryview | bytes]) -> bool:
    """Whether two sequences of buffers, cut at different places, hold the same bytes."""
    a = b = memoryview(b"")
    while True:
        while not a:
            part = next(left, None)
            if part is None:
                break
            a = memoryview(part).cast("B")
        while not b:
            part = next(right, None)
            if part is None:
                break
            b = memoryview(part).cast("B")
        if not a or not b:
            return not a and not b
        n = min(len(a), len(b))
        if not same_bytes(a[:n], b[:n]):
            return False
        a, b = a[n:], b[n:]


def encode_digests(value: list[Any]) -> bytes:
    """``encoding.encode(value)`` for a list of ints, digests and lists of digests: the same
    bytes, without the general normalization (this runs several times per file added, and
    a 1 GiB file's manifest lists ~16k digests). Anything else goes through
    :func:`lineage.core.encoding.encode`.
    """
    packer = getattr(_packers, "packer", None)
    if packer is None:  # one per thread: a Packer is not safe to share
        packer = _packers.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
    parts = [packer.pack_array_header(len(value))]
    for item in value:
        kind = type(item)
        if kind is int and _INT64_MIN <= item <= _UINT64_MAX:
            parts.append(packer.pack(item))
        elif kind is Digest:
            parts.append(_DIGEST_PREFIX + item)
        elif kind is list and all(type(d) is Digest for d in item):
            parts.append(packer.pack_array_header(len(item)))
            if item:
                parts.append(_DIGEST_PREFIX + _DIGEST_PREFIX.join(item))
        else:
            return encoding.encode(value)
    return b"".join(parts)


_DIGEST_PREFIX: Final = bytes((0xD8, EXT_DIGEST))  # msgpack fixext 16, the digest type


def _one_chunk_manifest(size: int, digest: Digest) -> bytes:
    """``encode_digests([size, [digest], []])`` for a small blob, built directly."""
    if size < 0x80:
        packed_size = bytes((size,))  # positive fixint
    elif size < 0x100:
        packed_size = b"\xcc" + bytes((size,))  # uint 8
    elif size < 0x10000:
        packed_size = b"\xcd" + size.to_bytes(2, "big")  # uint 16
    else:
        return encode_digests([size, [digest], []])
    return b"\x93" + packed_size + b"\x91" + _DIGEST_PREFIX + digest + b"\x90"
_packers = threading.local()


def same_bytes(stored: memoryview | bytes, new: memoryview | bytes) -> bool:
    """Whether two buffers hold the same bytes. Large ones are compared in place (no
    copies) by libc's ``memcmp`` through ctypes, or else by numpy; both release the GIL."""
    if len(stored) != len(new):
        return False
    if len(new) < _NUMPY_COMPARE:
        return bytes(stored) == bytes(new)
    import numpy as np

    left, right = np.frombuffer(stored, np.uint8), np.frombuffer(new, np.uint8)
    memcmp = _memcmp()
    if memcmp is not None:  # the arrays keep both buffers alive during the call
        return memcmp(left.ctypes.data, right.ctypes.data, len(left)) == 0
    for start in range(0, len(left), _COMPARE_BLOCK):
        if not np.array_equal(left[start : start + _COMPARE_BLOCK],
                              right[start : start + _COMPARE_BLOCK]):
            return False
    return True


@functools.cache
def _memcmp() -> Callable[[int, int, int], int] | None:
    try:
        import ctypes

        function = ctypes.CDLL(None).memcmp
    except (OSError, AttributeError, TypeError):  # no C library to load by name (Windows)
        return None
    function.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
    function.restype = ctypes.c_int
    return function


def check_existing_chunk(backend: Backend, chunk: Chunk, location: bytes) -> None:
    """Refuse ``chunk`` if the stored chunk of its digest holds other bytes.

    Raises:
        IntegrityError: the stored chunk is corrupt (does not hash to its digest).
        CollisionError: it is intact and differs: an XXH3-128 collision.
    """
    stored = backend.read_chunk(location)
    if same_bytes(stored, chunk.data):
        return
    actual = digest_bytes(stored)
    if actual != chunk.digest:
        raise IntegrityError(
            f"stored chunk {chunk.digest.hex()} is corrupt (its bytes hash to "
            f"{actual.hex()}); run `lineage verify`", expected=chunk.digest, actual=actual)
    raise collision(chunk.digest)


def collision(digest: Digest) -> CollisionError:
    """The error for new content whose digest names different stored content."""
    return CollisionError(
        f"new content has digest {digest.hex()} but differs from the stored content "
        "with that digest (an XXH3-128 collision); nothing was stored", digest=digest)


def check_existing_blob(
    backend: Backend, txn: ReadTxn, digest: Digest, view: memoryview, chunks: list[Digest]
) -> None:
    """Refuse content whose whole digest is stored for different bytes.

    A stored blob with the same size and chunk list holds the same bytes (every chunk was
    just compared); otherwise the stored content is compared byte for byte.
    """
    found = schema.manifest(txn, digest)
    if found is None or (found.size, found.chunks) == (len(view), chunks):
        return
    offset = 0
    for part in iter_blob(backend, txn, digest):
        if not same_bytes(part, view[offset : offset + len(part)]):
            raise collision(digest)
        offset += len(part)
    if offset != len(view):
        raise collision(digest)


def iter_blob(backend: Backend, txn: ReadTxn, digest: Digest) -> Iterator[memoryview | bytes]:
    """Yield a blob's chunks in order, each re-hashed; then check the whole digest.

    Raises:
        IntegrityError: a chunk or the whole content does not match its digest, or the
            blob or one of its chunks is missing (then ``actual`` is ``None``).
    """
    found = schema.manifest(txn, digest)
    if found is None:
        raise IntegrityError(f"content {digest.hex()} is missing from the store; run "
                             "`lineage verify`", expected=digest)
    chunks = found.chunks
    if len(chunks) == 1 and chunks[0] != digest:  # one chunk: its digest is the blob's
        raise IntegrityError(
            f"blob content does not match: expected {digest.hex()}, its manifest names "
            f"chunk {chunks[0].hex()}; run `lineage verify`", expected=digest, actual=chunks[0])
    whole = xxhash.xxh3_128()
    size = 0
    for chunk in chunks:
        location = schema.chunk_location(txn, chunk)
        if location is None:
            raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} is missing; run "
                                 "`lineage verify`", expected=chunk)
        try:
            data = backend.read_chunk(location)
        except LineageError as exc:  # a damaged location, a missing or short pack
            raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} cannot be read: "
                                 f"{exc}", expected=chunk) from None
        actual = digest_bytes(data)
        if actual != chunk:
            raise IntegrityError(
                f"chunk of blob {digest.hex()} is corrupt: expected {chunk.hex()}, "
                f"read {actual.hex()}", expected=chunk, actual=actual)
        if len(chunks) > 1:
            whole.update(data)
        size += len(data)
        yield data
    if len(chunks) > 1 and whole.digest() != digest:
        raise IntegrityError(
            f"blob content does not match: expected {digest.hex()}, read {whole.hexdigest()}",
            expected=digest, actual=Digest(whole.digest()))
    if size != found.size:
        raise IntegrityError(f"the manifest of blob {digest.hex()} gives {found.size} bytes but "
                             f"its chunks hold {size}; run `lineage verify`", expected=digest)
    if not chunks and digest != digest_bytes(b""):
        raise IntegrityError(f"blob {digest.hex()} has no chunks but is not empty",
                             expected=digest, actual=digest_bytes(b""))


def read_blob(backend: Backend, txn: ReadTxn, digest: Digest) -> bytes:
    """The whole content of a blob, verified (see :func:`iter_blob` for what it raises)."""
    # One chunk (small content): its manifest is compared as bytes instead of decoded.
    location = schema.chunk_location(txn, digest)
    if location is not None:
        try:
            data = backend.read_chunk(location)
        except LineageError:  # damaged: iter_blob says which chunk of which blob
            return b"".join(bytes(part) for part in iter_blob(backend, txn, digest))
        if (schema.raw_manifest(txn, digest) == _one_chunk_manifest(len(data), digest)
                and digest_bytes(data) == digest):
            return bytes(data)
    return b"".join(bytes(part) for part in iter_blob(backend, txn, digest))  # or raise why


class BlobFile(io.RawIOBase):
    """A stored blob as a read-only, seekable binary file that reads only what is asked.

    For readers that need a part of a large blob (the footer and a few row groups of a
    Parquet file): a chunk is re-hashed against its digest the first time any of its bytes
    are read, so every byte returned is verified; the digest of the whole blob is checked
    only by :func:`read_blob`, which reads it all. Use it inside the read transaction ``txn``.

    Raises:
        IntegrityError: (on open) the blob or one of its chunks is missing, or the chunk
            sizes do not add up to the blob's; (on read) a chunk read does not match its
            digest.
    """

    def __init__(self, backend: Backend, txn: ReadTxn, digest: Digest) -> None:
        super().__init__()
        found = schema.manifest(txn, digest)
        if found is None:
            raise IntegrityError(f"content {digest.hex()} is missing from the store; run "
                                 "`lineage verify`", expected=digest)
        self.digest = digest
        self._chunks = list(found.chunks)
        self._views: list[memoryview | bytes] = []
        self._starts: list[int] = []
        offset = 0
        for chunk in self._chunks:
            location = schema.chunk_location(txn, chunk)
            if location is None:
                raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} is missing; "
                                     "run `lineage verify`", expected=chunk)
            try:
                view = backend.read_chunk(location)  # a view: nothing is read until sliced
            except LineageError as exc:  # a damaged location, a missing or short pack
                raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} cannot be "
                                     f"read: {exc}", expected=chunk) from None
            self._starts.append(offset)
            self._views.append(view)
            offset += len(view)
        if offset != found.size:
            raise IntegrityError(f"blob {digest.hex()} should hold {found.size} bytes, its "
                                 f"chunks hold {offset}; run `lineage verify`", expected=digest)
        self._size = offset
        self._verified = [False] * len(self._chunks)
        self._position = 0

    def readable(self) -> bool:
        """Always true."""
        return True

    def seekable(self) -> bool:
        """Always true."""
        return True

    def tell(self) -> int:
        """The current position."""
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` from the start, the current position or the end."""
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def size(self) -> int:
        """The blob's length in bytes."""
        return self._size

    def readinto(self, buffer: Any) -> int:
        """Fill ``buffer`` from the current position; return how many bytes were read."""
        target = memoryview(buffer).cast("B")
        written = 0
        while written < len(target) and self._position < self._size:
            index = bisect.bisect_right(self._starts, self._position) - 1
            view = self._chunk(index)
            start = self._position - self._starts[index]
            part = min(len(view) - start, len(target) - written)
            target[written:written + part] = view[start:start + part]
            written += part
            self._position += part
        return written

    def _chunk(self, index: int) -> memoryview | bytes:
        view = self._views[index]
        if not self._verified[index]:
            actual = digest_bytes(view)
            if actual != self._chunks[index]:
                raise IntegrityError(
                    f"chunk of blob {self.digest.hex()} is corrupt: expected "
                    f"{self._chunks[index].hex()}, read {actual.hex()}",
                    expected=self._chunks[index], actual=actual)
            self._verified[index] = True
        return view
