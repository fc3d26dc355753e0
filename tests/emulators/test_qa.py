"""QA reads: the commands a bench sends and what it makes of the answers."""

from __future__ import annotations

import datetime as dt

import pytest

from emulators import qa
from gbcs import asn1, dlms
from gbcs.credentials_uc import (
    CredentialDetails,
    CredentialStatus,
    KeyUsageBits,
    ProvideCredentialDetails,
    RemotePartyDetails,
    TrustAnchorCell,
    TrustAnchorCellContents,
)
from gbcs.errors import DecodeError
from gbcs.frame import CraFlag, new_alert
from gbcs.joins import HanDevice, JoinDetails
from gbcs.keys import KeyUsage
from gbcs.reads import EsmeIdentity, FirmwareVersion, ReadEventLog, ReadFirmwareVersion

T0 = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
T1 = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)
METER = bytes.fromhex("00DB1234567890A0")


def _message(payload: bytes) -> object:
    return new_alert(0x0013, payload, originator=METER, target=METER, counter=1)


def test_requests_are_the_typed_commands() -> None:
    assert qa.request("CS07", 5, T0, T1) == (0x0013, asn1.encode(JoinDetails.COMMAND))
    code, payload = qa.request("ECS52", 0x0000_0001_0000_0007, T0, T1)
    request = dlms.decode(payload)
    assert code == ReadFirmwareVersion.MESSAGE_CODE
    assert request.invoke_id == dlms.invoke_id_for_counter(0x0000_0001_0000_0007)
    code, payload = qa.request("ECS35a", 1, T0, T1)
    assert ReadEventLog.from_request(dlms.decode(payload)) == ReadEventLog.between(T0, T1)
    with pytest.raises(ValueError, match="'ECS99' is not one of the QA reads"):
        qa.request("ECS99", 1, T0, T1)


def test_answers_are_parsed_and_failures_flagged() -> None:
    details = JoinDetails(0, (HanDevice(bytes.fromhex("00DB1234567890A1"), 0),))
    answer = qa.parse("CS07", _message(asn1.encode(details.to_payload())))
    assert answer == {"failed": False, "partners": ["00DB1234567890A1"]}
    failed = JoinDetails(1, None)
    assert qa.parse("CS07", _message(asn1.encode(failed.to_payload())))["failed"] is True
    firmware = FirmwareVersion(None, result=1).to_response(0x20000001)
    assert qa.parse("ECS52", _message(dlms.encode(firmware))) == {"failed": True, "firmware": ""}
    # One GET of several failing is a read failure, not only all of them failing.
    identity = EsmeIdentity(b"B", None, b"CSW ", False, results=(0, 1, 0, 0))
    answer = qa.parse("ECS26m", _message(dlms.encode(identity.to_response(0x20000001))))
    assert answer == {"failed": True, "model": "", "manufacturer": "CSW "}


def test_a_request_where_a_response_belongs_is_an_error() -> None:
    request = ReadFirmwareVersion().to_request(0x20000001)
    with pytest.raises(DecodeError, match="not an Access-Response"):
        qa.parse("ECS52", _message(dlms.encode(request)))


def _cell(usage: KeyUsage, party: bytes) -> TrustAnchorCellContents:
    return TrustAnchorCellContents(KeyUsageBits.of(usage), party, bytes(8))


def _details(*parties: RemotePartyDetails) -> object:
    payload = asn1.encode(CredentialDetails(parties).to_payload())
    return new_alert(
        qa.PROVIDE_CREDENTIAL_DETAILS, payload, originator=METER, target=METER, counter=1
    )


def test_the_credentials_read_is_the_rtds_cs02a() -> None:
    """RTDS 6.24.1: the ACB's KA cell authorises; supplier (2) and network operator (3)."""
    code, payload = qa.credentials_request()
    assert code == 0x0008
    command = ProvideCredentialDetails.from_payload(asn1.decode(code, CraFlag.COMMAND, payload))
    assert command.roles == (2, 3)
    assert command.authorising_cell == TrustAnchorCell(4, KeyUsageBits.of(KeyUsage.KA))


def test_anchor_holders_name_each_roles_party_or_none() -> None:
    no = bytes.fromhex("90B3D51F30020001")
    answer = _details(
        RemotePartyDetails(2, CredentialStatus.TRUST_ANCHOR_NOT_FOUND),
        RemotePartyDetails(
            3, CredentialStatus.SUCCESS, 0, (_cell(KeyUsage.DS, no), _cell(KeyUsage.KA, no))
        ),
    )
    assert qa.anchor_holders(answer) == {"supplier": None, "network_operator": "90B3D51F30020001"}
    mixed = _details(
        RemotePartyDetails(
            3,
            CredentialStatus.SUCCESS,
            0,
            (_cell(KeyUsage.DS, no), _cell(KeyUsage.KA, bytes.fromhex("90B3D51F30020000"))),
        ),
    )
    with pytest.raises(DecodeError, match="network_operator cells name 2 different parties"):
        qa.anchor_holders(mixed)
    assert qa.anchor_holders(_details()) == {"supplier": None, "network_operator": None}
    # Cells beside a failure status are not an answer: the meter did not say it holds them.
    refused = _details(
        RemotePartyDetails(3, CredentialStatus.OTHER, 0, (_cell(KeyUsage.DS, no),)),
    )
    assert qa.anchor_holders(refused) == {"supplier": None, "network_operator": None}
