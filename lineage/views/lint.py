"""What a reviewer would flag in a store: ``store.lint()`` and ``lineage lint``.

Each rule reads the secondary indexes (``by_kind``, ``stages``) and the edge index; none
loads the whole graph. A rule yields :class:`Finding` records; :func:`lint` returns them
errors first. The rules:

======  ========  ===========================================================================
code    severity  what it flags
======  ========  ===========================================================================
L001    error     a model with no dataset anywhere upstream (trained on what?)
L002    warning   an ok run with metrics, none tied to a test set (nor from an evaluation)
L003    error     an evaluation artifact whose summary names no test set
L004    warning   a source dataset (not made by a run) without ``origin`` in its meta
L005    warning   a source dataset without known-bias notes (``biases``) in its meta
L006    warning   a failed run that recorded outputs (they may be incomplete)
L007    error     a model promoted to a stage with no evaluation on a test set
L008    error     a model promoted to a stage that a failed run produced
======  ========  ===========================================================================

A dataset's notes count for every dataset with the same content identity (the summary's
``identity``, independent of format): the DataFrame a step received from
``store.load("cohort@v1")`` is documented by the CSV it was loaded from. Datasets generated
by a run or declared ``derived_from`` another are described by that lineage, so L004/L005
apply to source datasets only. A promoted model counts as evaluated when the run that made it,
a run enclosing that run, or a run that used the model recorded an evaluation artifact or a
metric measured on a dataset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.schema import (
    DATA_FLOW,
    EDGE_CHILD,
    EDGE_DERIVED,
    EDGE_GENERATED,
    EDGE_USED,
    downstream,
    upstream,
)

__all__ = ["ORIGIN_KEYS", "BIAS_KEYS", "Finding", "lint"]

#: meta keys that document where a dataset comes from
ORIGIN_KEYS: Final = ("origin",)
#: meta keys that document a dataset's known biases
BIAS_KEYS: Final = ("biases", "known_biases")
_SEVERITY_ORDER: Final = {"error": 0, "warning": 1}
_SHOWN: Final = 5  # names listed in a message before the rest are counted


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a reviewer would flag.

    ``severity`` is ``"error"`` or ``"warning"``; ``code`` names the rule (``"L001"``);
    ``kind``, ``label`` (``name@version``, ``run <op>``) and ``digest`` (32 hex) name the
    record; ``message`` says what is wrong and how to fix it.
    """

    severity: str
    code: str
    kind: str
    label: str
    digest: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """A JSON-safe dict with the same keys as the fields."""
        return {"severity": self.severity, "code": self.code, "kind": self.kind,
                "label": self.label, "digest": self.digest, "message": self.message}

    def __str__(self) -> str:
        return f"{self.severity} {self.code} {self.label} {self.digest[:12]}: {self.message}"


def lint(txn: ReadTxn) -> list[Finding]:
    """Every finding of every rule (see the module docstring), errors first.

    Findings are ordered by severity, code, label and digest. The store is read in one
    transaction and never written.

    Example:
        >>> [f.code for f in lint(store)]  # doctest: +SKIP
        ['L001', 'L005']
    """
    context = _Context(txn)
    found = [finding for rule in _RULES for finding in rule(context)]
    return sorted(found, key=lambda f: (_SEVERITY_ORDER[f.severity], f.code, f.label, f.digest))


class _Context:
    """What the rules share within one read transaction: record and label lookups."""

    def __init__(self, txn: ReadTxn) -> None:
        self.txn = txn
        self.labels = VersionLabels(txn)
        self._records: dict[Digest, Artifact | Run] = {}

    def record(self, digest: Digest) -> Artifact | Run:
        found = self._records.get(digest)
        if found is None:
            found = self._records[digest] = schema.read_record(self.txn, digest)
        return found

    def of_kind(self, kind: str) -> Iterator[Artifact | Run]:
        """Every record of ``kind``, decoded one at a time (not kept)."""
        for digest in schema.record_digests(self.txn, kind):
            yield self._records.get(digest) or schema.read_record(self.txn, digest)

    def is_kind(self, digest: Digest, kind: str) -> bool:
        return schema.is_kind(self.txn, digest, kind)

    def finding(self, severity: str, code: str, record: Artifact | Run,
                message: str) -> Finding:
        return Finding(severity, code, record.kind, self.label(record), record.digest, message)

    def label(self, record: Artifact | Run) -> str:
        if isinstance(record, Run):
            return f"run {record.op}" + (f" ({record.label})" if record.label else "")
        found = self.labels.lookup(record)
        if found is not None:
            return f"{record.name}@{found[1]}"
        return record.name or f"(unnamed {record.kind})"


# -- rules ------------------------------------------------------------------------------


def _models_without_data(ctx: _Context) -> Iterator[Finding]:
    for model in ctx.of_kind("model"):
        if not _reaches(ctx, model.raw_digest, "dataset"):
            yield ctx.finding(
                "error", "L001", model,
                "no dataset in its lineage, so nobody can tell what it was trained on; "
                "train it inside a run or step whose input is a dataset (store.add(path, "
                "kind='dataset') or a DataFrame), or add it with derived_from=[dataset]",
            )


def _reaches(ctx: _Context, start: Digest, kind: str) -> bool:
    """Whether a record of ``kind`` lies upstream of ``start`` (stops at the first one)."""
    seen = {start}
    frontier = [start]
    while frontier:
        nxt = []
        for node in frontier:
            for edge, source in upstream(ctx.txn, node):
                if edge not in DATA_FLOW or source in seen:
                    continue
                if ctx.is_kind(source, kind):
                    return True
                seen.add(source)
                nxt.append(source)
        frontier = nxt
    return False


def _runs(ctx: _Context) -> Iterator[Finding]:
    """L002 and L006, in one pass over the runs."""
    for run in ctx.of_kind("run"):
        if not isinstance(run, Run):
            continue
        if run.status == "ok" and run.metrics and not run.metric_datasets and not any(
                ctx.is_kind(output, "evaluation") for output in run.outputs.values()):
            yield ctx.finding(
                "warning", "L002", run,
                f"metrics {_names(run.metrics)} were not tied to the data they were measured "
                "on; pass dataset= to log_metric/log_evaluation so a reviewer can check the "
                "test set and its population",
            )
        if run.status == "failed" and run.outputs:
            error = run.error or {}
            why = f" ({error.get('type', 'error')}: {_clip(error.get('message', ''))})" \
                if error else ""
            yield ctx.finding(
                "warning", "L006", run,
                f"the run failed{why} but recorded outputs {_names(run.outputs)}; they may be "
                "incomplete: do not use or promote them, re-run instead",
            )


def _evaluations_without_test_set(ctx: _Context) -> Iterator[Finding]:
    for evaluation in ctx.of_kind("evaluation"):
        if isinstance(evaluation, Artifact) and evaluation.summary.get("dataset") is None:
            yield ctx.finding(
                "error", "L003", evaluation,
                "this evaluation names no test set, so its metrics cannot be checked against "
                "a population; log it with run.log_evaluation(..., dataset='testset@v1')",
            )


def _undocumented_datasets(ctx: _Context) -> Iterator[Finding]:
    sources: list[tuple[Digest, set[Any], bool, bool]] = []  # small: records are not kept
    documented: tuple[set[Any], set[Any]] = (set(), set())
    for dataset in ctx.of_kind("dataset"):
        if not isinstance(dataset, Artifact):
            continue
        identities = _identities(dataset)
        notes = (_noted(dataset, ORIGIN_KEYS), _noted(dataset, BIAS_KEYS))
        for noted, into in zip(notes, documented, strict=True):
            if noted:
                into.update(identities)
        if not all(notes) and not _is_derived(ctx, dataset.raw_digest):
            sources.append((dataset.raw_digest, identities, *notes))
    for digest, identities, has_origin, has_biases in sources:
        dataset = ctx.record(digest)
        if not has_origin and not identities & documented[0]:
            yield ctx.finding(
                "warning", "L004", dataset,
                "no 'origin' in its meta: say where the data comes from (site, period, "
                "selection), e.g. `lineage add --kind dataset --meta origin=...`",
            )
        if not has_biases and not identities & documented[1]:
            yield ctx.finding(
                "warning", "L005", dataset,
                "no known-bias notes ('biases' in its meta): record who is under- or "
                "over-represented, or 'none known' after checking",
            )


def _noted(artifact: Artifact, keys: tuple[str, ...]) -> bool:
    for key in keys:
        value = artifact.meta.get(key)
        if value not in (None, "", [], {}) and not (isinstance(value, str) and not value.strip()):
            return True
    return False


def _identities(dataset: Artifact) -> set[Any]:
    """The digests under which a dataset's notes are shared: its own, and its identity."""
    found: set[Any] = {dataset.raw_digest}
    identity = dataset.summary.get("identity")
    if isinstance(identity, bytes):
        found.add(("identity", bytes(identity)))
    return found


def _is_derived(ctx: _Context, digest: Digest) -> bool:
    return any(edge in (EDGE_GENERATED, EDGE_DERIVED) for edge, _ in upstream(ctx.txn, digest))


def _promoted_models(ctx: _Context) -> Iterator[Finding]:
    for name, stage, digest in schema.all_stages(ctx.txn):
        if not ctx.is_kind(digest, "model"):
            continue
        model = ctx.record(digest)
        makers = [r for _e, d in upstream(ctx.txn, digest, EDGE_GENERATED)
                  if isinstance(r := ctx.record(d), Run)]
        failed = [r for r in makers if r.status == "failed"]
        if failed:
            yield ctx.finding(
                "error", "L008", model,
                f"promoted to {name}@{stage} but made by a failed run ({failed[0].op}, "
                f"{failed[0].digest[:12]}); promote a model from a successful run",
            )
        if not any(_evaluated(ctx, run) for run in _evaluating_runs(ctx, digest, makers)):
            yield ctx.finding(
                "error", "L007", model,
                f"promoted to {name}@{stage} with no evaluation on a test set; evaluate it "
                "in the run that trains it (run.log_evaluation(..., dataset=...)) or in a "
                "run that uses it, before promoting",
            )


def _evaluating_runs(ctx: _Context, model: Digest, makers: list[Run]) -> Iterator[Run]:
    """The runs whose evaluation would count for ``model`` (see the module docstring)."""
    yield from makers
    for maker in makers:
        for _e, parent in upstream(ctx.txn, maker.raw_digest, EDGE_CHILD):
            if isinstance(record := ctx.record(parent), Run):
                yield record
    for _e, user in downstream(ctx.txn, model, EDGE_USED):
        if isinstance(record := ctx.record(user), Run):
            yield record


def _evaluated(ctx: _Context, run: Run) -> bool:
    if run.status != "ok":
        return False
    if run.metric_datasets:
        return True
    return any(ctx.is_kind(output, "evaluation") for output in run.outputs.values())


def _names(mapping: dict[str, Any]) -> str:
    names = sorted(mapping)
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _clip(text: str, limit: int = 80) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


_RULES: Final[tuple[Callable[[_Context], Iterator[Finding]], ...]] = (
    _models_without_data,
    _runs,
    _evaluations_without_test_set,
    _undocumented_datasets,
    _promoted_models,
)
