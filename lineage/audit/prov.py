"""A lineage as a W3C PROV-JSON document (PROV-DM).

Artifacts are entities (``lineage:<digest>``) with their kind, name, version, size, format,
summary figures and meta as attributes; runs are activities with start and end times, op,
status and params; the users who recorded runs are agents (``lineage:user/<name>``). The
relations: ``used`` (a run read an artifact, with the input's name as role),
``wasGeneratedBy`` (a run made it), ``wasDerivedFrom`` (declared derivation),
``wasAssociatedWith`` (a run and who recorded it), ``wasInformedBy`` (a nested run and the
run it ran in). Relation ids derive from the digests they join, so the document is stable.
Attribute values are JSON strings, numbers or booleans, or typed literals (``xsd:dateTime``)
— the forms the PROV-JSON schema accepts; nested values are written as JSON text.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final

from lineage.audit.exports import Lineage
from lineage.core.plain import iso_time, jsonable
from lineage.core.records import Artifact, Run

__all__ = ["NAMESPACE", "prov_document"]

NAMESPACE: Final = "urn:lineage:"
_SUMMARY_KEYS: Final = ("rows", "class", "task", "filename", "files")


def _id(digest: str) -> str:
    return f"lineage:{digest}"


def _literal(value: Any) -> Any:
    """A PROV-JSON attribute value: str, finite number, bool, or JSON text for the rest."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(jsonable(value))
    return json.dumps(jsonable(value), sort_keys=True)


def _time(timestamp: float) -> dict[str, str]:
    return {"$": iso_time(timestamp), "type": "xsd:dateTime"}


def prov_document(lineage: Lineage) -> dict[str, Any]:
    """The PROV-JSON document of ``lineage`` (see the module docstring)."""
    document: dict[str, Any] = {
        "prefix": {"lineage": NAMESPACE, "xsd": "http://www.w3.org/2001/XMLSchema#"},
        "entity": {a.digest: _entity(a) for a in lineage.artifacts},
        "activity": {r.digest: _activity(r) for r in lineage.runs},
        "agent": {}, "used": {}, "wasGeneratedBy": {}, "wasDerivedFrom": {},
        "wasAssociatedWith": {}, "wasInformedBy": {},
    }
    document["entity"] = {_id(k): v for k, v in document["entity"].items()}
    document["activity"] = {_id(k): v for k, v in document["activity"].items()}
    present = {a.digest for a in lineage.artifacts}
    by_id = {r.id: r for r in lineage.runs}
    for run in lineage.runs:
        _relations(document, run, present, by_id, lineage.user(run.raw_digest))
    for artifact in lineage.artifacts:
        for parent in artifact.parents:
            if parent.hex() in present:
                document["wasDerivedFrom"][f"_:derived-{artifact.digest}-{parent.hex()}"] = {
                    "prov:generatedEntity": _id(artifact.digest),
                    "prov:usedEntity": _id(parent.hex())}
    return {key: value for key, value in document.items() if value}


def _entity(artifact: Artifact) -> dict[str, Any]:
    attributes: dict[str, Any] = {"prov:type": f"lineage:{artifact.kind}",
                                  "lineage:kind": artifact.kind,
                                  "lineage:format": artifact.format,
                                  "lineage:size": artifact.size,
                                  "prov:label": _label(artifact)}
    if artifact.name:
        attributes["lineage:name"] = artifact.name
    if artifact.version:
        attributes["lineage:version"] = artifact.version
    if artifact.blob is not None:
        attributes["lineage:content"] = artifact.blob.hex()
    for key in _SUMMARY_KEYS:
        if key in artifact.summary:
            attributes[f"lineage:{key}"] = _literal(artifact.summary[key])
    for key, value in sorted(artifact.meta.items()):
        attributes[f"lineage:meta_{_qname_part(key)}"] = _literal(value)
    return attributes


def _label(artifact: Artifact) -> str:
    if artifact.name and artifact.version:
        return f"{artifact.name}@{artifact.version}"
    return artifact.name or f"{artifact.kind} {artifact.digest[:12]}"


def _qname_part(key: str) -> str:
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(key)) or "_"


def _activity(run: Run) -> dict[str, Any]:
    attributes: dict[str, Any] = {"prov:startTime": _time(run.started)["$"],
                                  "prov:endTime": _time(run.ended)["$"],
                                  "prov:type": "lineage:run", "prov:label": f"run {run.op}",
                                  "lineage:op": run.op, "lineage:status": run.status,
                                  "lineage:run_id": run.id}
    if run.label:
        attributes["lineage:label"] = run.label
    for key, value in sorted(run.params.items()):
        attributes[f"lineage:param_{_qname_part(key)}"] = _literal(value)
    for key, value in sorted(run.metrics.items()):
        attributes[f"lineage:metric_{_qname_part(key)}"] = _literal(value)
    if run.error:
        attributes["lineage:error"] = _literal(run.error)
    return attributes


def _relations(document: dict[str, Any], run: Run, present: set[str], by_id: dict[str, Run],
               user: str) -> None:
    activity = _id(run.digest)
    roles: dict[str, list[str]] = {}
    for role, source in run.inputs.items():
        roles.setdefault(source.hex(), []).append(role)
    for extra, other in (("code", run.code), ("environment", run.environment)):
        if other is not None:
            roles.setdefault(other.hex(), []).append(extra)
    for used, names in sorted(roles.items()):
        if used in present:
            document["used"][f"_:used-{run.digest}-{used}"] = {
                "prov:activity": activity, "prov:entity": _id(used),
                "prov:role": ", ".join(sorted(names)), "prov:time": _time(run.started)["$"]}
    for role, digest in sorted(run.outputs.items()):
        if digest.hex() in present:
            document["wasGeneratedBy"][f"_:generated-{digest.hex()}-{run.digest}"] = {
                "prov:entity": _id(digest.hex()), "prov:activity": activity,
                "prov:role": role, "prov:time": _time(run.ended)["$"]}
    agent = f"lineage:user/{_qname_part(user)}"
    document["agent"][agent] = {"prov:type": "prov:Person", "lineage:user": user}
    document["wasAssociatedWith"][f"_:associated-{run.digest}"] = {
        "prov:activity": activity, "prov:agent": agent}
    parent = by_id.get(run.parent or "")
    if parent is not None:
        document["wasInformedBy"][f"_:informed-{run.digest}"] = {
            "prov:informed": activity, "prov:informant": _id(parent.digest)}
