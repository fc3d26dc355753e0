"""The triage bench: per returned meter, find its state, re-establish, check, divorce.

DESIGN §2: a returned meter is (1) fresh or already divorced: it joins the
bench CHF with its install code; (2) still joined to its old HAN: SR 8.9
(CCS07) on the old CHF, SR 8.16 (that meter's entry, CCS03) onto the bench
CHF, and a trust-centre rejoin; or (3) dead: both fail and it is FAULTY.
A reachable meter is checked (CS07 join details, ECS26m identity, ECS52
firmware, ECS35a events; a GSME gets CS07), divorced with SR 8.15 (CS02f)
and taken off the bench CHF's log (SR 8.11 remove).

Every step runs in one SQLite transaction together with its journal row, the
audit entries, the capture frames and the state of the emulated devices it
touched, so a run killed at any instant resumes exactly where the database
says it stopped: a step is either wholly done (and never repeated) or not at
all (and run again from the saved device state).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import re
import signal
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.inventory import Inventory, InventoryError, saved_json
from emulators.mpxn import MpxnError, ProductionProvingPolicy
from emulators.node import NodeState
from emulators.services import NOT_IN_LOG, Reason, ServiceLayer, ServiceResponse, User
from emulators.world import Hub, MeterUnit, World
from emulators.zigbee.install_code import parse_install_code
from gbcs.devicelog import DeviceLog
from gbcs.errors import GbcsError
from gbcs.primitives import RESERVED_EUI64
from gbcs.testpki import DEFAULT_ORGANISATIONS, RemotePartyRole, role_label

__all__ = [
    "CAPTURE_KEY",
    "Bench",
    "ManifestError",
    "ManifestRow",
    "MeterReport",
    "SimulatedCrash",
    "demo_rows",
    "parse_manifest_eui",
    "read_manifest",
]

JOIN_WAIT = 300.0  # simulated seconds the bench waits for a join or a rejoin
DISCONNECT_ATTEMPTS = 3  # CS02f tries before a meter that has not left is given up on
LEAVE_WAIT = 120.0
STEP_SETTLE = 2.0  # simulated seconds after each step's exchange
QA_ESME = ("CS07", "ECS26m", "ECS52", "ECS35a")
QA_GSME = ("CS07",)
BENCH_PLACE = "bench"
STATES = ("fresh", "still-joined", "dead")


class SimulatedCrash(BaseException):
    """Raised by the crash hook: the process 'dies' here (tests of resumability)."""


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One meter on the bench: as a manifest line gives it, or the demo builds it."""

    eui64: bytes
    install_code: bytes
    device_type: str  # "ESME" or "GSME"
    old_chf: bytes | None
    mpxn: str
    line: int = 0

    @property
    def hex(self) -> str:
        return self.eui64.hex().upper()


class ManifestError(GbcsError):
    """The manifest as a whole cannot be read (not text, not CSV): nothing of it is used."""


_EUI_SEPARATORS = re.compile(r"[\s:\-]")
_HEADER_NAMES = frozenset({"eui64", "eui"})


# The test PKI's remote parties (DCC users and the ACB): none of them is a device.
_PARTIES = {
    eui: f"{name} ({role_label(role)})" for name, (eui, role) in DEFAULT_ORGANISATIONS.items()
}


def parse_manifest_eui(text: str, what: str = "EUI-64") -> bytes:
    """A device's EUI-64 from 16 hex digits (``:``, ``-`` or spaces between them allowed).

    Stricter than :func:`gbcs.primitives.eui64`: a wrong length is called that, and the
    reserved values no device carries are refused, since the emulated world would
    otherwise build a meter at the broadcast address.
    """
    digits = _EUI_SEPARATORS.sub("", text)
    if not digits:
        raise GbcsError(f"{what} is empty")
    bad = next((c for c in digits if c not in string.hexdigits), None)
    if bad is not None:
        raise GbcsError(f"{what} {text!r} is not hexadecimal ({bad!r})")
    if len(digits) != 16:
        raise GbcsError(f"{what} {text!r} has {len(digits)} hex digits; an EUI-64 has 16")
    raw = bytes.fromhex(digits)
    if raw in RESERVED_EUI64:
        raise GbcsError(f"{what} {text!r} is {RESERVED_EUI64[raw]}, not a device's address")
    party = _PARTIES.get(raw)
    if party is not None:  # the emulated device would be given that party's keys
        raise GbcsError(f"{what} {text!r} is the test PKI's {party}, not a device's address")
    return raw


# A manifest is a list of meters: this is some 200,000 rows. Anything longer is not one
# (``--manifest /dev/zero`` would otherwise grow until the process is killed).
MAX_MANIFEST_BYTES = 16 * 2**20


def _manifest_text(path: Path | str) -> str:
    """The file as text: UTF-8, with or without the byte-order mark Excel writes."""
    with open(path, "rb") as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: longer than {MAX_MANIFEST_BYTES} bytes: not a manifest")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise ManifestError(
            f"{path}: line {line} is not UTF-8 text (byte 0x{data[e.start]:02X}); "
            "save the manifest as UTF-8 (Excel: 'CSV UTF-8')"
        ) from None


def read_manifest(
    path: Path | str, policy: ProductionProvingPolicy | None = None
) -> tuple[list[ManifestRow], list[str]]:
    """CSV rows ``eui64, install_code, device_type, old_chf, mpxn``; bad rows by line number.

    A header line is allowed before the first row (comment lines may precede it). Good
    rows proceed even when others are bad. A file that is not UTF-8 text or not CSV
    raises :class:`ManifestError`: no row of it can be trusted then.
    """
    policy = policy if policy is not None else ProductionProvingPolicy.from_env()
    reader = csv.reader(io.StringIO(_manifest_text(path), newline=""))
    rows: list[ManifestRow] = []
    errors: list[str] = []
    seen: dict[bytes, int] = {}
    mpxns: dict[str, int] = {}  # an MPxN is linked to one meter at a time
    first = True  # no row yet: a header is still allowed
    number = 1
    try:
        for fields in reader:
            start, number = number, reader.line_num + 1  # a quoted field may span lines
            if any("\n" in x or "\r" in x for x in (f.rstrip("\r\n") for f in fields)):
                # No manifest field holds a line break: a quote left open, which takes in
                # every row after it. None of them can be trusted to be what was meant.
                raise ManifestError(
                    f"{path}: line {start}: not CSV: a quoted field runs on to line "
                    f"{reader.line_num} (a quote left open?)"
                )
            if not fields or all(not x.strip() for x in fields) or fields[0].lstrip()[:1] == "#":
                continue
            header = fields[0].strip().lower().replace("-", "").replace("_", "")
            if first and header in _HEADER_NAMES:
                first = False
                continue
            first = False
            try:
                row = _manifest_row(fields, start, policy)
                if row.eui64 in seen:
                    first_line = seen[row.eui64]
                    raise GbcsError(f"meter {row.hex} is listed twice (first on line {first_line})")
                if row.mpxn in mpxns:
                    raise GbcsError(
                        f"MPxN {row.mpxn} is listed twice (first on line {mpxns[row.mpxn]})"
                    )
                seen[row.eui64] = start
                mpxns[row.mpxn] = start
                rows.append(row)
            except (GbcsError, ValueError) as e:
                errors.append(f"line {start}: {e}")
    except csv.Error as e:
        raise ManifestError(f"{path}: line {reader.line_num}: not CSV: {e}") from None
    return rows, errors


def _manifest_row(fields: list[str], number: int, policy: ProductionProvingPolicy) -> ManifestRow:
    if len(fields) != 5:
        raise GbcsError(
            f"expected 5 fields (eui64, install code, type, old CHF, MPxN), got {len(fields)}"
        )
    eui_text, code_text, kind, old_text, mpxn_text = (x.strip() for x in fields)
    eui = parse_manifest_eui(eui_text)
    code = parse_install_code(code_text)
    if len(code) != 16:
        raise GbcsError("a GBCS install code is 16 bytes (32 hex digits) without its CRC")
    kind = kind.upper()
    if kind not in ("ESME", "GSME"):
        raise GbcsError(f"device type {kind!r} is not ESME or GSME")
    old = parse_manifest_eui(old_text, "old CHF EUI-64") if old_text else None
    try:
        mpxn = str(policy.parse(mpxn_text, "mpan" if kind == "ESME" else "mprn"))
    except MpxnError as e:
        raise GbcsError(f"{e} (an ESME's MPxN is an MPAN, a GSME's an MPRN)") from None
    return ManifestRow(eui, code, kind, old, mpxn, number)


@dataclass(slots=True)
class MeterReport:
    eui64: str
    device_type: str
    state_found: str = "unknown"
    outcome: str = "PENDING"
    smi_status: str = ""
    steps: list[dict[str, Any]] = field(default_factory=list)
    # Whose network operator anchors the meter holds (SR 6.24.1), and whether that is
    # another region's operator than the bench's: it can be re-deployed only there.
    network_operator: str | None = None
    other_region: bool = False

    @property
    def correct(self) -> bool:
        expected = "FAULTY" if self.state_found == "dead" else "PASS"
        return self.outcome == expected

    def to_json(self) -> dict[str, Any]:
        return {
            "eui64": self.eui64,
            "device_type": self.device_type,
            "state_found": self.state_found,
            "outcome": self.outcome,
            "smi_status": self.smi_status,
            "network_operator": self.network_operator,
            "other_region": self.other_region,
            "steps": self.steps,
        }


def _response(response: ServiceResponse) -> tuple[str, dict]:
    return response.result, ({"data": response.data} if response.data else {})


def _crash_after(text: str | None) -> int | None:
    """``GBCS_HIL_CRASH_AFTER``: how many steps commit before the process kills itself."""
    if text is None:
        return None
    try:
        steps = int(text)
    except ValueError:
        steps = -1
    if steps < 0:
        raise GbcsError(f"GBCS_HIL_CRASH_AFTER={text!r}: expected a number of steps (0 or more)")
    return steps


def _saved_count(inventory: Inventory, key: str) -> int:
    """A count the bench keeps in the inventory (0 before the first save)."""
    value = inventory.get(key)
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise InventoryError(f"{inventory.path}: the saved run is damaged ({key})")
    return value


class Bench:
    """A triage bench over the emulated world, resumable from its SQLite database."""

    def __init__(
        self,
        inventory: Inventory,
        world: World,
        *,
        policy: ProductionProvingPolicy | None = None,
        crash_after: int | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        self.inventory = inventory
        self.world = world
        self.services = ServiceLayer(inventory, world, policy)
        pki = world.pki
        supplier = pki.party("supplier")
        self.user = User("supplier", supplier.eui64, RemotePartyRole.SUPPLIER, pki.keystore())
        # A seeded crash for resumability tests; GBCS_HIL_CRASH_AFTER=N makes the
        # process kill itself with SIGKILL before the (N+1)th step commits.
        env = os.environ.get("GBCS_HIL_CRASH_AFTER")
        self.hard_crash = crash_after is None and env is not None
        self.crash_after = _crash_after(env) if self.hard_crash else crash_after
        self.commits = 0
        self.progress = progress
        self._frames_saved = _saved_count(inventory, "capture_frames")
        self._wan_saved = _saved_count(inventory, "capture_wan")
        self._keys_saved = len(_saved_keys(inventory))
        self.touched: set[bytes] = set()
        # The network operator of the bench's region (the world's own anchors).
        self.region = world.anchors.network_operator.party_id.hex().upper()

    # Persistence ----------------------------------------------------------------------
    def _hook(self, where: str) -> None:
        """Crash points: before a step's commit, counted across the run."""
        if self.crash_after is not None:
            self.crash_after -= 1
            if self.crash_after < 0:
                if self.hard_crash:
                    os.kill(os.getpid(), signal.SIGKILL)  # as 'kill -9' would, mid-transaction
                raise SimulatedCrash(where)

    def save_world(self, only: set[bytes] | None = None) -> None:
        db = self.inventory.db
        for key, value in self.world.entities(only).items():
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)",
                ("world:" + key, json.dumps(value, sort_keys=True)),
            )
        capture = self.world.capture
        if capture is not None:
            db.executemany(
                "INSERT INTO capture (time, interface, frame) VALUES (?, ?, ?)",
                [
                    (t, "han:" + place, psdu)
                    for t, place, psdu in capture.frames[self._frames_saved :]
                ],
            )
            db.executemany(
                "INSERT INTO capture (time, interface, frame) VALUES (?, 'wan', ?)",
                [(t, data) for t, data in capture.wan[self._wan_saved :]],
            )
            self._frames_saved = len(capture.frames)
            self._wan_saved = len(capture.wan)
            self.inventory.put("capture_frames", self._frames_saved)
            self.inventory.put("capture_wan", self._wan_saved)
            # The keys go with the frames they decrypt: a link key is learnt once, when a
            # Transport Key is sent, and a resumed run would not learn it again. Keys are
            # only ever added (Capture.add_key), so each step saves just the new ones.
            if len(capture.keys) > self._keys_saved:
                new = itertools.islice(capture.keys.items(), self._keys_saved, None)
                for index, (key, label) in enumerate(new, self._keys_saved):
                    self.inventory.put(f"{CAPTURE_KEY}{index:08d}", [key.hex().upper(), label])
                self._keys_saved = len(capture.keys)

    @staticmethod
    def load_world(inventory: Inventory, **kwargs: Any) -> World | None:
        rows = inventory.db.execute(
            "SELECT key, value FROM kv WHERE key LIKE 'world:%' ORDER BY rowid"
        ).fetchall()
        if not rows:
            return None
        entities = {
            k.removeprefix("world:"): saved_json(v, f"{inventory.path}: {k}") for k, v in rows
        }
        world = World.from_entities(entities, **kwargs)
        capture = world.capture
        if capture is not None:
            han: list[tuple[float, str, bytes]] = []
            wan: list[tuple[float, bytes]] = []
            for seq, t, interface, frame in inventory.db.execute(
                "SELECT seq, time, interface, frame FROM capture ORDER BY seq"
            ):
                if (
                    type(t) not in (int, float)
                    or not isinstance(frame, bytes)
                    or not isinstance(interface, str)
                    or not (interface == "wan" or interface.startswith("han:"))
                ):
                    raise InventoryError(
                        f"{inventory.path}: the saved run is damaged (capture row {seq})"
                    )
                if interface == "wan":
                    wan.append((float(t), frame))
                else:
                    han.append((float(t), interface.removeprefix("han:"), frame))
            # The frames each step saved, counted beside them: one lost or added would
            # shift what the next step saves.
            for key, count, what in (
                ("capture_frames", len(han), "HAN frames"),
                ("capture_wan", len(wan), "WAN messages"),
            ):
                saved = _saved_count(inventory, key)
                if saved != count:
                    raise InventoryError(
                        f"{inventory.path}: the saved run is damaged (its capture holds "
                        f"{count} {what}, {saved} were saved)"
                    )
            # Ahead of any frame a device sent as it was rebuilt: the bench saves from the
            # saved count on, so such a frame went unsaved and the last saved one twice.
            capture.frames[:0] = han
            capture.wan[:0] = wan
            # Saved keys first, in the order learnt; then any the rebuilt devices noted.
            keys = _saved_keys(inventory)
            for key, label in capture.keys.items():
                keys.setdefault(key, label)
            capture.keys.clear()
            capture.keys.update(keys)
        return world

    def step(
        self, meter: MeterReport, number: int, name: str, action: Callable[[], tuple[str, dict]]
    ) -> tuple[str, dict[str, Any]]:
        """Run step ``number`` of a meter once: replay its journal entry if it is done."""
        for done_number, done_name, result, detail in self.inventory.journal(meter.eui64):
            if done_number == number:
                if done_name != name:
                    raise GbcsError(
                        f"journal of {meter.eui64} has step {number} '{done_name}', not '{name}'"
                    )
                meter.steps.append({"use_case": name, "result": result, **detail})
                return result, detail
        if self.progress is not None:
            self.progress(f"{meter.eui64} {name}")
        with self.inventory.transaction():
            result, detail = action()
            # As the journal gives it back on resume (keys sorted, JSON types), so a
            # resumed run reports byte for byte what an uninterrupted one does.
            detail = json.loads(json.dumps(detail, sort_keys=True))
            # What a device does just after answering (a CS02f leave, a CS14 alert) belongs
            # to this step: let it happen before the step's state is committed.
            self.world.run(STEP_SETTLE)
            self.inventory.now = self.world.clock.now
            self.inventory.journal_step(meter.eui64, number, name, result, detail)
            self.save_world(self.touched)
            self._hook(f"{meter.eui64} step {number} {name}")
        self.commits += 1
        meter.steps.append({"use_case": name, "result": result, **detail})
        return result, detail

    # The flow -------------------------------------------------------------------------
    def bench_hub(self) -> Hub:
        for hub in self.world.hubs.values():
            if hub.place == BENCH_PLACE:
                return hub
        raise GbcsError("the world has no bench CHF")

    def triage(self, row: ManifestRow) -> MeterReport:
        """The whole flow for one meter; every device-changing step journaled."""
        world, sr, user = self.world, self.services, self.user
        meter = world.meters[row.eui64]
        bench = self.bench_hub()
        bench_chf = bench.eui64.hex().upper()
        report = MeterReport(row.hex, row.device_type)
        numbers = iter(range(1, 1000))
        self.touched = {row.eui64, bench.eui64}
        if row.old_chf is not None:
            self.touched.add(row.old_chf)

        def run(name: str, action: Callable[[], tuple[str, dict]]) -> tuple[str, dict]:
            return self.step(report, next(numbers), name, action)

        def request(name: str, srv: str, **params: Any) -> tuple[str, dict]:
            return run(name, lambda: _response(sr.submit(user, srv, **params)))

        def place(where: str | None) -> tuple[str, dict]:
            self.world.move(meter, where)
            if where is not None and not meter.node.powered:
                meter.node.power_on()  # a shelved GSME gets its battery; a dead one stays off
            return "ok", {"place": where}

        def joined(name: str) -> bool:
            return run(name, lambda: self._wait_joined(meter, bench))[0] == "ok"

        def admitted() -> tuple[str, dict]:
            """SR 8.11 add onto the bench, noting whether the meter still held a HAN's
            network as the window opened: journaled with the step, as the meter may
            rejoin within it (before a crash and the resume that replays it)."""
            held = meter.node.has_network
            result, detail = _response(
                sr.submit(user, "8.11", chf=bench_chf, device=row.hex, action="add", mpxn=row.mpxn)
            )
            if result == "ok":
                detail["held_network"] = held
            return result, detail

        def joined_how(name: str, held_network: bool) -> str | None:
            """Join the bench; whether by "association" (install code) or "rejoin" (a
            still-joined meter's late trust-centre rejoin). A meter holding a network
            comes back only by a rejoin, one holding none only by associating."""

            def wait() -> tuple[str, dict]:
                result, detail = self._wait_joined(meter, bench)
                if result == "ok":
                    detail["by"] = "rejoin" if held_network else "association"
                return result, detail

            result, detail = run(name, wait)
            return detail.get("by") if result == "ok" else None

        def remove(name: str, chf: str) -> str:
            return request(name, "8.11", chf=chf, device=row.hex, action="remove")[0]

        # The operator plugs the meter in on the bench (and shelves it at the end), so
        # only the meter under test is on the bench's air.
        run("on bench", lambda: place(BENCH_PLACE))
        reached = None
        old_removed = True  # off the old CHF's whitelist (or never on one)
        # The attempts that apply to this meter: its install-code join, and a trust-centre
        # rejoin unless its old CHF's logs were read and do not hold it (DESIGN §2 state 3:
        # a meter is dead only when both attempts were made and both failed).
        needed = {"install-code join"}
        in_current = False  # the 8.9 read found it on its old CHF's whitelist
        unread = False  # its old CHF's logs could not be read: it may be on its whitelist
        old = None if row.old_chf is None else row.old_chf.hex().upper()
        # (2) still joined to its old HAN: CCS07 on the old CHF, 8.16 onto the bench.
        if old is not None:
            result, detail = request("8.9", "8.9", chf=old)
            log_text = None
            if result != "ok":
                unread = True
                needed.add("trust-centre rejoin")  # it may be in that log: not tried
            if result == "ok":
                for which in ("current", "historic"):
                    text = detail.get("data", {}).get(which)
                    if text and DeviceLog.from_base64(text).entry_for(row.eui64) is not None:
                        log_text, in_current = text, which == "current"
                        break
            if log_text is not None:
                needed.add("trust-centre rejoin")
                result, _ = request(
                    "8.16", "8.16", chf=bench_chf, device=row.hex, log=log_text, mpxns=[row.mpxn]
                )
                if result == "ok" and joined("trust-centre rejoin"):
                    reached = "still-joined"
                elif result == "ok":
                    remove("8.11 remove (bench CHF)", bench_chf)
        # (1) fresh or divorced: install-code join to the bench CHF.
        if reached is None:
            result, detail = run("8.11 add (bench CHF)", admitted)
            held = bool(detail.get("held_network"))
            how = joined_how("install-code join", held) if result == "ok" else None
            if how is not None:
                # A still-joined meter whose trust-centre rejoin came after the wait
                # rejoins now: it was not fresh.
                reached = "still-joined" if how == "rejoin" else "fresh"
            elif result == "ok":
                remove("8.11 remove (bench CHF)", bench_chf)
        attempted = {s["use_case"] for s in report.steps} & needed
        # Found on its old CHF's whitelist, it comes off it whichever way it was reached
        # (else it is in two logs), and a dead one too (it is decommissioned); not one
        # the bench could not try both ways, which may still be on that HAN. Found only
        # in the historic log (DESIGN §2: taken off the whitelist before its divorce),
        # it is off the old CHF's whitelist already. Reached although its old CHF's logs
        # could not be read, it may be on that whitelist (a late rejoin says it was): it
        # comes off, and that CHF answering that it does not log it confirms it is off.
        if old is not None and in_current and (reached is not None or attempted == needed):
            old_removed = remove("8.11 remove (old CHF)", old) == "ok"
        elif old is not None and unread and reached is not None:
            result = remove("8.11 remove (old CHF)", old)
            old_removed = result == "ok" or result.endswith(f": {NOT_IN_LOG}")
        if reached is None and attempted != needed:
            # The bench could not make every attempt (a rejected request, an unreadable old
            # CHF): not a finding about the meter, which may well be alive.
            report.state_found = "unknown"
            report.outcome = "FAIL"
        elif reached is None:
            report.state_found = "dead"
            report.outcome = "FAULTY"
            request("decommission", "decommission", device=row.hex)
        else:
            report.state_found = reached
            checks = QA_ESME if row.device_type == "ESME" else QA_GSME
            passed = all([request(u, u, device=row.hex)[0] == "ok" for u in checks])
            result, detail = request("6.24.1", "6.24.1", device=row.hex)
            holders = detail.get("data", {})
            # A meter with no supplier or no network operator anchor cannot be re-deployed
            # anywhere (DESIGN §2): read, and found missing, it does not pass.
            passed = passed and result == "ok" and None not in holders.values()
            held = holders.get("network_operator")
            report.network_operator = held
            report.other_region = held is not None and held != self.region
            left, sound = self._release(row, run, request)
            passed = passed and sound
            if left:
                passed = remove("8.11 remove (bench CHF)", bench_chf) == "ok" and passed
            # Still on its old CHF's whitelist, it would be in two logs: not a clean PASS.
            report.outcome = "PASS" if passed and left and old_removed else "FAIL"
        run("off bench", lambda: place(None))
        device = self.inventory.device(row.hex)
        report.smi_status = "" if device is None else device.smi_status.value
        return report

    def _release(
        self,
        row: ManifestRow,
        run: Callable[[str, Callable[[], tuple[str, dict]]], tuple[str, dict]],
        request: Callable[..., tuple[str, dict]],
    ) -> tuple[bool, bool]:
        """SR 8.15, then (whether the meter left its HAN, whether its answer was sound);
        the divorce is what the meter does, so that is what counts.

        A CS02f that got no answer is tried again (up to DISCONNECT_ATTEMPTS) unless the
        meter left anyway: then it ran it and only its answer was lost, and the SMI is
        brought in line. A meter that answered wrongly (a failure code, an unsigned
        answer or one whose signature does not verify) is at fault, whether or not it
        left; one that answered SUCCESS but keeps its network too. Either way one that
        has not left keeps its bench whitelist entry, the only one that can still reach it.
        """
        meter = self.world.meters[row.eui64]
        for attempt in range(1, DISCONNECT_ATTEMPTS + 1):
            name = "8.15" if attempt == 1 else f"8.15 (attempt {attempt})"
            result = request(name, "8.15", device=row.hex)[0]
            left = run("HAN leave", lambda: self._wait_left(meter))[0] == "ok"
            lost = result.startswith(f"failed: {Reason.NO_RESPONSE}:")
            sound = result == "ok" or lost
            if left and result != "ok":
                evidence = (
                    "the meter left its HAN; its CS02f answer was lost"
                    if lost
                    else f"the meter left its HAN, although its CS02f answer was: {result}"
                )
                run("divorce seen on the HAN", lambda why=evidence: self._divorce_seen(row, why))
            if left or not lost:
                return left, sound
        return False, True

    def _divorce_seen(self, row: ManifestRow, evidence: str) -> tuple[str, dict]:
        return _response(self.services.record_divorce(self.user, row.hex, evidence))

    def _wait_joined(self, meter: MeterUnit, hub: Hub) -> tuple[str, dict]:
        ok = self.world.run_until(lambda: self.world.joined_to(meter) == hub.eui64, JOIN_WAIT)
        if ok:
            return "ok", {"joined_to": hub.eui64.hex().upper()}
        return f"no join within {JOIN_WAIT:g} s", {}

    def _wait_left(self, meter: MeterUnit) -> tuple[str, dict]:
        ok = self.world.run_until(lambda: meter.node.state is NodeState.SCANNING, LEAVE_WAIT)
        return ("ok", {}) if ok else ("meter still holds its network settings", {})

    def run(self, rows: list[ManifestRow]) -> Iterator[MeterReport]:
        for row in rows:
            yield self.triage(row)


CAPTURE_KEY = "capture_key:"  # kv rows "capture_key:<index>": [hex key, label], learnt order


def _saved_keys(inventory: Inventory) -> dict[bytes, str]:
    rows = inventory.db.execute(
        "SELECT value FROM kv WHERE key GLOB ? ORDER BY key", (CAPTURE_KEY + "*",)
    ).fetchall()
    keys: dict[bytes, str] = {}
    for (value,) in rows:
        try:
            item = json.loads(value)
        except (ValueError, RecursionError):  # not JSON, or nested too deep
            item = value
        try:
            text, label = item
            key = bytes.fromhex(text)
            if len(key) != 16 or not isinstance(label, str):
                raise ValueError
        except (TypeError, ValueError):
            shown = repr(item)
            if len(shown) > 80:
                shown = shown[:77] + "..."
            raise GbcsError(
                f"{inventory.path}: the capture keys are damaged ({shown} is not a key)"
            ) from None
        keys[key] = label
    return keys


# --- The embedded demonstration -------------------------------------------------------


def demo_rows(policy: ProductionProvingPolicy | None = None) -> list[ManifestRow]:
    """The demo's meters: two ESMEs and a GSME taken from a premises without divorce
    (one ESME holds another region's network operator anchors), one fresh ESME, one
    dead ESME, and one ESME its supplier took off the old CHF's whitelist (SR 8.11
    remove) without divorcing it, so only the old CHF's historic log holds it.

    Their MPxNs come from the configured dummy ranges (the environment's when
    ``policy`` is None), so the demonstration passes the Production Proving checks
    of whatever range the bench is set to.
    """
    policy = policy if policy is not None else ProductionProvingPolicy.from_env()
    code = bytes.fromhex
    old = code("00DB1234567890A2")
    meters = [
        ("00DB1234567890A0", "83FED3407A939723A5C639B26916D505", "ESME", old, 1),
        ("00DB1234567890A1", "83FED3407A939723A5C639B26916D506", "GSME", old, 1),
        ("00DB1234567890B1", "0123456789ABCDEF0123456789ABCDEF", "ESME", old, 2),
        ("00DB1234567890B2", "00112233445566778899AABBCCDDEEFF", "ESME", None, 3),
        ("00DB1234567890B3", "FFEEDDCCBBAA99887766554433221100", "ESME", old, 4),
        ("00DB1234567890B4", "0F1E2D3C4B5A69788796A5B4C3D2E1F0", "ESME", old, 5),
    ]
    try:
        return [
            ManifestRow(
                code(eui),
                code(install_code),
                kind,
                old_chf,
                str(policy.dummy_mpan(n) if kind == "ESME" else policy.dummy_mprn(n)),
            )
            for eui, install_code, kind, old_chf, n in meters
        ]
    except MpxnError as e:
        raise GbcsError(f"the demonstration cannot make its dummy MPxNs: {e}") from None


DEAD_IN_DEMO = bytes.fromhex("00DB1234567890B3")
OTHER_REGION_IN_DEMO = bytes.fromhex("00DB1234567890B1")
OTHER_REGION = "network_operator2"  # the test PKI's network operator of another region
FRESH_IN_DEMO = bytes.fromhex("00DB1234567890B2")
REMOVED_IN_DEMO = bytes.fromhex("00DB1234567890B4")  # off the old whitelist, not divorced
