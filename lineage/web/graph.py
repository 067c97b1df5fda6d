"""A record's lineage as an inline SVG graph, every node a link to its page.

Drawn from the store's networkx view (``store.graph(rev, direction="upstream")``). Columns
are distances from the record (its sources on the left, the record on the right); within a
column, records are ordered by label. Labels are escaped; node links are built from digests.
"""

from __future__ import annotations

from typing import Any, Final

from lineage.web.layout import esc

__all__ = ["lineage_svg", "node_href"]

_WIDTH: Final = 170
_HEIGHT: Final = 32
_COLUMN: Final = 215
_ROW: Final = 44
_MAX_LABEL: Final = 24


def node_href(node: dict[str, Any], root: str) -> str:
    """The page of a graph node (its attributes), relative to the site's top."""
    folder = "runs" if node.get("kind") == "run" else "artifacts"
    return f"{root}{folder}/{node['digest']}.html"


def _label(node: dict[str, Any]) -> str:
    if node.get("kind") == "run":
        text = f"run {node.get('op')}"
    elif node.get("name") and node.get("version"):
        text = f"{node['name']}@{node['version']}"
    else:
        text = f"{node.get('kind')} {str(node.get('digest'))[:8]}"
    return text if len(text) <= _MAX_LABEL else text[:_MAX_LABEL - 1] + "…"


def lineage_svg(graph: Any, root_digest: str, *, root: str) -> tuple[str, int]:
    """The SVG of a lineage graph (a networkx ``MultiDiGraph`` whose edges run from source to
    product) drawn towards ``root_digest``, and how many nodes it draws."""
    nodes = {digest: dict(attributes) for digest, attributes in graph.nodes(data=True)}
    depth = {root_digest: 0}
    frontier = [root_digest]
    while frontier:  # the longest distance from the record: sources sit furthest left
        following = []
        for digest in frontier:
            for source, _target in graph.in_edges(digest):
                if depth.get(source, -1) < depth[digest] + 1 <= len(nodes):
                    depth[source] = depth[digest] + 1
                    following.append(source)
        frontier = following
    deepest = max(depth.values(), default=0)
    columns: dict[int, list[str]] = {}
    for digest in nodes:
        columns.setdefault(depth.get(digest, deepest), []).append(digest)
    position = {}
    for level, members in columns.items():
        members.sort(key=lambda d: (nodes[d].get("kind") == "run", _label(nodes[d]), d))
        for row, member in enumerate(members):
            position[member] = ((deepest - level) * _COLUMN + 10, row * _ROW + 10)
    width = (deepest + 1) * _COLUMN
    height = max((len(m) for m in columns.values()), default=1) * _ROW + 20
    edges = []
    for source, target in sorted(set(graph.edges())):
        x1, y1 = position[source][0] + _WIDTH, position[source][1] + _HEIGHT / 2
        x2, y2 = position[target][0], position[target][1] + _HEIGHT / 2
        middle = (x1 + x2) / 2
        edges.append(f'<path d="M{x1:.0f},{y1:.0f} C{middle:.0f},{y1:.0f} {middle:.0f},'
                     f'{y2:.0f} {x2:.0f},{y2:.0f}"/>')
    shapes = []
    for digest in sorted(nodes, key=lambda d: position[d]):
        node, (x, y) = nodes[digest], position[digest]
        kind = "run" if node.get("kind") == "run" else "artifact"
        css = f"node {kind}" + (" root" if digest == root_digest else "")
        title = esc(f"{node.get('kind')} {digest}")
        shapes.append(
            f'<a class="{css}" href="{esc(node_href(node, root))}" data-digest="{esc(digest)}">'
            f"<title>{title}</title>"
            f'<rect x="{x}" y="{y}" width="{_WIDTH}" height="{_HEIGHT}" rx="5"/>'
            f'<text x="{x + 8}" y="{y + 21}">{esc(_label(node))}</text></a>')
    svg = (f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(edges)
           + "".join(shapes) + "</svg>")
    return svg, len(nodes)
