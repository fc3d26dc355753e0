"""ZCL Time cluster reads (ZCL 2.5.1 / 2.5.2, UTCTime 2.6.2): the ESME's keep-alive."""

from __future__ import annotations

import dataclasses
import datetime as dt

from emulators.zigbee.time_cluster import (
    ZIGBEE_EPOCH,
    is_time_read,
    parse_time_response,
    time_read,
    time_response,
    utc_time,
)
from emulators.zigbee.zcl import Direction, decode_zcl, encode_zcl


def test_a_time_read_and_its_response_on_the_wire() -> None:
    """Read Attributes (global, client to server, 0x00) of attribute 0x0000; the response
    (server to client, 0x01): attribute, status SUCCESS, type UTCTime 0xE2, value, on the
    request's sequence number."""
    assert encode_zcl(time_read(0x21)) == bytes.fromhex("10 21 00 0000")
    assert encode_zcl(time_response(0x21, 0x12345678)) == bytes.fromhex(
        "18 21 01 0000 00 E2 78563412"
    )
    read = decode_zcl(encode_zcl(time_read(7)))
    assert is_time_read(read) and not is_time_read(decode_zcl(encode_zcl(time_response(7, 1))))
    assert parse_time_response(decode_zcl(encode_zcl(time_response(7, 99)))) == 99
    assert parse_time_response(read) is None
    assert parse_time_response(decode_zcl(bytes.fromhex("18 21 01 0000 86"))) is None


def test_utc_time_counts_from_2000() -> None:
    assert utc_time(ZIGBEE_EPOCH) == 0
    assert utc_time(dt.datetime(2026, 11, 21, 9, tzinfo=dt.UTC)) == 848_566_800
    assert utc_time(dt.datetime(1999, 1, 1, tzinfo=dt.UTC)) == 0


def test_utc_time_never_sends_the_invalid_value() -> None:
    """UTCTime 0xFFFFFFFF means "invalid" (ZCL 2.6.2): a clock past 2136 stops one short."""
    assert utc_time(dt.datetime(2200, 1, 1, tzinfo=dt.UTC)) == 0xFFFFFFFE


def test_only_a_standard_read_of_the_time_attribute_is_a_time_read() -> None:
    """A manufacturer-specific Read Attributes reads that manufacturer's attribute 0x0000
    (ZCL 2.4.1.1.2), not the Time attribute, and the hub must not answer it as one."""
    read = time_read(7)
    assert is_time_read(read)
    assert not is_time_read(dataclasses.replace(read, manufacturer_code=0x1234))
    assert not is_time_read(dataclasses.replace(read, payload=bytes.fromhex("0100")))
    assert not is_time_read(dataclasses.replace(read, direction=Direction.TO_CLIENT))


def test_a_time_response_with_an_error_status_carries_no_time() -> None:
    """Only a SUCCESS record carries a value (ZCL 2.5.2): any other status is no time."""
    good = time_response(7, 99)
    failed = dataclasses.replace(good, payload=good.payload[:2] + b"\x86" + good.payload[3:])
    assert parse_time_response(good) == 99
    assert parse_time_response(failed) is None
    # a client-to-server frame is no response, whatever its bytes
    assert parse_time_response(dataclasses.replace(good, direction=Direction.TO_SERVER)) is None
