"""Queries over a store's provenance graph, read straight from its indexes.

Small pure functions in the style of ``networkx.algorithms.dag``: each takes a read
transaction (``store`` methods open one and delegate here) and returns records
(:class:`~lineage.core.records.Artifact`, :class:`~lineage.core.records.Run`), never raw
keys. None of them loads the whole graph: walks read the two directions of the edge index,
and :func:`runs` narrows its candidates with the ``by_op`` index and the run value indexes
before decoding any record (see :mod:`lineage.storage.schema`).

Edges followed by :func:`ancestors` and :func:`descendants` are the data-flow ones
(``used``, ``generated``, ``derived_from``); ``child_of`` (run nesting) says where a run
was started, not what it read, so it appears only in :func:`graph`.
"""

from __future__ import annotations

import datetime as _dt
import heapq
import itertools
import math
import operator
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from lineage.core.hashing import Digest, unchecked_digest
from lineage.core.plain import is_number, same_value
from lineage.core.records import Artifact, Run
from lineage.errors import InvalidQuery
from lineage.refs.registry import VersionLabels
from lineage.refs.revisions import check_name, resolve
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.schema import (
    DATA_FLOW,
    EDGE_CHILD,
    EDGE_GENERATED,
    EDGE_NAMES,
    EDGE_USED,
    downstream,
    upstream,
)

if TYPE_CHECKING:
    import networkx

__all__ = ["ancestors", "artifacts", "descendants", "graph", "resolve_digest", "runs"]

_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}

Condition = tuple[str, Any]
Revision = str | Digest | Artifact | Run


def resolve_digest(txn: ReadTxn, revision: Revision) -> Digest:
    """The digest a revision (or a record, or a digest) names.

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: as for ``Store.resolve``.
    """
    if isinstance(revision, Artifact | Run):
        return revision.raw_digest
    if isinstance(revision, Digest):
        return revision
    return resolve(txn, revision)[0]


def _kinds(kind: str | Collection[str] | None) -> frozenset[str] | None:
    if kind is None:
        return None
    return frozenset([kind] if isinstance(kind, str) else kind)


# -- walks ----------------------------------------------------------------------------------


def _walk(txn: ReadTxn, revision: Revision, depth: int | None, kind: Any,
          up: bool) -> list[Artifact | Run]:
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                              or depth < 0):
        raise InvalidQuery(f"depth must be a non-negative integer or None, got {depth!r}")
    wanted = _kinds(kind)
    step = upstream if up else downstream
    found: list[Artifact | Run] = []
    start = resolve_digest(txn, revision)
    labels = VersionLabels(txn)
    seen = {start}
    frontier = [start]
    level = 0
    while frontier and (depth is None or level < depth):
        level += 1
        nxt = sorted({node for node_from in frontier for edge, node in step(txn, node_from)
                      if edge in DATA_FLOW and node not in seen})
        seen.update(nxt)
        for digest in nxt:
            if wanted is not None and not any(schema.is_kind(txn, digest, k) for k in wanted):
                continue
            found.append(labels.label(schema.read_record(txn, digest)))
        frontier = nxt
    return found


def ancestors(txn: ReadTxn, revision: Revision, *, depth: int | None = None,
              kind: str | Collection[str] | None = None) -> list[Artifact | Run]:
    """Everything ``revision`` came from: runs that generated it, what they used, and so on.

    Args:
        txn: a read transaction of the store.
        revision: an artifact or run, or a revision naming one (``"model@v1.1"``).
        depth: how many edges to follow (``None``: all the way; ``1``: the generating run).
        kind: keep only records of this kind (or kinds): ``"run"``, ``"dataset"``, ...
            The walk still passes through records of other kinds.

    Returns:
        Records nearest first (by number of edges, then digest); artifacts carry their
        version when they have one. ``revision`` itself is not included.

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: as for ``Store.resolve``.
        InvalidQuery: ``depth`` is negative or not an integer.

    Example:
        >>> [r.kind for r in store.ancestors("model@v1.1", depth=2)]  # doctest: +SKIP
        ['run', 'code', 'dataset', 'environment']
    """
    return _walk(txn, revision, depth, kind, up=True)


def descendants(txn: ReadTxn, revision: Revision, *, depth: int | None = None,
                kind: str | Collection[str] | None = None) -> list[Artifact | Run]:
    """Everything made from ``revision``: what is affected if it is bad.

    Same arguments, order and errors as :func:`ancestors`, following edges downstream.

    Example:
        >>> [m.version for m in store.descendants("dataset@v1.0", kind="model")]  # doctest: +SKIP
        ['v1.0']
    """
    return _walk(txn, revision, depth, kind, up=False)


# -- runs -------------------------------------------------------------------------------------


def _condition(spec: Any, what: str, name: str) -> Condition:
    if isinstance(spec, tuple):
        if len(spec) != 2 or spec[0] not in _OPERATORS:
            raise InvalidQuery(
                f"{what} {name!r}: a condition is (operator, value) with operator one of "
                f"{', '.join(_OPERATORS)}; got {spec!r}"
            )
        op, value = spec
    else:
        op, value = "==", spec
    if (what == "metric" or op not in ("==", "!=")) and not is_number(value):
        raise InvalidQuery(
            f"{what} {name!r}: expected a number or (operator, number) to compare with, got "
            f"{spec!r}"
        )
    return op, value


def _holds(value: Any, condition: Condition) -> bool:
    op, wanted = condition
    if op == "==":
        return same_value(value, wanted)
    if op == "!=":
        return not same_value(value, wanted)
    if not is_number(value):
        return False
    return _OPERATORS[op](value, wanted)


def _equal_parts(value: Any) -> list[bytes]:
    """Index key parts of the values equal to ``value`` (``1`` and ``1.0`` compare equal)."""
    try:
        parts = [schema.key_part(value)]
    except Exception:  # noqa: BLE001 - an unencodable query value matches nothing
        return []
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        parts.append(schema.key_part(int(value)))
    elif isinstance(value, int) and not isinstance(value, bool):
        parts.append(schema.key_part(float(value)))
    return parts


def _param_candidates(txn: ReadTxn, name: str, condition: Condition) -> set[bytes]:
    if condition[0] == "==":
        return schema.runs_with_param_part(txn, name, _equal_parts(condition[1]))
    return {run for value, run in schema.runs_by_param(txn, name)
            if value is None or _holds(value, condition)}


def _metric_candidates(txn: ReadTxn, name: str, condition: Condition) -> set[bytes]:
    op, wanted = condition
    if math.isnan(wanted):
        return set()
    wanted = float(wanted)
    if op in ("==", "!="):
        return {run for value, run in schema.runs_by_metric(txn, name)
                if (value == wanted) == (op == "==")}
    return schema.runs_with_metric(txn, name, op, wanted)


def _timestamp(value: float | _dt.datetime | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if is_number(value):
        return float(value)
    raise InvalidQuery(f"{what} must be a datetime or seconds since the epoch, got {value!r}")


def runs(
    txn: ReadTxn,
    op: str | None = None,
    *,
    used: Revision | None = None,
    produced: Revision | None = None,
    status: str | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    since: float | _dt.datetime | None = None,
    until: float | _dt.datetime | None = None,
    label: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> list[Run]:
    """Runs matching every filter given, newest first.

    Args:
        op: the operation (step or run name), read from the ``by_op`` index.
        used: an artifact the run used (as input, code, environment or test set).
        produced: an artifact the run generated.
        status: ``"ok"`` or ``"failed"``.
        params: ``{name: value}`` equality (ints and floats compare by value), or
            ``{name: (operator, number)}`` with operator one of ``> >= < <= == !=``.
        metrics: ``{name: (operator, number)}`` or ``{name: number}``; runs without the
            metric never match.
        since, until: bounds on the start time, inclusive (datetime or epoch seconds).
        label: the run's own label.
        limit: at most this many runs (the newest).
        offset: skip this many of the newest matching runs first (for pages). Without
            filters, a page is read from the time-ordered ``by_op`` index and decodes only
            the runs it returns, however many the store holds.

    Returns:
        :class:`Run` records, newest start first.

    Raises:
        InvalidQuery: a malformed condition, status or limit.
        RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``used``/``produced``.

    Example:
        >>> store.runs("train", params={"C": 0.5},
        ...            metrics={"sensitivity": (">", 0.9)})  # doctest: +SKIP
        [<Run train ok 3f2a... inputs=['dataset'] outputs=['model']>]
    """
    if status is not None and status not in ("ok", "failed"):
        raise InvalidQuery(f"status must be 'ok' or 'failed', got {status!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidQuery(f"limit must be a non-negative integer, got {limit!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidQuery(f"offset must be a non-negative integer, got {offset!r}")
    unfiltered = all(f is None for f in (op, used, produced, status, params, metrics, since,
                                         until, label))
    if unfiltered and limit is not None:
        return _newest_runs(txn, offset, limit)
    param_conditions = {k: _condition(v, "param", k) for k, v in (params or {}).items()}
    metric_conditions = {k: _condition(v, "metric", k) for k, v in (metrics or {}).items()}
    start, end = _timestamp(since, "since"), _timestamp(until, "until")
    candidates: set[bytes] | None = None  # digests' bytes: wrapped only once narrowed

    def narrow(found: Iterable[bytes]) -> None:
        nonlocal candidates
        candidates = set(found) if candidates is None else candidates & set(found)

    if used is not None:
        narrow(d for _e, d in downstream(txn, resolve_digest(txn, used), EDGE_USED))
    if produced is not None:
        narrow(d for _e, d in upstream(txn, resolve_digest(txn, produced), EDGE_GENERATED))
    for key, condition in param_conditions.items():
        narrow(_param_candidates(txn, key, condition))
    for key, condition in metric_conditions.items():
        narrow(_metric_candidates(txn, key, condition))
    if op is not None and candidates is None:
        candidates = _op_candidates(txn, op, start, end)
    elif candidates is None:
        candidates = set(schema.record_digests(txn, "run"))
    found = [schema.read_record(txn, unchecked_digest(digest)) for digest in candidates]

    def keep(run: Run) -> bool:
        return (
            (op is None or run.op == op)
            and (status is None or run.status == status)
            and (label is None or run.label == label)
            and (start is None or run.started >= start)
            and (end is None or run.started <= end)
            and all(k in run.params and _holds(run.params[k], c)
                    for k, c in param_conditions.items())
            and all(k in run.metrics and _holds(run.metrics[k], c)
                    for k, c in metric_conditions.items())
        )

    matching = sorted((r for r in found if isinstance(r, Run) and keep(r)),
                      key=lambda r: (-r.started, r.digest))
    return matching[offset:offset + limit] if limit is not None else matching[offset:]


def _newest_runs(txn: ReadTxn, offset: int, limit: int) -> list[Run]:
    """Runs newest first, merged from the per-operation time indexes."""
    merged = heapq.merge(*(schema.runs_of_op(txn, op) for op in schema.run_ops(txn)),
                         key=lambda item: (-item[0], item[1]))
    page = itertools.islice(merged, offset, offset + limit)
    return [r for _started, digest in page
            if isinstance(r := schema.read_record(txn, digest), Run)]



def _op_candidates(txn: ReadTxn, op: str, start: float | None, end: float | None
                   ) -> set[bytes]:
    found: set[bytes] = set()
    for started, digest in schema.runs_of_op(txn, op):
        if end is not None and started > end + 1e-6:
            continue
        if start is not None and started < start - 1e-6:
            break
        found.add(digest)
    return found


# -- artifacts ----------------------------------------------------------------------------------


def artifacts(txn: ReadTxn, *, kind: str | None = None, name: str | None = None
              ) -> list[Artifact]:
    """Artifacts of a kind and/or under a name, each with its version when it has one.

    Returns:
        Artifacts ordered by name, then version history (unversioned last), then digest.

    Raises:
        InvalidName: ``name`` breaks the naming rules.
        InvalidQuery: ``kind`` is ``"run"`` (use :func:`runs`).

    Example:
        >>> [a.version for a in store.artifacts(name="dataset")]  # doctest: +SKIP
        ['v1.0', 'v1.1']
    """
    if kind == "run":
        raise InvalidQuery("runs are not artifacts; use store.runs() to query them")
    if name is not None:
        check_name(name)
        digests = schema.artifacts_named(txn, name)
    elif kind is not None:
        digests = schema.record_digests(txn, kind)
    else:
        runs_ = set(schema.record_digests(txn, "run"))
        digests = [d for d in schema.record_digests(txn) if d not in runs_]
    labels = VersionLabels(txn)
    found = []
    for digest in digests:
        record = schema.read_record(txn, digest)
        if isinstance(record, Artifact) and (kind is None or record.kind == kind):
            found.append((record, labels.lookup(record)))

    def order(item: tuple[Artifact, tuple[int, str] | None]) -> tuple[str, float, str]:
        record, seq = item
        return (record.name or "", seq[0] if seq else math.inf, record.digest)

    return [record.with_version(seq[1]) if seq else record
            for record, seq in sorted(found, key=order)]


# -- networkx view ------------------------------------------------------------------------------


def _node_attrs(record: Artifact | Run) -> dict[str, Any]:
    attrs: dict[str, Any] = {"kind": record.kind, "digest": record.digest}
    if isinstance(record, Run):
        attrs.update(op=record.op, status=record.status, label=record.label, id=record.id,
                     started=record.started, ended=record.ended, params=record.params,
                     metrics=record.metrics)
    else:
        attrs.update(name=record.name, version=record.version, format=record.format,
                     size=record.size)
    return attrs


def _roles(record: Artifact | Run | None, other: Digest, edge: bytes) -> list[str]:
    if not isinstance(record, Run):
        return []
    table = record.inputs if edge == EDGE_USED else record.outputs if edge == EDGE_GENERATED \
        else {}
    roles = [role for role, digest in table.items() if digest == other]
    if edge == EDGE_USED:
        roles += [role for role, digest in (("code", record.code),
                                            ("environment", record.environment))
                  if digest == other]
        roles += [f"test set of {metric}" for metric, digest in record.metric_datasets.items()
                  if digest == other and digest not in record.inputs.values()]
    return sorted(roles)


def graph(txn: ReadTxn, revision: Revision | None = None, *, depth: int | None = None,
          direction: str = "both") -> networkx.MultiDiGraph:
    """A :class:`networkx.MultiDiGraph` of the store, or of one record's lineage.

    Args:
        revision: ``None`` for the whole store; else the record whose lineage to include.
        depth: with ``revision``, how many edges to follow in each direction.
        direction: ``"upstream"`` (ancestors), ``"downstream"`` (descendants) or
            ``"both"``.

    Returns:
        Nodes keyed by 32-hex digest with attributes ``kind``, ``digest`` and, for
        artifacts, ``name``, ``version``, ``format``, ``size``; for runs ``op``, ``label``,
        ``status``, ``id``, ``started``, ``ended``, ``params``, ``metrics``. Edges keyed and
        attributed by ``type`` (``used``, ``generated``, ``derived_from``, ``child_of``),
        with ``roles``: the input/output names under which a run used or made the artifact.

    Raises:
        InvalidQuery: a bad ``direction`` or ``depth``.
        RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``revision``.

    Example:
        >>> g = store.graph("model@v1.1", direction="upstream")  # doctest: +SKIP
        >>> sorted({d["kind"] for _, d in g.nodes(data=True)})  # doctest: +SKIP
        ['code', 'dataset', 'environment', 'model', 'run']
    """
    import networkx

    if direction not in ("upstream", "downstream", "both"):
        raise InvalidQuery(f"direction must be upstream, downstream or both, got {direction!r}")
    result = networkx.MultiDiGraph()
    if revision is None:
        records = list(_all_records(txn))
    else:
        records = [schema.read_record(txn, resolve_digest(txn, revision))]
        if direction in ("upstream", "both"):
            records += ancestors(txn, records[0], depth=depth)
        if direction in ("downstream", "both"):
            records += descendants(txn, records[0], depth=depth)
    labels = VersionLabels(txn)
    by_digest = {r.raw_digest: labels.label(r) for r in records}
    for digest, record in by_digest.items():
        result.add_node(digest.hex(), **_node_attrs(record))
    # Edges are found from their target's side: a node's in-edges are its own few inputs,
    # while a shared environment or code record has an out-edge to every run that used it.
    for digest, record in by_digest.items():
        for edge, source in upstream(txn, digest):
            if source not in by_digest:
                continue
            origin = by_digest[source]
            run = origin if isinstance(origin, Run) else record
            other = digest if isinstance(origin, Run) else source
            roles = _roles(run, other, edge) if edge != EDGE_CHILD else []
            kind = EDGE_NAMES.get(edge, edge.decode(errors="replace"))
            result.add_edge(source.hex(), digest.hex(), key=kind, type=kind, roles=roles)
    return result


def _all_records(txn: ReadTxn) -> Iterator[Artifact | Run]:
    for digest in schema.record_digests(txn):
        yield schema.read_record(txn, digest)
