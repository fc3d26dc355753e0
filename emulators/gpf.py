"""The Gas Proxy Function: lives in the Communications Hub beside the CHF.

Its device log lists the HAN devices joined to it (the GSME, a PPMID); GCS59
restores that log and every change raises the GCS62 backup alert (CRIB §6.8,
§6.9), so a hub swap can carry the gas side over.
"""

from __future__ import annotations

from typing import Any

from emulators.device import GbcsDevice, Reply, asn1_reply
from emulators.saved_state import SavedState, saved_int
from gbcs import asn1
from gbcs.devicelog import DeviceType
from gbcs.errors import GbcsError
from gbcs.frame import GbcsMessage
from gbcs.joins import (
    GpfDeviceLogBackup,
    GpfDeviceLogRestore,
    GpfRestoreOutcome,
    HanDevice,
    JoinDetails,
    JoinResult,
)

__all__ = ["Gpf"]

GCS59 = 0x008C
GCS62 = 0x00B2
READ_JOIN_DETAILS = 0x0013
# The RTDS GCS62 alert backs up a GPF device log of six entries (CRIB §6.9): a GCS59
# restore of that backup must fit.
GPF_LOG_CAPACITY = 6
# The device types a GPF logs: GBCS's (CRIB §5.2) but the hub's own functions.
_LOGGED_TYPES = frozenset(int(t) for t in DeviceType) - {int(DeviceType.CHF), int(DeviceType.GPF)}


class Gpf(GbcsDevice):
    device_type = DeviceType.GPF

    def __init__(self, *args: Any, hub: bytes | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The CHF of the same Communications Hub: a hub function, never a HAN device in
        # this log (as the CHF never logs its GPF).
        self.hub = hub
        self.device_log: dict[bytes, int] = {}
        self.backup_pending = False  # a GCS62 booked on the clock, not sent yet
        self.handlers[GCS59] = self._restore
        self.handlers[READ_JOIN_DETAILS] = self._join_details
        # The DCC restores the log from the GCS62 backups its Access Control Broker holds:
        # GCS59 comes from the ACB (CRIB §6.8; the RTDS command's originator).
        self.acb_originated = frozenset({GCS59})

    def add(self, device: HanDevice) -> None:
        self.device_log[device.device_id] = device.device_type
        self._book_backup()

    def remove(self, device_id: bytes) -> bool:
        if self.device_log.pop(device_id, None) is None:
            return False
        self._book_backup()
        return True

    def devices(self) -> tuple[HanDevice, ...]:
        return tuple(HanDevice(d, t) for d, t in self.device_log.items())

    def _book_backup(self) -> None:
        """GCS62 after the response, on the clock, with the log as it is then: changes in
        one instant make one alert. Saved, so a restart does not lose it."""
        if not self.backup_pending:
            self.backup_pending = True
            self.clock.call_soon(self._backup)

    def _backup(self) -> None:
        if not self.backup_pending:
            return  # booked before a state was loaded over this one
        self.backup_pending = False
        alert = GpfDeviceLogBackup(self.clock.utc.replace(microsecond=0), self.devices())
        self.alert(GCS62, asn1.encode(alert.to_payload()))

    def _restore(self, message: GbcsMessage) -> Reply:
        h = message.header
        command = GpfDeviceLogRestore.from_payload(
            asn1.decode(h.other_information.message_code, h.cra_flag, message.payload)
        )
        outcomes = []
        changed = False
        seen: set[bytes] = set()
        for device in command.devices:
            repeated = device.device_id in seen
            seen.add(device.device_id)
            if device.device_type not in _LOGGED_TYPES:
                # No GBCS device type, or a hub function: no role in the GPF's log, as CS03
                # answers such a join (joinResponseCode uses CS03's list, CRIB §6.8).
                outcomes.append((device, JoinResult.INVALID_JOIN_METHOD_AND_ROLE))
                continue
            if device.device_id in (self.eui64, self.hub) or repeated:
                # As CS03 answers a join with oneself (or one's own hub); a device named
                # twice keeps its first entry, so the second is not silently lost but
                # answered as conflicting.
                outcomes.append((device, JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY))
                continue
            if device.device_id not in self.device_log and len(self.device_log) >= GPF_LOG_CAPACITY:
                outcomes.append((device, JoinResult.DEVICE_LOG_FULL))
                continue
            changed = changed or self.device_log.get(device.device_id) != device.device_type
            self.device_log[device.device_id] = device.device_type
            outcomes.append((device, JoinResult.SUCCESS))
        if changed:  # a restore that changes nothing backs nothing up
            self._book_backup()
        restored = any(code == JoinResult.SUCCESS for _, code in outcomes)
        return asn1_reply(
            GpfRestoreOutcome(tuple(outcomes)).to_payload(), executed=restored or not outcomes
        )

    def _join_details(self, message: GbcsMessage) -> Reply:
        self.asn1_payload(message)  # a malformed command is refused, not answered
        return asn1_reply(JoinDetails(0, self.devices()).to_payload())

    def state(self) -> dict[str, Any]:
        return {
            **self.gbcs_state(),
            "device_log": {d.hex().upper(): t for d, t in self.device_log.items()},
            "backup_pending": self.backup_pending,
        }

    def load_state(self, obj: dict[str, Any]) -> None:
        """Restore :meth:`state`; every key is required (a GbcsError names a missing one)."""
        saved = SavedState(obj)
        log = saved.table("device_log")
        device_log: dict[bytes, int] = {}
        for k, where, v in log:
            device_log[k] = saved_int(v, where, None, None)
            if device_log[k] not in _LOGGED_TYPES:
                raise GbcsError(f"{where}: {v} is not the device type of a HAN device")
        if len(device_log) > GPF_LOG_CAPACITY or self.eui64 in device_log:
            raise GbcsError(f"device_log: at most {GPF_LOG_CAPACITY} devices, never the GPF itself")
        if self.hub is not None and self.hub in device_log:
            raise GbcsError(f"device_log: {self.hub.hex().upper()} is this GPF's own CHF")
        pending = saved.flag("backup_pending")
        self.load_gbcs_state(obj)
        self.device_log = device_log
        self.backup_pending = False
        if pending:
            self._book_backup()
