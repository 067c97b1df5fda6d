"""The Store users hold: add, load, resolve, tag, promote, checkout, verify, gc.

A store is one directory (default ``./.lineage``, or ``LINEAGE_HOME``) holding an LMDB
environment and chunk packs, or ``":memory:"``. One process shares one backend per
directory (LMDB forbids opening an environment twice in a process); ``Store`` objects are
cheap handles over it.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from . import encoding, registry
from .adapters import adapter_for_format
from .content import ChunkVanished, read_blob
from .context import active_recorder
from .errors import InvalidName, PathError, RevisionNotFound, StoreError
from .files import checkout
from .hashing import Digest, digest_bytes
from .indexing import (  # noqa: F401 - re-exported: lineage.store is where users look
    EDGE_CHILD,
    EDGE_DERIVED,
    EDGE_GENERATED,
    EDGE_NAMES,
    EDGE_USED,
    Prepared,
    add_edge,
    index_record,
    latest_version,
)
from .ingest import name_from_path, prepare_path, prepare_value
from .maintenance import GcReport, VerifyReport, collect_garbage, verify_store
from .records import Artifact, RefEntry, Run, decode_record
from .revisions import check_name, resolve
from .stores.base import Backend, ReadTxn, WriteTxn
from .stores.memory import MemoryBackend

if TYPE_CHECKING:
    import datetime

    import networkx

    from .diff import LineageDiff
    from .lint import Finding
    from .runs import RunContext

__all__ = ["Store", "default_path", "open_store"]

_STAGE_RETRIES: Final = 5


def default_path() -> Path:
    """``LINEAGE_HOME`` if set, else ``./.lineage``."""
    return Path(os.environ.get("LINEAGE_HOME") or ".lineage")


_shared_lock = threading.Lock()
# path -> [backend, handles]. A backend inherited across fork() reopens itself in the child,
# so the child keeps using the same entry and never opens one environment twice.
_shared: dict[str, list[Any]] = {}


def _acquire(path: Path) -> Backend:
    from .stores.lmdb import LmdbBackend

    key = str(path.resolve())
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            entry = _shared[key] = [LmdbBackend(path), 0]
        entry[1] += 1
        return entry[0]  # type: ignore[no-any-return]


def _release(backend: Backend) -> None:
    with _shared_lock:
        for key, entry in list(_shared.items()):
            if entry[0] is backend:
                entry[1] -= 1
                if entry[1] <= 0:
                    del _shared[key]
                    backend.close()
                return
    backend.close()


class Store:
    """A content-addressed provenance store. Use :func:`lineage.open` to get one."""

    def __init__(self, backend: Backend, *, shared: bool = False) -> None:
        self.backend = backend
        self._shared = shared
        self._closed = False
        self._materialized: Path | None = None
        self._context_tokens: list[Any] = []
        self._environments: dict[Digest, Prepared] = {}

    # -- life cycle -------------------------------------------------------------------

    @property
    def path(self) -> str:
        """The store directory, or ``":memory:"``."""
        return self.backend.location

    def close(self) -> None:
        """Release the store; records already committed stay on disk."""
        if self._closed:
            return
        self._closed = True
        if self._shared:
            _release(self.backend)
        else:
            self.backend.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def __enter__(self) -> Store:
        from .track import push_default_store

        self._context_tokens.append(push_default_store(self))
        return self

    def __exit__(self, *exc: object) -> None:
        from .track import pop_default_store

        if self._context_tokens:
            pop_default_store(self._context_tokens.pop())
        if not self._context_tokens:
            self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<lineage.Store {self.path} ({state})>"

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError("this store is closed; open it again with lineage.open()")

    def read(self) -> Any:
        """A read transaction context (for library modules built on the store)."""
        self._check_open()
        return self.backend.read()

    def write(self, apply: Callable[[WriteTxn], Any]) -> Any:
        """Run ``apply`` in one atomic write transaction (see :meth:`Backend.write`)."""
        self._check_open()
        return self.backend.write(apply)

    # -- adding -----------------------------------------------------------------------

    def add(
        self,
        value: Any,
        name: str | None = None,
        *,
        version: str | None = None,
        kind: str | None = None,
        meta: dict[str, Any] | None = None,
        derived_from: Sequence[str | Digest | Artifact] = (),
        target: str | None = None,
        progress: Callable[[int], None] | None = None,
        reason: str = "",
    ) -> Artifact:
        """Store ``value`` as an artifact and, if ``name`` is given, as a new version of it.

        ``value`` is a path (``str`` or ``os.PathLike``: a file or a directory), bytes, a
        JSON-like config (dict/list), or any value an adapter claims (numpy, pandas,
        scikit-learn). Re-adding content that the latest version already holds adds no
        version. ``meta`` carries user notes (origin, selection, preprocessing, biases).
        ``target`` names a dataset's label column, whose class distribution is summarized.
        A path's name defaults to its file name.

        Raises:
            PathError: a path is missing or unreadable.
            InvalidName: ``name``, ``version`` or ``kind`` is invalid.
            UnsupportedValue: no adapter claims ``value``, or ``meta`` cannot be encoded.
            CollisionError: content collides with different stored content.
        """
        return self.add_prepared(
            lambda: self.prepare(
                value, name, version=version, kind=kind, meta=meta,
                derived_from=derived_from, target=target, progress=progress,
            ),
            reason=reason,
        )[0]

    def add_prepared(
        self, prepare: Callable[[], Prepared], *, reason: str = ""
    ) -> tuple[Artifact, int]:
        """Commit what ``prepare()`` stages (see :meth:`add`), staging again if needed.

        Returns the artifact and the bytes of new content its (last) staging wrote; 0 when
        the store already held all of it.

        Raises:
            StoreError: a concurrent gc kept removing reused content.
        """
        for _ in range(_STAGE_RETRIES):
            prepared = prepare()
            with self.read() as txn:
                if prepared.unchanged(txn):
                    latest = latest_version(txn, prepared.name or "")
                    return prepared.artifact.with_version(latest), prepared.written
            try:
                version = self.write(partial(prepared.commit, reason=reason))
            except ChunkVanished:
                continue  # a concurrent gc removed a chunk we reused: stage again
            return prepared.artifact.with_version(version), prepared.written
        raise StoreError("content kept disappearing during add (concurrent gc?); retry")

    def prepare(
        self,
        value: Any,
        name: str | None = None,
        *,
        version: str | None = None,
        kind: str | None = None,
        meta: dict[str, Any] | None = None,
        derived_from: Sequence[str | Digest | Artifact] = (),
        target: str | None = None,
        progress: Callable[[int], None] | None = None,
        path_name: bool = True,
    ) -> Prepared:
        """Phase 1 of :meth:`add`: hash, summarize and durably stage ``value``'s content.

        Nothing is visible until :meth:`Prepared.commit` runs inside a write transaction,
        so a run can commit its outputs, itself and its edges at once. ``path_name=False``
        leaves a path's artifact unnamed instead of naming it after the file.
        """
        self._check_open()
        if name is not None:
            check_name(name)
        if version is not None:
            if name is None:
                raise InvalidName("a version needs a name: add(value, name=..., version=...)")
            check_name(version, "version")
        if kind is not None:
            check_name(kind, "kind")
        meta = dict(meta or {})
        encoding.encode(meta)  # refuse what cannot be recorded before writing anything
        parents = tuple(self.resolve_digest(rev) for rev in derived_from)
        if isinstance(value, str | os.PathLike):
            path = Path(value)
            if name is None and path_name:
                name = name_from_path(path)
            artifact, staged = prepare_path(self.backend, path, name=name, kind=kind, meta=meta,
                                            parents=parents, target=target, progress=progress)
        else:
            artifact, staged = prepare_value(self.backend, value, name=name, kind=kind,
                                             meta=meta, parents=parents, target=target)
        restage = partial(self.prepare, value, name, version=version, kind=kind, meta=meta,
                          derived_from=parents, target=target, path_name=path_name)
        return Prepared(artifact, staged, version, restage=restage)

    # -- reading ----------------------------------------------------------------------

    def resolve_digest(self, revision: str | Digest | Artifact | Run) -> Digest:
        """The digest a revision names (see :meth:`resolve`)."""
        if isinstance(revision, Artifact | Run):
            return revision.raw_digest
        if isinstance(revision, Digest):
            return revision
        with self.read() as txn:
            return resolve(txn, revision)[0]

    def resolve(self, revision: str | Digest | Artifact | Run) -> Artifact | Run:
        """The Artifact or Run record a revision names (a record or Digest passes through).

        Raises:
            InvalidRevision, RevisionNotFound, AmbiguousRevision: as their names say.
            IntegrityError: the stored record does not hash to its digest.
        """
        self._check_open()
        if isinstance(revision, Artifact | Run):
            return revision
        if isinstance(revision, Digest):
            return self.record(revision)
        with self.read() as txn:
            digest, _name, version = resolve(txn, revision)
            record = self._record(txn, digest)
        if isinstance(record, Artifact) and version is not None:
            return record.with_version(version)
        return record

    def _record(self, txn: ReadTxn, digest: Digest) -> Artifact | Run:
        from .errors import IntegrityError

        data = txn.get("records", digest)
        if data is None:
            raise RevisionNotFound(f"no record {digest.hex()} in the store")
        actual = digest_bytes(data)
        if actual != digest:
            raise IntegrityError(
                f"record {digest.hex()} is corrupt: its bytes hash to {actual.hex()}"
            )
        return decode_record(data, digest)

    def record(self, digest: Digest) -> Artifact | Run:
        """The record stored under ``digest`` (verified)."""
        with self.read() as txn:
            return self._record(txn, digest)

    def show(self, revision: str) -> Artifact | Run:
        """Same as :meth:`resolve`; named for the CLI verb."""
        return self.resolve(revision)

    def artifact(self, revision: str | Digest | Artifact) -> Artifact:
        """Resolve a revision that must name an artifact.

        Raises:
            RevisionNotFound: it names a run.
        """
        record = self.resolve(revision)
        if not isinstance(record, Artifact):
            raise RevisionNotFound(f"{revision!r} names a run, not an artifact")
        return record

    def read_bytes(self, revision: str | Artifact) -> bytes:
        """The stored bytes of an artifact, verified against their digest."""
        artifact = self.artifact(revision)
        if artifact.blob is None:
            raise StoreError(f"{artifact!r} has no stored content")
        with self.read() as txn:
            return read_blob(self.backend, txn, artifact.blob)

    def load(self, revision: str | Digest | Artifact, *, trust: bool = False,
             as_name: str | None = None, as_path: bool = False) -> Any:
        """The value an artifact holds: a DataFrame, array, dict, estimator or bytes back.

        A CSV/TSV/Parquet file added as ``kind="dataset"`` comes back as a DataFrame (needs
        pandas); other files and directories, and any file with ``as_path=True``, as a
        :class:`pathlib.Path` to a read-only copy. Inside a run or step, the load is recorded
        as a ``used`` edge (input ``as_name``).

        Raises:
            UntrustedContentError: the content is a pickle and ``trust`` is false.
            IntegrityError: stored content does not match its digest.
        """
        artifact = self.artifact(revision)
        recorder = active_recorder()
        if recorder is not None and recorder.store is self:
            recorder.record_use(artifact, as_name)
        if artifact.format == "directory" or artifact.kind in ("file", "directory") or (
            artifact.format not in _VALUE_FORMATS
        ):
            path = self._materialize(artifact)
            if not as_path and artifact.kind == "dataset" and artifact.format in _TABLE_FORMATS:
                from .adapters.pandas import read_table_file

                return read_table_file(path)
            return path
        data = self.read_bytes(artifact)
        return adapter_for_format(artifact.format).load(data, artifact.format, trust=trust)

    def _materialize(self, artifact: Artifact) -> Path:
        assert artifact.blob is not None  # noqa: S101 - artifacts with paths always have blobs
        if self._materialized is None:
            if self.path == ":memory:":
                self._materialized = Path(tempfile.mkdtemp(prefix="lineage-"))
            else:
                self._materialized = Path(self.path) / "materialized"
        filename = artifact.summary.get("filename") or artifact.name or "content"
        target = self._materialized / artifact.blob.hex() / str(filename)
        if os.path.lexists(target) and _holds(self.backend, target, artifact.blob):
            return target  # an earlier copy, re-hashed: still exactly the stored content
        with self.read() as txn:
            kind = "directory" if artifact.format == "directory" else "file"
            checkout(self.backend, txn, kind, artifact.blob, target, force=True, read_only=True)
        return target

    def checkout(self, revision: str | Artifact, target: str | os.PathLike[str], *,
                 force: bool = False) -> Path:
        """Write a stored file or directory to ``target``; return its absolute path.

        Raises:
            PathError: ``target`` exists and ``force`` is false, or the artifact is not a
                file or directory.
        """
        artifact = self.artifact(revision)
        if artifact.blob is None:
            raise PathError(f"{artifact!r} has no content to check out")
        kind = "directory" if artifact.format == "directory" else "file"
        with self.read() as txn:
            return checkout(self.backend, txn, kind, artifact.blob, Path(target), force=force)

    # -- tracking (lineage/runs.py, lineage/track.py) ---------------------------------------

    def run(self, op: str, params: dict[str, Any] | None = None, *, name: str | None = None,
            meta: dict[str, Any] | None = None) -> RunContext:
        """Open an experiment-tracking run: ``with store.run("train", params=...) as run:``.

        See :class:`lineage.runs.RunContext` for ``log_param``, ``log_metric``,
        ``log_input``, ``log_artifact``, ``log_model`` and ``log_evaluation``.
        """
        from .runs import RunContext

        self._check_open()
        return RunContext(self, op, params, name=name, meta=meta)

    def explain(self, step: Any, *args: Any, **kwargs: Any) -> Any:
        """Would ``step(*args, **kwargs)`` hit the cache? If not, what changed.

        Returns an :class:`~lineage.explain.Explanation` (printable, ``to_dict()``).
        """
        from .explain import explain_call
        from .track import Step

        if not isinstance(step, Step):
            raise TypeError(f"explain() takes a @lineage.step function, got {step!r}")
        return explain_call(self, step, *args, **kwargs)

    def runs_of(self, op: str) -> list[Run]:
        """Every run of operation ``op``, newest first (read from the ``by_op`` index)."""
        prefix = op.encode() + b"\0"
        with self.read() as txn:
            keys = [k for k, _v in txn.items("by_op", prefix, reverse=True)]
            return [r for k in keys if isinstance(r := self._record(txn, Digest(k[-16:])), Run)]

    def metric_history(self, run: str | Run, name: str) -> list[tuple[int, float, float]]:
        """``(step, time, value)`` points logged for metric ``name`` in ``run``."""
        from .runs import metric_history

        record = self.resolve(run)
        if not isinstance(record, Run):
            raise RevisionNotFound(f"{run!r} names an artifact, not a run")
        return metric_history(self, record, name)

    def forget_environment(self) -> None:
        """Drop the staged environment artifacts kept for reuse (stage them again)."""
        self._environments.clear()

    def environment_artifact(self) -> Prepared:
        """The staged ``environment`` artifact of this process now (shared by digest)."""
        from .environment import capture_environment

        description = capture_environment()
        key = encoding.digest_of(description)
        cached = self._environments.get(key)
        if cached is None:
            cached = self.prepare(description, kind="environment")
            self._environments[key] = cached
        return cached

    # -- refs ---------------------------------------------------------------------------

    def tag(self, revision: str | Artifact, tag: str, *, reason: str = "") -> Artifact:
        """Point the global ``tag`` at what ``revision`` names (moving it if it exists)."""
        artifact = self.artifact(revision)
        self.write(lambda txn: registry.set_tag(txn, tag, artifact.raw_digest,
                                                name=artifact.name, reason=reason))
        return artifact

    def untag(self, tag: str, *, reason: str = "") -> None:
        """Remove ``tag``; the move is kept in history."""
        check_name(tag, "tag")
        with self.read() as txn:
            if txn.get("tags", tag.encode()) is None:
                raise RevisionNotFound(f"no tag {tag!r}")
        self.write(lambda txn: registry.set_tag(txn, tag, None, name=None, reason=reason))

    def promote(self, revision: str | Artifact, stage: str, *, reason: str = "") -> Artifact:
        """Point ``name@stage`` (e.g. ``model@production``) at ``revision``; kept in history."""
        artifact = self.artifact(revision)
        name = artifact.name
        if not name:
            raise InvalidName(f"{artifact!r} has no name, so it cannot have stages")
        self.write(lambda txn: registry.set_stage(txn, name, stage, artifact.raw_digest,
                                                  reason=reason))
        return artifact

    def log(self, name: str) -> list[RefEntry]:
        """Every move of the refs under ``name``, oldest first.

        Raises:
            RevisionNotFound: ``name`` has no history.
        """
        check_name(name)
        with self.read() as txn:
            entries = registry.history(txn, name)
            if not entries:
                raise RevisionNotFound(_no_history(txn, name))
        return entries

    def versions(self, name: str) -> list[Artifact]:
        """Every version of ``name``, oldest first."""
        check_name(name)
        with self.read() as txn:
            found = registry.versions(txn, name)
            return [self._record(txn, d).with_version(v) for v, d, _t in found]  # type: ignore[union-attr]

    def names(self) -> list[str]:
        """Every name that has versions, sorted."""
        with self.read() as txn:
            return sorted({k.split(b"\0", 1)[0].decode() for k, _ in txn.items("version_keys")})

    def stages(self, name: str) -> dict[str, Artifact]:
        """Current stages/aliases of ``name``."""
        with self.read() as txn:
            return {s: self._record(txn, d) for s, d in registry.stages(txn, name).items()}  # type: ignore[misc]

    def iter_records(self, kind: str | None = None) -> Iterator[Artifact | Run]:
        """Every record, or those of one kind (``"run"`` for runs)."""
        prefix = kind.encode() + b"\0" if kind else b""
        with self.read() as txn:
            keys = [k for k, _ in txn.items("by_kind", prefix)]
            for key in keys:
                yield self._record(txn, Digest(key[-16:]))

    # -- queries and diff (lineage/query.py, lineage/diff.py) --------------------------

    def ancestors(self, revision: str | Artifact | Run, depth: int | None = None,
                  kind: str | None = None) -> list[Artifact | Run]:
        """Records ``revision`` came from, nearest first (see :func:`lineage.query.ancestors`)."""
        from .query import ancestors

        self._check_open()
        return ancestors(self, revision, depth, kind)

    def descendants(self, revision: str | Artifact | Run, depth: int | None = None,
                    kind: str | None = None) -> list[Artifact | Run]:
        """Records made from ``revision``, nearest first (:func:`lineage.query.descendants`)."""
        from .query import descendants

        self._check_open()
        return descendants(self, revision, depth, kind)

    def runs(self, op: str | None = None, *, used: str | Artifact | None = None,
             produced: str | Artifact | None = None, status: str | None = None,
             params: dict[str, Any] | None = None, metrics: dict[str, Any] | None = None,
             since: float | datetime.datetime | None = None,
             until: float | datetime.datetime | None = None, name: str | None = None,
             limit: int | None = None) -> list[Run]:
        """Runs matching every filter, newest first (see :func:`lineage.query.runs`).

        ``metrics={"sensitivity": (">", 0.9)}``; ``params={"C": 0.5}`` or
        ``{"C": ("<", 1)}``; ``since``/``until`` bound the start time (inclusive).
        """
        from .query import runs

        self._check_open()
        return runs(self, op, used=used, produced=produced, status=status, params=params,
                    metrics=metrics, since=since, until=until, name=name, limit=limit)

    def artifacts(self, kind: str | None = None, name: str | None = None) -> list[Artifact]:
        """Artifacts of a kind and/or name, with versions (:func:`lineage.query.artifacts`)."""
        from .query import artifacts

        self._check_open()
        return artifacts(self, kind, name)

    def graph(self, revision: str | Artifact | Run | None = None, depth: int | None = None,
              direction: str = "both") -> networkx.MultiDiGraph:
        """A networkx view of the store or of one lineage (:func:`lineage.query.graph`)."""
        from .query import graph

        self._check_open()
        return graph(self, revision, depth, direction)

    def diff(self, a: str | Artifact | Run, b: str | Artifact | Run, *,
             examples: int = 5) -> LineageDiff:
        """What changed between ``a`` and ``b`` and why (see :func:`lineage.diff.diff`)."""
        from .diff import diff

        self._check_open()
        return diff(self, a, b, examples=examples)

    def lint(self) -> list[Finding]:
        """What a reviewer would flag, errors first (see :func:`lineage.lint.lint`)."""
        from .lint import lint

        self._check_open()
        return lint(self)

    # -- maintenance --------------------------------------------------------------------

    def verify(self, *, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Re-hash every record, blob and chunk; report every mismatch found."""
        self._check_open()
        return verify_store(self.backend, progress=progress)

    def gc(self, *, dry_run: bool = False) -> GcReport:
        """Remove records, blobs and chunks that no ref and no run reaches."""
        self._check_open()
        materialized = None if self.path == ":memory:" else Path(self.path) / "materialized"
        return collect_garbage(self.backend, dry_run=dry_run, materialized=materialized)


_TABLE_FORMATS: Final = frozenset({"csv", "tsv", "parquet"})
_VALUE_FORMATS: Final = frozenset(
    {"bytes", "msgpack", "numpy", "pandas-parquet", "pandas-pickle", "sklearn-pickle", "skops"}
)


def _holds(backend: Backend, path: Path, digest: Digest) -> bool:
    from .errors import PathError as _PathError
    from .files import path_digest

    try:
        return path_digest(backend, path) == digest
    except _PathError:
        return False


def _no_history(txn: ReadTxn, name: str) -> str:
    import difflib

    from .revisions import known_names

    names = known_names(txn)
    near = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if near:
        return f"no history for {name!r}; did you mean {', '.join(near)}?"
    return f"no history for {name!r}"


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open (creating if needed) the store at ``path``; ``":memory:"`` for a scratch one.

    Without ``path``: ``LINEAGE_HOME`` if set, else ``./.lineage``.
    """
    if path is not None and str(path) == ":memory:":
        return Store(MemoryBackend())
    target = Path(path) if path is not None else default_path()
    if target.exists() and not target.is_dir():
        raise StoreError(f"{target} exists and is not a store directory")
    return Store(_acquire(target), shared=True)
