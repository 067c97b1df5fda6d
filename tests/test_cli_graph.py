"""The graph verbs of the command line: diff, dag, ancestors, descendants, runs filters.

Run in-process through ``main([...])`` on a real LMDB store recorded with the tracking API
(two cohorts, two models with a changed ``C``, each evaluated on one fixed test set); a few
tests run ``python -m lineage`` to pin exit codes as a shell sees them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli.app import main
from lineage.cli.graph import dot_text, metric_filter, param_filter

TARGET = "outcome"
FEATURES = [f"feature_{i}" for i in range(9)]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _cohort(rng: np.random.Generator, rows: int, start: int) -> pd.DataFrame:
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))) * 1000.123456, columns=FEATURES)
    frame.insert(0, "pid", range(start, start + rows))
    frame[TARGET] = (frame["feature_0"] > 0).astype(int)  # the label is the last column
    return frame


def _train(run: Any, version: str, c: float, frame: pd.DataFrame, test: pd.DataFrame) -> None:
    run.log_input(f"cohort@{version}", name="cohort")
    model = LogisticRegression(C=c, max_iter=500).fit(frame[FEATURES], frame[TARGET])
    run.log_model(model, name="model", version=version)
    run.log_evaluation(test[TARGET], model.predict(test[FEATURES]), dataset="testset@v1",
                       positive_label=1)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with testset@v1, cohort@v1.0/v1.1 (-4 rows, +6 rows) and model@v1.0/v1.1."""
    root = tmp_path_factory.mktemp("graph")
    rng = np.random.default_rng(7)
    test, old = _cohort(rng, 30, 1000), _cohort(rng, 40, 0)
    new = pd.concat([old.drop(index=[3, 9, 17, 30]), _cohort(rng, 6, 500)], ignore_index=True)
    paths = {}
    for name, frame in (("testset", test), ("v1.0", old), ("v1.1", new)):
        paths[name] = root / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    with lineage.open(root / "store") as store:
        store.add(paths["testset"], name="testset", version="v1", kind="dataset", target=TARGET)
        for version, c, frame in (("v1.0", 1.0, old), ("v1.1", 0.3, new)):
            store.add(paths[version], name="cohort", version=version, kind="dataset",
                      target=TARGET)
            with store.run("train_model", params={"C": c, "solver": "lbfgs"}) as run:
                _train(run, version, c, frame, test)
    return root / "store"


class Cli:
    """Runs ``main`` against one store and captures what it printed."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.capsys = home, capsys
        capsys.readouterr()

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        code = main(["--store", str(self.home), *argv])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str) -> str:
        code, out, err = self(*argv)
        assert (code, err) == (0, "")
        return out

    def json(self, *argv: str) -> Any:
        return json.loads(self.ok(*argv, "--json"))


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(home, capsys)


def _digest(home: Path, revision: str) -> str:
    with lineage.open(home) as store:
        return store.resolve(revision).digest


def _run_of(home: Path, version: str) -> str:
    with lineage.open(home) as store:
        return store.runs(produced=f"model@{version}")[0].digest


# -- diff ------------------------------------------------------------------------------------


def test_diff_text_names_causes_metrics_with_test_set_and_exits_0(cli: Cli):
    out = cli.ok("diff", "model@v1.0", "model@v1.1")
    assert "\x1b[" not in out  # not a terminal: no colour
    assert out.startswith("lineage diff model@v1.0 (")
    assert "changed: data, hyperparameters" in out
    assert "param C: 1.0 → 0.3" in out  # a float param stays visibly a float
    assert "rows: 40 → 42: +6 added, −4 removed" in out
    summary, details = out.split("\nDetails\n")
    # every metric was measured on one test set: one table, captioned with it
    assert "metrics on testset@v1 (n=30, positives=" in summary
    header = next(line for line in summary.splitlines() if line.strip().startswith("metric "))
    assert header.split() == ["metric", "model@v1.0", "model@v1.1", "change"]
    assert re.search(r"^\s+sensitivity\s+\d\.\d+\s+\d\.\d+\s+(unchanged|[+−]\d)", summary,
                     re.MULTILINE)
    assert "cohort@v1.0 → cohort@v1.1: rows +6 −4, class balance" in summary
    assert "hyperparameters: C 1.0 → 0.3, solver" not in summary  # only what changed
    assert "Step model ← train_model" in details


def test_diff_text_shows_few_compact_example_rows_target_first(cli: Cli):
    out = cli.ok("diff", "cohort@v1.0", "cohort@v1.1")
    added = [line.strip() for line in out.splitlines() if "added e.g." in line]
    removed = [line.strip() for line in out.splitlines() if "removed e.g." in line]
    assert len(added) == 3 and len(removed) == 3
    for line in added + removed:
        cells = re.findall(r"(\w+)=(\S+?)(?:,|\s|$)", line.split("e.g. ", 1)[1])
        assert 2 <= len(cells) <= 6
        assert cells[0][0] == TARGET  # the label column first though it is stored last
        assert cells[1][0] == "pid"
        shown = len(cells)
        assert line.endswith(f"(… {len(FEATURES) + 2 - shown} more columns)")
        for name, value in cells:
            if name.startswith("feature_"):
                assert len(value.lstrip("-").replace(".", "")) <= 5  # rounded, not 1000.123456…
    assert "… 3 more rows added" in out and "… 1 more row removed" in out
    assert "class balance of outcome: 0: 25 (62.5%) → 26 (61.9%)" in out


def test_diff_json_keeps_every_example_with_every_column(cli: Cli):
    data = cli.json("diff", "cohort@v1.0", "cohort@v1.1")
    assert data["schema_version"] == 1 and data["empty"] is False
    (artifact,) = data["artifacts"]
    dataset = artifact["dataset"]
    assert (dataset["rows_added"], dataset["rows_removed"]) == (6, 4)
    assert len(dataset["examples_added"]) == 5 and len(dataset["examples_removed"]) == 4
    assert all(len(row) == len(FEATURES) + 2 for row in dataset["examples_added"])
    assert sorted(r["pid"] for r in dataset["examples_removed"]) == [3, 9, 17, 30]
    assert "target_column" not in dataset  # render-only; the JSON schema is unchanged


def test_diff_markdown_is_a_report_with_a_metrics_table(cli: Cli):
    out = cli.ok("diff", "model@v1.0", "model@v1.1", "--markdown")
    assert out.startswith("## lineage diff model@v1.0")
    assert "Metrics on testset@v1 (n=30, positives=" in out  # one test set: named once
    assert "| metric | model@v1.0 | model@v1.1 | change |" in out
    assert "\x1b[" not in out
    examples = [line for line in out.splitlines() if "added e.g." in line]
    assert len(examples) == 3
    assert all(line.startswith("  - added e.g. outcome=") for line in examples)  # nested items


def test_diff_colour_is_forced_on_and_off(cli: Cli):
    coloured = cli.ok("diff", "model@v1.0", "model@v1.1", "--color")
    plain = cli.ok("diff", "model@v1.0", "model@v1.1", "--no-color")
    assert "\x1b[1m" in coloured and "\x1b[" not in plain
    assert ANSI.sub("", coloured) == plain


def test_diff_of_identical_revisions_exits_0_and_says_so(cli: Cli, home: Path):
    out = cli.ok("diff", "model@v1.1", _digest(home, "model@v1.1")[:12])
    assert "no differences" in out
    assert cli.json("diff", "model@v1.1", "model@v1.1")["empty"] is True


def test_diff_unknown_revision_is_one_line_and_exit_1(cli: Cli):
    code, out, err = cli("diff", "model@v1.0", "model@v9")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith("lineage: error: ")
    assert "model@v9" in err or "v9" in err


def test_diff_artifact_against_run_is_one_line(cli: Cli, home: Path):
    code, _out, err = cli("diff", "model@v1.0", _run_of(home, "v1.0"))
    assert code == 1 and err.count("\n") == 1 and "two artifacts" in err


def test_diff_json_and_markdown_together_is_a_usage_error(cli: Cli):
    code, out, err = cli("diff", "model@v1.0", "model@v1.1", "--json", "--markdown")
    assert (code, out) == (2, "") and "not both" in err


# -- dag --------------------------------------------------------------------------------------


def test_dag_is_a_tree_of_runs_and_artifacts(cli: Cli, home: Path):
    lines = cli.ok("dag", "model@v1.1").splitlines()
    assert lines[0] == f"model@v1.1  [model]  {_digest(home, 'model@v1.1')[:12]}"
    assert lines[1] == f"└── run train_model  [ok]  {_run_of(home, 'v1.1')[:12]}  → model"
    below = "\n".join(lines[2:])
    assert f"cohort: cohort@v1.1  [dataset]  {_digest(home, 'cohort@v1.1')[:12]}" in below
    assert "testset: testset@v1  [dataset]" in below
    assert "[environment]" in below
    assert all(line.startswith(("    ├── ", "    └── ")) for line in lines[2:])


def test_dag_depth_limits_the_tree(cli: Cli):
    lines = cli.ok("dag", "model@v1.1", "--depth", "1").splitlines()
    assert len(lines) == 2 and "run train_model" in lines[1]


def test_dag_json_lists_nodes_and_edges(cli: Cli, home: Path):
    data = cli.json("dag", "model@v1.1")
    assert data["root"] == _digest(home, "model@v1.1")
    kinds = sorted(n["kind"] for n in data["nodes"])
    assert kinds == ["dataset", "dataset", "environment", "model", "run"]
    run = next(n for n in data["nodes"] if n["kind"] == "run")
    assert (run["op"], run["status"], run["version"]) == ("train_model", "ok", None)
    generated = [e for e in data["edges"] if e["type"] == "generated"]
    assert generated == [{"source": run["digest"], "target": data["root"],
                          "type": "generated", "roles": ["model"]}]


def test_dag_dot_is_graphviz_of_the_same_graph(cli: Cli, home: Path):
    out = cli.ok("dag", "model@v1.1", "--dot")
    assert out.startswith("digraph lineage {") and out.rstrip().endswith("}")
    data = cli.json("dag", "model@v1.1")
    for node in data["nodes"]:
        assert f'"{node["digest"]}" [label=' in out
    arrows = re.findall(r'"([0-9a-f]{32})" -> "([0-9a-f]{32})"', out)
    assert sorted(arrows) == sorted((e["source"], e["target"]) for e in data["edges"])
    assert 'label="model@v1.1\\nmodel\\n' in out and "penwidth=2" in out


def test_dot_escapes_quotes_backslashes_and_newlines():
    node = {"digest": "a" * 32, "kind": "dataset", "name": 'say "hi"\\', "version": "v1\nx",
            "op": None, "status": None}
    out = dot_text({"root": "a" * 32, "nodes": [node], "edges": []})
    assert 'label="say \\"hi\\"\\\\@v1 x\\ndataset\\naaaaaaaaaaaa"' in out


def test_dag_json_and_dot_together_is_a_usage_error(cli: Cli):
    assert cli("dag", "model@v1.1", "--dot", "--json")[0] == 2


# -- ancestors / descendants ------------------------------------------------------------------


def test_ancestors_json_nearest_first_with_kind_and_depth(cli: Cli, home: Path):
    data = cli.json("ancestors", "model@v1.1")
    assert data["revision"]["version"] == "v1.1" and data["revision"]["kind"] == "model"
    records = data["records"]
    assert records[0] == {"digest": _run_of(home, "v1.1"), "kind": "run", "name": "train_model",
                          "version": None, "op": "train_model", "status": "ok"}
    assert {(r["name"], r["version"]) for r in records if r["kind"] == "dataset"} == {
        ("cohort", "v1.1"), ("testset", "v1")}
    only = cli.json("ancestors", "model@v1.1", "--kind", "dataset", "--kind", "environment")
    assert sorted(r["kind"] for r in only["records"]) == ["dataset", "dataset", "environment"]
    assert [r["kind"] for r in cli.json("ancestors", "model@v1.1", "--depth", "1")["records"]
            ] == ["run"]


def test_descendants_of_the_test_set_are_both_models(cli: Cli):
    data = cli.json("descendants", "testset@v1", "--kind", "model")
    assert sorted(r["version"] for r in data["records"]) == ["v1.0", "v1.1"]
    text = cli.ok("descendants", "cohort@v1.0").splitlines()
    assert text[0].split() == ["DIGEST", "KIND", "NAME"]
    assert any("model@v1.0" in line for line in text)
    assert not any("model@v1.1" in line for line in text)


def test_ancestors_of_a_source_says_nothing_recorded(cli: Cli):
    assert cli.ok("ancestors", "testset@v1").strip() == "nothing recorded upstream of testset@v1"
    assert cli.json("ancestors", "testset@v1")["records"] == []


def test_ancestors_unknown_revision_is_one_line(cli: Cli):
    code, out, err = cli("ancestors", "nothing@v1")
    assert (code, out) == (1, "") and err.count("\n") == 1


# -- runs filters -------------------------------------------------------------------------------


def _runs(cli: Cli, *argv: str) -> list[str]:
    return [r["digest"] for r in cli.json("runs", *argv)["runs"]]


def test_runs_filter_by_used_produced_params_and_metrics(cli: Cli, home: Path):
    old, new = _run_of(home, "v1.0"), _run_of(home, "v1.1")
    assert _runs(cli) == [new, old]
    assert _runs(cli, "--used", "cohort@v1.0") == [old]
    assert _runs(cli, "--used", "testset@v1") == [new, old]
    assert _runs(cli, "--produced", "model@v1.1") == [new]
    assert _runs(cli, "--param", "C=0.3") == [new]
    assert _runs(cli, "--param", "C=1") == [old]  # 1 matches the float 1.0
    assert _runs(cli, "--param", "C<1") == [new]
    assert _runs(cli, "--param", "C>=0.3", "--param", "solver=lbfgs") == [new, old]
    assert _runs(cli, "--param", "solver!=lbfgs") == []
    with lineage.open(home) as store:
        runs = {r.digest: r for r in store.runs()}
    spec = runs[new].metrics["specificity"]
    assert _runs(cli, "--metric", f"specificity>={spec}") == [
        d for d in (new, old) if runs[d].metrics["specificity"] >= spec]
    assert _runs(cli, "--metric", f"specificity<{spec}") == [
        d for d in (new, old) if runs[d].metrics["specificity"] < spec]
    assert _runs(cli, "--metric", "sensitivity>1") == []
    assert _runs(cli, "--metric", "accuracy>0", "--used", "cohort@v1.1") == [new]


def test_runs_filter_by_start_time(cli: Cli, home: Path):
    today = dt.date.today()
    everything = _runs(cli)
    assert _runs(cli, "--since", today.isoformat()) == everything
    assert _runs(cli, "--until", today.isoformat()) == everything  # a date: the whole day
    assert _runs(cli, "--until", (today - dt.timedelta(days=1)).isoformat()) == []
    assert _runs(cli, "--since", (today + dt.timedelta(days=1)).isoformat()) == []
    now = dt.datetime.now(dt.UTC)
    assert _runs(cli, "--since", (now + dt.timedelta(hours=1)).isoformat()) == []
    assert _runs(cli, "--until", (now + dt.timedelta(hours=1)).isoformat()) == everything


def test_runs_bad_filters_are_usage_errors(cli: Cli):
    for bad in (("--metric", "auc~0.9"), ("--metric", "auc>high"), ("--metric", ">0.9"),
                ("--param", "C<low"), ("--param", "C"), ("--since", "last tuesday")):
        code, out, err = cli("runs", *bad)
        assert (code, out) == (2, ""), bad
        assert "Traceback" not in err


def test_runs_unknown_used_revision_is_one_line(cli: Cli):
    code, _out, err = cli("runs", "--used", "cohort@v7")
    assert code == 1 and err.count("\n") == 1


def test_condition_parsing():
    assert metric_filter("sensitivity>0.9") == ("sensitivity", (">", 0.9))
    assert metric_filter("auc >= 0.75") == ("auc", (">=", 0.75))
    assert metric_filter("loss==0") == ("loss", ("==", 0.0))
    assert metric_filter("loss=0") == ("loss", ("==", 0.0))
    assert metric_filter("f1!=1") == ("f1", ("!=", 1.0))
    assert param_filter("C=0.5") == ("C", ("==", 0.5))
    assert param_filter("solver=lbfgs") == ("solver", ("==", "lbfgs"))
    assert param_filter("note=a>b") == ("note", ("==", "a>b"))  # the first operator splits
    assert param_filter("layers=[64, 32]") == ("layers", ("==", [64, 32]))
    assert param_filter("flag=true") == ("flag", ("==", True))
    assert param_filter("C<=1") == ("C", ("<=", 1))
    for bad in ("C", "=1", "auc~1"):
        with pytest.raises(argparse.ArgumentTypeError):
            param_filter(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="number"):
        metric_filter("auc>nan")


# -- python -m lineage ----------------------------------------------------------------------------


def _python_m(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_HOME": str(home)}
    env.pop("LINEAGE_DEBUG", None)
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "lineage", *argv], env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_python_m_diff_exits_0_when_different_and_1_on_a_bad_revision(home: Path):
    different = _python_m(home, "diff", "model@v1.0", "model@v1.1")
    assert different.returncode == 0 and different.stderr == ""
    assert "changed: data, hyperparameters" in different.stdout
    assert "\x1b[" not in different.stdout  # a pipe is not a terminal
    same = _python_m(home, "diff", "cohort@v1.0", "cohort@v1.0", "--json")
    assert same.returncode == 0 and json.loads(same.stdout)["empty"] is True
    bad = _python_m(home, "diff", "model@v1.0", "no-such-model")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.startswith("lineage: error: ") and bad.stderr.count("\n") == 1
    assert "Traceback" not in bad.stderr


def test_python_m_dag_dot(home: Path):
    done = _python_m(home, "dag", "model@v1.0", "--dot")
    assert done.returncode == 0 and done.stdout.startswith("digraph lineage {")


def test_every_public_name_resolves_including_lineage_diff():
    for name in lineage.__all__:
        assert getattr(lineage, name) is not None, name
    from lineage.diff.model import LineageDiff
    from lineage.tracking.runs import RunContext

    assert lineage.LineageDiff is LineageDiff and lineage.RunContext is RunContext
