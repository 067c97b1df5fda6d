"""The runs pages: the runs table (params and metrics as columns, sortable, filterable,
paged, runs ticked for comparison) and the page of one run (params, metrics with the chart of
their history, inputs and outputs linked, code, environment, errors, nesting).

A page of the table reads only its own runs (``store.runs(limit=, offset=)`` pages through
the time index), so a store of 100k runs opens at once.
"""

from __future__ import annotations

import json
from typing import Any, Final

from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run
from lineage.store import Store
from lineage.web.layout import esc, fmt, kv, link, table, when

__all__ = ["run_page", "runs_page", "sparkline", "status_html"]

_WIDE: Final = 40  # characters of a param value shown in the table


def runs_page(store: Store, number: int, size: int) -> tuple[str, str]:
    """Page ``number`` (from 1) of the runs table, newest first: its title and body."""
    runs = store.runs(limit=size + 1, offset=(number - 1) * size)
    more, runs = len(runs) > size, runs[:size]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    headers = ["", "run", "op", "label", "status", "started", "duration",
               *(f"params.{p}" for p in params), *(f"metrics.{m}" for m in metrics)]
    rows, attributes = [], []
    labels: dict[Any, str] = {}
    for run in runs:
        for digest in run.metric_datasets.values():
            if digest not in labels:
                labels[digest] = _label(store, digest)
        data = {"digest": run.digest, "op": run.op, "params": jsonable(run.params),
                "metrics": jsonable(run.metrics),
                "test_sets": sorted({labels[d] for d in run.metric_datasets.values()})}
        check = (f'<input type="checkbox" data-run="{esc(json.dumps(data, sort_keys=True))}" '
                 f'aria-label="compare run {esc(run.digest[:12])}">')
        rows.append([check, link(f"{run.digest}.html", run.digest[:12]), esc(run.op),
                     esc(run.label or ""), status_html(run), esc(when(run.started)),
                     esc(f"{run.duration:.2f} s"),
                     *(_param(run.params.get(p), p in run.params) for p in params),
                     *(esc(fmt(run.metrics.get(m))) for m in metrics)])
        attributes.append(f'data-digest="{esc(run.digest)}"')
    pager = []
    if number > 1:
        previous = "index.html" if number == 2 else f"page-{number - 1}.html"
        pager.append(link(previous, "← newer"))
    pager.append(f"<span>page {number}</span>")
    if more:
        pager.append(link(f"page-{number + 1}.html", "older →"))
    body = [
        '<div class="toolbar"><input type="search" placeholder="filter runs" '
        'data-filter="runs-table" aria-label="filter runs">'
        '<button id="compare-button" type="button">compare ticked runs</button></div>',
        '<div id="compare"></div>',
        '<div class="wide">' + table(headers, rows, table_id="runs-table", sortable=True,
                                     row_attributes=attributes) + "</div>"
        if rows else '<p class="muted">No runs on this page.</p>',
        f'<p class="pager">{" ".join(pager)}</p>']
    return "Runs", "\n".join(body)


def _param(value: Any, present: bool) -> str:
    if not present:
        return ""
    text = value if isinstance(value, str) else json.dumps(jsonable(value))
    if isinstance(value, float):
        text = fmt(value)
    if len(text) > _WIDE:
        return f'<span title="{esc(text)}">{esc(text[:_WIDE - 1])}…</span>'
    return esc(text)


def status_html(run: Run) -> str:
    """A run's status, failures marked."""
    if run.status == "ok":
        return esc(run.status)
    return f'<span class="failed">{esc(run.status)}</span>'


def _label(store: Store, digest: Any) -> str:
    record = store.resolve(digest)
    if isinstance(record, Run):
        return f"run {record.op}"
    described = store.describe(record)
    return (f"{described['name']}@{described['version']}" if described.get("version")
            else described.get("name") or f"{record.kind} {record.digest[:12]}")


def _ref(store: Store, digest: Any) -> str:
    record = store.resolve(digest)
    if isinstance(record, Run):
        return link(f"{record.digest}.html", f"run {record.op}")
    return link(f"../artifacts/{record.digest}.html", _label(store, digest))


def run_page(store: Store, run: Run) -> tuple[str, str]:
    """The page of one run: its title and body."""
    facts = [("op", esc(run.op)), ("status", status_html(run)), ("label", esc(run.label or "—")),
             ("digest", f"<code>{esc(run.digest)}</code>"), ("id", esc(run.id)),
             ("started", esc(iso_time(run.started))),
             ("duration", esc(f"{run.duration:.3f} s"))]
    if run.parent:
        try:
            parent = store.resolve(run.parent)  # a run's id names it
            facts.append(("inside", link(f"{parent.digest}.html", f"run {parent.name}")))
        except LookupError:
            facts.append(("inside", esc(run.parent)))
    body = [kv(facts), f'<p>{link(f"../graph/{run.digest}.html", "lineage graph")}</p>']
    if run.error:
        body.append(f'<pre class="failed">{esc(run.error.get("type"))}: '
                    f'{esc(run.error.get("message"))}</pre>')
    if run.params:
        body += ["<h2>Params</h2>", table(["param", "value"], [
            [esc(k), esc(json.dumps(jsonable(v)))] for k, v in sorted(run.params.items())])]
    if run.metrics:
        rows = []
        for name, value in sorted(run.metrics.items()):
            history = store.metric_history(run, name)
            measured = run.metric_datasets.get(name)
            rows.append([esc(name), esc(fmt(value)), _ref(store, measured) if measured else "—",
                         fmt(len(history)), sparkline([v for _s, _t, v in history])])
        body += ["<h2>Metrics</h2>", table(["metric", "last", "measured on", "points",
                                            "history"], rows)]
    for title, mapping in (("Inputs", run.inputs), ("Outputs", run.outputs)):
        if mapping:
            body += [f"<h2>{title}</h2>", table(["name", "record"], [
                [esc(k), _ref(store, d)] for k, d in sorted(mapping.items())])]
    if run.code is not None:
        code = store.resolve(run.code)
        if isinstance(code, Artifact):
            body += ["<h2>Code</h2>", f"<pre><code>{esc(code.summary.get('source', ''))}"
                                      "</code></pre>"]
    if run.environment is not None:
        environment = store.resolve(run.environment)
        facts_of = environment.summary.get("value") if isinstance(environment, Artifact) \
            else None
        if isinstance(facts_of, dict):
            packages = ", ".join(f"{k} {v}" for k, v in sorted((facts_of.get("packages")
                                                                  or {}).items()))
            body += ["<h2>Environment</h2>", kv([
                ("python", esc(facts_of.get("python"))),
                ("platform", esc(facts_of.get("platform"))),
                ("git", esc(jsonable(facts_of.get("git")))), ("packages", esc(packages))])]
    return f"Run {run.op} {run.digest[:12]}", "\n".join(body)


def sparkline(values: list[float], width: int = 160, height: int = 28) -> str:
    """A metric's history as a small inline SVG line (empty for fewer than two points)."""
    finite = [float(v) for v in values if v == v and abs(v) != float("inf")]
    if len(finite) < 2:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    step = width / (len(finite) - 1)
    points = " ".join(f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}"
                      for i, v in enumerate(finite))
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="history from {fmt(finite[0])} to {fmt(finite[-1])}">'
            f'<polyline fill="none" stroke="#1f3b57" stroke-width="1.5" points="{points}"/>'
            "</svg>")
