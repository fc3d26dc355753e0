"""GCS38 and CS10a (gbcs.gsme_reads): the RTDS bytes, round trips, selection, errors."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gbcs import gbz
from gbcs.errors import DecodeError, EncodeError
from gbcs.events import ClearEventLog, EventLogsCleared
from gbcs.frame import decode
from gbcs.gbz import GbzComponent, GbzPayload, ZclFrame
from gbcs.gsme_reads import (
    GsmeFirmwareVersion,
    ReadGsmeFirmwareVersion,
    ReadZigbeeEventLog,
    ZigbeeEventLog,
    ZigbeeEventLogEntry,
    read_attributes_answer,
)
from gbcs.rtds import RtdsVector
from tests.gbcs.strategies import assert_disable_default_response_round_trips, mutated

Typed = ReadGsmeFirmwareVersion | GsmeFirmwareVersion | ReadZigbeeEventLog | ZigbeeEventLog


def _rtds(corpus: list[RtdsVector], name: str) -> bytes:
    (vector,) = [v for v in corpus if v.name == f"{name}_GBCS.HEX"]
    return decode(vector.data).payload


def _gbz(data: bytes) -> GbzPayload:
    return gbz.decode(data, alert=False)


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("GCS38_11.2_SUCCESS_COMMAND", ReadGsmeFirmwareVersion()),
        ("GCS38_11.2_ERROR_COMMAND", ReadGsmeFirmwareVersion()),
        ("GCS38_11.2_SUCCESS_RESPONSE", GsmeFirmwareVersion(bytes.fromhex("0123ABCD"))),
        ("GCS38_11.2_ERROR_RESPONSE", GsmeFirmwareVersion(None, gbz.ZCL_HARDWARE_FAILURE)),
        (
            "CS10a_6.13_SUCCESS_COMMAND",
            ReadZigbeeEventLog(3, 0x1C35F900, 0x386E9500),
        ),
        (
            "CS10a_6.13_NOT_FOUND_COMMAND",
            ReadZigbeeEventLog(3, 0x388F8A80, 0x388FECF0),
        ),
    ],
)
def test_the_rtds_payloads_decode_and_reencode(
    corpus: list[RtdsVector], name: str, typed: Typed
) -> None:
    payload = _rtds(corpus, name)
    parsed = type(typed).from_payload(_gbz(payload))
    assert parsed == typed
    assert parsed.to_payload().encode() == payload


def test_the_rtds_event_log_response(corpus: list[RtdsVector]) -> None:
    payload = _rtds(corpus, "CS10a_6.13_SUCCESS_RESPONSE")
    log = ZigbeeEventLog.from_payload(_gbz(payload))
    assert log.matching == len(log.entries) == 32
    assert [e.time for e in log.entries] == sorted(e.time for e in log.entries)  # oldest first
    first, third = log.entries[0], log.entries[2]
    assert (first.log_id, first.event_id, first.when) == (
        3,
        0x8F1F,
        dt.datetime(2014, 12, 31, tzinfo=dt.UTC),
    )
    assert third.data == bytes.fromhex("009B")
    assert log.to_payload().encode() == payload
    # The command of the same vector asks for all of them.
    command = ReadZigbeeEventLog.from_payload(_gbz(_rtds(corpus, "CS10a_6.13_SUCCESS_COMMAND")))
    assert ZigbeeEventLog.answer(command, log.entries) == log


ENTRIES = (
    ZigbeeEventLogEntry(3, 0xF001, 100),
    ZigbeeEventLogEntry(3, 0xF004, 200),
    ZigbeeEventLogEntry(4, 0x8F1F, 250),
    ZigbeeEventLogEntry(3, 0xF002, 300, b"\x01\x02"),
    ZigbeeEventLogEntry(3, 0xF001, 400),
)


@pytest.mark.parametrize(
    ("query", "matching", "times"),
    [
        (ReadZigbeeEventLog(3, 0, 1000), 4, [100, 200, 300, 400]),
        (ReadZigbeeEventLog(0, 0, 1000), 5, [100, 200, 250, 300, 400]),  # every log
        (ReadZigbeeEventLog(4, 0, 1000), 1, [250]),
        (ReadZigbeeEventLog(3, 200, 300), 1, [200]),  # the start included, the end not
        (ReadZigbeeEventLog(3, 200, 301), 2, [200, 300]),
        (ReadZigbeeEventLog(3, 0, 1000, event_id=0xF001), 2, [100, 400]),
        (ReadZigbeeEventLog(3, 0, 1000, count=2), 4, [100, 200]),
        (ReadZigbeeEventLog(3, 0, 1000, count=2, offset=3), 4, [400]),
        (ReadZigbeeEventLog(3, 500, 600), 0, []),
    ],
)
def test_answer_selects_as_asked(query: ReadZigbeeEventLog, matching: int, times: list) -> None:
    answer = ZigbeeEventLog.answer(query, ENTRIES)
    assert answer.matching == matching
    assert [e.time for e in answer.entries] == times


@given(
    st.builds(
        ReadZigbeeEventLog,
        st.integers(0, 15),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
        st.integers(0, 0xFFFF),
        st.integers(0, 15),
        st.integers(0, 255),
    )
)
def test_command_round_trips(command: ReadZigbeeEventLog) -> None:
    data = command.to_payload().encode()
    parsed = ReadZigbeeEventLog.from_payload(_gbz(data))
    assert parsed == command
    assert parsed.to_payload().encode() == data


_entry = st.builds(
    ZigbeeEventLogEntry,
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
    st.integers(0, 2**32 - 1),
    st.binary(max_size=20),
)


@given(st.lists(_entry, max_size=12), st.integers(0, 40), st.integers(0, 255), st.integers(0, 255))
def test_response_round_trips(
    entries: list[ZigbeeEventLogEntry], extra: int, sequence: int, control: int
) -> None:
    log = ZigbeeEventLog(len(entries) + extra, tuple(entries), sequence, control)
    data = log.to_payload().encode()
    parsed = ZigbeeEventLog.from_payload(_gbz(data))
    assert parsed == log
    assert parsed.to_payload().encode() == data


@given(st.one_of(st.none(), st.binary(max_size=254)), st.integers(1, 255), st.integers(0, 255))
def test_firmware_response_round_trips(version: bytes | None, status: int, sequence: int) -> None:
    answer = GsmeFirmwareVersion(version, 0 if version is not None else status, sequence)
    data = answer.to_payload().encode()
    parsed = GsmeFirmwareVersion.from_payload(_gbz(data))
    assert parsed == answer
    assert parsed.to_payload().encode() == data


def _one(cluster: int, frame: ZclFrame) -> GbzPayload:
    return GbzPayload.build([GbzComponent.build(cluster, frame)])


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        (_one(0x0702, ZclFrame(0x00, 0, 0x00, b"\x07\x02")), "attribute", "0x0206 alone"),
        (_one(0x0702, ZclFrame(0x00, 0, 0x00, b"\x06\x02\x00\x00")), "attribute", "0x0206"),
        (_one(0x0709, ZclFrame(0x00, 0, 0x00, b"\x06\x02")), "cluster_id", "cluster 0x0702"),
        (_one(0x0702, ZclFrame(0x00, 0, 0x02, b"\x06\x02")), "command_id", "command 0x00"),
        (_one(0x0702, ZclFrame(0x01, 0, 0x00, b"\x06\x02")), "frame_control", "0x01"),
        (GbzPayload.build([]), "components", "found 0"),
    ],
)
def test_a_gcs38_command_of_another_shape_is_refused(
    payload: GbzPayload, field: str, reason: str
) -> None:
    with pytest.raises(DecodeError, match=reason) as caught:
        ReadGsmeFirmwareVersion.from_payload(payload)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x06\x02\x00\x20\x01", "octet string"),  # a uint8, not the version
        (b"\x07\x02\x00\x41\x01\x00", "attribute 0x0207"),
        (b"\x06\x02\x00\x41\x01\x00\x06\x02\x00\x41\x01\x00", "one attribute record"),
    ],
)
def test_a_gcs38_response_of_another_shape_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        GsmeFirmwareVersion.from_payload(_one(0x0702, ZclFrame(0x08, 0, 0x01, body)))


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x20\x00\x00\x01\x00\x03\x01", "truncated event header"),
        (b"\x01\x00\x00\x01\x00\x03\x01\xf0\x00\x00\x00\x00\x05\x01", "5 bytes truncated"),
        (b"\x20\x00\x01\x02\x00", "command 0 of 1"),
        (b"\x20\x00\x00", "5 bytes"),
        (b"\x00\x00\x00\x01\x00\x03\x01\xf0\x00\x00\x00\x00\x00", "1 events, but 0"),
    ],
)
def test_a_malformed_event_log_response_is_refused(body: bytes, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason):
        ZigbeeEventLog.from_payload(_one(0x0709, ZclFrame(0x19, 0, 0x01, body)))


def test_a_get_event_log_of_the_wrong_length_is_refused() -> None:
    frame = ZclFrame(0x01, 0, 0x00, bytes(13))
    with pytest.raises(DecodeError, match="carries 14 bytes, found 13"):
        ReadZigbeeEventLog.from_payload(_one(0x0709, frame))


def test_values_out_of_range_are_refused_when_built() -> None:
    with pytest.raises(EncodeError, match="4 bits"):
        ReadZigbeeEventLog(16, 0, 0)
    with pytest.raises(EncodeError, match="number of events 256"):
        ReadZigbeeEventLog(3, 0, 0, count=256)
    with pytest.raises(EncodeError, match="version exactly when its status is 0"):
        GsmeFirmwareVersion(None, 0)
    with pytest.raises(EncodeError, match="254 bytes"):
        GsmeFirmwareVersion(bytes(255))
    with pytest.raises(EncodeError, match="cannot carry 2 entries"):
        ZigbeeEventLog(1, ENTRIES[:2])
    with pytest.raises(EncodeError, match="254 bytes"):
        ZigbeeEventLogEntry(3, 1, 0, bytes(255))


@given(st.lists(st.integers(0, 50), max_size=20), st.integers(1, 20))
def test_consecutive_windows_return_each_event_once(times: list[int], width: int) -> None:
    """ZSE: an event at End Time is not returned, so windows [a, b), [b, c) never overlap."""
    log = tuple(ZigbeeEventLogEntry(3, 0xF001, t) for t in sorted(times))
    seen = []
    for start in range(0, 60, width):
        query = ReadZigbeeEventLog(3, start, start + width)
        seen += [e.time for e in ZigbeeEventLog.answer(query, log).entries]
    assert seen == sorted(times)


@given(st.binary(max_size=254), st.integers(0, 255))
def test_the_read_attributes_answer_to_gcs38_is_its_response(version: bytes, seq: int) -> None:
    command = ReadGsmeFirmwareVersion(seq).to_payload()
    answer = read_attributes_answer(command, {0x0206: version})
    assert answer.encode() == GsmeFirmwareVersion(version, 0, seq).to_payload().encode()


def test_other_attributes_get_their_own_unsupported_record() -> None:
    """ZCL 2.5.2: a server answers each attribute asked for; one it lacks is status 0x86."""
    asked = _one(0x0702, ZclFrame(0x00, 9, 0x00, bytes.fromhex("00000602")))
    (component,) = read_attributes_answer(asked, {0x0206: b"\x01\x02"}).components
    assert isinstance(component.frame, ZclFrame)
    view = gbz.zcl_view(0x0702, component.frame)
    assert isinstance(view, gbz.ReadAttributesResponse)
    assert [(r.attribute_id, r.status) for r in view.records] == [(0x0000, 0x86), (0x0206, 0)]
    assert view.records[1].value is not None and view.records[1].value.value == b"\x01\x02"
    assert component.frame.sequence == 9


@pytest.mark.parametrize("asked", [b"", b"\x06"])
def test_a_read_with_no_whole_attribute_id_is_malformed(asked: bytes) -> None:
    with pytest.raises(DecodeError, match="attribute ids are 2 bytes each"):
        read_attributes_answer(_one(0x0702, ZclFrame(0x00, 0, 0x00, asked)), {})


@pytest.mark.parametrize(
    "value",
    [
        ReadGsmeFirmwareVersion(7),
        GsmeFirmwareVersion(b"\x01\x02", 0, 7),
        GsmeFirmwareVersion(None, gbz.ZCL_UNSUPPORTED_ATTRIBUTE, 7),
        ReadZigbeeEventLog(3, 100, 200, sequence=7),
        ZigbeeEventLog(1, (ZigbeeEventLogEntry(3, 0x1234, 150, b"\xaa"),), 7),
    ],
)
def test_the_disable_default_response_bit_as_sent_round_trips(value: object) -> None:
    """Every typed GBZ value took either value of the bit and wrote back one fixed value:
    the sender's bit was lost and the bytes changed (audit 9, props M2)."""
    assert_disable_default_response_round_trips(value)


_u8 = st.integers(0, 255)
_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 2**32 - 1)
_GBZ_TYPED: list[st.SearchStrategy[Any]] = [
    st.builds(ClearEventLog, st.integers(0, 7), _u8, st.booleans()),
    st.builds(EventLogsCleared, _u8, _u8, st.booleans()),
    st.builds(ReadGsmeFirmwareVersion, _u8, st.booleans()),
    st.builds(GsmeFirmwareVersion, st.binary(max_size=8), st.just(0), _u8, st.booleans()),
    st.builds(
        ReadZigbeeEventLog,
        st.integers(0, 15),
        _u32,
        _u32,
        _u16,
        _u8,
        _u16,
        st.integers(0, 15),
        _u8,
        st.booleans(),
    ),
    st.lists(
        st.builds(ZigbeeEventLogEntry, _u8, _u16, _u32, st.binary(max_size=4)), max_size=3
    ).flatmap(
        lambda es: st.builds(
            ZigbeeEventLog, st.integers(len(es), 0xFFFF), st.just(tuple(es)), _u8, _u8
        )
    ),
]


@pytest.mark.parametrize("values", _GBZ_TYPED)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_gbz_typed_value_accepts_only_what_it_writes_back(
    values: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    """bytes -> typed -> bytes for the GSME's reads and CS11: a mutated payload the typed
    parser takes is written back as it came (audit 9, props T6: the parsers took either
    disable-default-response bit and wrote back one)."""
    value = data.draw(values)
    raw = mutated(data, gbz.encode(value.to_payload()))
    try:
        typed = type(value).from_payload(gbz.decode(raw, alert=False))
    except DecodeError:
        return
    event("accepted")
    assert gbz.encode(typed.to_payload()) == raw
