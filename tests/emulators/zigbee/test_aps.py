"""APS frames, APS security, Transport Key, fragmentation and Device_annce."""

from __future__ import annotations

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from emulators.zigbee.aps import (
    ApsAck,
    ApsCommand,
    ApsData,
    ApsFrame,
    DeliveryMode,
    DeviceAnnounce,
    Fragment,
    FragmentError,
    KeyType,
    RawApsCommand,
    TransportKey,
    decode_aps,
    device_announce_frame,
    encode_aps,
    fragment,
    missing_blocks,
    parse_device_announce,
    reassemble,
)
from emulators.zigbee.mac import Capability
from emulators.zigbee.security import AuxHeader, EncryptedPayload, KeyId
from gbcs.errors import DecodeError, EncodeError, VerificationError
from tests.gbcs.strategies import mutated

from .checks import every_prefix_fails, every_prefix_is_handled
from .strategies import (
    aps_acks,
    aps_commands,
    aps_data_frames,
    aps_frames,
    capabilities,
    eui64,
    keys,
    transport_keys,
)

TC = bytes.fromhex("00124B0001020304")
ESME = bytes.fromhex("00124B000A0B0C0D")
LINK = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
NWK_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")


@given(aps_frames)
def test_round_trip_unsecured(frame: object) -> None:
    data = encode_aps(frame)  # type: ignore[arg-type]
    assert decode_aps(data) == frame
    assert encode_aps(decode_aps(data)) == data


@given(
    st.one_of(aps_frames, aps_data_frames(secured=True), aps_commands(secured=True)),
    keys,
    eui64,
    st.data(),
)
def test_mutated_frames_decode_to_what_re_encodes_or_raise(
    frame: ApsFrame, key: bytes, sender: bytes, data: st.DataObject
) -> None:
    """bytes -> frame -> bytes on frames the encoder did not make (a secured one decoded
    without its key keeps its MIC) (audit 9, props T7)."""
    secured = getattr(frame, "security", None) is not None
    wire = encode_aps(frame, key, nonce_source=sender) if secured else encode_aps(frame)
    raw = mutated(data, wire)
    try:
        sniffed = decode_aps(raw)
    except DecodeError:
        return
    event("accepted")
    assert encode_aps(sniffed) == raw


@given(st.one_of(aps_data_frames(secured=True), aps_commands(secured=True)), keys, eui64)
def test_round_trip_secured(frame: ApsData | ApsCommand, key: bytes, sender: bytes) -> None:
    data = encode_aps(frame, key, nonce_source=sender)
    ring = {b"\x01" * 8: bytes(16), sender: key}
    assert decode_aps(data, ring, nonce_source=sender) == frame
    assert encode_aps(decode_aps(data, ring, nonce_source=sender), key, nonce_source=sender) == (
        data
    )
    sniffed = decode_aps(data)
    assert encode_aps(sniffed) == data
    assert isinstance(
        sniffed.payload if isinstance(sniffed, ApsData) else sniffed.command, EncryptedPayload
    )


@given(st.one_of(aps_data_frames(secured=True), aps_commands(secured=True)), keys, st.data())
def test_corruption_fails_verification(
    frame: ApsData | ApsCommand, key: bytes, data: st.DataObject
) -> None:
    wire = bytearray(encode_aps(frame, key, nonce_source=ESME))
    where = data.draw(st.integers(1, len(wire) - 1))
    wire[where] ^= 1 << data.draw(st.integers(0, 7))
    try:
        got = decode_aps(bytes(wire), {ESME: key}, nonce_source=ESME)
    except (VerificationError, DecodeError):
        return
    # A flip that turns the key id into one the receiver holds no key for (link key
    # -> network key) leaves the payload sealed: never a plaintext that passes.
    body = got.payload if isinstance(got, ApsData) else got.command
    assert isinstance(body, EncryptedPayload), got
    assert got.security is not None and got.security.key_id != frame.security.key_id


def test_wrong_link_key_names_the_key_type() -> None:
    frame = ApsCommand(
        1,
        TransportKey(KeyType.NETWORK, NWK_KEY, ESME, TC, 0),
        AuxHeader(KeyId.KEY_TRANSPORT, 5, TC),
    )
    data = encode_aps(frame, LINK)
    assert decode_aps(data, {ESME: LINK}) == frame
    with pytest.raises(VerificationError, match="key-transport"):
        decode_aps(data, {ESME: bytes(16), TC: bytes(range(16))})


def test_transport_key_plaintext_layout() -> None:
    frame = ApsCommand(0x21, TransportKey(KeyType.NETWORK, NWK_KEY, ESME, TC, 3))
    assert encode_aps(frame).hex() == (
        "01210501" + NWK_KEY.hex() + "03" + "0d0c0b0a004b1200" + "04030201004b1200"
    )


@given(transport_keys)
def test_transport_key_truncations(body: TransportKey) -> None:
    """Once the key type is read, every shorter body is an error; before it, a bare
    command id (or none) is the only other reading."""
    data = encode_aps(ApsCommand(1, body))
    every_prefix_fails(decode_aps, data[:2])
    assert decode_aps(data[:3]) == ApsCommand(1, RawApsCommand(0x05))
    for cut in range(4, len(data)):
        with pytest.raises(DecodeError):
            decode_aps(data[:cut])


@given(aps_acks())
def test_ack_truncations(frame: ApsAck) -> None:
    every_prefix_fails(decode_aps, encode_aps(frame))


@given(aps_data_frames(secured=False))
def test_data_truncations(frame: ApsData) -> None:
    every_prefix_is_handled(decode_aps, encode_aps(frame))
    header = len(encode_aps(frame)) - len(frame.payload)  # type: ignore[arg-type]
    every_prefix_fails(decode_aps, encode_aps(frame)[:header])


def test_fragment_extended_header_bytes() -> None:
    first = ApsData(0x0704, 0x0109, 1, 1, 9, b"ab", fragment=Fragment(0, 3))
    later = ApsData(0x0704, 0x0109, 1, 1, 9, b"cd", fragment=Fragment(2))
    assert encode_aps(first).hex() == "800104070901010901036162"
    assert encode_aps(later)[-4:].hex() == "02026364"
    with pytest.raises(EncodeError):
        encode_aps(ApsData(1, 1, 1, 1, 1, b"", fragment=Fragment(0)))
    with pytest.raises(EncodeError):
        encode_aps(ApsData(1, 1, 1, 1, 1, b"", fragment=Fragment(1, 4)))


@given(st.binary(max_size=600), st.integers(1, 100), st.randoms())
def test_fragment_reassemble_in_any_order(payload: bytes, max_block: int, rng: object) -> None:
    if -(-len(payload) // max_block) > 255:
        with pytest.raises(EncodeError):
            fragment(payload, max_block)
        return
    parts = fragment(payload, max_block)
    assert all(len(block) <= max_block for _, block in parts)
    assert parts[0][0] == Fragment(0, len(parts))
    rng.shuffle(parts)  # type: ignore[attr-defined]
    assert reassemble(parts) == payload
    assert missing_blocks(parts) == ()


def test_missing_blocks_are_reported() -> None:
    parts = fragment(bytes(range(100)), 10)
    with pytest.raises(FragmentError) as info:
        reassemble(parts[:3] + parts[5:])
    assert info.value.missing == (3, 4)
    assert missing_blocks(parts[1:]) == (0,)
    with pytest.raises(FragmentError, match="first block"):
        reassemble(parts[1:])
    conflicting = [*parts, (Fragment(2), b"other")]
    with pytest.raises(FragmentError, match="twice"):
        reassemble(conflicting)


@given(st.integers(0, 255), st.integers(0, 0xFFF7), eui64, capabilities)
def test_device_announce_round_trip(
    seq: int, address: int, ieee: bytes, capability: Capability
) -> None:
    announce = DeviceAnnounce(seq, address, ieee, capability)
    frame = device_announce_frame(announce, 7)
    assert frame.delivery_mode == DeliveryMode.BROADCAST
    decoded = decode_aps(encode_aps(frame))
    assert isinstance(decoded, ApsData)
    assert parse_device_announce(decoded) == announce
    every_prefix_fails(DeviceAnnounce.decode, announce.encode())


def test_device_announce_layout_and_wrong_cluster() -> None:
    announce = DeviceAnnounce(1, 0x1234, ESME, Capability.router())
    assert announce.encode().hex() == "0134120d0c0b0a004b12008e"
    with pytest.raises(DecodeError, match="Device_annce"):
        parse_device_announce(ApsData(0x0704, 0x0109, 1, 1, 1, b""))


def test_group_delivery_needs_group_and_no_endpoint() -> None:
    frame = ApsData(6, 0x0104, 1, None, 1, b"x", DeliveryMode.GROUP, 0x0101)
    assert decode_aps(encode_aps(frame)) == frame
    with pytest.raises(EncodeError):
        encode_aps(ApsData(6, 0x0104, 1, 1, 1, b"x", DeliveryMode.GROUP, 0x0101))
