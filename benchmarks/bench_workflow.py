"""The healthcare workflow end to end: lineage against DVC + git and against MLflow.

The workflow (the one in ``examples/``): a cohort dataset v1.0, a model v1.0 trained on it,
a dataset v1.1 (100 patients removed, 400 added), a model v1.1 trained on it with another
``C``, then the question a reviewer asks: *what changed between model v1.0 and v1.1?*

Each tool does it the way its own documentation shows, as separate commands or scripts (a
fresh process each, as a user runs them), timed end to end:

- **DVC + git** (the "Get started: data versioning" and "data pipelines" guides): ``git
  init``, ``dvc init``; ``dvc add`` of the dataset and a commit; ``dvc stage add`` of the
  training stage (deps: script, dataset, test set; param ``C``; out the model; metrics file)
  and ``dvc repro``, a commit and a tag; the same again for v1.1; then ``dvc diff``, ``dvc
  params diff`` and ``dvc metrics diff`` between the tags;
- **MLflow** (tracking and model registry quick-starts): a training script per version
  logging the dataset (``mlflow.data.from_pandas`` + ``log_input``), params, a metric and
  the model registered as a new version; then the run comparison the UI shows (the two
  registered versions' runs side by side: params, metrics, datasets by digest);
- **lineage**: a training script per version (``store.add`` of the dataset as a version,
  ``store.run`` with the model logged as a version), then ``lineage diff model@v1.0
  model@v1.1``.

All three train the same scikit-learn pipeline (a ColumnTransformer scaling numbers and
one-hot encoding categories, then LogisticRegression) on the same files. Rounds interleave
the three tools, each in a fresh directory. The answers are put side by side in the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
from harness import Context, Row, remove, speed_row

SECTION = "workflow"
TITLE = "The healthcare workflow against DVC + MLflow"
ROWS, REMOVED, ADDED, TEST_ROWS = 5000, 100, 400, 1000
C = {"v1.0": 1.0, "v1.1": 0.5}
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
           "DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}

MODEL_PY = '''
"""The model every tool trains: the same pipeline, the same files."""
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

NUMERIC, CATEGORIES, TARGET = ["age", "bmi", "systolic"], ["sex", "site"], "outcome"


def fit(train: pd.DataFrame, c: float) -> Pipeline:
    prepare = ColumnTransformer([("num", StandardScaler(), NUMERIC),
                                 ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORIES)])
    model = Pipeline([("prepare", prepare), ("classify", LogisticRegression(C=c, max_iter=1000))])
    return model.fit(train[NUMERIC + CATEGORIES], train[TARGET])


def accuracy(model: Pipeline, test: pd.DataFrame) -> float:
    return float(model.score(test[NUMERIC + CATEGORIES], test[TARGET]))
'''

DVC_TRAIN = '''
import json, pickle, yaml
import pandas as pd
from wf_model import accuracy, fit

c = yaml.safe_load(open("params.yaml"))["C"]
model = fit(pd.read_csv("data/cohort.csv"), c)
pickle.dump(model, open("model.pkl", "wb"))
json.dump({"accuracy": accuracy(model, pd.read_csv("data/test.csv"))}, open("metrics.json", "w"))
'''

MLFLOW_TRAIN = '''
import sys
import mlflow, mlflow.data, mlflow.sklearn
import pandas as pd
from wf_model import TARGET, accuracy, fit

version, c = sys.argv[1], float(sys.argv[2])
train, test = pd.read_csv("cohort.csv"), pd.read_csv("test.csv")
mlflow.set_experiment("cohort")
with mlflow.start_run(run_name=f"train {version}"):
    mlflow.log_input(mlflow.data.from_pandas(train, source="cohort.csv", name="cohort",
                                             targets=TARGET), context="training")
    mlflow.log_input(mlflow.data.from_pandas(test, source="test.csv", name="test",
                                             targets=TARGET), context="evaluation")
    mlflow.log_params({"C": c})
    model = fit(train, c)
    mlflow.log_metric("accuracy", accuracy(model, test))
    mlflow.sklearn.log_model(model, name="model", registered_model_name="cohort-model")
'''

MLFLOW_COMPARE = '''
import mlflow
from mlflow import MlflowClient

client = MlflowClient()
versions = sorted(client.search_model_versions("name='cohort-model'"),
                  key=lambda v: int(v.version))
runs = [client.get_run(v.run_id) for v in versions]
print("model versions:", ", ".join(f"{v.name} v{v.version} (run {v.run_id[:8]})"
                                   for v in versions))
keys = sorted(set().union(*(r.data.params for r in runs)))
print("params:")
for key in keys:
    print(f"  {key}: " + " -> ".join(r.data.params.get(key, "-") for r in runs))
print("metrics:")
for key in sorted(set().union(*(r.data.metrics for r in runs))):
    values = [r.data.metrics.get(key) for r in runs]
    print(f"  {key}: " + " -> ".join(f"{v:.4f}" for v in values)
          + f"  (delta {values[-1] - values[0]:+.4f})")
print("datasets:")
for run in runs:
    for item in run.inputs.dataset_inputs:
        context = next((t.value for t in item.tags if t.key == "mlflow.data.context"), "")
        print(f"  run {run.info.run_id[:8]}: {item.dataset.name} ({context}) digest "
              f"{item.dataset.digest}")
'''

LINEAGE_TRAIN = '''
import sys
import lineage
from wf_model import TARGET, accuracy, fit

version, c = sys.argv[1], float(sys.argv[2])
store = lineage.open("store")
store.add("cohort.csv", name="cohort", version=version, kind="dataset", target=TARGET,
          meta={"origin": "synthetic cohort", "biases": "single region"})
store.add("test.csv", name="testset", version="v1", kind="dataset", target=TARGET)
with store.run("train", params={"C": c}) as run:
    train, test = store.load(f"cohort@{version}"), store.load("testset@v1", as_name="test")
    model = fit(train, c)
    run.log_metric("accuracy", accuracy(model, test), dataset="testset@v1")
    run.log_model(model, name="model", version=version)
store.close()
'''


def run(ctx: Context) -> list[Row]:
    """The workflow's end-to-end time per tool, and the answers in the report."""
    data = _datasets(ctx)
    dvc, has_mlflow = ctx.tool("dvc"), ctx.has("mlflow")
    if shutil.which("git") is None:
        dvc = None
    times: dict[str, list[float]] = {"lineage": [], "dvc": [], "mlflow": []}
    answers: dict[str, str] = {}
    ctx.log(f"the healthcare workflow, {ctx.rounds} rounds: lineage"
            + (", DVC + git" if dvc else "") + (", MLflow" if has_mlflow else ""))
    for index in range(ctx.rounds):
        seconds, answers["lineage"] = _lineage(ctx, data)
        times["lineage"].append(seconds)
        if dvc:
            seconds, answers["dvc"] = _dvc(ctx, data, dvc)
            times["dvc"].append(seconds)
        if has_mlflow:
            seconds, answers["mlflow"] = _mlflow(ctx, data)
            times["mlflow"].append(seconds)
        ctx.log(f"round {index + 1}: " + ", ".join(
            f"{tool} {values[-1]:.1f} s" for tool, values in times.items() if values))
    rows = [speed_row(SECTION, "healthcare workflow end to end (v1.0, v1.1, what changed?)",
                      times["lineage"], times["dvc"] or None, "DVC + git", ref_kind="peer"),
            speed_row(SECTION, "  same, vs MLflow tracking + registry", times["lineage"],
                      times["mlflow"] or None, "MLflow", ref_kind="peer")]
    if not dvc:
        ctx.note("workflow: dvc (or git) is not installed: no DVC figures")
    if not has_mlflow:
        ctx.note("workflow: mlflow is not installed: no MLflow figures")
    ctx.note(f"workflow: {ROWS}-row cohort v1.0; v1.1 removes {REMOVED} patients and adds "
             f"{ADDED}; one {TEST_ROWS}-row test set; C {C['v1.0']} -> {C['v1.1']}; every "
             "command and script a fresh process (interpreter start and imports included, as "
             "a user runs them); each tool's answer to 'what changed?' is in the report")
    ctx.report("What changed between model v1.0 and v1.1? The answer each tool gives",
               _answers(answers))
    return rows


# -- inputs -------------------------------------------------------------------------------------


def _cohort(rng: np.random.Generator, rows: int, first_id: int) -> Any:
    import pandas as pd

    age = rng.integers(18, 90, rows)
    bmi = rng.normal(27, 4.5, rows).round(1)
    systolic = rng.normal(128, 15, rows).round()
    risk = 0.04 * (age - 50) + 0.15 * (bmi - 27) + 0.03 * (systolic - 128)
    return pd.DataFrame({
        "patient_id": np.arange(first_id, first_id + rows),
        "age": age, "bmi": bmi, "systolic": systolic,
        "sex": rng.choice(["F", "M"], rows), "site": rng.choice(["north", "south", "east"], rows),
        "outcome": (risk + rng.normal(0, 1, rows) > 0.3).astype(int),
    })


def _datasets(ctx: Context) -> dict[str, Path]:
    import pandas as pd

    root = ctx.scratch("workflow-data")
    rng = np.random.default_rng(11)
    v10 = _cohort(rng, ROWS, 0)
    kept = v10.drop(index=rng.choice(ROWS, REMOVED, replace=False))
    v11 = pd.concat([kept, _cohort(rng, ADDED, ROWS)], ignore_index=True)
    test = _cohort(rng, TEST_ROWS, 10 * ROWS)
    paths = {"v1.0": root / "cohort-v1.0.csv", "v1.1": root / "cohort-v1.1.csv",
             "test": root / "test.csv", "model": root / "wf_model.py"}
    v10.to_csv(paths["v1.0"], index=False)
    v11.to_csv(paths["v1.1"], index=False)
    test.to_csv(paths["test"], index=False)
    paths["model"].write_text(MODEL_PY)
    return paths


def _sh(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV, **(env or {})})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout)[-1500:]}")
    return done.stdout


def _python(script: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script)]


# -- the three tools ----------------------------------------------------------------------------


def _lineage(ctx: Context, data: dict[str, Path]) -> tuple[float, str]:
    work = ctx.scratch("workflow-lineage")
    shutil.copy(data["model"], work)
    shutil.copy(data["test"], work / "test.csv")
    lineage_cli = [sys.executable, "-m", "lineage"]
    start = time.perf_counter()
    for version in ("v1.0", "v1.1"):
        shutil.copy(data[version], work / "cohort.csv")
        _sh([*_python(LINEAGE_TRAIN), version, str(C[version])], work)
    answer = _sh([*lineage_cli, "diff", "model@v1.0", "model@v1.1"], work,
                 {"LINEAGE_HOME": str(work / "store")})
    seconds = time.perf_counter() - start
    remove(work)
    return seconds, answer


def _dvc(ctx: Context, data: dict[str, Path], dvc: str) -> tuple[float, str]:
    work = ctx.scratch("workflow-dvc")
    (work / "data").mkdir()
    shutil.copy(data["model"], work)
    shutil.copy(data["test"], work / "data" / "test.csv")
    (work / "train.py").write_text(DVC_TRAIN)
    start = time.perf_counter()
    _sh(["git", "init", "-q"], work)
    _sh([dvc, "init", "-q"], work)
    _sh(["git", "commit", "-qm", "init dvc"], work)
    _sh([dvc, "add", "-q", "data/test.csv"], work)
    for version in ("v1.0", "v1.1"):
        shutil.copy(data[version], work / "data" / "cohort.csv")
        (work / "params.yaml").write_text(f"C: {C[version]}\n")
        _sh([dvc, "add", "-q", "data/cohort.csv"], work)
        _sh(["git", "add", "data/cohort.csv.dvc", "data/test.csv.dvc", "data/.gitignore",
             "params.yaml", "train.py", "wf_model.py"], work)
        _sh(["git", "commit", "-qm", f"dataset {version}"], work)
        if version == "v1.0":
            _sh([dvc, "stage", "add", "-q", "-n", "train", "-d", "train.py", "-d", "wf_model.py",
                 "-d", "data/cohort.csv", "-d", "data/test.csv", "-p", "C", "-o", "model.pkl",
                 "-M", "metrics.json", f"{sys.executable} train.py"], work)
        _sh([dvc, "repro", "-q"], work)
        _sh(["git", "add", "dvc.yaml", "dvc.lock", ".gitignore", "metrics.json"], work)
        _sh(["git", "commit", "-qm", f"model {version}"], work)
        _sh(["git", "tag", version], work)
    parts = []
    for what in (["diff"], ["params", "diff"], ["metrics", "diff"]):
        output = _sh([dvc, *what, "v1.0", "v1.1"], work)
        parts.append(f"$ dvc {' '.join(what)} v1.0 v1.1\n{output.rstrip()}")
    seconds = time.perf_counter() - start
    remove(work)
    return seconds, "\n\n".join(parts)


def _mlflow(ctx: Context, data: dict[str, Path]) -> tuple[float, str]:
    from peers import GUARD, MLFLOW_ENV

    work = ctx.scratch("workflow-mlflow")
    guard = work / "guard"
    guard.mkdir()
    (guard / "sitecustomize.py").write_text(GUARD)
    shutil.copy(data["model"], work)
    shutil.copy(data["test"], work / "test.csv")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env.update(MLFLOW_ENV, PYTHONPATH=f"{guard}{os.pathsep}{work}",
               LINEAGE_BENCH_NET_LOG=str(work / "network.log"))
    start = time.perf_counter()
    for version in ("v1.0", "v1.1"):
        shutil.copy(data[version], work / "cohort.csv")
        _run_env([*_python(MLFLOW_TRAIN), version, str(C[version])], work, env)
    answer = _run_env(_python(MLFLOW_COMPARE), work, env)
    seconds = time.perf_counter() - start
    if (work / "network.log").exists():
        ctx.note("workflow: MLflow tried to reach the network (refused): "
                 + (work / "network.log").read_text()[:300])
    remove(work)
    return seconds, answer


def _run_env(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{args[-3:]} failed: {done.stderr[-1500:]}")
    return done.stdout


def _answers(answers: dict[str, str]) -> str:
    blocks = []
    titles = {"lineage": "lineage: `lineage diff model@v1.0 model@v1.1`",
              "dvc": "DVC: `dvc diff`, `dvc params diff`, `dvc metrics diff` between the tags",
              "mlflow": "MLflow: the two registered versions' runs compared (params, metrics, "
                        "datasets), as the UI's run comparison shows them"}
    for tool in ("lineage", "dvc", "mlflow"):
        if tool in answers:
            blocks.append(f"### {titles[tool]}\n\n```\n{answers[tool].rstrip()}\n```")
    blocks.append(
        "What each answer holds: lineage names the causes and their sizes (which dataset "
        "version, rows added and removed, class balance, the hyperparameter, the code and "
        "environment if they changed) and the metric delta, walking from the models; DVC "
        "lists the files whose hashes changed, the params and the metrics, with no link from "
        "a changed file to what is in it; MLflow lists params, metrics and each run's "
        "dataset digests, which differ but say nothing of how.")
    return "\n\n".join(blocks)
