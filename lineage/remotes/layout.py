"""What a remote holds and how it is laid out, and a read view of it built in memory.

A remote is a directory tree under its URL::

    lineage-remote                      marker: ["lineage/remote", 1, {}]
    packs/<name>.pack                   chunk bytes, back to back
    packs/<name>.meta                   ["lineage/pack", 1, {"chunks": [[d, offset, length]],
                                          "blobs": [[d, manifest]], "records": [[d, bytes,
                                          [child run d], {metric: [[step, time, value]]}]]}]
    refs/versions/<name>/<version>      the version's RefEntry (created once, never replaced)
    refs/stages/<name>/<stage>/<pos>    the stage's moves, one RefEntry each, pos = 00000000..
    refs/tags/<tag>/<pos>               the tag's moves, likewise
    events/<store id>/<first>           a segment of one store's event log (raw events)
    leases/<store id>-<time ns>         roots a push in progress will name (for remote gc)
    tmp/<pid>-<time ns>                 a local remote's small file being written (renamed
                                          into place whole, so no reader sees it half-written)

A pack's name is the XXH3-128 of its ``.meta`` bytes, so a reader checks a meta against its
name. The ``.meta`` is written after its ``.pack`` and is what makes a pack exist: a
``.pack`` without one is an interrupted upload (garbage for remote gc), and a reader never
looks at it. Chunks come before the manifests naming them, manifests before the records
naming them, and all content before the refs and events naming it, so an interrupted push
leaves the remote consistent.

:class:`RemoteState` loads the metas and refs into a :class:`MirrorTxn`, an in-memory
transaction over the same namespaces as a store, filled through :mod:`lineage.storage.schema`,
so that revisions resolve and reachability is computed on a remote exactly as locally.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import RefEntry, decode_record
from lineage.errors import CorruptRecordError, IntegrityError, RemoteError
from lineage.remotes.connection import Connection
from lineage.storage import schema
from lineage.storage.base import KeysFromItems
from lineage.storage.schema import NAMESPACES

__all__ = ["MARKER", "MirrorTxn", "PackMeta", "RemoteState", "Stream", "encode_meta",
           "load_state", "meta_path", "pack_path"]

MARKER: Final = "lineage-remote"
_MARKER_BYTES: Final = encoding.encode(["lineage/remote", 1, {}])
_META_TAG: Final = "lineage/pack"


def pack_path(name: str) -> str:
    """The relative path of pack ``name``'s chunk bytes."""
    return f"packs/{name}.pack"


def meta_path(name: str) -> str:
    """The relative path of pack ``name``'s meta."""
    return f"packs/{name}.meta"


class RecordEntry(NamedTuple):
    """A record in a pack: its bytes, the runs nested in it, its metric series."""

    data: bytes
    children: list[Digest]
    series: dict[str, list[tuple[int, float, float]]]


@dataclass(slots=True)
class PackMeta:
    """The index of one pack: where its chunks are, and the manifests and records in it."""

    chunks: dict[Digest, tuple[int, int]] = field(default_factory=dict)
    blobs: dict[Digest, bytes] = field(default_factory=dict)
    records: dict[Digest, RecordEntry] = field(default_factory=dict)


def encode_meta(meta: PackMeta) -> bytes:
    """Canonical bytes of a pack's meta (order kept: chunks by offset, the rest as given)."""
    return encoding.encode([_META_TAG, 1, {
        "chunks": [[d, offset, length] for d, (offset, length) in meta.chunks.items()],
        "blobs": [[d, manifest] for d, manifest in meta.blobs.items()],
        "records": [[d, e.data, list(e.children), {k: [list(p) for p in v]
                                                     for k, v in e.series.items()}]
                    for d, e in meta.records.items()],
    }])


def decode_meta(name: str, data: bytes) -> PackMeta:
    """Parse a meta after checking it against its name.

    Raises:
        IntegrityError: the bytes do not hash to the pack's name (a damaged meta).
        CorruptRecordError: they hash right but are not a pack meta.
    """
    actual = digest_bytes(data)
    if actual.hex() != name:
        raise IntegrityError(f"pack meta {name} on the remote is corrupt: its bytes hash to "
                             f"{actual.hex()}; nothing was taken from it",
                             expected=Digest(bytes.fromhex(name)), actual=actual)
    try:
        tag, version, body = encoding.decode(data)
        if tag != _META_TAG or version != 1:
            raise ValueError(f"not a pack meta ({tag!r}, version {version!r})")
        return PackMeta(
            chunks={Digest(d): (int(o), int(n)) for d, o, n in body["chunks"]},
            blobs={Digest(d): bytes(m) for d, m in body["blobs"]},
            records={Digest(d): RecordEntry(bytes(b), [Digest(c) for c in children],
                                            {str(k): [(int(s), float(t), float(v))
                                                      for s, t, v in points]
                                             for k, points in series.items()})
                     for d, b, children, series in body["records"]},
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise CorruptRecordError(f"pack meta {name} on the remote is malformed: {exc}") from None


# -- an in-memory transaction ---------------------------------------------------------------


class MirrorTxn(KeysFromItems):
    """A write transaction over plain sorted lists: the schema functions work on it as on
    a store. Not durable, not shared: a view of a remote for one push, pull or gc."""

    def __init__(self) -> None:
        self._values: dict[str, dict[bytes, bytes]] = {ns: {} for ns in NAMESPACES}
        self._keys: dict[str, list[bytes]] = {ns: [] for ns in NAMESPACES}

    def get(self, namespace: str, key: bytes) -> bytes | None:
        """The value under ``key``, or ``None``."""
        return self._values[namespace].get(key)

    def items(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
              ) -> Iterator[tuple[bytes, bytes]]:
        """Key/value pairs whose key starts with ``prefix``, in key order."""
        keys, values = self._keys[namespace], self._values[namespace]
        start = bisect.bisect_left(keys, prefix)
        end = start
        while end < len(keys) and keys[end].startswith(prefix):
            end += 1
        chosen = keys[start:end]
        for key in (reversed(chosen) if reverse else chosen):
            yield key, values[key]

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        values = self._values[namespace]
        if key not in values:
            bisect.insort(self._keys[namespace], key)
        values[key] = value

    def delete(self, namespace: str, key: bytes) -> bool:
        """Remove ``key``; return whether it was there."""
        values = self._values[namespace]
        if key not in values:
            return False
        del values[key]
        keys = self._keys[namespace]
        del keys[bisect.bisect_left(keys, key)]
        return True


# -- the state of a remote ------------------------------------------------------------------


class Stream(NamedTuple):
    """A mutable ref on a remote: ``("stage", name, stage)`` or ``("tag", tag, tag)``."""

    ref: str
    name: str
    key: str

    def path(self, position: int | None = None) -> str:
        """Where its moves live (the move at ``position`` if given)."""
        base = (f"refs/stages/{self.name}/{self.key}" if self.ref == "stage"
                else f"refs/tags/{self.name}")
        return base if position is None else f"{base}/{position:08d}"

    def __str__(self) -> str:
        return self.name if self.ref == "tag" else f"{self.name}@{self.key}"


def version_path(name: str, version: str) -> str:
    """Where ``name@version`` lives on a remote."""
    return f"refs/versions/{name}/{version}"


@dataclass(slots=True)
class RemoteState:
    """Everything a remote holds but chunk bytes and events, as read at one moment.

    ``txn`` is a :class:`MirrorTxn` with the remote's records indexed, its manifests, its
    versions, the current target of each stage and tag: revisions resolve in it and
    :func:`lineage.storage.maintenance.reachable` walks it.
    """

    connection: Connection
    packs: dict[str, PackMeta] = field(default_factory=dict)
    chunk_home: dict[Digest, tuple[str, int, int]] = field(default_factory=dict)
    records: dict[Digest, RecordEntry] = field(default_factory=dict)
    versions: dict[tuple[str, str], RefEntry] = field(default_factory=dict)
    streams: dict[Stream, list[RefEntry]] = field(default_factory=dict)
    orphans: list[str] = field(default_factory=list)  # .pack files without a .meta
    txn: MirrorTxn = field(default_factory=MirrorTxn)

    def has_blob(self, digest: Digest) -> bool:
        """Whether the remote holds a manifest for blob ``digest``."""
        return schema.raw_manifest(self.txn, digest) is not None


def load_state(connection: Connection, *, create: bool = False) -> RemoteState:
    """Read a remote's metas and refs (a few listing and batched read requests).

    With ``create``, an empty or missing location is made a remote (its marker written).

    Raises:
        RemoteError: the location holds something that is not a lineage remote, or cannot
            be reached (see :class:`~lineage.remotes.connection.Connection`).
        IntegrityError: a meta does not match its name.
    """
    state = RemoteState(connection)
    files = connection.find(attempts=1)  # an endpoint unreachable from the start: say so now
    if MARKER not in files:
        if files and any(not f.startswith(("packs/", "refs/", "events/", "leases/", "tmp/"))
                         for f in files):
            raise RemoteError(f"remote {connection.label} holds files that are not a lineage "
                              f"remote's (e.g. {files[0]!r}); give an empty location")
        if create:
            connection.create(MARKER, _MARKER_BYTES)
        elif not files:
            raise RemoteError(f"remote {connection.label} is empty or does not exist (it holds "
                              "no lineage remote); push to it first, or check the URL")
    if connection.cache is not None:
        connection.cache.prune(files)
    metas = [f for f in files if f.startswith("packs/") and f.endswith(".meta")]
    named = {f[len("packs/"):-len(".meta")] for f in metas}
    state.orphans = [f for f in files if f.startswith("packs/") and f.endswith(".pack")
                     and f[len("packs/"):-len(".pack")] not in named]
    for path, data in connection.cat(metas).items():
        name = path[len("packs/"):-len(".meta")]
        meta = decode_meta(name, data)
        state.packs[name] = meta
        for digest, (offset, length) in meta.chunks.items():
            state.chunk_home.setdefault(digest, (name, offset, length))
        for digest, manifest in meta.blobs.items():
            schema.put_manifest(state.txn, digest, manifest)
        state.records.update(meta.records)
    for digest, entry in state.records.items():
        try:
            schema.index_record(state.txn, decode_record(entry.data, digest))
        except CorruptRecordError:
            continue  # checked (and refused) when pulled
    _load_refs(connection, [f for f in files if f.startswith("refs/")], state)
    return state


def _load_refs(connection: Connection, paths: list[str], state: RemoteState) -> None:
    streams: dict[Stream, dict[int, RefEntry]] = {}
    for path, data in connection.cat(paths).items():
        parts = path.split("/")
        try:
            entry = RefEntry.decode(data)
        except (CorruptRecordError, ValueError, TypeError) as exc:
            raise CorruptRecordError(f"ref {path} on remote {connection.label} is malformed "
                                     f"({exc}); repair or remove it") from None
        if parts[1] == "versions" and len(parts) == 4:
            state.versions[(parts[2], parts[3])] = entry
        elif parts[1] == "stages" and len(parts) == 5:
            streams.setdefault(Stream("stage", parts[2], parts[3]), {})[int(parts[4])] = entry
        elif parts[1] == "tags" and len(parts) == 4:
            streams.setdefault(Stream("tag", parts[2], parts[2]), {})[int(parts[3])] = entry
    state.streams = {s: [moves[p] for p in sorted(moves)] for s, moves in streams.items()}
    by_name: dict[str, list[RefEntry]] = {}
    for (name, _version), entry in state.versions.items():
        by_name.setdefault(name, []).append(entry)
    for name, entries in by_name.items():
        for seq, entry in enumerate(sorted(entries, key=lambda e: (e.time, e.key))):
            if entry.target is not None:
                schema.put_version(state.txn, name, schema.VersionEntry(
                    seq, entry.key, entry.target, entry.time))
    for stream, moves in state.streams.items():
        target = moves[-1].target if moves else None
        if stream.ref == "stage":
            schema.put_stage(state.txn, stream.name, stream.key, target)
        else:
            schema.put_tag(state.txn, stream.name, target)


def check_record(digest: Digest, data: bytes) -> Any:
    """The record in ``data`` after checking it hashes to ``digest`` and is canonical.

    Raises:
        IntegrityError: the bytes do not hash to ``digest``.
        CorruptRecordError: they are not a canonical record.
    """
    actual = digest_bytes(data)
    if actual != digest:
        raise IntegrityError(f"record {digest.hex()} on the remote is corrupt: its bytes hash to "
                             f"{actual.hex()}; nothing was pulled", expected=digest, actual=actual)
    record = decode_record(data, digest)
    if record.encode() != data:
        raise CorruptRecordError(f"record {digest.hex()} on the remote is not canonically "
                                 "encoded; nothing was pulled")
    return record
