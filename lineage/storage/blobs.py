"""Blobs: content cut into chunks, deduplicated, checked for collisions, read back verified.

Adding content is two-phase so that LMDB's single writer is held only briefly:

1. :func:`stage` (no write transaction): chunk and hash the bytes, look up which chunks the
   store already has, compare those byte for byte (an XXH3 collision raises
   :class:`CollisionError`), and write only the new chunks to the backend's chunk area
   (durable before any transaction naming them commits; see :class:`Stager`).
2. :meth:`StagedBlob.commit` (inside the caller's write transaction): name the new chunks and
   the blob manifest in the index, after checking that every reused chunk is still there
   (else :class:`ChunkVanished`: stage again) and comparing, byte for byte, whatever another
   writer stored under one of our digests since we staged (else :class:`CollisionError`).

Nothing is visible until phase 2 commits; if it never does, phase 1's bytes are garbage that
``gc`` reclaims.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import msgpack
import xxhash

from lineage.core import encoding
from lineage.core.encoding import EXT_DIGEST
from lineage.core.hashing import CHUNK_MIN, Chunk, Digest, chunk_buffer, digest_bytes
from lineage.errors import ChunkVanished, CollisionError, IntegrityError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn

__all__ = ["StagedBlob", "Stager", "encode_digests", "iter_blob", "read_blob", "stage"]

T = TypeVar("T")

_BACKGROUND: Final = 8 * 1024 * 1024  # content this large hashes, compares, writes on workers
_WRITE_BATCH: Final = 4 * 1024 * 1024  # queued new bytes that start a background write
_WRITES_IN_FLIGHT: Final = 16  # batches being written at once, at most (64 MiB)
_RUN: Final = 32 * 1024 * 1024  # reused bytes compared in one job at most
_NUMPY_COMPARE: Final = 256 * 1024
_COMPARE_BLOCK: Final = 1024 * 1024
_RENEW_S: Final = 1.0  # age at which the shared read transaction is renewed
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1


@dataclass(slots=True)
class StagedBlob:
    """Content whose new chunks are durable but not yet named in the index.

    ``reused`` marks a blob the store already held when it was staged (a stat-cache hit):
    its chunks are not listed, and committing only checks that it is still there.
    """

    digest: Digest
    size: int
    chunks: list[Digest]
    new_locations: dict[Digest, bytes] = field(default_factory=dict)
    children: list[Digest] = field(default_factory=list)
    written: int = 0
    backend: Backend = field(kw_only=True, repr=False, compare=False)
    reused: bool = field(default=False, kw_only=True)

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
            raise _collision(self.digest)


def _location(txn: ReadTxn, chunk: Digest) -> bytes:
    location = schema.chunk_location(txn, chunk)
    if location is None:  # checked just before, in the same transaction
        raise ChunkVanished(f"chunk {chunk.hex()} was removed before its add committed")
    return location


def _check_same_chunk(backend: Backend, digest: Digest, ours: bytes, named: bytes) -> None:
    """Compare the chunk another writer named under ``digest`` with the copy we wrote."""
    stored, mine = backend.read_chunk(named), backend.read_chunk(ours)
    if _same_bytes(stored, mine):
        return
    for what, data in (("stored", stored), ("staged", mine)):
        actual = digest_bytes(data)
        if actual != digest:
            raise IntegrityError(
                f"{what} chunk {digest.hex()} is corrupt (its bytes hash to {actual.hex()}); "
                "run `lineage verify`", expected=digest, actual=actual)
    raise _collision(digest)


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
        if not _same_bytes(a[:n], b[:n]):
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
_packers = threading.local()


def _same_bytes(stored: memoryview | bytes, new: memoryview | bytes) -> bool:
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


def _check_existing(backend: Backend, chunk: Chunk, location: bytes) -> None:
    stored = backend.read_chunk(location)
    if _same_bytes(stored, chunk.data):
        return
    actual = digest_bytes(stored)
    if actual != chunk.digest:
        raise IntegrityError(
            f"stored chunk {chunk.digest.hex()} is corrupt (its bytes hash to "
            f"{actual.hex()}); run `lineage verify`", expected=chunk.digest, actual=actual)
    raise _collision(chunk.digest)


def _collision(digest: Digest) -> CollisionError:
    return CollisionError(
        f"new content has digest {digest.hex()} but differs from the stored content "
        "with that digest (an XXH3-128 collision); nothing was stored", digest=digest)


def _check_existing_blob(
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
    locations, so a batch of files sharing chunks writes each once. To stage many blobs
    with one write, use a :class:`Stager`.

    Raises:
        CollisionError: a chunk's digest is stored with different bytes.
        IntegrityError: a stored chunk that should match is corrupt.
    """
    with Stager(backend, known=known) as stager:
        return stager.add(data, children=children)


_Run = list[tuple[bytes, Chunk]]  # reused chunks, back to back in the new content


class Stager:
    """Stages the blobs of one add: chunk, hash, dedupe, compare, write the new chunks.

    New chunks are queued and appended in few large batches, then made durable with one
    sync when the add drains (one fsync for a directory of small files or a 1 GiB file).
    For content of ``_BACKGROUND`` bytes or more, the whole-content hash, the byte
    comparisons of reused chunks (joined into long runs) and the appends run on two worker
    threads while this thread chunks: xxhash, numpy and file writes release the GIL.

    A :class:`StagedBlob` from :meth:`add` is complete (its new chunks written and
    compared) only after :meth:`finish`. Data given to :meth:`add` must stay valid until
    :meth:`drain` or :meth:`finish` returns. Used as a context manager, leaving the block
    finishes; leaving it with an error (or a failing finish) waits for the workers and takes
    back what was written, so a failed add stores nothing.
    """

    def __init__(self, backend: Backend, *, known: dict[Digest, bytes] | None = None) -> None:
        self._backend = backend
        self._known = {} if known is None else known
        self._located: dict[Digest, bytes] = {}  # written by this stager
        self._unwritten: dict[Digest, memoryview | bytes] = {}  # queued, not yet located
        self._queue: list[tuple[Digest, memoryview | bytes]] = []
        self._queued_bytes = 0
        self._writes: list[Future[list[tuple[Digest, bytes]]]] = []
        self._checks: list[Future[None]] = []
        self._blobs: list[StagedBlob] = []
        self._pool: ThreadPoolExecutor | None = None
        self._unsynced = False  # chunks appended since the last sync
        self._reading: AbstractContextManager[ReadTxn] | None = None
        self._txn: ReadTxn | None = None
        self._txn_since = 0.0

    def __enter__(self) -> Stager:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> None:
        if kind is not None:
            self.abort()
            return
        try:
            self.finish()
        except BaseException:
            self.abort()
            raise

    def add(self, data: bytes | bytearray | memoryview | Any, *,
            children: Sequence[Digest] = ()) -> StagedBlob:
        """Stage one blob; its checks and writes may still be running when this returns.

        Raises:
            CollisionError: a chunk's digest is stored (or queued) with different bytes.
            IntegrityError: a stored chunk that should match is corrupt.
        """
        view = memoryview(data)
        if 0 < len(view) <= CHUNK_MIN:
            return self._add_one_chunk(view, children)
        background = len(view) >= _BACKGROUND
        whole = self._submit(digest_bytes, view) if background else None
        try:
            txn = self.reader()
            digests, written = self._add_chunks(txn, view, background)
            if whole is not None:  # chunking outlasts hashing: this rarely waits
                digest = whole.result()
            else:
                digest = digests[0] if len(digests) == 1 else digest_bytes(view)
            _check_existing_blob(self._backend, txn, digest, view, digests)
        except BaseException:
            self._wait_all(whole)  # no worker may still read ``data`` once we return
            raise
        blob = StagedBlob(digest, len(view), digests, children=list(children), written=written,
                          backend=self._backend)
        self._blobs.append(blob)
        return blob

    def _add_one_chunk(self, view: memoryview, children: Sequence[Digest]) -> StagedBlob:
        # The common case of a directory of small files: one chunk, whose digest is the
        # blob's; the same steps as _add_chunks, without its per-content bookkeeping.
        digest = digest_bytes(view)
        txn = self.reader()
        written = 0
        queued = self._unwritten.get(digest)
        if queued is not None:
            if not _same_bytes(queued, view):
                raise _collision(digest)
        else:
            location = (
                self._located.get(digest) or self._known.get(digest)
                or schema.chunk_location(txn, digest)
            )
            if location is None:
                self._enqueue(digest, view)
                written = len(view)
            else:
                _check_existing(self._backend, Chunk(0, view, digest), location)
        _check_existing_blob(self._backend, txn, digest, view, [digest])
        blob = StagedBlob(digest, len(view), [digest], children=list(children), written=written,
                          backend=self._backend)
        self._blobs.append(blob)
        return blob

    def reader(self) -> ReadTxn:
        """A read transaction shared by this stager's lookups (and its caller's), renewed
        every ``_RENEW_S`` seconds so that a long add does not pin an old snapshot."""
        now = time.monotonic()
        if self._txn is None or now - self._txn_since > _RENEW_S:
            self._end_read()
            self._reading = self._backend.read()
            self._txn = self._reading.__enter__()
            self._txn_since = now
        return self._txn

    def _end_read(self) -> None:
        reading, self._reading, self._txn = self._reading, None, None
        if reading is not None:
            reading.__exit__(None, None, None)

    def _add_chunks(
        self, txn: ReadTxn, view: memoryview, background: bool
    ) -> tuple[list[Digest], int]:
        # The per-chunk loop of a large add: names looked up once, runs kept inline.
        digests: list[Digest] = []
        written = 0
        seen: dict[Digest, Chunk] = {}
        run: _Run = []
        run_start = run_end = -1
        queued_get, located_get, known_get = (
            self._unwritten.get, self._located.get, self._known.get
        )
        for chunk in chunk_buffer(view):
            digest = chunk.digest
            digests.append(digest)
            first = seen.setdefault(digest, chunk)
            if first is not chunk:  # a repeat within this content: same bytes, or a collision
                if not _same_bytes(first.data, chunk.data):
                    raise _collision(digest)
                continue
            queued = queued_get(digest)
            if queued is not None:  # queued by an earlier blob of this add
                if not _same_bytes(queued, chunk.data):
                    raise _collision(digest)
                continue
            location = located_get(digest) or known_get(digest) or schema.chunk_location(txn, digest)
            if location is None:
                self._enqueue(digest, chunk.data)
                written += len(chunk.data)
            elif not background:
                _check_existing(self._backend, chunk, location)
            else:  # compared later on a worker, with its neighbours
                offset = chunk.offset
                if run and (offset != run_end or offset - run_start >= _RUN):
                    self._checks.append(self._submit(_compare_run, self._backend, view, run))
                    run = []
                if not run:
                    run_start = offset
                run.append((location, chunk))
                run_end = offset + len(chunk.data)
        if run:
            self._checks.append(self._submit(_compare_run, self._backend, view, run))
        return digests, written

    def _enqueue(self, digest: Digest, data: memoryview) -> None:
        self._queue.append((digest, data))
        self._unwritten[digest] = data
        self._queued_bytes += len(data)
        if self._queued_bytes >= _WRITE_BATCH:
            while len(self._writes) >= _WRITES_IN_FLIGHT:  # bound the memory held by writes
                self._located_from(self._writes.pop(0).result())
            self._writes.append(self._submit(self._write, self._take_queue()))

    def _take_queue(self) -> list[tuple[Digest, memoryview | bytes]]:
        batch, self._queue, self._queued_bytes = self._queue, [], 0
        return batch

    def _write(self, batch: list[tuple[Digest, memoryview | bytes]]) -> list[tuple[Digest, bytes]]:
        locations = self._backend.append_chunks(batch)
        return list(zip((digest for digest, _data in batch), locations, strict=True))

    def _located_from(self, written: list[tuple[Digest, bytes]]) -> None:
        self._unsynced = self._unsynced or bool(written)
        for digest, location in written:
            self._located[digest] = location
            self._unwritten.pop(digest, None)

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lineage-stage")
        return self._pool.submit(fn, *args)

    def drain(self) -> None:
        """Finish the comparisons, then write every queued chunk; raise what they raised."""
        try:
            while self._checks:  # a collision must stop us before the last batch is written
                self._checks.pop(0).result()
            if self._queue and self._writes:  # alongside the writes still running
                self._writes.append(self._submit(self._write, self._take_queue()))
            elif self._queue:
                self._located_from(self._write(self._take_queue()))
            while self._writes:
                self._located_from(self._writes.pop(0).result())
            if self._unsynced:  # one fsync for everything appended
                self._backend.sync_chunks()
                self._unsynced = False
        except BaseException:
            self._wait_all()
            raise

    def finish(self) -> None:
        """Drain, then give every staged blob the locations of the chunks written for it."""
        self.drain()
        for blob in self._blobs:
            blob.new_locations = {d: self._located[d] for d in blob.chunks if d in self._located}
        self._known.update(self._located)
        self._blobs.clear()
        self._end_read()
        self._close_pool()

    def abort(self) -> None:
        """Wait for the workers, then take back the chunks written (best effort)."""
        self._wait_all()
        self._queue.clear()
        self._unwritten.clear()
        if self._located:
            self._backend.discard_chunks(list(self._located.values()))
        self._located.clear()
        self._blobs.clear()
        self._end_read()
        self._close_pool()

    def _wait_all(self, *extra: Future[Any] | None) -> None:
        for future in extra:
            if future is not None:
                futures_wait([future])
        for check in self._checks:
            futures_wait([check])
        self._checks.clear()
        for write in self._writes:
            try:
                self._located_from(write.result())
            except BaseException:  # noqa: S110 - the error that stopped us is raised instead
                pass
        self._writes.clear()

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def _compare_run(backend: Backend, view: memoryview, run: _Run) -> None:
    """Compare reused chunks, back to back in ``view``, with their stored bytes.

    Chunks stored back to back too are compared in one call; on any difference, chunk by
    chunk, to raise the precise error.
    """
    if len(run) > 1:
        stored = backend.read_run([location for location, _chunk in run])
        first, last = run[0][1], run[-1][1]
        new = view[first.offset : last.offset + last.length]
        if stored is not None and _same_bytes(stored, new):
            return
    for location, chunk in run:
        _check_existing(backend, chunk, location)


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
    for chunk in chunks:
        location = schema.chunk_location(txn, chunk)
        if location is None:
            raise IntegrityError(f"chunk {chunk.hex()} of blob {digest.hex()} is missing; run "
                                 "`lineage verify`", expected=chunk)
        data = backend.read_chunk(location)
        actual = digest_bytes(data)
        if actual != chunk:
            raise IntegrityError(
                f"chunk of blob {digest.hex()} is corrupt: expected {chunk.hex()}, "
                f"read {actual.hex()}", expected=chunk, actual=actual)
        if len(chunks) > 1:
            whole.update(data)
        yield data
    if len(chunks) > 1 and whole.digest() != digest:
        raise IntegrityError(
            f"blob content does not match: expected {digest.hex()}, read {whole.hexdigest()}",
            expected=digest, actual=Digest(whole.digest()))
    if not chunks and digest != digest_bytes(b""):
        raise IntegrityError(f"blob {digest.hex()} has no chunks but is not empty",
                             expected=digest, actual=digest_bytes(b""))


def read_blob(backend: Backend, txn: ReadTxn, digest: Digest) -> bytes:
    """The whole content of a blob, verified."""
    return b"".join(bytes(part) for part in iter_blob(backend, txn, digest))
