"""DLMS Access-Request (0xD9), Access-Response (0xDA) and Data-Notification (0x0F), CRIB §5.1.

These are the three DLMS APDUs GBCS payloads use. Only their structure is
decoded here; protected data (0x31 blocks inside IC 30 responses and alerts)
stays an opaque octet-string for the crypto layer.

Every accepted payload re-encodes byte-exactly; counts that the Blue Book ties
together (one data item per specification, one result per data item) are
checked both ways, as every RTDS vector keeps them equal.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import Any

from gbcs import axdr
from gbcs.axdr import Data
from gbcs.errors import EncodeError
from gbcs.primitives import SHORT_LENGTHS, CosemDateTime, Reader, encode_length, slot_twin

__all__ = [
    "ACCESS_REQUEST",
    "ACCESS_RESPONSE",
    "ACTION_RESULTS",
    "CLASS_NAMES",
    "DATA_ACCESS_RESULTS",
    "DATA_NOTIFICATION",
    "AccessKind",
    "AccessRequest",
    "AccessResponse",
    "AccessResult",
    "Apdu",
    "DataNotification",
    "RequestSpec",
    "attribute_name",
    "class_name",
    "decode",
    "encode",
    "format_obis",
    "from_json",
    "invoke_id_for_counter",
    "method_name",
    "parse_obis",
    "result_name",
    "to_json",
]

LAYER = "dlms"
ACCESS_REQUEST = 0xD9
ACCESS_RESPONSE = 0xDA
DATA_NOTIFICATION = 0x0F


class AccessKind(enum.IntEnum):
    """Access-Request-Specification / Access-Response-Specification CHOICE arms.

    CRIB §5.1 lists 1-4 (4 appears 20 times in RTDS, always selector 1); 5,
    set-with-selection, is the Blue Book arm with the same layout as 4.
    Responses only use 1-3.
    """

    GET = 1
    SET = 2
    ACTION = 3
    GET_WITH_SELECTION = 4
    SET_WITH_SELECTION = 5

    @property
    def response_kind(self) -> AccessKind:
        """The response arm that answers this request arm (responses have only 1-3)."""
        return _RESPONSE_KINDS[self]

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")


_RESPONSE_KINDS = {
    AccessKind.GET: AccessKind.GET,
    AccessKind.SET: AccessKind.SET,
    AccessKind.ACTION: AccessKind.ACTION,
    AccessKind.GET_WITH_SELECTION: AccessKind.GET,
    AccessKind.SET_WITH_SELECTION: AccessKind.SET,
}


_KIND_BY_LABEL = {kind.label: kind for kind in AccessKind}
_SELECTIVE = (AccessKind.GET_WITH_SELECTION, AccessKind.SET_WITH_SELECTION)


# ---------------------------------------------------------------------------
# Names for humans (informational: never needed to decode or encode)

CLASS_NAMES: dict[int, str] = {
    1: "data",
    3: "register",
    4: "extended register",
    5: "demand register",
    6: "register activation",
    7: "profile generic",
    8: "clock",
    9: "script table",
    10: "schedule",
    11: "special days table",
    15: "association LN",
    17: "SAP assignment",
    18: "image transfer",
    20: "activity calendar",
    21: "register monitor",
    22: "single action schedule",
    30: "data protection",
    40: "push setup",
    64: "security setup",
    70: "disconnect control",
    71: "limiter",
    104: "ZigBee network control",
    111: "account",
    112: "credit",
    113: "charge",
    115: "token gateway",
    9000: "GBCS extended data",
}
"""COSEM interface classes (Blue Book); 9000 is the GBCS-specific class (CRIB §5.1)."""

# Attribute ids start at 2 (1 is logical_name everywhere), method ids at 1.
_ATTRIBUTES: dict[int, tuple[str, ...]] = {
    1: ("value",),
    3: ("value", "scaler_unit"),
    4: ("value", "scaler_unit", "status", "capture_time"),
    5: ("current_average_value", "last_average_value", "scaler_unit", "status", "capture_time",
        "start_time_current", "period", "number_of_periods"),
    7: ("buffer", "capture_objects", "capture_period", "sort_method", "sort_object",
        "entries_in_use", "profile_entries"),
    8: ("time", "time_zone", "status", "daylight_savings_begin", "daylight_savings_end",
        "daylight_savings_deviation", "daylight_savings_enabled", "clock_base"),
    9: ("scripts",),
    10: ("entries",),
    11: ("entries",),
    20: ("calendar_name_active", "season_profile_active", "week_profile_table_active",
         "day_profile_table_active", "calendar_name_passive", "season_profile_passive",
         "week_profile_table_passive", "day_profile_table_passive",
         "activate_passive_calendar_time"),
    21: ("thresholds", "monitored_value", "actions"),
    22: ("executed_script", "type", "execution_time"),
    30: ("protection_buffer", "protection_object_list", "protection_parameters_get",
         "protection_parameters_set", "required_protection"),
    70: ("output_state", "control_state", "control_mode"),
    71: ("monitored_value", "threshold_active", "threshold_normal", "threshold_emergency",
         "min_over_threshold_duration", "min_under_threshold_duration", "emergency_profile",
         "emergency_profile_group_id_list", "emergency_profile_active", "actions"),
    104: ("enable_disable_joining", "join_timeout", "active_devices"),
    111: ("account_mode_and_status", "current_credit_in_use", "current_credit_status",
          "available_credit", "amount_to_clear", "clearance_threshold", "aggregated_debt",
          "credit_reference_list", "charge_reference_list", "credit_charge_configuration",
          "token_gateway_configuration", "account_activation_time", "account_closure_time",
          "currency", "low_credit_threshold", "next_credit_available_threshold",
          "max_provision", "max_provision_period"),
    112: ("current_credit_amount", "type", "priority", "warning_threshold", "limit",
          "credit_configuration", "status", "preset_credit_amount",
          "credit_available_threshold", "period"),
    113: ("total_amount_paid", "charge_type", "priority", "unit_charge_active",
          "unit_charge_passive", "unit_charge_activation_time", "period",
          "charge_configuration", "last_collection_time", "last_collection_amount",
          "total_amount_remaining", "proportion"),
    115: ("token", "token_time", "token_description", "token_delivery_method", "token_status"),
    9000: ("value_active", "scaler_unit_active", "value_passive", "scaler_unit_passive",
           "activate_passive_value_time"),
}  # fmt: skip

_METHODS: dict[int, tuple[str, ...]] = {
    3: ("reset",),
    4: ("reset",),
    5: ("reset", "next_period"),
    7: ("reset", "capture"),
    8: ("adjust_to_quarter", "adjust_to_measuring_period", "adjust_to_minute",
        "adjust_to_preset_time", "preset_adjusting_time", "shift_time"),
    9: ("execute",),
    10: ("enable_disable", "insert", "delete"),
    11: ("insert", "delete"),
    20: ("activate_passive_calendar",),
    30: ("get_protected_attributes", "set_protected_attributes", "invoke_protected_method"),
    70: ("remote_disconnect", "remote_reconnect"),
    104: ("register_device", "unregister_device", "unregister_all_devices", "backup_PAN",
          "restore_PAN"),
    111: ("activate_account", "close_account", "reset_account"),
    112: ("update_amount", "set_amount_to_value", "invoke_credit"),
    113: ("update_unit_charge", "activate_passive_unit_charge", "collect",
          "update_total_amount_remaining", "set_total_amount_remaining"),
    115: ("enter",),
    9000: ("reset", "activate_passive_value"),
}  # fmt: skip

DATA_ACCESS_RESULTS: dict[int, str] = {
    0: "success",
    1: "hardware-fault",
    2: "temporary-failure",
    3: "read-write-denied",
    4: "object-undefined",
    9: "object-class-inconsistent",
    11: "object-unavailable",
    12: "type-unmatched",
    13: "scope-of-access-violated",
    14: "data-block-unavailable",
    15: "long-get-aborted",
    16: "no-long-get-in-progress",
    17: "long-set-aborted",
    18: "no-long-set-in-progress",
    19: "data-block-number-invalid",
    250: "other-reason",
}
"""Blue Book Data-Access-Result (GET and SET results); CRIB §5.1 lists the common ones."""

ACTION_RESULTS: dict[int, str] = {
    **{k: v for k, v in DATA_ACCESS_RESULTS.items() if k <= 14 or k == 250},
    15: "long-action-aborted",
    16: "no-long-action-in-progress",
}
"""Blue Book Action-Result (ACTION results)."""


def class_name(class_id: int) -> str | None:
    return CLASS_NAMES.get(class_id)


def attribute_name(class_id: int, attribute: int) -> str | None:
    """Blue Book attribute name; attribute 1 is logical_name for every class."""
    if attribute == 1:
        return "logical_name"
    names = _ATTRIBUTES.get(class_id, ())
    return names[attribute - 2] if 2 <= attribute < len(names) + 2 else None


def method_name(class_id: int, method: int) -> str | None:
    names = _METHODS.get(class_id, ())
    return names[method - 1] if 1 <= method <= len(names) else None


def result_name(kind: int, result: int) -> str | None:
    table = ACTION_RESULTS if kind == AccessKind.ACTION else DATA_ACCESS_RESULTS
    return table.get(result)


def format_obis(obis: bytes) -> str:
    """Six OBIS bytes as ``A-B:C.D.E.F`` (IEC 62056-6-1 notation)."""
    if len(obis) != 6:
        raise EncodeError(f"OBIS code must be 6 bytes, got {len(obis)}")
    a, b, c, d, e, f = obis
    return f"{a}-{b}:{c}.{d}.{e}.{f}"


_OBIS_TEXT = re.compile(r"(\d{1,3})[-.](\d{1,3})[:.](\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})")


def parse_obis(text: str) -> bytes:
    """``A-B:C.D.E.F`` (or six dot-separated numbers) back to six bytes."""
    match = _OBIS_TEXT.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise EncodeError(f"{text!r} is not an OBIS code of the form A-B:C.D.E.F")
    values = [int(group) for group in match.groups()]
    if any(v > 255 for v in values):
        raise EncodeError(f"OBIS code {text!r} has a group above 255")
    return bytes(values)


def invoke_id_for_counter(counter: int) -> int:
    """The GBCS invoke id: 0x20 then the low 24 bits of the Originator Counter (CRIB §9.8)."""
    return 0x2000_0000 | (counter & 0xFF_FFFF)


# ---------------------------------------------------------------------------
# APDU types


@dataclass(frozen=True, slots=True)
class RequestSpec:
    """One access-request-specification (CRIB §5.1).

    ``index`` is the attribute id for GET/SET (with or without selection) and
    the method id for ACTION. ``selector`` and ``access_parameter`` are set
    exactly for the with-selection kinds.
    """

    kind: int
    class_id: int
    obis: bytes
    index: int
    selector: int | None = None
    access_parameter: Data | None = None

    @classmethod
    def get(cls, class_id: int, obis: bytes | str, attribute: int) -> RequestSpec:
        return cls(AccessKind.GET, class_id, _obis(obis), attribute)

    @classmethod
    def set(cls, class_id: int, obis: bytes | str, attribute: int) -> RequestSpec:
        return cls(AccessKind.SET, class_id, _obis(obis), attribute)

    @classmethod
    def action(cls, class_id: int, obis: bytes | str, method: int) -> RequestSpec:
        return cls(AccessKind.ACTION, class_id, _obis(obis), method)

    @classmethod
    def get_with_selection(
        cls, class_id: int, obis: bytes | str, attribute: int, selector: int, parameter: Data
    ) -> RequestSpec:
        return cls(
            AccessKind.GET_WITH_SELECTION, class_id, _obis(obis), attribute, selector, parameter
        )

    @classmethod
    def set_with_selection(
        cls, class_id: int, obis: bytes | str, attribute: int, selector: int, parameter: Data
    ) -> RequestSpec:
        return cls(
            AccessKind.SET_WITH_SELECTION, class_id, _obis(obis), attribute, selector, parameter
        )

    @property
    def is_method(self) -> bool:
        return self.kind == AccessKind.ACTION

    @property
    def obis_text(self) -> str:
        return format_obis(self.obis)

    @property
    def class_name(self) -> str | None:
        return class_name(self.class_id)

    @property
    def member_name(self) -> str | None:
        """The attribute or method name, when known."""
        if self.is_method:
            return method_name(self.class_id, self.index)
        return attribute_name(self.class_id, self.index)


@dataclass(frozen=True, slots=True)
class AccessResult:
    """One access-response-specification: which kind of access and its result code."""

    kind: int
    result: int

    @property
    def ok(self) -> bool:
        return self.result == 0

    @property
    def name(self) -> str | None:
        return result_name(self.kind, self.result)


class _Apdu:
    """Views of the Long-Invoke-Id-And-Priority bits (CRIB §5.1 [S])."""

    __slots__ = ()
    invoke_id: int

    @property
    def invoke_number(self) -> int:
        return self.invoke_id & 0xFF_FFFF

    @property
    def self_descriptive(self) -> bool:
        return bool(self.invoke_id >> 28 & 1)

    @property
    def break_on_error(self) -> bool:
        return bool(self.invoke_id >> 29 & 1)

    @property
    def confirmed(self) -> bool:
        return bool(self.invoke_id >> 30 & 1)

    @property
    def high_priority(self) -> bool:
        return bool(self.invoke_id >> 31 & 1)


@dataclass(frozen=True, slots=True)
class AccessRequest(_Apdu):
    """``D9``: specifications and one data item each (null-data for a GET)."""

    invoke_id: int
    specs: tuple[RequestSpec, ...]
    data: tuple[Data, ...]
    date_time: CosemDateTime | None = None
    TAG = ACCESS_REQUEST


@dataclass(frozen=True, slots=True)
class AccessResponse(_Apdu):
    """``DA``: data items and one result per item, in specification order.

    ``specs`` is the optional echo of the request's specifications; GBCS
    always leaves it out (the ``00`` byte), so it is None.
    """

    invoke_id: int
    data: tuple[Data, ...]
    results: tuple[AccessResult, ...]
    date_time: CosemDateTime | None = None
    specs: tuple[RequestSpec, ...] | None = None
    TAG = ACCESS_RESPONSE

    @property
    def ok(self) -> bool:
        return all(r.result == 0 for r in self.results)


@dataclass(frozen=True, slots=True)
class DataNotification(_Apdu):
    """``0F``: one Data value, in GBCS a structure led by the alert code (CRIB §5.1)."""

    invoke_id: int
    body: Data
    date_time: CosemDateTime | None = None
    TAG = DATA_NOTIFICATION


Apdu = AccessRequest | AccessResponse | DataNotification


def _obis(value: bytes | str) -> bytes:
    return parse_obis(value) if isinstance(value, str) else bytes(value)


# ---------------------------------------------------------------------------
# Decoding
#
# Decoding every payload is on the hot path (the whole RTDS is benchmarked),
# so the common one-byte forms are read straight from ``r.data`` and the
# Reader's methods are kept for the rare long forms and for the errors.
# Plain specifications and results are interned: a meter sees the same few
# dozen over and over.

_new = object.__new__
_SPEC_FIELDS = tuple(
    RequestSpec.__dict__[name].__set__
    for name in ("kind", "class_id", "obis", "index", "selector", "access_parameter")
)
_KINDS = {kind.value: kind for kind in AccessKind}
_INTERN_LIMIT = 4096
_SPECS: dict[bytes, RequestSpec] = {}
_RESULTS: dict[bytes, AccessResult] = {
    bytes((kind, result)): AccessResult(_KINDS[kind], result)
    for kind in (AccessKind.GET, AccessKind.SET, AccessKind.ACTION)
    for result in range(256)
}
"""Every valid result, built once (768 small objects)."""
_RESULT_BY_WORD = {(raw[0] << 8) | raw[1]: result for raw, result in _RESULTS.items()}
_U32 = struct.Struct(">I").unpack_from


def _count(r: Reader, field: str) -> int:
    """A DER-style count; the one-byte form without going through the Reader."""
    pos = r.pos
    if pos < r.end and (n := r.data[pos]) < 0x80:
        r.pos = pos + 1
        return n
    return r.length(field)


def _read_header(r: Reader) -> tuple[int, CosemDateTime | None]:
    """Invoke id and date-time, the two fields every APDU starts with."""
    pos = r.pos
    if r.end - pos >= 5 and r.data[pos + 4] == 0:  # GBCS: no date-time
        r.pos = pos + 5
        return _U32(r.data, pos)[0], None
    invoke_id = r.uint(4, "invoke id")
    pos = r.pos
    n = r.length("date-time length")
    if n == 0:
        return invoke_id, None
    if n != CosemDateTime.LENGTH:
        raise r.error("date-time length", f"must be 0 or 12, found {n}", pos)
    return invoke_id, CosemDateTime.read(r)


def _read_specs(r: Reader, count: int) -> tuple[RequestSpec, ...]:
    specs = []
    data, end = r.data, r.end
    for i in range(count):
        pos = r.pos
        if pos + 10 <= end and (spec := _SPECS.get(data[pos : pos + 10])) is not None:
            r.pos = pos + 10
            specs.append(spec)
            continue
        raw = r.take(10, f"access-request specification {i}")
        kind = raw[0]
        if not 1 <= kind <= 5:
            raise r.error(
                f"access-request specification {i} kind",
                f"0x{kind:02X} is not GET (1), SET (2), ACTION (3), "
                "GET-with-selection (4) or SET-with-selection (5)",
                pos,
            )
        selector = parameter = None
        if kind >= AccessKind.GET_WITH_SELECTION:
            selector = r.u8(f"access-request specification {i} selector")
            parameter = axdr.read(r)
        specs.append(_new_spec(raw, selector, parameter))
    return tuple(specs)


def _new_spec(raw: bytes, selector: int | None, parameter: Data | None) -> RequestSpec:
    """The spec whose fixed part is ``raw`` (kind already checked); plain ones are interned."""
    spec = _new(RequestSpec)
    for setter, value in zip(
        _SPEC_FIELDS,
        (_KINDS[raw[0]], (raw[1] << 8) | raw[2], raw[3:9], raw[9], selector, parameter),
        strict=True,
    ):
        setter(spec, value)
    if selector is None and len(_SPECS) < _INTERN_LIMIT:
        _SPECS[raw] = spec
    return spec


def _decode_request(r: Reader) -> AccessRequest:
    invoke_id, date_time = _read_header(r)
    specs = _read_specs(r, _count(r, "specification count"))
    pos = r.pos
    count = _count(r, "data count")
    if count != len(specs):
        raise r.error("data count", f"{count} data items for {len(specs)} specifications", pos)
    data = axdr.read_sequence(r, count)
    r.finish()
    return AccessRequest(invoke_id, specs, data, date_time)


def _decode_response(r: Reader) -> AccessResponse:
    invoke_id, date_time = _read_header(r)
    pos = r.pos
    flag = r.u8("access-request-specification presence")
    specs: tuple[RequestSpec, ...] | None = None
    if flag == 1:
        specs = _read_specs(r, _count(r, "specification count"))
    elif flag != 0:
        raise r.error(
            "access-request-specification presence",
            f"0x{flag:02X} is neither 0x00 (absent) nor 0x01 (present)",
            pos,
        )
    data = axdr.read_sequence(r, _count(r, "data count"))
    pos = r.pos
    count = _count(r, "result count")
    if count != len(data):
        raise r.error("result count", f"{count} results for {len(data)} data items", pos)
    results = []
    for i in range(count):
        pos = r.pos
        raw = r.take(2, f"result {i}")
        result = _RESULTS.get(raw)
        if result is None:
            if not 1 <= raw[0] <= 3:
                raise r.error(
                    f"result {i} kind", f"0x{raw[0]:02X} is not GET (1), SET (2) or ACTION (3)", pos
                )
            result = _RESULTS[raw] = AccessResult(_KINDS[raw[0]], raw[1])
        results.append(result)
    r.finish()
    return AccessResponse(invoke_id, data, tuple(results), date_time, specs)


def _decode_notification(r: Reader) -> DataNotification:
    invoke_id, date_time = _read_header(r)
    body = axdr.read(r)
    r.finish()
    return DataNotification(invoke_id, body, date_time)


# The fast path: the three APDUs as GBCS sends them, read straight from the
# bytes with no Reader. Anything it does not expect (and every malformed
# input) raises one of axdr._RETRY and the Reader-based decoders above run
# from the start, so values and errors are exactly theirs.

_read_fast = axdr._read_fast
_unpack_date_time = CosemDateTime.unpack
_RETRY = (*axdr._RETRY, KeyError)
# Twins (see gbcs.primitives.slot_twin): the APDUs built by plain stores.
_RequestTwin = slot_twin(AccessRequest)
_ResponseTwin = slot_twin(AccessResponse)
_NotificationTwin = slot_twin(DataNotification)


def _fast_header(data: bytes) -> tuple[int, CosemDateTime | None, int]:
    """Invoke id, date-time and the position after them, when a date-time is present."""
    if data[5] != CosemDateTime.LENGTH:
        raise axdr._Retry
    return _U32(data, 1)[0], _unpack_date_time(data[6:18]), 18


def _fast_request(data: bytes) -> AccessRequest:
    if data[5]:
        invoke_id, date_time, pos = _fast_header(data)
    else:  # GBCS: no date-time
        invoke_id, date_time, pos = _U32(data, 1)[0], None, 6
    count = data[pos]
    if count >= 0x80:
        raise axdr._Retry
    pos += 1
    specs: list[Any] = [None] * count
    for i in range(count):
        raw = data[pos : pos + 10]
        spec = _SPECS.get(raw)
        if spec is not None:
            pos += 10
        elif len(raw) != 10 or not 1 <= raw[0] <= 5:
            raise axdr._Retry
        elif raw[0] >= AccessKind.GET_WITH_SELECTION:
            selector = data[pos + 10]
            parameter, pos = _read_fast(data, pos + 11, 0, 1)
            spec = _new_spec(raw, selector, parameter[0])
        else:
            spec = _new_spec(raw, None, None)
            pos += 10
        specs[i] = spec
    if data[pos] != count:
        raise axdr._Retry
    items, pos = _read_fast(data, pos + 1, 0, count)
    if pos != len(data):
        raise axdr._Retry
    apdu = _new(_RequestTwin)  # four stores cost far less than the dataclass __init__
    apdu.invoke_id = invoke_id
    apdu.specs = tuple(specs)
    apdu.data = tuple(items)
    apdu.date_time = date_time
    apdu.__class__ = AccessRequest
    return apdu  # type: ignore[no-any-return]


def _fast_response(data: bytes) -> AccessResponse:
    if data[5]:
        invoke_id, date_time, pos = _fast_header(data)
    else:  # GBCS: no date-time
        invoke_id, date_time, pos = _U32(data, 1)[0], None, 6
    count = data[pos + 1]
    if data[pos] != 0 or count >= 0x80:  # GBCS never echoes the specifications
        raise axdr._Retry
    items, pos = _read_fast(data, pos + 2, 0, count)
    if data[pos] != count or pos + 1 + 2 * count != len(data):
        raise axdr._Retry
    if count == 1:
        results: tuple[AccessResult, ...] = (_RESULT_BY_WORD[(data[pos + 1] << 8) | data[pos + 2]],)
    else:
        get = _RESULT_BY_WORD.__getitem__
        results = tuple([get((data[p] << 8) | data[p + 1]) for p in range(pos + 1, len(data), 2)])
    apdu = _new(_ResponseTwin)
    apdu.invoke_id = invoke_id
    apdu.data = tuple(items)
    apdu.results = results
    apdu.date_time = date_time
    apdu.specs = None
    apdu.__class__ = AccessResponse
    return apdu  # type: ignore[no-any-return]


def _fast_notification(data: bytes) -> DataNotification:
    if data[5]:
        invoke_id, date_time, pos = _fast_header(data)
    else:  # GBCS: no date-time
        invoke_id, date_time, pos = _U32(data, 1)[0], None, 6
    body, pos = _read_fast(data, pos, 0, 1)
    if pos != len(data):
        raise axdr._Retry
    apdu = _new(_NotificationTwin)
    apdu.invoke_id = invoke_id
    apdu.body = body[0]
    apdu.date_time = date_time
    apdu.__class__ = DataNotification
    return apdu  # type: ignore[no-any-return]


_FAST_DECODERS = {
    ACCESS_REQUEST: _fast_request,
    ACCESS_RESPONSE: _fast_response,
    DATA_NOTIFICATION: _fast_notification,
}

_DECODERS = {
    ACCESS_REQUEST: _decode_request,
    ACCESS_RESPONSE: _decode_response,
    DATA_NOTIFICATION: _decode_notification,
}


def decode(data: bytes, base: int = 0) -> Apdu:
    """Decode one DLMS APDU filling ``data``; ``base`` is its offset in the message.

    Pass ``base=parts.payload_offset`` from :func:`gbcs.frame.decode_message`
    so error offsets point into the whole message.
    """
    data = data if type(data) is bytes else bytes(data)
    try:
        return _FAST_DECODERS[data[0]](data)  # type: ignore[no-any-return]
    except _RETRY:
        pass
    r = Reader(data, LAYER, base=base)
    if not data:
        raise r.error("tag", "empty input")
    decoder = _DECODERS.get(data[0])
    if decoder is None:
        raise r.error(
            "tag",
            f"0x{data[0]:02X} is not Access-Request (0xD9), Access-Response "
            "(0xDA) or Data-Notification (0x0F)",
        )
    r.pos = 1
    return decoder(r)


# ---------------------------------------------------------------------------
# Encoding


def _u(value: object, size: int, what: str) -> bytes:
    if type(value) is not int and not isinstance(value, enum.IntEnum):
        raise EncodeError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value < 1 << (8 * size):  # type: ignore[operator]
        raise EncodeError(f"{what} {value} does not fit in {size} byte(s)")
    return int(value).to_bytes(size, "big")  # type: ignore[call-overload]


def _data(value: object, what: str) -> bytes:
    if not isinstance(value, Data):
        raise EncodeError(f"{what} must be an A-XDR Data value, got {type(value).__name__}")
    try:
        return axdr.encode(value)
    except EncodeError as exc:
        raise EncodeError(f"{what}: {exc}") from None


def _tuple(value: object, what: str) -> tuple[Any, ...]:
    if not isinstance(value, tuple):
        raise EncodeError(f"{what} must be a tuple, got {type(value).__name__}")
    return value


def _put_date_time(value: CosemDateTime | None, out: list[bytes]) -> None:
    if value is None:
        out.append(b"\x00")
    elif isinstance(value, CosemDateTime):
        out.append(b"\x0c" + value.encode())
    else:
        raise EncodeError(f"date-time must be a CosemDateTime or None, got {type(value).__name__}")


def _put_specs(specs: tuple[RequestSpec, ...], out: list[bytes]) -> None:
    out.append(encode_length(len(specs)))
    for i, spec in enumerate(specs):
        what = f"specification {i}"
        if not isinstance(spec, RequestSpec):
            raise EncodeError(f"{what} must be a RequestSpec, got {type(spec).__name__}")
        kind = _u(spec.kind, 1, f"{what} kind")
        if not 1 <= kind[0] <= 5:
            raise EncodeError(f"{what} kind {spec.kind} is not 1-5")
        if not isinstance(spec.obis, bytes) or len(spec.obis) != 6:
            raise EncodeError(f"{what} OBIS code must be 6 bytes")
        out.append(
            kind
            + _u(spec.class_id, 2, f"{what} class id")
            + spec.obis
            + _u(spec.index, 1, f"{what} attribute/method id")
        )
        if spec.kind in _SELECTIVE:
            out.append(_u(spec.selector, 1, f"{what} selector"))
            out.append(_data(spec.access_parameter, f"{what} access parameter"))
        elif spec.selector is not None or spec.access_parameter is not None:
            raise EncodeError(f"{what}: only the with-selection kinds take a selector")


def _put_data(items: tuple[Data, ...], out: list[bytes]) -> None:
    out.append(encode_length(len(items)))
    for i, item in enumerate(items):
        out.append(_data(item, f"data item {i}"))


# The fast encoder: the three APDUs with plain specifications (GET, SET, ACTION)
# and results, the data through axdr's fast encoder, and no per-item messages
# formatted in advance. Anything it does not take as plainly valid sends the APDU
# to the checked encoder below, so bytes and errors are the checked encoder's.

_APDU_TAGS = {
    AccessRequest: ACCESS_REQUEST,
    AccessResponse: ACCESS_RESPONSE,
    DataNotification: DATA_NOTIFICATION,
}
_HEAD = struct.Struct(">BI").pack
_PLAIN_SPEC = struct.Struct(">BH6sB").pack
_PAIR = struct.Struct(">BB").pack
_SMALL_INT = (int, AccessKind)  # the kinds' own types, as _u() accepts them
_SLOW = axdr._SLOW  # one package, one fast-path protocol


def _fast_date_time(value: CosemDateTime | None, out: list[bytes]) -> None:
    if value is None:
        out.append(b"\x00")
    elif type(value) is CosemDateTime:
        out.append(b"\x0c" + value.encode())
    else:
        raise _SLOW


def _fast_specs(specs: tuple[RequestSpec, ...], out: list[bytes]) -> None:
    n = len(specs)
    out.append(SHORT_LENGTHS[n] if n < 0x80 else encode_length(n))
    for spec in specs:
        if type(spec) is not RequestSpec:
            raise _SLOW
        kind, class_id, index = spec.kind, spec.class_id, spec.index
        obis = spec.obis
        if (
            type(kind) not in _SMALL_INT
            or not 1 <= kind <= 3
            or type(class_id) is not int
            or type(index) is not int
            or type(obis) is not bytes
            or len(obis) != 6
            or spec.selector is not None
            or spec.access_parameter is not None
        ):
            raise _SLOW
        out.append(_PLAIN_SPEC(kind, class_id, obis, index))  # struct.error: out of range


def _fast_data(items: tuple[Data, ...], out: list[bytes]) -> None:
    n = len(items)
    out.append(SHORT_LENGTHS[n] if n < 0x80 else encode_length(n))
    put = axdr._fast_put
    for item in items:
        put(item, out, 0)


def _fast_encode(apdu: Apdu) -> bytes:
    """Bytes of a plainly valid APDU; raises (anything) to defer to the checked encoder."""
    cls = type(apdu)
    invoke_id = apdu.invoke_id
    if type(invoke_id) is not int:
        raise _SLOW
    out = [_HEAD(_APDU_TAGS[cls], invoke_id)]  # KeyError: not an APDU; struct.error: range
    _fast_date_time(apdu.date_time, out)
    if cls is AccessRequest:
        specs, data = apdu.specs, apdu.data  # type: ignore[union-attr]
        if type(specs) is not tuple or type(data) is not tuple or len(specs) != len(data):
            raise _SLOW
        _fast_specs(specs, out)
        _fast_data(data, out)
    elif cls is AccessResponse:
        data, results = apdu.data, apdu.results  # type: ignore[union-attr]
        if type(data) is not tuple or type(results) is not tuple or len(results) != len(data):
            raise _SLOW
        specs = apdu.specs  # type: ignore[union-attr]
        if specs is None:
            out.append(b"\x00")
        elif type(specs) is tuple:
            out.append(b"\x01")
            _fast_specs(specs, out)
        else:
            raise _SLOW
        _fast_data(data, out)
        n = len(results)
        out.append(SHORT_LENGTHS[n] if n < 0x80 else encode_length(n))
        for result in results:
            if type(result) is not AccessResult:
                raise _SLOW
            kind, code = result.kind, result.result
            if type(kind) not in _SMALL_INT or not 1 <= kind <= 3 or type(code) is not int:
                raise _SLOW
            out.append(_PAIR(kind, code))  # struct.error: out of range
    else:
        axdr._fast_put(apdu.body, out, 0)  # type: ignore[union-attr]
    return b"".join(out)


def encode(apdu: Apdu) -> bytes:
    """Bytes of an APDU; EncodeError for values that cannot go on the wire."""
    try:
        return _fast_encode(apdu)
    except Exception:  # the checked encoder decides what is wrong
        pass
    return encode_checked(apdu)


def encode_checked(apdu: Apdu) -> bytes:
    """:func:`encode` field by field: the reference for the fast path, and its errors."""
    out: list[bytes] = []
    if isinstance(apdu, AccessRequest):
        specs = _tuple(apdu.specs, "specs")
        data = _tuple(apdu.data, "data")
        if len(specs) != len(data):
            raise EncodeError(f"{len(data)} data items for {len(specs)} specifications")
        out.append(b"\xd9" + _u(apdu.invoke_id, 4, "invoke id"))
        _put_date_time(apdu.date_time, out)
        _put_specs(specs, out)
        _put_data(data, out)
    elif isinstance(apdu, AccessResponse):
        data = _tuple(apdu.data, "data")
        results = _tuple(apdu.results, "results")
        if len(results) != len(data):
            raise EncodeError(f"{len(results)} results for {len(data)} data items")
        out.append(b"\xda" + _u(apdu.invoke_id, 4, "invoke id"))
        _put_date_time(apdu.date_time, out)
        if apdu.specs is None:
            out.append(b"\x00")
        else:
            out.append(b"\x01")
            _put_specs(_tuple(apdu.specs, "specs"), out)
        _put_data(data, out)
        out.append(encode_length(len(results)))
        for i, result in enumerate(results):
            if not isinstance(result, AccessResult):
                raise EncodeError(
                    f"result {i} must be an AccessResult, got {type(result).__name__}"
                )
            kind = _u(result.kind, 1, f"result {i} kind")
            if not 1 <= kind[0] <= 3:
                raise EncodeError(f"result {i} kind {result.kind} is not 1-3")
            out.append(kind + _u(result.result, 1, f"result {i} code"))
    elif isinstance(apdu, DataNotification):
        out.append(b"\x0f" + _u(apdu.invoke_id, 4, "invoke id"))
        _put_date_time(apdu.date_time, out)
        out.append(_data(apdu.body, "body"))
    else:
        raise EncodeError(f"{type(apdu).__name__} is not a DLMS APDU")
    return b"".join(out)


# ---------------------------------------------------------------------------
# JSON form

_APDU_NAMES = {
    AccessRequest: "access-request",
    AccessResponse: "access-response",
    DataNotification: "data-notification",
}


def _date_time_json(value: CosemDateTime | None, out: dict[str, Any]) -> None:
    if value is None:
        out["date_time"] = None
    else:
        out["date_time"] = value.encode().hex().upper()
        out["date_time_text"] = str(value)


def _kind_label(kind: int) -> str:
    try:
        return AccessKind(kind).label
    except ValueError:
        raise EncodeError(f"access kind {kind!r} is not 1-5") from None


def _spec_json(spec: RequestSpec) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": _kind_label(spec.kind),
        "class": spec.class_id,
        "class_name": class_name(spec.class_id),
        "obis": format_obis(spec.obis),
    }
    if spec.is_method:
        out["method"] = spec.index
        out["method_name"] = method_name(spec.class_id, spec.index)
    else:
        out["attribute"] = spec.index
        out["attribute_name"] = attribute_name(spec.class_id, spec.index)
    if spec.kind in _SELECTIVE:
        out["selector"] = spec.selector
        out["access_parameter"] = axdr.to_json(spec.access_parameter)  # type: ignore[arg-type]
    return out


def to_json(apdu: Apdu) -> dict[str, Any]:
    """JSON-ready dict; ``*_name`` and ``*_text`` keys are informational only."""
    name = _APDU_NAMES.get(type(apdu))
    if name is None:
        raise EncodeError(f"{type(apdu).__name__} is not a DLMS APDU")
    out: dict[str, Any] = {"apdu": name, "invoke_id": apdu.invoke_id}
    _date_time_json(apdu.date_time, out)
    if isinstance(apdu, AccessRequest):
        out["specs"] = [_spec_json(s) for s in apdu.specs]
        out["data"] = [axdr.to_json(d) for d in apdu.data]
    elif isinstance(apdu, AccessResponse):
        out["specs"] = None if apdu.specs is None else [_spec_json(s) for s in apdu.specs]
        out["data"] = [axdr.to_json(d) for d in apdu.data]
        out["results"] = [
            {"kind": _kind_label(r.kind), "result": r.result, "result_name": r.name}
            for r in apdu.results
        ]
    else:
        out["body"] = axdr.to_json(apdu.body)
    return out


def _fail(path: str, reason: str) -> EncodeError:
    return EncodeError(f"dlms JSON at {path}: {reason}")


def _get(obj: dict[str, Any], key: str, path: str) -> Any:
    if key not in obj:
        raise _fail(f"{path}.{key}", "missing")
    return obj[key]


def _int(obj: dict[str, Any], key: str, path: str, size: int) -> int:
    value = _get(obj, key, path)
    if type(value) is not int or not 0 <= value < 1 << (8 * size):
        raise _fail(f"{path}.{key}", f"expected an integer of {size} byte(s), got {value!r}")
    return value


def _list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = _get(obj, key, path)
    if not isinstance(value, list):
        raise _fail(f"{path}.{key}", f"expected a list, got {type(value).__name__}")
    return value


def _object(obj: Any, path: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _fail(path, f"expected an object, got {type(obj).__name__}")
    return obj


def _kind(obj: dict[str, Any], path: str, allowed: int) -> AccessKind:
    label = _get(obj, "kind", path)
    kind = _KIND_BY_LABEL.get(label) if isinstance(label, str) else None
    if kind is None or kind > allowed:
        names = ", ".join(k.label for k in AccessKind if k <= allowed)
        raise _fail(f"{path}.kind", f"{label!r} is not one of {names}")
    return kind


def _date_time_from_json(obj: dict[str, Any], path: str) -> CosemDateTime | None:
    value = _get(obj, "date_time", path)
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or len(raw) != CosemDateTime.LENGTH:
        raise _fail(f"{path}.date_time", "expected null or 12 bytes as hex")
    return CosemDateTime.decode(raw, LAYER)


_APDU_KEYS = frozenset(
    {"apdu", "invoke_id", "date_time", "date_time_text", "specs", "data", "results", "body"}
)
_SPEC_KEYS = frozenset(
    {
        "kind",
        "class",
        "class_name",
        "obis",
        "attribute",
        "attribute_name",
        "method",
        "method_name",
        "selector",
        "access_parameter",
    }
)
_RESULT_KEYS = frozenset({"kind", "result", "result_name"})


def _only(obj: dict[str, Any], allowed: frozenset[str], path: str) -> None:
    """Refuse a key to_json never writes: it would be silently dropped."""
    for key in obj:
        if key not in allowed:
            raise _fail(f"{path}.{key}", "unknown key")


def _agrees(obj: dict[str, Any], written: dict[str, Any], keys: tuple[str, ...], path: str) -> None:
    """Informational keys (names, texts) must say what the values say: an edit of a name
    instead of its number would otherwise be silently lost."""
    for key in keys:
        if key in obj and obj[key] != written.get(key):
            raise _fail(
                f"{path}.{key}",
                f"{obj[key]!r} disagrees with the value (expected {written.get(key)!r})",
            )


def _spec_from_json(obj: Any, path: str) -> RequestSpec:
    obj = _object(obj, path)
    _only(obj, _SPEC_KEYS, path)
    spec = _spec_from_checked_json(obj, path)
    written = _spec_json(spec)
    for key in obj:  # a selector on a plain GET, a method on a SET: dropped otherwise
        if key not in written:
            raise _fail(f"{path}.{key}", f"does not apply to a {written['kind']} spec")
    _agrees(obj, written, ("class_name", "attribute_name", "method_name"), path)
    return spec


def _spec_from_checked_json(obj: dict[str, Any], path: str) -> RequestSpec:
    kind = _kind(obj, path, AccessKind.SET_WITH_SELECTION)
    obis_text = _get(obj, "obis", path)
    try:
        obis = parse_obis(obis_text)
    except EncodeError as exc:
        raise _fail(f"{path}.obis", str(exc)) from None
    index = _int(obj, "method" if kind == AccessKind.ACTION else "attribute", path, 1)
    selector = parameter = None
    if kind in _SELECTIVE:
        selector = _int(obj, "selector", path, 1)
        parameter = axdr.from_json(_get(obj, "access_parameter", path), f"{path}.access_parameter")
    return RequestSpec(kind, _int(obj, "class", path, 2), obis, index, selector, parameter)


def _data_from_json(obj: dict[str, Any], key: str, path: str) -> tuple[Data, ...]:
    return tuple(
        axdr.from_json(item, f"{path}.{key}[{i}]") for i, item in enumerate(_list(obj, key, path))
    )


def from_json(obj: Any) -> Apdu:
    """Rebuild an APDU from :func:`to_json` output; names are ignored.

    EncodeError names the JSON path of the first bad field.
    """
    path = "$"
    obj = _object(obj, path)
    _only(obj, _APDU_KEYS, path)
    name = _get(obj, "apdu", path)
    invoke_id = _int(obj, "invoke_id", path, 4)
    date_time = _date_time_from_json(obj, path)
    if date_time is not None and "date_time_text" in obj:
        _agrees(obj, {"date_time_text": str(date_time)}, ("date_time_text",), path)
    apdu: Apdu
    if name == "access-request":
        specs = tuple(
            _spec_from_json(s, f"$.specs[{i}]") for i, s in enumerate(_list(obj, "specs", path))
        )
        data = _data_from_json(obj, "data", path)
        if len(specs) != len(data):
            raise _fail("$.data", f"{len(data)} data items for {len(specs)} specifications")
        apdu = AccessRequest(invoke_id, specs, data, date_time)
    elif name == "access-response":
        raw_specs = _get(obj, "specs", path)
        specs_or_none = None
        if raw_specs is not None:
            specs_or_none = tuple(
                _spec_from_json(s, f"$.specs[{i}]") for i, s in enumerate(_list(obj, "specs", path))
            )
        data = _data_from_json(obj, "data", path)
        results = []
        for i, item in enumerate(_list(obj, "results", path)):
            rpath = f"$.results[{i}]"
            item = _object(item, rpath)
            _only(item, _RESULT_KEYS, rpath)
            result = AccessResult(
                _kind(item, rpath, AccessKind.ACTION), _int(item, "result", rpath, 1)
            )
            _agrees(item, {"result_name": result.name}, ("result_name",), rpath)
            results.append(result)
        if len(results) != len(data):
            raise _fail("$.results", f"{len(results)} results for {len(data)} data items")
        apdu = AccessResponse(invoke_id, data, tuple(results), date_time, specs_or_none)
    elif name == "data-notification":
        apdu = DataNotification(
            invoke_id, axdr.from_json(_get(obj, "body", path), "$.body"), date_time
        )
    else:
        raise _fail(
            "$.apdu", f"{name!r} is not access-request, access-response or data-notification"
        )
    return apdu
