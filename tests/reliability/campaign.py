"""Run the reliability campaign and print its figures as a Markdown table (for README).

Usage: ``python tests/reliability/campaign.py [--quick] [pytest args...]``. Without
``--quick`` every test runs at full size (``LINEAGE_STRESS=1``), as ``make stress`` does.
Exits with pytest's status.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _counts(found: dict[str, int]) -> str:
    return ", ".join(f"{key} {value}" for key, value in found.items())


Row = tuple[str, str, str]  # what was done, at what size, what held
DESCRIBE: dict[str, Callable[[dict[str, Any]], Row]] = {
    "test_writers_killed_mid_transaction_lose_nothing_that_committed": lambda f: (
        f"`kill -9` of {f['writers']} writer(s) mid-transaction",
        f"{f['rounds']} rounds, {f['committed_checked']} commits checked",
        f"{f['missing']} missing, {f['verify_failures']} verify failures; "
        f"{f['orphaned_mib']} MiB left in packs by killed adds, counted by the `gc` dry run"),
    "test_writers_and_readers_racing_see_whole_runs_and_lose_nothing": lambda f: (
        "concurrent writers and readers",
        f"{f['writers']} processes x {f['adds_each']} adds, {f['readers']} readers",
        f"{f['missing']} missing, {f['errors']} errors, {f['half_written_runs_seen']} "
        f"half-written runs in {f['reader_queries']} reader queries"),
    "test_children_forked_from_a_writing_parent_neither_hang_nor_corrupt": lambda f: (
        "fork from a parent holding the store (and writing)",
        f"{f['children']} children, {f['background_adds']} parent adds meanwhile",
        f"{f['hangs']} hangs, {f['missing']} missing, verify {f['verify']}"),
    "test_killed_readers_are_cleared_never_block_writers_and_the_file_stays_bounded": lambda f: (
        "stale readers (killed holding read transactions)",
        f"{f['readers_killed']} readers, {f['churn_transactions']} transactions",
        f"file grew {f['grown_while_stale_kib']} KiB while they were pinned, "
        f"{f['grown_after_clear_kib']} KiB after; {f['stale_after_open']} slots left"),
    "test_every_bit_flip_is_detected_on_read_and_by_verify_naming_the_damage": lambda f: (
        "bit flips in stored content", f"{f['flips']} flips ({_counts(f['by_kind'])})",
        f"detected on read {f['detected_on_read']}, named by verify {f['named_by_verify']}"),
    "test_malformed_stored_values_only_raise_corrupt_record_error": lambda f: (
        "malformed stored values", f"{f['planted']} planted ({_counts(f['by_place'])})",
        f"{f['other_exceptions']} other exceptions; {f['raised_typed']} raised "
        "CorruptRecordError (the rest were still well-formed)"),
    "test_a_damaged_data_mdb_gives_a_typed_error_or_a_clean_verify_never_a_crash": lambda f: (
        "random damage to `data.mdb`, each opened in a subprocess",
        f"{f['corruptions']} corruptions",
        f"{f['crashes']} crashes, {f['hangs']} hangs, {f['wrong_content']} wrong content, "
        f"{f['untyped']} untyped; outcomes: {_counts(f['outcomes'])}"),
    "test_at_least_sixty_malformed_revisions_each_raise_invalid_revision": lambda f: (
        "malformed revisions", f"{f['malformed_revisions']} revisions x {f['calls_each']} "
        "calls, plus hypothesis", "all InvalidRevision, none resolved by trimming"),
    "test_at_least_sixty_invalid_names_are_refused_everywhere_and_change_nothing": lambda f: (
        "invalid names", f"{f['invalid_names']} names x 9 calls",
        f"{f['refusals']} refused with InvalidName, store unchanged"),
    "test_at_least_fifty_path_traversals_on_checkout_are_refused_writing_nothing_outside": (
        lambda f: ("path traversal on checkout (crafted trees)",
                   f"{f['traversal_attempts']} attempts",
                   f"{f['refused']} refused, {f['written_outside']} files written outside")),
    "test_a_full_disk_fails_adds_cleanly_keeps_every_record_and_leaves_nothing": lambda f: (
        f"full disk ({f['filesystem']})",
        f"{f['rounds']} rounds, {sum(f['failed'].values())} failed writes "
        f"({_counts(f['failed'])})",
        f"every failure a clear StoreError, {f['records_intact']} records intact, "
        f"{f['orphaned_bytes']} bytes left behind"),
    "test_writers_racing_across_map_resizes_lose_nothing": lambda f: (
        "map growth under load", f"{f['writers']} writers x {f['adds_each']} adds from a "
        f"64 KiB map", f"{f['map_doublings']} doublings to {f['map_mib']} MiB, "
        f"{f['map_full_errors']} MapFullError, {f['lost']} lost"),
    "test_a_dataframe_script_exits_cleanly_every_time": lambda f: (
        "clean exit after DataFrame add/diff/load", f"{f['runs']} runs",
        f"{f['failed']} with a non-zero exit or stderr"),
}


def table(rows: list[dict[str, Any]]) -> str:
    """The figures as a Markdown table, in the order the tests ran."""
    lines = ["| test | size | result | time |", "|---|---|---|---|"]
    for row in rows:
        name = row["test"].split("[")[0]
        describe = DESCRIBE.get(name)
        if describe is None:
            shown = {k: v for k, v in row.items() if k not in ("test", "module", "stress",
                                                               "seconds")}
            cells: Row = (row["test"], "", json.dumps(shown))
        else:
            cells = describe(row)
        lines.append(f"| {cells[0]} | {cells[1]} | {cells[2]} | {row['seconds']:.0f} s |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    extra = [arg for arg in argv if arg != "--quick"]
    with tempfile.TemporaryDirectory() as scratch:
        figures = Path(scratch) / "figures.jsonl"
        env = {**os.environ, "LINEAGE_STRESS_FIGURES": str(figures)}
        if not quick:
            env["LINEAGE_STRESS"] = "1"
            env.setdefault("HYPOTHESIS_PROFILE", "thorough")  # 500 examples a property
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q",
                               "-p", "no:cacheprovider", *extra], cwd=ROOT, env=env,
                              check=False)
        elapsed = time.monotonic() - started
        rows = [json.loads(line) for line in figures.read_text().splitlines()] if (
            figures.exists()) else []
    print()
    print(f"Reliability campaign ({'quick' if quick else 'full size'}), "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, Python "
          f"{sys.version.split()[0]}: {elapsed / 60:.1f} min, pytest exit {done.returncode}")
    print()
    print(table(rows))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
