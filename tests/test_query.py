"""Queries over the provenance graph: ancestors, descendants, runs, artifacts, graph."""

from __future__ import annotations

import datetime as dt
import math
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lineage
from lineage.core.records import Artifact, Run
from lineage.errors import InvalidName, InvalidQuery, RevisionNotFound
from lineage.storage.schema import index_record
from lineage.store import Store

T0 = 1_700_000_000.0


def record_run(store: Store, op: str, *, inputs: dict[str, Artifact] | None = None,
               outputs: dict[str, Artifact] | None = None, started: float = T0,
               **fields: Any) -> Run:
    """Write a run record directly, as the tracking API would."""
    run = Run(
        op=op,
        id=uuid.uuid4().hex,
        inputs={k: a.raw_digest for k, a in (inputs or {}).items()},
        outputs={k: a.raw_digest for k, a in (outputs or {}).items()},
        started=started,
        ended=started + 1,
        **fields,
    )
    store._write(lambda txn: index_record(txn, run))
    return run


@pytest.fixture
def chain(store: Store) -> dict[str, Any]:
    """raw -> clean -> cleaned; cleaned + config -> train -> model; model + test -> evaluate."""
    raw = store.add(b"raw rows", name="raw", version="v1", kind="dataset")
    cleaned = store.add(b"clean rows", name="cleaned", version="v1", kind="dataset")
    config = store.add({"C": 0.5}, name="config")
    model = store.add(b"model bytes", name="model", version="v1", kind="model")
    test = store.add(b"test rows", name="testset", version="v1", kind="dataset")
    report = store.add({"sensitivity": 0.9}, name="report", kind="evaluation")
    clean = record_run(store, "clean", inputs={"raw": raw}, outputs={"return": cleaned},
                       started=T0)
    train = record_run(store, "train", inputs={"data": cleaned, "config": config},
                       outputs={"model": model}, params={"C": 0.5}, started=T0 + 10)
    evaluate = record_run(store, "evaluate", inputs={"model": model, "test": test},
                          outputs={"report": report}, metrics={"sensitivity": 0.9},
                          metric_datasets={"sensitivity": test.raw_digest}, started=T0 + 20)
    return locals()


def digests(records: list[Any]) -> list[str]:
    return [r.digest for r in records]


def test_ancestors_are_nearest_first_and_complete(store: Store, chain: dict[str, Any]) -> None:
    found = store.ancestors("model@v1")
    assert found[0] == chain["train"]
    assert set(digests(found[1:3])) == {chain["cleaned"].digest, chain["config"].digest}
    assert digests(found[3:]) == [chain["clean"].digest, chain["raw"].digest]


def test_ancestors_depth_counts_edges(store: Store, chain: dict[str, Any]) -> None:
    assert store.ancestors("model@v1", depth=0) == []
    assert store.ancestors("model@v1", depth=1) == [chain["train"]]
    assert len(store.ancestors("model@v1", depth=2)) == 3
    assert chain["raw"] not in store.ancestors("model@v1", depth=3)
    assert chain["raw"] in store.ancestors("model@v1", depth=4)


def test_kind_filter_walks_through_other_kinds(store: Store, chain: dict[str, Any]) -> None:
    datasets = store.ancestors("model@v1", kind="dataset")
    assert digests(datasets) == [chain["cleaned"].digest, chain["raw"].digest]
    assert [a.version for a in datasets] == ["v1", "v1"]
    runs = store.ancestors("model", kind="run")
    assert digests(runs) == [chain["train"].digest, chain["clean"].digest]
    assert store.ancestors("model", kind=["config", "run"], depth=2) == [
        chain["train"], chain["config"]]


def test_descendants_say_what_a_bad_dataset_affects(store: Store,
                                                    chain: dict[str, Any]) -> None:
    affected = store.descendants("raw@v1")
    assert affected[:2] == [chain["clean"], chain["cleaned"]]
    assert store.descendants("raw@v1", kind="model") == [chain["model"]]
    assert store.descendants("raw@v1", kind="evaluation") == [chain["report"]]
    assert store.descendants("raw@v1", depth=2) == [chain["clean"], chain["cleaned"]]
    assert store.descendants(chain["report"]) == []


def test_walks_refuse_a_bad_depth(store: Store, chain: dict[str, Any]) -> None:
    with pytest.raises(InvalidQuery, match="depth"):
        store.ancestors("model", depth=-1)
    with pytest.raises(InvalidQuery, match="depth"):
        store.descendants("model", depth=1.5)  # type: ignore[arg-type]


def test_unknown_revision_suggests_names(store: Store, chain: dict[str, Any]) -> None:
    with pytest.raises(RevisionNotFound, match="did you mean model"):
        store.ancestors("modle")
    with pytest.raises(RevisionNotFound, match="model@v1"):
        store.descendants("model@v2")


def test_runs_filter_by_op_used_and_produced(store: Store, chain: dict[str, Any]) -> None:
    assert store.runs("train") == [chain["train"]]
    assert store.runs(used="cleaned@v1") == [chain["train"]]
    assert store.runs(used="testset@v1") == [chain["evaluate"]]
    assert store.runs(produced="model@v1") == [chain["train"]]
    assert store.runs(used="model@v1", produced="report") == [chain["evaluate"]]
    assert store.runs("clean", used="model@v1") == []
    assert store.runs() == [chain["evaluate"], chain["train"], chain["clean"]]  # newest first


def test_runs_filter_by_params(store: Store) -> None:
    one = record_run(store, "fit", params={"C": 1, "penalty": "l2"}, started=T0)
    half = record_run(store, "fit", params={"C": 0.5, "penalty": "l1"}, started=T0 + 1)
    nested = record_run(store, "fit", params={"C": 2.0, "grid": {"a": [1, 2]}}, started=T0 + 2)
    assert store.runs(params={"C": 1.0}) == [one]  # ints and floats compare by value
    assert store.runs(params={"C": 1}) == [one]
    assert store.runs(params={"penalty": "l1"}) == [half]
    assert store.runs(params={"C": ("<", 1.5)}) == [half, one]
    assert store.runs(params={"C": (">=", 1), "penalty": "l2"}) == [one]
    assert store.runs(params={"C": ("!=", 1)}) == [nested, half]
    assert store.runs(params={"grid": {"a": [1, 2]}}) == [nested]
    assert store.runs(params={"grid": {"a": [2, 1]}}) == []
    assert store.runs(params={"missing": 1}) == []
    assert store.runs(params={"penalty": True}) == []


def test_runs_filter_by_metrics(store: Store) -> None:
    low = record_run(store, "fit", metrics={"sensitivity": 0.7, "auc": -0.0}, started=T0)
    high = record_run(store, "fit", metrics={"sensitivity": 0.95}, started=T0 + 1)
    exact = record_run(store, "fit", metrics={"sensitivity": 0.9}, started=T0 + 2)
    bare = record_run(store, "fit", started=T0 + 3)
    assert store.runs(metrics={"sensitivity": (">", 0.9)}) == [high]
    assert store.runs(metrics={"sensitivity": (">=", 0.9)}) == [exact, high]
    assert store.runs(metrics={"sensitivity": ("<", 0.9)}) == [low]
    assert store.runs(metrics={"sensitivity": 0.9}) == [exact]
    assert store.runs(metrics={"sensitivity": ("!=", 0.9)}) == [high, low]
    assert store.runs(metrics={"auc": ("==", 0)}) == [low]
    assert bare not in store.runs(metrics={"sensitivity": ("!=", 0.5)})


def test_runs_filter_by_status_label_time_and_limit(store: Store) -> None:
    early = record_run(store, "fit", started=T0, label="baseline")
    failed = record_run(store, "fit", started=T0 + 100, status="failed",
                        error={"type": "ValueError", "message": "bad"})
    late = record_run(store, "fit", started=T0 + 200)
    assert store.runs(status="failed") == [failed]
    assert store.runs("fit", status="ok") == [late, early]
    assert store.runs(label="baseline") == [early]
    assert store.runs("fit", since=T0 + 100) == [late, failed]
    assert store.runs(since=T0 + 100) == [late, failed]
    assert store.runs("fit", until=T0 + 100) == [failed, early]
    assert store.runs("fit", since=T0 + 1, until=T0 + 199) == [failed]
    when = dt.datetime.fromtimestamp(T0 + 150, dt.UTC)
    assert store.runs("fit", since=when) == [late]
    assert store.runs("fit", limit=2) == [late, failed]


def test_runs_refuse_malformed_conditions(store: Store) -> None:
    with pytest.raises(InvalidQuery, match="operator"):
        store.runs(metrics={"sensitivity": ("~", 0.9)})
    with pytest.raises(InvalidQuery, match="number"):
        store.runs(metrics={"sensitivity": "high"})
    with pytest.raises(InvalidQuery, match="number"):
        store.runs(params={"C": (">", "a")})
    with pytest.raises(InvalidQuery, match="status"):
        store.runs(status="done")
    with pytest.raises(InvalidQuery, match="since"):
        store.runs(since="yesterday")  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="limit"):
        store.runs(limit=-1)


#: Values a range scan must place exactly: infinities, both zeros, neighbours of 0.5.
_EDGES = st.sampled_from([-math.inf, -1.5, -0.0, 0.0, math.nextafter(0.5, 0), 0.5,
                          math.nextafter(0.5, 1), 1.5, math.inf])


@given(
    values=st.lists(st.floats(allow_nan=False, width=32) | _EDGES, max_size=12),
    op=st.sampled_from([">", ">=", "<", "<=", "==", "!="]),
    threshold=st.floats(allow_nan=False, width=32) | _EDGES,
)
def test_metric_index_agrees_with_a_scan(values: list[float], op: str, threshold: float) -> None:
    compare = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__,
               "==": float.__eq__, "!=": float.__ne__}[op]
    with tempfile.TemporaryDirectory() as directory:
        store = lineage.open(Path(directory) / "store")
        try:
            made = [record_run(store, "fit", metrics={"m": v}, started=T0 + i)
                    for i, v in enumerate(values)]
            expected = [r for r in reversed(made) if compare(r.metrics["m"], threshold)]
            assert store.runs(metrics={"m": (op, threshold)}) == expected
        finally:
            store.close()


def test_artifacts_by_kind_and_name_carry_versions(store: Store) -> None:
    first = store.add(b"a", name="dataset", version="v1.0", kind="dataset")
    second = store.add(b"b", name="dataset", version="v1.1", kind="dataset")
    other = store.add(b"c", name="other", kind="dataset")
    store.add(b"d", name="model", kind="model")
    found = store.artifacts(name="dataset")
    assert found == [first, second]
    assert [a.version for a in found] == ["v1.0", "v1.1"]
    assert store.artifacts(kind="dataset") == [first, second, other]
    assert store.artifacts(kind="model", name="dataset") == []
    assert {a.kind for a in store.artifacts()} == {"dataset", "model"}
    with pytest.raises(InvalidQuery, match="runs"):
        store.artifacts(kind="run")
    with pytest.raises(InvalidName):
        store.artifacts(name="bad name")


def test_graph_of_a_lineage_has_attributes(store: Store, chain: dict[str, Any]) -> None:
    g = store.graph("model@v1", direction="upstream")
    model, train = chain["model"].digest, chain["train"].digest
    assert set(g.nodes) == {model, train, chain["cleaned"].digest, chain["config"].digest,
                            chain["clean"].digest, chain["raw"].digest}
    assert g.nodes[model]["kind"] == "model" and g.nodes[model]["version"] == "v1"
    assert g.nodes[train]["op"] == "train" and g.nodes[train]["params"] == {"C": 0.5}
    assert g.edges[train, model, "generated"]["roles"] == ["model"]
    assert g.edges[chain["cleaned"].digest, train, "used"] == {"type": "used", "roles": ["data"]}
    shallow = store.graph("model@v1", depth=1)
    assert set(shallow.nodes) == {model, train, chain["evaluate"].digest}


def test_graph_of_the_whole_store(store: Store, chain: dict[str, Any]) -> None:
    g = store.graph()
    assert g.number_of_nodes() == 9
    assert g.number_of_edges() == 8
    assert {d["type"] for _u, _v, d in g.edges(data=True)} == {"used", "generated"}
    with pytest.raises(InvalidQuery, match="direction"):
        store.graph("model", direction="sideways")
