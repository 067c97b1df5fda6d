"""scikit-learn estimators: the safe ``"sklearn-state"`` format when possible, else a pickle.

Format choice, per estimator:

- ``"sklearn-state"`` (see :mod:`lineage.adapters.sklearn_state`) when every value the
  estimator holds is of a kind that format represents: scikit-learn estimators, pipelines,
  column transformers, decision trees and forests, numpy arrays, plain values. Its bytes are
  deterministic (the same fitted estimator always gives the same digest, so the store
  deduplicates it), writing it imports nothing, and loading it imports only the
  scikit-learn modules it names and instantiates only scikit-learn classes: no
  ``trust=True`` needed. Each file is read back once as it is written and must encode to
  the same bytes, else the estimator is pickled.
- ``"sklearn-pickle"`` (pickle protocol 5) otherwise: custom classes, functions, Cython
  helpers such as gradient boosting's loss objects. Loading a pickle runs code, so it needs
  ``trust=True``; without it :class:`~lineage.errors.UntrustedContentError` says how to
  proceed.
- ``"skops"`` files written by earlier versions still load (with the optional ``skops``
  package); nothing writes them any more.

The memoization key (:meth:`SklearnAdapter.key`) is ``["sklearn.estimator", XXH3-128 of
the pickle]``; the identity recorded in the summary is that for a pickle, and
``["sklearn.state", XXH3-128 of the file]`` for ``"sklearn-state"`` (pickles of equal trees
differ in padding bytes, the state file never does). The summary (see
:func:`model_summary`) records the class path, the JSON-safe ``get_params()``, whether
the estimator is fitted, ``n_features_in``, ``classes``, ``feature_names`` and
``feature_importances`` or ``coef`` by feature name (6 significant digits; at most 1000
features, the largest in magnitude, with ``features_total`` saying how many there were).
"""

from __future__ import annotations

import functools
import math
import pickle
from types import ModuleType
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator

from lineage.adapters import Dumped, sklearn_state
from lineage.core import encoding
from lineage.core.hashing import digest_bytes
from lineage.errors import UnsupportedValue, UntrustedContentError

__all__ = ["SklearnAdapter", "model_summary"]

_MAX_FEATURES: Final = 1000
_MAX_ARRAY_PARAM: Final = 100


# -- summary -----------------------------------------------------------------------------


def _class_path(kind: type) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def _plain(value: Any) -> Any:
    """``value`` as JSON-like data: estimators, classes and functions by their path."""
    if value is None or isinstance(value, bool | np.bool_):
        return None if value is None else bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        return number if math.isfinite(number) else repr(number)  # "nan", "inf", "-inf"
    if isinstance(value, str):
        return str(value)
    if isinstance(value, BaseEstimator):
        return _class_path(type(value))
    if isinstance(value, type):
        return _class_path(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((_plain(item) for item in value), key=repr)
    if isinstance(value, np.ndarray):
        if value.size <= _MAX_ARRAY_PARAM and not value.dtype.hasobject:
            return _plain(value.tolist())
        return f"<ndarray shape={list(value.shape)} dtype={value.dtype}>"
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{getattr(value, '__module__', None)}.{value.__qualname__}"
    return f"<{_class_path(type(value))}>"


def _params(model: BaseEstimator) -> dict[str, Any]:
    try:
        params = model.get_params(deep=True)
    except (TypeError, AttributeError, ValueError):
        params = model.get_params(deep=False)
    return {str(k): _plain(v) for k, v in params.items()}


def _is_fitted(model: BaseEstimator) -> bool:
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(model)
    except NotFittedError:
        return False
    except (TypeError, ValueError, AttributeError):
        return any(k.endswith("_") and not k.startswith("__") for k in vars(model))
    return True


def _final_step(model: BaseEstimator) -> tuple[Any, list[str] | None]:
    """The estimator that holds the weights, and the feature names it sees (if known)."""
    names = getattr(model, "feature_names_in_", None)
    steps = getattr(model, "steps", None)
    if not isinstance(steps, list) or not steps:
        return model, None if names is None else [str(n) for n in names]
    final = steps[-1][1]
    own = getattr(final, "feature_names_in_", None)
    if own is not None:
        return final, [str(n) for n in own]
    try:
        return final, [str(n) for n in model[:-1].get_feature_names_out()]
    except (AttributeError, ValueError, TypeError, IndexError):
        return final, None


def _weights(values: Any, names: list[str] | None) -> tuple[dict[str, Any], int] | None:
    """Feature weights by name (6 significant digits), largest ``_MAX_FEATURES`` kept."""
    if hasattr(values, "toarray"):
        values = values.toarray()  # sparse coef_ after .sparsify()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim not in (1, 2) or array.shape[-1] == 0:
        return None
    columns = array.T if array.ndim == 2 else array[:, None]
    count = columns.shape[0]
    if names is None or len(names) != count:
        names = [f"x{i}" for i in range(count)]
    order: list[int] = list(range(count))
    if count > _MAX_FEATURES:
        magnitude = np.nan_to_num(np.abs(columns).max(axis=1), nan=np.inf)
        order = sorted(np.argsort(-magnitude, kind="stable")[:_MAX_FEATURES].tolist())
    weights: dict[str, Any] = {}
    for i in order:
        row = [_plain(float(f"{v:.6g}")) for v in columns[i]]
        weights[names[i]] = row[0] if array.ndim == 1 else row
    return weights, count


def model_summary(model: BaseEstimator) -> dict[str, Any]:
    """Class path, params, fitted flag, and what fitting learned (see module doc)."""
    fitted = _is_fitted(model)
    summary: dict[str, Any] = {
        "class": _class_path(type(model)),
        "params": _params(model),
        "fitted": fitted,
        "n_features_in": None,
        "classes": None,
        "feature_names": None,
    }
    if not fitted:
        return summary
    final, names = _final_step(model)
    n_features = getattr(model, "n_features_in_", None)
    summary["n_features_in"] = None if n_features is None else int(n_features)
    classes = getattr(final, "classes_", getattr(model, "classes_", None))
    summary["classes"] = None if classes is None else _plain(list(classes))
    own_names = getattr(model, "feature_names_in_", None)
    summary["feature_names"] = None if own_names is None else [str(n) for n in own_names]
    for attribute, key in (("feature_importances_", "feature_importances"), ("coef_", "coef")):
        try:
            values = getattr(final, attribute, None)
        except (AttributeError, ValueError, TypeError):  # properties of unusual estimators
            values = None
        found = None if values is None else _weights(values, names)
        if found is not None:
            summary[key], total = found
            if total > _MAX_FEATURES:
                summary["features_total"] = total
            break
    return summary


# -- formats -----------------------------------------------------------------------------


@functools.cache
def _skops_io() -> ModuleType | None:
    try:
        import skops.io
    except ImportError:
        return None
    module: ModuleType = skops.io
    return module


def _safe_bytes(model: BaseEstimator) -> bytes | None:
    """``"sklearn-state"`` bytes that read back to an estimator giving the same bytes."""
    try:
        data = sklearn_state.dumps(model)
        # trust: these are our own fresh bytes; whether a later load needs trust=True is
        # that load's question (see lineage.adapters.sklearn_allowed)
        same = sklearn_state.dumps(sklearn_state.loads(data, trust=True)) == data
    except Exception:  # noqa: BLE001 - any refusal or failure keeps the pickle
        return None
    return data if same else None


def _untrusted(message: str) -> UntrustedContentError:
    return UntrustedContentError(
        f"{message}; if you trust whoever wrote this store, load it with "
        "store.load(..., trust=True)"
    )


class SklearnAdapter:
    """scikit-learn estimators (fitted or not), as "sklearn-state" or pickle (module doc)."""

    formats = ("sklearn-state", "sklearn-pickle", "skops")

    def claims(self, value: Any) -> bool:
        """Instances of ``sklearn.base.BaseEstimator`` (pipelines and wrappers too)."""
        return isinstance(value, BaseEstimator)

    def _pickle(self, value: BaseEstimator) -> bytes:
        try:
            return pickle.dumps(value, protocol=5)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise UnsupportedValue(
                f"cannot serialize this {_class_path(type(value))}: {exc}; replace lambdas "
                "and local functions in it with module-level functions"
            ) from None

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        """The estimator's bytes (``"sklearn-state"`` or pickle), summary and identity.

        Raises:
            UnsupportedValue: the estimator cannot be pickled, or ``target`` is given.
        """
        if target is not None:
            raise UnsupportedValue(
                f"target={target!r} names a dataset's label column; a model has none"
            )
        summary = model_summary(value)
        safe = _safe_bytes(value)
        if safe is not None:
            identity = encoding.encode(["sklearn.state", digest_bytes(safe)])
            return Dumped("model", sklearn_state.FORMAT, safe, summary, identity)
        pickled = self._pickle(value)
        identity = encoding.encode(["sklearn.estimator", digest_bytes(pickled)])
        return Dumped("model", "sklearn-pickle", pickled, summary, identity)

    def load(self, data: bytes, format: str, *, trust: bool) -> Any:
        """The estimator back.

        Raises:
            UntrustedContentError: a pickle (or a file naming classes that are not
                scikit-learn estimators) and ``trust`` is false.
            UnsupportedValue: a skops file and skops is not installed.
            CorruptRecordError: a ``"sklearn-state"`` file is malformed.
        """
        if format == sklearn_state.FORMAT:
            return sklearn_state.loads(bytes(data), trust=trust)
        if format == "skops":
            return self._load_skops(bytes(data), trust=trust)
        if not trust:
            raise _untrusted(
                "this model is stored as a pickle, and unpickling can run arbitrary code"
            )
        return pickle.loads(data)  # noqa: S301 - the caller passed trust=True

    def _load_skops(self, data: bytes, *, trust: bool) -> Any:
        sio = _skops_io()
        if sio is None:
            raise UnsupportedValue("this model is stored in skops format: pip install skops")
        try:
            return sio.loads(data)
        except sio.exceptions.UntrustedTypesFoundException:
            untrusted = sio.get_untrusted_types(data=data)
        if not trust:
            raise _untrusted(f"this skops model holds types skops does not trust ({untrusted})")
        return sio.loads(data, trusted=untrusted)

    def key(self, value: Any) -> bytes:
        """``["sklearn.estimator", XXH3-128 of the pickle]``, encoded: the identity."""
        return encoding.encode(["sklearn.estimator", digest_bytes(self._pickle(value))])
