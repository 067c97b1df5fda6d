"""Verbs that ask questions of the store: runs, compare, diff, dag, ancestors, descendants.
``--json`` documents are listed in :mod:`lineage.cli.app`.
"""

from __future__ import annotations

import argparse
from typing import Final

from lineage.cli import format as fmt
from lineage.cli import graph
from lineage.cli.verb import AS_OF, Context, Result, UsageError, Verb, arg, positive
from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.errors import RevisionNotFound

__all__ = ["VERBS"]


def _runs(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.view(args).runs(
        args.op, used=args.used, produced=args.produced, status=args.status,
        params=dict(args.param or ()), metrics=dict(args.metric or ()), since=args.since,
        until=args.until, label=args.label, limit=args.limit,
    )
    labels: dict[Digest, str] = {}

    def label_of(digest: Digest) -> str:
        if digest not in labels:
            try:
                data = ctx.view(args).describe(digest)
            except RevisionNotFound:  # a test set no longer stored: its digest
                data = {"name": None, "digest": digest.hex()}
            labels[digest] = fmt.label(data["name"], data.get("version")) if data["name"] \
                else fmt.short(data["digest"])
        return labels[digest]

    rows = [fmt.run_row(run, {m: label_of(d) for m, d in sorted(run.metric_datasets.items())})
            for run in found]
    columns, notes = fmt.runs_columns(rows, args.columns)
    return Result({"runs": rows}, fmt.runs_text(rows, columns, notes))


def _compare(ctx: Context, args: argparse.Namespace) -> Result:
    if (args.x or args.y) and not args.plot:
        raise UsageError("--x and --y choose the axes of --plot FILE")
    comparison = ctx.store.compare(*args.runs)
    data = {**comparison.to_dict(), "plot": None}
    text = comparison.to_text()
    if args.plot:
        data["plot"] = str(comparison.plot(args.plot, x=args.x, y=args.y))
        text += f"\n\nplot written to {data['plot']}"
    return Result(data, text)


def _column_list(text: str) -> list[str]:
    """``--columns C,sensitivity,op``: column names, comma-separated."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected column names separated by commas")
    return names


def _diff(ctx: Context, args: argparse.Namespace) -> Result:
    if args.json and args.markdown:
        raise UsageError("give --json or --markdown, not both")
    difference = ctx.store.diff(args.a, args.b)
    text = difference.to_markdown() if args.markdown else difference.to_text(color=args.color)
    return Result(difference.to_dict(), text.rstrip("\n"))


def _dag(ctx: Context, args: argparse.Namespace) -> Result:
    if args.json and args.dot:
        raise UsageError("give --json or --dot, not both")
    if args.revision is None:
        if args.depth is not None:
            raise UsageError("--depth needs a REV")
        data = {"pipelines": [p.to_dict() for p in ctx.store.pipelines()]}
        return Result(data, graph.pipelines_dot(data) if args.dot
                      else graph.pipelines_text(data))
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
        arg("--limit", type=positive, metavar="N", help="at most N runs"),
        arg("--columns", type=_column_list, metavar="NAMES",
            help="columns to show, comma-separated: run, started, op, label, status, "
                 "duration, test_set, a param or metric name (or params.NAME, "
                 "metrics.NAME); default: the params that differ, then the metrics"), AS_OF)),
    Verb("compare", _compare, "runs side by side: params that differ first, metric deltas "
         "with their test sets, and a plot of a metric against a param", (
        arg("runs", nargs="+", metavar="RUN",
            help="two runs or more (an artifact stands for the run that made it); the "
                 "first is the baseline"),
        arg("--plot", metavar="FILE", help="draw a metric against a param (.png, .svg, "
            ".pdf; needs matplotlib: pip install 'lineage[plots]')"),
        arg("--x", metavar="PARAM", help="the param on the x axis (default: the first "
            "numeric param that differs)"),
        arg("--y", metavar="METRIC", help="the metric on the y axis (default: the first "
            "metric every run has, clinical ones first)"))),
    Verb("diff", _diff, "what changed between two revisions, and why (exit 0 either way)", (
        arg("a", metavar="A"), arg("b", metavar="B"),
        arg("--markdown", action="store_true", help="print a Markdown report"),
        arg("--color", action=argparse.BooleanOptionalAction, default=None,
            help="colour the text (default: only on a terminal, unless NO_COLOR is set)"))),
    Verb("dag", _dag, "every pipeline in the store (sources → steps → outputs), or the "
         "lineage upstream of REV as a tree", (
        arg("revision", metavar="REV", nargs="?",
            help="a revision (default: every pipeline, steps folded by operation)"), _DEPTH,
        arg("--dot", action="store_true", help="print Graphviz DOT instead"))),
    Verb("ancestors", _ancestors, "records REV came from, nearest first", (
        arg("revision", metavar="REV"), _DEPTH, _KIND)),
    Verb("descendants", _descendants, "records made from REV, nearest first", (
        arg("revision", metavar="REV"), _DEPTH, _KIND)),
)
