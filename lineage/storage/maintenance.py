"""Store maintenance: ``verify`` (re-hash everything) and ``gc`` (drop what nothing reaches).

Reachability: the roots are every version, stage and tag target and every run (runs are
history and are never collected). From a root, an artifact reaches its blob and its
``derived_from`` parents; a run reaches its inputs, outputs, code, environment and metric
datasets; a blob reaches its chunks and, for directory trees, its files' blobs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact, Run, decode_record
from lineage.errors import CorruptRecordError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.events import verify_chain

__all__ = ["GcReport", "VerifyReport", "collect_garbage", "reachable", "references",
           "verify_store"]


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_store` checked and what it found wrong.

    ``head`` is the SHA-256 of the newest event: keep it somewhere else and pass it back as
    ``checkpoint`` to prove later that the log was neither cut short nor rewritten.
    """

    records: int = 0
    blobs: int = 0
    chunks: int = 0
    bytes: int = 0
    events: int = 0
    head: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"ok": self.ok, "records": self.records, "blobs": self.blobs,
                "chunks": self.chunks, "bytes": self.bytes, "events": self.events,
                "head": self.head, "problems": list(self.problems)}


@dataclass(slots=True)
class GcReport:
    """What :func:`collect_garbage` removed (or would remove, with ``dry_run``)."""

    dry_run: bool
    records: int = 0
    blobs: int = 0
    chunks: int = 0
    bytes_freed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"dry_run": self.dry_run, "records": self.records, "blobs": self.blobs,
                "chunks": self.chunks, "bytes_freed": self.bytes_freed}


def verify_store(
    backend: Backend, *, progress: Callable[[int], None] | None = None,
    checkpoint: str | None = None,
) -> VerifyReport:
    """Re-hash every record, chunk and blob of the store and check the event log's chain
    (against ``checkpoint``, a head hash kept elsewhere, when given)."""
    report = VerifyReport()
    with backend.read() as txn:
        chain = verify_chain(txn, checkpoint=checkpoint)
        report.events, report.head = chain.events, chain.head
        report.problems.extend(chain.problems)
        for digest, data in schema.digest_entries(txn, "records"):
            report.records += 1
            _verify_record(txn, digest, data, report)
        for digest, location in schema.digest_entries(txn, "chunks"):
            report.chunks += 1
            try:
                chunk = backend.read_chunk(location)
            except Exception as exc:  # noqa: BLE001 - a missing or short pack: report, go on
                report.problems.append(f"chunk {digest.hex()}: unreadable ({exc})")
                continue
            report.bytes += len(chunk)
            if progress:
                progress(len(chunk))
            actual = digest_bytes(chunk)
            if actual != digest:
                report.problems.append(
                    f"chunk {digest.hex()}: content hashes to {actual.hex()} (corrupt)"
                )
        for digest, raw in schema.digest_entries(txn, "blobs"):
            report.blobs += 1
            _verify_blob(backend, txn, digest, raw, report)
    return report


def _verify_record(txn: ReadTxn, digest: Digest, data: bytes, report: VerifyReport) -> None:
    actual = digest_bytes(data)
    if actual != digest:
        report.problems.append(f"record {digest.hex()}: bytes hash to {actual.hex()} (corrupt)")
        return
    try:
        record = decode_record(data)
    except CorruptRecordError as exc:
        report.problems.append(f"record {digest.hex()}: {exc}")
        return
    if isinstance(record, Artifact) and record.blob is not None:
        if schema.raw_manifest(txn, record.blob) is None:
            report.problems.append(
                f"artifact {digest.hex()}: its blob {record.blob.hex()} is missing"
            )


def _verify_blob(backend: Backend, txn: ReadTxn, digest: Digest, raw: bytes,
                 report: VerifyReport) -> None:
    try:
        found = schema.manifest(txn, digest)
        chunks = found.chunks if found is not None else []
    except CorruptRecordError as exc:
        report.problems.append(f"blob {digest.hex()}: {exc}")
        return
    whole = xxhash.xxh3_128()
    for chunk in chunks:
        location = schema.chunk_location(txn, chunk)
        if location is None:
            report.problems.append(f"blob {digest.hex()}: chunk {chunk.hex()} is missing")
            return
        try:
            whole.update(backend.read_chunk(location))
        except Exception as exc:  # noqa: BLE001 - a missing or short pack: report, go on
            report.problems.append(f"blob {digest.hex()}: unreadable ({exc})")
            return
    if whole.digest() != digest:
        report.problems.append(
            f"blob {digest.hex()}: content hashes to {whole.hexdigest()} (corrupt)"
        )


def references(record: Artifact | Run) -> tuple[list[Digest], list[Digest]]:
    """``(records, blobs)`` a record points at (what keeps them alive)."""
    if isinstance(record, Artifact):
        blobs = [record.blob] if record.blob is not None else []
        blobs += [v for v in record.summary.values() if isinstance(v, Digest)]  # attachments
        return list(record.parents), blobs
    refs = [*record.inputs.values(), *record.outputs.values(), *record.metric_datasets.values()]
    refs += [d for d in (record.code, record.environment) if d is not None]
    return refs, []


def _roots(txn: ReadTxn) -> set[Digest]:
    roots = set(schema.all_version_targets(txn))
    roots.update(target for _name, _stage, target in schema.all_stages(txn))
    roots.update(target for _tag, target in schema.all_tags(txn))
    roots.update(schema.record_digests(txn, "run"))
    return roots


def reachable(txn: ReadTxn, roots: Iterable[Digest] | None = None
              ) -> tuple[set[Digest], set[Digest], set[Digest]]:
    """``(records, blobs, chunks)`` reachable from ``roots`` (default: every ref target and
    every run, the roots of gc). Roots not stored are skipped."""
    records: set[Digest] = set()
    blobs: set[Digest] = set()
    todo = list(_roots(txn) if roots is None else roots)
    while todo:
        digest = todo.pop()
        data = None if digest in records else schema.raw_record(txn, digest)
        if data is None:
            continue
        records.add(digest)
        try:  # unverified on purpose: a damaged record still keeps what it names alive
            more, blob_refs = references(decode_record(data))
        except CorruptRecordError:
            continue  # kept, never followed: verify reports it
        todo.extend(more)
        blobs.update(blob_refs)
    chunks: set[Digest] = set()
    pending = list(blobs)
    while pending:
        found = schema.manifest(txn, pending.pop())
        if found is None:
            continue
        chunks.update(found.chunks)
        for child in found.children:
            if child not in blobs:
                blobs.add(child)
                pending.append(child)
    return records, blobs, chunks


def collect_garbage(backend: Backend, *, dry_run: bool = False,
                    materialized: Path | None = None) -> GcReport:
    """Remove what no ref and no run reaches; then reclaim chunk space."""
    report = GcReport(dry_run=dry_run)

    def sweep(txn: Any) -> list[Digest]:
        records, blobs, chunks = reachable(txn)
        dead_records = [d for d, _data in schema.digest_entries(txn, "records") if d not in records]
        dead_blobs = [d for d, _raw in schema.digest_entries(txn, "blobs") if d not in blobs]
        dead_chunks = [d for d, _loc in schema.digest_entries(txn, "chunks") if d not in chunks]
        report.records, report.blobs, report.chunks = (
            len(dead_records), len(dead_blobs), len(dead_chunks))
        report.bytes_freed = 0
        if dry_run:
            return dead_blobs
        for digest in dead_records:
            schema.unindex_record(txn, digest)
        for digest in dead_blobs:
            schema.put_manifest(txn, digest, None)
        for digest in dead_chunks:
            schema.put_chunk_location(txn, digest, None)
        dead = set(dead_blobs)
        for key in schema.stat_keys(txn):
            entry = schema.stat_entry(txn, key)
            if entry is None or entry.blob in dead:
                schema.put_stat_entry(txn, key, None)
        if dead_records:
            schema.append_event(txn, "gc", {"removed": dead_records})
        return dead_blobs

    if dry_run:
        with backend.read() as txn:
            sweep(txn)
        return report
    dead_blobs = backend.write(sweep)
    report.bytes_freed = backend.compact()
    if materialized is not None:
        _drop_materialized(materialized, dead_blobs)
    return report


def _drop_materialized(root: Path, dead: Iterable[bytes]) -> None:
    for digest in dead:
        import shutil

        shutil.rmtree(root / digest.hex(), ignore_errors=True)
