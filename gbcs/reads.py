"""Typed builders and parsers for the ESME reads a triage bench makes (CRIB §5.1, §7).

* ECS26m (0x00F9) ESME identity, type and supply tamper state: four GETs on class 1.
* ECS52 (0x0059) ESME firmware version: one GET on class 1.
* ECS35a (0x0048) ESME event log: a GET-with-selection (range descriptor) on the
  class 7 event log, answered with a compact array of entries.

ECS26m and ECS35a are byte-exact against RTDS 4.5.0 (6.2.4_ECS26m, 6.13_ECS35a).
ECS26e (0x003F) and ECS52 have no vector in the RTDS subset this project may use,
so ECS26e is not modelled and ECS52's object is an unverified reading [U] (see
:data:`FIRMWARE_VERSION`). Parsing checks the exact shape, so an emulator never
answers a request it only half recognised.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from gbcs.axdr import (
    Array,
    Boolean,
    CompactArray,
    Data,
    DoubleLongUnsigned,
    Integer,
    LongUnsigned,
    NullData,
    OctetString,
    Structure,
    Tag,
    TypeDescription,
)
from gbcs.dlms import AccessKind, AccessRequest, AccessResponse, AccessResult, RequestSpec
from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import utc_from_gbz, utc_to_gbz

__all__ = [
    "ESME_MANUFACTURER",
    "ESME_MODEL",
    "ESME_VARIANT",
    "EVENT_LOG",
    "EVENT_LOG_ENTRY_TYPE",
    "EVENT_LOG_RESTRICTING_OBJECT",
    "FIRMWARE_VERSION",
    "SUPPLY_TAMPER_STATE",
    "EsmeIdentity",
    "EventLog",
    "EventLogEntry",
    "FirmwareVersion",
    "ReadEsmeIdentity",
    "ReadEventLog",
    "ReadFirmwareVersion",
]

LAYER = "reads"
DATA = 1  # COSEM interface class "data"
PROFILE_GENERIC = 7
VALUE = 2  # class 1 attribute "value"
BUFFER = 2  # class 7 attribute "buffer"
RANGE_DESCRIPTOR = 1  # class 7 buffer access selector 1 (Blue Book range_descriptor)

# ECS26m objects, in request order [O: 6.2.4_ECS26m]. Names: 96.1.2 holds the ESME
# variant ("B"); 96.1.4 and 96.1.6 hold 8 and 4 ASCII bytes, the sizes of the ZCL
# ModelIdentifier and ManufacturerName GCS21m returns for the GSME [U: names];
# 94.44.0.4 is the object ECS81 sets as the supply tamper state [O: 6.25_ECS81].
ESME_VARIANT = bytes.fromhex("0000600102FF")  # 0-0:96.1.2.255
ESME_MODEL = bytes.fromhex("0000600104FF")  # 0-0:96.1.4.255
ESME_MANUFACTURER = bytes.fromhex("0000600106FF")  # 0-0:96.1.6.255
SUPPLY_TAMPER_STATE = bytes.fromhex("00005E2C0004")  # 0-0:94.44.0.4

# ECS52: the Blue Book "active firmware identifier" of the electricity meter. No
# ECS52 vector is in the RTDS subset, so this object is unverified [U].
FIRMWARE_VERSION = bytes.fromhex("0100000200FF")  # 1-0:0.2.0.255

# ECS35a [O: 6.13_ECS35a]: the event log and the UTC-time object its range is on.
EVENT_LOG = bytes.fromhex("0000636200FF")  # 0-0:99.98.0.255
EVENT_LOG_RESTRICTING_OBJECT = bytes.fromhex("00005E2C64FF")  # 0-0:94.44.100.255
EVENT_LOG_ENTRY_TYPE = TypeDescription.structure(
    TypeDescription(Tag.DOUBLE_LONG_UNSIGNED),
    TypeDescription(Tag.LONG_UNSIGNED),
    TypeDescription(Tag.OCTET_STRING),
)
"""Compact-array element type of the ECS35a response: {UTC seconds, event code, info}."""


def _bad(field: str, reason: str, base: int = 0) -> DecodeError:
    return DecodeError(LAYER, field, base, reason)


def _expect(value: Data, kind: type[Data], field: str, base: int) -> None:
    if type(value) is not kind:
        raise _bad(field, f"expected {kind.TYPE}, found {value.TYPE}", base)


def _octets(value: Data, field: str, base: int) -> bytes:
    _expect(value, OctetString, field, base)
    assert isinstance(value, OctetString)
    return value.value


def _u32(value: int, what: str) -> int:
    if type(value) is not int or not 0 <= value <= 0xFFFF_FFFF:
        raise EncodeError(f"{what} {value!r} is not a double-long-unsigned")
    return value


def _result(value: int, what: str) -> int:
    if type(value) is not int or not 0 <= value <= 0xFF:
        raise EncodeError(f"{what} result {value!r} is not a Data-Access-Result byte")
    return value


def _check_present(value: object, result: int, what: str) -> None:
    """A value exactly when its GET succeeded: a failed GET answers null-data (CRIB §5.1)."""
    _result(result, what)
    if (value is None) != (result != 0):
        state = "has no value" if value is None else "has a value"
        raise EncodeError(f"{what} {state} but its result is {result}")


def _no_date_time(apdu: AccessRequest | AccessResponse, base: int) -> None:
    """GBCS sends none, and the typed values have no place for one: it would be dropped."""
    if apdu.date_time is not None:
        raise _bad("date-time", "GBCS read APDUs carry no date-time", base)


def _get_specs(class_id: int, attribute: int, *objects: bytes) -> tuple[RequestSpec, ...]:
    return tuple(RequestSpec(AccessKind.GET, class_id, obis, attribute) for obis in objects)


def _expect_request(
    request: AccessRequest, specs: tuple[RequestSpec, ...], use_case: str, base: int
) -> None:
    """The exact specifications, each with the null-data a GET carries (CRIB §5.1)."""
    if not isinstance(request, AccessRequest):
        raise _bad("apdu", f"{use_case} needs an Access-Request", base)
    _no_date_time(request, base)
    if request.specs != specs:
        raise _bad(
            "access-request-specification",
            f"not the {use_case} shape: expected {len(specs)} specification(s): "
            + ", ".join(f"class {s.class_id} {s.obis_text} attribute {s.index}" for s in specs),
            base,
        )
    if len(request.data) != len(specs):
        raise _bad("data", f"expected {len(specs)} data item(s), found {len(request.data)}", base)
    for index, item in enumerate(request.data):
        _expect(item, NullData, f"data[{index}]", base)


def _gets(
    response: AccessResponse, count: int, use_case: str, base: int
) -> tuple[tuple[Data | None, int], ...]:
    """(value or None, result) per GET; a failed GET must carry null-data."""
    if not isinstance(response, AccessResponse):
        raise _bad("apdu", f"a {use_case} response is an Access-Response", base)
    if response.specs is not None:
        raise _bad("access-request-specification", "GBCS responses do not echo them", base)
    _no_date_time(response, base)
    if len(response.data) != count or len(response.results) != count:
        raise _bad(
            "results",
            f"a {use_case} response has {count} result(s), found {len(response.results)}",
            base,
        )
    out = []
    for index, (data, result) in enumerate(zip(response.data, response.results, strict=True)):
        if result.kind != AccessKind.GET:
            raise _bad(
                f"results[{index}]", f"expected a GET result, found kind {result.kind}", base
            )
        if result.result != 0:
            _expect(data, NullData, f"data[{index}]", base)
            out.append((None, result.result))
        else:
            out.append((data, 0))
    return tuple(out)


def _get_response(
    invoke_id: int, values: tuple[Data | None, ...], results: tuple[int, ...]
) -> AccessResponse:
    return AccessResponse(
        invoke_id,
        tuple(NullData() if v is None else v for v in values),
        tuple(AccessResult(AccessKind.GET, r) for r in results),
    )


# ECS26m ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadEsmeIdentity:
    """ECS26m (0x00F9): GET the variant, model, manufacturer and supply tamper state."""

    MESSAGE_CODE = 0x00F9
    SPECS = _get_specs(
        DATA, VALUE, ESME_VARIANT, ESME_MODEL, ESME_MANUFACTURER, SUPPLY_TAMPER_STATE
    )

    def to_request(self, invoke_id: int) -> AccessRequest:
        return AccessRequest(invoke_id, self.SPECS, tuple(NullData() for _ in self.SPECS))

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> ReadEsmeIdentity:
        _expect_request(request, cls.SPECS, "ECS26m", base)
        return cls()


@dataclass(frozen=True, slots=True)
class EsmeIdentity:
    """ECS26m response: each value, or None where that GET failed (its result then says why).

    The strings are kept as the octets on the wire (ASCII in RTDS: ``B``,
    ``ATGTypeX``, ``CSW ``); ``supply_tamper`` True means tampered.
    """

    variant: bytes | None
    model: bytes | None
    manufacturer: bytes | None
    supply_tamper: bool | None
    results: tuple[int, int, int, int] = (0, 0, 0, 0)

    MESSAGE_CODE = 0x00F9

    def __post_init__(self) -> None:
        if len(self.results) != 4:
            raise EncodeError("an ECS26m response has four results")
        values = (self.variant, self.model, self.manufacturer, self.supply_tamper)
        names = ("variant", "model", "manufacturer", "supply tamper state")
        for value, result, name in zip(values, self.results, names, strict=True):
            _check_present(value, result, name)
        for value, name in zip(values[:3], names, strict=False):
            if value is not None and not isinstance(value, bytes):
                raise EncodeError(f"{name} must be bytes, got {type(value).__name__}")
        if self.supply_tamper is not None and type(self.supply_tamper) is not bool:
            raise EncodeError("the supply tamper state is a bool")

    def to_response(self, invoke_id: int) -> AccessResponse:
        strings = (self.variant, self.model, self.manufacturer)
        values: tuple[Data | None, ...] = (
            *(None if s is None else OctetString(s) for s in strings),
            None if self.supply_tamper is None else Boolean(self.supply_tamper),
        )
        return _get_response(invoke_id, values, self.results)

    @classmethod
    def from_response(cls, response: AccessResponse, base: int = 0) -> EsmeIdentity:
        items = _gets(response, 4, "ECS26m", base)
        (variant, r0), (model, r1), (maker, r2), (tamper, r3) = items
        if tamper is not None:
            _expect(tamper, Boolean, "supply tamper state", base)
        return cls(
            None if variant is None else _octets(variant, "variant", base),
            None if model is None else _octets(model, "model", base),
            None if maker is None else _octets(maker, "manufacturer", base),
            None if tamper is None else tamper.value,  # type: ignore[attr-defined]
            (r0, r1, r2, r3),
        )


# ECS52 -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadFirmwareVersion:
    """ECS52 (0x0059): GET the ESME firmware version (object unverified, no RTDS vector [U])."""

    MESSAGE_CODE = 0x0059
    SPECS = _get_specs(DATA, VALUE, FIRMWARE_VERSION)

    def to_request(self, invoke_id: int) -> AccessRequest:
        return AccessRequest(invoke_id, self.SPECS, (NullData(),))

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> ReadFirmwareVersion:
        _expect_request(request, cls.SPECS, "ECS52", base)
        return cls()


@dataclass(frozen=True, slots=True)
class FirmwareVersion:
    """ECS52 response: the version octets (4 in the CS06/GCS38 vectors), None if the GET failed."""

    version: bytes | None
    result: int = 0

    MESSAGE_CODE = 0x0059

    def __post_init__(self) -> None:
        _check_present(self.version, self.result, "firmware version")
        if self.version is not None and not isinstance(self.version, bytes):
            raise EncodeError("the firmware version is bytes")

    def to_response(self, invoke_id: int) -> AccessResponse:
        value = None if self.version is None else OctetString(self.version)
        return _get_response(invoke_id, (value,), (self.result,))

    @classmethod
    def from_response(cls, response: AccessResponse, base: int = 0) -> FirmwareVersion:
        ((value, result),) = _gets(response, 1, "ECS52", base)
        return cls(None if value is None else _octets(value, "firmware version", base), result)


# ECS35a ------------------------------------------------------------------------------


def _utc(seconds: int) -> _dt.datetime:
    return utc_from_gbz(seconds)


@dataclass(frozen=True, slots=True)
class ReadEventLog:
    """ECS35a (0x0048): the event log entries whose UTC time lies in ``start``..``end``.

    Times are double-long-unsigned seconds since 2000-01-01 UTC, the wire value
    (RTDS reads 2014-12-31 00:00 to 2015-01-01 00:00). The range descriptor
    restricts on class 1 object 0-0:94.44.100.255, attribute 2, data index 0,
    and selects every column (empty selected_values) [O: 6.13_ECS35a].
    """

    start: int
    end: int

    MESSAGE_CODE = 0x0048
    RESTRICTING_OBJECT = Structure(  # capture object definition: class, OBIS, attribute, index
        (
            LongUnsigned(DATA),
            OctetString(EVENT_LOG_RESTRICTING_OBJECT),
            Integer(VALUE),
            LongUnsigned(0),
        )
    )

    def __post_init__(self) -> None:
        _u32(self.start, "start")
        _u32(self.end, "end")

    @classmethod
    def between(cls, start: _dt.datetime, end: _dt.datetime) -> ReadEventLog:
        return cls(utc_to_gbz(start), utc_to_gbz(end))

    @property
    def start_time(self) -> _dt.datetime:
        return _utc(self.start)

    @property
    def end_time(self) -> _dt.datetime:
        return _utc(self.end)

    def select(self, entries: tuple[EventLogEntry, ...]) -> tuple[EventLogEntry, ...]:
        """The entries an ESME returns for this range (both ends inclusive, Blue Book)."""
        return tuple(e for e in entries if self.start <= e.timestamp <= self.end)

    def spec(self) -> RequestSpec:
        parameter = Structure(
            (
                self.RESTRICTING_OBJECT,
                DoubleLongUnsigned(self.start),
                DoubleLongUnsigned(self.end),
                Array(()),
            )
        )
        return RequestSpec(
            AccessKind.GET_WITH_SELECTION,
            PROFILE_GENERIC,
            EVENT_LOG,
            BUFFER,
            RANGE_DESCRIPTOR,
            parameter,
        )

    def to_request(self, invoke_id: int) -> AccessRequest:
        return AccessRequest(invoke_id, (self.spec(),), (NullData(),))

    @classmethod
    def from_request(cls, request: AccessRequest, base: int = 0) -> ReadEventLog:
        if not isinstance(request, AccessRequest):
            raise _bad("apdu", "ECS35a needs an Access-Request", base)
        _no_date_time(request, base)
        if len(request.specs) != 1:
            raise _bad(
                "access-request-specification",
                f"ECS35a has one specification, found {len(request.specs)}",
                base,
            )
        if len(request.data) != 1:
            raise _bad("data", f"expected 1 data item, found {len(request.data)}", base)
        spec = request.specs[0]
        got = (spec.kind, spec.class_id, spec.obis, spec.index, spec.selector)
        want = (AccessKind.GET_WITH_SELECTION, PROFILE_GENERIC, EVENT_LOG, BUFFER, RANGE_DESCRIPTOR)
        if got != want:
            raise _bad(
                "access-request-specification",
                "not the ECS35a shape: expected get-with-selection on class 7 "
                "0-0:99.98.0.255 attribute 2, selector 1",
                base,
            )
        _expect(request.data[0], NullData, "data[0]", base)
        parameter = spec.access_parameter
        if not isinstance(parameter, Structure):
            found = "nothing" if parameter is None else parameter.TYPE
            raise _bad("range descriptor", f"expected structure, found {found}", base)
        if len(parameter.value) != 4:
            raise _bad(
                "range descriptor", f"expected 4 elements, found {len(parameter.value)}", base
            )
        restricting, start, end, selected = parameter.value
        if restricting != cls.RESTRICTING_OBJECT:
            raise _bad(
                "restricting object",
                "expected {class 1, 0-0:94.44.100.255, attribute 2, data index 0}",
                base,
            )
        _expect(start, DoubleLongUnsigned, "from value", base)
        _expect(end, DoubleLongUnsigned, "to value", base)
        _expect(selected, Array, "selected values", base)
        if selected.value:  # type: ignore[attr-defined]
            raise _bad("selected values", "ECS35a selects every column (empty array)", base)
        return cls(start.value, end.value)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class EventLogEntry:
    """One ESME event log entry: UTC seconds since 2000, event code, extra octets.

    ``info`` is empty for most events; RTDS carries a 2-byte value (e.g. a
    message code such as 0x009B) for some [O, meaning U].
    """

    timestamp: int
    event_code: int
    info: bytes = b""

    def __post_init__(self) -> None:
        _u32(self.timestamp, "timestamp")
        if type(self.event_code) is not int or not 0 <= self.event_code <= 0xFFFF:
            raise EncodeError(f"event code {self.event_code!r} is not a long-unsigned")
        if not isinstance(self.info, bytes):
            raise EncodeError("event info is bytes")

    @classmethod
    def at(cls, when: _dt.datetime, event_code: int, info: bytes = b"") -> EventLogEntry:
        return cls(utc_to_gbz(when), event_code, info)

    @property
    def time(self) -> _dt.datetime:
        return _utc(self.timestamp)

    def to_axdr(self) -> Structure:
        return Structure(
            (
                DoubleLongUnsigned(self.timestamp),
                LongUnsigned(self.event_code),
                OctetString(self.info),
            )
        )

    @classmethod
    def from_axdr(cls, value: Data, base: int = 0) -> EventLogEntry:
        _expect(value, Structure, "event log entry", base)
        items = value.value  # type: ignore[attr-defined]
        if len(items) != 3:
            raise _bad("event log entry", f"expected 3 elements, found {len(items)}", base)
        stamp, code, info = items
        _expect(stamp, DoubleLongUnsigned, "event timestamp", base)
        _expect(code, LongUnsigned, "event code", base)
        return cls(stamp.value, code.value, _octets(info, "event info", base))


@dataclass(frozen=True, slots=True)
class EventLog:
    """ECS35a response: the entries as a compact array, or None with the failed GET's result."""

    entries: tuple[EventLogEntry, ...] | None
    result: int = 0

    MESSAGE_CODE = 0x0048

    def __post_init__(self) -> None:
        _check_present(self.entries, self.result, "event log")

    def to_response(self, invoke_id: int) -> AccessResponse:
        value = (
            None
            if self.entries is None
            else CompactArray(EVENT_LOG_ENTRY_TYPE, tuple(e.to_axdr() for e in self.entries))
        )
        return _get_response(invoke_id, (value,), (self.result,))

    @classmethod
    def from_response(cls, response: AccessResponse, base: int = 0) -> EventLog:
        ((value, result),) = _gets(response, 1, "ECS35a", base)
        if value is None:
            return cls(None, result)
        _expect(value, CompactArray, "event log", base)
        assert isinstance(value, CompactArray)
        if value.element_type != EVENT_LOG_ENTRY_TYPE:
            raise _bad(
                "event log",
                "expected compact-array of {double-long-unsigned, long-unsigned, octet-string}",
                base,
            )
        return cls(tuple(EventLogEntry.from_axdr(e, base) for e in value.value))
