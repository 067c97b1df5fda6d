"""The ``Store`` facade users hold, how stores are opened, and ingest (a value or a path
becoming a staged artifact).

May import :mod:`lineage.refs`, :mod:`lineage.storage`, :mod:`lineage.adapters`,
:mod:`lineage.core`, :mod:`lineage.context` and :mod:`lineage.errors`. The facade's methods
that answer queries, diffs and tracking delegate upward with lazy imports, the only
upward imports in the package tree.
"""

from lineage.store.opening import default_path, open_store
from lineage.store.store import Store

__all__ = ["Store", "default_path", "open_store"]
