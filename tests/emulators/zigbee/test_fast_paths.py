"""Every fast path of the codec gives what its checked path gives, errors included.

The fast paths (struct-packed headers, raw-byte nonces, positional builders)
must only ever be a cheaper way to the same bytes, the same frames and the same
exceptions; these tests hold them to the field-by-field code on generated
frames and on mutations of them.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.zigbee import air, aps, mac, nwk, security, tunnel, zcl
from emulators.zigbee._wire import Reader, builder
from emulators.zigbee.aps import ApsData, DeliveryMode, Fragment, FragmentError, fragment
from emulators.zigbee.mac import Capability, MacFrame, MacFrameType, fcs
from emulators.zigbee.nwk import DiscoverRoute, NwkFrame, NwkFrameType
from emulators.zigbee.security import AuxHeader, KeyId
from emulators.zigbee.zcl import Direction, ZclFrame, ZclFrameType

from .strategies import (
    aps_acks,
    aps_command_bodies,
    aps_commands,
    aps_data_frames,
    aux_headers,
    capabilities,
    client_tunnel_commands,
    eui64,
    fragments,
    keys,
    mac_frames,
    nwk_frames,
    server_tunnel_commands,
    u8,
    u16,
    u32,
    zcl_frames,
)

Outcome = tuple[Any, ...]
# Integers just inside and outside the ranges the fast paths pack, and values of
# the wrong type, for fields a caller might get wrong.
odd_ints = st.one_of(
    st.integers(-2, 2),
    st.integers(254, 257),
    st.integers(65534, 65537),
    st.integers(2**32 - 1, 2**32),
    st.just(True),
    st.just(1.0),
    st.none(),
)


def outcome(call: Callable[[], object]) -> Outcome:
    """The value, or the exception's type, message and (for DecodeError) location."""
    try:
        return ("ok", call())
    except Exception as exc:  # every exception must match, whatever its type
        where = tuple(getattr(exc, name, None) for name in ("layer", "field", "offset"))
        return ("error", type(exc), str(exc), where, getattr(exc, "missing", None))


def same(fast: Callable[[], object], checked: Callable[[], object]) -> None:
    assert outcome(fast) == outcome(checked)


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a bit flipped, a byte replaced, bytes inserted, or cut short."""
    out = bytearray(data)
    how = draw(st.sampled_from(["flip", "set", "insert", "cut", "none"]))
    if how == "cut":
        return bytes(out[: draw(st.integers(0, len(out)))])
    if how == "insert":
        at = draw(st.integers(0, len(out)))
        out[at:at] = draw(st.binary(min_size=1, max_size=3))
    elif how != "none" and out:
        at = draw(st.integers(0, len(out) - 1))
        if how == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        else:
            out[at] = draw(u8)
    return bytes(out)


# -- _wire.builder ------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [MacFrame, NwkFrame, ApsData, AuxHeader, ZclFrame, Fragment, Capability, tunnel.TransferData],
)
def test_builder_makes_the_dataclass_itself(cls: type) -> None:
    values = [object() for _ in dataclasses.fields(cls)]
    built = builder(cls)(*values)
    assert type(built) is cls
    assert built == cls(*values)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.__setattr__(dataclasses.fields(cls)[0].name, 1)


def test_builder_refuses_classes_it_cannot_copy() -> None:
    @dataclasses.dataclass(frozen=True)
    class NoSlots:
        a: int

    with pytest.raises(TypeError):
        builder(NoSlots)


# -- MAC ------------------------------------------------------------------------------


def _kermit(data: bytes) -> bytes:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


@given(st.binary(max_size=130))
def test_fcs_is_crc16_kermit_and_the_residue_check_agrees(data: bytes) -> None:
    assert fcs(data) == fcs(bytearray(data)) == _kermit(data)
    assert mac._fcs_matches(data + fcs(data))
    if len(data) >= 2:
        assert mac._fcs_matches(data) == (fcs(data[:-2]) == data[-2:])


@given(mac_frames(), st.data())
def test_mac_fast_decode_and_encode_match_the_checked_paths(
    frame: MacFrame, data: st.DataObject
) -> None:
    psdu = mac._encode_mac_checked(frame)
    assert mac._encode_plain(frame) in (None, psdu)
    assert mac.encode_mac(frame) == psdu
    body = data.draw(mutated(psdu[:-2]))
    for candidate in (psdu, body + fcs(body)):
        fast = mac._decode_fast(candidate) if 5 <= len(candidate) <= mac.MAX_PSDU else None
        if fast is not None:
            assert fast == mac._decode_mac_checked(candidate, 0)
        same(partial(mac.decode_mac, candidate), partial(mac._decode_mac_checked, candidate, 0))


addresses_and_odd = st.one_of(st.none(), u16, eui64, st.binary(max_size=9), odd_ints)
odd_mac_frames = st.builds(
    MacFrame,
    st.sampled_from([*MacFrameType, 4]),
    odd_ints,
    st.one_of(
        st.binary(max_size=126),
        st.builds(mac.AssociationResponse, odd_ints, odd_ints),
        st.builds(mac.AssociationRequest, capabilities | st.just(3)),
        st.just(mac.BeaconRequest()),
    ),
    st.one_of(st.none(), u16, odd_ints),
    addresses_and_odd,
    st.one_of(st.none(), u16, odd_ints),
    addresses_and_odd,
    st.sampled_from([True, False, 1]),
    st.just(False),
    st.sampled_from([0, 1, 2, -1, True]),
)


@given(odd_mac_frames)
def test_mac_encode_of_odd_frames_matches_the_checked_path(frame: MacFrame) -> None:
    same(partial(mac.encode_mac, frame), partial(mac._encode_mac_checked, frame))


@pytest.mark.parametrize("value", [v for v in range(256) if not v & 0x30])
def test_capability_cache_matches_the_bits(value: int) -> None:
    decoded = Capability.decode(Reader(bytes((value,)), "test"))
    assert decoded == Capability(*(bool(value & (1 << i)) for i in (0, 1, 2, 3, 6, 7)))
    assert decoded.encode() == bytes((value,))


# -- security -----------------------------------------------------------------------


@given(aux_headers(), keys, st.binary(max_size=12), st.binary(max_size=40), eui64, st.data())
def test_decrypting_received_bytes_matches_decrypt(
    aux: AuxHeader, key: bytes, header: bytes, payload: bytes, sender: bytes, data: st.DataObject
) -> None:
    frame = header + security.encrypt(header, aux, payload, key, sender)
    frame = data.draw(st.sampled_from([frame, data.draw(mutated(frame))]))
    peeked = security._peek_aux(frame, len(header))
    if peeked is None or len(frame) - peeked[1] < security.MIC_LENGTH:
        return
    found, end = peeked
    at = len(header)
    for nonce_source in (sender, None, b"short"):
        same(
            partial(security._decrypt_received, frame, at, end, found, key, nonce_source, "test"),
            partial(
                security.decrypt, frame[:at], found, frame[end:], key, nonce_source, layer="test"
            ),
        )


@given(st.binary(max_size=12), st.binary(max_size=40), keys, odd_ints | u32, eui64, odd_ints | u8)
def test_network_encryption_matches_encrypt(
    header: bytes, payload: bytes, key: bytes, counter: Any, source: bytes, sequence: Any
) -> None:
    fast = outcome(
        lambda: security._encrypt_network(header, payload, key, counter, source, sequence)
    )
    if fast != ("ok", None):
        aux = AuxHeader(KeyId.NETWORK, counter, source, sequence)
        assert fast == outcome(lambda: security.encrypt(header, aux, payload, key))


def test_crypto_goes_through_the_module_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A benchmark records new_cipher, seal and unseal by patching the module attributes."""
    seen: list[str] = []
    for name in ("new_cipher", "seal", "unseal"):
        original = getattr(security, name)

        def record(*args: Any, _f: Any = original, _n: str = name) -> Any:
            seen.append(_n)
            return _f(*args)

        monkeypatch.setattr(security, name, record)
    monkeypatch.setattr(security, "_ciphers", tuple({} for _ in KeyId))
    network = air.NwkSecurity(bytes(range(16)), 0, 1, bytes(8))
    request = zcl.encode_zcl(tunnel.tunnel_frame(tunnel.RequestTunnel(), sequence=1))
    aps_frame = air.application_frames(request, cluster_id=0x0704, counter=1)[0]
    psdu = air.nwk_data(
        aps_frame, mac_sequence=1, nwk_sequence=1, pan_id=1, src=2, dst=0, security=network
    )
    assert seen == ["new_cipher", "seal"]
    air.decode_frame(psdu, air.Keys({0: network.key}))
    assert seen == ["new_cipher", "seal", "unseal"]


# -- NWK ------------------------------------------------------------------------------


@given(nwk_frames(), keys, st.data())
def test_nwk_fast_decode_matches_the_checked_path(
    frame: NwkFrame, key: bytes, data: st.DataObject
) -> None:
    encoded = nwk.encode_nwk(frame, key)
    encoded = data.draw(st.sampled_from([encoded, data.draw(mutated(encoded))]))
    sequence = frame.security.key_sequence if frame.security else 0
    for network_keys in (None, {sequence: key}, {sequence: bytes(16)}, {sequence + 1: key}):
        same(
            partial(nwk.decode_nwk, encoded, network_keys, base=3),
            partial(nwk._decode_checked, encoded, network_keys, 3),
        )


@given(nwk_frames(secured=False), st.sampled_from([b"", b"\x04", b"\x06", b"\x07"]), st.data())
def test_nwk_unsecured_commands_match_the_checked_path(
    frame: NwkFrame, command_id: bytes, data: st.DataObject
) -> None:
    encoded = nwk._encode_header(frame) + command_id + data.draw(st.binary(max_size=4))
    same(partial(nwk.decode_nwk, encoded, base=2), partial(nwk._decode_checked, encoded, None, 2))


@given(st.sampled_from([4, 6, 7, 1, 0x10]), st.binary(max_size=4))
def test_nwk_command_fast_path_matches_the_reader(command_id: int, body: bytes) -> None:
    plain = bytes((command_id,)) + body
    same(
        lambda: nwk._payload(NwkFrameType.COMMAND, plain, 5),
        lambda: nwk._decode_command(Reader(plain, nwk.LAYER, 5)),
    )


# -- APS ------------------------------------------------------------------------------


@given(
    st.one_of(aps_data_frames(), aps_commands(), aps_acks()),
    keys,
    eui64,
    st.data(),
)
def test_aps_fast_decode_matches_the_checked_path(
    frame: aps.ApsFrame, key: bytes, sender: bytes, data: st.DataObject
) -> None:
    encoded = aps.encode_aps(frame, key, nonce_source=sender)
    encoded = data.draw(st.sampled_from([encoded, data.draw(mutated(encoded))]))
    partners = (None, sender)
    for link_keys in (None, {sender: key}, {sender: bytes(16)}):
        for source in (sender, None):
            same(
                partial(
                    aps.decode_aps,
                    encoded,
                    link_keys,
                    base=4,
                    partners=partners,
                    nonce_source=source,
                ),
                partial(aps._decode_checked, encoded, link_keys, 4, partners, source, None),
            )


@given(
    odd_ints | u16,
    odd_ints | u8,
    odd_ints | u8,
    st.sampled_from(list(DeliveryMode)),
    st.none() | fragments | st.builds(Fragment, odd_ints, odd_ints),
    st.sampled_from([True, False, 0]),
)
def test_aps_header_fast_path_matches_the_checked_path(
    cluster: Any, endpoint: Any, counter: Any, mode: DeliveryMode, frag: Any, ack: Any
) -> None:
    frame = ApsData(cluster, 0x0109, 1, endpoint, counter, b"x", mode, None, ack, frag)
    same(lambda: aps._encode_header(frame), lambda: aps._encode_header_checked(frame))


@given(aps_command_bodies, st.data())
def test_aps_command_fast_path_matches_the_reader(
    body: aps.ApsCommandBody, data: st.DataObject
) -> None:
    plain = data.draw(mutated(aps._encode_command(body)))
    if plain:
        same(lambda: aps._command(plain, 7), lambda: aps._decode_command(Reader(plain, "aps", 7)))


@given(u8, u16, eui64, capabilities, st.data())
def test_device_announce_fast_path_matches_the_reader(
    sequence: int, address: int, ieee: bytes, capability: Capability, data: st.DataObject
) -> None:
    encoded = aps.DeviceAnnounce(sequence, address, ieee, capability).encode()
    encoded = data.draw(mutated(encoded))
    same(
        lambda: aps.DeviceAnnounce.decode(encoded, base=2),
        lambda: aps.DeviceAnnounce._decode_checked(encoded, 2),
    )


Parts = list[tuple[Fragment, bytes]]
block_lists = st.lists(
    st.tuples(
        st.one_of(
            fragments,
            st.builds(Fragment, st.integers(-1, 5), st.none() | st.integers(0, 5)),
        ),
        st.binary(max_size=3) | st.builds(bytearray, st.binary(max_size=3)),
    ),
    max_size=5,
)


@st.composite
def shuffled_blocks(draw: st.DrawFn) -> Parts:
    blocks = fragment(draw(st.binary(max_size=300)), draw(st.integers(1, 90)))
    blocks = draw(st.permutations(blocks))
    return blocks[: draw(st.integers(0, len(blocks)))] + draw(st.lists(st.sampled_from(blocks)))


@given(block_lists | shuffled_blocks())
def test_reassembly_fast_path_matches_the_checked_path(parts: Parts) -> None:
    def checked() -> bytes:
        return aps._reassemble_checked(list(parts))

    same(lambda: aps.reassemble(parts), checked)
    same(lambda: aps.reassemble(dict(enumerate(parts)).values()), checked)


def test_reassembly_reports_the_missing_blocks() -> None:
    blocks = fragment(bytes(200), 80)
    with pytest.raises(FragmentError) as info:
        aps.reassemble([blocks[0], blocks[2]])
    assert info.value.missing == (1,)
    assert aps.reassemble(reversed(blocks)) == bytes(200)


# -- whole frames -------------------------------------------------------------------


@given(
    st.one_of(aps_data_frames(secured=False), aps_commands()),
    st.one_of(u8, odd_ints),
    u16,
    st.sampled_from([0, 0x1234, 0xFFFD, 0xFFFF, 0x10000]),
    st.none() | st.builds(air.NwkSecurity, keys, odd_ints | u8, odd_ints | u32, eui64),
    st.none() | eui64,
    st.none() | eui64,
    st.sampled_from(list(DiscoverRoute)),
)
def test_nwk_data_fast_path_matches_the_frame_objects_path(
    frame: aps.ApsFrame,
    mac_sequence: Any,
    pan_id: int,
    dst: int,
    network: air.NwkSecurity | None,
    src_ieee: bytes | None,
    dst_ieee: bytes | None,
    discover: DiscoverRoute,
) -> None:
    fields = {
        "mac_sequence": mac_sequence,
        "nwk_sequence": 7,
        "pan_id": pan_id,
        "src": 0x4321,
        "dst": dst,
        "security": network,
        "radius": 30,
        "src_ieee": src_ieee,
        "dst_ieee": dst_ieee,
    }
    link_key = bytes(range(16))

    def generic() -> bytes:
        source = network.source if network is not None else src_ieee
        payload = aps.encode_aps(frame, link_key, nonce_source=source)
        route = discover if dst < 0xFFF8 else DiscoverRoute.SUPPRESS
        return air._nwk_frame(NwkFrameType.DATA, payload, route, **fields)  # type: ignore[arg-type]

    fast = outcome(lambda: air.nwk_data(frame, aps_key=link_key, discover_route=discover, **fields))
    assert fast == outcome(generic)
    if fast[0] == "ok" and network is not None:
        payload = mac.decode_mac(fast[1]).payload
        decoded = nwk.decode_nwk(payload, {network.key_sequence: network.key})  # type: ignore[arg-type]
        assert decoded.security == network.aux()


@given(st.one_of(client_tunnel_commands, server_tunnel_commands), u8, st.data())
def test_tunnel_and_zcl_fast_paths_match_the_checked_paths(
    command: tunnel.TunnelCommand, sequence: int, data: st.DataObject
) -> None:
    direction = data.draw(st.sampled_from(list(Direction)))
    same(lambda: tunnel._body(command), lambda: tunnel._body_checked(command))
    frame = outcome(lambda: tunnel.tunnel_frame(command, sequence=sequence, direction=direction))
    if frame[0] != "ok":
        return
    encoded = zcl.encode_zcl(frame[1])
    assert encoded == zcl._encode_checked(frame[1])
    parsed = outcome(lambda: zcl.decode_zcl(data.draw(mutated(encoded))))
    if parsed[0] != "ok":
        return
    zcl_frame = parsed[1]
    if zcl_frame.frame_type == ZclFrameType.CLUSTER and zcl_frame.manufacturer_code is None:
        same(
            lambda: tunnel.parse_tunnel(zcl_frame, base=3),
            lambda: tunnel._parse_checked(zcl_frame, 3),
        )


@given(
    st.one_of(
        st.builds(tunnel.RequestTunnel, odd_ints, odd_ints, odd_ints, odd_ints),
        st.builds(tunnel.RequestTunnelResponse, odd_ints, odd_ints, odd_ints),
        st.builds(tunnel.TransferData, odd_ints, st.binary(max_size=3)),
    )
)
def test_tunnel_body_of_odd_values_matches_the_checked_path(command: Any) -> None:
    same(lambda: tunnel._body(command), lambda: tunnel._body_checked(command))


@given(zcl_frames, st.sampled_from([0, 1, 2, Direction.TO_CLIENT]), odd_ints | u8)
def test_zcl_encode_of_odd_frames_matches_the_checked_path(
    frame: ZclFrame, direction: Any, sequence: Any
) -> None:
    odd = dataclasses.replace(frame, direction=direction, sequence=sequence)
    for candidate in (frame, odd):
        same(partial(zcl.encode_zcl, candidate), partial(zcl._encode_checked, candidate))


def test_struct_layouts_are_the_documented_sizes() -> None:
    assert security._NWK_AUX_LENGTH == 14
    assert aps._TRANSPORT_NETWORK_KEY.size == 35
    assert struct.calcsize("<BH8sB") == aps._ANNOUNCE.size == 12
