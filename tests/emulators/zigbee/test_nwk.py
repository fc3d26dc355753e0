"""ZigBee NWK frames, commands and NWK security."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from emulators.zigbee.mac import Capability
from emulators.zigbee.nwk import (
    Leave,
    NwkFrame,
    NwkFrameType,
    RejoinRequest,
    RejoinResponse,
    decode_nwk,
    encode_nwk,
)
from emulators.zigbee.security import AuxHeader, EncryptedPayload, KeyId
from gbcs.errors import DecodeError, EncodeError, VerificationError
from tests.gbcs.strategies import mutated

from .checks import every_prefix_fails, every_prefix_is_handled
from .strategies import keys, nwk_frames

SOURCE = bytes.fromhex("00124B000A0B0C0D")
KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")


@given(nwk_frames(secured=False))
def test_round_trip_unsecured(frame: NwkFrame) -> None:
    data = encode_nwk(frame)
    assert decode_nwk(data) == frame
    assert encode_nwk(decode_nwk(data)) == data


@given(nwk_frames(secured=True), keys)
def test_round_trip_secured(frame: NwkFrame, key: bytes) -> None:
    data = encode_nwk(frame, key)
    assert frame.security is not None
    ring = {frame.security.key_sequence: key}
    assert decode_nwk(data, ring) == frame  # type: ignore[arg-type]
    assert encode_nwk(decode_nwk(data, ring), key) == data  # type: ignore[arg-type]


@given(nwk_frames(secured=True), keys)
def test_without_keys_the_payload_stays_encrypted_and_re_encodes(
    frame: NwkFrame, key: bytes
) -> None:
    data = encode_nwk(frame, key)
    sniffed = decode_nwk(data)
    assert isinstance(sniffed.payload, EncryptedPayload)
    assert encode_nwk(sniffed) == data


@given(st.one_of(nwk_frames(secured=False), nwk_frames(secured=True)), keys, st.data())
def test_mutated_frames_decode_to_what_re_encodes_or_raise(
    frame: NwkFrame, key: bytes, data: st.DataObject
) -> None:
    """bytes -> frame -> bytes on frames the encoder did not make: a mutated frame (a
    secured one decoded without its key) is written back as it came (audit 9, props T7)."""
    raw = mutated(data, encode_nwk(frame, key if frame.security is not None else None))
    try:
        sniffed = decode_nwk(raw)
    except DecodeError:
        return
    event("accepted")
    assert encode_nwk(sniffed) == raw


@given(nwk_frames(secured=True), keys, st.data())
def test_corruption_after_the_frame_control_fails_the_mic(
    frame: NwkFrame, key: bytes, data: st.DataObject
) -> None:
    wire = bytearray(encode_nwk(frame, key))
    assert frame.security is not None
    ring = {frame.security.key_sequence: key}
    where = data.draw(st.integers(2, len(wire) - 1))
    wire[where] ^= 1 << data.draw(st.integers(0, 7))
    try:
        decoded = decode_nwk(bytes(wire), ring)  # type: ignore[arg-type]
    except (VerificationError, DecodeError):
        return
    raise AssertionError(f"corrupted frame decoded: {decoded}")


def test_unknown_key_sequence_number() -> None:
    frame = NwkFrame(
        NwkFrameType.DATA, 0, 1, 2, b"aps", security=AuxHeader(KeyId.NETWORK, 1, SOURCE, 3)
    )
    with pytest.raises(VerificationError, match="key sequence number 3"):
        decode_nwk(encode_nwk(frame, KEY), {0: KEY})


def test_known_bytes_of_an_unsecured_rejoin_request() -> None:
    frame = NwkFrame(
        NwkFrameType.COMMAND,
        0x0000,
        0x1234,
        7,
        RejoinRequest(Capability.router()),
        1,
        src_ieee=SOURCE,
    )
    # frame control 0x1009: command, version 2, source IEEE; command 0x06, capability 0x8E.
    assert encode_nwk(frame).hex() == "09100000341201070d0c0b0a004b1200068e"


@pytest.mark.parametrize(
    "command",
    [
        RejoinRequest(Capability.router()),
        RejoinResponse(0x1234, 0),
        Leave(),
        Leave(rejoin=True, request=True, remove_children=True),
    ],
)
def test_commands_truncate_to_decode_errors(command: object) -> None:
    frame = NwkFrame(NwkFrameType.COMMAND, 0xFFFD, 0x1234, 9, command, 1)  # type: ignore[arg-type]
    every_prefix_fails(decode_nwk, encode_nwk(frame))


def test_leave_option_bits() -> None:
    frame = NwkFrame(NwkFrameType.COMMAND, 0, 1, 0, Leave(rejoin=True), 1)
    assert encode_nwk(frame)[-2:] == b"\x04\x80"
    frame = NwkFrame(NwkFrameType.COMMAND, 0, 1, 0, Leave(request=True), 1)
    assert encode_nwk(frame)[-2:] == b"\x04\x40"


@given(nwk_frames(), keys)
def test_truncated_frames_only_raise_decode_or_verification_errors(
    frame: NwkFrame, key: bytes
) -> None:
    data = encode_nwk(frame, key)
    ring = {frame.security.key_sequence: key} if frame.security else None

    def decode(b: bytes) -> object:
        try:
            return decode_nwk(b, ring)  # type: ignore[arg-type]
        except VerificationError:
            return None

    every_prefix_is_handled(decode, data)
    every_prefix_fails(decode_nwk, data[: 8 + 8 * (frame.dst_ieee is not None)])


def test_secured_frame_needs_key_and_network_aux() -> None:
    aux = AuxHeader(KeyId.NETWORK, 1, SOURCE, 0)
    with pytest.raises(EncodeError, match="network key"):
        encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b"x", security=aux))
    link_aux = AuxHeader(KeyId.LINK, 1, SOURCE)
    with pytest.raises(EncodeError, match="network key"):
        encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b"x", security=link_aux), KEY)


def test_wrong_protocol_version_is_refused() -> None:
    data = bytearray(encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b"x")))
    data[0] = (data[0] & 0xC3) | (3 << 2)
    with pytest.raises(DecodeError, match="protocol version"):
        decode_nwk(bytes(data))


def _control(frame: bytes, set_bits: int, clear_bits: int = 0) -> bytes:
    control = (int.from_bytes(frame[:2], "little") & ~clear_bits) | set_bits
    return control.to_bytes(2, "little") + frame[2:]


@pytest.mark.parametrize("bits", [0x4000, 0x8000])
def test_reserved_frame_control_bits_are_refused(bits: int) -> None:
    """NWK frame control bits 14-15 are reserved (spec 3.3.1.1)."""
    data = encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b"x"))
    with pytest.raises(DecodeError, match="reserved bits 14-15"):
        decode_nwk(_control(data, bits))


@pytest.mark.parametrize("route", [2, 3])
def test_reserved_discover_route_values_are_refused(route: int) -> None:
    """Discover route 0x02-0x03 are reserved (spec 3.3.1.1.3): a DecodeError, not IndexError."""
    data = encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b"x"))
    with pytest.raises(DecodeError, match="discover route"):
        decode_nwk(_control(data, route << 6, 0x00C0))


def test_relay_index_must_name_one_of_the_relays() -> None:
    """Source route subframe (spec 3.3.1.9): the relay index counts from 0 up to count - 1."""
    # control: data, version 2, source route; dst, src, radius, sequence; 2 relays, index
    head = bytes.fromhex("0804000001000102") + b"\x02"
    relays = bytes.fromhex("34127856")
    assert decode_nwk(head + b"\x01" + relays + b"x").source_route.relay_index == 1  # type: ignore[union-attr]
    with pytest.raises(DecodeError, match="relay index"):
        decode_nwk(head + b"\x02" + relays + b"x")


def test_secured_payload_shorter_than_the_mic_is_refused_without_keys() -> None:
    """A sniffer (no keys) still refuses a secured frame too short to carry its 4-byte MIC."""
    frame = NwkFrame(
        NwkFrameType.DATA, 0, 1, 2, b"", security=AuxHeader(KeyId.NETWORK, 1, SOURCE, 0)
    )
    data = encode_nwk(frame, KEY)  # 8-byte header + 14-byte aux header + MIC
    assert isinstance(decode_nwk(data).payload, EncryptedPayload)
    for cut in (1, 4):
        with pytest.raises(DecodeError, match="shorter than the MIC"):
            decode_nwk(data[:-cut])


def test_network_key_without_the_extended_nonce_is_refused() -> None:
    """NWK security always sends the extended nonce (spec 4.3.1.1): without it the receiver
    has no source for the nonce."""
    header = encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 1, 2, b""))
    aux = bytes((KeyId.NETWORK << 3,)) + (1).to_bytes(4, "little") + b"\x00"  # key seq 0
    data = _control(header, 0x0200) + aux + bytes(8)
    with pytest.raises(DecodeError, match="extended nonce"):
        decode_nwk(data)
    with pytest.raises(DecodeError, match="extended nonce"):
        decode_nwk(data, {0: KEY})


@pytest.mark.parametrize("options", [0x01, 0x08, 0x10, 0x10 | 0x80])
def test_leave_with_reserved_option_bits_is_refused(options: int) -> None:
    """Leave command options bits 0-4 are reserved (spec 3.4.4.3.1)."""
    data = encode_nwk(NwkFrame(NwkFrameType.COMMAND, 0, 1, 0, Leave(), 1))
    with pytest.raises(DecodeError, match="reserved bits 0-4"):
        decode_nwk(data[:-1] + bytes((options,)))
