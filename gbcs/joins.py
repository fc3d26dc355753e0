"""Typed builders and parsers for the ASN.1 join family (CRIB §5.2, §6.7-§6.9).

CS03 join, CS04 unjoin, CS07 read join details, GCS59/GCS62 GPF device logs
and the kit's SECMP0013 disconnect. Each type converts to and from an
:class:`gbcs.asn1.Asn1Payload`, so the bytes are always the schema's.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

from gbcs import asn1
from gbcs.asn1 import Asn1Payload, LengthForms
from gbcs.devicelog import DeviceType
from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import pack_id8

__all__ = [
    "DisconnectFromHan",
    "DisconnectResult",
    "GpfDeviceLogBackup",
    "GpfDeviceLogRestore",
    "GpfRestoreOutcome",
    "HanDevice",
    "JoinDetails",
    "JoinDevice",
    "JoinMethod",
    "JoinResult",
    "UnjoinDevice",
    "UnjoinResult",
    "parse_int_response",
]

LAYER = "joins"


class JoinMethod(enum.IntEnum):
    METHOD_A_INITIATOR = 0
    METHOD_A_RESPONDER = 1
    METHOD_B = 2
    METHOD_C = 3


class JoinResult(enum.IntEnum):
    """CS03 join response codes (CRIB §5.2); also GCS59's per-entry outcome."""

    SUCCESS = 0
    INVALID_MESSAGE_CODE_FOR_JOIN_METHOD = 1
    INVALID_JOIN_METHOD_AND_ROLE = 2
    INCOMPATIBLE_WITH_EXISTING_ENTRY = 3
    DEVICE_LOG_FULL = 4
    WRITE_FAILURE = 5
    KE_NO_RESOURCES = 6
    KE_UNKNOWN_ISSUER = 7
    KE_UNSUPPORTED_SUITE = 8
    KE_BAD_MESSAGE = 9
    KE_BAD_KEY_CONFIRM = 10
    INVALID_OR_MISSING_CERTIFICATE = 11
    NO_PARTNER_LINK_KEY_RECEIVED = 12
    NO_CBKE_RESPONSE = 13


class UnjoinResult(enum.IntEnum):
    SUCCESS = 0
    NOT_IN_DEVICE_LOG = 1
    OTHER_FAILURE = 2


class DisconnectResult(enum.IntEnum):
    """The kit's SECMP0013 disconnect response codes (``gbcs.asn``)."""

    SUCCESS = 0
    NOT_JOINED = 1
    OTHER_FAILURE = 2
    WRONG_DEVICE_ID = 3


def _expect(payload: Asn1Payload, type_name: str) -> Any:
    if payload.type_name != type_name:
        raise DecodeError(LAYER, "type", 0, f"expected {type_name}, found {payload.type_name}")
    return payload.value


@dataclass(frozen=True, slots=True)
class HanDevice:
    """An ASN.1 DeviceLogEntry: a device and its type (CS07, GPF device log)."""

    device_id: bytes
    device_type: int

    def to_value(self) -> dict[str, Any]:
        return {"deviceId": pack_id8(self.device_id, "device id"), "deviceType": self.device_type}

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> HanDevice:
        return cls(value["deviceId"], value["deviceType"])

    @property
    def type_name(self) -> str:
        try:
            return DeviceType(self.device_type).name
        except ValueError:
            return str(self.device_type)


def _certificate_value(der: bytes) -> Any:
    """A caller's certificate bytes for encoding: not DER is a value error, not a decode error."""
    try:
        return asn1.decode_type("Certificate", der).value
    except DecodeError as e:
        raise EncodeError(f"not a DER certificate: {e}") from e


def _certificate_der(value: Any) -> bytes:
    return asn1.encode(Asn1Payload("Certificate", value))


@dataclass(frozen=True, slots=True)
class JoinDevice:
    """CS03 join command (0x000D A1, 0x000E B, 0x00AB A2, 0x00AF C)."""

    method: int
    other_device_id: bytes
    other_device_type: int
    other_device_ka_certificate: bytes | None = None  # DER X.509, method C
    # The non-shortest length forms it came with (asn1.decode keeps them), so it writes
    # back the bytes it was parsed from; so for each type here.
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        value: dict[str, Any] = {
            "joinMethodAndRole": self.method,
            "otherDeviceEntityId": pack_id8(self.other_device_id, "other device id"),
            "otherDeviceType": self.other_device_type,
        }
        if self.other_device_ka_certificate is not None:
            value["otherDeviceKACertificate"] = _certificate_value(self.other_device_ka_certificate)
        return Asn1Payload("JoinDeviceCommand", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> JoinDevice:
        v = _expect(payload, "JoinDeviceCommand")
        cert = v.get("otherDeviceKACertificate")
        return cls(
            v["joinMethodAndRole"],
            v["otherDeviceEntityId"],
            v["otherDeviceType"],
            None if cert is None else _certificate_der(cert),
            payload.length_forms,
        )


@dataclass(frozen=True, slots=True)
class UnjoinDevice:
    """CS04 unjoin command (0x000F A/C, 0x0010 B): the device to forget."""

    device_id: bytes
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        value = pack_id8(self.device_id, "device id")
        return Asn1Payload("UnjoinDeviceCommand", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> UnjoinDevice:
        return cls(_expect(payload, "UnjoinDeviceCommand"), payload.length_forms)


@dataclass(frozen=True, slots=True)
class JoinDetails:
    """CS07 response (0x0013): the device's own log of HAN partners (CRIB §6.7)."""

    response_code: int
    devices: tuple[HanDevice, ...] | None
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    COMMAND = Asn1Payload("ReadDeviceJoinDetailsCommand", None)

    def to_payload(self) -> Asn1Payload:
        value: dict[str, Any] = {"responseCode": self.response_code}
        if self.devices is not None:
            value["deviceLogEntries"] = [d.to_value() for d in self.devices]
        return Asn1Payload("ReadDeviceJoinDetailsResponse", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> JoinDetails:
        v = _expect(payload, "ReadDeviceJoinDetailsResponse")
        entries = v.get("deviceLogEntries")
        return cls(
            v["responseCode"],
            None if entries is None else tuple(HanDevice.from_value(e) for e in entries),
            payload.length_forms,
        )


@dataclass(frozen=True, slots=True)
class GpfDeviceLogRestore:
    """GCS59 command (0x008C): restore the GPF device log (CRIB §6.8)."""

    devices: tuple[HanDevice, ...]
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        value = {"deviceLogEntries": [d.to_value() for d in self.devices]}
        return Asn1Payload("GpfDeviceLogRestoreCommand", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> GpfDeviceLogRestore:
        v = _expect(payload, "GpfDeviceLogRestoreCommand")
        devices = tuple(HanDevice.from_value(e) for e in v["deviceLogEntries"])
        return cls(devices, payload.length_forms)


@dataclass(frozen=True, slots=True)
class GpfRestoreOutcome:
    """GCS59 response: a join response code per restored entry."""

    outcomes: tuple[tuple[HanDevice, int], ...]
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        return Asn1Payload(
            "GpfDeviceLogRestoreResponse",
            {
                "restoreOutcomes": [
                    {"deviceLogEntry": d.to_value(), "joinResponseCode": code}
                    for d, code in self.outcomes
                ]
            },
            self.length_forms,
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> GpfRestoreOutcome:
        v = _expect(payload, "GpfDeviceLogRestoreResponse")
        return cls(
            tuple(
                (HanDevice.from_value(o["deviceLogEntry"]), o["joinResponseCode"])
                for o in v["restoreOutcomes"]
            ),
            payload.length_forms,
        )


@dataclass(frozen=True, slots=True)
class GpfDeviceLogBackup:
    """GCS62 alert (0x00B2, alert code 0x8071): the GPF device log after a change."""

    backup_time: dt.datetime
    devices: tuple[HanDevice, ...]
    alert_code: int = 0x8071
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        when = self.backup_time
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        return Asn1Payload(
            "GpfDeviceLogBackupAlert",
            {
                "alertCode": self.alert_code,
                "backupDateTime": when,
                "deviceLogEntries": [d.to_value() for d in self.devices],
            },
            self.length_forms,
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> GpfDeviceLogBackup:
        v = _expect(payload, "GpfDeviceLogBackupAlert")
        return cls(
            v["backupDateTime"].replace(tzinfo=dt.UTC),
            tuple(HanDevice.from_value(e) for e in v["deviceLogEntries"]),
            v["alertCode"],
            payload.length_forms,
        )


@dataclass(frozen=True, slots=True)
class DisconnectFromHan:
    """SECMP0013 CS02f Disconnect Smart Meter from HAN: names the meter itself."""

    device_id: bytes
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        value = {"deviceId": pack_id8(self.device_id, "device id")}
        return Asn1Payload("DisconnectFromHanCommand", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> DisconnectFromHan:
        device_id = _expect(payload, "DisconnectFromHanCommand")["deviceId"]
        return cls(device_id, payload.length_forms)


def int_response(type_name: str, code: int) -> Asn1Payload:
    """The INTEGER responses: join, unjoin and disconnect."""
    return Asn1Payload(type_name, int(code))


def parse_int_response(payload: Asn1Payload, type_name: str) -> int:
    value = _expect(payload, type_name)
    if isinstance(value, tuple):  # a CHOICE wrapping the INTEGER
        value = value[1]
    if not isinstance(value, int):
        raise DecodeError(LAYER, type_name, 0, f"expected an INTEGER, found {value!r}")
    return value
