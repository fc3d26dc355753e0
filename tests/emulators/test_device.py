"""What every emulated device checks before a command runs (emulators/device.py).

Commands are built the way the DCC head end builds them and handed to a real
ESME with ``receive(bytes)``. A rejected command gets no response, leaves a
security-log entry naming the reason, and changes nothing.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.device import (
    AFTER_RESPONSE_DELAY,
    SECURITY_LOG_LIMIT,
    TYPE_UNMATCHED,
    LogEvent,
    Reply,
)
from emulators.headend import FIRST_COUNTER, HeadEnd
from emulators.meters import Esme
from gbcs import asn1, dlms
from gbcs.dlms import AccessKind, AccessResponse
from gbcs.errors import GbcsError, KeyNotFoundError
from gbcs.frame import CraFlag, decode_message, new_command
from gbcs.gsme_reads import ReadGsmeFirmwareVersion
from gbcs.joins import (
    DisconnectFromHan,
    JoinDetails,
    JoinDevice,
    JoinMethod,
    JoinResult,
    parse_int_response,
)
from gbcs.keys import KeyUsage
from gbcs.reads import ReadEsmeIdentity, ReadEventLog, ReadFirmwareVersion
from gbcs.security import CheckResult
from gbcs.testpki import TestPki
from tests.emulators.conftest import verified

CS07 = 0x0013
CS03A1 = 0x000D  # critical


def cs07_payload() -> bytes:
    return asn1.encode(JoinDetails.COMMAND)


def join_payload(device: bytes, device_type: int = 5) -> bytes:  # a PPMID
    return asn1.encode(JoinDevice(JoinMethod.METHOD_A_INITIATOR, device, device_type).to_payload())


def snapshot(device: Esme) -> dict:
    state = copy.deepcopy(device.state())
    del state["security_log"]
    return state


def assert_rejected(
    device: Esme, data: bytes, reason: str, event: str = "command rejected"
) -> None:
    before = snapshot(device)
    log_length = len(device.security_log)
    assert device.receive(data) is None
    assert len(device.security_log) == log_length + 1
    entry = device.security_log[-1]
    assert entry.event == event
    assert reason in entry.detail, entry.detail
    assert entry.time == device.clock.now
    assert snapshot(device) == before  # counters, logs, partners: nothing moved


# Accepted commands ------------------------------------------------------------------


def test_valid_command_is_answered_with_a_verified_response(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    command = headend.command(CS07, cs07_payload(), esme.eui64)
    out = esme.receive(command.encode())
    assert out is not None
    response = verified(headend, out)
    h = response.header
    assert h.cra_flag is CraFlag.RESPONSE
    assert h.originator_counter == command.header.originator_counter == FIRST_COUNTER
    assert h.business_originator == esme.eui64
    assert h.business_target == eui("supplier")
    assert h.other_information == command.header.other_information
    assert h.date_time is None  # as in the RTDS CS07 responses: only future-dateable ones
    assert response.signature == b""  # not critical: MAC only
    assert len(response.mac) == 12
    details = JoinDetails.from_payload(asn1.decode(CS07, CraFlag.RESPONSE, response.payload))
    assert details == JoinDetails(0, ())
    assert esme.counters == {eui("supplier"): FIRST_COUNTER}
    assert esme.security_log == []
    assert esme.event_log[-1] == LogEvent(0.0, "command executed", "CS07")


def test_response_mac_is_bound_to_the_response_bytes(esme: Esme, headend: HeadEnd) -> None:
    out = esme.receive(headend.command(CS07, cs07_payload(), esme.eui64).encode())
    assert out is not None
    message, parts = decode_message(out)
    assert headend.security.check_mac(message, parts) is CheckResult.VALID
    assert out[0] == 0xDD and message.signature == b""  # non-critical: MAC'd, not signed
    at = parts.payload_offset
    tampered = out[:at] + bytes([out[at] ^ 1]) + out[at + 1 :]
    message, parts = decode_message(tampered)
    assert headend.security.check_mac(message, parts) is CheckResult.INVALID


def test_critical_command_response_is_signed(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64)
    assert command.is_signed  # the head end signs critical commands as the supplier
    out = esme.receive(command.encode())
    assert out is not None
    response = verified(headend, out)
    assert len(response.signature) == 64
    assert headend.security.check_signature(response) is CheckResult.VALID
    # General Signing alone, no MAC: the form of every signed RTDS response (CRIB §2.4).
    assert out[0] == 0xDF and not response.has_mac
    assert parse_int_response(
        asn1.decode(CS03A1, CraFlag.RESPONSE, response.payload), "JoinDeviceResponse"
    ) == (JoinResult.SUCCESS)
    assert esme.partners == {eui("gsme"): 5}


def test_command_from_network_operator_and_acb_are_accepted(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    for originator in ("network_operator", "acb"):
        command = headend.command(CS07, cs07_payload(), esme.eui64, originator=originator)
        assert esme.receive(command.encode()) is not None
    assert esme.counters == {
        eui("network_operator"): FIRST_COUNTER,
        eui("acb"): FIRST_COUNTER,
    }


def test_counters_are_per_remote_party(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    a = headend.command(CS07, cs07_payload(), esme.eui64, counter=500)
    b = headend.command(CS07, cs07_payload(), esme.eui64, originator="network_operator", counter=5)
    assert esme.receive(a.encode()) is not None
    assert esme.receive(b.encode()) is not None  # 5 < 500, but another originator
    assert esme.counters == {eui("supplier"): 500, eui("network_operator"): 5}


def test_increasing_counters_are_accepted(esme: Esme, headend: HeadEnd) -> None:
    for counter in (10, 11, 1000, 2**63):
        command = headend.command(CS07, cs07_payload(), esme.eui64, counter=counter)
        assert esme.receive(command.encode()) is not None
    assert max(esme.counters.values()) == 2**63


# Rejected commands ---------------------------------------------------------------------


def test_wrong_target(esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]) -> None:
    command = headend.command(CS07, cs07_payload(), eui("gsme"))
    assert_rejected(esme, command.encode(), "addressed to 00DB1234567890A1, not this device")


def test_unknown_originator(esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]) -> None:
    # supplier2 is a real, certified party, but not one of this meter's trust anchors.
    command = headend.command(CS07, cs07_payload(), esme.eui64, originator="supplier2")
    reason = f"originator {eui('supplier2').hex().upper()} is not a trust anchor"
    assert_rejected(esme, command.encode(), reason)


def test_bad_mac(esme: Esme, headend: HeadEnd) -> None:
    data = bytearray(headend.command(CS07, cs07_payload(), esme.eui64).encode())
    data[-1] ^= 0x01
    assert_rejected(esme, bytes(data), "MAC invalid")


def test_missing_mac(esme: Esme, headend: HeadEnd) -> None:
    command = headend.command(CS07, cs07_payload(), esme.eui64).with_mac(None)
    assert_rejected(esme, command.encode(), "MAC absent")


def test_a_signed_only_code_with_an_empty_signature_and_no_mac_is_refused(
    esme: Esme, headend: HeadEnd
) -> None:
    """CS02a may come signed instead of MAC'd; with an empty signature field and no MAC it is
    authenticated by nothing (a mutation treating it as signed-only went unnoticed)."""
    command = headend.command(0x0008, b"\x30\x00", esme.eui64).with_mac(None)
    bare = replace(command, signature=b"")
    assert bare.mac is None and bare.signature == b""
    assert_rejected(esme, bare.encode(), "MAC absent")


def test_a_signature_from_an_anchor_without_a_ds_key_is_refused(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    """A signature the device cannot check (no DS key held for its signer) is no signature:
    'no-key' must refuse, not only 'invalid'."""
    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64)
    assert command.is_signed
    keys = esme.security.keystore
    held = keys.public_key  # the anchor's DS key is gone; everything else as it was
    supplier = eui("supplier")

    def no_ds_for_the_supplier(party: bytes, usage: Any) -> Any:
        if party == supplier and usage is KeyUsage.DS:
            raise KeyNotFoundError(party, usage.value, private=False)
        return held(party, usage)

    keys.public_key = no_ds_for_the_supplier  # type: ignore[method-assign]
    assert_rejected(esme, command.encode(), "signature no-key")


def test_mac_from_someone_without_the_acb_key(
    esme: Esme, headend: HeadEnd, pki: TestPki, eui: Callable[[str], bytes]
) -> None:
    """A MAC computed with the wrong key pair (supplier2's KA instead of the ACB's) fails."""
    from gbcs.security import SecurityContext

    wrong = SecurityContext(pki.keystore(), acb=eui("supplier2"))
    command = headend.command(CS07, cs07_payload(), esme.eui64)
    assert_rejected(esme, wrong.add_mac(command).encode(), "MAC invalid")


def test_precommand_without_signature_field(esme: Esme, eui: Callable[[str], bytes]) -> None:
    command = new_command(
        CS03A1,
        join_payload(eui("gsme")),
        originator=eui("supplier"),
        target=esme.eui64,
        counter=FIRST_COUNTER,
        precommand=True,
    )
    data = command.encode()
    assert decode_message(data)[0].signature is None
    assert_rejected(esme, data, "a pre-command (no signature field) cannot be executed")


def test_unsigned_critical_command(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64, sign=False)
    assert command.signature == b""
    assert_rejected(esme, command.encode(), "critical command CS03A1 is not signed")


def test_critical_command_signed_by_the_acb(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64, originator="acb")
    assert command.is_signed
    assert_rejected(
        esme, command.encode(), "a critical command must be signed by a supplier or network"
    )


def test_bad_signature(esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]) -> None:
    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64)
    signature = bytearray(command.signature)
    signature[10] ^= 0x40
    # Re-MAC so that only the signature is wrong.
    forged = headend.security.add_mac(command.with_signature(bytes(signature)))
    assert_rejected(esme, forged.encode(), "signature invalid")


def test_signature_by_the_wrong_party(
    esme: Esme, headend: HeadEnd, pki: TestPki, eui: Callable[[str], bytes]
) -> None:
    """Signed with the network operator's key but claiming to be the supplier."""
    from gbcs import crypto
    from gbcs.keys import KeyUsage

    command = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64)
    wrong_key = pki.keystore().private_key(eui("network_operator"), KeyUsage.DS)
    signature = crypto.ecdsa_sign(wrong_key, command.signed_data())
    forged = headend.security.add_mac(command.with_signature(signature))
    assert_rejected(esme, forged.encode(), "signature invalid")


def test_signed_non_critical_command_must_still_verify(esme: Esme, headend: HeadEnd) -> None:
    command = headend.command(CS07, cs07_payload(), esme.eui64, sign=True)
    assert esme.receive(command.encode()) is not None
    bad = headend.command(CS07, cs07_payload(), esme.eui64, sign=True)
    forged = headend.security.add_mac(bad.with_signature(bytes(64)))
    assert_rejected(esme, forged.encode(), "signature invalid")


def test_replay_of_the_same_bytes(esme: Esme, headend: HeadEnd) -> None:
    data = headend.command(CS07, cs07_payload(), esme.eui64).encode()
    assert esme.receive(data) is not None
    assert_rejected(
        esme,
        data,
        f"replayed originator counter {FIRST_COUNTER:#x} (last accepted {FIRST_COUNTER:#x})",
    )


def test_lower_counter_is_a_replay(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    assert esme.receive(headend.command(CS07, cs07_payload(), esme.eui64, counter=100).encode())
    lower = headend.command(CS07, cs07_payload(), esme.eui64, counter=99).encode()
    assert_rejected(esme, lower, "replayed originator counter 0x63 (last accepted 0x64)")
    assert esme.counters[eui("supplier")] == 100


def test_replayed_critical_command_changes_nothing(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    data = headend.command(CS03A1, join_payload(eui("gsme")), esme.eui64).encode()
    assert esme.receive(data) is not None
    esme.partners.clear()
    assert_rejected(esme, data, "replayed originator counter")
    assert esme.partners == {}


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"\xdd", b"\xdf\x09", bytes(range(40))],
    ids=["empty", "zero", "mac-header-only", "short-signing", "junk"],
)
def test_malformed_bytes(esme: Esme, data: bytes) -> None:
    assert_rejected(esme, data, "", event="malformed command")


def test_truncated_command(esme: Esme, headend: HeadEnd) -> None:
    data = headend.command(CS07, cs07_payload(), esme.eui64).encode()
    for cut in (1, 12, len(data) // 2):
        assert_rejected(esme, data[:-cut], "", event="malformed command")
    assert_rejected(esme, data + b"\x00", "", event="malformed command")


@pytest.mark.parametrize("code", [0x008C, 0x0001, 0x0057, 0x1234])
def test_unsupported_message_code(esme: Esme, headend: HeadEnd, code: int) -> None:
    command = headend.command(code, b"\x00", esme.eui64)
    assert_rejected(esme, command.encode(), f"message code 0x{code:04X} is not supported")


def test_response_flag_is_not_a_command(esme: Esme, headend: HeadEnd) -> None:
    command = headend.command(CS07, cs07_payload(), esme.eui64)
    header = replace(command.header, cra_flag=CraFlag.RESPONSE)
    response = headend.security.add_mac(replace(command, header=header))
    assert_rejected(esme, response.encode(), "not a command (CRA flag")


@pytest.mark.parametrize("specs", [1, 3])
def test_a_dlms_request_of_the_wrong_shape_gets_a_dlms_refusal(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes], specs: int
) -> None:
    """Genuine but not an ECS26m: every specification answered type-unmatched, at once."""
    firmware = ReadFirmwareVersion().to_request(0x42)
    request = replace(firmware, specs=firmware.specs * specs, data=firmware.data * specs)
    command = headend.command(ReadEsmeIdentity.MESSAGE_CODE, dlms.encode(request), esme.eui64)
    out = esme.receive(command.encode())
    assert out is not None
    response = dlms.decode(verified(headend, out).payload)
    assert isinstance(response, AccessResponse) and response.invoke_id == 0x42
    assert [(r.kind, r.result) for r in response.results] == [
        (s.kind, TYPE_UNMATCHED) for s in request.specs
    ]
    assert esme.security_log[-1].event == "command payload invalid"
    assert esme.counters == {eui("supplier"): FIRST_COUNTER}  # authenticated: spent
    # Refused, not run: ECS35a must not report it as an executed command.
    assert all(e.event != "command executed" for e in esme.event_log)


def _dlms_body() -> bytes:
    return dlms.encode(ReadFirmwareVersion().to_request(0x42))


def _gbz_body() -> bytes:
    return ReadGsmeFirmwareVersion().to_payload().encode()


@pytest.mark.parametrize(
    ("device", "code", "body"),
    [
        ("esme", CS07, _dlms_body),  # ASN.1 use cases: only logged, whatever the body
        ("esme", None, _dlms_body),  # the SECMP0013 disconnect (critical: it was signed)
        ("esme", ReadFirmwareVersion.MESSAGE_CODE, _gbz_body),  # a DLMS use case
        ("gsme", ReadGsmeFirmwareVersion.MESSAGE_CODE, _dlms_body),  # a GBZ use case
        ("gsme", CS07, _dlms_body),
    ],
)
def test_a_body_of_another_payload_family_is_only_logged(
    request: pytest.FixtureRequest,
    headend: HeadEnd,
    eui: Callable[[str], bytes],
    device: str,
    code: int | None,
    body: Callable[[], bytes],
) -> None:
    """A meter answers a use case only in that use case's payload family: a CS07 or CS02f
    whose body parsed as DLMS got a DLMS refusal (signed, for CS02f), an ECS52 with a GBZ
    body a ZCL Default Response, and a GSME, which speaks GBZ, answered in DLMS (audit 9,
    gsme F2). Such a command is logged, spent and not answered."""
    meter = request.getfixturevalue(device)
    code = meter.catalogue.disconnect_code if code is None else code
    assert meter.receive(headend.command(code, body(), meter.eui64).encode()) is None
    assert meter.security_log[-1].event == "command payload invalid"
    assert meter.counters == {eui("supplier"): FIRST_COUNTER}
    assert all(e.event != "command executed" for e in meter.event_log)


@pytest.mark.parametrize(
    ("kind", "answered"),
    [
        (AccessKind.GET_WITH_SELECTION, AccessKind.GET),
        (AccessKind.SET_WITH_SELECTION, AccessKind.SET),
    ],
)
def test_a_refused_selective_access_is_answered_in_the_response_arm(
    esme: Esme, headend: HeadEnd, kind: AccessKind, answered: AccessKind
) -> None:
    """Responses have only the get/set/action arms: a with-selection request that the
    use case cannot use is refused as a get (or set), not left to crash the encoder."""
    read = ReadEventLog.between(esme.clock.epoch, esme.clock.utc).to_request(0x43)
    spec = replace(read.specs[0], kind=kind, obis=bytes.fromhex("00005E8964FF"))
    request = replace(read, specs=(spec,))
    command = headend.command(ReadEventLog.MESSAGE_CODE, dlms.encode(request), esme.eui64)
    out = esme.receive(command.encode())
    assert out is not None
    response = dlms.decode(verified(headend, out).payload)
    assert isinstance(response, AccessResponse)
    assert [(r.kind, r.result) for r in response.results] == [(answered, TYPE_UNMATCHED)]


def test_invalid_payload_after_the_checks(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    """A genuine ASN.1 command the use case cannot parse: no generic error form, logged."""
    command = headend.command(CS07, b"\x30\x05\x01", esme.eui64)
    assert esme.receive(command.encode()) is None
    entry = esme.security_log[-1]
    assert entry.event == "command payload invalid"
    assert entry.detail.startswith("0x0013: ")
    # The counter is consumed: the same bytes again are a replay.
    assert esme.counters == {eui("supplier"): FIRST_COUNTER}
    assert esme.event_log == []


def test_rejection_reasons_are_recorded_in_order(esme: Esme, headend: HeadEnd) -> None:
    esme.receive(b"")
    esme.clock.run(5)
    esme.receive(headend.command(0x1234, b"", esme.eui64).encode())
    assert [(e.time, e.event) for e in esme.security_log] == [
        (0.0, "malformed command"),
        (5.0, "command rejected"),
    ]


def test_security_log_is_bounded(esme: Esme) -> None:
    for _ in range(SECURITY_LOG_LIMIT + 10):
        esme.receive(b"\x00")
    assert len(esme.security_log) == SECURITY_LOG_LIMIT


@pytest.mark.parametrize("key", ["security_log", "event_log"])
def test_a_saved_log_longer_than_a_device_keeps_is_refused(esme: Esme, key: str) -> None:
    """The next entry would have dropped the surplus without a word (audit 8, meters L5)."""
    state = esme.state()
    entry = {"time": 0.0, "event": "x", "detail": ""}
    state[key] = [entry] * (SECURITY_LOG_LIMIT + 1)
    before = esme.state()
    with pytest.raises(GbcsError, match=f"{key} holds 101 entries; a device keeps 100"):
        esme.load_state(state)
    assert esme.state() == before
    state[key] = [entry] * SECURITY_LOG_LIMIT
    esme.load_state(state)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_property_any_flipped_byte_is_rejected(
    pki: TestPki, anchors: TrustAnchors, headend: HeadEnd, data: st.DataObject
) -> None:
    critical = data.draw(st.booleans(), label="critical")
    clock = VirtualClock()
    esme = Esme(
        DeviceCredentials.from_party(pki.party("esme")), anchors, clock, install_code=bytes(16)
    )
    code, payload = (
        (CS03A1, join_payload(pki.party("gsme").eui64)) if critical else (CS07, cs07_payload())
    )
    raw = bytearray(headend.command(code, payload, esme.eui64).encode())
    index = data.draw(st.integers(0, len(raw) - 1), label="index")
    raw[index] ^= data.draw(st.integers(1, 255), label="mask")
    assert esme.receive(bytes(raw)) is None
    assert esme.counters == {}
    assert esme.partners == {}
    assert len(esme.security_log) == 1


# Alerts and deferred actions ----------------------------------------------------------


def test_alert_is_macd_to_the_acb_with_increasing_counters(
    esme: Esme, headend: HeadEnd, eui: Callable[[str], bytes]
) -> None:
    seen: list[bytes] = []
    esme.on_alert = seen.append
    first = esme.alert(0x0018, b"\x01\x02")
    second = esme.alert(0x0018, b"\x03", sign=True)
    assert seen == [first, second]
    a, b = verified(headend, first), verified(headend, second)
    assert a.header.cra_flag is CraFlag.ALERT
    assert a.header.business_originator == esme.eui64
    assert a.header.business_target == eui("acb")
    assert (a.header.originator_counter, b.header.originator_counter) == (1, 2)
    assert a.payload == b"\x01\x02"
    assert a.signature == b"" and len(b.signature) == 64
    assert (first[0], second[0]) == (0xDD, 0xDF) and a.has_mac and not b.has_mac  # CRIB §2.4
    assert esme.alert_counter == 3


def test_reply_after_runs_once_the_response_has_gone(
    esme: Esme, headend: HeadEnd, fake_han: object
) -> None:
    esme.han = fake_han  # type: ignore[assignment]
    data = headend.command(
        esme.catalogue.disconnect_code,
        asn1.encode(DisconnectFromHan(esme.eui64).to_payload()),
        esme.eui64,
    ).encode()
    assert esme.receive(data) is not None
    assert fake_han.forgotten == 0  # type: ignore[attr-defined]
    esme.clock.run(AFTER_RESPONSE_DELAY - 0.01)
    assert fake_han.forgotten == 0  # type: ignore[attr-defined]
    esme.clock.run(AFTER_RESPONSE_DELAY)
    assert fake_han.forgotten == 1  # type: ignore[attr-defined]


def test_handler_registry_is_used(esme: Esme, headend: HeadEnd) -> None:
    calls: list[int] = []

    def handler(message: object) -> Reply:
        calls.append(1)
        return Reply(b"\xab\xcd")

    esme.handlers[0x1234] = handler
    out = esme.receive(headend.command(0x1234, b"", esme.eui64).encode())
    assert out is not None
    assert verified(headend, out).payload == b"\xab\xcd"
    assert calls == [1]


def test_replace_anchors_rebuilds_the_security_context(
    esme: Esme, headend: HeadEnd, pki: TestPki, anchors: TrustAnchors
) -> None:
    supplier2 = TrustAnchors.from_pki(pki, supplier="supplier2")
    old_context = esme.security
    esme.replace_anchors(supplier2)
    assert esme.security is not old_context
    assert esme.anchors == supplier2
    rejected = headend.command(CS07, cs07_payload(), esme.eui64, originator="supplier")
    assert esme.receive(rejected.encode()) is None
    accepted = headend.command(CS07, cs07_payload(), esme.eui64, originator="supplier2")
    assert esme.receive(accepted.encode()) is not None
    esme.replace_anchors(anchors)


def test_gbcs_state_round_trip(esme: Esme, headend: HeadEnd, make_esme: Callable) -> None:
    esme.receive(headend.command(CS07, cs07_payload(), esme.eui64, counter=77).encode())
    esme.receive(b"junk")
    esme.alert(0x0018, b"")
    state = esme.gbcs_state()
    other = make_esme()
    other.load_gbcs_state(state)
    assert other.gbcs_state() == state
    assert other.counters == esme.counters
    assert other.alert_counter == 2
    assert other.security_log == esme.security_log
    # The restored counters still protect against replay.
    replay = headend.command(CS07, cs07_payload(), esme.eui64, counter=77).encode()
    assert other.receive(replay) is None


def test_the_event_log_keeps_the_latest_100_and_its_state_reloads(esme: Esme) -> None:
    """GBCS logs keep the latest 100 events; without the trim a meter that logged more
    wrote a state its own load refused (audit 9, mut F3)."""
    for i in range(150):
        esme.log_event("partner joined", str(i))
    assert len(esme.event_log) == 100
    assert [e.detail for e in esme.event_log[:2]] == ["50", "51"]
    assert esme.event_log[-1].detail == "149"
    state = esme.state()
    esme.load_state(state)
    assert esme.state() == state
