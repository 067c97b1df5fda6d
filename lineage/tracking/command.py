"""Any command as a recorded, memoized run: ``lineage run -n NAME -d DEP -o OUT -- CMD``.

:func:`run_command` records a command (an R script, ``sh -c '...'``, a binary) the way
``dvc run`` / ``dvc repro`` treat a stage: its dependencies and outputs are taken by content
(files or directories), and it is skipped when an earlier successful run with the same
command and the same dependency contents already produced the same outputs. A skip restores
outputs that are missing or differ from what that run recorded, and records nothing.

The call key is the digest of ``["lineage/command", name, argv, {dep: content digest},
sorted outputs]``, kept in the ``call_keys`` index through :attr:`Run.call_key` like a
step's. Paths are normalized (``os.path.normpath``) as given, relative to the working
directory, which the run keeps in its meta.

A run records: inputs ``{dep path: artifact}`` (unnamed file/directory artifacts), outputs
``{out path: artifact}`` (each named after its file name, with a new version when its content
changed), params ``{"command": argv}``, the environment artifact, status, times, meta
``{"cwd", "exit_code"}``, and on failure ``error = {"type", "message", "stderr"}`` with the
tail of what the command wrote to stderr. Dependencies, outputs, run and versions are
committed in one transaction.

A command fails when it exits non-zero, cannot be started (exit code 127, or 126 when not
executable), or exits 0 without creating or updating every output (an output whose files all
keep their inode and change time was not written by it: a stale file from before is never
recorded as this command's product). A failed run keeps its inputs, records no outputs, and
is never reused. The command's stdout goes to ours (or, with ``stdout_to_stderr``, to our
stderr); its stderr is echoed to ours as it runs.
"""

from __future__ import annotations

import codecs
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import LineageError, PathError, RunError
from lineage.refs.revisions import check_name
from lineage.tracking import recording

if TYPE_CHECKING:
    from lineage.store.ingest import Prepared
    from lineage.store.store import Store

__all__ = ["CommandResult", "call_key", "run_command"]

KEY_TAG: Final = "lineage/command"
_TAIL_BYTES: Final = 8192  # kept from the command's stderr
_TAIL_CHARS: Final = 1500  # of which this much goes into the recorded error
_NOT_FOUND: Final = 127
_NOT_EXECUTABLE: Final = 126

Fingerprint = tuple[Any, ...] | None


@dataclass(frozen=True, slots=True)
class CommandResult:
    """What :func:`run_command` did.

    ``ran`` is false when an earlier run was reused; ``run`` is the run recorded now, or that
    earlier run. ``exit_code`` is the command's (``None`` when skipped). ``restored`` lists
    outputs written back from the store on a skip; ``outputs`` maps each output path to its
    artifact (with its version) when the run succeeded.
    """

    name: str
    ran: bool
    run: Run
    call_key: Digest
    exit_code: int | None = None
    restored: tuple[str, ...] = ()
    outputs: dict[str, Artifact] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether the outputs are there and recorded (a skip, or a successful run)."""
        return self.run.status == "ok"

    @property
    def skipped(self) -> bool:
        """Whether the command was not executed because an earlier run was reused."""
        return not self.ran

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"name", "ran", "skipped", "status", "exit_code", "run", "call_key",
        "restored", "outputs": {path: {"digest", "name", "version"}}, "inputs": {path:
        digest}, "error"}``."""
        return {
            "name": self.name,
            "ran": self.ran,
            "skipped": self.skipped,
            "status": self.run.status,
            "exit_code": self.exit_code,
            "run": self.run.digest,
            "call_key": self.call_key.hex(),
            "restored": list(self.restored),
            "outputs": {path: {"digest": a.digest, "name": a.name, "version": a.version}
                        for path, a in self.outputs.items()},
            "inputs": {path: d.hex() for path, d in self.run.inputs.items()},
            "error": dict(self.run.error) if self.run.error else None,
        }


def call_key(name: str, argv: Sequence[str], deps: dict[str, Digest],
             outs: Iterable[str]) -> Digest:
    """The call key of a command: see the module docstring."""
    return encoding.digest_of([KEY_TAG, name, list(argv), dict(deps), sorted(outs)])


def run_command(store: Store, name: str, deps: Sequence[str | os.PathLike[str]],
                outs: Sequence[str | os.PathLike[str]], argv: Sequence[str], *,
                force: bool = False, stdout_to_stderr: bool = False) -> CommandResult:
    """Run ``argv`` as a recorded run named ``name``, or skip it (see the module docstring).

    Args:
        store: where to record.
        name: the run's operation name (``lineage runs --op NAME``).
        deps: files or directories the command reads.
        outs: files or directories the command writes.
        argv: the command; never run through a shell (pass ``["sh", "-c", "..."]``).
        force: run even when an earlier run could be reused.
        stdout_to_stderr: send the command's stdout to our stderr (for ``--json``).

    Returns:
        A :class:`CommandResult`; a failed command gives ``result.ok == False`` and its
        ``exit_code`` (the failed run is recorded), it does not raise.

    Raises:
        InvalidName: ``name`` breaks the naming rules.
        RunError: ``argv`` is empty.
        PathError: a dependency is missing, or paths overlap (an output inside a
            dependency, one path given as both).
    """
    check_name(name, "run name")
    command = [str(part) for part in argv]
    if not command:
        raise RunError("give the command to run after `--`, e.g. -- Rscript fit.R")
    dep_paths, out_paths = _paths(deps), _paths(outs)
    _check_paths(dep_paths, out_paths)
    inputs = {path: recording.prepare(store, path, path_name=False) for path in dep_paths}
    key = call_key(name, command, {p: _content(v) for p, v in inputs.items()}, out_paths)
    if not force:
        reused = _reuse(store, name, key, out_paths)
        if reused is not None:
            return reused
    return _execute(store, name, key, command, inputs, out_paths, stdout_to_stderr)


# -- paths --------------------------------------------------------------------------------


def _paths(given: Sequence[str | os.PathLike[str]]) -> list[str]:
    return sorted({os.path.normpath(os.fspath(path)) for path in given})


def _check_paths(deps: list[str], outs: list[str]) -> None:
    missing = [path for path in deps if not os.path.lexists(path)]
    if missing:
        raise PathError(f"missing dependenc{'y' if len(missing) == 1 else 'ies'}: "
                        f"{', '.join(missing)}; nothing was run")
    resolved = {path: Path(path).resolve() for path in [*deps, *outs]}
    for out in outs:
        for other in [*deps, *outs]:
            if other == out:
                if other in deps:
                    raise PathError(f"{out} is both a dependency and an output")
                continue
            a, b = resolved[out], resolved[other]
            if a == b or a.is_relative_to(b) or b.is_relative_to(a):
                raise PathError(
                    f"output {out} overlaps {'dependency' if other in deps else 'output'} "
                    f"{other}; outputs must lie outside dependencies and each other"
                )


def _content(prepared: Prepared) -> Digest:
    blob = prepared.artifact.blob
    assert blob is not None  # noqa: S101 - a staged path always has content
    return blob


def _fingerprint(path: str) -> Fingerprint:
    """Inode, size and times of ``path`` and everything under it; ``None`` if missing.

    Any write changes a file's change time (which users cannot set), so an equal
    fingerprint before and after the command means the command did not write there.
    """
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    entries: list[Any] = [("", info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)]
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            for entry in sorted([*dirs, *files]):
                full = os.path.join(root, entry)
                try:
                    sub = os.lstat(full)
                except FileNotFoundError:
                    continue
                entries.append((os.path.relpath(full, path), sub.st_ino, sub.st_size,
                                sub.st_mtime_ns, sub.st_ctime_ns))
    return tuple(entries)


# -- reuse --------------------------------------------------------------------------------


def _reuse(store: Store, name: str, key: Digest, outs: list[str]) -> CommandResult | None:
    """Restore the outputs of the ok run recorded under ``key``; ``None`` if there is none
    or its outputs can no longer be read (then the command runs again)."""
    try:
        run = recording.recorded_run(store, key)
        if run is None or run.status != "ok" or set(run.outputs) != set(outs):
            return None
        artifacts = {}
        for path in outs:
            artifact = store.resolve(run.outputs[path])
            if not isinstance(artifact, Artifact) or artifact.blob is None:
                return None
            artifacts[path] = recording.labelled(store, artifact)
        restored = []
        for path, artifact in artifacts.items():
            if not _holds(store, path, artifact):
                store.checkout(artifact, path, force=True)
                restored.append(path)
    except LineageError:
        return None  # recorded content gone or corrupt: run the command again
    return CommandResult(name, False, run, key, None, tuple(restored), artifacts)


def _holds(store: Store, path: str, artifact: Artifact) -> bool:
    if not os.path.lexists(path):
        return False
    try:
        return recording.identity_of_path(store, Path(path)) == artifact.blob
    except PathError:
        return False


# -- running --------------------------------------------------------------------------------


def _execute(store: Store, name: str, key: Digest, argv: list[str],
             inputs: dict[str, Prepared], outs: list[str],
             stdout_to_stderr: bool) -> CommandResult:
    before = {path: _fingerprint(path) for path in outs}
    started = time.time()
    not_started = False
    try:
        exit_code, tail = _spawn(argv, stdout_to_stderr)
    except _NotStarted as exc:
        exit_code, tail, not_started = exc.code, str(exc), True
    except KeyboardInterrupt:
        interrupted = {"type": "KeyboardInterrupt", "message": "interrupted", "stderr": ""}
        _record(store, name, key, argv, inputs, {}, started, None, interrupted)
        raise
    ended = time.time()
    error: dict[str, str] | None = None
    outputs: dict[str, Prepared] = {}
    if exit_code != 0:
        error = {"type": "CommandFailed", "message": _failure(argv, exit_code, tail),
                 "stderr": tail}
        if not_started:
            error = {"type": "CommandNotStarted", "message": tail, "stderr": ""}
    else:
        error = _unwritten(outs, before)
        if error is None:
            try:
                outputs = {path: recording.prepare(store, path) for path in outs}
            except PathError as exc:
                error = {"type": "PathError", "message": str(exc), "stderr": tail}
    if error is not None:
        outputs = {}
    run, versions = _record(store, name, key, argv, inputs, outputs, started, exit_code, error,
                            ended=ended)
    artifacts = {path: outputs[path].artifact.with_version(versions.get(path))
                 for path in outputs}
    return CommandResult(name, True, run, key, exit_code, (), artifacts)


def _spawn(argv: list[str], stdout_to_stderr: bool) -> tuple[int, str]:
    """Run ``argv``; echo its stderr to ours; return its exit code and stderr's tail."""
    read_end, write_end = os.pipe()
    try:
        process = subprocess.Popen(  # noqa: S603 - running the user's command is the point
            argv, stdout=write_end if stdout_to_stderr else None, stderr=write_end)
    except OSError as exc:
        os.close(read_end)
        code = _NOT_FOUND if isinstance(exc, FileNotFoundError) else _NOT_EXECUTABLE
        raise _NotStarted(code, f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    finally:
        os.close(write_end)
    tail = bytearray()
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        with os.fdopen(read_end, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                sys.stderr.write(decoder.decode(chunk))
                sys.stderr.flush()
                tail += chunk
                del tail[:-_TAIL_BYTES]
        return process.wait(), tail.decode(errors="replace")
    except BaseException:
        _stop(process)
        raise


class _NotStarted(Exception):
    """The command could not be started (not found, not executable)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Wait for an interrupted command (it got the same SIGINT), killing it if it lingers."""
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _failure(argv: list[str], exit_code: int, tail: str) -> str:
    what = f"{argv[0]} exited with code {exit_code}"
    if exit_code < 0:
        what = f"{argv[0]} was killed by signal {-exit_code}"
    text = tail.strip()
    if not text:
        return what
    return f"{what}; stderr: ...{text[-_TAIL_CHARS:]}" if len(text) > _TAIL_CHARS \
        else f"{what}; stderr: {text}"


def _unwritten(outs: list[str], before: dict[str, Fingerprint]) -> dict[str, str] | None:
    missing = [path for path in outs if not os.path.lexists(path)]
    stale = [path for path in outs if path not in missing and before[path] is not None
             and _fingerprint(path) == before[path]]
    if not missing and not stale:
        return None
    parts = []
    if missing:
        parts.append(f"did not create {', '.join(missing)}")
    if stale:
        parts.append(f"did not write {', '.join(stale)} (left as it was before)")
    return {"type": "MissingOutput",
            "message": f"the command exited 0 but {' and '.join(parts)}; check its -o paths",
            "stderr": ""}


# -- recording ------------------------------------------------------------------------------


def _record(store: Store, name: str, key: Digest, argv: list[str],
            inputs: dict[str, Prepared], outputs: dict[str, Prepared], started: float,
            exit_code: int | None, error: dict[str, str] | None, *,
            ended: float | None = None) -> tuple[Run, dict[str, str | None]]:
    """Commit deps, outputs, environment and the run in one transaction.

    If an output's name cannot be versioned (another writer took the version, or the name
    is a tag), the outputs are kept without versions.
    """
    run_id = uuid.uuid4().hex
    finished = ended if ended is not None else time.time()

    def make_run(environment: Digest) -> Run:
        return Run(
            op=name, id=run_id,
            inputs={path: p.artifact.raw_digest for path, p in inputs.items()},
            outputs={path: p.artifact.raw_digest for path, p in outputs.items()},
            params={"command": argv}, environment=environment,
            status="failed" if error else "ok", error=error, started=started, ended=finished,
            call_key=None if error else key,
            meta={"cwd": os.getcwd(), "exit_code": exit_code},
        )

    recorded = recording.commit_run(store, make_run, content=list(inputs.values()),
                                    outputs=outputs, unversioned=lambda run, _conflict: run)
    return recorded.run, recorded.versions
