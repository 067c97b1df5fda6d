"""lineage: exact, content-addressed provenance for ML pipelines.

>>> import lineage
>>> store = lineage.open(":memory:")
>>> artifact = store.add({"C": 0.5}, name="config")
>>> store.load("config")
{'C': 0.5}

Everything beyond :mod:`lineage.errors` is imported on first use, so ``import lineage``
stays cheap in scripts that only sometimes record.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from . import errors
from ._version import __version__

if TYPE_CHECKING:
    from .adapters import register_adapter
    from .diff import LineageDiff
    from .hashing import Digest
    from .records import Artifact, RefEntry, Run
    from .runs import RunContext
    from .store import Store
    from .track import step

__all__ = [
    "Artifact",
    "Digest",
    "LineageDiff",
    "RefEntry",
    "Run",
    "RunContext",
    "Store",
    "__version__",
    "errors",
    "open",
    "register_adapter",
    "step",
]

_LAZY = {
    "Artifact": "records",
    "RefEntry": "records",
    "Run": "records",
    "Digest": "hashing",
    "LineageDiff": "diff",
    "Store": "store",
    "register_adapter": "adapters",
    "step": "track",
    "RunContext": "runs",
}


def open(path: str | os.PathLike[str] | None = None) -> Store:  # noqa: A001
    """Open (creating if needed) the store at ``path`` and make it the default store.

    ``path`` defaults to ``LINEAGE_HOME``, else ``./.lineage``; ``":memory:"`` gives a
    scratch store. The store is also a context manager.
    """
    from .store import open_store
    from .track import remember_opened

    store = open_store(path)
    remember_opened(store)
    return store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lineage' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
