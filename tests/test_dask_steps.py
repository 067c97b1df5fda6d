"""``@lineage.step`` on a real Dask cluster: two worker processes on 127.0.0.1, no dashboard.

The steps are sent inside ``with store:`` on the client and record into that store from
the workers, exactly as a local call would: one run per call, a repeated call a cache hit
on whichever worker runs it, a failure recorded and never cached.
"""

from __future__ import annotations

import os
import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

import lineage
from lineage.errors import StepDefinitionError


@lineage.step(ignore=["marks"])
def featurize(x: int, marks: str) -> np.ndarray:
    """Leaves a mark per execution (the mark directory is not part of the call)."""
    Path(marks, f"{x}-{os.getpid()}-{uuid.uuid4().hex}").touch()
    return np.arange(x, x + 1000, dtype=np.float64) ** 2


@lineage.step
def refuses(x: int) -> int:
    raise ValueError(f"refused {x}")


@lineage.step
def square(x: int) -> int:
    return x * x


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, \
            Client(cluster) as connected:
        yield connected


def executions(marks: Path) -> list[str]:
    return sorted(p.name for p in marks.iterdir())


def test_a_fan_out_records_each_call_once_and_a_repeat_executes_nothing(
        client: object, tmp_path: Path) -> None:
    from distributed import Client

    assert isinstance(client, Client)
    marks = tmp_path / "marks"
    marks.mkdir()
    store = lineage.open(tmp_path / "store")
    inputs = list(range(24))
    with store:
        futures = client.map(featurize, inputs, marks=str(marks), pure=False)
        first = client.gather(futures)
    done = executions(marks)
    assert len(done) == len(inputs)
    assert len({name.split("-")[1] for name in done}) >= 2  # ran on both worker processes
    assert os.getpid() not in {int(name.split("-")[1]) for name in done}

    store = lineage.open(tmp_path / "store")
    runs = store.runs(op="featurize")
    assert len(runs) == len(inputs)
    assert sorted(r.params["x"] for r in runs) == inputs
    assert len({r.call_key for r in runs}) == len(inputs)

    with store:
        again = client.gather(client.map(featurize, inputs, marks=str(marks), pure=False))
    assert executions(marks) == done  # every call a cache hit, on whichever worker
    for before, after in zip(first, again, strict=True):
        np.testing.assert_array_equal(before, after)

    local = lineage.open(tmp_path / "local")
    with local:
        for x in inputs[:5]:
            featurize(x, str(tmp_path))
    local, store = lineage.open(tmp_path / "local"), lineage.open(tmp_path / "store")
    for x in inputs[:5]:
        assert local.runs(op="featurize", params={"x": x})[0].outputs == \
            store.runs(op="featurize", params={"x": x})[0].outputs
    assert len(store.runs(op="featurize")) == len(inputs)


def test_a_raising_step_is_recorded_failed_and_never_cached(client: object,
                                                            tmp_path: Path) -> None:
    from distributed import Client

    assert isinstance(client, Client)
    store = lineage.open(tmp_path / "store")
    for attempt in (1, 2):
        with store:
            future = client.submit(refuses, 7, pure=False)
            with pytest.raises(ValueError, match="refused 7"):
                future.result()
        store = lineage.open(tmp_path / "store")
        failed = store.runs(op="refuses")
        assert len(failed) == attempt
        assert {r.status for r in failed} == {"failed"}
        assert failed[0].error is not None and failed[0].error["type"] == "ValueError"


def test_dask_delayed_steps_hit_the_same_cache(client: object, tmp_path: Path) -> None:
    import dask

    marks = tmp_path / "marks"
    marks.mkdir()
    store = lineage.open(tmp_path / "store")
    with store:
        featurize(3, str(marks))  # recorded locally first
        total = dask.delayed(sum)([dask.delayed(featurize, pure=False)(x, str(marks)).sum()
                                   for x in (3, 4)])
        value = total.compute()
    assert value == pytest.approx(sum(float((np.arange(x, x + 1000.0) ** 2).sum())
                                      for x in (3, 4)))
    assert len(executions(marks)) == 2  # 3 once locally, 4 once on a worker
    assert len(lineage.open(tmp_path / "store").runs(op="featurize")) == 2


def test_a_pickled_step_carries_the_store_location(tmp_path: Path) -> None:
    store = lineage.open(tmp_path / "s")
    with store:
        data = pickle.dumps(featurize)
    copy = pickle.loads(data)
    assert copy.name == "featurize" and copy.ignore == frozenset({"marks"})
    assert copy.store().path == str(tmp_path / "s")
    assert copy._code == featurize._code  # the client's code identity travels
    assert copy.trust is False
    trusting = lineage.step(name="trusting", trust=True, store=str(tmp_path / "s"))(
        lambda x: x)
    assert pickle.loads(cloudpickle.dumps(trusting)).trust is True
    bound = lineage.step(name="identity", store=str(tmp_path / "elsewhere"))(lambda x: x)
    assert pickle.loads(cloudpickle.dumps(bound))._store == str(tmp_path / "elsewhere")
    with lineage.open(":memory:"), pytest.raises(StepDefinitionError, match="in-memory"):
        pickle.dumps(featurize)


def through_a_remote(url: str, path: str, x: int, marks: str) -> float:
    """A task on a worker that does not see the client's store: a store of its own."""
    from lineage.remotes.executors import through_remote

    with through_remote(url, path):
        return float(featurize(x, marks).sum())


def test_workers_without_the_store_reach_it_through_a_remote(client: object,
                                                             tmp_path: Path) -> None:
    from distributed import Client

    assert isinstance(client, Client)
    url, marks = str(tmp_path / "remote"), tmp_path / "marks"
    marks.mkdir()
    team = lineage.open(tmp_path / "team")
    team.add({"C": 0.5}, name="config")
    team.push(url)  # the remote exists before workers use it
    machines = [str(tmp_path / f"machine-{i}") for i in range(2)]
    first = client.gather([client.submit(through_a_remote, url, machines[i % 2], i, str(marks),
                                         pure=False) for i in range(6)])
    assert len(executions(marks)) == 6
    again = client.gather([client.submit(through_a_remote, url, machines[(i + 1) % 2], i,
                                         str(marks), pure=False) for i in range(6)])
    assert again == first
    assert len(executions(marks)) == 6  # each call a hit on the other "machine"
    team.pull(url)
    assert sorted(r.params["x"] for r in team.runs(op="featurize")) == list(range(6))
    assert team.verify().ok


@pytest.mark.filterwarnings("ignore:Port 8787 is already in use")  # the module's cluster has it
def test_an_in_process_cluster_started_inside_a_run_does_not_extend_it(tmp_path: Path) -> None:
    """Worker threads of a ``LocalCluster(processes=False)`` created inside a run hold a
    copy of the run's context: calls made while the run is open are its children, calls
    made after it ended are not (they are nobody's child)."""
    from distributed import Client, LocalCluster

    store = lineage.open(tmp_path / "store")
    with store:
        with store.run("outer"):
            cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                   protocol="tcp://", host="127.0.0.1",
                                   dashboard_address=None, silence_logs=40)
            connected = Client(cluster)
            assert connected.submit(square, 3).result() == 9
        try:
            assert connected.submit(square, 4).result() == 16
        finally:
            connected.close()
            cluster.close()
        (outer,) = store.runs("outer")
        parents = {run.params["x"]: run.parent for run in store.runs("square")}
    store.close()
    assert parents == {3: outer.id, 4: None}
