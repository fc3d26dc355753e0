"""The DCC-side service layer a triage bench talks to (DUIS service requests).

Each request is checked as SEC Appendix AB clause 6.1 says before anything is
sent: the user's role must be eligible for the request; for a non-critical
request the target's SMI status must be one of commissioned, installed not
commissioned, whitelisted or pending; adding a meter to a CHF log needs the
Responsible Supplier of its MPxN; restoring a device log needs a log read from
a CHF of which the sender is or was the Responsible Supplier. A failed check
rejects the request with a reason code and changes nothing. Production
proving (SEC Section P as the model) adds: MPxNs must be valid and from the
reserved dummy range unless the bench is in lab-only mode, and SRs 6.15, 6.21
and 6.23 are refused. Every request, response, GBCS message and alert goes
to the append-only audit log.

Service requests: 8.9 Read Device Log (CCS07 option: current and historic
logs, base64), 8.11 Update HAN Device Log (CCS01 add / CCS02 remove), 8.12.1
Restore HAN Device Log (CCS03, whole log), 8.14.1 Communications Hub status
update (installed), 8.15 Disconnect Smart Meter From HAN (CS02f, critical:
transformed into a pre-command that the user signs with its own key, then the
service layer adds the MAC), 8.16 Restore Specified HAN Device Log for
Specified Smart Meter (only that meter's entry, with CCS03), 6.24.1 Retrieve
Device Security Credentials (CS02a from the ACB, as in the RTDS: whose
supplier and network operator anchors the meter holds), device
pre-notification (to build the inventory), and the QA reads (CS07, ECS26m,
ECS52, ECS35a), named by their GBCS use case.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators import qa
from emulators.headend import Outcome
from emulators.inventory import TRANSITIONS, Inventory, InventoryError, SmiDevice, SmiStatus
from emulators.mpxn import (
    ExcludedServiceRequest,
    Mpan,
    Mprn,
    MpxnError,
    ProductionProvingPolicy,
    refuse_excluded,
)
from emulators.world import Hub, World
from gbcs import asn1, dlms
from gbcs.catalogue import CATALOGUE
from gbcs.devicelog import (
    AddDevice,
    DeviceLog,
    DeviceLogs,
    DeviceType,
    ReadDeviceLogs,
    RemoveDevice,
    RestoreDeviceLog,
)
from gbcs.dlms import AccessResponse
from gbcs.errors import GbcsError
from gbcs.frame import GbcsMessage, new_command
from gbcs.joins import DisconnectFromHan, DisconnectResult, parse_int_response
from gbcs.keys import KeyUsage, MemoryKeyStore
from gbcs.primitives import RESERVED_EUI64
from gbcs.security import SecurityContext
from gbcs.testpki import Party, RemotePartyRole, role_label

__all__ = [
    "ELIGIBLE_ROLES",
    "Reason",
    "ServiceLayer",
    "ServiceResponse",
    "User",
]

ACTIVE_STATUSES = frozenset(
    {
        SmiStatus.COMMISSIONED,
        SmiStatus.INSTALLED_NOT_COMMISSIONED,
        SmiStatus.WHITELISTED,
        SmiStatus.PENDING,
    }
)

SUPPLIER = RemotePartyRole.SUPPLIER
NETWORK_OPERATOR = RemotePartyRole.NETWORK_OPERATOR

# AB 6.1 "eligible user role", for the requests this layer offers.
ELIGIBLE_ROLES: dict[str, frozenset[RemotePartyRole]] = {
    "pre-notification": frozenset({SUPPLIER}),
    "decommission": frozenset({SUPPLIER}),
    "8.9": frozenset({SUPPLIER, NETWORK_OPERATOR}),
    "8.11": frozenset({SUPPLIER}),
    "8.12.1": frozenset({SUPPLIER}),
    "8.14.1": frozenset({SUPPLIER}),
    "8.15": frozenset({SUPPLIER}),
    "8.16": frozenset({SUPPLIER}),
    "CS07": frozenset({SUPPLIER, NETWORK_OPERATOR}),
    "ECS26m": frozenset({SUPPLIER}),
    "ECS52": frozenset({SUPPLIER, NETWORK_OPERATOR}),
    "ECS35a": frozenset({SUPPLIER}),
    "6.24.1": frozenset({SUPPLIER, NETWORK_OPERATOR}),
}


class Reason(enum.StrEnum):
    """Why a request was rejected or failed (the kit's reason codes)."""

    ROLE_NOT_ELIGIBLE = "ROLE_NOT_ELIGIBLE"
    UNKNOWN_DEVICE = "UNKNOWN_DEVICE"
    SMI_STATUS = "SMI_STATUS"
    NOT_RESPONSIBLE_SUPPLIER = "NOT_RESPONSIBLE_SUPPLIER"
    LOG_NOT_FROM_SUPPLIERS_CHF = "LOG_NOT_FROM_SUPPLIERS_CHF"
    ENTRY_NOT_IN_LOG = "ENTRY_NOT_IN_LOG"
    INVALID_MPXN = "INVALID_MPXN"
    EXCLUDED_SRV = "EXCLUDED_SRV"
    INVALID_PARAMETER = "INVALID_PARAMETER"
    NOT_SIGNED_BY_USER = "NOT_SIGNED_BY_USER"
    DEVICE_FAILURE = "DEVICE_FAILURE"
    NO_RESPONSE = "NO_RESPONSE"


class Rejected(GbcsError):
    """A check failed before anything was sent: nothing changed."""

    def __init__(self, reason: Reason, text: str) -> None:
        self.reason = reason
        super().__init__(text)


class Failed(Rejected):
    """The command went out but its outcome is unknown or refused: it may have acted."""


# What a failed 8.11 remove says when the CHF's answer is that the device is not logged.
NOT_IN_LOG = "the device is not in that CHF's log"


def _unanswered(outcome: Outcome) -> Reason:
    """Why a command has no usable response: none came, or the device's own response did
    not verify (a device fault: its keys do not match its certificates)."""
    return Reason.NO_RESPONSE if outcome.rejected is None else Reason.DEVICE_FAILURE


@dataclass(frozen=True, slots=True)
class ServiceResponse:
    """The answer to one service request."""

    srv: str
    status: str  # "ok", "rejected" (a check failed, nothing changed) or "failed"
    reason: Reason | None = None
    text: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def result(self) -> str:
        return "ok" if self.ok else f"{self.status}: {self.reason}: {self.text}"


class User:
    """A DCC user (an energy supplier, say): its identity, role and its own signing key."""

    def __init__(self, name: str, party_id: bytes, role: RemotePartyRole, keystore: Any) -> None:
        if not isinstance(role, RemotePartyRole):
            raise GbcsError(f"user {name}: role {role!r} is not a RemotePartyRole")
        self.name = name
        self.party_id = party_id
        self.role = role
        own = MemoryKeyStore()
        key = keystore.private_key(party_id, KeyUsage.DS)
        self._public = key.public_key().public_numbers()
        self._holds: dict[bytes, bool] = {}
        own.add(party_id, KeyUsage.DS, private=key)
        self._signer = SecurityContext(own)

    @property
    def hex(self) -> str:
        return self.party_id.hex().upper()

    def holds_key_of(self, party: Party) -> bool:
        """Whether this user's signing key is the one ``party``'s DS certificate names
        (asked on every request: the answer is kept, as the certificate does not change)."""
        held = self._holds.get(party.eui64)
        if held is None:
            held = self._holds[party.eui64] = (
                self._public == party.ds_cert.public_key().public_numbers()
            )
        return held

    def sign(self, precommand: GbcsMessage) -> GbcsMessage:
        """What the user's own system does with a pre-command: sign it (DUIS 'signed')."""
        return self._signer.sign(precommand)


def _hex(eui: bytes) -> str:
    return eui.hex().upper()


# Parameters that name a device by its EUI-64, and the hex digits of the install code.
EUI64_PARAMETERS = frozenset({"device", "chf", "network_operator"})
# Those a request may leave unset (None); every other one must be given.
OPTIONAL_PARAMETERS = frozenset({"install_code", "network_operator", "mpxn"})
INSTALL_CODE_DIGITS = 32  # a GBCS install code: 16 bytes, without its CRC


def _checked_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Every parameter is text (``mpxns`` a list of texts); only the optional ones may
    be None (unset).

    EUI-64s (16 hex digits, not a reserved one) and the install code (32) are checked
    and upper-cased here, so the SMI keys every device one way and a malformed one
    never gets stored.
    """
    checked = dict(params)
    for name, value in params.items():
        if name == "mpxns":
            ok = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        else:
            ok = isinstance(value, str) or (value is None and name in OPTIONAL_PARAMETERS)
        if not ok:
            want = "a list of strings" if name == "mpxns" else "a string"
            raise Rejected(
                Reason.INVALID_PARAMETER, f"{name} must be {want}, not {type(value).__name__}"
            )
    for name, value in params.items():
        digits = 16 if name in EUI64_PARAMETERS else INSTALL_CODE_DIGITS
        if value is not None and (name in EUI64_PARAMETERS or name == "install_code"):
            if len(value) != digits or any(c not in string.hexdigits for c in value):
                raise Rejected(
                    Reason.INVALID_PARAMETER, f"{name} {value!r} is not {digits} hex digits"
                )
            reserved = (
                RESERVED_EUI64.get(bytes.fromhex(value)) if name in EUI64_PARAMETERS else None
            )
            if reserved is not None:
                raise Rejected(
                    Reason.INVALID_PARAMETER, f"{name} {value} is {reserved}, not a device's"
                )
            checked[name] = value.upper()
    return checked


def _refused(apdu: AccessResponse, what: str) -> str:
    """Why a CHF refused, as far as the DCC can tell: the DLMS results it answered."""
    names = [r.name or str(r.result) for r in apdu.results if r.result]
    return f"the CHF refused the {what} (DLMS {', '.join(names)})"


class ServiceLayer:
    """Service requests over the emulated world's head end, with the SMI in SQLite."""

    def __init__(
        self,
        inventory: Inventory,
        world: World,
        policy: ProductionProvingPolicy | None = None,
    ) -> None:
        self.inventory = inventory
        self.world = world
        self.policy = policy if policy is not None else ProductionProvingPolicy.from_env()
        self.headend = world.headend
        self.headend.on_alert = self._alert
        self.headend.observer = self._observe
        self._srv: str | None = None
        self.on_request: Callable[[str, ServiceResponse], None] | None = None

    # Plumbing -----------------------------------------------------------------------
    def _observe(self, kind: str, data: bytes) -> None:
        self.inventory.now = self.world.clock.now
        self.inventory.audit(f"gbcs {kind}", srv=self._srv, data=data)

    def _alert(self, message: GbcsMessage) -> None:
        h = message.header
        self.inventory.audit(
            "alert",
            device=_hex(h.business_originator),
            message_code=h.message_code,
            detail=CATALOGUE.use_case_name(h.message_code),
        )

    def hub(self, chf: str) -> Hub:
        try:
            return self.world.hubs[bytes.fromhex(chf)]
        except (KeyError, ValueError):
            raise Rejected(Reason.UNKNOWN_DEVICE, f"no Communications Hub {chf}") from None

    def _eligible(self, user: User, srv: str) -> None:
        roles = ELIGIBLE_ROLES.get(srv)
        if roles is None:
            raise Rejected(Reason.INVALID_PARAMETER, f"service request {srv} is not offered")
        # The role is the party's certified one (its organisation certificate), not what
        # the caller says of itself; the key the user holds must be that party's.
        try:
            party = self.world.pki.party(user.party_id)
        except GbcsError:
            raise Rejected(
                Reason.ROLE_NOT_ELIGIBLE, f"{user.hex} is not a DCC user the PKI knows"
            ) from None
        if party.role != user.role:
            raise Rejected(
                Reason.ROLE_NOT_ELIGIBLE,
                f"{user.name} is certified as a {role_label(party.role)}, "
                f"not a {role_label(user.role)}",
            )
        if not user.holds_key_of(party):
            raise Rejected(
                Reason.NOT_SIGNED_BY_USER, f"{user.name} does not hold the key of {user.hex}"
            )
        if user.role not in roles:
            raise Rejected(
                Reason.ROLE_NOT_ELIGIBLE,
                f"a {user.role.name.lower()} may not send service request {srv}",
            )

    def _active(self, eui64: str, srv: str) -> None:
        device = self.inventory.device(eui64)
        if device is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {eui64} is not in the inventory")
        if device.smi_status not in ACTIVE_STATUSES:
            raise Rejected(
                Reason.SMI_STATUS,
                f"device {eui64} has SMI status '{device.smi_status}': {srv} needs it "
                "commissioned, installed not commissioned, whitelisted or pending",
            )

    def _mpxn(self, text: str, meter: SmiDevice) -> str:
        """A valid dummy MPxN of the meter's kind that no other device is linked to.

        The SMI links an MPAN to one ESME and an MPRN to one GSME at a time.
        """
        try:
            value = self.policy.parse(text)
        except MpxnError as e:
            raise Rejected(Reason.INVALID_MPXN, str(e)) from None
        if meter.device_type in ("CHF", "GPF"):  # a hub function serves no meter point
            raise Rejected(
                Reason.INVALID_MPXN, f"a {meter.device_type} has no MPxN of its own ({value})"
            )
        want = {"ESME": Mpan, "GSME": Mprn}.get(meter.device_type)
        if want is not None and not isinstance(value, want):
            raise Rejected(
                Reason.INVALID_MPXN,
                f"{value} is not an {want.__name__.upper()}, the MPxN of an {meter.device_type}",
            )
        holder = self.inventory.mpxn_device(str(value))
        if holder is not None and holder != meter.eui64:
            raise Rejected(Reason.INVALID_MPXN, f"{value} is linked to device {holder}")
        return str(value)

    def submit(self, user: User, srv: str, **params: Any) -> ServiceResponse:
        """Run one service request: checks, then the GBCS exchange, all audited."""
        self.inventory.now = self.world.clock.now
        request = {k: (v.hex().upper() if isinstance(v, bytes) else v) for k, v in params.items()}
        wrong = None if isinstance(srv, str) else f"{type(srv).__name__} {srv!r}"
        if wrong is not None:  # audited as written (the log takes text), refused below
            srv = repr(srv)
        self.inventory.audit("request", srv=srv, party=user.hex, detail=request)
        self._srv = srv
        try:
            if wrong is not None:
                raise Rejected(
                    Reason.INVALID_PARAMETER, f"a service request is named by a string, not {wrong}"
                )
            params = _checked_parameters(params)
            if srv[:1].isdigit() or srv.strip().upper().startswith("SRV"):
                try:
                    refuse_excluded(srv)  # a DUIS SRV number (the QA reads go by use case)
                except ExcludedServiceRequest:
                    raise
                except GbcsError as e:
                    raise Rejected(Reason.INVALID_PARAMETER, str(e)) from None
            handler = getattr(self, "_sr_" + srv.replace(".", "_").replace("-", "_"), None)
            if handler is None and srv in qa.QA_USE_CASES:
                if "use_case" in params:  # the request names it: one given would be dropped
                    raise Rejected(Reason.INVALID_PARAMETER, f"{srv} takes no use_case: it is one")
                handler = self._read
                params = {**params, "use_case": srv}
            if handler is None:
                raise Rejected(Reason.INVALID_PARAMETER, f"service request {srv} is not offered")
            self._eligible(user, srv)
            response = handler(user, **params)
        except ExcludedServiceRequest as e:
            response = ServiceResponse(srv, "rejected", Reason.EXCLUDED_SRV, str(e))
        except Rejected as e:
            status = "failed" if isinstance(e, Failed) else "rejected"
            response = ServiceResponse(srv, status, e.reason, str(e))
        except (TypeError, InventoryError) as e:
            response = ServiceResponse(srv, "rejected", Reason.INVALID_PARAMETER, str(e))
        except GbcsError as e:  # what a device answered could not be read (every SR)
            response = ServiceResponse(
                srv, "failed", Reason.DEVICE_FAILURE, f"response not understood: {e}"
            )
        finally:
            self._srv = None
        self.inventory.now = self.world.clock.now
        self.inventory.audit(
            "response",
            srv=srv,
            party=user.hex,
            detail={"status": response.status, "reason": response.reason, "text": response.text},
        )
        if self.on_request is not None:
            self.on_request(srv, response)
        return response

    def _send(self, hub: Hub, message: GbcsMessage, srv: str) -> Outcome:
        return self.headend.send(hub.chf, message)

    def _device_log_command(self, user: User, hub: Hub, command: Any, code: int) -> Outcome:
        he = self.headend
        return he.send(hub.chf, he.device_log_command(command, code, hub.eui64, user.party_id))

    @staticmethod
    def _results(outcome: Outcome) -> AccessResponse:
        """The CHF's DLMS answer; Failed, not Rejected, when there is none to read: the
        command was sent and may have acted."""
        if not outcome.ok or outcome.response is None:
            raise Failed(_unanswered(outcome), outcome.result)
        apdu = dlms.decode(outcome.response.payload)
        if not isinstance(apdu, AccessResponse):
            raise Failed(Reason.DEVICE_FAILURE, "the response is not an Access-Response")
        return apdu

    def _failed(self, srv: str, outcome_or_text: Outcome | str, reason: Reason) -> ServiceResponse:
        text = outcome_or_text if isinstance(outcome_or_text, str) else outcome_or_text.result
        return ServiceResponse(srv, "failed", reason, text)

    def _set_status(self, device: str, status: SmiStatus) -> None:
        """Change an SMI status and record the notification network parties get of it."""
        before = self.inventory.require(device)
        self.inventory.set_status(device, status)
        if before.smi_status is not status:
            self.inventory.audit(
                "notification",
                srv=self._srv,
                party=before.network_operator,
                device=device,
                detail={"smi_status": status.value, "previous": before.smi_status.value},
            )

    # Inventory building ---------------------------------------------------------------
    def _sr_pre_notification(
        self,
        user: User,
        device: str,
        device_type: str,
        install_code: str | None = None,
        network_operator: str | None = None,
    ) -> ServiceResponse:
        """Device pre-notification: the device enters the SMI as 'pending'."""
        if device_type not in DeviceType.__members__:
            raise Rejected(Reason.INVALID_PARAMETER, f"unknown device type {device_type!r}")
        if device_type == "CHF":  # pending could never become commissioned (TRANSITIONS)
            raise Rejected(
                Reason.INVALID_PARAMETER,
                "a CHF enters the SMI by its installation (SR 8.14.1), not pre-notification",
            )
        with self.inventory.transaction():
            self.inventory.add_device(
                device,
                device_type,
                install_code=install_code,
                network_operator=network_operator,
            )
        return ServiceResponse("pre-notification", "ok")

    def _sr_decommission(self, user: User, device: str) -> ServiceResponse:
        """Decommission a device (a meter found faulty): SMI 'decommissioned', no CHF.

        A CHF that devices are still associated with is refused: they would be left
        associated with a hub that is out of service.
        """
        if self.inventory.device(device) is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {device} is not in the inventory")
        users = self.inventory.associated_with(device)
        if users:
            raise Rejected(
                Reason.INVALID_PARAMETER,
                f"CHF {device} still has {', '.join(users)} associated with it",
            )
        with self.inventory.transaction():
            self._set_status(device, SmiStatus.DECOMMISSIONED)
            self.inventory.associate(device, None)
            self.inventory.end_mpxn_links(device)
        return ServiceResponse("decommission", "ok")

    def _sr_8_14_1(self, user: User, chf: str) -> ServiceResponse:
        """CH status update, installed: commissioned, and the user becomes its supplier."""
        self.hub(chf)
        known = self.inventory.device(chf)
        if known is not None and known.device_type != "CHF":
            raise Rejected(
                Reason.INVALID_PARAMETER,
                f"device {chf} is in the SMI with device type {known.device_type}, not CHF",
            )
        with self.inventory.transaction():
            if known is None:
                self.inventory.add_device(chf, "CHF", status=SmiStatus.WHITELISTED)
            self._set_status(chf, SmiStatus.COMMISSIONED)
            self.inventory.record_chf_supplier(chf, user.hex)
        return ServiceResponse("8.14.1", "ok")

    # 8.9 ------------------------------------------------------------------------------
    def _sr_8_9(self, user: User, chf: str, option: str = "ccs07") -> ServiceResponse:
        hub = self.hub(chf)
        self._active(chf, "8.9")
        if option != "ccs07":
            raise Rejected(Reason.INVALID_PARAMETER, f"8.9 option {option!r} is not offered")
        outcome = self._device_log_command(user, hub, ReadDeviceLogs(), ReadDeviceLogs.MESSAGE_CODE)
        logs = DeviceLogs.from_response(self._results(outcome))
        data: dict[str, Any] = {}
        with self.inventory.transaction():
            for name, log in (("current", logs.current), ("historic", logs.historic)):
                if log is not None:
                    text = log.to_base64()
                    data[name] = text
                    self.inventory.record_issued_log(text, chf)
        return ServiceResponse("8.9", "ok", data=data)

    # 8.11 -----------------------------------------------------------------------------
    def _sr_8_11(
        self, user: User, chf: str, device: str, action: str, mpxn: str | None = None
    ) -> ServiceResponse:
        hub = self.hub(chf)
        self._active(chf, "8.11")  # AB 6.1: the target is the CHF
        meter = self.inventory.device(device)
        if meter is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {device} is not in the inventory")
        self._active(device, "8.11")
        if action == "add":
            # The Responsible Supplier check is on the meter's own MPxNs: one given must
            # be one of them, or (a meter with none, say after 8.15) becomes its link.
            given = self._mpxn(mpxn, meter) if mpxn is not None else None
            if given is not None and meter.mpxns and given not in meter.mpxns:
                raise Rejected(
                    Reason.INVALID_MPXN,
                    f"{given} is not an MPxN of {device} ({', '.join(meter.mpxns)})",
                )
            mpxns = list(meter.mpxns) or ([given] if given else [])
            if not mpxns:
                raise Rejected(Reason.INVALID_PARAMETER, "adding a meter needs its MPxN")
            for value in mpxns:
                try:  # linked by any path: still never a real one (Production Proving)
                    self.policy.parse(value)
                except MpxnError as e:
                    raise Rejected(Reason.INVALID_MPXN, str(e)) from None
                if self.inventory.responsible_supplier(value) != user.hex:
                    raise Rejected(
                        Reason.NOT_RESPONSIBLE_SUPPLIER,
                        f"{user.name} is not the Responsible Supplier for {value}",
                    )
            if not meter.install_code:
                raise Rejected(Reason.INVALID_PARAMETER, f"no install code for {device} in SMI")
            command: Any = AddDevice(
                bytes.fromhex(device),
                int(DeviceType[meter.device_type]),
                bytes.fromhex(meter.install_code),
                join_timeout=3600,
            )
            outcome = self._device_log_command(user, hub, command, AddDevice.MESSAGE_CODE)
            apdu = self._results(outcome)
            if any(r.result for r in apdu.results):
                return self._failed("8.11", _refused(apdu, "add"), Reason.DEVICE_FAILURE)
            with self.inventory.transaction():
                self._set_status(device, SmiStatus.WHITELISTED)
                self.inventory.associate(device, chf)
                if given is not None:
                    self.inventory.link_mpxn(device, given)
            return ServiceResponse("8.11", "ok")
        if action == "remove":
            if mpxn is not None:  # taken and then ignored would be data silently dropped
                raise Rejected(Reason.INVALID_PARAMETER, "8.11 remove takes no MPxN")
            command = RemoveDevice(bytes.fromhex(device))
            outcome = self._device_log_command(user, hub, command, RemoveDevice.MESSAGE_CODE)
            apdu = self._results(outcome)
            if any(r.result for r in apdu.results):
                return self._failed("8.11", NOT_IN_LOG, Reason.DEVICE_FAILURE)
            with self.inventory.transaction():
                if meter.chf == chf:
                    # Off its CHF's whitelist, so no longer 'whitelisted' (as after 8.15).
                    if SmiStatus.PENDING in TRANSITIONS[meter.smi_status]:
                        self._set_status(device, SmiStatus.PENDING)
                    self.inventory.associate(device, None)
            return ServiceResponse("8.11", "ok")
        raise Rejected(Reason.INVALID_PARAMETER, f"8.11 action {action!r} is not add or remove")

    # 8.12.1 and 8.16 ------------------------------------------------------------------
    def _traced_log(self, user: User, log_base64: str) -> tuple[DeviceLog, str]:
        try:
            log = DeviceLog.from_base64(log_base64)
        except GbcsError as e:
            raise Rejected(Reason.INVALID_PARAMETER, f"the device log is not valid: {e}") from None
        source = self.inventory.log_source(log_base64)
        if source is None or user.hex not in self.inventory.chf_suppliers(source):
            raise Rejected(
                Reason.LOG_NOT_FROM_SUPPLIERS_CHF,
                "the device log was not read from a CHF of which "
                f"{user.name} is or was the Responsible Supplier",
            )
        return log, source

    def _restore(self, user: User, hub: Hub, log: DeviceLog) -> Outcome:
        restore = DeviceLog(log.extended_pan_id, log.entries)
        return self._device_log_command(
            user, hub, RestoreDeviceLog(restore), RestoreDeviceLog.MESSAGE_CODE
        )

    def _sr_8_12_1(self, user: User, chf: str, log: str) -> ServiceResponse:
        hub = self.hub(chf)
        self._active(chf, "8.12.1")
        device_log, _ = self._traced_log(user, log)
        apdu = self._results(self._restore(user, hub, device_log))
        if any(r.result for r in apdu.results):
            return self._failed("8.12.1", _refused(apdu, "restore"), Reason.DEVICE_FAILURE)
        return ServiceResponse("8.12.1", "ok")

    def _sr_8_16(
        self, user: User, chf: str, device: str, log: str, mpxns: list[str] | tuple[str, ...]
    ) -> ServiceResponse:
        hub = self.hub(chf)
        self._active(chf, "8.16")  # AB 6.1: the target is the CHF
        meter = self.inventory.device(device)
        if meter is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {device} is not in the inventory")
        self._active(device, "8.16")
        values = [self._mpxn(m, meter) for m in mpxns]
        if not values:
            raise Rejected(Reason.INVALID_PARAMETER, "8.16 needs the meter's MPxN(s)")
        device_log, _ = self._traced_log(user, log)
        if device_log.entry_for(bytes.fromhex(device)) is None:
            raise Rejected(Reason.ENTRY_NOT_IN_LOG, f"device {device} is not in that device log")
        only = device_log.only(bytes.fromhex(device))
        apdu = self._results(self._restore(user, hub, only))
        if any(r.result for r in apdu.results):
            return self._failed("8.16", _refused(apdu, "restore"), Reason.DEVICE_FAILURE)
        with self.inventory.transaction():
            self.inventory.associate(device, chf)
            for value in values:
                self.inventory.link_mpxn(device, value)
            if meter.device_type != DeviceType.TYPE2.name:
                self._set_status(device, SmiStatus.WHITELISTED)
        return ServiceResponse("8.16", "ok")

    # 8.15 -----------------------------------------------------------------------------
    def _sr_8_15(self, user: User, device: str) -> ServiceResponse:
        meter = self.inventory.device(device)
        if meter is None:
            raise Rejected(Reason.UNKNOWN_DEVICE, f"device {device} is not in the inventory")
        if meter.device_type not in ("ESME", "GSME"):
            raise Rejected(Reason.INVALID_PARAMETER, "8.15 is for ESMEs and GSMEs")
        if meter.chf is None:
            raise Rejected(Reason.INVALID_PARAMETER, f"device {device} has no CHF in the SMI")
        hub = self.hub(meter.chf)
        he = self.headend
        code = CATALOGUE.disconnect_code
        payload = asn1.encode(DisconnectFromHan(bytes.fromhex(device)).to_payload())
        # Transform: the DCC turns the request into a pre-command (no signature field).
        precommand = new_command(
            code,
            payload,
            originator=user.party_id,
            target=bytes.fromhex(device),
            counter=he.next_counter(user.party_id),
            precommand=True,
        )
        self.inventory.audit("pre-command", srv="8.15", party=user.hex, data=precommand.encode())
        signed = user.sign(precommand)
        check = he.security.check_signature(signed)
        if check.value != "valid":
            raise Rejected(
                Reason.NOT_SIGNED_BY_USER, f"the signed pre-command does not verify ({check.value})"
            )
        if signed.header != precommand.header or signed.payload != precommand.payload:
            raise Rejected(
                Reason.NOT_SIGNED_BY_USER,
                "the signed command is not the pre-command the DCC built (header or payload "
                "changed)",
            )
        outcome = he.send(hub.chf, he.security.add_mac(signed))
        if not outcome.ok or outcome.response is None:
            return self._failed("8.15", outcome, _unanswered(outcome))
        response = outcome.response
        # An answer that cannot be read fails the request in submit() ("not understood").
        value = asn1.decode_type(asn1.DISCONNECT_TYPES[response.header.cra_flag], response.payload)
        result = parse_int_response(value, "DisconnectFromHanResponse")
        if not response.signature:
            return self._failed("8.15", "the response is not signed", Reason.DEVICE_FAILURE)
        if result != DisconnectResult.SUCCESS:
            name = (
                DisconnectResult(result).name
                if result in DisconnectResult._value2member_map_
                else result
            )
            return self._failed("8.15", f"meter answered {name}", Reason.DEVICE_FAILURE)
        self._divorced(device)
        return ServiceResponse("8.15", "ok")

    def _divorced(self, device: str) -> None:
        """The SMI after a meter's divorce from its HAN: pending, no CHF, MPxN links ended."""
        with self.inventory.transaction():
            # A critical request skips the SMI status check, so the meter may be in a
            # status that cannot become 'pending' (decommissioned, withdrawn): the
            # disconnect has happened all the same, so record it and keep that status.
            if SmiStatus.PENDING in TRANSITIONS[self.inventory.require(device).smi_status]:
                self._set_status(device, SmiStatus.PENDING)
            self.inventory.associate(device, None)
            self.inventory.end_mpxn_links(device)

    def record_divorce(self, user: User, device: str, evidence: str) -> ServiceResponse:
        """A divorce the bench saw on the HAN (the meter left) although its 8.15 failed:
        it ran the CS02f and only the answer was lost. Not a service request: the SMI is
        brought in line with the meter, and the audit log says why."""
        self.inventory.now = self.world.clock.now
        self.inventory.audit(
            "reconciliation", srv="8.15", party=user.hex, device=device, detail=evidence
        )
        self._srv = "8.15"
        try:
            self._divorced(device)
        finally:
            self._srv = None
        return ServiceResponse("8.15", "ok", text=evidence)

    # QA reads -------------------------------------------------------------------------
    def _meter_hub(self, device: str, srv: str) -> Hub:
        """The CHF a non-critical request to ``device`` goes through, after its checks."""
        self._active(device, srv)
        meter = self.inventory.require(device)
        if meter.chf is None:
            raise Rejected(Reason.INVALID_PARAMETER, f"device {device} has no CHF in the SMI")
        return self.hub(meter.chf)

    def _sr_6_24_1(self, user: User, device: str) -> ServiceResponse:
        """Retrieve Device Security Credentials (KRP): CS02a from the ACB with its MAC,
        as RTDS 6.24.1 sends it. ``data`` names whose anchors the meter holds."""
        hub = self._meter_hub(device, "6.24.1")
        he = self.headend
        code, payload = qa.credentials_request()
        message = new_command(
            code,
            payload,
            originator=he.acb,
            target=bytes.fromhex(device),
            counter=he.next_counter(he.acb),
        )
        outcome = he.send(hub.chf, he.security.add_mac(message))
        if not outcome.ok or outcome.response is None:
            return self._failed("6.24.1", outcome, _unanswered(outcome))
        return ServiceResponse("6.24.1", "ok", data=qa.anchor_holders(outcome.response))

    def _read(self, user: User, device: str, use_case: str) -> ServiceResponse:
        hub = self._meter_hub(device, use_case)
        kind = self.inventory.require(device).device_type
        if use_case in qa.ESME_READS and kind != "ESME":  # checked before anything is sent
            raise Rejected(
                Reason.INVALID_PARAMETER, f"{use_case} reads an ESME; device {device} is a {kind}"
            )
        he = self.headend
        counter = he.next_counter(user.party_id)
        clock = self.world.clock
        code, payload = qa.request(use_case, counter, clock.epoch, clock.utc)
        message = new_command(
            code, payload, originator=user.party_id, target=bytes.fromhex(device), counter=counter
        )
        outcome = he.send(hub.chf, he.security.add_mac(message))
        if not outcome.ok or outcome.response is None:
            return self._failed(use_case, outcome, _unanswered(outcome))
        data = qa.parse(use_case, outcome.response)
        if data.pop("failed"):
            return self._failed(
                use_case, "the meter reported a read failure", Reason.DEVICE_FAILURE
            )
        return ServiceResponse(use_case, "ok", data=data)
