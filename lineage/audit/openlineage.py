"""A lineage as OpenLineage run events (spec 2-0-2), one JSON object per line.

Each run gives a ``START`` event at its start time (its inputs, params, parent run) and a
``COMPLETE`` — or ``FAIL`` with the error — at its end time (its outputs and metrics).
``runId`` is a UUID derived from the run's digest (stable across exports); the job is the
run's op in the configured namespace; datasets are named ``name@version`` (or the digest) in
namespace ``lineage``, with a ``version`` facet holding the content digest and a ``schema``
facet for tables. Params and metrics go in custom run facets (``lineage_params``,
``lineage_metrics``) whose JSON Schemas ship beside the vendored spec.
"""

from __future__ import annotations

import uuid
from typing import Any, Final

from lineage._version import __version__
from lineage.audit.exports import Lineage, vendored_schema
from lineage.core.hashing import Digest
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run

__all__ = ["DATASET_NAMESPACE", "run_events", "run_uuid", "validate_events"]

DATASET_NAMESPACE: Final = "lineage"
SPEC: Final = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
PRODUCER: Final = f"https://pypi.org/project/lineage/{__version__}/"
_UUIDS: Final = uuid.UUID("6b1f2c9e-4f1d-5a57-9c3e-1e7a3c0b2d45")  # lineage's namespace
_FACETS: Final = "https://github.com/lineage-ml/lineage/blob/main/lineage/audit/schemas/"
_CORE_FACETS: Final = {
    "version": ("openlineage-DatasetVersionDatasetFacet.json", "DatasetVersionDatasetFacet"),
    "schema": ("openlineage-SchemaDatasetFacet.json", "SchemaDatasetFacet"),
    "parent": ("openlineage-ParentRunFacet.json", "ParentRunFacet"),
    "errorMessage": ("openlineage-ErrorMessageRunFacet.json", "ErrorMessageRunFacet"),
    "sourceCode": ("openlineage-SourceCodeJobFacet.json", "SourceCodeJobFacet"),
    "lineage_params": ("LineageParamsRunFacet.json", "LineageParamsRunFacet"),
    "lineage_metrics": ("LineageMetricsRunFacet.json", "LineageMetricsRunFacet"),
}


def run_uuid(run: Run) -> str:
    """The run's OpenLineage ``runId``: a UUID (version 5) of its digest."""
    return str(uuid.uuid5(_UUIDS, run.digest))


def _facet(key: str, **fields: Any) -> dict[str, Any]:
    filename, name = _CORE_FACETS[key]
    if filename.startswith("openlineage-"):
        schema = vendored_schema(filename)["$id"]
    else:
        schema = _FACETS + filename
    return {"_producer": PRODUCER, "_schemaURL": f"{schema}#/$defs/{name}", **fields}


def _dataset(artifact: Artifact) -> dict[str, Any]:
    if artifact.name and artifact.version:
        name = f"{artifact.name}@{artifact.version}"
    else:
        name = artifact.digest
    facets: dict[str, Any] = {"version": _facet(
        "version", datasetVersion=(artifact.blob or Digest(bytes(16))).hex())}
    columns = artifact.summary.get("columns")
    if isinstance(columns, list) and columns:
        facets["schema"] = _facet("schema", fields=[
            {"name": str(column[0]), "type": str(column[1])} for column in columns
            if isinstance(column, list) and len(column) == 2])
    return {"namespace": DATASET_NAMESPACE, "name": name, "facets": facets}


def run_events(lineage: Lineage, *, namespace: str = "lineage") -> list[dict[str, Any]]:
    """``START`` and ``COMPLETE``/``FAIL`` events of every run in ``lineage``, in start order."""
    artifacts = {a.raw_digest: a for a in lineage.artifacts}
    by_id = {r.id: r for r in lineage.runs}
    events = []
    for run in lineage.runs:
        job_facets: dict[str, Any] = {}
        code = artifacts.get(run.code) if run.code is not None else None
        if code is not None and code.summary.get("source"):
            job_facets["sourceCode"] = _facet("sourceCode", language="python",
                                              sourceCode=str(code.summary["source"]))
        job = {"namespace": namespace, "name": run.op, "facets": job_facets}
        run_facets: dict[str, Any] = {"lineage_params": _facet(
            "lineage_params", params=jsonable(run.params), op=run.op, label=run.label)}
        parent = by_id.get(run.parent or "")
        if parent is not None:
            run_facets["parent"] = _facet("parent", run={"runId": run_uuid(parent)},
                                          job={"namespace": namespace, "name": parent.op})
        inputs = [_dataset(artifacts[d]) for d in sorted(set(run.inputs.values()))
                  if d in artifacts]
        outputs = [_dataset(artifacts[d]) for d in sorted(set(run.outputs.values()))
                   if d in artifacts]
        events.append(_event("START", run, run.started, job, run_facets, inputs=inputs))
        end_facets = dict(run_facets)
        if run.metrics:
            measured = {metric: _dataset(artifacts[d])["name"] if d in artifacts else d.hex()
                        for metric, d in sorted(run.metric_datasets.items())}
            end_facets["lineage_metrics"] = _facet("lineage_metrics",
                                                   metrics=jsonable(run.metrics),
                                                   measuredOn=measured)
        if run.status == "ok":
            events.append(_event("COMPLETE", run, run.ended, job, end_facets, outputs=outputs))
        else:
            error = run.error or {}
            end_facets["errorMessage"] = _facet(
                "errorMessage", message=f"{error.get('type', 'Error')}: "
                                        f"{error.get('message', '')}", programmingLanguage="python")
            events.append(_event("FAIL", run, run.ended, job, end_facets, outputs=outputs))
    return events


def _event(kind: str, run: Run, when: float, job: dict[str, Any], facets: dict[str, Any], *,
           inputs: list[dict[str, Any]] | None = None,
           outputs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"eventType": kind, "eventTime": iso_time(when), "producer": PRODUCER,
            "schemaURL": f"{SPEC}#/$defs/RunEvent",
            "run": {"runId": run_uuid(run), "facets": facets}, "job": job,
            "inputs": inputs or [], "outputs": outputs or []}


def validate_events(events: list[Any]) -> list[str]:
    """Every violation of the OpenLineage 2-0-2 schema (and of each facet's own schema) in
    ``events``, as ``event N: path: message``; also a run without exactly one ``START`` and
    one ``COMPLETE``/``FAIL``."""
    import jsonschema
    from referencing import Registry, Resource

    documents = [vendored_schema(name) for name, _ in _CORE_FACETS.values()]
    documents.append(vendored_schema("openlineage-OpenLineage.json"))
    registry: Registry[Any] = Registry().with_resources(
        (doc.get("$id") or _FACETS + name, Resource.from_contents(doc))
        for doc, name in zip(documents, [*(n for n, _ in _CORE_FACETS.values()),
                                         "openlineage-OpenLineage.json"], strict=True))
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    problems: list[str] = []

    def check(instance: Any, reference: str, where: str) -> None:
        validator = jsonschema.Draft202012Validator({"$ref": reference}, registry=registry,
                                                    format_checker=checker)
        for error in sorted(validator.iter_errors(instance), key=str):
            path = "/".join(map(str, error.absolute_path))
            problems.append(f"{where}{'/' + path if path else ''}: {error.message}")

    states: dict[str, list[str]] = {}
    for index, event in enumerate(events):
        check(event, f"{SPEC}#/$defs/RunEvent", f"event {index}")
        if not isinstance(event, dict):
            continue
        states.setdefault(str(event.get("run", {}).get("runId")), []).append(
            str(event.get("eventType")))
        for where, facets in _all_facets(event):
            for key, facet in facets.items():
                schema_url = str(facet.get("_schemaURL", "")) if isinstance(facet, dict) else ""
                if key in _CORE_FACETS and "#" in schema_url:
                    base, pointer = schema_url.split("#", 1)
                    if not base.startswith("https://openlineage.io/"):
                        base = _FACETS + _CORE_FACETS[key][0]
                    check(facet, f"{base}#{pointer}", f"event {index} {where}.{key}")
    for run_id, kinds in sorted(states.items()):
        ends = [k for k in kinds if k in ("COMPLETE", "FAIL", "ABORT")]
        if kinds.count("START") != 1 or len(ends) != 1:
            problems.append(f"run {run_id}: events {kinds}; expected one START and one "
                            "COMPLETE, FAIL or ABORT")
    return problems


def _all_facets(event: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = [("run.facets", (event.get("run") or {}).get("facets") or {}),
             ("job.facets", (event.get("job") or {}).get("facets") or {})]
    for side in ("inputs", "outputs"):
        for position, dataset in enumerate(event.get(side) or []):
            if isinstance(dataset, dict):
                found.append((f"{side}/{position}.facets", dataset.get("facets") or {}))
    return found
