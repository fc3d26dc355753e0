"""``gbcs-hil triage``: set up the bench (or find it set up), triage every meter, report.

The working folder holds everything: ``triage.sqlite`` (inventory, audit log,
journal, device state), ``report.json``, ``junit.xml`` and ``han.pcap`` (a
pcapng with the air and the WAN, plus ``han.pcap.keys`` for Wireshark).
Started again on the same folder it resumes where the database says it
stopped.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.inventory import Inventory
from emulators.mpxn import ProductionProvingPolicy
from emulators.triage import (
    BENCH_PLACE,
    DEAD_IN_DEMO,
    Bench,
    ManifestRow,
    MeterReport,
    demo_rows,
)
from emulators.wireshark import write_capture
from emulators.world import World
from gbcs.errors import GbcsError

__all__ = ["BenchRun", "results_table", "run_bench"]

DB_NAME = "triage.sqlite"
RESTART_SETTLE = 30.0  # simulated seconds


@dataclass(slots=True)
class BenchRun:
    reports: list[MeterReport]
    manifest_errors: list[str]
    workdir: Path
    resumed: bool

    @property
    def ok(self) -> bool:
        return not self.manifest_errors and all(r.correct for r in self.reports)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "resumed": self.resumed,
            "manifest_errors": self.manifest_errors,
            "meters": [r.to_json() for r in self.reports],
        }


def _rows_json(rows: list[ManifestRow]) -> list[dict[str, Any]]:
    return [
        {
            "eui64": r.hex,
            "install_code": r.install_code.hex().upper(),
            "device_type": r.device_type,
            "old_chf": None if r.old_chf is None else r.old_chf.hex().upper(),
            "mpxn": r.mpxn,
            "line": r.line,
        }
        for r in rows
    ]


def _rows_from_json(items: list[dict[str, Any]]) -> list[ManifestRow]:
    return [
        ManifestRow(
            bytes.fromhex(i["eui64"]),
            bytes.fromhex(i["install_code"]),
            i["device_type"],
            None if i["old_chf"] is None else bytes.fromhex(i["old_chf"]),
            i["mpxn"],
            int(i["line"]),
        )
        for i in items
    ]


def setup(
    inventory: Inventory,
    rows: list[ManifestRow],
    seed: int,
    policy: ProductionProvingPolicy | None,
    dead: frozenset[bytes] = frozenset(),
) -> World:
    """The world before the bench: premises HANs with the meters joined, then carried
    to the bench without being divorced; fresh meters straight onto the bench."""
    world = World(seed)
    premises: dict[bytes, str] = {}
    for row in rows:
        if row.old_chf is not None and row.old_chf not in premises:
            premises[row.old_chf] = f"premises-{len(premises) + 1}"
            world.add_hub(premises[row.old_chf], row.old_chf, name=f"old CHF {len(premises)}")
    world.add_hub(BENCH_PLACE, name="bench CHF")
    bench = Bench(inventory, world, policy=policy)
    sr, user = bench.services, bench.user
    with inventory.transaction():
        for hub in world.hubs.values():
            _expect(sr.submit(user, "8.14.1", chf=hub.eui64.hex().upper()), "8.14.1")
        for row in rows:
            place = premises.get(row.old_chf) if row.old_chf is not None else None
            world.add_meter(
                place,
                row.device_type.lower(),
                row.eui64,
                install_code=row.install_code,
                power=place is not None,  # a fresh meter waits unplugged on the shelf
            )
            _expect(
                sr.submit(
                    user,
                    "pre-notification",
                    device=row.hex,
                    device_type=row.device_type,
                    install_code=row.install_code.hex().upper(),
                ),
                "pre-notification",
            )
            inventory.set_responsible_supplier(row.mpxn, user.hex)
            inventory.link_mpxn(row.hex, row.mpxn)
        installed = [row for row in rows if row.old_chf is not None]
        for row in installed:
            _expect(
                sr.submit(
                    user, "8.11", chf=row.old_chf.hex().upper(), device=row.hex, action="add"
                ),
                "8.11 add at the premises",
            )
        pairs = [(world.meters[r.eui64], r.old_chf) for r in installed]
        if not world.run_until(lambda: all(world.joined_to(m) == h for m, h in pairs), 3600):
            late = [m.eui64.hex().upper() for m, h in pairs if world.joined_to(m) != h]
            raise GbcsError(f"set-up: {', '.join(late)} did not join their premises CHF")
        world.run(3600)  # the premises lives for an hour
        for row in rows:
            meter = world.meters[row.eui64]
            if row.eui64 in dead:
                meter.node.dead = True
                meter.node.power_off()
            if row.old_chf is not None:
                world.move(meter, None)  # taken off the wall without being divorced
        world.run(600)  # in the van, then on the warehouse shelf until its turn
        bench.save_world(None)
        inventory.put("rows", _rows_json(rows))
        inventory.put("seed", seed)
    return world


def _expect(response: Any, what: str) -> None:
    if not response.ok:
        raise GbcsError(f"set-up failed at {what}: {response.result}")


def run_bench(
    workdir: Path | str,
    rows: list[ManifestRow] | None = None,
    *,
    seed: int = 1,
    policy: ProductionProvingPolicy | None = None,
    manifest_errors: list[str] | None = None,
    crash_after: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BenchRun:
    """Triage every meter (the demo's when ``rows`` is None); resume a run in progress."""
    folder = Path(workdir)
    folder.mkdir(parents=True, exist_ok=True)
    inventory = Inventory(folder / DB_NAME)
    try:
        saved = inventory.get("rows")
        resumed = saved is not None
        if resumed:
            stored = _rows_from_json(saved)
            if rows is not None and _rows_json(rows) != saved:
                raise GbcsError(
                    f"{folder} holds a different run; use another --workdir to start a new one"
                )
            rows = stored
            seed = int(inventory.get("seed"))
            world = Bench.load_world(inventory)
            if world is None:
                raise GbcsError(f"{folder / DB_NAME} has a run but no device state")
            # The emulated devices restart with the bench: give their HAN time to come
            # back (tunnels re-open) before the next command, as an operator would.
            world.run(RESTART_SETTLE)
            manifest_errors = inventory.get("manifest_errors") or []
        else:
            demo = rows is None
            rows = demo_rows() if rows is None else rows
            dead = frozenset({DEAD_IN_DEMO}) if demo else frozenset()
            world = setup(inventory, rows, seed, policy, dead)
            manifest_errors = manifest_errors or []
            inventory.put("manifest_errors", manifest_errors)
        bench = Bench(inventory, world, policy=policy, crash_after=crash_after)
        reports = []
        for index, row in enumerate(rows):
            if progress is not None:
                bench.progress = lambda text, i=index: progress(i, len(rows), text)
            reports.append(bench.triage(row))
        if progress is not None:
            progress(len(rows), len(rows), "done")
        run = BenchRun(reports, manifest_errors, folder, resumed)
        write_reports(run, world)
        return run
    finally:
        inventory.close()


def write_reports(run: BenchRun, world: World) -> None:
    folder = run.workdir
    (folder / "report.json").write_text(json.dumps(run.to_json(), indent=1), encoding="utf-8")
    suite = ET.Element(
        "testsuite",
        name="gbcs-hil triage",
        tests=str(len(run.reports)),
        failures=str(sum(1 for r in run.reports if not r.correct)),
    )
    for r in run.reports:
        case = ET.SubElement(suite, "testcase", classname="triage", name=r.eui64)
        props = ET.SubElement(case, "properties")
        for key in ("device_type", "state_found", "outcome", "smi_status"):
            ET.SubElement(props, "property", name=key, value=str(getattr(r, key)))
        if not r.correct:
            failed = [s for s in r.steps if s["result"] != "ok"]
            text = "; ".join(f"{s['use_case']}: {s['result']}" for s in failed) or r.outcome
            ET.SubElement(case, "failure", message=f"{r.outcome} ({r.state_found})").text = text
    for error in run.manifest_errors:
        case = ET.SubElement(suite, "testcase", classname="manifest", name=error.split(":")[0])
        ET.SubElement(case, "error", message=error)
    ET.ElementTree(suite).write(folder / "junit.xml", encoding="utf-8", xml_declaration=True)
    if world.capture is not None:
        write_capture(world.capture, folder / "han.pcap", world.clock.epoch.timestamp())


def results_table(run: BenchRun) -> str:
    rows = [("meter", "type", "state found", "steps", "SMI status", "outcome")]
    for r in run.reports:
        ok = sum(1 for s in r.steps if s["result"] == "ok")
        rows.append(
            (
                r.eui64,
                r.device_type,
                r.state_found,
                f"{ok}/{len(r.steps)} ok",
                r.smi_status,
                r.outcome,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(6)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for error in run.manifest_errors:
        lines.append(f"manifest {error}")
    return "\n".join(lines)
