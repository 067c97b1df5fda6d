"""Versions, stages, tags and the append-only history of their moves."""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import RefEntry
from lineage.errors import (
    CorruptRecordError,
)
from lineage.storage.base import ReadTxn, WriteTxn
from lineage.storage.schema.keys import SEQ_SIZE, name_key, put_or_delete, seq_key, split_name_key
from lineage.storage.schema.log import append_event

# -- versions, stages, tags, history --------------------------------------------------------


class VersionEntry(NamedTuple):
    """One version of a name: its position, label, target record and when it was made."""
    seq: int
    version: str
    target: Digest
    time: float


def decode_version_entry(key: bytes, value: bytes) -> VersionEntry:
    """The entry stored as ``value`` under the ``versions`` key ``key``."""
    fields = encoding.decode_fields(value, (str, Digest, encoding.NUMBER), f"version {key!r}")
    return VersionEntry(int.from_bytes(key[-SEQ_SIZE:], "big"), *fields)


def versions(txn: ReadTxn, name: str, *, reverse: bool = False) -> Iterator[VersionEntry]:
    """The versions of ``name``, oldest first (newest first with ``reverse``)."""
    return (decode_version_entry(k, v)
            for k, v in txn.items("versions", name_key(name), reverse=reverse))


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
    entry = None if value is None else decode_version_entry(key, value)
    if entry is None or entry.version != version:  # never another version's target
        raise CorruptRecordError(f"{name}@{version}: the version index is inconsistent; run "
                                 "`lineage verify`")
    return entry


def put_version(txn: WriteTxn, name: str, entry: VersionEntry) -> None:
    """Store ``entry`` as version number ``entry.seq`` of ``name``."""
    txn.put("versions", name_key(name) + seq_key(entry.seq),
            encoding.encode([entry.version, entry.target, entry.time]))
    txn.put("version_keys", name_key(name, entry.version), seq_key(entry.seq))


def versioned_names(txn: ReadTxn) -> list[str]:
    """Every name that has versions, sorted."""
    return sorted({encoding.as_text(key.split(b"\0", 1)[0], "a version key")
                   for key in txn.keys("version_keys")})


def version_labels(txn: ReadTxn, name: str) -> list[str]:
    """Every version label of ``name`` (for suggestions)."""
    prefix = name_key(name)
    return [encoding.as_text(key[len(prefix):], "a version key")
            for key in txn.keys("version_keys", prefix)]


def all_versions(txn: ReadTxn) -> Iterator[tuple[str, VersionEntry]]:
    """``(name, entry)`` of every version of every name, by name then position."""
    return ((k[:-SEQ_SIZE - 1].decode(), decode_version_entry(k, v))
            for k, v in txn.items("versions"))


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
    put_or_delete(txn, "stages", name_key(name, stage), target)


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
    put_or_delete(txn, "tags", tag.encode(), target)


def append_history(txn: WriteTxn, entry: RefEntry) -> int:
    """Append ``entry`` to its name's history (and the event log); return its position."""
    last = next(txn.items("history", name_key(entry.name), reverse=True), None)
    seq = 0 if last is None else int.from_bytes(last[0][-SEQ_SIZE:], "big") + 1
    txn.put("history", name_key(entry.name) + seq_key(seq), entry.encode())
    details = {"name": entry.name, "position": seq, "ref": entry.ref, "key": entry.key,
               "target": entry.target, "previous": entry.previous, "reason": entry.reason}
    append_event(txn, "ref", {**details, "skipped": list(entry.skipped)})
    return seq


def history_names(txn: ReadTxn) -> list[str]:
    """Every name with a history, sorted."""
    return sorted({encoding.as_text(key[:-SEQ_SIZE - 1], "a history key")
                   for key in txn.keys("history")})


def history(txn: ReadTxn, name: str) -> list[RefEntry]:
    """Every move of the refs under ``name``, oldest first."""
    return [RefEntry.decode(value) for _key, value in txn.items("history", name_key(name))]
