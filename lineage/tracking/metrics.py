"""Evaluation metrics as small pure functions over numpy arrays, each with its population.

Binary: confusion counts, sensitivity, specificity, PPV, NPV, accuracy, F1, Wilson score
intervals, ROC AUC (rank sum, ties averaged), Brier score and a calibration table.
Multiclass: the confusion matrix, one-vs-rest sensitivity/specificity/PPV per class, and
macro and support-weighted averages. Regression: MAE, RMSE, R² and residuals.

A metric whose denominator is zero is ``None`` (undefined), never 0 or NaN. Values are plain
Python numbers so they encode canonically.
"""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np

__all__ = ["binary", "calibration", "multiclass", "regression", "roc_auc", "wilson"]

Z95: Final = 1.959963984540054  # the 97.5th percentile of the standard normal
_BINS: Final = 10

Array = np.ndarray[Any, Any]


def ratio(numerator: int | float, denominator: int | float) -> float | None:
    """``numerator / denominator``, or ``None`` when the denominator is zero."""
    return float(numerator) / float(denominator) if denominator else None


def wilson(successes: int, n: int, z: float = Z95) -> list[float] | None:
    """The Wilson score interval ``[low, high]`` of a proportion (95 % by default).

    ``None`` when ``n`` is 0. Unlike the normal approximation it stays inside [0, 1] and
    behaves at 0 and n successes, which small clinical subgroups reach.
    """
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exact at the bounds
    high = 1.0 if successes == n else min(1.0, centre + half)
    return [low, high]


def binary(truth: Array, predicted: Array) -> dict[str, Any]:
    """Counts, metrics and intervals of boolean arrays (``True`` = positive)."""
    tp = int(np.count_nonzero(truth & predicted))
    fn = int(np.count_nonzero(truth & ~predicted))
    fp = int(np.count_nonzero(~truth & predicted))
    tn = int(truth.size) - tp - fn - fp
    sensitivity, ppv = ratio(tp, tp + fn), ratio(tp, tp + fp)
    f1 = None
    if sensitivity is not None and ppv is not None and sensitivity + ppv > 0:
        f1 = 2 * ppv * sensitivity / (ppv + sensitivity)
    return {
        "counts": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "metrics": {"sensitivity": sensitivity, "specificity": ratio(tn, tn + fp), "ppv": ppv,
                    "npv": ratio(tn, tn + fn), "accuracy": ratio(tp + tn, truth.size),
                    "f1": f1},
        "intervals": {"sensitivity": wilson(tp, tp + fn), "specificity": wilson(tn, tn + fp)},
    }


def roc_auc(truth: Array, scores: Array) -> float | None:
    """Area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties averaged;
    ``None`` unless both classes occur."""
    positives = int(np.count_nonzero(truth))
    negatives = int(truth.size) - positives
    if not positives or not negatives:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=float)
    ranks[order] = np.arange(1, scores.size + 1, dtype=float)
    sorted_scores = scores[order]
    start = 0
    while start < sorted_scores.size:  # average the ranks of tied scores
        end = start
        while end + 1 < sorted_scores.size and sorted_scores[end + 1] == sorted_scores[start]:
            end += 1
        if end > start:
            ranks[order[start:end + 1]] = (start + end) / 2 + 1
        start = end + 1
    auc = (float(ranks[truth].sum()) - positives * (positives + 1) / 2) / (positives * negatives)
    return auc if math.isfinite(auc) else None


def brier(truth: Array, scores: Array) -> float:
    """The Brier score: the mean squared error of the predicted probabilities."""
    return float(np.mean((scores - truth.astype(float)) ** 2))


def calibration(truth: Array, scores: Array, bins: int = _BINS) -> list[dict[str, Any]]:
    """Observed positive rate against the mean predicted probability, in ``bins`` equal-width
    bins over [0, 1] (empty bins left out)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, scores, side="right") - 1, 0, bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        n = int(np.count_nonzero(members))
        if n:
            table.append({"bin": [float(edges[b]), float(edges[b + 1])], "n": n,
                          "mean_score": float(scores[members].mean()),
                          "observed": float(truth[members].mean())})
    return table


def multiclass(truth: Array, predicted: Array, labels: list[Any]) -> dict[str, Any]:
    """Confusion matrix (rows: true label, columns: predicted), per-class one-vs-rest
    metrics, and macro and weighted averages of sensitivity, specificity, PPV and F1."""
    position = {label: i for i, label in enumerate(labels)}
    rows = np.array([position[v] for v in truth.tolist()], dtype=np.int64)
    cols = np.array([position[v] for v in predicted.tolist()], dtype=np.int64)
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, (rows, cols), 1)
    per_class: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(labels):
        stats = binary(rows == i, cols == i)
        per_class[str(label)] = {**stats["metrics"], "support": int(np.count_nonzero(rows == i))}
    averages: dict[str, float | None] = {"accuracy": ratio(int(np.trace(matrix)), truth.size)}
    supports = [c["support"] for c in per_class.values()]
    for metric in ("sensitivity", "specificity", "ppv", "f1"):
        values = [c[metric] for c in per_class.values()]
        defined = [v for v in values if v is not None]
        averages[f"macro_{metric}"] = float(np.mean(defined)) if defined else None
        weighted = [(v or 0.0) * s for v, s in zip(values, supports, strict=True)]
        averages[f"weighted_{metric}"] = ratio(sum(weighted), sum(supports))
    return {"labels": [_plain(v) for v in labels], "confusion_matrix": matrix.tolist(),
            "per_class": per_class, "metrics": averages}


def regression(truth: Array, predicted: Array) -> dict[str, Any]:
    """MAE, RMSE, R² and the mean residual (predicted − true) of numeric arrays."""
    residuals = predicted - truth
    total = float(np.sum((truth - truth.mean()) ** 2))
    return {"metrics": {
        "mae": float(np.mean(np.abs(residuals))),
        "rmse": float(math.sqrt(float(np.mean(residuals ** 2)))),
        "r2": None if total == 0 else 1.0 - float(np.sum(residuals ** 2)) / total,
        "mean_residual": float(residuals.mean()),
    }}


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
