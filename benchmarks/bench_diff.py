"""Queries and the lineage diff: cost grows with the change and the answer, not the store.

Four groups of measurements, each beside its reference in the same run:

- ``store.diff("model@v1.0", "model@v1.1")`` on a small healthcare lineage (two dataset
  versions, a test set, two training runs with their evaluations) with 1k, then 100k
  unrelated runs in the store;
- ``store.ancestors`` of a node in a 100k- then 500k-record history (1M with
  ``LINEAGE_BENCH_HISTORY=1e6``), time and peak Python memory (tracemalloc), against the
  cheapest networkx route: load every data-flow edge of the store into a
  ``networkx.DiGraph`` and call ``networkx.ancestors``;
- ``store.runs(params={"C": 0.5}, metrics={"sensitivity": (">", 0.9)})`` over 10k runs, and
  over the same 2k runs as MLflow's ``search_runs`` (run in a subprocess on its default
  SQLite store under ``benchmarks/.work/``, telemetry off);
- a dataset diff of 1M rows with 1 % of rows edited, against fingerprinting both frames with
  ``pandas.util.hash_pandas_object``; and, on 500k-row versions with and without a key
  column, the cost of showing 5 example rows per side against counts only (≤ 6×).

Bulk history is written as records straight through ``index_record`` in large transactions
(what the tracking API writes, minus one fsync per run). ``python benchmarks/bench_diff.py
mlflow SPEC`` is the MLflow side, run by :func:`_mlflow_search`.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import peers
from harness import Context, Row, format_value, limit_row, remove, speed_row, time_once

SECTION = "diff"
T0 = 1_700_000_000.0
BATCH = 20_000
C_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
QUERY = {"params": {"C": 0.5}, "metrics": {"sensitivity": (">", 0.9)}}
MLFLOW_FILTER = peers.MLFLOW_FILTER
FEATURES = ["age", "x1", "x2", "x3"]
#: Records in the big ancestors history. 1M takes ~3 min to write on 2 busy cores (records
#: are canonically encoded in Python), too long for this section: set LINEAGE_BENCH_HISTORY.
HISTORY = 500_000


def run(ctx: Context) -> list[Row]:
    """All query and diff measurements."""
    import lineage  # noqa: F401

    rows: list[Row] = []
    rows += _diff_vs_history(ctx)
    rows += _runs_query(ctx)
    rows += _dataset_diff(ctx)
    rows += _ancestors(ctx)
    return rows


# -- shared helpers ----------------------------------------------------------------------------


def _open(path: Path) -> Any:
    import lineage

    remove(path)
    return lineage.open(path)


def _write(store: Any, records: list[Any]) -> None:
    """Index ``records`` in transactions of :data:`BATCH` records."""
    from lineage.storage.schema import index_record

    for start in range(0, len(records), BATCH):
        batch = records[start:start + BATCH]
        store._write(lambda txn, b=batch: [index_record(txn, r) for r in b])


def _fast_repeat(ctx: Context) -> int:
    return 7 if ctx.quick else 15


def _times(fn: Callable[[], Any], repeat: int) -> list[float]:
    """``repeat`` timed calls, each after a full garbage collection."""
    found = []
    for _ in range(repeat):
        gc.collect()
        found.append(time_once(fn)[0])
    return found


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    """Peak Python memory (bytes, tracemalloc) allocated while ``fn`` runs, and its result."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


def _scale_row(measurement: str, big: list[float], small: list[float], small_label: str,
               at_most: float, note: str = "") -> Row:
    """Times at the large size beside the same at the small size; ratio = big / small
    (medians), at most ``at_most`` when the cost follows the answer, not the store."""
    big_m, small_m = statistics.median(big), statistics.median(small)
    ratio = big_m / small_m if small_m > 0 else None
    ok = None if ratio is None else ratio <= at_most
    return Row(SECTION, measurement, big_m, "s", small_m, small_label, ratio,
               f"≤ {at_most:g}×", ok, note, ours_samples=big, ref_samples=small,
               ref_kind="limit")


def _count(n: int) -> str:
    return f"{n // 1_000_000}M" if n >= 1_000_000 and not n % 1_000_000 else (
        f"{n // 1000}k" if n >= 1000 and not n % 1000 else str(n))


# -- 1. diff with unrelated history ------------------------------------------------------------


def _patients(n: int, seed: int) -> Any:
    import pandas as pd

    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    outcome = (x1 + 0.5 * x2 - 0.3 * x3 + rng.normal(scale=0.5, size=n) > 0.3).astype("int64")
    return pd.DataFrame({"pid": np.arange(seed * 1_000_000, seed * 1_000_000 + n),
                         "age": rng.integers(20, 90, n), "x1": x1, "x2": x2, "x3": x3,
                         "site": rng.choice(["north", "south", "east", "west"], n),
                         "outcome": outcome})


def _train(store: Any, version: str, c: float) -> None:
    from sklearn.linear_model import LogisticRegression

    with store.run("train", params={"C": c}) as run:
        data = store.load(f"dataset@{version}")
        model = LogisticRegression(C=c).fit(data[FEATURES], data["outcome"])
        run.log_model(model, name="model", version=version)
        test = store.load("testset@v1")
        run.log_evaluation(test["outcome"], model.predict(test[FEATURES]),
                           dataset="testset@v1")


def _healthcare(store: Any) -> Any:
    """dataset v1.0 -> v1.1 (100 rows removed, 400 added), C 1.0 -> 0.5, one test set."""
    import pandas as pd

    base = _patients(5000, 1)
    store.add(base, name="dataset", version="v1.0", target="outcome")
    store.add(pd.concat([base.iloc[100:], _patients(400, 3)], ignore_index=True),
              name="dataset", version="v1.1", target="outcome")
    store.add(_patients(1000, 2), name="testset", version="v1", target="outcome")
    _train(store, "v1.0", 1.0)
    _train(store, "v1.1", 0.5)
    return store.runs("train")[0].environment


def _unrelated(start: int, stop: int, environment: Any) -> list[Any]:
    """Runs of other projects (each with its output artifact) sharing only the environment."""
    from lineage.core.records import Artifact, Run

    sources = [Artifact(kind="dataset", name=f"source{k}", summary={"rows": 1000 + k})
               for k in range(100)]
    found: list[Any] = sources[:] if start == 0 else []
    ops = ("preprocess", "train", "evaluate")
    for i in range(start, stop):
        output = Artifact(kind="model", name=f"other{i % 50}", summary={"seed": i})
        found += [output, Run(
            op=ops[i % 3], id=f"unrelated{i:09d}", inputs={"data": sources[i % 100].raw_digest},
            outputs={"return": output.raw_digest}, params={"C": C_GRID[i % 10], "seed": i},
            metrics={"auc": 0.5 + (i % 500) / 1000}, environment=environment,
            started=T0 + i, ended=T0 + i + 1)]
    return found


def _diff_vs_history(ctx: Context) -> list[Row]:
    small, big = 1000, 5_000 if ctx.quick else 100_000
    store = _open(ctx.work / "store-diff-history")
    try:
        ctx.log("healthcare lineage (two datasets, two training runs, evaluations)")
        environment = _healthcare(store)

        def diff() -> Any:
            return store.diff("model@v1.0", "model@v1.1")

        timings = {}
        for before, count in ((0, small), (small, big)):
            ctx.log(f"{count - before} unrelated runs")
            _write(store, _unrelated(before, count, environment))
            found = diff()
            assert found.summary.causes == ("data", "hyperparameters"), found.summary.causes
            timings[count] = _times(diff, _fast_repeat(ctx))
    finally:
        store.close()
        remove(ctx.work / "store-diff-history")
    ctx.note(
        f"diff: model@v1.0 vs model@v1.1 (5000-row dataset v1.0 -> v1.1: 100 rows removed, "
        f"400 added; C 1.0 -> 0.5; one 1000-row test set; causes found: data, hyperparameters), "
        f"with 5 example rows per side, {_fast_repeat(ctx)} rounds; unrelated runs each have "
        "an output artifact, read one of 100 other datasets and share the environment "
        "artifact. Ratio = time with the big history / time with 1k."
    )
    return [
        Row(SECTION, f"diff model@v1.0 vs v1.1, {_count(small)} unrelated runs",
            statistics.median(timings[small]), "s", ours_samples=timings[small]),
        _scale_row(f"diff model@v1.0 vs v1.1, {_count(big)} unrelated runs", timings[big],
                   timings[small], f"{_count(small)} runs", 2),
    ]


# -- 2. run queries beside MLflow ---------------------------------------------------------------


def _run_specs(n: int) -> list[dict[str, Any]]:
    """``n`` training runs of a sweep: C on a 10-value grid, sensitivity ~ N(0.82, 0.06)."""
    rng = np.random.default_rng(11)
    return [{"C": C_GRID[int(rng.integers(len(C_GRID)))], "seed": i,
             "sensitivity": float(np.clip(rng.normal(0.82, 0.06), 0, 1)),
             "specificity": float(np.clip(rng.normal(0.85, 0.05), 0, 1)),
             "started": T0 + 60 * i} for i in range(n)]


def _sweep_runs(specs: list[dict[str, Any]], data: list[Any]) -> list[Any]:
    from lineage.core.records import Run

    return [Run(op="train", id=f"sweep{s['seed']:08d}",
                inputs={"dataset": data[s["seed"] % len(data)].raw_digest},
                params={"C": s["C"], "penalty": "l2", "seed": s["seed"]},
                metrics={"sensitivity": s["sensitivity"], "specificity": s["specificity"]},
                started=s["started"], ended=s["started"] + 30) for s in specs]


def _runs_query(ctx: Context) -> list[Row]:
    from lineage.core.records import Artifact

    n, n_peer = (2000, 500) if ctx.quick else (10_000, 2000)
    specs = _run_specs(n)
    data = [Artifact(kind="dataset", name="cohort", summary={"rows": 10_000 + k})
            for k in range(20)]
    store = _open(ctx.work / "store-runs")
    timings, counts = {}, {}
    try:
        ctx.log(f"{n} training runs for store.runs()")
        for before, count in ((0, n_peer), (n_peer, n)):
            _write(store, (data if before == 0 else []) + _sweep_runs(specs[before:count], data))
            counts[count] = len(store.runs(**QUERY))
            timings[count] = _times(lambda: store.runs(**QUERY), 3 * _fast_repeat(ctx))
    finally:
        store.close()
        remove(ctx.work / "store-runs")
    peer_store = _open(ctx.work / "store-runs-peer")  # the same 2k runs alone, for rounds
    _write(peer_store, data + _sweep_runs(specs[:n_peer], data))
    peer_store.close()
    expected = sum(s["C"] == 0.5 and s["sensitivity"] > 0.9 for s in specs[:n_peer])
    assert counts[n_peer] == expected, (counts[n_peer], expected)
    peer = peers.search_rounds(ctx, specs[:n_peer], ctx.work / "store-runs-peer", QUERY)
    rows = [limit_row(SECTION, f"store.runs(params, metrics) over {_count(n)} runs "
                      f"({counts[n]} match)", timings[n], "s", 0.005)]
    if peer is None:
        remove(ctx.work / "store-runs-peer")
        rows.append(limit_row(SECTION, f"store.runs(params, metrics) over {_count(n_peer)} runs",
                              timings[n_peer], "s", 0.005))
        return rows
    remove(ctx.work / "store-runs-peer")
    assert peer["count"] == counts[n_peer], (peer["count"], counts[n_peer])
    rows.append(speed_row(
        SECTION, f"store.runs(...) vs mlflow.search_runs, same {_count(n_peer)} runs "
        f"({counts[n_peer]} match)", peer["ours"], peer["search_s"], "mlflow.search_runs",
        at_least=100))
    per_run = peer["created_s"] / n_peer * 1e3
    when = "by this run" if peer["created_now"] else "by an earlier run"
    ctx.note(
        f"runs: {QUERY} (MLflow: \"{MLFLOW_FILTER}\") over a sweep of training runs, C on a "
        "10-value grid, sensitivity ~ N(0.82, 0.06); per round: the median of "
        f"{peer['repeat']} of our queries (in a store holding just those runs), then the median "
        f"of {peer['repeat']} mlflow.search_runs (MLflow {peer['version']}, a DataFrame, its "
        "default SQLite store) in a warm subprocess; MlflowClient.search_runs: "
        f"{format_value(statistics.median(peer['client_search_s']), 's')}. MLflow gets "
        f"{_count(n_peer)} runs, not {_count(n)}: creating a run (create_run, log_batch, "
        f"set_terminated) took {per_run:.0f} ms even with SQLite synchronous=OFF (set only "
        "while creating), so its store is created once and reused from benchmarks/.work/ "
        f"(created {when} in {peer['created_s']:.0f} s)."
    )
    return rows


# -- 3. dataset diff ----------------------------------------------------------------------------


def _edited(n: int, seed: int) -> tuple[Any, Any]:
    """A cohort of ``n`` rows and a copy with 1 % of the rows edited in place (x1 + 1)."""
    old = _patients(n, seed)
    new = old.copy()
    edited = np.random.default_rng(seed + 1).choice(n, n // 100, replace=False)
    new.loc[edited, "x1"] = new.loc[edited, "x1"] + 1.0
    return old, new


def _diff_costs(ctx: Context, old: Any, new: Any, name: str
                ) -> tuple[list[float], list[float], Any]:
    """Counts-only and 5-example-rows times (one per round, interleaved) of a diff of two
    stored versions, and the example diff's dataset part."""
    store = _open(ctx.work / f"store-{name}")
    try:
        store.add(old, name=name, version="v1", target="outcome")
        store.add(new, name=name, version="v2", target="outcome")

        def diff(examples: int) -> Any:
            return store.diff(f"{name}@v1", f"{name}@v2", examples=examples)

        found = diff(5).artifacts[0].dataset
        counts_s, examples_s = [], []
        for _ in range(ctx.rounds):
            counts_s += _times(lambda: diff(0), 1)
            examples_s += _times(lambda: diff(5), 1)
    finally:
        store.close()
        remove(ctx.work / f"store-{name}")
    return counts_s, examples_s, found


def _dataset_diff(ctx: Context) -> list[Row]:
    from pandas.util import hash_pandas_object

    n = 50_000 if ctx.quick else 1_000_000
    ctx.log(f"dataset diff of {_count(n)} rows, 1 % edited")
    old, new = _edited(n, 5)
    counts_s, examples_s, found = _diff_costs(ctx, old, new, "cohort")
    # pid is an obvious key: each edit is one row modified, shown with its old and new x1
    assert (found.rows_modified, found.rows_added, found.rows_removed) == (n // 100, 0, 0), found
    assert len(found.examples_modified) == 5
    raw_s = _times(lambda: (hash_pandas_object(old, index=False),
                            hash_pandas_object(new, index=False)), ctx.rounds)
    ctx.note(
        f"dataset diff: {_count(n)} rows × {old.shape[1]} columns (ints, floats, a string "
        f"column), {n // 100} rows edited in place. Ours compares the row fingerprints recorded "
        "when each version was added, then reads the pid column of each version (an obvious "
        "key: unique, complete, named like an id) to report the edits as rows modified; the "
        "raw reference only fingerprints both in-memory frames (no comparison, no store). "
        "With examples, only the Parquet row groups holding the 5 rows shown are read."
    )
    label = "hash_pandas_object × 2"
    rows = [
        speed_row(SECTION, f"dataset diff, {_count(n)} rows, 1 % edited (counts only)",
                  counts_s, raw_s, label),
        speed_row(SECTION, f"dataset diff, {_count(n)} rows, 1 % edited (+5 example rows)",
                  examples_s, raw_s, label),
    ]
    return rows + _example_rows(ctx)


def _example_rows(ctx: Context) -> list[Row]:
    """Issue 14 goal 4: 5 example rows per side cost ≤ 6× the counts-only diff, 500k rows."""
    n = 20_000 if ctx.quick else 500_000
    rows = []
    notes = []
    for keyed in (True, False):
        ctx.log(f"example rows vs counts, {_count(n)} rows, {'keyed' if keyed else 'no key'}")
        old, new = _edited(n, 7)
        if not keyed:
            old, new = old.drop(columns=["pid"]), new.drop(columns=["pid"])
        counts_s, examples_s, found = _diff_costs(ctx, old, new, "keyed" if keyed else "plain")
        shown = (len(found.examples_modified) if keyed
                 else len(found.examples_added) + len(found.examples_removed))
        assert shown == (5 if keyed else 10), found
        what = "5 rows modified" if keyed else "5 added + 5 removed"
        rows.append(_scale_row(f"diff {_count(n)} rows, {what} shown vs counts only",
                               examples_s, counts_s, "counts only", 6,
                               note=f"counts {statistics.median(counts_s) * 1e3:.1f} ms"))
        notes.append(f"{'keyed by pid' if keyed else 'without a key'}: counts only "
                     f"{statistics.median(counts_s) * 1e3:.1f} ms, with examples "
                     f"{statistics.median(examples_s) * 1e3:.1f} ms")
    ctx.note(
        f"example rows: two {_count(n)}-row versions stored as Parquet (row groups of "
        "65,536 rows), 1 % of rows edited in place; counts-only vs 5 example rows per side, "
        f"{ctx.rounds} rounds; " + "; ".join(notes) + ". Keyed, the counts-only diff also "
        "reads the pid column of both versions to pair edited rows."
    )
    return rows


# -- 4. ancestors in a big history ----------------------------------------------------------------


class _History:
    """A history of independent pipelines around target chains whose ancestry is known.

    Shared: one environment artifact used by every run, a code artifact per operation.
    A chain of ``length`` steps (run -> dataset, each run reading the previous dataset) has
    ``2 * length + 2`` ancestors at its end (runs, datasets, code, environment); each of its
    datasets also feeds a side branch (a run and its output: descendants, not ancestors).
    Filler pipelines: raw -> preprocess -> clean -> train -> model (5 records).
    """

    def __init__(self) -> None:
        from lineage.core.records import Artifact

        self.environment = Artifact(kind="environment", summary={"python": "3.11"})
        self.code = {op: Artifact(kind="code", summary={"qualname": op, "source": f"def {op}"})
                     for op in ("preprocess", "train", "step", "side")}
        self.written = 0
        self.pipelines = 0

    def shared(self) -> list[Any]:
        return [self.environment, *self.code.values()]

    def _run(self, op: str, key: str, inputs: dict[str, Any], output: Any, **fields: Any) -> Any:
        from lineage.core.records import Run

        return Run(op=op, id=key, inputs={k: v.raw_digest for k, v in inputs.items()},
                   outputs={"return": output.raw_digest}, code=self.code[op].raw_digest,
                   environment=self.environment.raw_digest, started=T0, ended=T0 + 1,
                   **fields)

    def chain(self, length: int) -> tuple[Any, list[Any]]:
        """The end of a chain of ``length`` steps, and the chain's records."""
        from lineage.core.records import Artifact

        current = Artifact(kind="dataset", summary={"chain": length, "step": 0})
        found = [current]
        for step in range(1, length + 1):
            made = Artifact(kind="dataset", summary={"chain": length, "step": step})
            side = Artifact(kind="report", summary={"chain": length, "side": step})
            found += [made, self._run("step", f"chain{length}-{step}", {"data": current}, made,
                                      params={"step": step}),
                      side, self._run("side", f"side{length}-{step}", {"data": current}, side)]
            current = made
        return current, found

    def filler(self, count: int) -> Iterator[list[Any]]:
        """Batches of independent pipelines, ``count`` records in all (rounded up)."""
        from lineage.core.records import Artifact

        batch: list[Any] = []
        goal = self.written + count
        while self.written < goal:
            i = self.pipelines
            self.pipelines += 1
            raw = Artifact(kind="dataset", summary={"pipeline": i, "stage": "raw"})
            clean = Artifact(kind="dataset", summary={"pipeline": i, "stage": "clean"})
            model = Artifact(kind="model", summary={"pipeline": i})
            batch += [raw, self._run("preprocess", f"prep{i:08d}", {"raw": raw}, clean,
                                     params={"drop_na": True}), clean,
                      self._run("train", f"train{i:08d}", {"data": clean}, model,
                                params={"C": C_GRID[i % 10]}, metrics={"auc": 0.7}), model]
            self.written += 5
            if len(batch) >= BATCH:
                yield batch
                batch = []
        if batch:
            yield batch


def _history_size() -> int:
    """Records in the big history: ``LINEAGE_BENCH_HISTORY``, else :data:`HISTORY`."""
    text = os.environ.get("LINEAGE_BENCH_HISTORY", "")
    return int(float(text)) if text else HISTORY


def _networkx_ancestors(store: Any, target: Any) -> set[bytes]:
    """Ancestors by way of a networkx graph of every data-flow edge of the store."""
    import networkx

    from lineage.storage.schema import EDGE_DERIVED, EDGE_GENERATED, EDGE_USED

    flow = (EDGE_USED, EDGE_GENERATED, EDGE_DERIVED)
    with store._read() as txn:
        edges = [(key[:16], key[17:]) for key, _ in txn.items("edges_out")
                 if key[16:17] in flow]
    graph = networkx.DiGraph()
    graph.add_edges_from(edges)
    return networkx.ancestors(graph, target.raw_digest)  # type: ignore[no-any-return]


def _ancestors(ctx: Context) -> list[Row]:
    from lineage.storage.schema import index_record

    small, big = (5_000, 20_000) if ctx.quick else (100_000, _history_size())
    history = _History()
    store = _open(ctx.work / "store-ancestors")
    figures: dict[tuple[str, int], Any] = {}
    try:
        ends = {}
        for length in (100, 1000):
            ends[length], records = history.chain(length)
            _write(store, records)
            history.written += len(records)
        _write(store, history.shared())
        history.written += len(history.shared())
        for size in (small, big):
            ctx.log(f"history of {_count(size)} records")
            start = time.perf_counter()
            for batch in history.filler(size - history.written):
                store._write(lambda txn, b=batch: [index_record(txn, r) for r in b])
            ctx.log(f"  written in {time.perf_counter() - start:.0f} s")
            for length, end in ends.items():
                answer = store.ancestors(end)
                assert len(answer) == 2 * length + 2, len(answer)
                figures["ours", size, length] = _times(lambda e=end: store.ancestors(e),
                                                       2 * _fast_repeat(ctx))
                figures["ours-mem", size, length] = _peak(lambda e=end: store.ancestors(e))[0]
            end = ends[100]
            elapsed, found = time_once(lambda e=end: _networkx_ancestors(store, e))
            assert found == {r.raw_digest for r in store.ancestors(end)}
            figures["nx", size] = [elapsed]
            if size == small:  # networkx on the big store takes ~10 s a call: rounds here only
                figures["nx", size] += [time_once(lambda e=end: _networkx_ancestors(store, e))[0]
                                        for _ in range(ctx.rounds - 1)]
            figures["nx-mem", size] = _peak(lambda e=end: _networkx_ancestors(store, e))[0]
            figures["records", size] = history.written
    finally:
        store.close()
        remove(ctx.work / "store-ancestors")
    return _ancestor_rows(ctx, small, big, figures)


def _ancestor_rows(ctx: Context, small: int, big: int, f: dict[Any, Any]) -> list[Row]:
    rows = []
    for size in (small, big):
        label = f"{_count(size)}-record store"
        ours = f["ours", size, 100]
        rows += [
            speed_row(SECTION, f"ancestors (202 records) in a {label}",
                      ours if len(f["nx", size]) == 1 else ours[:len(f["nx", size])],
                      f["nx", size], "networkx"),
            Row(SECTION, "  peak memory, same", f["ours-mem", size, 100], "B",
                f["nx-mem", size], "networkx", f["ours-mem", size, 100] / f["nx-mem", size]),
        ]
    rows += [
        _scale_row(f"ancestors (202), {_count(big)} vs {_count(small)} store",
                   f["ours", big, 100], f["ours", small, 100], f"{_count(small)} store", 2,
                   note=f"networkx: {min(f['nx', big]) / min(f['nx', small]):.1f}×"),
        _scale_row(f"ancestors (2002 records) in the {_count(big)}-record store",
                   f["ours", big, 1000], f["ours", big, 100], "202 records", 15,
                   note=f"peak {format_value(f['ours-mem', big, 1000], 'B')}"),
    ]
    ctx.note(
        f"ancestors: history of {_count(small)} then {_count(big)} records ({f['records', big]} "
        "exactly): independent pipelines raw -> preprocess -> clean -> train -> model sharing "
        "one environment artifact and per-operation code artifacts, plus two chains of 100 and "
        "1000 steps whose datasets each also feed a side branch. The answer: 2 × steps + 2 "
        "records (runs, datasets, code, environment). networkx = read every data-flow edge key "
        "from the store into a DiGraph (no attributes: its cheapest route) + "
        "networkx.ancestors, one timed call; peak memory of each side by tracemalloc in a "
        f"separate call; ours {2 * _fast_repeat(ctx)} rounds; networkx one call on the big "
        "store (~10 s at 1M), rounds on the small one. Ratio on memory rows = ours / networkx; "
        "a 10× larger answer should cost about 10× (≤ 15×)."
    )
    return rows


