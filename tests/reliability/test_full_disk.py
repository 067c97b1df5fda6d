"""A store on a small filesystem, filled up: every add that cannot be written fails with a
clear error, every record committed before stays intact, and nothing is left behind.

The filesystem is a 24 MiB tmpfs mounted for the test (we run as root here, and CI may);
where mounting is not permitted, the same scenario runs in a subprocess whose file sizes
are capped with ``RLIMIT_FSIZE`` (writes past the cap fail with EFBIG, as a full disk fails
with ENOSPC), which exercises the same failure paths file by file.
"""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _campaign import HERE, python, size
from conftest import Figures

import lineage
from lineage.core.hashing import digest_bytes
from lineage.errors import StoreError
from lineage.store import Store
from lineage.testing import snapshot

DISK = 24 * 1024 * 1024
_ENVIRONMENT = 4096  # an environment artifact's content is a few hundred bytes


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path | None]:
    """A mounted 24 MiB tmpfs, or ``None`` where mounting is not permitted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        yield None
        return
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def _packs(store: Store) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in (Path(store.path) / "packs").glob("*.pack")}


def _fill(directory: Path, leave: int) -> Path:
    """Grow a filler file in ``directory`` until about ``leave`` bytes stay free."""
    filler = directory / "filler"
    with open(filler, "ab") as handle:
        while True:
            free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
            step = min(1024 * 1024, free - leave)
            if step <= 0:
                break
            try:
                handle.write(b"\0" * step)
                handle.flush()
            except OSError:
                break
    return filler


def scenario(root: Path, *, rounds: int, fill: bool = True, seed: int = 3) -> dict[str, Any]:
    """Fill the filesystem under ``root`` while adding (``fill``: with a filler file, else
    the file size cap does it); check what the module promises."""
    rng = random.Random(seed)
    store = lineage.open(root / "store")
    expected: dict[str, str] = {}
    for index in range(20):
        data = rng.randbytes(rng.randint(10, 4000))
        expected[f"small@v{index + 1}"] = digest_bytes(store.read_bytes(
            store.add(data, name="small"))).hex()
    for index in range(2):
        data = rng.randbytes(300_000)
        expected[f"large@v{index + 1}"] = digest_bytes(store.read_bytes(
            store.add(data, name="large"))).hex()
    source = root / "source.bin"
    failures: dict[str, int] = {}
    committed = 0
    filler = root / "filler"
    for index in range(rounds):
        leave = rng.choice([0, 4096, 20_000, 70_000, 150_000, 400_000, 900_000])
        filler.unlink(missing_ok=True)
        source.write_bytes(rng.randbytes(rng.choice([50_000, 700_000, 2_000_000])))
        kind, action = _attempt(store, source, rng, index)  # its inputs written first
        if fill:
            _fill(root, leave)
        before, packs = snapshot(store._backend), _packs(store)
        try:
            name, digest = action()
        except StoreError as exc:
            assert "disk is full" in str(exc) or "file size limit" in str(exc), exc
            if kind == "run":  # the run is kept as failed when there is room for it, and
                # the environment it shares with other runs may stay behind until one commits
                grown = sum(_packs(store).values()) - sum(packs.values())
                assert 0 <= grown <= _ENVIRONMENT, grown
            else:
                assert snapshot(store._backend) == before, kind
                assert _packs(store) == packs, (kind, packs, _packs(store))
            failures[kind] = failures.get(kind, 0) + 1
        else:
            expected[name] = digest
            committed += 1
        for revision, digest in expected.items():
            assert digest_bytes(store.read_bytes(revision)).hex() == digest, revision
    filler.unlink(missing_ok=True)
    orphaned = store.gc(dry_run=True).orphaned_bytes  # this process's own pack not counted
    report = store.verify()
    assert report.ok, report.problems
    with store.run("after") as after:  # names the environment a failed run left staged
        after.log_metric("m", 1.0)
    store.add(b"after the disk was freed", name="after")
    store.close()
    with lineage.open(root / "store") as reopened:  # now every pack is idle: all counted
        left = reopened.gc(dry_run=True).orphaned_bytes
        assert reopened.verify().ok
    return {"rounds": rounds, "failed": failures, "committed": committed,
            "orphaned_bytes": left + orphaned, "records_intact": len(expected)}


def _attempt(store: Store, source: Path, rng: random.Random,
             index: int) -> tuple[str, Callable[[], tuple[str, str]]]:
    """One kind of write that a full disk can stop: ``(kind, action)``."""
    kind = rng.choice(["value", "file", "directory", "small-records", "run"])

    def value() -> tuple[str, str]:
        data = rng.randbytes(rng.choice([100_000, 1_500_000]))
        store.add(data, name="value", version=f"v{index}")
        return f"value@v{index}", digest_bytes(data).hex()

    def file() -> tuple[str, str]:
        store.add(source, name="file", version=f"v{index}")
        return f"file@v{index}", digest_bytes(source.read_bytes()).hex()

    tree = source.parent / f"tree{index}"
    if kind == "directory":
        for part in range(4):
            (tree / f"d{part % 2}").mkdir(parents=True, exist_ok=True)
            (tree / f"d{part % 2}" / f"f{part}").write_bytes(rng.randbytes(150_000))

    def directory() -> tuple[str, str]:
        try:
            added = store.add(tree, name="tree", version=f"v{index}")
        finally:
            shutil.rmtree(tree)
        return f"tree@v{index}", digest_bytes(store.read_bytes(added)).hex()

    def small_records() -> tuple[str, str]:
        data = b"x" * 3000 + rng.randbytes(3000)
        store.add(data, name="records", version=f"v{index}", meta={"pad": "y" * 20_000})
        return f"records@v{index}", digest_bytes(data).hex()

    def run() -> tuple[str, str]:
        data = rng.randbytes(400_000)
        with store.run("fill", params={"index": index}) as open_run:
            open_run.log_metric("m", index)
            open_run.log_artifact(data, name="output", version=f"v{index}")
        return f"output@v{index}", digest_bytes(data).hex()

    actions = {"value": value, "file": file, "directory": directory,
               "small-records": small_records, "run": run}
    return kind, actions[kind]


def test_a_full_disk_fails_adds_cleanly_keeps_every_record_and_leaves_nothing(
        tmp_path: Path, small_disk: Path | None, figures: Figures) -> None:
    rounds = size(12, 120)
    if small_disk is not None:
        found = scenario(small_disk, rounds=rounds)
        found["filesystem"] = f"tmpfs {DISK // 2**20} MiB"
    else:
        done = python(HERE / "test_full_disk.py", tmp_path, str(rounds), timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        found = json.loads(done.stdout.strip().splitlines()[-1])
        found["filesystem"] = "RLIMIT_FSIZE fallback"
    assert sum(found["failed"].values()) > 0, found  # the disk did fill up
    assert found["orphaned_bytes"] == 0, found
    figures.update(found)


def _capped(root: Path, rounds: int) -> None:
    """The fallback: cap every file this process writes, so writes fail as on a full
    disk (EFBIG instead of ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (DISK // 2, DISK // 2))
    print(json.dumps(scenario(root, rounds=rounds, fill=False)))


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    _capped(Path(sys.argv[1]), int(sys.argv[2]))
