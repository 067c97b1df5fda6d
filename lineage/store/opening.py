"""Opening stores: where the default store lives, and one backend per directory per process.

LMDB forbids opening one environment twice in a process, so every ``Store`` opened on the
same directory shares one backend, released when the last of them closes. A backend
inherited across ``fork()`` reopens itself in the child, so the child keeps using the same
entry and never opens an environment twice.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from lineage.errors import StoreError
from lineage.storage.base import Backend

if TYPE_CHECKING:
    from lineage.store.store import Store

__all__ = ["default_path", "open_store"]

_shared_lock = threading.Lock()
_shared: dict[str, _Entry] = {}  # resolved path -> the shared backend and its handles


def _fresh_lock_in_child() -> None:
    """A forked child gets a fresh lock: another thread may have held it at the fork."""
    global _shared_lock
    _shared_lock = threading.Lock()


os.register_at_fork(after_in_child=_fresh_lock_in_child)


class _Entry:
    """A backend shared by the ``Store`` handles open on one directory."""

    __slots__ = ("backend", "handles")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.handles = 0


def default_path() -> Path:
    """``LINEAGE_HOME`` if set, else ``./.lineage``."""
    return Path(os.environ.get("LINEAGE_HOME") or ".lineage")


def acquire(path: Path) -> Backend:
    """The process's backend for the store directory ``path``, opened on first use."""
    from lineage.storage.lmdb import LmdbBackend

    key = str(path.resolve())
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            entry = _shared[key] = _Entry(LmdbBackend(path))
        entry.handles += 1
        return entry.backend


def release(backend: Backend) -> None:
    """Give back a handle from :func:`acquire`; the last one closes the backend."""
    with _shared_lock:
        for key, entry in list(_shared.items()):
            if entry.backend is backend:
                entry.handles -= 1
                if entry.handles <= 0:
                    del _shared[key]
                    backend.close()
                return
    backend.close()


def open_store(path: str | os.PathLike[str] | None = None) -> Store:
    """Open (creating if needed) the store at ``path``; ``":memory:"`` for a scratch one.

    Without ``path``: ``LINEAGE_HOME`` if set, else ``./.lineage``.

    Raises:
        StoreError: ``path`` is not a store directory, or cannot be created or opened.
    """
    from lineage.store.store import Store

    if path is not None and str(path) == ":memory:":
        from lineage.storage.memory import MemoryBackend

        backend: Backend = MemoryBackend()
        _start_chain(backend)
        return Store(backend)
    target = Path(path) if path is not None else default_path()
    if target.exists() and not target.is_dir():
        raise StoreError(f"{target} exists and is not a store directory")
    backend = acquire(target)
    try:
        _start_chain(backend)
    except BaseException:
        release(backend)
        raise
    return Store(backend, shared=True)


def _start_chain(backend: Backend) -> None:
    """Begin the event log if the store has none (one read when it has one, as it almost
    always does: the event modules are imported only to begin one)."""
    with backend.read() as txn:
        if next(txn.items("events"), None) is not None:  # any event: no key to decode
            return
    from lineage.storage.events import start_chain

    start_chain(backend)
