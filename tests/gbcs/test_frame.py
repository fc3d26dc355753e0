from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import (
    MAC_LENGTH,
    SIGNATURE_LENGTH,
    CraFlag,
    FrameParts,
    GbcsMessage,
    GroupingHeader,
    OtherInformation,
    _encode_parties_checked,
    _fast_decode,
    build_header,
    build_message,
    decode_message,
    decode_message_careful,
    encode_parties,
    mac_header,
    new_alert,
    new_command,
    response_to,
    wrap_mac,
)
from gbcs.primitives import encode_length
from gbcs.rtds import RtdsVector
from tests.conftest import corpus_params
from tests.gbcs.strategies import date_times, headers, ids, messages, u64

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


@given(messages, st.data())
def test_fast_path_never_accepts_what_careful_rejects(
    message: GbcsMessage, data: st.DataObject
) -> None:
    """A valid message with bytes changed, cut or added: random bytes almost never got past
    the fast path's header checks, so its acceptance was never compared (test audit)."""
    wire = bytearray(message.encode())
    for _ in range(data.draw(st.integers(1, 3))):
        at = data.draw(st.integers(0, len(wire) - 1))
        change = data.draw(st.sampled_from(["set", "cut", "insert"]))
        if change == "set":
            wire[at] = data.draw(st.integers(0, 255))
        elif change == "cut" and len(wire) > 1:
            del wire[at]
        else:
            wire.insert(at, data.draw(st.integers(0, 255)))
    fast = _fast_decode(bytes(wire))
    try:
        careful = decode_message_careful(bytes(wire))
    except DecodeError as e:
        if fast is not None:
            raise AssertionError(f"fast path accepted what the careful decoder refuses: {e}") from e
        return
    # Whatever either path accepts writes back the bytes it was given (audit 9, props T2).
    assert careful[0].encode() == bytes(wire)
    if fast is not None:
        event("fast path accepted")
        assert careful == fast


@settings(max_examples=60)
@given(messages, st.binary(min_size=250, max_size=600))
def test_long_payloads_take_the_long_length_forms_both_ways(
    message: GbcsMessage, payload: bytes
) -> None:
    """The generated messages shrink towards short payloads and never reached the 82 xx xx
    ciphered-service length (audit 9, props T2)."""
    long = replace(message, payload=payload)
    wire = long.encode()
    decoded, _ = decode_message(wire)
    assert decoded == long and decoded.encode() == wire


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


# Encoding fast paths against the reference encoder ----------------------------------


def _outcome(f: Any, *args: Any) -> tuple[str, Any]:
    """What a call gives: its value, or its exception's type and message."""
    try:
        return "value", f(*args)
    except Exception as exc:  # the comparison is the point
        return type(exc).__name__, str(exc)


def _reference_parts(message: GbcsMessage) -> FrameParts:
    """GbcsMessage.signing_parts() as it was before the single-pass encoder."""
    header = message.header.encode()
    if message.signature is None and (
        message.mac is not None or message.header.cra_flag is not CraFlag.COMMAND
    ):
        raise EncodeError("only an unwrapped command may be a pre-command (no signature field)")
    if message.signature is not None and len(message.signature) not in (0, SIGNATURE_LENGTH):
        raise EncodeError(
            f"signature must be empty or {SIGNATURE_LENGTH} bytes, got {len(message.signature)}"
        )
    body = b"\xdf" + header + encode_length(len(message.payload))
    payload_start = len(body)
    body += message.payload
    signed_end = len(body)
    if message.signature is not None:
        body += encode_length(len(message.signature)) + message.signature
    prefix = 0 if message.mac is None else 7 + len(encode_length(len(body) + 17)) + 5
    return FrameParts(body, signed_end, prefix + payload_start)


def _reference_encode(message: GbcsMessage) -> bytes:
    apdu = _reference_parts(message).signing_apdu
    if message.mac is None:
        return apdu
    if len(message.mac) != MAC_LENGTH:
        raise EncodeError(f"MAC must be {MAC_LENGTH} bytes, got {len(message.mac)}")
    header = b"\xdd\x00\x00\x00\x00\x00\x00" + encode_length(5 + len(apdu) + MAC_LENGTH)
    return header + b"\x11\x00\x00\x00\x00" + apdu + message.mac


odd_messages = st.builds(
    GbcsMessage,
    header=headers,
    payload=st.binary(max_size=300) | st.binary(max_size=300).map(bytearray) | st.just("text"),
    signature=st.sampled_from([None, b"", bytearray(64)]) | st.binary(min_size=0, max_size=70),
    mac=st.none() | st.binary(min_size=10, max_size=13),
)


@given(messages | odd_messages)
def test_encoding_matches_the_reference_encoder(message: GbcsMessage) -> None:
    """Every encoding method: the same bytes, regions and errors as before."""
    assert _outcome(message.signing_parts) == _outcome(_reference_parts, message)
    assert _outcome(message.encode) == _outcome(_reference_encode, message)
    reference = _outcome(_reference_parts, message)
    if reference[0] == "value":
        parts = reference[1]
        assert message.signed_data() == parts.signing_apdu[1 : parts.signed_end]
        body, signed_end, _ = message.encode_apdu()
        assert (body, signed_end) == (parts.signing_apdu, parts.signed_end)


class _Index:
    def __index__(self) -> int:
        return 2


party_values = st.one_of(
    st.binary(min_size=7, max_size=9),
    st.binary(min_size=8, max_size=8).map(bytearray),
    st.just("12345678"),
)


@given(
    st.one_of(
        st.sampled_from(list(CraFlag)),
        st.integers(-2, 300),
        st.just(1.0),
        st.just("1"),
        st.just(_Index()),
    ),
    st.one_of(u64, st.integers(-3, 2**64 + 3), st.just(True), st.just(2.5)),
    st.one_of(ids, party_values),
    st.one_of(ids, party_values),
)
def test_encode_parties_matches_checked(
    cra: Any, counter: Any, originator: Any, target: Any
) -> None:
    fast = _outcome(encode_parties, cra, counter, originator, target)
    assert fast == _outcome(_encode_parties_checked, cra, counter, originator, target)


@pytest.mark.parametrize("length", [30, 0x7F - 17, 0x80 - 17, 0xFF - 17, 0x100 - 17, 0x1000])
def test_mac_header_and_wrap_mac_every_length_form(length: int) -> None:
    apdu = bytes(range(256)) * (length // 256) + bytes(length % 256)
    mac = bytes(range(12))
    reference = (
        b"\xdd\x00\x00\x00\x00\x00\x00"
        + encode_length(5 + length + MAC_LENGTH)
        + b"\x11\x00\x00\x00\x00"
    )
    assert mac_header(length) == reference
    assert wrap_mac(apdu, mac) == reference + apdu + mac


@given(headers, st.binary(max_size=60), st.sampled_from([None, b"", bytes(64)]))
def test_builders_make_the_constructors_objects(
    header: GroupingHeader, payload: bytes, signature: bytes | None
) -> None:
    h = header
    built = build_header(
        h.cra_flag,
        h.originator_counter,
        h.business_originator,
        h.business_target,
        h.other_information,
        h.date_time,
    )
    assert type(built) is GroupingHeader and built == h and hash(built) == hash(h)
    message = build_message(built, payload, signature, None)
    assert type(message) is GbcsMessage
    assert message == GbcsMessage(h, payload, signature) and repr(message) == repr(
        GbcsMessage(h, payload, signature)
    )
    assert message.with_mac(bytes(12)) == replace(message, mac=bytes(12))
    assert message.with_signature(None) == replace(message, signature=None)


@given(headers, st.binary(max_size=60), st.none() | date_times)
def test_message_builders_match_the_constructors(
    header: GroupingHeader, payload: bytes, date_time: Any
) -> None:
    o = header.other_information
    command = new_command(
        o.message_code,
        payload,
        originator=header.business_originator,
        target=header.business_target,
        counter=header.originator_counter,
    )
    expected_header = GroupingHeader(
        CraFlag.COMMAND,
        header.originator_counter,
        header.business_originator,
        header.business_target,
        OtherInformation(o.message_code),
    )
    assert command == GbcsMessage(expected_header, payload, b"")
    response = response_to(header, payload, date_time=date_time)
    assert response == response_to(GbcsMessage(header, b""), payload, date_time=date_time)
    assert response == GbcsMessage(
        GroupingHeader(
            CraFlag.RESPONSE,
            header.originator_counter,
            header.business_target,
            header.business_originator,
            replace(o, certificate=None),  # a command's certificate is not echoed (RTDS GCS61)
            date_time,
        ),
        payload,
        b"",
    )
    alert = new_alert(
        o.message_code,
        payload,
        originator=header.business_originator,
        target=header.business_target,
        counter=header.originator_counter,
    )
    assert alert == GbcsMessage(replace(expected_header, cra_flag=CraFlag.ALERT), payload, b"")


@dataclass(frozen=True, slots=True)
class _TaggedMessage(GbcsMessage):
    """A subclass: with_mac() and with_signature() keep its type, as replace() did."""


def test_with_mac_keeps_a_subclass() -> None:
    header = GroupingHeader(CraFlag.COMMAND, 1, b"\x00" * 8, b"\x01" * 8, OtherInformation(1))
    message = _TaggedMessage(header, b"p")
    assert type(message.with_mac(bytes(12))) is _TaggedMessage
    assert type(message.with_signature(bytes(64))) is _TaggedMessage


def test_decoded_objects_are_the_constructors() -> None:
    message, parts = decode_message(CCS01_COMMAND)
    assert type(message) is GbcsMessage and type(message.header) is GroupingHeader
    assert type(parts) is FrameParts
    rebuilt = GbcsMessage(
        GroupingHeader(*(getattr(message.header, f) for f in GroupingHeader.__slots__)),
        message.payload,
        message.signature,
        message.mac,
    )
    assert rebuilt == message and hash(rebuilt.header) == hash(message.header)
    assert not hasattr(message, "_encoded")  # only protect() keeps wire bytes
