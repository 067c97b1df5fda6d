"""The semantic lineage diff: what changed between two models, datasets or runs, and why.

:func:`lineage.diff.diff` walks two lineages together (DESIGN.md §5) and returns a
:class:`LineageDiff`, a tree of frozen dataclasses that renderers consume
(:mod:`lineage.diff.render`); the walk lives in :mod:`lineage.diff.walk`. The changes inside
a table or a text file are in :mod:`lineage.diff.content`, the reversible base and
:class:`ValueChange` in :mod:`lineage.diff.base`; both are re-exported here.

Every pair in the tree is ``old`` (side ``a``) then ``new`` (side ``b``), and
``diff(b, a) == diff(a, b).reversed()``: old and new swap, added and removed swap, and
deltas change sign.

JSON schema (``LineageDiff.to_dict()``, ``schema_version`` 1): top-level keys
``schema_version``, ``empty``, ``a``, ``b``, ``summary``, ``artifacts``, ``steps``,
``steps_added``, ``steps_removed``, ``metrics``; below them the fields of each dataclass in
this module, by name, recursively (tuples as lists). :class:`RecordRef` adds ``"label"``,
:class:`CodeDiff` adds ``"unified_diff"``, :class:`TextDiff` gives ``"lines_old"``,
``"lines_new"``, ``"lines_added"``, ``"lines_removed"`` and ``"unified_diff"`` (not the
texts), :class:`MetricChange` and :class:`EvaluationDiff` add ``"same_dataset"``.
Added within version 1: ``DatasetDiff.key``, ``rows_modified``, ``examples_modified``
(``[{"key": value, "changes": [{"key": column, "old", "new", "status"}]}]``) and
``derived`` (``{"op", "old_inputs", "new_inputs", "params", "code"}``);
``ArtifactDiff.text`` and ``same_as``; ``RecordRef.same_content``.
Floats that are not finite become the strings ``"nan"``, ``"inf"``, ``"-inf"``; digests
are 32 hex characters. New fields may be added within a schema version; a field is never
renamed or removed without incrementing it.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from lineage.core.plain import jsonable
from lineage.diff.base import ValueChange, _Reversible
from lineage.diff.content import (
    ClassShift,
    ColumnChange,
    DatasetDiff,
    Derivation,
    RowChange,
    TextDiff,
)

if TYPE_CHECKING:
    from lineage.core.records import Artifact, Run

__all__ = [
    "CATEGORIES",
    "SCHEMA_VERSION",
    "ArtifactDiff",
    "Cause",
    "ClassShift",
    "CodeDiff",
    "ColumnChange",
    "DatasetDiff",
    "Derivation",
    "EnvironmentDiff",
    "EvaluationDiff",
    "InputChange",
    "LineageDiff",
    "MetricChange",
    "ModelDiff",
    "RecordRef",
    "RowChange",
    "StepDiff",
    "StepOnly",
    "SubgroupChange",
    "Summary",
    "TextDiff",
    "ValueChange",
]

SCHEMA_VERSION: Final = 1

#: Categories of cause, in the order a reviewer reads them.
CATEGORIES: Final = (
    "data",  # a dataset or file that is an input of the lineage changed
    "hyperparameters",  # params of a step, a config artifact, a model's own parameters
    "code",  # the source of a step
    "environment",  # packages, Python, platform
    "evaluation set-up",  # the test set or the population a metric was measured on
    "pipeline",  # a step present on one side only, or produced by another operation
    "untracked",  # an artifact differs and no recorded run explains it
    "nondeterminism",  # same inputs, params, code and environment gave different outputs
)


@dataclass(frozen=True, slots=True)
class RecordRef(_Reversible):
    """A record as shown in a diff: digest, kind, and name@version or op.

    ``same_content`` is the label of a named artifact holding the same content as this
    unnamed one (a DataFrame a step received, loaded from ``dataset@v1.1``).
    """

    digest: str
    kind: str
    name: str | None = None
    version: str | None = None
    op: str | None = None
    size: int | None = None
    same_content: str | None = None

    @property
    def label(self) -> str:
        """``name@version``, ``name``, ``op`` (runs), or a short digest (``= name@version``
        when a named artifact holds the same content)."""
        if self.name and self.version:
            return f"{self.name}@{self.version}"
        if not self.name and not self.op and self.same_content:
            return f"{self.digest[:12]} (= {self.same_content})"
        return self.name or self.op or self.digest[:12]

    @classmethod
    def of(cls, record: Artifact | Run) -> RecordRef:
        """The reference to ``record`` (its version as viewed, if any)."""
        from lineage.core.records import Run

        if isinstance(record, Run):
            return cls(record.digest, "run", record.label, None, record.op, None)
        return cls(record.digest, record.kind, record.name, record.version, None, record.size)


@dataclass(frozen=True, slots=True)
class ModelDiff(_Reversible):
    """Class, hyperparameters and features of two models (from their summaries)."""

    model_class: ValueChange | None = None
    params: tuple[ValueChange, ...] = ()
    n_features: ValueChange | None = None
    features_added: tuple[str, ...] = ()
    features_removed: tuple[str, ...] = ()
    classes: ValueChange | None = None
    _SWAP = (("features_added", "features_removed"),)


@dataclass(frozen=True, slots=True)
class CodeDiff(_Reversible):
    """The source of a step on each side; :attr:`unified` is the unified diff."""

    qualname: ValueChange | None = None
    old_source: str = ""
    new_source: str = ""
    _SWAP = (("old_source", "new_source"),)

    @property
    def unified(self) -> str:
        """A unified diff from the old source to the new."""
        return "".join(difflib.unified_diff(
            self.old_source.splitlines(keepends=True), self.new_source.splitlines(keepends=True),
            "old", "new"))


@dataclass(frozen=True, slots=True)
class EnvironmentDiff(_Reversible):
    """Package versions, Python, platform and git state that differ."""

    packages: tuple[ValueChange, ...] = ()
    python: ValueChange | None = None
    platform: ValueChange | None = None
    git: ValueChange | None = None

    @property
    def is_empty(self) -> bool:
        """Whether nothing differs."""
        return not (self.packages or self.python or self.platform or self.git)


@dataclass(frozen=True, slots=True)
class MetricChange(_Reversible):
    """A metric on each side, with the dataset and population it was measured on.

    ``old``/``new`` are ``None`` where a side lacks the metric; ``delta`` is ``new - old``
    when both exist.
    """

    name: str
    old: float | None
    new: float | None
    delta: float | None
    dataset_old: RecordRef | None = None
    dataset_new: RecordRef | None = None
    population_old: dict[str, Any] | None = None
    population_new: dict[str, Any] | None = None
    step: str = ""
    _SWAP = (("old", "new"), ("dataset_old", "dataset_new"),
             ("population_old", "population_new"))
    _NEGATE = ("delta",)

    @property
    def same_dataset(self) -> bool | None:
        """Whether both sides were measured on one test set (``None``: not recorded)."""
        if self.dataset_old is None and self.dataset_new is None:
            return None
        if self.dataset_old is None or self.dataset_new is None:
            return False
        return self.dataset_old.digest == self.dataset_new.digest

    @property
    def changed(self) -> bool:
        """Whether the value (or its presence) differs."""
        return self.old != self.new


@dataclass(frozen=True, slots=True)
class SubgroupChange(_Reversible):
    """A metric of one subgroup (``attribute=value``) on each side, with its size."""

    attribute: str
    value: str
    metric: str
    old: float | None
    new: float | None
    n_old: int | None
    n_new: int | None
    delta: float | None
    _SWAP = (("old", "new"), ("n_old", "n_new"))
    _NEGATE = ("delta",)


@dataclass(frozen=True, slots=True)
class EvaluationDiff(_Reversible):
    """The set-up of two evaluations: test set, population, confusion matrix, metrics."""

    dataset_old: RecordRef | None = None
    dataset_new: RecordRef | None = None
    population_old: dict[str, Any] | None = None
    population_new: dict[str, Any] | None = None
    confusion_old: list[list[int]] | None = None
    confusion_new: list[list[int]] | None = None
    metrics: tuple[MetricChange, ...] = ()
    subgroups: tuple[SubgroupChange, ...] = ()
    _SWAP = (("dataset_old", "dataset_new"), ("population_old", "population_new"),
             ("confusion_old", "confusion_new"))

    @property
    def same_dataset(self) -> bool | None:
        """Whether both evaluations used one test set (``None``: not recorded)."""
        if self.dataset_old is None and self.dataset_new is None:
            return None
        return self.dataset_old == self.dataset_new


@dataclass(frozen=True, slots=True)
class ArtifactDiff(_Reversible):
    """Two artifacts matched at ``path`` in the two lineages, and how their content differs.

    ``cause`` is the category when this change is not explained by anything upstream (a
    source dataset edited, a config changed); ``None`` when it is a consequence.
    ``same_as`` is the ``path`` of an artifact pair shown earlier with the same content on
    each side (the same dataset change reached through another path): its content is not
    compared again (its own ``meta`` changes still are).
    """

    path: str
    old: RecordRef
    new: RecordRef
    cause: str | None = None
    same_as: str | None = None
    text: TextDiff | None = None
    dataset: DatasetDiff | None = None
    model: ModelDiff | None = None
    config: tuple[ValueChange, ...] = ()
    evaluation: EvaluationDiff | None = None
    code: CodeDiff | None = None
    environment: EnvironmentDiff | None = None
    meta: tuple[ValueChange, ...] = ()
    _SWAP = (("old", "new"),)


@dataclass(frozen=True, slots=True)
class InputChange(_Reversible):
    """An input of a step that differs: ``old`` or ``new`` is None when one side lacks it."""

    name: str
    old: RecordRef | None
    new: RecordRef | None
    _SWAP = (("old", "new"),)


@dataclass(frozen=True, slots=True)
class StepDiff(_Reversible):
    """Two runs of one operation matched at ``path``, and what differs between them.

    ``nondeterministic`` is true when nothing recorded differs (params, code, environment,
    inputs) and the outputs still do.
    """

    path: str
    op: str
    old: RecordRef
    new: RecordRef
    params: tuple[ValueChange, ...] = ()
    status: ValueChange | None = None
    inputs: tuple[InputChange, ...] = ()
    code: CodeDiff | None = None
    environment: EnvironmentDiff | None = None
    metrics: tuple[MetricChange, ...] = ()
    nondeterministic: bool = False
    _SWAP = (("old", "new"),)


@dataclass(frozen=True, slots=True)
class StepOnly(_Reversible):
    """A run present in one lineage only; ``upstream`` is false for later evaluations."""

    path: str
    run: RecordRef
    upstream: bool = True


@dataclass(frozen=True, slots=True)
class Cause(_Reversible):
    """Evidence for one category of cause: where (``path``) and what (``what``)."""

    category: str
    path: str
    what: str


@dataclass(frozen=True, slots=True)
class Summary(_Reversible):
    """What a reviewer asks first: which categories of cause, and did the metrics move.

    ``evaluation_same`` is true when every compared metric and evaluation was measured on
    the same test set on both sides, false when one was not, ``None`` when no test set was
    recorded.
    """

    causes: tuple[str, ...] = ()
    evidence: tuple[Cause, ...] = ()
    metrics: tuple[MetricChange, ...] = ()
    evaluation_same: bool | None = None


@dataclass(frozen=True, slots=True)
class LineageDiff(_Reversible):
    """What differs between the lineages of ``a`` and ``b`` (see the module docstring)."""

    a: RecordRef
    b: RecordRef
    summary: Summary = field(default_factory=Summary)
    artifacts: tuple[ArtifactDiff, ...] = ()
    steps: tuple[StepDiff, ...] = ()
    steps_added: tuple[StepOnly, ...] = ()
    steps_removed: tuple[StepOnly, ...] = ()
    metrics: tuple[MetricChange, ...] = ()
    _SWAP = (("a", "b"), ("steps_added", "steps_removed"))

    @property
    def is_empty(self) -> bool:
        """Whether nothing differs (``a`` and ``b`` are the same record)."""
        return not (self.artifacts or self.steps or self.steps_added or self.steps_removed
                    or self.metrics)

    def __bool__(self) -> bool:
        return not self.is_empty

    def __str__(self) -> str:
        from lineage.diff.render import render_text

        return render_text(self, color=False)

    def to_text(self, *, color: bool | None = None) -> str:
        """Terminal text; ``color=None`` colours only when stdout is a TTY (and no NO_COLOR)."""
        from lineage.diff.render import render_text

        return render_text(self, color=color)

    def to_markdown(self) -> str:
        """A Markdown report (for a merge request or a model card)."""
        from lineage.diff.render import render_markdown

        return render_markdown(self)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict with ``schema_version`` (see the module docstring)."""
        return {"schema_version": SCHEMA_VERSION, "empty": self.is_empty, **_plain(self)}

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as strict JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, sort_keys=False)

    def _repr_html_(self) -> str:
        from lineage.diff.render import render_html

        return render_html(self)


def _plain(value: Any) -> Any:
    """``value`` as JSON-safe data: the diff's dataclasses as dicts, the rest through
    :func:`lineage.core.plain.jsonable`."""
    if isinstance(value, _Reversible):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)  # type: ignore[arg-type]
               if f.name not in value._RENDER_ONLY}
        if isinstance(value, RecordRef):
            out["label"] = value.label
        elif isinstance(value, CodeDiff):
            out["unified_diff"] = value.unified
        elif isinstance(value, TextDiff):
            added, removed = value.counts
            out.update(lines_old=len(value.old_text.splitlines()),
                       lines_new=len(value.new_text.splitlines()), lines_added=added,
                       lines_removed=removed, unified_diff=value.unified)
        elif isinstance(value, MetricChange | EvaluationDiff):
            out["same_dataset"] = value.same_dataset
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return jsonable(value)
