"""scikit-learn estimators: a safe ``skops`` file when possible, else a pickle.

Format choice, per estimator:

- ``"skops"`` when the optional ``skops`` package is importable, the estimator holds only
  types skops trusts by default (so loading needs no ``trust=True``), and the skops file
  gives back an estimator whose pickle is byte-identical to the original's. skops writes
  object ids and timestamps into its zip; the adapter renumbers and fixes them, so the same
  estimator always gives the same bytes (and the store deduplicates it).
- ``"sklearn-pickle"`` (pickle protocol 5) otherwise: tree ensembles (whose node arrays
  skops does not trust), custom classes, anything skops cannot round-trip exactly.
  Loading a pickle runs code, so it needs ``trust=True``; without it
  :class:`~lineage.errors.UntrustedContentError` says how to proceed.

``skops`` is not a dependency: without it every model is a pickle. Importing it costs about a
second once per process (it imports every scikit-learn estimator).

The identity and memoization key is ``["sklearn.estimator", XXH3-128 of the pickle]`` for
either format. The summary (see :func:`model_summary`) records the class path, the
JSON-safe ``get_params()``, whether the estimator is fitted, ``n_features_in``,
``classes``, ``feature_names`` and ``feature_importances`` or ``coef`` by feature name
(6 significant digits; at most 1000 features, the largest in magnitude, with
``features_total`` saying how many there were).
"""

from __future__ import annotations

import functools
import io
import json
import math
import pickle
import pickletools
import sys
import zipfile
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Final

import numpy as np
from sklearn.base import BaseEstimator

from lineage.adapters import Dumped
from lineage.core import encoding
from lineage.core.hashing import digest_bytes
from lineage.errors import UnsupportedValue, UntrustedContentError

__all__ = ["SklearnAdapter", "model_summary"]

_MAX_FEATURES: Final = 1000
_MAX_ARRAY_PARAM: Final = 100
_ZIP_TIME: Final = (1980, 1, 1, 0, 0, 0)


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


def _globals_in(pickled: bytes) -> Iterator[tuple[str, str]]:
    """``(module, name)`` of the classes and functions a pickle refers to, as found."""
    memo: dict[int, Any] = {}
    recent: list[Any] = [None, None]
    for op, arg, _pos in pickletools.genops(pickled):
        name = op.name
        if name in ("SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE"):
            recent = [recent[-1], arg]
        elif name in ("BINGET", "LONG_BINGET", "GET"):
            recent = [recent[-1], memo.get(int(str(arg)))]
        elif name == "MEMOIZE":
            memo[len(memo)] = recent[-1]
        elif name == "STACK_GLOBAL" and all(isinstance(part, str) for part in recent):
            yield recent[0], recent[1]
        elif name in ("GLOBAL", "INST"):
            module, _, attr = str(arg).partition(" ")
            yield module, attr


def _skops_might_trust(pickled: bytes) -> bool:
    """False when the pickle holds scikit-learn helper objects that are not estimators
    (tree node storage, Cython losses): skops does not trust those, so skip trying it."""
    for module, attr in _globals_in(pickled):
        if module.split(".")[0] != "sklearn":
            continue
        found = getattr(sys.modules.get(module), attr, None)
        if not (isinstance(found, type) and issubclass(found, BaseEstimator)):
            return False
    return True


def _canonical_skops(data: bytes) -> bytes:
    """The same skops file with object ids renumbered in order and fixed timestamps.

    Raises:
        ValueError: the file does not have the layout this function knows.
    """
    with zipfile.ZipFile(io.BytesIO(data)) as source:
        schema = json.loads(source.read("schema.json"))
        stored = set(source.namelist()) - {"schema.json"}
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def walk(node: Any) -> None:
            if isinstance(node, list):
                for item in node:
                    walk(item)
            if not isinstance(node, dict):
                return
            for key, value in node.items():
                if key == "__id__" and type(value) is int:
                    node[key] = ids.setdefault(value, len(ids))
                elif key == "file" and isinstance(value, str) and value in stored:
                    suffix = value[value.rfind(".") :] if "." in value else ""
                    node[key] = files.setdefault(value, f"{len(files)}{suffix}")
                else:
                    walk(value)

        walk(schema)
        if set(files) != stored:
            raise ValueError("skops file holds entries its schema does not name")
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as target:
            entries = [(new, source.read(old)) for old, new in files.items()]
            entries.append(("schema.json", json.dumps(schema, indent=2).encode()))
            for name, content in entries:
                info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
                info.create_system = 0
                target.writestr(info, content)
    return out.getvalue()


def _skops_bytes(model: BaseEstimator, pickled: bytes) -> bytes | None:
    """A deterministic skops file that loads without trust and round-trips exactly."""
    sio = _skops_io()
    if sio is None or not _skops_might_trust(pickled):
        return None
    try:
        data = _canonical_skops(sio.dumps(model))
        back = sio.loads(data)  # only default-trusted types: raises on anything else
        same = pickle.dumps(back, protocol=5) == pickled
    except Exception:  # noqa: BLE001 - skops raises many types; pickle is always the fallback
        return None
    return data if same else None


def _untrusted(message: str) -> UntrustedContentError:
    return UntrustedContentError(
        f"{message}; if you trust whoever wrote this store, load it with "
        "store.load(..., trust=True)"
    )


class SklearnAdapter:
    """scikit-learn estimators (fitted or not), as skops or pickle (see module doc)."""

    formats = ("sklearn-pickle", "skops")

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
        """The estimator's bytes (skops or pickle), model summary and identity.

        Raises:
            UnsupportedValue: the estimator cannot be pickled, or ``target`` is given.
        """
        if target is not None:
            raise UnsupportedValue(
                f"target={target!r} names a dataset's label column; a model has none"
            )
        pickled = self._pickle(value)
        identity = encoding.encode(["sklearn.estimator", digest_bytes(pickled)])
        summary = model_summary(value)
        safe = _skops_bytes(value, pickled)
        if safe is not None:
            return Dumped("model", "skops", safe, summary, identity)
        return Dumped("model", "sklearn-pickle", pickled, summary, identity)

    def load(self, data: bytes, format: str, *, trust: bool) -> Any:
        """The estimator back.

        Raises:
            UntrustedContentError: a pickle (or a skops file with types skops does not
                trust) and ``trust`` is false.
            UnsupportedValue: a skops file and skops is not installed.
        """
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
