"""APS fragmentation with acknowledgements (ZigBee 2.2.8.4.5) between the emulated nodes.

Every block of a fragmented payload asks for an APS acknowledgement; the receiver
acknowledges each window of blocks once it holds them all; the sender sends the next
window only then, and a window not acknowledged in time again, at most
apscMaxFrameRetries times. Blocks are framed when sent, so a block sent again has new
MAC/NWK sequence numbers and a new NWK frame counter.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulators import node as node_module
from emulators.node import APS_ACK_WAIT, APS_WINDOW, MAX_BLOCK, NodeState, Transfer
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee import air
from emulators.zigbee.aps import AckFragment, ApsAck, ApsData
from emulators.zigbee.mac import decode_mac
from emulators.zigbee.nwk import Leave
from gbcs import asn1
from gbcs.joins import JoinDetails
from tests.emulators.test_han_invariants import _route_failures

SE_PROFILE = 0x0109


def _joined(world: World) -> tuple[Hub, MeterUnit]:
    run = Run("aps", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    meter = world.add_meter("premises", "esme", world.pki.party("esme").eui64)
    assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    world.run(1)  # its tunnel open, its first time read answered
    return hub, meter


def _air(world: World, meter: MeterUnit, start: int) -> list[tuple[str, Any]]:
    """Who sent each APS frame since ``start`` ("hub" or "meter") and the frame."""
    assert world.capture is not None
    out = []
    for _, _, psdu in world.capture.frames[start:]:
        mac = decode_mac(psdu)
        if mac.frame_type != 1:
            continue
        aps = air.decode_frame(psdu, meter.node.keys()).aps
        out.append(("hub" if mac.src == 0 else "meter", aps))
    return out


def _blocks(frames: list[tuple[str, Any]], sender: str) -> list[int]:
    return [
        aps.fragment.block_number
        for who, aps in frames
        if who == sender and isinstance(aps, ApsData) and aps.fragment is not None
    ]


def _acks(frames: list[tuple[str, Any]], sender: str) -> list[AckFragment]:
    return [aps.fragment for who, aps in frames if who == sender and isinstance(aps, ApsAck)]


def _payloads(meter: MeterUnit) -> list[bytes]:
    """Every fragmented payload the meter reassembles, from now."""
    seen: list[bytes] = []
    inner = meter.node._aps_payload

    def note(src: int, aps: ApsData) -> bytes | None:
        whole = inner(src, aps)
        if whole is not None and aps.fragment is not None:
            seen.append(whole)
        return whole

    meter.node._aps_payload = note  # type: ignore[method-assign]
    return seen


def _send(hub: Hub, meter: MeterUnit, size: int) -> Transfer:
    """A Time-cluster ZCL frame of ``size`` bytes from the hub (the meter reads it, as a
    time answer, and acts on nothing): its blocks are what the test watches."""
    node = hub.node
    assert node.settings is not None and meter.node.short_address is not None
    zcl = bytes([0x18, 0x01, 0x01]) + bytes(range(256)) * (size // 256) + bytes(size % 256)
    return node._send_application(node.settings, meter.node.short_address, zcl[:size], 0x000A)


def test_fragments_ask_for_acknowledgement_and_each_window_waits_for_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(node_module, "APS_WINDOW", 2)
    world = World(seed=1)
    hub, meter = _joined(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    seen = _payloads(meter)
    transfer = _send(hub, meter, 3 * MAX_BLOCK + 10)  # 4 blocks: windows 0-1 and 2-3
    world.run(1)
    frames = _air(world, meter, mark)
    order = [
        ("block", aps.fragment.block_number)
        if isinstance(aps, ApsData)
        else ("ack", aps.fragment.block_number)
        for who, aps in frames
        if (who == "hub" and isinstance(aps, ApsData))
        or (who == "meter" and isinstance(aps, ApsAck))
    ]
    assert order == [("block", 0), ("block", 1), ("ack", 0), ("block", 2), ("block", 3), ("ack", 2)]
    hub_blocks = [aps for who, aps in frames if who == "hub" and isinstance(aps, ApsData)]
    assert all(aps.ack_request for aps in hub_blocks)
    # Every bit set: the window's blocks, and those past it (ZigBee PRO receivers set them).
    assert _acks(frames, "meter") == [AckFragment(True, 0, 0xFF), AckFragment(False, 2, 0xFF)]
    ack = next(aps for who, aps in frames if who == "meter" and isinstance(aps, ApsAck))
    # To the endpoint the data came from, naming its cluster, profile and APS counter.
    block = hub_blocks[0]
    assert (ack.dst_endpoint, ack.src_endpoint) == (block.src_endpoint, block.dst_endpoint)
    assert (ack.cluster_id, ack.profile_id, ack.counter) == (0x000A, SE_PROFILE, block.counter)
    assert transfer.finished and transfer.outcome is None
    assert len(seen) == 1 and not hub.node._transfers and not hub.node._in_mac


def test_a_single_block_asks_for_no_aps_acknowledgement() -> None:
    world = World(seed=2)
    hub, meter = _joined(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    transfer = _send(hub, meter, MAX_BLOCK)
    world.run(1)
    frames = _air(world, meter, mark)
    sent = [aps for who, aps in frames if who == "hub" and isinstance(aps, ApsData)]
    assert len(sent) == 1 and sent[0].fragment is None and not sent[0].ack_request
    assert _acks(frames, "meter") == []
    assert transfer.finished and transfer.outcome is None  # on its MAC acknowledgement


def test_a_lost_acknowledgement_brings_the_window_again_and_it_is_acknowledged_again() -> None:
    """The receiver had it all: the payload is acted on once, and the window sent again
    (framed anew) is acknowledged again rather than reassembled a second time."""
    world = World(seed=3)
    hub, meter = _joined(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    seen = _payloads(meter)
    hub_acked = hub.node._aps_acked
    ignored: list[ApsAck] = []

    def miss_first_ack(src: int, ack: ApsAck) -> None:
        if not ignored:
            ignored.append(ack)  # acknowledged at the MAC, then lost to the APS layer
            return
        hub_acked(src, ack)

    hub.node._aps_acked = miss_first_ack  # type: ignore[method-assign]
    transfer = _send(hub, meter, 2 * MAX_BLOCK + 1)
    world.run(APS_ACK_WAIT + 1)
    frames = _air(world, meter, mark)
    # Block 0 sent again brings the acknowledgement again; block 1 was already on the air
    # and block 2 no longer goes.
    assert _blocks(frames, "hub") == [0, 1, 2, 0, 1]
    assert _acks(frames, "meter") == [AckFragment(True, 0, 0xFF)] * 3
    hub_psdus = [
        psdu
        for _, _, psdu in world.capture.frames[mark:]
        if len(psdu) > 5 and decode_mac(psdu).src == 0
    ]
    assert len(set(hub_psdus)) == len(hub_psdus)  # sent again means framed again
    assert len(seen) == 1
    assert transfer.finished and transfer.outcome is None


def test_a_partial_acknowledgement_brings_only_the_missing_blocks() -> None:
    world = World(seed=4)
    hub, meter = _joined(world)
    node = hub.node
    meter.node.listening = False  # it hears nothing: the test plays its acknowledgement
    transfer = _send(hub, meter, 3 * MAX_BLOCK)  # blocks 0, 1, 2
    world.run(0.5)
    assert transfer.in_mac == set() and transfer.timer is not None
    assert world.capture is not None
    mark = len(world.capture.frames)
    short = meter.node.short_address
    assert short is not None
    counter = transfer.blocks[0].counter
    ack = ApsAck(
        counter, 10, 0x000A, SE_PROFILE, 1, AckFragment(True, 0, 0b11111101)
    )  # block 1 missing
    node._aps_acked(short, ack)
    world.run(0.1)
    resent = [psdu for _, _, psdu in world.capture.frames[mark:] if len(psdu) > 5]
    blocks = {air.decode_frame(p, node.keys()).aps.fragment.block_number for p in resent}  # type: ignore[union-attr]
    assert blocks == {1}
    assert transfer.acked == 0b101 and not transfer.finished
    # Acknowledgements that name no awaited window change nothing.
    for stray in (
        ApsAck(counter + 1, 10, 0x000A, SE_PROFILE, 1, AckFragment(True, 0, 0b111)),
        ApsAck(counter, 10, 0x000A, SE_PROFILE, 1, AckFragment(False, 8, 0b111)),
        ApsAck(counter, 10, 0x000A, SE_PROFILE, 1, None),
    ):
        node._aps_acked(short, stray)
    node._aps_acked(short ^ 1, ApsAck(counter, 10, 0x000A, SE_PROFILE, 1, AckFragment(True, 0, 7)))
    assert transfer.acked == 0b101 and not transfer.finished
    node._aps_acked(short, ApsAck(counter, 10, 0x000A, SE_PROFILE, 1, AckFragment(True, 0, 0xFF)))
    assert transfer.finished and transfer.outcome is None and not node._transfers


def test_no_acknowledgement_fails_the_transfer_after_its_retries() -> None:
    world = World(seed=5)
    hub, meter = _joined(world)
    meter.node.power_off()
    done: list[Transfer] = []
    inner = hub.node.transfer_done

    def note(transfer: Transfer) -> None:
        done.append(transfer)
        inner(transfer)

    hub.node.transfer_done = note  # type: ignore[method-assign]
    transfer = _send(hub, meter, MAX_BLOCK + 1)
    world.run(30)
    assert done == [transfer]
    assert transfer.outcome == (
        f"no APS acknowledgement from {meter.node.short_address:#06x} after 3 retries"
    )
    assert not hub.node._transfers and not hub.node._in_mac and not hub.node._tx_queue


def test_a_block_the_mac_gave_up_on_is_recovered_by_the_window_timer() -> None:
    """One block's every MAC acknowledgement lost: the other blocks still go, and the
    window comes again after its wait (2.2.8.4.5.1); the payload arrives once."""
    world = World(seed=6)
    hub, meter = _joined(world)
    seen = _payloads(meter)
    meter_deliver = meter.node.deliver
    deaf: list[int] = []

    def miss_block_1(psdu: bytes) -> None:
        if len(psdu) > 5 and decode_mac(psdu).src == 0 and len(deaf) < 4:
            aps = air.decode_frame(psdu, meter.node.keys()).aps
            if isinstance(aps, ApsData) and aps.fragment and aps.fragment.block_number == 1:
                deaf.append(1)
                return
        meter_deliver(psdu)

    meter.node.deliver = miss_block_1  # type: ignore[method-assign]
    transfer = _send(hub, meter, 2 * MAX_BLOCK + 1)
    world.run(APS_ACK_WAIT + 1)
    assert len(deaf) == 4  # tried by the MAC four times, never heard
    assert transfer.finished and transfer.outcome is None
    assert len(seen) == 1
    assert meter.node.state is NodeState.JOINED


def test_nine_blocks_take_two_windows_of_the_aib_maximum() -> None:
    """apsMaxWindowSize at its largest, 8 (ZigBee table 2.24): the ninth block waits for
    the first window's acknowledgement, and its own names it alone."""
    assert APS_WINDOW == 8
    world = World(seed=7)
    hub, meter = _joined(world)
    assert world.capture is not None
    mark = len(world.capture.frames)
    transfer = _send(hub, meter, 8 * MAX_BLOCK + 1)
    world.run(1)
    frames = _air(world, meter, mark)
    order = [
        "ack" if isinstance(aps, ApsAck) else aps.fragment.block_number
        for who, aps in frames
        if (who, type(aps)) in (("hub", ApsData), ("meter", ApsAck))
    ]
    assert order == [0, 1, 2, 3, 4, 5, 6, 7, "ack", 8, "ack"]
    assert _acks(frames, "meter") == [AckFragment(True, 0, 0xFF), AckFragment(False, 8, 0xFF)]
    assert transfer.finished and transfer.outcome is None


def test_a_meter_that_leaves_sends_nothing_more_of_its_transfers() -> None:
    """Its CS02f answer's acknowledgement lost, a divorced meter would send the window
    again on the network it left: it gives the transfer up instead, after its Leave."""
    world = World(seed=8)
    hub, meter = _joined(world)
    hub.node.deliver = lambda psdu: None  # type: ignore[method-assign]  # the hub hears nothing
    node = meter.node
    settings = node.settings
    assert settings is not None
    transfer = node._send_application(settings, 0x0000, bytes(2 * MAX_BLOCK), 0x000A)
    world.run(0.1)
    assert not transfer.finished
    assert world.capture is not None
    mark = len(world.capture.frames)
    node.forget_network()
    world.run(10)
    assert transfer.finished and transfer.outcome == "the meter left the network"
    old_network = air.Keys({settings.key_sequence: settings.network_key})
    sent = [
        air.decode_frame(psdu, old_network).nwk
        for _, _, psdu in world.capture.frames[mark:]
        if len(psdu) > 5 and decode_mac(psdu).src == settings.short_address
    ]
    assert [type(nwk.payload) for nwk in sent if nwk is not None] == [Leave]
    assert not node._transfers and not node._in_mac and not node._reassembled


def test_a_put_the_esme_took_before_restarting_is_not_reported_as_never_run() -> None:
    """The ESME takes a PUT and restarts before its APS acknowledgement is heard: the hub
    sends the last window again, the restarted ESME (no tunnel) refuses it, and the CHF
    must not tell the head end, finally, that the command did not run."""
    world = World(seed=9)
    hub, meter = _joined(world)
    hub.node._aps_acked = lambda src, ack: None  # type: ignore[method-assign]  # all lost
    node = meter.node
    took = node.on_gbcs
    assert took is not None
    ran: list[bytes] = []

    def take_then_restart(peer: bytes, data: bytes) -> None:
        ran.append(data)
        took(peer, data)
        node.power_cycle(2.0)  # its answer and its RAM go with the power

    node.on_gbcs = take_then_restart
    failures = _route_failures(hub)
    # A CS07 padded to four APS blocks (the ASN.1 is checked only at the meter).
    padded = asn1.encode(JoinDetails.COMMAND) + bytes(200)
    command = world.headend.command(0x0013, padded, meter.eui64)
    world.headend.send(hub.chf, command, timeout=30)
    world.run(15)
    assert len(ran) == 1  # it took it once
    device = meter.eui64.hex().upper()
    assert [(f.reason, f.final) for f in failures] == [
        (
            f"device {device} refused the message on the HAN when it was sent again "
            "(TransferDataError: no such tunnel): it had no GBCS tunnel open then, but may "
            "have run the command before",
            False,
        )
    ]


def test_a_sleepy_gsme_sleeps_once_its_late_transfer_is_done() -> None:
    """Its payload needed the window again (the hub's first acknowledgement lost): the
    GSME's awake window ended while it was under way, and it sleeps once it is done."""
    world = World(seed=10)
    run = Run("gsme", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    gsme = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64)
    assert run.add_device(hub, gsme).ok and run.wait_joined(gsme, hub, "join").ok
    node = gsme.node
    assert world.run_until(lambda: not node.listening, 60)
    acked = node._aps_acked
    lost: list[ApsAck] = []

    def lose_first(src: int, ack: ApsAck) -> None:
        if not lost:
            lost.append(ack)
            return
        acked(src, ack)

    node._aps_acked = lose_first  # type: ignore[method-assign]
    node.listening = True
    assert node.settings is not None
    transfer = node._send_application(node.settings, 0x0000, bytes(2 * MAX_BLOCK), 0x000A)
    node._stay_awake()
    world.run(APS_ACK_WAIT + 0.5)
    assert lost and transfer.finished and transfer.outcome is None
    assert not node.listening
