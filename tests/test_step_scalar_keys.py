"""The scalar-call shortcut of ``@lineage.step``: a keyword-less call whose arguments are all
str/int/float/bool/None finds its call key by ``(types, args)`` instead of re-encoding.

Every case here is one where equal-looking arguments must *not* share a key (``1``, ``1.0``
and ``True``; ``0``, ``0.0`` and ``False``), or where the shortcut must stand aside (mutable
defaults, keywords), or where a hit must behave exactly like one through the full path.
Each test counts how often the step's body runs, on a real LMDB store.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
from hypothesis import given

import lineage
from lineage.context import pop_store as pop_default_store
from lineage.context import push_store as push_default_store
from lineage.storage.schema import EDGE_CHILD
from lineage.store import Store


def test_equal_numbers_of_different_types_are_different_calls(store: Store) -> None:
    calls: list[Any] = []

    @lineage.step(store=store)
    def describe(x: Any) -> str:
        calls.append(x)
        return f"{type(x).__name__}:{x!r}"

    for _ in range(3):  # the second and third rounds are hits
        assert describe(1) == "int:1"
        assert describe(1.0) == "float:1.0"
        assert describe(True) == "bool:True"
        assert describe("1") == "str:'1'"
    assert [type(c) for c in calls] == [int, float, bool, str]


def test_zeros_of_different_types_are_different_calls(store: Store) -> None:
    calls: list[Any] = []

    @lineage.step(store=store)
    def describe(x: Any) -> str:
        calls.append(x)
        return f"{type(x).__name__}:{x!r}"

    for _ in range(2):
        assert describe(0) == "int:0"
        assert describe(0.0) == "float:0.0"
        assert describe(False) == "bool:False"
        assert describe(-0.0) == "float:0.0"  # the canonical encoding stores -0.0 as 0.0
    assert [type(c) for c in calls] == [int, float, bool]


def test_nan_argument_hits_and_returns_the_recorded_value(store: Store) -> None:
    calls: list[float] = []

    @lineage.step(store=store)
    def is_nan(x: float) -> bool:
        calls.append(x)
        return math.isnan(x)

    nan = float("nan")
    assert is_nan(nan) is True
    assert is_nan(nan) is True
    assert is_nan(float("nan")) is True  # another NaN object: the full path, same key
    assert len(calls) == 1


def test_mutable_default_changes_are_seen(store: Store) -> None:
    calls: list[list[int]] = []
    options: list[int] = []

    @lineage.step(store=store)
    def total(x: int, extra: list[int] = options) -> int:  # noqa: B006 - the point of the test
        calls.append(list(extra))
        return x + sum(extra)

    assert total(1) == 1
    assert total(1) == 1
    options.append(5)
    assert total(1) == 6  # a miss: the default's content is part of the key
    assert calls == [[], [5]]


def test_keywords_and_positions_give_the_same_call(store: Store) -> None:
    calls: list[tuple[int, int]] = []

    @lineage.step(store=store)
    def add(x: int, y: int = 2) -> int:
        calls.append((x, y))
        return x + y

    assert add(1, 2) == 3
    assert add(1) == 3
    assert add(1, y=2) == 3
    assert add(x=1) == 3
    assert calls == [(1, 2)]
    assert add(1, 3) == 4
    assert calls == [(1, 2), (1, 3)]


def test_a_shortcut_hit_returns_a_fresh_value_and_is_linked_to_the_enclosing_run(
        store: Store) -> None:
    calls: list[int] = []

    @lineage.step(store=store)
    def settings(n: int) -> dict[str, Any]:
        calls.append(n)
        return {"n": n, "tags": ["a"]}

    first = settings(4)
    first["tags"].append("mutated")
    assert settings(4) == {"n": 4, "tags": ["a"]}
    with store.run("outer") as run:
        assert settings(4) == {"n": 4, "tags": ["a"]}
    assert calls == [4]
    step_run = store.runs(op="settings")[0]
    assert run.record is not None
    with store._read() as txn:
        edge = run.record.raw_digest + EDGE_CHILD + step_run.raw_digest
        assert txn.get("edges_out", edge) is not None


def test_the_same_step_in_two_stores_keeps_their_memos_apart(tmp_path: Path) -> None:
    calls: list[str] = []

    @lineage.step
    def greet(name: str) -> str:
        calls.append(name)
        return f"hello {name}"

    first = lineage.open(tmp_path / "a")
    second = lineage.open(tmp_path / "b")
    try:
        for _ in range(2):  # alternate: each store's first call runs, its second hits
            for current in (first, second):
                token = push_default_store(current)
                try:
                    assert greet("x") == "hello x"
                finally:
                    pop_default_store(token)
        assert calls == ["x", "x"]
        assert len(first.runs(op="greet")) == len(second.runs(op="greet")) == 1
    finally:
        first.close()
        second.close()


scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=True), st.text(max_size=5))


@given(st.lists(st.tuples(scalars, scalars), min_size=1, max_size=6))
def test_every_scalar_call_gets_the_key_the_full_path_computes(
        calls: list[tuple[Any, Any]]) -> None:
    store = lineage.open(":memory:")
    try:
        @lineage.step(store=store)
        def pair(a: Any, b: Any = None) -> None:
            return None

        for a, b in calls * 2:  # the second pass goes through the shortcut
            scalar = pair._scalar_call((a, b))
            expected = pair.plan(store, a, b).key
            pair(a, b)
            if scalar is not None:
                assert pair._scalar_keys[scalar] == expected
    finally:
        store.close()


tricky = st.sampled_from([0, 0.0, -0.0, False, True, 1, 1.0, -1, "", "0", None, float("nan"),
                          float("inf"), 2**63 - 1, 2**63, float(2**63), 2**64])


@given(st.one_of(tricky, scalars), st.one_of(tricky, scalars))
def test_calls_sharing_a_shortcut_share_the_key(x: Any, y: Any) -> None:
    store = lineage.open(":memory:")
    try:
        @lineage.step(store=store)
        def one(a: Any) -> None:
            return None

        sx, sy = one._scalar_call((x,)), one._scalar_call((y,))
        if sx is not None and sx == sy:
            assert one.plan(store, x).key == one.plan(store, y).key
    finally:
        store.close()
