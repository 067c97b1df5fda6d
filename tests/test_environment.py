"""Environment capture: Python, platform, imported distributions, git state; shared by digest."""

from __future__ import annotations

import importlib
import importlib.util
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
