"""The SQLite Smart Metering Inventory: transactions, the append-only audit log, SMI statuses."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.inventory import SCHEMA, TABLES, TRANSITIONS, Inventory, InventoryError, SmiStatus

METER = "00DB1234567890A0"
OTHER = "00DB1234567890A1"
CHF = "00DB1234567890A2"
MPAN = "9900000000015"
MPRN = "9999990001"
MPAN2 = "9900000000024"


class Boom(Exception):
    pass


@pytest.fixture
def inv(tmp_path: Path) -> Iterator[Inventory]:
    inventory = Inventory(tmp_path / "inventory.sqlite")
    yield inventory
    inventory.close()


def tables(inv: Inventory) -> dict[str, list[tuple]]:
    """Every row of every table (a stricter comparison than :meth:`Inventory.snapshot`)."""
    names = [
        r[0]
        for r in inv.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {n: inv.db.execute(f"SELECT * FROM {n} ORDER BY rowid").fetchall() for n in names}


def fill(inv: Inventory) -> None:
    """One change of every kind."""
    inv.add_device(METER, "ESME", install_code="00" * 16)
    inv.set_status(METER, SmiStatus.WHITELISTED)
    inv.associate(METER, CHF)
    inv.link_mpxn(METER, MPAN)
    inv.set_responsible_supplier(MPAN, "SUPPLIER")
    inv.record_chf_supplier(CHF, "SUPPLIER")
    inv.record_issued_log("TE9H", CHF)
    inv.audit("request", srv="8.11", party="SUPPLIER", device=METER, data=b"\x01\x02")
    inv.journal_step(METER, 1, "8.9", "ok", {"x": 1})
    inv.put("key", {"a": [1, 2]})


# --- Transactions ----------------------------------------------------------------------


def test_a_transaction_commits_everything(inv: Inventory) -> None:
    with inv.transaction():
        fill(inv)
    assert inv.device(METER) is not None
    assert inv.responsible_supplier(MPAN) == "SUPPLIER"
    assert inv.chf_suppliers(CHF) == {"SUPPLIER"}
    assert inv.log_source("TE9H") == CHF
    assert [e.kind for e in inv.audit_log()] == ["request"]
    assert inv.audit_log()[0].data == "0102"
    assert inv.journal(METER) == [(1, "8.9", "ok", {"x": 1})]
    assert inv.get("key") == {"a": [1, 2]}
    assert not inv.db.in_transaction


def test_an_exception_rolls_back_everything_including_audit_rows(inv: Inventory) -> None:
    inv.add_device(OTHER, "GSME")
    inv.audit("before")
    before = tables(inv)
    with pytest.raises(Boom), inv.transaction():
        fill(inv)
        assert inv.device(METER) is not None  # visible inside the transaction
        raise Boom
    assert tables(inv) == before
    assert inv.device(METER) is None
    assert [e.kind for e in inv.audit_log()] == ["before"]
    assert inv.get("key") is None
    assert not inv.db.in_transaction
    # The inventory is usable afterwards.
    inv.add_device(METER, "ESME")
    assert inv.device(METER) is not None


def test_a_base_exception_rolls_back_too(inv: Inventory) -> None:
    with pytest.raises(KeyboardInterrupt), inv.transaction():
        inv.add_device(METER, "ESME")
        inv.audit("request")
        raise KeyboardInterrupt
    assert inv.devices() == []
    assert inv.audit_log() == []


def test_a_failed_change_inside_a_transaction_undoes_the_earlier_ones(inv: Inventory) -> None:
    inv.add_device(METER, "ESME")
    with pytest.raises(InventoryError), inv.transaction():
        inv.set_status(METER, SmiStatus.WHITELISTED)
        inv.audit("changed")
        inv.add_device(METER, "ESME")  # already there
    assert inv.require(METER).smi_status is SmiStatus.PENDING
    assert inv.audit_log() == []


def test_a_nested_transaction_joins_the_outer_one(inv: Inventory) -> None:
    with pytest.raises(Boom), inv.transaction():
        inv.add_device(METER, "ESME")
        with inv.transaction():
            inv.audit("inner")
            inv.link_mpxn(METER, MPAN)
        # The inner block ended without committing anything on its own.
        assert inv.db.in_transaction
        raise Boom
    assert inv.devices() == []
    assert inv.audit_log() == []
    assert tables(inv)["mpxn_links"] == []


def test_an_exception_from_a_nested_transaction_rolls_back_the_outer_one(
    inv: Inventory,
) -> None:
    with pytest.raises(Boom), inv.transaction():
        inv.add_device(METER, "ESME")
        with inv.transaction():
            inv.audit("inner")
            raise Boom
    assert inv.devices() == []
    assert inv.audit_log() == []


def test_a_failed_nested_transaction_is_undone_alone(inv: Inventory) -> None:
    """A request that fails inside a bench step leaves nothing half-done in the step."""
    with inv.transaction():
        inv.add_device(METER, "ESME")
        with pytest.raises(Boom), inv.transaction():
            inv.link_mpxn(METER, MPAN)
            inv.audit("inner")
            raise Boom
        inv.audit("outer")
    assert inv.device(METER) is not None
    assert inv.mpxns(METER) == ()
    assert [e.kind for e in inv.audit_log()] == ["outer"]


def test_nested_changes_commit_with_the_outer_transaction(inv: Inventory) -> None:
    with inv.transaction():
        with inv.transaction(), inv.transaction():
            inv.add_device(METER, "ESME")
        inv.audit("outer")
    assert not inv.db.in_transaction
    assert inv.device(METER) is not None
    assert [e.kind for e in inv.audit_log()] == ["outer"]


def test_committed_changes_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "inventory.sqlite"
    first = Inventory(path)
    with first.transaction():
        fill(first)
    expected = tables(first)
    first.close()
    second = Inventory(path)
    try:
        assert tables(second) == expected
        assert second.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        second.close()


# --- Audit log -------------------------------------------------------------------------


def test_the_audit_log_is_append_only(inv: Inventory) -> None:
    inv.audit("request", srv="8.9", party="P", detail={"b": 2, "a": 1})
    inv.audit("response", srv="8.9", party="P", detail="plain")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        inv.db.execute("UPDATE audit SET kind = 'forged' WHERE seq = 1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        inv.db.execute("DELETE FROM audit WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        inv.db.execute("DELETE FROM audit")
    log = inv.audit_log()
    assert [(e.seq, e.kind) for e in log] == [(1, "request"), (2, "response")]
    assert log[0].detail == '{"a": 1, "b": 2}'
    assert log[1].detail == "plain"


def test_a_refused_audit_change_inside_a_transaction_rolls_it_back(inv: Inventory) -> None:
    inv.audit("kept")
    with pytest.raises(sqlite3.DatabaseError), inv.transaction():
        inv.add_device(METER, "ESME")
        inv.db.execute("DELETE FROM audit")
    assert [e.kind for e in inv.audit_log()] == ["kept"]
    assert inv.devices() == []


def test_audit_rows_carry_the_inventory_clock(inv: Inventory) -> None:
    inv.now = 12.5
    inv.audit("alert", device=CHF, message_code=0x18)
    (entry,) = inv.audit_log()
    assert (entry.time, entry.device, entry.message_code) == (12.5, CHF, 0x18)


# --- SMI statuses ----------------------------------------------------------------------

ALLOWED = [(a, b) for a in SmiStatus for b in TRANSITIONS[a]]
REFUSED = [(a, b) for a, b in itertools.product(SmiStatus, SmiStatus) if b not in TRANSITIONS[a]]


def test_the_transition_table_covers_every_status() -> None:
    assert set(TRANSITIONS) == set(SmiStatus)
    assert len(ALLOWED) + len(REFUSED) == len(SmiStatus) ** 2
    # Spot checks against the seeds: decommissioned and withdrawn are final.
    assert TRANSITIONS[SmiStatus.DECOMMISSIONED] == frozenset()
    assert TRANSITIONS[SmiStatus.WITHDRAWN] == frozenset()
    assert SmiStatus.PENDING in TRANSITIONS[SmiStatus.COMMISSIONED]
    assert SmiStatus.PENDING not in TRANSITIONS[SmiStatus.PENDING]


def test_the_transition_table_is_the_seeds() -> None:
    """ALLOWED and REFUSED are derived from TRANSITIONS, so they cannot catch a change to
    it: the table itself is pinned here, row by row (a pending device may be withdrawn,
    any active one may go back to pending, decommissioned and withdrawn are final)."""
    s = SmiStatus
    seeds = {
        s.PENDING: {s.WHITELISTED, s.DECOMMISSIONED, s.WITHDRAWN},
        s.WHITELISTED: {
            s.WHITELISTED,
            s.PENDING,
            s.INSTALLED_NOT_COMMISSIONED,
            s.COMMISSIONED,
            s.DECOMMISSIONED,
        },
        s.INSTALLED_NOT_COMMISSIONED: {s.COMMISSIONED, s.PENDING, s.WHITELISTED, s.DECOMMISSIONED},
        s.COMMISSIONED: {s.PENDING, s.WHITELISTED, s.DECOMMISSIONED},
        s.DECOMMISSIONED: set(),
        s.WITHDRAWN: set(),
    }
    assert seeds == TRANSITIONS


@pytest.mark.parametrize(("start", "end"), ALLOWED, ids=lambda s: str(s).replace(" ", "-"))
def test_every_allowed_transition(inv: Inventory, start: SmiStatus, end: SmiStatus) -> None:
    inv.add_device(METER, "ESME", status=start)
    inv.now = 5.0
    inv.set_status(METER, end)
    assert inv.require(METER).smi_status is end
    assert inv.db.execute("SELECT updated FROM devices").fetchone()[0] == 5.0


@pytest.mark.parametrize(("start", "end"), REFUSED, ids=lambda s: str(s).replace(" ", "-"))
def test_every_refused_transition(inv: Inventory, start: SmiStatus, end: SmiStatus) -> None:
    inv.add_device(METER, "ESME", status=start)
    with pytest.raises(InventoryError) as info:
        inv.set_status(METER, end)
    assert f"'{start}'" in str(info.value)
    assert f"'{end}'" in str(info.value)
    assert METER in str(info.value)
    assert inv.require(METER).smi_status is start


def test_a_new_device_is_pending_and_listed(inv: Inventory) -> None:
    inv.add_device(METER, "ESME", install_code="AB" * 16, network_operator="NO")
    inv.add_device(CHF, "CHF", status=SmiStatus.COMMISSIONED)
    device = inv.require(METER)
    assert device.smi_status is SmiStatus.PENDING
    assert (device.device_type, device.install_code, device.network_operator) == (
        "ESME",
        "AB" * 16,
        "NO",
    )
    assert device.chf is None and device.mpxns == ()
    assert [d.eui64 for d in inv.devices()] == sorted([METER, CHF])
    with pytest.raises(InventoryError, match="already"):
        inv.add_device(METER, "GSME")
    assert inv.require(METER).device_type == "ESME"


@pytest.mark.parametrize(
    "change",
    [
        lambda inv: inv.require(OTHER),
        lambda inv: inv.set_status(OTHER, SmiStatus.WHITELISTED),
        lambda inv: inv.associate(OTHER, CHF),
        lambda inv: inv.link_mpxn(OTHER, MPAN),
    ],
    ids=["require", "set_status", "associate", "link_mpxn"],
)
def test_unknown_devices_are_refused(inv: Inventory, change) -> None:
    inv.add_device(METER, "ESME")
    before = tables(inv)
    with pytest.raises(InventoryError, match=OTHER):
        change(inv)
    assert tables(inv) == before
    assert inv.device(OTHER) is None


def test_association(inv: Inventory) -> None:
    inv.add_device(METER, "ESME")
    inv.associate(METER, CHF)
    assert inv.require(METER).chf == CHF
    inv.associate(METER, None)
    assert inv.require(METER).chf is None


# --- MPxNs, suppliers, issued logs -------------------------------------------------------


def test_mpxn_links_are_recorded_once_and_ended(inv: Inventory) -> None:
    inv.add_device(METER, "GSME")
    inv.add_device(OTHER, "ESME")
    inv.link_mpxn(METER, MPRN)
    inv.link_mpxn(METER, MPRN)  # no duplicate
    inv.link_mpxn(METER, MPAN)
    inv.link_mpxn(OTHER, MPAN2)
    assert inv.mpxns(METER) == (MPRN, MPAN)
    assert inv.require(METER).mpxns == (MPRN, MPAN)
    assert inv.mpxn_device(MPAN) == METER
    inv.now = 9.0
    inv.end_mpxn_links(METER)
    assert inv.mpxns(METER) == ()
    assert inv.mpxns(OTHER) == (MPAN2,)
    assert inv.mpxn_device(MPAN) is None
    rows = inv.db.execute("SELECT eui64, mpxn, ended FROM mpxn_links ORDER BY id").fetchall()
    assert rows == [(METER, MPRN, 9.0), (METER, MPAN, 9.0), (OTHER, MPAN2, None)]
    # A new link after the end is a new row; the ended ones stay as history.
    inv.link_mpxn(METER, MPRN)
    assert inv.mpxns(METER) == (MPRN,)
    assert len(inv.db.execute("SELECT * FROM mpxn_links").fetchall()) == 4


def test_an_mpxn_is_linked_to_one_device_at_a_time(inv: Inventory) -> None:
    """The SMI links an MPxN to one meter: a second active link is refused, unchanged."""
    inv.add_device(METER, "ESME")
    inv.add_device(OTHER, "ESME")
    inv.link_mpxn(METER, MPAN)
    with pytest.raises(InventoryError, match=f"{MPAN} is already linked to device {METER}"):
        inv.link_mpxn(OTHER, MPAN)
    assert (inv.mpxns(METER), inv.mpxns(OTHER)) == ((MPAN,), ())
    inv.end_mpxn_links(METER)  # once the first link ends, the MPxN is free
    inv.link_mpxn(OTHER, MPAN)
    assert inv.mpxn_device(MPAN) == OTHER


def test_responsible_suppliers(inv: Inventory) -> None:
    assert inv.responsible_supplier(MPAN) is None
    inv.set_responsible_supplier(MPAN, "S1")
    assert inv.responsible_supplier(MPAN) == "S1"
    inv.set_responsible_supplier(MPAN, "S2")  # change of supplier
    assert inv.responsible_supplier(MPAN) == "S2"
    assert inv.responsible_supplier(MPRN) is None


def test_chf_suppliers_accumulate(inv: Inventory) -> None:
    assert inv.chf_suppliers(CHF) == frozenset()
    inv.record_chf_supplier(CHF, "S1")
    inv.record_chf_supplier(CHF, "S1")
    inv.record_chf_supplier(CHF, "S2")
    inv.record_chf_supplier("00DB12345678C002", "S3")
    assert inv.chf_suppliers(CHF) == {"S1", "S2"}


def test_issued_log_provenance(inv: Inventory) -> None:
    assert inv.log_source("AAAA") is None
    inv.record_issued_log("AAAA", CHF)
    inv.record_issued_log("BBBB", "00DB12345678C002")
    inv.record_issued_log("AAAA", "00DB12345678C002")  # the first issue stands
    assert inv.log_source("AAAA") == CHF
    assert inv.log_source("BBBB") == "00DB12345678C002"
    assert inv.log_source("AAAa") is None  # exact text only


# --- Journal, kv, snapshot --------------------------------------------------------------


def test_journal_steps_in_order_and_never_twice(inv: Inventory) -> None:
    inv.journal_step(METER, 2, "8.16", "ok", {"b": 1})
    inv.journal_step(METER, 1, "8.9", "ok", {"data": {"current": "AA"}})
    inv.journal_step(OTHER, 1, "8.11 add (bench CHF)", "rejected: X", {})
    assert inv.journal(METER) == [
        (1, "8.9", "ok", {"data": {"current": "AA"}}),
        (2, "8.16", "ok", {"b": 1}),
    ]
    assert inv.journal(OTHER) == [(1, "8.11 add (bench CHF)", "rejected: X", {})]
    assert inv.journal(CHF) == []
    with pytest.raises(sqlite3.IntegrityError):
        inv.journal_step(METER, 1, "8.9", "ok", {})
    assert len(inv.journal(METER)) == 2


def test_a_journal_step_whose_detail_is_not_an_object_is_named_as_damaged(
    inv: Inventory,
) -> None:
    inv.journal_step(METER, 1, "8.9", "ok", {})
    inv.db.execute("UPDATE journal SET detail = '[1]'")
    with pytest.raises(InventoryError, match=f"journal step 1 of {METER} is damaged"):
        inv.journal(METER)


def test_no_device_is_associated_with_a_decommissioned_or_withdrawn_chf(inv: Inventory) -> None:
    """The inventory itself refuses it, whatever a caller checked before."""
    inv.add_device(METER, "ESME")
    for status in (SmiStatus.DECOMMISSIONED, SmiStatus.WITHDRAWN):
        inv.db.execute("DELETE FROM devices WHERE eui64 = ?", (CHF,))
        inv.add_device(CHF, "CHF", status=status)
        with pytest.raises(InventoryError, match=f"CHF {CHF} is {status}: no device can join"):
            inv.associate(METER, CHF)
        assert inv.require(METER).chf is None


def test_kv(inv: Inventory) -> None:
    assert inv.get("rows") is None
    inv.put("rows", [{"eui64": METER}])
    inv.put("seed", 3)
    inv.put("seed", 4)
    assert inv.get("rows") == [{"eui64": METER}]
    assert inv.get("seed") == 4


def test_snapshot(inv: Inventory) -> None:
    inv.add_device(OTHER, "GSME")
    inv.add_device(METER, "ESME", status=SmiStatus.WHITELISTED)
    inv.associate(METER, CHF)
    inv.link_mpxn(METER, MPAN)
    inv.link_mpxn(OTHER, MPRN)
    inv.end_mpxn_links(OTHER)
    inv.audit("request")
    assert inv.snapshot() == {
        "devices": [
            (METER, "ESME", "whitelisted", CHF, (MPAN,)),
            (OTHER, "GSME", "pending", None, ()),
        ],
        "links": [(METER, MPAN, 1), (OTHER, MPRN, 0)],
    }
    # Times are not part of it: the same changes at another time compare equal.
    snap = inv.snapshot()
    inv.now = 100.0
    inv.associate(METER, CHF)
    assert inv.snapshot() == snap
    inv.set_status(METER, SmiStatus.PENDING)
    assert inv.snapshot() != snap


def test_a_database_that_cannot_be_opened_is_an_inventory_error(tmp_path: Path) -> None:
    # Not sqlite3.OperationalError escaping as a traceback: an error naming the file.
    missing = tmp_path / "no such folder" / "inventory.sqlite"
    with pytest.raises(InventoryError, match=r"cannot open the inventory .*inventory\.sqlite"):
        Inventory(missing)
    assert not missing.parent.exists()
    garbage = tmp_path / "not a database.sqlite"
    garbage.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(InventoryError, match="not a database"):
        Inventory(garbage)


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        ("smi_status", "Pending", "SMI status 'Pending'"),
        ("device_type", "EMSE", "device type 'EMSE'"),
        ("install_code", "AB" * 15 + "AG", f"install code '{'AB' * 15}AG'"),
        ("install_code", "AB", "install code 'AB'"),
        ("chf", "00DB", "CHF '00DB'"),
    ],
)
def test_a_damaged_device_row_is_named_as_damage(
    inv: Inventory, column: str, value: str, named: str
) -> None:
    """Only a hand edit or a bad restore makes them so; they were ValueErrors (a traceback
    and the exit status of a failed meter) wherever the field was used (audit 8, triage 4)."""
    inv.add_device(METER, "ESME", install_code="AB" * 16)
    inv.db.execute(f"UPDATE devices SET {column} = ? WHERE eui64 = ?", (value, METER))
    with pytest.raises(InventoryError, match=f"device {METER}: its {named} is damaged"):
        inv.require(METER)


@pytest.mark.parametrize("damage", ["{not json", "[" * 100_000], ids=["not JSON", "too deep"])
def test_a_damaged_saved_value_is_an_inventory_error_naming_it(inv: Inventory, damage: str) -> None:
    """Not JSON, or JSON nested deeper than the parser recurses (a RecursionError)."""
    inv.put("world:meta", {"ok": 1})
    with inv.transaction() as db:
        db.execute("UPDATE kv SET value = ? WHERE key = ?", (damage, "world:meta"))
    with pytest.raises(InventoryError, match=r"world:meta: the saved value is damaged"):
        inv.get("world:meta")


def _tables(path: Path) -> tuple[set[str], str, int]:
    db = sqlite3.connect(path)
    try:
        tables = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
        (tag,) = db.execute("PRAGMA application_id").fetchone()
        return tables, mode, tag
    finally:
        db.close()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("CREATE TABLE notes (value TEXT)", r"not a gbcs-hil inventory \(it holds tables notes\)"),
        (
            "PRAGMA application_id = 1234",
            r"not a gbcs-hil inventory \(another application's SQLite file, application_id "
            r"0x000004d2\)",
        ),
    ],
)
def test_another_programs_sqlite_file_is_refused_untouched(
    tmp_path: Path, setup: str, message: str
) -> None:
    """It was given the kit's nine tables and switched to WAL, then failed on a column
    it lacked (helper audit)."""
    path = tmp_path / "triage.sqlite"
    db = sqlite3.connect(path)
    db.execute(setup)
    db.commit()
    db.close()
    before = _tables(path)
    with pytest.raises(InventoryError, match=message):
        Inventory(path)
    assert _tables(path) == before


def test_an_inventory_is_tagged_and_one_from_before_the_tag_is_tagged_once_adopted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inventory.sqlite"
    Inventory(path).close()
    tables, _, tag = _tables(path)
    assert tag == int.from_bytes(b"GBHL", "big") and tables >= TABLES
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 0")  # as the kit wrote it before
    db.execute("INSERT INTO journal VALUES ('M', 1, 'CS07', 'ok', '{}')")
    db.commit()
    db.close()
    old = Inventory(path)
    try:
        assert old.untagged and _tables(path)[2] == 0  # not yet: its run may be refused
        old.adopt()
        assert not old.untagged and old.get("journal_steps") == 1  # counted from now on
    finally:
        old.close()
    assert _tables(path)[2] == int.from_bytes(b"GBHL", "big")


def test_the_tables_checked_are_the_schemas(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "schema.sqlite")
    db.executescript(SCHEMA)
    assert {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")} - {
        "sqlite_sequence"
    } == TABLES
    db.close()


def test_a_file_whose_making_failed_part_way_is_made_again_not_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its tables and its tag are made in one transaction: a kill part-way left some
    tables and no tag, which every later open refused as another program's file."""
    path = tmp_path / "inventory.sqlite"
    monkeypatch.setattr(
        "emulators.inventory.SCHEMA", SCHEMA + "CREATE TABLE kv (clash TEXT);\n"
    )  # fails after every table is made
    with pytest.raises(InventoryError, match="cannot open the inventory"):
        Inventory(path)
    monkeypatch.undo()
    assert _tables(path)[0] == set() and _tables(path)[2] == 0
    Inventory(path).close()
    assert _tables(path)[0] >= TABLES


def test_a_tagged_file_with_no_step_count_is_counted_from_its_journal(tmp_path: Path) -> None:
    """Tagged by a kit that did not count yet: counting up from nothing gave 1 over a
    journal of many steps, and the next resume was refused (helper review)."""
    path = tmp_path / "inventory.sqlite"
    inv = Inventory(path)
    try:
        for step in (1, 2, 3):
            inv.journal_step(METER, step, "CS07", "ok", {})
        inv.db.execute("DELETE FROM kv WHERE key = 'journal_steps'")
        inv.journal_step(METER, 4, "CS07", "ok", {})
        assert inv.get("journal_steps") == 4
        inv.db.execute("DELETE FROM kv WHERE key = 'journal_steps'")
        inv.adopt()
        assert inv.get("journal_steps") == 4
        inv.check_journal()
    finally:
        inv.close()
