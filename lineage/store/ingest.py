"""Turning a value or a path into a staged artifact: content, summary, attachments.

:func:`prepare` runs outside any write transaction: content is hashed, chunked and made
durable, summaries are computed. It returns a :class:`Prepared`, which the caller commits
inside a write transaction (alone, as ``Store.add`` does, or together with a run and its
other outputs). Nothing is visible before that commit.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from lineage.adapters import adapter_for_value
from lineage.adapters.tables import PROFILE_LIMIT, table_format
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import Artifact
from lineage.errors import InvalidName, PathError, UnsupportedValue
from lineage.refs import registry
from lineage.refs.revisions import check_name
from lineage.storage import schema
from lineage.storage.base import Backend, ReadTxn, WriteTxn
from lineage.storage.blobs import StagedBlob
from lineage.storage.files import StagedPath, stage_path
from lineage.storage.staging import stage

__all__ = ["Prepared", "discard", "name_from_path", "prepare"]


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
    annotate: dict[str, Any] | None = None, key: str | None = None,
) -> Prepared:
    """Hash, summarize and durably stage ``value``'s content; see the module docstring.

    ``value`` is a path (``str`` or ``os.PathLike``) or a value an adapter claims. A path's
    name defaults to its file name (see :func:`name_from_path`) unless ``path_name`` is
    false. A table file (CSV, TSV, Parquet, JSON lines) is profiled like a DataFrame
    whatever its ``kind`` (a diff then compares its rows); ``key`` names the column that
    identifies a table's rows. ``summary`` and ``format``, when given, replace what the
    adapter computed (a code artifact's description, an evaluation's figures); ``annotate``
    adds keys to the computed summary (a prediction set's model and stage). They are
    applied here so that a restage reproduces the same digest.

    Raises:
        InvalidName: ``name``, ``version`` or ``kind`` is invalid, or a version has no name.
        UnsupportedValue: no adapter claims ``value``, ``meta`` cannot be encoded, a
            dataset file cannot be read as a table, or ``key`` is given for something that
            is not a table or is not a unique, complete column of it.
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
                                         parents=parents, target=target, progress=progress,
                                         key=key)
    else:
        artifact, staged = _prepare_value(backend, value, name=name, kind=kind, meta=meta,
                                          parents=parents, target=target, key=key)
    if summary is not None or format is not None or annotate:
        chosen = dict(artifact.summary if summary is None else summary)
        chosen.update(annotate or {})
        artifact = artifact.replace(summary=chosen,
                                    format=artifact.format if format is None else format)
    again = partial(prepare, backend, value, name=name, version=version, kind=kind, meta=meta,
                    parents=parents, target=target, path_name=path_name, summary=summary,
                    format=format, annotate=annotate, key=key)
    return Prepared(artifact, tuple(staged), version, restage=again)


def _prepare_value(
    backend: Backend, value: Any, *, name: str | None, kind: str | None,
    meta: dict[str, Any], parents: tuple[Digest, ...], target: str | None,
    key: str | None = None,
) -> tuple[Artifact, list[StagedPath | StagedBlob]]:
    """Stage a Python value through its adapter; return its artifact and staged parts.

    Raises:
        UnsupportedValue: no adapter claims ``value``, or ``key`` is given and the
            adapter does not take one (only tables have key columns).
    """
    adapter = adapter_for_value(value)
    if key is None:
        dumped = adapter.dump(value, target=target)
    elif "key" in inspect.signature(adapter.dump).parameters:
        dumped = adapter.dump(value, target=target, key=key)  # type: ignore[call-arg]
    else:
        raise UnsupportedValue(f"key={key!r} names the row-identifying column of a table; "
                               f"a {type(value).__name__} has no rows to key")
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
    progress: Callable[[int], None] | None, key: str | None = None,
) -> tuple[Artifact, list[StagedPath | StagedBlob]]:
    """Stage a file or directory; table files are profiled (see :func:`_file_summary`).

    Raises:
        PathError: the path is missing, unreadable or holds a special file.
        UnsupportedValue: see :func:`_file_summary`.
    """
    if key is not None and (path.is_dir() or table_format(path) is None):
        raise UnsupportedValue(f"key={key!r} names the row-identifying column of a table; "
                               f"{path} is not a table file (.csv, .tsv, .parquet, .jsonl)")
    staged = stage_path(backend, path, progress=progress)
    summary: dict[str, Any] = {"files": staged.files}
    attached: list[StagedBlob] = []
    if staged.kind == "file":
        known = _known_profile(backend, name, staged.root.digest, target, key)
        if known is not None:  # re-adding what the latest version holds: no re-parsing
            summary.update(known, filename=path.name)
        else:
            file_summary, attachments = _file_summary(path, kind, target, key, staged.size)
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


def _known_profile(backend: Backend, name: str | None, blob: Digest, target: str | None,
                   key: str | None) -> dict[str, Any] | None:
    """The table profile of the latest version of ``name`` when it holds the same content
    profiled with the same ``target`` and ``key`` (the summary would be the same, and its
    attachments are already stored), else ``None``. Keeps re-adding an unchanged table file
    as cheap as re-adding any file."""
    if name is None:
        return None
    with backend.read() as txn:
        latest = schema.latest_version(txn, name)
        record = None if latest is None else schema.read_record(txn, latest.target)
    if not isinstance(record, Artifact) or record.blob != blob or record.format == "directory":
        return None
    summary = record.summary
    if "columns" not in summary or summary.get("target") != target or summary.get("key") != key:
        return None
    return {k: v for k, v in summary.items() if k not in ("files", "filename")}


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
    path: Path, kind: str | None, target: str | None, key: str | None = None, size: int = 0
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Summary and attachments of a file: table files are profiled whatever their kind.

    A table file that cannot be read as one is refused when added as ``kind="dataset"``
    (or with ``target``/``key``, which only tables have) and otherwise stored as a plain
    file whose summary says why it was not profiled; so is one over
    :data:`PROFILE_LIMIT` bytes not added as a dataset. Profiling needs pandas
    (``pip install 'lineage[pandas]'``); without it the summary says so.

    Raises:
        UnsupportedValue: a dataset file (or one given ``target``/``key``) cannot be read
            as a table, or ``target``/``key`` do not fit it.
    """
    summary: dict[str, Any] = {"filename": path.name}
    if table_format(path) is None:
        return summary, {}
    required = kind == "dataset" or target is not None or key is not None
    if not required and size > PROFILE_LIMIT:
        summary["profile"] = (f"not profiled: larger than {PROFILE_LIMIT >> 20} MiB; add it "
                              "with kind='dataset' to profile it")
        return summary, {}
    try:
        from lineage.adapters.pandas import summarize_table_file
    except ImportError as exc:
        summary["profile"] = f"not profiled: {exc}; install lineage[pandas]"
        return summary, {}
    try:
        table_summary, attachments = summarize_table_file(path, target=target, key=key)
    except UnsupportedValue:
        if required:
            raise
        # The same words on every machine (no paths, no parser messages): they are identity.
        summary["profile"] = f"not profiled: not readable as a {table_format(path)} table"
        return summary, {}
    summary.update(table_summary)
    return summary, attachments
