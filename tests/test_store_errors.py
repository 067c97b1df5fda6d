"""Bad input raises its typed error and changes nothing; files and trees round-trip safely."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import lineage
import lineage.storage.files
from lineage.core import encoding
from lineage.core.records import Artifact
from lineage.errors import (
    AmbiguousRevision,
    InvalidName,
    InvalidRevision,
    LineageError,
    PathError,
    RevisionNotFound,
    StoreError,
    UnsupportedValue,
)
from lineage.refs import registry
from lineage.storage.files import TREE_TAG
from lineage.storage.schema import index_record
from lineage.storage.staging import stage
from lineage.store import Store
from lineage.testing import snapshot

BAD_NAMES = [
    "",
    "a/b",
    "a@b",
    "a~b",
    "a:b",
    "a b",
    " lead",
    "tab\there",
    "new\nline",
    "nul\x00",
    "bell\x07",
    "x" * 201,
    "-dash",
    ".dot",
    "..",
    "deadbe",
    "ABCDEF0123",
    "é",
]


@pytest.fixture
def filled(store: Store) -> Store:
    """A store with a little of everything, so 'changes nothing' means something."""
    store.add(b"one", name="model")
    store.add(b"two", name="model")
    store.add({"C": 0.5}, name="config")
    store.tag("model@v1", "model_v1")
    store.promote("model@v2", "production")
    return store


def assert_unchanged(store: Store, action: Callable[[], Any], error: type[Exception]) -> None:
    before = snapshot(store._backend)
    with pytest.raises(error) as caught:
        action()
    assert isinstance(caught.value, LineageError)
    assert str(caught.value)
    assert snapshot(store._backend) == before


# -- names ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_an_invalid_name_is_refused_everywhere_and_changes_nothing(filled: Store, bad: str) -> None:
    assert_unchanged(filled, lambda: filled.add(b"x", name=bad), InvalidName)
    assert_unchanged(filled, lambda: filled.add(b"x", name="ok", version=bad), InvalidName)
    assert_unchanged(filled, lambda: filled.tag("model@v1", bad), InvalidName)
    assert_unchanged(filled, lambda: filled.promote("model@v1", bad), InvalidName)
    assert_unchanged(filled, lambda: filled.add(b"x", name="ok", kind=bad), InvalidName)


def test_invalid_name_is_a_value_error(store: Store) -> None:
    with pytest.raises(ValueError):
        store.add(b"x", name="a/b")


def test_the_longest_name_is_accepted(store: Store) -> None:
    name = "n" * 200
    assert store.add(b"x", name=name).name == name
    assert store.load(name) == b"x"


def test_a_version_needs_a_name(filled: Store) -> None:
    assert_unchanged(filled, lambda: filled.add(b"x", version="v1"), InvalidName)


def test_an_existing_version_cannot_be_rebound(filled: Store) -> None:
    assert_unchanged(filled, lambda: filled.add(b"three", name="model", version="v1"), InvalidName)


def test_names_and_tags_cannot_shadow_each_other(filled: Store) -> None:
    assert_unchanged(filled, lambda: filled.add(b"x", name="model_v1"), InvalidName)
    assert_unchanged(filled, lambda: filled.tag("model@v1", "config"), InvalidName)


def test_versions_and_stages_cannot_shadow_each_other(filled: Store) -> None:
    assert_unchanged(filled, lambda: filled.promote("model@v1", "v2"), InvalidName)
    assert_unchanged(
        filled, lambda: filled.add(b"three", name="model", version="production"), InvalidName
    )


def test_unencodable_meta_is_refused_before_anything_is_written(filled: Store) -> None:
    assert_unchanged(
        filled, lambda: filled.add(b"x", name="data", meta={"when": object()}), UnsupportedValue
    )


# -- revisions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    ["", "   ", "~1", "model~", "model~x", "model~-1", "model@", "@v1", "model@v1@v2", "a/b",
     "model@a/b", "mo del", "0" * 33, "a:b", None, 5, b"model"],
)
def test_a_malformed_revision_raises_invalid_revision(filled: Store, bad: Any) -> None:
    assert_unchanged(filled, lambda: filled.resolve(bad), InvalidRevision)
    with pytest.raises(ValueError):
        filled.resolve(bad)


@pytest.mark.parametrize(
    ("revision", "hint"),
    [
        ("modle", "model"),
        ("configs", "config"),
        ("model_v2", "model_v1"),
        ("model@v3", "model@v2"),
        ("model@prod", "model@production"),
    ],
)
def test_an_unknown_revision_suggests_the_nearest_names(
    filled: Store, revision: str, hint: str
) -> None:
    with pytest.raises(RevisionNotFound) as caught:
        filled.resolve(revision)
    message = str(caught.value)
    assert revision.split("@")[-1] in message and hint in message
    assert isinstance(caught.value, LookupError)


def test_an_unknown_revision_in_an_empty_store_says_so(store: Store) -> None:
    with pytest.raises(RevisionNotFound, match="no named artifacts"):
        store.resolve("model")


def test_going_back_too_far_or_from_a_digest_is_not_found(filled: Store) -> None:
    with pytest.raises(RevisionNotFound, match="model"):
        filled.resolve("model~2")
    digest = filled.resolve("model").digest
    with pytest.raises(RevisionNotFound, match="version history"):
        filled.resolve(f"{digest}~1")


def test_an_unknown_digest_prefix_is_not_found(filled: Store) -> None:
    known = {filled.resolve(r).digest for r in ("model@v1", "model@v2", "config")}
    prefix = next(p for p in ("abcdef", "012345", "fedcba") if not any(
        d.startswith(p) for d in known))
    with pytest.raises(RevisionNotFound, match=prefix):
        filled.resolve(prefix)


def test_an_ambiguous_digest_prefix_lists_the_matches(store: Store) -> None:
    first, second = bytes.fromhex("abcdef01" + "0" * 24), bytes.fromhex("abcdef02" + "0" * 24)
    store._write(lambda txn: (txn.put("records", first, b""), txn.put("records", second, b"")))
    with pytest.raises(AmbiguousRevision) as caught:
        store.resolve("abcdef")
    assert first.hex()[:16] in str(caught.value) and second.hex()[:16] in str(caught.value)
    assert isinstance(caught.value, LookupError)


def test_log_of_an_unknown_name_suggests_the_nearest(filled: Store) -> None:
    with pytest.raises(RevisionNotFound, match="model"):
        filled.log("modl")


def test_untag_of_an_unknown_tag_changes_nothing(filled: Store) -> None:
    assert_unchanged(filled, lambda: filled.untag("nope"), RevisionNotFound)


def test_a_record_from_another_store_cannot_be_tagged_or_promoted(
        filled: Store, tmp_path: Path) -> None:
    """A tag or stage must name a record the store holds: an ``Artifact`` object from
    another store (or one gc removed) is refused, and nothing moves."""
    with lineage.open(tmp_path / "other") as other:
        foreign = other.add(b"elsewhere", name="model", version="v9")
    assert_unchanged(filled, lambda: filled.tag(foreign, "foreign"), RevisionNotFound)
    assert_unchanged(filled, lambda: filled.promote(foreign, "staging", force=True,
                                                    reason="test"), RevisionNotFound)
    with pytest.raises(RevisionNotFound, match="this store does not hold it"):
        filled.tag(foreign, "foreign")


def test_an_artifact_logged_in_an_open_run_is_tagged_after_the_run(store: Store) -> None:
    """Its record is stored when the run's block ends: a ref moved before would name
    nothing if the process died first."""
    with store.run("train") as run:
        model = run.log_artifact({"w": [1]}, name="model", version="v1")
        with pytest.raises(RevisionNotFound, match="logged in a run is stored when"):
            store.tag(model, "best")
    store.tag(model, "best")
    assert store.resolve("best").raw_digest == model.raw_digest


def test_an_artifact_gc_removed_cannot_be_tagged(store: Store) -> None:
    loose = store.add({"scratch": 1})  # unnamed and unused: gc takes it
    store.gc()
    with pytest.raises(RevisionNotFound):
        store.resolve(loose.raw_digest)
    assert_unchanged(store, lambda: store.tag(loose, "keep"), RevisionNotFound)


# -- paths ------------------------------------------------------------------------------


def test_adding_a_missing_path_raises_path_error_and_changes_nothing(
    filled: Store, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.csv"
    assert_unchanged(filled, lambda: filled.add(missing), PathError)
    assert_unchanged(filled, lambda: filled.add(str(missing), name="data"), PathError)
    with pytest.raises(OSError):
        filled.add(missing)


def test_adding_a_special_file_raises_path_error(filled: Store, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert_unchanged(filled, lambda: filled.add(fifo), PathError)


def test_checkout_over_an_existing_file_needs_force(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "data.csv"
    source.write_bytes(b"a,b\n1,2\n")
    store.add(source, name="data")
    existing = tmp_path / "existing.csv"
    existing.write_bytes(b"precious local edits")
    assert_unchanged(store, lambda: store.checkout("data", existing), PathError)
    assert existing.read_bytes() == b"precious local edits"
    folder = tmp_path / "folder"
    folder.mkdir()
    assert_unchanged(store, lambda: store.checkout("data", folder), PathError)
    assert folder.is_dir()
    assert store.checkout("data", existing, force=True) == existing
    assert existing.read_bytes() == b"a,b\n1,2\n"


def make_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty" / "nested-empty").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (root / "sub" / "deeper" / "empty-file").write_bytes(b"")
    (root / "run.sh").write_bytes(b"#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "link").symlink_to("a.txt")
    (root / "sub" / "up").symlink_to("../a.txt")
    (root / "dirlink").symlink_to("sub")
    return root


def describe(root: Path) -> dict[str, Any]:
    """Everything that must survive a round trip: kinds, contents, exec bits, link targets."""
    found: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[relative] = ("link", os.readlink(path))
            elif path.is_dir():
                found[relative] = ("dir",)
            else:
                executable = bool(path.stat().st_mode & stat.S_IXUSR)
                found[relative] = ("file", path.read_bytes(), executable)
    return found


def test_checkout_round_trips_a_file(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "scan.bin"
    source.write_bytes(os.urandom(700_000))
    store.add(source, name="scan")
    restored = store.checkout("scan", tmp_path / "out" / "scan.bin")
    assert restored.read_bytes() == source.read_bytes()
    loaded = store.load("scan")
    assert isinstance(loaded, Path) and loaded.read_bytes() == source.read_bytes()


def test_checkout_round_trips_a_directory(store: Store, tmp_path: Path) -> None:
    source = make_tree(tmp_path / "tree")
    added = store.add(source, name="tree")
    assert added.kind == "directory" and added.summary["files"] == 4
    restored = store.checkout("tree", tmp_path / "restored")
    assert describe(restored) == describe(source)
    again = store.add(restored, name="tree")
    assert again.digest == added.digest and again.version == "v1"


def test_checkout_of_a_directory_over_an_existing_one_needs_force(
    store: Store, tmp_path: Path
) -> None:
    store.add(make_tree(tmp_path / "tree"), name="tree")
    target = tmp_path / "target"
    target.mkdir()
    (target / "mine.txt").write_bytes(b"keep")
    assert_unchanged(store, lambda: store.checkout("tree", target), PathError)
    assert (target / "mine.txt").read_bytes() == b"keep"
    store.checkout("tree", target, force=True)
    assert describe(target) == describe(tmp_path / "tree")


def store_crafted_tree(store: Store, entries: list[list[Any]]) -> None:
    """Store a directory artifact named ``evil`` whose tree holds ``entries`` verbatim."""
    payload = stage(store._backend, b"payload")
    tree = stage(store._backend, encoding.encode([TREE_TAG, 1, entries]), children=[payload.digest])
    artifact = Artifact(kind="directory", name="evil", blob=tree.digest, format="directory",
                        size=7, summary={"files": 1})

    def commit(txn: Any) -> None:
        payload.commit(txn)
        tree.commit(txn)
        index_record(txn, artifact)
        registry.add_version(txn, "evil", artifact.raw_digest)

    store._write(commit)


ESCAPES = [
    [["../escaped", "f"]],
    [["sub/../../escaped", "f"]],
    [["/tmp/lineage-escaped-absolute", "f"]],
    [["", "f"]],
    [["sub", "l", ".."], ["sub/escaped", "f"]],  # write through a link made earlier
    [["sub", "f"], ["sub/escaped", "f"]],  # a file used as a directory
]


@pytest.mark.parametrize("entries", ESCAPES, ids=["dotdot", "nested-dotdot", "absolute",
                                                   "empty", "through-link", "file-as-dir"])
def test_checkout_refuses_a_tree_entry_that_would_escape(
    store: Store, tmp_path: Path, entries: list[list[Any]]
) -> None:
    payload = stage(store._backend, b"payload").digest
    store_crafted_tree(store, [
        [path, kind, payload if kind == "f" else rest[0], 7]
        for path, kind, *rest in entries
    ])
    work = tmp_path / "work"
    work.mkdir()
    target = work / "target"
    before_outside = sorted(p.name for p in tmp_path.iterdir())
    assert_unchanged(store, lambda: store.checkout("evil", target), PathError)
    assert not target.exists()
    assert list(work.iterdir()) == []  # no staging directory left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == before_outside
    assert not Path("/tmp/lineage-escaped-absolute").exists()


def test_checkout_of_a_value_artifact_as_a_file_writes_its_bytes(
    store: Store, tmp_path: Path
) -> None:
    store.add(b"raw bytes", name="blob")
    assert store.checkout("blob", tmp_path / "blob.bin").read_bytes() == b"raw bytes"


# -- gc with files ----------------------------------------------------------------------


def test_gc_keeps_a_directory_and_its_files_and_drops_unreachable_files(
    store: Store, tmp_path: Path
) -> None:
    tree = make_tree(tmp_path / "tree")
    store.add(tree, name="tree")
    lonely = tmp_path / "lonely.bin"
    lonely.write_bytes(os.urandom(50_000))
    prepared = store._prepare(lonely, path_name=False)  # an unnamed file: nothing reaches it
    store._write(prepared.commit)
    dropped = prepared.artifact
    report = store.gc()
    assert report.records == 1 and report.blobs == 1
    with pytest.raises(RevisionNotFound):
        store.resolve(dropped.digest)
    assert describe(store.checkout("tree", tmp_path / "out")) == describe(tree)
    assert store.verify().ok
    again = store.add(lonely, name="lonely")  # the stat cache must not point at dropped content
    assert store.read_bytes("lonely") == lonely.read_bytes()
    assert again.blob == dropped.blob


# -- the stat cache ---------------------------------------------------------------------


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every file the store reads to hash, in order."""
    seen: list[Path] = []
    real = lineage.storage.files.map_file

    def counting(path: Any) -> Any:
        seen.append(Path(path))
        return real(path)

    monkeypatch.setattr(lineage.storage.files, "map_file", counting)
    return seen


def backdate(path: Path, seconds: float = 60) -> None:
    when = time.time_ns() - int(seconds * 1e9)
    os.utime(path, ns=(when, when))


def test_re_adding_an_unchanged_file_does_not_re_hash(
    store: Store, tmp_path: Path, hashes: list[Path]
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(os.urandom(200_000))
    backdate(source)
    first = store.add(source, name="data")
    assert len(hashes) == 1
    second = store.add(source, name="data")
    assert len(hashes) == 1
    assert second.digest == first.digest and second.version == "v1"


def test_re_adding_an_unchanged_directory_does_not_re_hash(
    store: Store, tmp_path: Path, hashes: list[Path]
) -> None:
    tree = make_tree(tmp_path / "tree")
    for path in tree.rglob("*"):
        if not path.is_symlink():
            backdate(path)
    first = store.add(tree, name="tree")
    assert len(hashes) == 4
    second = store.add(tree, name="tree")
    assert len(hashes) == 4 and second.digest == first.digest


def test_a_racily_clean_file_is_re_hashed(
    store: Store, tmp_path: Path, hashes: list[Path]
) -> None:
    """Its mtime is too recent to trust: a same-size rewrite in the same tick is caught."""
    source = tmp_path / "data.bin"
    source.write_bytes(b"version one")
    info = source.stat()
    first = store.add(source, name="data")
    source.write_bytes(b"version two")  # same size, and the mtime put back
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    second = store.add(source, name="data")
    assert len(hashes) == 2
    assert second.digest != first.digest
    assert store.read_bytes("data") == b"version two"


@pytest.mark.parametrize("change", ["size", "mtime", "same-size-same-mtime", "replaced"])
def test_a_changed_file_is_re_hashed(
    store: Store, tmp_path: Path, hashes: list[Path], change: str
) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"version one")
    backdate(source, 120)
    store.add(source, name="data")
    info = source.stat()
    if change == "size":
        source.write_bytes(b"version one, longer")
        backdate(source, 120)
    elif change == "mtime":
        source.write_bytes(b"version two")
        backdate(source, 90)
    elif change == "same-size-same-mtime":
        source.write_bytes(b"version two")
        os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    else:
        replacement = tmp_path / "new.bin"
        replacement.write_bytes(b"version two")
        os.utime(replacement, ns=(info.st_atime_ns, info.st_mtime_ns))
        replacement.replace(source)
    store.add(source, name="data")
    assert len(hashes) == 2
    assert store.read_bytes("data") == source.read_bytes()
    assert [a.version for a in store.versions("data")] == ["v1", "v2"]


# -- life cycle -------------------------------------------------------------------------


def test_opening_a_file_as_a_store_raises_store_error(tmp_path: Path) -> None:
    not_a_store = tmp_path / "file"
    not_a_store.write_bytes(b"")
    with pytest.raises(StoreError):
        lineage.open(not_a_store)


def test_closing_one_handle_leaves_another_on_the_same_path_open(tmp_path: Path) -> None:
    first = lineage.open(tmp_path / "store")
    second = lineage.open(tmp_path / "store")
    first.add(b"x", name="data")
    first.close()
    assert second.load("data") == b"x"
    with pytest.raises(StoreError):
        first.load("data")
    second.close()
    with pytest.raises(StoreError):
        second.add(b"y", name="data")
    with lineage.open(tmp_path / "store") as reopened:
        assert reopened.load("data") == b"x"


def test_a_file_name_with_spaces_becomes_a_valid_name(tmp_path: Path) -> None:
    store = lineage.open(tmp_path / "s")
    source = tmp_path / "my data (final).csv"
    source.write_text("a\n1\n")
    artifact = store.add(source)
    assert artifact.name == "my_data__final_.csv"
    assert store.gc().records == 0  # named, so reachable
    assert store.load("my_data__final_.csv").read_text() == "a\n1\n"
    store.close()


def test_load_restores_a_tampered_materialized_copy(tmp_path: Path) -> None:
    store = lineage.open(tmp_path / "s")
    source = tmp_path / "data.txt"
    source.write_text("original")
    store.add(source, name="data")
    copy = store.load("data")
    copy.chmod(0o644)
    copy.write_text("tampered")
    assert store.load("data").read_text() == "original"
    store.close()
