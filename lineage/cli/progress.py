"""Progress bars for long work, through ``tqdm``: bytes done of a total, rate and ETA.

A bar draws on stderr only when stderr is a terminal and the work is large (more than
:data:`LARGE_BYTES`, or still running after tqdm's ``delay``): pipes, files, CI logs and
quick work never see a byte of it. Its ``update`` plugs into the ``progress=`` callbacks of
``Store.add`` and ``Store.verify``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:  # and imported by progress_bar: every command would pay ~25 ms for it
    from tqdm import tqdm

__all__ = ["LARGE_BYTES", "SLOW_SECONDS", "progress_bar", "total_size"]

LARGE_BYTES: Final = 64 * 1024 * 1024
SLOW_SECONDS: Final = 2.0


def progress_bar(total: int | None, what: str) -> tqdm[None]:
    """A byte-counting bar for ``what`` (``"add"``, ``"verify"``), disabled off a terminal.

    Work of at most :data:`LARGE_BYTES` shows only if it lasts :data:`SLOW_SECONDS`.
    """
    from tqdm import tqdm

    large = total is not None and total > LARGE_BYTES
    return tqdm(
        total=total, desc=what, unit="B", unit_scale=True, unit_divisor=1024,
        disable=not sys.stderr.isatty(), delay=0.0 if large else SLOW_SECONDS,
        leave=False, dynamic_ncols=True, file=sys.stderr,
    )


def total_size(paths: Iterable[str | Path]) -> int:
    """Bytes of the regular files at or under ``paths`` (symlinks not followed).

    Unreadable or missing entries count as 0: the add that follows reports them.
    """
    total = 0
    stack = [Path(p) for p in paths]
    while stack:
        path = stack.pop()
        try:
            if path.is_symlink():
                continue
            if path.is_dir():
                stack.extend(path.iterdir())
            elif path.is_file():
                total += path.stat().st_size
        except OSError:
            continue
    return total
