from __future__ import annotations

import datetime as dt
import struct
from dataclasses import FrozenInstanceError, dataclass, replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs.errors import DecodeError, EncodeError, GbcsError
from gbcs.primitives import (
    CosemDateTime,
    Reader,
    decode_length,
    encode_length,
    eui64,
    hex_field,
    pack_id8,
    slot_builder,
    slot_twin,
    utc_from_gbz,
    utc_to_gbz,
)
from tests.gbcs.strategies import date_times


@pytest.mark.parametrize(
    ("n", "wire"),
    [
        (0, "00"),
        (0x7F, "7F"),
        (0x80, "8180"),
        (0x91, "8191"),
        (0x1A8, "8201A8"),
        (0x10000, "83010000"),
    ],
)
def test_length_forms(n: int, wire: str) -> None:
    assert encode_length(n).hex().upper() == wire
    assert decode_length(bytes.fromhex(wire)) == (n, len(wire) // 2)


@given(st.integers(0, 0xFFFFFF))
def test_length_roundtrip(n: int) -> None:
    wire = encode_length(n)
    assert decode_length(wire) == (n, len(wire))


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        ("80", "indefinite"),
        ("84000000FF", "exceeds 3"),
        ("817F", "non-minimal"),
        ("820080", "non-minimal"),
        ("82", "truncated"),
    ],
)
def test_length_rejects(wire: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_length(bytes.fromhex(wire))
    assert info.value.offset in (0, 1)


def test_length_too_big_to_encode() -> None:
    with pytest.raises(EncodeError):
        encode_length(1 << 24)
    with pytest.raises(EncodeError):
        encode_length(-1)


def test_reader_offsets_are_absolute() -> None:
    r = Reader(b"\x01\x02", "layer", base=100)
    r.u8("a")
    with pytest.raises(DecodeError) as info:
        r.take(4, "b")
    assert (info.value.layer, info.value.field, info.value.offset) == ("layer", "b", 101)


def test_cosem_date_time_crib_example() -> None:
    value = CosemDateTime.decode(bytes.fromhex("07DF0101FF00000000800 0FF".replace(" ", "")))
    assert (value.year, value.month, value.day, value.day_of_week) == (2015, 1, 1, 0xFF)
    assert value.deviation == -0x8000
    assert value.to_datetime() == dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    assert str(value) == "2015-01-01 00:00:00"


@given(date_times)
def test_cosem_date_time_roundtrip(value: CosemDateTime) -> None:
    assert CosemDateTime.decode(value.encode()) == value


def test_to_datetime_with_an_impossible_deviation_is_none() -> None:
    """The int16 deviation allows +-22 days; ``timezone()`` raised ValueError past one."""
    assert CosemDateTime(2020, 1, 1, 3, 0, 0, 0, 0, 1440, 0).to_datetime() is None
    assert CosemDateTime(2020, 1, 1, 3, 0, 0, 0, 0, -2000, 0).to_datetime() is None
    assert CosemDateTime(2020, 1, 1, 3, 0, 0, 0, 0, 1439, 0).to_datetime() is not None


def test_cosem_date_time_from_datetime() -> None:
    when = dt.datetime(2026, 11, 21, 22, 30, 5, 120000, tzinfo=dt.UTC)
    value = CosemDateTime.from_datetime(when)
    assert value.encode().hex() == "07ea0b1506161e050c000000"
    assert value.to_datetime() == when
    with pytest.raises(EncodeError):
        CosemDateTime.from_datetime(dt.datetime(2026, 1, 1))


def test_eui64_and_gbz_time() -> None:
    assert eui64("00-DB-12-34-56-78-90-A0") == bytes.fromhex("00DB1234567890A0")
    with pytest.raises(EncodeError):
        eui64("00DB")
    with pytest.raises(EncodeError):
        eui64("zz" * 8)
    assert utc_to_gbz(utc_from_gbz(0x1C4F_0000)) == 0x1C4F_0000
    assert utc_from_gbz(0) == dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    with pytest.raises(EncodeError):
        utc_to_gbz(dt.datetime(1999, 1, 1, tzinfo=dt.UTC))


# Fast paths against their checked references ---------------------------------------


def _outcome(f: Any, *args: Any) -> tuple[str, Any]:
    """What a call gives: its value, or its exception's type and message."""
    try:
        return "value", f(*args)
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


def _reference_length(n: Any) -> bytes:
    """encode_length before its shared one-byte forms."""
    if n < 0:
        raise EncodeError(f"length {n} is negative")
    if n < 0x80:
        return bytes((n,))
    return encode_length(n)


@given(st.one_of(st.integers(-3, 0x200), st.booleans(), st.floats(-2, 200)))
def test_short_lengths_match_the_reference(n: Any) -> None:
    assert _outcome(encode_length, n) == _outcome(_reference_length, n)


fields = st.one_of(
    st.integers(-0x10000, 0x1FFFF), st.booleans(), st.just(1.5), st.just(None), st.just("7")
)


@given(date_times)
def test_date_time_fast_encode_matches_checked(value: CosemDateTime) -> None:
    assert value.encode() == value._encode_checked()


@given(st.lists(fields, min_size=10, max_size=10))
def test_date_time_encode_outcomes_match_checked(values: list[Any]) -> None:
    """Out-of-range and odd field values: the same bytes or the same error either way."""
    value = CosemDateTime(*values)
    assert _outcome(value.encode) == _outcome(value._encode_checked)


class _Index:
    """An int-like that struct would take and int.to_bytes would not."""

    def __index__(self) -> int:
        return 7


def test_date_time_encode_keeps_refusing_index_only_year_and_deviation() -> None:
    for value in (CosemDateTime(year=_Index()), CosemDateTime(deviation=_Index())):  # type: ignore[arg-type]
        with pytest.raises(AttributeError):
            value.encode()


ZONES = [
    dt.UTC,
    dt.timezone(dt.timedelta(hours=5, minutes=30)),
    dt.timezone(-dt.timedelta(hours=9, minutes=15)),
]


@given(
    st.datetimes(min_value=dt.datetime(1900, 1, 2), max_value=dt.datetime(9998, 12, 30)).flatmap(
        lambda d: st.sampled_from(ZONES).map(lambda z: d.replace(tzinfo=z))
    )
)
def test_from_datetime_matches_the_constructor(when: dt.datetime) -> None:
    utc = when.astimezone(dt.UTC)
    expected = CosemDateTime(
        utc.year,
        utc.month,
        utc.day,
        utc.isoweekday(),
        utc.hour,
        utc.minute,
        utc.second,
        utc.microsecond // 10000,
        0,
        0,
    )
    value = CosemDateTime.from_datetime(when)
    assert type(value) is CosemDateTime
    assert value == expected and repr(value) == repr(expected)
    assert hash(value) == hash(expected)


@given(st.binary(min_size=12, max_size=12))
def test_unpack_matches_the_constructor(raw: bytes) -> None:
    value = CosemDateTime.unpack(raw)
    assert type(value) is CosemDateTime
    assert value == CosemDateTime(*struct.unpack(">HBBBBBBBhB", raw))
    assert value.encode() == raw
    with pytest.raises(FrozenInstanceError):
        value.year = 1  # type: ignore[misc]


@dataclass(frozen=True, slots=True)
class _LocalDateTime(CosemDateTime):
    pass


def test_date_time_subclasses_are_built_as_themselves() -> None:
    when = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    built = _LocalDateTime.from_datetime(when)
    assert type(built) is _LocalDateTime
    assert built.encode() == CosemDateTime.from_datetime(when).encode()
    unpacked = _LocalDateTime.unpack(built.encode())
    assert type(unpacked) is _LocalDateTime and unpacked == built


def test_pack_id8_fast_path() -> None:
    raw = bytes.fromhex("00DB1234567890A0")
    assert pack_id8(raw, "id") is raw
    copy = pack_id8(bytearray(raw), "id")
    assert type(copy) is bytes and copy == raw
    with pytest.raises(EncodeError, match="must be 8 bytes, got 7"):
        pack_id8(raw[:7], "id")
    with pytest.raises(EncodeError, match="got str"):
        pack_id8("00DB1234567890A0", "id")  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class _Pair:
    a: int
    b: bytes = b""


@dataclass(frozen=True, slots=True)
class _Checked:
    a: int

    def __post_init__(self) -> None:
        raise AssertionError("never skipped")


@dataclass(frozen=True)
class _NoSlots:
    a: int


def test_slot_twin_and_builder_make_the_constructors_objects() -> None:
    build = slot_builder(_Pair)
    value = build(1, b"x")
    assert type(value) is _Pair and value == _Pair(1, b"x") and hash(value) == hash(_Pair(1, b"x"))
    assert replace(value, a=2) == _Pair(2, b"x")
    with pytest.raises(FrozenInstanceError):
        value.a = 3  # type: ignore[misc]
    twin = slot_twin(_Pair)
    assert twin.__slots__ == ("a", "b")
    for cls in (_Checked, _NoSlots):
        with pytest.raises(TypeError):
            slot_twin(cls)


def test_hex_field_names_the_field_and_raises_the_callers_error() -> None:
    assert hex_field("00db", "x") == b"\x00\xdb"
    assert hex_field("00DB1234567890A0", "id", 8) == bytes.fromhex("00DB1234567890A0")
    with pytest.raises(EncodeError, match="payload is not hex: list"):
        hex_field([], "payload", error=EncodeError)
    with pytest.raises(GbcsError, match="id is not hex: 'zz'"):
        hex_field("zz", "id")
    with pytest.raises(GbcsError, match="id must be 8 bytes, found 2"):
        hex_field("00db", "id", 8)
