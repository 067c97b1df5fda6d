"""Bugs found by reading the code while it was reshaped into packages, each pinned by a test:
adapters, naming a path's artifact, a failure while recording, explain's hit test, and one
error type per condition."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.adapters import Dumped
from lineage.core.hashing import digest_bytes
from lineage.errors import (
    IntegrityError,
    LineageError,
    RecordTypeError,
    StepDefinitionError,
    StoreError,
)
from lineage.storage import schema
from lineage.store import Store
from lineage.tracking import recording


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd,
                          capture_output=True, text=True, check=False, timeout=120)


def test_registering_an_adapter_first_keeps_the_built_in_ones(tmp_path: Path) -> None:
    done = _python("""
        import numpy as np
        import lineage

        class Celsius(float):
            pass

        class CelsiusAdapter:
            formats = ("celsius",)
            def claims(self, value): return isinstance(value, Celsius)
            def dump(self, value, *, target=None):
                from lineage.adapters import Dumped
                return Dumped("value", "celsius", repr(float(value)).encode())
            def load(self, data, format, *, trust): return Celsius(float(data))
            def key(self, value): return repr(float(value)).encode()

        lineage.register_adapter(CelsiusAdapter())   # before the store is ever used
        store = lineage.open(":memory:")
        array = store.add(np.arange(3), name="array")
        print(store.load(array).tolist(), type(store.load(store.add(Celsius(21.5)))).__name__)
    """, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0,", "1,", "2]", "Celsius"]


class _Reading(float):
    """A value with an adapter of its own (a registered format, not a built-in one)."""


class _ReadingAdapter:
    formats = ("test-reading",)

    def claims(self, value: Any) -> bool:
        return isinstance(value, _Reading)

    def dump(self, value: Any, *, target: str | None = None) -> Dumped:
        return Dumped("value", "test-reading", repr(float(value)).encode())

    def load(self, data: bytes, format: str, *, trust: bool) -> Any:  # noqa: A002
        return _Reading(float(data))

    def key(self, value: Any) -> bytes:
        return repr(float(value)).encode()


def test_a_registered_adapters_format_loads_as_a_value_not_a_path(store: Store) -> None:
    lineage.register_adapter(_ReadingAdapter())
    artifact = store.add(_Reading(36.6), name="temperature")
    back = store.load(artifact)
    assert type(back) is _Reading and back == 36.6


def test_a_path_added_with_a_version_and_no_name_is_named_after_its_file(
        store: Store, tmp_path: Path) -> None:
    path = tmp_path / "blood panel.csv"
    path.write_text("a,b\n1,2\n")
    artifact = store.add(path, version="v1.0")
    assert (artifact.name, artifact.version) == ("blood_panel.csv", "v1.0")


def test_cli_add_with_a_version_uses_the_same_name_rule(tmp_path: Path) -> None:
    from lineage.cli import main

    path = tmp_path / "blood panel.csv"
    path.write_text("a,b\n1,2\n")
    home = str(tmp_path / "store")
    assert main(["--store", home, "init"]) == 0
    assert main(["--store", home, "add", str(path), "--version", "v1.0"]) == 0
    with lineage.open(home) as store:
        assert store.resolve("blood_panel.csv@v1.0").name == "blood_panel.csv"


def test_a_failure_while_recording_a_failed_call_never_hides_the_users_error(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    @lineage.step(store=store)
    def fragile(x: int) -> int:
        raise ValueError("the user's own error")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("disk full")

    monkeypatch.setattr(recording, "commit_run", broken)
    with pytest.raises(ValueError, match="the user's own error") as caught:
        fragile(1)
    assert any("could not be recorded" in note and "disk full" in note
               for note in caught.value.__notes__)


def test_a_failure_while_recording_a_failed_run_never_hides_the_users_error(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("disk full")

    monkeypatch.setattr(recording, "commit_run", broken)
    with pytest.raises(KeyError) as caught, store.run("train"):
        raise KeyError("the block's own error")
    assert any("disk full" in note for note in caught.value.__notes__)


def test_explain_reports_a_miss_when_an_output_file_was_edited(store: Store,
                                                               tmp_path: Path) -> None:
    report = tmp_path / "report.txt"

    @lineage.step(store=store)
    def write_report(n: int) -> Path:
        report.write_text(f"n={n}\n")
        return report

    write_report(1)
    assert store.explain(write_report, 1).hit
    report.unlink()
    assert store.explain(write_report, 1).hit  # missing: a call restores it, still a hit
    assert not report.exists()  # and explain itself changed nothing
    write_report(1)
    report.write_text("edited by hand\n")
    explained = store.explain(write_report, 1)
    assert not explained.hit
    assert "edited" in " ".join(explained.changes)


def test_a_revision_naming_the_wrong_sort_of_record_is_one_error_type(store: Store) -> None:
    with store.run("train") as run:
        run.log_metric("loss", 0.1)
    assert run.record is not None
    digest = run.record.digest
    for attempt in (lambda: store.load(digest), lambda: store.read_bytes(digest),
                    lambda: store.checkout(digest, "x"), lambda: store.tag(digest, "t"),
                    lambda: store.metric_history(store.add(b"x"), "loss")):
        with pytest.raises(RecordTypeError):
            attempt()


def test_misused_steps_raise_step_definition_error(store: Store) -> None:
    with pytest.raises(StepDefinitionError):
        store.explain(len, [1])
    def identity(x: int) -> int:
        return x

    with pytest.raises(StepDefinitionError, match="nope"):
        lineage.step(ignore=["nope"])(identity)


def test_a_missing_blob_is_one_error_type_with_its_digest(store: Store, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(b"clinical rows" * 1000)
    artifact = store.add(source, name="data")
    assert artifact.blob is not None
    store._write(lambda txn: schema.put_manifest(txn, artifact.blob, None))
    for attempt in (lambda: store.read_bytes("data"),
                    lambda: store.checkout("data", tmp_path / "out.bin"),
                    lambda: store.load("data", as_path=True)):
        with pytest.raises(IntegrityError) as caught:
            attempt()
        assert caught.value.expected == artifact.blob and caught.value.actual is None


def test_integrity_errors_carry_both_digests(store: Store) -> None:
    artifact = store.add(b"original content", name="note")
    assert artifact.blob is not None
    location = schema.chunk_location
    with store._read() as txn:
        where = location(txn, artifact.blob)
    assert where is not None
    forged = digest_bytes(b"other content")
    store._write(lambda txn: schema.put_chunk_location(txn, forged, where))
    store._write(lambda txn: schema.put_manifest(
        txn, forged, b"\x93\x10\x91\xd8\x01" + bytes(forged) + b"\x90"))
    with store._read() as txn:
        with pytest.raises(IntegrityError) as caught:
            from lineage.storage.blobs import read_blob
            read_blob(store._backend, txn, forged)
    assert caught.value.expected == forged
    assert caught.value.actual == artifact.blob


def test_every_error_lineage_raises_on_purpose_is_a_lineage_error() -> None:
    import lineage.errors as errors

    for name in errors.__all__:
        assert issubclass(getattr(errors, name), LineageError)
    assert issubclass(errors.RevisionNotFound, LookupError)
    assert issubclass(errors.RecordTypeError, TypeError)
