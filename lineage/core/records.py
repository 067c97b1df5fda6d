"""The immutable records of a store: Artifact, Run, and ref history entries.

Each record encodes canonically as ``[type tag, schema version, {field: value}]`` (taken
apart and checked field by field by :mod:`lineage.core.recordform`) and is identified by
the XXH3-128 digest of those bytes. Fields that are views rather than content
(an artifact's ``version`` as resolved through a ref) are not encoded and not part of the
identity.
"""

from __future__ import annotations

from typing import Any, ClassVar, Final, TypeVar

from lineage.core import encoding
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.plain import iso_time, jsonable
from lineage.core.recordform import (
    ARTIFACT_FIELDS,
    ARTIFACT_TAG,
    REF_FIELDS,
    REF_TAG,
    RUN_FIELDS,
    RUN_TAG,
    SCHEMA,
    check_fields,
    split_record,
)
from lineage.errors import CorruptRecordError

__all__ = ["Artifact", "Record", "RefEntry", "Run", "decode_record", "encoded_with_digest"]

T = TypeVar("T")
_set = object.__setattr__  # how __init__ fills the slots of an immutable record


class _Immutable:
    """Base of the record classes: slots set once by ``__init__``, read-only afterwards,
    pickled and copied by their field values.

    Written out rather than made with ``dataclasses``: importing that module (it imports
    ``inspect``, ``ast``, ``dis``...) costs a fresh process ~6 ms, and nearly every command
    and script reads a record.
    """

    __slots__ = ()
    #: The constructor's parameters, in order: every slot.
    FIELDS: ClassVar[tuple[str, ...]] = ()

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} records are immutable; make a changed "
                             "copy with .replace(...)")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} records are immutable")

    def __reduce__(self) -> tuple[Any, ...]:
        return type(self), tuple(getattr(self, name) for name in self.FIELDS)

    def __setstate__(self, state: list[Any]) -> None:
        """Fill a record pickled by an earlier lineage, whose records were slotted
        dataclasses: those pickled the list of their field values, in this order (fields
        added since, at the end, take their defaults)."""
        fresh = type(self)(*state)
        for name in self.FIELDS:
            _set(self, name, getattr(fresh, name))

    def replace(self: T, **changes: Any) -> T:
        """A copy with ``changes`` applied (a changed record has its own digest)."""
        values = {name: getattr(self, name) for name in type(self).FIELDS}  # type: ignore[attr-defined]
        unknown = changes.keys() - values.keys()
        if unknown:
            raise TypeError(f"{type(self).__name__} has no field {sorted(unknown)[0]!r}")
        values.update({"_digest": None} if "_digest" in values else {}, **changes)
        return type(self)(**values)


class Artifact(_Immutable):
    """An immutable piece of content with what was learned about it at log time.

    ``blob`` is the digest of the stored bytes (``None`` for values kept inline in
    ``summary``); ``parents`` are artifacts it was declared ``derived_from`` without a run.
    ``version`` is not part of its identity: the version it was resolved through, if any.
    """

    TAG: ClassVar[str] = ARTIFACT_TAG
    FIELDS: ClassVar[tuple[str, ...]] = ("kind", "name", "blob", "format", "size", "summary",
                                         "meta", "parents", "version", "_digest")
    __slots__ = FIELDS

    kind: str
    name: str | None
    blob: Digest | None
    format: str
    size: int
    summary: dict[str, Any]
    meta: dict[str, Any]
    parents: tuple[Digest, ...]
    version: str | None
    _digest: Digest | None

    def __init__(self, kind: str, name: str | None = None, blob: Digest | None = None,
                 format: str = "bytes", size: int = 0,  # noqa: A002 - the field's name
                 summary: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                 parents: tuple[Digest, ...] = (), version: str | None = None,
                 _digest: Digest | None = None) -> None:
        _set(self, "kind", kind)
        _set(self, "name", name)
        _set(self, "blob", blob)
        _set(self, "format", format)
        _set(self, "size", size)
        _set(self, "summary", {} if summary is None else summary)
        _set(self, "meta", {} if meta is None else meta)
        _set(self, "parents", parents)
        _set(self, "version", version)
        _set(self, "_digest", _digest)

    def content(self) -> dict[str, Any]:
        """The encoded fields (identity)."""
        return {
            "kind": self.kind,
            "name": self.name,
            "blob": self.blob,
            "format": self.format,
            "size": self.size,
            "summary": self.summary,
            "meta": self.meta,
            "parents": list(self.parents),
        }

    @property
    def digest(self) -> str:
        """The record's digest as 32 hex characters."""
        return self.raw_digest.hex()

    @property
    def raw_digest(self) -> Digest:
        """The record's digest as a :class:`Digest`."""
        return _digest_of(self)

    def encode(self) -> bytes:
        """Canonical bytes of this record."""
        return encoding.encode([self.TAG, SCHEMA, self.content()])

    def with_version(self, version: str | None) -> Artifact:
        """This artifact viewed through ``version`` (same identity)."""
        return self.replace(version=version, _digest=self._digest)

    @property
    def content_key(self) -> bytes:
        """Bytes equal for two artifacts holding the same content, whatever their kind,
        name or format: the adapter's identity (``summary["identity"]``: a CSV file and
        the DataFrame read from it share it), else the stored blob's digest, else the
        record's own digest."""
        identity = self.summary.get("identity")
        if isinstance(identity, bytes):
            return b"i" + identity
        if self.blob is not None:
            return b"b" + self.blob
        return b"r" + self.raw_digest

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"type": "artifact", "digest", "kind", "name", "version",
        "format", "size", "blob", "parents", "meta", "summary"}``; digests as 32 hex
        characters (``blob`` ``None`` for an inline value), bytes in ``summary`` as hex,
        floats that are not finite as ``"nan"``/``"inf"``/``"-inf"``."""
        return {
            "type": "artifact",
            "digest": self.digest,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "format": self.format,
            "size": self.size,
            "blob": None if self.blob is None else self.blob.hex(),
            "parents": [p.hex() for p in self.parents],
            "meta": jsonable(self.meta),
            "summary": jsonable(self.summary),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Artifact) and other.raw_digest == self.raw_digest

    def __hash__(self) -> int:
        return hash(self.raw_digest)

    def __repr__(self) -> str:
        label = self.name or "?"
        if self.version:
            label += f"@{self.version}"
        return f"<Artifact {self.kind} {label} {self.digest[:12]} {self.size} bytes>"

    def _repr_html_(self) -> str:
        from lineage.core.display import artifact_html

        return artifact_html(self)


class Run(_Immutable):
    """One execution: what it read, what it was told, what it made, and how it ended.

    ``op`` is the operation (a step, a ``store.run`` block, a ``lineage run`` command): the
    name a run goes by, so ``run.name`` is its ``op``. ``label`` optionally names this one
    execution (``store.run("train", label="baseline")``).
    """

    TAG: ClassVar[str] = RUN_TAG
    FIELDS: ClassVar[tuple[str, ...]] = (
        "op", "id", "inputs", "outputs", "params", "metrics", "metric_datasets", "code",
        "environment", "status", "error", "started", "ended", "parent", "call_key", "label",
        "meta", "_digest")
    __slots__ = FIELDS
    version: ClassVar[None] = None
    kind: ClassVar[str] = "run"

    op: str
    id: str
    inputs: dict[str, Digest]
    outputs: dict[str, Digest]
    params: dict[str, Any]
    metrics: dict[str, float]
    #: metric name -> the dataset artifact it was measured on
    metric_datasets: dict[str, Digest]
    code: Digest | None
    environment: Digest | None
    status: str
    error: dict[str, str] | None
    started: float
    ended: float
    parent: str | None
    call_key: Digest | None
    label: str | None
    meta: dict[str, Any]
    _digest: Digest | None

    def __init__(  # noqa: PLR0913 - one parameter per field
        self, op: str, id: str,  # noqa: A002 - the field's name
        inputs: dict[str, Digest] | None = None, outputs: dict[str, Digest] | None = None,
        params: dict[str, Any] | None = None, metrics: dict[str, float] | None = None,
        metric_datasets: dict[str, Digest] | None = None, code: Digest | None = None,
        environment: Digest | None = None, status: str = "ok",
        error: dict[str, str] | None = None, started: float = 0.0, ended: float = 0.0,
        parent: str | None = None, call_key: Digest | None = None, label: str | None = None,
        meta: dict[str, Any] | None = None, _digest: Digest | None = None,
    ) -> None:
        _set(self, "op", op)
        _set(self, "id", id)
        _set(self, "inputs", {} if inputs is None else inputs)
        _set(self, "outputs", {} if outputs is None else outputs)
        _set(self, "params", {} if params is None else params)
        _set(self, "metrics", {} if metrics is None else metrics)
        _set(self, "metric_datasets", {} if metric_datasets is None else metric_datasets)
        _set(self, "code", code)
        _set(self, "environment", environment)
        _set(self, "status", status)
        _set(self, "error", error)
        _set(self, "started", started)
        _set(self, "ended", ended)
        _set(self, "parent", parent)
        _set(self, "call_key", call_key)
        _set(self, "label", label)
        _set(self, "meta", {} if meta is None else meta)
        _set(self, "_digest", _digest)

    def content(self) -> dict[str, Any]:
        """The encoded fields (identity); ``label`` is encoded under its first name,
        ``"name"``, so that digests never changed."""
        return {key: getattr(self, attribute) for key, attribute in _RUN_FIELDS}

    @property
    def name(self) -> str:
        """The name a run goes by: its operation."""
        return self.op

    @property
    def digest(self) -> str:
        """The record's digest as 32 hex characters."""
        return self.raw_digest.hex()

    @property
    def raw_digest(self) -> Digest:
        """The record's digest as a :class:`Digest`."""
        return _digest_of(self)

    @property
    def duration(self) -> float:
        """Seconds between start and end."""
        return max(0.0, self.ended - self.started)

    def encode(self) -> bytes:
        """Canonical bytes of this record."""
        return encoding.encode([self.TAG, SCHEMA, self.content()])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"type": "run", "digest", "id", "op", "label", "status",
        "started", "ended", "duration", "params", "metrics", "metric_datasets": {metric:
        digest}, "inputs": {name: digest}, "outputs": {name: digest}, "code",
        "environment", "parent", "call_key", "error", "meta"}``; times ISO 8601 UTC, digests
        32 hex characters (or ``None``), params and metrics as logged (a float stays a
        float; non-finite ones as ``"nan"``/``"inf"``/``"-inf"``)."""
        def hexes(mapping: dict[str, Digest]) -> dict[str, str]:
            return {name: digest.hex() for name, digest in sorted(mapping.items())}

        return {
            "type": "run",
            "digest": self.digest,
            "id": self.id,
            "op": self.op,
            "label": self.label,
            "status": self.status,
            "started": iso_time(self.started),
            "ended": iso_time(self.ended),
            "duration": self.duration,
            "params": jsonable(self.params),
            "metrics": jsonable(self.metrics),
            "metric_datasets": hexes(self.metric_datasets),
            "inputs": hexes(self.inputs),
            "outputs": hexes(self.outputs),
            "code": None if self.code is None else self.code.hex(),
            "environment": None if self.environment is None else self.environment.hex(),
            "parent": self.parent,
            "call_key": None if self.call_key is None else self.call_key.hex(),
            "error": jsonable(self.error),
            "meta": jsonable(self.meta),
        }

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.raw_digest == self.raw_digest

    def __hash__(self) -> int:
        return hash(self.raw_digest)

    def __repr__(self) -> str:
        return (
            f"<Run {self.op} {self.status} {self.digest[:12]} started {iso_time(self.started)}"
            f" inputs={sorted(self.inputs)} outputs={sorted(self.outputs)}>"
        )

    def _repr_html_(self) -> str:
        from lineage.core.display import run_html

        return run_html(self)


_RUN_FIELDS: Final = tuple(
    ("name" if name == "label" else name, name) for name in Run.FIELDS if name != "_digest")

Record = Artifact | Run


def _digest_of(record: Artifact | Run) -> Digest:
    cached = record._digest
    if cached is None:
        cached = digest_bytes(record.encode())
        _set(record, "_digest", cached)
    return cached


def encoded_with_digest(record: Artifact | Run) -> tuple[bytes, Digest]:
    """The record's canonical bytes and its digest, encoding it once (what storing a
    record needs; the digest is kept on the record as ``raw_digest`` keeps it)."""
    encoded = record.encode()
    digest = record._digest
    if digest is None:
        digest = digest_bytes(encoded)
        _set(record, "_digest", digest)
    return encoded, digest


_ENCODED_ARTIFACT_FIELDS: Final = frozenset(Artifact(kind="").content())
def _setters(kind: type[_Immutable]) -> tuple[tuple[str, Any], ...]:
    """Each field's slot setter (its member descriptor's ``__set__``), in field order."""
    return tuple((name, vars(kind)[name].__set__) for name in kind.FIELDS)


_ENCODED_RUN_FIELDS: Final = frozenset(
    attribute for _key, attribute in _RUN_FIELDS)  # as decode_record renames them
_ARTIFACT_SETTERS: Final = _setters(Artifact)
_RUN_SETTERS: Final = _setters(Run)


def _from_slots(kind: type[T], setters: tuple[tuple[str, Any], ...], body: dict[str, Any],
                digest: Digest | None) -> T:
    """``kind(**body, _digest=digest)`` for a body holding exactly the encoded fields, set
    through the slots directly: what ``__init__`` does, in half the time (reading small
    records and scanning runs is dominated by this). The fields that are not encoded
    (``version``, ``_digest``) default to ``None``, so they start as ``None`` here too."""
    record = object.__new__(kind)
    for name, setter in setters:
        setter(record, body.get(name) if name != "_digest" else digest)
    return record


class RefEntry(_Immutable):
    """One move of a ref, as kept in a name's append-only history.

    ``ref`` is ``"version"``, ``"stage"`` or ``"tag"``; ``key`` the version, stage or tag
    string; ``target``/``previous`` the record digests after and before (``None`` = unset).
    ``skipped`` lists the promotion checks a forced stage move overrode (empty otherwise).
    """

    FIELDS: ClassVar[tuple[str, ...]] = ("name", "ref", "key", "target", "previous", "time",
                                         "user", "reason", "skipped")
    __slots__ = FIELDS

    name: str
    ref: str
    key: str
    target: Digest | None
    previous: Digest | None
    time: float
    user: str
    reason: str
    skipped: tuple[str, ...]

    def __init__(self, name: str, ref: str, key: str, target: Digest | None,
                 previous: Digest | None, time: float, user: str, reason: str = "",
                 skipped: tuple[str, ...] = ()) -> None:
        for field, value in zip(self.FIELDS, (name, ref, key, target, previous, time, user,
                                              reason, skipped), strict=True):
            _set(self, field, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.FIELDS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RefEntry):
            return NotImplemented
        return other._values() == self._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.FIELDS)
        return f"RefEntry({fields})"

    def encode(self) -> bytes:
        """Canonical bytes of this entry (``skipped`` only when a move overrode checks)."""
        body = dict(zip(self.FIELDS, self._values(), strict=True))
        if not self.skipped:
            del body["skipped"]
        return encoding.encode([REF_TAG, SCHEMA, body])

    @classmethod
    def decode(cls, data: bytes) -> RefEntry:
        """Parse bytes made by :meth:`encode` (``CorruptRecordError`` if malformed)."""
        tag, _schema, body = split_record(data, REF_TAG)
        checked = check_fields(tag, body, REF_FIELDS)
        missing = set(cls.FIELDS) - {"reason", "skipped"} - set(checked)
        if missing:
            raise CorruptRecordError(f"ref history entry lacks {sorted(missing)}")
        return cls(**{**checked, "skipped": tuple(checked.get("skipped", ()))})

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of this entry."""
        return {
            "name": self.name,
            "ref": self.ref,
            "key": self.key,
            "target": self.target.hex() if self.target else None,
            "previous": self.previous.hex() if self.previous else None,
            "time": iso_time(self.time),
            "user": self.user,
            "reason": self.reason,
            "skipped": list(self.skipped),
        }


def decode_record(data: bytes, digest: Digest | None = None) -> Artifact | Run:
    """Rebuild the record encoded in ``data``.

    Raises:
        CorruptRecordError: when ``data`` is not a well-formed record: not msgpack, not a
            tagged record, an unknown field, or a field holding the wrong type.
    """
    try:
        tag, _schema, body = split_record(data)
    except CorruptRecordError as exc:
        if digest is None:
            raise
        raise CorruptRecordError(f"record {digest.hex()}: {exc}") from None
    try:
        if tag == ARTIFACT_TAG:
            body = check_fields(tag, body, ARTIFACT_FIELDS)
            if body.get("size", 0) < 0:
                raise CorruptRecordError(f"{tag} record has a negative size")
            body["parents"] = tuple(body.get("parents", ()))
            if body.keys() == _ENCODED_ARTIFACT_FIELDS:  # every field: skip __init__
                return _from_slots(Artifact, _ARTIFACT_SETTERS, body, digest)
            record: Artifact | Run = Artifact(**body)
        elif tag == RUN_TAG:
            body = check_fields(tag, body, RUN_FIELDS)
            if "name" in body:
                body["label"] = body.pop("name")
            if body.keys() == _ENCODED_RUN_FIELDS:
                return _from_slots(Run, _RUN_SETTERS, body, digest)
            record = Run(**body)
        else:
            raise CorruptRecordError(f"unknown record type {tag!r}")
    except (TypeError, CorruptRecordError) as exc:  # TypeError: a required field is missing
        named = f"record {digest.hex()}: " if digest is not None else ""
        raise CorruptRecordError(f"{named}its fields do not match its type {tag}: {exc}"
                                 ) from None
    if digest is not None:
        object.__setattr__(record, "_digest", digest)
    return record
