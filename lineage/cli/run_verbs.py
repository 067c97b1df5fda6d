"""Verbs about recorded work and its review: ``run`` (any command as a run) and ``lint``.

``--json`` documents::

    lint  {"ok", "errors", "warnings", "findings": [{"severity", "code", "kind", "label",
            "digest", "message"}]}  (errors first)
    run   :meth:`lineage.tracking.command.CommandResult.to_dict`

``lint`` exits 1 when there is any error finding, 0 with warnings only. ``run`` exits 0 when
the command ran and its outputs were recorded, or was skipped; with the command's own exit
code when it failed (128 + N when killed by signal N); 1 when it exited 0 without writing
its outputs.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Final

from lineage.cli import format as fmt
from lineage.cli.verb import EXIT_ERROR, Context, Result, UsageError, Verb, arg

__all__ = ["VERBS"]

if TYPE_CHECKING:
    from lineage.tracking.command import CommandResult


def _lint(ctx: Context, args: argparse.Namespace) -> Result:
    """``lineage lint``: every finding, one line each."""
    findings = ctx.store.lint()
    errors = sum(f.severity == "error" for f in findings)
    warnings = len(findings) - errors
    data = {"ok": errors == 0, "errors": errors, "warnings": warnings,
            "findings": [f.to_dict() for f in findings]}
    text = "\n".join(str(f) for f in findings) or "no findings"
    if errors:
        message = f"lint found {fmt.count(errors, 'error')} and {fmt.count(warnings, 'warning')}"
        return Result(data, text, EXIT_ERROR, message)
    return Result(data, text)


def _run(ctx: Context, args: argparse.Namespace) -> Result:
    """``lineage run -n NAME -d DEP... -o OUT... -- CMD...``."""
    from lineage.tracking.command import run_command

    command = list(args.command or ())
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        raise UsageError("give the command after `--`, e.g. lineage run -n fit -d data.csv "
                         "-o model.rds -- Rscript fit.R")
    result = run_command(ctx.store, args.name, args.dep or [], args.out or [], command,
                         force=args.force, stdout_to_stderr=args.json)
    data = result.to_dict()
    if result.ok:
        return Result(data, _ok_text(result))
    code = result.exit_code or 0
    code = 128 - code if code < 0 else code if code > 0 else EXIT_ERROR
    error = result.run.error or {}
    message = f"{error.get('message', 'the command failed').splitlines()[0][:300]} " \
              f"(recorded as failed run {fmt.short(result.run.digest)})"
    text = f"ran {result.name}: failed (run {fmt.short(result.run.digest)})"
    return Result(data, text, code, message)


def _ok_text(result: CommandResult) -> str:
    outputs = ", ".join(f"{path} ({_label(a)})" for path, a in result.outputs.items())
    run = fmt.short(result.run.digest)
    if result.ran:
        made = f": recorded {fmt.count(len(result.outputs), 'output')}" if outputs else ""
        return f"ran {result.name} (run {run}){made}" + (f": {outputs}" if outputs else "")
    if result.restored:
        paths = ", ".join(result.restored)
        done = f"restored {fmt.count(len(result.restored), 'output')} ({paths})"
    else:
        done = "outputs up to date"
    return (f"skipped {result.name}: run {run} already ran this command on the same "
            f"dependencies; {done}")


def _label(artifact: Any) -> str:
    return f"{fmt.label(artifact.name, artifact.version)} {fmt.short(artifact.digest)}"


VERBS: Final[tuple[Verb, ...]] = (
    Verb("lint", _lint, "what a reviewer would flag; exit 1 on any error finding"),
    Verb("run", _run, "run a command as a recorded run, or skip it if its "
         "dependencies are unchanged", (
        arg("-n", "--name", required=True, help="the operation's name (the run's op)"),
        arg("-d", "--dep", action="extend", nargs="+", metavar="DEP", help="files or "
            "directories it reads"),
        arg("-o", "--out", action="extend", nargs="+", metavar="OUT", help="files or "
            "directories it writes"),
        arg("--force", action="store_true", help="run even if an earlier run can be reused"),
        arg("command", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command"))),
)
