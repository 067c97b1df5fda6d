"""Experiment tracking: ``with store.run("train", params=...) as run:``, MLflow-style.

Everything a run logs is kept in memory or staged (content durable, not yet visible) and
lands in ONE write transaction when the block ends: the Run record, its outputs and their
versions, its edges. Metric series are flushed in batches of ``METRIC_BATCH`` so a loop of
``log_metric`` never pays a transaction per call. An exception inside the block marks the
run ``failed`` (error type and message kept), keeps what was logged, and re-raises. A run
still open when the process exits is recorded as failed.
"""

from __future__ import annotations

import atexit
import threading
import time
import uuid
import weakref
from contextvars import Token
from typing import TYPE_CHECKING, Any, Final

from lineage import context
from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import (
    InvalidName,
    LineageError,
    RecordTypeError,
    RunError,
    UnsupportedValue,
)
from lineage.tracking import recording
from lineage.tracking.environment import prefetch_environment

if TYPE_CHECKING:
    from lineage.store.ingest import Prepared
    from lineage.store.store import Store

__all__ = ["RunContext", "plain_value"]

METRIC_BATCH: Final = 4096
_MAX_METRIC_NAME: Final = 250
_open_runs: weakref.WeakSet[RunContext] = weakref.WeakSet()


def plain_value(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python numbers (recursively in containers).

    Raises:
        UnsupportedValue: the result still has no canonical encoding.
    """
    if hasattr(value, "item") and type(value).__module__ == "numpy" and getattr(
        value, "shape", None
    ) == ():
        return value.item()
    if isinstance(value, dict):
        return {k: plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def _metric_value(name: str, value: Any) -> float:
    if not isinstance(name, str) or not name or len(name) > _MAX_METRIC_NAME or any(
        ord(c) < 32 for c in name
    ):
        raise InvalidName(f"metric name {name!r} must be 1-{_MAX_METRIC_NAME} printable characters")
    value = plain_value(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UnsupportedValue(
            f"metric {name!r} must be a number, got {type(value).__name__} ({value!r})"
        )
    return float(value)


class RunContext:
    """An open run. Use as a context manager from :meth:`Store.run`.

    After the block, :attr:`record` is the committed :class:`Run` and :attr:`artifacts`
    the logged artifacts with their versions.
    """

    def __init__(self, store: Store, op: str, params: dict[str, Any] | None = None,
                 *, label: str | None = None, meta: dict[str, Any] | None = None) -> None:
        from lineage.refs.revisions import check_name

        check_name(op, "run operation")
        if label is not None and (not isinstance(label, str) or not label.strip()):
            raise InvalidName(f"a run's label must be a non-empty string, got {label!r}")
        self.store = store
        self.op = op
        self.label = label
        self.id = uuid.uuid4().hex
        self.params: dict[str, Any] = {}
        self.metrics: dict[str, float] = {}
        self.metric_datasets: dict[str, Digest] = {}
        self.inputs: dict[str, Digest] = {}
        self.meta: dict[str, Any] = dict(meta or {})
        self.children: list[Digest] = []
        self._step_outputs: dict[int, tuple[Any, Digest]] = {}  # id -> (object, artifact)
        self.record: Run | None = None
        self.artifacts: dict[str, Artifact] = {}
        self._outputs: dict[str, Prepared] = {}
        self._series: list[tuple[str, int, float, float]] = []
        self._series_count: dict[str, int] = {}
        self._evaluated: dict[str, tuple[float | None, str]] = {}  # metric -> (value, by)
        self._lock = threading.Lock()
        self._parent: context.RunRecorder | None = None
        self._token: Token[Any] | None = None
        self._store_token: Any = None
        self._started = 0.0
        self._closed = False
        encoding.encode(self.meta)
        if params:
            self.log_params(params)

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> RunContext:
        if self._token is not None or self._closed:
            raise RunError(f"run {self.op!r} was already started; open a new store.run()")
        self._started = time.time()
        prefetch_environment()  # its git and platform questions run alongside the block
        self._parent = context.active_recorder()
        self._token = context.active_recorder_var.set(self)
        self._store_token = context.push_store(self.store)
        _open_runs.add(self)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 _tb: object) -> None:
        if exc is None:
            self._finish(None)
            return
        try:
            self._finish(exc)
        except Exception as failure:  # noqa: BLE001 - the block's own error must win
            exc.add_note(f"lineage: the failed run {self.op!r} could not be recorded: "
                         f"{type(failure).__name__}: {failure}")

    def _check_open(self) -> None:
        if self._closed:
            raise RunError(f"run {self.op!r} is closed; log inside its `with` block")

    @property
    def parent_id(self) -> str | None:
        """Id of the enclosing run, if any."""
        return getattr(self._parent, "id", None)

    # -- logging ------------------------------------------------------------------------

    def log_param(self, key: str, value: Any) -> None:
        """Record one parameter (a JSON-like value)."""
        self.log_params({key: value})

    def log_params(self, params: dict[str, Any]) -> None:
        """Record several parameters.

        Raises:
            UnsupportedValue: a value is not JSON-like; InvalidName: a key is not a str.
        """
        self._check_open()
        for key, value in params.items():
            if not isinstance(key, str) or not key:
                raise InvalidName(f"parameter names must be non-empty strings, got {key!r}")
            plain = plain_value(value)
            try:
                encoding.encode(plain)
            except UnsupportedValue as exc:
                raise UnsupportedValue(f"parameter {key!r}: {exc}") from None
            self.params[key] = plain

    def log_metric(self, name: str, value: Any, step: int | None = None, *,
                   dataset: str | Artifact | None = None) -> None:
        """Record a metric value (a point of its series at ``step``).

        ``dataset`` names what it was measured on (recorded as an input too).

        Raises:
            RunError: an evaluation logged in this run owns ``name`` and measured another
                value (the promotion gate reads the evaluation; log under another name).
        """
        self._check_open()
        number = _metric_value(name, value)
        self._check_not_evaluated(name, number)
        self._record_metric(name, number, step, dataset)

    def _check_not_evaluated(self, name: str, number: float) -> None:
        owned = self._evaluated.get(name)
        if owned is not None and owned[0] != number:
            measured = "undefined" if owned[0] is None else f"{owned[0]!r}"
            raise RunError(
                f"metric {name!r} belongs to the evaluation {owned[1]!r} logged in this run "
                f"({measured}), and the promotion gate reads the evaluation; log {number!r} "
                f"under another name (e.g. {name + '_manual'!r}) or in another run"
            )

    def _record_metric(self, name: str, number: float, step: int | None,
                       dataset: str | Artifact | None) -> None:
        if dataset is not None:
            self._measured_on(name, dataset)
        seq = self._series_count.get(name, 0)
        self._series_count[name] = seq + 1
        self.metrics[name] = number
        self._series.append((name, seq if step is None else int(step), time.time(), number))
        if len(self._series) >= METRIC_BATCH:
            self._flush_series()

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None, *,
                    dataset: str | Artifact | None = None) -> None:
        """Record several metrics at once (none if one is refused, see :meth:`log_metric`)."""
        self._check_open()
        for name, value in metrics.items():
            self._check_not_evaluated(name, _metric_value(name, value))
        for name, value in metrics.items():
            self.log_metric(name, value, step, dataset=dataset)

    def _measured_on(self, metric: str, dataset: str | Artifact) -> None:
        artifact = self._artifact(dataset)
        self.metric_datasets[metric] = artifact.raw_digest
        self.record_use(artifact, None)

    def log_input(self, revision: str | Artifact, name: str | None = None) -> Artifact:
        """Declare that the run used ``revision`` without loading it.

        Raises:
            RevisionNotFound: the revision names nothing.
        """
        self._check_open()
        artifact = self._artifact(revision)
        self.record_use(artifact, name)
        return artifact

    def _artifact(self, revision: str | Artifact) -> Artifact:
        record = self.store.resolve(revision)
        if not isinstance(record, Artifact):
            raise RecordTypeError(f"{revision!r} names a run, not an artifact")
        return record

    def record_use(self, artifact: Artifact, name: str | None) -> None:
        """Note an artifact read inside the run (called by ``Store.load``)."""
        from lineage.tracking.step import add_input

        with self._lock:
            add_input(self.inputs, artifact, name)

    def record_child(self, run_digest: Digest) -> None:
        """Note a step run (or a cache hit's recorded run) made inside this run."""
        with self._lock:
            self.children.append(run_digest)

    def record_step_output(self, value: Any, artifact: Digest) -> None:
        """Note that ``value`` (this very object) is the output ``artifact`` of a step."""
        with self._lock:
            self._step_outputs[id(value)] = (value, artifact)

    def log_artifact(self, value: Any, name: str | None = None, *, version: str | None = None,
                     kind: str | None = None, meta: dict[str, Any] | None = None,
                     target: str | None = None) -> Artifact:
        """Stage ``value`` (a path or any storable value) as an output of this run.

        It is committed with the run, named ``name`` (a path defaults to its file name)
        with a new version. Returns the artifact (its version is set after the run ends,
        in :attr:`artifacts`).

        Raises:
            InvalidName: ``name@version`` already names other content, or this run already
                logged other content under ``name``.
        """
        self._check_open()
        origin = self._step_outputs.get(id(value))
        derived = [origin[1]] if origin is not None and origin[0] is value else []
        prepared = recording.prepare(self.store, value, name, version=version, kind=kind,
                                     meta=meta, target=target, derived_from=derived)
        return self._add_output(prepared)

    def _add_output(self, prepared: Prepared) -> Artifact:
        if prepared.version is not None:
            self._check_version_free(prepared)
        key = prepared.name or f"output.{len(self._outputs)}"
        earlier = self._outputs.get(key)
        if earlier is not None:
            if (earlier.artifact.raw_digest, earlier.version) == (
                    prepared.artifact.raw_digest, prepared.version):
                return earlier.artifact
            raise InvalidName(
                f"this run already logged {key!r} with other content; a run keeps one "
                "artifact per name, so log this one under another name"
            )
        self._outputs[key] = prepared
        return prepared.artifact

    def _check_version_free(self, prepared: Prepared) -> None:
        artifact = prepared.artifact
        owner = recording.version_owner(self.store, artifact.name or "", prepared.version or "")
        if owner is not None and owner != artifact.raw_digest:
            raise InvalidName(
                f"{artifact.name}@{prepared.version} already exists with other content; "
                "versions are immutable, choose a new version"
            )

    def log_model(self, model: Any, name: str = "model", *, version: str | None = None,
                  meta: dict[str, Any] | None = None) -> Artifact:
        """Log a fitted model as an output artifact of kind ``model``."""
        return self.log_artifact(model, name, version=version, kind="model", meta=meta)

    def log_evaluation(self, y_true: Any, y_pred: Any = None, *,
                       dataset: str | Artifact | None = None, y_score: Any = None,
                       positive_label: Any = None, subgroups: dict[str, Any] | None = None,
                       threshold: float | None = None, task: str | None = None,
                       name: str = "evaluation", meta: dict[str, Any] | None = None
                       ) -> Artifact:
        """Evaluate predictions on the test set ``dataset`` and log the metrics *with* their
        population (see :func:`lineage.tracking.evaluation.evaluate` for the figures).

        The overall metrics become run metrics measured on ``dataset``; an ``evaluation``
        artifact keeps everything: the task, confusion matrix, tested population, Wilson
        intervals, per-subgroup figures (``subgroups={"sex": array}``, aligned with
        ``y_true``), calibration, and the test set's digest. Undefined metrics (zero
        denominators) are left out of the run metrics and kept as ``None`` in the artifact.

        The evaluation owns the names of its metrics in this run: :meth:`log_metric` refuses
        another value for them afterwards, and an evaluation is refused if the run already
        logged one of them by hand with another value. With several evaluations in one run,
        the run's metrics hold the last one's figures; each artifact keeps its own.

        Raises:
            UnsupportedValue: lengths differ (also a subgroup's), an empty test set,
                labels that cannot be told apart (two labels other than 0/1 or bool and no
                ``positive_label``).
            InvalidQuery: an unknown ``task``, a ``threshold`` outside [0, 1] or given with
                ``y_pred``, a ``positive_label`` that is not among the labels.
            RunError: the run logged one of the evaluation's metrics by hand with another
                value.
            RecordTypeError: ``dataset`` names a run.
        """
        from lineage.tracking.evaluation import evaluate

        self._check_open()
        test_set = self._artifact(dataset) if dataset is not None else None
        result = evaluate(y_true, y_pred, task=task, y_score=y_score,
                          positive_label=positive_label, subgroups=subgroups,
                          threshold=threshold)
        result["dataset"] = test_set.raw_digest if test_set is not None else None
        result["dataset_name"] = (
            f"{test_set.name}@{test_set.version}" if test_set and test_set.name else None
        )
        # the summary is the evaluation itself, readable without loading the blob
        prepared = recording.prepare(self.store, result, name, kind="evaluation", meta=meta,
                                     summary=result)
        figures: dict[str, float | None] = result["metrics"]
        self._check_no_hand_logged(figures, name)
        output = self._add_output(prepared)
        for metric, value in figures.items():
            if value is not None:
                self._record_metric(metric, float(value), None, test_set)
            self._evaluated[metric] = (value, name)
        return output

    def _check_no_hand_logged(self, figures: dict[str, float | None], evaluation: str) -> None:
        for metric, value in figures.items():
            logged = self.metrics.get(metric)
            if metric in self._evaluated or logged is None or logged == value:
                continue
            measured = "undefined" if value is None else f"{value!r}"
            raise RunError(
                f"this run logged metric {metric!r} = {logged!r} by hand, but the evaluation "
                f"{evaluation!r} measures it as {measured} and the promotion gate reads the "
                f"evaluation; log the hand-made figure under another name (e.g. "
                f"{metric + '_manual'!r})"
            )

    def log_predictions(self, y_pred: Any, *, inputs: Any, model: str | Artifact,
                        ids: Any = None, y_score: Any = None, name: str = "predictions",
                        version: str | None = None, keep_inputs: bool = False) -> Artifact:
        """Record what ``model`` predicted for ``inputs``: a prediction set (kind
        ``predictions``) holding per row its id (``ids``, default the inputs' index), the
        fingerprint of its input row — never the raw values unless ``keep_inputs`` —, the
        prediction and the score; with the model's digest and the stages it holds now. The
        model is recorded as used by this run, so a trace walks from any prediction back to
        the model, its training run and its data (see :meth:`Store.trace`).

        Raises:
            UnsupportedValue: lengths differ, ids repeat, inputs are not a table.
            RecordTypeError: ``model`` does not name a model.
        """
        from lineage.tracking.predictions import prediction_summary, prediction_table

        self._check_open()
        artifact = self._artifact(model)
        if artifact.kind != "model":
            raise RecordTypeError(f"{model!r} names a {artifact.kind}, not a model")
        table = prediction_table(y_pred, inputs, ids=ids, y_score=y_score,
                                 keep_inputs=keep_inputs)
        stages = [stage for stage, held in self.store.stages(artifact.name or "").items()
                  if held == artifact] if artifact.name else []
        self.record_use(artifact, "model")
        prepared = recording.prepare(self.store, table, name, version=version,
                                     kind="predictions",
                                     annotate=prediction_summary(inputs, artifact, stages))
        return self._add_output(prepared)

    # -- committing -----------------------------------------------------------------------

    def _take_series(self) -> list[tuple[str, int, float, float]]:
        with self._lock:
            batch, self._series = self._series, []
        return batch

    def _flush_series(self) -> None:
        recording.write_series(self.store, self.id, self._take_series())

    def _finish(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        _open_runs.discard(self)
        try:
            self._commit(exc)
        finally:
            if self._token is not None:
                context.active_recorder_var.reset(self._token)
            if self._store_token is not None:
                context.pop_store(self._store_token)

    def _commit(self, exc: BaseException | None) -> None:
        """Record the run, its outputs and their versions, and its last metric points.

        If another writer took an output's ``name@version`` since it was logged, the run is
        kept as failed with its outputs unversioned; that :class:`InvalidName` is raised
        unless the block itself raised (then it is noted on the block's exception).
        """
        error = None
        if exc is not None:
            error = {"type": type(exc).__name__, "message": str(exc)[:2000]}
        ended = time.time()

        def make_run(environment: Digest) -> Run:
            return Run(
                op=self.op, id=self.id, label=self.label, inputs=dict(self.inputs),
                outputs={k: p.artifact.raw_digest for k, p in self._outputs.items()},
                params=dict(self.params), metrics=dict(self.metrics),
                metric_datasets=dict(self.metric_datasets), environment=environment,
                status="failed" if exc is not None else "ok", error=error,
                started=self._started, ended=ended, parent=self.parent_id, meta=self.meta,
            )

        recorded = recording.commit_run(
            self.store, make_run, outputs=self._outputs, children=self.children,
            series=self._take_series(), unversioned=_failed_for_versions)
        self.record = recorded.run
        self.artifacts = {k: p.artifact.with_version(recorded.versions.get(k))
                          for k, p in self._outputs.items()}
        parent = self._parent
        if parent is not None and self.store._same_store(getattr(parent, "store", None)):
            parent.record_child(recorded.run.raw_digest)  # type: ignore[attr-defined]
        if recorded.conflict is not None:
            if exc is None:
                raise recorded.conflict
            exc.add_note(f"lineage: the run's outputs could not be versioned: "
                         f"{recorded.conflict}")

    @property
    def closed(self) -> bool:
        """Whether the run has ended (committed, or failed)."""
        return self._closed

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<RunContext {self.op} {self.id[:8]} ({state})>"


def _failed_for_versions(run: Run, conflict: InvalidName) -> Run:
    """The run to keep when its outputs cannot be versioned: failed, saying why."""
    message = f"the run's outputs could not be versioned: {conflict}"
    error = run.error or {"type": type(conflict).__name__, "message": message[:2000]}
    return run.replace(status="failed", error=error)


@atexit.register
def _close_open_runs() -> None:
    for run in list(_open_runs):
        try:
            run._finish(RunError("the process exited before the run's block ended"))
        except LineageError:
            pass  # the store may already be closed; nothing more can be saved
