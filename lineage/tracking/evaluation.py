"""Evaluations that always carry their population: binary, multiclass and regression, overall
and per subgroup.

A sensitivity without the population it was measured on is not a result. :func:`evaluate`
returns the metrics with the confusion matrix, the tested population and, per subgroup
(``subgroups={"sex": array, "age_band": array}``, aligned with ``y_true``), the same figures
for each value of each attribute, so a reviewer sees who the model works for. The metric
functions themselves live in :mod:`lineage.tracking.metrics`.

Result (JSON-like, encodable)::

    {"task": "binary" | "multiclass" | "regression",
     "metrics": {...}, "population": {"n", ...}, "subgroups": {attribute: {value: {...}}},
     # binary:      "positive_label", "threshold", "confusion_matrix": [[tn, fp], [fn, tp]],
     #              "intervals": {"sensitivity": [lo, hi], "specificity": [lo, hi]},
     #              "calibration": [{"bin", "n", "mean_score", "observed"}] (with y_score)
     # multiclass:  "labels", "confusion_matrix" (rows true, columns predicted), "per_class"
    }
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from lineage.errors import InvalidQuery, UnsupportedValue
from lineage.tracking import metrics

__all__ = ["TASKS", "evaluate"]

TASKS: Final = ("binary", "multiclass", "regression")
_MISSING: Final = "(missing)"

Array = np.ndarray[Any, Any]


def evaluate(
    y_true: Sequence[Any],
    y_pred: Sequence[Any] | None = None,
    *,
    task: str | None = None,
    y_score: Sequence[float] | None = None,
    positive_label: Any = None,
    subgroups: Mapping[str, Sequence[Any]] | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """Metrics with the population they were measured on (see the module docstring).

    ``task`` is inferred when not given: ``regression`` if a true value is a non-integer
    number, else ``binary`` for at most two classes and ``multiclass`` above. For a binary
    task, ``positive_label`` defaults to ``True`` for bool labels and ``1`` for 0/1 labels
    (even when absent), else the larger of two labels; ``y_score`` (the positive class's
    probability) adds ROC AUC, the Brier score and a calibration table; without ``y_pred``
    the prediction is ``y_score >= threshold`` (default 0.5).

    Raises:
        UnsupportedValue: lengths differ, the test set is empty, scores are not numbers, or
            labels cannot be told apart (a single class that is not 0/1).
        InvalidQuery: an unknown ``task``, a ``threshold`` outside [0, 1], a task that does
            not fit the labels.
    """
    truth = _values(y_true, "y_true")
    if not truth.size:
        raise UnsupportedValue("cannot evaluate on an empty test set")
    scores = None if y_score is None else _scores(y_score, truth.size)
    if y_pred is None and scores is None:
        raise UnsupportedValue("give y_pred, or y_score with a threshold")
    predicted = None if y_pred is None else _aligned(_values(y_pred, "y_pred"), truth.size,
                                                     "y_pred")
    groups = {str(k): _group_labels(v, truth.size, str(k)) for k, v in (subgroups or {}).items()}
    chosen = _task(task, truth, predicted)
    if threshold is not None and not (isinstance(threshold, int | float)
                                      and 0.0 <= threshold <= 1.0):
        raise InvalidQuery(f"threshold must be a number in [0, 1], got {threshold!r}")
    if chosen == "regression":
        return _regression(truth, predicted, groups)
    if chosen == "multiclass":
        return _multiclass(truth, predicted, groups)
    return _binary(truth, predicted, scores, positive_label, threshold, groups)


# -- the three tasks ------------------------------------------------------------------------


def _binary(truth: Array, predicted: Array | None, scores: Array | None, positive: Any,
            threshold: float | None, groups: dict[str, Array]) -> dict[str, Any]:
    classes = _classes(truth, predicted)
    if len(classes) > 2:
        raise InvalidQuery(f"a binary evaluation was asked for {len(classes)} classes "
                           f"{classes[:5]}; use task='multiclass' (or leave task out)")
    positive = _default_positive(classes) if positive is None else _plain(positive)
    truth_pos = truth == positive
    if predicted is None:
        assert scores is not None  # noqa: S101 - checked by evaluate()
        predicted_pos = scores >= (0.5 if threshold is None else threshold)
    else:
        predicted_pos = predicted == positive

    def figures(members: Array) -> dict[str, Any]:
        found = metrics.binary(truth_pos[members], predicted_pos[members])
        if scores is not None:
            found["metrics"]["roc_auc"] = metrics.roc_auc(truth_pos[members], scores[members])
        return found

    overall = figures(np.ones(truth.size, dtype=bool))
    counts = overall["counts"]
    result: dict[str, Any] = {
        "task": "binary", "metrics": overall["metrics"], "intervals": overall["intervals"],
        "population": {**_population(truth_pos), "class_distribution": _distribution(truth)},
        "confusion_matrix": [[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]],
        "positive_label": positive, "threshold": threshold,
    }
    if scores is not None:
        result["metrics"]["brier"] = metrics.brier(truth_pos, scores)
        result["calibration"] = metrics.calibration(truth_pos, scores)

    def subgroup(members: Array) -> dict[str, Any]:
        found = figures(members)
        return {**_population(truth_pos[members]), **found["metrics"],
                "intervals": found["intervals"]}

    result["subgroups"] = _per_subgroup(groups, subgroup)
    return result


def _multiclass(truth: Array, predicted: Array | None, groups: dict[str, Array]
                ) -> dict[str, Any]:
    if predicted is None:
        raise UnsupportedValue("a multiclass evaluation needs y_pred (one label per case)")
    labels = _classes(truth, predicted)
    overall = metrics.multiclass(truth, predicted, labels)

    def subgroup(members: Array) -> dict[str, Any]:
        found = metrics.multiclass(truth[members], predicted[members], labels)["metrics"]
        return {"n": int(np.count_nonzero(members)), "accuracy": found["accuracy"],
                "macro_sensitivity": found["macro_sensitivity"],
                "macro_ppv": found["macro_ppv"]}

    return {"task": "multiclass", **overall,
            "population": {"n": int(truth.size), "class_distribution": _distribution(truth)},
            "subgroups": _per_subgroup(groups, subgroup)}


def _regression(truth: Array, predicted: Array | None, groups: dict[str, Array]
                ) -> dict[str, Any]:
    if predicted is None:
        raise UnsupportedValue("a regression evaluation needs y_pred (one value per case)")
    true_values = _numbers(truth, "y_true")
    predicted_values = _numbers(predicted, "y_pred")
    overall = metrics.regression(true_values, predicted_values)

    def subgroup(members: Array) -> dict[str, Any]:
        found = metrics.regression(true_values[members], predicted_values[members])["metrics"]
        return {"n": int(np.count_nonzero(members)), "mae": found["mae"],
                "rmse": found["rmse"], "mean_residual": found["mean_residual"]}

    return {"task": "regression", "metrics": overall["metrics"],
            "population": {"n": int(truth.size), "mean": float(true_values.mean()),
                           "std": float(true_values.std())},
            "subgroups": _per_subgroup(groups, subgroup)}


# -- inputs ---------------------------------------------------------------------------------


def _values(values: Any, what: str) -> Array:
    if hasattr(values, "to_numpy"):
        values = values.to_numpy()
    if isinstance(values, str | bytes) or not hasattr(values, "__len__"):
        raise UnsupportedValue(f"{what} must be a sequence of labels, got "
                               f"{type(values).__name__}")
    items = np.asarray(values).tolist() if hasattr(values, "tolist") else list(values)
    array = np.empty(len(items), dtype=object)
    array[:] = [_plain(v) for v in items]
    return array


def _aligned(values: Array, n: int, what: str) -> Array:
    if values.size != n:
        raise UnsupportedValue(f"y_true has {n} labels but {what} has {values.size}; "
                               "they must match")
    return values


def _scores(values: Any, n: int) -> Array:
    try:
        scores = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise UnsupportedValue("y_score must be numbers (the positive class's "
                               "probability)") from None
    if scores.size != n:
        raise UnsupportedValue(f"y_true has {n} labels but y_score has {scores.size}; "
                               "they must match")
    if not np.all(np.isfinite(scores)):
        raise UnsupportedValue("y_score holds NaN or infinite values")
    return scores


def _group_labels(values: Any, n: int, attribute: str) -> Array:
    labels = _values(values, f"subgroups[{attribute!r}]")
    if labels.size != n:
        raise UnsupportedValue(f"subgroup {attribute!r} has {labels.size} values but y_true "
                               f"has {n}; give one value per case, aligned with y_true")
    labels[:] = [_MISSING if v is None or (isinstance(v, float) and math.isnan(v)) else str(v)
                 for v in labels.tolist()]
    return labels


def _numbers(values: Array, what: str) -> Array:
    try:
        return np.asarray(values.tolist(), dtype=float)
    except (TypeError, ValueError):
        raise UnsupportedValue(f"a regression needs numbers in {what}") from None


def _task(task: str | None, truth: Array, predicted: Array | None) -> str:
    if task is not None:
        if task not in TASKS:
            raise InvalidQuery(f"task must be one of {', '.join(TASKS)}, got {task!r}")
        return task
    if any(isinstance(v, float) and not float(v).is_integer() for v in truth.tolist()):
        return "regression"
    return "binary" if len(_classes(truth, predicted)) <= 2 else "multiclass"


def _classes(truth: Array, predicted: Array | None) -> list[Any]:
    seen = set(truth.tolist()) | (set(predicted.tolist()) if predicted is not None else set())
    return sorted(seen, key=lambda v: (type(v).__name__, v) if _orderable(v) else ("", repr(v)))


def _orderable(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def _default_positive(classes: list[Any]) -> Any:
    """``True`` for bool labels, ``1`` for 0/1 labels (even when absent), else the larger.

    Raises:
        UnsupportedValue: one class that is not 0/1 or bool: which is positive is unknown.
    """
    if all(type(c) is bool for c in classes):
        return True
    if all(type(c) in (int, float, bool) and c in (0, 1) for c in classes):
        return 1
    if len(classes) == 2:
        return classes[-1]
    raise UnsupportedValue(
        f"only the label {classes[0]!r} occurs, so which label is positive is unknown; "
        "pass positive_label="
    )


def _population(positives: Array) -> dict[str, Any]:
    n, count = int(positives.size), int(np.count_nonzero(positives))
    return {"n": n, "positives": count, "negatives": n - count,
            "prevalence": metrics.ratio(count, n)}


def _distribution(values: Array) -> dict[str, int]:
    counts = Counter(values.tolist())
    return {str(k): v for k, v in sorted(counts.items(), key=lambda kv: repr(kv[0]))}


def _per_subgroup(groups: dict[str, Array], figures: Any) -> dict[str, dict[str, Any]]:
    return {attribute: {value: figures(labels == value)
                        for value in sorted(set(labels.tolist()))}
            for attribute, labels in sorted(groups.items())}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") and not isinstance(value, str | bytes) else (
        value)
