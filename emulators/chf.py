"""The Communications Hub Function: HAN trust centre, device logs and GBCS router.

The CHF keeps a current device log (0-0:30.3.0.255, the whitelist) and a
historic one (0-0:30.3.1.255: the devices most recently removed, bounded,
oldest overwritten), answers the device-log use cases CCS01-CCS07 with the
DLMS shapes of CRIB §6, raises CS14 on every whitelist change, and routes
GBCS between the WAN and the devices in its current log, holding messages for
sleepy devices until they poll.

Trust-centre model (documented in the README): a device log entry's 16 bytes
are the device's trust-centre link key, i.e. the AES-MMO hash of its install
code (the ZigBee "hashed" key). CCS01 opens a join window for one EUI-64; the
trust centre admits that device only while the window is open and only with
that key. CCS03 restores entries (and adopts the log's extended PAN ID), so a
device already holding the network's PAN settings can do a trust-centre
rejoin and receive the current network key encrypted with the restored key.
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.device import GbcsDevice, HanPort, Reply, dlms_request
from emulators.node import MAX_GBCS_MESSAGE
from emulators.saved_state import SavedState, saved_hex, saved_int, saved_seconds
from emulators.zigbee.install_code import link_key_from_install_code
from emulators.zigbee.tunnel import MAX_TRANSFER_SIZE, TransferDataStatus
from gbcs import dlms
from gbcs.devicelog import (
    ActiveDevice,
    ActiveDevices,
    AddDevice,
    DeviceLog,
    DeviceLogEntry,
    DeviceLogs,
    DeviceType,
    ReadDeviceLog,
    ReadDeviceLogs,
    RemoveDevice,
    RestoreDeviceLog,
    WhitelistChangeAlert,
    simple_response,
)
from gbcs.errors import GbcsError
from gbcs.frame import CraFlag, GbcsMessage, decode_message
from gbcs.primitives import CosemDateTime

__all__ = ["CommsHub", "RouteFailure"]

CURRENT_LOG_CAPACITY = 32
HISTORIC_LOG_CAPACITY = 16
ACTION_OTHER_REASON = 250  # DLMS action-result other-reason
ACTION_NOT_FOUND = 1  # what the RTDS CCS02/CCS03 error responses carry
READ_DEVICE_LOG_CODES = (0x0004, 0x010F)  # CCS05/CCS04 and CCS06
# Every device-log command comes from the ACB on a user's behalf (CRIB §6; each RTDS CCS
# vector), with the supplementary remote party of other-information 18.
DEVICE_LOG_CODES = frozenset(
    {
        AddDevice.MESSAGE_CODE,
        RemoveDevice.MESSAGE_CODE,
        RestoreDeviceLog.MESSAGE_CODE,
        ReadDeviceLogs.MESSAGE_CODE,
        *READ_DEVICE_LOG_CODES,
    }
)
# Device types that are functions of the Communications Hub itself, never entries of its log.
HUB_FUNCTIONS = frozenset({int(DeviceType.CHF), int(DeviceType.GPF)})


@dataclass(frozen=True, slots=True)
class RouteFailure:
    """Why the CHF could not pass a WAN message to a HAN device."""

    target: bytes
    reason: str
    # The failed message's (business originator, originator counter): what the head end
    # pairs a command with its outcome by (None: not known, e.g. a message that was not
    # GBCS). The target alone would pin a late failure on a newer command to that device.
    command: tuple[bytes, int] | None = None
    # False when the message may still have arrived (only its acknowledgements may have
    # been lost): a response that comes soon after is its outcome.
    final: bool = True


def _command_id(data: bytes) -> tuple[bytes, int] | None:
    """A held message's (business originator, originator counter); None if unreadable
    (held messages loaded from a saved state are only known to be hex)."""
    try:
        header = decode_message(data)[0].header
    except GbcsError:
        return None
    return header.business_originator, header.originator_counter


@dataclass(slots=True)
class LoggedDevice:
    """What the CHF knows about a whitelisted device beyond its log entry."""

    device_type: DeviceType | None = None
    sleepy: bool = False
    last_communication: float | None = None
    frames_ok: int = 0
    frames_failed: int = 0  # messages its radio never acknowledged (CCS05/CCS06 report it)


class HubPort(HanPort, Protocol):
    """What the CHF needs of its HAN radio besides a device's: the emulated coordinator
    and the zigpy hub radio both answer these."""

    @property
    def lost(self) -> str | None:
        """Why the radio can send nothing (a dongle unplugged, a frame counter used up),
        once it cannot; else None."""

    def child_sleepy(self, device: bytes) -> bool | None: ...

    def take_hand_over(self, device: bytes) -> bytes | None: ...


class CommsHub(GbcsDevice):
    """CHF state machine: WAN in, HAN out, and the device-log use cases."""

    device_type = DeviceType.CHF
    han: HubPort | None

    def __init__(
        self,
        credentials: DeviceCredentials,
        anchors: TrustAnchors,
        clock: VirtualClock,
        *,
        extended_pan_id: bytes,
        historic_capacity: int = HISTORIC_LOG_CAPACITY,
        current_capacity: int = CURRENT_LOG_CAPACITY,
        **kwargs: Any,
    ) -> None:
        super().__init__(credentials, anchors, clock, **kwargs)
        if len(extended_pan_id) != 8:
            raise GbcsError("an extended PAN ID is 8 bytes")
        if historic_capacity < 1:  # else every removed entry would vanish unrecorded
            raise GbcsError("a historic device log holds at least one entry")
        self.extended_pan_id = extended_pan_id
        self.current: dict[bytes, DeviceLogEntry] = {}
        self.devices: dict[bytes, LoggedDevice] = {}
        self.historic: collections.deque[DeviceLogEntry] = collections.deque(
            maxlen=historic_capacity
        )
        self.current_capacity = current_capacity
        self.join_windows: dict[bytes, float] = {}
        self.held: dict[bytes, collections.deque[bytes]] = {}
        # Held messages a sleepy device was handed and never acknowledged: held again, but
        # it may have run them, so failing one later must say so (not final).
        self.handed_over: set[bytes] = set()
        self.wan_out: Callable[[bytes], None] | None = None
        self.on_route_failure: Callable[[RouteFailure], None] | None = None
        self.on_network_change: Callable[[bytes], None] | None = None
        # The HAN radio's hook: the whitelist changed (CCS01/02/03), sync the trust centre.
        self.on_log_change: Callable[[], None] | None = None
        self.local: dict[bytes, GbcsDevice] = {}  # devices inside the hub (the GPF)
        # Alerts decided but not yet sent (they go on the clock after the response): a
        # CS14 with its log, or a route failure. Saved, so a restart does not lose them.
        self.pending_alerts: list[DeviceLog | RouteFailure] = []
        self.on_alert = self.wan_to
        # Commands lately reported failed: a response that still comes for one of them
        # (a GSME may run a command handed to it as CCS02 removes it) is not a second
        # failure of it.
        self._failed_commands: collections.deque[tuple[bytes, int]] = collections.deque(maxlen=32)
        self.acb_originated = DEVICE_LOG_CODES
        self.handlers.update(
            {
                AddDevice.MESSAGE_CODE: self._add_device,
                RemoveDevice.MESSAGE_CODE: self._remove_device,
                RestoreDeviceLog.MESSAGE_CODE: self._restore,
                ReadDeviceLogs.MESSAGE_CODE: self._read_logs,
                **{code: self._read_active for code in READ_DEVICE_LOG_CODES},
            }
        )

    # Trust-centre decisions (asked by the HAN stack) -------------------------------
    def join_key(self, device: bytes) -> bytes | None:
        """The link key to admit ``device`` with, only while its CCS01 join window is open."""
        entry = self.current.get(device)
        closes = self.join_windows.get(device)
        if entry is None or closes is None or self.clock.now > closes:
            return None
        return entry.tc_link_key_hash

    def rejoin_key(self, device: bytes) -> bytes | None:
        """The trust-centre link key for a trust-centre rejoin: any whitelisted device."""
        entry = self.current.get(device)
        return None if entry is None else entry.tc_link_key_hash

    def logged(self, device: bytes) -> bool:
        return device in self.current

    def joining_open(self) -> bool:
        now = self.clock.now
        return any(now <= closes for closes in self.join_windows.values())

    def device_joined(self, device: bytes, *, sleepy: bool) -> None:
        """The HAN stack admitted ``device``; its join window closes (GBCS: one join).

        A device CCS02 removed after it was sent the network key may still announce
        itself: it gets no record beside the log (one would outlive the entry, unsaved).
        """
        if device not in self.current:
            self.log_event("device joined while not in the device log", device.hex().upper())
            return
        self.join_windows.pop(device, None)
        info = self.devices.setdefault(device, LoggedDevice())
        info.sleepy = sleepy
        info.last_communication = self.clock.now
        self.log_event("device joined", device.hex().upper())

    def logged_sleepy(self, device: bytes) -> bool | None:
        """Whether the device sleeps by the type CCS01 logged (a GSME does); None when the
        log does not say (a CCS03 entry carries no type)."""
        info = self.devices.get(device)
        if info is None or info.device_type is None:
            return None
        return info.device_type == DeviceType.GSME

    # Logs ------------------------------------------------------------------------
    def current_log(self) -> DeviceLog:
        return DeviceLog(self.extended_pan_id, tuple(self.current.values()), self.now_cosem())

    def historic_log(self) -> DeviceLog:
        return DeviceLog(self.extended_pan_id, tuple(self.historic), self.now_cosem())

    def _whitelist(self) -> tuple[bytes, tuple[DeviceLogEntry, ...]]:
        return self.extended_pan_id, tuple(self.current.values())

    def _whitelist_changed(self, before: tuple[bytes, tuple[DeviceLogEntry, ...]]) -> None:
        """Raise CS14 (on the clock, after the response) with the log as it is now, if it
        is not the log ``before``; the HAN radio syncs either way (join windows)."""
        if self._whitelist() != before:
            self._book(self.current_log())
        if self.on_log_change is not None:
            self.on_log_change()

    def _own_function(self, device: bytes) -> bool:
        """The hub itself or a function inside it (its GPF): never a HAN device in its log."""
        return device == self.eui64 or device in self.local

    def _book(self, alert: DeviceLog | RouteFailure) -> None:
        if isinstance(alert, RouteFailure) and alert.command is not None:
            self._failed_commands.append(alert.command)
        self.pending_alerts.append(alert)
        self.clock.call_soon(self._send_pending, alert)

    def _send_pending(self, alert: DeviceLog | RouteFailure) -> None:
        if not any(a is alert for a in self.pending_alerts):
            return  # not this hub's any more (a state was loaded over it)
        self.pending_alerts = [a for a in self.pending_alerts if a is not alert]
        if isinstance(alert, RouteFailure):
            self._report_route_failure(alert)
        else:
            self._send_whitelist_alert(alert)

    def _send_whitelist_alert(self, log: DeviceLog) -> None:
        alert = WhitelistChangeAlert(self.now_cosem(), log)
        self.alert(
            WhitelistChangeAlert.MESSAGE_CODE,
            dlms.encode(alert.to_notification(dlms.invoke_id_for_counter(self.alert_counter))),
        )

    def _to_historic(self, entry: DeviceLogEntry) -> None:
        self.historic = collections.deque(
            (e for e in self.historic if e.device_id != entry.device_id),
            maxlen=self.historic.maxlen,
        )
        self.historic.append(entry)

    # Use cases ---------------------------------------------------------------------
    def _add_device(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        command = AddDevice.from_request(request)
        device = command.device_id
        refused = (ACTION_OTHER_REASON, ACTION_OTHER_REASON, ACTION_OTHER_REASON)
        if self._own_function(device) or command.device_type in HUB_FUNCTIONS:
            results = refused
            self.log_event(
                "device refused",
                f"{device.hex().upper()}: a Communications Hub function is not a HAN device",
            )
        elif device not in self.current and len(self.current) >= self.current_capacity:
            results = refused
            self.log_event("device log full", device.hex().upper())
        else:
            before = self._whitelist()
            key = link_key_from_install_code(command.install_code)
            self.current[device] = DeviceLogEntry(device, key)
            info = self.devices.setdefault(device, LoggedDevice())
            info.device_type = DeviceType(command.device_type)
            # A device already joined here: the radio knows whether it sleeps.
            sleepy = self._radio_says_sleepy(device)
            info.sleepy = command.device_type == DeviceType.GSME if sleepy is None else sleepy
            self.historic = collections.deque(
                (e for e in self.historic if e.device_id != device), maxlen=self.historic.maxlen
            )
            if command.enable_joining:
                self.join_windows[device] = self.clock.now + command.join_timeout
            else:  # attr 2 "enable/disable joining" FALSE disables it (CRIB §6.1)
                self.join_windows.pop(device, None)
            results = (0, 0, 0)
            self._whitelist_changed(before)
        response = simple_response(request.invoke_id, AddDevice.SPECS, results)
        return Reply(dlms.encode(response), executed=results[0] == 0)

    def _remove_device(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        device = RemoveDevice.from_request(request).device_id
        before = self._whitelist()
        entry = self.current.pop(device, None)
        if entry is None:
            result = ACTION_NOT_FOUND
        else:
            self._to_historic(entry)
            self.devices.pop(device, None)
            self.join_windows.pop(device, None)
            held = self.held.pop(device, None)
            if held:
                self._fail_held(device, held)
            handed = None if self.han is None else self.han.take_hand_over(device)
            if handed is not None:
                reason = (
                    f"device {device.hex().upper()} was removed from the CHF device log "
                    "while a message was being handed to it: it may have run, its "
                    "response will not be routed"
                )
                self.log_event("message not routed", reason)
                # Not final: a CCS01 putting the device back at once lets its response
                # through, and that response is then the outcome, not this failure.
                self._book(RouteFailure(device, reason, _command_id(handed), final=False))
            result = 0
            self._whitelist_changed(before)
        response = simple_response(request.invoke_id, RemoveDevice.SPECS, (result,))
        return Reply(dlms.encode(response), executed=result == 0)

    def _restore(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        log = RestoreDeviceLog.from_request(request).log
        new = [e for e in log.entries if e.device_id not in self.current]
        own = [e.device_id.hex().upper() for e in log.entries if self._own_function(e.device_id)]
        if own:
            result = ACTION_OTHER_REASON
            self.log_event("device refused", f"{own[0]}: a Communications Hub function")
        elif len(self.current) + len(new) > self.current_capacity:
            result = ACTION_OTHER_REASON
            room = self.current_capacity - len(self.current)
            self.log_event("device log full", f"{len(new)} devices to restore, room for {room}")
        elif not log.entries:
            result = 0  # nothing to restore: the hub stays on its network, the log as it is
        else:
            before = self._whitelist()
            for entry in log.entries:
                self.current[entry.device_id] = entry
                if entry.device_id not in self.devices:
                    # A device still joined here (CCS02 does not unjoin): the radio knows
                    # whether it sleeps, so its messages are held, not pushed at it.
                    sleepy = self._radio_says_sleepy(entry.device_id)
                    self.devices[entry.device_id] = LoggedDevice(sleepy=bool(sleepy))
            restored = {e.device_id for e in log.entries}
            self.historic = collections.deque(
                (e for e in self.historic if e.device_id not in restored),
                maxlen=self.historic.maxlen,
            )
            changed = log.extended_pan_id != self.extended_pan_id
            self.extended_pan_id = log.extended_pan_id
            if changed and self.on_network_change is not None:
                self.on_network_change(log.extended_pan_id)
            result = 0
            self._whitelist_changed(before)
        response = simple_response(request.invoke_id, RestoreDeviceLog.SPECS, (result,))
        return Reply(dlms.encode(response), executed=result == 0)

    def _radio_says_sleepy(self, device: bytes) -> bool | None:
        """Whether the HAN radio has ``device`` as a sleepy child (None: not a child)."""
        return None if self.han is None else self.han.child_sleepy(device)

    def _read_logs(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        ReadDeviceLogs.from_request(request)
        logs = DeviceLogs(self.current_log(), self.historic_log())
        return Reply(dlms.encode(logs.to_response(request.invoke_id)))

    def _read_active(self, message: GbcsMessage) -> Reply:
        request = dlms_request(message)
        ReadDeviceLog.from_request(request)
        devices = []
        for device in self.current:
            info = self.devices.get(device) or LoggedDevice()
            when = (
                CosemDateTime()
                if info.last_communication is None
                else CosemDateTime.from_datetime(self.clock.at(info.last_communication))
            )
            devices.append(
                ActiveDevice(
                    device,
                    last_communication=when,
                    # An A-XDR unsigned (CRIB §6.4): it stays at 255 from then on.
                    transmission_successes=min(info.frames_ok, 0xFF),
                    transmission_failures=min(info.frames_failed, 0xFF),
                )
            )
        return Reply(dlms.encode(ActiveDevices(tuple(devices)).to_response(request.invoke_id)))

    # Routing -----------------------------------------------------------------------
    def from_wan(self, data: bytes) -> None:
        """A GBCS message from the DCC: run it here or pass it to the HAN device it names."""
        try:
            decoded = decode_message(data)
        except GbcsError as e:
            self.log_security("malformed WAN message", str(e))
            return
        header = decoded[0].header
        target = header.business_target
        if target == self.eui64:
            response = self.receive(data, decoded)
            if response is not None:
                self.wan_to(response)
            return
        local = self.local.get(target)
        if local is not None:
            response = local.receive(data, decoded)
            if response is not None:
                self.wan_to(response)
            return
        command = (header.business_originator, header.originator_counter)
        if target not in self.current:
            self._route_failed(
                target,
                f"device {target.hex().upper()} is not in the CHF device log (whitelist)",
                command,
            )
            return
        if len(data) > MAX_GBCS_MESSAGE:  # refused now, rather than lost at the GSME's poll
            self._route_failed(
                target,
                f"message of {len(data)} bytes exceeds the {MAX_GBCS_MESSAGE}-byte limit of "
                f"the HAN tunnel (MaximumIncomingTransferSize {MAX_TRANSFER_SIZE}, GBCS 10.2.2)",
                command,
            )
            return
        if self.han is not None and self.han.lost:
            # Before holding for a sleepy device too: a radio lost (a dongle unplugged) takes
            # no poll, and the head end would only learn of it at its timeout.
            self._route_failed(target, self.han.lost, command)
            return
        info = self.devices.get(target)
        if info is not None and info.sleepy:
            self.held.setdefault(target, collections.deque()).append(data)
            return
        if self.han is None or not self.han.joined:
            lost = None if self.han is None else self.han.lost
            self._route_failed(target, lost or "the CHF has no HAN", command)
            return
        if not self.han.reachable(target):
            joined = self.han.child_sleepy(target) is not None
            state = (
                "is joined to this CHF's HAN but its GBCS tunnel is not open (yet)"
                if joined
                else "is whitelisted but not joined to this CHF's HAN"
            )
            self._route_failed(target, f"device {target.hex().upper()} {state}", command)
            return
        self.han.send_gbcs(target, data)

    def from_han(self, device: bytes, data: bytes) -> None:
        """A GBCS message from a HAN device: only whitelisted devices are heard, and only
        about themselves (a device's tunnel carries its own messages: one naming another
        originator is an impersonation, whatever its MAC)."""
        if device not in self.current:
            self.log_security("frame from a device not in the device log", device.hex().upper())
            self._response_not_routed(device, data)
            return
        try:
            originator = decode_message(data)[0].header.business_originator
        except GbcsError:
            originator = device  # unreadable: the head end refuses it, and says why
        if originator != device:
            self.log_security(
                "message claiming another originator",
                f"{device.hex().upper()} sent one from {originator.hex().upper()}",
            )
            return
        info = self.devices.setdefault(device, LoggedDevice())
        info.last_communication = self.clock.now
        info.frames_ok += 1
        self.wan_to(data)

    def _response_not_routed(self, device: bytes, data: bytes) -> None:
        """A response from a device CCS02 removed after its command went out: dropped, but
        its command's sender is told now, rather than left to wait out its timeout."""
        try:
            header = decode_message(data)[0].header
        except GbcsError:
            return
        if header.cra_flag is not CraFlag.RESPONSE or header.business_originator != device:
            return
        if (header.business_target, header.originator_counter) in self._failed_commands:
            return  # its failure was told already
        self._route_failed(
            device,
            f"device {device.hex().upper()} was removed from the CHF device log before its "
            "response came: the command ran, its response was not routed",
            (header.business_target, header.originator_counter),
        )

    def take_held(self, device: bytes) -> bytes | None:
        """The next message held for a sleepy device that has just polled (GET)."""
        if device not in self.current:
            return None
        info = self.devices.setdefault(device, LoggedDevice())
        info.last_communication = self.clock.now
        queue = self.held.get(device)
        if not queue:
            return None
        lost = None if self.han is None else self.han.lost
        if lost is not None:  # the radio can send nothing (lost, or out of frame counter)
            del self.held[device]
            self._fail_held(device, queue, lost)
            return None
        data = queue.popleft()
        self.handed_over.discard(data)  # the radio tracks it until it is acknowledged
        return data

    def held_count(self, device: bytes) -> int:
        return len(self.held.get(device, ()))

    def undelivered(self, device: bytes, data: bytes) -> None:
        """The HAN could not deliver a held message it took (the GSME's radio never
        acknowledged it): held again, first, for the next poll, so order is kept; if
        CCS02 removed the device meanwhile, failed with that reason. Either way the device
        may have run it (only the acknowledgement may have been lost)."""
        self.handed_over.add(data)
        if device in self.current:
            self._count_failure(device)
            self.held.setdefault(device, collections.deque()).appendleft(data)
            self.log_event("held message not delivered", f"{device.hex().upper()}: held again")
        else:
            self._fail_held(device, (data,))

    def push_failed(self, device: bytes, data: bytes, *, unsent: str | None = None) -> None:
        """The HAN gave up on a message passed to an always-listening device (an ESME): it
        was never acknowledged (at the MAC, or a fragmented one at the APS layer). Reported,
        naming the command, so the head end need not wait out its timeout for a meter that
        has gone (GBCS has an alert for this, "Failure to Deliver Remote Party Message to
        ESME"; the kit tells its head end directly, as it does its other route failures).
        ``unsent`` says why part of it never went on the air: then it is final."""
        if unsent is not None:
            self._not_delivered(device, data, unsent, final=True)
            return
        reason = (
            f"device {device.hex().upper()} did not acknowledge the message on the HAN "
            "(802.15.4 and APS retries exhausted); it may still have arrived"
        )
        self._not_delivered(device, data, reason, final=False)

    def tunnel_refused(
        self, device: bytes, data: bytes, status: int, *, may_have_run: bool = False
    ) -> None:
        """An always-listening device answered a message passed to it with TransferDataError
        (ZCL 10.6): it had no tunnel open (a reboot closed it, and it has not opened its new
        one yet), so it did not take the message. Final: the command did not run. Unless
        the HAN had sent the whole message again (``may_have_run``): then the refusal may
        answer the second copy of one the device took, and ran, before it restarted."""
        try:
            why = TransferDataStatus(status).name.lower().replace("_", " ")
        except ValueError:
            why = f"status {status}"
        meaning = (
            "it had no GBCS tunnel open"
            if status == TransferDataStatus.NO_SUCH_TUNNEL
            else "it did not take it"
        )
        if may_have_run:
            reason = (
                f"device {device.hex().upper()} refused the message on the HAN when it was "
                f"sent again (TransferDataError: {why}): {meaning} then, but may have run "
                "the command before"
            )
            self._not_delivered(device, data, reason, final=False)
            return
        reason = (
            f"device {device.hex().upper()} refused the message on the HAN "
            f"(TransferDataError: {why}): {meaning}, the command did not run"
        )
        self._not_delivered(device, data, reason, final=True)

    def _not_delivered(self, device: bytes, data: bytes, reason: str, *, final: bool) -> None:
        """A message the HAN did not deliver to a logged device: a transmission failure for
        CCS05/CCS06, and its command's failure for the sender."""
        if device in self.current:
            self._count_failure(device)
        self._route_failed(
            device, reason, _command_id(data), final=final, event="message not delivered"
        )

    def _count_failure(self, device: bytes) -> None:
        self.devices.setdefault(device, LoggedDevice()).frames_failed += 1

    def wan_to(self, data: bytes) -> None:
        """Hand a message to the WAN side (the head end), if one is connected."""
        if self.wan_out is not None:
            self.wan_out(data)

    def _route_failed(
        self,
        target: bytes,
        reason: str,
        command: tuple[bytes, int] | None,
        *,
        final: bool = True,
        event: str = "message not routed",
    ) -> None:
        self.log_event(event, reason)
        if command is not None:
            self._failed_commands.append(command)
        if self.on_route_failure is not None:
            self.on_route_failure(RouteFailure(target, reason, command, final))

    def _fail_held(self, device: bytes, messages: Iterable[bytes], lost: str | None = None) -> None:
        """Fail each message held for a device CCS02 removed, or for any device once the
        HAN radio is ``lost`` (it can send nothing): none is dropped silently.

        Logged now; reported to the WAN on the clock after the CCS02 response (as CS14
        is), so the failure cannot be taken for the CCS02 command's own outcome. Each
        names its message, so it can only fail that command, never a later one.
        """
        eui = device.hex().upper()
        if lost is None:
            reason = (
                f"device {eui} was removed from the CHF device log while a message for it was held"
            )
            handed = (
                f"device {eui} was removed from the CHF device log while a message it had "
                "been handed, and never acknowledged, was held again: it may have run, its "
                "response will not be routed"
            )
        else:
            reason = f"{lost} (a message held for device {eui} was not sent)"
            handed = (
                f"{lost} (a message held for device {eui}, handed to it before and never "
                "acknowledged, was not sent again: it may have run)"
            )
        for data in messages:
            if data in self.handed_over:
                self.handed_over.discard(data)
                # Not final, as a hand-over cut off by CCS02: a CCS01 putting the device
                # back lets its response through, and that is then the outcome.
                self.log_event("message not routed", handed)
                self._book(RouteFailure(device, handed, _command_id(data), final=False))
            else:
                self.log_event("message not routed", reason)
                self._book(RouteFailure(device, reason, _command_id(data)))

    def _report_route_failure(self, failure: RouteFailure) -> None:
        if self.on_route_failure is not None:
            self.on_route_failure(failure)

    # State ------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            **self.gbcs_state(),
            "extended_pan_id": self.extended_pan_id.hex().upper(),
            "current_log": [
                {
                    "device_id": e.device_id.hex().upper(),
                    "tc_link_key_hash": e.tc_link_key_hash.hex().upper(),
                    "device_type": None
                    if (info := self.devices.get(e.device_id)) is None or info.device_type is None
                    else info.device_type.name,
                    "sleepy": bool(info and info.sleepy),
                    # What CCS05/CCS06 report of the device's traffic.
                    "last_communication": None if info is None else info.last_communication,
                    "frames_ok": 0 if info is None else info.frames_ok,
                    "frames_failed": 0 if info is None else info.frames_failed,
                }
                for e in self.current.values()
            ],
            "historic_log": [
                {
                    "device_id": e.device_id.hex().upper(),
                    "tc_link_key_hash": e.tc_link_key_hash.hex().upper(),
                }
                for e in self.historic
            ],
            "historic_capacity": self.historic.maxlen,
            "join_windows": {k.hex().upper(): v for k, v in self.join_windows.items()},
            "held": {k.hex().upper(): [m.hex() for m in q] for k, q in self.held.items() if q},
            "handed_over": sorted(m.hex() for m in self.handed_over),
            "pending_alerts": [_pending_json(a) for a in self.pending_alerts],
        }

    def load_state(self, obj: dict[str, Any]) -> None:
        """Restore :meth:`state`; every key is required, none defaulted (a GbcsError names
        a missing or damaged one and the hub is left as it was)."""
        saved = SavedState(obj)
        extended_pan_id = saved.octets("extended_pan_id", 8)
        current: dict[bytes, DeviceLogEntry] = {}
        devices: dict[bytes, LoggedDevice] = {}
        for item in saved.members("current_log"):
            device = item.octets("device_id", 8)
            if device in current:
                raise GbcsError(f"{item.where}: {device.hex().upper()} is logged twice")
            if self._own_function(device):
                raise GbcsError(f"{item.where}: {device.hex().upper()} is a hub function")
            current[device] = DeviceLogEntry(device, item.octets("tc_link_key_hash", 16))
            dtype = item.optional_text("device_type")
            if dtype is not None and dtype not in DeviceType.__members__:
                raise GbcsError(f"{item.path('device_type')} {dtype!r} is not a device type")
            if dtype is not None and DeviceType[dtype] in HUB_FUNCTIONS:
                raise GbcsError(f"{item.path('device_type')} {dtype} is a hub function")
            devices[device] = LoggedDevice(
                None if dtype is None else DeviceType[dtype],
                item.flag("sleepy"),
                item.optional_seconds("last_communication"),
                item.integer("frames_ok", 0, None),
                item.integer("frames_failed", 0, None),
            )
        if len(current) > self.current_capacity:
            raise GbcsError(
                f"current_log holds {len(current)} devices, more than {self.current_capacity}"
            )
        historic: list[DeviceLogEntry] = []
        for item in saved.members("historic_log"):
            device = item.octets("device_id", 8)
            # CCS02 keeps one historic entry per device, and CCS01/CCS03 take it out.
            if device in current or any(e.device_id == device for e in historic):
                raise GbcsError(
                    f"{item.where}: {device.hex().upper()} is logged twice (historic_log "
                    "holds a device once, and none in current_log)"
                )
            historic.append(DeviceLogEntry(device, item.octets("tc_link_key_hash", 16)))
        capacity = saved.integer("historic_capacity", 1, sys.maxsize)
        if len(historic) > capacity:  # a bounded deque would drop the oldest silently
            raise GbcsError(
                f"historic_log holds {len(historic)} entries, more than historic_capacity"
            )
        join_windows = {k: saved_seconds(v, where) for k, where, v in saved.table("join_windows")}
        if not join_windows.keys() <= current.keys():  # CCS01 opens one for a logged device
            raise GbcsError("join_windows has a device not in current_log")
        held: dict[bytes, collections.deque[bytes]] = {}
        for k, where, messages in saved.table("held"):
            if not isinstance(messages, list):
                raise GbcsError(f"{where} is not a list of messages")
            if messages and k not in current:  # never delivered nor failed: lost silently
                raise GbcsError(f"{where} holds messages for a device not in current_log")
            held[k] = collections.deque(
                saved_hex(m, f"{where}[{i}]") for i, m in enumerate(messages)
            )
        # Absent in states saved before it was kept: nothing known to have been handed over.
        handed_over = {
            saved_hex(m, f"{saved.path('handed_over')}[{i}]")
            for i, m in enumerate(saved.array("handed_over") if "handed_over" in saved else [])
        }
        if not handed_over <= {m for q in held.values() for m in q}:
            raise GbcsError("handed_over names a message that is not held")
        pending = [
            _pending_from_json(item, saved.path(f"pending_alerts[{i}]"))
            for i, item in enumerate(saved.array("pending_alerts"))
        ]
        self.load_gbcs_state(obj)
        self.extended_pan_id = extended_pan_id
        self.current = current
        self.devices = devices
        self.historic = collections.deque(historic, maxlen=capacity)
        self.join_windows = join_windows
        self.held = held
        self.handed_over = handed_over
        self.pending_alerts = []
        for alert in pending:
            self._book(alert)


def _pending_json(alert: DeviceLog | RouteFailure) -> dict[str, Any]:
    if isinstance(alert, RouteFailure):
        command = alert.command
        return {
            "route_failure": {
                "target": alert.target.hex().upper(),
                "reason": alert.reason,
                "command": None if command is None else [command[0].hex().upper(), command[1]],
                "final": alert.final,
            }
        }
    return {"cs14": alert.to_base64()}


def _pending_from_json(item: Any, where: str) -> DeviceLog | RouteFailure:
    if not isinstance(item, dict) or len(item) != 1:
        raise GbcsError(f"{where} is not one of cs14 or route_failure")
    saved = SavedState(item, where)
    if "cs14" in item:
        try:
            return DeviceLog.from_base64(saved.text("cs14"))
        except GbcsError as e:
            raise GbcsError(f"{saved.path('cs14')}: {e}") from None
    if "route_failure" not in item:
        raise GbcsError(f"{where} is not one of cs14 or route_failure")
    failure = saved.member("route_failure")
    raw = failure.value("command")
    command = None
    if raw is not None:
        if not isinstance(raw, list) or len(raw) != 2:
            raise GbcsError(f"{failure.path('command')} is not [originator, counter]")
        command = (
            saved_hex(raw[0], failure.path("command[0]"), 8),
            saved_int(raw[1], failure.path("command[1]"), 0, 2**64 - 1),
        )
    # "final" came with non-final hand-over failures; a state saved before has only final ones.
    final = failure.flag("final") if "final" in failure.obj else True
    return RouteFailure(failure.octets("target", 8), failure.text("reason"), command, final)
