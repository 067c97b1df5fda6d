"""How the walk words a change for a reviewer: which cause, the same change seen twice, a
table every row of which changed because the step that made it changed.

Small pure helpers of :mod:`lineage.diff.walk`:

- :func:`leaf_cause`: the category and the words of a change nothing upstream explains;
- :func:`with_same_content`: the finished diff with unnamed artifacts labelled by the named
  artifact holding the same content (``ed0b7cc78a93 (= dataset@v1.0)``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final

from lineage.core.records import Artifact
from lineage.diff.base import _Reversible
from lineage.diff.compare import environment_what
from lineage.diff.model import DatasetDiff, EnvironmentDiff, ModelDiff, RecordRef

__all__ = ["leaf_cause", "with_same_content"]

_EVAL: Final = "evaluation set-up"


def leaf_cause(a: Artifact, b: Artifact, content: dict[str, Any], context: str
               ) -> tuple[str, str]:
    """The category and description of a change of ``a`` to ``b`` that nothing upstream
    explains, in the walk's ``context`` category. The words name what changed, not how
    (``rows, class balance``; ``params C``): they read the same in both directions, and
    renderers add the values from the diff at the cause's path."""
    kinds = {a.kind, b.kind}
    dataset = content.get("dataset")
    if isinstance(dataset, DatasetDiff):
        parts = [p for p, hit in (
            ("rows", dataset.rows_changed),
            ("columns", dataset.schema_changed),
            ("class balance", dataset.class_distribution),
        ) if hit]
        return context, ", ".join(parts) or "content"
    if content.get("text") is not None:
        return context, "lines"
    if kinds == {"code"}:
        return "code", "source"
    if kinds == {"environment"}:
        environment = content["environment"]
        assert isinstance(environment, EnvironmentDiff)  # noqa: S101 - set for environments
        return "environment", environment_what(environment) or "content"
    if kinds == {"config"}:
        keys = ", ".join(c.key for c in content.get("config", ()))
        return (_EVAL if context == _EVAL else "hyperparameters"), f"config {keys}".strip()
    if kinds == {"evaluation"}:
        return _EVAL, "evaluation"
    model = content.get("model")
    if isinstance(model, ModelDiff) and model.params:
        return "hyperparameters", "model params " + ", ".join(p.key for p in model.params)
    if kinds & {"model"}:
        return "untracked", "model made outside any recorded run"
    return context, f"{a.kind} content"


def with_same_content(value: Any, named: dict[str, str]) -> Any:
    """``value`` (a diff or part of one) with every unnamed artifact whose digest is in
    ``named`` (digest hex -> label of a named artifact with the same content) marked so."""
    if isinstance(value, tuple):
        return tuple(with_same_content(item, named) for item in value)
    if isinstance(value, RecordRef):
        if value.name or value.op or value.digest not in named:
            return value
        return dataclasses.replace(value, same_content=named[value.digest])
    if not isinstance(value, _Reversible):
        return value
    changes = {f.name: with_same_content(getattr(value, f.name), named)
               for f in dataclasses.fields(value)}  # type: ignore[arg-type]
    return type(value)(**changes)
