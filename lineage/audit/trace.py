"""From a prediction back to its data (:func:`trace`), and from a dataset forward to what it
reached (:func:`impact`).

A trace reads, for a prediction set (and optionally one row of it): the model that made it
and the stage it held when the prediction was made (replayed from the registry history, so
a prediction made before a promotion traces to the model that made it, under the stage it
held then); the model's training run (op, params, code, environment); the datasets in its
lineage with their documentation; their sources; and, for a row, whether that input row was
in the model's training data (its fingerprint looked up in the training data, fingerprinted
the same way). An impact groups everything downstream of a dataset: runs, models with the
stages they hold, prediction sets, derived datasets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lineage.core.hashing import Digest
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run
from lineage.diff.data import load_frame
from lineage.errors import RecordTypeError, RevisionNotFound
from lineage.refs import registry
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.schema import EDGE_GENERATED
from lineage.views.describe import record_label
from lineage.views.query import ancestors, descendants

__all__ = ["Impact", "Trace", "impact", "trace"]


@dataclass(frozen=True, slots=True)
class Trace:
    """The chain from a prediction to its data (see the module docstring); ``to_dict()`` is
    JSON-safe, ``str()`` reads as sentences, ``to_markdown()`` as a short report."""

    prediction: dict[str, Any]
    row: dict[str, Any] | None
    model: dict[str, Any]
    training_run: dict[str, Any] | None
    datasets: list[dict[str, Any]] = field(default_factory=list)
    in_training: bool | None = None
    finding: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The trace as JSON-safe data."""
        data: dict[str, Any] = jsonable({
            "prediction": self.prediction, "row": self.row, "model": self.model,
            "training_run": self.training_run, "datasets": self.datasets,
            "in_training": self.in_training, "finding": self.finding})
        return data

    def lines(self) -> list[str]:
        """The trace as lines a reviewer reads top to bottom."""
        p, m, r = self.prediction, self.model, self.training_run
        out = [f"prediction set {p['label']} ({p['rows']} rows, made {p['made_at']})"]
        if self.row is not None:
            score = f", score {self.row['score']:.3f}" if self.row.get("score") is not None \
                else ""
            out.append(f"  row {self.row['id']}: predicted {self.row['prediction']!r}{score}")
        then = ", ".join(m["stages_then"]) or "no stage"
        now = ", ".join(m["stages_now"]) or "no stage"
        out.append(f"→ made by model {m['label']} ({m['digest'][:12]}), which held {then} "
                   f"then ({now} now)")
        if r is not None:
            params = ", ".join(f"{k}={v!r}" for k, v in sorted(r["params"].items()))
            out.append(f"→ trained by run {r['op']} ({r['digest'][:12]}, {r['started']})"
                       + (f" with {params}" if params else ""))
            out += [f"    code {c}" for c in r["code"]]
            if r["environment"]:
                out.append(f"    environment {r['environment']}")
        for dataset in self.datasets:
            notes = "; ".join(f"{k}: {v}" for k, v in dataset["notes"].items()) or \
                "no origin or bias notes recorded"
            out.append(f"→ {dataset['role']} {dataset['label']} ({notes})")
        if self.finding:
            out.append(self.finding)
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_markdown(self) -> str:
        """The trace as a Markdown list."""
        return "\n".join(["## Trace", "", *(f"- {line.strip()}" for line in self.lines())]) + "\n"


@dataclass(frozen=True, slots=True)
class Impact:
    """What a dataset reached, grouped: ``runs``, ``models`` (with the stages they hold),
    ``stages`` (``name@stage`` now pointing at an affected model), ``predictions``,
    ``datasets`` (derived) and ``other`` artifacts."""

    source: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    stages: list[str] = field(default_factory=list)
    predictions: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)
    other: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The impact as JSON-safe data."""
        data: dict[str, Any] = jsonable({
            "source": self.source, "runs": self.runs, "models": self.models,
            "stages": self.stages, "predictions": self.predictions, "datasets": self.datasets,
            "other": self.other})
        return data

    def lines(self) -> list[str]:
        """The impact as lines a reviewer reads."""
        out = [f"{self.source['label']} reached:"]
        if self.stages:
            out.append(f"  stages: {', '.join(self.stages)}")
        for model in self.models:
            held = f" (holds {', '.join(model['stages'])})" if model["stages"] else ""
            out.append(f"  model {model['label']}{held}")
        out += [f"  prediction set {p['label']} ({p['rows']} rows by {p['model']})"
                for p in self.predictions]
        out += [f"  run {r['op']} {r['status']} ({r['digest'][:12]}, {r['started']})"
                for r in self.runs]
        out += [f"  dataset {d['label']}" for d in self.datasets]
        out += [f"  {a['kind']} {a['label']}" for a in self.other]
        return out if len(out) > 1 else [f"{self.source['label']} reached nothing downstream"]

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def to_markdown(self) -> str:
        """The impact as a Markdown list."""
        return "\n".join(["## Impact", "", *(f"- {line.strip()}" for line in self.lines())]) \
            + "\n"


def _stages_at(txn: ReadTxn, model: Artifact, when: float) -> list[str]:
    """The stages of ``model``'s name that pointed at it at ``when``."""
    held: dict[str, Digest | None] = {}
    for entry in registry.history(txn, model.name or ""):
        if entry.time > when:
            break
        if entry.ref == "stage":
            held[entry.key] = entry.target
    return sorted(stage for stage, target in held.items() if target == model.raw_digest)


def trace(txn: ReadTxn, backend: Backend, predictions: Artifact, *,
          row: str | None = None) -> Trace:
    """The trace of a prediction set (see the module docstring).

    Raises:
        RecordTypeError: ``predictions`` is not a prediction set.
        RevisionNotFound: ``row`` is not an id of the set, or the model is gone.
    """
    if predictions.kind != "predictions" or "model" not in predictions.summary:
        raise RecordTypeError(f"{record_label(predictions)} is a {predictions.kind}, not a "
                              "prediction set (log one with run.log_predictions)")
    labels = VersionLabels(txn)
    summary = predictions.summary
    model = labels.label(schema.read_record(txn, Digest(summary["model"])))
    if not isinstance(model, Artifact):
        raise RecordTypeError("the prediction set names a run as its model")
    made_at = float(summary.get("made_at") or 0.0)
    found_row = _row(txn, backend, predictions, row) if row is not None else None
    maker = _maker(txn, model)
    datasets = _datasets(txn, model, maker, labels)
    in_training, finding = None, ""
    if found_row is not None:
        in_training, finding = _membership(txn, backend, found_row, summary, datasets)
    return Trace(
        prediction={"label": record_label(predictions), "digest": predictions.digest,
                    "rows": summary.get("rows"), "made_at": iso_time(made_at)},
        row=found_row and {k: v for k, v in found_row.items() if k != "fingerprint"},
        model={"label": record_label(model), "digest": model.digest,
               "stages_then": _stages_at(txn, model, made_at),
               "stages_now": sorted(s for s, d in registry.stages(txn, model.name or "").items()
                                    if d == model.raw_digest) if model.name else []},
        training_run=None if maker is None else _run_facts(txn, maker, model),
        datasets=[{k: v for k, v in d.items() if k != "artifact"} for d in datasets],
        in_training=in_training, finding=finding)


def _row(txn: ReadTxn, backend: Backend, predictions: Artifact, row: str) -> dict[str, Any]:
    table = load_frame(backend, txn, predictions)
    if table is None:
        raise RevisionNotFound(f"cannot read the rows of {record_label(predictions)}")
    matches = table[table["id"].astype(str) == str(row)]
    if matches.empty:
        shown = ", ".join(map(str, table["id"].head(3).tolist()))
        raise RevisionNotFound(f"no row {row!r} in {record_label(predictions)} (ids look like "
                               f"{shown}, ...)")
    first = matches.iloc[0]
    score = first.get("score")
    return {"id": str(first["id"]), "prediction": _plain(first["prediction"]),
            "score": None if score is None else float(score),
            "fingerprint": int(first["input_fingerprint"])}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _maker(txn: ReadTxn, model: Artifact) -> Run | None:
    runs = [r for _e, d in schema.upstream(txn, model.raw_digest, EDGE_GENERATED)
            if isinstance(r := schema.read_record(txn, d), Run)]
    return max(runs, key=lambda r: (r.status == "ok", r.started, r.digest), default=None)


def _run_facts(txn: ReadTxn, run: Run, model: Artifact) -> dict[str, Any]:
    lineage = ancestors(txn, model)
    code = sorted(f"{a.summary.get('qualname')} ({a.digest[:12]})" for a in lineage
                  if isinstance(a, Artifact) and a.kind == "code")
    environment = None
    if run.environment is not None:
        env = schema.read_record(txn, run.environment)
        value = env.summary.get("value") if isinstance(env, Artifact) else None
        if isinstance(value, dict):
            environment = f"Python {value.get('python')} on {value.get('platform')}"
    return {"op": run.op, "digest": run.digest, "started": iso_time(run.started),
            "params": run.params, "code": code, "environment": environment}


def _datasets(txn: ReadTxn, model: Artifact, maker: Run | None,
              labels: VersionLabels) -> list[dict[str, Any]]:
    inputs = set() if maker is None else set(maker.inputs.values())
    test_sets = set() if maker is None else set(maker.metric_datasets.values())
    found = []
    for record in ancestors(txn, model, kind="dataset"):
        if not isinstance(record, Artifact) or not (record.name and record.version):
            continue
        derived = bool(schema.upstream(txn, record.raw_digest, EDGE_GENERATED))
        role = "test set" if record.raw_digest in test_sets else (
            "training dataset" if record.raw_digest in inputs else (
                "derived dataset" if derived else "source dataset"))
        notes = {k: record.meta[k] for k in ("origin", "selection", "biases")
                 if record.meta.get(k)}
        found.append({"label": record_label(labels.label(record)), "digest": record.digest,
                      "role": role, "notes": notes, "artifact": record})
    order = {"training dataset": 0, "source dataset": 1, "derived dataset": 2, "test set": 3}
    return sorted(found, key=lambda d: (order[d["role"]], d["label"]))


def _membership(txn: ReadTxn, backend: Backend, row: dict[str, Any], summary: dict[str, Any],
                datasets: list[dict[str, Any]]) -> tuple[bool | None, str]:
    """Whether the row's input was in a training dataset, as a verdict and a sentence."""
    from lineage.adapters.pandas import row_fingerprints

    columns = [(str(c), str(t)) for c, t in summary.get("input_columns") or []]
    checked = []
    for dataset in datasets:
        if dataset["role"] != "training dataset":
            continue
        table = load_frame(backend, txn, dataset["artifact"])
        if table is None or not all(c in table.columns for c, _t in columns):
            continue
        try:
            subset = table[[c for c, _t in columns]].astype(dict(columns))
            prints = set(row_fingerprints(subset).tolist())
        except (ValueError, TypeError):
            continue
        checked.append(dataset["label"])
        if row["fingerprint"] in prints:
            return True, (f"row {row['id']}: its input WAS in the training data "
                          f"({dataset['label']}): the model had seen this case")
    if not checked:
        return None, (f"row {row['id']}: could not be checked against the training data "
                      "(no training table with the prediction's input columns)")
    return False, (f"row {row['id']}: its input was not in the training data "
                   f"({', '.join(checked)})")


def impact(txn: ReadTxn, source: Artifact) -> Impact:
    """What ``source`` reached downstream, grouped and named (see the module docstring)."""
    labels = VersionLabels(txn)
    result = Impact({"label": record_label(labels.label(source)), "digest": source.digest})
    for record in descendants(txn, source):
        if isinstance(record, Run):
            result.runs.append({"op": record.op, "status": record.status,
                                "digest": record.digest, "started": iso_time(record.started)})
        elif record.kind == "model":
            held = sorted(s for s, d in registry.stages(txn, record.name).items()
                          if d == record.raw_digest) if record.name else []
            result.models.append({"label": record_label(record), "digest": record.digest,
                                  "stages": held})
            result.stages.extend(f"{record.name}@{s}" for s in held)
        elif record.kind == "predictions":
            result.predictions.append({"label": record_label(record), "digest": record.digest,
                                       "rows": record.summary.get("rows"),
                                       "model": record.summary.get("model_label")})
        elif record.kind == "dataset":
            result.datasets.append({"label": record_label(record), "digest": record.digest})
        else:
            result.other.append({"label": record_label(record), "kind": record.kind,
                                 "digest": record.digest})
    result.runs.sort(key=lambda r: (r["started"], r["digest"]))
    result.stages.sort()
    return result
