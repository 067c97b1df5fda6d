"""Canonical encoding: one byte string per value, the same everywhere, pinned by digest."""

from __future__ import annotations

import datetime
import decimal
import enum
import math
import struct
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lineage.core import encoding
from lineage.core.encoding import decode, digest_of, encode
from lineage.core.hashing import Digest, digest_bytes
from lineage.core.records import decode_record
from lineage.errors import CorruptRecordError, UnsupportedValue

digests = st.binary(min_size=16, max_size=16).map(Digest)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
    | digests
)
keys = (
    st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.text(max_size=4)
    | st.binary(max_size=4)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(keys, inner, max_size=4),
    max_leaves=16,
)


def reordered(value: Any) -> Any:
    """A structurally equal copy whose dicts were built in reverse insertion order."""
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list | tuple):
        return type(value)(reordered(v) for v in value)
    return value


def plain(value: Any) -> Any:
    """What decoding should give back: tuples as lists, -0.0 as 0.0, Digest keys as bytes."""
    if isinstance(value, dict):
        return {(bytes(k) if type(k) is Digest else k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if type(value) is float and value == 0.0:
        return 0.0
    return value


def assert_same(actual: Any, expected: Any) -> None:
    """Equal with exact types (1 is not 1.0 nor True), NaN equal to NaN, sign of zero kept."""
    assert type(actual) is type(expected), (actual, expected)
    if isinstance(expected, dict):
        assert set(actual) == set(expected)
        for key in expected:
            assert_same(actual[key], expected[key])
    elif isinstance(expected, list):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected, strict=True):
            assert_same(a, e)
    elif isinstance(expected, float):
        assert struct.pack(">d", actual) == struct.pack(">d", expected) or (
            math.isnan(actual) and math.isnan(expected)
        )
    else:
        assert actual == expected


@given(values)
def test_equal_values_encode_to_equal_bytes_whatever_the_dict_order(value: Any) -> None:
    assert encode(reordered(value)) == encode(value)
    assert digest_of(reordered(value)) == digest_of(value)


@given(values)
def test_encoding_round_trips(value: Any) -> None:
    data = encode(value)
    back = decode(data)
    assert_same(back, plain(value))
    assert encode(back) == data


@given(st.integers())
def test_ints_never_become_floats(number: int) -> None:
    back = decode(encode(number))
    assert type(back) is int and back == number
    if abs(number) < 2**53:
        assert encode(number) != encode(float(number))
    assert encode(number) != encode(bool(number))


@given(st.integers(min_value=0, max_value=2**52 - 1), st.booleans())
def test_every_nan_encodes_the_same(payload: int, negative: bool) -> None:
    bits = 0x7FF0_0000_0000_0000 | (payload or 1) | (1 << 63 if negative else 0)
    nan = struct.unpack(">d", struct.pack(">Q", bits))[0]
    assert math.isnan(nan)
    assert encode(nan) == encode(float("nan"))
    assert encode([nan, {"x": nan}]) == encode([math.nan, {"x": -math.nan}])


def test_negative_zero_encodes_as_zero() -> None:
    assert encode(-0.0) == encode(0.0)
    assert math.copysign(1.0, decode(encode(-0.0))) == 1.0
    assert encode({"x": [-0.0]}) == encode({"x": [0.0]})


@given(st.lists(values, max_size=4))
def test_tuples_encode_as_lists(items: list[Any]) -> None:
    assert encode(tuple(items)) == encode(items)
    assert type(decode(encode(tuple(items)))) is list


def test_map_keys_are_sorted_ints_then_strings_by_utf8_then_bytes() -> None:
    value = {b"k": 1, "é": 2, "b": 3, 3: 4, "a": 5, -1: 6, b"a": 7}
    assert list(decode(encode(value))) == [-1, 3, "a", "b", "é", b"a", b"k"]
    assert encode(value).hex() == "87ff060304a16105a16203a2c3a902c4016107c4016b01"


def test_digests_are_an_extension_type_and_come_back_as_digests() -> None:
    digest = digest_bytes(b"content")
    back = decode(encode({"d": digest, "raw": bytes(digest)}))
    assert type(back["d"]) is Digest and back["d"] == digest
    assert type(back["raw"]) is bytes
    assert encode(digest) != encode(bytes(digest))


def test_big_ints_round_trip_beyond_64_bits() -> None:
    for number in (2**64, -(2**63) - 1, 10**40, -(10**40), 2**64 - 1, -(2**63)):
        assert decode(encode(number)) == number
    assert encode(2**64).hex() == "c70902010000000000000000"


def test_subclasses_of_plain_types_encode_as_their_base() -> None:
    class Level(enum.IntEnum):
        HIGH = 3

    class Label(str):
        pass

    assert encode(Level.HIGH) == encode(3)
    assert encode(Label("x")) == encode("x")
    assert encode(bytearray(b"ab")) == encode(b"ab")
    assert encode(True) != encode(1)


def _self_containing() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        frozenset({1}),
        object(),
        1j,
        decimal.Decimal("1.5"),
        datetime.date(2024, 1, 1),
        {(1, 2): "tuple key"},
        {1.5: "float key"},
        {None: "none key"},
        {True: "bool key"},
        {"ok": {"nested": {3}}},
        "\ud800",  # a lone surrogate is not valid Unicode
        {"\ud800": 1},
        _self_containing(),
        _nested(600),
        _nested(5000),
    ],
    ids=lambda v: type(v).__name__,
)
def test_values_without_a_canonical_encoding_raise_unsupported_value(value: Any) -> None:
    with pytest.raises(UnsupportedValue):
        encode(value)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xc1",  # never used by msgpack
        b"\x92\x01",  # array of 2 with 1 item
        b"\xa5abc",  # truncated string
        b"\x01\x02",  # trailing bytes
        b"\xd4\x09\x00",  # unknown extension type 9
        b"\xd5\x01\x00\x00",  # a digest extension of the wrong length
        b"\x81\x90\x01",  # a map whose key is an array (unhashable)
        b"\x91" * 100_000,  # nesting far too deep
        b"\xa2\xff\xfe",  # invalid UTF-8 string
    ],
)
def test_decoding_garbage_raises_corrupt_record_error(data: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        decode(data)


@given(st.binary(max_size=64))
def test_decoding_any_bytes_returns_or_raises_corrupt_record_error(data: bytes) -> None:
    try:
        decode(data)
    except CorruptRecordError:
        pass


@given(values.filter(lambda v: len(encode(v)) > 1), st.data())
def test_truncated_encodings_raise_corrupt_record_error(value: Any, data: st.DataObject) -> None:
    encoded = encode(value)
    cut = data.draw(st.integers(min_value=0, max_value=len(encoded) - 1))
    with pytest.raises(CorruptRecordError):
        decode(encoded[:cut])


@pytest.mark.parametrize(
    "data",
    [encode(None), encode([1, 2]), encode(["lineage/artifact", 99, {}]),
     encode(["lineage/unknown", 1, {}]), encode(["lineage/artifact", 1, {"nope": 1}]), b"\xc1"],
)
def test_decoding_a_malformed_record_raises_corrupt_record_error(data: bytes) -> None:
    with pytest.raises(CorruptRecordError):
        decode_record(data)


@given(st.dictionaries(st.text(alphabet=st.characters(codec=None)), st.integers(), max_size=8))
def test_str_keys_are_ordered_by_their_utf8_bytes(mapping: dict[str, int]) -> None:
    """The all-str fast path sorts as the general rule does: by UTF-8 (surrogatepass) bytes."""
    keys = list(encoding.normalize(mapping))
    assert keys == sorted(mapping, key=lambda k: k.encode("utf-8", "surrogatepass"))


def test_decoded_records_have_every_field_as_encoded() -> None:
    """Records are rebuilt through their slots when every encoded field is present: each
    field must come back as it was (equality alone compares digests only)."""
    from lineage.core.records import Artifact, Run

    artifact = Artifact(kind="model", name="m", blob=digest_bytes(b"x"), format="sklearn-state",
                        size=3, summary={"class": "C"}, meta={"origin": "o"},
                        parents=(digest_bytes(b"p"),))
    run = Run(op="train", id="r1", inputs={"data": artifact.raw_digest}, params={"C": 0.5},
              metrics={"auc": 0.9}, metric_datasets={"auc": artifact.raw_digest},
              code=digest_bytes(b"c"), environment=digest_bytes(b"e"), status="failed",
              error={"type": "E"}, started=1.0, ended=2.0, parent="r0",
              call_key=digest_bytes(b"k"), label="first", meta={"note": "n"})
    for record in (artifact, run):
        back = decode_record(record.encode(), record.raw_digest)
        assert type(back) is type(record)
        for name in record.FIELDS:
            assert getattr(back, name) == getattr(record, name), name
