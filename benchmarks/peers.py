"""What the peers' sides of the benchmarks share, and the MLflow side of the run query.

- :func:`guarded_mlflow_env`: that environment, ready for a subprocess;
- ``DVC_ENV`` and :func:`dvc_repo`: DVC runs without analytics or update checks, in a
  git-less repository with its own stat cache;

- ``MLFLOW_ENV`` and ``GUARD``: MLflow's subprocesses run with telemetry off and a
  ``sitecustomize`` that refuses every non-loopback connection and DNS lookup (written into a
  directory put first on their ``PYTHONPATH``), so a benchmark never reaches the network;
- :func:`search_rounds` and ``python benchmarks/peers.py search SPEC``: ``bench_diff``'s run
  query against MLflow's on the same runs, round by round; the MLflow side
  creating the sweep's runs once (reused from ``benchmarks/.work/``) and answering one round
  of ``mlflow.search_runs`` timings per line read on stdin.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import Context, remove, run_tool, time_once

DVC_ENV = {"DVC_NO_ANALYTICS": "1", "DVC_NO_UPDATER": "1"}
MLFLOW_FILTER = "params.C = '0.5' and metrics.sensitivity > 0.9"
MLFLOW_LAYOUT = 1  # bump when how the MLflow runs are created changes
MLFLOW_ENV = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "MLFLOW_ALLOW_FILE_STORE": "true",  # only consulted when the file store is asked for
    "PIP_NO_INDEX": "1",
    "GIT_PYTHON_REFRESH": "quiet",
}
GUARD = '''"""Written by the benchmarks: refuse network access for MLflow's processes."""
import os
import socket

_LOG = os.environ.get("LINEAGE_BENCH_NET_LOG")
_LOCAL = {"localhost", "127.0.0.1", "::1", "", None}


def _refuse(what):
    if _LOG:
        with open(_LOG, "a") as handle:
            handle.write(f"{os.getpid()} {what}\\n")
    raise OSError(f"network access refused by the benchmark: {what}")


def _local(address):
    if not isinstance(address, tuple):
        return True  # AF_UNIX path
    host = address[0]
    return host in _LOCAL or str(host).startswith("127.")


_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex
_getaddrinfo = socket.getaddrinfo


def connect(self, address):
    if not _local(address):
        _refuse(f"connect {address!r}")
    return _connect(self, address)


def connect_ex(self, address):
    if not _local(address):
        _refuse(f"connect {address!r}")
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _local((host,)):
        _refuse(f"resolve {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
socket.getaddrinfo = getaddrinfo
'''


def guarded_mlflow_env(root: Path) -> dict[str, str]:
    """The environment MLflow's processes run in: this one without ``MLFLOW_*`` settings
    and ``PYTHONPATH``, plus :data:`MLFLOW_ENV` and :data:`GUARD` (written under ``root``),
    logging refused connections to ``root/network-attempts.log``."""
    guard = root / "guard"
    guard.mkdir(exist_ok=True)
    (guard / "sitecustomize.py").write_text(GUARD)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MLFLOW_") and k != "PYTHONPATH"}
    env.update(MLFLOW_ENV, PYTHONPATH=str(guard),
               LINEAGE_BENCH_NET_LOG=str(root / "network-attempts.log"))
    return env


def dvc_repo(ctx: Context, name: str) -> tuple[Path, str] | None:
    """A fresh ``dvc init --no-scm`` repository under scratch ``name`` with its own site
    cache, and the ``dvc`` command; ``None`` when DVC is not installed (or peers are off)."""
    dvc = ctx.tool("dvc")
    if dvc is None:
        return None
    repo = ctx.scratch(name)
    site = ctx.scratch(name + "-site")  # DVC's own stat cache, fresh for each run
    run_tool([dvc, "init", "--no-scm", "-q"], repo, DVC_ENV)
    run_tool([dvc, "config", "core.site_cache_dir", str(site)], repo, DVC_ENV)
    return repo, dvc


def search_rounds(ctx: Context, specs: list[dict[str, Any]], store_path: Path,
                  query: dict[str, Any]) -> dict[str, Any] | None:
    """Rounds of our query and MLflow's on the same runs, interleaved: MLflow in a
    subprocess answering one round per request. ``None`` when mlflow is not installed."""
    import lineage

    if not ctx.has("mlflow"):
        ctx.note("runs: mlflow is not installed (pip install -e '.[bench]'); no peer figure")
        return None
    root = ctx.work / f"mlflow-{len(specs)}"
    root.mkdir(parents=True, exist_ok=True)
    spec_file = root / "spec.json"
    repeat = max(ctx.repeat, 5)
    spec_file.write_text(json.dumps({"layout": MLFLOW_LAYOUT, "runs": specs,
                                     "repeat": repeat}))
    ctx.log(f"mlflow: {len(specs)} runs (created once, reused) and search_runs")
    side = subprocess.Popen([sys.executable, __file__, "search", str(spec_file)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=root,
                            env={**os.environ, **MLFLOW_ENV})
    assert side.stdin is not None and side.stdout is not None  # noqa: S101

    def ask() -> dict[str, Any]:
        side.stdin.write("round\n")  # type: ignore[union-attr]
        side.stdin.flush()  # type: ignore[union-attr]
        line = side.stdout.readline()  # type: ignore[union-attr]
        if not line:
            side.wait()
            raise RuntimeError("mlflow side failed (see its stderr above)")
        return json.loads(line)  # type: ignore[no-any-return]

    store = lineage.open(store_path)
    found: dict[str, Any] = {"ours": [], "search_s": [], "client_search_s": []}
    try:
        for _ in range(ctx.rounds):
            ours = [time_once(lambda: store.runs(**query))[0] for _ in range(repeat)]
            found["ours"].append(statistics.median(ours))
            answer = ask()
            found["search_s"].append(answer["search_s"])
            found["client_search_s"].append(answer["client_search_s"])
    finally:
        store.close()
        side.stdin.close()
        side.wait(timeout=120)
    return {**answer, **found}


def search_main(spec_file: Path) -> None:
    """The MLflow side: create the runs once (marker file), time search_runs, print JSON."""
    import mlflow
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    spec = json.loads(spec_file.read_text())
    root = spec_file.parent
    marker = root / "complete.json"
    runs_digest = hashlib.sha256(json.dumps(spec["runs"]).encode()).hexdigest()
    stamp = {"layout": spec["layout"], "mlflow": mlflow.__version__, "runs": runs_digest}
    if not marker.exists() or json.loads(marker.read_text()).get("stamp") != stamp:
        remove(root / "mlflow.db")
        remove(marker)
        _fast_sqlite_writes()
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlflow.db'}")
    client = MlflowClient()
    created_now = not marker.exists()
    if created_now:
        start = time.perf_counter()
        experiment = client.create_experiment("sweep")
        for s in spec["runs"]:
            run_id = client.create_run(experiment, start_time=int(s["started"] * 1000),
                                       run_name=f"sweep{s['seed']}").info.run_id
            when = int(s["started"] * 1000)
            client.log_batch(run_id, params=[Param("C", str(s["C"])), Param("penalty", "l2"),
                                             Param("seed", str(s["seed"]))],
                             metrics=[Metric("sensitivity", s["sensitivity"], when, 0),
                                      Metric("specificity", s["specificity"], when, 0)])
            client.set_terminated(run_id, end_time=when + 30_000)
        marker.write_text(json.dumps({"stamp": stamp, "created_s": time.perf_counter() - start}))
    created_s = json.loads(marker.read_text())["created_s"]
    experiment = client.get_experiment_by_name("sweep").experiment_id

    def search() -> Any:
        return mlflow.search_runs(experiment_ids=[experiment], filter_string=MLFLOW_FILTER)

    count = len(search())
    repeat = spec["repeat"]
    for _request in sys.stdin:  # one round per request: the median of ``repeat`` searches
        search_s = statistics.median(time_once(search)[0] for _ in range(repeat))
        client_s = statistics.median(time_once(lambda: client.search_runs(
            [experiment], MLFLOW_FILTER, max_results=1000))[0] for _ in range(repeat))
        print(json.dumps({"count": count, "search_s": search_s, "client_search_s": client_s,
                          "repeat": repeat, "created_s": created_s, "created_now": created_now,
                          "version": mlflow.__version__}), flush=True)


def _fast_sqlite_writes() -> None:
    """SQLite without fsync per commit, for creating the MLflow runs only (not searching)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "connect")
    def _no_sync(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA synchronous=OFF")
        cursor.close()


if __name__ == "__main__" and sys.argv[1:2] == ["search"]:
    search_main(Path(sys.argv[2]))
