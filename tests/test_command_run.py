"""``run_command`` / ``lineage run``: any command recorded as a run, skipped when nothing changed.

Commands are ``python -c`` scripts that also append to a counter file outside their outputs,
so every test can tell whether the command really ran.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from lineage.cli.app import main
from lineage.errors import InvalidName, PathError, RunError
from lineage.store import Store
from lineage.tracking.command import CommandResult, run_command

# Reads data.csv (a file) and cfg/ (a directory); writes out.txt and report/.
PIPELINE = """
import pathlib, sys
pathlib.Path("counter").open("a").write("x")
data = pathlib.Path("data.csv").read_text()
extra = "".join(p.read_text() for p in sorted(pathlib.Path("cfg").iterdir()))
pathlib.Path("out.txt").write_text(data.upper() + extra)
pathlib.Path("report").mkdir(exist_ok=True)
pathlib.Path("report", "rows.txt").write_text(str(len(data.splitlines())))
print("done", file=sys.stderr)
"""
COMMAND = [sys.executable, "-c", PIPELINE]
DEPS = ["data.csv", "cfg"]
OUTS = ["out.txt", "report"]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a file and a directory to depend on."""
    directory = tmp_path / "work"
    (directory / "cfg").mkdir(parents=True)
    (directory / "data.csv").write_text("a,b\n1,2\n")
    (directory / "cfg" / "c.txt").write_text("C=0.5\n")
    monkeypatch.chdir(directory)
    return directory


def runs_of(store: Store, op: str = "pipeline") -> int:
    return len(store.runs(op=op))


def counter(work: Path) -> int:
    path = work / "counter"
    return len(path.read_text()) if path.exists() else 0


def pipeline(store: Store, **options: bool) -> CommandResult:
    return run_command(store, "pipeline", DEPS, OUTS, COMMAND, **options)


def test_first_call_runs_and_records_everything(store: Store, work: Path) -> None:
    result = pipeline(store)
    assert result.ran and result.ok and result.exit_code == 0 and counter(work) == 1
    run = result.run
    assert store.runs(op="pipeline") == [run]
    assert run.params == {"command": COMMAND}
    assert set(run.inputs) == {"data.csv", "cfg"} and set(run.outputs) == {"out.txt", "report"}
    assert run.call_key == result.call_key and run.environment is not None
    assert run.meta["exit_code"] == 0 and run.meta["cwd"] == os.getcwd()
    assert store.resolve(run.environment).kind == "environment"
    assert store.read_bytes(store._artifact(run.inputs["data.csv"])) == b"a,b\n1,2\n"
    assert store.read_bytes("out.txt") == b"A,B\n1,2\nC=0.5\n"
    assert store._artifact(run.outputs["report"]).format == "directory"
    assert result.outputs["out.txt"].version == "v1"
    assert store.ancestors("out.txt", depth=2, kind="file")[0].raw_digest == run.inputs["data.csv"]


def test_second_call_is_skipped_and_records_nothing(store: Store, work: Path) -> None:
    first = pipeline(store)
    second = pipeline(store)
    assert second.skipped and second.ok and second.exit_code is None
    assert counter(work) == 1  # the command did not run
    assert second.run == first.run and second.restored == ()
    assert runs_of(store) == 1
    assert second.outputs["out.txt"].version == "v1"


def test_a_changed_dependency_runs_again(store: Store, work: Path) -> None:
    first = pipeline(store)
    (work / "cfg" / "c.txt").write_text("C=1.0\n")  # a file inside a directory dependency
    second = pipeline(store)
    assert second.ran and counter(work) == 2 and runs_of(store) == 2
    assert second.call_key != first.call_key
    assert store.read_bytes("out.txt") == b"A,B\n1,2\nC=1.0\n"
    assert store._artifact("out.txt").version == "v2"
    (work / "cfg" / "c.txt").write_text("C=0.5\n")  # back to the first content: reuse it
    third = pipeline(store)
    assert third.skipped and third.run == first.run and counter(work) == 2
    assert third.restored == ("out.txt",)  # the file held v2's content; v1's is back
    assert (work / "out.txt").read_text() == "A,B\n1,2\nC=0.5\n"


def test_a_deleted_output_is_restored_on_skip(store: Store, work: Path) -> None:
    pipeline(store)
    (work / "out.txt").unlink()
    (work / "report" / "rows.txt").write_text("edited")
    result = pipeline(store)
    assert result.skipped and counter(work) == 1
    assert result.restored == ("out.txt", "report")
    assert (work / "out.txt").read_text() == "A,B\n1,2\nC=0.5\n"
    assert (work / "report" / "rows.txt").read_text() == "2"


def test_force_runs_even_on_a_hit(store: Store, work: Path) -> None:
    pipeline(store)
    result = pipeline(store, force=True)
    assert result.ran and counter(work) == 2 and runs_of(store) == 2


def test_a_failing_command_is_recorded_failed_and_never_reused(
        store: Store, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = [sys.executable, "-c", "import pathlib, sys; pathlib.Path('counter').open('a')"
               ".write('x'); pathlib.Path('out.txt').write_text('partial');"
               "sys.exit('model did not converge')"]
    first = run_command(store, "fit", ["data.csv"], ["out.txt"], failing)
    assert not first.ok and first.exit_code == 1
    run = first.run
    assert run.status == "failed" and run.outputs == {} and run.call_key is None
    assert set(run.inputs) == {"data.csv"}
    assert run.error is not None and run.error["type"] == "CommandFailed"
    assert "exited with code 1" in run.error["message"]
    assert "model did not converge" in run.error["stderr"]
    assert "model did not converge" in capsys.readouterr().err  # echoed while it ran
    with store._read() as txn:
        assert txn.get("call_keys", first.call_key) is None
    second = run_command(store, "fit", ["data.csv"], ["out.txt"], failing)
    assert second.ran and counter(work) == 2 and len(store.runs(op="fit", status="failed")) == 2
    assert store.artifacts(name="out.txt") == []  # outputs of failed runs are not recorded


def test_a_missing_dependency_fails_before_running(store: Store, work: Path) -> None:
    with pytest.raises(PathError, match="missing dependency: nothere.csv"):
        run_command(store, "pipeline", ["data.csv", "nothere.csv"], OUTS, COMMAND)
    assert counter(work) == 0 and runs_of(store) == 0


def test_an_output_the_command_did_not_create_fails_the_run(store: Store, work: Path) -> None:
    result = run_command(store, "lazy", ["data.csv"], ["never.txt"],
                         [sys.executable, "-c", "pass"])
    assert not result.ok and result.exit_code == 0
    assert result.run.error is not None and result.run.error["type"] == "MissingOutput"
    assert "did not create never.txt" in result.run.error["message"]
    assert result.run.outputs == {}


def test_a_stale_output_left_untouched_is_not_recorded_as_made(store: Store, work: Path) -> None:
    (work / "old.txt").write_text("from last week")
    result = run_command(store, "lazy", ["data.csv"], ["old.txt"],
                         [sys.executable, "-c", "pass"])
    assert not result.ok
    assert result.run.error is not None
    assert "did not write old.txt" in result.run.error["message"]
    assert (work / "old.txt").read_text() == "from last week"  # left alone


def test_rewriting_an_output_with_equal_bytes_counts_as_written(store: Store, work: Path) -> None:
    (work / "same.txt").write_text("same")
    rewrite = [sys.executable, "-c", "import pathlib; pathlib.Path('same.txt').write_text('same')"]
    result = run_command(store, "rewrite", ["data.csv"], ["same.txt"], rewrite)
    assert result.ok and result.ran


def test_a_command_that_cannot_start_is_recorded_failed(store: Store, work: Path) -> None:
    result = run_command(store, "nope", [], ["x"], ["lineage-no-such-command"])
    assert not result.ok and result.exit_code == 127
    assert result.run.error is not None and result.run.error["type"] == "CommandNotStarted"


def test_paths_that_overlap_are_refused(store: Store, work: Path) -> None:
    with pytest.raises(PathError, match="both a dependency and an output"):
        run_command(store, "p", ["data.csv"], ["./data.csv"], COMMAND)
    with pytest.raises(PathError, match="overlaps dependency cfg"):
        run_command(store, "p", ["cfg"], ["cfg/out.txt"], COMMAND)
    with pytest.raises(RunError, match="give the command"):
        run_command(store, "p", ["data.csv"], ["o"], [])
    with pytest.raises(InvalidName):
        run_command(store, "bad name", ["data.csv"], ["o"], COMMAND)
    assert counter(work) == 0 and store.runs() == []


def test_the_call_key_depends_on_command_name_and_outputs(store: Store, work: Path) -> None:
    keys = {
        pipeline(store).call_key,
        run_command(store, "other", DEPS, OUTS, COMMAND).call_key,
        run_command(store, "pipeline", DEPS, OUTS, [*COMMAND, "arg"]).call_key,
        run_command(store, "pipeline", DEPS, [*OUTS, "counter"], COMMAND).call_key,
    }
    assert len(keys) == 4 and counter(work) == 4


# -- the command line -----------------------------------------------------------------------


def cli(home: Path, *args: str) -> int:
    return main(["--store", str(home), *args])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    assert main(["--store", str(path), "init"]) == 0
    return path


def test_cli_runs_then_skips(home: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    args = ["run", "-n", "pipeline", "-d", *DEPS, "-o", "out.txt", "-o", "report", "--",
            *COMMAND]
    assert cli(home, *args) == 0
    assert capsys.readouterr().out.startswith("ran pipeline (run ")
    (work / "out.txt").unlink()
    assert cli(home, *args) == 0
    out = capsys.readouterr().out
    assert out.startswith("skipped pipeline: run ") and "restored 1 output (out.txt)" in out
    assert counter(work) == 1
    assert cli(home, *args[:-len(COMMAND) - 1], "--force", "--", *COMMAND) == 0
    assert counter(work) == 2


def test_cli_json(home: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    printing = [sys.executable, "-c", "print('to stdout'); open('o.txt', 'w').write('1')"]
    assert cli(home, "run", "--json", "-n", "p", "-d", "data.csv", "-o", "o.txt", "--",
               *printing) == 0
    captured = capsys.readouterr()
    data = json.loads(captured.out)  # the command's stdout went to stderr
    assert "to stdout" in captured.err
    assert data["ran"] is True and data["status"] == "ok" and data["exit_code"] == 0
    assert data["outputs"]["o.txt"]["name"] == "o.txt"
    assert set(data["inputs"]) == {"data.csv"}
    assert cli(home, "--json", "run", "-n", "p", "-d", "data.csv", "-o", "o.txt", "--",
               *printing) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["skipped"] is True and data["exit_code"] is None and data["restored"] == []


def test_cli_exits_with_the_command_exit_code(home: Path, work: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    failing = [sys.executable, "-c", "import sys; print('bad input', file=sys.stderr); sys.exit(3)"]
    assert cli(home, "run", "-n", "f", "-o", "x", "--", *failing) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("lineage: error: ") and "exited with code 3" in err[-1]
    assert "recorded as failed run" in err[-1]
    assert cli(home, "run", "-n", "f", "-o", "x", "--", sys.executable, "-c", "pass") == 1


def test_cli_usage_errors(home: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(home, "run", "-n", "p", "-o", "x", "true") == 2  # `true` taken as an output
    assert "give the command after `--`" in capsys.readouterr().err
    assert cli(home, "run", "-n", "p", "-d", "nothere", "-o", "x", "--", "true") == 1
    assert capsys.readouterr().err.strip() == (
        "lineage: error: missing dependency: nothere; nothing was run")
    assert counter(work) == 0
