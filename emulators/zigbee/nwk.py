"""ZigBee NWK frames (spec 3.3) and the NWK commands the HAN needs, with NWK security.

Frame control (2 bytes LE, spec 3.3.1.1): frame type bits 0-1, protocol
version 2-5 (2 for ZigBee 2007/Pro), discover route 6-7, multicast 8, security
9, source route 10, destination IEEE 11, source IEEE 12, end-device initiator
13. Then destination and source short addresses, radius, sequence number, the
optional IEEE addresses, multicast control and source route subframe.

A secured frame carries the auxiliary header with the extended nonce and the
network key's sequence number (spec 4.3.1.1); the NWK header plus aux header is
the MIC's authenticated data and the payload (command id included) is
encrypted.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum

from gbcs.errors import EncodeError, VerificationError

from . import security
from ._wire import Reader, builder, eui64, octets, u8, u16
from .mac import Capability, _capability
from .security import (
    _NWK_AUX_CONTROL,
    _NWK_AUX_LENGTH,
    MIC_LENGTH,
    AuxHeader,
    EncryptedPayload,
    KeyId,
    _decrypt_received,
    _encrypt_network,
    _peek_nwk_aux,
)

__all__ = [
    "BROADCAST_ALL",
    "BROADCAST_ROUTERS",
    "BROADCAST_RX_ON_WHEN_IDLE",
    "PROTOCOL_VERSION",
    "DiscoverRoute",
    "Leave",
    "NwkCommand",
    "NwkCommandId",
    "NwkFrame",
    "NwkFrameType",
    "RawNwkCommand",
    "RejoinRequest",
    "RejoinResponse",
    "SourceRoute",
    "decode_nwk",
    "encode_nwk",
]

LAYER = "nwk"
PROTOCOL_VERSION = 2
BROADCAST_ALL = 0xFFFF
BROADCAST_RX_ON_WHEN_IDLE = 0xFFFD
BROADCAST_ROUTERS = 0xFFFC


class NwkFrameType(IntEnum):
    DATA = 0
    COMMAND = 1


class DiscoverRoute(IntEnum):
    SUPPRESS = 0
    ENABLE = 1


class NwkCommandId(IntEnum):
    ROUTE_REQUEST = 0x01
    ROUTE_REPLY = 0x02
    NETWORK_STATUS = 0x03
    LEAVE = 0x04
    ROUTE_RECORD = 0x05
    REJOIN_REQUEST = 0x06
    REJOIN_RESPONSE = 0x07
    LINK_STATUS = 0x08


@dataclass(frozen=True, slots=True)
class RejoinRequest:
    """Spec 3.4.6: the rejoining device's capability information."""

    capability: Capability


@dataclass(frozen=True, slots=True)
class RejoinResponse:
    """Spec 3.4.7: the (possibly new) network address and the rejoin status (0 = success)."""

    network_address: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class Leave:
    """Spec 3.4.4: options bit 5 remove children, bit 6 request, bit 7 rejoin."""

    rejoin: bool = False
    request: bool = False
    remove_children: bool = False


@dataclass(frozen=True, slots=True)
class RawNwkCommand:
    """A NWK command this codec does not model, kept as its id and body bytes."""

    command_id: int
    body: bytes = b""


NwkCommand = RejoinRequest | RejoinResponse | Leave | RawNwkCommand


@dataclass(frozen=True, slots=True)
class SourceRoute:
    """Source route subframe (spec 3.3.1.9): relay index and relay short addresses."""

    relay_index: int
    relays: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class NwkFrame:
    """One NWK frame.

    ``payload`` is the APS frame bytes for data frames, a command dataclass for
    command frames, or :class:`EncryptedPayload` when the frame is secured and
    no network key was available. ``security`` is present exactly when the
    frame is NWK-secured; its ``source`` is the sender's EUI-64.
    """

    frame_type: NwkFrameType
    dst: int
    src: int
    sequence: int
    payload: bytes | NwkCommand | EncryptedPayload
    radius: int = 30
    discover_route: DiscoverRoute = DiscoverRoute.SUPPRESS
    dst_ieee: bytes | None = None
    src_ieee: bytes | None = None
    multicast_control: int | None = None
    source_route: SourceRoute | None = None
    end_device_initiator: bool = False
    security: AuxHeader | None = None


_MODELLED = frozenset(
    {NwkCommandId.LEAVE, NwkCommandId.REJOIN_REQUEST, NwkCommandId.REJOIN_RESPONSE}
)


def _encode_command(command: NwkCommand) -> bytes:
    if isinstance(command, RejoinRequest):
        return bytes((NwkCommandId.REJOIN_REQUEST,)) + command.capability.encode()
    if isinstance(command, RejoinResponse):
        return (
            bytes((NwkCommandId.REJOIN_RESPONSE,))
            + u16(command.network_address, "network_address")
            + u8(command.status, "status")
        )
    if isinstance(command, Leave):
        options = (
            (0x20 if command.remove_children else 0)
            | (0x40 if command.request else 0)
            | (0x80 if command.rejoin else 0)
        )
        return bytes((NwkCommandId.LEAVE, options))
    if isinstance(command, RawNwkCommand):
        command_id = u8(command.command_id, "command_id")
        if command.command_id == 0:
            raise EncodeError("0 is not a NWK command id")
        if command.command_id in _MODELLED:
            raise EncodeError(f"NWK command 0x{command.command_id:02X} needs its own dataclass")
        return command_id + octets(command.body, "body")
    raise EncodeError(f"not a NWK command: {command!r}")


_HEAD = struct.Struct("<HHHBB")  # control, dst, src, radius, sequence
_NWK_TYPES = tuple(NwkFrameType)  # NwkFrameType(i) is _NWK_TYPES[i]
_DISCOVER = tuple(DiscoverRoute)


def _encode_header(frame: NwkFrame) -> bytes:
    # Fast path: no multicast or source route, addresses of the right size, values
    # in range; anything else takes _encode_header_checked for the precise error.
    discover = frame.discover_route
    kind = frame.frame_type
    dst_ieee = frame.dst_ieee
    src_ieee = frame.src_ieee
    initiator = frame.end_device_initiator
    if (
        frame.multicast_control is None
        and frame.source_route is None
        and (type(kind) is NwkFrameType or (type(kind) is int and 0 <= kind <= 1))
        and (type(discover) is DiscoverRoute or (type(discover) is int and 0 <= discover <= 1))
        and type(initiator) is bool
        and (dst_ieee is None or (type(dst_ieee) is bytes and len(dst_ieee) == 8))
        and (src_ieee is None or (type(src_ieee) is bytes and len(src_ieee) == 8))
    ):
        control = (
            kind
            | PROTOCOL_VERSION << 2
            | discover << 6
            | (frame.security is not None) << 9
            | (dst_ieee is not None) << 11
            | (src_ieee is not None) << 12
            | initiator << 13
        )
        try:
            out = _HEAD.pack(control, frame.dst, frame.src, frame.radius, frame.sequence)
        except struct.error:
            pass
        else:
            if dst_ieee is not None:
                out += dst_ieee[::-1]
            if src_ieee is not None:
                out += src_ieee[::-1]
            return out
    return _encode_header_checked(frame)


def _encode_header_checked(frame: NwkFrame) -> bytes:
    # Only values decode_nwk accepts: a wider int would spill into the neighbouring bits.
    if frame.frame_type not in _NWK_TYPES:
        raise EncodeError(f"frame_type {frame.frame_type!r} is not a NWK data or command frame")
    if frame.discover_route not in _DISCOVER:
        raise EncodeError(f"discover_route {frame.discover_route!r} is reserved")
    control = (
        int(frame.frame_type)
        | PROTOCOL_VERSION << 2
        | int(frame.discover_route) << 6
        | (frame.multicast_control is not None) << 8
        | (frame.security is not None) << 9
        | (frame.source_route is not None) << 10
        | (frame.dst_ieee is not None) << 11
        | (frame.src_ieee is not None) << 12
        | bool(frame.end_device_initiator) << 13
    )
    out = (
        u16(control, "frame control")
        + u16(frame.dst, "dst")
        + u16(frame.src, "src")
        + u8(frame.radius, "radius")
        + u8(frame.sequence, "sequence")
    )
    if frame.dst_ieee is not None:
        out += eui64(frame.dst_ieee, "dst_ieee")
    if frame.src_ieee is not None:
        out += eui64(frame.src_ieee, "src_ieee")
    if frame.multicast_control is not None:
        out += u8(frame.multicast_control, "multicast_control")
    if frame.source_route is not None:
        route = frame.source_route
        count = len(route.relays)
        out += u8(count, "relay count") + u8(route.relay_index, "relay_index")
        if count and route.relay_index >= count:
            raise EncodeError(f"relay_index {route.relay_index} is past the {count} relays")
        out += b"".join(u16(relay, "relay") for relay in route.relays)
    return out


def encode_nwk(frame: NwkFrame, network_key: bytes | None = None) -> bytes:
    """The NWK frame bytes; secured with ``network_key`` when ``frame.security`` is set."""
    if frame.frame_type == NwkFrameType.COMMAND:
        if isinstance(frame.payload, bytes | bytearray):
            raise EncodeError("a NWK command frame needs a command dataclass payload")
    elif not isinstance(frame.payload, bytes | bytearray | EncryptedPayload):
        raise EncodeError("a NWK data frame needs a bytes payload")
    header = _encode_header(frame)
    if isinstance(frame.payload, EncryptedPayload):
        if frame.security is None:
            raise EncodeError("an EncryptedPayload needs the frame's security header")
        return header + frame.security.encode() + frame.payload.data
    plain = (
        bytes(frame.payload)
        if isinstance(frame.payload, bytes | bytearray)
        else _encode_command(frame.payload)
    )
    aux = frame.security
    if aux is None:
        return header + plain
    if aux.key_id != KeyId.NETWORK or aux.source is None:
        raise EncodeError("NWK security uses the network key with an extended nonce")
    if network_key is None:
        raise EncodeError("a secured NWK frame needs the network key")
    secured = None
    if type(aux) is AuxHeader and aux.key_id is KeyId.NETWORK:
        secured = _encrypt_network(
            header, plain, network_key, aux.frame_counter, aux.source, aux.key_sequence
        )
    if secured is None:
        secured = security.encrypt(header, aux, plain, network_key)
    return header + secured


def _decode_command(reader: Reader) -> NwkCommand:
    at = reader.offset
    command_id = reader.u8("command id")
    command: NwkCommand
    if command_id == NwkCommandId.REJOIN_REQUEST:
        command = RejoinRequest(Capability.decode(reader))
    elif command_id == NwkCommandId.REJOIN_RESPONSE:
        command = RejoinResponse(reader.u16("network address"), reader.u8("rejoin status"))
    elif command_id == NwkCommandId.LEAVE:
        at = reader.offset
        options = reader.u8("leave options")
        if options & 0x1F:
            raise reader.error("leave options", "reserved bits 0-4 are set", at)
        command = Leave(bool(options & 0x80), bool(options & 0x40), bool(options & 0x20))
    elif command_id == 0:
        raise reader.error("command id", "0 is not a NWK command", at)
    else:
        return RawNwkCommand(command_id, reader.rest())
    reader.end("command payload")
    return command


# Frame control bits the fast path insists on: data or command frame (bit 1
# clear), protocol version 2, discover route 0 or 1 (bit 7 clear), no source
# route, reserved bits 14-15 clear.
_FAST_MASK = 0x0002 | 0x003C | 0x0080 | 0x0400 | 0xC000
_FAST_VALUE = PROTOCOL_VERSION << 2
_new_frame = builder(NwkFrame)


def decode_nwk(
    data: bytes, network_keys: Mapping[int, bytes] | None = None, *, base: int = 0
) -> NwkFrame:
    """Parse a NWK frame, removing NWK security with the key its key sequence number names.

    ``network_keys`` maps key sequence numbers to network keys. Without keys a
    secured payload stays an :class:`EncryptedPayload`; with keys but none for
    the frame's sequence number, or a MIC that does not verify, raises
    :class:`VerificationError`. ``base`` is the frame's offset in the PSDU.
    """
    data = bytes(data)
    # Fast path for well-formed frames: one unpack for the fixed header. Whatever
    # it does not plainly accept is decoded field by field by _decode_checked,
    # before any key is used, so errors and their offsets are unchanged.
    if len(data) < 8:
        return _decode_checked(data, network_keys, base)
    control, dst, src, radius, sequence = _HEAD.unpack_from(data)
    kind = control & 0x03
    if control & _FAST_MASK != _FAST_VALUE:
        return _decode_checked(data, network_keys, base)
    pos = 8
    dst_ieee = src_ieee = multicast = None
    if control & 0x0800:
        dst_ieee = data[pos : pos + 8][::-1]
        pos += 8
    if control & 0x1000:
        src_ieee = data[pos : pos + 8][::-1]
        pos += 8
    if control & 0x0100:
        if pos >= len(data):
            return _decode_checked(data, network_keys, base)
        multicast = data[pos]
        pos += 1
    if pos > len(data):
        return _decode_checked(data, network_keys, base)
    aux = None
    payload: bytes | NwkCommand | EncryptedPayload
    if control & 0x0200:
        # Anything but the network key with the extended nonce is an error: checked path.
        payload_at = pos + _NWK_AUX_LENGTH
        if len(data) - payload_at < MIC_LENGTH or data[pos] != _NWK_AUX_CONTROL:
            return _decode_checked(data, network_keys, base)
        aux = _peek_nwk_aux(data, pos)
        if not network_keys:
            payload = EncryptedPayload(data[payload_at:])
        else:
            key = network_keys.get(aux.key_sequence)  # type: ignore[arg-type]
            if key is None:
                raise VerificationError(
                    f"nwk: no network key with key sequence number {aux.key_sequence}"
                )
            plain = _decrypt_received(data, pos, payload_at, aux, key, None, LAYER)
            payload = _payload(kind, plain, base + payload_at)
    elif kind == 0:
        payload = data[pos:]
    else:
        payload = _payload(kind, data[pos:], base + pos)
    return _new_frame(
        _NWK_TYPES[kind],
        dst,
        src,
        sequence,
        payload,
        radius,
        _DISCOVER[(control >> 6) & 0x03],
        dst_ieee,
        src_ieee,
        multicast,
        None,
        bool(control & 0x2000),
        aux,
    )


def _decode_checked(data: bytes, network_keys: Mapping[int, bytes] | None, base: int) -> NwkFrame:
    """decode_nwk field by field: every malformation raises its precise DecodeError."""
    reader = Reader(data, LAYER, base)
    control = reader.u16("frame control")
    kind = control & 0x03
    if kind > NwkFrameType.COMMAND:
        raise reader.error("frame type", f"unsupported NWK frame type {kind}", base)
    version = (control >> 2) & 0x0F
    if version != PROTOCOL_VERSION:
        raise reader.error("protocol version", f"{version}, expected {PROTOCOL_VERSION}", base)
    if control & 0xC000:
        raise reader.error("frame control", "reserved bits 14-15 are set", base)
    discover = (control >> 6) & 0x03
    if discover > DiscoverRoute.ENABLE:
        raise reader.error("discover route", f"reserved value {discover}", base)
    dst = reader.u16("dst")
    src = reader.u16("src")
    radius = reader.u8("radius")
    sequence = reader.u8("sequence")
    dst_ieee = reader.eui64("dst ieee") if control & 0x0800 else None
    src_ieee = reader.eui64("src ieee") if control & 0x1000 else None
    multicast = reader.u8("multicast control") if control & 0x0100 else None
    route = None
    if control & 0x0400:
        count = reader.u8("relay count")
        at = reader.offset
        index = reader.u8("relay index")
        if count and index >= count:
            raise reader.error("relay index", f"{index} is past the {count} relays", at)
        route = SourceRoute(index, tuple(reader.u16("relay") for _ in range(count)))
    header = data[: reader.position]
    aux = None
    payload: bytes | NwkCommand | EncryptedPayload
    if control & 0x0200:
        aux = AuxHeader.decode(reader)
        if aux.key_id != KeyId.NETWORK or aux.source is None:
            raise reader.error(
                "security control", "NWK security needs the network key and extended nonce"
            )
        payload_at = reader.offset
        sealed = reader.rest()
        if len(sealed) < security.MIC_LENGTH:
            raise reader.error("mic", "secured payload shorter than the MIC", payload_at)
        if not network_keys:
            payload = EncryptedPayload(sealed)
        else:
            key = network_keys.get(aux.key_sequence)  # type: ignore[arg-type]
            if key is None:
                raise VerificationError(
                    f"nwk: no network key with key sequence number {aux.key_sequence}"
                )
            plain = security.decrypt(header, aux, sealed, key, layer=LAYER)
            payload = _payload(kind, plain, payload_at)
    else:
        payload_at = reader.offset  # before rest(): errors point into the payload
        payload = _payload(kind, reader.rest(), payload_at)
    return NwkFrame(
        _NWK_TYPES[kind],
        dst,
        src,
        sequence,
        payload,
        radius,
        _DISCOVER[discover],
        dst_ieee,
        src_ieee,
        multicast,
        route,
        bool(control & 0x2000),
        aux,
    )


def _payload(kind: int, plain: bytes, at: int) -> bytes | NwkCommand:
    if kind == NwkFrameType.DATA:
        return plain
    # Fast path: the modelled commands at their exact size with reserved bits clear.
    if len(plain) == 2:
        command_id, value = plain
        if command_id == NwkCommandId.LEAVE and not value & 0x1F:
            return _LEAVES[value >> 5]
        if command_id == NwkCommandId.REJOIN_REQUEST and not value & 0x30:
            return _new_rejoin_request(_capability(value))
    elif len(plain) == 4 and plain[0] == NwkCommandId.REJOIN_RESPONSE:
        return _new_rejoin_response(plain[1] | plain[2] << 8, plain[3])
    return _decode_command(Reader(plain, LAYER, at))


# Leave by options bits 5-7 (remove children, request, rejoin).
_LEAVES = tuple(Leave(bool(bits & 4), bool(bits & 2), bool(bits & 1)) for bits in range(8))
_new_rejoin_request = builder(RejoinRequest)
_new_rejoin_response = builder(RejoinResponse)
