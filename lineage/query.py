"""Queries over a store's provenance graph, read straight from its LMDB indexes.

Small pure functions in the style of ``networkx.algorithms.dag``: each takes a
:class:`~lineage.store.Store` and returns records (:class:`~lineage.records.Artifact`,
:class:`~lineage.records.Run`), never raw keys. None of them loads the whole graph: walks
read the two directions of the edge index, and :func:`runs` narrows its candidates with
the ``by_op`` index and the run value indexes before decoding any record.

Edges followed by :func:`ancestors` and :func:`descendants` are the data-flow ones
(``used``, ``generated``, ``derived_from``); ``child_of`` (run nesting) says where a run
was started, not what it read, so it appears only in :func:`graph`.

Run value indexes (written by :func:`run_index_entries` when a run is recorded)::

    run_params   key(param name) + key(value) + run digest -> b""
    run_metrics  key(metric name) + sortable float64(8) + run digest -> b""

where ``key(x)`` is the canonical encoding of ``x``, or ``0xc1`` + its XXH3-128 when that
is longer than :data:`_MAX_KEY_PART` bytes (LMDB keys are limited to 511 bytes). The indexes
only pre-select candidates: every filter is checked again on the decoded record.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
import struct
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final

from . import encoding
from .errors import InvalidQuery
from .hashing import Digest, digest_bytes
from .indexing import EDGE_CHILD, EDGE_DERIVED, EDGE_GENERATED, EDGE_NAMES, EDGE_USED
from .records import Artifact, Run
from .stores.base import ReadTxn

if TYPE_CHECKING:
    import networkx

    from .store import Store

__all__ = ["ancestors", "artifacts", "descendants", "graph", "run_index_entries", "runs"]

_DATA_FLOW: Final = frozenset({EDGE_USED, EDGE_GENERATED, EDGE_DERIVED})
_MAX_KEY_PART: Final = 200
_HASHED: Final = b"\xc1"  # a byte msgpack never uses: marks a hashed (too long) key part
_OPERATORS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
    "==": operator.eq, "!=": operator.ne,
}

Condition = tuple[str, Any]
Revision = str | Artifact | Run


# -- small readers shared with lineage.diff ------------------------------------------------


def upstream(
    txn: ReadTxn, digest: Digest, edge: bytes | None = None
) -> list[tuple[bytes, Digest]]:
    """``(edge type, source)`` of the edges into ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[16:17], Digest(key[17:])) for key, _ in txn.items("edges_in", prefix)]


def downstream(
    txn: ReadTxn, digest: Digest, edge: bytes | None = None
) -> list[tuple[bytes, Digest]]:
    """``(edge type, target)`` of the edges out of ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[16:17], Digest(key[17:])) for key, _ in txn.items("edges_out", prefix)]


class VersionLabels:
    """The version under which each named artifact was registered (latest label wins)."""

    def __init__(self, txn: ReadTxn) -> None:
        self._txn = txn
        self._by_name: dict[str, dict[Digest, tuple[int, str]]] = {}

    def lookup(self, artifact: Artifact) -> tuple[int, str] | None:
        """``(position in the name's history, version)`` of ``artifact``, if versioned."""
        if not artifact.name:
            return None
        table = self._by_name.get(artifact.name)
        if table is None:
            table = {}
            prefix = artifact.name.encode() + b"\0"
            for seq, (_key, value) in enumerate(self._txn.items("versions", prefix)):
                version, target, _when = encoding.decode(value)
                table[Digest(target)] = (seq, str(version))
            self._by_name[artifact.name] = table
        return table.get(artifact.raw_digest)

    def label(self, record: Artifact | Run) -> Artifact | Run:
        """``record`` viewed through its version, when it has one."""
        if isinstance(record, Artifact) and record.version is None:
            found = self.lookup(record)
            if found is not None:
                return record.with_version(found[1])
        return record


def _resolve(store: Store, txn: ReadTxn, revision: Revision) -> Digest:
    from .revisions import resolve

    if isinstance(revision, Artifact | Run):
        return revision.raw_digest
    return resolve(txn, revision)[0]


def _kinds(kind: str | Collection[str] | None) -> frozenset[str] | None:
    if kind is None:
        return None
    return frozenset([kind] if isinstance(kind, str) else kind)


# -- walks ----------------------------------------------------------------------------------


def _walk(store: Store, revision: Revision, depth: int | None, kind: Any,
          up: bool) -> list[Artifact | Run]:
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise InvalidQuery(f"depth must be a non-negative integer or None, got {depth!r}")
    wanted = _kinds(kind)
    step = upstream if up else downstream
    found: list[Artifact | Run] = []
    with store.read() as txn:
        start = _resolve(store, txn, revision)
        labels = VersionLabels(txn)
        seen = {start}
        frontier = [start]
        level = 0
        while frontier and (depth is None or level < depth):
            level += 1
            nxt = sorted({node for node_from in frontier for edge, node in step(txn, node_from)
                          if edge in _DATA_FLOW and node not in seen})
            seen.update(nxt)
            for digest in nxt:
                record = store._record(txn, digest)
                if wanted is None or record.kind in wanted:
                    found.append(labels.label(record))
            frontier = nxt
    return found


def ancestors(store: Store, revision: Revision, depth: int | None = None,
              kind: str | Collection[str] | None = None) -> list[Artifact | Run]:
    """Everything ``revision`` came from: runs that generated it, what they used, and so on.

    Args:
        store: the store to read.
        revision: an artifact or run, or a revision naming one (``"model@v1.1"``).
        depth: how many edges to follow (``None``: all the way; ``1``: the generating run).
        kind: keep only records of this kind (or kinds): ``"run"``, ``"dataset"``, ...
            The walk still passes through records of other kinds.

    Returns:
        Records nearest first (by number of edges, then digest); artifacts carry their
        version when they have one. ``revision`` itself is not included.

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: as for :meth:`Store.resolve`.
        InvalidQuery: ``depth`` is negative or not an integer.

    Example:
        >>> [r.kind for r in ancestors(store, "model@v1.1", depth=2)]  # doctest: +SKIP
        ['run', 'code', 'dataset', 'environment']
    """
    return _walk(store, revision, depth, kind, up=True)


def descendants(store: Store, revision: Revision, depth: int | None = None,
                kind: str | Collection[str] | None = None) -> list[Artifact | Run]:
    """Everything made from ``revision``: what is affected if it is bad.

    Same arguments, order and errors as :func:`ancestors`, following edges downstream.

    Example:
        >>> [m.version for m in descendants(store, "dataset@v1.0", kind="model")]  # doctest: +SKIP
        ['v1.0']
    """
    return _walk(store, revision, depth, kind, up=False)


# -- runs -------------------------------------------------------------------------------------


def _key_part(value: Any) -> bytes:
    data = encoding.encode(value)
    return data if len(data) <= _MAX_KEY_PART else _HASHED + digest_bytes(data)


def _sortable(value: float) -> bytes:
    """Eight bytes whose byte order is the numeric order of ``value`` (not NaN)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", value if value != 0 else 0.0))
    return struct.pack(">Q", bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63)


def run_index_entries(run: Run) -> Iterator[tuple[str, bytes]]:
    """The ``(namespace, key)`` value-index entries of ``run`` (see the module docstring)."""
    digest = run.raw_digest
    for name, value in run.params.items():
        yield "run_params", _key_part(name) + _key_part(value) + digest
    for name, metric in run.metrics.items():
        if isinstance(metric, int | float) and not isinstance(metric, bool) \
                and not math.isnan(metric):
            yield "run_metrics", _key_part(name) + _sortable(float(metric)) + digest


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


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
    if (what == "metric" or op not in ("==", "!=")) and not _is_number(value):
        raise InvalidQuery(
            f"{what} {name!r}: expected a number or (operator, number) to compare with, got "
            f"{spec!r}"
        )
    return op, value


def _same(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return bool(left == right)
    try:
        return encoding.encode(left) == encoding.encode(right)
    except Exception:  # noqa: BLE001 - an unencodable query value matches nothing
        return False


def _holds(value: Any, condition: Condition) -> bool:
    op, wanted = condition
    if op == "==":
        return _same(value, wanted)
    if op == "!=":
        return not _same(value, wanted)
    if not _is_number(value):
        return False
    return _OPERATORS[op](value, wanted)


def _equal_keys(value: Any) -> list[bytes]:
    keys = [_key_part(value)]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        keys.append(_key_part(int(value)))
    elif isinstance(value, int) and not isinstance(value, bool):
        keys.append(_key_part(float(value)))
    return keys


def _param_candidates(txn: ReadTxn, name: str, condition: Condition) -> set[bytes]:
    prefix = _key_part(name)
    if condition[0] == "==":
        return {key[-16:] for part in _equal_keys(condition[1])
                for key, _ in txn.items("run_params", prefix + part)
                if len(key) == len(prefix) + len(part) + 16}
    found = set()
    for key, _ in txn.items("run_params", prefix):
        part = key[len(prefix):-16]
        if part[:1] == _HASHED or _holds(encoding.decode(part), condition):
            found.add(key[-16:])
    return found


def _metric_candidates(txn: ReadTxn, name: str, condition: Condition) -> set[bytes]:
    op, wanted = condition
    if math.isnan(wanted):
        return set()
    prefix = _key_part(name)
    start, end = len(prefix), len(prefix) + 8
    threshold = _sortable(float(wanted))
    if op == "==":
        return {key[-16:] for key, _ in txn.items("run_metrics", prefix + threshold)}
    if op == "!=":
        return {key[-16:] for key, _ in txn.items("run_metrics", prefix)
                if key[start:end] != threshold}
    found = set()
    descending = op in (">", ">=")
    for key, _ in txn.items("run_metrics", prefix, reverse=descending):
        if not _OPERATORS[op](key[start:end], threshold):
            break  # keys are sorted by value: nothing further can match
        found.add(key[-16:])
    return found


def _timestamp(value: float | _dt.datetime | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, _dt.datetime):
        return value.timestamp()
    if _is_number(value):
        return float(value)
    raise InvalidQuery(f"{what} must be a datetime or seconds since the epoch, got {value!r}")


def runs(
    store: Store,
    op: str | None = None,
    *,
    used: Revision | None = None,
    produced: Revision | None = None,
    status: str | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    since: float | _dt.datetime | None = None,
    until: float | _dt.datetime | None = None,
    name: str | None = None,
    limit: int | None = None,
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
        name: the run's own name.
        limit: at most this many runs (the newest).

    Returns:
        :class:`Run` records, newest start first.

    Raises:
        InvalidQuery: a malformed condition, status or limit.
        RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``used``/``produced``.

    Example:
        >>> runs(store, "train", params={"C": 0.5},
        ...      metrics={"sensitivity": (">", 0.9)})  # doctest: +SKIP
        [<Run train ok 3f2a... inputs=['dataset'] outputs=['model']>]
    """
    if status is not None and status not in ("ok", "failed"):
        raise InvalidQuery(f"status must be 'ok' or 'failed', got {status!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise InvalidQuery(f"limit must be a non-negative integer, got {limit!r}")
    param_conditions = {k: _condition(v, "param", k) for k, v in (params or {}).items()}
    metric_conditions = {k: _condition(v, "metric", k) for k, v in (metrics or {}).items()}
    start, end = _timestamp(since, "since"), _timestamp(until, "until")
    with store.read() as txn:
        candidates: set[bytes] | None = None

        def narrow(found: Iterable[bytes]) -> None:
            nonlocal candidates
            candidates = set(found) if candidates is None else candidates & set(found)

        if used is not None:
            narrow(d for _e, d in downstream(txn, _resolve(store, txn, used), EDGE_USED))
        if produced is not None:
            narrow(d for _e, d in upstream(txn, _resolve(store, txn, produced), EDGE_GENERATED))
        for key, condition in param_conditions.items():
            narrow(_param_candidates(txn, key, condition))
        for key, condition in metric_conditions.items():
            narrow(_metric_candidates(txn, key, condition))
        if op is not None and candidates is None:
            candidates = _op_candidates(txn, op, start, end)
        elif candidates is None:
            candidates = {key[-16:] for key, _ in txn.items("by_kind", b"run\0")}
        found = [store._record(txn, Digest(digest)) for digest in candidates]

    def keep(run: Run) -> bool:
        return (
            (op is None or run.op == op)
            and (status is None or run.status == status)
            and (name is None or run.name == name)
            and (start is None or run.started >= start)
            and (end is None or run.started <= end)
            and all(k in run.params and _holds(run.params[k], c)
                    for k, c in param_conditions.items())
            and all(k in run.metrics and _holds(run.metrics[k], c)
                    for k, c in metric_conditions.items())
        )

    matching = sorted((r for r in found if isinstance(r, Run) and keep(r)),
                      key=lambda r: (-r.started, r.digest))
    return matching[:limit] if limit is not None else matching


def _op_candidates(txn: ReadTxn, op: str, start: float | None, end: float | None) -> set[bytes]:
    prefix = op.encode() + b"\0"
    found = set()
    for key, _ in txn.items("by_op", prefix, reverse=True):
        started = int.from_bytes(key[len(prefix):len(prefix) + 8], "big") / 1e6
        if end is not None and started > end + 1e-6:
            continue
        if start is not None and started < start - 1e-6:
            break
        found.add(key[-16:])
    return found


# -- artifacts ----------------------------------------------------------------------------------


def artifacts(store: Store, kind: str | None = None, name: str | None = None) -> list[Artifact]:
    """Artifacts of a kind and/or under a name, each with its version when it has one.

    Returns:
        Artifacts ordered by name, then version history (unversioned last), then digest.

    Raises:
        InvalidName: ``name`` breaks the naming rules.
        InvalidQuery: ``kind`` is ``"run"`` (use :func:`runs`).

    Example:
        >>> [a.version for a in artifacts(store, name="dataset")]  # doctest: +SKIP
        ['v1.0', 'v1.1']
    """
    from .revisions import check_name

    if kind == "run":
        raise InvalidQuery("runs are not artifacts; use store.runs() to query them")
    if name is not None:
        check_name(name)
    with store.read() as txn:
        if name is not None:
            digests = [Digest(k[-16:]) for k, _ in txn.items("by_name", name.encode() + b"\0")]
        elif kind is not None:
            digests = [Digest(k[-16:]) for k, _ in txn.items("by_kind", kind.encode() + b"\0")]
        else:
            digests = [Digest(k[-16:]) for k, _ in txn.items("by_kind")
                       if not k.startswith(b"run\0")]
        labels = VersionLabels(txn)
        found = []
        for digest in digests:
            record = store._record(txn, digest)
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
        attrs.update(op=record.op, status=record.status, name=record.name, id=record.id,
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


def graph(store: Store, revision: Revision | None = None, depth: int | None = None,
          direction: str = "both") -> networkx.MultiDiGraph:
    """A :class:`networkx.MultiDiGraph` of the store, or of one record's lineage.

    Args:
        revision: ``None`` for the whole store; else the record whose lineage to include.
        depth: with ``revision``, how many edges to follow in each direction.
        direction: ``"upstream"`` (ancestors), ``"downstream"`` (descendants) or
            ``"both"``.

    Returns:
        Nodes keyed by 32-hex digest with attributes ``kind``, ``digest``, ``name`` and,
        for artifacts, ``version``, ``format``, ``size``; for runs ``op``, ``status``,
        ``id``, ``started``, ``ended``, ``params``, ``metrics``. Edges keyed and
        attributed by ``type`` (``used``, ``generated``, ``derived_from``, ``child_of``),
        with ``roles``: the input/output names under which a run used or made the artifact.

    Raises:
        InvalidQuery: a bad ``direction`` or ``depth``.
        RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``revision``.

    Example:
        >>> g = graph(store, "model@v1.1", direction="upstream")  # doctest: +SKIP
        >>> sorted({d["kind"] for _, d in g.nodes(data=True)})  # doctest: +SKIP
        ['code', 'dataset', 'environment', 'model', 'run']
    """
    import networkx

    if direction not in ("upstream", "downstream", "both"):
        raise InvalidQuery(f"direction must be upstream, downstream or both, got {direction!r}")
    result = networkx.MultiDiGraph()
    if revision is None:
        records = list(_all_records(store))
    else:
        records = [store.resolve(revision)]
        if direction in ("upstream", "both"):
            records += ancestors(store, records[0], depth)
        if direction in ("downstream", "both"):
            records += descendants(store, records[0], depth)
    with store.read() as txn:
        labels = VersionLabels(txn)
        by_digest = {r.raw_digest: labels.label(r) for r in records}
        for digest, record in by_digest.items():
            result.add_node(digest.hex(), **_node_attrs(record))
        for digest, record in by_digest.items():
            for edge, target in downstream(txn, digest):
                if target not in by_digest:
                    continue
                run = record if isinstance(record, Run) else by_digest[target]
                other = target if isinstance(record, Run) else digest
                roles = _roles(run, other, edge) if edge != EDGE_CHILD else []
                kind = EDGE_NAMES.get(edge, edge.decode(errors="replace"))
                result.add_edge(digest.hex(), target.hex(), key=kind, type=kind, roles=roles)
    return result


def _all_records(store: Store) -> Iterator[Artifact | Run]:
    with store.read() as txn:
        digests = [Digest(key[-16:]) for key, _ in txn.items("by_kind")]
        for digest in digests:
            yield store._record(txn, digest)
