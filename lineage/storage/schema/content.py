"""Content: blob manifests, chunk locations, and the stat cache of files added by path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NamedTuple

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.errors import (
    CorruptRecordError,
    LineageError,
)
from lineage.storage.base import ReadTxn, WriteTxn
from lineage.storage.schema.keys import put_or_delete

# -- blobs, chunks, stat cache --------------------------------------------------------------


class Manifest(NamedTuple):
    """How a blob is stored: its size, its chunks in order, and the blobs it contains."""
    size: int
    chunks: list[Digest]
    children: list[Digest]


def manifest(txn: ReadTxn, digest: Digest) -> Manifest | None:
    """The manifest of a stored blob, or ``None`` (``CorruptRecordError`` if malformed)."""
    data = txn.get("blobs", digest)
    return None if data is None else decode_manifest(digest, data)


def decode_manifest(digest: Digest, data: bytes) -> Manifest:
    """Parse a stored manifest (see :func:`manifest`)."""
    what = f"the manifest of blob {digest.hex()}"
    size, chunks, children = encoding.decode_fields(data, (int, list, list), what)
    if size < 0 or not all(type(d) is Digest for d in (*chunks, *children)):
        raise CorruptRecordError(f"{what} is malformed; run `lineage verify`")
    return Manifest(size, chunks, children)


def raw_manifest(txn: ReadTxn, digest: Digest) -> bytes | None:
    """The stored bytes of a blob's manifest (to compare with an encoded one), or ``None``."""
    return txn.get("blobs", digest)


def put_manifest(txn: WriteTxn, digest: Digest, encoded: bytes | None) -> None:
    """Store a blob's encoded manifest; ``None`` removes it."""
    put_or_delete(txn, "blobs", digest, encoded)


def chunk_location(txn: ReadTxn, digest: Digest) -> bytes | None:
    """Where the backend keeps chunk ``digest``, or ``None``."""
    return txn.get("chunks", digest)


def put_chunk_location(txn: WriteTxn, digest: Digest, location: bytes | None) -> None:
    """Name chunk ``digest`` at ``location``; ``None`` forgets it (compaction frees it)."""
    put_or_delete(txn, "chunks", digest, location)


def digest_entries(txn: ReadTxn, namespace: str) -> Iterator[tuple[Digest, bytes]]:
    """Every ``(digest, stored bytes)`` of ``"records"`` (unverified), ``"blobs"`` (manifests),
    ``"chunks"`` (locations) or ``"added"`` (event numbers), in digest order."""
    return ((encoding.as_digest(key, f"a key of {namespace}"), value)
            for key, value in txn.items(namespace))




class StatEntry(NamedTuple):
    """What a file looked like when its content was hashed."""
    dev: int
    ino: int
    size: int
    mtime_ns: int
    blob: Digest
    stat_ns: int
    ctime_ns: int | None


def stat_key(path: str | os.PathLike[str]) -> bytes:
    """The stat cache key of an absolute path."""
    return os.fsencode(path)


def stat_entry(txn: ReadTxn, key: bytes) -> StatEntry | None:
    """The cached stat of a path, or ``None`` (also for a damaged entry)."""
    raw = txn.get("stat_cache", key)
    try:
        dev, ino, size, mtime_ns, blob, stat_ns, *ctime = encoding.decode(raw or b"")
        return StatEntry(dev, ino, size, mtime_ns, Digest(blob), stat_ns,
                         ctime[0] if ctime else None)
    except (ValueError, TypeError, LineageError):
        return None  # missing; or damaged, which only costs a re-hash


def stat_keys(txn: ReadTxn) -> list[bytes]:
    """The key of every stat cache entry."""
    return [key for key in txn.keys("stat_cache")]


def put_stat_entry(txn: WriteTxn, key: bytes, encoded: bytes | None) -> None:
    """Store an encoded stat cache entry; ``None`` removes it."""
    put_or_delete(txn, "stat_cache", key, encoded)
