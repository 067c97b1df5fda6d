"""A script that adds two DataFrame versions (categorical, datetime and missing values),
diffs them, loads one and exits must exit 0 with nothing on stderr, every time.

Once in about twenty runs such a script died at exit with "terminate called without an
active exception": an Arrow worker thread, reading Parquet through a Python file object,
took the GIL while the interpreter was finalizing. Parquet now goes through Arrow's own
buffers, so Arrow's threads never need the GIL; and no thread of lineage's own may be
alive when the interpreter exits.
"""

from __future__ import annotations

import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _campaign import python, size
from conftest import Figures

SCRIPT = textwrap.dedent('''
    import atexit, os, sys, threading

    def no_lineage_thread_left():
        alive = [t.name for t in threading.enumerate() if t.name.startswith("lineage")]
        if alive:
            os.write(2, f"lineage threads alive at exit: {alive}\\n".encode())
            os._exit(3)

    atexit.register(no_lineage_thread_left)  # registered first: runs last

    import numpy as np
    import pandas as pd
    import lineage

    def cohort(seed, n=3000):
        rng = np.random.default_rng(seed)
        frame = pd.DataFrame({
            "site": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "admitted": pd.date_range("2024-01-01", periods=n, freq="h"),
            "age": rng.integers(18, 95, n).astype(float),
            "label": rng.integers(0, 2, n),
        })
        frame.loc[frame.index % 7 == 0, "age"] = np.nan
        frame.loc[frame.index % 11 == 0, "site"] = None
        frame.loc[frame.index % 13 == 0, "admitted"] = pd.NaT
        return frame

    mode = sys.argv[2]
    store = lineage.open(sys.argv[1])
    store.add(cohort(1), name="cohort", kind="dataset", target="label")
    store.add(cohort(2), name="cohort", kind="dataset", target="label")
    text = str(store.diff("cohort@v1", "cohort@v2"))
    back = store.load("cohort@v1")
    assert len(back) == 3000 and back["site"].dtype == "category", back.dtypes
    if mode == "step":
        @lineage.step(store=store)
        def mean_age(frame):
            return float(frame["age"].mean())
        mean_age(back)
        mean_age(back)
    if mode != "left-open":
        store.close()
    print("done", len(text) > 0)
''')

MODES = ("closed", "left-open", "step")


def test_a_dataframe_script_exits_cleanly_every_time(tmp_path: Path, figures: Figures) -> None:
    runs = size(10, 150)
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)

    def run(index: int) -> tuple[int, str, str, str]:
        mode = MODES[index % len(MODES)]
        done = python(script, tmp_path / f"store{index}", mode, timeout=120, cwd=tmp_path)
        return done.returncode, done.stdout, done.stderr, mode

    failures = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for code, out, err, mode in pool.map(run, range(runs)):
            if code != 0 or err or out.strip() != "done True":
                failures.append((mode, code, err[-500:]))
    figures.update(runs=runs, modes=list(MODES), failed=len(failures))
    assert not failures, failures
