from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gbcs import asn1
from gbcs.asn1 import Asn1Payload
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import decode_message
from gbcs.joins import (
    DisconnectFromHan,
    DisconnectResult,
    GpfDeviceLogBackup,
    GpfDeviceLogRestore,
    GpfRestoreOutcome,
    HanDevice,
    JoinDetails,
    JoinDevice,
    JoinMethod,
    UnjoinDevice,
    int_response,
    parse_int_response,
)
from gbcs.rtds import RtdsVector

ESME = bytes.fromhex("00DB1234567890A0")


def _payload(corpus: list[RtdsVector], name: str) -> tuple[Asn1Payload, bytes]:
    vector = next(v for v in corpus if v.name.startswith(name))
    message, _ = decode_message(vector.data)
    return asn1.decode(message.message_code, message.cra_flag, message.payload), message.payload


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("CS03A1_8.7.1_SUCCESS_COMMAND", JoinDevice),
        ("CS03CCritical_8.7.1_SUCCESS_COMMAND", JoinDevice),
        ("CS04B_8.8.2_SUCCESS_COMMAND", UnjoinDevice),
        ("CS07_8.9_SUCCESS_RESPONSE", JoinDetails),
        ("CS07_8.9_ERROR_RESPONSE", JoinDetails),
        ("GCS59_8.12.2_SUCCESS_COMMAND", GpfDeviceLogRestore),
        ("GCS59_8.12.2_SUCCESS_RESPONSE", GpfRestoreOutcome),
        ("GCS62_NA_8071_ALERT", GpfDeviceLogBackup),
    ],
)
def test_typed_roundtrip_on_reference(corpus: list[RtdsVector], name: str, kind: type) -> None:
    payload, raw = _payload(corpus, name)
    typed = kind.from_payload(payload)
    assert asn1.encode(typed.to_payload()) == raw


def test_reference_values(corpus: list[RtdsVector]) -> None:
    join = JoinDevice.from_payload(_payload(corpus, "CS03A1_8.7.1_SUCCESS_COMMAND")[0])
    assert join == JoinDevice(JoinMethod.METHOD_A_INITIATOR, bytes.fromhex("00DB12345678909A"), 4)
    method_c = JoinDevice.from_payload(_payload(corpus, "CS03CCritical_8.7.1_SUCCESS_COMMAND")[0])
    assert method_c.method == JoinMethod.METHOD_C and method_c.other_device_ka_certificate
    details = JoinDetails.from_payload(_payload(corpus, "CS07_8.9_SUCCESS_RESPONSE")[0])
    assert [d.type_name for d in details.devices] == ["GPF", "GPF", "PPMID"]
    assert JoinDetails.from_payload(_payload(corpus, "CS07_8.9_ERROR_RESPONSE")[0]) == JoinDetails(
        1, None
    )
    backup = GpfDeviceLogBackup.from_payload(_payload(corpus, "GCS62_NA_8071_ALERT")[0])
    assert backup.alert_code == 0x8071 and len(backup.devices) == 6
    assert backup.backup_time == dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    response, _ = _payload(corpus, "CS03B_8.7.2_ERROR_RESPONSE")
    assert parse_int_response(response, "JoinDeviceResponse") == 2


def test_disconnect_payloads() -> None:
    command = DisconnectFromHan(ESME).to_payload()
    wire = asn1.encode(command)
    assert wire.hex().upper() == "300A0408" + ESME.hex().upper()
    assert DisconnectFromHan.from_payload(asn1.decode_type("DisconnectFromHanCommand", wire)) == (
        DisconnectFromHan(ESME)
    )
    response = int_response("DisconnectFromHanResponse", DisconnectResult.NOT_JOINED)
    assert asn1.encode(response) == b"\x02\x01\x01"
    decoded = asn1.decode_type("DisconnectFromHanResponse", b"\x02\x01\x01")
    assert parse_int_response(decoded, "DisconnectFromHanResponse") == DisconnectResult.NOT_JOINED


def test_wrong_type_and_bad_ids() -> None:
    with pytest.raises(DecodeError, match="expected JoinDeviceCommand"):
        JoinDevice.from_payload(UnjoinDevice(ESME).to_payload())
    with pytest.raises(EncodeError):
        UnjoinDevice(b"short").to_payload()
    with pytest.raises(EncodeError):
        HanDevice(b"\x00" * 7, 1).to_value()


def test_join_with_a_non_der_certificate_is_an_encode_error() -> None:
    """The caller's bytes are a value to encode: not DER is an EncodeError, not a DecodeError."""
    with pytest.raises(EncodeError, match="not a DER certificate"):
        JoinDevice(JoinMethod.METHOD_C, ESME, 1, b"\x95\xec\x87").to_payload()


_DEVICES = tuple(HanDevice(ESME[:7] + bytes((i,)), 1) for i in range(11))


@pytest.mark.parametrize(
    "typed",
    [
        JoinDetails(0, _DEVICES),
        GpfDeviceLogRestore(_DEVICES),
        GpfRestoreOutcome(tuple((d, 0) for d in _DEVICES)),
        GpfDeviceLogBackup(dt.datetime(2015, 1, 1, tzinfo=dt.UTC), _DEVICES),
    ],
)
def test_a_typed_value_keeps_the_length_forms_it_came_with(typed: object) -> None:
    """asn1.decode keeps a device's non-shortest `82 00 xx` lengths (README); these typed
    values dropped them, so a parsed CS07 response or GCS62 came back out in DER (audit 9,
    props L1)."""
    der = asn1.encode(typed.to_payload())  # type: ignore[attr-defined]
    assert der[1] == 0x81  # 128..255 bytes: DER's 81 xx
    loose = der[:1] + b"\x82\x00" + der[2:]
    payload = asn1.decode_type(typed.to_payload().type_name, loose)  # type: ignore[attr-defined]
    parsed = type(typed).from_payload(payload)  # type: ignore[attr-defined]
    assert parsed == typed  # the form is not part of the value
    assert asn1.encode(parsed.to_payload()) == loose


_ids8 = st.binary(min_size=8, max_size=8)
_han = st.builds(HanDevice, _ids8, st.integers(0, 6))
_hans = st.lists(_han, max_size=12).map(tuple)  # up to 12 makes the 81 xx / 82 00 xx sizes
_seconds = st.datetimes(
    dt.datetime(2000, 1, 1), dt.datetime(2099, 12, 31), timezones=st.just(dt.UTC)
).map(lambda t: t.replace(microsecond=0))
_joins_values = st.one_of(
    st.builds(JoinDetails, st.integers(0, 3), st.none() | _hans),
    st.builds(GpfDeviceLogRestore, _hans),
    st.builds(
        GpfRestoreOutcome, st.lists(st.tuples(_han, st.integers(0, 3)), max_size=8).map(tuple)
    ),
    st.builds(GpfDeviceLogBackup, _seconds, _hans, st.integers(0, 0xFFFF)),
    st.builds(JoinDevice, st.integers(0, 6), _ids8, st.integers(0, 6)),
    st.builds(UnjoinDevice, _ids8),
    st.builds(DisconnectFromHan, _ids8),
)


@settings(max_examples=200, deadline=None)
@given(_joins_values, st.booleans())
def test_joins_values_round_trip_both_ways(value: Any, widen: bool) -> None:
    """typed -> DER -> typed is the value, and bytes -> typed -> bytes the bytes, in DER
    or with the outer length widened to the 82 00 xx form devices send (audit 9, props T5)."""
    payload = value.to_payload()
    wire = asn1.encode(payload)
    if widen and wire[1] < 0x80:
        wire = wire[:1] + b"\x82\x00" + wire[1:]
    elif widen and wire[1] == 0x81:
        wire = wire[:1] + b"\x82\x00" + wire[2:]
    back = type(value).from_payload(asn1.decode_type(payload.type_name, wire))
    assert back == value
    assert asn1.encode(back.to_payload()) == wire
