"""The ``lineage`` command line: parse arguments, call the library, print the result.

Every verb is one function ``(Context, argparse.Namespace) -> Result`` plus one line in
:data:`VERBS`; the function calls :class:`~lineage.Store` methods and builds a JSON-safe dict,
which ``--json`` prints as one document on stdout and which :mod:`lineage.cli_format` renders
as aligned text otherwise.

``--json`` documents (keys are stable; digests are 32 hex characters, times ISO 8601 UTC)::

    init      {"path", "created"}
    add       {"added": [{"path", "digest", "kind", "name", "version", "size", "new_bytes"}]}
    show      an artifact: {"type": "artifact", "digest", "kind", "name", "version", "format",
                "size", "parents", "meta", "summary", "versions": [{"version", "digest",
                "time"}], "stages": {stage: digest}, "tags": [tag]}
              a run: {"type": "run", "digest", "id", "op", "name", "status", "started",
                "ended", "duration", "params", "metrics", "metric_datasets": {metric: ref},
                "inputs": {name: ref}, "outputs": {name: ref}, "code": ref, "environment":
                ref, "parent", "error", "meta"}  where ref = {"digest", "kind", "name",
                "version"} or null
    log       {"name", "entries": [{"name", "ref", "key", "target", "previous", "time",
                "user", "reason"}]}  (newest first)
    tag       {"tag", "digest", "name", "version", "deleted"}
    promote   {"name", "stage", "digest", "version"}
    checkout  {"digest", "name", "version", "path"}
    verify    {"ok", "records", "blobs", "chunks", "bytes", "problems": [str]}
    gc        {"dry_run", "records", "blobs", "chunks", "bytes_freed"}
    runs      {"runs": [{"digest", "id", "op", "name", "status", "started", "duration",
                "inputs": [name], "outputs": [name], "metrics"}]}  (newest first)
    diff      :meth:`LineageDiff.to_dict` (schema in :mod:`lineage.diff`)
    dag       {"root": digest, "nodes": [node], "edges": [{"source", "target", "type",
                "roles": [str]}]}  where node = {"digest", "kind", "name", "version", "op",
                "status"} (runs have op and status, artifacts name and version)
    ancestors, descendants  {"revision": node, "records": [node]}  (nearest first)
    lint, run  see :mod:`lineage.cli_extra` (``run`` exits with a failed command's code)

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Final

from . import cli_format as fmt
from . import cli_graph as graph
from ._version import __version__
from .errors import LineageError, PathError, RevisionNotFound, StoreError
from .progress import Progress, total_size
from .records import Artifact, Run
from .store import Store, default_path, open_store

__all__ = ["VERBS", "Verb", "main"]

EXIT_ERROR: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


class UsageError(Exception):
    """Arguments that parse but do not go together; exits 2 with the verb's usage."""


class CommandError(Exception):
    """A failure the CLI itself detects; exits 1 with its message."""


@dataclass(slots=True)
class Result:
    """What a verb produced: ``data`` for ``--json``, ``text`` for people."""

    data: dict[str, Any]
    text: str
    code: int = 0
    error: str | None = None  # one line for stderr when ``code`` is non-zero


@dataclass(slots=True)
class Context:
    """The store a verb works on, opened on first use and closed by :func:`main`."""

    path: Path
    _store: Store | None = None

    @property
    def store(self) -> Store:
        """The existing store at ``path``; refuses to create one (that is ``init``'s job)."""
        if self._store is None:
            # An LMDB store directory always holds data.mdb once created.
            if not (self.path / "data.mdb").is_file():
                raise StoreError(
                    f"no lineage store at {self.path}; create one with `lineage init` "
                    "or point to one with --store or LINEAGE_HOME"
                )
            self._store = open_store(self.path)
        return self._store

    def create(self) -> Store:
        """Open the store at ``path``, creating it if needed."""
        self._store = open_store(self.path)
        return self._store

    def close(self) -> None:
        """Close the store if it was opened."""
        if self._store is not None:
            self._store.close()


@dataclass(frozen=True, slots=True)
class Arg:
    """One ``add_argument`` call: flags and options."""

    flags: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


def arg(*flags: str, **options: Any) -> Arg:
    """An argument of a verb, as ``parser.add_argument(*flags, **options)`` takes it."""
    return Arg(flags, options)


@dataclass(frozen=True, slots=True)
class Verb:
    """A subcommand: its name, its function, a one-line help, and its arguments."""

    name: str
    run: Callable[[Context, argparse.Namespace], Result]
    help: str
    arguments: tuple[Arg, ...] = ()


# -- argument types -----------------------------------------------------------------------


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return number


# -- verbs --------------------------------------------------------------------------------


def _init(ctx: Context, args: argparse.Namespace) -> Result:
    created = not (ctx.path / "data.mdb").is_file()
    ctx.create()
    path = str(ctx.path.resolve())
    text = f"{'created a' if created else 'found an existing'} lineage store in {path}"
    return Result({"path": path, "created": created}, text)


def _add(ctx: Context, args: argparse.Namespace) -> Result:
    paths: list[str] = args.paths
    if len(paths) > 1 and (args.name or args.version):
        raise UsageError("--name and --version need exactly one PATH")
    for path in paths:  # refuse before adding anything
        if not os.path.lexists(path):
            raise PathError(f"no such file or directory: {path}")
    store = ctx.store
    added: list[dict[str, Any]] = []
    bar = Progress(None, "add")
    if bar.enabled:
        bar.total = total_size(paths)
    with bar:
        for path in paths:
            name = args.name or (Path(path).resolve().name if args.version else None)
            prepare = partial(
                store.prepare, path, name, version=args.version, kind=args.kind,
                meta=dict(args.meta or ()), derived_from=tuple(args.derived_from or ()),
                target=args.target, progress=bar,
            )
            try:
                artifact, new_bytes = store.add_prepared(prepare, reason=args.reason)
            except (LineageError, OSError) as exc:
                if not added:
                    raise
                done = ", ".join(fmt.label(a["name"], a["version"]) for a in added)
                raise CommandError(f"{exc} (already added: {done})") from exc
            added.append({
                "path": path, "digest": artifact.digest, "kind": artifact.kind,
                "name": artifact.name, "version": artifact.version, "size": artifact.size,
                "new_bytes": new_bytes,
            })
    return Result({"added": added}, fmt.added_text(added))


def _show(ctx: Context, args: argparse.Namespace) -> Result:
    data = fmt.record_dict(ctx.store, ctx.store.resolve(args.revision))
    text = fmt.artifact_text(data) if data["type"] == "artifact" else fmt.run_text(data)
    return Result(data, text)


def _log(ctx: Context, args: argparse.Namespace) -> Result:
    entries = [e.to_dict() for e in reversed(ctx.store.log(args.name))]
    return Result({"name": args.name, "entries": entries}, fmt.log_text(entries))


def _tag(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    if not args.delete:
        if args.revision is None:
            raise UsageError("give REV and TAG (or --delete TAG)")
        artifact = store.tag(args.revision, args.tag, reason=args.reason)
        version = fmt.version_of(store, artifact)
        text = (f"tagged {fmt.label(artifact.name, version)} "
                f"({fmt.short(artifact.digest)}) as {args.tag}")
        return Result(_tag_data(args.tag, artifact.digest, artifact.name, version, False), text)
    try:
        before = store.artifact(args.tag)
    except RevisionNotFound:
        before = None
    if args.revision is not None and (
        before is None or store.resolve_digest(args.revision) != before.raw_digest
    ):
        raise CommandError(f"tag {args.tag!r} does not name {args.revision!r}; nothing deleted")
    store.untag(args.tag, reason=args.reason)
    digest = before.digest if before is not None else None
    name = before.name if before is not None else None
    text = f"deleted tag {args.tag} (was {fmt.short(digest)})"
    return Result(_tag_data(args.tag, digest, name, None, True), text)


def _tag_data(tag: str, digest: str | None, name: str | None, version: str | None,
              deleted: bool) -> dict[str, Any]:
    return {"tag": tag, "digest": digest, "name": name, "version": version, "deleted": deleted}


def _promote(ctx: Context, args: argparse.Namespace) -> Result:
    artifact = ctx.store.promote(args.revision, args.stage, reason=args.reason)
    version = fmt.version_of(ctx.store, artifact)
    data = {"name": artifact.name, "stage": args.stage, "digest": artifact.digest,
            "version": version}
    text = (f"promoted {fmt.label(artifact.name, version)} ({fmt.short(artifact.digest)}) "
            f"to {artifact.name}@{args.stage}")
    return Result(data, text)


def _checkout(ctx: Context, args: argparse.Namespace) -> Result:
    artifact = ctx.store.artifact(args.revision)
    path = ctx.store.checkout(artifact, args.target, force=args.force)
    version = fmt.version_of(ctx.store, artifact)
    data = {"digest": artifact.digest, "name": artifact.name, "version": version,
            "path": str(path)}
    return Result(data, f"checked out {fmt.label(artifact.name, version)} to {path}")


def _verify(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    with Progress(None, "verify") as bar:
        report = store.verify(progress=bar).to_dict()
    if report["ok"]:
        return Result(report, fmt.verify_text(report))
    error = f"verify found {fmt.count(len(report['problems']), 'problem')} in {store.path}"
    return Result(report, fmt.verify_text(report), EXIT_ERROR, error)


def _gc(ctx: Context, args: argparse.Namespace) -> Result:
    report = ctx.store.gc(dry_run=not args.yes).to_dict()
    return Result(report, fmt.gc_text(report))


def _runs(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.store.runs(
        args.op, used=args.used, produced=args.produced, status=args.status,
        params=dict(args.param or ()), metrics=dict(args.metric or ()), since=args.since,
        until=args.until, name=args.name, limit=args.limit,
    )
    rows = [fmt.run_row(run) for run in found]
    return Result({"runs": rows}, fmt.runs_text(rows))


def _diff(ctx: Context, args: argparse.Namespace) -> Result:
    if args.json and args.markdown:
        raise UsageError("give --json or --markdown, not both")
    difference = ctx.store.diff(args.a, args.b)
    text = difference.to_markdown() if args.markdown else difference.to_text(color=args.color)
    return Result(difference.to_dict(), text.rstrip("\n"))


def _dag(ctx: Context, args: argparse.Namespace) -> Result:
    if args.json and args.dot:
        raise UsageError("give --json or --dot, not both")
    root = ctx.store.resolve(args.revision)
    data = graph.dag_data(ctx.store.graph(root, args.depth, "upstream"), root.digest)
    return Result(data, graph.dot_text(data) if args.dot else graph.dag_text(data))


def _ancestors(ctx: Context, args: argparse.Namespace) -> Result:
    root = ctx.store.resolve(args.revision)
    found = ctx.store.ancestors(root, args.depth, args.kind)
    return _records(root, found, f"nothing recorded upstream of {args.revision}")


def _descendants(ctx: Context, args: argparse.Namespace) -> Result:
    root = ctx.store.resolve(args.revision)
    found = ctx.store.descendants(root, args.depth, args.kind)
    return _records(root, found, f"nothing recorded downstream of {args.revision}")


def _records(root: Artifact | Run, found: list[Artifact | Run], empty: str) -> Result:
    rows = [graph.record_row(record) for record in found]
    return Result({"revision": graph.record_row(root), "records": rows},
                  graph.records_text(rows, empty))


def _extra(name: str) -> Callable[[Context, argparse.Namespace], Result]:
    """A verb defined in :mod:`lineage.cli_extra` (imported when it runs)."""
    def verb(ctx: Context, args: argparse.Namespace) -> Result:
        from . import cli_extra

        return getattr(cli_extra, name)(ctx, args)  # type: ignore[no-any-return]
    return verb


_REASON: Final = arg("--reason", default="", help="why (kept in the ref history)")
_DEPTH: Final = arg("--depth", type=_positive, metavar="N", help="follow at most N edges")
_KIND: Final = arg("--kind", action="append", metavar="K",
                   help="only records of this kind (run, dataset, model ...); repeatable")

VERBS: Final[tuple[Verb, ...]] = (
    Verb("init", _init, "create a store here (or at --store) and print where"),
    Verb("add", _add, "add files or directories as artifacts", (
        arg("paths", nargs="+", metavar="PATH", help="files or directories"),
        arg("--name", help="name (default: the file name); one PATH only"),
        arg("--version", help="version (default: the next vN); one PATH only"),
        arg("--kind", help="artifact kind, e.g. dataset (default: file or directory)"),
        arg("--target", metavar="COL", help="a dataset's label column"),
        arg("--meta", action="append", type=_key_value, metavar="KEY=VALUE",
            help="a note (origin, selection, biases ...); repeatable"),
        arg("--derived-from", action="append", metavar="REV",
            help="an artifact this one was derived from; repeatable"),
        _REASON)),
    Verb("show", _show, "show an artifact or run", (arg("revision", metavar="REV"),)),
    Verb("log", _log, "history of a name's versions, stages and tags, newest first",
         (arg("name", metavar="NAME"),)),
    Verb("tag", _tag, "point a tag at a revision, or delete it", (
        arg("revision", metavar="REV", nargs="?"), arg("tag", metavar="TAG"),
        arg("--delete", action="store_true", help="remove TAG (only if it names REV, if given)"),
        _REASON)),
    Verb("promote", _promote, "move name@STAGE (e.g. production) to a revision", (
        arg("revision", metavar="REV"), arg("stage", metavar="STAGE"), _REASON)),
    Verb("checkout", _checkout, "write a stored file or directory to TARGET", (
        arg("revision", metavar="REV"), arg("target", metavar="TARGET"),
        arg("--force", action="store_true", help="overwrite TARGET if it exists"))),
    Verb("verify", _verify, "re-hash everything; exit 1 if anything is wrong"),
    Verb("gc", _gc, "remove what no ref and no run reaches (dry run unless --yes)", (
        arg("--yes", action="store_true", help="really remove"),)),
    Verb("runs", _runs, "list runs, newest first", (
        arg("--op", help="only runs of this operation"),
        arg("--status", choices=("ok", "failed")),
        arg("--name", help="only runs with this name"),
        arg("--used", metavar="REV", help="only runs that used this artifact"),
        arg("--produced", metavar="REV", help="only runs that produced this artifact"),
        arg("--since", type=graph.since_time, metavar="ISO",
            help="only runs started at or after this (local time unless an offset is given)"),
        arg("--until", type=graph.until_time, metavar="ISO",
            help="only runs started at or before this (a date alone: to its end)"),
        arg("--param", action="append", type=graph.param_filter, metavar="KEY=VALUE",
            help="only runs with this param (also KEY<N, KEY>=N, KEY!=VALUE ...); repeatable"),
        arg("--metric", action="append", type=graph.metric_filter, metavar="NAME>N",
            help="only runs whose metric compares so (> >= < <= == !=); repeatable"),
        arg("--limit", type=_positive, metavar="N", help="at most N runs"))),
    Verb("diff", _diff, "what changed between two revisions, and why (exit 0 either way)", (
        arg("a", metavar="A"), arg("b", metavar="B"),
        arg("--markdown", action="store_true", help="print a Markdown report"),
        arg("--color", action=argparse.BooleanOptionalAction, default=None,
            help="colour the text (default: only on a terminal, unless NO_COLOR is set)"))),
    Verb("dag", _dag, "the lineage upstream of REV as a tree", (
        arg("revision", metavar="REV"), _DEPTH,
        arg("--dot", action="store_true", help="print Graphviz DOT instead"))),
    Verb("ancestors", _ancestors, "records REV came from, nearest first", (
        arg("revision", metavar="REV"), _DEPTH, _KIND)),
    Verb("descendants", _descendants, "records made from REV, nearest first", (
        arg("revision", metavar="REV"), _DEPTH, _KIND)),
    Verb("lint", _extra("lint"), "what a reviewer would flag; exit 1 on any error finding"),
    Verb("run", _extra("run"), "run a command as a recorded run, or skip it if its "
         "dependencies are unchanged", (
        arg("-n", "--name", required=True, help="the run's name (its op)"),
        arg("-d", "--dep", action="extend", nargs="+", metavar="DEP", help="files or "
            "directories it reads"),
        arg("-o", "--out", action="extend", nargs="+", metavar="OUT", help="files or "
            "directories it writes"),
        arg("--force", action="store_true", help="run even if an earlier run can be reused"),
        arg("command", nargs=argparse.REMAINDER, metavar="-- CMD", help="the command"))),
)


# -- parsing and running ------------------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """``--store`` and ``--json``, accepted before or after the verb."""
    parser = argparse.ArgumentParser(add_help=False)
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument("--store", metavar="PATH", default=default,
                        help="the store directory (default: $LINEAGE_HOME or ./.lineage)")
    parser.add_argument("--json", action="store_true",
                        default=argparse.SUPPRESS if suppress else False,
                        help="print one JSON document on stdout")
    return parser


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``lineage`` parser and its subparsers by verb name."""
    parser = argparse.ArgumentParser(
        prog="lineage", parents=[_common(suppress=False)],
        description="Exact, content-addressed provenance for ML.",
    )
    parser.add_argument("--version", action="version", version=f"lineage {__version__}")
    verbs = parser.add_subparsers(dest="verb", metavar="VERB")
    subparsers = {}
    for verb in VERBS:
        sub = verbs.add_parser(verb.name, help=verb.help, description=verb.help,
                               parents=[_common(suppress=True)])
        for argument in verb.arguments:
            sub.add_argument(*argument.flags, **argument.options)
        subparsers[verb.name] = sub
    return parser, subparsers


_BY_NAME: Final = {verb.name: verb for verb in VERBS}


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
    parser, subparsers = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.verb is None:
        parser.print_usage(sys.stderr)
        _say_error("give a verb: " + ", ".join(_BY_NAME))
        return EXIT_USAGE
    context = Context(Path(args.store) if args.store else default_path())
    try:
        result = _BY_NAME[args.verb].run(context, args)
        _print_result(result, args.json)
        return result.code
    except UsageError as exc:
        subparsers[args.verb].print_usage(sys.stderr)
        print(f"lineage {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        _say_error("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except (LineageError, OSError, CommandError) as exc:
        _say_error(str(exc) or type(exc).__name__)
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
