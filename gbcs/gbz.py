"""GBZ payloads: the ZigBee (ZSE profile 0x0109) payload family (CRIB §5.3).

The model keeps every byte that matters for a byte-exact round trip (the raw
component control byte, the ZCL frame control, the ZCL payload, the whole
protected block of an encrypted component), so MACs and signatures computed
over a re-encoded payload match the received one. Reading ZCL attribute
records is a separate *view* (:func:`zcl_view`): a body the view cannot parse
stays bytes and is marked undecoded, while GBZ framing errors raise
:class:`DecodeError` with ``layer="gbz"`` and an absolute offset.

Byte order: the GBZ header fields (profile id, cluster id, lengths, alert
code, timestamps) are big-endian; everything inside a ZCL frame is
little-endian (CRIB §1.4, §5.3).
"""

from __future__ import annotations

import datetime
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias

from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import CraFlag, FrameParts, GbcsMessage
from gbcs.primitives import Reader, utc_from_gbz

__all__ = [
    "CLUSTER_NAMES",
    "CONTROL_ENCRYPTED",
    "CONTROL_FROM_DATE_TIME",
    "CONTROL_LAST",
    "FIRMWARE_RECEIPT_ALERTS",
    "FUTURE_DATED_ALERTS",
    "INTEGRITY_WARNING_ALERTS",
    "PROFILE_ID",
    "SPECIAL_ALERTS",
    "ZCL_HARDWARE_FAILURE",
    "ZCL_INVALID_VALUE",
    "ZCL_MALFORMED_COMMAND",
    "ZCL_NOT_FOUND",
    "ZCL_UNSUPPORTED_ATTRIBUTE",
    "ZCL_UNSUPPORTED_CLUSTER",
    "ZCL_UNSUPPORTED_CLUSTER_COMMAND",
    "ZCL_UNSUPPORTED_GENERAL_COMMAND",
    "AlertBody",
    "AttributeRecord",
    "ClusterCommand",
    "DefaultResponse",
    "EncryptedFrame",
    "FirmwareReceipt",
    "FutureDatedOutcome",
    "GbzComponent",
    "GbzPayload",
    "IntegrityWarning",
    "ReadAttributes",
    "ReadAttributesResponse",
    "Undecoded",
    "WriteAttributes",
    "WriteAttributesResponse",
    "ZclFrame",
    "ZclValue",
    "ZclView",
    "decode",
    "decode_message_payload",
    "decrypted_frame",
    "default_response",
    "encode",
    "from_json",
    "is_gbz",
    "one_component",
    "single_frame",
    "to_json",
    "with_default_response_bit",
    "zcl_view",
]

LAYER = "gbz"
PROFILE_ID = 0x0109
_PROFILE = b"\x01\x09"

# Component control byte (CRIB §5.3). Other bits are kept raw, never interpreted.
CONTROL_LAST = 0x01
CONTROL_ENCRYPTED = 0x02
CONTROL_FROM_DATE_TIME = 0x10

# ZCL frame control (ZCL 07-5123 §2.4.1.1).
FC_FRAME_TYPE = 0x03
FC_CLUSTER_SPECIFIC = 0x01
FC_MANUFACTURER_SPECIFIC = 0x04
FC_SERVER_TO_CLIENT = 0x08
FC_DISABLE_DEFAULT_RESPONSE = 0x10

# Protected block of an encrypted component: SC(1) IC(4) ciphertext tag(12) (CRIB §3.5).
BLOCK_SECURITY_CONTROL = 0x31
BLOCK_HEADER = 5
BLOCK_TAG = 12
BLOCK_MIN = BLOCK_HEADER + BLOCK_TAG

# Alert codes whose body replaces the components (CRIB §5.3).
FUTURE_DATED_ALERTS = frozenset((0x8F66, 0x8F67))
FIRMWARE_RECEIPT_ALERTS = frozenset((0x8F1C, 0x8F72))
INTEGRITY_WARNING_ALERTS = frozenset((0x81A0,))
SPECIAL_ALERTS = FUTURE_DATED_ALERTS | FIRMWARE_RECEIPT_ALERTS | INTEGRITY_WARNING_ALERTS
_FUTURE_DATED_LENGTH = 14  # MessageCode(2) OriginatorCounter(8) ClusterId(2) FC(1) Cmd(1)
_HASH_TAG = b"\x09\x20"  # octet-string tag and length 32, as in the DLMS receipt alert

CLUSTER_NAMES: dict[int, str] = {
    0x0000: "basic",
    0x0700: "price",
    0x0702: "metering",
    0x0703: "messaging",
    0x0704: "tunneling",
    0x0705: "prepayment",
    0x0707: "calendar",
    0x0708: "device management",
    0x0709: "events",
}

# Profile-wide command ids (ZCL §2.5, Table 2-3).
GENERAL_COMMAND_NAMES: dict[int, str] = {
    0x00: "read attributes",
    0x01: "read attributes response",
    0x02: "write attributes",
    0x03: "write attributes undivided",
    0x04: "write attributes response",
    0x05: "write attributes no response",
    0x06: "configure reporting",
    0x07: "configure reporting response",
    0x08: "read reporting configuration",
    0x09: "read reporting configuration response",
    0x0A: "report attributes",
    0x0B: "default response",
    0x0C: "discover attributes",
    0x0D: "discover attributes response",
}

# The ZCL status codes a GBZ command's refusal uses (ZCL §2.6.3).
ZCL_MALFORMED_COMMAND = 0x80
ZCL_UNSUPPORTED_CLUSTER_COMMAND = 0x81
ZCL_UNSUPPORTED_GENERAL_COMMAND = 0x82
ZCL_UNSUPPORTED_ATTRIBUTE = 0x86
ZCL_INVALID_VALUE = 0x87
ZCL_NOT_FOUND = 0x8B
ZCL_HARDWARE_FAILURE = 0xC0
ZCL_UNSUPPORTED_CLUSTER = 0xC3

# ZCL status codes (ZCL §2.6.3, Table 2-12).
STATUS_NAMES: dict[int, str] = {
    0x00: "success",
    0x01: "failure",
    0x7E: "not authorized",
    0x7F: "reserved field not zero",
    0x80: "malformed command",
    0x81: "unsupported cluster command",
    0x82: "unsupported general command",
    0x83: "unsupported manufacturer cluster command",
    0x84: "unsupported manufacturer general command",
    0x85: "invalid field",
    0x86: "unsupported attribute",
    0x87: "invalid value",
    0x88: "read only",
    0x89: "insufficient space",
    0x8A: "duplicate exists",
    0x8B: "not found",
    0x8C: "unreportable attribute",
    0x8D: "invalid data type",
    0x8E: "invalid selector",
    0x8F: "write only",
    0x90: "inconsistent startup state",
    0x91: "defined out of band",
    0x92: "inconsistent",
    0x93: "action denied",
    0x94: "timeout",
    0x95: "abort",
    0x96: "invalid image",
    0x97: "wait for data",
    0x98: "no image available",
    0x99: "require more image",
    0x9A: "notification pending",
    0xC0: "hardware failure",
    0xC1: "software failure",
    0xC2: "calibration error",
    0xC3: "unsupported cluster",
}


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ZclFrame:
    """A plain ZCL frame: header fields and the little-endian payload as sent.

    ``manufacturer_code`` is present exactly when frame-control bit 2 is set
    (ZCL §2.4.1.1.3); it sits before the sequence number on the wire.
    """

    frame_control: int
    sequence: int
    command_id: int
    payload: bytes = b""
    manufacturer_code: int | None = None

    @property
    def is_cluster_specific(self) -> bool:
        return self.frame_control & FC_FRAME_TYPE == FC_CLUSTER_SPECIFIC

    @property
    def is_profile_wide(self) -> bool:
        return self.frame_control & FC_FRAME_TYPE == 0

    @property
    def is_server_to_client(self) -> bool:
        return bool(self.frame_control & FC_SERVER_TO_CLIENT)

    @property
    def disable_default_response(self) -> bool:
        return bool(self.frame_control & FC_DISABLE_DEFAULT_RESPONSE)

    def encode(self) -> bytes:
        _byte(self.frame_control, "frame_control")
        _byte(self.sequence, "sequence")
        _byte(self.command_id, "command_id")
        _bytes(self.payload, "payload")
        if self.frame_control & FC_MANUFACTURER_SPECIFIC:
            if self.manufacturer_code is None:
                raise EncodeError(
                    "manufacturer_code: frame control bit 2 is set, the code is missing"
                )
            _uint(self.manufacturer_code, 0xFFFF, "manufacturer_code")
            return (
                bytes((self.frame_control,))
                + self.manufacturer_code.to_bytes(2, "little")
                + bytes((self.sequence, self.command_id))
                + self.payload
            )
        if self.manufacturer_code is not None:
            raise EncodeError("manufacturer_code: given but frame control bit 2 is clear")
        return bytes((self.frame_control, self.sequence, self.command_id)) + self.payload


@dataclass(frozen=True, slots=True)
class EncryptedFrame:
    """An encrypted component body (CRIB §5.3, §3.5).

    ``block`` is the whole protected block ``31 ‖ 00000000 ‖ ciphertext ‖
    tag(12)``, kept as bytes: decryption belongs to the crypto layer, and the
    ciphered length on the wire is always ``len(block)``. The ZCL header
    stays in clear and is always 3 bytes (no manufacturer code).
    """

    frame_control: int
    sequence: int
    command_id: int
    block: bytes
    additional_header_control: int = 0
    additional_frame_counter: int = 0

    @property
    def ciphered_length(self) -> int:
        return len(self.block)

    @property
    def ciphertext(self) -> bytes:
        return self.block[BLOCK_HEADER:-BLOCK_TAG]

    @property
    def tag(self) -> bytes:
        return self.block[-BLOCK_TAG:]

    def encode(self) -> bytes:
        _byte(self.additional_header_control, "additional_header_control")
        _byte(self.additional_frame_counter, "additional_frame_counter")
        _byte(self.frame_control, "frame_control")
        _byte(self.sequence, "sequence")
        _byte(self.command_id, "command_id")
        if self.frame_control & FC_MANUFACTURER_SPECIFIC:
            raise EncodeError(
                "frame_control: an encrypted component's 3-byte ZCL header has "
                "no room for a manufacturer code"
            )
        block = _bytes(self.block, "block")
        if not BLOCK_MIN <= len(block) <= 0xFFFF:
            raise EncodeError(f"block: {len(block)} bytes, needs {BLOCK_MIN}..65535")
        if block[0] != BLOCK_SECURITY_CONTROL or block[1:BLOCK_HEADER] != b"\x00\x00\x00\x00":
            raise EncodeError(
                "block: must start with security control 0x31 and a zero invocation counter"
            )
        return (
            bytes(
                (
                    self.additional_header_control,
                    self.additional_frame_counter,
                    self.frame_control,
                    self.sequence,
                    self.command_id,
                )
            )
            + len(block).to_bytes(2, "big")
            + block
        )


@dataclass(frozen=True, slots=True)
class GbzComponent:
    """One use-case component. ``control`` is the raw control byte.

    The raw byte is kept so unknown bits round-trip; the known bits must agree
    with the fields (encrypted bit with the frame type, from-date-time bit
    with ``from_date_time``, last bit with the position in the payload).
    """

    control: int
    cluster_id: int
    frame: ZclFrame | EncryptedFrame
    from_date_time: int | None = None

    @classmethod
    def build(
        cls,
        cluster_id: int,
        frame: ZclFrame | EncryptedFrame,
        from_date_time: int | None = None,
        last: bool = False,
    ) -> GbzComponent:
        """A component whose control byte is derived from the fields."""
        control = (
            (CONTROL_ENCRYPTED if isinstance(frame, EncryptedFrame) else 0)
            | (CONTROL_FROM_DATE_TIME if from_date_time is not None else 0)
            | (CONTROL_LAST if last else 0)
        )
        return cls(control, cluster_id, frame, from_date_time)

    @property
    def is_last(self) -> bool:
        return bool(self.control & CONTROL_LAST)

    @property
    def is_encrypted(self) -> bool:
        return bool(self.control & CONTROL_ENCRYPTED)

    @property
    def cluster_name(self) -> str | None:
        return CLUSTER_NAMES.get(self.cluster_id)

    def encode(self) -> bytes:
        control = _byte(self.control, "control")
        _uint(self.cluster_id, 0xFFFF, "cluster_id")
        if isinstance(self.frame, EncryptedFrame):
            if not control & CONTROL_ENCRYPTED:
                raise EncodeError("control: encrypted frame but bit 1 (encrypted) is clear")
        elif isinstance(self.frame, ZclFrame):
            if control & CONTROL_ENCRYPTED:
                raise EncodeError("control: plain frame but bit 1 (encrypted) is set")
        else:
            raise EncodeError("frame: must be a ZclFrame or an EncryptedFrame")
        body = self.frame.encode()
        if control & CONTROL_FROM_DATE_TIME:
            if self.from_date_time is None:
                raise EncodeError("from_date_time: control bit 4 is set, the value is missing")
            fdt = _uint(self.from_date_time, 0xFFFFFFFF, "from_date_time")
            body = fdt.to_bytes(4, "big") + body
        elif self.from_date_time is not None:
            raise EncodeError("from_date_time: given but control bit 4 is clear")
        if len(body) > 0xFFFF:
            raise EncodeError(f"component body of {len(body)} bytes exceeds 65535")
        return (
            bytes((control,))
            + self.cluster_id.to_bytes(2, "big")
            + len(body).to_bytes(2, "big")
            + body
        )


@dataclass(frozen=True, slots=True)
class FutureDatedOutcome:
    """Body of alerts 0x8F66/0x8F67: which future-dated command ran (CRIB §5.3).

    Names the command by its message code and originator counter and the ZCL
    command by cluster, frame control and command id.
    """

    message_code: int
    originator_counter: int
    cluster_id: int
    frame_control: int
    command_id: int

    def encode(self) -> bytes:
        return (
            bytes((_FUTURE_DATED_LENGTH,))
            + _uint(self.message_code, 0xFFFF, "message_code").to_bytes(2, "big")
            + _uint(self.originator_counter, 0xFFFF_FFFF_FFFF_FFFF, "originator_counter").to_bytes(
                8, "big"
            )
            + _uint(self.cluster_id, 0xFFFF, "cluster_id").to_bytes(2, "big")
            + bytes(
                (_byte(self.frame_control, "frame_control"), _byte(self.command_id, "command_id"))
            )
        )


@dataclass(frozen=True, slots=True)
class FirmwareReceipt:
    """Body of alerts 0x8F1C/0x8F72: the hash the device calculated over the image."""

    image_hash: bytes

    def encode(self) -> bytes:
        if len(_bytes(self.image_hash, "image_hash")) != 32:
            raise EncodeError(f"image_hash: must be 32 bytes, got {len(self.image_hash)}")
        return _HASH_TAG + self.image_hash


@dataclass(frozen=True, slots=True)
class IntegrityWarning:
    """Body of alert 0x81A0 (meter integrity issue): a 2-byte reason, read big-endian."""

    reason: int

    def encode(self) -> bytes:
        return _uint(self.reason, 0xFFFF, "reason").to_bytes(2, "big")


AlertBody: TypeAlias = FutureDatedOutcome | FirmwareReceipt | IntegrityWarning


def _body_type(alert_code: int) -> type | None:
    if alert_code in FUTURE_DATED_ALERTS:
        return FutureDatedOutcome
    if alert_code in FIRMWARE_RECEIPT_ALERTS:
        return FirmwareReceipt
    if alert_code in INTEGRITY_WARNING_ALERTS:
        return IntegrityWarning
    return None


@dataclass(frozen=True, slots=True)
class GbzPayload:
    """A whole GBZ payload.

    ``alert_code`` and ``timestamp`` (UTC seconds since 2000) are set exactly
    for alerts (CRA flag 3). ``alert_body`` replaces the components for the
    alert codes of CRIB §5.3 (count byte 1); with count 0 those alerts carry
    neither body nor components.
    """

    components: tuple[GbzComponent, ...] = ()
    alert_code: int | None = None
    timestamp: int | None = None
    alert_body: AlertBody | None = None

    @classmethod
    def build(
        cls,
        components: Sequence[GbzComponent],
        alert_code: int | None = None,
        timestamp: int | None = None,
    ) -> GbzPayload:
        """Set the last-component bit on the final component and clear it elsewhere."""
        n = len(components)
        fixed = tuple(
            replace(c, control=(c.control & ~CONTROL_LAST) | (CONTROL_LAST if i == n - 1 else 0))
            for i, c in enumerate(components)
        )
        return cls(fixed, alert_code, timestamp)

    @property
    def is_alert(self) -> bool:
        return self.alert_code is not None

    @property
    def when(self) -> datetime.datetime | None:
        """The alert timestamp as an aware UTC datetime (CRIB §1.4)."""
        return None if self.timestamp is None else utc_from_gbz(self.timestamp)

    def encode(self) -> bytes:
        return encode(self)


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

# Fast constructors for the decode hot path. A frozen dataclass __init__ sets
# every field through object.__setattr__ (about 0.8 us for ZclFrame here).
# Decode instead fills a plain twin class with the same slots (plain slot
# stores) and then switches the instance's class to the real one: CPython
# allows that between classes of identical layout, and the result is an
# ordinary instance of the frozen class. Decode only passes checked values.
_new = object.__new__


def _twin(cls: type) -> type:
    """A mutable class with ``cls``'s slots, whose instances can become ``cls``."""
    twin = type(f"_{cls.__name__}Builder", (), {"__slots__": cls.__slots__})
    probe = _new(twin)
    for name in cls.__slots__:
        setattr(probe, name, None)
    probe.__class__ = cls  # fails at import, not at decode, if the layouts differ
    return twin


_ZclFrameB = _twin(ZclFrame)
_EncryptedFrameB = _twin(EncryptedFrame)
_ComponentB = _twin(GbzComponent)
_PayloadB = _twin(GbzPayload)


def _payload(
    components: tuple[GbzComponent, ...],
    alert_code: int | None,
    timestamp: int | None,
    body: AlertBody | None,
) -> GbzPayload:
    p = _new(_PayloadB)
    p.components = components
    p.alert_code = alert_code
    p.timestamp = timestamp
    p.alert_body = body
    p.__class__ = GbzPayload
    return p


def is_gbz(payload: bytes) -> bool:
    """Payload-family dispatch: GBZ payloads start with the profile id (CRIB §5)."""
    return payload[:2] == _PROFILE


def decode(payload: bytes, alert: bool, base: int = 0) -> GbzPayload:
    """Decode a GBZ payload; ``alert`` is true for CRA flag 3 (alert header present).

    ``base`` is the absolute offset of the payload in the message, so errors
    point at the byte in the whole message.

    This is the hot path: one loop over the components with the bounds checked
    inline. Whatever it does not accept outright (malformed input, alert
    bodies) goes to :func:`_decode_checked`, which reads field by field and
    raises the precise :class:`DecodeError`.
    """
    data = bytes(payload)
    size = len(data)
    if size < 3 or data[0] != 0x01 or data[1] != 0x09:
        return _decode_checked(data, alert, base)
    count = data[2]
    pos = 3
    alert_code = timestamp = None
    if alert:
        if size < 9:
            return _decode_checked(data, alert, base)
        alert_code = data[3] << 8 | data[4]
        if count and alert_code in SPECIAL_ALERTS:
            return _decode_checked(data, alert, base)
        timestamp = int.from_bytes(data[5:9], "big")
        pos = 9
    components = []
    last = count - 1
    new = _new
    for i in range(count):
        b = pos + 5
        if b > size:
            return _decode_checked(data, alert, base)
        control = data[pos]
        e = b + (data[pos + 3] << 8 | data[pos + 4])
        if e > size or (control & CONTROL_LAST) != (i == last):
            return _decode_checked(data, alert, base)
        c = new(_ComponentB)
        c.control = control
        c.cluster_id = data[pos + 1] << 8 | data[pos + 2]
        if control & CONTROL_FROM_DATE_TIME:
            if e - b < 4:
                return _decode_checked(data, alert, base)
            c.from_date_time = int.from_bytes(data[b : b + 4], "big")
            b += 4
        else:
            c.from_date_time = None
        if control & CONTROL_ENCRYPTED:
            f = _encrypted_fast(data, b, e)
            if f is None:
                return _decode_checked(data, alert, base)
        else:
            if e - b < 3:
                return _decode_checked(data, alert, base)
            f = new(_ZclFrameB)
            fc = f.frame_control = data[b]
            if fc & FC_MANUFACTURER_SPECIFIC:
                if e - b < 5:
                    return _decode_checked(data, alert, base)
                f.manufacturer_code = data[b + 1] | data[b + 2] << 8
                b += 2
            else:
                f.manufacturer_code = None
            f.sequence = data[b + 1]
            f.command_id = data[b + 2]
            f.payload = data[b + 3 : e]
            f.__class__ = ZclFrame
        c.frame = f
        c.__class__ = GbzComponent
        components.append(c)
        pos = e
    if pos != size:
        return _decode_checked(data, alert, base)
    return _payload(tuple(components), alert_code, timestamp, None)


def _encrypted_fast(data: bytes, b: int, e: int) -> EncryptedFrame | None:
    """The encrypted frame in data[b:e], or None when anything is off (then re-read)."""
    if (
        e - b < 7 + BLOCK_MIN
        or data[b + 2] & FC_MANUFACTURER_SPECIFIC
        or (data[b + 5] << 8 | data[b + 6]) != e - b - 7
        or data[b + 7] != BLOCK_SECURITY_CONTROL
        or data[b + 8 : b + 12] != b"\x00\x00\x00\x00"
    ):
        return None
    f = _new(_EncryptedFrameB)
    f.frame_control = data[b + 2]
    f.sequence = data[b + 3]
    f.command_id = data[b + 4]
    f.block = data[b + 7 : e]
    f.additional_header_control = data[b]
    f.additional_frame_counter = data[b + 1]
    f.__class__ = EncryptedFrame
    return f


def _decode_checked(data: bytes, alert: bool, base: int) -> GbzPayload:
    """Field-by-field decode with precise errors; :func:`decode`'s slow path."""
    r = Reader(data, LAYER, base=base)
    if r.take(2, "profile id") != _PROFILE:
        raise r.error("profile id", f"0x{data[:2].hex().upper()} is not ZSE 0x0109", 0)
    count = r.u8("component count")
    alert_code = timestamp = None
    if alert:
        alert_code = r.uint(2, "alert code")
        timestamp = r.uint(4, "alert timestamp")
        if count and alert_code in SPECIAL_ALERTS:
            if count != 1:
                raise r.error(
                    "component count",
                    f"alert 0x{alert_code:04X} carries one body, count is {count}",
                    2,
                )
            body = _read_alert_body(r, alert_code)
            r.finish()
            return _payload((), alert_code, timestamp, body)
    last = count - 1
    components = [_read_component(r, i, i == last) for i in range(count)]
    r.finish()
    return _payload(tuple(components), alert_code, timestamp, None)


def decode_message_payload(message: GbcsMessage, parts: FrameParts | None = None) -> GbzPayload:
    """Decode the payload of a decoded message, alert header and offsets included."""
    return decode(
        message.payload,
        message.cra_flag == CraFlag.ALERT,
        parts.payload_offset if parts is not None else 0,
    )


def _read_component(r: Reader, index: int, last: bool) -> GbzComponent:
    """One component. Header and body are taken whole and indexed: this is the hot path."""
    start = r.pos
    try:
        head = r.take(5, "header")
        control = head[0]
        if bool(control & CONTROL_LAST) != last:
            raise r.error(
                "control",
                "last-component bit (0x01) must be set on the last component"
                if last
                else "last-component bit (0x01) set on a component that is not the last",
                start,
            )
        body = r.take(head[3] << 8 | head[4], "body")
        at = start + 5  # position of body[0] in the reader's buffer
        k = 0
        from_date_time = None
        if control & CONTROL_FROM_DATE_TIME:
            if len(body) < 4:
                raise _truncated(r, "from date-time", 4, len(body), at)
            from_date_time = int.from_bytes(body[:4], "big")
            k = 4
        if control & CONTROL_ENCRYPTED:
            frame: ZclFrame | EncryptedFrame = _read_encrypted(r, body, k, at)
        else:
            frame = _read_plain(r, body, k, at)
    except DecodeError as exc:
        raise DecodeError(LAYER, f"component {index} {exc.field}", exc.offset, exc.reason) from None
    return GbzComponent(control, head[1] << 8 | head[2], frame, from_date_time)


def _truncated(r: Reader, field: str, need: int, have: int, pos: int) -> DecodeError:
    return r.error(field, f"truncated: needs {need} bytes, {have} left", pos)


def _read_plain(r: Reader, body: bytes, k: int, at: int) -> ZclFrame:
    """ZCL header (ZCL §2.4.1) and payload; the manufacturer code is little-endian."""
    left = len(body) - k
    if left < 3:
        raise _truncated(r, "ZCL header", 3, left, at + k)
    fc = body[k]
    if fc & FC_MANUFACTURER_SPECIFIC:
        if left < 5:
            raise _truncated(r, "ZCL header", 5, left, at + k)
        return ZclFrame(fc, body[k + 3], body[k + 4], body[k + 5 :], body[k + 1] | body[k + 2] << 8)
    return ZclFrame(fc, body[k + 1], body[k + 2], body[k + 3 :], None)


def _read_encrypted(r: Reader, body: bytes, k: int, at: int) -> EncryptedFrame:
    """Additional header (2), ZCL header (3), ciphered length (2, BE), block (CRIB §5.3)."""
    left = len(body) - k
    if left < 7:
        raise _truncated(r, "encrypted component header", 7, left, at + k)
    fc = body[k + 2]
    if fc & FC_MANUFACTURER_SPECIFIC:
        raise r.error(
            "ZCL frame control",
            "manufacturer-specific bit set in an encrypted component (its ZCL header is 3 bytes)",
            at + k + 2,
        )
    length = body[k + 5] << 8 | body[k + 6]
    pos = at + k + 5
    if length != left - 7:
        raise r.error(
            "ciphered length", f"declares {length} bytes, {left - 7} remain in the component", pos
        )
    if length < BLOCK_MIN:
        raise r.error(
            "ciphered length", f"{length} is shorter than header and tag ({BLOCK_MIN})", pos
        )
    block = body[k + 7 :]
    if block[0] != BLOCK_SECURITY_CONTROL:
        raise r.error("security control", f"expected 0x31, found 0x{block[0]:02X}", pos + 2)
    if block[1:BLOCK_HEADER] != b"\x00\x00\x00\x00":
        raise r.error("invocation counter", "must be zero in GBCS", pos + 3)
    return EncryptedFrame(fc, body[k + 3], body[k + 4], block, body[k], body[k + 1])


def _read_alert_body(r: Reader, alert_code: int) -> AlertBody:
    if alert_code in FUTURE_DATED_ALERTS:
        r.expect(_FUTURE_DATED_LENGTH, "future-dated outcome length")
        raw = r.take(_FUTURE_DATED_LENGTH, "future-dated outcome")
        return FutureDatedOutcome(
            int.from_bytes(raw[0:2], "big"),
            int.from_bytes(raw[2:10], "big"),
            int.from_bytes(raw[10:12], "big"),
            raw[12],
            raw[13],
        )
    if alert_code in FIRMWARE_RECEIPT_ALERTS:
        r.expect(0x09, "image hash tag")
        r.expect(0x20, "image hash length")
        return FirmwareReceipt(r.take(32, "image hash"))
    return IntegrityWarning(r.uint(2, "integrity reason"))


# --------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------


def encode(p: GbzPayload) -> bytes:
    """Encode a payload; raises :class:`EncodeError` when fields disagree."""
    components = p.components
    if not isinstance(components, tuple | list):
        raise EncodeError("components: must be a tuple of GbzComponent")
    if len(components) > 0xFF:
        raise EncodeError(f"components: {len(components)} exceed the 255 a count byte holds")
    if (p.alert_code is None) != (p.timestamp is None):
        raise EncodeError("alert_code/timestamp: give both (alert) or neither")
    head = _PROFILE
    if p.alert_code is not None:
        code = _uint(p.alert_code, 0xFFFF, "alert_code")
        alert = code.to_bytes(2, "big") + _uint(p.timestamp, 0xFFFFFFFF, "timestamp").to_bytes(
            4, "big"
        )
        expected = _body_type(code)
        if p.alert_body is not None:
            if expected is None or not isinstance(p.alert_body, expected):
                raise EncodeError(
                    f"alert_body: alert 0x{p.alert_code:04X} does not carry a "
                    f"{type(p.alert_body).__name__}"
                )
            if components:
                raise EncodeError("components: an alert body replaces the components")
            return head + b"\x01" + alert + p.alert_body.encode()
        if expected is not None and components:
            raise EncodeError(
                f"components: alert 0x{p.alert_code:04X} carries "
                f"{expected.__name__}, not components"
            )
    else:
        if p.alert_body is not None:
            raise EncodeError("alert_body: needs an alert_code")
        alert = b""
    out = [head, bytes((len(components),)), alert]
    last = len(components) - 1
    for i, c in enumerate(components):
        if not isinstance(c, GbzComponent):
            raise EncodeError(f"components[{i}]: not a GbzComponent")
        if isinstance(c.control, int) and bool(c.control & CONTROL_LAST) != (i == last):
            raise EncodeError(
                f"components[{i}].control: last-component bit must be set on "
                "the last component only"
            )
        try:
            out.append(c.encode())
        except EncodeError as exc:
            raise EncodeError(f"components[{i}].{exc}") from None
    return b"".join(out)


def _uint(value: Any, top: int, field: str) -> int:
    if type(value) is not int or not 0 <= value <= top:
        raise EncodeError(f"{field}: expected an integer 0..{top}, got {value!r}")
    return value


def _byte(value: Any, field: str) -> int:
    return _uint(value, 0xFF, field)


def _bytes(value: Any, field: str) -> bytes:
    if not isinstance(value, bytes):
        raise EncodeError(f"{field}: expected bytes, got {type(value).__name__}")
    return value


# --------------------------------------------------------------------------
# ZCL view (never raises: what it cannot read is reported as Undecoded)
# --------------------------------------------------------------------------

# name, fixed size (None: variable) — ZCL §2.6.2, Table 2-10.
_TYPES: dict[int, tuple[str, int | None]] = {0x00: ("nodata", 0)}
for _i in range(8):
    _TYPES[0x08 + _i] = (f"data{8 * (_i + 1)}", _i + 1)
    _TYPES[0x18 + _i] = (f"bitmap{8 * (_i + 1)}", _i + 1)
    _TYPES[0x20 + _i] = (f"uint{8 * (_i + 1)}", _i + 1)
    _TYPES[0x28 + _i] = (f"int{8 * (_i + 1)}", _i + 1)
_TYPES.update(
    {
        0x10: ("bool", 1),
        0x30: ("enum8", 1),
        0x31: ("enum16", 2),
        0x38: ("semi", 2),
        0x39: ("single", 4),
        0x3A: ("double", 8),
        0x41: ("octstr", None),
        0x42: ("string", None),
        0x43: ("octstr16", None),
        0x44: ("string16", None),
        0x48: ("array", None),
        0x4C: ("struct", None),
        0x50: ("set", None),
        0x51: ("bag", None),
        0xE0: ("ToD", 4),
        0xE1: ("date", 4),
        0xE2: ("UTC", 4),
        0xE8: ("clusterId", 2),
        0xE9: ("attribId", 2),
        0xEA: ("bacOID", 4),
        0xF0: ("EUI64", 8),
        0xF1: ("key128", 16),
    }
)
del _i
_FLOAT_FORMATS = {0x38: "<e", 0x39: "<f", 0x3A: "<d"}
_MAX_DEPTH = 8

ZclScalar: TypeAlias = int | float | bool | bytes | str | tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class ZclValue:
    """A typed ZCL value. Arrays, sets, bags and structures hold ZclValue tuples.

    ``None`` is the "invalid" string/array length (0xFF / 0xFFFF). Times of
    day and dates are their four raw bytes; an EUI-64 is an int.
    """

    data_type: int
    value: ZclScalar | tuple[ZclValue, ...]
    element_type: int | None = None

    @property
    def type_name(self) -> str:
        entry = _TYPES.get(self.data_type)
        return entry[0] if entry else f"0x{self.data_type:02X}"


@dataclass(frozen=True, slots=True)
class AttributeRecord:
    """attribute id, status (responses) and value (absent when status is not 0)."""

    attribute_id: int
    status: int = 0
    value: ZclValue | None = None


@dataclass(frozen=True, slots=True)
class ReadAttributes:
    """ZCL §2.5.1: the attribute ids asked for."""

    attribute_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ReadAttributesResponse:
    """ZCL §2.5.2: one record per attribute asked for."""

    records: tuple[AttributeRecord, ...]


@dataclass(frozen=True, slots=True)
class WriteAttributes:
    """ZCL §2.5.3-2.5.4, 2.5.6: write (0x02), undivided (0x03), no response (0x05)."""

    command_id: int
    records: tuple[AttributeRecord, ...]


@dataclass(frozen=True, slots=True)
class WriteAttributesResponse:
    """ZCL §2.5.5: (status, attribute id); a lone success byte gives ((0, None),)."""

    records: tuple[tuple[int, int | None], ...]


@dataclass(frozen=True, slots=True)
class DefaultResponse:
    """ZCL §2.5.12: the command answered and its status."""

    command_id: int
    status: int


def single_frame(
    payload: GbzPayload, cluster_id: int, frame_control: int, command_id: int, what: str
) -> ZclFrame:
    """The one plain ZCL frame of a single-component use case, checked: its cluster,
    frame control (the disable-default-response bit aside) and command. Each failure is
    a DecodeError whose field names what is wrong, so a refusal can say it in ZCL."""
    if payload.is_alert or len(payload.components) != 1:
        raise DecodeError(
            LAYER, "components", 0, f"{what} is one component, found {len(payload.components)}"
        )
    component = payload.components[0]
    if component.cluster_id != cluster_id:
        raise DecodeError(
            LAYER,
            "cluster_id",
            0,
            f"{what} is for cluster 0x{cluster_id:04X}, not 0x{component.cluster_id:04X}",
        )
    frame = component.frame
    if not isinstance(frame, ZclFrame):
        raise DecodeError(LAYER, "component", 0, f"{what} must be sent in clear, not encrypted")
    if component.from_date_time is not None:
        # Future dating (CRIB §5.3) is not something these views can carry out or echo:
        # refused, not run at once with the date dropped.
        raise DecodeError(
            LAYER,
            "from_date_time",
            0,
            f"{what} is not taken future-dated (from-date-time {component.from_date_time})",
        )
    if component.control != CONTROL_LAST:
        raise DecodeError(
            LAYER,
            "control",
            0,
            f"{what} has component control 0x{component.control:02X}, not 0x{CONTROL_LAST:02X}",
        )
    if frame.frame_control & ~FC_DISABLE_DEFAULT_RESPONSE != frame_control:
        raise DecodeError(
            LAYER,
            "frame_control",
            0,
            f"{what} has ZCL frame control 0x{frame.frame_control:02X}, not 0x{frame_control:02X}",
        )
    if frame.command_id != command_id:
        raise DecodeError(
            LAYER,
            "command_id",
            0,
            f"{what} is command 0x{command_id:02X}, not 0x{frame.command_id:02X}",
        )
    return frame


def with_default_response_bit(frame_control: int, disable_default_response: bool) -> int:
    """``frame_control`` with the disable-default-response bit as a typed value keeps it
    (either is valid ZCL; the sender's must round-trip)."""
    return frame_control | (FC_DISABLE_DEFAULT_RESPONSE if disable_default_response else 0)


def one_component(cluster_id: int, frame: ZclFrame) -> GbzPayload:
    """A payload of one plain component: what a single-frame use case sends."""
    return GbzPayload.build([GbzComponent.build(cluster_id, frame)])


def default_response(cluster_id: int, answered: ZclFrame, status: int) -> GbzPayload:
    """The GBZ answer to a command that failed with ZCL ``status``: a ZCL Default Response
    (``commandId ‖ status``, ZCL §2.5.12) from the server, as in RTDS CS10a ERROR and
    NOT_FOUND (CRIB §5.3). Sent whatever the command's disable-default-response bit."""
    _byte(status, "status")
    direction = 0 if answered.is_server_to_client else FC_SERVER_TO_CLIENT
    frame = ZclFrame(direction, answered.sequence, 0x0B, bytes((answered.command_id, status)))
    return one_component(cluster_id, frame)


@dataclass(frozen=True, slots=True)
class ClusterCommand:
    """A cluster-specific command; its payload is left as bytes."""

    cluster_id: int
    command_id: int
    server_to_client: bool
    payload: bytes

    @property
    def cluster_name(self) -> str | None:
        return CLUSTER_NAMES.get(self.cluster_id)


@dataclass(frozen=True, slots=True)
class Undecoded:
    """The view could not read the payload; ``offset`` is within the ZCL payload."""

    reason: str
    offset: int = 0


ZclView: TypeAlias = (
    ReadAttributes
    | ReadAttributesResponse
    | WriteAttributes
    | WriteAttributesResponse
    | DefaultResponse
    | ClusterCommand
    | Undecoded
)


class _ViewError(Exception):
    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


def zcl_view(cluster_id: int, frame: ZclFrame) -> ZclView:
    """Read a plain ZCL frame for humans; never raises on payload content."""
    fc = frame.frame_control & FC_FRAME_TYPE
    if fc == FC_CLUSTER_SPECIFIC:
        return ClusterCommand(
            cluster_id, frame.command_id, frame.is_server_to_client, frame.payload
        )
    if fc != 0:
        return Undecoded(f"reserved ZCL frame type {fc}")
    data = frame.payload
    try:
        return _general_view(frame.command_id, data)
    except _ViewError as exc:
        return Undecoded(exc.reason, exc.offset)
    except (IndexError, ValueError, struct.error, OverflowError) as exc:  # defensive backstop
        return Undecoded(f"unreadable: {exc}")


def decrypted_frame(frame: EncryptedFrame, plaintext: bytes) -> ZclFrame:
    """The clear ZCL frame of an encrypted component, for display only.

    The ZCL header is in clear in the component; the plaintext is the ZCL
    payload. The result is a view: re-encoding it does not give the wire form.
    """
    return ZclFrame(
        frame.frame_control & ~FC_MANUFACTURER_SPECIFIC,
        frame.sequence,
        frame.command_id,
        bytes(plaintext),
    )


def _general_view(command: int, data: bytes) -> ZclView:
    n = len(data)
    if command == 0x00:
        if n % 2:
            raise _ViewError("odd number of bytes for attribute ids", n - 1)
        return ReadAttributes(
            tuple(int.from_bytes(data[i : i + 2], "little") for i in range(0, n, 2))
        )
    if command == 0x01:
        records = []
        pos = 0
        while pos < n:
            _need(data, pos, 3)
            attr = data[pos] | data[pos + 1] << 8
            status = data[pos + 2]
            pos += 3
            value = None
            if status == 0:
                _need(data, pos, 1)
                value, pos = _read_value(data, pos + 1, data[pos], 0)
            records.append(AttributeRecord(attr, status, value))
        return ReadAttributesResponse(tuple(records))
    if command in (0x02, 0x03, 0x05):
        records = []
        pos = 0
        while pos < n:
            _need(data, pos, 3)
            attr = data[pos] | data[pos + 1] << 8
            value, pos = _read_value(data, pos + 3, data[pos + 2], 0)
            records.append(AttributeRecord(attr, 0, value))
        return WriteAttributes(command, tuple(records))
    if command == 0x04:
        if n == 1:
            return WriteAttributesResponse(((data[0], None),))
        if n % 3:
            raise _ViewError("write attributes response records are 3 bytes each", n - n % 3)
        return WriteAttributesResponse(
            tuple((data[i], data[i + 1] | data[i + 2] << 8) for i in range(0, n, 3))
        )
    if command == 0x0B:
        if n != 2:
            raise _ViewError(f"default response is 2 bytes, got {n}", 0)
        return DefaultResponse(data[0], data[1])
    name = GENERAL_COMMAND_NAMES.get(command)
    what = f"{name} (0x{command:02X})" if name else f"profile-wide command 0x{command:02X}"
    raise _ViewError(f"{what} is not decoded by this view", 0)


def _need(data: bytes, pos: int, n: int) -> None:
    if pos + n > len(data):
        raise _ViewError(f"truncated: needs {n} bytes, {len(data) - pos} left", pos)


def _read_value(data: bytes, pos: int, dtype: int, depth: int) -> tuple[ZclValue, int]:
    """One ZCL value of type ``dtype`` at ``pos`` (ZCL §2.6.2); returns it and the end."""
    entry = _TYPES.get(dtype)
    if entry is None:
        raise _ViewError(f"unknown ZCL data type 0x{dtype:02X}", pos - 1)
    size = entry[1]
    if size is not None:
        end = pos + size
        if end > len(data):
            raise _ViewError(f"{entry[0]} needs {size} bytes, {len(data) - pos} left", pos)
        return ZclValue(dtype, _scalar(dtype, data[pos:end])), end
    if dtype in (0x41, 0x42, 0x43, 0x44):
        width = 1 if dtype <= 0x42 else 2
        _need(data, pos, width)
        n = int.from_bytes(data[pos : pos + width], "little")
        pos += width
        if n == (0xFF if width == 1 else 0xFFFF):  # "invalid" string, no content follows
            return ZclValue(dtype, None), pos
        _need(data, pos, n)
        raw = data[pos : pos + n]
        value: ZclScalar = raw
        if dtype in (0x42, 0x44):
            try:
                value = raw.decode("utf-8")
            except UnicodeDecodeError:
                value = raw
        return ZclValue(dtype, value), pos + n
    if depth >= _MAX_DEPTH:
        raise _ViewError(f"{entry[0]} nested deeper than {_MAX_DEPTH}", pos)
    if dtype == 0x4C:
        _need(data, pos, 2)
        count = data[pos] | data[pos + 1] << 8
        pos += 2
        if count == 0xFFFF:
            return ZclValue(dtype, None), pos
        _need(data, pos, count)  # every member has a type byte
        members = []
        for _ in range(count):
            _need(data, pos, 1)
            member, pos = _read_value(data, pos + 1, data[pos], depth + 1)
            members.append(member)
        return ZclValue(dtype, tuple(members)), pos
    _need(data, pos, 3)  # array, set, bag: element type, count
    element_type = data[pos]
    count = data[pos + 1] | data[pos + 2] << 8
    pos += 3
    if count == 0xFFFF:
        return ZclValue(dtype, None, element_type), pos
    if count and (element_type == 0x00 or element_type not in _TYPES):
        raise _ViewError(f"{entry[0]} of element type 0x{element_type:02X}", pos - 3)
    _need(data, pos, count)  # every element takes at least one byte
    elements = []
    for _ in range(count):
        element, pos = _read_value(data, pos, element_type, depth + 1)
        elements.append(element)
    return ZclValue(dtype, tuple(elements), element_type), pos


def _scalar(dtype: int, raw: bytes) -> ZclScalar:
    if dtype == 0x00:
        return None
    if dtype <= 0x0F or dtype == 0xF1:  # general data, security key: opaque bytes
        return raw
    if dtype == 0x10:
        return {0: False, 1: True}.get(raw[0], raw[0])  # 0xFF is "invalid"
    if 0x28 <= dtype <= 0x2F:
        return int.from_bytes(raw, "little", signed=True)
    if dtype in _FLOAT_FORMATS:
        return struct.unpack(_FLOAT_FORMATS[dtype], raw)[0]
    if dtype in (0xE0, 0xE1):  # hh mm ss hundredths / year-1900 month day weekday
        return tuple(raw)
    return int.from_bytes(raw, "little")


# --------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------


def _hex(data: bytes) -> str:
    return data.hex().upper()


def _iso(seconds: int) -> str:
    return utc_from_gbz(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def to_json(p: GbzPayload, plaintexts: Mapping[int, bytes] | None = None) -> dict[str, Any]:
    """A JSON-ready dict: raw fields plus names and ZCL views for humans.

    ``plaintexts`` maps component indexes to the decrypted ZCL payloads of
    encrypted components, shown beside the block (display only).
    """
    components = []
    for i, c in enumerate(p.components):
        item = _component_json(c)
        if plaintexts is not None and i in plaintexts and isinstance(c.frame, EncryptedFrame):
            clear = decrypted_frame(c.frame, plaintexts[i])
            item["plaintext"] = _hex(clear.payload)
            item["zcl"] = _view_json(zcl_view(c.cluster_id, clear))
        components.append(item)
    out: dict[str, Any] = {
        "profile_id": PROFILE_ID,
        "component_count": 1 if p.alert_body is not None else len(p.components),
        "alert_code": p.alert_code,
        "timestamp": p.timestamp,
        "timestamp_iso": None if p.timestamp is None else _iso(p.timestamp),
        "alert_body": None if p.alert_body is None else _body_json(p.alert_body),
        "components": components,
    }
    return out


def _component_json(c: GbzComponent) -> dict[str, Any]:
    f = c.frame
    item: dict[str, Any] = {
        "control": c.control,
        "last": c.is_last,
        "encrypted": c.is_encrypted,
        "cluster": c.cluster_id,
        "cluster_name": c.cluster_name,
        "from_date_time": c.from_date_time,
    }
    if c.from_date_time is not None:
        item["from_date_time_iso"] = _iso(c.from_date_time)
    if isinstance(f, EncryptedFrame):
        item.update(
            {
                "additional_header_control": f.additional_header_control,
                "additional_frame_counter": f.additional_frame_counter,
                "frame_control": f.frame_control,
                "sequence": f.sequence,
                "command_id": f.command_id,
                "ciphered_length": f.ciphered_length,
                "block": _hex(f.block),
            }
        )
    else:
        item.update(
            {
                "frame_control": f.frame_control,
                "manufacturer_code": f.manufacturer_code,
                "sequence": f.sequence,
                "command_id": f.command_id,
                "payload": _hex(f.payload),
                "zcl": _view_json(zcl_view(c.cluster_id, f)),
            }
        )
    return item


def _body_json(body: AlertBody) -> dict[str, Any]:
    if isinstance(body, FutureDatedOutcome):
        return {
            "kind": "future-dated outcome",
            "message_code": body.message_code,
            "originator_counter": body.originator_counter,
            "cluster": body.cluster_id,
            "cluster_name": CLUSTER_NAMES.get(body.cluster_id),
            "frame_control": body.frame_control,
            "command_id": body.command_id,
        }
    if isinstance(body, FirmwareReceipt):
        return {"kind": "firmware receipt", "image_hash": _hex(body.image_hash)}
    return {"kind": "meter integrity warning", "reason": body.reason}


def _view_json(view: ZclView) -> dict[str, Any]:
    if isinstance(view, ClusterCommand):
        return {
            "kind": "cluster-specific",
            "cluster_name": view.cluster_name,
            "command_id": view.command_id,
            "direction": "server-to-client" if view.server_to_client else "client-to-server",
        }
    if isinstance(view, Undecoded):
        return {"kind": "undecoded", "reason": view.reason, "offset": view.offset}
    if isinstance(view, ReadAttributes):
        return {"kind": "read attributes", "attributes": list(view.attribute_ids)}
    if isinstance(view, ReadAttributesResponse | WriteAttributes):
        kind = (
            "read attributes response"
            if isinstance(view, ReadAttributesResponse)
            else GENERAL_COMMAND_NAMES[view.command_id]
        )
        return {"kind": kind, "records": [_record_json(r) for r in view.records]}
    if isinstance(view, WriteAttributesResponse):
        return {
            "kind": "write attributes response",
            "records": [
                {"status": s, "status_name": STATUS_NAMES.get(s), "attribute": a}
                for s, a in view.records
            ],
        }
    return {
        "kind": "default response",
        "command_id": view.command_id,
        "status": view.status,
        "status_name": STATUS_NAMES.get(view.status),
    }


def _record_json(r: AttributeRecord) -> dict[str, Any]:
    out: dict[str, Any] = {
        "attribute": r.attribute_id,
        "status": r.status,
        "status_name": STATUS_NAMES.get(r.status),
    }
    if r.value is not None:
        out.update(_value_json(r.value))
    return out


def _value_json(v: ZclValue) -> dict[str, Any]:
    out: dict[str, Any] = {"type": v.data_type, "type_name": v.type_name}
    value = v.value
    if isinstance(value, tuple) and value and isinstance(value[0], ZclValue):
        out["value"] = [_value_json(e) for e in value]  # type: ignore[arg-type]
    elif isinstance(value, tuple):
        out["value"] = list(value)
    elif isinstance(value, bytes):
        out["value"] = _hex(value)
    elif isinstance(value, float) and not math.isfinite(value):
        out["value"] = str(value)  # JSON has no NaN or infinity
    elif v.data_type == 0xF0 and isinstance(value, int):
        out["value"] = f"{value:016X}"  # EUI-64 as usually written
    else:
        out["value"] = value
    if v.element_type is not None:
        out["element_type"] = v.element_type
    if v.data_type == 0xE2 and isinstance(value, int):
        out["iso"] = _iso(value)
    return out


# Keys :func:`to_json` writes; anything else is a typo that would silently drop data.
_PAYLOAD_KEYS = frozenset(
    {"profile_id", "component_count", "alert_code", "timestamp", "timestamp_iso"}
    | {"alert_body", "components"}
)
_COMPONENT_KEYS = frozenset(
    {"control", "last", "encrypted", "cluster", "cluster_name", "from_date_time"}
    | {"from_date_time_iso", "additional_header_control", "additional_frame_counter"}
    | {"frame_control", "manufacturer_code", "sequence", "command_id", "ciphered_length"}
    | {"block", "payload", "zcl", "plaintext"}
)
_BODY_KEYS = frozenset(
    {"kind", "message_code", "originator_counter", "cluster", "cluster_name"}
    | {"frame_control", "command_id", "image_hash", "reason"}
)


def _known(o: Mapping[str, Any], allowed: frozenset[str], path: str) -> None:
    unknown = set(o) - allowed
    if unknown:
        raise EncodeError(f"{path}: unknown keys {sorted(map(str, unknown))}")


def from_json(obj: Any) -> GbzPayload:
    """Rebuild a payload from :func:`to_json` output.

    The raw fields make the payload. Names and views (``*_name``, ``zcl``, ``last``,
    ``ciphered_length``, ...) may be left out, but one given must be what the fields
    make: an edit of a view alone would otherwise encode, and be re-signed, as the
    unchanged message. Unknown keys, keys that do not apply to a component's kind,
    and a missing ``components`` are errors too. An encrypted component's
    ``plaintext`` and its ``zcl`` view come from the keys and are display only.
    """
    o = _mapping(obj, "payload")
    _known(o, _PAYLOAD_KEYS, "payload")
    code = o.get("alert_code")
    timestamp = None
    if code is not None:
        code = _json_int(o, "alert_code", 0xFFFF, "")
        timestamp = _json_int(o, "timestamp", 0xFFFFFFFF, "")
    body: AlertBody | None = None
    body_obj = o.get("alert_body")
    if body_obj is not None:
        if code is None:
            raise EncodeError("alert_body: needs an alert_code")
        body = _body_from_json(code, _mapping(body_obj, "alert_body"))
    if "components" not in o:
        raise EncodeError("payload.components: missing")
    items = o["components"]
    if not isinstance(items, list | tuple):
        raise EncodeError("components: expected a list")
    components = tuple(_component_from_json(c, f"components[{i}]") for i, c in enumerate(items))
    p = GbzPayload(components, code, timestamp, body)
    encode(p)  # the fields must agree (control bits, alert body kind, sizes)
    made = to_json(p)
    _views_agree(o, made, "payload", _RAW_ALERT_KEYS if code is not None else _RAW_KEYS)
    if body is not None:
        _views_agree(body_obj, made["alert_body"], "alert_body", _RAW_BODY_KEYS[type(body)])
    for i, (given, item) in enumerate(zip(items, made["components"], strict=True)):
        encrypted = isinstance(p.components[i].frame, EncryptedFrame)
        raw = _RAW_ENCRYPTED_KEYS if encrypted else _RAW_PLAIN_KEYS
        _views_agree(given, item, f"components[{i}]", raw)
    return p


_RAW_KEYS = frozenset({"alert_code", "alert_body", "components"})
_RAW_ALERT_KEYS = _RAW_KEYS | {"timestamp"}
_RAW_COMPONENT_KEYS = frozenset(
    {"control", "cluster", "from_date_time", "frame_control", "sequence", "command_id"}
)
_RAW_PLAIN_KEYS = _RAW_COMPONENT_KEYS | {"payload", "manufacturer_code"}
_RAW_ENCRYPTED_KEYS = _RAW_COMPONENT_KEYS | {
    "block",
    "additional_header_control",
    "additional_frame_counter",
    "plaintext",  # decrypted with the keys: display only, not checked
    "zcl",  # the plaintext's view, likewise
}
_RAW_BODY_KEYS: dict[type, frozenset[str]] = {
    FutureDatedOutcome: frozenset(
        {"message_code", "originator_counter", "cluster", "frame_control", "command_id"}
    ),
    FirmwareReceipt: frozenset({"image_hash"}),
    IntegrityWarning: frozenset({"reason"}),
}


def _views_agree(
    given: Mapping[str, Any], made: Mapping[str, Any], path: str, raw: frozenset[str]
) -> None:
    """Every view the user gave is the one the fields make; raw keys were read already.

    A key ``made`` lacks does not apply (a ``timestamp`` with no alert code, a
    ``payload`` on an encrypted component); given as null it claims nothing.
    """
    for key, value in given.items():
        if key in raw:
            continue
        if key not in made:
            if value is None:
                continue
            raise EncodeError(f"{path}.{key}: does not apply here")
        if value != made[key]:
            if made[key] is None:
                raise EncodeError(f"{path}.{key}: does not apply here (the fields make none)")
            where, theirs, ours = _first_difference(value, made[key], f"{path}.{key}")
            raise EncodeError(
                f"{where}: {theirs!r} is not what the fields make ({ours!r}); "
                "edit the fields, and the names and views follow"
            )


def _first_difference(given: Any, made: Any, path: str) -> tuple[str, Any, Any]:
    """The innermost place two JSON trees differ, for an error that names it."""
    if isinstance(given, Mapping) and isinstance(made, Mapping) and set(given) == set(made):
        for key in made:
            if given[key] != made[key]:
                return _first_difference(given[key], made[key], f"{path}.{key}")
    if isinstance(given, list) and isinstance(made, list) and len(given) == len(made):
        for i, (g, m) in enumerate(zip(given, made, strict=True)):
            if g != m:
                return _first_difference(g, m, f"{path}[{i}]")
    return path, given, made


def _component_from_json(obj: Any, path: str) -> GbzComponent:
    c = _mapping(obj, path)
    _known(c, _COMPONENT_KEYS, path)
    control = _json_int(c, "control", 0xFF, path)
    cluster = _json_int(c, "cluster", 0xFFFF, path)
    fdt = (
        None
        if c.get("from_date_time") is None
        else _json_int(c, "from_date_time", 0xFFFFFFFF, path)
    )
    fc = _json_int(c, "frame_control", 0xFF, path)
    seq = _json_int(c, "sequence", 0xFF, path)
    command = _json_int(c, "command_id", 0xFF, path)
    frame: ZclFrame | EncryptedFrame
    if control & CONTROL_ENCRYPTED:
        frame = EncryptedFrame(
            fc,
            seq,
            command,
            _json_hex(c, "block", path),
            _json_int(c, "additional_header_control", 0xFF, path),
            _json_int(c, "additional_frame_counter", 0xFF, path),
        )
    else:
        manufacturer = (
            None
            if c.get("manufacturer_code") is None
            else _json_int(c, "manufacturer_code", 0xFFFF, path)
        )
        frame = ZclFrame(fc, seq, command, _json_hex(c, "payload", path), manufacturer)
    return GbzComponent(control, cluster, frame, fdt)


def _body_from_json(code: int, b: Mapping[str, Any]) -> AlertBody:
    kind = _body_type(code)
    path = "alert_body"
    _known(b, _BODY_KEYS, path)
    if kind is FutureDatedOutcome:
        return FutureDatedOutcome(
            _json_int(b, "message_code", 0xFFFF, path),
            _json_int(b, "originator_counter", 0xFFFF_FFFF_FFFF_FFFF, path),
            _json_int(b, "cluster", 0xFFFF, path),
            _json_int(b, "frame_control", 0xFF, path),
            _json_int(b, "command_id", 0xFF, path),
        )
    if kind is FirmwareReceipt:
        return FirmwareReceipt(_json_hex(b, "image_hash", path))
    if kind is IntegrityWarning:
        return IntegrityWarning(_json_int(b, "reason", 0xFFFF, path))
    raise EncodeError(f"alert_body: alert 0x{code:04X} carries components, not a body")


def _mapping(obj: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise EncodeError(f"{path}: expected an object, got {type(obj).__name__}")
    return obj


def _json_int(o: Mapping[str, Any], key: str, top: int, path: str) -> int:
    name = f"{path}.{key}" if path else key
    if key not in o:
        raise EncodeError(f"{name}: missing")
    return _uint(o[key], top, name)


def _json_hex(o: Mapping[str, Any], key: str, path: str) -> bytes:
    name = f"{path}.{key}"
    value = o.get(key)
    if not isinstance(value, str):
        raise EncodeError(f"{name}: expected a hex string")
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise EncodeError(f"{name}: {value!r} is not hexadecimal") from None
