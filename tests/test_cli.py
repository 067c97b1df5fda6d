"""The command line, run in-process through ``main([...])`` on a real LMDB store.

A few tests run ``python -m lineage`` in a subprocess to pin exit codes and the absence of
tracebacks as a user's shell sees them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lineage
from lineage.cli.app import main
from lineage.cli.format import format_bytes
from lineage.cli.progress import LARGE_BYTES, SLOW_SECONDS, progress_bar, total_size
from lineage.testing import flip_chunk_byte


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An initialized store directory (nothing open on it)."""
    path = tmp_path / "store"
    assert main(["--store", str(path), "init"]) == 0
    return path


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """A working directory with two files and a small directory tree."""
    work = tmp_path / "work"
    (work / "images" / "scans").mkdir(parents=True)
    (work / "train.csv").write_text("age,label\n61,1\n47,0\n")
    (work / "notes.txt").write_text("cohort A\n")
    (work / "images" / "a.bin").write_bytes(b"\x00\x01" * 500)
    (work / "images" / "scans" / "b.bin").write_bytes(b"scan")
    return work


class Cli:
    """Runs ``main`` against one store and captures what it printed."""

    def __init__(self, home: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.home, self.capsys = home, capsys
        capsys.readouterr()

    def __call__(self, *argv: str | Path) -> tuple[int, str, str]:
        code = main(["--store", str(self.home), *map(str, argv)])
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str | Path) -> str:
        code, out, err = self(*argv)
        assert code == 0, err
        assert err == ""
        return out

    def json(self, *argv: str | Path) -> Any:
        return json.loads(self.ok(*argv, "--json"))

    def fails(self, *argv: str | Path, code: int = 1) -> str:
        """Run a failing command; return its single stderr line."""
        got, out, err = self(*argv)
        assert got == code, (out, err)
        assert out == ""
        lines = err.splitlines()
        assert len(lines) == 1, err
        assert lines[0].startswith("lineage: error: ")
        assert "Traceback" not in err
        return lines[0]


@pytest.fixture
def cli(home: Path, capsys: pytest.CaptureFixture[str]) -> Cli:
    return Cli(home, capsys)


def _open(home: Path) -> lineage.Store:
    return lineage.open(home)


# -- init ------------------------------------------------------------------------------------


def test_init_creates_a_store_and_says_where(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "new"
    assert main(["--store", str(path), "init"]) == 0
    assert f"created a lineage store in {path.resolve()}" in capsys.readouterr().out
    assert main(["--store", str(path), "init", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"path": str(path.resolve()), "created": False}


def test_init_uses_lineage_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("LINEAGE_HOME", str(tmp_path / "home"))
    assert main(["init", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["path"] == str((tmp_path / "home").resolve())


def test_a_verb_on_a_missing_store_fails_without_creating_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    cli = Cli(tmp_path / "nowhere", capsys)
    assert "lineage init" in cli.fails("show", "anything")
    assert not (tmp_path / "nowhere").exists()


# -- add ------------------------------------------------------------------------------------


def test_add_takes_several_paths_and_prints_a_line_each(cli: Cli, files: Path):
    out = cli.ok("add", files / "train.csv", files / "notes.txt", files / "images")
    lines = out.splitlines()
    assert len(lines) == 3
    assert "train.csv@v1" in lines[0] and "notes.txt@v1" in lines[1]
    assert "images@v1" in lines[2]
    assert all(line.split()[0] and "B" in line for line in lines)
    with _open(cli.home) as store:
        assert store.names() == ["images", "notes.txt", "train.csv"]
        digest = store.resolve("train.csv").digest
    assert lines[0].startswith(digest[:12])
    # columns are aligned: the name column starts at the same offset on every line
    assert len({line.index(name) for line, name in
                zip(lines, ("train.csv", "notes.txt", "images"), strict=True)}) == 1


def test_add_json_reports_sizes(cli: Cli, files: Path):
    first = cli.json("add", files / "train.csv")
    (entry,) = first["added"]
    size = (files / "train.csv").stat().st_size
    assert set(entry) == {"path", "digest", "kind", "name", "version", "size"}
    assert (entry["kind"], entry["name"], entry["version"]) == ("file", "train.csv", "v1")
    assert entry["size"] == size
    assert len(entry["digest"]) == 32
    again = cli.json("add", files / "train.csv")["added"][0]
    assert (again["digest"], again["version"]) == (entry["digest"], "v1")


def test_add_with_name_version_kind_meta_and_parent(cli: Cli, files: Path):
    parent = cli.json("add", files / "notes.txt")["added"][0]["digest"]
    cli.ok("add", files / "train.csv", "--name", "cohort", "--version", "v1.0",
           "--kind", "table", "--meta", "origin=registry 2021", "--meta", "biases=",
           "--derived-from", "notes.txt")
    shown = cli.json("show", "cohort@v1.0")
    assert (shown["name"], shown["version"], shown["kind"]) == ("cohort", "v1.0", "table")
    assert shown["meta"] == {"origin": "registry 2021", "biases": ""}
    assert shown["parents"] == [parent]


def test_add_version_without_name_takes_the_file_name(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv", "--version", "v2.0")
    assert cli.json("show", "train.csv@v2.0")["version"] == "v2.0"


def test_add_name_with_several_paths_is_a_usage_error(cli: Cli, files: Path):
    code, out, err = cli("add", files / "train.csv", files / "notes.txt", "--name", "x")
    assert code == 2 and out == ""
    assert "exactly one PATH" in err and "lineage add --help" in err
    assert len(err.strip().splitlines()) == 1


def test_add_meta_without_equals_is_a_usage_error(cli: Cli, files: Path):
    code, _out, err = cli("add", files / "train.csv", "--meta", "origin")
    assert code == 2 and "key=value" in err
    assert err.strip().splitlines() == [err.strip()]  # one line, no usage block


def test_add_missing_path_adds_nothing(cli: Cli, files: Path):
    line = cli.fails("add", files / "train.csv", files / "missing.csv")
    assert "missing.csv" in line
    with _open(cli.home) as store:
        assert store.names() == []


def test_add_invalid_name_is_one_line_and_adds_nothing(cli: Cli, files: Path):
    line = cli.fails("add", files / "train.csv", "--name", "bad/name")
    assert "'/'" in line
    with _open(cli.home) as store:
        assert store.names() == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs a fifo")
def test_add_failing_after_earlier_paths_names_what_was_added(cli: Cli, files: Path):
    special = files / "special"
    special.mkdir()
    os.mkfifo(special / "pipe")
    line = cli.fails("add", files / "train.csv", special)
    assert "special file" in line and "already added: train.csv@v1" in line


# -- show ------------------------------------------------------------------------------------


def test_show_artifact_lists_versions_stages_and_tags(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    (files / "train.csv").write_text("age,label\n61,1\n")
    cli.ok("add", files / "train.csv")
    cli.ok("tag", "train.csv@v1", "baseline")
    cli.ok("promote", "train.csv@v2", "production")
    data = cli.json("show", "baseline")
    assert set(data) == {"type", "digest", "kind", "name", "version", "format", "size", "blob",
                         "parents", "meta", "summary", "versions", "stages", "tags", "review"}
    assert (data["type"], data["version"], data["tags"]) == ("artifact", "v1", ["baseline"])
    assert [v["version"] for v in data["versions"]] == ["v1", "v2"]
    assert data["stages"] == {"production": data["versions"][1]["digest"]}
    text = cli.ok("show", "train.csv@production")
    assert "artifact  train.csv@v2" in text
    assert "production -> " + data["versions"][1]["digest"][:12] in text
    assert re.search(r"^summary +filename=train\.csv files=1 ", text, re.MULTILINE)
    # a CSV is a table whatever its kind: show says what a reviewer looks for in one
    assert re.search(r"^rows +1$", text, re.MULTILINE)
    assert re.search(r"^columns +age +int64\n +label +int64$", text, re.MULTILINE)


def test_show_by_digest_prefix_finds_the_version(cli: Cli, files: Path):
    digest = cli.json("add", files / "notes.txt")["added"][0]["digest"]
    assert cli.json("show", digest[:8])["version"] == "v1"


def test_show_unknown_revision_is_one_line(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    line = cli.fails("show", "train")
    assert "did you mean train.csv" in line


def test_show_malformed_revision_is_one_line(cli: Cli):
    assert "bad revision" in cli.fails("show", "model@")


def _record_runs(home: Path, files: Path) -> dict[str, str]:
    """Three runs: train (ok), evaluate (ok), train (failed); their digests by label."""
    digests = {}
    with _open(home) as store:
        store.add(files / "train.csv", name="cohort", version="v1.0")
        with store.run("train", params={"C": 0.5}, label="baseline") as run:
            run.log_input("cohort@v1.0", name="data")
            run.log_metric("sensitivity", 0.91)
            run.log_artifact(b"weights", name="model", version="v1")
        digests["train"] = store.runs(op="train")[0].digest
        with store.run("evaluate") as run:
            run.log_input("model@v1", name="model")
        digests["evaluate"] = store.runs(op="evaluate")[0].digest
        with pytest.raises(ZeroDivisionError), store.run("train", params={"C": 2.0}):
            1 / 0  # noqa: B018
        digests["failed"] = store.runs(op="train")[0].digest
    return digests


def test_show_run_names_inputs_outputs_params_and_metrics(cli: Cli, files: Path):
    digests = _record_runs(cli.home, files)
    data = cli.json("show", digests["train"])
    assert data["type"] == "run"
    assert {"op", "status", "params", "metrics", "inputs", "outputs", "duration", "error",
            "started", "ended", "id", "code", "environment"} <= set(data)
    assert (data["op"], data["status"], data["label"]) == ("train", "ok", "baseline")
    assert data["params"] == {"C": 0.5} and data["metrics"] == {"sensitivity": 0.91}
    assert data["inputs"]["data"]["name"] == "cohort"
    assert data["inputs"]["data"]["version"] == "v1.0"
    assert data["outputs"]["model"]["version"] == "v1"
    assert data["error"] is None
    text = cli.ok("show", digests["train"])
    assert text.splitlines()[0].split() == ["run", "train", "ok"]
    assert "param.C" in text and "0.5" in text
    assert "cohort@v1.0" in text and "model@v1" in text


def test_show_failed_run_gives_its_error(cli: Cli, files: Path):
    digests = _record_runs(cli.home, files)
    data = cli.json("show", digests["failed"])
    assert data["status"] == "failed"
    assert data["error"]["type"] == "ZeroDivisionError"
    assert "ZeroDivisionError" in cli.ok("show", digests["failed"])


# -- runs ------------------------------------------------------------------------------------


def test_runs_lists_newest_first_and_filters(cli: Cli, files: Path):
    digests = _record_runs(cli.home, files)
    rows = cli.json("runs")["runs"]
    assert [r["digest"] for r in rows] == [digests["failed"], digests["evaluate"],
                                           digests["train"]]
    assert set(rows[0]) == {"digest", "id", "op", "label", "status", "started", "duration",
                            "inputs", "outputs", "params", "metrics", "test_sets", "test_set_rows"}
    assert [r["digest"] for r in cli.json("runs", "--op", "train")["runs"]] == [
        digests["failed"], digests["train"]]
    assert [r["digest"] for r in cli.json("runs", "--status", "ok")["runs"]] == [
        digests["evaluate"], digests["train"]]
    assert [r["digest"] for r in cli.json("runs", "--label", "baseline")["runs"]] == [
        digests["train"]]
    assert [r["digest"] for r in cli.json("runs", "--limit", "1")["runs"]] == [
        digests["failed"]]
    text = cli.ok("runs", "--op", "train").splitlines()
    assert text[0].split() == ["RUN", "STARTED", "OP", "STATUS", "DURATION", "C", "sensitivity"]
    assert text[1].startswith(digests["failed"][:12]) and "failed" in text[1]
    assert text[1].split()[-2:] == ["2.0", "-"] and text[2].split()[-2:] == ["0.5", "0.91"]


def test_runs_bad_filters_are_usage_errors(cli: Cli):
    assert cli("runs", "--status", "done")[0] == 2
    assert cli("runs", "--limit", "0")[0] == 2


def test_runs_on_an_empty_store(cli: Cli):
    assert cli.ok("runs").strip() == "no runs match"
    assert cli.json("runs") == {"runs": []}


# -- log, tag, promote ----------------------------------------------------------------------


def test_log_is_newest_first_with_user_and_reason(cli: Cli, files: Path,
                                                  monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LINEAGE_USER", "dr.who")
    cli.ok("add", files / "train.csv")
    (files / "train.csv").write_text("age,label\n")
    cli.ok("add", files / "train.csv", "--reason", "dropped rows")
    cli.ok("promote", "train.csv@v2", "production", "--reason", "validated")
    data = cli.json("log", "train.csv")
    assert data["name"] == "train.csv"
    entries = data["entries"]
    assert [(e["ref"], e["key"]) for e in entries] == [
        ("stage", "production"), ("version", "v2"), ("version", "v1")]
    assert set(entries[0]) == {"name", "ref", "key", "target", "previous", "time", "user",
                               "reason", "skipped"}
    assert entries[0]["user"] == "dr.who" and entries[1]["reason"] == "dropped rows"
    lines = cli.ok("log", "train.csv").splitlines()
    assert "stage production" in lines[0] and "validated" in lines[0]
    assert "dr.who" in lines[2] and f"- -> {entries[2]['target'][:12]}" in lines[2]


def test_log_of_unknown_name_suggests(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    assert "did you mean train.csv" in cli.fails("log", "train.cvs")


def test_tag_then_delete(cli: Cli, files: Path):
    digest = cli.json("add", files / "train.csv")["added"][0]["digest"]
    data = cli.json("tag", "train.csv", "model_v1.0")
    assert data == {"tag": "model_v1.0", "digest": digest, "name": "train.csv",
                    "version": "v1", "deleted": False}
    assert cli.json("show", "model_v1.0")["digest"] == digest
    cli.ok("add", files / "notes.txt")
    assert "does not name" in cli.fails("tag", "notes.txt", "model_v1.0", "--delete")
    assert cli.json("show", "model_v1.0")["digest"] == digest  # still there
    assert "deleted tag model_v1.0" in cli.ok("tag", "--delete", "model_v1.0")
    cli.fails("show", "model_v1.0")
    assert "no tag" in cli.fails("tag", "--delete", "model_v1.0")


def test_tag_without_revision_is_a_usage_error(cli: Cli):
    assert cli("tag", "only_a_tag")[0] == 2


def test_tag_clashing_with_a_name_is_refused(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    cli.ok("add", files / "notes.txt")
    assert "already an artifact name" in cli.fails("tag", "notes.txt", "train.csv")


def test_promote_moves_a_stage(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    data = cli.json("promote", "train.csv", "staging")
    assert (data["name"], data["stage"], data["version"]) == ("train.csv", "staging", "v1")
    assert cli.json("show", "train.csv@staging")["digest"] == data["digest"]
    assert "is a version" in cli.fails("promote", "train.csv", "v1")


# -- checkout --------------------------------------------------------------------------------


def test_checkout_writes_the_stored_bytes(cli: Cli, files: Path, tmp_path: Path):
    original = (files / "train.csv").read_bytes()
    cli.ok("add", files / "train.csv")
    (files / "train.csv").write_text("changed\n")
    target = tmp_path / "out" / "train.csv"
    data = cli.json("checkout", "train.csv@v1", target)
    assert data["path"] == str(target.resolve()) and data["version"] == "v1"
    assert target.read_bytes() == original


def test_checkout_refuses_to_overwrite_without_force(cli: Cli, files: Path, tmp_path: Path):
    cli.ok("add", files / "train.csv")
    target = tmp_path / "existing.csv"
    target.write_text("keep me")
    assert "--force" in cli.fails("checkout", "train.csv", target)
    assert target.read_text() == "keep me"
    cli.ok("checkout", "train.csv", target, "--force")
    assert target.read_bytes() == (files / "train.csv").read_bytes()


def test_checkout_a_directory(cli: Cli, files: Path, tmp_path: Path):
    cli.ok("add", files / "images")
    cli.ok("checkout", "images", tmp_path / "restored")
    assert (tmp_path / "restored" / "scans" / "b.bin").read_bytes() == b"scan"


# -- verify and gc ---------------------------------------------------------------------------


def test_verify_passes_on_a_sound_store(cli: Cli, files: Path):
    cli.ok("add", files / "images")
    report = cli.json("verify")
    assert report["ok"] is True and report["problems"] == []
    assert report["chunks"] >= 2 and report["bytes"] >= 1004
    assert cli.ok("verify").rstrip().endswith(": ok")


def test_verify_reports_a_flipped_byte_and_exits_1(cli: Cli, files: Path):
    added = cli.json("add", files / "notes.txt")["added"][0]
    with lineage.open(cli.home) as store:  # a small file's chunk is kept in LMDB
        blob = store.resolve(added["digest"]).blob  # type: ignore[union-attr]
        assert blob is not None
        flip_chunk_byte(store._backend, blob, 0)
    code, out, err = cli("verify")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "checked 1 record, 1 blob, 1 chunk (9 B): 2 problems"
    assert lines[1].startswith("chunk ") and lines[1].endswith("(corrupt)")
    assert lines[2].startswith("blob ") and lines[2].endswith("(corrupt)")
    assert err.count("\n") == 1 and err.startswith("lineage: error: verify found 2 problems")
    code, out, _err = cli("verify", "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_gc_is_a_dry_run_unless_yes(cli: Cli, files: Path):
    cli.ok("add", files / "train.csv")
    with _open(cli.home) as store:
        store.add(b"unreferenced bytes")  # no name, no run: garbage
    dry = cli.json("gc")
    assert dry["dry_run"] is True and dry["records"] == 1 and dry["blobs"] == 1
    assert "would remove 1 record, 1 blob, 1 chunk" in cli.ok("gc")
    assert cli.json("gc")["records"] == 1  # nothing was removed
    removed = cli.json("gc", "--yes")
    assert removed["dry_run"] is False and removed["records"] == 1
    assert cli.json("gc")["records"] == 0
    assert cli.json("show", "train.csv")["name"] == "train.csv"  # live data kept


# -- global options and failures -------------------------------------------------------------


def test_store_and_json_work_after_the_verb(home: Path, files: Path,
                                            capsys: pytest.CaptureFixture[str]):
    assert main(["add", str(files / "notes.txt"), "--store", str(home), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["added"][0]["name"] == "notes.txt"
    assert main(["--json", "--store", str(home), "show", "notes.txt"]) == 0
    assert json.loads(capsys.readouterr().out)["name"] == "notes.txt"


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    assert main([]) == 2
    assert "give a verb" in capsys.readouterr().err


def test_interrupt_exits_130_with_one_line(cli: Cli, monkeypatch: pytest.MonkeyPatch):
    def interrupted(*_args: Any, **_kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(lineage.Store, "resolve", interrupted)
    assert cli.fails("show", "x", code=130) == "lineage: error: interrupted"


def test_internal_error_is_one_line_without_traceback(cli: Cli,
                                                      monkeypatch: pytest.MonkeyPatch):
    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(lineage.Store, "resolve", broken)
    line = cli.fails("show", "x")
    assert "internal error: RuntimeError: boom second line" in line


def _python_m(*argv: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LINEAGE_HOME": str(cwd / "store")}
    env.pop("LINEAGE_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "lineage", *map(str, argv)], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_python_m_lineage_exit_codes_and_no_traceback(tmp_path: Path, files: Path):
    missing = _python_m("show", "model@v1", cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "lineage init" in missing.stderr
    assert _python_m("init", cwd=tmp_path).returncode == 0
    added = _python_m("add", files / "train.csv", "--json", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["added"][0]["version"] == "v1"
    unknown = _python_m("show", "model@v1", cwd=tmp_path)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("lineage: error: ") and unknown.stderr.count("\n") == 1
    assert "Traceback" not in unknown.stderr
    usage = _python_m("add", cwd=tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr


# -- progress ------------------------------------------------------------------------------


def test_progress_bars_are_off_when_stderr_is_not_a_terminal(capsys: pytest.CaptureFixture[str]):
    with progress_bar(LARGE_BYTES * 2, "add") as bar:
        bar.update(LARGE_BYTES)
    assert bar.disable
    assert capsys.readouterr().err == ""


def test_progress_bars_draw_large_work_at_once_and_small_work_only_when_slow(
        monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    large = progress_bar(LARGE_BYTES * 2, "add")
    small = progress_bar(1000, "add")
    unknown = progress_bar(None, "verify")
    try:
        assert not large.disable and large.delay == 0
        assert small.delay == SLOW_SECONDS and unknown.delay == SLOW_SECONDS
        assert large.unit == "B" and large.unit_divisor == 1024
    finally:
        for bar in (large, small, unknown):
            bar.close()


def test_format_bytes():
    assert [format_bytes(n) for n in (0, 1023, 1024, 1536, 5 * 1024**3)] == [
        "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 GiB"]


def test_total_size_counts_files_under_directories_without_following_links(files: Path):
    (files / "images" / "link").symlink_to(files / "train.csv")
    expected = sum(p.stat().st_size for p in (
        files / "train.csv", files / "images" / "a.bin", files / "images" / "scans" / "b.bin"))
    assert total_size([files / "train.csv", files / "images", files / "absent"]) == expected


@pytest.mark.parametrize(("argv", "verb"), [
    (["show", "x"], "show"),
    (["--store", "runs", "--json", "show", "x"], "show"),  # a store directory named runs
    (["--store=p", "runs"], "runs"),
    (["--help"], None),
    (["--version"], None),
    (["shwo", "x"], None),
    (["--store"], None),
    ([], None),
])
def test_a_command_builds_only_its_verbs_parser(argv: list[str], verb: str | None) -> None:
    from lineage.cli.app import VERBS, _verb_named, build_parser

    assert _verb_named(argv) == verb
    _parser, subparsers = build_parser(only=verb)
    assert list(subparsers) == ([verb] if verb else [v.name for v in VERBS])
