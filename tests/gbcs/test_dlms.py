"""DLMS Access-Request/-Response and Data-Notification: RTDS, CRIB §6 bytes, errors, properties."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbcs import axdr, dlms
from gbcs.axdr import (
    Array,
    BitString,
    Boolean,
    Enum,
    Integer,
    LongUnsigned,
    NullData,
    OctetString,
    Structure,
    Unsigned,
)
from gbcs.dlms import (
    AccessKind,
    AccessRequest,
    AccessResponse,
    AccessResult,
    DataNotification,
    RequestSpec,
)
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import decode_message
from gbcs.primitives import CosemDateTime
from gbcs.rtds import RtdsVector
from tests.conftest import CORPUS, corpus_params
from tests.gbcs.test_axdr import data_values

DLMS_TAGS = (0xD9, 0xDA, 0x0F)


def h(text: str) -> bytes:
    return bytes.fromhex("".join(text.split()))


def payload_of(vector: RtdsVector) -> tuple[bytes, int]:
    message, parts = decode_message(vector.data)
    return message.payload, parts.payload_offset


def _is_dlms(vector: RtdsVector | None) -> bool:
    if vector is None:
        return True  # the "no RTDS" placeholder keeps its skip mark
    try:
        payload, _ = payload_of(vector)
    except Exception:  # a frame problem must surface in the test, not vanish here
        return True
    return payload[:1] in (b"\xd9", b"\xda", b"\x0f")


DLMS_PARAMS = [p for p in corpus_params() if _is_dlms(p.values[0])]


# ---------------------------------------------------------------------------
# Every DLMS payload of the RTDS


@pytest.mark.parametrize("vector", DLMS_PARAMS)
def test_rtds_payload_round_trips(vector: RtdsVector) -> None:
    payload, offset = payload_of(vector)
    apdu = dlms.decode(payload, base=offset)
    assert dlms.encode(apdu) == payload
    text = json.dumps(dlms.to_json(apdu), allow_nan=False)
    rebuilt = dlms.from_json(json.loads(text))
    assert rebuilt == apdu
    assert dlms.encode(rebuilt) == payload


@pytest.mark.parametrize("vector", DLMS_PARAMS)
def test_rtds_payload_truncated_or_extended_raises(vector: RtdsVector) -> None:
    payload, offset = payload_of(vector)
    for cut in range(len(payload)):
        with pytest.raises(DecodeError) as exc:
            dlms.decode(payload[:cut], base=offset)
        assert exc.value.layer in ("dlms", "axdr")
        assert offset <= exc.value.offset <= offset + cut
    with pytest.raises(DecodeError) as exc:
        dlms.decode(payload + b"\x00", base=offset)
    assert (exc.value.field, exc.value.offset) == ("trailing bytes", offset + len(payload))


@pytest.mark.parametrize("vector", DLMS_PARAMS)
def test_rtds_invoke_id_follows_originator_counter(vector: RtdsVector) -> None:
    """CRIB §9.8: invoke id = 0x20 then the low 24 bits of the Originator Counter."""
    message, parts = decode_message(vector.data)
    apdu = dlms.decode(message.payload, base=parts.payload_offset)
    assert apdu.invoke_id == dlms.invoke_id_for_counter(message.header.originator_counter)
    assert apdu.break_on_error
    assert not (apdu.self_descriptive or apdu.confirmed or apdu.high_priority)
    assert apdu.date_time is None


def test_rtds_has_every_dlms_payload(corpus: list[RtdsVector]) -> None:
    kinds = [payload_of(v)[0][0] for v in corpus if _is_dlms(v)]
    assert (kinds.count(0xD9), kinds.count(0xDA), kinds.count(0x0F)) == (196, 141, 29)


# ---------------------------------------------------------------------------
# CRIB §6 examples, byte by byte

CCS01_COMMAND = h("""
    D9 20000516 00
    03  03 0068 00001E0300FF 01
        02 0068 00001E0300FF 03
        02 0068 00001E0300FF 02
    03  0204 0908 00DB1234567890A0 1601 0910 30313233343536373839414243444546 1600
        12005A
        03FF
""")
CCS01_RESPONSE = h("DA 20000516 00 00 03 00 00 00 03 0300 0200 0200")
CCS01_ERROR_RESPONSE = h("DA 20000517 00 00 03 00 00 00 03 0300 0201 02FA")  # ERROR counter
CCS02_COMMAND = h("D9 20000516 00 01 03 0068 00001E0300FF 02 01 0908 00DB1234567890A0")
CCS02_RESPONSE = h("DA 20000516 00 00 01 00 01 0300")
CCS03_COMMAND = h("""
    D9 20000516 00 01 03 0068 00001E0300FF 05
    01 0202 0908 0000000000000140
            0102 0202 0908 00DB1234567890A0 0910 83FED3407A939723A5C639B26916D506
                 0202 0908 00DB1234567890A1 0910 83FED3407A939723A5C639B26916D505
""")
CCS05_COMMAND = h("D9 20000514 00 01 01 0068 00001E0300FF 04 01 00")
CCS05_FIRST_DEVICE = h("""
    020E 0908 00DB1234567890A0 0408C8 0FDD 0FCE 0F9C 1102 1127 11F7
         090C 07DE0C1F03173200008000FF 1101 1100 1164 1101 1101
""")
CCS07_COMMAND = h("""
    D9 20000514 00 02 03 0068 00001E0300FF 04
                      03 0068 00001E0301FF 04
                   02 00 00
""")
CCS07_LOG_HEADER = h("0203 090C 07DF0101FF000000008000FF 0908 0001020304050607 0102")
CCS07_RESPONSE = h(f"""
    DA 20000514 00 00 02
    {CCS07_LOG_HEADER.hex()}
        0202 0908 00DB1234567890A0 0910 83FED3407A939723A5C639B26916D506
        0202 0908 00DB1234567890A1 0910 83FED3407A939723A5C639B26916D505
    {CCS07_LOG_HEADER.hex()}
        0202 0908 00DB1234567890A3 0910 00112233445566778899A1A2A3A4A5A6
        0202 0908 00DB1234567890A4 0910 A1A2A3A4A5A600112233445566778899
    02 0300 0300
""")
CCS07_ERROR_RESPONSE = h("DA 20000515 00 00 02 00 00 02 0301 03FA")  # ERROR counter

CHF_LOG = bytes.fromhex("00001E0300FF")
CHF_HISTORIC_LOG = bytes.fromhex("00001E0301FF")
ESME = bytes.fromhex("00DB1234567890A0")


def entry(eui: str, key: str) -> Structure:
    return Structure((OctetString(bytes.fromhex(eui)), OctetString(bytes.fromhex(key))))


@pytest.mark.parametrize(
    ("folder", "name", "payload"),
    [
        ("8.11_CCS01", "CCS01_8.11_SUCCESS_COMMAND", CCS01_COMMAND),
        ("8.11_CCS01", "CCS01_8.11_SUCCESS_RESPONSE", CCS01_RESPONSE),
        ("8.11_CCS01", "CCS01_8.11_ERROR_RESPONSE", CCS01_ERROR_RESPONSE),
        ("8.11_CCS02", "CCS02_8.11_SUCCESS_COMMAND", CCS02_COMMAND),
        ("8.11_CCS02", "CCS02_8.11_SUCCESS_RESPONSE", CCS02_RESPONSE),
        ("8.12.1_CCS03", "CCS03_8.12.1_SUCCESS_COMMAND", CCS03_COMMAND),
        ("8.9_CCS05CCS04", "CCS05CCS04_8.9_SUCCESS_COMMAND", CCS05_COMMAND),
        ("8.9_CCS07", "CCS07_8.9_SUCCESS_COMMAND", CCS07_COMMAND),
        ("8.9_CCS07", "CCS07_8.9_SUCCESS_RESPONSE", CCS07_RESPONSE),
        ("8.9_CCS07", "CCS07_8.9_ERROR_RESPONSE", CCS07_ERROR_RESPONSE),
    ],
)
def test_crib_examples_are_the_rtds_payloads(
    corpus: list[RtdsVector], folder: str, name: str, payload: bytes
) -> None:
    vector = next(v for v in corpus if v.name == f"{name}_GBCS.HEX" and v.folder == folder)
    assert payload_of(vector)[0] == payload


def test_ccs05_crib_element_is_in_the_rtds_response(corpus: list[RtdsVector]) -> None:
    vector = next(v for v in corpus if v.name == "CCS05CCS04_8.9_SUCCESS_RESPONSE_GBCS.HEX")
    payload, offset = payload_of(vector)
    response = dlms.decode(payload, base=offset)
    assert isinstance(response, AccessResponse)
    devices = response.data[0]
    assert isinstance(devices, Array) and len(devices.value) == 2
    assert devices.value[0] == axdr.decode(CCS05_FIRST_DEVICE)
    assert response.results == (AccessResult(AccessKind.GET, 0),)


def test_ccs01_command() -> None:
    request = dlms.decode(CCS01_COMMAND)
    expected = AccessRequest(
        0x20000516,
        (
            RequestSpec.action(104, "0-0:30.3.0.255", 1),
            RequestSpec.set(104, CHF_LOG, 3),
            RequestSpec.set(104, CHF_LOG, 2),
        ),
        (
            Structure((OctetString(ESME), Enum(1), OctetString(b"0123456789ABCDEF"), Enum(0))),
            LongUnsigned(90),
            Boolean(True),
        ),
    )
    assert request == expected
    assert dlms.encode(expected) == CCS01_COMMAND
    assert isinstance(request, AccessRequest)
    assert request.invoke_number == 0x516
    assert [s.member_name for s in request.specs] == [
        "register_device",
        "join_timeout",
        "enable_disable_joining",
    ]
    assert {s.class_name for s in request.specs} == {"ZigBee network control"}
    assert request.specs[0].obis_text == "0-0:30.3.0.255"


def test_ccs01_responses() -> None:
    ok = dlms.decode(CCS01_RESPONSE)
    assert ok == AccessResponse(
        0x20000516,
        (NullData(), NullData(), NullData()),
        (AccessResult(3, 0), AccessResult(2, 0), AccessResult(2, 0)),
    )
    assert isinstance(ok, AccessResponse) and ok.ok
    error = dlms.decode(CCS01_ERROR_RESPONSE)
    assert isinstance(error, AccessResponse) and not error.ok
    assert [r.name for r in error.results] == ["success", "hardware-fault", "other-reason"]


def test_ccs02_and_ccs03_commands() -> None:
    assert dlms.decode(CCS02_COMMAND) == AccessRequest(
        0x20000516, (RequestSpec.action(104, CHF_LOG, 2),), (OctetString(ESME),)
    )
    restore = AccessRequest(
        0x20000516,
        (RequestSpec.action(104, CHF_LOG, 5),),
        (
            Structure(
                (
                    OctetString(bytes.fromhex("0000000000000140")),
                    Array(
                        (
                            entry("00DB1234567890A0", "83FED3407A939723A5C639B26916D506"),
                            entry("00DB1234567890A1", "83FED3407A939723A5C639B26916D505"),
                        )
                    ),
                )
            ),
        ),
    )
    assert dlms.decode(CCS03_COMMAND) == restore
    assert dlms.encode(restore) == CCS03_COMMAND
    assert restore.specs[0].member_name == "restore_PAN"


def test_ccs05_active_devices_element() -> None:
    element = axdr.decode(CCS05_FIRST_DEVICE)
    last_comm = CosemDateTime(2014, 12, 31, 3, 23, 50, 0, 0, -0x8000, 0xFF)
    assert element == Structure(
        (
            OctetString(ESME),
            BitString(b"\xc8", 8),
            Integer(-35),
            Integer(-50),
            Integer(-100),
            Unsigned(2),
            Unsigned(39),
            Unsigned(247),
            OctetString(last_comm.encode()),
            Unsigned(1),
            Unsigned(0),
            Unsigned(100),
            Unsigned(1),
            Unsigned(1),
        )
    )
    request = dlms.decode(CCS05_COMMAND)
    assert isinstance(request, AccessRequest)
    assert request.specs == (RequestSpec.get(104, CHF_LOG, 4),)
    assert request.specs[0].member_name == "active_devices"
    assert request.data == (NullData(),)


def test_ccs07_command_and_json_names() -> None:
    request = dlms.decode(CCS07_COMMAND)
    assert request == AccessRequest(
        0x20000514,
        (RequestSpec.action(104, CHF_LOG, 4), RequestSpec.action(104, CHF_HISTORIC_LOG, 4)),
        (NullData(), NullData()),
    )
    js = dlms.to_json(request)
    assert js == {
        "apdu": "access-request",
        "invoke_id": 0x20000514,
        "date_time": None,
        "specs": [
            {
                "kind": "action",
                "class": 104,
                "class_name": "ZigBee network control",
                "obis": "0-0:30.3.0.255",
                "method": 4,
                "method_name": "backup_PAN",
            },
            {
                "kind": "action",
                "class": 104,
                "class_name": "ZigBee network control",
                "obis": "0-0:30.3.1.255",
                "method": 4,
                "method_name": "backup_PAN",
            },
        ],
        "data": [{"type": "null-data"}, {"type": "null-data"}],
    }


def test_ccs07_response_two_logs() -> None:
    response = dlms.decode(CCS07_RESPONSE)
    backup_time = OctetString(bytes.fromhex("07DF0101FF000000008000FF"))
    pan = OctetString(bytes.fromhex("0001020304050607"))
    current = Structure(
        (
            backup_time,
            pan,
            Array(
                (
                    entry("00DB1234567890A0", "83FED3407A939723A5C639B26916D506"),
                    entry("00DB1234567890A1", "83FED3407A939723A5C639B26916D505"),
                )
            ),
        )
    )
    historic = Structure(
        (
            backup_time,
            pan,
            Array(
                (
                    entry("00DB1234567890A3", "00112233445566778899A1A2A3A4A5A6"),
                    entry("00DB1234567890A4", "A1A2A3A4A5A600112233445566778899"),
                )
            ),
        )
    )
    expected = AccessResponse(
        0x20000514, (current, historic), (AccessResult(3, 0), AccessResult(3, 0))
    )
    assert response == expected
    assert dlms.encode(expected) == CCS07_RESPONSE
    assert len(CCS07_RESPONSE) == 189
    error = dlms.decode(CCS07_ERROR_RESPONSE)
    assert isinstance(error, AccessResponse)
    assert [(r.result, r.name) for r in error.results] == [
        (1, "hardware-fault"),
        (250, "other-reason"),
    ]


def test_data_notification() -> None:
    raw = h("0F 200007D3 00 0203 128F88 090C 07DF0101FF000000008000FF 0C03 7B7D0A")
    note = dlms.decode(raw)
    assert isinstance(note, DataNotification)
    assert note.body.value[0] == LongUnsigned(0x8F88)  # type: ignore[attr-defined]
    assert dlms.to_json(note)["body"]["value"][2] == {
        "type": "utf8-string",
        "value": "7B7D0A",
        "text": "{}\n",
    }
    assert dlms.encode(note) == raw


# ---------------------------------------------------------------------------
# Errors


def test_error_offset_is_absolute_inside_the_message() -> None:
    """CCS01 SUCCESS COMMAND: the payload starts at byte 64 of the message (CRIB §2.5)."""
    corrupt = bytearray(CCS01_COMMAND)
    corrupt[-1] = 0x07  # the enable-joining boolean, payload byte 76
    with pytest.raises(DecodeError) as exc:
        dlms.decode(bytes(corrupt), base=64)
    assert (exc.value.layer, exc.value.field, exc.value.offset) == ("axdr", "boolean", 140)
    corrupt = bytearray(CCS01_COMMAND)
    corrupt[17] = 0x06  # the second specification's kind
    with pytest.raises(DecodeError) as exc:
        dlms.decode(bytes(corrupt), base=64)
    assert exc.value.layer == "dlms"
    assert exc.value.field == "access-request specification 1 kind"
    assert exc.value.offset == 64 + 17


def test_error_offset_in_the_rtds_message(corpus: list[RtdsVector]) -> None:
    vector = next(v for v in corpus if v.name == "CCS01_8.11_SUCCESS_COMMAND_GBCS.HEX")
    message, parts = decode_message(vector.data)
    assert parts.payload_offset == 64
    assert vector.data[64:141] == CCS01_COMMAND
    corrupt = message.payload[:-1] + b"\x07"
    with pytest.raises(DecodeError) as exc:
        dlms.decode(corrupt, base=parts.payload_offset)
    assert exc.value.offset == 140


@pytest.mark.parametrize(
    ("hex_text", "layer", "field", "offset", "reason"),
    [
        ("", "dlms", "tag", 10, "empty"),
        ("C0 20000001 00", "dlms", "tag", 10, "0xC0"),
        ("D9 200000", "dlms", "invoke id", 11, "truncated"),
        ("D9 20000001 05 0102030405", "dlms", "date-time length", 15, "must be 0 or 12"),
        (
            "D9 20000001 00 01 01 0001 000000000000",
            "dlms",
            "access-request specification 0",
            17,
            "truncated",
        ),
        (
            "D9 20000001 00 01 01 0001 0000010000FF 02 02 00 00",
            "dlms",
            "data count",
            27,
            "2 data items for 1 specifications",
        ),
        (
            "D9 20000001 00 01 04 0007 0000636200FF 02",
            "dlms",
            "access-request specification 0 selector",
            27,
            "truncated",
        ),
        ("D9 20000001 00 01 04 0007 0000636200FF 02 01 07", "axdr", "tag", 28, "0x07"),
        ("DA 20000001 00 02", "dlms", "access-request-specification presence", 16, "0x02"),
        (
            "DA 20000001 00 00 01 00 02 0100 0100",
            "dlms",
            "result count",
            19,
            "2 results for 1 data items",
        ),
        ("DA 20000001 00 00 01 00 01 0400", "dlms", "result 0 kind", 20, "0x04"),
        ("DA 20000001 00 00 01 00 01 01", "dlms", "result 0", 20, "truncated"),
        ("0F 20000001 00", "axdr", "tag", 16, "truncated"),
        ("0F 20000001 00 00 00", "dlms", "trailing bytes", 17, "1 unexpected"),
        ("0F 20000001 81 05", "dlms", "date-time length", 15, "non-minimal"),
    ],
)
def test_decode_errors(hex_text: str, layer: str, field: str, offset: int, reason: str) -> None:
    with pytest.raises(DecodeError) as exc:
        dlms.decode(h(hex_text), base=10)
    assert (exc.value.layer, exc.value.field, exc.value.offset) == (layer, field, offset)
    assert reason in exc.value.reason


def test_date_time_and_spec_echo_are_supported() -> None:
    stamp = CosemDateTime(2015, 1, 1, 4, 0, 0, 0, 0, 0, 0)
    spec = RequestSpec.get(8, "0-0:1.0.0.255", 2)
    response = AccessResponse(
        0x20000001,
        (axdr.DateTime.of(stamp),),
        (AccessResult(AccessKind.GET, 0),),
        stamp,
        (spec,),
    )
    raw = dlms.encode(response)
    assert raw[5:18] == b"\x0c" + stamp.encode()
    assert raw[18] == 0x01  # the specification list is present
    assert dlms.decode(raw) == response
    assert dlms.from_json(dlms.to_json(response)) == response
    assert spec.member_name == "time"
    assert dlms.to_json(response)["date_time_text"] == "2015-01-01 00:00:00 dev=0"


@pytest.mark.parametrize(
    ("apdu", "fragment"),
    [
        (AccessRequest(2**32, (), ()), "invoke id"),
        (AccessRequest(1, (RequestSpec.get(1, CHF_LOG, 2),), ()), "0 data items for 1"),
        (
            AccessRequest(1, (RequestSpec(1, 1, CHF_LOG, 2, selector=1),), (NullData(),)),
            "only the with-selection kinds",
        ),
        (AccessRequest(1, (RequestSpec(6, 1, CHF_LOG, 2),), (NullData(),)), "kind 6 is not 1-5"),
        (AccessRequest(1, (RequestSpec(1, 1, b"\x00", 2),), (NullData(),)), "6 bytes"),
        (AccessRequest(1, (RequestSpec(1, 70000, CHF_LOG, 2),), (NullData(),)), "class id"),
        (
            AccessRequest(1, (RequestSpec(4, 7, CHF_LOG, 2, 1, None),), (NullData(),)),
            "access parameter must be an A-XDR Data value",
        ),
        (AccessResponse(1, (NullData(),), ()), "0 results for 1"),
        (AccessResponse(1, (NullData(),), (AccessResult(4, 0),)), "kind 4 is not 1-3"),
        (AccessResponse(1, (Unsigned(300),), (AccessResult(1, 0),)), "data item 0"),
        (DataNotification(1, "x"), "body must be"),  # type: ignore[arg-type]
        ("not an apdu", "not a DLMS APDU"),
    ],
)
def test_encode_errors(apdu: dlms.Apdu, fragment: str) -> None:
    with pytest.raises(EncodeError) as exc:
        dlms.encode(apdu)
    assert fragment in str(exc.value)


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda j: j.update(apdu="get-request"), "$.apdu"),
        (lambda j: j.update(invoke_id=-1), "$.invoke_id"),
        (lambda j: j.pop("date_time"), "$.date_time"),
        (lambda j: j.update(date_time="00"), "$.date_time"),
        (lambda j: j["specs"][1].update(obis="0-0:30.3.0"), "$.specs[1].obis"),
        (lambda j: j["specs"][0].update(kind="delete"), "$.specs[0].kind"),
        (lambda j: j["specs"][0].pop("method"), "$.specs[0].method"),
        (lambda j: j["specs"][0].update({"class": "104"}), "$.specs[0].class"),
        (lambda j: j["data"][0]["value"][1].update(value=300), "$.data[0].value[1]"),
        (lambda j: j["data"].pop(), "$.data"),
        (lambda j: j.update(specs={}), "$.specs"),
    ],
)
def test_from_json_errors_name_the_path(mutate: object, path: str) -> None:
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    mutate(js)  # type: ignore[operator]
    with pytest.raises(EncodeError) as exc:
        dlms.from_json(js)
    assert f" at {path}" in str(exc.value)


def test_a_spec_key_that_does_not_apply_to_its_kind_is_refused() -> None:
    """A method on a SET spec, or an attribute on an ACTION one, was ignored: an edit
    dropped without a word (codec audit F5)."""
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    index, spec = next((i, s) for i, s in enumerate(js["specs"]) if "attribute" in s)
    spec["method"] = 5
    with pytest.raises(EncodeError, match=rf"\$\.specs\[{index}\]\.method: does not apply"):
        dlms.from_json(js)
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    index, spec = next((i, s) for i, s in enumerate(js["specs"]) if "attribute" in s)
    spec["selector"] = 1
    with pytest.raises(EncodeError, match=rf"\$\.specs\[{index}\]\.selector: does not apply"):
        dlms.from_json(js)


def test_from_json_names_may_be_left_out_but_not_contradict_the_numbers() -> None:
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    for spec in js["specs"]:
        spec.pop("class_name")
        spec.pop("method_name" if "method" in spec else "attribute_name")
    assert dlms.encode(dlms.from_json(js)) == CCS01_COMMAND
    # An edited name instead of its number would be silently lost: refused, named.
    js["specs"][0]["method_name" if "method" in js["specs"][0] else "attribute_name"] = "x"
    with pytest.raises(EncodeError, match=r"\$\.specs\[0\]\.(method|attribute)_name"):
        dlms.from_json(js)
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    js["specs"][0]["obis_name"] = "clock"  # a key to_json never writes
    with pytest.raises(EncodeError, match=r"\$\.specs\[0\]\.obis_name: unknown key"):
        dlms.from_json(js)
    js = dlms.to_json(dlms.decode(CCS01_COMMAND))
    js["comment"] = "mine"
    with pytest.raises(EncodeError, match=r"\$\.comment: unknown key"):
        dlms.from_json(js)
    response = dlms.to_json(dlms.decode(CCS01_ERROR_RESPONSE))
    assert response["results"][2] == {"kind": "set", "result": 250, "result_name": "other-reason"}


# ---------------------------------------------------------------------------
# Names and OBIS


def test_names() -> None:
    assert dlms.class_name(104) == "ZigBee network control"
    assert dlms.class_name(9000) == "GBCS extended data"
    assert dlms.class_name(12345) is None
    for class_id in (1, 3, 4, 7, 8, 9, 10, 11, 20, 21, 22, 30, 70, 71, 104, 111, 112, 113, 115):
        assert dlms.class_name(class_id)
        assert dlms.attribute_name(class_id, 1) == "logical_name"
    assert [dlms.attribute_name(104, a) for a in (2, 3, 4, 5)] == [
        "enable_disable_joining",
        "join_timeout",
        "active_devices",
        None,
    ]
    assert [dlms.method_name(104, m) for m in range(1, 7)] == [
        "register_device",
        "unregister_device",
        "unregister_all_devices",
        "backup_PAN",
        "restore_PAN",
        None,
    ]
    assert dlms.attribute_name(8, 2) == "time"
    assert dlms.method_name(30, 1) == "get_protected_attributes"
    assert (dlms.method_name(70, 1), dlms.method_name(70, 2)) == (
        "remote_disconnect",
        "remote_reconnect",
    )
    assert dlms.method_name(9, 1) == "execute"
    assert dlms.method_name(9, 0) is None


@pytest.mark.parametrize(
    ("code", "name"),
    [(0, "success"), (1, "hardware-fault"), (2, "temporary-failure"), (3, "read-write-denied"),
     (4, "object-undefined"), (9, "object-class-inconsistent"), (11, "object-unavailable"),
     (12, "type-unmatched"), (13, "scope-of-access-violated"), (250, "other-reason")],
)  # fmt: skip
def test_result_names(code: int, name: str) -> None:
    """The CRIB §5.1 result list, for GET/SET and ACTION alike."""
    for kind in AccessKind.GET, AccessKind.SET, AccessKind.ACTION:
        assert dlms.result_name(kind, code) == name
    assert dlms.result_name(AccessKind.ACTION, 7) is None


def test_obis_text() -> None:
    assert dlms.format_obis(CHF_LOG) == "0-0:30.3.0.255"
    assert dlms.parse_obis("0-0:30.3.0.255") == CHF_LOG
    assert dlms.parse_obis("0.0.30.3.1.255") == CHF_HISTORIC_LOG
    assert dlms.parse_obis(" 1-0:1.8.0.255 ") == bytes((1, 0, 1, 8, 0, 255))
    for bad in ("0-0:30.3.0", "0-0:30.3.0.256", "a-b:c.d.e.f", ""):
        with pytest.raises(EncodeError):
            dlms.parse_obis(bad)
    with pytest.raises(EncodeError):
        dlms.format_obis(b"\x00")


def test_invoke_id_for_counter() -> None:
    assert dlms.invoke_id_for_counter(0x516) == 0x20000516
    assert dlms.invoke_id_for_counter(0x1_2345_6789) == 0x20456789


# ---------------------------------------------------------------------------
# Properties

invoke_ids = st.integers(0, 2**32 - 1)
obis_codes = st.binary(min_size=6, max_size=6)
date_times = st.none() | st.binary(min_size=12, max_size=12).map(CosemDateTime.decode)
plain_specs = st.builds(
    RequestSpec,
    st.sampled_from([AccessKind.GET, AccessKind.SET, AccessKind.ACTION]),
    st.integers(0, 0xFFFF),
    obis_codes,
    st.integers(0, 255),
)
selective_specs = st.builds(
    RequestSpec,
    st.sampled_from([AccessKind.GET_WITH_SELECTION, AccessKind.SET_WITH_SELECTION]),
    st.integers(0, 0xFFFF),
    obis_codes,
    st.integers(0, 255),
    st.integers(0, 255),
    data_values(),
)
specs = st.lists(plain_specs | selective_specs, max_size=4).map(tuple)
results = st.builds(AccessResult, st.sampled_from([1, 2, 3]).map(AccessKind), st.integers(0, 255))


def requests() -> st.SearchStrategy[AccessRequest]:
    return specs.flatmap(
        lambda ss: st.builds(
            AccessRequest,
            invoke_ids,
            st.just(ss),
            st.lists(data_values(), min_size=len(ss), max_size=len(ss)).map(tuple),
            date_times,
        )
    )


def responses() -> st.SearchStrategy[AccessResponse]:
    return st.lists(st.tuples(data_values(), results), max_size=4).flatmap(
        lambda pairs: st.builds(
            AccessResponse,
            invoke_ids,
            st.just(tuple(d for d, _ in pairs)),
            st.just(tuple(r for _, r in pairs)),
            date_times,
            st.none() | specs,
        )
    )


apdus = st.one_of(
    requests(), responses(), st.builds(DataNotification, invoke_ids, data_values(), date_times)
)
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(apdus)
def test_round_trip_of_generated_apdus(apdu: dlms.Apdu) -> None:
    raw = dlms.encode(apdu)
    assert dlms.decode(raw) == apdu
    text = json.dumps(dlms.to_json(apdu), allow_nan=False)
    assert dlms.from_json(json.loads(text)) == apdu


def _decode_or_error(raw: bytes) -> None:
    try:
        apdu = dlms.decode(raw, base=3)
    except DecodeError as exc:
        assert exc.layer in ("dlms", "axdr")
        assert 3 <= exc.offset <= 3 + len(raw)
    else:
        assert dlms.encode(apdu) == raw


@FUZZ
@given(st.sampled_from(DLMS_TAGS), st.binary(max_size=60))
def test_arbitrary_bytes_decode_or_raise(tag: int, rest: bytes) -> None:
    _decode_or_error(bytes((tag,)) + rest)


RTDS_PAYLOADS = [payload_of(v)[0] for v in CORPUS if _is_dlms(v)][:60]


@FUZZ
@given(st.data())
def test_mutated_payloads_decode_or_raise(data: st.DataObject) -> None:
    base: bytes
    if RTDS_PAYLOADS:
        base = data.draw(st.sampled_from(RTDS_PAYLOADS))
    else:
        base = dlms.encode(data.draw(apdus))
    raw = bytearray(base)
    for _ in range(data.draw(st.integers(1, 3))):
        index = data.draw(st.integers(0, len(raw) - 1))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip":
            raw[index] = data.draw(st.integers(0, 255))
        elif action == "insert":
            raw.insert(index, data.draw(st.integers(0, 255)))
        elif len(raw) > 1:
            del raw[index]
    _decode_or_error(bytes(raw))


# The fast encoder against the checked one -------------------------------------------


def _encode_outcome(f: object, apdu: object) -> tuple[str, object]:
    """What an encoder gives: its bytes, or its exception's type and message."""
    try:
        return "value", f(apdu)  # type: ignore[operator]
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


@FUZZ
@given(apdus)
def test_fast_encoder_matches_checked(apdu: dlms.Apdu) -> None:
    assert dlms.encode(apdu) == dlms.encode_checked(apdu)


odd_ints = st.one_of(
    st.integers(-2, 2**33), st.booleans(), st.just(2.0), st.sampled_from(list(AccessKind))
)
odd_specs = st.builds(
    RequestSpec,
    st.one_of(st.sampled_from(list(AccessKind)), st.integers(-1, 7), st.booleans()),
    st.one_of(st.integers(-1, 0x10000), st.just(AccessKind.GET)),
    st.one_of(obis_codes, st.binary(min_size=5, max_size=7), st.just("0-0:1.0.0.255")),
    st.one_of(st.integers(-1, 256), st.booleans()),
    st.none() | st.integers(-1, 256),
    st.none() | data_values(),
)
odd_results = st.builds(
    AccessResult,
    st.one_of(st.sampled_from(list(AccessKind)), st.integers(-1, 5), st.booleans()),
    st.one_of(st.integers(-1, 256), st.booleans()),
)
odd_data = st.one_of(data_values(), st.just(3), st.just(Unsigned(300)), st.just(None))
odd_date_times = st.one_of(date_times, st.just(b"\x00" * 12), st.just(CosemDateTime(month=256)))


def _seq(strategy: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.lists(strategy, max_size=3).flatmap(
        lambda items: st.sampled_from([tuple(items), items])
    )


odd_apdus = st.one_of(
    st.builds(
        AccessRequest, odd_ints, _seq(plain_specs | odd_specs), _seq(odd_data), odd_date_times
    ),
    st.builds(
        AccessResponse,
        odd_ints,
        _seq(odd_data),
        _seq(results | odd_results),
        odd_date_times,
        st.none() | _seq(plain_specs | odd_specs),
    ),
    st.builds(DataNotification, odd_ints, odd_data, odd_date_times),
    st.just(NullData()),
)


@FUZZ
@given(odd_apdus)
def test_fast_encoder_errors_match_checked(apdu: dlms.Apdu) -> None:
    assert _encode_outcome(dlms.encode, apdu) == _encode_outcome(dlms.encode_checked, apdu)


def test_each_request_arm_has_its_response_arm() -> None:
    """Access-Response specifications are get, set or action only (CRIB §5.1)."""
    assert [k.response_kind for k in AccessKind] == [
        AccessKind.GET,
        AccessKind.SET,
        AccessKind.ACTION,
        AccessKind.GET,
        AccessKind.SET,
    ]
