"""A small clinical store for tests: a registered test set, two dataset versions and two
evaluated logistic-regression models, built through the public API."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from lineage.store import Store


def frame(rows: range, seed: int) -> pd.DataFrame:
    """Rows with ids ``rows``: three features and a label (the same ids give the same rows)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(rows), 3))
    return pd.DataFrame({"pid": list(rows), "a": x[:, 0], "b": x[:, 1], "c": x[:, 2],
                         "y": (x[:, 0] + x[:, 1] > 0).astype(int)})


def train(store: Store, version: str, dataset: str, test: str = "testset@v1") -> None:
    """Fit model@``version`` on ``dataset`` in a run, and evaluate it on ``test``."""
    with store.run("train", params={"C": 1.0}) as run:
        table = store.load(run.log_input(dataset, name="dataset"))
        model = LogisticRegression().fit(table[["a", "b", "c"]], table["y"])
        run.log_model(model, name="model", version=version)
        held_out = store.load(test)
        run.log_evaluation(held_out["y"], model.predict(held_out[["a", "b", "c"]]),
                           dataset=test)


def add(store: Store, tmp_path: Path, name: str, version: str, table: pd.DataFrame) -> None:
    """Add ``table`` as the CSV dataset ``name@version`` (target ``y``), documented."""
    path = tmp_path / f"{name}-{version}.csv"
    table.to_csv(path, index=False)
    store.add(path, name=name, version=version, kind="dataset", target="y",
              meta={"origin": "synthetic", "biases": "none known"})


def build_models(store: Store, tmp_path: Path) -> Store:
    """testset@v1 (rows 0-99), dataset@v1 (rows 100-399), model@v1 and model@v2 evaluated."""
    add(store, tmp_path, "testset", "v1", frame(range(0, 100), seed=1))
    add(store, tmp_path, "dataset", "v1", frame(range(100, 400), seed=2))
    train(store, "v1", "dataset@v1")
    add(store, tmp_path, "dataset", "v2", frame(range(100, 450), seed=2))
    train(store, "v2", "dataset@v2")
    return store
