"""HTML reprs of records for notebooks (``_repr_html_``)."""

from __future__ import annotations

import html
from typing import Any

__all__ = ["artifact_html", "run_html"]


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(
        f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in pairs
    )


def artifact_html(artifact: Any) -> str:
    """An HTML table describing an artifact."""
    pairs = [
        ("kind", artifact.kind),
        ("name", artifact.name),
        ("version", artifact.version),
        ("digest", artifact.digest),
        ("format", artifact.format),
        ("size", f"{artifact.size:,} bytes"),
    ]
    pairs += [(f"meta.{k}", v) for k, v in sorted(artifact.meta.items())]
    pairs += [(f"summary.{k}", v) for k, v in sorted(artifact.summary.items())
              if k not in ("row_fingerprints",)][:20]
    return f"<table><caption>lineage artifact</caption>{_rows(pairs)}</table>"


def run_html(run: Any) -> str:
    """An HTML table describing a run."""
    pairs = [("op", run.op), ("status", run.status), ("digest", run.digest),
             ("duration", f"{run.duration:.3f} s")]
    pairs += [(f"param.{k}", v) for k, v in sorted(run.params.items())]
    pairs += [(f"metric.{k}", v) for k, v in sorted(run.metrics.items())]
    pairs += [(f"input.{k}", v.hex()[:12]) for k, v in sorted(run.inputs.items())]
    pairs += [(f"output.{k}", v.hex()[:12]) for k, v in sorted(run.outputs.items())]
    if run.error:
        pairs.append(("error", f"{run.error.get('type')}: {run.error.get('message')}"))
    return f"<table><caption>lineage run</caption>{_rows(pairs)}</table>"
