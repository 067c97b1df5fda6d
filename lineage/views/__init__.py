"""Read-only views over a store: queries (ancestors, descendants, runs, artifacts, the
networkx graph) and lint.

Pure functions over a read transaction. May import :mod:`lineage.refs`,
:mod:`lineage.storage`, :mod:`lineage.core` and :mod:`lineage.errors`.
"""
