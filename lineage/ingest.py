"""Turning a value or a path into a staged artifact: content, summary, attachments.

Everything here runs outside any write transaction: content is hashed, chunked and made
durable, summaries are computed; the caller commits the result (see
:class:`lineage.indexing.Prepared`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .adapters import adapter_for_value
from .content import StagedBlob, stage
from .errors import InvalidName
from .files import StagedPath, stage_path
from .hashing import Digest, digest_bytes
from .records import Artifact
from .revisions import check_name
from .stores.base import Backend

__all__ = ["name_from_path", "prepare_path", "prepare_value"]

_TABLE_SUFFIXES = (".csv", ".parquet", ".tsv")


def prepare_value(
    backend: Backend, value: Any, *, name: str | None, kind: str | None,
    meta: dict[str, Any], parents: tuple[Digest, ...], target: str | None,
) -> tuple[Artifact, list[StagedPath | StagedBlob]]:
    """Stage a Python value through its adapter; return its artifact and staged parts.

    Raises:
        UnsupportedValue: no adapter claims ``value``.
    """
    dumped = adapter_for_value(value).dump(value, target=target)
    blob = stage(backend, dumped.data)
    summary = dict(dumped.summary)
    if dumped.identity is not None:
        summary["identity"] = digest_bytes(dumped.identity)
    attached = _stage_attachments(backend, dumped.attachments, summary)
    artifact = Artifact(
        kind=kind or dumped.kind, name=name, blob=blob.digest, format=dumped.format,
        size=blob.size, summary=summary, meta=meta, parents=parents,
    )
    return artifact, [*attached, blob]


def prepare_path(
    backend: Backend, path: Path, *, name: str | None, kind: str | None,
    meta: dict[str, Any], parents: tuple[Digest, ...], target: str | None,
    progress: Callable[[int], None] | None,
) -> tuple[Artifact, list[StagedPath | StagedBlob]]:
    """Stage a file or directory; tabular files added as datasets are profiled.

    Raises:
        PathError: the path is missing, unreadable or holds a special file.
    """
    staged = stage_path(backend, path, progress=progress)
    summary: dict[str, Any] = {"files": staged.files}
    attached: list[StagedBlob] = []
    if staged.kind == "file":
        file_summary, attachments = _file_summary(path, kind, target)
        summary.update(file_summary)
        attached = _stage_attachments(backend, attachments, summary)
    artifact = Artifact(
        kind=kind or staged.kind,
        name=name,
        blob=staged.root.digest,
        format="directory" if staged.kind == "directory" else _file_format(path),
        size=staged.size,
        summary=summary,
        meta=meta,
        parents=parents,
    )
    return artifact, [*attached, staged]


def name_from_path(path: Path) -> str | None:
    """A valid name from a file name: other characters become ``_``.

    ``my data.csv`` gives ``my_data.csv``; an all-hex name gets a ``file_`` prefix; ``None``
    if nothing usable is left.
    """
    base = re.sub(r"[^A-Za-z0-9._-]", "_", path.resolve().name).lstrip(".-")[:200]
    for candidate in (base, f"file_{base}"[:200]):
        try:
            return check_name(candidate)
        except InvalidName:
            continue
    return None


def _stage_attachments(
    backend: Backend, attachments: dict[str, bytes], summary: dict[str, Any]
) -> list[StagedBlob]:
    staged = []
    for key, data in attachments.items():
        blob = stage(backend, data)
        summary[key] = blob.digest
        staged.append(blob)
    return staged


def _file_format(path: Path) -> str:
    return path.suffix.lower().lstrip(".") or "file"


def _file_summary(
    path: Path, kind: str | None, target: str | None
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Summary and attachments of a file: tabular files added as datasets are profiled.

    Profiling needs pandas (``pip install 'lineage[pandas]'``); without it the dataset is
    stored unprofiled and its summary says why.
    """
    summary: dict[str, Any] = {"filename": path.name}
    if kind == "dataset" and path.suffix.lower() in _TABLE_SUFFIXES:
        try:
            from .adapters.pandas import summarize_table_file
        except ImportError as exc:
            summary["profile"] = f"not profiled: {exc}; install lineage[pandas]"
            return summary, {}
        table_summary, attachments = summarize_table_file(path, target=target)
        summary.update(table_summary)
        return summary, attachments
    return summary, {}
