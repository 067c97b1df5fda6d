"""Core store: hashing, adding big and small content, edits, stat cache, records, import.

Every figure is measured beside its raw limit (the same work done by the bare library or the
disk) or a peer (DVC), in the same run, on the same files, with the page cache warm for both
sides unless said otherwise. Writes are preceded by ``sync`` so none pays for another's
dirty pages.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import xxhash
from harness import (
    Context,
    KiB,
    Row,
    format_value,
    fraction_row,
    fsync_path,
    limit_row,
    rate_row,
    remove,
    run_tool,
    settle,
    speed_row,
    time_once,
)
from peers import DVC_ENV, dvc_repo

SECTION = "core"
EDIT_FRACTION = 0.02
EDIT_PLACES = 5
BACKDATE_S = 60


def run(ctx: Context) -> list[Row]:
    """All core measurements, in an order where each reuses what the previous left."""
    import lineage  # noqa: F401  (imported here so import time is measured separately)

    big = _big_file(ctx)
    rows: list[Row] = []
    rows += _hashing(ctx, big)
    add_rows, store_path = _add_new(ctx, big)
    rows += add_rows
    rows += _readd(ctx, big, store_path)
    rows += _edit(ctx, big, store_path)
    remove(store_path)
    rows += _dvc_big(ctx, big)
    rows += _small_files(ctx)
    rows += _records(ctx)
    return rows


# -- inputs ---------------------------------------------------------------------------------


def _random_file(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    block = 64 * 1024 * 1024
    with open(path, "wb") as handle:
        left = size
        while left:
            n = min(block, left)
            handle.write(rng.bytes(n))
            left -= n


def _backdate(path: Path, seconds: int = BACKDATE_S) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def _big_file(ctx: Context) -> Path:
    """A file of ``ctx.size`` random bytes (reused between runs), mtime backdated, cached."""
    path = ctx.work / f"big-{ctx.size}.bin"
    if not path.exists() or path.stat().st_size != ctx.size:
        ctx.log(f"writing a {ctx.human_size()} random file")
        _random_file(path, ctx.size, seed=1)
    _backdate(path)
    _warm(path)
    return path


def _warm(path: Path) -> None:
    """Read a file once so that it sits in the page cache."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
        xxhash.xxh3_64_intdigest(m)


def _pack_bytes(store_path: Path) -> int:
    return sum(p.stat().st_size for p in (store_path / "packs").glob("*.pack"))


def _open(path: Path) -> Any:
    import lineage

    return lineage.open(path)


# -- hashing --------------------------------------------------------------------------------


def _hashing(ctx: Context, big: Path) -> list[Row]:
    from lineage.core.hashing import digest_file

    ctx.log("hashing")

    def raw_xxh3() -> bytes:
        with open(big, "rb") as h, mmap.mmap(h.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return xxhash.xxh3_128_digest(m)

    def md5() -> bytes:
        with open(big, "rb") as h, mmap.mmap(h.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return hashlib.md5(m).digest()

    assert bytes(digest_file(big)) == raw_xxh3()
    ours, raw, md5s = [], [], []
    for _ in range(ctx.rounds + 2):  # interleaved, so both see the same machine state
        ours.append(time_once(lambda: digest_file(big))[0])
        raw.append(time_once(raw_xxh3)[0])
    for _ in range(ctx.rounds):
        md5s.append(time_once(md5)[0])
    size = ctx.human_size()
    gbps = ctx.size / statistics.median(ours) / 1e9
    return [
        speed_row(SECTION, f"hash {size} file (digest_file, {gbps:.1f} GB/s)", ours, raw,
                  "xxh3_128 raw", at_least=0.8),
        speed_row(SECTION, f"hash {size} file vs MD5 (DVC's hash)", ours[:len(md5s)], md5s,
                  "md5 (DVC's hash)", ref_kind="peer"),
    ]


# -- adding a new big file --------------------------------------------------------------------


def _copy_fsync(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)
    fsync_path(dst)


def _add_new(ctx: Context, big: Path) -> tuple[list[Row], Path]:
    ctx.log("add of a new big file vs copy+fsync")
    copy_target = ctx.work / "copy.bin"
    ours, copies = [], []
    store_path = ctx.work / "store-big"
    for attempt in range(ctx.rounds):  # interleaved: disk speed drifts over a run
        remove(copy_target)
        settle()
        copies.append(time_once(lambda: _copy_fsync(big, copy_target))[0])
        remove(copy_target)
        remove(store_path)
        settle()
        store = _open(store_path)
        elapsed, artifact = time_once(lambda s=store: s.add(big, "big"))
        ours.append(elapsed)
        store.close()
        if attempt < ctx.rounds - 1:
            remove(store_path)
    remove(copy_target)
    assert artifact.size == ctx.size
    rate = ctx.size / statistics.median(ours) / 1e6
    return [
        speed_row(SECTION, f"add new {ctx.human_size()} file ({rate:.0f} MB/s)", ours,
                  copies, "copy+fsync", at_least=0.6),
    ], store_path


# -- re-adding an unchanged file ----------------------------------------------------------------


def _readd(ctx: Context, big: Path, store_path: Path) -> list[Row]:
    ctx.log("re-add of the unchanged big file")
    store = _open(store_path)
    try:
        first = store.add(big, "big")
        times = [time_once(lambda: store.add(big, "big"))[0] for _ in range(50)]
        again = store.add(big, "big")
        versions = len(store.versions("big"))
    finally:
        store.close()
    assert first.digest == again.digest and versions == 1, "re-add must not add a version"
    ctx.note(
        f"re-add: the big file's mtime was set {BACKDATE_S} s in the past (os.utime) before its "
        "first add, because the stat cache trusts an entry only when the file's mtime is more "
        "than 2 s older than the moment it was hashed (git's racy-clean rule); a file written "
        "less than 2 s before its add is re-hashed on the next add. Median of 50 re-adds."
    )
    return [limit_row(SECTION, f"re-add unchanged {ctx.human_size()} file (stat cache)",
                      times, "s", 1e-3)]


# -- a v1.1 editing 2 % of v1.0 -------------------------------------------------------------------


def _make_edit(big: Path, target: Path, size: int, seed: int) -> int:
    """Copy ``big`` to ``target`` and overwrite 2 % of it in a few spread places."""
    shutil.copyfile(big, target)
    rng = np.random.default_rng(seed)
    piece = max(1, int(size * EDIT_FRACTION) // EDIT_PLACES)
    stride = size // EDIT_PLACES
    changed = 0
    with open(target, "r+b") as handle:
        for place in range(EDIT_PLACES):
            offset = place * stride + int(rng.integers(0, max(1, stride - piece)))
            handle.seek(offset)
            handle.write(rng.bytes(piece))
            changed += piece
    return changed


def _chunk_and_hash(path: Path) -> int:
    """The raw work of an add: FastCDC cut + xxh3 per chunk, then xxh3 of the whole file."""
    from pyfastcdc import FastCDC

    from lineage.core.hashing import CHUNK_AVG, CHUNK_MAX, CHUNK_MIN

    cdc = FastCDC(CHUNK_AVG, min_size=CHUNK_MIN, max_size=CHUNK_MAX)
    count = 0
    with open(path, "rb") as h:
        view = memoryview(mmap.mmap(h.fileno(), 0, access=mmap.ACCESS_READ))
    for piece in cdc.cut_buf(view):
        xxhash.xxh3_128_digest(view[piece.offset : piece.offset + piece.length])
        count += 1
    xxhash.xxh3_128_digest(view)
    return count  # the map closes when the last view of it is dropped


def _edit(ctx: Context, big: Path, store_path: Path) -> list[Row]:
    ctx.log("add of a v1.1 editing 2 % of v1.0")
    edited = ctx.work / "edited.bin"
    ours, raw, growth = [], [], []
    store = _open(store_path)
    try:
        for attempt in range(max(ctx.rounds, 5)):  # about a second each: noise matters
            _make_edit(big, edited, ctx.size, seed=100 + attempt)
            settle()
            _warm(edited)
            raw.append(time_once(lambda: _chunk_and_hash(edited))[0])
            before = _pack_bytes(store_path)
            elapsed, artifact = time_once(lambda: store.add(edited, "big"))
            ours.append(elapsed)
            growth.append(_pack_bytes(store_path) - before)
            assert artifact.version is not None
    finally:
        store.close()
        remove(edited)
    ctx.note(f"2 % edit: {EDIT_PLACES} spread regions of {EDIT_FRACTION / EDIT_PLACES:.1%} "
             "of the file overwritten with new random bytes, "
             f"{len(ours)} rounds; the raw work is FastCDC + xxh3 per chunk and xxh3 of the whole "
             "file, one after the other on one core. The add also byte-compares every reused "
             "chunk with the stored one (collision check) and hashes the whole file on a "
             "second core while it chunks: with that core busy (other jobs) the ratio falls "
             "to ~0.6×. New storage is the growth of the pack files (largest of the repeats).")
    size = ctx.human_size()
    return [
        speed_row(SECTION, f"add v1.1 editing 2 % of {size}", ours, raw,
                  "chunk+hash alone", at_least=0.8),
        fraction_row(SECTION, "  new storage for that v1.1", max(growth), ctx.size,
                     "v1.0", at_most=0.05),
    ]


# -- DVC on the big file -----------------------------------------------------------------------



def _dvc_big(ctx: Context, big: Path) -> list[Row]:
    found = dvc_repo(ctx, "dvc-big")
    if found is None:
        ctx.note("dvc is not installed (pip install -e '.[bench]'): DVC rows skipped")
        return []
    repo, dvc = found
    ctx.log("dvc add of the big file")
    target = repo / big.name
    shutil.copyfile(big, target)
    _backdate(target)
    settle()
    _warm(target)
    add_s = run_tool([dvc, "add", "-q", target.name], repo, DVC_ENV)
    readd_s = run_tool([dvc, "add", "-q", target.name], repo, DVC_ENV)
    status_s = run_tool([dvc, "status", "-q"], repo, DVC_ENV)
    remove(repo)
    remove(ctx.work / "dvc-big-site")
    size = ctx.human_size()
    ctx.note(f"dvc on the {size} file: one run each (a subprocess, as a user runs it; "
             "about a minute for all three at 1 GiB), so no [min–max]")
    return [
        Row(SECTION, f"dvc add new {size} file (peer)", add_s, "s", note="subprocess"),
        Row(SECTION, f"dvc add unchanged {size} file again (peer)", readd_s, "s"),
        Row(SECTION, "dvc status after that (peer)", status_s, "s"),
    ]


# -- 10k small files ---------------------------------------------------------------------------


def _small_tree(ctx: Context) -> Path:
    root = ctx.work / f"small-{ctx.files}"
    marker = ctx.work / f"small-{ctx.files}.complete"
    if marker.exists():
        return root
    ctx.log(f"writing {ctx.files} small files")
    remove(root)
    rng = np.random.default_rng(7)
    per_dir = 100
    for index in range(ctx.files):
        directory = root / f"d{index // per_dir:04d}"
        if index % per_dir == 0:
            directory.mkdir(parents=True)
        size = int(rng.integers(1 * KiB, 4 * KiB + 1))
        (directory / f"f{index:06d}.bin").write_bytes(rng.bytes(size))
    marker.touch()
    return root


def _small_files(ctx: Context) -> list[Row]:
    tree = _small_tree(ctx)
    ctx.log(f"add of {ctx.files} small files")
    ours = []
    store_path = ctx.work / "store-small"
    for _ in range(ctx.rounds):
        remove(store_path)
        settle()
        store = _open(store_path)
        elapsed, artifact = time_once(lambda s=store: s.add(tree, "small"))
        ours.append(elapsed)
        store.close()
    remove(store_path)
    assert artifact.summary["files"] == ctx.files
    dvc_s: list[float] = []
    for _ in range(ctx.rounds if ctx.tool("dvc") else 0):  # fresh repositories
        repo, dvc = dvc_repo(ctx, "dvc-small")  # type: ignore[misc]
        ctx.log(f"dvc add of {ctx.files} small files")
        shutil.copytree(tree, repo / tree.name)
        settle()
        dvc_s.append(run_tool([dvc, "add", "-q", tree.name], repo, DVC_ENV))
        remove(repo)
        remove(ctx.work / "dvc-small-site")
    per_file = statistics.median(ours) / ctx.files * 1e6
    return [speed_row(SECTION, f"add dir of {ctx.files} files of 1–4 KiB ({per_file:.0f} µs/file)",
                      ours, dvc_s or None, "dvc add", at_least=10)]


# -- small records -----------------------------------------------------------------------------


def _configs(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [
        {"name": f"config-{i}", "learning_rate": 1e-4 * (i + 1), "layers": [64, 32, i % 7],
         "seed": i, "optimizer": "adam", "dropout": 0.1, "augment": bool(i % 2),
         "features": [f"feature_{j}" for j in range(8)]}
        for i in range(offset, offset + n)
    ]


def _raw_lmdb(ctx: Context, payloads: list[tuple[bytes, bytes]]) -> dict[str, float]:
    """Rates of raw LMDB on the same bytes: one fsynced transaction per put, all puts in one
    transaction, one read transaction per get, all gets in one."""
    import lmdb

    path = ctx.scratch("raw-lmdb")
    env = lmdb.open(str(path), map_size=1 << 30, max_dbs=4, sync=True, metasync=True,
                    writemap=False, readahead=False)
    db = env.open_db(b"records")
    n = len(payloads)
    half = n // 2
    start = time.perf_counter()
    for key, value in payloads[:half]:
        with env.begin(write=True, db=db) as txn:
            txn.put(key, value)
    put_each = half / (time.perf_counter() - start)
    start = time.perf_counter()
    with env.begin(write=True, db=db) as txn:
        for key, value in payloads[half:]:
            txn.put(key, value)
    put_batch = (n - half) / (time.perf_counter() - start)
    start = time.perf_counter()
    for key, _value in payloads:
        with env.begin(db=db) as txn:
            assert txn.get(key) is not None
    get_each = n / (time.perf_counter() - start)
    start = time.perf_counter()
    with env.begin(db=db) as txn:
        for key, _value in payloads:
            assert txn.get(key) is not None
    get_batch = n / (time.perf_counter() - start)
    env.close()
    remove(path)
    return {"put_each": put_each, "put_batch": put_batch, "get_each": get_each,
            "get_batch": get_batch, "put_six": _raw_in(ctx, payloads[:half], SIX_DBS),
            "put_three": _raw_in(ctx, payloads[:half], SIX_DBS[:2] + SIX_DBS[4:5])}


#: the named databases one ``Store.add`` of a small unnamed config writes; the record, its
#: content and its event (the first two and the fifth) are the fewest any add could write
SIX_DBS = (
    "records",  # the artifact record
    "chunks",  # its content, inline (at most 2000 bytes)
    "blobs",  # the content's manifest
    "by_kind",  # the index by kind
    "events",  # the event log
    "added",  # the event index: digest -> event number
)


def _raw_in(ctx: Context, payloads: list[tuple[bytes, bytes]], names: tuple[str, ...]
            ) -> float:
    """Rate of one fsynced transaction per payload that puts its bytes into each of the
    named databases of :data:`SIX_DBS` (the same bytes in each, under the key shape of
    each: the digest, the kind index's ``kind \\0 digest``, the event log's counter): with
    all six, the pages an add really writes before its sync."""
    import lmdb

    path = ctx.scratch(f"raw-lmdb-{len(names)}")
    env = lmdb.open(str(path), map_size=1 << 30, max_dbs=len(SIX_DBS) + 2, sync=True,
                    metasync=True, writemap=False, readahead=False)
    dbs = {name: env.open_db(name.encode()) for name in names}
    puts = [(dict(zip(SIX_DBS, (key, key, key, b"config\0" + key,
                                number.to_bytes(8, "big"), key), strict=True)), value)
            for number, (key, value) in enumerate(payloads)]
    start = time.perf_counter()
    for keys, value in puts:
        with env.begin(write=True) as txn:
            for name, db in dbs.items():
                txn.put(keys[name], value, db=db)
    rate = len(payloads) / (time.perf_counter() - start)
    env.close()
    remove(path)
    return rate


def _ours_records(ctx: Context, configs: list[dict[str, Any]]) -> dict[str, float]:
    """The same rates through the Store: add (one durable transaction each), prepare × n
    then one commit, load (resolve, verify both digests, decode)."""
    n = len(configs) // 2
    store_path = ctx.work / "store-records"
    remove(store_path)
    store = _open(store_path)
    try:
        start = time.perf_counter()
        added = [store.add(c) for c in configs[:n]]
        put_each = n / (time.perf_counter() - start)
        start = time.perf_counter()
        prepared = [store._prepare(c) for c in configs[n:]]
        store._write(lambda txn: [p.commit(txn) for p in prepared])
        put_batch = (len(configs) - n) / (time.perf_counter() - start)
        added += [p.artifact for p in prepared]
        revisions = [a.raw_digest for a in added]
        start = time.perf_counter()
        for revision in revisions:
            store.load(revision)
        get_each = len(revisions) / (time.perf_counter() - start)
        assert [store.load(r) for r in revisions[:3]] == configs[:3]
    finally:
        store.close()
        remove(store_path)
    return {"put_each": put_each, "put_batch": put_batch, "get_each": get_each}


def _ratio(rates: list[float], reference: list[float]) -> float:
    """The median of the round-by-round ratios ``rates[i] / reference[i]``."""
    return statistics.median(r / ref for r, ref in zip(rates, reference, strict=True))


def _records(ctx: Context) -> list[Row]:
    from lineage.core import encoding

    n = 1000 if not ctx.quick else 100
    ctx.log(f"{2 * n} small records through Store and raw LMDB, {ctx.rounds} rounds")
    ours: dict[str, list[float]] = {"put_each": [], "put_batch": [], "get_each": []}
    raw: dict[str, list[float]] = {"put_each": [], "put_batch": [], "get_each": [],
                                   "get_batch": [], "put_six": [], "put_three": []}
    for index in range(ctx.rounds):  # interleaved; new configs each round (new content)
        configs = _configs(2 * n, offset=index * 2 * n)
        payloads = [(xxhash.xxh3_128_digest(b := encoding.encode(c)), b) for c in configs]
        for key, value in _raw_lmdb(ctx, payloads).items():
            raw[key].append(value)
        for key, value in _ours_records(ctx, configs).items():
            ours[key].append(value)
    ctx.note(
        "records: Store.add(config) commits a record (+ its content, kept inline in LMDB when "
        "it is at most 2000 bytes, and indexes) durably per call, so it is compared with one "
        "fsynced LMDB transaction per put of the same msgpack bytes (each touches one LMDB "
        "database; an add touches six — records, content, index by kind, event log, event "
        "index, manifest — so it writes more pages per sync). The second reference puts "
        "the same bytes into those six databases in one fsynced transaction per add: the "
        "pages an add really writes, so its ratio is the cost of the add's own work (hashing, "
        "encoding, building the record) on top of LMDB's; batched = Store.prepare for "
        "each config then one commit of all, vs all raw puts in one transaction. "
        "Store.load(digest) resolves the revision, verifies the record's and the content's "
        "digests and decodes; raw = one get per read transaction. Raw LMDB batched gets: "
        f"{format_value(statistics.median(raw['get_batch']), '/s')}. What writing more "
        "databases per fsynced transaction costs raw LMDB alone, as a ratio of one database "
        f"(median of the rounds): six {_ratio(raw['put_six'], raw['put_each']):.2f}×; three, "
        "the fewest an add could write (the record, its content, its event) "
        f"{_ratio(raw['put_three'], raw['put_each']):.2f}×."
    )
    return [
        rate_row(SECTION, "small records: add, one durable txn each", ours["put_each"],
                 raw["put_each"], "raw lmdb put+commit", at_least=0.8),
        rate_row(SECTION, "small records: add vs raw put+commit into 6 databases",
                 ours["put_each"], raw["put_six"], "raw lmdb 6 puts+commit"),
        rate_row(SECTION, "small records: prepare × n, one commit", ours["put_batch"],
                 raw["put_batch"], "raw lmdb puts, 1 txn"),
        rate_row(SECTION, "small records: load (resolve, verify, decode)", ours["get_each"],
                 raw["get_each"], "raw lmdb get, 1 txn each", at_least=0.05),
    ]
