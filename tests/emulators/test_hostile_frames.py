"""Frames an attacker (or noise) puts on a HAN's air, and what the nodes must not do with them.

A radio that only transmits sits beside a bench CHF and its meter: unsecured
NWK commands, forged Transport Keys, spoofed rejoins, malformed reassembled
APS payloads and runt PSDUs are dropped, never raised out of the clock loop,
and the meter stays reachable through its hub.
"""

from __future__ import annotations

import pytest

from emulators.medium import HanMedium
from emulators.node import (
    KEEPALIVE,
    MAX_GBCS_MESSAGE,
    MAX_HELD_ASSOCIATIONS,
    REJOIN_RETRY,
    NodeState,
)
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee import air
from emulators.zigbee.air import NwkSecurity
from emulators.zigbee.aps import ApsCommand, ApsData, DeliveryMode, Fragment, KeyType, TransportKey
from emulators.zigbee.mac import Capability
from emulators.zigbee.nwk import Leave
from emulators.zigbee.security import AuxHeader, KeyId
from gbcs.testpki import TestPki
from tests.emulators.conftest import command_of_size, lose_parent

SEED = 3
EVIL_KEY = b"\xee" * 16
OTHER = bytes.fromhex("0102030405060708")
FAR_COUNTER = 10**6  # beyond any NWK frame counter the real nodes reach in a test


class Attacker:
    """A radio that transmits whatever it is given and never acknowledges anything."""

    def __init__(self, medium: HanMedium, channel: int) -> None:
        self.ieee = b"\xaa" * 8
        self.channel = channel
        self.pan_id: int | None = None
        self.short_address: int | None = None
        self.listening = True
        self.power_cyclable = False
        self.medium = medium
        medium.attach(self)

    def deliver(self, psdu: bytes) -> None:
        pass

    def send(self, psdu: bytes, dst_pan: int | None, dst: int | bytes | None) -> None:
        self.medium.send(self, psdu, dst_pan, dst)


class Bench:
    """A bench CHF and a meter of ``kind``, with the trace the nodes write."""

    def __init__(self, pki: TestPki, kind: str = "esme") -> None:
        self.world = World(SEED, pki=pki)
        self.trace: list[str] = []
        self.world.trace = self.trace.append
        self.run = Run("test", self.world)
        self.hub: Hub = self.world.add_hub("bench")
        self.meter: MeterUnit = self.world.add_meter("bench", kind)
        settings = self.hub.node.settings
        assert settings is not None
        self.settings = settings
        self.attacker = Attacker(self.world.place("bench"), settings.channel)

    def join(self) -> None:
        assert self.run.add_device(self.hub, self.meter).ok
        assert self.run.wait_joined(self.meter, self.hub, "join").ok

    def lines(self, text: str) -> list[str]:
        return [line for line in self.trace if text in line]

    def inject(self, psdu: bytes, dst: int | bytes | None, seconds: float = 1.0) -> None:
        self.attacker.send(psdu, self.settings.pan_id, dst)
        self.world.run(seconds)

    def secured(self, counter: int, source: bytes) -> NwkSecurity:
        """NWK security with the hub's network key (what an insider holds)."""
        return NwkSecurity(self.settings.network_key, self.settings.key_sequence, counter, source)


@pytest.fixture
def bench(pki: TestPki) -> Bench:
    return Bench(pki)


# Runt PSDUs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "psdu", [b"", b"\x02", b"\x02\x00", b"\x41\x88\x01\x00"], ids=["empty", "1", "2", "4"]
)
def test_a_node_ignores_a_psdu_too_short_to_be_a_frame(bench: Bench, psdu: bytes) -> None:
    bench.join()
    for node in (bench.meter.node, bench.hub.node):
        dropped = node.frames_dropped
        node.deliver(psdu)
        assert node.frames_dropped == dropped + 1


def test_the_medium_refuses_an_empty_psdu(bench: Bench) -> None:
    medium = bench.world.place("bench")
    with pytest.raises(ValueError, match="empty PSDU"):
        medium.send(bench.attacker, b"", bench.settings.pan_id, 0xFFFF)
    with pytest.raises(ValueError, match="empty PSDU"):
        medium.transmit(bench.attacker, b"", dst_pan=bench.settings.pan_id, dst=0xFFFF)
    assert medium.frames_sent == sum(1 for _ in bench.world.capture.frames)  # nothing went out


# NWK Leave ----------------------------------------------------------------------------------


def _leave_request(bench: Bench, security: NwkSecurity | None, dst: int) -> bytes:
    return air._nwk_command(
        Leave(request=True),
        mac_sequence=1,
        nwk_sequence=7,
        pan_id=bench.settings.pan_id,
        src=0x0000,
        dst=dst,
        security=security,
        radius=1,
        src_ieee=None,
        dst_ieee=None,
    )


def test_an_unsecured_leave_request_is_dropped(bench: Bench) -> None:
    bench.join()
    meter = bench.meter
    bench.inject(_leave_request(bench, None, 0xFFFF), 0xFFFF, 120)
    assert meter.node.state is NodeState.JOINED and meter.node.settings is not None
    assert bench.lines("dropped: unsecured NWK Leave request")
    assert bench.run.join_details(bench.hub, meter).ok


def test_a_leave_request_secured_with_the_network_key_is_obeyed(bench: Bench) -> None:
    bench.join()
    meter = bench.meter
    security = bench.secured(FAR_COUNTER, bench.hub.eui64)
    short = meter.node.settings.short_address
    bench.inject(_leave_request(bench, security, short), short)
    assert meter.node.settings is None
    assert bench.lines("network forgotten")


# Transport Key ------------------------------------------------------------------------------


def _forged_keys(bench: Bench) -> list[bytes]:
    """Transport Keys carrying EVIL_KEY to short 0x4242 that the meter must refuse."""
    meter, hub, pan = bench.meter, bench.hub, bench.settings.pan_id

    def unsecured(dst_ieee: bytes) -> bytes:
        command = ApsCommand(77, TransportKey(KeyType.NETWORK, EVIL_KEY, dst_ieee, hub.eui64, 0))
        return air.nwk_data(
            command,
            mac_sequence=10,
            nwk_sequence=1,
            pan_id=pan,
            src=0,
            dst=0x4242,
            security=None,
            radius=1,
            src_ieee=hub.eui64,
            dst_ieee=dst_ieee,
        )

    def with_link_key(aux_key: KeyId, dst_ieee: bytes, aps_counter: int) -> bytes:
        command = ApsCommand(
            aps_counter,
            TransportKey(KeyType.NETWORK, EVIL_KEY, dst_ieee, hub.eui64, 0),
            AuxHeader(aux_key, 5, hub.eui64),
        )
        return air.nwk_data(
            command,
            mac_sequence=11,
            nwk_sequence=aps_counter,
            pan_id=pan,
            src=0,
            dst=0x4242,
            security=None,
            aps_key=meter.node.link_key,
            radius=1,
            src_ieee=hub.eui64,
            dst_ieee=meter.eui64,  # reaches the meter whatever short address it has by then
        )

    return [
        unsecured(OTHER),
        unsecured(meter.eui64),
        # Under the meter's own install-code key (a leak), but for another device, or
        # with the link key as a data key rather than the key-transport key.
        with_link_key(KeyId.KEY_TRANSPORT, OTHER, 78),
        with_link_key(KeyId.LINK, meter.eui64, 79),
    ]


@pytest.mark.parametrize("forgery", range(4))
def test_a_joining_meter_takes_only_its_own_secured_transport_key(
    bench: Bench, forgery: int
) -> None:
    node = bench.meter.node
    forged = _forged_keys(bench)[forgery]
    inner = node.on_state

    def on_state(state: NodeState) -> None:
        if state is NodeState.JOINING and not bench.lines("dropped: Transport Key"):
            # Our own association response, then the forged key, ahead of the hub's.
            bench.attacker.send(
                air.association_response(
                    mac_sequence=9,
                    pan_id=bench.settings.pan_id,
                    device_ieee=bench.meter.eui64,
                    coordinator_ieee=bench.hub.eui64,
                    short_address=0x4242,
                ),
                bench.settings.pan_id,
                bench.meter.eui64,
            )
            bench.world.clock.call_later(
                0.0012, bench.attacker.send, forged, bench.settings.pan_id, 0x4242
            )
        if inner is not None:
            inner(state)

    node.on_state = on_state
    bench.join()
    assert bench.lines("dropped: Transport Key")
    assert node.settings is not None and node.settings.network_key != EVIL_KEY
    assert bench.hub.node.has_child(bench.meter.eui64)


# Trust-centre rejoin ------------------------------------------------------------------------


def _spoofed_rejoin(bench: Bench, src: int, capability: Capability | None = None) -> bytes:
    """An unsecured rejoin request naming the bench's meter, from ``src`` (a router's
    capability unless told)."""
    return air.rejoin_request(
        mac_sequence=1,
        nwk_sequence=200,
        pan_id=bench.settings.pan_id,
        src=src,
        dst=0,
        device_ieee=bench.meter.eui64,
        capability=Capability.router() if capability is None else capability,
    )


@pytest.mark.parametrize("kind", ["esme", "gsme"])
@pytest.mark.parametrize("own_address", [False, True])
def test_a_spoofed_rejoin_leaves_the_child_record_alone(
    pki: TestPki, kind: str, own_address: bool
) -> None:
    bench = Bench(pki, kind)
    bench.join()
    meter, hub = bench.meter, bench.hub
    before = hub.node.children[meter.eui64]
    record = (before.short_address, before.tunnel_id, before.announced, before.sleepy)
    src = before.short_address if own_address else 0x1234
    bench.inject(_spoofed_rejoin(bench, src), 0)
    child = hub.node.children[meter.eui64]
    assert (child.short_address, child.tunnel_id, child.announced, child.sleepy) == record
    pending = hub.node.joining_child(meter.eui64)  # what a zigpy host is told of the rejoin
    assert pending is not None and pending is not child and pending.tunnel_id is None
    assert bench.run.join_details(hub, meter).ok
    bench.world.run(3 * 3600)  # the meter's own traffic does not complete the rejoin
    child = hub.node.children[meter.eui64]
    assert (child.short_address, child.tunnel_id, child.announced, child.sleepy) == record
    assert bench.run.join_details(hub, meter).ok
    assert meter.node.rejoins == 0


@pytest.mark.parametrize("announce_lost", [False, True])
def test_a_meter_that_lost_its_hub_rejoins_it_with_a_new_tunnel(
    bench: Bench, announce_lost: bool
) -> None:
    bench.join()
    meter, hub = bench.meter, bench.hub
    if announce_lost:  # the hub misses the broadcast Device_annce: the tunnel request proves it
        deliver, keys = hub.node.deliver, hub.node.keys()

        def lossy(psdu: bytes) -> None:
            app = air.decode_frame(psdu, keys).app if len(psdu) > 5 else None
            if app is None or app.zdo is None:
                deliver(psdu)

        hub.node.deliver = lossy  # type: ignore[method-assign]
    old_tunnel = hub.node.children[meter.eui64].tunnel_id
    medium = bench.world.place("bench")
    hub.node.place(None)  # unplugged: the meter's keep-alive goes unacknowledged
    bench.world.run(KEEPALIVE + 10)
    assert meter.node.state in (NodeState.ORPHANED, NodeState.REJOINING)
    assert hub.node.children[meter.eui64].tunnel_id == old_tunnel  # the hub never knew
    hub.node.place(medium)
    assert bench.world.run_until(lambda: meter.node.joined, 2 * REJOIN_RETRY)
    bench.world.run(1)
    assert meter.node.rejoins == 1
    child = hub.node.children[meter.eui64]
    assert child.announced and child.tunnel_id not in (None, old_tunnel)
    assert child.tunnel_id == meter.node.tunnel_id
    assert child.short_address == meter.node.settings.short_address
    assert bench.run.join_details(hub, meter).ok


# Reassembled APS payloads -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to_hub", "cluster", "profile", "payload"),
    [
        (False, 0x0704, 0x0109, b"\x01"),  # a ZCL frame cut short
        (False, 0x0013, 0x0000, b"\x00"),  # a Device_annce cut short
        (True, 0x0704, 0x0109, b"\x01"),
        (True, 0x0013, 0x0000, b"\x00"),
    ],
)
def test_a_malformed_reassembled_payload_is_dropped(
    bench: Bench, to_hub: bool, cluster: int, profile: int, payload: bytes
) -> None:
    bench.join()
    node = bench.hub.node if to_hub else bench.meter.node
    dst = 0 if to_hub else bench.meter.node.settings.short_address
    aps = ApsData(
        cluster, profile, 1, 10, 200, payload, DeliveryMode.UNICAST, None, False, Fragment(0, 1)
    )
    psdu = air.nwk_data(
        aps,
        mac_sequence=1,
        nwk_sequence=1,
        pan_id=bench.settings.pan_id,
        src=0x2222,
        dst=dst,
        security=bench.secured(FAR_COUNTER, b"\x77" * 8),
    )
    dropped = node.frames_dropped
    bench.inject(psdu, dst, 0.1)
    assert node.frames_dropped == dropped + 1
    assert bench.lines("dropped: malformed reassembled APS payload")
    assert bench.run.join_details(bench.hub, bench.meter).ok


# GBCS messages at the HAN tunnel's limit ------------------------------------------------------


@pytest.mark.parametrize("kind", ["esme", "gsme"])
def test_the_longest_routable_message_crosses_the_han(pki: TestPki, kind: str) -> None:
    bench = Bench(pki, kind)
    bench.join()
    heard: list[bytes] = []
    inner = bench.meter.node.on_gbcs
    assert inner is not None

    def on_gbcs(peer: bytes, data: bytes) -> None:
        heard.append(data)
        inner(peer, data)

    bench.meter.node.on_gbcs = on_gbcs
    message = command_of_size(bench.world.headend, bench.meter.eui64, MAX_GBCS_MESSAGE)
    bench.hub.chf.from_wan(message.encode())
    bench.world.run(120)
    assert heard == [message.encode()]


# From an audit of the ZigBee stack ----------------------------------------------------------

INSIDER = bytes.fromhex("00DB12345678B0FF")  # another device of the HAN: it holds the key


def _association_request(bench: Bench, capability: Capability, sequence: int) -> bytes:
    """An association request naming the bench's meter, from whoever sends it."""
    return air.association_request(
        mac_sequence=sequence,
        pan_id=bench.settings.pan_id,
        coordinator=0,
        device_ieee=bench.meter.eui64,
        capability=capability,
    )


def _leave(bench: Bench, *, request: bool, src: int, dst: int, source: bytes) -> bytes:
    return air._nwk_command(
        Leave(request=request),
        mac_sequence=1,
        nwk_sequence=9,
        pan_id=bench.settings.pan_id,
        src=src,
        dst=dst,
        security=bench.secured(FAR_COUNTER, source),
        radius=1,
        src_ieee=None,
        dst_ieee=None,
    )


@pytest.mark.parametrize("request_bit", [False, True])
def test_a_leave_naming_a_child_from_another_address_does_not_cut_it_off(
    bench: Bench, request_bit: bool
) -> None:
    """Any key holder could make the hub drop a child with a Leave naming it in the
    auxiliary header (from its own address, or a Leave *request*); the child was then
    ignored for good."""
    bench.join()
    victim = bench.meter.eui64
    before = bench.hub.node.children[victim]
    bench.inject(_leave(bench, request=request_bit, src=0x7777, dst=0, source=victim), 0)
    assert bench.hub.node.children.get(victim) == before  # address and tunnel kept
    assert bench.lines("NWK Leave not from the child it names: ignored")
    assert not bench.lines("left")


@pytest.mark.parametrize("src", [0x7777, 0x0000], ids=["own address", "claims the hub's"])
def test_a_meter_obeys_a_leave_request_only_from_its_trust_centre(bench: Bench, src: int) -> None:
    """An insider's Leave request is refused from its own address, and from the hub's
    address too (its security header still names the insider): with the NWK source
    alone checked, any key holder could knock a meter off the HAN (test audit)."""
    bench.join()
    node = bench.meter.node
    assert node.settings is not None
    short = node.settings.short_address
    bench.inject(_leave(bench, request=True, src=src, dst=short, source=INSIDER), short)
    assert node.settings is not None and node.state is NodeState.JOINED
    assert bench.lines("NWK Leave request not from our parent")
    hub = bench.hub.eui64
    bench.inject(_leave(bench, request=True, src=0, dst=short, source=hub), short)
    assert node.settings is None  # the trust centre's is obeyed


def test_a_rejoin_request_from_a_broadcast_address_gets_a_device_address(bench: Bench) -> None:
    bench.join()
    bench.meter.node.forget_network()
    bench.world.run(1)
    bench.meter.node.power_off()  # gone, still in the device log
    request = air.rejoin_request(
        mac_sequence=1,
        nwk_sequence=5,
        pan_id=bench.settings.pan_id,
        src=0xFFFD,
        dst=0,
        device_ieee=bench.meter.eui64,
        capability=Capability.router(),
    )
    bench.inject(request, 0, 0.5)
    child = bench.hub.node.children.get(bench.meter.eui64)
    assert child is not None and 0 < child.short_address <= 0xFFF7


def test_a_transport_key_from_another_trust_centre_is_not_taken() -> None:
    """A Transport Key captured at the HAN a meter joined before, replayed while it joins
    another, left it on the new PAN with the old network's key, heard by nobody."""
    from emulators.zigbee.air import Keys
    from emulators.zigbee.mac import decode_mac, fcs

    world = World(SEED)
    run = Run("replay", world)
    hub_a = world.add_hub("premises")
    meter = world.add_meter("premises", "esme")
    assert run.add_device(hub_a, meter).ok and run.wait_joined(meter, hub_a, "join A").ok
    keys = Keys(link={bytes(8): meter.node.link_key})
    captured = [
        psdu
        for _, _, psdu in world.capture.frames
        if isinstance((d := air.decode_frame(psdu, keys)).aps, ApsCommand)
        and isinstance(d.aps.command, TransportKey)
    ][-1]
    meter.node.forget_network()
    hub_b = world.add_hub("third")
    settings = hub_b.node.settings
    assert settings is not None
    attacker = Attacker(world.place("third"), settings.channel)
    world.move(meter, "third")
    node = meter.node
    inner = node.mac_frame
    sent: list[bool] = []

    def replay_when_associated(mac: object) -> None:
        inner(mac)  # type: ignore[arg-type]
        if node.state is NodeState.JOINING and node._pending_short is not None and not sent:
            # MAC and NWK headers are not secured: re-framed for B's PAN and this meter.
            nwk = bytearray(decode_mac(captured).payload)
            nwk[2:4] = node._pending_short.to_bytes(2, "little")
            body = (
                b"\x61\x88\x77"
                + settings.pan_id.to_bytes(2, "little")
                + node._pending_short.to_bytes(2, "little")
                + b"\x00\x00"
                + bytes(nwk)
            )
            world.clock.call_later(
                0.001, attacker.send, body + fcs(body), settings.pan_id, node._pending_short
            )
            sent.append(True)

    node.mac_frame = replay_when_associated  # type: ignore[method-assign]
    assert run.add_device(hub_b, meter).ok
    assert run.wait_joined(meter, hub_b, "join B", timeout=600).ok
    assert sent
    assert node.settings is not None and node.settings.trust_centre == hub_b.eui64
    assert run.join_details(hub_b, meter).ok


def test_an_association_denial_for_another_device_does_not_end_a_join(bench: Bench) -> None:
    """A meter took any association response on its PAN: denials addressed to another
    EUI-64, sent at each attempt, kept it from ever joining."""
    from emulators.zigbee.mac import AssociationStatus

    node = bench.meter.node
    inner = node.on_state
    denials: list[bool] = []

    def deny_at_each_attempt(state: NodeState) -> None:
        if state is NodeState.JOINING:
            deny = air.association_response(
                mac_sequence=0x42,
                pan_id=bench.settings.pan_id,
                device_ieee=INSIDER,
                coordinator_ieee=b"\x66" * 8,
                short_address=0xFFFF,
                status=AssociationStatus.PAN_ACCESS_DENIED,
            )
            bench.world.clock.call_later(0.0015, bench.attacker.send, deny, None, None)
            denials.append(True)
        if inner is not None:
            inner(state)

    node.on_state = deny_at_each_attempt
    assert bench.run.add_device(bench.hub, bench.meter).ok
    bench.world.run(300)
    assert denials and node.joined
    assert not bench.lines("association refused")


@pytest.mark.parametrize("annce_lost", [False, True])
def test_a_spoofed_association_request_mid_join_does_not_make_an_esme_sleepy(
    bench: Bench, annce_lost: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's sleepy flag came from the last (unauthenticated) association request;
    an ESME marked sleepy had its commands held for an hour. The NWK-secured Device_annce
    now says what the device is; when that broadcast is lost (it is never repeated), the
    type CCS01 logged does, not the association request (audit 8, han M3)."""
    node = bench.meter.node
    if annce_lost:
        medium = node.medium
        assert medium is not None
        send = medium.send

        def drop_the_meters_broadcasts(sender: object, psdu: bytes, *args: object) -> None:
            if not (sender is node and args[1] == 0xFFFF and psdu[0] & 7 == 1):
                send(sender, psdu, *args)  # type: ignore[arg-type]

        monkeypatch.setattr(medium, "send", drop_the_meters_broadcasts)
    inner = node.on_state
    sent: list[bool] = []

    def spoof_when_joining(state: NodeState) -> None:
        if state is NodeState.JOINING and not sent:
            spoof = _association_request(bench, Capability.sleepy_end_device(), 0x55)
            bench.world.clock.call_later(
                0.0035, bench.attacker.send, spoof, bench.settings.pan_id, 0
            )
            sent.append(True)
        if inner is not None:
            inner(state)

    node.on_state = spoof_when_joining
    bench.join()
    assert sent
    assert not bench.hub.node.children[bench.meter.eui64].sleepy
    assert not bench.hub.chf.devices[bench.meter.eui64].sleepy
    start = bench.world.clock.now
    assert bench.run.join_details(bench.hub, bench.meter).ok
    assert bench.world.clock.now - start < 10  # pushed, not held for its hourly poll


def test_a_departed_meters_old_frames_do_not_complete_an_impostors_join(bench: Bench) -> None:
    """The hub forgot a device's NWK frame counter when it left, so an impostor that
    associated under its EUI-64 in a new join window replayed its old Device_annce and
    RequestTunnel and was taken as joined, with a tunnel."""
    from emulators.zigbee.tunnel import RequestTunnel

    bench.join()
    hub, meter = bench.hub.node, bench.meter.node
    keys = hub.keys()
    old: dict[str, bytes] = {}
    for _, _, psdu in bench.world.capture.frames:
        d = air.decode_frame(psdu, keys)
        if d.app is not None and d.app.zdo is not None and d.app.zdo.ieee == bench.meter.eui64:
            old["announce"] = psdu
        if d.app is not None and isinstance(d.app.tunnel, RequestTunnel):
            old["tunnel"] = psdu
    meter.forget_network()  # it leaves, and its Leave reaches the hub
    bench.world.run(1)
    meter.power_off()
    assert bench.run.add_device(bench.hub, bench.meter).ok  # a new join window (CCS01)
    bench.inject(_association_request(bench, Capability.router(), 1), 0, 0.1)
    bench.inject(old["announce"], 0xFFFF, 0.1)
    bench.inject(old["tunnel"], 0, 0.5)
    assert not hub.has_child(bench.meter.eui64)
    assert not hub.reachable(bench.meter.eui64)
    assert bench.meter.eui64 in bench.hub.chf.join_windows  # still open for the real one


def test_a_hub_remembers_a_bounded_number_of_departed_devices(bench: Bench) -> None:
    from emulators.node import DEPARTED_MEMORY

    hub = bench.hub.node
    for i in range(DEPARTED_MEMORY + 10):
        device = bytes.fromhex("00DB0000") + i.to_bytes(4, "big")
        hub._nwk_seen[device] = 1
        hub._forget_neighbour(device)
    assert len(hub._nwk_seen) == DEPARTED_MEMORY
    assert bytes.fromhex("00DB000000000000") not in hub._nwk_seen  # the oldest went first


def test_forged_frames_do_not_grow_a_nodes_tables_without_bound(bench: Bench) -> None:
    """Unsecured frames claiming ever new sources grew the hub's duplicate table for
    good; a meter without the key recorded counters of frames it could not verify (and
    saved them)."""
    from emulators.node import UNSECURED_MEMORY

    bench.join()
    hub = bench.hub.node
    for i in range(UNSECURED_MEMORY * 3):
        request = air.rejoin_request(
            mac_sequence=i & 0xFF,
            nwk_sequence=7,
            pan_id=bench.settings.pan_id,
            src=0x1000 + i,
            dst=0,
            device_ieee=bytes.fromhex("00DB0000") + i.to_bytes(4, "big"),
            capability=Capability.router(),
        )
        bench.attacker.send(request, bench.settings.pan_id, 0)
        bench.world.run(0.01)
    assert len(hub._unsecured_seen) <= UNSECURED_MEMORY
    meter = bench.meter.node
    meter.forget_network()  # scanning, no network key
    bench.world.run(0.5)
    meter.channel = bench.settings.channel  # within earshot, whatever its scan is at
    frame = _leave(bench, request=True, src=0, dst=0xFFFF, source=INSIDER)
    bench.inject(frame, 0xFFFF, 0.1)
    assert INSIDER not in meter._nwk_seen


@pytest.mark.parametrize(
    ("src", "src_ieee", "to_us", "taken"),
    [
        (0x0000, "hub", True, True),  # the parent's answer to us
        (0x7777, "insider", True, False),  # another key holder's
        (0x0000, None, True, False),  # no source EUI-64: not a trust centre's
        (0x0000, "hub", False, False),  # the parent's answer to someone else
    ],
)
def test_a_rejoining_meter_takes_only_its_parents_answer(
    bench: Bench, src: int, src_ieee: str | None, to_us: bool, taken: bool
) -> None:
    """ZigBee 3.6.1.4.2: a rejoin response is from the coordinator, names its source and
    is addressed to the meter; no test sent a forged one before (test audit)."""
    bench.join()
    node = bench.meter.node
    before, answered = node.short_address, node._answered_by
    node._answered_by = None
    node._set_state(NodeState.REJOINING)  # as when its rejoin request went out
    eui = {"hub": bench.hub.eui64, "insider": INSIDER, None: None}[src_ieee]
    psdu = air.rejoin_response(
        mac_sequence=3,
        nwk_sequence=4,
        pan_id=bench.settings.pan_id,
        src=src,
        src_ieee=eui,  # type: ignore[arg-type]
        dst=before,
        dst_ieee=bench.meter.eui64 if to_us else INSIDER,
        network_address=0x4242,
    )
    node.nwk_frame(air.decode_frame(psdu))
    assert (node.short_address == 0x4242) is taken
    assert (node._pending_short == 0x4242) is taken
    assert node._answered_by == (answered if taken else None)
    if not taken:
        assert node.short_address == before


def test_a_gsme_whose_device_annce_is_lost_is_still_held_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without its Device_annce the hub goes by the type CCS01 logged: a GSME sleeps, so
    its commands are held for its poll, not pushed at a radio that is off."""
    world = World(5)
    run = Run("gsme", world)
    hub = world.add_hub("premises", name="CHF")
    gsme = world.add_meter("premises", "gsme")
    medium = hub.node.medium
    assert medium is not None
    send = medium.send

    def drop_its_broadcasts(sender: object, psdu: bytes, *args: object) -> None:
        if not (sender is gsme.node and args[1] == 0xFFFF and psdu[0] & 7 == 1):
            send(sender, psdu, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(medium, "send", drop_its_broadcasts)
    assert run.add_device(hub, gsme).ok and run.wait_joined(gsme, hub, "join").ok
    assert hub.node.children[gsme.eui64].sleepy and hub.chf.devices[gsme.eui64].sleepy
    assert run.join_details(hub, gsme).ok  # held, and taken at its next poll


def test_a_flood_of_sleepy_rejoin_requests_holds_a_bounded_number_of_responses(
    pki: TestPki,
) -> None:
    """Rejoin requests are unsecured: anyone can send one claiming to sleep. The hub holds
    a sleepy device's Rejoin Response for its poll, but no more of them than of
    Association Responses (TRANSACTION_OVERFLOW), and the real meter is untouched."""
    bench = Bench(pki, "gsme")
    bench.join()
    hub = bench.hub.node
    for i in range(3 * MAX_HELD_ASSOCIATIONS):
        psdu = air.rejoin_request(
            mac_sequence=i & 0xFF,
            nwk_sequence=i & 0xFF,
            pan_id=bench.settings.pan_id,
            src=0x2000 + i,
            dst=0,
            device_ieee=bytes([0x42, 0, 0, 0, 0, 0, i >> 8, i & 0xFF]),
            capability=Capability.sleepy_end_device(),
        )
        bench.inject(psdu, 0, 0.01)
    held = sum(len(frames) for frames in hub._indirect.values())
    assert held == MAX_HELD_ASSOCIATIONS
    assert len(bench.lines("TRANSACTION_OVERFLOW")) == 2 * MAX_HELD_ASSOCIATIONS
    bench.world.run(10)  # each expires unfetched
    assert not hub._indirect and not hub._rejoin_answers
    assert bench.run.join_details(bench.hub, bench.meter).ok


def test_a_spoofed_sleepy_rejoin_request_from_another_address_does_not_block_the_real_one(
    pki: TestPki,
) -> None:
    """Anyone can send a rejoin request naming a GSME from some other address: the
    response held there answers nothing the GSME sends from its own."""
    bench = Bench(pki, "gsme")
    bench.join()
    meter = bench.meter
    bench.world.run(60)
    bench.inject(_spoofed_rejoin(bench, 0x1234, Capability.sleepy_end_device()), 0)
    lose_parent(meter.node)  # the real GSME loses its parent, and rejoins
    assert bench.world.run_until(lambda: meter.node.rejoins == 1 and meter.node.joined, 30)
    assert not bench.lines("rejoin failed")
