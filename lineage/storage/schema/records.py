"""Records and their indexes: the records themselves, kinds and names, edges, runs by
operation, id, call key, param and metric, and metric series."""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Iterable, Iterator
from typing import Any, Final

from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes, unchecked_digest
from lineage.core.records import Artifact, Run, decode_record, encoded_with_digest
from lineage.errors import (
    CollisionError,
    CorruptRecordError,
    IntegrityError,
    RevisionNotFound,
)
from lineage.storage.base import ReadTxn, WriteTxn
from lineage.storage.schema.keys import (
    DIGEST,
    EDGE_CHILD,
    EDGE_DERIVED,
    EDGE_GENERATED,
    EDGE_USED,
    HASHED,
    MAX_KEY_PART,
    SEQ_SIZE,
    name_key,
    seq_key,
)
from lineage.storage.schema.log import append_event

# -- records --------------------------------------------------------------------------------


def read_record(txn: ReadTxn, digest: Digest) -> Artifact | Run:
    """The record stored under ``digest``, its bytes re-hashed first. Raises RevisionNotFound,
    IntegrityError (bytes that do not hash to it) or CorruptRecordError (undecodable)."""
    data = txn.get("records", digest)
    if data is None:
        raise RevisionNotFound(f"no record {digest.hex()} in the store")
    actual = digest_bytes(data)
    if actual != digest:
        raise IntegrityError(f"record {digest.hex()} is corrupt: its bytes hash to "
                             f"{actual.hex()}; run `lineage verify`",
                             expected=digest, actual=actual)
    return decode_record(data, digest)


def raw_record(txn: ReadTxn, digest: Digest) -> bytes | None:
    """The stored bytes of record ``digest``, unverified (for gc and verify), or ``None``."""
    return txn.get("records", digest)


def digests_with_prefix(txn: ReadTxn, hex_prefix: str, limit: int) -> list[Digest]:
    """Up to ``limit`` record digests whose hex starts with ``hex_prefix`` (lowercase)."""
    even = bytes.fromhex(hex_prefix[: len(hex_prefix) // 2 * 2])
    found = (Digest(key) for key in txn.keys("records", even)
             if key.hex().startswith(hex_prefix))
    return list(itertools.islice(found, limit))


def record_digests(txn: ReadTxn, kind: str | None = None) -> list[Digest]:
    """Digests of every record, or of those of ``kind`` (``"run"`` for runs)."""
    prefix = kind.encode() + b"\0" if kind is not None else b""
    return [unchecked_digest(key[-DIGEST:]) for key in txn.keys("by_kind", prefix)]


def is_kind(txn: ReadTxn, digest: Digest, kind: str) -> bool:
    """Whether the record ``digest`` is of ``kind`` (read from the kind index)."""
    return txn.get("by_kind", kind.encode() + b"\0" + digest) is not None


def artifacts_named(txn: ReadTxn, name: str) -> list[Digest]:
    """Digests of every artifact recorded under ``name`` (versioned or not)."""
    return [unchecked_digest(key[-DIGEST:]) for key in txn.keys("by_name", name_key(name))]


def index_record(txn: WriteTxn, record: Artifact | Run) -> Digest:
    """Store ``record`` with its indexes and edges (again: no change); ``CollisionError``
    if a different record has its digest. Returns its digest."""
    encoded, digest = encoded_with_digest(record)
    stored = txn.get("records", digest)
    if stored is not None and bytes(stored) == encoded:
        return digest
    if stored is not None and digest_bytes(stored) == digest:
        raise CollisionError(
            f"record {digest.hex()} differs from the stored record with that digest "
            "(an XXH3-128 collision); nothing was stored", digest=digest)
    txn.put("records", digest, encoded)  # new, or replacing a corrupt copy
    if stored is None:
        seq = append_event(txn, "record", {"digest": digest, "kind": record.kind,
                                           "name": record.name})
        txn.put("added", digest, seq_key(seq))
    for namespace, key, value in index_entries(record, digest):
        txn.put(namespace, key, value)
    if isinstance(record, Run) and record.parent:
        parent_run = run_by_id(txn, record.parent)
        if parent_run is not None:
            add_edge(txn, parent_run, EDGE_CHILD, digest)
    return digest


#: The namespaces :func:`index_entries` fills: derived from the records alone.
DERIVED_INDEXES: Final = ("by_kind", "by_name", "by_op", "run_ids", "call_keys",
                          "run_params", "run_metrics", "edges_out", "edges_in")


def index_entries(record: Artifact | Run, digest: Digest
                  ) -> Iterator[tuple[str, bytes, bytes]]:
    """``(namespace, key, value)`` of every index entry ``record`` (stored under ``digest``)
    owns: by kind, name and operation, its run id and call key, its params and metrics,
    and its edges in both directions, except the edge from its parent run (found by the
    parent's id when either of them is stored). What :func:`index_record` writes and
    ``verify`` checks the indexes against."""
    yield "by_kind", record.kind.encode() + b"\0" + digest, b""
    if isinstance(record, Artifact):
        if record.name:
            yield "by_name", name_key(record.name) + digest, b""
        for parent in record.parents:
            yield from _edge_entries(parent, EDGE_DERIVED, digest)
        return
    started = int(record.started * 1e6).to_bytes(8, "big")
    yield "by_op", record.op.encode() + b"\0" + started + digest, b""
    yield "run_ids", record.id.encode(), digest
    if record.call_key is not None and record.status == "ok":
        yield "call_keys", record.call_key, digest
    for namespace, key in _run_value_keys(record):
        yield namespace, key, b""
    for source in {*record.inputs.values(), *record.metric_datasets.values()}:
        yield from _edge_entries(source, EDGE_USED, digest)
    for made in set(record.outputs.values()):
        yield from _edge_entries(digest, EDGE_GENERATED, made)
    for code_or_env in (record.code, record.environment):
        if code_or_env is not None:
            yield from _edge_entries(code_or_env, EDGE_USED, digest)


def unindex_record(txn: WriteTxn, digest: Digest) -> None:
    """Remove an artifact record, its kind and name entries and every edge touching it."""
    data = txn.get("records", digest)
    txn.delete("records", digest)
    txn.delete("added", digest)
    if data is None:
        return
    try:
        record = decode_record(data)
        txn.delete("by_kind", record.kind.encode() + b"\0" + digest)
        if isinstance(record, Artifact) and record.name:
            txn.delete("by_name", name_key(record.name) + digest)
    except CorruptRecordError:
        pass  # an undecodable record's index entries cannot be named; verify reports it
    for namespace, other in (("edges_out", "edges_in"), ("edges_in", "edges_out")):
        for key, _value in list(txn.items(namespace, digest)):
            edge, peer = key[DIGEST:DIGEST + 1], key[DIGEST + 1:]
            txn.delete(namespace, key)
            txn.delete(other, peer + edge + digest)


# -- edges ----------------------------------------------------------------------------------


def add_edge(txn: WriteTxn, src: Digest, edge: bytes, dst: Digest) -> None:
    """Index an edge in both directions."""
    for namespace, key, value in _edge_entries(src, edge, dst):
        txn.put(namespace, key, value)


def _edge_entries(src: Digest, edge: bytes, dst: Digest) -> Iterator[tuple[str, bytes, bytes]]:
    yield "edges_out", src + edge + dst, b""
    yield "edges_in", dst + edge + src, b""



Edge = tuple[bytes, Digest]


def upstream(txn: ReadTxn, digest: Digest, edge: bytes | None = None) -> list[Edge]:
    """``(edge type, source)`` of the edges into ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[DIGEST:DIGEST + 1], unchecked_digest(key[DIGEST + 1:]))
            for key in txn.keys("edges_in", prefix)]


def downstream(txn: ReadTxn, digest: Digest, edge: bytes | None = None) -> list[Edge]:
    """``(edge type, target)`` of the edges out of ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[DIGEST:DIGEST + 1], unchecked_digest(key[DIGEST + 1:]))
            for key in txn.keys("edges_out", prefix)]


# -- runs -----------------------------------------------------------------------------------


def runs_of_op(txn: ReadTxn, op: str) -> Iterator[tuple[float, Digest]]:
    """``(start time, run digest)`` of the runs of ``op``, newest first."""
    at = len(op.encode()) + 1
    return ((int.from_bytes(key[at:at + 8], "big") / 1e6, unchecked_digest(key[-DIGEST:]))
            for key in txn.keys("by_op", op.encode() + b"\0", reverse=True))


def run_by_id(txn: ReadTxn, run_id: str) -> Digest | None:
    """The run whose id is ``run_id``, or ``None``."""
    value = txn.get("run_ids", run_id.encode())
    return None if value is None else encoding.as_digest(value, f"the index of run {run_id}")


def run_ops(txn: ReadTxn) -> list[str]:
    """Every operation that has runs, sorted."""
    return sorted({key.split(b"\0", 1)[0].decode() for key in txn.keys("by_op")})


def run_for_call(txn: ReadTxn, call_key: Digest) -> Digest | None:
    """The ok run recorded under ``call_key`` (a memoized call), or ``None``."""
    value = txn.get("call_keys", call_key)
    return None if value is None else encoding.as_digest(value, "a call-key index entry")


def key_part(value: Any) -> bytes:
    """``part(value)``: see the module docstring."""
    data = encoding.encode(value)
    return data if len(data) <= MAX_KEY_PART else HASHED + digest_bytes(data)


def sortable(value: float) -> bytes:
    """Eight bytes whose byte order is the numeric order of ``value`` (not NaN)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", value if value != 0 else 0.0))
    return struct.pack(">Q", bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63)


def unsortable(data: bytes) -> float:
    """The number :func:`sortable` made ``data`` from."""
    (bits,) = struct.unpack(">Q", data)
    bits = bits ^ (1 << 63) if bits >> 63 else bits ^ 0xFFFFFFFFFFFFFFFF
    return float(struct.unpack(">d", struct.pack(">Q", bits))[0])


def _run_value_keys(run: Run) -> Iterator[tuple[str, bytes]]:
    digest = run.raw_digest
    for name, value in run.params.items():
        yield "run_params", key_part(name) + key_part(value) + digest
    for name, metric in run.metrics.items():
        if isinstance(metric, int | float) and not isinstance(metric, bool) \
                and not math.isnan(metric):
            yield "run_metrics", key_part(name) + sortable(float(metric)) + digest


def runs_with_param_part(txn: ReadTxn, name: str, parts: Iterable[bytes]) -> set[bytes]:
    """Runs whose param ``name`` encodes to one of ``parts`` (see :func:`key_part`), as the
    16 bytes of their digests (a query intersects these sets, then wraps the digests it
    keeps: a ``Digest`` per index entry would double the scan's cost)."""
    prefix = key_part(name)
    found: set[bytes] = set()
    for part in parts:
        size = len(prefix) + len(part) + DIGEST
        found |= {key[-DIGEST:] for key in txn.keys("run_params", prefix + part)
                  if len(key) == size}
    return found


def runs_by_param(txn: ReadTxn, name: str) -> Iterator[tuple[Any, Digest]]:
    """``(value, run)`` for every run with param ``name`` (``None``: too long to keep)."""
    prefix = key_part(name)
    for key in txn.keys("run_params", prefix):
        part = key[len(prefix):-DIGEST]
        value = None if part[:1] == HASHED else encoding.decode(part)
        yield value, unchecked_digest(key[-DIGEST:])


def runs_by_metric(txn: ReadTxn, name: str) -> Iterator[tuple[float, Digest]]:
    """``(value, run)`` for every run with metric ``name``, in value order."""
    prefix = key_part(name)
    start = len(prefix)
    for key in txn.keys("run_metrics", prefix):
        yield unsortable(key[start:start + 8]), unchecked_digest(key[-DIGEST:])


def runs_with_metric(txn: ReadTxn, name: str, op: str, bound: float) -> set[bytes]:
    """Runs whose metric ``name`` is ``op`` (``>``, ``>=``, ``<``, ``<=``) ``bound`` (not
    NaN), as the 16 bytes of their digests: one range of the index, compared as bytes."""
    prefix = key_part(name)
    at = prefix + sortable(bound)
    above = _next_key(at)  # the first key past every value equal to ``bound``
    if op in (">", ">="):
        low = above if op == ">" else at
        if low is None:
            return set()
        return {key[-DIGEST:] for key in itertools.takewhile(
            low.__le__, txn.keys("run_metrics", prefix, reverse=True))}
    high = at if op == "<" else above
    keys = txn.keys("run_metrics", prefix)
    return {key[-DIGEST:] for key in (keys if high is None else itertools.takewhile(
        high.__gt__, keys))}


def _next_key(key: bytes) -> bytes | None:
    """``key`` with its last 8 bytes (a big-endian number) plus one, or ``None`` when they
    are at their largest."""
    number = int.from_bytes(key[-8:], "big") + 1
    return None if number >> 64 else key[:-8] + number.to_bytes(8, "big")


# -- metric series --------------------------------------------------------------------------


def _series_prefix(run_id: str, metric: str) -> bytes:
    return run_id.encode() + b"\0" + metric.encode() + b"\0"


def next_metric_seq(txn: ReadTxn, run_id: str, metric: str) -> int:
    """The position the next point of a metric series goes to."""
    last = next(txn.items("metrics", _series_prefix(run_id, metric), reverse=True), None)
    return 0 if last is None else int.from_bytes(last[0][-SEQ_SIZE:], "big") + 1


def put_metric_point(txn: WriteTxn, run_id: str, metric: str, seq: int,
                     point: tuple[int, float, float]) -> None:
    """Store point ``seq`` (``step, time, value``) of a run's metric series."""
    txn.put("metrics", _series_prefix(run_id, metric) + seq_key(seq), encoding.encode(list(point)))


def metric_points(txn: ReadTxn, run_id: str, metric: str) -> list[tuple[int, float, float]]:
    """Every ``(step, time, value)`` of a run's metric series, in logging order."""
    kinds, what = (int, encoding.NUMBER, encoding.NUMBER), f"metric {metric!r} of run {run_id}"
    return [(step, float(when), float(value)) for _k, v in txn.items(
        "metrics", _series_prefix(run_id, metric))
        for step, when, value in [encoding.decode_fields(v, kinds, what)]]
