"""Files and directories in and out of the store: staging with a stat cache, safe checkout.

A directory is stored as a *tree* blob: the canonical encoding of its sorted entries
``[relative posix path, type, digest or link target, size]`` with type ``f`` (file),
``x`` (executable file), ``l`` (symlink, recorded, never followed) or ``d`` (directory).
The directory's digest is the tree blob's digest, a Merkle digest over paths, modes and
file digests.

The stat cache maps an absolute path to ``(device, inode, size, mtime_ns, ctime_ns)`` and
the digest found when it was hashed. An entry is trusted only if all five still match (users
cannot set ``ctime``, so a same-size rewrite whose mtime was put back is re-hashed) and its
mtime is more than ``RACY_WINDOW_NS`` older than the moment the file was stat'ed for
hashing, as git does for "racily clean" files: otherwise a write landing within the
filesystem's timestamp granularity could go unseen.
"""

from __future__ import annotations

import mmap
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import msgpack

from lineage.core import encoding
from lineage.core.encoding import EXT_DIGEST
from lineage.core.hashing import Digest, map_file
from lineage.errors import CorruptRecordError, IntegrityError, PathError
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.blobs import StagedBlob, encode_digests, iter_blob
from lineage.storage.staging import Stager

__all__ = ["StagedPath", "checkout", "stage_path", "tree_entries"]

RACY_WINDOW_NS: Final = 2_000_000_000
_READ_WHOLE: Final = 8 * 1024 * 1024  # smaller files are read, larger ones mapped
TREE_TAG: Final = "lineage/tree"

Progress = Callable[[int], None]


@dataclass(slots=True)
class StagedPath:
    """A file or directory whose new content is durable but not yet committed."""

    kind: str  # "file" or "directory"
    root: StagedBlob
    size: int
    files: int
    blobs: list[StagedBlob] = field(default_factory=list)
    stat_entries: dict[bytes, bytes] = field(default_factory=dict)

    def commit(self, txn: WriteTxn) -> None:
        """Name every blob (and refresh the stat cache) inside ``txn``.

        Raises:
            ChunkVanished: content reused from the store (a stat-cache hit, a shared chunk)
                was removed by a gc since staging; stage again.
            CollisionError: another writer stored different bytes under one of our digests.
        """
        for blob in self.blobs:
            blob.commit(txn)
        self.root.commit(txn)
        for key, value in self.stat_entries.items():
            schema.put_stat_entry(txn, key, value)

    @property
    def written(self) -> int:
        """Bytes of new chunk content written while staging."""
        return sum(b.written for b in self.blobs) + self.root.written


def _cached_digest(txn: ReadTxn, key: bytes, info: os.stat_result) -> tuple[Digest, int] | None:
    entry = schema.stat_entry(txn, key)
    if entry is None:
        return None
    if (entry.dev, entry.ino, entry.size, entry.mtime_ns, entry.ctime_ns) != (
            info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns):
        return None  # entries written before ctime was kept have None: re-hashed once
    if entry.stat_ns - entry.mtime_ns <= RACY_WINDOW_NS:
        return None  # racily clean: cannot tell a same-tick rewrite apart
    if schema.raw_manifest(txn, entry.blob) is None:
        return None  # content was garbage-collected since
    return entry.blob, entry.size


def _stage_file(
    backend: Backend,
    path: str | Path,
    info: os.stat_result,
    out: StagedPath,
    stager: Stager,
    progress: Progress | None,
) -> StagedBlob:
    key = schema.stat_key(path)
    cached = _cached_digest(stager.reader(), key, info)
    if cached is not None:
        if progress:
            progress(info.st_size)
        # Reused whole: commit checks it is still stored (a gc meanwhile: ChunkVanished).
        return StagedBlob(digest=cached[0], size=cached[1], chunks=[], backend=backend,
                          reused=True)
    stat_ns = time.time_ns()
    blob = _stage_content(stager, path)
    if progress:
        progress(info.st_size)
    out.stat_entries[key] = encode_digests(
        [info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, blob.digest, stat_ns,
         info.st_ctime_ns]
    )
    return blob


def _shown(path: str | Path) -> str:
    """A path for a one-line message (a hostile one can be thousands of characters)."""
    text = str(path)
    return text if len(text) <= 200 else f"{text[:100]}...{text[-60:]}"


def _stage_content(stager: Stager, path: str | Path) -> StagedBlob:
    """Small files are copied out of their map (their chunks wait for the batch's one
    write); large ones are staged from the map, their chunks written before it closes."""
    try:
        data = map_file(path)
    except OSError as exc:
        raise PathError(f"cannot read {_shown(path)}: {exc.strerror}") from None
    try:
        if len(data) < _READ_WHOLE:
            return stager.add(bytes(data))
        blob = stager.add(data)
        stager.drain()
        return blob
    finally:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:
                pass  # a traceback still holds a view; the map closes when it is dropped


def _walk(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """Yield ``(relative posix path, path, lstat)`` for everything under ``root``, sorted.

    Paths are plain strings: building a ``Path`` per entry costs more than hashing a
    small file.
    """
    stack: list[tuple[str | Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name, reverse=True)
        except OSError as exc:
            raise PathError(f"cannot list {directory}: {exc.strerror}") from None
        for entry in entries:
            relative = f"{prefix}{entry.name}"
            info = entry.stat(follow_symlinks=False)
            yield relative, entry.path, info
            if stat.S_ISDIR(info.st_mode):
                stack.append((entry.path, relative + "/"))


def stage_path(
    backend: Backend, path: Path, *, progress: Progress | None = None
) -> StagedPath:
    """Stage a file or a directory tree (phase 1 of an add).

    Raises:
        PathError: the path is missing, unreadable, or holds a special file.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise PathError(f"no such file or directory: {_shown(path)}") from None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte
        raise PathError(f"cannot read {_shown(path)}: {getattr(exc, 'strerror', exc)}") from None
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise PathError(f"{path} is neither a regular file nor a directory")
    with Stager(backend) as stager:  # one write (and fsync) for all the new chunks
        if stat.S_ISREG(info.st_mode):
            placeholder = StagedBlob(Digest(bytes(16)), 0, [], backend=backend)
            out = StagedPath("file", placeholder, info.st_size, 1)
            out.root = _stage_file(backend, path.resolve(), info, out, stager, progress)
        else:
            out = _stage_tree(backend, path, stager, progress)
    return out


def _stage_tree(
    backend: Backend, path: Path, stager: Stager, progress: Progress | None
) -> StagedPath:
    out = StagedPath("directory", StagedBlob(Digest(bytes(16)), 0, [], backend=backend), 0, 0)

    def stage_file(entry_path: str, entry_info: os.stat_result) -> Digest:
        blob = _stage_file(backend, entry_path, entry_info, out, stager, progress)
        out.blobs.append(blob)
        out.size += entry_info.st_size
        out.files += 1
        return blob.digest

    entries = _tree_entries(path, stage_file)
    children = tree_children(entries)
    out.root = stager.add(_encode_tree(entries), children=children)
    return out


def _tree_entries(
    root: Path, file_digest: Callable[[str, os.stat_result], Digest]
) -> list[list[Any]]:
    """The sorted tree entries of directory ``root``; ``file_digest`` names each file.

    Raises:
        PathError: the tree holds a special file (fifo, socket or device).
    """
    entries: list[list[Any]] = []
    for relative, entry_path, entry_info in _walk(root.resolve()):
        mode = entry_info.st_mode
        if stat.S_ISLNK(mode):
            entries.append([relative, "l", os.readlink(entry_path), 0])
        elif stat.S_ISDIR(mode):
            entries.append([relative, "d", "", 0])
        elif stat.S_ISREG(mode):
            kind = "x" if mode & stat.S_IXUSR else "f"
            digest = file_digest(entry_path, entry_info)
            entries.append([relative, kind, digest, entry_info.st_size])
        else:
            raise PathError(f"{entry_path} is a special file (fifo, socket or device)")
    entries.sort(key=lambda e: e[0].encode())
    return entries


def _encode_tree(entries: list[list[Any]]) -> bytes:
    """``encoding.encode([TREE_TAG, 1, entries])``: the same bytes, packed directly from
    values that are canonical already (strs, sizes, digests), one entry per file."""
    ext = msgpack.ExtType
    try:
        return msgpack.packb(  # type: ignore[no-any-return]
            [TREE_TAG, 1, [
                [path, kind, ext(EXT_DIGEST, value) if type(value) is Digest else value, size]
                for path, kind, value, size in entries
            ]],
            use_bin_type=True,
        )
    except (UnicodeEncodeError, OverflowError, ValueError, TypeError):
        return encoding.encode([TREE_TAG, 1, entries])  # raises the canonical error


def tree_entries(backend: Backend, txn: ReadTxn, digest: Digest) -> list[list[Any]]:
    """The entries of a stored directory tree.

    Raises:
        IntegrityError: the content does not match its digest, or the blobs its manifest
            lists as contained (what gc keeps with it) are not the tree's files.
        CorruptRecordError: the content is not a well-formed tree.
    """
    data = b"".join(bytes(p) for p in iter_blob(backend, txn, digest))
    entries = decode_tree(data)
    if entries is None:
        raise CorruptRecordError(f"blob {digest.hex()} is not a well-formed directory tree")
    found = schema.manifest(txn, digest)
    if found is not None and found.children != tree_children(entries):
        raise IntegrityError(f"the manifest of directory {digest.hex()} lists other contained "
                             "blobs than its files; run `lineage verify`", expected=digest)
    return entries


def looks_like_tree(head: bytes | memoryview) -> bool:
    """Whether content starting with ``head`` may be a directory tree (cheap to ask)."""
    return bytes(head[:1 + 1 + len(TREE_TAG)]) == b"\x93\xac" + TREE_TAG.encode()


def decode_tree(data: bytes) -> list[list[Any]] | None:
    """The entries of directory tree content, or ``None`` if it is not a well-formed tree."""
    try:
        value = encoding.decode(data)
    except CorruptRecordError:
        return None
    if not (isinstance(value, list) and len(value) == 3 and value[0] == TREE_TAG
            and isinstance(value[2], list) and all(map(_well_formed, value[2]))):
        return None
    return list(value[2])


def tree_children(entries: list[list[Any]]) -> list[Digest]:
    """The blobs a tree's manifest lists as contained: its files' digests, sorted."""
    return sorted({entry[2] for entry in entries if entry[1] in "fx"})


def _well_formed(entry: Any) -> bool:
    """``[relative path, type, digest or link target or "", size]`` with matching types."""
    if not (type(entry) is list and len(entry) == 4 and type(entry[0]) is str
            and type(entry[3]) is int and entry[3] >= 0):
        return False
    expected = {"f": Digest, "x": Digest, "l": str, "d": str}.get(entry[1])
    return expected is not None and type(entry[2]) is expected


def _write_file(backend: Backend, txn: ReadTxn, digest: Digest, target: Path, mode: int) -> None:
    with open(target, "xb") as handle:
        for part in iter_blob(backend, txn, digest):
            handle.write(part)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(target, mode)


def _safe_relative(root: Path, relative: str) -> Path:
    """``root / relative`` for a canonical relative path (as a tree records them: no empty,
    ``.`` or ``..`` part, no leading ``/``, no NUL); anything else is refused."""
    parts = relative.split("/")
    if any(part in ("", ".", "..") or "\0" in part for part in parts):
        raise PathError(f"refusing tree entry {relative[:200]!r}: it would escape the "
                        "checkout, or is not a path a tree records")
    return root.joinpath(*parts)


def checkout(
    backend: Backend,
    txn: ReadTxn,
    kind: str,
    blob: Digest,
    target: Path,
    *,
    force: bool = False,
    read_only: bool = False,
) -> Path:
    """Restore a stored file or directory at ``target``, atomically (temp then rename).

    Raises:
        PathError: ``target`` exists and ``force`` is false, or a tree entry would be
            written outside ``target``.
        IntegrityError: stored content does not match its digest.
    """
    if "\0" in str(target):
        raise PathError(f"cannot check out to {str(target)[:200]!r}: a path never holds a NUL "
                        "byte")
    target = Path(os.path.abspath(target))
    if os.path.lexists(target) and not force:
        raise PathError(f"{target} already exists; pass force=True (--force) to replace it")
    if schema.manifest(txn, blob) is None:
        raise IntegrityError(f"content {blob.hex()} is missing from the store; run "
                             "`lineage verify`", expected=blob)
    import shutil
    import tempfile

    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".lineage-checkout-", dir=target.parent))
        try:
            built = staging / "content"
            file_mode = 0o444 if read_only else 0o644
            if kind == "directory":
                _build_tree(backend, txn, blob, built, file_mode)
            else:
                _write_file(backend, txn, blob, built, file_mode)
            if os.path.lexists(target):
                _remove(target)
            os.replace(built, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except PathError:
        raise
    except OSError as exc:  # a full disk, no permission, a tree entry that cannot be made
        raise PathError(f"cannot check out to {target}: {exc.strerror or exc}") from None
    return target


def _build_tree(backend: Backend, txn: ReadTxn, blob: Digest, root: Path, file_mode: int) -> None:
    root.mkdir()
    links = []
    for relative, kind, value, _size in tree_entries(backend, txn, blob):
        path = _safe_relative(root, relative)
        if kind == "d":
            path.mkdir(exist_ok=True)
        elif kind == "l":
            links.append((path, value))  # made last, so no write goes through a link
        else:
            if path.parent.is_symlink() or not path.parent.is_dir():
                raise PathError(f"refusing tree entry {relative!r}: its parent is not a directory")
            mode = (file_mode | 0o111) if kind == "x" else file_mode
            _write_file(backend, txn, Digest(value), path, mode)
    for path, link_target in links:
        os.symlink(link_target, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        for child in path.rglob("*"):
            if not child.is_symlink():
                child.chmod(child.stat().st_mode | stat.S_IWUSR)
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()


def path_digest(backend: Backend, path: Path) -> Digest:
    """The digest :func:`stage_path` would give ``path``, computed without storing anything.

    Uses the stat cache for files it trusts; hashes the rest.

    Raises:
        PathError: the path is missing, unreadable, or holds a special file.
    """
    from lineage.core.hashing import digest_bytes, digest_file

    def file_digest(file: str | Path, info: os.stat_result, txn: ReadTxn) -> Digest:
        cached = _cached_digest(txn, schema.stat_key(file), info)
        if cached is not None:
            return cached[0]
        try:
            return digest_file(file)
        except OSError as exc:
            raise PathError(f"cannot read {file}: {exc.strerror}") from None

    try:
        info = path.stat()
    except (OSError, ValueError):  # ValueError: a NUL byte
        raise PathError(f"no such file or directory: {_shown(path)}") from None
    with backend.read() as txn:
        if stat.S_ISREG(info.st_mode):
            return file_digest(path.resolve(), info, txn)
        if not stat.S_ISDIR(info.st_mode):
            raise PathError(f"{path} is neither a regular file nor a directory")
        entries = _tree_entries(path, lambda file, info: file_digest(file, info, txn))
    return digest_bytes(_encode_tree(entries))
