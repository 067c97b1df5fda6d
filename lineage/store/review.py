"""The ``Store`` methods for review and audit: gated promotion, stage policies, point-in-time
views, the event log, (through :mod:`lineage.audit`) reports and exports, and pipelines and
runs side by side.

They are a mixin of :class:`lineage.store.Store`, kept in their own module because they
form one concept: what a reviewer asks of the store. Like the rest of the facade they
delegate, importing the audit package lazily.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, TypeVar

from lineage.errors import InvalidQuery, RecordTypeError, RevisionNotFound
from lineage.storage.base import Backend, ReadTxn, WriteTxn

if TYPE_CHECKING:  # and imported where used: opening a store imports none of them
    import datetime

    import pandas

    from lineage.audit.gates import Check
    from lineage.audit.policy import Policy
    from lineage.audit.trace import Impact, Trace
    from lineage.core.hashing import Digest
    from lineage.core.records import Artifact, Run
    from lineage.storage.events import Event
    from lineage.store.store import Store
    from lineage.views.pipelines import Pipeline
    from lineage.views.runs_table import RunComparison

__all__ = ["ReviewMethods"]

T = TypeVar("T")
if TYPE_CHECKING:
    Revision = str | Digest | Artifact | Run
    When = float | str | datetime.datetime


class ReviewMethods:
    """Review and audit methods of :class:`~lineage.store.Store` (see the module docstring)."""

    _backend: Backend

    def _read(self) -> AbstractContextManager[ReadTxn]:
        raise NotImplementedError  # provided by Store

    def _write(self, apply: Callable[[WriteTxn], T]) -> T:
        raise NotImplementedError  # provided by Store

    def _artifact(self, revision: Revision) -> Artifact:
        raise NotImplementedError  # provided by Store

    def _check_open(self) -> None:
        raise NotImplementedError  # provided by Store

    # -- stages and their gates ------------------------------------------------------------

    def promote(self, revision: Revision, stage: str, *, reason: str = "",
                force: bool = False) -> Artifact:
        """Point ``name@stage`` (e.g. ``model@production``) at ``revision``, after the stage's
        policy passes (see :mod:`lineage.audit.policy`); the move is kept in the history.

        Raises:
            PromotionBlocked: a check failed (``failures`` names them); nothing moved.
            InvalidQuery: ``force=True`` without a reason.
            RecordTypeError: the revision names a run or an unnamed artifact.
            InvalidName: ``stage`` breaks the naming rules or is a version label.
        """
        from lineage.audit.gates import promote
        from lineage.refs.revisions import check_name

        artifact = self._artifact(revision)
        check_name(stage, "stage")
        self._write(lambda txn: promote(txn, self._backend, artifact, stage, reason=reason,
                                        force=force))
        return artifact

    def clear_stage(self, name: str, stage: str, *, reason: str = "") -> None:
        """Remove ``name@stage`` (no model holds it any more); kept in the history.

        Raises:
            RevisionNotFound: ``name`` has no stage ``stage``.
        """
        from lineage.refs import registry
        from lineage.refs.revisions import check_name

        check_name(name)
        check_name(stage, "stage")
        with self._read() as txn:
            if stage not in registry.stages(txn, name):
                held = ", ".join(sorted(registry.stages(txn, name))) or "none"
                raise RevisionNotFound(f"{name} has no stage {stage!r} (its stages: {held})")
        self._write(lambda txn: registry.set_stage(txn, name, stage, None, reason=reason))

    def check_promotion(self, revision: Revision, stage: str = "production") -> list[Check]:
        """What promoting ``revision`` to ``stage`` would check, and whether each check
        passes now (nothing is moved)."""
        from lineage.audit.gates import check_promotion

        artifact = self._artifact(revision)
        with self._read() as txn:
            return check_promotion(txn, self._backend, artifact, stage)

    def policy(self, stage: str) -> Policy:
        """The promotion policy of ``stage`` (stored, else the built-in default)."""
        from lineage.audit.policy import load_policy
        from lineage.refs.revisions import check_name

        check_name(stage, "stage")
        with self._read() as txn:
            return load_policy(txn, stage)

    def policies(self) -> list[Policy]:
        """Every stage policy that requires something (stored ones and defaults)."""
        from lineage.audit.policy import policies

        with self._read() as txn:
            return policies(txn)

    def set_policy(self, stage: str, *, checks: list[str] | tuple[str, ...] | None = None,
                   metrics: dict[str, Any] | None = None, min_subgroup: int | None = None,
                   after: list[str] | tuple[str, ...] = (), reason: str = "") -> Policy:
        """Set ``stage``'s promotion policy, kept in the store for everyone who shares it.

        ``checks`` names built-in checks (``evaluated``, ``independent``, ``lint``; default:
        those of the current policy); ``metrics`` minimums such as ``{"sensitivity":
        (">=", 0.9)}``; ``min_subgroup`` the fewest cases an evaluated subgroup may have;
        ``after`` stages the model must have held before (``["staging"]``).

        Raises:
            InvalidQuery: an unknown check or operator, or a bad value.
        """
        from lineage.audit.policy import make_policy, save_policy

        current = self.policy(stage)
        policy = make_policy(stage, checks=current.checks if checks is None else checks,
                             metrics=metrics, min_subgroup=min_subgroup, after=after)
        self._write(lambda txn: save_policy(txn, policy, stage, reason=reason))
        return self.policy(stage)

    def reset_policy(self, stage: str, *, reason: str = "") -> Policy:
        """Forget ``stage``'s stored policy: back to the built-in default."""
        from lineage.audit.policy import save_policy
        from lineage.refs.revisions import check_name

        check_name(stage, "stage")
        self._write(lambda txn: save_policy(txn, None, stage, reason=reason))
        return self.policy(stage)

    # -- time ------------------------------------------------------------------------------

    def as_of(self, when: When) -> Store:
        """A read-only view of this store as it stood at ``when`` (a datetime, ISO 8601 text
        or epoch seconds; text without an offset is local time).

        In the view, ``resolve``, ``stages``, ``log``, ``runs``, ``ancestors``, ``diff``,
        ``report``, ... answer as of that moment: stages and tags are where their last move
        before it left them, and records made later do not exist (``RevisionNotFound``).
        Writing through the view raises ``StoreError``. See :mod:`lineage.storage.asof`.

        Raises:
            InvalidQuery: ``when`` is not a time.
        """
        from lineage.core.plain import parse_time
        from lineage.storage.asof import AsOfBackend
        from lineage.store.store import Store

        self._check_open()
        return Store(AsOfBackend(self._backend, parse_time(when, "as_of")))

    @property
    def moment(self) -> float | None:
        """The moment a point-in-time view looks at (epoch seconds); ``None`` when live."""
        from lineage.storage.asof import describe_moment

        return describe_moment(self._backend)

    def events(self, *, since: When | None = None) -> list[Event]:
        """The event log, oldest first: every record added, ref moved, policy change,
        override and gc, with who, when and why (see :mod:`lineage.storage.events`).
        ``since`` keeps events at or after a moment.

        Raises:
            InvalidQuery: ``since`` is not a time.
        """
        from lineage.core.plain import parse_time
        from lineage.storage.events import read_events

        after = None if since is None else parse_time(since, "since")
        with self._read() as txn:
            return list(read_events(txn, since=after))

    # -- documents -------------------------------------------------------------------------

    def report(self, revision: Revision, *, format: str = "html") -> str:  # noqa: A002
        """The audit report on a model, for a reviewer who never sees the code: identity and
        intended use, data, training set-up, evaluation in context, feature importances,
        the change from the previous version, registry history and overrides, lint, and
        integrity (see :mod:`lineage.audit.report`). ``format`` is ``"html"`` (one
        self-contained file) or ``"markdown"``. The same store state gives the same bytes.

        Raises:
            RecordTypeError: the revision does not name a model.
            InvalidQuery: an unknown format.
        """
        from lineage.audit.document import report

        if format not in ("html", "markdown"):
            raise InvalidQuery(f"format must be 'html' or 'markdown', got {format!r}")
        model = self._model(revision)
        with self._read() as txn:
            return report(txn, self._backend, model, fmt=format, moment=self.moment)

    def export(self, revision: Revision | None, *, format: str = "prov-json",  # noqa: A002
               namespace: str | None = None) -> str:
        """The lineage of ``revision`` (itself, its ancestors and the runs between them), or
        of the whole store when ``revision`` is ``None``, in a standard format:
        ``"prov-json"`` (W3C PROV-JSON) or ``"openlineage"`` (OpenLineage 2-0-2 run events,
        one per line, jobs in ``namespace``, by default the store's setting or
        ``"lineage"``). Identifiers derive from digests: the same history exports the same
        bytes. See :mod:`lineage.audit.exports`.

        Raises:
            InvalidQuery: an unknown format.
            RevisionNotFound, AmbiguousRevision, InvalidRevision: for ``revision``.
        """
        from lineage.audit.exports import export_lineage
        from lineage.storage import schema

        with self._read() as txn:
            chosen = namespace or schema.get_setting(txn, "openlineage_namespace") or "lineage"
            return export_lineage(txn, revision, fmt=format, namespace=str(chosen))

    def trace(self, revision: Revision, *, row: str | None = None) -> Trace:
        """From a prediction set (and one ``row`` id of it) back to its data: the model that
        made it and the stage it held then, the training run, the datasets and their
        sources, and whether the row's input was in the training data. See
        :mod:`lineage.audit.trace`.

        Raises:
            RecordTypeError: the revision is not a prediction set.
            RevisionNotFound: ``row`` is not in the set.
        """
        from lineage.audit.trace import trace

        predictions = self._artifact(revision)
        with self._read() as txn:
            return trace(txn, self._backend, predictions, row=row)

    def impact(self, revision: Revision) -> Impact:
        """What a dataset (or any artifact) reached: runs, models with the stages they hold,
        prediction sets, derived datasets — grouped and named."""
        from lineage.audit.trace import impact

        source = self._artifact(revision)
        with self._read() as txn:
            return impact(txn, source)

    def _model(self, revision: Revision) -> Artifact:
        artifact = self._artifact(revision)
        if artifact.kind != "model":
            raise RecordTypeError(f"{revision!r} names a {artifact.kind}, not a model")
        return artifact

    # -- reviewing: pipelines and runs side by side (lineage.views) ----------------------

    def pipelines(self) -> list[Pipeline]:
        """Every pipeline in the store, steps folded by operation and artifacts by name,
        as ``dvc dag`` shows them (:func:`lineage.views.pipelines.pipelines`)."""
        from lineage.views.pipelines import pipelines

        with self._read() as txn:
            return pipelines(txn)

    def runs_frame(self, op: str | None = None, **filters: Any) -> pandas.DataFrame:
        """:meth:`runs` (the same filters) as a DataFrame named as ``mlflow.search_runs``
        names it: ``params.C``, ``metrics.sensitivity``, ``test_set``, ``inputs.<name>``
        (:func:`lineage.views.runs_table.runs_frame`). Raises ``MissingDependency`` without
        pandas, ``InvalidQuery`` on a malformed filter."""
        from lineage.views import query, runs_table

        with self._read() as txn:
            return runs_table.runs_frame(txn, query.runs(txn, op, **filters))

    def compare(self, *runs: Revision) -> RunComparison:
        """Runs side by side, the first the baseline; an artifact stands for the run that
        made it; ``.plot(path)`` draws a metric against a param
        (:func:`lineage.views.runs_table.compare_runs`). Raises ``InvalidQuery`` for fewer
        than two runs or one given twice, ``RecordTypeError`` for an artifact no run made."""
        from lineage.views import runs_table

        with self._read() as txn:
            return runs_table.compare_runs(txn, runs_table.resolve_runs(txn, runs))
