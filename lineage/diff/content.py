"""What changed inside two versions of a table or a text file.

Part of the diff's result model (:mod:`lineage.diff.model`, which re-exports every name
here): rows added, removed and modified (with a key), columns, class balance, why a derived
table shares no row with its other version, and the lines of a text file.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from lineage.diff.base import ValueChange, _Reversible

__all__ = ["ClassShift", "ColumnChange", "DatasetDiff", "Derivation", "RowChange", "TextDiff"]


@dataclass(frozen=True, slots=True)
class ColumnChange(_Reversible):
    """A column added (``old_dtype`` None), removed (``new_dtype`` None) or retyped."""

    name: str
    old_dtype: str | None
    new_dtype: str | None
    _SWAP = (("old_dtype", "new_dtype"),)


@dataclass(frozen=True, slots=True)
class ClassShift(_Reversible):
    """Count and share of one class of the target on each side."""

    label: str
    old: int
    new: int
    old_share: float | None
    new_share: float | None
    _SWAP = (("old", "new"), ("old_share", "new_share"))


@dataclass(frozen=True, slots=True)
class RowChange(_Reversible):
    """A row found on both sides by its ``key`` value, and the cells that differ."""

    key: Any
    changes: tuple[ValueChange, ...] = ()


@dataclass(frozen=True, slots=True)
class Derivation(_Reversible):
    """Why two outputs of one step have no row in common: the step ``op`` that made them
    ran on other inputs (their labels on each side), with other params, or other code."""

    op: str
    old_inputs: tuple[str, ...] = ()
    new_inputs: tuple[str, ...] = ()
    params: tuple[ValueChange, ...] = ()
    code: bool = False
    _SWAP = (("old_inputs", "new_inputs"),)


@dataclass(frozen=True, slots=True)
class DatasetDiff(_Reversible):
    """Rows, schema and class balance of two versions of a table.

    ``rows_added``/``rows_removed`` count rows as a multiset, compared by row fingerprint
    (on every column when the schemas match, else on ``rows_compared_on``, the columns both
    sides share, retyped ones cast to their new type when that is possible). They are
    ``None`` when the rows could not be compared; ``rows_note`` then says why. With a
    ``key`` column (declared, or an obvious unique identifier), a row removed and a row
    added with the same key count once in ``rows_modified`` instead, and
    ``examples_modified`` show their changed cells. ``derived`` says why no row is in
    common when the step that made both explains it (rendered "derived from dataset@v1.1
    by preprocess"); examples are then left out. ``target_column`` (the label column both
    versions name, if any) is for renderers, which show it first in example rows; it is not
    part of the JSON (``target`` is).
    """

    rows_old: int | None = None
    rows_new: int | None = None
    rows_added: int | None = None
    rows_removed: int | None = None
    rows_compared_on: tuple[str, ...] | None = None
    rows_note: str | None = None
    examples_added: tuple[dict[str, Any], ...] = ()
    examples_removed: tuple[dict[str, Any], ...] = ()
    columns_added: tuple[ColumnChange, ...] = ()
    columns_removed: tuple[ColumnChange, ...] = ()
    columns_retyped: tuple[ColumnChange, ...] = ()
    target: ValueChange | None = None
    class_distribution: tuple[ClassShift, ...] = ()
    missing: tuple[ValueChange, ...] = ()
    target_column: str | None = None
    key: str | None = None
    rows_modified: int | None = None
    examples_modified: tuple[RowChange, ...] = ()
    derived: Derivation | None = None
    _SWAP = (("rows_old", "rows_new"), ("rows_added", "rows_removed"),
             ("examples_added", "examples_removed"), ("columns_added", "columns_removed"))
    _RENDER_ONLY = ("target_column",)

    @property
    def schema_changed(self) -> bool:
        """Whether columns were added, removed or retyped."""
        return bool(self.columns_added or self.columns_removed or self.columns_retyped)

    @property
    def rows_changed(self) -> bool:
        """Whether rows were added, removed or modified."""
        return bool(self.rows_added or self.rows_removed or self.rows_modified)

    @property
    def no_row_in_common(self) -> bool:
        """Whether every row of both sides differs (and there are rows)."""
        modified = self.rows_modified or 0
        return (self.rows_added is not None and self.rows_removed is not None
                and bool(self.rows_old and self.rows_new)
                and self.rows_removed + modified == self.rows_old
                and self.rows_added + modified == self.rows_new)


@dataclass(frozen=True, slots=True)
class TextDiff(_Reversible):
    """Two versions of a text file (code, YAML, JSON, a config): line counts and a diff.

    The texts are kept for renderers and :attr:`unified`; the JSON holds the counts and
    the unified diff instead.
    """

    old_text: str = ""
    new_text: str = ""
    _SWAP = (("old_text", "new_text"),)
    _RENDER_ONLY = ("old_text", "new_text")

    @property
    def unified(self) -> str:
        """A unified diff from the old text to the new (3 lines of context)."""
        return "".join(difflib.unified_diff(
            self.old_text.splitlines(keepends=True), self.new_text.splitlines(keepends=True),
            "old", "new"))

    @property
    def counts(self) -> tuple[int, int]:
        """``(lines added, lines removed)``."""
        added = removed = 0
        for line in self.unified.splitlines()[2:]:
            if line.startswith("+"):
                added += 1
            elif line.startswith("-"):
                removed += 1
        return added, removed
