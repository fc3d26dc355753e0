"""Typed builders and parsers for the CHF device-log family (CRIB §6).

CCS01/02/03/05/06/07 and the CS14 alert are DLMS on COSEM class 104 (ZigBee
network control); CS07 and the GPF logs are ASN.1 (see :mod:`gbcs.joins`).
Each command type turns into an Access-Request and back; parsing checks the
exact shape GBCS gives, so a wrong object or method is an error, not a guess.
"""

from __future__ import annotations

import base64
import binascii
import enum
from dataclasses import dataclass, field

from gbcs import axdr, dlms
from gbcs.axdr import (
    Array,
    Boolean,
    Data,
    Enum,
    LongUnsigned,
    NullData,
    OctetString,
    Structure,
    new_array,
    new_octet_string,
    new_structure,
)
from gbcs.dlms import AccessKind, AccessRequest, AccessResponse, AccessResult, RequestSpec
from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import CosemDateTime, pack_id8, slot_builder

__all__ = [
    "CURRENT_LOG",
    "HISTORIC_LOG",
    "ZIGBEE_NETWORK_CONTROL",
    "ActiveDevice",
    "ActiveDevices",
    "AddDevice",
    "DeviceLog",
    "DeviceLogEntry",
    "DeviceLogs",
    "DeviceType",
    "ReadDeviceLog",
    "ReadDeviceLogs",
    "RemoveDevice",
    "RestoreDeviceLog",
    "WhitelistChangeAlert",
]

ZIGBEE_NETWORK_CONTROL = 104  # COSEM interface class (CRIB §6)
CURRENT_LOG = bytes.fromhex("00001E0300FF")  # 0-0:30.3.0.255
HISTORIC_LOG = bytes.fromhex("00001E0301FF")  # 0-0:30.3.1.255
LAYER = "devicelog"
# The APDUs every command and response here is built into, without the frozen
# __init__ (a third of its cost: see gbcs.primitives.slot_twin).
_request = slot_builder(AccessRequest)  # invoke_id, specs, data, date_time
_response = slot_builder(AccessResponse)  # invoke_id, data, results, date_time, specs
_notification = slot_builder(dlms.DataNotification)  # invoke_id, body, date_time
_result = slot_builder(AccessResult)  # kind, result
# Request arm -> response arm (get/set-with-selection are answered as get/set).
_RESPONSE_KIND = {k: k.response_kind for k in AccessKind}
_NULL = NullData()

# Class 104 members used by the device-log use cases (CRIB §6).
ENABLE_JOINING = 2
JOIN_TIMEOUT = 3
ACTIVE_DEVICES = 4
REGISTER_DEVICE = 1
UNREGISTER_DEVICE = 2
BACKUP_PAN = 4
RESTORE_PAN = 5
CS14_ALERT_CODE = 0x8F12


class DeviceType(enum.IntEnum):
    """GBCS device types (CRIB §5.2 DeviceType)."""

    GSME = 0
    ESME = 1
    CHF = 2
    GPF = 3
    HCALCS = 4
    PPMID = 5
    TYPE2 = 6


_DEVICE_TYPES = frozenset(int(t) for t in DeviceType)
# ZigBee reserves these extended PAN IDs: neither names a network (a device may not use
# all zeros, and all ones means "any network").
RESERVED_EXTENDED_PAN_IDS = frozenset({bytes(8), b"\xff" * 8})


def _bad(field: str, reason: str, base: int = 0) -> DecodeError:
    return DecodeError(LAYER, field, base, reason)


def _octets(value: Data, field: str, size: int | None, base: int) -> bytes:
    if not isinstance(value, OctetString):
        raise _bad(field, f"expected octet-string, found {value.TYPE}", base)
    if size is not None and len(value.value) != size:
        raise _bad(field, f"expected {size} bytes, found {len(value.value)}", base)
    return value.value


def _items(
    value: Data, kind: type[Structure] | type[Array], field: str, count: int | None, base: int
) -> tuple[Data, ...]:
    if not isinstance(value, kind):
        raise _bad(field, f"expected {kind.TYPE}, found {value.TYPE}", base)
    if count is not None and len(value.value) != count:
        raise _bad(field, f"expected {count} elements, found {len(value.value)}", base)
    return value.value


def _number(
    value: Data, kind: type[axdr.Integer] | type[axdr.Unsigned], field: str, base: int
) -> int:
    """The value of exactly ``kind``: to_axdr() writes that type back, so no other is taken."""
    if type(value) is not kind:
        raise _bad(field, f"expected {kind.TYPE}, found {value.TYPE}", base)
    return value.value


def _no_extras(apdu: AccessRequest | AccessResponse | dlms.DataNotification, base: int) -> None:
    """No date-time, no echoed specifications: GBCS sends neither, and the types drop them."""
    if apdu.date_time is not None:
        raise _bad("date-time", "GBCS device-log APDUs carry no date-time", base)
    if isinstance(apdu, AccessResponse) and apdu.specs is not None:
        raise _bad("access-request-specification", "GBCS responses do not echo them", base)


def _expect_kinds(response: AccessResponse, kind: AccessKind, base: int) -> None:
    """Every result of the arm the request used: another arm would re-encode differently."""
    _no_extras(response, base)
    for index, result in enumerate(response.results):
        if result.kind != kind:
            raise _bad(f"results[{index}]", f"expected a result of kind {kind.label}", base)


def _expect_null(request: AccessRequest, base: int) -> None:
    """GET and the backup_PAN ACTIONs carry null-data; anything else would be dropped."""
    for index, item in enumerate(request.data):
        if type(item) is not NullData:
            raise _bad(f"data[{index}]", f"expected null-data, found {item.TYPE}", base)


@dataclass(frozen=True, slots=True)
class DeviceLogEntry:
    """One CHF device-log entry: a device and its trust-centre link key hash."""

    device_id: bytes
    tc_link_key_hash: bytes

    def __post_init__(self) -> None:
        pack_id8(self.device_id, "device id")
        if len(self.tc_link_key_hash) != 16:
            raise EncodeError("a trust-centre link key hash is 16 bytes")

    def to_axdr(self) -> Structure:
        return new_structure(
            (new_octet_string(self.device_id), new_octet_string(self.tc_link_key_hash))
        )

    @classmethod
    def from_axdr(cls, value: Data, base: int = 0) -> DeviceLogEntry:
        if cls is DeviceLogEntry and type(value) is Structure:
            # A CHF log holds dozens of these: the common, valid shape skips the checks'
            # calls and the frozen __init__, with __post_init__'s checks made inline.
            items = value.value
            if len(items) == 2:
                device, key = items
                if type(device) is OctetString and type(key) is OctetString:
                    device_id, key_hash = device.value, key.value
                    if (
                        type(device_id) is bytes
                        and type(key_hash) is bytes
                        and len(device_id) == 8
                        and len(key_hash) == 16
                    ):
                        entry = _new(DeviceLogEntry)
                        _set_device_id(entry, device_id)
                        _set_key_hash(entry, key_hash)
                        return entry
        device, key = _items(value, Structure, "device log entry", 2, base)
        return cls(
            _octets(device, "device id", 8, base),
            _octets(key, "trust-centre link key hash", 16, base),
        )


_new = object.__new__
_set_device_id = DeviceLogEntry.device_id.__set__  # type: ignore[attr-defined]
_set_key_hash = DeviceLogEntry.tc_link_key_hash.__set__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class DeviceLog:
    """A CHF device log as CCS07 returns it and CCS03 restores it.

    ``date_time`` is the backup time; CCS03's restore parameter has none.
    """

    extended_pan_id: bytes
    entries: tuple[DeviceLogEntry, ...] = ()
    date_time: CosemDateTime | None = None

    def __post_init__(self) -> None:
        pack_id8(self.extended_pan_id, "extended PAN id")
        entries = self.entries
        if type(entries) is tuple:
            try:
                if len({entry.device_id for entry in entries}) == len(entries):
                    return  # no duplicates; else the loop below names the first one
            except Exception:  # an odd entry: the loop below raises what it always did
                pass
        seen = set()
        for entry in entries:
            if entry.device_id in seen:
                raise EncodeError(f"device {entry.device_id.hex().upper()} is in the log twice")
            seen.add(entry.device_id)

    def entry_for(self, device_id: bytes) -> DeviceLogEntry | None:
        for entry in self.entries:
            if entry.device_id == device_id:
                return entry
        return None

    def only(self, device_id: bytes) -> DeviceLog:
        """The log cut down to one meter's entry (SR 8.16: only that entry is restored)."""
        entry = self.entry_for(device_id)
        if entry is None:
            raise EncodeError(f"device {device_id.hex().upper()} is not in this device log")
        return DeviceLog(self.extended_pan_id, (entry,), self.date_time)

    def to_axdr(self) -> Structure:
        """With a date-time: the CCS07 / CS14 form; without: the restore_PAN parameter."""
        entries = new_array(tuple([e.to_axdr() for e in self.entries]))
        pan = new_octet_string(self.extended_pan_id)
        if self.date_time is None:
            return new_structure((pan, entries))
        return new_structure((new_octet_string(self.date_time.encode()), pan, entries))

    @classmethod
    def from_axdr(cls, value: Data, base: int = 0) -> DeviceLog:
        items = _items(value, Structure, "device log", None, base)
        if len(items) == 3:
            raw = _octets(items[0], "backup date-time", 12, base)
            date_time: CosemDateTime | None = CosemDateTime.decode(raw, LAYER, base)
            pan, entries = items[1], items[2]
        elif len(items) == 2:
            date_time = None
            pan, entries = items
        else:
            raise _bad("device log", f"expected 2 or 3 elements, found {len(items)}", base)
        pan_id = _octets(pan, "extended PAN id", 8, base)
        logged = tuple(
            DeviceLogEntry.from_axdr(e, base) for e in _items(entries, Array, "entries", None, base)
        )
        try:
            return cls(pan_id, logged, date_time)
        except EncodeError as exc:  # a device listed twice: malformed input, not a bad value
            raise _bad("entries", str(exc), base) from None

    def to_base64(self) -> str:
        """The log as DUIS returns it from SR 8.9 (base64 of the A-XDR structure)."""
        return base64.b64encode(axdr.encode(self.to_axdr())).decode("ascii")

    @classmethod
    def from_base64(cls, text: str) -> DeviceLog:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raise _bad("device log", "not valid base64") from None
        return cls.from_axdr(axdr.decode(raw))


# Commands -----------------------------------------------------------------------------


def _spec(kind: int, obis: bytes, index: int) -> RequestSpec:
    return RequestSpec(kind, ZIGBEE_NETWORK_CONTROL, obis, index)


def _expect_specs(
    request: AccessRequest, expected: tuple[RequestSpec, ...], use_case: str, base: int
) -> None:
    if not isinstance(request, AccessRequest):
        raise _bad("apdu", f"{use_case} needs an Access-Request", base)
    _no_extras(request, base)
    if request.specs != expected:
        raise _bad(
            "access-request-specification",
            f"not the {use_case} shape: expected {len(expected)} specification(s) on class 104",
            base,
        )


@dataclass(frozen=True, slots=True)
class AddDevice:
    """CCS01 (0x0001): register a device, set the join timeout, enable joining."""

    device_id: bytes
    device_type: int
    install_code: bytes
    join_timeout: int = 90
    enable_joining: bool = True
    reserved: int = 0  # the fourth register-device item; its meaning is not known [U]

    MESSAGE_CODE = 0x0001
    SPECS = (
        _spec(AccessKind.ACTION, CURRENT_LOG, REGISTER_DEVICE),
        _spec(AccessKind.SET, CURRENT_LOG, JOIN_TIMEOUT),
        _spec(AccessKind.SET, CURRENT_LOG, ENABLE_JOINING),
    )

    def __post_init__(self) -> None:
        pack_id8(self.device_id, "device id")
        if len(self.install_code) != 16:
            raise EncodeError("a GBCS install code is 16 bytes (no CRC)")
        if not 0 <= self.join_timeout <= 0xFFFF:
            raise EncodeError(f"join timeout {self.join_timeout} is not a long-unsigned")

    def to_request(self, invoke_id: int) -> AccessRequest:
        register = Structure(
            (
                OctetString(self.device_id),
                Enum(self.device_type),
                OctetString(self.install_code),
                Enum(self.reserved),
            )
        )
        return _request(
            invoke_id,
            self.SPECS,
            (register, LongUnsigned(self.join_timeout), Boolean(self.enable_joining)),
            None,
        )

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> AddDevice:
        _expect_specs(request, cls.SPECS, "CCS01", base)
        register, timeout, enable = request.data
        device, dtype, code, reserved = _items(register, Structure, "register device", 4, base)
        if not isinstance(dtype, Enum) or not isinstance(reserved, Enum):
            raise _bad("register device", "device type and last item are enums", base)
        if not isinstance(timeout, LongUnsigned):
            raise _bad("join timeout", f"expected long-unsigned, found {timeout.TYPE}", base)
        if not isinstance(enable, Boolean):
            raise _bad("enable joining", f"expected boolean, found {enable.TYPE}", base)
        if dtype.value not in _DEVICE_TYPES:
            raise _bad("device type", f"{dtype.value} is not a GBCS device type (0-6)", base)
        return cls(
            _octets(device, "device id", 8, base),
            dtype.value,
            _octets(code, "install code", 16, base),
            timeout.value,
            enable.value,
            reserved.value,
        )


@dataclass(frozen=True, slots=True)
class RemoveDevice:
    """CCS02 (0x0002): unregister a device from the CHF device log."""

    device_id: bytes

    MESSAGE_CODE = 0x0002
    SPECS = (_spec(AccessKind.ACTION, CURRENT_LOG, UNREGISTER_DEVICE),)

    def to_request(self, invoke_id: int) -> AccessRequest:
        device_id = pack_id8(self.device_id, "device id")
        return _request(invoke_id, self.SPECS, (new_octet_string(device_id),), None)

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> RemoveDevice:
        _expect_specs(request, cls.SPECS, "CCS02", base)
        return cls(_octets(request.data[0], "device id", 8, base))


@dataclass(frozen=True, slots=True)
class RestoreDeviceLog:
    """CCS03 (0x0003): restore_PAN with an extended PAN id and log entries."""

    log: DeviceLog

    MESSAGE_CODE = 0x0003
    SPECS = (_spec(AccessKind.ACTION, CURRENT_LOG, RESTORE_PAN),)

    def to_request(self, invoke_id: int) -> AccessRequest:
        log = DeviceLog(self.log.extended_pan_id, self.log.entries)  # no date-time here
        return _request(invoke_id, self.SPECS, (log.to_axdr(),), None)

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> RestoreDeviceLog:
        _expect_specs(request, cls.SPECS, "CCS03", base)
        log = DeviceLog.from_axdr(request.data[0], base)
        if log.date_time is not None:
            raise _bad("restore PAN", "the restore parameter has no date-time", base)
        if log.extended_pan_id in RESERVED_EXTENDED_PAN_IDS:
            raise _bad(
                "restore PAN",
                f"extended PAN id {log.extended_pan_id.hex().upper()} is reserved",
                base,
            )
        return cls(log)


@dataclass(frozen=True, slots=True)
class ReadDeviceLog:
    """CCS05/CCS04 (0x0004) and CCS06 (0x010F): GET active devices."""

    SPECS = (_spec(AccessKind.GET, CURRENT_LOG, ACTIVE_DEVICES),)

    def to_request(self, invoke_id: int) -> AccessRequest:
        return _request(invoke_id, self.SPECS, (_NULL,), None)

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> ReadDeviceLog:
        _expect_specs(request, cls.SPECS, "CCS05/CCS06", base)
        _expect_null(request, base)
        return cls()


@dataclass(frozen=True, slots=True)
class ReadDeviceLogs:
    """CCS07 (0x00FE): backup_PAN on the current and the historic device log."""

    MESSAGE_CODE = 0x00FE
    SPECS = (
        _spec(AccessKind.ACTION, CURRENT_LOG, BACKUP_PAN),
        _spec(AccessKind.ACTION, HISTORIC_LOG, BACKUP_PAN),
    )

    def to_request(self, invoke_id: int) -> AccessRequest:
        return _request(invoke_id, self.SPECS, (_NULL, _NULL), None)

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> ReadDeviceLogs:
        _expect_specs(request, cls.SPECS, "CCS07", base)
        _expect_null(request, base)
        return cls()


# Responses ---------------------------------------------------------------------------


def simple_response(
    invoke_id: int, specs: tuple[RequestSpec, ...], results: tuple[int, ...]
) -> AccessResponse:
    """Null data and one result per specification: CCS01, CCS02 and CCS03 responses."""
    if len(results) != len(specs):
        raise EncodeError(f"{len(specs)} specifications need {len(specs)} results")
    return _response(
        invoke_id,
        (_NULL,) * len(specs),
        tuple([_result(_RESPONSE_KIND[s.kind], r) for s, r in zip(specs, results, strict=True)]),
        None,
        None,
    )


@dataclass(frozen=True, slots=True)
class DeviceLogs:
    """CCS07 response: the current and historic logs, None where the CHF failed."""

    current: DeviceLog | None
    historic: DeviceLog | None
    results: tuple[int, int] = (0, 0)

    def to_response(self, invoke_id: int) -> AccessResponse:
        data = tuple(
            NullData() if log is None else log.to_axdr() for log in (self.current, self.historic)
        )
        return _response(
            invoke_id,
            data,
            tuple([_result(AccessKind.ACTION, r) for r in self.results]),
            None,
            None,
        )

    @classmethod
    def from_response(cls, response: AccessResponse, base: int = 0) -> DeviceLogs:
        if not isinstance(response, AccessResponse) or len(response.data) != 2:
            raise _bad("apdu", "a CCS07 response is an Access-Response with two results", base)
        logs = [
            None if isinstance(d, NullData) else DeviceLog.from_axdr(d, base) for d in response.data
        ]
        results = tuple(r.result for r in response.results)
        if len(results) != 2:
            raise _bad("results", f"expected 2 results, found {len(results)}", base)
        _expect_kinds(response, AccessKind.ACTION, base)
        return cls(logs[0], logs[1], (results[0], results[1]))


@dataclass(frozen=True, slots=True)
class ActiveDevice:
    """One IC 104 active-device element, 14 fields (CRIB §6.4; names [S/U])."""

    device_id: bytes
    status: bytes = b"\xc8"
    max_rssi: int = -35
    average_rssi: int = -50
    min_rssi: int = -100
    lqi: tuple[int, int, int] = (2, 39, 247)
    last_communication: CosemDateTime = field(default_factory=CosemDateTime)
    hops: int = 1
    transmission_failures: int = 0
    transmission_successes: int = 100
    application_version: int = 1
    stack_version: int = 1

    def __post_init__(self) -> None:
        """Each number fits its A-XDR type (integer -128..127, unsigned 0..255), so a
        bad value fails where it is made, not when a response is encoded."""
        pack_id8(self.device_id, "device id")
        if len(self.status) != 1:
            raise EncodeError("active device status is one byte (bit-string(8))")
        if len(self.lqi) != 3:
            raise EncodeError("active device lqi is three values")
        for name in ("max_rssi", "average_rssi", "min_rssi"):
            value = getattr(self, name)
            if not -128 <= value <= 127:
                raise EncodeError(f"active device {name} {value} is not an integer (-128..127)")
        for name, value in (
            *(("lqi", v) for v in self.lqi),
            ("hops", self.hops),
            ("transmission_failures", self.transmission_failures),
            ("transmission_successes", self.transmission_successes),
            ("application_version", self.application_version),
            ("stack_version", self.stack_version),
        ):
            if not 0 <= value <= 255:
                raise EncodeError(f"active device {name} {value} is not an unsigned (0..255)")

    def to_axdr(self) -> Structure:
        return Structure(
            (
                OctetString(pack_id8(self.device_id, "device id")),
                axdr.BitString(self.status, 8),
                axdr.Integer(self.max_rssi),
                axdr.Integer(self.average_rssi),
                axdr.Integer(self.min_rssi),
                *(axdr.Unsigned(v) for v in self.lqi),
                OctetString(self.last_communication.encode()),
                axdr.Unsigned(self.hops),
                axdr.Unsigned(self.transmission_failures),
                axdr.Unsigned(self.transmission_successes),
                axdr.Unsigned(self.application_version),
                axdr.Unsigned(self.stack_version),
            )
        )

    @classmethod
    def from_axdr(cls, value: Data, base: int = 0) -> ActiveDevice:
        f = _items(value, Structure, "active device", 14, base)
        status = f[1]
        if type(status) is not axdr.BitString or status.length != 8:
            raise _bad("active device status", "expected bit-string(8)", base)
        kinds = (axdr.Integer,) * 3 + (axdr.Unsigned,) * 8
        fields = (*f[2:8], *f[9:])
        numbers = [
            _number(v, kind, "active device", base) for v, kind in zip(fields, kinds, strict=True)
        ]
        return cls(
            _octets(f[0], "device id", 8, base),
            status.value,
            *numbers[:3],
            (numbers[3], numbers[4], numbers[5]),
            CosemDateTime.decode(_octets(f[8], "last communication", 12, base), LAYER, base),
            *numbers[6:],
        )


@dataclass(frozen=True, slots=True)
class WhitelistChangeAlert:
    """CS14 (0x0018): alert 0x8F12 with the device log after the change (CRIB §6.6)."""

    timestamp: CosemDateTime
    log: DeviceLog
    alert_code: int = CS14_ALERT_CODE

    MESSAGE_CODE = 0x0018

    def to_notification(self, invoke_id: int) -> dlms.DataNotification:
        if self.log.date_time is None:
            raise EncodeError("the CS14 device log carries its date-time")
        body = Structure(
            (
                LongUnsigned(self.alert_code),
                OctetString(self.timestamp.encode()),
                self.log.to_axdr(),
            )
        )
        return _notification(invoke_id, body, None)

    @classmethod
    def from_notification(cls, apdu: dlms.DataNotification, base: int = 0) -> WhitelistChangeAlert:
        if not isinstance(apdu, dlms.DataNotification):
            raise _bad("apdu", "CS14 is a Data-Notification", base)
        _no_extras(apdu, base)
        code, stamp, log = _items(apdu.body, Structure, "alert", 3, base)
        if not isinstance(code, LongUnsigned):
            raise _bad("alert code", f"expected long-unsigned, found {code.TYPE}", base)
        device_log = DeviceLog.from_axdr(log, base)
        if device_log.date_time is None:
            # The 2-element (CCS03 restore) form: a CS14 log is a backup, dated (CRIB §6.6).
            raise _bad("device log", "the CS14 device log carries its backup date-time", base)
        return cls(
            CosemDateTime.decode(_octets(stamp, "timestamp", 12, base), LAYER, base),
            device_log,
            code.value,
        )


@dataclass(frozen=True, slots=True)
class ActiveDevices:
    """CCS05/CCS04 and CCS06 response: the active-devices array, or a failed GET."""

    devices: tuple[ActiveDevice, ...] | None
    result: int = 0

    def to_response(self, invoke_id: int) -> AccessResponse:
        data: Data = (
            NullData() if self.devices is None else Array(tuple(d.to_axdr() for d in self.devices))
        )
        return AccessResponse(invoke_id, (data,), (AccessResult(AccessKind.GET, self.result),))

    @classmethod
    def from_response(cls, response: AccessResponse, base: int = 0) -> ActiveDevices:
        if (
            not isinstance(response, AccessResponse)
            or len(response.data) != 1
            or len(response.results) != 1
        ):
            raise _bad("apdu", "expected an Access-Response with one result", base)
        _expect_kinds(response, AccessKind.GET, base)
        data = response.data[0]
        devices = (
            None
            if isinstance(data, NullData)
            else tuple(
                ActiveDevice.from_axdr(d, base)
                for d in _items(data, Array, "active devices", None, base)
            )
        )
        return cls(devices, response.results[0].result)
