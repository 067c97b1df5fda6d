"""Garbage collection of a remote: a dry run unless asked, and safe for stores sharing it.

Live on a remote is everything reachable from (see
:func:`lineage.storage.maintenance.reachable`):

- every version, and the target of *every* move in every stage and tag history (a store
  that has not pulled the latest moves may still name an older target);
- every run (runs are history, never collected);
- everything named by a *lease* younger than the grace period: before it sends anything, a
  push writes a lease ``leases/<store id>-<time ns>-<pid>`` naming every record, blob and
  chunk it will name (those the remote already holds, which it does not send again), and
  removes it when its refs are written.

Besides, nothing written within the grace period (default one day) is touched: a pack
whose meta is younger, an upload without a meta (perhaps still running) younger. What is
left: packs whose every object is dead are deleted (meta first, so no reader trusts a pack
without bytes); packs holding some dead objects are rewritten with the live ones (the new
pack is complete before the old one goes); old uploads that never got a meta and expired
leases are deleted. A reader that loaded a meta just before its pack was rewritten fails
to read the old pack and is told to retry.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Set
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Final

from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.remotes import eventlog
from lineage.remotes.connection import Connection
from lineage.remotes.layout import (
    PackMeta,
    RemoteState,
    encode_meta,
    load_state,
    meta_path,
    pack_path,
)
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.maintenance import reachable

__all__ = ["GRACE_SECONDS", "RemoteGcReport", "collect", "lease"]

GRACE_SECONDS: Final = 24 * 3600.0
_RANGE: Final = 8 * 1024 * 1024


@dataclass(slots=True)
class RemoteGcReport:
    """What :func:`collect` removed (or, with ``dry_run``, would remove).

    ``packs`` deleted whole, ``rewritten`` packs kept for their live objects, ``objects``
    and ``bytes_freed`` the dead objects and bytes, ``uploads`` abandoned uploads and
    ``leases`` expired leases removed, ``young`` packs left alone for the grace period.
    """

    dry_run: bool
    packs: int = 0
    rewritten: int = 0
    objects: int = 0
    bytes_freed: int = 0
    uploads: int = 0
    leases: int = 0
    young: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form."""
        return {"dry_run": self.dry_run, "packs": self.packs, "rewritten": self.rewritten,
                "objects": self.objects, "bytes_freed": self.bytes_freed,
                "uploads": self.uploads, "leases": self.leases, "young": self.young}

    def __str__(self) -> str:
        verb = "would remove" if self.dry_run else "removed"
        text = (f"{verb} {self.objects} objects ({self.bytes_freed} bytes): {self.packs} packs "
                f"whole, {self.rewritten} rewritten, {self.uploads} abandoned uploads, "
                f"{self.leases} expired leases; {self.young} young packs left alone")
        return text + ("\n(a dry run: pass --yes to remove)" if self.dry_run else "")


@contextmanager
def lease(connection: Connection, txn: ReadTxn, named: Set[Digest]) -> Iterator[None]:
    """Hold a lease on the objects ``named`` on the remote while the block runs (see the
    module docstring); it stays behind, to expire, if the block fails."""
    path = f"leases/{eventlog.store_id(txn)}-{time.time_ns()}-{os.getpid()}"
    connection.put(path, encoding.encode(["lineage/lease", 1, sorted(named)]))
    yield
    connection.remove([path])


def _leased(connection: Connection, now: float, grace: float, report: RemoteGcReport,
            dry_run: bool) -> set[Digest]:
    roots: set[Digest] = set()
    paths = connection.find("leases")
    expired = []
    for path, data in connection.cat(paths).items():
        try:
            made = int(path.rsplit("/", 1)[-1].split("-")[1]) / 1e9
            _tag, _version, named = encoding.decode(data)
        except (ValueError, TypeError, IndexError):
            made, named = 0.0, []
        if now - made > grace:
            expired.append(path)
        else:
            roots.update(Digest(d) for d in named)
    report.leases = len(expired)
    if not dry_run:
        connection.remove(expired)
    return roots


def collect(connection: Connection, *, dry_run: bool = True, grace: float = GRACE_SECONDS,
            now: float | None = None) -> RemoteGcReport:
    """Remove what no store may still need from a remote (see the module docstring).

    Raises:
        RemoteError: the remote cannot be reached or written.
    """
    report = RemoteGcReport(dry_run=dry_run)
    now = time.time() if now is None else now
    state = load_state(connection)
    leased = _leased(connection, now, grace, report, dry_run)
    records, blobs, chunks = reachable(state.txn, _roots(state) | leased)
    blobs |= leased  # a push in progress relies on these being there
    chunks |= leased
    homes: dict[Digest, str] = {}
    for name in sorted(state.packs):
        meta = state.packs[name]
        for digest in (*meta.chunks, *meta.blobs, *meta.records):
            homes.setdefault(digest, name)
    for name in sorted(state.packs):
        meta = state.packs[name]
        modified = connection.modified(meta_path(name))
        if modified is None or now - modified < grace:
            report.young += 1
            continue
        live = PackMeta(
            chunks={d: s for d, s in meta.chunks.items() if d in chunks and homes[d] == name},
            blobs={d: m for d, m in meta.blobs.items() if d in blobs and homes[d] == name},
            records={d: e for d, e in meta.records.items() if d in records and homes[d] == name})
        dead = (len(meta.chunks) + len(meta.blobs) + len(meta.records)
                - len(live.chunks) - len(live.blobs) - len(live.records))
        if not dead:
            continue
        report.objects += dead
        report.bytes_freed += (sum(n for _o, n in meta.chunks.values())
                               - sum(n for _o, n in live.chunks.values()))
        if live.chunks or live.blobs or live.records:
            report.rewritten += 1
            if not dry_run:
                _rewrite(connection, name, live)
        else:
            report.packs += 1
        if not dry_run:
            connection.remove([meta_path(name), pack_path(name)])
    for orphan in state.orphans:
        modified = connection.modified(orphan)
        if modified is not None and now - modified >= grace:
            report.uploads += 1
            report.bytes_freed += connection.size(orphan) or 0
            if not dry_run:
                connection.remove([orphan])
    return report


def _roots(state: RemoteState) -> set[Digest]:
    roots = {e.target for e in state.versions.values() if e.target is not None}
    for moves in state.streams.values():
        roots.update(e.target for e in moves if e.target is not None)
        roots.update(e.previous for e in moves if e.previous is not None)
    roots.update(schema.record_digests(state.txn, "run"))
    return roots


def _rewrite(connection: Connection, name: str, live: PackMeta) -> None:
    """Write a new pack holding ``live`` (chunk bytes copied from pack ``name``)."""
    old = sorted((offset, length, digest) for digest, (offset, length) in live.chunks.items())
    fresh = PackMeta(blobs=live.blobs, records=live.records)
    offset = 0
    for _old, length, digest in old:
        fresh.chunks[digest] = (offset, length)
        offset += length
    data = encode_meta(fresh)
    new_name = digest_bytes(data).hex()

    def write(handle: IO[bytes]) -> None:
        start = 0
        while start < len(old):
            end, size = start, 0
            while end < len(old) and size < _RANGE:
                size += old[end][1]
                end += 1
            ranges = [(o, o + n) for o, n, _d in old[start:end]]
            for part in connection.cat_ranges(pack_path(name), ranges):
                handle.write(part)
            start = end

    if old:
        connection.upload("rewrite a pack", pack_path(new_name), write)
    connection.put(meta_path(new_name), data)
