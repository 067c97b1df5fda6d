"""The audit report: everything a reviewer needs about one model, read from the store alone.

:func:`report_data` gathers, into one JSON-safe dict, the sections a reviewer reads without
the code: the model's identity and intended use; the data in its lineage (origin, selection,
preprocessing, known biases, rows, class balance, missing values); the training set-up (run,
params, code, hyperparameters, environment); each evaluation in context (test set and its
population, metrics with Wilson intervals, subgroups, calibration) and the train/test
independence check; feature importances; what changed from the previous version; the
registry history with overrides; lint findings; and integrity (the verify result and the
event-log head). :mod:`lineage.audit.render` turns it into Markdown or one self-contained
HTML file.

The same store state gives the same bytes: nothing depends on the clock (the report is
dated by the store's last event, or by the moment of a point-in-time view), and every list
is in a defined order.
"""

from __future__ import annotations

from typing import Any, Final

from lineage.audit.gates import check_promotion
from lineage.core.hashing import Digest
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run
from lineage.errors import LineageError
from lineage.refs import registry
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import iter_blob
from lineage.storage.events import verify_chain
from lineage.storage.schema import EDGE_GENERATED
from lineage.views.describe import record_label
from lineage.views.evaluations import evaluations_of
from lineage.views.lint import lint
from lineage.views.query import ancestors

__all__ = ["SMALL_SUBGROUP", "report_data"]

#: subgroups smaller than this are flagged when no stage policy sets a minimum
SMALL_SUBGROUP: Final = 30
_TOP_FEATURES: Final = 20
_NOTE_KEYS: Final = ("origin", "selection", "preprocessing", "biases", "known_biases")


def report_data(txn: ReadTxn, backend: Backend, model: Artifact, *,
                moment: float | None = None) -> dict[str, Any]:
    """Every section of the report on ``model`` (see the module docstring), JSON-safe.

    ``moment`` dates a point-in-time report. Integrity re-hashes every record and every
    stored content in the model's lineage (not the whole store: the report's cost follows
    the lineage) and checks the event log's chain.
    """
    labels = VersionLabels(txn)
    model = _labelled(labels, model)
    lineage = [labels.label(r) for r in ancestors(txn, model)]
    maker = _maker(txn, model)
    chain = verify_chain(txn)
    last = schema.last_event(txn)
    dated = moment if moment is not None else (
        schema.event_time(txn, last[0]) if last is not None else None)
    data: dict[str, Any] = jsonable({
        "title": f"Audit report: {record_label(model)}",
        "as_of": iso_time(dated) if dated is not None else None,
        "point_in_time": moment is not None,
        "model": _identity(txn, model, maker),
        "data": _data(txn, model, lineage, maker),
        "setup": _setup(model, maker, lineage),
        "evaluations": _evaluations(txn, model),
        "checks": [c.to_dict() for c in check_promotion(txn, backend, model, "production")],
        "importances": _importances(model),
        "history": _history(txn, model),
        "lint": [f.to_dict() for f in lint(txn) if f.digest in
                 {r.digest for r in lineage} | {model.digest}],
        "previous": _previous(txn, model),
        "integrity": {"verify": _verify_lineage(txn, backend, [model, *lineage]),
                      "events": chain.events, "event_head": chain.head,
                      "chain_ok": not chain.problems},
    })
    return data


def _labelled(labels: VersionLabels, artifact: Artifact) -> Artifact:
    found = labels.label(artifact)
    return found if isinstance(found, Artifact) else artifact


def _maker(txn: ReadTxn, model: Artifact) -> Run | None:
    """The run that made ``model`` (the newest ok one when several recorded it)."""
    runs = [r for _e, d in schema.upstream(txn, model.raw_digest, EDGE_GENERATED)
            if isinstance(r := schema.read_record(txn, d), Run)]
    return max(runs, key=lambda r: (r.status == "ok", r.started, r.digest), default=None)


def _identity(txn: ReadTxn, model: Artifact, maker: Run | None) -> dict[str, Any]:
    entries = registry.history(txn, model.name) if model.name else []
    made = next((e for e in entries if e.ref == "version" and e.target == model.raw_digest),
                None)
    held = sorted(stage for stage, target in registry.stages(txn, model.name or "").items()
                  if target == model.raw_digest)
    meta = dict(model.meta)
    return {
        "label": record_label(model), "name": model.name, "version": model.version,
        "digest": model.digest, "class": model.summary.get("class"),
        "format": model.format, "size": model.size, "stages": held,
        "intended_use": meta.pop("intended_use", None), "meta": meta,
        "registered_by": made.user if made else None,
        "registered_at": iso_time(made.time) if made else None,
        "run": None if maker is None else {
            "op": maker.op, "digest": maker.digest, "status": maker.status,
            "started": iso_time(maker.started), "ended": iso_time(maker.ended),
            "label": maker.label},
    }


def _data(txn: ReadTxn, model: Artifact, lineage: list[Artifact | Run],
          maker: Run | None) -> list[dict[str, Any]]:
    test_sets = {e.test_set.digest for e in evaluations_of(txn, model.raw_digest)
                 if e.test_set is not None}
    inputs = set() if maker is None else {d.hex() for d in maker.inputs.values()}
    tables = [r for r in lineage if isinstance(r, Artifact) and (r.kind == "dataset"
                                                                  or "rows" in r.summary)]
    # a DataFrame loaded from a named dataset and passed to a step has the same rows (the
    # same identity): it is that dataset, not another one to document
    named = {r.summary.get("identity") for r in tables if r.name and r.version}
    rows = []
    for record in tables:
        if not (record.name and record.version) and record.summary.get("identity") in named:
            continue
        summary = record.summary
        derived = bool(schema.upstream(txn, record.raw_digest, EDGE_GENERATED)) or bool(
            record.parents)
        role = ("test set" if record.digest in test_sets else
                "training input" if record.digest in inputs else
                "derived table" if derived else "source")
        missing = summary.get("missing") or {}
        label = record_label(record)
        if not record.name:
            makers = [m for _e, d in schema.upstream(txn, record.raw_digest, EDGE_GENERATED)
                      if isinstance(m := schema.read_record(txn, d), Run)]
            if makers:
                label = f"output of {min(m.op for m in makers)} ({record.digest[:12]})"
        rows.append({
            "label": label, "digest": record.digest, "role": role,
            "notes": {k: record.meta[k] for k in _NOTE_KEYS if record.meta.get(k)},
            "rows": summary.get("rows"), "columns": len(summary.get("columns") or []),
            "class_distribution": summary.get("class_distribution"),
            "missing": sum(v for v in missing.values() if isinstance(v, int)),
            "missing_columns": sorted(k for k, v in missing.items()
                                      if isinstance(v, int) and v),
        })
    order = {"training input": 0, "source": 1, "test set": 2, "derived table": 3}
    return sorted(rows, key=lambda r: (order[r["role"]], r["label"]))


def _setup(model: Artifact, maker: Run | None, lineage: list[Artifact | Run]
           ) -> dict[str, Any]:
    code = [r for r in lineage if isinstance(r, Artifact) and r.kind == "code"]
    environments = [r for r in lineage if isinstance(r, Artifact) and r.kind == "environment"]
    environment = environments[0].summary.get("value") if environments else None
    steps = sorted({r.op for r in lineage if isinstance(r, Run)})
    return {
        "run": None if maker is None else {"op": maker.op, "params": maker.params,
                                           "digest": maker.digest},
        "steps": steps,
        "hyperparameters": model.summary.get("params") or {},
        "code": [{"qualname": c.summary.get("qualname"), "module": c.summary.get("module"),
                  "digest": c.digest, "source": c.summary.get("source") or ""}
                 for c in sorted(code, key=lambda c: (str(c.summary.get("qualname")), c.digest))],
        "environment": environment if isinstance(environment, dict) else None,
    }


def _evaluations(txn: ReadTxn, model: Artifact) -> list[dict[str, Any]]:
    return [evaluation_facts(e.artifact, record_label(e.artifact), e.run.op, e.test_set_label,
                             e.registered) for e in evaluations_of(txn, model.raw_digest)]


def evaluation_facts(artifact: Artifact, label: str, run: str, test_set: str,
                     registered: bool) -> dict[str, Any]:
    """An evaluation artifact as the report shows it (JSON-safe): its figures with the test
    set, population, intervals, subgroups and calibration they belong to."""
    summary = artifact.summary
    return {
        "label": label, "digest": artifact.digest, "run": run, "test_set": test_set,
        "registered": registered, "task": summary.get("task", "binary"),
        "population": summary.get("population") or {},
        "metrics": summary.get("metrics") or {}, "intervals": summary.get("intervals") or {},
        "confusion_matrix": summary.get("confusion_matrix"),
        "labels": summary.get("labels"), "per_class": summary.get("per_class"),
        "subgroups": summary.get("subgroups") or {},
        "calibration": summary.get("calibration") or [],
        "positive_label": summary.get("positive_label"),
        "threshold": summary.get("threshold"),
    }


def _importances(model: Artifact) -> dict[str, Any] | None:
    summary = model.summary
    for key, kind in (("feature_importances", "feature_importances_"), ("coef", "coef_")):
        values = summary.get(key)
        if isinstance(values, dict) and values:
            numbers = {str(k): v for k, v in values.items() if isinstance(v, int | float)}
            top = sorted(numbers.items(), key=lambda kv: (-abs(kv[1]), kv[0]))[:_TOP_FEATURES]
            return {"source": kind, "top": [[name, value] for name, value in top],
                    "total": summary.get("features_total") or len(numbers)}
    return None


def _history(txn: ReadTxn, model: Artifact) -> list[dict[str, Any]]:
    if not model.name:
        return []
    return [{**entry.to_dict(), "this_model": entry.target == model.raw_digest}
            for entry in registry.history(txn, model.name)]


def _previous(txn: ReadTxn, model: Artifact) -> dict[str, Any] | None:
    """The version before this one under the same name, for the diff section."""
    if not model.name:
        return None
    entries = list(schema.versions(txn, model.name))
    mine = [i for i, e in enumerate(entries) if e.target == model.raw_digest]
    if not mine or mine[0] == 0:
        return None
    before = entries[mine[0] - 1]
    return {"label": f"{model.name}@{before.version}", "digest": Digest(before.target).hex()}


def _verify_lineage(txn: ReadTxn, backend: Backend, records: list[Artifact | Run]
                    ) -> dict[str, Any]:
    """Re-hash each record of the lineage and each content blob it names."""
    problems: list[str] = []
    blobs = 0
    size = 0
    for record in records:
        try:
            schema.read_record(txn, record.raw_digest)
        except LineageError as exc:
            problems.append(str(exc))
            continue
        if isinstance(record, Artifact) and record.blob is not None:
            blobs += 1
            try:
                size += sum(len(part) for part in iter_blob(backend, txn, record.blob))
            except LineageError as exc:
                problems.append(f"{record_label(record)}: {exc}")
    return {"ok": not problems, "records": len(records), "blobs": blobs, "bytes": size,
            "problems": problems}
