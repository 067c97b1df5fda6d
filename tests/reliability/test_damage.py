"""Damaged content is always detected, on read and by verify, naming what is damaged; a
malformed stored value only ever raises CorruptRecordError.

Bit flips land in chunk bytes (inside packs), chunk locations, records and blob manifests;
each round damages several objects whose reads do not cross, checks that reading each one
raises a typed error naming it, that ``verify`` names every one, then restores them.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
from _campaign import size
from _stores import populate
from conftest import Figures

import lineage
from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.errors import CorruptRecordError, IntegrityError, LineageError
from lineage.storage import schema
from lineage.storage.blobs import read_blob
from lineage.storage.files import looks_like_tree, tree_entries
from lineage.storage.packs import split_location
from lineage.store import Store

KINDS = ("pack", "location", "record", "manifest")


class Target:
    """One damageable object: how to damage it, read it and name it."""

    def __init__(self, kind: str, digest: Digest, blobs: frozenset[Digest]) -> None:
        self.kind, self.digest, self.blobs = kind, digest, blobs

    def __repr__(self) -> str:
        return f"<{self.kind} {self.digest.hex()}>"


def _targets(store: Store) -> list[Target]:
    found: list[Target] = []
    with store._read() as txn:
        owners: dict[Digest, set[Digest]] = {}
        for blob, raw in schema.digest_entries(txn, "blobs"):
            for chunk in schema.decode_manifest(blob, raw).chunks:
                owners.setdefault(chunk, set()).add(blob)
            found.append(Target("manifest", blob, frozenset({blob})))
        for chunk, _location in schema.digest_entries(txn, "chunks"):
            blobs = frozenset(owners.get(chunk, ()))
            found += [Target("pack", chunk, blobs), Target("location", chunk, blobs)]
        found += [Target("record", digest, frozenset())
                  for digest, _ in schema.digest_entries(txn, "records")]
    return found


def _flip_value(store: Store, namespace: str, key: bytes, rng: random.Random) -> Callable[[], None]:
    original: dict[str, bytes] = {}

    def flip(txn: Any) -> None:
        data = bytearray(txn.get(namespace, key))
        original["value"] = bytes(data)
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        txn.put(namespace, key, bytes(data))

    store._write(flip)
    return lambda: store._write(lambda txn: txn.put(namespace, key, original["value"]))


def _flip_pack(store: Store, chunk: Digest, rng: random.Random) -> Callable[[], None]:
    """Flip a bit of the chunk's bytes: in its pack, or in LMDB for a small chunk stored
    inline (its location ``=`` + bytes)."""
    with store._read() as txn:
        location = schema.chunk_location(txn, chunk)
    assert location is not None
    if location[:1] == b"=":
        position, mask = 1 + rng.randrange(len(location) - 1), 1 << rng.randrange(8)
        flipped = bytearray(location)
        flipped[position] ^= mask
        store._write(lambda txn: schema.put_chunk_location(txn, chunk, bytes(flipped)))
        return lambda: store._write(lambda txn: schema.put_chunk_location(txn, chunk, location))
    offset, length, name = split_location(location)
    position = offset + rng.randrange(length)
    mask = 1 << rng.randrange(8)
    path = Path(store.path) / "packs" / f"{name}.pack"

    def xor() -> None:
        with open(path, "r+b") as handle:
            handle.seek(position)
            byte = handle.read(1)[0]
            handle.seek(position)
            handle.write(bytes([byte ^ mask]))

    xor()
    return xor


def damage(store: Store, target: Target, rng: random.Random) -> Callable[[], None]:
    """Flip one random bit of ``target``; return what undoes it."""
    if target.kind == "pack":
        return _flip_pack(store, target.digest, rng)
    namespace = {"location": "chunks", "record": "records", "manifest": "blobs"}[target.kind]
    return _flip_value(store, namespace, target.digest, rng)


def read(store: Store, target: Target) -> None:
    """Read ``target`` the way every load, checkout and resolve does."""
    with store._read() as txn:
        if target.kind == "record":
            schema.read_record(txn, target.digest)
            return
        for blob in sorted(target.blobs):
            head = read_blob(store._backend, txn, blob)
            if looks_like_tree(head):
                tree_entries(store._backend, txn, blob)


def _pick(targets: list[Target], count: int, rng: random.Random) -> list[Target]:
    """Up to ``count`` targets whose reads cross no other's damage."""
    chosen: list[Target] = []
    used: set[Digest] = set()
    for target in rng.sample(targets, min(len(targets), count * 4)):
        if target.kind != "record" and (not target.blobs or target.blobs & used):
            continue
        if target.kind == "record" and target.digest in used:
            continue
        chosen.append(target)
        used |= target.blobs | {target.digest}
        if len(chosen) == count:
            break
    return chosen


def test_every_bit_flip_is_detected_on_read_and_by_verify_naming_the_damage(
        tmp_path: Path, figures: Figures) -> None:
    flips = size(240, 10_000)
    rng = random.Random(13)
    store = lineage.open(tmp_path / "store")
    populate(store, tmp_path)
    targets = _targets(store)
    done = {kind: 0 for kind in KINDS}
    while sum(done.values()) < flips:
        chosen = _pick(targets, 8, rng)
        undo = [damage(store, target, rng) for target in chosen]
        problems = store.verify().problems
        for target in chosen:
            with pytest.raises((IntegrityError, CorruptRecordError)) as caught:
                read(store, target)
            assert target.digest.hex() in str(caught.value), (target, caught.value)
            assert any(target.digest.hex() in problem for problem in problems), (target, problems)
            done[target.kind] += 1
        for restore in reversed(undo):
            restore()
    report = store.verify()
    assert report.ok, report.problems
    store.close()
    figures.update(flips=sum(done.values()), by_kind=done, detected_on_read="100%",
                   named_by_verify="100%")


# -- malformed stored values ------------------------------------------------------------


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(11 if depth < 3 else 8)
    return [
        lambda: None, lambda: rng.random() < 0.5, lambda: rng.randint(-2**63, 2**64 - 1),
        lambda: rng.random() * 1e6, lambda: "".join(map(chr, rng.sample(range(32, 0x2FF), 5))),
        lambda: rng.randbytes(rng.choice([0, 3, 15, 16, 17])),
        lambda: msgpack.ExtType(rng.choice([1, 2, 3, 99]), rng.randbytes(rng.choice([0, 16]))),
        lambda: rng.choice(["ok", "v1", "lineage/artifact", "lineage/run"]),
        lambda: [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))],
        lambda: {str(rng.randrange(9)): _random_value(rng, depth + 1)
                 for _ in range(rng.randrange(4))},
        lambda: {rng.randrange(9): _random_value(rng, depth + 1)},
    ][choice]()


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=False)  # type: ignore[no-any-return]


_WRONG: dict[type, list[Any]] = {
    str: [5, None, b"bytes", [1], {"a": 1}, 2.5, True],
    int: ["3", -1, 2.5, None, [1], True, b"\x00"],
    dict: [[1, 2], "x", 3, None, {1: "int key"}],
    list: [{"a": 1}, "x", 3, [b"short"], ["not a digest"]],
}


def _malformed_record(rng: random.Random, good: list[bytes]) -> bytes:
    """Bytes that are certainly not a well-formed record."""
    original = rng.choice(good)
    how = rng.randrange(6)
    if how == 0:
        return rng.randbytes(rng.randrange(1, 120))
    if how == 1:
        return original[:rng.randrange(len(original))]
    tag, schema_version, body = encoding.decode(original)
    body = dict(body)
    if how == 2:  # a field of the wrong type
        field = rng.choice([k for k, v in body.items() if type(v) in _WRONG])
        body[field] = rng.choice(_WRONG[type(body[field])])
        if field == "size" and body[field] == -1:
            body[field] = "x"
    elif how == 3:  # a field that no record has, or one that must never be stored
        body[rng.choice(["_digest", "version", "unknown", "kind2"])] = _random_value(rng)
    elif how == 4:  # the frame around the body
        return _pack(rng.choice([[tag, schema_version], [tag, 2, body], [tag, schema_version,
                                 [body]], ["lineage/other", 1, body], body, [1, 1, body],
                                 [tag, "1", body]]))
    else:
        return _pack([tag, schema_version, _random_value(rng)])
    return _pack([tag, schema_version, body])


def _malformed(rng: random.Random, good: bytes) -> bytes:
    """Random, truncated or re-typed bytes for an index value that was ``good``."""
    how = rng.randrange(3)
    if how == 0:
        return rng.randbytes(rng.randrange(0, 60))
    if how == 1:
        return good[:rng.randrange(len(good))]
    value = encoding.decode(good)
    if isinstance(value, list) and value and rng.random() < 0.7:
        value = list(value)
        index = rng.randrange(len(value))
        value[index] = rng.choice([None, "x", 1.5, [1], {"a": 1}, b"short", True,
                                   msgpack.ExtType(2, (2**70).to_bytes(10, "big"))])
        return _pack(value)
    return _pack(_random_value(rng))


def _plant(store: Store, namespace: str, key: bytes, value: bytes,
           extra: Callable[[Any], None] | None = None) -> Callable[[], None]:
    saved: dict[str, bytes | None] = {}

    def plant(txn: Any) -> None:
        saved["value"] = txn.get(namespace, key)
        txn.put(namespace, key, value)
        if extra is not None:
            extra(txn)

    def restore(txn: Any) -> None:
        if saved["value"] is None:
            txn.delete(namespace, key)
        else:
            txn.put(namespace, key, saved["value"])

    store._write(plant)
    return lambda: store._write(restore)


def _raises_only(allowed: tuple[type[LineageError], ...], action: Callable[[], Any]) -> bool:
    """Run ``action``: True if it raised one of ``allowed``, False if it returned. Any other
    exception propagates and fails the test."""
    try:
        action()
    except allowed:
        return True
    return False


def _point_at(digest: Digest) -> Callable[[Any], None]:
    def point(txn: Any) -> None:
        schema.put_tag(txn, "planted_tag", digest)
        schema.put_version(txn, "planted", schema.VersionEntry(0, "v1", digest, 0.0))

    return point


def test_malformed_stored_values_only_raise_corrupt_record_error(
        tmp_path: Path, figures: Figures) -> None:
    """Records (planted under their own digest, so the hash check passes) always raise;
    index values raise CorruptRecordError or, when the change left them well-formed, read
    on; a manifest that decodes but lies about its content is an IntegrityError. Nothing
    else ever escapes, and verify always reports instead of raising."""
    plants = size(150, 10_000)
    rng = random.Random(29)
    store = lineage.open(tmp_path / "store")
    populate(store, tmp_path)
    with store._read() as txn:
        good_records = [data for _d, data in schema.digest_entries(txn, "records")]
        version_key, version_value = next(txn.items("versions", b"small\0"))
        history_key, history_value = next(txn.items("history", b"config\0"))
        events = list(txn.items("events"))
        blob_key, blob_value = next(schema.digest_entries(txn, "blobs"))
        run = store.runs(op="train")[0]
        metric_key, metric_value = next(txn.items("metrics", run.id.encode()))
    counts = dict.fromkeys(("records", "versions", "history", "manifests", "events",
                            "metrics"), 0)
    raised = 0
    only = (CorruptRecordError,)
    for index in range(plants):
        where = list(counts)[index % len(counts)]
        if where == "records":
            data = _malformed_record(rng, good_records)
            digest = digest_bytes(data)  # its own digest: the hash check passes
            undo = _plant(store, "records", digest, data, _point_at(digest))
            outcomes = [_raises_only(only, check) for check in (
                lambda: store.resolve("planted"), lambda: store.resolve("planted_tag"),
                lambda: store.versions("planted"), lambda d=digest: store.resolve(d))]
            assert all(outcomes), (index, data)
        elif where == "versions":
            undo = _plant(store, "versions", version_key, _malformed(rng, version_value))
            outcomes = [_raises_only(only, lambda: store.resolve("small@v1")),
                        _raises_only(only, lambda: store.versions("small"))]
        elif where == "history":
            undo = _plant(store, "history", history_key, _malformed(rng, history_value))
            outcomes = [_raises_only(only, lambda: store.log("config"))]
            assert all(outcomes), index
        elif where == "manifests":
            undo = _plant(store, "blobs", blob_key, _malformed(rng, blob_value))
            outcomes = [_raises_only((CorruptRecordError, IntegrityError),
                                     lambda: read_blob_of(store, blob_key))]
        elif where == "events":
            key, value = rng.choice(events)
            undo = _plant(store, "events", key, _malformed(rng, value))
            outcomes = [_raises_only(only, lambda: store.events())]
        else:
            undo = _plant(store, "metrics", metric_key, _malformed(rng, metric_value))
            outcomes = [_raises_only(only, lambda: store.metric_history(run, "sensitivity"))]
        raised += any(outcomes)
        report = store.verify()  # reports; never raises
        if where in ("records", "history"):
            assert not report.ok, (where, index)
        undo()
        counts[where] += 1
    store._write(lambda txn: schema.put_tag(txn, "planted_tag", None))
    store.close()
    figures.update(planted=sum(counts.values()), by_place=counts, raised_typed=raised,
                   other_exceptions=0)


def read_blob_of(store: Store, blob: Digest) -> bytes:
    with store._read() as txn:
        return read_blob(store._backend, txn, blob)


def _drop_versions(txn: Any, name: str) -> None:
    for key, _value in list(txn.items("versions", name.encode() + b"\0")):
        txn.delete("versions", key)
    for key, _value in list(txn.items("version_keys", name.encode() + b"\0")):
        txn.delete("version_keys", key)


def test_a_record_with_an_unknown_field_cannot_lie_about_its_digest(store: Store) -> None:
    artifact = store.add(b"real", name="real")
    forged = encoding.encode(["lineage/artifact", 1, {**artifact.content(),
                                                      "_digest": artifact.raw_digest}])
    digest = digest_bytes(forged)
    store._write(lambda txn: txn.put("records", digest, forged))
    with pytest.raises(CorruptRecordError, match="_digest"):
        store.resolve(digest)
    assert any(digest.hex() in problem for problem in store.verify().problems)


def test_a_record_with_int_and_bytes_keys_in_its_meta_still_reads(store: Store) -> None:
    """Map keys may be str, int or bytes (the encoding sorts all three): strict field
    checks must not refuse a legitimate record."""
    added = store.add(b"content", name="data", meta={1: "int key", b"k": "bytes key"},
                      kind="dataset")
    assert store.resolve("data").meta == {1: "int key", b"k": "bytes key"}
    assert store.resolve(added.raw_digest) == added
    assert store.verify().ok


def test_a_damaged_chunk_location_is_an_integrity_error_not_a_unicode_error(
        store: Store) -> None:
    """The bare UnicodeDecodeError out of ``load`` came from a location's pack name."""
    added = store.add(b"content of a model", name="model")
    assert added.blob is not None
    blob = added.blob

    def damage(txn: Any) -> None:
        location = bytearray(txn.get("chunks", blob))
        location[-3] = 0xFF  # not UTF-8, and never a pack name
        txn.put("chunks", blob, bytes(location))

    store._write(damage)
    with pytest.raises(IntegrityError, match=blob.hex()):
        store.load("model")
    assert any(blob.hex() in problem for problem in store.verify().problems)


def test_a_damaged_version_index_never_yields_another_versions_content(store: Store) -> None:
    """``name@v1`` looked its position up in one index and its target in another: a
    damaged position made it return v3's content. Each lookup now cross-checks."""
    for index in range(3):
        store.add(f"version {index + 1}".encode(), name="model")
    store._write(lambda txn: txn.put("version_keys", b"model\0v1",
                                     txn.get("version_keys", b"model\0v3")))
    with pytest.raises(CorruptRecordError, match="inconsistent"):
        store.resolve("model@v1")
    assert store.load("model@v2") == b"version 2"
    assert any("model@v" in problem for problem in store.verify().problems)
    store._write(lambda txn: txn.put("version_keys", b"model\0v1", (0).to_bytes(8, "big")))
    store._write(lambda txn: txn.put("version_keys", b"model\0v3", (0).to_bytes(8, "big")))
    for revision in ("model", "model@v3", "model@v3~1"):
        with pytest.raises(CorruptRecordError):
            store.resolve(revision)
