"""Remotes and Dask: push and pull through moto's S3 server on 127.0.0.1, beside DVC and a
plain s3fs copy of the same bytes; the incremental push after a 2 % edit; peak memory;
the overhead of a cached ``@lineage.step`` per Dask task.

Every transfer runs as a command in its own process, as a user runs it (``lineage push``,
``dvc push``, a Python process calling ``s3fs.put``), against one moto server started for
the section (in its own process, so its memory is not ours). Peak memory is sampled from
``/proc/<pid>/status`` every 20 ms: ``RssAnon`` (the heap: what a streaming transfer must
keep small) and ``VmHWM`` (all resident pages, including the page cache of mmap'd packs,
which the kernel reclaims under pressure).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from harness import (
    Context,
    KiB,
    MiB,
    Row,
    fraction_row,
    limit_row,
    remove,
    settle,
    speed_row,
)

TITLE = "Remotes and Dask"
SECTION = "remotes"
_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                "AWS_DEFAULT_REGION": "us-east-1"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class _Server:
    """moto's S3 server in its own process."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env={**os.environ, **_CREDENTIALS}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto's server did not start")

    def env(self) -> dict[str, str]:
        return {**os.environ, **_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint,
                "DVC_NO_ANALYTICS": "1"}

    def bucket(self, name: str) -> str:
        _python(f"import s3fs; s3fs.S3FileSystem().mkdir({name!r})", self.env())
        return name

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def _python(code: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True)


def _measured(args: list[str], env: dict[str, str], cwd: Path | None = None
              ) -> tuple[float, int, int, str]:
    """Run a command; return (seconds, peak RssAnon, peak VmHWM, stdout)."""
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    anon = hwm = 0
    status = Path(f"/proc/{process.pid}/status")
    while process.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("RssAnon:"):
                    anon = max(anon, int(line.split()[1]) * KiB)
                elif line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) * KiB)
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    out, err = process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed: {(err or out).strip()[-600:]}")
    return elapsed, anon, hwm, out


def _inputs(ctx: Context) -> tuple[Path, Path]:
    base = ctx.work / "remotes-input"
    base.mkdir(parents=True, exist_ok=True)
    big = base / f"big-{ctx.size}.bin"
    if not big.exists() or big.stat().st_size != ctx.size:
        ctx.log(f"writing {ctx.human_size()} of random bytes")
        with open(big, "wb") as handle:
            left = ctx.size
            while left:
                block = os.urandom(min(left, 16 * MiB))
                handle.write(block)
                left -= len(block)
    small = base / f"small-{ctx.files}"
    if not small.exists():
        ctx.log(f"writing {ctx.files} small files")
        for i in range(ctx.files):
            folder = small / f"d{i % 100:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i}.txt").write_bytes(os.urandom(1024 + (i * 37) % 3072))
    return big, small


def _edit(source: Path, target: Path, fraction: float = 0.02) -> None:
    """A copy of ``source`` with ``fraction`` of it rewritten in 5 spread regions."""
    shutil.copyfile(source, target)
    size = source.stat().st_size
    region = int(size * fraction) // 5
    with open(target, "r+b") as handle:
        for k in range(5):
            handle.seek(size * (2 * k + 1) // 10)
            handle.write(os.urandom(region))


def _lineage(*args: str) -> list[str]:
    return [sys.executable, "-m", "lineage", *args]


def _new_store(path: Path, source: Path, env: dict[str, str]) -> None:
    """A store at ``path`` holding ``source`` as ``data`` (untimed)."""
    for args in (("init",), ("add", str(source), "--name", "data")):
        done = subprocess.run(_lineage("--store", str(path), *args), env=env,
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"lineage {args[0]} failed: {done.stderr.strip()}")


def _dvc_repo(ctx: Context, name: str, server: _Server, bucket: str) -> tuple[Path, str]:
    dvc = ctx.tool("dvc")
    if dvc is None:
        raise FileNotFoundError("dvc")
    repo = ctx.scratch(name)
    env = server.env()
    for args in (["init", "--no-scm", "-q"], ["remote", "add", "-d", "s3", f"s3://{bucket}/dvc"],
                 ["remote", "modify", "s3", "endpointurl", server.endpoint],
                 ["config", "core.analytics", "false"]):
        subprocess.run([dvc, *args], cwd=repo, env=env, check=True, capture_output=True)
    return repo, dvc


def run(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    big, small = _inputs(ctx)
    server = _Server()
    try:
        rows += _transfers(ctx, server, big, "big file", ctx.human_size(), memory=True)
        rows += _transfers(ctx, server, small, "small files", f"{ctx.files} files")
        rows += _incremental(ctx, server, big)
    finally:
        server.stop()
    rows += _dask(ctx)
    return rows


def _transfers(ctx: Context, server: _Server, source: Path, what: str, label: str, *,
               memory: bool = False) -> list[Row]:
    env = server.env()
    bucket = server.bucket(f"b-{what.replace(' ', '-')}-{time.time_ns()}")
    store, fresh = ctx.scratch(f"remotes-{what[:3]}-store"), ctx.work / f"remotes-{what[:3]}-pull"
    _new_store(store, source, env)
    url = f"s3://{bucket}/lineage"
    settle()
    ctx.log(f"lineage push, {label}")
    push_s, push_anon, push_hwm, out = _measured(
        _lineage("--store", str(store), "push", "--remote", url, "--json"), env)
    pushed = json.loads(out)
    again_s, _a, _h, out = _measured(
        _lineage("--store", str(store), "push", "--remote", url, "--json"), env)
    again = json.loads(out)
    remove(fresh)
    subprocess.run(_lineage("--store", str(fresh), "init"), env=env, check=True,
                   capture_output=True)
    settle()
    ctx.log(f"lineage pull, {label}")
    pull_s, pull_anon, pull_hwm, _out = _measured(
        _lineage("--store", str(fresh), "pull", "--remote", url, "--json"), env)

    ctx.log(f"s3fs put/get, {label}")
    target = f"{bucket}/plain/{source.name}"
    put_s = _measured([sys.executable, "-c", "import s3fs, sys; s3fs.S3FileSystem().put("
                       f"{str(source)!r}, {target!r}, recursive=True)"], env)[0]
    copy = ctx.scratch(f"remotes-{what[:3]}-get")
    get_s = _measured([sys.executable, "-c", "import s3fs; s3fs.S3FileSystem().get("
                       f"{target!r}, {str(copy / source.name)!r}, recursive=True)"], env)[0]

    dvc_push = dvc_pull = None
    try:
        repo, dvc = _dvc_repo(ctx, f"remotes-{what[:3]}-dvc", server, bucket)
        if source.is_dir():
            shutil.copytree(source, repo / source.name)
        else:
            shutil.copyfile(source, repo / source.name)
        subprocess.run([dvc, "add", "-q", source.name], cwd=repo, env=env, check=True,
                       capture_output=True)
        settle()
        ctx.log(f"dvc push, {label}")
        dvc_push = _measured([dvc, "push", "-q"], env, repo)[0]
        remove(repo / ".dvc" / "cache")
        remove(repo / source.name)
        settle()
        ctx.log(f"dvc pull, {label}")
        dvc_pull = _measured([dvc, "pull", "-q"], env, repo)[0]
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
        ctx.note(f"DVC not measured for {what}: {str(exc)[:200]}")

    section = SECTION
    rows = [
        speed_row(section, f"push {label} (new remote)", push_s, dvc_push, "dvc push",
                  note=f"{pushed['objects']} objects, {pushed['bytes'] / MiB:.0f} MiB sent"),
        speed_row(section, f"push {label}", push_s, put_s, "s3fs put"),
        speed_row(section, f"pull {label} into an empty store", pull_s, dvc_pull, "dvc pull",
                  note="every chunk re-hashed, manifests checked"),
        speed_row(section, f"pull {label}", pull_s, get_s, "s3fs get"),
        limit_row(section, f"second push of {label}, nothing new", again_s, "s", 5.0,
                  note=f"{again['objects']} objects, {again['bytes']} bytes sent"),
    ]
    if memory:
        rows += [
            limit_row(section, f"push {label}: peak heap (RssAnon)", push_anon, "B", 200 * MiB,
                      note=f"all resident pages incl. mmap'd packs: {push_hwm / MiB:.0f} MiB"),
            limit_row(section, f"pull {label}: peak heap (RssAnon)", pull_anon, "B", 200 * MiB,
                      note=f"all resident pages incl. mmap'd packs: {pull_hwm / MiB:.0f} MiB"),
        ]
    return rows


def _incremental(ctx: Context, server: _Server, big: Path) -> list[Row]:
    env = server.env()
    bucket = server.bucket(f"b-incremental-{time.time_ns()}")
    url = f"s3://{bucket}/lineage"
    store = ctx.scratch("remotes-inc-store")
    edited = ctx.work / "remotes-input" / "edited.bin"
    _new_store(store, big, env)
    _measured(_lineage("--store", str(store), "push", "--remote", url), env)
    _edit(big, edited)
    subprocess.run(_lineage("--store", str(store), "add", str(edited), "--name", "data"),
                   env=env, check=True, capture_output=True)
    settle()
    ctx.log("lineage push after a 2 % edit")
    seconds, _anon, _hwm, out = _measured(
        _lineage("--store", str(store), "push", "--remote", url, "--json"), env)
    sent = json.loads(out)["bytes"]
    dvc_s = None
    try:
        repo, dvc = _dvc_repo(ctx, "remotes-inc-dvc", server, bucket)
        shutil.copyfile(big, repo / "data.bin")
        for step in (["add", "-q", "data.bin"], ["push", "-q"]):
            subprocess.run([dvc, *step], cwd=repo, env=env, check=True, capture_output=True)
        shutil.copyfile(edited, repo / "data.bin")
        subprocess.run([dvc, "add", "-q", "data.bin"], cwd=repo, env=env, check=True,
                       capture_output=True)
        settle()
        dvc_s = _measured([dvc, "push", "-q"], env, repo)[0]
    except (FileNotFoundError, RuntimeError, subprocess.CalledProcessError) as exc:
        ctx.note(f"DVC not measured for the edit: {str(exc)[:200]}")
    return [
        fraction_row(SECTION, f"push after a 2 % edit of {ctx.human_size()}: bytes sent", sent,
                     big.stat().st_size, "the file", at_most=0.05,
                     note="DVC sends the whole file again (one object per file)"),
        speed_row(SECTION, "push after a 2 % edit", seconds, dvc_s, "dvc push"),
    ]


def _dask(ctx: Context) -> list[Row]:
    tasks = 200 if ctx.quick else 1000
    code = f"""
import json, tempfile, time
import lineage
from distributed import Client, LocalCluster

def work(i):
    return i * 2

cached = lineage.step(name="work", version="1")(work)

if __name__ == "__main__":
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, silence_logs=40) as cluster, \\
            Client(cluster) as client:
        path = tempfile.mkdtemp()
        with lineage.open(path):
            client.gather(client.map(cached, range({tasks}), pure=False))  # recorded once
        best = {{"step": float("inf"), "bare": float("inf")}}
        for _ in range({max(ctx.repeat, 2)}):
            with lineage.open(path):  # every call a cache hit on a worker
                started = time.perf_counter()
                client.gather(client.map(cached, range({tasks}), pure=False))
                best["step"] = min(best["step"], time.perf_counter() - started)
            started = time.perf_counter()
            client.gather(client.map(work, range({tasks}), pure=False))
            best["bare"] = min(best["bare"], time.perf_counter() - started)
        print(json.dumps(best))
"""
    script = ctx.work / "remotes_dask.py"
    script.write_text(code)
    ctx.log(f"Dask map of {tasks} cached steps")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          cwd=ctx.work)
    if done.returncode != 0:
        ctx.note(f"Dask not measured: {done.stderr.strip()[-300:]}")
        return []
    timings: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    per_task = (timings["step"] - timings["bare"]) / tasks
    return [speed_row(SECTION, f"Dask map of {tasks} cached steps (2 workers)", timings["step"],
                      timings["bare"], "bare client.map",
                      note=f"overhead {per_task * 1e3:.2f} ms per task")]
