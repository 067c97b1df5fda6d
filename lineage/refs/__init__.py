"""Names and the refs that move: revision parsing and resolution, versions, stages, tags and
their history.

May import :mod:`lineage.storage`, :mod:`lineage.core` and :mod:`lineage.errors`.
"""
