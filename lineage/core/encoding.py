"""Canonical msgpack: one byte string per value, the same on every machine.

Rules (a change to any of them changes digests, which ``tests/test_pinned_digests.py`` catches):

- ``None``, ``bool``, ``str`` and ``bytes`` are msgpack's own types.
- ``int`` is always a msgpack integer, never a float; integers beyond 64 bits use extension
  type 2 (two's complement, big-endian, minimal length).
- ``float`` is always a 64-bit float; every NaN becomes one quiet NaN and ``-0.0`` becomes
  ``0.0``, so values that compare equal encode equal.
- ``list`` and ``tuple`` are msgpack arrays (a tuple decodes as a list).
- ``dict`` is a map whose keys (``str``, ``int``, ``bytes``) are sorted: integers first by
  value, then strings by their UTF-8 bytes, then bytes.
- :class:`~lineage.core.hashing.Digest` is extension type 1 holding the 16 raw bytes.

Anything else raises :class:`~lineage.errors.UnsupportedValue`. Records prepend a type tag
(see :mod:`lineage.core.records`), so a record and a blob never share a meaning.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any, Final

import msgpack

from lineage.core.hashing import DIGEST_SIZE, Digest, digest_bytes, unchecked_digest
from lineage.errors import CorruptRecordError, UnsupportedValue

__all__ = ["as_digest", "as_text", "decode", "decode_fields", "digest_of", "encode",
           "normalize"]

EXT_DIGEST: Final = 1
EXT_BIGINT: Final = 2
_INT64_MIN: Final = -(2**63)
_UINT64_MAX: Final = 2**64 - 1
_CANONICAL_NAN: Final = struct.unpack(">d", b"\x7f\xf8\x00\x00\x00\x00\x00\x00")[0]
_KEY_RANK: Final = {int: 0, str: 1, bytes: 2, Digest: 2}


def _key_order(key: Any) -> tuple[int, Any]:
    kind = type(key)
    if kind is str:
        return (1, key.encode("utf-8", "surrogatepass"))
    rank = _KEY_RANK.get(kind)
    if rank is None:
        raise UnsupportedValue(
            f"map keys must be str, int or bytes, got {kind.__name__} ({key!r}); "
            "convert the key to a string first"
        )
    return (rank, bytes(key) if rank == 2 else key)


def _float(value: float) -> float:
    if value != value:
        return float(_CANONICAL_NAN)
    return 0.0 if value == 0.0 else value


def _bigint(value: int) -> msgpack.ExtType:
    length = (value.bit_length() + 8) // 8
    return msgpack.ExtType(EXT_BIGINT, value.to_bytes(length, "big", signed=True))


def normalize(value: Any) -> Any:
    """Return ``value`` in the shape :func:`encode` packs: sorted maps, canonical floats.

    Raises:
        UnsupportedValue: for a type with no canonical encoding.
    """
    kind = type(value)
    if kind is str or kind is bytes or kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _UINT64_MAX else _bigint(value)
    if kind is float:
        return _float(value)
    if kind is Digest:
        return msgpack.ExtType(EXT_DIGEST, bytes(value))
    if kind is dict:
        if all(type(k) is str for k in value):  # UTF-8 byte order is code point order
            return {k: normalize(value[k]) for k in sorted(value)}
        try:
            keys = sorted(value, key=_key_order)
        except TypeError as exc:  # mixed key kinds that compare badly cannot happen; guard anyway
            raise UnsupportedValue(f"map keys cannot be ordered: {exc}") from None
        return {
            (k if type(k) is not Digest else bytes(k)): normalize(value[k]) for k in keys
        }
    if kind is list or kind is tuple:
        return [normalize(item) for item in value]
    return _normalize_subclass(value)


def _normalize_subclass(value: Any) -> Any:
    # Subclasses of the plain types (IntEnum, str enums, numpy scalars are not) are
    # taken as their base value; everything else is refused.
    for base, convert in _BASES:
        if isinstance(value, base):
            return normalize(convert(value))
    raise UnsupportedValue(
        f"cannot encode a value of type {type(value).__module__}.{type(value).__qualname__}; "
        "use str, int, float, bool, None, bytes, lists and dicts of them, or add it as an "
        "artifact"
    )


_BASES: Final[tuple[tuple[type, Callable[[Any], Any]], ...]] = (
    (bool, bool),
    (int, int),
    (float, float),
    (str, str),
    (bytes, bytes),
    (bytearray, bytes),
    (memoryview, bytes),
    (dict, dict),
    (list, list),
    (tuple, list),
)

_packer_options: Final = {"use_bin_type": True, "use_single_float": False, "autoreset": True}


def encode(value: Any) -> bytes:
    """The canonical msgpack bytes of ``value``.

    Raises:
        UnsupportedValue: for a type with no canonical encoding, or a str that is not
            valid Unicode.
    """
    try:
        packed: bytes = msgpack.packb(normalize(value), **_packer_options)
        return packed
    except UnicodeEncodeError as exc:
        raise UnsupportedValue(f"string is not valid Unicode: {exc.reason}") from None
    except (OverflowError, ValueError) as exc:
        raise UnsupportedValue(f"cannot encode value: {exc}") from None
    except RecursionError:
        raise UnsupportedValue(
            "cannot encode value: it contains itself or is nested too deeply "
            "(msgpack allows 511 levels)"
        ) from None


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_DIGEST:
        if len(data) != DIGEST_SIZE:
            raise CorruptRecordError(f"a digest is {DIGEST_SIZE} bytes, got {len(data)}")
        return unchecked_digest(data)
    if code == EXT_BIGINT:
        return int.from_bytes(data, "big", signed=True)
    raise CorruptRecordError(f"unknown msgpack extension type {code}")


def decode(data: bytes | memoryview) -> Any:
    """Decode canonical msgpack bytes back to Python values (arrays become lists).

    Raises:
        CorruptRecordError: when ``data`` is not a single valid msgpack value.
    """
    try:
        return msgpack.unpackb(
            data, raw=False, strict_map_key=False, ext_hook=_ext_hook, use_list=True
        )
    except CorruptRecordError:
        raise
    except Exception as exc:  # msgpack raises several unrelated types on bad input
        raise CorruptRecordError(f"stored bytes are not valid msgpack: {exc}") from None


NUMBER: Final = (int, float)


def decode_fields(data: bytes | memoryview, kinds: tuple[type | tuple[type, ...], ...],
                  what: str) -> list[Any]:
    """Decode stored bytes holding a list of ``len(kinds)`` values, each of exactly its
    kind (``NUMBER`` for an int or a float; a bool is neither).

    Raises:
        CorruptRecordError: the bytes are not such a list; the message names ``what``.
    """
    try:
        value = decode(data)
    except CorruptRecordError as exc:
        raise CorruptRecordError(f"{what} is malformed: {exc}; run `lineage verify`") from None
    if type(value) is list and len(value) == len(kinds) and all(
        type(item) in (kind if isinstance(kind, tuple) else (kind,))
        for item, kind in zip(value, kinds, strict=True)
    ):
        return value
    raise CorruptRecordError(f"{what} is malformed; run `lineage verify`")


def as_digest(raw: Any, what: str) -> Digest:
    """``raw`` (stored bytes) as a :class:`Digest`.

    Raises:
        CorruptRecordError: ``raw`` is not 16 bytes; the message names ``what`` it was.
    """
    if isinstance(raw, bytes | bytearray | memoryview) and len(raw) == DIGEST_SIZE:
        return Digest(raw)
    shown = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
    raise CorruptRecordError(f"{what} is damaged: a digest is {DIGEST_SIZE} bytes, found "
                             f"{shown}; run `lineage verify`")


def as_text(raw: bytes, what: str) -> str:
    """Stored bytes (a key part) as text.

    Raises:
        CorruptRecordError: they are not UTF-8; the message names ``what`` they were.
    """
    try:
        return bytes(raw).decode()
    except UnicodeDecodeError:
        raise CorruptRecordError(f"{what} is damaged: {bytes(raw)[:60]!r} is not UTF-8 text; "
                                 "run `lineage verify`") from None


def digest_of(value: Any) -> Digest:
    """Digest of the canonical encoding of ``value``."""
    return digest_bytes(encode(value))


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is an int or a finite float (not bool)."""
    return type(value) is int or (type(value) is float and math.isfinite(value))
