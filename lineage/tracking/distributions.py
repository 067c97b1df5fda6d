"""Which installed distribution provides each top-level module, kept across processes.

Finding out reads the metadata of every installed distribution: 0.1–0.2 s with a few hundred
installed, too slow to pay in every process that records a run. So the answer is kept in a
small file in the user's cache directory and reused by later processes of the same
interpreter environment while nothing it was read from has changed:

- the file is chosen by the interpreter (``sys.executable``, ``sys.version``, ``sys.prefix``)
  and ``sys.path`` (entries made absolute);
- it is used only if the modification time of every ``sys.path`` entry holding
  distributions and of every distribution's metadata file (``METADATA``, ``PKG-INFO``) is
  what it was when the index was built. Installing, upgrading or removing a distribution
  creates or removes a ``*.dist-info`` or ``*.egg-info`` entry in a ``sys.path``
  directory, which changes that directory's modification time; rewriting a metadata file in
  place changes the file's. An entry that held no distribution (the script's own directory,
  which changes whenever the script writes a file there) is checked instead for having
  none still: a listing, no modification time;
- like git's "racily clean" rule, an index read while one of those times was less than
  ``_RACY_S`` seconds old is not kept (a change within the same clock tick could not be
  told apart), so the next process reads the metadata again.

The cache lives in ``$LINEAGE_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/lineage`` or
``~/.cache/lineage`` (``%LOCALAPPDATA%\\lineage`` on Windows), one file per interpreter
environment (``distributions-<hash>.msgpack``). It holds distribution names and versions
only. A cache that cannot be read or written is ignored: the index is then built in the
process, as it always was before.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from importlib import metadata
from pathlib import Path
from typing import Any, Final

from lineage.core import encoding
from lineage.core.hashing import digest_bytes
from lineage.errors import LineageError

__all__ = ["cache_dir", "cache_file", "distribution_index"]

Index = dict[str, tuple[tuple[str, str], ...]]  # top-level module -> ((distribution, version),)

_FORMAT: Final = "lineage/distributions"
_VERSION: Final = 1
_RACY_S: Final = 2.0
_METADATA_FILES: Final = ("METADATA", "PKG-INFO")
_METADATA_SUFFIXES: Final = (".dist-info", ".egg-info", ".egg")
_NO_DISTRIBUTIONS: Final = -2  # in place of a time: "held no distribution; check it still not"

_index: list[Index] = []  # this process's index, once found
_lock = threading.Lock()


def _fresh_lock_in_child() -> None:
    """A forked child gets a fresh lock: a run's prefetch thread may have held it at the
    fork, and that thread does not exist in the child to release it."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


def cache_dir() -> Path:
    """Where lineage keeps per-machine caches (see the module doc)."""
    explicit = os.environ.get("LINEAGE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "lineage"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "lineage"


def _key() -> list[Any]:
    return [_FORMAT, _VERSION, sys.executable, sys.version, sys.prefix,
            [os.path.abspath(entry) for entry in sys.path]]


def cache_file() -> Path:
    """The cache file of this interpreter environment (it may not exist)."""
    return cache_dir() / f"distributions-{digest_bytes(encoding.encode(_key())).hex()[:16]}.msgpack"


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def distribution_index() -> Index:
    """``{top-level module: ((distribution name, lowercase), version), ...)}`` for every
    installed distribution, from the cache when it is still valid (see the module doc)."""
    with _lock:  # a run's prefetch thread and the run itself may ask at once
        if not _index:
            key = _key()
            found = _read(key)
            if found is None:
                found, checks = _build()
                _write(key, checks, found)
            _index.append(found)
    return _index[0]


def _holds_distributions(entry: str) -> bool:
    try:
        with os.scandir(entry) as found:
            return any(item.name.endswith(_METADATA_SUFFIXES) for item in found)
    except OSError:
        return False


def _unchanged(path: str, mtime: int) -> bool:
    if mtime == _NO_DISTRIBUTIONS:
        return not _holds_distributions(path)
    return _mtime(path) == mtime


def _read(key: list[Any]) -> Index | None:
    try:
        data = cache_file().read_bytes()
        stored_key, checks, index = encoding.decode(data)
    except (OSError, ValueError, TypeError, LineageError):
        return None  # missing, unreadable or damaged: rebuilt
    if stored_key != key or not all(_unchanged(path, mtime) for path, mtime in checks):
        return None
    return {str(top): tuple((str(n), str(v)) for n, v in pairs) for top, pairs in index.items()}


def _build() -> tuple[Index, list[tuple[str, int]]]:
    """The index read from every distribution's metadata, and the times it depends on."""
    declared = getattr(metadata, "_top_level_declared", None)
    inferred = getattr(metadata, "_top_level_inferred", None)
    mapping: dict[str, list[str]] = {}
    versions: dict[str, str] = {}
    watched: list[str] = []
    holding: set[str] = set()  # sys.path entries where a distribution was found
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if not name:
            continue
        versions.setdefault(name, dist.version)
        location = getattr(dist, "_path", None)  # PathDistribution's metadata directory
        if location is not None:
            holding.add(os.path.dirname(os.path.abspath(str(location))))
            watched.extend(_metadata_file(str(location)))
        tops = (declared(dist) or inferred(dist)) if declared and inferred else None
        for top in tops or ():
            mapping.setdefault(top, []).append(name)
    if not (declared and inferred):  # another Python's importlib: its public answer
        mapping = {k: list(v) for k, v in metadata.packages_distributions().items()}
    index = {top: tuple((name.lower(), versions[name]) for name in names if name in versions)
             for top, names in mapping.items()}
    entries = dict.fromkeys(os.path.abspath(entry) for entry in sys.path)
    checks = [(entry, _mtime(entry) if entry in holding else _NO_DISTRIBUTIONS)
              for entry in entries]
    return index, checks + [(path, _mtime(path)) for path in dict.fromkeys(watched)]


def _metadata_file(location: str) -> list[str]:
    if os.path.isfile(location):  # a single-file egg-info
        return [location]
    for name in _METADATA_FILES:
        path = os.path.join(location, name)
        if os.path.exists(path):
            return [path]
    return [location]


def _write(key: list[Any], checks: list[tuple[str, int]], index: Index) -> None:
    """Keep the index unless one of its times is too recent to tell a change from it."""
    newest = max((mtime for _path, mtime in checks), default=0)
    if newest > (time.time() - _RACY_S) * 1e9:
        return
    target = cache_file()
    temporary = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_bytes(encoding.encode(
            [key, [list(check) for check in checks],
             {top: [list(pair) for pair in pairs] for top, pairs in index.items()}]))
        os.replace(temporary, target)  # a cache: readers see the old file or the new one
    except OSError:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass  # never created
