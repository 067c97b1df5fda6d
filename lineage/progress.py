"""A tiny progress bar for long work: bytes done of a total, rate and ETA, on stderr.

A :class:`Progress` is a callable taking a byte count, so it plugs into the ``progress=``
callback of :meth:`Store.add <lineage.Store.add>` and :meth:`Store.verify
<lineage.Store.verify>`. It draws only when its stream is a terminal and the work is large:
more than :data:`LARGE_BYTES` in total, or still running after :data:`SLOW_SECONDS`. Pipes,
files and quick work never see a byte of it.

>>> import io
>>> with Progress(100, stream=io.StringIO()) as bar:   # not a TTY: draws nothing
...     bar(60); bar(40)
>>> bar.done
100
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Final, TextIO

__all__ = ["LARGE_BYTES", "SLOW_SECONDS", "Progress", "format_bytes", "total_size"]

LARGE_BYTES: Final = 64 * 1024 * 1024
SLOW_SECONDS: Final = 2.0
_REDRAW_SECONDS: Final = 0.1
_WIDTH: Final = 24
_UNITS: Final = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def format_bytes(count: float) -> str:
    """``1536`` -> ``"1.5 KiB"``; exact below 1 KiB (``"512 B"``)."""
    value = float(count)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _format_seconds(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}:{seconds % 60:02d}"


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


class Progress:
    """A byte-count progress bar; call it with each increment, close it when done.

    ``total`` may be ``None`` when unknown (the bar then shows bytes and rate only).
    ``clock`` exists for tests.
    """

    def __init__(
        self,
        total: int | None,
        label: str = "",
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import sys

        self.total = total
        self.label = label
        self.done = 0
        self._stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self._started = clock()
        self._last_draw = float("-inf")
        self._drawn = False
        self._tty = _is_tty(self._stream)

    @property
    def enabled(self) -> bool:
        """Whether this bar may draw at all (its stream is a terminal)."""
        return self._tty

    def __call__(self, count: int) -> None:
        """Note ``count`` more bytes done; redraw at most ten times a second."""
        self.done += count
        if not self._tty:
            return
        now = self._clock()
        if now - self._last_draw < _REDRAW_SECONDS:
            return
        if self._large() or now - self._started > SLOW_SECONDS:
            self._draw(now)

    def _large(self) -> bool:
        return self.total is not None and self.total > LARGE_BYTES

    def line(self, now: float | None = None) -> str:
        """The bar as text, e.g. ``add  [#####-----]  50%  1.0/2.0 GiB  1.2 GiB/s  ETA 0:01``."""
        now = self._clock() if now is None else now
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        parts = [self.label] if self.label else []
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            filled = int(fraction * _WIDTH)
            parts.append(f"[{'#' * filled}{'-' * (_WIDTH - filled)}] {fraction:4.0%}")
            parts.append(f"{format_bytes(self.done)}/{format_bytes(self.total)}")
        else:
            parts.append(format_bytes(self.done))
        parts.append(f"{format_bytes(rate)}/s")
        if self.total and rate > 0 and self.done < self.total:
            parts.append(f"ETA {_format_seconds((self.total - self.done) / rate)}")
        return "  ".join(parts)

    def _draw(self, now: float) -> None:
        self._last_draw = now
        self._drawn = True
        self._stream.write("\r\x1b[K" + self.line(now))
        self._stream.flush()

    def close(self) -> None:
        """Finish the bar: its last state stays on screen, followed by a newline."""
        if self._drawn:
            self._draw(self._clock())
            self._stream.write("\n")
            self._stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        if self._tty and self._large():
            self._draw(self._clock())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
