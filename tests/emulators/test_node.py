"""ZigBee nodes on the emulated medium, driven through a World as the scenarios drive it.

Joins, trust-centre rejoins, leaves, sleepy polling, MAC retries and power
cycles, all on the virtual clock: everything asserted here is what the radios
actually exchanged.
"""

from __future__ import annotations

import copy
import itertools

import pytest

from emulators.faults import FaultPlan
from emulators.node import JOIN_ATTEMPTS, JOIN_RETRY, SLEEPY_POLL, NodeState
from emulators.scenarios import JOIN_TIMEOUT, Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee.install_code import link_key_from_install_code
from emulators.zigbee.mac import MacFrameType, decode_mac
from gbcs import asn1
from gbcs.devicelog import AddDevice, DeviceLog
from gbcs.joins import JoinDetails
from gbcs.testpki import TestPki

SEED = 3


class Bench:
    """A world, a scenario run on it, and the trace lines the nodes wrote."""

    def __init__(self, pki: TestPki, seed: int = SEED, faults: FaultPlan | None = None) -> None:
        self.world = World(seed, pki=pki, **({} if faults is None else {"faults": faults}))
        self.trace: list[str] = []
        self.world.trace = self.trace.append
        self.run = Run("test", self.world)

    def hub(self, place: str = "bench", **kwargs: object) -> Hub:
        return self.world.add_hub(place, **kwargs)  # type: ignore[arg-type]

    def meter(self, place: str | None = "bench", kind: str = "esme", **kwargs: object) -> MeterUnit:
        return self.world.add_meter(place, kind, **kwargs)  # type: ignore[arg-type]

    def states(self, meter: MeterUnit) -> list[NodeState]:
        """Record every state the meter's node enters from now on."""
        seen: list[NodeState] = []
        inner = meter.node.on_state

        def on_state(state: NodeState) -> None:
            seen.append(state)
            if inner is not None:
                inner(state)

        meter.node.on_state = on_state
        return seen

    def add(self, hub: Hub, meter: MeterUnit, **kwargs: object) -> None:
        command = AddDevice(
            meter.eui64,
            int(meter.device.device_type),
            kwargs.pop("install_code", meter.device.install_code),  # type: ignore[arg-type]
            **kwargs,  # type: ignore[arg-type]
        )
        step, _ = self.run.device_log(hub, command, AddDevice.MESSAGE_CODE)
        assert step.ok, step.result

    def join(self, hub: Hub, meter: MeterUnit) -> None:
        self.add(hub, meter, join_timeout=3600)
        step = self.run.wait_joined(meter, hub, "join")
        assert step.ok, step.result

    def joined(self, meter: MeterUnit, hub: Hub, timeout: float = JOIN_TIMEOUT) -> bool:
        world = self.world
        return world.run_until(lambda: world.joined_to(meter) == hub.eui64, timeout)

    def lines(self, text: str) -> list[str]:
        return [line for line in self.trace if text in line]


@pytest.fixture
def bench(pki: TestPki) -> Bench:
    return Bench(pki)


def announced(hub: Hub) -> list[bytes]:
    return [c.ieee for c in hub.node.children.values() if c.announced]


# Install-code join ----------------------------------------------------------------------


def test_no_join_without_a_join_window(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    assert not bench.joined(meter, hub, 120)
    assert meter.node.state is NodeState.SCANNING
    assert meter.node.settings is None
    assert hub.node.children == {}


def test_install_code_join_while_the_window_is_open(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    states = bench.states(meter)
    bench.add(hub, meter, join_timeout=60)
    assert bench.joined(meter, hub, 60)
    assert NodeState.JOINED in states
    assert states.index(NodeState.JOINING) < states.index(NodeState.JOINED)
    node = meter.node
    assert node.joins == 1 and node.rejoins == 0
    assert node.settings is not None
    assert node.settings.trust_centre == hub.eui64
    assert node.settings.network_key == hub.node.settings.network_key
    assert node.settings.extended_pan_id == hub.chf.extended_pan_id
    assert node.settings.pan_id == hub.node.settings.pan_id
    assert announced(hub) == [meter.eui64]
    assert hub.chf.join_key(meter.eui64) is None  # the window closed with the join
    assert meter.device.event_log[-1].event == "joined HAN"
    bench.world.run(5)
    assert node.joined  # the tunnel is open
    assert bench.run.join_details(hub, meter).ok


def test_no_join_after_the_window_closed(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter(power=False)
    bench.add(hub, meter, join_timeout=10)
    bench.world.run(20)
    meter.node.power_on()
    assert not bench.joined(meter, hub, JOIN_TIMEOUT)
    assert meter.node.state is NodeState.SCANNING
    assert hub.node.children == {}


def test_join_when_powered_inside_the_window(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter(power=False)
    bench.add(hub, meter, join_timeout=10)
    bench.world.run(5)
    meter.node.power_on()
    assert bench.joined(meter, hub, 10)


def test_wrong_install_code_never_joins(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    wrong = bytes(reversed(meter.device.install_code))
    assert link_key_from_install_code(wrong) != meter.node.link_key
    states = bench.states(meter)
    bench.add(hub, meter, install_code=wrong, join_timeout=3600)
    assert hub.chf.current[meter.eui64].tc_link_key_hash == link_key_from_install_code(wrong)
    assert not bench.joined(meter, hub, 300)
    assert NodeState.JOINED not in states
    assert NodeState.JOINING in states  # it associated, but could not read the network key
    assert meter.node.settings is None
    assert meter.node.joins == 0
    assert announced(hub) == []
    assert meter.node.frames_dropped > 0  # the transport-key frames it could not decrypt


def test_association_denied_without_a_window_for_this_device(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    other = bench.meter(None)  # has a window, but is not here
    bench.add(hub, other, join_timeout=3600)
    assert hub.chf.joining_open()
    states = bench.states(meter)
    assert not bench.joined(meter, hub, 100)
    assert NodeState.JOINING in states and NodeState.JOINED not in states
    denied = bench.lines(f"association from {meter.eui64.hex().upper()} denied: no join window")
    assert len(denied) >= 2  # it tries again every JOIN_RETRY seconds
    assert bench.lines(f"{meter.eui64.hex().upper()}: association refused")
    assert hub.node.children == {}


def denials(bench: Bench, hub: Hub, meter: MeterUnit) -> list[float]:
    """When ``hub`` denied ``meter``'s association, from the trace."""
    text = f"{hub.node.name}: association from {meter.eui64.hex().upper()} denied"
    return [float(line.split()[0]) for line in bench.lines(text)]


@pytest.mark.parametrize("refusal", ["no window", "wrong install code"])
@pytest.mark.parametrize("admitting_channel", [11, 15])
def test_refused_by_one_hub_the_meter_joins_the_next_that_admits_it(
    bench: Bench, refusal: str, admitting_channel: int
) -> None:
    # Two hubs at one place, both permitting joining: the one on the lower channel is heard
    # first and tried first, and whichever refuses, the meter goes on to the other within
    # the scan. A denial is final; a network key it cannot read looks like one lost on the
    # air, so that network is asked JOIN_ATTEMPTS times in all first.
    refusing = bench.hub(name="refusing", channel=26 - admitting_channel)
    admitting = bench.hub(name="admitting", channel=admitting_channel)
    meter = bench.meter(power=False)
    if refusal == "no window":
        bench.add(refusing, bench.meter(None), join_timeout=3600)  # a window, not for it
    else:
        wrong = bytes(reversed(meter.device.install_code))
        bench.add(refusing, meter, install_code=wrong, join_timeout=3600)
    bench.add(admitting, meter, join_timeout=3600)
    states = bench.states(meter)
    meter.node.power_on()
    assert bench.joined(meter, admitting, JOIN_RETRY / 2)  # within one scan: no back-off
    assert meter.node.settings.trust_centre == admitting.eui64
    assert meter.node.joins == 1
    assert announced(admitting) == [meter.eui64] and announced(refusing) == []
    tried_refusing_first = admitting_channel > refusing.node.settings.channel
    attempts_refusing = 1 if refusal == "no window" else JOIN_ATTEMPTS
    assert states.count(NodeState.JOINING) == 1 + attempts_refusing * tried_refusing_first
    if refusal == "no window":
        assert len(denials(bench, refusing, meter)) == int(tried_refusing_first)
    else:
        assert bool(refusing.node.children) is tried_refusing_first  # associated, no key
    assert bool(bench.lines("trying the next network")) is tried_refusing_first


def test_refused_everywhere_the_meter_rescans_with_the_usual_back_off(bench: Bench) -> None:
    first = bench.hub(name="first", channel=11)
    second = bench.hub(name="second", channel=15)
    meter = bench.meter(power=False)
    for hub in (first, second):
        bench.add(hub, bench.meter(None), join_timeout=3600)  # windows for someone else
    meter.node.power_on()
    assert not bench.joined(meter, second, 4 * JOIN_RETRY)
    tried_first, tried_second = denials(bench, first, meter), denials(bench, second, meter)
    # Every scan tries both, in scan order, and the next scan waits JOIN_RETRY: no spinning.
    assert 4 <= len(tried_first) == len(tried_second) <= 5
    for a, b in zip(tried_first, tried_second, strict=True):
        assert a < b < a + 1.0
    gaps = [b - a for a, b in zip(tried_second, tried_first[1:], strict=False)]
    assert all(JOIN_RETRY <= gap < JOIN_RETRY + 1.0 for gap in gaps)
    assert meter.node.state is NodeState.SCANNING and meter.node.joins == 0
    # A window opens on the second hub: the next scan's second candidate admits it.
    bench.add(second, meter, join_timeout=3600)
    assert bench.joined(meter, second, JOIN_RETRY + 5)
    assert len(denials(bench, first, meter)) == len(tried_first) + 1
    assert len(denials(bench, second, meter)) == len(tried_second)
    assert announced(second) == [meter.eui64] and announced(first) == []


# Trust-centre rejoin -------------------------------------------------------------------


def premises_meter(bench: Bench) -> tuple[Hub, MeterUnit]:
    old = bench.hub("premises")
    meter = bench.meter("premises")
    bench.join(old, meter)
    bench.world.move(meter, None)
    bench.world.run(600)
    return old, meter


def test_trust_centre_rejoin_after_restore_on_another_hub(bench: Bench) -> None:
    old, meter = premises_meter(bench)
    old_epid = old.chf.extended_pan_id
    settings_before = copy.deepcopy(meter.node.settings)
    new = bench.hub("bench")
    assert new.chf.extended_pan_id != old_epid
    bench.world.move(meter, "bench")
    step, logs = bench.run.read_logs(old)
    assert step.ok and logs is not None and logs.current is not None
    entry = DeviceLog(logs.current.extended_pan_id, logs.current.only(meter.eui64).entries)
    assert bench.run.restore(new, entry).ok
    assert new.chf.extended_pan_id == old_epid
    assert new.node.settings.extended_pan_id == old_epid  # the coordinator adopted it
    assert bench.joined(meter, new, 60)
    node = meter.node
    assert (node.joins, node.rejoins) == (1, 1)
    assert node.settings.trust_centre == new.eui64
    assert node.settings.network_key == new.node.settings.network_key
    assert node.settings.network_key != settings_before.network_key
    assert node.settings.extended_pan_id == old_epid
    assert announced(new) == [meter.eui64]
    bench.world.run(5)
    assert bench.run.join_details(new, meter).ok  # GBCS flows through the new hub


def test_rejoin_denied_when_not_in_the_device_log(bench: Bench) -> None:
    old, meter = premises_meter(bench)
    settings = copy.deepcopy(meter.node.settings)
    # The same extended PAN ID, but the meter's entry was never restored there.
    new = bench.hub("bench", extended_pan_id=old.chf.extended_pan_id)
    bench.world.move(meter, "bench")
    assert not bench.joined(meter, new, 300)
    eui = meter.eui64.hex().upper()
    assert bench.lines(f"trust-centre rejoin from {eui} denied: not in device log")
    assert bench.lines("rejoin refused")
    assert meter.node.rejoins == 0
    assert meter.node.state in (NodeState.ORPHANED, NodeState.REJOINING)
    assert meter.node.settings == settings  # it keeps its settings and keeps trying
    assert announced(new) == []


def test_rejoin_refused_by_one_hub_goes_on_to_the_next_with_the_extended_pan_id(
    bench: Bench,
) -> None:
    old, meter = premises_meter(bench)
    epid = old.chf.extended_pan_id
    # Heard first: the same extended PAN ID, but the meter's entry was never restored there.
    decoy = bench.hub("bench", name="decoy", channel=11, extended_pan_id=epid)
    new = bench.hub("bench", name="new", channel=15)
    entry = old.chf.current_log().only(meter.eui64)
    assert bench.run.restore(new, entry).ok
    assert new.chf.extended_pan_id == epid
    bench.world.move(meter, "bench")
    assert bench.joined(meter, new, 60)
    eui = meter.eui64.hex().upper()
    assert len(bench.lines(f"decoy: trust-centre rejoin from {eui} denied")) == 1
    assert bench.lines("trust-centre rejoin failed; trying the next network")
    assert (meter.node.joins, meter.node.rejoins) == (1, 1)
    assert meter.node.settings.trust_centre == new.eui64
    assert announced(new) == [meter.eui64] and announced(decoy) == []


def test_no_rejoin_without_the_extended_pan_id(bench: Bench) -> None:
    old, meter = premises_meter(bench)
    new = bench.hub("bench")
    bench.world.move(meter, "bench")
    # The entry is there, but the hub did not take over the old extended PAN ID.
    entry = old.chf.current_log().only(meter.eui64)
    new.chf.current[meter.eui64] = entry.entries[0]
    assert not bench.joined(meter, new, 200)
    assert meter.node.rejoins == 0
    assert not bench.lines("trust-centre rejoin from")


# Leave ------------------------------------------------------------------------------------


def test_forget_network_sends_a_leave_and_returns_to_scanning(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    bench.world.run(5)
    node = meter.node
    node.link_key = bytes(16)  # as if a network-specific key had replaced it
    node.forget_network()
    assert node.state is NodeState.SCANNING
    assert node.settings is None
    assert node.tunnel_id is None and node.short_address is None and node.pan_id is None
    assert node.link_key == link_key_from_install_code(meter.device.install_code)
    assert not node.joined
    node.forget_network()  # no network left to forget: no second entry
    assert [e.detail for e in meter.device.event_log if e.event == "left HAN"] == [
        hub.eui64.hex().upper()
    ]
    assert bench.world.joined_to(meter) is None
    bench.world.run(1)
    assert meter.eui64 not in hub.node.children  # the hub heard the leave
    assert bench.lines(f"{meter.eui64.hex().upper()} left")
    # No join window: it scans on but does not come back.
    assert not bench.joined(meter, hub, 100)
    assert node.state is NodeState.SCANNING


def test_forget_network_then_install_code_join_again(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    meter.node.forget_network()
    bench.world.run(1)
    bench.add(hub, meter, join_timeout=600)
    assert bench.joined(meter, hub, 120)
    assert meter.node.joins == 2


def test_disconnect_command_makes_the_meter_leave(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    bench.world.run(5)
    assert bench.run.disconnect(hub, meter).ok
    assert bench.run.wait_left(meter, hub).ok
    assert meter.node.settings is None
    bench.world.run(1)
    assert meter.eui64 not in hub.node.children
    # The meter's event log (ECS35a's 0xF002) says when the divorce took effect.
    events = [(e.event, e.detail) for e in meter.device.event_log]
    left = ("left HAN", hub.eui64.hex().upper())
    assert events.count(left) == 1
    assert events.index(("disconnect from HAN", "reverting to the install-code link key")) < (
        events.index(left)
    )


# Sleepy GSME ----------------------------------------------------------------------------


def test_sleepy_gsme_listens_only_while_awake_and_gets_held_messages(bench: Bench) -> None:
    hub, gsme = bench.hub(), bench.meter(kind="gsme")
    bench.join(hub, gsme)
    world = bench.world
    samples: list[bool] = []
    end = world.clock.now + 4 * SLEEPY_POLL

    def sample() -> None:
        samples.append(gsme.node.listening)
        if world.clock.now < end:
            world.clock.call_later(0.05, sample)

    world.clock.call_soon(sample)
    world.run(4 * SLEEPY_POLL + 1)
    awake = sum(samples)
    assert len(samples) > 2000
    assert 0 < awake < len(samples) * 0.05  # wakes briefly every poll, asleep otherwise

    while gsme.node.listening:
        world.run(0.1)
    headend = world.headend
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    sent_at = world.clock.now
    outcome = headend.send(hub.chf, command, timeout=2 * SLEEPY_POLL)
    assert outcome.ok, outcome.result
    assert outcome.answered_at is not None
    waited = outcome.answered_at - sent_at
    assert 0.1 < waited <= SLEEPY_POLL + 1  # held until its next poll
    assert hub.chf.held_count(gsme.eui64) == 0


def test_held_messages_are_delivered_in_order(bench: Bench) -> None:
    hub, gsme = bench.hub(), bench.meter(kind="gsme")
    bench.join(hub, gsme)
    world = bench.world
    while gsme.node.listening:
        world.run(0.1)
    headend = world.headend
    commands = [
        headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64) for _ in range(3)
    ]
    answered: list[int] = []
    inner = hub.chf.wan_out
    assert inner is not None

    def wan_out(data: bytes) -> None:
        from gbcs.frame import decode_message

        answered.append(decode_message(data)[0].header.originator_counter)
        inner(data)

    hub.chf.wan_out = wan_out
    for command in commands:
        hub.chf.from_wan(command.encode())
    assert hub.chf.held_count(gsme.eui64) == 3
    assert world.run_until(lambda: len(answered) == 3, 2 * SLEEPY_POLL)
    assert answered == [c.header.originator_counter for c in commands]


# Faults ---------------------------------------------------------------------------------


def retransmissions(world: World) -> int:
    assert world.capture is not None
    frames = [
        psdu
        for _, _, psdu in world.capture.frames
        if decode_mac(psdu).frame_type != MacFrameType.ACK
    ]
    return len(frames) - len(set(frames))


def test_mac_retries_recover_from_lost_frames(pki: TestPki) -> None:
    """With 20 % loss every join still completes; some complete by MAC retry alone."""
    recovered_by_retry = []
    for seed in range(6):
        bench = Bench(pki, seed, FaultPlan(loss=0.2))
        hub, meter = bench.hub(), bench.meter()
        bench.add(hub, meter, join_timeout=3600)
        assert bench.joined(meter, hub, JOIN_TIMEOUT), f"seed {seed}"
        lost = bench.world.faults.counts["lost"]
        if lost and retransmissions(bench.world) and bench.world.clock.now < JOIN_RETRY:
            recovered_by_retry.append(seed)
    assert recovered_by_retry


def test_without_faults_nothing_is_retransmitted(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    assert bench.world.faults.counts["lost"] == 0
    assert retransmissions(bench.world) == 0


def test_a_faulty_run_replays_exactly_from_its_seed(pki: TestPki) -> None:
    def capture(seed: int) -> list[tuple[float, str, bytes]]:
        bench = Bench(pki, seed, FaultPlan(loss=0.2, duplication=0.1, delay=0.1))
        hub, meter = bench.hub(), bench.meter()
        bench.join(hub, meter)
        assert bench.world.capture is not None
        return bench.world.capture.frames

    first = capture(5)
    assert capture(5) == first
    assert capture(6) != first


# Power cycle -------------------------------------------------------------------------------


def test_power_cycle_keeps_settings_and_the_meter_resumes(bench: Bench) -> None:
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    bench.world.run(10)
    node = meter.node
    settings = copy.deepcopy(node.settings)
    node.power_cycle(2.0)
    assert node.state is NodeState.OFF
    assert not node.listening and not node.powered
    assert node.settings == settings  # NV storage survives
    assert node.tunnel_id is None
    bench.world.run(1.0)
    assert node.state is NodeState.OFF
    world = bench.world
    node.hub_time = None
    # Back on its network at once: its keep-alive (a read of the hub's time) is answered.
    assert world.run_until(lambda: node.state is NodeState.JOINED and node.hub_time, 10)
    assert node.settings == settings
    assert (node.joins, node.rejoins) == (1, 0)  # resumed, not joined again
    # The tunnel it gave the hub went with the power (GBCS 10.2.2.1: the hub opens it):
    # the first command is refused, the hub opens a new tunnel and the next gets through.
    assert node.tunnel_id is None and hub.node.reachable(meter.eui64)
    assert not bench.run.join_details(hub, meter).ok
    assert world.run_until(lambda: node.joined and world.joined_to(meter) == hub.eui64, 10)
    assert bench.run.join_details(hub, meter).ok


def test_power_cycle_of_an_unpowered_node_does_nothing(bench: Bench) -> None:
    meter = bench.meter(power=False)
    meter.node.power_cycle(1.0)
    bench.world.run(5)
    assert meter.node.state is NodeState.OFF
    assert not meter.node.powered


def test_power_cycle_fault_injection(pki: TestPki) -> None:
    bench = Bench(pki, 1, FaultPlan(power_cycle=0.2, power_off_time=1.0))
    hub, meter = bench.hub(), bench.meter()
    bench.add(hub, meter, join_timeout=3600)
    assert bench.joined(meter, hub, JOIN_TIMEOUT)
    bench.world.run(1800)  # drawn only for frames to the meter: its keep-alives' answers
    assert bench.world.faults.counts["power_cycles"] > 0
    assert bench.joined(meter, hub, JOIN_TIMEOUT)


def test_power_cycle_faults_cycle_meters_not_hubs(pki: TestPki) -> None:
    """A power cycle drawn for a frame to the hub dropped that frame and was counted,
    though no hub was cycled (fault audit 2): it is drawn only for a meter's radio."""
    bench = Bench(pki, 3, FaultPlan(power_cycle=1.0, power_off_time=5.0))
    hub, meter = bench.hub(), bench.meter()
    delivered: list[bytes] = []
    deliver = hub.node.deliver

    def noted(psdu: bytes) -> None:
        delivered.append(psdu)
        deliver(psdu)

    hub.node.deliver = noted  # type: ignore[method-assign]
    meter.node.power_on()
    bench.world.run(1)  # its beacon requests reach the hub; the hub's beacon cycles it
    assert delivered and bench.world.faults.counts["power_cycles"] >= 1
    assert not meter.node.powered and meter.node.back_on_at is not None


@pytest.mark.parametrize("name", ["returned-meter", "fresh-meter"])
def test_a_radio_never_has_two_frames_on_the_air(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """802.15.4 7.5.6.4.2: the acknowledgement goes out at the turnaround time, and the
    answer to the frame it acknowledges waits until it has left (a radio is half duplex)."""
    from emulators import medium as medium_module
    from emulators.scenarios import run_scenario

    on_air: dict[int, list[tuple[float, float]]] = {}
    send = medium_module.HanMedium.send

    def recording(self, sender, psdu, dst_pan, dst, after=0.0):  # type: ignore[no-untyped-def]
        start = self.clock.now + after
        on_air.setdefault(id(sender), []).append((start, start + medium_module.airtime(psdu)))
        return send(self, sender, psdu, dst_pan, dst, after)

    monkeypatch.setattr(medium_module.HanMedium, "send", recording)
    assert run_scenario(name, 0).report(0)["ok"]
    overlaps = 0
    for spans in on_air.values():
        spans.sort()
        overlaps += sum(1 for a, b in itertools.pairwise(spans) if b[0] < a[1] - 1e-9)
    assert sum(len(s) for s in on_air.values()) > 50
    assert overlaps == 0


def test_beacons_have_their_own_sequence_number(bench: Bench) -> None:
    """macBSN, not macDSN (802.15.4-2006 7.2.2.1.2): the hub's beacons counted 0, 1, 2...
    on the counter of its data and command frames (audit 8, han L2)."""
    hub, first, second = bench.hub(), bench.meter(), bench.meter()
    bench.join(hub, first)
    bench.join(hub, second)
    assert bench.world.capture is not None
    frames = [decode_mac(psdu) for _, _, psdu in bench.world.capture.frames]
    beacons = [f.sequence for f in frames if f.frame_type == MacFrameType.BEACON]
    # The second join's beacons go on from the first's, whatever the hub sent between.
    assert len(beacons) >= 2 and beacons == list(range(len(beacons)))
    saved = hub.node.state()
    assert saved["counters"]["beacon"] == len(beacons) % 256
    del saved["counters"]["beacon"]  # a state saved before it was kept still loads
    hub.node.load_state(saved)
    assert hub.node.counters.beacon == 0


def test_a_scan_dwells_its_scan_duration_on_each_channel(bench: Bench) -> None:
    """Scan duration 0 is aBaseSuperframeDuration x (2^0 + 1) = 1920 symbols, 30.72 ms per
    channel (802.15.4-2006 7.5.2.1.2); the kit dwelt 15.4 ms (audit 8, han L2)."""
    hub, meter = bench.hub(), bench.meter()
    bench.join(hub, meter)
    assert bench.world.capture is not None
    requests = [
        t
        for t, _, psdu in bench.world.capture.frames
        if decode_mac(psdu).frame_type == MacFrameType.COMMAND and psdu[-3] == 0x07
    ]
    gaps = {round(b - a, 6) for a, b in itertools.pairwise(requests[:16])}
    assert gaps == {0.03072}
