"""Verbs for review and audit: ``events`` (the tamper-evident log).

``--json`` documents::

    events  {"head", "events": [{"seq", "time", "user", "action", "prev", "hash", ...}]}
"""

from __future__ import annotations

import argparse
from typing import Final

from lineage.cli import format as fmt
from lineage.cli.verb import Context, Result, Verb, arg

__all__ = ["VERBS"]


def _events(ctx: Context, args: argparse.Namespace) -> Result:
    found = ctx.store.events(since=args.since)
    rows = [event.to_dict() for event in found]
    head = found[-1].hash if found else None
    text = "\n".join(str(event) for event in found) or "no events"
    if head:
        text += f"\nhead {head}"
    return Result({"head": head, "events": rows}, fmt.oneline_block(text))


VERBS: Final[tuple[Verb, ...]] = (
    Verb("events", _events, "the tamper-evident event log, oldest first", (
        arg("--since", metavar="ISO", help="only events at or after this time"),)),
)
