"""IEEE 802.15.4 MAC frames as ZigBee uses them (2003/2006 frame formats).

Layout (IEEE 802.15.4-2006 7.2): frame control (2, LE: type bits 0-2, security
3, frame pending 4, ack request 5, PAN ID compression 6, destination address
mode 10-11, frame version 12-13, source address mode 14-15), sequence number,
destination PAN and address, source PAN (absent when compressed) and address,
payload, FCS. The FCS is the ITU-T CRC-16 (CRC-16/KERMIT: reflected 0x1021,
initial value 0) over the MHR and payload, sent little-endian; the PSDU is at
most aMaxPHYPacketSize (127) bytes including it.

ZigBee never uses MAC security (spec 1.4/4.2), so a frame with the security bit
set is refused rather than half-decoded.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from gbcs.errors import DecodeError, EncodeError

from ._wire import Reader, builder, check_range, eui64, u8, u16

__all__ = [
    "BROADCAST_ADDRESS",
    "BROADCAST_PAN",
    "MAX_PSDU",
    "Address",
    "AssociationRequest",
    "AssociationResponse",
    "AssociationStatus",
    "Beacon",
    "BeaconRequest",
    "Capability",
    "DataRequest",
    "MacCommand",
    "MacCommandId",
    "MacFrame",
    "MacFrameType",
    "ZigbeeBeaconPayload",
    "decode_mac",
    "encode_mac",
    "fcs",
]

LAYER = "mac"
MAX_PSDU = 127
BROADCAST_PAN = 0xFFFF
BROADCAST_ADDRESS = 0xFFFF

Address = int | bytes
"""A short address (``int``) or an EUI-64 (8 ``bytes``, display order)."""


class MacFrameType(IntEnum):
    BEACON = 0
    DATA = 1
    ACK = 2
    COMMAND = 3


class MacCommandId(IntEnum):
    ASSOCIATION_REQUEST = 0x01
    ASSOCIATION_RESPONSE = 0x02
    DATA_REQUEST = 0x04
    BEACON_REQUEST = 0x07


class AssociationStatus(IntEnum):
    SUCCESS = 0x00
    PAN_AT_CAPACITY = 0x01
    PAN_ACCESS_DENIED = 0x02


# CRC-16/KERMIT is the bit-reflected CRC-CCITT: reflecting every input byte, running
# the plain CCITT CRC (binascii.crc_hqx, in C) and reflecting the result gives the
# same value as the bitwise loop, at C speed (every frame on the medium needs it).
_REFLECT8 = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))
_crc_hqx = binascii.crc_hqx
_pack_be16 = struct.Struct(">H").pack


def fcs(data: bytes) -> bytes:
    """The 2-byte 802.15.4 FCS of ``data`` (CRC-16/KERMIT), in transmission order."""
    if type(data) is not bytes:
        data = bytes(data)
    # reflect16(crc) sent little-endian == reflect8 of each byte of crc, high byte first
    return _pack_be16(_crc_hqx(data.translate(_REFLECT8), 0)).translate(_REFLECT8)


def _fcs_matches(psdu: bytes) -> bool:
    """Whether ``psdu``'s last two bytes are the FCS of the rest (``psdu`` is ``bytes``).

    Byte-reflected, the PSDU is the CCITT input followed by its CRC big-endian, and
    a CRC with initial value 0 over a message and its own CRC is 0.
    """
    return not _crc_hqx(psdu.translate(_REFLECT8), 0)


@dataclass(frozen=True, slots=True)
class Capability:
    """Capability information byte (802.15.4 7.3.1.2; reused by ZigBee NWK rejoin and ZDO).

    A GB ESME is a mains-powered router (:meth:`router`); a GSME is a sleepy end
    device (:meth:`sleepy_end_device`).
    """

    alternate_pan_coordinator: bool = False
    full_function_device: bool = False
    mains_powered: bool = False
    rx_on_when_idle: bool = False
    security_capable: bool = False
    allocate_address: bool = True

    @classmethod
    def router(cls) -> Capability:
        return cls(False, True, True, True, False, True)

    @classmethod
    def sleepy_end_device(cls) -> Capability:
        return cls()

    def encode(self) -> bytes:
        bits = (
            self.alternate_pan_coordinator,
            self.full_function_device,
            self.mains_powered,
            self.rx_on_when_idle,
            False,
            False,
            self.security_capable,
            self.allocate_address,
        )
        return bytes((sum(1 << i for i, bit in enumerate(bits) if bit),))

    @classmethod
    def decode(cls, reader: Reader) -> Capability:
        at = reader.offset
        value = reader.u8("capability information")
        if value & 0x30:
            raise reader.error("capability information", "reserved bits 4-5 are set", at)
        if cls is Capability:
            return _capability(value)
        return cls(*(bool(value & (1 << i)) for i in (0, 1, 2, 3, 6, 7)))


_capabilities: dict[int, Capability] = {}  # by byte value; at most 64 valid ones


def _capability(value: int) -> Capability:
    """The Capability of a valid byte (reserved bits 4-5 clear), built once per value."""
    capability = _capabilities.get(value)
    if capability is None:
        capability = Capability(*(bool(value & (1 << i)) for i in (0, 1, 2, 3, 6, 7)))
        _capabilities[value] = capability
    return capability


@dataclass(frozen=True, slots=True)
class BeaconRequest:
    pass


@dataclass(frozen=True, slots=True)
class DataRequest:
    pass


@dataclass(frozen=True, slots=True)
class AssociationRequest:
    capability: Capability


@dataclass(frozen=True, slots=True)
class AssociationResponse:
    short_address: int
    status: int = AssociationStatus.SUCCESS


MacCommand = BeaconRequest | DataRequest | AssociationRequest | AssociationResponse


@dataclass(frozen=True, slots=True)
class ZigbeeBeaconPayload:
    """The 15-byte ZigBee beacon payload (spec 3.6.7, table 3.56); protocol ID is 0.

    ``extended_pan_id`` is in display order. ZigBee Pro uses stack profile 2 and
    protocol version 2 and sends a tx offset of 0xFFFFFF (no beacon scheduling).
    """

    extended_pan_id: bytes
    router_capacity: bool = True
    end_device_capacity: bool = True
    device_depth: int = 0
    update_id: int = 0
    stack_profile: int = 2
    protocol_version: int = 2
    tx_offset: int = 0xFFFFFF

    def encode(self) -> bytes:
        check_range(self.stack_profile, 4, "stack_profile")
        check_range(self.protocol_version, 4, "protocol_version")
        check_range(self.device_depth, 4, "device_depth")
        check_range(self.tx_offset, 24, "tx_offset")
        flags = (
            (0x04 if self.router_capacity else 0)
            | (self.device_depth << 3)
            | (0x80 if self.end_device_capacity else 0)
        )
        return (
            b"\x00"
            + bytes((self.stack_profile | self.protocol_version << 4, flags))
            + eui64(self.extended_pan_id, "extended_pan_id")
            + self.tx_offset.to_bytes(3, "little")
            + u8(self.update_id, "update_id")
        )

    @classmethod
    def decode(cls, reader: Reader) -> ZigbeeBeaconPayload:
        at = reader.offset
        if (protocol := reader.u8("protocol id")) != 0:
            raise reader.error("protocol id", f"{protocol} is not ZigBee (0)", at)
        versions = reader.u8("stack profile")
        at = reader.offset
        flags = reader.u8("beacon flags")
        if flags & 0x03:
            raise reader.error("beacon flags", "reserved bits 0-1 are set", at)
        extended_pan_id = reader.eui64("extended pan id")
        tx_offset = reader.u24("tx offset")
        update_id = reader.u8("update id")
        return cls(
            extended_pan_id,
            bool(flags & 0x04),
            bool(flags & 0x80),
            (flags >> 3) & 0x0F,
            update_id,
            versions & 0x0F,
            versions >> 4,
            tx_offset,
        )


@dataclass(frozen=True, slots=True)
class Beacon:
    """Beacon MSDU: superframe specification, empty GTS and pending-address fields, payload.

    ZigBee networks are non-beacon-enabled: beacon and superframe order 15 (7.2.2.1.2).
    """

    payload: ZigbeeBeaconPayload
    pan_coordinator: bool = True
    association_permit: bool = False
    beacon_order: int = 15
    superframe_order: int = 15
    final_cap_slot: int = 15
    battery_life_extension: bool = False

    def encode(self) -> bytes:
        for name in ("beacon_order", "superframe_order", "final_cap_slot"):
            check_range(getattr(self, name), 4, name)
        spec = (
            self.beacon_order
            | self.superframe_order << 4
            | self.final_cap_slot << 8
            | bool(self.battery_life_extension) << 12
            | bool(self.pan_coordinator) << 14
            | bool(self.association_permit) << 15
        )
        return u16(spec, "superframe") + b"\x00\x00" + self.payload.encode()

    @classmethod
    def decode(cls, reader: Reader) -> Beacon:
        at = reader.offset
        spec = reader.u16("superframe specification")
        if spec & 0x2000:
            raise reader.error("superframe specification", "reserved bit 13 is set", at)
        at = reader.offset
        if reader.u8("gts specification"):
            raise reader.error("gts specification", "GTS are not used by ZigBee", at)
        at = reader.offset
        if reader.u8("pending address specification"):
            raise reader.error(
                "pending address specification", "pending addresses are not supported", at
            )
        payload = ZigbeeBeaconPayload.decode(reader)
        return cls(
            payload,
            bool(spec & 0x4000),
            bool(spec & 0x8000),
            spec & 0x0F,
            (spec >> 4) & 0x0F,
            (spec >> 8) & 0x0F,
            bool(spec & 0x1000),
        )


@dataclass(frozen=True, slots=True)
class MacFrame:
    """One MAC frame; :func:`encode_mac` adds the FCS, :func:`decode_mac` checks it.

    ``payload`` is a :class:`Beacon` for beacons, a MAC command dataclass for
    commands, and raw bytes (the NWK frame) for data; acks have an empty one.
    ``src_pan`` is ``None`` when the source PAN ID is elided by PAN ID
    compression (it then equals ``dst_pan``).
    """

    frame_type: MacFrameType
    sequence: int
    payload: bytes | Beacon | MacCommand = b""
    dst_pan: int | None = None
    dst: Address | None = None
    src_pan: int | None = None
    src: Address | None = None
    ack_request: bool = False
    frame_pending: bool = False
    frame_version: int = 0


_COMMAND_BYTES: dict[type, bytes] = {
    BeaconRequest: bytes((MacCommandId.BEACON_REQUEST,)),
    DataRequest: bytes((MacCommandId.DATA_REQUEST,)),
}
_COMMANDS: dict[type, MacCommandId] = {
    BeaconRequest: MacCommandId.BEACON_REQUEST,
    DataRequest: MacCommandId.DATA_REQUEST,
    AssociationRequest: MacCommandId.ASSOCIATION_REQUEST,
    AssociationResponse: MacCommandId.ASSOCIATION_RESPONSE,
}


def _mode(address: Address | None, field: str) -> int:
    if address is None:
        return 0
    if isinstance(address, int):
        check_range(address, 16, field)
        return 2
    if not isinstance(address, bytes | bytearray) or len(address) != 8:
        raise EncodeError(f"{field} must be a short address or 8 bytes")
    return 3


def _address(address: Address, field: str) -> bytes:
    return u16(address, field) if isinstance(address, int) else eui64(address, field)


def _encode_payload(frame: MacFrame) -> bytes:
    payload = frame.payload
    kind = _MAC_TYPES[int(frame.frame_type)]  # in range: checked by _encode_mac_checked
    if kind == MacFrameType.BEACON:
        if not isinstance(payload, Beacon):
            raise EncodeError("a beacon frame needs a Beacon payload")
        return payload.encode()
    if kind == MacFrameType.COMMAND:
        command_id = _COMMANDS.get(type(payload))
        if command_id is None:
            raise EncodeError("a command frame needs a MAC command payload")
        body = b""
        if isinstance(payload, AssociationRequest):
            body = payload.capability.encode()
        elif isinstance(payload, AssociationResponse):
            body = u16(payload.short_address, "short_address") + u8(payload.status, "status")
        return bytes((command_id,)) + body
    if not isinstance(payload, bytes | bytearray):
        raise EncodeError(f"a {kind.name.lower()} frame needs a bytes payload")
    if kind == MacFrameType.ACK and payload:
        raise EncodeError("an acknowledgement has no payload")
    return bytes(payload)


_DATA_MHR = struct.Struct("<HBHHH")  # control, sequence, dst pan, dst, src (PAN compressed)
_DATA_CONTROL = 0x8841  # data, PAN ID compression, short destination and source


def encode_mac(frame: MacFrame) -> bytes:
    """The PSDU for ``frame``: MHR, payload and FCS."""
    # Fast path: the data frame between two short addresses of one PAN that carries
    # every NWK frame. Anything else, or any value out of range, takes the
    # field-by-field path below, which raises the precise EncodeError.
    payload = frame.payload
    dst = frame.dst
    src = frame.src
    dst_pan = frame.dst_pan
    ack = frame.ack_request
    pending = frame.frame_pending
    version = frame.frame_version
    if (
        frame.frame_type is MacFrameType.DATA
        and type(payload) is bytes
        and type(dst) is int
        and type(src) is int
        and type(dst_pan) is int
        and frame.src_pan is None
        and type(ack) is bool
        and type(pending) is bool
        and type(version) is int
        and version == 0
    ):
        try:
            body = (
                _DATA_MHR.pack(
                    _DATA_CONTROL | pending << 4 | ack << 5, frame.sequence, dst_pan, dst, src
                )
                + payload
            )
        except struct.error:
            pass
        else:
            if len(body) <= MAX_PSDU - 2:
                return body + fcs(body)
    return _encode_plain(frame) or _encode_mac_checked(frame)


_ASSOCIATION_RESPONSE = struct.Struct("<BHB")  # command id, short address, status


def _wire_address(address: object) -> tuple[int, int | bytes] | None:
    """Addressing mode and wire form of a plain short (2) or extended (3) address."""
    if type(address) is int:
        return 2, address
    if type(address) is bytes and len(address) == 8:
        return 3, address[::-1]
    return None


def _encode_plain(frame: MacFrame) -> bytes | None:
    """encode_mac for any frame with plainly valid fields, else ``None``.

    The MHR is packed with the layout decode_mac uses for its frame control; the
    payload is encoded only once the header is known to be valid, so its errors
    are the ones _encode_mac_checked would raise first, too.
    """
    kind = frame.frame_type
    ack = frame.ack_request
    pending = frame.frame_pending
    version = frame.frame_version
    if (
        type(kind) is not MacFrameType
        or type(ack) is not bool
        or type(pending) is not bool
        or type(version) is not int
        or not 0 <= version <= 1
    ):
        return None
    dst, src, dst_pan, src_pan = frame.dst, frame.src, frame.dst_pan, frame.src_pan
    values: list[object] = [0, frame.sequence]
    dst_mode = src_mode = 0
    if dst is not None:
        if type(dst_pan) is not int:
            return None
        address = _wire_address(dst)
        if address is None:
            return None
        dst_mode, dst = address
        values += (dst_pan, dst)
    elif dst_pan is not None:
        return None
    compressed = src is not None and src_pan is None
    if src is not None:
        if compressed:
            if not dst_mode:
                return None
        elif type(src_pan) is not int:
            return None
        else:
            values.append(src_pan)
        address = _wire_address(src)
        if address is None:
            return None
        src_mode, src = address
        values.append(src)
    elif src_pan is not None:
        return None
    control = (
        kind
        | pending << 4
        | ack << 5
        | compressed << 6
        | dst_mode << 10
        | version << 12
        | src_mode << 14
    )
    values[0] = control
    layout = _layout_for(control)
    if layout is None:
        return None
    try:
        mhr: bytes = layout[6](*values)
    except struct.error:
        return None
    payload = frame.payload
    command = type(payload)
    tail: bytes
    if kind is MacFrameType.DATA or kind is MacFrameType.ACK:
        if command is not bytes or (payload and kind is MacFrameType.ACK):
            return None
        tail = payload  # type: ignore[assignment]
    elif kind is MacFrameType.BEACON:
        if command is not Beacon:
            return None
        tail = payload.encode()  # type: ignore[union-attr]
    elif command is BeaconRequest or command is DataRequest:
        tail = _COMMAND_BYTES[command]
    elif command is AssociationRequest and type(payload.capability) is Capability:  # type: ignore[union-attr]
        tail = b"\x01" + payload.capability.encode()  # type: ignore[union-attr]
    elif command is AssociationResponse:
        try:
            tail = _ASSOCIATION_RESPONSE.pack(
                MacCommandId.ASSOCIATION_RESPONSE,
                payload.short_address,  # type: ignore[union-attr]
                payload.status,  # type: ignore[union-attr]
            )
        except struct.error:
            return None
    else:
        return None
    body = mhr + tail
    if len(body) > MAX_PSDU - 2:
        return None
    return body + fcs(body)


def _encode_mac_checked(frame: MacFrame) -> bytes:
    dst_mode = _mode(frame.dst, "dst")
    src_mode = _mode(frame.src, "src")
    if (frame.dst_pan is None) != (dst_mode == 0):
        raise EncodeError("dst_pan is present exactly when dst is")
    if frame.src_pan is not None and src_mode == 0:
        raise EncodeError("src_pan without src")
    compressed = src_mode != 0 and frame.src_pan is None
    if compressed and dst_mode == 0:
        raise EncodeError("PAN ID compression (src_pan=None) needs a destination")
    check_range(frame.frame_version, 2, "frame_version")
    if frame.frame_version > 1:
        raise EncodeError("only 802.15.4-2003/2006 frame versions (0, 1) are supported")
    # An int frame type beyond 3 would spill into the security and flag bits.
    if frame.frame_type not in _MAC_TYPES:
        raise EncodeError(f"frame_type {frame.frame_type!r} is not a MAC frame type")
    control = (
        int(frame.frame_type)
        | bool(frame.frame_pending) << 4
        | bool(frame.ack_request) << 5
        | compressed << 6
        | dst_mode << 10
        | frame.frame_version << 12
        | src_mode << 14
    )
    mhr = u16(control, "frame control") + u8(frame.sequence, "sequence")
    if frame.dst is not None and frame.dst_pan is not None:
        mhr += u16(frame.dst_pan, "dst_pan") + _address(frame.dst, "dst")
    if frame.src is not None:
        if frame.src_pan is not None:
            mhr += u16(frame.src_pan, "src_pan")
        mhr += _address(frame.src, "src")
    body = mhr + _encode_payload(frame)
    psdu = body + fcs(body)
    if len(psdu) > MAX_PSDU:
        raise EncodeError(f"PSDU of {len(psdu)} bytes exceeds aMaxPHYPacketSize ({MAX_PSDU})")
    return psdu


def _read_address(reader: Reader, mode: int, field: str) -> Address:
    return reader.u16(field) if mode == 2 else reader.eui64(field)


def _decode_command(reader: Reader) -> MacCommand:
    at = reader.offset
    command_id = reader.u8("command id")
    command: MacCommand
    if command_id == MacCommandId.BEACON_REQUEST:
        command = BeaconRequest()
    elif command_id == MacCommandId.DATA_REQUEST:
        command = DataRequest()
    elif command_id == MacCommandId.ASSOCIATION_REQUEST:
        command = AssociationRequest(Capability.decode(reader))
    elif command_id == MacCommandId.ASSOCIATION_RESPONSE:
        command = AssociationResponse(reader.u16("short address"), reader.u8("status"))
    else:
        raise reader.error("command id", f"unsupported MAC command 0x{command_id:02X}", at)
    reader.end("command payload")
    return command


_MAC_TYPES = tuple(MacFrameType)  # MacFrameType(i) is _MAC_TYPES[i]
_BEACON = struct.Struct("<HBBBBB8s3sB")  # superframe ... update id: 19 bytes
_BEACON_REQUEST = BeaconRequest()
_new_frame = builder(MacFrame)
_new_beacon = builder(Beacon)
_new_beacon_payload = builder(ZigbeeBeaconPayload)
_DATA_REQUEST = DataRequest()
_new_association_request = builder(AssociationRequest)
_new_association_response = builder(AssociationResponse)

# Per frame control value: None when decode_mac would refuse it, else (type,
# unpack_from of the MHR, MHR length, dst mode, src mode, compressed, pack of the MHR).
_Layout = tuple[MacFrameType, Any, int, int, int, bool, Any]
_layouts: dict[int, _Layout | None] = {}


def _layout(control: int) -> _Layout | None:
    kind = control & 0x07
    dst_mode, version, src_mode = (control >> 10) & 3, (control >> 12) & 3, (control >> 14) & 3
    compressed = bool(control & 0x40)
    if (
        kind > MacFrameType.COMMAND
        or control & 0x0388
        or 1 in (dst_mode, src_mode)
        or version > 1
        or (compressed and not (dst_mode and src_mode))
    ):
        return None
    fmt = "<HB"
    if dst_mode:
        fmt += "H" + ("H" if dst_mode == 2 else "8s")
    if src_mode:
        fmt += ("" if compressed else "H") + ("H" if src_mode == 2 else "8s")
    mhr = struct.Struct(fmt)
    return (_MAC_TYPES[kind], mhr.unpack_from, mhr.size, dst_mode, src_mode, compressed, mhr.pack)


def _layout_for(control: int) -> _Layout | None:
    """The cached struct layout for a frame-control value (None: not a fast-path shape)."""
    try:
        return _layouts[control]
    except KeyError:
        layout = _layouts[control] = _layout(control)
        return layout


def _decode_fast(psdu: bytes) -> MacFrame | None:
    """``psdu`` (FCS checked) as a frame, or ``None`` to leave it to the careful decoder."""
    control = psdu[0] | psdu[1] << 8
    layout = _layout_for(control)
    if layout is None:
        return None
    kind, unpack_from, size, dst_mode, src_mode, compressed, _ = layout
    end = len(psdu) - 2
    if end < size:
        return None
    fields = unpack_from(psdu)
    dst_pan = dst = src_pan = src = None
    i = 2
    if dst_mode:
        dst_pan = fields[2]
        dst = fields[3] if dst_mode == 2 else fields[3][::-1]
        i = 4
    if src_mode:
        if not compressed:
            src_pan = fields[i]
            i += 1
        src = fields[i] if src_mode == 2 else fields[i][::-1]
    payload: bytes | Beacon | MacCommand
    if kind is MacFrameType.DATA:
        payload = psdu[size:end]
    elif kind is MacFrameType.COMMAND:
        rest = psdu[size:end]
        if rest == b"\x07":
            payload = _BEACON_REQUEST
        elif rest == b"\x04":
            payload = _DATA_REQUEST
        elif len(rest) == 2 and rest[0] == MacCommandId.ASSOCIATION_REQUEST and not rest[1] & 0x30:
            payload = _new_association_request(_capability(rest[1]))
        elif len(rest) == 4 and rest[0] == MacCommandId.ASSOCIATION_RESPONSE:
            payload = _new_association_response(rest[1] | rest[2] << 8, rest[3])
        else:
            return None
    elif kind is MacFrameType.ACK:
        if end != size:
            return None
        payload = b""
    else:
        if end - size != _BEACON.size:
            return None
        spec, gts, pending, protocol, versions, flags, epid, tx, update = _BEACON.unpack_from(
            psdu, size
        )
        if spec & 0x2000 or gts or pending or protocol or flags & 0x03:
            return None
        payload = _new_beacon(
            _new_beacon_payload(
                epid[::-1],
                bool(flags & 0x04),
                bool(flags & 0x80),
                (flags >> 3) & 0x0F,
                update,
                versions & 0x0F,
                versions >> 4,
                int.from_bytes(tx, "little"),
            ),
            bool(spec & 0x4000),
            bool(spec & 0x8000),
            spec & 0x0F,
            (spec >> 4) & 0x0F,
            (spec >> 8) & 0x0F,
            bool(spec & 0x1000),
        )
    return _new_frame(
        kind,
        fields[1],
        payload,
        dst_pan,
        dst,
        src_pan,
        src,
        bool(control & 0x20),
        bool(control & 0x10),
        (control >> 12) & 3,
    )


def decode_mac(psdu: bytes, *, base: int = 0) -> MacFrame:
    """Parse a PSDU whose last two bytes are the FCS; the FCS must match."""
    if type(psdu) is not bytes:
        psdu = bytes(psdu)
    frame = None
    if 5 <= len(psdu) <= MAX_PSDU and _fcs_matches(psdu):
        frame = _decode_fast(psdu)
    if frame is None:
        frame = _decode_mac_checked(psdu, base)
    return frame


def _decode_mac_checked(psdu: bytes, base: int) -> MacFrame:
    """decode_mac field by field: every malformation raises its precise DecodeError."""
    if len(psdu) > MAX_PSDU:
        raise DecodeError(LAYER, "length", base, f"{len(psdu)} bytes exceeds {MAX_PSDU}")
    if len(psdu) < 5:
        raise DecodeError(LAYER, "length", base + len(psdu), "shorter than MHR + FCS (5 bytes)")
    body, received = psdu[:-2], psdu[-2:]
    if fcs(body) != received:
        raise DecodeError(
            LAYER,
            "fcs",
            base + len(body),
            f"FCS is {received.hex().upper()}, computed {fcs(body).hex().upper()}",
        )
    reader = Reader(body, LAYER, base)
    control = reader.u16("frame control")
    kind_value = control & 0x07
    if kind_value > MacFrameType.COMMAND:
        raise reader.error("frame type", f"reserved frame type {kind_value}", base)
    if control & 0x08:
        raise reader.error("frame control", "MAC security is not used by ZigBee", base)
    if control & 0x0380:
        raise reader.error("frame control", "reserved bits 7-9 are set", base)
    dst_mode, version, src_mode = (control >> 10) & 3, (control >> 12) & 3, (control >> 14) & 3
    if 1 in (dst_mode, src_mode):
        raise reader.error("frame control", "reserved addressing mode 1", base)
    if version > 1:
        raise reader.error("frame control", f"unsupported frame version {version}", base)
    compressed = bool(control & 0x40)
    if compressed and not (dst_mode and src_mode):
        raise reader.error("frame control", "PAN ID compression without both addresses", base)
    sequence = reader.u8("sequence")
    dst_pan = dst = src_pan = src = None
    if dst_mode:
        dst_pan = reader.u16("dst pan")
        dst = _read_address(reader, dst_mode, "dst address")
    if src_mode:
        if not compressed:
            src_pan = reader.u16("src pan")
        src = _read_address(reader, src_mode, "src address")
    kind = _MAC_TYPES[kind_value]
    payload: bytes | Beacon | MacCommand
    if kind == MacFrameType.BEACON:
        payload = Beacon.decode(reader)
        reader.end("beacon payload")
    elif kind == MacFrameType.COMMAND:
        payload = _decode_command(reader)
    else:
        payload = reader.rest()
        if kind == MacFrameType.ACK and payload:
            raise reader.error("payload", "an acknowledgement has no payload", reader.offset)
    return MacFrame(
        kind,
        sequence,
        payload,
        dst_pan,
        dst,
        src_pan,
        src,
        bool(control & 0x20),
        bool(control & 0x10),
        version,
    )
