"""Meters' security-credential use cases: CS02a details, CS02b anchor replacement, CS02e.

Bench tests drive a meter directly with head-end commands; the world tests run
the same replacement through a hub and the emulated HAN and across save/load.
The PKI here is this module's own: it gains parties the shared one must not have.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.headend import HeadEnd
from emulators.meters import Esme, Gsme, Meter
from emulators.scenarios import Run
from emulators.world import World
from gbcs import asn1
from gbcs.credentials_uc import (
    DS_KEY_USAGE,
    KA_KEY_USAGE,
    AuthorisingControl,
    CredentialDetails,
    CredentialStatus,
    DeviceCertificate,
    DeviceCertificateResult,
    KeyUsageBits,
    ProvideCredentialDetails,
    ProvideDeviceCertificate,
    RemotePartySeqNumberChange,
    TrustAnchorCell,
    TrustAnchorReplacement,
    UpdateCredentialsResponse,
    UpdateOutcome,
    UpdateSecurityCredentials,
)
from gbcs.frame import CraFlag, GbcsMessage
from gbcs.keys import KeyUsage
from gbcs.security import SecurityContext
from gbcs.testpki import Party, RemotePartyRole, TestPki
from tests.emulators.conftest import INSTALL_CODE, executed, verified

NO, SUPPLIER, ACB = (
    RemotePartyRole.NETWORK_OPERATOR,
    RemotePartyRole.SUPPLIER,
    RemotePartyRole.ACCESS_CONTROL_BROKER,
)
NEW_NO = bytes.fromhex("90B3D51F30020001")
NEW_ACB = bytes.fromhex("90B3D51F30000012")
CS02A, CS02E = 0x0008, 0x000C
SUPPLIER_BY_SUPPLIER, NO_BY_NO, ACB_BY_ACB = 0x0102, 0x0103, 0x0104


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _cert_ski(cert: x509.Certificate) -> bytes:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _trust(headend: HeadEnd, party: Party) -> None:
    for usage in (KeyUsage.KA, KeyUsage.DS):
        headend.keystore.add(
            party.eui64,
            usage,
            private=party.private_key(usage),
            certificate=party.certificate(usage),
        )


@pytest.fixture(scope="module")
def pki() -> TestPki:
    pki = TestPki.default_cast(5)  # network_operator2 (NEW_NO) is in the default cast
    pki.add_organisation(NEW_ACB, ACB, name="acb2")
    return pki


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def headend(pki: TestPki, clock: VirtualClock) -> HeadEnd:
    return HeadEnd(pki, clock)  # pki.keystore() already holds the added parties


def _meter(pki: TestPki, clock: VirtualClock, kind: type[Meter], name: str, **kw: Any) -> Meter:
    party = pki.party(name)
    return kind(
        DeviceCredentials.from_party(party),
        TrustAnchors.from_pki(pki),
        clock,
        install_code=INSTALL_CODE,
        **kw,
    )


@pytest.fixture
def esme(pki: TestPki, clock: VirtualClock) -> Meter:
    party = pki.party("esme")
    certs = {u: _der(party.certificate(u)) for u in (KeyUsage.KA, KeyUsage.DS)}
    return _meter(pki, clock, Esme, "esme", certificates=certs)


@pytest.fixture
def gsme(pki: TestPki, clock: VirtualClock) -> Meter:
    return _meter(pki, clock, Gsme, "gsme")


class Bench:
    """One meter, commanded by the head end; responses come back verified."""

    def __init__(self, headend: HeadEnd, meter: Meter) -> None:
        self.headend = headend
        self.meter = meter

    def send(self, code: int, payload: Any, **kwargs: Any) -> GbcsMessage | None:
        command = self.headend.command(code, asn1.encode(payload), self.meter.eui64, **kwargs)
        out = self.meter.receive(command.encode())
        return None if out is None else verified(self.headend, out)

    def answer(self, code: int, payload: Any, **kwargs: Any) -> Any:
        response = self.send(code, payload, **kwargs)
        assert response is not None, self.meter.security_log[-1:]
        return asn1.decode(code, CraFlag.RESPONSE, response.payload)

    def details(self, *roles: int, originator: str = "supplier") -> CredentialDetails:
        command = ProvideCredentialDetails(TrustAnchorCell(ACB, KA_KEY_USAGE), roles)
        return CredentialDetails.from_payload(
            self.answer(CS02A, command.to_payload(), originator=originator)
        )

    def update_command(
        self,
        code: int,
        originator: str,
        replacements: tuple[TrustAnchorReplacement, ...],
        **control: Any,
    ) -> tuple[UpdateSecurityCredentials, int]:
        counter = self.headend.next_counter(self.headend.party(originator))
        mode = control.pop("mode", code - 0x0100)
        seq = control.pop("seq", counter)
        when = control.pop("when", None)
        command = UpdateSecurityCredentials(
            AuthorisingControl(mode, seq, **control), replacements, (), when
        )
        return command, counter

    def update(
        self,
        code: int,
        originator: str,
        replacements: tuple[TrustAnchorReplacement, ...],
        *,
        sign: bool | None = None,
        **control: Any,
    ) -> UpdateCredentialsResponse | None:
        command, counter = self.update_command(code, originator, replacements, **control)
        response = self.send(
            code, command.to_payload(), originator=originator, counter=counter, sign=sign
        )
        if response is None:
            return None
        payload = asn1.decode(code, CraFlag.RESPONSE, response.payload)
        return UpdateCredentialsResponse.from_payload(payload)


def _replacements(party: Party, role: int | None = None) -> tuple[TrustAnchorReplacement, ...]:
    target = party.role if role is None else role
    return (
        TrustAnchorReplacement(_der(party.ds_cert), TrustAnchorCell(target, DS_KEY_USAGE)),
        TrustAnchorReplacement(_der(party.ka_cert), TrustAnchorCell(target, KA_KEY_USAGE)),
    )


@pytest.fixture
def bench(headend: HeadEnd, esme: Meter) -> Bench:
    return Bench(headend, esme)


# --- CS02a -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["esme", "gsme"])
def test_cs02a_lists_the_anchors_held(
    request: pytest.FixtureRequest, pki: TestPki, headend: HeadEnd, kind: str
) -> None:
    meter = request.getfixturevalue(kind)
    bench = Bench(headend, meter)
    details = bench.details(SUPPLIER, NO, ACB, RemotePartyRole.WAN_PROVIDER, 0)
    assert [p.role for p in details.parties] == [SUPPLIER, NO, ACB, 6, 0]
    for role, name in ((SUPPLIER, "supplier"), (NO, "network_operator"), (ACB, "acb")):
        entry = details.for_role(role)
        party = pki.party(name)
        assert entry is not None and entry.status is CredentialStatus.SUCCESS
        assert entry.cells is not None
        assert [c.key_usage for c in entry.cells] == [DS_KEY_USAGE, KA_KEY_USAGE]
        assert all(c.subject_unique_id == party.eui64 and c.cell_usage == 0 for c in entry.cells)
        # The SKI is the test PKI's, the same as in the party's certificates.
        assert [c.subject_key_identifier for c in entry.cells] == [
            _cert_ski(party.ds_cert),
            _cert_ski(party.ka_cert),
        ]
    for role in (RemotePartyRole.WAN_PROVIDER, RemotePartyRole.ROOT):
        entry = details.for_role(role)
        assert entry is not None and entry.status is CredentialStatus.TRUST_ANCHOR_NOT_FOUND
        assert entry.current_seq_number is None and entry.cells is None


def test_cs02a_reports_current_sequence_numbers(bench: Bench, pki: TestPki) -> None:
    first = bench.details(SUPPLIER, NO)
    supplier_counter = bench.headend.counters[pki.party("supplier").eui64] - 1
    assert first.parties[0].current_seq_number == supplier_counter  # this very command
    assert first.parties[1].current_seq_number == 0  # nothing from the NO yet
    bench.details(NO, originator="network_operator")
    second = bench.details(NO)
    assert second.parties[0].current_seq_number == (
        bench.headend.counters[pki.party("network_operator").eui64] - 1
    )


def test_cs02a_from_the_acb_mac_only_is_answered_as_in_the_rtds(bench: Bench) -> None:
    """RTDS 6.24.1 CS02aMAC: the ACB asks with a MAC alone; the answer is MAC'd, unsigned."""
    command = ProvideCredentialDetails(TrustAnchorCell(ACB, KA_KEY_USAGE), (SUPPLIER,))
    response = bench.send(CS02A, command.to_payload(), originator="acb", sign=False)
    assert response is not None, bench.meter.security_log[-1:]
    assert response.has_mac and response.signature == b""
    details = CredentialDetails.from_payload(asn1.decode(CS02A, CraFlag.RESPONSE, response.payload))
    assert details.for_role(SUPPLIER).status is CredentialStatus.SUCCESS


def test_the_rtds_cs02f_0x011b_is_cs02a_for_the_esme(
    bench: Bench, pki: TestPki, headend: HeadEnd, gsme: Gsme
) -> None:
    """RTDS CS02fMAC asks the ESME for roles 2 and 8 (load controller) with CS02a's
    payloads; the emulated ESME holds no load-controller anchor (status 25)."""
    command = ProvideCredentialDetails(TrustAnchorCell(ACB, KA_KEY_USAGE), (SUPPLIER, 8))
    details = CredentialDetails.from_payload(
        bench.answer(0x011B, command.to_payload(), originator="acb", sign=False)
    )
    assert [(p.role, p.status) for p in details.parties] == [
        (SUPPLIER, CredentialStatus.SUCCESS),
        (8, CredentialStatus.TRUST_ANCHOR_NOT_FOUND),
    ]
    supplier = details.for_role(SUPPLIER)
    assert supplier is not None and supplier.cells is not None
    assert {c.subject_unique_id for c in supplier.cells} == {pki.party("supplier").eui64}
    # The GSME knows no load controller: not one of its use cases.
    payload = asn1.encode(command.to_payload())
    assert gsme.receive(headend.command(0x011B, payload, gsme.eui64).encode()) is None
    assert "0x011B is not supported" in gsme.security_log[-1].detail


# --- CS02b: network operator by network operator ---------------------------------------


def test_cs02b_replaces_the_network_operator(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    esme = bench.meter
    old, new = pki.party("network_operator"), pki.party("network_operator2")
    bench.details(NO, originator="network_operator")  # the old NO has a counter
    response = bench.update(
        NO_BY_NO,
        "network_operator",
        _replacements(new),
        authorising_cell=TrustAnchorCell(NO, DS_KEY_USAGE),
        new_floor=0,
    )
    assert response is not None and response.outcome is not None
    outcome = response.outcome
    assert outcome.succeeded
    assert outcome.authorising_seq_number == bench.headend.counters[old.eui64] - 1
    assert outcome.mode == 3
    assert outcome.seq_number_changes == (RemotePartySeqNumberChange(NO, 0),)
    assert [
        (o.existing_id, o.existing_ski, o.replacing_id, o.replacing_ski) for o in outcome.outcomes
    ] == [
        (old.eui64, _cert_ski(old.ds_cert), new.eui64, _cert_ski(new.ds_cert)),
        (old.eui64, _cert_ski(old.ka_cert), new.eui64, _cert_ski(new.ka_cert)),
    ]
    # The response went out under the old anchors; the new ones take over right after.
    assert esme.anchors.network_operator.party_id == old.eui64
    clock.run()
    assert esme.anchors.network_operator.party_id == new.eui64
    assert old.eui64 not in esme.counters and new.eui64 not in esme.counters
    assert esme.security_log[-1].event == "trust anchors replaced"
    # Old NO: no longer a trust anchor. New NO: accepted, and CS02a shows its cells.
    assert bench.send(CS02A, _details_command(NO), originator="network_operator") is None
    assert "not a trust anchor" in esme.security_log[-1].detail
    details = bench.details(NO, originator="network_operator2")
    entry = details.for_role(NO)
    assert entry is not None and entry.cells is not None
    assert [c.subject_key_identifier for c in entry.cells] == [
        _cert_ski(new.ds_cert),
        _cert_ski(new.ka_cert),
    ]
    assert entry.current_seq_number == bench.headend.counters[new.eui64] - 1
    # Other roles are untouched.
    assert esme.anchors.supplier.party_id == pki.party("supplier").eui64
    assert bench.details(SUPPLIER).parties[0].status is CredentialStatus.SUCCESS


def _details_command(*roles: int) -> Any:
    return ProvideCredentialDetails(TrustAnchorCell(ACB, KA_KEY_USAGE), roles).to_payload()


def test_cs02b_floor_becomes_the_new_partys_counter(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    new = pki.party("network_operator2")
    floor = 0x0000_0002_0000_0000
    response = bench.update(NO_BY_NO, "network_operator", _replacements(new), new_floor=floor)
    assert response is not None and response.outcome is not None
    assert response.outcome.seq_number_changes == (RemotePartySeqNumberChange(NO, floor),)
    clock.run()
    assert bench.meter.counters[new.eui64] == floor
    # A command under the floor is a replay; one above it is accepted.
    assert bench.send(CS02A, _details_command(NO), originator="network_operator2") is None
    assert "replayed" in bench.meter.security_log[-1].detail
    bench.headend.counters[new.eui64] = floor + 1
    assert bench.details(NO, originator="network_operator2").parties[0].current_seq_number == (
        floor + 1
    )


def test_cs02b_reports_and_keeps_the_replacing_certificates_key_identifiers(
    bench: Bench, clock: VirtualClock, rtds_root: Path
) -> None:
    """The replacing SKI is the certificate's SubjectKeyIdentifier (RTDS CS02b), which for
    the RTDS certificates is not the kit's hash of the point; CS02a then reports it too."""
    from gbcs.keys import FileKeyStore

    store = FileKeyStore(rtds_root / "keystore")
    new_id = bytes.fromhex("90B3D51F30030000")  # the RTDS second supplier
    certs = {u: store.certificate(new_id, u) for u in (KeyUsage.DS, KeyUsage.KA)}
    assert all(c is not None for c in certs.values())
    replacements = tuple(
        TrustAnchorReplacement(_der(certs[u]), TrustAnchorCell(SUPPLIER, bits))  # type: ignore[arg-type]
        for u, bits in ((KeyUsage.DS, DS_KEY_USAGE), (KeyUsage.KA, KA_KEY_USAGE))
    )
    response = bench.update(
        SUPPLIER_BY_SUPPLIER, "supplier", replacements, apply_time_based_cpv_checks=1
    )
    assert response is not None and response.outcome is not None and response.outcome.succeeded
    expected = [_cert_ski(certs[u]) for u in (KeyUsage.DS, KeyUsage.KA)]  # type: ignore[arg-type]
    assert [o.replacing_ski for o in response.outcome.outcomes] == expected
    clock.run()
    anchor = bench.meter.anchors.supplier
    assert anchor.party_id == new_id
    assert [anchor.ds_ski, anchor.ka_ski] == expected


def test_cs02b_supplier_by_supplier(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    new = pki.party("supplier2")
    response = bench.update(SUPPLIER_BY_SUPPLIER, "supplier", _replacements(new))
    assert response is not None and response.outcome is not None and response.outcome.succeeded
    clock.run()
    assert bench.meter.anchors.supplier.party_id == new.eui64
    assert bench.send(CS02A, _details_command(SUPPLIER), originator="supplier") is None
    assert bench.details(SUPPLIER, originator="supplier2").parties[0].cells is not None


def test_only_the_future_dateable_cs02b_response_is_dated(bench: Bench, pki: TestPki) -> None:
    """As in the RTDS: CS02b responses carry a Date-Time, CS02a ones do not."""
    command, counter = bench.update_command(
        SUPPLIER_BY_SUPPLIER, "supplier", _replacements(pki.party("supplier2"))
    )
    update = bench.send(SUPPLIER_BY_SUPPLIER, command.to_payload(), counter=counter)
    assert update is not None and update.header.date_time is not None
    assert update.header.date_time.to_datetime() == bench.meter.clock.utc
    read = bench.send(CS02A, _details_command(NO), originator="network_operator")
    assert read is not None and read.header.date_time is None


def test_cs02b_acb_by_acb_unsigned_is_the_acbs_alone(bench: Bench, pki: TestPki) -> None:
    """Only the ACB may send accessControlBrokerByACB unsigned: from a supplier, MAC'd as
    every command is, the critical command is unsigned and refused (a mutation dropping
    the originator check went unnoticed)."""
    before = bench.meter.anchors
    response = bench.update(ACB_BY_ACB, "supplier", _replacements(pki.party("acb2")), sign=False)
    assert response is None
    assert "critical command CS02b" in bench.meter.security_log[-1].detail
    assert "is not signed" in bench.meter.security_log[-1].detail
    assert bench.meter.anchors == before


def test_cs02b_acb_by_acb_is_authorised_by_the_acb_mac(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    esme, headend = bench.meter, bench.headend
    new = pki.party("acb2")
    # GBCS 13.3.3.1: to a meter, accessControlBrokerByACB carries the ACB's MAC only.
    response = bench.update(ACB_BY_ACB, "acb", _replacements(new), sign=False)
    assert response is not None and response.outcome is not None and response.outcome.succeeded
    clock.run()
    assert esme.anchors.acb.party_id == new.eui64 and esme.security.acb == new.eui64
    # The old ACB's MAC no longer opens the meter; the new ACB's does.
    assert bench.send(CS02A, _details_command(ACB)) is None
    headend.acb = new.eui64
    headend.security = SecurityContext(headend.keystore, new.eui64)
    details = bench.details(ACB)
    assert details.parties[0].cells is not None
    assert details.parties[0].cells[0].subject_unique_id == new.eui64


def test_cs02b_key_rollover_of_one_cell(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    """The RTDS ACB-by-ACB shape: one KA cell, same party (here: the NO's own KA cert)."""
    old = pki.party("network_operator")
    replacement = (TrustAnchorReplacement(_der(old.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),)
    response = bench.update(NO_BY_NO, "network_operator", replacement)
    assert response is not None and response.outcome is not None and response.outcome.succeeded
    clock.run()
    assert bench.meter.anchors.network_operator == TrustAnchors.from_pki(pki).network_operator
    # The party stays: its counter is not lowered, so the rollover itself cannot replay.
    assert bench.meter.counters[old.eui64] == bench.headend.counters[old.eui64] - 1
    assert bench.send(CS02A, _details_command(NO), originator="network_operator") is not None


def test_cs02b_rollover_floor_below_the_counter_does_not_lower_it(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    old = pki.party("network_operator")
    replacement = (TrustAnchorReplacement(_der(old.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),)
    response = bench.update(NO_BY_NO, "network_operator", replacement, new_floor=1)
    assert response is not None and response.outcome is not None and response.outcome.succeeded
    clock.run()
    assert bench.meter.counters[old.eui64] == bench.headend.counters[old.eui64] - 1


def test_cs02b_cannot_lower_another_partys_counter(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    """A network operator's CS02b naming the supplier's floor 0 (or 1) must not let the
    supplier's old commands replay: other parties' counters are only ever raised."""
    supplier = pki.party("supplier")
    bench.details(NO)  # the supplier has a counter now
    held = bench.meter.counters[supplier.eui64]
    for floor in (0, 1):
        new = pki.party("network_operator")
        replacement = (
            TrustAnchorReplacement(_der(new.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),
        )
        response = bench.update(
            NO_BY_NO,
            "network_operator",
            replacement,
            other_changes=(RemotePartySeqNumberChange(SUPPLIER, floor),),
        )
        assert response is not None and response.outcome is not None
        assert response.outcome.succeeded
        clock.run()
        assert bench.meter.counters[supplier.eui64] == held
    higher = held + 0x10
    response = bench.update(
        NO_BY_NO,
        "network_operator",
        (
            TrustAnchorReplacement(
                _der(pki.party("network_operator").ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)
            ),
        ),
        other_changes=(RemotePartySeqNumberChange(SUPPLIER, higher),),
    )
    assert response is not None
    clock.run()
    assert bench.meter.counters[supplier.eui64] == higher  # raising it is allowed


# --- CS02b: refused commands (discarded, nothing changes) --------------------------------


@pytest.mark.parametrize(
    ("code", "originator", "control", "why"),
    [
        (NO_BY_NO, "supplier", {}, "NETWORK_OPERATOR anchor"),  # wrong signer role
        (NO_BY_NO, "supplier2", {}, "not a trust anchor"),  # not an anchor at all
        (NO_BY_NO, "network_operator", {"mode": 2}, "does not match message code"),
        (SUPPLIER_BY_SUPPLIER, "network_operator", {"mode": 3}, "does not match"),
        (0x0105, "network_operator", {}, "not supported"),  # wanProviderByWanProvider
        (NO_BY_NO, "network_operator", {"seq": 7}, "authorising sequence number"),
        (
            NO_BY_NO,
            "network_operator",
            {"authorising_cell": TrustAnchorCell(SUPPLIER, DS_KEY_USAGE)},
            "authorising cell",
        ),
        (
            NO_BY_NO,
            "network_operator",
            {"when": dt.datetime(2099, 1, 1, tzinfo=dt.UTC)},
            "future-dated",
        ),
        (ACB_BY_ACB, "supplier", {}, "ACCESS_CONTROL_BROKER anchor"),
    ],
)
def test_cs02b_unauthorised_commands_are_discarded(
    bench: Bench,
    pki: TestPki,
    clock: VirtualClock,
    code: int,
    originator: str,
    control: dict[str, Any],
    why: str,
) -> None:
    esme = bench.meter
    before = esme.anchors
    if originator == "supplier2":
        _trust(bench.headend, pki.party("supplier2"))
    assert (
        bench.update(code, originator, _replacements(pki.party("network_operator2")), **control)
        is None
    )
    clock.run()
    assert esme.anchors == before
    assert esme.security_log[-1].event == "command rejected"
    assert why in esme.security_log[-1].detail
    assert pki.party(originator).eui64 not in esme.counters  # no counter was consumed


def test_cs02b_from_the_acb_in_another_mode_must_be_signed(bench: Bench, pki: TestPki) -> None:
    replacements = _replacements(pki.party("network_operator2"))
    assert bench.update(NO_BY_NO, "acb", replacements, sign=False) is None
    assert "is not signed" in bench.meter.security_log[-1].detail


# --- CS02b: bad replacements (answered, nothing replaced) ---------------------------------


def _refused(bench: Bench, clock: VirtualClock, replacements: Any, **control: Any) -> UpdateOutcome:
    before = bench.meter.anchors
    response = bench.update(NO_BY_NO, "network_operator", replacements, **control)
    assert response is not None and response.outcome is not None
    clock.run()
    assert bench.meter.anchors == before
    assert response.outcome.seq_number_changes == ()
    for o in response.outcome.outcomes:  # nothing replaced: the replacing subject is the old one
        assert (o.replacing_id, o.replacing_ski) == (o.existing_id, o.existing_ski)
    assert bench.meter.security_log[-1].event == "credentials update refused"
    assert executed(bench.meter) == []  # answered, not run
    return response.outcome


def _statuses(outcome: UpdateOutcome) -> list[CredentialStatus]:
    return [o.status for o in outcome.outcomes]


def test_cs02b_certificate_of_another_role(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    # supplier2's certificates (OU 02) aimed at the network operator's cells.
    outcome = _refused(bench, clock, _replacements(pki.party("supplier2"), NO))
    assert _statuses(outcome) == [CredentialStatus.BAD_CERTIFICATE] * 2
    # A device certificate names no role at all.
    outcome = _refused(bench, clock, _replacements(pki.party("gsme"), NO))
    assert _statuses(outcome) == [CredentialStatus.BAD_CERTIFICATE] * 2


def _tlv(tag: int, value: bytes) -> bytes:
    size = len(value)
    length = bytes([size]) if size < 0x80 else bytes([0x82]) + size.to_bytes(2, "big")
    return bytes([tag]) + length + value


def _children(data: bytes) -> list[tuple[int, bytes]]:
    """The (tag, value) TLVs of a DER constructed value (lengths up to 2 bytes)."""
    out, i = [], 0
    while i < len(data):
        tag, size, i = data[i], data[i + 1], i + 2
        if size & 0x80:
            n = size & 0x7F
            size, i = int.from_bytes(data[i : i + n], "big"), i + n
        out.append((tag, data[i : i + size]))
        i += size
    return out


def _with_an_extension_twice(der: bytes) -> bytes:
    """The certificate with its first extension repeated (the signature left as it was)."""
    ((_, certificate),) = _children(der)
    (tbs_tag, tbs), *rest = _children(certificate)
    fields = []
    for tag, value in _children(tbs):
        if tag == 0xA3:  # [3] extensions
            ((seq, extensions),) = _children(value)
            listed = _children(extensions)
            value = _tlv(seq, b"".join(_tlv(t, v) for t, v in [*listed, listed[0]]))
        fields.append(_tlv(tag, value))
    parts = [_tlv(tbs_tag, b"".join(fields)), *(_tlv(t, v) for t, v in rest)]
    return _tlv(0x30, b"".join(parts))


def test_cs02b_certificate_the_meter_cannot_read_is_a_bad_certificate(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    """A repeated X.509 extension made the certificate library raise out of the meter."""
    new = pki.party("network_operator2")
    twice = _with_an_extension_twice(_der(new.ds_cert))
    with pytest.raises(x509.DuplicateExtension):
        _ = x509.load_der_x509_certificate(twice).extensions
    replacements = (
        TrustAnchorReplacement(twice, TrustAnchorCell(NO, DS_KEY_USAGE)),
        TrustAnchorReplacement(_der(new.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),
    )
    outcome = _refused(bench, clock, replacements)
    assert _statuses(outcome) == [CredentialStatus.BAD_CERTIFICATE, CredentialStatus.OTHER]


def test_cs02b_wrong_key_usage(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    new = pki.party("network_operator2")
    swapped = (
        TrustAnchorReplacement(_der(new.ka_cert), TrustAnchorCell(NO, DS_KEY_USAGE)),
        TrustAnchorReplacement(_der(new.ds_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),
    )
    assert _statuses(_refused(bench, clock, swapped)) == [CredentialStatus.BAD_CERTIFICATE] * 2


def test_cs02b_one_bad_cell_spoils_the_command(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    new = pki.party("network_operator2")
    mixed = (
        TrustAnchorReplacement(_der(new.ds_cert), TrustAnchorCell(NO, DS_KEY_USAGE)),
        TrustAnchorReplacement(_der(new.ds_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),
    )
    outcome = _refused(bench, clock, mixed)
    assert _statuses(outcome) == [CredentialStatus.OTHER, CredentialStatus.BAD_CERTIFICATE]


def test_cs02b_target_cells(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    new = pki.party("network_operator2")
    supplier_cell = _replacements(new, SUPPLIER)  # mode 3 may not touch the supplier
    assert (
        _statuses(_refused(bench, clock, supplier_cell)) == [CredentialStatus.BAD_CERTIFICATE] * 2
    )
    prepayment = (
        *_replacements(new),
        TrustAnchorReplacement(_der(new.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE, 1)),
    )
    assert _statuses(_refused(bench, clock, prepayment)) == [
        CredentialStatus.OTHER,
        CredentialStatus.OTHER,
        CredentialStatus.TRUST_ANCHOR_NOT_FOUND,
    ]
    odd_usage = (
        TrustAnchorReplacement(_der(new.ds_cert), TrustAnchorCell(NO, KeyUsageBits(b"\x20", 3))),
    )
    assert _statuses(_refused(bench, clock, odd_usage)) == [CredentialStatus.TRUST_ANCHOR_NOT_FOUND]


def test_cs02b_cells_must_name_one_party(bench: Bench, pki: TestPki, clock: VirtualClock) -> None:
    old, new = pki.party("network_operator"), pki.party("network_operator2")
    split = (
        TrustAnchorReplacement(_der(new.ds_cert), TrustAnchorCell(NO, DS_KEY_USAGE)),
        TrustAnchorReplacement(_der(old.ka_cert), TrustAnchorCell(NO, KA_KEY_USAGE)),
    )
    assert _statuses(_refused(bench, clock, split)) == [CredentialStatus.BAD_CERTIFICATE] * 2
    half = _replacements(new)[:1]  # a new party in the DS cell only
    assert _statuses(_refused(bench, clock, half)) == [CredentialStatus.BAD_CERTIFICATE]
    twice = (*_replacements(new), _replacements(new)[0])
    assert _statuses(_refused(bench, clock, twice)) == [CredentialStatus.BAD_CERTIFICATE] * 3
    assert _refused(bench, clock, ()).outcomes == ()


def test_cs02b_validity_period(pki: TestPki, headend: HeadEnd) -> None:
    """The test certificates start in 2020: a meter whose clock says 2019 refuses them,
    unless the command disapplies the time-based checks."""
    clock = VirtualClock(dt.datetime(2019, 6, 1, tzinfo=dt.UTC))
    headend.clock = clock
    bench = Bench(headend, _meter(pki, clock, Esme, "esme"))
    outcome = _refused(bench, clock, _replacements(pki.party("network_operator2")))
    assert _statuses(outcome) == [CredentialStatus.BAD_CERTIFICATE] * 2
    response = bench.update(
        NO_BY_NO,
        "network_operator",
        _replacements(pki.party("network_operator2")),
        apply_time_based_cpv_checks=1,
    )
    assert response is not None and response.outcome is not None and response.outcome.succeeded


# --- CS02e ------------------------------------------------------------------------------


def test_cs02e_returns_the_meters_certificates(bench: Bench, pki: TestPki) -> None:
    party = pki.party("esme")
    for usage in (KeyUsage.DS, KeyUsage.KA):
        payload = ProvideDeviceCertificate(KeyUsageBits.of(usage)).to_payload()
        answer = DeviceCertificate.from_payload(bench.answer(CS02E, payload))
        assert answer.certificate == _der(party.certificate(usage))
    assert len(executed(bench.meter)) == 2
    odd = ProvideDeviceCertificate(KeyUsageBits(b"\x20", 3)).to_payload()
    answer = DeviceCertificate.from_payload(bench.answer(CS02E, odd))
    assert answer.response_code is DeviceCertificateResult.INVALID_KEY_USAGE
    assert len(executed(bench.meter)) == 2


def test_cs02e_without_certificates(headend: HeadEnd, gsme: Meter) -> None:
    bench = Bench(headend, gsme)
    answer = DeviceCertificate.from_payload(
        bench.answer(CS02E, ProvideDeviceCertificate(DS_KEY_USAGE).to_payload())
    )
    assert answer.response_code is DeviceCertificateResult.NO_CERTIFICATE_HELD
    odd = ProvideDeviceCertificate(KeyUsageBits(b"\x20", 3)).to_payload()
    answer = DeviceCertificate.from_payload(bench.answer(CS02E, odd))
    assert answer.response_code is DeviceCertificateResult.INVALID_KEY_USAGE
    assert executed(gsme) == []  # no certificate given: not run


# --- State ------------------------------------------------------------------------------


def test_replaced_anchors_survive_device_state(
    bench: Bench, pki: TestPki, clock: VirtualClock
) -> None:
    bench.update(NO_BY_NO, "network_operator", _replacements(pki.party("network_operator2")))
    clock.run()
    state = bench.meter.state()
    fresh = _meter(pki, clock, Esme, "esme")
    assert fresh.certificates == {}
    fresh.load_state(state)
    assert fresh.anchors == bench.meter.anchors
    assert fresh.certificates == bench.meter.certificates
    assert Bench(bench.headend, fresh).details(NO, originator="network_operator2").parties


# --- Through a world: hub, HAN, save and load ----------------------------------------------


def test_world_replacement_end_to_end(tmp_path: Path) -> None:
    # The default cast has network_operator2, so a loaded world can still speak as it.
    world = World(seed=31)
    run = Run("credentials", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    esme = world.add_meter("premises", "esme", world.pki.party("esme").eui64)
    gsme = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64)
    other = world.add_meter("premises", "esme")  # generated keys: no certificates
    for meter in (esme, gsme, other):
        assert run.add_device(hub, meter).ok
        assert run.wait_joined(meter, hub, "join").ok
    he = world.headend
    old = world.pki.party("network_operator").eui64
    counter = he.next_counter(old)
    command = UpdateSecurityCredentials(
        AuthorisingControl(3, counter, TrustAnchorCell(NO, DS_KEY_USAGE), new_floor=0),
        _replacements(world.pki.party("network_operator2")),
    )
    for meter in (esme, gsme):
        if meter is gsme:
            counter = he.next_counter(old)
            command = UpdateSecurityCredentials(
                AuthorisingControl(3, counter), command.replacements
            )
        outcome = run.meter_command(
            hub,
            meter,
            NO_BY_NO,
            asn1.encode(command.to_payload()),
            originator="network_operator",
            counter=counter,
        )
        assert outcome.ok, outcome.result
        assert outcome.response is not None and outcome.response.signature  # critical: signed
        answer = UpdateCredentialsResponse.from_payload(
            asn1.decode(NO_BY_NO, CraFlag.RESPONSE, outcome.response.payload)
        )
        assert answer.outcome is not None and answer.outcome.succeeded
        assert meter.device.anchors.network_operator.party_id == NEW_NO

    def probe(w: World, meter_eui: bytes, originator: str) -> bool:
        """A CS02a signed by ``originator``: answered, or discarded by the meter."""
        message = w.headend.command(
            CS02A, asn1.encode(_details_command(NO)), meter_eui, originator=originator
        )
        return w.headend.send(next(iter(w.hubs.values())).chf, message, timeout=60).ok

    assert not probe(world, esme.eui64, "network_operator")
    assert probe(world, esme.eui64, "network_operator2")
    # CS02e: meters from the test PKI carry its certificates, generated ones none.
    assert esme.device.certificates[KeyUsage.DS] == _der(world.pki.party("esme").ds_cert)
    assert other.device.certificates == {}
    # Save and load: the replaced anchor stays replaced.
    loaded = World.load(world.save(tmp_path / "world.json"))
    loaded.run(5)
    for eui in (esme.eui64, gsme.eui64):
        assert loaded.meters[eui].device.anchors.network_operator.party_id == NEW_NO
    assert loaded.meters[esme.eui64].device.certificates == esme.device.certificates
    assert loaded.meters[other.eui64].device.certificates == {}
    assert not probe(loaded, esme.eui64, "network_operator")
    assert probe(loaded, esme.eui64, "network_operator2")
