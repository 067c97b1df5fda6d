"""Verbs for review and audit: ``promote`` (through the stage's gate), ``policy``, ``report``
(the audit report), ``export`` (PROV-JSON, OpenLineage), ``trace`` and ``impact``, ``events``
(the tamper-evident log).

``--json`` documents::

    promote  {"name", "stage", "digest", "version", "cleared", "forced", "moved",
              "checks": [{"name", "passed", "message"}]}
    policy   {"policies": [{"stage", "checks", "metrics": {name: [op, value]},
              "min_subgroup", "after", "stored"}]}
    report   with -o FILE: {"path", "format", "bytes", "sha256"} (else the document itself)
    export   with -o FILE: {"path", "format", "bytes", "sha256", "validated"} (else the export)
    trace    :meth:`lineage.Trace.to_dict` {"prediction", "row", "model", "training_run",
              "datasets", "in_training", "finding"}
    impact   :meth:`lineage.Impact.to_dict` {"source", "runs", "models", "stages",
              "predictions", "datasets", "other"}
    events   {"head", "events": [{"seq", "time", "user", "action", "prev", "hash", ...}]}

A promotion a policy blocks exits 1 with one line naming every failed check.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Final

from lineage.cli import format as fmt
from lineage.cli.files import write_atomically
from lineage.cli.graph import metric_filter
from lineage.cli.verb import AS_OF, REASON, CommandError, Context, Result, UsageError, Verb, arg

if TYPE_CHECKING:
    from lineage.store import Store

__all__ = ["VERBS"]


def _promote(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    if args.clear:
        if args.force:
            raise UsageError("--clear and --force do not go together")
        store.clear_stage(args.revision, args.stage, reason=args.reason)
        data = {"name": args.revision, "stage": args.stage, "digest": None, "version": None,
                "cleared": True, "forced": False, "checks": []}
        return Result(data, f"cleared {args.revision}@{args.stage}")
    checks = store.check_promotion(args.revision, args.stage)
    record = store.resolve(args.revision)
    held_before = store.stages(record.name).get(args.stage) if record.name else None
    artifact = store.promote(args.revision, args.stage, reason=args.reason, force=args.force)
    version = store.describe(artifact)["version"]
    moved = held_before != artifact
    forced = moved and args.force and any(not c.passed for c in checks)
    data = {"name": artifact.name, "stage": args.stage, "digest": artifact.digest,
            "version": version, "cleared": False, "forced": forced, "moved": moved,
            "checks": [c.to_dict() for c in checks]}
    label = fmt.label(artifact.name, version)
    if not moved:
        lines = [f"{label} already holds {artifact.name}@{args.stage}; nothing moved"]
    else:
        lines = [f"promoted {label} ({fmt.short(artifact.digest)}) to {artifact.name}@"
                 f"{args.stage}" + (" (FORCED past failed checks)" if forced else "")]
    lines += [f"  {check}" for check in checks]
    if not checks:
        lines.append(f"  note: no policy gates {args.stage}" if artifact.kind == "model" else
                     f"  note: policies gate models only; this {artifact.kind} was not checked")
    return Result(data, fmt.oneline_block("\n".join(lines)))


def _policy(ctx: Context, args: argparse.Namespace) -> Result:
    store = ctx.store
    changes = (args.require is not None or args.metric or args.drop_metric
               or args.min_subgroup is not None or args.after)
    if args.reset and changes:
        raise UsageError("--reset does not go with other settings")
    if (args.reset or changes) and not args.stage:
        raise UsageError("give the STAGE whose policy to set")
    notes = []
    if args.reset:
        store.reset_policy(args.stage, reason=args.reason)
    elif changes:
        current = store.policy(args.stage)
        unknown = sorted(set(args.drop_metric or ()) - set(current.metrics))
        if unknown:
            raise UsageError(f"the policy of {args.stage} has no metric {', '.join(unknown)} "
                             "to drop")
        metrics = {name: spec for name, spec in current.metrics.items()
                   if name not in (args.drop_metric or ())}
        metrics.update(dict(args.metric or ()))
        minimum = current.min_subgroup if args.min_subgroup is None else args.min_subgroup
        store.set_policy(
            args.stage, metrics=metrics, min_subgroup=minimum or None,
            checks=None if args.require is None else [c for c in args.require.split(",") if c],
            after=current.after if args.after is None else args.after, reason=args.reason)
        measured = _measured_metrics(store)
        notes = [f"note: no evaluation in this store measures {name!r} yet (is it spelled "
                 "as log_evaluation names it?)" for name, _spec in args.metric or ()
                 if name not in measured]
    shown = [store.policy(args.stage)] if args.stage else store.policies()
    text = "\n".join(f"{p.stage}{'' if p.stored else ' (built-in)'}:\n" +
                     "\n".join(f"  {line}" for line in p.describe()) for p in shown)
    return Result({"policies": [p.to_dict() for p in shown]},
                  fmt.oneline_block("\n".join([text or "no stage has a policy", *notes])))


def _measured_metrics(store: Store) -> set[str]:
    """Every metric name some evaluation in ``store`` recorded."""
    return {name for artifact in store.artifacts() if artifact.kind == "evaluation"
            for name in artifact.summary.get("metrics") or {}}


def _at_least(text: str) -> tuple[str, tuple[str, float]]:
    name, (op, value) = metric_filter(text)
    return name, (op, value)


def _report(ctx: Context, args: argparse.Namespace) -> Result:
    if args.html and args.markdown:
        raise UsageError("give --html or --markdown, not both")
    fmt_name = "markdown" if args.markdown else "html"
    document = ctx.view(args).report(args.revision, format=fmt_name)
    if args.output:
        path = write_atomically(Path(args.output), document)
        data = {"path": str(path), "format": fmt_name, "bytes": len(document.encode()),
                "sha256": _sha256(document)}
        return Result(data, f"wrote the {fmt_name} report on {args.revision} to {path}")
    if args.json:
        raise UsageError("--json needs -o FILE (the report itself is the document)")
    return Result({}, document.rstrip("\n"))


def _export(ctx: Context, args: argparse.Namespace) -> Result:
    from lineage.audit.exports import validate_export

    if (args.revision is None) == (not args.all):
        raise UsageError("give a REV, or --all for the whole store")
    text = ctx.view(args).export(args.revision, format=args.format, namespace=args.namespace)
    problems = validate_export(text, fmt=args.format) if args.validate else []
    if problems:
        shown = "; ".join(problems[:3]) + (f" (and {len(problems) - 3} more)"
                                           if len(problems) > 3 else "")
        raise CommandError(f"the {args.format} export does not validate: {shown}")
    if args.output:
        path = write_atomically(Path(args.output), text)
        data = {"path": str(path), "format": args.format, "bytes": len(text.encode()),
                "sha256": _sha256(text),
                "validated": args.validate}
        return Result(data, f"wrote the {args.format} export to {path}"
                      + (" (valid)" if args.validate else ""))
    if args.json:
        raise UsageError("--json needs -o FILE (the export itself is JSON)")
    return Result({}, text.rstrip("\n"))


def _trace(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.view(args).trace(args.revision, row=args.row)
    return Result(found.to_dict(), fmt.oneline_block(str(found)))


def _impact(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.view(args).impact(args.revision)
    return Result(found.to_dict(), fmt.oneline_block(str(found)))


def _events(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.store.events(since=args.since)
    rows = [event.to_dict() for event in found]
    head = found[-1].hash if found else None
    text = "\n".join(str(event) for event in found) or "no events"
    if head:
        text += f"\nhead {head}"
    return Result({"head": head, "events": rows}, fmt.oneline_block(text))


VERBS: Final[tuple[Verb, ...]] = (
    Verb("promote", _promote, "move name@STAGE to a revision through the stage's policy "
         "(exit 1, naming each failed check, if it blocks)", (
        arg("revision", metavar="REV", help="the model (with --clear: its NAME)"),
        arg("stage", metavar="STAGE"),
        arg("--force", action="store_true", help="promote past failed checks (needs --reason; "
            "recorded in the history and reports)"),
        arg("--clear", action="store_true", help="remove NAME@STAGE instead"), REASON)),
    Verb("policy", _policy, "show or set the promotion policy of a stage", (
        arg("stage", metavar="STAGE", nargs="?", help="one stage (default: every policy)"),
        arg("--require", metavar="CHECKS", help="comma-separated checks: evaluated, "
            "independent, lint (empty: none)"),
        arg("--metric", action="append", type=_at_least, metavar="NAME>=N",
            help="add or change a metric minimum, e.g. 'sensitivity>=0.9'; repeatable"),
        arg("--drop-metric", action="append", metavar="NAME", help="remove a metric minimum; "
            "repeatable (other settings are kept unless given)"),
        arg("--min-subgroup", type=int, metavar="N", help="the fewest cases an evaluated "
            "subgroup may have (0: no minimum)"),
        arg("--after", action="append", metavar="STAGE", help="a stage the model must have "
            "held before; repeatable (replaces the list)"),
        arg("--reset", action="store_true", help="back to the built-in default"), REASON)),
    Verb("report", _report, "the audit report on a model (HTML by default)", (
        arg("revision", metavar="REV"),
        arg("--html", action="store_true", help="one self-contained HTML file (default)"),
        arg("--markdown", action="store_true", help="Markdown instead"),
        arg("-o", "--output", metavar="FILE", help="write it to FILE (atomically)"),
        AS_OF)),
    Verb("export", _export, "the lineage of REV (or --all) as PROV-JSON or OpenLineage", (
        arg("revision", metavar="REV", nargs="?"),
        arg("--all", action="store_true", help="the whole store"),
        arg("--format", choices=("prov-json", "openlineage"), default="prov-json"),
        arg("--namespace", help="OpenLineage job namespace (default: lineage)"),
        arg("--validate", action="store_true", help="check the export against its schema "
            "(exit 1 if it does not validate)"),
        arg("-o", "--output", metavar="FILE", help="write it to FILE (atomically)"),
        AS_OF)),
    Verb("trace", _trace, "from a prediction set (and one row) back to the model, its stage "
         "then, its training run and data", (
        arg("revision", metavar="REV", help="a prediction set"),
        arg("--row", metavar="ID", help="one row of it: also says whether its input was in "
            "the training data"), AS_OF)),
    Verb("impact", _impact, "what a dataset reached: runs, models and their stages, "
         "prediction sets", (arg("revision", metavar="REV"), AS_OF)),
    Verb("events", _events, "the tamper-evident event log, oldest first", (
        arg("--since", metavar="ISO", help="only events at or after this time"),)),
)


def _sha256(text: str) -> str:
    import hashlib  # here: OpenSSL's bindings cost every command a few milliseconds

    return hashlib.sha256(text.encode()).hexdigest()
