"""Evaluations in context: every figure equals scikit-learn's on random labels, subgroup
counts add up to the population, Wilson intervals behave, and bad input is refused."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn import metrics as sk

from lineage.errors import InvalidQuery, UnsupportedValue
from lineage.store import Store
from lineage.tracking.evaluation import evaluate
from lineage.tracking.metrics import wilson

binary_cases = st.integers(min_value=2, max_value=60).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.integers(0, 1), min_size=n, max_size=n),
    st.lists(st.floats(0, 1, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.sampled_from(["F", "M", "X"]), min_size=n, max_size=n),
))


def _close(ours: float | None, theirs: float) -> bool:
    return ours is not None and math.isclose(ours, theirs, rel_tol=1e-9, abs_tol=1e-12)


@given(binary_cases)
def test_binary_figures_equal_scikit_learns(case: tuple[list[int], ...]) -> None:
    truth, pred, scores, sex = case
    assume(0 < sum(truth) < len(truth) and 0 < sum(pred))
    result = evaluate(truth, pred, y_score=scores, subgroups={"sex": sex})
    m = result["metrics"]
    assert _close(m["sensitivity"], sk.recall_score(truth, pred))
    assert _close(m["specificity"], sk.recall_score(truth, pred, pos_label=0))
    assert _close(m["ppv"], sk.precision_score(truth, pred))
    assert _close(m["accuracy"], sk.accuracy_score(truth, pred))
    assert _close(m["f1"], sk.f1_score(truth, pred)) or m["f1"] is None
    assert _close(m["roc_auc"], sk.roc_auc_score(truth, scores))
    assert _close(m["brier"], sk.brier_score_loss(truth, scores))
    tn, fp, fn, tp = sk.confusion_matrix(truth, pred, labels=[0, 1]).ravel().tolist()
    assert result["confusion_matrix"] == [[tn, fp], [fn, tp]]
    if tn + fn:
        assert _close(m["npv"], tn / (tn + fn))
    groups = result["subgroups"]["sex"]
    assert sum(g["n"] for g in groups.values()) == len(truth)
    assert sum(g["positives"] for g in groups.values()) == sum(truth)
    for value, group in groups.items():
        members = [i for i, s in enumerate(sex) if s == value]
        t = [truth[i] for i in members]
        p = [pred[i] for i in members]
        if sum(t):
            assert _close(group["sensitivity"], sk.recall_score(t, p, zero_division=0))
        else:
            assert group["sensitivity"] is None and group["intervals"]["sensitivity"] is None


multiclass_cases = st.integers(min_value=3, max_value=50).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from(["benign", "dcis", "invasive"]), min_size=n, max_size=n),
    st.lists(st.sampled_from(["benign", "dcis", "invasive"]), min_size=n, max_size=n),
))


@given(multiclass_cases)
def test_multiclass_figures_equal_scikit_learns(case: tuple[list[str], list[str]]) -> None:
    truth, pred = case
    labels = sorted(set(truth) | set(pred))
    assume(len(labels) == 3 and len(set(truth)) == 3)
    result = evaluate(truth, pred)
    assert result["task"] == "multiclass" and result["labels"] == labels
    assert result["confusion_matrix"] == sk.confusion_matrix(truth, pred, labels=labels).tolist()
    precision, recall, _f1, support = sk.precision_recall_fscore_support(
        truth, pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        per = result["per_class"][label]
        assert _close(per["sensitivity"], float(recall[i])) and per["support"] == support[i]
        if per["ppv"] is not None:
            assert _close(per["ppv"], float(precision[i]))
    m = result["metrics"]
    assert _close(m["accuracy"], sk.accuracy_score(truth, pred))
    assert _close(m["macro_sensitivity"], sk.recall_score(truth, pred, average="macro"))
    assert _close(m["weighted_sensitivity"],
                  sk.recall_score(truth, pred, average="weighted"))


regression_cases = st.integers(min_value=2, max_value=50).flatmap(lambda n: st.tuples(
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.floats(-100, 100, allow_nan=False), min_size=n, max_size=n),
    st.lists(st.sampled_from(["<40", "40-65", ">65"]), min_size=n, max_size=n),
))


@given(regression_cases)
def test_regression_figures_equal_scikit_learns(case: tuple[list[Any], ...]) -> None:
    truth, pred, band = case
    result = evaluate(truth, pred, task="regression", subgroups={"age_band": band})
    m = result["metrics"]
    assert _close(m["mae"], sk.mean_absolute_error(truth, pred)) or math.isclose(
        m["mae"], sk.mean_absolute_error(truth, pred), abs_tol=1e-9)
    assert math.isclose(m["rmse"], math.sqrt(sk.mean_squared_error(truth, pred)),
                        rel_tol=1e-9, abs_tol=1e-9)
    if np.var(truth) > 1e-9:
        assert math.isclose(m["r2"], sk.r2_score(truth, pred), rel_tol=1e-6, abs_tol=1e-6)
    assert sum(g["n"] for g in result["subgroups"]["age_band"].values()) == len(truth)


def test_regression_is_inferred_from_non_integer_truth() -> None:
    assert evaluate([1.5, 2.0, 3.25], [1.0, 2.0, 3.0])["task"] == "regression"
    assert evaluate([0, 1, 0], [0, 1, 1])["task"] == "binary"


@given(st.integers(0, 200), st.integers(1, 200))
def test_wilson_intervals_contain_the_proportion_and_stay_in_bounds(k: int, n: int) -> None:
    assume(k <= n)
    low, high = wilson(k, n) or (math.nan, math.nan)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert wilson(k, 0) is None


def test_wilson_interval_of_a_known_case() -> None:
    # 8 of 10: the textbook 95 % Wilson interval is [0.490, 0.943]
    low, high = wilson(8, 10) or (0.0, 0.0)
    assert (round(low, 3), round(high, 3)) == (0.490, 0.943)


def test_a_threshold_turns_scores_into_predictions() -> None:
    result = evaluate([1, 1, 0, 0], y_score=[0.9, 0.4, 0.6, 0.1], threshold=0.5)
    assert result["confusion_matrix"] == [[1, 1], [1, 1]] and result["threshold"] == 0.5
    strict = evaluate([1, 1, 0, 0], y_score=[0.9, 0.4, 0.6, 0.1], threshold=0.7)
    assert strict["metrics"]["specificity"] == 1.0 and strict["metrics"]["sensitivity"] == 0.5
    assert sum(row["n"] for row in result["calibration"]) == 4


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"subgroups": {"sex": ["F", "M"]}}, UnsupportedValue, "subgroup 'sex' has 2 values"),
    ({"task": "ranking"}, InvalidQuery, "task must be"),
    ({"threshold": 1.5}, InvalidQuery, "threshold"),
    ({"y_score": [0.1, float("nan"), 0.2]}, UnsupportedValue, "NaN"),
])
def test_bad_evaluation_input_is_refused(kwargs: dict[str, Any], error: type[Exception],
                                         match: str) -> None:
    with pytest.raises(error, match=match):
        evaluate([0, 1, 1], [0, 1, 0], **kwargs)


def test_log_evaluation_keeps_subgroups_and_writes_nothing_on_bad_input(store: Store) -> None:
    store.add({"ids": [1, 2, 3, 4]}, name="testset", version="v1")
    with store.run("evaluate") as run:
        run.log_evaluation([1, 0, 1, 0], [1, 0, 0, 0], dataset="testset@v1",
                           subgroups={"site": ["A", "A", "B", "B"]})
        with pytest.raises(UnsupportedValue):
            run.log_evaluation([1, 0], [1, 0], dataset="testset@v1", name="bad",
                               subgroups={"site": ["A"]})
    evaluation = store.resolve("evaluation")
    assert evaluation.summary["subgroups"]["site"]["B"]["sensitivity"] == 0.0
    assert evaluation.summary["intervals"]["sensitivity"] is not None
    assert evaluation.summary["dataset_name"] == "testset@v1"
    assert store.names() == ["evaluation", "testset"]  # the bad one was never logged


def test_the_diff_shows_per_subgroup_changes(store: Store) -> None:
    store.add({"ids": list(range(6))}, name="testset", version="v1")
    truth = [1, 1, 0, 1, 1, 0]
    sex = ["F", "F", "F", "M", "M", "M"]
    for version, pred in (("v1", [0, 1, 0, 1, 1, 0]), ("v2", [1, 1, 0, 1, 0, 0])):
        with store.run("train", params={"v": version}) as run:
            run.log_artifact(f"weights {version}".encode(), name="model", version=version,
                             kind="model")
            run.log_evaluation(truth, pred, dataset="testset@v1", subgroups={"sex": sex})
    difference = store.diff("model@v1", "model@v2")
    evaluations = [a.evaluation for a in difference.artifacts if a.evaluation is not None]
    (changes,) = [e.subgroups for e in evaluations]
    by_key = {(c.attribute, c.value, c.metric): c for c in changes}
    female = by_key[("sex", "F", "sensitivity")]
    assert (female.old, female.new, female.delta, female.n_new) == (0.5, 1.0, 0.5, 3)
    assert by_key[("sex", "M", "sensitivity")].new == 0.5
    text = str(difference)
    line = next(x for x in text.splitlines() if "subgroup sex=F: sensitivity" in x)
    assert "0.5 → 1" in line and "+0.5" in line and line.endswith("n=3")
    assert difference.reversed().to_dict()["artifacts"]  # the reversed diff still renders
