"""Staging content: cut it into chunks, hash, dedupe, compare and write the new chunks.

This is phase 1 of adding content (see :mod:`lineage.storage.blobs`), run outside any write
transaction. A :class:`Stager` stages the blobs of one add with few large writes and one
sync; for large content the whole-content hash, the comparisons of reused chunks and the
writes run on two worker threads while the caller's thread chunks.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Final, TypeVar

from lineage.core.hashing import CHUNK_MIN, Chunk, Digest, chunk_buffer, digest_bytes
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import (
    StagedBlob,
    check_existing_blob,
    check_existing_chunk,
    collision,
    same_bytes,
)

if TYPE_CHECKING:  # imported on first use: most adds never start a worker
    from concurrent.futures import Future, ThreadPoolExecutor

__all__ = ["Stager", "stage"]

T = TypeVar("T")

_BACKGROUND: Final = 8 * 1024 * 1024  # content this large hashes, compares, writes on workers
_WRITE_BATCH: Final = 4 * 1024 * 1024  # queued new bytes that start a background write
_WRITES_IN_FLIGHT: Final = 16  # batches being written at once, at most (64 MiB)
_RUN: Final = 32 * 1024 * 1024  # reused bytes compared in one job at most
_RENEW_S: Final = 1.0  # age at which the shared read transaction is renewed


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
            check_existing_blob(self._backend, txn, digest, view, digests)
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
            if not same_bytes(queued, view):
                raise collision(digest)
        else:
            location = (
                self._located.get(digest) or self._known.get(digest)
                or schema.chunk_location(txn, digest)
            )
            if location is None:
                self._enqueue(digest, view)
                written = len(view)
            else:
                check_existing_chunk(self._backend, Chunk(0, view, digest), location)
        check_existing_blob(self._backend, txn, digest, view, [digest])
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
                if not same_bytes(first.data, chunk.data):
                    raise collision(digest)
                continue
            queued = queued_get(digest)
            if queued is not None:  # queued by an earlier blob of this add
                if not same_bytes(queued, chunk.data):
                    raise collision(digest)
                continue
            location = (located_get(digest) or known_get(digest)
                        or schema.chunk_location(txn, digest))
            if location is None:
                self._enqueue(digest, chunk.data)
                written += len(chunk.data)
            elif not background:
                check_existing_chunk(self._backend, chunk, location)
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
            from concurrent.futures import ThreadPoolExecutor

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
        if self._pool is None:
            return  # no worker was ever started
        from concurrent.futures import wait as futures_wait

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
        if stored is not None and same_bytes(stored, new):
            return
    for location, chunk in run:
        check_existing_chunk(backend, chunk, location)
