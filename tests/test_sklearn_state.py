"""The "sklearn-state" model format: the usual scikit-learn models load without trust=True,
the same fitted model always gives the same bytes, and a crafted file can neither name a
class outside scikit-learn nor make a tree read outside its arrays."""

from __future__ import annotations

import pickle
import subprocess
import sys
from typing import Any

import msgpack
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.ensemble import ExtraTreesRegressor, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from lineage.adapters import sklearn_state
from lineage.errors import CorruptRecordError, UntrustedContentError
from lineage.store import Store

FEATURES = ["age", "bmi", "sex", "site"]


def cohort(seed: int = 0, rows: int = 240) -> tuple[pd.DataFrame, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "age": rng.integers(20, 90, rows).astype(float),
        "bmi": rng.normal(27, 4, rows),
        "sex": rng.choice(["F", "M"], rows),
        "site": rng.choice(["ward-a", "ward-b", "ward-c"], rows),
    })
    frame.loc[3, "age"] = np.nan
    label = (frame["bmi"] + rng.normal(0, 2, rows) > 27).to_numpy(dtype=int)
    return frame, label


def grid_searched_pipeline(seed: int = 0) -> Pipeline:
    """The shape most real models take: a GridSearchCV's best ColumnTransformer pipeline."""
    frame, label = cohort(seed)
    numeric = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
    prepare = ColumnTransformer([
        ("num", numeric, ["age", "bmi"]),
        ("cat", OneHotEncoder(handle_unknown="ignore", dtype=np.float64),
         make_column_selector(dtype_exclude="number")),
    ])
    pipeline = Pipeline([("prepare", prepare), ("model", LogisticRegression(max_iter=500))])
    search = GridSearchCV(pipeline, {"model__C": [0.1, 1.0]}, cv=3).fit(frame, label)
    best: Pipeline = search.best_estimator_
    return best


def test_a_grid_searched_column_transformer_pipeline_loads_without_trust(store: Store) -> None:
    pipeline = grid_searched_pipeline()
    frame, _label = cohort(1)
    artifact = store.add(pipeline, name="model", version="v1.0")
    assert artifact.format == "sklearn-state"
    back = store.load("model@v1.0")  # no trust=True
    assert type(back) is Pipeline
    assert np.array_equal(back.predict_proba(frame), pipeline.predict_proba(frame))
    assert list(back.named_steps["prepare"].get_feature_names_out()) == list(
        pipeline.named_steps["prepare"].get_feature_names_out())


def test_the_same_fitted_pipeline_gets_the_same_digest(store: Store) -> None:
    first = store.add(grid_searched_pipeline(), name="model")
    refit = store.add(grid_searched_pipeline(), name="model")  # fitted again, same data
    reloaded = store.add(store.load("model"), name="model")  # read back, added again
    copied = store.add(pickle.loads(pickle.dumps(grid_searched_pipeline())), name="model")
    assert first.digest == refit.digest == reloaded.digest == copied.digest
    assert [v.version for v in store.versions("model")] == [first.version]
    other = store.add(grid_searched_pipeline(seed=5), name="model")
    assert other.digest != first.digest


def test_the_pipeline_summary_names_weights_by_transformed_feature(store: Store) -> None:
    summary = store.add(grid_searched_pipeline()).summary
    assert summary["class"] == "sklearn.pipeline.Pipeline"
    assert summary["params"]["model__C"] in (0.1, 1.0)
    assert summary["classes"] == [0, 1]
    assert summary["feature_names"] == FEATURES
    assert set(summary["coef"]) == {"num__age", "num__bmi", "cat__sex_F", "cat__sex_M",
                                    "cat__site_ward-a", "cat__site_ward-b", "cat__site_ward-c"}


@pytest.mark.parametrize("model", [
    RandomForestClassifier(n_estimators=4, random_state=0),
    DecisionTreeClassifier(max_depth=3, random_state=0),
    ExtraTreesRegressor(n_estimators=3, random_state=0),
], ids=lambda m: type(m).__name__)
def test_tree_models_load_without_trust(store: Store, model: Any) -> None:
    frame, label = cohort()
    numeric = frame[["age", "bmi"]].fillna(0)
    model.fit(numeric, label)
    artifact = store.add(model)
    assert artifact.format == "sklearn-state"
    back = store.load(artifact.digest)
    assert np.array_equal(back.predict(numeric), model.predict(numeric))
    assert store.add(back).digest == artifact.digest


def test_models_holding_code_stay_pickles(store: Store) -> None:
    frame, label = cohort()
    numeric = frame[["age", "bmi"]].fillna(0)
    lambda_step = make_pipeline(FunctionTransformer(lambda x: x), LogisticRegression())
    for model in (make_pipeline(FunctionTransformer(_double), LogisticRegression()),):
        artifact = store.add(model.fit(numeric, label))
        assert artifact.format == "sklearn-pickle"
        with pytest.raises(UntrustedContentError, match="trust=True"):
            store.load(artifact.digest)
        assert np.array_equal(store.load(artifact.digest, trust=True).predict(numeric),
                              model.predict(numeric))
    with pytest.raises(Exception, match="lambda|local"):
        store.add(lambda_step.fit(numeric, label))


def _double(x: Any) -> Any:
    return x * 2


def test_numpy_ufuncs_and_dtypes_as_params_are_kept() -> None:
    frame, label = cohort()
    numeric = frame[["age", "bmi"]].fillna(0)
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()).fit(numeric, label)
    back = sklearn_state.loads(sklearn_state.dumps(model))
    assert back.steps[0][1].func is np.log1p
    assert np.array_equal(back.predict(numeric), model.predict(numeric))


plain = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.binary(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4) | st.integers(-(2**63), 2**63), inner, max_size=4),
    max_leaves=12,
)


@given(plain)
def test_plain_values_in_an_estimator_round_trip(value: Any) -> None:
    model = LogisticRegression()
    model.extra_ = value
    data = sklearn_state.dumps(model)
    back = sklearn_state.loads(data)
    assert back.extra_ == value and type(back.extra_) is type(value)
    assert sklearn_state.dumps(back) == data


def test_shared_objects_stay_shared() -> None:
    shared = [1, 2]
    model = LogisticRegression()
    model.a_, model.b_ = shared, {"again": shared}
    back = sklearn_state.loads(sklearn_state.dumps(model))
    assert back.a_ is back.b_["again"]


# -- crafted files -----------------------------------------------------------------------------


def crafted(root: Any) -> bytes:
    return msgpack.packb(["lineage/sklearn-state", 1, root], use_bin_type=True)


@pytest.mark.parametrize(("module", "name"), [
    ("os", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
    ("sklearn.utils._testing", "TempMemmap"),  # in sklearn, but not an estimator
    ("sklearn..x", "Y"), ("sklearn.linear_model", "LogisticRegression.__init__"),
])
def test_a_file_naming_a_class_outside_scikit_learn_estimators_is_refused(
        module: str, name: str) -> None:
    with pytest.raises((UntrustedContentError, CorruptRecordError)):
        sklearn_state.loads(crafted(["E", module, name, []]))


def test_types_and_functions_outside_the_allowed_set_are_refused() -> None:
    with pytest.raises(UntrustedContentError):
        sklearn_state.loads(crafted(["T", "builtins", "eval"]))
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(crafted(["u", "load"]))  # numpy.load is not a ufunc
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(crafted(["a", "|O", [1], False, b"\0" * 8]))  # object pointers


def test_malformed_files_raise_a_typed_error() -> None:
    for data in (b"", b"\xc1", crafted(["zz"]), crafted(["r", 4]), crafted(["a", "<f8", [2],
                 False, b"\0" * 3]), msgpack.packb(["lineage/sklearn-state", 2, None])):
        with pytest.raises(CorruptRecordError):
            sklearn_state.loads(data)


def tree_file(edit: Any) -> bytes:
    """A fitted decision tree's file with its tree node edited by ``edit(state)``."""
    frame, label = cohort()
    model = DecisionTreeClassifier(max_depth=3, random_state=0)
    model.fit(frame[["age", "bmi"]].fillna(0), label)
    top = msgpack.unpackb(sklearn_state.dumps(model), raw=False)
    pairs = top[2][3]
    tree = next(value for key, value in pairs if key == "tree_")
    state = dict(tree[4])
    nodes = state["nodes"]
    dtype = np.lib.format.descr_to_dtype([tuple(f) for f in nodes[1]])
    array = np.frombuffer(nodes[4], dtype).copy()
    edit(array, state, tree, pairs)
    nodes[4] = array.tobytes()
    return msgpack.packb(top, use_bin_type=True)


def _set(key: str, value: Any) -> Any:
    def edit(array: Any, state: Any, tree: Any, pairs: Any) -> None:
        for pair in tree[4]:
            if pair[0] == key:
                pair[1] = value
    return edit


@pytest.mark.parametrize("edit", [
    lambda a, *_: a.__setitem__("left_child", np.where(a["left_child"] > 0, 10**6, -1)),
    lambda a, *_: a.__setitem__("right_child", np.where(a["right_child"] > 0, 0, -1)),  # cycle
    lambda a, *_: a.__setitem__("feature", np.where(a["left_child"] > 0, 7, -2)),
    lambda a, *_: a["left_child"].__setitem__(0, -1),  # one child only
    _set("max_depth", 40),
    _set("node_count", 2),
    lambda a, s, t, p: p.__setitem__(  # the estimator sees fewer features than the tree
        next(i for i, kv in enumerate(p) if kv[0] == "n_features_in_"), ["n_features_in_", 1]),
], ids=["child-out-of-range", "cycle", "feature-out-of-range", "one-child", "depth",
        "node-count", "estimator-features"])
def test_a_crafted_tree_is_refused_before_scikit_learn_uses_it(edit: Any) -> None:
    intact = tree_file(lambda *_: None)
    assert sklearn_state.loads(intact) is not None
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(tree_file(edit))


def test_loading_imports_only_the_modules_the_model_needs(store: Store) -> None:
    frame, label = cohort()
    store.add(LogisticRegression().fit(frame[["age", "bmi"]].fillna(0), label), name="m")
    code = (
        "import sys, lineage; s = lineage.open(sys.argv[1]); m = s.load('m'); "
        "print(type(m).__name__, sorted(x for x in ('skops', 'sklearn.ensemble', 'sklearn.tree', "
        "'sklearn.cluster', 'sklearn.neighbors') if x in sys.modules))"
    )
    store.close()
    done = subprocess.run([sys.executable, "-c", code, store.path], capture_output=True,
                          text=True, check=True)
    assert done.stdout.split() == ["LogisticRegression", "[]"]


# -- what loads without trust -------------------------------------------------------------------


def test_a_model_lineage_does_not_check_is_kept_safe_but_loads_only_with_trust(
        store: Store) -> None:
    """An SVC's fitted arrays go to libsvm unchecked: it is stored in the safe format (no
    pickle), and loading it asks for trust=True, which then loads it without any pickle."""
    from sklearn.svm import SVC

    frame, label = cohort()
    numeric = frame[["age", "bmi"]].fillna(0)
    model = SVC().fit(numeric, label)
    artifact = store.add(model)
    assert artifact.format == "sklearn-state"
    with pytest.raises(UntrustedContentError, match="SVC.*trust=True"):
        store.load(artifact.digest)
    assert np.array_equal(store.load(artifact.digest, trust=True).predict(numeric),
                          model.predict(numeric))


def test_a_file_naming_an_unlisted_module_never_imports_it() -> None:
    """scikit-learn's own test modules run code on import (pytest, dataset downloads)."""
    module = "sklearn.ensemble.tests.test_bagging"
    sys.modules.pop(module, None)
    with pytest.raises(UntrustedContentError):
        sklearn_state.loads(crafted(["E", module, "DummySizeEstimator", []]))
    assert module not in sys.modules


def _encoder(**options: Any) -> Any:
    frame, _label = cohort()
    return OneHotEncoder(**options).fit(frame[["sex", "site"]])


@pytest.mark.parametrize(("state", "error"), [
    ({"_n_features_outs": [2**40, 1 - 2**40]}, CorruptRecordError),  # scipy writes there
    ({"drop_idx_": np.array([7, 0], dtype=object)}, CorruptRecordError),
    ({"_parameter_constraints": {}}, CorruptRecordError),  # hides class data, not a parameter
    ({"transform": np.positive}, CorruptRecordError),  # hides a method
], ids=["output-widths", "dropped-category", "class-data", "method"])
def test_a_crafted_one_hot_encoder_is_refused(state: dict[str, Any],
                                              error: type[Exception]) -> None:
    encoder = _encoder(drop="first")
    assert sklearn_state.loads(sklearn_state.dumps(encoder)) is not None
    vars(encoder).update(state)
    with pytest.raises(error):
        sklearn_state.loads(sklearn_state.dumps(encoder))


def test_unsorted_numeric_categories_are_refused() -> None:
    encoder = OneHotEncoder().fit(np.array([[1.0], [2.0], [3.0]]))
    encoder.categories_ = [np.array([3.0, 1.0, 2.0])]  # found by binary search
    with pytest.raises(CorruptRecordError, match="sorted"):
        sklearn_state.loads(sklearn_state.dumps(encoder))


def test_an_encoder_grouping_infrequent_categories_needs_trust() -> None:
    encoder = _encoder(min_frequency=5)
    data = sklearn_state.dumps(encoder)
    with pytest.raises(UntrustedContentError, match="infrequent"):
        sklearn_state.loads(data)
    assert sklearn_state.loads(data, trust=True).categories_[1].tolist() == \
        encoder.categories_[1].tolist()


def test_coefficients_must_be_as_wide_as_the_features() -> None:
    from sklearn.linear_model import Lasso

    frame, label = cohort()
    model = Lasso(warm_start=True).fit(frame[["age", "bmi"]].fillna(0), label)
    model.coef_ = np.zeros(1)
    with pytest.raises(CorruptRecordError, match="coefficients"):
        sklearn_state.loads(sklearn_state.dumps(model))


def test_a_parameter_that_shares_a_class_attribute_name_is_state() -> None:
    from sklearn.linear_model import LassoLars

    frame, label = cohort()
    model = LassoLars(positive=True).fit(frame[["age", "bmi"]].fillna(0), label)
    assert sklearn_state.loads(sklearn_state.dumps(model)).positive is True


def _dense(values: Any) -> Any:
    return values.toarray() if hasattr(values, "toarray") else np.asarray(values)


def _isolation_forest() -> Any:
    from sklearn.ensemble import IsolationForest

    return IsolationForest(n_estimators=3, max_features=0.5, random_state=0)


def _polynomial() -> Any:
    from sklearn.preprocessing import PolynomialFeatures

    return PolynomialFeatures(degree=(1, 3), interaction_only=True)


def _bins() -> Any:
    from sklearn.preprocessing import KBinsDiscretizer

    return KBinsDiscretizer(n_bins=3, encode="onehot", quantile_method="averaged_inverted_cdf")


@pytest.mark.parametrize("build", [_isolation_forest, _polynomial, _bins],
                         ids=["isolation-forest-subsampled", "polynomial-degree-range",
                              "bins-one-hot"])
def test_honest_models_pass_the_state_checks(build: Any) -> None:
    frame, label = cohort()
    numeric = frame[["age", "bmi"]].fillna(0).to_numpy()
    model = build().fit(numeric, label)
    back = sklearn_state.loads(sklearn_state.dumps(model))
    method = "transform" if hasattr(model, "transform") else "predict"
    assert np.array_equal(_dense(getattr(back, method)(numeric)),
                          _dense(getattr(model, method)(numeric)))


def test_string_categories_with_a_missing_value_last_pass() -> None:
    frame, _label = cohort()
    sites = frame[["site"]].astype(object)
    sites.iloc[0, 0] = None
    encoder = OneHotEncoder(handle_unknown="ignore").fit(sites)
    back = sklearn_state.loads(sklearn_state.dumps(encoder))
    assert np.array_equal(_dense(back.transform(sites)), _dense(encoder.transform(sites)))


@pytest.mark.parametrize(("build", "state"), [
    (_polynomial, {"_max_degree": 2**31 - 1}),  # transform would loop ~forever
    (_polynomial, {"n_output_features_": 10**6}),
    (lambda: OneHotEncoder(), {"categories_": [np.array([True, False])]}),
], ids=["polynomial-degree", "polynomial-width", "bool-categories-unsorted"])
def test_derived_state_its_parameters_do_not_give_is_refused(
        build: Any, state: dict[str, Any]) -> None:
    frame, label = cohort()
    features = frame[["age"]].fillna(0).to_numpy() > 50 if "categories_" in state else \
        frame[["age", "bmi"]].fillna(0).to_numpy()
    model = build().fit(features, label)
    vars(model).update(state)
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(sklearn_state.dumps(model))


def test_labels_must_be_sorted_with_missing_values_last() -> None:
    from sklearn.preprocessing import LabelBinarizer

    binarizer = LabelBinarizer().fit([1.0, 2.0, 3.0, 4.0])
    binarizer.classes_ = np.array([4.0, np.nan, 1.0, 2.0], dtype=object)
    with pytest.raises(CorruptRecordError, match="sorted"):
        sklearn_state.loads(sklearn_state.dumps(binarizer))
