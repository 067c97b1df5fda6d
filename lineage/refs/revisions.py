"""Names and revisions: validating ``name``, parsing and resolving ``"model@v1.1~2"``.

Grammar (DESIGN.md §4)::

    revision := base ("~" N)?
    base     := digest-or-prefix        32 hex chars, or a unique prefix of >= 6
              | name                    latest version under that name
              | name "@" version        a version under that name
              | name "@" stage          a stage or alias (production, staging, ...)
              | tag                     a global tag
    N        := decimal, "~N" steps N versions back under the same name

A name is 1-200 characters of letters, digits and ``._-``, not starting with ``-`` or ``.``,
and never all-hex of 6 or more characters (that would shadow a digest prefix).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

from lineage.core.hashing import DIGEST_SIZE, Digest, is_hex
from lineage.core.records import Artifact, Run
from lineage.errors import (
    AmbiguousRevision,
    CorruptRecordError,
    InvalidName,
    InvalidRevision,
    LineageError,
    RevisionNotFound,
)
from lineage.storage import schema
from lineage.storage.base import ReadTxn

__all__ = ["Revision", "check_name", "known_names", "parse_revision", "resolve", "resolve_record",
           "suggest"]

MAX_NAME: Final = 200
MIN_PREFIX: Final = 6
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
_MAX_REVISION: Final = 1024
_MAX_BACK_DIGITS: Final = 9


def check_name(text: object, what: str = "name") -> str:
    """Return ``text`` if it is a valid name; raise :class:`InvalidName` saying why not."""
    if not isinstance(text, str):
        raise InvalidName(f"{what} must be a string, got {type(text).__name__}")
    if not text:
        raise InvalidName(f"{what} is empty; use 1-{MAX_NAME} letters, digits or ._-")
    if len(text) > MAX_NAME:
        raise InvalidName(f"{what} is {len(text)} characters long; the limit is {MAX_NAME}")
    if _NAME.fullmatch(text) is None:
        bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c in "._-"))), None)
        if bad is not None:
            raise InvalidName(
                f"{what} {text!r} contains {bad!r}; use only letters, digits and ._- "
                "(@ ~ / : and whitespace are reserved)"
            )
        raise InvalidName(f"{what} {text!r} must not start with '-' or '.'")
    if len(text) >= MIN_PREFIX and is_hex(text.lower()):
        raise InvalidName(
            f"{what} {text!r} is all hex and would shadow a digest prefix; add a letter "
            "outside a-f or a separator"
        )
    return text


class Revision(NamedTuple):
    """A parsed revision string."""

    text: str
    base: str
    at: str | None
    back: int

    @property
    def is_digest_prefix(self) -> bool:
        """Whether the base is read as a digest (prefix)."""
        return self.at is None and len(self.base) >= MIN_PREFIX and is_hex(self.base.lower())


def parse_revision(text: object) -> Revision:
    """Parse a revision string exactly as given (nothing is trimmed).

    Raises:
        InvalidRevision: the text is malformed (whitespace, a bad ``~N``, a stray ``@``).
    """
    if not isinstance(text, str):
        raise InvalidRevision(f"a revision must be a string, got {type(text).__name__}")
    if not text:
        raise InvalidRevision("empty revision; give a name, name@version, tag or digest")
    if len(text) > _MAX_REVISION:
        raise InvalidRevision(f"revision is {len(text)} characters long; the limit is "
                              f"{_MAX_REVISION}")
    bad = next((c for c in text if c.isspace() or not c.isprintable()), None)
    if bad is not None:
        raise InvalidRevision(f"bad revision {text!r}: it contains {bad!r}; revisions never "
                              "hold whitespace or control characters")
    rest, back = text, 0
    while "~" in rest:
        rest, _, count = rest.rpartition("~")
        if not count.isascii() or not count.isdigit() or not rest or len(count) > _MAX_BACK_DIGITS:
            raise InvalidRevision(f"bad revision {text!r}: '~' must be followed by a number "
                                  f"of at most {_MAX_BACK_DIGITS} digits")
        back += int(count)
    base, sep, at = rest.partition("@")
    if sep and not at:
        raise InvalidRevision(f"bad revision {text!r}: nothing after '@'")
    if len(base) >= MIN_PREFIX and is_hex(base.lower()) and not sep:
        if len(base) > 2 * DIGEST_SIZE:
            raise InvalidRevision(f"bad revision {text!r}: a digest has 32 hex characters")
        return Revision(text, base.lower(), None, back)
    try:
        check_name(base)
        if sep:
            check_name(at, "version or stage")
    except InvalidName as exc:
        raise InvalidRevision(f"bad revision {text!r}: {exc}") from None
    return Revision(text, base, at if sep else None, back)


def resolve(txn: ReadTxn, text: object) -> tuple[Digest, str | None, str | None]:
    """Resolve a revision to ``(record digest, name, version)`` (name/version when known).

    Raises:
        InvalidRevision: malformed text.
        RevisionNotFound: nothing matches; the message suggests the nearest names.
        AmbiguousRevision: a digest prefix matches several records.
    """
    revision = parse_revision(text)
    digest, name, version = _resolve_base(txn, revision)
    if revision.back == 0:
        return digest, name, version
    if name is None:
        raise RevisionNotFound(
            f"cannot go back ~{revision.back} from {revision.text!r}: it has no version "
            "history; use name@version~N"
        )
    entries = list(schema.versions(txn, name))
    position = _position_of(entries, version, digest)
    target = position - revision.back
    if target < 0:
        raise RevisionNotFound(
            f"{revision.text!r} goes back {revision.back} versions but {name!r} has only "
            f"{position} before {version!r}"
        )
    chosen = entries[target]
    if schema.version_entry(txn, name, chosen.version) != chosen:
        raise CorruptRecordError(f"{name}: the version index is inconsistent; run "
                                 "`lineage verify`")
    return chosen.target, name, chosen.version


def resolve_record(txn: ReadTxn, revision: str | Digest) -> Artifact | Run:
    """The record ``revision`` names, read (and re-hashed) in ``txn``; an artifact named
    through a version comes back viewed through it (:meth:`Artifact.with_version`).

    Raises:
        InvalidRevision, RevisionNotFound, AmbiguousRevision: as :func:`resolve`.
        IntegrityError: the stored record does not hash to its digest.
    """
    if isinstance(revision, Digest):
        return schema.read_record(txn, revision)
    digest, _name, version = resolve(txn, revision)
    record = schema.read_record(txn, digest)
    if isinstance(record, Artifact) and version is not None:
        return record.with_version(version)
    return record


def _position_of(entries: list[schema.VersionEntry], version: str | None,
                 digest: Digest) -> int:
    for index in range(len(entries) - 1, -1, -1):
        entry = entries[index]
        if (version is not None and entry.version == version) or (
            version is None and entry.target == digest
        ):
            return index
    return len(entries) - 1


def _resolve_base(txn: ReadTxn, revision: Revision) -> tuple[Digest, str | None, str | None]:
    if revision.is_digest_prefix:
        return _resolve_prefix(txn, revision), None, None
    name, at = revision.base, revision.at
    if at is None:
        latest = schema.latest_version(txn, name)
        if latest is not None:
            return latest.target, name, latest.version
        tagged = schema.tag_target(txn, name)
        if tagged is not None:
            tagged_name = _name_of(txn, tagged)
            return tagged, tagged_name, tagged_name and _version_of(txn, tagged_name, tagged)
        raise RevisionNotFound(_not_found(txn, revision))
    entry = schema.version_entry(txn, name, at)
    if entry is not None:
        return entry.target, name, entry.version
    staged = schema.stage_target(txn, name, at)
    if staged is not None:
        return staged, name, _version_of(txn, name, staged)
    raise RevisionNotFound(_not_found(txn, revision))


def _name_of(txn: ReadTxn, digest: Digest) -> str | None:
    try:
        record = schema.read_record(txn, digest)
    except LineageError:
        return None
    return record.name if isinstance(record, Artifact) else None


def _version_of(txn: ReadTxn, name: str, digest: Digest) -> str | None:
    for entry in schema.versions(txn, name, reverse=True):
        if entry.target == digest:
            return entry.version
    return None


def _resolve_prefix(txn: ReadTxn, revision: Revision) -> Digest:
    text = revision.base
    matches = schema.digests_with_prefix(txn, text, limit=6)
    if not matches and len(text) == 2 * DIGEST_SIZE:
        by_id = schema.run_by_id(txn, text)  # a run's id (32 hex characters) names it too
        if by_id is not None:
            return by_id
    if not matches:
        raise RevisionNotFound(
            f"no artifact or run has a digest starting with {text!r}; "
            "`lineage log` or `lineage runs` lists what the store holds"
        )
    if len(matches) > 1:
        listed = ", ".join(m.hex()[:16] for m in matches[:5])
        raise AmbiguousRevision(
            f"digest prefix {text!r} matches {len(matches) if len(matches) < 6 else '6+'} "
            f"records ({listed}); give more characters"
        )
    return matches[0]


def known_names(txn: ReadTxn) -> list[str]:
    """Every name with versions, and every tag."""
    names = set(schema.versioned_names(txn))
    names.update(tag for tag, _target in schema.all_tags(txn))
    return sorted(names)


def suggest(txn: ReadTxn, name: str, what: str = "name or tag") -> str:
    """``no {what} {name!r}`` with the nearest known names, for error messages."""
    names = known_names(txn)
    from difflib import get_close_matches

    near = get_close_matches(name, names, n=3, cutoff=0.5)
    if near:
        return f"no {what} {name!r}; did you mean {', '.join(near)}?"
    if names:
        return f"no {what} {name!r}; known names: {', '.join(names[:8])}"
    return f"no {what} {name!r}: the store has no named artifacts yet"


def _not_found(txn: ReadTxn, revision: Revision) -> str:
    if revision.at is not None:
        choices = schema.version_labels(txn, revision.base) + list(
            schema.stages(txn, revision.base))
        if choices:
            from difflib import get_close_matches

            near = get_close_matches(revision.at, choices, n=3, cutoff=0.4)
            hint = near or sorted(choices)[-3:]
            return (
                f"{revision.base!r} has no version or stage {revision.at!r}; "
                f"did you mean {', '.join(f'{revision.base}@{c}' for c in hint)}?"
            )
    return suggest(txn, revision.base)
