"""Prediction sets, the trace from a prediction to its data, and the impact of a dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from clinic import build_models, frame

from lineage.cli import main
from lineage.errors import RecordTypeError, RevisionNotFound, UnsupportedValue
from lineage.store import Store

FEATURES = ["a", "b", "c"]


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Store:
    """model@v1 in production serves a batch; then model@v2 replaces it."""
    build_models(store, tmp_path)
    store.promote("model@v1", "production", reason="first release")
    seen = frame(range(100, 103), seed=2)[FEATURES]  # rows dataset@v1 was trained on
    unseen = frame(range(900, 902), seed=9)[FEATURES]
    batch = pd.concat([seen, unseen], ignore_index=True)
    model = store.load("model@production", trust=True)
    with store.run("score", params={"batch": "2026-12-01"}) as run:
        run.log_predictions(model.predict(batch), inputs=batch, model="model@production",
                            ids=["p-100", "p-101", "p-102", "p-900", "p-901"],
                            y_score=model.predict_proba(batch)[:, 1], version="batch-1")
    store.promote("model@v2", "production", reason="better")
    return store


def test_a_prediction_made_before_a_promotion_traces_to_the_model_that_made_it(
        served: Store) -> None:
    found = served.trace("predictions@batch-1")
    assert found.model["label"] == "model@v1"
    assert found.model["stages_then"] == ["production"] and found.model["stages_now"] == []
    assert found.training_run is not None and found.training_run["op"] == "train"
    labels = {d["label"]: d["role"] for d in found.datasets}
    assert labels["dataset@v1"] == "training dataset"
    assert "dataset@v2" not in labels  # v2 trained the other model
    text = str(found)
    assert "held production then (no stage now)" in text
    assert "dataset@v1 (origin: synthetic" in text


def test_a_predicted_row_that_was_in_the_training_data_is_flagged(served: Store) -> None:
    seen = served.trace("predictions@batch-1", row="p-101")
    assert seen.in_training is True and "WAS in the training data" in seen.finding
    assert seen.row is not None and seen.row["id"] == "p-101"
    unseen = served.trace("predictions@batch-1", row="p-900")
    assert unseen.in_training is False and "not in the training data" in unseen.finding
    assert unseen.to_dict()["in_training"] is False
    assert unseen.to_markdown().startswith("## Trace")


def test_prediction_sets_keep_fingerprints_not_inputs(served: Store) -> None:
    table = served.load("predictions@batch-1")
    assert list(table.columns) == ["id", "input_fingerprint", "prediction", "score"]
    assert not any(c.startswith("input.") for c in table.columns)
    summary = served.resolve("predictions@batch-1").summary
    assert summary["model_label"] == "model@v1" and summary["stages"] == ["production"]


def test_impact_names_the_promoted_model_its_stage_and_the_predictions(
        served: Store) -> None:
    found = served.impact("dataset@v2")
    assert [m["label"] for m in found.models] == ["model@v2"]
    assert found.models[0]["stages"] == ["production"]
    assert found.stages == ["model@production"]
    assert "model@production" in str(found)
    earlier = served.impact("dataset@v1")
    assert [p["label"] for p in earlier.predictions] == ["predictions@batch-1"]
    assert {r["op"] for r in earlier.runs} == {"train", "score"}


def test_bad_trace_and_prediction_input_raise_typed_errors(served: Store) -> None:
    with pytest.raises(RevisionNotFound, match="no row 'p-999'"):
        served.trace("predictions@batch-1", row="p-999")
    with pytest.raises(RecordTypeError, match="not a prediction set"):
        served.trace("model@v1")
    batch = frame(range(0, 3), seed=1)[FEATURES]
    with served.run("score") as run:
        with pytest.raises(UnsupportedValue, match="3 rows"):
            run.log_predictions([0, 1], inputs=batch, model="model@v1")
        with pytest.raises(RecordTypeError, match="not a model"):
            run.log_predictions([0, 1, 0], inputs=batch, model="dataset@v1")
        with pytest.raises(UnsupportedValue, match="unique"):
            run.log_predictions([0, 1, 0], inputs=batch, model="model@v1", ids=["x", "x", "y"])


def test_cli_trace_and_impact(served: Store, capsys: pytest.CaptureFixture[str]) -> None:
    home = served.path
    served.close()
    assert main(["--store", home, "trace", "predictions@batch-1", "--row", "p-100",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["in_training"] is True and data["model"]["label"] == "model@v1"
    assert main(["--store", home, "impact", "dataset@v2"]) == 0
    assert "model@v2 (holds production)" in capsys.readouterr().out
    assert main(["--store", home, "trace", "predictions@batch-1", "--row", "nope"]) == 1
    assert capsys.readouterr().err.startswith("lineage: error: no row 'nope'")
