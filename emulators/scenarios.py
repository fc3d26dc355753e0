"""Named end-to-end scenarios on the emulated HAN (DESIGN §2: the three meter states).

Each scenario builds a :class:`emulators.world.World`, drives it through the
DCC head end exactly as a triage bench would (GBCS commands through hubs,
HAN joins and rejoins on the air) and records every step with its outcome.
``returned-meter`` is state 2 (still joined to its old HAN), ``fresh-meter``
state 1 and ``dead-meter`` state 3.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators import qa
from emulators.faults import NO_FAULTS, FaultPlan
from emulators.headend import Outcome
from emulators.meters import Esme
from emulators.node import NodeState
from emulators.world import Hub, MeterUnit, World
from gbcs import asn1, dlms
from gbcs.catalogue import CATALOGUE
from gbcs.devicelog import (
    AddDevice,
    DeviceLog,
    DeviceLogs,
    DeviceType,
    ReadDeviceLogs,
    RemoveDevice,
    RestoreDeviceLog,
)
from gbcs.dlms import AccessResponse
from gbcs.errors import GbcsError
from gbcs.joins import (
    DisconnectFromHan,
    DisconnectResult,
    parse_int_response,
)
from gbcs.primitives import slot_builder

__all__ = ["FAULTY", "SCENARIOS", "Run", "Step", "run_scenario", "single_entry_log"]

JOIN_TIMEOUT = 300.0  # simulated seconds a bench waits for a join or rejoin
JOIN_WINDOW = 3600  # seconds a CCS01 join window stays open
HAN_EVENT = 0  # message_code of steps that are HAN events, not GBCS messages


@dataclass(frozen=True, slots=True)
class Step:
    """One thing the scenario did and how it ended (``result`` "ok" or the reason)."""

    use_case: str
    message_code: int
    source: str
    target: str
    result: str
    time: float
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result == "ok"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "use_case": self.use_case,
            "message_code": self.message_code,
            "from": self.source,
            "to": self.target,
            "result": self.result,
            "time": round(self.time, 6),
        }
        if self.detail:
            out["detail"] = self.detail
        return out


# Step(...) through its twin (every field given): a step per message, a third of the cost.
_step = slot_builder(Step)


def _hex(eui: bytes) -> str:
    return eui.hex().upper()


class Run:
    """A scenario in progress: the world plus the steps taken so far."""

    def __init__(self, name: str, world: World) -> None:
        self.name = name
        self.world = world
        self.steps: list[Step] = []

    # Recording -----------------------------------------------------------------------
    def record(
        self,
        use_case: str,
        code: int,
        source: bytes | str,
        target: bytes | str,
        result: str,
        **detail: Any,
    ) -> Step:
        step = _step(
            use_case,
            code,
            source if isinstance(source, str) else _hex(source),
            target if isinstance(target, str) else _hex(target),
            result,
            self.world.clock.now,
            detail,
        )
        self.steps.append(step)
        return step

    def _gbcs(self, outcome: Outcome, check: Callable[[Outcome], str], **detail: Any) -> Step:
        header = outcome.command.header
        code = header.other_information.message_code
        try:
            result = check(outcome) if outcome.ok else outcome.result
        except GbcsError as e:
            result = f"response not understood: {e}"
        return self.record(
            CATALOGUE.use_case_name(code),
            code,
            header.business_originator,
            header.business_target,
            result,
            **detail,
        )

    # Device-log use cases on a hub (ACB on behalf of the supplier) ---------------------------
    def device_log(self, hub: Hub, command: Any, code: int) -> tuple[Step, AccessResponse | None]:
        he = self.world.headend
        message = he.device_log_command(command, code, hub.eui64, he.party("supplier"))
        outcome = he.send(hub.chf, message)
        response: AccessResponse | None = None

        def check(o: Outcome) -> str:
            nonlocal response
            assert o.response is not None
            apdu = dlms.decode(o.response.payload)
            if not isinstance(apdu, AccessResponse):
                return "response is not an Access-Response"
            response = apdu
            failed = [r.result for r in apdu.results if r.result != 0]
            return "ok" if not failed else f"CHF refused: DLMS result {failed[0]}"

        return self._gbcs(outcome, check), response

    def add_device(self, hub: Hub, meter: MeterUnit, install_code: bytes | None = None) -> Step:
        command = AddDevice(
            meter.eui64,
            int(meter.device.device_type),
            install_code if install_code is not None else meter.device.install_code,
            join_timeout=JOIN_WINDOW,
        )
        return self.device_log(hub, command, AddDevice.MESSAGE_CODE)[0]

    def remove_device(self, hub: Hub, meter: MeterUnit) -> Step:
        return self.device_log(hub, RemoveDevice(meter.eui64), RemoveDevice.MESSAGE_CODE)[0]

    def read_logs(self, hub: Hub) -> tuple[Step, DeviceLogs | None]:
        step, response = self.device_log(hub, ReadDeviceLogs(), ReadDeviceLogs.MESSAGE_CODE)
        logs = None if response is None else DeviceLogs.from_response(response)
        return step, logs

    def restore(self, hub: Hub, log: DeviceLog) -> Step:
        return self.device_log(hub, RestoreDeviceLog(log), RestoreDeviceLog.MESSAGE_CODE)[0]

    # Commands to a meter, through its hub ------------------------------------------------------
    def meter_command(
        self, hub: Hub, meter: MeterUnit, code: int, payload: bytes, **kwargs: Any
    ) -> Outcome:
        message = self.world.headend.command(code, payload, meter.eui64, **kwargs)
        return self.world.headend.send(hub.chf, message)

    def read(
        self,
        hub: Hub,
        meter: MeterUnit,
        use_case: str,
        *,
        originator: str = "supplier",
        **detail: Any,
    ) -> Step:
        """One QA read (:mod:`emulators.qa`) from ``originator``, through ``hub``."""
        he = self.world.headend
        counter = he.next_counter(he.party(originator))
        clock = self.world.clock
        code, payload = qa.request(use_case, counter, clock.epoch, clock.utc)
        outcome = self.meter_command(
            hub, meter, code, payload, counter=counter, originator=originator
        )

        def check(o: Outcome) -> str:
            assert o.response is not None
            return "read failed" if qa.parse(use_case, o.response)["failed"] else "ok"

        return self._gbcs(outcome, check, **detail)

    def anchors(self, hub: Hub, meter: MeterUnit) -> tuple[Step, dict[str, str | None]]:
        """CS02a from the ACB (RTDS 6.24.1): whose supplier and network operator anchors
        the meter holds, as EUI-64 hex (None: none reported)."""
        code, payload = qa.credentials_request()
        outcome = self.meter_command(hub, meter, code, payload, originator="acb", sign=False)
        holders: dict[str, str | None] = {}

        def check(o: Outcome) -> str:
            assert o.response is not None
            holders.update(qa.anchor_holders(o.response))
            return "ok" if holders["network_operator"] else "no network operator anchor reported"

        # ``holders`` is filled by check() before the step is recorded with it.
        return self._gbcs(outcome, check, anchors=holders), holders

    def join_details(self, hub: Hub, meter: MeterUnit) -> Step:
        return self.read(hub, meter, "CS07")

    def qa_reads(self, hub: Hub, meter: MeterUnit) -> list[Step]:
        """The checks a bench makes: join details, and on an ESME identity, firmware, events."""
        use_cases = qa.QA_USE_CASES if isinstance(meter.device, Esme) else ("CS07",)
        return [self.read(hub, meter, u) for u in use_cases]

    def disconnect(self, hub: Hub, meter: MeterUnit, *, probe: bool = False, **kwargs: Any) -> Step:
        """SECMP0013 CS02f: supplier-signed, ACB-MAC'd; the meter answers signed.

        With ``probe`` a failure is the finding the scenario is after, not an error.
        """
        payload = asn1.encode(DisconnectFromHan(meter.eui64).to_payload())
        outcome = self.meter_command(hub, meter, CATALOGUE.disconnect_code, payload, **kwargs)

        def check(o: Outcome) -> str:
            assert o.response is not None
            if not o.response.signature:
                return "the disconnect response is not signed"
            value = asn1.decode_type(
                asn1.DISCONNECT_TYPES[o.response.header.cra_flag], o.response.payload
            )
            code = parse_int_response(value, "DisconnectFromHanResponse")
            return "ok" if code == 0 else f"meter refused: {DisconnectResult(code).name}"

        return self._gbcs(outcome, check, **({"probe": True} if probe else {}))

    # HAN events ---------------------------------------------------------------------------
    def wait_joined(
        self,
        meter: MeterUnit,
        hub: Hub,
        use_case: str,
        timeout: float = JOIN_TIMEOUT,
        *,
        probe: bool = False,
    ) -> Step:
        """Run until the meter joins ``hub``; with ``probe`` failing is a finding, not an error."""
        world = self.world
        node = meter.node
        joined_to = world.joined_to
        target = hub.eui64
        # joined_to() is None until the node has joined: its own test first, per event.
        ok = world.run_until(lambda: node.joined and joined_to(meter) == target, timeout)
        result = "ok" if ok else f"{meter.kind} did not join within {timeout:g} s"
        detail = {"probe": True} if probe else {}
        return self.record(use_case, HAN_EVENT, meter.eui64, hub.eui64, result, **detail)

    def wait_left(self, meter: MeterUnit, hub: Hub, timeout: float = 30.0) -> Step:
        world = self.world
        ok = world.run_until(lambda: meter.node.state is NodeState.SCANNING, timeout)
        result = "ok" if ok else "meter still holds its network settings"
        return self.record("HAN leave (auto-join)", HAN_EVENT, meter.eui64, hub.eui64, result)

    # Report ---------------------------------------------------------------------------
    def report(self, seed: int) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "seed": seed,
            "steps": [s.to_json() for s in self.steps],
            "meters": self.world.summary(),
            "ok": all(s.ok for s in self.steps if not s.detail.get("probe")),
        }


# --- Scenario bodies -----------------------------------------------------------------


def _premises(
    run: Run, kind: str = "esme", network_operator: str | None = None
) -> tuple[Hub, MeterUnit]:
    """A premises HAN with a CHF and the meter joined to it with its install code."""
    world = run.world
    old = world.add_hub("premises", world.pki.party("chf").eui64, name="premises CHF")
    cast = "esme" if kind == "esme" else "gsme"
    meter = world.add_meter(
        "premises",
        kind,
        world.pki.party(cast).eui64,
        name=f"{cast.upper()}",
        network_operator=network_operator,
    )
    run.add_device(old, meter)
    run.wait_joined(meter, old, "HAN join (install code)")
    return old, meter


DISCONNECT_ATTEMPTS = 3
LEAVE_WAIT = 30.0  # how long a meter whose CS02f answer did not come is watched for leaving
FAULTY = "FAULTY: no install-code join and no trust-centre rejoin"


def _release(run: Run, hub: Hub, meter: MeterUnit) -> bool:
    """Divorce a meter the bench can talk to: CS02f, then off the bench hub's log.

    The meter leaves the whitelist only once its signed disconnect response
    is in: removing it first is the known failure (it could never be reached
    again), so an unconfirmed divorce leaves it whitelisted and says so.
    """
    for _ in range(DISCONNECT_ATTEMPTS):
        if run.disconnect(hub, meter).ok:
            run.wait_left(meter, hub)
            run.remove_device(hub, meter)
            return True
        # The divorce is what the meter does: one that leaves its HAN ran the CS02f and
        # only its answer was lost. One that does not is asked again after that wait (a
        # tunnel not open yet has opened by then).
        if run.world.run_until(lambda: meter.node.state is NodeState.SCANNING, LEAVE_WAIT):
            run.record(
                "HAN leave (auto-join)",
                HAN_EVENT,
                meter.eui64,
                hub.eui64,
                "ok",
                evidence="the meter left its HAN; its CS02f answer was lost",
            )
            run.remove_device(hub, meter)
            return True
    run.record(
        "SR 8.15",
        HAN_EVENT,
        hub.eui64,
        meter.eui64,
        f"divorce not confirmed after {DISCONNECT_ATTEMPTS} CS02f attempts; "
        "meter left on the bench whitelist",
    )
    return False


def single_entry_log(logs: DeviceLogs | None, eui: bytes) -> DeviceLog | None:
    """A device's entry alone, from the current or else the historic log of a CCS07 read.

    That one entry is what a single-entry CCS03 restores onto the bench CHF.
    """
    if logs is None:
        return None
    for log in (logs.current, logs.historic):
        if log is not None and log.entry_for(eui) is not None:
            return DeviceLog(log.extended_pan_id, log.only(eui).entries)
    return None


def _onto_bench(run: Run, old: Hub, meter: MeterUnit) -> Hub | None:
    """State 2 up to the reads: CCS07 on the old CHF, its single entry (current log, else
    historic) restored onto a bench CHF with CCS03, the trust-centre rejoin, the old
    hub's current entry removed. The
    bench hub, or None when the meter could not be reached (the steps say why)."""
    world = run.world
    world.move(meter, None)  # taken off the wall without being divorced
    world.run(600)
    bench = world.add_hub("bench", name="bench CHF")
    world.move(meter, "bench")
    _, logs = run.read_logs(old)  # CCS07 on the old CHF
    entry_log = single_entry_log(logs, meter.eui64)
    if entry_log is None:
        run.record("SR 8.16", HAN_EVENT, bench.eui64, meter.eui64, "meter is in no log of its CHF")
        return None
    assert logs is not None
    in_current = logs.current is not None and logs.current.entry_for(meter.eui64) is not None
    run.restore(bench, entry_log)  # CCS03 with that single entry
    if not run.wait_joined(meter, bench, "trust-centre rejoin").ok:
        if in_current:
            run.remove_device(bench, meter)  # back to one log: the old hub's
        # else the bench's entry is the only one that can reach the meter: it stays, for
        # the meter's next rejoin attempt.
        return None
    if in_current:
        run.remove_device(old, meter)  # the old hub forgets it: one log only
    return bench


def _to_third_han(run: Run, meter: MeterUnit) -> None:
    """After the divorce: the meter joins the next HAN that whitelists it."""
    third = run.world.add_hub("site-3", name="third CHF")
    run.world.move(meter, "site-3")
    run.add_device(third, meter)
    run.wait_joined(meter, third, "HAN join (install code)")


def _triage(run: Run, old: Hub, meter: MeterUnit) -> None:
    """State 2 from the van on: onto the bench, reads, divorce, a third HAN."""
    bench = _onto_bench(run, old, meter)
    if bench is None:
        return
    run.qa_reads(bench, meter)
    if _release(run, bench, meter):
        _to_third_han(run, meter)


def returned_meter(run: Run) -> None:
    _triage(run, *_premises(run))


OTHER_REGION = "network_operator2"  # the test-PKI network operator of the meter's region


def other_region_meter(run: Run) -> None:
    """DESIGN §2: a meter restored under another network operator's certificates.

    The bench reaches it (the supplier's and the ACB's commands do not involve the
    network operator) and reads its anchors with CS02a. Its region's operator is
    not the bench's: the bench region's operator's command is discarded by the
    meter (no answer), its own operator's is answered, so the verdict is that it
    can be re-deployed only in its own operator's region.
    """
    world = run.world
    old, meter = _premises(run, network_operator=OTHER_REGION)
    bench = _onto_bench(run, old, meter)
    if bench is None:
        return
    run.qa_reads(bench, meter)
    _, holders = run.anchors(bench, meter)
    region = world.anchors.network_operator.party_id.hex().upper()
    held = holders.get("network_operator")
    if held is not None and held != region:
        verdict = (
            f"OTHER REGION: the meter holds network operator {held}'s anchors, not this "
            f"region's {region}; re-deploy it only in {held}'s region"
        )
    elif held is None:
        verdict = "unknown: the meter did not report its network operator"
    else:
        verdict = "ok"
    run.record(
        "network operator check",
        HAN_EVENT,
        bench.eui64,
        meter.eui64,
        verdict,
        probe=True,
        verdict=verdict,
        network_operator=held,
    )
    # The failure itself, reproduced: this region's operator gets no answer, the
    # meter's own operator does.
    run.read(bench, meter, "CS07", originator="network_operator", probe=True)
    if held is not None and held != region:
        run.read(bench, meter, "CS07", originator=world.pki.party(bytes.fromhex(held)).name)
    if _release(run, bench, meter):
        _to_third_han(run, meter)


def removed_before_disconnect(run: Run) -> None:
    """DESIGN §2's first two known failure modes, reproduced, and the way back.

    The meter is taken off its CHF's whitelist (CCS02) while it still holds the
    network: the CS02f cannot be routed and fails, and the meter is stranded (it
    keeps the network and no hub will have it). On the bench the old CHF's current
    log no longer holds it, its historic log does: that single entry, restored
    onto the bench CHF, brings it back for the reads and the divorce.
    """
    old, meter = _premises(run)
    run.remove_device(old, meter)  # before any CS02f
    run.disconnect(old, meter, probe=True)  # the known failure: cannot be routed
    if meter.node.settings is not None and not run.world.joinable(meter):
        verdict = (
            "STRANDED: the meter keeps the premises network and is in no CHF's current "
            "log; only a restore of its entry reaches it"
        )
        run.record(
            "stranded check",
            HAN_EVENT,
            old.eui64,
            meter.eui64,
            verdict,
            probe=True,
            verdict=verdict,
        )
    else:  # the failure was not reproduced: the emulation hid it
        run.record("stranded check", HAN_EVENT, old.eui64, meter.eui64, "meter not stranded")
    _triage(run, old, meter)


def fresh_meter(run: Run) -> None:
    world = run.world
    bench = world.add_hub("bench", name="bench CHF")
    meter = world.add_meter("bench", "esme", world.pki.party("esme").eui64, name="ESME")
    run.add_device(bench, meter)
    if not run.wait_joined(meter, bench, "HAN join (install code)").ok:
        return
    run.qa_reads(bench, meter)
    _release(run, bench, meter)


def dead_meter(run: Run) -> None:
    world = run.world
    old, meter = _premises(run)
    meter.node.dead = True  # it dies on the shelf
    meter.node.power_off()
    world.move(meter, "bench")
    bench = world.add_hub("bench", name="bench CHF")
    run.add_device(bench, meter)
    join = run.wait_joined(meter, bench, "HAN join (install code)", probe=True)
    run.remove_device(bench, meter)
    _, logs = run.read_logs(old)
    entry_log = single_entry_log(logs, meter.eui64)
    if entry_log is not None:
        run.restore(bench, entry_log)
        rejoin = run.wait_joined(meter, bench, "trust-centre rejoin", probe=True)
        run.remove_device(bench, meter)
    else:
        rejoin = run.record(
            "trust-centre rejoin", HAN_EVENT, meter.eui64, bench.eui64, "meter is in no log"
        )
    # The verdict is the bench's finding, not a failure of the scenario (DESIGN §2 state 3).
    verdict = "ok" if join.ok or rejoin.ok else FAULTY
    run.record(
        "triage verdict", HAN_EVENT, bench.eui64, meter.eui64, verdict, probe=True, verdict=verdict
    )


SCENARIOS: dict[str, tuple[str, Callable[[Run], None]]] = {
    "returned-meter": (
        "state 2: CCS07 on the old CHF, single-entry CCS03 onto a bench CHF, trust-centre "
        "rejoin, reads through the bench CHF, CS02f, install-code join of a third HAN",
        returned_meter,
    ),
    "other-region-meter": (
        "state 2 for a meter holding another region's network operator anchors: restored, "
        "read and divorced, and found fit only for its own operator's region (CS02a)",
        other_region_meter,
    ),
    "removed-before-disconnect": (
        "state 2 after the known failure: CCS02 before CS02f strands the meter and the "
        "disconnect cannot be routed; restored from the old CHF's historic log, read, "
        "divorced, joined to a third HAN",
        removed_before_disconnect,
    ),
    "fresh-meter": ("state 1: install-code join to the bench CHF, reads, CS02f", fresh_meter),
    "dead-meter": ("state 3: neither a join nor a rejoin happens; reported faulty", dead_meter),
}


def run_scenario(
    name: str,
    seed: int = 0,
    *,
    faults: FaultPlan = NO_FAULTS,
    capture: bool = True,
    world: World | None = None,
) -> Run:
    try:
        _, body = SCENARIOS[name]
    except KeyError:
        raise GbcsError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None
    run = Run(name, world if world is not None else World(seed, faults=faults, capture=capture))
    body(run)
    return run


__all__ += ["DeviceType"]
