"""``store.run()``: params, metric series and batching, failures, inputs, outputs, evaluation.

Runs record into a real LMDB store in a temporary directory; batching is checked by
counting write transactions, never by timing.
"""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import lineage
from lineage.core.records import Run
from lineage.errors import (
    ChunkVanished,
    InvalidName,
    InvalidQuery,
    RevisionNotFound,
    RunError,
    UnsupportedValue,
)
from lineage.storage.schema import EDGE_CHILD, EDGE_GENERATED, EDGE_USED
from lineage.store import Store
from lineage.tracking.evaluation import evaluate


def has_edge(store: Store, src: Any, edge: bytes, dst: Any) -> bool:
    with store._read() as txn:
        return txn.get("edges_out", src.raw_digest + edge + dst.raw_digest) is not None


def committed(run: Any) -> Run:
    assert isinstance(run.record, Run)
    return run.record


# -- params -----------------------------------------------------------------------------


def test_params_from_the_call_and_logged(store: Store) -> None:
    with store.run("train", params={"C": 0.5, "penalty": "l2"}) as run:
        run.log_param("max_iter", np.int64(200))  # numpy scalars become plain numbers
        run.log_params({"layers": (64, 32), "class_weight": {"0": 1.0, "1": 3.0}})
    record = committed(run)
    assert record.op == "train" and record.status == "ok"
    assert record.params == {"C": 0.5, "penalty": "l2", "max_iter": 200, "layers": [64, 32],
                             "class_weight": {"0": 1.0, "1": 3.0}}
    assert type(record.params["max_iter"]) is int
    assert store.resolve(record.digest) == record
    assert store.runs(op="train") == [record]


@pytest.mark.parametrize("bad", [object(), {1, 2}, lambda: 0, {"k": object()}],
                         ids=["object", "set", "lambda", "nested"])
def test_log_param_refuses_values_that_are_not_json_like(store: Store, bad: Any) -> None:
    with store.run("train") as run:
        with pytest.raises(UnsupportedValue, match="'weights'"):
            run.log_param("weights", bad)
        run.log_param("ok", 1)
    assert committed(run).params == {"ok": 1}


def test_params_are_validated_when_the_run_is_created(store: Store) -> None:
    with pytest.raises(UnsupportedValue, match="'model'"):
        store.run("train", params={"model": object()})
    with pytest.raises(InvalidName):
        store.run("train", params={3: "x"})  # type: ignore[dict-item]
    with pytest.raises(InvalidName):
        store.run("bad name")
    assert store.runs(op="train") == []


# -- metrics ----------------------------------------------------------------------------


def test_metric_series_with_steps_and_history(store: Store) -> None:
    with store.run("train") as run:
        for epoch, loss in enumerate([0.9, 0.5, 0.3]):
            run.log_metric("loss", loss, step=epoch * 10)
        run.log_metric("auc", np.float32(0.5))
        run.log_metric("auc", 0.75)  # no step: the point's position in its series
        run.log_metrics({"precision": 0.8, "recall": 0.6}, step=3)
    record = committed(run)
    assert record.metrics == {"loss": 0.3, "auc": 0.75, "precision": 0.8, "recall": 0.6}
    loss = store.metric_history(record, "loss")
    assert [(s, v) for s, _t, v in loss] == [(0, 0.9), (10, 0.5), (20, 0.3)]
    assert all(isinstance(t, float) for _s, t, _v in loss)
    assert [t for _s, t, _v in loss] == sorted(t for _s, t, _v in loss)
    assert [(s, v) for s, _t, v in store.metric_history(record.digest, "auc")] == [
        (0, 0.5), (1, 0.75)]
    assert store.metric_history(record, "missing") == []
    with pytest.raises(RevisionNotFound):
        store.metric_history("no-such-run", "loss")


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [("loss", "0.3", UnsupportedValue), ("loss", True, UnsupportedValue),
     ("loss", None, UnsupportedValue), ("", 1.0, InvalidName), ("a\nb", 1.0, InvalidName),
     (3, 1.0, InvalidName)],
)
def test_log_metric_refuses_bad_names_and_values(store: Store, name: Any, value: Any,
                                                  error: type[Exception]) -> None:
    with store.run("train") as run:
        with pytest.raises(error):
            run.log_metric(name, value)
    assert committed(run).metrics == {}


def test_ten_thousand_metrics_are_batched(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    writes = []
    original = Store._write

    def counting(self: Store, apply: Any) -> Any:
        writes.append(apply)
        return original(self, apply)

    monkeypatch.setattr(Store, "_write", counting)
    with store.run("train") as run:
        for i in range(10_000):
            run.log_metric("loss", 1.0 / (i + 1), step=i)
    assert len(writes) <= 10  # a transaction per batch, never per call
    history = store.metric_history(committed(run), "loss")
    assert len(history) == 10_000
    assert [s for s, _t, _v in history] == list(range(10_000))
    assert history[-1][2] == 1.0 / 10_000


# -- failures ---------------------------------------------------------------------------


def test_exception_marks_the_run_failed_keeps_what_was_logged_and_reraises(
    store: Store,
) -> None:
    boom = ZeroDivisionError("fold 3 diverged")
    with pytest.raises(ZeroDivisionError) as raised:
        with store.run("train", params={"C": 1.0}) as run:
            run.log_param("seed", 7)
            for i in range(5000):  # more than one batch
                run.log_metric("loss", float(i), step=i)
            run.log_artifact({"weights": [1, 2]}, name="weights")
            raise boom
    assert raised.value is boom  # the same exception object
    record = committed(run)
    assert record.status == "failed"
    assert record.error == {"type": "ZeroDivisionError", "message": "fold 3 diverged"}
    assert record.params == {"C": 1.0, "seed": 7}
    assert record.metrics == {"loss": 4999.0}
    assert len(store.metric_history(record, "loss")) == 5000
    assert store.load(store._artifact(record.outputs["weights"])) == {"weights": [1, 2]}
    assert store.versions("weights")[0].raw_digest == record.outputs["weights"]


def test_run_still_open_at_exit_is_recorded_failed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import lineage
        store = lineage.open({str(tmp_path / "s")!r})
        run = store.run("forgotten").__enter__()
        for i in range(10):
            run.log_metric("loss", float(i))
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    with lineage.open(tmp_path / "s") as store:
        (record,) = store.runs(op="forgotten")
        assert record.status == "failed"
        assert record.error is not None and record.error["type"] == "RunError"
        assert record.metrics == {"loss": 9.0}
        assert len(store.metric_history(record, "loss")) == 10


# -- inputs -------------------------------------------------------------------------------


def test_log_input_records_a_used_edge(store: Store) -> None:
    dataset = store.add({"rows": [1, 2, 3]}, name="dataset", version="v1.1")
    with store.run("train") as run:
        declared = run.log_input("dataset@v1.1")
    assert declared.raw_digest == dataset.raw_digest
    record = committed(run)
    assert record.inputs == {"dataset": dataset.raw_digest}
    assert has_edge(store, dataset, EDGE_USED, record)


def test_load_inside_a_run_is_recorded_as_an_input(store: Store) -> None:
    config = store.add({"lr": 0.1}, name="config")
    with store.run("train") as run:
        assert store.load("config") == {"lr": 0.1}
        store.load(config, as_name="hyper")
    record = committed(run)
    assert record.inputs == {"config": config.raw_digest, "hyper": config.raw_digest}
    assert has_edge(store, config, EDGE_USED, record)


def test_log_input_of_an_unknown_revision_raises(store: Store) -> None:
    store.add({"rows": 1}, name="dataset")
    with store.run("train") as run:
        with pytest.raises(RevisionNotFound, match="datasett"):
            run.log_input("datasett@v9")
        with pytest.raises(RevisionNotFound):
            run.log_input("dataset@v9")
    assert committed(run).inputs == {}


# -- closed runs ----------------------------------------------------------------------------


def test_logging_on_a_closed_run_raises(store: Store) -> None:
    store.add({"rows": 1}, name="dataset")
    with store.run("train") as run:
        run.log_metric("loss", 1.0)
    before = committed(run)
    attempts = [
        lambda: run.log_param("C", 1),
        lambda: run.log_params({"C": 1}),
        lambda: run.log_metric("loss", 0.5),
        lambda: run.log_metrics({"loss": 0.5}),
        lambda: run.log_input("dataset"),
        lambda: run.log_artifact({"a": 1}, name="thing"),
        lambda: run.log_model({"a": 1}),
        lambda: run.log_evaluation([0, 1], [0, 1]),
    ]
    for attempt in attempts:
        with pytest.raises(RunError, match="closed"):
            attempt()
    with pytest.raises(RunError):
        run.__enter__()
    assert store.runs(op="train") == [before]
    assert len(store.metric_history(before, "loss")) == 1
    assert store.names() == ["dataset"]


# -- outputs --------------------------------------------------------------------------------


def test_logged_artifacts_get_versions_when_the_run_commits(store: Store, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("all good\n")
    with store.run("train") as run:
        model = run.log_model({"coef": [0.1, 0.2]}, version="v1.0")
        assert model.version is None  # versions are given at commit
        run.log_artifact(report)
        run.log_artifact(b"\x00\x01", name="blob", version="b1")
        unnamed = run.log_artifact([1, 2, 3])
        assert store.versions("model") == []  # nothing visible before the block ends
    record = committed(run)
    assert run.artifacts["model"].version == "v1.0"
    assert run.artifacts["model"].kind == "model"
    assert run.artifacts["report.txt"].version == "v1"
    assert run.artifacts["blob"].version == "b1"
    assert set(record.outputs) == {"model", "report.txt", "blob", "output.3"}
    assert record.outputs["output.3"] == unnamed.raw_digest
    assert store.resolve("model@v1.0").raw_digest == record.outputs["model"]
    assert store.read_bytes("report.txt") == b"all good\n"
    for digest in record.outputs.values():
        assert has_edge(store, record, EDGE_GENERATED, store._artifact(digest))


def test_version_clash_raises_before_the_block_ends(store: Store) -> None:
    store.add({"coef": [1.0]}, name="model", version="v1", kind="model")
    with store.run("train") as run:
        with pytest.raises(InvalidName, match="model@v1"):
            run.log_model({"coef": [2.0]}, version="v1")
        run.log_model({"coef": [1.0]}, version="v1")  # the same content: no clash
        run.log_metric("loss", 0.1)
    assert committed(run).status == "ok"
    assert [a.version for a in store.versions("model")] == ["v1"]


def test_same_name_logged_twice_in_a_run_is_not_silently_dropped(store: Store) -> None:
    with store.run("train") as run:
        run.log_artifact({"epoch": 1}, name="checkpoint")
        run.log_artifact({"epoch": 1}, name="checkpoint")  # the same content again: fine
        with pytest.raises(InvalidName, match="checkpoint"):
            run.log_artifact({"epoch": 2}, name="checkpoint")
    assert store.load("checkpoint") == {"epoch": 1}
    assert len(store.versions("checkpoint")) == 1


def test_log_model_of_a_fitted_estimator(store: Store) -> None:
    from sklearn.linear_model import LogisticRegression

    features = np.array([[0.0, 1.0], [1.0, 0.0], [0.2, 0.9], [0.9, 0.1]])
    labels = np.array([0, 1, 0, 1])
    fitted = LogisticRegression(C=0.5).fit(features, labels)
    with store.run("train", params={"C": 0.5}) as run:
        run.log_model(fitted, name="model", version="v1")
    artifact = run.artifacts["model"]
    assert artifact.kind == "model" and artifact.version == "v1"
    assert artifact.summary["class"].endswith("LogisticRegression")
    assert artifact.summary["n_features_in"] == 2
    loaded = store.load("model@v1", trust=True)
    assert (loaded.predict(features) == fitted.predict(features)).all()


def test_nested_runs_are_linked(store: Store) -> None:
    with store.run("sweep") as sweep:
        for c in (0.1, 1.0):
            with store.run("train", params={"C": c}) as trial:
                trial.log_metric("auc", c)
    parent = committed(sweep)
    children = store.runs(op="train")
    assert len(children) == 2
    for child in children:
        assert child.parent == parent.id
        assert has_edge(store, parent, EDGE_CHILD, child)


# -- evaluation -------------------------------------------------------------------------------

#           idx: 0  1  2  3  4  5  6  7  8  9
_TRUTH = [1, 1, 1, 0, 0, 0, 0, 1, 0, 0]
_PRED = [1, 0, 1, 0, 1, 0, 0, 1, 0, 0]
# tp = {0, 2, 7} = 3; fn = {1} = 1; fp = {4} = 1; tn = {3, 5, 6, 8, 9} = 5


def test_log_evaluation_computes_metrics_with_their_population(store: Store) -> None:
    test_set = store.add({"ids": list(range(10))}, name="testset", version="v2")
    with store.run("evaluate") as run:
        evaluation = run.log_evaluation(np.array(_TRUTH), np.array(_PRED),
                                        dataset="testset@v2")
    record = committed(run)
    expected = {"sensitivity": 3 / 4, "specificity": 5 / 6, "ppv": 3 / 4, "npv": 5 / 6,
                "accuracy": 8 / 10, "f1": 3 / 4}
    for metric, value in expected.items():
        assert record.metrics[metric] == pytest.approx(value)
        assert record.metric_datasets[metric] == test_set.raw_digest
    assert record.inputs == {"testset": test_set.raw_digest}
    assert has_edge(store, test_set, EDGE_USED, record)

    assert evaluation.kind == "evaluation"
    content = store.load(run.artifacts["evaluation"])
    assert content["confusion_matrix"] == [[5, 1], [1, 3]]
    assert content["population"] == {"n": 10, "positives": 4, "negatives": 6,
                                     "prevalence": 0.4, "class_distribution": {"0": 6, "1": 4}}
    assert content["dataset"] == test_set.raw_digest
    assert content["metrics"] == pytest.approx(expected)
    summary = run.artifacts["evaluation"].summary  # readable without loading the blob
    assert summary["population"]["n"] == 10
    assert summary["dataset"] == test_set.raw_digest
    assert summary["metrics"]["sensitivity"] == pytest.approx(0.75)
    assert summary["confusion_matrix"] == [[5, 1], [1, 3]]


def test_zero_denominator_metrics_are_none_never_zero(store: Store) -> None:
    with store.run("evaluate") as run:
        run.log_evaluation([0, 0, 0], [0, 0, 0])
    record = committed(run)
    assert "sensitivity" not in record.metrics and "ppv" not in record.metrics
    assert record.metrics["specificity"] == 1.0 and record.metrics["npv"] == 1.0
    content = store.load(run.artifacts["evaluation"])
    assert content["metrics"]["sensitivity"] is None
    assert content["metrics"]["ppv"] is None
    assert content["metrics"]["f1"] is None
    assert content["population"]["positives"] == 0
    assert content["dataset"] is None


def test_evaluate_by_hand() -> None:
    result = evaluate(["yes", "no", "yes", "no"], ["yes", "yes", "no", "no"],
                      positive_label="yes", y_score=[0.9, 0.8, 0.3, 0.1])
    assert result["confusion_matrix"] == [[1, 1], [1, 1]]
    assert result["metrics"]["sensitivity"] == 0.5
    # positives score 0.9, 0.3; negatives 0.8, 0.1: 3 of 4 pairs ordered right
    assert result["metrics"]["roc_auc"] == 0.75
    assert evaluate([0, 1, 1], [0, 1, 1], y_score=[0.5, 0.5, 0.5])["metrics"]["roc_auc"] == 0.5
    assert evaluate([1, 1], [1, 0], y_score=[0.2, 0.3])["metrics"]["roc_auc"] is None
    assert evaluate([True, False], [True, True])["positive_label"] is True


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [([0, 1], [0], "match"), ([], [], "empty"), (["a"], ["a"], "positive_label")],
)
def test_evaluate_refuses_what_it_cannot_measure(truth: list[int], pred: list[int],
                                                 match: str) -> None:
    with pytest.raises(UnsupportedValue, match=match):
        evaluate(truth, pred)


def test_a_binary_task_with_three_classes_is_refused() -> None:
    with pytest.raises(InvalidQuery, match="multiclass"):
        evaluate([0, 1, 2], [0, 1, 2], task="binary")


def test_log_metric_with_a_dataset_records_where_it_was_measured(store: Store) -> None:
    holdout = store.add({"ids": [1, 2]}, name="holdout")
    with store.run("evaluate") as run:
        run.log_metric("auc", 0.8, dataset="holdout")
        run.log_metric("loss", 0.2)
        with pytest.raises(RevisionNotFound):
            run.log_metric("auc", 0.9, dataset="nowhere")
    record = committed(run)
    assert record.metric_datasets == {"auc": holdout.raw_digest}
    assert record.metrics == {"auc": 0.8, "loss": 0.2}
    assert not math.isnan(record.metrics["auc"])


def test_version_taken_by_another_writer_before_commit_keeps_the_run_as_failed(
    store: Store,
) -> None:
    with pytest.raises(InvalidName, match="already exists"):
        with store.run("train") as run:
            run.log_metric("loss", 0.5)
            run.log_model({"w": [1, 2]}, name="model", version="v1")
            store.add({"w": [9, 9]}, name="model", version="v1")  # a concurrent writer wins
    record = committed(run)
    assert record.status == "failed"
    assert "could not be versioned" in record.error["message"]
    assert record.metrics == {"loss": 0.5}
    kept = store._artifact(record.outputs["model"])  # the output's content is still there
    assert store.load(kept) == {"w": [1, 2]}
    assert store.load("model@v1") == {"w": [9, 9]}


def test_version_clash_after_a_failing_block_keeps_the_users_exception(store: Store) -> None:
    with pytest.raises(ZeroDivisionError) as raised:
        with store.run("train") as run:
            run.log_model({"w": [1]}, name="model", version="v1")
            store.add({"w": [2]}, name="model", version="v1")
            1 / 0  # noqa: B018
    assert any("could not be versioned" in note for note in raised.value.__notes__)
    assert committed(run).error["type"] == "ZeroDivisionError"


def test_two_versions_of_one_name_used_in_a_run_are_both_inputs(store: Store) -> None:
    store.add({"rows": 1}, name="testset", version="v1")
    store.add({"rows": 2}, name="testset", version="v2")
    with store.run("evaluate") as run:
        run.log_input("testset@v1")
        run.log_input("testset@v2")
    record = run.record
    assert record is not None
    assert len(record.inputs) == 2
    assert [r.digest for r in store.descendants("testset@v1")] == [record.digest]


def test_a_run_whose_reused_content_vanishes_is_staged_again_and_kept(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Store._write
    failures = [1]

    def write_once_vanishing(self: Store, apply: Any) -> Any:
        if failures:
            failures.pop()
            raise ChunkVanished("gone")
        return original(self, apply)

    with store.run("train") as run:
        run.log_metric("loss", 0.25)
        run.log_artifact({"w": [1, 2]}, name="weights")
        monkeypatch.setattr(Store, "_write", write_once_vanishing)
    record = run.record
    assert record is not None and record.status == "ok"
    assert store.load("weights") == {"w": [1, 2]}
    assert store.resolve(record.digest).metrics == {"loss": 0.25}


def test_a_load_through_another_handle_on_the_same_store_is_an_input(tmp_path: Path) -> None:
    """``lineage.open`` of the run's own store (a helper that opens it again) gives another
    handle on the same store: what it loads inside the run is the run's input all the same;
    a different store's loads are not."""
    path = tmp_path / "store"
    with lineage.open(path) as store, lineage.open(tmp_path / "other") as other:
        config = store.add({"C": 1}, name="config")
        other.add({"C": 2}, name="elsewhere")
        with store.run("train"):
            again = lineage.open(path)
            assert again is not store and again.load("config") == {"C": 1}
            assert other.load("elsewhere") == {"C": 2}
            again.close()
        (train,) = store.runs("train")
        assert list(train.inputs.values()) == [config.raw_digest]


def test_a_load_through_a_point_in_time_view_is_an_input(tmp_path: Path) -> None:
    """A run that reads an artifact as the store stood earlier (``store.as_of``) used that
    artifact: it is recorded as the run's input, whichever version is live now."""
    with lineage.open(tmp_path / "store") as store:
        old = store.add({"C": 1}, name="config")
        moment = store.events()[-1].time
        store.add({"C": 2}, name="config")
        with store.run("retrain"):
            assert store.as_of(moment).load("config", as_name="config") == {"C": 1}
        (run,) = store.runs("retrain")
        assert run.inputs == {"config": old.raw_digest}


def test_what_runs_in_a_context_copied_inside_a_run_after_it_ends_is_not_part_of_it(
        store: Store) -> None:
    """A context copied while a run is open (as threads of an in-process Dask cluster
    started inside the run hold one) still names the run after it ends; a step called
    there, a run started there and a load made there are not that run's."""
    import contextvars

    @lineage.step(store=store)
    def double(x: int) -> int:
        return 2 * x

    config = store.add({"C": 1}, name="config")
    with store.run("outer"):
        copied = contextvars.copy_context()
        inside = copied.run(double, 1)

    def later() -> None:
        assert double(2) == 4
        with store.run("late"):
            pass
        store.load("config")

    copied.run(later)
    assert inside == 2
    (outer,), (late,) = store.runs("outer"), store.runs("late")
    parents = {run.params["x"]: run.parent for run in store.runs("double")}
    assert parents == {1: outer.id, 2: None}
    assert late.parent is None
    assert outer.inputs == {} and config.raw_digest not in late.inputs.values()
    with store._read() as txn:
        from lineage.storage import schema

        children = [d for _e, d in schema.downstream(txn, outer.raw_digest, EDGE_CHILD)]
    assert len(children) == 1  # the call made while the run was open


def test_a_run_nested_through_another_handle_is_a_child_of_the_outer_run(tmp_path: Path) -> None:
    from lineage.storage import schema

    path = tmp_path / "store"
    with lineage.open(path) as store:
        again = lineage.open(path)
        with store.run("outer"):
            with again.run("inner"):
                pass
        again.close()
        (outer,), (inner,) = store.runs("outer"), store.runs("inner")
        assert inner.parent == outer.id
        with store._read() as txn:
            assert [d for _e, d in schema.downstream(txn, outer.raw_digest, schema.EDGE_CHILD)] \
                == [inner.raw_digest]
