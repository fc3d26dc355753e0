"""ASN.1 payload family (CRIB §5.2, §6.7-§6.9) and the kit's SECMP0013 disconnect types."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gbcs import asn1
from gbcs.asn1 import SECMP0013_DISCONNECT_DEFAULT_CODE, Asn1Payload
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import CraFlag, decode_message
from gbcs.rtds import RtdsVector
from tests.conftest import CORPUS, corpus_params

COMMAND, RESPONSE, ALERT = CraFlag.COMMAND, CraFlag.RESPONSE, CraFlag.ALERT


def h(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


def eui(text: str) -> bytes:
    return bytes.fromhex(text)


def is_asn1(payload: bytes) -> bool:
    """CRIB §5 dispatch: not GBZ (01 09) and not DLMS (D9/DA/0F)."""
    return not (payload[:2] == b"\x01\x09" or payload[:1] in (b"\xd9", b"\xda", b"\x0f"))


def asn1_params() -> list:
    params = []
    for param in corpus_params():
        (vector,) = param.values
        if vector is None or is_asn1(decode_message(vector.data)[0].payload):
            params.append(param)
    return params


@cache
def asn1_payloads() -> list[tuple[str, int, int, bytes]]:
    """(name, code, CRA, payload) of every distinct ASN.1 payload in the corpus."""
    seen: dict[tuple[int, int, bytes], str] = {}
    for vector in CORPUS:
        message = decode_message(vector.data)[0]
        if is_asn1(message.payload):
            key = (message.message_code, int(message.cra_flag), message.payload)
            seen.setdefault(key, vector.name)
    return [(name, code, cra, payload) for (code, cra, payload), name in seen.items()]


# The RTDS use case (file-name prefix) -> type stem; the kind gives the suffix.
STEMS = {
    "CS02a": "ProvideSecurityCredentialDetails",
    "CS02f": "ProvideSecurityCredentialDetails",  # RTDS CS02f = 0x011B (CRIB §5.2)
    "CS02b": "UpdateSecurityCredentials",
    "CS02g": "UpdateSecurityCredentials",
    "CS02c": "IssueSecurityCredentials",
    "CS02d": "UpdateDeviceCertificate",
    "CS02e": "ProvideDeviceCertificate",
    "CS03": "JoinDevice",
    "CS04": "UnjoinDevice",
    "CS06": "ActivateFirmware",
    "CS07": "ReadDeviceJoinDetails",
    "CS08": "ReadPpmidHcalcsFirmwareVersion",
    "CS09": "PpmidHcalcsFirmwareActivation",
    "CCS08": "FirmwareTransfer",
    "GCS28": "SetTime",
    "GCS59": "GpfDeviceLogRestore",
    "GCS62": "GpfDeviceLogBackup",
}
SUFFIX = {"PRECOMMAND": "Command", "COMMAND": "Command", "RESPONSE": "Response", "ALERT": "Alert"}


def expected_type(vector: RtdsVector) -> str:
    stem = max((p for p in STEMS if vector.name.startswith(p)), key=len)
    return STEMS[stem] + SUFFIX[vector.kind]


def assert_json_only(obj: Any) -> None:
    if isinstance(obj, dict):
        assert all(isinstance(k, str) for k in obj)
        for v in obj.values():
            assert_json_only(v)
    elif isinstance(obj, list):
        for v in obj:
            assert_json_only(v)
    else:
        assert obj is None or isinstance(obj, str | int | bool), type(obj)


# --------------------------------------------------------------------------
# Every ASN.1 reference payload
# --------------------------------------------------------------------------


@pytest.mark.parametrize("vector", asn1_params())
def test_reference_payload_decodes_and_roundtrips(vector: RtdsVector) -> None:
    message, parts = decode_message(vector.data)
    base = parts.payload_offset
    p = asn1.decode(message.message_code, message.cra_flag, message.payload, base)
    assert p.type_name == expected_type(vector)
    assert asn1.type_for(message.message_code, message.cra_flag) == p.type_name
    assert asn1.encode(p) == message.payload
    # Same value as asn1tools' own decoder gives (the fast decoders only add DER checks).
    assert p.value == asn1._codec().spec.decode(p.type_name, message.payload)
    obj = asn1.to_json(p)
    assert_json_only(obj)
    assert asn1.from_json(json.loads(json.dumps(obj))) == p
    # Non-shortest lengths (device-made CS02a/b/g responses) only pass when not strict.
    if p.length_forms:
        with pytest.raises(DecodeError, match="shortest form"):
            asn1.decode(message.message_code, message.cra_flag, message.payload, base, strict=True)
    else:
        assert (
            asn1.decode(message.message_code, message.cra_flag, message.payload, strict=True) == p
        )


def test_reference_quirks_are_the_known_ones() -> None:
    """18 device responses/alerts use 82 00 xx lengths; nothing else is off DER."""
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    loose = {}
    for name, code, cra, payload in asn1_payloads():
        p = asn1.decode(code, cra, payload)
        if p.length_forms:
            loose[name] = p.length_forms
            assert cra in (RESPONSE, ALERT)
            assert all(octets == 2 for _, octets in p.length_forms)
    assert len(loose) == 18
    assert loose["CS02aMAC_6.24.1_SUCCESS_RESPONSE_GBCS.HEX"] == ((0, 2),)


# --------------------------------------------------------------------------
# Exact values of the CRIB examples (no corpus needed)
# --------------------------------------------------------------------------


def test_crib_cs07_response_three_device_log_entries() -> None:
    payload = h(
        "30 32 02 01 00 30 2D"
        " 30 0D 04 08 01 02 03 04 05 06 07 08 02 01 03"
        " 30 0D 04 08 00 DB 12 34 56 78 90 99 02 01 03"
        " 30 0D 04 08 00 DB 12 34 56 78 90 97 02 01 05"
    )
    p = asn1.decode(0x0013, RESPONSE, payload)
    assert p == Asn1Payload(
        "ReadDeviceJoinDetailsResponse",
        {
            "responseCode": 0,
            "deviceLogEntries": [
                {"deviceId": eui("0102030405060708"), "deviceType": 3},
                {"deviceId": eui("00DB123456789099"), "deviceType": 3},
                {"deviceId": eui("00DB123456789097"), "deviceType": 5},
            ],
        },
    )
    assert [e["deviceType"] for e in p.value["deviceLogEntries"]] == [3, 3, 5]
    assert asn1.decode(0x0013, RESPONSE, h("30 03 02 01 01")).value == {"responseCode": 1}
    assert asn1.decode(0x0013, COMMAND, h("05 00")) == Asn1Payload(
        "ReadDeviceJoinDetailsCommand", None
    )


def test_crib_gcs59_restore_command_and_response() -> None:
    command = h(
        "30 20 30 1E 30 0D 04 08 00 11 22 33 44 55 66 77 02 01 05"
        " 30 0D 04 08 88 99 AA BB CC DD EE FF 02 01 06"
    )
    entries = [
        {"deviceId": eui("0011223344556677"), "deviceType": 5},
        {"deviceId": eui("8899AABBCCDDEEFF"), "deviceType": 6},
    ]
    p = asn1.decode(0x008C, COMMAND, command)
    assert p.value == {"deviceLogEntries": entries}
    assert asn1.encode(p) == command
    response = h(
        "30 2A 30 28 30 12 30 0D 04 08 00 11 22 33 44 55 66 77 02 01 05 02 01 00"
        " 30 12 30 0D 04 08 88 99 AA BB CC DD EE FF 02 01 06 02 01 00"
    )
    r = asn1.decode(0x008C, RESPONSE, response)
    assert r.value == {
        "restoreOutcomes": [
            {"deviceLogEntry": entries[0], "joinResponseCode": 0},
            {"deviceLogEntry": entries[1], "joinResponseCode": 0},
        ]
    }


def test_crib_gcs62_backup_alert() -> None:
    payload = h(
        "30 72 02 03 00 80 71 18 0F" + b"20150101000000Z".hex() + "30 5A"
        " 300D 0408 0102030405060708 020106  300D 0408 00DB123456789099 020105"
        " 300D 0408 00DB123456789097 020105  300D 0408 00DB123456789096 020105"
        " 300D 0408 00DB123456789098 020105  300D 0408 00DB12345678909B 020106"
    )
    p = asn1.decode(0x00B2, ALERT, payload, base=100)
    assert p.type_name == "GpfDeviceLogBackupAlert"
    assert p.value["alertCode"] == 0x8071
    assert p.value["backupDateTime"] == dt.datetime(2015, 1, 1)
    entries = [(e["deviceId"].hex().upper(), e["deviceType"]) for e in p.value["deviceLogEntries"]]
    assert entries == [
        ("0102030405060708", 6), ("00DB123456789099", 5), ("00DB123456789097", 5),
        ("00DB123456789096", 5), ("00DB123456789098", 5), ("00DB12345678909B", 6),
    ]  # fmt: skip
    assert asn1.to_json(p)["value"]["backupDateTime"] == "20150101000000Z"
    assert asn1.encode(p) == payload


def test_crib_cs03_a1_join_command() -> None:
    payload = h("30 10 02 01 00 04 08 00 DB 12 34 56 78 90 9A 02 01 04")
    p = asn1.decode(0x000D, COMMAND, payload)
    assert p.value == {
        "joinMethodAndRole": 0,
        "otherDeviceEntityId": eui("00DB12345678909A"),
        "otherDeviceType": 4,
    }
    assert asn1.decode(0x000D, RESPONSE, h("02 01 00")).value == 0


def test_cs02a_command_and_trust_anchor_cell_default() -> None:
    """cellUsage DEFAULT management: absent on the wire, present in the value."""
    payload = h("30 11 30 07 02 01 04 03 02 03 08 30 06 02 01 02 02 01 08")
    p = asn1.decode(0x011B, COMMAND, payload)
    assert p.value == {
        "authorisingRemotePartyTACellIdentifier": {
            "remotePartyRole": 4,
            "keyUsage": (b"\x08", 5),
            "cellUsage": 0,
        },
        "remotePartyRolesCredentialsRequired": [2, 8],
    }
    assert asn1.to_json(p)["value"]["authorisingRemotePartyTACellIdentifier"]["keyUsage"] == {
        "value": "08",
        "length": 5,
    }
    assert asn1.encode(p) == payload


def test_untagged_choices_pick_the_alternative_by_tag() -> None:
    assert asn1.decode(0x000A, RESPONSE, h("02 01 03")).value == ("responseCode", 3)
    assert asn1.decode(0x000C, RESPONSE, h("02 01 02")).value == ("responseCode", 2)
    assert asn1.decode(0x0012, RESPONSE, h("05 00")).value == ("commandAccepted", None)
    outcome = asn1.decode(0x0012, RESPONSE, h("30 09 02 01 00 04 04 01 23 AB CE"))
    assert outcome.value == (
        "executionOutcome",
        {"responseCode": 0, "firmwareVersion": h("0123ABCE")},
    )
    assert asn1.to_json(outcome)["value"] == {
        "executionOutcome": {"responseCode": 0, "firmwareVersion": "0123ABCE"}
    }


def test_certificate_keeps_its_signed_bytes() -> None:
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    from cryptography import x509

    cert = next(pl for name, *_, pl in asn1_payloads() if name.startswith("CS02d"))
    p = asn1.decode_type("Certificate", cert)
    assert p.value["signatureAlgorithm"] == {"algorithm": "1.2.840.10045.4.3.2"}
    assert cert.find(p.value["tbsCertificate"]) == 4
    loaded = x509.load_der_x509_certificate(asn1.encode(p))
    assert loaded.tbs_certificate_bytes == p.value["tbsCertificate"]


@pytest.mark.parametrize(
    ("tbs", "reason"),
    [
        ("", "needs one TLV, not nothing"),
        ("00", "not one TLV: truncated: length missing at byte 1"),
        ("3005", "not one TLV: truncated: declares 5 content bytes, 0 available at byte 0"),
        ("30000500", "not one TLV: 2 bytes after the first TLV"),
        ("3080", "indefinite length"),
    ],
)
def test_open_type_must_be_one_tlv(tbs: str, reason: str) -> None:
    """An open type (here a certificate's signed part) goes out verbatim: anything but one
    whole TLV encoded cleanly into a message the decoder refused (codec audit F6)."""
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    cert = next(pl for name, *_, pl in asn1_payloads() if name.startswith("CS02d"))
    obj = asn1.to_json(asn1.decode_type("Certificate", cert))
    assert asn1.encode(asn1.from_json(obj)) == cert
    obj["value"]["tbsCertificate"] = tbs
    with pytest.raises(EncodeError, match=f"Certificate.tbsCertificate: .*{re.escape(reason)}"):
        asn1.from_json(obj)
    obj["value"]["tbsCertificate"] = "3000"  # an empty SEQUENCE is one TLV: it encodes
    encoded = asn1.encode(asn1.from_json(obj))
    assert asn1.decode_type("Certificate", encoded).value["tbsCertificate"] == b"\x30\x00"


# --------------------------------------------------------------------------
# SECMP0013 disconnect (kit-defined)
# --------------------------------------------------------------------------


def test_disconnect_command_and_response_roundtrip() -> None:
    command = Asn1Payload(asn1.DISCONNECT_TYPES[COMMAND], {"deviceId": eui("00DB1234567890A0")})
    assert command.type_name == "DisconnectFromHanCommand"
    wire = asn1.encode(command)
    assert wire == h("30 0A 04 08 00 DB 12 34 56 78 90 A0")
    assert asn1.decode_type("DisconnectFromHanCommand", wire) == command
    assert asn1.from_json(asn1.to_json(command)) == command
    for result in range(4):  # success, notJoined, otherFailure, wrongDeviceId
        response = Asn1Payload(asn1.DISCONNECT_TYPES[RESPONSE], result)
        assert asn1.encode(response) == bytes((2, 1, result))
        assert asn1.decode_type("DisconnectFromHanResponse", bytes((2, 1, result))) == response
        assert asn1.from_json(asn1.to_json(response)) == response
    with pytest.raises(EncodeError):
        asn1.encode(Asn1Payload("DisconnectFromHanCommand", {"deviceId": b"\x00" * 7}))
    with pytest.raises(DecodeError, match="7 bytes, expected 8"):
        asn1.decode_type("DisconnectFromHanCommand", h("30 09 04 07 00 DB 12 34 56 78 90"))


def test_disconnect_code_is_configurable_and_outside_gbcs() -> None:
    code = SECMP0013_DISCONNECT_DEFAULT_CODE
    assert code == 0x7F00
    assert max(c for c, _ in asn1.mapping()) <= 0x012B and code not in (0x1000, 0x1001)
    # Owned by the catalogue: not mapped until a deployment registers it.
    assert asn1.type_for(code, COMMAND) is None
    with pytest.raises(DecodeError, match=r"no ASN\.1 payload type"):
        asn1.decode(code, COMMAND, h("30 0A 04 08 00 DB 12 34 56 78 90 A0"))
    before = asn1.mapping()
    try:
        for cra, type_name in asn1.DISCONNECT_TYPES.items():
            asn1.register(code, cra, type_name)
        command = asn1.build(code, COMMAND, {"deviceId": eui("00DB1234567890A1")})
        assert asn1.decode(code, COMMAND, asn1.encode(command)) == command
        assert asn1.build(code, RESPONSE, 1).type_name == "DisconnectFromHanResponse"
    finally:
        asn1._MAPPING.clear()
        asn1._MAPPING.update(before)


def test_register_moves_or_adds_codes() -> None:
    before = asn1.mapping()
    try:
        asn1.register(0x7F10, COMMAND, "DisconnectFromHanCommand")
        asn1.register(0x7F10, RESPONSE, "DisconnectFromHanResponse")
        assert asn1.type_for(0x7F10, COMMAND) == "DisconnectFromHanCommand"
        assert asn1.decode(0x7F10, RESPONSE, h("02 01 01")).value == 1
        asn1.register(0x7F10, COMMAND, "DisconnectFromHanCommand")  # same again: fine
        with pytest.raises(ValueError, match="already maps"):
            asn1.register(0x7F10, COMMAND, "UnjoinDeviceCommand")
        asn1.register(0x7F10, COMMAND, "UnjoinDeviceCommand", replace=True)
        assert asn1.type_for(0x7F10, COMMAND) == "UnjoinDeviceCommand"
        with pytest.raises(ValueError, match="not a type"):
            asn1.register(0x7F11, COMMAND, "NoSuchType")
        with pytest.raises(ValueError, match="CRA flag"):
            asn1.register(0x7F11, 4, "DisconnectFromHanCommand")
        with pytest.raises(ValueError, match="uint16"):
            asn1.register(0x10000, COMMAND, "DisconnectFromHanCommand")
    finally:
        asn1._MAPPING.clear()
        asn1._MAPPING.update(before)


# --------------------------------------------------------------------------
# Mapping table
# --------------------------------------------------------------------------


def test_mapping_covers_every_crib_code_with_known_types() -> None:
    m = asn1.mapping()
    codes = {c for c, _ in m}
    crib = "0008 000A 000B 000C 000D 000E 000F 0010 0012 0013 007F 008C 00AB 00AF 00B2 00CA"
    crib += " 00CB 0100 0101 0102 0103 0104 0105 0106 0107 0108 0109 011B 0124 0125 0126 0128"
    crib += " 0129 012B"  # CRIB §5.2 (0x0129 CS08 and 0x0100/0x0101 are not in this corpus)
    assert codes >= {int(c, 16) for c in crib.split()}
    assert set(m.values()) <= asn1.type_names()
    assert set(asn1.type_names()) == set(asn1._codec().decoders)
    assert m[0x011B, COMMAND] == m[0x0008, COMMAND]
    assert m[0x00CB, ALERT] == m[0x0124, ALERT] == "UpdateSecurityCredentialsAlert"
    assert asn1.type_for(0x0001, COMMAND) is None  # CCS01 is DLMS


# --------------------------------------------------------------------------
# Errors: unknown codes, truncation, trailing bytes, non-DER, fuzz
# --------------------------------------------------------------------------


def test_unknown_code_names_the_code() -> None:
    with pytest.raises(DecodeError) as e:
        asn1.decode(0x0099, COMMAND, h("05 00"), base=40)
    assert e.value.layer == "asn1" and e.value.offset == 40 and "0x0099" in e.value.reason
    with pytest.raises(EncodeError, match="0x0099"):
        asn1.build(0x0099, RESPONSE, 0)
    with pytest.raises(EncodeError, match=r"unknown ASN\.1 type"):
        asn1.encode(Asn1Payload("NoSuchType", None))
    with pytest.raises(DecodeError, match=r"unknown ASN\.1 type"):
        asn1.decode_type("NoSuchType", h("05 00"))


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(DecodeError) as e:
        asn1.decode(0x0013, RESPONSE, h("30 03 02 01 01 00"), base=10)
    assert e.value.offset == 15 and "trailing" in e.value.reason
    with pytest.raises(DecodeError, match="after the last member"):  # inside the SEQUENCE
        asn1.decode(0x0013, RESPONSE, h("30 06 02 01 01 02 01 00"))


def test_every_truncation_of_every_reference_payload_fails_cleanly() -> None:
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    for name, code, cra, payload in asn1_payloads():
        for cut in range(len(payload)):
            with pytest.raises(DecodeError) as e:
                asn1.decode(code, cra, payload[:cut], base=1000)
            assert e.value.layer == "asn1", name
            assert 1000 <= e.value.offset <= 1000 + cut, (name, cut)


NOT_DER = {
    "indefinite length": ("ReadDeviceJoinDetailsResponse", "30 80 02 01 01 00 00"),
    "5 length octets": ("ReadDeviceJoinDetailsResponse", "30 85 00 00 00 00 03 02 01 01"),
    "non-minimal INTEGER": ("ReadDeviceJoinDetailsResponse", "30 04 02 02 00 01"),
    "empty INTEGER": ("JoinDeviceResponse", "02 00"),
    "DEFAULT encoded": ("TrustAnchorCellIdentifier", "30 0A 02 01 04 03 02 03 08 02 01 00"),
    "out of order": ("ActivateFirmwareExecutionOutcome", "30 09 04 04 01 23 AB CE 02 01 00"),
    "BIT STRING padding": ("IssueSecurityCredentialsCommand", "30 04 03 02 03 09"),
    "BIT STRING 8 unused": ("IssueSecurityCredentialsCommand", "30 04 03 02 08 00"),
    "NULL with contents": ("ReadDeviceJoinDetailsCommand", "05 01 00"),
    "time without Z": ("SetTimeResponse", "30 13 18 0E" + b"20150101000000".hex() + "02 01 00"),
    "time with zone": ("SetTimeResponse", "30 17 18 12" + b"20150101000000+0100".hex() + "020100"),
    "time fraction 0": ("SetTimeResponse", "30 16 18 11" + b"20150101000000.0Z".hex() + "020100"),
    "month 13": ("SetTimeResponse", "30 14 18 0F" + b"20151301000000Z".hex() + "02 01 00"),
    "undefined ENUMERATED": ("RemotePartyDetails", "30 06 02 01 02 0A 01 03"),
    "alert code too big": (
        "FirmwareTransferAlert",
        "30 2A 02 04 00 01 00 00 18 0F" + b"20150101000000Z".hex() + "04 08 00DB1234567890A4"
        " 04 04 0123ABCD 02 01 00",
    ),
    "OID 80 padding": ("AlgorithmIdentifier", "30 04 06 02 80 01"),
    "unknown CHOICE tag": ("ActivateFirmwareResponse", "04 00"),
    "empty payload": ("ActivateFirmwareResponse", ""),
}


@pytest.mark.parametrize("case", NOT_DER)
def test_non_der_is_refused(case: str) -> None:
    type_name, hexed = NOT_DER[case]
    with pytest.raises(DecodeError) as e:
        asn1.decode_type(type_name, h(hexed), base=7)
    assert e.value.layer == "asn1" and e.value.field.startswith(type_name)
    assert e.value.offset >= 7


def test_fractional_seconds_roundtrip() -> None:
    payload = h("30 16 18 11" + b"20150101000000.5Z".hex() + "02 01 00")
    p = asn1.decode(0x007F, RESPONSE, payload)
    assert p.value["deviceTime"] == dt.datetime(2015, 1, 1, 0, 0, 0, 500000)
    assert asn1.encode(p) == payload
    assert asn1.from_json(asn1.to_json(p)) == p


def test_length_forms_are_reproduced_and_checked() -> None:
    payload = h("30 81 03 02 01 01")  # short length written long
    p = asn1.decode(0x0013, RESPONSE, payload)
    assert p.length_forms == ((0, 1),)
    assert asn1.encode(p) == payload
    assert asn1.to_json(p)["lengthForms"] == [[0, 1]]
    with pytest.raises(DecodeError, match="shortest form"):
        asn1.decode(0x0013, RESPONSE, payload, strict=True)
    with pytest.raises(EncodeError, match="does not have"):
        asn1.encode(Asn1Payload(p.type_name, p.value, ((5, 2),)))
    big = asn1.build(
        0x0013,
        RESPONSE,
        {"responseCode": 0, "deviceLogEntries": [{"deviceId": bytes(8), "deviceType": 1}] * 10},
    )  # 150 content bytes
    with pytest.raises(EncodeError, match="does not fit"):
        asn1.encode(Asn1Payload(big.type_name, big.value, ((0, 0),)))


def test_from_json_rejects_malformed_objects() -> None:
    good = {"type": "DisconnectFromHanCommand", "value": {"deviceId": "00DB1234567890A0"}}
    assert asn1.from_json(good).value == {"deviceId": eui("00DB1234567890A0")}
    bad = [
        {"value": 1},
        {"type": "NoSuchType", "value": 1},
        {"type": "DisconnectFromHanCommand", "value": {"deviceId": "XYZ"}},
        {"type": "DisconnectFromHanCommand", "value": {"deviceId": 5}},
        {"type": "DisconnectFromHanCommand", "value": {}},
        {"type": "DisconnectFromHanCommand", "value": {"deviceId": "00", "extra": 1}},
        {"type": "DisconnectFromHanResponse", "value": True},
        {"type": "ActivateFirmwareResponse", "value": {"a": None, "b": None}},
        {
            "type": "IssueSecurityCredentialsCommand",
            "value": {"keyUsage": {"value": "08", "length": 9}},
        },
        {"type": "SetTimeResponse", "value": {"deviceTime": "2015", "deviceTimeStatus": 0}},
        {"type": "RemotePartyDetails", "value": {"remotePartyRole": 1, "statusCode": "nope"}},
        # An ENUMERATED given as an object or a list (unhashable) is refused the same way.
        {"type": "RemotePartyDetails", "value": {"remotePartyRole": 1, "statusCode": {}}},
        {"type": "RemotePartyDetails", "value": {"remotePartyRole": 1, "statusCode": [0]}},
        {**good, "lengthForms": [[0]]},
    ]
    for obj in bad:
        with pytest.raises(EncodeError):
            asn1.from_json(obj)


def test_from_json_rejects_set_bit_string_padding() -> None:
    """DER zeroes the unused bits: an edit setting them must fail, not encode as 00."""
    edit = {"type": "IssueSecurityCredentialsCommand", "value": {"keyUsage": {}}}
    for value, length in (("01", 1), ("FF", 7), ("0001", 15)):
        edit["value"]["keyUsage"] = {"value": value, "length": length}
        with pytest.raises(EncodeError, match=r"keyUsage: bits beyond"):
            asn1.from_json(edit)
    for value, length in (("80", 1), ("FE", 7), ("0002", 15), ("", 0)):
        edit["value"]["keyUsage"] = {"value": value, "length": length}
        p = asn1.from_json(edit)
        assert asn1.to_json(asn1.decode_type(p.type_name, asn1.encode(p))) == edit


def test_to_json_of_a_bad_value_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        asn1.to_json(Asn1Payload("ActivateFirmwareResponse", ("noSuchAlternative", None)))


def _decode_or_none(type_name: str, data: bytes) -> Asn1Payload | None:
    try:
        return asn1.decode_type(type_name, data)
    except DecodeError:
        return None


@cache
def ber_reference() -> Any:
    """asn1tools' BER codec for the same module.

    Not its DER codec: asn1tools 0.169's DER SEQUENCE OF loops forever when an
    element has the wrong tag (e.g. 30 04 30 02 05 00 as GpfDeviceLogRestoreCommand).
    """
    import asn1tools

    return asn1tools.compile_string(asn1._source(), "ber")


def _asn1tools_roundtrips(type_name: str, data: bytes) -> bool:
    """Whether asn1tools reads ``data`` (BER, constraints checked) and DER-encodes it back."""
    try:
        value, used = ber_reference().decode_with_length(type_name, data, check_constraints=True)
        return used == len(data) and bytes(asn1._codec().spec.encode(type_name, value)) == data
    except Exception:
        return False


def test_mutation_fuzz_of_reference_payloads() -> None:
    """Mutated RTDS payloads: only DecodeError escapes; what decodes re-encodes exactly;
    and whatever asn1tools reads and re-encodes identically (i.e. DER) decodes too."""
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    rng = random.Random(0x5EC0013)
    accepted = 0
    for _, code, cra, payload in asn1_payloads():
        type_name = asn1.type_for(code, cra)
        for _ in range(12):
            data = bytearray(payload)
            for _ in range(rng.randint(1, 3)):
                i = rng.randrange(len(data))
                action = rng.randrange(3)
                if action == 0:
                    data[i] = rng.randrange(256)
                elif action == 1:
                    data.insert(i, rng.randrange(256))
                elif len(data) > 1:
                    del data[i]
            data = bytes(data)
            p = _decode_or_none(type_name, data)
            if p is not None:
                accepted += 1
                assert asn1.encode(p) == data
            if not p or not p.length_forms:
                assert (p is not None) == _asn1tools_roundtrips(type_name, data), data.hex()
    assert accepted > 50  # the mutations do reach valid encodings too


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(set(asn1.mapping().values()))), st.binary(max_size=80))
def test_random_bytes_only_raise_decode_error(type_name: str, data: bytes) -> None:
    """Nothing but DecodeError escapes. Random bytes are almost never a valid encoding, so
    the round trip below rarely runs: test_mutation_fuzz_of_reference_payloads checks
    that accepted inputs re-encode (and that more than 50 are accepted)."""
    p = _decode_or_none(type_name, data)
    if p is not None:
        assert asn1.encode(p) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=60))
def test_random_bytes_behind_a_valid_prefix(tail: bytes) -> None:
    """Random contents inside a plausible SEQUENCE header get past the outer tag and
    length into the inner decoders, which must only raise DecodeError (acceptance and its
    round trip are test_mutation_fuzz_of_reference_payloads's)."""
    data = bytes((0x30, len(tail))) + tail if len(tail) < 0x80 else tail
    for type_name in (
        "ReadDeviceJoinDetailsResponse",
        "UpdateSecurityCredentialsResponse",
        "JoinDeviceCommand",
        "GpfDeviceLogBackupAlert",
        "SetTimeCommand",
    ):
        p = _decode_or_none(type_name, data)
        if p is not None:
            assert asn1.encode(p) == data


def test_shipped_parse_cache_is_current() -> None:
    """gbcs.asn.parsed must match the source; regenerate with ``python -m gbcs.asn1``."""
    import hashlib
    import pickle
    from pathlib import Path

    folder = Path(asn1.__file__).parent
    source = (folder / "gbcs.asn").read_text("utf-8")
    raw = (folder / asn1.PARSED_CACHE).read_bytes()
    assert raw[:32] == hashlib.sha256(source.encode("utf-8")).digest(), "stale parse cache"
    assert pickle.loads(raw[32:]) == asn1.parse_source(source)


class _NoFast(dict):
    """A _FAST stand-in whose every decoder bails out: decode_type then runs the checked path."""

    def get(self, key: Any, default: Any = None) -> Any:
        def bail(data: bytes, loose: list) -> Any:
            raise asn1._Slow

        return bail


def _outcome(type_name: str, data: bytes, strict: bool) -> Any:
    try:
        return asn1.decode_type(type_name, data, 5, strict=strict)
    except DecodeError as exc:
        return exc.as_dict()


def test_fast_decoders_agree_with_the_checked_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """The generated fast decoders give the checked decoders' value or error, for the
    reference payloads, their truncations and random changes, strict or not."""
    if not CORPUS:
        pytest.skip("RTDS corpus absent")
    monkeypatch.setattr(asn1, "_FAST_AFTER", 0)  # every decode below takes the fast path
    rng = random.Random(0xA5171)
    cases = []
    for _, code, cra, payload in asn1_payloads():
        type_name = asn1.type_for(code, cra)
        datas = [payload, payload + b"\x00"]
        datas += [payload[:n] for n in range(0, len(payload), max(1, len(payload) // 25))]
        for _ in range(25):
            data = bytearray(payload)
            for _ in range(rng.randint(1, 3)):
                data[rng.randrange(len(data))] = rng.randrange(256)
            datas.append(bytes(data))
        cases += [(type_name, d) for d in datas]
    fast = [(_outcome(t, d, False), _outcome(t, d, True)) for t, d in cases]
    monkeypatch.setattr(asn1, "_FAST", _NoFast())
    checked = [(_outcome(t, d, False), _outcome(t, d, True)) for t, d in cases]
    for (type_name, data), f, c in zip(cases, fast, checked, strict=True):
        assert f == c, (type_name, data.hex())
    assert sum(isinstance(f[0], Asn1Payload) for f in fast) > 200


def _encoded(payload: Asn1Payload, encoder: Any) -> bytes | str:
    try:
        return bytes(encoder(payload))
    except EncodeError as exc:
        return f"EncodeError: {exc}"


_ids = st.one_of(st.binary(min_size=8, max_size=8), st.binary(max_size=10), st.just("ab"))
_small = st.one_of(st.integers(-2, 130), st.booleans(), st.just("success"), st.none())
_entry = st.one_of(
    st.fixed_dictionaries({"deviceId": _ids, "deviceType": _small}),
    st.fixed_dictionaries({"deviceId": _ids}),
    st.fixed_dictionaries({"deviceId": _ids, "deviceType": _small, "x": st.just(1)}),
    st.just(("00" * 8, 1)),
)
_fast_encoded_values = {
    "DisconnectFromHanCommand": st.one_of(
        st.fixed_dictionaries({"deviceId": _ids}),
        st.fixed_dictionaries({"deviceId": _ids, "other": st.just(b"")}),
        st.just({}),
        _ids,
    ),
    "DisconnectFromHanResponse": st.one_of(_small, st.integers()),
    "ReadDeviceJoinDetailsResponse": st.one_of(
        st.fixed_dictionaries({"responseCode": _small}),
        st.fixed_dictionaries(
            {
                "responseCode": _small,
                "deviceLogEntries": st.one_of(
                    st.lists(_entry, max_size=12),
                    st.lists(
                        st.fixed_dictionaries(
                            {"deviceId": st.binary(min_size=8, max_size=8), "deviceType": _small}
                        ),
                        min_size=8,
                        max_size=20,  # past 127 content bytes: long-form lengths
                    ),
                    st.tuples(_entry),
                    st.none(),
                ),
            }
        ),
        st.just({"deviceLogEntries": []}),
    ),
}


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(sorted(_fast_encoded_values)).flatmap(
        lambda t: st.tuples(st.just(t), _fast_encoded_values[t])
    )
)
def test_fast_encoders_agree_with_the_checked_one(case: tuple[str, Any]) -> None:
    """The hot payloads' fast DER encoders give asn1tools' bytes, or leave it to refuse."""
    type_name, value = case
    payload = Asn1Payload(type_name, value)
    assert _encoded(payload, asn1.encode) == _encoded(payload, asn1._encode_checked)


def test_fast_encoders_take_the_cycle_payloads() -> None:
    """The CS07 and CS02f payloads a triage cycle builds do take the fast encoders."""
    device = bytes(range(8))
    entries = [{"deviceId": bytes([i] * 8), "deviceType": i % 7} for i in range(10)]
    for type_name, value in (
        ("DisconnectFromHanCommand", {"deviceId": device}),
        ("DisconnectFromHanResponse", 3),
        ("ReadDeviceJoinDetailsResponse", {"responseCode": 0, "deviceLogEntries": entries}),
        ("ReadDeviceJoinDetailsResponse", {"responseCode": 1}),
    ):
        data = asn1._FAST_ENCODERS[type_name](value)
        assert data is not None
        assert data == asn1._encode_checked(Asn1Payload(type_name, value))
        assert asn1.decode_type(type_name, data).value == value


def test_from_json_refuses_an_unknown_top_level_key() -> None:
    good = {"type": "DisconnectFromHanCommand", "value": {"deviceId": "00DB1234567890A0"}}
    with pytest.raises(EncodeError, match="unknown key 'lenghtForms'"):
        asn1.from_json({**good, "lenghtForms": [[0, 1]]})  # a typo would be dropped


def _deeply_nested_certificate_update(depth: int) -> bytes:
    """A CS02d command payload whose certificate's tbsCertificate (an open type) nests
    ``depth`` SEQUENCEs, with its outer length in a non-shortest form (tolerated)."""

    def length(n: int) -> bytes:
        return bytes([n]) if n < 0x80 else bytes([0x82]) + n.to_bytes(2, "big")

    tbs = b"\x05\x00"
    for _ in range(depth):
        tbs = b"\x30" + length(len(tbs)) + tbs
    inner = tbs + bytes.fromhex("300A06082A8648CE3D040302") + bytes.fromhex("030100")
    return b"\x30\x83" + len(inner).to_bytes(3, "big") + inner


def test_tlvs_nested_too_deeply_are_a_decode_error_not_a_recursion_error() -> None:
    """About 1,000 nested SEQUENCEs in an open type exhausted the stack of the walk that
    records non-shortest length forms: RecursionError out of decode()."""
    payload = _deeply_nested_certificate_update(1500)
    with pytest.raises(DecodeError, match="nested too deeply"):
        asn1.decode(0x000B, CraFlag.COMMAND, payload)
    shallow = _deeply_nested_certificate_update(10)
    assert asn1.encode(asn1.decode(0x000B, CraFlag.COMMAND, shallow)) == shallow


@pytest.mark.parametrize("oid", ["3.1", "1.40", "0.99"])
def test_an_invalid_object_identifier_is_refused_not_changed(oid: str) -> None:
    """X.690 8.19.4 packs the first two arcs in one subidentifier: '3.1' was encoded as
    the bytes of 2.41, a different OID, without a word."""
    payload = asn1.decode(0x000B, CraFlag.COMMAND, _deeply_nested_certificate_update(2))
    text = json.dumps(asn1.to_json(payload))
    assert '"1.2.840.10045.4.3.2"' in text
    edited = json.loads(text.replace('"1.2.840.10045.4.3.2"', json.dumps(oid), 1))
    with pytest.raises(EncodeError, match=f"{oid} is not an OID"):
        asn1.encode(asn1.from_json(edited))
