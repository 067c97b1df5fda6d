"""The stored form of a record, and what each of its fields may hold.

A record is stored as the canonical encoding of ``[type tag, schema version, {field:
value}]``. :func:`split_record` takes stored bytes apart and :func:`check_fields` checks a
body against its type's field spec, so a record that decodes is well-typed, or the read
raises ``CorruptRecordError`` (never a bare ``TypeError`` later, in a query or a report).
"""

from __future__ import annotations

from typing import Any, Final

from lineage.core import encoding
from lineage.core.hashing import Digest
from lineage.errors import CorruptRecordError

__all__ = ["ARTIFACT_FIELDS", "ARTIFACT_TAG", "REF_FIELDS", "REF_TAG", "RUN_FIELDS", "RUN_TAG",
           "SCHEMA", "Spec", "check_fields", "split_record"]

SCHEMA: Final = 1
ARTIFACT_TAG: Final = "lineage/artifact"
RUN_TAG: Final = "lineage/run"
REF_TAG: Final = "lineage/ref"


def split_record(data: bytes, expected: str | None = None) -> tuple[str, int, dict[str, Any]]:
    """``(tag, schema, body)`` of stored record bytes (of tag ``expected``, when given).

    Raises:
        CorruptRecordError: not msgpack, not ``[tag, schema, {field: value}]``, another
            tag than expected, or a schema this lineage does not read.
    """
    value = encoding.decode(data)
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], str)
        or not isinstance(value[2], dict)
    ):
        raise CorruptRecordError("stored bytes are not a tagged lineage record")
    if expected is not None and value[0] != expected:
        raise CorruptRecordError(f"expected a {expected} record, found {value[0]!r}")
    if type(value[1]) is not int or value[1] != SCHEMA:
        raise CorruptRecordError(
            f"record schema {value[1]!r} is not supported by this lineage (schema {SCHEMA}); "
            "upgrade lineage"
        )
    return value[0], value[1], value[2]


_NONE: Final = type(None)
_NUMBER: Final = (int, float)
#: field -> (the types its value may have, the types a dict's values or a list's items
#: may have, or None when they are free). Map keys are free: the encoding allows str, int
#: and bytes keys, so a legitimate record may hold any of them.
Spec = dict[str, tuple[tuple[type, ...], tuple[type, ...] | None]]

ARTIFACT_FIELDS: Final[Spec] = {
    "kind": ((str,), None), "name": ((str, _NONE), None), "blob": ((Digest, _NONE), None),
    "format": ((str,), None), "size": ((int,), None), "summary": ((dict,), None),
    "meta": ((dict,), None), "parents": ((list,), (Digest,)),
}
RUN_FIELDS: Final[Spec] = {
    "op": ((str,), None), "id": ((str,), None), "inputs": ((dict,), (Digest,)),
    "outputs": ((dict,), (Digest,)), "params": ((dict,), None),
    "metrics": ((dict,), _NUMBER), "metric_datasets": ((dict,), (Digest,)),
    "code": ((Digest, _NONE), None), "environment": ((Digest, _NONE), None),
    "status": ((str,), None), "error": ((dict, _NONE), None), "started": (_NUMBER, None),
    "ended": (_NUMBER, None), "parent": ((str, _NONE), None),
    "call_key": ((Digest, _NONE), None), "name": ((str, _NONE), None),
    "meta": ((dict,), None),
}
REF_FIELDS: Final[Spec] = {
    "name": ((str,), None), "ref": ((str,), None), "key": ((str,), None),
    "target": ((Digest, _NONE), None), "previous": ((Digest, _NONE), None),
    "time": (_NUMBER, None), "user": ((str,), None), "reason": ((str,), None),
    "skipped": ((list,), (str,)),
}


def check_fields(tag: str, body: dict[str, Any], spec: Spec) -> dict[str, Any]:
    """``body`` if every key is a field of ``spec`` holding a value of the right type
    (about 2 µs for a run: this runs for every record read).

    Missing fields take their defaults (records written before a field existed); unknown
    ones, such as ``_digest`` or ``version`` (never encoded), are refused.
    """
    for key, value in body.items():
        field = spec.get(key)
        if field is None:
            raise CorruptRecordError(f"{tag} record has an unknown field {key!r}")
        kinds, members = field
        kind = type(value)
        if kind not in kinds or (members is not None and not all(
                type(item) in members for item in (value.values() if kind is dict
                                                   else value))):
            raise CorruptRecordError(
                f"{tag} record field {key!r} holds a {kind.__name__} that field never holds")
    return body
