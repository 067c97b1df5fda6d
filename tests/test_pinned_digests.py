"""Literal digests that must never change: a change of encoding, chunking, tree layout or
call-key recipe would silently orphan every cache entry and break every stored reference.

If one of these fails, the change is a format change: bump the schema and migrate, never
edit the literal.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import lineage
from lineage.core.encoding import digest_of
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact, Run, decode_record
from lineage.tracking.command import call_key

PINNED_VALUES = [
    (None, "80702dc0c878209e05264b395baf644c"),
    (True, "daf65df25d857344ee5fa5121cc81e25"),
    (False, "aaa4a839993749577ca3994e90b7fb93"),
    (0, "a6cd5e9392000f6ac44bdff4074eecdb"),
    (-1, "7e5dc90380f0640bd6bcec3c6b29d72e"),
    (-(2**63), "ece40c26836ba9b61e78c124bdc495f4"),
    (2**64 - 1, "8cd688e52bc59306bd6fd30f63a77fe8"),
    (2**64, "14f02798586ce9ba0a8ad6b515472e5b"),
    (-(2**63) - 1, "ab97af0f4e7e2a07cf45fdaa26512109"),
    (0.5, "96cb22c6e1ef79aece81e60eb41c74b6"),
    (-0.0, "3132daf6546322ca4d1062c09c42c758"),
    (float("nan"), "8c3d5884f797e87d775bc4eecde46447"),
    (float("inf"), "3aec61dfbcb23152d28bed03dbeffb50"),
    ("héllo", "0a3a3253f3d4d0e9a6b2b0b2fb1b3deb"),
    ("", "97e471de436bd0a72b98bb92609bd6f8"),
    (b"\x00\xff", "3ab8391075a8bb7213a8f3c56f32dc04"),
    ([1, "a", None], "48246b1ef56ff3b88cf78029b3a75807"),
    ((1, "a", None), "48246b1ef56ff3b88cf78029b3a75807"),
    (
        {"b": 1, "a": [2.5, {"z": None}], 3: "int key", b"k": b"v"},
        "3cedd53c567d344eee859032403d4b83",
    ),
    (Digest(bytes(range(16))), "bd2249b058f0c4b4a6a9e3f4091b0b3b"),
]


def test_value_digests_stay_the_same() -> None:
    assert [digest_of(value).hex() for value, _ in PINNED_VALUES] == [
        hex_ for _, hex_ in PINNED_VALUES]
    assert digest_bytes(b"").hex() == "99aa06d3014798d86001c324468d497f"
    assert digest_bytes(b"lineage").hex() == "97028c44d7f89638ac2fa7b37aac5ce8"


def test_record_digests_stay_the_same() -> None:
    artifact = Artifact(
        kind="dataset", name="train", blob=digest_bytes(b"rows"), format="csv", size=4,
        summary={"rows": 1, "columns": [["age", "int64"]]}, meta={"origin": "ward 7"},
        parents=(digest_bytes(b"raw"),),
    )
    assert artifact.digest == "36ee43bb2878b716b7d3721ab99c17f7"
    assert artifact.with_version("v1").digest == artifact.digest  # a view, not identity
    run = Run(
        op="train", id="run-1", inputs={"data": artifact.raw_digest}, params={"C": 0.5},
        metrics={"auc": 0.9}, started=1.0, ended=2.0,
    )
    assert run.digest == "f011295b0562f9a94c4235377dc2e657"
    assert decode_record(artifact.encode()) == artifact
    assert decode_record(run.encode()) == run


def test_directory_tree_digest_stays_the_same(store: lineage.Store, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_bytes(b"alpha\n")
    (tree / "sub" / "b.bin").write_bytes(bytes(range(256)))
    os.chmod(tree / "a.txt", 0o644)
    os.chmod(tree / "sub" / "b.bin", 0o755)
    os.symlink("a.txt", tree / "link")
    assert str(store.add(tree).blob) == "698927c8b3c9c01ecf904dd15f61fcfa"


@lineage.step(name="scale", version="1")
def _scale(x: object, factor: float = 2.0, label: object = "a") -> object:
    return x


@pytest.mark.parametrize(("args", "kwargs", "expected"), [
    ((3,), {"factor": 0.5}, "ff3cf9a17b23c2aac28efbead111c31d"),
    ((np.arange(4, dtype="<i8"),), {"label": None}, "051779b200c533c6da1b5bdd69a745e9"),
])
def test_step_call_keys_stay_the_same(store: lineage.Store, args: tuple[object, ...],
                                      kwargs: dict[str, object], expected: str) -> None:
    assert str(_scale.plan(store, *args, **kwargs).key) == expected


def test_step_call_key_of_a_path_input_stays_the_same(store: lineage.Store,
                                                      tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"hello")
    assert str(_scale.plan(store, source).key) == "6dbcd4c5e1df041552e24d13c76ed1f0"


def test_command_call_key_stays_the_same() -> None:
    key = call_key("fit", ["Rscript", "fit.R"], {"data.csv": digest_bytes(b"rows")},
                   ["model.rds", "out"])
    assert str(key) == "64e82ab359fede35435d1ba1dea6032a"
