"""Every exception lineage raises, in one tree.

``LineageError`` is the root; catch it to catch anything lineage raises on purpose.
Where an error is also a kind of builtin error, it subclasses that builtin too, so
``except LookupError`` or ``except ValueError`` keeps working in user code. The same
condition raises the same type everywhere.

Looking things up

- ``RevisionNotFound`` (``LookupError``): a revision names nothing in the store (or nothing
  as of the moment a point-in-time view looks at).
- ``AmbiguousRevision`` (``LookupError``): a digest prefix matches several records.
- ``RecordTypeError`` (``TypeError``): a revision names the wrong sort of record (a run
  where an artifact is needed, a dataset where a model is).

Bad input

- ``InvalidRevision`` (``ValueError``): a revision string is malformed.
- ``InvalidName`` (``ValueError``): a name, version, tag or stage breaks the naming rules,
  or a version label is already taken by other content.
- ``InvalidQuery`` (``ValueError``): a query, diff, export or report was asked something
  malformed (an unknown operator or format, a negative depth, an unparseable date).
- ``UnsupportedValue`` (``TypeError``): a value has no canonical encoding or adapter.
- ``StepDefinitionError`` (``TypeError``): a step is defined or used wrongly (``ignore=``
  names no parameter; something that is not a step given to ``explain``).
- ``PathError`` (``OSError``): a path to add is missing, or a checkout target is unsafe.

Stored content

- ``IntegrityError``: stored content does not hash to its digest, or is missing; carries
  ``expected`` and ``actual`` digests (``actual`` is ``None`` when the content is gone).
- ``CollisionError``: two different contents share one digest; carries ``digest``.
- ``CorruptRecordError``: stored bytes do not decode as a record.
- ``ChunkVanished``: content reused by a staged add was removed by a concurrent gc before it
  committed; stage again (the store does so by itself).
- ``UntrustedContentError``: loading would unpickle without ``trust=True``.

Life cycle and sharing

- ``RunError`` (``RuntimeError``): a run is used after it closed, or nested wrongly.
- ``StoreError``: the store cannot be opened or written (disk full, bad permissions), or
  a read-only view was asked to write.
- ``PromotionBlocked``: a stage's policy refused a promotion; carries ``failures``.
- ``RefConflict``: a remote's ref moved since it was read, or names other content than
  ours (``name@version`` taken); nothing was overwritten. Carries ``ref``, ``ours`` and
  ``theirs`` (digests, ``None`` when unset).
- ``RemoteError``: a remote cannot be reached or used (missing bucket, bad credentials,
  unreachable endpoint, a network error that outlasted the retries).
- ``InvalidRemote`` (``RemoteError``, ``ValueError``): a remote's name, URL or options are
  unusable (unknown scheme, a credential given as an option to persist).
- ``RemoteNotFound`` (``RemoteError``, ``LookupError``): no remote of that name is configured.
- ``ServeError`` (``OSError``): the web view cannot listen (a port in use).

Optional packages

- ``MissingDependency`` (``ImportError``): a call needs an optional package that is not
  installed (a plot needs matplotlib); the message says what to install.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lineage.core.hashing import Digest

__all__ = [
    "AmbiguousRevision",
    "ChunkVanished",
    "CollisionError",
    "CorruptRecordError",
    "IntegrityError",
    "InvalidName",
    "InvalidQuery",
    "InvalidRemote",
    "InvalidRevision",
    "LineageError",
    "MissingDependency",
    "PathError",
    "PromotionBlocked",
    "RecordTypeError",
    "RefConflict",
    "RemoteError",
    "RemoteNotFound",
    "RevisionNotFound",
    "RunError",
    "ServeError",
    "StepDefinitionError",
    "StoreError",
    "UnsupportedValue",
    "UntrustedContentError",
]


class LineageError(Exception):
    """Root of every error lineage raises deliberately."""

    def __str__(self) -> str:  # LookupError and OSError would repr() a single argument
        return str(self.args[0]) if self.args else ""


class RevisionNotFound(LineageError, LookupError):
    """A revision names no artifact or run in the store."""


class AmbiguousRevision(LineageError, LookupError):
    """A digest prefix or name matches more than one record."""


class RecordTypeError(LineageError, TypeError):
    """A revision names a record of the wrong type or kind for the call."""


class InvalidRevision(LineageError, ValueError):
    """A revision string is malformed (bad ``~N``, empty, stray ``@``, whitespace)."""


class InvalidName(LineageError, ValueError):
    """A name, version, tag or stage does not follow the naming rules, or is taken."""


class InvalidQuery(LineageError, ValueError):
    """A query, diff, export or report was given arguments it cannot answer."""


class UnsupportedValue(LineageError, TypeError):
    """A value cannot be encoded canonically and no adapter claims it."""


class StepDefinitionError(LineageError, TypeError):
    """A step is defined or used in a way lineage cannot record."""


class PathError(LineageError, OSError):
    """A path is missing, unreadable, or a checkout would write where it must not."""


class IntegrityError(LineageError):
    """Stored content does not hash to the digest it is stored under, or is missing.

    ``expected`` is the digest the content is stored under; ``actual`` what it hashes to
    now (``None`` when the content is missing or unreadable).
    """

    def __init__(self, message: str, *, expected: Digest | None = None,
                 actual: Digest | None = None) -> None:
        super().__init__(message)
        self.expected = expected
        self.actual = actual


class CollisionError(LineageError):
    """New content has the digest of different content already stored."""

    def __init__(self, message: str, *, digest: Digest | None = None) -> None:
        super().__init__(message)
        self.digest = digest


class CorruptRecordError(LineageError):
    """Stored bytes do not decode as a valid record."""


class ChunkVanished(LineageError):
    """Content reused by a staged add was removed (by a concurrent gc) before it committed.

    Stage again; the store does so by itself.
    """


class UntrustedContentError(LineageError):
    """Loading this content would run a pickle; pass ``trust=True`` if you trust it."""


class RunError(LineageError, RuntimeError):
    """A run or step was used in a way its life cycle does not allow."""


class StoreError(LineageError):
    """The store cannot be opened, grown or written."""


class PromotionBlocked(LineageError):
    """A stage's policy refused a promotion; ``failures`` lists each failed check."""

    def __init__(self, message: str, *, failures: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.failures = failures


class RefConflict(LineageError):
    """A ref on a remote moved since it was read, or names other content; nothing was
    overwritten. ``ref`` is the ref (``"model@v1"``, ``"model@production"``, a tag);
    ``ours`` and ``theirs`` the digests each side names (``None``: unset or unknown)."""

    def __init__(self, message: str, *, ref: str | None = None, ours: Digest | None = None,
                 theirs: Digest | None = None) -> None:
        super().__init__(message)
        self.ref = ref
        self.ours = ours
        self.theirs = theirs


class RemoteError(LineageError):
    """A remote cannot be reached or used."""


class InvalidRemote(RemoteError, ValueError):
    """A remote's name, URL or storage options are unusable."""


class RemoteNotFound(RemoteError, LookupError):
    """No remote of that name is configured in the store."""


class ServeError(LineageError, OSError):
    """The web view cannot listen on the address it was given."""


class MissingDependency(LineageError, ImportError):
    """An optional package a call needs is not installed; the message says what to install."""
