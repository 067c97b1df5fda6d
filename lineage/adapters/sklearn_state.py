"""The ``"sklearn-state"`` format: a scikit-learn estimator as deterministic msgpack that
loads without running code named by the file.

An estimator is written as the tree of its state — what pickle would save, walked by
``__reduce_ex__`` — with every value of a closed set of kinds. The file names classes, but
loading only ever instantiates these, so loading needs no ``trust=True``:

- the scikit-learn estimators :mod:`lineage.adapters.sklearn_allowed` lists (those whose
  fitted arrays compiled code either does not read or lineage checks), and
  ``make_column_selector``, rebuilt as pickle rebuilds them (``cls.__new__(cls)`` then
  ``__setstate__``) from a state that may not hide their class's attributes; any other
  scikit-learn estimator is written the same way but loads only with ``trust=True``;
- ``sklearn.tree._tree.Tree`` (decision trees and forests), whose node arrays are checked
  before use (children inside the tree and pointing forward, one parent per node, split
  features inside the estimator's ``n_features_in_``), so no crafted tree can make
  scikit-learn's Cython code read outside its arrays;
- gradient boosting's parts (see :mod:`lineage.adapters.sklearn_compiled`): a loss of
  ``sklearn._loss.loss``, rebuilt by calling its class with the arguments that made it, and
  the histogram models' ``TreePredictor``, whose nodes are checked like a tree's; and, once
  the whole model is read, what ties a boosting model together (features per tree, trees
  per iteration, no categorical features);
- ``numpy.random.RandomState`` and ``numpy.random.Generator`` (by their state),
  ``sklearn.utils.Bunch``;
- plain values: ``None``, bools, ints, floats, str, bytes, lists, tuples, dicts (keys
  in insertion order), slices, numpy arrays without Python objects (dtype, shape, order,
  raw bytes), object arrays of the kinds above, numpy scalars and dtypes, the numpy scalar
  types and ``int``/``float``/``bool``/``str``/``bytes``/``complex``/``object`` as types,
  numpy ufuncs by name.

Anything else (a user's class, a function, another Cython helper, a categorical split)
makes :func:`dumps` raise :class:`NotRepresentable`, or :func:`loads` refuse the file, and
the adapter keeps a pickle instead.
Loading imports only the scikit-learn modules the file names, never every estimator module.

Layout: the msgpack encoding of ``["lineage/sklearn-state", 1, node]``. A node is a msgpack
nil, bool, int, float, str or bin, or an array whose first item is a tag::

    ["l", [node...]]  list           ["t", [node...]]  tuple
    ["d", [[key, value]...]]  dict   ["S", start, stop, step]  slice
    ["a", descr, shape, fortran, bytes]  ndarray     ["o", shape, [node...]]  object ndarray
    ["s", descr, bytes]  numpy scalar     ["y", descr]  dtype     ["T", module, name]  type
    ["u", name]  numpy ufunc              ["R", node]  RandomState (its ``get_state()``)
    ["E", module, qualname, [[key, value]...]]  estimator (its pickled ``__dict__``)
    ["I", text]  an integer beyond 64 bits    ["G", name, node]  Generator (bit generator, state)
    ["L", name, [[argument, value]...], [[attribute, value]...]]  loss (sklearn._loss.loss)
    ["P", nodes, binned bitsets, raw bitsets]  TreePredictor
    ["B", [[key, value]...], [[key, value]...]]  Bunch (items, attributes)
    ["N", n_features, n_classes, n_outputs, [[key, value]...]]  tree
    ["r", n]  the n-th shared object (estimator, list, dict, array, Bunch, RandomState,
              Generator, tree, loss, predictor; numbered in order of first appearance) again

Identical estimators give identical bytes: dict order is the order the estimator set its
attributes, nothing depends on memory addresses or time.
"""

from __future__ import annotations

import copyreg
import importlib
import math
import re
from collections.abc import Callable
from typing import Any, Final, Literal

import msgpack
import numpy as np
from sklearn.base import BaseEstimator

from lineage.adapters import sklearn_allowed, sklearn_compiled
from lineage.errors import CorruptRecordError, UntrustedContentError

__all__ = ["FORMAT", "NotRepresentable", "dumps", "loads"]

FORMAT: Final = "sklearn-state"
_TAG: Final = "lineage/sklearn-state"
_VERSION: Final = 1
_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64 - 1
_MODULE: Final = re.compile(r"sklearn(\.[A-Za-z_][A-Za-z0-9_]*)+")
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTIN_TYPES: Final = {t.__name__: t for t in (int, float, bool, str, bytes, complex, object)}
_PLAIN: Final = (type(None), bool, int, float, str, bytes)
_TREE: Final = ("sklearn.tree._tree", "Tree")
_BUNCH: Final = ("sklearn.utils._bunch", "Bunch")
#: scikit-learn classes that are not estimators but hold only plain values, rebuilt like them
_HELPERS: Final = frozenset({("sklearn.compose._column_transformer", "make_column_selector")})
_NEWOBJ: Final = getattr(copyreg, "__newobj__")  # what object.__reduce_ex__ names  # noqa: B009


class NotRepresentable(Exception):  # noqa: N818 - a refusal, caught by the adapter
    """The estimator holds a value this format does not represent (kept as a pickle)."""


def _path(kind: type) -> tuple[str, str]:
    return kind.__module__, kind.__qualname__


def _descr(dtype: np.dtype[Any]) -> Any:
    descr = np.lib.format.dtype_to_descr(dtype)
    return descr if isinstance(descr, str) else [list(field) for field in descr]


# -- writing -------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self._memo: dict[int, int] = {}
        self._alive: list[Any] = []  # memoized objects stay alive, so ids are never reused

    def _remember(self, value: Any) -> None:
        self._memo[id(value)] = len(self._alive)
        self._alive.append(value)

    def node(self, value: Any) -> Any:
        kind = type(value)
        if kind in _PLAIN:
            if kind is int and not _INT_MIN <= value <= _INT_MAX:
                return ["I", str(value)]  # a random generator's 128-bit state
            return value
        seen = self._memo.get(id(value))
        if seen is not None:
            return ["r", seen]
        if kind is list:
            self._remember(value)
            return ["l", [self.node(item) for item in value]]
        if kind is tuple:
            return ["t", [self.node(item) for item in value]]
        if kind is dict:
            self._remember(value)
            return ["d", self._pairs(value)]
        if kind is np.ndarray:
            return self._array(value)
        if isinstance(value, np.generic) and kind.__module__ == "numpy":
            if value.dtype.hasobject:
                raise NotRepresentable("a numpy object scalar")
            return ["s", _descr(value.dtype), value.tobytes()]
        if isinstance(value, np.dtype):
            if value.hasobject and value != np.dtype(object):
                raise NotRepresentable(f"dtype {value}")
            return ["y", _descr(value)]
        if kind is type:
            return self._type(value)
        if kind is slice:
            parts = [value.start, value.stop, value.step]
            if not all(part is None or type(part) is int for part in parts):
                raise NotRepresentable(f"slice {value!r}")
            return ["S", *parts]
        if kind is np.ufunc and getattr(np, str(getattr(value, "__name__", "")), None) is value:
            return ["u", str(getattr(value, "__name__", ""))]
        if kind is np.random.RandomState:
            self._remember(value)
            return ["R", self.node(value.get_state(legacy=True))]
        if kind is np.random.Generator:
            return self._generator(value)
        path = _path(kind)
        if path == _TREE:
            return self._tree(value)
        if path == sklearn_compiled.PREDICTOR:
            return self._predictor(value)
        if kind.__module__ == sklearn_compiled.LOSS_MODULE:
            return self._loss(value)
        if path == _BUNCH:
            self._remember(value)
            return ["B", self._pairs(dict(value)), self._pairs(vars(value))]
        if (isinstance(value, BaseEstimator) and kind.__module__.startswith("sklearn.")
                or path in _HELPERS):
            return self._estimator(value, kind)
        raise NotRepresentable(f"a {'.'.join(path)}")

    def _pairs(self, mapping: dict[Any, Any]) -> list[list[Any]]:
        return [[self.node(key), self.node(item)] for key, item in mapping.items()]

    def _array(self, value: np.ndarray[Any, Any]) -> list[Any]:
        self._remember(value)
        fortran = bool(value.flags.f_contiguous and not value.flags.c_contiguous)
        if value.dtype.hasobject:
            if value.dtype != np.dtype(object):
                raise NotRepresentable(f"an array of dtype {value.dtype}")
            items = [self.node(item) for item in value.reshape(-1)]
            return ["o", list(value.shape), fortran, items]
        order: Literal["C", "F"] = "F" if fortran else "C"
        if value.dtype.names:  # records: padding bytes hold whatever memory held, zero them
            fields, value = value, np.zeros(value.shape, value.dtype, order=order)
            for name in value.dtype.names:
                value[name] = fields[name]
        return ["a", _descr(value.dtype), list(value.shape), fortran, value.tobytes(order=order)]

    def _type(self, value: type) -> list[Any]:
        if _BUILTIN_TYPES.get(value.__name__) is value:
            return ["T", "builtins", value.__name__]
        if (issubclass(value, np.generic) and value.__module__ == "numpy"
                and getattr(np, value.__name__, None) is value):
            return ["T", "numpy", value.__name__]
        raise NotRepresentable(f"the type {'.'.join(_path(value))}")

    def _tree(self, value: Any) -> list[Any]:
        self._remember(value)
        rebuild, args, state = value.__reduce__()
        if rebuild is not type(value) or len(args) != 3 or not isinstance(state, dict):
            raise NotRepresentable("a tree with an unknown layout")
        n_features, n_classes, n_outputs = args
        return ["N", self.node(int(n_features)), self.node(n_classes), self.node(int(n_outputs)),
                self._pairs(state)]

    def _generator(self, value: np.random.Generator) -> list[Any]:
        bits = value.bit_generator
        name = type(bits).__name__
        if name not in sklearn_compiled.BIT_GENERATORS \
                or getattr(np.random, name) is not type(bits):
            raise NotRepresentable(f"a random generator driven by {name}")
        self._remember(value)
        return ["G", name, self.node(bits.state)]

    def _predictor(self, value: Any) -> list[Any]:
        try:
            fields = sklearn_compiled.predictor_fields(value)
            sklearn_compiled.predictor_features(*fields)
        except ValueError as exc:
            raise NotRepresentable(str(exc)) from None
        self._remember(value)
        return ["P", *(self.node(field) for field in fields)]

    def _loss(self, value: Any) -> list[Any]:
        try:
            name, parameters, attributes = sklearn_compiled.describe_loss(value)
        except ValueError as exc:
            raise NotRepresentable(str(exc)) from None
        self._remember(value)
        return ["L", name, self._pairs(parameters), self._pairs(attributes)]

    def _estimator(self, value: BaseEstimator, kind: type) -> list[Any]:
        module, qualname = _path(kind)
        if not _NAME.fullmatch(qualname):
            raise NotRepresentable(f"the nested class {module}.{qualname}")
        reduced = value.__reduce_ex__(5)
        if (len(reduced) < 3 or reduced[0] is not _NEWOBJ or reduced[1] != (kind,)
                or any(extra is not None for extra in reduced[3:])
                or not isinstance(reduced[2], dict)):
            raise NotRepresentable(f"{module}.{qualname} pickles in an unknown way")
        self._remember(value)
        return ["E", module, qualname, self._pairs(reduced[2])]


def dumps(model: BaseEstimator) -> bytes:
    """The estimator as ``"sklearn-state"`` bytes (deterministic).

    Raises:
        NotRepresentable: it holds a value outside the format (see the module doc).
    """
    try:
        root = _Writer().node(model)
    except RecursionError:
        raise NotRepresentable("the estimator nests too deeply") from None
    return msgpack.packb([_TAG, _VERSION, root], use_bin_type=True)  # type: ignore[no-any-return]


# -- reading -------------------------------------------------------------------------------


def _corrupt(why: str) -> CorruptRecordError:
    return CorruptRecordError(f"this scikit-learn model file is malformed: {why}")


def _dtype(descr: Any) -> np.dtype[Any]:
    if isinstance(descr, list):
        descr = [tuple(field) for field in descr]
    elif not isinstance(descr, str):
        raise _corrupt(f"bad dtype {descr!r}")
    try:
        dtype: np.dtype[Any] = np.lib.format.descr_to_dtype(descr)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise _corrupt(f"bad dtype {descr!r}: {exc}") from None
    return dtype


class _Reader:
    def __init__(self, *, trust: bool) -> None:
        self._trust = trust
        self._shared: list[Any] = []
        self._estimators: list[Any] = []
        self._checked = sklearn_compiled.Checked()

    def _keep(self, value: Any) -> Any:
        self._shared.append(value)
        return value

    def node(self, node: Any) -> Any:
        if not isinstance(node, list):
            return node
        if not node or not isinstance(node[0], str):
            raise _corrupt("an untagged array")
        tag, args = node[0], node[1:]
        reader = _READERS.get(tag)
        if reader is None:
            raise _corrupt(f"unknown tag {tag!r}")
        try:
            return reader(self, *args)
        except TypeError as exc:  # wrong arity or an unhashable key
            raise _corrupt(f"{tag!r} node: {exc}") from None

    def _list(self, items: list[Any]) -> list[Any]:
        out: list[Any] = self._keep([])
        out.extend(self.node(item) for item in items)
        return out

    def _tuple(self, items: list[Any]) -> tuple[Any, ...]:
        return tuple(self.node(item) for item in items)

    def _dict(self, pairs: list[Any]) -> dict[Any, Any]:
        out: dict[Any, Any] = self._keep({})
        self._fill(out, pairs)
        return out

    def _fill(self, out: dict[Any, Any], pairs: list[Any]) -> dict[Any, Any]:
        for pair in pairs:
            if not isinstance(pair, list) or len(pair) != 2:
                raise _corrupt("a dict entry is not a pair")
            out[self.node(pair[0])] = self.node(pair[1])
        return out

    def _ref(self, index: int) -> Any:
        if type(index) is not int or not 0 <= index < len(self._shared):
            raise _corrupt(f"reference {index!r} to nothing")
        found = self._shared[index]
        if found is _PENDING:
            raise _corrupt("a tree refers to itself")
        return found

    def _array(self, descr: Any, shape: list[int], fortran: bool, data: bytes) -> Any:
        dtype = _dtype(descr)
        if dtype.hasobject:
            raise _corrupt("raw bytes for an object array")
        dims = _shape(shape)
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        if not isinstance(data, bytes) or len(data) != count * dtype.itemsize:
            raise _corrupt("array bytes do not match its shape")
        flat = np.frombuffer(data, dtype=dtype, count=count).copy()
        return self._keep(flat.reshape(dims, order="F" if fortran else "C"))

    def _objects(self, shape: list[int], fortran: bool, items: list[Any]) -> Any:
        dims = _shape(shape)
        if not isinstance(items, list) or len(items) != math.prod(dims):
            raise _corrupt("object array items do not match its shape")
        out = self._keep(np.empty(dims, dtype=object, order="F" if fortran else "C"))
        for index, item in zip(np.ndindex(*dims), items, strict=True):  # written in C order
            out[index] = self.node(item)
        return out

    def _scalar(self, descr: Any, data: bytes) -> Any:
        dtype = _dtype(descr)
        if dtype.hasobject or not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise _corrupt("a malformed numpy scalar")
        return np.frombuffer(data, dtype=dtype, count=1)[0]

    def _dtype_node(self, descr: Any) -> Any:
        return np.dtype(object) if descr == "|O" else _dtype(descr)

    def _type(self, module: str, name: str) -> type:
        if module == "builtins" and name in _BUILTIN_TYPES:
            return _BUILTIN_TYPES[name]
        found = getattr(np, name, None) if module == "numpy" and isinstance(name, str) else None
        if isinstance(found, type) and issubclass(found, np.generic):
            return found
        raise self._untrusted(f"the type {module}.{name}")

    def _ufunc(self, name: str) -> Any:
        found = getattr(np, name, None) if isinstance(name, str) else None
        if not isinstance(found, np.ufunc):
            raise _corrupt(f"{name!r} is not a numpy ufunc")
        return found

    def _slice(self, start: Any, stop: Any, step: Any) -> slice:
        if not all(part is None or type(part) is int for part in (start, stop, step)):
            raise _corrupt("a slice of non-integers")
        return slice(start, stop, step)

    def _random_state(self, state: Any) -> Any:
        out = self._keep(np.random.RandomState())
        try:
            legacy = self.node(state)
            sklearn_compiled.check_legacy_state(legacy)
            out.set_state(legacy)
        except (TypeError, ValueError, OverflowError) as exc:
            raise _corrupt(f"random state: {exc}") from None
        return out

    def _big_int(self, text: Any) -> int:
        if not (isinstance(text, str) and re.fullmatch(r"-?[0-9]{1,80}", text)):
            raise _corrupt(f"bad integer {text!r}")
        return int(text)

    def _generator(self, name: Any, state: Any) -> Any:
        if name not in sklearn_compiled.BIT_GENERATORS:
            raise _corrupt(f"unknown random bit generator {name!r}")
        bits = getattr(np.random, name)()
        out = self._keep(np.random.Generator(bits))
        try:
            read = self.node(state)
            sklearn_compiled.check_bit_state(name, read)
            bits.state = read
        except (TypeError, ValueError, KeyError, OverflowError) as exc:
            raise _corrupt(f"random generator state: {exc}") from None
        return out

    def _predictor(self, nodes: Any, binned: Any, raw: Any) -> Any:
        from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

        slot = len(self._shared)
        self._shared.append(_PENDING)
        fields = (self.node(nodes), self.node(binned), self.node(raw))
        try:
            largest = sklearn_compiled.predictor_features(*fields)
        except ValueError as exc:
            raise _corrupt(str(exc)) from None
        predictor = TreePredictor(*fields)
        self._shared[slot] = predictor
        self._checked.predictors[id(predictor)] = largest
        return predictor

    def _loss(self, name: Any, parameters: list[Any], attributes: list[Any]) -> Any:
        slot = len(self._shared)
        self._shared.append(_PENDING)
        try:
            loss = sklearn_compiled.rebuild_loss(name, self._fill({}, parameters),
                                                 self._fill({}, attributes))
        except ValueError as exc:
            raise _corrupt(f"loss: {exc}") from None
        self._shared[slot] = loss
        self._checked.losses.add(id(loss))
        return loss

    def _bunch(self, items: list[Any], attributes: list[Any]) -> Any:
        from sklearn.utils import Bunch

        out = self._keep(Bunch())
        self._fill(out, items)
        vars(out).update(self._fill({}, attributes))
        return out

    def _class(self, module: Any, qualname: Any) -> type:
        if not (isinstance(module, str) and isinstance(qualname, str)
                and _NAME.fullmatch(qualname)
                and (_MODULE.fullmatch(module) or self._trust)):
            raise self._untrusted(f"the class {module}.{qualname}")
        if not self._trust:
            allowed = sklearn_allowed.allowed_class(module, qualname)
            if allowed is None:
                raise self._unchecked(f"{module}.{qualname}")
            return allowed
        try:
            found = getattr(importlib.import_module(module), qualname, None)
        except ImportError as exc:
            raise _corrupt(f"it names {module}.{qualname}, which this scikit-learn "
                           f"does not have ({exc})") from None
        if not isinstance(found, type):
            raise _corrupt(f"{module}.{qualname} is not a class")
        return found

    def _estimator(self, module: Any, qualname: Any, pairs: list[Any]) -> Any:
        kind = self._class(module, qualname)
        out = self._keep(object.__new__(kind))
        state = self._fill({}, pairs)
        problem = sklearn_allowed.state_problem(kind, state)
        if problem is not None:
            raise _corrupt(f"a {qualname} with {problem}")
        unchecked = None if self._trust else sklearn_allowed.untrusted_state(kind, state)
        if unchecked is not None:
            raise self._unchecked(unchecked)
        setstate = getattr(out, "__setstate__", None)
        if setstate is not None:
            setstate(state)
        else:
            vars(out).update(state)
        self._estimators.append(out)
        return out

    def _tree(self, n_features: Any, n_classes: Any, n_outputs: Any, pairs: list[Any]) -> Any:
        from sklearn.tree._tree import NODE_DTYPE, Tree

        slot = len(self._shared)
        self._shared.append(_PENDING)
        classes, state = self.node(n_classes), self._fill({}, pairs)
        try:
            sklearn_compiled.check_tree(n_features, classes, n_outputs, state, NODE_DTYPE)
        except ValueError as exc:
            raise _corrupt(str(exc)) from None
        tree = Tree(n_features, classes, n_outputs)
        tree.__setstate__(state)
        self._shared[slot] = tree
        self._checked.trees.add(id(tree))
        return tree

    def _unchecked(self, what: str) -> UntrustedContentError:
        return UntrustedContentError(
            f"this scikit-learn model file holds {what}, whose fitted arrays scikit-learn's "
            "compiled code trusts and lineage does not check (it checks trees, forests, "
            "boosting, linear models, pipelines and common preprocessing); if you trust "
            "whoever wrote this store, load it with store.load(..., trust=True)")

    def _untrusted(self, what: str) -> UntrustedContentError:
        return UntrustedContentError(
            f"this scikit-learn model file names {what}, which is not a scikit-learn "
            "estimator; if you trust whoever wrote this store, load it with "
            "store.load(..., trust=True)")

    def check_estimators(self) -> None:
        """Every estimator holding a tree sees as many features as the tree splits on, a
        boosting model's parts fit together (see :func:`sklearn_compiled.boosting_problem`),
        and every loss is a boosting model's fitted loss (nothing else reads one)."""
        owned = set()
        for estimator in self._estimators:
            problem = sklearn_compiled.boosting_problem(estimator, self._checked)
            if problem is not None:
                raise _corrupt(f"a {type(estimator).__name__} with {problem}")
            owned.add(id(sklearn_compiled.held_loss(estimator)))
            tree = vars(estimator).get("tree_")
            if tree is None or id(tree) not in self._checked.trees:
                continue
            if getattr(estimator, "n_features_in_", None) != tree.n_features:
                raise _corrupt(f"a {type(estimator).__name__} expects "
                               f"{getattr(estimator, 'n_features_in_', None)} features but its "
                               f"tree splits on {tree.n_features}")
        if not self._checked.losses <= owned:
            raise _corrupt("a loss where no estimator reads one")


_PENDING: Final = object()
_READERS: Final[dict[str, Callable[..., Any]]] = {
    "l": _Reader._list, "t": _Reader._tuple, "d": _Reader._dict, "r": _Reader._ref,
    "a": _Reader._array, "o": _Reader._objects, "s": _Reader._scalar, "y": _Reader._dtype_node,
    "T": _Reader._type, "u": _Reader._ufunc, "S": _Reader._slice, "R": _Reader._random_state,
    "B": _Reader._bunch, "E": _Reader._estimator, "N": _Reader._tree, "I": _Reader._big_int,
    "G": _Reader._generator, "P": _Reader._predictor, "L": _Reader._loss,
}


def _shape(shape: Any) -> tuple[int, ...]:
    if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape) \
            or math.prod(shape) >= 2**48:
        raise _corrupt(f"bad shape {shape!r}")
    return tuple(shape)


def loads(data: bytes, *, trust: bool = False) -> Any:
    """The estimator back from :func:`dumps` bytes.

    Only the classes listed in the module doc are instantiated; with ``trust`` any class
    the file names is (as pickle would), never any other callable.

    Raises:
        UntrustedContentError: the file names another class and ``trust`` is false.
        CorruptRecordError: the bytes are not a well-formed ``"sklearn-state"`` file.
    """
    try:
        top = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise _corrupt(str(exc)) from None
    if not (isinstance(top, list) and len(top) == 3 and top[0] == _TAG):
        raise _corrupt("not a lineage scikit-learn state file")
    if top[1] != _VERSION:
        raise _corrupt(f"version {top[1]!r} (this lineage reads version {_VERSION})")
    reader = _Reader(trust=trust)
    try:
        model = reader.node(top[2])
        reader.check_estimators()
    except (CorruptRecordError, UntrustedContentError):
        raise
    except RecursionError:
        raise _corrupt("it nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - a class's own __setstate__ refusing the state
        raise _corrupt(f"{type(exc).__name__}: {exc}") from None
    return model
