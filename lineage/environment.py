"""What a run executed in: Python, platform, imported distributions, git commit.

The environment is stored once as an artifact of kind ``environment`` and shared by digest:
runs in the same interpreter with the same imported packages point at the same record.
Package versions are those of the distributions whose top-level modules this process has
imported (not everything installed), which is what can have influenced a result.
"""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["capture_environment", "code_summary", "imported_distributions"]


@functools.cache
def _module_to_distributions() -> dict[str, tuple[str, ...]]:
    return {k: tuple(v) for k, v in metadata.packages_distributions().items()}


@functools.cache
def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def imported_distributions() -> dict[str, str]:
    """``{distribution: version}`` for every distribution with a module imported now."""
    mapping = _module_to_distributions()
    found: dict[str, str] = {}
    tops = {name.partition(".")[0] for name in list(sys.modules)}
    for top in tops:
        for distribution in mapping.get(top, ()):
            version = _version(distribution)
            if version is not None:
                found[distribution.lower()] = version
    return dict(sorted(found.items()))


@functools.cache
def _git_state(directory: str) -> dict[str, Any] | None:
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", *args], cwd=directory, capture_output=True, text=True, timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def capture_environment(directory: str | Path | None = None) -> dict[str, Any]:
    """A JSON-safe description of the running environment.

    Keys: ``python`` (version), ``implementation``, ``platform``, ``machine``,
    ``packages`` (imported distributions and versions), ``git`` (``{"commit", "dirty"}``
    for the repository containing ``directory`` (default: the working directory), or
    ``None`` outside one).
    """
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": imported_distributions(),
        "git": _git_state(str(Path(directory or ".").resolve())),
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
