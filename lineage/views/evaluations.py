"""Which evaluations judge a model, and on which test sets: read from the edge index.

An evaluation counts for a model when it was logged by the run that made the model, by a
run enclosing that run, or by a run that used the model afterwards. A test set is
*registered* when it has a ``name@version`` (it was added under a name, so a reviewer can
find it again).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.schema import EDGE_CHILD, EDGE_GENERATED, EDGE_USED

__all__ = ["Evaluation", "evaluating_runs", "evaluations_of"]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """An evaluation artifact of a model, the run that logged it, and its test set.

    ``test_set`` is the evaluated dataset's record (``None`` when the evaluation names none or
    it is not stored), labelled with its version when it has one; ``registered`` says it has.
    """

    artifact: Artifact
    run: Run
    test_set: Artifact | None

    @property
    def registered(self) -> bool:
        """Whether the test set has a ``name@version``."""
        return self.test_set is not None and self.test_set.version is not None

    @property
    def test_set_label(self) -> str:
        """``name@version`` of the test set, or what is known of it."""
        found = self.test_set
        if found is None:
            return "(no test set)"
        if found.name and found.version:
            return f"{found.name}@{found.version}"
        return found.name or found.digest[:12]


def evaluating_runs(txn: ReadTxn, model: Digest) -> Iterator[Run]:
    """The runs whose evaluations count for ``model``: its makers, the runs enclosing
    them, and the runs that used it (each once, in that order)."""
    seen: set[Digest] = set()
    makers = [d for _e, d in schema.upstream(txn, model, EDGE_GENERATED)]
    parents = [p for maker in makers for _e, p in schema.upstream(txn, maker, EDGE_CHILD)]
    users = [d for _e, d in schema.downstream(txn, model, EDGE_USED)]
    for digest in [*makers, *parents, *users]:
        if digest in seen:
            continue
        seen.add(digest)
        record = schema.read_record(txn, digest)
        if isinstance(record, Run):
            yield record


def evaluations_of(txn: ReadTxn, model: Digest) -> list[Evaluation]:
    """Every evaluation artifact that judges ``model`` (see the module docstring), oldest
    run first; failed runs' evaluations are left out."""
    labels = VersionLabels(txn)
    found = []
    for run in sorted(evaluating_runs(txn, model), key=lambda r: (r.started, r.digest)):
        if run.status != "ok":
            continue
        for output in sorted(run.outputs.values()):
            if not schema.is_kind(txn, output, "evaluation"):
                continue
            artifact = schema.read_record(txn, output)
            if not isinstance(artifact, Artifact):
                continue
            found.append(Evaluation(artifact, run, _test_set(txn, artifact, labels)))
    return found


def _test_set(txn: ReadTxn, evaluation: Artifact, labels: VersionLabels) -> Artifact | None:
    digest = evaluation.summary.get("dataset")
    if not isinstance(digest, bytes) or len(digest) != 16:
        return None
    if schema.raw_record(txn, Digest(digest)) is None:
        return None
    record = labels.label(schema.read_record(txn, Digest(digest)))
    return record if isinstance(record, Artifact) else None
