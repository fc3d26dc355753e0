"""Invariants of the emulated HAN under adversarial but legal sequences.

Held messages are delivered once and in order or failed naming their own command,
the trust centre admits only devices in its device log, and an unpowered meter is
silent whatever it was doing when the power went.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from emulators.chf import RouteFailure
from emulators.faults import FaultPlan
from emulators.headend import LATE_RESPONSE_GRACE
from emulators.node import (
    APS_ACK_WAIT,
    APS_MAX_RETRIES,
    MAX_FRAME_RETRIES,
    CoordinatorNode,
    NodeState,
)
from emulators.scenarios import Run, single_entry_log
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee import air
from emulators.zigbee.aps import ApsData
from emulators.zigbee.tunnel import (
    MAX_TRANSFER_SIZE,
    GbcsPut,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
    TransferDataStatus,
    encode_gbcs_tunnel,
)
from emulators.zigbee.zcl import Direction
from gbcs import asn1
from gbcs.devicelog import ActiveDevices, AddDevice, DeviceType, ReadDeviceLog, RemoveDevice
from gbcs.errors import GbcsError
from gbcs.frame import GbcsMessage, decode_message
from gbcs.joins import JoinDetails
from tests.emulators.conftest import device_log_message


def _joined(world: World, run: Run, kind: str) -> tuple[Hub, MeterUnit]:
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="old CHF")
    meter = world.add_meter("premises", kind, world.pki.party(kind).eui64)
    assert run.add_device(hub, meter).ok
    assert run.wait_joined(meter, hub, "join").ok
    return hub, meter


def _route_failures(hub: Hub) -> list[RouteFailure]:
    """Every route failure the hub reports from now on (still passed on to the head end)."""
    failures: list[RouteFailure] = []
    inner = hub.chf.on_route_failure
    assert inner is not None

    def seen(failure: RouteFailure) -> None:
        failures.append(failure)
        inner(failure)

    hub.chf.on_route_failure = seen
    return failures


def _key(message: GbcsMessage) -> tuple[bytes, int]:
    return message.header.business_originator, message.header.originator_counter


def _restored_onto_bench(world: World, run: Run, old: Hub, meter: MeterUnit) -> Hub:
    bench = world.add_hub("bench", name="bench CHF")
    world.move(meter, "bench")
    _, logs = run.read_logs(old)
    log = single_entry_log(logs, meter.eui64)
    assert log is not None and run.restore(bench, log).ok
    return bench


def test_a_held_message_failed_later_does_not_fail_a_newer_command() -> None:
    """CCS02 fails what the old hub still held for the GSME; that failure belongs to the
    command that was held (long timed out), not to the next one sent to the GSME."""
    world = World(seed=3)
    run = Run("stale failure", world)
    old, gsme = _joined(world, run, "gsme")
    bench = _restored_onto_bench(world, run, old, gsme)
    assert run.wait_joined(gsme, bench, "trust-centre rejoin").ok
    stale = run.join_details(old, gsme)  # held by the old hub for a GSME that is gone
    assert stale.result == "no response within 120 s"
    assert old.chf.held_count(gsme.eui64) == 1
    assert run.remove_device(old, gsme).ok  # fails that held message, on the clock
    fresh = run.join_details(bench, gsme)
    assert fresh.ok, fresh.result


def test_route_failures_name_their_command() -> None:
    world = World(seed=4)
    run = Run("named failures", world)
    hub, gsme = _joined(world, run, "gsme")
    failures = _route_failures(hub)
    headend = world.headend
    held = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(held.encode())
    assert run.remove_device(hub, gsme).ok
    world.run(1)
    assert [f.command for f in failures] == [_key(held)]


def held_message_lost_in_the_air(world: World, off_time: float = 2.0) -> None:
    """The GSME loses power as the hub hands it a held message. Back soon, it polls for
    the GET-RESPONSE held for it and refuses it (it came on the tunnel the restart
    closed); off longer than macTransactionPersistenceTime, it never polls for it and the
    MAC gives up. Either way the message (then the next) reaches it at a later poll, once
    each and in order. Shared with the zigpy hub radio's test."""
    run = Run("lost in the air", world)
    hub, gsme = _joined(world, run, "gsme")
    headend = world.headend
    commands = [
        headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64) for _ in range(2)
    ]
    take = hub.chf.take_held
    cut: list[bytes] = []

    def take_and_lose_power(device: bytes) -> bytes | None:
        data = take(device)
        if data is not None and not cut:
            cut.append(data)
            gsme.node.power_cycle(off_time)  # before the GET-RESPONSE is on the air
        return data

    hub.chf.take_held = take_and_lose_power  # type: ignore[method-assign]
    received: list[int] = []
    on_gbcs = gsme.node.on_gbcs
    assert on_gbcs is not None

    def note(peer: bytes, data: bytes) -> None:
        received.append(decode_message(data)[0].header.originator_counter)
        on_gbcs(peer, data)

    gsme.node.on_gbcs = note
    for command in commands:
        hub.chf.from_wan(command.encode())
    assert world.run_until(lambda: len(received) == 2, 120)
    assert cut == [commands[0].encode()]
    assert received == [c.header.originator_counter for c in commands]  # once each, in order
    assert hub.chf.held_count(gsme.eui64) == 0
    assert any(e.event == "held message not delivered" for e in hub.chf.event_log)
    assert hub.chf.devices[gsme.eui64].frames_failed >= 1  # what CCS05/CCS06 report
    assert not [e for e in gsme.device.security_log if "replayed" in e.detail]


def test_a_held_message_the_gsme_never_acknowledged_is_held_again_in_order() -> None:
    held_message_lost_in_the_air(World(seed=5))


def test_a_held_message_never_polled_for_is_held_again_in_order() -> None:
    held_message_lost_in_the_air(World(seed=5), off_time=20.0)


def test_a_held_message_undelivered_after_ccs02_fails_with_its_reason() -> None:
    world = World(seed=6)
    run = Run("undelivered after removal", world)
    hub, gsme = _joined(world, run, "gsme")
    failures: list[RouteFailure] = []
    hub.chf.on_route_failure = failures.append
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    data = hub.chf.take_held(gsme.eui64)
    assert data is not None
    hub.chf.current.pop(gsme.eui64)  # CCS02 took it off the log meanwhile
    hub.chf.undelivered(gsme.eui64, data)
    world.run(1)
    assert hub.chf.held_count(gsme.eui64) == 0
    assert [(f.target, f.command) for f in failures] == [(gsme.eui64, _key(command))]


def test_a_meter_removed_while_its_rejoin_is_answered_is_not_admitted() -> None:
    """CCS02 on the bench CHF after it answered the trust-centre rejoin but before it sent
    the network key: the trust centre keys only devices in its log."""
    world = World(seed=3)
    run = Run("removed while rejoining", world)
    old, esme = _joined(world, run, "esme")
    bench = _restored_onto_bench(world, run, old, esme)
    node = bench.node
    assert isinstance(node, CoordinatorNode)
    # Until the trust centre has answered its rejoin request (the key follows 10 ms later).
    assert world.run_until(lambda: node.joining_child(esme.eui64) is not None, 60)
    assert run.remove_device(bench, esme).ok
    world.run(120)
    assert world.joined_to(esme) is None
    assert not bench.node.has_child(esme.eui64)
    assert esme.eui64 not in bench.chf.devices  # nothing left beside the (empty) log entry
    assert not [e for e in bench.chf.event_log if e.event == "device joined"]
    assert esme.node.state in (NodeState.ORPHANED, NodeState.REJOINING)
    assert esme.node.settings is not None  # still holds the old HAN's settings


def test_a_device_announcing_after_ccs02_gets_no_record_beside_the_log() -> None:
    world = World(seed=7)
    hub = world.add_hub("premises")
    device = bytes.fromhex("00DB1234567800FF")
    hub.chf.device_joined(device, sleepy=True)
    assert device not in hub.chf.devices
    assert hub.chf.event_log[-1].event == "device joined while not in the device log"


def test_a_meter_unplugged_right_after_answering_cs02f_stays_silent() -> None:
    """The disconnect is kept (NV), but an unpowered radio neither scans nor joins."""
    world = World(seed=3)
    run = Run("unplugged", world)
    hub, esme = _joined(world, run, "esme")
    assert run.disconnect(hub, esme).ok
    esme.node.power_off()  # before it acts on the disconnect (AFTER_RESPONSE_DELAY)
    medium = world.places["premises"]
    from_meter: list[bytes] = []
    send = medium.send

    def counting(sender: Any, psdu: bytes, *rest: Any) -> None:
        if sender is esme.node:
            from_meter.append(psdu)
        send(sender, psdu, *rest)

    # The hub still retries its APS acknowledgement of the response's last window.
    medium.send = counting  # type: ignore[method-assign]
    assert run.add_device(hub, esme).ok  # a join window it could use if it were on
    world.run(120)
    assert esme.node.settings is None  # divorced all the same
    assert esme.node.state is NodeState.OFF and not esme.node.listening
    assert from_meter == []
    assert world.joined_to(esme) is None
    esme.node.power_on()  # plugged in again: auto-joins with its install code
    assert run.wait_joined(esme, hub, "join").ok


def _saved_pair() -> dict[str, Any]:
    world = World(seed=8)
    run = Run("saved", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    for kind in ("esme", "gsme"):
        meter = world.add_meter("premises", kind, world.pki.party(kind).eui64)
        assert run.add_device(hub, meter).ok
        assert run.wait_joined(meter, hub, "join").ok
    return world.to_json()


def test_a_saved_hub_with_two_children_on_one_address_is_refused() -> None:
    state = _saved_pair()
    children = state["hubs"][0]["node"]["children"]
    children[1]["short_address"] = children[0]["short_address"]
    with pytest.raises(GbcsError, match=r"short_address .* is taken"):
        World.from_json(state)
    # A tunnel id the hub gave out (a GSME's) is one device's; an ESME allocates its own
    # (GBCS 10.2.2.1), so an ESME's may equal another child's.
    state = _saved_pair()
    children = state["hubs"][0]["node"]["children"]
    gsme = next(c for c in children if c["sleepy"])
    children.append({**gsme, "ieee": "00DB123456789999", "short_address": 0x7777})
    with pytest.raises(GbcsError, match=r"tunnel_id .* is taken"):
        World.from_json(state)
    state = _saved_pair()
    children = state["hubs"][0]["node"]["children"]
    esme = next(c for c in children if not c["sleepy"])
    esme["tunnel_id"] = next(c for c in children if c["sleepy"])["tunnel_id"]
    World.from_json(state)


def test_a_saved_hub_holding_messages_for_a_device_off_its_log_is_refused() -> None:
    state = _saved_pair()
    stranger = "00DB1234567800FF"
    state["hubs"][0]["chf"]["held"][stranger] = ["00"]
    with pytest.raises(GbcsError, match="not in current_log"):
        World.from_json(state)


@pytest.mark.parametrize(
    ("seed", "plan"),
    [
        (21, FaultPlan(loss=0.2)),
        (22, FaultPlan(loss=0.05, duplication=0.02, reordering=0.02, delay=0.1, power_cycle=0.01)),
        (23, FaultPlan(delay=0.3)),
    ],
)
def test_under_faults_no_command_for_a_gsme_is_lost_silently(seed: int, plan: FaultPlan) -> None:
    """Every command queued for a GSME ends run by it, still held, or failed by name.

    Two ways it used to vanish: a GET-RESPONSE reached a GSME that had just declared
    its parent lost (it acknowledged it, then dropped it for want of a tunnel), and a
    keep-alive GET during a long GET-RESPONSE made the hub hand out the next message
    and forget the first."""
    world = World(seed, faults=plan)
    run = Run("gsme under faults", world)
    hub, gsme = _joined(world, run, "gsme")
    failed = _route_failures(hub)
    ran: list[int] = []
    on_gbcs = gsme.node.on_gbcs
    assert on_gbcs is not None

    def note(peer: bytes, data: bytes) -> None:
        before = len(gsme.device.security_log)
        on_gbcs(peer, data)
        if len(gsme.device.security_log) == before:  # accepted, not refused as a replay
            ran.append(decode_message(data)[0].header.originator_counter)

    gsme.node.on_gbcs = note
    commands = [
        world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
        for _ in range(6)
    ]
    for command in commands:
        hub.chf.from_wan(command.encode())
    world.run(1500)
    held = [
        decode_message(m)[0].header.originator_counter for m in hub.chf.held.get(gsme.eui64, [])
    ]
    failed_counters = [f.command[1] for f in failed if f.command is not None]
    for command in commands:
        counter = command.header.originator_counter
        assert counter in ran or counter in held or counter in failed_counters, hex(counter)


def test_a_gsme_put_back_with_ccs03_while_still_joined_is_still_polled_not_pushed() -> None:
    """CCS02 does not unjoin a GSME; restored with CCS03 on the same hub it never joins
    again, so the hub must know from its radio that it sleeps: its commands are held
    for its next poll, not sent at once to a radio that is asleep (and lost)."""
    world = World(seed=7)
    run = Run("put back", world)
    hub, gsme = _joined(world, run, "gsme")
    assert run.remove_device(hub, gsme).ok
    _, logs = run.read_logs(hub)
    log = single_entry_log(logs, gsme.eui64)
    assert log is not None and run.restore(hub, log).ok
    assert hub.node.has_child(gsme.eui64) and hub.chf.devices[gsme.eui64].sleepy
    assert world.run_until(lambda: not gsme.node.listening, 60)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    assert hub.chf.held_count(gsme.eui64) == 1  # held, not pushed
    assert run.join_details(hub, gsme).ok


def test_ccs02_while_a_held_message_is_handed_out_fails_it_by_name() -> None:
    """The GET-RESPONSE is on the air when CCS02 removes the GSME: the GSME may run the
    command, but its response will not be routed, so the sender is told, naming that
    command, and a save at that instant keeps the failure (not the message)."""
    world = World(seed=2)
    run = Run("removed mid hand-over", world)
    hub, gsme = _joined(world, run, "gsme")
    failures = _route_failures(hub)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    assert world.run_until(lambda: bool(hub.node.handed_out()), 60)
    assert run.remove_device(hub, gsme).ok
    assert not hub.node.handed_out()
    saved = world.to_json()["hubs"][0]["chf"]
    kinds = [list(a) for a in saved["pending_alerts"]]
    assert saved["held"] == {} and kinds[0] == ["route_failure"]
    assert saved["pending_alerts"][0]["route_failure"]["final"] is False
    world.run(300)
    # Not final: a CCS01 at once would let the response through (the next test).
    assert [(f.target, f.command, f.final) for f in failures] == [
        (gsme.eui64, _key(command), False)
    ]
    assert "while a message was being handed to it" in failures[0].reason


def test_a_command_handed_over_as_ccs02_and_ccs01_rewhitelist_is_answered() -> None:
    """CCS02 removes the GSME while its held command is handed to it, and a CCS01 puts it
    back at once: it runs the command and its response is routed, so that response is the
    outcome, not the removal's failure (which said it was final)."""
    world = World(seed=3)
    run = Run("re-whitelisted mid hand-over", world)
    hub, gsme = _joined(world, run, "gsme")
    headend = world.headend
    supplier = headend.party("supplier")
    take = hub.chf.take_held

    def take_then_rewhitelist(device: bytes) -> bytes | None:
        data = take(device)
        if data is not None:  # the GET-RESPONSE is about to go out: CCS02, then CCS01

            def ccs() -> None:
                remove = RemoveDevice(gsme.eui64)
                add = AddDevice(
                    gsme.eui64, int(gsme.device.device_type), gsme.device.install_code, 300
                )
                for cmd, code in ((remove, 0x0002), (add, 0x0001)):
                    hub.chf.from_wan(
                        headend.device_log_command(cmd, code, hub.eui64, supplier).encode()
                    )

            world.clock.call_soon(ccs)
        return data

    hub.chf.take_held = take_then_rewhitelist  # type: ignore[method-assign]
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    outcome = headend.send(hub.chf, command)
    assert outcome.ok, outcome.result
    assert not [r for r in headend.received.rejected if "0x0013" in r]


def _cs07_through(world: World, hub: Hub, meter: MeterUnit) -> tuple[GbcsMessage, Any, float]:
    """A CS07 read of ``meter`` sent through ``hub``: the command, its outcome and the
    simulated seconds it took."""
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), meter.eui64)
    start = world.clock.now
    outcome = world.headend.send(hub.chf, command)
    return command, outcome, world.clock.now - start


def _transmission_failures(run: Run, hub: Hub) -> list[tuple[bytes, int]]:
    """Each active device's transmission failures, as CCS06 (the HAN check) reports them."""
    step, response = run.device_log(hub, ReadDeviceLog(), 0x010F)
    assert step.ok and response is not None
    active = ActiveDevices.from_response(response).devices
    assert active is not None
    return [(d.device_id, d.transmission_failures) for d in active]


def esme_unplugged_after_joining(world: World) -> None:
    """An ESME loses power after joining: a command to it fails within seconds, naming
    the meter and the command, rather than after the head end's 120 s. Shared with the
    zigpy hub radio's test."""
    run = Run("unplugged", world)
    hub, esme = _joined(world, run, "esme")
    failures = _route_failures(hub)
    esme.node.power_off()
    command, outcome, took = _cs07_through(world, hub, esme)
    assert outcome.failure == (
        f"device {esme.eui64.hex().upper()} did not acknowledge the message on the HAN "
        "(802.15.4 and APS retries exhausted); it may still have arrived"
    )
    # Reported as the MAC gives up, then the head end waits its grace for a late response.
    assert took < LATE_RESPONSE_GRACE + 1.0
    assert [(f.target, f.command, f.final) for f in failures] == [
        (esme.eui64, _key(command), False)
    ]
    assert any(e.event == "message not delivered" for e in hub.chf.event_log)
    # CCS06, the HAN communications check, counts it.
    assert _transmission_failures(run, hub) == [(esme.eui64, 1)]
    # The meter back: the next command gets through as before.
    # Its time read, at once on power-up, has the hub, in doubt since the missed
    # acknowledgement, open it a new tunnel.
    esme.node.power_on()
    assert world.run_until(lambda: world.joined_to(esme) == hub.eui64, 600)
    assert hub.node.tunnel_of(esme.eui64) == esme.node.tunnel_id
    assert run.join_details(hub, esme).ok


def test_a_command_to_an_unpowered_esme_fails_in_seconds_naming_it() -> None:
    esme_unplugged_after_joining(World(seed=8))


def esme_rebooted_before_its_tunnel_reopens(world: World) -> None:
    """An ESME reboots, forgetting the tunnel it gave the hub, and a command reaches it
    before the hub has opened a new one: it refuses the PUT (TransferDataError "no such
    tunnel", server to client, ZCL 10.6) and the command fails at once, finally, by
    name; it was acknowledged and dropped, and the head end waited 120 s. The hub, the
    tunnel's client (GBCS 10.2.2.1), then opens a new tunnel. Shared with the zigpy hub
    radio's test."""
    run = Run("rebooted", world)
    hub, esme = _joined(world, run, "esme")
    failures = _route_failures(hub)
    esme.node.power_off()
    esme.node.power_on()  # back on its network at once; the hub does not know it rebooted
    assert hub.node.reachable(esme.eui64) and esme.node.tunnel_id is None
    command, outcome, took = _cs07_through(world, hub, esme)
    assert outcome.failure == (
        f"device {esme.eui64.hex().upper()} refused the message on the HAN "
        "(TransferDataError: no such tunnel): it had no GBCS tunnel open, the command did "
        "not run"
    )
    assert took < 1.0
    assert [(f.target, f.command, f.final) for f in failures] == [(esme.eui64, _key(command), True)]
    assert _transmission_failures(run, hub) == [(esme.eui64, 1)]  # CCS06 counts it
    # The refusal made the hub open a new tunnel: the next command gets through.
    assert world.run_until(lambda: world.joined_to(esme) == hub.eui64, 10)
    assert esme.node.tunnel_id is not None
    assert run.join_details(hub, esme).ok
    assert len(failures) == 1


def test_a_command_crossing_an_esme_reboot_fails_at_once_naming_it() -> None:
    esme_rebooted_before_its_tunnel_reopens(World(seed=8))


def test_a_gsme_whose_tunnel_the_hub_does_not_hold_opens_a_new_one() -> None:
    """The hub, a GSME's tunnel server, answers TransferData on a tunnel it does not hold
    with TransferDataError (ZCL 10.6) and the GSME opens a new tunnel; both ignored it
    before, so the meter's polls and responses went nowhere until its next join."""
    world = World(seed=14)
    run = Run("tunnel forgotten", world)
    hub, gsme = _joined(world, run, "gsme")
    old = gsme.node.tunnel_id
    assert old is not None
    # A stale refusal, naming a tunnel the meter does not hold, changes nothing.
    stale = hub.node._tunnel_zcl(TransferDataError(old + 1), Direction.TO_CLIENT)
    gsme.node._application(air.decode_application(0x0109, 0x0704, stale), 0x0000, hub.eui64)
    assert gsme.node.tunnel_id == old and not gsme.node._tx_queue
    hub.node.children[gsme.eui64].tunnel_id = None  # as after loading an older saved hub
    assert not hub.node.reachable(gsme.eui64)
    gsme.node._poll()  # its GET, on the tunnel it holds
    assert world.run_until(lambda: gsme.node.tunnel_id not in (None, old), 5)
    assert hub.node.children[gsme.eui64].tunnel_id == gsme.node.tunnel_id


def test_an_esme_put_on_a_tunnel_the_hub_does_not_hold_reopens_it() -> None:
    """An ESME's PUT (server to client) on a tunnel the hub, its client, does not hold is
    refused client to server (TransferDataError 0x03, its sequence number echoed, ZCL
    10.6 / 2.4.1.3) and the hub opens a new tunnel; a stale refusal naming another
    tunnel leaves the ESME's alone."""
    world = World(seed=14)
    run = Run("tunnel forgotten", world)
    hub, esme = _joined(world, run, "esme")
    old = esme.node.tunnel_id
    assert old is not None
    stale = hub.node._tunnel_zcl(TransferDataError(old + 1), Direction.TO_SERVER)
    esme.node._application(air.decode_application(0x0109, 0x0704, stale), 0x0000, hub.eui64)
    assert esme.node.tunnel_id == old and not esme.node._tx_queue
    hub.node.children[esme.eui64].tunnel_id = None  # as after loading an older saved hub
    assert not hub.node.reachable(esme.eui64)
    assert world.capture is not None
    mark = len(world.capture.frames)
    esme.node.send_gbcs(hub.eui64, b"\xdd\x00")
    assert world.run_until(lambda: hub.node.reachable(esme.eui64), 5)
    assert esme.node.tunnel_id not in (None, old)
    assert hub.node.children[esme.eui64].tunnel_id == esme.node.tunnel_id
    frames = _tunnel_frames(world, esme, mark)
    put = next(f for f in frames if f[0] == "TransferData")
    assert put[1:3] == (0x19, 0x01)  # server to client
    refusal = next(f for f in frames if f[0] == "TransferDataError")
    assert refusal[1:] == (0x11, 0x03, put[3])  # client to server, the PUT's sequence number
    assert run.join_details(hub, esme).ok


def _tunnel_frames(world: World, meter: MeterUnit, mark: int) -> list[tuple[str, int, int, int]]:
    """The tunnel commands on the air since ``mark``: name, ZCL frame control, command id
    and sequence number."""
    assert world.capture is not None
    out = []
    for _, _, psdu in world.capture.frames[mark:]:
        app = air.decode_frame(psdu, meter.node.keys()).app
        if app is not None and app.zcl is not None and app.tunnel is not None:
            zcl = app.zcl
            control = zcl.frame_type | zcl.direction << 3 | zcl.disable_default_response << 4
            out.append((type(app.tunnel).__name__, control, zcl.command_id, zcl.sequence))
    return out


def test_tunnel_frames_only_from_the_hub() -> None:
    """Another HAN device holds the network key too, but does not speak for the tunnel's
    server: a TransferData from it is dropped, not run or refused."""
    world = World(seed=13)
    run = Run("not the hub", world)
    hub, esme = _joined(world, run, "esme")
    dropped = esme.node.frames_dropped
    settings = esme.node.settings
    assert settings is not None and esme.node.tunnel_id is not None
    ran: list[bytes] = []
    esme.node.on_gbcs = lambda peer, data: ran.append(data)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    zcl = hub.node._tunnel_zcl(
        TransferData(esme.node.tunnel_id, encode_gbcs_tunnel(GbcsPut(command.encode()))),
        Direction.TO_SERVER,  # the hub is the ESME's tunnel client (GBCS 10.2.2.1)
    )
    app = air.decode_application(0x0109, 0x0704, zcl)
    esme.node._application(app, 0x1234, hub.eui64)
    assert ran == [] and esme.node.frames_dropped == dropped + 1
    # An insider claiming the hub's short address, under its own EUI-64 in the NWK
    # security header (it cannot secure under the hub's: that is the hub's counter).
    esme.node._application(app, 0x0000, bytes.fromhex("00DB9999999999AA"))
    assert ran == [] and esme.node.frames_dropped == dropped + 2
    esme.node._application(app, 0x0000, hub.eui64)
    assert ran == [command.encode()]


def test_a_meter_refuses_transfer_data_over_the_1500_octets_it_advertised() -> None:
    """An ESME advertises MaximumIncomingTransferSize 1500 (GBCS 10.2.2) and refuses more
    with TransferDataError "data overflow" (ZCL 10.6), server to client, echoing the
    frame's sequence number; exactly 1500 it takes."""
    world = World(seed=13)
    run = Run("overflow", world)
    hub, esme = _joined(world, run, "esme")
    node = esme.node
    assert node.tunnel_id is not None
    ran: list[bytes] = []
    node.on_gbcs = lambda peer, data: ran.append(data)
    sent: list[bytes] = []
    node._send_application = lambda settings, dst, zcl, *a: sent.append(zcl) or []  # type: ignore[method-assign]
    for size, taken in ((MAX_TRANSFER_SIZE, True), (MAX_TRANSFER_SIZE + 1, False)):
        data = encode_gbcs_tunnel(GbcsPut(bytes(size - 1)))
        zcl = hub.node._tunnel_zcl(TransferData(node.tunnel_id, data), Direction.TO_SERVER)
        app = air.decode_application(0x0109, 0x0704, zcl)
        node._application(app, 0x0000, hub.eui64)
        if taken:
            assert ran == [bytes(size - 1)] and sent == []
    assert len(ran) == 1 and len(sent) == 1
    refusal = air.decode_application(0x0109, 0x0704, sent[0])
    assert refusal.tunnel == TransferDataError(node.tunnel_id, TransferDataStatus.DATA_OVERFLOW)
    assert refusal.zcl is not None and app.zcl is not None
    assert refusal.zcl.sequence == app.zcl.sequence
    assert refusal.zcl.direction is Direction.TO_CLIENT and refusal.zcl.command_id == 0x02


def test_a_tunnel_response_to_no_request_is_dropped() -> None:
    """Any key holder could otherwise hand a joined GSME another tunnel id, and every
    message to it would then fail until its keep-alive opened a new tunnel."""
    world = World(seed=13)
    run = Run("unasked tunnel", world)
    hub, gsme = _joined(world, run, "gsme")
    held = gsme.node.tunnel_id
    assert held is not None
    zcl = hub.node._tunnel_zcl(RequestTunnelResponse(held + 2048, 0), Direction.TO_CLIENT)
    dropped = gsme.node.frames_dropped
    gsme.node._application(air.decode_application(0x0109, 0x0704, zcl), 0x0000, hub.eui64)
    assert gsme.node.tunnel_id == held and gsme.node.frames_dropped == dropped + 1


def test_an_esme_whose_acknowledgements_are_lost_still_answers() -> None:
    """Its radio hears every frame but none of its acknowledgements reaches the hub: the
    hub reports the message may not have arrived, and the response that comes is the
    outcome, not that report."""
    world = World(seed=9)
    run = Run("acks lost", world)
    hub, esme = _joined(world, run, "esme")
    failures = _route_failures(hub)
    esme.node._ack = lambda seq, pending=False: None  # type: ignore[method-assign]
    step = run.join_details(hub, esme)
    assert step.ok, step.result
    world.run(1.0)  # the hub's MAC gives up on the command after the response came
    assert [(f.target, f.final) for f in failures] == [(esme.eui64, False)]
    assert world.headend.received.rejected == []


def test_a_long_message_to_an_unpowered_esme_is_sent_again_by_window_then_given_up() -> None:
    """No APS acknowledgement comes: the window's blocks go again after each wait, at most
    apscMaxFrameRetries times (ZigBee 2.2.8.4.5.1), each framed anew and each tried by the
    MAC; then the CHF reports the failure and nothing of it stays queued."""
    world = World(seed=10)
    run = Run("long message", world)
    hub, esme = _joined(world, run, "esme")
    esme.node.power_off()
    sent: list[tuple[float, bytes]] = []
    medium = world.place("premises")
    send = medium.send

    def note(sender: Any, psdu: bytes, *args: Any) -> None:
        if sender is hub.node:
            sent.append((world.clock.now, psdu))
        send(sender, psdu, *args)

    medium.send = note  # type: ignore[method-assign]
    # A CS07 command padded to four APS blocks (the ASN.1 is checked only at the meter).
    command = world.headend.command(
        0x0013, asn1.encode(JoinDetails.COMMAND) + bytes(200), esme.eui64
    )
    start = world.clock.now
    outcome = world.headend.send(hub.chf, command)
    assert outcome.failure is not None and "did not acknowledge" in outcome.failure
    keys = hub.node.keys()
    framings = list(dict.fromkeys(psdu for _, psdu in sent))
    blocks = [air.decode_frame(psdu, keys).aps for psdu in framings]
    assert all(isinstance(b, ApsData) and b.ack_request for b in blocks)
    numbers = [b.fragment.block_number for b in blocks]  # type: ignore[union-attr]
    assert numbers == [0, 1, 2, 3] * (1 + APS_MAX_RETRIES)
    assert len(sent) == len(framings) * (1 + MAX_FRAME_RETRIES)
    # Each window again only after the wait for its acknowledgement.
    rounds = [t for t, psdu in sent if psdu in framings[::4]][:: 1 + MAX_FRAME_RETRIES]
    again = [b - a for a, b in itertools.pairwise(rounds)]
    assert len(again) == APS_MAX_RETRIES and all(gap > APS_ACK_WAIT for gap in again)
    assert world.clock.now - start > (1 + APS_MAX_RETRIES) * APS_ACK_WAIT
    node = hub.node
    assert not node._pushing and not node._tx_queue and not node._transfers
    assert not node._in_mac


def test_a_joined_gsme_added_again_under_another_type_is_still_polled_not_pushed() -> None:
    """A CCS01 re-add (here mistyped ESME) of a GSME already joined: the radio knows it
    sleeps, so its commands are still held for its poll, not pushed and lost."""
    world = World(seed=11)
    run = Run("re-added", world)
    hub, gsme = _joined(world, run, "gsme")
    add = AddDevice(gsme.eui64, int(DeviceType.ESME), gsme.device.install_code, 90, True)
    message = device_log_message(world.headend, add, AddDevice.MESSAGE_CODE, hub.eui64)
    assert world.headend.send(hub.chf, message).ok
    assert hub.chf.devices[gsme.eui64].sleepy
    assert run.join_details(hub, gsme).ok


def test_a_response_from_an_esme_removed_meanwhile_fails_its_command_at_once() -> None:
    """CCS02 reaches the CHF while the ESME works on a command: the response is dropped
    (the ESME is off the whitelist), and its command fails by name, not by timeout."""
    world = World(seed=12)
    run = Run("removed meanwhile", world)
    hub, esme = _joined(world, run, "esme")
    headend = world.headend
    ccs02 = headend.device_log_command(
        RemoveDevice(esme.eui64), RemoveDevice.MESSAGE_CODE, hub.eui64, headend.party("supplier")
    )
    receive = esme.device.receive

    def removed_while_working(data: bytes, decoded: Any = None) -> bytes | None:
        hub.chf.from_wan(ccs02.encode())
        esme.device.receive = receive  # type: ignore[method-assign]
        return receive(data, decoded)

    esme.device.receive = removed_while_working  # type: ignore[method-assign]
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64)
    start = world.clock.now
    outcome = headend.send(hub.chf, command)
    assert esme.eui64 not in hub.chf.current
    assert outcome.failure == (
        f"device {esme.eui64.hex().upper()} was removed from the CHF device log before its "
        "response came: the command ran, its response was not routed"
    )
    assert world.clock.now - start < 1.0
