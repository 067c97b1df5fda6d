"""lineage: exact, content-addressed provenance for ML pipelines.

>>> import lineage
>>> store = lineage.open(":memory:")
>>> artifact = store.add({"C": 0.5}, name="config")
>>> store.load("config")
{'C': 0.5}

This module holds the public names only; every type a public call returns is importable
from here. Everything beyond :mod:`lineage.errors` is imported on first use, so
``import lineage`` stays cheap in scripts that only sometimes record.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

from lineage import errors
from lineage._version import __version__

if TYPE_CHECKING:
    from lineage.adapters import Adapter, Dumped, register_adapter
    from lineage.audit.gates import Check
    from lineage.audit.policy import Policy
    from lineage.audit.trace import Impact, Trace
    from lineage.core.hashing import Digest
    from lineage.core.records import Artifact, RefEntry, Run
    from lineage.diff.model import LineageDiff
    from lineage.remotes.config import Remote
    from lineage.remotes.gc import RemoteGcReport
    from lineage.remotes.transfer import TransferReport
    from lineage.storage.events import Event
    from lineage.storage.maintenance import GcReport, VerifyReport
    from lineage.store.store import Store
    from lineage.tracking.command import CommandResult, run_command
    from lineage.tracking.explain import Explanation
    from lineage.tracking.runs import RunContext
    from lineage.tracking.step import Step, step
    from lineage.views.lint import Finding
    from lineage.views.pipelines import Pipeline, PipelineEdge, PipelineNode
    from lineage.views.runs_table import ComparedRun, MetricRow, ParamRow, RunComparison

__all__ = [
    "Adapter",
    "Artifact",
    "Check",
    "CommandResult",
    "ComparedRun",
    "Digest",
    "Dumped",
    "Event",
    "Explanation",
    "Finding",
    "GcReport",
    "Impact",
    "LineageDiff",
    "MetricRow",
    "ParamRow",
    "Pipeline",
    "PipelineEdge",
    "PipelineNode",
    "Policy",
    "RefEntry",
    "Remote",
    "RemoteGcReport",
    "Run",
    "RunComparison",
    "RunContext",
    "Step",
    "Store",
    "Trace",
    "TransferReport",
    "VerifyReport",
    "__version__",
    "errors",
    "open",
    "register_adapter",
    "run_command",
    "step",
]

_LAZY = {
    "Adapter": "lineage.adapters",
    "Dumped": "lineage.adapters",
    "register_adapter": "lineage.adapters",
    "Check": "lineage.audit.gates",
    "Policy": "lineage.audit.policy",
    "Impact": "lineage.audit.trace",
    "Trace": "lineage.audit.trace",
    "Event": "lineage.storage.events",
    "Digest": "lineage.core.hashing",
    "Artifact": "lineage.core.records",
    "RefEntry": "lineage.core.records",
    "Run": "lineage.core.records",
    "LineageDiff": "lineage.diff.model",
    "Remote": "lineage.remotes.config",
    "RemoteGcReport": "lineage.remotes.gc",
    "TransferReport": "lineage.remotes.transfer",
    "GcReport": "lineage.storage.maintenance",
    "VerifyReport": "lineage.storage.maintenance",
    "Store": "lineage.store.store",
    "CommandResult": "lineage.tracking.command",
    "run_command": "lineage.tracking.command",
    "Explanation": "lineage.tracking.explain",
    "RunContext": "lineage.tracking.runs",
    "Step": "lineage.tracking.step",
    "step": "lineage.tracking.step",
    "Finding": "lineage.views.lint",
    "Pipeline": "lineage.views.pipelines",
    "PipelineEdge": "lineage.views.pipelines",
    "PipelineNode": "lineage.views.pipelines",
    "ComparedRun": "lineage.views.runs_table",
    "MetricRow": "lineage.views.runs_table",
    "ParamRow": "lineage.views.runs_table",
    "RunComparison": "lineage.views.runs_table",
}


def open(path: str | os.PathLike[str] | None = None) -> Store:  # noqa: A001
    """Open (creating if needed) the store at ``path`` and make it the default store.

    ``path`` defaults to ``LINEAGE_HOME``, else ``./.lineage``; ``":memory:"`` gives a
    scratch store. The store is also a context manager.

    Raises:
        StoreError: the path is not a store directory, or cannot be created or opened.
    """
    from lineage.context import remember_opened
    from lineage.store.opening import open_store

    store = open_store(path)
    remember_opened(store)
    return store


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lineage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
