"""Verbs that put things in the store and get them out: init, add, show, log, tag, promote,
checkout, verify, gc. ``--json`` documents are listed in :mod:`lineage.cli.app`.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Final

from lineage.cli import format as fmt
from lineage.cli.progress import progress_bar, total_size
from lineage.cli.verb import (
    AS_OF,
    EXIT_ERROR,
    REASON,
    CommandError,
    Context,
    Result,
    UsageError,
    Verb,
    arg,
    key_value,
)
from lineage.core.records import Artifact
from lineage.errors import LineageError, PathError, RecordTypeError, RevisionNotFound

__all__ = ["VERBS"]


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
    with progress_bar(total_size(paths), "add") as bar:
        for path in paths:
            try:
                artifact = store.add(
                    path, args.name, version=args.version, kind=args.kind,
                    meta=dict(args.meta or ()), derived_from=tuple(args.derived_from or ()),
                    target=args.target, progress=bar.update, reason=args.reason,
                    key=args.key)
            except (LineageError, OSError) as exc:
                if not added:
                    raise
                done = ", ".join(fmt.label(a["name"], a["version"]) for a in added)
                raise CommandError(f"{exc} (already added: {done})") from exc
            added.append({
                "path": path, "digest": artifact.digest, "kind": artifact.kind,
                "name": artifact.name, "version": artifact.version, "size": artifact.size,
            })
    return Result({"added": added}, fmt.added_text(added))


def _show(ctx: Context, args: argparse.Namespace) -> Result:
    data = ctx.view(args).describe(args.revision)
    text = fmt.artifact_text(data) if data["type"] == "artifact" else fmt.run_text(data)
    return Result(data, text)


def _log(ctx: Context, args: argparse.Namespace) -> Result:
    entries = [e.to_dict() for e in reversed(ctx.view(args).log(args.name))]
    return Result({"name": args.name, "entries": entries}, fmt.log_text(entries))


def _artifact(ctx: Context, revision: str) -> Artifact:
    record = ctx.store.resolve(revision)
    if not isinstance(record, Artifact):
        raise RecordTypeError(f"{revision!r} names a run, not an artifact")
    return record


def _tag(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    if not args.delete:
        if args.revision is None:
            raise UsageError("give REV and TAG (or --delete TAG)")
        artifact = store.tag(args.revision, args.tag, reason=args.reason)
        version = store.describe(artifact)["version"]
        text = (f"tagged {fmt.label(artifact.name, version)} "
                f"({fmt.short(artifact.digest)}) as {args.tag}")
        return Result(_tag_data(args.tag, artifact.digest, artifact.name, version, False), text)
    try:
        before: Artifact | None = _artifact(ctx, args.tag)
    except RevisionNotFound:
        before = None
    if args.revision is not None and (
        before is None or store.resolve(args.revision).raw_digest != before.raw_digest
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


def _checkout(ctx: Context, args: argparse.Namespace) -> Result:
    artifact = _artifact(ctx, args.revision)
    path = ctx.store.checkout(artifact, args.target, force=args.force)
    version = ctx.store.describe(artifact)["version"]
    data = {"digest": artifact.digest, "name": artifact.name, "version": version,
            "path": str(path)}
    return Result(data, f"checked out {fmt.label(artifact.name, version)} to {path}")


def _verify(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    with progress_bar(None, "verify") as bar:
        report = store.verify(checkpoint=args.checkpoint, progress=bar.update).to_dict()
    if report["ok"]:
        return Result(report, fmt.verify_text(report))
    error = f"verify found {fmt.count(len(report['problems']), 'problem')} in {store.path}"
    return Result(report, fmt.verify_text(report), EXIT_ERROR, error)


def _gc(ctx: Context, args: argparse.Namespace) -> Result:
    report = ctx.store.gc(dry_run=not args.yes).to_dict()
    return Result(report, fmt.gc_text(report))


VERBS: Final[tuple[Verb, ...]] = (
    Verb("init", _init, "create a store here (or at --store) and print where"),
    Verb("add", _add, "add files or directories as artifacts", (
        arg("paths", nargs="+", metavar="PATH", help="files or directories"),
        arg("--name", help="name (default: the file name); one PATH only"),
        arg("--version", help="version (default: the next vN); one PATH only"),
        arg("--kind", help="artifact kind, e.g. dataset (default: file or directory)"),
        arg("--target", metavar="COL", help="a dataset's label column"),
        arg("--key", metavar="COL", help="a table's row-identifying column (unique): a diff "
            "reports an edited row as modified, with old and new values"),
        arg("--meta", action="append", type=key_value, metavar="KEY=VALUE",
            help="a note (origin, selection, biases ...); repeatable"),
        arg("--derived-from", action="append", metavar="REV",
            help="an artifact this one was derived from; repeatable"),
        REASON)),
    Verb("show", _show, "show an artifact or run", (arg("revision", metavar="REV"), AS_OF)),
    Verb("log", _log, "history of a name's versions, stages and tags, newest first",
         (arg("name", metavar="NAME"), AS_OF)),
    Verb("tag", _tag, "point a tag at a revision, or delete it", (
        arg("revision", metavar="REV", nargs="?"), arg("tag", metavar="TAG"),
        arg("--delete", action="store_true", help="remove TAG (only if it names REV, if given)"),
        REASON)),
    Verb("checkout", _checkout, "write a stored file or directory to TARGET", (
        arg("revision", metavar="REV"), arg("target", metavar="TARGET"),
        arg("--force", action="store_true", help="overwrite TARGET if it exists"))),
    Verb("verify", _verify, "re-hash everything and check the event log; exit 1 if anything "
         "is wrong", (arg("--checkpoint", metavar="HEAD", help="an earlier head hash of the "
                          "event log: fail if the log no longer contains it"),)),
    Verb("gc", _gc, "remove what no ref and no run reaches (dry run unless --yes)", (
        arg("--yes", action="store_true", help="really remove"),)),
)
