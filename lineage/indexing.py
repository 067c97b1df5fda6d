"""How records enter the store: the record itself, its secondary indexes and its edges.

Edges are kept in both directions (``edges_out``: src + type + dst; ``edges_in``: dst + type
+ src) so ancestors and descendants are read straight from LMDB. A :class:`Prepared`
artifact is content already staged (durable, invisible) plus the record that will name it;
committing it inside a write transaction makes both visible together, with its version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from . import encoding, registry
from .content import StagedBlob
from .errors import CollisionError
from .files import StagedPath
from .hashing import Digest, digest_bytes
from .records import Artifact, Run
from .stores.base import ReadTxn, WriteTxn

__all__ = [
    "EDGE_CHILD",
    "EDGE_DERIVED",
    "EDGE_GENERATED",
    "EDGE_NAMES",
    "EDGE_USED",
    "Prepared",
    "add_edge",
    "index_record",
    "latest_version",
]

EDGE_USED: Final = b"u"  # artifact -> run
EDGE_GENERATED: Final = b"g"  # run -> artifact
EDGE_DERIVED: Final = b"d"  # parent artifact -> derived artifact
EDGE_CHILD: Final = b"c"  # parent run -> child run
EDGE_NAMES: Final = {
    EDGE_USED: "used",
    EDGE_GENERATED: "generated",
    EDGE_DERIVED: "derived_from",
    EDGE_CHILD: "child_of",
}


def add_edge(txn: WriteTxn, src: Digest, edge: bytes, dst: Digest) -> None:
    """Index an edge in both directions."""
    txn.put("edges_out", src + edge + dst, b"")
    txn.put("edges_in", dst + edge + src, b"")


def index_record(txn: WriteTxn, record: Artifact | Run) -> Digest:
    """Store ``record`` with its secondary indexes and edges; return its digest.

    Raises:
        CollisionError: a different record is stored under the same digest.
    """
    digest = record.raw_digest
    encoded = record.encode()
    stored = txn.get("records", digest)
    if stored is not None and bytes(stored) == encoded:
        return digest
    if stored is not None and digest_bytes(stored) == digest:
        raise CollisionError(
            f"record {digest.hex()} differs from the stored record with that digest "
            "(an XXH3-128 collision); nothing was stored"
        )
    txn.put("records", digest, encoded)  # new, or replacing a corrupt copy
    txn.put("by_kind", record.kind.encode() + b"\0" + digest, b"")
    if isinstance(record, Artifact):
        if record.name:
            txn.put("by_name", record.name.encode() + b"\0" + digest, b"")
        for parent in record.parents:
            add_edge(txn, parent, EDGE_DERIVED, digest)
        return digest
    started = int(record.started * 1e6).to_bytes(8, "big")
    txn.put("by_op", record.op.encode() + b"\0" + started + digest, b"")
    txn.put("run_ids", record.id.encode(), digest)
    if record.call_key is not None and record.status == "ok":
        txn.put("call_keys", record.call_key, digest)
    from .query import run_index_entries  # params/metrics value indexes for store.runs()

    for namespace, key in run_index_entries(record):
        txn.put(namespace, key, b"")
    for source in {*record.inputs.values(), *record.metric_datasets.values()}:
        add_edge(txn, source, EDGE_USED, digest)
    for made in set(record.outputs.values()):
        add_edge(txn, digest, EDGE_GENERATED, made)
    for code_or_env in (record.code, record.environment):
        if code_or_env is not None:
            add_edge(txn, code_or_env, EDGE_USED, digest)
    if record.parent is not None:
        parent_digest = txn.get("run_ids", record.parent.encode())
        if parent_digest is not None:
            add_edge(txn, Digest(parent_digest), EDGE_CHILD, digest)
    return digest


@dataclass(slots=True)
class Prepared:
    """An artifact whose content is staged (durable, invisible) awaiting its commit."""

    artifact: Artifact
    staged: list[StagedPath | StagedBlob]
    version: str | None = None
    #: stages the same value again (after ChunkVanished: a concurrent gc took reused content)
    restage: Callable[[], Prepared] | None = field(default=None, repr=False)

    @property
    def name(self) -> str | None:
        """The artifact's name."""
        return self.artifact.name

    @property
    def written(self) -> int:
        """Bytes of new chunk content staging wrote (0 if the store held it all)."""
        return sum(part.written for part in self.staged)

    def unchanged(self, txn: ReadTxn) -> bool:
        """Whether committing would change nothing: the latest version already holds it."""
        fresh_stats = any(isinstance(s, StagedPath) and s.stat_entries for s in self.staged)
        if self.artifact.name is None or self.version is not None or fresh_stats:
            return False
        latest = next(txn.items("versions", self.artifact.name.encode() + b"\0", reverse=True),
                      None)
        return latest is not None and encoding.decode(latest[1])[1] == self.artifact.raw_digest

    def commit(self, txn: WriteTxn, *, reason: str = "") -> str | None:
        """Name the staged content, index the record, and add its version (if named).

        Returns the version string, or ``None`` for an unnamed artifact.

        Raises:
            ChunkVanished: a reused chunk was collected meanwhile; prepare again.
            InvalidName: the explicit version already names other content.
        """
        for part in self.staged:
            part.commit(txn)
        index_record(txn, self.artifact)
        if self.artifact.name is None:
            return None
        return registry.add_version(
            txn, self.artifact.name, self.artifact.raw_digest, self.version, reason=reason
        )


def latest_version(txn: ReadTxn, name: str) -> str | None:
    """The newest version string of ``name``, or ``None``."""
    latest = next(txn.items("versions", name.encode() + b"\0", reverse=True), None)
    return None if latest is None else str(encoding.decode(latest[1])[0])
