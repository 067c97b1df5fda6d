"""Comparing runs as MLflow users do: a table of runs (``store.runs_frame``, ``lineage runs``
with params as columns) and runs side by side (``store.compare``, ``lineage compare``)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

from lineage.cli.app import main
from lineage.errors import InvalidQuery, MissingDependency, RecordTypeError
from lineage.store import Store

C_GRID = (0.01, 0.1, 1.0, 10.0)


@pytest.fixture
def sweep(store: Store) -> Store:
    """A C sweep on cohort@v1 (sensitivity on testset@v1), then one run on testset@v2."""
    store.add(pd.DataFrame({"x": [1, 2, 3]}), name="cohort", version="v1")
    for name in ("v1", "v2"):
        store.add(pd.DataFrame({"y": [0, 1, 1, 0]}) if name == "v1"
                  else pd.DataFrame({"y": [1, 1, 0]}), name="testset", version=name)
    for i, c in enumerate(C_GRID):
        with store.run("train", params={"C": c, "solver": "lbfgs", "note": "n" * 40},
                       label=f"c{i}") as run:
            run.log_input("cohort@v1", name="data")
            run.log_metric("sensitivity", 0.70 + 0.05 * i, dataset="testset@v1")
            run.log_metric("auc", 0.80 + 0.01 * i, dataset="testset@v1")
            run.log_artifact({"C": c}, name="model")
    with store.run("train", params={"C": 1, "solver": "saga"}, label="other-test") as run:
        run.log_input("cohort@v1", name="data")
        run.log_metric("sensitivity", 0.95, dataset="testset@v2")
    return store


def test_runs_frame_names_columns_as_mlflow_search_runs(sweep: Store) -> None:
    frame = sweep.runs_frame(op="train")
    assert list(frame.columns[:9]) == ["run", "run_id", "op", "label", "status", "start_time",
                                       "end_time", "duration", "test_set"]
    assert list(frame.columns[9:]) == ["inputs.data", "inputs.testset", "params.C",
                                       "params.note", "params.solver", "metrics.sensitivity",
                                       "metrics.auc"]
    assert list(frame["label"]) == ["other-test", "c3", "c2", "c1", "c0"]  # newest first
    assert frame["params.C"].tolist() == [1, 10.0, 1.0, 0.1, 0.01]
    assert type(frame["params.C"][0]) is int and type(frame["params.C"][2]) is float
    assert frame["metrics.sensitivity"].tolist() == pytest.approx([0.95, 0.85, 0.8, 0.75, 0.7])
    assert frame["metrics.auc"].isna().tolist() == [True, False, False, False, False]
    assert frame["test_set"].tolist() == ["testset@v2"] + ["testset@v1"] * 4
    assert set(frame["inputs.data"]) == {"cohort@v1"}
    assert frame["inputs.testset"].tolist() == ["testset@v2"] + ["testset@v1"] * 4
    assert str(frame["start_time"].dt.tz) == "UTC"
    narrowed = sweep.runs_frame(params={"C": ("<", 1)})
    assert sorted(narrowed["params.C"]) == [0.01, 0.1]
    assert sweep.runs_frame(op="nothing").empty


def test_runs_frame_without_pandas_says_what_to_install(
        sweep: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(MissingDependency, match=r"pip install 'lineage\[pandas\]'"):
        sweep.runs_frame()


def test_compare_puts_differing_params_first_and_metric_deltas_with_test_sets(
        sweep: Store) -> None:
    runs = sweep.runs(op="train")
    by_label = {r.label: r for r in runs}
    comparison = sweep.compare(by_label["c0"], by_label["c2"].digest, by_label["c3"].digest[:10])
    assert [p.name for p in comparison.params] == ["C", "note", "solver"]
    assert [p.differs for p in comparison.params] == [True, False, False]
    assert comparison.params[0].values == (0.01, 1.0, 10.0)
    (sensitivity, auc) = comparison.metrics
    assert sensitivity.name == "sensitivity"  # clinical metrics first
    assert sensitivity.deltas[0] is None
    assert sensitivity.deltas[1:] == pytest.approx((0.10, 0.15))
    assert sensitivity.test_sets == ("testset@v1",) * 3 and sensitivity.comparable
    text = comparison.to_text()
    assert text.splitlines()[0].split() == ["run", *(r.digest[:12] for r in
                                                     (by_label["c0"], by_label["c2"],
                                                      by_label["c3"]))]
    assert text.index("params that differ") < text.index("params shared")
    assert re.search(r"^  C +0\.01 +1\.0 +10\.0$", text, re.MULTILINE)
    assert re.search(r"^  note +'n{16}… +'n{16}… +'n{16}…$", text, re.MULTILINE)  # cut
    assert "metrics on testset@v1" in text
    assert re.search(r"^  sensitivity +0\.7 +0\.8 \(\+0\.1\) +0\.85 \(\+0\.15\)$", text,
                     re.MULTILINE)
    json.dumps(comparison.to_dict(), allow_nan=False)


def test_compare_flags_metrics_measured_on_other_test_sets(sweep: Store) -> None:
    by_label = {r.label: r for r in sweep.runs(op="train")}
    comparison = sweep.compare(by_label["c2"], by_label["other-test"])
    assert [(p.name, p.differs) for p in comparison.params] == [
        ("C", True), ("note", True), ("solver", True)]  # 1.0 and 1 differ; note is missing
    sensitivity = comparison.metrics[0]
    assert sensitivity.test_sets == ("testset@v1", "testset@v2")
    assert not sensitivity.comparable
    text = str(comparison)
    assert "0.8 on testset@v1" in text and "0.95 (+0.15) on testset@v2" in text
    assert "not directly comparable" in text
    assert comparison.to_dict()["metrics"][0]["comparable"] is False


def test_compare_takes_artifacts_for_the_runs_that_made_them(sweep: Store) -> None:
    comparison = sweep.compare("model@v1", "model@v4")
    assert [r.label for r in comparison.runs] == ["c0", "c3"]
    with pytest.raises(RecordTypeError, match="no recorded run made"):
        sweep.compare("cohort@v1", "model@v1")
    with pytest.raises(InvalidQuery, match="two runs or more"):
        sweep.compare("model@v1")
    with pytest.raises(InvalidQuery, match="given twice"):
        sweep.compare("model@v1", "model@v1")


def test_plot_draws_a_metric_against_a_param(sweep: Store, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    by_label = {r.label: r for r in sweep.runs(op="train")}
    comparison = sweep.compare(*(by_label[f"c{i}"] for i in range(4)))
    png = comparison.plot(tmp_path / "sweep.png")
    data = png.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000
    svg = comparison.plot(tmp_path / "auc.svg", x="C", y="auc").read_text()
    assert "auc against C (4 runs)" in svg
    with pytest.raises(InvalidQuery, match="param 'solver' is not a number"):
        comparison.plot(tmp_path / "x.png", x="solver")
    with pytest.raises(InvalidQuery, match="metric 'f1' is not recorded"):
        comparison.plot(tmp_path / "x.png", y="f1")


def test_plot_without_matplotlib_says_what_to_install(
        sweep: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    comparison = sweep.compare("model@v1", "model@v2")
    with pytest.raises(MissingDependency, match=r"pip install 'lineage\[plots\]'"):
        comparison.plot(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    home = Path(sweep.path)
    sweep.close()
    code = main(["--store", str(home), "compare", "model@v1", "model@v2", "--plot",
                 str(tmp_path / "x.png")])
    assert code == 1


def test_lineage_runs_shows_params_as_columns(sweep: Store,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    home = Path(sweep.path)
    sweep.close()
    capsys.readouterr()
    assert main(["--store", str(home), "runs", "--op", "train"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["RUN", "STARTED", "OP", "STATUS", "DURATION", "C", "note",
                                "solver", "sensitivity", "auc"]
    assert re.search(r" 1 +- +saga +0\.95 +-$", lines[1])  # the int 1, no note, no auc
    assert re.search(r" 10\.0 +n{11}… +lbfgs +0\.85 +0\.83$", lines[2])
    assert main(["--store", str(home), "runs", "--columns", "label,C,params.solver,"
                 "sensitivity,test_set"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["LABEL", "C", "solver", "sensitivity", "TEST", "SET"]
    assert lines[1].split() == ["other-test", "1", "saga", "0.95", "testset@v2"]
    assert main(["--store", str(home), "runs", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["runs"][1]
    assert row["params"]["C"] == 10.0 and row["test_sets"] == {"auc": "testset@v1",
                                                               "sensitivity": "testset@v1"}


def test_lineage_compare_prints_runs_side_by_side(sweep: Store, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    home = Path(sweep.path)
    sweep.close()
    capsys.readouterr()
    plot = tmp_path / "c.png"
    assert main(["--store", str(home), "compare", "model@v1", "model@v2", "model@v3",
                 "--plot", str(plot), "--y", "auc"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^  C +0\.01 +0\.1 +1\.0$", out, re.MULTILINE)
    assert out.rstrip().endswith(f"plot written to {plot}") and plot.stat().st_size > 0
    assert main(["--store", str(home), "compare", "model@v1", "model@v2", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["plot"] is None and data["params"][0] == {
        "name": "C", "values": [0.01, 0.1], "present": [True, True], "differs": True}
    assert main(["--store", str(home), "compare", "model@v1", "model@v2", "--x", "C"]) == 2
