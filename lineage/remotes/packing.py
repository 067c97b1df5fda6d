"""Content in packs: uploading what a remote lacks, downloading and checking what we lack.

Upload (:func:`upload`): the chunks to send are streamed from the store's packs into remote
packs of about :data:`PACK_BYTES` (one multipart upload each, never held whole in memory);
each pack's ``.meta`` is written after its bytes. Manifests and records travel in the last
meta, after every chunk they name, so an interrupted upload leaves only packs whose metas
name chunks alone, which the next push counts as sent.

Download (:func:`download`): the chunks to fetch are read by byte ranges of at most
:data:`RANGE_BYTES`, adjacent chunks joined into one range, several ranges per request;
every chunk is re-hashed as it arrives and written to the local store's pack (durable,
invisible, exactly as :mod:`lineage.storage.staging` writes added content). Nothing is
visible until the caller commits the :class:`~lineage.storage.blobs.StagedBlob` objects
built from it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import IO, Final

import xxhash

from lineage.core.hashing import Digest, digest_bytes
from lineage.errors import IntegrityError
from lineage.remotes.connection import Connection
from lineage.remotes.layout import PackMeta, RecordEntry, encode_meta, meta_path, pack_path
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn

__all__ = ["PACK_BYTES", "RANGE_BYTES", "download", "upload", "verify_blob"]

PACK_BYTES: Final = 64 * 1024 * 1024
RANGE_BYTES: Final = 8 * 1024 * 1024
_REQUEST_BYTES: Final = 32 * 1024 * 1024  # ranges fetched together, at most
_GAP: Final = 64 * 1024  # a hole this small between needed chunks is fetched, not skipped
_RUN_BYTES: Final = 4 * 1024 * 1024  # chunks read from the store in one go, at most

Progress = Callable[[int], None]


def upload(connection: Connection, backend: Backend, txn: ReadTxn, chunks: Sequence[Digest],
           blobs: dict[Digest, bytes], records: dict[Digest, RecordEntry],
           progress: Progress | None = None) -> tuple[int, int]:
    """Send ``chunks`` (in order), then ``blobs`` (manifests) and ``records``; return
    ``(packs written, bytes sent)``."""
    packs = sent = 0
    batch: list[tuple[Digest, bytes]] = []
    size = 0
    for digest in chunks:
        location = schema.chunk_location(txn, digest)
        if location is None:
            raise IntegrityError(f"chunk {digest.hex()} is missing from the store; run "
                                 "`lineage verify`", expected=digest)
        batch.append((digest, location))
        size += _length(backend, location)
        if size >= PACK_BYTES:
            sent += _send_pack(connection, backend, batch, {}, {}, progress)
            packs, batch, size = packs + 1, [], 0
    if batch or blobs or records:
        sent += _send_pack(connection, backend, batch, blobs, records, progress)
        packs += 1
    return packs, sent


def _length(backend: Backend, location: bytes) -> int:
    return len(backend.read_chunk(location))


def _send_pack(connection: Connection, backend: Backend, batch: list[tuple[Digest, bytes]],
               blobs: dict[Digest, bytes], records: dict[Digest, RecordEntry],
               progress: Progress | None) -> int:
    meta = PackMeta(blobs=blobs, records=records)
    offset = 0
    for digest, location in batch:
        length = _length(backend, location)
        meta.chunks[digest] = (offset, length)
        offset += length
    data = encode_meta(meta)
    name = digest_bytes(data).hex()

    def write(handle: IO[bytes]) -> None:
        for run in _runs(backend, [location for _d, location in batch]):
            handle.write(run)
            if progress is not None:
                progress(len(run))

    if batch:
        connection.upload("upload a pack", pack_path(name), write)
    connection.put(meta_path(name), data)
    if progress is not None:
        progress(len(data))
    return offset + len(data)


def _runs(backend: Backend, locations: list[bytes]) -> Iterable[memoryview | bytes]:
    """The chunks at ``locations`` read in runs of chunks stored back to back."""
    start = 0
    while start < len(locations):
        end, size = start, 0
        while end < len(locations) and size < _RUN_BYTES:
            size += _length(backend, locations[end])
            end += 1
        joined = backend.read_run(locations[start:end]) if end - start > 1 else None
        if joined is not None:
            yield joined
        else:
            yield from (backend.read_chunk(loc) for loc in locations[start:end])
        start = end


def download(connection: Connection, backend: Backend,
             wanted: dict[Digest, tuple[str, int, int]],
             progress: Progress | None = None) -> tuple[dict[Digest, bytes], int]:
    """Fetch chunks ``{digest: (pack, offset, length)}``, check each and write it to the
    store's chunk area; return ``({digest: location}, bytes fetched)``. The caller owns the
    locations: it commits them, or discards them on failure.

    Raises:
        IntegrityError: a chunk does not hash to its digest (nothing of it is kept).
    """
    located: dict[Digest, bytes] = {}
    fetched = 0
    by_pack: dict[str, list[tuple[int, int, Digest]]] = {}
    for digest, (pack, offset, length) in wanted.items():
        by_pack.setdefault(pack, []).append((offset, length, digest))
    try:
        for pack, entries in sorted(by_pack.items()):
            entries.sort()
            for request in _requests(_ranges(entries)):
                parts = connection.cat_ranges(pack_path(pack), [(s, e) for s, e, _c in request])
                for (start, _end, members), data in zip(request, parts, strict=True):
                    fetched += len(data)
                    batch = []
                    for offset, length, digest in members:
                        piece = memoryview(data)[offset - start:offset - start + length]
                        actual = digest_bytes(piece)
                        if actual != digest or len(piece) != length:
                            raise IntegrityError(
                                f"chunk {digest.hex()} in remote pack {pack} is corrupt: it "
                                f"hashes to {actual.hex()}; nothing was pulled",
                                expected=digest, actual=actual)
                        batch.append((digest, piece))
                    for (digest, _piece), location in zip(
                            batch, backend.append_chunks(batch), strict=True):
                        located[digest] = location
                    if progress is not None:
                        progress(len(data))
    except BaseException:
        backend.discard_chunks(list(located.values()))
        raise
    backend.sync_chunks()
    return located, fetched


_Range = tuple[int, int, list[tuple[int, int, Digest]]]


def _ranges(entries: list[tuple[int, int, Digest]]) -> list[_Range]:
    """Needed chunks of one pack joined into ranges (small holes included)."""
    ranges: list[_Range] = []
    for offset, length, digest in entries:
        if ranges:
            start, end, members = ranges[-1]
            if offset - end <= _GAP and offset + length - start <= RANGE_BYTES:
                members.append((offset, length, digest))
                ranges[-1] = (start, max(end, offset + length), members)
                continue
        ranges.append((offset, offset + length, [(offset, length, digest)]))
    return ranges


def _requests(ranges: list[_Range]) -> Iterable[list[_Range]]:
    request: list[_Range] = []
    size = 0
    for item in ranges:
        if request and size + item[1] - item[0] > _REQUEST_BYTES:
            yield request
            request, size = [], 0
        request.append(item)
        size += item[1] - item[0]
    if request:
        yield request


def verify_blob(backend: Backend, txn: ReadTxn, digest: Digest, size: int,
                chunks: list[Digest], located: dict[Digest, bytes]) -> None:
    """Check that ``chunks`` (new ones at ``located``, the others in the store) hold
    ``size`` bytes hashing to ``digest``.

    Raises:
        IntegrityError: they do not (a damaged manifest), or a chunk is missing.
    """
    if len(chunks) == 1 and chunks[0] == digest:
        location = located.get(digest) or schema.chunk_location(txn, digest)
        if location is not None and len(backend.read_chunk(location)) == size:
            return  # the chunk itself was hashed: it is the whole content
    whole = xxhash.xxh3_128()
    total = 0
    for chunk in chunks:
        location = located.get(chunk) or schema.chunk_location(txn, chunk)
        if location is None:
            raise IntegrityError(f"content {digest.hex()} names chunk {chunk.hex()}, which "
                                 "neither the remote nor this store holds; nothing was pulled",
                                 expected=chunk)
        data = backend.read_chunk(location)
        whole.update(data)
        total += len(data)
    if whole.digest() != digest or total != size:
        raise IntegrityError(f"content {digest.hex()} from the remote does not match its "
                             f"manifest (its chunks hash to {whole.hexdigest()}, {total} bytes); "
                             "nothing was pulled", expected=digest,
                             actual=Digest(whole.digest()))
