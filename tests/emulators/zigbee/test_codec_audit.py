"""Regressions from the codec-level audit: out-of-range and mistyped values, secured acks,
odd fragment sets, error offsets of NWK commands, global ZCL commands on the tunnel cluster.

Each encoder either raises :class:`EncodeError` or writes bytes that decode to the
value given (bool fields compared by truth): nothing spills into a neighbouring bit.
"""

from __future__ import annotations

import contextlib
import dataclasses
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.zigbee import air, aps, mac, nwk, security, tunnel, zcl
from emulators.zigbee._wire import Reader, check_range, u8, u16
from emulators.zigbee.aps import (
    AckFragment,
    ApsAck,
    ApsCommand,
    ApsData,
    DeliveryMode,
    Fragment,
    FragmentError,
    TransportKey,
)
from emulators.zigbee.mac import MacFrame, MacFrameType
from emulators.zigbee.nwk import Leave, NwkFrame, NwkFrameType, SourceRoute
from emulators.zigbee.security import AuxHeader, EncryptedPayload, KeyId
from emulators.zigbee.zcl import Direction, ZclFrame, ZclFrameType
from gbcs.errors import DecodeError, EncodeError, GbcsError

from .strategies import aps_data_frames, aux_headers, mac_frames, nwk_frames, zcl_frames
from .test_fast_paths import same

KEY = bytes(range(16))
SOURCE = bytes.fromhex("0011223344556677")
odd_ints = st.sampled_from([-1, 2, 3, 4, 5, 7, 8, 16, 255, 256, 2**32, 1.5, None, "1"])
odd_bools = st.sampled_from([0, 1, 2, 3, 255, 256])


def _truth(value: object) -> object:
    """A frame with every bool field replaced by its truth, nested dataclasses included."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for f in dataclasses.fields(value):
            field_value = getattr(value, f.name)
            changes[f.name] = bool(field_value) if f.type == "bool" else _truth(field_value)
        return dataclasses.replace(value, **changes)
    return value


def _encodes_faithfully(value: object, encode: Any, decode: Any) -> None:
    try:
        encoded = encode(value)
    except GbcsError:
        return
    assert _truth(decode(encoded)) == _truth(value)


# -- _wire ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [1.5, None, "1", b"\x01", [1]])
def test_wire_refuses_non_integers_with_encode_error(value: Any) -> None:
    with pytest.raises(EncodeError):
        check_range(value, 8, "field")
    with pytest.raises(EncodeError):
        u8(value, "field")
    with pytest.raises(EncodeError):
        u16(value, "field")


# -- MAC ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [4, 7, 8, 9, 16])
def test_mac_frame_type_beyond_the_enum_is_an_encode_error(kind: int) -> None:
    # 8 used to set the security bit, 16 the frame-pending bit, 4-7 a reserved type
    frame = MacFrame(kind, 1, b"x", 0x1234, 0, None, 1)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="frame_type"):
        mac.encode_mac(frame)


def test_mac_int_flags_are_encoded_by_their_truth() -> None:
    # ack_request=2 used to set bit 6 (PAN ID compression) instead of bit 5
    frame = MacFrame(MacFrameType.DATA, 1, b"x", 0x1234, 0, 0x1234, 1, 2, 2)  # type: ignore[arg-type]
    decoded = mac.decode_mac(mac.encode_mac(frame))
    assert (decoded.ack_request, decoded.frame_pending, decoded.src_pan) == (True, True, 0x1234)


@given(mac_frames(), odd_ints, odd_bools, odd_bools)
def test_mac_odd_values_encode_faithfully_or_not_at_all(
    frame: MacFrame, kind: Any, ack: Any, pending: Any
) -> None:
    for odd in (
        dataclasses.replace(frame, frame_type=kind),
        dataclasses.replace(frame, ack_request=ack, frame_pending=pending),
        dataclasses.replace(frame, dst=1.5),
    ):
        _encodes_faithfully(odd, mac.encode_mac, mac.decode_mac)


# -- NWK ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [("frame_type", 2), ("frame_type", 4), ("discover_route", 2), ("discover_route", 3)],
)
def test_nwk_reserved_frame_type_and_discover_route_are_encode_errors(
    field: str, value: int
) -> None:
    frame = dataclasses.replace(NwkFrame(NwkFrameType.DATA, 1, 2, 3, b"x"), **{field: value})
    with pytest.raises(EncodeError, match=field):
        nwk.encode_nwk(frame)


def test_nwk_int_flags_and_leave_options_are_encoded_by_their_truth() -> None:
    # end_device_initiator=2 used to set reserved bit 14; Leave(rejoin=2) raised ValueError
    frame = NwkFrame(NwkFrameType.COMMAND, 1, 2, 3, Leave(2, 0, 3), end_device_initiator=2)  # type: ignore[arg-type]
    decoded = nwk.decode_nwk(nwk.encode_nwk(frame))
    assert decoded.end_device_initiator is True
    assert decoded.payload == Leave(True, False, True)


def test_nwk_relay_index_past_the_relays_is_an_encode_error() -> None:
    route = SourceRoute(2, (0x1111, 0x2222))
    with pytest.raises(EncodeError, match="relay_index"):
        nwk.encode_nwk(NwkFrame(NwkFrameType.DATA, 1, 2, 3, b"x", source_route=route))


@pytest.mark.parametrize("fast", [True, False])
def test_nwk_command_errors_point_into_the_frame(fast: bool) -> None:
    decode = nwk.decode_nwk if fast else lambda b, base: nwk._decode_checked(b, None, base)
    leave = bytearray(nwk.encode_nwk(NwkFrame(NwkFrameType.COMMAND, 1, 2, 3, Leave())))
    leave[-1] |= 0x01  # reserved option bit: the last byte of the frame
    with pytest.raises(DecodeError) as info:
        decode(bytes(leave), base=5)
    assert info.value.offset == 5 + len(leave) - 1  # used to be two bytes past the end
    rejoin = nwk.encode_nwk(NwkFrame(NwkFrameType.COMMAND, 1, 2, 3, nwk.RejoinResponse(7)))[:-1]
    with pytest.raises(DecodeError) as info:
        decode(rejoin, base=5)
    assert info.value.offset == 5 + len(rejoin)


@given(nwk_frames(secured=False), odd_ints, odd_ints, odd_bools)
def test_nwk_odd_values_encode_faithfully_or_not_at_all(
    frame: NwkFrame, kind: Any, discover: Any, initiator: Any
) -> None:
    for odd in (
        dataclasses.replace(frame, frame_type=kind),
        dataclasses.replace(frame, discover_route=discover, end_device_initiator=initiator),
    ):
        _encodes_faithfully(odd, nwk.encode_nwk, nwk.decode_nwk)


# -- security -------------------------------------------------------------------------


@pytest.mark.parametrize("key_id", [4, 5, 7, 8, -1, None])
def test_aux_key_id_beyond_two_bits_is_an_encode_error(key_id: Any) -> None:
    # 4 used to come back as key id 0, 5 set the extended-nonce bit, 8 a reserved bit
    aux = AuxHeader(key_id, 1, SOURCE)
    with pytest.raises(EncodeError, match="key_id"):
        aux.encode()
    with pytest.raises(EncodeError, match="key_id"):
        security.encrypt(b"hdr", aux, b"payload", KEY)


def test_aux_level_and_nonce_control_beyond_range_are_encode_errors() -> None:
    with pytest.raises(EncodeError):
        AuxHeader(KeyId.LINK, 1).encode(8)  # used to turn into key id 1
    with pytest.raises(EncodeError):
        security.make_nonce(SOURCE, 1, 256)  # used to raise ValueError


@given(aux_headers(), odd_ints)
def test_aux_odd_key_ids_encode_faithfully_or_not_at_all(aux: AuxHeader, key_id: Any) -> None:
    def decode(data: bytes) -> AuxHeader:
        reader = Reader(data, "test")
        decoded = AuxHeader.decode(reader)
        reader.end("aux")
        return decoded

    _encodes_faithfully(dataclasses.replace(aux, key_id=key_id), AuxHeader.encode, decode)


# -- APS ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [1, 4, 5])
def test_aps_reserved_delivery_mode_is_an_encode_error(mode: int) -> None:
    for frame in (
        ApsData(0x0704, 0x0109, 1, 1, 2, b"x", mode),  # type: ignore[arg-type]
        ApsCommand(2, aps.RawApsCommand(9), None, mode),  # type: ignore[arg-type]
    ):
        with pytest.raises(EncodeError, match="delivery_mode"):
            aps.encode_aps(frame)


def test_aps_int_ack_request_is_encoded_by_its_truth() -> None:
    # ack_request=2 used to set the extended-header bit
    frame = ApsData(0x0704, 0x0109, 1, 1, 2, b"x", ack_request=2)  # type: ignore[arg-type]
    decoded = aps.decode_aps(aps.encode_aps(frame))
    assert decoded == dataclasses.replace(frame, ack_request=True)


def test_aps_fragment_of_the_wrong_kind_is_an_encode_error() -> None:
    data = ApsData(0x0704, 0x0109, 1, 1, 2, b"x", fragment=AckFragment(True, 0, 1))  # type: ignore[arg-type]
    ack = ApsAck(2, fragment=Fragment(0, 3))  # type: ignore[arg-type]
    for frame in (data, ack):
        with pytest.raises(EncodeError, match="Fragment"):
            aps.encode_aps(frame)


@pytest.mark.parametrize("key_type", [2, 3, 300, None])
def test_transport_key_of_an_unmodelled_key_type_is_an_encode_error(key_type: Any) -> None:
    # 2 used to encode bytes that decode as a RawApsCommand, 300 raised ValueError
    body = TransportKey(key_type, KEY, SOURCE, SOURCE[::-1])
    with pytest.raises(EncodeError, match="RawApsCommand"):
        aps.encode_aps(ApsCommand(1, body))


@pytest.mark.parametrize("value", [5, None, 1.5])
def test_non_bytes_bodies_are_encode_errors(value: Any) -> None:
    # bytes(5) used to write five zero bytes
    with pytest.raises(EncodeError):
        aps.encode_aps(ApsCommand(1, aps.RawApsCommand(9, value)))
    with pytest.raises(EncodeError):
        zcl.encode_zcl(ZclFrame(ZclFrameType.GLOBAL, 1, 1, 1, value))  # type: ignore[arg-type]
    with pytest.raises(EncodeError):
        tunnel.encode_gbcs_tunnel(tunnel.GbcsPut(value))


@pytest.mark.parametrize("fragment", [None, AckFragment(True, 0, 3)])
@pytest.mark.parametrize("nonce", [SOURCE, None])
def test_secured_ack_decoded_without_its_key_encodes_back_unchanged(
    fragment: AckFragment | None, nonce: bytes | None
) -> None:
    aux = AuxHeader(KeyId.LINK, 0xFFFFFFFF, nonce)
    encoded = aps.encode_aps(ApsAck(4, fragment=fragment, security=aux), KEY, nonce_source=SOURCE)
    decoded = aps.decode_aps(encoded)
    assert isinstance(decoded, ApsAck)
    assert decoded.encrypted == EncryptedPayload(encoded[-4:])
    assert aps.encode_aps(decoded) == encoded  # used to lose the MIC
    plain = aps.decode_aps(encoded, {SOURCE: KEY}, nonce_source=SOURCE)
    assert plain == ApsAck(4, fragment=fragment, security=aux)
    assert aps.encode_aps(plain, KEY, nonce_source=SOURCE) == encoded


def test_secured_ack_with_more_than_a_mic_is_refused_without_its_key() -> None:
    aux = AuxHeader(KeyId.LINK, 1, SOURCE)
    encoded = aps.encode_aps(ApsAck(4, security=aux), KEY) + b"\x00\x00"
    with pytest.raises(DecodeError, match="an ack has no payload"):
        aps.decode_aps(encoded)  # used to drop the two bytes silently


@given(aps_data_frames(secured=False), odd_ints, odd_bools)
def test_aps_odd_values_encode_faithfully_or_not_at_all(
    frame: ApsData, mode: Any, ack: Any
) -> None:
    group = 7 if mode == DeliveryMode.GROUP else None
    endpoint = None if group is not None else 1
    odd = dataclasses.replace(
        frame, delivery_mode=mode, group=group, dst_endpoint=endpoint, ack_request=ack
    )
    _encodes_faithfully(odd, aps.encode_aps, aps.decode_aps)


@pytest.mark.parametrize(
    ("parts", "reason"),
    [
        ([(Fragment(0, 2), b"a"), (Fragment(1), b"b"), (Fragment(-1), b"c")], "negative"),
        ([(Fragment(0, 3), b"a"), (Fragment(0, 1), b"a")], "announced [13] and then [13]"),
        ([(Fragment(0, 1), b"a"), (Fragment(0, 2), b"a"), (Fragment(1), b"b")], "announced"),
        ([(Fragment(1, 2), b"b"), (Fragment(0), b"a")], "only the first block"),
    ],
)
def test_reassembly_refuses_blocks_it_used_to_drop_or_let_override(
    parts: list[tuple[Fragment, bytes]], reason: str
) -> None:
    with pytest.raises(FragmentError, match=reason):
        aps.reassemble(parts)
    with pytest.raises(FragmentError, match=reason):
        aps.reassemble(reversed(parts))


# -- ZCL, tunnel and whole frames -----------------------------------------------------


@pytest.mark.parametrize("direction", [2, 3, -1])
def test_zcl_direction_beyond_one_bit_is_an_encode_error(direction: int) -> None:
    # 2 used to set disable-default-response, 3 both bits
    frame = ZclFrame(ZclFrameType.CLUSTER, direction, 1, 2)  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="direction"):
        zcl.encode_zcl(frame)


@given(zcl_frames, odd_ints, odd_bools)
def test_zcl_odd_values_encode_faithfully_or_not_at_all(
    frame: ZclFrame, direction: Any, disable: Any
) -> None:
    odd = dataclasses.replace(frame, direction=direction, disable_default_response=disable)
    _encodes_faithfully(odd, zcl.encode_zcl, zcl.decode_zcl)


@pytest.mark.parametrize("flow_control", [2, 255, 256, 0, 1])
def test_request_tunnel_flow_control_is_encoded_as_a_boolean(flow_control: int) -> None:
    # 2 and 255 used to encode bytes parse_tunnel refuses; 256 went to a ValueError
    command = tunnel.RequestTunnel(flow_control=flow_control)  # type: ignore[arg-type]
    body = tunnel._body(command)
    assert body == tunnel._body_checked(command)
    assert body[3] == bool(flow_control)


def test_global_zcl_command_on_the_tunnel_cluster_is_left_as_zcl() -> None:
    # a Default Response on 0x0704 used to raise DecodeError from parse_tunnel
    frame = ZclFrame(ZclFrameType.GLOBAL, Direction.TO_CLIENT, 5, 0x0B, b"\x02\x00", True)
    app = air.decode_application(0x0109, 0x0704, zcl.encode_zcl(frame))
    assert app == air.Application(zcl=frame)
    specific = dataclasses.replace(frame, frame_type=ZclFrameType.CLUSTER, manufacturer_code=7)
    app = air.decode_application(0x0109, 0x0704, zcl.encode_zcl(specific))
    assert app == air.Application(zcl=specific)


# -- random bytes: fast paths agree with the checked ones ------------------------------


@given(st.binary(max_size=80), st.sampled_from([None, {0: KEY}]))
def test_random_bytes_decode_alike_on_fast_and_checked_paths(
    data: bytes, keys: dict[int, bytes] | None
) -> None:
    psdu = data + mac.fcs(data)
    same(partial(mac.decode_mac, psdu), partial(mac._decode_mac_checked, psdu, 0))
    same(partial(nwk.decode_nwk, data, keys, base=3), partial(nwk._decode_checked, data, keys, 3))
    link = None if keys is None else {SOURCE: KEY}
    same(
        partial(aps.decode_aps, data, link, base=3, nonce_source=SOURCE, network_keys=keys),
        partial(aps._decode_checked, data, link, 3, (), SOURCE, keys),
    )
    same(
        partial(aps.DeviceAnnounce.decode, data, base=1),
        partial(aps.DeviceAnnounce._decode_checked, data, 1),
    )
    for decode in (air.decode_frame, zcl.decode_zcl, tunnel.decode_gbcs_tunnel):
        with contextlib.suppress(GbcsError):
            decode(psdu if decode is air.decode_frame else data)  # type: ignore[operator]
