"""Blobs: content cut into chunks, deduplicated, checked for collisions, read back verified.

Adding content is two-phase so that LMDB's single writer is held only briefly:

1. :func:`stage` (no write transaction): chunk and hash the bytes, look up which chunks the
   store already has, compare those byte for byte (an XXH3 collision raises
   :class:`CollisionError`), and write only the new chunks to the backend's durable chunk area.
2. :meth:`StagedBlob.commit` (inside the caller's write transaction): name the new chunks and
   the blob manifest in the index, after checking that every reused chunk is still there.

Nothing is visible until phase 2 commits; if it never does, phase 1's bytes are garbage that
``gc`` reclaims.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import xxhash

from . import encoding
from .errors import CollisionError, IntegrityError
from .hashing import Chunk, Digest, chunk_buffer, digest_bytes
from .stores.base import Backend, ReadTxn, WriteTxn

__all__ = ["StagedBlob", "iter_blob", "read_blob", "stage"]

_PARALLEL_WHOLE_HASH: Final = 8 * 1024 * 1024
_NUMPY_COMPARE: Final = 256 * 1024


class ChunkVanished(Exception):
    """A chunk reused by a staged blob was removed (by gc) before it committed."""


@dataclass(slots=True)
class StagedBlob:
    """Content whose new chunks are durable but not yet named in the index."""

    digest: Digest
    size: int
    chunks: list[Digest]
    new_locations: dict[Digest, bytes] = field(default_factory=dict)
    children: list[Digest] = field(default_factory=list)
    written: int = 0

    def commit(self, txn: WriteTxn) -> bool:
        """Name this blob and its new chunks in ``txn``; return whether the blob is new.

        Raises:
            ChunkVanished: a reused chunk is gone; stage again.
        """
        if txn.get("blobs", self.digest) is not None:
            return False
        for chunk in self.chunks:
            location = self.new_locations.get(chunk)
            if location is not None:
                if txn.get("chunks", chunk) is None:
                    txn.put("chunks", chunk, location)
            elif txn.get("chunks", chunk) is None:
                raise ChunkVanished(chunk.hex())
        manifest = [self.size, list(self.chunks), list(self.children)]
        txn.put("blobs", self.digest, encoding.encode(manifest))
        return True


def _same_bytes(stored: memoryview | bytes, new: memoryview | bytes) -> bool:
    if len(stored) != len(new):
        return False
    if len(new) >= _NUMPY_COMPARE:
        import numpy as np

        return bool(
            np.array_equal(np.frombuffer(stored, np.uint8), np.frombuffer(new, np.uint8))
        )
    return bytes(stored) == bytes(new)


def _check_existing(backend: Backend, chunk: Chunk, location: bytes) -> None:
    stored = backend.read_chunk(location)
    if _same_bytes(stored, chunk.data):
        return
    if digest_bytes(stored) != chunk.digest:
        raise IntegrityError(
            f"stored chunk {chunk.digest.hex()} is corrupt (its bytes hash to "
            f"{digest_bytes(stored).hex()}); run `lineage verify`"
        )
    raise _collision(chunk.digest)


def _collision(digest: Digest) -> CollisionError:
    return CollisionError(
        f"new content has digest {digest.hex()} but differs from the stored content "
        "with that digest (an XXH3-128 collision); nothing was stored"
    )


def _check_existing_blob(
    backend: Backend, txn: ReadTxn, digest: Digest, view: memoryview, chunks: list[Digest]
) -> None:
    """Refuse content whose whole digest is stored for different bytes.

    A stored blob with the same size and chunk list holds the same bytes (every chunk was
    just compared); otherwise the stored content is compared byte for byte.
    """
    found = manifest(txn, digest)
    if found is None or (found[0], found[1]) == (len(view), chunks):
        return
    offset = 0
    for part in iter_blob(backend, txn, digest):
        if not _same_bytes(part, view[offset : offset + len(part)]):
            raise _collision(digest)
        offset += len(part)
    if offset != len(view):
        raise _collision(digest)


def stage(
    backend: Backend,
    data: bytes | bytearray | memoryview | Any,
    *,
    children: Sequence[Digest] = (),
    known: dict[Digest, bytes] | None = None,
) -> StagedBlob:
    """Chunk, hash, dedupe and durably write the new chunks of ``data`` (phase 1).

    ``known`` maps chunk digests already written earlier in the same batch to their
    locations, so a batch of files sharing chunks writes each once.

    Raises:
        CollisionError: a chunk's digest is stored with different bytes.
        IntegrityError: a stored chunk that should match is corrupt.
    """
    view = memoryview(data)
    whole: list[Digest] = []
    hasher = None
    if len(view) >= _PARALLEL_WHOLE_HASH:  # xxhash releases the GIL: overlap with chunking
        hasher = threading.Thread(target=lambda: whole.append(digest_bytes(view)))
        hasher.start()
    chunks = list(chunk_buffer(view))
    known = {} if known is None else known
    pending: list[Chunk] = []
    seen_here: dict[Digest, Chunk] = {}
    with backend.read() as txn:
        for chunk in chunks:
            first = seen_here.setdefault(chunk.digest, chunk)
            if first is not chunk:  # a repeat within this content: same bytes, or a collision
                if not _same_bytes(first.data, chunk.data):
                    raise _collision(chunk.digest)
                continue
            location = known.get(chunk.digest) or txn.get("chunks", chunk.digest)
            if location is None:
                pending.append(chunk)
            else:
                _check_existing(backend, chunk, location)
        if hasher is not None:  # chunking outlasts hashing, so joining here costs nothing
            hasher.join()
            digest = whole[0]
        else:
            digest = chunks[0].digest if len(chunks) == 1 else digest_bytes(view)
        _check_existing_blob(backend, txn, digest, view, [c.digest for c in chunks])
    locations = backend.write_chunks([(c.digest, c.data) for c in pending])
    new_locations = dict(zip((c.digest for c in pending), locations, strict=True))
    known.update(new_locations)
    return StagedBlob(
        digest=digest,
        size=len(view),
        chunks=[c.digest for c in chunks],
        new_locations=new_locations,
        children=list(children),
        written=sum(len(c.data) for c in pending),
    )


def manifest(txn: ReadTxn, digest: Digest) -> tuple[int, list[Digest], list[Digest]] | None:
    """``(size, chunk digests, child blob digests)`` of a stored blob, or ``None``."""
    data = txn.get("blobs", digest)
    if data is None:
        return None
    size, chunks, children = encoding.decode(data)
    return size, [Digest(c) for c in chunks], [Digest(c) for c in children]


def iter_blob(backend: Backend, txn: ReadTxn, digest: Digest) -> Iterator[memoryview | bytes]:
    """Yield a blob's chunks in order, each re-hashed; then check the whole digest.

    Raises:
        IntegrityError: a chunk or the whole content does not match its digest, or a
            chunk is missing.
    """
    found = manifest(txn, digest)
    if found is None:
        raise IntegrityError(f"blob {digest.hex()} is missing from the store")
    _size, chunks, _children = found
    if len(chunks) == 1 and chunks[0] != digest:  # one chunk: its digest is the blob's
        raise IntegrityError(
            f"blob content does not match: expected {digest.hex()}, its manifest names "
            f"chunk {chunks[0].hex()}; run `lineage verify`"
        )
    whole = xxhash.xxh3_128()
    for chunk in chunks:
        location = txn.get("chunks", chunk)
        if location is None:
            raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} is missing")
        data = backend.read_chunk(location)
        actual = digest_bytes(data)
        if actual != chunk:
            raise IntegrityError(
                f"chunk of blob {digest.hex()} is corrupt: expected {chunk.hex()}, "
                f"read {actual.hex()}"
            )
        if len(chunks) > 1:
            whole.update(data)
        yield data
    if len(chunks) > 1 and whole.digest() != digest:
        raise IntegrityError(
            f"blob content does not match: expected {digest.hex()}, read {whole.hexdigest()}"
        )
    if not chunks and digest != digest_bytes(b""):
        raise IntegrityError(f"blob {digest.hex()} has no chunks but is not empty")


def read_blob(backend: Backend, txn: ReadTxn, digest: Digest) -> bytes:
    """The whole content of a blob, verified."""
    return b"".join(bytes(part) for part in iter_blob(backend, txn, digest))
