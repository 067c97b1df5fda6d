"""``@lineage.step``: memoization (hit/miss matrix), outputs, explain, nesting, concurrency.

Every test records into a real LMDB store in a temporary directory and counts how often a
step's body runs, so a "hit" is a hit because the function did not execute.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import lineage
from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import Run
from lineage.errors import StepDefinitionError, UnsupportedValue
from lineage.storage.schema import EDGE_CHILD
from lineage.store import Store, open_store
from lineage.tracking.callkey import scalar_params_encoding
from lineage.tracking.step import default_store


def runs(store: Store, op: str) -> list[Run]:
    """Runs of ``op``, oldest first."""
    return list(reversed(store.runs(op=op)))


def has_child_edge(store: Store, parent: Run, child: Run) -> bool:
    with store._read() as txn:
        return txn.get("edges_out", parent.raw_digest + EDGE_CHILD + child.raw_digest) is not None


def load_module(path: Path, name: str, source: str) -> Any:
    """Import ``source`` written to ``path`` as module ``name`` (a real, inspectable file)."""
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# -- hit / miss matrix ------------------------------------------------------------------


def test_same_call_hits_and_changed_argument_or_param_misses(store: Store) -> None:
    calls: list[tuple[int, int]] = []

    @lineage.step(store=store)
    def add(x: int, y: int = 10) -> int:
        calls.append((x, y))
        return x + y

    assert add(1) == 11
    assert add(1) == 11
    assert add(x=1, y=10) == 11  # same call spelled differently: same key
    assert calls == [(1, 10)]
    assert add(2) == 12  # changed argument
    assert add(1, y=20) == 21  # changed param
    assert calls == [(1, 10), (2, 10), (1, 20)]
    recorded = runs(store, "add")
    assert [r.params for r in recorded] == [{"x": 1, "y": 10}, {"x": 2, "y": 10},
                                            {"x": 1, "y": 20}]
    assert all(r.status == "ok" and r.call_key is not None for r in recorded)


def test_hit_survives_a_new_process_state(tmp_path: Path) -> None:
    """The cache is the store, not process memory: a fresh Step object hits too."""
    calls = []

    def body(x: int) -> int:
        calls.append(x)
        return x * 2

    first = lineage.open(tmp_path / "s")
    try:
        assert lineage.step(name="double", store=first)(body)(4) == 8
    finally:
        first.close()
    again = lineage.open(tmp_path / "s")
    try:
        assert lineage.step(name="double", store=again)(body)(4) == 8
    finally:
        again.close()
    assert calls == [4]


def test_changed_source_misses_and_version_keeps_identity(store: Store, tmp_path: Path) -> None:
    template = (
        "import lineage\n"
        "CALLS = []\n"
        "def make(store, version=None):\n"
        "    @lineage.step(name='scale', store=store, version=version)\n"
        "    def scale(x):\n"
        "        CALLS.append(x)\n"
        "        return x * {factor}\n"
        "    return scale\n"
    )
    old = load_module(tmp_path / "scale_v1.py", "scale_v1", template.format(factor=2))
    new = load_module(tmp_path / "scale_v2.py", "scale_v2", template.format(factor=3))

    assert old.make(store)(5) == 10
    assert new.make(store)(5) == 15  # edited source: a miss, the new body runs
    assert (old.CALLS, new.CALLS) == ([5], [5])
    assert old.make(store)(5) == 10  # the old source still hits its own run
    assert old.CALLS == [5]

    assert old.make(store, version="1")(7) == 14
    assert new.make(store, version="1")(7) == 14  # pinned version: the edit does not count
    assert new.CALLS == [5]
    assert new.make(store, version="2")(7) == 21
    assert new.CALLS == [5, 7]
    codes = {r.code for r in runs(store, "scale")}
    assert len(codes) == 4  # one code artifact per (source, version) pair
    code = store._artifact(runs(store, "scale")[0].code)
    assert code.kind == "code"
    assert "x * 2" in code.summary["source"]


def test_path_argument_is_taken_by_content(store: Store, tmp_path: Path) -> None:
    calls = []

    @lineage.step(store=store)
    def count_lines(data: Path) -> int:
        calls.append(data)
        return len(data.read_text().splitlines())

    data = tmp_path / "data.csv"
    data.write_text("a\nb\n")
    assert count_lines(data) == 2
    assert count_lines(data) == 2
    assert len(calls) == 1
    data.write_text("a\nc\n")  # same size, new content
    assert count_lines(data) == 2
    assert len(calls) == 2
    data.write_text("a\nb\n")  # back to the first content: its run hits again
    assert count_lines(data) == 2
    assert len(calls) == 2
    moved = tmp_path / "elsewhere.csv"
    data.rename(moved)
    assert count_lines(moved) == 2  # the same content at another path hits
    assert len(calls) == 2

    first = runs(store, "count_lines")[0]
    assert first.params == {}
    assert set(first.inputs) == {"data"}
    assert store.read_bytes(store._artifact(first.inputs["data"])) == b"a\nb\n"


def test_directory_argument_is_taken_by_content(store: Store, tmp_path: Path) -> None:
    calls = []

    @lineage.step(store=store)
    def list_files(folder: Path) -> list[str]:
        calls.append(folder)
        return sorted(p.name for p in folder.iterdir())

    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "a.txt").write_text("1")
    assert list_files(folder) == ["a.txt"]
    assert list_files(folder) == ["a.txt"]
    (folder / "b.txt").write_text("2")
    assert list_files(folder) == ["a.txt", "b.txt"]
    assert len(calls) == 2


def test_str_argument_is_a_value_not_a_path(store: Store, tmp_path: Path) -> None:
    calls = []

    @lineage.step(store=store)
    def read(name: str) -> str:
        calls.append(name)
        return Path(name).read_text()

    data = tmp_path / "data.txt"
    data.write_text("one")
    assert read(str(data)) == "one"
    data.write_text("two")
    assert read(str(data)) == "one"  # a str is a value: the content is not part of the key
    assert len(calls) == 1
    recorded = runs(store, "read")[0]
    assert recorded.params == {"name": str(data)}
    assert recorded.inputs == {}


def test_failing_call_is_recorded_and_not_cached(store: Store) -> None:
    calls = []

    @lineage.step(store=store)
    def fragile(x: int) -> int:
        calls.append(x)
        if len(calls) < 3:
            raise ValueError(f"attempt {len(calls)} failed for {x}")
        return x

    with pytest.raises(ValueError, match="attempt 1 failed for 4"):
        fragile(4)
    with pytest.raises(ValueError, match="attempt 2 failed for 4"):
        fragile(4)  # not cached: executes again
    assert fragile(4) == 4
    assert fragile(4) == 4  # the success is cached
    assert calls == [4, 4, 4]
    recorded = runs(store, "fragile")
    assert [r.status for r in recorded] == ["failed", "failed", "ok"]
    assert recorded[0].error == {"type": "ValueError", "message": "attempt 1 failed for 4"}
    assert recorded[0].call_key is None and recorded[0].outputs == {}
    assert recorded[0].params == {"x": 4}
    assert recorded[2].error is None


def test_cache_false_always_executes_but_records(store: Store) -> None:
    calls = []

    @lineage.step(store=store, cache=False)
    def sample(seed: int) -> int:
        calls.append(seed)
        return len(calls)

    assert [sample(1), sample(1), sample(1)] == [1, 2, 3]
    recorded = runs(store, "sample")
    assert len(recorded) == 3
    assert all(r.status == "ok" and r.params == {"seed": 1} for r in recorded)
    assert [store.load(r.outputs["return"])["value"] for r in recorded] == [1, 2, 3]


def test_ignore_leaves_a_param_out_of_the_key_and_record(store: Store) -> None:
    calls = []

    @lineage.step(store=store, ignore=["verbose"])
    def fit(x: int, verbose: bool = False) -> int:
        calls.append(verbose)
        return x

    assert fit(1, verbose=True) == 1
    assert fit(1, verbose=False) == 1
    assert fit(1) == 1
    assert calls == [True]
    assert runs(store, "fit")[0].params == {"x": 1}


def test_ignore_must_name_a_parameter() -> None:
    with pytest.raises(StepDefinitionError, match="verbos"):
        @lineage.step(ignore=["verbos"])
        def fit(x: int, verbose: bool = False) -> int:
            return x


# -- outputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        None,
        3,
        2.5,
        "text",
        True,
        b"raw bytes",
        [1, "a", None],
        {"value": 3},  # looks like a wrapped scalar, but is a dict
        {"value": 3, "other": 1},
        (1, "a", [2, 3]),
        (1, None, 2),
        (None,),
        (),
        ({"a": 1}, b"x"),
    ],
    ids=repr,
)
def test_output_comes_back_equal_on_a_hit(store: Store, value: Any) -> None:
    calls = []

    @lineage.step(store=store)
    def produce(tag: str) -> Any:
        calls.append(tag)
        return value

    first = produce("t")
    again = produce("t")
    assert len(calls) == 1
    expected = value
    if isinstance(value, tuple):  # tuple items go through their own adapters
        expected = tuple(list(v) if isinstance(v, tuple) else v for v in value)
    assert first == value
    assert again == expected
    assert type(again) is type(value)


def test_tuple_outputs_are_stored_one_by_one(store: Store) -> None:
    @lineage.step(store=store)
    def split(n: int) -> tuple[list[int], list[int]]:
        return list(range(n)), list(range(n, 2 * n))

    split(3)
    recorded = runs(store, "split")[0]
    assert set(recorded.outputs) == {"return.0", "return.1"}
    assert store.load(store._artifact(recorded.outputs["return.1"])) == [3, 4, 5]


def test_path_output_is_restored_on_a_hit(store: Store, tmp_path: Path) -> None:
    calls = []
    out = tmp_path / "out" / "model.bin"

    @lineage.step(store=store)
    def train(size: int) -> Path:
        calls.append(size)
        out.parent.mkdir(exist_ok=True)
        out.write_bytes(bytes(range(256)) * size)
        return out

    assert train(3) == out
    out.unlink()
    assert train(3) == out  # a hit: the file comes back from the store
    assert calls == [3]
    assert out.read_bytes() == bytes(range(256)) * 3
    recorded = runs(store, "train")[0]
    assert store.read_bytes(store._artifact(recorded.outputs["return"])) == out.read_bytes()


def test_unstorable_output_fails_the_call_with_a_typed_error(store: Store) -> None:
    @lineage.step(store=store)
    def make(x: int) -> object:
        return object()

    with pytest.raises(UnsupportedValue, match="return"):
        make(1)


# -- bad inputs -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [object(), lambda: 1, {1, 2}], ids=["object", "lambda", "set"])
def test_argument_no_adapter_claims_raises_naming_it(store: Store, bad: Any) -> None:
    calls = []

    @lineage.step(store=store)
    def use(threshold: float, model: Any) -> float:
        calls.append(model)
        return threshold

    with pytest.raises(UnsupportedValue, match="'model'"):
        use(0.5, bad)
    assert calls == []
    assert store.runs(op="use") == []


def test_wrong_call_signature_raises_type_error_like_the_function(store: Store) -> None:
    def plain(x: int, *, scale: int = 1) -> int:
        return x * scale

    wrapped = lineage.step(store=store)(plain)
    for args, kwargs in [((), {}), ((1, 2), {}), ((1,), {"x": 1}), ((1,), {"bogus": 2}),
                         ((), {"scale": 2})]:
        with pytest.raises(TypeError):
            plain(*args, **kwargs)
        with pytest.raises(TypeError):
            wrapped(*args, **kwargs)
    assert wrapped(2, scale=3) == 6
    assert len(store.runs(op="plain")) == 1


def test_variadic_arguments_are_recorded_by_position_and_name(store: Store) -> None:
    calls = []

    @lineage.step(store=store)
    def total(*values: int, **weights: int) -> int:
        calls.append(values)
        return sum(values) + sum(weights.values())

    assert total(1, 2, w=3) == 6
    assert total(1, 2, w=3) == 6
    assert total(2, 1, w=3) == 6
    assert len(calls) == 2
    assert runs(store, "total")[0].params == {"values.0": 1, "values.1": 2, "w": 3}


def test_method_steps_work(store: Store) -> None:
    class Model:
        factor = 3

        @lineage.step(store=store, ignore=["self"])
        def predict(self, x: int) -> int:
            return x * self.factor

    assert Model().predict(2) == 6
    assert Model().predict(2) == 6
    assert len(store.runs(op="predict")) == 1


# -- explain ----------------------------------------------------------------------------


def test_explain_hit_and_misses(store: Store, tmp_path: Path) -> None:
    @lineage.step(store=store)
    def prep(data: Path, *, drop_na: bool = True, seed: int = 0) -> int:
        return len(data.read_bytes())

    data = tmp_path / "raw.csv"
    data.write_text("x\n1\n")

    nothing = store.explain(prep, data)
    assert not nothing.hit and nothing.nearest is None and nothing.changes == []
    assert "no earlier" in str(nothing)

    prep(data)
    hit = store.explain(prep, data)
    assert hit.hit and hit.run == runs(store, "prep")[0]
    assert "hit" in str(hit)

    param = store.explain(prep, data, drop_na=False)
    assert not param.hit
    assert param.changes == ["param 'drop_na': True -> False"]
    assert param.nearest == runs(store, "prep")[0]
    assert param.to_dict()["nearest"] == runs(store, "prep")[0].digest

    data.write_text("x\n2\n")
    changed = store.explain(prep, data)
    assert changed.changes == ["input 'data': content changed"]
    assert "input 'data'" in str(changed)

    prep(data, seed=1)  # nearest is the one that differs least
    both = store.explain(prep, data, seed=1, drop_na=False)
    assert both.nearest == runs(store, "prep")[-1]
    assert both.changes == ["param 'drop_na': True -> False"]


def test_explain_names_a_code_change(store: Store, tmp_path: Path) -> None:
    template = (
        "import lineage\n"
        "@lineage.step(name='clean')\n"
        "def clean(x):\n"
        "    return x + {n}\n"
    )
    old = load_module(tmp_path / "clean_v1.py", "clean_v1", template.format(n=1))
    new = load_module(tmp_path / "clean_v2.py", "clean_v2", template.format(n=2))
    with store:
        old.clean(1)
        explained = store.explain(new.clean, 1)
        assert not explained.hit
        assert explained.changes == ["code: the step's source (or version=) changed"]
        assert len(explained.changes) == 1


def test_explain_refuses_a_plain_function(store: Store) -> None:
    with pytest.raises(TypeError, match="step"):
        store.explain(len, [1])


def test_explain_ignores_failed_runs(store: Store) -> None:
    @lineage.step(store=store)
    def boom(x: int) -> int:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        boom(1)
    explained = store.explain(boom, 1)
    assert not explained.hit and explained.nearest is None


# -- nesting ----------------------------------------------------------------------------


def test_nested_steps_record_child_of(store: Store) -> None:
    inner_calls = []

    @lineage.step(store=store)
    def inner(x: int) -> int:
        inner_calls.append(x)
        return x + 1

    @lineage.step(store=store)
    def outer(x: int, tag: str) -> int:
        return inner(x) * 2

    assert outer(1, "a") == 4
    parent, child = runs(store, "outer")[0], runs(store, "inner")[0]
    assert child.parent == parent.id
    assert has_child_edge(store, parent, child)

    assert outer(1, "b") == 4  # new outer call; the inner call is a cache hit
    assert inner_calls == [1]
    second = runs(store, "outer")[1]
    assert has_child_edge(store, second, child)
    assert len(store.runs(op="inner")) == 1


def test_step_inside_a_run_is_its_child_and_hits_are_linked(store: Store) -> None:
    calls = []

    @lineage.step
    def featurize(x: int) -> int:
        calls.append(x)
        return x * 10

    with store.run("experiment") as run:
        assert featurize(1) == 10
    experiment = run.record
    assert experiment is not None
    child = runs(store, "featurize")[0]
    assert child.parent == experiment.id
    assert has_child_edge(store, experiment, child)

    with store.run("experiment-again") as again:
        assert featurize(1) == 10  # a hit: nothing written until the run commits
    assert calls == [1]
    assert again.record is not None
    assert has_child_edge(store, again.record, child)
    assert len(store.runs(op="featurize")) == 1


# -- concurrency -------------------------------------------------------------------------


@lineage.step(name="slow_square", ignore=["barrier"])
def _slow_square(x: int, barrier: Any = None) -> list[int]:
    if barrier is not None:
        barrier.wait(timeout=30)  # both processes are inside the body: both missed
    return [x * x, os.getpid()]


def _call_in_child(path: str, barrier: Any, results: Any) -> None:
    store = lineage.open(path)
    try:
        value = _slow_square(7, barrier=barrier)
        results.put(("ok", value[0]))
    except BaseException as exc:  # report anything to the parent
        results.put(("error", repr(exc)))
    finally:
        store.close()


def test_same_key_from_two_processes_records_a_consistent_result(
    store: Store, tmp_path: Path
) -> None:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(2)
    results = context.Queue()
    workers = [context.Process(target=_call_in_child, args=(store.path, barrier, results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert outcomes == [("ok", 49), ("ok", 49)]

    report = store.verify()
    assert report.ok, report
    plan = _slow_square.plan(store, 7)
    with store._read() as txn:
        found = txn.get("call_keys", plan.key)
    assert found is not None
    recorded = store.resolve(Digest(found))
    assert isinstance(recorded, Run) and recorded.status == "ok"
    square, pid = store.load(store._artifact(recorded.outputs["return"]))
    assert square == 49 and pid in {w.pid for w in workers}
    assert {r.status for r in store.runs(op="slow_square")} == {"ok"}
    with store:
        assert _slow_square(7) == [49, pid]  # the parent now hits the recorded run


# -- which store ----------------------------------------------------------------------------


def test_default_store_resolution_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LINEAGE_HOME", str(tmp_path / "home"))

    @lineage.step
    def ping(x: int) -> int:
        return x

    passed = lineage.open(tmp_path / "passed")
    explicit = lineage.step(name="ping", store=passed)(ping.function)
    by_path = lineage.step(name="ping", store=tmp_path / "by_path")(ping.function)
    first = lineage.open(tmp_path / "first")
    entered = lineage.open(tmp_path / "entered")
    latest = lineage.open(tmp_path / "latest")
    try:
        ping(1)
        assert len(latest.runs(op="ping")) == 1  # the most recent lineage.open()
        assert first.runs(op="ping") == []
        with entered:
            ping(2)
            with latest.run("r"):
                ping(3)  # the active run's store beats `with entered:`
            explicit(4)  # a passed store beats everything
        assert entered.closed  # `with store:` closes it on exit
        with open_store(tmp_path / "entered") as reopened:
            assert [r.params["x"] for r in reopened.runs(op="ping")] == [2]
        assert [r.params["x"] for r in latest.runs(op="ping")] == [3, 1]
        assert [r.params["x"] for r in passed.runs(op="ping")] == [4]
        by_path(6)
        assert [r.params["x"] for r in by_path.store().runs(op="ping")] == [6]
        assert default_store() is latest  # a step's own store is not made the default
    finally:
        by_path.store().close()
        for opened in (passed, first, latest, entered):
            opened.close()

    ping(5)  # every opened store is closed: LINEAGE_HOME
    try:
        assert default_store().path == str(tmp_path / "home")
        assert [r.params["x"] for r in default_store().runs(op="ping")] == [5]
    finally:
        default_store().close()


def test_default_store_falls_back_to_dot_lineage(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LINEAGE_HOME", raising=False)
    monkeypatch.setattr(lineage.context, "_last_opened", [])

    @lineage.step
    def pong(x: int) -> int:
        return x

    pong(1)
    try:
        assert (tmp_path / ".lineage").is_dir()
        assert len(default_store().runs(op="pong")) == 1
    finally:
        default_store().close()


# -- the fast parameter encoding --------------------------------------------------------------

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
    st.sampled_from([0.0, -0.0, 2**63 - 1, -(2**63), 2**63, 2**64, -(2**63) - 1]),
    st.text(),
)


@given(st.dictionaries(st.text(), _scalars))
def test_scalar_params_encoding_matches_the_canonical_encoder(params: dict[str, Any]) -> None:
    fast = scalar_params_encoding(params)
    assert fast is None or fast == encoding.encode([{}, params])


@given(st.dictionaries(st.text(), st.one_of(st.none(), st.booleans(), st.text(),
                                             st.integers(-(2**63), 2**63 - 1),
                                             st.floats(allow_nan=False).filter(bool))))
def test_scalar_params_encoding_takes_the_fast_path_for_ordinary_values(
    params: dict[str, Any],
) -> None:
    assert scalar_params_encoding(params) == encoding.encode([{}, params])


def test_non_unicode_param_raises_unsupported_value(store: Store) -> None:
    @lineage.step(store=store)
    def echo(text: str) -> str:
        return text

    with pytest.raises(UnsupportedValue):
        echo("\ud800")


# -- values through adapters ------------------------------------------------------------------


def test_array_argument_is_taken_by_content_whatever_its_layout(store: Store) -> None:
    import numpy as np

    calls = []

    @lineage.step(store=store)
    def total(values: Any, *, scale: Any = 1) -> Any:
        calls.append(values)
        return values.sum(axis=0) * scale

    c_order = np.arange(12, dtype=np.float64).reshape(3, 4)
    fortran = np.asfortranarray(c_order)
    first = total(c_order)
    assert (total(fortran) == first).all()  # same values, other layout: a hit
    assert (total(c_order[:, :]) == first).all()
    assert len(calls) == 1
    assert isinstance(total(c_order), np.ndarray)
    total(c_order.astype(np.float32))  # same numbers, other dtype: a miss
    changed = c_order.copy()
    changed[2, 3] = -1
    total(changed)
    total(c_order, scale=np.int64(2))  # a numpy scalar is a param
    assert len(calls) == 4
    recorded = runs(store, "total")
    assert recorded[-1].params == {"scale": 2}
    assert set(recorded[0].inputs) == {"values"}
    assert store.explain(total, c_order, scale=2).hit


def test_dataframe_argument_and_output(store: Store) -> None:
    import pandas as pd

    calls = []

    @lineage.step(store=store)
    def clean(frame: Any, column: str) -> Any:
        calls.append(column)
        return frame.dropna(subset=[column]).reset_index(drop=True)

    frame = pd.DataFrame({"age": [30.0, None, 50.0], "label": [0, 1, 1]})
    first = clean(frame, "age")
    again = clean(frame.copy(), "age")
    assert len(calls) == 1
    pd.testing.assert_frame_equal(again, first)
    frame.loc[0, "age"] = 31.0
    clean(frame, "age")
    assert len(calls) == 2


def test_a_dict_of_arrays_is_one_output_per_key_and_comes_back_whole(store: Store) -> None:
    calls = []

    @lineage.step(store=store)
    def split(n: int) -> dict:
        calls.append(n)
        return {"X": np.arange(n * 2).reshape(n, 2), "y": np.arange(n), "note": "ok"}

    first = split(3)
    again = split(3)
    assert calls == [3]
    assert list(again) == ["X", "y", "note"]
    np.testing.assert_array_equal(again["X"], first["X"])
    np.testing.assert_array_equal(again["y"], first["y"])
    assert again["note"] == "ok"
    run = store.runs(op="split")[0]
    assert sorted(run.outputs) == ["return.X", "return.note", "return.y"]


def test_steps_without_source_are_told_apart_by_their_bytecode(store: Store) -> None:
    results = []
    for body in ("return x + 1", "return x + 2"):
        namespace: dict[str, Any] = {}
        exec(f"def bump(x):\n    {body}\n", namespace)  # noqa: S102 - no source file on purpose
        results.append(lineage.step(namespace["bump"], store=store)(1))
    assert results == [2, 3]


def test_bytes_and_a_path_with_the_same_content_are_different_calls(
    store: Store, tmp_path: Path
) -> None:
    @lineage.step(store=store)
    def describe(value: Any) -> str:
        return type(value).__name__

    file = tmp_path / "hello.txt"
    file.write_bytes(b"hello")
    assert describe(b"hello") == "bytes"
    assert describe(file) == "PosixPath"


def test_an_output_file_edited_since_it_was_recorded_is_never_silently_restored(
    store: Store, tmp_path: Path
) -> None:
    calls = []
    report = tmp_path / "report.txt"

    @lineage.step(store=store)
    def write_report(n: int) -> Path:
        calls.append(n)
        report.write_text(f"n={n}\n")
        return report

    write_report(1)
    report.unlink()
    assert write_report(1).read_text() == "n=1\n"  # missing: restored from the store
    assert calls == [1]
    report.write_text("n=1\nhand-written notes\n")
    write_report(1)  # edited: a miss, so the step runs (it owns the file), no silent restore
    assert calls == [1, 1]


def test_a_miss_returns_what_a_hit_returns(store: Store) -> None:
    @lineage.step(store=store)
    def summarize(n: int) -> tuple[Any, ...]:
        return [(1, n)], np.float32(0.5), {"b": 2, "a": (1,)}

    first = summarize(1)
    again = summarize(1)
    assert first == again
    assert [type(v) for v in first] == [type(v) for v in again]
