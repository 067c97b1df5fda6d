"""The ``lineage`` command line: parse arguments, call the library, print the result.

Verbs live in one module per group (:mod:`~lineage.cli.store_verbs`,
:mod:`~lineage.cli.query_verbs`, :mod:`~lineage.cli.run_verbs`); see :mod:`lineage.cli.verb`
for what a verb is. ``--json`` prints a verb's data as one document on stdout;
:mod:`lineage.cli.format` renders it as aligned text otherwise.

``--json`` documents (keys are stable; digests are 32 hex characters, times ISO 8601 UTC)::

    init      {"path", "created"}
    add       {"added": [{"path", "digest", "kind", "name", "version", "size"}]}
    show      an artifact: Artifact.to_dict() = {"type": "artifact", "digest", "kind", "name",
                "version", "format", "size", "blob", "parents", "meta", "summary"} plus
                "versions": [{"version", "digest", "time"}], "stages": {stage: digest},
                "tags": [tag], "review": {"model": {"class", "params", "classes",
                "n_features", "importance": {"kind", "top": [[feature, value]], "total"}}}
                or {"table": {"rows", "columns", "target", "class_distribution", "key",
                "missing"}} or {}
              a run: Run.to_dict() = {"type": "run", "digest", "id", "op", "label",
                "status", "started", "ended", "duration", "params", "metrics",
                "metric_datasets", "inputs", "outputs", "code", "environment", "parent",
                "call_key", "error", "meta"} with metric_datasets, inputs, outputs, code
                and environment as ref = {"digest", "kind", "name", "version"} or null
    log       {"name", "entries": [{"name", "ref", "key", "target", "previous", "time",
                "user", "reason"}]}  (newest first)
    tag       {"tag", "digest", "name", "version", "deleted"}
    promote   {"name", "stage", "digest", "version"}
    checkout  {"digest", "name", "version", "path"}
    verify    {"ok", "records", "blobs", "chunks", "bytes", "events", "head", "problems": [str]}
    gc        {"dry_run", "records", "blobs", "chunks", "bytes_freed", "orphaned_bytes"}
    runs      {"runs": [{"digest", "id", "op", "label", "status", "started", "duration",
                "inputs": [name], "outputs": [name], "params", "metrics", "test_sets":
                {metric: name@version}, "test_set_rows": {name@version: n}}]}  (newest
                first)
    compare   {"runs": [{"digest", "op", "label", "status", "started", "inputs": {name:
                label}}], "params": [{"name", "values", "present", "differs"}], "metrics":
                [{"name", "values", "deltas", "test_sets", "comparable"}], "plot": path or
                null}  (params that differ first; deltas from the first run)
    diff      :meth:`LineageDiff.to_dict` (schema in :mod:`lineage.diff.model`)
    dag       {"root": digest, "nodes": [node], "edges": [{"source", "target", "type",
                "roles": [str]}]}  where node = {"digest", "kind", "name", "version", "op",
                "status"} (runs have op and status, artifacts name and version)
              without REV: {"pipelines": [{"sources": [id], "steps": [id], "outputs": [id],
                "nodes": [{"id", "kind", "name", "versions", "runs", "inside"}], "edges":
                [{"source", "target", "type", "roles"}]}]}  (steps folded by op, kind
                "step"; artifacts by name)
    ancestors, descendants  {"revision": node, "records": [node]}  (nearest first)
    lint, run  see :mod:`lineage.cli.run_verbs` (``run`` exits with a failed command's code)
    events    see :mod:`lineage.cli.audit_verbs` (also promote, policy, report, export, trace,
              impact); site, ui: :mod:`lineage.cli.web_verbs`
    remote, push, pull  see :mod:`lineage.cli.remote_verbs`

``diff`` exits 0 whether or not the revisions differ, like ``git diff``.

Exit status: 0 on success; 1 on an error (one line ``lineage: error: ...`` on stderr, never a
traceback; set ``LINEAGE_DEBUG=1`` to see one for internal errors) or when ``verify`` finds
problems; 2 on a usage error; 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

from lineage._version import __version__
from lineage.cli import audit_verbs, query_verbs, remote_verbs, run_verbs, store_verbs, web_verbs
from lineage.cli.verb import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CommandError,
    Context,
    Result,
    UsageError,
    Verb,
)
from lineage.errors import LineageError, RevisionNotFound
from lineage.store.opening import default_path

__all__ = ["VERBS", "build_parser", "main"]

#: Every verb, in the order ``lineage --help`` lists them.
VERBS: Final[tuple[Verb, ...]] = (
    *store_verbs.VERBS, *query_verbs.VERBS, *run_verbs.VERBS, *audit_verbs.VERBS,
    *remote_verbs.VERBS, *web_verbs.VERBS)


# -- parsing and running ------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line naming where help is."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {' '.join(message.split())} "
                              f"(see {self.prog} --help)\n")


def _common(suppress: bool) -> _Parser:
    """``--store`` and ``--json``, accepted before or after the verb."""
    parser = _Parser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--store", metavar="PATH", default=default,
                        help="the store directory (default: $LINEAGE_HOME or ./.lineage)")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="print one JSON document on stdout")
    return parser


def build_parser(only: str | None = None
                 ) -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``lineage`` parser and its subparsers by verb name: every verb's, or with
    ``only`` just that verb's (what running it needs: building all ~30 costs each command
    about 10 ms, mostly argparse looking up translations of its messages)."""
    parser = _Parser(
        prog="lineage", parents=[_common(suppress=False)],
        description="Exact, content-addressed provenance for ML.",
    )
    parser.add_argument("--version", action="version", version=f"lineage {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers: dict[str, argparse.ArgumentParser] = {}
    for verb in VERBS if only is None else (_BY_NAME[only],):
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.help,
                               parents=[_common(suppress=True)])
        for argument in verb.arguments:
            sub.add_argument(*argument.flags, **argument.options)
        subparsers[verb.name] = sub
    return parser, subparsers


_BY_NAME: Final = {verb.name: verb for verb in VERBS}


def _verb_named(argv: Sequence[str]) -> str | None:
    """The verb ``argv`` runs, if its first word past the global options is one; else
    ``None`` (``--help``, ``--version``, a typo: the full parser answers those)."""
    words = iter(argv)
    for word in words:
        if word == "--store":
            next(words, None)
        elif not (word == "--json" or word.startswith("--store=")):
            return word if word in _BY_NAME else None
    return None


def _say_error(message: str) -> None:
    print(f"lineage: error: {' '.join(message.split())}", file=sys.stderr)


def _print_result(result: Result, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.data, indent=2, sort_keys=False, allow_nan=False))
    elif result.text:
        print(result.text)
    sys.stdout.flush()
    if result.error:
        _say_error(result.error)


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``lineage`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, _subparsers = build_parser(only=_verb_named(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.verb is None:
        _say_error("give a verb: " + ", ".join(_BY_NAME) + " (see lineage --help)")
        return EXIT_USAGE
    context = Context(Path(args.store) if args.store else default_path())
    try:
        result = _BY_NAME[args.verb].run(context, args)
        _print_result(result, args.json)
        return result.code
    except UsageError as exc:
        print(f"lineage {args.verb}: error: {exc} (see lineage {args.verb} --help)",
              file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except (LineageError, OSError, CommandError) as exc:
        message = str(exc) or type(exc).__name__
        if getattr(args, "as_of", None) is not None and isinstance(exc, RevisionNotFound):
            message = f"as of {args.as_of}: {message}"
        _say_error(message)
        return EXIT_ERROR
    except Exception as exc:
        if os.environ.get("LINEAGE_DEBUG"):
            raise
        _say_error(f"internal error: {type(exc).__name__}: {exc} "
                   "(set LINEAGE_DEBUG=1 to see the traceback, and please report it)")
        return EXIT_ERROR
    finally:
        context.close()


def _silence_stdout() -> None:
    """After a closed pipe (``lineage runs | head``), keep Python from complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
