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

import pytest
from _campaign import HERE, python, size
from _stores import populate
from conftest import Figures

import lineage
from lineage.errors import StoreError
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
    count = size(12, 1000)
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


# -- the page check, case by case --------------------------------------------------------


def _small_store(path: Path) -> None:
    with lineage.open(path) as store:
        for index in range(40):
            store.add(f"value {index}".encode() * 50, name="data", meta={"pad": "p" * 6000})


def test_an_emptied_data_mdb_is_refused_not_taken_for_a_new_store(tmp_path: Path) -> None:
    path = tmp_path / "store"
    _small_store(path)
    (path / "data.mdb").write_bytes(b"")
    with pytest.raises(StoreError, match="index was lost"):
        lineage.open(path)


@pytest.mark.parametrize("keep", [1, 4096, 8192 + 100, -4096], ids=["byte", "page", "metas",
                                                                   "last-page"])
def test_a_truncated_data_mdb_is_refused_at_open(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "store"
    _small_store(path)
    data = path / "data.mdb"
    with open(data, "r+b") as handle:
        handle.truncate(keep if keep > 0 else data.stat().st_size + keep)
    with pytest.raises(StoreError, match="damaged"):
        lineage.open(path)


def test_a_damaged_page_is_reported_by_verify_and_every_read_then_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "store"
    _small_store(path)
    with lineage.open(path) as store:  # the root page of the records database
        with store._read() as txn:
            meta = pages.meta_of(path / "data.mdb", txn._txn.id())
            assert meta is not None
            fd = os.open(path / "data.mdb", os.O_RDONLY)
            try:
                main = pages._Walker(fd, meta).tree("main", meta.main, values=True)
                victim = next(pages.DbRecord.parse(value).root for key, _flags, value in main
                              if key == b"records")
            finally:
                os.close(fd)
    with open(path / "data.mdb", "r+b") as handle:
        handle.seek(victim * PAGE + 12)
        handle.write(b"\xff\xff")  # its lower bound now lies past the page
    from lineage.cli import main

    assert main(["--store", str(path), "verify"]) == 1
    out = capsys.readouterr().out
    assert f"page {victim}" in out and "data.mdb" in out
    with lineage.open(path) as store:
        problems = store.verify().problems
        assert problems and all("data.mdb" in problem for problem in problems)
        with pytest.raises(StoreError, match="damaged"):
            store.load("data")


def test_the_page_check_finds_nothing_in_a_busy_healthy_store(tmp_path: Path) -> None:
    """Overflow values, deletes (gc), many versions and a long free list: no false alarm."""
    path = tmp_path / "store"
    with lineage.open(path) as store:
        rng = random.Random(5)
        for index in range(120):
            store.add({"index": index, "pad": "z" * rng.randint(0, 20_000)},
                      name=f"config{index % 7}")
            if index % 30 == 0:
                store.add(rng.randbytes(300_000))  # unnamed: gc removes it
                store.gc()
        assert store._backend.check_structure() == []
        assert store.verify().ok
    with lineage.open(path) as store:
        assert store.verify().ok
