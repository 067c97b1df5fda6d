"""Clinical evaluation metrics that always carry their population.

A sensitivity without the population it was measured on is not a result; so
:func:`evaluate` returns the metrics together with the confusion matrix and the tested
population (size, positives, negatives, prevalence, class distribution).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from lineage.errors import UnsupportedValue

__all__ = ["evaluate"]


def _labels(values: Any, what: str) -> list[Any]:
    if hasattr(values, "tolist"):
        values = values.tolist()
    try:
        labels = list(values)
    except TypeError:
        raise UnsupportedValue(f"{what} must be a sequence of labels, got "
                               f"{type(values).__name__}") from None
    return [v.item() if hasattr(v, "item") else v for v in labels]


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def evaluate(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    *,
    positive_label: Any = None,
    y_score: Sequence[float] | None = None,
) -> dict[str, Any]:
    """Binary classification metrics with the population they were measured on.

    ``positive_label`` defaults to ``True`` for bool labels and ``1`` for 0/1 labels (even
    when no positive occurs, so an all-negative test set gives an undefined sensitivity,
    never a sensitivity of the negative class), else the larger of two labels.
    Returns ``{"metrics": {...}, "population": {...}, "confusion_matrix": [[tn, fp],
    [fn, tp]], "positive_label": label}``; metrics are sensitivity, specificity, ppv, npv,
    accuracy, f1, and roc_auc when ``y_score`` is given. A metric whose denominator is zero
    is ``None`` (not 0, not NaN).

    Raises:
        UnsupportedValue: lengths differ, inputs are empty, or there are more than two
            classes.
    """
    truth, predicted = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if len(truth) != len(predicted):
        raise UnsupportedValue(
            f"y_true has {len(truth)} labels but y_pred has {len(predicted)}; they must match"
        )
    if not truth:
        raise UnsupportedValue("cannot evaluate on an empty test set")
    classes = sorted(set(truth) | set(predicted), key=repr)
    if len(classes) > 2:
        raise UnsupportedValue(
            f"evaluate() handles binary labels; found {len(classes)} classes {classes[:5]}"
        )
    if positive_label is None:
        positive_label = _default_positive(classes)
    tp = sum(1 for t, p in zip(truth, predicted, strict=True) if t == positive_label == p)
    fn = sum(1 for t, p in zip(truth, predicted, strict=True) if t == positive_label != p)
    fp = sum(1 for t, p in zip(truth, predicted, strict=True) if p == positive_label != t)
    tn = len(truth) - tp - fn - fp
    sensitivity, ppv = _ratio(tp, tp + fn), _ratio(tp, tp + fp)
    metrics: dict[str, float | None] = {
        "sensitivity": sensitivity,
        "specificity": _ratio(tn, tn + fp),
        "ppv": ppv,
        "npv": _ratio(tn, tn + fn),
        "accuracy": _ratio(tp + tn, len(truth)),
        "f1": (2 * ppv * sensitivity / (ppv + sensitivity))
        if ppv is not None and sensitivity is not None and (ppv + sensitivity) > 0 else None,
    }
    if y_score is not None:
        metrics["roc_auc"] = _roc_auc(truth, _labels(y_score, "y_score"), positive_label)
    positives = tp + fn
    return {
        "metrics": metrics,
        "population": {
            "n": len(truth),
            "positives": positives,
            "negatives": len(truth) - positives,
            "prevalence": positives / len(truth),
            "class_distribution": {str(k): v for k, v in sorted(Counter(truth).items(),
                                                                 key=lambda kv: repr(kv[0]))},
        },
        "confusion_matrix": [[tn, fp], [fn, tp]],
        "positive_label": positive_label,
    }


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


def _roc_auc(truth: list[Any], scores: list[float], positive_label: Any) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged."""
    if len(scores) != len(truth):
        raise UnsupportedValue(f"y_score has {len(scores)} values but y_true has {len(truth)}")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    positives = [r for r, t in zip(ranks, truth, strict=True) if t == positive_label]
    n_pos, n_neg = len(positives), len(truth) - len(positives)
    if not n_pos or not n_neg:
        return None
    auc = (sum(positives) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return auc if math.isfinite(auc) else None
