"""Hypothesis strategies for the ZigBee codec's frames (valid by construction)."""

from __future__ import annotations

from hypothesis import strategies as st

from emulators.zigbee.aps import (
    AckFragment,
    ApsAck,
    ApsCommand,
    ApsData,
    DeliveryMode,
    Fragment,
    KeyType,
    RawApsCommand,
    TransportKey,
)
from emulators.zigbee.mac import (
    AssociationRequest,
    AssociationResponse,
    Beacon,
    BeaconRequest,
    Capability,
    DataRequest,
    MacFrame,
    MacFrameType,
    ZigbeeBeaconPayload,
)
from emulators.zigbee.nwk import (
    DiscoverRoute,
    Leave,
    NwkFrame,
    NwkFrameType,
    RawNwkCommand,
    RejoinRequest,
    RejoinResponse,
    SourceRoute,
)
from emulators.zigbee.security import AuxHeader, KeyId
from emulators.zigbee.tunnel import (
    CloseTunnel,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
)
from emulators.zigbee.zcl import Direction, ZclFrame, ZclFrameType

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
eui64 = st.binary(min_size=8, max_size=8)
keys = st.binary(min_size=16, max_size=16)
capabilities = st.builds(
    Capability,
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)


# -- MAC ----------------------------------------------------------------------

beacon_payloads = st.builds(
    ZigbeeBeaconPayload,
    eui64,
    st.booleans(),
    st.booleans(),
    st.integers(0, 15),
    u8,
    st.integers(0, 15),
    st.integers(0, 15),
    st.integers(0, 0xFFFFFF),
)
beacons = st.builds(
    Beacon,
    beacon_payloads,
    st.booleans(),
    st.booleans(),
    st.integers(0, 15),
    st.integers(0, 15),
    st.integers(0, 15),
    st.booleans(),
)
mac_commands = st.one_of(
    st.just(BeaconRequest()),
    st.just(DataRequest()),
    st.builds(AssociationRequest, capabilities),
    st.builds(AssociationResponse, u16, u8),
)
addresses = st.one_of(u16, eui64)


@st.composite
def mac_frames(draw: st.DrawFn) -> MacFrame:
    kind = draw(st.sampled_from(MacFrameType))
    dst = draw(st.none() | addresses)
    src = draw(st.none() | addresses)
    dst_pan = None if dst is None else draw(u16)
    src_pan = None
    if src is not None:
        src_pan = draw(u16) if dst is None else draw(st.none() | u16)
    if kind == MacFrameType.BEACON:
        payload: object = draw(beacons)
    elif kind == MacFrameType.COMMAND:
        payload = draw(mac_commands)
    elif kind == MacFrameType.ACK:
        payload = b""
    else:
        payload = draw(st.binary(max_size=80))
    return MacFrame(
        kind,
        draw(u8),
        payload,  # type: ignore[arg-type]
        dst_pan,
        dst,
        src_pan,
        src,
        draw(st.booleans()),
        draw(st.booleans()),
        draw(st.integers(0, 1)),
    )


# -- security -----------------------------------------------------------------


@st.composite
def aux_headers(draw: st.DrawFn, key_id: KeyId | None = None) -> AuxHeader:
    kid = key_id if key_id is not None else draw(st.sampled_from(KeyId))
    return AuxHeader(
        kid,
        draw(u32),
        draw(st.none() | eui64),
        draw(u8) if kid == KeyId.NETWORK else None,
    )


nwk_aux_headers = st.builds(AuxHeader, st.just(KeyId.NETWORK), u32, eui64, u8)


# -- NWK ----------------------------------------------------------------------

nwk_commands = st.one_of(
    st.builds(RejoinRequest, capabilities),
    st.builds(RejoinResponse, u16, u8),
    st.builds(Leave, st.booleans(), st.booleans(), st.booleans()),
    st.builds(
        RawNwkCommand,
        st.sampled_from([0x01, 0x02, 0x03, 0x05, 0x08, 0x09, 0x0A, 0x0B, 0x0C]),
        st.binary(max_size=20),
    ),
)


@st.composite
def nwk_frames(draw: st.DrawFn, secured: bool | None = None) -> NwkFrame:
    kind = draw(st.sampled_from(NwkFrameType))
    payload = draw(nwk_commands) if kind == NwkFrameType.COMMAND else draw(st.binary(max_size=60))
    route = draw(
        st.none()
        | st.lists(u16, max_size=4).flatmap(
            lambda relays: st.builds(
                SourceRoute,
                st.integers(0, max(len(relays) - 1, 0)),
                st.just(tuple(relays)),
            )
        )
    )
    if secured is None:
        secured = draw(st.booleans())
    return NwkFrame(
        kind,
        draw(u16),
        draw(u16),
        draw(u8),
        payload,
        draw(u8),
        draw(st.sampled_from(DiscoverRoute)),
        draw(st.none() | eui64),
        draw(st.none() | eui64),
        draw(st.none() | u8),
        route,
        draw(st.booleans()),
        draw(nwk_aux_headers) if secured else None,
    )


# -- APS ----------------------------------------------------------------------

fragments = st.one_of(
    st.builds(Fragment, st.just(0), st.integers(1, 255)),
    st.builds(Fragment, st.integers(1, 255)),
)
transport_keys = st.one_of(
    st.builds(TransportKey, st.just(KeyType.NETWORK), keys, eui64, eui64, u8),
    st.builds(TransportKey, st.just(KeyType.TRUST_CENTER_LINK), keys, eui64, eui64),
)
aps_command_bodies = st.one_of(
    transport_keys,
    st.builds(RawApsCommand, u8.filter(lambda n: n != 0x05), st.binary(max_size=30)),
    st.builds(
        RawApsCommand,
        st.just(0x05),
        st.binary(max_size=30).filter(lambda b: b[:1] not in (b"\x01", b"\x04")),
    ),
)
link_aux_headers = st.builds(
    AuxHeader, st.sampled_from([KeyId.LINK, KeyId.KEY_TRANSPORT, KeyId.KEY_LOAD]), u32, eui64
)


@st.composite
def aps_data_frames(draw: st.DrawFn, secured: bool | None = None) -> ApsData:
    mode = draw(st.sampled_from(DeliveryMode))
    group = draw(u16) if mode == DeliveryMode.GROUP else None
    if secured is None:
        secured = draw(st.booleans())
    return ApsData(
        draw(u16),
        draw(u16),
        draw(u8),
        None if group is not None else draw(u8),
        draw(u8),
        draw(st.binary(max_size=60)),
        mode,
        group,
        draw(st.booleans()),
        draw(st.none() | fragments),
        draw(link_aux_headers) if secured else None,
    )


@st.composite
def aps_commands(draw: st.DrawFn, secured: bool | None = None) -> ApsCommand:
    if secured is None:
        secured = draw(st.booleans())
    return ApsCommand(
        draw(u8),
        draw(aps_command_bodies),
        draw(link_aux_headers) if secured else None,
        draw(st.sampled_from([DeliveryMode.UNICAST, DeliveryMode.BROADCAST])),
        draw(st.booleans()),
    )


@st.composite
def aps_acks(draw: st.DrawFn) -> ApsAck:
    frag = draw(st.none() | st.builds(AckFragment, st.booleans(), u8, u8))
    if draw(st.booleans()):
        return ApsAck(draw(u8), fragment=frag)
    return ApsAck(draw(u8), draw(u8), draw(u16), draw(u16), draw(u8), frag)


aps_frames = st.one_of(aps_data_frames(secured=False), aps_commands(secured=False), aps_acks())


# -- ZCL and tunnel -----------------------------------------------------------

zcl_frames = st.builds(
    ZclFrame,
    st.sampled_from(ZclFrameType),
    st.sampled_from(Direction),
    u8,
    u8,
    st.binary(max_size=40),
    st.booleans(),
    st.none() | u16,
)
client_tunnel_commands = st.one_of(
    st.builds(RequestTunnel, u8, u16, st.booleans(), u16),
    st.builds(CloseTunnel, u16),
    st.builds(TransferData, u16, st.binary(max_size=40)),
    st.builds(TransferDataError, u16, u8),
)
server_tunnel_commands = st.one_of(
    st.builds(RequestTunnelResponse, u16, u8, u16),
    st.builds(TransferData, u16, st.binary(max_size=40)),
    st.builds(TransferDataError, u16, u8),
)
gbcs_tunnel_commands = st.one_of(
    st.just(GbcsGet()),
    st.builds(GbcsGetResponse, u8, st.binary(max_size=40)),
    st.builds(GbcsPut, st.binary(max_size=40)),
)
