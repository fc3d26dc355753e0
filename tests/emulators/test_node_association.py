"""Association by indirect transmission (802.15.4-2006 7.5.3.1).

The hub holds a joining device's Association Response until the device asks for it with
a MAC Data Request from its extended address, macResponseWaitTime after its request was
acknowledged, and admits the device (a child record, then the network key) only once it
acknowledges the response. A device that gets no response, or no key after one, asks the
same network again, JOIN_ATTEMPTS times in all.
"""

from __future__ import annotations

import collections
import itertools

import pytest

from emulators.node import (
    COORDINATOR,
    FAST_POLL,
    JOIN_ATTEMPTS,
    MAC_RESPONSE_WAIT,
    MAX_BLOCK,
    MAX_HELD_ASSOCIATIONS,
    REJOIN_RETRY,
    REJOIN_TIMEOUT,
    SLEEPY_POLL,
    TRANSACTION_PERSISTENCE,
    CoordinatorNode,
    MeterNode,
    NodeState,
    short_address_for,
)
from emulators.scenarios import Run, single_entry_log
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee import air
from emulators.zigbee.air import Keys
from emulators.zigbee.aps import ApsCommand
from emulators.zigbee.mac import (
    AssociationRequest,
    AssociationResponse,
    Capability,
    DataRequest,
    MacFrame,
    MacFrameType,
    decode_mac,
)
from emulators.zigbee.nwk import RejoinRequest, RejoinResponse
from emulators.zigbee.time_cluster import TIME_CLUSTER
from tests.emulators.conftest import known_at_another_address, lose_parent


def _bench(kind: str, seed: int = 1) -> tuple[World, Run, Hub, MeterUnit]:
    world = World(seed)
    run = Run("association", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    meter = world.add_meter("premises", kind, world.pki.party(kind).eui64, power=False)
    assert run.add_device(hub, meter).ok
    return world, run, hub, meter


def _frames(world: World) -> list[tuple[float, MacFrame]]:
    assert world.capture is not None
    return [(at, decode_mac(psdu)) for at, _, psdu in world.capture.frames]


def _lines(node: CoordinatorNode | MeterNode) -> list[str]:
    """What ``node`` traces from now on, without the time each line starts with."""
    lines: list[str] = []
    node.trace = lambda text: lines.append(text.split(None, 1)[1])
    return lines


def _is(frame: MacFrame, payload: type) -> bool:
    return isinstance(frame.payload, payload)


def _drop_first(meter: MeterUnit, payload: type, *, ack_only: bool) -> list[int]:
    """Lose the first frame of type ``payload`` that reaches ``meter`` (``ack_only``: it
    arrives, but the meter's acknowledgement of it is lost). Returns its sequence, once."""
    node = meter.node
    deliver, ack = node.deliver, node._ack
    dropped: list[int] = []
    losing = [False]

    def arrive(psdu: bytes) -> None:
        if not dropped and psdu[0] & 0x07 != 1 and len(psdu) > 5:
            frame = decode_mac(psdu)
            if _is(frame, payload) and frame.dst == meter.eui64:
                dropped.append(frame.sequence)
                if not ack_only:
                    return
                losing[0] = True
        deliver(psdu)

    def acknowledge(seq: int, pending: bool = False) -> None:
        if losing[0]:
            losing[0] = False
            return
        ack(seq, pending)

    node.deliver = arrive  # type: ignore[method-assign]
    node._ack = acknowledge  # type: ignore[method-assign]
    return dropped


@pytest.mark.parametrize("kind", ["esme", "gsme"])
def test_the_response_waits_for_the_devices_data_request(kind: str) -> None:
    world, run, hub, meter = _bench(kind)
    meter.node.power_on()
    assert run.wait_joined(meter, hub, "join").ok
    frames = _frames(world)
    (request,) = [i for i, (_, f) in enumerate(frames) if _is(f, AssociationRequest)]
    (response,) = [i for i, (_, f) in enumerate(frames) if _is(f, AssociationResponse)]
    (poll,) = [i for i, (_, f) in enumerate(frames) if _is(f, DataRequest) and f.src == meter.eui64]
    request_ack, poll_ack, response_ack = request + 1, poll + 1, response + 1
    for index, target in ((request_ack, request), (poll_ack, poll), (response_ack, response)):
        ack = frames[index][1]
        assert ack.frame_type is MacFrameType.ACK and ack.sequence == frames[target][1].sequence
    # Asked for macResponseWaitTime after the request's acknowledgement, by its extended
    # address, of the coordinator the request went to; the poll's acknowledgement says a
    # frame is pending, and the response follows it at once.
    assert request_ack < poll < response
    assert frames[poll][0] - frames[request_ack][0] == pytest.approx(MAC_RESPONSE_WAIT, abs=2e-3)
    assert frames[poll][1].dst == 0x0000 and frames[poll][1].dst_pan == hub.node.pan_id
    assert frames[poll_ack][1].frame_pending
    assert poll_ack + 1 == response
    assert frames[response][1].dst == meter.eui64
    # The network key (the hub's first data frame to the device) only once it acknowledged.
    key = next(
        i
        for i, (_, f) in enumerate(frames)
        if f.frame_type is MacFrameType.DATA and f.src == 0x0000
    )
    assert key > response_ack
    node = hub.node
    assert not node._indirect and not node._associating
    assert meter.node.joins == 1


def test_a_refusal_still_held_is_replaced_once_the_device_is_admitted() -> None:
    world, run, hub, _ = _bench("esme")
    node = hub.node
    other = world.add_meter("premises", "esme", bytes.fromhex("00DB123456780777"), power=False)
    node._associate(other.eui64, Capability.router())  # no window for it: refused, held
    (refusal,) = node._indirect[other.eui64]
    node._associate(other.eui64, Capability.router())  # still refused: the same answer
    assert node._indirect[other.eui64] == collections.deque([refusal])
    assert not node._associating
    assert run.add_device(hub, other).ok  # now CCS01 admits it
    node._associate(other.eui64, Capability.router())
    (admission,) = node._indirect[other.eui64]
    assert admission[0] != refusal[0] and admission[0] in node._associating
    assert refusal[1].cancelled


def test_a_device_whose_response_was_lost_asks_again() -> None:
    world, run, hub, meter = _bench("esme")
    lines = _lines(meter.node)
    dropped = _drop_first(meter, AssociationResponse, ack_only=False)
    meter.node.power_on()
    assert run.wait_joined(meter, hub, "join").ok
    assert len(dropped) == 1
    name = meter.node.name
    assert (
        f"{name}: association failed: no Association Response "
        "(NO_DATA; the hub said one was pending)"
    ) in lines
    assert f"{name}: join failed; asking this network again" in lines
    requests = [f for _, f in _frames(world) if _is(f, AssociationRequest)]
    assert len(requests) == 2
    # The second request was answered by the response still held for the first.
    responses = [f for _, f in _frames(world) if _is(f, AssociationResponse)]
    assert len(responses) == 2 and responses[0].sequence == responses[1].sequence
    assert not hub.node._indirect and not hub.node._associating
    assert list(hub.node.children) == [meter.eui64]


def test_an_unacknowledged_response_admits_nobody_until_the_device_asks_again() -> None:
    world, run, hub, meter = _bench("esme")
    node = hub.node
    lines = _lines(meter.node)
    dropped = _drop_first(meter, AssociationResponse, ack_only=True)
    meter.node.power_on()
    assert world.run_until(lambda: bool(dropped), 60)
    world.run(0.1)
    # It has its address; the hub, unaware, holds the response again for a poll that will
    # not come, keeps no record and sends no key.
    assert meter.node.state is NodeState.JOINING and meter.node.short_address is not None
    assert [len(held) for held in node._indirect.values()] == [1]
    assert meter.eui64 not in node.children
    assert not [f for _, f in _frames(world) if f.frame_type is MacFrameType.DATA]
    assert run.wait_joined(meter, hub, "join").ok
    assert len([f for _, f in _frames(world) if _is(f, AssociationRequest)]) == 2
    assert not node._indirect and not node._associating
    name = meter.node.name
    assert (
        lines.count(f"{name}: association failed: no Transport Key after its Association Response")
        == 1
    )


def test_a_join_attempt_nobody_acknowledges_says_so() -> None:
    """The hub gone after the scan: each attempt's trace names the missing step."""
    world, _, hub, meter = _bench("esme")
    lines = _lines(meter.node)
    meter.node.power_on()
    assert world.run_until(lambda: meter.node.state is NodeState.JOINING, 60)
    hub.node.place(None)
    world.run(20)
    name = meter.node.name
    failed = [line for line in lines if "association failed" in line]
    assert failed == [f"{name}: association failed: its Association Request not acknowledged"] * (
        JOIN_ATTEMPTS
    )


def test_a_response_never_asked_for_again_expires_with_its_admission() -> None:
    world, _, hub, meter = _bench("esme")
    node = hub.node
    lines = _lines(node)
    dropped = _drop_first(meter, AssociationResponse, ack_only=True)
    meter.node.power_on()
    assert world.run_until(lambda: bool(dropped), 60)
    held_at = world.clock.now
    meter.node.power_off()  # it will not ask again
    world.run(TRANSACTION_PERSISTENCE + 1)
    eui = meter.eui64.hex().upper()
    (line,) = [text for text in lines if "not completed" in text]
    assert line == (
        f"CHF: association of {eui} not completed: {eui} did not poll for it within "
        "macTransactionPersistenceTime"
    )
    assert not node._indirect and not node._associating and not node.children
    assert world.clock.now - held_at > TRANSACTION_PERSISTENCE


def test_a_device_removed_from_the_log_while_associating_gets_no_record_or_key() -> None:
    world, run, hub, meter = _bench("esme")
    node = hub.node
    lines = _lines(node)
    meter.node.power_on()
    assert world.run_until(lambda: bool(node._associating), 60)
    assert run.remove_device(hub, meter).ok
    assert not node._associating
    world.run(1)
    eui = meter.eui64.hex().upper()
    assert f"CHF: {eui} left the device log while associating" in lines
    # The response already decided still goes and is acknowledged; nothing follows it.
    assert [f for _, f in _frames(world) if _is(f, AssociationResponse)]
    assert meter.eui64 not in node.children
    assert not [f for _, f in _frames(world) if f.frame_type is MacFrameType.DATA]
    assert not meter.node.joined


def test_a_network_that_never_answers_is_asked_join_attempts_times_then_left() -> None:
    world, _, hub, meter = _bench("esme")
    lines = _lines(meter.node)
    node = hub.node
    node._hand_over_held = lambda short: None  # type: ignore[method-assign]  # never answers
    meter.node.power_on()
    world.run(20)
    name = meter.node.name
    tries = [f for _, f in _frames(world) if _is(f, AssociationRequest)]
    assert len(tries) == JOIN_ATTEMPTS
    failed = [line for line in lines if "association failed" in line]
    pending = "(NO_DATA; the hub said one was pending)"
    assert failed == [f"{name}: association failed: no Association Response {pending}"] * (
        JOIN_ATTEMPTS
    )
    assert lines.count(f"{name}: join failed; asking this network again") == JOIN_ATTEMPTS - 1
    assert lines.count(f"{name}: join failed; scanning again later") == 1


def test_a_poll_the_hub_has_nothing_for_is_plain_no_data() -> None:
    """The hub acknowledges the request but holds no response (its stack dropped the
    request): the poll's acknowledgement says nothing is pending, and the trace says so."""
    world, _, hub, meter = _bench("esme")
    lines = _lines(meter.node)
    hub.node._associate = lambda device, capability: None  # type: ignore[method-assign]
    meter.node.power_on()
    world.run(20)
    name = meter.node.name
    failed = [line for line in lines if "association failed" in line]
    assert failed == [f"{name}: association failed: no Association Response (NO_DATA)"] * (
        JOIN_ATTEMPTS
    )


def test_an_address_offered_in_a_held_response_is_not_offered_to_another() -> None:
    """Two devices whose EUI-64s hash to one NWK address (ZigBee 3.6.1.7), associating
    at once: the second is offered another while the first's response is held."""
    world = World(5)
    run = Run("association", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    first, second = bytes.fromhex("00DB1234567800EE"), bytes.fromhex("00DB123456780123")
    assert short_address_for(first, set()) == short_address_for(second, set())
    for eui in (first, second):
        assert run.add_device(hub, world.add_meter("premises", "esme", eui, power=False)).ok
    node = hub.node
    node._associate(first, Capability.router())
    node._associate(second, Capability.router())
    offered = {child.ieee: child.short_address for child, _ in node._associating.values()}
    assert set(offered) == {first, second}
    assert offered[first] == short_address_for(first, set())
    assert offered[second] != offered[first]


def test_a_flood_of_association_requests_holds_a_bounded_number_of_responses() -> None:
    """802.15.4's pending-transaction list is bounded: with MAX_HELD_ASSOCIATIONS
    responses held, a request from another device gets none (TRANSACTION_OVERFLOW), while
    one from a device already held is answered by its own; room comes back as they
    expire."""
    world, _, hub, meter = _bench("esme")
    node = hub.node
    lines = _lines(node)
    strangers = [bytes.fromhex(f"00DB99990000{i:04X}") for i in range(MAX_HELD_ASSOCIATIONS)]
    for eui in strangers:
        node._associate(eui, Capability.router())  # denied (no window), and held
    assert sorted(k for k in node._indirect if isinstance(k, bytes)) == strangers
    node._associate(meter.eui64, Capability.router())
    eui = meter.eui64.hex().upper()
    assert lines[-1] == (
        f"CHF: association from {eui} not answered: {MAX_HELD_ASSOCIATIONS} responses "
        "already held (TRANSACTION_OVERFLOW)"
    )
    assert meter.eui64 not in node._indirect and not node._associating
    (before,) = node._indirect[strangers[0]]
    node._associate(strangers[0], Capability.router())  # its own held answer stands
    assert node._indirect[strangers[0]] == collections.deque([before])
    world.run(TRANSACTION_PERSISTENCE + 0.1)
    assert not node._indirect
    meter.node.power_on()
    assert Run("after the flood", world).wait_joined(meter, hub, "join").ok


def test_a_joining_gsme_polls_for_its_network_key() -> None:
    """A sleepy child's frames wait for its poll from the moment it is a child: its
    Transport Key too, fetched with a Data Request from the address it was given."""
    world, run, hub, gsme = _bench("gsme")
    gsme.node.power_on()
    assert run.wait_joined(gsme, hub, "join").ok
    frames = _frames(world)
    (response,) = [i for i, (_, f) in enumerate(frames) if _is(f, AssociationResponse)]
    key = next(
        i
        for i, (_, f) in enumerate(frames)
        if f.frame_type is MacFrameType.DATA and f.src == 0x0000
    )
    short = frames[response][1].payload.short_address
    between = [f for _, f in frames[response + 2 : key]]
    # The response's ack, then the GSME's poll from its new address, its ack with the frame
    # pending bit, then the key.
    assert len(between) == 2 and _is(between[0], DataRequest)
    assert between[0].src == short and between[1].frame_pending
    assert frames[key][1].dst == short
    assert frames[key][0] - frames[response + 1][0] >= FAST_POLL


def _restored_on_a_bench(kind: str) -> tuple[World, Run, Hub, MeterUnit]:
    """A meter joined to its premises CHF, moved to a bench CHF that has had its log
    entry restored (CCS03) but no record of it: it will rejoin the bench (trust centre)."""
    world, run, old, meter = _bench(kind)
    meter.node.power_on()
    assert run.wait_joined(meter, old, "join").ok
    bench = world.add_hub("bench", name="bench CHF")
    world.move(meter, "bench")
    _, logs = run.read_logs(old)
    log = single_entry_log(logs, meter.eui64)
    assert log is not None and run.restore(bench, log).ok
    assert meter.eui64 not in bench.node.children
    return world, run, bench, meter


def test_a_rejoining_gsme_polls_for_its_rejoin_response_and_network_key() -> None:
    """A sleepy GSME's trust-centre rejoin: the hub holds the Rejoin Response for the
    address the request came from, and the Transport Key for the address it gives, and
    the GSME fetches each with a MAC Data Request (as a sleepy end device rejoining does:
    Rejoin Request, Data Request, Rejoin Response, Data Request, Transport Key)."""
    world, run, bench, gsme = _restored_on_a_bench("gsme")
    old_short = gsme.node.settings.short_address if gsme.node.settings else None
    mark = len(_frames(world))
    assert run.wait_joined(gsme, bench, "trust-centre rejoin").ok
    assert gsme.node.rejoins == 1
    assert world.capture is not None
    psdus = [psdu for _, _, psdu in world.capture.frames[mark:]]
    (request,) = [i for i, p in enumerate(psdus) if _rejoin_request(p)]  # one was enough
    frames = [decode_mac(p) for p in psdus[request:]]
    hub_data = [
        i for i, f in enumerate(frames) if f.frame_type is MacFrameType.DATA and f.src == 0x0000
    ]
    response, key = hub_data[0], hub_data[1]
    new_short = gsme.node.short_address
    # Each follows a Data Request of the GSME's, acknowledged with the frame pending bit:
    # from its old address for the response, from the one the response gave for the key.
    for held, src in ((response, old_short), (key, new_short)):
        poll = max(i for i in range(held) if _is(frames[i], DataRequest))
        assert frames[poll].src == src and frames[poll + 1].frame_pending
        assert frames[held].dst == src
    assert _rejoin_response(psdus[request + response])


def test_a_rejoining_esme_is_answered_and_keyed_directly() -> None:
    """A router is always listening: its Rejoin Response and key are not held."""
    world, run, bench, esme = _restored_on_a_bench("esme")
    mark = len(_frames(world))
    assert run.wait_joined(esme, bench, "trust-centre rejoin").ok
    assert world.capture is not None
    psdus = [psdu for _, _, psdu in world.capture.frames[mark:]]
    (request,) = [i for i, p in enumerate(psdus) if _rejoin_request(p)]
    frames = [decode_mac(p) for p in psdus[request:]]
    key = [
        i for i, f in enumerate(frames) if f.frame_type is MacFrameType.DATA and f.src == 0x0000
    ][1]
    assert not [f for f in frames[:key] if _is(f, DataRequest)]
    assert _rejoin_response(psdus[request + 2])


def _transport_key(psdu: bytes) -> bool:
    """Whether ``psdu`` carries an APS command: the hub sends only Transport Keys."""
    return psdu[0] & 0x07 == MacFrameType.DATA and isinstance(
        air.decode_frame(psdu, Keys()).aps, ApsCommand
    )


@pytest.mark.parametrize("kind", ["esme", "gsme"])
@pytest.mark.parametrize("missing", ["Rejoin Response", "Transport Key"])
def test_a_rejoin_left_unanswered_is_asked_again_at_once(kind: str, missing: str) -> None:
    """Every copy of its Rejoin Response (or its key) lost on the air for 2 s (the hub's
    retries to an ESME, each a GSME fetches): as for an association, the meter asks the
    same network again JOIN_AGAIN later, not REJOIN_RETRY (a minute) later, and its trace
    names what was missing."""
    world, run, bench, meter = _restored_on_a_bench(kind)
    node = meter.node
    lines = _lines(node)
    deliver = node.deliver
    lost: list[float] = []
    losing = _rejoin_response if missing == "Rejoin Response" else _transport_key

    def lose_the_first_answers(psdu: bytes) -> None:
        if losing(psdu) and (not lost or world.clock.now < lost[0] + 2.0):
            lost.append(world.clock.now)
            return
        deliver(psdu)

    node.deliver = lose_the_first_answers  # type: ignore[method-assign]
    assert world.run_until(lambda: bool(lost), 120)
    started = lost[0]
    assert run.wait_joined(meter, bench, "trust-centre rejoin", timeout=120).ok
    name = node.name
    failed = [line for line in lines if "rejoin failed" in line]
    again = f"{name}: trust-centre rejoin failed (no {missing}); asking this network again"
    assert failed and set(failed) == {again}
    assert world.clock.now - started < REJOIN_RETRY / 4
    assert node.rejoins == 1


def test_a_late_refusal_does_not_undo_an_accepted_rejoin() -> None:
    """Accepted, awaiting its key, the ESME gets a refusal (one to an earlier attempt,
    delayed, or a stray): it ignored copies of its response but took the refusal, gave up
    the attempt and waited a minute (helper review). Now nothing undoes an acceptance."""
    world, run, bench, esme = _restored_on_a_bench("esme")
    node, hub = esme.node, bench.node
    lines = _lines(node)
    take = node.nwk_frame
    refused: list[float] = []

    def refusal_after_the_acceptance(decoded: air.Decoded) -> None:
        take(decoded)
        if not refused and node.state is NodeState.REJOINING and node._pending_short:
            refused.append(world.clock.now)
            assert hub.settings is not None and node.settings is not None
            psdu = air.rejoin_response(
                mac_sequence=0x55,
                nwk_sequence=0x55,
                pan_id=hub.settings.pan_id,
                src=COORDINATOR,
                src_ieee=hub.ieee,
                dst=node.settings.short_address,
                dst_ieee=node.ieee,
                network_address=node.settings.short_address,
                status=2,
            )
            take(air.decode_frame(psdu, node.keys()))

    node.nwk_frame = refusal_after_the_acceptance  # type: ignore[method-assign]
    assert run.wait_joined(esme, bench, "trust-centre rejoin", timeout=120).ok
    assert refused and world.clock.now - refused[0] < 1
    assert not [line for line in lines if "refused" in line or "rejoin failed" in line]


def test_a_rejoin_key_has_its_own_while_after_a_late_response() -> None:
    """The hub answers 1.5 s after the request and the key takes 1 s more: as after an
    Association Response, the key's wait starts at the response. It ran from the request,
    and the attempt failed with its key on the way."""
    world, run, bench, esme = _restored_on_a_bench("esme")
    node, hub = esme.node, bench.node
    lines = _lines(node)
    rejoin = hub._rejoin
    hub._rejoin = lambda *args: world.clock.call_later(1.5, rejoin, *args)  # type: ignore[method-assign]
    deliver = node.deliver

    def slow_key(psdu: bytes) -> None:
        if _transport_key(psdu):
            world.clock.call_later(1.0, deliver, psdu)
            return
        deliver(psdu)

    node.deliver = slow_key  # type: ignore[method-assign]
    started = world.clock.now
    assert run.wait_joined(esme, bench, "trust-centre rejoin", timeout=120).ok
    assert not [line for line in lines if "rejoin failed" in line]
    assert world.clock.now - started < REJOIN_RETRY


def test_a_refused_rejoin_is_not_asked_again_at_once() -> None:
    """A hub that refuses (the meter is not in its log) would refuse again: a minute on."""
    world, run, old, meter = _bench("esme")
    meter.node.power_on()
    assert run.wait_joined(meter, old, "join").ok
    world.add_hub("bench", name="bench CHF", extended_pan_id=old.chf.extended_pan_id)
    lines = _lines(meter.node)
    world.move(meter, "bench")
    world.run(REJOIN_RETRY / 2)
    name = meter.node.name
    assert [line for line in lines if "rejoin refused" in line or "rejoin failed" in line] == [
        f"{name}: rejoin refused (status 2)",
        f"{name}: trust-centre rejoin failed",
    ]


def test_a_rejoin_response_a_gsme_never_polls_for_expires() -> None:
    """The GSME loses power right after its Rejoin Request: what the hub held for it is
    given up after macTransactionPersistenceTime, and no key is sent."""
    world, _, bench, gsme = _restored_on_a_bench("gsme")
    node = bench.node
    rejoin = node._rejoin

    def rejoin_then_power_cut(*args: object) -> None:
        rejoin(*args)  # type: ignore[arg-type]
        gsme.node.power_off()

    node._rejoin = rejoin_then_power_cut  # type: ignore[method-assign]
    assert world.run_until(lambda: bool(node._indirect), 120)
    held = {k: len(v) for k, v in node._indirect.items()}
    assert list(held.values()) == [1]  # the Rejoin Response, for the address it came from
    lines = _lines(node)
    world.run(TRANSACTION_PERSISTENCE + 1)
    assert not node._indirect and not node._rejoin_answers
    eui = gsme.eui64.hex().upper()
    assert [line for line in lines if "rejoin" in line] == [
        f"bench CHF: rejoin of {eui} not completed: {gsme.node.settings.short_address:#06x} "
        "did not poll for it within macTransactionPersistenceTime"
    ]
    assert _transport_keys(world) == 0


def _transport_keys(world: World) -> int:
    """APS commands (the hub sends only Transport Keys) on the air at the bench."""
    assert world.capture is not None
    return sum(place == "bench" and _transport_key(psdu) for _, place, psdu in world.capture.frames)


def test_a_rejoin_survives_a_lost_response_and_a_lost_poll_acknowledgement() -> None:
    """The hub's acknowledgement of the GSME's first poll is lost, so the GSME polls again
    while the Rejoin Response is on the air, and that response is lost. The key is not
    handed to the second poll ahead of the response (the GSME, with no address yet, would
    drop it, and the attempt would fail and wait a minute): it is held only once the
    response is acknowledged, as for an association."""
    world, run, bench, gsme = _restored_on_a_bench("gsme")
    node, hub = gsme.node, bench.node
    lines = _lines(node)
    ack = hub._ack
    lost_ack: list[int] = []

    def hub_ack(seq: int, pending: bool = False) -> None:
        if not lost_ack and node.state is NodeState.REJOINING and pending:
            lost_ack.append(seq)
            return
        ack(seq, pending)

    hub._ack = hub_ack  # type: ignore[method-assign]
    deliver = node.deliver
    lost: list[bytes] = []

    def gsme_deliver(psdu: bytes) -> None:
        if not lost and _rejoin_response(psdu):
            lost.append(psdu)
            return
        deliver(psdu)

    node.deliver = gsme_deliver  # type: ignore[method-assign]
    started = world.clock.now
    assert run.wait_joined(gsme, bench, "trust-centre rejoin", timeout=120).ok
    assert lost_ack and lost
    assert not [line for line in lines if "rejoin failed" in line]
    assert world.clock.now - started < REJOIN_RETRY


def test_a_gsme_rejoining_its_own_hub_gets_its_key_ahead_of_what_is_held_for_it() -> None:
    """It lost its parent with many frames held for it there: its Transport Key goes
    ahead of them, so the rejoin does not time out while it fetches them one poll at
    a time."""
    world, run, hub, gsme = _bench("gsme")
    gsme.node.power_on()
    assert run.wait_joined(gsme, hub, "join").ok
    assert world.run_until(lambda: not gsme.node.listening, 60)
    node = hub.node
    settings = node.settings
    assert settings is not None
    zcl = bytes([0x18, 0x01, 0x01]) + bytes(8 * MAX_BLOCK - 4)
    for _ in range(3):
        node._send_application(settings, gsme.node.short_address, zcl, TIME_CLUSTER)
    assert sum(len(frames) for frames in node._indirect.values()) == 24
    lines = _lines(gsme.node)
    lose_parent(gsme.node)
    started = world.clock.now
    assert world.run_until(lambda: gsme.node.joined, 60)
    assert gsme.node.rejoins == 1 and world.clock.now - started < REJOIN_RETRY
    assert not [line for line in lines if "rejoin failed" in line]


def _rejoin_request(psdu: bytes) -> bool:
    if psdu[0] & 0x07 != MacFrameType.DATA:
        return False
    nwk = air.decode_frame(psdu, Keys()).nwk
    return nwk is not None and isinstance(nwk.payload, RejoinRequest)


def _rejoin_response(psdu: bytes) -> bool:
    if psdu[0] & 0x07 != MacFrameType.DATA:
        return False
    nwk = air.decode_frame(psdu, Keys()).nwk
    return nwk is not None and isinstance(nwk.payload, RejoinResponse)


def _sent(node: MeterNode, payload: type) -> list[bytes]:
    """Every frame of type ``payload`` ``node`` queues from now on."""
    sent: list[bytes] = []
    send = node._send_acked

    def record(psdu: bytes, pan: int, dst: int | bytes) -> None:
        if _is(decode_mac(psdu), payload):
            sent.append(psdu)
        send(psdu, pan, dst)

    node._send_acked = record  # type: ignore[method-assign]
    return sent


def test_a_request_arriving_during_the_hand_over_is_answered_by_the_response_on_its_way() -> None:
    """A late copy of the device's Association Request reaches the hub while the response
    is being handed over, and the device's acknowledgement of that response is lost: the
    response is held again, alone, answers the device's next request, and nothing of it
    is left once the device has joined."""
    world, run, hub, meter = _bench("esme")
    node = hub.node
    requests = _sent(meter.node, AssociationRequest)
    _drop_first(meter, AssociationResponse, ack_only=True)
    hand_over = node._hand_over_held
    copies: list[float] = []

    def hand_over_and_hear_a_copy(src: int | bytes) -> None:
        hand_over(src)
        if src == meter.eui64 and not copies:
            copies.append(world.clock.now)
            node.deliver(requests[0])

    node._hand_over_held = hand_over_and_hear_a_copy  # type: ignore[method-assign]
    meter.node.power_on()
    assert world.run_until(lambda: bool(copies), 60)
    world.run(0.01)
    assert len(node._indirect.get(meter.eui64, ())) == 1  # held again, and alone
    assert meter.eui64 not in node.children
    assert run.wait_joined(meter, hub, "join").ok
    world.run(TRANSACTION_PERSISTENCE + 1)
    assert not node._associating and not node._responses and not node._indirect
    assert list(node.children) == [meter.eui64]


def test_a_poll_sent_again_while_its_response_is_on_the_way_is_told_to_wait() -> None:
    """The acknowledgement of the device's Data Request is lost and its MAC sends it again
    while the response is on the air: the hub's answer still says a frame is pending
    (the transaction is pending until acknowledged), so the device waits for it."""
    world, run, hub, meter = _bench("esme")
    lines = _lines(meter.node)
    node = meter.node
    deliver = node.deliver
    lost: list[bytes] = []
    late: list[bytes] = []

    def arrive(psdu: bytes) -> None:
        poll = node._association_poll
        if not lost and poll is not None and len(psdu) == 5 and psdu[2] == poll[2]:
            lost.append(psdu)  # the first ack of its poll
            return
        if lost and not late and len(psdu) > 5 and _is(decode_mac(psdu), AssociationResponse):
            late.append(psdu)
            world.clock.call_later(0.003, deliver, psdu)  # a few ms late, as reordering does
            return
        deliver(psdu)

    node.deliver = arrive  # type: ignore[method-assign]
    node.power_on()
    assert run.wait_joined(meter, hub, "join").ok
    assert lost and lost[0][0] & 0x10  # it said a frame was pending
    # It took the late response (whose acknowledgement, late too, the hub missed: it asked
    # again for its key), not NO_DATA.
    assert late and not [line for line in lines if "NO_DATA" in line]


def _key_held(node: CoordinatorNode) -> int | None:
    """The address a frame is held for (a joining GSME's Transport Key), if any."""
    return next((k for k, held in node._indirect.items() if type(k) is int and held), None)


def test_a_joining_gsme_removed_from_the_log_does_not_collect_its_held_key() -> None:
    world, run, hub, gsme = _bench("gsme")
    node = hub.node
    lines = _lines(node)
    gsme.node.power_on()
    assert world.run_until(lambda: _key_held(node) is not None, 60)
    assert run.remove_device(hub, gsme).ok
    eui = gsme.eui64.hex().upper()
    assert f"CHF: {eui} left the device log while joining" in lines
    assert _key_held(node) is None and gsme.eui64 not in node.children
    world.run(3)
    assert not gsme.node.has_network and gsme.node.state is not NodeState.JOINED


def test_a_meter_cut_off_after_its_response_fetches_the_next_one() -> None:
    """Power cut after the Association Response, before the key: the next association
    asks for its own response (nothing of the last answer kept) and joins first time."""
    world, run, hub, gsme = _bench("gsme")
    lines = _lines(gsme.node)
    node = gsme.node
    deliver = node.deliver
    cut: list[float] = []

    def arrive(psdu: bytes) -> None:
        deliver(psdu)
        if not cut and psdu[0] & 0x07 == 3 and _is(decode_mac(psdu), AssociationResponse):
            cut.append(world.clock.now)
            world.clock.call_later(0.005, node.power_cycle, 2.0)

    node.deliver = arrive  # type: ignore[method-assign]
    node.power_on()
    assert run.wait_joined(gsme, hub, "join").ok
    assert cut and not [line for line in lines if "join failed" in line]
    fetches = [
        at
        for at, f in _frames(world)
        if _is(f, DataRequest) and f.src == gsme.eui64 and at > cut[0]
    ]
    assert len(fetches) == 1
    # Only the second join's key went out: the first, still held, was given up.
    keys = [f for _, f in _frames(world) if f.frame_type is MacFrameType.DATA and f.src == 0]
    assert len([k for k in keys if len(k.payload) > 60]) == 1
    assert _key_held(hub.node) is None


def test_a_copy_of_the_response_starts_no_second_round_of_key_polls() -> None:
    world, run, hub, gsme = _bench("gsme")
    node = gsme.node
    deliver = node.deliver
    seen: list[float] = []

    def arrive(psdu: bytes) -> None:
        if not seen and psdu[0] & 0x07 == 3 and _is(decode_mac(psdu), AssociationResponse):
            seen.append(world.clock.now)
            deliver(psdu)
            world.clock.call_later(0.003, deliver, psdu)  # a duplicate on the air
            return
        if seen and psdu[0] & 0x07 == 1 and world.clock.now < seen[0] + 1.0:
            return  # its key lost for a second: it keeps polling
        deliver(psdu)

    node.deliver = arrive  # type: ignore[method-assign]
    node.power_on()
    assert run.wait_joined(gsme, hub, "join").ok
    polls = [
        at
        for at, f in _frames(world)
        if _is(f, DataRequest) and f.src == node.short_address and seen[0] < at < seen[0] + 1.0
    ]
    assert len(polls) >= 8
    assert all(b - a == pytest.approx(FAST_POLL, abs=2e-3) for a, b in itertools.pairwise(polls))


def test_a_join_window_that_closes_before_the_response_is_acknowledged_admits_nobody() -> None:
    """The trust centre decides when the device has its address (its acknowledgement),
    as the sim NCP does with zigpy's permit: a CCS01 window that closed meanwhile
    admits nobody."""
    world, _, hub, meter = _bench("esme")
    node = hub.node
    lines = _lines(node)
    meter.node.power_on()
    assert world.run_until(lambda: bool(node._associating), 60)
    hub.chf.join_windows[meter.eui64] = world.clock.now  # it closes now
    world.run(1)
    assert f"CHF: {meter.eui64.hex().upper()} associated but is no longer admitted" in lines
    assert meter.eui64 not in node.children
    assert not [f for _, f in _frames(world) if f.frame_type is MacFrameType.DATA]


@pytest.mark.parametrize("window_open", [True, False])
def test_a_late_copy_of_a_joined_devices_request_is_logged_as_what_it_is(
    window_open: bool,
) -> None:
    """A copy of the Association Request reaches the hub after the device joined (a
    delayed frame). With a join window still open (a CCS01 sent again; a zigpy permit
    lasts its whole duration) the response it gets goes unfetched, which is no failed
    association; with none, it is refused. The hub says which, and keeps the device."""
    world, run, hub, meter = _bench("esme")
    node = hub.node
    requests = _sent(meter.node, AssociationRequest)
    meter.node.power_on()
    assert run.wait_joined(meter, hub, "join").ok
    if window_open:
        hub.chf.join_windows[meter.eui64] = world.clock.now + 60
    lines = _lines(node)
    child = node.children[meter.eui64]
    node.deliver(requests[0])
    world.run(TRANSACTION_PERSISTENCE + 1)
    eui = meter.eui64.hex().upper()
    assert lines == [
        f"CHF: association response to {eui} not fetched: {eui} is joined already "
        "(a late copy of its request?)"
        if window_open
        else f"CHF: association from {eui} denied: no join window ({eui} is joined already)"
    ]
    assert node.children[meter.eui64] == child and meter.node.joined
    assert not node._associating and not node._responses and not node._indirect


def test_a_copy_of_a_sleepy_rejoin_request_is_answered_by_the_response_held() -> None:
    """A copy of the request (or the GSME asking again) gets no second Rejoin Response:
    the one held answers it, and one key follows."""
    world, run, bench, gsme = _restored_on_a_bench("gsme")
    node = bench.node
    rejoin = node._rejoin
    copies: list[int] = []

    def rejoin_twice(device: bytes, old_short: int, request: RejoinRequest) -> None:
        rejoin(device, old_short, request)
        if not copies:
            copies.append(len(node._rejoin_answers))
            rejoin(device, old_short, request)
            copies.append(len(node._rejoin_answers))

    node._rejoin = rejoin_twice  # type: ignore[method-assign]
    assert run.wait_joined(gsme, bench, "trust-centre rejoin").ok
    assert copies == [1, 1]
    assert _transport_keys(world) == 1


def test_a_gsme_removed_from_the_log_while_its_rejoin_response_is_held_gets_no_key() -> None:
    """CCS02 between the hub holding the response and the GSME fetching it (a GSME that
    lost its parent and rejoins its own hub, which keeps its record): the response still
    goes (as an association's does), but no key follows it."""
    world, run, bench, gsme = _bench("gsme")
    gsme.node.power_on()
    assert run.wait_joined(gsme, bench, "join").ok
    assert world.run_until(lambda: not gsme.node.listening, 60)
    node = bench.node
    send = gsme.node._send_data_request
    holding = [True]

    def polls_held_back(pan_id: int, src: int | bytes) -> bytes:
        psdu = send(pan_id, src)
        if holding[0] and node._rejoin_answers:
            gsme.node._tx_reset()  # this poll never goes out
        return psdu

    gsme.node._send_data_request = polls_held_back  # type: ignore[method-assign]
    lose_parent(gsme.node)  # it rejoins
    assert world.run_until(lambda: bool(node._rejoin_answers), 120)
    assert run.remove_device(bench, gsme).ok
    keys = _transport_keys(world)
    lines = _lines(node)
    holding[0] = False
    world.run(5)
    assert not node._rejoin_answers  # fetched and acknowledged
    assert _transport_keys(world) == keys
    eui = gsme.eui64.hex().upper()
    assert f"CHF: {eui} rejoined but is no longer in the device log" in lines
    assert not gsme.node.joined


def test_a_lost_acknowledgement_of_a_rejoin_response_giving_a_new_address_costs_no_retry() -> None:
    """The GSME's old address is another GSME's, so the response gives it a new one, and
    the hub misses its acknowledgement of that response: the GSME's poll from its new
    address shows it has the response, so the key follows (rather than the copy held
    again at the old address waiting for a poll that never comes)."""
    world = World(1)
    run = Run("conflict", world)
    old = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    a = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64, power=False)
    assert run.add_device(old, a).ok
    a.node.power_on()
    assert run.wait_joined(a, old, "join").ok
    bench = world.add_hub("bench", name="bench CHF")
    b = world.add_meter("bench", "gsme", name="B")
    assert run.add_device(bench, b).ok and run.wait_joined(b, bench, "join").ok
    assert a.node.settings is not None and b.node.short_address is not None
    a.node.settings.short_address = b.node.short_address  # A's old address is B's
    node = bench.node
    acknowledged = node._acknowledged
    lost: list[float] = []

    def lossy(seq: int) -> None:
        current = node._tx_current
        if not lost and current is not None and _rejoin_response(current[0]):
            lost.append(world.clock.now)
            return
        acknowledged(seq)

    node._acknowledged = lossy  # type: ignore[method-assign]
    lines = _lines(a.node)
    world.move(a, "bench")
    _, logs = run.read_logs(old)
    log = single_entry_log(logs, a.eui64)
    assert log is not None and run.restore(bench, log).ok
    assert run.wait_joined(a, bench, "trust-centre rejoin").ok
    assert lost and a.node.short_address != b.node.short_address
    assert not [line for line in lines if "rejoin failed" in line]
    assert not node._rejoin_answers and not node._indirect.get(b.node.short_address)


def test_a_gsme_fetching_its_rejoin_response_late_is_recorded_at_its_new_address() -> None:
    """The hub has a record of the GSME at one address while the GSME rejoins from another
    (it joined elsewhere since), and its polls are lost until REJOIN_TIMEOUT after its first
    request (it asks again, answered by the response still held). It proves its key after
    that: the hub's wait for the proof counts from the key it sent, not from the first
    request, so its record moves to the address the rejoin gave (before, it kept the old
    one and the GSME was unreachable; helper review)."""
    world, run, hub, gsme, elsewhere = known_at_another_address("gsme")
    node, meter = hub.node, gsme.node
    deliver = node.deliver
    asked: list[float] = []

    def polls_lost_for_a_while(psdu: bytes) -> None:
        if asked and world.clock.now < asked[0] + REJOIN_TIMEOUT - 0.1 and len(psdu) > 5:
            frame = decode_mac(psdu)
            if _is(frame, DataRequest) and frame.src == elsewhere:
                return
        deliver(psdu)

    rejoin = node._rejoin

    def note_request(device: bytes, old_short: int, request: RejoinRequest) -> None:
        asked.append(world.clock.now)
        rejoin(device, old_short, request)

    node.deliver = polls_lost_for_a_while  # type: ignore[method-assign]
    node._rejoin = note_request  # type: ignore[method-assign]
    lines = _lines(meter)
    lose_parent(meter)
    assert world.run_until(lambda: meter.rejoins == 1, 60)
    world.run(1)  # its Device_annce reaches the hub
    assert len(asked) > 1 and world.clock.now > asked[0] + REJOIN_TIMEOUT
    assert meter.short_address == elsewhere
    assert node.children[gsme.eui64].short_address == elsewhere
    assert not node._rejoining
    assert [line for line in lines if "rejoin failed" in line]  # it did ask again
    assert run.read(hub, gsme, "CS07").ok  # reached at the address it has


def test_a_moved_gsme_whose_first_proofs_are_lost_proves_its_key_at_its_next_wake() -> None:
    """The rejoin moves the GSME, and its Device_annce and its RequestTunnel (every MAC
    try) are lost: it sends nothing more until it wakes SLEEPY_POLL later. The hub waits
    for that wake's RequestTunnel, so its record moves and the GSME is reached (before,
    the rejoin lapsed after REJOIN_TIMEOUT and the hub held everything for the old
    address, which nobody polls, for good; helper review)."""
    world, run, hub, gsme, elsewhere = known_at_another_address("gsme")
    node, meter = hub.node, gsme.node
    deliver = node.deliver
    lost: list[float] = []
    losing: list[float] = []

    def proofs_lost(psdu: bytes) -> None:
        if losing and world.clock.now < losing[0] and len(psdu) > 5:
            frame = decode_mac(psdu)
            if frame.src == elsewhere and not _is(frame, DataRequest):
                lost.append(world.clock.now)
                return
        deliver(psdu)

    node.deliver = proofs_lost  # type: ignore[method-assign]
    lose_parent(meter)
    assert world.run_until(lambda: meter.rejoins == 1, 60)
    losing.append(world.clock.now + 0.1)  # it has its key: what it sends at once is lost
    assert world.run_until(lambda: node.children[gsme.eui64].short_address == elsewhere, 60)
    assert len(lost) == 1 + 4  # its Device_annce, its RequestTunnel's four MAC tries
    assert world.clock.now - losing[0] > REJOIN_TIMEOUT  # proved at its next wake
    assert not node._rejoining
    assert run.read(hub, gsme, "CS07").ok


def test_an_esme_taken_off_the_log_as_its_rejoin_is_answered_gets_no_key() -> None:
    """The trust centre looks at its log again as the key goes (a CCS02 may have come in
    the moment since the Rejoin Response), as it does for a GSME's held response."""
    world, _, bench, esme = _restored_on_a_bench("esme")
    node = bench.node
    lines = _lines(node)
    tc = node.trust_centre
    assert tc is not None
    logged, rejoin = tc.logged, node._rejoin
    answered: list[bytes] = []

    def log_changed_after_answering(device: bytes, old_short: int, request: RejoinRequest) -> None:
        rejoin(device, old_short, request)
        answered.append(device)

    node._rejoin = log_changed_after_answering  # type: ignore[method-assign]

    def logged_still(device: bytes) -> bool:
        return device not in answered and logged(device)

    tc.logged = logged_still  # type: ignore[method-assign]
    keys = _transport_keys(world)
    assert world.run_until(lambda: bool(answered), 120)
    world.run(1)
    assert _transport_keys(world) == keys
    eui = esme.eui64.hex().upper()
    assert f"bench CHF: {eui} rejoined but is no longer in the device log" in lines
    assert not esme.node.joined


def test_a_gsme_its_hub_answers_at_an_address_it_no_longer_holds_rejoins() -> None:
    """Its proofs lost until the hub gave up waiting, the moved GSME is served at its old
    address for good: the hub acknowledges its every frame, and holds every answer where
    nobody polls. Three RequestTunnels still unanswered at its next wake count as its hub
    lost, as an SE keep-alive counts reads left unanswered: it rejoins, and the rejoin
    puts the record right."""
    world, run, hub, gsme, elsewhere = known_at_another_address("gsme")
    node, meter = hub.node, gsme.node
    deliver = node.deliver
    losing: list[float] = []

    def proofs_lost(psdu: bytes) -> None:
        if losing and world.clock.now < losing[0] and len(psdu) > 5:
            frame = decode_mac(psdu)
            if frame.src == elsewhere and not _is(frame, DataRequest):
                return
        deliver(psdu)

    node.deliver = proofs_lost  # type: ignore[method-assign]
    lose_parent(meter)
    assert world.run_until(lambda: meter.rejoins == 1, 60)
    losing.append(world.clock.now + REJOIN_TIMEOUT + SLEEPY_POLL + 1)
    lines = _lines(meter)
    world.run(losing[0] - world.clock.now)
    assert node.children[gsme.eui64].short_address != elsewhere  # the hub gave up waiting
    assert world.run_until(lambda: node.children[gsme.eui64].short_address == elsewhere, 300)
    name = meter.name
    assert [line for line in lines if "RequestTunnel" in line] == [
        f"{name}: no answer to its RequestTunnel (1 of 3 in a row)",
        f"{name}: no answer to its RequestTunnel (2 of 3 in a row)",
        f"{name}: parent lost (its RequestTunnel unanswered, 3 in a row)",
    ]
    assert meter.rejoins == 2  # the rejoin that moved it, and the one that put it right
    assert world.run_until(lambda: world.joined_to(gsme) == hub.eui64, 60)
    assert run.read(hub, gsme, "CS07").ok
