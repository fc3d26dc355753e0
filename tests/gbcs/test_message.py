"""Whole-message decoding over the reference corpus, and the JSON form both ways."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from pathlib import Path

import pytest

from gbcs.catalogue import CATALOGUE, Catalogue
from gbcs.errors import DecodeError, EncodeError, GbcsError
from gbcs.keys import FileKeyStore
from gbcs.message import (
    DecodedPayload,
    Inspection,
    encode_payload,
    inspect,
    message_from_json,
    parse_input,
    payload_family,
    roundtrips,
    to_json,
)
from gbcs.rtds import RtdsVector
from gbcs.security import CheckResult, SecurityContext
from tests.conftest import RTDS, corpus_params

PPMID_CODES = {0x009B, 0x0090}


@pytest.fixture(scope="module")
def security() -> SecurityContext:
    if RTDS is None:
        pytest.skip("no RTDS key store")
    return SecurityContext(FileKeyStore(RTDS / "keystore"))


@pytest.mark.parametrize("vector", corpus_params())
def test_reference_message_decodes_verifies_and_roundtrips(
    vector: RtdsVector, security: SecurityContext
) -> None:
    insp = inspect(vector.data, security)
    m = insp.message
    # Every payload decodes and re-encodes from the decoded tree, byte for byte.
    assert encode_payload(insp.payload) == m.payload
    assert roundtrips(insp, vector.data)
    assert insp.payload.family == payload_family(m.payload)
    assert insp.use_case is not None, f"0x{m.message_code:04X} missing from the catalogue"
    # Every MAC and signature verifies, except the device-originated PCS01/PCS02 MACs.
    if m.mac is not None:
        expected = CheckResult.NO_KEY if m.message_code in PPMID_CODES else CheckResult.VALID
        assert insp.mac is expected
    else:
        assert insp.mac is CheckResult.ABSENT
    assert insp.signature is (CheckResult.VALID if m.is_signed else CheckResult.ABSENT)
    # Every protected block decrypts.
    assert all(d.status == "decrypted" for d in insp.decrypted)
    # The JSON form is JSON, and encodes back to the same bytes.
    obj = json.loads(json.dumps(to_json(insp)))
    assert message_from_json(obj).encode() == vector.data
    obj["payload"] = None  # from payload_hex instead of the tree
    assert message_from_json(obj).encode() == vector.data


def test_corpus_totals(corpus: list[RtdsVector], security: SecurityContext) -> None:
    """The CRIB §10 figures for this subset: all MACs and signatures, all blocks."""
    macs = sigs = blocks = 0
    for vector in corpus:
        insp = inspect(vector.data, security)
        macs += insp.mac is CheckResult.VALID
        sigs += insp.signature is CheckResult.VALID
        blocks += sum(d.status == "decrypted" for d in insp.decrypted)
    assert (len(corpus), macs, sigs) == (766, 438, 336)
    assert blocks >= 20


def test_decrypted_block_content(corpus: list[RtdsVector], security: SecurityContext) -> None:
    vector = next(v for v in corpus if v.name == "ECS17b_4.1.1_SINGLE_SUCCESS_RESPONSE_GBCS.HEX")
    (block,) = inspect(vector.data, security).decrypted
    assert block.plaintext.hex() == "02010204060000000a02020f00161e060000000a02020f001620"


def test_without_keys_checks_say_no_key(corpus: list[RtdsVector]) -> None:
    vector = next(v for v in corpus if v.kind == "COMMAND")
    insp = inspect(vector.data)
    assert insp.mac is CheckResult.NO_KEY
    assert all(d.status == "no-key" for d in insp.decrypted)


def test_disconnect_code_follows_the_catalogue() -> None:
    from gbcs.examples import build_example

    wire = build_example("disconnect")
    assert inspect(wire).use_case.use_case == "CS02f-SECMP0013"
    moved = Catalogue(0x7F10)
    with pytest.raises(DecodeError, match=r"no ASN\.1 payload type"):
        inspect(wire, catalogue=moved)
    with pytest.raises(GbcsError, match="already GBCS CCS07"):
        Catalogue(0x00FE)
    assert CATALOGUE.disconnect_code == 0x7F00


def test_json_errors_name_the_field(corpus: list[RtdsVector]) -> None:
    obj = to_json(inspect(corpus[0].data))
    for key, value, match in [
        ("originator", "00", "originator must be 8 bytes"),
        ("cra_flag", "push", "cra_flag"),
        ("originator_counter", "x", "originator_counter"),
        ("mac_bytes", "zz", "mac_bytes"),
        ("payload_family", "json", "payload_family"),
        ("payload_family", {"dlms": 1}, "payload_family"),  # not a string at all
        ("payload_family", ["asn1"], "payload_family"),
    ]:
        bad = dict(obj, **{key: value})
        with pytest.raises(EncodeError, match=match):
            message_from_json(bad)
    with pytest.raises(EncodeError, match="missing"):
        message_from_json({k: v for k, v in obj.items() if k != "target"})


def test_a_misspelled_key_or_a_contrary_date_time_text_is_refused(
    corpus: list[RtdsVector],
) -> None:
    """A misspelled mac_bytes dropped the MAC, a misspelled other-information member
    turned the 18-byte form into the 10-byte one, and a misspelled date_time dropped it;
    each encoded without a word (codec audit F4)."""
    dated = next(o for v in corpus if (o := to_json(inspect(v.data)))["date_time"] is not None)
    with pytest.raises(EncodeError, match=r"\$: unknown key 'mac_byte'"):
        message_from_json({**dated, "mac_byte": dated["mac_bytes"]})
    other = {**dated["other_information"], "supplementary_counter": 5}
    with pytest.raises(EncodeError, match="other_information: unknown key 'supplementary_counter'"):
        message_from_json({**dated, "other_information": other})
    with pytest.raises(EncodeError, match="unknown key 'date-time'"):
        message_from_json({**dated, "date-time": dated["date_time"]})
    contrary = {**dated["date_time"], "text": "2099-01-01 00:00:00"}
    with pytest.raises(EncodeError, match=r"date_time\.text .* disagrees with its hex"):
        message_from_json({**dated, "date_time": contrary})
    assert message_from_json(dated).encode()  # the form as decoded still encodes


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("$", "date_time"),
        ("$", "other_information"),
        ("$", "mac_bytes"),
        ("$", "signature_bytes"),
        ("$.other_information", "certificate"),
        ("$.other_information", "supplementary_remote_party"),
        ("$.other_information", "supplementary_remote_party_counter"),
        ("$.other_information", "supplementary_originator_counter"),
    ],
)
def test_a_header_field_left_out_is_refused_not_dropped(
    corpus: list[RtdsVector], where: str, key: str
) -> None:
    """Leaving out date_time, other_information (or its certificate) or mac_bytes built
    another message without a word: no Date-Time, no supplementary party, no MAC (audit
    9, readme M2). Every header field is required; null says absent, as decode writes."""
    forms = [to_json(inspect(v.data)) for v in corpus]
    if where == "$":
        full = next(o for o in forms if o["date_time"] is not None and o["mac_bytes"])
    else:
        full = next(o for o in forms if o["other_information"]["certificate"] is not None)
    if where == "$":
        cut = {k: v for k, v in full.items() if k != key}
    else:
        other = {k: v for k, v in full["other_information"].items() if k != key}
        cut = {**full, "other_information": other}
    with pytest.raises(EncodeError, match=rf"^{re.escape(where)}\.{key} is missing$"):
        message_from_json(cut)
    # Given as null it is absent on the wire, as asked.
    if key == "date_time":
        assert message_from_json({**full, key: None}).header.date_time is None
    if key == "mac_bytes":
        assert message_from_json({**full, key: None}).mac is None


def test_null_other_information_is_the_message_code_alone(corpus: list[RtdsVector]) -> None:
    plain = next(
        o
        for v in corpus
        if (o := to_json(inspect(v.data)))["other_information"]["certificate"] is None
        and o["other_information"]["supplementary_remote_party"] is None
    )
    rebuilt = message_from_json({**plain, "other_information": None})
    assert rebuilt.encode() == message_from_json(plain).encode()


def test_parse_input_forms(tmp_path: Path) -> None:
    assert parse_input("DF 09:01") == b"\xdf\x09\x01"
    assert parse_input("0xdf09") == b"\xdf\x09"
    assert parse_input("3wkB") == b"\xdf\x09\x01"
    with pytest.raises(GbcsError, match=r"^input is neither hexadecimal nor base64$"):
        parse_input("not a message!")
    with pytest.raises(GbcsError, match=r"^input is empty$"):
        parse_input("  ")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        # O typed for 0: 16 characters, a multiple of 4, so it is also valid base64.
        ("DDO0000000000081", r"not hexadecimal: 'O' at character 3 \(1 non-hex character\)"),
        ("0011223344556677889g", r"'g' at character 20"),  # mostly hex: a typo, not base64
        ("DF0g", r"'g' at character 4"),  # a GBCS message's first byte in hex
        ("DF0", r"odd number of hexadecimal digits \(3\)"),
    ],
)
def test_hex_with_a_typo_is_reported_not_read_as_base64(text: str, reason: str) -> None:
    if len(text) % 4 == 0 and text != "DF0g":
        base64.b64decode(text, validate=True)  # what the old fallback silently did
    with pytest.raises(GbcsError, match=reason):
        parse_input(text)


def test_base64_still_read() -> None:
    message = bytes.fromhex("DF0901000000000000000000")
    assert parse_input(base64.b64encode(message).decode()) == message


def test_malformed_payload_reports_offset(corpus: list[RtdsVector]) -> None:
    vector = next(v for v in corpus if v.name.startswith("CCS07_8.9_SUCCESS_COMMAND"))
    insp = inspect(vector.data)
    bad = replace(insp.message, payload=insp.message.payload[:-1]).encode()
    with pytest.raises(DecodeError) as info:
        inspect(bad)
    assert info.value.layer in ("dlms", "axdr")
    assert info.value.offset >= insp.parts.payload_offset


def test_inspection_objects_are_the_constructors(corpus: list[RtdsVector]) -> None:
    """inspect() builds its results through twins: the same objects __init__ makes."""
    for vector in corpus[::8]:
        result = inspect(vector.data)
        assert type(result) is Inspection and type(result.payload) is DecodedPayload
        payload = DecodedPayload(result.payload.family, result.payload.value)
        assert result.payload == payload
        rebuilt = Inspection(
            result.message,
            result.parts,
            payload,
            result.use_case,
            result.mac,
            result.signature,
            result.decrypted,
        )
        assert rebuilt == result and repr(rebuilt) == repr(result)
