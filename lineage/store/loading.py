"""The read half of ``Store.load``: an artifact, the adapter for its format and its bytes,
taken from one snapshot.

A module of its own so that the facade imports the reading layers (records, revisions,
blobs, adapters) with one statement on the hot path of every load, and opening a store
imports none of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lineage.adapters import Adapter, format_adapter
from lineage.adapters.tables import TABLE_FORMATS
from lineage.core.records import Artifact, Run
from lineage.errors import RecordTypeError
from lineage.refs.revisions import resolve_record
from lineage.storage.blobs import read_blob

if TYPE_CHECKING:
    from lineage.core.hashing import Digest
    from lineage.storage.base import Backend

__all__ = ["is_table_dataset", "read_artifact"]


def read_artifact(backend: Backend, revision: str | Digest | Artifact | Run, *,
                  as_path: bool) -> tuple[Artifact, Adapter | None, bytes | None]:
    """The artifact ``revision`` names, the adapter that loads its format and its verified
    bytes, read in one snapshot; adapter and bytes are ``None`` for content that comes back
    as a path (``as_path``, a directory, a format no adapter loads).

    Raises:
        RecordTypeError: the revision names a run or an artifact without stored content.
        RevisionNotFound, IntegrityError: from resolving and reading.
    """
    with backend.read() as txn:
        artifact = revision if isinstance(revision, Artifact | Run) else resolve_record(
            txn, revision)
        if not isinstance(artifact, Artifact):
            raise RecordTypeError(f"{revision!r} names a run, not an artifact")
        adapter = None if as_path or artifact.format == "directory" else format_adapter(
            artifact.format)
        if adapter is None:
            return artifact, None, None
        if artifact.blob is None:
            raise RecordTypeError(f"{artifact!r} holds no stored content")
        return artifact, adapter, read_blob(backend, txn, artifact.blob)


def is_table_dataset(artifact: Artifact) -> bool:
    """Whether ``artifact`` is a dataset in a table file format (it loads as a DataFrame)."""
    return artifact.kind == "dataset" and artifact.format in TABLE_FORMATS
