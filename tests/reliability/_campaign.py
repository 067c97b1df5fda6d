"""Sizes and helpers shared by the reliability campaign (see ``conftest.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

STRESS = os.environ.get("LINEAGE_STRESS") == "1"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def size(quick: int, full: int) -> int:
    """``full`` in the full campaign (``LINEAGE_STRESS=1``), else ``quick``."""
    return full if STRESS else quick


def python(*args: str | os.PathLike[str], timeout: float, env: dict[str, str] | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run this interpreter on ``args`` with this checkout's ``lineage`` importable."""
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [environment.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=environment, cwd=cwd, check=False)
