"""A record's lineage as an inline SVG graph, every node a link to its page.

Columns are distances from the record (its sources on the left, the record on the right);
within a column, runs and artifacts are ordered by label. Edges are the data-flow edges
between the drawn records. Labels are escaped; node links are built from digests only.
"""

from __future__ import annotations

from typing import Final

from lineage.core.records import Artifact, Run
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn
from lineage.storage.schema import DATA_FLOW
from lineage.views.query import ancestors
from lineage.web.layout import esc

__all__ = ["lineage_svg", "node_href"]

_WIDTH: Final = 190
_HEIGHT: Final = 34
_COLUMN: Final = 250
_ROW: Final = 48
_MAX_LABEL: Final = 26


def node_href(record: Artifact | Run, root: str) -> str:
    """The page of a record, relative to the site's top."""
    folder = "runs" if isinstance(record, Run) else "artifacts"
    return f"{root}{folder}/{record.digest}.html"


def _label(record: Artifact | Run) -> str:
    if isinstance(record, Run):
        text = f"run {record.op}"
    elif record.name and record.version:
        text = f"{record.name}@{record.version}"
    else:
        text = f"{record.kind} {record.digest[:8]}"
    return text if len(text) <= _MAX_LABEL else text[:_MAX_LABEL - 1] + "…"


def lineage_svg(txn: ReadTxn, record: Artifact | Run, *, root: str) -> tuple[str, int]:
    """The SVG of ``record`` and its ancestors, and how many nodes it draws."""
    labels = VersionLabels(txn)
    nodes = {record.raw_digest: labels.label(record)}
    for found in ancestors(txn, record):
        nodes[found.raw_digest] = found
    depth = {record.raw_digest: 0}
    frontier = [record.raw_digest]
    while frontier:  # longest distance from the record, so sources sit furthest left
        following = []
        for digest in frontier:
            for edge, source in schema.upstream(txn, digest):
                if edge in DATA_FLOW and source in nodes and depth.get(source, -1) < \
                        depth[digest] + 1 and depth[digest] + 1 <= len(nodes):
                    depth[source] = depth[digest] + 1
                    following.append(source)
        frontier = following
    deepest = max(depth.values(), default=0)
    columns: dict[int, list[Artifact | Run]] = {}
    for digest, found in nodes.items():
        columns.setdefault(depth.get(digest, deepest), []).append(found)
    position = {}
    for level, members in columns.items():
        members.sort(key=lambda r: (isinstance(r, Run), _label(r), r.digest))
        for row, member in enumerate(members):
            position[member.raw_digest] = ((deepest - level) * _COLUMN + 10, row * _ROW + 10)
    width = (deepest + 1) * _COLUMN
    height = max(len(m) for m in columns.values()) * _ROW + 20
    edges = []
    for digest in nodes:
        for edge, source in schema.upstream(txn, digest):
            if edge in DATA_FLOW and source in position:
                x1, y1 = position[source][0] + _WIDTH, position[source][1] + _HEIGHT / 2
                x2, y2 = position[digest][0], position[digest][1] + _HEIGHT / 2
                middle = (x1 + x2) / 2
                edges.append(f'<path d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} '
                             f'{middle:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"/>')
    shapes = []
    for digest, found in sorted(nodes.items(), key=lambda kv: position[kv[0]]):
        x, y = position[digest]
        kind = "run" if isinstance(found, Run) else "artifact"
        css = f"node {kind}" + (" root" if digest == record.raw_digest else "")
        title = f"{found.kind} {found.digest}"
        shapes.append(
            f'<a class="{css}" href="{esc(node_href(found, root))}" data-digest="{found.digest}">'
            f"<title>{esc(title)}</title>"
            f'<rect x="{x}" y="{y}" width="{_WIDTH}" height="{_HEIGHT}" rx="5"/>'
            f'<text x="{x + 8}" y="{y + 21}">{esc(_label(found))}</text></a>')
    svg = (f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(edges)
           + "".join(shapes) + "</svg>")
    return svg, len(nodes)
