"""Store maintenance: ``verify`` (re-hash everything, check the event chain and the tables
against it) and ``gc`` (drop what nothing reaches).

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
from lineage.errors import CorruptRecordError, LineageError
from lineage.storage import schema
from lineage.storage.asof import describe_moment
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.crosscheck import TableCheck
from lineage.storage.events import verify_chain
from lineage.storage.files import decode_tree, looks_like_tree, tree_children
from lineage.storage.indexcheck import check_indexes

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
    """What :func:`collect_garbage` removed (or would remove, with ``dry_run``).

    ``orphaned_bytes`` counts chunk bytes that nothing names, found before collecting: left
    by adds that failed or were killed before they committed (a failed add takes back what
    it wrote when it can; a killed one cannot). ``bytes_freed`` is what collecting freed,
    those included; 0 in a dry run.
    """

    dry_run: bool
    records: int = 0
    blobs: int = 0
    chunks: int = 0
    bytes_freed: int = 0
    orphaned_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"dry_run": self.dry_run, "records": self.records, "blobs": self.blobs,
                "chunks": self.chunks, "bytes_freed": self.bytes_freed,
                "orphaned_bytes": self.orphaned_bytes}


def verify_store(
    backend: Backend, *, progress: Callable[[int], None] | None = None,
    checkpoint: str | None = None,
) -> VerifyReport:
    """Re-hash every record, chunk and blob of the store, check the event log's chain
    (against ``checkpoint``, a head hash kept elsewhere, when given), that every version,
    stage and tag names a stored record, the versions, stages, tags, records, ``added``
    index and policies against the chain (see :mod:`lineage.storage.crosscheck`), and the
    derived indexes against the records (see :mod:`lineage.storage.indexcheck`); the last
    two not through a point-in-time view, which hides later events but not the settings
    they changed.

    Damage is reported, never raised: each part that cannot be read is a problem, and the
    other parts are still checked. Only when the backend's own files are damaged in a way
    that reading them could crash on (see :meth:`Backend.check_structure`) is nothing else
    read.
    """
    report = VerifyReport()
    report.problems.extend(backend.check_structure())
    if report.problems:  # reading on could crash the process: the damage is the report
        return report
    tables = TableCheck() if describe_moment(backend) is None else None
    parts = (("the event log", _verify_chain), ("records", _verify_records),
             ("chunks", _verify_chunks), ("blobs", _verify_blobs), ("refs", _verify_refs),
             ("the tables against the event log", _verify_tables),
             ("the indexes against the records", _verify_indexes))
    for part, check in parts:
        try:
            with backend.read() as txn:
                check(backend, txn, report, checkpoint=checkpoint, progress=progress,
                      tables=tables)
        except LineageError as exc:  # a damaged key, index or page: report it, go on
            report.problems.append(f"{part}: {exc}")
    return report


def _verify_chain(backend: Backend, txn: ReadTxn, report: VerifyReport, **options: Any) -> None:
    chain = verify_chain(txn, checkpoint=options["checkpoint"], observer=options["tables"])
    report.events, report.head = chain.events, chain.head
    report.problems.extend(chain.problems)


def _verify_records(backend: Backend, txn: ReadTxn, report: VerifyReport, **options: Any
                    ) -> None:
    tables: TableCheck | None = options["tables"]
    for digest, data in schema.digest_entries(txn, "records"):
        report.records += 1
        if tables is not None:
            tables.saw_record(digest)
        _verify_record(txn, digest, data, report)


def _verify_tables(backend: Backend, txn: ReadTxn, report: VerifyReport, **options: Any
                   ) -> None:
    if options["tables"] is not None:
        report.problems.extend(options["tables"].finish(txn))


def _verify_indexes(backend: Backend, txn: ReadTxn, report: VerifyReport, **options: Any
                    ) -> None:
    if options["tables"] is not None:  # a point-in-time view is not checked (as above)
        report.problems.extend(check_indexes(txn))


def _verify_chunks(backend: Backend, txn: ReadTxn, report: VerifyReport, **options: Any) -> None:
    progress = options["progress"]
    for digest, location in schema.digest_entries(txn, "chunks"):
        report.chunks += 1
        try:
            chunk = backend.read_chunk(location)
        except LineageError as exc:  # a damaged location, a missing or short pack
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


def _verify_blobs(backend: Backend, txn: ReadTxn, report: VerifyReport, **_: Any) -> None:
    for digest, raw in schema.digest_entries(txn, "blobs"):
        report.blobs += 1
        _verify_blob(backend, txn, digest, raw, report)


def _verify_refs(backend: Backend, txn: ReadTxn, report: VerifyReport, **_: Any) -> None:
    """Every version (in both of its indexes), stage and tag names a stored record."""
    for name in schema.versioned_names(txn):
        try:
            entries = list(schema.versions(txn, name))
            for entry in entries:
                found = schema.version_entry(txn, name, entry.version)
                if found is None or found.seq != entry.seq:
                    report.problems.append(f"{name}@{entry.version}: the version index "
                                           "disagrees with the list of versions")
            if len(entries) != len(schema.version_labels(txn, name)):
                report.problems.append(f"{name}: the version index lists other versions "
                                       "than the list of versions")
        except CorruptRecordError as exc:
            report.problems.append(f"versions of {name!r}: {exc}")
            continue
        for entry in entries:
            if schema.raw_record(txn, entry.target) is None:
                report.problems.append(f"{name}@{entry.version} names record "
                                       f"{entry.target.hex()}, which is missing")
    refs = [(f"{name}@{stage}", target) for name, stage, target in schema.all_stages(txn)]
    refs += [(f"tag {tag}", target) for tag, target in schema.all_tags(txn)]
    for ref, target in refs:
        if schema.raw_record(txn, target) is None:
            report.problems.append(f"{ref} names record {target.hex()}, which is missing")


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
        found = schema.decode_manifest(digest, raw)
    except CorruptRecordError as exc:
        report.problems.append(f"blob {digest.hex()}: {exc}")
        return
    chunks, size = found.chunks, 0
    tree: list[bytes] = []  # the content, kept only when it may be a directory tree
    whole = xxhash.xxh3_128()
    for chunk in chunks:
        location = schema.chunk_location(txn, chunk)
        if location is None:
            report.problems.append(f"blob {digest.hex()}: chunk {chunk.hex()} is missing")
            return
        try:
            data = backend.read_chunk(location)
        except LineageError as exc:  # a damaged location, a missing or short pack
            report.problems.append(f"blob {digest.hex()}: unreadable ({exc})")
            return
        whole.update(data)
        if tree or (size == 0 and looks_like_tree(data)):
            tree.append(bytes(data))
        size += len(data)
    if whole.digest() != digest:
        report.problems.append(
            f"blob {digest.hex()}: content hashes to {whole.hexdigest()} (corrupt)"
        )
    elif size != found.size:
        report.problems.append(f"blob {digest.hex()}: its manifest gives {found.size} bytes, "
                               f"its chunks hold {size}")
    else:
        _verify_children(txn, digest, found.children, tree, report)


def _verify_children(txn: ReadTxn, digest: Digest, children: list[Digest], tree: list[bytes],
                     report: VerifyReport) -> None:
    """A blob's contained blobs (what gc keeps with it) are a tree's files, and stored."""
    entries = decode_tree(b"".join(tree)) if tree else None
    if children != (tree_children(entries) if entries is not None else []):
        report.problems.append(f"blob {digest.hex()}: its manifest lists {len(children)} "
                               "contained blobs that are not its files")
        return
    for child in children:
        if schema.raw_manifest(txn, child) is None:
            report.problems.append(f"blob {digest.hex()}: contained blob {child.hex()} is "
                                   "missing")


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
    roots = {entry.target for _name, entry in schema.all_versions(txn)}
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
    report = GcReport(dry_run=dry_run, orphaned_bytes=backend.orphaned_bytes())

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
