"""Smart Energy Tunneling cluster (0x0704) and the GBCS tunnel header inside it.

Tunneling commands (SE 1.x / ZCL 10.6), cluster-specific, profile 0x0109:

* client to server: RequestTunnel 0x00 (protocol id u8, manufacturer code u16,
  flow control support bool, maximum incoming transfer size u16), CloseTunnel
  0x01 (tunnel id), TransferData 0x02 (tunnel id u16 + data);
* server to client: RequestTunnelResponse 0x00 (tunnel id, status, maximum
  incoming transfer size), TransferData 0x01 (tunnel id + data);
* both ways: TransferDataError (client to server 0x03, server to client 0x02:
  tunnel id u16, status u8), the answer to TransferData on a tunnel the receiver
  does not have (status 0 "no such tunnel"; 1 wrong device, 2 data overflow).

GBCS runs its tunnel with protocol id 6, "GB-HRGP", and the manufacturer code
0xFFFF (unused) - the values Wireshark names and a Silicon Labs comms-hub
tunnelling server accepts; 200 is merely the first manufacturer-defined id.
Inside TransferData GBCS puts a one-byte command: GET (0x01, no body: "send me
what you hold"), GET-RESPONSE (0x02, then a count of messages still waiting,
then one GBCS message) and PUT (0x03, then one GBCS message). Wireshark's
``gbcs_tunnel`` heuristic picks TransferData payloads by that first byte, so
it needs no RequestTunnel in the capture.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from gbcs.errors import DecodeError, EncodeError

from ._wire import Reader, builder, octets, u8, u16
from .zcl import Direction, ZclFrame, ZclFrameType

__all__ = [
    "GBCS_MANUFACTURER_CODE",
    "GBCS_PROTOCOL_ID",
    "MAX_TRANSFER_SIZE",
    "SMART_ENERGY_PROFILE",
    "TUNNELING_CLUSTER",
    "CloseTunnel",
    "GbcsGet",
    "GbcsGetResponse",
    "GbcsPut",
    "GbcsTunnelCommand",
    "GbcsTunnelCommandId",
    "RequestTunnel",
    "RequestTunnelResponse",
    "TransferData",
    "TransferDataError",
    "TransferDataStatus",
    "TunnelCommand",
    "TunnelProtocol",
    "TunnelStatus",
    "decode_gbcs_tunnel",
    "encode_gbcs_tunnel",
    "parse_tunnel",
    "tunnel_frame",
]

LAYER = "tunnel"
SMART_ENERGY_PROFILE = 0x0109
TUNNELING_CLUSTER = 0x0704


class TunnelProtocol(IntEnum):
    DLMS_COSEM = 0
    IEC_61107 = 1
    ANSI_C12 = 2
    M_BUS = 3
    SML = 4
    CLIMATE_TALK = 5
    GB_HRGP = 6
    IPV6 = 7
    IPV4 = 8
    NULL = 9
    TEST = 199
    MANUFACTURER = 200


GBCS_PROTOCOL_ID = TunnelProtocol.GB_HRGP
GBCS_MANUFACTURER_CODE = 0xFFFF


class TunnelStatus(IntEnum):
    SUCCESS = 0
    BUSY = 1
    NO_MORE_TUNNEL_IDS = 2
    PROTOCOL_NOT_SUPPORTED = 3
    FLOW_CONTROL_NOT_SUPPORTED = 4


# MaximumIncomingTransferSize: GBCS 10.2.2 fixes it at 1500 octets (the ZSE default) for
# every RequestTunnel and RequestTunnelResponse, and a kit device takes no more in one
# TransferData (more is refused with TransferDataError "data overflow").
MAX_TRANSFER_SIZE = 1500


@dataclass(frozen=True, slots=True)
class RequestTunnel:
    protocol_id: int = GBCS_PROTOCOL_ID
    manufacturer_code: int = GBCS_MANUFACTURER_CODE
    flow_control: bool = False
    max_incoming_transfer_size: int = MAX_TRANSFER_SIZE


@dataclass(frozen=True, slots=True)
class CloseTunnel:
    tunnel_id: int


@dataclass(frozen=True, slots=True)
class RequestTunnelResponse:
    tunnel_id: int
    status: int = TunnelStatus.SUCCESS
    max_incoming_transfer_size: int = MAX_TRANSFER_SIZE


@dataclass(frozen=True, slots=True)
class TransferData:
    """Data through a tunnel; its command id depends on the ZCL direction (0x02 / 0x01)."""

    tunnel_id: int
    data: bytes


class TransferDataStatus(IntEnum):
    NO_SUCH_TUNNEL = 0
    WRONG_DEVICE = 1
    DATA_OVERFLOW = 2


@dataclass(frozen=True, slots=True)
class TransferDataError:
    """TransferData on ``tunnel_id`` was not taken; exists both ways (0x03 / 0x02)."""

    tunnel_id: int
    status: int = TransferDataStatus.NO_SUCH_TUNNEL


TunnelCommand = (
    RequestTunnel | CloseTunnel | RequestTunnelResponse | TransferData | TransferDataError
)

_TO_SERVER = {RequestTunnel: 0x00, CloseTunnel: 0x01, TransferData: 0x02, TransferDataError: 0x03}
_TO_CLIENT = {RequestTunnelResponse: 0x00, TransferData: 0x01, TransferDataError: 0x02}
_BOTH_WAYS = (TransferData, TransferDataError)


def _body(command: TunnelCommand) -> bytes:
    # Fast path: the exact command types with values in range; anything else (and
    # every error) goes field by field.
    kind = type(command)
    try:
        if kind is TransferData and type(command.data) is bytes:  # type: ignore[union-attr]
            return _U16.pack(command.tunnel_id) + command.data  # type: ignore[union-attr]
        if kind is RequestTunnel and type(command.flow_control) is bool:  # type: ignore[union-attr]
            return _REQUEST.pack(
                command.protocol_id,  # type: ignore[union-attr]
                command.manufacturer_code,  # type: ignore[union-attr]
                command.flow_control,  # type: ignore[union-attr]
                command.max_incoming_transfer_size,  # type: ignore[union-attr]
            )
        if kind is RequestTunnelResponse:
            return _RESPONSE.pack(
                command.tunnel_id,
                command.status,  # type: ignore[union-attr]
                command.max_incoming_transfer_size,  # type: ignore[union-attr]
            )
    except struct.error:
        pass
    return _body_checked(command)


def _body_checked(command: TunnelCommand) -> bytes:
    if isinstance(command, RequestTunnel):
        return (
            u8(command.protocol_id, "protocol_id")
            + u16(command.manufacturer_code, "manufacturer_code")
            + (b"\x01" if command.flow_control else b"\x00")
            + u16(command.max_incoming_transfer_size, "max_incoming_transfer_size")
        )
    if isinstance(command, RequestTunnelResponse):
        return (
            u16(command.tunnel_id, "tunnel_id")
            + u8(command.status, "status")
            + u16(command.max_incoming_transfer_size, "max_incoming_transfer_size")
        )
    if isinstance(command, CloseTunnel):
        return u16(command.tunnel_id, "tunnel_id")
    if isinstance(command, TransferDataError):
        return u16(command.tunnel_id, "tunnel_id") + u8(command.status, "status")
    return u16(command.tunnel_id, "tunnel_id") + octets(command.data, "data")


def tunnel_frame(
    command: TunnelCommand,
    *,
    sequence: int,
    direction: Direction | None = None,
    disable_default_response: bool = False,
) -> ZclFrame:
    """The cluster-specific ZCL frame for a tunnel command.

    ``direction`` is implied for every command but TransferData and
    TransferDataError, which exist both ways.
    """
    if direction is None:
        if isinstance(command, _BOTH_WAYS):
            raise EncodeError(f"{type(command).__name__} needs an explicit direction")
        direction = Direction.TO_CLIENT if type(command) in _TO_CLIENT else Direction.TO_SERVER
    table = _TO_SERVER if direction == Direction.TO_SERVER else _TO_CLIENT
    command_id = table.get(type(command))
    if command_id is None:
        raise EncodeError(f"{type(command).__name__} is not sent {direction.name}")
    return _new_zcl(
        ZclFrameType.CLUSTER,
        direction,
        sequence,
        command_id,
        _body(command),
        disable_default_response,
        None,
    )


def parse_tunnel(frame: ZclFrame, *, base: int = 0) -> TunnelCommand:
    """The tunnel command in a ZCL frame of the Tunneling cluster.

    ``base`` is the absolute offset of the ZCL payload, for error offsets.
    """
    if frame.frame_type != ZclFrameType.CLUSTER or frame.manufacturer_code is not None:
        raise DecodeError(LAYER, "frame type", base, "not a standard cluster-specific command")
    # Fast path: TransferData (client to server 0x02, server to client 0x01).
    payload = frame.payload
    direction, command_id = frame.direction, frame.command_id
    if ((direction == 0 and command_id == 0x02) or (direction == 1 and command_id == 0x01)) and len(
        payload
    ) >= 2:
        return _new_transfer(payload[0] | payload[1] << 8, bytes(payload[2:]))
    # ... and the fixed-size commands whose bytes are all there and plainly valid.
    if command_id == 0x00 and type(payload) is bytes:
        if direction == 0 and len(payload) == _REQUEST.size and payload[3] <= 1:
            protocol, manufacturer, flow, size = _REQUEST.unpack(payload)
            return _new_request(protocol, manufacturer, bool(flow), size)
        if direction == 1 and len(payload) == _RESPONSE.size:
            return _new_response(*_RESPONSE.unpack(payload))
    return _parse_checked(frame, base)


def _parse_checked(frame: ZclFrame, base: int) -> TunnelCommand:
    """parse_tunnel field by field (frame type already checked), with the precise errors."""
    reader = Reader(frame.payload, LAYER, base)
    key = (frame.direction, frame.command_id)
    command: TunnelCommand
    if key == (Direction.TO_SERVER, 0x00):
        command = RequestTunnel(
            reader.u8("protocol id"),
            reader.u16("manufacturer code"),
            _bool(reader, "flow control support"),
            reader.u16("max incoming transfer size"),
        )
    elif key == (Direction.TO_SERVER, 0x01):
        command = CloseTunnel(reader.u16("tunnel id"))
    elif key in ((Direction.TO_SERVER, 0x02), (Direction.TO_CLIENT, 0x01)):
        command = TransferData(reader.u16("tunnel id"), reader.rest())
    elif key in ((Direction.TO_SERVER, 0x03), (Direction.TO_CLIENT, 0x02)):
        command = TransferDataError(reader.u16("tunnel id"), reader.u8("status"))
    elif key == (Direction.TO_CLIENT, 0x00):
        command = RequestTunnelResponse(
            reader.u16("tunnel id"), reader.u8("status"), reader.u16("max incoming transfer size")
        )
    else:
        raise DecodeError(
            LAYER,
            "command id",
            base,
            f"unsupported tunnel command 0x{frame.command_id:02X} {frame.direction.name}",
        )
    reader.end("tunnel command")
    return command


_new_transfer = builder(TransferData)
_new_request = builder(RequestTunnel)
_new_response = builder(RequestTunnelResponse)
_new_zcl = builder(ZclFrame)
_REQUEST = struct.Struct("<BHBH")  # protocol, manufacturer, flow control, max size
_RESPONSE = struct.Struct("<HBH")  # tunnel id, status, max size
_U16 = struct.Struct("<H")


def _bool(reader: Reader, field: str) -> bool:
    at = reader.offset
    value = reader.u8(field)
    if value > 1:
        raise reader.error(field, f"boolean value {value}", at)
    return bool(value)


# -- GBCS tunnel header -----------------------------------------------------


class GbcsTunnelCommandId(IntEnum):
    GET = 0x01
    GET_RESPONSE = 0x02
    PUT = 0x03


@dataclass(frozen=True, slots=True)
class GbcsGet:
    """A device asks the CHF for the next message it holds for it."""


@dataclass(frozen=True, slots=True)
class GbcsGetResponse:
    """The CHF's answer to GET: one message and how many are still waiting."""

    remaining: int
    message: bytes


@dataclass(frozen=True, slots=True)
class GbcsPut:
    """A GBCS message pushed through the tunnel."""

    message: bytes


GbcsTunnelCommand = GbcsGet | GbcsGetResponse | GbcsPut


def encode_gbcs_tunnel(command: GbcsTunnelCommand) -> bytes:
    """The TransferData data bytes for a GBCS tunnel command."""
    if isinstance(command, GbcsGet):
        return bytes((GbcsTunnelCommandId.GET,))
    if isinstance(command, GbcsGetResponse):
        return (
            bytes((GbcsTunnelCommandId.GET_RESPONSE,))
            + u8(command.remaining, "remaining")
            + octets(command.message, "message")
        )
    if isinstance(command, GbcsPut):
        return bytes((GbcsTunnelCommandId.PUT,)) + octets(command.message, "message")
    raise EncodeError(f"not a GBCS tunnel command: {command!r}")


_GBCS_GET = GbcsGet()
_new_get_response = builder(GbcsGetResponse)
_new_put = builder(GbcsPut)


def decode_gbcs_tunnel(data: bytes, *, base: int = 0) -> GbcsTunnelCommand:
    data = bytes(data)
    if data:  # fast path for the well-formed commands
        command_id = data[0]
        if command_id == GbcsTunnelCommandId.PUT:
            return _new_put(data[1:])
        if command_id == GbcsTunnelCommandId.GET_RESPONSE and len(data) >= 2:
            return _new_get_response(data[1], data[2:])
        if command_id == GbcsTunnelCommandId.GET and len(data) == 1:
            return _GBCS_GET
    reader = Reader(data, "gbcs tunnel", base)
    command_id = reader.u8("command")
    if command_id == GbcsTunnelCommandId.GET:
        reader.end("GET")
        return GbcsGet()
    if command_id == GbcsTunnelCommandId.GET_RESPONSE:
        return GbcsGetResponse(reader.u8("remaining messages"), reader.rest())
    if command_id == GbcsTunnelCommandId.PUT:
        return GbcsPut(reader.rest())
    raise reader.error("command", f"0x{command_id:02X} is not GET, GET-RESPONSE or PUT", base)
