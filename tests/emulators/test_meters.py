"""ESME/GSME use cases (emulators/meters.py): joins, unjoins, join details, disconnect, reads.

The meter is driven with commands from the head end; its HAN is a fake port so
that the GBCS logic is tested on its own.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from emulators.device import AFTER_RESPONSE_DELAY
from emulators.headend import HeadEnd
from emulators.meters import EVENT_CODES, PARTNER_CAPACITY, Esme, Gsme
from gbcs import asn1, dlms, gbz
from gbcs.catalogue import CATALOGUE, SECMP0013_DISCONNECT_DEFAULT_CODE, Catalogue
from gbcs.devicelog import DeviceType
from gbcs.dlms import AccessResponse
from gbcs.errors import GbcsError
from gbcs.events import CLEAR_EVENT_LOG, ClearEventLog, EventLogsCleared, LogId
from gbcs.frame import CraFlag, GbcsMessage, decode
from gbcs.gbz import ZclFrame
from gbcs.gsme_reads import (
    GsmeFirmwareVersion,
    ReadGsmeFirmwareVersion,
    ReadZigbeeEventLog,
    ZigbeeEventLog,
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
    parse_int_response,
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
from gbcs.rtds import RtdsVector
from gbcs.testpki import TestPki
from tests.conftest import self_signed_p256
from tests.emulators.conftest import INSTALL_CODE, FakeHan, executed, verified

PARTNERS = [bytes.fromhex(f"00DB12345678C0{i:02X}") for i in range(8)]
DISCONNECT = CATALOGUE.disconnect_code


class Bench:
    """Sends one command to a meter directly and returns the verified response."""

    def __init__(self, headend: HeadEnd, meter: Any) -> None:
        self.headend = headend
        self.meter = meter

    def send(self, code: int, payload: bytes, **kwargs: Any) -> GbcsMessage:
        command = self.headend.command(code, payload, self.meter.eui64, **kwargs)
        out = self.meter.receive(command.encode())
        assert out is not None, self.meter.security_log[-1:]
        return verified(self.headend, out)

    def asn1(self, code: int, payload: Any, response_type: str) -> int:
        response = self.send(code, asn1.encode(payload))
        return parse_int_response(
            asn1.decode(code, CraFlag.RESPONSE, response.payload), response_type
        )

    def join(self, code: int, command: JoinDevice) -> int:
        return self.asn1(code, command.to_payload(), "JoinDeviceResponse")

    def unjoin(self, code: int, device: bytes) -> int:
        return self.asn1(code, UnjoinDevice(device).to_payload(), "UnjoinDeviceResponse")

    def details(self) -> JoinDetails:
        response = self.send(0x0013, asn1.encode(JoinDetails.COMMAND))
        return JoinDetails.from_payload(asn1.decode(0x0013, CraFlag.RESPONSE, response.payload))

    def disconnect(self, device: bytes | None = None) -> tuple[GbcsMessage, int]:
        payload = asn1.encode(DisconnectFromHan(device or self.meter.eui64).to_payload())
        response = self.send(DISCONNECT, payload)
        value = asn1.decode_type(asn1.DISCONNECT_TYPES[response.header.cra_flag], response.payload)
        return response, parse_int_response(value, "DisconnectFromHanResponse")

    def dlms(self, read: Any) -> AccessResponse:
        counter = self.headend.next_counter(self.headend.party("supplier"))
        request = read.to_request(dlms.invoke_id_for_counter(counter))
        response = self.send(read.MESSAGE_CODE, dlms.encode(request), counter=counter)
        apdu = dlms.decode(response.payload)
        assert isinstance(apdu, AccessResponse)
        assert apdu.invoke_id == request.invoke_id
        return apdu


@pytest.fixture
def bench(esme: Esme, headend: HeadEnd, fake_han: FakeHan) -> Bench:
    esme.han = fake_han
    return Bench(headend, esme)


def join_a(device: bytes, device_type: int = DeviceType.PPMID) -> JoinDevice:
    return JoinDevice(JoinMethod.METHOD_A_INITIATOR, device, device_type)


# Construction ----------------------------------------------------------------------------


def test_install_code_must_be_16_bytes(make_esme: Callable[..., Esme]) -> None:
    with pytest.raises(GbcsError, match="install code is 16 bytes"):
        make_esme(install_code=INSTALL_CODE + b"\xb5\xc3")


def test_meter_kinds(esme: Esme, gsme: Gsme) -> None:
    assert (esme.sleepy, gsme.sleepy) == (False, True)
    assert int(esme.device_type) == 1 and int(gsme.device_type) == 0
    assert gsme.WAKE_INTERVAL == 30.0


# CS03 join ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "method"),
    [
        (0x000D, JoinMethod.METHOD_A_INITIATOR),
        (0x000D, JoinMethod.METHOD_A_RESPONDER),
        (0x000E, JoinMethod.METHOD_B),
    ],
)
def test_join_success(bench: Bench, esme: Esme, code: int, method: JoinMethod) -> None:
    kind = DeviceType.TYPE2 if method is JoinMethod.METHOD_B else DeviceType.PPMID
    assert bench.join(code, JoinDevice(method, PARTNERS[0], kind)) == JoinResult.SUCCESS
    assert esme.partners == {PARTNERS[0]: kind}
    assert esme.event_log[-2].event == "partner joined"
    assert esme.event_log[-2].detail == PARTNERS[0].hex().upper()


@pytest.mark.parametrize(
    ("code", "method", "kind"),
    [
        (0x000E, JoinMethod.METHOD_B, DeviceType.PPMID),  # has a certificate: method A
        (0x000E, JoinMethod.METHOD_B, DeviceType.HCALCS),
        (0x000D, JoinMethod.METHOD_A_INITIATOR, DeviceType.TYPE2),  # has none: method B
        (0x000D, JoinMethod.METHOD_A_RESPONDER, DeviceType.GPF),
    ],
)
def test_join_method_must_suit_the_device_type(
    bench: Bench, esme: Esme, code: int, method: JoinMethod, kind: DeviceType
) -> None:
    assert bench.join(code, JoinDevice(method, PARTNERS[0], kind)) == (
        JoinResult.INVALID_JOIN_METHOD_AND_ROLE
    )
    assert esme.partners == {}


@pytest.mark.parametrize(
    ("stem", "kind"),
    [
        ("CS03B_8.7.2_SUCCESS", "gsme"),  # the GPF, by method B
        ("CS03B_8.7.2_ERROR", "gsme"),  # a PPMID by method B: wrong role
        ("CS03A1_8.7.1_SUCCESS", "esme"),  # an HCALCS by method A
    ],
)
def test_join_answers_the_rtds_commands_as_the_rtds(
    request: pytest.FixtureRequest,
    corpus: list[RtdsVector],
    headend: HeadEnd,
    stem: str,
    kind: str,
) -> None:
    vectors = {v.name.removesuffix("_GBCS.HEX"): decode(v.data) for v in corpus if stem in v.name}
    command, expected = vectors[f"{stem}_COMMAND"], vectors[f"{stem}_RESPONSE"]
    meter = request.getfixturevalue(kind)
    answer = Bench(headend, meter).send(command.message_code, command.payload)
    assert answer.payload == expected.payload


@pytest.mark.parametrize(
    ("code", "method"),
    [
        (0x000D, JoinMethod.METHOD_B),
        (0x000D, JoinMethod.METHOD_C),
        (0x000E, JoinMethod.METHOD_A_INITIATOR),
        (0x00AF, JoinMethod.METHOD_A_RESPONDER),
        (0x00AF, JoinMethod.METHOD_B),
        (0x00AB, JoinMethod.METHOD_C),
    ],
)
def test_join_method_and_code_mismatch(
    bench: Bench, esme: Esme, code: int, method: JoinMethod
) -> None:
    result = bench.join(code, JoinDevice(method, PARTNERS[0], 0))
    assert result == JoinResult.INVALID_MESSAGE_CODE_FOR_JOIN_METHOD
    assert esme.partners == {}


def test_join_method_c_needs_a_certificate(bench: Bench, esme: Esme, pki: TestPki) -> None:
    missing = JoinDevice(JoinMethod.METHOD_C, PARTNERS[0], 5)
    assert bench.join(0x00AF, missing) == JoinResult.INVALID_OR_MISSING_CERTIFICATE
    assert esme.partners == {}
    der = pki.party("gsme").ka_cert.public_bytes(serialization.Encoding.DER)
    with_cert = JoinDevice(JoinMethod.METHOD_C, PARTNERS[0], 5, der)
    assert bench.join(0x00AF, with_cert) == JoinResult.SUCCESS
    assert esme.partners == {PARTNERS[0]: 5}


@pytest.mark.parametrize(
    ("method", "kind"), [(0, 7), (0, 99), (0, -1), (0, 2**40), (4, 0), (99, 5)]
)
def test_join_with_no_gbcs_method_or_device_type_is_refused(
    bench: Bench, esme: Esme, method: int, kind: int
) -> None:
    """CRIB §5.2: device types 0..6, methods 0..3; anything else names no role to join in."""
    assert bench.join(0x000D, JoinDevice(method, PARTNERS[0], kind)) == (
        JoinResult.INVALID_JOIN_METHOD_AND_ROLE
    )
    assert esme.partners == {}
    assert executed(esme) == []  # answered with a refusal: not run


def _with_version(der: bytes, version: int) -> bytes:
    data = bytearray(der)
    at = data.index(bytes.fromhex("A003020102"))  # [0] { INTEGER 2 }: v3
    data[at + 4] = version
    return bytes(data)


def _dual_use_certificate() -> bytes:
    """A P-256 certificate for both signing and key agreement: not a key-agreement one."""
    usage = x509.KeyUsage(True, False, False, False, True, False, False, False, False)
    return self_signed_p256("dual use", (usage, True))


@pytest.mark.parametrize(
    "certificate",
    ["not x509", "signing", "truncated", "bad version", "signing and KA", "organisation"],
)
def test_join_method_c_needs_a_key_agreement_certificate(
    bench: Bench, esme: Esme, pki: TestPki, certificate: str
) -> None:
    """Method C exists for key establishment: a certificate that cannot serve it is code 11."""
    gsme = pki.party("gsme")
    der = {
        # SEQUENCE { OCTET STRING '', AlgorithmIdentifier { 1.2.3.4 }, BIT STRING }
        "not x509": bytes.fromhex("300D0400300506032A030403020000"),
        "signing": gsme.ds_cert.public_bytes(serialization.Encoding.DER),
        "truncated": gsme.ka_cert.public_bytes(serialization.Encoding.DER)[:-1],
        # X.509 version field 5: cryptography raises InvalidVersion, which is no ValueError
        "bad version": _with_version(gsme.ka_cert.public_bytes(serialization.Encoding.DER), 5),
        "signing and KA": _dual_use_certificate(),
        # The supplier's KA certificate: no HAN device's (audit 8, meters L3).
        "organisation": pki.party("supplier").ka_cert.public_bytes(serialization.Encoding.DER),
    }[certificate]
    command = JoinDevice(JoinMethod.METHOD_C, PARTNERS[0], 5, der)
    if certificate == "truncated":  # not even one TLV: the payload itself is refused
        with pytest.raises(GbcsError):
            bench.join(0x00AF, command)
    else:
        assert bench.join(0x00AF, command) == JoinResult.INVALID_OR_MISSING_CERTIFICATE
    assert esme.partners == {}


@pytest.mark.parametrize(
    ("certificates", "match"),
    [
        ({"ka": "00"}, r"certificates\[ka\] is not this meter's KA certificate \(no usable"),
        ({"ds": "KA"}, r"certificates\[ds\] is not this meter's DS certificate \(no usable"),
        ({"ka": "GSME-KA"}, r"KA certificate \(00DB1234567890A1\)"),
        ({"pp-ka": "KA"}, "a meter holds KA and DS certificates, not pp-ka"),
    ],
)
def test_a_meter_holds_only_its_own_certificates(
    esme: Esme, pki: TestPki, make_esme: Callable[..., Esme], certificates: dict, match: str
) -> None:
    """Anything else was taken, and CS02e then failed blaming the command's payload, no
    answer sent (audit 8, meters M2)."""
    der = {
        "KA": pki.party("esme").ka_cert.public_bytes(serialization.Encoding.DER),
        "GSME-KA": pki.party("gsme").ka_cert.public_bytes(serialization.Encoding.DER),
    }
    given = {k: der[v].hex() if v in der else v for k, v in certificates.items()}
    state = esme.state()
    state["certificates"] = given
    before = esme.state()
    with pytest.raises(GbcsError, match=match):
        esme.load_state(state)
    assert esme.state() == before
    with pytest.raises(GbcsError, match=match):
        make_esme(certificates={KeyUsage(k): bytes.fromhex(v) for k, v in given.items()})


@pytest.mark.parametrize("kind", [DeviceType.GSME, DeviceType.ESME, DeviceType.CHF])
def test_load_state_refuses_a_partner_no_join_admits(esme: Esme, kind: DeviceType) -> None:
    state = esme.state()
    state["partners"] = {PARTNERS[0].hex().upper(): int(kind)}
    before = esme.state()
    with pytest.raises(GbcsError, match=f"takes no device of type {int(kind)} as a partner"):
        esme.load_state(state)
    assert esme.state() == before


def test_load_state_refuses_a_partner_of_no_gbcs_device_type(esme: Esme) -> None:
    state = esme.state()
    state["partners"] = {PARTNERS[0].hex().upper(): 7}
    before = esme.state()
    with pytest.raises(GbcsError, match=r"partners\.00DB.* 7 is outside 0\.\.6"):
        esme.load_state(state)
    assert esme.state() == before


def test_join_incompatible_with_existing_entry(bench: Bench, esme: Esme) -> None:
    assert bench.join(0x000D, join_a(PARTNERS[0], 4)) == JoinResult.SUCCESS
    assert bench.join(0x000D, join_a(PARTNERS[0], 5)) == JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY
    assert esme.partners == {PARTNERS[0]: 4}
    assert bench.join(0x000D, join_a(PARTNERS[0], 4)) == JoinResult.SUCCESS  # same type again


def test_join_with_itself_is_incompatible(bench: Bench, esme: Esme) -> None:
    assert bench.join(0x000D, join_a(esme.eui64)) == JoinResult.INCOMPATIBLE_WITH_EXISTING_ENTRY
    assert esme.partners == {}


def test_join_log_full(bench: Bench, esme: Esme) -> None:
    for device in PARTNERS[:PARTNER_CAPACITY]:
        assert bench.join(0x000D, join_a(device)) == JoinResult.SUCCESS
    assert bench.join(0x000D, join_a(PARTNERS[PARTNER_CAPACITY])) == JoinResult.DEVICE_LOG_FULL
    assert list(esme.partners) == PARTNERS[:PARTNER_CAPACITY]
    # A device already in the full log may join again.
    assert bench.join(0x000D, join_a(PARTNERS[0])) == JoinResult.SUCCESS


def test_join_critical_codes_must_be_signed(esme: Esme, headend: HeadEnd) -> None:
    payload = asn1.encode(join_a(PARTNERS[0]).to_payload())
    unsigned = headend.command(0x000D, payload, esme.eui64, sign=False)
    assert esme.receive(unsigned.encode()) is None
    assert esme.partners == {}
    method_b = asn1.encode(JoinDevice(JoinMethod.METHOD_B, PARTNERS[0], 3).to_payload())
    assert esme.receive(headend.command(0x000E, method_b, esme.eui64).encode()) is not None


# CS04 unjoin and CS07 join details -------------------------------------------------------


@pytest.mark.parametrize("code", [0x000F, 0x0010])
def test_unjoin(bench: Bench, esme: Esme, code: int) -> None:
    """CS04AC unjoins what method A or C joined, CS04B what method B joined."""
    if code == 0x0010:
        bench.join(0x000E, JoinDevice(JoinMethod.METHOD_B, PARTNERS[0], DeviceType.TYPE2))
    else:
        bench.join(0x000D, join_a(PARTNERS[0]))
    bench.join(0x000D, join_a(PARTNERS[1], 5))
    assert bench.unjoin(code, PARTNERS[0]) == UnjoinResult.SUCCESS
    assert esme.partners == {PARTNERS[1]: 5}
    assert esme.event_log[-2].event == "partner unjoined"
    ran = executed(esme)
    assert ran[-1].startswith("CS04")
    assert bench.unjoin(code, PARTNERS[0]) == UnjoinResult.NOT_IN_DEVICE_LOG
    assert esme.partners == {PARTNERS[1]: 5}
    assert executed(esme) == ran  # refused: not logged as executed


def test_cs04b_unjoins_only_what_method_b_joined(bench: Bench, esme: Esme) -> None:
    """A PPMID joined by the critical, signed CS03C/CS03A came off by an unsigned CS04B
    (which any anchor, the network operator too, may send): a bypass of CS04AC's
    signature. Each unjoin now takes only its own method's partners (audit 8, meters M1)."""
    bench.join(0x000D, join_a(PARTNERS[0]))  # a PPMID, method A
    bench.join(0x000E, JoinDevice(JoinMethod.METHOD_B, PARTNERS[1], DeviceType.TYPE2))
    ran = executed(esme)
    assert bench.unjoin(0x0010, PARTNERS[0]) == UnjoinResult.OTHER_FAILURE
    assert bench.unjoin(0x000F, PARTNERS[1]) == UnjoinResult.OTHER_FAILURE
    assert esme.partners == {PARTNERS[0]: DeviceType.PPMID, PARTNERS[1]: DeviceType.TYPE2}
    assert executed(esme) == ran
    assert [e.event for e in esme.security_log[-2:]] == ["unjoin refused"] * 2
    assert bench.unjoin(0x000F, PARTNERS[0]) == UnjoinResult.SUCCESS
    assert bench.unjoin(0x0010, PARTNERS[1]) == UnjoinResult.SUCCESS
    assert esme.partners == {}


@pytest.mark.parametrize("kind", [DeviceType.CHF, DeviceType.ESME, DeviceType.GSME])
def test_a_meter_takes_no_hub_function_or_meter_as_partner(
    bench: Bench, esme: Esme, kind: DeviceType
) -> None:
    """Its partners work with a meter (GPF, PPMID, HCALCS, Type 2); the GPF refuses a
    CHF entry alike (audit 8, meters L2)."""
    assert bench.join(0x000D, join_a(PARTNERS[0], kind)) == (
        JoinResult.INVALID_JOIN_METHOD_AND_ROLE
    )
    assert esme.partners == {} and executed(esme) == []


@pytest.mark.parametrize("method", [JoinMethod.METHOD_A_INITIATOR, JoinMethod.METHOD_A_RESPONDER])
def test_the_non_meter_side_join_code_is_not_a_meters(
    bench: Bench, esme: Esme, method: JoinMethod
) -> None:
    """CS03A2 (0x00AB) is sent to the PPMID or HCALCS, the non-meter side (CRIB §7)."""
    assert bench.join(0x00AB, JoinDevice(method, PARTNERS[0], DeviceType.PPMID)) == (
        JoinResult.INVALID_MESSAGE_CODE_FOR_JOIN_METHOD
    )
    assert esme.partners == {}


def test_unjoin_not_in_log(bench: Bench, esme: Esme) -> None:
    assert bench.unjoin(0x0010, PARTNERS[3]) == UnjoinResult.NOT_IN_DEVICE_LOG
    assert all(e.event != "partner unjoined" for e in esme.event_log)
    assert executed(esme) == []


def test_join_details_lists_partners_in_join_order(bench: Bench) -> None:
    assert bench.details() == JoinDetails(0, ())
    bench.join(0x000D, join_a(PARTNERS[2], 5))
    bench.join(0x000E, JoinDevice(JoinMethod.METHOD_B, PARTNERS[0], 0))
    bench.join(0x000D, join_a(PARTNERS[1], 4))
    bench.unjoin(0x0010, PARTNERS[0])
    details = bench.details()
    assert details.response_code == 0
    assert details.devices == (HanDevice(PARTNERS[2], 5), HanDevice(PARTNERS[1], 4))


def test_join_details_response_bytes(bench: Bench) -> None:
    bench.join(0x000D, join_a(PARTNERS[0], 5))
    response = bench.send(0x0013, asn1.encode(JoinDetails.COMMAND))
    expected = asn1.encode(JoinDetails(0, (HanDevice(PARTNERS[0], 5),)).to_payload())
    assert response.payload == expected
    assert response.signature == b""


def test_join_details_with_a_malformed_command_is_not_answered(
    esme: Esme, headend: HeadEnd
) -> None:
    command = headend.command(0x0013, b"\x05\x00\x00", esme.eui64)
    assert esme.receive(command.encode()) is None
    assert esme.security_log[-1].event == "command payload invalid"


# CS02f disconnect ----------------------------------------------------------------------------


def test_disconnect_success_forgets_the_network_after_the_response(
    bench: Bench, esme: Esme, fake_han: FakeHan
) -> None:
    response, code = bench.disconnect()
    assert code == DisconnectResult.SUCCESS
    assert len(response.signature) == 64  # critical: the meter signs its answer
    assert response.header.other_information.message_code == SECMP0013_DISCONNECT_DEFAULT_CODE
    assert fake_han.forgotten == 0  # not before the response has left
    assert esme.event_log[-2].event == "disconnect from HAN"
    esme.clock.run_for(AFTER_RESPONSE_DELAY / 2)
    assert fake_han.forgotten == 0
    esme.clock.run_for(AFTER_RESPONSE_DELAY)
    assert fake_han.forgotten == 1
    esme.clock.run()
    assert fake_han.forgotten == 1


def test_two_disconnects_before_the_first_is_carried_out_leave_once(
    bench: Bench, esme: Esme, fake_han: FakeHan
) -> None:
    """Both are answered (the meter is still joined when the second comes), but it leaves
    once: a second leave would drop the network it has joined since (test audit)."""
    assert bench.disconnect()[1] == DisconnectResult.SUCCESS
    assert bench.disconnect()[1] == DisconnectResult.SUCCESS
    esme.clock.run()
    assert fake_han.forgotten == 1 and not esme.leaving


def test_disconnect_wrong_device_id(bench: Bench, esme: Esme, fake_han: FakeHan) -> None:
    _, code = bench.disconnect(PARTNERS[0])
    assert code == DisconnectResult.WRONG_DEVICE_ID
    esme.clock.run()
    assert fake_han.forgotten == 0
    assert all(e.event != "disconnect from HAN" for e in esme.event_log)
    assert executed(esme) == []


def test_disconnect_when_not_joined(bench: Bench, esme: Esme, fake_han: FakeHan) -> None:
    fake_han.joined = False
    _, code = bench.disconnect()
    assert code == DisconnectResult.NOT_JOINED
    esme.clock.run()
    assert fake_han.forgotten == 0
    assert executed(esme) == []


def test_disconnect_without_a_han(bench: Bench, esme: Esme) -> None:
    esme.han = None
    _, code = bench.disconnect()
    assert code == DisconnectResult.NOT_JOINED
    assert esme.clock.pending() == 0


def test_disconnect_response_bytes(bench: Bench) -> None:
    response, _ = bench.disconnect()
    assert response.payload == asn1.encode(
        asn1.Asn1Payload("DisconnectFromHanResponse", int(DisconnectResult.SUCCESS))
    )


def test_disconnect_must_be_signed(esme: Esme, headend: HeadEnd, fake_han: FakeHan) -> None:
    esme.han = fake_han
    payload = asn1.encode(DisconnectFromHan(esme.eui64).to_payload())
    command = headend.command(DISCONNECT, payload, esme.eui64, sign=False)
    assert esme.receive(command.encode()) is None
    esme.clock.run()
    assert fake_han.forgotten == 0


def test_disconnect_signed_by_the_network_operator_is_refused(
    esme: Esme, headend: HeadEnd, fake_han: FakeHan
) -> None:
    """SECMP0013: the supplier signs CS02f; another trust anchor's signature is not enough."""
    esme.han = fake_han
    payload = asn1.encode(DisconnectFromHan(esme.eui64).to_payload())
    command = headend.command(DISCONNECT, payload, esme.eui64, originator="network_operator")
    assert command.is_signed
    assert esme.receive(command.encode()) is None
    assert esme.security_log[-1].detail == (
        f"0x{DISCONNECT:04X}: CS02f-SECMP0013 must be signed by the supplier, "
        "not the network operator"
    )
    esme.clock.run()
    assert fake_han.forgotten == 0 and esme.counters == {}


@pytest.mark.parametrize(
    ("code", "payload"),
    [
        (0x000D, JoinDevice(JoinMethod.METHOD_A_INITIATOR, PARTNERS[0], 5).to_payload()),
        (0x000F, UnjoinDevice(PARTNERS[0]).to_payload()),
    ],
)
def test_critical_commands_signed_by_the_network_operator_are_refused(
    esme: Esme, headend: HeadEnd, code: int, payload: Any
) -> None:
    """DESIGN §3: critical commands are the supplier's to sign (CS03A1, CS04AC, as in the
    RTDS); another trust anchor's valid signature does not authorise them."""
    command = headend.command(code, asn1.encode(payload), esme.eui64, originator="network_operator")
    assert command.is_signed
    assert esme.receive(command.encode()) is None
    name = esme.catalogue.use_case_name(code)
    assert esme.security_log[-1].detail == (
        f"0x{code:04X}: {name} must be signed by the supplier, not the network operator"
    )
    assert esme.partners == {} and esme.counters == {}
    supplier = headend.command(code, asn1.encode(payload), esme.eui64)
    assert esme.receive(supplier.encode()) is not None


def test_disconnect_under_a_configured_code(
    pki: TestPki, anchors: Any, clock: Any, fake_han: FakeHan
) -> None:
    from emulators.credentials import DeviceCredentials

    catalogue = Catalogue(0x7E00)
    meter = Gsme(
        DeviceCredentials.from_party(pki.party("gsme")),
        anchors,
        clock,
        install_code=INSTALL_CODE,
        catalogue=catalogue,
    )
    meter.han = fake_han
    headend = HeadEnd(pki, clock, catalogue=catalogue)
    payload = asn1.encode(DisconnectFromHan(meter.eui64).to_payload())
    command = headend.command(0x7E00, payload, meter.eui64)
    assert command.is_signed
    out = meter.receive(command.encode())
    assert out is not None
    assert verified(headend, out).header.message_code == 0x7E00
    old_code = headend.command(0x7F00, payload, meter.eui64, sign=True)
    assert meter.receive(old_code.encode()) is None
    assert "not supported" in meter.security_log[-1].detail


# ESME reads ------------------------------------------------------------------------------------


def test_esme_identity(make_esme: Callable[..., Esme], headend: HeadEnd) -> None:
    meter = make_esme(variant=b"A", model=b"MODEL-X", manufacturer=b"ACME")
    answer = EsmeIdentity.from_response(Bench(headend, meter).dlms(ReadEsmeIdentity()))
    assert answer == EsmeIdentity(b"A", b"MODEL-X", b"ACME", False)


def test_esme_identity_defaults(bench: Bench) -> None:
    answer = EsmeIdentity.from_response(bench.dlms(ReadEsmeIdentity()))
    assert (answer.variant, answer.model, answer.manufacturer) == (b"B", b"GBHILEM1", b"GBHL")


def test_firmware_version(make_esme: Callable[..., Esme], headend: HeadEnd) -> None:
    meter = make_esme(firmware_version=b"\x02\x05\x00\x01")
    answer = FirmwareVersion.from_response(Bench(headend, meter).dlms(ReadFirmwareVersion()))
    assert answer.version == b"\x02\x05\x00\x01"


def test_gsme_does_not_answer_esme_reads(gsme: Gsme, headend: HeadEnd) -> None:
    request = ReadFirmwareVersion().to_request(0x20000001)
    command = headend.command(ReadFirmwareVersion.MESSAGE_CODE, dlms.encode(request), gsme.eui64)
    assert gsme.receive(command.encode()) is None
    assert "0x0059 is not supported" in gsme.security_log[-1].detail


def _log_three_events(meter: Esme | Gsme) -> None:
    """Coded events at 100, 200 and 300 s, one without a code; the clock then at 1000 s."""
    clock = meter.clock
    for t, event in ((100, "joined HAN"), (200, "partner joined"), (300, "left HAN")):
        clock.run(t)
        meter.log_event(event, "x")
    meter.log_event("not an event code", "ignored")
    clock.run(1000)


def test_event_log_range_selection(bench: Bench, esme: Esme) -> None:
    clock = esme.clock
    _log_three_events(esme)

    def read(start: float, end: float) -> tuple[EventLogEntry, ...]:
        query = ReadEventLog.between(clock.at(start), clock.at(end))
        log = EventLog.from_response(bench.dlms(query))
        assert log.entries is not None
        return log.entries

    everything = read(0, 400)
    assert [e.event_code for e in everything] == [0xF001, 0xF004, 0xF002]
    assert [e.time for e in everything] == [clock.at(100), clock.at(200), clock.at(300)]
    assert [e.event_code for e in read(150, 300)] == [0xF004, 0xF002]  # both ends inclusive
    assert [e.event_code for e in read(100, 100)] == [0xF001]
    assert read(301, 399) == ()
    assert read(0, 99) == ()


def test_event_log_includes_executed_commands(bench: Bench, esme: Esme) -> None:
    esme.clock.run(60)
    bench.details()
    query = ReadEventLog.between(esme.clock.epoch, esme.clock.epoch + dt.timedelta(days=1))
    entries = EventLog.from_response(bench.dlms(query)).entries
    assert [e.event_code for e in entries] == [EVENT_CODES["command executed"]]
    assert entries[0].time == esme.clock.at(60)


# GCS38 and CS10a: the GSME's firmware version and event log in GBZ ----------------------------


def _gbz_answer(headend: HeadEnd, gsme: Gsme, code: int, payload: gbz.GbzPayload) -> gbz.GbzPayload:
    response = Bench(headend, gsme).send(code, payload.encode())
    assert response.signature == b"" and response.has_mac  # not critical: MAC'd only
    return gbz.decode(response.payload, alert=False)


def test_gsme_reports_its_firmware_version(headend: HeadEnd, gsme: Gsme) -> None:
    gsme.firmware_version = bytes.fromhex("02030405")
    query = ReadGsmeFirmwareVersion(sequence=0x21)
    answer = GsmeFirmwareVersion.from_payload(
        _gbz_answer(headend, gsme, query.MESSAGE_CODE, query.to_payload())
    )
    assert answer == GsmeFirmwareVersion(bytes.fromhex("02030405"), 0, 0x21)
    assert gsme.event_log[-1].detail == "GCS38"


def test_gsme_answers_each_attribute_a_gcs38_frame_asks_for(headend: HeadEnd, gsme: Gsme) -> None:
    """Another attribute alongside 0x0206 gets its own "unsupported attribute" record, as
    a ZCL server answers (2.5.2), not a refusal of the whole read."""
    gsme.firmware_version = bytes.fromhex("02030405")
    asked = gbz.GbzPayload.build(
        [gbz.GbzComponent.build(0x0702, ZclFrame(0x00, 3, 0x00, bytes.fromhex("06020100")))]
    )
    (component,) = _gbz_answer(headend, gsme, 0x0084, asked).components
    assert isinstance(component.frame, ZclFrame)
    view = gbz.zcl_view(0x0702, component.frame)
    assert isinstance(view, gbz.ReadAttributesResponse)
    assert [(r.attribute_id, r.status) for r in view.records] == [(0x0206, 0), (0x0001, 0x86)]


def test_gsme_event_log_read(headend: HeadEnd, gsme: Gsme) -> None:
    clock = gsme.clock
    _log_three_events(gsme)

    def read(start: float, end: float, **kwargs: int) -> gbz.GbzPayload:
        query = ReadZigbeeEventLog(
            3, utc_to_gbz(clock.at(start)), utc_to_gbz(clock.at(end)), sequence=7, **kwargs
        )
        return _gbz_answer(headend, gsme, query.MESSAGE_CODE, query.to_payload())

    log = ZigbeeEventLog.from_payload(read(0, 400))
    assert [(e.log_id, e.event_id, e.when, e.data) for e in log.entries] == [
        (3, 0xF001, clock.at(100), b""),
        (3, 0xF004, clock.at(200), b""),
        (3, 0xF002, clock.at(300), b""),
    ]
    assert (log.matching, log.sequence) == (3, 7)
    later = ZigbeeEventLog.from_payload(read(150, 301, count=1, offset=1))
    assert (later.matching, [e.event_id for e in later.entries]) == (2, [0xF002])
    before_end = ZigbeeEventLog.from_payload(read(100, 300))  # End Time is not included
    assert [e.event_id for e in before_end.entries] == [0xF001, 0xF004]
    # Nothing in the range: a Default Response "not found", as RTDS CS10a NOT_FOUND.
    (component,) = read(301, 399).components
    assert isinstance(component.frame, ZclFrame)
    view = gbz.zcl_view(component.cluster_id, component.frame)
    assert view == gbz.DefaultResponse(0x00, gbz.ZCL_NOT_FOUND)
    assert component.frame.sequence == 7


def test_the_esme_does_not_answer_the_gsme_gbz_reads(headend: HeadEnd, esme: Esme) -> None:
    for query in (ReadGsmeFirmwareVersion(), ReadZigbeeEventLog(3, 0, 100)):
        payload = query.to_payload().encode()
        command = headend.command(query.MESSAGE_CODE, payload, esme.eui64)
        assert esme.receive(command.encode()) is None
        assert f"0x{query.MESSAGE_CODE:04X} is not supported" in esme.security_log[-1].detail


# CS11 clear ZigBee device event log (GSME) ----------------------------------------------------


def _clear(headend: HeadEnd, gsme: Gsme, log_id: int, sequence: int = 0) -> EventLogsCleared:
    payload = ClearEventLog(log_id, sequence).to_payload().encode()
    response = Bench(headend, gsme).send(CLEAR_EVENT_LOG, payload)
    assert response.signature == b"" and response.has_mac  # not critical: MAC'd only
    return EventLogsCleared.from_payload(gbz.decode(response.payload, alert=False))


def test_cs11_answers_the_rtds_command_as_the_rtds(
    corpus: list[RtdsVector], headend: HeadEnd, gsme: Gsme
) -> None:
    vectors = {v.name: decode(v.data) for v in corpus if v.name.startswith("CS11_3.3_SUCCESS")}
    command = vectors["CS11_3.3_SUCCESS_COMMAND_GBCS.HEX"]
    expected = vectors["CS11_3.3_SUCCESS_RESPONSE_GBCS.HEX"]
    gsme.log_event("joined HAN", "00DB1234567890A2")
    answer = Bench(headend, gsme).send(command.message_code, command.payload)
    assert answer.payload == expected.payload  # 08: the general event log cleared
    assert [e.event for e in gsme.event_log] == ["command executed"]  # the CS11 itself


@pytest.mark.parametrize("log_id", [LogId.GENERAL, LogId.ALL])
def test_cs11_clears_the_general_event_log(headend: HeadEnd, gsme: Gsme, log_id: LogId) -> None:
    gsme.log_event("joined HAN", "00DB1234567890A2")
    gsme.log_event("left HAN")
    answer = _clear(headend, gsme, log_id, sequence=0x42)
    assert (answer.logs, answer.sequence) == ((LogId.GENERAL,), 0x42)
    assert [e.event for e in gsme.event_log] == ["command executed"]  # the CS11 itself
    assert gsme.security_log[-1].event == "event log clear"


@pytest.mark.parametrize(
    "log_id", [LogId.SECURITY, LogId.GBCS_SECURITY, LogId.TAMPER, LogId.NETWORK]
)
def test_cs11_never_clears_the_security_log_nor_logs_it_lacks(
    headend: HeadEnd, gsme: Gsme, log_id: LogId
) -> None:
    gsme.log_event("joined HAN", "00DB1234567890A2")
    gsme.log_security("something", "kept")
    before = list(gsme.security_log)
    assert _clear(headend, gsme, log_id).cleared == 0  # as the RTDS ERROR response
    assert [e.event for e in gsme.event_log] == ["joined HAN", "command executed"]
    assert gsme.security_log[: len(before)] == before


@pytest.mark.parametrize(
    ("cluster", "frame", "status", "why"),
    [
        (0x0709, gbz.ZclFrame(0x01, 7, 0x01, b"\x09"), 0x87, "LogID 9"),  # invalid value
        (0x0709, gbz.ZclFrame(0x01, 7, 0x05, b"\x03"), 0x81, "command 0x01"),  # unsupported
        (0x0709, gbz.ZclFrame(0x11, 7, 0x01, b""), 0x80, "carries one byte"),  # malformed
        (0x0702, gbz.ZclFrame(0x01, 7, 0x01, b"\x03"), 0xC3, "cluster 0x0709"),
        (0x0709, gbz.ZclFrame(0x00, 7, 0x01, b"\x03"), 0x80, "frame control"),
    ],
)
def test_cs11_with_a_malformed_payload_gets_a_zcl_default_response(
    headend: HeadEnd, gsme: Gsme, cluster: int, frame: gbz.ZclFrame, status: int, why: str
) -> None:
    """CRIB §5.3, RTDS CS10a ERROR / NOT_FOUND: a GBZ command the meter cannot carry out
    is answered with a ZCL Default Response (commandId, status) from the server, echoing
    the ZCL sequence number, even with disable-default-response set."""
    gsme.log_event("joined HAN", "00DB1234567890A2")
    wrong = gbz.GbzPayload.build([gbz.GbzComponent.build(cluster, frame)])
    command = headend.command(CLEAR_EVENT_LOG, wrong.encode(), gsme.eui64)
    out = gsme.receive(command.encode())
    assert out is not None
    answer = verified(headend, out)
    assert answer.payload == bytes.fromhex("01090101") + cluster.to_bytes(2, "big") + bytes(
        [0x00, 0x05, 0x08, 0x07, 0x0B, frame.command_id, status]
    )
    assert gsme.security_log[-1].event == "command payload invalid"
    assert why in gsme.security_log[-1].detail
    assert [e.event for e in gsme.event_log] == ["joined HAN"]  # nothing cleared, nothing run


def test_a_future_dated_cs11_is_refused_not_run_now(headend: HeadEnd, gsme: Gsme) -> None:
    """A from-date-time the GSME cannot honour: it used to clear its log at once and
    answer as if immediate, the date dropped (audit 8, codec 1)."""
    gsme.log_event("joined HAN", "00DB1234567890A2")
    frame = gbz.ZclFrame(0x01, 7, 0x01, b"\x03")
    dated = gbz.GbzPayload.build([gbz.GbzComponent.build(0x0709, frame, 946771200)])
    out = gsme.receive(headend.command(CLEAR_EVENT_LOG, dated.encode(), gsme.eui64).encode())
    assert out is not None
    answer = verified(headend, out)
    assert answer.payload == bytes.fromhex("010901010709000508070B0180")  # malformed command
    assert "not taken future-dated" in gsme.security_log[-1].detail
    assert [e.event for e in gsme.event_log] == ["joined HAN"]  # nothing cleared, nothing run


def test_a_gbz_command_with_no_plain_frame_is_not_answered(headend: HeadEnd, gsme: Gsme) -> None:
    """Nothing to answer with a Default Response: only the security log says why."""
    for payload in (b"\x01\x09\x00", bytes.fromhex("0109")):  # no component; truncated
        command = headend.command(CLEAR_EVENT_LOG, payload, gsme.eui64)
        assert gsme.receive(command.encode()) is None
        assert gsme.security_log[-1].event in ("command payload invalid", "malformed command")


def test_cs11_is_not_an_esme_use_case(headend: HeadEnd, esme: Esme) -> None:
    payload = ClearEventLog(LogId.GENERAL).to_payload().encode()
    assert esme.receive(headend.command(CLEAR_EVENT_LOG, payload, esme.eui64).encode()) is None
    assert "0x0015 is not supported" in esme.security_log[-1].detail


# State --------------------------------------------------------------------------------------


def test_state_round_trip(bench: Bench, esme: Esme, make_esme: Callable[..., Esme]) -> None:
    bench.join(0x000D, join_a(PARTNERS[0], 5))
    bench.join(0x000D, join_a(PARTNERS[1], 4))
    esme.firmware_version = b"\x09\x09\x09\x09"
    state = json.loads(json.dumps(esme.state()))
    assert state["install_code"] == INSTALL_CODE.hex().upper()
    assert state["partners"] == {PARTNERS[0].hex().upper(): 5, PARTNERS[1].hex().upper(): 4}
    assert state["firmware_version"] == "09090909"
    other = make_esme()
    other.load_state(state)
    assert other.state() == state
    assert other.partners == esme.partners
    assert other.counters == esme.counters
    assert other.event_log == esme.event_log


def test_load_state_refuses_missing_keys_and_changes_nothing(esme: Esme) -> None:
    esme.partners[PARTNERS[0]] = 5
    before = esme.state()
    with pytest.raises(GbcsError, match="install_code is missing"):
        esme.load_state({})
    state = esme.state()
    del state["counters"]  # replay protection is never reset by omission
    with pytest.raises(GbcsError, match="counters is missing"):
        esme.load_state(state)
    assert esme.state() == before


def test_a_gbz_read_the_gsme_cannot_carry_out_is_a_hardware_failure(
    pki: TestPki, anchors: Any
) -> None:
    """A valid command the device cannot carry out for its own reason (here a GSME whose
    clock is before 2000, the GBZ epoch, cannot write its event times) is answered ZCL
    HARDWARE_FAILURE, not MALFORMED_COMMAND, which would blame the command (audit 9,
    mut F11)."""
    from emulators.clock import VirtualClock
    from emulators.credentials import DeviceCredentials

    clock = VirtualClock(epoch=dt.datetime(1999, 12, 31, 23, 0, tzinfo=dt.UTC))
    headend = HeadEnd(pki, clock)
    credentials = DeviceCredentials.from_party(pki.party("gsme"))
    gsme = Gsme(credentials, anchors, clock, install_code=INSTALL_CODE)
    gsme.log_event("joined HAN")
    query = ReadZigbeeEventLog(3, 0, 0xFFFFFFF0, sequence=9)
    out = gsme.receive(
        headend.command(query.MESSAGE_CODE, query.to_payload().encode(), gsme.eui64).encode()
    )
    assert out is not None
    (component,) = gbz.decode_message_payload(verified(headend, out)).components
    view = gbz.zcl_view(component.cluster_id, component.frame)
    assert view.status == gbz.ZCL_HARDWARE_FAILURE  # type: ignore[union-attr]
    assert gsme.security_log[-1].event == "command payload invalid"
