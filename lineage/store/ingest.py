"""Turning a value or a path into a staged artifact: content, summary, attachments.

:func:`prepare` runs outside any write transaction: content is hashed, chunked and made
durable, summaries are computed. It returns a :class:`Prepared`, which the caller commits
inside a write transaction (alone, as ``Store.add`` does, or together with a run and its
other outputs). Nothing is visible before that commit.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from lineage.adapters import adapter_for_value
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact
from lineage.errors import InvalidName, PathError
from lineage.refs import registry
from lineage.refs.revisions import check_name
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.blobs import StagedBlob
from lineage.storage.files import StagedPath, stage_path
from lineage.storage.staging import stage

__all__ = ["Prepared", "discard", "name_from_path", "prepare"]

_TABLE_SUFFIXES = (".csv", ".parquet", ".tsv")

Staged = StagedPath | StagedBlob


@dataclass(frozen=True, slots=True)
class Prepared:
    """An artifact whose content is staged (durable, invisible), awaiting its commit.

    ``restage()`` stages the same value again with the same options, giving the same
    artifact digest; it is used after :class:`~lineage.errors.ChunkVanished` (a concurrent
    gc took content this staging reused).
    """

    artifact: Artifact
    staged: tuple[Staged, ...]
    version: str | None = None
    restage: Callable[[], Prepared] | None = field(default=None, repr=False, compare=False)

    @property
    def name(self) -> str | None:
        """The artifact's name."""
        return self.artifact.name

    @property
    def written(self) -> int:
        """Bytes of new chunk content staging wrote (0 if the store held it all)."""
        return sum(part.written for part in self.staged)

    def new_locations(self) -> list[bytes]:
        """Where staging wrote this artifact's new chunks (nothing names them yet)."""
        blobs = [blob for part in self.staged
                 for blob in ([*part.blobs, part.root] if isinstance(part, StagedPath)
                              else [part])]
        return [location for blob in blobs for location in blob.new_locations.values()]

    def again(self) -> Prepared:
        """This artifact staged afresh (see ``restage``); itself when it cannot be."""
        return self.restage() if self.restage is not None else self

    def unchanged(self, txn: ReadTxn) -> bool:
        """Whether committing would change nothing: the latest version already holds it."""
        fresh_stats = any(isinstance(s, StagedPath) and s.stat_entries for s in self.staged)
        if self.artifact.name is None or self.version is not None or fresh_stats:
            return False
        latest = schema.latest_version(txn, self.artifact.name)
        return latest is not None and latest.target == self.artifact.raw_digest

    def commit(self, txn: WriteTxn, *, reason: str = "", versioned: bool = True) -> str | None:
        """Name the staged content, index the record, and add its version (if named).

        Returns the version string, or ``None`` for an unnamed artifact (or with
        ``versioned=False``, which keeps the record and its content without a version).

        Raises:
            ChunkVanished: a reused chunk was collected meanwhile; prepare again.
            InvalidName: the explicit version already names other content.
        """
        for part in self.staged:
            part.commit(txn)
        schema.index_record(txn, self.artifact)
        if self.artifact.name is None or not versioned:
            return None
        return registry.add_version(
            txn, self.artifact.name, self.artifact.raw_digest, self.version, reason=reason
        )


def discard(backend: Backend, prepared: Iterable[Prepared]) -> None:
    """Take back the chunks the staging of ``prepared`` wrote, after the commit naming
    them failed (best effort: see :meth:`Backend.discard_chunks`; taken together, so that
    they can be the tail of this process's pack). Never for a ``Prepared`` that committed,
    nor for one another commit may still use (a cached environment)."""
    locations = [location for item in prepared for location in item.new_locations()]
    if locations:
        backend.discard_chunks(locations)


def prepare(
    backend: Backend, value: Any, *, name: str | None = None, version: str | None = None,
    kind: str | None = None, meta: dict[str, Any] | None = None,
    parents: tuple[Digest, ...] = (), target: str | None = None,
    progress: Callable[[int], None] | None = None, path_name: bool = True,
    summary: dict[str, Any] | None = None, format: str | None = None,  # noqa: A002
) -> Prepared:
    """Hash, summarize and durably stage ``value``'s content; see the module docstring.

    ``value`` is a path (``str`` or ``os.PathLike``) or a value an adapter claims. A path's
    name defaults to its file name (see :func:`name_from_path`) unless ``path_name`` is
    false. ``summary`` and ``format``, when given, replace what the adapter computed (a
    code artifact's description, an evaluation's figures); they are applied here so that
    a restage reproduces the same digest.

    Raises:
        InvalidName: ``name``, ``version`` or ``kind`` is invalid, or a version has no name.
        UnsupportedValue: no adapter claims ``value``, or ``meta`` cannot be encoded.
        PathError: a path is missing, unreadable or holds a NUL byte.
    """
    from lineage.core import encoding

    meta = dict(meta or {})
    is_path = isinstance(value, str | os.PathLike)
    if is_path and "\0" in str(os.fspath(value)):
        raise PathError(f"cannot add {str(value)[:200]!r}: a path never holds a NUL byte")
    if is_path and name is None and path_name:
        name = name_from_path(Path(value))
    if name is not None:
        check_name(name)
    if version is not None:
        if name is None:
            raise InvalidName("a version needs a name: add(value, name=..., version=...)")
        check_name(version, "version")
    if kind is not None:
        check_name(kind, "kind")
    encoding.encode(meta)  # refuse what cannot be recorded before writing anything
    if is_path:
        artifact, staged = _prepare_path(backend, Path(value), name=name, kind=kind, meta=meta,
                                         parents=parents, target=target, progress=progress)
    else:
        artifact, staged = _prepare_value(backend, value, name=name, kind=kind, meta=meta,
                                          parents=parents, target=target)
    if summary is not None or format is not None:
        artifact = replace(artifact, summary=artifact.summary if summary is None else summary,
                           format=artifact.format if format is None else format, _digest=None)
    again = partial(prepare, backend, value, name=name, version=version, kind=kind, meta=meta,
                    parents=parents, target=target, path_name=path_name, summary=summary,
                    format=format)
    return Prepared(artifact, tuple(staged), version, restage=again)


def _prepare_value(
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


def _prepare_path(
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
            from lineage.adapters.pandas import summarize_table_file
        except ImportError as exc:
            summary["profile"] = f"not profiled: {exc}; install lineage[pandas]"
            return summary, {}
        table_summary, attachments = summarize_table_file(path, target=target)
        summary.update(table_summary)
        return summary, attachments
    return summary, {}
