"""The benchmark suite still runs: ``benchmarks/run.py --quick --no-peers`` in a subprocess.

Small inputs, three rounds, no DVC or MLflow (CI installs only ``.[dev]``): this checks that
every section runs to the end and that the table, its JSON and (with matplotlib) the chart
are written. It never looks at a time: figures from a shared CI machine mean nothing.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def test_the_quick_benchmark_suite_runs_every_section(tmp_path: Path) -> None:
    results = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--quick", "--no-peers",
         "--results", str(results), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    sections = sorted(p.stem.removeprefix("bench_") for p in BENCHMARKS.glob("bench_*.py"))
    report = json.loads((results / "results.json").read_text())
    assert {row["section"] for row in report["rows"]} == set(sections)
    assert all(row["ours"] is not None for row in report["rows"])
    table = (results / "results.md").read_text()
    assert "| task | lineage | raw limit | peers | ratio | target | result |" in table
    assert "machine:" in report["header"] and "machine:" in done.stdout
    assert "What changed between model v1.0 and v1.1?" in table  # the workflow's answers
    chart = results / "ratios.png"
    assert chart.exists() == (importlib.util.find_spec("matplotlib") is not None)
