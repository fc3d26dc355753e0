from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import (
    CosemDateTime,
    Reader,
    decode_length,
    encode_length,
    eui64,
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
