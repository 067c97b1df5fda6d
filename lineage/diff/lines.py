"""What each part of a :class:`~lineage.diff.model.LineageDiff` says, as lines of text.

Shared by the three renderers of :mod:`lineage.diff.render` (terminal text, Markdown, HTML),
so they show the same facts in the same words. Values are shown as they are: a float keeps
its ``.0`` (``C: 1.0 → 0.3``), so ``1`` and ``1.0``, different values for a cache key, never
look alike (:func:`lineage.core.plain.number_text`). A metric is never shown without the
test set and population it was measured on; when none was recorded, the line says so.
"""

from __future__ import annotations

from typing import Any, Final

from lineage.core.plain import is_number, number_text, value_text
from lineage.diff.model import (
    CATEGORIES,
    ArtifactDiff,
    Cause,
    DatasetDiff,
    Derivation,
    EnvironmentDiff,
    EvaluationDiff,
    LineageDiff,
    MetricChange,
    RecordRef,
    RowChange,
    StepDiff,
    TextDiff,
    ValueChange,
)

__all__ = ["artifact_lines", "cell", "change_text", "changes_text", "delta_text",
           "evidence_lines", "metric_line", "metrics_table", "num", "on", "step_lines",
           "text_excerpt", "title"]

EXAMPLE_ROWS: Final = 3  # example rows shown per side (the JSON keeps every one)
_EXAMPLE_COLUMNS: Final = 6  # columns shown per example row
_MAX_CELL: Final = 24  # characters of a text cell shown
_EXAMPLE_WIDTH: Final = 90  # characters of cells after which no further column is added
_CHANGES_SHOWN: Final = 3  # changes named in one line of evidence before "+N more"
TEXT_LINES: Final = 12  # lines of a text file's unified diff shown (the JSON keeps all)


def num(value: Any) -> str:
    """A count or measurement: ints grouped (``1,234``), floats to 4 significant digits
    but always visibly floats (``1.0``), ``—`` for none."""
    if value is None:
        return "—"
    return number_text(value, 4, grouped=True) if is_number(value) else str(value)


def _delta(value: float | None) -> str:
    if value is None:
        return ""
    return f" ({'+' if value >= 0 else '−'}{number_text(abs(value), 4)})"


def delta_text(value: float | None) -> str:
    """A metric delta in a table: ``+0.02151``, ``−0.0006452``, ``unchanged``, ``—``."""
    if value is None:
        return "—"
    return "unchanged" if value == 0 else _delta(value).strip(" ()")


def change_text(change: ValueChange) -> str:
    """``key: old → new`` with values as they are (``(none)`` for a missing side)."""
    old = "(none)" if change.status == "added" else value_text(change.old)
    new = "(none)" if change.status == "removed" else value_text(change.new)
    return f"{change.key}: {old} → {new}"


def changes_text(changes: tuple[ValueChange, ...]) -> str:
    """``C 1.0 → 0.3, max_iter 100 → 200, +2 more``: the first few changes, short."""
    parts = [change_text(c).replace(": ", " ", 1) for c in changes[:_CHANGES_SHOWN]]
    if len(changes) > _CHANGES_SHOWN:
        parts.append(f"+{len(changes) - _CHANGES_SHOWN} more")
    return ", ".join(parts)


def _population(population: dict[str, Any] | None) -> str:
    if not population:
        return "population not recorded"
    parts = [f"n={num(population.get('n'))}"]
    if population.get("positives") is not None:
        parts.append(f"positives={num(population['positives'])}")
    if isinstance(population.get("prevalence"), float):
        parts.append(f"prevalence={population['prevalence']:.3f}")
    elif population.get("class_distribution"):
        dist = population["class_distribution"]
        parts.append("classes " + ", ".join(f"{k}: {num(v)}" for k, v in sorted(dist.items())))
    return ", ".join(parts)


def on(ref: RecordRef | None, population: dict[str, Any] | None) -> str:
    """``testset@v1 (n=143, positives=50, prevalence=0.350)``, or that none was recorded."""
    if ref is None:
        return "test set not recorded (population unknown)"
    return f"{ref.label} ({_population(population)})"


def metric_line(m: MetricChange) -> str:
    """One metric with the dataset(s) and population(s) it was measured on."""
    values = f"{m.name} {num(m.old)} → {num(m.new)}{_delta(m.delta)}"
    if m.same_dataset:
        return f"{values} on {on(m.dataset_new, m.population_new)}"
    if m.same_dataset is None:
        return f"{values}; test set not recorded on either side (population unknown)"
    return (f"{values}; measured on {on(m.dataset_old, m.population_old)} → "
            f"{on(m.dataset_new, m.population_new)}: different test sets, not directly "
            "comparable")


def metrics_table(d: LineageDiff) -> tuple[str, list[list[str]]] | None:
    """``(measured on, rows)`` when every metric was measured on one test set and one
    population on both sides: rows ``[metric, old, new, change]`` (with the step first when
    metrics come from several steps). ``None`` otherwise: then each metric needs its own
    :func:`metric_line`."""
    metrics = d.metrics
    if not metrics or any(m.same_dataset is not True for m in metrics):
        return None
    sets = {(m.dataset_new.digest if m.dataset_new else None, repr(m.population_new),
             repr(m.population_old)) for m in metrics}
    if len(sets) != 1:
        return None
    several = len({m.step for m in metrics}) > 1
    rows = [([m.step] if several else []) + [m.name, num(m.old), num(m.new), delta_text(m.delta)]
            for m in metrics]
    return on(metrics[0].dataset_new, metrics[0].population_new), rows


def title(d: LineageDiff) -> str:
    """``lineage diff model@v1.0 (b3f8e2fad9b9) → model@v1.1 (c496bbb24b9c)``."""
    return f"lineage diff {d.a.label} ({d.a.digest[:12]}) → {d.b.label} ({d.b.digest[:12]})"


# -- evidence ----------------------------------------------------------------------------------


def _where(path: str) -> str:
    """A step's path without the revision it starts from (``train_model / train``)."""
    return path.split(" ← ", 1)[-1] if " ← " in path else path


def _cause_text(d: LineageDiff, cause: Cause) -> tuple[str, str]:
    """``(what changed with its values, where)`` for one cause, read from the diff."""
    artifact = next((a for a in d.artifacts if a.path == cause.path), None)
    if artifact is not None:
        pair = f"{artifact.old.label} → {artifact.new.label}"
        where = "" if artifact.old.name or artifact.new.name else cause.path
        if artifact.dataset is not None:
            return f"{pair}: {_rows_short(artifact.dataset) or cause.what}", where
        if artifact.text is not None:
            added, removed = artifact.text.counts
            return f"{pair}: lines +{added} −{removed}", where
        if artifact.config:
            return f"{pair}: {changes_text(artifact.config)}", where
        if artifact.model is not None and artifact.model.params:
            return f"{pair}: {changes_text(artifact.model.params)}", where
        return f"{pair}: {cause.what}", where
    step = next((s for s in d.steps if s.path == cause.path), None)
    if step is not None and cause.what.startswith("params ") and step.params:
        return changes_text(step.params), _where(cause.path)
    return cause.what, _where(cause.path)


def _rows_short(d: DatasetDiff) -> str:
    parts = []
    counts = " ".join(c for c in (f"+{num(d.rows_added)}" if d.rows_added else "",
                                  f"−{num(d.rows_removed)}" if d.rows_removed else "") if c)
    if counts:
        parts.append(f"rows {counts}")
    if d.rows_modified:
        parts.append(f"{num(d.rows_modified)} rows modified" if not counts
                     else f"{num(d.rows_modified)} modified")
    if d.schema_changed:
        parts.append("columns")
    if d.class_distribution:
        parts.append("class balance")
    return ", ".join(parts)


def evidence_lines(d: LineageDiff) -> list[tuple[str, str]]:
    """``(category, text)`` per cause in :data:`~lineage.diff.model.CATEGORIES` order, with
    the values that changed; causes that read the same (one param change seen in a run and
    in its nested step) are shown once, with every place they were found."""
    grouped: dict[tuple[str, str], list[str]] = {}
    order = {category: i for i, category in enumerate(CATEGORIES)}
    for cause in sorted(d.summary.evidence, key=lambda c: order.get(c.category, len(order))):
        what, where = _cause_text(d, cause)
        places = grouped.setdefault((cause.category, what), [])
        if where and where not in places:
            places.append(where)
    return [(category, f"{what} ({'; '.join(places)})" if places else what)
            for (category, what), places in grouped.items()]


# -- steps and artifacts -----------------------------------------------------------------------


def step_lines(s: StepDiff) -> list[str]:
    """What differs between two matched runs of one step, one line per fact."""
    lines = [f"param {change_text(c)}" for c in s.params]
    if s.status:
        lines.append(f"status: {s.status.old} → {s.status.new}")
    for i in s.inputs:
        old = i.old.label if i.old else "(none)"
        new = i.new.label if i.new else "(none)"
        lines.append(f"input {i.name}: {old} → {new}")
    if s.code is not None and s.code.qualname:
        lines.append(f"code {change_text(s.code.qualname)}")
    if s.environment is not None:
        lines += _environment_lines(s.environment)
    if s.nondeterministic:
        lines.append("outputs differ although inputs, params, code and environment are the "
                     "same: the step is not deterministic (unseeded randomness?)")
    return lines


def artifact_lines(a: ArtifactDiff) -> list[str]:
    """What differs in one matched artifact pair, one line per fact (indented lines belong
    to the line above)."""
    if a.same_as is not None:
        return [f"the same change of content as {a.same_as} (shown there)",
                *(f"meta {change_text(c)}" for c in a.meta)]
    lines = []
    if a.dataset is not None:
        lines += _dataset_lines(a.dataset)
    elif a.old.size != a.new.size:
        lines.append(f"size: {num(a.old.size)} → {num(a.new.size)} bytes")
    if a.text is not None:
        added, removed = a.text.counts
        lines.append(f"lines: {num(_line_count(a.text.old_text))} → "
                     f"{num(_line_count(a.text.new_text))}: +{added} added, −{removed} removed")
    if a.model is not None:
        m = a.model
        lines += [f"model {change_text(c)}" for c in (m.model_class, m.n_features, m.classes)
                  if c]
        lines += [f"hyperparameter {change_text(c)}" for c in m.params]
        if m.features_added:
            lines.append("features added: " + ", ".join(m.features_added))
        if m.features_removed:
            lines.append("features removed: " + ", ".join(m.features_removed))
    lines += [f"config {change_text(c)}" for c in a.config]
    if a.evaluation is not None:
        lines += _evaluation_lines(a.evaluation)
    if a.environment is not None:
        lines += _environment_lines(a.environment)
    lines += [f"meta {change_text(c)}" for c in a.meta]
    if a.code is not None:
        lines.append("code changed (see diff)")
    return lines or [f"content differs ({a.old.digest[:12]} → {a.new.digest[:12]})"]


def _line_count(text: str) -> int:
    return len(text.splitlines())


def text_excerpt(text: TextDiff) -> list[str]:
    """The first :data:`TEXT_LINES` lines of a text file's unified diff (hunks only)."""
    lines = text.unified.splitlines()[2:]
    if len(lines) > TEXT_LINES:
        lines = lines[:TEXT_LINES] + [f"… {len(lines) - TEXT_LINES} more lines of diff"]
    return lines


def _derivation(d: Derivation) -> str:
    if d.new_inputs:
        return f"derived from {', '.join(d.new_inputs)} by {d.op}"
    changed = [w for w, hit in ((f"params {changes_text(d.params)}", d.params),
                                ("its code", d.code)) if hit]
    return f"recomputed by {d.op}" + (f" ({'; '.join(changed)} changed)" if changed else "")


def _dataset_lines(d: DatasetDiff) -> list[str]:
    lines = []
    if d.derived is not None and d.no_row_in_common:
        lines.append(f"rows: {num(d.rows_old)} → {num(d.rows_new)}; all {num(d.rows_new)} rows "
                     f"differ: {_derivation(d.derived)}")
    elif d.rows_added is not None:
        basis = (f" (compared on columns {', '.join(d.rows_compared_on)})"
                 if d.rows_compared_on is not None else "")
        modified = (f", {num(d.rows_modified)} modified (by {d.key})"
                    if d.rows_modified else "")
        lines.append(f"rows: {num(d.rows_old)} → {num(d.rows_new)}: +{num(d.rows_added)} "
                     f"added, −{num(d.rows_removed)} removed{modified}{basis}")
    else:
        lines.append(f"rows: {num(d.rows_old)} → {num(d.rows_new)}; {d.rows_note}")
    lines += _example_lines(d, added=True)
    lines += _example_lines(d, added=False)
    lines += _modified_lines(d)
    if d.columns_added:
        lines.append("columns added: " + ", ".join(f"{c.name} ({c.new_dtype})"
                                                   for c in d.columns_added))
    if d.columns_removed:
        lines.append("columns removed: " + ", ".join(f"{c.name} ({c.old_dtype})"
                                                     for c in d.columns_removed))
    if d.columns_retyped:
        lines.append("columns retyped: " + ", ".join(f"{c.name} {c.old_dtype} → {c.new_dtype}"
                                                     for c in d.columns_retyped))
    if d.target:
        lines.append(f"target: {value_text(d.target.old)} → {value_text(d.target.new)}")
    if d.class_distribution:
        shares = ", ".join(
            f"{c.label}: {num(c.old)} ({_share(c.old_share)}) → {num(c.new)} "
            f"({_share(c.new_share)})" for c in d.class_distribution)
        of = f" of {d.target_column}" if d.target_column else ""
        lines.append(f"class balance{of}: {shares}")
    lines += [f"missing {change_text(c)}" for c in d.missing]
    return lines


def _modified_lines(d: DatasetDiff) -> list[str]:
    """``pid 17: age 45 → 46, weight 80.0 → 79.5`` for a few rows modified."""
    lines = []
    for row in d.examples_modified[:EXAMPLE_ROWS]:
        lines.append(f"  modified e.g. {d.key} {cell(row.key)}: {_cells_changed(row)}")
    total = d.rows_modified
    if lines and total is not None and total > len(lines):
        rest = total - len(lines)
        lines.append(f"  … {num(rest)} more row{'s' if rest != 1 else ''} modified")
    return lines


def _cells_changed(row: RowChange) -> str:
    shown = [f"{c.key} {cell(c.old)} → {cell(c.new)}" for c in row.changes[:_EXAMPLE_COLUMNS]]
    hidden = len(row.changes) - len(shown)
    return ", ".join(shown) + (f" (… {hidden} more)" if hidden > 0 else "")


def _example_lines(d: DatasetDiff, *, added: bool) -> list[str]:
    """At most :data:`EXAMPLE_ROWS` rows of one side, each as a few ``column=value``."""
    rows = d.examples_added if added else d.examples_removed
    if not rows:
        return []
    verb = "added" if added else "removed"
    shown = (*d.examples_added[:EXAMPLE_ROWS], *d.examples_removed[:EXAMPLE_ROWS])
    columns = _example_columns(d, rows[0], shown, added)
    lines = []
    for row in rows[:EXAMPLE_ROWS]:
        cells = ", ".join(f"{name}={cell(row[name])}" for name in columns)
        hidden = len(row) - len(columns)
        more = f" (… {hidden} more column{'s' if hidden != 1 else ''})" if hidden > 0 else ""
        lines.append(f"  {verb} e.g. {cells}{more}")
    total = d.rows_added if added else d.rows_removed
    if total is not None and total > len(lines):
        rest = total - len(lines)
        lines.append(f"  … {num(rest)} more row{'s' if rest != 1 else ''} {verb}")
    return lines


def _example_columns(d: DatasetDiff, row: dict[str, Any], shown: tuple[dict[str, Any], ...],
                     added: bool) -> list[str]:
    """The target column first, then the key, then columns the change touched, then the
    first ones. At most :data:`_EXAMPLE_COLUMNS` of ``row``'s, and fewer (but at least two)
    when their names and widest values among the ``shown`` rows would pass
    :data:`_EXAMPLE_WIDTH` characters (so both sides show the same columns when they
    share them).
    """
    target = d.target_column
    if d.target is not None:
        target = d.target.new if added else d.target.old
    touched = [c.name for c in (d.columns_added if added else d.columns_removed)]
    touched += [c.name for c in d.columns_retyped]
    chosen: list[str] = []
    width = 0
    for name in (target, d.key, *touched, *row):
        if not isinstance(name, str) or name not in row or name in chosen:
            continue
        width += len(name) + max(len(cell(r[name])) for r in shown if name in r) + 3
        if len(chosen) >= 2 and width > _EXAMPLE_WIDTH:
            break
        chosen.append(name)
        if len(chosen) == _EXAMPLE_COLUMNS:
            break
    return chosen


def cell(value: Any) -> str:
    """A table cell, short: floats to 4 significant digits (visibly floats), long text cut."""
    if value is None:
        return "NA"
    if isinstance(value, float):
        if 1e4 <= abs(value) < 1e15:
            return f"{value:.1f}"
        return number_text(value, 4)
    text = str(value)
    if isinstance(value, str) and (not text or text != text.strip() or "," in text):
        text = repr(text)
    return text if len(text) <= _MAX_CELL else text[:_MAX_CELL - 1] + "…"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _environment_lines(e: EnvironmentDiff) -> list[str]:
    return [f"environment {change_text(c)}" for c in
            (*e.packages, *(x for x in (e.python, e.platform, e.git) if x))]


def _evaluation_lines(e: EvaluationDiff) -> list[str]:
    if e.same_dataset:
        lines = [f"evaluation set-up: same test set {on(e.dataset_new, e.population_new)}"]
    elif e.same_dataset is None:
        lines = ["evaluation set-up: test set not recorded (population unknown)"]
    else:
        lines = [f"evaluation set-up changed: {on(e.dataset_old, e.population_old)} → "
                 f"{on(e.dataset_new, e.population_new)}"]
    if e.confusion_old != e.confusion_new:
        lines.append(f"confusion matrix [[tn, fp], [fn, tp]]: {e.confusion_old} → "
                     f"{e.confusion_new}")
    for change in e.subgroups:
        sizes = f"n={change.n_old}" if change.n_old == change.n_new else (
            f"n={change.n_old} → {change.n_new}")
        lines.append(f"subgroup {change.attribute}={change.value}: {change.metric} "
                     f"{num(change.old)} → {num(change.new)}{_delta(change.delta)}, {sizes}")
    return lines
