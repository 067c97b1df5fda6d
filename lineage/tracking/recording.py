"""The one recording path for runs from ``@step``, ``store.run()`` and ``lineage run``.

A run is recorded in three moves, always the same:

1. its content is *staged* outside any transaction (:func:`prepare`): inputs taken by
   content, outputs, the step's code, the environment; durable, invisible;
2. the :class:`~lineage.core.records.Run` is built naming that content by digest (the
   caller's ``make_run``, given the environment's digest);
3. :func:`commit_run` commits content, outputs with their versions, the run, its edges,
   its child links and its metric series in ONE write transaction.

If a concurrent ``gc`` removed content the staging reused (``ChunkVanished``), everything is
staged again from the same values — :class:`~lineage.store.ingest.Prepared` is immutable and
a restage reproduces the digests the run names — and the commit retried. If an output's
``name@version`` was taken by another writer meanwhile, the caller chooses: fail, or keep
the run and its outputs without versions.

This module is the seam between tracking and the store: the only one in this package that
uses the store's internal staging, transactions and environment cache.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import ChunkVanished, InvalidName, StoreError
from lineage.refs import registry
from lineage.storage import schema
from lineage.storage.base import WriteTxn
from lineage.storage.files import path_digest
from lineage.store.ingest import Prepared, discard

if TYPE_CHECKING:
    from lineage.store.store import Store

__all__ = ["Recorded", "commit_run", "identity_of_path", "labelled", "prepare",
           "recorded_run", "version_owner", "write_series"]

_RETRIES: Final = 5

#: ``(metric name, step, time, value)``
Point = tuple[str, int, float, float]


class Recorded(NamedTuple):
    """What :func:`commit_run` committed: the run, each output's version, and the version
    conflict that made it keep the outputs unversioned (``None`` if there was none)."""

    run: Run
    versions: dict[str, str | None]
    conflict: InvalidName | None


def prepare(store: Store, value: Any, name: str | None = None, **options: Any) -> Prepared:
    """Stage ``value`` in ``store`` (see :func:`lineage.store.ingest.prepare`)."""
    return store._prepare(value, name, **options)


def identity_of_path(store: Store, path: Path) -> Digest:
    """The content digest of a file or directory, from the stat cache when it is fresh."""
    return path_digest(store._backend, path)


def recorded_run(store: Store, call_key: Digest) -> Run | None:
    """The ok run recorded under ``call_key``, or ``None`` (also for a damaged index)."""
    with store._read() as txn:
        found = schema.run_for_call(txn, call_key)
        if found is None:
            return None
        run = schema.read_record(txn, found)
    return run if isinstance(run, Run) else None


def labelled(store: Store, artifact: Artifact) -> Artifact:
    """``artifact`` viewed through the version it was registered under, if any."""
    with store._read() as txn:
        found = registry.VersionLabels(txn).label(artifact)
    return found if isinstance(found, Artifact) else artifact


def version_owner(store: Store, name: str, version: str) -> Digest | None:
    """The record ``name@version`` names, or ``None`` when the version is free."""
    with store._read() as txn:
        entry = schema.version_entry(txn, name, version)
    return None if entry is None else entry.target


def write_series(store: Store, run_id: str, points: Sequence[Point]) -> None:
    """Commit a batch of metric points of a run still open."""
    if points:
        store._write(lambda txn: _put_series(txn, run_id, points))


def commit_run(
    store: Store,
    make_run: Callable[[Digest], Run],
    *,
    content: Sequence[Prepared] = (),
    outputs: Mapping[str, Prepared] | None = None,
    children: Sequence[Digest] = (),
    series: Sequence[Point] = (),
    unversioned: Callable[[Run, InvalidName], Run] | None = None,
) -> Recorded:
    """Commit a run and everything it names in one transaction (see the module docstring).

    Args:
        make_run: builds the Run from the environment artifact's digest; called again
            when the content is staged again.
        content: staged artifacts committed without versions (inputs, code).
        outputs: staged outputs by key, committed with their versions when named.
        children: runs nested in this one (``child_of`` edges from it).
        series: metric points not yet written.
        unversioned: when an output's version is taken by another writer meanwhile,
            gives the run to record instead, with the outputs kept unversioned; without
            it the :class:`InvalidName` propagates and nothing is recorded.

    Raises:
        InvalidName: an output's explicit version names other content (no ``unversioned``).
        StoreError: a concurrent gc kept removing content this run reuses.
    """
    staged, named = list(content), dict(outputs or {})
    conflict: InvalidName | None = None
    for _ in range(_RETRIES):
        environment = store._environment()
        run = make_run(environment.artifact.raw_digest)
        if conflict is not None and unversioned is not None:
            run = unversioned(run, conflict)
        commit = partial(_commit, run=run, content=[*staged, environment], outputs=named,
                         children=children, series=series, versioned=conflict is None)
        try:
            versions = store._write(commit)
        except ChunkVanished:
            discard(store._backend, [*staged, *named.values()])
            staged = [p.again() for p in staged]
            named = {key: p.again() for key, p in named.items()}
            store._forget_environment()
            continue
        except InvalidName as taken:
            if unversioned is None or conflict is not None:
                discard(store._backend, [*staged, *named.values()])
                raise
            conflict = taken
            continue
        except BaseException:  # nothing committed: take back what staging wrote
            discard(store._backend, [*staged, *named.values()])  # (the cached environment
            raise  # is shared with other runs: its few bytes stay, for gc)
        return Recorded(run, versions, conflict)
    raise StoreError("content kept disappearing while recording a run (a concurrent gc?); "
                     "nothing was recorded")


def _commit(txn: WriteTxn, *, run: Run, content: Sequence[Prepared],
            outputs: Mapping[str, Prepared], children: Sequence[Digest],
            series: Sequence[Point], versioned: bool) -> dict[str, str | None]:
    _put_series(txn, run.id, series)
    for prepared in content:
        prepared.commit(txn, versioned=False)
    versions = {key: prepared.commit(txn, versioned=versioned)
                for key, prepared in outputs.items()}
    digest = schema.index_record(txn, run)
    for child in children:
        schema.add_edge(txn, digest, schema.EDGE_CHILD, child)
    return versions


def _put_series(txn: WriteTxn, run_id: str, points: Sequence[Point]) -> None:
    """Put a batch of metric points after each series' last stored point."""
    counters: dict[str, int] = {}  # per attempt: a retried transaction looks up again
    for name, step, when, value in points:
        position = counters.get(name)
        if position is None:  # the series' next free position, looked up once a batch
            position = schema.next_metric_seq(txn, run_id, name)
        counters[name] = position + 1
        schema.put_metric_point(txn, run_id, name, position, (step, when, value))
