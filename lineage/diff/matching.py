"""Which record of one lineage is compared with which of the other.

Pure helpers of :mod:`lineage.diff.walk`: the path a diff starts at, the run that stands
for an operation when several made one artifact, inputs paired by name (then by artifact
name, then by kind when one candidate is left on each side), and declared parents paired
the same way.
"""

from __future__ import annotations

from collections.abc import Callable

from lineage.core.hashing import Digest
from lineage.core.records import Artifact, Run

__all__ = ["newest", "pair_inputs", "pair_parents", "top_path"]

Pair = tuple[str, Digest | None, Digest | None]


def top_path(a: Artifact, b: Artifact) -> str:
    """Where a diff of two artifacts starts: their shared name, else kind, else both."""
    if a.name and a.name == b.name:
        return a.name
    if a.kind == b.kind:
        return a.kind
    return " vs ".join(sorted((a.name or a.kind, b.name or b.kind)))


def newest(runs: list[Run]) -> Run | None:
    """The run that stands for its operation: a successful one first, then the latest."""
    return max(runs, key=lambda r: (r.status == "ok", r.started, r.digest), default=None)


def pair_inputs(a: dict[str, Digest], b: dict[str, Digest],
                record: Callable[[Digest], Artifact | Run]) -> list[Pair]:
    """Inputs ``(label, digest in a, digest in b)`` matched by input name, then leftovers
    by artifact name, then by kind when unique on each side; the rest unmatched (``None``
    on the other side). ``record`` reads a record by digest. Sorted by label."""
    pairs: list[Pair] = [(name, a[name], b[name]) for name in sorted(set(a) & set(b))]
    left = {n: d for n, d in a.items() if n not in b}
    right = {n: d for n, d in b.items() if n not in a}
    for attribute in ("name", "kind"):
        groups_l = _group(left, attribute, record)
        groups_r = _group(right, attribute, record)
        for key in sorted(set(groups_l) & set(groups_r)):
            if len(groups_l[key]) == len(groups_r[key]) == 1:
                (name_l,), (name_r,) = groups_l[key], groups_r[key]
                label = name_l if name_l == name_r else " / ".join(sorted((name_l, name_r)))
                pairs.append((label, left.pop(name_l), right.pop(name_r)))
    pairs += [(n, d, None) for n, d in left.items()] + [(n, None, d) for n, d in right.items()]
    return sorted(pairs, key=lambda p: p[0])


def _group(inputs: dict[str, Digest], attribute: str,
           record: Callable[[Digest], Artifact | Run]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, digest in inputs.items():
        key = getattr(record(digest), attribute, None)
        if key:
            groups.setdefault(key, []).append(name)
    return groups


def pair_parents(a: list[Artifact], b: list[Artifact]) -> list[tuple[Artifact, Artifact]]:
    """Declared parents paired: the only one of each, else by unique name, else by kind."""
    if len(a) == len(b) == 1:
        return [(a[0], b[0])]
    pairs: list[tuple[Artifact, Artifact]] = []
    for key in ("name", "kind"):
        left = {getattr(x, key): x for x in a}
        right = {getattr(x, key): x for x in b}
        if len(left) == len(a) and len(right) == len(b):
            pairs = [(left[k], right[k]) for k in sorted(set(left) & set(right), key=str)
                     if k is not None]
            if pairs:
                return pairs
    return pairs
