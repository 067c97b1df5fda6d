"""Environment capture: Python, platform, imported distributions, git state; shared by digest."""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import lineage
from lineage.core.records import Artifact
from lineage.store import Store
from lineage.tracking.environment import capture_environment, code_summary, imported_distributions


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org",
         "-c", "commit.gpgsign=false", *args],
        cwd=repo, capture_output=True, text=True, check=True, timeout=60,
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with one commit."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('train')\n")
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_python_and_platform() -> None:
    environment = capture_environment()
    assert environment["python"] == platform.python_version()
    assert environment["implementation"] == platform.python_implementation()
    assert environment["machine"] == platform.machine()
    assert isinstance(environment["platform"], str) and environment["platform"]


def test_packages_are_the_distributions_of_imported_modules() -> None:
    import msgpack  # noqa: F401 - imported so that its distribution is listed

    packages = capture_environment()["packages"]
    assert packages["msgpack"] == metadata.version("msgpack")
    assert packages == dict(sorted(packages.items()))
    if "ruff" not in sys.modules:  # installed but not imported: not listed until imported
        assert "ruff" not in imported_distributions()
        importlib.import_module("ruff")
    assert imported_distributions()["ruff"] == metadata.version("ruff")


def test_git_commit_and_dirty_flag(repo: Path) -> None:
    state = capture_environment(repo)["git"]
    assert state == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}

    (repo / "train.py").write_text("print('changed')\n")
    git(repo, "add", "train.py")
    assert capture_environment(repo)["git"]["dirty"] is True

    git(repo, "commit", "-q", "-m", "second")
    state = capture_environment(repo)["git"]
    assert state == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "untracked.txt").write_text("x")
    assert capture_environment(repo)["git"]["dirty"] is False  # untracked files do not count


def test_unstaged_edit_of_imported_code_is_seen(repo: Path) -> None:
    module_file = repo / "features_mod.py"
    module_file.write_text("SCALE = 1\n")
    git(repo, "add", "features_mod.py")
    git(repo, "commit", "-q", "-m", "features")
    spec = importlib.util.spec_from_file_location("features_mod", module_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["features_mod"] = module
    try:
        spec.loader.exec_module(module)
        assert capture_environment(repo)["git"]["dirty"] is False
        module_file.write_text("SCALE = 22\n")  # edited, not staged
        assert capture_environment(repo)["git"]["dirty"] is True
    finally:
        del sys.modules["features_mod"]


def test_no_git_outside_a_repository_or_before_the_first_commit(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert capture_environment(plain)["git"] is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    assert capture_environment(empty)["git"] is None


def test_environment_is_one_artifact_shared_by_digest(store: Store, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # not a git repository: git is None

    @lineage.step(store=store)
    def double(x: int) -> int:
        return 2 * x

    with store.run("first"):
        pass
    with store.run("second") as second:
        double(1)
    runs = [*store.runs(op="first"), *store.runs(op="second"), *store.runs(op="double")]
    digests = {run.environment for run in runs}
    assert len(digests) == 1 and None not in digests
    (environments,) = [list(store._iter_records("environment"))]
    assert len(environments) == 1
    (environment,) = environments
    assert isinstance(environment, Artifact) and environment.kind == "environment"
    assert environment.raw_digest == second.record.environment  # type: ignore[union-attr]
    recorded = store.load(environment)
    assert recorded == capture_environment()
    assert recorded["git"] is None


def test_a_different_environment_is_another_artifact(store: Store, repo: Path,
                                                     tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with store.run("outside") as outside:
        pass
    monkeypatch.chdir(repo)
    with store.run("inside") as inside:
        pass
    assert outside.record is not None and inside.record is not None
    assert outside.record.environment != inside.record.environment
    assert store.load(store._artifact(inside.record.environment))["git"]["commit"] == git(
        repo, "rev-parse", "HEAD")
    assert len(list(store._iter_records("environment"))) == 2


def test_code_summary() -> None:
    def scale(x: int) -> int:
        return x * 3

    summary = code_summary(scale)
    assert summary["qualname"].endswith("test_code_summary.<locals>.scale")
    assert summary["module"] == __name__
    assert summary["source"].startswith("def scale(x: int) -> int:\n")
    assert summary["file"] == __file__
    builtin = code_summary(len)
    assert builtin["source"] == "" and builtin["qualname"] == "len"


# -- the distribution index, kept across processes --------------------------------------------

CAPTURE = """
import json, sys
from importlib import metadata
if "--cache-only" in sys.argv:  # reading any distribution's metadata now is a failure
    metadata.distributions = None
import fakepkg  # noqa: F401
for extra in sys.argv[1:]:
    if not extra.startswith("--"):
        __import__(extra)
from lineage.tracking.environment import capture_environment
print(json.dumps(capture_environment()["packages"]))
"""


def fake_distribution(site: Path, name: str, version: str, *, age_s: float = 60.0) -> None:
    """A distribution as pip lays it out: the package and its ``*.dist-info``."""
    (site / name).mkdir(exist_ok=True)
    (site / name / "__init__.py").write_text("")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    (info / "top_level.txt").write_text(f"{name}\n")
    age([site, site / name, info, info / "METADATA"], age_s)


def age(paths: list[Path], seconds: float) -> None:
    """Set modification times ``seconds`` in the past (older than the racy window)."""
    import os
    import time

    for path in paths:
        os.utime(path, (time.time() - seconds, time.time() - seconds))


def packages_in_fresh_process(site: Path, cache: Path, *args: str,
                              project: Path | None = None) -> dict[str, str]:
    import json
    import os

    path = str(site) if project is None else f"{site}{os.pathsep}{project}"
    env = {**os.environ, "PYTHONPATH": path, "LINEAGE_CACHE_DIR": str(cache)}
    done = subprocess.run([sys.executable, "-c", CAPTURE, *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_the_distribution_index_is_reused_by_later_processes(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    fake_distribution(site, "fakepkg", "1.0")
    assert packages_in_fresh_process(site, cache)["fakepkg"] == "1.0"
    assert len(list(cache.glob("distributions-*.msgpack"))) == 1
    # a later process answers from the cache without reading any distribution's metadata
    assert packages_in_fresh_process(site, cache, "--cache-only")["fakepkg"] == "1.0"


def test_installing_or_upgrading_a_distribution_invalidates_the_index(tmp_path: Path) -> None:
    import shutil

    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    fake_distribution(site, "fakepkg", "1.0")
    assert packages_in_fresh_process(site, cache)["fakepkg"] == "1.0"

    shutil.rmtree(site / "fakepkg-1.0.dist-info")  # pip install --upgrade fakepkg
    fake_distribution(site, "fakepkg", "2.0", age_s=30)  # still older than the racy window
    assert packages_in_fresh_process(site, cache)["fakepkg"] == "2.0"
    assert packages_in_fresh_process(site, cache, "--cache-only")["fakepkg"] == "2.0"

    metadata_file = site / "fakepkg-2.0.dist-info" / "METADATA"  # rewritten in place
    metadata_file.write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 2.0.post1\n")
    age([metadata_file], 10)
    assert packages_in_fresh_process(site, cache)["fakepkg"] == "2.0.post1"


def test_an_index_read_right_after_an_install_is_not_kept(tmp_path: Path) -> None:
    site, cache = tmp_path / "site", tmp_path / "cache"
    site.mkdir()
    fake_distribution(site, "fakepkg", "1.0", age_s=0)  # installed just now
    assert packages_in_fresh_process(site, cache)["fakepkg"] == "1.0"
    assert list(cache.glob("distributions-*.msgpack")) == []  # racily clean: not kept


def test_an_unwritable_cache_directory_only_costs_time(tmp_path: Path) -> None:
    site, blocker = tmp_path / "site", tmp_path / "not-a-directory"
    site.mkdir()
    blocker.write_text("a file where the cache directory would be")
    fake_distribution(site, "fakepkg", "1.0")
    assert packages_in_fresh_process(site, blocker / "cache")["fakepkg"] == "1.0"


def test_files_written_beside_the_script_keep_the_index(tmp_path: Path) -> None:
    """A sys.path entry without distributions (a project directory) may change freely; a
    distribution appearing there is still seen."""
    site, cache, project = tmp_path / "site", tmp_path / "cache", tmp_path / "project"
    site.mkdir()
    project.mkdir()
    fake_distribution(site, "fakepkg", "1.0")
    age([project], 60)
    assert packages_in_fresh_process(site, cache, project=project)["fakepkg"] == "1.0"
    (project / "model.pkl").write_bytes(b"outputs of the last run")  # the directory changed
    assert packages_in_fresh_process(site, cache, "--cache-only", project=project) == {
        **packages_in_fresh_process(site, cache, project=project)}
    fake_distribution(project, "otherpkg", "3.1")  # pip install --target project otherpkg
    found = packages_in_fresh_process(site, cache, "otherpkg", project=project)
    assert found["fakepkg"] == "1.0" and found["otherpkg"] == "3.1"  # the index was rebuilt


def test_a_prefetched_capture_is_the_capture_and_still_checked(repo: Path) -> None:
    from lineage.tracking import environment

    environment.prefetch_environment(repo)
    environment.prefetch_environment(repo)  # once per directory and process
    assert len([k for k in environment._prefetches if k == str(repo.resolve())]) == 1
    first = capture_environment(repo)
    assert first["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "dirty": False}
    (repo / "train.py").write_text("print('changed after the prefetch')\n")
    git(repo, "add", "train.py")  # the index changed: the prefetched answer is stale
    assert capture_environment(repo)["git"]["dirty"] is True


def test_a_forked_child_gets_a_fresh_distributions_lock() -> None:
    """A run's prefetch thread may hold the distributions lock when the process forks (a
    multiprocessing pool started inside a run): the child must not wait for a thread that
    does not exist in it."""
    import threading

    from lineage.tracking import distributions

    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with distributions._lock:
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        pid = os.fork()
        if pid == 0:  # the child: the lock is fresh, so it is free
            os._exit(0 if distributions._lock.acquire(timeout=5) else 1)
        _pid, status = os.waitpid(pid, 0)
    finally:
        release.set()
        holder.join()
    assert os.waitstatus_to_exitcode(status) == 0
