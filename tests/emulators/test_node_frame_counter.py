"""Outgoing frame counters used up (ZigBee 4.3.1.1, 4.4.1.1).

A secured frame may not carry the counter 2^32-1: a node that reaches it sends no more
secured frames. The kit does not distribute a new network key, so such a node stays mute;
what it would have sent fails, naming why, and nothing raises out of the clock.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.node import NodeState
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee.security import FRAME_COUNTER_LIMIT, FrameCounterExhausted
from gbcs import asn1
from gbcs.joins import JoinDetails
from tests.emulators.test_han_invariants import _route_failures

USED_UP = "outgoing NWK frame counter used up (0xffffffff, ZigBee 4.3.1.1)"


def _joined(kind: str = "esme") -> tuple[World, Run, Hub, MeterUnit]:
    world = World(1)
    run = Run("counters", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    meter = world.add_meter("premises", kind, world.pki.party(kind).eui64, power=False)
    assert run.add_device(hub, meter).ok
    meter.node.power_on()
    assert run.wait_joined(meter, hub, "join").ok
    return world, run, hub, meter


def _trace(*nodes: object) -> list[str]:
    lines: list[str] = []
    for node in nodes:
        node.trace = lambda text: lines.append(text.split(None, 1)[1])  # type: ignore[attr-defined]
    return lines


def test_the_last_usable_counter_is_one_below_the_limit_and_nothing_is_taken_after() -> None:
    _, _, hub, _ = _joined()
    node = hub.node
    settings = node.settings
    assert settings is not None
    node.counters.nwk_frame = FRAME_COUNTER_LIMIT - 1
    assert node._security(settings).frame_counter == FRAME_COUNTER_LIMIT - 1
    mac, nwk = node.counters.mac, node.counters.nwk
    with pytest.raises(FrameCounterExhausted, match="NWK frame counter used up"):
        node._frame(b"", settings, 0x1234)
    # No sequence number or counter was spent on the frame that was not sent.
    assert (node.counters.mac, node.counters.nwk) == (mac, nwk)
    assert node.counters.nwk_frame == FRAME_COUNTER_LIMIT


def test_a_hub_whose_counter_runs_out_fails_commands_at_once_naming_why(tmp_path: Path) -> None:
    world, run, hub, meter = _joined()
    hub.node.counters.nwk_frame = FRAME_COUNTER_LIMIT - 1
    assert hub.node.lost is None
    assert run.read(hub, meter, "CS07").ok  # its PUT takes the last counter
    lines = _trace(hub.node)
    started = world.clock.now
    step = run.read(hub, meter, "CS07")
    assert step.result == (
        "the hub's outgoing NWK frame counter is used up (0xffffffff, ZigBee 4.3.1.1): it can "
        "send no secured frame until its network key changes"
    )
    assert world.clock.now - started < 1.0  # refused by the CHF, not waited for
    assert hub.node.counters.nwk_frame == FRAME_COUNTER_LIMIT
    assert not [line for line in lines if "not delivered" in line]
    # A world saved like this loads, and its hub is still mute.
    loaded = World.load(world.save(tmp_path / "world.json"))
    again = loaded.hubs[hub.eui64]
    assert again.node.counters.nwk_frame == FRAME_COUNTER_LIMIT
    assert again.node.lost == hub.node.lost


def test_a_put_cut_short_by_the_counter_fails_as_final_naming_why() -> None:
    """The counter runs out between the CHF's check and the frame (here: a lone frame's
    counter is taken just before): the PUT fails at once, final, with the reason, traced
    as not sent, and the ESME's tunnel is not put in doubt (the ESME did nothing wrong)."""
    world, run, hub, meter = _joined()
    node = hub.node
    send_application = node._send_application

    def counter_taken_first(*args: object, **kwargs: object) -> object:
        node.counters.nwk_frame = FRAME_COUNTER_LIMIT
        return send_application(*args, **kwargs)  # type: ignore[arg-type]

    node._send_application = counter_taken_first  # type: ignore[method-assign]
    failures = _route_failures(hub)
    lines = _trace(node)
    started = world.clock.now
    step = run.read(hub, meter, "CS07")
    assert step.result == f"CHF: {USED_UP}: no more secured frames until the key changes"
    assert world.clock.now - started < 1.0
    assert [f.final for f in failures] == [True]
    eui = meter.eui64.hex().upper()
    assert lines == [
        f"CHF: frame not sent: {USED_UP}: no more secured frames until the key changes",
        f"CHF: message to {eui} not sent: CHF: {USED_UP}: no more secured frames until the "
        "key changes",
    ]
    assert node.children[meter.eui64].tunnel_ask is None


def test_a_put_on_the_last_counter_whose_acks_are_lost_may_still_have_arrived() -> None:
    """The PUT took the last usable counter and went on the air; only the ESME's MAC
    acknowledgements were lost. The ESME ran it: its failure is not final."""
    world, run, hub, meter = _joined()
    hub.node.counters.nwk_frame = FRAME_COUNTER_LIMIT - 1
    failures = _route_failures(hub)
    meter.node._ack = lambda *args, **kwargs: None  # type: ignore[method-assign]
    ran = len(meter.device.event_log)
    run.read(hub, meter, "CS07")
    world.run(5)
    assert [e.detail for e in meter.device.event_log[ran:]].count("CS07") == 1
    assert [(f.final, "may still have arrived" in f.reason) for f in failures] == [(False, True)]


def test_messages_held_for_a_gsme_fail_at_its_next_poll_once_the_hub_is_mute() -> None:
    """Each fails once, final, naming why, rather than being taken, not sent and held
    again at every poll."""
    world, _, hub, gsme = _joined("gsme")
    world.run(60)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    assert hub.chf.held_count(gsme.eui64) == 1
    failures = _route_failures(hub)
    hub.node.counters.nwk_frame = FRAME_COUNTER_LIMIT
    world.run(3600)
    assert hub.chf.held_count(gsme.eui64) == 0
    eui = gsme.eui64.hex().upper()
    assert [(f.final, f.reason) for f in failures] == [
        (True, f"{hub.node.lost} (a message held for device {eui} was not sent)")
    ]
    assert hub.chf.devices[gsme.eui64].frames_failed == 0


def test_a_meter_whose_counter_is_used_up_answers_nothing_and_says_why() -> None:
    _, run, hub, meter = _joined()
    meter.node.counters.nwk_frame = FRAME_COUNTER_LIMIT
    lines = _trace(meter.node)
    step = run.read(hub, meter, "CS07")
    assert step.result == "no response within 120 s"
    assert lines == [
        f"{meter.eui64.hex().upper()}: frame not sent: {USED_UP}: no more secured frames until "
        "the key changes"
    ]
    assert meter.node.counters.nwk_frame == FRAME_COUNTER_LIMIT


def test_a_meter_whose_counter_is_used_up_still_forgets_its_network_on_cs02f() -> None:
    """It cannot tell the hub it leaves (a Leave is NWK-secured), but it still drops its
    network and goes looking for the next, as CS02f has it."""
    world, _, _, meter = _joined()
    meter.node.counters.nwk_frame = FRAME_COUNTER_LIMIT
    assert world.capture is not None
    sent = len(world.capture.frames)
    meter.node.forget_network()
    world.run(0.1)
    assert meter.node.settings is None and meter.node.state is not NodeState.JOINED
    assert len(world.capture.frames) == sent  # no Leave (nor anything else) went out


def test_a_trust_centre_whose_aps_counter_is_used_up_sends_no_network_key() -> None:
    world = World(1)
    run = Run("counters", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    meter = world.add_meter("premises", "esme", world.pki.party("esme").eui64, power=False)
    assert run.add_device(hub, meter).ok
    hub.node.counters.aps_frame = FRAME_COUNTER_LIMIT
    lines = _trace(hub.node)
    meter.node.power_on()
    assert not world.run_until(lambda: meter.node.joined, 5)
    assert meter.node.settings is None
    assert hub.node.counters.aps_frame == FRAME_COUNTER_LIMIT
    assert (
        "CHF: frame not sent: outgoing APS frame counter used up (0xffffffff, ZigBee 4.4.1.1): "
        "no more secured frames until the key changes"
    ) in lines
