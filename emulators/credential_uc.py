"""What an emulated meter does with the security-credential use cases CS02a, CS02b, CS02e.

The meter's trust anchors (:class:`emulators.credentials.TrustAnchors`) are one
DS and one KA cell (cellUsage 0, management) for each of the supplier, the
network operator and the Access Control Broker. This module answers CS02a
from them, checks and plans a CS02b replacement, and leaves the meter
(:mod:`emulators.meters`) to send the response and install the plan.

Choices where the available material leaves room (CRIB §5.2 and the RTDS):

* CS02a, a role the meter holds no anchor for: ``trustAnchorNotFound`` (25)
  with no sequence number or cells, as in the RTDS ERROR responses (roles 3
  and 6). Cells are listed DS then KA, as in the RTDS; the subject key
  identifier is the test PKI's (leftmost 64 bits of SHA-256 of the
  uncompressed point, :func:`gbcs.testpki._ski`), computed from the point the
  cell holds; ``currentSeqNumber`` is the highest originator counter accepted
  from that party (0 when none).
* CS02b authorisation (the command is discarded and logged, no response):
  the message code must be 0x0100 + the payload's mode (GBCS 13.3), the mode
  one of supplierBySupplier, networkOperatorByNetworkOperator or
  accessControlBrokerByACB, the Business Originator the current anchor of the
  role that mode names, ``authorisingRemotePartySeqNumber`` the grouping
  header's originator counter (as in every RTDS CS02b), an
  ``authorisingRemotePartyTACellIdentifier`` (when present) that role's DS cell
  (KA for a MAC-only ACB command), and no future ``executionDateTime``
  (future-dated updates and the 0x00CB alert are not emulated).
  accessControlBrokerByACB may come MAC'd only (GBCS 13.3.3.1: to any device
  but the CHF it carries the ACB's MAC and no signature).
* CS02b replacements are all or nothing. A replacement whose target is not a
  cell of the mode's role, or whose certificate is not DER X.509, does not name
  that role (OU), has no P-256 key, has a keyUsage other than exactly the
  target cell's (DS: digitalSignature, KA: keyAgreement), or is outside its
  validity period (unless ``applyTimeBasedCPVChecks`` = disapply) gets
  ``badCertificate``; a target cell the meter does not have (prepayment top-up
  cellUsage 1, a key usage other than DS/KA) gets ``trustAnchorNotFound``. Two
  replacements of one cell, or replacements that would leave the role's DS and
  KA cells naming different parties or another anchor's party, are all
  ``badCertificate``. When any cell fails nothing is replaced: the failed cells
  carry their status, the others ``other`` (127), every cell reports its
  existing subject as the replacing one (the RTDS error outcome does that for
  its failed cell) and no sequence-number change is reported. The RTDS error
  vector replaces its good cells; the emulated meter deliberately does not.
  The certification path is not checked: the emulated meter holds no root
  anchor.
* On success a replaced party with a new EUI-64 loses its counter and the new
  party starts from the command's ``newRemotePartyFloorSeqNumber`` (none when 0
  or absent), reported as that role's floor. A counter of a party that stays
  an anchor is never lowered, so no command of it can replay: a key rollover
  (same EUI-64) and ``otherRemotePartySeqNumberChanges`` only raise a held
  party's counter to the floor they name (DESIGN §3: counters increase per
  remote party, and one party's command cannot reopen another's).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from emulators.credentials import (
    TrustAnchor,
    TrustAnchors,
    certificate_key_identifier,
    point_key_identifier,
    public_point,
)
from emulators.device import Rejected
from gbcs.credentials_uc import (
    CredentialDetails,
    CredentialsReplacementMode,
    CredentialStatus,
    KeyUsageBits,
    RemotePartyDetails,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    TrustAnchorCellContents,
    TrustAnchorReplacement,
    UpdateOutcome,
    UpdateSecurityCredentials,
)
from gbcs.errors import GbcsError
from gbcs.frame import GbcsMessage
from gbcs.keys import KeyUsage
from gbcs.testpki import RemotePartyRole, certificate_party

__all__ = [
    "SUPPORTED_MODES",
    "UPDATE_CODES",
    "UpdatePlan",
    "anchor_cells",
    "authorise_update",
    "credential_details",
    "plan_update",
    "subject_key_identifier",
    "usable_certificate",
]

SUPPORTED_MODES = frozenset(
    {
        CredentialsReplacementMode.SUPPLIER_BY_SUPPLIER,
        CredentialsReplacementMode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR,
        CredentialsReplacementMode.ACCESS_CONTROL_BROKER_BY_ACCESS_CONTROL_BROKER,
    }
)
UPDATE_CODES = frozenset(m.message_code for m in SUPPORTED_MODES)
NO_PARTY = bytes(8)
_DISAPPLY = 1  # applyTimeBasedCPVChecks


def subject_key_identifier(point: bytes) -> bytes:
    """The test PKI's SKI: leftmost 64 bits of SHA-256 of the uncompressed point."""
    return point_key_identifier(point)


# --- CS02a ------------------------------------------------------------------------------


def anchor_cells(anchor: TrustAnchor) -> tuple[TrustAnchorCellContents, ...]:
    """An anchor's DS and KA cells as CS02a lists them (DS first, as in the RTDS)."""
    return tuple(
        TrustAnchorCellContents(
            KeyUsageBits.of(usage),
            anchor.party_id,
            anchor.ski(usage),
        )
        for usage in (KeyUsage.DS, KeyUsage.KA)
    )


def credential_details(
    anchors: TrustAnchors, counters: dict[bytes, int], roles: tuple[int, ...]
) -> CredentialDetails:
    """The CS02a answer: one entry per requested role, in the order requested."""
    parties = []
    for role in roles:
        anchor = anchors.by_role(role)
        if anchor is None:
            parties.append(RemotePartyDetails(role, CredentialStatus.TRUST_ANCHOR_NOT_FOUND))
        else:
            parties.append(
                RemotePartyDetails(
                    role,
                    CredentialStatus.SUCCESS,
                    counters.get(anchor.party_id, 0),
                    anchor_cells(anchor),
                )
            )
    return CredentialDetails(tuple(parties))


# --- CS02b ------------------------------------------------------------------------------


def authorise_update(
    message: GbcsMessage,
    command: UpdateSecurityCredentials,
    anchors: TrustAnchors,
    now: dt.datetime,
) -> CredentialsReplacementMode:
    """Raise :class:`Rejected` unless this CS02b may be executed (checks before any state)."""
    header = message.header
    code = header.other_information.message_code
    expected = CredentialsReplacementMode.for_message_code(code)
    if expected is None or command.mode != expected:
        raise Rejected(f"replacement mode {command.mode} does not match message code 0x{code:04X}")
    mode = expected
    if mode not in SUPPORTED_MODES:
        raise Rejected(f"replacement mode {mode.name} is not supported")
    role = mode.authorising_role
    assert role is not None  # every supported mode has one
    authoriser = anchors.by_role(role)
    if authoriser is None or header.business_originator != authoriser.party_id:
        raise Rejected(
            f"{mode.name} must come from the current {role.name} anchor, "
            f"not {header.business_originator.hex().upper()}"
        )
    if command.control.authorising_seq_number != header.originator_counter:
        raise Rejected(
            f"authorising sequence number {command.control.authorising_seq_number:#x} is not "
            f"the originator counter {header.originator_counter:#x}"
        )
    cell = command.control.authorising_cell
    if cell is not None:
        usage = KeyUsage.DS if message.signature else KeyUsage.KA
        if cell.role != role or cell.key_usage != KeyUsageBits.of(usage) or cell.cell_usage != 0:
            raise Rejected(f"authorising cell {cell} is not the {role.name} {usage.name} cell")
    if command.execution_time is not None and command.execution_time > now:
        raise Rejected("future-dated credential updates are not emulated")
    return mode


@dataclass(frozen=True, slots=True)
class UpdatePlan:
    """A checked CS02b: the outcome to report and, when it succeeded, what to install."""

    outcome: UpdateOutcome
    anchors: TrustAnchors | None = None
    # Originator counters after the replacement, in order: None forgets the party's
    # counter (it is no anchor any more, or new); a number raises it to at least that.
    counters: tuple[tuple[bytes, int | None], ...] = ()


@dataclass(frozen=True, slots=True)
class _NewKey:
    usage: KeyUsage
    party: bytes
    point: bytes
    ski: bytes  # the replacing certificate's SubjectKeyIdentifier (or the test PKI's rule)


@dataclass(frozen=True, slots=True)
class _Checked:
    """One replacement after the checks: its status, the cell's subject and the new key."""

    status: CredentialStatus
    existing_id: bytes
    existing_ski: bytes  # zero when the meter holds no such cell
    new: _NewKey | None = None

    def failed(self, status: CredentialStatus) -> _Checked:
        return _Checked(status, self.existing_id, self.existing_ski)


def usable_certificate(der: bytes, usage: KeyUsage) -> x509.Certificate | None:
    """``der`` as a certificate a meter can use for ``usage``: X.509 it can read, a P-256
    key, and that key usage alone (digitalSignature for DS, keyAgreement for KA). None
    otherwise, whatever the parse failure (cryptography's InvalidVersion is no ValueError)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        key = cert.public_key()
        key_usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except Exception:  # any parse failure: a certificate the meter cannot read is none
        return None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        return None
    wanted = (usage is KeyUsage.DS, usage is KeyUsage.KA)
    if (key_usage.digital_signature, key_usage.key_agreement) != wanted:
        return None
    return cert


def device_certificate_owner(der: bytes, usage: KeyUsage) -> bytes | None:
    """The EUI-64 a usable ``usage`` device certificate names (hwModuleName); None when
    ``der`` is no such certificate (unreadable, another usage, an organisation's)."""
    cert = usable_certificate(der, usage)
    if cert is None:
        return None
    try:
        owner, role = certificate_party(cert)
    except GbcsError:
        return None
    return owner if role is None else None


def _certificate_key(
    der: bytes, role: RemotePartyRole, usage: KeyUsage, now: dt.datetime, time_checks: bool
) -> tuple[bytes, bytes, bytes] | None:
    """(party id, public point, key identifier) when the certificate may fill the cell."""
    cert = usable_certificate(der, usage)
    if cert is None:
        return None
    try:
        party, cert_role = certificate_party(cert)
    except Exception:  # a subject the meter cannot read fills no cell
        return None
    if cert_role != role:
        return None
    if time_checks and not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return None
    point = public_point(cert.public_key())  # type: ignore[arg-type]  # P-256, checked
    return party, point, certificate_key_identifier(cert) or point_key_identifier(point)


def _check(
    replacement: TrustAnchorReplacement,
    role: RemotePartyRole,
    anchors: TrustAnchors,
    now: dt.datetime,
    time_checks: bool,
) -> _Checked:
    target = replacement.target
    held = anchors.by_role(target.role)
    usage = target.key_usage.usage
    existing_id = held.party_id if held is not None else NO_PARTY
    existing_ski = held.ski(usage) if held is not None and usage is not None else bytes(8)
    if target.role != role:
        return _Checked(CredentialStatus.BAD_CERTIFICATE, existing_id, existing_ski)
    if usage is None or target.cell_usage != 0:
        return _Checked(CredentialStatus.TRUST_ANCHOR_NOT_FOUND, existing_id, existing_ski)
    key = _certificate_key(replacement.certificate, role, usage, now, time_checks)
    if key is None:
        return _Checked(CredentialStatus.BAD_CERTIFICATE, existing_id, existing_ski)
    return _Checked(CredentialStatus.SUCCESS, existing_id, existing_ski, _NewKey(usage, *key))


def _new_anchor(
    current: TrustAnchor, keys: list[_NewKey], anchors: TrustAnchors
) -> TrustAnchor | None:
    """The role's anchor after the replacement, None when the new cells would not be one party.

    Each cell once; every new certificate names one party; that party is no other
    role's anchor; a new party replaces both cells (an anchor is one party's DS and KA).
    """
    usages = [k.usage for k in keys]
    parties = {k.party for k in keys}
    if not keys or len(usages) != len(set(usages)) or len(parties) != 1:
        return None
    party = parties.pop()
    if any(a.party_id == party for a in anchors if a.role != current.role):
        return None
    if party != current.party_id and len(usages) != 2:
        return None
    new = {k.usage: k for k in keys}
    ka, ds = new.get(KeyUsage.KA), new.get(KeyUsage.DS)
    return TrustAnchor(
        current.role,
        party,
        current.ka_public if ka is None else ka.point,
        current.ds_public if ds is None else ds.point,
        current.ka_ski if ka is None else ka.ski,
        current.ds_ski if ds is None else ds.ski,
    )


def plan_update(
    command: UpdateSecurityCredentials,
    anchors: TrustAnchors,
    now: dt.datetime,
    authorising_seq_number: int,
) -> UpdatePlan:
    """Check every replacement; all or nothing (see the module notes)."""
    mode = CredentialsReplacementMode(command.mode)
    role = mode.replaced_role
    current = anchors.by_role(role) if role is not None else None
    if role is None or current is None:
        raise Rejected(f"the meter holds no anchor that {mode.name} replaces")
    time_checks = command.control.apply_time_based_cpv_checks != _DISAPPLY
    checked = [_check(r, role, anchors, now, time_checks) for r in command.replacements]
    keys = [c.new for c in checked if c.new is not None]
    new_anchor = _new_anchor(current, keys, anchors) if len(keys) == len(checked) else None
    if new_anchor is None and len(keys) == len(checked):
        checked = [c.failed(CredentialStatus.BAD_CERTIFICATE) for c in checked]
    if new_anchor is None:
        outcomes = tuple(
            ReplacementOutcome(
                r.target,
                CredentialStatus.OTHER if c.status is CredentialStatus.SUCCESS else c.status,
                c.existing_id,
                c.existing_ski,
                c.existing_id,
                c.existing_ski,
            )
            for r, c in zip(command.replacements, checked, strict=True)
        )
        return UpdatePlan(UpdateOutcome(authorising_seq_number, mode, (), outcomes))
    outcomes = tuple(
        ReplacementOutcome(
            r.target,
            CredentialStatus.SUCCESS,
            c.existing_id,
            c.existing_ski,
            k.party,
            k.ski,
        )
        for r, c, k in zip(command.replacements, checked, keys, strict=True)
    )
    control = command.control
    changes = [
        RemotePartySeqNumberChange(role, control.new_floor or 0, control.new_specialist_floors)
    ]
    counters: list[tuple[bytes, int | None]] = []
    if new_anchor.party_id != current.party_id:
        counters += [(current.party_id, None), (new_anchor.party_id, None)]
    if control.new_floor:
        counters.append((new_anchor.party_id, control.new_floor))
    for change in control.other_changes or ():
        held = anchors.by_role(change.role)
        if held is not None and change.role != role:
            changes.append(change)
            if change.floor:
                counters.append((held.party_id, change.floor))
    outcome = UpdateOutcome(authorising_seq_number, mode, tuple(changes), outcomes)
    return UpdatePlan(outcome, anchors.with_anchor(new_anchor), tuple(counters))
