"""Promotion gates: run a stage's policy against a model, then move the stage (or refuse).

:func:`check_promotion` runs every requirement of the stage's policy and returns one
:class:`Check` each, passed or not, with a sentence a reviewer can act on. :func:`promote`
runs them inside the write transaction that moves the stage, so the gate and the move are
one atomic step: a failing check raises :class:`~lineage.errors.PromotionBlocked` naming each
failure, and nothing moves. ``force=True`` with a reason moves anyway; the checks it skipped
are kept in the stage's history entry and in an ``override`` event.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from lineage.audit.policy import Policy, load_policy
from lineage.core.hashing import Digest
from lineage.core.records import Artifact
from lineage.errors import InvalidQuery, PromotionBlocked, RecordTypeError
from lineage.refs import registry
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.blobs import read_blob
from lineage.views.evaluations import Evaluation, evaluations_of
from lineage.views.lint import lint
from lineage.views.query import ancestors

__all__ = ["Check", "check_promotion", "promote", "row_overlap"]

_COMPARE: Final[dict[str, Callable[[float, float], bool]]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq,
}


@dataclass(frozen=True, slots=True)
class Check:
    """One requirement of a policy, checked: ``name`` (``evaluated``, ``metric sensitivity``,
    ...), whether it ``passed``, and a sentence saying what was found."""

    name: str
    passed: bool
    message: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"name", "passed", "message"}``."""
        return {"name": self.name, "passed": self.passed, "message": self.message}

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'FAIL'} {self.name}: {self.message}"


def check_promotion(txn: ReadTxn, backend: Backend, model: Artifact, stage: str,
                    policy: Policy | None = None) -> list[Check]:
    """Every requirement of ``stage``'s policy (or ``policy``) checked against ``model``
    (none for an artifact that is not a model: policies gate models)."""
    policy = policy or load_policy(txn, stage)
    if model.kind != "model":
        return []
    evaluations = [e for e in evaluations_of(txn, model.raw_digest) if e.registered]
    checks = []
    if "evaluated" in policy.checks:
        checks.append(_evaluated(txn, model, evaluations))
    if "independent" in policy.checks:
        checks.append(_independent(txn, backend, model, evaluations))
    if "lint" in policy.checks:
        checks.append(_lint_clean(txn, model))
    for metric, (op, minimum) in sorted(policy.metrics.items()):
        checks.append(_metric(metric, op, minimum, evaluations))
    if policy.min_subgroup:
        checks.append(_subgroups(policy.min_subgroup, evaluations))
    for earlier in policy.after:
        checks.append(_held(txn, model, earlier))
    return checks


def promote(txn: WriteTxn, backend: Backend, model: Artifact, stage: str, *, reason: str,
            force: bool) -> list[Check]:
    """Check ``stage``'s policy and move ``name@stage`` to ``model`` in ``txn``.

    Returns the checks run.

    Raises:
        PromotionBlocked: a check failed and ``force`` is false (nothing moved).
        InvalidQuery: ``force`` without a reason.
        RecordTypeError: the model has no name, so no stages.
    """
    if not model.name:
        raise RecordTypeError(f"{model!r} has no name, so it cannot have stages")
    if force and not reason.strip():
        raise InvalidQuery("force=True needs a reason (it is kept in the history and in every "
                           "report); say why the checks may be skipped")
    checks = check_promotion(txn, backend, model, stage)
    failed = tuple(str(c) for c in checks if not c.passed)
    label = f"{model.name}@{model.version}" if model.version else model.name
    if failed and not force:
        listed = "; ".join(f"({i}) {c.name}: {c.message}" for i, c in
                           enumerate((c for c in checks if not c.passed), start=1))
        raise PromotionBlocked(
            f"cannot promote {label} to {stage}: {len(failed)} check(s) failed: {listed}. "
            "Fix them, or promote with force=True and a reason (recorded).",
            failures=tuple(c.name for c in checks if not c.passed))
    registry.set_stage(txn, model.name, stage, model.raw_digest, reason=reason,
                       skipped=failed if force else ())
    if failed and force:
        schema.append_event(txn, "override", {"name": model.name, "stage": stage,
                                              "target": model.raw_digest, "reason": reason,
                                              "skipped": list(failed)})
    return checks


# -- the checks ---------------------------------------------------------------------------


def _evaluated(txn: ReadTxn, model: Artifact, evaluations: list[Evaluation]) -> Check:
    if evaluations:
        sets = sorted({e.test_set_label for e in evaluations})
        return Check("evaluated", True, f"evaluated on {', '.join(sets)}")
    return Check("evaluated", False, "no evaluation on a registered test set: log one with "
                 "run.log_evaluation(..., dataset='testset@v1') in the run that trains the "
                 "model or in a run that uses it")


def _independent(txn: ReadTxn, backend: Backend, model: Artifact,
                 evaluations: list[Evaluation]) -> Check:
    test_sets = {e.test_set.raw_digest: e.test_set for e in evaluations if e.test_set}
    if not test_sets:
        return Check("independent", False, "no registered test set to check against the "
                     "training data")
    test_identities = {_identity(t) for t in test_sets.values()} - {None}
    lineage_datasets = [a for a in ancestors(txn, model) if isinstance(a, Artifact)
                        and "row_fingerprints" in a.summary and a.raw_digest not in test_sets
                        and _identity(a) not in test_identities]
    unprofiled = [t for t in test_sets.values() if "row_fingerprints" not in t.summary]
    if unprofiled:
        names = ", ".join(_label(t) for t in unprofiled)
        return Check("independent", False, f"test set {names} has no row fingerprints (add it "
                     "with kind='dataset' so its rows are profiled)")
    leaks = []
    for test_set in test_sets.values():
        for dataset in lineage_datasets:
            shared = row_overlap(txn, backend, test_set, dataset)
            if shared:
                leaks.append(f"{_label(test_set)} shares {shared} row(s) with {_label(dataset)}")
    if leaks:
        return Check("independent", False, "; ".join(leaks) + " (test data must be independent "
                     "of training data)")
    names = ", ".join(_label(t) for t in test_sets.values())
    verb = "shares" if len(test_sets) == 1 else "share"
    count = len(lineage_datasets)
    return Check("independent", True, f"{names} {verb} no row with the {count} "
                 f"dataset{'' if count == 1 else 's'} in the lineage")


def row_overlap(txn: ReadTxn, backend: Backend, a: Artifact, b: Artifact) -> int:
    """How many distinct rows of ``a`` also occur in ``b`` (by row fingerprint)."""
    left, right = _fingerprints(txn, backend, a), _fingerprints(txn, backend, b)
    if left is None or right is None:
        return 0
    return int(np.intersect1d(left, right, assume_unique=False).size)


def _fingerprints(txn: ReadTxn, backend: Backend,
                  artifact: Artifact) -> np.ndarray[Any, np.dtype[np.uint64]] | None:
    digest = artifact.summary.get("row_fingerprints")
    if not isinstance(digest, bytes) or len(digest) != 16:
        return None
    data = read_blob(backend, txn, Digest(digest))
    return np.frombuffer(data, dtype="<u8")


def _identity(artifact: Artifact) -> bytes | None:
    identity = artifact.summary.get("identity")
    return bytes(identity) if isinstance(identity, bytes) else None


def _label(artifact: Artifact) -> str:
    if artifact.name and artifact.version:
        return f"{artifact.name}@{artifact.version}"
    return artifact.name or f"{artifact.kind} {artifact.digest[:12]}"


def _lint_clean(txn: ReadTxn, model: Artifact) -> Check:
    lineage = {r.digest for r in ancestors(txn, model)} | {model.digest}
    errors = [f for f in lint(txn) if f.severity == "error" and f.digest in lineage]
    if errors:
        listed = "; ".join(f"{f.code} {f.label}: {f.message}" for f in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return Check("lint", False, f"{len(errors)} lint error(s) in the lineage: {listed}{more}")
    return Check("lint", True, "no lint error in the model's lineage")


def _metric(metric: str, op: str, minimum: float, evaluations: list[Evaluation]) -> Check:
    name = f"metric {metric}"
    measured = [(e, e.artifact.summary.get("metrics", {}).get(metric)) for e in evaluations]
    measured = [(e, v) for e, v in measured if isinstance(v, int | float)]
    if not measured:
        return Check(name, False, f"{metric} was not measured on a registered test set")
    failing = [(e, v) for e, v in measured if not _COMPARE[op](v, minimum)]
    shown = ", ".join(f"{v:.3f} on {e.test_set_label}" for e, v in measured)
    if failing:
        return Check(name, False, f"{metric} {shown}; required {op} {minimum:g}")
    return Check(name, True, f"{metric} {shown} (required {op} {minimum:g})")


def _subgroups(minimum: int, evaluations: list[Evaluation]) -> Check:
    name = "min subgroup"
    small = []
    counted = 0
    for evaluation in evaluations:
        for attribute, groups in (evaluation.artifact.summary.get("subgroups") or {}).items():
            for value, stats in groups.items():
                counted += 1
                n = stats.get("n", 0) if isinstance(stats, dict) else 0
                if n < minimum:
                    small.append(f"{attribute}={value} (n={n}) on {evaluation.test_set_label}")
    if small:
        return Check(name, False, f"subgroup(s) below {minimum} cases: {', '.join(small)}")
    if not counted:
        return Check(name, False, "no subgroups were evaluated: pass subgroups= to "
                     "run.log_evaluation")
    return Check(name, True, f"all {counted} evaluated subgroups have at least {minimum} cases")


def _held(txn: ReadTxn, model: Artifact, stage: str) -> Check:
    name = f"after {stage}"
    held = any(e.ref == "stage" and e.key == stage and e.target == model.raw_digest
               for e in registry.history(txn, model.name or ""))
    if held:
        return Check(name, True, f"held {model.name}@{stage} before")
    return Check(name, False, f"never held {model.name}@{stage}; promote it there first")
