"""Run capture: which store is the default, ``@step`` and ``store.run()``.

The default store for ``@lineage.step`` is, in order: the one passed to the decorator, the
innermost ``with store:`` (or active run), the one most recently opened with
``lineage.open()``, else ``LINEAGE_HOME``, else ``./.lineage``.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Store

__all__ = ["default_store", "pop_default_store", "push_default_store"]

_entered: ContextVar[tuple[Store, ...]] = ContextVar("lineage_entered_stores", default=())
_last_opened: list[Store] = []  # the per-process store cache: the most recent lineage.open()


def push_default_store(store: Store) -> Token[tuple[Store, ...]]:
    """Make ``store`` the default until the returned token is popped."""
    return _entered.set((*_entered.get(), store))


def pop_default_store(token: Token[tuple[Store, ...]]) -> None:
    """Undo :func:`push_default_store`."""
    _entered.reset(token)


def remember_opened(store: Store) -> None:
    """Note ``store`` as the most recently opened one."""
    _last_opened[:] = [store]


def default_store() -> Store:
    """The store a step records into when none is passed."""
    entered = _entered.get()
    if entered and not entered[-1].closed:
        return entered[-1]
    if _last_opened and not _last_opened[0].closed:
        return _last_opened[0]
    from .store import open_store

    store = open_store()
    remember_opened(store)
    return store


