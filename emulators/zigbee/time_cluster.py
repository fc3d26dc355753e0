"""ZCL Time cluster (0x000A) reads: how a GBCS device takes its time from the CHF.

An ESME reads the hub's Time attribute (0x0000, type UTCTime 0xE2: seconds since
2000-01-01 00:00 UTC, ZCL 2.6.2 / 3.12.2.2.1) with the global Read Attributes
command (0x00, ZCL 2.5.1), and the hub answers Read Attributes Response (0x01,
ZCL 2.5.2: attribute id, status, type, value), echoing the request's sequence
number (ZCL 2.4.1.3). The kit's ESME sends it as its keep-alive: a unicast to the
coordinator whose MAC acknowledgement says the parent is still there.
"""

from __future__ import annotations

import datetime as dt
import struct

from .zcl import Direction, ZclFrame, ZclFrameType

__all__ = [
    "TIME_ATTRIBUTE",
    "TIME_CLUSTER",
    "ZIGBEE_EPOCH",
    "is_time_read",
    "parse_time_response",
    "time_read",
    "time_response",
    "utc_time",
]

TIME_CLUSTER = 0x000A
TIME_ATTRIBUTE = 0x0000
READ_ATTRIBUTES = 0x00
READ_ATTRIBUTES_RESPONSE = 0x01
UTC_TIME_TYPE = 0xE2
SUCCESS = 0x00
ZIGBEE_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_UTC_MAX = 0xFFFFFFFE  # 0xFFFFFFFF is UTCTime's "invalid" value (ZCL 2.6.2)
_READ_TIME = struct.pack("<H", TIME_ATTRIBUTE)
_RESPONSE = struct.Struct("<HBBI")  # attribute id, status, data type, value


def utc_time(moment: dt.datetime) -> int:
    """ZigBee UTCTime of ``moment``: whole seconds since 2000-01-01 00:00 UTC."""
    seconds = int((moment - ZIGBEE_EPOCH).total_seconds())
    return min(max(seconds, 0), _UTC_MAX)


def time_read(sequence: int) -> ZclFrame:
    """Read Attributes of the Time attribute, client to server."""
    return ZclFrame(
        ZclFrameType.GLOBAL, Direction.TO_SERVER, sequence, READ_ATTRIBUTES, _READ_TIME, True
    )


def is_time_read(frame: ZclFrame | None) -> bool:
    """Whether ``frame`` reads exactly the Time attribute (what the hub answers)."""
    return (
        frame is not None
        and frame.frame_type is ZclFrameType.GLOBAL
        and frame.direction is Direction.TO_SERVER
        and frame.manufacturer_code is None
        and frame.command_id == READ_ATTRIBUTES
        and frame.payload == _READ_TIME
    )


def time_response(sequence: int, utc: int) -> ZclFrame:
    """Read Attributes Response with the Time attribute, on the request's ``sequence``."""
    payload = _RESPONSE.pack(TIME_ATTRIBUTE, SUCCESS, UTC_TIME_TYPE, utc)
    return ZclFrame(
        ZclFrameType.GLOBAL, Direction.TO_CLIENT, sequence, READ_ATTRIBUTES_RESPONSE, payload, True
    )


def parse_time_response(frame: ZclFrame | None) -> int | None:
    """The UTCTime a Read Attributes Response of the Time attribute carries; None if it
    is not one (another attribute, an error status, another type or length)."""
    if (
        frame is None
        or frame.frame_type is not ZclFrameType.GLOBAL
        or frame.direction is not Direction.TO_CLIENT
        or frame.command_id != READ_ATTRIBUTES_RESPONSE
        or len(frame.payload) != _RESPONSE.size
    ):
        return None
    attribute, status, kind, value = _RESPONSE.unpack(frame.payload)
    if attribute != TIME_ATTRIBUTE or status != SUCCESS or kind != UTC_TIME_TYPE:
        return None
    return int(value)
