from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs import dlms
from gbcs.axdr import (
    Array,
    Boolean,
    CompactArray,
    Data,
    DoubleLong,
    DoubleLongUnsigned,
    Integer,
    LongUnsigned,
    NullData,
    OctetString,
    Structure,
    Tag,
    TypeDescription,
    Unsigned,
    VisibleString,
)
from gbcs.dlms import AccessKind, AccessRequest, AccessResponse, AccessResult
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import decode_message
from gbcs.primitives import CosemDateTime
from gbcs.reads import (
    EVENT_LOG_ENTRY_TYPE,
    EsmeIdentity,
    EventLog,
    EventLogEntry,
    FirmwareVersion,
    ReadEsmeIdentity,
    ReadEventLog,
    ReadFirmwareVersion,
)
from gbcs.rtds import RtdsVector
from tests.conftest import CORPUS, SKIP_REASON

# Use case -> (request type, response type); ECS26e is not modelled (no RTDS vector).
TYPES = {
    "ECS26m": (ReadEsmeIdentity, EsmeIdentity),
    "ECS52": (ReadFirmwareVersion, FirmwareVersion),
    "ECS35a": (ReadEventLog, EventLog),
}
UTC = dt.UTC
RTDS_START = 473299200  # 2014-12-31 00:00:00 UTC, seconds since 2000


def _reference_params() -> list:
    """Every command and response of the use cases, or a skip saying what is missing."""
    if not CORPUS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-rtds")]
    params = []
    for use_case in TYPES:
        vectors = [
            v
            for v in CORPUS
            if v.folder.split("_", 1)[-1] == use_case
            and v.kind in ("COMMAND", "PRECOMMAND", "RESPONSE")
        ]
        params += [pytest.param(v, id=v.name.removesuffix("_GBCS.HEX")) for v in vectors]
        if not vectors:
            reason = f"the RTDS subset has no {use_case} vector"
            params.append(pytest.param(None, marks=pytest.mark.skip(reason=reason), id=use_case))
    return params


def _apdu(vector: RtdsVector) -> tuple[dlms.Apdu, bytes, int]:
    message, parts = decode_message(vector.data)
    apdu = dlms.decode(message.payload, parts.payload_offset)
    return apdu, message.payload, message.header.other_information.message_code


def _vector(corpus: list[RtdsVector], name: str) -> dlms.Apdu:
    return _apdu(next(v for v in corpus if v.name.startswith(name)))[0]


@pytest.mark.parametrize("vector", _reference_params())
def test_reference_vectors_rebuild_byte_exact(vector: RtdsVector) -> None:
    request_type, response_type = TYPES[vector.folder.split("_", 1)[-1]]
    apdu, payload, code = _apdu(vector)
    if vector.kind == "RESPONSE":
        assert isinstance(apdu, AccessResponse)
        typed = response_type.from_response(apdu, 47)
        rebuilt = typed.to_response(apdu.invoke_id)
    else:
        assert isinstance(apdu, AccessRequest)
        typed = request_type.from_request(apdu, 47)
        rebuilt = typed.to_request(apdu.invoke_id)
    assert code == typed.MESSAGE_CODE
    assert rebuilt == apdu
    assert dlms.encode(rebuilt) == payload


def test_ecs26m_values(corpus: list[RtdsVector]) -> None:
    ok = EsmeIdentity.from_response(_vector(corpus, "ECS26m_6.2.4_SUCCESS_RESPONSE"))
    assert ok == EsmeIdentity(b"B", b"ATGTypeX", b"CSW ", True)
    error = EsmeIdentity.from_response(_vector(corpus, "ECS26m_6.2.4_ERROR_RESPONSE"))
    assert error == EsmeIdentity(b"B", None, None, None, (0, 1, 250, 250))
    request = _vector(corpus, "ECS26m_6.2.4_SUCCESS_COMMAND")
    assert [s.obis_text for s in request.specs] == [
        "0-0:96.1.2.255",
        "0-0:96.1.4.255",
        "0-0:96.1.6.255",
        "0-0:94.44.0.4",
    ]


def test_ecs35a_values(corpus: list[RtdsVector]) -> None:
    read = ReadEventLog.from_request(_vector(corpus, "ECS35a_6.13_SUCCESS_COMMAND"))
    assert read == ReadEventLog(RTDS_START, RTDS_START + 86400)
    assert read.start_time == dt.datetime(2014, 12, 31, tzinfo=UTC)
    assert read == ReadEventLog.between(read.start_time, read.end_time)
    log = EventLog.from_response(_vector(corpus, "ECS35a_6.13_SUCCESS_RESPONSE"))
    assert log.result == 0 and log.entries is not None and len(log.entries) == 33
    assert log.entries[0] == EventLogEntry(RTDS_START, 0x8F01)
    assert log.entries[2] == EventLogEntry(473305188, 0x8154, bytes.fromhex("009B"))
    assert read.select(log.entries) == log.entries  # every entry lies in the range
    error = EventLog.from_response(_vector(corpus, "ECS35a_6.13_ERROR_RESPONSE"))
    assert error == EventLog(None, 1)


def test_emulator_answers_a_range_from_its_log() -> None:
    day = dt.datetime(2024, 3, 1, tzinfo=UTC)
    log = tuple(
        EventLogEntry.at(day + dt.timedelta(hours=h), 0x8F01 + h, b"\x00\x9b" if h % 2 else b"")
        for h in range(48)
    )
    read = ReadEventLog.between(day, day + dt.timedelta(days=1))
    apdu = dlms.decode(dlms.encode(read.to_request(dlms.invoke_id_for_counter(7))))
    assert isinstance(apdu, AccessRequest)
    asked = ReadEventLog.from_request(apdu)
    answer = EventLog(asked.select(log)).to_response(apdu.invoke_id)
    parsed = EventLog.from_response(dlms.decode(dlms.encode(answer)))
    assert parsed.entries == log[:25]  # both ends inclusive
    assert parsed.entries[-1].time == day + dt.timedelta(days=1)
    empty = EventLog(()).to_response(1)
    assert EventLog.from_response(dlms.decode(dlms.encode(empty))) == EventLog(())


def test_firmware_version_shape() -> None:
    request = ReadFirmwareVersion().to_request(0x20000001)
    assert dlms.encode(request).hex().upper() == "D92000000100010100010100000200FF020100"
    assert ReadFirmwareVersion.from_request(request) == ReadFirmwareVersion()
    response = FirmwareVersion(bytes.fromhex("0123ABCE")).to_response(0x20000001)
    assert dlms.encode(response).hex().upper() == "DA2000000100000109040123ABCE010100"


# Hypothesis round-trips ---------------------------------------------------------------

invoke_ids = st.integers(0, 2**64 - 1).map(dlms.invoke_id_for_counter)
u32 = st.integers(0, 0xFFFF_FFFF)
failures = st.sampled_from([1, 2, 3, 4, 9, 11, 12, 13, 250])


def _maybe(value: st.SearchStrategy) -> st.SearchStrategy:
    """(value, 0) or (None, failure result)."""
    return st.tuples(value, st.just(0)) | st.tuples(st.none(), failures)


@st.composite
def identities(draw: st.DrawFn) -> EsmeIdentity:
    items = [draw(_maybe(st.binary(max_size=40))) for _ in range(3)]
    items.append(draw(_maybe(st.booleans())))
    values = [v for v, _ in items]
    results = tuple(r for _, r in items)
    return EsmeIdentity(*values, results=results)  # type: ignore[arg-type]


entries = st.builds(
    EventLogEntry, timestamp=u32, event_code=st.integers(0, 0xFFFF), info=st.binary(max_size=8)
)
event_logs = st.builds(EventLog, entries=st.tuples() | st.lists(entries, max_size=30).map(tuple))
event_logs |= st.builds(EventLog, entries=st.none(), result=failures)
firmware = st.builds(FirmwareVersion, version=st.binary(max_size=16))
firmware |= st.builds(FirmwareVersion, version=st.none(), result=failures)
requests = st.sampled_from([ReadEsmeIdentity(), ReadFirmwareVersion()])
requests |= st.builds(ReadEventLog, start=u32, end=u32)


@given(requests, invoke_ids)
def test_request_roundtrip(read: object, invoke_id: int) -> None:
    apdu = dlms.decode(dlms.encode(read.to_request(invoke_id)))  # type: ignore[attr-defined]
    assert isinstance(apdu, AccessRequest) and apdu.invoke_id == invoke_id
    assert type(read).from_request(apdu) == read  # type: ignore[attr-defined]


@given(identities() | event_logs | firmware, invoke_ids)
def test_response_roundtrip(answer: object, invoke_id: int) -> None:
    apdu = dlms.decode(dlms.encode(answer.to_response(invoke_id)))  # type: ignore[attr-defined]
    assert isinstance(apdu, AccessResponse) and apdu.invoke_id == invoke_id
    assert type(answer).from_response(apdu) == answer  # type: ignore[attr-defined]


# Error paths ----------------------------------------------------------------------------


def _with_spec(request: AccessRequest, position: int, **changes: object) -> AccessRequest:
    specs = list(request.specs)
    specs[position] = dataclasses.replace(specs[position], **changes)
    return dataclasses.replace(request, specs=tuple(specs))


ALL_REQUESTS = [ReadEsmeIdentity(), ReadFirmwareVersion(), ReadEventLog(1, 2)]


@pytest.mark.parametrize("read", ALL_REQUESTS, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize(
    "change",
    [
        {"obis": bytes.fromhex("0000600101FF")},
        {"class_id": 3},
        {"index": 3},
        {"kind": AccessKind.SET},
    ],
    ids=["obis", "class", "attribute", "kind"],
)
def test_wrong_object_is_refused(read: object, change: dict[str, object]) -> None:
    request = _with_spec(read.to_request(1), -1, **change)  # type: ignore[attr-defined]
    with pytest.raises(DecodeError) as caught:
        type(read).from_request(request)  # type: ignore[attr-defined]
    assert caught.value.field == "access-request-specification"


@pytest.mark.parametrize("read", ALL_REQUESTS, ids=lambda r: type(r).__name__)
def test_request_shape_errors(read: object) -> None:
    request = read.to_request(1)  # type: ignore[attr-defined]
    parse = type(read).from_request  # type: ignore[attr-defined]
    with pytest.raises(DecodeError, match="data\\[0\\]"):
        parse(dataclasses.replace(request, data=(Unsigned(1), *request.data[1:])))
    with pytest.raises(DecodeError) as caught:
        parse(dataclasses.replace(request, data=(*request.data, NullData())))
    assert caught.value.field == "data"
    with pytest.raises(DecodeError) as caught:
        parse(dataclasses.replace(request, specs=request.specs[:-1], data=request.data[:-1]))
    assert caught.value.field == "access-request-specification"
    with pytest.raises(DecodeError) as caught:
        parse(AccessResponse(1, (NullData(),), (AccessResult(AccessKind.GET, 0),)))
    assert caught.value.field == "apdu"


def _range(*items: Data) -> AccessRequest:
    return _with_spec(ReadEventLog(1, 2).to_request(1), 0, access_parameter=Structure(items))


RESTRICT = ReadEventLog.RESTRICTING_OBJECT
BAD_RESTRICT = Structure(
    (LongUnsigned(1), OctetString(bytes.fromhex("00005E2C65FF")), Integer(2), LongUnsigned(0))
)
FROM, TO, ALL = DoubleLongUnsigned(1), DoubleLongUnsigned(2), Array(())
RANGE_ERRORS = {
    "selector": (
        _with_spec(ReadEventLog(1, 2).to_request(1), 0, selector=2),
        "access-request-specification",
    ),
    "not-structure": (
        _with_spec(ReadEventLog(1, 2).to_request(1), 0, access_parameter=ALL),
        "range descriptor",
    ),
    "three-items": (_range(RESTRICT, FROM, TO), "range descriptor"),
    "restricting": (_range(BAD_RESTRICT, FROM, TO, ALL), "restricting object"),
    "from-type": (_range(RESTRICT, DoubleLong(1), TO, ALL), "from value"),
    "to-type": (_range(RESTRICT, FROM, OctetString(b"x"), ALL), "to value"),
    "selected-type": (_range(RESTRICT, FROM, TO, Structure(())), "selected values"),
    "selected-nonempty": (_range(RESTRICT, FROM, TO, Array((RESTRICT,))), "selected values"),
}


@pytest.mark.parametrize(("request_", "field"), RANGE_ERRORS.values(), ids=RANGE_ERRORS.keys())
def test_event_log_range_errors(request_: AccessRequest, field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        ReadEventLog.from_request(request_)
    assert caught.value.field == field


def _response(*pairs: tuple[Data, int], kind: int = AccessKind.GET) -> AccessResponse:
    return AccessResponse(
        1, tuple(d for d, _ in pairs), tuple(AccessResult(kind, r) for _, r in pairs)
    )


GOOD_IDENTITY = (
    (OctetString(b"B"), 0),
    (OctetString(b"ATGTypeX"), 0),
    (OctetString(b"CSW "), 0),
    (Boolean(False), 0),
)


@pytest.mark.parametrize(
    ("index", "item", "field"),
    [
        (0, (VisibleString(b"B"), 0), "variant"),
        (1, (NullData(), 0), "model"),
        (2, (Unsigned(1), 0), "manufacturer"),
        (3, (Unsigned(1), 0), "supply tamper state"),
        (3, (Boolean(True), 1), "data[3]"),
    ],
)
def test_identity_element_type_errors(index: int, item: tuple[Data, int], field: str) -> None:
    pairs = list(GOOD_IDENTITY)
    pairs[index] = item
    with pytest.raises(DecodeError) as caught:
        EsmeIdentity.from_response(_response(*pairs))
    assert caught.value.field == field


def test_response_shape_errors() -> None:
    assert EsmeIdentity.from_response(_response(*GOOD_IDENTITY)).supply_tamper is False
    with pytest.raises(DecodeError, match="4 result"):
        EsmeIdentity.from_response(_response(*GOOD_IDENTITY[:3]))
    with pytest.raises(DecodeError) as caught:
        FirmwareVersion.from_response(_response((OctetString(b"1234"), 0), kind=AccessKind.SET))
    assert caught.value.field == "results[0]"
    with pytest.raises(DecodeError) as caught:
        FirmwareVersion.from_response(ReadFirmwareVersion().to_request(1))  # type: ignore[arg-type]
    assert caught.value.field == "apdu"
    with pytest.raises(DecodeError, match="echo"):
        FirmwareVersion.from_response(
            dataclasses.replace(
                FirmwareVersion(b"1").to_response(1), specs=ReadFirmwareVersion.SPECS
            )
        )
    with pytest.raises(DecodeError) as caught:
        FirmwareVersion.from_response(_response((LongUnsigned(1), 0)))
    assert caught.value.field == "firmware version"


def test_event_log_element_errors() -> None:
    entry = EventLogEntry(1, 2, b"").to_axdr()
    plain = Array((entry,))
    with pytest.raises(DecodeError, match="compact-array") as caught:
        EventLog.from_response(_response((plain, 0)))
    assert caught.value.field == "event log"
    other = TypeDescription.structure(
        TypeDescription(Tag.DOUBLE_LONG_UNSIGNED), TypeDescription(Tag.LONG_UNSIGNED)
    )
    short = CompactArray(other, (Structure((DoubleLongUnsigned(1), LongUnsigned(2))),))
    with pytest.raises(DecodeError, match="compact-array"):
        EventLog.from_response(_response((short, 0)))
    assert other != EVENT_LOG_ENTRY_TYPE
    bad_entries = {
        "event log entry": Array(()),
        "event timestamp": Structure((DoubleLong(1), LongUnsigned(2), OctetString(b""))),
        "event code": Structure((DoubleLongUnsigned(1), Unsigned(2), OctetString(b""))),
        "event info": Structure((DoubleLongUnsigned(1), LongUnsigned(2), NullData())),
    }
    for field, value in bad_entries.items():
        with pytest.raises(DecodeError) as caught:
            EventLogEntry.from_axdr(value)
        assert caught.value.field == field
    with pytest.raises(DecodeError, match="3 elements"):
        EventLogEntry.from_axdr(Structure((DoubleLongUnsigned(1),)))


def test_values_that_cannot_be_sent() -> None:
    with pytest.raises(EncodeError, match="has a value"):
        EsmeIdentity(b"B", b"M", b"X", True, (0, 0, 1, 0))
    with pytest.raises(EncodeError, match="has no value"):
        FirmwareVersion(None)
    with pytest.raises(EncodeError, match="four results"):
        EsmeIdentity(b"B", b"M", b"X", True, (0, 0, 0))  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="bool"):
        EsmeIdentity(b"B", b"M", b"X", 1)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="not a Data-Access-Result"):
        EventLog(None, 256)
    with pytest.raises(EncodeError, match="long-unsigned"):
        EventLogEntry(0, 0x10000)
    with pytest.raises(EncodeError, match="double-long-unsigned"):
        ReadEventLog(-1, 0)
    with pytest.raises(EncodeError):
        ReadEventLog.between(dt.datetime(1999, 12, 31, tzinfo=UTC), dt.datetime.now(UTC))
    entry = EventLogEntry.at(dt.datetime(2015, 1, 1, tzinfo=UTC), 0x8F01)
    assert entry.timestamp == RTDS_START + 86400 and entry.time.year == 2015
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.event_code = 1  # type: ignore[misc]


def test_a_date_time_the_typed_value_would_drop_is_refused() -> None:
    """GBCS APDUs carry no date-time; a typed read has no place for one, so taking it lost it."""
    stamp = CosemDateTime(2015, 1, 1, 4, 0, 0, 0, 0, 0, 0)
    cases = [
        (ReadEsmeIdentity.from_request, ReadEsmeIdentity().to_request(1)),
        (ReadEventLog.from_request, ReadEventLog(0, 10).to_request(1)),
        (FirmwareVersion.from_response, FirmwareVersion(b"\x01").to_response(1)),
        (EventLog.from_response, EventLog(()).to_response(1)),
    ]
    for parse, apdu in cases:
        parse(apdu)
        with pytest.raises(DecodeError, match="no date-time"):
            parse(dataclasses.replace(apdu, date_time=stamp))
