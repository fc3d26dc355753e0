"""Catalogue of GBCS message codes (CRIB §7), plus the kit's SECMP0013 disconnect.

``critical`` says whether the use case's command is a Critical Command (signed
by the supplier, CRIB §2.4). It is read off the RTDS (a signed and MAC'd command,
or a pre-command, exists other than as an ERROR case; a signed-only read is not
critical) and the GBCS credential-update use cases; ``None`` means
the available material does not show it (alert-only codes, codes absent from
the reference set).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from gbcs.errors import GbcsError

__all__ = [
    "CATALOGUE",
    "DISCONNECT_USE_CASE",
    "SECMP0013_DISCONNECT_DEFAULT_CODE",
    "Catalogue",
    "UseCase",
    "disconnect_code_from_env",
]


@dataclass(frozen=True, slots=True)
class UseCase:
    message_code: int
    use_case: str
    family: str  # "dlms", "gbz", "asn1" or "dlms/gbz" (generic alerts come in both)
    name: str
    critical: bool | None
    in_rtds: bool
    """A message with this code is in the RTDS 4.5.0 subset the kit is checked against."""


# SECMP0013 "CS02f Disconnect Smart Meter from HAN" has no GBCS message code:
# 0x011B already means a security-credentials read (CRIB §5.2). The kit uses a
# code outside every range GBCS allocates (0x0001-0x012B, 0x1000-0x1001).
SECMP0013_DISCONNECT_DEFAULT_CODE = 0x7F00
DISCONNECT_USE_CASE = "CS02f-SECMP0013"
DISCONNECT_ENV = "GBCS_HIL_DISCONNECT_CODE"

_GBCS: tuple[UseCase, ...] = (
    UseCase(0x0001, "CCS01", "dlms", "add device to CHF device log", False, True),
    UseCase(0x0002, "CCS02", "dlms", "remove device from CHF device log", False, True),
    UseCase(0x0003, "CCS03", "dlms", "restore CHF device log", False, True),
    UseCase(
        0x0004,
        "CCS05/CCS04",
        "dlms",
        "read CHF device log (active devices) / HAN comms check",
        False,
        True,
    ),
    UseCase(0x0007, "CS01a", "dlms", "prepayment top-up, ESME", None, False),
    # CS02a and CS02f are reads of the trust-anchor cells, not critical: each has a SUCCESS
    # command MAC'd by the ACB and another signed only (General Signing, no MAC: the
    # CS02aSignature/CS02fSignature vectors), which is another way to authorise a read.
    # A critical command is signed *and* MAC'd (CRIB §2.4); neither form is.
    UseCase(0x0008, "CS02a", "asn1", "provide security credentials details", False, True),
    UseCase(
        0x000A,
        "CS02c",
        "asn1",
        "issue security credentials (device key pair, cert request)",
        True,
        True,
    ),
    UseCase(0x000B, "CS02d", "asn1", "update device certificate on device", True, True),
    UseCase(0x000C, "CS02e", "asn1", "provide device certificate from device", True, True),
    UseCase(0x000D, "CS03A1", "asn1", "HAN join, method A, meter side", True, True),
    UseCase(0x000E, "CS03B", "asn1", "HAN join, method B", False, True),
    UseCase(0x000F, "CS04AC", "asn1", "HAN unjoin, method A or C", True, True),
    UseCase(0x0010, "CS04B", "asn1", "HAN unjoin, method B", False, True),
    UseCase(0x0012, "CS06", "asn1", "activate firmware", True, True),
    UseCase(0x0013, "CS07", "asn1", "read device join details", False, True),
    UseCase(0x0014, "CS10a", "gbz", "read ZigBee device event log", False, True),
    UseCase(0x0015, "CS11", "gbz", "clear ZigBee device event log", False, True),
    UseCase(0x0018, "CS14", "dlms", "HAN whitelist addition/removal alert", None, True),
    UseCase(0x0019, "ECS01a", "dlms", "set tariff and price, ESME", True, True),
    UseCase(0x001A, "ECS02", "dlms", "ESME payment mode to credit", True, True),
    UseCase(0x001B, "ECS03", "dlms", "ESME payment mode to prepayment", True, True),
    UseCase(0x001C, "ECS04a", "dlms", "adjust ESME meter balance", True, True),
    UseCase(0x001D, "ECS05", "dlms", "reset tariff block counter matrix", None, False),
    UseCase(0x001E, "ECS07", "dlms", "manage debt, ESME", True, True),
    UseCase(0x001F, "ECS08", "dlms", "update prepayment configuration, ESME", None, False),
    UseCase(0x0020, "ECS09", "dlms", "activate emergency credit, ESME", True, True),
    UseCase(0x0021, "ECS10", "dlms", "send message to ESME", False, True),
    UseCase(0x0022, "ECS12", "dlms", "set change-of-tenancy date, ESME", False, True),
    UseCase(0x0023, "ECS14", "dlms", "disable privacy PIN, ESME", False, True),
    UseCase(0x0024, "ECS15a", "dlms", "clear ESME event log", False, True),
    UseCase(0x0025, "ECS16", "dlms", "write supplier contact details, ESME", False, True),
    UseCase(0x0026, "ECS17a", "dlms", "read ESME energy registers (export)", False, True),
    UseCase(
        0x0027, "ECS17b", "dlms", "read ESME energy registers (import, protected)", False, True
    ),
    UseCase(0x0028, "ECS17c", "dlms", "read ESME energy registers (power)", None, False),
    UseCase(0x0029, "ECS17d", "dlms", "read ESME TOU registers", None, False),
    UseCase(0x002A, "ECS17e", "dlms", "read ESME TOU-with-blocks registers", False, True),
    UseCase(0x002B, "ECS18a", "dlms", "read max demand (export)", False, True),
    UseCase(0x002C, "ECS18b", "dlms", "read max demand (import)", None, False),
    UseCase(0x002D, "ECS19", "dlms", "read ESME prepayment registers", None, False),
    UseCase(0x002E, "ECS20a", "dlms", "ESME billing log, debt payments", None, False),
    UseCase(0x002F, "ECS20b", "dlms", "ESME billing log, mode/tariff change", None, False),
    UseCase(0x0030, "ECS20c", "dlms", "ESME billing log, billing calendar", None, False),
    UseCase(0x0033, "ECS21a", "dlms", "electricity daily read log", None, False),
    UseCase(0x0034, "ECS21b", "dlms", "electricity prepayment daily read log", None, False),
    UseCase(0x0035, "ECS21c", "dlms", "electricity daily read log, export", False, True),
    UseCase(0x0036, "ECS22a", "dlms", "half-hour profile, export", None, False),
    UseCase(0x0037, "ECS22b", "dlms", "half-hour profile, active import", False, True),
    UseCase(0x0038, "ECS22c", "dlms", "half-hour profile, reactive import", None, False),
    UseCase(0x0039, "ECS23", "dlms", "voltage operational data", None, False),
    UseCase(0x003A, "ECS24", "dlms", "ESME tariff data", None, False),
    UseCase(0x003B, "ECS26a", "dlms", "ESME config: prepayment", None, False),
    UseCase(0x003C, "ECS26b", "dlms", "ESME config: voltage", None, False),
    UseCase(0x003D, "ECS26c", "dlms", "ESME config: randomisation", None, False),
    UseCase(0x003E, "ECS26d", "dlms", "ESME config: billing calendar", None, False),
    UseCase(0x003F, "ECS26e", "dlms", "ESME config: device identity", None, False),
    UseCase(0x0040, "ECS26f", "dlms", "ESME config: power thresholds", False, True),
    UseCase(0x0042, "ECS27", "dlms", "ESME load limit data", False, True),
    UseCase(0x0043, "ECS28a", "dlms", "set load limit config", True, True),
    UseCase(0x0044, "ECS28b", "dlms", "load limit counter reset", None, False),
    UseCase(0x0045, "ECS29a", "dlms", "set voltage config", False, True),
    UseCase(0x0046, "ECS30", "dlms", "set billing calendar, ESME", True, True),
    UseCase(0x0047, "ECS34", "dlms", "set instantaneous power threshold", False, True),
    UseCase(0x0048, "ECS35a", "dlms", "read ESME event log", False, True),
    UseCase(0x0049, "ECS35b", "dlms", "read ESME security log", None, False),
    UseCase(0x004A, "ECS37", "dlms", "set max demand period", None, False),
    UseCase(0x004B, "ECS38", "dlms", "update randomised offset limit", True, True),
    UseCase(0x004C, "ECS39a", "dlms", "set MPAN", None, False),
    UseCase(0x004D, "ECS39b", "dlms", "set export MPAN", None, False),
    UseCase(0x004E, "ECS40", "dlms", "read MPAN", None, False),
    UseCase(0x004F, "ECS42", "dlms", "close load switch", True, True),
    UseCase(0x0050, "ECS43", "dlms", "open load switch", True, True),
    UseCase(0x0051, "ECS44", "dlms", "arm load switch", True, True),
    UseCase(0x0052, "ECS45", "dlms", "read load switch status", None, False),
    UseCase(0x0053, "ECS46a", "dlms", "set HCALCS/ALCS labels", None, False),
    UseCase(0x0054, "ECS46c", "dlms", "set HCALCS/ALCS configuration", True, True),
    UseCase(
        0x0055,
        "ECS47",
        "dlms",
        "set/reset HCALCS or ALCS state (RTDS: Activate/Deactivate/Reset)",
        True,
        True,
    ),
    UseCase(0x0058, "ECS50", "dlms", "send CIN to ESME", False, True),
    UseCase(0x0059, "ECS52", "dlms", "read ESME/CH firmware version", None, False),
    UseCase(0x005A, "ECS57", "dlms", "reset max demand registers", None, False),
    UseCase(0x005E, "ECS61c", "dlms", "read boost button data", None, False),
    UseCase(0x005F, "ECS62", "dlms", "ALCS/boost button association (Add/Remove)", False, True),
    UseCase(0x0060, "ECS66", "dlms", "ESME daily consumption log", False, True),
    UseCase(
        0x0061,
        "ECS68",
        "dlms",
        "ESME critical sensitive alert (billing log, encrypted)",
        None,
        False,
    ),
    UseCase(0x0062, "ECS70", "dlms", "set clock on ESME (also ECS70Commission)", True, True),
    UseCase(0x0067, "ECS80", "dlms", "supply outage restore alert", None, False),
    UseCase(0x0068, "ECS81", "dlms", "set supply tamper state", True, True),
    UseCase(0x0069, "ECS82", "dlms", "read ESME meter balance", None, False),
    UseCase(0x006B, "GCS01a", "gbz", "set tariff and price, GSME", True, True),
    UseCase(0x006C, "GCS02", "gbz", "GSME payment mode to credit", True, True),
    UseCase(0x006D, "GCS03", "gbz", "GSME payment mode to prepayment", True, True),
    UseCase(0x006E, "GCS04", "gbz", "manage debt, GSME", True, True),
    UseCase(0x006F, "GCS05", "gbz", "update prepayment configuration, GSME", True, True),
    UseCase(0x0070, "GCS06", "gbz", "activate emergency credit, GSME", True, True),
    UseCase(0x0071, "GCS07", "gbz", "send message to GSME", False, True),
    UseCase(0x0072, "GCS09", "gbz", "change-of-tenancy date on GPF", None, False),
    UseCase(0x0073, "GCS11", "gbz", "disable privacy PIN, GSME", False, True),
    UseCase(0x0074, "GCS13a", "gbz", "GSME consumption register (encrypted rsp)", False, True),
    UseCase(0x0075, "GCS14", "gbz", "GSME prepayment registers", False, True),
    UseCase(0x0076, "GCS15c", "gbz", "GSME billing log, billing calendar", False, True),
    UseCase(0x0077, "GCS16a", "gbz", "GSME daily read log", None, False),
    UseCase(0x0078, "GCS17", "gbz", "GSME profile data log", False, True),
    UseCase(0x0079, "GCS18", "gbz", "gas network data log", None, False),
    UseCase(0x007B, "GCS21a", "gbz", "gas config: device information", None, False),
    UseCase(0x007C, "GCS23", "gbz", "set CV and conversion factor", True, True),
    UseCase(0x007D, "GCS24", "gbz", "set uncontrolled gas flow rate / tamper state", None, False),
    UseCase(0x007E, "GCS25", "gbz", "set billing calendar, GSME", None, False),
    UseCase(0x007F, "GCS28", "asn1", "set clock on GSME (also GCS28Commission)", True, True),
    UseCase(0x0080, "GCS31", "gbz", "start network data log", None, False),
    UseCase(0x0081, "GCS32", "gbz", "close valve", None, False),
    UseCase(0x0082, "GCS33", "gbz", "read valve status", None, False),
    UseCase(0x0083, "GCS36", "gbz", "send CIN to GSME", False, True),
    UseCase(0x0084, "GCS38", "gbz", "read GSME firmware version", False, True),
    UseCase(0x0085, "GCS39", "gbz", "arm valve", None, False),
    UseCase(0x0086, "GCS40a", "gbz", "adjust prepayment-mode balance, GSME", True, True),
    UseCase(0x0087, "GCS41", "gbz", "set MPRN", None, False),
    UseCase(0x0088, "GCS44", "gbz", "write contact details, GSME", None, False),
    UseCase(0x0089, "GCS46", "gbz", "read MPRN", None, False),
    UseCase(0x008B, "GCS53", "gbz", "billing data log pushed as alert", None, True),
    UseCase(0x008C, "GCS59", "asn1", "restore GPF device log", False, True),
    UseCase(0x008D, "GCS60", "gbz", "read GSME meter balance", None, False),
    UseCase(
        0x0090, "PCS02", "gbz", "emergency credit on GSME from PPMID (device→device)", False, True
    ),
    UseCase(0x0092, "ECS26i", "dlms", "CHF identity config", False, True),
    UseCase(0x0093, "ECS35c", "dlms", "read CHF event log", False, True),
    UseCase(0x0094, "ECS35d", "dlms", "read CHF security log", False, True),
    UseCase(0x0096, "GCS16b", "gbz", "GSME prepayment daily read log", False, True),
    UseCase(0x0097, "CS01b", "gbz", "prepayment top-up, GSME", None, False),
    UseCase(0x009B, "PCS01", "gbz", "top-up GSME via PPMID (device→device)", False, True),
    UseCase(0x009D, "GCS21d", "gbz", "GSME config: billing calendar", None, False),
    UseCase(0x009E, "GCS21e", "gbz", "GSME/GPF config: identity", None, False),
    UseCase(0x009F, "GCS21f", "gbz", "GSME tariff data", False, True),
    UseCase(0x00A0, "GCS61", "gbz", "gas daily consumption log", False, True),
    UseCase(0x00A1, "CS10b", "gbz", "read ZigBee device security log", False, True),
    UseCase(0x00A2, "ECS01b", "dlms", "set price, ESME", True, True),
    UseCase(0x00A3, "GCS01b", "gbz", "set price, GSME", True, True),
    UseCase(0x00AB, "CS03A2", "asn1", "HAN join, method A, non-meter side", True, True),
    UseCase(0x00AC, "ECS25a", "dlms", "alert behaviours, ESME, supplier", False, True),
    UseCase(0x00AD, "GCS20", "gbz", "alert behaviours, GSME", False, True),
    UseCase(0x00AE, "ECS29b", "dlms", "set voltage config, polyphase", False, True),
    UseCase(0x00AF, "CS03C", "asn1", "HAN join, method C", True, True),
    UseCase(0x00B0, "ECS25b", "dlms", "alert behaviours, ESME, network operator", None, False),
    UseCase(0x00B2, "GCS62", "asn1", "GPF device log backup alert", None, True),
    UseCase(0x00B3, "ECS04b", "dlms", "reset ESME meter balance", True, True),
    UseCase(0x00B4, "GCS40b", "gbz", "reset prepayment-mode balance, GSME", True, True),
    UseCase(0x00B5, "GCS21b", "gbz", "GSME config: prepayment", None, False),
    UseCase(0x00B6, "GCS13c", "gbz", "GSME TOU registers", False, True),
    UseCase(0x00B7, "ECS01c", "dlms", "set tariff and price, ESME secondary element", None, False),
    UseCase(0x00B8, "GCS13b", "gbz", "GSME block counters", False, True),
    UseCase(0x00B9, "ECS35e", "dlms", "ESME power event log", None, False),
    UseCase(0x00BA, "ECS35f", "dlms", "ALCS event log", False, True),
    UseCase(0x00BB, "ECS61a", "dlms", "HCALCS/ALCS data", None, False),
    UseCase(0x00BC, "ECS23b", "dlms", "voltage data, polyphase", False, True),
    UseCase(0x00BD, "ECS24b", "dlms", "ESME tariff data, secondary element", None, False),
    UseCase(0x00BE, "ECS26j", "dlms", "ESME config: payment mode", None, False),
    UseCase(0x00BF, "GCS21j", "gbz", "GSME config: payment mode", False, True),
    UseCase(0x00C0, "GCS40c", "gbz", "adjust credit-mode balance, GSME", True, True),
    UseCase(0x00C1, "ECS15c", "dlms", "clear ALCS event log", None, False),
    UseCase(0x00C2, "GCS40d", "gbz", "reset credit-mode balance, GSME", True, True),
    UseCase(0x00C3, "GCS15b", "gbz", "GSME billing log, mode/tariff change", None, False),
    UseCase(0x00C4, "GCS15d", "gbz", "GSME billing log, debt payments", None, False),
    UseCase(0x00C5, "GCS15e", "gbz", "GSME billing log, prepayment credits", None, False),
    UseCase(0x00C6, "ECS26k", "dlms", "ESME config: polyphase voltage", False, True),
    UseCase(0x00C7, "ECS01d", "dlms", "set price, ESME secondary element", None, False),
    UseCase(0x00C9, "ECS20d", "dlms", "ESME billing log, prepayment credits", None, False),
    UseCase(
        0x00CA, "(CS06)", "asn1", "alert: future-dated firmware activation outcome", None, True
    ),
    UseCase(
        0x00CB, "(CS02b)", "asn1", "alert: future-dated credentials update outcome", None, True
    ),
    UseCase(
        0x00CC, "(ECSxx)", "dlms", "alert: future-dated command outcome, DLMS devices", None, True
    ),
    UseCase(
        0x00CD, "(GCSxx)", "gbz", "alert: future-dated command outcome, GBZ devices", None, True
    ),
    UseCase(
        0x00CE, "FDRA-DLMS", "dlms", "alert: firmware distribution receipt, ESME/CH", None, True
    ),
    UseCase(0x00CF, "FDRA-ZigBee", "gbz", "alert: firmware distribution receipt, GSME", None, True),
    UseCase(0x00D1, "ECS29c", "dlms", "voltage config without counter reset", None, False),
    UseCase(0x00D2, "ECS29d", "dlms", "same, polyphase", None, False),
    UseCase(0x00D3, "ECS29e", "dlms", "reset RMS voltage counters", False, True),
    UseCase(0x00D4, "ECS29f", "dlms", "same, polyphase", None, False),
    UseCase(
        0x00D5,
        "ALERT-00D5",
        "dlms",
        "alert: failure to deliver remote party message to ESME",
        None,
        False,
    ),
    UseCase(0x00D7, "ECS30a", "dlms", "billing calendar all periodicities, ESME", None, False),
    UseCase(0x00D8, "GCS25a", "gbz", "billing calendar all periodicities, GSME", None, False),
    UseCase(0x00D9, "ECS26l", "dlms", "ESME config: billing calendar (all)", False, True),
    UseCase(0x00DA, "GCS21k", "gbz", "GSME config: billing calendar (all)", None, False),
    UseCase(0x00DB, "ECS48", "dlms", "daily reset of tariff block counter matrix", True, True),
    UseCase(
        0x00DE, "ECS08a", "dlms", "update prepayment configuration, ESME (variant)", None, False
    ),
    UseCase(0x00EA, "ECS25a1", "dlms", "event behaviours: ESME→HAN device", None, False),
    UseCase(0x00EB, "ECS25a2", "dlms", "event behaviours: audible alarm", None, False),
    UseCase(0x00EC, "ECS25a3", "dlms", "event behaviours: logging, supplier", None, False),
    UseCase(0x00ED, "ECS25b3", "dlms", "event behaviours: logging, network operator", False, True),
    UseCase(0x00EE, "ECS25r1", "dlms", "read non-critical behaviours, supplier", False, True),
    UseCase(
        0x00EF, "ECS25r2", "dlms", "read non-critical behaviours, network operator", None, False
    ),
    UseCase(0x00F0, "MIIWA-DLMS", "dlms", "alert: meter integrity issue, ESME", None, False),
    UseCase(0x00F1, "GCS20r", "gbz", "read non-critical behaviours, GSME", None, False),
    UseCase(0x00F2, "MIIWA-ZigBee", "gbz", "alert: meter integrity issue, GSME", None, False),
    UseCase(0x00F9, "ECS26m", "dlms", "ESME config: identity, type, tamper state", False, True),
    UseCase(0x00FA, "ECS26n", "dlms", "CHF config: identity and type", False, True),
    UseCase(0x00FB, "GCS21m", "gbz", "GSME config: identity, type, tamper/depletion", False, True),
    UseCase(0x00FC, "GCS24a", "gbz", "set gas flow rate (finer) / tamper state", True, True),
    UseCase(0x00FD, "ECS35g", "dlms", "ALCS event log (variant)", False, True),
    UseCase(0x00FE, "CCS07", "dlms", "read CHF device logs", False, True),
    UseCase(0x0100, "CS02b", "asn1", "update credentials: rootBySupplier", True, False),
    UseCase(0x0101, "CS02b", "asn1", "rootByWanProvider", True, False),
    UseCase(0x0102, "CS02b", "asn1", "supplierBySupplier (+Handover)", True, True),
    UseCase(0x0103, "CS02b", "asn1", "networkOperatorByNetworkOperator (+Handover)", True, True),
    UseCase(0x0104, "CS02b", "asn1", "accessControlBrokerByACB", True, True),
    UseCase(0x0105, "CS02b", "asn1", "wanProviderByWanProvider", True, True),
    UseCase(0x0106, "CS02b", "asn1", "transCoSByTransCoS", True, True),
    UseCase(0x0107, "CS02b", "asn1", "supplierByTransCoS", True, True),
    UseCase(0x0108, "CS02b", "asn1", "anyExceptAbnormalRootByRecovery", True, True),
    UseCase(0x0109, "CS02b", "asn1", "anyByContingency", True, True),
    UseCase(0x010A, "DBCH01", "dlms", "read CHF sub-GHz channel", False, True),
    UseCase(0x010B, "DBCH02", "dlms", "read CHF sub-GHz channel log", False, True),
    UseCase(0x010C, "DBCH03", "dlms", "read CHF sub-GHz configuration", None, False),
    UseCase(0x010D, "DBCH04", "dlms", "set CHF sub-GHz configuration", None, False),
    UseCase(0x010E, "DBCH05", "dlms", "request sub-GHz channel scan", None, False),
    UseCase(0x010F, "CCS06", "dlms", "read CHF device log and check HAN comms", False, True),
    UseCase(0x0110, "DBCH06", "dlms", "alert: limited duty cycle action", None, False),
    UseCase(0x0111, "DBCH07", "dlms", "alert: sub-GHz channel changed", None, True),
    UseCase(0x0112, "DBCH08", "dlms", "alert: channel scan assessment outcome", None, False),
    UseCase(
        0x0113,
        "DBCH09",
        "dlms",
        "alert: sub-GHz configuration changed (file sits in DBCH04 folder)",
        None,
        False,
    ),
    UseCase(0x0114, "DBCH10", "dlms", "alert: message discarded (duty cycle)", None, False),
    UseCase(0x0115, "DBCH11", "dlms", "alert: no more sub-GHz device capacity", None, True),
    UseCase(
        0x0116, "PECS01", "dlms", "PPMID/HCALCS-originated ESME commands (not in RTDS)", None, False
    ),
    UseCase(
        0x0117, "PECS02", "dlms", "PPMID/HCALCS-originated ESME commands (not in RTDS)", None, False
    ),
    UseCase(
        0x0118, "PECS03", "dlms", "PPMID/HCALCS-originated ESME commands (not in RTDS)", None, False
    ),
    UseCase(
        0x0119, "HECS01", "dlms", "PPMID/HCALCS-originated ESME commands (not in RTDS)", None, False
    ),
    UseCase(
        0x011A,
        "ECS46d",
        "dlms",
        "(RTDS name) sets on IC 11/10/9000 objects, APC output",
        None,
        False,
    ),
    UseCase(
        0x011B,
        "CS02f",
        "asn1",
        "provide security credentials details incl. load-controller role (§5.2)",
        False,
        True,
    ),
    UseCase(
        0x011C,
        "ECS61d",
        "dlms",
        "(RTDS name) read ALCS/HCALCS descriptions + schedules",
        None,
        False,
    ),
    UseCase(
        0x011D, "ECS61e", "dlms", "(RTDS name) read 0-0:94.44.0.21-35 data objects", None, False
    ),
    UseCase(
        0x011E,
        "ECS47a",
        "dlms",
        "(RTDS name) ALCS activate via script 0-0:10.0.103.255",
        None,
        False,
    ),
    UseCase(
        0x011F, "ECS47e", "dlms", "(RTDS name) APC input via script 0-0:10.0.107.255", True, True
    ),
    UseCase(0x0120, "ECS100", "dlms", "alert 0x8F85 (ESME-like device `…A6`)", None, True),
    UseCase(0x0121, "ECS101", "dlms", "alert 0x8F86 (input/output variants)", None, True),
    UseCase(0x0122, "ECS102", "dlms", "alert 0x8F87", None, True),
    UseCase(
        0x0123,
        "ECS200",
        "dlms",
        "alert 0x8F88 (UTF-8 JSON body; other-info names load controller)",
        None,
        True,
    ),
    UseCase(
        0x0124,
        "CS02g",
        "asn1",
        "alert: future-dated load-controller credential update outcome",
        None,
        True,
    ),
    UseCase(
        0x0125, "CS02g", "asn1", "update credentials: loadControllerByLoadController", True, True
    ),
    UseCase(0x0126, "CS02g", "asn1", "update credentials: loadControllerBySupplier", True, True),
    UseCase(0x0128, "CCS08", "asn1", "alert: firmware transfer (0x8F8A)", None, True),
    UseCase(0x0129, "CS08", "asn1", "read PPMID/HCALCS firmware version", None, False),
    UseCase(
        0x012A,
        "GCS60a",
        "gbz",
        "(RTDS name) read balances via metering + prepayment clusters",
        None,
        False,
    ),
    UseCase(
        0x012B,
        "CS09",
        "asn1",
        "alert 0x8F8B (PPMID/HCALCS firmware activation outcome [U])",
        None,
        True,
    ),
    UseCase(0x1000, "GCA-DLMS/ZigBee", "dlms/gbz", "generic critical alert", True, True),
    UseCase(0x1001, "GNCA-DLMS/ZigBee", "dlms/gbz", "generic non-critical alert", False, True),
)


def disconnect_code_from_env() -> int:
    """The disconnect code from ``$GBCS_HIL_DISCONNECT_CODE`` (hex or decimal) or the default."""
    text = os.environ.get(DISCONNECT_ENV)
    if not text:
        return SECMP0013_DISCONNECT_DEFAULT_CODE
    try:
        return int(text, 0)
    except ValueError:
        raise GbcsError(f"{DISCONNECT_ENV}={text!r} is not an integer") from None


class Catalogue:
    """Lookup by message code or use-case id; the disconnect code is configurable."""

    def __init__(self, disconnect_code: int = SECMP0013_DISCONNECT_DEFAULT_CODE) -> None:
        by_code = {u.message_code: u for u in _GBCS}
        if not 0 <= disconnect_code <= 0xFFFF:
            raise GbcsError(f"disconnect message code {disconnect_code} is not a uint16")
        if disconnect_code in by_code:
            raise GbcsError(
                f"disconnect message code 0x{disconnect_code:04X} is already "
                f"GBCS {by_code[disconnect_code].use_case}"
            )
        self.disconnect_code = disconnect_code
        by_code[disconnect_code] = UseCase(
            disconnect_code,
            DISCONNECT_USE_CASE,
            "asn1",
            "disconnect smart meter from HAN (SECMP0013; kit-defined message code)",
            True,
            False,
        )
        self._by_code = by_code
        self._by_name: dict[str, UseCase] = {}
        for u in by_code.values():
            self._by_name.setdefault(u.use_case.upper(), u)

    def __iter__(self) -> Iterator[UseCase]:
        return iter(sorted(self._by_code.values(), key=lambda u: u.message_code))

    def __len__(self) -> int:
        return len(self._by_code)

    def get(self, message_code: int) -> UseCase | None:
        return self._by_code.get(message_code)

    def __getitem__(self, message_code: int) -> UseCase:
        try:
            return self._by_code[message_code]
        except KeyError:
            raise GbcsError(f"message code 0x{message_code:04X} is not in the catalogue") from None

    def by_use_case(self, use_case: str) -> UseCase:
        """First code of a use case id (e.g. "CCS07"); case-insensitive."""
        try:
            return self._by_name[use_case.upper()]
        except KeyError:
            raise GbcsError(f"use case {use_case!r} is not in the catalogue") from None

    def use_case_name(self, message_code: int) -> str:
        u = self._by_code.get(message_code)
        return u.use_case if u else f"unknown-0x{message_code:04X}"


CATALOGUE = Catalogue(disconnect_code_from_env())
