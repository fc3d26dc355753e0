"""The WAN side of the emulated world: what the DCC puts on and takes off the wire.

It builds commands as the DCC Access Control Broker and the users do
(device-log commands from the ACB on behalf of the supplier, MAC'd;
critical commands signed by the supplier, then MAC'd), hands them to a
Communications Hub, and waits on the virtual clock for the response, which
it verifies before anyone reads it. Alerts are verified and kept.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from emulators.chf import CommsHub, RouteFailure
from emulators.clock import VirtualClock, check_duration
from emulators.medium import Capture
from gbcs import dlms
from gbcs.catalogue import CATALOGUE, Catalogue
from gbcs.errors import GbcsError
from gbcs.frame import CraFlag, GbcsMessage, GroupingHeader, decode_message, new_command
from gbcs.keys import KeyUsage, MemoryKeyStore
from gbcs.primitives import slot_builder
from gbcs.security import SecurityContext
from gbcs.testpki import TestPki

__all__ = ["HeadEnd", "Outcome"]

DEFAULT_TIMEOUT = 120.0  # simulated seconds: a sleepy GSME answers on its next wake
# How long a response may still come after the hub reports that a message may not have
# arrived (its frames' acknowledgements were lost, perhaps not the frames): an ESME
# answers within a second.
LATE_RESPONSE_GRACE = 5.0
FIRST_COUNTER = 0x0000_0001_0000_0000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What came back for one command: a verified response, or why there is none."""

    command: GbcsMessage
    response: GbcsMessage | None = None
    failure: str | None = None
    sent_at: float = 0.0
    answered_at: float | None = None
    # Why the head end refused a response that otherwise answered this command (a
    # signature or MAC that does not verify): the device answered, and wrongly.
    rejected: str | None = None

    @property
    def ok(self) -> bool:
        return self.response is not None

    @property
    def result(self) -> str:
        return "ok" if self.response is not None else (self.failure or "no response")


# Outcome(...) through its twin: one per command sent, a third of the frozen __init__.
_outcome = slot_builder(Outcome)


@dataclass(slots=True)
class _Pending:
    target: bytes  # the device the command is for: a route failure names it
    code: int  # its message code, which the response echoes (CRIB §9.6)
    response: GbcsMessage | None = None
    failure: str | None = None
    at: float | None = None
    settled: bool = False  # a failure that no response can follow any more
    rejected: str | None = None  # a response from the target that did not verify


@dataclass(slots=True)
class Received:
    """Every message the head end took off the WAN, verified or not."""

    alerts: list[GbcsMessage] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)


class HeadEnd:
    """Sends GBCS commands to hubs and collects verified responses and alerts."""

    def __init__(
        self,
        pki: TestPki,
        clock: VirtualClock,
        *,
        keystore: MemoryKeyStore | None = None,
        catalogue: Catalogue = CATALOGUE,
    ) -> None:
        self.pki = pki
        self.clock = clock
        self.catalogue = catalogue
        self.keystore = keystore if keystore is not None else pki.keystore()
        self.acb = pki.party("acb").eui64
        self.security = SecurityContext(self.keystore, self.acb)
        self.counters: dict[bytes, int] = {}  # next originator counter per remote party
        self._pending: dict[tuple[bytes, int], _Pending] = {}
        self.received = Received()
        self.on_alert: Callable[[GbcsMessage], None] | None = None
        self.log: list[tuple[float, str, bytes]] = []  # (time, "sent"/"received", bytes)
        self.capture: Capture | None = None
        # Sees every message on the WAN: ("sent" | "received", bytes), for audit logs.
        self.observer: Callable[[str, bytes], None] | None = None

    # Keys -------------------------------------------------------------------------
    def trust_device(self, device: bytes, ka_public: bytes, ds_public: bytes) -> None:
        """Record a device's public keys, as the DCC holds device certificates."""
        from emulators.credentials import public_key

        self.keystore.add(device, KeyUsage.KA, public=public_key(ka_public))
        self.keystore.add(device, KeyUsage.DS, public=public_key(ds_public))

    def party(self, name: str) -> bytes:
        return self.pki.party(name).eui64

    def next_counter(self, originator: bytes) -> int:
        """Originator counters only grow (GBCS 4.3.2.2); devices reject anything else."""
        counter = self.counters.get(originator, FIRST_COUNTER)
        self.counters[originator] = counter + 1
        return counter

    # Hubs ---------------------------------------------------------------------------
    def connect(self, hub: CommsHub) -> None:
        """Plug a hub's WAN side into this head end."""
        hub.wan_out = self._from_wan
        hub.on_route_failure = self._route_failure

    # Commands -------------------------------------------------------------------------
    def command(
        self,
        message_code: int,
        payload: bytes,
        target: bytes,
        *,
        originator: str = "supplier",
        on_behalf_of: str | None = None,
        sign: bool | None = None,
        counter: int | None = None,
    ) -> GbcsMessage:
        """A protected command. Critical use cases are signed by ``originator`` unless told."""
        sender = self.party(originator)
        if counter is None:
            counter = self.next_counter(sender)
        behalf = None if on_behalf_of is None else self.party(on_behalf_of)
        message = new_command(
            message_code,
            payload,
            originator=sender,
            target=target,
            counter=counter,
            on_behalf_of=behalf,
            on_behalf_counter=None if behalf is None else self.next_counter(behalf),
        )
        if sign is None:
            use_case = self.catalogue.get(message_code)
            sign = bool(use_case and use_case.critical)
        return self.security.protect(message, sign=sign)

    def device_log_command(
        self, command: Any, message_code: int, hub: bytes, on_behalf_of: bytes
    ) -> GbcsMessage:
        """A CCS0x command (a :mod:`gbcs.devicelog` type) as the ACB sends it on a user's
        behalf: MAC only, and the DLMS invoke id follows the ACB's counter (CRIB §6, §9.8)."""
        counter = self.next_counter(self.acb)
        request = command.to_request(dlms.invoke_id_for_counter(counter))
        message = new_command(
            message_code,
            dlms.encode(request),
            originator=self.acb,
            target=hub,
            counter=counter,
            on_behalf_of=on_behalf_of,
            on_behalf_counter=self.next_counter(on_behalf_of),
        )
        return self.security.add_mac(message)

    def send(
        self, hub: CommsHub, message: GbcsMessage | bytes, *, timeout: float = DEFAULT_TIMEOUT
    ) -> Outcome:
        """Give ``message`` to ``hub`` and run the clock until it is answered or times out."""
        check_duration(timeout, "a timeout")  # before anything is sent
        if isinstance(message, bytes):
            data = message
            message = decode_message(data)[0]
        else:
            data = message.encode()
        header = message.header
        key = (header.business_originator, header.originator_counter)
        pending = self._pending[key] = _Pending(header.business_target, header.message_code)
        clock = self.clock
        sent_at = clock.now
        self.log.append((sent_at, "sent", data))
        if self.capture is not None:
            self.capture.record_wan(sent_at, data)
        if self.observer is not None:
            self.observer("sent", data)
        hub.from_wan(data)
        clock.run_until(lambda: pending.response is not None or pending.settled, timeout=timeout)
        self._pending.pop(key, None)
        response = pending.response
        failure = rejected = None
        if response is None:
            failure, rejected = pending.failure, pending.rejected
            if rejected is not None:
                said = f"its response was rejected ({rejected})"
                failure = said if failure is None else f"{failure}; {said}"
            elif failure is None:
                failure = f"no response within {timeout:g} s"
        return _outcome(message, response, failure, sent_at, pending.at, rejected)

    # Incoming -----------------------------------------------------------------------------
    def _from_wan(self, data: bytes) -> None:
        self.log.append((self.clock.now, "received", data))
        if self.capture is not None:
            self.capture.record_wan(self.clock.now, data)
        if self.observer is not None:
            self.observer("received", data)
        try:
            message, parts = decode_message(data)
        except GbcsError as e:
            self.received.rejected.append(f"{type(e).__name__}: {e}")
            return
        header = message.header
        try:
            self.security.require_valid(message, parts)
        except GbcsError as e:
            why = f"{type(e).__name__}: {e}"
            self.received.rejected.append(why)
            # The command's own target answering it with a bad MAC or signature: not its
            # outcome (a valid response may still come), but what to report if none does.
            pending = self._answered(header)
            if pending is not None and pending.rejected is None:
                pending.rejected = why
            return
        if header.cra_flag is CraFlag.ALERT:
            self.received.alerts.append(message)
            if self.on_alert is not None:
                self.on_alert(message)
            return
        pending = self._pending.get((header.business_target, header.originator_counter))
        if pending is None:
            self.received.rejected.append(
                f"unexpected response 0x{header.message_code:04X} counter "
                f"{header.originator_counter:#x}"
            )
            return
        if self._answered(header) is None:
            # Only the command's target answers it, with the command's code (CRIB §9.6):
            # another device echoing the counter is not its outcome.
            self.received.rejected.append(
                f"{header.cra_flag.label} 0x{header.message_code:04X} from "
                f"{header.business_originator.hex().upper()} echoing counter "
                f"{header.originator_counter:#x} of a command 0x{pending.code:04X} to "
                f"{pending.target.hex().upper()}"
            )
            return
        pending.response = message
        pending.at = self.clock.now

    def _answered(self, header: GroupingHeader) -> _Pending | None:
        """The pending command ``header`` is a response to: from its target, with its
        counter and its message code (CRIB §9.6)."""
        if header.cra_flag is not CraFlag.RESPONSE:
            return None
        pending = self._pending.get((header.business_target, header.originator_counter))
        if (
            pending is None
            or header.business_originator != pending.target
            or header.message_code != pending.code
        ):
            return None
        return pending

    def _route_failure(self, failure: RouteFailure) -> None:
        """The failed command's outcome; only by its target when the hub did not name it.

        A failure that is not final (the message may have arrived) becomes the outcome
        only if no response comes within LATE_RESPONSE_GRACE."""
        if failure.command is not None:
            pending = self._pending.get(failure.command)
            failed = [] if pending is None else [pending]
        else:
            failed = [p for p in self._pending.values() if p.target == failure.target]
        for pending in failed:
            if pending.response is not None or pending.failure is not None:
                continue
            pending.failure = failure.reason
            if failure.final:
                pending.settled = True
            else:
                self.clock.call_later(LATE_RESPONSE_GRACE, _settle, pending)


def _settle(pending: _Pending) -> None:
    pending.settled = True
