"""One pair of things compared: values key by key, models, code, text files, environments.

Small pure functions the walk (:mod:`lineage.diff.walk`) calls for each matched pair; each
returns the diff model's dataclasses (:mod:`lineage.diff.model`).
"""

from __future__ import annotations

from typing import Any, Final

from lineage.adapters import format_adapter
from lineage.adapters.tables import TABLE_FORMATS
from lineage.core.plain import identical, is_number, jsonable
from lineage.core.records import Artifact
from lineage.diff.model import (
    CodeDiff,
    EnvironmentDiff,
    ModelDiff,
    SubgroupChange,
    TextDiff,
    ValueChange,
)
from lineage.storage.base import Backend, ReadTxn
from lineage.storage.blobs import read_blob

__all__ = ["TEXT_LIMIT", "code_diff", "environment_diff", "environment_what", "flatten",
           "model_diff", "subgroup_changes", "text_diff", "value_changes"]

#: Files larger than this (on either side) are not compared line by line.
TEXT_LIMIT: Final = 1024 * 1024

#: the subgroup metrics a diff compares, by task (the first one present is shown)
_SUBGROUP_METRICS = ("sensitivity", "specificity", "ppv", "npv", "roc_auc", "accuracy",
                     "macro_sensitivity", "mae", "rmse")


def value_changes(old: dict[str, Any], new: dict[str, Any]) -> tuple[ValueChange, ...]:
    """Key-by-key changes from ``old`` to ``new``, sorted by key."""
    changes = []
    for key in sorted(set(old) | set(new), key=str):
        if key not in old:
            changes.append(ValueChange(str(key), None, jsonable(new[key]), "added"))
        elif key not in new:
            changes.append(ValueChange(str(key), jsonable(old[key]), None, "removed"))
        elif not identical(old[key], new[key]):
            changes.append(ValueChange(str(key), jsonable(old[key]), jsonable(new[key])))
    return tuple(changes)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as one level of dotted keys (``{"a": {"b": 1}}`` -> ``{"a.b": 1}``)."""
    if not isinstance(value, dict):
        return {prefix or "value": value}
    flat: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, dict) and item:
            flat.update(flatten(item, name))
        else:
            flat[name] = item
    return flat


def _changed(key: str, old: Any, new: Any) -> ValueChange | None:
    return None if identical(old, new) else ValueChange(key, jsonable(old), jsonable(new))


def model_diff(a: dict[str, Any], b: dict[str, Any]) -> ModelDiff:
    """What changed between two models' summaries (class, hyperparameters, features)."""
    features_a, features_b = a.get("feature_names") or [], b.get("feature_names") or []
    return ModelDiff(
        model_class=_changed("class", a.get("class"), b.get("class")),
        params=value_changes(a.get("params") or {}, b.get("params") or {}),
        n_features=_changed("n_features_in", a.get("n_features_in"), b.get("n_features_in")),
        features_added=tuple(str(f) for f in features_b if f not in features_a),
        features_removed=tuple(str(f) for f in features_a if f not in features_b),
        classes=_changed("classes", a.get("classes"), b.get("classes")),
    )


def code_diff(a: Artifact | None, b: Artifact | None) -> CodeDiff:
    """What changed between two code artifacts (qualified name and source)."""
    sa, sb = (a.summary if a else {}), (b.summary if b else {})

    def qualname(summary: dict[str, Any]) -> str | None:
        if not summary.get("qualname"):
            return None
        return ".".join(str(p) for p in (summary.get("module"), summary["qualname"]) if p)

    return CodeDiff(_changed("qualname", qualname(sa), qualname(sb)),
                    str(sa.get("source") or ""), str(sb.get("source") or ""))


def environment_diff(a: Artifact | None, b: Artifact | None) -> EnvironmentDiff:
    """What changed between two environments (packages, Python, platform, git)."""
    sa, sb = (a.summary if a else {}), (b.summary if b else {})
    return EnvironmentDiff(
        packages=value_changes(sa.get("packages") or {}, sb.get("packages") or {}),
        python=_changed("python", sa.get("python"), sb.get("python")),
        platform=_changed("platform", sa.get("platform"), sb.get("platform")),
        git=_changed("git", sa.get("git"), sb.get("git")),
    )


def environment_what(environment: EnvironmentDiff) -> str:
    """A short list of what differs in an environment, for a cause's text."""
    parts = []
    if environment.packages:
        parts.append("packages " + ", ".join(p.key for p in environment.packages))
    parts += [c.key for c in (environment.python, environment.platform, environment.git) if c]
    return "; ".join(parts)


def subgroup_changes(old: Any, new: Any) -> tuple[SubgroupChange, ...]:
    """Per-subgroup metric changes between two evaluations' ``subgroups`` tables: every
    (attribute, value, metric) whose value or size changed, in attribute, value, metric
    order."""
    old, new = (old if isinstance(old, dict) else {}), (new if isinstance(new, dict) else {})
    changes = []
    for attribute in sorted(set(old) | set(new)):
        groups_old, groups_new = old.get(attribute) or {}, new.get(attribute) or {}
        for value in sorted(set(groups_old) | set(groups_new)):
            a, b = groups_old.get(value) or {}, groups_new.get(value) or {}
            for metric in _SUBGROUP_METRICS:
                va: Any = a.get(metric)
                vb: Any = b.get(metric)
                if metric not in a and metric not in b:
                    continue
                if identical(va, vb) and a.get("n") == b.get("n"):
                    continue
                delta = vb - va if is_number(va) and is_number(vb) else None
                changes.append(SubgroupChange(attribute, str(value), metric, va, vb,
                                              a.get("n"), b.get("n"), delta))
    return tuple(changes)


def text_diff(backend: Backend, txn: ReadTxn, a: Artifact, b: Artifact) -> TextDiff | None:
    """The line diff of two files whose content is text (code, YAML, JSON, a config), by
    content, whatever their kind or name: both UTF-8 without NUL bytes and at most
    :data:`TEXT_LIMIT` bytes. ``None`` for anything else (tables, directories, values an
    adapter stores, binary files).

    Raises:
        IntegrityError: stored content does not match its digest.
    """
    texts = []
    for artifact in (a, b):
        fmt = artifact.format
        if (artifact.blob is None or fmt == "directory" or fmt in TABLE_FORMATS
                or artifact.size > TEXT_LIMIT or "filename" not in artifact.summary
                or format_adapter(fmt) is not None):
            return None
        data = read_blob(backend, txn, artifact.blob)
        if b"\x00" in data:
            return None
        try:
            texts.append(data.decode("utf-8"))
        except UnicodeDecodeError:
            return None
    return TextDiff(texts[0], texts[1])
