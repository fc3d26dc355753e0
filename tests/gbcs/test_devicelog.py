from __future__ import annotations

import pytest

from gbcs import dlms
from gbcs.axdr import NullData
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
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import decode_message
from gbcs.primitives import CosemDateTime
from gbcs.rtds import RtdsVector

ESME = bytes.fromhex("00DB1234567890A0")
GSME = bytes.fromhex("00DB1234567890A1")
KEY_05 = bytes.fromhex("83FED3407A939723A5C639B26916D505")
KEY_06 = bytes.fromhex("83FED3407A939723A5C639B26916D506")
BACKUP = CosemDateTime.decode(bytes.fromhex("07DF0101FF000000008000FF"))


def _payload(corpus: list[RtdsVector], name: str) -> dlms.Apdu:
    vector = next(v for v in corpus if v.name.startswith(name))
    message, parts = decode_message(vector.data)
    return dlms.decode(message.payload, parts.payload_offset)


def test_ccs01_command_fields(corpus: list[RtdsVector]) -> None:
    request = _payload(corpus, "CCS01_8.11_SUCCESS_COMMAND")
    add = AddDevice.from_request(request)
    assert add == AddDevice(ESME, DeviceType.ESME, b"0123456789ABCDEF", 90, True, 0)
    assert add.to_request(request.invoke_id) == request


def test_ccs02_ccs03_commands(corpus: list[RtdsVector]) -> None:
    request = _payload(corpus, "CCS02_8.11_SUCCESS_COMMAND")
    assert RemoveDevice.from_request(request) == RemoveDevice(ESME)
    request = _payload(corpus, "CCS03_8.12.1_SUCCESS_COMMAND")
    restore = RestoreDeviceLog.from_request(request)
    assert restore.log == DeviceLog(
        bytes.fromhex("0000000000000140"),
        (DeviceLogEntry(ESME, KEY_06), DeviceLogEntry(GSME, KEY_05)),
    )
    assert restore.to_request(request.invoke_id) == request


def test_ccs07_response_logs(corpus: list[RtdsVector]) -> None:
    response = _payload(corpus, "CCS07_8.9_SUCCESS_RESPONSE")
    logs = DeviceLogs.from_response(response)
    assert logs.results == (0, 0)
    assert logs.current == DeviceLog(
        bytes.fromhex("0001020304050607"),
        (DeviceLogEntry(ESME, KEY_06), DeviceLogEntry(GSME, KEY_05)),
        BACKUP,
    )
    assert [e.device_id.hex().upper() for e in logs.historic.entries] == [
        "00DB1234567890A3",
        "00DB1234567890A4",
    ]
    assert logs.to_response(response.invoke_id) == response
    error = DeviceLogs.from_response(_payload(corpus, "CCS07_8.9_ERROR_RESPONSE"))
    assert error == DeviceLogs(None, None, (1, 250))
    assert (
        ReadDeviceLogs.from_request(_payload(corpus, "CCS07_8.9_SUCCESS_COMMAND"))
        == ReadDeviceLogs()
    )


def test_ccs05_active_devices(corpus: list[RtdsVector]) -> None:
    response = _payload(corpus, "CCS05CCS04_8.9_SUCCESS_RESPONSE")
    active = ActiveDevices.from_response(response)
    first = active.devices[0]
    assert (first.device_id, first.max_rssi, first.average_rssi, first.min_rssi) == (
        ESME,
        -35,
        -50,
        -100,
    )
    assert first.lqi == (2, 39, 247)
    assert str(first.last_communication) == "2014-12-31 23:50:00"
    assert active.to_response(response.invoke_id) == response
    ReadDeviceLog.from_request(_payload(corpus, "CCS06_8.9_SUCCESS_COMMAND"))


def test_cs14_alert(corpus: list[RtdsVector]) -> None:
    apdu = _payload(corpus, "CS14_NA_8F12_ALERT")
    alert = WhitelistChangeAlert.from_notification(apdu)
    assert alert.alert_code == 0x8F12
    assert alert.log.date_time is not None
    assert alert.to_notification(apdu.invoke_id) == apdu


def test_simple_responses_match_reference(corpus: list[RtdsVector]) -> None:
    response = _payload(corpus, "CCS01_8.11_ERROR_RESPONSE")
    assert simple_response(response.invoke_id, AddDevice.SPECS, (0, 1, 250)) == response
    with pytest.raises(EncodeError):
        simple_response(1, AddDevice.SPECS, (0,))


def test_device_log_selection_and_base64() -> None:
    log = DeviceLog(bytes(8), (DeviceLogEntry(ESME, KEY_06), DeviceLogEntry(GSME, KEY_05)), BACKUP)
    assert log.only(GSME).entries == (DeviceLogEntry(GSME, KEY_05),)
    assert DeviceLog.from_base64(log.to_base64()) == log
    with pytest.raises(EncodeError, match="not in this device log"):
        log.only(bytes(8))
    with pytest.raises(DecodeError, match="base64"):
        DeviceLog.from_base64("@@@")
    with pytest.raises(EncodeError, match="twice"):
        DeviceLog(bytes(8), (DeviceLogEntry(ESME, KEY_06), DeviceLogEntry(ESME, KEY_05)))


def test_wrong_shapes_are_named() -> None:
    with pytest.raises(DecodeError, match="CCS03"):
        RestoreDeviceLog.from_request(ReadDeviceLogs().to_request(0x20000001))
    with pytest.raises(EncodeError):
        AddDevice(ESME, 1, b"short")
    with pytest.raises(EncodeError):
        DeviceLogEntry(ESME, b"\x00" * 15)
    bad = dlms.AccessRequest(1, RestoreDeviceLog.SPECS, (NullData(),))
    with pytest.raises(DecodeError, match="expected structure"):
        RestoreDeviceLog.from_request(bad)


def test_active_device_roundtrip() -> None:
    device = ActiveDevice(ESME, last_communication=BACKUP)
    assert ActiveDevice.from_axdr(device.to_axdr()) == device


def test_active_device_rejects_wrong_element_types() -> None:
    from gbcs import axdr

    fields = list(ActiveDevice(ESME, last_communication=BACKUP).to_axdr().value)
    fields[2] = axdr.OctetString(b"\x01")
    with pytest.raises(DecodeError, match="expected an integer"):
        ActiveDevice.from_axdr(axdr.Structure(tuple(fields)))
    fields = list(ActiveDevice(ESME, last_communication=BACKUP).to_axdr().value)
    fields[1] = axdr.Unsigned(1)
    with pytest.raises(DecodeError, match="expected bit-string"):
        ActiveDevice.from_axdr(axdr.Structure(tuple(fields)))
