"""The derived indexes checked against the records they are derived from.

Queries, the step cache and the lineage graph answer from indexes (by kind, name and
operation; run ids; call keys; params and metrics; edges), not from the records. Records
are content-addressed and re-hashed on read, but an index entry is not: one repointed
``call_keys`` entry would make a cached step return another run's outputs, one dropped
edge would hide a dataset from a diff or an audit. :func:`check_indexes` rebuilds, from
every stored record, the entries :func:`~lineage.storage.schema.index_entries` says it
owns, and compares them with the stored ones, namespace by namespace:

- an entry no record owns (**extra**) or one a record owns that is not there (**missing**);
- for the run ids and call keys, which map a key to a run: an entry naming a run other
  than the ones that own the key (**repointed**);
- the edges from a run to the runs made inside it (its steps, its cache hits, its nested
  runs): each must join two stored runs, in both directions (which runs have one is
  decided while recording, not derivable from the records alone).

A record whose entries cannot even be formed (a start time outside the index's range) is
reported as such, and the other records are still checked.

The expected entries are held in memory (tens of bytes per entry), so a check reads every
record once more and each index once: linear in the size of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from lineage.core.hashing import DIGEST_SIZE, Digest, digest_bytes
from lineage.core.records import Artifact, Run, decode_record
from lineage.errors import LineageError
from lineage.storage import schema
from lineage.storage.base import ReadTxn

__all__ = ["check_indexes"]

#: Each derived index in the words a problem uses.
INDEX_NAMES: Final = {
    "by_kind": "the index by kind", "by_name": "the index by name",
    "by_op": "the index of runs by operation", "run_ids": "the index of run ids",
    "call_keys": "the step cache's index of call keys", "run_params": "the params index",
    "run_metrics": "the metrics index", "edges_out": "the lineage edges (outgoing)",
    "edges_in": "the lineage edges (incoming)",
}
_MAPPED: Final = ("run_ids", "call_keys")  # key -> the run it names
_ENTRY: Final = ("entry", "entries")
_SHOWN: Final = 3  # examples named per kind of problem


def check_indexes(txn: ReadTxn) -> list[str]:
    """Problems found comparing every derived index with the entries the stored records
    imply (see the module docstring). A damaged record (its bytes do not hash to its digest
    or do not decode) is the record check's to report: the entries naming it are not
    checked, so one damaged record is one problem, not one per index."""
    expected: dict[str, set[bytes]] = defaultdict(set)
    owners: dict[str, dict[bytes, set[bytes]]] = {name: defaultdict(set) for name in _MAPPED}
    runs: set[Digest] = set()
    damaged: set[bytes] = set()
    problems: list[str] = []
    for digest, record in _records(txn):
        if record is None:
            damaged.add(digest)
            continue
        try:
            entries = list(schema.index_entries(record, digest))
        except (OverflowError, ValueError, TypeError) as exc:  # a damaged or forged record
            problems.append(f"record {digest.hex()}: its index entries cannot be formed "
                            f"({exc}); restore the store from a backup")
            continue
        for namespace, key, value in entries:
            if namespace in owners:
                owners[namespace][key].add(value)
            else:
                expected[namespace].add(key)
        if isinstance(record, Run):
            runs.add(digest)
    for namespace in schema.DERIVED_INDEXES:
        if namespace in owners:
            problems += _check_mapped(txn, namespace, owners[namespace], damaged)
        else:
            problems += _check_set(txn, namespace, expected[namespace], damaged)
    problems += _check_child_edges(txn, runs, damaged)
    return problems


def _records(txn: ReadTxn) -> Iterable[tuple[Digest, Artifact | Run | None]]:
    """Every stored record, decoded; ``None`` for one whose bytes are damaged."""
    for digest, data in schema.digest_entries(txn, "records"):
        try:
            intact = digest_bytes(data) == digest
            yield digest, decode_record(data, digest) if intact else None
        except LineageError:
            yield digest, None


def _names_damaged(namespace: str, key: bytes, value: bytes, damaged: set[bytes]) -> bool:
    """Whether an index entry names a damaged record (its own check reports it)."""
    if not damaged:
        return False
    if namespace in ("edges_out", "edges_in"):
        return key[:DIGEST_SIZE] in damaged or key[DIGEST_SIZE + 1:] in damaged
    if namespace in _MAPPED:
        return value in damaged
    return key[-DIGEST_SIZE:] in damaged


def _check_set(txn: ReadTxn, namespace: str, expected: set[bytes], damaged: set[bytes]
               ) -> list[str]:
    """Extra and missing keys of an index whose keys are its entries."""
    stored = {key for key, value in txn.items(namespace) if not _is_child_edge(namespace, key)
              and not _names_damaged(namespace, key, value, damaged)}
    expected = {key for key in expected if not _names_damaged(namespace, key, b"", damaged)}
    return (_named(namespace, _ENTRY, "no record owns", stored - expected)
            + _named(namespace, _ENTRY, "missing for stored records", expected - stored))


def _check_mapped(txn: ReadTxn, namespace: str, owners: dict[bytes, set[bytes]],
                  damaged: set[bytes]) -> list[str]:
    """Extra, repointed and missing entries of an index mapping a key to a run."""
    extra, repointed, stored = set(), set(), set()
    for key, value in txn.items(namespace):
        stored.add(key)
        if _names_damaged(namespace, key, value, damaged):
            continue
        if key not in owners:
            extra.add(key)
        elif value not in owners[key]:
            repointed.add(key)
    missing = set(owners) - stored
    return (_named(namespace, _ENTRY, "no record owns", extra)
            + _named(namespace, _ENTRY, "naming a run other than its owner", repointed)
            + _named(namespace, _ENTRY, "missing for stored runs", missing))


def _is_child_edge(namespace: str, key: bytes) -> bool:
    edge = key[DIGEST_SIZE:DIGEST_SIZE + 1]
    return namespace in ("edges_out", "edges_in") and edge == schema.EDGE_CHILD


def _check_child_edges(txn: ReadTxn, runs: set[Digest], damaged: set[bytes]) -> list[str]:
    """Each parent -> child edge joins two stored runs and is stored in both directions.

    Which runs have one is not derived from the records: a run gets an edge to each step
    run made inside it and to each cached run a step hit returned, whatever their
    ``parent`` says (a step run in another store gets none)."""
    outgoing, incoming = ({key for key, value in txn.items(namespace)
                           if _is_child_edge(namespace, key)
                           and not _names_damaged(namespace, key, value, damaged)}
                          for namespace in ("edges_out", "edges_in"))
    unjoined = {key for key in outgoing if not _joins_runs(key, runs)}
    no_incoming = {_reversed(key) for key in outgoing if _reversed(key) not in incoming}
    no_outgoing = {_reversed(key) for key in incoming if _reversed(key) not in outgoing}
    edge = ("parent-run edge", "parent-run edges")
    return (_named("edges_out", edge, "not joining two stored runs", unjoined)
            + _named("edges_in", edge, "missing (stored outgoing only)", no_incoming)
            + _named("edges_out", edge, "missing (stored incoming only)", no_outgoing))


def _reversed(key: bytes) -> bytes:
    """The same edge's key in the other direction's index."""
    return key[DIGEST_SIZE + 1:] + key[DIGEST_SIZE:DIGEST_SIZE + 1] + key[:DIGEST_SIZE]


def _joins_runs(key: bytes, runs: set[Digest]) -> bool:
    return key[:DIGEST_SIZE] in runs and key[DIGEST_SIZE + 1:] in runs


def _named(namespace: str, noun: tuple[str, str], what: str,
           keys: set[bytes] | set[Digest]) -> list[str]:
    """One problem line for ``keys`` (none when empty), naming a few of them; ``noun`` is
    what a key is, singular and plural."""
    if not keys:
        return []
    shown = "; ".join(_describe(namespace, key) for key in sorted(keys)[:_SHOWN])
    more = f"; and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    count = f"{len(keys)} {noun[0] if len(keys) == 1 else noun[1]}"
    return [f"{INDEX_NAMES[namespace]}: {count} {what} ({shown}{more}); the index "
            "disagrees with the records: restore the store from a backup"]


def _describe(namespace: str, key: bytes) -> str:
    """An index key in the terms a reader looks it up by."""
    if namespace in ("edges_out", "edges_in"):
        near, edge, far = key[:DIGEST_SIZE], key[DIGEST_SIZE:DIGEST_SIZE + 1], \
            key[DIGEST_SIZE + 1:]
        source, target = (near, far) if namespace == "edges_out" else (far, near)
        name = schema.EDGE_NAMES.get(edge, edge.hex())
        return f"{name} edge {source.hex()} → {target.hex()}"
    if namespace == "run_ids":
        return f"run id {key.decode(errors='replace')!r}"
    if namespace == "call_keys":
        return f"call key {key.hex()}"
    record = key[-DIGEST_SIZE:].hex()
    if namespace in ("by_kind", "by_name", "by_op"):
        label = key.split(b"\0", 1)[0].decode(errors="replace")  # the kind, name or op
        return f"{label} {record}"
    return f"run {record}"  # a params or metrics entry: the run it names

