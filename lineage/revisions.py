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

import difflib
import re
from dataclasses import dataclass
from typing import Final

from .errors import AmbiguousRevision, InvalidName, InvalidRevision, RevisionNotFound
from .hashing import DIGEST_SIZE, Digest, is_hex
from .stores.base import ReadTxn

__all__ = ["Revision", "check_name", "parse_revision", "resolve"]

MAX_NAME: Final = 200
MIN_PREFIX: Final = 6
_NAME: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,199}")
_SEQ: Final = 8


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


@dataclass(frozen=True, slots=True)
class Revision:
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
    """Parse a revision string; raise :class:`InvalidRevision` if it is malformed."""
    if not isinstance(text, str):
        raise InvalidRevision(f"a revision must be a string, got {type(text).__name__}")
    rest, back = text.strip(), 0
    if not rest:
        raise InvalidRevision("empty revision; give a name, name@version, tag or digest")
    while "~" in rest:
        rest, _, count = rest.rpartition("~")
        if not count.isdigit() or not rest:
            raise InvalidRevision(f"bad revision {text!r}: '~' must be followed by a number")
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


def seq_key(name: str, seq: int) -> bytes:
    """Key of version number ``seq`` under ``name`` in the versions namespace."""
    return name.encode() + b"\0" + seq.to_bytes(_SEQ, "big")


def name_key(name: str, part: str = "") -> bytes:
    """``name \\0 part`` as a key."""
    return name.encode() + b"\0" + part.encode()


def resolve(txn: ReadTxn, text: object) -> tuple[Digest, str | None, str | None]:
    """Resolve a revision to ``(record digest, name, version)`` (name/version when known).

    Raises:
        InvalidRevision: malformed text.
        RevisionNotFound: nothing matches; the message suggests the nearest names.
        AmbiguousRevision: a digest prefix matches several records.
    """
    from . import encoding

    revision = parse_revision(text)
    digest, name, version = _resolve_base(txn, revision)
    if revision.back == 0:
        return digest, name, version
    if name is None:
        raise RevisionNotFound(
            f"cannot go back ~{revision.back} from {revision.text!r}: it has no version "
            "history; use name@version~N"
        )
    versions = list(txn.items("versions", name_key(name)))
    position = _position_of(versions, version, digest)
    target = position - revision.back
    if target < 0:
        raise RevisionNotFound(
            f"{revision.text!r} goes back {revision.back} versions but {name!r} has only "
            f"{position} before {version!r}"
        )
    found_version, found_target, _time = encoding.decode(versions[target][1])
    return Digest(found_target), name, found_version


def _position_of(
    versions: list[tuple[bytes, bytes]], version: str | None, digest: Digest
) -> int:
    from . import encoding

    for index in range(len(versions) - 1, -1, -1):
        entry_version, entry_target, _time = encoding.decode(versions[index][1])
        if (version is not None and entry_version == version) or (
            version is None and entry_target == digest
        ):
            return index
    return len(versions) - 1


def _resolve_base(txn: ReadTxn, revision: Revision) -> tuple[Digest, str | None, str | None]:
    from . import encoding

    if revision.is_digest_prefix:
        return _resolve_prefix(txn, revision), None, None
    name, at = revision.base, revision.at
    if at is None:
        latest = next(txn.items("versions", name_key(name), reverse=True), None)
        if latest is not None:
            version, target, _time = encoding.decode(latest[1])
            return Digest(target), name, version
        tagged = txn.get("tags", name.encode())
        if tagged is not None:
            return Digest(tagged), _name_of(txn, Digest(tagged)), None
        raise RevisionNotFound(_not_found(txn, revision))
    seq = txn.get("version_keys", name_key(name, at))
    if seq is not None:
        entry = txn.get("versions", name.encode() + b"\0" + seq)
        if entry is None:
            raise RevisionNotFound(f"{name}@{at}: the version index is inconsistent; run "
                                   "`lineage verify`")
        version, target, _time = encoding.decode(entry)
        return Digest(target), name, version
    staged = txn.get("stages", name_key(name, at))
    if staged is not None:
        return Digest(staged), name, _version_of(txn, name, Digest(staged))
    raise RevisionNotFound(_not_found(txn, revision))


def _name_of(txn: ReadTxn, digest: Digest) -> str | None:
    from .records import Artifact, decode_record

    data = txn.get("records", digest)
    if data is None:
        return None
    record = decode_record(data)
    return record.name if isinstance(record, Artifact) else None


def _version_of(txn: ReadTxn, name: str, digest: Digest) -> str | None:
    from . import encoding

    for _key, value in txn.items("versions", name_key(name), reverse=True):
        version, target, _time = encoding.decode(value)
        if target == digest:
            return str(version)
    return None


def _resolve_prefix(txn: ReadTxn, revision: Revision) -> Digest:
    text = revision.base
    even = text[: len(text) // 2 * 2]
    matches = []
    for key, _value in txn.items("records", bytes.fromhex(even)):
        if key.hex().startswith(text):
            matches.append(Digest(key))
            if len(matches) > 5:
                break
    if not matches:
        raise RevisionNotFound(
            f"no artifact or run has a digest starting with {text!r}; "
            "`lineage log` or `lineage runs` lists what the store holds"
        )
    if len(matches) > 1:
        listed = ", ".join(m.hex()[:16] for m in matches[:5])
        raise AmbiguousRevision(
            f"digest prefix {text!r} matches {len(matches)}+ records ({listed}); "
            "give more characters"
        )
    return matches[0]


def known_names(txn: ReadTxn) -> list[str]:
    """Every name with versions, and every tag."""
    names = set()
    for key, _value in txn.items("version_keys"):
        names.add(key.split(b"\0", 1)[0].decode())
    names.update(key.decode() for key, _value in txn.items("tags"))
    return sorted(names)


def _not_found(txn: ReadTxn, revision: Revision) -> str:
    if revision.at is not None:
        choices = [
            k.split(b"\0", 1)[1].decode()
            for ns in ("version_keys", "stages")
            for k, _v in txn.items(ns, name_key(revision.base))
        ]
        if choices:
            near = difflib.get_close_matches(revision.at, choices, n=3, cutoff=0.4)
            hint = near or sorted(choices)[-3:]
            return (
                f"{revision.base!r} has no version or stage {revision.at!r}; "
                f"did you mean {', '.join(f'{revision.base}@{c}' for c in hint)}?"
            )
    names = known_names(txn)
    near = difflib.get_close_matches(revision.base, names, n=3, cutoff=0.5)
    if near:
        return f"no name or tag {revision.base!r}; did you mean {', '.join(near)}?"
    if names:
        return f"no name or tag {revision.base!r}; known names: {', '.join(names[:8])}"
    return f"no name or tag {revision.base!r}: the store has no named artifacts yet"
