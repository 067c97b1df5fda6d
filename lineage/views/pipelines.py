"""Every pipeline in a store, as ``dvc dag`` shows a project's: sources → steps → outputs.

:func:`pipelines` folds the recorded history into the pipelines that made it: runs are
folded into their operation (one *step* per op, however many times it ran), artifacts
into their name (one node per name, with the versions seen), an unnamed output into the
step and output name that made it (``preprocess.return``), and an unnamed input that holds
the same content as a named artifact into that name (the DataFrame a step received,
loaded from ``dataset@v1.1``, is ``dataset``). Code and environment artifacts are left
out: they are shared by every step and would join every pipeline into one. An output equal
to one of its run's inputs was passed through, not made, and is not drawn as made.

A pipeline is a connected group of steps and artifacts (through ``used``, ``generated``,
``derived_from`` and run-nesting edges); its nodes are in data-flow order, sources first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run
from lineage.refs.registry import VersionLabels
from lineage.storage import schema
from lineage.storage.base import ReadTxn

__all__ = ["Pipeline", "PipelineEdge", "PipelineNode", "pipelines"]

STEP: Final = "step"
_LEFT_OUT: Final = frozenset({"code", "environment"})


@dataclass(frozen=True, slots=True)
class PipelineNode:
    """A step (``kind == "step"``: an operation and how many runs it had) or artifacts
    folded under one name (``kind`` their kind, ``versions`` the versions seen)."""

    id: str
    kind: str
    name: str
    versions: tuple[str, ...] = ()
    runs: int = 0
    inside: str | None = None  # a step started inside another step (run nesting)

    def to_dict(self) -> dict[str, Any]:
        """``{"id", "kind", "name", "versions", "runs", "inside"}``."""
        return {"id": self.id, "kind": self.kind, "name": self.name,
                "versions": list(self.versions), "runs": self.runs, "inside": self.inside}


@dataclass(frozen=True, slots=True)
class PipelineEdge:
    """Data flowing from ``source`` to ``target`` node ids: ``used`` (artifact → step, under
    ``roles``, the input names), ``generated`` (step → artifact, under output names) or
    ``derived_from`` (artifact → artifact declared derived from it)."""

    source: str
    target: str
    type: str
    roles: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """``{"source", "target", "type", "roles"}``."""
        return {"source": self.source, "target": self.target, "type": self.type,
                "roles": list(self.roles)}


@dataclass(frozen=True, slots=True)
class Pipeline:
    """One pipeline: ``nodes`` in data-flow order (sources first) and ``edges``."""

    nodes: tuple[PipelineNode, ...]
    edges: tuple[PipelineEdge, ...]

    @property
    def steps(self) -> tuple[PipelineNode, ...]:
        """The steps, in data-flow order."""
        return tuple(n for n in self.nodes if n.kind == STEP)

    @property
    def sources(self) -> tuple[PipelineNode, ...]:
        """Artifacts nothing in the pipeline made (raw data, test sets, configs)."""
        made = {e.target for e in self.edges if e.type in ("generated", "derived_from")}
        return tuple(n for n in self.nodes if n.kind != STEP and n.id not in made)

    @property
    def outputs(self) -> tuple[PipelineNode, ...]:
        """Artifacts made in the pipeline that nothing in it uses (models, evaluations)."""
        used = {e.source for e in self.edges}
        return tuple(n for n in self.nodes if n.kind != STEP and n.id not in used
                     and n not in self.sources)

    def to_dict(self) -> dict[str, Any]:
        """``{"sources": [id], "steps": [id], "outputs": [id], "nodes": [node], "edges":
        [edge]}`` (see :meth:`PipelineNode.to_dict`, :meth:`PipelineEdge.to_dict`)."""
        return {"sources": [n.id for n in self.sources], "steps": [n.id for n in self.steps],
                "outputs": [n.id for n in self.outputs],
                "nodes": [n.to_dict() for n in self.nodes],
                "edges": [e.to_dict() for e in self.edges]}


@dataclass(slots=True)
class _Fold:
    """The folded graph being built: nodes by id, edges with their roles."""

    kinds: dict[str, str] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    versions: dict[str, dict[str, tuple[int, str]]] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    inside: dict[str, str] = field(default_factory=dict)
    edges: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def node(self, node: str, kind: str, name: str) -> str:
        self.kinds.setdefault(node, kind)
        self.names.setdefault(node, name)
        return node

    def edge(self, source: str, target: str, kind: str, role: str | None) -> None:
        roles = self.edges.setdefault((source, target, kind), set())
        if role:
            roles.add(role)


def pipelines(txn: ReadTxn) -> list[Pipeline]:
    """Every pipeline recorded in the store, largest first (see the module docstring).

    Returns:
        :class:`Pipeline` objects; artifacts never used or made by a run, nor declared
        derived from another, are in none.

    Example:
        >>> [[s.name for s in p.steps] for p in store.pipelines()]  # doctest: +SKIP
        [['train_model', 'preprocess', 'train']]
    """
    labels = VersionLabels(txn)
    records: dict[Digest, Artifact | Run] = {}

    def read(digest: Digest) -> Artifact | Run | None:
        if digest not in records:
            if schema.raw_record(txn, digest) is None:
                return None
            records[digest] = schema.read_record(txn, digest)
        return records[digest]

    runs = [r for d in schema.record_digests(txn, "run") if isinstance(r := read(d), Run)]
    made_by: dict[Digest, tuple[str, str]] = {}
    for run in sorted(runs, key=lambda r: (r.started, r.digest)):
        for output, digest in sorted(run.outputs.items()):
            if digest not in run.inputs.values():  # passed through unchanged: not made here
                made_by.setdefault(digest, (run.op, output))
    named: dict[bytes, str] | None = None  # read when an unnamed input first needs it
    fold = _Fold()

    def named_as(artifact: Artifact) -> str | None:
        nonlocal named
        if named is None:
            named = _named_contents(txn)
        return named.get(artifact.content_key)

    def artifact_node(digest: Digest, user: str, role: str) -> str | None:
        artifact = read(digest)
        if not isinstance(artifact, Artifact) or artifact.kind in _LEFT_OUT:
            return None
        if artifact.name:
            node = fold.node(f"artifact:{artifact.name}", artifact.kind, artifact.name)
        elif digest in made_by:
            op, output = made_by[digest]
            node = fold.node(f"output:{op}.{output}", artifact.kind, f"{op}.{output}")
        elif (name := named_as(artifact)) is not None:
            node = fold.node(f"artifact:{name}", artifact.kind, name)
        else:
            node = fold.node(f"input:{user}.{role}", artifact.kind, f"{user}.{role}")
        found = labels.lookup(artifact)
        if found is not None:
            fold.versions.setdefault(node, {})[found[1]] = found
        return node

    by_id = {run.id: run for run in runs}
    for run in runs:
        step = fold.node(f"step:{run.op}", STEP, run.op)
        fold.runs[step] = fold.runs.get(step, 0) + 1
        parent = by_id.get(run.parent) if run.parent else None
        if parent is not None and parent.op != run.op:
            fold.inside.setdefault(step, parent.op)
            fold.edge(f"step:{parent.op}", step, "child_of", None)
        uses = [(role, d) for role, d in run.inputs.items()]
        uses += [("test set", d) for d in run.metric_datasets.values()
                 if d not in run.inputs.values()]
        for role, digest in uses:
            node = artifact_node(digest, run.op, role)
            if node is not None:
                fold.edge(node, step, "used", role)
        for role, digest in run.outputs.items():
            if digest in run.inputs.values():
                continue
            node = artifact_node(digest, run.op, role)
            if node is not None:
                fold.edge(step, node, "generated", role)
    for digest in list(records):
        artifact = records[digest]
        if isinstance(artifact, Artifact) and artifact.parents:
            child = artifact_node(digest, "", "")
            for parent_digest in artifact.parents:
                source = artifact_node(parent_digest, "", "")
                if child is not None and source is not None and source != child:
                    fold.edge(source, child, "derived_from", None)
    return _split(fold)


def _named_contents(txn: ReadTxn) -> dict[bytes, str]:
    """Content of every version of every name -> the name (the first name that holds it)."""
    found: dict[bytes, str] = {}
    for name in sorted(schema.versioned_names(txn)):
        for entry in schema.versions(txn, name):
            record = schema.read_record(txn, entry.target)
            if isinstance(record, Artifact) and record.kind not in _LEFT_OUT:
                found.setdefault(record.content_key, name)
    return found


def _split(fold: _Fold) -> list[Pipeline]:
    """The folded graph cut into connected pipelines, nodes in data-flow order."""
    import networkx

    graph = networkx.DiGraph()  # a step started inside another comes after it
    graph.add_nodes_from(fold.kinds)
    graph.add_edges_from((s, t) for s, t, _kind in fold.edges)
    found = []
    for group in networkx.weakly_connected_components(graph):
        if len(group) < 2:
            continue
        sub = graph.subgraph(group)
        order: list[str] = []
        condensed = networkx.condensation(sub)  # a name used to make its own next version
        for component in networkx.lexicographical_topological_sort(
                condensed, key=lambda c: min(condensed.nodes[c]["members"])):
            order += sorted(condensed.nodes[component]["members"])
        nodes = tuple(
            PipelineNode(node, fold.kinds[node], fold.names[node],
                         tuple(v for _s, v in sorted(fold.versions.get(node, {}).values())),
                         fold.runs.get(node, 0), fold.inside.get(node))
            for node in order)
        position = {node: i for i, node in enumerate(order)}
        edges = tuple(sorted(
            (PipelineEdge(s, t, kind, tuple(sorted(roles)))
             for (s, t, kind), roles in fold.edges.items() if s in group),
            key=lambda e: (position[e.source], position[e.target], e.type)))
        found.append(Pipeline(nodes, edges))
    return sorted(found, key=lambda p: (-len(p.steps), -len(p.nodes), p.nodes[0].id))
