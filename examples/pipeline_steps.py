"""Plain ``@lineage.step`` functions shared by the orchestrator examples (Prefect, Airflow,
Dask): nothing in them knows which scheduler runs them."""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression

import lineage


@lineage.step
def load_data(limit: int) -> tuple[np.ndarray, np.ndarray]:
    data = load_breast_cancer()
    return data.data[:limit], data.target[:limit]


@lineage.step
def standardize(features: np.ndarray) -> np.ndarray:
    return (features - features.mean(axis=0)) / features.std(axis=0)


@lineage.step
def train(features: np.ndarray, labels: np.ndarray, C: float) -> LogisticRegression:  # noqa: N803
    return LogisticRegression(C=C, max_iter=500).fit(features, labels)
