"""The CHF's device logs, trust-centre decisions and routing (emulators/chf.py).

Commands reach the hub as the DCC sends them: built by the head end, handed
to ``from_wan`` (or ``receive``), answered over the WAN and verified.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from emulators.chf import (
    ACTION_NOT_FOUND,
    ACTION_OTHER_REASON,
    HISTORIC_LOG_CAPACITY,
    CommsHub,
    RouteFailure,
)
from emulators.device import TYPE_UNMATCHED
from emulators.headend import HeadEnd, Outcome
from emulators.meters import Esme
from emulators.node import MAX_GBCS_MESSAGE
from emulators.scenarios import Run
from emulators.world import World
from gbcs import asn1, dlms
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
)
from gbcs.dlms import AccessResponse, DataNotification
from gbcs.errors import EncodeError, GbcsError
from gbcs.frame import CraFlag, GbcsMessage, build_header, build_message, new_command
from gbcs.joins import JoinDetails
from gbcs.primitives import CosemDateTime
from gbcs.testpki import TestPki
from tests.emulators.conftest import (
    EPID,
    INSTALL_CODE,
    LINK_KEY,
    FakeHan,
    command_of_size,
    device_log_message,
    verified,
)

DEV = [bytes.fromhex(f"00DB12345678B0{i:02X}") for i in range(40)]
OTHER_EPID = bytes.fromhex("1122334455667788")
CODE2 = bytes(range(16))


@pytest.fixture
def hub(make_hub: Callable[..., CommsHub], headend: HeadEnd) -> CommsHub:
    chf = make_hub()
    headend.connect(chf)
    return chf


class Dcc:
    """Sends device-log commands to one hub and returns the DLMS response."""

    def __init__(self, headend: HeadEnd, hub: CommsHub) -> None:
        self.headend = headend
        self.hub = hub

    def send(self, command: Any, code: int) -> AccessResponse:
        message = device_log_message(self.headend, command, code, self.hub.eui64)
        outcome = self.headend.send(self.hub, message, timeout=5)
        assert outcome.ok, outcome.result
        assert outcome.response is not None
        apdu = dlms.decode(outcome.response.payload)
        assert isinstance(apdu, AccessResponse)
        assert apdu.invoke_id == dlms.invoke_id_for_counter(message.header.originator_counter)
        return apdu

    def add(
        self,
        device: bytes,
        code: bytes = INSTALL_CODE,
        *,
        device_type: DeviceType = DeviceType.ESME,
        join_timeout: int = 90,
        enable_joining: bool = True,
    ) -> tuple[int, ...]:
        command = AddDevice(device, int(device_type), code, join_timeout, enable_joining)
        return tuple(r.result for r in self.send(command, AddDevice.MESSAGE_CODE).results)

    def remove(self, device: bytes) -> int:
        (result,) = self.send(RemoveDevice(device), RemoveDevice.MESSAGE_CODE).results
        return result.result

    def restore(self, log: DeviceLog) -> int:
        (result,) = self.send(RestoreDeviceLog(log), RestoreDeviceLog.MESSAGE_CODE).results
        return result.result

    def logs(self) -> DeviceLogs:
        return DeviceLogs.from_response(self.send(ReadDeviceLogs(), ReadDeviceLogs.MESSAGE_CODE))

    def active(self, code: int = 0x0004) -> ActiveDevices:
        return ActiveDevices.from_response(self.send(ReadDeviceLog(), code))


@pytest.fixture
def dcc(headend: HeadEnd, hub: CommsHub) -> Dcc:
    return Dcc(headend, hub)


def whitelist_alerts(headend: HeadEnd) -> list[WhitelistChangeAlert]:
    out = []
    for message in headend.received.alerts:
        assert message.header.message_code == WhitelistChangeAlert.MESSAGE_CODE
        apdu = dlms.decode(message.payload)
        assert isinstance(apdu, DataNotification)
        out.append(WhitelistChangeAlert.from_notification(apdu))
    return out


# Construction --------------------------------------------------------------------------


def test_extended_pan_id_must_be_8_bytes(make_hub: Callable[..., CommsHub]) -> None:
    from gbcs.errors import GbcsError

    with pytest.raises(GbcsError, match="extended PAN ID is 8 bytes"):
        make_hub(extended_pan_id=b"\x01" * 7)


def test_new_hub_has_empty_logs(hub: CommsHub) -> None:
    assert hub.current == {}
    assert list(hub.historic) == []
    assert hub.historic.maxlen == HISTORIC_LOG_CAPACITY
    assert hub.join_key(DEV[0]) is None
    assert hub.rejoin_key(DEV[0]) is None
    assert not hub.joining_open()


# CCS01 ----------------------------------------------------------------------------------


def test_ccs01_adds_install_code_link_key_and_opens_join_window(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    assert dcc.add(DEV[0], INSTALL_CODE, join_timeout=120) == (0, 0, 0)
    assert hub.current == {DEV[0]: DeviceLogEntry(DEV[0], LINK_KEY)}
    assert hub.current[DEV[0]].tc_link_key_hash.hex().upper() == "66B6900981E1EE3CA4206B6B861C02BB"
    assert hub.devices[DEV[0]].device_type is DeviceType.ESME
    assert not hub.devices[DEV[0]].sleepy
    assert hub.join_windows == {DEV[0]: 120.0}
    assert hub.joining_open()
    assert hub.join_key(DEV[0]) == LINK_KEY
    assert hub.join_key(DEV[1]) is None  # the window is for one EUI-64
    assert hub.rejoin_key(DEV[0]) == LINK_KEY
    hub.clock.run(120)  # the window is open up to and including its closing time
    assert hub.join_key(DEV[0]) == LINK_KEY
    assert hub.joining_open()  # the association permit agrees (audit 9, mut F12)
    hub.clock.run(120.001)
    assert hub.join_key(DEV[0]) is None
    assert not hub.joining_open()
    assert hub.rejoin_key(DEV[0]) == LINK_KEY  # still whitelisted for a rejoin
    assert DEV[0] in hub.current


def test_join_window_is_relative_to_the_command_time(hub: CommsHub, dcc: Dcc) -> None:
    hub.clock.run(1000)
    dcc.add(DEV[0], join_timeout=10)
    assert hub.join_windows[DEV[0]] == 1010
    hub.clock.run(1010.5)
    assert hub.join_key(DEV[0]) is None


def test_ccs01_without_enable_joining_opens_no_window(hub: CommsHub, dcc: Dcc) -> None:
    assert dcc.add(DEV[0], enable_joining=False) == (0, 0, 0)
    assert DEV[0] in hub.current
    assert hub.join_key(DEV[0]) is None
    assert not hub.joining_open()
    assert hub.rejoin_key(DEV[0]) == LINK_KEY


def test_ccs01_enable_joining_false_closes_an_open_window(hub: CommsHub, dcc: Dcc) -> None:
    """Attr 2 "enable/disable joining" FALSE disables joining for that device (CRIB §6.1)."""
    dcc.add(DEV[0], join_timeout=600)
    dcc.add(DEV[1], join_timeout=600)
    assert dcc.add(DEV[0], enable_joining=False) == (0, 0, 0)
    assert DEV[0] not in hub.join_windows
    assert hub.join_key(DEV[0]) is None  # a join attempt is refused
    assert hub.rejoin_key(DEV[0]) == LINK_KEY  # still whitelisted
    assert hub.join_key(DEV[1]) == LINK_KEY  # another device's window is untouched
    hub.clock.run(10)
    assert dcc.add(DEV[0], join_timeout=60) == (0, 0, 0)  # a later enable TRUE reopens it
    assert hub.join_windows[DEV[0]] == 70
    assert hub.join_key(DEV[0]) == LINK_KEY


def test_ccs01_enable_joining_false_stops_a_radio_join(pki: TestPki) -> None:
    world = World(21, pki=pki)
    run = Run("test", world)
    hub = world.add_hub("bench")
    meter = world.add_meter("bench", "esme", power=False)

    def add(enable: bool) -> None:
        command = AddDevice(
            meter.eui64,
            int(meter.device.device_type),
            meter.device.install_code,
            join_timeout=600,
            enable_joining=enable,
        )
        step, _ = run.device_log(hub, command, AddDevice.MESSAGE_CODE)
        assert step.ok, step.result

    def joined(timeout: float) -> bool:
        return world.run_until(lambda: world.joined_to(meter) == hub.eui64, timeout)

    add(True)
    add(False)
    meter.node.power_on()
    assert not joined(300)
    assert meter.node.joins == 0
    add(True)
    assert joined(300)


def test_ccs01_gsme_is_sleepy(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0], CODE2, device_type=DeviceType.GSME)
    assert hub.devices[DEV[0]].sleepy
    assert hub.devices[DEV[0]].device_type is DeviceType.GSME
    assert hub.current[DEV[0]].tc_link_key_hash != LINK_KEY


def test_ccs01_again_replaces_the_key(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0], INSTALL_CODE)
    dcc.add(DEV[0], CODE2)
    assert len(hub.current) == 1
    assert hub.current[DEV[0]].tc_link_key_hash != LINK_KEY


def test_device_joined_closes_the_window(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0], join_timeout=600)
    hub.clock.run(5)
    hub.device_joined(DEV[0], sleepy=False)
    assert hub.join_key(DEV[0]) is None  # GBCS: one join per window
    assert hub.devices[DEV[0]].last_communication == 5
    assert hub.event_log[-1].event == "device joined"


def test_device_log_full(make_hub: Callable[..., CommsHub], headend: HeadEnd) -> None:
    hub = make_hub(current_capacity=2)
    headend.connect(hub)
    dcc = Dcc(headend, hub)
    assert dcc.add(DEV[0]) == (0, 0, 0)
    assert dcc.add(DEV[1]) == (0, 0, 0)
    hub.clock.run()
    alerts = len(headend.received.alerts)
    assert dcc.add(DEV[2]) == (ACTION_OTHER_REASON,) * 3  # nothing was set
    hub.clock.run()
    assert list(hub.current) == DEV[:2]
    assert DEV[2] not in hub.join_windows
    assert len(headend.received.alerts) == alerts  # no whitelist change, no CS14
    # Refused, not run: logged as such, not as an executed command.
    assert [e.event for e in hub.event_log[-1:]] == ["device log full"]
    # An existing entry can still be updated when the log is full.
    assert dcc.add(DEV[1], CODE2) == (0, 0, 0)


# CCS02 and the historic log -----------------------------------------------------------


def test_ccs02_moves_the_entry_to_the_historic_log(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0])
    dcc.add(DEV[1])
    assert dcc.remove(DEV[0]) == 0
    assert (hub.event_log[-1].event, hub.event_log[-1].detail) == ("command executed", "CCS02")
    assert list(hub.current) == [DEV[1]]
    assert list(hub.historic) == [DeviceLogEntry(DEV[0], LINK_KEY)]
    assert DEV[0] not in hub.join_windows
    assert DEV[0] not in hub.devices
    assert hub.rejoin_key(DEV[0]) is None


def test_ccs02_of_an_unknown_device_is_not_found(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0])
    events = len(hub.event_log)
    assert dcc.remove(DEV[5]) == ACTION_NOT_FOUND
    assert list(hub.current) == [DEV[0]]
    assert list(hub.historic) == []
    assert hub.event_log[events:] == []  # not run: not logged as executed


def test_ccs02_twice_keeps_one_historic_entry(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0])
    dcc.remove(DEV[0])
    dcc.add(DEV[0], CODE2)
    assert list(hub.historic) == []  # re-adding takes it out of the historic log
    dcc.remove(DEV[0])
    assert [e.device_id for e in hub.historic] == [DEV[0]]
    assert hub.historic[0].tc_link_key_hash != LINK_KEY


@pytest.mark.parametrize("capacity", [1, 3])
def test_historic_log_is_bounded_oldest_overwritten(
    make_hub: Callable[..., CommsHub], headend: HeadEnd, capacity: int
) -> None:
    hub = make_hub(historic_capacity=capacity)
    headend.connect(hub)
    dcc = Dcc(headend, hub)
    for device in DEV[:5]:
        dcc.add(device)
    for device in DEV[:5]:
        assert dcc.remove(device) == 0
    assert [e.device_id for e in hub.historic] == DEV[5 - capacity : 5]
    assert [e.device_id for e in dcc.logs().historic.entries] == DEV[5 - capacity : 5]


def test_default_historic_capacity(hub: CommsHub, dcc: Dcc) -> None:
    for device in DEV[: HISTORIC_LOG_CAPACITY + 2]:
        dcc.add(device, enable_joining=False)
        dcc.remove(device)
    assert len(hub.historic) == HISTORIC_LOG_CAPACITY
    assert hub.historic[0].device_id == DEV[2]


# CCS03 ------------------------------------------------------------------------------


def test_ccs03_restores_and_adopts_the_extended_pan_id(hub: CommsHub, dcc: Dcc) -> None:
    changes: list[bytes] = []
    hub.on_network_change = changes.append
    dcc.add(DEV[0])
    dcc.remove(DEV[0])
    entries = (DeviceLogEntry(DEV[0], LINK_KEY), DeviceLogEntry(DEV[1], bytes(16)))
    assert dcc.restore(DeviceLog(OTHER_EPID, entries)) == 0
    assert hub.extended_pan_id == OTHER_EPID
    assert changes == [OTHER_EPID]
    assert hub.current == {DEV[0]: entries[0], DEV[1]: entries[1]}
    assert list(hub.historic) == []  # restored entries leave the historic log
    assert hub.rejoin_key(DEV[1]) == bytes(16)
    assert hub.join_key(DEV[1]) is None  # a restore opens no join window


def test_ccs03_with_the_same_pan_does_not_signal_a_change(hub: CommsHub, dcc: Dcc) -> None:
    changes: list[bytes] = []
    hub.on_network_change = changes.append
    assert dcc.restore(DeviceLog(EPID, (DeviceLogEntry(DEV[0], LINK_KEY),))) == 0
    assert changes == []
    assert hub.extended_pan_id == EPID


def test_ccs03_beyond_capacity_changes_nothing(
    make_hub: Callable[..., CommsHub], headend: HeadEnd
) -> None:
    hub = make_hub(current_capacity=2)
    headend.connect(hub)
    changes: list[bytes] = []
    hub.on_network_change = changes.append
    dcc = Dcc(headend, hub)
    dcc.add(DEV[0])
    hub.clock.run()
    alerts = len(headend.received.alerts)
    log = DeviceLog(OTHER_EPID, tuple(DeviceLogEntry(d, bytes(16)) for d in DEV[1:3]))
    events = len(hub.event_log)
    assert dcc.restore(log) == ACTION_OTHER_REASON
    assert [(e.event, e.detail) for e in hub.event_log[events:]] == [
        ("device log full", "2 devices to restore, room for 1")
    ]
    hub.clock.run()
    assert list(hub.current) == [DEV[0]]
    assert hub.extended_pan_id == EPID
    assert changes == []
    assert len(headend.received.alerts) == alerts
    # Entries already in the log do not count twice.
    overlap = DeviceLog(OTHER_EPID, (DeviceLogEntry(DEV[0], bytes(16)), log.entries[0]))
    assert dcc.restore(overlap) == 0
    assert hub.current[DEV[0]].tc_link_key_hash == bytes(16)


# CCS07 and CCS05/CCS04 -----------------------------------------------------------------


def test_ccs07_returns_both_logs(hub: CommsHub, dcc: Dcc) -> None:
    dcc.add(DEV[0])
    dcc.add(DEV[1], CODE2)
    dcc.add(DEV[2])
    dcc.remove(DEV[1])
    hub.clock.run(3600)
    logs = dcc.logs()
    assert logs.results == (0, 0)
    assert logs.current is not None and logs.historic is not None
    assert logs.current.extended_pan_id == logs.historic.extended_pan_id == EPID
    assert [e.device_id for e in logs.current.entries] == [DEV[0], DEV[2]]
    assert logs.current.entry_for(DEV[0]).tc_link_key_hash == LINK_KEY
    assert [e.device_id for e in logs.historic.entries] == [DEV[1]]
    assert logs.current.date_time == CosemDateTime.from_datetime(hub.clock.at(3600))


def test_ccs07_of_an_empty_hub(dcc: Dcc) -> None:
    logs = dcc.logs()
    assert logs.current.entries == () and logs.historic.entries == ()


@pytest.mark.parametrize("code", [0x0004, 0x010F])
def test_read_active_devices(hub: CommsHub, dcc: Dcc, code: int) -> None:
    dcc.add(DEV[0])
    dcc.add(DEV[1])
    hub.clock.run(30)
    hub.device_joined(DEV[1], sleepy=False)
    hub.clock.run(40)
    hub.from_han(DEV[1], b"gbcs")
    hub.from_han(DEV[1], b"gbcs")
    active = dcc.active(code)
    assert active.result == 0
    assert [d.device_id for d in active.devices] == [DEV[0], DEV[1]]
    never, seen = active.devices
    assert never.last_communication == CosemDateTime()
    assert never.transmission_successes == 0
    assert seen.last_communication == CosemDateTime.from_datetime(hub.clock.at(40))
    assert seen.transmission_successes == 2


@pytest.mark.parametrize("code", [0x0004, 0x010F])
def test_read_active_devices_after_a_devices_256th_message(
    hub: CommsHub, dcc: Dcc, code: int
) -> None:
    """The count is an A-XDR unsigned: it stays at 255 rather than failing the read."""
    dcc.add(DEV[0])
    for _ in range(300):
        hub.from_han(DEV[0], b"gbcs")
    (active,) = dcc.active(code).devices or ()
    assert active.transmission_successes == 255
    assert not hub.security_log


def test_an_active_device_number_out_of_its_axdr_range_is_refused() -> None:
    with pytest.raises(EncodeError, match="transmission_successes 256 is not an unsigned"):
        ActiveDevice(DEV[0], transmission_successes=256)
    with pytest.raises(EncodeError, match="min_rssi -129 is not an integer"):
        ActiveDevice(DEV[0], min_rssi=-129)
    with pytest.raises(EncodeError, match="lqi is three values"):
        ActiveDevice(DEV[0], lqi=(1, 2))  # type: ignore[arg-type]


def test_read_active_devices_empty(dcc: Dcc) -> None:
    assert dcc.active().devices == ()


def test_wrong_dlms_shape_is_refused(hub: CommsHub, headend: HeadEnd) -> None:
    """A CCS02 request sent under the CCS07 code: refused with a DLMS type-unmatched."""
    message = device_log_message(headend, RemoveDevice(DEV[0]), 0x00FE, hub.eui64)
    before = (dict(hub.current), list(hub.historic))
    out = hub.receive(message.encode())
    assert out is not None
    response = dlms.decode(verified(headend, out).payload)
    assert isinstance(response, AccessResponse)
    assert [r.result for r in response.results] == [TYPE_UNMATCHED]
    assert hub.security_log[-1].event == "command payload invalid"
    assert (dict(hub.current), list(hub.historic)) == before  # nothing removed


def test_ccs01_of_an_unknown_device_type_is_refused_and_changes_nothing(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    assert dcc.add(DEV[0], device_type=7) == (TYPE_UNMATCHED,) * 3  # type: ignore[arg-type]
    assert "device type at offset 0: 7 is not a GBCS device type" in hub.security_log[-1].detail
    hub.clock.run()
    assert hub.current == {} and hub.devices == {} and headend.received.alerts == []


def test_ccs01_of_a_hub_function_is_refused(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, gpf: Any
) -> None:
    """The hub, its GPF, or any device typed CHF or GPF: not a HAN device of its log."""
    hub.local[gpf.eui64] = gpf
    assert dcc.add(hub.eui64) == (ACTION_OTHER_REASON,) * 3
    assert dcc.add(gpf.eui64, device_type=DeviceType.GPF) == (ACTION_OTHER_REASON,) * 3
    for kind in (DeviceType.CHF, DeviceType.GPF):
        assert dcc.add(DEV[0], device_type=kind) == (ACTION_OTHER_REASON,) * 3
    hub.clock.run()
    assert hub.current == {} and headend.received.alerts == []
    assert [e.event for e in hub.event_log] == ["device refused"] * 4  # none "executed"


def test_ccs03_naming_a_hub_function_is_refused_whole(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, gpf: Any
) -> None:
    hub.local[gpf.eui64] = gpf
    log = DeviceLog(
        OTHER_EPID, (DeviceLogEntry(DEV[0], LINK_KEY), DeviceLogEntry(gpf.eui64, LINK_KEY))
    )
    assert dcc.restore(log) == ACTION_OTHER_REASON
    hub.clock.run()
    assert hub.current == {} and hub.extended_pan_id == EPID and headend.received.alerts == []
    assert [e.event for e in hub.event_log] == ["device refused"]  # not "command executed"


@pytest.mark.parametrize("epid", ["0000000000000000", "FFFFFFFFFFFFFFFF"])
def test_ccs03_to_a_reserved_extended_pan_id_is_refused(
    hub: CommsHub, headend: HeadEnd, epid: str
) -> None:
    log = DeviceLog(bytes.fromhex(epid), (DeviceLogEntry(DEV[0], LINK_KEY),))
    message = device_log_message(
        headend, RestoreDeviceLog(log), RestoreDeviceLog.MESSAGE_CODE, hub.eui64
    )
    outcome = headend.send(hub, message, timeout=5)
    assert outcome.response is not None
    apdu = dlms.decode(outcome.response.payload)
    assert isinstance(apdu, AccessResponse)
    assert [r.result for r in apdu.results] == [TYPE_UNMATCHED]
    assert f"extended PAN id {epid} is reserved" in hub.security_log[-1].detail
    assert hub.current == {} and hub.extended_pan_id == EPID


def test_an_empty_ccs03_leaves_the_hub_on_its_network(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """Nothing to restore: moving the hub would strand the meters it still lists."""
    changes: list[bytes] = []
    hub.on_network_change = changes.append
    dcc.add(DEV[0])
    hub.clock.run()
    alerts = len(headend.received.alerts)
    assert dcc.restore(DeviceLog(OTHER_EPID, ())) == 0
    hub.clock.run()
    assert hub.extended_pan_id == EPID and changes == [] and list(hub.current) == [DEV[0]]
    assert len(headend.received.alerts) == alerts


def test_a_ccs01_or_ccs03_that_changes_nothing_raises_no_cs14(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    dcc.add(DEV[0])
    hub.clock.run()
    assert len(headend.received.alerts) == 1
    dcc.add(DEV[0])  # the same entry again (its join window reopens: not a log change)
    assert dcc.restore(hub.current_log()) == 0  # the log it holds, under its own PAN
    hub.clock.run()
    assert len(headend.received.alerts) == 1
    assert hub.join_key(DEV[0]) is not None
    dcc.add(DEV[0], CODE2)  # another install code: another key, a change
    hub.clock.run()
    assert len(headend.received.alerts) == 2


# CS14 ------------------------------------------------------------------------------------


def test_cs14_alert_on_each_whitelist_change(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    dcc.add(DEV[0])
    hub.clock.run()
    dcc.add(DEV[1])
    hub.clock.run()
    dcc.remove(DEV[0])
    hub.clock.run()
    dcc.remove(DEV[7])  # not found: no change
    dcc.logs()  # a read: no change
    dcc.restore(DeviceLog(EPID, (DeviceLogEntry(DEV[3], bytes(16)),)))
    hub.clock.run()
    assert headend.received.rejected == []
    messages = headend.received.alerts
    assert len(messages) == 4
    for i, message in enumerate(messages, start=1):
        assert message.header.cra_flag is CraFlag.ALERT
        assert message.header.business_originator == hub.eui64
        assert message.header.business_target == eui("acb")
        assert message.header.originator_counter == i
    alerts = whitelist_alerts(headend)
    assert [[e.device_id for e in a.log.entries] for a in alerts] == [
        [DEV[0]],
        [DEV[0], DEV[1]],
        [DEV[1]],
        [DEV[1], DEV[3]],
    ]
    assert all(a.alert_code == 0x8F12 and a.log.extended_pan_id == EPID for a in alerts)
    assert alerts[0].log.entries[0].tc_link_key_hash == LINK_KEY


def test_cs14_alerts_for_back_to_back_changes_each_carry_their_own_log(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """Two changes before the clock runs: each alert reports the log right after its change."""
    dcc.add(DEV[0])
    dcc.add(DEV[1])
    dcc.remove(DEV[0])
    assert headend.received.alerts == []  # raised on the clock, after the responses
    hub.clock.run()
    alerts = whitelist_alerts(headend)
    assert [[e.device_id for e in a.log.entries] for a in alerts] == [
        [DEV[0]],
        [DEV[0], DEV[1]],
        [DEV[1]],
    ]


def test_cs14_alert_is_macd_for_the_acb(hub: CommsHub, headend: HeadEnd) -> None:
    sent: list[bytes] = []
    hub.wan_out = sent.append
    data = device_log_message(headend, AddDevice(DEV[0], 1, INSTALL_CODE), 1, hub.eui64)
    hub.from_wan(data.encode())
    assert len(sent) == 1  # the response; the alert follows on the clock
    hub.clock.run()
    assert len(sent) == 2
    alert = verified(headend, sent[1])
    assert alert.signature == b""
    tampered = bytearray(sent[1])
    tampered[-1] ^= 1
    from gbcs.errors import VerificationError

    with pytest.raises(VerificationError):
        verified(headend, bytes(tampered))


# Routing ----------------------------------------------------------------------------


def cs07_for(headend: HeadEnd, device: bytes) -> GbcsMessage:
    """A CS07 for a HAN device; the CHF routes it without checking it, so it is not MAC'd."""
    supplier = headend.party("supplier")
    return new_command(
        0x0013,
        asn1.encode(JoinDetails.COMMAND),
        originator=supplier,
        target=device,
        counter=headend.next_counter(supplier),
    )


def test_from_wan_to_a_device_not_in_the_log_fails_naming_the_whitelist(
    hub: CommsHub, headend: HeadEnd
) -> None:
    failures: list[RouteFailure] = []
    headend_failure = hub.on_route_failure
    hub.on_route_failure = lambda f: (failures.append(f), headend_failure(f))  # type: ignore[misc]
    command = cs07_for(headend, DEV[9])
    outcome: Outcome = headend.send(hub, command, timeout=10)
    assert not outcome.ok
    assert outcome.failure is not None and "whitelist" in outcome.failure
    assert failures == [
        RouteFailure(
            DEV[9],
            "device 00DB12345678B009 is not in the CHF device log (whitelist)",
            (command.header.business_originator, command.header.originator_counter),
        )
    ]
    assert hub.event_log[-1].event == "message not routed"
    assert hub.clock.now == 0  # failed at once, not after the timeout


def test_from_wan_without_a_han(hub: CommsHub, dcc: Dcc, headend: HeadEnd) -> None:
    dcc.add(DEV[0])
    outcome = headend.send(hub, cs07_for(headend, DEV[0]), timeout=10)
    assert outcome.failure == "the CHF has no HAN"


def test_from_wan_han_not_joined(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan
) -> None:
    dcc.add(DEV[0])
    fake_han.joined = False
    hub.han = fake_han
    outcome = headend.send(hub, cs07_for(headend, DEV[0]), timeout=10)
    assert outcome.failure == "the CHF has no HAN"
    assert fake_han.sent == []


def test_from_wan_passes_to_the_han(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan
) -> None:
    dcc.add(DEV[0])
    hub.han = fake_han
    data = cs07_for(headend, DEV[0]).encode()
    hub.from_wan(data)
    assert fake_han.sent == [(DEV[0], data)]  # byte for byte, untouched


def test_from_wan_to_a_local_device(hub: CommsHub, headend: HeadEnd, gpf: Any) -> None:
    hub.local[gpf.eui64] = gpf
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gpf.eui64)
    outcome = headend.send(hub, command, timeout=1)
    assert outcome.ok
    assert outcome.response.header.business_originator == gpf.eui64


@pytest.mark.parametrize("device_type", [DeviceType.ESME, DeviceType.GSME])
def test_from_wan_too_long_for_the_han_tunnel_fails_at_once(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan, device_type: DeviceType
) -> None:
    hub.han = fake_han
    dcc.add(DEV[0], device_type=device_type)
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    size = MAX_GBCS_MESSAGE + 1
    command = command_of_size(headend, DEV[0], size)
    hub.from_wan(command.encode())
    assert size == 1499  # a 1500-octet TransferData less a GET-RESPONSE's header, plus one
    reason = (
        "message of 1499 bytes exceeds the 1498-byte limit of the HAN tunnel "
        "(MaximumIncomingTransferSize 1500, GBCS 10.2.2)"
    )
    key = (command.header.business_originator, command.header.originator_counter)
    assert failures == [RouteFailure(DEV[0], reason, key)]
    assert fake_han.sent == [] and hub.held_count(DEV[0]) == 0  # neither sent nor held
    assert hub.event_log[-1].event == "message not routed"


def test_ccs03_naming_a_logged_gsme_keeps_its_record(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan, eui: Callable[[str], bytes]
) -> None:
    """A CCS03 naming a device already in the log leaves what CCS01 recorded of it: a GSME
    not yet joined stays logged as a GSME (its commands held for its poll), its traffic
    counts stay (a mutation rebuilding the record passed every test: audit 9, mut F1)."""
    hub.han = fake_han
    gsme = eui("gsme")
    dcc.add(gsme, device_type=DeviceType.GSME)
    hub.devices[gsme].frames_ok = 3
    assert dcc.restore(DeviceLog(EPID, (hub.current[gsme],))) == 0
    info = hub.devices[gsme]
    assert (info.device_type, info.sleepy, info.frames_ok) == (DeviceType.GSME, True, 3)
    hub.from_wan(headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), gsme).encode())
    assert hub.held_count(gsme) == 1 and fake_han.sent == []


def test_a_whitelisted_device_not_joined_fails_at_once_naming_why(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan, eui: Callable[[str], bytes]
) -> None:
    """Whitelisted, not reachable on the HAN: a route failure naming it, not the radio's
    exception out of from_wan (audit 9, mut F4)."""
    hub.han = fake_han
    esme = eui("esme")
    dcc.add(esme)
    fake_han.reachable = lambda peer: False  # type: ignore[method-assign]
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme)
    outcome = headend.send(hub, command, timeout=10)
    assert outcome.failure == (
        f"device {esme.hex().upper()} is whitelisted but not joined to this CHF's HAN"
    )
    assert fake_han.sent == []
    # Joined, its tunnel not open yet (the hub opens an ESME's just after its announce):
    # said so, not "not joined" (review of audit 9).
    fake_han.child_sleepy = lambda device: False  # type: ignore[method-assign]
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme)
    outcome = headend.send(hub, command, timeout=10)
    assert outcome.failure == (
        f"device {esme.hex().upper()} is joined to this CHF's HAN but its GBCS tunnel is "
        "not open (yet)"
    )


def test_a_whitelist_alert_booked_before_a_load_is_not_sent(
    hub: CommsHub, headend: HeadEnd
) -> None:
    """A CS14 booked on the clock when a state is loaded over the hub belongs to the state
    it was booked in: it must not go out after the load (audit 9, mut F5)."""
    saved = hub.state()  # nothing pending
    command = AddDevice(DEV[0], int(DeviceType.ESME), INSTALL_CODE, 90, True)
    message = device_log_message(headend, command, AddDevice.MESSAGE_CODE, hub.eui64)
    hub.from_wan(message.encode())  # answered at once; its CS14 booked on the clock
    assert len(hub.pending_alerts) == 1
    hub.load_state(saved)
    hub.clock.run(1.0)
    assert headend.received.alerts == [] and hub.pending_alerts == []


def test_from_wan_malformed(hub: CommsHub) -> None:
    sent: list[bytes] = []
    hub.wan_out = sent.append
    hub.from_wan(b"\xdd\x00")
    assert sent == []
    assert hub.security_log[-1].event == "malformed WAN message"


def test_from_wan_rejected_command_to_the_hub_gets_no_response(
    hub: CommsHub, headend: HeadEnd
) -> None:
    sent: list[bytes] = []
    hub.wan_out = sent.append
    message = device_log_message(headend, RemoveDevice(DEV[0]), 2, hub.eui64)
    data = bytearray(message.encode())
    data[-1] ^= 1
    hub.from_wan(bytes(data))
    assert sent == []
    assert "MAC invalid" in hub.security_log[-1].detail


@pytest.mark.parametrize("originator", ["supplier", "network_operator"])
def test_device_log_commands_come_only_from_the_acb(
    hub: CommsHub, headend: HeadEnd, originator: str
) -> None:
    """CCS01-CCS07 are the ACB's, on a user's behalf (every RTDS vector): the same command
    from a supplier or network operator directly changes nothing."""
    counter = headend.next_counter(headend.party(originator))
    request = AddDevice(DEV[0], int(DeviceType.ESME), INSTALL_CODE, 90, True)
    command = headend.command(
        AddDevice.MESSAGE_CODE,
        dlms.encode(request.to_request(dlms.invoke_id_for_counter(counter))),
        hub.eui64,
        originator=originator,
        sign=False,
        counter=counter,
    )
    assert hub.receive(command.encode()) is None
    role = originator.replace("_", " ")
    assert hub.security_log[-1].detail == (
        f"0x0001: CCS01 comes from the Access Control Broker on a user's behalf, not from "
        f"the {role}"
    )
    assert hub.current == {} and hub.counters == {}


def test_from_han_from_a_whitelisted_device_goes_to_the_wan(hub: CommsHub, dcc: Dcc) -> None:
    sent: list[bytes] = []
    dcc.add(DEV[0])
    hub.clock.run(12)
    hub.wan_out = sent.append
    hub.from_han(DEV[0], b"response bytes")
    assert sent == [b"response bytes"]
    assert hub.devices[DEV[0]].frames_ok == 1
    assert hub.devices[DEV[0]].last_communication == 12


def test_from_han_a_message_claiming_another_originator_is_dropped(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """A device's tunnel carries its own messages. A whitelisted ESME PUTting one that
    names the GSME as its originator (echoing the GSME's pending counter, with a MAC it
    cannot make right) had the head end report the GSME's command as answered wrongly,
    DEVICE_FAILURE (review F1); it is now dropped here, so the command sees no response."""
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    dcc.add(DEV[1])
    command = cs07_for(headend, DEV[0])
    h = command.header
    claim = build_header(
        CraFlag.RESPONSE,
        h.originator_counter,
        DEV[0],
        h.business_originator,
        h.other_information,
        None,
    )
    forged = build_message(claim, asn1.encode(JoinDetails(0, ()).to_payload()), mac=bytes(12))
    sent: list[bytes] = []
    hub.wan_out = sent.append
    hub.from_han(DEV[1], forged.encode())
    assert sent == []
    assert (hub.security_log[-1].event, hub.security_log[-1].detail) == (
        "message claiming another originator",
        "00DB12345678B001 sent one from 00DB12345678B000",
    )
    assert hub.devices[DEV[1]].frames_ok == 0
    hub.from_han(DEV[1], b"unreadable")  # what it cannot read it passes on: the head end says
    assert sent == [b"unreadable"]


def test_from_han_from_a_non_whitelisted_device_is_dropped(hub: CommsHub, dcc: Dcc) -> None:
    sent: list[bytes] = []
    dcc.add(DEV[0])
    dcc.remove(DEV[0])
    hub.wan_out = sent.append
    hub.from_han(DEV[0], b"data")
    hub.from_han(DEV[1], b"data")
    assert sent == []
    assert [e.detail for e in hub.security_log[-2:]] == [
        "00DB12345678B000",
        "00DB12345678B001",
    ]
    assert hub.security_log[-1].event == "frame from a device not in the device log"
    assert DEV[1] not in hub.devices


def test_held_messages_for_a_sleepy_device_in_order(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, fake_han: FakeHan
) -> None:
    hub.han = fake_han
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    messages = [cs07_for(headend, DEV[0]).encode() for _ in range(3)]
    for data in messages:
        hub.from_wan(data)
    assert fake_han.sent == []  # never pushed to a sleepy device
    assert hub.held_count(DEV[0]) == 3
    hub.clock.run(31)
    assert hub.take_held(DEV[0]) == messages[0]
    assert hub.devices[DEV[0]].last_communication == 31
    assert hub.held_count(DEV[0]) == 2
    assert hub.take_held(DEV[0]) == messages[1]
    assert hub.take_held(DEV[0]) == messages[2]
    assert hub.take_held(DEV[0]) is None
    assert hub.held_count(DEV[0]) == 0


def test_take_held_for_a_device_not_in_the_log(hub: CommsHub, dcc: Dcc, headend: HeadEnd) -> None:
    assert hub.take_held(DEV[0]) is None
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    hub.from_wan(cs07_for(headend, DEV[0]).encode())
    dcc.remove(DEV[0])  # removing a device fails what was held for it
    assert hub.held_count(DEV[0]) == 0
    assert hub.take_held(DEV[0]) is None
    assert DEV[0] not in hub.devices


REMOVED_WHILE_HELD = (
    "device 00DB12345678B000 was removed from the CHF device log while a message for it was held"
)


def test_ccs02_fails_each_held_message_after_its_response(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    held = [cs07_for(headend, DEV[0]) for _ in range(2)]
    for command in held:
        hub.from_wan(command.encode())
    ccs02 = device_log_message(headend, RemoveDevice(DEV[0]), 2, hub.eui64)
    outcome = headend.send(hub, ccs02, timeout=5)
    assert outcome.ok and outcome.failure is None  # the CCS02 itself succeeded
    assert hub.held_count(DEV[0]) == 0
    not_routed = [e.detail for e in hub.event_log if e.event == "message not routed"]
    assert not_routed == [REMOVED_WHILE_HELD] * 2
    assert failures == []  # reported after the CCS02 response, on the clock
    hub.clock.run()
    assert failures == [  # each names its own command, in the order they were held
        RouteFailure(
            DEV[0], REMOVED_WHILE_HELD, (c.header.business_originator, c.header.originator_counter)
        )
        for c in held
    ]


def test_ccs02_fails_the_head_ends_held_command_at_once(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    hub.clock.call_at(5, dcc.remove, DEV[0])  # before the GSME wakes
    outcome = headend.send(hub, cs07_for(headend, DEV[0]), timeout=120)
    assert not outcome.ok
    assert outcome.failure == REMOVED_WHILE_HELD
    assert hub.clock.now == 5  # failed at once, not after the timeout


HANDED_THEN_REMOVED = (
    "device 00DB12345678B000 was removed from the CHF device log while a message it had "
    "been handed, and never acknowledged, was held again: it may have run, its response "
    "will not be routed"
)


@pytest.mark.parametrize("removed_first", [False, True])
def test_a_held_message_handed_over_unacknowledged_fails_not_final(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, removed_first: bool
) -> None:
    """The GSME may have run a message whose hand-over it never acknowledged (only the
    ack may have been lost): held again, a later CCS02 must not call it final, while a
    message never handed over still fails finally (audit 8, chf M1)."""
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    handed, never = cs07_for(headend, DEV[0]), cs07_for(headend, DEV[0])
    for command in (handed, never):
        hub.from_wan(command.encode())
    data = hub.take_held(DEV[0])
    assert data == handed.encode()
    if removed_first:  # CCS02 came while the hand-over was on the air
        dcc.remove(DEV[0])
        hub.undelivered(DEV[0], data)
    else:
        hub.undelivered(DEV[0], data)
        assert hub.held_count(DEV[0]) == 2 and hub.handed_over == {data}
        dcc.remove(DEV[0])
    hub.clock.run()
    by_command = {f.command: f for f in failures}
    first = by_command[(handed.header.business_originator, handed.header.originator_counter)]
    assert (first.reason, first.final) == (HANDED_THEN_REMOVED, False)
    if not removed_first:
        second = by_command[(never.header.business_originator, never.header.originator_counter)]
        assert (second.reason, second.final) == (REMOVED_WHILE_HELD, True)
    assert hub.handed_over == set()


def test_a_held_message_taken_again_is_no_longer_marked_handed_over(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """Taken again, it is the radio's to track until acknowledged; the CHF forgets it."""
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    hub.from_wan(cs07_for(headend, DEV[0]).encode())
    data = hub.take_held(DEV[0])
    assert data is not None
    hub.undelivered(DEV[0], data)
    assert hub.take_held(DEV[0]) == data and hub.handed_over == set()


# State ---------------------------------------------------------------------------------


def test_state_round_trip(
    make_hub: Callable[..., CommsHub], hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    dcc.add(DEV[0], device_type=DeviceType.GSME, join_timeout=500)
    dcc.add(DEV[1], CODE2)
    dcc.add(DEV[2])
    dcc.remove(DEV[2])
    dcc.restore(DeviceLog(OTHER_EPID, (DeviceLogEntry(DEV[3], bytes(range(16))),)))
    held = cs07_for(headend, DEV[0]).encode()
    hub.from_wan(held)
    hub.clock.run(50)
    hub.receive(b"junk")
    state = json.loads(json.dumps(hub.state()))
    assert state["extended_pan_id"] == OTHER_EPID.hex().upper()
    assert state["historic_log"] == [
        {"device_id": DEV[2].hex().upper(), "tc_link_key_hash": LINK_KEY.hex().upper()}
    ]
    assert state["current_log"][0] == {
        "device_id": DEV[0].hex().upper(),
        "tc_link_key_hash": LINK_KEY.hex().upper(),
        "device_type": "GSME",
        "sleepy": True,
        "last_communication": None,  # it never joined
        "frames_ok": 0,
        "frames_failed": 0,
    }
    assert state["current_log"][2]["device_type"] is None  # restored: type unknown

    other = make_hub(historic_capacity=2)
    other.load_state(state)
    assert other.state() == state
    assert other.extended_pan_id == OTHER_EPID
    assert other.current == hub.current
    assert list(other.historic) == list(hub.historic)
    assert other.historic.maxlen == HISTORIC_LOG_CAPACITY
    assert other.join_key(DEV[0]) == LINK_KEY
    assert other.take_held(DEV[0]) == held
    assert other.counters == hub.counters
    assert state["handed_over"] == []
    assert other.alert_counter == hub.alert_counter


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["historic_log"].append(s["historic_log"][0]), "is logged twice"),
        (
            lambda s: s["historic_log"].append(
                {k: s["current_log"][0][k] for k in ("device_id", "tc_link_key_hash")}
            ),
            "is logged twice",
        ),
        (lambda s: s.update(historic_capacity=0), "historic_capacity"),
        (lambda s: s["current_log"][0].update(device_id=s["hub"]), "is a hub function"),
        (lambda s: s["current_log"][0].update(device_type="GPF"), "GPF is a hub function"),
        (lambda s: s["current_log"][0].pop("frames_failed"), "frames_failed"),
    ],
)
def test_a_saved_hub_log_a_hub_could_not_hold_is_refused(
    hub: CommsHub, dcc: Dcc, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    dcc.add(DEV[0])
    dcc.add(DEV[1])
    dcc.remove(DEV[1])
    state = {**json.loads(json.dumps(hub.state())), "hub": hub.eui64.hex().upper()}
    change(state)
    del state["hub"]
    before = json.dumps(hub.state(), sort_keys=True)
    with pytest.raises(GbcsError, match=message):
        hub.load_state(state)
    assert json.dumps(hub.state(), sort_keys=True) == before


def test_a_hub_holds_at_least_one_historic_entry(make_hub: Callable[..., CommsHub]) -> None:
    with pytest.raises(GbcsError, match="at least one entry"):
        make_hub(historic_capacity=0)


def test_load_state_replaces_everything(make_hub: Callable[..., CommsHub], dcc: Dcc) -> None:
    dcc.add(DEV[0])
    empty = make_hub(historic_capacity=4).state()
    dcc.hub.load_state(empty)
    assert dcc.hub.current == {}
    assert dcc.hub.join_windows == {}
    assert dcc.hub.historic.maxlen == 4


def test_a_handed_over_message_is_saved_as_such(
    make_hub: Callable[..., CommsHub], hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """Saved, it still fails not final after a load; a state saved before the key was
    kept loads with nothing handed over; one naming a message not held is refused."""
    dcc.add(DEV[0], device_type=DeviceType.GSME)
    hub.from_wan(cs07_for(headend, DEV[0]).encode())
    data = hub.take_held(DEV[0])
    assert data is not None
    hub.undelivered(DEV[0], data)
    state = json.loads(json.dumps(hub.state()))
    assert state["handed_over"] == [data.hex()]
    other = make_hub()
    other.load_state(state)
    assert other.handed_over == {data} and other.state() == state
    older = {k: v for k, v in state.items() if k != "handed_over"}
    other.load_state(older)
    assert other.handed_over == set() and other.held_count(DEV[0]) == 1
    stray = {**state, "handed_over": ["00" * 20]}
    with pytest.raises(GbcsError, match="handed_over names a message that is not held"):
        other.load_state(stray)
    assert other.handed_over == set()  # left as it was


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (0, "(TransferDataError: no such tunnel): it had no GBCS tunnel open"),
        (2, "(TransferDataError: data overflow): it did not take it"),
        (9, "(TransferDataError: status 9): it did not take it"),
    ],
)
def test_a_refused_put_fails_its_command_finally_and_counts(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, status: int, says: str
) -> None:
    dcc.add(DEV[0])
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    command = cs07_for(headend, DEV[0])
    hub.tunnel_refused(DEV[0], command.encode(), status)
    key = (command.header.business_originator, command.header.originator_counter)
    reason = f"device {DEV[0].hex().upper()} refused the message on the HAN {says}"
    assert failures == [RouteFailure(DEV[0], reason + ", the command did not run", key)]
    assert failures[0].final and hub.devices[DEV[0]].frames_failed == 1


def test_a_refusal_of_a_put_sent_again_whole_is_not_final(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd
) -> None:
    """The HAN sent the whole message again (its last APS window unacknowledged): the
    refusal may answer that second copy, after a restart, of one the device had run."""
    dcc.add(DEV[0])
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    command = cs07_for(headend, DEV[0])
    hub.tunnel_refused(DEV[0], command.encode(), 0x00, may_have_run=True)
    key = (command.header.business_originator, command.header.originator_counter)
    reason = (
        f"device {DEV[0].hex().upper()} refused the message on the HAN when it was sent again "
        "(TransferDataError: no such tunnel): it had no GBCS tunnel open then, but may have "
        "run the command before"
    )
    assert failures == [RouteFailure(DEV[0], reason, key, final=False)]


def test_a_booked_route_failure_not_final_stays_not_final_over_a_load(
    hub: CommsHub, make_hub: Callable[..., CommsHub], headend: HeadEnd
) -> None:
    """A hand-over cut off by CCS02 is reported not final (it may have run): reloaded as
    final, the head end would settle the command at once instead of leaving its grace for
    a response (audit 9, mut F7)."""
    failure = RouteFailure(DEV[1], "handed over, may have run", (headend.acb, 5), final=False)
    hub._book(failure)
    state = json.loads(json.dumps(hub.state()))
    other = make_hub()
    other.load_state(state)
    assert other.pending_alerts == [failure]


def test_traffic_from_a_removed_device_fails_no_command_twice(
    hub: CommsHub, dcc: Dcc, headend: HeadEnd, esme: Esme
) -> None:
    """After CCS02 removed a device: the response to a command already failed (its frames
    unacknowledged) fails it no second time, and an alert from it fails no command (audit
    9, mut F10: both passed every test)."""
    failures: list[RouteFailure] = []
    hub.on_route_failure = failures.append
    dcc.add(esme.eui64)
    command = headend.command(0x0013, asn1.encode(JoinDetails.COMMAND), esme.eui64).encode()
    hub.push_failed(esme.eui64, command)  # its frames went unacknowledged
    assert dcc.remove(esme.eui64) == 0
    hub.clock.run(hub.clock.now + 1)
    assert len(failures) == 1
    response = esme.receive(command)  # but it had arrived: the answer comes
    assert response is not None
    hub.from_han(esme.eui64, response)
    hub.from_han(esme.eui64, esme.alert(0x8F84, b"\x00"))  # and an alert
    hub.clock.run(hub.clock.now + 1)
    assert len(failures) == 1
