"""Which store and which run are current: the only process state lineage keeps.

- The *entered* stores: ``with store:`` (and ``with store.run(...)``) push a store for the
  block, in a context variable, so threads and async tasks each see their own.
- The *last opened* store: the most recent ``lineage.open()``, the per-process default.
- The *active recorder*: the run or step call recording in this context; ``Store.load``
  tells it what was read.
- The *user* acting (:func:`current_user`), kept in ref history and the event log.

:func:`current_store` answers "which store does a step use now?" without opening one; the
tracking package opens the default store when there is none. This module imports nothing
of lineage, so every layer may use it.
"""

from __future__ import annotations

import functools
import os
from contextvars import ContextVar, Token
from typing import Any, Protocol

__all__ = [
    "RunRecorder",
    "active_recorder",
    "active_recorder_var",
    "current_store",
    "current_user",
    "pop_store",
    "push_store",
    "remember_opened",
]


class RunRecorder(Protocol):
    """What ``Store.load`` needs from an active run or step call."""

    store: Any

    @property
    def closed(self) -> bool:
        """Whether the run or call has ended (it then records nothing more)."""
        ...

    def record_use(self, artifact: Any, name: str | None) -> None:
        """Note that ``artifact`` was read, under input ``name`` if given."""
        ...


active_recorder_var: ContextVar[RunRecorder | None] = ContextVar("lineage_run", default=None)
_entered: ContextVar[tuple[Any, ...]] = ContextVar("lineage_entered_stores", default=())
_last_opened: list[Any] = []


def active_recorder() -> RunRecorder | None:
    """The run or step call recording in this context, or ``None``.

    A recorder that has ended is not active, even where a context copied while it was open
    still names it (threads of an in-process Dask cluster started inside a run): what runs
    there later is not part of that run."""
    recorder = active_recorder_var.get()
    return None if recorder is None or recorder.closed else recorder


def push_store(store: Any) -> Token[tuple[Any, ...]]:
    """Make ``store`` the current store until the returned token is popped."""
    return _entered.set((*_entered.get(), store))


def pop_store(token: Token[tuple[Any, ...]]) -> None:
    """Undo :func:`push_store`."""
    try:
        _entered.reset(token)
    except ValueError:  # reset from another context (a thread): drop the innermost instead
        _entered.set(_entered.get()[:-1])


def remember_opened(store: Any) -> None:
    """Note ``store`` as the most recently opened one (``lineage.open``)."""
    _last_opened[:] = [store]


def current_store() -> Any | None:
    """The innermost entered store that is open, else the last opened one, else ``None``."""
    entered = _entered.get()
    if entered and not entered[-1].closed:
        return entered[-1]
    if _last_opened and not _last_opened[0].closed:
        return _last_opened[0]
    return None


def current_user() -> str:
    """Who is acting: ``LINEAGE_USER``, else the login name, else ``"unknown"``."""
    user = os.environ.get("LINEAGE_USER")
    if user:
        return user
    return _login_name()


@functools.cache
def _login_name() -> str:
    """The login name (asked once per process: it does not change)."""
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
