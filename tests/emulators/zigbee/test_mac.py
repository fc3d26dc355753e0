"""IEEE 802.15.4 MAC frames: FCS, round trips, known bytes and malformed input."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.zigbee import air
from emulators.zigbee.mac import (
    AssociationRequest,
    AssociationResponse,
    Beacon,
    BeaconRequest,
    Capability,
    MacFrame,
    MacFrameType,
    decode_mac,
    encode_mac,
    fcs,
)
from gbcs.errors import DecodeError, EncodeError

from .checks import every_prefix_fails
from .strategies import capabilities, mac_frames

EPID = bytes.fromhex("00DB1234567890FF")
DEVICE = bytes.fromhex("00124B000A0B0C0D")


def test_fcs_check_value() -> None:
    """CRC-16/KERMIT check value 0x2189 for "123456789", sent low byte first."""
    assert fcs(b"123456789") == bytes.fromhex("8921")


def test_beacon_request_bytes() -> None:
    assert air.beacon_request(mac_sequence=1).hex() == "030801ffffffff07" + "132d"


def test_beacon_bytes() -> None:
    psdu = air.beacon(
        mac_sequence=10, pan_id=0x1A2B, src=0, extended_pan_id=EPID, association_permit=True
    )
    # frame control 0x8000 (beacon, short source), superframe 0xCFFF, no GTS or pending,
    # protocol 0, stack profile 2 / version 2, capacity + depth 0, EPID LE, tx offset, update id.
    assert psdu[:-2].hex() == ("00800a2b1a0000ffcf0000002284ff9078563412db00ffffff00")
    frame = decode_mac(psdu)
    assert isinstance(frame.payload, Beacon)
    assert frame.payload.association_permit and frame.payload.pan_coordinator
    assert frame.payload.payload.extended_pan_id == EPID


def test_association_request_bytes() -> None:
    psdu = air.association_request(
        mac_sequence=2,
        pan_id=0x1A2B,
        coordinator=0,
        device_ieee=DEVICE,
        capability=Capability.router(),
    )
    # ack request, dst short + PAN, src extended with PAN 0xFFFF, command 1, capability 0x8E.
    assert psdu[:-2].hex() == "23c8022b1a0000ffff0d0c0b0a004b1200018e"


def test_capabilities() -> None:
    assert Capability.router().encode() == b"\x8e"
    assert Capability.sleepy_end_device().encode() == b"\x80"


@given(mac_frames())
def test_round_trip(frame: MacFrame) -> None:
    psdu = encode_mac(frame)
    assert decode_mac(psdu) == frame
    assert encode_mac(decode_mac(psdu)) == psdu


@given(mac_frames(), st.data())
def test_any_corruption_is_caught_by_the_fcs(frame: MacFrame, data: st.DataObject) -> None:
    psdu = bytearray(encode_mac(frame))
    where = data.draw(st.integers(0, len(psdu) - 1))
    psdu[where] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(DecodeError) as info:
        decode_mac(bytes(psdu))
    assert info.value.field == "fcs"


@given(mac_frames().filter(lambda f: f.frame_type != MacFrameType.DATA))
def test_truncation_with_a_valid_fcs_is_a_decode_error(frame: MacFrame) -> None:
    """Cut the frame, re-seal it with a correct FCS: the parser itself must notice."""
    body = encode_mac(frame)[:-2]
    every_prefix_fails(lambda b: decode_mac(b + fcs(b)), body)


@given(st.binary(max_size=130))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    for psdu in (data, data + fcs(data)):
        with contextlib.suppress(DecodeError):
            decode_mac(psdu)


def test_refuses_mac_security_and_oversize() -> None:
    body = bytes.fromhex("0b0001")  # beacon request frame type 3 with security bit
    with pytest.raises(DecodeError, match="MAC security"):
        decode_mac(body + fcs(body))
    with pytest.raises(EncodeError, match="aMaxPHYPacketSize"):
        encode_mac(MacFrame(MacFrameType.DATA, 0, bytes(120), 1, 2, None, 3))


@given(capabilities)
def test_association_commands_round_trip(capability: Capability) -> None:
    for command in (AssociationRequest(capability), AssociationResponse(0x1234, 0)):
        frame = MacFrame(MacFrameType.COMMAND, 5, command, 0x1A2B, 0, None, DEVICE)
        assert decode_mac(encode_mac(frame)) == frame


def test_payload_type_must_match_frame_type() -> None:
    with pytest.raises(EncodeError):
        encode_mac(MacFrame(MacFrameType.COMMAND, 0, b"\x07", 0xFFFF, 0xFFFF))
    with pytest.raises(EncodeError):
        encode_mac(MacFrame(MacFrameType.DATA, 0, BeaconRequest(), 0xFFFF, 0xFFFF))
    with pytest.raises(EncodeError):
        encode_mac(MacFrame(MacFrameType.DATA, 0, b"", None, None, None, 1))  # compression


def _sealed(body: bytes) -> bytes:
    return body + fcs(body)


def test_psdu_of_exactly_127_bytes_is_the_largest_that_encodes() -> None:
    """aMaxPHYPacketSize (802.15.4-2006 6.4.1) is 127 bytes including the 2-byte FCS.

    Short addresses take the data-frame fast path, extended ones the general path:
    both must stop at 127.
    """
    short = MacFrame(MacFrameType.DATA, 0, bytes(116), 0x1A2B, 0, None, 1)  # 9-byte MHR
    assert len(encode_mac(short)) == 127
    with pytest.raises(EncodeError, match="aMaxPHYPacketSize"):
        encode_mac(dataclasses.replace(short, payload=bytes(117)))
    extended = MacFrame(MacFrameType.DATA, 0, bytes(104), 0x1A2B, DEVICE, None, DEVICE)  # 21
    assert len(encode_mac(extended)) == 127
    with pytest.raises(EncodeError, match="aMaxPHYPacketSize"):
        encode_mac(dataclasses.replace(extended, payload=bytes(105)))


def test_pan_id_compression_without_both_addresses_is_refused() -> None:
    """802.15.4-2006 7.2.1.1.5: PAN ID compression only when both addresses are present."""
    # data frame, PAN ID compression, destination short, no source
    with pytest.raises(DecodeError, match="PAN ID compression"):
        decode_mac(_sealed(bytes.fromhex("4108002b1a0000") + b"nwk"))


@pytest.mark.parametrize("capability", [0x10, 0x20, 0x8E | 0x10])
def test_association_request_with_reserved_capability_bits_is_refused(capability: int) -> None:
    """Capability information bits 4-5 are reserved (802.15.4-2006 7.3.1.2)."""
    body = bytes.fromhex("23c8022b1a0000ffff0d0c0b0a004b120001") + bytes((capability,))
    with pytest.raises(DecodeError, match="reserved bits 4-5"):
        decode_mac(_sealed(body))


def test_beacon_with_reserved_superframe_bit_is_refused() -> None:
    """Superframe specification bit 13 is reserved (802.15.4-2006 7.2.2.1.2)."""
    psdu = air.beacon(
        mac_sequence=10, pan_id=0x1A2B, src=0, extended_pan_id=EPID, association_permit=True
    )
    body = bytearray(psdu[:-2])
    body[8] |= 0x20  # superframe specification, high byte: 0xCF -> 0xEF
    with pytest.raises(DecodeError, match="reserved bit 13"):
        decode_mac(_sealed(bytes(body)))
