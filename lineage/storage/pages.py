"""LMDB's data file checked page by page, in Python, without LMDB.

LMDB trusts its file. A damaged page (a node offset, a key or value size, a child page
number, an overflow count) makes it read outside the page or the map: the process crashes
(SIGSEGV, SIGBUS) or reads garbage as structure. A data file truncated to nothing is taken
for a new, empty environment. So before LMDB walks a file it has not written itself in
this process, we check what LMDB relies on, reading pages with ``pread`` (never a map, so a
short file cannot raise SIGBUS here either):

- :func:`check_header` (before ``lmdb.open``): both meta pages are meta pages of this
  format, with one page size, and the newest names no page past the end of the file;
- :func:`check_tree` over one snapshot (a read transaction pins it, so no writer reuses its
  pages while we read): every page reachable from the main database (``quick``: the main
  tree and the records of the named databases, which opening them reads; else every page
  of every tree, the free list's page numbers and every overflow run) has its own number,
  a known type, sane bounds, nodes inside the page, neither overlapping nor leaving gaps,
  keys in order within the bounds its parents give, leaves at the tree's depth, counts
  matching the database record, and no page reached twice.

A file that passes the full check can be read by LMDB without crashing; what it holds may
still be damaged (a flipped byte in a value), which the content hashes above this layer
catch. Format: LMDB 0.9 on a 64-bit machine, native byte order (``lmdb.h`` and ``mdb.c``,
``MDB_page``, ``MDB_node``, ``MDB_meta``, ``MDB_db``).
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final, NamedTuple

from lineage.errors import StoreError

__all__ = ["Damage", "TreeReport", "check_environment", "check_file", "check_header",
           "check_tree"]

P_BRANCH: Final = 0x01
P_LEAF: Final = 0x02
P_OVERFLOW: Final = 0x04
P_META: Final = 0x08
_TYPE_BITS: Final = 0x01 | 0x02 | 0x04 | 0x08 | 0x20 | 0x40  # branch leaf overflow meta leaf2 subp
F_BIGDATA: Final = 0x01
F_SUBDATA: Final = 0x02
MDB_INTEGERKEY: Final = 0x08
MAGIC: Final = 0xBEEFC0DE
DATA_VERSION: Final = 1
P_INVALID: Final = 2**64 - 1
HEADER: Final = 16
NODE: Final = 8
MAX_DEPTH: Final = 32  # LMDB's cursor stack
FREE_DBI: Final = 0
MAIN_DBI: Final = 1

_PAGE: Final = struct.Struct("=QHHHH")  # pgno, pad, flags, lower, upper
_PAGES: Final = struct.Struct("=I")  # an overflow page's page count, where lower/upper are
_NODE: Final = struct.Struct("=HHHH")  # lo, hi, flags, ksize
_DB: Final = struct.Struct("=IHHQQQQQ")  # pad, flags, depth, branch, leaf, overflow, entries, root
_META: Final = struct.Struct("=IIQQ")  # magic, version, address, mapsize
_PGNO: Final = struct.Struct("=Q")
_META_DBS: Final = HEADER + _META.size
_META_LAST: Final = _META_DBS + 2 * _DB.size  # last page number, then the transaction id


class Damage(Exception):
    """The data file is damaged; the message says where and how."""


class DbRecord(NamedTuple):
    """An ``MDB_db``: one B-tree's root, depth, counts and flags."""

    pad: int
    flags: int
    depth: int
    branch_pages: int
    leaf_pages: int
    overflow_pages: int
    entries: int
    root: int

    @classmethod
    def parse(cls, data: bytes, offset: int = 0) -> DbRecord:
        return cls(*_DB.unpack_from(data, offset))


class Meta(NamedTuple):
    """The fields of a meta page this check uses."""

    page_size: int
    free: DbRecord
    main: DbRecord
    next_page: int
    txnid: int


class TreeReport:
    """What :func:`check_tree` walked and what it found wrong."""

    __slots__ = ("entries", "pages", "problems")

    def __init__(self) -> None:
        self.pages = 0
        self.entries = 0
        self.problems: list[str] = []

    def __repr__(self) -> str:
        return (f"TreeReport(pages={self.pages}, entries={self.entries}, "
                f"problems={self.problems!r})")


def _read_meta(fd: int, number: int, page_size: int) -> Meta:
    data = os.pread(fd, _META_LAST + 16, number * page_size)
    if len(data) < _META_LAST + 16:
        raise Damage(f"meta page {number} is cut short (the file is truncated)")
    _pgno, _pad, flags, _lower, _upper = _PAGE.unpack_from(data)
    magic, version, _address, _mapsize = _META.unpack_from(data, HEADER)
    if not flags & P_META or magic != MAGIC:
        raise Damage(f"page {number} is not an LMDB meta page")
    if version != DATA_VERSION:
        raise Damage(f"meta page {number} has format version {version}, not {DATA_VERSION}")
    free = DbRecord.parse(data, _META_DBS)
    main = DbRecord.parse(data, _META_DBS + _DB.size)
    last, txnid = struct.unpack_from("=QQ", data, _META_LAST)
    size = free.pad  # LMDB keeps the page size in the free database's pad
    if size < 512 or size > 65536 or size & (size - 1):
        raise Damage(f"meta page {number} gives a page size of {size}")
    return Meta(size, free, main, last + 1, txnid)


def check_header(path: Path) -> Meta | None:
    """Check the two meta pages of ``path`` (an LMDB ``data.mdb``) and the file's length;
    return the newest meta, or ``None`` when the file is absent or empty (a new store).

    Raises:
        Damage: either meta page is damaged, they disagree on the page size, or the file
            is shorter than the newest meta says.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size == 0:
            return None
        first = _read_meta(fd, 0, 0)
        metas = [first, _read_meta(fd, 1, first.page_size)]
        if metas[1].page_size != first.page_size:
            raise Damage("the two meta pages give different page sizes")
        newest = metas[1] if metas[1].txnid > first.txnid else first
        if newest.next_page * newest.page_size > size:
            raise Damage(f"the file holds {size // newest.page_size} pages but its meta page "
                         f"names {newest.next_page} (the file is truncated)")
        for name, db in (("free", newest.free), ("main", newest.main)):
            _check_db_record(db, name, newest.next_page)
        return newest
    finally:
        os.close(fd)


def meta_of(path: Path, txnid: int) -> Meta | None:
    """The meta page of transaction ``txnid``, or ``None`` if it was overwritten since.

    Raises:
        Damage: a meta page is damaged.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        first = _read_meta(fd, 0, 0)
        for meta in (first, _read_meta(fd, 1, first.page_size)):
            if meta.txnid == txnid:
                return meta
        return None
    finally:
        os.close(fd)


def _check_db_record(db: DbRecord, name: str, next_page: int) -> None:
    """A database record names pages of the file, a sane depth, and lineage's flags."""
    if db.root == P_INVALID:
        if db.depth or db.entries:
            raise Damage(f"database {name} is empty but records depth {db.depth} and "
                         f"{db.entries} entries")
        return
    if not 2 <= db.root < next_page:
        raise Damage(f"database {name} has its root at page {db.root}, outside the file's "
                     f"pages 2-{next_page - 1}")
    if not 1 <= db.depth <= MAX_DEPTH:
        raise Damage(f"database {name} records a depth of {db.depth}")
    expected = MDB_INTEGERKEY if name == "free" else 0
    if db.flags != expected:
        raise Damage(f"database {name} has flags {db.flags:#x}; lineage makes only "
                     f"{expected:#x}")


class _Walker:
    """Walks B-trees of one snapshot, reading pages with ``pread``."""

    def __init__(self, fd: int, meta: Meta) -> None:
        self.fd = fd
        self.size = meta.page_size
        self.next_page = meta.next_page
        self.seen: set[int] = {0, 1}
        self.report = TreeReport()

    def page(self, number: int, what: str) -> bytes:
        if not 2 <= number < self.next_page:
            raise Damage(f"{what} names page {number}, outside the file's pages "
                         f"2-{self.next_page - 1}")
        if number in self.seen:
            raise Damage(f"{what} names page {number}, which is reached twice (a loop or "
                         "a cross-link)")
        self.seen.add(number)
        data = os.pread(self.fd, self.size, number * self.size)
        if len(data) != self.size:
            raise Damage(f"page {number} is cut short (the file is truncated)")
        if _PAGE.unpack_from(data)[0] != number:
            raise Damage(f"page {number} says it is page {_PAGE.unpack_from(data)[0]}")
        self.report.pages += 1
        return data

    def nodes(self, data: bytes, number: int, kind: int) -> list[tuple[int, int, int, bytes,
                                                                       int]]:
        """``(lo, hi, flags, key, data offset)`` of each node of a branch or leaf page."""
        _pgno, _pad, flags, lower, upper = _PAGE.unpack_from(data)
        if flags & _TYPE_BITS != kind:
            want = "branch" if kind == P_BRANCH else "leaf"
            raise Damage(f"page {number} has type {flags & _TYPE_BITS:#x} where a {want} "
                         "page belongs")
        if not HEADER < lower <= upper <= self.size or (lower - HEADER) % 2:
            raise Damage(f"page {number} has bounds {lower}-{upper}")
        count = (lower - HEADER) // 2
        pointers = struct.unpack_from(f"={count}H", data, HEADER)
        nodes = []
        spans = []
        for pointer in pointers:
            if pointer < upper or pointer % 2 or pointer + NODE > self.size:
                raise Damage(f"page {number} has a node at offset {pointer}, outside "
                             f"{upper}-{self.size}")
            lo, hi, node_flags, key_size = _NODE.unpack_from(data, pointer)
            start = pointer + NODE
            if kind == P_BRANCH:
                extent = NODE + key_size
            elif node_flags & F_BIGDATA:
                extent = NODE + key_size + _PGNO.size
            else:
                extent = NODE + key_size + (lo | hi << 16)
            if pointer + extent > self.size:
                raise Damage(f"page {number} has a node of {extent} bytes at offset "
                             f"{pointer}, past the page's end")
            spans.append((pointer, extent))
            nodes.append((lo, hi, node_flags, data[start:start + key_size], start + key_size))
        spans.sort()
        used = 0
        for (pointer, extent), after in zip(spans, [*spans[1:], (self.size, 0)], strict=True):
            if pointer + extent > after[0]:
                raise Damage(f"page {number} has overlapping nodes at {pointer} and "
                             f"{after[0]}")
            used += extent + extent % 2
        if used != self.size - upper:
            raise Damage(f"page {number} uses {used} bytes for nodes but its bounds leave "
                         f"{self.size - upper}")
        return nodes

    def overflow(self, number: int, length: int, what: str) -> bytes:
        """The value stored in the overflow pages starting at ``number``."""
        data = self.page(number, what)
        flags = _PAGE.unpack_from(data)[2]
        (pages,) = _PAGES.unpack_from(data, 12)
        if flags & _TYPE_BITS != P_OVERFLOW:
            raise Damage(f"{what} names page {number} as an overflow page, but it is not one")
        if pages < -(-(HEADER + length) // self.size) or number + pages > self.next_page:
            raise Damage(f"overflow page {number} counts {pages} pages for a "
                         f"{length}-byte value")
        for extra in range(number + 1, number + pages):
            if extra in self.seen:
                raise Damage(f"overflow page {number} runs into page {extra}, used elsewhere")
            self.seen.add(extra)
        self.report.pages += pages - 1
        if length <= self.size - HEADER:
            return data[HEADER:HEADER + length]
        rest = os.pread(self.fd, length - (self.size - HEADER), (number + 1) * self.size)
        if len(rest) != length - (self.size - HEADER):
            raise Damage(f"overflow page {number} is cut short (the file is truncated)")
        return data[HEADER:] + rest

    def tree(self, name: str, db: DbRecord, *,
             values: bool = False) -> Iterator[tuple[bytes, int, bytes]]:
        """Check the tree of database ``name``; yield ``(key, flags, value)`` of its leaves'
        nodes when ``values`` (overflow values read in full)."""
        _check_db_record(db, name, self.next_page)
        if db.root == P_INVALID:
            return
        what = f"database {name}"
        counts = [0, 0, 0, 0]  # branch pages, leaf pages, overflow pages, entries
        integer_keys = db.flags & MDB_INTEGERKEY
        stack: list[tuple[int, int, bytes | None, bytes | None]] = [(db.root, 1, None, None)]
        while stack:
            number, level, low, high = stack.pop()
            data = self.page(number, what)
            kind = P_LEAF if level == db.depth else P_BRANCH
            nodes = self.nodes(data, number, kind)
            keys = [key for _lo, _hi, _flags, key, _at in nodes]
            ordered = keys[1:] if kind == P_BRANCH else keys
            if not integer_keys:
                _check_order(ordered, low, high, number)
            if kind == P_BRANCH:
                counts[0] += 1
                bounds = [low, *keys[1:], high]
                for index in range(len(nodes) - 1, -1, -1):
                    lo, hi, flags, _key, _at = nodes[index]
                    stack.append((lo | hi << 16 | flags << 32, level + 1, bounds[index],
                                  bounds[index + 1]))
                continue
            counts[1] += 1
            counts[3] += len(nodes)
            for lo, hi, flags, key, at in nodes:
                length = lo | hi << 16
                if flags & ~(F_BIGDATA | F_SUBDATA):
                    raise Damage(f"page {number} has a node with flags {flags:#x}")
                if flags & F_BIGDATA:
                    (first,) = _PGNO.unpack_from(data, at)
                    before = self.report.pages
                    value = self.overflow(first, length, what)
                    counts[2] += self.report.pages - before
                else:
                    value = data[at:at + length]
                if values:
                    yield key, flags, value
        recorded = (db.branch_pages, db.leaf_pages, db.overflow_pages, db.entries)
        if tuple(counts) != recorded:
            raise Damage(f"{what} counts (branch, leaf, overflow pages, entries) "
                         f"{tuple(counts)} but records {recorded}")


def _check_order(keys: list[bytes], low: bytes | None, high: bytes | None, number: int) -> None:
    """Keys strictly increasing, the first at or above ``low``, the last below ``high``."""
    if keys and ((low is not None and keys[0] < low) or (high is not None and keys[-1] >= high)):
        raise Damage(f"page {number} holds a key outside the bounds its parent gives")
    for previous, key in zip(keys, keys[1:], strict=False):
        if key <= previous:
            raise Damage(f"page {number} holds keys out of order")


def check_tree(path: Path, meta: Meta, *, quick: bool = False) -> TreeReport:
    """Check the snapshot ``meta`` describes (see the module docstring); the caller holds
    a read transaction on it. Problems are reported, one per damaged tree."""
    fd = os.open(path, os.O_RDONLY)
    walker = _Walker(fd, meta)
    try:
        named: list[tuple[str, DbRecord]] = []
        try:
            for key, flags, value in walker.tree("main", meta.main, values=True):
                name = key.decode(errors="replace")
                if not flags & F_SUBDATA or len(value) != _DB.size:
                    raise Damage(f"main database entry {name!r} is not a database record")
                named.append((name, DbRecord.parse(value)))
        except Damage as exc:
            walker.report.problems.append(f"data.mdb: {exc}")
            return walker.report
        for name, db in named:
            try:
                if quick:
                    _check_db_record(db, name, meta.next_page)
                else:
                    for _item in walker.tree(name, db):
                        pass
                walker.report.entries += db.entries
            except Damage as exc:
                walker.report.problems.append(f"data.mdb, database {name}: {exc}")
        if not quick:
            _check_free(walker, meta)
        return walker.report
    finally:
        os.close(fd)


def _check_free(walker: _Walker, meta: Meta) -> None:
    """The free list: its tree, and page numbers that no tree uses."""
    try:
        free_lists = [value for _key, _flags, value in walker.tree("free", meta.free,
                                                                  values=True)]
        in_use = set(walker.seen)
        for value in free_lists:
            count = _PGNO.unpack_from(value)[0] if len(value) >= _PGNO.size else -1
            if count < 0 or len(value) != (count + 1) * _PGNO.size:
                raise Damage("a free-list entry is malformed")
            for (number,) in _PGNO.iter_unpack(value[_PGNO.size:]):
                if not 2 <= number < meta.next_page or number in in_use:
                    raise Damage(f"the free list names page {number}, which is "
                                 + ("in use" if number in in_use else "outside the file"))
    except Damage as exc:
        walker.report.problems.append(f"data.mdb, free list: {exc}")


_ATTEMPTS: Final = 3


def check_file(directory: Path) -> None:
    """Check ``directory/data.mdb`` before LMDB opens it (see :func:`check_header`).

    An empty data file is a new store, unless packs already hold content: then the index
    was lost, and opening would silently give an empty store. A check that fails is
    repeated, so that a meta page being rewritten by a writer at that moment is not taken
    for damage.

    Raises:
        StoreError: the file is damaged, truncated or emptied.
    """
    for attempt in range(_ATTEMPTS):
        try:
            meta = check_header(directory / "data.mdb")
        except Damage as exc:
            if attempt + 1 < _ATTEMPTS:
                time.sleep(0.01)
                continue
            raise StoreError(f"the store at {directory} is damaged: data.mdb: {exc}; restore "
                             "the store from a backup") from None
        # LMDB writes its two meta pages as it creates data.mdb, so an empty one beside a
        # lock.mdb (the store was opened before) or content in packs was emptied.
        if meta is None and (directory / "data.mdb").exists() and (
                (directory / "lock.mdb").exists() or any(
                    size > 0 for size in _pack_sizes(directory))):
            if attempt + 1 < _ATTEMPTS:  # another process may be creating it right now
                time.sleep(0.01)
                continue
            raise StoreError(f"the store at {directory} has an empty data.mdb although it "
                             "was used before: its index was lost; restore data.mdb from a "
                             "backup")
        return


def _pack_sizes(directory: Path) -> Iterator[int]:
    for pack in (directory / "packs").glob("*.pack"):
        try:
            yield pack.stat().st_size
        except OSError:
            continue


def check_environment(directory: Path, env: Any, *, quick: bool) -> list[str]:
    """Problems in the structure of the snapshot a fresh read transaction of ``env`` (an
    ``lmdb.Environment`` open on ``directory``) sees; ``[]`` when it is sound.

    The transaction pins the snapshot while its pages are read. If two commits overwrote
    both meta pages meanwhile, a newer snapshot is taken.
    """
    import lmdb

    problems: list[str] = []
    for _ in range(_ATTEMPTS):
        try:
            txn = env.begin(buffers=False)
        except lmdb.MapResizedError:  # another process grew the map: adopt its size
            env.set_mapsize(0)
            continue
        try:
            meta = meta_of(directory / "data.mdb", txn.id())
            if meta is None:
                continue
            return check_tree(directory / "data.mdb", meta, quick=quick).problems
        except Damage as exc:
            problems = [f"data.mdb: {exc}"]
        finally:
            txn.abort()
    return problems
