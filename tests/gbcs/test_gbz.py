"""GBZ payload codec (CRIB §5.3) against the RTDS 4.5.0 vectors and generated inputs."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gbcs import gbz
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import CraFlag, decode_message
from gbcs.gbz import (
    AttributeRecord,
    ClusterCommand,
    DefaultResponse,
    EncryptedFrame,
    FirmwareReceipt,
    FutureDatedOutcome,
    GbzComponent,
    GbzPayload,
    IntegrityWarning,
    ReadAttributes,
    ReadAttributesResponse,
    Undecoded,
    WriteAttributes,
    WriteAttributesResponse,
    ZclFrame,
    ZclValue,
)
from tests.conftest import CORPUS, SKIP_REASON, corpus_params

# --------------------------------------------------------------------------
# RTDS corpus
# --------------------------------------------------------------------------


def _split(vector: Any) -> tuple[bytes, bool, int]:
    """(payload, alert, base) exactly as a caller of gbz.decode gets them from the frame."""
    message, parts = decode_message(vector.data)
    return message.payload, message.cra_flag == CraFlag.ALERT, parts.payload_offset


def _gbz_params() -> list:
    params = []
    for p in corpus_params():
        vector = p.values[0]
        if vector is None or gbz.is_gbz(_split(vector)[0]):
            params.append(p)
    return params


GBZ = _gbz_params()
GBZ_PAYLOADS = [_split(p.values[0]) for p in GBZ if p.values[0] is not None]


def _vector(name: str) -> tuple[bytes, bool, int]:
    for v in CORPUS:
        if v.name == name:
            return _split(v)
    pytest.skip(SKIP_REASON if not CORPUS else f"{name} is not in the corpus")


def _strict_json(obj: Any) -> Any:
    """Through real JSON text: only JSON types survive, NaN is refused."""
    return json.loads(json.dumps(obj, allow_nan=False))


@pytest.mark.parametrize("vector", GBZ)
def test_rtds_decodes_and_round_trips(vector: Any) -> None:
    payload, alert, base = _split(vector)
    p = gbz.decode(payload, alert, base)
    assert gbz.encode(p) == payload
    assert p.is_alert == alert
    assert gbz.decode_message_payload(*decode_message(vector.data)) == p


@pytest.mark.parametrize("vector", GBZ)
def test_rtds_json_round_trip(vector: Any) -> None:
    payload, alert, base = _split(vector)
    p = gbz.decode(payload, alert, base)
    assert gbz.from_json(_strict_json(gbz.to_json(p))) == p


@pytest.mark.parametrize("vector", GBZ)
def test_rtds_profile_wide_frames_are_fully_viewed(vector: Any) -> None:
    payload, alert, base = _split(vector)
    for c in gbz.decode(payload, alert, base).components:
        if isinstance(c.frame, ZclFrame):
            assert not isinstance(gbz.zcl_view(c.cluster_id, c.frame), Undecoded)


@pytest.mark.parametrize("vector", GBZ)
def test_rtds_every_truncation_is_a_decode_error(vector: Any) -> None:
    payload, alert, base = _split(vector)
    for cut in range(len(payload)):
        with pytest.raises(DecodeError) as info:
            gbz.decode(payload[:cut], alert, base)
        assert info.value.layer == "gbz"
        assert base <= info.value.offset <= base + cut


def test_rtds_control_bytes_follow_the_last_component_rule(corpus: list) -> None:
    """RTDS uses control bytes 0x00, 0x01, 0x02, 0x03, 0x10 only, last bit always right."""
    seen = set()
    for payload, alert, base in GBZ_PAYLOADS:
        components = gbz.decode(payload, alert, base).components
        for i, c in enumerate(components):
            seen.add(c.control)
            assert c.is_last == (i == len(components) - 1)
    assert seen <= {0x00, 0x01, 0x02, 0x03, 0x10, 0x11, 0x12, 0x13}


# --------------------------------------------------------------------------
# Exact values (CRIB §5.3)
# --------------------------------------------------------------------------

GBZ_2015 = 0x1C374A80  # 2015-01-01T00:00:00Z in GBZ seconds


def test_generic_alert_has_code_timestamp_and_no_body() -> None:
    payload, alert, base = _vector("GNCA-ZigBee_NA_810E_ALERT_GBCS.HEX")
    assert payload == bytes.fromhex("010900810E1C374A80")
    p = gbz.decode(payload, alert, base)
    assert (p.alert_code, p.timestamp, p.components, p.alert_body) == (0x810E, GBZ_2015, (), None)
    assert p.when == dt.datetime(2015, 1, 1, tzinfo=dt.UTC)
    j = gbz.to_json(p)
    assert (j["alert_code"], j["timestamp"], j["timestamp_iso"]) == (
        0x810E,
        GBZ_2015,
        "2015-01-01T00:00:00Z",
    )


def test_future_dated_outcome_alert_body() -> None:
    name = "GCS01a_1.1.1_8F66_FUTURE_DATED_BLOCK_SUCCESS_ALERT_PUBLISH_CALENDAR_GBCS.HEX"
    payload, alert, base = _vector(name)
    assert payload.hex().upper() == "0109018F66388188900E006B00000000000003ED07070900"
    p = gbz.decode(payload, alert, base)
    assert p.alert_code == 0x8F66
    assert p.timestamp == 0x38818890
    assert p.components == ()
    assert p.alert_body == FutureDatedOutcome(
        message_code=0x006B, originator_counter=0x3ED, cluster_id=0x0707, frame_control=0x09,
        command_id=0x00,
    )  # fmt: skip
    assert gbz.to_json(p)["alert_body"]["cluster_name"] == "calendar"


def test_firmware_receipt_alert_body() -> None:
    payload, alert, base = _vector("FDRA-ZigBee_NA_8F72_ALERT_GBCS.HEX")
    p = gbz.decode(payload, alert, base)
    assert (p.alert_code, p.timestamp) == (0x8F72, GBZ_2015)
    assert p.alert_body == FirmwareReceipt(b"\xa1" * 32)
    assert payload[9:11] == b"\x09\x20"


def test_meter_integrity_warning_body() -> None:
    """Layout of the full RTDS MIIWA-ZigBee vector (not in the shared subset)."""
    payload = bytes.fromhex("01090181A01C374A800005")
    p = gbz.decode(payload, True)
    assert p.alert_body == IntegrityWarning(5)
    assert gbz.encode(p) == payload


def test_generic_critical_alert_layout() -> None:
    """GCA-ZigBee 0x8F30 of the full RTDS: count 0, no body."""
    p = gbz.decode(bytes.fromhex("0109008F301C374A80"), True)
    assert (p.alert_code, p.components, p.alert_body) == (0x8F30, (), None)


def test_encrypted_component_in_alert() -> None:
    payload, alert, base = _vector("GCS53_NA_8F0A_ALERT_GBCS.HEX")
    p = gbz.decode(payload, alert, base)
    assert (p.alert_code, p.timestamp) == (0x8F0A, GBZ_2015)
    (c,) = p.components
    assert (c.control, c.cluster_id, c.cluster_name) == (0x03, 0x0702, "metering")
    f = c.frame
    assert isinstance(f, EncryptedFrame)
    assert (f.additional_header_control, f.additional_frame_counter) == (0, 0)
    assert (f.frame_control, f.sequence, f.command_id) == (0x19, 0x00, 0x06)
    # 9 header bytes, 5 component header, 7 encrypted header: the block is the rest.
    assert payload[12:14] == b"\x00\x60"  # component length 96 = 7 + 89
    assert payload[19:21] == b"\x00\x59"  # ciphered length 89 = 5 + 72 + 12
    assert f.ciphered_length == 89 == 5 + len(f.ciphertext) + 12
    assert f.block == payload[21:110] and len(payload) == 110
    assert f.block[:5] == b"\x31\x00\x00\x00\x00"
    assert f.tag == payload[98:110]


def test_encrypted_read_attributes_response_with_plaintext_view() -> None:
    """Plaintext computed once with the CRIB §3.5 key derivation and the RTDS keystore."""
    payload, alert, base = _vector("GCS13a_4.1.1_SUCCESS_RELIABLE_GSME_RESPONSE_GBCS.HEX")
    p = gbz.decode(payload, alert, base)
    (c,) = p.components
    f = c.frame
    assert isinstance(f, EncryptedFrame)
    assert payload[6:8] == b"\x00\x35"  # component length 53 = 7 + 46
    assert (f.frame_control, f.command_id, f.ciphered_length) == (0x18, 0x01, 0x2E)
    assert len(f.ciphertext) == 0x2E - 17
    plaintext = bytes.fromhex("02030022E8030001030022010000000300300100000025393000000000")
    assert len(plaintext) == len(f.ciphertext)
    view = gbz.zcl_view(c.cluster_id, gbz.decrypted_frame(f, plaintext))
    assert view == ReadAttributesResponse((
        AttributeRecord(0x0302, 0, ZclValue(0x22, 1000)),  # divisor
        AttributeRecord(0x0301, 0, ZclValue(0x22, 1)),  # multiplier
        AttributeRecord(0x0300, 0, ZclValue(0x30, 1)),  # unit of measure
        AttributeRecord(0x0000, 0, ZclValue(0x25, 12345)),  # current summation delivered
    ))  # fmt: skip
    j = gbz.to_json(p, plaintexts={0: plaintext})["components"][0]
    assert j["plaintext"] == plaintext.hex().upper()
    assert j["zcl"]["records"][3]["value"] == 12345
    assert gbz.from_json(_strict_json(gbz.to_json(p, {0: plaintext}))) == p


def test_read_attributes_response_with_failed_record() -> None:
    payload, alert, base = _vector("GCS21m_6.2.4_ERROR_RESPONSE_GBCS.HEX")
    c = gbz.decode(payload, alert, base).components[0]
    assert c.cluster_name == "basic"
    assert isinstance(c.frame, ZclFrame)
    assert gbz.zcl_view(c.cluster_id, c.frame) == ReadAttributesResponse((
        AttributeRecord(0x0004, 0xC0, None),
        AttributeRecord(0x0005, 0, ZclValue(0x42, "12345678")),
    ))  # fmt: skip
    record = gbz.to_json(gbz.decode(payload, alert, base))["components"][0]["zcl"]["records"][0]
    assert record["status_name"] == "hardware failure"


def test_from_date_time_component() -> None:
    payload, alert, base = _vector("GCS05_2.1_CANCELLATION_SUCCESS_COMMAND_GBCS.HEX")
    c = gbz.decode(payload, alert, base).components[2]
    assert (c.control, c.cluster_id, c.from_date_time) == (0x10, 0x0705, 0xFFFFFFFF)
    assert c.frame == ZclFrame(0x01, 2, 0x09, bytes.fromhex("404B4C00"))
    assert gbz.zcl_view(c.cluster_id, c.frame) == ClusterCommand(
        0x0705, 0x09, False, bytes.fromhex("404B4C00")
    )


# --------------------------------------------------------------------------
# Decode errors
# --------------------------------------------------------------------------

PLAIN = bytes.fromhex("0109010107020005010000ABCD")


def _error(payload: bytes, alert: bool = False, base: int = 100) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        gbz.decode(payload, alert, base)
    assert info.value.layer == "gbz"
    return info.value


def test_plain_example_decodes() -> None:
    p = gbz.decode(PLAIN, False)
    assert p == GbzPayload((GbzComponent(1, 0x0702, ZclFrame(1, 0, 0, b"\xab\xcd")),))


@pytest.mark.parametrize(
    ("payload", "field", "offset"),
    [
        (b"", "profile id", 100),
        (bytes.fromhex("0104") + PLAIN[2:], "profile id", 100),
        (PLAIN + b"\x00", "trailing bytes", 113),
        (PLAIN[:2] + b"\x02" + PLAIN[3:], "component 0 control", 103),  # count mismatch
        (PLAIN[:2] + b"\x00" + PLAIN[3:], "trailing bytes", 103),
        (PLAIN[:3] + b"\x00" + PLAIN[4:], "component 0 control", 103),  # last bit missing
        (PLAIN[:6] + b"\x00\x06" + PLAIN[8:], "component 0 body", 108),  # length too long
        (PLAIN[:6] + b"\x00\x02" + PLAIN[8:10], "component 0 ZCL header", 108),
        (PLAIN[:3] + b"\x11" + PLAIN[4:6] + b"\x00\x03" + b"\x00" * 3, "component 0 from", 108),
    ],
)
def test_framing_errors(payload: bytes, field: str, offset: int) -> None:
    err = _error(payload)
    assert err.field.startswith(field)
    assert err.offset == offset


def _encrypted(ciphered_length: int, block: bytes) -> bytes:
    body = b"\x00\x00\x18\x00\x01" + ciphered_length.to_bytes(2, "big") + block
    return b"\x01\x09\x01\x03\x07\x02" + len(body).to_bytes(2, "big") + body


BLOCK = b"\x31\x00\x00\x00\x00" + b"\x11" * 3 + b"\x22" * 12


def test_encrypted_component_checks() -> None:
    assert gbz.decode(_encrypted(len(BLOCK), BLOCK), False).components[0].frame == EncryptedFrame(
        0x18, 0, 1, BLOCK
    )
    assert _error(_encrypted(len(BLOCK) + 1, BLOCK)).field == "component 0 ciphered length"
    assert _error(_encrypted(len(BLOCK) - 1, BLOCK)).offset == 100 + 13
    assert _error(_encrypted(16, BLOCK[:16])).reason.startswith("16 is shorter")
    assert _error(_encrypted(len(BLOCK), b"\x30" + BLOCK[1:])).offset == 100 + 15
    assert _error(_encrypted(len(BLOCK), BLOCK[:1] + b"\x01" + BLOCK[2:])).field.endswith(
        "invocation counter"
    )
    manufacturer = bytearray(_encrypted(len(BLOCK), BLOCK))
    manufacturer[10] |= 0x04
    assert _error(bytes(manufacturer)).offset == 110


def test_special_alert_errors() -> None:
    assert _error(bytes.fromhex("0109028F72") + bytes(4), True).field == "component count"
    bad_tag = bytes.fromhex("0109018F72") + bytes(4) + b"\x04\x20" + bytes(32)
    assert _error(bad_tag, True).field == "image hash tag"
    bad_len = bytes.fromhex("0109018F66") + bytes(4) + b"\x0d" + bytes(14)
    assert _error(bad_len, True).field == "future-dated outcome length"


def test_alert_flag_changes_the_layout() -> None:
    payload, _, _ = _vector("GNCA-ZigBee_NA_810E_ALERT_GBCS.HEX")
    assert _error(payload, False).field == "trailing bytes"


def test_manufacturer_specific_plain_frame() -> None:
    payload = bytes.fromhex("01090101070200070534120700AABB")
    (c,) = gbz.decode(payload, False).components
    assert c.frame == ZclFrame(0x05, 7, 0, b"\xaa\xbb", 0x1234)
    assert gbz.encode(gbz.decode(payload, False)) == payload
    assert _error(payload[:6] + b"\x00\x04" + payload[8:12]).field == "component 0 ZCL header"


# --------------------------------------------------------------------------
# Encode and JSON errors
# --------------------------------------------------------------------------


def _plain(control: int = 1, **frame: Any) -> GbzComponent:
    return GbzComponent(control, 0x0702, ZclFrame(**{"frame_control": 1, "sequence": 0,
                                                     "command_id": 0, **frame}))  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (GbzPayload((_plain(0),)), "components[0].control: last-component bit"),
        (GbzPayload((_plain(3),)), "components[0].control: plain frame"),
        (GbzPayload((_plain(0x11),)), "components[0].from_date_time"),
        (GbzPayload((_plain(frame_control=5),)), "components[0].manufacturer_code"),
        (GbzPayload((_plain(sequence=256),)), "components[0].sequence"),
        (GbzPayload((_plain(payload="AB"),)), "components[0].payload"),
        (GbzPayload((), 0x8F66, None), "alert_code/timestamp"),
        (GbzPayload((), 0x810E, 0, FirmwareReceipt(bytes(32))), "alert_body"),
        (GbzPayload((), 0x8F72, 0, FirmwareReceipt(bytes(31))), "image_hash"),
        (GbzPayload((_plain(),), 0x8F72, 0), "components: alert 0x8F72"),
        (GbzPayload((), None, None, IntegrityWarning(1)), "alert_body: needs"),
        (GbzPayload((*(_plain(0) for _ in range(255)), _plain())), "components: 256"),
    ],
)
def test_encode_errors(payload: GbzPayload, message: str) -> None:
    with pytest.raises(EncodeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        gbz.encode(payload)


def test_encrypted_frame_encode_errors() -> None:
    with pytest.raises(EncodeError, match="block"):
        gbz.encode(GbzPayload((GbzComponent(3, 0x0702, EncryptedFrame(0x18, 0, 1, b"\x31")),)))
    with pytest.raises(EncodeError, match="control: encrypted frame"):
        gbz.encode(GbzPayload((GbzComponent(1, 0x0702, EncryptedFrame(0x18, 0, 1, BLOCK)),)))


def test_from_json_errors_name_the_field() -> None:
    good = gbz.to_json(gbz.decode(_encrypted(len(BLOCK), BLOCK), False))
    cases: list[tuple[Any, str]] = [
        (None, "payload"),
        ({**good, "components": {}}, "components"),
        ({**good, "components": [{**good["components"][0], "block": "XYZ"}]}, "block"),
        ({**good, "components": [{**good["components"][0], "control": True}]}, "control"),
        ({**good, "components": [{**good["components"][0], "cluster": -1}]}, "cluster"),
        ({**good, "components": [{k: v for k, v in good["components"][0].items()
                                  if k != "sequence"}]}, "components[0].sequence: missing"),
        ({**good, "alert_code": 0x8F66, "timestamp": "now"}, "timestamp"),
        ({**good, "alert_body": {"reason": 1}}, "alert_body: needs an alert_code"),
    ]  # fmt: skip
    for obj, field in cases:
        with pytest.raises(EncodeError) as info:
            gbz.from_json(obj)
        assert field in str(info.value)
    assert gbz.from_json(good) == gbz.decode(_encrypted(len(BLOCK), BLOCK), False)


def test_from_json_rejects_unknown_and_missing_keys() -> None:
    """A renamed key must not encode as an emptied payload (audit: components -> component)."""
    good = gbz.to_json(gbz.decode(_encrypted(len(BLOCK), BLOCK), False))
    renamed = {k: v for k, v in good.items() if k != "components"}
    cases: list[tuple[Any, str]] = [
        ({**renamed, "component": good["components"]}, "payload: unknown keys ['component']"),
        (renamed, "payload.components: missing"),
        ({**good, "components": [{**good["components"][0], "blok": "00"}]},
         "components[0]: unknown keys ['blok']"),
        ({**good, "alert_code": 0x8F66, "timestamp": 0, "components": [],
          "alert_body": {"reason": 1, "reson": 2}}, "alert_body: unknown keys ['reson']"),
    ]  # fmt: skip
    for obj, message in cases:
        with pytest.raises(EncodeError) as info:
            gbz.from_json(obj)
        assert message in str(info.value)


def _views_cases() -> list[tuple[str, Any, str]]:
    """(what, edit of a fresh to_json tree, the error) for edits of names and views."""

    def comp(j: Any, i: int = 0) -> Any:
        return j["components"][i]

    return [
        ("zcl value", lambda j: comp(j)["zcl"]["attributes"].__setitem__(0, 5),
         "components[0].zcl.attributes[0]: 5 is not what the fields make (0)"),
        ("zcl kind", lambda j: comp(j)["zcl"].__setitem__("kind", "default response"),
         "components[0].zcl.kind: 'default response' is not what the fields make"),
        ("cluster name", lambda j: comp(j).__setitem__("cluster_name", "price"),
         "components[0].cluster_name: 'price' is not what the fields make ('metering')"),
        ("last", lambda j: comp(j, 1).__setitem__("last", False),
         "components[1].last: False is not what the fields make (True)"),
        ("count", lambda j: j.__setitem__("component_count", 3),
         "payload.component_count: 3 is not what the fields make (2)"),
        ("profile", lambda j: j.__setitem__("profile_id", 0x0104), "payload.profile_id: 260"),
        ("timestamp without an alert", lambda j: j.__setitem__("timestamp", 7),
         "payload.timestamp: does not apply here"),
        ("block on a plain frame", lambda j: comp(j).__setitem__("block", "00"),
         "components[0].block: does not apply here"),
        ("payload on an encrypted one", lambda j: comp(j, 1).__setitem__("payload", "00"),
         "components[1].payload: does not apply here"),
        ("manufacturer on an encrypted one",
         lambda j: comp(j, 1).__setitem__("manufacturer_code", 5),
         "components[1].manufacturer_code: does not apply here"),
        ("ciphered length", lambda j: comp(j, 1).__setitem__("ciphered_length", 10),
         f"components[1].ciphered_length: 10 is not what the fields make ({len(BLOCK)})"),
    ]  # fmt: skip


@pytest.mark.parametrize(("what", "edit", "error"), _views_cases(), ids=lambda c: str(c)[:30])
def test_from_json_refuses_views_the_fields_do_not_make(what: str, edit: Any, error: str) -> None:
    """Names and views were ignored: an edit of the ZCL view encoded (and was re-signed)
    as the unchanged message (codec audit F3)."""
    p = GbzPayload.build([
        GbzComponent.build(0x0702, ZclFrame(0x00, 5, 0x00, b"\x00\x00"), last=False),
        GbzComponent.build(0x0702, EncryptedFrame(0x18, 0, 1, BLOCK)),
    ])  # fmt: skip
    good = _strict_json(gbz.to_json(p))
    assert gbz.from_json(good) == p
    edited = _strict_json(good)
    edit(edited)
    with pytest.raises(EncodeError) as info:
        gbz.from_json(edited)
    assert error in str(info.value), what


def test_from_json_views_may_be_left_out_or_null() -> None:
    p = GbzPayload.build([
        GbzComponent.build(0x0702, ZclFrame(0x00, 5, 0x00, b"\x00\x00"), last=False),
        GbzComponent.build(0x0702, EncryptedFrame(0x18, 0, 1, BLOCK)),
    ])  # fmt: skip
    raw = _strict_json(gbz.to_json(p))
    for key in ("profile_id", "component_count", "timestamp_iso"):
        del raw[key]
    for item in raw["components"]:
        for key in ("last", "encrypted", "cluster_name", "zcl", "ciphered_length"):
            item.pop(key, None)
    raw["components"][1]["manufacturer_code"] = None  # claims nothing
    assert gbz.from_json(raw) == p
    raw["components"][0]["payload"] = "0100"  # the raw field is the edit
    edited = gbz.from_json(raw)
    assert gbz.to_json(edited)["components"][0]["zcl"]["attributes"] == [1]


def test_from_json_refuses_alert_body_views_the_fields_do_not_make() -> None:
    body = FutureDatedOutcome(0x006B, 0x3ED, 0x0707, 0x09, 0x00)
    p = GbzPayload((), 0x8F66, 0x38818890, body)
    good = _strict_json(gbz.to_json(p))
    assert gbz.from_json(good) == p
    for key, value, error in (
        ("cluster_name", "price", "alert_body.cluster_name: 'price' is not what the fields make"),
        ("kind", "firmware receipt", "alert_body.kind: 'firmware receipt' is not what"),
        ("image_hash", "00", "alert_body.image_hash: does not apply here"),  # another kind's
    ):
        edited = _strict_json(good)
        edited["alert_body"][key] = value
        with pytest.raises(EncodeError, match=re.escape(error)):
            gbz.from_json(edited)
    edited = _strict_json(good)
    edited["timestamp_iso"] = "2000-01-01T00:00:00Z"
    with pytest.raises(EncodeError, match=r"payload\.timestamp_iso: '2000-01-01T00:00:00Z'"):
        gbz.from_json(edited)


def test_build_helpers_set_the_control_bits() -> None:
    frame = ZclFrame(0x01, 5, 0x00)
    p = GbzPayload.build([
        GbzComponent.build(0x0705, frame, from_date_time=0),
        GbzComponent.build(0x0702, EncryptedFrame(0x18, 0, 1, BLOCK), last=False),
    ])  # fmt: skip
    assert [c.control for c in p.components] == [0x10, 0x03]
    assert gbz.decode(gbz.encode(p), False) == p


# --------------------------------------------------------------------------
# ZCL view
# --------------------------------------------------------------------------


def _zcl_json(frame: ZclFrame, cluster: int = 0x0702) -> Any:
    """The view as to_json shows it, through strict JSON text."""
    p = GbzPayload.build([GbzComponent.build(cluster, frame)])
    return _strict_json(gbz.to_json(p))["components"][0]["zcl"]


def _view(command: int, payload: bytes, fc: int = 0x08) -> gbz.ZclView:
    return gbz.zcl_view(0x0702, ZclFrame(fc, 0, command, payload))


def test_view_general_commands() -> None:
    assert _view(0x00, bytes.fromhex("00000103")) == ReadAttributes((0x0000, 0x0301))
    assert isinstance(_view(0x00, b"\x00"), Undecoded)
    assert _view(0x0B, b"\x06\x00") == DefaultResponse(0x06, 0)
    assert isinstance(_view(0x0B, b"\x06"), Undecoded)
    assert _view(0x02, bytes.fromhex("01032007")) == WriteAttributes(
        0x02, (AttributeRecord(0x0301, 0, ZclValue(0x20, 7)),)
    )
    assert _view(0x04, b"\x00") == WriteAttributesResponse(((0, None),))
    assert _view(0x04, bytes.fromhex("860103")) == WriteAttributesResponse(((0x86, 0x0301),))
    assert _view(0x06, b"") == Undecoded("configure reporting (0x06) is not decoded by this view")
    assert _view(0x01, b"", fc=0x02) == Undecoded("reserved ZCL frame type 2")
    assert gbz.zcl_view(0x0000, ZclFrame(0x19, 0, 0x07, b"\x01")) == ClusterCommand(
        0x0000, 0x07, True, b"\x01"
    )


def _value(data_type: int, raw: bytes) -> ZclValue | Undecoded:
    view = _view(0x01, b"\x00\x00\x00" + bytes((data_type,)) + raw)
    if isinstance(view, Undecoded):
        return view
    assert isinstance(view, ReadAttributesResponse)
    (record,) = view.records
    assert record.value is not None
    return record.value


@pytest.mark.parametrize(
    ("data_type", "raw", "value"),
    [
        (0x10, b"\x01", True),
        (0x10, b"\xff", 0xFF),
        (0x09, b"\x01\x02", b"\x01\x02"),
        (0x19, b"\x01\x80", 0x8001),
        (0x25, bytes.fromhex("393000000000"), 12345),
        (0x2A, b"\xfe\xff\xff", -2),
        (0x31, b"\x01\x00", 1),
        (0x38, b"\x00\x3c", 1.0),
        (0x39, bytes.fromhex("0000c03f"), 1.5),
        (0x3A, bytes.fromhex("000000000000f0bf"), -1.0),
        (0x41, b"\x02\xab\xcd", b"\xab\xcd"),
        (0x41, b"\xff", None),
        (0x42, b"\x02hi", "hi"),
        (0x42, b"\x01\xff", b"\xff"),
        (0x43, b"\x01\x00\xab", b"\xab"),
        (0x44, b"\xff\xff", None),
        (0xE0, bytes((12, 30, 0, 0)), (12, 30, 0, 0)),
        (0xE2, GBZ_2015.to_bytes(4, "little"), GBZ_2015),
        (0xE8, b"\x02\x07", 0x0702),
        (0xF0, bytes.fromhex("A09078563412DB00"), 0x00DB1234567890A0),
        (0xF1, bytes(range(16)), bytes(range(16))),
    ],
)
def test_view_data_types(data_type: int, raw: bytes, value: Any) -> None:
    assert _value(data_type, raw) == ZclValue(data_type, value)
    record = _zcl_json(ZclFrame(0x08, 0, 0x01, b"\x00\x00\x00" + bytes((data_type,)) + raw))
    assert record["records"][0]["type"] == data_type


def test_view_collections() -> None:
    array = _value(0x48, bytes.fromhex("21020001000200"))
    assert array == ZclValue(0x48, (ZclValue(0x21, 1), ZclValue(0x21, 2)), 0x21)
    struct_ = _value(0x4C, bytes.fromhex("02002005420141"))
    assert struct_ == ZclValue(0x4C, (ZclValue(0x20, 5), ZclValue(0x42, "A")))
    assert _value(0x48, bytes.fromhex("20FFFF")) == ZclValue(0x48, None, 0x20)
    assert isinstance(_value(0x48, bytes.fromhex("00FEFF")), Undecoded)  # of nodata
    assert isinstance(_value(0x48, bytes.fromhex("20050001")), Undecoded)
    assert isinstance(_value(0x77, b""), Undecoded)
    nested = bytes.fromhex("480100") * 50 + bytes.fromhex("200000")
    assert _value(0x48, nested) == Undecoded("array nested deeper than 8", 28)
    nan = ZclFrame(0x08, 0, 0x01, bytes.fromhex("000000390000C07F"))
    assert _zcl_json(nan)["records"][0]["value"] == "nan"
    assert (
        _zcl_json(ZclFrame(0x08, 0, 0x01, bytes.fromhex("000000F0") + bytes(8)))["records"][0][
            "value"
        ]
        == "0000000000000000"
    )


# --------------------------------------------------------------------------
# Generated inputs
# --------------------------------------------------------------------------

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)

zcl_frames = st.builds(
    lambda fc, seq, cmd, payload, mc: ZclFrame(fc, seq, cmd, payload, mc if fc & 4 else None),
    u8, u8, u8, st.binary(max_size=40), u16,
)  # fmt: skip
encrypted_frames = st.builds(
    lambda fc, seq, cmd, body, ahc, afc: EncryptedFrame(
        fc & ~4, seq, cmd, b"\x31\x00\x00\x00\x00" + body, ahc, afc
    ),
    u8, u8, u8, st.binary(min_size=12, max_size=60), u8, u8,
)  # fmt: skip


@st.composite
def components(draw: st.DrawFn) -> GbzComponent:
    frame = draw(st.one_of(zcl_frames, encrypted_frames))
    fdt = draw(st.none() | u32)
    control = draw(u8) & ~0x13
    control |= 0x02 if isinstance(frame, EncryptedFrame) else 0
    control |= 0x10 if fdt is not None else 0
    return GbzComponent(control, draw(u16), frame, fdt)


@st.composite
def payloads(draw: st.DrawFn) -> GbzPayload:
    kind = draw(st.sampled_from(["plain", "alert", "special", "special-empty"]))
    if kind.startswith("special"):
        code = draw(st.sampled_from(sorted(gbz.SPECIAL_ALERTS)))
        body = None
        if kind == "special":
            if code in gbz.FUTURE_DATED_ALERTS:
                body = draw(st.builds(FutureDatedOutcome, u16, st.integers(0, 2**64 - 1), u16,
                                      u8, u8))  # fmt: skip
            elif code in gbz.FIRMWARE_RECEIPT_ALERTS:
                body = FirmwareReceipt(draw(st.binary(min_size=32, max_size=32)))
            else:
                body = IntegrityWarning(draw(u16))
        return GbzPayload((), code, draw(u32), body)
    items = draw(st.lists(components(), max_size=5))
    if kind == "alert":
        code = draw(u16.filter(lambda c: c not in gbz.SPECIAL_ALERTS))
        return GbzPayload.build(items, code, draw(u32))
    return GbzPayload.build(items)


@settings(max_examples=300)
@given(payloads())
def test_generated_payloads_round_trip(p: GbzPayload) -> None:
    data = gbz.encode(p)
    assert gbz.decode(data, p.is_alert) == p
    assert gbz.from_json(_strict_json(gbz.to_json(p))) == p


def _check_bytes(data: bytes, alert: bool) -> None:
    try:
        p = gbz.decode(data, alert, 7)
    except DecodeError as exc:
        assert exc.layer == "gbz"
        assert 7 <= exc.offset <= 7 + len(data)
        return
    assert gbz.encode(p) == data
    assert gbz.from_json(_strict_json(gbz.to_json(p))) == p


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=64), st.binary(max_size=120).map(b"\x01\x09".__add__)),
       st.booleans())  # fmt: skip
def test_arbitrary_bytes_decode_or_round_trip(data: bytes, alert: bool) -> None:
    _check_bytes(data, alert)


@pytest.mark.skipif(not GBZ_PAYLOADS, reason=SKIP_REASON)
@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_rtds_payloads_decode_or_round_trip(data: st.DataObject) -> None:
    payload, alert, _ = data.draw(st.sampled_from(GBZ_PAYLOADS))
    raw = bytearray(payload)
    for _ in range(data.draw(st.integers(1, 3))):
        raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(u8)
    flip = data.draw(st.booleans())  # the wrong alert flag must fail cleanly too
    _check_bytes(bytes(raw), alert != flip)


@settings(max_examples=500)
@given(u16, u8, u8, st.binary(max_size=80))
def test_zcl_view_never_raises(cluster: int, fc: int, command: int, payload: bytes) -> None:
    frame = ZclFrame(fc & ~4, 0, command % 16, payload)
    assert isinstance(_zcl_json(frame, cluster), dict)


def _outcome(decoder: Any, data: bytes, alert: bool) -> Any:
    try:
        return decoder(data, alert, 11)
    except DecodeError as exc:
        return exc.as_dict()


@pytest.mark.skipif(not GBZ_PAYLOADS, reason=SKIP_REASON)
def test_fast_path_agrees_with_the_checked_decoder() -> None:
    """decode's one-loop fast path and the field-by-field reader give the same value or
    the same error, for every truncation and for random byte changes of every payload."""
    rng = random.Random(0x6B2)
    for payload, alert, _ in GBZ_PAYLOADS:
        cases = [payload[:n] for n in range(len(payload) + 1)] + [payload + b"\x00"]
        for _ in range(20):
            raw = bytearray(payload)
            for _ in range(rng.randint(1, 3)):
                raw[rng.randrange(len(raw))] = rng.randrange(256)
            cases.append(bytes(raw))
        for data in cases:
            for flag in (alert, not alert):
                fast = _outcome(gbz.decode, data, flag)
                assert fast == _outcome(gbz._decode_checked, data, flag), data.hex()
                if isinstance(fast, GbzPayload):
                    assert all(type(c) is GbzComponent for c in fast.components)


@pytest.mark.parametrize(
    ("stem", "status"),
    [("CS10a_6.13_ERROR", gbz.ZCL_HARDWARE_FAILURE), ("CS10a_6.13_NOT_FOUND", gbz.ZCL_NOT_FOUND)],
)
def test_default_response_is_the_rtds_gbz_error_form(stem: str, status: int) -> None:
    """CRIB §5.3: a GBZ command that fails is answered commandId ‖ status, from the server."""
    command, _, _ = _vector(f"{stem}_COMMAND_GBCS.HEX")
    expected, _, _ = _vector(f"{stem}_RESPONSE_GBCS.HEX")
    (component,) = gbz.decode(command, alert=False).components
    assert isinstance(component.frame, ZclFrame)
    made = gbz.default_response(component.cluster_id, component.frame, status)
    assert made.encode() == expected
    view = gbz.zcl_view(0x0709, made.components[0].frame)  # type: ignore[arg-type]
    assert view == gbz.DefaultResponse(component.frame.command_id, status)


def test_default_response_to_a_server_frame_goes_client_to_server() -> None:
    answered = ZclFrame(0x19, 0x42, 0x01, b"\x00")
    (component,) = gbz.default_response(0x0709, answered, gbz.ZCL_MALFORMED_COMMAND).components
    assert component.frame == ZclFrame(0x00, 0x42, 0x0B, b"\x01\x80")
    with pytest.raises(EncodeError, match="status"):
        gbz.default_response(0x0709, answered, 0x100)
