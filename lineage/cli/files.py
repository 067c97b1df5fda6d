"""Writing the command line's output files: atomically, so a reader never sees half of one."""

from __future__ import annotations

import os
from pathlib import Path

from lineage.errors import PathError

__all__ = ["write_atomically"]


def write_atomically(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory, fsynced,
    then renamed over ``path``; return the absolute path.

    Raises:
        PathError: the directory is missing or not writable, or ``path`` is a directory.
    """
    import tempfile  # here: it imports random and shutil, which most commands never need

    target = Path(os.path.abspath(path))
    if target.is_dir():
        raise PathError(f"{path} is a directory; give a file name")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                                 dir=target.parent)
    except OSError as exc:
        raise PathError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    return target
