"""The audit report as a document: Markdown, or one self-contained HTML file.

The report's data (:func:`lineage.audit.report.report_data`) is laid out once as sections of
simple blocks (paragraphs, key/value lists, tables, code, figures, the diff), then rendered
by :func:`to_markdown` or :func:`to_html`. The HTML inlines its style and plots, fetches
nothing, and prints well. Both end with the SHA-256 of everything above that last line, so a
reader can check that the document was not edited after it was produced.
"""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import dataclass, field
from typing import Any, Final

from lineage.audit import plots
from lineage.audit.policy import load_policy
from lineage.audit.report import SMALL_SUBGROUP, report_data
from lineage.core.hashing import Digest
from lineage.core.records import Artifact
from lineage.diff import diff
from lineage.diff.render import render_html
from lineage.storage.base import Backend, ReadTxn

__all__ = ["Section", "report", "sections", "to_html", "to_markdown"]

_CLINICAL: Final = ("sensitivity", "specificity", "ppv", "npv", "roc_auc", "brier", "f1",
                    "accuracy")
_HASH_LINE: Final = "SHA-256 of this document above this line: "


@dataclass(slots=True)
class Section:
    """A titled part of the report: a list of ``(kind, payload)`` blocks."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> Section:
        """Append a block; return the section (for chaining)."""
        self.blocks.append((kind, payload))
        return self


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool) or value is None:
        return "—" if value is None else str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _interval(value: Any, bounds: Any) -> str:
    if not isinstance(bounds, list) or len(bounds) != 2:
        return _num(value)
    return f"{_num(value)} [{_num(bounds[0])}–{_num(bounds[1])}]"


# -- the sections --------------------------------------------------------------------------


def sections(data: dict[str, Any], diff: tuple[str, str] | None,
             min_subgroup: int | None) -> list[Section]:
    """The report's sections, in the order a reviewer reads them. ``diff`` is the change from
    the previous version as (Markdown, HTML), or ``None``."""
    small = min_subgroup or SMALL_SUBGROUP
    return [_identity(data), _data(data), _setup(data), _evaluation(data, small),
            _importances(data), _changes(data, diff), _history(data), _lint(data),
            _integrity(data)]


def _identity(data: dict[str, Any]) -> Section:
    model = data["model"]
    section = Section("Model identity and intended use")
    use = model["intended_use"] or ("not recorded: log the model with meta={'intended_use': "
                                    "...} so reviewers know what it is for")
    run = model["run"] or {}
    section.add("kv", [
        ("model", model["label"]), ("digest", model["digest"]), ("class", model["class"]),
        ("stages held", ", ".join(model["stages"]) or "none"), ("intended use", use),
        ("trained by run", f"{run.get('op')} {str(run.get('digest'))[:12]}" if run else "—"),
        ("trained", f"{run.get('started')} to {run.get('ended')}" if run else "—"),
        ("registered by", model["registered_by"] or "—"),
        ("registered at", model["registered_at"] or "—"),
        *sorted((f"meta: {k}", str(v)) for k, v in model["meta"].items()),
    ])
    return section


def _data(data: dict[str, Any]) -> Section:
    section = Section("Data")
    if not data["data"]:
        return section.add("note", "No dataset in this model's lineage: nobody can tell what "
                                   "it was trained on.")
    section.add("table", (["dataset", "role", "rows", "columns", "class balance", "missing"],
                          [[d["label"], d["role"], _num(d["rows"]), _num(d["columns"]),
                            _balance(d["class_distribution"]), _missing(d)]
                           for d in data["data"]]))
    for dataset in data["data"]:
        if dataset["role"] == "derived table":
            continue
        notes = dataset["notes"]
        rows = [(key, notes.get(key) or "not recorded") for key in
                ("origin", "selection", "preprocessing")]
        rows.append(("known biases", notes.get("biases") or notes.get("known_biases")
                     or "not recorded"))
        section.add("subtitle", f"{dataset['label']} ({dataset['role']})").add("kv", rows)
    return section


def _balance(distribution: Any) -> str:
    if not isinstance(distribution, dict) or not distribution:
        return "—"
    total = sum(v for v in distribution.values() if isinstance(v, int)) or 1
    return ", ".join(f"{k}: {v} ({v / total:.0%})" for k, v in sorted(distribution.items()))


def _missing(dataset: dict[str, Any]) -> str:
    if not dataset["missing"]:
        return "none" if dataset["rows"] is not None else "—"
    return f"{dataset['missing']:,} in {', '.join(dataset['missing_columns'][:4])}"


def _setup(data: dict[str, Any]) -> Section:
    setup = data["setup"]
    section = Section("Training set-up")
    run = setup["run"] or {}
    section.add("kv", [("run", f"{run.get('op', '—')} {str(run.get('digest', ''))[:12]}"),
                       ("steps in the lineage", ", ".join(setup["steps"]) or "—"),
                       *[(f"param {k}", _plain(v)) for k, v in
                         sorted((run.get("params") or {}).items())]])
    if setup["hyperparameters"]:
        section.add("subtitle", "Hyperparameters").add(
            "kv", [(k, _plain(v)) for k, v in sorted(setup["hyperparameters"].items())])
    for code in setup["code"]:
        section.add("subtitle", f"Code: {code['qualname']} ({code['digest'][:12]})")
        section.add("code", code["source"].rstrip() or "(no source recorded)")
    environment = setup["environment"]
    if environment:
        packages = environment.get("packages") or {}
        git = environment.get("git") or {}
        section.add("subtitle", "Environment").add("kv", [
            ("python", f"{environment.get('implementation', '')} {environment.get('python')}"),
            ("platform", environment.get("platform")),
            ("git", f"{git.get('commit', '—')}{' (dirty)' if git.get('dirty') else ''}"),
            ("packages", ", ".join(f"{k} {v}" for k, v in sorted(packages.items())))])
    return section


def _plain(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _evaluation(data: dict[str, Any], small: int) -> Section:
    section = Section("Evaluation in context")
    if not data["evaluations"]:
        section.add("note", "No evaluation of this model: its metrics cannot be judged "
                            "against a population.")
    for evaluation in data["evaluations"]:
        population = evaluation["population"]
        title = f"{evaluation['label']} on {evaluation['test_set']}"
        if not evaluation["registered"]:
            title += " (test set not registered under a name@version)"
        section.add("subtitle", title)
        section.add("kv", [("task", evaluation["task"]),
                           ("tested population", _population(population)),
                           ("positive label", _plain(evaluation["positive_label"])),
                           ("threshold", _num(evaluation["threshold"]))])
        intervals = evaluation["intervals"]
        names = sorted(evaluation["metrics"], key=lambda m: (
            _CLINICAL.index(m) if m in _CLINICAL else len(_CLINICAL), m))
        section.add("table", (["metric", "value [95 % Wilson interval]"],
                              [[m, _interval(evaluation["metrics"][m], intervals.get(m))]
                               for m in names]))
        if evaluation["subgroups"]:
            section.add("figure", plots.subgroups_svg(evaluation["subgroups"]))
            section.add("table", _subgroup_table(evaluation["subgroups"], small))
            flagged = [f"{a}={v} (n={s.get('n')})" for a, groups in
                       sorted(evaluation["subgroups"].items()) for v, s in sorted(groups.items())
                       if isinstance(s, dict) and (s.get("n") or 0) < small]
            if flagged:
                section.add("note", f"Subgroups below {small} cases: {', '.join(flagged)}: "
                                    "their figures are too uncertain to rely on.")
        if evaluation["calibration"]:
            section.add("figure", plots.calibration_svg(evaluation["calibration"]))
    checks = [c for c in data["checks"] if c["name"] in ("evaluated", "independent")]
    if checks:
        section.add("subtitle", "Train/test independence (production gate)")
        section.add("table", (["check", "result", "finding"],
                              [[c["name"], "pass" if c["passed"] else "FAIL", c["message"]]
                               for c in checks]))
    return section


def _population(population: dict[str, Any]) -> str:
    parts = [f"n={_num(population.get('n'))}"]
    if "positives" in population:
        parts += [f"positives={_num(population.get('positives'))}",
                  f"prevalence={_num(population.get('prevalence'))}"]
    return ", ".join(parts)


def _subgroup_table(subgroups: dict[str, Any], small: int) -> tuple[list[str], list[list[str]]]:
    metrics = [m for m in ("sensitivity", "specificity", "ppv", "npv", "roc_auc", "accuracy",
                           "mae", "rmse")
               if any(m in s for g in subgroups.values() for s in g.values()
                      if isinstance(s, dict))]
    rows = []
    for attribute, groups in sorted(subgroups.items()):
        for value, stats in sorted(groups.items()):
            n = stats.get("n") or 0
            rows.append([f"{attribute}={value}" + (" ⚠" if n < small else ""), _num(n),
                         _num(stats.get("prevalence")),
                         *[_interval(stats.get(m), (stats.get("intervals") or {}).get(m))
                           for m in metrics]])
    return ["subgroup", "n", "prevalence", *metrics], rows


def _importances(data: dict[str, Any]) -> Section:
    section = Section("Feature importances")
    found = data["importances"]
    if not found:
        return section.add("p", "The model records no feature importances or coefficients.")
    what = "coefficients (coef_)" if found["source"] == "coef_" else "feature_importances_"
    section.add("p", f"Top {len(found['top'])} of {found['total']} features by magnitude, "
                     f"from the fitted model's {what}.")
    section.add("figure", plots.importances_svg(found["top"], found["source"]))
    section.add("table", (["feature", "value"], [[name, f"{value:+.4g}"]
                                                 for name, value in found["top"]]))
    return section


def _changes(data: dict[str, Any], diff: tuple[str, str] | None) -> Section:
    section = Section("What changed from the previous version")
    if data["previous"] is None or diff is None:
        return section.add("p", "This is the first version under its name.")
    return section.add("diff", diff)


def _history(data: dict[str, Any]) -> Section:
    section = Section("Registry history")
    rows = [[e["time"], e["user"], f"{e['ref']} {e['key']}", (e["target"] or "—")[:12],
             ("→ this model " if e["this_model"] else "") + (e["reason"] or ""),
             "; ".join(e["skipped"])] for e in data["history"]]
    section.add("table", (["time", "user", "move", "target", "reason", "checks overridden"],
                          rows))
    overrides = [e for e in data["history"] if e["skipped"]]
    if overrides:
        section.add("note", f"{len(overrides)} promotion(s) were forced past failed checks; "
                            "see the last column.")
    section.add("subtitle", "Production gate now")
    section.add("table", (["check", "result", "finding"],
                          [[c["name"], "pass" if c["passed"] else "FAIL", c["message"]]
                           for c in data["checks"]] or [["(none)", "—", "not a model"]]))
    return section


def _lint(data: dict[str, Any]) -> Section:
    section = Section("Lint findings in the lineage")
    if not data["lint"]:
        return section.add("p", "None.")
    return section.add("table", (["severity", "code", "record", "message"],
                                 [[f["severity"], f["code"], f["label"], f["message"]]
                                  for f in data["lint"]]))


def _integrity(data: dict[str, Any]) -> Section:
    integrity = data["integrity"]
    verified = integrity["verify"] or {}
    problems = verified.get("problems") or []
    section = Section("Integrity").add("kv", [
        ("lineage verified", "ok: every record and content re-hashed to its digest"
         if verified.get("ok") else f"{len(problems)} problem(s)"),
        ("checked", f"{_num(verified.get('records'))} records and "
                    f"{_num(verified.get('blobs'))} contents ({_num(verified.get('bytes'))} "
                    "bytes)"),
        ("event log", f"{_num(integrity['events'])} events, chain "
                      f"{'intact' if integrity['chain_ok'] else 'BROKEN'}"),
        ("event-log head (SHA-256)", integrity["event_head"] or "—"),
        ("report state as of", data["as_of"] or "—"),
    ])
    for problem in problems:
        section.add("note", problem)
    return section


# -- Markdown -------------------------------------------------------------------------------


def _md(text: Any) -> str:
    return re.sub(r"([|\\`*_<>\[\]])", r"\\\1", " ".join(str(text).split()))


def to_markdown(data: dict[str, Any], parts: list[Section]) -> str:
    """The report as Markdown, ending with its own SHA-256 line."""
    out = [f"# {_md(data['title'])}", ""]
    if data["point_in_time"]:
        out += [f"*As the store stood at {data['as_of']}.*", ""]
    for number, section in enumerate(parts, start=1):
        out += [f"## {number}. {section.title}", ""]
        for kind, payload in section.blocks:
            out += _md_block(kind, payload) + [""]
    body = "\n".join(out).rstrip() + "\n"
    return f"{body}\n---\n{_HASH_LINE}`{hashlib.sha256(body.encode()).hexdigest()}`\n"


def _md_block(kind: str, payload: Any) -> list[str]:
    if kind == "p":
        return [_md(payload)]
    if kind == "note":
        return [f"> **Note:** {_md(payload)}"]
    if kind == "subtitle":
        return [f"### {_md(payload)}"]
    if kind == "kv":
        return [f"- **{_md(key)}**: {_md(value)}" for key, value in payload]
    if kind == "table":
        headers, rows = payload
        lines = ["| " + " | ".join(_md(h) for h in headers) + " |",
                 "|" + "---|" * len(headers)]
        return lines + ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    if kind == "code":
        return ["```python", payload.replace("```", "ʼʼʼ"), "```"]
    if kind == "diff":
        return [re.sub(r"^(#+) ", r"\1## ", line) for line in payload[0].splitlines()]
    return []  # figures are HTML only: their figures are in the tables beside them


# -- HTML -----------------------------------------------------------------------------------

_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2733;
max-width:1000px;margin:2em auto;padding:0 1.2em}
h1{font-size:1.7em;border-bottom:3px solid #1f3b57;padding-bottom:.3em}
h2{font-size:1.25em;color:#1f3b57;margin-top:2em;border-bottom:1px solid #d5dde6}
h3{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.5em 0 1em;width:100%;font-size:.92em}
th,td{border:1px solid #d5dde6;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#eef2f6}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:.5em 0 1em}
dt{font-weight:600;color:#44556a}dd{margin:0;overflow-wrap:anywhere}
pre{background:#f6f8fa;border:1px solid #d5dde6;padding:.7em;overflow-x:auto;font-size:.85em}
.note{background:#fff6e5;border-left:4px solid #e0a030;padding:.5em .8em;margin:.6em 0}
.fail{color:#b03a2e;font-weight:600}.pass{color:#1e7a3c}
.when{color:#5a6b7d}footer{margin-top:3em;color:#5a6b7d;font-size:.85em;
border-top:1px solid #d5dde6;padding-top:.6em;overflow-wrap:anywhere}
figure{margin:.5em 0}figure svg{max-width:100%;height:auto}
.lineage-diff h4{margin:.3em 0}
@media print{body{margin:0;max-width:none;font-size:11px}section{break-inside:auto}
h2{break-after:avoid}table,figure,pre{break-inside:avoid}}
"""


def to_html(data: dict[str, Any], parts: list[Section]) -> str:
    """The report as one self-contained HTML document, ending with its own SHA-256."""
    esc = html.escape
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{esc(data['title'])}</title>", f"<style>{_STYLE.strip()}</style>",
           "</head><body>", f"<h1>{esc(data['title'])}</h1>"]
    if data["point_in_time"]:
        out.append(f"<p class=\"when\">As the store stood at {esc(str(data['as_of']))}.</p>")
    for number, section in enumerate(parts, start=1):
        out.append(f"<section><h2>{number}. {esc(section.title)}</h2>")
        out += [_html_block(kind, payload) for kind, payload in section.blocks]
        out.append("</section>")
    body = "\n".join(out) + "\n"
    digest = hashlib.sha256(body.encode()).hexdigest()
    return f"{body}<footer>{esc(_HASH_LINE)}<code>{digest}</code></footer>\n</body></html>\n"


def _html_block(kind: str, payload: Any) -> str:
    esc = html.escape
    if kind == "p":
        return f"<p>{esc(str(payload))}</p>"
    if kind == "note":
        return f"<div class=\"note\">{esc(str(payload))}</div>"
    if kind == "subtitle":
        return f"<h3>{esc(str(payload))}</h3>"
    if kind == "kv":
        return "<dl>" + "".join(f"<dt>{esc(str(k))}</dt><dd>{esc(str(v))}</dd>"
                                for k, v in payload) + "</dl>"
    if kind == "table":
        headers, rows = payload
        head = "".join(f"<th>{esc(str(h))}</th>" for h in headers)
        body = "".join("<tr>" + "".join(_cell(str(c)) for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if kind == "code":
        return f"<pre><code>{esc(payload)}</code></pre>"
    if kind == "figure":
        return f"<figure>{payload}</figure>" if payload else ""
    if kind == "diff":
        return str(payload[1])
    return ""


def _cell(text: str) -> str:
    css = " class=\"fail\"" if text == "FAIL" else " class=\"pass\"" if text == "pass" else ""
    return f"<td{css}>{html.escape(text)}</td>"


# -- the whole report -----------------------------------------------------------------------


def report(txn: ReadTxn, backend: Backend, model: Artifact, *, fmt: str,
           moment: float | None = None) -> str:
    """The audit report on ``model`` as ``"html"`` or ``"markdown"`` text."""
    data = report_data(txn, backend, model, moment=moment)
    change = None
    if data["previous"] is not None:
        previous = Digest.from_hex(data["previous"]["digest"])
        difference = diff(txn, backend, previous, model, examples=3)
        change = (str(difference.to_markdown()), render_html(difference))
    policy = load_policy(txn, "production")
    parts = sections(data, change, policy.min_subgroup)
    return to_html(data, parts) if fmt == "html" else to_markdown(data, parts)
