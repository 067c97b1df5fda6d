"""``@lineage.step``: record a run per call, memoized on (code, inputs, params).

Arguments are split by type: a ``pathlib.Path`` is an *input* taken by its content (file
or directory), so is a :class:`~lineage.core.records.Artifact`, and so is any value an adapter
claims (arrays, DataFrames, estimators, bytes); plain JSON-like values (``str``, numbers,
``bool``, ``None``, and lists/dicts of them) are *params*. The call key is the digest of
``(step name, code identity, {input: content identity}, params)``; the code identity is the
function's source, or ``version=`` when given (as joblib and redun do).

A cache hit loads the recorded outputs and does not execute; it writes nothing durable by
itself (inside a run, the hit's recorded run is linked when that run commits). A miss
executes the function inside a recorder (so nested steps and ``store.load`` are captured),
then commits the input and output artifacts, the code and environment artifacts and the Run
in one write transaction. Failed calls are recorded with their error and never cached.

Which store: the one passed, else the innermost ``with store:`` or active run, else the one
most recently opened with ``lineage.open()``, else ``LINEAGE_HOME``, else ``./.lineage``
(see :mod:`lineage.context`).
"""

from __future__ import annotations

import functools
import inspect
import os
import time
import uuid
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, ParamSpec, TypeVar, overload

from lineage import context
from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact, Run
from lineage.errors import (
    LineageError,
    StepDefinitionError,
    UntrustedContentError,
)
from lineage.tracking import recording
from lineage.tracking.callkey import (
    CallPlan,
    bytecode_identity,
    input_identity,
    scalar_params_encoding,
)
from lineage.tracking.outputs import (
    MISSING,
    as_recorded,
    is_plain,
    numpy_scalar,
    output_bytes,
    output_items,
    prepare_outputs,
    rebuilder,
)

if TYPE_CHECKING:
    from lineage.store.ingest import Prepared
    from lineage.store.store import Store

__all__ = ["CallPlan", "Step", "default_store", "step"]

P = ParamSpec("P")
R = TypeVar("R")
_CALL_TAG: Final = "lineage/call"
_MEMO_LIMIT: Final = 4096
_SCALAR_KEYS_LIMIT: Final = 1024
_MEMO_BYTES: Final = 1 << 20



# -- which store ------------------------------------------------------------------------


def default_store() -> Store:
    """The store a step records into when none is passed (see the module docstring)."""
    current = context.current_store()
    if current is not None:
        return current  # type: ignore[no-any-return]
    from lineage.store.opening import open_store

    store = open_store()
    context.remember_opened(store)
    return store


_SCALARS: Final = frozenset((str, int, float, bool, type(None)))
_EMPTY: Final = inspect.Parameter.empty


class Step(Generic[P, R]):
    """A function whose calls are recorded as runs and memoized. Made by :func:`step`."""

    def __init__(self, function: Callable[P, R], *, name: str | None = None,
                 version: str | None = None, store: Store | str | os.PathLike[str] | None = None,
                 cache: bool = True, ignore: Iterable[str] = (), trust: bool = False) -> None:
        from lineage.refs.revisions import check_name

        if not callable(function):
            raise StepDefinitionError(f"@lineage.step decorates a function, got {function!r}")
        self.function = function
        self.name = check_name(name or function.__name__, "step name")
        self.version = check_name(version, "step version") if version is not None else None
        self.cache = cache
        self.trust = trust
        self.ignore = frozenset(ignore)
        self._store = store
        self._signature = inspect.signature(function)
        unknown = self.ignore - set(self._signature.parameters)
        if unknown:
            raise StepDefinitionError(
                f"ignore={sorted(unknown)} names no parameter of {self.name}(); "
                f"parameters are {list(self._signature.parameters)}"
            )
        self._code: tuple[Digest, dict[str, Any]] | None = None
        self._key_prefix: bytes | None = None
        # per store (weakly: a new store never sees a dead one's entries, whatever its id)
        self._memo: weakref.WeakKeyDictionary[Store, dict[Digest, Any]] = (
            weakref.WeakKeyDictionary())
        parameters = list(self._signature.parameters.values())
        self._simple = all(p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) for p in parameters)
        self._positional = tuple(p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD)
        self._defaults = {p.name: p.default for p in parameters}
        # a call with no keywords and at least this many positional args supplies every
        # required parameter (unless one is keyword-only)
        self._required_args = max((i + 1 for i, p in enumerate(parameters)
                                    if p.kind is p.POSITIONAL_OR_KEYWORD and p.default is _EMPTY),
                                   default=0)
        self._required_keywords = any(p.kind is p.KEYWORD_ONLY and p.default is _EMPTY
                                      for p in parameters)
        # call keys of keyword-less calls whose args and defaults are all scalars, by the
        # args and their types (see _scalar_call): a repeated call skips building its key
        self._scalar_keys: dict[tuple[Any, ...], Digest] = {}
        self._scalar_calls = self._simple and all(
            p.default is _EMPTY or type(p.default) in _SCALARS for p in parameters)
        functools.update_wrapper(self, function)

    def __repr__(self) -> str:
        return f"<lineage.step {self.name}>"

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        return functools.partial(self.__call__, instance)

    # -- identity -----------------------------------------------------------------------

    def code_summary(self) -> dict[str, Any]:
        """The step's code description (qualname, module, source, pinned version)."""
        self._code_identity()
        assert self._code is not None  # noqa: S101 - set by _code_identity
        return self._code[1]

    def _code_identity(self) -> Digest:
        if self._code is None:
            from lineage.tracking.environment import code_summary

            summary = code_summary(self.function)
            summary["version"] = self.version
            if self.version is not None:
                identity = encoding.digest_of(["lineage/code-version", self.name, self.version])
            elif summary["source"]:
                identity = encoding.digest_of(
                    ["lineage/code", summary["qualname"], summary["source"]]
                )
            else:
                identity = bytecode_identity(self.function, summary["qualname"])
            self._code = (identity, summary)
        return self._code[0]

    def store(self) -> Store:
        """The store this step records into now."""
        chosen = self._store
        if chosen is None:
            return default_store()
        if isinstance(chosen, str | os.PathLike):
            from lineage.store.opening import open_store  # not lineage.open: no new default

            self._store = chosen = open_store(chosen)
        return chosen

    def plan(self, store: Store, *args: Any, **kwargs: Any) -> CallPlan:
        """Sort a call's arguments into inputs and params and compute its key.

        Raises:
            TypeError: the arguments do not fit the function's signature.
            UnsupportedValue: an argument can be neither hashed nor encoded.
        """
        params: dict[str, Any] = {}
        inputs: dict[str, Any] = {}
        ignore = self.ignore
        for name, value in self._arguments(args, kwargs):
            if ignore and name in ignore:
                continue
            if type(value) in _SCALARS or is_plain(value):
                params[name] = value
            elif numpy_scalar(value):
                params[name] = value.item()
            else:
                inputs[name] = value
        identities = {name: input_identity(store, name, value) for name, value in inputs.items()}
        if self._key_prefix is None:
            self._key_prefix = encoding.encode([_CALL_TAG, self.name, self._code_identity()])
        body = scalar_params_encoding(params) if not identities else None
        if body is None:
            body = encoding.encode([identities, params])
        key = digest_bytes(self._key_prefix + body)
        return CallPlan(key, self._code_identity(), params, inputs, identities)

    def _arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Iterable[
            tuple[str, Any]]:
        """``(parameter name, value)`` of a call, defaults applied, in signature order."""
        if self._simple and len(args) <= len(self._positional):
            values = dict(self._defaults)
            values.update(zip(self._positional, args, strict=False))  # args may be fewer
            if not kwargs and len(args) >= self._required_args and not self._required_keywords:
                return values.items()
            if all(k in values and k not in self._positional[: len(args)] for k in kwargs):
                values.update(kwargs)
                if not any(v is _EMPTY for v in values.values()):
                    return values.items()
        bound = self._signature.bind(*args, **kwargs)  # slow path; raises the usual TypeError
        bound.apply_defaults()
        return list(_flatten(bound, self._signature))

    # -- calling ------------------------------------------------------------------------

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function, or return its recorded result on a cache hit."""
        store = self.store()
        scalar = self._scalar_call(args) if self.cache and not kwargs else None
        if scalar is not None:
            key = self._scalar_keys.get(scalar)
            hit = self._memo_hit(store, key) if key is not None else None
            if hit is not None:
                return hit[0]  # type: ignore[no-any-return]
        plan = self.plan(store, *args, **kwargs)
        if scalar is not None:
            if len(self._scalar_keys) >= _SCALAR_KEYS_LIMIT:
                self._scalar_keys.clear()
            self._scalar_keys[scalar] = plan.key
        if self.cache:
            hit = self._cached(store, plan)
            if hit is not None:
                return hit[0]  # type: ignore[no-any-return]
        return self._execute(store, plan, args, kwargs)

    def _scalar_call(self, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """``args`` with their types when they and the defaults are str, int, float, bool or
        None, else ``None``. Equal such tuples give equal call keys: the code identity is
        fixed per step, the defaults are immutable, values of one type that compare equal
        encode equal (``-0.0`` as ``0.0``), and the types keep ``1``, ``1.0`` and ``True``
        apart."""
        if not self._scalar_calls:
            return None
        types = tuple(map(type, args))
        if not _SCALARS.issuperset(types):
            return None
        return (types, args)

    def _memo_hit(self, store: Store, key: Digest) -> tuple[Any] | None:
        """The result of the call with ``key`` rebuilt from this process's memo, if held."""
        memos = self._memo.get(store)
        memo = memos.get(key) if memos is not None else None
        if memo is not None:
            run_digest, outputs, rebuild = memo
            result = rebuild()
            if result is not MISSING:
                _note_child(store, run_digest, outputs, result)
                return (result,)
        return None

    def _cached(self, store: Store, plan: CallPlan) -> tuple[Any] | None:
        hit = self._memo_hit(store, plan.key)
        if hit is not None:
            return hit
        try:
            run = recording.recorded_run(store, plan.key)
            if run is None:
                return None
            rebuild = rebuilder(store, run, trust=self.trust)
            result = rebuild()
        except UntrustedContentError:
            raise  # a pickle from the store: never loaded, never silently recomputed
        except LineageError:
            return None  # outputs gone or corrupt: run again
        if result is MISSING:
            return None
        if output_bytes(store, run) <= _MEMO_BYTES:  # keep small outputs' bytes in memory
            memos = self._memo.setdefault(store, {})
            if len(memos) >= _MEMO_LIMIT:
                memos.clear()
            memos[plan.key] = (run.raw_digest, run.outputs, rebuild)
        _note_child(store, run.raw_digest, run.outputs, result)
        return (result,)

    def _execute(self, store: Store, plan: CallPlan, args: Any, kwargs: Any) -> R:
        recorder = _StepRecorder(store, self.name)
        token = context.active_recorder_var.set(recorder)
        # nested steps and loads record into this step's store (on a worker, too)
        entered = context.push_store(store) if context.current_store() is not store else None
        started = time.time()
        error: BaseException | None = None
        try:
            result = self.function(*args, **kwargs)
        except BaseException as exc:  # record every failure, then re-raise it unchanged
            error = exc
            raise
        finally:
            if entered is not None:
                context.pop_store(entered)
            context.active_recorder_var.reset(token)
            recorder.closed = True
            if error is not None:
                _record_failure(self, store, plan, recorder, started, error)
        self._record(store, plan, recorder, started, result, None)
        recorded: R = as_recorded(result)  # what a later cache hit will return
        return recorded

    def _record(self, store: Store, plan: CallPlan, recorder: _StepRecorder, started: float,
                result: Any, error: BaseException | None) -> Run:
        """Stage the call's inputs, outputs and code; commit them with the run."""
        inputs = {name: _prepare_input(store, value) for name, value in plan.inputs.items()}
        outputs, paths, shape = (
            ({}, {}, {}) if error is not None else prepare_outputs(store, result)
        )
        code_summary = self.code_summary()
        code = recording.prepare(
            store, code_summary["source"].encode(), kind="code", format="python",
            summary={k: v for k, v in code_summary.items() if k != "file"})
        used = {**recorder.inputs,
                **{k: (p.artifact.raw_digest if p is not None else v.raw_digest)
                   for k, (p, v) in inputs.items()}}
        ended = time.time()

        def make_run(environment: Digest) -> Run:
            return Run(
                op=self.name, id=recorder.id, inputs=used,
                outputs={k: p.artifact.raw_digest for k, p in outputs.items()},
                params=plan.params, code=code.artifact.raw_digest, environment=environment,
                status="ok" if error is None else "failed",
                error=None if error is None else {"type": type(error).__name__,
                                                  "message": str(error)[:2000]},
                started=started, ended=ended, parent=recorder.parent_id,
                call_key=plan.key if error is None and self.cache else None,
                meta={"call": {"code": plan.code, "inputs": plan.identities},
                      **({"paths": paths} if paths else {}), **shape},
            )

        staged = [p for p, _v in inputs.values() if p is not None]
        run = recording.commit_run(store, make_run, content=[*staged, code], outputs=outputs,
                                   children=recorder.children).run
        _note_child(store, run.raw_digest, run.outputs, result)
        return run

    def explain(self, *args: Any, **kwargs: Any) -> Any:
        """Would this call hit the cache? If not, what changed against the nearest call."""
        store = self.store()
        from lineage.tracking.explain import explain_call

        return explain_call(store, self, *args, **kwargs)

    # -- pickling (Dask, multiprocessing) -------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the function, the options (``trust`` included), the code identity
        computed here (so a worker without the source makes the same call keys) and the
        store's location: the store given to the step, else the current one (``with
        store:``), as an absolute path; with neither, the unpickled step uses the receiving
        process's default store.

        Raises:
            StepDefinitionError: the store is in memory, which no other process can reach.
        """
        from lineage.tracking.transport import reduce_step

        return reduce_step(self)


def _record_failure(step_: Step[Any, Any], store: Store, plan: CallPlan,
                    recorder: _StepRecorder, started: float, error: BaseException) -> None:
    """Record a failed call; a failure to record it is noted on the user's exception, which
    is what propagates."""
    try:
        step_._record(store, plan, recorder, started, None, error)
    except Exception as failure:  # noqa: BLE001 - the user's error must win
        error.add_note(f"lineage: the failed call of {step_.name!r} could not be recorded: "
                       f"{type(failure).__name__}: {failure}")


def add_input(inputs: dict[str, Digest], artifact: Artifact, name: str | None) -> None:
    """Record ``artifact`` as an input under ``name`` (default: its name), never replacing
    a different artifact already recorded there (``testset@v1`` and ``testset@v2`` both stay).
    """
    key = name or artifact.name or artifact.digest[:12]
    if inputs.get(key, artifact.raw_digest) != artifact.raw_digest:
        key = f"{key}@{artifact.version}" if artifact.version else f"{key}@{artifact.digest[:12]}"
    inputs[key] = artifact.raw_digest


class _StepRecorder:
    """Collects what a step call loads and which steps it calls."""

    def __init__(self, store: Store, op: str) -> None:
        self.store = store
        self.op = op
        self.id = uuid.uuid4().hex
        self.inputs: dict[str, Digest] = {}
        self.children: list[Digest] = []
        self.closed = False  # set when the call returns or raises
        parent = context.active_recorder()
        self.parent_id: str | None = getattr(parent, "id", None)

    def record_use(self, artifact: Artifact, name: str | None) -> None:
        add_input(self.inputs, artifact, name)

    def record_child(self, run_digest: Digest) -> None:
        self.children.append(run_digest)


def _note_child(store: Store, run_digest: Digest, outputs: dict[str, Digest],
                result: Any) -> None:
    """Tell the enclosing run (if any) about this step run and the objects it returned.

    Knowing the returned objects lets ``run.log_model(model)`` record that the logged
    model derives from this step's output, so diffs and ancestors reach the step.
    """
    recorder = context.active_recorder()
    if recorder is None or not store._same_store(getattr(recorder, "store", None)):
        return
    recorder.record_child(run_digest)  # type: ignore[attr-defined]
    note = getattr(recorder, "record_step_output", None)
    if note is None:
        return
    for name, value in output_items(result):
        digest = outputs.get(name)
        if digest is not None and not is_plain(value):  # plain values have no stable id
            note(value, digest)


def _flatten(bound: inspect.BoundArguments,
             signature: inspect.Signature) -> Iterable[tuple[str, Any]]:
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            yield from ((f"{name}.{i}", v) for i, v in enumerate(value))
        elif kind is inspect.Parameter.VAR_KEYWORD:
            yield from value.items()
        else:
            yield name, value


def _prepare_input(store: Store, value: Any) -> tuple[Prepared | None, Any]:
    if isinstance(value, Artifact):
        return None, value
    return recording.prepare(store, value, path_name=False), value


# -- the decorator ----------------------------------------------------------------------


@overload
def step(function: Callable[P, R], /) -> Step[P, R]: ...


@overload
def step(*, name: str | None = ..., version: str | None = ...,
         store: Store | str | os.PathLike[str] | None = ..., cache: bool = ...,
         ignore: Iterable[str] = ..., trust: bool = ...
         ) -> Callable[[Callable[P, R]], Step[P, R]]: ...


def step(function: Callable[P, R] | None = None, /, *, name: str | None = None,
         version: str | None = None, store: Store | str | os.PathLike[str] | None = None,
         cache: bool = True, ignore: Iterable[str] = (), trust: bool = False) -> Any:
    """Record every call of ``function`` as a run, memoized on (code, inputs, params).

    Use bare (``@lineage.step``) or with options (``@lineage.step(version="2")``):
    ``name`` (default: the function's name), ``version`` (pins the code identity across
    source edits), ``store`` (a Store or path), ``cache=False`` (always execute, still
    record), ``ignore`` (parameter names left out of the key and the record), ``trust``
    (see below).

    A cache hit whose recorded output is a pickle (a model skops cannot hold, a DataFrame
    Parquet cannot) loads it only if this process stored it, or with ``trust=True``.
    Otherwise the call raises :class:`~lineage.errors.UntrustedContentError` rather than
    run code from a shared store, and rather than silently run the step again each time:
    pass ``trust=True`` if you trust whoever writes the store, or ``cache=False``.
    """
    def decorate(target: Callable[P, R]) -> Step[P, R]:
        return Step(target, name=name, version=version, store=store, cache=cache,
                    ignore=ignore, trust=trust)

    return decorate(function) if function is not None else decorate
