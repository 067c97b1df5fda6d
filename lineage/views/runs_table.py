"""Runs as a table and side by side, as MLflow users compare them.

- :func:`runs_frame`: runs as a pandas DataFrame whose columns are named as
  ``mlflow.search_runs`` names them (``params.C``, ``metrics.sensitivity``), with the test
  set the metrics were measured on and the inputs by name;
- :func:`compare_runs`: a few runs side by side (:class:`RunComparison`): the params that
  differ first, then those they share, and each metric with its delta from the first run
  and the test set it was measured on; :meth:`RunComparison.plot` draws a metric against a
  param (matplotlib, the optional extra ``lineage[plots]``).

Values are kept as logged: a param ``1.0`` stays the float ``1.0`` (and prints so), never
the int ``1``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lineage.core.hashing import Digest
from lineage.core.plain import (
    identical,
    is_number,
    iso_time,
    jsonable,
    metric_order,
    number_text,
    value_text,
)
from lineage.core.records import Artifact, Run
from lineage.errors import InvalidQuery, MissingDependency, RecordTypeError
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.schema import EDGE_GENERATED, upstream
from lineage.views.query import resolve_digest

if TYPE_CHECKING:
    import pandas

__all__ = ["ComparedRun", "MetricRow", "ParamRow", "RunComparison", "compare_runs",
           "runs_frame", "test_sets"]

def _label(labels: VersionLabels, txn: ReadTxn, digest: Digest) -> str:
    """``name@version`` (or the name, or a short digest) of an artifact."""
    if schema.raw_record(txn, digest) is None:
        return digest.hex()[:12]
    record = labels.label(schema.read_record(txn, digest))
    if isinstance(record, Artifact) and record.name:
        return f"{record.name}@{record.version}" if record.version else record.name
    return record.digest[:12]


def test_sets(txn: ReadTxn, run: Run, labels: VersionLabels | None = None) -> dict[str, str]:
    """The label of the test set each metric of ``run`` was measured on, by metric."""
    labels = labels or VersionLabels(txn)
    return {metric: _label(labels, txn, digest)
            for metric, digest in sorted(run.metric_datasets.items())}


def _one_test_set(found: dict[str, str]) -> str | None:
    """The test set of a run's metrics: one label, several joined, or ``None``."""
    unique = sorted(set(found.values()))
    return ", ".join(unique) if unique else None


def runs_frame(txn: ReadTxn, runs: Sequence[Run]) -> pandas.DataFrame:
    """``runs`` as a DataFrame, one row per run in the order given.

    Columns: ``run`` (digest), ``run_id``, ``op``, ``label``, ``status``, ``start_time``
    and ``end_time`` (UTC timestamps), ``duration`` (seconds), ``test_set`` (the test
    set(s) the metrics were measured on), then ``inputs.<name>`` (``name@version`` of
    each input), ``params.<name>`` and ``metrics.<name>`` as ``mlflow.search_runs`` names
    them. A param a run lacks is missing (``None``/``NaN``); param values keep their type.

    Raises:
        MissingDependency: pandas is not installed.
    """
    try:
        import pandas
    except ImportError:
        raise MissingDependency("a table of runs needs pandas: pip install 'lineage[pandas]'"
                                ) from None
    labels = VersionLabels(txn)
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run": run.digest, "run_id": run.id, "op": run.op, "label": run.label,
            "status": run.status,
            "start_time": pandas.Timestamp(run.started, unit="s", tz="UTC"),
            "end_time": pandas.Timestamp(run.ended, unit="s", tz="UTC"),
            "duration": run.duration,
            "test_set": _one_test_set(test_sets(txn, run, labels)),
        }
        row.update({f"inputs.{k}": _label(labels, txn, d) for k, d in sorted(run.inputs.items())})
        row.update({f"params.{k}": v for k, v in sorted(run.params.items())})
        row.update({f"metrics.{k}": v for k, v in sorted(run.metrics.items(),
                                                          key=lambda kv: metric_order(kv[0]))})
        rows.append(row)
    fixed = ["run", "run_id", "op", "label", "status", "start_time", "end_time", "duration",
             "test_set"]
    names = {c for row in rows for c in row}
    groups = [sorted(c for c in names if c.startswith(p)) for p in ("inputs.", "params.")]
    metrics = sorted((c for c in names if c.startswith("metrics.")),
                     key=lambda c: metric_order(c[len("metrics."):]))
    data = {}
    for column in fixed + groups[0] + groups[1] + metrics:
        values = [row.get(column) for row in rows]
        kinds = {type(v) for v in values if v is not None}
        mixed = column.startswith("params.") and len(kinds) > 1  # 1 and 1.0: never coerced
        data[column] = pandas.Series(values, dtype=object if mixed else None)
    return pandas.DataFrame(data, columns=fixed + groups[0] + groups[1] + metrics)


# -- side by side ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ComparedRun:
    """One run of a comparison: what identifies it, and its inputs by name."""

    digest: str
    op: str
    label: str | None
    status: str
    started: float
    inputs: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"digest", "op", "label", "status", "started", "inputs": {name: label}}``."""
        return {"digest": self.digest, "op": self.op, "label": self.label,
                "status": self.status, "started": iso_time(self.started),
                "inputs": dict(self.inputs)}


@dataclass(frozen=True, slots=True)
class ParamRow:
    """A param across the runs: ``values`` (``None`` where ``present`` is false)."""

    name: str
    values: tuple[Any, ...]
    present: tuple[bool, ...]
    differs: bool

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "values", "present", "differs"}``."""
        return {"name": self.name, "values": jsonable(self.values),
                "present": list(self.present), "differs": self.differs}


@dataclass(frozen=True, slots=True)
class MetricRow:
    """A metric across the runs, its ``deltas`` from the first run (``None`` for the first
    run and where a side lacks it) and the test set each value was measured on.
    ``comparable`` is false when the runs measured it on different (or unrecorded) sets."""

    name: str
    values: tuple[float | None, ...]
    deltas: tuple[float | None, ...]
    test_sets: tuple[str | None, ...]

    @property
    def comparable(self) -> bool:
        """Whether every value was measured on one recorded test set."""
        present = [t for v, t in zip(self.values, self.test_sets, strict=True) if v is not None]
        return bool(present) and None not in present and len(set(present)) == 1

    def to_dict(self) -> dict[str, Any]:
        """``{"name", "values", "deltas", "test_sets", "comparable"}``."""
        return {"name": self.name, "values": jsonable(self.values),
                "deltas": jsonable(self.deltas), "test_sets": list(self.test_sets),
                "comparable": self.comparable}


@dataclass(frozen=True, slots=True)
class RunComparison:
    """Runs side by side; the first is the baseline deltas are measured from."""

    runs: tuple[ComparedRun, ...]
    params: tuple[ParamRow, ...]
    metrics: tuple[MetricRow, ...]

    def to_dict(self) -> dict[str, Any]:
        """``{"runs": [run], "params": [param], "metrics": [metric]}`` (JSON-safe; params
        that differ first; see :class:`ComparedRun`, :class:`ParamRow`, :class:`MetricRow`)."""
        return {"runs": [r.to_dict() for r in self.runs],
                "params": [p.to_dict() for p in self.params],
                "metrics": [m.to_dict() for m in self.metrics]}

    def __str__(self) -> str:
        return self.to_text()

    def to_text(self, width: int = 18) -> str:
        """The runs as columns (cells cut at ``width`` characters): identity, inputs, the
        params that differ, the params they share, then metrics with deltas and test sets."""
        def cut(text: str) -> str:
            return text if len(text) <= width else text[:width - 1] + "…"

        rows: list[list[str]] = [["run", *(r.digest[:12] for r in self.runs)],
                                 ["op", *(cut(r.op) for r in self.runs)]]
        if any(r.label for r in self.runs):
            rows.append(["label", *(cut(r.label or "-") for r in self.runs)])
        rows.append(["status", *(r.status for r in self.runs)])
        for name in sorted({n for r in self.runs for n, _ in r.inputs}):
            rows.append([f"input {name}", *(cut(dict(r.inputs).get(name, "-"))
                                            for r in self.runs)])
        for title, differs in (("params that differ", True), ("params shared", False)):
            chosen = [p for p in self.params if p.differs is differs]
            if chosen:
                rows.append([title])
                rows += [[f"  {p.name}", *(cut(value_text(v)) if here else "-"
                                           for v, here in zip(p.values, p.present, strict=True))]
                         for p in chosen]
        if self.metrics:
            sets = {t for m in self.metrics for t in m.test_sets if t is not None}
            one = all(m.comparable for m in self.metrics) and len(sets) == 1
            rows.append([f"metrics on {next(iter(sets))}" if one else "metrics"])
            for m in self.metrics:
                cells = []
                for i, (value, delta, test) in enumerate(zip(m.values, m.deltas, m.test_sets,
                                                             strict=True)):
                    text = "-" if value is None else number_text(value, 4)
                    if i and delta is not None:
                        text += " (=)" if delta == 0 else (
                            f" ({'+' if delta > 0 else '−'}{number_text(abs(delta), 3)})")
                    if not one and value is not None:
                        text += f" on {test}" if test else " (no test set)"
                    cells.append(text)
                rows.append([f"  {m.name}", *cells])
            if not all(m.comparable for m in self.metrics):
                rows.append(["note: some metrics were measured on different or unrecorded "
                             "test sets: their deltas are not directly comparable"])
        widths = [max(len(r[i]) for r in rows if len(r) > 1 and i < len(r))
                  for i in range(len(self.runs) + 1)]
        return "\n".join("  ".join(c.ljust(widths[i]) for i, c in enumerate(row)).rstrip()
                         if len(row) > 1 else row[0] for row in rows)

    def plot(self, path: str | os.PathLike[str], *, x: str | None = None,
             y: str | None = None) -> Path:
        """Draw metric ``y`` against param ``x`` across the runs and save it to ``path``
        (its suffix picks the format: .png, .svg, .pdf); return the path.

        ``x`` defaults to the first param that differs and is a number in every run, ``y``
        to the first metric every run has (clinical metrics first). A param spanning two
        orders of magnitude or more (``C``) is drawn on a log scale. Each point is labelled
        with its run's label or short digest; the test set is named on the axis (or the
        title warns that the runs used different ones).

        Raises:
            MissingDependency: matplotlib is not installed.
            InvalidQuery: no param or metric fits, or ``x``/``y`` is not one.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError:
            raise MissingDependency("plotting needs matplotlib: pip install 'lineage[plots]'"
                                    ) from None
        param, metric = self._axes(x, y)
        points = sorted((float(v), m, run) for v, m, run, here in zip(
            param.values, metric.values, self.runs, param.present, strict=True)
            if here and m is not None)
        figure = Figure(figsize=(6.4, 4.2), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.add_subplot()
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        axes.plot(xs, ys, marker="o", linestyle="-", color="#1f77b4")
        for px, py, run in points:
            axes.annotate(run.label or run.digest[:8], (px, py), textcoords="offset points",
                          xytext=(4, 4), fontsize=8)
        if min(xs) > 0 and max(xs) / min(xs) >= 100:
            axes.set_xscale("log")
        sets = {t for t in metric.test_sets if t is not None}
        axes.set_xlabel(f"param {param.name}")
        axes.set_ylabel(f"{metric.name}" + (f" on {next(iter(sets))}"
                                            if metric.comparable else ""))
        title = f"{metric.name} against {param.name} ({len(points)} runs)"
        if not metric.comparable:
            title += "\nmeasured on different or unrecorded test sets: not directly comparable"
        axes.set_title(title, fontsize=10)
        axes.grid(True, alpha=0.3)
        target = Path(path)
        figure.savefig(target)
        return target

    def _axes(self, x: str | None, y: str | None) -> tuple[ParamRow, MetricRow]:
        numeric = [p for p in self.params if all(is_number(v) and math.isfinite(v)
                                                 for v, here in zip(p.values, p.present,
                                                                    strict=True) if here)
                   and any(p.present)]
        if x is None:
            choices = [p for p in numeric if p.differs] or numeric
            if not choices:
                raise InvalidQuery("no param is a number in these runs; nothing to plot "
                                   "against (give --x PARAM)")
            param = choices[0]
        else:
            param = next((p for p in numeric if p.name == x), None)  # type: ignore[assignment]
            if param is None:
                known = ", ".join(p.name for p in numeric) or "none"
                raise InvalidQuery(f"param {x!r} is not a number in every run that has it "
                                   f"(numeric params: {known})")
        complete = [m for m in self.metrics if all(v is not None for v in m.values)]
        if y is None:
            if not complete:
                raise InvalidQuery("no metric is recorded in every one of these runs")
            return param, complete[0]
        metric = next((m for m in self.metrics if m.name == y), None)
        if metric is None:
            known = ", ".join(m.name for m in self.metrics) or "none"
            raise InvalidQuery(f"metric {y!r} is not recorded in these runs (metrics: {known})")
        return param, metric


def resolve_runs(txn: ReadTxn, revisions: Sequence[str | Digest | Artifact | Run]
                 ) -> list[Run]:
    """The runs ``revisions`` name; a revision naming an artifact stands for the run that
    made it (the latest successful one).

    Raises:
        RecordTypeError: an artifact was made by no recorded run.
        RevisionNotFound, AmbiguousRevision, InvalidRevision: as for ``Store.resolve``.
    """
    found = []
    for revision in revisions:
        record = revision if isinstance(revision, Artifact | Run) else schema.read_record(
            txn, resolve_digest(txn, revision))
        if isinstance(record, Artifact):
            makers = [r for _e, d in upstream(txn, record.raw_digest, EDGE_GENERATED)
                      if isinstance(r := schema.read_record(txn, d), Run)]
            if not makers:
                raise RecordTypeError(f"{revision!r} names an artifact no recorded run made; "
                                      "give runs (digests from `lineage runs`)")
            record = max(makers, key=lambda r: (r.status == "ok", r.started, r.digest))
        found.append(record)
    return found


def compare_runs(txn: ReadTxn, runs: Sequence[Run]) -> RunComparison:
    """``runs`` side by side (see :class:`RunComparison`); the first is the baseline.

    Raises:
        InvalidQuery: fewer than two runs, or one run given twice.
    """
    if len(runs) < 2:
        raise InvalidQuery("compare needs two runs or more")
    if len({r.raw_digest for r in runs}) != len(runs):
        raise InvalidQuery("the same run is given twice")
    labels = VersionLabels(txn)
    compared = tuple(ComparedRun(
        r.digest, r.op, r.label, r.status, r.started,
        tuple((k, _label(labels, txn, d)) for k, d in sorted(r.inputs.items())))
        for r in runs)
    params = []
    for name in sorted({k for r in runs for k in r.params}):
        present = tuple(name in r.params for r in runs)
        values = tuple(r.params.get(name) for r in runs)
        differs = not all(here == present[0] and (not here or identical(v, values[0]))
                          for v, here in zip(values, present, strict=True))
        params.append(ParamRow(name, values, present, differs))
    params.sort(key=lambda p: (not p.differs, p.name))
    sets = [test_sets(txn, r, labels) for r in runs]
    metrics = []
    for name in sorted({k for r in runs for k in r.metrics}, key=metric_order):
        values = tuple(r.metrics.get(name) for r in runs)
        base = values[0]
        deltas = tuple(None if i == 0 or v is None or base is None else v - base
                       for i, v in enumerate(values))
        metrics.append(MetricRow(name, values, deltas, tuple(s.get(name) for s in sets)))
    return RunComparison(compared, tuple(params), tuple(metrics))
