"""The lineage diff: the result model (frozen dataclasses), the walk that builds it, the
dataset comparison, and the renderers (text, Markdown, HTML).

May import :mod:`lineage.refs`, :mod:`lineage.storage`, :mod:`lineage.adapters`,
:mod:`lineage.core` and :mod:`lineage.errors`; it reads through a transaction and never
sees the ``Store`` facade.
"""

from lineage.diff.model import LineageDiff
from lineage.diff.walk import diff

__all__ = ["LineageDiff", "diff"]
