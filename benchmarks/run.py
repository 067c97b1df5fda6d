"""Run lineage's benchmarks and print one table: ours, the limit or peer beside it, the ratio.

    python benchmarks/run.py                 # every section, 1 GiB files
    python benchmarks/run.py --quick         # 128 MiB files, for a quick look
    python benchmarks/run.py --only core --size 256MiB
    python benchmarks/run.py --markdown benchmarks/RESULTS.md   # one "## " section each

A section is a module ``benchmarks/bench_<name>.py`` whose ``run(ctx)`` returns a list of
:class:`harness.Row`; sections are found by file name. Data lives under ``benchmarks/.work/``
(git-ignored), reused between runs where it is only input.
"""

from __future__ import annotations

import argparse
import importlib
import json
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
    as_dicts,
    format_value,
    machine,
    parse_size,
    render_markdown,
    render_text,
    write_section,
)

TITLES = {"core": "Core store", "track": "Tracking", "diff": "Queries and diff"}


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
                        help="128 MiB big file, 2000 small files, 2 repeats")
    parser.add_argument("--files", type=int, default=None,
                        help="number of small files (default 10000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="repeats of each timed operation (best is kept; default 3)")
    parser.add_argument("--markdown", type=Path, help="also write the table to this file")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target is missed (default: only if a section crashes)")
    parser.add_argument("--work", type=Path, default=HERE / ".work", help="scratch directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = parse_size(args.size) if args.size else (128 * MiB if args.quick else GiB)
    files = args.files or (2000 if args.quick else 10_000)
    repeat = args.repeat or (2 if args.quick else 3)
    args.work.mkdir(parents=True, exist_ok=True)
    ctx = Context(size=size, files=files, repeat=repeat, work=args.work, quick=args.quick)
    wanted = [s.strip() for s in args.only.split(",") if s.strip()] or sections()
    unknown = sorted(set(wanted) - set(sections()))
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; available: {', '.join(sections())}",
              file=sys.stderr)
        return 2

    rows: list[Row] = []
    done: list[tuple[str, str, list[Row], list[str], str]] = []
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
        load = f"load average {load_before} before, {_load()} after"
        done.append((name, title, section_rows, ctx.notes[notes_before:],
                     f"{time.time() - section_started:.0f} s, {load}"))

    header = (f"lineage benchmarks — {time.strftime('%Y-%m-%d %H:%M')}, big file "
              f"{format_value(size, 'B')}, {files} small files, best of {repeat}\n"
              f"machine: {machine()}")
    print()
    print(header)
    print()
    print(render_text(rows))
    for note in ctx.notes:
        print(f"- {note}")
    print(f"\n({time.time() - started:.0f} s; " + "; ".join(f"{d[0]}: {d[4]}" for d in done) + ")")
    if failed_sections:
        print(f"sections that crashed: {', '.join(failed_sections)}")
    if args.markdown:
        command = " ".join(["python benchmarks/run.py", *sys.argv[1:]] if argv is None
                           else ["python benchmarks/run.py", *argv])
        for name, title, section_rows, notes, seconds in done:
            write_section(args.markdown, title, (
                f"{time.strftime('%Y-%m-%d %H:%M')}; {machine()}; "
                f"{format_value(size, 'B')} big file, {files} small files, best of "
                f"{repeat}; {seconds}.  \n"
                f"Produced by `{command}` (section `{name}`; `make bench` runs them all).\n\n"
                f"{render_markdown(section_rows)}\n\n" + "".join(f"- {n}\n" for n in notes)
            ))
    if args.json:
        args.json.write_text(json.dumps({"header": header, "rows": as_dicts(rows),
                                         "notes": ctx.notes}, indent=2))
    missed = [r for r in rows if r.ok is False]
    return 1 if failed_sections or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
