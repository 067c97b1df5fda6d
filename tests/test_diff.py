"""The semantic lineage diff: what changed between two models or datasets, and why."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.core.records import Artifact, Run
from lineage.diff.model import Derivation, LineageDiff, ValueChange
from lineage.errors import AmbiguousRevision, InvalidQuery, RevisionNotFound
from lineage.storage import schema
from lineage.storage.schema import index_record
from lineage.store import Store

T0 = 1_700_000_000.0
FEATURES = ["age", "x1", "x2"]


def record_run(store: Store, op: str, *, inputs: dict[str, Artifact] | None = None,
               outputs: dict[str, Artifact] | None = None, started: float = T0,
               **fields: Any) -> Run:
    """Write a run record directly, as the tracking API would."""
    run = Run(op=op, id=uuid.uuid4().hex,
              inputs={k: a.raw_digest for k, a in (inputs or {}).items()},
              outputs={k: a.raw_digest for k, a in (outputs or {}).items()},
              started=started, ended=started + 1, **fields)
    store._write(lambda txn: index_record(txn, run))
    return run


def patients(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    outcome = (x1 + 0.5 * x2 + rng.normal(scale=0.5, size=n) > 0.3).astype("int64")
    return pd.DataFrame({"pid": np.arange(seed * 10_000, seed * 10_000 + n),
                         "age": rng.integers(20, 90, n), "x1": x1, "x2": x2,
                         "outcome": outcome})


def sensitivity(truth: pd.Series, predicted: np.ndarray) -> float:
    positives = truth.to_numpy() == 1
    return float((predicted[positives] == 1).sum() / positives.sum())


def train(store: Store, version: str, C: float, testset: str) -> float:
    """Train on dataset@version, log model@version and its evaluation; return sensitivity."""
    with store.run("train", params={"C": C}) as run:
        data = store.load(f"dataset@{version}")
        model = LogisticRegression(C=C).fit(data[FEATURES], data["outcome"])
        run.log_model(model, name="model", version=version)
        test = store.load(testset)
        predicted = model.predict(test[FEATURES])
        run.log_evaluation(test["outcome"], predicted, dataset=testset)
    return sensitivity(test["outcome"], predicted)


@pytest.fixture
def healthcare(store: Store) -> dict[str, Any]:
    """dataset v1.0 -> v1.1 (12 rows removed, 40 added); C 1.0 -> 0.5; one test set."""
    base = patients(300, 1)
    store.add(base, name="dataset", version="v1.0", target="outcome")
    store.add(pd.concat([base.iloc[12:], patients(40, 3)], ignore_index=True),
              name="dataset", version="v1.1", target="outcome")
    test = patients(100, 2)
    store.add(test, name="testset", version="v1", target="outcome")
    old = train(store, "v1.0", 1.0, "testset@v1")
    new = train(store, "v1.1", 0.5, "testset@v1")
    return {"old": old, "new": new, "positives": int(test["outcome"].sum())}


def test_diff_of_identical_revisions_is_empty(store: Store, healthcare: dict[str, Any]) -> None:
    d = store.diff("model@v1.1", "model")
    assert d.is_empty and not d
    assert d.to_dict()["empty"] is True
    assert "no differences" in str(d)


def test_healthcare_diff_answers_what_changed(store: Store, healthcare: dict[str, Any]) -> None:
    d = store.diff("model@v1.0", "model@v1.1")
    assert d.summary.causes == ("data", "hyperparameters")
    assert d.summary.evaluation_same is True
    (step,) = d.steps
    assert step.op == "train"
    assert step.params == (ValueChange("C", 1.0, 0.5),)
    data = next(a for a in d.artifacts if a.new.label == "dataset@v1.1")
    assert data.old.label == "dataset@v1.0" and data.cause == "data"
    assert data.dataset is not None
    assert (data.dataset.rows_old, data.dataset.rows_new) == (300, 328)
    assert (data.dataset.rows_added, data.dataset.rows_removed) == (40, 12)
    assert [r["pid"] for r in data.dataset.examples_removed] == [10_000 + i for i in range(5)]
    assert [r["pid"] for r in data.dataset.examples_added] == [30_000 + i for i in range(5)]
    assert data.dataset.class_distribution  # 12 out, 40 in: the balance moved
    model = next(a for a in d.artifacts if a.path == "model")
    assert model.model is not None and model.model.params == (ValueChange("C", 1.0, 0.5),)
    metric = next(m for m in d.metrics if m.name == "sensitivity")
    assert metric.old == pytest.approx(healthcare["old"])
    assert metric.new == pytest.approx(healthcare["new"])
    assert metric.delta == pytest.approx(healthcare["new"] - healthcare["old"])
    assert metric.dataset_old == metric.dataset_new and metric.dataset_new is not None
    assert metric.dataset_new.label == "testset@v1"
    assert metric.population_new is not None
    assert metric.population_new["n"] == 100
    assert metric.population_new["positives"] == healthcare["positives"]


def test_diff_is_antisymmetric(store: Store, healthcare: dict[str, Any]) -> None:
    forward = store.diff("model@v1.0", "model@v1.1")
    backward = store.diff("model@v1.1", "model@v1.0")
    assert backward == forward.reversed()
    assert backward.reversed() == forward
    data_f = next(a.dataset for a in forward.artifacts if a.dataset is not None)
    data_b = next(a.dataset for a in backward.artifacts if a.dataset is not None)
    assert (data_b.rows_added, data_b.rows_removed) == (data_f.rows_removed, data_f.rows_added)
    assert data_b.examples_added == data_f.examples_removed
    for f, b in zip(forward.metrics, backward.metrics, strict=True):
        assert (b.old, b.new) == (f.new, f.old)
        assert b.delta == -f.delta  # type: ignore[operator]


def test_another_test_set_is_named_as_the_evaluation_setup(store: Store) -> None:
    store.add(patients(200, 1), name="dataset", version="v1.0", target="outcome")
    store.add(patients(100, 2), name="testset", version="v1", target="outcome")
    store.add(patients(150, 4), name="testset", version="v2", target="outcome")
    train(store, "v1.0", 1.0, "testset@v1")
    with store.run("train", params={"C": 1.0}) as run:  # same data and C: only the test set
        data = store.load("dataset@v1.0")
        model = LogisticRegression(C=1.0).fit(data[FEATURES], data["outcome"])
        run.log_model(model, name="model", version="v1.1")
        test = store.load("testset@v2")
        run.log_evaluation(test["outcome"], model.predict(test[FEATURES]), dataset="testset@v2")
    assert store.diff("model@v1.0", "model@v1.1").is_empty  # same data, same C: same model
    d = store.diff("evaluation@v1", "evaluation@v2")
    assert d.summary.causes == ("evaluation set-up",)
    assert d.summary.evaluation_same is False
    metric = next(m for m in d.metrics if m.name == "sensitivity")
    assert metric.same_dataset is False
    assert (metric.dataset_old.label, metric.dataset_new.label) == ("testset@v1", "testset@v2")
    assert metric.population_new is not None and metric.population_new["n"] == 150
    text = str(d)
    assert "different test sets" in text and "testset@v2 (n=150" in text
    # metrics on different test sets are never put in one table under one test set
    assert "metrics on " not in text
    assert ("| step | metric | old | new | delta | measured on (old) | measured on (new) |"
            in d.to_markdown())


def test_a_metric_without_its_test_set_says_so(store: Store) -> None:
    model_a = store.add(b"a", name="model", version="v1", kind="model")
    model_b = store.add(b"b", name="model", version="v2", kind="model")
    record_run(store, "fit", outputs={"model": model_a}, metrics={"sensitivity": 0.8})
    record_run(store, "fit", outputs={"model": model_b}, metrics={"sensitivity": 0.9},
               started=T0 + 1)
    d = store.diff("model@v1", "model@v2")
    (metric,) = d.metrics
    assert metric.same_dataset is None and d.summary.evaluation_same is None
    assert "sensitivity 0.8 → 0.9 (+0.1); test set not recorded" in str(d)
    assert "population unknown" in d.to_markdown()
    assert d.summary.causes == ("nondeterminism",)  # nothing recorded explains the change


def put(store: Store, record: Artifact) -> Artifact:
    """Write an artifact record directly (code and environment records, as tracking does)."""
    store._write(lambda txn: index_record(txn, record))
    return record


def test_code_and_environment_changes_are_causes(store: Store) -> None:
    packages = ({"numpy": "1.26.0", "pandas": "2.1"},
                {"numpy": "2.0.0", "pandas": "2.1", "scipy": "1.13"})
    sources = ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n")
    made = []
    for i in (0, 1):
        code = put(store, Artifact(kind="code", summary={"qualname": "f", "module": "m",
                                                          "source": sources[i]}))
        env = put(store, Artifact(kind="environment", summary={
            "python": "3.11.4", "platform": "Linux", "packages": packages[i], "git": None}))
        out = put(store, Artifact(kind="value", summary={"i": i}, name="out"))
        made.append(record_run(store, "f", outputs={"return": out}, code=code.raw_digest,
                               environment=env.raw_digest, started=T0 + i))
    d = store.diff(made[0], made[1])
    assert d.summary.causes == ("code", "environment")
    (step,) = d.steps
    assert step.code is not None
    assert "-    return x + 1\n+    return x + 2" in step.code.unified
    assert step.environment is not None
    changed = {c.key: (c.old, c.new, c.status) for c in step.environment.packages}
    assert changed == {"numpy": ("1.26.0", "2.0.0", "changed"),
                       "scipy": (None, "1.13", "added")}
    assert step.environment.python is None
    assert "+    return x + 2" in str(d)


def test_same_inputs_with_different_outputs_is_nondeterminism(store: Store) -> None:
    data = store.add(b"rows", name="data", kind="dataset")
    outs = [store.add(bytes([i]), name="model", version=f"v{i}", kind="model") for i in (1, 2)]
    for i, out in enumerate(outs):
        record_run(store, "fit", inputs={"data": data}, outputs={"model": out},
                   params={"seed": None}, started=T0 + i)
    d = store.diff("model@v1", "model@v2")
    assert d.summary.causes == ("nondeterminism",)
    assert d.steps[0].nondeterministic and "not deterministic" in str(d)


def test_a_step_on_one_side_only_is_a_pipeline_change(store: Store) -> None:
    data = store.add(b"rows", name="data", kind="dataset")
    trained = store.add(b"m1", name="model", version="v1", kind="model")
    record_run(store, "train", inputs={"data": data}, outputs={"model": trained})
    store.add(b"m2", name="model", version="v2", kind="model")  # added by hand
    d = store.diff("model@v1", "model@v2")
    assert d.summary.causes == ("pipeline",)
    assert [s.path for s in d.steps_removed] == ["model ← train"]
    assert d.steps_added == ()
    assert "Steps only in model@v1" in str(d)
    assert store.diff("model@v2", "model@v1").steps_added == d.steps_removed


def test_a_changed_config_input_is_a_hyperparameter(store: Store) -> None:
    data = store.add(b"rows", name="data", kind="dataset")
    for i, C in enumerate((1.0, 0.1)):
        config = store.add({"model": {"C": C, "penalty": "l2"}}, name="config")
        model = store.add(bytes([i]), name="model", version=f"v{i}", kind="model")
        record_run(store, "train", inputs={"data": data, "config": config},
                   outputs={"model": model}, started=T0 + i)
    d = store.diff("model@v0", "model@v1")
    assert d.summary.causes == ("hyperparameters",)
    config = next(a for a in d.artifacts if a.path == "model ← train ← config")
    assert config.config == (ValueChange("model.C", 1.0, 0.1),)


def test_later_evaluations_of_two_models_are_compared(store: Store) -> None:
    test_v1 = store.add(b"t1", name="testset", version="v1", kind="dataset")
    test_v2 = store.add(b"t2", name="testset", version="v2", kind="dataset")
    for i, (test, value) in enumerate(((test_v1, 0.8), (test_v2, 0.85))):
        model = store.add(bytes([i]), name="model", version=f"v{i}", kind="model")
        record_run(store, "evaluate", inputs={"model": model, "test": test},
                   metrics={"sensitivity": value},
                   metric_datasets={"sensitivity": test.raw_digest}, started=T0 + i)
    d = store.diff("model@v0", "model@v1")
    (metric,) = d.metrics
    assert metric.step == "model → evaluate" and metric.same_dataset is False
    assert "evaluation set-up" in d.summary.causes


def test_cost_grows_with_the_change_not_with_history(store: Store,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def reads_for(history: int, tag: str) -> int:
        current = store.add(f"{tag} raw".encode(), kind="dataset")
        for step in range(history):
            made = store.add(f"{tag} {step}".encode(), kind="dataset")
            record_run(store, f"step{step}", inputs={"data": current}, outputs={"return": made})
            current = made
        for i in (1, 2):
            extra = store.add(f"{tag} extra {i}".encode(), name="extra", kind="dataset")
            model = store.add(f"{tag} model {i}".encode(), name=f"{tag}model", version=f"v{i}",
                              kind="model")
            record_run(store, "train", inputs={"data": current, "extra": extra},
                       outputs={"model": model}, started=T0 + i)
        count = 0
        original = schema.read_record

        def counting(txn: Any, digest: Any) -> Any:
            nonlocal count
            count += 1
            return original(txn, digest)

        with monkeypatch.context() as patch:
            patch.setattr(schema, "read_record", counting)
            d = store.diff(f"{tag}model@v1", f"{tag}model@v2")
        assert d.summary.causes == ("data",)
        return count

    assert reads_for(40, "long") == reads_for(2, "short")


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = lineage.open(tmp_path_factory.mktemp("diffs") / "store")
    yield opened
    opened.close()


@st.composite
def edited_frames(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(3, 20))
    ints = st.integers(-1000, 1000)
    base = pd.DataFrame({
        "id": np.arange(n, dtype="int64"),
        "a": draw(st.lists(ints, min_size=n, max_size=n)),
        "b": draw(st.lists(st.floats(-1e6, 1e6), min_size=n, max_size=n)),
        "c": draw(st.lists(st.text("abxyz", max_size=4), min_size=n, max_size=n)),
    })
    removed = sorted(draw(st.sets(st.integers(0, n - 1), max_size=n - 1)))
    added = draw(st.integers(0, 7))
    extra = pd.DataFrame({
        "id": np.arange(n, n + added, dtype="int64"),
        "a": pd.Series(draw(st.lists(ints, min_size=added, max_size=added)), dtype="int64"),
        "b": pd.Series(draw(st.lists(st.floats(-1e6, 1e6), min_size=added, max_size=added)),
                       dtype="float64"),
        "c": pd.Series(draw(st.lists(st.text("abxyz", max_size=4), min_size=added,
                                     max_size=added)), dtype=base["c"].dtype),
    })
    edited = pd.concat([base.drop(index=removed), extra], ignore_index=True)
    dropped = [c for c in ("b", "c") if draw(st.booleans())]
    edited = edited.drop(columns=dropped)
    retype = draw(st.sampled_from([None, "float64", "str"]))
    if retype is not None:
        edited["a"] = edited["a"].astype(retype)
    new_columns = [f"new{i}" for i in range(draw(st.integers(0, 2)))]
    for name in new_columns:
        edited[name] = np.arange(len(edited), dtype="int64") * 7
    return {"base": base, "edited": edited, "removed": removed, "added": added,
            "dropped": dropped, "retype": retype, "new_columns": new_columns}


@given(case=edited_frames())
def test_random_dataframe_edits_are_reported_exactly(shared_store: Store,
                                                     case: dict[str, Any]) -> None:
    old = shared_store.add(case["base"], kind="dataset")
    new = shared_store.add(case["edited"], kind="dataset")
    d = shared_store.diff(old, new)
    unchanged = not (case["removed"] or case["added"] or case["dropped"] or case["retype"]
                     or case["new_columns"])
    if unchanged:
        assert d.is_empty
        return
    (artifact,) = d.artifacts
    data = artifact.dataset
    assert data is not None
    assert (data.rows_removed, data.rows_added) == (len(case["removed"]), case["added"])
    assert [c.name for c in data.columns_added] == case["new_columns"]
    assert [c.name for c in data.columns_removed] == case["dropped"]
    retyped = [(c.name, c.old_dtype, c.new_dtype) for c in data.columns_retyped]
    assert retyped == ([("a", "int64", str(case["edited"]["a"].dtype))] if case["retype"]
                       else [])
    assert [r["id"] for r in data.examples_removed] == case["removed"][:5]
    assert len(data.examples_added) == min(5, case["added"])
    assert all(r["id"] >= len(case["base"]) for r in data.examples_added)
    assert shared_store.diff(new, old) == d.reversed()


def test_table_files_with_other_columns_are_compared_on_shared_ones(
        store: Store, tmp_path: Path) -> None:
    old = pd.DataFrame({"pid": [1, 2, 3, 4], "age": [50, 60, 70, 80], "smoker": [0, 1, 0, 1]})
    new = pd.DataFrame({"pid": [2, 3, 4, 5], "age": [60, 70, 80, 90], "bmi": [21.5, 30, 25, 27]})
    old.to_csv(tmp_path / "v1.csv", index=False)
    new.to_csv(tmp_path / "v2.csv", index=False)
    store.add(tmp_path / "v1.csv", name="cohort", version="v1", kind="dataset")
    store.add(tmp_path / "v2.csv", name="cohort", version="v2", kind="dataset")
    d = store.diff("cohort@v1", "cohort@v2")
    data = d.artifacts[0].dataset
    assert data is not None
    assert data.rows_compared_on == ("age", "pid")
    assert (data.rows_removed, data.rows_added) == (1, 1)
    assert data.examples_removed == ({"pid": 1, "age": 50, "smoker": 0},)
    assert data.examples_added == ({"pid": 5, "age": 90, "bmi": 27.0},)
    assert [c.name for c in data.columns_added] == ["bmi"]
    assert [c.name for c in data.columns_removed] == ["smoker"]
    assert d.summary.causes == ("data",)


def test_renderers(store: Store, healthcare: dict[str, Any]) -> None:
    store.add(patients(10, 9), name="dataset", version="v1.2", target="outcome",
              meta={"origin": "<script>alert(1)</script>"})
    d = store.diff("dataset@v1.1", "dataset@v1.2")
    payload = json.loads(d.to_json())
    assert payload["schema_version"] == 1 and payload["empty"] is False
    assert payload["a"]["label"] == "dataset@v1.1"
    assert payload["artifacts"][0]["dataset"]["rows_new"] == 10
    page = d._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "\x1b[" not in str(d) and "\x1b[" in d.to_text(color=True)
    assert "\x1b[" not in d.to_text(color=False)
    markdown = store.diff("model@v1.0", "model@v1.1").to_markdown()
    assert "Metrics on testset@v1 (n=100, positives=" in markdown  # one test set: said once
    assert "| metric | model@v1.0 | model@v1.1 | change |" in markdown
    assert re.search(r"^\| sensitivity \| 0\.\d+ \| 0\.\d+ \| ", markdown, re.MULTILINE)
    page = store.diff("model@v1.0", "model@v1.1")._repr_html_()
    assert "<caption>metrics on testset@v1 (n=100" in page


def test_json_of_a_full_diff_is_strict_and_complete(store: Store,
                                                    healthcare: dict[str, Any]) -> None:
    d = store.diff("model@v1.0", "model@v1.1")
    payload = json.loads(d.to_json())
    assert payload["summary"]["causes"] == ["data", "hyperparameters"]
    assert {m["name"] for m in payload["metrics"]} >= {"sensitivity", "specificity"}
    assert all(m["dataset_new"]["label"] == "testset@v1" for m in payload["metrics"])
    assert payload["steps"][0]["params"] == [
        {"key": "C", "old": 1.0, "new": 0.5, "status": "changed"}]


def test_bad_revisions_raise_typed_errors_with_suggestions(
        store: Store, healthcare: dict[str, Any]) -> None:
    with pytest.raises(RevisionNotFound, match="did you mean model"):
        store.diff("modle@v1.0", "model@v1.1")
    with pytest.raises(RevisionNotFound, match="model@v1.1"):
        store.diff("model@v1.0", "model@v1.7")
    with pytest.raises(InvalidQuery, match="run"):
        store.diff("model@v1.0", store.runs("train")[0])
    with pytest.raises(InvalidQuery, match="examples"):
        store.diff("model@v1.0", "model@v1.1", examples=-1)


def test_an_ambiguous_prefix_raises(store: Store) -> None:
    seen: dict[str, Artifact] = {}
    for i in range(200_000):
        record = Artifact(kind="note", summary={"i": i})
        twin = seen.setdefault(record.digest[:6], record)
        if twin is not record:
            break
    for r in (twin, record):
        store._write(lambda txn, r=r: index_record(txn, r))
    with pytest.raises(AmbiguousRevision, match="more characters"):
        store.diff(record.digest[:6], "model")


def test_diff_returns_plain_data(store: Store, healthcare: dict[str, Any]) -> None:
    d = store.diff("model@v1.0", "model@v1.1")
    assert isinstance(d, LineageDiff)
    with pytest.raises(AttributeError):
        d.a = d.b  # type: ignore[misc]


def test_a_code_change_inside_a_nested_step_is_reported_as_code(tmp_path: Path) -> None:
    store = lineage.open(tmp_path / "s")
    frame = patients(40, seed=3)
    for version, scale in (("v1", 1.0), ("v2", 2.0)):
        namespace: dict[str, Any] = {}
        source = (
            "def fit(table):\n"
            f"    model = LogisticRegression(C={scale} * 0.5)\n"
            "    return model.fit(table[['age']], table['outcome'])\n"
        )
        exec(compile(source, f"<fit {version}>", "exec"),  # noqa: S102 - two source versions
             {"LogisticRegression": LogisticRegression}, namespace)
        fit = lineage.step(namespace["fit"], name="fit", version=version, store=store)
        with store.run("train_model") as run:
            run.log_model(fit(frame), name="model")
    difference = store.diff("model@v1", "model@v2")
    categories = set(difference.summary.causes)
    assert "code" in categories
    assert "nondeterminism" not in categories
    assert any(step.op == "fit" for step in difference.steps)
    logged = store._artifact("model@v2")
    assert len(logged.parents) == 1  # derived from the step's output artifact
    assert store._artifact(logged.parents[0]).kind == "model"
    store.close()


# -- reading as a reviewer reads ---------------------------------------------------------------


@lineage.step
def standardize(frame: pd.DataFrame) -> pd.DataFrame:
    features = frame.drop(columns=["outcome"])
    scaled = (features - features.mean()) / features.std()
    scaled["outcome"] = frame["outcome"].to_numpy()
    return scaled


@lineage.step
def fit(table: pd.DataFrame, C: float) -> LogisticRegression:  # noqa: N803
    return LogisticRegression(C=C).fit(table[FEATURES], table["outcome"])


@lineage.step
def scale(frame: pd.DataFrame, factor: float) -> pd.DataFrame:
    return frame.assign(x1=frame["x1"] * factor)


@pytest.fixture
def stepped(store: Store, tmp_path: Path) -> Store:
    """The demo's shape: CSV datasets, a tracked run calling two steps, a logged model."""
    base = patients(300, 1).drop(columns=["pid"])
    revised = pd.concat([base.iloc[12:], patients(40, 3).drop(columns=["pid"])],
                        ignore_index=True)
    test = patients(100, 2).drop(columns=["pid"])
    for name, frame in (("v1.0", base), ("v1.1", revised)):
        frame.to_csv(tmp_path / f"{name}.csv", index=False)
        store.add(tmp_path / f"{name}.csv", name="dataset", version=name, kind="dataset",
                  target="outcome")
    store.add(test, name="testset", version="v1", target="outcome")
    for version, c in (("v1.0", 1.0), ("v1.1", 0.5)):
        with store.run("train_model", params={"C": c}) as run:
            raw = run.log_input(f"dataset@{version}", name="dataset")
            model = fit(standardize(store.load(raw)), C=c)
            run.log_model(model, name="model", version=version)
            run.log_evaluation(test["outcome"], model.predict(test[FEATURES]),
                               dataset="testset@v1")
    return store


def test_the_same_dataset_change_reached_twice_is_compared_once(stepped: Store) -> None:
    d = stepped.diff("model@v1.0", "model@v1.1")
    compared = [a for a in d.artifacts if a.dataset is not None and a.dataset.derived is None]
    assert [(a.old.label, a.new.label) for a in compared] == [("dataset@v1.0", "dataset@v1.1")]
    first = compared[0].path
    again = [a for a in d.artifacts if a.same_as is not None]
    frame = next(a for a in again if a.path.endswith("standardize ← frame"))
    assert frame.same_as == first and frame.dataset is None and frame.cause is None
    assert frame.new.same_content == "dataset@v1.1"  # the DataFrame the step received
    assert frame.new.label.endswith("(= dataset@v1.1)")
    assert [e.category for e in d.summary.evidence].count("data") == 1
    text = str(d)
    assert text.count("rows: 300 → 328: +40 added, −12 removed") == 1
    assert f"the same change of content as {first} (shown there)" in text
    # the logged model and the step's output are one change of content too
    assert sum(a.model is not None for a in d.artifacts) == 1
    assert stepped.diff("model@v1.1", "model@v1.0") == d.reversed()


def test_a_table_derived_by_a_changed_step_says_why_all_its_rows_differ(
        stepped: Store) -> None:
    d = stepped.diff("model@v1.0", "model@v1.1")
    table = next(a for a in d.artifacts if a.path.endswith("fit ← table"))
    data = table.dataset
    assert data is not None and data.no_row_in_common
    assert data.derived == Derivation("standardize", ("dataset@v1.0",), ("dataset@v1.1",))
    assert data.examples_added == data.examples_removed == ()
    assert table.cause is None  # a consequence, not a cause
    assert "rows: 300 → 328; all 328 rows differ: derived from dataset@v1.1 by standardize" \
        in str(d)
    assert "added e.g." not in str(d).split(table.path)[1].split("\n\n")[0]


def test_a_table_recomputed_with_other_params_says_so(store: Store) -> None:
    frame = patients(20, 1)
    for factor in (1.0, 2.0):
        with store.run("prepare") as run:
            run.log_artifact(scale(frame, factor=factor), name="scaled")
    d = store.diff("scaled@v1", "scaled@v2")
    data = d.artifacts[0].dataset
    assert data is not None and data.derived is not None
    assert data.derived.params == (ValueChange("factor", 1.0, 2.0),)
    assert "all 20 rows differ: recomputed by scale (params factor 1.0 → 2.0 changed)" in str(d)


def test_the_summary_fits_on_one_screen_before_the_details(stepped: Store) -> None:
    text = str(stepped.diff("model@v1.0", "model@v1.1"))
    summary, details = text.split("\nDetails\n")
    lines = summary.strip("\n").splitlines()
    assert len(lines) <= 24, summary
    assert lines[2] == "  changed: data, hyperparameters"
    assert "    data: dataset@v1.0 → dataset@v1.1: rows +40 −12, class balance" in lines
    # one param change seen in the run and in its nested step is said once, with both places
    assert "    hyperparameters: C 1.0 → 0.5 (train_model; train_model / fit)" in lines
    assert any(line.startswith("  metrics on testset@v1 (n=100") for line in lines)
    assert "Step model ← train_model / fit" in details


def test_values_are_shown_as_they_are(store: Store) -> None:
    """A float param stays visibly a float in every rendering; 1 and 1.0 differ."""
    dataset = store.add(patients(30, 1), name="dataset")
    for c in (1, 1.0, 0.5):
        with store.run("train", params={"C": c}) as run:
            run.log_input(dataset)
            run.log_artifact({"C": c}, name="config")
    int_to_float = store.diff("config@v1", "config@v2")
    assert int_to_float.summary.causes == ("hyperparameters",)  # 1 → 1.0 is a change
    assert "param C: 1 → 1.0" in str(int_to_float)
    d = store.diff("config@v2", "config@v3")
    for rendered in (str(d), d.to_markdown(), d._repr_html_()):
        assert "C: 1.0 → 0.5" in rendered
        assert "C: 1 → 0.5" not in rendered
    assert d.to_dict()["steps"][0]["params"][0]["old"] == 1.0
    assert json.loads(d.to_json())["steps"][0]["params"][0]["old"] == 1.0
