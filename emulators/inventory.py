"""The Smart Metering Inventory and the bench's audit log, in SQLite.

One database file (WAL) holds the inventory (devices, SMI statuses, CHF
associations, MPxN links, Responsible Suppliers), the append-only audit log of
every request, response and alert, the device logs the DCC handed out (so a
later restore can be traced to its CHF), the triage journal and the emulated
world's device state. Every change happens inside one transaction, so a crash
at any instant leaves all of them consistent with each other.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import string
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gbcs.devicelog import DeviceType
from gbcs.errors import GbcsError

__all__ = [
    "AuditEntry",
    "Inventory",
    "InventoryError",
    "SmiDevice",
    "SmiStatus",
]


class InventoryError(GbcsError):
    """The inventory refuses a change (unknown device, invalid transition)."""


class SmiStatus(enum.StrEnum):
    """SMI statuses used by the seeds (SEC Appendix AB; DUIS status values)."""

    PENDING = "pending"
    WHITELISTED = "whitelisted"
    INSTALLED_NOT_COMMISSIONED = "installed not commissioned"
    COMMISSIONED = "commissioned"
    DECOMMISSIONED = "decommissioned"
    WITHDRAWN = "withdrawn"


# Which status changes the inventory allows, from -> to (the seeds of issue 4).
TRANSITIONS: dict[SmiStatus, frozenset[SmiStatus]] = {
    SmiStatus.PENDING: frozenset(
        {SmiStatus.WHITELISTED, SmiStatus.DECOMMISSIONED, SmiStatus.WITHDRAWN}
    ),
    SmiStatus.WHITELISTED: frozenset(
        {
            SmiStatus.WHITELISTED,
            SmiStatus.PENDING,
            SmiStatus.INSTALLED_NOT_COMMISSIONED,
            SmiStatus.COMMISSIONED,
            SmiStatus.DECOMMISSIONED,
        }
    ),
    SmiStatus.INSTALLED_NOT_COMMISSIONED: frozenset(
        {SmiStatus.COMMISSIONED, SmiStatus.PENDING, SmiStatus.WHITELISTED, SmiStatus.DECOMMISSIONED}
    ),
    SmiStatus.COMMISSIONED: frozenset(
        {SmiStatus.PENDING, SmiStatus.WHITELISTED, SmiStatus.DECOMMISSIONED}
    ),
    SmiStatus.DECOMMISSIONED: frozenset(),
    SmiStatus.WITHDRAWN: frozenset(),
}

JOURNAL_STEPS = "journal_steps"  # kv: the steps committed to the journal
# PRAGMA application_id of the kit's inventories ("GBHL"): another program's SQLite file
# is refused rather than given the kit's tables.
APPLICATION_ID = int.from_bytes(b"GBHL", "big")
TABLES = frozenset(
    {
        "devices",
        "mpxn_links",
        "responsible_suppliers",
        "chf_suppliers",
        "issued_logs",
        "audit",
        "journal",
        "capture",
        "kv",
    }
)
SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    eui64 TEXT PRIMARY KEY,
    device_type TEXT NOT NULL,
    smi_status TEXT NOT NULL,
    chf TEXT,
    install_code TEXT,
    network_operator TEXT,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS mpxn_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    eui64 TEXT NOT NULL,
    mpxn TEXT NOT NULL,
    started REAL NOT NULL,
    ended REAL
);
CREATE INDEX IF NOT EXISTS mpxn_links_by_device ON mpxn_links (eui64);
CREATE INDEX IF NOT EXISTS mpxn_links_by_mpxn ON mpxn_links (mpxn);
CREATE TABLE IF NOT EXISTS responsible_suppliers (
    mpxn TEXT PRIMARY KEY,
    supplier TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chf_suppliers (
    chf TEXT NOT NULL,
    supplier TEXT NOT NULL,
    PRIMARY KEY (chf, supplier)
);
CREATE TABLE IF NOT EXISTS issued_logs (
    log TEXT PRIMARY KEY,
    chf TEXT NOT NULL,
    issued REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    srv TEXT,
    party TEXT,
    device TEXT,
    message_code INTEGER,
    data TEXT,
    detail TEXT
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- INSERT OR REPLACE deletes the old row without a DELETE trigger: refuse it too.
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
WHEN NEW.seq IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TABLE IF NOT EXISTS journal (
    meter TEXT NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL,
    PRIMARY KEY (meter, step)
);
CREATE TABLE IF NOT EXISTS capture (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    interface TEXT NOT NULL,
    frame BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SmiDevice:
    eui64: str
    device_type: str
    smi_status: SmiStatus
    chf: str | None
    install_code: str | None
    network_operator: str | None
    mpxns: tuple[str, ...]


_STATUSES = frozenset(s.value for s in SmiStatus)


def _hex_or_none(value: Any, digits: int) -> bool:
    return value is None or (
        isinstance(value, str)
        and len(value) == digits
        and all(c in string.hexdigits for c in value)
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    time: float
    kind: str
    srv: str | None
    party: str | None
    device: str | None
    message_code: int | None
    data: str | None
    detail: str | None


class Inventory:
    """SQLite-backed SMI, audit log and journal; use :meth:`transaction` for changes."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # Before anything is written to the file.
            untagged, new = self._check_identity(db)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # One transaction: a file killed while being made has all its tables and its
            # tag, or none (then it is new again), never some tables and no tag.
            tag = f"PRAGMA application_id = {APPLICATION_ID};\n" if new else ""
            db.executescript(f"BEGIN;\n{SCHEMA}{tag}COMMIT;")
        except (sqlite3.Error, InventoryError) as e:
            # A folder or file that cannot be written, a damaged or foreign file: say which.
            if db is not None:
                db.close()
            if isinstance(e, InventoryError):
                raise
            raise InventoryError(f"cannot open the inventory {self.path}: {e}") from None
        self.db = db
        # Written before the kit tagged its files: tagged by adopt(), once the run in it has
        # passed its checks (a file refused as damaged is left as it was).
        self.untagged = untagged and not new
        self._depth = 0
        self.now = 0.0  # the bench's clock, set by whoever drives it

    def _check_identity(self, db: sqlite3.Connection) -> tuple[bool, bool]:
        """Refuse another application's SQLite file, or one of ours missing a table, before
        a table is added to it or its journal mode changed. Whether it is untagged, and
        whether it is new (empty): a new one is tagged as it is made, one written before
        the kit tagged its files by :meth:`adopt`."""
        tag = db.execute("PRAGMA application_id").fetchone()[0]
        tables = {
            name
            for (name,) in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        if tag not in (0, APPLICATION_ID):
            raise InventoryError(
                f"{self.path} is not a gbcs-hil inventory (another application's SQLite "
                f"file, application_id {tag:#010x}); use another --workdir"
            )
        missing = sorted(TABLES - tables)
        if tag == APPLICATION_ID and missing:
            raise InventoryError(
                f"{self.path}: the saved run is damaged (table {', '.join(missing)} missing)"
            )
        if tag == 0 and tables and missing:
            raise InventoryError(
                f"{self.path} is not a gbcs-hil inventory (it holds tables "
                f"{', '.join(sorted(tables))}); use another --workdir"
            )
        return tag == 0, not tables

    def adopt(self) -> None:
        """Tag a file written before the kit tagged its files, and start counting its
        journal's steps from what it holds now (a step it lost before cannot be told)."""
        # A file tagged by a kit that did not count yet has no count either.
        if self.get(JOURNAL_STEPS) is None:
            self._count_journal()
        if self.untagged:
            self.db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            self.untagged = False

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All-or-nothing; a nested use is a savepoint, undone alone if it fails."""
        if self._depth:
            name = f"sp{self._depth}"
            self.db.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self.db
            except BaseException:
                self.db.execute(f"ROLLBACK TO {name}")
                self.db.execute(f"RELEASE {name}")
                raise
            else:
                self.db.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
        finally:
            self._depth = 0

    # Devices ------------------------------------------------------------------------
    def add_device(
        self,
        eui64: str,
        device_type: str,
        *,
        status: SmiStatus = SmiStatus.PENDING,
        install_code: str | None = None,
        network_operator: str | None = None,
        chf: str | None = None,
    ) -> None:
        with self.transaction() as db:
            if self._row(eui64) is not None:
                raise InventoryError(f"device {eui64} is already in the inventory")
            db.execute(
                "INSERT INTO devices VALUES (?, ?, ?, ?, ?, ?, ?)",
                (eui64, device_type, status.value, chf, install_code, network_operator, self.now),
            )

    def _row(self, eui64: str) -> tuple | None:
        return self.db.execute(
            "SELECT eui64, device_type, smi_status, chf, install_code, network_operator "
            "FROM devices WHERE eui64 = ?",
            (eui64,),
        ).fetchone()

    def device(self, eui64: str) -> SmiDevice | None:
        row = self._row(eui64)
        if row is None:
            return None
        _, device_type, status, chf, install_code, network_operator = row
        # Stored by the kit, so only a hand edit or a bad restore makes these wrong: named
        # as damage rather than surfacing as a ValueError wherever the field is used.
        damaged = None
        if status not in _STATUSES:
            damaged = f"SMI status {status!r}"
        elif device_type not in DeviceType.__members__:
            damaged = f"device type {device_type!r}"
        elif not _hex_or_none(install_code, 32):
            damaged = f"install code {install_code!r}"
        elif not _hex_or_none(chf, 16):
            damaged = f"CHF {chf!r}"
        if damaged is not None:
            raise InventoryError(f"{self.path}: device {eui64}: its {damaged} is damaged")
        return SmiDevice(
            eui64,
            device_type,
            SmiStatus(status),
            chf,
            install_code,
            network_operator,
            self.mpxns(eui64),
        )

    def require(self, eui64: str) -> SmiDevice:
        device = self.device(eui64)
        if device is None:
            raise InventoryError(f"device {eui64} is not in the Smart Metering Inventory")
        return device

    def devices(self) -> list[SmiDevice]:
        rows = self.db.execute("SELECT eui64 FROM devices ORDER BY eui64").fetchall()
        return [self.require(r[0]) for r in rows]

    def set_status(self, eui64: str, status: SmiStatus) -> None:
        with self.transaction() as db:
            current = self.require(eui64).smi_status
            if status not in TRANSITIONS[current]:
                raise InventoryError(
                    f"SMI status of {eui64} cannot go from '{current}' to '{status}'"
                )
            db.execute(
                "UPDATE devices SET smi_status = ?, updated = ? WHERE eui64 = ?",
                (status.value, self.now, eui64),
            )

    def associate(self, eui64: str, chf: str | None) -> None:
        with self.transaction() as db:
            self.require(eui64)
            hub = None if chf is None else self.device(chf)
            if hub is not None and hub.smi_status in (
                SmiStatus.DECOMMISSIONED,
                SmiStatus.WITHDRAWN,
            ):
                raise InventoryError(f"CHF {chf} is {hub.smi_status}: no device can join it")
            db.execute(
                "UPDATE devices SET chf = ?, updated = ? WHERE eui64 = ?", (chf, self.now, eui64)
            )

    # MPxNs and Responsible Suppliers -------------------------------------------------
    def mpxns(self, eui64: str) -> tuple[str, ...]:
        rows = self.db.execute(
            "SELECT mpxn FROM mpxn_links WHERE eui64 = ? AND ended IS NULL ORDER BY id", (eui64,)
        ).fetchall()
        return tuple(r[0] for r in rows)

    def associated_with(self, chf: str) -> list[str]:
        """The devices the SMI associates with ``chf``."""
        rows = self.db.execute("SELECT eui64 FROM devices WHERE chf = ? ORDER BY eui64", (chf,))
        return [r[0] for r in rows]

    def mpxn_device(self, mpxn: str) -> str | None:
        """The device ``mpxn`` is linked to now (one at most), if any."""
        row = self.db.execute(
            "SELECT eui64 FROM mpxn_links WHERE mpxn = ? AND ended IS NULL", (mpxn,)
        ).fetchone()
        return None if row is None else row[0]

    def link_mpxn(self, eui64: str, mpxn: str) -> None:
        with self.transaction() as db:
            self.require(eui64)
            holder = self.mpxn_device(mpxn)
            if holder is not None and holder != eui64:
                raise InventoryError(f"MPxN {mpxn} is already linked to device {holder}")
            if mpxn not in self.mpxns(eui64):
                db.execute(
                    "INSERT INTO mpxn_links (eui64, mpxn, started) VALUES (?, ?, ?)",
                    (eui64, mpxn, self.now),
                )

    def end_mpxn_links(self, eui64: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE mpxn_links SET ended = ? WHERE eui64 = ? AND ended IS NULL",
                (self.now, eui64),
            )

    def set_responsible_supplier(self, mpxn: str, supplier: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO responsible_suppliers VALUES (?, ?)", (mpxn, supplier)
            )

    def responsible_supplier(self, mpxn: str) -> str | None:
        row = self.db.execute(
            "SELECT supplier FROM responsible_suppliers WHERE mpxn = ?", (mpxn,)
        ).fetchone()
        return None if row is None else row[0]

    def record_chf_supplier(self, chf: str, supplier: str) -> None:
        """``supplier`` is (or was) Responsible Supplier of a CHF: restores may use its logs."""
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO chf_suppliers VALUES (?, ?)", (chf, supplier))

    def chf_suppliers(self, chf: str) -> frozenset[str]:
        rows = self.db.execute("SELECT supplier FROM chf_suppliers WHERE chf = ?", (chf,))
        return frozenset(r[0] for r in rows)

    # Device logs the DCC returned (SR 8.9) -------------------------------------------
    def record_issued_log(self, log_base64: str, chf: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO issued_logs VALUES (?, ?, ?)", (log_base64, chf, self.now)
            )

    def log_source(self, log_base64: str) -> str | None:
        row = self.db.execute("SELECT chf FROM issued_logs WHERE log = ?", (log_base64,)).fetchone()
        return None if row is None else row[0]

    # Audit log --------------------------------------------------------------------
    def audit(
        self,
        kind: str,
        *,
        srv: str | None = None,
        party: str | None = None,
        device: str | None = None,
        message_code: int | None = None,
        data: bytes | str | None = None,
        detail: Any = None,
    ) -> None:
        if isinstance(data, bytes):
            data = data.hex().upper()
        if detail is not None and not isinstance(detail, str):
            # Whatever a caller passed is recorded, JSON or not (a request with a value
            # of the wrong type is refused afterwards, and that refusal is audited too).
            detail = json.dumps(detail, sort_keys=True, default=repr)
        with self.transaction() as db:
            db.execute(
                "INSERT INTO audit (time, kind, srv, party, device, message_code, data, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (self.now, kind, srv, party, device, message_code, data, detail),
            )

    def audit_log(self) -> list[AuditEntry]:
        rows = self.db.execute("SELECT * FROM audit ORDER BY seq").fetchall()
        return [AuditEntry(*r) for r in rows]

    # Journal and key-value state (for resumable runs) -------------------------------------
    def journal(self, meter: str) -> list[tuple[int, str, str, dict[str, Any]]]:
        rows = self.db.execute(
            "SELECT step, name, result, detail FROM journal WHERE meter = ? ORDER BY step",
            (meter,),
        ).fetchall()
        out = []
        for step, name, result, detail in rows:
            value = saved_json(detail, f"{self.path}: journal step {step} of {meter}")
            if not isinstance(value, dict):
                raise InventoryError(f"{self.path}: journal step {step} of {meter} is damaged")
            out.append((step, name, result, value))
        return out

    def journal_step(
        self, meter: str, step: int, name: str, result: str, detail: dict[str, Any]
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO journal VALUES (?, ?, ?, ?, ?)",
                (meter, step, name, result, json.dumps(detail, sort_keys=True)),
            )
            # Counted beside it: a step deleted from the journal would be run again. (Kept
            # as a JSON number, as put() writes it; counted up, not recounted, per step.)
            counted = db.execute(
                "UPDATE kv SET value = CAST(value AS INTEGER) + 1 WHERE key = ?",
                (JOURNAL_STEPS,),
            )
            if counted.rowcount == 0:  # not counted yet
                self._count_journal()

    def _count_journal(self) -> None:
        """Start counting the journal's steps from what it holds."""
        (count,) = self.db.execute("SELECT count(*) FROM journal").fetchone()
        self.put(JOURNAL_STEPS, count)

    def has_run(self) -> bool:
        """Whether a triage has started in it: a step journaled, or device state saved."""
        return any(
            self.db.execute(query).fetchone() is not None
            for query in (
                "SELECT 1 FROM journal LIMIT 1",
                "SELECT 1 FROM devices LIMIT 1",
                "SELECT 1 FROM kv WHERE key GLOB 'world:*' LIMIT 1",
            )
        )

    def check_journal(self) -> None:
        """Refuse a journal that lost or renumbered a committed step, before any step is
        run: the flow would run that step again (its commands sent twice) or skip one."""
        (count,) = self.db.execute("SELECT count(*) FROM journal").fetchone()
        kept = self.get(JOURNAL_STEPS)
        if kept is not None and (type(kept) is not int or kept != count):
            raise InventoryError(
                f"{self.path}: the saved run is damaged (its journal holds {count} steps, "
                f"{kept!r} were committed)"
            )
        for meter, steps, first, last in self.db.execute(
            "SELECT meter, count(*), min(step), max(step) FROM journal GROUP BY meter"
        ):
            if (first, last) != (1, steps):
                raise InventoryError(
                    f"{self.path}: the saved run is damaged (the journal of {meter} holds "
                    f"{steps} steps numbered {first} to {last}, not 1 to {steps})"
                )

    def get(self, key: str) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else saved_json(row[0], f"{self.path}: {key}")

    def put(self, key: str, value: Any) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, json.dumps(value, sort_keys=True))
            )

    def snapshot(self) -> dict[str, Any]:
        """Everything but the audit log's times, for comparing two runs."""
        return {
            "devices": [
                (d.eui64, d.device_type, d.smi_status.value, d.chf, d.mpxns) for d in self.devices()
            ],
            "links": self.db.execute(
                "SELECT eui64, mpxn, ended IS NULL FROM mpxn_links ORDER BY id"
            ).fetchall(),
        }


def saved_json(text: Any, what: str) -> Any:
    """A value the inventory saved as JSON; an InventoryError naming it if damaged."""
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):  # RecursionError: nested too deep
        raise InventoryError(f"{what}: the saved value is damaged (not JSON)") from None
