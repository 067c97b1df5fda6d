"""The Store users hold: add, load, resolve, refs, tracking, queries, diff, maintenance.

``Store`` is a facade. Reading and writing records is the job of the layers below it
(:mod:`lineage.storage`, :mod:`lineage.refs`, :mod:`lineage.store.ingest`); queries, lint,
diff and tracking live in the packages above it, and the methods here that reach them are
one-line delegations importing them lazily, so ``import lineage`` stays cheap and imports
point one way.

A store is one directory (default ``./.lineage``, or ``LINEAGE_HOME``) holding an LMDB
environment and chunk packs, or ``":memory:"``. ``Store`` objects are cheap handles over a
backend shared per directory (see :mod:`lineage.store.opening`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from lineage import context
from lineage.errors import ChunkVanished, PathError, RecordTypeError, RevisionNotFound, StoreError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.store.opening import release
from lineage.store.review import ReviewMethods
from lineage.store.sharing import SharingMethods

if TYPE_CHECKING:  # and imported where used: opening a store imports none of them
    import datetime

    import networkx

    from lineage.core.hashing import Digest
    from lineage.core.records import Artifact, RefEntry, Run
    from lineage.diff.model import LineageDiff
    from lineage.storage.maintenance import GcReport, VerifyReport
    from lineage.store.ingest import Prepared
    from lineage.tracking.explain import Explanation
    from lineage.tracking.runs import RunContext
    from lineage.views.lint import Finding

    Revision = str | Digest | Artifact | Run

__all__ = ["Store"]

T = TypeVar("T")
_STAGE_RETRIES: Final = 5


class Store(ReviewMethods, SharingMethods):
    """A content-addressed provenance store. Use :func:`lineage.open` to get one.

    Review and audit methods (promotion gates, policies, point-in-time views, the event log,
    reports) are documented in :class:`lineage.store.review.ReviewMethods`; remotes, push
    and pull in :class:`lineage.store.sharing.SharingMethods`.
    """

    def __init__(self, backend: Backend, *, shared: bool = False) -> None:
        self._backend = backend
        self._shared = shared
        self._closed = False
        self._materialized: Path | None = None
        self._context_tokens: list[Any] = []
        self._environments: dict[Digest, Prepared] = {}

    # -- life cycle -------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The store directory, or ``":memory:"``."""
        return self._backend.location

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Release the store; records already committed stay on disk."""
        if self._closed:
            return
        self._closed = True
        if self._shared:
            release(self._backend)
        else:
            self._backend.close()

    def __enter__(self) -> Store:
        self._context_tokens.append(context.push_store(self))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._context_tokens:
            context.pop_store(self._context_tokens.pop())
        if not self._context_tokens:
            self.close()

    def __repr__(self) -> str:
        from lineage.core.plain import iso_time
        from lineage.storage.asof import describe_moment

        state = "closed" if self._closed else "open"
        moment = describe_moment(self._backend)
        if moment is not None:
            state += f", as of {iso_time(moment)}"
        return f"<lineage.Store {self.path} ({state})>"

    # -- adding -----------------------------------------------------------------------

    def add(
        self,
        value: Any,
        name: str | None = None,
        *,
        version: str | None = None,
        kind: str | None = None,
        meta: dict[str, Any] | None = None,
        derived_from: Sequence[Revision] = (),
        target: str | None = None,
        progress: Callable[[int], None] | None = None,
        reason: str = "",
        key: str | None = None,
    ) -> Artifact:
        """Store ``value`` as an artifact and, if it has a name, as a new version of it.

        ``value`` is a path (``str`` or ``os.PathLike``: a file or a directory), bytes, a
        JSON-like config (dict/list), or any value an adapter claims (numpy, pandas,
        scikit-learn). A path's name defaults to its file name. Re-adding content that the
        latest version already holds adds no version. ``meta`` carries user notes (origin,
        selection, preprocessing, biases); ``target`` names a dataset's label column, whose
        class distribution is summarized; ``key`` names the column identifying a table's
        rows (unique, never missing), by which a diff reports an edited row as modified
        (``pid 17: age 45 → 46``); ``progress`` is called with byte counts. Table files
        (CSV, TSV, Parquet, JSON lines) are profiled whatever their ``kind``; ``kind``
        decides what :meth:`load` returns.

        Raises:
            PathError: a path is missing or unreadable.
            InvalidName: ``name``, ``version`` or ``kind`` is invalid, or ``name@version``
                already names other content.
            UnsupportedValue: no adapter claims ``value``, ``meta`` cannot be encoded, a
                dataset file is not a readable table, or ``target``/``key`` do not fit it.
            CollisionError: content collides with different stored content.
        """
        prepared = self._prepare(value, name, version=version, kind=kind, meta=meta,
                                 derived_from=derived_from, target=target, progress=progress,
                                 key=key)
        return self._commit_added(prepared, reason=reason)[0]

    def _prepare(self, value: Any, name: str | None = None, *, version: str | None = None,
                 kind: str | None = None, meta: dict[str, Any] | None = None,
                 derived_from: Sequence[Revision] = (), target: str | None = None,
                 progress: Callable[[int], None] | None = None, path_name: bool = True,
                 summary: dict[str, Any] | None = None, format: str | None = None,  # noqa: A002
                 annotate: dict[str, Any] | None = None, key: str | None = None) -> Prepared:
        """Stage ``value`` (see :func:`lineage.store.ingest.prepare`), resolving
        ``derived_from`` revisions first."""
        from lineage.store.ingest import prepare

        self._check_open()
        parents = tuple(self._digest(rev) for rev in derived_from)
        return prepare(self._backend, value, name=name, version=version, kind=kind, meta=meta,
                       parents=parents, target=target, progress=progress,
                       path_name=path_name, summary=summary, format=format,
                       annotate=annotate, key=key)

    def _commit_added(self, prepared: Prepared, *, reason: str = "") -> tuple[Artifact, int]:
        """Commit one staged artifact, staging it again while a concurrent gc takes content
        it reuses. Returns the artifact (with its version) and the new bytes written.

        A commit that fails takes back the chunks its staging wrote (a failed add leaves
        nothing behind).

        Raises:
            StoreError: a concurrent gc kept removing reused content.
        """
        from lineage.store.ingest import discard

        for _ in range(_STAGE_RETRIES):
            try:
                with self._read() as txn:
                    if prepared.unchanged(txn):
                        latest = schema.latest_version(txn, prepared.name or "")
                        label = latest.version if latest is not None else None
                        return prepared.artifact.with_version(label), prepared.written
                version = self._write(partial(prepared.commit, reason=reason))
            except ChunkVanished:
                discard(self._backend, [prepared])
                prepared = prepared.again()
                continue
            except BaseException:
                discard(self._backend, [prepared])
                raise
            return prepared.artifact.with_version(version), prepared.written
        raise StoreError("content kept disappearing during add (concurrent gc?); retry")

    # -- reading ----------------------------------------------------------------------

    def resolve(self, revision: Revision) -> Artifact | Run:
        """The Artifact or Run record a revision names (a record passes through).

        Raises:
            InvalidRevision, RevisionNotFound, AmbiguousRevision: as their names say.
            IntegrityError: the stored record does not hash to its digest.
        """
        from lineage.core.records import Artifact, Run
        from lineage.refs.revisions import resolve_record

        self._check_open()
        if isinstance(revision, Artifact | Run):
            return revision
        with self._read() as txn:
            return resolve_record(txn, revision)

    def _artifact(self, revision: Revision) -> Artifact:
        from lineage.core.records import Artifact

        record = self.resolve(revision)
        if not isinstance(record, Artifact):
            raise RecordTypeError(f"{revision!r} names a run, not an artifact")
        return record

    def _run(self, revision: Revision) -> Run:
        from lineage.core.records import Run

        record = self.resolve(revision)
        if not isinstance(record, Run):
            raise RecordTypeError(f"{revision!r} names an artifact, not a run")
        return record

    def _digest(self, revision: Revision) -> Digest:
        from lineage.core.hashing import Digest
        from lineage.core.records import Artifact, Run
        from lineage.refs.revisions import resolve

        if isinstance(revision, Artifact | Run):
            return revision.raw_digest
        if isinstance(revision, Digest):
            return revision
        with self._read() as txn:
            return resolve(txn, revision)[0]

    def read_bytes(self, revision: Revision) -> bytes:
        """The stored bytes of an artifact, verified against their digest.

        Raises:
            RecordTypeError: the revision names a run.
            IntegrityError: the content is missing or does not match its digest.
        """
        from lineage.storage.blobs import read_blob

        artifact = self._artifact(revision)
        with self._read() as txn:
            return read_blob(self._backend, txn, _blob_of(artifact))

    def load(self, revision: Revision, *, trust: bool = False, as_name: str | None = None,
             as_path: bool = False) -> Any:
        """The value an artifact holds: a DataFrame, array, dict, estimator or bytes back.

        A table file (CSV, TSV, Parquet, JSON lines) added as ``kind="dataset"`` comes back
        as a DataFrame (needs pandas). A file or directory whose format no adapter loads,
        and any file with ``as_path=True``, comes back as a :class:`pathlib.Path` to a
        read-only copy. Inside a run or step, the load is recorded as a ``used`` edge
        (input ``as_name``).

        Raises:
            UntrustedContentError: the content is a pickle and ``trust`` is false.
            IntegrityError: stored content does not match its digest.
            RecordTypeError: the revision names a run.
        """
        from lineage.store.loading import is_table_dataset, read_artifact

        self._check_open()
        artifact, adapter, data = read_artifact(self._backend, revision, as_path=as_path)
        recorder = context.active_recorder()
        if recorder is not None and self._same_store(recorder.store):
            recorder.record_use(artifact, as_name)
        if adapter is None or data is None:
            path = self._materialize(artifact)
            if not as_path and is_table_dataset(artifact):
                from lineage.adapters.pandas import read_table_file

                return read_table_file(path)
            return path
        return adapter.load(data, artifact.format, trust=trust)

    def _materialize(self, artifact: Artifact) -> Path:
        from lineage.storage.files import checkout

        blob = _blob_of(artifact)
        if self._materialized is None:
            if self.path == ":memory:":
                import tempfile

                self._materialized = Path(tempfile.mkdtemp(prefix="lineage-"))
            else:
                self._materialized = Path(self.path) / "materialized"
        filename = artifact.summary.get("filename") or artifact.name or "content"
        target = self._materialized / blob.hex() / str(filename)
        if os.path.lexists(target) and self._holds(target, blob):
            return target  # an earlier copy, re-hashed: still exactly the stored content
        with self._read() as txn:
            kind = "directory" if artifact.format == "directory" else "file"
            checkout(self._backend, txn, kind, blob, target, force=True, read_only=True)
        return target

    def _holds(self, path: Path, blob: Digest) -> bool:
        """Whether ``path`` holds exactly the content ``blob`` (re-hashed)."""
        from lineage.storage.files import path_digest

        try:
            return path_digest(self._backend, path) == blob
        except PathError:
            return False

    def checkout(self, revision: Revision, target: str | os.PathLike[str], *,
                 force: bool = False) -> Path:
        """Write a stored file or directory to ``target``; return its absolute path.

        Raises:
            PathError: ``target`` exists and ``force`` is false, or a tree entry would be
                written outside ``target``.
            IntegrityError: the content is missing or does not match its digest.
        """
        from lineage.storage.files import checkout

        artifact = self._artifact(revision)
        kind = "directory" if artifact.format == "directory" else "file"
        with self._read() as txn:
            return checkout(self._backend, txn, kind, _blob_of(artifact), Path(target),
                            force=force)

    def describe(self, revision: Revision) -> dict[str, Any]:
        """A JSON-safe description of a record with the names, versions, stages and tags
        around it: what ``lineage show`` prints (:func:`lineage.views.describe.describe`)."""
        from lineage.views.describe import describe

        record = self.resolve(revision)
        with self._read() as txn:
            return describe(txn, record)

    # -- refs ---------------------------------------------------------------------------

    def tag(self, revision: Revision, tag: str, *, reason: str = "") -> Artifact:
        """Point the global ``tag`` at what ``revision`` names (moving it if it exists)."""
        from lineage.refs import registry

        artifact = self._artifact(revision)
        self._write(lambda txn: registry.set_tag(txn, tag, artifact.raw_digest,
                                                 name=artifact.name, reason=reason))
        return artifact

    def untag(self, tag: str, *, reason: str = "") -> None:
        """Remove ``tag``; the move is kept in history.

        Raises:
            RevisionNotFound: there is no such tag.
        """
        from lineage.refs import registry
        from lineage.refs.revisions import check_name, suggest

        check_name(tag, "tag")
        with self._read() as txn:
            if schema.tag_target(txn, tag) is None:
                raise RevisionNotFound(suggest(txn, tag, "tag"))
        self._write(lambda txn: registry.set_tag(txn, tag, None, name=None, reason=reason))

    def log(self, name: str) -> list[RefEntry]:
        """Every move of the refs under ``name``, oldest first.

        Raises:
            RevisionNotFound: ``name`` has no history.
        """
        from lineage.refs import registry
        from lineage.refs.revisions import check_name, suggest

        check_name(name)
        with self._read() as txn:
            entries = registry.history(txn, name)
            if not entries:
                raise RevisionNotFound(suggest(txn, name, "history for"))
        return entries

    def versions(self, name: str) -> list[Artifact]:
        """Every version of ``name``, oldest first."""
        from lineage.refs.revisions import check_name

        check_name(name)
        with self._read() as txn:
            return [_as_artifact(schema.read_record(txn, e.target)).with_version(e.version)
                    for e in schema.versions(txn, name)]

    def names(self) -> list[str]:
        """Every name that has versions, sorted."""
        with self._read() as txn:
            return sorted(schema.versioned_names(txn))

    def stages(self, name: str) -> dict[str, Artifact]:
        """Current stages/aliases of ``name``."""
        from lineage.refs import registry
        from lineage.refs.revisions import check_name

        check_name(name)
        with self._read() as txn:
            versions = {target: version for version, target, _t in registry.versions(txn, name)}
            return {stage: _as_artifact(schema.read_record(txn, target)).with_version(
                        versions.get(target)) for stage, target in
                    registry.stages(txn, name).items()}

    # -- tracking (lineage.tracking) ------------------------------------------------------

    def run(self, op: str, params: dict[str, Any] | None = None, *, label: str | None = None,
            meta: dict[str, Any] | None = None) -> RunContext:
        """Open an experiment-tracking run: ``with store.run("train", params=...) as run:``.

        ``op`` is the operation (what the run does, shared by its repetitions); ``label``
        an optional name for this one run. See :class:`lineage.RunContext` for
        ``log_param``, ``log_metric``, ``log_input``, ``log_artifact``, ``log_model`` and
        ``log_evaluation``.
        """
        from lineage.tracking.runs import RunContext

        self._check_open()
        return RunContext(self, op, params, label=label, meta=meta)

    def explain(self, step: Any, *args: Any, **kwargs: Any) -> Explanation:
        """Would ``step(*args, **kwargs)`` hit the cache? If not, what changed.

        Raises:
            StepDefinitionError: ``step`` is not a ``@lineage.step`` function.
        """
        from lineage.tracking.explain import explain_call

        return explain_call(self, step, *args, **kwargs)

    def metric_history(self, run: Revision, name: str) -> list[tuple[int, float, float]]:
        """``(step, time, value)`` points logged for metric ``name`` in ``run``.

        Raises:
            RecordTypeError: the revision names an artifact.
        """
        record = self._run(run)
        with self._read() as txn:
            return schema.metric_points(txn, record.id, name)

    # -- queries and diff (lineage.views, lineage.diff) ---------------------------------

    def ancestors(self, revision: Revision, *, depth: int | None = None,
                  kind: str | None = None) -> list[Artifact | Run]:
        """Records ``revision`` came from, nearest first (:func:`lineage.views.query.ancestors`)."""
        from lineage.views import query

        with self._read() as txn:
            return query.ancestors(txn, revision, depth=depth, kind=kind)

    def descendants(self, revision: Revision, *, depth: int | None = None,
                    kind: str | None = None) -> list[Artifact | Run]:
        """Records made from ``revision``, nearest first (see ``lineage.views.query``)."""
        from lineage.views import query

        with self._read() as txn:
            return query.descendants(txn, revision, depth=depth, kind=kind)

    def runs(self, op: str | None = None, *, used: Revision | None = None,
             produced: Revision | None = None, status: str | None = None,
             params: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
             since: float | datetime.datetime | None = None,
             until: float | datetime.datetime | None = None, label: str | None = None,
             limit: int | None = None, offset: int = 0) -> list[Run]:
        """Runs matching every filter, newest first (:func:`lineage.views.query.runs`).

        ``metrics={"sensitivity": (">", 0.9)}``; ``params={"C": 0.5}`` or
        ``{"C": ("<", 1)}``; ``since``/``until`` bound the start time (inclusive);
        ``limit``/``offset`` page through the newest (fast without filters).
        """
        from lineage.views import query

        with self._read() as txn:
            return query.runs(txn, op, used=used, produced=produced, status=status,
                              params=params, metrics=metrics, since=since, until=until,
                              label=label, limit=limit, offset=offset)

    def artifacts(self, *, kind: str | None = None, name: str | None = None) -> list[Artifact]:
        """Artifacts of a kind and/or name, with versions (see ``lineage.views.query``)."""
        from lineage.views import query

        with self._read() as txn:
            return query.artifacts(txn, kind=kind, name=name)

    def graph(self, revision: Revision | None = None, *, depth: int | None = None,
              direction: str = "both") -> networkx.MultiDiGraph:
        """A networkx view of the store or of one lineage (:func:`lineage.views.query.graph`)."""
        from lineage.views import query

        with self._read() as txn:
            return query.graph(txn, revision, depth=depth, direction=direction)

    def diff(self, a: Revision, b: Revision, *, examples: int = 5) -> LineageDiff:
        """What changed between ``a`` and ``b`` and why (:func:`lineage.diff.diff`)."""
        from lineage.diff import diff

        with self._read() as txn:
            return diff(txn, self._backend, a, b, examples=examples)

    def lint(self) -> list[Finding]:
        """What a reviewer would flag, errors first (:func:`lineage.views.lint.lint`)."""
        from lineage.views.lint import lint

        with self._read() as txn:
            return lint(txn)

    # -- maintenance --------------------------------------------------------------------

    def verify(self, *, checkpoint: str | None = None,
               progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Re-hash every record, blob and chunk, check the event log's hash chain, and check
        versions, stages, tags, records, the ``added`` index and the stage policies against
        it; report every problem found. ``checkpoint`` is an earlier ``VerifyReport.head`` kept
        elsewhere: if the chain no longer contains it, the log was cut short or rewritten."""
        from lineage.storage.maintenance import verify_store

        self._check_open()
        return verify_store(self._backend, progress=progress, checkpoint=checkpoint)

    def gc(self, *, dry_run: bool = False) -> GcReport:
        """Remove records, blobs and chunks that no ref and no run reaches."""
        from lineage.storage.maintenance import collect_garbage

        self._check_open()
        materialized = None if self.path == ":memory:" else Path(self.path) / "materialized"
        return collect_garbage(self._backend, dry_run=dry_run, materialized=materialized)

    # -- internals shared with lineage.tracking.recording ---------------------------------

    def _same_store(self, other: object) -> bool:
        """Whether ``other`` is this store: this handle, another one ``lineage.open`` gave
        on the same directory (they share one backend), or a point-in-time view of it."""
        if other is self:
            return True
        backend = getattr(other, "_backend", None)
        return isinstance(backend, Backend) and backend.underlying is self._backend.underlying

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this store is closed; open it again with lineage.open()")

    def _read(self) -> AbstractContextManager[ReadTxn]:
        """A read transaction (closed stores refuse)."""
        self._check_open()
        return self._backend.read()

    def _write(self, apply: Callable[[WriteTxn], T]) -> T:
        """Run ``apply`` in one atomic write transaction (see :meth:`Backend.write`)."""
        self._check_open()
        return self._backend.write(apply)

    def _environment(self) -> Prepared:
        """The staged ``environment`` artifact of this process now (shared by digest)."""
        from lineage.core import encoding
        from lineage.tracking.environment import capture_environment

        description = capture_environment()
        key = encoding.digest_of(description)
        cached = self._environments.get(key)
        if cached is None:
            cached = self._prepare(description, kind="environment")
            self._environments[key] = cached
        return cached

    def _forget_environment(self) -> None:
        """Drop the staged environment artifacts kept for reuse (stage them again)."""
        self._environments.clear()

    def _iter_records(self, kind: str | None = None) -> Iterator[Artifact | Run]:
        with self._read() as txn:
            for digest in schema.record_digests(txn, kind):
                yield schema.read_record(txn, digest)


def _blob_of(artifact: Artifact) -> Digest:
    if artifact.blob is None:
        raise RecordTypeError(f"{artifact!r} holds no stored content")
    return artifact.blob


def _as_artifact(record: Artifact | Run) -> Artifact:
    from lineage.core.records import Artifact

    if not isinstance(record, Artifact):
        raise RecordTypeError(f"a ref names run {record.digest}, not an artifact")
    return record
