"""What a run executed in: Python, platform, imported distributions, git commit.

The environment is stored once as an artifact of kind ``environment`` and shared by digest:
runs in the same interpreter with the same imported packages point at the same record.
Package versions are those of the distributions whose top-level modules this process has
imported (not everything installed), which is what can have influenced a result. Which
distribution provides which module is read once per interpreter environment and kept in the
user's cache directory across processes (see :mod:`lineage.tracking.distributions`).
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from lineage.tracking.distributions import distribution_index

__all__ = ["capture_environment", "code_summary", "imported_distributions",
           "prefetch_environment"]


def _modules_key() -> tuple[int, str | None]:
    """Changes whenever a module is imported (``sys.modules`` keeps insertion order)."""
    modules = sys.modules
    return len(modules), next(reversed(modules), None)


_distributions: list[Any] = [None, {}]  # [modules key, result]


def imported_distributions() -> dict[str, str]:
    """``{distribution: version}`` for every distribution with a module imported now."""
    key = _modules_key()
    if _distributions[0] != key:
        _distributions[:] = [key, _imported_distributions()]
    return dict(_distributions[1])


def _imported_distributions() -> dict[str, str]:
    index = distribution_index()
    found: dict[str, str] = {}
    tops = {name.partition(".")[0] for name in list(sys.modules)}
    for top in tops:
        for distribution, version in index.get(top, ()):
            found[distribution] = version
    return dict(sorted(found.items()))


def _git(directory: str, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.cache
def _repository(directory: str) -> tuple[str, str, str] | None:
    """``(git dir, common git dir, work tree)`` of the repository holding ``directory``."""
    found = _git(directory, "rev-parse", "--absolute-git-dir", "--git-common-dir",
                 "--show-toplevel")
    if found is None or len(found.splitlines()) != 3:
        return None
    git_dir, common, top = found.splitlines()
    return git_dir, str((Path(directory) / common).resolve()), str(Path(top).resolve())


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _fingerprint(repository: tuple[str, str, str]) -> tuple[Any, ...]:
    """Cheap stats that change when git's answer may change.

    HEAD, the branch it names, packed refs and the index (a commit, checkout or ``git
    add``), and every imported Python file inside the work tree (an edit to code this
    process runs, even unstaged). Edits to other files are seen once git's index changes.
    """
    git_dir, common, top = repository
    try:
        with open(os.path.join(git_dir, "HEAD"), "rb") as file:
            head = file.read().decode(errors="replace")
    except OSError:
        head = ""
    join = os.path.join
    refs = [join(git_dir, "HEAD"), join(git_dir, "index"), join(common, "packed-refs")]
    if head.startswith("ref:"):
        refs += [join(git_dir, head[4:].strip()), join(common, head[4:].strip())]
    return (head, *map(_stat, refs), *((f, _stat(f)) for f in _project_sources(top)))


_sources: dict[str, tuple[tuple[int, str | None], list[str]]] = {}


def _project_sources(top: str) -> list[str]:
    """Files of the imported modules inside work tree ``top`` (not installed packages)."""
    key = _modules_key()
    cached = _sources.get(top)
    if cached is None or cached[0] != key:
        prefix = os.path.join(top, "")
        installed = _installed_prefixes()
        files = [
            file for module in list(sys.modules.values())
            if isinstance(file := getattr(module, "__file__", None), str)
            and file.startswith(prefix) and not file.startswith(installed)
        ]
        cached = _sources[top] = (key, files)
    return cached[1]


@functools.cache
def _installed_prefixes() -> tuple[str, ...]:
    """Where installed packages live (a virtualenv inside the work tree is not project code)."""
    return tuple({os.path.join(p, "") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})


_git_states: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}


def _git_state(directory: str) -> dict[str, Any] | None:
    repository = _repository(directory)
    if repository is None:
        return None
    fingerprint = _fingerprint(repository)
    cached = _git_states.get(directory)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    commit = _git(directory, "rev-parse", "HEAD")
    state = None
    if commit is not None:
        status = _git(directory, "--no-optional-locks", "status", "--porcelain",
                      "--untracked-files=no")
        state = {"commit": commit, "dirty": bool(status)}
    _git_states[directory] = (fingerprint, state)
    return state


_prefetches: dict[str, threading.Thread] = {}
_prefetch_lock = threading.Lock()


def prefetch_environment(directory: str | Path | None = None) -> None:
    """Start the first capture for ``directory`` on a worker thread, once per process.

    A process's first capture asks git (two subprocesses) and the platform (~10 ms); a run
    calls this as it starts, so that its commit finds the answers ready: they are computed
    while the run's own work goes on. :func:`capture_environment` waits for it, then checks
    the answer is still fresh exactly as it always does (nothing is taken on trust).
    """
    where = str(Path(directory or ".").resolve())
    with _prefetch_lock:
        if where in _prefetches:
            return
        thread = threading.Thread(target=_warm, args=(where,), daemon=True,
                                  name="lineage-environment")
        _prefetches[where] = thread
    thread.start()


def _warm(directory: str) -> None:
    try:
        capture_environment(directory)
    except Exception:  # noqa: BLE001, S110 - the capture at commit time raises it again
        pass


def _await_prefetch(directory: str) -> None:
    thread = _prefetches.get(directory)
    if thread is not None and thread is not threading.current_thread():
        thread.join()


def capture_environment(directory: str | Path | None = None) -> dict[str, Any]:
    """A JSON-safe description of the running environment.

    Keys: ``python`` (version), ``implementation``, ``platform``, ``machine``,
    ``packages`` (imported distributions and versions), ``git`` (``{"commit", "dirty"}``
    for the repository containing ``directory`` (default: the working directory), or
    ``None`` outside one or before its first commit). git is asked again only when a
    commit, checkout, ``git add`` or an edit to an imported file inside the work tree may
    have changed its answer (see :func:`_fingerprint`), so captures stay cheap.
    """
    where = str(Path(directory or ".").resolve())
    _await_prefetch(where)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": imported_distributions(),
        "git": _git_state(where),
    }


def code_summary(function: Any) -> dict[str, Any]:
    """``{"qualname", "module", "source", "file"}`` of a Python function (source may be '')."""
    import inspect
    import textwrap

    target = inspect.unwrap(function)
    try:
        source = textwrap.dedent(inspect.getsource(target))
    except (OSError, TypeError):
        source = ""
    try:
        file = inspect.getsourcefile(target) or ""
    except TypeError:
        file = ""
    return {
        "qualname": getattr(target, "__qualname__", repr(target)),
        "module": getattr(target, "__module__", "") or "",
        "source": source,
        "file": file,
    }
