"""``gbcs-hil triage``: set up the bench (or find it set up), triage every meter, report.

The working folder holds everything: ``triage.sqlite`` (inventory, audit log,
journal, device state), ``report.json``, ``junit.xml`` and ``han.pcap`` (a
pcapng with the air and the WAN, plus ``han.pcap.keys`` for Wireshark).
Started again on the same folder it resumes where the database says it
stopped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators.chf import CURRENT_LOG_CAPACITY
from emulators.inventory import Inventory
from emulators.mpxn import MpxnError, ProductionProvingPolicy
from emulators.triage import (
    BENCH_PLACE,
    DEAD_IN_DEMO,
    OTHER_REGION,
    OTHER_REGION_IN_DEMO,
    REMOVED_IN_DEMO,
    Bench,
    ManifestRow,
    MeterReport,
    demo_rows,
)
from emulators.wireshark import capture_files, keys_path
from emulators.world import World, check_seed
from gbcs.errors import GbcsError
from gbcs.files import write_together

__all__ = [
    "BenchRun",
    "bench_eui",
    "results_table",
    "run_bench",
    "screen_rows",
    "split_conflicts",
]

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


def _rows_from_json(items: Any, where: str) -> list[ManifestRow]:
    """The rows a run saved; a GbcsError naming the folder's database if damaged."""
    try:
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise TypeError("not a list of rows")
        rows = [
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
        if any(r.device_type not in ("ESME", "GSME") or len(r.eui64) != 8 for r in rows):
            raise ValueError("a row that is not a meter")
    except (KeyError, TypeError, ValueError) as e:
        raise GbcsError(f"{where}: the saved run is damaged (rows: {e})") from None
    return rows


BENCH_EUI_BASE = 0xC000  # the emulated hubs' EUI-64s: 00DB12345678C000, ...C002, ...


def bench_eui(premises: int) -> bytes:
    """The emulated bench CHF's EUI-64: the next hub number after the premises CHFs'."""
    return bytes.fromhex("00DB12345678") + (BENCH_EUI_BASE + 2 * premises).to_bytes(2, "big")


def _hub_euis(chf: bytes) -> tuple[bytes, bytes]:
    """A comms hub's two EUI-64s: its CHF's and its GPF's (the CHF's plus one)."""
    return chf, chf[:7] + bytes(((chf[7] + 1) % 256,))


def _where(row: ManifestRow) -> str:
    return f"line {row.line}" if row.line else f"meter {row.hex}"


def split_conflicts(rows: list[ManifestRow]) -> tuple[list[ManifestRow], list[str]]:
    """The rows the emulated world can hold, and an error per row it cannot, by line.

    Every meter, old CHF (with its GPF) and the bench CHF (with its GPF) is one device
    with its own EUI-64. A meter listed twice is refused on its later line; an old CHF
    that is also a meter, or clashes with an earlier row's hub or with the bench's, is
    refused on the row naming it; a meter at the bench hub's address on its own row.
    """
    errors: dict[int, str] = {}
    meters: dict[bytes, ManifestRow] = {}
    for i, row in enumerate(rows):
        if row.eui64 in meters:
            errors[i] = f"meter {row.hex} is listed twice (also on {_where(meters[row.eui64])})"
        else:
            meters[row.eui64] = row
    hubs: dict[bytes, tuple[bytes, ManifestRow]] = {}  # CHF or GPF EUI-64 -> (CHF, its row)
    for i, row in enumerate(rows):
        if i in errors or row.old_chf is None:
            continue
        old = row.old_chf
        name = f"old CHF {old.hex().upper()}"
        if old == row.eui64:
            errors[i] = f"{name} is the meter's own EUI-64"
            continue
        if old in hubs and hubs[old][0] == old:
            continue  # another meter of the same premises
        gpf = _hub_euis(old)[1]
        for eui in (old, gpf):
            whose = name if eui == old else f"{name}'s GPF would have {eui.hex().upper()}, which"
            if eui in meters:
                errors[i] = f"{whose} is the EUI-64 of the meter on {_where(meters[eui])}"
                break
            if eui in hubs:
                chf, other = hubs[eui]
                hub = f"old CHF {chf.hex().upper()}"
                hub = hub if eui == chf else f"the GPF of {hub}"
                errors[i] = f"{whose} is the EUI-64 of {hub} on {_where(other)}"
                break
        else:
            for eui in _hub_euis(old):
                hubs[eui] = (old, row)
    # An emulated old CHF logs at most CURRENT_LOG_CAPACITY devices, as a real one
    # bounds its device log: later meters of the same old CHF cannot have been joined.
    per_chf: dict[bytes, int] = {}
    for i, row in enumerate(rows):
        if i in errors or row.old_chf is None:
            continue
        per_chf[row.old_chf] = per_chf.get(row.old_chf, 0) + 1
        if per_chf[row.old_chf] > CURRENT_LOG_CAPACITY:
            errors[i] = (
                f"old CHF {row.old_chf.hex().upper()} already has {CURRENT_LOG_CAPACITY} "
                "meters on earlier lines, as many as its device log holds"
            )
    # The bench hub's EUI-64 follows the number of premises, which falls as rows go.
    while True:
        kept = [r for i, r in enumerate(rows) if i not in errors]
        bench = _hub_euis(bench_eui(len({r.old_chf for r in kept if r.old_chf is not None})))
        text = (
            f"the bench CHF's EUI-64 {bench[0].hex().upper()} "
            f"(or its GPF's, {bench[1].hex().upper()})"
        )
        found = False
        for i, row in enumerate(rows):
            if i in errors:
                continue
            if row.eui64 in bench:
                errors[i] = f"meter {row.hex} is {text}"
            elif row.old_chf is not None and set(_hub_euis(row.old_chf)) & set(bench):
                errors[i] = f"old CHF {row.old_chf.hex().upper()} clashes with {text}"
            else:
                continue
            found = True
        if not found:
            return kept, [f"{_where(rows[i])}: {errors[i]}" for i in sorted(errors)]


def setup(
    inventory: Inventory,
    rows: list[ManifestRow],
    seed: int,
    policy: ProductionProvingPolicy,
    dead: frozenset[bytes] = frozenset(),
    other_region: frozenset[bytes] = frozenset(),
    removed: frozenset[bytes] = frozenset(),
    manifest_errors: list[str] | None = None,
) -> World:
    """The world before the bench: premises HANs with the meters joined, then carried
    to the bench without being divorced; fresh meters straight onto the bench. Meters
    in ``other_region`` hold another region's network operator anchors; those in
    ``removed`` were taken off their CHF's whitelist (SR 8.11 remove) before they
    left, still holding its network (DESIGN §2's known failure)."""
    world = World(seed)
    premises: dict[bytes, str] = {}
    for row in rows:
        if row.old_chf is not None and row.old_chf not in premises:
            premises[row.old_chf] = f"premises-{len(premises) + 1}"
            world.add_hub(premises[row.old_chf], row.old_chf, name=f"old CHF {len(premises)}")
    world.add_hub(BENCH_PLACE, bench_eui(len(premises)), name="bench CHF")
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
                network_operator=OTHER_REGION if row.eui64 in other_region else None,
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
            # Rows made in code skip read_manifest's checks: never a real MPxN, all the same.
            try:
                mpxn = str(policy.parse(row.mpxn, "mpan" if row.device_type == "ESME" else "mprn"))
            except MpxnError as e:
                raise GbcsError(f"meter {row.hex}: {e}") from None
            inventory.set_responsible_supplier(mpxn, user.hex)
            inventory.link_mpxn(row.hex, mpxn)
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
        for row in installed:
            if row.eui64 in removed and row.old_chf is not None:
                old = row.old_chf.hex().upper()
                _expect(
                    sr.submit(user, "8.11", chf=old, device=row.hex, action="remove"),
                    "8.11 remove at the premises",
                )
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
        # With the rows, in one transaction: a run killed between the two would resume
        # with none, and its manifest then taken for another (its bad rows differ).
        inventory.put("manifest_errors", list(manifest_errors or []))
        inventory.put("seed", seed)
        inventory.put("policy", _policy_json(policy))
    return world


def _expect(response: Any, what: str) -> None:
    if not response.ok:
        raise GbcsError(f"set-up failed at {what}: {response.result}")


def _policy_json(policy: ProductionProvingPolicy) -> dict[str, Any]:
    return {"lab_only": policy.lab_only, "dummy_ranges": [str(r) for r in policy.dummy_ranges]}


def _check_same_run(folder: Path, inventory: Inventory, seed: int | None, policy: Any) -> int:
    """The folder's seed; refuses a seed or policy other than the one the run started with.

    Resuming applies the folder's settings, so a different one given now would be
    silently ignored (or, for the policy, change the rules half-way through a run).
    """
    saved_seed = inventory.get("seed")
    if type(saved_seed) is not int:
        raise GbcsError(f"{folder / DB_NAME}: the saved run is damaged (seed)")
    if seed is not None and seed != saved_seed:
        raise GbcsError(
            f"{folder} holds a run with --seed {saved_seed}, not {seed}: give --seed "
            f"{saved_seed} to resume it, or another --workdir to start a new run"
        )
    saved = inventory.get("policy")
    if saved is None:  # a folder from before the policy was recorded
        return saved_seed
    if not isinstance(saved, dict):
        raise GbcsError(f"{folder / DB_NAME}: the saved run is damaged (policy)")
    now = _policy_json(policy)
    if saved.get("lab_only") != now["lab_only"]:
        was = "with" if saved.get("lab_only") else "without"
        raise GbcsError(
            f"{folder} holds a run started {was} --lab-only: resume it {was} --lab-only "
            "(and GBCS_HIL_LAB_ONLY), or use another --workdir to start a new run"
        )
    if saved.get("dummy_ranges") != now["dummy_ranges"]:
        then = "; ".join(map(str, saved.get("dummy_ranges") or ["none recorded"]))
        raise GbcsError(
            f"{folder} holds a run started with the dummy ranges "
            f"{then}, not {'; '.join(now['dummy_ranges'])}: "
            "resume it with the same GBCS_HIL_DUMMY_MPAN_PREFIXES / "
            "GBCS_HIL_DUMMY_MPRN_PREFIXES, or use another --workdir"
        )
    return saved_seed


def _error_line(error: str) -> int:
    head = error.split(":", 1)[0]
    number = head.removeprefix("line ")
    return int(number) if number != head and number.isdigit() else 1 << 62


def screen_rows(rows: list[ManifestRow], errors: list[str]) -> tuple[list[ManifestRow], list[str]]:
    """The rows :func:`split_conflicts` keeps; its errors merged into ``errors`` by line."""
    kept, conflicts = split_conflicts(rows)
    return kept, sorted([*errors, *conflicts], key=_error_line)


def _make_folder(folder: Path) -> list[Path]:
    """Create the work folder; returns the folders made (outermost first), to undo."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_folders(missing)
        raise GbcsError(f"cannot make the work folder {folder}: {e.strerror or e}") from None
    if not folder.is_dir():
        raise GbcsError(f"the work folder {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise GbcsError(f"the work folder {folder} is not writable")
    return missing


def _remove_folders(made: list[Path]) -> None:
    for path in reversed(made):
        with contextlib.suppress(OSError):
            path.rmdir()  # only if empty: never anything the run did not make


def _remove_database(path: Path) -> None:
    for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + "-journal"):
        with contextlib.suppress(FileNotFoundError):
            (path.parent / name).unlink()


def run_bench(
    workdir: Path | str,
    rows: list[ManifestRow] | None = None,
    *,
    seed: int | None = None,
    policy: ProductionProvingPolicy | None = None,
    manifest_errors: list[str] | None = None,
    crash_after: int | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> BenchRun:
    """Triage every meter (the demo's when ``rows`` is None); resume a run in progress.

    ``seed`` defaults to 1 for a new run and to the folder's when resuming; a seed or
    policy other than the folder's is refused. Rows the emulated world cannot hold
    (see :func:`split_conflicts`) join ``manifest_errors``. Nothing is left in
    ``workdir`` when the run cannot start.
    """
    folder = Path(workdir)
    policy = policy if policy is not None else ProductionProvingPolicy.from_env()
    errors = list(manifest_errors or [])
    if rows is not None:
        rows, errors = screen_rows(rows, errors)
        if not rows:
            raise GbcsError("no usable row: " + ("; ".join(errors) or "none given"))
    made = _make_folder(folder)
    lock = _lock_folder(folder, made)
    try:
        _check_report_paths(folder)
        return _run_locked(folder, made, rows, seed, policy, errors, crash_after, progress)
    finally:
        os.close(lock)


REPORT_JSON, JUNIT_XML, CAPTURE = "report.json", "junit.xml", "han.pcap"


def _check_report_paths(folder: Path) -> None:
    """A folder where a report goes (where :func:`write_reports` writes) is found before
    the run, not after every step has run (the reports are written last, all or none)."""
    capture = folder / CAPTURE
    for path in (folder / REPORT_JSON, folder / JUNIT_XML, capture, keys_path(capture)):
        if path.is_dir() and not path.is_symlink():
            raise GbcsError(
                f"{path} is a folder: the run's {path.name} cannot be written there; "
                "move it out of the way"
            )


def _lock_folder(folder: Path, made: list[Path]) -> int:
    """One run per work folder, held until this process ends (even by ``kill -9``).

    A second run on the same folder would replay journal rows the first is still
    writing, with devices that never did those steps, and overwrite the device
    state the first saved. The lock is an advisory ``flock`` on the folder itself,
    so nothing is added to it.
    """
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        _remove_folders(made)  # only if still empty: never the other run's files
        raise GbcsError(
            f"another gbcs-hil triage is running in {folder}; "
            "wait for it to finish or use another --workdir"
        ) from None
    return fd


def _run_locked(
    folder: Path,
    made: list[Path],
    rows: list[ManifestRow] | None,
    seed: int | None,
    policy: ProductionProvingPolicy,
    errors: list[str],
    crash_after: int | None,
    progress: Callable[[int, int, str], None] | None,
) -> BenchRun:
    database = folder / DB_NAME
    new_database = not database.exists()
    try:
        inventory = Inventory(database)
    except GbcsError:
        if new_database:
            _remove_database(database)
        _remove_folders(made)
        raise
    try:
        saved = inventory.get("rows")
        resumed = saved is not None
        if resumed:
            stored = _rows_from_json(saved, str(database))
            kept_errors = inventory.get("manifest_errors")
            # None: a run an older kit had killed just after its set-up, before it saved
            # them; the manifest given now has them, if it is that run's.
            saved_errors = errors if kept_errors is None and rows is not None else kept_errors
            saved_errors = saved_errors or []
            if not isinstance(saved_errors, list) or not all(
                isinstance(e, str) for e in saved_errors
            ):
                raise GbcsError(f"{database}: the saved run is damaged (manifest_errors)")
            # The manifest's bad rows too: one that gained a bad row is another manifest,
            # whose new error the saved run's report would not carry.
            if rows is not None and (_rows_json(rows) != saved or errors != saved_errors):
                raise GbcsError(
                    f"{folder} holds a different run; use another --workdir to start a new one"
                )
            seed = _check_same_run(folder, inventory, seed, policy)
            inventory.check_journal()
            rows = stored
            world = Bench.load_world(inventory)
            if world is None:
                raise GbcsError(f"{folder / DB_NAME} has a run but no device state")
            strangers = [row.hex for row in rows if row.eui64 not in world.meters]
            if strangers:
                raise GbcsError(
                    f"{database}: the saved run is damaged (no device state for "
                    f"{', '.join(strangers)})"
                )
            inventory.adopt()
            if kept_errors is None and saved_errors:
                inventory.put("manifest_errors", saved_errors)
            # The emulated devices restart with the bench: give their HAN time to come
            # back (tunnels re-open) before the next command, as an operator would.
            world.run(RESTART_SETTLE)
            errors = saved_errors
        else:
            if inventory.has_run():
                raise GbcsError(f"{database}: the saved run is damaged (its rows are missing)")
            inventory.adopt()
            seed = 1 if seed is None else check_seed(seed)
            try:
                demo = rows is None
                rows = demo_rows(policy) if rows is None else rows
                dead = frozenset({DEAD_IN_DEMO}) if demo else frozenset()
                other = frozenset({OTHER_REGION_IN_DEMO}) if demo else frozenset()
                removed = frozenset({REMOVED_IN_DEMO}) if demo else frozenset()
                world = setup(inventory, rows, seed, policy, dead, other, removed, errors)
            except BaseException:
                if new_database:  # the set-up committed nothing: leave nothing behind
                    inventory.close()
                    _remove_database(database)
                    _remove_folders(made)
                raise
        bench = Bench(inventory, world, policy=policy, crash_after=crash_after)
        reports = []
        for index, row in enumerate(rows):
            if progress is not None:
                bench.progress = lambda text, i=index: progress(i, len(rows), text)
            reports.append(bench.triage(row))
        if progress is not None:
            progress(len(rows), len(rows), "done")
        run = BenchRun(reports, errors, folder, resumed)
        write_reports(run, world)
        return run
    finally:
        inventory.close()


def write_reports(run: BenchRun, world: World) -> None:
    """report.json, junit.xml and the capture, all or none (a full disk or a kill leaves
    the previous ones as they were)."""
    folder = run.workdir
    report = json.dumps(run.to_json(), indent=1).encode("utf-8")
    # A bad manifest row is a test case in error (it could not be run), a meter without
    # the outcome its state calls for one that failed; the counts say the same.
    suite = ET.Element(
        "testsuite",
        name="gbcs-hil triage",
        tests=str(len(run.reports) + len(run.manifest_errors)),
        failures=str(sum(1 for r in run.reports if not r.correct)),
        errors=str(len(run.manifest_errors)),
        skipped="0",
    )
    for r in run.reports:
        case = ET.SubElement(suite, "testcase", classname="triage", name=r.eui64)
        props = ET.SubElement(case, "properties")
        for key in ("device_type", "state_found", "outcome", "smi_status"):
            ET.SubElement(props, "property", name=key, value=str(getattr(r, key)))
        if r.network_operator is not None:
            ET.SubElement(props, "property", name="network_operator", value=r.network_operator)
            ET.SubElement(props, "property", name="other_region", value=str(r.other_region).lower())
        if not r.correct:
            failed = [s for s in r.steps if s["result"] != "ok"]
            text = "; ".join(f"{s['use_case']}: {s['result']}" for s in failed) or r.outcome
            ET.SubElement(case, "failure", message=f"{r.outcome} ({r.state_found})").text = text
    for error in run.manifest_errors:
        case = ET.SubElement(suite, "testcase", classname="manifest", name=error.split(":")[0])
        ET.SubElement(case, "error", message=error)
    junit = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    files = [(folder / REPORT_JSON, report), (folder / JUNIT_XML, junit)]
    if world.capture is not None:
        files += capture_files(world.capture, folder / CAPTURE, world.clock.epoch.timestamp())
    write_together(files)


def results_table(run: BenchRun) -> str:
    rows = [("meter", "type", "state found", "steps", "SMI status", "network operator", "outcome")]
    for r in run.reports:
        ok = sum(1 for s in r.steps if s["result"] == "ok")
        operator = r.network_operator or "-"
        rows.append(
            (
                r.eui64,
                r.device_type,
                r.state_found,
                f"{ok}/{len(r.steps)} ok",
                r.smi_status,
                f"{operator} (other region)" if r.other_region else operator,
                r.outcome,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for error in run.manifest_errors:
        lines.append(f"manifest {error}")
    return "\n".join(lines)
