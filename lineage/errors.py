"""Every exception lineage raises, in one tree.

``LineageError`` is the root; catch it to catch anything lineage raises on purpose.
Where an error is also a kind of builtin error, it subclasses that builtin too, so
``except LookupError`` or ``except ValueError`` keeps working in user code.

- ``RevisionNotFound`` (``LookupError``): a revision names nothing in the store.
- ``AmbiguousRevision`` (``LookupError``): a digest prefix matches several records.
- ``InvalidRevision`` (``ValueError``): a revision string is malformed.
- ``InvalidName`` (``ValueError``): a name, version, tag or stage breaks the naming rules.
- ``InvalidQuery`` (``ValueError``): a query or diff was asked something malformed (an
  unknown comparison operator, a negative depth, an artifact diffed against a run).
- ``UnsupportedValue`` (``TypeError``): a value has no canonical encoding or adapter.
- ``IntegrityError``: stored content does not hash to its digest.
- ``CollisionError``: two different contents share one digest.
- ``ChunkVanished``: content reused by a staged add was removed by a concurrent gc before it
  committed; stage again — ``Store.add`` retries by itself.
- ``CorruptRecordError``: stored bytes do not decode as a record.
- ``UntrustedContentError``: loading would unpickle without ``trust=True``.
- ``PathError`` (``OSError``): a path to add is missing, or a checkout target is unsafe.
- ``RunError`` (``RuntimeError``): a run is used after it closed, or nested wrongly.
- ``StoreError``: the store cannot be opened or written (disk full, bad permissions).
"""

from __future__ import annotations

__all__ = [
    "AmbiguousRevision",
    "ChunkVanished",
    "CollisionError",
    "CorruptRecordError",
    "IntegrityError",
    "InvalidName",
    "InvalidQuery",
    "InvalidRevision",
    "LineageError",
    "PathError",
    "RevisionNotFound",
    "RunError",
    "StoreError",
    "UnsupportedValue",
    "UntrustedContentError",
]


class LineageError(Exception):
    """Root of every error lineage raises deliberately."""


class RevisionNotFound(LineageError, LookupError):
    """A revision names no artifact or run in the store."""

    def __str__(self) -> str:  # LookupError would repr() a single argument
        return str(self.args[0]) if self.args else ""


class AmbiguousRevision(LineageError, LookupError):
    """A digest prefix or name matches more than one record."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidRevision(LineageError, ValueError):
    """A revision string is malformed (bad ``~N``, empty, stray ``@``)."""


class InvalidName(LineageError, ValueError):
    """A name, version, tag or stage does not follow the naming rules."""


class InvalidQuery(LineageError, ValueError):
    """A query or diff was given arguments it cannot answer (bad operator, depth, pairing)."""


class UnsupportedValue(LineageError, TypeError):
    """A value cannot be encoded canonically and no adapter claims it."""


class IntegrityError(LineageError):
    """Content read from the store does not hash to the digest it is stored under."""


class CollisionError(LineageError):
    """New content has the digest of different content already stored."""


class ChunkVanished(LineageError):
    """Content reused by a staged add was removed (by a concurrent gc) before it committed.

    Stage again; :meth:`lineage.store.Store.add` does so by itself.
    """


class CorruptRecordError(LineageError):
    """Stored bytes do not decode as a valid record."""


class UntrustedContentError(LineageError):
    """Loading this content would run a pickle; pass ``trust=True`` if you trust it."""


class PathError(LineageError, OSError):
    """A path is missing, unreadable, or a checkout would write where it must not."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class RunError(LineageError, RuntimeError):
    """A run or step was used in a way its life cycle does not allow."""


class StoreError(LineageError):
    """The store cannot be opened, grown or written."""
