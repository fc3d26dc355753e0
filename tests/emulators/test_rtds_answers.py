"""Emulated devices answer RTDS commands as the RTDS responses do: payload and protection.

Each RTDS command is rebuilt with its own header and payload, protected as in the RTDS
(signed and/or MAC'd) with the test PKI's keys, and given to the emulated device it
targets; the answer must carry the RTDS response's payload, other-information and form
(MAC'd or signed, Date-Time or not: CRIB §2.2, §2.4).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from emulators.chf import CommsHub
from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.device import GbcsDevice
from emulators.gpf import GCS59, Gpf
from emulators.headend import HeadEnd
from emulators.meters import Esme, Gsme
from gbcs import asn1
from gbcs.credentials_uc import (
    DS_KEY_USAGE,
    CredentialDetails,
    CredentialStatus,
    ProvideCredentialDetails,
    TrustAnchorCell,
)
from gbcs.devicelog import DeviceLogEntry
from gbcs.frame import CraFlag, GbcsMessage, build_message, decode
from gbcs.joins import (
    GpfDeviceLogBackup,
    GpfDeviceLogRestore,
    GpfRestoreOutcome,
    JoinDetails,
    JoinResult,
)
from gbcs.rtds import RtdsVector
from gbcs.testpki import RemotePartyRole, TestPki
from tests.emulators.conftest import EPID, INSTALL_CODE, FakeHan, verified

CS02A, CS07 = 0x0008, 0x0013
ESME, GSME = bytes.fromhex("00DB1234567890A0"), bytes.fromhex("00DB1234567890A1")
KINDS = {0xA0: "esme", 0xA1: "gsme", 0xA2: "chf", 0xA3: "gpf"}


def _rtds(corpus: list[RtdsVector], name: str) -> GbcsMessage:
    (message,) = [decode(v.data) for v in corpus if v.name == f"{name}_GBCS.HEX"]
    return message


def _device(pki: TestPki, clock: VirtualClock, target: bytes) -> GbcsDevice:
    kind = KINDS[target[-1]]
    credentials = DeviceCredentials.from_party(pki.party(kind))
    anchors = TrustAnchors.from_pki(pki)
    device: GbcsDevice
    if kind in ("esme", "gsme"):
        meter = Esme if kind == "esme" else Gsme
        device = meter(credentials, anchors, clock, install_code=INSTALL_CODE)
    elif kind == "chf":
        device = CommsHub(credentials, anchors, clock, extended_pan_id=EPID)
    else:
        device = Gpf(credentials, anchors, clock)
    device.han = FakeHan()
    return device


def _form(message: GbcsMessage) -> tuple[bool, bool, bool, bytes]:
    header = message.header
    return (
        message.has_mac,
        message.is_signed,
        header.date_time is not None,
        header.other_information.encode(),
    )


def _partners(*entries: tuple[str, int]) -> Callable[[Any], None]:
    def setup(meter: Any) -> None:
        meter.partners.update({bytes.fromhex(d): t for d, t in entries})

    return setup


def _logged(device_id: bytes) -> Callable[[Any], None]:
    def setup(hub: Any) -> None:
        hub.current[device_id] = DeviceLogEntry(device_id, bytes(16))

    return setup


# The RTDS state each scenario needs (what its SUCCESS/ERROR vector presupposes).
CASES: dict[str, Callable[[Any], None] | None] = {
    "CCS01_8.11_SUCCESS": None,
    "CCS02_8.11_SUCCESS": _logged(ESME),
    "CCS02_8.11_ERROR": None,
    "CCS03_8.12.1_SUCCESS": None,
    "CS03A1_8.7.1_SUCCESS": None,
    "CS03A1_8.7.1_ERROR": _partners(("00DB12345678909A", 4)),  # joined as an HCALCS
    "CS03B_8.7.2_SUCCESS": None,
    "CS03B_8.7.2_ERROR": None,
    "CS03CCritical_8.7.1_SUCCESS": None,
    "CS04ACCritical_8.8.1_SUCCESS": _partners(("00DB123456789099", 5)),
    "CS04ACCritical_8.8.1_ERROR": None,
    "CS04B_8.8.2_SUCCESS": _partners(("0102030405060708", 3)),
    "CS04B_8.8.2_ERROR": None,
    "CS07_8.9_SUCCESS": _partners(
        ("0102030405060708", 3), ("00DB123456789099", 3), ("00DB123456789097", 5)
    ),
    "CS11_3.3_SUCCESS": None,
    "CS10a_6.13_NOT_FOUND": None,  # nothing logged in its range: Default Response 0x8B
    "GCS38_11.2_SUCCESS": lambda gsme: setattr(gsme, "firmware_version", b"\x01\x23\xab\xcd"),
    "GCS59_8.12.2_SUCCESS": None,
}


@pytest.mark.parametrize("stem", list(CASES))
def test_rtds_command_gets_the_rtds_answer(
    corpus: list[RtdsVector], pki: TestPki, stem: str
) -> None:
    command, expected = _rtds(corpus, f"{stem}_COMMAND"), _rtds(corpus, f"{stem}_RESPONSE")
    clock = VirtualClock()
    headend = HeadEnd(pki, clock)
    device = _device(pki, clock, command.header.business_target)
    setup = CASES[stem]
    if setup is not None:
        setup(device)
    fresh = build_message(command.header, command.payload)
    protected = headend.security.protect(fresh, sign=command.is_signed, mac=command.has_mac)
    out = device.receive(protected.encode())
    assert out is not None, device.security_log[-1:]
    answer = verified(headend, out)
    assert answer.payload == expected.payload
    assert _form(answer) == _form(expected)
    assert answer.header.originator_counter == expected.header.originator_counter
    assert answer.header.business_target == expected.header.business_target


# CS02a authenticated by a signature (RTDS CS02aSignature, CRIB §2.4) ----------------------


def test_signed_only_cs02a_is_answered_signed_only(
    corpus: list[RtdsVector], esme: Esme, headend: HeadEnd
) -> None:
    """A signed, un-MAC'd CS02a runs, and its answer is signed and not MAC'd, as in the RTDS."""
    reference = _rtds(corpus, "CS02aSignature_NA_ERROR_RESPONSE")
    command = ProvideCredentialDetails(
        TrustAnchorCell(RemotePartyRole.SUPPLIER, DS_KEY_USAGE), (RemotePartyRole.SUPPLIER,)
    )
    signed = headend.command(CS02A, asn1.encode(command.to_payload()), esme.eui64, sign=True)
    out = esme.receive(signed.with_mac(None).encode())
    assert out is not None, esme.security_log[-1:]
    assert out[0] == 0xDF  # General Signing alone, no MAC header
    answer = verified(headend, out)
    assert _form(answer) == _form(reference) == (False, True, False, b"\x00\x08")
    details = CredentialDetails.from_payload(asn1.decode(CS02A, CraFlag.RESPONSE, answer.payload))
    assert details.for_role(RemotePartyRole.SUPPLIER).status is CredentialStatus.SUCCESS


@pytest.mark.parametrize("stem", ["CS02fMAC_6.24.1_SUCCESS", "CS02fSignature_NA_SUCCESS"])
def test_rtds_cs02f_0x011b_is_answered_in_the_rtds_form(
    corpus: list[RtdsVector], pki: TestPki, stem: str
) -> None:
    """The RTDS "CS02f" (0x011B, CS02a's read that knows the load-controller role) to the
    ESME: MAC'd or signed-only as the command was, one entry per requested role in order.
    Our ESME holds no load-controller anchor (role 8), where the RTDS meter held one."""
    command, expected = _rtds(corpus, f"{stem}_COMMAND"), _rtds(corpus, f"{stem}_RESPONSE")
    clock = VirtualClock()
    headend = HeadEnd(pki, clock)
    device = _device(pki, clock, command.header.business_target)
    fresh = build_message(command.header, command.payload)
    protected = headend.security.protect(fresh, sign=command.is_signed, mac=command.has_mac)
    out = device.receive(protected.encode())
    assert out is not None, device.security_log[-1:]
    answer = verified(headend, out)
    assert _form(answer) == _form(expected)

    def roles(message: GbcsMessage) -> list[int]:
        payload = asn1.decode(0x011B, CraFlag.RESPONSE, message.payload)
        return [p.role for p in CredentialDetails.from_payload(payload).parties]

    assert roles(answer) == roles(expected)
    details = CredentialDetails.from_payload(asn1.decode(0x011B, CraFlag.RESPONSE, answer.payload))
    assert [(p.role, p.status) for p in details.parties] == {
        "CS02fMAC_6.24.1_SUCCESS": [
            (RemotePartyRole.SUPPLIER, CredentialStatus.SUCCESS),
            (8, CredentialStatus.TRUST_ANCHOR_NOT_FOUND),
        ],
        "CS02fSignature_NA_SUCCESS": [
            (RemotePartyRole.SUPPLIER, CredentialStatus.SUCCESS),
            (RemotePartyRole.NETWORK_OPERATOR, CredentialStatus.SUCCESS),
        ],
    }[stem]


def test_signed_only_is_refused_where_the_rtds_never_shows_it(esme: Esme, headend: HeadEnd) -> None:
    """CS07 must be MAC'd: a signature alone is no authentication for it."""
    signed = headend.command(CS07, asn1.encode(JoinDetails.COMMAND), esme.eui64, sign=True)
    assert signed.is_signed
    assert esme.receive(signed.with_mac(None).encode()) is None
    assert esme.security_log[-1].detail.endswith("MAC absent")


def test_signed_only_cs02a_with_a_bad_signature_is_refused(esme: Esme, headend: HeadEnd) -> None:
    command = ProvideCredentialDetails(
        TrustAnchorCell(RemotePartyRole.SUPPLIER, DS_KEY_USAGE), (RemotePartyRole.SUPPLIER,)
    )
    signed = headend.command(CS02A, asn1.encode(command.to_payload()), esme.eui64, sign=True)
    assert signed.signature is not None
    forged = signed.with_mac(None).with_signature(bytes(64))
    assert esme.receive(forged.encode()) is None
    assert esme.security_log[-1].detail.endswith("signature invalid")


# GPF: the RTDS GCS62 backup restored by GCS59 --------------------------------------------


def test_gcs59_restores_the_rtds_gcs62_backup(
    corpus: list[RtdsVector], pki: TestPki, anchors: TrustAnchors
) -> None:
    """The six-entry log of the RTDS GCS62 alert fits the GPF, whose backup is then the
    RTDS alert's payload byte for byte (CRIB §6.8, §6.9)."""
    reference = _rtds(corpus, "GCS62_NA_8071_ALERT")
    backup = GpfDeviceLogBackup.from_payload(
        asn1.decode(reference.message_code, CraFlag.ALERT, reference.payload)
    )
    assert len(backup.devices) == 6
    clock = VirtualClock(dt.datetime(2015, 1, 1, tzinfo=dt.UTC))
    headend = HeadEnd(pki, clock)
    gpf = Gpf(DeviceCredentials.from_party(pki.party("gpf")), anchors, clock)
    alerts: list[bytes] = []
    gpf.on_alert = alerts.append
    payload = asn1.encode(GpfDeviceLogRestore(backup.devices).to_payload())
    out = gpf.receive(headend.command(GCS59, payload, gpf.eui64, originator="acb").encode())
    assert out is not None, gpf.security_log[-1:]
    outcome = GpfRestoreOutcome.from_payload(
        asn1.decode(GCS59, CraFlag.RESPONSE, verified(headend, out).payload)
    )
    assert outcome.outcomes == tuple((d, JoinResult.SUCCESS) for d in backup.devices)
    clock.run()
    (alert,) = alerts
    message = verified(headend, alert)
    assert message.payload == reference.payload
    assert _form(message) == _form(reference)
    assert message.header.business_target == reference.header.business_target
