"""The CHF on a zigpy ControllerApplication over the sim radio (``sim://<place>``).

Every hub's HAN here is :class:`hardware.zigpy_han.ZigpyHubRadio` on a
:class:`hardware.sim_radio.SimControllerApplication`: the frames the meters see
come from zigpy's ``send_packet`` through the sim NCP, and what the meters send
reaches the CHF through zigpy's ``packet_received``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
from typing import Any

import pytest
import zigpy.exceptions
import zigpy.types as t

from emulators.medium import airtime
from emulators.node import APS_MAX_RETRIES, MAX_FRAME_RETRIES, NodeState
from emulators.scenarios import Run, run_scenario
from emulators.tunnel_server import TunnelAsk
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee import air
from emulators.zigbee.aps import AckFragment, ApsAck, ApsCommand, TransportKey
from emulators.zigbee.install_code import link_key_from_install_code
from emulators.zigbee.mac import decode_mac
from emulators.zigbee.security import FRAME_COUNTER_LIMIT
from emulators.zigbee.time_cluster import TIME_CLUSTER, utc_time
from emulators.zigbee.tunnel import (
    SMART_ENERGY_PROFILE,
    TUNNELING_CLUSTER,
    GbcsGet,
    GbcsPut,
    RequestTunnel,
    TransferData,
    encode_gbcs_tunnel,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, encode_zcl
from gbcs import asn1
from gbcs.devicelog import DeviceLog
from gbcs.errors import GbcsError
from gbcs.frame import decode_message
from gbcs.joins import JoinDetails
from hardware.realtime import use_wall_clock
from hardware.sim_radio import (
    SimControllerApplication,
    SimNcp,
    WellKnownKeyRefused,
    register_place,
    sim_config,
    sim_hub_radio,
)
from hardware.zigpy_han import (
    WELL_KNOWN_KEY,
    ForeignRadio,
    ZigpyHubRadio,
    from_eui64,
    se_endpoint_descriptor,
    to_eui64,
)
from tests.emulators.conftest import lose_parent
from tests.emulators.test_han_invariants import (
    _route_failures,
    esme_rebooted_before_its_tunnel_reopens,
    esme_unplugged_after_joining,
    held_message_lost_in_the_air,
)
from tests.emulators.test_node_tunnel import (
    esme_tunnel_frames,
    one_missed_ack_keeps_a_healthy_esme_reachable,
)

SEED = 7


class ZigpyWorld(World):
    """A world whose hubs all run their HAN through zigpy on the sim radio."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.hub_radio = sim_hub_radio


def _radio(hub: Hub) -> ZigpyHubRadio:
    assert isinstance(hub.node, ZigpyHubRadio)
    return hub.node


def _app(hub: Hub) -> SimControllerApplication:
    app = _radio(hub).app
    assert isinstance(app, SimControllerApplication)
    return app


def _transport_keys_under(world: World, key: bytes) -> int:
    """How many Transport Key commands in the capture decrypt with ``key``."""
    euis = [*world.hubs, *world.meters]
    keys = air.Keys(link=dict.fromkeys(euis, key))
    found = 0
    assert world.capture is not None
    for _, _, psdu in world.capture.frames:
        try:
            decoded = air.decode_frame(psdu, keys)
        except GbcsError:
            continue
        aps = decoded.aps
        if isinstance(aps, ApsCommand) and isinstance(aps.command, TransportKey):
            found += 1
    return found


def test_returned_meter_through_zigpy() -> None:
    world = ZigpyWorld(SEED)
    run = run_scenario("returned-meter", SEED, world=world)
    assert [s.result for s in run.steps] == ["ok"] * len(run.steps), run.report(SEED)
    assert len(world.hubs) == 3
    third = list(world.hubs.values())[-1]
    (meter,) = world.meters.values()
    assert world.joined_to(meter) == third.eui64
    assert meter.node.rejoins == 1 and meter.node.joins == 2
    # zigpy never interviewed the meters: no unicast ZDO from any hub.
    hubs = set(world.hubs)
    assert world.capture is not None
    network_keys = [h.node.state()["settings"]["network_key"] for h in world.hubs.values()]
    for _, _, psdu in world.capture.frames:
        for key in network_keys:
            keys = air.Keys(network={0: bytes.fromhex(key)})
            try:
                decoded = air.decode_frame(psdu, keys)
            except GbcsError:
                continue
            nwk, aps = decoded.nwk, decoded.aps
            if nwk is not None and nwk.src == 0 and getattr(aps, "profile_id", None) == 0:
                assert nwk.dst >= 0xFFF8, "zigpy sent a unicast ZDO request to a meter"
    # Every admission used a link key from a device log, never the well-known key.
    for hub in world.hubs.values():
        assert _app(hub).ncp.key_table.get(meter.eui64, b"") != WELL_KNOWN_KEY
        assert all(a.key != WELL_KNOWN_KEY for a in _app(hub).ncp.admitted)
    assert hubs == {h.eui64 for h in world.hubs.values()}


def _premises(world: World) -> tuple[Run, Hub, MeterUnit]:
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    meter = world.add_meter("premises", "esme", name="ESME")
    return run, hub, meter


def _joined_premises(world: World) -> tuple[Hub, MeterUnit]:
    """:func:`_premises`' hub and its ESME, joined to it."""
    run, hub, meter = _premises(world)
    assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    return hub, meter


def test_wrong_install_code_never_joins() -> None:
    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    wrong = bytes(b ^ 0x5A for b in meter.device.install_code)
    assert run.add_device(hub, meter, install_code=wrong).ok
    step = run.wait_joined(meter, hub, "HAN join (wrong install code)", timeout=300)
    assert not step.ok
    assert meter.node.joins == 0 and meter.node.state is not NodeState.JOINED
    assert not hub.node.has_child(meter.eui64)
    ncp = _app(hub).ncp
    # zigpy permitted it, the NCP admitted it and sent the network key under the
    # logged (wrong) key, which the meter cannot open.
    assert ncp.admitted and {a.key for a in ncp.admitted} == {link_key_from_install_code(wrong)}
    assert _transport_keys_under(world, meter.node.link_key) == 0
    assert meter.eui64 in hub.chf.join_windows  # the CHF never saw it join


def test_the_well_known_key_never_admits() -> None:
    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    app, loop = _app(hub), _radio(hub).loop
    rogue = world.add_meter("premises", "esme", name="rogue")
    rogue.node.link_key = WELL_KNOWN_KEY  # a device that only knows "ZigBeeAlliance09"

    # Opening the network to everyone, or with the well-known key, is refused.
    for call in (
        app.permit(60),
        app.permit(60, node=app.state.node_info.ieee),
        app.permit_ncp(60),
        app.permit_with_link_key(to_eui64(rogue.eui64), t.KeyData(WELL_KNOWN_KEY), 60),
    ):
        with pytest.raises(WellKnownKeyRefused):
            loop.run_until_complete(call)
    loop.run_until_complete(app.permit(0))  # closing is fine (zigpy does it at start-up)
    world.run(120)
    assert not app.ncp.transient and not any(a.ieee == rogue.eui64 for a in app.ncp.admitted)
    assert rogue.node.state is NodeState.SCANNING

    # A CCS01 window for the rogue admits it only under its install-code key.
    assert run.add_device(hub, meter).ok
    assert run.add_device(hub, rogue).ok
    assert run.wait_joined(meter, hub, "HAN join (install code)").ok
    assert not run.wait_joined(rogue, hub, "HAN join (well-known key)", timeout=120).ok
    assert any(a.ieee == rogue.eui64 for a in app.ncp.admitted)
    assert all(a.key != WELL_KNOWN_KEY for a in app.ncp.admitted)
    assert _transport_keys_under(world, WELL_KNOWN_KEY) == 0
    assert _transport_keys_under(world, meter.node.link_key) == 1  # the check can see keys

    # A device-log entry holding the well-known key is neither permitted nor kept.
    entry = hub.chf.current[rogue.eui64]
    hub.chf.current[rogue.eui64] = type(entry)(rogue.eui64, WELL_KNOWN_KEY)
    assert hub.chf.on_log_change is not None
    hub.chf.on_log_change()
    world.run(120)
    assert rogue.eui64 not in app.ncp.transient
    assert app.ncp.key_table.get(rogue.eui64) != WELL_KNOWN_KEY
    assert not hub.node.has_child(rogue.eui64)


def _permitted(kind: str) -> tuple[World, Run, Hub, MeterUnit, SimNcp]:
    """A meter, still off, whose CCS01 permit has reached the sim NCP."""
    world = ZigpyWorld(SEED)
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    meter = world.add_meter("premises", kind, name=kind.upper(), power=False)
    assert run.add_device(hub, meter).ok
    world.run(5)
    return world, run, hub, meter, _app(hub).ncp


def test_a_device_ccs02_removes_while_its_association_is_held_gets_no_key() -> None:
    """zigpy takes its permit back (CCS02) between the association and its acknowledged
    response, at least macResponseWaitTime apart: the sim NCP, deciding then, admits
    nobody, as the emulated coordinator does."""
    world, run, hub, meter, ncp = _permitted("esme")
    joins: list[bytes] = []
    ncp.on_join = lambda ieee, nwk, inner=ncp.on_join: (joins.append(ieee), inner(ieee, nwk))
    meter.node.power_on()
    assert world.run_until(lambda: bool(ncp._associating), 60)
    assert run.remove_device(hub, meter).ok
    world.run(3)
    assert meter.eui64 not in ncp.transient  # the permit was taken back
    assert joins == [] and meter.eui64 not in ncp.children
    assert not meter.node.has_network
    assert _transport_keys_under(world, meter.node.link_key) == 0


def test_a_joining_gsme_zigpy_removes_does_not_collect_its_held_key() -> None:
    """zigpy's force_remove (the sim NCP's ask_to_leave) while a joining GSME's Transport
    Key is held for its poll: the key is given up with the child, so the GSME, which
    cannot read the Leave request yet, gets no network key."""
    world, _, _, gsme, ncp = _permitted("gsme")
    gsme.node.power_on()
    held = lambda: [k for k, frames in ncp._indirect.items() if type(k) is int and frames]  # noqa: E731
    assert world.run_until(lambda: bool(held()), 60)
    ncp.ask_to_leave(gsme.eui64)
    assert not held()
    world.run(3)
    assert not gsme.node.has_network
    assert _transport_keys_under(world, gsme.node.link_key) == 0  # it never went on the air


def test_ccs03_restore_writes_key_table_and_meter_rejoins() -> None:
    world = ZigpyWorld(SEED)
    run, old, meter = _premises(world)
    assert run.add_device(old, meter).ok
    assert run.wait_joined(meter, old, "HAN join (install code)").ok
    world.move(meter, None)
    world.run(60)
    bench = world.add_hub("bench", name="bench CHF")
    world.move(meter, "bench")
    assert not run.wait_joined(meter, bench, "rejoin before restore", timeout=120).ok

    _, logs = run.read_logs(old)
    assert logs is not None and logs.current is not None
    log = DeviceLog(logs.current.extended_pan_id, logs.current.only(meter.eui64).entries)
    assert run.restore(bench, log).ok
    world.run(0.001)  # the radio syncs right after the CCS03 response

    app = _app(bench)
    loop = _radio(bench).loop
    loop.run_until_complete(app.load_network_info(load_devices=True))
    info = app.state.network_info
    table = {from_eui64(k.partner_ieee): bytes(k.key) for k in info.key_table}
    assert table == {meter.eui64: log.entries[0].tc_link_key_hash}
    assert from_eui64(info.extended_pan_id) == log.extended_pan_id
    assert app.ncp.settings is not None
    assert app.ncp.settings.extended_pan_id == log.extended_pan_id

    assert run.wait_joined(meter, bench, "trust-centre rejoin").ok
    assert meter.node.rejoins == 1
    rejoin = [a for a in app.ncp.admitted if a.how == "rejoin"]
    assert [(a.ieee, a.key) for a in rejoin] == [(meter.eui64, log.entries[0].tc_link_key_hash)]
    assert [s.result for s in run.qa_reads(bench, meter)] == ["ok"] * 4


def test_state_survives_a_restart_through_zigpy() -> None:
    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    gsme = world.add_meter("premises", "gsme", name="GSME")
    assert run.add_device(hub, meter).ok and run.add_device(hub, gsme).ok
    assert run.wait_joined(meter, hub, "join").ok and run.wait_joined(gsme, hub, "join").ok
    saved = json.loads(json.dumps(world.to_json()))
    assert saved["hubs"][0]["node"]["backend"] == "zigpy"

    again = ZigpyWorld.from_json(saved)
    hub2 = again.hubs[hub.eui64]
    # Meters re-open their tunnels on power-up (the emulated coordinator needs this too).
    again.run(1.0)
    run2 = Run("again", again)
    assert [s.result for s in run2.qa_reads(hub2, again.meters[meter.eui64])] == ["ok"] * 4
    assert [s.result for s in run2.qa_reads(hub2, again.meters[gsme.eui64])] == ["ok"]


def test_a_zigpy_world_loads_only_with_a_zigpy_hub_radio() -> None:
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    saved = json.loads(json.dumps(world.to_json()))
    with pytest.raises(GbcsError, match="saved from a zigpy backend: load the state with a"):
        World.from_json(saved)
    again = World.from_json(saved, hub_radio=sim_hub_radio)
    assert isinstance(again.hubs[hub.eui64].node, ZigpyHubRadio)
    assert Run("again", again).join_details(again.hubs[hub.eui64], again.meters[meter.eui64]).ok


def _two_gsmes_on_one_tunnel(node: dict[str, Any]) -> None:
    """A second GSME on the tunnel id the hub gave the first (an ESME's own may repeat)."""
    first = node["children"][0]
    first["sleepy"] = True
    node["children"].append({**first, "ieee": "00DB123456789999", "short_address": 0x7777})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda n: n["children"][0].update(tunnel_id="x"), "tunnel_id"),
        (lambda n: n["children"][0].update(sleepy="no"), "sleepy"),
        (lambda n: n["children"][0].update(short_address=0x10000), "short_address"),
        (lambda n: n["children"].append(dict(n["children"][0])), "is a child twice"),
        # The coordinator's own address, and a second device on a child's address or tunnel.
        (lambda n: n["children"][0].update(short_address=0), "short_address"),
        (
            lambda n: n["children"].append({**n["children"][0], "ieee": "00DB123456789999"}),
            r"short_address 0x[0-9a-f]{4} is taken",
        ),
        (_two_gsmes_on_one_tunnel, r"tunnel_id \d+ is taken"),
        (lambda n: n.pop("next_tunnel"), "next_tunnel"),
        (lambda n: n.update(nwk_frame_counter=-1), "nwk_frame_counter"),
    ],
)
def test_a_damaged_zigpy_hub_state_is_refused_and_changes_nothing(
    change: object, message: str
) -> None:
    """As strict as the emulated coordinator's state: a bad value is named, not kept."""
    world = ZigpyWorld(SEED)
    hub, _ = _joined_premises(world)
    node = json.loads(json.dumps(hub.node.state()))
    change(node)  # type: ignore[operator]
    radio = _radio(hub)
    before = json.dumps(radio.state(), sort_keys=True)
    with pytest.raises(GbcsError, match=message):
        radio.load_state(node)
    assert json.dumps(radio.state(), sort_keys=True) == before
    saved = json.loads(json.dumps(world.to_json()))
    change(saved["hubs"][0]["node"])  # type: ignore[operator]
    with pytest.raises(GbcsError, match=message):
        ZigpyWorld.from_json(saved)


def _tunnel_packet(hub: Hub, meter: MeterUnit, data: bytes) -> t.ZigbeePacket:
    device = _app(hub).get_device(ieee=to_eui64(meter.eui64))
    return t.ZigbeePacket(
        src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(0)),
        src_ep=1,
        dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=device.nwk),
        dst_ep=1,
        tsn=1,
        profile_id=0x0109,
        cluster_id=0x0704,
        data=t.SerializableBytes(data),
        tx_options=t.TransmitOptions.NONE,
        radius=0,
    )


def test_send_packet_returns_once_every_block_is_acknowledged() -> None:
    """200 bytes: three APS blocks, one window. send_packet returns when the meter's APS
    acknowledgement names all three (ZigBee 2.2.8.4.5), not when the MAC has them."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    app, loop = _app(hub), _radio(hub).loop
    acked_before = meter.node.counters.mac
    assert world.capture is not None
    mark = len(world.capture.frames)
    loop.run_until_complete(app.send_packet(_tunnel_packet(hub, meter, bytes(200))))
    keys = meter.node.keys()
    from_meter = [
        air.decode_frame(psdu, keys).aps
        for _, _, psdu in world.capture.frames[mark:]
        if decode_mac(psdu).frame_type == 1 and decode_mac(psdu).src == meter.node.short_address
    ]
    assert from_meter == [
        ApsAck(
            from_meter[0].counter,  # type: ignore[union-attr]
            dst_endpoint=1,  # back to the packet's source endpoint, from its destination
            cluster_id=TUNNELING_CLUSTER,
            profile_id=0x0109,
            src_endpoint=1,
            fragment=AckFragment(True, 0, 0xFF),
        )
    ]
    # Its acknowledgement is the one frame the meter numbered (MAC acks take none).
    assert meter.node.counters.mac == acked_before + 1
    assert not app.ncp._awaiting and not app.ncp._transfers


def test_send_packet_keeps_its_radius_on_every_block() -> None:
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    app, loop = _app(hub), _radio(hub).loop
    assert world.capture is not None
    mark = len(world.capture.frames)
    packet = dataclasses.replace(_tunnel_packet(hub, meter, bytes(200)), radius=5)
    loop.run_until_complete(app.send_packet(packet))
    radii = [
        air.decode_frame(psdu, meter.node.keys()).nwk.radius  # type: ignore[union-attr]
        for _, _, psdu in world.capture.frames[mark:]
        if decode_mac(psdu).frame_type == 1 and decode_mac(psdu).src == 0
    ]
    assert radii == [5, 5, 5]


def test_a_network_reset_fails_the_sends_under_way_at_once() -> None:
    """Nothing of the old network goes out after reset_network_info: a payload awaiting
    its APS acknowledgement fails then, not after its retries."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    app, loop = _app(hub), _radio(hub).loop
    meter.node.power_off()
    sending = loop.spawn(app.send_packet(_tunnel_packet(hub, meter, bytes(200))))
    world.run(0.5)
    assert not sending.done()
    loop.run_until_complete(app.reset_network_info())
    assert world.run_until(sending.done, 0.01)
    with pytest.raises(zigpy.exceptions.DeliveryError, match="the network was reset"):
        sending.result()
    assert not app.ncp._transfers and not app.ncp._in_mac


def test_send_packet_to_a_meter_that_lost_power_raises_delivery_error() -> None:
    """As bellows does when EZSP's messageSentHandler reports a failed delivery."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    app, loop = _app(hub), _radio(hub).loop
    packet = _tunnel_packet(hub, meter, bytes(200))
    meter.node.power_off()
    assert world.capture is not None
    mark = len(world.capture.frames)
    with pytest.raises(zigpy.exceptions.DeliveryError, match="no APS acknowledgement"):
        loop.run_until_complete(app.send_packet(packet))
    world.run(1)
    # The window's three blocks, sent and then sent again apscMaxFrameRetries times, each
    # framing tried 1 + macMaxFrameRetries times.
    sent = [psdu for _, _, psdu in world.capture.frames[mark:]]
    assert len({psdu for psdu in sent}) == 3 * (1 + APS_MAX_RETRIES)
    assert len(sent) == 3 * (1 + APS_MAX_RETRIES) * (1 + MAX_FRAME_RETRIES)
    assert not app.ncp._awaiting and app.ncp._tx_current is None and not app.ncp._transfers
    meter.node.power_on()  # back on its network (its tunnel is the hub radio's business)
    assert world.run_until(lambda: meter.node.state is NodeState.JOINED, 120)
    loop.run_until_complete(app.send_packet(_tunnel_packet(hub, meter, b"\x01")))


def test_a_get_response_zigpy_could_not_deliver_is_held_again() -> None:
    """The sim NCP's MAC gets no acknowledgement, send_packet raises DeliveryError, and
    the hub radio gives the message back to the CHF, as the emulated coordinator does."""
    held_message_lost_in_the_air(ZigpyWorld(SEED))


def test_a_message_zigpy_could_not_deliver_to_an_esme_fails_in_seconds() -> None:
    """send_packet raises DeliveryError for a PUT to an unpowered ESME: the hub radio
    tells the CHF, which names the command, as the emulated coordinator does."""
    esme_unplugged_after_joining(ZigpyWorld(SEED))


def test_a_put_an_esme_refuses_after_a_reboot_fails_at_once_through_zigpy() -> None:
    """The ESME answers TransferDataError with the PUT's ZCL sequence number: the hub radio
    names that message to the CHF, as the emulated coordinator does."""
    esme_rebooted_before_its_tunnel_reopens(ZigpyWorld(SEED))


@pytest.mark.parametrize(
    "raised",
    [
        TimeoutError(),  # bellows: EZSP's delivery report did not come in time
        zigpy.exceptions.ControllerException("ApplicationController is not running"),
    ],
)
def test_a_get_response_that_fails_as_bellows_reports_it_is_held_again(
    monkeypatch: pytest.MonkeyPatch, raised: Exception
) -> None:
    """bellows does not always say DeliveryError: any failure of the hand-over is one."""
    sent = SimControllerApplication.send_packet

    async def bellows_like(self: SimControllerApplication, packet: t.ZigbeePacket) -> None:
        try:
            await sent(self, packet)
        except zigpy.exceptions.DeliveryError:
            raise raised from None

    monkeypatch.setattr(SimControllerApplication, "send_packet", bellows_like)
    world = ZigpyWorld(SEED)
    trace: list[str] = []
    world.trace = trace.append
    held_message_lost_in_the_air(world, off_time=20.0)  # its frame expires, unpolled
    assert any(f"not delivered: {type(raised).__name__}" in line for line in trace)


def test_frames_to_a_sleepy_child_ask_for_the_extended_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bellows waits 3 s for EZSP's report unless told the child is sleepy."""
    packets: list[t.ZigbeePacket] = []
    sent = SimControllerApplication.send_packet

    async def noting(self: SimControllerApplication, packet: t.ZigbeePacket) -> None:
        packets.append(packet)
        await sent(self, packet)

    monkeypatch.setattr(SimControllerApplication, "send_packet", noting)
    world = ZigpyWorld(SEED)
    run, hub, esme = _premises(world)
    gsme = world.add_meter("premises", "gsme", name="GSME")
    for meter in (esme, gsme):
        assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    assert run.join_details(hub, esme).ok and run.join_details(hub, gsme).ok
    app = _app(hub)
    nwk = {app.get_device(ieee=to_eui64(m.eui64)).nwk: m for m in (esme, gsme)}
    tunnelled = [p for p in packets if p.dst is not None and p.dst.address in nwk]
    extended = {nwk[p.dst.address].eui64: p.extended_timeout for p in tunnelled}
    assert extended == {esme.eui64: False, gsme.eui64: True}
    assert all(p.extended_timeout == extended[nwk[p.dst.address].eui64] for p in tunnelled)


def test_a_late_failure_after_the_gsme_polled_again_hands_nothing_out_twice() -> None:
    """The GSME gets a GET-RESPONSE whole but the hub hears none of its last block's
    acknowledgements; the GSME polls again at once and is handed the next message. That
    GET proves the first arrived: the MAC giving up on it later changes nothing."""
    world = ZigpyWorld(SEED)
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    gsme = world.add_meter("premises", "gsme", name="GSME")
    assert run.add_device(hub, gsme).ok and run.wait_joined(gsme, hub, "join").ok
    commands = [
        world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
        for _ in range(2)
    ]
    node, ncp = gsme.node, _app(hub).ncp
    last_heard: list[int] = []  # MAC sequence of the last data frame the GSME got
    gsme_deliver = node.deliver

    def noting_deliver(psdu: bytes) -> None:
        last_heard[:] = [psdu[2]]
        gsme_deliver(psdu)

    node.deliver = noting_deliver  # type: ignore[method-assign]
    received: list[int] = []
    lose_acks_of: list[int] = []
    on_gbcs = node.on_gbcs
    assert on_gbcs is not None

    def note(peer: bytes, data: bytes) -> None:
        received.append(decode_message(data)[0].header.originator_counter)
        if not lose_acks_of:
            lose_acks_of[:] = last_heard  # the block that completed the first message
        on_gbcs(peer, data)

    node.on_gbcs = note
    lost: list[float] = []
    ncp_deliver = ncp.deliver

    def losing_acks(psdu: bytes) -> None:
        is_ack = len(psdu) == 5 and psdu[0] & 0x07 == 2
        if is_ack and [psdu[2]] == lose_acks_of and len(lost) < 4:
            lost.append(world.clock.now)  # every try's acknowledgement is lost
            return
        ncp_deliver(psdu)

    ncp.deliver = losing_acks  # type: ignore[method-assign]
    for command in commands:
        hub.chf.from_wan(command.encode())
    world.run(300)
    assert len(lost) == 4  # the MAC gave up on the block the GSME had
    assert received == [c.header.originator_counter for c in commands]  # once each, in order
    assert hub.chf.held_count(gsme.eui64) == 0
    assert not any(e.event == "held message not delivered" for e in hub.chf.event_log)
    assert not [e for e in gsme.device.security_log if "replayed" in e.detail]


def test_a_failing_message_and_another_never_overlap_on_the_air() -> None:
    """A message to a meter that lost power is sent again by window until its APS
    retries run out, while the other message's frames go between: one at a time."""
    world = ZigpyWorld(SEED)
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    off, on = (world.add_meter("premises", "esme", name=n) for n in ("ESME1", "ESME2"))
    for meter in (off, on):
        assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    world.run(5)
    app, loop = _app(hub), _radio(hub).loop
    off.node.power_off()
    assert world.capture is not None
    mark = len(world.capture.frames)

    async def send(meter: MeterUnit, fill: int) -> None:
        await app.send_packet(_tunnel_packet(hub, meter, bytes([fill]) * 200))

    failing, passing = loop.spawn(send(off, 1)), loop.spawn(send(on, 2))
    assert world.run_until(lambda: failing.done() and passing.done(), 10)
    assert isinstance(failing.exception(), zigpy.exceptions.DeliveryError)
    assert passing.exception() is None
    ncp_frames = [
        (at, psdu)
        for at, _, psdu in world.capture.frames[mark:]
        if decode_mac(psdu).frame_type != 2 and decode_mac(psdu).src in (0, app.ncp.ieee)
    ]
    # The failing message's 3 blocks in 1 + 3 windows of 1 + 3 MAC tries each; the other's 3.
    assert len(ncp_frames) == 3 * 4 * 4 + 3
    for (at, psdu), (then, _) in itertools.pairwise(ncp_frames):
        assert then >= at + airtime(psdu), "two frames on the air from one radio"


def test_a_real_time_snapshot_is_consistent() -> None:
    """Reading a zigpy radio's state on a wall clock runs what is due (here a GSME's GET
    zigpy already has, which takes the held message): the CHF's state is read after
    it, so the saved world holds the message once, as the live one does."""
    world = World(SEED)
    clock = use_wall_clock(world)
    world.hub_radio = sim_hub_radio
    try:
        run = Run("real time", world)
        hub = world.add_hub("bench", name="bench CHF")
        gsme = world.add_meter("bench", "gsme", name="GSME")
        assert run.add_device(hub, gsme).ok
        assert run.wait_joined(gsme, hub, "join", timeout=10).ok
        radio, app = _radio(hub), _app(hub)
        assert clock.run_until(
            lambda: radio.reachable(gsme.eui64) and gsme.node.tunnel_id is not None, timeout=10
        )
        command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
        hub.chf.from_wan(command.encode())
        assert hub.chf.held_count(gsme.eui64) == 1
        tunnel = gsme.node.tunnel_id
        assert tunnel is not None
        get = tunnel_frame(
            TransferData(tunnel, encode_gbcs_tunnel(GbcsGet())),
            sequence=0,
            direction=Direction.TO_SERVER,
            disable_default_response=True,
        )
        device = app.get_device(ieee=to_eui64(gsme.eui64))
        radio.loop.call_soon(  # zigpy has the GSME's GET, not yet handed over
            radio.handle_message,
            device,
            SMART_ENERGY_PROFILE,
            TUNNELING_CLUSTER,
            1,
            1,
            encode_zcl(get),
        )
        saved = world.to_json()
        (state,) = [h for h in saved["hubs"] if h["eui64"] == hub.eui64.hex().upper()]
        live = hub.chf.held_count(gsme.eui64) + len(radio.handed_out())
        assert live == 1
        assert len(state["chf"]["held"].get(gsme.eui64.hex().upper(), [])) == live
        radio.close()
    finally:
        clock.close()


def test_a_long_join_window_is_renewed_but_never_outlasts_the_chf() -> None:
    world = ZigpyWorld(SEED)
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    meter = world.add_meter("premises", "esme", name="ESME", power=False)
    assert run.add_device(hub, meter).ok  # a 3600 s window; zigpy permits 254 s at a time
    app = _app(hub)
    closes = hub.chf.join_windows[meter.eui64]
    for _ in range(6):
        world.run(200)
        assert app.ncp.transient[meter.eui64][1] <= closes
        assert app.ncp.trust_centre.joining_open()
    meter.node.power_on()  # installed 1200 s after CCS01
    assert run.wait_joined(meter, hub, "HAN join (install code)").ok
    world.run(1)
    assert not app.ncp.transient and not app.ncp.trust_centre.joining_open()
    assert meter.eui64 not in hub.chf.join_windows


def test_zigpy_requests_to_a_silent_meter_time_out_in_simulated_time() -> None:
    """Meters do not answer ZDO: zigpy gives up after its retries, in virtual seconds."""
    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    assert run.add_device(hub, meter).ok
    assert run.wait_joined(meter, hub, "HAN join (install code)").ok
    app, loop = _app(hub), _radio(hub).loop
    device = app.get_device(ieee=to_eui64(meter.eui64))
    assert device.is_initialized  # described by the radio: zigpy did not interview it
    started = world.clock.now
    with pytest.raises((TimeoutError, zigpy.exceptions.DeliveryError)):
        loop.run_until_complete(device.zdo.Node_Desc_req(device.nwk))
    assert 1 < world.clock.now - started < 300
    assert [s.result for s in run.qa_reads(hub, meter)] == ["ok"] * 4


@pytest.mark.parametrize("request_bit", [False, True])
def test_a_leave_the_coordinator_ignores_does_not_drop_the_meter_from_zigpy(
    request_bit: bool,
) -> None:
    """The sim NCP told zigpy of a Leave naming a child from another address (or a leave
    request) although its coordinator rightly ignored it: the hub radio then dropped
    the ESME for over an hour, where the emulated coordinator keeps it."""
    from emulators.zigbee.air import NwkSecurity

    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    world.run(5)
    ncp = _app(hub).ncp
    settings = ncp.settings
    assert settings is not None
    short = ncp.children[meter.eui64].short_address
    counter = meter.node.counters.nwk_frame  # the meter's next one: it skips it
    meter.node.counters.nwk_frame += 1
    psdu = air.leave(
        mac_sequence=1,
        nwk_sequence=1,
        pan_id=settings.pan_id,
        src=short if request_bit else short ^ 0x0101,
        dst=0x0000,
        security=NwkSecurity(settings.network_key, settings.key_sequence, counter, meter.eui64),
        request=request_bit,
        src_ieee=meter.eui64,
    )
    ncp.deliver(psdu)
    world.run(1)
    assert meter.eui64 in ncp.children
    assert _radio(hub).has_child(meter.eui64)
    assert run.join_details(hub, meter).ok


@pytest.mark.parametrize("second", ["disable", "shorten"])
def test_a_window_the_chf_closes_or_shortens_is_taken_back_from_the_ncp(second: str) -> None:
    """A second CCS01 disabling or shortening a meter's window (another meter's window
    still open) left the NCP's permit as it was: the meter was admitted after the CHF
    had closed its window, where the emulated coordinator refuses it."""
    from gbcs.devicelog import AddDevice

    world = ZigpyWorld(SEED)
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    meter = world.add_meter("premises", "esme", name="ESME", power=False)
    other = world.add_meter("premises", "gsme", name="GSME", power=False)
    assert run.add_device(hub, meter).ok and run.add_device(hub, other).ok
    world.run(5)
    command = AddDevice(
        meter.eui64,
        int(meter.device.device_type),
        meter.device.install_code,
        join_timeout=30 if second == "shorten" else 3600,
        enable_joining=second == "shorten",
    )
    assert run.device_log(hub, command, AddDevice.MESSAGE_CODE)[0].ok
    world.run(120)  # past the shortened window
    assert hub.chf.join_key(meter.eui64) is None
    meter.node.power_on()
    assert not run.wait_joined(meter, hub, "join", timeout=60, probe=True).ok
    assert other.eui64 in _app(hub).ncp.transient  # the other window is still permitted


def _heard_by_the_hub(world: World, esme: MeterUnit, psdu: bytes) -> None:
    """A frame from an insider on the premises, heard by the hub's sim NCP (not the ESME)."""
    for radio in list(world.places["premises"].radios):
        if radio is not esme.node:
            radio.deliver(psdu)


def _joined_esme(world: World) -> tuple[Run, Hub, MeterUnit]:
    run, hub, esme = _premises(world)
    assert run.add_device(hub, esme).ok and run.wait_joined(esme, hub, "join").ok
    assert run.join_details(hub, esme).ok
    return run, hub, esme


def test_a_joined_meter_announcing_itself_again_keeps_its_tunnel() -> None:
    """A Device_annce at the address it had, its tunnel open, is no rejoin: the hub used
    to forget its tunnel, and the meter's next response was refused and lost."""
    world = ZigpyWorld(SEED)
    run, hub, esme = _joined_esme(world)
    node, settings = esme.node, esme.node.settings
    assert settings is not None
    psdu = air.device_announce(
        mac_sequence=node.counters.next("mac"),
        nwk_sequence=node.counters.next("nwk"),
        aps_counter=node.counters.next("aps"),
        zdo_sequence=node.counters.next("zdo"),
        pan_id=settings.pan_id,
        nwk_address=settings.short_address,
        ieee=esme.eui64,
        capability=node.capability,
        security=node._security(settings),
    )
    node._transmit(psdu, settings.pan_id, 0xFFFF)
    world.run(1)
    step = run.join_details(hub, esme)
    assert step.ok, step.result


def test_a_device_annce_about_another_device_is_ignored() -> None:
    """Any key holder, under its own EUI-64, announcing the ESME at another address would
    make zigpy send the ESME's traffic there: the sim NCP drops it, as the emulated
    coordinator does."""
    world = ZigpyWorld(SEED)
    run, hub, esme = _joined_esme(world)
    settings = esme.node.settings
    assert settings is not None
    insider = bytes.fromhex("00DB12345678B0FF")
    psdu = air.device_announce(
        mac_sequence=1,
        nwk_sequence=1,
        aps_counter=1,
        zdo_sequence=1,
        pan_id=settings.pan_id,
        nwk_address=0x1234,
        ieee=esme.eui64,
        capability=esme.node.capability,
        security=air.NwkSecurity(settings.network_key, settings.key_sequence, 1, insider),
    )
    _heard_by_the_hub(world, esme, psdu)
    world.run(1)
    step = run.join_details(hub, esme)
    assert step.ok, step.result


@pytest.mark.parametrize("zigpy", [False, True])
def test_a_rejoin_at_the_same_address_reaches_the_chf(zigpy: bool) -> None:
    """A trust-centre rejoin that keeps the meter's address is still a join to the CHF
    (its log entry, its join window closed), on both hub radios alike."""
    world = ZigpyWorld(SEED) if zigpy else World(SEED)
    run, hub, esme = _joined_esme(world)
    settings = esme.node.settings
    assert settings is not None
    short = settings.short_address

    def joins() -> int:
        return sum(1 for e in hub.chf.event_log if e.event == "device joined")

    before = joins()
    lose_parent(esme.node)  # a rejoin in a second
    world.run(120)
    assert esme.node.rejoins == 1 and esme.node.state is NodeState.JOINED
    assert esme.node.settings is not None and esme.node.settings.short_address == short
    assert joins() == before + 1
    step = run.join_details(hub, esme)
    assert step.ok, step.result


@pytest.mark.parametrize(
    ("cluster", "profile"), [(0x8000, 0), (0x8001, 0), (0x0013, 0x0060), (0x0013, 0)]
)
def test_zdo_frames_placing_another_device_are_dropped(cluster: int, profile: int) -> None:
    """zigpy takes any frame to endpoint 0 as ZDO and moves the device a Device_annce or an
    address response names: an insider, under its own EUI-64, could put a made-up device at
    the ESME's address and the ESME elsewhere, and its responses were then lost for good."""
    from emulators.zigbee.aps import ApsData, DeliveryMode

    insider, made_up = bytes.fromhex("00DB12345678B0FF"), bytes.fromhex("0000123456789999")
    world = ZigpyWorld(SEED)
    run, hub, esme = _joined_esme(world)
    settings, address = esme.node.settings, esme.node.short_address
    assert settings is not None and address is not None

    def body(ieee: bytes, nwk: int) -> bytes:
        if cluster == 0x0013:  # TSN, NWK address, IEEE address, capability
            return bytes([1]) + nwk.to_bytes(2, "little") + ieee[::-1] + bytes([0x8E])
        return bytes([1, 0]) + ieee[::-1] + nwk.to_bytes(2, "little") + b"\x00\x00"

    for n, (ieee, nwk) in enumerate(((made_up, address), (esme.eui64, (address + 8) & 0xFFFF))):
        aps = ApsData(cluster, profile, 0, 0, 100 + n, body(ieee, nwk), DeliveryMode.UNICAST)
        psdu = air.nwk_data(
            aps,
            mac_sequence=100 + n,
            nwk_sequence=100 + n,
            pan_id=settings.pan_id,
            src=0x4321,
            dst=0x0000,
            src_ieee=insider,
            security=air.NwkSecurity(settings.network_key, settings.key_sequence, 100 + n, insider),
        )
        _heard_by_the_hub(world, esme, psdu)
        world.run(0.5)
    step = run.join_details(hub, esme)
    assert step.ok, step.result


def test_a_hub_takes_the_sim_dongles_own_eui64() -> None:
    """As on a real stick: a hub of another EUI-64 than the dongle's is refused before
    anything is written (no hub, no place left), and the dongle never takes another one."""
    own = bytes.fromhex("00DB5E0102030405")

    def hub_radio(clock: Any, eui: bytes, name: str) -> ZigpyHubRadio:
        def app_factory(medium: Any) -> SimControllerApplication:
            return SimControllerApplication(sim_config(register_place(medium)), ieee=own)

        return ZigpyHubRadio(clock, eui, name, app_factory=app_factory)

    world = World(SEED)
    world.hub_radio = hub_radio
    with pytest.raises(
        ForeignRadio, match="radio's own EUI-64 is 00DB5E0102030405, not the hub's 00DB12345678C000"
    ):
        world.add_hub("premises", name="premises CHF")
    assert not world.hubs and "premises" not in world.places

    hub = world.add_hub("premises", own, name="premises CHF")
    app = _app(hub)
    assert hub.node.joined and app.ncp.ieee == own
    foreign = dataclasses.replace(
        app.state.node_info, ieee=to_eui64(bytes.fromhex("00DB12345678C000"))
    )
    with pytest.raises(zigpy.exceptions.CannotWriteNetworkSettings, match="not rewritten"):
        _radio(hub)._run(
            app.write_network_info(network_info=app.state.network_info, node_info=foreign)
        )
    assert app.ncp.ieee == own


def test_a_radio_lost_mid_run_says_why_and_stops() -> None:
    """zigpy tells a lost radio (a pulled stick, a failed NCP, its watchdog giving up) only
    through the listener event connection_lost: the radio stops and says so, instead of
    staying joined while every send fails on its own timeout."""
    world = ZigpyWorld(SEED)
    lines: list[str] = []
    world.trace = lines.append
    run, hub, meter = _premises(world)
    assert run.add_device(hub, meter).ok
    assert run.wait_joined(meter, hub, "HAN join (install code)").ok
    world.run(60)
    radio = _radio(hub)
    assert radio.reachable(meter.eui64)
    away = world.add_meter("elsewhere", "esme", name="away")
    assert run.add_device(hub, away).ok  # a window kept open by renewed permits
    syncs = radio.syncs

    _app(hub).connection_lost(OSError(5, "Input/output error"))
    lost = "radio lost: sim://premises: OSError: [Errno 5] Input/output error"
    assert not radio.joined and radio.lost == lost
    assert lines[-1].endswith(f"premises CHF: {lost}")
    assert not radio.reachable(meter.eui64)
    for call in (lambda: radio.send_gbcs(meter.eui64, b"GBCS"), radio.state):
        with pytest.raises(GbcsError, match=re.escape(f"premises CHF: {lost}")):
            call()
    seen = len(lines)
    world.run(600)  # past the renewal of the open window's permit
    assert radio.syncs == syncs and not [line for line in lines[seen:] if "permit" in line]
    # A command's outcome names it too, not only "the CHF has no HAN" (review F3).
    assert run.join_details(hub, meter).result == lost


def _gsme_premises(world: World) -> tuple[Run, Hub, MeterUnit]:
    run = Run("test", world)
    hub = world.add_hub("premises", name="premises CHF")
    gsme = world.add_meter("premises", "gsme", name="GSME")
    assert run.add_device(hub, gsme).ok
    assert run.wait_joined(gsme, hub, "HAN join (install code)").ok
    world.run(60)
    return run, hub, gsme


def test_a_command_for_a_gsme_after_the_radio_is_lost_fails_naming_it() -> None:
    """It was held for the GSME's poll the lost radio never takes, and the head end said
    "no response within 120 s" (audit 9, gsme F1); an ESME's failed at once."""
    world = ZigpyWorld(SEED)
    run, hub, gsme = _gsme_premises(world)
    _app(hub).connection_lost(OSError(5, "Input/output error"))
    start = world.clock.now
    step = run.join_details(hub, gsme)
    assert step.result == "radio lost: sim://premises: OSError: [Errno 5] Input/output error"
    assert step.time - start < 1.0 and hub.chf.held_count(gsme.eui64) == 0


def test_a_message_held_when_the_radio_is_lost_fails_at_the_next_poll_naming_it() -> None:
    """A message held before the radio was lost: the GSME's next GET took it out of the CHF
    and its GET-RESPONSE was dropped unsent, yet the GET after counted it delivered. It
    vanished: not sent, failed or logged (audit 9, gsme F1). It was then held again at
    every poll, for ever; now the CHF, asked for it through a radio that can send nothing,
    fails it (final: it never went out), naming the loss, as it fails new commands."""
    world = ZigpyWorld(SEED)
    _, hub, gsme = _gsme_premises(world)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    assert hub.chf.held_count(gsme.eui64) == 1
    failures = _route_failures(hub)
    _app(hub).connection_lost(OSError(5, "Input/output error"))
    world.run(600)  # the GSME polls on, and the sim NCP still hears it
    lost = "radio lost: sim://premises: OSError: [Errno 5] Input/output error"
    eui = gsme.eui64.hex().upper()
    assert [(f.final, f.reason) for f in failures] == [
        (True, f"{lost} (a message held for device {eui} was not sent)")
    ]
    assert hub.chf.held_count(gsme.eui64) == 0 and not _radio(hub).handed_out()
    assert not [e for e in gsme.device.event_log if e.detail == "CS07"]


def test_a_radio_let_go_on_purpose_is_not_lost() -> None:
    """bellows reports connection_lost(None) as close() shuts it down: a deliberate close
    (every test's teardown on a dongle) is no loss to log or fail later tests with."""
    world = ZigpyWorld(SEED)
    lines: list[str] = []
    world.trace = lines.append
    _, hub, _ = _premises(world)
    radio, app = _radio(hub), _app(hub)
    shutdown = app.shutdown

    async def shutdown_as_bellows_does(*args: Any, **kwargs: Any) -> None:
        app.connection_lost(None)
        await shutdown(*args, **kwargs)

    app.shutdown = shutdown_as_bellows_does  # type: ignore[method-assign]
    radio.close()
    assert radio.lost is None and not [line for line in lines if "radio lost" in line]


def _answers(world: World, node: Any, start: int) -> list[tuple[str, int, int]]:
    """Tunnel commands on the air since ``start``: name, ZCL direction, sequence number."""
    out = []
    for _, _, psdu in world.capture.frames[start:]:
        app = air.decode_frame(psdu, node.keys()).app
        if app is not None and app.zcl is not None and app.tunnel is not None:
            out.append((type(app.tunnel).__name__, int(app.zcl.direction), app.zcl.sequence))
    return out


@pytest.mark.parametrize("radio", ["emulated", "zigpy"])
def test_the_hubs_tunnel_responses_carry_their_requests_sequence_number(radio: str) -> None:
    """ZCL 2.4.1.3: RequestTunnelResponse and TransferDataError copy the request's ZCL
    sequence number. The hub used its own counter, shared by all its children, so a real
    meter matching replies by it would never get its tunnel (audit 8, han M1). As a
    GSME's tunnel server, and as an ESME's client (GBCS 10.2.2.1)."""
    world = World(seed=3)
    if radio == "zigpy":
        world.hub_radio = sim_hub_radio
    run = Run("tsn", world)
    hub = world.add_hub("premises", name="CHF")
    gsme = world.add_meter("premises", "gsme")
    esme = world.add_meter("premises", "esme")
    for meter in (gsme, esme):
        assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    start = len(world.capture.frames)

    def from_meter(
        node: Any, command: Any, sequence: int, direction: Direction | None = None
    ) -> None:
        assert node.settings is not None
        node._stay_awake()  # a GSME's radio sends nothing while asleep
        node._send_application(
            node.settings, 0x0000, node._tunnel_zcl(command, direction, sequence)
        )
        world.run(1.0)

    node = gsme.node
    stale = TransferData(node.tunnel_id + 100, encode_gbcs_tunnel(GbcsGet()))
    from_meter(node, stale, 0x5A, Direction.TO_SERVER)
    node._tunnel_asked = True
    from_meter(node, RequestTunnel(), 0x77)
    answers = _answers(world, node, start)
    assert ("TransferDataError", 1, 0x5A) in answers
    assert ("RequestTunnelResponse", 1, 0x77) in answers
    # The ESME's PUT on a tunnel the hub does not hold: refused client to server, on its
    # number, and the hub asks for a new tunnel, whose answer carries the request's.
    start = len(world.capture.frames)
    node = esme.node
    stale = TransferData(node.tunnel_id + 100, encode_gbcs_tunnel(GbcsPut(b"\xdd")))
    from_meter(node, stale, 0x5B, Direction.TO_CLIENT)
    answers = _answers(world, node, start)
    assert ("TransferDataError", 0, 0x5B) in answers
    request = next(a for a in answers if a[0] == "RequestTunnel")
    assert request[1] == 0 and ("RequestTunnelResponse", 1, request[2]) in answers
    assert world.joined_to(esme) == hub.eui64


def test_the_zigpy_hub_opens_an_esmes_tunnel_and_each_end_sends_its_own_direction() -> None:
    """GBCS 10.2.2.1 through zigpy: the hub radio sends RequestTunnel once the ESME is
    announced and PUTs client to server; the ESME answers and PUTs server to client."""
    esme_tunnel_frames(ZigpyWorld(SEED))


def test_the_zigpy_hub_answers_an_esmes_time_read() -> None:
    """The ESME's keep-alive reads the hub's Time attribute: answered with the clock's
    UTCTime from the Smart Energy endpoint, which lists the Time cluster as a server."""
    world = ZigpyWorld(SEED)
    _, meter = _joined_premises(world)
    meter.node.hub_time = None
    meter.node._keepalive()
    world.run(1.0)
    assert meter.node.hub_time is not None
    assert abs(meter.node.hub_time - utc_time(world.clock.utc)) <= 1
    assert TIME_CLUSTER in se_endpoint_descriptor().input_clusters


def test_the_zigpy_hubs_tunnel_requests_save_and_load() -> None:
    """A pending or refused RequestTunnel is saved with the child and booked again."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    radio = _radio(hub)
    child = radio._children[meter.eui64]
    child.tunnel_id = None
    child.tunnel_ask = TunnelAsk(None, world.clock.now + 30)
    saved = json.loads(json.dumps(radio.state()))
    assert saved["children"][0]["tunnel_ask"] == child.tunnel_ask.to_json()
    child.tunnel_ask = None
    radio.load_state(saved)
    loaded = radio._children[meter.eui64]
    assert loaded.tunnel_ask == TunnelAsk(None, world.clock.now + 30)
    # Booked again: the hub asks when it is due (or when the ESME next reads its time).
    assert world.run_until(lambda: radio.reachable(meter.eui64), 40)
    del saved["children"][0]["tunnel_ask"]  # saved before the hub asked: still loads
    radio.load_state(saved)
    assert radio._children[meter.eui64].tunnel_ask is None


def test_one_missed_acknowledgement_keeps_a_healthy_esme_reachable() -> None:
    one_missed_ack_keeps_a_healthy_esme_reachable(ZigpyWorld(21))


def test_a_sim_ncp_whose_frame_counter_is_used_up_refuses_what_it_cannot_secure() -> None:
    """ZigBee 4.3.1.1: the NCP sends no secured frame once its NWK frame counter is used
    up. A broadcast is refused as zigpy expects a failed send to be (DeliveryError naming
    why, no APS counter taken); a unicast fails as undelivered; zigpy's force_remove sends
    no Leave; nothing raises out of the clock."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    ncp = _app(hub).ncp
    ncp.counters.nwk_frame = FRAME_COUNTER_LIMIT
    aps = ncp.counters.aps
    with pytest.raises(zigpy.exceptions.DeliveryError, match="NWK frame counter used up"):
        ncp.send_aps(dst=0xFFFD, profile=0, cluster=0x0013, src_ep=0, dst_ep=0, data=b"\x00")
    assert ncp.counters.aps == aps
    assert world.capture is not None
    sent = len(world.capture.frames)
    assert not Run("read", world).read(hub, meter, "CS07").ok
    ncp.ask_to_leave(meter.eui64)
    world.run(1)
    assert len(world.capture.frames) == sent  # neither the PUT nor a Leave went out
    assert ncp.counters.nwk_frame == FRAME_COUNTER_LIMIT


def test_a_sim_ncp_out_of_aps_counter_tells_zigpy_of_no_join() -> None:
    """It sends no Transport Key (ZigBee 4.4.1.1), so zigpy is not told the device
    joined: it would hold a device that never got the network key."""
    world = ZigpyWorld(SEED)
    run, hub, meter = _premises(world)
    ncp = _app(hub).ncp
    ncp.counters.aps_frame = FRAME_COUNTER_LIMIT
    joins: list[bytes] = []
    ncp.on_join = lambda ieee, nwk, inner=ncp.on_join: (joins.append(ieee), inner(ieee, nwk))
    assert run.add_device(hub, meter).ok
    world.run(30)
    assert joins == [] and not meter.node.has_network
    assert to_eui64(meter.eui64) not in _app(hub).devices


def test_a_put_under_way_when_the_dongle_is_lost_may_still_have_arrived() -> None:
    """The PUT went on the air and the ESME ran it; only its acknowledgements were lost
    when the dongle went away. Its failure is not final (the radio's loss says nothing
    of whether this message arrived)."""
    world = ZigpyWorld(SEED)
    hub, meter = _joined_premises(world)
    world.run(60)
    failures = _route_failures(hub)
    meter.node._ack = lambda *args, **kwargs: None  # type: ignore[method-assign]
    ran = len(meter.device.event_log)
    deliver = meter.node.deliver

    def arrive(psdu: bytes) -> None:
        deliver(psdu)
        ran_it = "CS07" in [e.detail for e in meter.device.event_log[ran:]]
        if ran_it and not failures and hub.node.lost is None:  # lost just after it ran
            world.clock.call_later(0.0, _app(hub).connection_lost, OSError(5, "I/O error"))

    meter.node.deliver = arrive  # type: ignore[method-assign]
    Run("read", world).read(hub, meter, "CS07")
    world.run(10)
    assert hub.node.lost is not None
    assert [e.detail for e in meter.device.event_log[ran:]].count("CS07") == 1
    assert failures and not any(f.final for f in failures)
