"""A store holding a little of everything, and what it must give back."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lineage
from lineage.core.hashing import Digest
from lineage.core.records import Artifact
from lineage.storage import schema
from lineage.store import Store


@dataclass
class Expected:
    """Revisions of a populated store and what each must give back."""

    content: dict[str, str] = field(default_factory=dict)  # revision -> xxh128 of read_bytes
    trees: dict[str, dict[str, str]] = field(default_factory=dict)  # revision -> {path: hex}
    records: dict[str, str] = field(default_factory=dict)  # revision -> record digest

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__))

    @classmethod
    def load(cls, path: Path) -> Expected:
        return cls(**json.loads(path.read_text()))


def populate(store: Store, tmp: Path, *, seed: int = 0, scale: int = 1) -> Expected:
    """Small values, multi-chunk blobs, configs, a directory, runs; return what to expect."""
    rng = random.Random(seed)
    expected = Expected()

    def note(revision: str, artifact: Artifact | Any) -> None:
        expected.records[revision] = artifact.digest

    for index in range(12 * scale):
        data = rng.randbytes(rng.randint(1, 6000))
        note(f"small@v{index + 1}", store.add(data, name="small", meta={"i": index}))
        expected.content[f"small@v{index + 1}"] = lineage.core.hashing.digest_bytes(data).hex()
    for index in range(3 * scale):
        data = rng.randbytes(rng.randint(200_000, 700_000))
        note(f"large@v{index + 1}", store.add(data, name="large"))
        expected.content[f"large@v{index + 1}"] = lineage.core.hashing.digest_bytes(data).hex()
    for index in range(6 * scale):
        config = {"C": index / 10, "penalty": rng.choice(["l1", "l2"]), "layers": [index] * 3}
        note(f"config@v{index + 1}", store.add(config, name="config"))
    tree = tmp / "cohort"
    (tree / "sub").mkdir(parents=True, exist_ok=True)
    files = {}
    for index in range(5):
        relative = f"sub/part{index}.csv" if index % 2 else f"part{index}.csv"
        data = rng.randbytes(rng.randint(10, 90_000))
        (tree / relative).write_bytes(data)
        files[relative] = lineage.core.hashing.digest_bytes(data).hex()
    note("cohort@v1", store.add(tree, name="cohort", kind="dataset"))
    expected.trees["cohort@v1"] = files
    for index in range(4 * scale):
        with store.run("train", params={"C": index}) as run:
            run.log_input("config@v1")
            run.log_metric("sensitivity", 0.8 + index / 100)
        note(f"run{index}", run.record)
    store.tag("small@v2", "small_v2")
    store.promote("large@v1", "production")
    return expected


def blob_owners(store: Store) -> dict[Digest, list[Artifact]]:
    """Blob digest -> the artifacts holding it (directory files: the directory)."""
    owners: dict[Digest, list[Artifact]] = {}
    with store._read() as txn:
        for digest, _data in schema.digest_entries(txn, "records"):
            record = schema.read_record(txn, digest)
            if not isinstance(record, Artifact) or record.blob is None:
                continue
            found = schema.manifest(txn, record.blob)
            owners.setdefault(record.blob, []).append(record)
            for child in found.children if found is not None else []:
                owners.setdefault(child, []).append(record)
    return owners
