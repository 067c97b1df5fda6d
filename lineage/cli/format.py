"""What the command line prints: records as JSON-safe dicts, and those dicts as aligned text.

Every verb builds one JSON-safe dict (the ``--json`` document, schema in :mod:`lineage.cli.app`)
and the human text is rendered from that same dict, so the two never disagree.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

from lineage.core.plain import iso_time as iso
from lineage.core.plain import jsonable, number_text
from lineage.core.records import RefEntry, Run

__all__ = ["format_bytes", "label", "run_row", "short", "table"]

SHORT: Final = 12  # digest characters shown in human output
_MISSING: Final = "-"


_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; exact below 1 KiB (``"512 B"``)."""
    value = float(count)
    for unit in _UNITS[:-1]:
        if abs(value) < 1024:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


def local_time(text: str | None) -> str:
    """An ISO 8601 time as local ``YYYY-MM-DD HH:MM:SS`` for people."""
    if not text:
        return _MISSING
    return _dt.datetime.fromisoformat(text).astimezone().strftime("%Y-%m-%d %H:%M:%S")


# -- records as dicts --------------------------------------------------------------------


def run_row(run: Run, test_sets: dict[str, str] | None = None) -> dict[str, Any]:
    """The short form of a run used by ``lineage runs`` (``test_sets``: metric -> label)."""
    return {
        "digest": run.digest,
        "id": run.id,
        "op": run.op,
        "label": run.label,
        "status": run.status,
        "started": iso(run.started),
        "duration": run.duration,
        "inputs": sorted(run.inputs),
        "outputs": sorted(run.outputs),
        "params": jsonable(run.params),
        "metrics": jsonable(run.metrics),
        "test_sets": dict(test_sets or {}),
    }


def entry_dict(entry: RefEntry) -> dict[str, Any]:
    """A ref history entry (see :meth:`RefEntry.to_dict`)."""
    return entry.to_dict()


# -- text ----------------------------------------------------------------------------------


def oneline(value: Any) -> str:
    """``value`` as text on one line (control characters escaped)."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")


def oneline_block(text: str) -> str:
    """Lines of text, each made printable (control characters escaped)."""
    return "\n".join(oneline(line) for line in text.splitlines())


def table(rows: Iterable[Sequence[Any]], headers: Sequence[str] | None = None) -> str:
    """Rows as left-aligned columns two spaces apart (the last column unpadded)."""
    lines = [[oneline(c) for c in row] for row in rows]
    if headers is not None:
        lines.insert(0, list(headers))
    if not lines:
        return ""
    widths = [max(len(line[i]) for line in lines if i < len(line)) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [c.ljust(widths[i]) for i, c in enumerate(line[:-1])] + line[-1:]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def short(digest: str | None) -> str:
    """The first 12 hex characters of a digest."""
    return digest[:SHORT] if digest else _MISSING


def label(name: str | None, version: str | None) -> str:
    """``name@version``, ``name`` or ``(unnamed)``."""
    if not name:
        return "(unnamed)"
    return f"{name}@{version}" if version else name


def size_text(size: int) -> str:
    """``1.5 MiB (1,572,864 bytes)``, or just ``512 B``."""
    human = format_bytes(size)
    return human if size < 1024 else f"{human} ({size:,} bytes)"


def duration_text(seconds: float) -> str:
    """Seconds as ``0.012s``, ``4.2s`` or ``3m07s``."""
    if seconds < 1:
        return f"{seconds:.3f}s"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


def _scalar(value: Any) -> str:
    """A value on one line; floats to 6 significant digits, always visibly floats."""
    if isinstance(value, float):
        return number_text(value, 6)
    return oneline(value)


_REVIEWED: Final = frozenset({  # summary keys `lineage show` prints in their own rows
    "rows", "columns", "target", "class_distribution", "key", "missing", "class", "params",
    "classes", "n_features_in", "feature_importances", "coef"})
_COLUMNS_SHOWN: Final = 40


def _summary_text(summary: dict[str, Any], skip: frozenset[str] = frozenset()) -> str:
    parts = []
    for key, value in sorted(summary.items()):
        if key in skip:
            continue
        if isinstance(value, dict | list):
            parts.append(f"{key}[{len(value)}]")
        elif isinstance(value, str) and len(value) > 40:
            parts.append(f"{key}=…")
        else:
            parts.append(f"{key}={_scalar(value)}")
    return " ".join(parts) or _MISSING


def _pairs(mapping: dict[str, Any]) -> str:
    return " ".join(f"{k}={_scalar(v)}" for k, v in sorted(mapping.items())) or _MISSING


def _ref_text(ref: dict[str, Any] | None) -> str:
    if ref is None:
        return _MISSING
    named = label(ref["name"], ref["version"]) if ref["name"] else ref["kind"] or "missing"
    return f"{short(ref['digest'])}  {named}"


def artifact_text(data: dict[str, Any]) -> str:
    """``lineage show`` of an artifact."""
    rows: list[tuple[str, str]] = [
        ("artifact", label(data["name"], data["version"])),
        ("digest", data["digest"]),
        ("kind", data["kind"]),
        ("format", data["format"]),
        ("size", size_text(data["size"])),
    ]
    rows += [("parent", p) for p in data["parents"]]
    rows += [(f"meta.{k}", _scalar(v)) for k, v in sorted(data["meta"].items())]
    review = data.get("review") or {}
    rows += _model_rows(review.get("model")) + _table_rows(review.get("table"))
    rows.append(("summary", _summary_text(data["summary"], _REVIEWED if review else frozenset())))
    for entry in data["versions"]:
        mark = "  *" if entry["digest"] == data["digest"] else ""
        version_line = f"{entry['version']}  {short(entry['digest'])}  {local_time(entry['time'])}"
        rows.append(("versions", version_line + mark))
    rows += [("stage", f"{s} -> {short(d)}") for s, d in data["stages"].items()]
    if data["tags"]:
        rows.append(("tags", " ".join(data["tags"])))
    return _fields(rows) + _importance_text((review.get("model") or {}).get("importance"))


def _model_rows(model: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A model's class, classes, feature count and every hyperparameter (``param.C``)."""
    if not model:
        return []
    rows = [("class", oneline(model["class"]))]
    if model.get("classes") is not None:
        rows.append(("classes", ", ".join(_scalar(c) for c in model["classes"])))
    if model.get("n_features") is not None:
        rows.append(("features", str(model["n_features"])))
    rows += [(f"param.{k}", _scalar(v)) for k, v in sorted(model["params"].items())]
    return rows


def _table_rows(table: dict[str, Any] | None) -> list[tuple[str, str]]:
    """A table's rows, target, key, class balance, missing values and columns."""
    if not table:
        return []
    rows = [("rows", number_text(table["rows"], grouped=True) if table["rows"] is not None
             else _MISSING)]
    if table.get("target"):
        rows.append(("target", oneline(table["target"])))
    if table.get("key"):
        rows.append(("key", oneline(table["key"])))
    balance = table.get("class_distribution") or {}
    total = sum(balance.values())
    if balance and total:
        rows.append(("class balance", ", ".join(
            f"{oneline(label)}: {count:,} ({100 * count / total:.1f}%)"
            for label, count in sorted(balance.items()))))
    if table.get("missing"):
        rows.append(("missing", ", ".join(f"{oneline(c)}: {n:,}"
                                          for c, n in table["missing"].items())))
    columns = table["columns"]
    width = max((len(oneline(name)) for name, _ in columns[:_COLUMNS_SHOWN]), default=0)
    rows += [("columns" if i == 0 else "", f"{oneline(name).ljust(width)}  {dtype}")
             for i, (name, dtype) in enumerate(columns[:_COLUMNS_SHOWN])]
    if len(columns) > _COLUMNS_SHOWN:
        rows.append(("", f"… {len(columns) - _COLUMNS_SHOWN} more columns (--json lists all)"))
    return rows


def _importance_text(importance: dict[str, Any] | None) -> str:
    """``feature importance (coef, top 10 of 30)`` then ``name  value`` lines."""
    if not importance or not importance["top"]:
        return ""
    top = importance["top"]
    heading = (f"\n\nfeature importance ({importance['kind']}, top {len(top)} of "
               f"{importance['total']}, by magnitude)\n")
    values = [(f"  {oneline(name)}", ", ".join(_scalar(v) for v in value)
               if isinstance(value, list) else _scalar(value)) for name, value in top]
    return heading + table(values)


def run_text(data: dict[str, Any]) -> str:
    """``lineage show`` of a run."""
    rows: list[tuple[str, str]] = [
        ("run", f"{data['op']}  {data['status']}"),
        ("digest", data["digest"]),
        ("id", data["id"]),
        ("started", local_time(data["started"])),
        ("duration", duration_text(data["duration"])),
    ]
    if data["label"]:
        rows.append(("label", data["label"]))
    if data["parent"]:
        rows.append(("parent", data["parent"]))
    rows += [(f"param.{k}", _scalar(v)) for k, v in sorted(data["params"].items())]
    for metric, value in sorted(data["metrics"].items()):
        on = data["metric_datasets"].get(metric)
        rows.append((f"metric.{metric}", _scalar(value) + (f"  on {_ref_text(on)}" if on else "")))
    rows += [(f"input.{k}", _ref_text(ref)) for k, ref in data["inputs"].items()]
    rows += [(f"output.{k}", _ref_text(ref)) for k, ref in data["outputs"].items()]
    if data["code"]:
        rows.append(("code", _ref_text(data["code"])))
    if data["environment"]:
        rows.append(("environment", _ref_text(data["environment"])))
    if data["error"]:
        error = data["error"]
        rows.append(("error", f"{error.get('type')}: {oneline(error.get('message', ''))}"))
    return _fields(rows)


def _fields(rows: list[tuple[str, str]]) -> str:
    """Key/value rows, a repeated key shown once."""
    shown, previous = [], None
    for key, value in rows:
        shown.append(("" if key == previous else key, value))
        previous = key
    return table(shown)


_FIXED_COLUMNS: Final = {"run": "RUN", "started": "STARTED", "op": "OP", "label": "LABEL",
                         "status": "STATUS", "duration": "DURATION", "test_set": "TEST SET"}
_DEFAULT_FIXED: Final = ("run", "started", "op", "status", "duration")
_MAX_PARAMS: Final = 6  # param columns shown by default (those that differ first)
_MAX_METRICS: Final = 6
_CELL: Final = 12  # characters of a param or metric cell before it is cut


def runs_columns(runs: list[dict[str, Any]], chosen: list[str] | None
                 ) -> tuple[list[str], list[str]]:
    """The columns of ``lineage runs`` (``run``, ``params.C``, ``metrics.auc`` ...) and
    notes on what was left out.

    ``chosen`` (``--columns``) names them: ``run``, ``started``, ``op``, ``label``,
    ``status``, ``duration``, ``test_set``, ``params.NAME``, ``metrics.NAME``, or a bare
    ``NAME`` (a param if a listed run has one, else a metric). By default: the fixed
    columns, the params whose values differ between the runs listed (all params when one
    run is listed; at most :data:`_MAX_PARAMS`), then the metrics (clinical ones first; at
    most :data:`_MAX_METRICS`).
    """
    from lineage.core.plain import identical, metric_order

    params = sorted({k for r in runs for k in r["params"]})
    metrics = sorted({k for r in runs for k in r["metrics"]}, key=metric_order)
    if chosen is not None:
        columns = []
        for name in chosen:
            if name in _FIXED_COLUMNS or name.startswith(("params.", "metrics.")):
                columns.append(name)
            elif name in params:
                columns.append(f"params.{name}")
            else:
                columns.append(f"metrics.{name}")
        return columns, []

    def differs(name: str) -> bool:
        values = [r["params"].get(name, _MISSING) for r in runs]
        return any(not identical(v, values[0]) for v in values)

    shown = params if len(runs) < 2 else [p for p in params if differs(p)]
    notes = []
    if len(shown) > _MAX_PARAMS:
        notes.append(f"{count(len(shown) - _MAX_PARAMS, 'more param')} differ")
        shown = shown[:_MAX_PARAMS]
    if len(metrics) > _MAX_METRICS:
        notes.append(count(len(metrics) - _MAX_METRICS, "more metric"))
    columns = [*_DEFAULT_FIXED, *(f"params.{p}" for p in shown),
               *(f"metrics.{m}" for m in metrics[:_MAX_METRICS])]
    return columns, notes


def _cut(text: str) -> str:
    return text if len(text) <= _CELL else text[:_CELL - 1] + "…"


def _run_cell(run: dict[str, Any], column: str) -> str:
    if column.startswith("params."):
        name = column[len("params."):]
        if name not in run["params"]:
            return _MISSING
        value = run["params"][name]
        return _cut(oneline(value) if isinstance(value, str) else _value(value))
    if column.startswith("metrics."):
        value = run["metrics"].get(column[len("metrics."):])
        return _MISSING if value is None else _cut(_value(value, 4))
    fixed: dict[str, str] = {
        "run": short(run["digest"]), "started": local_time(run["started"]), "op": run["op"],
        "label": run["label"] or _MISSING, "status": run["status"],
        "duration": duration_text(run["duration"]),
        "test_set": ", ".join(sorted(set(run["test_sets"].values()))) or _MISSING,
    }
    return fixed[column]


def _value(value: Any, digits: int | None = None) -> str:
    """A param or metric as it is: floats visibly floats (``1.0``), ``digits`` significant."""
    from lineage.core.plain import is_number, value_text

    if is_number(value):
        return number_text(value, digits)
    return value_text(value)


def runs_text(runs: list[dict[str, Any]], columns: list[str], notes: list[str]) -> str:
    """``lineage runs``: one line per run, the chosen columns (params and metrics by name,
    wide values cut), then what was left out."""
    if not runs:
        return "no runs match"
    headers = [_FIXED_COLUMNS.get(c) or c.split(".", 1)[1] for c in columns]
    text = table(([_run_cell(r, c) for c in columns] for r in runs), headers)
    if notes:
        text += f"\n({'; '.join(notes)}: --columns chooses, --json lists all)"
    return text


def log_text(entries: list[dict[str, Any]]) -> str:
    """``lineage log``: one line per ref move, newest first."""
    rows = []
    for e in entries:
        move = f"{short(e['previous'])} -> {short(e['target'])}"
        ref = f"{e['ref']} {e['key']}"
        rows.append((local_time(e["time"]), e["user"], ref, move, e["reason"]))
    return table(rows)


def added_text(added: list[dict[str, Any]]) -> str:
    """``lineage add``: digest, name@version and size per artifact."""
    rows = [
        (short(a["digest"]), label(a["name"], a["version"]), format_bytes(a["size"]))
        for a in added
    ]
    return table(rows)


def count(number: int, noun: str) -> str:
    """``1 record``, ``2 records``."""
    return f"{number} {noun}" + ("" if number == 1 else "s")


def _contents(report: dict[str, Any]) -> str:
    return ", ".join(count(report[k], k[:-1]) for k in ("records", "blobs", "chunks"))


def verify_text(report: dict[str, Any]) -> str:
    """``lineage verify``: what was checked, then each problem."""
    checked = f"checked {_contents(report)} ({format_bytes(report['bytes'])})"
    if report["ok"]:
        return f"{checked}: ok"
    return "\n".join([f"{checked}: {count(len(report['problems']), 'problem')}",
                      *report["problems"]])


def gc_text(report: dict[str, Any]) -> str:
    """``lineage gc``: what was (or would be) removed."""
    if report["dry_run"]:
        return f"would remove {_contents(report)} (dry run; pass --yes to remove them)"
    return f"removed {_contents(report)}; freed {format_bytes(report['bytes_freed'])}"
