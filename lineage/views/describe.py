"""Records described for people and programs: a record with the names, versions, stages
and tags around it, as one JSON-safe dict (what ``lineage show`` prints).
"""

from __future__ import annotations

from typing import Any

from lineage.core.hashing import Digest
from lineage.core.plain import iso_time as iso
from lineage.core.plain import jsonable
from lineage.core.records import Artifact, Run
from lineage.errors import RevisionNotFound
from lineage.refs import registry
from lineage.storage import schema
from lineage.storage.base import ReadTxn

__all__ = ["describe", "version_label"]


def describe(txn: ReadTxn, record: Artifact | Run) -> dict[str, Any]:
    """A JSON-safe description of ``record``.

    An artifact: ``{"type": "artifact", "digest", "kind", "name", "version", "format",
    "size", "parents", "meta", "summary", "versions": [{"version", "digest", "time"}],
    "stages": {stage: digest}, "tags": [tag]}``. A run: ``{"type": "run", "digest", "id",
    "op", "label", "status", "started", "ended", "duration", "params", "metrics",
    "metric_datasets": {metric: ref}, "inputs": {name: ref}, "outputs": {name: ref},
    "code": ref, "environment": ref, "parent", "error", "meta"}`` where ``ref`` is
    ``{"digest", "kind", "name", "version"}`` or ``None``.
    """
    if isinstance(record, Run):
        return _run(txn, record)
    return _artifact(txn, record)


def version_label(txn: ReadTxn, artifact: Artifact) -> str | None:
    """The version ``artifact`` was resolved through, else the latest one naming it."""
    if artifact.version or not artifact.name:
        return artifact.version
    return _Names(txn).version_of(artifact.name, artifact.raw_digest)


class _Names:
    """Looks up name and version of digests within one read transaction, caching by name."""

    def __init__(self, txn: ReadTxn) -> None:
        self.txn = txn
        self._versions: dict[str, list[tuple[str, Digest, float]]] = {}

    def versions(self, name: str) -> list[tuple[str, Digest, float]]:
        if name not in self._versions:
            self._versions[name] = registry.versions(self.txn, name)
        return self._versions[name]

    def version_of(self, name: str | None, digest: Digest) -> str | None:
        if not name:
            return None
        found = [v for v, target, _t in self.versions(name) if target == digest]
        return found[-1] if found else None

    def ref(self, digest: Digest | None) -> dict[str, Any] | None:
        """``{digest, kind, name, version}`` of a record a run points at."""
        if digest is None:
            return None
        try:
            record: Artifact | Run | None = schema.read_record(self.txn, digest)
        except RevisionNotFound:
            record = None
        name = record.name if isinstance(record, Artifact) else None
        return {
            "digest": digest.hex(),
            "kind": record.kind if record is not None else None,
            "name": name,
            "version": self.version_of(name, digest),
        }


def _artifact(txn: ReadTxn, artifact: Artifact) -> dict[str, Any]:
    """An artifact with the versions and stages of its name and the tags naming it."""
    digest = artifact.raw_digest
    names = _Names(txn)
    name = artifact.name
    versions = names.versions(name) if name else []
    stages = registry.stages(txn, name) if name else {}
    tags = registry.tags_of(txn, digest)
    version = artifact.version or names.version_of(name, digest)
    return {
        "type": "artifact",
        "digest": artifact.digest,
        "kind": artifact.kind,
        "name": name,
        "version": version,
        "format": artifact.format,
        "size": artifact.size,
        "parents": [p.hex() for p in artifact.parents],
        "meta": jsonable(artifact.meta),
        "summary": jsonable(artifact.summary),
        "versions": [
            {"version": v, "digest": target.hex(), "time": iso(when)}
            for v, target, when in versions
        ],
        "stages": {stage: target.hex() for stage, target in sorted(stages.items())},
        "tags": tags,
    }


def _run(txn: ReadTxn, run: Run) -> dict[str, Any]:
    """A run with the names and versions of what it used and made."""
    names = _Names(txn)
    inputs = {k: names.ref(d) for k, d in sorted(run.inputs.items())}
    outputs = {k: names.ref(d) for k, d in sorted(run.outputs.items())}
    datasets = {k: names.ref(d) for k, d in sorted(run.metric_datasets.items())}
    code, environment = names.ref(run.code), names.ref(run.environment)
    return {
        "type": "run",
        "digest": run.digest,
        "id": run.id,
        "op": run.op,
        "label": run.label,
        "status": run.status,
        "started": iso(run.started),
        "ended": iso(run.ended),
        "duration": run.duration,
        "params": jsonable(run.params),
        "metrics": jsonable(run.metrics),
        "metric_datasets": datasets,
        "inputs": inputs,
        "outputs": outputs,
        "code": code,
        "environment": environment,
        "parent": run.parent,
        "error": run.error,
        "meta": jsonable(run.meta),
    }
