"""Example messages the kit builds and protects with its own test PKI.

They give a fresh machine something real to decode (the README's first
command) without shipping any reference data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from gbcs import asn1, dlms
from gbcs.catalogue import CATALOGUE
from gbcs.devicelog import DeviceLog, DeviceLogEntry, DeviceLogs, ReadDeviceLogs
from gbcs.errors import GbcsError
from gbcs.frame import GbcsMessage, new_command, response_to
from gbcs.joins import DisconnectFromHan
from gbcs.primitives import CosemDateTime
from gbcs.security import SecurityContext
from gbcs.testpki import TestPki

__all__ = ["EXAMPLES", "build_example"]

# ZigBee's published install-code test pattern, as the RTDS device logs use it (CRIB §6).
SAMPLE_KEY_HASH = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
SAMPLE_TIME = CosemDateTime(2026, 11, 21, 6, 9, 0, 0, 0, 0, 0)
COUNTER = 0x0000_0001_0000_0510


def _disconnect(pki: TestPki, ctx: SecurityContext) -> GbcsMessage:
    esme = pki.party("esme").eui64
    payload = asn1.encode(DisconnectFromHan(esme).to_payload())
    command = new_command(
        CATALOGUE.disconnect_code,
        payload,
        originator=pki.party("supplier").eui64,
        target=esme,
        counter=COUNTER,
    )
    return ctx.protect(command, sign=True)


def _ccs07_command(pki: TestPki, ctx: SecurityContext) -> GbcsMessage:
    request = ReadDeviceLogs().to_request(dlms.invoke_id_for_counter(COUNTER))
    command = new_command(
        ReadDeviceLogs.MESSAGE_CODE,
        dlms.encode(request),
        originator=pki.party("acb").eui64,
        target=pki.party("chf").eui64,
        counter=COUNTER,
        on_behalf_of=pki.party("supplier").eui64,
        on_behalf_counter=COUNTER - 1,
    )
    return ctx.protect(command)


def _ccs07_response(pki: TestPki, ctx: SecurityContext) -> GbcsMessage:
    command = _ccs07_command(pki, ctx)
    current = DeviceLog(
        bytes.fromhex("00DB1234567890FF"),
        (
            DeviceLogEntry(pki.party("esme").eui64, SAMPLE_KEY_HASH),
            DeviceLogEntry(pki.party("gsme").eui64, SAMPLE_KEY_HASH),
        ),
        SAMPLE_TIME,
    )
    historic = DeviceLog(current.extended_pan_id, (), SAMPLE_TIME)
    response = DeviceLogs(current, historic).to_response(dlms.invoke_id_for_counter(COUNTER))
    return ctx.protect(response_to(command, dlms.encode(response), date_time=SAMPLE_TIME))


EXAMPLES: dict[str, str] = {
    "disconnect": "SECMP0013 CS02f disconnect: supplier-signed, ACB-MAC'd command to the ESME",
    "ccs07": "CCS07 read CHF device logs: ACB to CHF on behalf of the supplier, MAC'd",
    "ccs07-response": "CCS07 response from the CHF with its current and historic logs",
}
_BUILDERS: dict[str, Callable[[TestPki, SecurityContext], GbcsMessage]] = {
    "disconnect": _disconnect,
    "ccs07": _ccs07_command,
    "ccs07-response": _ccs07_response,
}


def build_example(name: str, keys: Path | None = None, *, seed: int = 1) -> bytes:
    """Build example ``name`` with the default test-PKI cast; write the keys to ``keys``."""
    builder = _BUILDERS.get(name)
    if builder is None:
        raise GbcsError(f"no example {name!r}; choose from {', '.join(EXAMPLES)}")
    pki = TestPki.default_cast(seed)
    if keys is not None:
        pki.write(keys)
    ctx = SecurityContext(pki.keystore(), acb=pki.party("acb").eui64)
    return builder(pki, ctx).encode()
