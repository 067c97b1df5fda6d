"""Digests of bytes, files and directories; content-defined chunking."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import xxhash
from hypothesis import example, given
from hypothesis import strategies as st

from lineage.core import encoding
from lineage.core.hashing import (
    CHUNK_MAX,
    CHUNK_MIN,
    Digest,
    chunk_buffer,
    digest_bytes,
    digest_file,
)
from lineage.storage.blobs import read_blob
from lineage.storage.files import TREE_TAG, stage_path
from lineage.storage.memory import MemoryBackend
from lineage.storage.staging import stage


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def tree_digest(path: Path) -> Digest:
    """The digest ``store.add(path)`` gives a directory (computed on a scratch backend)."""
    return stage_path(MemoryBackend(), path).root.digest


# -- bytes and files -------------------------------------------------------------------


@given(st.binary(max_size=4096))
def test_digest_bytes_is_xxh3_128(data: bytes) -> None:
    digest = digest_bytes(data)
    assert bytes(digest) == xxhash.xxh3_128_digest(data)
    assert str(digest) == xxhash.xxh3_128_hexdigest(data)
    assert Digest.from_hex(str(digest)) == digest


@pytest.mark.parametrize("size", [0, 1, 4095, CHUNK_MIN + 1, 3 * 1024 * 1024 + 17])
def test_digest_file_is_xxh3_128_of_its_bytes(tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=size)
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    assert bytes(digest_file(path)) == xxhash.xxh3_128_digest(data)


def test_digest_file_of_a_missing_file_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        digest_file(tmp_path / "missing")


@pytest.mark.parametrize("bad", [b"", b"x" * 15, b"x" * 17])
def test_a_digest_is_exactly_16_bytes(bad: bytes) -> None:
    with pytest.raises(ValueError):
        Digest(bad)


@pytest.mark.parametrize("text", ["", "0" * 31, "0" * 33, "g" * 32, " " + "0" * 31])
def test_digest_from_hex_refuses_anything_but_32_hex_chars(text: str) -> None:
    with pytest.raises(ValueError):
        Digest.from_hex(text)


# -- chunking --------------------------------------------------------------------------

sizes = st.sampled_from([0, 1, CHUNK_MIN - 1, CHUNK_MIN, CHUNK_MIN + 1]) | st.integers(
    min_value=0, max_value=1_500_000
)


@given(size=sizes, seed=st.integers(min_value=0, max_value=2**32))
@example(size=1_000_000, seed=0)
def test_chunks_concatenate_to_the_input_and_are_deterministic(size: int, seed: int) -> None:
    data = random_bytes(size, seed)
    chunks = list(chunk_buffer(data))
    assert b"".join(bytes(c.data) for c in chunks) == data
    offset = 0
    for index, chunk in enumerate(chunks):
        assert chunk.offset == offset
        assert chunk.digest == digest_bytes(chunk.data)
        assert chunk.length <= CHUNK_MAX
        if index < len(chunks) - 1:
            assert chunk.length >= CHUNK_MIN
        offset += chunk.length
    again = [(c.offset, c.digest) for c in chunk_buffer(bytearray(data))]
    assert again == [(c.offset, c.digest) for c in chunks]


def test_chunks_average_about_64_kib() -> None:
    chunks = list(chunk_buffer(random_bytes(8 * 1024 * 1024, seed=7)))
    mean = 8 * 1024 * 1024 / len(chunks)
    assert 40 * 1024 <= mean <= 96 * 1024


@pytest.mark.parametrize("edit", ["overwrite", "insert", "delete"])
def test_a_small_edit_in_a_large_buffer_leaves_most_chunks_shared(edit: str) -> None:
    data = random_bytes(4 * 1024 * 1024, seed=1)
    middle = len(data) // 2
    if edit == "overwrite":
        edited = data[:middle] + b"EDITED" + data[middle + 6 :]
    elif edit == "insert":
        edited = data[:middle] + b"inserted bytes" + data[middle:]
    else:
        edited = data[:middle] + data[middle + 100 :]
    before = {c.digest for c in chunk_buffer(data)}
    after = [c.digest for c in chunk_buffer(edited)]
    new = [d for d in after if d not in before]
    assert len(new) <= 3, f"{len(new)} of {len(after)} chunks changed"


@given(size=sizes, seed=st.integers(min_value=0, max_value=2**32))
@example(size=1_000_000, seed=0)
def test_a_blob_digest_is_of_its_whole_content_whatever_the_chunking(size: int, seed: int) -> None:
    data = random_bytes(size, seed)
    backend = MemoryBackend()
    blob = stage(backend, data)
    assert bytes(blob.digest) == xxhash.xxh3_128_digest(data)
    assert blob.size == size
    backend.write(blob.commit)
    with backend.read() as txn:
        assert read_blob(backend, txn, blob.digest) == data


def test_a_blob_shared_across_two_stages_is_written_once() -> None:
    data = random_bytes(1024 * 1024, seed=3)
    backend = MemoryBackend()
    first = stage(backend, data)
    backend.write(first.commit)
    second = stage(backend, data[: len(data) // 2] + b"tail")
    assert first.written == len(data)
    assert second.written < len(data) // 4


# -- directories -----------------------------------------------------------------------


def make_tree(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "a.txt").write_bytes(b"alpha")
    (root / "sub" / "b.bin").write_bytes(random_bytes(100_000, seed=2))
    (root / "sub" / "deeper" / "c").write_bytes(b"")
    script = root / "run.sh"
    script.write_bytes(b"#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    (root / "link").symlink_to("a.txt")
    return root


def test_directory_digest_is_a_merkle_digest_over_paths_modes_and_file_digests(
    tmp_path: Path,
) -> None:
    root = make_tree(tmp_path / "tree")

    def file_entry(relative: str, kind: str) -> list[object]:
        path = root / relative
        return [relative, kind, digest_file(path), path.stat().st_size]

    entries = [
        file_entry("a.txt", "f"),
        ["empty", "d", "", 0],
        ["link", "l", "a.txt", 0],
        file_entry("run.sh", "x"),
        ["sub", "d", "", 0],
        file_entry("sub/b.bin", "f"),
        ["sub/deeper", "d", "", 0],
        file_entry("sub/deeper/c", "f"),
    ]
    expected = digest_bytes(encoding.encode([TREE_TAG, 1, entries]))
    assert tree_digest(root) == expected


def test_directory_digest_does_not_depend_on_where_the_tree_lives(tmp_path: Path) -> None:
    assert tree_digest(make_tree(tmp_path / "one")) == tree_digest(make_tree(tmp_path / "two"))


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "sub" / "b.bin").write_bytes(b"other content"),
        lambda root: (root / "a.txt").write_bytes(b"alphA"),
        lambda root: (root / "run.sh").chmod(0o644),
        lambda root: (root / "a.txt").chmod(0o744),
        lambda root: ((root / "link").unlink(), (root / "link").symlink_to("run.sh")),
        lambda root: (root / "a.txt").rename(root / "A.txt"),
        lambda root: (root / "empty" / "new").mkdir(),
        lambda root: (root / "empty").rmdir(),
        lambda root: (root / "sub" / "deeper" / "d").write_bytes(b""),
    ],
    ids=["content", "one-byte", "exec-bit-off", "exec-bit-on", "symlink-target", "rename",
         "new-empty-dir", "removed-empty-dir", "new-empty-file"],
)
def test_any_change_in_a_tree_changes_its_digest(tmp_path: Path, change: object) -> None:
    root = make_tree(tmp_path / "tree")
    before = tree_digest(root)
    change(root)  # type: ignore[operator]
    assert tree_digest(root) != before


def test_symlinks_are_recorded_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"outside the tree")
    root = make_tree(tmp_path / "tree")
    (root / "to_file").symlink_to(outside / "secret.txt")
    (root / "to_dir").symlink_to(outside)
    (root / "dangling").symlink_to(tmp_path / "nowhere")
    before = tree_digest(root)
    (outside / "secret.txt").write_bytes(b"changed outside the tree")
    (outside / "more.txt").write_bytes(b"a new file outside")
    assert tree_digest(root) == before
    staged = stage_path(MemoryBackend(), root)
    assert staged.files == 4  # a.txt, run.sh, sub/b.bin, sub/deeper/c: nothing via links


def test_a_special_file_in_a_tree_is_refused(tmp_path: Path) -> None:
    from lineage.errors import PathError

    root = make_tree(tmp_path / "tree")
    os.mkfifo(root / "pipe")
    with pytest.raises(PathError, match="special file"):
        tree_digest(root)
