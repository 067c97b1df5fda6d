"""What every benchmark section shares: the run context, result rows, timing, the table.

A section is a module ``benchmarks/bench_<name>.py`` with ``run(ctx: Context) -> list[Row]``.
It measures our operation and its limit or peer *in the same run*, so ratios compare like
with like on the same machine and the same page-cache state.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

GiB = 1024**3
MiB = 1024**2
KiB = 1024


@dataclass
class Row:
    """One line of the results table.

    ``ours`` and ``ref`` share ``unit``: ``"s"`` (a duration), ``"B"`` (bytes) or ``"/s"``
    (operations per second). ``ratio`` is oriented so that bigger is better for speeds
    (``ref time / our time`` or ``our rate / ref rate``) and is ``ours / ref`` for sizes.
    ``ok`` is ``None`` for rows that only inform (no target).
    """

    section: str
    measurement: str
    ours: float | None
    unit: str
    ref: float | None = None
    ref_label: str = ""
    ratio: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""


def speed_row(
    section: str,
    measurement: str,
    ours_s: float,
    ref_s: float | None,
    ref_label: str,
    *,
    at_least: float | None = None,
    note: str = "",
) -> Row:
    """A duration compared with a reference duration; ratio = ref / ours (≥ 1: we are faster)."""
    ratio = None if ref_s is None or ours_s <= 0 else ref_s / ours_s
    ok = None if at_least is None or ratio is None else ratio >= at_least
    target = "" if at_least is None else f"≥ {at_least:g}×"
    return Row(section, measurement, ours_s, "s", ref_s, ref_label, ratio, target, ok, note)


def rate_row(
    section: str,
    measurement: str,
    ours: float,
    ref: float | None,
    ref_label: str,
    *,
    at_least: float | None = None,
    note: str = "",
) -> Row:
    """Operations per second compared with a reference rate; ratio = ours / ref."""
    ratio = None if ref is None or ref <= 0 else ours / ref
    ok = None if at_least is None or ratio is None else ratio >= at_least
    target = "" if at_least is None else f"≥ {at_least:g}×"
    return Row(section, measurement, ours, "/s", ref, ref_label, ratio, target, ok, note)


def limit_row(
    section: str,
    measurement: str,
    ours: float,
    unit: str,
    limit: float,
    *,
    ref: float | None = None,
    ref_label: str = "",
    note: str = "",
) -> Row:
    """A value that must stay at or under an absolute limit (a time or a size).

    With ``ref`` the ratio is ``ours / ref`` (for sizes: the fraction of the reference);
    without it the ratio is left empty and only the limit is checked.
    """
    ratio = None if ref is None or ref == 0 else ours / ref
    target = f"≤ {format_value(limit, unit)}"
    return Row(section, measurement, ours, unit, ref, ref_label, ratio, target, ours <= limit, note)


def fraction_row(
    section: str, measurement: str, ours: float, ref: float, ref_label: str, *, at_most: float,
    note: str = "",
) -> Row:
    """A size that must stay at or under ``at_most`` of a reference size."""
    ratio = ours / ref if ref else None
    ok = None if ratio is None else ratio <= at_most
    return Row(section, measurement, ours, "B", ref, ref_label, ratio,
               f"≤ {at_most:.0%} of ref", ok, note)


@dataclass
class Context:
    """Settings and helpers handed to every section."""

    size: int
    files: int
    repeat: int
    work: Path
    quick: bool = False
    notes: list[str] = field(default_factory=list)
    verbose: bool = True

    def log(self, message: str) -> None:
        """Progress on stderr, so stdout stays the table."""
        if self.verbose:
            print(f"  … {message}", file=sys.stderr, flush=True)

    def note(self, message: str) -> None:
        """A remark printed under the table (and kept in the markdown)."""
        self.notes.append(message)

    def scratch(self, name: str) -> Path:
        """A fresh (emptied) directory under the work directory."""
        path = self.work / name
        remove(path)
        path.mkdir(parents=True)
        return path

    def tool(self, name: str) -> str | None:
        """The path of a peer's command-line tool (next to this Python first), or ``None``."""
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        return shutil.which(name)

    def human_size(self) -> str:
        """The big-file size as text, e.g. ``1 GiB``."""
        return format_value(self.size, "B")


def remove(path: Path) -> None:
    """Remove a file or directory tree if it exists (read-only files included)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        for child in path.rglob("*"):
            if child.is_dir() and not child.is_symlink():
                child.chmod(0o755)
            elif not child.is_symlink():
                child.chmod(0o644)
        shutil.rmtree(path)


def settle() -> None:
    """Flush dirty pages so the next timed write starts on a quiet disk."""
    os.sync()


def fsync_path(path: Path) -> None:
    """fsync one file."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def time_once(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of one call, and its result."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def best_of(
    fn: Callable[[], Any], repeat: int, *, before: Callable[[], Any] | None = None
) -> float:
    """The fastest of ``repeat`` calls (``before`` runs untimed ahead of each)."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        times.append(time_once(fn)[0])
    return min(times)


def median_of(fn: Callable[[], Any], repeat: int) -> float:
    """The median of ``repeat`` timed calls."""
    return statistics.median(time_once(fn)[0] for _ in range(repeat))


def run_tool(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Run a command; return its wall time. Raise with its output if it fails."""
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, env=full_env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): "
                           f"{(done.stderr or done.stdout).strip()[-500:]}")
    return elapsed


def format_value(value: float | None, unit: str) -> str:
    """Human-readable value: durations in s/ms/µs, sizes in binary units, rates per second."""
    if value is None:
        return "—"
    if unit == "s":
        if value >= 1:
            return f"{value:.2f} s"
        if value >= 1e-3:
            return f"{value * 1e3:.1f} ms"
        return f"{value * 1e6:.0f} µs"
    if unit == "B":
        for name, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {name}"
        return f"{value:.0f} B"
    if unit == "/s":
        if value >= 1e6:
            return f"{value / 1e6:.2f} M/s"
        if value >= 1e3:
            return f"{value / 1e3:.1f} k/s"
        return f"{value:.0f}/s"
    return f"{value:g} {unit}"


def parse_size(text: str) -> int:
    """``"1GiB"``, ``"128MiB"``, ``"512M"``, ``"1000000"`` -> bytes."""
    units = {"k": KiB, "m": MiB, "g": GiB, "kib": KiB, "mib": MiB, "gib": GiB,
             "kb": 1000, "mb": 1000**2, "gb": 1000**3, "b": 1, "": 1}
    cleaned = text.strip().lower().replace(" ", "")
    number = cleaned.rstrip("kmgib")
    return int(float(number) * units[cleaned[len(number):]])


_HEADERS = ("measurement", "ours", "limit / peer", "ratio", "target", "result")


def _cells(row: Row) -> tuple[str, ...]:
    ref = ""
    if row.ref is not None:
        ref = f"{row.ref_label} {format_value(row.ref, row.unit)}".strip()
    elif row.ref_label:
        ref = row.ref_label
    ratio = "" if row.ratio is None else (
        f"{row.ratio:.1%}" if row.unit == "B" else f"{row.ratio:.2f}×"
    )
    result = {True: "pass", False: "FAIL", None: ""}[row.ok]
    return (row.measurement, format_value(row.ours, row.unit), ref, ratio, row.target, result)


def render_text(rows: Sequence[Row]) -> str:
    """The table for a terminal."""
    table = [_HEADERS, *(_cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(_HEADERS))]
    out = []
    for index, line in enumerate(table):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(rows: Sequence[Row]) -> str:
    """The table as GitHub markdown."""
    out = ["| " + " | ".join(_HEADERS) + " |", "|" + "---|" * len(_HEADERS)]
    for row in rows:
        cells = [c.replace("|", "\\|") for c in _cells(row)]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / GiB:.0f} GiB RAM"
    except (ValueError, OSError):
        pass
    return (f"{os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")


def as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as plain dicts (for ``--json``)."""
    return [asdict(r) for r in rows]


def write_section(path: Path, heading: str, body: str) -> None:
    """Put ``body`` under ``## heading`` in the markdown file ``path``, keeping the rest
    (the other sections' tables) as it is."""
    block = f"## {heading}\n\n{body.strip()}\n"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    start = text.find(f"\n## {heading}\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + block
    else:
        end = text.find("\n## ", start + 1)
        text = text[: start + 1] + block + ("" if end < 0 else "\n" + text[end + 1 :])
    path.write_text(text)
