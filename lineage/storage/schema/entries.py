"""What any namespace's entry names: its records and, where kept, its time (for
point-in-time views)."""

from __future__ import annotations

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import RefEntry
from lineage.storage.schema.keys import DIGEST
from lineage.storage.schema.refs import decode_version_entry


def entry_records(namespace: str, key: bytes, value: bytes) -> tuple[Digest, ...]:
    """The records an index entry names (content, caches and settings name none)."""
    if namespace in ("edges_out", "edges_in"):
        return Digest(key[:DIGEST]), Digest(key[DIGEST + 1:])
    if namespace in ("records", "added", "by_kind", "by_name", "by_op", "run_params",
                     "run_metrics"):
        return (Digest(key[-DIGEST:]),)
    if namespace in ("run_ids", "call_keys", "tags", "stages", "versions"):
        if namespace == "versions":
            return (decode_version_entry(key, value).target,)
        return (Digest(value),)
    return ()


def entry_time(namespace: str, key: bytes, value: bytes) -> float | None:
    """When an entry was written, for namespaces that keep it (versions, history, events)."""
    if namespace == "versions":
        return decode_version_entry(key, value).time
    if namespace == "history":
        return RefEntry.decode(value).time
    if namespace == "events":
        return float(encoding.decode(value)[2]["time"])
    return None
