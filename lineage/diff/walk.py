"""The walk behind :func:`lineage.diff.model.diff`: match two lineages, compare what differs.

From ``a`` and ``b`` the walk goes upstream together: an artifact to the run that generated
it (runs matched by operation), a run to its inputs (matched by input name, then by
artifact name, then by kind when only one candidate is left on each side). A pair whose
digests are equal is not entered, so the walk touches only what changed. Each pair is
visited once, in input-name order, so ``walk(b, a)`` visits the same pairs as
``walk(a, b)`` and yields the reversed diff.

A change is recorded as a *cause* (:data:`lineage.diff.model.CATEGORIES`) where nothing upstream
explains it: a source dataset that differs (``data``, or ``evaluation set-up`` when it is a
test set), params of a matched step, a step's code or environment, a metric measured on
another test set, a step present on one side only (``pipeline``), an artifact with no
recorded origin (``untracked``), or a step that gave different outputs from identical
recorded inputs (``nondeterminism``).

Content is compared by its format, whatever the kind (tables by rows, text files by lines;
:mod:`lineage.diff.data`, :mod:`lineage.diff.compare`). A pair holding the same content on
each side as a pair met before (:attr:`Artifact.content_key`: the CSV of ``dataset@v1.1``
and the DataFrame a step received from it) is not compared again: its ``same_as`` names
the first. A table with no row in common with its other version, made by a matched step
whose inputs, params or code changed, is said to be derived (``DatasetDiff.derived``)
instead of listed row by row. Unnamed artifacts holding a named one's content are
labelled with it (``RecordRef.same_content``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.plain import is_number, metric_order
from lineage.core.records import Artifact, Run
from lineage.diff.causes import leaf_cause, with_same_content
from lineage.diff.compare import (
    code_diff,
    environment_diff,
    environment_what,
    flatten,
    model_diff,
    subgroup_changes,
    text_diff,
    value_changes,
)
from lineage.diff.data import dataset_diff, is_dataset, profiled
from lineage.diff.matching import newest, pair_inputs, pair_parents, top_path
from lineage.diff.model import (
    CATEGORIES,
    ArtifactDiff,
    Cause,
    Derivation,
    EvaluationDiff,
    InputChange,
    LineageDiff,
    MetricChange,
    RecordRef,
    StepDiff,
    StepOnly,
    Summary,
    ValueChange,
)
from lineage.errors import InvalidQuery
from lineage.refs.registry import VersionLabels
from lineage.refs.revisions import resolve
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import read_blob
from lineage.storage.schema import EDGE_CHILD, EDGE_GENERATED, EDGE_USED, downstream, upstream

__all__ = ["diff"]

_DATA = "data"
_EVAL = "evaluation set-up"


def diff(txn: ReadTxn, backend: Backend, a: str | Digest | Artifact | Run,
         b: str | Digest | Artifact | Run, *, examples: int = 5) -> LineageDiff:
    """What changed between the lineages of ``a`` and ``b``, and which categories of cause.

    ``a`` and ``b`` are revisions (``"model@v1.0"``, a tag, a digest prefix) or records:
    two artifacts (models, datasets, ...) or two runs. Both lineages are walked upstream
    together (artifact -> generating run -> its inputs by name), stopping wherever the two
    sides share a digest, so the cost grows with what changed, not with history. For
    models, later runs that evaluated them are compared too.

    Args:
        txn: a read transaction of the store; ``backend`` reads content (dataset rows).
        examples: how many example rows added, removed and modified to show per table
            (read by position: for Parquet only the row groups holding them; ``0`` reads
            no row). Either way a table's key column is read when rows were both added
            and removed, to pair edited rows (see :mod:`lineage.diff.data`).

    Returns:
        A :class:`LineageDiff`; empty when ``a`` and ``b`` name the same record.

    Raises:
        RevisionNotFound, AmbiguousRevision, InvalidRevision: a revision names nothing,
            several records, or is malformed (the message suggests the nearest names).
        InvalidQuery: an artifact is compared with a run, or ``examples`` is negative.

    Example:
        >>> d = store.diff("model@v1.0", "model@v1.1")  # doctest: +SKIP
        >>> d.summary.causes  # doctest: +SKIP
        ('data', 'hyperparameters')
    """
    if not isinstance(examples, int) or isinstance(examples, bool) or examples < 0:
        raise InvalidQuery(f"examples must be a non-negative integer, got {examples!r}")
    return _walk(txn, backend, _record(txn, a), _record(txn, b), examples=examples)


def _record(txn: ReadTxn, revision: str | Digest | Artifact | Run) -> Artifact | Run:
    if isinstance(revision, Artifact | Run):
        return revision
    if isinstance(revision, Digest):
        return schema.read_record(txn, revision)
    digest, _name, version = resolve(txn, revision)
    record = schema.read_record(txn, digest)
    return record.with_version(version) if isinstance(record, Artifact) and version else record


def _walk(txn: ReadTxn, backend: Backend, a: Artifact | Run, b: Artifact | Run, *,
          examples: int) -> LineageDiff:
    if isinstance(a, Run) != isinstance(b, Run):
        raise InvalidQuery(
            f"cannot diff {'a run' if isinstance(a, Run) else 'an artifact'} against "
            f"{'a run' if isinstance(b, Run) else 'an artifact'}; give two artifacts "
            "(models, datasets, ...) or two runs"
        )
    walker = _Walker(txn, backend, examples)
    top_a, top_b = walker.label(a), walker.label(b)
    if a.raw_digest != b.raw_digest:
        if isinstance(a, Run) and isinstance(b, Run):
            walker.runs(a, b, a.op if a.op == b.op else "run", _DATA)
        elif isinstance(a, Artifact) and isinstance(b, Artifact):
            path = top_path(a, b)
            walker.artifacts(a, b, path, _DATA)
            if a.kind == b.kind == "model":
                walker.evaluations(a, b, path)
    return walker.result(top_a, top_b)


class _Walker:
    def __init__(self, txn: ReadTxn, backend: Backend, examples: int) -> None:
        self.txn, self.backend, self.examples = txn, backend, examples
        self.versions = VersionLabels(txn)
        self.records: dict[Digest, Artifact | Run] = {}
        self.seen: set[tuple[Digest, Digest]] = set()
        self.artifact_diffs: list[ArtifactDiff | None] = []
        self.step_diffs: list[StepDiff | None] = []
        self.added: list[StepOnly] = []
        self.removed: list[StepOnly] = []
        self.evidence: list[Cause] = []
        self.evaluations_seen: list[EvaluationDiff] = []
        self.changes: dict[tuple[bytes, bytes], str] = {}  # content pair -> first path
        self.named: dict[bytes, str] = {}  # content -> label of a named artifact holding it
        self.unnamed: dict[str, bytes] = {}  # digest hex of an unnamed artifact -> content
        self.made_by: dict[tuple[Digest, Digest], tuple[Run, Run]] = {}  # by artifact pair
        self.parent_pairs: dict[tuple[Digest, Digest], list[tuple[Artifact, Artifact]]] = {}

    # -- records -------------------------------------------------------------------------

    def record(self, digest: Digest) -> Artifact | Run:
        found = self.records.get(digest)
        if found is None:
            found = self.records[digest] = self.versions.label(
                schema.read_record(self.txn, digest))
        return found

    def label(self, record: Artifact | Run) -> RecordRef:
        ref = RecordRef.of(self.versions.label(record))
        if isinstance(record, Artifact):
            if record.name:
                self.named.setdefault(record.content_key, ref.label)
            else:
                self.unnamed[ref.digest] = record.content_key
        return ref

    def plain_label(self, digest: Digest) -> str:
        """A record's label, or the label of a named artifact with the same content."""
        record = self.record(digest)
        if isinstance(record, Artifact) and not record.name:
            named = self.named.get(record.content_key)
            if named is not None:
                return named
        return self.label(record).label

    def ref(self, digest: Digest | None) -> RecordRef | None:
        return None if digest is None else RecordRef.of(self.record(digest))

    def first_visit(self, a: Artifact | Run, b: Artifact | Run) -> bool:
        key = (a.raw_digest, b.raw_digest)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def cause(self, category: str, path: str, what: str) -> None:
        entry = Cause(category, path, what)
        if entry not in self.evidence:
            self.evidence.append(entry)

    # -- artifacts -----------------------------------------------------------------------

    def artifacts(self, a: Artifact, b: Artifact, path: str, context: str, *,
                  walk_up: bool = True) -> None:
        if a.raw_digest == b.raw_digest or not self.first_visit(a, b):
            return
        slot = len(self.artifact_diffs)
        self.artifact_diffs.append(None)
        old, new = self.label(a), self.label(b)
        first = self.changes.setdefault((a.content_key, b.content_key), path)
        explained = not walk_up
        if walk_up:
            explained = self.generators(a, b, path, context)
            explained = self.derived(a, b, path, context) or explained
        if first != path:  # the same change of content, compared where it was first reached
            self.artifact_diffs[slot] = ArtifactDiff(path, old, new, same_as=first,
                                                     meta=value_changes(a.meta, b.meta))
            return
        content = self.compare(a, b)
        dataset = content.get("dataset")
        if dataset is not None and dataset.no_row_in_common and (
                derivation := self.derivation(a, b)) is not None:
            content["dataset"] = dataclasses.replace(
                dataset, derived=derivation, examples_added=(), examples_removed=(),
                examples_modified=())
        leaf, what = leaf_cause(a, b, content, context)
        cause = None if explained else leaf
        if cause is not None:
            self.cause(cause, path, what)
        evaluation = content.get("evaluation")
        if isinstance(evaluation, EvaluationDiff):
            self.evaluations_seen.append(evaluation)
            if evaluation.same_dataset is False:
                self.cause(_EVAL, path, "evaluated on another test set")
        self.artifact_diffs[slot] = ArtifactDiff(path, old, new, cause, **content)

    def derivation(self, a: Artifact, b: Artifact) -> Derivation | None:
        """What changed in the step that made ``a`` and ``b`` (or made the artifacts they
        were declared derived from), when something recorded did: other inputs, params or
        code. ``None`` when no matched step explains them."""
        pairs = [(a, b), *self.parent_pairs.get((a.raw_digest, b.raw_digest), ())]
        for left, right in pairs:
            made = self.made_by.get((left.raw_digest, right.raw_digest))
            if made is None:
                continue
            run_a, run_b = made
            inputs = [(da, db) for _n, da, db in pair_inputs(run_a.inputs, run_b.inputs,
                                                             self.record) if da != db]
            found = Derivation(run_a.op, tuple(self.plain_label(d) for d, _ in inputs if d),
                               tuple(self.plain_label(d) for _, d in inputs if d),
                               value_changes(run_a.params, run_b.params),
                               run_a.code != run_b.code)
            if found.old_inputs or found.new_inputs or found.params or found.code:
                return found
        return None

    def compare(self, a: Artifact, b: Artifact) -> dict[str, Any]:
        content: dict[str, Any] = {"meta": value_changes(a.meta, b.meta)}
        # table files stored unprofiled (added by an older lineage) are profiled now
        a, b = profiled(self.backend, self.txn, a), profiled(self.backend, self.txn, b)
        if is_dataset(a) and is_dataset(b):
            content["dataset"] = dataset_diff(self.backend, self.txn, a, b, self.examples)
        kinds = {a.kind, b.kind}
        if kinds == {"model"}:
            content["model"] = model_diff(a.summary, b.summary)
        if kinds == {"config"}:
            content["config"] = value_changes(flatten(self.value(a)), flatten(self.value(b)))
        if kinds == {"evaluation"}:
            content["evaluation"] = self.evaluation_diff(a, b)
        if kinds == {"code"}:
            content["code"] = code_diff(a, b)
        if kinds == {"environment"}:
            content["environment"] = environment_diff(a, b)
        if "dataset" not in content and (text := text_diff(self.backend, self.txn, a, b)):
            content["text"] = text
        return content

    def value(self, artifact: Artifact) -> Any:
        """The decoded value of a msgpack artifact (a config), from its summary if kept."""
        if "value" in artifact.summary:
            return artifact.summary["value"]
        if artifact.format != "msgpack" or artifact.blob is None:
            return {}
        return encoding.decode(read_blob(self.backend, self.txn, artifact.blob))

    def generators(self, a: Artifact, b: Artifact, path: str, context: str) -> bool:
        """Walk to the runs that made ``a`` and ``b``; return whether one made either."""
        made_a = [r for _e, d in upstream(self.txn, a.raw_digest, EDGE_GENERATED)
                  if isinstance(r := self.record(d), Run)]
        made_b = [r for _e, d in upstream(self.txn, b.raw_digest, EDGE_GENERATED)
                  if isinstance(r := self.record(d), Run)]
        common = {r.op for r in made_a} & {r.op for r in made_b}
        if common:
            op = min(common)
            run_a = newest([r for r in made_a if r.op == op])
            run_b = newest([r for r in made_b if r.op == op])
            assert run_a is not None and run_b is not None  # noqa: S101 - op is in both
            self.made_by[a.raw_digest, b.raw_digest] = (run_a, run_b)
            self.runs(run_a, run_b, f"{path} ← {op}", context)
            return True
        run_a, run_b = newest(made_a), newest(made_b)
        for run, side in ((run_a, self.removed), (run_b, self.added)):
            if run is not None:
                side.append(StepOnly(f"{path} ← {run.op}", self.label(run)))
        if run_a is None and run_b is None:
            return False
        ops = sorted({r.op for r in (run_a, run_b) if r is not None})
        what = (f"made by different steps ({', '.join(ops)})" if run_a and run_b
                else f"made by {ops[0]} on one side only")
        self.cause("pipeline", path, what)
        return True

    def derived(self, a: Artifact, b: Artifact, path: str, context: str) -> bool:
        """Walk declared ``derived_from`` parents (paired by name, then kind, when unique).

        A logged model derived from a step's output reaches that step this way.
        """
        parents_a = [r for d in a.parents if isinstance(r := self.record(d), Artifact)]
        parents_b = [r for d in b.parents if isinstance(r := self.record(d), Artifact)]
        if not parents_a or not parents_b:
            return False
        walked = False
        pairs = pair_parents(parents_a, parents_b)
        self.parent_pairs[a.raw_digest, b.raw_digest] = pairs
        for left, right in pairs:
            self.artifacts(left, right, f"{path} ⇐ {left.name or left.kind}", context)
            walked = True
        return walked

    def children(self, a: Run, b: Run, path: str, context: str) -> bool:
        """Walk the nested runs (steps) of ``a`` and ``b``, matched by operation.

        Returns whether any matched pair differs (which explains differing outputs).
        """
        def by_op(run: Run) -> dict[str, Run]:
            found: dict[str, list[Run]] = {}
            for _edge, digest in downstream(self.txn, run.raw_digest, EDGE_CHILD):
                child = self.record(digest)
                if isinstance(child, Run):
                    found.setdefault(child.op, []).append(child)
            return {op: r for op, runs in found.items() if (r := newest(runs)) is not None}

        children_a, children_b = by_op(a), by_op(b)
        changed = False
        for op in sorted(set(children_a) & set(children_b)):
            left, right = children_a[op], children_b[op]
            if left.raw_digest != right.raw_digest:
                self.runs(left, right, f"{path} / {op}", context)
                changed = True
        for op in sorted(set(children_a) ^ set(children_b)):
            side, run = ((self.removed, children_a[op]) if op in children_a
                         else (self.added, children_b[op]))
            side.append(StepOnly(f"{path} / {op}", self.label(run)))
            self.cause("pipeline", path, f"step {op} on one side only")
            changed = True
        return changed

    # -- runs ------------------------------------------------------------------------------

    def runs(self, a: Run, b: Run, path: str, context: str) -> None:
        if a.raw_digest == b.raw_digest or not self.first_visit(a, b):
            return
        if a.op != b.op:
            self.removed.append(StepOnly(f"{path} ← {a.op}", self.label(a)))
            self.added.append(StepOnly(f"{path} ← {b.op}", self.label(b)))
            self.cause("pipeline", path, f"different steps ({', '.join(sorted((a.op, b.op)))})")
            return
        slot = len(self.step_diffs)
        self.step_diffs.append(None)
        params = value_changes(a.params, b.params)
        if params:
            category = _EVAL if context == _EVAL else "hyperparameters"
            self.cause(category, path, "params " + ", ".join(p.key for p in params))
        code = None
        if a.code != b.code:
            code = code_diff(self.maybe(a.code), self.maybe(b.code))
            self.cause("code", path, f"source of {a.op}")
        environment = None
        if a.environment != b.environment:
            environment = environment_diff(self.maybe(a.environment), self.maybe(b.environment))
            if not environment.is_empty:
                self.cause("environment", path, environment_what(environment))
        status = (ValueChange("status", a.status, b.status) if a.status != b.status else None)
        inputs = self.inputs(a, b, path, context)
        nested = self.children(a, b, path, context)
        metrics = self.metrics(a, b, path)
        self.outputs(a, b, path)
        nondeterministic = not (params or code or environment or inputs or status or nested) and (
            a.outputs != b.outputs
        )
        if nondeterministic:
            self.cause("nondeterminism", path,
                       "outputs differ with the same inputs, params, code and environment")
        self.step_diffs[slot] = StepDiff(
            path, a.op, self.label(a), self.label(b), params=params, status=status,
            inputs=inputs, code=code,
            environment=environment if environment and not environment.is_empty else None,
            metrics=metrics, nondeterministic=nondeterministic,
        )

    def maybe(self, digest: Digest | None) -> Artifact | None:
        record = None if digest is None else self.record(digest)
        return record if isinstance(record, Artifact) else None

    def inputs(self, a: Run, b: Run, path: str, context: str) -> tuple[InputChange, ...]:
        tests_a, tests_b = set(a.metric_datasets.values()), set(b.metric_datasets.values())
        changes = []
        for name, da, db in pair_inputs(a.inputs, b.inputs, self.record):
            if da == db:
                continue
            changes.append(InputChange(name, self.ref(da), self.ref(db)))
            sub = _EVAL if (da in tests_a or db in tests_b) else context
            ra = self.maybe(da)
            rb = self.maybe(db)
            if ra is not None and rb is not None:
                self.artifacts(ra, rb, f"{path} ← {name}", sub)
            else:
                self.cause(sub, path, f"input {name} on one side only")
        for metric in sorted(set(a.metric_datasets) & set(b.metric_datasets)):
            ta, tb = self.maybe(a.metric_datasets[metric]), self.maybe(b.metric_datasets[metric])
            if ta is not None and tb is not None:
                self.artifacts(ta, tb, f"{path} ← test set", _EVAL)
        return tuple(changes)

    def metrics(self, a: Run, b: Run, path: str) -> tuple[MetricChange, ...]:
        found = []
        for name in sorted(set(a.metrics) | set(b.metrics), key=metric_order):
            old, new = a.metrics.get(name), b.metrics.get(name)
            da, db = a.metric_datasets.get(name), b.metric_datasets.get(name)
            change = MetricChange(
                name, old, new, new - old if old is not None and new is not None else None,
                self.ref(da), self.ref(db), self.population(a, da), self.population(b, db),
                path)
            found.append(change)
        moved = [m.name for m in found if m.same_dataset is False]
        if moved:
            self.cause(_EVAL, path, "test set of " + ", ".join(moved))
        return tuple(found)

    def population(self, run: Run, dataset: Digest | None) -> dict[str, Any] | None:
        """The population ``dataset`` holds, from the run's evaluation or its summary."""
        if dataset is None:
            return None
        for digest in run.outputs.values():
            output = self.record(digest)
            if isinstance(output, Artifact) and output.kind == "evaluation":
                content = self.evaluation_content(output)
                if _as_digest(content.get("dataset")) == dataset and content.get("population"):
                    return dict(content["population"])
        record = self.record(dataset)
        if not isinstance(record, Artifact) or "rows" not in record.summary:
            return None
        population: dict[str, Any] = {"n": record.summary["rows"]}
        if record.summary.get("class_distribution"):
            population["class_distribution"] = dict(record.summary["class_distribution"])
        if record.summary.get("target"):
            population["target"] = record.summary["target"]
        return population

    def outputs(self, a: Run, b: Run, path: str) -> None:
        """Compare evaluation outputs of two matched runs (their set-up and metrics)."""
        for name in sorted(set(a.outputs) & set(b.outputs)):
            oa, ob = self.maybe(a.outputs[name]), self.maybe(b.outputs[name])
            if oa is not None and ob is not None and oa.kind == ob.kind == "evaluation":
                self.artifacts(oa, ob, f"{path} → {name}", _EVAL, walk_up=False)

    def evaluations(self, a: Artifact, b: Artifact, path: str) -> None:
        """Compare the runs that later evaluated model ``a`` and model ``b``, by operation."""
        def by_op(artifact: Artifact) -> dict[str, Run]:
            users: dict[str, list[Run]] = {}
            for _e, digest in downstream(self.txn, artifact.raw_digest, EDGE_USED):
                run = self.record(digest)
                if isinstance(run, Run) and run.metrics:
                    users.setdefault(run.op, []).append(run)
            return {op: r for op, runs in users.items() if (r := newest(runs)) is not None}

        users_a, users_b = by_op(a), by_op(b)
        for op in sorted(set(users_a) | set(users_b)):
            run_a, run_b = users_a.get(op), users_b.get(op)
            if run_a is not None and run_b is not None:
                self.runs(run_a, run_b, f"{path} → {op}", _EVAL)
            elif run_a is not None:
                self.removed.append(StepOnly(f"{path} → {op}", self.label(run_a), False))
            elif run_b is not None:
                self.added.append(StepOnly(f"{path} → {op}", self.label(run_b), False))

    def evaluation_content(self, artifact: Artifact) -> dict[str, Any]:
        summary = artifact.summary
        if "metrics" in summary or "population" in summary:
            return summary
        value = self.value(artifact)
        return value if isinstance(value, dict) else {}

    def evaluation_diff(self, a: Artifact, b: Artifact) -> EvaluationDiff:
        ca, cb = self.evaluation_content(a), self.evaluation_content(b)
        ma, mb = ca.get("metrics") or {}, cb.get("metrics") or {}
        da, db = _as_digest(ca.get("dataset")), _as_digest(cb.get("dataset"))
        pa, pb = ca.get("population"), cb.get("population")
        metrics = tuple(
            MetricChange(name, ma.get(name), mb.get(name),
                         mb[name] - ma[name] if is_number(ma.get(name)) and is_number(mb.get(name))
                         else None,
                         self.ref_if_stored(da), self.ref_if_stored(db), pa, pb)
            for name in sorted(set(ma) | set(mb), key=metric_order)
        )
        return EvaluationDiff(self.ref_if_stored(da), self.ref_if_stored(db), pa, pb,
                              ca.get("confusion_matrix"), cb.get("confusion_matrix"), metrics,
                              subgroup_changes(ca.get("subgroups"), cb.get("subgroups")))

    def ref_if_stored(self, digest: Digest | None) -> RecordRef | None:
        if digest is None:
            return None
        if schema.raw_record(self.txn, digest) is None:
            return RecordRef(digest.hex(), "dataset")
        return self.ref(digest)

    # -- result ----------------------------------------------------------------------------

    def result(self, a: RecordRef, b: RecordRef) -> LineageDiff:
        steps = tuple(s for s in self.step_diffs if s is not None)
        metrics = tuple(m for s in steps for m in s.metrics)
        evidence = tuple(self.evidence)
        causes = tuple(c for c in CATEGORIES if any(e.category == c for e in evidence))
        sameness = [m.same_dataset for m in metrics] + [
            e.same_dataset for e in self.evaluations_seen]
        recorded = [s for s in sameness if s is not None]
        if False in recorded:
            evaluation_same: bool | None = False
        elif not recorded or None in sameness:
            evaluation_same = None
        else:
            evaluation_same = True
        summary = Summary(causes, evidence, tuple(m for m in metrics if m.changed),
                          evaluation_same)
        found = LineageDiff(
            a, b, summary, tuple(d for d in self.artifact_diffs if d is not None), steps,
            tuple(self.added), tuple(self.removed), metrics,
        )
        same = {digest: self.named[content] for digest, content in self.unnamed.items()
                if content in self.named}
        return with_same_content(found, same) if same else found


# -- comparisons of summaries ----------------------------------------------------------------


def _as_digest(value: Any) -> Digest | None:
    if isinstance(value, bytes) and len(value) == 16:
        return Digest(value)
    if isinstance(value, str) and len(value) == 32:
        try:
            return Digest.from_hex(value)
        except ValueError:
            return None
    return None
