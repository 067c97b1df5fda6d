"""What every benchmark section shares: the run context, result rows, timing, the table.

A section is a module ``benchmarks/bench_<name>.py`` with ``run(ctx: Context) -> list[Row]``.
It measures our operation and its limit or peer *in the same run*, so ratios compare like
with like on the same machine and the same page-cache state.

Figures are given per round: a row built from lists of timings (one per round, ours and the
reference interleaved round by round) shows the median and [min–max] of each side and of the
round-by-round ratios. A row built from single numbers (an older section, one measurement)
shows just those. ``write_results`` writes the one table as Markdown and JSON and draws the
ratios as a PNG bar chart (when matplotlib is installed).
"""

from __future__ import annotations

import json
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

Figure = float | Sequence[float]  # one measurement, or one per round
#: words in a reference's label that make it a peer (another tool) rather than a raw limit
PEERS = ("mlflow", "dvc", "joblib", "networkx", "md5", "git", "aim")


def samples(value: Figure | None) -> list[float]:
    """The per-round values of a figure (one value: a list of one)."""
    if value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)]
    return [float(v) for v in value]


def middle(value: Figure | None) -> float | None:
    """The median of a figure (``None`` for none)."""
    values = samples(value)
    return statistics.median(values) if values else None


def _ratios(ours: list[float], ref: list[float], invert: bool) -> list[float]:
    """Round-by-round ratios when both sides have one value per round."""
    if len(ours) != len(ref) or len(ours) < 2:
        return []
    pairs = zip(ours, ref, strict=True)
    if invert:
        return [r / o for o, r in pairs if o > 0]
    return [o / r for o, r in pairs if r > 0]


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
    #: per-round figures behind ``ours``, ``ref`` and ``ratio`` (medians of these)
    ours_samples: list[float] = field(default_factory=list)
    ref_samples: list[float] = field(default_factory=list)
    ratio_samples: list[float] = field(default_factory=list)
    #: ``"limit"`` (the raw work, the disk) or ``"peer"`` (another tool); guessed from the
    #: label when empty
    ref_kind: str = ""
    #: further peers shown beside the main reference: ``{"label", "unit", "samples"}``
    peers: list[dict[str, Any]] = field(default_factory=list)
    #: whether a bigger ratio is better (drawn in the chart); ``None``: not a ratio to draw
    higher_is_better: bool | None = None

    def __post_init__(self) -> None:
        if not self.ref_kind and (self.ref_label or self.ref is not None):
            label = self.ref_label.lower()
            self.ref_kind = "peer" if any(word in label for word in PEERS) else "limit"


def _row(section: str, measurement: str, ours: Figure, ref: Figure | None, unit: str,
         ref_label: str, *, invert: bool, at_least: float | None, note: str,
         ref_kind: str = "") -> Row:
    """A row comparing ``ours`` with ``ref``; ratio = ref/ours when ``invert`` (times),
    else ours/ref (rates), so bigger is better either way."""
    ours_list, ref_list = samples(ours), samples(ref)
    ours_m, ref_m = middle(ours_list), middle(ref_list)
    assert ours_m is not None  # noqa: S101
    ratios = _ratios(ours_list, ref_list, invert)
    if ratios:
        ratio: float | None = statistics.median(ratios)
    elif ref_m is None or (ours_m if invert else ref_m) <= 0:
        ratio = None
    else:
        ratio = ref_m / ours_m if invert else ours_m / ref_m
    ok = None if at_least is None or ratio is None else ratio >= at_least
    target = "" if at_least is None else f"≥ {at_least:g}×"
    return Row(section, measurement, ours_m, unit, ref_m, ref_label, ratio, target, ok, note,
               ours_samples=ours_list if len(ours_list) > 1 else [],
               ref_samples=ref_list if len(ref_list) > 1 else [], ratio_samples=ratios,
               ref_kind=ref_kind, higher_is_better=True if ratio is not None else None)


def speed_row(
    section: str,
    measurement: str,
    ours_s: Figure,
    ref_s: Figure | None,
    ref_label: str,
    *,
    at_least: float | None = None,
    note: str = "",
    ref_kind: str = "",
) -> Row:
    """A duration compared with a reference duration; ratio = ref / ours (≥ 1: we are faster).

    Given one time per round for each side (interleaved), the ratio is the median of the
    round-by-round ratios.
    """
    return _row(section, measurement, ours_s, ref_s, "s", ref_label, invert=True,
                at_least=at_least, note=note, ref_kind=ref_kind)


def rate_row(
    section: str,
    measurement: str,
    ours: Figure,
    ref: Figure | None,
    ref_label: str,
    *,
    at_least: float | None = None,
    note: str = "",
    ref_kind: str = "",
) -> Row:
    """Operations per second compared with a reference rate; ratio = ours / ref."""
    return _row(section, measurement, ours, ref, "/s", ref_label, invert=False,
                at_least=at_least, note=note, ref_kind=ref_kind)


def add_peer(row: Row, label: str, figure: Figure | None) -> Row:
    """Show another peer's figure beside ``row``'s reference (same unit); returns ``row``."""
    values = samples(figure)
    if values:
        row.peers.append({"label": label, "unit": row.unit, "samples": values})
    return row


def limit_row(
    section: str,
    measurement: str,
    ours: Figure,
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
    ours_list = samples(ours)
    value = statistics.median(ours_list)
    ratio = None if ref is None or ref == 0 else value / ref
    target = f"≤ {format_value(limit, unit)}"
    return Row(section, measurement, value, unit, ref, ref_label, ratio, target, value <= limit,
               note, ours_samples=ours_list if len(ours_list) > 1 else [])


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
    #: run the peers (DVC, MLflow) when they are installed; ``--no-peers`` turns them off
    peers: bool = True
    notes: list[str] = field(default_factory=list)
    verbose: bool = True
    #: Markdown blocks a section adds to the report after the table: (title, body)
    reports: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rounds(self) -> int:
        """Interleaved rounds per figure: at least 3."""
        return max(3, self.repeat)

    def report(self, title: str, markdown: str) -> None:
        """A block of Markdown (e.g. the answers each tool gives) shown after the table."""
        self.reports.append((title, markdown))

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
        """The path of a peer's command-line tool (next to this Python first), or ``None``
        (also when peers are turned off)."""
        if not self.peers:
            return None
        beside = Path(sys.executable).parent / name
        if beside.exists():
            return str(beside)
        return shutil.which(name)

    def has(self, module: str) -> bool:
        """Whether a peer's Python package is installed (and peers are on)."""
        import importlib.util

        return self.peers and importlib.util.find_spec(module) is not None

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


def run_tool(args: Sequence[str], cwd: Path, env: dict[str, str] | None = None, *,
             inherit: bool = True) -> float:
    """Run a command with ``env`` over this process's environment (with ``inherit=False``:
    exactly ``env``); return its wall time. Raise with its output if it fails."""
    full_env = {**os.environ, **(env or {})} if inherit else dict(env or {})
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


_HEADERS = ("task", "lineage", "raw limit", "peers", "ratio", "target", "result")


def _figure(values: list[float], value: float | None, unit: str) -> str:
    text = format_value(value, unit)
    if len(values) > 1:
        low, high = min(values), max(values)
        text += f" [{format_value(low, unit)}–{format_value(high, unit)}]"
    return text


def _ratio_text(row: Row) -> str:
    if row.ratio is None:
        return ""
    if row.unit == "B":
        return f"{row.ratio:.1%}"
    text = f"{row.ratio:.2f}×" if row.ratio < 100 else f"{row.ratio:,.0f}×"
    if len(row.ratio_samples) > 1:
        low, high = min(row.ratio_samples), max(row.ratio_samples)
        text += f" [{low:.3g}–{high:.3g}]"
    return text


def _cells(row: Row) -> tuple[str, ...]:
    ref = ""
    if row.ref is not None:
        ref = f"{row.ref_label} {_figure(row.ref_samples, row.ref, row.unit)}".strip()
    elif row.ref_label:
        ref = row.ref_label
    limit, peers = (ref, []) if row.ref_kind == "limit" else ("", [ref] if ref else [])
    for peer in row.peers:
        values = [float(v) for v in peer["samples"]]
        peers.append(f"{peer['label']} {_figure(values, statistics.median(values), peer['unit'])}")
    result = {True: "pass", False: "FAIL", None: ""}[row.ok]
    ours = _figure(row.ours_samples, row.ours, row.unit)
    return (row.measurement, ours, limit, "; ".join(peers), _ratio_text(row), row.target, result)


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


def draw_ratios(rows: Sequence[Row], path: Path, title: str) -> bool:
    """A horizontal bar chart of the ratios (median, whiskers min–max, log scale, the target
    marked) as a PNG; ``False`` when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    drawn = [r for r in rows if r.higher_is_better and r.ratio is not None and r.ratio > 0]
    fig, ax = plt.subplots(figsize=(11, 0.42 * len(drawn) + 1.6))
    labels, values, low, high, colors = [], [], [], [], []
    for row in reversed(drawn):
        ratio = float(row.ratio or 0)
        spread = row.ratio_samples or [ratio]
        labels.append(row.measurement[:70])
        values.append(ratio)
        low.append(max(ratio - min(spread), 0))
        high.append(max(max(spread) - ratio, 0))
        colors.append({True: "#2b8a3e", False: "#c92a2a", None: "#5c7cfa"}[row.ok])
    ax.barh(range(len(values)), values, xerr=[low, high], color=colors, capsize=3)
    for index, row in enumerate(reversed(drawn)):
        if row.target.startswith("≥"):
            wanted = float(row.target.split()[1].rstrip("×"))
            ax.plot([wanted, wanted], [index - 0.4, index + 0.4], color="black", linewidth=2)
        ax.text((values[index] + high[index]) * 1.08, index, f"{values[index]:.3g}×",
                va="center", fontsize=8)
    ax.set_yticks(range(len(values)), labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1.0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("ratio (reference time / lineage time): > 1 = lineage faster; "
                  "whiskers min–max over rounds; black tick = target")
    ax.set_title(title, fontsize=10)
    ax.set_xlim(right=ax.get_xlim()[1] * 3)  # room for the labels right of the whiskers
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


def write_results(directory: Path, header: str, rows: Sequence[Row], notes: Sequence[str],
                  reports: Sequence[tuple[str, str]], command: str) -> list[Path]:
    """``results.md`` (the table, notes, reports), ``results.json`` (every figure and round)
    and ``ratios.png`` under ``directory``; return the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    chart = directory / "ratios.png"
    drawn = draw_ratios(rows, chart, header.splitlines()[0])
    lines = ["# lineage benchmark results", "", header.replace("\n", "  \n"), "",
             f"Produced by `{command}`. Each figure is the median [min–max] of its rounds; "
             "ours and the reference run interleaved, round by round, and the ratio is the "
             "median of the round-by-round ratios.", ""]
    if drawn:
        lines += ["![ratios](ratios.png)", ""]
    lines += [render_markdown(rows), ""]
    lines += [f"- {note}" for note in notes]
    for title, body in reports:
        lines += ["", f"## {title}", "", body.strip()]
    (directory / "results.md").write_text("\n".join(lines) + "\n")
    (directory / "results.json").write_text(json.dumps(
        {"header": header, "command": command, "rows": as_dicts(rows), "notes": list(notes),
         "reports": [{"title": t, "markdown": b} for t, b in reports]}, indent=2))
    written = [directory / "results.md", directory / "results.json"]
    return written + ([chart] if drawn else [])


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
