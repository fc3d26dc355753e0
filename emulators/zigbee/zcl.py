"""ZCL frame header (ZigBee Cluster Library 07-5123, 2.4.1).

Frame control (1 byte): frame type bits 0-1 (0 profile-wide/global, 1
cluster-specific), manufacturer-specific 2, direction 3 (0 client to server,
1 server to client), disable default response 4. Then the manufacturer code
(2, LE) when flagged, the transaction sequence number and the command id.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from gbcs.errors import EncodeError

from ._wire import Reader, builder, octets, u8, u16

__all__ = ["Direction", "ZclFrame", "ZclFrameType", "decode_zcl", "encode_zcl"]

LAYER = "zcl"


class ZclFrameType(IntEnum):
    GLOBAL = 0
    CLUSTER = 1


class Direction(IntEnum):
    TO_SERVER = 0
    TO_CLIENT = 1


@dataclass(frozen=True, slots=True)
class ZclFrame:
    """A ZCL frame: header fields and the command payload bytes."""

    frame_type: ZclFrameType
    direction: Direction
    sequence: int
    command_id: int
    payload: bytes = b""
    disable_default_response: bool = False
    manufacturer_code: int | None = None


_HEAD = struct.Struct("<BBB")  # frame control, sequence, command id


def encode_zcl(frame: ZclFrame) -> bytes:
    """The ZCL frame's bytes: header and payload."""
    # Fast path: no manufacturer code and plainly typed values; anything else (and
    # every error) goes to _encode_checked, field by field.
    kind = frame.frame_type
    direction = frame.direction
    disable = frame.disable_default_response
    payload = frame.payload
    if (
        frame.manufacturer_code is None
        and (kind is ZclFrameType.CLUSTER or kind is ZclFrameType.GLOBAL)
        and type(direction) is Direction
        and type(disable) is bool
        and type(payload) is bytes
    ):
        try:
            head = _HEAD.pack(
                kind | direction << 3 | disable << 4, frame.sequence, frame.command_id
            )
        except struct.error:
            pass
        else:
            return head + payload
    return _encode_checked(frame)


def _encode_checked(frame: ZclFrame) -> bytes:
    if frame.frame_type not in (ZclFrameType.GLOBAL, ZclFrameType.CLUSTER):
        raise EncodeError(f"frame_type {frame.frame_type} is reserved")
    if frame.direction not in _DIRECTIONS:  # a wider int would spill into bits 4-7
        raise EncodeError(f"direction {frame.direction!r} is not a ZCL direction")
    control = (
        int(frame.frame_type)
        | (frame.manufacturer_code is not None) << 2
        | int(frame.direction) << 3
        | bool(frame.disable_default_response) << 4
    )
    out = bytes((control,))
    if frame.manufacturer_code is not None:
        out += u16(frame.manufacturer_code, "manufacturer_code")
    return (
        out
        + u8(frame.sequence, "sequence")
        + u8(frame.command_id, "command_id")
        + octets(frame.payload, "payload")
    )


_new_frame = builder(ZclFrame)
_FRAME_TYPES = tuple(ZclFrameType)
_DIRECTIONS = tuple(Direction)


def decode_zcl(data: bytes, *, base: int = 0) -> ZclFrame:
    data = bytes(data)
    # Fast path: no manufacturer code, no reserved bits, frame type 0 or 1.
    if len(data) >= 3 and not data[0] & 0xE6:
        control = data[0]
        return _new_frame(
            _FRAME_TYPES[control & 0x01],
            _DIRECTIONS[(control >> 3) & 1],
            data[1],
            data[2],
            data[3:],
            bool(control & 0x10),
            None,
        )
    reader = Reader(data, LAYER, base)
    control = reader.u8("frame control")
    if control & 0xE0:
        raise reader.error("frame control", "reserved bits 5-7 are set", base)
    if control & 0x03 > 1:
        raise reader.error("frame type", f"reserved frame type {control & 0x03}", base)
    manufacturer = reader.u16("manufacturer code") if control & 0x04 else None
    sequence = reader.u8("sequence")
    command_id = reader.u8("command id")
    return ZclFrame(
        _FRAME_TYPES[control & 0x03],
        _DIRECTIONS[(control >> 3) & 1],
        sequence,
        command_id,
        reader.rest(),
        bool(control & 0x10),
        manufacturer,
    )
