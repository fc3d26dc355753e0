"""Indirect transmission to a sleepy GSME (802.15.4-2006 7.5.6.3).

The hub holds frames for a joined GSME until it polls with a MAC Data Request, answers
the poll's acknowledgement with the frame pending bit when it holds one, sends it with
the bit set in the frame when more are held, and gives up on one not polled for within
macTransactionPersistenceTime.
"""

from __future__ import annotations

import pytest

from emulators.node import MAX_BLOCK, TRANSACTION_PERSISTENCE
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee.mac import DataRequest, MacFrameType, decode_mac


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
