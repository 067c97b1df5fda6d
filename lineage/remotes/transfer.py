"""``push`` and ``pull``: what to send or fetch, in which order, and what it amounts to.

A push reads the remote's state (metas and refs), decides what the remote lacks among the
records, blobs and chunks reachable from this store's refs and runs (or from the given
revisions and their lineage), checks the refs for conflicts *before* sending anything,
writes a lease naming its roots (see :mod:`lineage.remotes.gc`), uploads the content in
packs, then this store's new events, then the refs by compare-and-swap, and drops the
lease. A second push with nothing new sends no content and writes nothing.

A pull reads the remote's state, decides what this store lacks among what the remote's
refs and runs reach (or the given revisions, resolved on the remote, and their lineage),
checks versions for conflicts, verifies the other stores' event chains, downloads and
re-hashes every chunk, checks every manifest against its content and every record against
its digest, and commits it all — content, records with their indexes, nested-run links,
metric series, ref moves, and one ``pull`` event — in ONE transaction, through the same
staging primitives as ``Store.add``. Anything wrong, and nothing becomes visible.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.records import Run, decode_record
from lineage.errors import ChunkVanished, StoreError
from lineage.refs.revisions import resolve
from lineage.remotes import eventlog, packing
from lineage.remotes import refs as remote_refs
from lineage.remotes.config import Remote
from lineage.remotes.connection import Connection
from lineage.remotes.layout import RecordEntry, RemoteState, check_record, load_state
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.blobs import StagedBlob
from lineage.storage.maintenance import reachable

__all__ = ["TransferReport", "pull", "push"]

_RETRIES: Final = 3  # a pull whose reused local content a concurrent gc took is redone
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class TransferReport:
    """What a push or pull moved.

    ``objects`` = ``chunks`` + ``blobs`` + ``records`` moved, ``bytes`` the bytes sent or
    fetched (chunk bytes and pack metas), ``skipped`` the objects the other side already
    held; ``refs`` the ref entries written, ``events`` the events sent (push) or the event
    logs of other stores checked (pull); ``notes`` what a person should know (a stage kept
    because this store's move is newer than the remote's).
    """

    direction: str
    remote: str
    objects: int = 0
    bytes: int = 0
    skipped: int = 0
    chunks: int = 0
    blobs: int = 0
    records: int = 0
    refs: int = 0
    events: int = 0
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"direction": self.direction, "remote": self.remote, "objects": self.objects,
                "bytes": self.bytes, "skipped": self.skipped, "chunks": self.chunks,
                "blobs": self.blobs, "records": self.records, "refs": self.refs,
                "events": self.events, "notes": list(self.notes)}

    def __str__(self) -> str:
        verb = "pushed to" if self.direction == "push" else "pulled from"
        text = (f"{verb} {self.remote}: {self.objects} objects ({self.records} records, "
                f"{self.blobs} blobs, {self.chunks} chunks), {self.bytes} bytes; "
                f"{self.skipped} already there; {self.refs} ref moves")
        return "\n".join([text, *self.notes])


# -- what a set of roots reaches ------------------------------------------------------------


def lineage_roots(txn: ReadTxn, revisions: Sequence[str]) -> set[Digest]:
    """The records ``revisions`` name with everything upstream of them (their lineage).

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: a revision does not resolve.
    """
    todo = [resolve(txn, revision)[0] for revision in revisions]
    seen: set[Digest] = set()
    while todo:
        digest = todo.pop()
        if digest in seen:
            continue
        seen.add(digest)
        todo.extend(source for edge, source in schema.upstream(txn, digest)
                    if edge in schema.DATA_FLOW)
    return seen


def _closure(txn: ReadTxn, revisions: Sequence[str] | None
             ) -> tuple[set[Digest], set[Digest], set[Digest]]:
    roots = None if revisions is None else lineage_roots(txn, revisions)
    records, blobs, chunks = reachable(txn, roots)
    # a summary may hold digests that name no stored content (a value's identity)
    return records, {b for b in blobs if schema.raw_manifest(txn, b) is not None}, chunks


def _ordered_records(txn: ReadTxn, digests: set[Digest], read: Callable[[Digest], bytes]
                     ) -> list[Digest]:
    """``digests`` with every record after those it names (artifacts before the runs that
    name them, parents before derived artifacts, runs by start time)."""
    runs: list[tuple[float, Digest]] = []
    artifacts: list[Digest] = []
    for digest in sorted(digests):
        if schema.is_kind(txn, digest, "run"):
            record = decode_record(read(digest))
            runs.append((record.started if isinstance(record, Run) else 0.0, digest))
        else:
            artifacts.append(digest)
    ordered: list[Digest] = []
    placed: set[Digest] = set()

    def place(digest: Digest) -> None:
        stack = [(digest, False)]
        while stack:
            current, expanded = stack.pop()
            if current in placed:
                continue
            if expanded:
                placed.add(current)
                ordered.append(current)
                continue
            stack.append((current, True))
            record = decode_record(read(current))
            for parent in getattr(record, "parents", ()):
                if parent in digests and parent not in placed:
                    stack.append((parent, False))

    for digest in artifacts:
        place(digest)
    ordered += [digest for _started, digest in sorted(runs)]
    return ordered


# -- push -----------------------------------------------------------------------------------


def push(backend: Backend, connection: Connection, remote: Remote,
         revisions: Sequence[str] | None = None, progress: Progress | None = None
         ) -> TransferReport:
    """Send what the remote lacks (see the module docstring).

    Raises:
        RefConflict: a ref on the remote names other content, or moved without this store
            having pulled the move (checked before any content is sent).
        RemoteError: the remote cannot be reached or written.
        RevisionNotFound: a revision does not resolve in this store.
    """
    from lineage.remotes.gc import lease

    state = load_state(connection, create=True)
    with backend.read() as txn:
        records, blobs, chunks = _closure(txn, revisions)
        plan = remote_refs.plan_push(remote_refs.local_refs(txn), state,
                                     None if revisions is None else records)
        send_records = {d for d in records if d not in state.records}
        send_blobs = [b for b in sorted(blobs) if not state.has_blob(b)]
        manifests = {b: schema.raw_manifest(txn, b) or b"" for b in send_blobs}
        send_chunks = _chunks_in_order(txn, send_blobs, state)
        skipped = (len(records) - len(send_records) + len(blobs) - len(send_blobs)
                   + len(chunks) - len(send_chunks))

        def read(digest: Digest) -> bytes:
            data = schema.raw_record(txn, digest)
            return data if data is not None else b""

        entries = {d: _record_entry(txn, d, read(d))
                   for d in _ordered_records(txn, send_records, read)}
        if not entries and not send_blobs and not send_chunks and not plan.count:
            return TransferReport("push", str(remote), skipped=skipped,
                                  events=eventlog.push_events(connection, txn))
        with lease(connection, txn, records | blobs | set(chunks)):
            _packs, sent = packing.upload(connection, backend, txn, send_chunks, manifests,
                                          entries, progress)
            events = eventlog.push_events(connection, txn)
            written = remote_refs.write_push(connection, plan)
    return TransferReport("push", str(remote), objects=len(entries) + len(send_blobs)
                          + len(send_chunks), bytes=sent, skipped=skipped,
                          chunks=len(send_chunks), blobs=len(send_blobs),
                          records=len(entries), refs=written, events=events)


def _chunks_in_order(txn: ReadTxn, blobs: list[Digest], state: RemoteState) -> list[Digest]:
    """The chunks of ``blobs`` the remote lacks, each once, in content order."""
    ordered: list[Digest] = []
    seen: set[Digest] = set()
    for blob in blobs:
        found = schema.manifest(txn, blob)
        for chunk in found.chunks if found is not None else ():
            if chunk not in seen and chunk not in state.chunk_home:
                seen.add(chunk)
                ordered.append(chunk)
    return ordered


def _record_entry(txn: ReadTxn, digest: Digest, data: bytes) -> RecordEntry:
    if not schema.is_kind(txn, digest, "run"):
        return RecordEntry(data, [], {})
    run = decode_record(data, digest)
    assert isinstance(run, Run)  # noqa: S101 - indexed as a run
    children = [child for _edge, child in schema.downstream(txn, digest, schema.EDGE_CHILD)]
    series = {name: points for name in sorted(run.metrics)
              if (points := schema.metric_points(txn, run.id, name))}
    return RecordEntry(data, children, series)


# -- pull -----------------------------------------------------------------------------------


def pull(backend: Backend, connection: Connection, remote: Remote,
         revisions: Sequence[str] | None = None, progress: Progress | None = None
         ) -> TransferReport:
    """Fetch what this store lacks (see the module docstring).

    Raises:
        IntegrityError: remote content does not match its digest (nothing was pulled).
        RefConflict: a version is named differently here and on the remote.
        RemoteError: the remote cannot be reached or read.
        RevisionNotFound: a revision does not resolve on the remote.
    """
    state = load_state(connection)
    records, blobs, chunks = _closure(state.txn, revisions)
    for _ in range(_RETRIES):
        with backend.read() as txn:
            own = eventlog.store_id(txn)
            plan = remote_refs.plan_pull(remote_refs.local_refs(txn), state, records)
            need_records = [d for d in sorted(records) if schema.raw_record(txn, d) is None
                            and d in state.records]
            need_blobs = [b for b in sorted(blobs) if schema.raw_manifest(txn, b) is None]
            wanted = {c: state.chunk_home[c] for c in chunks
                      if c in state.chunk_home and schema.chunk_location(txn, c) is None}
        skipped = (len(records) - len(need_records) + len(blobs) - len(need_blobs)
                   + len(chunks) - len(wanted))
        if not need_records and not need_blobs and not wanted and not plan.count:
            return TransferReport("pull", str(remote), skipped=skipped)
        heads = eventlog.pull_heads(connection, own)
        located, fetched = packing.download(connection, backend, wanted, progress)
        try:
            staged = _check_content(backend, state, need_blobs, located)
            ordered = _ordered_pulled(state, need_records)
            backend.write(partial(_commit_pull, state=state, staged=staged, records=ordered,
                                  plan=plan, remote=str(remote), heads=heads))
        except ChunkVanished:  # a local gc took a chunk we reuse: fetch again
            backend.discard_chunks(list(located.values()))
            continue
        except BaseException:
            backend.discard_chunks(list(located.values()))
            raise
        return TransferReport("pull", str(remote), objects=len(need_records) + len(need_blobs)
                              + len(wanted), bytes=fetched, skipped=skipped,
                              chunks=len(wanted), blobs=len(need_blobs),
                              records=len(need_records), refs=plan.count, events=len(heads),
                              notes=tuple(plan.notes()))
    raise StoreError("content kept disappearing during the pull (a concurrent gc?); retry")


def _check_content(backend: Backend, state: RemoteState, need_blobs: list[Digest],
                   located: dict[Digest, bytes]) -> list[StagedBlob]:
    """Every pulled manifest checked against its content, as blobs ready to commit."""
    staged = []
    with backend.read() as txn:
        for blob in need_blobs:
            manifest = schema.manifest(state.txn, blob)
            if manifest is None:
                continue
            packing.verify_blob(backend, txn, blob, manifest.size, manifest.chunks, located)
            staged.append(StagedBlob(
                blob, manifest.size, manifest.chunks,
                new_locations={c: located[c] for c in manifest.chunks if c in located},
                children=manifest.children, backend=backend))
    return staged


def _ordered_pulled(state: RemoteState, digests: list[Digest]) -> list[Digest]:
    wanted = set(digests)

    def read(digest: Digest) -> bytes:
        return state.records[digest].data

    for digest in digests:  # refuse damage before ordering decodes anything
        check_record(digest, state.records[digest].data)
    return _ordered_records(state.txn, wanted, read)


def _commit_pull(txn: WriteTxn, *, state: RemoteState, staged: list[StagedBlob],
                 records: list[Digest], plan: remote_refs.PullRefs, remote: str,
                 heads: dict[str, dict[str, object]]) -> None:
    for blob in staged:
        blob.commit(txn)
    for digest in records:
        entry = state.records[digest]
        record = check_record(digest, entry.data)
        schema.index_record(txn, record)
        if isinstance(record, Run):
            for metric, points in entry.series.items():
                start = schema.next_metric_seq(txn, record.id, metric)
                for offset, point in enumerate(points):
                    schema.put_metric_point(txn, record.id, metric, start + offset, point)
    for digest in records:
        for child in state.records[digest].children:
            if schema.raw_record(txn, child) is not None:
                schema.add_edge(txn, digest, schema.EDGE_CHILD, child)
    remote_refs.apply_pull(txn, plan)
    schema.append_event(txn, "pull", {"remote": remote, "records": records,
                                      "refs": plan.count, "stores": heads})
