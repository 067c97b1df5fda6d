"""The LMDB backend: one environment per store directory, chunk bytes in append-only packs.

Layout of a store directory::

    data.mdb, lock.mdb     the LMDB environment (every namespace is a named database)
    packs/*.pack           chunk bytes, appended by one process each, fsynced before the
                           LMDB transaction that names them commits

Why packs: LMDB writes large values through its page allocator at roughly a third of the
disk's sequential speed (64 KiB values) and fragments its free list when they are deleted;
appending to a plain file runs at disk speed. Records, refs, edges and indexes stay in LMDB,
so nothing is visible before the transaction naming it commits.

Small chunks (at most ``_INLINE_MAX`` bytes) skip the pack: their location *is* their bytes
(``=`` then the bytes; a pack location starts with an offset's high byte, 0), durable with the
transaction naming them, so a small add costs one LMDB commit and no pack fsync.

Guarantees:

- the map grows by itself: ``MapFullError`` grows it and re-runs the whole transaction, and a
  map grown by another process is adopted (``MapResizedError``); ``writemap`` is never used,
  so a full disk raises :class:`~lineage.errors.StoreError` instead of ``SIGBUS``;
- stale reader slots left by dead processes are cleared at open, and by a long-lived writer
  every ``_READER_CHECK_S`` seconds (they pin old pages, so the file would only grow);
- fork-safe: a process that forks after opening gets a fresh environment, a fresh pack and
  fresh locks in the child (another thread of the parent may have held them at the fork);
  the inherited handles are never touched again;
- each writing process appends only to its own pack and holds a shared ``flock`` on it, so
  compaction (``gc``) never rewrites a pack that a live writer may still be filling; a pack
  rotated out (at 4 GiB) stays open and locked until the backend closes, since it may hold
  chunks staged by adds that have not committed yet.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from itertools import takewhile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar, cast

import lmdb

from lineage.errors import StoreError
from lineage.storage import pages, schema
from lineage.storage.base import Backend
from lineage.storage.packs import (
    LOCATION,
    PackWriter,
    split_location,
    start_writeback,
)
from lineage.storage.schema import NAMESPACES

if TYPE_CHECKING:
    from lineage.core.hashing import Digest

__all__ = ["LmdbBackend"]

T = TypeVar("T")

_INITIAL_MAP_SIZE: Final = 256 * 1024 * 1024
_MAX_RETRIES: Final = 40
_PACK_ROTATE_BYTES: Final = 4 * 1024**3
_LOW_SPACE: Final = 64 * 1024 * 1024  # free bytes below which an I/O error means a full disk
_READER_CHECK_S: Final = 10.0  # a long-lived writer clears dead readers' slots this often
_INLINE: Final = b"="  # a location holding the chunk's bytes themselves
_INLINE_MAX: Final = 2000  # LMDB keeps values up to ~2 KiB in its leaf pages (4 KiB pages)

# Environments inherited across fork() must never be used or closed in the child; they are
# parked here so that garbage collection does not close them either.
_ABANDONED_AFTER_FORK: list[Any] = []
# Every backend of this process, so that a forked child gets fresh locks: a lock another
# thread of the parent held at the fork stays held forever in the child.
_BACKENDS: weakref.WeakSet[LmdbBackend] = weakref.WeakSet()


def _fresh_locks_in_child() -> None:
    for backend in list(_BACKENDS):
        backend._lock = threading.RLock()


os.register_at_fork(after_in_child=_fresh_locks_in_child)


@contextmanager
def _past_inherited_handles() -> Iterator[None]:
    """Let a forked child open its own environment over files an inherited handle holds.

    py-lmdb (3.x) refuses to open files that an Environment of this process holds, and a
    forked child inherits the parent's handles in that registry. Those handles must never
    be used or closed in the child (closing clears the parent's reader slots), so the
    child opens a fresh environment past the check, as LMDB itself allows after fork.
    """
    try:
        from lmdb import _envid  # the registry's key function (absent in older py-lmdb)
    except ImportError:
        yield
        return
    original = _envid.env_keys
    _envid.env_keys = lambda path, subdir: ()
    try:
        yield
    finally:
        _envid.env_keys = original


def _store_error(exc: BaseException, action: str, path: Path | None = None) -> StoreError:
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT) or "No space" in str(exc) or "quota" in str(exc):
        return StoreError(f"cannot {action}: the disk is full; free space and retry")
    if path is not None and "Input/output error" in str(exc):  # LMDB's word for a short write
        try:
            stats = os.statvfs(path)
        except OSError:
            stats = None
        if stats is not None and stats.f_bavail * stats.f_frsize < _LOW_SPACE:
            return StoreError(f"cannot {action}: the disk is full ({exc}); free space and "
                              "retry")
    if code == errno.EFBIG or "File too large" in str(exc):
        return StoreError(f"cannot {action}: a store file reached the file size limit "
                          "(ulimit -f); raise it and retry")
    return StoreError(f"cannot {action}: {exc}")


class _Txn:
    """Adapter from an ``lmdb.Transaction`` to the backend transaction protocol."""

    __slots__ = ("_dbs", "_txn")

    def __init__(self, txn: lmdb.Transaction, dbs: dict[str, Any]) -> None:
        self._txn = txn
        self._dbs = dbs

    def get(self, namespace: str, key: bytes) -> bytes | None:
        # Transactions are begun with buffers=False, so values are bytes, never memoryviews.
        return cast("bytes | None", self._txn.get(key, db=self._dbs[namespace]))

    def items(
        self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
    ) -> Iterator[tuple[bytes, bytes]]:
        # Index scans are dominated by this loop, so it runs in C: the cursor's iterator,
        # cut by takewhile where the keys leave the prefix. ``(bound,) > (key, value)``
        # compares ``bound`` with ``key`` (a tuple's first items first).
        cursor = self._txn.cursor(db=self._dbs[namespace])
        if not reverse:
            found = cursor.set_range(prefix) if prefix else cursor.first()
            pairs = cast("Iterator[tuple[bytes, bytes]]", cursor.iternext() if found else iter(()))
            upper = _prefix_upper_bound(prefix)
            return pairs if upper is None else takewhile((upper,).__gt__, pairs)
        found = _seek_last_with_prefix(cursor, prefix)
        pairs = cast("Iterator[tuple[bytes, bytes]]", cursor.iterprev() if found else iter(()))
        return takewhile((prefix,).__le__, pairs) if prefix else pairs

    def keys(self, namespace: str, prefix: bytes = b"", *, reverse: bool = False
             ) -> Iterator[bytes]:
        # As ``items``, without building a (key, value) pair per entry: a third less time
        # per index entry, which is what a run query's scans spend.
        cursor = self._txn.cursor(db=self._dbs[namespace])
        if not reverse:
            found = cursor.set_range(prefix) if prefix else cursor.first()
            keys = cast("Iterator[bytes]", cursor.iternext(values=False) if found else iter(()))
            upper = _prefix_upper_bound(prefix)
            return keys if upper is None else takewhile(upper.__gt__, keys)
        found = _seek_last_with_prefix(cursor, prefix)
        keys = cast("Iterator[bytes]", cursor.iterprev(values=False) if found else iter(()))
        return takewhile(prefix.__le__, keys) if prefix else keys

    def put(self, namespace: str, key: bytes, value: bytes) -> None:
        self._txn.put(key, value, db=self._dbs[namespace])

    def delete(self, namespace: str, key: bytes) -> bool:
        return bool(self._txn.delete(key, db=self._dbs[namespace]))


class _Reading:
    """A read transaction as a context manager (a class: cheaper than a generator's). LMDB
    errors raised while it is open (damage LMDB checks for itself) become ``StoreError``."""

    __slots__ = ("_dbs", "_env", "_txn")

    def __init__(self, env: lmdb.Environment, dbs: dict[str, Any]) -> None:
        self._env, self._dbs = env, dbs
        self._txn: lmdb.Transaction | None = None

    def __enter__(self) -> _Txn:
        for _ in range(_MAX_RETRIES):
            try:
                self._txn = self._env.begin(buffers=False)
                return _Txn(self._txn, self._dbs)
            except lmdb.MapResizedError:
                self._env.set_mapsize(0)
        raise StoreError("cannot begin a read: the map keeps being resized")

    def __exit__(self, *exc: object) -> None:
        if self._txn is not None:
            self._txn.abort()
            self._txn = None
        if len(exc) > 1 and isinstance(exc[1], lmdb.Error):
            raise StoreError(f"cannot read the store: {exc[1]}; run `lineage verify`") from None


def _seek_last_with_prefix(cursor: lmdb.Cursor, prefix: bytes) -> bool:
    if not prefix:
        return bool(cursor.last())
    upper = _prefix_upper_bound(prefix)
    if upper is None:
        return bool(cursor.last())
    if cursor.set_range(upper):
        return bool(cursor.prev())
    return bool(cursor.last())


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class LmdbBackend(Backend):
    """Storage in an LMDB environment plus append-only pack files, in one directory."""

    def __init__(self, path: str | os.PathLike[str], *, map_size: int = _INITIAL_MAP_SIZE) -> None:
        self._path = Path(path)
        self._packs_dir = self._path / "packs"
        self._initial_map_size = map_size
        self._lock = threading.RLock()
        self._closed = False
        self._damaged: str | None = None  # what check_structure found
        self._readers_checked = time.monotonic()
        _BACKENDS.add(self)
        self._maps: dict[str, mmap.mmap] = {}
        self._pack: PackWriter | None = None
        self._rotated: list[PackWriter] = []  # full packs, kept locked until close
        self._pid = -1
        try:
            self._packs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create store directory {self._path}: {exc}") from None
        self._open_environment()

    @property
    def location(self) -> str:
        return str(self._path)

    @property
    def map_size(self) -> int:
        """Current size of the LMDB map in bytes."""
        return int(self._environment().info()["map_size"])

    def _open_environment(self) -> None:
        pages.check_file(self._path)  # LMDB must never walk a damaged file: it may crash
        try:
            self._env = lmdb.open(
                str(self._path),
                map_size=self._initial_map_size,
                max_dbs=len(NAMESPACES) + 2,
                max_readers=1024,
                subdir=True,
                writemap=False,
                readahead=False,
                metasync=True,
                sync=True,
                lock=True,
            )
            self._env.reader_check()
            problems = pages.check_environment(self._path, self._env, quick=True)
            if not problems:
                self._dbs = self._open_databases()
        except lmdb.Error as exc:
            raise StoreError(f"cannot open the store at {self._path}: {exc}") from None
        if problems:
            self._env.close()
            raise StoreError(f"the store at {self._path} is damaged: {problems[0]}; restore "
                             "it from a backup")
        self._pid = os.getpid()
        self._maps = {}
        self._pack = None
        self._rotated = []

    def _open_databases(self) -> dict[str, Any]:
        for _ in range(_MAX_RETRIES):
            try:
                return {ns: self._env.open_db(ns.encode()) for ns in NAMESPACES}
            except lmdb.MapResizedError:  # another process grew the map meanwhile: adopt it
                self._env.set_mapsize(0)
        raise StoreError("cannot open the store: the map keeps being resized")

    def _environment(self) -> lmdb.Environment:
        if self._closed:
            raise StoreError("the store is closed; open it again with lineage.open()")
        if self._damaged is not None:
            raise StoreError(f"the store at {self._path} is damaged ({self._damaged}); "
                             "restore it from a backup")
        if self._pid != os.getpid():
            # Forked: the parent's handles belong to the parent. Park them and start fresh.
            _ABANDONED_AFTER_FORK.append((self._env, self._maps, self._pack, self._rotated))
            with _past_inherited_handles():
                self._open_environment()
        return self._env

    def read(self) -> _Reading:
        return _Reading(self._environment(), self._dbs)

    def check_structure(self) -> list[str]:
        """Problems in the pages of ``data.mdb``, found without LMDB reading them (see
        :mod:`lineage.storage.pages`). Once one is found, this backend refuses every read
        and write: LMDB could crash on the damaged pages."""
        problems = pages.check_environment(self._path, self._environment(), quick=False)
        if problems:
            self._damaged = problems[0]
        return problems

    def write(self, apply: Callable[[_Txn], T]) -> T:
        env = self._environment()
        with self._lock:
            now = time.monotonic()
            if now - self._readers_checked > _READER_CHECK_S:  # readers that died since
                self._readers_checked = now  # pin old pages: free their slots
                env.reader_check()
            self._sync_pack()  # chunks appended by this process are durable before any commit
            for _ in range(_MAX_RETRIES):
                try:
                    with env.begin(write=True) as txn:
                        return apply(_Txn(txn, self._dbs))
                except lmdb.MapFullError:
                    self._grow(env)
                except lmdb.MapResizedError:
                    env.set_mapsize(0)
                except lmdb.Error as exc:
                    raise _store_error(exc, "write to the store", self._path) from None
            raise StoreError("cannot write: the map could not be grown enough")

    def _grow(self, env: lmdb.Environment) -> None:
        current = int(env.info()["map_size"])
        try:
            env.set_mapsize(current * 2)
        except lmdb.Error as exc:
            raise _store_error(exc, "grow the store's map") from None

    def write_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        locations = self.append_chunks(chunks)
        if any(location[:1] != _INLINE for location in locations):
            with self._lock:
                self._sync_pack()
        return locations

    def append_chunks(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        """Append chunk bytes to this process's pack and let the disk start on them now;
        durable once :meth:`sync_chunks` returns (small ones inline: see the module doc)."""
        self._environment()
        inline = [_INLINE + bytes(data) if len(data) <= _INLINE_MAX else b""
                  for _digest, data in chunks]
        packed = [chunk for chunk, location in zip(chunks, inline, strict=True) if not location]
        if not packed:
            return inline
        appended = iter(self._append_to_pack(packed))
        return [location or next(appended) for location in inline]

    def _append_to_pack(self, chunks: Sequence[tuple[bytes, memoryview | bytes]]) -> list[bytes]:
        with self._lock:
            try:
                pack = self._writable_pack()
                spans = pack.append([data for _digest, data in chunks])
                handle = pack.sync_handle()
            except OSError as exc:
                raise _store_error(exc, "write content to the store") from None
        try:  # outside the lock: another thread's next batch is written meanwhile
            start, (last, length) = spans[0][0], spans[-1]
            start_writeback(handle, start, last + length - start)
        finally:
            os.close(handle)
        suffix = pack.name.encode()
        return [LOCATION.pack(offset, length) + suffix for offset, length in spans]

    def sync_chunks(self) -> None:
        """Nothing to do now: :meth:`write` fsyncs this process's pack before any write
        transaction (the only way a chunk gets named) commits, so many staged blobs
        committed together cost one fsync."""
        self._environment()

    def _sync_pack(self) -> None:
        # Called with the lock held. A pack rotated out was fsynced as it closed.
        pack = self._pack
        if pack is not None and pack.unsynced:
            try:
                pack.sync()
            except OSError as exc:
                raise _store_error(exc, f"write pack {pack.name} to disk") from None

    def _writable_pack(self) -> PackWriter:
        if self._pack is None or self._pack.size > _PACK_ROTATE_BYTES:
            if self._pack is not None:
                # Synced now (its chunks' adds may not have synced yet), but kept open and
                # locked: it may hold chunks of adds not committed yet, which compact()
                # would otherwise see as dead and delete.
                self._pack.sync()
                self._rotated.append(self._pack)
            self._pack = PackWriter(self._packs_dir)
        return self._pack

    def read_chunk(self, location: bytes) -> memoryview:
        if location[:1] == _INLINE and not self._closed:  # the location holds the bytes
            return memoryview(location)[1:]
        self._environment()  # raises once closed
        if location[:1] == _INLINE:
            return memoryview(location)[1:]
        offset, length, name = split_location(location)
        mapped = self._maps.get(name)
        if mapped is None or offset + length > len(mapped):
            mapped = self._map_pack(name, offset + length)
        return memoryview(mapped)[offset : offset + length]

    def read_run(self, locations: Sequence[bytes]) -> memoryview | None:
        """The bytes of chunks stored back to back in one pack, as one view; else ``None``.

        Lets a caller compare many consecutive chunks in one call instead of one by one.
        """
        if not locations or any(location[:1] == _INLINE for location in locations):
            return None
        start, length, name = split_location(locations[0])
        end = start + length
        for location in locations[1:]:
            offset, length, other = split_location(location)
            if offset != end or other != name:
                return None
            end += length
        return self.read_chunk(LOCATION.pack(start, end - start) + name.encode())

    def discard_chunks(self, locations: Sequence[bytes]) -> None:
        """Take back chunks that :meth:`write_chunks` wrote and no transaction will name.

        Best effort: when they are the whole tail of this process's pack, the pack is cut
        back (removed, if nothing else is in it); otherwise they stay as garbage, counted
        by :meth:`orphaned_bytes`, for :meth:`compact`.
        """
        locations = [location for location in locations if location[:1] != _INLINE]
        with self._lock:
            pack = self._pack
            if pack is None or self._pid != os.getpid() or not locations:
                return
            spans = set()
            for location in locations:
                if location[LOCATION.size :] != pack.name.encode():
                    return
                spans.add(LOCATION.unpack_from(location))
            start = min(offset for offset, _length in spans)
            end = max(offset + length for offset, length in spans)
            if end != pack.size or sum(length for _o, length in spans) != end - start:
                return  # another writer's chunks sit between or after them: keep all
            try:
                if start == 0:  # the pack holds nothing else: no empty file is left behind
                    pack.remove()
                    self._pack = None
                else:
                    pack.truncate(start)
            except OSError:
                return
            self._maps.pop(pack.name, None)  # dropped, not closed: views may still use it

    def _map_pack(self, name: str, needed: int) -> mmap.mmap:
        path = self._packs_dir / f"{name}.pack"
        try:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size < needed:
                    raise StoreError(
                        f"pack {name} is shorter ({size} bytes) than its index says "
                        f"({needed}); run `lineage verify`"
                    )
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            raise StoreError(
                f"pack {name} is missing (removed by a concurrent gc?); retry the read"
            ) from None
        except (OSError, ValueError) as exc:  # unreadable; or empty, which mmap refuses
            raise StoreError(f"cannot read pack {name}: {exc}; run `lineage verify`") from None
        self._maps[name] = mapped
        return mapped

    def pack_paths(self) -> list[Path]:
        """The pack files currently in the store directory."""
        return sorted(self._packs_dir.glob("*.pack"))

    def compact(self) -> int:
        """Rewrite packs holding dead chunks; delete packs holding none that live.

        Packs held by a live writer (including this process's own) are left alone.
        """
        by_pack = self._live_by_pack()
        freed = 0
        for path in self.pack_paths():
            name = path.stem
            with self._idle_pack(path) as fd:
                if fd is None:
                    continue  # a live writer still appends here
                live = by_pack.get(name, [])
                size = os.fstat(fd).st_size
                live_bytes = sum(length for _d, _o, length in live)
                if live_bytes == size:
                    continue
                if live:
                    self._move_chunks(name, live)
                path.unlink(missing_ok=True)
                self._maps.pop(name, None)
                freed += size - live_bytes
        return freed

    def orphaned_bytes(self) -> int:
        """Bytes in packs that no chunk location names (left by adds that failed or were
        killed), in the packs :meth:`compact` would rewrite now (no live writer holds)."""
        by_pack = self._live_by_pack()
        total = 0
        for path in self.pack_paths():
            with self._idle_pack(path) as fd:
                if fd is not None:
                    live = sum(length for _d, _o, length in by_pack.get(path.stem, []))
                    total += max(0, os.fstat(fd).st_size - live)
        return total

    def _live_by_pack(self) -> dict[str, list[tuple[Digest, int, int]]]:
        """``(digest, offset, length)`` of every named chunk, by pack."""
        by_pack: dict[str, list[tuple[Digest, int, int]]] = {}
        with self.read() as txn:
            for digest, location in schema.digest_entries(txn, "chunks"):
                if location[:1] == _INLINE:
                    continue  # its bytes live in LMDB, not in a pack
                offset, length, name = split_location(location)
                by_pack.setdefault(name, []).append((digest, offset, length))
        return by_pack

    @contextmanager
    def _idle_pack(self, path: Path) -> Iterator[int | None]:
        """A descriptor of pack ``path`` locked exclusively, or ``None`` when a live writer
        holds it (or another gc removed it meanwhile)."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield None
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            yield fd
        finally:
            os.close(fd)

    def _move_chunks(self, name: str, live: list[tuple[Digest, int, int]]) -> None:
        old_suffix = name.encode()
        pieces = [
            (digest, bytes(self.read_chunk(LOCATION.pack(o, n) + old_suffix)))
            for digest, o, n in live
        ]
        new_locations = self.write_chunks(pieces)

        def relocate(txn: _Txn) -> None:
            for (digest, offset, length), new in zip(live, new_locations, strict=True):
                old = LOCATION.pack(offset, length) + old_suffix
                if schema.chunk_location(txn, digest) == old:
                    schema.put_chunk_location(txn, digest, new)

        self.write(relocate)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._pid != os.getpid():
            return  # the handles are the parent's
        for mapped in self._maps.values():
            try:
                mapped.close()
            except BufferError:
                pass  # a caller still holds a view; the map closes when it is dropped
        self._maps.clear()
        if self._pack is not None:
            self._pack.close()
            self._pack = None
        for rotated in self._rotated:
            rotated.close()
        self._rotated.clear()
        self._env.close()
