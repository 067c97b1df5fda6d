r"""The namespaces, edge types and key parts every other schema module builds keys from."""

from __future__ import annotations

from typing import Final

from lineage.core.hashing import DIGEST_SIZE
from lineage.storage.base import WriteTxn

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
HASHED: Final = b"\xc1"
SEQ_SIZE: Final = 8
DIGEST: Final = DIGEST_SIZE


def seq_key(number: int) -> bytes:
    """The ``seq(8)`` key part of a counter."""
    return number.to_bytes(SEQ_SIZE, "big")


def name_key(name: str, part: str = "") -> bytes:
    """The ``name \0 part`` key of a version label or a stage (``part`` empty: the prefix)."""
    return name.encode() + b"\0" + part.encode()


def split_name_key(key: bytes) -> tuple[str, str]:
    """``(name, part)`` of a ``name \0 part`` key (versions by label, stages)."""
    name, _, part = key.partition(b"\0")
    return name.decode(), part.decode()


def put_or_delete(txn: WriteTxn, namespace: str, key: bytes, value: bytes | None) -> None:
    """Put ``value`` under ``key``, or delete the entry when ``value`` is ``None``."""
    if value is None:
        txn.delete(namespace, key)
    else:
        txn.put(namespace, key, value)
