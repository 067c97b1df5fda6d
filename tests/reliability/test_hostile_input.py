"""Hostile revisions, names and paths: every one refused with a typed error, nothing
resolved by trimming, nothing changed in the store, nothing written outside the target."""

from __future__ import annotations

import hashlib
import os
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Figures
from hypothesis import given
from hypothesis import strategies as st

import lineage
from lineage.core import encoding
from lineage.core.records import Artifact
from lineage.errors import (
    CorruptRecordError,
    InvalidName,
    InvalidRevision,
    LineageError,
    PathError,
    RevisionNotFound,
)
from lineage.refs import registry
from lineage.storage.files import TREE_TAG
from lineage.storage.schema import index_record
from lineage.storage.staging import stage
from lineage.store import Store
from lineage.testing import snapshot

# -- revisions ----------------------------------------------------------------------------

MALFORMED_REVISIONS: list[Any] = [
    # trailing or leading whitespace and control characters: never trimmed
    "model\n", "model ", " model", "model\t", "model\r", "\nmodel", "model\r\n", "model\x0b",
    "model\x0c", "model\x00", "mo\x00del", "model\x7f", "model\x1b[31m", "model\x85",
    "model@v1\n", "model@v1 ", "model@ v1", "model~1\n", "model~ 1",
    # invisible and lookalike unicode
    "model\u00a0", "model\u200b", "\ufeffmodel", "model\u2028", "model\u3000", "mod\u00adel",
    "mod\u0435l", "m\u03bfdel", "\uff4d\uff4f\uff44\uff45\uff4c", "model\u0301", "model\ud800",
    "model\udcff", "\uff21\uff22\uff23\uff24\uff25\uff26",
    # the ~N suffix
    "model~", "model~" + "9" * 5000, "model~" + "1" * 10, "model~1x", "model~-1", "model~+1",
    "model~1.5", "model~\u0661", "model~\uff11", "model~\u00b2", "model~~1", "model~1~",
    "~1", "~",
    # @ and its parts
    "model@", "@v1", "@", "model@@v1", "model@v1@v2", "model@v 1", "model@-v1", "model@.v1",
    "model@" + "v" * 300, "model@{1}",
    # reserved and shell characters
    "model/v1", "a:b", "model@v1/x", "model;rm", "model|x", "model$x", "model*", "model?",
    "model'", 'model"', "model<x", "model>x", "model,x", "model#1", "model^1", "model%00",
    "model\\x", "model(1)", "model[1]", "model=x", "model+x", "model!x", "model&x",
    # length and shape
    "", "x" * 201, "x" * 1025, "x" * 100_000, "-model", ".model", "..", ".", "0" * 33,
    "f" * 40, "DEADBEEF" * 5,
    # not text at all
    None, 5, 5.0, b"model", ["model"], {"model": 1}, bytearray(b"model"),
]


def _fill(store: Store) -> Store:
    store.add(b"one", name="model")
    store.add(b"two", name="model")
    store.add({"C": 0.5}, name="config")
    store.tag("model@v1", "model_v1")
    store.promote("model@v2", "production")
    return store


@pytest.fixture
def filled(store: Store) -> Store:
    return _fill(store)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One filled store for the property tests (which only read)."""
    store = _fill(lineage.open(tmp_path_factory.mktemp("shared") / "store"))
    yield store
    store.close()


def test_at_least_sixty_malformed_revisions_each_raise_invalid_revision(
        filled: Store, figures: Figures) -> None:
    assert len(MALFORMED_REVISIONS) >= 60
    before = snapshot(filled._backend)
    for bad in MALFORMED_REVISIONS:
        for call in (filled.resolve, filled.describe, filled.ancestors, filled.read_bytes):
            with pytest.raises(InvalidRevision) as caught:
                call(bad)
            assert isinstance(caught.value, ValueError) and str(caught.value), bad
            assert len(str(caught.value)) < 400, bad  # one readable line, even for 100k chars
    with pytest.raises(InvalidRevision):
        filled.diff("model@v1", "model\n")
    assert snapshot(filled._backend) == before
    figures.update(malformed_revisions=len(MALFORMED_REVISIONS), calls_each=5,
                   other_errors=0)


def test_the_cli_refuses_a_malformed_revision_in_one_line(filled: Store,
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    from lineage.cli import main

    for bad in ["model\n", "model ", "model~" + "9" * 5000, "mod\u0435l", "model\x00x"]:
        code = main(["--store", filled.path, "show", bad])
        err = capsys.readouterr().err
        assert code != 0
        assert err.startswith("lineage: error:") and err.count("\n") == 1, err
        assert "Traceback" not in err


_WHITESPACE = "".join(chr(c) for c in range(0x110000)
                      if chr(c).isspace() or not chr(c).isprintable())[:2000]
padding = st.text(alphabet=st.sampled_from(_WHITESPACE.replace("\ud800", "")), min_size=1,
                  max_size=4)


@given(pad=padding, revision=st.sampled_from(["model", "model@v1", "model@production",
                                              "model_v1", "config", "model~1"]),
       where=st.sampled_from(["before", "after", "inside"]))
def test_no_padded_revision_resolves_by_trimming(shared: Store, pad: str, revision: str,
                                                  where: str) -> None:
    assert shared.resolve(revision) is not None
    middle = len(revision) // 2
    padded = {"before": pad + revision, "after": revision + pad,
              "inside": revision[:middle] + pad + revision[middle:]}[where]
    with pytest.raises(InvalidRevision):
        shared.resolve(padded)


@given(text=st.text(max_size=80) | st.text(alphabet=string.printable, max_size=40)
       | st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9._@~-]{0,40}", fullmatch=True))
def test_any_text_resolves_or_raises_a_lineage_error(shared: Store, text: str) -> None:
    try:
        record = shared.resolve(text)
    except (InvalidRevision, RevisionNotFound) as exc:
        assert isinstance(exc, LineageError)
        return
    assert text.strip() == text and text.isprintable()  # whatever resolved was exact
    assert record.digest.startswith(text.lower()) or text.split("@")[0].split("~")[0] in (
        "model", "config", "model_v1")


# -- names --------------------------------------------------------------------------------

INVALID_NAMES = [
    "", " ", "a b", " lead", "trail ", "tab\there", "new\nline", "cr\rhere", "nul\x00",
    "bell\x07", "del\x7f", "esc\x1b", "x" * 201, "-dash", ".dot", "..", ".", "a/b", "/abs",
    "a\\b", "a@b", "a~b", "a:b", "a;b", "a|b", "a$b", "a*b", "a?b", "a'b", 'a"b', "a<b",
    "a>b", "a,b", "a#b", "a^b", "a%b", "a(b", "a[b", "a{b", "a=b", "a+b", "a!b", "a&b",
    "deadbe", "ABCDEF0123", "0123456789abcdef0123456789abcdef", "é", "modеl", "mοdel",
    "ｍｏｄｅｌ", "model\u200b", "\ufeffmodel", "model\u00a0", "mod\u00adel", "model\ud800",
    "model\u0301", "١٢٣", "ℌello", "x\u2028y", "a\u200db", "ǅ", "x\x85y",
]
NOT_TEXT: list[Any] = [5, 2.5, b"model", ["m"]]


def test_at_least_sixty_invalid_names_are_refused_everywhere_and_change_nothing(
        filled: Store, figures: Figures) -> None:
    names = INVALID_NAMES + NOT_TEXT
    assert len(INVALID_NAMES) >= 60
    before = snapshot(filled._backend)
    actions: list[Callable[[Any], Any]] = [
        lambda n: filled.add(b"x", name=n),
        lambda n: filled.add(b"x", name="data", version=n),
        lambda n: filled.add(b"x", name="data", kind=n),
        lambda n: filled.tag("model@v1", n),
        lambda n: filled.promote("model@v1", n),
        lambda n: filled.untag(n),
        lambda n: filled.log(n),
        lambda n: filled.versions(n),
        lambda n: filled.stages(n),
    ]
    refused = 0
    for name in names:
        for action in actions:
            with pytest.raises(InvalidName) as caught:
                action(name)
            assert isinstance(caught.value, ValueError) and len(str(caught.value)) < 400
            refused += 1
    assert snapshot(filled._backend) == before
    figures.update(invalid_names=len(names), refusals=refused)


# -- paths ----------------------------------------------------------------------------------


def _describe(root: Path, skip: Path) -> dict[str, str]:
    """Every path under ``root`` (not under ``skip``) with its type and content hash."""
    found = {}
    for directory, dirs, files in os.walk(root):
        if Path(directory) == skip or skip in Path(directory).parents:
            continue
        for name in dirs + files:
            path = Path(directory) / name
            if path.is_symlink():
                found[str(path)] = "link:" + os.readlink(path)
            elif path.is_file():
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[str(path)] = "dir"
    return found


def _crafted_tree(store: Store, name: str, entries: list[list[Any]]) -> None:
    """A directory artifact ``name`` whose tree holds ``entries`` verbatim."""
    payload = stage(store._backend, b"payload")
    tree = stage(store._backend, encoding.encode([TREE_TAG, 1, entries]),
                 children=sorted({e[2] for e in entries if len(e) == 4 and e[1] in "fx"
                                  and isinstance(e[2], bytes) and len(e[2]) == 16}))
    artifact = Artifact(kind="directory", name=name, blob=tree.digest, format="directory",
                        size=7, summary={"files": 1})

    def commit(txn: Any) -> None:
        payload.commit(txn)
        tree.commit(txn)
        index_record(txn, artifact)
        registry.add_version(txn, name, artifact.raw_digest)

    store._write(commit)


def _escapes(payload: bytes) -> list[list[list[Any]]]:
    def f(path: str) -> list[Any]:
        return [path, "f", payload, 7]

    def d(path: str) -> list[Any]:
        return [path, "d", "", 0]

    def link(path: str, to: str) -> list[Any]:
        return [path, "l", to, 0]

    return [
        [f("..")], [f("../x")], [f("../../x")], [f("a/../../x")], [f("a/../x")], [f("a/..")],
        [f("/x")], [f("/tmp/lineage-escape-abs")], [f("//x")], [f("./x")], [f(".")], [f("")],
        [f("x/./y")], [f("x\x00y")], [f("..\x00")], [d("..")], [d("../d")], [d("/d")],
        [d("")], [d("a/../../d")], [[".." , "x", payload, 7]], [["../x", "x", payload, 7]],
        [link("..", "x")], [link("../l", "/")], [link("/l", "/")],
        [link("s", ".."), f("s/x")], [link("s", "/tmp"), f("s/x")],
        [link("s", "/"), f("s/etc/x")], [link("s", ".."), d("s/d")],
        [link("s", "../../"), ["s/x", "x", payload, 7]], [link("s", "."), f("s/x")],
        [d("s"), link("s", "..")], [link("s", ".."), d("s"), f("s/x")],
        [f("s"), f("s/x")], [f("s"), d("s/d")], [d("a"), f("a/b/c")], [d("a/b/c")],
        [f("nodir/x")], [f("a"), f("a")], [d("a"), f("a")], [f("a"), link("a", "/etc")],
        [f("x" * 300)], [f("/".join(["d"] * 2000))],
        [["x", "q", payload, 7]], [["x", "f", "not a digest", 7]], [["x", "f", payload, -1]],
        [[5, "f", payload, 7]], [["x", "f", payload]], [["x", "l", 5, 0]], ["not an entry"],
        [link("s", "/tmp/lineage-escape-link"), link("s/t", "x")],
    ]


def test_at_least_fifty_path_traversals_on_checkout_are_refused_writing_nothing_outside(
        store: Store, tmp_path: Path, figures: Figures) -> None:
    payload = stage(store._backend, b"payload").digest
    cases = _escapes(payload)
    assert len(cases) >= 50
    sandbox = tmp_path / "sandbox"
    (sandbox / "work").mkdir(parents=True)
    (sandbox / "keep.txt").write_bytes(b"outside the target")
    store_dir = Path(store.path)
    refused = 0
    for index, entries in enumerate(cases):
        _crafted_tree(store, f"evil{index}", entries)
        target = sandbox / "work" / "target"
        before = _describe(tmp_path, store_dir)
        with pytest.raises((PathError, CorruptRecordError)) as caught:
            store.checkout(f"evil{index}", target)
        assert isinstance(caught.value, LineageError) and len(str(caught.value)) < 600
        assert not os.path.lexists(target), entries
        assert _describe(tmp_path, store_dir) == before, entries
        refused += 1
    for absolute in ("/x", "/tmp/lineage-escape-abs", "/tmp/lineage-escape-link", "/d"):
        assert not os.path.lexists(absolute)
    figures.update(traversal_attempts=len(cases), refused=refused, written_outside=0)


def test_hostile_paths_on_add_are_refused_or_recorded_without_following_links(
        store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not part of the dataset")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "data.csv").write_bytes(b"a,b\n1,2\n")
    os.symlink(outside / "secret.txt", tree / "secret-link")
    os.symlink(outside, tree / "outside-dir")
    os.symlink("..", tree / "sub" / "up")
    os.symlink("loop", tree / "loop")
    added = store.add(tree, name="tree")
    with store._read() as txn:
        from lineage.storage.files import tree_entries

        assert added.blob is not None
        entries = {e[0]: e for e in tree_entries(store._backend, txn, added.blob)}
    assert entries["secret-link"][1] == "l" and entries["outside-dir"][1] == "l"
    assert entries["sub/up"][1:3] == ["l", ".."]
    assert not any(path.startswith("outside-dir/") for path in entries)  # never followed
    restored = tmp_path / "restored"
    store.checkout("tree", restored)
    assert os.readlink(restored / "secret-link") == str(outside / "secret.txt")
    assert (outside / "secret.txt").read_bytes() == b"not part of the dataset"
    os.mkfifo(tmp_path / "fifo")
    before = snapshot(store._backend)
    for bad in (tmp_path / "fifo", "/dev/null", tmp_path / "missing", "a\x00b",
                "x" * 5000, tmp_path / ("y" * 300)):
        with pytest.raises(PathError) as caught:
            store.add(bad)
        assert len(str(caught.value)) < 400
    (tree / "fifo").symlink_to(tmp_path / "fifo")  # a link to a fifo is recorded, not read
    os.mkfifo(tree / "sub" / "pipe")
    with pytest.raises(PathError):
        store.add(tree, name="tree")
    for target in ("a\x00b", tmp_path / ("z" * 300) / "x"):
        with pytest.raises(PathError):
            store.checkout("tree", target)
    assert snapshot(store._backend) == before


def test_checkout_never_writes_through_a_target_that_is_a_link(store: Store,
                                                              tmp_path: Path) -> None:
    store.add(b"content", name="data")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_bytes(b"keep")
    target = tmp_path / "target"
    target.symlink_to(outside)
    with pytest.raises(PathError):
        store.checkout("data", target)
    store.checkout("data", target, force=True)  # replaces the link itself
    assert not target.is_symlink() and target.read_bytes() == b"content"
    assert (outside / "keep").read_bytes() == b"keep" and len(list(outside.iterdir())) == 1
