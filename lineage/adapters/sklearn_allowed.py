"""Which scikit-learn classes a ``"sklearn-state"`` file may name when it is loaded without
``trust=True``, and what is checked of the state it gives them.

Loading never runs code a file names, but scikit-learn's compiled code (Cython, libsvm,
scipy's sparse kernels, OpenMP) trusts fitted arrays: a crafted ``_n_support``,
``cluster_centers_`` or ``_fit_X`` makes it read or write outside them. A class is listed
in :data:`ALLOWED` only when what its predict, transform and warm-start fit read either
goes through numpy (whose indexing is checked) or is checked on load: trees, forests and
boosting in :mod:`lineage.adapters.sklearn_compiled`, one-hot encoding and coefficients
here. Any other estimator (SVMs, k-means, nearest neighbours, text vectorizers, topic
models, ...) is stored in the same format, but loading it needs ``trust=True``: lineage
cannot vouch for its arrays.

Only the public modules listed are imported to find a class, so a file cannot make
loading import any other module (scikit-learn's own test modules run code on import).
"""

from __future__ import annotations

import functools
import importlib
import inspect
from typing import Any, Final

import numpy as np

__all__ = ["ALLOWED", "allowed_class", "state_problem", "untrusted_state"]

#: public module -> the classes of it (or of its private submodules) loadable without trust
ALLOWED: Final[dict[str, frozenset[str]]] = {
    "sklearn.pipeline": frozenset({"Pipeline", "FeatureUnion"}),
    "sklearn.compose": frozenset({"ColumnTransformer", "TransformedTargetRegressor",
                                  "make_column_selector"}),
    "sklearn.model_selection": frozenset({"GridSearchCV", "RandomizedSearchCV",
                                          "FixedThresholdClassifier",
                                          "TunedThresholdClassifierCV"}),
    "sklearn.calibration": frozenset({"CalibratedClassifierCV", "_CalibratedClassifier",
                                      "_SigmoidCalibration"}),
    "sklearn.isotonic": frozenset({"IsotonicRegression"}),
    "sklearn.linear_model": frozenset({
        "LogisticRegression", "LogisticRegressionCV", "LinearRegression", "Ridge",
        "RidgeCV", "RidgeClassifier", "RidgeClassifierCV", "Lasso", "LassoCV", "ElasticNet",
        "ElasticNetCV", "BayesianRidge", "ARDRegression", "HuberRegressor",
        "QuantileRegressor", "PoissonRegressor", "GammaRegressor", "TweedieRegressor",
        "Lars", "LarsCV", "LassoLars", "LassoLarsCV", "LassoLarsIC",
        "OrthogonalMatchingPursuit"}),
    "sklearn.svm": frozenset({"LinearSVC", "LinearSVR"}),
    "sklearn.discriminant_analysis": frozenset({"LinearDiscriminantAnalysis",
                                                "QuadraticDiscriminantAnalysis"}),
    "sklearn.naive_bayes": frozenset({"GaussianNB", "MultinomialNB", "BernoulliNB",
                                      "ComplementNB", "CategoricalNB"}),
    "sklearn.dummy": frozenset({"DummyClassifier", "DummyRegressor"}),
    "sklearn.tree": frozenset({"DecisionTreeClassifier", "DecisionTreeRegressor",
                               "ExtraTreeClassifier", "ExtraTreeRegressor"}),
    "sklearn.ensemble": frozenset({
        "RandomForestClassifier", "RandomForestRegressor", "ExtraTreesClassifier",
        "ExtraTreesRegressor", "IsolationForest", "GradientBoostingClassifier",
        "GradientBoostingRegressor", "HistGradientBoostingClassifier",
        "HistGradientBoostingRegressor", "BaggingClassifier", "BaggingRegressor",
        "AdaBoostClassifier", "AdaBoostRegressor", "VotingClassifier", "VotingRegressor",
        "StackingClassifier", "StackingRegressor"}),
    "sklearn.ensemble._hist_gradient_boosting.binning": frozenset({"_BinMapper"}),
    "sklearn.preprocessing": frozenset({
        "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer",
        "Binarizer", "FunctionTransformer", "PolynomialFeatures", "KBinsDiscretizer",
        "QuantileTransformer", "PowerTransformer", "LabelEncoder", "LabelBinarizer",
        "OrdinalEncoder", "OneHotEncoder", "TargetEncoder"}),
    "sklearn.impute": frozenset({"SimpleImputer", "MissingIndicator"}),
    "sklearn.decomposition": frozenset({"PCA", "TruncatedSVD"}),
    "sklearn.feature_selection": frozenset({"VarianceThreshold", "SelectFromModel"}),
    "sklearn.mixture": frozenset({"GaussianMixture"}),
}


def allowed_class(module: str, qualname: str) -> type | None:
    """The class ``module.qualname`` names when :data:`ALLOWED` lists it, found by importing
    only the listed public module; ``None`` otherwise."""
    for public, names in ALLOWED.items():
        if qualname in names and (module == public or module.startswith(public + ".")):
            found = getattr(importlib.import_module(public), qualname, None)
            if isinstance(found, type) and found.__module__ == module:
                return found
    return None


def state_problem(kind: type, state: dict[Any, Any]) -> str | None:
    """Why the state a file gives an instance of ``kind`` is malformed, or ``None``.

    - A key may not hide a class attribute that is not a constructor parameter (a method,
      a property, or data such as ``_parameter_constraints`` that scikit-learn calls or
      trusts): a file gives values, never behaviour.
    - Fitted coefficients are as wide as the features the estimator saw (a warm-start fit
      reads them in compiled code).
    - A one-hot encoder's output widths are what its categories give (scipy writes each
      one at a column computed from them).
    """
    for key in state:
        if isinstance(key, str) and _hides_a_class_attribute(kind, key):
            return f"state {key!r} that would hide its class's {key}"
    coefficients, features = state.get("coef_"), state.get("n_features_in_")
    if isinstance(coefficients, np.ndarray) and type(features) is int \
            and (coefficients.ndim == 0 or coefficients.shape[-1] != features):
        return f"coefficients of shape {coefficients.shape} for {features} features"
    check = _CLASS_CHECKS.get(_path(kind))
    return check(kind, state) if check is not None else None


def untrusted_state(kind: type, state: dict[Any, Any]) -> str | None:
    """What in a well-formed state lineage does not check (loadable with ``trust=True``
    only), or ``None``."""
    if _path(kind) == ("sklearn.preprocessing._encoders", "OneHotEncoder") \
            and state.get("_infrequent_enabled"):
        return "a one-hot encoder grouping infrequent categories"
    return None


def _path(kind: type) -> tuple[str, str]:
    return kind.__module__, kind.__qualname__


@functools.lru_cache(maxsize=8192)  # per class and key: a forest repeats its trees' keys
def _hides_a_class_attribute(kind: type, key: str) -> bool:
    return key not in _parameters(kind) and inspect.getattr_static(kind, key, None) is not None


@functools.cache
def _parameters(kind: type) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(kind.__init__).parameters)  # type: ignore[misc]
    except (TypeError, ValueError):
        return frozenset()


def _one_hot_problem(kind: type, state: dict[Any, Any]) -> str | None:
    if "categories_" not in state:
        return None  # not fitted
    categories = state["categories_"]
    if not (isinstance(categories, list) and all(
            isinstance(c, np.ndarray) and c.ndim == 1 for c in categories)):
        return "categories that are not a list of arrays"
    features = state.get("n_features_in_")
    if features is not None and features != len(categories):
        return f"{len(categories)} category lists for {features} features"
    if not all(_sorted(values) for values in categories):
        return "categories that are not sorted"  # they are found by binary search
    for key in ("drop_idx_", "_drop_idx_after_grouping"):
        dropped = state.get(key)
        if dropped is None:
            continue
        if not (isinstance(dropped, np.ndarray) and dropped.shape == (len(categories),)
                and all(d is None or (isinstance(d, int | np.integer) and 0 <= d < len(c))
                        for d, c in zip(dropped, categories, strict=True))):
            return f"{key} outside the categories"
    if state.get("_infrequent_enabled"):
        return None  # needs trust: see untrusted_state
    rebuilt: Any = object.__new__(kind)
    vars(rebuilt).update(state)
    try:
        widths = rebuilt._compute_n_features_outs()
    except Exception as exc:  # noqa: BLE001 - scikit-learn's own code on the file's state
        return f"categories scikit-learn cannot count ({type(exc).__name__})"
    if state.get("_n_features_outs") != widths:
        return f"output widths {state.get('_n_features_outs')!r} where its categories give " \
               f"{widths!r}"
    return None


def _sorted(values: np.ndarray[Any, Any]) -> bool:
    """Whether ``values`` are strictly increasing, missing values (None, NaN) only at the
    end: the order scikit-learn keeps labels and categories in, and finds them by binary
    search in (an unsorted array makes it compute an index past the end)."""
    items = values.tolist()
    missing = [v is None or (isinstance(v, float) and v != v) for v in items]
    present = missing.index(True) if True in missing else len(items)
    if not all(missing[present:]):
        return False
    try:
        return all(a < b for a, b in zip(items[:present], items[1:present], strict=False))
    except TypeError:  # values of kinds that do not compare
        return False


def _labels_problem(kind: type, state: dict[Any, Any]) -> str | None:
    classes = state.get("classes_")
    if classes is None:
        return None  # not fitted
    if not (isinstance(classes, np.ndarray) and classes.ndim == 1 and _sorted(classes)):
        return "classes that are not sorted"
    return None


def _polynomial_problem(kind: type, state: dict[Any, Any]) -> str | None:
    """Its degrees and output widths are what its parameters and input width give (the
    transform loops up to the maximal degree over columns it does not check)."""
    if "n_output_features_" not in state:
        return None  # not fitted
    degree, features = state.get("degree"), state.get("n_features_in_")
    degrees = (0, degree) if type(degree) is int else tuple(degree) \
        if isinstance(degree, tuple | list) else None
    if degrees != (state.get("_min_degree"), state.get("_max_degree")) \
            or type(features) is not int or not all(type(d) is int and d >= 0 for d in degrees):
        return "degrees that its degree parameter does not give"
    count = getattr(kind, "_num_combinations")  # noqa: B009 - a static method of scikit-learn
    options = {"n_features": features, "max_degree": degrees[1],
               "interaction_only": bool(state.get("interaction_only")),
               "include_bias": bool(state.get("include_bias"))}
    widths = (count(min_degree=degrees[0], **options), count(min_degree=0, **options))
    if widths != (state.get("n_output_features_"), state.get("_n_out_full")) \
            or widths[1] > 2**31:
        return f"output widths that its degrees do not give ({widths[1]} columns in all)"
    return None


#: the classes whose state is checked beyond :func:`state_problem`'s rules, by path
_CLASS_CHECKS: Final = {
    ("sklearn.preprocessing._encoders", "OneHotEncoder"): _one_hot_problem,
    ("sklearn.preprocessing._label", "LabelBinarizer"): _labels_problem,
    ("sklearn.preprocessing._label", "LabelEncoder"): _labels_problem,
    ("sklearn.preprocessing._polynomial", "PolynomialFeatures"): _polynomial_problem,
}
