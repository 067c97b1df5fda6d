"""Tracking: ``@lineage.step`` cache hits, runs, metrics and models, beside joblib and MLflow.

Each figure is measured in the same run as its peer or limit:

- a ``@lineage.step`` cache hit with small arguments against ``joblib.Memory(...).cache``
  wrapping the same function (both warm: the first, missing call is not timed);
- a cache hit whose argument is a 100 MiB float64 array against raw ``xxhash.xxh3_128``
  over the array's bytes (the least any content-keyed cache must do);
- ``log_metric`` 10k times in one run (the run's commit included) against MLflow's
  ``log_metric`` with its default local store (SQLite in the working directory) and with its
  file store (``file:`` URI);
- a run with two params and one metric against ``mlflow.start_run`` + ``log_params`` +
  ``log_metric`` (+ the run's end);
- ``log_model`` of a fitted scikit-learn ``LogisticRegression`` (breast-cancer data) in a
  run against ``mlflow.sklearn.log_model`` in a run, and MLflow's quick-start (two params, a
  fit, a metric, ``log_model`` with signature, input example and a registered model name)
  against the lineage equivalent (``store.run`` + ``log_metric`` + ``log_model`` under a
  name, which versions it).

MLflow runs in two long-lived subprocesses (one per store, ``python
benchmarks/bench_track.py mlflow SPEC``) that time one batch per request, so every round
times lineage, then MLflow's stores, under the same machine load; each figure is the best
round. MLflow is slow, so its batches are smaller; figures are per call, after an untimed
warm-up. Its tracking data lives under ``benchmarks/.work/track-mlflow/``, telemetry off,
and a ``sitecustomize`` guard refuses every non-loopback connection and DNS lookup (in the
subprocesses MLflow starts too), so it never reaches the network.

``python benchmarks/run.py --only track [--quick] --markdown benchmarks/RESULTS.md`` runs this
section alone and rewrites its table under "## Tracking" in the results file.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from harness import (
    Context,
    MiB,
    Row,
    format_value,
    limit_row,
    remove,
    speed_row,
    time_once,
)
from peers import guarded_mlflow_env

SECTION = "track"
TITLE = "Tracking"
ARRAY_BYTES = 100 * MiB
METRIC_CALLS = 10_000
MODEL_CS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
REPLY = "@@bench "  # prefix of the MLflow side's answers (anything else on stdout is noise)


def run(ctx: Context) -> list[Row]:
    """Every tracking measurement, MLflow's rounds interleaved with ours."""
    import lineage  # noqa: F401

    rows: list[Row] = []
    rows += _fresh_quickstart(ctx)
    rows += _step_hits(ctx)
    rows += _array_hit(ctx)
    peers = {store: Mlflow.start(ctx, store) for store in ("default", "file")}
    try:
        rows += _metrics(ctx, peers)
        rows += _runs(ctx, peers)
        rows += _models(ctx, peers)
    finally:
        for peer in peers.values():
            if peer is not None:
                peer.close(ctx)
    return rows


# -- shared ------------------------------------------------------------------------------------


def _repeat(ctx: Context) -> int:
    """Rounds per figure: the machine is shared, so cheap figures get several (fsync-bound
    ones twice as many: their latency swings most with other processes' writes)."""
    return max(ctx.repeat, 3 if ctx.quick else 7)


def _heavy_repeat(ctx: Context) -> int:
    """Rounds for MLflow's model logging (seconds each)."""
    return 2 if ctx.quick else 3


def _loop(fn: Callable[[], Any], calls: int) -> float:
    """Wall time of ``calls`` calls of ``fn``."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return time.perf_counter() - start


def _open(path: Path) -> Any:
    import lineage

    remove(path)
    return lineage.open(path)


def featurize(rows: int, scale: float, method: str = "zscore") -> dict[str, Any]:
    """The small step both caches wrap (module level, so both can read its source)."""
    return {"rows": rows, "scale": scale * 2, "method": method}


def column_means(data: np.ndarray[Any, Any]) -> float:
    """The step that takes the 100 MiB array."""
    return float(data.mean())


def _breast_cancer() -> tuple[Any, Any, Any, Any]:
    """Standardized train/test frames (feature names kept) and labels."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_breast_cancer(return_X_y=True, as_frame=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, random_state=42)
    scaler = StandardScaler().set_output(transform="pandas").fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_test), y_train, y_test


def _fit(c: float, x: Any, y: Any) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=1000).fit(x, y)


# -- 0. the quick-start in a fresh process -------------------------------------------------------


QUICKSTART_LINEAGE = """
import sys, time
sys.path.insert(0, {here!r})
import lineage
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from bench_track import _breast_cancer
x_train, x_test, y_train, y_test = _breast_cancer()
c = float(sys.argv[2])
start = time.perf_counter()
store = lineage.open(sys.argv[1])
with store.run("quickstart", params={{"C": c, "max_iter": 1000}}) as run:
    model = LogisticRegression(C=c, max_iter=1000).fit(x_train, y_train)
    run.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)))
    run.log_model(model, "breast_cancer_quickstart")
store.close()
print(time.perf_counter() - start)
"""
QUICKSTART_MLFLOW = """
import sys, time
sys.path.insert(0, {here!r})
import mlflow, mlflow.sklearn
from mlflow.models import infer_signature
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from bench_track import _breast_cancer
x_train, x_test, y_train, y_test = _breast_cancer()
c = float(sys.argv[2])
start = time.perf_counter()
mlflow.set_experiment("quickstart")
with mlflow.start_run():
    mlflow.log_params({{"C": c, "max_iter": 1000}})
    model = LogisticRegression(C=c, max_iter=1000).fit(x_train, y_train)
    mlflow.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)))
    signature = infer_signature(x_train, model.predict(x_train))
    mlflow.sklearn.log_model(model, name="breast_cancer_model", signature=signature,
                             input_example=x_train,
                             registered_model_name="breast-cancer-quickstart")
print(time.perf_counter() - start)
"""


def _fresh_quickstart(ctx: Context) -> list[Row]:
    """MLflow's quick-start in a fresh interpreter on each side, imports and data loading
    excluded, every first-call cost included (opening the store or setting the experiment,
    lazy imports, environment capture, the first model format). Rounds interleave a lineage
    process and an MLflow process; both stores persist across rounds, as a user's do, and
    lineage's per-machine cache lives under the work directory."""
    here = str(Path(__file__).resolve().parent)
    root = ctx.scratch("track-fresh")
    cache = ctx.work / "lineage-cache"  # kept between runs, like a user's cache directory
    env = {**os.environ, "LINEAGE_CACHE_DIR": str(cache), **ONE_THREAD}
    has_mlflow = ctx.has("mlflow")
    mlflow_env: dict[str, str] = {}
    if has_mlflow:
        mlflow_env = guarded_mlflow_env(root) | ONE_THREAD
        (root / "mlflow").mkdir()

    def lineage_once(c: float, cache_dir: Path = cache) -> float:
        done = subprocess.run(
            [sys.executable, "-c", QUICKSTART_LINEAGE.format(here=here), str(root / "store"),
             str(c)], capture_output=True, text=True, check=True,
            env={**env, "LINEAGE_CACHE_DIR": str(cache_dir)})
        return float(done.stdout.split()[-1])

    def mlflow_once(c: float) -> float:
        done = subprocess.run([sys.executable, "-c", QUICKSTART_MLFLOW.format(here=here),
                               "", str(c)], capture_output=True, text=True, cwd=root / "mlflow",
                              env=mlflow_env)
        if done.returncode != 0:
            raise RuntimeError(f"MLflow quick-start failed: {done.stderr[-1500:]}")
        return float(done.stdout.split()[-1])

    ctx.log("quick-start in fresh processes (lineage and MLflow interleaved)")
    cold_cache = lineage_once(0.01, root / "empty-cache")  # the first process ever
    if not ctx.quick:
        lineage_once(0.02)  # the first round creates the store, as MLflow's its database
    first_mlflow = mlflow_once(0.02) if has_mlflow else None
    ours, peer = [], []
    for index in range(ctx.rounds if ctx.quick else max(5, ctx.rounds)):
        c = MODEL_CS[index % len(MODEL_CS)]
        ours.append(lineage_once(c))
        if has_mlflow:
            peer.append(mlflow_once(c))
    ctx.note(f"quick-start in a fresh process: lineage's very first process on a machine (no "
             f"cache of installed distributions yet) took {format_value(cold_cache, 's')}; "
             + ("" if first_mlflow is None else
                f"MLflow's first (database and experiment created) took "
                f"{format_value(first_mlflow, 's')}; ")
             + "rounds after those are timed. Imports of lineage, scikit-learn and MLflow and "
             "the data loading are outside the timing on both sides; both run BLAS on one "
             "thread (the fit, the same on both sides, otherwise swung 10–130 ms with the "
             "other jobs on the machine)")
    return [speed_row(SECTION, "quick-start in a fresh process (first-call costs incl.)",
                      ours, peer or None, "MLflow (SQLite)", at_least=50)]


# -- 1. step cache hits ------------------------------------------------------------------------


def _step_hits(ctx: Context) -> list[Row]:
    import joblib

    import lineage

    store = _open(ctx.work / "track-step")
    calls, peer_calls = (5000, 300) if ctx.quick else (20_000, 1000)
    ours_step = lineage.step(store=store)(featurize)
    peer_step = joblib.Memory(ctx.scratch("track-joblib"), verbose=0).cache(featurize)
    expected = featurize(100, 0.5)
    assert ours_step(100, 0.5) == peer_step(100, 0.5) == expected  # noqa: S101 (the misses)
    ctx.log(f"step hit: {calls:,} lineage calls, {peer_calls:,} joblib calls per round")
    ours, peer = [], []
    for _ in range(_repeat(ctx)):
        ours.append(_loop(lambda: ours_step(100, 0.5), calls) / calls)
        peer.append(_loop(lambda: peer_step(100, 0.5), peer_calls) / peer_calls)
    assert ours_step(100, 0.5) == expected  # noqa: S101
    store.close()
    return [
        speed_row(SECTION, "@step cache hit, small args (per call)", ours, peer,
                  "joblib.Memory", at_least=20),
        limit_row(SECTION, "@step cache hit, small args (aim)", ours, "s", 10e-6),
    ]


# -- 2. step hit with a 100 MiB array -----------------------------------------------------------


def _array_hit(ctx: Context) -> list[Row]:
    import lineage

    store = _open(ctx.work / "track-array")
    size = ARRAY_BYTES // 8 if ctx.quick else ARRAY_BYTES  # 12.5 MiB with --quick
    data = np.random.default_rng(7).random(size // 8)
    means = lineage.step(store=store)(column_means)
    ctx.log("step hit with a 100 MiB array")
    first, _ = time_once(lambda: means(data))  # the miss: hashes, stores 100 MiB, records
    raw, hit = [], []
    for _ in range(_repeat(ctx)):
        raw.append(time_once(lambda: xxhash.xxh3_128_digest(data))[0])
        hit.append(time_once(lambda: means(data))[0])
    store.close()
    remove(ctx.work / "track-array")  # 100 MiB of packs nobody reuses
    ratios = [h / r for h, r in zip(hit, raw, strict=True)]
    ratio = statistics.median(ratios)
    ctx.note(f"step with a {format_value(size, 'B')} array: the first (missing) call took "
             f"{format_value(first, 's')} (hash, store it, record the run)")
    return [Row(SECTION, f"@step cache hit, {format_value(size, 'B')} numpy arg",
                statistics.median(hit), "s",
                statistics.median(raw), "raw xxh3_128", ratio, "≤ 1.5× raw", ratio <= 1.5,
                "ratio = ours / raw hash (lower is better)", ours_samples=hit, ref_samples=raw,
                ratio_samples=ratios, ref_kind="limit")]


# -- 3. log_metric ------------------------------------------------------------------------------


def _metrics(ctx: Context, peers: dict[str, Mlflow | None]) -> list[Row]:
    store = _open(ctx.work / "track-metrics")
    peer_calls = 50 if ctx.quick else 200
    calls = METRIC_CALLS // 5 if ctx.quick else METRIC_CALLS
    ctx.log(f"log_metric: {calls:,} calls in a run; MLflow {peer_calls} per round")

    def one_run() -> None:
        with store.run("train") as run:
            for i in range(calls):
                run.log_metric("loss", 1.0 / (i + 1), step=i)

    one_run()  # warm-up
    rounds = _rounds(ctx, peers, lambda: time_once(one_run)[0] / calls,
                     "metric", peer_calls, repeat=2 * _repeat(ctx))
    store.close()
    ours = rounds["ours"]
    return [
        limit_row(SECTION, f"log_metric ×{calls // 1000}k in a run (per call, commit "
                  "incl.)", ours, "s", 25e-6),
        speed_row(SECTION, "log_metric vs MLflow default store", ours, rounds.get("default"),
                  "MLflow (SQLite)", at_least=200),
        speed_row(SECTION, "log_metric vs MLflow file store", ours, rounds.get("file"),
                  "MLflow (file)"),
    ]


def _rounds(ctx: Context, peers: dict[str, Mlflow | None], ours: Callable[[], float], op: str,
            calls: int, *, repeat: int | None = None) -> dict[str, list[float]]:
    """Per-call times of ``ours()`` and of MLflow's ``op`` on each store, one per round,
    interleaved round by round."""
    found: dict[str, list[float]] = {"ours": []}
    for index in range(repeat or _repeat(ctx)):
        found["ours"].append(ours())
        for store, peer in peers.items():
            if peer is not None:
                found.setdefault(store, []).append(peer.time(op, calls, index) / calls)
    return found


# -- 4. a run with two params and a metric ------------------------------------------------------


def _runs(ctx: Context, peers: dict[str, Mlflow | None]) -> list[Row]:
    store = _open(ctx.work / "track-runs")
    calls, peer_calls = (20, 5) if ctx.quick else (50, 10)
    ctx.log(f"runs: {calls} lineage runs, {peer_calls} MLflow runs per round")
    counter = iter(range(10**9))

    def one_run() -> None:
        i = next(counter)
        with store.run("train") as run:
            run.log_params({"C": 0.1 * (i % 100 + 1), "penalty": "l2"})
            run.log_metric("accuracy", 0.9)

    one_run()  # warm-up
    rounds = _rounds(ctx, peers, lambda: _loop(one_run, calls) / calls, "run", peer_calls,
                     repeat=2 * _repeat(ctx))
    store.close()
    return [
        speed_row(SECTION, "run with 2 params + 1 metric", rounds["ours"],
                  rounds.get("default"), "MLflow (SQLite)", at_least=20),
        speed_row(SECTION, "run with 2 params + 1 metric vs file store", rounds["ours"],
                  rounds.get("file"), "MLflow (file)"),
    ]


# -- 5. models ----------------------------------------------------------------------------------


def _models(ctx: Context, peers: dict[str, Mlflow | None]) -> list[Row]:
    from sklearn.metrics import accuracy_score

    x_train, x_test, y_train, y_test = _breast_cancer()
    repeat = min(_repeat(ctx), len(MODEL_CS))
    heavy = _heavy_repeat(ctx)
    models = [_fit(c, x_train, y_train) for c in MODEL_CS[:repeat]]  # new content each round
    store = _open(ctx.work / "track-models")
    ctx.log(f"log_model: {repeat} lineage rounds, {heavy} MLflow rounds; quick-start likewise")

    def log_model(model: Any) -> float:
        start = time.perf_counter()
        with store.run("log-model") as run:
            run.log_model(model, "breast_cancer_model")
        return time.perf_counter() - start

    cold = log_model(_fit(0.01, x_train, y_train))
    rounds = iter(range(repeat))
    logged = _rounds(ctx, {"default": peers.get("default")},
                     lambda: log_model(models[next(rounds)]), "log_model", 1, repeat=heavy)
    logged["ours"] += [log_model(m) for m in models[heavy:]]

    def quickstart(c: float) -> float:
        start = time.perf_counter()
        params = {"C": c, "max_iter": 1000}
        with store.run("quickstart", params=params) as run:
            model = _fit(c, x_train, y_train)
            run.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)))
            run.log_model(model, "breast_cancer_quickstart")
        return time.perf_counter() - start

    quickstart(0.01)  # warm-up
    rounds = iter(range(repeat))
    quick = _rounds(ctx, peers, lambda: quickstart(MODEL_CS[next(rounds)]), "quickstart", 1,
                    repeat=heavy)
    fit_s = min(time_once(lambda c=c: _fit(c, x_train, y_train))[0] for c in MODEL_CS[:repeat])
    store.close()
    ctx.note(f"log_model: lineage's first call in the process took {format_value(cold, 's')} "
             "(the model module's first use); the quick-start's fit alone takes "
             f"{format_value(fit_s, 's')} on either side (standardized features)")
    return [
        limit_row(SECTION, "log_model(LogisticRegression) in a run", logged["ours"], "s", 50e-3),
        speed_row(SECTION, "log_model vs mlflow.sklearn.log_model", logged["ours"],
                  logged.get("default"), "MLflow (SQLite)"),
        speed_row(SECTION, "quick-start, warm process: 2 params, fit, metric, log_model",
                  quick["ours"], quick.get("default"), "MLflow (SQLite)"),
        speed_row(SECTION, "quick-start, warm process, vs MLflow file store", quick["ours"],
                  quick.get("file"), "MLflow (file)"),
    ]


# -- MLflow's side ------------------------------------------------------------------------------


class Mlflow:
    """MLflow in a subprocess that times one batch per request (see the module doc)."""

    def __init__(self, ctx: Context, store: str) -> None:
        self.store = store
        self.root = ctx.scratch(f"track-mlflow/{store}")
        env = guarded_mlflow_env(self.root)
        self.net_log = Path(env["LINEAGE_BENCH_NET_LOG"])
        self.stderr_path = self.root / "stderr.log"
        spec_file = self.root / "spec.json"
        spec_file.write_text(json.dumps({"store": store, "root": str(self.root)}))
        ctx.log(f"mlflow ({store} store): starting, warming up (a quick-start)")
        self._stderr = open(self.stderr_path, "w")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "mlflow", str(spec_file)], cwd=self.root, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
        )
        self.info = self._reply()

    @classmethod
    def start(cls, ctx: Context, store: str) -> Mlflow | None:
        """The running peer, or ``None`` (with a note) when mlflow is not installed."""
        if not ctx.has("mlflow"):
            if store == "default":
                ctx.note("tracking: mlflow is not installed (pip install -e '.[bench]'); "
                         "no MLflow figures")
            return None
        return cls(ctx, store)

    def _reply(self) -> dict[str, Any]:
        assert self.process.stdout is not None  # noqa: S101
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])  # type: ignore[no-any-return]
        self.process.wait()
        tail = self.stderr_path.read_text()[-1500:]
        raise RuntimeError(f"mlflow side ({self.store}) stopped: {tail}")

    def time(self, op: str, calls: int, index: int) -> float:
        """Seconds MLflow took for ``calls`` of ``op`` (round ``index`` picks a model)."""
        assert self.process.stdin is not None  # noqa: S101
        self.process.stdin.write(json.dumps({"op": op, "calls": calls, "index": index}) + "\n")
        self.process.stdin.flush()
        return float(self._reply()["s"])

    def close(self, ctx: Context) -> None:
        """Stop the subprocess; note its version, store and any refused network access."""
        assert self.process.stdin is not None  # noqa: S101
        self.process.stdin.close()
        self.process.wait(timeout=120)
        self._stderr.close()
        if self.net_log.exists():
            attempts = self.net_log.read_text().splitlines()
            ctx.note(f"MLflow ({self.store} store) tried to reach the network "
                     f"{len(attempts)} times (refused): {'; '.join(attempts[:3])}")
        if self.store == "default":
            ctx.note(f"MLflow {self.info['version']}: default store {self.info['uri']} "
                     "(under benchmarks/.work/); the file store (file: URI) needs "
                     "MLFLOW_ALLOW_FILE_STORE=true in this version. A first quick-start in "
                     "a fresh process (database and experiment created) took "
                     f"{format_value(self.info['first_s'], 's')}; log_model infers pip "
                     "requirements in a Python subprocess on every call")


def _mlflow_main(spec_file: Path) -> None:
    """MLflow's side: warm up, then answer one timing per request line on stdin."""
    spec = json.loads(spec_file.read_text())
    root = Path(spec["root"])
    import mlflow
    import mlflow.sklearn
    from mlflow.models import infer_signature
    from sklearn.metrics import accuracy_score

    if spec["store"] == "file":
        mlflow.set_tracking_uri((root / "mlruns").as_uri())
    uri = mlflow.get_tracking_uri()
    if not uri.startswith(("sqlite:", "file:")):
        raise RuntimeError(f"refusing to benchmark a tracking store that is not local: {uri}")
    x_train, x_test, y_train, y_test = _breast_cancer()
    models = [_fit(c, x_train, y_train) for c in MODEL_CS]
    step = iter(range(10**9))

    def quickstart(c: float) -> None:
        params = {"C": c, "max_iter": 1000}
        with mlflow.start_run():
            mlflow.log_params(params)
            model = _fit(c, x_train, y_train)
            mlflow.log_metric("accuracy", accuracy_score(y_test, model.predict(x_test)))
            signature = infer_signature(x_train, model.predict(x_train))
            mlflow.sklearn.log_model(model, name="breast_cancer_model", signature=signature,
                                     input_example=x_train,
                                     registered_model_name="breast-cancer-quickstart")

    def metric(request: dict[str, Any]) -> float:
        with mlflow.start_run():
            return _loop(lambda: mlflow.log_metric("loss", 0.5, step=next(step)),
                         request["calls"])

    def one_run() -> None:
        with mlflow.start_run():
            mlflow.log_params({"C": 0.1, "penalty": "l2"})
            mlflow.log_metric("accuracy", 0.9)

    def log_model(model: Any) -> None:
        with mlflow.start_run():
            mlflow.sklearn.log_model(model, name="breast_cancer_model")

    ops: dict[str, Callable[[dict[str, Any]], float]] = {
        "metric": metric,
        "run": lambda r: _loop(one_run, r["calls"]),
        "log_model": lambda r: time_once(lambda: log_model(models[r["index"]]))[0],
        "quickstart": lambda r: time_once(lambda: quickstart(MODEL_CS[r["index"]]))[0],
    }
    started = time.perf_counter()
    mlflow.set_experiment("bench")
    quickstart(0.01)
    first = time.perf_counter() - started
    metric({"calls": 5})
    one_run()
    log_model(_fit(0.01, x_train, y_train))
    print(REPLY + json.dumps({"version": mlflow.__version__, "uri": uri, "first_s": first}),
          flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        print(REPLY + json.dumps({"s": ops[request["op"]](request)}), flush=True)


# -- entry point of the MLflow subprocess -------------------------------------------------------


if __name__ == "__main__":
    if sys.argv[1:2] != ["mlflow"]:
        sys.exit("this is MLflow's side of the track section; run: "
                 "python benchmarks/run.py --only track")
    _mlflow_main(Path(sys.argv[2]))
