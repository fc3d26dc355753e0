"""Whole on-air frames (PSDUs) for the HAN stack, and one decoder for all of them.

The builders return the PSDU (MAC header ... FCS) of one frame as a ZigBee
Smart Energy network sends it, with NWK and APS security applied. They assume
a single hop: the MAC source and destination are the NWK ones (NWK broadcasts
go to MAC 0xFFFF). Every sequence number and frame counter is a parameter; the
caller keeps the counters.

:func:`decode_frame` reverses them: MAC, then NWK (decrypted with the network
key named by the key sequence number), APS (decrypted with the link key of a
partner), and, for an unfragmented data frame, the ZDO or ZCL/tunnel/GBCS
tunnel content. Fragmented APS data is left for the caller to gather with
:func:`.aps.reassemble` and then hand to :func:`decode_application`.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from . import security as zigbee_security
from ._wire import builder
from .aps import (
    DEVICE_ANNOUNCE_CLUSTER,
    ZDO_PROFILE,
    ApsCommand,
    ApsData,
    ApsFrame,
    DeliveryMode,
    DeviceAnnounce,
    Fragment,
    KeyType,
    TransportKey,
    decode_aps,
    device_announce_frame,
    encode_aps,
    fragment,
)
from .mac import (
    BROADCAST_ADDRESS,
    BROADCAST_PAN,
    MAX_PSDU,
    AssociationRequest,
    AssociationResponse,
    AssociationStatus,
    Beacon,
    BeaconRequest,
    Capability,
    DataRequest,
    MacFrame,
    MacFrameType,
    ZigbeeBeaconPayload,
    decode_mac,
    encode_mac,
    fcs,
)
from .nwk import (
    BROADCAST_RX_ON_WHEN_IDLE,
    DiscoverRoute,
    Leave,
    NwkCommand,
    NwkFrame,
    NwkFrameType,
    RejoinRequest,
    RejoinResponse,
    decode_nwk,
    encode_nwk,
)
from .security import MIC_LENGTH, AuxHeader, EncryptedPayload, KeyId, _encrypt_network
from .tunnel import (
    SMART_ENERGY_PROFILE,
    TUNNELING_CLUSTER,
    GbcsTunnelCommand,
    TransferData,
    TunnelCommand,
    decode_gbcs_tunnel,
    parse_tunnel,
)
from .zcl import ZclFrame, ZclFrameType, decode_zcl

__all__ = [
    "Application",
    "Decoded",
    "Keys",
    "NwkSecurity",
    "application_frames",
    "association_request",
    "association_response",
    "beacon",
    "beacon_request",
    "data_request",
    "decode_application",
    "decode_frame",
    "device_announce",
    "leave",
    "nwk_data",
    "rejoin_request",
    "rejoin_response",
    "transport_network_key",
]

_BROADCAST_FLOOR = 0xFFF8  # NWK addresses from here up are broadcasts (spec 3.6.5)
_new_aux = builder(AuxHeader)
# The MAC and NWK headers of nwk_data's frames (see mac.encode_mac, nwk._encode_header).
_MAC_DATA_HEAD = struct.Struct("<HBHHH")  # control, sequence, dst pan, dst, src
_MAC_DATA_CONTROL = 0x8841  # data, PAN ID compression, short destination and source
_NWK_HEAD = struct.Struct("<HHHBB")  # control, dst, src, radius, sequence
_NWK_DATA_CONTROL = 2 << 2  # data frame, protocol version 2
_GBCS_TUNNEL_FIRST_BYTES = frozenset({b"\x01", b"\x02", b"\x03"})


@dataclass(frozen=True, slots=True)
class NwkSecurity:
    """What NWK-secures an outgoing frame.

    ``source`` is the sender's EUI-64 (the extended nonce) and ``frame_counter``
    its outgoing NWK frame counter, which the caller increments per frame.
    """

    key: bytes
    key_sequence: int
    frame_counter: int
    source: bytes

    def aux(self) -> AuxHeader:
        return _new_aux(KeyId.NETWORK, self.frame_counter, self.source, self.key_sequence)


@dataclass(frozen=True, slots=True)
class Keys:
    """Keys :func:`decode_frame` may use.

    ``network`` maps key sequence numbers to network keys; ``link`` maps a
    partner's EUI-64 to the link key it shares with the trust centre (or its
    APS partner).
    """

    network: Mapping[int, bytes] = field(default_factory=dict)
    link: Mapping[bytes, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Application:
    """The content of an APS data payload, as far as the codec understands it."""

    zdo: DeviceAnnounce | None = None
    zcl: ZclFrame | None = None
    tunnel: TunnelCommand | None = None
    gbcs: GbcsTunnelCommand | None = None


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded PSDU: each layer present as far as the frame (and the keys) reach."""

    mac: MacFrame
    nwk: NwkFrame | None = None
    aps: ApsFrame | None = None
    app: Application | None = None


_NO_KEYS = Keys()
_new_mac = builder(MacFrame)
_new_association_request = builder(AssociationRequest)
_new_association_response = builder(AssociationResponse)
_new_nwk = builder(NwkFrame)
_new_aps_data = builder(ApsData)
_DATA_REQUEST = DataRequest()
_new_application = builder(Application)
_new_decoded = builder(Decoded)


# -- MAC-only frames --------------------------------------------------------


_beacon_requests: dict[int, bytes] = {}  # by sequence number: at most 256


def beacon_request(*, mac_sequence: int) -> bytes:
    """MAC beacon request: broadcast, no source address (802.15.4 7.3.7)."""
    cacheable = type(mac_sequence) is int
    if cacheable:
        psdu = _beacon_requests.get(mac_sequence)
        if psdu is not None:
            return psdu
    psdu = encode_mac(
        MacFrame(
            MacFrameType.COMMAND, mac_sequence, BeaconRequest(), BROADCAST_PAN, BROADCAST_ADDRESS
        )
    )
    if cacheable:
        _beacon_requests[mac_sequence] = psdu
    return psdu


def beacon(
    *,
    mac_sequence: int,
    pan_id: int,
    src: int,
    extended_pan_id: bytes,
    association_permit: bool,
    pan_coordinator: bool = True,
    router_capacity: bool = True,
    end_device_capacity: bool = True,
    device_depth: int = 0,
    update_id: int = 0,
) -> bytes:
    """A ZigBee beacon from coordinator/router ``src`` of PAN ``pan_id``."""
    payload = ZigbeeBeaconPayload(
        extended_pan_id, router_capacity, end_device_capacity, device_depth, update_id
    )
    beacon = Beacon(payload, pan_coordinator, association_permit)
    frame = _new_mac(
        MacFrameType.BEACON, mac_sequence, beacon, None, None, pan_id, src, False, False, 0
    )
    return encode_mac(frame)


def association_request(
    *, mac_sequence: int, pan_id: int, coordinator: int, device_ieee: bytes, capability: Capability
) -> bytes:
    """Association request from a device (extended address, source PAN 0xFFFF)."""
    frame = _new_mac(
        MacFrameType.COMMAND,
        mac_sequence,
        _new_association_request(capability),
        pan_id,
        coordinator,
        BROADCAST_PAN,
        device_ieee,
        True,
        False,
        0,
    )
    return encode_mac(frame)


def association_response(
    *,
    mac_sequence: int,
    pan_id: int,
    device_ieee: bytes,
    coordinator_ieee: bytes,
    short_address: int,
    status: AssociationStatus = AssociationStatus.SUCCESS,
) -> bytes:
    """Association response, extended addresses both ways, PAN ID compressed."""
    frame = _new_mac(
        MacFrameType.COMMAND,
        mac_sequence,
        _new_association_response(short_address, status),
        pan_id,
        device_ieee,
        None,
        coordinator_ieee,
        True,
        False,
        0,
    )
    return encode_mac(frame)


def data_request(*, mac_sequence: int, pan_id: int, src: int | bytes, dst: int) -> bytes:
    """MAC data request (a sleepy device polling its parent, or fetching its association)."""
    frame = _new_mac(
        MacFrameType.COMMAND, mac_sequence, _DATA_REQUEST, pan_id, dst, None, src, True, False, 0
    )
    return encode_mac(frame)


# -- NWK and above ----------------------------------------------------------


def _mac_data(mac_sequence: int, pan_id: int, src: int, dst: int, nwk: bytes) -> bytes:
    broadcast = dst >= _BROADCAST_FLOOR
    frame = _new_mac(
        MacFrameType.DATA,
        mac_sequence,
        nwk,
        pan_id,
        BROADCAST_ADDRESS if broadcast else dst,
        None,
        src,
        not broadcast,
        False,
        0,
    )
    return encode_mac(frame)


def nwk_data(
    aps: ApsFrame,
    *,
    mac_sequence: int,
    nwk_sequence: int,
    pan_id: int,
    src: int,
    dst: int,
    security: NwkSecurity | None,
    aps_key: bytes | None = None,
    radius: int = 30,
    src_ieee: bytes | None = None,
    dst_ieee: bytes | None = None,
    discover_route: DiscoverRoute = DiscoverRoute.ENABLE,
) -> bytes:
    """An APS frame in a NWK data frame in a MAC data frame.

    NWK-secured with ``security`` (``None`` only for the few frames ZigBee
    sends before a device holds the network key); APS-secured with
    ``aps_key`` when ``aps.security`` is set (the link key itself; key-transport
    hashing follows the aux header's key id).
    """
    nonce_source = security.source if security is not None else src_ieee
    payload = encode_aps(aps, aps_key, nonce_source=nonce_source)
    # Fast path: the NWK and MAC headers packed directly, for plainly valid values;
    # the same bytes (and the same single encryption) as the NwkFrame/MacFrame
    # path below, which handles everything else and raises the precise errors.
    if (
        type(src) is int
        and type(dst) is int
        and type(mac_sequence) is int
        and 0 <= mac_sequence <= 0xFF
        and type(pan_id) is int
        and 0 <= pan_id <= 0xFFFF
        and type(discover_route) is DiscoverRoute
        and (dst_ieee is None or (type(dst_ieee) is bytes and len(dst_ieee) == 8))
        and (src_ieee is None or (type(src_ieee) is bytes and len(src_ieee) == 8))
        and (
            security is None
            or (
                type(security) is NwkSecurity
                and security.key is not None
                and type(security.source) is bytes
            )
        )
    ):
        broadcast = dst >= _BROADCAST_FLOOR
        control = (
            _NWK_DATA_CONTROL
            | (DiscoverRoute.SUPPRESS if broadcast else discover_route) << 6
            | (security is not None) << 9
            | (dst_ieee is not None) << 11
            | (src_ieee is not None) << 12
        )
        try:
            header = _NWK_HEAD.pack(control, dst, src, radius, nwk_sequence)
        except struct.error:
            pass
        else:
            if dst_ieee is not None:
                header += dst_ieee[::-1]
            if src_ieee is not None:
                header += src_ieee[::-1]
            if security is None:
                nwk_bytes = header + payload
            else:
                secured = _encrypt_network(
                    header,
                    payload,
                    security.key,
                    security.frame_counter,
                    security.source,
                    security.key_sequence,
                )
                if secured is None:
                    secured = zigbee_security.encrypt(header, security.aux(), payload, security.key)
                nwk_bytes = header + secured
            body = (
                _MAC_DATA_HEAD.pack(
                    _MAC_DATA_CONTROL if broadcast else _MAC_DATA_CONTROL | 0x20,
                    mac_sequence,
                    pan_id,
                    BROADCAST_ADDRESS if broadcast else dst,
                    src,
                )
                + nwk_bytes
            )
            if len(body) <= MAX_PSDU - 2:
                return body + fcs(body)
            return _mac_data(mac_sequence, pan_id, src, dst, nwk_bytes)  # too long: raises
    return _nwk_frame(
        NwkFrameType.DATA,
        payload,
        discover_route if dst < _BROADCAST_FLOOR else DiscoverRoute.SUPPRESS,
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=src,
        dst=dst,
        security=security,
        radius=radius,
        src_ieee=src_ieee,
        dst_ieee=dst_ieee,
    )


def application_frames(
    payload: bytes,
    *,
    cluster_id: int,
    counter: int,
    src_endpoint: int = 1,
    dst_endpoint: int = 1,
    profile_id: int = SMART_ENERGY_PROFILE,
    max_block: int | None = None,
    ack_request: bool = True,
    security: AuxHeader | None = None,
) -> list[ApsData]:
    """The APS data frame(s) for one application payload (a ZCL frame, say).

    With ``max_block`` and a longer payload it is fragmented (spec 2.2.8.4.5):
    every block shares the APS counter and carries its :class:`.aps.Fragment`.
    Send each with :func:`nwk_data`. With ``security`` (an APS aux header) each
    block is secured on its own, block ``i`` with frame counter
    ``security.frame_counter + i``: advance the APS frame counter by the
    number of frames returned.
    """

    def block(data: bytes, frag: Fragment | None, aux: AuxHeader | None) -> ApsData:
        return _new_aps_data(
            cluster_id,
            profile_id,
            src_endpoint,
            dst_endpoint,
            counter,
            data,
            DeliveryMode.UNICAST,
            None,
            ack_request,
            frag,
            aux,
        )

    if max_block is None or len(payload) <= max_block:
        return [block(bytes(payload), None, security)]
    frames = []
    for frag, data in fragment(payload, max_block):
        aux = security
        if aux is not None:
            aux = replace(aux, frame_counter=aux.frame_counter + frag.block_number)
        frames.append(block(data, frag, aux))
    return frames


def transport_network_key(
    *,
    mac_sequence: int,
    nwk_sequence: int,
    aps_counter: int,
    aps_frame_counter: int,
    pan_id: int,
    tc_short: int,
    tc_ieee: bytes,
    dst_short: int,
    dst_ieee: bytes,
    network_key: bytes,
    key_sequence: int,
    link_key: bytes,
) -> bytes:
    """The trust centre's Transport Key (network key) to a joining device.

    NWK unsecured (the device has no network key yet); APS-secured with the
    key-transport key of ``link_key`` and an extended nonce naming the trust
    centre (spec 4.4.1.1, 4.6.3.2.2). ``aps_frame_counter`` is the trust
    centre's outgoing APS frame counter.
    """
    command = ApsCommand(
        aps_counter,
        TransportKey(KeyType.NETWORK, network_key, dst_ieee, tc_ieee, key_sequence),
        AuxHeader(KeyId.KEY_TRANSPORT, aps_frame_counter, tc_ieee),
    )
    return nwk_data(
        command,
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=tc_short,
        dst=dst_short,
        security=None,
        aps_key=link_key,
        radius=1,
        src_ieee=tc_ieee,
        dst_ieee=dst_ieee,
        discover_route=DiscoverRoute.SUPPRESS,
    )


def device_announce(
    *,
    mac_sequence: int,
    nwk_sequence: int,
    aps_counter: int,
    zdo_sequence: int,
    pan_id: int,
    nwk_address: int,
    ieee: bytes,
    capability: Capability,
    security: NwkSecurity,
) -> bytes:
    """ZDO Device_annce, NWK-secured, broadcast to all rx-on-when-idle devices."""
    announce = DeviceAnnounce(zdo_sequence, nwk_address, ieee, capability)
    return nwk_data(
        device_announce_frame(announce, aps_counter),
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=nwk_address,
        dst=BROADCAST_RX_ON_WHEN_IDLE,
        security=security,
        src_ieee=ieee,
    )


def _nwk_frame(
    frame_type: NwkFrameType,
    payload: bytes | NwkCommand,
    discover_route: DiscoverRoute,
    *,
    mac_sequence: int,
    nwk_sequence: int,
    pan_id: int,
    src: int,
    dst: int,
    security: NwkSecurity | None,
    radius: int,
    src_ieee: bytes | None,
    dst_ieee: bytes | None,
) -> bytes:
    """A NWK frame (NWK-secured when ``security`` is given) in a MAC data frame."""
    nwk = _new_nwk(
        frame_type,
        dst,
        src,
        nwk_sequence,
        payload,
        radius,
        discover_route,
        dst_ieee,
        src_ieee,
        None,
        None,
        False,
        security.aux() if security is not None else None,
    )
    key = security.key if security is not None else None
    return _mac_data(mac_sequence, pan_id, src, dst, encode_nwk(nwk, key))


def _nwk_command(command: NwkCommand, **fields: Any) -> bytes:
    return _nwk_frame(NwkFrameType.COMMAND, command, DiscoverRoute.SUPPRESS, **fields)


def rejoin_request(
    *,
    mac_sequence: int,
    nwk_sequence: int,
    pan_id: int,
    src: int,
    dst: int,
    device_ieee: bytes,
    capability: Capability,
    security: NwkSecurity | None = None,
) -> bytes:
    """NWK rejoin request (spec 3.4.6) from ``src`` to its chosen parent ``dst``.

    A trust-centre rejoin (the device lacks the current network key) is sent
    NWK-unsecured: leave ``security`` as ``None``.
    """
    return _nwk_command(
        RejoinRequest(capability),
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=src,
        dst=dst,
        security=security,
        radius=1,
        src_ieee=device_ieee,
        dst_ieee=None,
    )


def rejoin_response(
    *,
    mac_sequence: int,
    nwk_sequence: int,
    pan_id: int,
    src: int,
    src_ieee: bytes,
    dst: int,
    dst_ieee: bytes,
    network_address: int,
    status: int = 0,
    security: NwkSecurity | None = None,
) -> bytes:
    """NWK rejoin response (spec 3.4.7); unsecured in answer to an unsecured request."""
    return _nwk_command(
        RejoinResponse(network_address, status),
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=src,
        dst=dst,
        security=security,
        radius=1,
        src_ieee=src_ieee,
        dst_ieee=dst_ieee,
    )


def leave(
    *,
    mac_sequence: int,
    nwk_sequence: int,
    pan_id: int,
    src: int,
    dst: int,
    security: NwkSecurity,
    request: bool = False,
    rejoin: bool = False,
    remove_children: bool = False,
    src_ieee: bytes | None = None,
) -> bytes:
    """NWK leave (spec 3.4.4), always NWK-secured.

    A device leaving announces it to ``dst`` 0xFFFD with ``request`` False; a
    parent or the trust centre asks a device to leave with ``request`` True.
    """
    return _nwk_command(
        Leave(rejoin, request, remove_children),
        mac_sequence=mac_sequence,
        nwk_sequence=nwk_sequence,
        pan_id=pan_id,
        src=src,
        dst=dst,
        security=security,
        radius=1,
        src_ieee=src_ieee,
        dst_ieee=None,
    )


# -- decoding ---------------------------------------------------------------


def decode_application(
    profile_id: int, cluster_id: int, payload: bytes, *, base: int = 0
) -> Application:
    """ZDO Device_annce, or ZCL with the Tunneling cluster and GBCS tunnel header.

    Frames the codec does not model come back as far as it understands them
    (a ZCL frame of another cluster, or a global command such as Default
    Response on the Tunneling cluster, for instance).
    """
    if profile_id == ZDO_PROFILE:
        if cluster_id == DEVICE_ANNOUNCE_CLUSTER:
            return Application(zdo=DeviceAnnounce.decode(payload, base=base))
        return Application()
    zcl = decode_zcl(payload, base=base)
    if (
        profile_id != SMART_ENERGY_PROFILE
        or cluster_id != TUNNELING_CLUSTER
        or zcl.frame_type is not ZclFrameType.CLUSTER
        or zcl.manufacturer_code is not None
    ):
        return _new_application(None, zcl, None, None)
    body_at = base + len(payload) - len(zcl.payload)
    tunnel = parse_tunnel(zcl, base=body_at)
    gbcs = None
    if type(tunnel) is TransferData and tunnel.data[:1] in _GBCS_TUNNEL_FIRST_BYTES:
        gbcs = decode_gbcs_tunnel(tunnel.data, base=body_at + 2)
    return _new_application(None, zcl, tunnel, gbcs)


def decode_frame(psdu: bytes, keys: Keys | None = None, *, mac: MacFrame | None = None) -> Decoded:
    """Parse one PSDU (FCS included) into its layers, removing the security ``keys`` allow.

    Raises :class:`gbcs.errors.DecodeError` for malformed bytes and
    :class:`gbcs.errors.VerificationError` when a key given for a layer does not
    verify it. Without a key a secured payload stays an ``EncryptedPayload``
    and the layers above it are ``None``. ``mac`` is the PSDU's MAC frame when
    the caller has already decoded it (a radio filtering on addresses).
    """
    keys = keys or _NO_KEYS
    if mac is None:
        mac = decode_mac(psdu)
    mac_payload = mac.payload
    if mac.frame_type is not MacFrameType.DATA or not isinstance(mac_payload, bytes):
        return Decoded(mac)
    network_keys = keys.network
    nwk_at = len(psdu) - 2 - len(mac_payload)
    nwk = decode_nwk(mac_payload, network_keys, base=nwk_at)
    payload = nwk.payload
    if nwk.frame_type is not NwkFrameType.DATA or not isinstance(payload, bytes):
        return _new_decoded(mac, nwk, None, None)
    aps_at = nwk_at + len(mac_payload) - len(payload)
    src_ieee = nwk.src_ieee
    sender = src_ieee
    if nwk.security is not None:
        aps_at -= MIC_LENGTH
        sender = src_ieee or nwk.security.source
    aps = decode_aps(
        payload,
        keys.link,
        base=aps_at,
        partners=(src_ieee, nwk.dst_ieee, sender),
        nonce_source=sender,
        network_keys=network_keys,
    )
    if type(aps) is not ApsData:
        return _new_decoded(mac, nwk, aps, None)
    app_payload = aps.payload
    if aps.fragment is not None or isinstance(app_payload, EncryptedPayload):
        return _new_decoded(mac, nwk, aps, None)
    app_at = aps_at + len(payload) - len(app_payload)
    if aps.security is not None:
        app_at -= MIC_LENGTH
    return _new_decoded(
        mac, nwk, aps, decode_application(aps.profile_id, aps.cluster_id, app_payload, base=app_at)
    )
