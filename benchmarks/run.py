"""Run lineage's benchmarks and print one table: ours, the raw limit and peers beside it,
the ratio, each as median [min–max] over interleaved rounds, and the machine.

    python benchmarks/run.py                 # every section, 1 GiB files
    python benchmarks/run.py --quick         # small inputs, 3 rounds: checks the suite works
    python benchmarks/run.py --only core --size 256MiB

The table is also written to ``benchmarks/results/`` (``--results DIR``): ``results.md``
(the table, notes and each section's report, such as the answers DVC, MLflow and lineage
give to "what changed?"), ``results.json`` (every round of every figure) and ``ratios.png``
(the ratios as a bar chart; needs matplotlib, ``pip install -e '.[bench]'``).

A section is a module ``benchmarks/bench_<name>.py`` whose ``run(ctx)`` returns a list of
:class:`harness.Row`; sections are found by file name. Data lives under ``benchmarks/.work/``
(git-ignored), reused between runs where it is only input. The exit status is 1 only when a
section crashes (``--strict``: also when a target is missed); times are never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    Context,
    GiB,
    MiB,
    Row,
    format_value,
    machine,
    parse_size,
    render_text,
    write_results,
)

TITLES = {"core": "Core store", "track": "Tracking", "diff": "Queries and diff",
          "workflow": "The healthcare workflow against DVC + MLflow"}


def _load() -> str:
    """The 1-minute load average (other work on the machine skews every figure)."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def sections() -> list[str]:
    """Names of the available sections, ``core`` first."""
    names = sorted(p.stem.removeprefix("bench_") for p in HERE.glob("bench_*.py"))
    return sorted(names, key=lambda n: (n != "core", n))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated sections "
                        f"(available: {', '.join(sections())})")
    parser.add_argument("--size", default=None, help="size of the big file (default 1GiB)")
    parser.add_argument("--quick", action="store_true",
                        help="16 MiB big file, 200 small files, small histories, 3 rounds: "
                             "checks that every section still works (what CI runs)")
    parser.add_argument("--files", type=int, default=None,
                        help="number of small files (default 10000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved rounds of each timed operation (default 3, at least 3)")
    parser.add_argument("--results", type=Path, default=HERE / "results",
                        help="where results.md, results.json and ratios.png go")
    parser.add_argument("--no-peers", action="store_true",
                        help="skip DVC and MLflow even when installed (the CI smoke test)")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed (default: only if a section crashes)")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="scratch directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = parse_size(args.size) if args.size else (16 * MiB if args.quick else GiB)
    files = args.files or (200 if args.quick else 10_000)
    repeat = max(3, args.repeat or 3)
    args.work.mkdir(parents=True, exist_ok=True)
    ctx = Context(size=size, files=files, repeat=repeat, work=args.work, quick=args.quick,
                  peers=not args.no_peers)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or sections()
    unknown = sorted(set(wanted) - set(sections()))
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; available: {', '.join(sections())}",
              file=sys.stderr)
        return 2

    rows: list[Row] = []
    done: list[tuple[str, str, list[Row], list[str], str]] = []  # name, title, rows, notes, …
    failed_sections = []
    started = time.time()
    for name in wanted:
        print(f"[{name}]", file=sys.stderr, flush=True)
        section_started, notes_before, load_before = time.time(), len(ctx.notes), _load()
        try:
            module = importlib.import_module(f"bench_{name}")
            section_rows = module.run(ctx)
        except Exception:  # a broken section must not hide the others' figures
            traceback.print_exc()
            failed_sections.append(name)
            continue
        rows.extend(section_rows)
        title = getattr(module, "TITLE", TITLES.get(name, name.capitalize()))
        load = f"load average {load_before} → {_load()}"
        done.append((name, title, section_rows, ctx.notes[notes_before:],
                     f"{time.time() - section_started:.0f} s, {load}"))

    loads = "; ".join(f"{d[0]}: {d[4]}" for d in done)
    header = (f"lineage benchmarks — {time.strftime('%Y-%m-%d %H:%M')}, big file "
              f"{format_value(size, 'B')}, {files} small files, {repeat} interleaved rounds"
              f"{' (--quick)' if args.quick else ''}\n"
              f"machine: {machine()}\n"
              f"sections: {loads} ({time.time() - started:.0f} s in all)")
    print()
    print(header)
    print()
    print(render_text(rows))
    for note in ctx.notes:
        print(f"- {note}")
    for title, _body in ctx.reports:
        print(f"- report: {title} (in results.md)")
    if failed_sections:
        print(f"sections that crashed: {', '.join(failed_sections)}")
    command = " ".join(["python benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)])
    written = write_results(args.results, header, rows, ctx.notes, ctx.reports, command)
    print("\nwritten: " + ", ".join(str(p) for p in written))
    missed = [r for r in rows if r.ok is False]
    return 1 if failed_sections or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
