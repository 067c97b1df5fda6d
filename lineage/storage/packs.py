"""Pack files: append-only files of chunk bytes, one per writing process, and the chunk
locations that point into them.

A location is ``offset(8) length(8) pack name``; a pack name is the file's stem, letters,
digits, ``_`` and ``-`` only, so a damaged location can never name a file outside the
store's ``packs`` directory. A writer appends with few large ``writev`` calls, asks the
kernel to start writing back at once, and fsyncs before the LMDB transaction naming the
chunks commits (see :mod:`lineage.storage.lmdb`).
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

from lineage.errors import CorruptRecordError

__all__ = ["LOCATION", "PackWriter", "fsync_directory", "location", "split_location",
           "start_writeback"]

LOCATION: Final = struct.Struct(">QQ")
_IOV_MAX: Final = 1024
_SYNC_FILE_RANGE_WRITE: Final = 2
_PACK_NAME: Final = re.compile(rb"[0-9A-Za-z_-]{1,64}")  # never a path: no '/', no '.'


def location(offset: int, length: int, name: str) -> bytes:
    """The location of ``length`` bytes at ``offset`` in pack ``name``."""
    return LOCATION.pack(offset, length) + name.encode()


def split_location(location: bytes) -> tuple[int, int, str]:
    """``(offset, length, pack name)`` of a chunk location.

    Raises:
        CorruptRecordError: the location is damaged (it could otherwise name a file
            outside the store, or fail to decode).
    """
    name = location[LOCATION.size :]
    if len(location) <= LOCATION.size or _PACK_NAME.fullmatch(name) is None:
        raise CorruptRecordError(f"chunk location {bytes(location[:60])!r} is damaged; run "
                                 "`lineage verify`")
    offset, length = LOCATION.unpack_from(location)
    return offset, length, name.decode()


class PackWriter:
    """Appends chunk bytes to this process's own pack file."""

    def __init__(self, directory: Path) -> None:
        self.name = f"{time.time_ns():x}-{os.getpid()}-{os.urandom(4).hex()}"
        self.path = directory / f"{self.name}.pack"
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_SH)
        self.size = 0
        self.unsynced = False  # appended since the last fsync
        fsync_directory(directory)

    def append(self, pieces: Sequence[memoryview | bytes]) -> list[tuple[int, int]]:
        """Append ``pieces`` with few large writes (not yet fsynced: see :meth:`sync_handle`);
        return each one's (offset, length)."""
        views = [data if type(data) is bytes else memoryview(data).cast("B") for data in pieces]
        spans = []
        offset = self.size
        for view in views:
            spans.append((offset, len(view)))
            offset += len(view)
        self.unsynced = True
        try:
            _write_all(self._fd, views)
        except OSError:  # a full disk: what part of the batch was written is no one's
            try:
                os.ftruncate(self._fd, self.size)
            except OSError:
                self.size = os.fstat(self._fd).st_size  # the partial write moved the end
            raise
        self.size = offset
        return spans

    def sync(self) -> None:
        """fsync the pack."""
        self.unsynced = False
        try:
            os.fsync(self._fd)
        except OSError:
            self.unsynced = True
            raise

    def sync_handle(self) -> int:
        """A duplicate of the pack's descriptor, to fsync without holding the writer's lock
        (a pack rotated meanwhile closes only its own descriptor)."""
        return os.dup(self._fd)

    def truncate(self, size: int) -> None:
        """Cut the pack back to ``size`` bytes (chunks past it were never committed)."""
        os.ftruncate(self._fd, size)
        self.size = size

    def sync_and_close(self) -> None:
        """fsync, then close."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def close(self) -> None:
        """Close without syncing (what was not synced belongs to no committed add)."""
        os.close(self._fd)

    def remove(self) -> None:
        """Close and delete the pack (it holds nothing any add will name)."""
        self.path.unlink(missing_ok=True)
        os.close(self._fd)


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    function.restype = ctypes.c_int
    return function


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing a byte range out now, without waiting for it
    (Linux's ``sync_file_range``; a no-op elsewhere). Durability still comes from fsync,
    which also reports any error; this only lets the disk start early."""
    start = _sync_file_range()
    if start is not None:
        start(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _write_all(fd: int, views: list[memoryview | bytes]) -> None:
    """Write every view in order with as few ``writev`` calls as the system allows."""
    index = 0
    while index < len(views):
        written = os.writev(fd, views[index : index + _IOV_MAX])
        while written:
            first = views[index]
            if written >= len(first):
                written -= len(first)
                index += 1
            else:
                views[index] = memoryview(first)[written:]
                written = 0
        while index < len(views) and not views[index]:
            index += 1


def fsync_directory(directory: Path) -> None:
    """fsync a directory, so that a file just created in it survives a crash."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
