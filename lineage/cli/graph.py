"""What the graph verbs of the command line print: ``dag`` (of one revision, or of every
pipeline), ``ancestors``, ``descendants``.

Also the argument types of ``lineage runs``' filters (``--param``, ``--metric``,
``--since``, ``--until``). Like :mod:`lineage.cli.format`, every function here builds a
JSON-safe dict or renders one as text; :mod:`lineage.cli.app` calls the library and prints.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

from lineage.cli.format import label, short, table
from lineage.core.plain import is_number
from lineage.core.records import Artifact, Run

if TYPE_CHECKING:
    import networkx

__all__ = [
    "dag_data",
    "dag_text",
    "dot_text",
    "metric_filter",
    "param_filter",
    "pipelines_dot",
    "pipelines_text",
    "record_row",
    "records_text",
    "since_time",
    "until_time",
]

_OPERATORS: Final = (">=", "<=", "==", "!=", ">", "<", "=")  # longest first
_DATA_FLOW: Final = ("generated", "used", "derived_from")
_MAX_ROLES: Final = 3  # test-set roles listed before they are counted instead


# -- runs filters (argparse types) ---------------------------------------------------------


def _split_condition(text: str, what: str) -> tuple[str, str, str]:
    """``"auc>=0.9"`` -> ``("auc", ">=", "0.9")``: the first operator after the name."""
    for at, char in enumerate(text):
        if char in "<>=!":
            op = next((o for o in _OPERATORS if text.startswith(o, at)), None)
            if op is None or at == 0:
                break
            return text[:at].strip(), ("==" if op == "=" else op), text[at + len(op):].strip()
    raise argparse.ArgumentTypeError(
        f"expected {what} as NAME=VALUE or NAME with one of > >= < <= == != and a value, "
        f"got {text!r}"
    )


def _param_value(text: str) -> Any:
    """A JSON literal (``0.5``, ``true``, ``"a b"``, ``[1, 2]``) when it parses, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def param_filter(text: str) -> tuple[str, tuple[str, Any]]:
    """``--param``: ``C=0.5``, ``solver=lbfgs``, ``C<1`` -> ``(name, (operator, value))``.

    The value is read as a JSON literal when it is one (so ``C=1`` matches ``1`` and
    ``1.0``), else as text. ``<``, ``>`` and friends need a number.
    """
    name, op, raw = _split_condition(text, "a param")
    value = _param_value(raw)
    if op not in ("==", "!=") and not is_number(value):
        raise argparse.ArgumentTypeError(f"{name}{op} needs a number, got {raw!r}")
    return name, (op, value)


def metric_filter(text: str) -> tuple[str, tuple[str, float]]:
    """``--metric``: ``'sensitivity>0.9'`` -> ``("sensitivity", (">", 0.9))``."""
    name, op, raw = _split_condition(text, "a metric")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise argparse.ArgumentTypeError(f"{name}{op} needs a number, got {raw!r}")
    return name, (op, value)


def _time(text: str, end_of_day: bool) -> _dt.datetime:
    try:
        when = _dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 date or time such as 2024-05-01 or 2024-05-01T14:30, "
            f"got {text!r}"
        ) from None
    if end_of_day and len(text.strip()) == 10:  # a date alone: the whole day
        when += _dt.timedelta(days=1, microseconds=-1)
    return when if when.tzinfo else when.astimezone()  # naive: local time


def since_time(text: str) -> _dt.datetime:
    """``--since``: an ISO date or time (local unless it says otherwise), inclusive."""
    return _time(text, end_of_day=False)


def until_time(text: str) -> _dt.datetime:
    """``--until``: as :func:`since_time`; a date alone includes that whole day."""
    return _time(text, end_of_day=True)


# -- ancestors / descendants ---------------------------------------------------------------


def record_row(record: Artifact | Run) -> dict[str, Any]:
    """A record in a list: ``{digest, kind, name, version, op, status}`` (None where n/a)."""
    if isinstance(record, Run):
        return {"digest": record.digest, "kind": "run", "name": record.op, "version": None,
                "op": record.op, "status": record.status}
    return {"digest": record.digest, "kind": record.kind, "name": record.name,
            "version": record.version, "op": None, "status": None}


def _title(node: dict[str, Any]) -> str:
    if node["kind"] == "run":
        return f"{node['op']}  {node['status']}"
    return label(node["name"], node["version"])


def records_text(records: list[dict[str, Any]], empty: str) -> str:
    """One line per record: short digest, kind, name@version (or op and status)."""
    if not records:
        return empty
    return table(((short(r["digest"]), r["kind"], _title(r)) for r in records),
                 ("DIGEST", "KIND", "NAME"))


# -- dag -----------------------------------------------------------------------------------


def dag_data(graph: networkx.MultiDiGraph, root: str) -> dict[str, Any]:
    """``{"root", "nodes": [record_row + ...], "edges": [{source, target, type, roles}]}``.

    ``graph`` is :meth:`Store.graph` of ``root`` (a 32-hex digest); nodes keep its order,
    edges are sorted by source, target and type.
    """
    nodes = []
    for digest, attrs in graph.nodes(data=True):
        is_run = attrs.get("kind") == "run"
        nodes.append({
            "digest": digest, "kind": attrs.get("kind"), "name": attrs.get("name"),
            "version": None if is_run else attrs.get("version"),
            "op": attrs.get("op") if is_run else None,
            "status": attrs.get("status") if is_run else None,
        })
    edges = sorted(
        ({"source": source, "target": target, "type": attrs.get("type", key),
          "roles": list(attrs.get("roles") or ())}
         for source, target, key, attrs in graph.edges(keys=True, data=True)),
        key=lambda e: (e["source"], e["target"], e["type"]),
    )
    return {"root": root, "nodes": nodes, "edges": edges}


def _roles_text(roles: Iterable[str]) -> str:
    roles = list(roles)
    tests = [r.removeprefix("test set of ") for r in roles if r.startswith("test set of ")]
    plain = [r for r in roles if not r.startswith("test set of ")]
    if len(tests) > _MAX_ROLES:
        plain.append(f"test set of {len(tests)} metrics ({', '.join(tests[:_MAX_ROLES])}, …)")
    elif tests:
        plain.append("test set of " + ", ".join(tests))
    return "; ".join(plain)


def _node_line(node: dict[str, Any]) -> str:
    if node["kind"] == "run":
        return f"run {node['op']}  [{node['status']}]  {short(node['digest'])}"
    return f"{label(node['name'], node['version'])}  [{node['kind']}]  {short(node['digest'])}"


def _edge_line(node: dict[str, Any], edge: str, roles: list[str]) -> str:
    """A node below another: ``role: node`` for inputs, ``node → output`` for runs."""
    role = _roles_text(roles)
    if edge == "generated":
        return _node_line(node) + (f"  → {role}" if role else "")
    if edge == "derived_from":
        return f"derived from: {_node_line(node)}"
    return f"{role}: {_node_line(node)}" if role else _node_line(node)


def dag_text(data: dict[str, Any]) -> str:
    """The lineage upstream of ``data["root"]`` as an indented tree, root first.

    Below an artifact: the run that generated it (``→`` the output name) and the artifacts
    it was derived from; below a run: what it used, by role (input name, code,
    environment, test set). A record reached again is named and marked ``(shown above)``.
    """
    nodes = {n["digest"]: n for n in data["nodes"]}
    sources: dict[str, list[tuple[str, str]]] = {}
    for edge in data["edges"]:
        if edge["type"] in _DATA_FLOW:
            line = _edge_line(nodes[edge["source"]], edge["type"], edge["roles"])
            sources.setdefault(edge["target"], []).append((line, edge["source"]))
    lines = [_node_line(nodes[data["root"]])]
    shown = {data["root"]}

    def below(digest: str, indent: str) -> None:
        children = sorted(sources.get(digest, ()))
        for i, (text, child) in enumerate(children):
            last = i == len(children) - 1
            seen = child in shown
            lines.append(f"{indent}{'└── ' if last else '├── '}{text}"
                         f"{'  (shown above)' if seen else ''}")
            if not seen:
                shown.add(child)
                below(child, indent + ("    " if last else "│   "))

    below(data["root"], "")
    return "\n".join(lines)


def _dot_label(*parts: str) -> str:
    """A quoted DOT string of ``parts`` on separate lines (user text escaped, one line each)."""
    escaped = (" ".join(p.replace("\\", "\\\\").replace('"', '\\"').split()) for p in parts)
    return '"' + "\\n".join(escaped) + '"'


def dot_text(data: dict[str, Any]) -> str:
    """Graphviz DOT of :func:`dag_data`: runs as ellipses (failed in red), artifacts as boxes.

    Edges point the way data flows (input -> run -> output); ``derived_from`` edges are
    dotted and ``child_of`` edges (a step run started inside another run) dashed.
    """
    out = ["digraph lineage {", "  rankdir=LR;", "  node [fontname=Helvetica];",
           "  edge [fontname=Helvetica, fontsize=10];"]
    for node in data["nodes"]:
        if node["kind"] == "run":
            text = _dot_label(node["op"] or "", f"run {node['status']}", short(node["digest"]))
            style = "shape=ellipse" + (", color=red, fontcolor=red"
                                       if node["status"] == "failed" else "")
        else:
            text = _dot_label(label(node["name"], node["version"]), node["kind"] or "",
                              short(node["digest"]))
            style = "shape=box"
        bold = ", penwidth=2" if node["digest"] == data["root"] else ""
        out.append(f'  "{node["digest"]}" [label={text}, {style}{bold}];')
    for edge in data["edges"]:
        attrs = [f"label={_dot_label(_roles_text(edge['roles']))}"] if edge["roles"] else []
        if edge["type"] == "child_of":
            attrs.append("style=dashed")
        elif edge["type"] == "derived_from":
            attrs.append("style=dotted")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        out.append(f'  "{edge["source"]}" -> "{edge["target"]}"{suffix};')
    out.append("}")
    return "\n".join(out)


# -- dag of every pipeline -------------------------------------------------------------------


def _node_name(node: dict[str, Any]) -> str:
    return str(node["name"])


def _use(node: dict[str, Any], roles: list[str]) -> str:
    """An input of a step: its name, and the roles it was used under when they differ."""
    other = [r for r in roles if r != node["name"]]
    return _node_name(node) + (f" ({', '.join(other)})" if other else "")


def pipelines_text(data: dict[str, Any]) -> str:
    """``lineage dag`` without a revision: each pipeline as sources, steps, outputs.

    A step line reads ``op  N runs  inputs → outputs`` (an input's role in brackets when it
    is not its name) and says which step it runs inside; an artifact line ``name  kind
    versions``, an output also what it was derived from (``⇐``).
    """
    found = data["pipelines"]
    if not found:
        return "no pipelines: no run used or made an artifact in this store yet"
    out: list[str] = []
    for number, pipeline in enumerate(found, 1):
        nodes = {n["id"]: n for n in pipeline["nodes"]}
        into: dict[str, list[dict[str, Any]]] = {}
        for edge in pipeline["edges"]:
            into.setdefault(edge["target"], []).append(edge)
        sources = ", ".join(_node_name(nodes[i]) for i in pipeline["sources"]) or "-"
        outputs = ", ".join(_node_name(nodes[i]) for i in pipeline["outputs"]) or "-"
        rows: list[tuple[str, ...]] = []
        for section, ids in (("sources", pipeline["sources"]), ("steps", pipeline["steps"]),
                             ("outputs", pipeline["outputs"])):
            for i, node_id in enumerate(ids):
                node = nodes[node_id]
                title = section if i == 0 else ""
                if node["kind"] == "step":
                    uses = ", ".join(_use(nodes[e["source"]], e["roles"])
                                     for e in into.get(node_id, []) if e["type"] == "used")
                    made = ", ".join(_node_name(nodes[e["target"]]) for e in pipeline["edges"]
                                     if e["source"] == node_id and e["type"] == "generated")
                    flow = f"{uses or '(nothing recorded)'} → {made or '(nothing recorded)'}"
                    inside = f"inside {node['inside']}" if node["inside"] else ""
                    runs = f"{node['runs']} run{'s' if node['runs'] != 1 else ''}"
                    rows.append((title, node["name"], runs, flow, inside))
                else:
                    derived = [_node_name(nodes[e["source"]]) for e in into.get(node_id, [])
                               if e["type"] == "derived_from"]
                    versions = ", ".join(node["versions"]) or "unversioned"
                    rows.append((title, node["name"], node["kind"], versions,
                                 f"⇐ {', '.join(derived)}" if derived else ""))
        steps = len(pipeline["steps"])
        out += [""] if number > 1 else []
        out.append(f"pipeline {number} of {len(found)}: {sources} → {outputs}  "
                   f"({steps} step{'s' if steps != 1 else ''})")
        out += ["  " + line for line in table(rows).splitlines()]
    return "\n".join(out)


def pipelines_dot(data: dict[str, Any]) -> str:
    """Graphviz DOT of :func:`pipelines_text`'s data, one cluster per pipeline: steps as
    ellipses (with their run count), artifacts as boxes (with kind and versions); edges
    follow the data (input -> step -> output), labelled with the input names; ``derived_from``
    dotted, a step started inside another dashed."""
    out = ["digraph pipelines {", "  rankdir=LR;", "  node [fontname=Helvetica];",
           "  edge [fontname=Helvetica, fontsize=10];"]
    for number, pipeline in enumerate(data["pipelines"], 1):
        out.append(f"  subgraph cluster_{number} {{")
        out.append(f"    label={_dot_label(f'pipeline {number}')};")
        for node in pipeline["nodes"]:
            ident = _dot_label(f"{number}:{node['id']}")
            if node["kind"] == "step":
                runs = f"{node['runs']} run{'s' if node['runs'] != 1 else ''}"
                out.append(f"    {ident} [label={_dot_label(node['name'], runs)}, "
                           "shape=ellipse];")
            else:
                versions = ", ".join(node["versions"]) or "unversioned"
                out.append(f"    {ident} [label={_dot_label(node['name'], node['kind'], versions)}"
                           ", shape=box];")
        for edge in pipeline["edges"]:
            attrs = [f"label={_dot_label(', '.join(edge['roles']))}"] if edge["roles"] else []
            attrs += {"child_of": ["style=dashed"], "derived_from": ["style=dotted"]}.get(
                edge["type"], [])
            suffix = f" [{', '.join(attrs)}]" if attrs else ""
            out.append(f"    {_dot_label(f'{number}:' + edge['source'])} -> "
                       f"{_dot_label(f'{number}:' + edge['target'])}{suffix};")
        out.append("  }")
    out.append("}")
    return "\n".join(out)
