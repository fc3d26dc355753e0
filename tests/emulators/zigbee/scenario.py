"""A GB HAN conversation, frame by frame, for the decode and Wireshark tests.

A device finds the CHF's PAN, associates, receives the network key (APS-secured
with the link key from its install code), announces itself, opens a GBCS
tunnel, GETs a CCS07 response that needs APS fragmentation, PUTs a message with
APS link-key security, then does a trust-centre rejoin and leaves.

It exercises the codec's frame types, not the emulated devices' protocol: there
the CHF opens an ESME's tunnel (GBCS 10.2.2.1), only a GSME GETs, and fragments
are acknowledged a window at a time (see ``tests/emulators/test_node_aps.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from emulators.zigbee import air
from emulators.zigbee.aps import ApsAck, ApsData
from emulators.zigbee.install_code import link_key_from_install_code
from emulators.zigbee.mac import Capability
from emulators.zigbee.security import AuxHeader, KeyId
from emulators.zigbee.tunnel import (
    TUNNELING_CLUSTER,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    encode_gbcs_tunnel,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, ZclFrame, encode_zcl
from gbcs.examples import build_example

PAN_ID = 0x1A2B
EXTENDED_PAN_ID = bytes.fromhex("00DB1234567890FF")
CHF_IEEE = bytes.fromhex("00124B0001020304")
ESME_IEEE = bytes.fromhex("00124B000A0B0C0D")
ESME_SHORT = 0x1234
CHF_SHORT = 0x0000
NETWORK_KEY = bytes.fromhex("0102030405060708090A0B0C0D0E0F10")
INSTALL_CODE = bytes.fromhex("83FED3407A939723A5C639B26916D505")
LINK_KEY = link_key_from_install_code(INSTALL_CODE)
TUNNEL_ID = 7
MAX_BLOCK = 64
SECURED_MAX_BLOCK = 48  # APS security adds 17 bytes (aux header and MIC)
KEYS = air.Keys({0: NETWORK_KEY}, {ESME_IEEE: LINK_KEY})


@dataclass(frozen=True)
class Step:
    label: str
    psdu: bytes


@cache
def gbcs_response() -> bytes:
    """A real GBCS message (CCS07 response, message code 0x00FE) from the kit's examples."""
    return build_example("ccs07-response")


@cache
def gbcs_command() -> bytes:
    """Another real GBCS message (the CCS07 command) for the APS-secured PUT."""
    return build_example("ccs07")


class _Counters:
    def __init__(self) -> None:
        self.mac = {CHF_IEEE: 100, ESME_IEEE: 1}
        self.nwk = {CHF_IEEE: 100, ESME_IEEE: 1}
        self.frame = {CHF_IEEE: 1000, ESME_IEEE: 1}

    def take(self, table: dict[bytes, int], who: bytes) -> int:
        value = table[who]
        table[who] = value + 1
        return value


def _zcl(
    steps: list[Step],
    counters: _Counters,
    label: str,
    sender: bytes,
    frame: ZclFrame,
    aps_counter: int,
    *,
    max_block: int | None = None,
    aps_security: AuxHeader | None = None,
) -> None:
    src, dst = (ESME_SHORT, CHF_SHORT) if sender == ESME_IEEE else (CHF_SHORT, ESME_SHORT)
    blocks = air.application_frames(
        encode_zcl(frame),
        cluster_id=TUNNELING_CLUSTER,
        counter=aps_counter,
        max_block=max_block,
        security=aps_security,
    )
    for i, aps in enumerate(blocks):
        security = air.NwkSecurity(NETWORK_KEY, 0, counters.take(counters.frame, sender), sender)
        psdu = air.nwk_data(
            aps,
            mac_sequence=counters.take(counters.mac, sender),
            nwk_sequence=counters.take(counters.nwk, sender),
            pan_id=PAN_ID,
            src=src,
            dst=dst,
            security=security,
            aps_key=LINK_KEY if aps_security is not None else None,
        )
        steps.append(Step(label if len(blocks) == 1 else f"{label} block {i}", psdu))


def han_steps() -> list[Step]:
    c = _Counters()
    esme_nwk = lambda: air.NwkSecurity(  # noqa: E731
        NETWORK_KEY, 0, c.take(c.frame, ESME_IEEE), ESME_IEEE
    )
    steps = [
        Step("beacon request", air.beacon_request(mac_sequence=c.take(c.mac, ESME_IEEE))),
        Step(
            "beacon",
            air.beacon(
                mac_sequence=c.take(c.mac, CHF_IEEE),
                pan_id=PAN_ID,
                src=CHF_SHORT,
                extended_pan_id=EXTENDED_PAN_ID,
                association_permit=True,
            ),
        ),
        Step(
            "association request",
            air.association_request(
                mac_sequence=c.take(c.mac, ESME_IEEE),
                pan_id=PAN_ID,
                coordinator=CHF_SHORT,
                device_ieee=ESME_IEEE,
                capability=Capability.router(),
            ),
        ),
        Step(
            "data request",
            air.data_request(
                mac_sequence=c.take(c.mac, ESME_IEEE), pan_id=PAN_ID, src=ESME_IEEE, dst=CHF_SHORT
            ),
        ),
        Step(
            "association response",
            air.association_response(
                mac_sequence=c.take(c.mac, CHF_IEEE),
                pan_id=PAN_ID,
                device_ieee=ESME_IEEE,
                coordinator_ieee=CHF_IEEE,
                short_address=ESME_SHORT,
            ),
        ),
        Step(
            "transport key",
            air.transport_network_key(
                mac_sequence=c.take(c.mac, CHF_IEEE),
                nwk_sequence=c.take(c.nwk, CHF_IEEE),
                aps_counter=1,
                aps_frame_counter=c.take(c.frame, CHF_IEEE),
                pan_id=PAN_ID,
                tc_short=CHF_SHORT,
                tc_ieee=CHF_IEEE,
                dst_short=ESME_SHORT,
                dst_ieee=ESME_IEEE,
                network_key=NETWORK_KEY,
                key_sequence=0,
                link_key=LINK_KEY,
            ),
        ),
        Step(
            "device announce",
            air.device_announce(
                mac_sequence=c.take(c.mac, ESME_IEEE),
                nwk_sequence=c.take(c.nwk, ESME_IEEE),
                aps_counter=1,
                zdo_sequence=1,
                pan_id=PAN_ID,
                nwk_address=ESME_SHORT,
                ieee=ESME_IEEE,
                capability=Capability.router(),
                security=esme_nwk(),
            ),
        ),
    ]
    _zcl(steps, c, "request tunnel", ESME_IEEE, tunnel_frame(RequestTunnel(), sequence=1), 2)
    _zcl(
        steps,
        c,
        "request tunnel response",
        CHF_IEEE,
        tunnel_frame(RequestTunnelResponse(TUNNEL_ID), sequence=1),
        2,
    )
    steps.append(
        Step(
            "aps ack",
            air.nwk_data(
                ApsAck(2, 1, TUNNELING_CLUSTER, 0x0109, 1),
                mac_sequence=c.take(c.mac, ESME_IEEE),
                nwk_sequence=c.take(c.nwk, ESME_IEEE),
                pan_id=PAN_ID,
                src=ESME_SHORT,
                dst=CHF_SHORT,
                security=esme_nwk(),
            ),
        )
    )
    get = TransferData(TUNNEL_ID, encode_gbcs_tunnel(GbcsGet()))
    _zcl(
        steps,
        c,
        "gbcs get",
        ESME_IEEE,
        tunnel_frame(get, sequence=2, direction=Direction.TO_SERVER),
        3,
    )
    response = TransferData(TUNNEL_ID, encode_gbcs_tunnel(GbcsGetResponse(0, gbcs_response())))
    _zcl(
        steps,
        c,
        "gbcs get-response",
        CHF_IEEE,
        tunnel_frame(response, sequence=2, direction=Direction.TO_CLIENT),
        3,
        max_block=MAX_BLOCK,
    )
    put = TransferData(TUNNEL_ID, encode_gbcs_tunnel(GbcsPut(gbcs_command())))
    _zcl(
        steps,
        c,
        "gbcs put (aps-secured)",
        ESME_IEEE,
        tunnel_frame(put, sequence=3, direction=Direction.TO_SERVER),
        4,
        max_block=SECURED_MAX_BLOCK,
        aps_security=AuxHeader(KeyId.LINK, 77, ESME_IEEE),
    )
    steps += [
        Step(
            "rejoin request",
            air.rejoin_request(
                mac_sequence=c.take(c.mac, ESME_IEEE),
                nwk_sequence=c.take(c.nwk, ESME_IEEE),
                pan_id=PAN_ID,
                src=ESME_SHORT,
                dst=CHF_SHORT,
                device_ieee=ESME_IEEE,
                capability=Capability.router(),
            ),
        ),
        Step(
            "rejoin response",
            air.rejoin_response(
                mac_sequence=c.take(c.mac, CHF_IEEE),
                nwk_sequence=c.take(c.nwk, CHF_IEEE),
                pan_id=PAN_ID,
                src=CHF_SHORT,
                src_ieee=CHF_IEEE,
                dst=ESME_SHORT,
                dst_ieee=ESME_IEEE,
                network_address=ESME_SHORT,
            ),
        ),
        Step(
            "leave",
            air.leave(
                mac_sequence=c.take(c.mac, ESME_IEEE),
                nwk_sequence=c.take(c.nwk, ESME_IEEE),
                pan_id=PAN_ID,
                src=ESME_SHORT,
                dst=0xFFFD,
                security=esme_nwk(),
                src_ieee=ESME_IEEE,
            ),
        ),
    ]
    return steps


def aps_blocks(steps: list[Step], prefix: str) -> list[ApsData]:
    """The APS data frames of the steps whose label starts with ``prefix``."""
    out = []
    for step in steps:
        if step.label.startswith(prefix):
            aps = air.decode_frame(step.psdu, KEYS).aps
            assert isinstance(aps, ApsData)
            out.append(aps)
    return out
