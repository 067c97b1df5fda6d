"""Which run, if any, is recording in this thread or task (a context variable).

The tracking module sets it while a ``store.run()`` block or a ``@step`` call is active;
``Store.load`` reads it to record ``used`` edges. Kept separate so the store does not import
the tracking machinery.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

__all__ = ["RunRecorder", "active_recorder", "active_recorder_var"]


class RunRecorder(Protocol):
    """What ``Store.load`` needs from an active run."""

    store: Any

    def record_use(self, artifact: Any, name: str | None) -> None:
        """Note that ``artifact`` was read, under input ``name`` if given."""
        ...


active_recorder_var: ContextVar[RunRecorder | None] = ContextVar("lineage_run", default=None)


def active_recorder() -> RunRecorder | None:
    """The run recording in this context, or ``None``."""
    return active_recorder_var.get()
