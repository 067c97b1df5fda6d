"""``store.lint()`` and ``lineage lint``: each rule fires on what it describes, and only there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import lineage
from lineage.cli.app import main
from lineage.store import Store
from lineage.views.lint import Finding

DOCUMENTED = {"origin": "site A, 2019-2021", "biases": "single site; few patients over 70"}
CSV = "age,label\n61,1\n47,0\n55,1\n33,0\n"


def codes(store: Store) -> list[str]:
    return [f.code for f in store.lint()]


def add_dataset(store: Store, tmp_path: Path, name: str, text: str = CSV,
                meta: dict[str, str] | None = None) -> lineage.Artifact:
    path = tmp_path / f"{name}.csv"
    path.write_text(text)
    return store.add(path, name=name, kind="dataset", target="label",
                     meta=DOCUMENTED if meta is None else meta)


def train_and_evaluate(store: Store, tmp_path: Path, *, evaluate: bool = True) -> None:
    """A model trained on a documented dataset, optionally evaluated on a documented test set."""
    add_dataset(store, tmp_path, "cohort")
    add_dataset(store, tmp_path, "testset", "age,label\n70,1\n20,0\n")
    with store.run("train") as run:
        run.log_input("cohort@v1", name="dataset")
        run.log_artifact(b"weights-1", "model", kind="model")
        if evaluate:
            run.log_evaluation([1, 0], [1, 0], dataset="testset@v1")


def test_a_documented_trained_evaluated_promoted_model_has_no_findings(
        store: Store, tmp_path: Path) -> None:
    train_and_evaluate(store, tmp_path)
    store.promote("model@v1", "production")
    assert store.lint() == []


def test_a_model_with_no_dataset_upstream_is_an_error(store: Store, tmp_path: Path) -> None:
    model = store.add(b"weights", name="orphan", kind="model")
    findings = store.lint()
    assert findings == [Finding("error", "L001", "model", "orphan@v1", model.digest,
                                findings[0].message)]
    assert "no dataset in its lineage" in findings[0].message


def test_a_model_trained_on_arrays_only_is_flagged(store: Store) -> None:
    import numpy as np

    with store.run("fit") as run:
        run.log_input(store.add(np.arange(6.0)))  # an array is a value, not a dataset
        run.log_artifact(b"w", "model", kind="model")
    assert codes(store) == ["L001"]


def test_a_dataset_several_runs_upstream_counts(store: Store, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "cohort")
    with store.run("prepare") as run:
        run.log_input("cohort")
        run.log_artifact(b"features", "features")
    with store.run("fit") as run:
        run.log_input("features")
        run.log_artifact(b"w", "model", kind="model")
    assert "L001" not in codes(store)


def test_a_model_derived_from_a_dataset_counts(store: Store, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "cohort")
    store.add(b"w", name="model", kind="model", derived_from=["cohort"])
    assert codes(store) == []


def test_metrics_not_tied_to_a_test_set_are_a_warning(store: Store, tmp_path: Path) -> None:
    with store.run("train") as run:
        run.log_metric("auc", 0.91)
    add_dataset(store, tmp_path, "testset")
    with store.run("train") as run:
        run.log_metric("auc", 0.91, dataset="testset")
    findings = store.lint()
    assert [(f.severity, f.code, f.label) for f in findings] == [("warning", "L002", "run train")]
    assert "auc" in findings[0].message


def test_an_evaluation_without_a_test_set_is_an_error(store: Store) -> None:
    with store.run("evaluate") as run:
        run.log_evaluation([1, 0, 1], [1, 0, 0])  # no dataset=
    store.add({"metrics": {"auc": 0.9}}, name="report", kind="evaluation")
    findings = [f for f in store.lint() if f.code == "L003"]
    assert sorted(f.label for f in findings) == ["evaluation@v1", "report@v1"]
    assert {f.severity for f in findings} == {"error"}
    assert "L002" not in codes(store)  # its metrics are covered by the L003 error


def test_source_datasets_need_origin_and_bias_notes(store: Store, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "bare", meta={})
    add_dataset(store, tmp_path, "half", "a,label\n1,0\n", meta={"origin": "registry extract"})
    add_dataset(store, tmp_path, "blank", "b,label\n2,1\n", meta={"origin": " ", "biases": ""})
    add_dataset(store, tmp_path, "full", "c,label\n3,1\n")
    found = sorted((f.label, f.code) for f in store.lint())
    assert found == [("bare@v1", "L004"), ("bare@v1", "L005"), ("blank@v1", "L004"),
                     ("blank@v1", "L005"), ("half@v1", "L005")]
    assert all(f.severity == "warning" for f in store.lint())


def test_datasets_made_from_others_are_described_by_their_lineage(
        store: Store, tmp_path: Path) -> None:
    source = add_dataset(store, tmp_path, "cohort")
    (tmp_path / "clean.csv").write_text("age,label\n61,1\n")
    store.add(tmp_path / "clean.csv", name="clean", kind="dataset", derived_from=[source])
    with store.run("split") as run:
        run.log_input(source)
        (tmp_path / "train.csv").write_text("age,label\n47,0\n")
        run.log_artifact(tmp_path / "train.csv", "train", kind="dataset")
    assert codes(store) == []


def test_a_dataframe_shares_the_notes_of_the_file_it_was_loaded_from(
        store: Store, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "cohort")
    frame = store.load("cohort")  # a DataFrame
    store.add(frame)  # same rows, another format: the same identity
    assert codes(store) == []
    store.add(frame.iloc[:2])  # other rows: undocumented
    assert codes(store) == ["L004", "L005"]


def test_a_failed_run_that_recorded_outputs_is_a_warning(store: Store) -> None:
    with pytest.raises(ValueError, match="diverged"), store.run("train") as run:
        run.log_artifact(b"half-trained", "checkpoint")
        raise ValueError("loss diverged")
    with pytest.raises(ValueError), store.run("nothing"):
        raise ValueError("no outputs, nothing to flag")
    findings = store.lint()
    assert [(f.code, f.severity, f.label) for f in findings] == [("L006", "warning", "run train")]
    assert "loss diverged" in findings[0].message and "checkpoint" in findings[0].message


def test_a_promoted_model_without_evaluation_is_an_error(store: Store, tmp_path: Path) -> None:
    train_and_evaluate(store, tmp_path, evaluate=False)
    assert codes(store) == []  # not promoted: nothing claims it is fit for use
    store.promote("model@v1", "staging")  # a stage without a gate, so lint must catch it
    findings = store.lint()
    assert [(f.code, f.severity, f.label) for f in findings] == [("L007", "error", "model@v1")]
    assert "model@staging" in findings[0].message


def test_an_evaluation_in_a_later_run_that_used_the_model_counts(
        store: Store, tmp_path: Path) -> None:
    train_and_evaluate(store, tmp_path, evaluate=False)
    store.promote("model@v1", "staging")
    with store.run("evaluate") as run:
        run.log_input("model@v1")
        run.log_metric("sensitivity", 0.9, dataset="testset@v1")
    assert codes(store) == []


def test_a_model_fitted_by_a_step_on_a_loaded_dataset_is_clean(
        store: Store, tmp_path: Path) -> None:
    """The healthcare pattern: a step fits a model on a DataFrame loaded from a dataset
    inside a run that logs and evaluates it; the step's unnamed DataFrame input shares the
    notes of the CSV it came from."""
    from sklearn.linear_model import LogisticRegression

    add_dataset(store, tmp_path, "cohort")
    add_dataset(store, tmp_path, "testset", "age,label\n70,1\n20,0\n")

    @lineage.step(store=store)
    def fit(frame: object) -> LogisticRegression:
        return LogisticRegression().fit(frame[["age"]], frame["label"])  # type: ignore[index]

    with store.run("train") as run:
        model = fit(store.load("cohort"))
        run.log_model(model, name="model")
        run.log_evaluation([1, 0], [1, 0], dataset="testset")
    store.promote("model@v1", "production")
    assert len(store.artifacts(kind="model")) == 2  # the step's output and the logged one
    assert store.lint() == []


def test_a_promoted_model_from_a_failed_run_is_an_error(store: Store, tmp_path: Path) -> None:
    add_dataset(store, tmp_path, "cohort")
    with pytest.raises(RuntimeError), store.run("train") as run:
        run.log_input("cohort")
        run.log_artifact(b"w", "model", kind="model")
        raise RuntimeError("crashed after saving")
    store.promote("model@v1", "staging")
    assert codes(store) == ["L007", "L008", "L006"]  # errors first, then warnings


def test_findings_print_on_one_line_with_label_and_short_digest(store: Store) -> None:
    model = store.add(b"w", name="orphan", kind="model")
    (finding,) = store.lint()
    assert str(finding).startswith(f"error L001 orphan@v1 {model.digest[:12]}: ")
    assert "\n" not in str(finding)
    assert finding.to_dict()["digest"] == model.digest


def test_cli_lint_exits_0_with_warnings_only(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    with lineage.open(home) as store:
        add_dataset(store, tmp_path, "bare", meta={})
    assert main(["--store", str(home), "lint"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[:3] for line in out] == [["warning", "L004", "bare@v1"],
                                                  ["warning", "L005", "bare@v1"]]


def test_cli_lint_exits_1_on_an_error_and_says_so_on_stderr(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    with lineage.open(home) as store:
        store.add(b"w", name="orphan", kind="model")
        add_dataset(store, tmp_path, "bare", meta={"origin": "x"})
    assert main(["--store", str(home), "lint"]) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].startswith("error L001 orphan@v1")
    assert captured.err.strip() == "lineage: error: lint found 1 error and 1 warning"


def test_cli_lint_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    with lineage.open(home) as store:
        model = store.add(b"w", name="orphan", kind="model")
    assert main(["--store", str(home), "lint", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and (data["errors"], data["warnings"]) == (1, 0)
    assert data["findings"][0]["digest"] == model.digest
    assert set(data["findings"][0]) == {"severity", "code", "kind", "label", "digest", "message"}


def test_cli_lint_of_a_clean_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "store"
    assert main(["--store", str(home), "init"]) == 0
    capsys.readouterr()
    assert main(["--store", str(home), "lint"]) == 0
    assert capsys.readouterr().out.strip() == "no findings"
