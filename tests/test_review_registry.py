"""The registry over time and its gates: point-in-time views with stage moves back and forth,
stage policies kept in the store, promotion blocked by a leaking test set, forced promotions
recorded, and the CLI verbs for all of it."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pandas as pd
import pytest
from clinic import add, build_models, frame, train
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.cli import main
from lineage.errors import (
    InvalidName,
    InvalidQuery,
    PromotionBlocked,
    RecordTypeError,
    RevisionNotFound,
    StoreError,
)
from lineage.store import Store


@pytest.fixture
def models(store: Store, tmp_path: Path) -> Store:
    """testset@v1 (rows 0-99), dataset@v1 (rows 100-399), model@v1 and model@v2 evaluated."""
    return build_models(store, tmp_path)


def _tick() -> float:
    time.sleep(0.02)
    moment = time.time()
    time.sleep(0.02)
    return moment


# -- point in time -------------------------------------------------------------------------


def test_as_of_answers_right_for_every_interval_of_moves_back_and_forth(models: Store) -> None:
    before = _tick()
    models.promote("model@v1", "production", reason="first release")
    t1 = _tick()
    models.promote("model@v2", "production", reason="better sensitivity")
    t2 = _tick()
    models.promote("model@v1", "production", reason="rolled back: drift at site B")
    t3 = _tick()
    v1, v2 = models.resolve("model@v1"), models.resolve("model@v2")
    with pytest.raises(RevisionNotFound):
        models.as_of(before).resolve("model@production")
    assert models.as_of(t1).resolve("model@production") == v1
    assert models.as_of(t2).resolve("model@production") == v2
    assert models.as_of(t3).resolve("model@production") == v1
    assert models.as_of(t2).stages("model") == {"production": v2}
    assert models.as_of(t1).stages("model") == {"production": v1}
    reasons = [e.reason for e in models.as_of(t2).log("model") if e.ref == "stage"]
    assert reasons == ["first release", "better sensitivity"]


def test_records_made_later_do_not_exist_in_a_view(store: Store, tmp_path: Path) -> None:
    store.add(b"early", name="note")
    t = _tick()
    later = store.add(b"later", name="note")
    with store.run("train") as run:
        run.log_input("note")
    view = store.as_of(t)
    assert view.resolve("note").version == "v1"
    with pytest.raises(RevisionNotFound):
        view.resolve("note@v2")
    with pytest.raises(RevisionNotFound):
        view.resolve(later.digest)
    assert view.runs() == [] and len(store.runs()) == 1
    assert [a.version for a in view.versions("note")] == ["v1"]
    assert view.descendants("note@v1") == []


def test_ancestors_and_runs_as_of_a_moment(models: Store) -> None:
    t = models.events()[-1].time  # after both models
    view = models.as_of(t)
    assert {a.name for a in view.ancestors("model@v2", kind="dataset")} == {"dataset",
                                                                              "testset"}
    assert len(view.runs(op="train")) == 2
    assert view.moment == t and models.moment is None
    assert "as of" in repr(view)


def test_a_view_is_read_only(models: Store) -> None:
    view = models.as_of(time.time())
    for attempt in (lambda: view.add(b"x"), lambda: view.tag("model@v1", "best"),
                    lambda: view.promote("model@v1", "staging"), lambda: view.gc()):
        with pytest.raises(StoreError, match="read-only"):
            attempt()


@pytest.mark.parametrize("when", ["yesterday", "2026-13-01", "", object()])
def test_an_unparseable_moment_is_invalid_query(store: Store, when: object) -> None:
    with pytest.raises(InvalidQuery):
        store.as_of(when)  # type: ignore[arg-type]


def test_as_of_accepts_datetimes_and_iso_text(models: Store) -> None:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    assert models.as_of(moment).resolve("model").version == "v2"
    assert models.as_of(moment.isoformat()).resolve("model").version == "v2"
    with pytest.raises(RevisionNotFound):
        models.as_of("2001-01-01").resolve("model")


# -- gates ---------------------------------------------------------------------------------


def test_production_is_gated_by_default_and_a_clean_model_passes(models: Store) -> None:
    checks = models.check_promotion("model@v2", "production")
    assert [(c.name, c.passed) for c in checks] == [
        ("evaluated", True), ("independent", True), ("lint", True)]
    assert "testset@v1" in checks[0].message
    models.promote("model@v2", "production", reason="all checks pass")
    assert models.resolve("model@production").version == "v2"
    assert models.check_promotion("model@v2", "staging") == []  # staging is not gated


def test_a_leaking_test_set_blocks_promotion_and_nothing_moves(store: Store,
                                                              tmp_path: Path) -> None:
    add(store, tmp_path, "testset", "v1", frame(range(0, 100), seed=1))
    leaky = pd.concat([frame(range(100, 300), seed=2), frame(range(0, 100), seed=1)[:7]])
    add(store, tmp_path, "dataset", "v1", leaky)
    train(store, "v1", "dataset@v1")
    before = store.events()[-1].seq
    with pytest.raises(PromotionBlocked) as blocked:
        store.promote("model@v1", "production")
    assert blocked.value.failures == ("independent",)
    assert "testset@v1 shares 7 row(s) with dataset@v1" in str(blocked.value)
    with pytest.raises(RevisionNotFound):
        store.resolve("model@production")
    assert store.events()[-1].seq == before  # nothing written


def test_forcing_past_a_failed_check_needs_a_reason_and_is_recorded(store: Store,
                                                                   tmp_path: Path) -> None:
    add(store, tmp_path, "testset", "v1", frame(range(0, 100), seed=1))
    add(store, tmp_path, "dataset", "v1", pd.concat([frame(range(100, 300), seed=2),
                                                       frame(range(0, 100), seed=1)[:3]]))
    train(store, "v1", "dataset@v1")
    with pytest.raises(InvalidQuery, match="needs a reason"):
        store.promote("model@v1", "production", force=True)
    store.promote("model@v1", "production", force=True,
                  reason="3 shared rows are duplicates of a calibration phantom")
    (entry,) = [e for e in store.log("model") if e.ref == "stage"]
    assert entry.skipped and "independent" in entry.skipped[0]
    assert entry.reason.startswith("3 shared rows")
    (override,) = [e for e in store.events() if e.action == "override"]
    assert override.details["stage"] == "production" and override.details["skipped"]
    assert store.verify().ok


def test_an_unevaluated_model_is_blocked_and_says_how_to_fix_it(store: Store,
                                                                tmp_path: Path) -> None:
    add(store, tmp_path, "dataset", "v1", frame(range(100, 300), seed=2))
    with store.run("train") as run:
        table = store.load(run.log_input("dataset@v1"))
        run.log_model(LogisticRegression().fit(table[["a", "b"]], table["y"]), name="model")
    with pytest.raises(PromotionBlocked) as blocked:
        store.promote("model", "production")
    assert set(blocked.value.failures) == {"evaluated", "independent"}
    assert "log_evaluation" in str(blocked.value)


def test_a_stage_policy_with_metric_minimums_subgroups_and_paths(models: Store) -> None:
    policy = models.set_policy("production", metrics={"sensitivity": (">=", 0.999)},
                               min_subgroup=20, after=["staging"], reason="board decision")
    assert policy.stored and policy.metrics == {"sensitivity": (">=", 0.999)}
    failures = {c.name for c in models.check_promotion("model@v2", "production")
                if not c.passed}
    assert failures == {"metric sensitivity", "min subgroup", "after staging"}
    models.promote("model@v2", "staging")
    failures = {c.name for c in models.check_promotion("model@v2", "production")
                if not c.passed}
    assert "after staging" not in failures
    assert [e.action for e in models.events()].count("policy") == 1
    assert models.reset_policy("production").stored is False


def test_policy_bad_input_raises_typed_errors_and_writes_nothing(models: Store) -> None:
    before = models.events()[-1].seq
    with pytest.raises(InvalidQuery, match="unknown check"):
        models.set_policy("production", checks=["evaluated", "vibes"])
    with pytest.raises(InvalidQuery, match="metric 'auc'"):
        models.set_policy("production", metrics={"auc": ("~", 0.5)})
    with pytest.raises(InvalidQuery, match="min_subgroup"):
        models.set_policy("production", min_subgroup=0)
    with pytest.raises(InvalidName):
        models.set_policy("prod uction")
    assert models.events()[-1].seq == before


def test_clearing_a_stage_is_kept_in_history(models: Store) -> None:
    models.promote("model@v1", "staging")
    models.clear_stage("model", "staging", reason="withdrawn")
    assert models.stages("model") == {}
    assert [(e.key, e.target, e.reason) for e in models.log("model")][-1] == (
        "staging", None, "withdrawn")
    with pytest.raises(RevisionNotFound, match="no stage"):
        models.clear_stage("model", "staging")


def test_promoting_a_run_is_a_record_type_error(models: Store) -> None:
    with pytest.raises(RecordTypeError):
        models.promote(models.runs()[0].digest, "staging")


# -- command line --------------------------------------------------------------------------


def test_cli_promote_policy_and_as_of(models: Store, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    home = models.path
    models.close()
    assert main(["--store", home, "policy", "production", "--metric", "sensitivity>=0.999",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["policies"][0]["metrics"] == {
        "sensitivity": [">=", 0.999]}
    assert main(["--store", home, "promote", "model@v2", "production"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lineage: error: cannot promote model@v2 to production")
    assert err.count("\n") == 1 and "sensitivity" in err
    assert main(["--store", home, "promote", "model@v2", "production", "--force"]) == 1
    assert "needs a reason" in capsys.readouterr().err
    t = time.time()
    time.sleep(0.02)
    assert main(["--store", home, "promote", "model@v2", "production", "--force",
                 "--reason", "accepted by the board", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["forced"] and any(not c["passed"] for c in done["checks"])
    assert main(["--store", home, "show", "model@production", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == "v2"
    assert main(["--store", home, "show", "model@production", "--as-of",
                 dt.datetime.fromtimestamp(t).isoformat()]) == 1
    assert "no version or stage" in capsys.readouterr().err
    assert main(["--store", home, "log", "model", "--json"]) == 0
    (stage,) = [e for e in json.loads(capsys.readouterr().out)["entries"] if e["ref"] == "stage"]
    assert stage["skipped"] and stage["reason"] == "accepted by the board"
    assert main(["--store", home, "runs", "--as-of", "2001-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == []
    assert main(["--store", home, "promote", "model", "production", "--clear"]) == 0
    assert main(["--store", home, "runs", "--as-of", "not a date"]) == 1
    assert capsys.readouterr().err.splitlines()[-1].startswith("lineage: error: as_of")
    with lineage.open(home) as reopened:
        assert reopened.stages("model") == {}
