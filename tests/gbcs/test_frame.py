from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import (
    CraFlag,
    GbcsMessage,
    GroupingHeader,
    OtherInformation,
    _fast_decode,
    decode_message,
    decode_message_careful,
)
from gbcs.rtds import RtdsVector
from tests.conftest import corpus_params
from tests.gbcs.strategies import messages

CCS01_COMMAND = bytes.fromhex(
    "DD000000000000819111000000 00DF09010000000000000516 0890B3D51F30000002"
    "0800DB1234567890A2 00 12000190B3D51F3001000000000000000003EA 4D"
    "D920000516000303006800001E0300FF0102006800001E0300FF0302006800001E0300FF02"
    "03020409080 0DB1234567890A016010910303132333435363738394142434445461600"
    "12005A03FF 00 7C0607034DC39F5F32153966".replace(" ", "")
)


def test_crib_ccs01_header_fields() -> None:
    message, parts = decode_message(CCS01_COMMAND)
    h = message.header
    assert h.cra_flag is CraFlag.COMMAND
    assert h.originator_counter == 0x516
    assert h.business_originator.hex().upper() == "90B3D51F30000002"
    assert h.business_target.hex().upper() == "00DB1234567890A2"
    assert h.other_information == OtherInformation(0x0001, bytes.fromhex("90B3D51F30010000"), 0x3EA)
    assert message.signature == b""
    assert message.mac.hex() == "7c0607034dc39f5f32153966"
    assert len(message.payload) == 77 and message.payload[0] == 0xD9
    assert parts.payload_offset == CCS01_COMMAND.index(message.payload)
    assert message.encode() == CCS01_COMMAND


@pytest.mark.parametrize("vector", corpus_params())
def test_every_reference_frame_roundtrips(vector: RtdsVector) -> None:
    message, parts = decode_message(vector.data)
    assert message.encode() == vector.data
    assert message.signing_parts() == parts
    assert decode_message_careful(vector.data) == (message, parts)
    kind = vector.kind
    if kind == "PRECOMMAND":
        assert message.is_precommand and message.mac is None
    elif kind == "RESPONSE":
        assert message.cra_flag is CraFlag.RESPONSE
    elif kind == "ALERT":
        assert message.cra_flag is CraFlag.ALERT


@given(messages)
def test_frame_roundtrip(message: GbcsMessage) -> None:
    wire = message.encode()
    decoded, parts = decode_message(wire)
    assert decoded == message
    assert decoded.encode() == wire
    assert parts.signing_apdu[1 : parts.signed_end] == message.signed_data()


@given(messages)
def test_fast_path_agrees_with_careful_decoder(message: GbcsMessage) -> None:
    wire = message.encode()
    fast = _fast_decode(wire)
    assert fast is None or fast == decode_message_careful(wire)


@given(st.binary(max_size=200))
def test_fast_path_never_accepts_what_careful_rejects(data: bytes) -> None:
    fast = _fast_decode(b"\xdf" + data)
    if fast is not None:
        assert decode_message_careful(b"\xdf" + data) == fast


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise(data: bytes) -> None:
    try:
        message, _ = decode_message(data)
    except DecodeError:
        return
    assert message.encode() == data


def test_truncation_at_every_offset() -> None:
    for cut in range(len(CCS01_COMMAND)):
        with pytest.raises(DecodeError):
            decode_message(CCS01_COMMAND[:cut])


def test_trailing_byte_rejected() -> None:
    with pytest.raises(DecodeError, match="ciphered-service length"):
        decode_message(CCS01_COMMAND + b"\x00")
    unwrapped = CCS01_COMMAND[14:-12]
    with pytest.raises(DecodeError, match="trailing") as info:
        decode_message(unwrapped + b"\x00\x00")
    assert info.value.offset == len(unwrapped)


@pytest.mark.parametrize(
    ("offset", "value", "field"),
    [
        (0, 0xAA, "tag"),
        (1, 0x09, "GBT routing header"),
        (5, 1, "other-information length"),
        (12, 0x01, "invocation counter"),
        (9, 0x10, "security control"),
        (14, 0xDE, "general-signing tag"),
        (15, 0x08, "transaction-id length"),
        (16, 0x07, "CRA flag"),
        (43, 0x05, "date-time length"),
    ],
)
def test_bad_header_bytes_named(offset: int, value: int, field: str) -> None:
    data = bytearray(CCS01_COMMAND)
    data[offset] = value
    with pytest.raises(DecodeError) as info:
        decode_message(bytes(data))
    assert field in str(info.value)
    assert info.value.layer == "frame"


def test_encode_rejects_bad_values() -> None:
    header = GroupingHeader(CraFlag.COMMAND, 1, b"\x00" * 8, b"\x01" * 8, OtherInformation(1))
    with pytest.raises(EncodeError):
        GbcsMessage(header, b"", signature=b"\x00" * 10).encode()
    with pytest.raises(EncodeError):
        GbcsMessage(header, b"", mac=b"\x00").encode()
    with pytest.raises(EncodeError):
        GroupingHeader(CraFlag.COMMAND, -1, b"\x00" * 8, b"\x01" * 8, OtherInformation(1)).encode()
    with pytest.raises(EncodeError, match="pre-command"):
        GbcsMessage(header, b"", signature=None, mac=b"\x00" * 12).encode()
    with pytest.raises(EncodeError):
        OtherInformation(1, None, 5).encode()
    with pytest.raises(EncodeError):
        OtherInformation(1, b"\x00" * 8, 1, 2, b"cert-bytes").encode()


@pytest.mark.parametrize("vector", corpus_params()[:: max(1, len(corpus_params()) // 12)])
def test_fast_path_on_every_single_byte_mutation(vector: RtdsVector) -> None:
    """Whatever the fast path accepts, the careful decoder accepts identically."""
    for pos in range(len(vector.data)):
        for flip in (0x01, 0x80, 0xFF):
            data = bytearray(vector.data)
            data[pos] ^= flip
            fast = _fast_decode(bytes(data))
            if fast is not None:
                assert decode_message_careful(bytes(data)) == fast
