"""The DCC service layer: SEC Appendix AB 6.1 checks, Production Proving and SMI transitions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from emulators.device import asn1_reply
from emulators.inventory import TRANSITIONS, AuditEntry, Inventory, SmiStatus
from emulators.mpxn import ProductionProvingPolicy, dummy_mpan, dummy_mprn
from emulators.node import NodeState
from emulators.services import Reason, ServiceLayer, ServiceResponse, User
from emulators.world import Hub, MeterUnit, World
from gbcs import crypto
from gbcs.catalogue import CATALOGUE
from gbcs.devicelog import DeviceLog, WhitelistChangeAlert
from gbcs.errors import DecodeError, GbcsError
from gbcs.frame import decode_message
from gbcs.joins import JoinDetails
from gbcs.keys import KeyUsage, MemoryKeyStore
from gbcs.security import CheckResult, SecurityContext
from gbcs.testpki import RemotePartyRole

SEED = 3
OLD = bytes.fromhex("00DB1234567890A2")
ESME = bytes.fromhex("00DB1234567890A0")  # joined to the old CHF at the premises
GSME = bytes.fromhex("00DB1234567890A1")  # joined to the old CHF at the premises
FRESH = bytes.fromhex("00DB1234567890B2")  # pre-notified, on the bench, in no log
TYPE2 = bytes.fromhex("00DB1234567890D1")
CODES = {
    ESME: bytes.fromhex("83FED3407A939723A5C639B26916D505"),
    GSME: bytes.fromhex("83FED3407A939723A5C639B26916D506"),
    FRESH: bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
}
MPXN = {ESME: str(dummy_mpan(1)), GSME: str(dummy_mprn(1)), FRESH: str(dummy_mpan(3))}
REAL_MPAN = "1312345678907"  # valid check digit, not in the dummy range
BAD_MPAN = "9900000000010"  # dummy range, wrong check digit (dummy_mpan(1) ends in 5)


def h(eui: bytes) -> str:
    return eui.hex().upper()


@dataclass
class Bed:
    inventory: Inventory
    world: World
    sl: ServiceLayer
    supplier: User
    supplier2: User
    operator: User
    old: Hub
    bench: Hub

    def meter(self, eui: bytes) -> MeterUnit:
        return self.world.meters[eui]

    def submit(self, user: User, srv: str, **params: Any) -> ServiceResponse:
        return self.sl.submit(user, srv, **params)

    def read_old_log(self) -> str:
        """SR 8.9 on the old CHF by the supplier: the current log, as the DCC issued it."""
        response = self.submit(self.supplier, "8.9", chf=h(OLD))
        assert response.ok, response.result
        return response.data["current"]

    def state(self) -> tuple[dict[str, list[tuple]], dict[str, Any]]:
        """Every inventory table but the audit log, and every emulated device's state."""
        db = self.inventory.db
        names = [
            r[0]
            for r in db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'audit'"
            )
        ]
        rows = {n: db.execute(f"SELECT * FROM {n} ORDER BY rowid").fetchall() for n in names}
        return rows, self.world.to_json()

    def set_status(self, eui: bytes, status: SmiStatus) -> None:
        """Put a device in any status for a test, whatever the transition rules say."""
        self.inventory.db.execute(
            "UPDATE devices SET smi_status = ? WHERE eui64 = ?", (status.value, h(eui))
        )

    def rejected(
        self, user: User, srv: str, reason: Reason, **params: Any
    ) -> tuple[ServiceResponse, list[AuditEntry]]:
        """Submit; require the rejection, and that it changed nothing but two audit rows."""
        before = self.state()
        seen = len(self.inventory.audit_log())
        response = self.submit(user, srv, **params)
        assert response.status == "rejected", response.result
        assert response.reason is reason, response.result
        assert not response.ok
        assert self.state() == before
        new = self.inventory.audit_log()[seen:]
        assert [e.kind for e in new] == ["request", "response"]
        assert all(e.srv == srv and e.party == user.hex for e in new)
        assert f'"reason": "{reason}"' in (new[1].detail or "")
        assert '"status": "rejected"' in (new[1].detail or "")
        return response, new

    def fresh_add_rejected(
        self, user: User, reason: Reason, **params: Any
    ) -> tuple[ServiceResponse, list[AuditEntry]]:
        """SR 8.11 add of the fresh meter onto the bench CHF, required to be refused."""
        bench = h(self.bench.eui64)
        return self.rejected(
            user, "8.11", reason, chf=bench, device=h(FRESH), action="add", **params
        )


def user(world: World, name: str, role: RemotePartyRole) -> User:
    return User(name, world.pki.party(name).eui64, role, world.pki.keystore())


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[Bed]:
    world = World(SEED)
    old = world.add_hub("premises", OLD, name="old CHF")
    bench = world.add_hub("bench", name="bench CHF")
    inventory = Inventory(tmp_path / "services.sqlite")
    sl = ServiceLayer(inventory, world, ProductionProvingPolicy())
    b = Bed(
        inventory,
        world,
        sl,
        user(world, "supplier", RemotePartyRole.SUPPLIER),
        user(world, "supplier2", RemotePartyRole.SUPPLIER),
        user(world, "network_operator", RemotePartyRole.NETWORK_OPERATOR),
        old,
        bench,
    )
    for hub in (old, bench):
        assert b.submit(b.supplier, "8.14.1", chf=h(hub.eui64)).ok
    for eui, kind, place in (
        (ESME, "esme", "premises"),
        (GSME, "gsme", "premises"),
        (FRESH, "esme", "bench"),
    ):
        world.add_meter(place, kind, eui, install_code=CODES[eui])
        response = b.submit(
            b.supplier,
            "pre-notification",
            device=h(eui),
            device_type=kind.upper(),
            install_code=CODES[eui].hex().upper(),
        )
        assert response.ok, response.result
        inventory.set_responsible_supplier(MPXN[eui], b.supplier.hex)
        inventory.link_mpxn(h(eui), MPXN[eui])
    for eui in (ESME, GSME):
        response = b.submit(b.supplier, "8.11", chf=h(OLD), device=h(eui), action="add")
        assert response.ok, response.result
        meter = world.meters[eui]
        assert world.run_until(lambda m=meter: world.joined_to(m) == OLD, 600)
    world.run(10)
    yield b
    inventory.close()


def test_the_bed(bed: Bed) -> None:
    inv = bed.inventory
    assert inv.require(h(OLD)).smi_status is SmiStatus.COMMISSIONED
    assert inv.chf_suppliers(h(OLD)) == {bed.supplier.hex}
    for eui in (ESME, GSME):
        device = inv.require(h(eui))
        assert (device.smi_status, device.chf) == (SmiStatus.WHITELISTED, h(OLD))
    assert inv.require(h(FRESH)).smi_status is SmiStatus.PENDING
    assert set(bed.old.chf.current) == {ESME, GSME}
    assert not bed.bench.chf.current


# --- Eligible user role ------------------------------------------------------------------


def test_a_network_operator_may_not_add_a_meter(bed: Bed) -> None:
    bed.inventory.set_responsible_supplier(MPXN[FRESH], bed.operator.hex)
    bed.fresh_add_rejected(bed.operator, Reason.ROLE_NOT_ELIGIBLE)
    # The same request from a supplier that is Responsible Supplier goes through.
    bed.inventory.set_responsible_supplier(MPXN[FRESH], bed.supplier.hex)
    response = bed.submit(
        bed.supplier, "8.11", chf=h(bed.bench.eui64), device=h(FRESH), action="add"
    )
    assert response.ok, response.result


def test_a_network_operator_may_not_disconnect_a_meter(bed: Bed) -> None:
    _, rows = bed.rejected(bed.operator, "8.15", Reason.ROLE_NOT_ELIGIBLE, device=h(ESME))
    assert "network_operator may not send service request 8.15" in rows[1].detail
    assert bed.world.joined_to(bed.meter(ESME)) == OLD
    assert bed.submit(bed.supplier, "8.15", device=h(ESME)).ok


def test_a_network_operator_may_not_restore_a_log(bed: Bed) -> None:
    log = bed.read_old_log()
    bed.inventory.record_chf_supplier(h(OLD), bed.operator.hex)  # not what stops it
    params = {"chf": h(bed.bench.eui64), "device": h(ESME), "log": log, "mpxns": [MPXN[ESME]]}
    bed.rejected(bed.operator, "8.16", Reason.ROLE_NOT_ELIGIBLE, **params)
    bed.rejected(bed.operator, "8.12.1", Reason.ROLE_NOT_ELIGIBLE, chf=params["chf"], log=log)
    bed.rejected(
        bed.operator,
        "pre-notification",
        Reason.ROLE_NOT_ELIGIBLE,
        device=h(TYPE2),
        device_type="TYPE2",
    )
    assert bed.submit(bed.supplier, "8.16", **params).ok


def test_a_network_operator_may_read(bed: Bed) -> None:
    assert bed.submit(bed.operator, "8.9", chf=h(OLD)).ok
    response = bed.submit(bed.operator, "CS07", device=h(ESME))
    assert response.ok, response.result
    assert response.data["partners"] == []
    assert bed.submit(bed.operator, "ECS52", device=h(ESME)).ok
    bed.rejected(bed.operator, "ECS26m", Reason.ROLE_NOT_ELIGIBLE, device=h(ESME))


def test_an_unknown_request_is_refused(bed: Bed) -> None:
    bed.rejected(bed.supplier, "9.99", Reason.INVALID_PARAMETER, device=h(ESME))
    bed.rejected(bed.supplier, "CS99", Reason.INVALID_PARAMETER, device=h(ESME))


# --- SMI status ----------------------------------------------------------------------------

ACTIVE = [
    SmiStatus.COMMISSIONED,
    SmiStatus.INSTALLED_NOT_COMMISSIONED,
    SmiStatus.WHITELISTED,
    SmiStatus.PENDING,
]
INACTIVE = [SmiStatus.DECOMMISSIONED, SmiStatus.WITHDRAWN]


@pytest.mark.parametrize("status", ACTIVE, ids=str)
def test_a_read_is_accepted_in_an_active_status(bed: Bed, status: SmiStatus) -> None:
    bed.set_status(ESME, status)
    response = bed.submit(bed.supplier, "ECS26m", device=h(ESME))
    assert response.ok, response.result


@pytest.mark.parametrize("status", INACTIVE, ids=str)
def test_a_read_is_refused_in_an_inactive_status(bed: Bed, status: SmiStatus) -> None:
    bed.set_status(ESME, status)
    for use_case in ("CS07", "ECS26m", "ECS52", "ECS35a"):
        response, _ = bed.rejected(bed.supplier, use_case, Reason.SMI_STATUS, device=h(ESME))
        assert f"SMI status '{status}': {use_case} needs it" in response.text
    bed.rejected(
        bed.supplier, "8.11", Reason.SMI_STATUS, chf=h(OLD), device=h(ESME), action="remove"
    )
    log = bed.read_old_log()
    bed.rejected(
        bed.supplier,
        "8.16",
        Reason.SMI_STATUS,
        chf=h(bed.bench.eui64),
        device=h(ESME),
        log=log,
        mpxns=[MPXN[ESME]],
    )


def test_a_decommissioned_chf_is_not_read(bed: Bed) -> None:
    bed.inventory.set_status(h(OLD), SmiStatus.DECOMMISSIONED)
    bed.rejected(bed.supplier, "8.9", Reason.SMI_STATUS, chf=h(OLD))


def test_a_device_not_in_the_inventory_is_refused(bed: Bed) -> None:
    bed.rejected(bed.supplier, "CS07", Reason.UNKNOWN_DEVICE, device=h(TYPE2))
    bed.rejected(bed.supplier, "8.15", Reason.UNKNOWN_DEVICE, device=h(TYPE2))
    bed.rejected(bed.supplier, "8.9", Reason.UNKNOWN_DEVICE, chf="00DB12345678FFFF")


@pytest.mark.parametrize("status", INACTIVE, ids=str)
def test_the_critical_disconnect_is_not_refused_for_its_smi_status(
    bed: Bed, status: SmiStatus
) -> None:
    bed.set_status(ESME, status)
    response = bed.submit(bed.supplier, "8.15", device=h(ESME))
    assert response.ok, response.result
    device = bed.inventory.require(h(ESME))
    # The meter really left its HAN: the SMI follows, in the status it may keep.
    assert device.chf is None and device.mpxns == ()
    assert device.smi_status is status
    assert SmiStatus.PENDING not in TRANSITIONS[status]
    assert bed.world.run_until(lambda: bed.meter(ESME).node.state is NodeState.SCANNING, 120)


# --- Responsible Supplier (8.11 add) ----------------------------------------------------


def test_only_the_responsible_supplier_adds_a_meter(bed: Bed) -> None:
    bench = h(bed.bench.eui64)
    rows = {"chf": bench, "device": h(FRESH), "action": "add"}
    response, _ = bed.rejected(bed.supplier2, "8.11", Reason.NOT_RESPONSIBLE_SUPPLIER, **rows)
    assert MPXN[FRESH] in response.text
    bed.rejected(bed.supplier2, "8.11", Reason.NOT_RESPONSIBLE_SUPPLIER, mpxn=MPXN[FRESH], **rows)
    # An MPxN nobody is Responsible Supplier for, on a meter with no MPxN linked.
    bed.inventory.end_mpxn_links(h(FRESH))
    bed.rejected(
        bed.supplier, "8.11", Reason.NOT_RESPONSIBLE_SUPPLIER, mpxn=str(dummy_mpan(9)), **rows
    )
    bed.inventory.link_mpxn(h(FRESH), MPXN[FRESH])
    # A change of supplier: now supplier2 may, and supplier may not.
    bed.inventory.set_responsible_supplier(MPXN[FRESH], bed.supplier2.hex)
    bed.rejected(bed.supplier, "8.11", Reason.NOT_RESPONSIBLE_SUPPLIER, **rows)
    response = bed.submit(bed.supplier2, "8.11", **rows)
    assert response.ok, response.result


def test_8_11_add_whitelists_and_associates(bed: Bed) -> None:
    bench = bed.bench
    assert bed.inventory.require(h(FRESH)).smi_status is SmiStatus.PENDING
    seen = len(bed.inventory.audit_log())
    response = bed.submit(bed.supplier, "8.11", chf=h(bench.eui64), device=h(FRESH), action="add")
    assert response.ok, response.result
    device = bed.inventory.require(h(FRESH))
    assert (device.smi_status, device.chf) == (SmiStatus.WHITELISTED, h(bench.eui64))
    assert FRESH in bench.chf.current
    sent = [e for e in bed.inventory.audit_log()[seen:] if e.kind == "gbcs sent"]
    assert len(sent) == 1 and sent[0].srv == "8.11"
    # The meter then joins with its install code.
    assert bed.world.run_until(lambda: bed.world.joined_to(bed.meter(FRESH)) == bench.eui64, 300)


def test_8_11_remove(bed: Bed) -> None:
    response = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(GSME), action="remove")
    assert response.ok, response.result
    assert GSME not in bed.old.chf.current
    assert bed.inventory.require(h(GSME)).chf is None
    again = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(GSME), action="remove")
    assert (again.status, again.reason) == ("failed", Reason.DEVICE_FAILURE)
    bed.rejected(
        bed.supplier, "8.11", Reason.INVALID_PARAMETER, chf=h(OLD), device=h(GSME), action="swap"
    )


# --- Log provenance (8.16, 8.12.1) -------------------------------------------------------


def test_a_log_the_dcc_never_issued_is_refused(bed: Bed) -> None:
    issued = bed.read_old_log()
    log = DeviceLog.from_base64(issued)
    forged = DeviceLog(log.extended_pan_id, log.entries).to_base64()  # same entries, no date
    assert forged != issued and DeviceLog.from_base64(forged).entry_for(ESME) is not None
    bench = h(bed.bench.eui64)
    bed.rejected(
        bed.supplier,
        "8.16",
        Reason.LOG_NOT_FROM_SUPPLIERS_CHF,
        chf=bench,
        device=h(ESME),
        log=forged,
        mpxns=[MPXN[ESME]],
    )
    bed.rejected(bed.supplier, "8.12.1", Reason.LOG_NOT_FROM_SUPPLIERS_CHF, chf=bench, log=forged)
    bed.rejected(bed.supplier, "8.12.1", Reason.INVALID_PARAMETER, chf=bench, log="not base64!")
    assert bed.submit(bed.supplier, "8.12.1", chf=bench, log=issued).ok
    assert set(bed.bench.chf.current) == {ESME, GSME}


def test_a_log_from_a_chf_the_sender_never_supplied_is_refused(bed: Bed) -> None:
    log = bed.read_old_log()
    bench = h(bed.bench.eui64)
    params = {"chf": bench, "device": h(ESME), "log": log, "mpxns": [MPXN[ESME]]}
    response, _ = bed.rejected(bed.supplier2, "8.16", Reason.LOG_NOT_FROM_SUPPLIERS_CHF, **params)
    assert "supplier2" in response.text
    bed.rejected(bed.supplier2, "8.12.1", Reason.LOG_NOT_FROM_SUPPLIERS_CHF, chf=bench, log=log)
    # supplier2 was Responsible Supplier of that CHF once: then it may.
    bed.inventory.record_chf_supplier(h(OLD), bed.supplier2.hex)
    response = bed.submit(bed.supplier2, "8.16", **params)
    assert response.ok, response.result


def test_8_16_for_a_meter_not_in_the_log_is_refused(bed: Bed) -> None:
    log = bed.read_old_log()
    bed.rejected(
        bed.supplier,
        "8.16",
        Reason.ENTRY_NOT_IN_LOG,
        chf=h(bed.bench.eui64),
        device=h(FRESH),
        log=log,
        mpxns=[MPXN[FRESH]],
    )


# --- Production Proving: MPxNs and excluded SRVs --------------------------------------------


@pytest.mark.parametrize(
    ("mpxns", "reason"),
    [
        ([REAL_MPAN], Reason.INVALID_MPXN),
        ([BAD_MPAN], Reason.INVALID_MPXN),
        ([MPXN[ESME], "12345"], Reason.INVALID_MPXN),
        ([], Reason.INVALID_PARAMETER),
    ],
    ids=["real", "bad-check-digit", "too-short", "none"],
)
def test_8_16_mpxns_are_checked(bed: Bed, mpxns: list[str], reason: Reason) -> None:
    log = bed.read_old_log()
    params = {"chf": h(bed.bench.eui64), "device": h(ESME), "log": log, "mpxns": mpxns}
    bed.rejected(bed.supplier, "8.16", reason, **params)


def test_8_11_add_mpxn_is_checked(bed: Bed) -> None:
    bed.inventory.set_responsible_supplier(REAL_MPAN, bed.supplier.hex)
    for value in (REAL_MPAN, BAD_MPAN):
        bed.fresh_add_rejected(bed.supplier, Reason.INVALID_MPXN, mpxn=value)


def test_lab_only_accepts_real_mpxns_but_not_invalid_ones(bed: Bed) -> None:
    bed.sl.policy = ProductionProvingPolicy(lab_only=True)
    log = bed.read_old_log()
    params = {"chf": h(bed.bench.eui64), "device": h(ESME), "log": log}
    bed.rejected(bed.supplier, "8.16", Reason.INVALID_MPXN, mpxns=[BAD_MPAN], **params)
    response = bed.submit(bed.supplier, "8.16", mpxns=[REAL_MPAN], **params)
    assert response.ok, response.result
    assert REAL_MPAN in bed.inventory.require(h(ESME)).mpxns


@pytest.mark.parametrize("srv", ["6.15", "6.21", "6.23", "6.15.1", "6.23.2", "SRV6.21", "srv 6.15"])
def test_excluded_service_requests_are_refused(bed: Bed, srv: str) -> None:
    for sender in (bed.supplier, bed.operator):
        response, _ = bed.rejected(sender, srv, Reason.EXCLUDED_SRV, device=h(ESME))
        assert "6." in response.text


# --- SMI transitions on success ----------------------------------------------------------


def test_8_16_associates_records_the_mpxn_and_whitelists(bed: Bed) -> None:
    bench = bed.bench
    log = bed.read_old_log()
    bed.inventory.set_status(h(ESME), SmiStatus.PENDING)
    extra = str(dummy_mpan(8))
    seen = len(bed.inventory.audit_log())
    response = bed.submit(
        bed.supplier,
        "8.16",
        chf=h(bench.eui64),
        device=h(ESME),
        log=log,
        mpxns=[MPXN[ESME], extra],
    )
    assert response.ok, response.result
    device = bed.inventory.require(h(ESME))
    assert device.smi_status is SmiStatus.WHITELISTED
    assert device.chf == h(bench.eui64)
    assert device.mpxns == (MPXN[ESME], extra)
    # Only that meter's entry went to the bench CHF, with the old CHF's link key hash.
    assert set(bench.chf.current) == {ESME}
    assert bench.chf.current[ESME] == bed.old.chf.current[ESME]
    assert bench.chf.extended_pan_id == bed.old.chf.extended_pan_id
    assert [e.kind for e in bed.inventory.audit_log()[seen:]].count("gbcs sent") == 1
    # The GSME is untouched; the ESME, carried to the bench, rejoins it (trust-centre swap-out).
    assert bed.inventory.require(h(GSME)).chf == h(OLD)
    bed.world.move(bed.meter(ESME), "bench")
    assert bed.world.run_until(lambda: bed.world.joined_to(bed.meter(ESME)) == bench.eui64, 300)


def test_8_16_leaves_a_type_2_device_unwhitelisted(bed: Bed) -> None:
    code = "00112233445566778899AABBCCDDEE00"
    mpxn = str(dummy_mpan(5))
    response = bed.submit(
        bed.supplier, "pre-notification", device=h(TYPE2), device_type="TYPE2", install_code=code
    )
    assert response.ok, response.result
    bed.inventory.set_responsible_supplier(mpxn, bed.supplier.hex)
    response = bed.submit(
        bed.supplier, "8.11", chf=h(OLD), device=h(TYPE2), action="add", mpxn=mpxn
    )
    assert response.ok, response.result
    log = bed.read_old_log()
    assert DeviceLog.from_base64(log).entry_for(TYPE2) is not None
    bed.inventory.set_status(h(TYPE2), SmiStatus.PENDING)
    response = bed.submit(
        bed.supplier, "8.16", chf=h(bed.bench.eui64), device=h(TYPE2), log=log, mpxns=[mpxn]
    )
    assert response.ok, response.result
    device = bed.inventory.require(h(TYPE2))
    assert device.smi_status is SmiStatus.PENDING
    assert device.chf == h(bed.bench.eui64)
    assert device.mpxns == (mpxn,)
    assert set(bed.bench.chf.current) == {TYPE2}
    # 8.15 is for ESMEs and GSMEs only.
    bed.rejected(bed.supplier, "8.15", Reason.INVALID_PARAMETER, device=h(TYPE2))


def test_8_15_sets_pending_disassociates_and_ends_mpxn_links(bed: Bed) -> None:
    inv = bed.inventory
    inv.link_mpxn(h(ESME), str(dummy_mpan(8)))
    response = bed.submit(bed.supplier, "8.15", device=h(ESME))
    assert response.ok, response.result
    device = inv.require(h(ESME))
    assert (device.smi_status, device.chf, device.mpxns) == (SmiStatus.PENDING, None, ())
    links = [row for row in inv.snapshot()["links"] if row[0] == h(ESME)]
    assert links == [(h(ESME), MPXN[ESME], 0), (h(ESME), str(dummy_mpan(8)), 0)]
    assert inv.require(h(GSME)).mpxns == (MPXN[GSME],)  # only that meter
    assert bed.world.run_until(lambda: bed.meter(ESME).node.state is NodeState.SCANNING, 120)
    assert bed.world.joined_to(bed.meter(GSME)) == OLD
    # A meter without a CHF in the SMI cannot be disconnected again.
    bed.rejected(bed.supplier, "8.15", Reason.INVALID_PARAMETER, device=h(ESME))


def test_8_15_is_signed_by_the_supplier_then_maced(bed: Bed) -> None:
    seen = len(bed.inventory.audit_log())
    assert bed.submit(bed.supplier, "8.15", device=h(ESME)).ok
    rows = [e for e in bed.inventory.audit_log()[seen:] if e.srv == "8.15"]
    kinds = [e.kind for e in rows]
    assert kinds[:3] == ["request", "pre-command", "gbcs sent"]
    assert kinds[-1] == "response"
    assert kinds.count("gbcs sent") == 1 and kinds.count("pre-command") == 1

    precommand, _ = decode_message(bytes.fromhex(rows[1].data))
    command, parts = decode_message(bytes.fromhex(rows[2].data))
    assert not precommand.signature and precommand.mac is None
    assert precommand.header.business_originator == bed.supplier.party_id
    assert command.header == precommand.header
    assert command.header.message_code == CATALOGUE.disconnect_code
    assert command.header.business_target == ESME
    assert command.signature and command.mac

    pki = bed.world.pki
    everyone = SecurityContext(pki.keystore())
    assert everyone.check_signature(command, parts) is CheckResult.VALID
    assert everyone.check_mac(command, parts) is CheckResult.VALID  # the ACB's MAC

    def only(name: str) -> SecurityContext:
        store = MemoryKeyStore()
        party = pki.party(name)
        store.add(party.eui64, KeyUsage.DS, public=party.private_key(KeyUsage.DS).public_key())
        return SecurityContext(store)

    assert only("supplier").check_signature(command, parts) is CheckResult.VALID
    assert only("supplier2").check_signature(command, parts) is CheckResult.NO_KEY
    # A signature by supplier2's key over the same command does not verify as supplier's.
    unsigned = dataclasses.replace(precommand, signature=b"", mac=None)
    private = pki.party("supplier2").private_key(KeyUsage.DS)
    other = dataclasses.replace(
        command, signature=crypto.ecdsa_sign(private, unsigned.signed_data())
    )
    assert only("supplier").check_signature(other) is CheckResult.INVALID
    tampered = bytearray(command.signature)
    tampered[5] ^= 1
    forged = dataclasses.replace(command, signature=bytes(tampered))
    assert everyone.check_signature(forged) is CheckResult.INVALID


def test_whitelist_alerts_are_audited(bed: Bed) -> None:
    seen = len(bed.inventory.audit_log())
    bench = bed.bench
    assert bed.submit(bed.supplier, "8.11", chf=h(bench.eui64), device=h(FRESH), action="add").ok
    bed.world.run(5)
    alerts = [e for e in bed.inventory.audit_log()[seen:] if e.kind == "alert"]
    assert alerts, "no CS14 alert was audited"
    assert {(e.device, e.message_code, e.detail) for e in alerts} == {
        (h(bench.eui64), WhitelistChangeAlert.MESSAGE_CODE, "CS14")
    }
    assert WhitelistChangeAlert.MESSAGE_CODE == 0x0018
    # The alerts of the set-up were audited too (one per add at the premises, at least).
    before = [e for e in bed.inventory.audit_log()[:seen] if e.kind == "alert"]
    assert {e.device for e in before} == {h(OLD)}


def test_status_changes_are_notified_and_decommission_ends_links(bed: Bed) -> None:
    before = len(bed.inventory.audit_log())
    response = bed.submit(bed.supplier, "decommission", device=h(ESME))
    assert response.ok, response.result
    device = bed.inventory.require(h(ESME))
    assert (device.smi_status, device.chf, device.mpxns) == (SmiStatus.DECOMMISSIONED, None, ())
    notes = [e for e in bed.inventory.audit_log()[before:] if e.kind == "notification"]
    assert len(notes) == 1 and notes[0].device == h(ESME)
    assert '"smi_status": "decommissioned"' in (notes[0].detail or "")
    # Decommissioned is final: nothing may bring it back.
    again = bed.submit(bed.supplier, "decommission", device=h(ESME))
    assert again.status == "rejected" and "cannot go from 'decommissioned'" in again.text


# --- 6.24.1 Retrieve Device Security Credentials (CS02a) -----------------------------------


def test_credentials_retrieval_names_the_anchors_the_meter_holds(bed: Bed) -> None:
    for who in (bed.supplier, bed.operator):  # DUIS: suppliers and network operators
        response = bed.submit(who, "6.24.1", device=h(ESME))
        assert response.ok, response.result
        assert response.data == {
            "supplier": bed.supplier.hex,
            "network_operator": bed.operator.hex,
        }
    # Sent as RTDS 6.24.1 has it: by the ACB, MAC'd, not signed, to the meter.
    sent = [e.data for e in bed.inventory.audit_log() if e.kind == "gbcs sent"]
    assert sent[-1] is not None
    command, _ = decode_message(bytes.fromhex(sent[-1]))
    assert command.header.message_code == 0x0008
    assert command.header.business_originator == bed.world.pki.party("acb").eui64
    assert command.header.business_target == ESME
    assert command.signature == b""


def test_credentials_retrieval_finds_a_meter_of_another_region(bed: Bed) -> None:
    other = bed.world.add_meter(
        "bench", "esme", install_code=CODES[FRESH], network_operator="network_operator2"
    )
    mpxn = str(dummy_mpan(7))
    assert bed.submit(
        bed.supplier,
        "pre-notification",
        device=h(other.eui64),
        device_type="ESME",
        install_code=CODES[FRESH].hex().upper(),
    ).ok
    bed.inventory.set_responsible_supplier(mpxn, bed.supplier.hex)
    bed.inventory.link_mpxn(h(other.eui64), mpxn)
    chf = h(bed.bench.eui64)
    assert bed.submit(bed.supplier, "8.11", chf=chf, device=h(other.eui64), action="add").ok
    assert bed.world.run_until(lambda: bed.world.joined_to(other) == bed.bench.eui64, 600)
    response = bed.submit(bed.supplier, "6.24.1", device=h(other.eui64))
    assert response.ok, response.result
    other_no = bed.world.pki.party("network_operator2").eui64.hex().upper()
    assert response.data["network_operator"] == other_no != bed.operator.hex
    # This region's operator reads nothing from it: the meter discards its command.
    failed = bed.submit(bed.operator, "CS07", device=h(other.eui64))
    assert (failed.status, failed.reason) == ("failed", Reason.NO_RESPONSE)


def test_credentials_retrieval_checks_come_first(bed: Bed) -> None:
    bed.rejected(bed.supplier, "6.24.1", Reason.UNKNOWN_DEVICE, device=h(TYPE2))
    bed.rejected(bed.supplier, "6.24.1", Reason.INVALID_PARAMETER, device=h(FRESH))  # no CHF
    bed.set_status(ESME, SmiStatus.DECOMMISSIONED)
    bed.rejected(bed.supplier, "6.24.1", Reason.SMI_STATUS, device=h(ESME))


def test_credentials_retrieval_from_a_silent_meter_fails(bed: Bed) -> None:
    bed.meter(ESME).node.power_off()
    response = bed.submit(bed.supplier, "6.24.1", device=h(ESME))
    assert (response.status, response.reason) == ("failed", Reason.NO_RESPONSE)
    assert response.data == {}


@pytest.mark.parametrize(
    ("srv", "params", "message"),
    [
        ("CS07", {"device": []}, "device must be a string, not list"),
        ("ECS26m", {"device": {}}, "device must be a string, not dict"),
        ("8.9", {"chf": 5}, "chf must be a string, not int"),
        ("8.16", {"chf": "x", "device": "y", "log": "z", "mpxns": "123"}, "mpxns must be a list"),
        ("8.16", {"chf": "x", "device": "y", "log": "z", "mpxns": [1]}, "mpxns must be a list"),
    ],
)
def test_parameters_of_the_wrong_type_are_rejected_naming_them(
    bed: Bed, srv: str, params: dict[str, Any], message: str
) -> None:
    response, _ = bed.rejected(bed.supplier, srv, Reason.INVALID_PARAMETER, **params)
    assert message in response.text


def test_a_full_device_log_refusal_names_the_dlms_results(bed: Bed) -> None:
    bed.old.chf.current_capacity = 2  # the ESME and the GSME fill it
    response = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(FRESH), action="add")
    assert (response.status, response.reason) == ("failed", Reason.DEVICE_FAILURE)
    assert response.text == (
        "the CHF refused the add (DLMS other-reason, other-reason, other-reason)"
    )
    assert FRESH not in bed.old.chf.current
    assert bed.inventory.require(h(FRESH)).smi_status is SmiStatus.PENDING  # unchanged


# --- The SMI never gets into an impossible state -----------------------------------------


def test_8_11_add_checks_the_meters_own_mpxn_and_links_a_new_one(bed: Bed) -> None:
    """AB 6.1: the Responsible Supplier check is on the meter's MPxN; one a supplier
    holds elsewhere does not open another supplier's meter, and one given for a meter
    with none (after 8.15) is linked rather than dropped."""
    bench = h(bed.bench.eui64)
    other = str(dummy_mpan(7))
    bed.inventory.set_responsible_supplier(other, bed.supplier2.hex)
    rows = {"chf": bench, "device": h(FRESH), "action": "add"}
    response, _ = bed.rejected(bed.supplier2, "8.11", Reason.INVALID_MPXN, mpxn=other, **rows)
    assert f"{other} is not an MPxN of {h(FRESH)} ({MPXN[FRESH]})" in response.text
    # A GSME's MPRN for an ESME, and an MPxN linked to another meter.
    bed.inventory.end_mpxn_links(h(FRESH))
    response, _ = bed.rejected(bed.supplier, "8.11", Reason.INVALID_MPXN, mpxn="9999990007", **rows)
    assert "not an MPAN, the MPxN of an ESME" in response.text
    response, _ = bed.rejected(bed.supplier, "8.11", Reason.INVALID_MPXN, mpxn=MPXN[ESME], **rows)
    assert f"linked to device {h(ESME)}" in response.text
    bed.inventory.set_responsible_supplier(other, bed.supplier.hex)
    response = bed.submit(bed.supplier, "8.11", mpxn=other, **rows)
    assert response.ok, response.result
    assert bed.inventory.require(h(FRESH)).mpxns == (other,)


def test_8_16_refuses_an_mpxn_of_another_meter_or_kind(bed: Bed) -> None:
    log = bed.read_old_log()
    params = {"chf": h(bed.bench.eui64), "device": h(ESME), "log": log}
    response, _ = bed.rejected(
        bed.supplier, "8.16", Reason.INVALID_MPXN, mpxns=[MPXN[FRESH]], **params
    )
    assert f"{MPXN[FRESH]} is linked to device {h(FRESH)}" in response.text
    response, _ = bed.rejected(
        bed.supplier, "8.16", Reason.INVALID_MPXN, mpxns=[MPXN[GSME]], **params
    )
    assert f"{MPXN[GSME]} is not an MPAN, the MPxN of an ESME" in response.text


def test_nothing_joins_a_decommissioned_chf(bed: Bed) -> None:
    """The target CHF's SMI status is checked too (AB 6.1), and a CHF that devices are
    associated with cannot be decommissioned: no device is left on a dead hub."""
    response, _ = bed.rejected(
        bed.supplier, "decommission", Reason.INVALID_PARAMETER, device=h(OLD)
    )
    assert f"{h(ESME)}, {h(GSME)} associated with it" in response.text
    log = bed.read_old_log()
    bench = h(bed.bench.eui64)
    assert bed.submit(bed.supplier, "decommission", device=bench).ok
    bed.rejected(
        bed.supplier,
        "8.16",
        Reason.SMI_STATUS,
        chf=bench,
        device=h(ESME),
        log=log,
        mpxns=[MPXN[ESME]],
    )
    bed.rejected(bed.supplier, "8.11", Reason.SMI_STATUS, chf=bench, device=h(FRESH), action="add")
    assert bed.inventory.associated_with(bench) == []


def test_8_11_remove_from_its_chf_is_no_longer_whitelisted(bed: Bed) -> None:
    response = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(ESME), action="remove")
    assert response.ok, response.result
    device = bed.inventory.require(h(ESME))
    assert (device.smi_status, device.chf) == (SmiStatus.PENDING, None)
    assert device.mpxns == (MPXN[ESME],)  # still the meter at that meter point
    notes = [e for e in bed.inventory.audit_log() if e.kind == "notification"]
    assert notes[-1].device == h(ESME) and '"smi_status": "pending"' in (notes[-1].detail or "")


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"device": "nonsense", "device_type": "ESME"}, "device 'nonsense' is not 16 hex digits"),
        (
            {"device": "00DB1234567890C9", "device_type": "ESME", "install_code": "XYZ"},
            "install_code 'XYZ' is not 32 hex digits",
        ),
        (
            {"device": "00DB1234567890C9", "device_type": "ESME", "network_operator": "1"},
            "network_operator '1' is not 16 hex digits",
        ),
        # The right length is not enough: every character must be a hex digit.
        ({"device": "00DB1234567890CZ", "device_type": "ESME"}, "is not 16 hex digits"),
        (
            {"device": "00DB1234567890C9", "device_type": "ESME", "install_code": "G" * 32},
            "is not 32 hex digits",
        ),
    ],
)
def test_pre_notification_refuses_malformed_identifiers(
    bed: Bed, params: dict[str, Any], message: str
) -> None:
    """A malformed install code once stored made a later 8.11 add raise ValueError."""
    response, _ = bed.rejected(bed.supplier, "pre-notification", Reason.INVALID_PARAMETER, **params)
    assert message in response.text


def test_eui64_parameters_are_taken_in_either_case(bed: Bed) -> None:
    response = bed.submit(
        bed.supplier, "pre-notification", device="00db1234567890c9", device_type="ESME"
    )
    assert response.ok, response.result
    assert bed.inventory.device("00DB1234567890C9") is not None
    again = bed.submit(
        bed.supplier, "pre-notification", device="00DB1234567890C9", device_type="ESME"
    )
    assert again.status == "rejected" and "already in the inventory" in again.text
    assert bed.submit(bed.supplier, "8.9", chf=h(OLD).lower()).ok


def test_a_response_that_cannot_be_read_fails_the_request_and_is_audited(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device's unreadable answer (possible with real hardware) used to escape submit()
    with no response row in the audit log."""

    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise DecodeError("dlms", "backup_PAN", 7, "not a device log")

    monkeypatch.setattr("emulators.services.DeviceLogs.from_response", unreadable)
    seen = len(bed.inventory.audit_log())
    response = bed.submit(bed.supplier, "8.9", chf=h(OLD))
    assert (response.status, response.reason) == ("failed", Reason.DEVICE_FAILURE)
    assert "response not understood" in response.text and "not a device log" in response.text
    kinds = [e.kind for e in bed.inventory.audit_log()[seen:]]
    assert kinds[0] == "request" and kinds[-1] == "response"


@pytest.mark.parametrize(("srv", "reader"), [("6.24.1", "anchor_holders"), ("CS07", "parse")])
def test_a_meter_answer_that_cannot_be_read_fails_the_request(
    bed: Bed, monkeypatch: pytest.MonkeyPatch, srv: str, reader: str
) -> None:
    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise DecodeError("asn1", "payload", 3, "garbled")

    monkeypatch.setattr(f"emulators.services.qa.{reader}", unreadable)
    response = bed.submit(bed.supplier, srv, device=h(ESME))
    assert (response.status, response.reason) == ("failed", Reason.DEVICE_FAILURE)
    assert response.text.startswith("response not understood") and "garbled" in response.text


# --- Found by an audit of the service layer ----------------------------------------------


@pytest.mark.parametrize("params", [{"device": None}, {"chf": None}])
def test_a_required_identifier_may_not_be_none(bed: Bed, params: dict[str, Any]) -> None:
    """A pre-notification with device=None stored a device with no EUI-64, after which
    listing the inventory failed."""
    full = {"device": h(FRESH), "device_type": "ESME", **params}
    srv = "pre-notification" if "device" in params else "8.9"
    if srv == "8.9":
        full = params
    response, _ = bed.rejected(bed.supplier, srv, Reason.INVALID_PARAMETER, **full)
    name = next(iter(params))
    assert response.text == f"{name} must be a string, not NoneType"


@pytest.mark.parametrize("eui", ["0000000000000000", "FFFFFFFFFFFFFFFF"])
def test_a_reserved_eui64_is_not_a_device(bed: Bed, eui: str) -> None:
    response, _ = bed.rejected(
        bed.supplier,
        "pre-notification",
        Reason.INVALID_PARAMETER,
        device=eui,
        device_type="ESME",
    )
    assert "not a device's" in response.text


def test_the_role_is_the_certified_one_not_the_one_claimed(bed: Bed) -> None:
    """A network operator calling itself a supplier was let through the AB 6.1 check."""
    impostor = user(bed.world, "network_operator", RemotePartyRole.SUPPLIER)
    response, _ = bed.rejected(impostor, "CS07", Reason.ROLE_NOT_ELIGIBLE, device=h(ESME))
    assert "certified as a network operator, not a supplier" in response.text


def test_a_user_without_the_partys_key_is_refused(bed: Bed) -> None:
    """supplier2's key filed under the supplier's EUI-64 passed every SR but 8.15."""
    keystore = MemoryKeyStore()
    pki = bed.world.pki
    keystore.add(
        pki.party("supplier").eui64,
        KeyUsage.DS,
        private=pki.party("supplier2").private_key(KeyUsage.DS),
    )
    impostor = User("impostor", pki.party("supplier").eui64, RemotePartyRole.SUPPLIER, keystore)
    response, _ = bed.rejected(
        impostor, "8.11", Reason.NOT_SIGNED_BY_USER, chf=h(OLD), device=h(FRESH), action="add"
    )
    assert "does not hold the key of" in response.text


def test_8_15_refuses_a_signed_command_whose_payload_the_user_changed(bed: Bed) -> None:
    """Only the header used to be compared: a changed payload was MAC'd and sent."""

    class Changing(User):
        def sign(self, precommand: Any) -> Any:
            changed = dataclasses.replace(precommand, payload=b"\x30\x03\x02\x01\x07")
            return super().sign(changed)

    pki = bed.world.pki
    changing = Changing(
        "supplier", pki.party("supplier").eui64, RemotePartyRole.SUPPLIER, pki.keystore()
    )
    seen = len(bed.inventory.audit_log())
    response = bed.submit(changing, "8.15", device=h(ESME))
    assert (response.status, response.reason) == ("rejected", Reason.NOT_SIGNED_BY_USER)
    assert "not the pre-command the DCC built" in response.text
    kinds = [e.kind for e in bed.inventory.audit_log()[seen:]]
    assert "gbcs sent" not in kinds
    assert bed.world.joined_to(bed.meter(ESME)) == OLD


def test_a_device_log_request_that_went_out_unanswered_failed_not_rejected(bed: Bed) -> None:
    """'rejected' means nothing changed; an 8.11 add whose answer was lost may have acted
    (here the CHF did whitelist the meter)."""
    bed.bench.chf.wan_out = None  # its answers never reach the head end
    bed.inventory.set_responsible_supplier(MPXN[FRESH], bed.supplier.hex)
    response = bed.submit(
        bed.supplier, "8.11", chf=h(bed.bench.eui64), device=h(FRESH), action="add"
    )
    assert (response.status, response.reason) == ("failed", Reason.NO_RESPONSE)
    assert FRESH in bed.bench.chf.current


@pytest.mark.parametrize("srv", ["8.9x", "SRV_6.15", "6,15"])
def test_a_malformed_service_request_number_is_rejected_not_failed(bed: Bed, srv: str) -> None:
    response, _ = bed.rejected(bed.supplier, srv, Reason.INVALID_PARAMETER, chf=h(OLD))
    assert "not a Service Request number" in response.text


def test_8_11_remove_takes_no_mpxn_and_add_an_empty_one_is_an_error(bed: Bed) -> None:
    response, _ = bed.rejected(
        bed.supplier,
        "8.11",
        Reason.INVALID_PARAMETER,
        chf=h(OLD),
        device=h(ESME),
        action="remove",
        mpxn=REAL_MPAN,
    )
    assert response.text == "8.11 remove takes no MPxN"
    bed.fresh_add_rejected(bed.supplier, Reason.INVALID_MPXN, mpxn="")


def test_8_11_add_refuses_a_meter_linked_to_a_real_mpxn_by_any_path(bed: Bed) -> None:
    """Rows made in code skipped the manifest's check, and 8.11 add then went out."""
    bed.inventory.end_mpxn_links(h(FRESH))
    bed.inventory.set_responsible_supplier(REAL_MPAN, bed.supplier.hex)
    bed.inventory.link_mpxn(h(FRESH), REAL_MPAN)
    response, _ = bed.fresh_add_rejected(bed.supplier, Reason.INVALID_MPXN)
    assert "reserved dummy range" in response.text


def test_the_audit_log_refuses_insert_or_replace(bed: Bed) -> None:
    import sqlite3

    seq = bed.inventory.audit_log()[0].seq
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        bed.inventory.db.execute(
            "INSERT OR REPLACE INTO audit (seq, time, kind) VALUES (?, 0, 'forged')", (seq,)
        )
    assert bed.inventory.audit_log()[0].kind != "forged"


@pytest.mark.parametrize(
    ("params", "name"),
    [({"device": {"x"}}, "device"), ({"device": h(ESME), "mpxns": [b"\x01"]}, "mpxns")],
)
def test_a_parameter_json_cannot_hold_is_audited_and_refused(
    bed: Bed, params: dict[str, Any], name: str
) -> None:
    """A set or bytes in a list made submit() raise TypeError with no audit row."""
    response, rows = bed.rejected(bed.supplier, "CS07", Reason.INVALID_PARAMETER, **params)
    assert response.text.startswith(f"{name} must be")
    assert rows[0].kind == "request" and name in (rows[0].detail or "")


# --- From an audit of the service layer (audit 8, services) -----------------------------


@pytest.mark.parametrize("use_case", ["ECS26m", "ECS52", "ECS35a"])
def test_an_esme_read_of_a_gas_meter_is_refused_before_it_is_sent(bed: Bed, use_case: str) -> None:
    """It went out and came back failed, NO_RESPONSE ('may have acted'), 120 s later."""
    start = bed.world.clock.now
    response, _ = bed.rejected(bed.supplier, use_case, Reason.INVALID_PARAMETER, device=h(GSME))
    assert response.text == f"{use_case} reads an ESME; device {h(GSME)} is a GSME"
    assert bed.world.clock.now == start


def test_a_qa_read_takes_no_use_case_of_its_own(bed: Bed) -> None:
    """It is its use case: one given was replaced without a word."""
    response, _ = bed.rejected(
        bed.supplier, "CS07", Reason.INVALID_PARAMETER, device=h(ESME), use_case="ECS26m"
    )
    assert response.text == "CS07 takes no use_case: it is one"


def test_a_device_with_no_mpxn_of_its_own_is_given_none(bed: Bed) -> None:
    """A GPF pre-notified and added with an MPAN: the MPAN was taken and the CCS01 sent."""
    gpf = "00DB1234567890E1"
    assert bed.submit(
        bed.supplier,
        "pre-notification",
        device=gpf,
        device_type="GPF",
        install_code="00112233445566778899AABBCCDDEEF1",
    ).ok
    mpan = str(dummy_mpan(7))
    response, _ = bed.rejected(
        bed.supplier, "8.11", Reason.INVALID_MPXN, chf=h(OLD), device=gpf, action="add", mpxn=mpan
    )
    assert response.text == f"a GPF has no MPxN of its own ({mpan})"


@pytest.mark.parametrize(
    ("srv", "named"),
    [
        (None, "NoneType None"),
        (811, "int 811"),
        (["8.14.1"], "list ['8.14.1']"),
        ({"a": 1}, "dict {'a': 1}"),
    ],
)
def test_a_service_request_not_named_by_a_string_is_refused_naming_that(
    bed: Bed, srv: Any, named: str
) -> None:
    """It was refused with "'NoneType' object is not subscriptable"; a list or a dict made
    the audit log's write raise (sqlite cannot store them) before any check."""
    before = bed.state()
    seen = len(bed.inventory.audit_log())
    response = bed.submit(bed.supplier, srv, chf=h(OLD))
    assert (response.status, response.reason, response.text) == (
        "rejected",
        Reason.INVALID_PARAMETER,
        f"a service request is named by a string, not {named}",
    )
    assert bed.state() == before
    rows = bed.inventory.audit_log()[seen:]
    assert [(e.kind, e.srv) for e in rows] == [("request", repr(srv)), ("response", repr(srv))]


def test_a_user_role_must_be_a_remote_party_role(bed: Bed) -> None:
    """A plain string made submit raise AttributeError, leaving a request with no response."""
    with pytest.raises(GbcsError, match="user supplier: role 'SUPPLIER' is not a RemotePartyRole"):
        user(bed.world, "supplier", "SUPPLIER")  # type: ignore[arg-type]


def test_a_chf_enters_the_smi_by_its_installation_only(bed: Bed) -> None:
    """A pre-notified CHF could never be commissioned (pending -> commissioned is no
    transition), and 8.14.1 took a hub EUI-64 the SMI had as a meter (audit 8, services F3)."""
    hub = bed.world.add_hub("elsewhere", name="third CHF")
    response, _ = bed.rejected(
        bed.supplier,
        "pre-notification",
        Reason.INVALID_PARAMETER,
        device=h(hub.eui64),
        device_type="CHF",
    )
    assert response.text == (
        "a CHF enters the SMI by its installation (SR 8.14.1), not pre-notification"
    )
    assert bed.submit(bed.supplier, "pre-notification", device=h(hub.eui64), device_type="ESME").ok
    response, _ = bed.rejected(bed.supplier, "8.14.1", Reason.INVALID_PARAMETER, chf=h(hub.eui64))
    assert response.text == (f"device {h(hub.eui64)} is in the SMI with device type ESME, not CHF")


def test_a_request_that_leaves_the_smi_status_as_it_was_notifies_no_one(bed: Bed) -> None:
    """A notification tells network parties of a status change: adding a whitelisted
    meter to its CHF's log again changes nothing, so none goes out."""
    before = len(bed.inventory.audit_log())
    response = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(ESME), action="add")
    assert response.ok, response.result
    assert bed.inventory.require(h(ESME)).smi_status is SmiStatus.WHITELISTED
    kinds = [e.kind for e in bed.inventory.audit_log()[before:]]
    assert "notification" not in kinds and kinds[-1] == "response"


def test_8_11_add_of_a_meter_with_no_mpxn_and_none_given_is_refused(bed: Bed) -> None:
    """The Responsible Supplier check is made on the meter's MPxNs: with none linked and
    none given there is no one to check, so the add must not go out unchecked."""
    bed.inventory.end_mpxn_links(h(FRESH))
    response, _ = bed.fresh_add_rejected(bed.supplier, Reason.INVALID_PARAMETER)
    assert response.text == "adding a meter needs its MPxN"
    assert not bed.bench.chf.current


def test_8_11_remove_from_a_chf_other_than_its_own_keeps_its_association(bed: Bed) -> None:
    """Logged by two CHFs (as a restored meter is, until its old CHF lets it go), a meter
    taken off the one the SMI does not associate it with stays whitelisted on the other."""
    bench = h(bed.bench.eui64)
    assert bed.submit(bed.supplier, "8.11", chf=bench, device=h(ESME), action="add").ok
    assert bed.inventory.require(h(ESME)).chf == bench
    response = bed.submit(bed.supplier, "8.11", chf=h(OLD), device=h(ESME), action="remove")
    assert response.ok, response.result
    device = bed.inventory.require(h(ESME))
    assert (device.smi_status, device.chf) == (SmiStatus.WHITELISTED, bench)
    assert ESME in bed.bench.chf.current and ESME not in bed.old.chf.current


def test_8_15_of_a_meter_with_no_chf_in_the_smi_is_refused_naming_that(bed: Bed) -> None:
    """A critical request skips the status check, so a decommissioned meter (no CHF) gets
    as far as finding its CHF: that is refused with a reason, and nothing is sent."""
    assert bed.submit(bed.supplier, "decommission", device=h(ESME)).ok
    response, _ = bed.rejected(bed.supplier, "8.15", Reason.INVALID_PARAMETER, device=h(ESME))
    assert response.text == f"device {h(ESME)} has no CHF in the SMI"


def test_8_15_refuses_a_pre_command_whose_signature_does_not_verify(bed: Bed) -> None:
    """Header and payload unchanged, but the signature the user's system returned is not
    a valid one: the DCC does not MAC and send it."""

    class Spoiling(User):
        def sign(self, precommand: Any) -> Any:
            signed = super().sign(precommand)
            spoiled = bytearray(signed.signature)
            spoiled[5] ^= 1
            return dataclasses.replace(signed, signature=bytes(spoiled))

    pki = bed.world.pki
    spoiling = Spoiling(
        "supplier", pki.party("supplier").eui64, RemotePartyRole.SUPPLIER, pki.keystore()
    )
    seen = len(bed.inventory.audit_log())
    response = bed.submit(spoiling, "8.15", device=h(ESME))
    assert (response.status, response.reason) == ("rejected", Reason.NOT_SIGNED_BY_USER)
    assert "the signed pre-command does not verify" in response.text
    assert "gbcs sent" not in [e.kind for e in bed.inventory.audit_log()[seen:]]
    assert bed.world.joined_to(bed.meter(ESME)) == OLD


def test_a_qa_read_the_meter_answers_with_a_failure_fails(bed: Bed) -> None:
    """CS07 answered with a non-zero response code: the read failed, whatever came with it."""
    bed.meter(ESME).device.handlers[0x0013] = lambda message: asn1_reply(
        JoinDetails(1, None).to_payload()
    )
    response = bed.submit(bed.supplier, "CS07", device=h(ESME))
    assert (response.status, response.reason) == ("failed", Reason.DEVICE_FAILURE)
    assert response.text == "the meter reported a read failure"
    assert response.data == {}


def test_8_15_fails_on_a_disconnect_response_that_is_not_signed(
    bed: Bed, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CS02f response must carry the meter's signature (it answers a critical command):
    one that verified only by its MAC is a device failure, and the SMI is left as it was."""
    send = bed.sl.headend.send

    def mac_only(*args: Any, **kwargs: Any) -> Any:
        outcome = send(*args, **kwargs)
        assert outcome.response is not None and outcome.response.signature
        return dataclasses.replace(
            outcome, response=dataclasses.replace(outcome.response, signature=b"")
        )

    monkeypatch.setattr(bed.sl.headend, "send", mac_only)
    response = bed.submit(bed.supplier, "8.15", device=h(ESME))
    assert (response.status, response.reason) == ("failed", Reason.DEVICE_FAILURE)
    assert response.text == "the response is not signed"
    device = bed.inventory.require(h(ESME))
    assert (device.smi_status, device.chf, device.mpxns) == (
        SmiStatus.WHITELISTED,
        h(OLD),
        (MPXN[ESME],),
    )
