"""Emulated meters: the ESME (mains-powered router) and the GSME (sleepy end device).

Both keep a device log of their HAN partners (CS03 join, CS04 unjoin, CS07
read join details) and obey the SECMP0013 disconnect: after answering, signed,
they drop network key, PAN and link key, go back to their install-code key
and auto-join the next HAN that opens a join window for them. They hold their
trust anchors as GBCS meters do: CS02a reports them, CS02b (supplier, network
operator and ACB modes) replaces them, CS02e returns the meter's own certificate
(:mod:`emulators.credential_uc` has the rules and the choices made).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import IntEnum
from typing import Any

from emulators.clock import VirtualClock
from emulators.credential_uc import (
    UPDATE_CODES,
    UpdatePlan,
    authorise_update,
    credential_details,
    device_certificate_owner,
    plan_update,
)
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.device import (
    AFTER_RESPONSE_DELAY,
    GbcsDevice,
    Rejected,
    Reply,
    asn1_reply,
    dlms_request,
)
from emulators.saved_state import SavedState, saved_hex, saved_int
from gbcs import dlms, gbz
from gbcs.credentials_uc import (
    PROVIDE_CREDENTIAL_DETAILS,
    PROVIDE_DEVICE_CERTIFICATE,
    CredentialsReplacementMode,
    DeviceCertificate,
    DeviceCertificateResult,
    ProvideCredentialDetails,
    ProvideDeviceCertificate,
    UpdateCredentialsResponse,
    UpdateSecurityCredentials,
)
from gbcs.devicelog import DeviceType
from gbcs.errors import GbcsError
from gbcs.events import (
    CLEAR_EVENT_LOG,
    EVENTS_CLUSTER,
    ClearEventLog,
    EventLogsCleared,
    LogId,
)
from gbcs.frame import FrameParts, GbcsMessage
from gbcs.gsme_reads import (
    GSME_FIRMWARE_VERSION_ATTRIBUTE,
    ReadGsmeFirmwareVersion,
    ReadZigbeeEventLog,
    ZigbeeEventLog,
    ZigbeeEventLogEntry,
    read_attributes_answer,
)
from gbcs.joins import (
    DisconnectFromHan,
    DisconnectResult,
    HanDevice,
    JoinDetails,
    JoinDevice,
    JoinMethod,
    JoinResult,
    UnjoinDevice,
    UnjoinResult,
    int_response,
)
from gbcs.keys import KeyUsage
from gbcs.primitives import utc_to_gbz
from gbcs.reads import (
    EsmeIdentity,
    EventLog,
    EventLogEntry,
    FirmwareVersion,
    ReadEsmeIdentity,
    ReadEventLog,
    ReadFirmwareVersion,
)
from gbcs.testpki import RemotePartyRole

__all__ = ["Esme", "Gsme", "Meter"]

ANY_ROLE = frozenset(RemotePartyRole)  # one shared set: every meter holds a reference

PARTNER_CAPACITY = 5  # a meter's HAN partner log (GSME/PPMID/HCALCS/IHD) is small
# Method B joins a device without a certificate: the GPF (to its GSME) or a Type 2 device.
# Anything else with method B, or those with a certificate-based method, is the wrong
# role (RTDS CS03B ERROR: a PPMID by method B answers invalidJoinMethodAndRole).
METHOD_B_TYPES = frozenset({int(DeviceType.GPF), int(DeviceType.TYPE2)})
# A meter's HAN partners: the devices that work with a meter (its GPF, PPMID, HCALCS, a
# Type 2 device), not the hub's CHF nor another meter (the GPF refuses those alike).
PARTNER_TYPES = frozenset(
    int(t) for t in (DeviceType.GPF, DeviceType.HCALCS, DeviceType.PPMID, DeviceType.TYPE2)
)
# CS03A2 (0x00AB) is the non-meter side of a method-A join (CRIB §7; in the RTDS it goes to
# the PPMID and HCALCS only): a meter takes the meter side, CS03A1 (0x000D).
NON_METER_SIDE_JOIN = 0x00AB
# CS03 message codes and the join methods each may carry (GBCS 13.3.x).
JOIN_CODES: dict[int, frozenset[int]] = {
    0x000D: frozenset({JoinMethod.METHOD_A_INITIATOR, JoinMethod.METHOD_A_RESPONDER}),
    NON_METER_SIDE_JOIN: frozenset(),
    0x000E: frozenset({JoinMethod.METHOD_B}),
    0x00AF: frozenset({JoinMethod.METHOD_C}),
}
_JOIN_METHODS = frozenset(int(m) for m in JoinMethod)
_DEVICE_TYPES = frozenset(int(t) for t in DeviceType)
UNJOIN_CODES = (0x000F, 0x0010)
CS04B = 0x0010  # unjoins a method-B partner only: CS04AC, critical, unjoins the others
CREDENTIAL_DETAILS_WITH_LOAD_CONTROLLER = 0x011B
READ_JOIN_DETAILS = 0x0013


def _is_key_agreement_certificate(der: bytes | None) -> bool:
    """Whether a CS03C certificate can serve the key establishment method C exists for:
    a device's X.509 certificate with a P-256 key for key agreement only, as in both RTDS
    method-C joins (an organisation's certificate is no HAN device's). Not that it names
    the partner: one RTDS CS03C carries another device's."""
    return der is not None and device_certificate_owner(der, KeyUsage.KA) is not None


def _own_certificates(
    certificates: Mapping[KeyUsage, bytes], eui64: bytes, where: str
) -> dict[KeyUsage, bytes]:
    """A meter's own certificates, as CS02e returns them: its KA and DS device
    certificates, each naming this meter (GbcsError naming the bad one otherwise)."""
    out: dict[KeyUsage, bytes] = {}
    for usage, der in certificates.items():
        if usage not in (KeyUsage.KA, KeyUsage.DS):
            raise GbcsError(f"{where}: a meter holds KA and DS certificates, not {usage.value}")
        owner = device_certificate_owner(der, usage)
        if owner != eui64:
            whose = "no usable device certificate" if owner is None else owner.hex().upper()
            raise GbcsError(
                f"{where}[{usage.value}] is not this meter's {usage.name} certificate ({whose})"
            )
        out[usage] = der
    return out


class Meter(GbcsDevice):
    """What the ESME and GSME share: partners, join details, the HAN disconnect and the
    security-credential use cases CS02a, CS02b and CS02e (:mod:`emulators.credential_uc`).

    ``certificates`` are the meter's own DER X.509 certificates by key usage (KA, DS),
    returned by CS02e; a meter built without them answers noCertificateHeld.
    """

    dated_responses = UPDATE_CODES  # CS02b may be future-dated: its responses are dated

    sleepy = False
    # CS02b accessControlBrokerByACB comes MAC'd by the ACB alone (GBCS 13.3.3.1).
    acb_authorised = frozenset({0x0104})

    def __init__(
        self,
        credentials: DeviceCredentials,
        anchors: TrustAnchors,
        clock: VirtualClock,
        *,
        install_code: bytes,
        firmware_version: bytes = b"\x01\x00\x00\x00",
        certificates: Mapping[KeyUsage, bytes] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(credentials, anchors, clock, **kwargs)
        if len(install_code) != 16:
            raise GbcsError("a GBCS install code is 16 bytes (no CRC)")
        self.install_code = install_code
        self.firmware_version = firmware_version
        self.partners: dict[bytes, int] = {}
        self.leaving = False  # a CS02f answered SUCCESS, the network not forgotten yet
        self.certificates = _own_certificates(certificates or {}, self.eui64, "certificates")
        for code in JOIN_CODES:
            self.handlers[code] = self._join
        for code in UNJOIN_CODES:
            self.handlers[code] = self._unjoin
        self.handlers[READ_JOIN_DETAILS] = self._join_details
        self.handlers[self.catalogue.disconnect_code] = self._disconnect
        self.handlers[PROVIDE_CREDENTIAL_DETAILS] = self._credential_details
        self.handlers[PROVIDE_DEVICE_CERTIFICATE] = self._device_certificate
        for code in UPDATE_CODES:
            self.handlers[code] = self._update_credentials
            # Each CS02b mode pins its own authoriser (authorise_update), not the supplier.
            self.signer_roles[code] = ANY_ROLE

    # CS03 / CS04 / CS07 ----------------------------------------------------------------
    def _join(self, message: GbcsMessage) -> Reply:
        command = JoinDevice.from_payload(self.asn1_payload(message))
        allowed = JOIN_CODES[message.header.other_information.message_code]
        device = command.other_device_id
        if command.method not in _JOIN_METHODS or command.other_device_type not in _DEVICE_TYPES:
            # No method or no device type GBCS defines (CRIB §5.2): no role to join in.
            code = JoinResult.INVALID_JOIN_METHOD_AND_ROLE
        elif command.method not in allowed:
            code = JoinResult.INVALID_MESSAGE_CODE_FOR_JOIN_METHOD
        elif (command.method == JoinMethod.METHOD_B) != (
            command.other_device_type in METHOD_B_TYPES
        ) or command.other_device_type not in PARTNER_TYPES:
            code = JoinResult.INVALID_JOIN_METHOD_AND_ROLE
        elif command.method == JoinMethod.METHOD_C and not _is_key_agreement_certificate(
            command.other_device_ka_certificate
        ):
            code = JoinResult.INVALID_OR_MISSING_CERTIFICATE
        elif (
            device in self.partners and self.partners[device] != command.other_device_type
        ) or device == self.eui64:
            code = JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY
        elif device not in self.partners and len(self.partners) >= PARTNER_CAPACITY:
            code = JoinResult.DEVICE_LOG_FULL
        else:
            self.partners[device] = command.other_device_type
            code = JoinResult.SUCCESS
            self.log_event("partner joined", device.hex().upper())
        return asn1_reply(
            int_response("JoinDeviceResponse", code), executed=code == JoinResult.SUCCESS
        )

    def _unjoin(self, message: GbcsMessage) -> Reply:
        device = UnjoinDevice.from_payload(self.asn1_payload(message)).device_id
        kind = self.partners.get(device)
        by_b = message.header.other_information.message_code == CS04B
        if kind is None:
            code = UnjoinResult.NOT_IN_DEVICE_LOG
        elif by_b != (kind in METHOD_B_TYPES):
            # CS04B is not critical: it unjoins only what method B joined. A partner joined
            # by a critical CS03A/CS03C comes off only by the critical CS04AC, else CS04B
            # would bypass that signature (a network operator could send it).
            code = UnjoinResult.OTHER_FAILURE
            which = "CS04B unjoins only GPF and Type 2" if by_b else "CS04AC unjoins no method-B"
            self.log_security("unjoin refused", f"{device.hex().upper()}: {which} partners")
        else:
            del self.partners[device]
            code = UnjoinResult.SUCCESS
            self.log_event("partner unjoined", device.hex().upper())
        return asn1_reply(
            int_response("UnjoinDeviceResponse", code), executed=code == UnjoinResult.SUCCESS
        )

    def _join_details(self, message: GbcsMessage) -> Reply:
        self.asn1_payload(message)  # a malformed command is refused, not answered
        devices = tuple(HanDevice(d, t) for d, t in self.partners.items())
        return asn1_reply(JoinDetails(0, devices).to_payload())

    # SECMP0013 CS02f ---------------------------------------------------------------------
    def _disconnect(self, message: GbcsMessage) -> Reply:
        command = DisconnectFromHan.from_payload(self.asn1_payload(message))
        if command.device_id != self.eui64:
            code = DisconnectResult.WRONG_DEVICE_ID
            after = None
        elif self.han is None or not self.han.has_network:
            # notJoined means no network to leave. A meter that has lost its parent for a
            # moment (orphaned, rejoining) still holds one, and a CS02f that reached it
            # through its tunnel divorces it.
            code = DisconnectResult.NOT_JOINED
            after = None
        else:
            code = DisconnectResult.SUCCESS
            self.leaving = True  # decided: kept over a restart until it is carried out
            after = self._leave
            self.log_event("disconnect from HAN", "reverting to the install-code link key")
        return asn1_reply(
            int_response("DisconnectFromHanResponse", code),
            after,
            executed=code == DisconnectResult.SUCCESS,
        )

    def coded_events(self) -> list[tuple[dt.datetime, int]]:
        """The event log's entries that have an event code (:data:`EVENT_CODES`), oldest
        first: what ECS35a (ESME) and CS10a (GSME) report."""
        at = self.clock.at
        return [
            (at(e.time), EVENT_CODES[e.event]) for e in self.event_log if e.event in EVENT_CODES
        ]

    def _leave(self) -> None:
        if not self.leaving:
            return
        self.leaving = False
        if self.han is not None:
            self.han.forget_network()

    def resume(self) -> None:
        """After a load: a disconnect answered but not yet carried out still happens."""
        if self.leaving:
            self.clock.call_later(AFTER_RESPONSE_DELAY, self._leave)

    # Security credentials: CS02a, CS02b, CS02e -----------------------------------------------
    def authorise(self, message: GbcsMessage, parts: FrameParts) -> None:
        """The common checks, then CS02b's own (GBCS 13.3), before any state changes."""
        super().authorise(message, parts)
        if message.header.other_information.message_code in UPDATE_CODES:
            authorise_update(message, self._update_command(message), self.anchors, self.clock.utc)

    def _update_command(self, message: GbcsMessage) -> UpdateSecurityCredentials:
        try:
            return UpdateSecurityCredentials.from_payload(self.asn1_payload(message))
        except GbcsError as e:
            raise Rejected(f"CS02b payload: {e}") from None

    def _credential_details(self, message: GbcsMessage) -> Reply:
        command = ProvideCredentialDetails.from_payload(self.asn1_payload(message))
        details = credential_details(self.anchors, self.counters, command.roles)
        return asn1_reply(details.to_payload())

    def _update_credentials(self, message: GbcsMessage) -> Reply:
        command = self._update_command(message)
        plan = plan_update(command, self.anchors, self.clock.utc, message.header.originator_counter)
        response = UpdateCredentialsResponse(plan.outcome).to_payload()
        if plan.anchors is None:
            self.log_security("credentials update refused", _outcome_text(plan))
            return asn1_reply(response, executed=False)
        # The response is protected with the keys valid when the command arrived; the
        # new anchors take over on the clock's next step, before any later command.
        return asn1_reply(response, lambda: self._install(plan), delay=0.0)

    def _install(self, plan: UpdatePlan) -> None:
        assert plan.anchors is not None
        self.replace_anchors(plan.anchors)
        counters = self.counters
        for party, floor in plan.counters:
            if floor is None:
                counters.pop(party, None)
            else:
                counters[party] = max(counters.get(party, floor), floor)
        self.log_security("trust anchors replaced", _outcome_text(plan))

    def _device_certificate(self, message: GbcsMessage) -> Reply:
        command = ProvideDeviceCertificate.from_payload(self.asn1_payload(message))
        usage = command.key_usage.usage
        certificate = None if usage is None else self.certificates.get(usage)
        if usage is None:
            answer = DeviceCertificate(response_code=DeviceCertificateResult.INVALID_KEY_USAGE)
        elif certificate is None:
            answer = DeviceCertificate(response_code=DeviceCertificateResult.NO_CERTIFICATE_HELD)
        else:
            answer = DeviceCertificate(certificate)
        return asn1_reply(answer.to_payload(), executed=certificate is not None)

    # State -----------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        state = {
            **self.gbcs_state(),
            "install_code": self.install_code.hex().upper(),
            "firmware_version": self.firmware_version.hex(),
            "partners": {d.hex().upper(): t for d, t in self.partners.items()},
            "leaving": self.leaving,
        }
        if self.certificates:
            state["certificates"] = {u.value: c.hex() for u, c in self.certificates.items()}
        return state

    def load_state(self, obj: dict[str, Any]) -> None:
        """Restore :meth:`state`: every key is required but ``certificates``, which it
        writes only when the meter holds some (absent: none held)."""
        saved = SavedState(obj)
        if saved.octets("install_code", 16) != self.install_code:
            raise GbcsError("install_code is not this meter's")
        firmware_version = saved.octets("firmware_version")
        top = max(_DEVICE_TYPES)  # a GBCS device type (CRIB §5.2), as a join admits
        partners: dict[bytes, int] = {}
        for k, where, v in saved.table("partners"):
            partners[k] = saved_int(v, where, 0, top)
            if partners[k] not in PARTNER_TYPES:
                raise GbcsError(f"{where}: a meter takes no device of type {v} as a partner")
        if len(partners) > PARTNER_CAPACITY or self.eui64 in partners:
            raise GbcsError(f"partners: at most {PARTNER_CAPACITY} devices, never the meter itself")
        leaving = saved.flag("leaving")
        certificates: dict[KeyUsage, bytes] = {}
        if "certificates" in saved:
            held = saved.member("certificates")
            for usage, der in held.obj.items():
                try:
                    key = KeyUsage(usage)
                except ValueError:
                    raise GbcsError(f"{held.where} has unknown key usage {usage!r}") from None
                certificates[key] = saved_hex(der, held.path(usage))
            certificates = _own_certificates(certificates, self.eui64, held.where)
        self.load_gbcs_state(obj)
        self.firmware_version = firmware_version
        self.partners = partners
        self.certificates = certificates
        self.leaving = leaving


def _outcome_text(plan: UpdatePlan) -> str:
    """E.g. ``NETWORK_OPERATOR_BY_NETWORK_OPERATOR: DS SUCCESS, KA SUCCESS`` for the logs."""

    def name(value: int, kind: type[IntEnum]) -> str:
        try:
            return kind(value).name
        except ValueError:
            return str(value)

    outcome = plan.outcome
    cells = ", ".join(
        f"{name(o.cell.role, RemotePartyRole)} "
        f"{u.name if (u := o.cell.key_usage.usage) else 'cell'} {o.status.name}"
        for o in outcome.outcomes
    )
    return f"{name(outcome.mode, CredentialsReplacementMode)}: {cells}"


# Event codes the emulated meters write to their event log. They are the kit's
# own (0xF0xx), not GBCS-assigned codes, so a reader never mistakes them for a
# real meter's events.
EVENT_CODES: dict[str, int] = {
    "joined HAN": 0xF001,
    "left HAN": 0xF002,
    "disconnect from HAN": 0xF003,
    "partner joined": 0xF004,
    "partner unjoined": 0xF005,
    "command executed": 0xF006,
}


class Esme(Meter):
    """Electricity meter: a ZigBee router, always listening; answers the QA reads."""

    device_type = DeviceType.ESME

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.variant = kwargs.pop("variant", b"B")
        self.model = kwargs.pop("model", b"GBHILEM1")
        self.manufacturer = kwargs.pop("manufacturer", b"GBHL")
        super().__init__(*args, **kwargs)
        self.handlers[ReadEsmeIdentity.MESSAGE_CODE] = self._identity
        self.handlers[ReadFirmwareVersion.MESSAGE_CODE] = self._firmware
        self.handlers[ReadEventLog.MESSAGE_CODE] = self._event_log
        # The RTDS "CS02f" (0x011B): CS02a's read, byte for byte, for devices that know the
        # load-controller role (CRIB §5.2); the RTDS sends it to the ESME only.
        self.handlers[CREDENTIAL_DETAILS_WITH_LOAD_CONTROLLER] = self._credential_details

    def _identity(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        ReadEsmeIdentity.from_request(request)
        answer = EsmeIdentity(self.variant, self.model, self.manufacturer, False)
        return Reply(dlms.encode(answer.to_response(request.invoke_id)))

    def _firmware(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        ReadFirmwareVersion.from_request(request)
        answer = FirmwareVersion(self.firmware_version)
        return Reply(dlms.encode(answer.to_response(request.invoke_id)))

    def event_entries(self) -> tuple[EventLogEntry, ...]:
        return tuple(EventLogEntry.at(when, code) for when, code in self.coded_events())

    def _event_log(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        query = ReadEventLog.from_request(request)
        answer = EventLog(query.select(self.event_entries()))
        return Reply(dlms.encode(answer.to_response(request.invoke_id)))


class Gsme(Meter):
    """Gas meter: a sleepy end device that wakes, polls its hub, and sleeps again."""

    device_type = DeviceType.GSME
    sleepy = True
    WAKE_INTERVAL = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.handlers[CLEAR_EVENT_LOG] = self._clear_event_log
        self.handlers[ReadGsmeFirmwareVersion.MESSAGE_CODE] = self._firmware
        self.handlers[ReadZigbeeEventLog.MESSAGE_CODE] = self._zigbee_event_log

    def _firmware(self, message: GbcsMessage) -> Reply:
        """GCS38: the firmware version it keeps, as the RTDS answers (an octet string); any
        other attribute asked for alongside gets its own "unsupported attribute" record."""
        payload = gbz.decode_message_payload(message)
        values = {GSME_FIRMWARE_VERSION_ATTRIBUTE: self.firmware_version}
        return Reply(read_attributes_answer(payload, values).encode())

    def _zigbee_event_log(self, message: GbcsMessage) -> Reply:
        """CS10a: its general event log (LogID 3), oldest first; nothing matching is a
        Default Response "not found", as RTDS 6.13 CS10a NOT_FOUND."""
        payload = gbz.decode_message_payload(message)
        query = ReadZigbeeEventLog.from_payload(payload)
        log = tuple(
            ZigbeeEventLogEntry(int(LogId.GENERAL), code, utc_to_gbz(when))
            for when, code in self.coded_events()
        )
        answer = ZigbeeEventLog.answer(query, log)
        if not answer.entries:
            frame = payload.components[0].frame
            assert isinstance(frame, gbz.ZclFrame)  # from_payload checked it
            return Reply(gbz.default_response(EVENTS_CLUSTER, frame, gbz.ZCL_NOT_FOUND).encode())
        return Reply(answer.to_payload().encode())

    def _clear_event_log(self, message: GbcsMessage) -> Reply:
        """CS11: the general event log (LogID 3, or 0 for every log) is cleared; the
        security log never is, so LogID 4 or 7 clears nothing (bitmap 0, as the RTDS
        ERROR response); nor do logs the emulated GSME does not keep."""
        command = ClearEventLog.from_payload(gbz.decode_message_payload(message))
        cleared: tuple[LogId, ...] = ()
        if command.log_id in (LogId.ALL, LogId.GENERAL):
            self.event_log.clear()
            cleared = (LogId.GENERAL,)
        self.log_security(
            "event log clear", f"LogID {command.log_id}: cleared {[c.name for c in cleared]}"
        )
        return Reply(EventLogsCleared.of(cleared, command.sequence).to_payload().encode())
