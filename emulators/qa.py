"""The QA reads a triage bench makes of a meter, built and read back in one place.

CS07 (read join details) on every meter; on an ESME also ECS26m (identity),
ECS52 (firmware version) and ECS35a (event log, from the epoch to now). The
scenarios and the DCC service layer both send them.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from gbcs import asn1, dlms
from gbcs.dlms import AccessResponse
from gbcs.errors import DecodeError
from gbcs.frame import GbcsMessage
from gbcs.joins import JoinDetails
from gbcs.reads import (
    EsmeIdentity,
    EventLog,
    FirmwareVersion,
    ReadEsmeIdentity,
    ReadEventLog,
    ReadFirmwareVersion,
)

__all__ = ["ESME_READS", "QA_USE_CASES", "READ_JOIN_DETAILS", "parse", "request"]

READ_JOIN_DETAILS = 0x0013
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
