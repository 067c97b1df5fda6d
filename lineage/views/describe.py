"""Records described for people and programs: a record with the names, versions, stages
and tags around it, and what a reviewer looks for in it, as one JSON-safe dict (what
``lineage show`` prints).
"""

from __future__ import annotations

from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.plain import iso_time as iso
from lineage.core.plain import jsonable
from lineage.core.records import Artifact, Run
from lineage.errors import RevisionNotFound
from lineage.refs import registry
from lineage.storage import schema
from lineage.storage.base import ReadTxn

__all__ = ["describe", "record_label", "review", "version_label"]

TOP_FEATURES: Final = 10  # feature importances shown by `lineage show`


def describe(txn: ReadTxn, record: Artifact | Run) -> dict[str, Any]:
    """A JSON-safe description of ``record``: its ``to_dict()``, with more around it.

    An artifact: :meth:`Artifact.to_dict` (``version`` filled in from the versions of its
    name) plus ``"versions": [{"version", "digest", "time"}]``, ``"stages": {stage:
    digest}``, ``"tags": [tag]`` and ``"review"`` (see :func:`review`). A run:
    :meth:`Run.to_dict` with ``metric_datasets``, ``inputs``, ``outputs``, ``code`` and
    ``environment`` as refs ``{"digest", "kind", "name", "version"}`` (or ``None``).
    """
    if isinstance(record, Run):
        return _run(txn, record)
    return _artifact(txn, record)


def record_label(record: Artifact | Run) -> str:
    """How a report names a record: ``name@version``, else its name, else its kind and short
    digest; a run as ``run <op>``."""
    if isinstance(record, Run):
        return f"run {record.op}"
    if record.name and record.version:
        return f"{record.name}@{record.version}"
    return record.name or f"{record.kind} {record.digest[:12]}"


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
    data = artifact.to_dict()
    data["version"] = artifact.version or names.version_of(name, digest)
    data.update(
        versions=[{"version": v, "digest": target.hex(), "time": iso(when)}
                  for v, target, when in versions],
        stages={stage: target.hex() for stage, target in sorted(stages.items())},
        tags=registry.tags_of(txn, digest),
        review=review(artifact),
    )
    return data


def review(artifact: Artifact) -> dict[str, Any]:
    """What a reviewer looks for in an artifact, from its summary (JSON-safe).

    A model: ``{"model": {"class", "params", "classes", "n_features", "importance":
    {"kind": "feature_importances" | "coef", "top": [[feature, value], ...], "total"}}}``
    with the :data:`TOP_FEATURES` largest in magnitude (a multi-class ``coef`` value is a
    list, ranked by its largest magnitude). A table: ``{"table": {"rows", "columns":
    [[name, dtype]], "target", "class_distribution": {label: count}, "key", "missing":
    {column: count}}}`` (only columns with missing values). ``{}`` for anything else.
    """
    summary = artifact.summary
    found: dict[str, Any] = {}
    if isinstance(summary.get("class"), str) and isinstance(summary.get("params"), dict):
        model: dict[str, Any] = {"class": summary["class"],
                                 "params": jsonable(summary["params"]),
                                 "classes": jsonable(summary.get("classes")),
                                 "n_features": summary.get("n_features_in"),
                                 "importance": None}
        for kind in ("feature_importances", "coef"):
            weights = summary.get(kind)
            if isinstance(weights, dict) and weights:
                ranked = sorted(weights.items(), key=lambda item: -_magnitude(item[1]))
                model["importance"] = {
                    "kind": kind, "top": [[str(k), jsonable(v)] for k, v in
                                          ranked[:TOP_FEATURES]],
                    "total": summary.get("features_total") or len(weights)}
                break
        found["model"] = model
    if isinstance(summary.get("columns"), list):
        missing = summary.get("missing") or {}
        found["table"] = {
            "rows": summary.get("rows"),
            "columns": jsonable(summary["columns"]),
            "target": summary.get("target"),
            "class_distribution": jsonable(summary.get("class_distribution")),
            "key": summary.get("key"),
            "missing": {str(k): v for k, v in missing.items() if v},
        }
    return found


def _magnitude(value: Any) -> float:
    """The largest absolute value in a weight (a number or a list of them); NaN ranks last."""
    values = value if isinstance(value, list) else [value]
    numbers = [abs(v) for v in values if isinstance(v, int | float) and v == v]
    return max(numbers, default=-1.0)


def _run(txn: ReadTxn, run: Run) -> dict[str, Any]:
    """A run with the names and versions of what it used and made."""
    names = _Names(txn)
    data = run.to_dict()
    data.update(
        metric_datasets={k: names.ref(d) for k, d in sorted(run.metric_datasets.items())},
        inputs={k: names.ref(d) for k, d in sorted(run.inputs.items())},
        outputs={k: names.ref(d) for k, d in sorted(run.outputs.items())},
        code=names.ref(run.code),
        environment=names.ref(run.environment),
    )
    return data
