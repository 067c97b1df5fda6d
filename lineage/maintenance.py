"""Store maintenance: ``verify`` (re-hash everything) and ``gc`` (drop what nothing reaches).

Reachability: the roots are every version, stage and tag target and every run (runs are
history and are never collected). From a root, an artifact reaches its blob and its
``derived_from`` parents; a run reaches its inputs, outputs, code, environment and metric
datasets; a blob reaches its chunks and, for directory trees, its files' blobs.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import encoding
from .errors import CorruptRecordError
from .hashing import Digest, digest_bytes
from .records import Artifact, Run, decode_record
from .stores.base import Backend, ReadTxn, WriteTxn

__all__ = ["GcReport", "VerifyReport", "collect_garbage", "verify_store"]


@dataclass(slots=True)
class VerifyReport:
    """What :func:`verify_store` checked and what it found wrong."""

    records: int = 0
    blobs: int = 0
    chunks: int = 0
    bytes: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing was wrong."""
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"ok": self.ok, "records": self.records, "blobs": self.blobs,
                "chunks": self.chunks, "bytes": self.bytes, "problems": list(self.problems)}


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
    backend: Backend, *, progress: Callable[[int], None] | None = None
) -> VerifyReport:
    """Re-hash every record, chunk and blob of the store."""
    report = VerifyReport()
    with backend.read() as txn:
        for key, data in txn.items("records"):
            report.records += 1
            _verify_record(txn, Digest(key), data, report)
        for key, location in txn.items("chunks"):
            report.chunks += 1
            try:
                chunk = backend.read_chunk(location)
            except Exception as exc:  # a missing or short pack: report, keep going
                report.problems.append(f"chunk {key.hex()}: unreadable ({exc})")
                continue
            report.bytes += len(chunk)
            if progress:
                progress(len(chunk))
            actual = digest_bytes(chunk)
            if actual != key:
                report.problems.append(
                    f"chunk {key.hex()}: content hashes to {actual.hex()} (corrupt)"
                )
        for key, raw in txn.items("blobs"):
            report.blobs += 1
            _verify_blob(backend, txn, Digest(key), raw, report)
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
        if txn.get("blobs", record.blob) is None:
            report.problems.append(
                f"artifact {digest.hex()}: its blob {record.blob.hex()} is missing"
            )


def _verify_blob(backend: Backend, txn: ReadTxn, digest: Digest, raw: bytes,
                 report: VerifyReport) -> None:
    import xxhash

    _size, chunks, _children = encoding.decode(raw)
    whole = xxhash.xxh3_128()
    for chunk in chunks:
        location = txn.get("chunks", chunk)
        if location is None:
            report.problems.append(f"blob {digest.hex()}: chunk {bytes(chunk).hex()} is missing")
            return
        try:
            whole.update(backend.read_chunk(location))
        except Exception as exc:
            report.problems.append(f"blob {digest.hex()}: unreadable ({exc})")
            return
    if whole.digest() != digest:
        report.problems.append(
            f"blob {digest.hex()}: content hashes to {whole.hexdigest()} (corrupt)"
        )


def _references(record: Artifact | Run) -> tuple[list[Digest], list[Digest]]:
    """``(records, blobs)`` a record points at."""
    if isinstance(record, Artifact):
        blobs = [record.blob] if record.blob is not None else []
        blobs += [v for v in record.summary.values() if isinstance(v, Digest)]  # attachments
        return list(record.parents), blobs
    refs = [*record.inputs.values(), *record.outputs.values(), *record.metric_datasets.values()]
    refs += [d for d in (record.code, record.environment) if d is not None]
    return refs, []


def _roots(txn: ReadTxn) -> set[Digest]:
    roots = {Digest(encoding.decode(v)[1]) for _k, v in txn.items("versions")}
    roots.update(Digest(v) for _k, v in txn.items("stages"))
    roots.update(Digest(v) for _k, v in txn.items("tags"))
    roots.update(Digest(k[-16:]) for k, _v in txn.items("by_kind", b"run\0"))
    return roots


def _mark(txn: ReadTxn) -> tuple[set[Digest], set[Digest], set[Digest]]:
    records: set[Digest] = set()
    blobs: set[Digest] = set()
    todo = list(_roots(txn))
    while todo:
        digest = todo.pop()
        if digest in records:
            continue
        data = txn.get("records", digest)
        if data is None:
            continue
        records.add(digest)
        more, blob_refs = _references(decode_record(data))
        todo.extend(more)
        blobs.update(blob_refs)
    chunks: set[Digest] = set()
    pending = list(blobs)
    while pending:
        raw = txn.get("blobs", pending.pop())
        if raw is None:
            continue
        _size, chunk_list, children = encoding.decode(raw)
        chunks.update(Digest(c) for c in chunk_list)
        for child in children:
            if Digest(child) not in blobs:
                blobs.add(Digest(child))
                pending.append(Digest(child))
    return records, blobs, chunks


def _dead(txn: ReadTxn, namespace: str, live: set[Digest]) -> list[bytes]:
    return [key for key, _value in txn.items(namespace) if key not in live]


def _delete_record(txn: WriteTxn, digest: Digest) -> None:
    data = txn.get("records", digest)
    txn.delete("records", digest)
    if data is None:
        return
    record = decode_record(data)
    txn.delete("by_kind", record.kind.encode() + b"\0" + digest)
    if isinstance(record, Artifact) and record.name:
        txn.delete("by_name", record.name.encode() + b"\0" + digest)
    for namespace, other in (("edges_out", "edges_in"), ("edges_in", "edges_out")):
        for key, _value in list(txn.items(namespace, digest)):
            edge, peer = key[16:17], key[17:]
            txn.delete(namespace, key)
            txn.delete(other, peer + edge + digest)


def collect_garbage(backend: Backend, *, dry_run: bool = False,
                    materialized: Path | None = None) -> GcReport:
    """Remove what no ref and no run reaches; then reclaim chunk space."""
    report = GcReport(dry_run=dry_run)

    def sweep(txn: Any) -> list[bytes]:
        records, blobs, chunks = _mark(txn)
        dead_records = _dead(txn, "records", records)
        dead_blobs = _dead(txn, "blobs", blobs)
        dead_chunks = _dead(txn, "chunks", chunks)
        report.records, report.blobs, report.chunks = (
            len(dead_records), len(dead_blobs), len(dead_chunks))
        report.bytes_freed = 0
        if dry_run:
            return dead_blobs
        for key in dead_records:
            _delete_record(txn, Digest(key))
        for key in dead_blobs:
            txn.delete("blobs", key)
        for key in dead_chunks:
            txn.delete("chunks", key)
        dead = set(dead_blobs)
        for key, value in list(txn.items("stat_cache")):
            if encoding.decode(value)[4] in dead:
                txn.delete("stat_cache", key)
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
        shutil.rmtree(root / digest.hex(), ignore_errors=True)
