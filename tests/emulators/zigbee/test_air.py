"""Whole PSDUs: the builders, decode_frame, keys, and frames pinned after Wireshark read them."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.zigbee import air
from emulators.zigbee.aps import ApsAck, ApsCommand, KeyType, TransportKey, reassemble
from emulators.zigbee.mac import (
    AssociationRequest,
    AssociationResponse,
    Beacon,
    BeaconRequest,
    DataRequest,
    MacFrame,
    MacFrameType,
    encode_mac,
    fcs,
)
from emulators.zigbee.nwk import (
    DiscoverRoute,
    Leave,
    NwkFrame,
    NwkFrameType,
    RejoinRequest,
    RejoinResponse,
    encode_nwk,
)
from emulators.zigbee.security import AuxHeader, EncryptedPayload, KeyId
from emulators.zigbee.tunnel import (
    SMART_ENERGY_PROFILE,
    TUNNELING_CLUSTER,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    decode_gbcs_tunnel,
    parse_tunnel,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, decode_zcl, encode_zcl
from gbcs.errors import DecodeError, GbcsError, VerificationError
from gbcs.frame import decode_message

from .scenario import (
    CHF_IEEE,
    ESME_IEEE,
    KEYS,
    LINK_KEY,
    MAX_BLOCK,
    NETWORK_KEY,
    aps_blocks,
    gbcs_command,
    gbcs_response,
    han_steps,
)

# PSDUs of the scenario as tshark 4.0.17 dissected them without any expert
# warning, given the network key and the install-code link key: the transport
# key decrypted to NETWORK_KEY, the announce to 0x1234 / ESME_IEEE and the GET
# to gbcs_tunnel.command 0x01. Any change in layout, nonce, MIC input or key
# derivation changes these bytes.
WIRESHARK_VERIFIED = {
    "transport key": "6188662b1a3412000008183412000001640d0c0b0a004b120004030201004b1200"
    "210130e803000004030201004b1200b60c3387a13ed50109aa8df96504c402d186ae763a273170ef29"
    "5520696de159c455aa45dd07b85a99",
    "device announce": "4188042b1affff34120812fdff34121e010d0c0b0a004b120028010000000d0c0b"
    "0a004b120000d228e31d771d6c6d28036189e47a468f849fd5f5a7866cbaa9bf",
    "gbcs get": "6188072b1a000034124802000034121e0428040000000d0c0b0a004b1200000227f33ff4d740"
    "b706ef8e2065ffd1b0e4e763fc",
}

STEPS = han_steps()
BY_LABEL = {step.label: step.psdu for step in STEPS}


@pytest.mark.parametrize("label", sorted(WIRESHARK_VERIFIED))
def test_pinned_wireshark_verified_frames(label: str) -> None:
    assert BY_LABEL[label].hex() == WIRESHARK_VERIFIED[label]


def test_every_step_decodes_with_keys() -> None:
    layers = {step.label: air.decode_frame(step.psdu, KEYS) for step in STEPS}
    assert isinstance(layers["beacon request"].mac.payload, BeaconRequest)
    assert isinstance(layers["beacon"].mac.payload, Beacon)
    assert isinstance(layers["association request"].mac.payload, AssociationRequest)
    assert isinstance(layers["data request"].mac.payload, DataRequest)
    response = layers["association response"].mac.payload
    assert isinstance(response, AssociationResponse) and response.short_address == 0x1234
    key = layers["transport key"].aps
    assert isinstance(key, ApsCommand)
    assert key.command == TransportKey(KeyType.NETWORK, NETWORK_KEY, ESME_IEEE, CHF_IEEE, 0)
    announce = layers["device announce"].app
    assert announce is not None and announce.zdo is not None
    assert (announce.zdo.nwk_address, announce.zdo.ieee) == (0x1234, ESME_IEEE)
    assert isinstance(layers["request tunnel"].app.tunnel, RequestTunnel)  # type: ignore[union-attr]
    assert isinstance(
        layers["request tunnel response"].app.tunnel,  # type: ignore[union-attr]
        RequestTunnelResponse,
    )
    assert isinstance(layers["aps ack"].aps, ApsAck)
    assert layers["gbcs get"].app.gbcs == GbcsGet()  # type: ignore[union-attr]
    assert isinstance(layers["rejoin request"].nwk.payload, RejoinRequest)  # type: ignore[union-attr]
    assert layers["rejoin request"].nwk.security is None  # type: ignore[union-attr]
    assert isinstance(layers["rejoin response"].nwk.payload, RejoinResponse)  # type: ignore[union-attr]
    assert layers["leave"].nwk.payload == Leave()  # type: ignore[union-attr]
    assert layers["leave"].nwk.security is not None  # type: ignore[union-attr]


def _reassembled(prefix: str) -> air.Application:
    blocks = aps_blocks(STEPS, prefix)
    assert blocks[0].fragment is not None
    assert blocks[0].fragment.total_blocks == len(blocks) >= 3
    assert [b.fragment.block_number for b in blocks] == list(range(len(blocks)))  # type: ignore[union-attr]
    assert {b.counter for b in blocks} == {blocks[0].counter}
    zcl_bytes = reassemble((b.fragment, b.payload) for b in blocks)  # type: ignore[misc]
    return air.decode_application(blocks[0].profile_id, blocks[0].cluster_id, zcl_bytes)


def test_fragmented_get_response_reassembles_to_the_gbcs_message() -> None:
    blocks = aps_blocks(STEPS, "gbcs get-response")
    assert all(isinstance(b.payload, bytes) and len(b.payload) <= MAX_BLOCK for b in blocks)
    assert all(b.security is None for b in blocks)
    app = _reassembled("gbcs get-response")
    assert isinstance(app.tunnel, TransferData)
    assert app.gbcs == GbcsGetResponse(0, gbcs_response())
    assert decode_message(app.gbcs.message)[0].header.message_code == 0x00FE  # type: ignore[union-attr]


def test_aps_secured_fragments_each_have_their_own_frame_counter() -> None:
    blocks = aps_blocks(STEPS, "gbcs put")
    counters = [b.security.frame_counter for b in blocks]  # type: ignore[union-attr]
    assert counters == list(range(77, 77 + len(blocks)))
    assert _reassembled("gbcs put").gbcs == GbcsPut(gbcs_command())


def test_without_keys_secured_layers_stay_encrypted() -> None:
    announce = air.decode_frame(BY_LABEL["device announce"])
    assert isinstance(announce.nwk.payload, EncryptedPayload)  # type: ignore[union-attr]
    assert announce.aps is None
    key = air.decode_frame(BY_LABEL["transport key"], air.Keys(network={0: NETWORK_KEY}))
    assert isinstance(key.aps, ApsCommand)
    assert isinstance(key.aps.command, EncryptedPayload)


def test_wrong_keys_raise_verification_error() -> None:
    wrong = bytes(16)
    with pytest.raises(VerificationError, match="network"):
        air.decode_frame(BY_LABEL["device announce"], air.Keys(network={0: wrong}))
    with pytest.raises(VerificationError, match="key-transport"):
        air.decode_frame(BY_LABEL["transport key"], air.Keys(link={ESME_IEEE: wrong}))
    with pytest.raises(VerificationError, match="link"):
        air.decode_frame(
            BY_LABEL["gbcs put (aps-secured) block 0"],
            air.Keys(network={0: NETWORK_KEY}, link={ESME_IEEE: wrong}),
        )


def test_link_keys_are_found_by_partner() -> None:
    """Keys of other partners are tried too, as a sniffer would."""
    keys = air.Keys(link={bytes(8): bytes(16), ESME_IEEE: LINK_KEY})
    key = air.decode_frame(BY_LABEL["transport key"], keys)
    assert isinstance(key.aps, ApsCommand) and isinstance(key.aps.command, TransportKey)


@pytest.mark.parametrize("label", sorted(BY_LABEL))
def test_corrupted_psdu_is_refused(label: str) -> None:
    psdu = bytearray(BY_LABEL[label])
    psdu[len(psdu) // 2] ^= 0x10
    with pytest.raises(DecodeError, match="fcs"):
        air.decode_frame(bytes(psdu), KEYS)


@pytest.mark.parametrize("label", sorted(BY_LABEL))
def test_truncations_with_valid_fcs_only_raise_codec_errors(label: str) -> None:
    body = BY_LABEL[label][:-2]
    for cut in range(len(body)):
        with contextlib.suppress(DecodeError, VerificationError):
            air.decode_frame(body[:cut] + fcs(body[:cut]), KEYS)


@given(st.binary(min_size=3, max_size=125))
def test_random_psdus_only_raise_codec_errors(body: bytes) -> None:
    with contextlib.suppress(GbcsError):
        air.decode_frame(body + fcs(body), KEYS)


def test_decode_application_leaves_other_tunnel_protocols_alone() -> None:
    frame = air.decode_frame(BY_LABEL["gbcs get"], KEYS)
    assert frame.app is not None and frame.app.zcl is not None
    tunnel = parse_tunnel(decode_zcl(frame.aps.payload))  # type: ignore[union-attr, arg-type]
    assert decode_gbcs_tunnel(tunnel.data) == GbcsGet()  # type: ignore[union-attr]


@pytest.mark.parametrize("secured", [False, True])
def test_aps_decode_errors_point_into_the_psdu_behind_nwk_security(secured: bool) -> None:
    """A malformed APS frame is reported at its offset in the PSDU: after the 9-byte MAC
    header, the 8-byte NWK header and (when NWK-secured) the 14-byte aux header; the MIC
    comes after the payload, not before it."""
    aux = AuxHeader(KeyId.NETWORK, 1, ESME_IEEE, 0) if secured else None
    start = 9 + 8 + (14 if secured else 0)
    for aps, field, offset in (
        (b"\x03", "frame type", start),
        (b"\x40", "dst endpoint", start + 1),
    ):
        nwk = encode_nwk(NwkFrame(NwkFrameType.DATA, 0, 0x1234, 2, aps, security=aux), NETWORK_KEY)
        psdu = encode_mac(MacFrame(MacFrameType.DATA, 1, nwk, 0x1A2B, 0, None, 0x1234))
        with pytest.raises(DecodeError) as info:
            air.decode_frame(psdu, air.Keys({0: NETWORK_KEY}))
        assert (info.value.layer, info.value.field, info.value.offset) == ("aps", field, offset)


@pytest.mark.parametrize("label", ["rejoin request", "rejoin response", "leave"])
def test_nwk_commands_suppress_route_discovery_and_go_one_hop(label: str) -> None:
    """Rejoin request/response and leave are sent with discover route 0 (suppress) and
    radius 1 (spec 3.4.6.2, 3.4.7.2, 3.4.4.2): they are for a neighbour, never routed."""
    nwk = air.decode_frame(BY_LABEL[label], KEYS).nwk
    assert nwk is not None
    assert (nwk.discover_route, nwk.radius) == (DiscoverRoute.SUPPRESS, 1)


def test_transfer_data_that_is_no_gbcs_tunnel_command_is_left_as_tunnel_data() -> None:
    """Only 0x01-0x03 are GBCS tunnel commands (GET, GET-RESPONSE, PUT); other
    TransferData is decoded as far as the tunnel and not refused."""
    for first in (b"\x00", b"\x04", b"\xff"):
        zcl = encode_zcl(
            tunnel_frame(TransferData(7, first + b"abc"), sequence=1, direction=Direction.TO_SERVER)
        )
        app = air.decode_application(SMART_ENERGY_PROFILE, TUNNELING_CLUSTER, zcl)
        assert app.tunnel == TransferData(7, first + b"abc") and app.gbcs is None


@pytest.mark.parametrize("dst", [0xFFF8, 0xFFFB, 0xFFFC, 0xFFFD, 0xFFFF])
def test_every_nwk_broadcast_address_goes_to_the_mac_broadcast_address(dst: int) -> None:
    """NWK addresses 0xFFF8-0xFFFF are broadcasts (spec 3.6.5; 0xFFF8-0xFFFB reserved):
    MAC destination 0xFFFF with no acknowledgement request, and no route discovery."""
    put = tunnel_frame(TransferData(7, b"\x03x"), sequence=1, direction=Direction.TO_SERVER)
    aps = air.application_frames(encode_zcl(put), cluster_id=TUNNELING_CLUSTER, counter=1)[0]
    for security in (None, air.NwkSecurity(NETWORK_KEY, 0, 1, ESME_IEEE)):
        psdu = air.nwk_data(
            aps,
            mac_sequence=1,
            nwk_sequence=2,
            pan_id=0x1A2B,
            src=0x1234,
            dst=dst,
            security=security,
        )
        frame = air.decode_frame(psdu, KEYS)
        assert (frame.mac.dst, frame.mac.ack_request) == (0xFFFF, False)
        assert frame.nwk is not None
        assert (frame.nwk.dst, frame.nwk.discover_route) == (dst, DiscoverRoute.SUPPRESS)


def test_aps_security_without_extended_nonce_takes_the_nwk_aux_source() -> None:
    """An APS-secured frame whose aux header carries no source (extended nonce bit 0) is
    the usual APS data frame: the receiver takes the nonce's source from the NWK aux
    header (spec 4.4.1.2), here with no NWK source IEEE to fall back on."""
    put = tunnel_frame(TransferData(7, b"\x03x"), sequence=1, direction=Direction.TO_SERVER)
    aps = air.application_frames(
        encode_zcl(put), cluster_id=TUNNELING_CLUSTER, counter=1, security=AuxHeader(KeyId.LINK, 5)
    )[0]
    psdu = air.nwk_data(
        aps,
        mac_sequence=1,
        nwk_sequence=2,
        pan_id=0x1A2B,
        src=0x1234,
        dst=0,
        security=air.NwkSecurity(NETWORK_KEY, 0, 1, ESME_IEEE),
        aps_key=LINK_KEY,
    )
    frame = air.decode_frame(psdu, KEYS)
    assert frame.nwk is not None and frame.nwk.src_ieee is None
    assert frame.app is not None and frame.app.gbcs == GbcsPut(b"x")
