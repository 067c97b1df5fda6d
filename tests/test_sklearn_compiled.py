"""Gradient boosting in the "sklearn-state" format (``lineage.adapters.sklearn_compiled``):
both scikit-learn families load without trust=True and predict exactly as before, training
continues from a loaded model as from the original, categorical models stay pickles, and a
crafted file cannot make the compiled predict code read or write outside its arrays."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import msgpack
import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)

from lineage.adapters import sklearn_state
from lineage.errors import CorruptRecordError, UntrustedContentError
from lineage.store import Store

ROWS = 240


def data(seed: int = 0, *, missing: bool = False) -> tuple[Any, Any, Any, Any]:
    """Features (NaNs in 5 % of cells when ``missing``), a binary, a three-class and a
    positive numeric label."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(ROWS, 4))
    binary = (features[:, 0] + rng.normal(scale=0.5, size=ROWS) > 0).astype(int)
    three = np.digitize(features[:, 1], [-0.5, 0.5])
    amount = np.exp(features[:, 0] / 2) + rng.random(ROWS)
    if missing:
        features[rng.random(features.shape) < 0.05] = np.nan
    return features, binary, three, amount


def _fitted(kind: type, label: str, missing: bool, **options: Any) -> tuple[Any, Any]:
    features, binary, three, amount = data(missing=missing)
    target = {"binary": binary, "three": three, "amount": amount}[label]
    return kind(random_state=0, **options).fit(features, target), features


MODELS = {
    "gb-binary": lambda: _fitted(GradientBoostingClassifier, "binary", False, n_estimators=8),
    "gb-three-classes": lambda: _fitted(GradientBoostingClassifier, "three", False,
                                        n_estimators=5),
    "gb-huber": lambda: _fitted(GradientBoostingRegressor, "amount", False, loss="huber",
                                n_estimators=6),
    "gb-quantile": lambda: _fitted(GradientBoostingRegressor, "amount", False,
                                   loss="quantile", alpha=0.3, n_estimators=6),
    "hgb-binary-missing": lambda: _fitted(HistGradientBoostingClassifier, "binary", True,
                                          max_iter=10),
    "hgb-three-classes": lambda: _fitted(HistGradientBoostingClassifier, "three", True,
                                         max_iter=6),
    "hgb-poisson": lambda: _fitted(HistGradientBoostingRegressor, "amount", False,
                                   loss="poisson", max_iter=8),
    "hgb-quantile-subsampled": lambda: _fitted(HistGradientBoostingRegressor, "amount", True,
                                               loss="quantile", quantile=0.8, max_iter=8,
                                               max_features=0.5),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_a_boosting_model_loads_without_trust_and_predicts_the_same(
        store: Store, name: str) -> None:
    model, features = MODELS[name]()
    artifact = store.add(model)
    assert artifact.format == "sklearn-state"
    back = store.load(artifact.digest)
    assert type(back) is type(model)
    assert np.array_equal(back.predict(features), model.predict(features), equal_nan=True)
    if hasattr(model, "predict_proba"):
        assert np.array_equal(back.predict_proba(features), model.predict_proba(features))
    assert store.add(back).digest == artifact.digest


@pytest.mark.parametrize(("kind", "options"), [
    (GradientBoostingClassifier, {"n_estimators": 4, "subsample": 0.7}),
    (HistGradientBoostingClassifier, {"max_iter": 4, "max_features": 0.5,
                                      "early_stopping": False}),
], ids=["gb-subsampled", "hgb-feature-subsampled"])
def test_training_continues_from_a_loaded_model_as_from_the_original(
        kind: type, options: dict[str, Any]) -> None:
    """Their random generators' states come back too: ``warm_start`` adds the same trees."""
    features, binary, _three, _amount = data(1)
    original = kind(random_state=5, warm_start=True, **options).fit(features, binary)
    loaded = sklearn_state.loads(sklearn_state.dumps(original))
    more = "n_estimators" if "n_estimators" in options else "max_iter"
    for model in (original, loaded):
        model.set_params(**{more: options[more] + 3}).fit(features, binary)
    assert np.array_equal(loaded.predict_proba(features), original.predict_proba(features))
    assert sklearn_state.dumps(loaded) == sklearn_state.dumps(original)


def test_a_model_with_categorical_features_stays_a_pickle(store: Store) -> None:
    features, binary, _three, _amount = data(2)
    features[:, 3] = np.random.default_rng(2).integers(0, 4, ROWS)
    model = HistGradientBoostingClassifier(categorical_features=[3], max_iter=5)
    artifact = store.add(model.fit(features, binary))
    assert artifact.format == "sklearn-pickle"
    with pytest.raises(UntrustedContentError, match="trust=True"):
        store.load(artifact.digest)


# -- crafted files -----------------------------------------------------------------------------


def _nodes_of(node: Any, tag: str) -> Iterator[list[Any]]:
    """Every node tagged ``tag`` in an unpacked file, depth first."""
    if isinstance(node, list):
        if node and node[0] == tag:
            yield node
        for item in node:
            yield from _nodes_of(item, tag)


def _pairs_of(estimator: list[Any]) -> dict[str, list[Any]]:
    """An ``E`` node's ``[key, value]`` pairs by key (edit the pairs in place)."""
    return {pair[0]: pair for pair in estimator[3]}


def edited(model: BaseEstimator, edit: Callable[[list[Any]], None]) -> bytes:
    """``model``'s file, unpacked, edited by ``edit(root node)`` and packed again."""
    top = msgpack.unpackb(sklearn_state.dumps(model), raw=False)
    edit(top[2])
    return msgpack.packb(top, use_bin_type=True)  # type: ignore[no-any-return]


def _edit_predictor(change: Callable[[Any], None]) -> Callable[[list[Any]], None]:
    """An edit of the first tree predictor's node array (``change(records)``)."""
    def edit(root: list[Any]) -> None:
        nodes = next(_nodes_of(root, "P"))[1]
        dtype = np.lib.format.descr_to_dtype([tuple(field) for field in nodes[1]])
        records = np.frombuffer(nodes[4], dtype).copy()
        change(records)
        nodes[4] = records.tobytes()
    return edit


def _inner(records: Any) -> Any:
    return np.flatnonzero(records["is_leaf"] == 0)


def _set_pair(key: str, value: Any) -> Callable[[list[Any]], None]:
    def edit(root: list[Any]) -> None:
        _pairs_of(root)[key][1] = value
    return edit


def _bin_mapper_categorical(root: list[Any]) -> None:
    mapper = _pairs_of(root)["_bin_mapper"][1]
    flags = _pairs_of(mapper)["is_categorical_"][1]  # ["a", descr, shape, fortran, bytes]
    flags[4] = b"\x01" + flags[4][1:]


HISTOGRAM_EDITS = {
    "child-out-of-range": _edit_predictor(
        lambda r: r["left"].__setitem__(_inner(r)[0], 10**6)),
    "child-pointing-back": _edit_predictor(
        lambda r: r["right"].__setitem__(_inner(r)[-1], 0)),
    "two-parents": _edit_predictor(
        lambda r: r["right"].__setitem__(_inner(r)[0], r["left"][_inner(r)[0]])),
    "feature-beyond-the-model": _edit_predictor(
        lambda r: r["feature_idx"].__setitem__(_inner(r)[0], 4)),
    "negative-feature": _edit_predictor(
        lambda r: r["feature_idx"].__setitem__(_inner(r)[0], -3)),
    "categorical-split": _edit_predictor(
        lambda r: r["is_categorical"].__setitem__(_inner(r)[0], 1)),
    "leaf-flag": _edit_predictor(lambda r: r["is_leaf"].__setitem__(0, 7)),
    "categorical-bin-mapper": _bin_mapper_categorical,
    "no-feature-count": _set_pair("n_features_in_", "4"),
}


@pytest.mark.parametrize("name", list(HISTOGRAM_EDITS))
def test_a_crafted_histogram_model_is_refused_before_scikit_learn_uses_it(name: str) -> None:
    model, _features = MODELS["hgb-binary-missing"]()
    assert sklearn_state.loads(edited(model, lambda root: None)) is not None
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(edited(model, HISTOGRAM_EDITS[name]))


def _wider_stages(root: list[Any]) -> None:
    """Stages array claims two trees a stage where the initial predictions have one."""
    _pairs_of(root)["n_trees_per_iteration_"][1] = 2


def _prior_of_two_classes(root: list[Any]) -> None:
    init = _pairs_of(root)["init_"][1]
    prior = _pairs_of(init)["class_prior_"][1]  # ["a", descr, [3], fortran, bytes]
    prior[2], prior[4] = [2], prior[4][:16]


def _first_tree_over_fewer_features(model: Any) -> None:
    """predict checks X against the first tree only; the others would read past it."""
    features, _binary, _three, amount = data(3)
    from sklearn.tree import DecisionTreeRegressor

    model.estimators_[0, 0] = DecisionTreeRegressor(max_depth=2).fit(features[:, :2], amount)


def _stages_as_a_list(model: Any) -> None:
    model.estimators_ = list(model.estimators_[:, 0])


def _another_initial_estimator(model: Any) -> None:
    from sklearn.linear_model import LinearRegression

    features, _binary, _three, amount = data(3)
    model.init_ = LinearRegression().fit(features, amount)


STAGE_EDITS: dict[str, tuple[str, Callable[[list[Any]], None] | None,
                             Callable[[Any], None] | None]] = {
    "trees-per-stage": ("gb-binary", _wider_stages, None),
    "initial-predictions-too-narrow": ("gb-three-classes", _prior_of_two_classes, None),
    "first-tree-over-fewer-features": ("gb-huber", None, _first_tree_over_fewer_features),
    "stages-not-an-array": ("gb-binary", None, _stages_as_a_list),
    "another-initial-estimator": ("gb-huber", None, _another_initial_estimator),
}


@pytest.mark.parametrize("name", list(STAGE_EDITS))
def test_a_crafted_gradient_boosting_model_is_refused_before_scikit_learn_uses_it(
        name: str) -> None:
    """Edited in its file, or edited as an object and then written (writing checks
    nothing: the adapter keeps a pickle when the file does not read back)."""
    which, edit_file, edit_model = STAGE_EDITS[name]
    model, _features = MODELS[which]()
    assert sklearn_state.loads(edited(model, lambda root: None)) is not None
    if edit_model is not None:
        edit_model(model)
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(edited(model, edit_file or (lambda root: None)))


def crafted(root: Any) -> bytes:
    return msgpack.packb(["lineage/sklearn-state", 1, root], use_bin_type=True)  # type: ignore[no-any-return]


@pytest.mark.parametrize("node", [
    ["L", "os", [], []],  # not a loss of sklearn._loss.loss
    ["L", "Interval", [], []],  # in that module, but not a loss
    ["L", "BaseLoss.__init__", [], []],
    ["L", "BaseLoss", [], []],  # the base class itself
    ["L", "PinballLoss", [["eval", 1]], []],  # an argument the constructor does not take
    ["L", "PinballLoss", [["quantile", ["l", []]]], []],  # not a plain value
    ["L", "PinballLoss", [["quantile", 7.0]], []],  # refused by the constructor
    ["L", "HalfBinomialLoss", [], [["closs", None]]],  # an attribute the constructor builds
    ["L", "HalfBinomialLoss", [], [["__class__", 1]]],  # one it does not have
    ["G", "SeedSequence", ["d", []]],  # not a bit generator
    ["G", "PCG64", ["d", [["bit_generator", "MT19937"]]]],  # a state of another kind
    ["G", "PCG64", ["d", [["bit_generator", "PCG64"], ["has_uint32", 0], ["uinteger", 0],
                          ["state", ["d", [["state", ["I", str(2**200)]], ["inc", 1]]]]]]],
    ["G", "Philox", ["d", []]],  # a bit generator outside the allowed ones
    ["I", "12ab"], ["I", "9" * 200],
], ids=lambda node: repr(node)[:60])
def test_a_crafted_loss_generator_or_integer_is_refused(node: list[Any]) -> None:
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(crafted(node))


@pytest.mark.parametrize("kind", ["PoissonRegressor", "GammaRegressor", "TweedieRegressor"])
def test_a_generalized_linear_model_keeps_its_loss_and_loads_without_trust(
        store: Store, kind: str) -> None:
    import sklearn.linear_model

    features, _binary, _three, amount = data()
    model = getattr(sklearn.linear_model, kind)().fit(features, amount)
    artifact = store.add(model)
    assert artifact.format == "sklearn-state"
    back = store.load(artifact.digest)
    assert type(back._base_loss) is type(model._base_loss)
    assert np.array_equal(back.predict(features), model.predict(features))


def test_a_generator_and_big_integers_round_trip() -> None:
    from sklearn.linear_model import LogisticRegression

    generator = np.random.default_rng(7)
    generator.random(3)
    legacy = np.random.Generator(np.random.MT19937(3))
    model = LogisticRegression()
    model.extra_ = [generator, legacy, 2**100, -(2**90)]
    back = sklearn_state.loads(sklearn_state.dumps(model)).extra_
    assert back[0].random(2).tolist() == generator.random(2).tolist()
    assert back[1].random(2).tolist() == legacy.random(2).tolist()
    assert back[2:] == [2**100, -(2**90)]


# -- crafted models: edited as objects, then written (writing checks nothing) -------------------


def _hgb() -> Any:
    return MODELS["hgb-binary-missing"]()[0]


def _gb() -> Any:
    return MODELS["gb-binary"]()[0]


def _with(model: Any, **state: Any) -> Any:
    vars(model).update(state)
    return model


def _mapper_without_thresholds() -> Any:
    mapper = _hgb()._bin_mapper
    mapper.bin_thresholds_ = []
    return mapper


def _stage_without_its_tree() -> Any:
    model = _gb()
    model.estimators_[0, 0].tree_ = None
    return model


def _far_mt19937_position() -> Any:
    bits = np.random.MT19937(0)
    state = bits.state
    state["state"]["pos"] = 10**8
    bits.state = state  # NumPy takes it; the first draw would read far past the key
    return _with(_hgb(), _feature_subsample_rng=np.random.Generator(bits))


def _far_legacy_position() -> Any:
    from sklearn.dummy import DummyClassifier

    legacy = np.random.RandomState(0)
    key, _pos, *rest = legacy.get_state()
    legacy.set_state((key if isinstance(key, str) else "MT19937", legacy.get_state()[1],
                      10**8, *rest))
    features, binary, _three, _amount = data()
    return DummyClassifier(strategy="stratified", random_state=legacy).fit(features, binary)


def _hidden_method() -> Any:
    from sklearn.tree import DecisionTreeRegressor

    features, _binary, _three, amount = data()
    tree = DecisionTreeRegressor(max_depth=2).fit(features, amount)
    tree._validate_X_predict = np.multiply  # a state hiding the class's method
    return tree


def _loss_object_as_parameter() -> Any:
    from sklearn._loss.loss import HalfMultinomialLoss

    return _with(_hgb(), loss=HalfMultinomialLoss(n_classes=2))


def _loss_outside_a_boosting_model() -> Any:
    from sklearn._loss.loss import HalfBinomialLoss
    from sklearn.linear_model import LogisticRegression

    return _with(LogisticRegression(), extra_=HalfBinomialLoss())


def _forest_with_a_wider_tree() -> Any:
    """A forest checks X against its own width, then has each tree read it unchecked."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.tree import DecisionTreeClassifier

    features, binary, _three, _amount = data()
    forest = RandomForestClassifier(n_estimators=2, random_state=0).fit(features[:, :2],
                                                                        binary)
    forest.estimators_[1] = DecisionTreeClassifier(random_state=0).fit(features, binary)
    return forest


CRAFTED_MODELS: dict[str, Callable[[], Any]] = {
    "forest-with-a-wider-tree": _forest_with_a_wider_tree,
    "hgb-with-a-preprocessor": lambda: _with(_hgb(), _preprocessor=_gb().init_),
    "hgb-in-the-middle-of-fit": lambda: _with(_hgb(), _in_fit=True),
    "bin-mapper-without-thresholds": _mapper_without_thresholds,
    "bin-mapper-with-a-million-threads": lambda: _with(_hgb()._bin_mapper, n_threads=10**6),
    "stage-without-its-tree": _stage_without_its_tree,
    "generator-position-out-of-range": _far_mt19937_position,
    "random-state-position-out-of-range": _far_legacy_position,
    "state-hiding-a-method": _hidden_method,
    "dummy-hiding-predict-proba": lambda: _with(_gb(), init_=_with(_gb().init_,
                                                                    predict_proba=np.positive)),
    "loss-object-as-the-parameter": _loss_object_as_parameter,
    "loss-outside-a-boosting-model": _loss_outside_a_boosting_model,
}


@pytest.mark.parametrize("name", list(CRAFTED_MODELS))
def test_a_crafted_model_object_is_refused_when_read(name: str) -> None:
    """Each of these loaded, then used, would make compiled code read or write outside its
    arrays (a segfault in a subprocess, found by review); ``loads`` refuses each."""
    with pytest.raises(CorruptRecordError):
        sklearn_state.loads(sklearn_state.dumps(CRAFTED_MODELS[name]()))


def test_huge_shapes_are_malformed_not_an_allocation() -> None:
    for node in (["o", [2**62], False, []], ["o", [2**31, 2], False, []],
                 ["a", "<f8", [2**40, 2**40], False, b""]):
        with pytest.raises(CorruptRecordError):
            sklearn_state.loads(crafted(node))


def test_a_fortran_object_array_stays_shared() -> None:
    from sklearn.linear_model import LogisticRegression

    objects = np.asfortranarray(np.array([["a", 1], ["b", 2]], dtype=object))
    model = _with(LogisticRegression(), a_=objects, b_=[objects])
    back = sklearn_state.loads(sklearn_state.dumps(model))
    assert back.a_ is back.b_[0] and back.a_.flags.f_contiguous
    assert back.a_.tolist() == objects.tolist()
