"""The QA reads a triage bench makes of a meter, built and read back in one place.

CS07 (read join details) on every meter; on an ESME also ECS26m (identity),
ECS52 (firmware version) and ECS35a (event log, from the epoch to now). The
scenarios and the DCC service layer both send them. CS02a tells whose trust
anchors the meter holds: network operators are regional, so a meter holding
another operator's anchors can only be re-deployed in that operator's region
(DESIGN §2).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gbcs import asn1, dlms
from gbcs.credentials_uc import (
    CredentialDetails,
    CredentialStatus,
    KeyUsageBits,
    ProvideCredentialDetails,
    TrustAnchorCell,
)
from gbcs.dlms import AccessResponse
from gbcs.errors import DecodeError
from gbcs.frame import CraFlag, GbcsMessage
from gbcs.joins import JoinDetails
from gbcs.keys import KeyUsage
from gbcs.reads import (
    EsmeIdentity,
    EventLog,
    FirmwareVersion,
    ReadEsmeIdentity,
    ReadEventLog,
    ReadFirmwareVersion,
)
from gbcs.testpki import RemotePartyRole

__all__ = [
    "ANCHOR_ROLES",
    "ESME_READS",
    "PROVIDE_CREDENTIAL_DETAILS",
    "QA_USE_CASES",
    "READ_JOIN_DETAILS",
    "anchor_holders",
    "credentials_request",
    "parse",
    "request",
]

READ_JOIN_DETAILS = 0x0013
PROVIDE_CREDENTIAL_DETAILS = 0x0008  # CS02a
# The roles CS02a asks about, as in the RTDS 6.24.1 command: supplier, network operator.
ANCHOR_ROLES = {
    RemotePartyRole.SUPPLIER: "supplier",
    RemotePartyRole.NETWORK_OPERATOR: "network_operator",
}
ESME_READS = ("ECS26m", "ECS52", "ECS35a")
QA_USE_CASES = ("CS07", *ESME_READS)


def request(
    use_case: str, counter: int, since: dt.datetime, until: dt.datetime
) -> tuple[int, bytes]:
    """(message code, payload) of a QA read whose command carries ``counter``."""
    if use_case == "CS07":
        return READ_JOIN_DETAILS, asn1.encode(JoinDetails.COMMAND)
    reads: dict[str, Any] = {
        "ECS26m": ReadEsmeIdentity(),
        "ECS52": ReadFirmwareVersion(),
        "ECS35a": ReadEventLog.between(since, until),
    }
    try:
        read = reads[use_case]
    except KeyError:
        raise ValueError(f"{use_case!r} is not one of the QA reads {QA_USE_CASES}") from None
    return read.MESSAGE_CODE, dlms.encode(read.to_request(dlms.invoke_id_for_counter(counter)))


def parse(use_case: str, response: GbcsMessage) -> dict[str, Any]:
    """What the meter answered; ``failed`` is True when it reported a read failure."""
    if use_case == "CS07":
        details = JoinDetails.from_payload(asn1.decode(READ_JOIN_DETAILS, 2, response.payload))
        return {
            "failed": details.response_code != 0,
            "partners": [d.device_id.hex().upper() for d in details.devices or ()],
        }
    apdu = dlms.decode(response.payload)
    if not isinstance(apdu, AccessResponse):
        raise DecodeError("dlms", "apdu", 0, f"the {use_case} response is not an Access-Response")
    failed = any(r.result for r in apdu.results)
    if use_case == "ECS26m":
        ident = EsmeIdentity.from_response(apdu)
        return {
            "failed": failed,
            "model": (ident.model or b"").decode("ascii", "replace"),
            "manufacturer": (ident.manufacturer or b"").decode("ascii", "replace"),
        }
    if use_case == "ECS52":
        firmware = FirmwareVersion.from_response(apdu)
        return {"failed": failed, "firmware": (firmware.version or b"").hex().upper()}
    events = EventLog.from_response(apdu)
    return {"failed": failed, "events": len(events.entries or ())}


def credentials_request() -> tuple[int, bytes]:
    """(message code, payload) of CS02a as in RTDS 6.24.1: the ACB asks, MAC only,
    authorised by its own KA cell, for the supplier's and network operator's anchors."""
    command = ProvideCredentialDetails(
        TrustAnchorCell(RemotePartyRole.ACCESS_CONTROL_BROKER, KeyUsageBits.of(KeyUsage.KA)),
        tuple(ANCHOR_ROLES),
    )
    return PROVIDE_CREDENTIAL_DETAILS, asn1.encode(command.to_payload())


def anchor_holders(response: GbcsMessage) -> dict[str, str | None]:
    """Whose anchor the meter holds per role of :data:`ANCHOR_ROLES` (EUI-64 hex), None
    where it reported none. Raises DecodeError when the cells name different parties."""
    details = CredentialDetails.from_payload(
        asn1.decode(PROVIDE_CREDENTIAL_DETAILS, CraFlag.RESPONSE, response.payload)
    )
    holders: dict[str, str | None] = {}
    for role, name in ANCHOR_ROLES.items():
        entry = details.for_role(role)
        if entry is None or entry.status is not CredentialStatus.SUCCESS or not entry.cells:
            holders[name] = None
            continue
        ids = {cell.subject_unique_id for cell in entry.cells}
        if len(ids) != 1:
            raise DecodeError(
                "asn1",
                "trustAnchorCellDetails",
                0,
                f"the {name} cells name {len(ids)} different parties",
            )
        holders[name] = ids.pop().hex().upper()
    return holders
