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

from lineage.errors import InvalidQuery, RunError, UnsupportedValue
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
    assert _close(m["f1"], sk.f1_score(truth, pred, zero_division=0))
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


_TRUE_CLASSES = ["benign", "dcis", "invasive"]
multiclass_cases = st.integers(min_value=3, max_value=50).flatmap(lambda n: st.tuples(
    st.lists(st.sampled_from(_TRUE_CLASSES), min_size=n, max_size=n),
    # "lcis" is never true: a label only the model predicts
    st.lists(st.sampled_from([*_TRUE_CLASSES, "lcis"]), min_size=n, max_size=n),
))


@given(multiclass_cases)
def test_multiclass_figures_equal_scikit_learns(case: tuple[list[str], list[str]]) -> None:
    truth, pred = case
    labels = sorted(set(truth) | set(pred))
    assume(len(labels) >= 2)
    result = evaluate(truth, pred, task="multiclass")
    assert result["task"] == "multiclass" and result["labels"] == labels
    assert result["confusion_matrix"] == sk.confusion_matrix(truth, pred, labels=labels).tolist()
    precision, recall, _f1, support = sk.precision_recall_fscore_support(
        truth, pred, labels=labels, zero_division=0)
    for i, label in enumerate(labels):
        per = result["per_class"][label]
        assert per["support"] == support[i]
        if per["sensitivity"] is not None:
            assert _close(per["sensitivity"], float(recall[i]))
        if per["ppv"] is not None:
            assert _close(per["ppv"], float(precision[i]))
    m = result["metrics"]
    assert _close(m["accuracy"], sk.accuracy_score(truth, pred))
    for average in ("macro", "weighted"):
        p, r, f, _ = sk.precision_recall_fscore_support(
            truth, pred, labels=labels, average=average, zero_division=0)
        assert _close(m[f"{average}_sensitivity"], float(r)), average
        assert _close(m[f"{average}_ppv"], float(p)), average
        assert _close(m[f"{average}_f1"], float(f)), average
    # specificity has no scikit-learn average: the same rule over one-vs-rest matrices
    per_class = sk.multilabel_confusion_matrix(truth, pred, labels=labels)
    specificity = [tn / (tn + fp) if tn + fp else 0.0 for (tn, fp), _row in per_class]
    assert _close(m["macro_specificity"], float(np.mean(specificity)))
    assert _close(m["weighted_specificity"], float(np.average(specificity, weights=support)))


def test_macro_averages_count_a_label_only_predicted_as_zero() -> None:
    truth, pred = [0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 3]
    m = evaluate(truth, pred)["metrics"]
    # recall per class 0.5, 1, 0.5 and 0 for class 3 (never true): scikit-learn says 0.5
    assert m["macro_sensitivity"] == pytest.approx(0.5)
    assert m["macro_sensitivity"] == pytest.approx(
        sk.recall_score(truth, pred, average="macro", zero_division=0))
    assert m["macro_ppv"] == pytest.approx(
        sk.precision_score(truth, pred, average="macro", zero_division=0))


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


@pytest.mark.parametrize(("truth", "pred", "task"), [
    ([1.5, 2.0, 3.25], [1.0, 2.0, 3.0], "regression"),  # fractional truth
    ([3, 5, 10, 7, 2, 8], [2.7, 5.4, 9.1, 6.6, 2.2, 8.5], "regression"),  # integer outcome
    ([1.0, 2.0, 3.0, 4.0], [1.2, 1.9, 3.4, 3.8], "regression"),  # whole-number floats
    (list(range(0, 24, 2)), list(range(1, 25, 2)), "regression"),  # 24 values, 12 unseen
    ([0, 1, 0], [0, 1, 1], "binary"),
    ([0.0, 1.0, 0.0], [0.0, 1.0, 1.0], "binary"),
    ([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 3.0], "multiclass"),  # whole numbers, all seen
    ([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 3], "multiclass"),  # few labels, one unseen
])
def test_the_task_is_inferred_from_truth_and_predictions(truth: list[Any], pred: list[Any],
                                                         task: str) -> None:
    assert evaluate(truth, pred)["task"] == task


def test_an_explicit_task_overrides_the_inference() -> None:
    result = evaluate([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 3.0], task="regression")
    assert result["task"] == "regression" and result["metrics"]["mae"] == 0.25


def test_a_positive_label_that_is_not_a_label_is_refused() -> None:
    truth, pred = ["benign", "malignant", "malignant"], ["benign", "malignant", "benign"]
    with pytest.raises(InvalidQuery, match=r"'benign', 'malignant'.*positive_label='malignant'"):
        evaluate(truth, pred, positive_label="Malignant")
    with pytest.raises(InvalidQuery, match="not among the labels"):
        evaluate([0, 1, 1], [0, 1, 0], positive_label="1")
    assert evaluate(truth, pred, positive_label="malignant")["metrics"]["sensitivity"] == 0.5
    # 1 stays the positive label of 0/1 labels even when no case has it
    assert evaluate([0, 0], [0, 0], positive_label=1)["population"]["positives"] == 0


@pytest.mark.parametrize(("truth", "pred", "labels"), [
    (["healthy", "disease", "disease"], ["healthy", "disease", "healthy"],
     "'disease' and 'healthy'"),
    ([1, 2, 2], [1, 2, 1], "1 and 2"),
])
def test_labels_other_than_zero_one_need_a_positive_label(truth: list[Any], pred: list[Any],
                                                          labels: str) -> None:
    with pytest.raises(UnsupportedValue, match=f"{labels}.*pass positive_label="):
        evaluate(truth, pred)
    disease = evaluate(truth, pred, positive_label=truth[1])["metrics"]
    healthy = evaluate(truth, pred, positive_label=truth[0])["metrics"]
    assert (disease["sensitivity"], disease["specificity"]) == (0.5, 1.0)
    assert (healthy["sensitivity"], healthy["specificity"]) == (1.0, 0.5)


def test_equal_numbers_are_one_subgroup() -> None:
    ages = [30, 30.0, np.float64(30), 31.5, None, float("nan")]
    result = evaluate([1, 0, 1, 0, 1, 0], [1, 0, 0, 0, 1, 1], subgroups={"age": ages})
    groups = result["subgroups"]["age"]
    assert sorted(groups) == ["(missing)", "30", "31.5"]
    assert (groups["30"]["n"], groups["31.5"]["n"], groups["(missing)"]["n"]) == (3, 1, 2)


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


def test_without_y_pred_the_default_threshold_is_applied_and_recorded() -> None:
    result = evaluate([1, 1, 0, 0], y_score=[0.5, 0.4, 0.6, 0.1])
    assert result["threshold"] == 0.5 and result["confusion_matrix"] == [[1, 1], [1, 1]]
    assert evaluate([1, 0], [1, 0], y_score=[0.9, 0.1])["threshold"] is None


@pytest.mark.parametrize("y_score", [None, [0.9, 0.8, 0.1]])
def test_a_threshold_with_y_pred_is_refused(y_score: list[float] | None) -> None:
    # y_pred would be used as given, so the threshold would describe predictions it never made
    with pytest.raises(InvalidQuery, match="y_pred was given too"):
        evaluate([0, 1, 1], [0, 1, 0], y_score=y_score, threshold=0.3)


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


def test_a_hand_logged_metric_cannot_contradict_the_evaluation(store: Store) -> None:
    store.add({"ids": [1, 2, 3, 4]}, name="testset", version="v1")
    with store.run("evaluate") as run:
        run.log_evaluation([1, 0, 1, 0], [1, 0, 0, 0], dataset="testset@v1")
        with pytest.raises(RunError, match=r"'sensitivity' belongs to the evaluation"):
            run.log_metric("sensitivity", 0.99)
        with pytest.raises(RunError, match="sensitivity"):
            run.log_metrics({"loss": 0.1, "sensitivity": 0.99})
        run.log_metric("sensitivity", 0.5)  # the evaluation's own value is no conflict
        run.log_metric("sensitivity_manual", 0.99)
    record = store.resolve("evaluation")
    assert run.record is not None and "loss" not in run.record.metrics
    assert run.record.metrics["sensitivity"] == record.summary["metrics"]["sensitivity"] == 0.5


def test_an_evaluation_is_refused_after_a_contradicting_hand_logged_metric(store: Store
                                                                           ) -> None:
    with store.run("evaluate") as run:
        run.log_metric("sensitivity", 0.99)
        with pytest.raises(RunError, match=r"'sensitivity' = 0.99 by hand.*0.5"):
            run.log_evaluation([1, 0, 1, 0], [1, 0, 0, 0])
    assert run.record is not None and run.record.metrics == {"sensitivity": 0.99}
    assert "evaluation" not in store.names()


def test_a_metric_the_evaluation_found_undefined_cannot_be_logged_by_hand(store: Store
                                                                          ) -> None:
    with store.run("evaluate") as run:
        run.log_evaluation([0, 0, 0], [0, 0, 0])  # no positives: sensitivity is undefined
        with pytest.raises(RunError, match=r"\(undefined\)"):
            run.log_metric("sensitivity", 0.9)
