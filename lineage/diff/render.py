"""Renderers of a :class:`~lineage.diff.model.LineageDiff`: terminal text, Markdown, HTML.

All three read as a reviewer reads: first what changed and why (each cause with the values
that changed, a change seen at several places named once) and how the metrics moved, in
a table when they were all measured on one test set; then the details, step by step and
artifact by artifact. A change of content reached again through another path is named
once more and referred to where it was shown; a table whose rows all differ because the
step that made it changed says so instead of listing them. The words come from
:mod:`lineage.diff.lines`; JSON is :meth:`LineageDiff.to_json` (schema in
:mod:`lineage.diff.model`).
"""

from __future__ import annotations

import html
import os
import sys
from collections.abc import Callable
from typing import Final

from lineage.diff.lines import (
    artifact_lines,
    delta_text,
    evidence_lines,
    metric_line,
    metrics_table,
    num,
    on,
    step_lines,
    text_excerpt,
    title,
)
from lineage.diff.model import ArtifactDiff, LineageDiff

__all__ = ["render_html", "render_markdown", "render_text"]

_MAX_SOURCE_LINES: Final = 80
_ANSI: Final = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "dim": "2",
                "cyan": "36"}


def _source_diff(unified: str) -> list[str]:
    lines = unified.splitlines()
    if len(lines) > _MAX_SOURCE_LINES:
        lines = lines[:_MAX_SOURCE_LINES] + [f"... {len(lines) - _MAX_SOURCE_LINES} more lines"]
    return lines


def _diff_of(a: ArtifactDiff) -> list[str]:
    """The code or text diff shown below an artifact's lines (``[]`` when none)."""
    if a.code is not None:
        return _source_diff(a.code.unified)
    if a.text is not None and a.same_as is None:
        return text_excerpt(a.text)
    return []


def _evaluation_line(d: LineageDiff) -> str | None:
    s = d.summary
    if s.evaluation_same is True:
        return "evaluation set-up: unchanged (every metric measured on the same test set)"
    if s.evaluation_same is False:
        return "evaluation set-up: CHANGED (metrics measured on different test sets)"
    if d.metrics:
        return "evaluation set-up: unknown (no test set recorded for some metrics)"
    return None


def _headline(d: LineageDiff) -> list[str]:
    """The causes (indented lines below the first) and the evaluation set-up."""
    if d.is_empty:
        return ["no differences: both revisions name the same record"]
    causes = ", ".join(d.summary.causes) if d.summary.causes else "none recorded"
    lines = [f"changed: {causes}"]
    lines += [f"  {category}: {text}" for category, text in evidence_lines(d)]
    evaluation = _evaluation_line(d)
    return lines + ([evaluation] if evaluation else [])


def _metric_rows(d: LineageDiff) -> tuple[str, list[str], list[list[str]]] | None:
    """``(caption, header, rows)`` of the metrics table, or ``None`` (see
    :func:`lineage.diff.lines.metrics_table`)."""
    table = metrics_table(d)
    if table is None:
        return None
    measured_on, rows = table
    header = ["metric", d.a.label, d.b.label, "change"]
    if rows and len(rows[0]) == 5:
        header.insert(0, "step")
    return f"metrics on {measured_on}", header, rows


def _aligned(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in (header, *rows)]


# -- text --------------------------------------------------------------------------------------


def _use_color(color: bool | None) -> bool:
    if color is not None:
        return color
    if os.environ.get("NO_COLOR"):
        return False
    return hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def render_text(d: LineageDiff, *, color: bool | None = None) -> str:
    """Terminal text; ANSI colour when ``color`` is true (``None``: stdout is a TTY).

    The summary (causes, evaluation set-up, metrics) comes first and fits a screen for a
    usual change; ``Details`` follow, one block per step and artifact.
    """
    colored = _use_color(color)

    def paint(text: str, style: str) -> str:
        return f"\x1b[{_ANSI[style]}m{text}\x1b[0m" if colored else text

    out = [paint(title(d), "bold"), ""]
    out += ["  " + paint(line, "yellow") if line.startswith("changed") else "  " + line
            for line in _headline(d)]
    table = _metric_rows(d)
    if table is not None:
        caption, header, rows = table
        out += ["", "  " + caption]
        out += ["    " + line for line in _aligned(header, rows)]
    elif d.metrics:
        out += [""] + [f"  [{m.step}] {metric_line(m)}" for m in d.metrics]
    if d.steps or d.artifacts or d.steps_added or d.steps_removed:
        out += ["", paint("Details", "bold")]
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
        out += [f"    {_paint_diff(line, paint)}" for line in _diff_of(a)]
    for heading, steps, style in (("Steps only in " + d.a.label, d.steps_removed, "red"),
                                  ("Steps only in " + d.b.label, d.steps_added, "green")):
        if steps:
            out += ["", paint(heading, "bold")]
            out += [paint(f"  {s.path}  run {s.run.digest[:12]}", style) for s in steps]
    return "\n".join(out) + "\n"


def _paint_diff(line: str, paint: Callable[[str, str], str]) -> str:
    if line.startswith("+") and not line.startswith("+++"):
        return paint(line, "green")
    if line.startswith("-") and not line.startswith("---"):
        return paint(line, "red")
    return line


# -- markdown ----------------------------------------------------------------------------------


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _bullet(line: str) -> str:
    """A list item; a line indented under the previous one becomes a nested item."""
    nested = line.startswith("  ")
    return f"{'  ' if nested else ''}- {_md(line.strip())}"


def render_markdown(d: LineageDiff) -> str:
    """A Markdown report: summary, a metrics table, then the details."""
    out = [f"## {title(d)}", ""]
    out += [_bullet(line) for line in _headline(d)]
    table = _metric_rows(d)
    if table is not None:
        caption, header, rows = table
        out += ["", "### Metrics", "", f"{_md(caption[0].upper() + caption[1:])}:", "",
                "| " + " | ".join(_md(h) for h in header) + " |",
                "|" + "---|" * len(header)]
        out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    elif d.metrics:
        out += ["", "### Metrics", "",
                "| step | metric | old | new | delta | measured on (old) | measured on (new) |",
                "|---|---|---|---|---|---|---|"]
        out += [f"| `{_md(m.step)}` | {m.name} | {num(m.old)} | {num(m.new)} | "
                f"{delta_text(m.delta)} | {_md(on(m.dataset_old, m.population_old))} | "
                f"{_md(on(m.dataset_new, m.population_new))} |" for m in d.metrics]
    if d.steps or d.artifacts:
        out += ["", "### Details"]
    for s in d.steps:
        out += ["", f"#### Step `{_md(s.path)}`", ""]
        out += [f"- {_md(line)}" for line in step_lines(s)]
        if s.code is not None:
            out += ["", "```diff", *_source_diff(s.code.unified), "```"]
    for a in d.artifacts:
        cause = f" — cause: **{a.cause}**" if a.cause else ""
        out += ["", f"#### `{_md(a.path)}`: {_md(a.old.label)} → {_md(a.new.label)}{cause}",
                ""]
        out += [_bullet(line) for line in artifact_lines(a)]
        if _diff_of(a):
            out += ["", "```diff", *_diff_of(a), "```"]
    for heading, steps in (("Steps only in " + d.a.label, d.steps_removed),
                           ("Steps only in " + d.b.label, d.steps_added)):
        if steps:
            out += ["", f"### {_md(heading)}", ""]
            out += [f"- `{_md(s.path)}` (run {s.run.digest[:12]})" for s in steps]
    return "\n".join(out) + "\n"


# -- html --------------------------------------------------------------------------------------


def render_html(d: LineageDiff) -> str:
    """An HTML fragment for notebooks (every value escaped)."""
    esc = html.escape
    parts = [f"<div class='lineage-diff'><h4>{esc(title(d))}</h4><ul>"]
    headline = _headline(d)
    parts += [f"<li>{esc(line.strip())}</li>" for line in headline]
    parts.append("</ul>")
    table = _metric_rows(d)
    if table is not None:
        caption, header, rows = table
        parts.append(f"<table><caption>{esc(caption)}</caption><tr>"
                     + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
        parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
        parts.append("</table>")
    elif d.metrics:
        parts.append("<table><tr><th>step</th><th>metric</th><th>old</th><th>new</th>"
                     "<th>delta</th><th>measured on (old)</th><th>measured on (new)</th></tr>")
        parts += [f"<tr><td>{esc(m.step)}</td><td>{esc(m.name)}</td><td>{esc(num(m.old))}"
                  f"</td><td>{esc(num(m.new))}</td><td>{esc(delta_text(m.delta))}</td>"
                  f"<td>{esc(on(m.dataset_old, m.population_old))}</td>"
                  f"<td>{esc(on(m.dataset_new, m.population_new))}</td></tr>"
                  for m in d.metrics]
        parts.append("</table>")
    sections: list[tuple[str, list[str], list[str]]] = [
        (f"Step {s.path}", step_lines(s), _source_diff(s.code.unified) if s.code else [])
        for s in d.steps]
    sections += [(f"{a.path}: {a.old.label} → {a.new.label}"
                  + (f" (cause: {a.cause})" if a.cause else ""), artifact_lines(a), _diff_of(a))
                 for a in d.artifacts]
    if sections:
        parts.append("<details><summary>Details</summary>")
    for heading, lines, source in sections:
        parts.append(f"<h5>{esc(heading)}</h5><ul>")
        parts += [f"<li>{esc(line.strip())}</li>" for line in lines]
        parts.append("</ul>")
        if source:
            parts.append(f"<pre>{esc(chr(10).join(source))}</pre>")
    if sections:
        parts.append("</details>")
    for heading, steps in (("Steps only in " + d.a.label, d.steps_removed),
                           ("Steps only in " + d.b.label, d.steps_added)):
        if steps:
            parts.append(f"<h5>{esc(heading)}</h5><ul>")
            parts += [f"<li><code>{esc(s.path)}</code></li>" for s in steps]
            parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)
