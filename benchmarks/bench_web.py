"""The web view: building the static site, and the first page of runs served from a big store.

- ``lineage site -o DIR`` on the demo store (the healthcare workflow of ``examples/``) and on
  a store of 10k runs, each a fresh process as a user runs it, beside the raw limit of
  writing the same files (``cp -r`` of the site it made);
- ``lineage ui`` on a store of 100k runs: from starting the command to the first byte of the
  runs page (the newest 200 runs, params and metrics as columns), beside ``mlflow ui`` on
  the same 100k runs (same params, same metrics) from its start to the first byte of the
  runs it shows (``runs/search`` for 200 runs, the request its runs page makes, after the
  page itself); then the same request on a server already up, both tools.

The MLflow store is written straight into the SQLite tables ``mlflow ui`` reads (a template
run logged through ``mlflow`` gives the rows; 100k copies differ in id, name, times, params
and metrics): logging 100k runs through the client would take the better part of an hour and
is measured elsewhere (``track``). The lineage store is made with ``store.run`` and kept in
the work directory between runs of the benchmarks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness import Context, Row, remove, run_tool, speed_row
from peers import GUARD, MLFLOW_ENV

SECTION = "web"
TITLE = "The web view"
PAGE_RUNS = 200  # runs on the first page of lineage's runs table (RUNS_PER_PAGE)
REPO = Path(__file__).resolve().parent.parent


def run(ctx: Context) -> list[Row]:
    """Site generation (demo store, 10k runs) and the first page of a 100k-run store
    (``--quick``: 200 and 1,000 runs)."""
    small, big = (200, 1_000) if ctx.quick else (10_000, 100_000)
    rows = [_site_row(ctx, _demo_store(ctx), "`lineage site` of the demo store")]
    rows.append(_site_row(ctx, _runs_store(ctx, small), f"`lineage site` of {small:,} runs"))
    store = _runs_store(ctx, big)
    mlflow = ctx.tool("mlflow")
    database = _mlflow_database(ctx, big) if mlflow else None
    if database is None:
        ctx.note("web: mlflow is not installed (or --no-peers): no `mlflow ui` figures")
    rows += _first_page_rows(ctx, store, database and (mlflow, database), big)
    ctx.note(f"web: `lineage site` and `lineage ui` each a fresh process (interpreter start "
             f"included), {small:,} and {big:,} runs of 3 params and 2 metrics; the MLflow "
             "store holds the same runs, written straight into its SQLite tables")
    return rows


# -- the stores -----------------------------------------------------------------------------


def _lineage_command() -> list[str]:
    return [sys.executable, "-m", "lineage"]


def _demo_store(ctx: Context) -> Path:
    """The store the demo makes (run once per benchmark run)."""
    folder = ctx.scratch("web-demo")
    ctx.log("web: running the demo to make its store")
    env = {**os.environ, "LINEAGE_HOME": str(folder / "store"), "MPLBACKEND": "Agg"}
    done = subprocess.run([sys.executable, str(REPO / "examples" / "healthcare_workflow.py")],
                          cwd=folder, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"the demo failed: {done.stderr.strip()[-500:]}")
    return folder / "store"


def _value(index: int) -> tuple[dict[str, float | int | str], dict[str, float]]:
    """The params and metrics of run ``index`` (the same in both tools)."""
    params = {"C": round(0.05 * (1 + index % 20), 2), "max_depth": 2 + index % 7,
              "solver": ("lbfgs", "liblinear", "saga")[index % 3]}
    metrics = {"sensitivity": round(0.80 + (index * 37 % 200) / 1000, 4),
               "specificity": round(0.85 + (index * 53 % 150) / 1000, 4)}
    return params, metrics


def _runs_store(ctx: Context, count: int) -> Path:
    """A lineage store of ``count`` runs of ``train`` (reused when already made)."""
    path = ctx.work / f"web-runs-{count}"
    if (path / "complete").exists():
        return path / "store"
    remove(path)
    path.mkdir(parents=True)
    ctx.log(f"web: recording {count:,} runs with store.run (kept for later runs)")
    import lineage

    store = lineage.open(path / "store")
    try:
        for index in range(count):
            params, metrics = _value(index)
            with store.run("train", params=params, label=f"run-{index}") as run:
                run.log_metrics(metrics)
    finally:
        store.close()
    (path / "complete").touch()
    return path / "store"


def _mlflow_database(ctx: Context, count: int) -> Path:
    """An MLflow SQLite store with the same ``count`` runs (reused when already made)."""
    path = ctx.work / f"web-mlflow-{count}"
    database = path / "mlflow.db"
    if (path / "complete").exists():
        return database
    remove(path)
    path.mkdir(parents=True)
    ctx.log(f"web: writing {count:,} MLflow runs into its SQLite tables")
    template = _mlflow_template(path, database)
    connection = sqlite3.connect(database)
    try:
        _copy_runs(connection, template, count)
        connection.commit()
    finally:
        connection.close()
    (path / "complete").touch()
    return database


def _mlflow_env(path: Path) -> dict[str, str]:
    """MLflow's environment: telemetry off, non-loopback connections refused."""
    guard = path / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    return {**os.environ, **MLFLOW_ENV, "PYTHONPATH": str(guard),
            "MLFLOW_TRACKING_URI": f"sqlite:///{path / 'mlflow.db'}"}


def _mlflow_template(path: Path, database: Path) -> str:
    """Log one run through ``mlflow`` (a fresh process) and return its id."""
    script = (
        "import mlflow, sys\n"
        "mlflow.set_experiment('bench')\n"
        "with mlflow.start_run(run_name='template') as run:\n"
        "    mlflow.log_params({'C': 0.05, 'max_depth': 2, 'solver': 'lbfgs'})\n"
        "    mlflow.log_metrics({'sensitivity': 0.8, 'specificity': 0.85})\n"
        "print(run.info.run_id)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=path, env=_mlflow_env(path),
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"mlflow failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def _copy_runs(connection: sqlite3.Connection, template: str, count: int) -> None:
    """Replace the template run by ``count`` runs with :func:`_value`'s params and metrics."""
    run_row = connection.execute("select * from runs where run_uuid = ?", (template,)).fetchone()
    columns = [c[1] for c in connection.execute("pragma table_info(runs)")]
    tags = connection.execute("select key, value from tags where run_uuid = ?",
                              (template,)).fetchall()
    for table in ("runs", "params", "metrics", "latest_metrics", "tags"):
        connection.execute(f"delete from {table} where run_uuid = ?", (template,))  # noqa: S608
    started = int(time.time() * 1000) - count * 1000
    runs, params, metrics, latest, tag_rows = [], [], [], [], []
    for index in range(count):
        run_id = uuid.uuid4().hex
        row = dict(zip(columns, run_row, strict=True))
        row.update(run_uuid=run_id, name=f"run-{index}", start_time=started + 1000 * index,
                   end_time=started + 1000 * index + 50,
                   artifact_uri=str(row["artifact_uri"]).replace(template, run_id))
        runs.append(tuple(row[c] for c in columns))
        values, figures = _value(index)
        params += [(k, str(v), run_id) for k, v in values.items()]
        at = started + 1000 * index + 40
        metrics += [(k, v, at, run_id, 0, 0) for k, v in figures.items()]
        latest += [(k, v, at, 0, 0, run_id) for k, v in figures.items()]
        tag_rows += [(k, f"run-{index}" if k == "mlflow.runName" else v, run_id)
                     for k, v in tags]
    marks = ", ".join("?" * len(columns))
    connection.executemany(f"insert into runs ({', '.join(columns)}) values ({marks})", runs)  # noqa: S608
    connection.executemany("insert into params (key, value, run_uuid) values (?, ?, ?)", params)
    connection.executemany("insert into metrics (key, value, timestamp, run_uuid, step, is_nan)"
                           " values (?, ?, ?, ?, ?, ?)", metrics)
    connection.executemany("insert into latest_metrics (key, value, timestamp, step, is_nan, "
                           "run_uuid) values (?, ?, ?, ?, ?, ?)", latest)
    connection.executemany("insert into tags (key, value, run_uuid) values (?, ?, ?)", tag_rows)


# -- the site ---------------------------------------------------------------------------------


def _site_row(ctx: Context, store: Path, measurement: str) -> Row:
    """``lineage site`` in a fresh process, beside ``cp -r`` of the site it wrote."""
    out, copy = ctx.work / "web-site", ctx.work / "web-site-copy"
    ours, limit = [], []
    report: dict[str, float] = {}
    for _ in range(ctx.rounds):
        remove(out)
        start = time.perf_counter()
        done = subprocess.run([*_lineage_command(), "--store", str(store), "--json", "site",
                               "-o", str(out)], capture_output=True, text=True)
        ours.append(time.perf_counter() - start)
        if done.returncode:
            raise RuntimeError(f"lineage site failed: {done.stderr.strip()[-500:]}")
        report = json.loads(done.stdout)
        remove(copy)
        limit.append(run_tool(["cp", "-r", str(out), str(copy)], ctx.work))
    remove(copy)
    remove(out)
    return speed_row(SECTION, measurement, ours, limit, "writing the same files (cp -r)",
                     note=f"{int(report['pages']):,} pages, {report['bytes'] / 2**20:.1f} MiB",
                     ref_kind="limit")


# -- the first page -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _request(port: int, raw: bytes) -> tuple[float, bytes] | None:
    """Send ``raw`` to 127.0.0.1:``port``; the time its first byte arrived and the whole
    answer, or ``None`` when nothing listens yet."""
    try:
        connection = socket.create_connection(("127.0.0.1", port), timeout=120)
    except OSError:
        return None
    with connection:
        connection.sendall(raw)
        first = connection.recv(65536)
        arrived = time.perf_counter()
        chunks = [first]
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return arrived, b"".join(chunks)


def _get(path: str) -> bytes:
    return f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode()


def _search(count: int) -> bytes:
    body = json.dumps({"experiment_ids": ["1"], "max_results": count, "run_view_type":
                       "ACTIVE_ONLY", "order_by": ["attributes.start_time DESC"]}).encode()
    return (b"POST /ajax-api/2.0/mlflow/runs/search HTTP/1.0\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def _until_answered(port: int, raw: bytes, started: float, process: subprocess.Popen[bytes]
                    ) -> tuple[float, bytes]:
    """Retry ``raw`` until the server answers; seconds from ``started`` to its first byte."""
    while True:
        answer = _request(port, raw)
        if answer is not None:
            return answer[0] - started, answer[1]
        if process.poll() is not None:
            raise RuntimeError(f"the server exited ({process.returncode}) before answering")
        if time.perf_counter() - started > 300:
            raise RuntimeError("the server did not answer within 5 minutes")
        time.sleep(0.005)


def _check(answer: bytes, needle: bytes, what: str) -> None:
    head = answer.split(b"\r\n", 1)[0]
    if b" 200 " not in head + b" " or needle not in answer:
        raise RuntimeError(f"{what} answered {head!r} without {needle!r}")


def _serve(command: list[str], port: int, requests: list[tuple[bytes, bytes, str]], warm: int,
           env: dict[str, str] | None = None) -> tuple[float, list[float]]:
    """Start ``command``, time its first answer to the last of ``requests`` (each sent in
    turn once the server answers), then ``warm`` repeats of it; stop the server."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True, env=env)
    try:
        seconds = 0.0
        for raw, needle, what in requests:
            seconds, answer = _until_answered(port, raw, started, process)
            _check(answer, needle, what)
        again = []
        for _ in range(warm):
            sent = time.perf_counter()
            answer_at, answer = _request(port, requests[-1][0]) or (sent, b"")
            _check(answer, requests[-1][1], requests[-1][2])
            again.append(answer_at - sent)
        return seconds, again
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _first_page_rows(ctx: Context, store: Path, mlflow: tuple[str, Path] | None,
                     count: int) -> list[Row]:
    """Start → first byte of the runs page, and the page again on a running server."""
    cold: dict[str, list[float]] = {"lineage": [], "mlflow": []}
    warm: dict[str, list[float]] = {"lineage": [], "mlflow": []}
    ctx.log(f"web: first page of {count:,} runs, {ctx.rounds} rounds")
    for _ in range(ctx.rounds):
        port = _free_port()
        seconds, again = _serve(
            [*_lineage_command(), "--store", str(store), "ui", "--port", str(port)], port,
            [(_get("/runs/index.html"), f"run-{count - 1}".encode(), "lineage ui")], 5)
        cold["lineage"].append(seconds)
        warm["lineage"].append(min(again))
        if mlflow is None:
            continue
        command, database = mlflow
        port = _free_port()
        seconds, again = _serve(
            [command, "ui", "--backend-store-uri", f"sqlite:///{database}", "--host",
             "127.0.0.1", "--port", str(port)], port,
            [(_get("/"), b"<html", "mlflow ui"),
             (_search(PAGE_RUNS), f"run-{count - 1}".encode(), "mlflow runs/search")], 5,
            env=_mlflow_env(database.parent))
        cold["mlflow"].append(seconds)
        warm["mlflow"].append(min(again))
    note = (f"{count:,} runs with 3 params and 2 metrics each; the page lists the newest "
            f"{PAGE_RUNS}")
    return [
        speed_row(SECTION, f"`lineage ui` start → first byte of the runs page ({count:,} runs)",
                  cold["lineage"], cold["mlflow"] or None,
                  "`mlflow ui` start → its page and runs/search", note=note, ref_kind="peer"),
        speed_row(SECTION, "  the runs page again, server up (first byte)", warm["lineage"],
                  warm["mlflow"] or None, "`mlflow ui` runs/search, server up",
                  ref_kind="peer"),
    ]
