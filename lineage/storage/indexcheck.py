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
- the edges from parent runs to their children: each must join a run to one whose
  ``parent`` is its id, and each such child must have one.

The expected entries are held in memory (tens of bytes per entry), so a check reads every
record once more and each index once: linear in the size of the store.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Final

from lineage.core.hashing import DIGEST_SIZE, Digest
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
_SHOWN: Final = 3  # examples named per kind of problem


def check_indexes(txn: ReadTxn) -> list[str]:
    """Problems found comparing every derived index with the entries the stored records
    imply (see the module docstring); records that do not decode are skipped (the record
    check reports them)."""
    expected: dict[str, set[bytes]] = defaultdict(set)
    owners: dict[str, dict[bytes, set[bytes]]] = {name: defaultdict(set) for name in _MAPPED}
    runs_by_id: dict[str, set[Digest]] = defaultdict(set)
    children: dict[Digest, str] = {}  # run -> its parent's id
    for digest, record in _records(txn):
        for namespace, key, value in schema.index_entries(record, digest):
            if namespace in owners:
                owners[namespace][key].add(value)
            else:
                expected[namespace].add(key)
        if isinstance(record, Run):
            runs_by_id[record.id].add(digest)
            if record.parent:
                children[digest] = record.parent
    problems: list[str] = []
    for namespace in schema.DERIVED_INDEXES:
        if namespace in owners:
            problems += _check_mapped(txn, namespace, owners[namespace])
        else:
            problems += _check_set(txn, namespace, expected[namespace])
    problems += _check_child_edges(txn, runs_by_id, children)
    return problems


def _records(txn: ReadTxn) -> Iterable[tuple[Digest, Artifact | Run]]:
    for digest, data in schema.digest_entries(txn, "records"):
        try:
            yield digest, decode_record(data, digest)
        except LineageError:
            continue


def _check_set(txn: ReadTxn, namespace: str, expected: set[bytes]) -> list[str]:
    """Extra and missing keys of an index whose keys are its entries."""
    stored = {key for key, _value in txn.items(namespace)
              if not _is_child_edge(namespace, key)}
    return (_named(namespace, "entries no record owns", stored - expected)
            + _named(namespace, "entries missing for stored records", expected - stored))


def _check_mapped(txn: ReadTxn, namespace: str, owners: dict[bytes, set[bytes]]
                  ) -> list[str]:
    """Extra, repointed and missing entries of an index mapping a key to a run."""
    extra, repointed = set(), set()
    for key, value in txn.items(namespace):
        if key not in owners:
            extra.add(key)
        elif value not in owners[key]:
            repointed.add(key)
    missing = set(owners) - {key for key, _value in txn.items(namespace)}
    return (_named(namespace, "entries no record owns", extra)
            + _named(namespace, "entries naming a run that does not own them", repointed)
            + _named(namespace, "entries missing for stored runs", missing))


def _is_child_edge(namespace: str, key: bytes) -> bool:
    edge = key[DIGEST_SIZE:DIGEST_SIZE + 1]
    return namespace in ("edges_out", "edges_in") and edge == schema.EDGE_CHILD


def _check_child_edges(txn: ReadTxn, runs_by_id: dict[str, set[Digest]],
                       children: dict[Digest, str]) -> list[str]:
    """Each parent -> child edge joins a run to a run whose ``parent`` is its id (both
    directions stored), and each child of a stored parent has such an edge."""
    wrong: set[bytes] = set()
    joined: set[Digest] = set()
    outgoing = {key for key, _v in txn.items("edges_out") if _is_child_edge("edges_out", key)}
    incoming = {key for key, _v in txn.items("edges_in") if _is_child_edge("edges_in", key)}
    for key in outgoing:
        parent, _edge, child = schema.split_edge(key)
        if parent not in runs_by_id.get(children.get(child, ""), set()):
            wrong.add(key)
        elif child + schema.EDGE_CHILD + parent not in incoming:
            wrong.add(key)
        else:
            joined.add(child)
    wrong |= {key for key in incoming if key[DIGEST_SIZE + 1:] + schema.EDGE_CHILD
              + key[:DIGEST_SIZE] not in outgoing}
    unjoined = {child for child, parent_id in children.items()
                if parent_id in runs_by_id and child not in joined}
    return (_named("edges_out", "parent-run edges no run stands behind", wrong)
            + _named("edges_in", "child runs without the edge from their parent run",
                     unjoined))


def _named(namespace: str, what: str, keys: set[bytes] | set[Digest]) -> list[str]:
    """One problem line for ``keys`` (none when empty), naming a few of them."""
    if not keys:
        return []
    shown = ", ".join(key.hex() for key in sorted(keys)[:_SHOWN])
    more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
    return [f"{INDEX_NAMES[namespace]}: {len(keys)} {what} ({shown}{more}); the index "
            "disagrees with the records: restore the store from a backup"]
