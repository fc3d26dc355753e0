"""What every emulated GBCS device does with a command before its use case runs.

A meter or hub accepts a command only when it is addressed to it, its MAC
verifies with the Access Control Broker's key pair, a Critical Command carries
a valid signature from a trust anchor, and its originator counter is greater
than any accepted before from that remote party (GBCS 4.3.2-4.3.3 and the
replay rule of DESIGN §3). A command that fails is discarded and recorded in
the device's security log; the sender sees no response, as with a real meter.
Responses echo the command's counter and are MAC'd, and signed when the
command was critical.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, DeviceKeyStore, TrustAnchors
from emulators.saved_state import U64, SavedState, saved_int
from gbcs import asn1, dlms, gbz
from gbcs.asn1 import Asn1Payload
from gbcs.catalogue import CATALOGUE, Catalogue
from gbcs.devicelog import DeviceType, simple_response
from gbcs.dlms import AccessRequest
from gbcs.errors import DecodeError, GbcsError
from gbcs.frame import CraFlag, FrameParts, GbcsMessage, decode_message, new_alert, response_to
from gbcs.primitives import CosemDateTime, slot_builder
from gbcs.security import CheckResult, SecurityContext
from gbcs.testpki import RemotePartyRole, role_label

__all__ = [
    "GbcsDevice",
    "HanPort",
    "LogEvent",
    "Rejected",
    "Reply",
]


class HanPort(Protocol):
    """What a device's GBCS logic needs from its HAN, emulated or a real radio."""

    @property
    def joined(self) -> bool: ...

    @property
    def has_network(self) -> bool:
        """Whether it holds network settings: joined, or lost its parent and rejoining."""
        ...

    def send_gbcs(self, peer: bytes, data: bytes) -> None: ...

    def reachable(self, peer: bytes) -> bool: ...

    def forget_network(self) -> None: ...


class Rejected(GbcsError):
    """A command the device refuses; the reason goes to its security log."""


@dataclass(frozen=True, slots=True)
class LogEvent:
    """One entry of a device's event or security log (simulated seconds)."""

    time: float
    event: str
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"time": self.time, "event": self.event, "detail": self.detail}

    @classmethod
    def from_json(cls, obj: Any, where: str = "log entry") -> LogEvent:
        """Strict: ``to_json`` always writes all three keys (a GbcsError naming ``where``)."""
        saved = SavedState(obj, where)
        return cls(saved.seconds("time"), saved.text("event"), saved.text("detail"))


@dataclass(frozen=True, slots=True)
class Reply:
    """A use case's answer: the response payload and what to do once it has gone out."""

    payload: bytes
    after: Callable[[], None] | None = None
    # Simulated seconds between the response leaving and ``after`` (None: AFTER_RESPONSE_DELAY).
    delay: float | None = None
    # False when the answer refuses the command (a result code saying it was not done): the
    # device then does not log it as executed.
    executed: bool = True


def asn1_reply(
    payload: Asn1Payload,
    after: Callable[[], None] | None = None,
    *,
    delay: float | None = None,
    executed: bool = True,
) -> Reply:
    return Reply(asn1.encode(payload), after, delay, executed)


# Blue Book Data-Access-Result / Action-Result codes for a request the device cannot carry out.
TYPE_UNMATCHED = 12
OTHER_REASON = 250


def _refusal(message: GbcsMessage, error: GbcsError, family: str | None) -> Reply | None:
    """The answer to an authenticated command whose content the device cannot use, so
    the sender learns at once instead of waiting out its timeout. It is in the use case's
    payload family (``family``, from the catalogue), whatever the bytes look like: a
    device answers a use case only in the form that use case has.

    A DLMS Access-Request gets a DLMS refusal: type-unmatched for every specification
    when a parameter has the wrong shape, else other-reason. A GBZ command gets a ZCL
    Default Response for its first plain component (:func:`_zcl_status` says which
    status). An ASN.1 use case has no generic error form in GBCS, and a body not of its
    use case's family has no answer in that family: None, and the security log holds the
    reason.
    """
    if family == "asn1":
        return None
    if family == "gbz":
        return _gbz_refusal(message, error)
    try:
        request = dlms_request(message)
    except GbcsError:
        return None if family == "dlms" else _gbz_refusal(message, error)
    result = TYPE_UNMATCHED if isinstance(error, DecodeError) else OTHER_REASON
    results = (result,) * len(request.specs)
    return Reply(dlms.encode(simple_response(request.invoke_id, request.specs, results)))


# What a GBZ use case's parser names (DecodeError.field) and the ZCL status that says it.
_ZCL_STATUS_BY_FIELD = {
    "cluster_id": gbz.ZCL_UNSUPPORTED_CLUSTER,
    "attribute": gbz.ZCL_UNSUPPORTED_ATTRIBUTE,
    "LogID": gbz.ZCL_INVALID_VALUE,
}


def _zcl_status(error: GbcsError, frame: gbz.ZclFrame) -> int:
    if not isinstance(error, DecodeError):
        return gbz.ZCL_HARDWARE_FAILURE  # the device could not carry out a valid command
    if error.field == "command_id":
        return (
            gbz.ZCL_UNSUPPORTED_CLUSTER_COMMAND
            if frame.is_cluster_specific
            else gbz.ZCL_UNSUPPORTED_GENERAL_COMMAND
        )
    return _ZCL_STATUS_BY_FIELD.get(error.field, gbz.ZCL_MALFORMED_COMMAND)


def _gbz_refusal(message: GbcsMessage, error: GbcsError) -> Reply | None:
    if message.header.cra_flag is not CraFlag.COMMAND or not gbz.is_gbz(message.payload):
        return None
    try:
        payload = gbz.decode_message_payload(message)
    except GbcsError:
        return None  # no ZCL frame to answer
    for component in payload.components:
        frame = component.frame
        if isinstance(frame, gbz.ZclFrame):
            status = _zcl_status(error, frame)
            return Reply(gbz.default_response(component.cluster_id, frame, status).encode())
    return None


def dlms_request(message: GbcsMessage) -> AccessRequest:
    apdu = dlms.decode(message.payload)
    if not isinstance(apdu, AccessRequest):
        raise DecodeError("dlms", "apdu", 0, "a DLMS command is an Access-Request")
    return apdu


Handler = Callable[[GbcsMessage], Reply]

# A response and the alerts it triggers are stamped at the same simulated instant.
_cosem_date_time = functools.lru_cache(maxsize=16)(CosemDateTime.from_datetime)
# The last (datetime, stamp) pair: a VirtualClock hands out one datetime object per
# instant, so an identity test answers most stamps before the lru_cache's hashing.
_last_stamp: list[Any] = [None, None]
# LogEvent(...) through its twin (every command logs one): a third of the frozen __init__.
_log_event = slot_builder(LogEvent)

# Who signs a critical command when its use case names nobody else (DESIGN §3).
SUPPLIER_SIGNS = frozenset({RemotePartyRole.SUPPLIER})
# After a disconnect response leaves, the meter waits this long (simulated)
# before dropping its network so the response's frames are not cut off.
AFTER_RESPONSE_DELAY = 1.0
# Bounded like a meter's own logs (GBCS event and security logs keep the latest 100).
SECURITY_LOG_LIMIT = 100


class GbcsDevice:
    """The GBCS side of an emulated device: checks, dispatch, responses and alerts."""

    device_type: DeviceType
    # Critical commands the Access Control Broker may send MAC'd only (its MAC is the
    # authorisation): GBCS 13.3.3.1, CS02b accessControlBrokerByACB to any device but the CHF.
    acb_authorised: frozenset[int] = frozenset()
    # Use cases whose responses carry a Date-Time (the future-dateable ones, such as CS02b):
    # in the RTDS no response to a device-log, join, CS07 or read use case has one.
    dated_responses: frozenset[int] = frozenset()
    # Use cases a remote party may authenticate with its signature instead of a MAC, and
    # whose answer then goes back signed, not MAC'd: CS02a and CS02f (RTDS CS02aSignature,
    # CS02fSignature; CRIB §2.4 "signed-only command").
    signature_authorised: frozenset[int] = frozenset({0x0008, 0x011B})

    def __init__(
        self,
        credentials: DeviceCredentials,
        anchors: TrustAnchors,
        clock: VirtualClock,
        *,
        catalogue: Catalogue = CATALOGUE,
        name: str = "",
    ) -> None:
        self.credentials = credentials
        self.eui64 = credentials.eui64
        self.clock = clock
        self.catalogue = catalogue
        self.name = name or f"{type(self).__name__} {self.eui64.hex().upper()}"
        self.anchors = anchors
        self.security = SecurityContext(DeviceKeyStore(credentials, anchors), anchors.acb.party_id)
        # Highest accepted originator counter per remote party (replay protection).
        self.counters: dict[bytes, int] = {}
        # The device's own counter for alerts it originates (GBCS: strictly increasing).
        self.alert_counter = 1
        self.security_log: list[LogEvent] = []
        self.event_log: list[LogEvent] = []
        self.han: HanPort | None = None
        self.handlers: dict[int, Handler] = {}
        self.on_alert: Callable[[bytes], None] | None = None
        # Whose signature authorises a critical command: the supplier's unless the use case
        # names others (DESIGN §3; every critical command of the RTDS is supplier-signed but
        # CS02b, whose modes each pin their own authoriser). SECMP0013 makes CS02f one too.
        self.signer_roles: dict[int, frozenset[RemotePartyRole]] = {}
        # Use cases only the Access Control Broker originates, on a user's behalf.
        self.acb_originated: frozenset[int] = frozenset()

    # Trust anchors ------------------------------------------------------------------
    def replace_anchors(self, anchors: TrustAnchors) -> None:
        """New anchors invalidate cached key agreements, so the context is rebuilt."""
        self.anchors = anchors
        self.security = SecurityContext(
            DeviceKeyStore(self.credentials, anchors), anchors.acb.party_id
        )

    # Logs --------------------------------------------------------------------------
    def log_event(self, event: str, detail: str = "") -> None:
        log = self.event_log
        log.append(_log_event(self.clock.now, event, detail))
        if len(log) > SECURITY_LOG_LIMIT:
            del log[:-SECURITY_LOG_LIMIT]

    def log_security(self, event: str, detail: str = "") -> None:
        log = self.security_log
        log.append(_log_event(self.clock.now, event, detail))
        if len(log) > SECURITY_LOG_LIMIT:
            del log[:-SECURITY_LOG_LIMIT]

    def now_cosem(self) -> CosemDateTime:
        utc = self.clock.utc
        last = _last_stamp
        if last[0] is utc:  # the memo holds ``utc``: same object, same instant
            stamp: CosemDateTime = last[1]
            return stamp
        stamp = _cosem_date_time(utc)
        last[0] = utc
        last[1] = stamp
        return stamp

    # Command acceptance --------------------------------------------------------------
    def authorise(self, message: GbcsMessage, parts: FrameParts) -> None:
        """Raise :class:`Rejected` unless the command may run (GBCS 4.3.2-4.3.3)."""
        header = message.header
        code = header.other_information.message_code
        if header.cra_flag is not CraFlag.COMMAND:
            raise Rejected(f"not a command (CRA flag {header.cra_flag.label})")
        if header.business_target != self.eui64:
            raise Rejected(f"addressed to {header.business_target.hex().upper()}, not this device")
        originator = header.business_originator
        anchor = self.anchors.for_party(originator)
        if anchor is None:
            raise Rejected(f"originator {originator.hex().upper()} is not a trust anchor")
        if code in self.acb_originated and originator != self.anchors.acb.party_id:
            raise Rejected(
                f"{self.catalogue.use_case_name(code)} comes from the Access Control Broker "
                f"on a user's behalf, not from the {role_label(anchor.role)}"
            )
        if message.signature is None:
            raise Rejected("a pre-command (no signature field) cannot be executed")
        # A signed-only command is authenticated by its signature, checked below.
        if message.mac is not None or not self._signed_only(message):
            mac = self.security.check_mac(message, parts)
            if mac is not CheckResult.VALID:
                raise Rejected(f"MAC {mac.value}")
        use_case = self.catalogue.get(code)
        if (
            use_case is not None
            and use_case.critical
            and not (code in self.acb_authorised and originator == self.anchors.acb.party_id)
        ):
            if not message.signature:
                raise Rejected(f"critical command {use_case.use_case} is not signed")
            if originator == self.anchors.acb.party_id:
                raise Rejected(
                    "a critical command must be signed by a supplier or network operator"
                )
        if message.signature:
            sig = self.security.check_signature(message, parts)
            if sig is not CheckResult.VALID:
                raise Rejected(f"signature {sig.value}")
            signers = self.signer_roles.get(code, SUPPLIER_SIGNS)
            critical = use_case is not None and use_case.critical
            if (critical or code in self.signer_roles) and anchor.role not in signers:
                allowed = " or ".join(sorted(role_label(r) for r in signers))
                raise Rejected(
                    f"{self.catalogue.use_case_name(code)} must be signed by the {allowed}, "
                    f"not the {role_label(anchor.role)}"
                )
        last = self.counters.get(originator)
        if last is not None and header.originator_counter <= last:
            raise Rejected(
                f"replayed originator counter {header.originator_counter:#x} "
                f"(last accepted {last:#x})"
            )

    def _signed_only(self, message: GbcsMessage) -> bool:
        """A signed, un-MAC'd command of a use case that may come so (``signature_authorised``)."""
        return (
            message.mac is None
            and bool(message.signature)
            and message.header.other_information.message_code in self.signature_authorised
        )

    def receive(
        self, data: bytes, decoded: tuple[GbcsMessage, FrameParts] | None = None
    ) -> bytes | None:
        """Run one command; the protected response, or None when it was discarded.

        ``decoded`` is ``decode_message(data)`` when the caller (a hub routing the
        message) has already decoded it.
        """
        if decoded is None:
            try:
                decoded = decode_message(data)
            except GbcsError as e:
                self.log_security("malformed command", str(e))
                return None
        message, parts = decoded
        header = message.header
        code = header.other_information.message_code
        try:
            handler = self.handlers.get(code)
            if handler is None:
                raise Rejected(f"message code 0x{code:04X} is not supported by this device")
            self.authorise(message, parts)
        except Rejected as e:
            self.log_security("command rejected", f"0x{code:04X}: {e}")
            return None
        # Authenticated: the counter is spent whatever the payload holds (GBCS 4.3.2).
        self.counters[header.business_originator] = header.originator_counter
        catalogue = self.catalogue
        use_case = catalogue.get(code)
        try:
            reply = handler(message)
            executed = reply.executed
        except GbcsError as e:
            self.log_security("command payload invalid", f"0x{code:04X}: {e}")
            refusal = _refusal(message, e, None if use_case is None else use_case.family)
            if refusal is None:
                return None
            reply, executed = refusal, False  # answered, not run: the security log says why
        stamp = self.now_cosem() if code in self.dated_responses else None
        response = response_to(header, reply.payload, date_time=stamp)
        # A response to a critical command, or to a signed-only one, is signed by the device
        # and not MAC'd: General Signing (0xDF) alone, as in every RTDS vector of the kind
        # (CRIB §2.4; RTDS CS02aSignature, CS02fSignature).
        signed = bool(use_case is not None and use_case.critical) or message.mac is None
        out = self.security.protect(response, sign=signed, mac=not signed).encode()
        if executed:
            self.log_event(
                "command executed",
                use_case.use_case if use_case is not None else catalogue.use_case_name(code),
            )
        if reply.after is not None:
            delay = AFTER_RESPONSE_DELAY if reply.delay is None else reply.delay
            self.clock.call_later(delay, reply.after)
        return out

    def asn1_payload(self, message: GbcsMessage) -> Asn1Payload:
        """The ASN.1 payload, the kit's configurable disconnect code included."""
        h = message.header
        code = h.other_information.message_code
        if code == self.catalogue.disconnect_code:
            return asn1.decode_type(asn1.DISCONNECT_TYPES[h.cra_flag], message.payload)
        return asn1.decode(code, h.cra_flag, message.payload)

    # Alerts -------------------------------------------------------------------------
    def alert(self, message_code: int, payload: bytes, *, sign: bool = False) -> bytes:
        """An alert to the Access Control Broker with the device's own counter.

        MAC'd, or with ``sign`` signed instead (a signed alert carries no MAC).
        """
        counter = self.alert_counter
        self.alert_counter += 1
        message = new_alert(
            message_code,
            payload,
            originator=self.eui64,
            target=self.anchors.acb.party_id,
            counter=counter,
        )
        data = self.security.protect(message, sign=sign, mac=not sign).encode()  # CRIB §2.4
        if self.on_alert is not None:
            self.on_alert(data)
        return data

    # State ----------------------------------------------------------------------------
    def gbcs_state(self) -> dict[str, Any]:
        return {
            "credentials": self.credentials.to_json(),
            "anchors": self.anchors.to_json(),
            "counters": {k.hex().upper(): v for k, v in sorted(self.counters.items())},
            "alert_counter": self.alert_counter,
            "event_log": [e.to_json() for e in self.event_log],
            "security_log": [e.to_json() for e in self.security_log],
        }

    def load_gbcs_state(self, obj: dict[str, Any]) -> None:
        """Restore what :meth:`gbcs_state` wrote; every key it writes is required.

        A missing ``counters`` would silently reset replay protection, so nothing is
        defaulted: damage is a :class:`GbcsError` naming the key, and the device is
        left untouched.
        """
        saved = SavedState(obj)
        if saved_credentials(saved) != self.credentials:
            raise GbcsError(f"credentials are not {self.eui64.hex().upper()}'s own")
        # Anchors may have been replaced (CS02b) since the device was built from the PKI.
        raw = saved.value("anchors")
        try:
            anchors = TrustAnchors.from_json(raw)
        except GbcsError as e:
            raise GbcsError(f"{saved.path('anchors')}: {e}") from None
        counters = {k: saved_int(v, where, 0, U64) for k, where, v in saved.table("counters")}
        alert_counter = saved.integer("alert_counter", 0, U64)
        event_log = _saved_log(saved, "event_log")
        security_log = _saved_log(saved, "security_log")
        if anchors != self.anchors:
            self.replace_anchors(anchors)
        self.counters = counters
        self.alert_counter = alert_counter
        self.event_log = event_log
        self.security_log = security_log


def _saved_log(saved: SavedState, key: str) -> list[LogEvent]:
    path = saved.path(key)
    entries = saved.array(key)
    if len(entries) > SECURITY_LOG_LIMIT:  # the next entry would drop the surplus unsaid
        raise GbcsError(f"{path} holds {len(entries)} entries; a device keeps {SECURITY_LOG_LIMIT}")
    return [LogEvent.from_json(e, f"{path}[{i}]") for i, e in enumerate(entries)]


def saved_credentials(saved: SavedState) -> DeviceCredentials:
    """A device's saved ``credentials`` (what :meth:`GbcsDevice.gbcs_state` writes)."""
    raw = saved.value("credentials")
    try:
        return DeviceCredentials.from_json(raw)
    except GbcsError as e:
        raise GbcsError(f"{saved.path('credentials')}: {e}") from None
