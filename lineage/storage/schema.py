r"""The on-disk layout: every namespace's keys and values, in one module.

Nothing outside this module builds or splits a key. A namespace is a sorted map of
``bytes -> bytes`` (an LMDB named database); names are validated never to contain ``\0``,
so ``name \0`` prefixes are exact. ``seq(8)`` is a big-endian 64-bit counter, ``d`` a
16-byte digest, ``enc(x)`` the canonical encoding of ``x``.

The layout of every namespace is tabled in :mod:`lineage.storage`.
"""

from __future__ import annotations

import itertools
import math
import os
import struct
import time
from collections.abc import Iterable, Iterator
from typing import Any, Final, NamedTuple

from lineage.context import current_user
from lineage.core import encoding
from lineage.core.hashing import DIGEST_SIZE, Digest, digest_bytes
from lineage.core.hashing import unchecked_digest as _digest
from lineage.core.records import Artifact, RefEntry, Run, decode_record
from lineage.errors import (
    CollisionError,
    CorruptRecordError,
    IntegrityError,
    LineageError,
    RevisionNotFound,
)
from lineage.storage.base import ReadTxn, WriteTxn

#: Every namespace a store uses; a backend must accept exactly these.
NAMESPACES: Final = (
    "chunks", "blobs", "records", "edges_out", "edges_in", "versions", "version_keys",
    "stages", "tags", "history", "by_kind", "by_name", "by_op", "run_ids", "call_keys",
    "run_params", "run_metrics", "stat_cache", "metrics", "events", "added", "settings",
)

EDGE_USED: Final = b"u"  # artifact -> run
EDGE_GENERATED: Final = b"g"  # run -> artifact
EDGE_DERIVED: Final = b"d"  # parent artifact -> derived artifact
EDGE_CHILD: Final = b"c"  # parent run -> child run
EDGE_NAMES: Final = {EDGE_USED: "used", EDGE_GENERATED: "generated",
                     EDGE_DERIVED: "derived_from", EDGE_CHILD: "child_of"}
#: Edges along which data flows (``child_of`` only says where a run was started).
DATA_FLOW: Final = frozenset({EDGE_USED, EDGE_GENERATED, EDGE_DERIVED})

EVENT_TAG: Final = "lineage/event"
EVENT_GENESIS: Final = bytes(32)  # the "previous hash" of the first event
MAX_KEY_PART: Final = 200
_HASHED: Final = b"\xc1"
_SEQ: Final = 8
_D: Final = DIGEST_SIZE


def _seq(number: int) -> bytes:
    return number.to_bytes(_SEQ, "big")


def name_key(name: str, part: str = "") -> bytes:
    """The ``name \0 part`` key of a version label or a stage (``part`` empty: the prefix)."""
    return name.encode() + b"\0" + part.encode()


def split_name_key(key: bytes) -> tuple[str, str]:
    """``(name, part)`` of a ``name \0 part`` key (versions by label, stages)."""
    name, _, part = key.partition(b"\0")
    return name.decode(), part.decode()


def entry_records(namespace: str, key: bytes, value: bytes) -> tuple[Digest, ...]:
    """The records an index entry names (content, caches and settings name none)."""
    if namespace in ("edges_out", "edges_in"):
        return Digest(key[:_D]), Digest(key[_D + 1:])
    if namespace in ("records", "added", "by_kind", "by_name", "by_op", "run_params",
                     "run_metrics"):
        return (Digest(key[-_D:]),)
    if namespace in ("run_ids", "call_keys", "tags", "stages", "versions"):
        return (_version_entry(key, value).target if namespace == "versions" else Digest(value),)
    return ()


def entry_time(namespace: str, key: bytes, value: bytes) -> float | None:
    """When an entry was written, for namespaces that keep it (versions, history, events)."""
    if namespace == "versions":
        return _version_entry(key, value).time
    if namespace == "history":
        return RefEntry.decode(value).time
    if namespace == "events":
        return float(encoding.decode(value)[2]["time"])
    return None


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
    found = (Digest(key) for key, _ in txn.items("records", even)
             if key.hex().startswith(hex_prefix))
    return list(itertools.islice(found, limit))


def record_digests(txn: ReadTxn, kind: str | None = None) -> list[Digest]:
    """Digests of every record, or of those of ``kind`` (``"run"`` for runs)."""
    prefix = kind.encode() + b"\0" if kind is not None else b""
    return [_digest(key[-_D:]) for key, _ in txn.items("by_kind", prefix)]


def is_kind(txn: ReadTxn, digest: Digest, kind: str) -> bool:
    """Whether the record ``digest`` is of ``kind`` (read from the kind index)."""
    return txn.get("by_kind", kind.encode() + b"\0" + digest) is not None


def artifacts_named(txn: ReadTxn, name: str) -> list[Digest]:
    """Digests of every artifact recorded under ``name`` (versioned or not)."""
    return [_digest(key[-_D:]) for key, _ in txn.items("by_name", name_key(name))]


def index_record(txn: WriteTxn, record: Artifact | Run) -> Digest:
    """Store ``record`` with its indexes and edges (again: no change); ``CollisionError``
    if a different record has its digest. Returns its digest."""
    digest = record.raw_digest
    encoded = record.encode()
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
        txn.put("added", digest, _seq(seq))
    txn.put("by_kind", record.kind.encode() + b"\0" + digest, b"")
    if isinstance(record, Artifact):
        if record.name:
            txn.put("by_name", name_key(record.name) + digest, b"")
        for parent in record.parents:
            add_edge(txn, parent, EDGE_DERIVED, digest)
        return digest
    started = int(record.started * 1e6).to_bytes(8, "big")
    txn.put("by_op", record.op.encode() + b"\0" + started + digest, b"")
    txn.put("run_ids", record.id.encode(), digest)
    if record.call_key is not None and record.status == "ok":
        txn.put("call_keys", record.call_key, digest)
    for namespace, key in _run_value_keys(record):
        txn.put(namespace, key, b"")
    for source in {*record.inputs.values(), *record.metric_datasets.values()}:
        add_edge(txn, source, EDGE_USED, digest)
    for made in set(record.outputs.values()):
        add_edge(txn, digest, EDGE_GENERATED, made)
    for code_or_env in (record.code, record.environment):
        if code_or_env is not None:
            add_edge(txn, code_or_env, EDGE_USED, digest)
    parent_run = run_by_id(txn, record.parent) if record.parent else None
    if parent_run is not None:
        add_edge(txn, parent_run, EDGE_CHILD, digest)
    return digest


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
            edge, peer = key[_D:_D + 1], key[_D + 1:]
            txn.delete(namespace, key)
            txn.delete(other, peer + edge + digest)


# -- edges ----------------------------------------------------------------------------------


def add_edge(txn: WriteTxn, src: Digest, edge: bytes, dst: Digest) -> None:
    """Index an edge in both directions."""
    txn.put("edges_out", src + edge + dst, b"")
    txn.put("edges_in", dst + edge + src, b"")


Edge = tuple[bytes, Digest]


def upstream(txn: ReadTxn, digest: Digest, edge: bytes | None = None) -> list[Edge]:
    """``(edge type, source)`` of the edges into ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[_D:_D + 1], _digest(key[_D + 1:])) for key, _ in txn.items("edges_in", prefix)]


def downstream(txn: ReadTxn, digest: Digest, edge: bytes | None = None) -> list[Edge]:
    """``(edge type, target)`` of the edges out of ``digest`` (of one type if ``edge``)."""
    prefix = digest + (edge or b"")
    return [(key[_D:_D + 1], _digest(key[_D + 1:])) for key, _ in txn.items("edges_out", prefix)]


# -- versions, stages, tags, history --------------------------------------------------------


class VersionEntry(NamedTuple):
    """One version of a name: its position, label, target record and when it was made."""
    seq: int
    version: str
    target: Digest
    time: float


def _version_entry(key: bytes, value: bytes) -> VersionEntry:
    fields = encoding.decode_fields(value, (str, Digest, encoding.NUMBER), f"version {key!r}")
    return VersionEntry(int.from_bytes(key[-_SEQ:], "big"), *fields)


def versions(txn: ReadTxn, name: str, *, reverse: bool = False) -> Iterator[VersionEntry]:
    """The versions of ``name``, oldest first (newest first with ``reverse``)."""
    return (_version_entry(k, v) for k, v in txn.items("versions", name_key(name), reverse=reverse))


def latest_version(txn: ReadTxn, name: str) -> VersionEntry | None:
    """The newest version of ``name`` (``CorruptRecordError`` if the index disagrees)."""
    latest = next(versions(txn, name, reverse=True), None)
    if latest is not None and version_entry(txn, name, latest.version) != latest:
        raise CorruptRecordError(f"{name}: the version index is inconsistent")
    return latest


def version_entry(txn: ReadTxn, name: str, version: str) -> VersionEntry | None:
    """The entry of ``name@version``, or ``None`` (``CorruptRecordError`` if inconsistent)."""
    seq = txn.get("version_keys", name_key(name, version))
    if seq is None:
        return None
    key = name_key(name) + seq
    value = txn.get("versions", key)
    entry = None if value is None else _version_entry(key, value)
    if entry is None or entry.version != version:  # never another version's target
        raise CorruptRecordError(f"{name}@{version}: the version index is inconsistent; run "
                                 "`lineage verify`")
    return entry


def put_version(txn: WriteTxn, name: str, entry: VersionEntry) -> None:
    """Store ``entry`` as version number ``entry.seq`` of ``name``."""
    txn.put("versions", name_key(name) + _seq(entry.seq),
            encoding.encode([entry.version, entry.target, entry.time]))
    txn.put("version_keys", name_key(name, entry.version), _seq(entry.seq))


def versioned_names(txn: ReadTxn) -> list[str]:
    """Every name that has versions, sorted."""
    return sorted({encoding.as_text(key.split(b"\0", 1)[0], "a version key")
                   for key, _ in txn.items("version_keys")})


def version_labels(txn: ReadTxn, name: str) -> list[str]:
    """Every version label of ``name`` (for suggestions)."""
    prefix = name_key(name)
    return [encoding.as_text(key[len(prefix):], "a version key")
            for key, _ in txn.items("version_keys", prefix)]


def all_versions(txn: ReadTxn) -> Iterator[tuple[str, VersionEntry]]:
    """``(name, entry)`` of every version of every name, by name then position."""
    return ((k[:-_SEQ - 1].decode(), _version_entry(k, v)) for k, v in txn.items("versions"))


def stage_target(txn: ReadTxn, name: str, stage: str) -> Digest | None:
    """What ``name@stage`` points at now, or ``None``."""
    value = txn.get("stages", name_key(name, stage))
    return None if value is None else encoding.as_digest(value, f"stage {name}@{stage}")


def stages(txn: ReadTxn, name: str) -> dict[str, Digest]:
    """The current stages and aliases of ``name``."""
    prefix = name_key(name)
    return {encoding.as_text(key[len(prefix):], "a stage key"):
            encoding.as_digest(value, f"a stage of {name}")
            for key, value in txn.items("stages", prefix)}


def all_stages(txn: ReadTxn) -> Iterator[tuple[str, str, Digest]]:
    """``(name, stage, target)`` of every stage of every name."""
    return ((*split_name_key(key), encoding.as_digest(value, "a stage target"))
            for key, value in txn.items("stages"))


def put_stage(txn: WriteTxn, name: str, stage: str, target: Digest | None) -> None:
    """Point ``name@stage`` at ``target``; ``None`` removes it."""
    _put_or_delete(txn, "stages", name_key(name, stage), target)


def tag_target(txn: ReadTxn, tag: str) -> Digest | None:
    """What ``tag`` points at, or ``None``."""
    value = txn.get("tags", tag.encode())
    return None if value is None else encoding.as_digest(value, f"tag {tag}")


def all_tags(txn: ReadTxn) -> Iterator[tuple[str, Digest]]:
    """``(tag, target)`` of every tag, sorted by tag."""
    return ((encoding.as_text(key, "a tag key"), encoding.as_digest(value, "a tag target"))
            for key, value in txn.items("tags"))


def put_tag(txn: WriteTxn, tag: str, target: Digest | None) -> None:
    """Point ``tag`` at ``target``; ``None`` removes it."""
    _put_or_delete(txn, "tags", tag.encode(), target)


def append_history(txn: WriteTxn, entry: RefEntry) -> int:
    """Append ``entry`` to its name's history (and the event log); return its position."""
    last = next(txn.items("history", name_key(entry.name), reverse=True), None)
    seq = 0 if last is None else int.from_bytes(last[0][-_SEQ:], "big") + 1
    txn.put("history", name_key(entry.name) + _seq(seq), entry.encode())
    details = {"name": entry.name, "position": seq, "ref": entry.ref, "key": entry.key,
               "target": entry.target, "previous": entry.previous, "reason": entry.reason}
    append_event(txn, "ref", {**details, "skipped": list(entry.skipped)})
    return seq


def history_names(txn: ReadTxn) -> list[str]:
    """Every name with a history, sorted."""
    return sorted({encoding.as_text(key[:-_SEQ - 1], "a history key")
                   for key, _ in txn.items("history")})


def history(txn: ReadTxn, name: str) -> list[RefEntry]:
    """Every move of the refs under ``name``, oldest first."""
    return [RefEntry.decode(value) for _key, value in txn.items("history", name_key(name))]


# -- runs -----------------------------------------------------------------------------------


def runs_of_op(txn: ReadTxn, op: str) -> Iterator[tuple[float, Digest]]:
    """``(start time, run digest)`` of the runs of ``op``, newest first."""
    at = len(op.encode()) + 1
    return ((int.from_bytes(key[at:at + 8], "big") / 1e6, _digest(key[-_D:]))
            for key, _ in txn.items("by_op", op.encode() + b"\0", reverse=True))


def run_by_id(txn: ReadTxn, run_id: str) -> Digest | None:
    """The run whose id is ``run_id``, or ``None``."""
    value = txn.get("run_ids", run_id.encode())
    return None if value is None else encoding.as_digest(value, f"the index of run {run_id}")


def run_ops(txn: ReadTxn) -> list[str]:
    """Every operation that has runs, sorted."""
    return sorted({key.split(b"\0", 1)[0].decode() for key, _ in txn.items("by_op")})


def run_for_call(txn: ReadTxn, call_key: Digest) -> Digest | None:
    """The ok run recorded under ``call_key`` (a memoized call), or ``None``."""
    value = txn.get("call_keys", call_key)
    return None if value is None else encoding.as_digest(value, "a call-key index entry")


def key_part(value: Any) -> bytes:
    """``part(value)``: see the module docstring."""
    data = encoding.encode(value)
    return data if len(data) <= MAX_KEY_PART else _HASHED + digest_bytes(data)


def _sortable(value: float) -> bytes:
    """Eight bytes whose byte order is the numeric order of ``value`` (not NaN)."""
    (bits,) = struct.unpack(">Q", struct.pack(">d", value if value != 0 else 0.0))
    return struct.pack(">Q", bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | 1 << 63)


def _unsortable(data: bytes) -> float:
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
            yield "run_metrics", key_part(name) + _sortable(float(metric)) + digest


def runs_with_param_part(txn: ReadTxn, name: str, parts: Iterable[bytes]) -> set[Digest]:
    """Runs whose param ``name`` encodes to one of ``parts`` (see :func:`key_part`)."""
    prefix = key_part(name)
    return {_digest(key[-_D:]) for part in parts for key, _ in txn.items(
        "run_params", prefix + part) if len(key) == len(prefix) + len(part) + _D}


def runs_by_param(txn: ReadTxn, name: str) -> Iterator[tuple[Any, Digest]]:
    """``(value, run)`` for every run with param ``name`` (``None``: too long to keep)."""
    prefix = key_part(name)
    for key, _ in txn.items("run_params", prefix):
        part = key[len(prefix):-_D]
        yield (None if part[:1] == _HASHED else encoding.decode(part)), _digest(key[-_D:])


def runs_by_metric(txn: ReadTxn, name: str, *, descending: bool = False
                   ) -> Iterator[tuple[float, Digest]]:
    """``(value, run)`` for every run with metric ``name``, in value order."""
    prefix = key_part(name)
    start = len(prefix)
    for key, _ in txn.items("run_metrics", prefix, reverse=descending):
        yield _unsortable(key[start:start + 8]), _digest(key[-_D:])


# -- metric series --------------------------------------------------------------------------


def _series_prefix(run_id: str, metric: str) -> bytes:
    return run_id.encode() + b"\0" + metric.encode() + b"\0"


def next_metric_seq(txn: ReadTxn, run_id: str, metric: str) -> int:
    """The position the next point of a metric series goes to."""
    last = next(txn.items("metrics", _series_prefix(run_id, metric), reverse=True), None)
    return 0 if last is None else int.from_bytes(last[0][-_SEQ:], "big") + 1


def put_metric_point(txn: WriteTxn, run_id: str, metric: str, seq: int,
                     point: tuple[int, float, float]) -> None:
    """Store point ``seq`` (``step, time, value``) of a run's metric series."""
    txn.put("metrics", _series_prefix(run_id, metric) + _seq(seq), encoding.encode(list(point)))


def metric_points(txn: ReadTxn, run_id: str, metric: str) -> list[tuple[int, float, float]]:
    """Every ``(step, time, value)`` of a run's metric series, in logging order."""
    kinds, what = (int, encoding.NUMBER, encoding.NUMBER), f"metric {metric!r} of run {run_id}"
    return [(step, float(when), float(value)) for _k, v in txn.items(
        "metrics", _series_prefix(run_id, metric))
        for step, when, value in [encoding.decode_fields(v, kinds, what)]]


# -- blobs, chunks, stat cache --------------------------------------------------------------


class Manifest(NamedTuple):
    """How a blob is stored: its size, its chunks in order, and the blobs it contains."""
    size: int
    chunks: list[Digest]
    children: list[Digest]


def manifest(txn: ReadTxn, digest: Digest) -> Manifest | None:
    """The manifest of a stored blob, or ``None`` (``CorruptRecordError`` if malformed)."""
    data = txn.get("blobs", digest)
    return None if data is None else decode_manifest(digest, data)


def decode_manifest(digest: Digest, data: bytes) -> Manifest:
    """Parse a stored manifest (see :func:`manifest`)."""
    what = f"the manifest of blob {digest.hex()}"
    size, chunks, children = encoding.decode_fields(data, (int, list, list), what)
    if size < 0 or not all(type(d) is Digest for d in (*chunks, *children)):
        raise CorruptRecordError(f"{what} is malformed; run `lineage verify`")
    return Manifest(size, chunks, children)


def raw_manifest(txn: ReadTxn, digest: Digest) -> bytes | None:
    """The stored bytes of a blob's manifest (to compare with an encoded one), or ``None``."""
    return txn.get("blobs", digest)


def put_manifest(txn: WriteTxn, digest: Digest, encoded: bytes | None) -> None:
    """Store a blob's encoded manifest; ``None`` removes it."""
    _put_or_delete(txn, "blobs", digest, encoded)


def chunk_location(txn: ReadTxn, digest: Digest) -> bytes | None:
    """Where the backend keeps chunk ``digest``, or ``None``."""
    return txn.get("chunks", digest)


def put_chunk_location(txn: WriteTxn, digest: Digest, location: bytes | None) -> None:
    """Name chunk ``digest`` at ``location``; ``None`` forgets it (compaction frees it)."""
    _put_or_delete(txn, "chunks", digest, location)


def digest_entries(txn: ReadTxn, namespace: str) -> Iterator[tuple[Digest, bytes]]:
    """Every ``(digest, stored bytes)`` of ``"records"`` (unverified), ``"blobs"`` (manifests),
    ``"chunks"`` (locations) or ``"added"`` (event numbers), in digest order."""
    return ((encoding.as_digest(key, f"a key of {namespace}"), value)
            for key, value in txn.items(namespace))


def _put_or_delete(txn: WriteTxn, namespace: str, key: bytes, value: bytes | None) -> None:
    if value is None:
        txn.delete(namespace, key)
    else:
        txn.put(namespace, key, value)


class StatEntry(NamedTuple):
    """What a file looked like when its content was hashed."""
    dev: int
    ino: int
    size: int
    mtime_ns: int
    blob: Digest
    stat_ns: int
    ctime_ns: int | None


def stat_key(path: str | os.PathLike[str]) -> bytes:
    """The stat cache key of an absolute path."""
    return os.fsencode(path)


def stat_entry(txn: ReadTxn, key: bytes) -> StatEntry | None:
    """The cached stat of a path, or ``None`` (also for a damaged entry)."""
    raw = txn.get("stat_cache", key)
    try:
        dev, ino, size, mtime_ns, blob, stat_ns, *ctime = encoding.decode(raw or b"")
        return StatEntry(dev, ino, size, mtime_ns, Digest(blob), stat_ns,
                         ctime[0] if ctime else None)
    except (ValueError, TypeError, LineageError):
        return None  # missing; or damaged, which only costs a re-hash


def stat_keys(txn: ReadTxn) -> list[bytes]:
    """The key of every stat cache entry."""
    return [key for key, _ in txn.items("stat_cache")]


def put_stat_entry(txn: WriteTxn, key: bytes, encoded: bytes | None) -> None:
    """Store an encoded stat cache entry; ``None`` removes it."""
    _put_or_delete(txn, "stat_cache", key, encoded)


# -- events and settings --------------------------------------------------------------------


def append_event(txn: WriteTxn, action: str, details: dict[str, Any]) -> int:
    """Append an event to the hash chain (see :mod:`lineage.storage.events`); return its
    sequence number. Its ``prev`` is the SHA-256 of the previous event's stored bytes, and
    its time never runs backwards."""
    last = last_event(txn)
    seq, prev, floor = 0, EVENT_GENESIS, 0.0
    if last is not None:
        from hashlib import sha256  # imported on the first write: opening needs no hashlib
        seq, prev = last[0] + 1, sha256(last[1]).digest()
        try:  # a damaged last event is verify's to report; it then sets no floor
            floor = float(encoding.decode(last[1])[2]["time"])
        except (LineageError, LookupError, TypeError, ValueError, OverflowError):
            pass
    body = {**details, "action": action, "seq": seq, "prev": prev,
            "time": max(time.time(), floor), "user": current_user()}
    txn.put("events", _seq(seq), encoding.encode([EVENT_TAG, 1, body]))
    return seq


def last_event(txn: ReadTxn) -> tuple[int, bytes] | None:
    """``(sequence number, stored bytes)`` of the newest event, or ``None``."""
    return next(events(txn, reverse=True), None)


def event_time(txn: ReadTxn, seq: int) -> float:
    """When event ``seq`` happened (``KeyError`` if there is no such event)."""
    value = txn.get("events", _seq(seq))
    if value is None:
        raise KeyError(seq)
    return float(encoding.decode(value)[2]["time"])


def events(txn: ReadTxn, *, reverse: bool = False) -> Iterator[tuple[int, bytes]]:
    """``(sequence number, stored bytes)`` of every event, oldest (or newest) first."""
    return ((int.from_bytes(k, "big"), v) for k, v in txn.items("events", reverse=reverse))


def added_seq(txn: ReadTxn, digest: Digest) -> int | None:
    """The number of the event that added record ``digest`` (``None``: older, or absent)."""
    return None if (value := txn.get("added", digest)) is None else int.from_bytes(value, "big")


def get_setting(txn: ReadTxn, name: str) -> Any:
    """A store-wide setting, or ``None``."""
    value = txn.get("settings", name.encode())
    return None if value is None else encoding.decode(value)


def put_setting(txn: WriteTxn, name: str, value: Any) -> None:
    """Set a store-wide setting (``None`` removes it)."""
    encoded = None if value is None else encoding.encode(value)
    _put_or_delete(txn, "settings", name.encode(), encoded)
