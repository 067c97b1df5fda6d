"""Verbs that ask questions of the store: runs, diff, dag, ancestors, descendants.
``--json`` documents are listed in :mod:`lineage.cli.app`.
"""

from __future__ import annotations

import argparse
from typing import Final

from lineage.cli import format as fmt
from lineage.cli import graph
from lineage.cli.verb import AS_OF, Context, Result, UsageError, Verb, arg, positive
from lineage.core.records import Artifact, Run

__all__ = ["VERBS"]


def _runs(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.view(args).runs(
        args.op, used=args.used, produced=args.produced, status=args.status,
        params=dict(args.param or ()), metrics=dict(args.metric or ()), since=args.since,
        until=args.until, label=args.label, limit=args.limit,
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
    data = graph.dag_data(ctx.store.graph(root, depth=args.depth, direction="upstream"),
                          root.digest)
    return Result(data, graph.dot_text(data) if args.dot else graph.dag_text(data))


def _ancestors(ctx: Context, args: argparse.Namespace) -> Result:
    root = ctx.store.resolve(args.revision)
    found = ctx.store.ancestors(root, depth=args.depth, kind=args.kind)
    return _records(root, found, f"nothing recorded upstream of {args.revision}")


def _descendants(ctx: Context, args: argparse.Namespace) -> Result:
    root = ctx.store.resolve(args.revision)
    found = ctx.store.descendants(root, depth=args.depth, kind=args.kind)
    return _records(root, found, f"nothing recorded downstream of {args.revision}")


def _records(root: Artifact | Run, found: list[Artifact | Run], empty: str) -> Result:
    rows = [graph.record_row(record) for record in found]
    return Result({"revision": graph.record_row(root), "records": rows},
                  graph.records_text(rows, empty))


_DEPTH: Final = arg("--depth", type=positive, metavar="N", help="follow at most N edges")
_KIND: Final = arg("--kind", action="append", metavar="K",
                   help="only records of this kind (run, dataset, model ...); repeatable")

VERBS: Final[tuple[Verb, ...]] = (
    Verb("runs", _runs, "list runs, newest first", (
        arg("--op", help="only runs of this operation"),
        arg("--status", choices=("ok", "failed")),
        arg("--label", help="only runs with this label"),
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
        arg("--limit", type=positive, metavar="N", help="at most N runs"), AS_OF)),
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
)
