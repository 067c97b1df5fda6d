"""Versions, stages/aliases and tags, each move appended to an immutable history.

Functions that move refs act inside a write transaction the caller owns, so a run, its edges
and the refs it moves commit together. :class:`VersionLabels` answers "under which version
was this artifact registered?" for views that label many records.
"""

from __future__ import annotations

import re
import time
from typing import Final

from lineage.context import current_user
from lineage.core.hashing import Digest
from lineage.core.records import Artifact, RefEntry, Run
from lineage.errors import InvalidName, RevisionNotFound
from lineage.refs.revisions import check_name
from lineage.storage import schema
from lineage.storage.base import ReadTxn, WriteTxn

__all__ = ["VersionLabels", "add_version", "current_user", "history", "set_stage", "set_tag",
           "stages", "tags_of", "versions"]

#: Stage names refused because they read as versions (``v2``, ``1.0``, ``v1.2.3``).
_VERSION_LIKE: Final = re.compile(r"[vV]?\d+(?:\.\d+)*")


def versions(txn: ReadTxn, name: str) -> list[tuple[str, Digest, float]]:
    """``(version, target, time)`` for each version of ``name``, oldest first."""
    return [(e.version, e.target, e.time) for e in schema.versions(txn, name)]


def add_version(
    txn: WriteTxn,
    name: str,
    target: Digest,
    version: str | None = None,
    *,
    reason: str = "",
) -> str:
    """Append ``target`` as a new version of ``name``; return the version string.

    Without ``version`` the next ``v<N>`` that is neither a version nor a stage is chosen.
    If ``version`` is given and already names ``target``, nothing changes. If it names
    something else, :class:`InvalidName`.
    If no version is given and the latest version already names ``target``, that version
    is returned and nothing changes (re-adding unchanged content is a no-op).
    """
    check_name(name)
    if schema.tag_target(txn, name) is not None:
        raise InvalidName(f"{name!r} is already a tag; choose another name")
    latest = schema.latest_version(txn, name)
    count = 0 if latest is None else latest.seq + 1
    if version is None:
        if latest is not None and latest.target == target:
            return latest.version
        number = count + 1
        while (schema.version_entry(txn, name, f"v{number}") is not None  # point lookups:
               or schema.stage_target(txn, name, f"v{number}") is not None):  # O(1) per add
            number += 1  # never shadow an explicit version or a stage such as name@v2
        version = f"v{number}"
    else:
        check_name(version, "version")
        old = schema.version_entry(txn, name, version)
        if old is not None:
            if old.target == target:
                return version
            raise InvalidName(
                f"{name}@{version} already exists and names other content "
                f"({old.target.hex()[:12]}); versions are immutable, choose a new version"
            )
        if schema.stage_target(txn, name, version) is not None:
            raise InvalidName(f"{name}@{version} is a stage; versions and stages must differ")
    now = time.time()
    schema.put_version(txn, name, schema.VersionEntry(count, version, target, now))
    previous = latest.target if latest is not None else None
    schema.append_history(
        txn, RefEntry(name, "version", version, target, previous, now, current_user(), reason)
    )
    return version


def set_stage(
    txn: WriteTxn, name: str, stage: str, target: Digest | None, *, reason: str = "",
    skipped: tuple[str, ...] = (),
) -> Digest | None:
    """Point ``name@stage`` at ``target`` (``None`` removes it); return the previous target.

    ``skipped`` lists the promotion checks a forced move overrode (kept in the history).
    """
    check_name(name)
    check_name(stage, "stage")
    if schema.version_entry(txn, name, stage) is not None:
        raise InvalidName(f"{name}@{stage} is a version; choose a stage name that is not one")
    if _VERSION_LIKE.fullmatch(stage):
        raise InvalidName(f"{stage!r} looks like a version (it would block {name}@{stage} as "
                          "one); name stages for what they are: staging, production ...")
    current = schema.stages(txn, name)
    twin = next((s for s in current if s.lower() == stage.lower() and s != stage), None)
    if twin is not None:
        raise InvalidName(f"{name} has the stage {twin!r}; {stage!r} differs only in case "
                          f"(stage names are case-sensitive): use {twin!r}")
    previous = current.get(stage)
    if previous == target:
        return previous
    _require_record(txn, target, f"{name}@{stage}")
    schema.put_stage(txn, name, stage, target)
    schema.append_history(txn, RefEntry(name, "stage", stage, target, previous, time.time(),
                                        current_user(), reason, skipped))
    return previous


def set_tag(
    txn: WriteTxn, tag: str, target: Digest | None, *, name: str | None, reason: str = ""
) -> Digest | None:
    """Point the global ``tag`` at ``target`` (``None`` removes it); return the previous one.

    The move is kept in the history of the tag itself and of ``name`` (the tagged
    artifact's name), when known.
    """
    check_name(tag, "tag")
    if schema.latest_version(txn, tag) is not None:
        raise InvalidName(f"{tag!r} is already an artifact name; choose another tag")
    previous = schema.tag_target(txn, tag)
    if previous == target:
        return previous
    _require_record(txn, target, f"tag {tag!r}")
    schema.put_tag(txn, tag, target)
    now, user = time.time(), current_user()
    schema.append_history(txn, RefEntry(tag, "tag", tag, target, previous, now, user, reason))
    if name is not None and name != tag:
        schema.append_history(txn, RefEntry(name, "tag", tag, target, previous, now, user, reason))
    return previous


def _require_record(txn: ReadTxn, target: Digest | None, ref: str) -> None:
    """Refuse to point ``ref`` at a record this store does not hold (checked in the
    transaction that moves it, so a concurrent gc cannot slip in between)."""
    if target is not None and schema.raw_record(txn, target) is None:
        raise RevisionNotFound(
            f"cannot point {ref} at record {target.hex()[:12]}: this store does not hold it "
            "yet or any more (an artifact logged in a run is stored when the run's block "
            "ends: move the ref after it; else gc removed it, or it came from another store)")


def history(txn: ReadTxn, name: str) -> list[RefEntry]:
    """Every recorded move of refs under ``name`` (versions, stages, tags), oldest first."""
    return schema.history(txn, name)


def stages(txn: ReadTxn, name: str) -> dict[str, Digest]:
    """Current stages/aliases of ``name``."""
    return schema.stages(txn, name)


def tags_of(txn: ReadTxn, target: Digest) -> list[str]:
    """Tags pointing at ``target``."""
    return sorted(tag for tag, found in schema.all_tags(txn) if found == target)


class VersionLabels:
    """The version under which each named artifact was registered (latest label wins).

    Reads each name's versions once per instance; use one per read transaction.
    """

    def __init__(self, txn: ReadTxn) -> None:
        self._txn = txn
        self._by_name: dict[str, dict[Digest, tuple[int, str]]] = {}

    def lookup(self, artifact: Artifact) -> tuple[int, str] | None:
        """``(position in the name's history, version)`` of ``artifact``, if versioned."""
        if not artifact.name:
            return None
        table = self._by_name.get(artifact.name)
        if table is None:
            table = {e.target: (e.seq, e.version) for e in schema.versions(self._txn,
                                                                           artifact.name)}
            self._by_name[artifact.name] = table
        return table.get(artifact.raw_digest)

    def label(self, record: Artifact | Run) -> Artifact | Run:
        """``record`` viewed through its version, when it has one."""
        if isinstance(record, Artifact) and record.version is None:
            found = self.lookup(record)
            if found is not None:
                return record.with_version(found[1])
        return record
