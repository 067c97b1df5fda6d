"""Refs across stores: versions created once, stage and tag moves merged by their history.

- A **version** ``name@version`` is immutable. On a remote it is one file, created with an
  exclusive create (S3 ``If-None-Match: *``, ``O_EXCL`` locally): pushing a version the
  remote names differently raises :class:`~lineage.errors.RefConflict`, and so does pulling
  one that this store names differently. Nothing is overwritten either way.
- A **stage** (``name@production``) or **tag** is a *stream* of moves, each a
  :class:`~lineage.core.records.RefEntry` kept whole (who, when, why). The remote keeps each
  stream's moves at positions 0, 1, 2, ... made by exclusive create, so the remote's order
  is one total order every pusher agreed to: a push appends the moves the remote lacks
  after the remote's last, and only if this store already has every move the remote has
  (else ``RefConflict``: pull first). Two pushers racing for one position: one create
  fails, that push re-reads and reports ``RefConflict``.
- A **pull** appends the remote's moves this store lacks to its history (with their
  original time, user and reason) and sets the stage or tag to the remote's latest — unless
  this store holds moves of that stream the remote lacks (it is ahead): then it keeps its
  own value, which its next push will publish after the remote's moves, and the report
  says so. Every store that has exchanged the same moves agrees on the value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lineage.core.hashing import Digest
from lineage.core.plain import iso_time
from lineage.core.records import Artifact, RefEntry
from lineage.errors import CorruptRecordError, RefConflict
from lineage.remotes.connection import Connection
from lineage.remotes.layout import RemoteState, Stream, version_path
from lineage.storage import schema
from lineage.storage.base import ReadTxn, WriteTxn

__all__ = ["LocalRefs", "PullRefs", "PushRefs", "apply_pull", "local_refs", "plan_pull",
           "plan_push", "write_push"]


@dataclass(slots=True)
class LocalRefs:
    """A store's refs as streams: versions by ``(name, version)``, stage and tag moves."""

    versions: dict[tuple[str, str], RefEntry] = field(default_factory=dict)
    streams: dict[Stream, list[RefEntry]] = field(default_factory=dict)
    current: dict[Stream, Digest | None] = field(default_factory=dict)


def local_refs(txn: ReadTxn) -> LocalRefs:
    """Every version, stage and tag of a store with the history of its moves."""
    refs = LocalRefs()
    for name in schema.history_names(txn):
        for entry in schema.history(txn, name):
            if entry.ref == "version" and entry.name == name:
                refs.versions.setdefault((name, entry.key), entry)
            elif entry.ref == "stage":
                refs.streams.setdefault(Stream("stage", name, entry.key), []).append(entry)
            elif entry.ref == "tag" and entry.name == entry.key:
                refs.streams.setdefault(Stream("tag", name, name), []).append(entry)
    for name in schema.versioned_names(txn):  # versions made before history was kept
        for found in schema.versions(txn, name):
            refs.versions.setdefault((name, found.version), RefEntry(
                name, "version", found.version, found.target, None, found.time, "unknown"))
    for stream in refs.streams:
        refs.current[stream] = (schema.stage_target(txn, stream.name, stream.key)
                                if stream.ref == "stage" else schema.tag_target(txn, stream.name))
    return refs


def _short(digest: Digest | None) -> str:
    return digest.hex()[:12] if digest is not None else "nothing"


def _version_conflict(name: str, version: str, ours: Digest | None, theirs: RefEntry,
                      pulling: bool) -> RefConflict:
    what = (f"{name}@{version} on the remote names {_short(theirs.target)} (added by "
            f"{theirs.user} at {iso_time(theirs.time)}) but this store's names {_short(ours)}")
    advice = ("; versions are immutable: nothing was pulled. Keep yours, or pull only other "
              "revisions" if pulling else
              "; versions are immutable: nothing was pushed. Add your content under a new "
              "version (lineage add ... --version NEW) and push that")
    return RefConflict(what + advice, ref=f"{name}@{version}", ours=ours, theirs=theirs.target)


# -- push -----------------------------------------------------------------------------------


@dataclass(slots=True)
class PushRefs:
    """What a push will write: new versions, and each stream's moves after the remote's."""

    versions: list[RefEntry] = field(default_factory=list)
    moves: dict[Stream, tuple[int, list[RefEntry]]] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """Ref entries to write."""
        return len(self.versions) + sum(len(m) for _p, m in self.moves.values())


def plan_push(local: LocalRefs, remote: RemoteState, scope: set[Digest] | None) -> PushRefs:
    """The ref entries a push writes; ``scope`` limits it to refs naming those records.

    Raises:
        RefConflict: a version is named differently on the remote, or the remote has moves
            of a stream that this store has not pulled.
    """
    plan = PushRefs()
    for (name, version), entry in sorted(local.versions.items()):
        if scope is not None and entry.target not in scope:
            continue
        theirs = remote.versions.get((name, version))
        if theirs is None:
            plan.versions.append(entry)
        elif theirs.target != entry.target:
            raise _version_conflict(name, version, entry.target, theirs, pulling=False)
    for stream, entries in sorted(local.streams.items()):
        if scope is not None and local.current.get(stream) not in scope:
            continue
        remote_moves = remote.streams.get(stream, [])
        local_moves = {e.encode() for e in entries}
        missing = [e for e in remote_moves if e.encode() not in local_moves]
        if missing:
            last = missing[-1]
            raise RefConflict(
                f"{stream} was moved on the remote by {last.user} at {iso_time(last.time)} "
                f"(to {_short(last.target)}) and this store has not pulled that move; pull "
                "first (the moves merge), then push again; nothing was pushed",
                ref=str(stream), ours=local.current.get(stream), theirs=remote_moves[-1].target)
        known = {e.encode() for e in remote_moves}
        new = [e for e in entries if e.encode() not in known]
        if new:
            plan.moves[stream] = (len(remote_moves), new)
    return plan


def write_push(connection: Connection, plan: PushRefs) -> int:
    """Write the planned refs by exclusive create; return how many were written.

    Raises:
        RefConflict: another push took a version or a stream position meanwhile with
            other content (what was written before stays: it names pushed content).
    """
    written = 0
    for entry in plan.versions:
        path = version_path(entry.name, entry.key)
        if connection.create(path, entry.encode()):
            written += 1
            continue
        theirs = RefEntry.decode(connection.cat([path])[path])
        if theirs.target != entry.target:
            raise _version_conflict(entry.name, entry.key, entry.target, theirs, pulling=False)
    for stream, (start, moves) in plan.moves.items():
        for offset, entry in enumerate(moves):
            path = stream.path(start + offset)
            data = entry.encode()
            if connection.create(path, data):
                written += 1
                continue
            stored = connection.cat([path])[path]
            if stored != data:
                other = RefEntry.decode(stored)
                raise RefConflict(
                    f"{stream} was moved on the remote by {other.user} while this push ran "
                    f"(to {_short(other.target)}); pull (the moves merge), then push again",
                    ref=str(stream), ours=entry.target, theirs=other.target)
    return written


# -- pull -----------------------------------------------------------------------------------


@dataclass(slots=True)
class PullRefs:
    """What a pull applies: new versions (by name, in order) and new stream moves."""

    versions: list[RefEntry] = field(default_factory=list)
    moves: dict[Stream, list[RefEntry]] = field(default_factory=dict)
    keep_ours: set[Stream] = field(default_factory=set)

    @property
    def count(self) -> int:
        """Ref entries to apply."""
        return len(self.versions) + sum(len(m) for m in self.moves.values())

    def notes(self) -> list[str]:
        """What a person should know: streams where this store kept its own, newer value."""
        return [f"{stream}: kept this store's move, which the remote lacks (push to publish "
                "it after the remote's moves, now in the history)"
                for stream in sorted(self.keep_ours)]


def plan_pull(local: LocalRefs, remote: RemoteState, scope: set[Digest]) -> PullRefs:
    """The remote's ref entries this store lacks, among refs naming records in ``scope``.

    Raises:
        RefConflict: a version is named differently here and on the remote.
    """
    plan = PullRefs()
    for (name, version), theirs in sorted(remote.versions.items()):
        if theirs.target not in scope:
            continue
        ours = local.versions.get((name, version))
        if ours is None:
            plan.versions.append(theirs)
        elif ours.target != theirs.target:
            raise _version_conflict(name, version, ours.target, theirs, pulling=True)
    plan.versions.sort(key=lambda e: (e.name, e.time, e.key))
    for stream, remote_moves in sorted(remote.streams.items()):
        last = remote_moves[-1] if remote_moves else None
        if last is None or last.target is not None and last.target not in scope:
            continue
        entries = local.streams.get(stream, [])
        local_moves = {e.encode() for e in entries}
        new = [e for e in remote_moves if e.encode() not in local_moves]
        if not new:
            continue
        plan.moves[stream] = new
        known = {e.encode() for e in remote_moves}
        if any(e.encode() not in known for e in entries):
            plan.keep_ours.add(stream)
    return plan


def apply_pull(txn: WriteTxn, plan: PullRefs) -> None:
    """Apply a pull's refs in ``txn`` (after the records they name are indexed there).

    Raises:
        RefConflict: a version was taken here since the plan was made, or a pulled version
            label is a stage here (or the name a tag).
    """
    for entry in plan.versions:
        name, version = entry.name, entry.key
        found = schema.version_entry(txn, name, version)
        if found is not None:
            if found.target != entry.target:
                raise _version_conflict(name, version, found.target, entry, pulling=True)
            continue
        if schema.stage_target(txn, name, version) is not None or \
                schema.tag_target(txn, name) is not None:
            raise RefConflict(f"{name}@{version} from the remote clashes with a stage or tag of "
                              "that name in this store; nothing was pulled",
                              ref=f"{name}@{version}", theirs=entry.target)
        latest = schema.latest_version(txn, name)
        seq = 0 if latest is None else latest.seq + 1
        if entry.target is None:
            raise CorruptRecordError(f"{name}@{version} on the remote names no record")
        schema.put_version(txn, name, schema.VersionEntry(seq, version, entry.target,
                                                          entry.time))
        schema.append_history(txn, entry)
    for stream, moves in plan.moves.items():
        for entry in moves:
            schema.append_history(txn, entry)
            if stream.ref == "tag":
                _copy_to_artifact_history(txn, entry)
        if stream in plan.keep_ours:
            continue
        target = moves[-1].target
        if stream.ref == "stage":
            schema.put_stage(txn, stream.name, stream.key, target)
        else:
            schema.put_tag(txn, stream.name, target)


def _copy_to_artifact_history(txn: WriteTxn, entry: RefEntry) -> None:
    """A tag move is also kept in the history of the tagged artifact's name, as
    :func:`lineage.refs.registry.set_tag` does."""
    if entry.target is None or schema.raw_record(txn, entry.target) is None:
        return
    record = schema.read_record(txn, entry.target)
    if isinstance(record, Artifact) and record.name and record.name != entry.name:
        schema.append_history(txn, RefEntry(record.name, entry.ref, entry.key, entry.target,
                                            entry.previous, entry.time, entry.user,
                                            entry.reason))
