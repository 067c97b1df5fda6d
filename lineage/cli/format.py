"""What the command line prints: records as JSON-safe dicts, and those dicts as aligned text.

Every verb builds one JSON-safe dict (the ``--json`` document, schema in :mod:`lineage.cli.app`)
and the human text is rendered from that same dict, so the two never disagree.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Sequence
from typing import Any, Final

from lineage.core.plain import iso_time as iso
from lineage.core.plain import jsonable
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


def run_row(run: Run) -> dict[str, Any]:
    """The short form of a run used by ``lineage runs``."""
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
        "metrics": jsonable(run.metrics),
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
    if isinstance(value, float):
        return f"{value:.6g}"
    return oneline(value)


def _summary_text(summary: dict[str, Any]) -> str:
    parts = []
    for key, value in sorted(summary.items()):
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
    rows.append(("summary", _summary_text(data["summary"])))
    for entry in data["versions"]:
        mark = "  *" if entry["digest"] == data["digest"] else ""
        version_line = f"{entry['version']}  {short(entry['digest'])}  {local_time(entry['time'])}"
        rows.append(("versions", version_line + mark))
    rows += [("stage", f"{s} -> {short(d)}") for s, d in data["stages"].items()]
    if data["tags"]:
        rows.append(("tags", " ".join(data["tags"])))
    return _fields(rows)


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


def runs_text(runs: list[dict[str, Any]]) -> str:
    """``lineage runs``: one line per run."""
    if not runs:
        return "no runs match"
    rows = [
        (short(r["digest"]), local_time(r["started"]), r["op"], r["status"],
         duration_text(r["duration"]), _pairs(r["metrics"]))
        for r in runs
    ]
    return table(rows, ("RUN", "STARTED", "OP", "STATUS", "DURATION", "METRICS"))


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
    orphaned = report.get("orphaned_bytes", 0)
    left = (f"; {format_bytes(orphaned)} in packs left by failed or interrupted adds"
            if orphaned else "")
    if report["dry_run"]:
        return (f"would remove {_contents(report)}{left} (dry run; pass --yes to remove "
                "them)")
    return f"removed {_contents(report)}{left}; freed {format_bytes(report['bytes_freed'])}"
