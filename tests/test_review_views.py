"""What a reviewer reads besides the diff: ``lineage dag`` of every pipeline, ``lineage show``
of a model or dataset, and every record's ``to_dict()``."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli.app import main
from lineage.core.records import Artifact, Run
from lineage.store import Store

FEATURES = [f"f{i}" for i in range(12)]


def frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    data["y"] = (data["f0"] + 0.5 * data["f3"] > 0).astype(int)
    return data


@lineage.step
def clean(raw: pd.DataFrame) -> pd.DataFrame:
    return raw.dropna()


@lineage.step
def fit(table: pd.DataFrame, C: float) -> LogisticRegression:  # noqa: N803
    return LogisticRegression(C=C).fit(table[FEATURES], table["y"])


@pytest.fixture
def two_pipelines(store: Store, tmp_path: Path) -> Store:
    """A clinical pipeline (CSV → run with clean and fit steps → model, 2 versions) and an
    unrelated one (a config → report), sharing nothing but the environment."""
    for version, seed in (("v1.0", 1), ("v1.1", 2)):
        path = tmp_path / f"{version}.csv"
        frame(80, seed).assign(f5=lambda f: f.f5.mask(f.index == 3)).to_csv(path, index=False)
        store.add(path, name="cohort", version=version, kind="dataset", target="y")
    store.add(frame(40, 3), name="holdout", version="v1", target="y")
    for version, c in (("v1.0", 1.0), ("v1.1", 0.3)):
        with store.run("train_model", params={"C": c}) as run:
            raw = run.log_input(f"cohort@{version}", name="cohort")
            model = fit(clean(store.load(raw)), C=c)
            run.log_model(model, name="model", version=version)
            test = store.load("holdout@v1")
            run.log_evaluation(test["y"], model.predict(test[FEATURES]), dataset="holdout@v1")
    with store.run("summarize") as run:
        run.log_input(store.add({"threshold": 0.5}, name="settings"), name="settings")
        run.log_artifact(b"report", name="report")
    return store


def cli(home: Path, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    capsys.readouterr()
    assert main(["--store", str(home), *argv]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    return out


# -- dag of every pipeline ------------------------------------------------------------------------


def test_pipelines_fold_runs_by_step_and_artifacts_by_name(two_pipelines: Store) -> None:
    found = two_pipelines.pipelines()
    assert len(found) == 2
    clinical, other = found
    assert [s.name for s in clinical.steps] == ["train_model", "clean", "fit"]
    assert [s.runs for s in clinical.steps] == [2, 2, 2]
    assert [(s.name, s.inside) for s in clinical.steps[1:]] == [("clean", "train_model"),
                                                                 ("fit", "train_model")]
    assert [(n.name, n.versions) for n in clinical.sources] == [
        ("cohort", ("v1.0", "v1.1")), ("holdout", ("v1",))]
    assert {n.name for n in clinical.outputs} == {"evaluation", "model"}
    # the DataFrame clean() received is the content of cohort: the same node, not a source
    uses = {(e.source, e.target, e.roles) for e in clinical.edges if e.type == "used"}
    assert ("artifact:cohort", "step:clean", ("raw",)) in uses
    assert ("output:clean.return", "step:fit", ("table",)) in uses
    assert any(e.type == "derived_from" and e.target == "artifact:model" for e in clinical.edges)
    assert not any(n.kind in ("code", "environment") for p in found for n in p.nodes)
    assert [s.name for s in other.steps] == ["summarize"]
    assert [n.name for n in other.sources] == ["settings"]
    json.dumps([p.to_dict() for p in found], allow_nan=False)


def test_lineage_dag_without_a_revision_shows_every_pipeline(
        two_pipelines: Store, capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(two_pipelines.path)
    two_pipelines.close()
    text = cli(home, capsys, "dag")
    assert text.startswith("pipeline 1 of 2: cohort, holdout → evaluation, model  (3 steps)")
    assert re.search(r"^  sources +cohort +dataset +v1\.0, v1\.1$", text, re.MULTILINE)
    assert re.search(r"^  steps +train_model +2 runs +cohort, holdout → evaluation, model$",
                     text, re.MULTILINE)
    assert re.search(r"^ +clean +2 runs +cohort \(raw\) → clean\.return +inside train_model$",
                     text, re.MULTILINE)
    assert re.search(r"^  outputs +evaluation +evaluation +v1, v2$", text, re.MULTILINE)
    assert re.search(r"^ +model +model +v1\.0, v1\.1 +⇐ fit\.return$", text, re.MULTILINE)
    assert "pipeline 2 of 2: settings → report  (1 step)" in text
    data = json.loads(cli(home, capsys, "dag", "--json"))
    assert [len(p["steps"]) for p in data["pipelines"]] == [3, 1]
    dot = cli(home, capsys, "dag", "--dot")
    assert dot.startswith("digraph pipelines {") and dot.count("subgraph cluster_") == 2
    assert '"1:step:train_model" [label="train_model\\n2 runs", shape=ellipse];' in dot
    assert '"1:artifact:cohort" -> "1:step:clean" [label="raw"];' in dot
    assert '"1:step:train_model" -> "1:step:clean" [style=dashed];' in dot
    # with a revision, the tree of that lineage as before
    assert cli(home, capsys, "dag", "model@v1.1").startswith("model@v1.1  [model]")


def test_dag_of_an_empty_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    home = tmp_path / "store"
    assert main(["--store", str(home), "init"]) == 0
    assert "no pipelines" in cli(home, capsys, "dag")
    capsys.readouterr()
    assert main(["--store", str(home), "dag", "--depth", "2"]) == 2  # --depth needs REV


# -- show ----------------------------------------------------------------------------------------


def test_show_a_model_lists_importances_hyperparameters_and_classes(
        two_pipelines: Store, capsys: pytest.CaptureFixture[str]) -> None:
    data = frame(200, 4)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(data[FEATURES],
                                                                          data["y"])
    two_pipelines.add(forest, name="forest")
    home = Path(two_pipelines.path)
    two_pipelines.close()
    text = cli(home, capsys, "show", "forest")
    assert re.search(r"^class +sklearn\.ensemble\._forest\.RandomForestClassifier$", text,
                     re.MULTILINE)
    assert re.search(r"^classes +0, 1$", text, re.MULTILINE)
    assert re.search(r"^param\.n_estimators +10$", text, re.MULTILINE)
    assert re.search(r"^param\.max_features +sqrt$", text, re.MULTILINE)
    head, importances = text.split("\n\nfeature importance (feature_importances, top 10 of 12, "
                                   "by magnitude)\n")
    rows = [line.split() for line in importances.splitlines()]
    assert len(rows) == 10 and all(len(r) == 2 for r in rows)
    expected = sorted(zip(FEATURES, forest.feature_importances_, strict=True),
                      key=lambda p: -p[1])[:10]
    assert [r[0] for r in rows] == [name for name, _ in expected]
    assert [float(r[1]) for r in rows] == pytest.approx([v for _, v in expected], rel=1e-5)
    review = json.loads(cli(home, capsys, "show", "forest", "--json"))["review"]["model"]
    assert review["importance"]["kind"] == "feature_importances"
    assert review["importance"]["total"] == 12 and len(review["importance"]["top"]) == 10
    assert review["params"]["n_estimators"] == 10 and review["classes"] == [0, 1]
    coef = json.loads(cli(home, capsys, "show", "model@v1.1", "--json"))["review"]["model"]
    assert coef["importance"]["kind"] == "coef"
    magnitudes = [abs(v) for _, v in coef["importance"]["top"]]
    assert magnitudes == sorted(magnitudes, reverse=True)
    assert re.search(r"^param\.C +0\.3$", cli(home, capsys, "show", "model@v1.1"), re.MULTILINE)


def test_show_a_dataset_lists_rows_columns_and_class_balance(
        two_pipelines: Store, capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(two_pipelines.path)
    two_pipelines.close()
    text = cli(home, capsys, "show", "cohort@v1.0")
    assert re.search(r"^rows +80$", text, re.MULTILINE)
    assert re.search(r"^missing +f5: 1$", text, re.MULTILINE)
    assert re.search(r"^target +y$", text, re.MULTILINE)
    balance = frame(80, 1)["y"].value_counts()
    assert re.search(rf"^class balance +0: {balance[0]} \({100 * balance[0] / 80:.1f}%\), "
                     rf"1: {balance[1]} \({100 * balance[1] / 80:.1f}%\)$", text, re.MULTILINE)
    assert re.search(r"^columns +f0 +float64\n +f1 +float64$", text, re.MULTILINE)
    assert re.search(r"^ +y +int64$", text, re.MULTILINE)
    table = json.loads(cli(home, capsys, "show", "cohort@v1.0", "--json"))["review"]["table"]
    assert table["rows"] == 80 and table["columns"][-1] == ["y", "int64"]
    assert table["class_distribution"] == {"0": int(balance[0]), "1": int(balance[1])}


# -- to_dict ---------------------------------------------------------------------------------------


def test_every_record_has_a_json_safe_to_dict(two_pipelines: Store) -> None:
    with two_pipelines.run("odd", params={"C": 1.0, "n": 1, "grid": (1, 2.5)}) as run:
        run.log_metric("loss", math.nan)
        run.log_metric("auc", 0.5)
    for record in two_pipelines._iter_records():
        data = record.to_dict()
        text = json.dumps(data, allow_nan=False)
        assert data["digest"] == record.digest
        assert data["type"] == ("run" if isinstance(record, Run) else "artifact")
        assert json.loads(text) == data
    run = two_pipelines.runs(op="odd")[0]
    data = run.to_dict()
    assert data["params"] == {"C": 1.0, "n": 1, "grid": [1, 2.5]}
    assert isinstance(data["params"]["C"], float) and isinstance(data["params"]["n"], int)
    assert data["metrics"] == {"loss": "nan", "auc": 0.5}
    assert data["started"].endswith("+00:00")
    model = two_pipelines.resolve("model@v1.1")
    assert isinstance(model, Artifact)
    described = model.to_dict()
    assert model.blob is not None and described["blob"] == model.blob.hex()
    assert described["summary"]["identity"] == model.summary["identity"].hex()
    shown = two_pipelines.describe("model@v1.1")
    assert {k: v for k, v in shown.items() if k in described} == {**described,
                                                                    "version": "v1.1"}


def test_a_step_passing_its_input_through_does_not_make_it(store: Store) -> None:
    data = frame(20, 5)
    store.add(data, name="cohort")
    with store.run("train_model"):
        fit(clean(store.load("cohort")), C=1.0)  # nothing to drop: clean returns its input
    (pipeline,) = store.pipelines()
    assert [n.name for n in pipeline.sources] == ["cohort"]
    made = {(e.source, e.target) for e in pipeline.edges if e.type == "generated"}
    assert ("step:clean", "artifact:cohort") not in made
    assert ("artifact:cohort", "step:fit") in {(e.source, e.target) for e in pipeline.edges}
