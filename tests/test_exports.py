"""Standard exports: PROV-JSON reads back with the prov package to the same entities,
activities and relations and validates against its schema; every OpenLineage event validates
against the vendored 2-0-2 schema, runs pair START with COMPLETE/FAIL, and ids are stable."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from clinic import add, frame
from prov.model import ProvDocument
from sklearn.linear_model import LogisticRegression

import lineage
from lineage.audit.exports import validate_export
from lineage.audit.openlineage import run_uuid
from lineage.cli import main
from lineage.errors import InvalidQuery
from lineage.store import Store


@pytest.fixture
def workflow(store: Store, tmp_path: Path) -> Store:
    """A registered test set and dataset, a run with a nested step that fits the model, an
    evaluation, and a failed run."""
    add(store, tmp_path, "testset", "v1", frame(range(0, 100), seed=1))
    add(store, tmp_path, "dataset", "v1", frame(range(100, 400), seed=2))

    @lineage.step(store=store)
    def fit(table: pd.DataFrame, C: float) -> LogisticRegression:  # noqa: N803
        return LogisticRegression(C=C).fit(table[["a", "b", "c"]], table["y"])

    with store.run("train", params={"C": 0.5}, label="baseline") as run:
        table = store.load(run.log_input("dataset@v1", name="dataset"))
        model = fit(table, C=0.5)
        run.log_model(model, name="model", version="v1")
        held_out = store.load("testset@v1")
        run.log_evaluation(held_out["y"], model.predict(held_out[["a", "b", "c"]]),
                           dataset="testset@v1")
    with pytest.raises(RuntimeError), store.run("deploy") as run:
        run.log_input("model@v1")
        raise RuntimeError("the endpoint was down")
    return store


def test_prov_json_reads_back_to_the_same_entities_activities_and_relations(
        workflow: Store) -> None:
    text = workflow.export("model@v1", format="prov-json")
    assert validate_export(text, fmt="prov-json") == []
    data = json.loads(text)
    document = ProvDocument.deserialize(content=text, format="json")
    entities = {str(e.identifier) for e in document.get_records() if e.is_element()
                and e.get_type().localpart == "Entity"}
    activities = {str(a.identifier) for a in document.get_records() if a.is_element()
                  and a.get_type().localpart == "Activity"}
    assert entities == set(data["entity"]) and activities == set(data["activity"])
    relations: dict[str, int] = {}
    for record in document.get_records():
        if record.is_relation():
            kind = record.get_type().localpart
            relations[kind] = relations.get(kind, 0) + 1
    assert relations == {
        "Usage": len(data["used"]), "Generation": len(data["wasGeneratedBy"]),
        "Association": len(data["wasAssociatedWith"]),
        "Communication": len(data["wasInformedBy"]),
        **({"Derivation": len(data["wasDerivedFrom"])} if "wasDerivedFrom" in data else {})}
    model = workflow.resolve("model@v1")
    attributes = data["entity"][f"lineage:{model.digest}"]
    assert attributes["lineage:name"] == "model" and attributes["lineage:version"] == "v1"
    train = next(a for a in data["activity"].values() if a["lineage:op"] == "train")
    assert train["lineage:param_C"] == 0.5 and train["prov:startTime"].endswith("+00:00")
    assert data["wasInformedBy"]  # the nested step was informed by the run it ran in
    assert any(agent["lineage:user"] for agent in data["agent"].values())


def test_every_openlineage_event_validates_and_runs_pair_up(workflow: Store) -> None:
    text = workflow.export(None, format="openlineage", namespace="clinic")
    assert validate_export(text, fmt="openlineage") == []
    events = [json.loads(line) for line in text.splitlines()]
    runs = workflow.runs()
    assert len(events) == 2 * len(runs)
    by_run: dict[str, list[str]] = {}
    for event in events:
        by_run.setdefault(event["run"]["runId"], []).append(event["eventType"])
        assert event["job"]["namespace"] == "clinic"
    assert sorted(by_run) == sorted(run_uuid(r) for r in runs)
    assert sorted(tuple(kinds) for kinds in by_run.values()) == sorted(
        [("START", "COMPLETE")] * (len(runs) - 1) + [("START", "FAIL")])
    failed = next(e for e in events if e["eventType"] == "FAIL")
    assert "the endpoint was down" in failed["run"]["facets"]["errorMessage"]["message"]
    started = next(e for e in events if e["eventType"] == "START"
                   and e["job"]["name"] == "train")
    dataset = next(d for d in started["inputs"] if d["name"] == "dataset@v1")
    assert dataset["facets"]["version"]["datasetVersion"] == workflow.resolve(
        "dataset@v1").blob.hex()  # type: ignore[union-attr]
    assert [f["name"] for f in dataset["facets"]["schema"]["fields"]] == [
        "pid", "a", "b", "c", "y"]
    completed = next(e for e in events if e["eventType"] == "COMPLETE"
                     and e["job"]["name"] == "train")
    assert completed["run"]["facets"]["lineage_metrics"]["measuredOn"]["sensitivity"] == \
        "testset@v1"


def test_exports_are_byte_identical_across_runs(workflow: Store) -> None:
    for form in ("prov-json", "openlineage"):
        assert workflow.export("model@v1", format=form) == workflow.export(
            "model@v1", format=form)


def test_the_validator_catches_a_broken_event(workflow: Store) -> None:
    events = [json.loads(line) for line in workflow.export(
        "model@v1", format="openlineage").splitlines()]
    del events[0]["run"]["runId"]
    events[1]["inputs"] = [{"namespace": "lineage"}]
    text = "\n".join(json.dumps(e) for e in events)
    problems = validate_export(text, fmt="openlineage")
    assert any("runId" in p for p in problems) and any("'name'" in p for p in problems)
    broken = json.loads(workflow.export("model@v1", format="prov-json"))
    broken["entity"]["lineage:x"] = {"lineage:bad": {"nested": 1}}
    assert validate_export(json.dumps(broken), fmt="prov-json")


def test_an_unknown_format_is_invalid_query(workflow: Store) -> None:
    with pytest.raises(InvalidQuery, match="prov-json"):
        workflow.export("model@v1", format="rdf")


def test_cli_export_writes_atomically_and_validates(workflow: Store, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    home = workflow.path
    workflow.close()
    out = tmp_path / "lineage.jsonl"
    assert main(["--store", home, "export", "model@v1", "--format", "openlineage",
                 "--validate", "-o", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["validated"] and Path(data["path"]).read_text().count("\n") >= 4
    assert main(["--store", home, "export", "--all", "--format", "prov-json"]) == 0
    assert json.loads(capsys.readouterr().out)["entity"]
    assert main(["--store", home, "export"]) == 2  # neither REV nor --all
    assert main(["--store", home, "export", "model@v1", "-o", str(tmp_path)]) == 1
    assert "is a directory" in capsys.readouterr().err
