"""Indirect transmission to a sleepy GSME (802.15.4-2006 7.5.6.3).

The hub holds frames for a joined GSME until it polls with a MAC Data Request, answers
the poll's acknowledgement with the frame pending bit when it holds one, sends it with
the bit set in the frame when more are held, and gives up on one not polled for within
macTransactionPersistenceTime.
"""

from __future__ import annotations

import json

import pytest

from emulators.node import (
    MAX_BLOCK,
    MAX_FRAME_RETRIES,
    PARENT_FAILURE_LIMIT,
    TRANSACTION_PERSISTENCE,
    NodeState,
)
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee.mac import DataRequest, MacFrameType, decode_mac
from gbcs import asn1
from gbcs.joins import JoinDetails


def _asleep(world: World) -> tuple[Hub, MeterUnit]:
    run = Run("indirect", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    gsme = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64)
    assert run.add_device(hub, gsme).ok and run.wait_joined(gsme, hub, "join").ok
    assert world.run_until(lambda: not gsme.node.listening, 60)
    return hub, gsme


def _air(world: World, start: int) -> list[tuple[float, bytes]]:
    assert world.capture is not None
    return [(at, psdu) for at, _, psdu in world.capture.frames[start:]]


def _send(hub: Hub, gsme: MeterUnit, size: int) -> None:
    node = hub.node
    assert node.settings is not None and gsme.node.short_address is not None
    zcl = bytes([0x18, 0x01, 0x01]) + bytes(size - 3)
    node._send_application(node.settings, gsme.node.short_address, zcl, 0x000A)


def test_frames_for_a_sleeping_gsme_wait_for_its_data_request() -> None:
    world = World(seed=1)
    hub, gsme = _asleep(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    _send(hub, gsme, 2 * MAX_BLOCK + 1)  # three blocks, held
    world.run(1)
    assert _air(world, mark) == []  # nothing goes while it sleeps
    short = gsme.node.short_address
    assert [len(held) for held in hub.node._indirect.values()] == [3]
    gsme.node._keepalive()  # it wakes and polls
    world.run(1)
    frames = [decode_mac(psdu) for _, psdu in _air(world, mark)]
    polls = [i for i, m in enumerate(frames) if isinstance(m.payload, DataRequest)]
    assert polls and frames[polls[0]].src == short
    # The poll's acknowledgement says a frame is pending; the blocks come one per poll,
    # each but the last saying more are held.
    acks = [m for m in frames if m.frame_type is MacFrameType.ACK]
    assert any(a.frame_pending for a in acks)
    blocks = [
        m for m in frames if m.frame_type is MacFrameType.DATA and m.src == 0 and m.dst == short
    ]
    # Its GET's answer is held behind the three blocks: four frames, all but the last
    # saying more are held.
    assert [m.frame_pending for m in blocks] == [True, True, True, False]
    for block in blocks:
        before = frames[: frames.index(block)]
        assert isinstance(before[-2].payload, DataRequest)  # each fetched by a poll
    assert not hub.node._indirect


def test_a_frame_never_polled_for_is_given_up_after_the_persistence_time() -> None:
    world = World(seed=2)
    hub, gsme = _asleep(world)
    node = hub.node
    gsme.node.power_off()  # it will not poll
    done = []
    inner = node.transfer_done
    node.transfer_done = lambda t: (done.append((world.clock.now, t)), inner(t))  # type: ignore[method-assign]
    start = world.clock.now
    _send(hub, gsme, MAX_BLOCK)
    world.run(TRANSACTION_PERSISTENCE + 1)
    ((at, transfer),) = done
    assert at - start == pytest.approx(TRANSACTION_PERSISTENCE)
    short = gsme.node.short_address
    assert transfer.outcome == (
        f"{short:#06x} did not poll for it within macTransactionPersistenceTime"
    )
    assert not node._indirect and not node._in_mac


def test_a_gsme_whose_acknowledgements_were_lost_polls_before_giving_up_its_hub() -> None:
    """The hub has its GET, every MAC acknowledgement of it lost: the GSME polls once more
    before calling its parent lost, and the poll brings the answer held for it."""
    world = World(seed=3)
    hub, gsme = _asleep(world)
    command = world.headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme.eui64)
    hub.chf.from_wan(command.encode())
    node = hub.node
    ack = node._ack
    lost: list[int] = []
    node._ack = lambda seq, pending=False: (  # type: ignore[method-assign]
        lost.append(seq) if len(lost) < 4 else ack(seq, pending)
    )
    taken: list[bytes] = []
    on_gbcs = gsme.node.on_gbcs
    assert on_gbcs is not None
    gsme.node.on_gbcs = lambda peer, data: (taken.append(data), on_gbcs(peer, data))
    gsme.node._keepalive()  # its GET: the hub takes it, its acknowledgements are lost
    world.run(2)
    assert len(lost) == 4
    assert taken == [command.encode()]
    assert gsme.node.state is NodeState.JOINED


def test_a_gsme_counts_its_hub_lost_after_its_get_and_two_polls_go_unacknowledged() -> None:
    """Its GET unacknowledged, it polls at once, and again when that poll is: the hub is
    lost only at the third frame in a row (the end-device poll rule of SE stacks). It gave
    up after one poll; and one acknowledgement between failures starts the count again."""
    world = World(seed=3)
    hub, gsme = _asleep(world)
    assert world.capture is not None
    medium = world.places["premises"]
    lines: list[str] = []
    gsme.node.trace = lines.append
    hub.node.place(None)
    mark = len(world.capture.frames)
    gsme.node._keepalive()  # its GET
    world.run(1)
    assert gsme.node.state is not NodeState.JOINED
    sent = [decode_mac(psdu) for _, psdu in _air(world, mark)]
    tries = MAX_FRAME_RETRIES + 1
    kinds = ["poll" if isinstance(m.payload, DataRequest) else "data" for m in sent]
    assert kinds == ["data"] * tries + ["poll"] * (2 * tries)
    noted = [line.split(": ", 1)[1] for line in lines if "acknowledgement" in line]
    assert noted == [
        f"no acknowledgement from the hub (1 of {PARENT_FAILURE_LIMIT} in a row)",
        f"no acknowledgement from the hub (2 of {PARENT_FAILURE_LIMIT} in a row)",
        f"parent lost (no acknowledgement, {PARENT_FAILURE_LIMIT} in a row)",
    ]
    hub.node.place(medium)
    assert world.run_until(lambda: gsme.node.joined, 120) and gsme.node.rejoins == 1


def test_a_gsme_saved_while_making_sure_of_its_hub_polls_at_once_after_the_load() -> None:
    """Saved with its GET unacknowledged and its poll in flight (lost with the save): it
    polls again at once, not at its next wake 30 s on, and counts on from where it was."""
    world = World(seed=3)
    hub, gsme = _asleep(world)
    hub.node.place(None)
    gsme.node._keepalive()
    assert world.run_until(lambda: gsme.node._parent_failures == 1, 5)
    again = World.from_json(json.loads(json.dumps(world.to_json())), capture=False)
    again.hubs[hub.eui64].node.place(None)
    meter = again.meters[gsme.eui64].node
    assert meter._parent_failures == 1
    assert again.run_until(lambda: meter.state is not NodeState.JOINED, 1)


def test_a_gsme_poll_acknowledged_between_failures_starts_the_count_again() -> None:
    """Its GET's acknowledgements lost, and the hub's data frames too: the poll that
    follows is acknowledged, and that alone says the hub is there. Three such moments,
    each one unacknowledged frame, never orphan it."""
    world = World(seed=3)
    hub, gsme = _asleep(world)
    node = hub.node
    ack = node._ack
    deaf = [0]
    deliver = gsme.node.deliver

    def only_acks_from_the_hub(psdu: bytes) -> None:
        mac = decode_mac(psdu)
        if mac.frame_type is not MacFrameType.DATA or mac.src != 0:
            deliver(psdu)

    gsme.node.deliver = only_acks_from_the_hub  # type: ignore[method-assign]

    def lose_get_acks(seq: int, pending: bool = False) -> None:
        if deaf[0]:
            deaf[0] -= 1
            return
        ack(seq, pending)

    node._ack = lose_get_acks  # type: ignore[method-assign]
    for _ in range(PARENT_FAILURE_LIMIT):
        deaf[0] = MAX_FRAME_RETRIES + 1
        gsme.node._keepalive()  # its GET, every acknowledgement lost
        world.run(2)
        assert deaf[0] == 0 and gsme.node._parent_failures == 0
        assert gsme.node.state is NodeState.JOINED
    assert gsme.node.rejoins == 0


def test_a_held_frame_unacknowledged_waits_for_the_next_poll_with_its_sequence() -> None:
    """802.15.4-2006 7.5.6.4.3: an indirect frame is not retried at once; it goes again,
    with the same sequence number, when the child next polls."""
    world = World(seed=4)
    hub, gsme = _asleep(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    deliver = gsme.node.deliver
    missed: list[bytes] = []

    def deaf_once(psdu: bytes) -> None:
        mac = decode_mac(psdu)
        if not missed and mac.frame_type is MacFrameType.DATA and mac.src == 0:
            missed.append(psdu)
            return
        deliver(psdu)

    gsme.node.deliver = deaf_once  # type: ignore[method-assign]
    _send(hub, gsme, MAX_BLOCK)
    gsme.node._keepalive()
    world.run(2)
    sent = [(at, p) for at, p in _air(world, mark) if p == missed[0]]
    assert len(sent) == 2  # once, then again at the next poll (not three MAC retries)
    (first, _), (again, _) = sent
    polls = [
        at
        for at, p in _air(world, mark)
        if first < at < again and isinstance(decode_mac(p).payload, DataRequest)
    ]
    assert polls  # the second time answers a new Data Request
    assert not hub.node._indirect and not hub.node._handed


def test_what_is_held_for_a_gsme_that_leaves_is_given_up_at_once() -> None:
    """A child that left polls no more: its held frames are purged when its Leave comes,
    and their messages fail then, not a persistence time later."""
    world = World(seed=5)
    hub, gsme = _asleep(world)
    node = hub.node
    done = []
    inner = node.transfer_done
    node.transfer_done = lambda t: (done.append((world.clock.now, t)), inner(t))  # type: ignore[method-assign]
    short = gsme.node.short_address
    _send(hub, gsme, MAX_BLOCK)
    assert short in node._indirect
    left_at = world.clock.now
    gsme.node.forget_network()  # it wakes to say it leaves
    world.run(1)
    ((at, transfer),) = done
    assert at - left_at < 0.1
    assert transfer.outcome == f"{gsme.eui64.hex().upper()} left"
    assert short not in node._indirect and gsme.eui64 not in node.children
