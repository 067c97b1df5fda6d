"""The parts of a scikit-learn model that compiled code reads, as the ``"sklearn-state"``
format writes, rebuilds and checks them, so that a crafted file cannot make that code read
or write outside its arrays.

- A decision tree (``sklearn.tree._tree.Tree``) is checked by :func:`check_tree`.
- A loss (``sklearn._loss.loss``) holds a Cython object, so it is written as its class, the
  constructor arguments that made it, and its plain attributes, and rebuilt by calling that
  constructor: :func:`describe_loss`, :func:`rebuild_loss`.
- A ``TreePredictor`` (``HistGradientBoosting*``) is three arrays; :func:`predictor_features`
  checks its nodes as :func:`check_tree` checks a decision tree's.
- A random generator's state is checked by :func:`check_bit_state` (NumPy takes positions
  and numbers it then reads outside its buffers with).
- :func:`boosting_problem` checks what ties an estimator's parts together at predict and
  fit time (features per tree, trees per iteration, the loss's classes, the bin mapper).

Categorical splits are not represented: their bitsets are filled and read by compiled code
without bounds checks, so a model using them stays a pickle.

Functions here raise ``ValueError`` with the reason; :mod:`lineage.adapters.sklearn_state`
turns it into "not representable" when writing and into a malformed file when reading.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, Final

import numpy as np

__all__ = ["BIT_GENERATORS", "LOSS_MODULE", "PREDICTOR", "Checked", "boosting_problem",
           "check_bit_state", "check_legacy_state", "check_tree", "describe_loss", "held_loss",
           "predictor_features", "predictor_fields", "rebuild_loss"]

LOSS_MODULE: Final = "sklearn._loss.loss"
PREDICTOR: Final = ("sklearn.ensemble._hist_gradient_boosting.predictor", "TreePredictor")
_PREDICTOR_FIELDS: Final = frozenset({"nodes", "binned_left_cat_bitsets", "raw_left_cat_bitsets"})
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: constructor arguments that describe no fitted model (data, or where arrays live)
_NOT_PARAMETERS: Final = frozenset({"self", "sample_weight", "xp", "device"})
#: attributes rebuilt by the constructor itself (the Cython loss, the link, the intervals)
_BUILT: Final = frozenset({"closs", "link", "interval_y_true", "interval_y_pred", "xp",
                           "device"})
#: constructor arguments a loss keeps only inside its Cython object, in its pickled args
_CYTHON_ARGUMENTS: Final = {"PinballLoss": ("quantile",), "HuberLoss": ("delta",),
                            "HalfTweedieLoss": ("power",),
                            "HalfTweedieLossIdentity": ("power",)}
_PLAIN: Final = (type(None), bool, int, float)
_TREE_LEAF: Final = -1


# -- decision trees -------------------------------------------------------------------------


def check_tree(n_features: Any, n_classes: Any, n_outputs: Any, state: dict[str, Any],
                node_dtype: np.dtype[Any]) -> None:
    """Refuse a decision tree (``sklearn.tree._tree.Tree``, given as its constructor's
    arguments and pickled state) whose arrays could make scikit-learn read outside them:
    children that do not point forward and inside the tree, a node with no parent or
    several, a split feature outside ``n_features``, a depth or value shape that disagrees.

    Raises:
        ValueError: what is wrong with the tree.
    """
    if not (type(n_features) is int and n_features >= 1 and type(n_outputs) is int
            and n_outputs >= 1):
        raise ValueError("a tree without features or outputs")
    if not (isinstance(n_classes, np.ndarray) and n_classes.dtype.kind == "i"
            and n_classes.shape == (n_outputs,) and bool(np.all(n_classes >= 1))):
        raise ValueError("a tree's class counts do not match its outputs")
    nodes, values = state.get("nodes"), state.get("values")
    count, depth = state.get("node_count"), state.get("max_depth")
    if not (isinstance(nodes, np.ndarray) and nodes.dtype == node_dtype and nodes.ndim == 1
            and type(count) is int and len(nodes) == count >= 1 and type(depth) is int):
        raise ValueError("a tree's node array does not match its node count")
    if not (isinstance(values, np.ndarray) and values.dtype == np.float64
            and values.shape == (count, n_outputs, int(n_classes.max()))):
        raise ValueError("a tree's value array does not match its nodes")
    left, right = nodes["left_child"], nodes["right_child"]
    index = np.arange(count)
    leaf = left == _TREE_LEAF
    if bool(np.any(leaf != (right == _TREE_LEAF))):
        raise ValueError("a tree node has one child")
    inner, lefts, rights = index[~leaf], left[~leaf], right[~leaf]
    feature = nodes["feature"][~leaf]
    if bool(np.any(lefts <= inner) | np.any(rights <= inner) | np.any(lefts >= count)
            | np.any(rights >= count) | np.any(feature < 0) | np.any(feature >= n_features)):
        raise ValueError("a tree node points outside the tree or its features")
    children = np.concatenate([lefts, rights])
    parents = np.bincount(children, minlength=count)
    if parents[0] != 0 or bool(np.any(parents[1:] != 1)):
        raise ValueError("a tree node has no parent or several")
    reached, frontier = 0, np.array([0])
    while True:  # children point forward, so this ends after at most `count` levels
        internal = frontier[left[frontier] != _TREE_LEAF]
        if not internal.size:
            break
        frontier = np.concatenate([left[internal], right[internal]])
        reached += 1
    if reached != depth:
        raise ValueError(f"a tree says its depth is {depth} but it is {reached}")


# -- losses ---------------------------------------------------------------------------------


def _loss_class(qualname: Any) -> type:
    from sklearn._loss import loss

    found = getattr(loss, qualname, None) if isinstance(qualname, str) else None
    if not (isinstance(qualname, str) and _NAME.fullmatch(qualname) and isinstance(found, type)
            and issubclass(found, loss.BaseLoss) and found is not loss.BaseLoss
            and found.__module__ == LOSS_MODULE):
        raise ValueError(f"{qualname!r} is not a scikit-learn loss")
    return found


def _parameter_names(kind: type) -> list[str]:
    return [name for name in inspect.signature(kind.__init__).parameters  # type: ignore[misc]
            if name not in _NOT_PARAMETERS]


def describe_loss(value: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """``(class name, constructor arguments, plain attributes)`` of a scikit-learn loss,
    checked to rebuild into an equal loss.

    Raises:
        ValueError: not a loss of ``sklearn._loss.loss``, or one these cannot rebuild.
    """
    kind = type(value)
    if kind.__module__ != LOSS_MODULE:
        raise ValueError(f"{kind.__module__}.{kind.__qualname__} is not a scikit-learn loss")
    _loss_class(kind.__qualname__)
    state = vars(value)
    inside = dict(zip(_CYTHON_ARGUMENTS.get(kind.__qualname__, ()),
                      value.closs.__reduce__()[1], strict=False))
    parameters = {}
    for name in _parameter_names(kind):
        found = state[name] if name in state else inside.get(name)
        if type(found) not in _PLAIN:
            raise ValueError(f"a {kind.__qualname__} whose {name} is not a plain value")
        parameters[name] = found
    attributes = {key: item for key, item in state.items() if key not in _BUILT}
    if not all(type(item) in _PLAIN for item in attributes.values()):
        raise ValueError(f"a {kind.__qualname__} holding arrays (a loss in the middle of fit)")
    if state.get("xp") is not None or state.get("device") is not None:
        raise ValueError(f"a {kind.__qualname__} bound to an array library")
    if not _same_loss(rebuild_loss(kind.__qualname__, parameters, attributes), value):
        raise ValueError(f"a {kind.__qualname__} its constructor does not rebuild")
    return kind.__qualname__, parameters, attributes


def rebuild_loss(qualname: Any, parameters: dict[Any, Any], attributes: dict[Any, Any]) -> Any:
    """The loss :func:`describe_loss` described: its class called with the arguments, then
    the plain attributes set (only ones the new loss has, to plain values).

    Raises:
        ValueError: not a scikit-learn loss, an argument it does not take or refuses, or
            an attribute it does not have.
    """
    kind = _loss_class(qualname)
    allowed = set(_parameter_names(kind))
    if not (set(parameters) <= allowed
            and all(type(item) in _PLAIN for item in parameters.values())):
        raise ValueError(f"arguments {sorted(map(str, parameters))} for {qualname}")
    try:
        loss = kind(**parameters)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{qualname}: {exc}") from None
    state = vars(loss)
    for key, item in attributes.items():
        if key not in state or key in _BUILT or type(item) not in _PLAIN:
            raise ValueError(f"{qualname} has no plain attribute {key!r}")
        state[key] = item
    return loss


def _same_loss(rebuilt: Any, original: Any) -> bool:
    if type(rebuilt) is not type(original) or type(rebuilt.link) is not type(original.link):
        return False
    mine, theirs = vars(rebuilt), vars(original)
    if mine.keys() != theirs.keys():
        return False
    plain = all(mine[key] == theirs[key] for key in mine if key not in ("closs", "link"))
    return plain and rebuilt.closs.__reduce__() == original.closs.__reduce__()


# -- histogram gradient boosting's trees ---------------------------------------------------


def predictor_fields(value: Any) -> tuple[Any, Any, Any]:
    """``(nodes, binned bitsets, raw bitsets)`` of a ``TreePredictor``.

    Raises:
        ValueError: it holds other attributes than those three.
    """
    state = vars(value)
    if state.keys() != _PREDICTOR_FIELDS:
        raise ValueError("a tree predictor with unknown attributes")
    return state["nodes"], state["binned_left_cat_bitsets"], state["raw_left_cat_bitsets"]


def predictor_features(nodes: Any, binned: Any, raw: Any) -> int:
    """The largest feature index a ``TreePredictor``'s nodes split on (-1: a single leaf),
    once its arrays are checked: the node record type, children that point forward and
    inside the array, one parent per node but the root, no negative feature, and no
    categorical split.

    Raises:
        ValueError: what is wrong with the arrays.
    """
    from sklearn.ensemble._hist_gradient_boosting.common import (
        PREDICTOR_RECORD_DTYPE,
        X_BITSET_INNER_DTYPE,
    )

    if not (isinstance(nodes, np.ndarray) and nodes.dtype == PREDICTOR_RECORD_DTYPE
            and nodes.ndim == 1 and len(nodes) >= 1):
        raise ValueError("a tree predictor's nodes are not a node array")
    for bitsets in (binned, raw):
        if not (isinstance(bitsets, np.ndarray) and bitsets.dtype == X_BITSET_INNER_DTYPE
                and bitsets.ndim == 2 and bitsets.shape[1] == 8):
            raise ValueError("a tree predictor's category bitsets are malformed")
    if bool(np.any(nodes["is_categorical"] != 0)):
        raise ValueError("a tree predictor with categorical splits")
    count = len(nodes)
    leaf = nodes["is_leaf"]
    if bool(np.any(leaf > 1)):
        raise ValueError("a tree predictor's leaf flags are not 0 or 1")
    inner = np.flatnonzero(leaf == 0)
    lefts = nodes["left"][inner].astype(np.int64)
    rights = nodes["right"][inner].astype(np.int64)
    feature = nodes["feature_idx"][inner]
    if bool(np.any(lefts <= inner) | np.any(rights <= inner) | np.any(lefts >= count)
            | np.any(rights >= count) | np.any(feature < 0)):
        raise ValueError("a tree predictor's node points outside the tree or its features")
    parents = np.bincount(np.concatenate([lefts, rights]), minlength=count)
    if parents[0] != 0 or bool(np.any(parents[1:] != 1)):
        raise ValueError("a tree predictor's node has no parent or several")
    return int(feature.max()) if feature.size else -1


# -- random generators ----------------------------------------------------------------------

#: the bit generators a Generator may be driven by (NumPy's default and the legacy one)
BIT_GENERATORS: Final = frozenset({"PCG64", "PCG64DXSM", "MT19937"})
_MT_KEY: Final = 624  # words in an MT19937 key; its position runs 0..624


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def check_bit_state(name: str, state: Any) -> None:
    """Refuse a bit generator state NumPy would take but then read outside its buffers:
    it checks neither MT19937's position nor the sizes of the numbers it is given.

    Raises:
        ValueError: ``name`` is not one of :data:`BIT_GENERATORS`, or the state is not
            one of that generator.
    """
    fields = state.get("state") if isinstance(state, dict) else None
    if name not in BIT_GENERATORS or state.get("bit_generator") != name \
            or not isinstance(fields, dict):
        raise ValueError(f"a random generator state that is not one of {name}")
    if name == "MT19937":
        key = fields.get("key")
        if not (isinstance(key, np.ndarray) and key.dtype == np.uint32
                and key.shape == (_MT_KEY,) and _is_int(fields.get("pos"), 0, _MT_KEY)):
            raise ValueError("an MT19937 state with a key or position out of range")
        return
    if not (_is_int(fields.get("state"), 0, 2**128 - 1)
            and _is_int(fields.get("inc"), 0, 2**128 - 1)
            and _is_int(state.get("has_uint32"), 0, 1)
            and _is_int(state.get("uinteger"), 0, 2**32 - 1)):
        raise ValueError(f"a {name} state with numbers out of range")


def check_legacy_state(state: Any) -> None:
    """The same for a ``RandomState``'s ``get_state(legacy=True)`` tuple.

    Raises:
        ValueError: the state is not an MT19937 one, or its key or position is out of range.
    """
    if not (isinstance(state, tuple) and len(state) == 5 and state[0] == "MT19937"):
        raise ValueError("a random state that is not an MT19937 one")
    check_bit_state("MT19937", {"bit_generator": "MT19937",
                                "state": {"key": state[1], "pos": state[2]}})


# -- what ties a boosting model together ---------------------------------------------------


class Checked:
    """What a reader has checked so far: decision trees (by id), tree predictors (id ->
    the largest feature they split on) and losses (by id)."""

    __slots__ = ("losses", "predictors", "trees")

    def __init__(self) -> None:
        self.trees: set[int] = set()
        self.predictors: dict[int, int] = {}
        self.losses: set[int] = set()


def boosting_problem(estimator: Any, checked: Checked) -> str | None:
    """Why ``estimator`` (read from a file) could make compiled code read or write outside
    its arrays, or ``None``.

    - ``_BinMapper``: thresholds, flags and bin counts for the same features, no
      categorical feature, a sane thread count;
    - ``HistGradientBoosting*``: no categorical feature, no preprocessor (predict would
      skip its input checks), not marked as in the middle of fit; every predictor checked,
      splitting only on the estimator's features;
    - ``GradientBoosting*``: one checked tree per class and iteration, each over the
      estimator's features, and initial predictions as wide as a row of trees;
    - both families: the loss a parameter name, the fitted loss one for as many classes as
      trees per iteration;
    - forests: every tree over as many features as the forest gives it.
    """
    if not type(estimator).__module__.startswith("sklearn.ensemble."):
        return None  # and loading a linear model imports no ensemble module
    from sklearn.ensemble._gb import BaseGradientBoosting
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.gradient_boosting import (
        BaseHistGradientBoosting,
    )

    if isinstance(estimator, _BinMapper):
        return _bin_mapper_problem(vars(estimator))
    if isinstance(estimator, BaseHistGradientBoosting):
        return _loss_problem(estimator, checked) or _histogram_problem(estimator, checked)
    if isinstance(estimator, BaseGradientBoosting):
        return _loss_problem(estimator, checked) or _stages_problem(estimator, checked)
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._forest import BaseForest

    if isinstance(estimator, BaseForest | IsolationForest):
        return _forest_problem(estimator, isinstance(estimator, IsolationForest))
    return None


def _forest_problem(estimator: Any, subsampled: bool) -> str | None:
    """A forest checks X once against its own feature count, then has each tree read it
    unchecked (``check_input=False``); an isolation forest first keeps ``_max_features``
    columns of it, those its ``estimators_features_`` name."""
    state = vars(estimator)
    trees, n_features = state.get("estimators_"), state.get("n_features_in_")
    if trees is None:
        return None  # not fitted
    if not isinstance(trees, list) or type(n_features) is not int:
        return "trees that are not a list, or no feature count"
    width = n_features
    if subsampled:
        width, columns = state.get("_max_features"), state.get("estimators_features_")
        if not (type(width) is int and isinstance(columns, list)
                and len(columns) == len(trees)
                and all(isinstance(c, np.ndarray) and c.shape == (width,) for c in columns)):
            return "trees and feature subsets that do not match"
    for tree in trees:
        if getattr(tree, "n_features_in_", None) != width:
            return f"a tree over {getattr(tree, 'n_features_in_', None)} features where it " \
                   f"is given {width}"
    return None


#: where an estimator keeps a fitted loss: gradient boosting (checked against its trees by
#: :func:`boosting_problem`) and the generalized linear models (which use only its link)
_LOSS_ATTRIBUTES: Final = {"sklearn.ensemble.": "_loss", "sklearn.linear_model.": "_base_loss"}


def held_loss(estimator: Any) -> Any:
    """The fitted loss ``estimator``'s own code uses, or ``None``: a loss found anywhere
    else in a file is refused (no other code reads one)."""
    module = type(estimator).__module__
    for prefix, attribute in _LOSS_ATTRIBUTES.items():
        if module.startswith(prefix):
            return vars(estimator).get(attribute)
    return None


def _bin_mapper_problem(state: dict[str, Any]) -> str | None:
    threads = state.get("n_threads")
    if threads is not None and not _is_int(threads, -1024, 1024):
        return f"a thread count of {threads!r}"
    if "bin_thresholds_" not in state:
        return None  # not fitted
    thresholds, flags = state["bin_thresholds_"], state.get("is_categorical_")
    counts = state.get("n_bins_non_missing_")
    if not (isinstance(counts, np.ndarray) and counts.ndim == 1):
        return "no bin count per feature"
    features = len(counts)
    if not (isinstance(thresholds, list) and len(thresholds) == features
            and all(isinstance(t, np.ndarray) and t.dtype == np.float64 and t.ndim == 1
                    for t in thresholds)):
        return f"bin thresholds that are not {features} arrays of numbers"
    if not (isinstance(flags, np.ndarray) and flags.dtype == np.uint8
            and flags.shape == (features,) and flags.flags.c_contiguous):
        return f"categorical flags that are not {features} bytes"
    if bool(flags.any()):
        return "categorical features (kept only as pickles)"
    if not _is_int(state.get("missing_values_bin_idx_"), 0, 255):
        return "a missing-values bin outside 0..255"
    return None


def _loss_problem(estimator: Any, checked: Checked) -> str | None:
    state = vars(estimator)
    if not isinstance(state.get("loss"), str):
        return "a loss parameter that is not a loss's name"
    if "_loss" not in state:
        return None  # not fitted
    loss, per_iteration = state["_loss"], state.get("n_trees_per_iteration_")
    if id(loss) not in checked.losses:
        return "a fitted loss that is not a scikit-learn loss"
    width = loss.n_classes if loss.is_multiclass else 1
    if not _is_int(per_iteration, 1, 2**31) or width != per_iteration:
        return f"a loss for {width} trees an iteration where the model has {per_iteration}"
    return None


def _histogram_problem(estimator: Any, checked: Checked) -> str | None:
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper

    state = vars(estimator)
    categorical = state.get("is_categorical_")
    if categorical is not None and not (isinstance(categorical, np.ndarray)
                                        and not bool(categorical.any())):
        return "categorical features (kept only as pickles)"
    if state.get("_preprocessor") is not None:
        return "a preprocessor (only categorical models have one)"
    if state.get("_in_fit", False) is not False:
        return "a mark of being in the middle of fit"
    if "_predictors" not in state:
        return None  # not fitted
    n_features, iterations = state.get("n_features_in_"), state["_predictors"]
    if type(n_features) is not int or n_features < 1:
        return "a fitted model without a feature count"
    if not isinstance(state.get("_bin_mapper"), _BinMapper):
        return "a fitted model without its bin mapper"
    if not (isinstance(iterations, list) and all(isinstance(row, list) for row in iterations)):
        return "its trees are not a list of lists"
    for row in iterations:
        for predictor in row:
            largest = checked.predictors.get(id(predictor))
            if largest is None:
                return "it holds a tree predictor that was not checked"
            if largest >= n_features:
                return (f"a tree splits on feature {largest} of a model of {n_features} "
                        "features")
    return None


def _stages_problem(estimator: Any, checked: Checked) -> str | None:
    from sklearn._loss.loss import HalfMultinomialLoss
    from sklearn.dummy import DummyClassifier, DummyRegressor
    from sklearn.tree import DecisionTreeRegressor

    state = vars(estimator)
    if "estimators_" not in state:
        return None  # not fitted
    stages, per_stage = state["estimators_"], state.get("n_trees_per_iteration_")
    n_features = state.get("n_features_in_")
    if not (isinstance(stages, np.ndarray) and stages.dtype == object and stages.ndim == 2
            and stages.shape[0] >= 1 and type(per_stage) is int
            and stages.shape[1] == per_stage and type(n_features) is int):
        return "its trees are not a stages × trees-per-iteration array"
    for tree in stages.reshape(-1):
        # predict_stages reads each tree's arrays in C, taking tree_ as a Tree unchecked
        if not (type(tree) is DecisionTreeRegressor
                and getattr(tree, "n_features_in_", None) == n_features
                and id(vars(tree).get("tree_")) in checked.trees):
            return f"a stage is not a regression tree over the model's {n_features} features"
    # predict adds tree k of each stage into column k of the initial predictions,
    # unchecked: those must be exactly one column per tree of a stage
    init = state.get("init_")
    if isinstance(init, str) and init == "zero":
        return None
    fitted = vars(init) if type(init) in (DummyClassifier, DummyRegressor) else {}
    if fitted.get("n_outputs_") != 1:
        return "its initial estimator is not scikit-learn's default one"
    if type(init) is DummyRegressor:
        width = 1
    else:
        prior = fitted.get("class_prior_")
        if fitted.get("_strategy") != "prior" or not (isinstance(prior, np.ndarray)
                                                      and prior.ndim == 1):
            return "its initial estimator is not scikit-learn's default one"
        multiclass = isinstance(state.get("_loss"), HalfMultinomialLoss)
        width = len(prior) if multiclass else 1
    if width != per_stage:
        return f"its initial predictions have {width} columns for {per_stage} trees a stage"
    return None
