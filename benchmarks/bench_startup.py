"""Start-up: what a fresh process pays before its first answer.

``import lineage``; ``lineage.open`` of an existing store (a bare script, and one that
imported scikit-learn and pandas first), against importing ``lmdb`` and opening the same
environment; open + the first ``store.load``, against the same open, one get and a msgpack
decode; and a whole command, ``lineage show``, against the interpreter's own start and the
peers' closest commands (``mlflow runs describe``, ``dvc data status``). Every
measurement is a fresh interpreter per round, lineage byte-compiled first as an installed
package is.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from harness import Context, Row, format_value, limit_row, remove, run_tool, speed_row, time_once
from peers import DVC_ENV, dvc_repo, guarded_mlflow_env

SECTION = "startup"
TITLE = "Start-up"


def run(ctx: Context) -> list[Row]:
    """Import, open, open + first load, and one command, each in fresh processes."""
    return _import_time(ctx) + _open_time(ctx) + _cli_time(ctx)


# -- import time ------------------------------------------------------------------------------

def _fresh(code: str, env: dict[str, str] | None = None) -> float:
    """Seconds a fresh interpreter reports for ``code`` (which prints them)."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, **(env or {})})
    return float(out.stdout.strip().splitlines()[-1])


def _compiled() -> None:
    """Byte-compile lineage first, as an installed package is (an editable install run with
    PYTHONDONTWRITEBYTECODE would otherwise compile every module in every process)."""
    import compileall

    import lineage

    compileall.compile_dir(str(Path(lineage.__file__).parent), quiet=1)


def _import_time(ctx: Context) -> list[Row]:
    ctx.log("import lineage")
    _compiled()
    code = "import time; t = time.perf_counter(); import lineage; print(time.perf_counter() - t)"
    timings = [_fresh(code) for _ in range(max(5, ctx.rounds))]
    bare = statistics.median(
        time_once(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True))[0]
        for _ in range(5))
    return [limit_row(SECTION, "import lineage (fresh interpreter)", timings, "s", 0.1,
                      note=f"interpreter start alone: {format_value(bare, 's')}")]


OPEN_OURS = """
import time, sys
{pre}
import lineage
t = time.perf_counter()
store = lineage.open(sys.argv[1])
print(time.perf_counter() - t)
"""
OPEN_RAW = """
import time, sys
{pre}
t = time.perf_counter()
import lmdb
NAMESPACES = {namespaces!r}
env = lmdb.open(sys.argv[1], max_dbs=len(NAMESPACES) + 2, max_readers=1024, readahead=False)
env.reader_check()
dbs = [env.open_db(name.encode()) for name in NAMESPACES]
with env.begin() as txn:
    txn.get(b"x", db=dbs[-1])
print(time.perf_counter() - t)
"""
OPEN_LOAD_OURS = """
import time, sys
import lineage
t = time.perf_counter()
store = lineage.open(sys.argv[1])
value = store.load("config")
print(time.perf_counter() - t)
assert value == {"a": 1}, value
"""
OPEN_LOAD_RAW = """
import time, sys
t = time.perf_counter()
import lmdb, msgpack
NAMESPACES = {namespaces!r}
env = lmdb.open(sys.argv[1], max_dbs=len(NAMESPACES) + 2, max_readers=1024, readahead=False)
env.reader_check()
dbs = {{name: env.open_db(name.encode()) for name in NAMESPACES}}
with env.begin() as txn:
    record = msgpack.unpackb(txn.get(bytes.fromhex(sys.argv[2]), db=dbs["records"]))
print(time.perf_counter() - t)
assert record[0] == "lineage/artifact", record
"""


def _config_store(ctx: Context, name: str) -> tuple[Path, str]:
    """A store under the work directory holding ``{"a": 1}`` named ``config``; its path and
    the hex key of the config's record."""
    import lineage

    store_path = ctx.work / name
    remove(store_path)
    store = lineage.open(store_path)
    try:
        artifact = store.add({"a": 1}, name="config")
    finally:
        store.close()
    return store_path, artifact.raw_digest.hex()


def _open_time(ctx: Context) -> list[Row]:
    """``lineage.open`` of an existing store in a fresh interpreter (after ``import
    lineage``), against the raw limit: importing lmdb, opening the environment with its
    named databases and one read, in a fresh interpreter too. Twice: a bare script (a CLI
    command), and a script that has imported scikit-learn and pandas first. In the bare
    script also open + the first ``store.load("config")``, against importing lmdb and
    msgpack, the same open, one get of the config's record and its msgpack decode."""
    from lineage.storage.schema import NAMESPACES

    ctx.log("lineage.open in fresh interpreters")
    _compiled()
    store_path, record = _config_store(ctx, "store-open")
    rows = []
    ctx.note("open: the time lineage.open() takes in a fresh interpreter after `import "
             "lineage` (every lazy import it needs included), lineage byte-compiled first as "
             "an installed package is; the raw limit imports lmdb and opens the same "
             "environment and its named databases. The rest is Python importing lineage's "
             "LMDB backend and the Store facade (nothing else: the record classes, the "
             "encoder and the layers above come with the first method that needs them)")
    variants = [("bare script", ""),
                ("after import sklearn, pandas", "import sklearn.linear_model, pandas")]
    for label, pre in variants[:1] if ctx.quick else variants:
        scripts = {"open": OPEN_OURS.format(pre=pre),
                   "raw": OPEN_RAW.format(pre=pre, namespaces=NAMESPACES)}
        if not pre:  # the first load: in the bare script only
            scripts |= {"load": OPEN_LOAD_OURS,
                        "load_raw": OPEN_LOAD_RAW.format(namespaces=NAMESPACES)}
        rounds = ctx.rounds if ctx.quick else max(7, ctx.rounds)
        times = _fresh_rounds(scripts, rounds, store_path, record)
        rows.append(limit_row(SECTION, f"open a store, fresh interpreter ({label})",
                              times["open"], "s", 10e-3))
        rows.append(speed_row(SECTION, f"  same, vs raw LMDB open ({label})", times["open"],
                              times["raw"], "lmdb.open + 22 dbs + a read"))
        if "load" in times:
            rows.append(speed_row(
                SECTION, f"open + first load of a small config, fresh interpreter ({label})",
                times["load"], times["load_raw"], "lmdb.open + 22 dbs + get + msgpack decode"))
            _first_load_note(ctx, times)
    remove(store_path)
    return rows


def _first_load_note(ctx: Context, times: dict[str, list[float]]) -> None:
    """Say where the time of open + first load goes (the bare script's rounds)."""
    first_load = statistics.median(times["load"]) - statistics.median(times["open"])
    ctx.note("open + first load: opening imports only the LMDB backend and the facade; the "
             "first store.load() then imports the record classes (written out: no "
             "dataclasses) and the encoder, resolves the name, verifies and decodes — about "
             f"{format_value(first_load, 's')} here (the difference of the two medians), so "
             "that is where the import time moved; the raw limit imports lmdb and msgpack, "
             "opens the same environment, gets the config's record and unpacks it")


def _fresh_rounds(scripts: dict[str, str], rounds: int, *args: object) -> dict[str, list[float]]:
    """Each script in a fresh interpreter once per round, one after the other (interleaved):
    the seconds each reports, per round."""
    times: dict[str, list[float]] = {name: [] for name in scripts}
    for _ in range(rounds):
        for name, code in scripts.items():
            times[name].append(_fresh_arg(code, *args))
    return times


def _fresh_arg(code: str, *args: object) -> float:
    out = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# -- a command in a fresh process ------------------------------------------------------------

Command = tuple[list[str], Path, dict[str, str]]  # arguments, working directory, environment


def _cli_time(ctx: Context) -> list[Row]:
    """``lineage show config --store PATH`` as a user runs it (the console script, a fresh
    process, every import included), against the interpreter's own start (``python -c
    pass``: the raw limit) and, when installed, the closest peer commands that show one
    thing from a local store: ``mlflow runs describe`` of one run in a SQLite store, ``dvc
    data status`` of a repository tracking one file. Rounds interleave every command."""
    ctx.log("lineage show in fresh processes")
    _compiled()
    store_path, _record = _config_store(ctx, "store-cli")
    beside = Path(sys.executable).parent / "lineage"
    show = [str(beside)] if beside.exists() else [sys.executable, "-m", "lineage"]
    commands: dict[str, Command] = {
        "show": ([*show, "show", "config", "--store", str(store_path)], ctx.work,
                 dict(os.environ)),
        "python": ([sys.executable, "-c", "pass"], ctx.work, dict(os.environ))}
    commands.update(_mlflow_describe(ctx))
    commands.update(_dvc_data_status(ctx))
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(ctx.rounds if ctx.quick else max(7, ctx.rounds)):
        for name, (args, cwd, env) in commands.items():
            times[name].append(run_tool(args, cwd, env, inherit=False))
    attempts = ctx.work / "cli-mlflow" / "network-attempts.log"
    if attempts.exists():
        ctx.note(f"mlflow runs describe tried the network (refused): {attempts.read_text()[:300]}")
    for path in (store_path, ctx.work / "cli-mlflow", ctx.work / "cli-dvc",
                 ctx.work / "cli-dvc-site"):
        remove(path)
    rows = [speed_row(SECTION, "lineage show (fresh process) vs interpreter start",
                      times["show"], times["python"], "python -c pass")]
    peers = {"mlflow": "mlflow runs describe", "dvc": "dvc data status"}
    rows += [speed_row(SECTION, f"lineage show vs {label}", times["show"], times[name], label)
             for name, label in peers.items() if name in times]
    ctx.note("lineage show: the whole command in a fresh process (the console script, "
             "lineage byte-compiled first); the raw limit is the interpreter starting and "
             "exiting (`python -c pass`). Peers, when installed: `mlflow runs describe "
             "--run-id` of the one run of a local SQLite store, `dvc data status` in a "
             "git-less DVC repository tracking one small file")
    return rows


def _mlflow_describe(ctx: Context) -> dict[str, Command]:
    """``mlflow runs describe`` of the one run of a SQLite store made in a scratch directory
    (telemetry off, non-loopback network refused, as in ``peers.py``); none without MLflow."""
    mlflow = ctx.tool("mlflow")
    if mlflow is None or not ctx.has("mlflow"):
        return {}
    ctx.log("mlflow: a tracking store with one run")
    root = ctx.scratch("cli-mlflow")
    env = guarded_mlflow_env(root) | {"MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}"}
    code = ("import mlflow\nwith mlflow.start_run() as run:\n    mlflow.log_param('a', 1)\n"
            "print(run.info.run_id)")
    made = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                          text=True, check=True)
    run_id = made.stdout.strip().splitlines()[-1]
    return {"mlflow": ([mlflow, "runs", "describe", "--run-id", run_id], root, env)}


def _dvc_data_status(ctx: Context) -> dict[str, Command]:
    """``dvc data status`` in a git-less repository tracking one small file; none without
    DVC."""
    found = dvc_repo(ctx, "cli-dvc")
    if found is None:
        return {}
    repo, dvc = found
    (repo / "config.json").write_text('{"a": 1}\n')
    run_tool([dvc, "add", "-q", "config.json"], repo, DVC_ENV)
    return {"dvc": ([dvc, "data", "status"], repo, {**os.environ, **DVC_ENV})}
