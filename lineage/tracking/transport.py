"""How a step travels to another process (Dask, multiprocessing): pickled as its function
(by reference when the module holds the step itself, else by value), its options, the code
identity computed where it was defined, and the store's location; rebuilt on arrival.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lineage import context
from lineage.core.hashing import Digest
from lineage.errors import StepDefinitionError
from lineage.tracking.step import Step

if TYPE_CHECKING:
    from lineage.store.store import Store

__all__ = ["rebuild_step", "reduce_step"]


def reduce_step(step_: Step[Any, Any]) -> tuple[Any, ...]:
    """What :meth:`Step.__reduce__` returns: :func:`rebuild_step` and its arguments. The
    store is the one given to the step, else the current one (``with store:``), as an
    absolute path; with neither, the rebuilt step uses the receiving process's default store.

    Raises:
        StepDefinitionError: the store is in memory, which no other process can reach.
    """
    return (rebuild_step, (_function_ref(step_), step_.name, step_.version, step_.cache,
                           tuple(sorted(step_.ignore)), _location(step_._store),
                           step_.code_summary() and step_._code, step_.trust))


def _location(chosen: Store | str | os.PathLike[str] | None) -> str | None:
    """Where a pickled step records: an absolute store path, or ``None`` (the default)."""
    if chosen is None:
        chosen = context.current_store()
        if chosen is None:
            return None
    path = str(chosen) if isinstance(chosen, str | os.PathLike) else chosen.path
    if path == ":memory:":
        raise StepDefinitionError(
            "a step recording into an in-memory store cannot be sent to another process; "
            "open a store on disk (lineage.open(path)), or reach one through a remote")
    return os.path.abspath(path)


def _function_ref(step_: Step[Any, Any]) -> Callable[..., Any] | tuple[str, str]:
    """The step's function, or ``(module, qualname)`` when the module's attribute of that
    name is the step itself (a decorated module-level function, which pickle can only
    name through the module). Functions of ``__main__`` travel by value (cloudpickle)."""
    function = step_.function
    module_name = getattr(function, "__module__", None)
    qualname = getattr(function, "__qualname__", "")
    if not module_name or module_name == "__main__" or "<locals>" in qualname:
        return function
    found: Any = sys.modules.get(module_name)
    for part in qualname.split("."):
        found = getattr(found, part, None)
    if isinstance(found, Step) and found.function is function:
        return (module_name, qualname)
    return function


def rebuild_step(function: Callable[..., Any] | tuple[str, str], name: str,
                  version: str | None, cache: bool, ignore: tuple[str, ...], store: str | None,
                  code: tuple[Digest, dict[str, Any]] | None, trust: bool = False
                  ) -> Step[Any, Any]:
    """A step unpickled in another process (see :func:`reduce_step`)."""
    if isinstance(function, tuple):
        found: Any = importlib.import_module(function[0])
        for part in function[1].split("."):
            found = getattr(found, part)
        function = found.function if isinstance(found, Step) else found
    rebuilt: Step[Any, Any] = Step(function, name=name, version=version, store=store,
                                   cache=cache, ignore=ignore, trust=trust)
    rebuilt._code = code
    return rebuilt
