"""Renderers of a :class:`~lineage.diff.model.LineageDiff`: terminal text, Markdown, HTML.

All three show the same content from the same describing helpers. A metric is never shown
without the dataset and population it was measured on; when none was recorded, the output
says so. JSON is :meth:`LineageDiff.to_json` (schema in :mod:`lineage.diff.model`).
"""

from __future__ import annotations

import html
import os
import sys
from typing import Any

from lineage.diff.model import (
    ArtifactDiff,
    DatasetDiff,
    EnvironmentDiff,
    EvaluationDiff,
    LineageDiff,
    MetricChange,
    RecordRef,
    StepDiff,
    ValueChange,
)

__all__ = ["render_html", "render_markdown", "render_text"]

_MAX_SOURCE_LINES = 80
_EXAMPLE_ROWS = 3  # example rows shown per side (the JSON keeps every one)
_EXAMPLE_COLUMNS = 6  # columns shown per example row
_MAX_CELL = 24  # characters of a text cell shown
_EXAMPLE_WIDTH = 90  # characters of cells after which no further column is added
_ANSI = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "dim": "2", "cyan": "36"}


# -- describing (shared) -----------------------------------------------------------------------


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "—" if value is None else str(value)


def _delta(value: float | None) -> str:
    return "" if value is None else f" ({value:+.4g})"


def _value(value: Any) -> str:
    text = _num(value) if isinstance(value, int | float) and not isinstance(value, bool) \
        else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _change(change: ValueChange) -> str:
    if change.status == "added":
        return f"{change.key}: (none) → {_value(change.new)}"
    if change.status == "removed":
        return f"{change.key}: {_value(change.old)} → (none)"
    return f"{change.key}: {_value(change.old)} → {_value(change.new)}"


def _population(population: dict[str, Any] | None) -> str:
    if not population:
        return "population not recorded"
    parts = [f"n={_num(population.get('n'))}"]
    if population.get("positives") is not None:
        parts.append(f"positives={_num(population['positives'])}")
    if isinstance(population.get("prevalence"), float):
        parts.append(f"prevalence={population['prevalence']:.3f}")
    elif population.get("class_distribution"):
        dist = population["class_distribution"]
        parts.append("classes " + ", ".join(f"{k}: {_num(v)}" for k, v in sorted(dist.items())))
    return ", ".join(parts)


def _on(ref: RecordRef | None, population: dict[str, Any] | None) -> str:
    if ref is None:
        return "test set not recorded (population unknown)"
    return f"{ref.label} ({_population(population)})"


def metric_line(m: MetricChange) -> str:
    """One metric with the dataset(s) and population(s) it was measured on."""
    values = f"{m.name} {_num(m.old)} → {_num(m.new)}{_delta(m.delta)}"
    if m.same_dataset:
        return f"{values} on {_on(m.dataset_new, m.population_new)}"
    if m.same_dataset is None:
        return f"{values}; test set not recorded on either side (population unknown)"
    return (f"{values}; measured on {_on(m.dataset_old, m.population_old)} → "
            f"{_on(m.dataset_new, m.population_new)}: different test sets, not directly "
            "comparable")


def _dataset_lines(d: DatasetDiff, old: RecordRef, new: RecordRef) -> list[str]:
    lines = []
    if d.rows_added is not None:
        basis = (f" (compared on columns {', '.join(d.rows_compared_on)})"
                 if d.rows_compared_on is not None else "")
        lines.append(f"rows: {_num(d.rows_old)} → {_num(d.rows_new)}: +{_num(d.rows_added)} "
                     f"added, −{_num(d.rows_removed)} removed{basis}")
    else:
        lines.append(f"rows: {_num(d.rows_old)} → {_num(d.rows_new)}; {d.rows_note}")
    lines += _example_lines(d, added=True)
    lines += _example_lines(d, added=False)
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
        lines.append(f"target: {_value(d.target.old)} → {_value(d.target.new)}")
    if d.class_distribution:
        shares = ", ".join(
            f"{c.label}: {_num(c.old)} ({_share(c.old_share)}) → {_num(c.new)} "
            f"({_share(c.new_share)})" for c in d.class_distribution)
        of = f" of {d.target_column}" if d.target_column else ""
        lines.append(f"class balance{of}: {shares}")
    lines += [f"missing {_change(c)}" for c in d.missing]
    if old.size != new.size:
        lines.append(f"size: {_num(old.size)} → {_num(new.size)} bytes")
    return lines


def _example_lines(d: DatasetDiff, *, added: bool) -> list[str]:
    """At most :data:`_EXAMPLE_ROWS` rows of one side, each as a few ``column=value``."""
    rows = d.examples_added if added else d.examples_removed
    if not rows:
        return []
    verb = "added" if added else "removed"
    shown = (*d.examples_added[:_EXAMPLE_ROWS], *d.examples_removed[:_EXAMPLE_ROWS])
    columns = _example_columns(d, rows[0], shown, added)
    lines = []
    for row in rows[:_EXAMPLE_ROWS]:
        cells = ", ".join(f"{name}={_cell(row[name])}" for name in columns)
        hidden = len(row) - len(columns)
        more = f" (… {hidden} more column{'s' if hidden != 1 else ''})" if hidden > 0 else ""
        lines.append(f"  {verb} e.g. {cells}{more}")
    total = d.rows_added if added else d.rows_removed
    if total is not None and total > len(lines):
        rest = total - len(lines)
        lines.append(f"  … {_num(rest)} more row{'s' if rest != 1 else ''} {verb}")
    return lines


def _example_columns(d: DatasetDiff, row: dict[str, Any], shown: tuple[dict[str, Any], ...],
                     added: bool) -> list[str]:
    """The target column first, then columns the change touched, then the first ones.

    At most :data:`_EXAMPLE_COLUMNS` of ``row``'s, and fewer (but at least two) when their
    names and widest values among the ``shown`` rows would pass :data:`_EXAMPLE_WIDTH`
    characters (so both sides show the same columns when they share them).
    """
    target = d.target_column
    if d.target is not None:
        target = d.target.new if added else d.target.old
    touched = [c.name for c in (d.columns_added if added else d.columns_removed)]
    touched += [c.name for c in d.columns_retyped]
    chosen: list[str] = []
    width = 0
    for name in (target, *touched, *row):
        if not isinstance(name, str) or name not in row or name in chosen:
            continue
        width += len(name) + max(len(_cell(r[name])) for r in shown if name in r) + 3
        if len(chosen) >= 2 and width > _EXAMPLE_WIDTH:
            break
        chosen.append(name)
        if len(chosen) == _EXAMPLE_COLUMNS:
            break
    return chosen


def _cell(value: Any) -> str:
    """A table cell, short: floats to 4 significant digits, long text cut."""
    if value is None:
        return "NA"
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1e4 and abs(value) < 1e15 else f"{value:.4g}"
    text = str(value)
    if isinstance(value, str) and (not text or text != text.strip() or "," in text):
        text = repr(text)
    return text if len(text) <= _MAX_CELL else text[:_MAX_CELL - 1] + "…"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _environment_lines(e: EnvironmentDiff) -> list[str]:
    return [f"environment {_change(c)}" for c in
            (*e.packages, *(x for x in (e.python, e.platform, e.git) if x))]


def _evaluation_lines(e: EvaluationDiff) -> list[str]:
    if e.same_dataset:
        lines = [f"evaluation set-up: same test set {_on(e.dataset_new, e.population_new)}"]
    elif e.same_dataset is None:
        lines = ["evaluation set-up: test set not recorded (population unknown)"]
    else:
        lines = [f"evaluation set-up changed: {_on(e.dataset_old, e.population_old)} → "
                 f"{_on(e.dataset_new, e.population_new)}"]
    if e.confusion_old != e.confusion_new:
        lines.append(f"confusion matrix [[tn, fp], [fn, tp]]: {e.confusion_old} → "
                     f"{e.confusion_new}")
    for change in e.subgroups:
        sizes = f"n={change.n_old}" if change.n_old == change.n_new else (
            f"n={change.n_old} → {change.n_new}")
        lines.append(f"subgroup {change.attribute}={change.value}: {change.metric} "
                     f"{_num(change.old)} → {_num(change.new)}{_delta(change.delta)}, {sizes}")
    return lines


def artifact_lines(a: ArtifactDiff) -> list[str]:
    """What differs in one matched artifact pair, one line per fact."""
    lines = []
    if a.dataset is not None:
        lines += _dataset_lines(a.dataset, a.old, a.new)
    elif a.old.size != a.new.size:
        lines.append(f"size: {_num(a.old.size)} → {_num(a.new.size)} bytes")
    if a.model is not None:
        m = a.model
        lines += [f"model {_change(c)}" for c in (m.model_class, m.n_features, m.classes) if c]
        lines += [f"hyperparameter {_change(c)}" for c in m.params]
        if m.features_added:
            lines.append("features added: " + ", ".join(m.features_added))
        if m.features_removed:
            lines.append("features removed: " + ", ".join(m.features_removed))
    lines += [f"config {_change(c)}" for c in a.config]
    if a.evaluation is not None:
        lines += _evaluation_lines(a.evaluation)
    if a.environment is not None:
        lines += _environment_lines(a.environment)
    lines += [f"meta {_change(c)}" for c in a.meta]
    if a.code is not None:
        lines.append("code changed (see diff)")
    return lines or [f"content differs ({a.old.digest[:12]} → {a.new.digest[:12]})"]


def step_lines(s: StepDiff) -> list[str]:
    """What differs between two matched runs of one step, one line per fact."""
    lines = [f"param {_change(c)}" for c in s.params]
    if s.status:
        lines.append(f"status: {s.status.old} → {s.status.new}")
    for i in s.inputs:
        old = i.old.label if i.old else "(none)"
        new = i.new.label if i.new else "(none)"
        lines.append(f"input {i.name}: {old} → {new}")
    if s.code is not None and s.code.qualname:
        lines.append(f"code {_change(s.code.qualname)}")
    if s.environment is not None:
        lines += _environment_lines(s.environment)
    if s.nondeterministic:
        lines.append("outputs differ although inputs, params, code and environment are the "
                     "same: the step is not deterministic (unseeded randomness?)")
    return lines


def _source_diff(unified: str) -> list[str]:
    lines = unified.splitlines()
    if len(lines) > _MAX_SOURCE_LINES:
        lines = lines[:_MAX_SOURCE_LINES] + [f"... {len(lines) - _MAX_SOURCE_LINES} more lines"]
    return lines


def _headline(d: LineageDiff) -> list[str]:
    s = d.summary
    if d.is_empty:
        return ["no differences: both revisions name the same record"]
    causes = ", ".join(s.causes) if s.causes else "none recorded"
    lines = [f"changed: {causes}"]
    lines += [f"  {e.category}: {e.path}: {e.what}" for e in s.evidence]
    if s.evaluation_same is True:
        lines.append("evaluation set-up: unchanged (every metric measured on the same test set)")
    elif s.evaluation_same is False:
        lines.append("evaluation set-up: CHANGED (metrics measured on different test sets)")
    elif d.metrics:
        lines.append("evaluation set-up: unknown (no test set recorded for some metrics)")
    lines += [metric_line(m) for m in s.metrics]
    return lines


def _title(d: LineageDiff) -> str:
    return f"lineage diff {d.a.label} ({d.a.digest[:12]}) → {d.b.label} ({d.b.digest[:12]})"


# -- text --------------------------------------------------------------------------------------


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def render_text(d: LineageDiff, *, color: bool | None = None) -> str:
    """Terminal text; ANSI colour when ``color`` is true (``None``: stdout is a TTY)."""
    on = _use_color(color)

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if on else text

    out = [paint(_title(d), "bold"), ""]
    out += ["  " + paint(line, "yellow") if line.startswith("changed") else "  " + line
            for line in _headline(d)]
    unchanged = [m for m in d.metrics if not m.changed]
    if unchanged:
        out += ["", paint("Metrics unchanged", "bold")]
        out += [f"  [{m.step}] {metric_line(m)}" for m in unchanged]
    for s in d.steps:
        out += ["", paint(f"Step {s.path}", "bold") +
                f"  run {s.old.digest[:12]} → {s.new.digest[:12]}"]
        out += [f"  {line}" for line in step_lines(s)]
        if s.code is not None:
            out += [f"    {_paint_diff(line, paint)}" for line in _source_diff(s.code.unified)]
    for a in d.artifacts:
        cause = paint(f"  [cause: {a.cause}]", "yellow") if a.cause else ""
        out += ["", paint(f"Artifact {a.path}", "bold") + f"  {a.old.label} → {a.new.label}"
                + cause]
        out += [f"  {line}" for line in artifact_lines(a)]
        if a.code is not None:
            out += [f"    {_paint_diff(line, paint)}" for line in _source_diff(a.code.unified)]
    for title, steps, style in (("Steps only in " + d.a.label, d.steps_removed, "red"),
                                ("Steps only in " + d.b.label, d.steps_added, "green")):
        if steps:
            out += ["", paint(title, "bold")]
            out += [paint(f"  {s.path}  run {s.run.digest[:12]}", style) for s in steps]
    return "\n".join(out) + "\n"


def _paint_diff(line: str, paint: Any) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return str(paint(line, "green"))
    if line.startswith("-") and not line.startswith("---"):
        return str(paint(line, "red"))
    return line


# -- markdown ----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bullet(line: str) -> str:
    """A list item; a line indented under the previous one becomes a nested item."""
    nested = line.startswith("  ")
    return f"{'  ' if nested else ''}- {_md(line.strip())}"


def render_markdown(d: LineageDiff) -> str:
    """A Markdown report: summary, a metrics table, then steps and artifacts."""
    out = [f"## {_title(d)}", ""]
    out += [f"- {_md(line)}" for line in _headline(d) if not line.startswith("  ")]
    if d.summary.evidence:
        out += ["", "| cause | where | what |", "|---|---|---|"]
        out += [f"| {e.category} | `{_md(e.path)}` | {_md(e.what)} |" for e in d.summary.evidence]
    if d.metrics:
        out += ["", "### Metrics", "",
                "| step | metric | old | new | delta | measured on (old) | measured on (new) |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| `{_md(m.step)}` | {m.name} | {_num(m.old)} | {_num(m.new)} | "
                f"{_delta(m.delta).strip(' ()') or '—'} | "
                f"{_md(_on(m.dataset_old, m.population_old))} | "
                f"{_md(_on(m.dataset_new, m.population_new))} |" for m in d.metrics]
    for s in d.steps:
        out += ["", f"### Step `{_md(s.path)}`", ""]
        out += [f"- {_md(line)}" for line in step_lines(s)]
        if s.code is not None:
            out += ["", "```diff", *_source_diff(s.code.unified), "```"]
    for a in d.artifacts:
        cause = f" — cause: **{a.cause}**" if a.cause else ""
        out += ["", f"### `{_md(a.path)}`: {_md(a.old.label)} → {_md(a.new.label)}{cause}", ""]
        out += [_bullet(line) for line in artifact_lines(a)]
        if a.code is not None:
            out += ["", "```diff", *_source_diff(a.code.unified), "```"]
    for title, steps in (("Steps only in " + d.a.label, d.steps_removed),
                         ("Steps only in " + d.b.label, d.steps_added)):
        if steps:
            out += ["", f"### {_md(title)}", ""]
            out += [f"- `{_md(s.path)}` (run {s.run.digest[:12]})" for s in steps]
    return "\n".join(out) + "\n"


# -- html --------------------------------------------------------------------------------------


def render_html(d: LineageDiff) -> str:
    """An HTML fragment for notebooks (every value escaped)."""
    esc = html.escape
    parts = [f"<div class='lineage-diff'><h4>{esc(_title(d))}</h4><ul>"]
    parts += [f"<li>{esc(line)}</li>" for line in _headline(d) if not line.startswith("  ")]
    parts += [f"<li><b>{esc(e.category)}</b>: <code>{esc(e.path)}</code>: {esc(e.what)}</li>"
              for e in d.summary.evidence]
    parts.append("</ul>")
    if d.metrics:
        parts.append("<table><tr><th>step</th><th>metric</th><th>old</th><th>new</th>"
                     "<th>delta</th><th>measured on (old)</th><th>measured on (new)</th></tr>")
        parts += [f"<tr><td>{esc(m.step)}</td><td>{esc(m.name)}</td><td>{esc(_num(m.old))}</td>"
                  f"<td>{esc(_num(m.new))}</td><td>{esc(_delta(m.delta).strip(' ()'))}</td>"
                  f"<td>{esc(_on(m.dataset_old, m.population_old))}</td>"
                  f"<td>{esc(_on(m.dataset_new, m.population_new))}</td></tr>" for m in d.metrics]
        parts.append("</table>")
    sections: list[tuple[str, list[str], str]] = [
        (f"Step {s.path}", step_lines(s), s.code.unified if s.code else "") for s in d.steps]
    sections += [(f"{a.path}: {a.old.label} → {a.new.label}"
                  + (f" (cause: {a.cause})" if a.cause else ""), artifact_lines(a),
                  a.code.unified if a.code else "") for a in d.artifacts]
    for title, lines, source in sections:
        parts.append(f"<h5>{esc(title)}</h5><ul>")
        parts += [f"<li>{esc(line)}</li>" for line in lines]
        parts.append("</ul>")
        if source:
            parts.append(f"<pre>{esc(chr(10).join(_source_diff(source)))}</pre>")
    for title, steps in (("Steps only in " + d.a.label, d.steps_removed),
                         ("Steps only in " + d.b.label, d.steps_added)):
        if steps:
            parts.append(f"<h5>{esc(title)}</h5><ul>")
            parts += [f"<li><code>{esc(s.path)}</code></li>" for s in steps]
            parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)
