"""The Gas Proxy Function's device log: GCS59 restore, GCS62 backup alerts, CS07."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.gpf import GCS59, GCS62, GPF_LOG_CAPACITY, Gpf
from emulators.headend import HeadEnd
from emulators.world import World
from gbcs import asn1
from gbcs.devicelog import DeviceType
from gbcs.errors import GbcsError
from gbcs.frame import CraFlag, GbcsMessage
from gbcs.joins import (
    GpfDeviceLogBackup,
    GpfDeviceLogRestore,
    GpfRestoreOutcome,
    HanDevice,
    JoinDetails,
    JoinResult,
)
from gbcs.testpki import TestPki
from tests.emulators.conftest import executed, verified

GSME = HanDevice(bytes.fromhex("00DB1234567890A1"), 0)
PPMID = HanDevice(bytes.fromhex("00DB12345678D001"), 5)
DEVICES = [HanDevice(bytes.fromhex(f"00DB12345678D1{i:02X}"), 5) for i in range(8)]


@pytest.fixture
def alerts(gpf: Gpf) -> list[bytes]:
    out: list[bytes] = []
    gpf.on_alert = out.append
    return out


def send(headend: HeadEnd, gpf: Gpf, code: int, payload: bytes) -> GbcsMessage:
    """As the RTDS sends them: GCS59 from the Access Control Broker, the rest a supplier's."""
    originator = "acb" if code == GCS59 else "supplier"
    out = gpf.receive(headend.command(code, payload, gpf.eui64, originator=originator).encode())
    assert out is not None, gpf.security_log[-1:]
    return verified(headend, out)


def restore(headend: HeadEnd, gpf: Gpf, *devices: HanDevice) -> GpfRestoreOutcome:
    payload = asn1.encode(GpfDeviceLogRestore(devices).to_payload())
    response = send(headend, gpf, GCS59, payload)
    assert response.signature == b""  # GCS59 is not critical
    return GpfRestoreOutcome.from_payload(asn1.decode(GCS59, CraFlag.RESPONSE, response.payload))


def backups(headend: HeadEnd, alerts: list[bytes]) -> list[GpfDeviceLogBackup]:
    out = []
    for data in alerts:
        message = verified(headend, data)
        assert message.header.cra_flag is CraFlag.ALERT
        assert message.header.message_code == GCS62
        out.append(
            GpfDeviceLogBackup.from_payload(asn1.decode(GCS62, CraFlag.ALERT, message.payload))
        )
    return out


def details(headend: HeadEnd, gpf: Gpf) -> JoinDetails:
    response = send(headend, gpf, 0x0013, asn1.encode(JoinDetails.COMMAND))
    return JoinDetails.from_payload(asn1.decode(0x0013, CraFlag.RESPONSE, response.payload))


# GCS59 -------------------------------------------------------------------------------------


def test_restore_into_an_empty_log(gpf: Gpf, headend: HeadEnd, alerts: list[bytes]) -> None:
    outcome = restore(headend, gpf, GSME, PPMID)
    assert outcome.outcomes == ((GSME, JoinResult.SUCCESS), (PPMID, JoinResult.SUCCESS))
    assert gpf.device_log == {GSME.device_id: 0, PPMID.device_id: 5}
    assert gpf.devices() == (GSME, PPMID)


def test_restore_log_full(gpf: Gpf, headend: HeadEnd) -> None:
    outcome = restore(headend, gpf, *DEVICES[: GPF_LOG_CAPACITY + 2])
    codes = [code for _, code in outcome.outcomes]
    assert codes == [JoinResult.SUCCESS] * GPF_LOG_CAPACITY + [JoinResult.DEVICE_LOG_FULL] * 2
    assert [d for d, _ in outcome.outcomes] == DEVICES[: GPF_LOG_CAPACITY + 2]
    assert list(gpf.device_log) == [d.device_id for d in DEVICES[:GPF_LOG_CAPACITY]]


def test_restore_existing_entry_when_full_updates_it(gpf: Gpf, headend: HeadEnd) -> None:
    restore(headend, gpf, *DEVICES[:GPF_LOG_CAPACITY])
    changed = HanDevice(DEVICES[0].device_id, 0)
    outcome = restore(headend, gpf, changed, DEVICES[6])
    assert outcome.outcomes == ((changed, JoinResult.SUCCESS), (DEVICES[6], 4))
    assert gpf.device_log[DEVICES[0].device_id] == 0


def test_restore_of_the_gpf_itself_is_refused_and_the_rest_restored(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes]
) -> None:
    itself = HanDevice(gpf.eui64, 5)  # (typed GPF it has no role at all: tested above)
    outcome = restore(headend, gpf, itself, PPMID)
    assert outcome.outcomes == (
        (itself, JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY),
        (PPMID, JoinResult.SUCCESS),
    )
    assert gpf.device_log == {PPMID.device_id: 5}


def test_restore_of_the_gpfs_own_chf_is_refused(
    pki: TestPki, anchors: TrustAnchors, clock: VirtualClock, headend: HeadEnd
) -> None:
    """The hub's CHF typed as a PPMID was logged and backed up in GCS62 (audit 9, gsme F3),
    though the CHF never logs its GPF; a saved log naming it is refused too."""
    chf = pki.party("chf").eui64
    gpf = Gpf(DeviceCredentials.from_party(pki.party("gpf")), anchors, clock, hub=chf)
    own_hub = HanDevice(chf, 5)
    outcome = restore(headend, gpf, own_hub, PPMID)
    assert outcome.outcomes == (
        (own_hub, JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY),
        (PPMID, JoinResult.SUCCESS),
    )
    assert gpf.device_log == {PPMID.device_id: 5}
    state = json.loads(json.dumps(gpf.state()))
    state["device_log"][chf.hex().upper()] = 5
    with pytest.raises(GbcsError, match=f"{chf.hex().upper()} is this GPF's own CHF"):
        gpf.load_state(state)
    assert gpf.device_log == {PPMID.device_id: 5}


def test_a_worlds_gpf_knows_its_chf() -> None:
    hub = World(seed=1).add_hub("premises")
    assert hub.gpf.hub == hub.chf.eui64


@pytest.mark.parametrize("kind", [99, -5, 7, int(DeviceType.CHF), int(DeviceType.GPF)])
def test_restore_of_a_device_type_with_no_role_is_refused(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes], kind: int
) -> None:
    """No GBCS device type, or a hub function: CS03's invalid-join-method-and-role, and
    nothing logged or backed up (audit 8, chf L1)."""
    odd = HanDevice(bytes.fromhex("0011223344556677"), kind)
    outcome = restore(headend, gpf, odd, PPMID)
    assert outcome.outcomes == (
        (odd, JoinResult.INVALID_JOIN_METHOD_AND_ROLE),
        (PPMID, JoinResult.SUCCESS),
    )
    assert gpf.device_log == {PPMID.device_id: 5}
    gpf.clock.run()
    assert [b.devices for b in backups(headend, alerts)] == [(PPMID,)]
    assert executed(gpf) == ["GCS59"]
    # A restore that restored nothing was not executed: answered, not logged so.
    assert restore(headend, gpf, odd).outcomes == ((odd, JoinResult.INVALID_JOIN_METHOD_AND_ROLE),)
    assert executed(gpf) == ["GCS59"]


def test_a_device_named_twice_keeps_its_first_entry(gpf: Gpf, headend: HeadEnd) -> None:
    """The second entry is answered as conflicting, not reported restored and then lost."""
    again = HanDevice(PPMID.device_id, 6)
    outcome = restore(headend, gpf, PPMID, again)
    assert outcome.outcomes == (
        (PPMID, JoinResult.SUCCESS),
        (again, JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY),
    )
    assert gpf.device_log == {PPMID.device_id: 5}


@pytest.mark.parametrize("originator", ["supplier", "network_operator"])
def test_restore_comes_from_the_access_control_broker_only(
    gpf: Gpf, headend: HeadEnd, originator: str
) -> None:
    payload = asn1.encode(GpfDeviceLogRestore((PPMID,)).to_payload())
    command = headend.command(GCS59, payload, gpf.eui64, originator=originator)
    assert gpf.receive(command.encode()) is None
    assert gpf.security_log[-1].event == "command rejected"
    assert "comes from the Access Control Broker" in gpf.security_log[-1].detail
    assert gpf.device_log == {}


def test_restore_of_nothing(gpf: Gpf, headend: HeadEnd, alerts: list[bytes]) -> None:
    assert restore(headend, gpf).outcomes == ()
    gpf.clock.run()
    assert alerts == []


def test_restore_response_bytes(gpf: Gpf, headend: HeadEnd) -> None:
    payload = asn1.encode(GpfDeviceLogRestore((GSME,)).to_payload())
    response = send(headend, gpf, GCS59, payload)
    assert response.payload == asn1.encode(GpfRestoreOutcome(((GSME, 0),)).to_payload())


def test_restore_with_a_bad_payload_is_not_answered(gpf: Gpf, headend: HeadEnd) -> None:
    command = headend.command(GCS59, b"\x30\x03\x02\x01\x00", gpf.eui64, originator="acb")
    assert gpf.receive(command.encode()) is None
    assert gpf.security_log[-1].event == "command payload invalid"
    assert gpf.device_log == {}


# GCS62 -------------------------------------------------------------------------------------


def test_backup_alert_after_a_restore(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes], eui: object
) -> None:
    gpf.clock.run(125.75)
    restore(headend, gpf, GSME, PPMID)
    assert alerts == []  # raised after the response, on the clock
    gpf.clock.run()
    (backup,) = backups(headend, alerts)
    assert backup.alert_code == 0x8071
    assert backup.devices == (GSME, PPMID)
    assert backup.backup_time == dt.datetime(2026, 11, 21, 9, 2, 5, tzinfo=dt.UTC)
    message = verified(headend, alerts[0])
    assert message.header.business_target == headend.acb
    assert message.header.business_originator == gpf.eui64


def test_no_backup_alert_when_nothing_was_restored(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes]
) -> None:
    restore(headend, gpf, *DEVICES[:GPF_LOG_CAPACITY])
    gpf.clock.run()
    assert len(alerts) == 1
    outcome = restore(headend, gpf, DEVICES[6])
    assert outcome.outcomes == ((DEVICES[6], JoinResult.DEVICE_LOG_FULL),)
    gpf.clock.run()
    assert len(alerts) == 1


def test_a_restore_that_changes_nothing_backs_nothing_up(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes]
) -> None:
    restore(headend, gpf, GSME, PPMID)
    gpf.clock.run()
    assert len(alerts) == 1
    outcome = restore(headend, gpf, GSME)  # already there, same type: SUCCESS, no change
    assert outcome.outcomes == ((GSME, JoinResult.SUCCESS),)
    gpf.clock.run()
    assert len(alerts) == 1


def test_changes_in_one_instant_make_one_backup_of_the_log_they_left(
    gpf: Gpf, headend: HeadEnd, alerts: list[bytes]
) -> None:
    restore(headend, gpf, GSME)
    restore(headend, gpf, PPMID)
    gpf.add(DEVICES[3])
    assert gpf.state()["backup_pending"] is True
    gpf.clock.run()
    (backup,) = backups(headend, alerts)
    assert backup.devices == (GSME, PPMID, DEVICES[3])
    assert gpf.state()["backup_pending"] is False


def test_backup_alert_after_add_and_remove(gpf: Gpf, headend: HeadEnd, alerts: list[bytes]) -> None:
    gpf.add(GSME)
    gpf.clock.run(10)
    gpf.add(PPMID)
    gpf.clock.run(20)
    assert gpf.remove(GSME.device_id) is True
    gpf.clock.run(30)
    assert gpf.remove(GSME.device_id) is False  # not there: no change, no alert
    gpf.clock.run(40)
    logs = [b.devices for b in backups(headend, alerts)]
    assert logs == [(GSME,), (GSME, PPMID), (PPMID,)]
    counters = [verified(headend, a).header.originator_counter for a in alerts]
    assert counters == [1, 2, 3]


def test_backup_alert_bytes_match_the_schema(gpf: Gpf, alerts: list[bytes]) -> None:
    gpf.add(GSME)
    gpf.clock.run()
    from gbcs.frame import decode_message

    message, _ = decode_message(alerts[0])
    expected = GpfDeviceLogBackup(gpf.clock.utc.replace(microsecond=0), (GSME,))
    assert message.payload == asn1.encode(expected.to_payload())


# CS07 on the GPF --------------------------------------------------------------------------


def test_cs07_on_the_gpf(gpf: Gpf, headend: HeadEnd) -> None:
    assert details(headend, gpf) == JoinDetails(0, ())
    restore(headend, gpf, PPMID, GSME)
    assert details(headend, gpf) == JoinDetails(0, (PPMID, GSME))


def test_cs07_malformed_is_not_answered(gpf: Gpf, headend: HeadEnd) -> None:
    command = headend.command(0x0013, b"\x30\x00", gpf.eui64)
    assert gpf.receive(command.encode()) is None
    assert gpf.security_log[-1].event == "command payload invalid"


def test_gpf_refuses_meter_use_cases(gpf: Gpf, headend: HeadEnd) -> None:
    command = headend.command(0x0010, b"\x04\x08" + bytes(8), gpf.eui64)
    assert gpf.receive(command.encode()) is None
    assert "0x0010 is not supported" in gpf.security_log[-1].detail


# State -------------------------------------------------------------------------------------


def test_state_round_trip(gpf: Gpf, headend: HeadEnd, pki: object, anchors: object) -> None:
    from emulators.credentials import DeviceCredentials

    restore(headend, gpf, GSME, PPMID)
    state = json.loads(json.dumps(gpf.state()))
    assert state["device_log"] == {GSME.device_id.hex().upper(): 0, "00DB12345678D001": 5}
    other = Gpf(DeviceCredentials.from_party(pki.party("gpf")), anchors, gpf.clock)  # type: ignore[attr-defined]
    other.load_state(state)
    assert other.state() == state
    assert other.devices() == (GSME, PPMID)


@pytest.mark.parametrize("extra", ["itself", "one too many"])
def test_a_saved_log_the_gpf_cannot_hold_is_refused(gpf: Gpf, extra: str) -> None:
    state = json.loads(json.dumps(gpf.state()))
    if extra == "itself":
        state["device_log"][gpf.eui64.hex().upper()] = 5
    else:
        state["device_log"] = {d.device_id.hex().upper(): 5 for d in DEVICES[:7]}
    with pytest.raises(GbcsError, match="at most 6 devices, never the GPF itself"):
        gpf.load_state(state)
    assert gpf.device_log == {}


@pytest.mark.parametrize("kind", [99, -1, 2, 3])
def test_a_saved_device_type_the_gpf_cannot_log_is_refused(gpf: Gpf, kind: int) -> None:
    state = json.loads(json.dumps(gpf.state()))
    state["device_log"]["0011223344556677"] = kind
    with pytest.raises(GbcsError, match=f"{kind} is not the device type of a HAN device"):
        gpf.load_state(state)
    assert gpf.device_log == {}


def test_a_backup_booked_before_a_load_is_not_sent(gpf: Gpf, alerts: list[bytes]) -> None:
    """A GCS62 booked on the clock when a state is loaded over the GPF belongs to the state
    it was booked in: not sent after the load (audit 9, mut F5)."""
    saved = gpf.state()  # nothing pending
    gpf.add(GSME)  # a GCS62 booked
    assert gpf.backup_pending
    gpf.load_state(saved)
    gpf.clock.run(1.0)
    assert alerts == [] and not gpf.backup_pending
