"""Random damage to ``data.mdb``: each damaged copy is opened, verified and read in its own
process, which must give a typed error or a clean verify, never crash, hang, let an untyped
exception out, or return wrong content."""

from __future__ import annotations

import json
import os
import random
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _campaign import HERE, python, size
from _stores import populate
from conftest import Figures

import lineage
from lineage.storage import pages

PAGE = 4096
TIMEOUT = 120


def _used_pages(data: Path) -> int:
    meta = pages.check_header(data)
    assert meta is not None and meta.page_size == PAGE
    return meta.next_page


def corrupt(data: Path, rng: random.Random, used: int) -> str:
    """Damage ``data`` one random way; return how."""
    how = rng.choice(["flip", "flip", "flip-used", "flip-used", "flip-header", "flip-header",
                      "flip-meta", "bytes", "zero-page", "random-page", "copy-page",
                      "truncate"])
    with open(data, "r+b") as handle:
        length = os.fstat(handle.fileno()).st_size
        if how == "truncate":
            handle.truncate(rng.choice([0, rng.randrange(1, 2 * PAGE), rng.randrange(length)]))
            return how
        if how in ("zero-page", "random-page", "copy-page"):
            page = rng.randrange(used)
            if how == "copy-page":
                handle.seek(rng.randrange(used) * PAGE)
                content = handle.read(PAGE)
            else:
                content = bytes(PAGE) if how == "zero-page" else rng.randbytes(PAGE)
            handle.seek(page * PAGE)
            handle.write(content)
            return how
        if how == "bytes":
            offset = rng.randrange(used * PAGE - 64)
            handle.seek(offset)
            handle.write(rng.randbytes(rng.randint(1, 64)))
            return how
        offset = {
            "flip": lambda: rng.randrange(length),
            "flip-used": lambda: rng.randrange(used * PAGE),
            "flip-header": lambda: rng.randrange(used) * PAGE + rng.randrange(32),
            "flip-meta": lambda: rng.randrange(2) * PAGE + rng.randrange(160),
        }[how]()
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ (1 << rng.randrange(8))]))
    return how


def _copy(pristine: Path, target: Path) -> None:
    (target / "packs").mkdir(parents=True)
    shutil.copyfile(pristine / "data.mdb", target / "data.mdb")
    for pack in (pristine / "packs").iterdir():
        os.link(pack, target / "packs" / pack.name)  # the probe never writes a pack


def _probe(store: Path, expected: Path) -> dict[str, Any]:
    done = python(HERE / "probe_store.py", store, expected, timeout=TIMEOUT)
    result: dict[str, Any] = {"returncode": done.returncode, "stderr": done.stderr[-2000:]}
    if done.returncode == 0 and done.stdout.strip():
        result.update(json.loads(done.stdout.strip().splitlines()[-1]))
    return result


def test_a_damaged_data_mdb_gives_a_typed_error_or_a_clean_verify_never_a_crash(
        tmp_path: Path, figures: Figures) -> None:
    count = size(16, 1000)
    rng = random.Random(7)
    pristine = tmp_path / "pristine"
    store = lineage.open(pristine)
    expected = populate(store, tmp_path)
    store.close()
    (pristine / "lock.mdb").unlink()
    expected_file = tmp_path / "expected.json"
    expected.save(expected_file)
    used = _used_pages(pristine / "data.mdb")
    cases = []
    for index in range(count):
        target = tmp_path / f"case{index}"
        _copy(pristine, target)
        cases.append((target, corrupt(target / "data.mdb", rng, used)))

    def run(case: tuple[Path, str]) -> tuple[str, dict[str, Any]]:
        result = _probe(case[0], expected_file)
        shutil.rmtree(case[0], ignore_errors=True)
        return case[1], result

    outcomes: Counter[str] = Counter()
    failures = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        for how, result in pool.map(run, cases):
            outcome = result.get("outcome", f"exit {result['returncode']}")
            outcomes[outcome] += 1
            if outcome not in ("refused", "damaged", "clean") or result.get("wrong") or (
                    "Traceback" in result["stderr"]):
                failures.append((how, result))
    figures.update(corruptions=count, outcomes=dict(outcomes), crashes=0, hangs=0,
                   wrong_content=0, untyped=0)
    assert not failures, failures[:5]
