"""Versions, stages/aliases and tags, each move appended to an immutable history.

Functions here act inside a write transaction the caller owns, so a run, its edges and the
refs it moves commit together.
"""

from __future__ import annotations

import getpass
import os
import time
from typing import Final

from . import encoding
from .errors import InvalidName
from .hashing import Digest
from .records import RefEntry
from .revisions import check_name, name_key, seq_key
from .stores.base import ReadTxn, WriteTxn

__all__ = ["add_version", "history", "set_stage", "set_tag", "versions"]

_SEQ: Final = 8


def current_user() -> str:
    """Who is acting: ``LINEAGE_USER``, else the login name, else ``"unknown"``."""
    user = os.environ.get("LINEAGE_USER")
    if user:
        return user
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _append_history(txn: WriteTxn, entry: RefEntry) -> None:
    last = next(txn.items("history", name_key(entry.name), reverse=True), None)
    seq = 0 if last is None else int.from_bytes(last[0][-_SEQ:], "big") + 1
    txn.put("history", seq_key(entry.name, seq), entry.encode())


def versions(txn: ReadTxn, name: str) -> list[tuple[str, Digest, float]]:
    """``(version, target, time)`` for each version of ``name``, oldest first."""
    found = []
    for _key, value in txn.items("versions", name_key(name)):
        version, target, when = encoding.decode(value)
        found.append((version, Digest(target), when))
    return found


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
    if txn.get("tags", name.encode()) is not None:
        raise InvalidName(f"{name!r} is already a tag; choose another name")
    existing = versions(txn, name)
    if version is None:
        if existing and existing[-1][1] == target:
            return existing[-1][0]
        taken = {v for v, _t, _w in existing}
        taken.update(stages(txn, name))  # never shadow a stage such as name@v2
        number = len(existing) + 1
        while f"v{number}" in taken:
            number += 1
        version = f"v{number}"
    else:
        check_name(version, "version")
        seq_bytes = txn.get("version_keys", name_key(name, version))
        if seq_bytes is not None:
            old = encoding.decode(txn.get("versions", name.encode() + b"\0" + seq_bytes) or b"")
            if old[1] == target:
                return version
            raise InvalidName(
                f"{name}@{version} already exists and names other content "
                f"({bytes(old[1]).hex()[:12]}); versions are immutable, choose a new version"
            )
        if txn.get("stages", name_key(name, version)) is not None:
            raise InvalidName(f"{name}@{version} is a stage; versions and stages must differ")
    seq = len(existing)
    now = time.time()
    txn.put("versions", seq_key(name, seq), encoding.encode([version, target, now]))
    txn.put("version_keys", name_key(name, version), seq.to_bytes(_SEQ, "big"))
    previous = existing[-1][1] if existing else None
    _append_history(
        txn, RefEntry(name, "version", version, target, previous, now, current_user(), reason)
    )
    return version


def set_stage(
    txn: WriteTxn, name: str, stage: str, target: Digest | None, *, reason: str = ""
) -> Digest | None:
    """Point ``name@stage`` at ``target`` (``None`` removes it); return the previous target."""
    check_name(name)
    check_name(stage, "stage")
    key = name_key(name, stage)
    if txn.get("version_keys", key) is not None:
        raise InvalidName(f"{name}@{stage} is a version; choose a stage name that is not one")
    old = txn.get("stages", key)
    previous = Digest(old) if old is not None else None
    if previous == target:
        return previous
    if target is None:
        txn.delete("stages", key)
    else:
        txn.put("stages", key, bytes(target))
    _append_history(
        txn, RefEntry(name, "stage", stage, target, previous, time.time(), current_user(), reason)
    )
    return previous


def set_tag(
    txn: WriteTxn, tag: str, target: Digest | None, *, name: str | None, reason: str = ""
) -> Digest | None:
    """Point the global ``tag`` at ``target`` (``None`` removes it); return the previous one.

    The move is kept in the history of the tag itself and of ``name`` (the tagged
    artifact's name), when known.
    """
    check_name(tag, "tag")
    if next(txn.items("version_keys", name_key(tag)), None) is not None:
        raise InvalidName(f"{tag!r} is already an artifact name; choose another tag")
    old = txn.get("tags", tag.encode())
    previous = Digest(old) if old is not None else None
    if previous == target:
        return previous
    if target is None:
        txn.delete("tags", tag.encode())
    else:
        txn.put("tags", tag.encode(), bytes(target))
    now, user = time.time(), current_user()
    _append_history(txn, RefEntry(tag, "tag", tag, target, previous, now, user, reason))
    if name is not None and name != tag:
        _append_history(txn, RefEntry(name, "tag", tag, target, previous, now, user, reason))
    return previous


def history(txn: ReadTxn, name: str) -> list[RefEntry]:
    """Every recorded move of refs under ``name`` (versions, stages, tags), oldest first."""
    return [RefEntry.decode(value) for _key, value in txn.items("history", name_key(name))]


def stages(txn: ReadTxn, name: str) -> dict[str, Digest]:
    """Current stages/aliases of ``name``."""
    prefix = name_key(name)
    return {
        key[len(prefix) :].decode(): Digest(value) for key, value in txn.items("stages", prefix)
    }


def tags_of(txn: ReadTxn, target: Digest) -> list[str]:
    """Tags pointing at ``target``."""
    return sorted(key.decode() for key, value in txn.items("tags") if value == target)
