"""The three returned-meter states of DESIGN §2 and the known failure modes, end to end."""

from __future__ import annotations

import pytest

from emulators.faults import FaultPlan
from emulators.node import KEEPALIVE_RETRY, PARENT_FAILURE_LIMIT, NodeState
from emulators.scenarios import (
    FAULTY,
    SCENARIOS,
    Run,
    _premises,
    _release,
    run_scenario,
    single_entry_log,
)
from emulators.world import World
from gbcs.catalogue import CATALOGUE
from gbcs.errors import GbcsError
from gbcs.frame import decode

DISCONNECT = CATALOGUE.disconnect_code


def _codes(run: Run) -> list[tuple[str, str]]:
    return [(s.use_case, s.result) for s in run.steps]


def test_state_2_returned_meter_end_to_end() -> None:
    run = run_scenario("returned-meter", seed=7)
    report = run.report(7)
    assert report["ok"], _codes(run)
    steps = [(s.use_case, s.message_code) for s in run.steps]
    # CCS07 on the old CHF, CCS03 onto the bench, rejoin, reads, CS02f, third HAN.
    order = [
        "CCS07",
        "CCS03",
        "trust-centre rejoin",
        "CS07",
        "CS02f-SECMP0013",
        "HAN leave (auto-join)",
        "HAN join (install code)",
    ]
    names = [u for u, _ in steps]
    positions = [names.index(u, names.index("CCS07")) for u in order[:-1]]
    assert positions == sorted(positions)
    assert names[-1] == "HAN join (install code)"
    assert [c for u, c in steps if u.startswith("CS02f")] == [DISCONNECT]
    world = run.world
    (meter,) = world.meters.values()
    third = next(h for h in world.hubs.values() if h.place == "site-3")
    assert world.joined_to(meter) == third.eui64
    assert world.logs_holding(meter) == [third.eui64]
    assert report["meters"][meter.eui64.hex().upper()]["joined_to"] == third.eui64.hex().upper()
    # The bench log held only that meter (single-entry CCS03), now in its history.
    bench = next(h for h in world.hubs.values() if h.place == "bench")
    assert [e.device_id for e in bench.chf.historic_log().entries] == [meter.eui64]
    # The disconnect response was signed by the meter and verified by the head end.
    assert meter.node.joins == 2 and meter.node.rejoins == 1


def test_state_1_fresh_meter() -> None:
    run = run_scenario("fresh-meter", seed=2)
    assert run.report(2)["ok"], _codes(run)
    (meter,) = run.world.meters.values()
    assert meter.node.state is NodeState.SCANNING  # divorced: back to auto-join
    assert run.world.logs_holding(meter) == []
    assert [s.use_case for s in run.steps][:2] == ["CCS01", "HAN join (install code)"]


def test_state_3_dead_meter_is_reported_faulty() -> None:
    run = run_scenario("dead-meter", seed=4)
    report = run.report(4)
    probes = [s for s in run.steps if s.detail.get("probe")]
    uses = ["HAN join (install code)", "trust-centre rejoin", "triage verdict"]
    assert [s.use_case for s in probes] == uses
    assert all("did not join" in s.result for s in probes[:2])
    verdict = run.steps[-1]
    assert verdict is probes[-1] and not verdict.ok
    assert verdict.result == verdict.detail["verdict"] == FAULTY  # shown, not only in detail
    assert report["ok"]  # the bench did its job: the failure is the finding
    (meter,) = run.world.meters.values()
    assert len(run.world.logs_holding(meter)) == 1  # the restored entry was taken back


def test_meter_of_another_region_is_restored_but_fit_only_for_its_region() -> None:
    """DESIGN §2: restored under another network operator's certificates."""
    run = run_scenario("other-region-meter", seed=5)
    report = run.report(5)
    assert report["ok"], _codes(run)  # the finding is a probe, not a failed bench
    world = run.world
    (meter,) = world.meters.values()
    region = world.pki.party("network_operator").eui64.hex().upper()
    other = world.pki.party("network_operator2").eui64.hex().upper()
    cs02a = next(s for s in run.steps if s.use_case == "CS02a")
    assert cs02a.ok and cs02a.message_code == 0x0008
    assert cs02a.source == world.pki.party("acb").eui64.hex().upper()  # as RTDS 6.24.1
    assert cs02a.detail["anchors"] == {
        "supplier": world.pki.party("supplier").eui64.hex().upper(),
        "network_operator": other,
    }
    check = next(s for s in run.steps if s.use_case == "network operator check")
    assert check.detail["probe"] and check.detail["network_operator"] == other
    assert check.result == check.detail["verdict"]
    assert check.result.startswith("OTHER REGION") and region in check.result
    # The failure, reproduced: this region's operator is not answered, the meter's own is.
    reads = [s for s in run.steps if s.use_case == "CS07" and s.source in (region, other)]
    assert [(s.source, s.result) for s in reads] == [
        (region, "no response within 120 s"),
        (other, "ok"),
    ]
    assert any(
        "not a trust anchor" in e.detail and region in e.detail for e in meter.device.security_log
    )
    # The rest of state 2 is unchanged: divorced, then joined to a third HAN.
    third = next(h for h in world.hubs.values() if h.place == "site-3")
    assert world.joined_to(meter) == third.eui64
    assert report["meters"][meter.eui64.hex().upper()]["network_operator"] == other
    # A saved world keeps the meter's region.
    loaded = World.from_json(world.to_json())
    assert loaded.meters[meter.eui64].device.anchors == meter.device.anchors


def test_removed_before_disconnect_fails_then_recovers_from_the_historic_log() -> None:
    """DESIGN §2's first two failure modes in one run: CCS02 before CS02f strands the
    meter; the old CHF's historic log is what brings it back."""
    run = run_scenario("removed-before-disconnect", seed=6)
    report = run.report(6)
    assert report["ok"], _codes(run)  # the failure is the finding (probes), not a failed run
    world = run.world
    (meter,) = world.meters.values()
    eui = meter.eui64.hex().upper()
    old, bench, third = world.hubs.values()
    first_cs02f = next(s for s in run.steps if s.use_case == "CS02f-SECMP0013")
    assert first_cs02f.detail == {"probe": True}
    assert first_cs02f.result == f"device {eui} is not in the CHF device log (whitelist)"
    stranded = next(s for s in run.steps if s.use_case == "stranded check")
    assert stranded.result.startswith("STRANDED") and stranded.detail["probe"]
    # The old hub was asked to remove it once (before the CS02f), never again: the bench
    # restored the historic entry, and the current log has nothing to remove.
    ccs02 = [s for s in run.steps if s.use_case == "CCS02"]
    assert [s.target for s in ccs02] == [old.eui64.hex().upper(), bench.eui64.hex().upper()]
    assert all(s.ok for s in ccs02)
    rejoin = next(s for s in run.steps if s.use_case == "trust-centre rejoin")
    assert rejoin.ok and rejoin.target == bench.eui64.hex().upper()
    divorced = [s for s in run.steps if s.use_case == "CS02f-SECMP0013"][1]
    assert divorced.ok and divorced.target == eui
    assert world.joined_to(meter) == third.eui64
    assert world.logs_holding(meter) == [third.eui64]
    assert meter.node.joins == 2 and meter.node.rejoins == 1


def test_a_stranded_meter_whose_rescue_fails_keeps_the_bench_entry() -> None:
    """When the trust-centre rejoin after a historic-log restore does not come in time,
    the bench's entry is the only one that can reach the meter: it is kept (not removed
    as when the old CHF still holds the meter), and the meter rejoins on a later try."""
    plan = FaultPlan(loss=0.1, duplication=0.05, reordering=0.05, delay=0.05, power_cycle=0.01)
    for seed in range(1000):  # the first seed whose faults defeat every rejoin in 300 s
        run = run_scenario("removed-before-disconnect", seed, faults=plan)
        joined = run.steps[1].use_case == "HAN join (install code)" and run.steps[1].ok
        rejoin = next((s for s in run.steps if s.use_case == "trust-centre rejoin"), None)
        # A meter that joined its premises HAN, so stranded there (not one that never did).
        if joined and rejoin is not None and not rejoin.ok:
            break
    else:
        pytest.fail("no seed in 1000 made the rescue rejoin fail")
    world = run.world
    (meter,) = world.meters.values()
    _, bench = world.hubs.values()
    assert run.steps[-1] is rejoin  # nothing after it: no CCS02 of the bench entry
    assert world.logs_holding(meter) == [bench.eui64] and world.joinable(meter)
    assert world.run_until(lambda: world.joined_to(meter) == bench.eui64, 3600)


def test_meter_of_this_region_passes_the_operator_check(bench) -> None:
    run, hub, meter = bench
    step, holders = run.anchors(hub, meter)
    assert step.ok
    region = run.world.pki.party("network_operator").eui64.hex().upper()
    assert holders["network_operator"] == region


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("supplier", "'supplier' is the supplier, not a network operator"),
        ("esme", "'esme' is a device, not a network operator"),
        ("nobody", "no party 'nobody'"),
    ],
)
def test_a_meter_needs_a_network_operator_for_its_region(name: str, message: str) -> None:
    world = World(seed=6)
    with pytest.raises(GbcsError, match=message):
        world.add_meter("bench", "esme", network_operator=name)
    assert world.meters == {}  # nothing half-made


def test_unknown_scenario_is_refused() -> None:
    with pytest.raises(GbcsError, match="unknown scenario 'nope'"):
        run_scenario("nope")
    assert set(SCENARIOS) >= {"returned-meter", "fresh-meter", "dead-meter"}


# --- failure modes -----------------------------------------------------------------------


@pytest.fixture
def bench() -> tuple[Run, object, object]:
    world = World(seed=11)
    run = Run("failure", world)
    hub = world.add_hub("bench", name="bench CHF")
    meter = world.add_meter("bench", "esme", world.pki.party("esme").eui64)
    run.add_device(hub, meter)
    assert run.wait_joined(meter, hub, "join").ok
    return run, hub, meter


def test_whitelist_removed_before_disconnect_cannot_be_routed(bench) -> None:
    run, hub, meter = bench
    assert run.remove_device(hub, meter).ok
    step = run.disconnect(hub, meter)
    assert step.result == (
        f"device {meter.eui64.hex().upper()} is not in the CHF device log (whitelist)"
    )
    # The meter still holds the network and nothing will ever let it rejoin elsewhere.
    assert meter.node.settings is not None
    assert not run.world.joinable(meter)


def test_meter_only_in_historic_log_is_restored_from_it() -> None:
    world = World(seed=12)
    run = Run("historic", world)
    old = world.add_hub("premises", name="old")
    meter = world.add_meter("premises", "esme")
    run.add_device(old, meter)
    assert run.wait_joined(meter, old, "join").ok
    assert run.remove_device(old, meter).ok  # whitelist entry gone before triage
    world.move(meter, "bench")
    new = world.add_hub("bench", name="bench")
    _, logs = run.read_logs(old)
    assert logs is not None and logs.current.entry_for(meter.eui64) is None
    entry = logs.historic.entry_for(meter.eui64)
    assert entry is not None
    single = single_entry_log(logs, meter.eui64)
    assert single is not None and single.entries == (entry,)
    assert single.extended_pan_id == logs.historic.extended_pan_id
    assert single_entry_log(logs, bytes(8)) is None and single_entry_log(None, meter.eui64) is None
    assert run.restore(new, single).ok
    assert run.wait_joined(meter, new, "trust-centre rejoin").ok
    assert run.join_details(new, meter).ok


def test_wrong_install_code_never_joins() -> None:
    world = World(seed=13)
    run = Run("wrong code", world)
    hub = world.add_hub("bench")
    meter = world.add_meter("bench", "esme")
    wrong = bytes(b ^ 0xFF for b in meter.device.install_code)
    assert run.add_device(hub, meter, install_code=wrong).ok
    step = run.wait_joined(meter, hub, "join", timeout=600)
    assert step.result == "ESME did not join within 600 s"
    assert meter.node.settings is None and meter.node.joins == 0
    assert not any(c.announced for c in hub.node.children.values())


def test_bad_signature_is_rejected(bench) -> None:
    run, hub, meter = bench
    he = run.world.headend
    from gbcs import asn1
    from gbcs.joins import DisconnectFromHan

    good = he.command(
        DISCONNECT, asn1.encode(DisconnectFromHan(meter.eui64).to_payload()), meter.eui64
    )
    forged = good.with_signature(bytes(64))
    forged = he.security.add_mac(forged)  # a valid MAC over a bad signature
    outcome = he.send(hub.chf, forged)
    assert not outcome.ok
    assert meter.device.security_log[-1].detail.endswith("signature invalid")
    assert meter.node.settings is not None  # still joined


def test_replayed_counter_is_rejected(bench) -> None:
    run, hub, meter = bench
    he = run.world.headend
    from gbcs import asn1
    from gbcs.joins import JoinDetails

    command = he.command(0x0013, asn1.encode(JoinDetails.COMMAND), meter.eui64)
    assert he.send(hub.chf, command).ok
    again = he.send(hub.chf, command)
    assert again.failure == "no response within 120 s"
    assert "replayed originator counter" in meter.device.security_log[-1].detail


def test_unsigned_critical_command_is_rejected(bench) -> None:
    run, hub, meter = bench
    step = run.disconnect(hub, meter, sign=False)
    assert step.result == "no response within 120 s"
    assert meter.device.security_log[-1].detail.endswith("is not signed")
    assert meter.node.state is NodeState.JOINED


def test_state_2_for_a_gsme_divorces_it_on_its_next_wake() -> None:
    """The sleepy GSME goes the whole returned-meter way; CS02f waits for its wake."""
    world = World(seed=14)
    run = Run("returned gsme", world)
    old = world.add_hub("premises", name="old")
    gsme = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64)
    assert run.add_device(old, gsme).ok
    assert run.wait_joined(gsme, old, "HAN join (install code)").ok
    world.move(gsme, "bench")
    bench = world.add_hub("bench", name="bench")
    _, logs = run.read_logs(old)
    entry = single_entry_log(logs, gsme.eui64)
    assert entry is not None and run.restore(bench, entry).ok
    assert run.wait_joined(gsme, bench, "trust-centre rejoin").ok
    assert run.remove_device(old, gsme).ok
    assert run.join_details(bench, gsme).ok
    asked = world.clock.now
    step = run.disconnect(bench, gsme)
    assert step.ok, step.result
    assert 1 < step.time - asked <= gsme.device.WAKE_INTERVAL + 1  # held for its next wake
    assert run.wait_left(gsme, bench).ok
    assert gsme.node.settings is None  # network key, PAN and link key discarded
    assert run.remove_device(bench, gsme).ok
    third = world.add_hub("site-3", name="third")
    world.move(gsme, "site-3")
    assert run.add_device(third, gsme).ok
    assert run.wait_joined(gsme, third, "HAN join (install code)").ok
    assert world.logs_holding(gsme) == [third.eui64]


def test_cs02f_divorces_a_meter_that_lost_its_parent_for_a_moment() -> None:
    """Orphaned (its keep-alives unacknowledged), the meter still holds its network and
    tunnel, and a CS02f that reaches it must divorce it, not answer notJoined and rejoin."""
    world = World(3)
    run = Run("orphaned divorce", world)
    hub = world.add_hub("bench")
    esme = world.add_meter("bench", "esme")
    assert run.add_device(hub, esme).ok and run.wait_joined(esme, hub, "join").ok
    medium = world.places["bench"]
    hub.node.place(None)  # a moment without the hub: the keep-alives go unacknowledged
    esme.node._keepalive()
    world.run((PARENT_FAILURE_LIMIT - 1) * KEEPALIVE_RETRY + 0.1)
    hub.node.place(medium)
    assert esme.node.state is NodeState.ORPHANED and esme.node.settings is not None
    step = run.disconnect(hub, esme)
    assert step.ok, step.result
    world.run(3)
    assert esme.eui64 not in hub.node.children  # it told the hub it left, as a joined one does
    world.run(120)
    assert world.joined_to(esme) is None and esme.node.settings is None
    assert esme.node.state is NodeState.SCANNING


def test_fresh_meter_divorce_survives_delay_faults() -> None:
    """Seed 13 with delays left the meter orphaned just as the bench's CS02f arrived."""
    run = run_scenario("fresh-meter", 13, faults=FaultPlan(delay=0.3, max_delay=0.5))
    divorces = [s.result for s in run.steps if s.use_case.startswith("CS02f")]
    assert divorces == ["ok"]  # the first attempt divorces it: no retry, no "not confirmed"
    (meter,) = run.world.summary().values()
    assert (meter["joined_to"], meter["state"]) == (None, "scanning")


def test_a_gsme_divorced_while_asleep_still_tells_its_hub() -> None:
    """The GSME carries out CS02f a second after answering, asleep by then: it wakes to
    send its NWK Leave (nothing went on the air, and the hub kept it as a child)."""
    world = World(3)
    run = Run("gsme divorce", world)
    hub = world.add_hub("bench")
    gsme = world.add_meter("bench", "gsme")
    assert run.add_device(hub, gsme).ok and run.wait_joined(gsme, hub, "join").ok
    assert hub.node.has_child(gsme.eui64)
    step = run.disconnect(hub, gsme)
    assert step.ok, step.result
    assert run.wait_left(gsme, hub).ok
    world.run(5)
    assert not hub.node.has_child(gsme.eui64) and gsme.eui64 not in hub.node.children


def test_a_divorce_whose_answer_was_lost_is_seen_on_the_han() -> None:
    """SR 8.15 is what the meter does: its CS02f answer lost, it still left its HAN, so
    the scenario takes it off the bench whitelist instead of asking twice more and
    reporting the divorce unconfirmed."""
    run = Run("lost answer", World(seed=4))
    hub, meter = _premises(run)
    chf = hub.chf
    taken = chf.from_han
    lost: list[bytes] = []

    def lose_the_answer(device: bytes, data: bytes) -> None:
        if decode(data).header.other_information.message_code == CATALOGUE.disconnect_code:
            lost.append(data)
            return
        taken(device, data)

    chf.from_han = lose_the_answer  # type: ignore[method-assign]
    assert _release(run, hub, meter)
    assert len(lost) == 1
    (cs02f,) = [s for s in run.steps if s.use_case.startswith("CS02f")]
    assert not cs02f.ok
    leave = run.steps[-2]
    assert (leave.use_case, leave.result) == ("HAN leave (auto-join)", "ok")
    assert leave.detail == {"evidence": "the meter left its HAN; its CS02f answer was lost"}
    assert run.steps[-1].use_case == "CCS02" and run.steps[-1].ok
    assert meter.eui64 not in chf.current and meter.node.settings is None
    assert not [s for s in run.steps if s.use_case == "SR 8.15"]
