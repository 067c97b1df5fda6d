"""Verbs for sharing a store: ``remote add|list|remove|gc``, ``push``, ``pull``.

``--json`` documents::

    remote add, remote remove  {"name", "url", "options"}
    remote list                {"remotes": [{"name", "url", "options"}]}
    remote gc                  {"dry_run", "packs", "rewritten", "objects", "bytes_freed",
                                "uploads", "leases", "young"}
    push, pull                 {"direction", "remote", "objects", "bytes", "skipped",
                                "chunks", "blobs", "records", "refs", "events", "notes"}

Storage options given with ``--option KEY=VALUE`` are kept by ``remote add`` (credentials
refused) and used for that call only by ``push``, ``pull`` and ``remote gc``. A value that
reads as JSON (``true``, ``3``, ``{"region_name": "eu-west-1"}``) is taken as such.
"""

from __future__ import annotations

import argparse
import json
from typing import Any, Final

from lineage.cli import format as fmt
from lineage.cli.progress import progress_bar
from lineage.cli.verb import Context, Result, UsageError, Verb, arg, key_value

__all__ = ["VERBS"]


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for key, text in args.option or ():
        try:
            options[key] = json.loads(text)
        except ValueError:
            options[key] = text
    return options


def _remote(ctx: Context, args: argparse.Namespace) -> Result:
    action, rest = args.action, list(args.args)
    expected = {"add": 2, "remove": 1, "list": 0, "gc": (0, 1)}.get(action)
    if expected is None:
        raise UsageError(f"unknown action {action!r}: use add, list, remove or gc")
    if (isinstance(expected, int) and len(rest) != expected) or (
            isinstance(expected, tuple) and len(rest) not in expected):
        usage = {"add": "remote add NAME URL [--option KEY=VALUE]", "remove": "remote remove NAME",
                 "list": "remote list", "gc": "remote gc [NAME] [--yes] [--grace HOURS]"}
        raise UsageError(f"usage: lineage {usage[action]}")
    store = ctx.store
    if action == "add":
        remote = store.remote_add(rest[0], rest[1], replace=args.replace, **_options(args))
        return Result(remote.to_dict(), f"added remote {remote.name} at {remote.url}")
    if action == "remove":
        remote = store.remote_remove(rest[0])
        return Result(remote.to_dict(), f"removed remote {remote.name} (was {remote.url}); "
                                        "nothing on it was touched")
    if action == "list":
        remotes = [r.to_dict() for r in store.remotes()]
        rows = [(r["name"], r["url"], ", ".join(f"{k}={v}" for k, v in r["options"].items()))
                for r in remotes]
        return Result({"remotes": remotes}, fmt.table(rows, ("name", "url", "options"))
                      if rows else "no remotes; add one with `lineage remote add NAME URL`")
    grace = None if args.grace is None else args.grace * 3600.0
    report = store.remote_gc(rest[0] if rest else None, dry_run=not args.yes, grace=grace,
                             **_options(args))
    data = report.to_dict()
    text = str(report).replace(f"({report.bytes_freed} bytes)",
                               f"({fmt.format_bytes(report.bytes_freed)})")
    return Result(data, text)


def _transfer(ctx: Context, args: argparse.Namespace, direction: str) -> Result:
    store = ctx.store
    method = store.push if direction == "push" else store.pull
    with progress_bar(None, direction) as bar:
        report = method(args.remote, args.revisions or None, progress=bar.update,
                        **_options(args))
    data = report.to_dict()
    verb = "pushed to" if direction == "push" else "pulled from"
    if not report.objects and not report.refs and not report.events:
        text = f"{report.remote} is up to date ({report.skipped} objects already there)"
    else:
        text = (f"{verb} {report.remote}: {fmt.count(report.objects, 'object')} "
                f"({report.records} records, {report.blobs} blobs, {report.chunks} chunks), "
                f"{fmt.format_bytes(report.bytes)}; {report.skipped} already there; "
                f"{fmt.count(report.refs, 'ref move')}")
    return Result(data, "\n".join([text, *report.notes]))


def _push(ctx: Context, args: argparse.Namespace) -> Result:
    return _transfer(ctx, args, "push")


def _pull(ctx: Context, args: argparse.Namespace) -> Result:
    return _transfer(ctx, args, "pull")


_OPTION: Final = arg("--option", "-o", action="append", type=key_value, metavar="KEY=VALUE",
                     help="an fsspec storage option (endpoint_url, profile, ...); repeatable")
_TRANSFER: Final = (
    arg("revisions", nargs="*", metavar="REV",
        help="revisions to send or fetch with their lineage (default: everything)"),
    arg("--remote", "-r", metavar="NAME|URL",
        help="a configured remote or a URL (default: the only remote, else origin)"),
    _OPTION,
)

VERBS: Final[tuple[Verb, ...]] = (
    Verb("remote", _remote, "configure remotes: add NAME URL, list, remove NAME, gc [NAME]", (
        arg("action", metavar="ACTION", help="add, list, remove or gc"),
        arg("args", nargs="*", metavar="ARG", help="NAME URL (add), NAME (remove, gc)"),
        _OPTION,
        arg("--replace", action="store_true", help="add: replace a remote of that name"),
        arg("--yes", action="store_true", help="gc: really remove (default: a dry run)"),
        arg("--grace", type=float, metavar="HOURS",
            help="gc: leave what is younger than this alone (default 24)"),
    )),
    Verb("push", _push, "send a remote what it lacks (content, events, then refs)", _TRANSFER),
    Verb("pull", _pull, "fetch from a remote what this store lacks, re-hashed", _TRANSFER),
)
