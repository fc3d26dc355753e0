"""CS11 Clear ZigBee Device Event Log (gbcs.events): the RTDS bytes, round trips, errors."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs import gbz
from gbcs.errors import DecodeError, EncodeError
from gbcs.events import (
    CLEAR_EVENT_LOG,
    EVENTS_CLUSTER,
    ClearEventLog,
    EventLogsCleared,
    LogId,
)
from gbcs.frame import decode
from gbcs.gbz import CONTROL_LAST, EncryptedFrame, GbzComponent, GbzPayload, ZclFrame
from gbcs.rtds import RtdsVector
from tests.gbcs.strategies import assert_disable_default_response_round_trips


def _rtds(corpus: list[RtdsVector], stem: str) -> bytes:
    (vector,) = [v for v in corpus if v.name == f"CS11_3.3_{stem}_GBCS.HEX"]
    message = decode(vector.data)
    assert message.message_code == CLEAR_EVENT_LOG
    return message.payload


@pytest.mark.parametrize(
    ("stem", "typed"),
    [
        ("SUCCESS_COMMAND", ClearEventLog(LogId.GENERAL)),
        ("ERROR_COMMAND", ClearEventLog(LogId.GENERAL)),
        ("SUCCESS_RESPONSE", EventLogsCleared(0x08)),
        ("ERROR_RESPONSE", EventLogsCleared(0x00)),
    ],
)
def test_the_rtds_cs11_payloads_decode_and_reencode(
    corpus: list[RtdsVector], stem: str, typed: ClearEventLog | EventLogsCleared
) -> None:
    payload = _rtds(corpus, stem)
    parsed = type(typed).from_payload(gbz.decode(payload, alert=False))
    assert parsed == typed
    assert parsed.to_payload().encode() == payload


def test_the_cleared_bitmap_names_the_logs() -> None:
    assert EventLogsCleared(0x08).logs == (LogId.GENERAL,)
    assert EventLogsCleared.of((LogId.GENERAL, LogId.TAMPER, LogId.GENERAL)).cleared == 0x0A
    assert EventLogsCleared(0).logs == ()


@given(st.sampled_from(list(LogId)), st.integers(0, 255))
def test_command_round_trips(log_id: LogId, sequence: int) -> None:
    command = ClearEventLog(log_id, sequence)
    data = command.to_payload().encode()
    assert ClearEventLog.from_payload(gbz.decode(data, alert=False)) == command
    assert ClearEventLog.from_payload(gbz.decode(data, alert=False)).to_payload().encode() == data


@given(st.integers(0, 255), st.integers(0, 255))
def test_response_round_trips(cleared: int, sequence: int) -> None:
    response = EventLogsCleared(cleared, sequence)
    data = response.to_payload().encode()
    assert EventLogsCleared.from_payload(gbz.decode(data, alert=False)) == response


def _payload(*components: GbzComponent) -> GbzPayload:
    return GbzPayload.build(list(components))


def _plain(
    fc: int = 0x01, command: int = 0x01, body: bytes = b"\x03", cluster: int = EVENTS_CLUSTER
) -> GbzComponent:
    return GbzComponent.build(cluster, ZclFrame(fc, 0, command, body))


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (_payload(_plain(), _plain()), "one component, found 2"),
        (_payload(_plain(cluster=0x0702)), "cluster 0x0709, not 0x0702"),
        (_payload(_plain(fc=0x00)), "frame control 0x00, not 0x01"),
        (_payload(_plain(fc=0x09)), "frame control 0x09, not 0x01"),
        (_payload(_plain(fc=0x05)), "frame control"),  # manufacturer-specific
        (_payload(_plain(command=0x00)), "command 0x01, not 0x00"),
        (_payload(_plain(body=b"")), "one byte, found 0"),
        (_payload(_plain(body=b"\x03\x00")), "one byte, found 2"),
        (_payload(_plain(body=b"\x08")), "LogID 8 is not one of 0-7"),
        # Future-dated, or a reserved control bit: refused, not run now with them dropped.
        (
            _payload(GbzComponent.build(EVENTS_CLUSTER, ZclFrame(1, 0, 1, b"\x03"), 946771200)),
            "not taken future-dated",
        ),
        (
            GbzPayload((replace(_plain(), control=CONTROL_LAST | 0x04),), None, None),
            "component control 0x05, not 0x01",
        ),
        (
            _payload(
                GbzComponent.build(
                    EVENTS_CLUSTER,
                    EncryptedFrame(0x01, 0, 0x01, b"\x31" + bytes(4) + b"\x03" + bytes(12)),
                )
            ),
            "must be sent in clear, not encrypted",
        ),
    ],
)
def test_a_malformed_command_is_refused_naming_the_field(payload: GbzPayload, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        ClearEventLog.from_payload(payload)


def test_a_command_is_not_a_response() -> None:
    with pytest.raises(DecodeError, match="frame control 0x01, not 0x09"):
        EventLogsCleared.from_payload(ClearEventLog(3).to_payload())
    with pytest.raises(DecodeError, match="frame control 0x09, not 0x01"):
        ClearEventLog.from_payload(EventLogsCleared(8).to_payload())


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: ClearEventLog(8), "LogID 8 is not one of 0-7"),
        (lambda: ClearEventLog(3, 256).to_payload(), "sequence number 256"),
        (lambda: EventLogsCleared(256), "bitmap 256 is not a byte"),
    ],
)
def test_values_that_do_not_fit_are_not_encoded(build: object, message: str) -> None:
    with pytest.raises(EncodeError, match=message):
        build()  # type: ignore[operator]


@pytest.mark.parametrize("value", [ClearEventLog(LogId.ALL, 7), EventLogsCleared(0x08, 7)])
def test_the_disable_default_response_bit_as_sent_round_trips(value: object) -> None:
    """As for the GSME's reads (audit 9, props M2): the bit as sent, not a fixed one."""
    assert_disable_default_response_round_trips(value)
