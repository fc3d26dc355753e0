"""Typed builders and parsers for the security-credential use cases (CRIB §5.2).

* CS02a (0x0008, and the RTDS "CS02f" 0x011B): Provide Security Credential
  Details - :class:`ProvideCredentialDetails` and its answer
  :class:`CredentialDetails`, a :class:`RemotePartyDetails` per requested role.
* CS02b (0x0100 + mode) and CS02g (0x0125/0x0126): Update Security Credentials
  - :class:`UpdateSecurityCredentials` (an :class:`AuthorisingControl` plus
  :class:`TrustAnchorReplacement` s), answered by :class:`UpdateCredentialsResponse`
  with an :class:`UpdateOutcome`; the future-dated outcome comes in
  :class:`UpdateCredentialsAlert` (0x00CB / 0x0124).
* CS02e (0x000C): Provide Device Certificate - :class:`ProvideDeviceCertificate`
  and :class:`DeviceCertificate` (the certificate, or a response code).

Each type converts to and from an :class:`gbcs.asn1.Asn1Payload`, so the bytes are
always the schema's (``gbcs/asn1/gbcs.asn``). Certificates are carried as DER
bytes. Responses and alerts keep the decoded payload's non-shortest length forms
(RTDS devices write ``82 00 xx``), so a parsed reference payload re-encodes to
the same bytes.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar

from gbcs import asn1
from gbcs.asn1 import Asn1Payload, LengthForms
from gbcs.errors import DecodeError, EncodeError
from gbcs.keys import KeyUsage
from gbcs.primitives import pack_id8
from gbcs.testpki import RemotePartyRole

__all__ = [
    "DS_KEY_USAGE",
    "KA_KEY_USAGE",
    "AuthorisingControl",
    "CredentialDetails",
    "CredentialStatus",
    "CredentialsReplacementMode",
    "DeviceCertificate",
    "DeviceCertificateResult",
    "KeyUsageBits",
    "ProvideCredentialDetails",
    "ProvideDeviceCertificate",
    "RemotePartyDetails",
    "RemotePartySeqNumberChange",
    "ReplacementOutcome",
    "SpecialistSeqNumber",
    "TrustAnchorCell",
    "TrustAnchorCellContents",
    "TrustAnchorReplacement",
    "UpdateCredentialsAlert",
    "UpdateCredentialsResponse",
    "UpdateOutcome",
    "UpdateSecurityCredentials",
]

LAYER = "credentials"

PROVIDE_CREDENTIAL_DETAILS = 0x0008
PROVIDE_DEVICE_CERTIFICATE = 0x000C
UPDATE_ALERT = 0x00CB  # CS02b future-dated outcome (CS02g: 0x0124)


def _role(value: int) -> int:
    """A RemotePartyRole when the number is one, else the number (the schema allows any)."""
    try:
        return RemotePartyRole(value)
    except ValueError:
        return value


def _expect(payload: Asn1Payload, type_name: str) -> Any:
    if payload.type_name != type_name:
        raise DecodeError(LAYER, "type", 0, f"expected {type_name}, found {payload.type_name}")
    return payload.value


def _status_name(status: int) -> str:
    """The ASN.1 name of a StatusCode; a number without one cannot be encoded."""
    try:
        return CredentialStatus(status).asn1_name
    except ValueError:
        raise EncodeError(f"{status!r} is not a credentials status code") from None


def _utc_naive(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is not None:
        return when.astimezone(dt.UTC).replace(tzinfo=None)
    return when


def _certificate_value(der: bytes) -> Any:
    try:
        return asn1.decode_type("Certificate", der).value
    except DecodeError as e:
        raise EncodeError(f"not a DER certificate: {e}") from e


def _certificate_der(value: Any) -> bytes:
    return asn1.encode(Asn1Payload("Certificate", value))


# --- Shared types ------------------------------------------------------------------


class CredentialStatus(enum.IntEnum):
    """``StatusCode`` of the CS02a/CS02b responses and CS02b/CS02g alerts (CRIB §5.2)."""

    SUCCESS = 0
    BAD_CERTIFICATE = 5
    NO_TRUST_ANCHOR = 10
    INSUFFICIENT_MEMORY = 17
    TRUST_ANCHOR_NOT_FOUND = 25
    RESOURCES_BUSY = 30
    OTHER = 127

    @property
    def asn1_name(self) -> str:
        return _STATUS_NAMES[self]

    @classmethod
    def from_asn1(cls, name: str) -> CredentialStatus:
        try:
            return _STATUS_BY_NAME[name]
        except KeyError:
            raise DecodeError(LAYER, "statusCode", 0, f"unknown status {name!r}") from None


_STATUS_NAMES = {
    CredentialStatus.SUCCESS: "success",
    CredentialStatus.BAD_CERTIFICATE: "badCertificate",
    CredentialStatus.NO_TRUST_ANCHOR: "noTrustAnchor",
    CredentialStatus.INSUFFICIENT_MEMORY: "insufficientMemory",
    CredentialStatus.TRUST_ANCHOR_NOT_FOUND: "trustAnchorNotFound",
    CredentialStatus.RESOURCES_BUSY: "resourcesBusy",
    CredentialStatus.OTHER: "other",
}
_STATUS_BY_NAME = {v: k for k, v in _STATUS_NAMES.items()}


@dataclass(frozen=True, slots=True)
class KeyUsageBits:
    """A GBCS ``KeyUsage`` BIT STRING as on the wire: content bytes and bit count.

    GBCS uses two values (X.509 keyUsage bit numbering, trailing zero bits
    dropped as DER requires for a named-bit list): digitalSignature
    ``03 02 07 80`` and keyAgreement ``03 02 03 08`` (CRIB §5.2).
    """

    value: bytes
    length: int

    DS: ClassVar[KeyUsageBits]
    KA: ClassVar[KeyUsageBits]

    def __post_init__(self) -> None:
        if not 0 <= self.length <= 8 * len(self.value) or len(self.value) * 8 - self.length >= 8:
            raise EncodeError(f"{len(self.value)} bytes cannot hold a {self.length}-bit string")
        if self.value and self.value[-1] & (0xFF >> (self.length % 8 or 8)):
            # DER wants them zero: the encoder would clear them, a different value on the wire.
            raise EncodeError(f"bits past the {self.length} of the bit string are not zero")

    @classmethod
    def of(cls, usage: KeyUsage) -> KeyUsageBits:
        if usage is KeyUsage.DS:
            return DS_KEY_USAGE
        if usage is KeyUsage.KA:
            return KA_KEY_USAGE
        raise EncodeError(f"GBCS trust anchor cells have no {usage.value} key usage")

    @property
    def usage(self) -> KeyUsage | None:
        """DS or KA when the bits are exactly one of the two GBCS values, else None."""
        if self == DS_KEY_USAGE:
            return KeyUsage.DS
        if self == KA_KEY_USAGE:
            return KeyUsage.KA
        return None

    def to_value(self) -> tuple[bytes, int]:
        return (self.value, self.length)

    @classmethod
    def from_value(cls, value: tuple[bytes, int]) -> KeyUsageBits:
        return cls(bytes(value[0]), int(value[1]))


DS_KEY_USAGE = KeyUsageBits(b"\x80", 1)  # digitalSignature (bit 0)
KA_KEY_USAGE = KeyUsageBits(b"\x08", 5)  # keyAgreement (bit 4)
KeyUsageBits.DS = DS_KEY_USAGE
KeyUsageBits.KA = KA_KEY_USAGE


@dataclass(frozen=True, slots=True)
class TrustAnchorCell:
    """``TrustAnchorCellIdentifier``: which of a device's trust anchor cells."""

    role: int
    key_usage: KeyUsageBits
    cell_usage: int = 0  # 0 management, 1 prepayment top-up

    def to_value(self) -> dict[str, Any]:
        return {
            "remotePartyRole": int(self.role),
            "keyUsage": self.key_usage.to_value(),
            "cellUsage": self.cell_usage,
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> TrustAnchorCell:
        return cls(
            _role(value["remotePartyRole"]),
            KeyUsageBits.from_value(value["keyUsage"]),
            value.get("cellUsage", 0),
        )


# --- CS02a --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProvideCredentialDetails:
    """CS02a command (0x0008): the roles whose trust anchor details are wanted."""

    authorising_cell: TrustAnchorCell
    roles: tuple[int, ...]

    def to_payload(self) -> Asn1Payload:
        return Asn1Payload(
            "ProvideSecurityCredentialDetailsCommand",
            {
                "authorisingRemotePartyTACellIdentifier": self.authorising_cell.to_value(),
                "remotePartyRolesCredentialsRequired": [int(r) for r in self.roles],
            },
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> ProvideCredentialDetails:
        v = _expect(payload, "ProvideSecurityCredentialDetailsCommand")
        return cls(
            TrustAnchorCell.from_value(v["authorisingRemotePartyTACellIdentifier"]),
            tuple(_role(r) for r in v["remotePartyRolesCredentialsRequired"]),
        )


@dataclass(frozen=True, slots=True)
class TrustAnchorCellContents:
    """One cell of a CS02a answer: whose key it holds and that key's identifier."""

    key_usage: KeyUsageBits
    subject_unique_id: bytes
    subject_key_identifier: bytes
    cell_usage: int = 0

    def to_value(self) -> dict[str, Any]:
        return {
            "keyUsage": self.key_usage.to_value(),
            "cellUsage": self.cell_usage,
            "subjectUniqueID": pack_id8(self.subject_unique_id, "subject unique id"),
            "subjectKeyIdentifier": bytes(self.subject_key_identifier),
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> TrustAnchorCellContents:
        return cls(
            KeyUsageBits.from_value(value["keyUsage"]),
            value["subjectUniqueID"],
            value["subjectKeyIdentifier"],
            value.get("cellUsage", 0),
        )


@dataclass(frozen=True, slots=True)
class RemotePartyDetails:
    """One role of a CS02a answer; sequence number and cells only on success."""

    role: int
    status: CredentialStatus
    current_seq_number: int | None = None
    cells: tuple[TrustAnchorCellContents, ...] | None = None

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {
            "remotePartyRole": int(self.role),
            "statusCode": _status_name(self.status),
        }
        if self.current_seq_number is not None:
            value["currentSeqNumber"] = self.current_seq_number
        if self.cells is not None:
            value["trustAnchorCellDetails"] = [c.to_value() for c in self.cells]
        return value

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> RemotePartyDetails:
        cells = value.get("trustAnchorCellDetails")
        return cls(
            _role(value["remotePartyRole"]),
            CredentialStatus.from_asn1(value["statusCode"]),
            value.get("currentSeqNumber"),
            None if cells is None else tuple(TrustAnchorCellContents.from_value(c) for c in cells),
        )


@dataclass(frozen=True, slots=True)
class CredentialDetails:
    """CS02a response: a :class:`RemotePartyDetails` per requested role, in order."""

    parties: tuple[RemotePartyDetails, ...]
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        return Asn1Payload(
            "ProvideSecurityCredentialDetailsResponse",
            [p.to_value() for p in self.parties],
            self.length_forms,
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> CredentialDetails:
        v = _expect(payload, "ProvideSecurityCredentialDetailsResponse")
        return cls(tuple(RemotePartyDetails.from_value(p) for p in v), payload.length_forms)

    def for_role(self, role: int) -> RemotePartyDetails | None:
        return next((p for p in self.parties if p.role == role), None)


# --- CS02b / CS02g -----------------------------------------------------------------------


class CredentialsReplacementMode(enum.IntEnum):
    """``CredentialsReplacementMode``; CS02b's message code is 0x0100 + mode (CRIB §5.2, §7)."""

    ROOT_BY_SUPPLIER = 0
    ROOT_BY_WAN_PROVIDER = 1
    SUPPLIER_BY_SUPPLIER = 2
    NETWORK_OPERATOR_BY_NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER_BY_ACCESS_CONTROL_BROKER = 4
    WAN_PROVIDER_BY_WAN_PROVIDER = 5
    TRANS_COS_BY_TRANS_COS = 6
    SUPPLIER_BY_TRANS_COS = 7
    ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY = 8
    ANY_BY_CONTINGENCY = 9
    LOAD_CONTROLLER_BY_LOAD_CONTROLLER = 10  # CS02g
    LOAD_CONTROLLER_BY_SUPPLIER = 11  # CS02g

    @property
    def message_code(self) -> int:
        """0x0100-0x0109 for CS02b; 0x0125 and 0x0126 for the CS02g modes (CRIB §7)."""
        if self <= 9:
            return 0x0100 + self
        return 0x0125 + (self - 10)

    @classmethod
    def for_message_code(cls, code: int) -> CredentialsReplacementMode | None:
        for mode in cls:
            if mode.message_code == code:
                return mode
        return None

    @property
    def replaced_role(self) -> RemotePartyRole | None:
        """The role whose anchors the mode replaces (None: any, or the root)."""
        return _REPLACED.get(self)

    @property
    def authorising_role(self) -> RemotePartyRole | None:
        """The role that authorises the replacement (None: not one remote-party role)."""
        return _AUTHORISING.get(self)


_M = CredentialsReplacementMode
_R = RemotePartyRole
_REPLACED = {
    _M.ROOT_BY_SUPPLIER: _R.ROOT,
    _M.ROOT_BY_WAN_PROVIDER: _R.ROOT,
    _M.SUPPLIER_BY_SUPPLIER: _R.SUPPLIER,
    _M.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: _R.NETWORK_OPERATOR,
    _M.ACCESS_CONTROL_BROKER_BY_ACCESS_CONTROL_BROKER: _R.ACCESS_CONTROL_BROKER,
    _M.WAN_PROVIDER_BY_WAN_PROVIDER: _R.WAN_PROVIDER,
    _M.TRANS_COS_BY_TRANS_COS: _R.TRANSITIONAL_COS,
    _M.SUPPLIER_BY_TRANS_COS: _R.SUPPLIER,
    _M.LOAD_CONTROLLER_BY_LOAD_CONTROLLER: _R.LOAD_CONTROLLER,
    _M.LOAD_CONTROLLER_BY_SUPPLIER: _R.LOAD_CONTROLLER,
}
_AUTHORISING = {
    _M.ROOT_BY_SUPPLIER: _R.SUPPLIER,
    _M.ROOT_BY_WAN_PROVIDER: _R.WAN_PROVIDER,
    _M.SUPPLIER_BY_SUPPLIER: _R.SUPPLIER,
    _M.NETWORK_OPERATOR_BY_NETWORK_OPERATOR: _R.NETWORK_OPERATOR,
    _M.ACCESS_CONTROL_BROKER_BY_ACCESS_CONTROL_BROKER: _R.ACCESS_CONTROL_BROKER,
    _M.WAN_PROVIDER_BY_WAN_PROVIDER: _R.WAN_PROVIDER,
    _M.TRANS_COS_BY_TRANS_COS: _R.TRANSITIONAL_COS,
    _M.SUPPLIER_BY_TRANS_COS: _R.TRANSITIONAL_COS,
    _M.ANY_EXCEPT_ABNORMAL_ROOT_BY_RECOVERY: _R.RECOVERY,
    _M.LOAD_CONTROLLER_BY_LOAD_CONTROLLER: _R.LOAD_CONTROLLER,
    _M.LOAD_CONTROLLER_BY_SUPPLIER: _R.SUPPLIER,
}


def _mode(value: int) -> int:
    try:
        return CredentialsReplacementMode(value)
    except ValueError:
        return value


@dataclass(frozen=True, slots=True)
class SpecialistSeqNumber:
    """A specialist sequence number (usage 0: prepayment top-up)."""

    usage: int
    seq_number: int

    def to_value(self) -> dict[str, Any]:
        return {"seqNumberUsage": self.usage, "seqNumber": self.seq_number}

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> SpecialistSeqNumber:
        return cls(value["seqNumberUsage"], value["seqNumber"])


def _specialists(value: Any) -> tuple[SpecialistSeqNumber, ...] | None:
    return None if value is None else tuple(SpecialistSeqNumber.from_value(s) for s in value)


@dataclass(frozen=True, slots=True)
class RemotePartySeqNumberChange:
    """A role's new floor sequence number (and specialist floors)."""

    role: int
    floor: int
    specialist_floors: tuple[SpecialistSeqNumber, ...] | None = None

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {"remotePartyRole": int(self.role), "floorSeqNumber": self.floor}
        if self.specialist_floors is not None:
            value["specialistFloorSeqNumbers"] = [s.to_value() for s in self.specialist_floors]
        return value

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> RemotePartySeqNumberChange:
        return cls(
            _role(value["remotePartyRole"]),
            value["floorSeqNumber"],
            _specialists(value.get("specialistFloorSeqNumbers")),
        )


@dataclass(frozen=True, slots=True)
class AuthorisingControl:
    """``AuthorisingRemotePartyControl`` of a CS02b command.

    ``authorising_seq_number`` is the authorising party's originator counter
    (the RTDS carries the grouping header's counter here).
    """

    mode: int
    authorising_seq_number: int
    authorising_cell: TrustAnchorCell | None = None
    new_floor: int | None = None
    new_specialist_floors: tuple[SpecialistSeqNumber, ...] | None = None
    other_changes: tuple[RemotePartySeqNumberChange, ...] | None = None
    plaintext_symmetric_key: bytes | None = None
    apply_time_based_cpv_checks: int | None = None  # 0 apply, 1 disapply

    def to_value(self) -> dict[str, Any]:
        value: dict[str, Any] = {"credentialsReplacementMode": int(self.mode)}
        if self.plaintext_symmetric_key is not None:
            value["plaintextSymmetricKey"] = bytes(self.plaintext_symmetric_key)
        if self.apply_time_based_cpv_checks is not None:
            value["applyTimeBasedCPVChecks"] = self.apply_time_based_cpv_checks
        if self.authorising_cell is not None:
            value["authorisingRemotePartyTACellIdentifier"] = self.authorising_cell.to_value()
        value["authorisingRemotePartySeqNumber"] = self.authorising_seq_number
        if self.new_floor is not None:
            value["newRemotePartyFloorSeqNumber"] = self.new_floor
        if self.new_specialist_floors is not None:
            value["newRemotePartySpecialistFloorSeqNumbers"] = [
                s.to_value() for s in self.new_specialist_floors
            ]
        if self.other_changes is not None:
            value["otherRemotePartySeqNumberChanges"] = [c.to_value() for c in self.other_changes]
        return value

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> AuthorisingControl:
        cell = value.get("authorisingRemotePartyTACellIdentifier")
        others = value.get("otherRemotePartySeqNumberChanges")
        return cls(
            _mode(value["credentialsReplacementMode"]),
            value["authorisingRemotePartySeqNumber"],
            None if cell is None else TrustAnchorCell.from_value(cell),
            value.get("newRemotePartyFloorSeqNumber"),
            _specialists(value.get("newRemotePartySpecialistFloorSeqNumbers")),
            None
            if others is None
            else tuple(RemotePartySeqNumberChange.from_value(c) for c in others),
            value.get("plaintextSymmetricKey"),
            value.get("applyTimeBasedCPVChecks"),
        )


@dataclass(frozen=True, slots=True)
class TrustAnchorReplacement:
    """A DER X.509 certificate and the trust anchor cell it is to replace."""

    certificate: bytes
    target: TrustAnchorCell

    def to_value(self) -> dict[str, Any]:
        return {
            "replacementCertificate": _certificate_value(self.certificate),
            "targetTrustAnchorCell": self.target.to_value(),
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> TrustAnchorReplacement:
        return cls(
            _certificate_der(value["replacementCertificate"]),
            TrustAnchorCell.from_value(value["targetTrustAnchorCell"]),
        )


@dataclass(frozen=True, slots=True)
class UpdateSecurityCredentials:
    """CS02b command (0x0100 + mode) / CS02g (0x0125, 0x0126)."""

    control: AuthorisingControl
    replacements: tuple[TrustAnchorReplacement, ...]
    certification_path: tuple[bytes, ...] = ()
    execution_time: dt.datetime | None = None  # UTC; absent: execute now

    @property
    def mode(self) -> int:
        return self.control.mode

    @property
    def message_code(self) -> int:
        """The message code the mode calls for (GBCS 13.3: CS02b is 0x0100 + mode)."""
        try:
            return CredentialsReplacementMode(self.control.mode).message_code
        except ValueError:
            raise EncodeError(f"{self.control.mode} is not a replacement mode") from None

    def to_payload(self) -> Asn1Payload:
        value: dict[str, Any] = {
            "authorisingRemotePartyControl": self.control.to_value(),
            "replacements": [r.to_value() for r in self.replacements],
            "certificationPathCertificates": [
                _certificate_value(c) for c in self.certification_path
            ],
        }
        if self.execution_time is not None:
            value["executionDateTime"] = _utc_naive(self.execution_time)
        return Asn1Payload("UpdateSecurityCredentialsCommand", value)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> UpdateSecurityCredentials:
        v = _expect(payload, "UpdateSecurityCredentialsCommand")
        when = v.get("executionDateTime")
        return cls(
            AuthorisingControl.from_value(v["authorisingRemotePartyControl"]),
            tuple(TrustAnchorReplacement.from_value(r) for r in v["replacements"]),
            tuple(_certificate_der(c) for c in v["certificationPathCertificates"]),
            None if when is None else when.replace(tzinfo=dt.UTC),
        )


@dataclass(frozen=True, slots=True)
class ReplacementOutcome:
    """What happened to one targeted cell: old and new subject and key identifiers."""

    cell: TrustAnchorCell
    status: CredentialStatus
    existing_id: bytes
    existing_ski: bytes
    replacing_id: bytes
    replacing_ski: bytes

    def to_value(self) -> dict[str, Any]:
        return {
            "affectedTrustAnchorCell": self.cell.to_value(),
            "statusCode": _status_name(self.status),
            "existingSubjectUniqueID": pack_id8(self.existing_id, "existing subject id"),
            "existingSubjectKeyIdentifier": bytes(self.existing_ski),
            "replacingSubjectUniqueID": pack_id8(self.replacing_id, "replacing subject id"),
            "replacingSubjectKeyIdentifier": bytes(self.replacing_ski),
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> ReplacementOutcome:
        return cls(
            TrustAnchorCell.from_value(value["affectedTrustAnchorCell"]),
            CredentialStatus.from_asn1(value["statusCode"]),
            value["existingSubjectUniqueID"],
            value["existingSubjectKeyIdentifier"],
            value["replacingSubjectUniqueID"],
            value["replacingSubjectKeyIdentifier"],
        )


@dataclass(frozen=True, slots=True)
class UpdateOutcome:
    """``UpdateSecurityCredentialsExecutionOutcome``."""

    authorising_seq_number: int
    mode: int
    seq_number_changes: tuple[RemotePartySeqNumberChange, ...]
    outcomes: tuple[ReplacementOutcome, ...]

    @property
    def succeeded(self) -> bool:
        return all(o.status == CredentialStatus.SUCCESS for o in self.outcomes)

    def to_value(self) -> dict[str, Any]:
        return {
            "authorisingRemotePartySeqNumber": self.authorising_seq_number,
            "credentialsReplacementMode": int(self.mode),
            "remotePartySeqNumberChanges": [c.to_value() for c in self.seq_number_changes],
            "replacementOutcomes": [o.to_value() for o in self.outcomes],
        }

    @classmethod
    def from_value(cls, value: dict[str, Any]) -> UpdateOutcome:
        return cls(
            value["authorisingRemotePartySeqNumber"],
            _mode(value["credentialsReplacementMode"]),
            tuple(
                RemotePartySeqNumberChange.from_value(c)
                for c in value["remotePartySeqNumberChanges"]
            ),
            tuple(ReplacementOutcome.from_value(o) for o in value["replacementOutcomes"]),
        )


@dataclass(frozen=True, slots=True)
class UpdateCredentialsResponse:
    """CS02b response: accepted, with the outcome unless the command is future dated."""

    outcome: UpdateOutcome | None = None
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        value: dict[str, Any] = {"commandAccepted": None}
        if self.outcome is not None:
            value["executionOutcome"] = self.outcome.to_value()
        return Asn1Payload("UpdateSecurityCredentialsResponse", value, self.length_forms)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> UpdateCredentialsResponse:
        v = _expect(payload, "UpdateSecurityCredentialsResponse")
        outcome = v.get("executionOutcome")
        return cls(
            None if outcome is None else UpdateOutcome.from_value(outcome), payload.length_forms
        )


@dataclass(frozen=True, slots=True)
class UpdateCredentialsAlert:
    """CS02b alert 0x00CB / CS02g 0x0124: a future-dated update's outcome.

    RTDS alert codes: 0x8F66 (success) and 0x8F67 (error).
    """

    alert_code: int
    execution_time: dt.datetime
    outcome: UpdateOutcome
    length_forms: LengthForms = field(default=(), compare=False, repr=False)

    def to_payload(self) -> Asn1Payload:
        return Asn1Payload(
            "UpdateSecurityCredentialsAlert",
            {
                "alertCode": self.alert_code,
                "executionDateTime": _utc_naive(self.execution_time),
                "executionOutcome": self.outcome.to_value(),
            },
            self.length_forms,
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> UpdateCredentialsAlert:
        v = _expect(payload, "UpdateSecurityCredentialsAlert")
        return cls(
            v["alertCode"],
            v["executionDateTime"].replace(tzinfo=dt.UTC),
            UpdateOutcome.from_value(v["executionOutcome"]),
            payload.length_forms,
        )


# --- CS02e ---------------------------------------------------------------------------


class DeviceCertificateResult(enum.IntEnum):
    """CS02e error response codes (CRIB §5.2)."""

    INVALID_KEY_USAGE = 1
    NO_CERTIFICATE_HELD = 2
    CERTIFICATE_RETRIEVAL_FAILURE = 3


@dataclass(frozen=True, slots=True)
class ProvideDeviceCertificate:
    """CS02e command (0x000C): which of the device's own certificates."""

    key_usage: KeyUsageBits

    def to_payload(self) -> Asn1Payload:
        return Asn1Payload(
            "ProvideDeviceCertificateCommand", {"keyUsage": self.key_usage.to_value()}
        )

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> ProvideDeviceCertificate:
        v = _expect(payload, "ProvideDeviceCertificateCommand")
        return cls(KeyUsageBits.from_value(v["keyUsage"]))


@dataclass(frozen=True, slots=True)
class DeviceCertificate:
    """CS02e response: the DER certificate, or a :class:`DeviceCertificateResult` code."""

    certificate: bytes | None = None
    response_code: int | None = None

    def __post_init__(self) -> None:
        if (self.certificate is None) == (self.response_code is None):
            raise EncodeError("a CS02e response is a certificate or a response code, not both")

    def to_payload(self) -> Asn1Payload:
        if self.certificate is not None:
            value: Any = ("deviceCertificate", _certificate_value(self.certificate))
        else:
            value = ("responseCode", int(self.response_code))  # type: ignore[arg-type]
        return Asn1Payload("ProvideDeviceCertificateResponse", value)

    @classmethod
    def from_payload(cls, payload: Asn1Payload) -> DeviceCertificate:
        name, value = _expect(payload, "ProvideDeviceCertificateResponse")
        if name == "deviceCertificate":
            return cls(certificate=_certificate_der(value))
        known = value in DeviceCertificateResult._value2member_map_
        return cls(response_code=DeviceCertificateResult(value) if known else value)
