"""Typed CS02a/CS02b/CS02e payloads (gbcs/credentials_uc.py) against the RTDS and themselves."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from gbcs import asn1
from gbcs.asn1 import Asn1Payload
from gbcs.credentials_uc import (
    DS_KEY_USAGE,
    KA_KEY_USAGE,
    AuthorisingControl,
    CredentialDetails,
    CredentialsReplacementMode,
    CredentialStatus,
    DeviceCertificate,
    DeviceCertificateResult,
    KeyUsageBits,
    ProvideCredentialDetails,
    ProvideDeviceCertificate,
    RemotePartyDetails,
    RemotePartySeqNumberChange,
    ReplacementOutcome,
    SpecialistSeqNumber,
    TrustAnchorCell,
    TrustAnchorCellContents,
    TrustAnchorReplacement,
    UpdateCredentialsAlert,
    UpdateCredentialsResponse,
    UpdateOutcome,
    UpdateSecurityCredentials,
)
from gbcs.errors import DecodeError, EncodeError
from gbcs.frame import decode_message
from gbcs.keys import KeyUsage
from gbcs.rtds import RtdsVector
from gbcs.testpki import RemotePartyRole, TestPki, certificate_party
from tests.conftest import CORPUS, SKIP_REASON

TYPES: dict[str, type] = {
    "ProvideSecurityCredentialDetailsCommand": ProvideCredentialDetails,
    "ProvideSecurityCredentialDetailsResponse": CredentialDetails,
    "UpdateSecurityCredentialsCommand": UpdateSecurityCredentials,
    "UpdateSecurityCredentialsResponse": UpdateCredentialsResponse,
    "UpdateSecurityCredentialsAlert": UpdateCredentialsAlert,
    "ProvideDeviceCertificateCommand": ProvideDeviceCertificate,
    "ProvideDeviceCertificateResponse": DeviceCertificate,
}
# CS02a, CS02b, CS02e and the same-shaped CS02f (0x011B) and CS02g (0x0124-0x0126).
FOLDERS = ("CS02a", "CS02b", "CS02e", "CS02f", "CS02g")
VECTORS = [v for v in CORPUS if any(f in v.folder for f in FOLDERS)]
NO = bytes.fromhex("90B3D51F30020000")
SUPPLIER = bytes.fromhex("90B3D51F30010000")
ACB = bytes.fromhex("90B3D51F30000002")


def _params() -> list:
    if not VECTORS:
        return [pytest.param(None, marks=pytest.mark.skip(reason=SKIP_REASON), id="no-rtds")]
    return [pytest.param(v, id=v.name.removesuffix("_GBCS.HEX")) for v in VECTORS]


def _decoded(vector: RtdsVector) -> tuple[int, Asn1Payload, bytes]:
    message, _ = decode_message(vector.data)
    payload = asn1.decode(message.message_code, message.cra_flag, message.payload)
    return message.message_code, payload, message.payload


def _vector(corpus: list[RtdsVector], name: str) -> tuple[int, Asn1Payload, bytes]:
    return _decoded(next(v for v in corpus if v.name.startswith(name)))


# --- RTDS -------------------------------------------------------------------------------


def test_every_credentials_vector_is_covered() -> None:
    if not VECTORS:
        pytest.skip(SKIP_REASON)
    assert len(VECTORS) == 90  # 8 CS02a, 41 CS02b, 6 CS02e, 8 CS02f (0x011B), 27 CS02g


@pytest.mark.parametrize("vector", _params())
def test_typed_roundtrip_on_reference(vector: RtdsVector) -> None:
    code, payload, raw = _decoded(vector)
    typed = TYPES[payload.type_name].from_payload(payload)
    assert asn1.encode(typed.to_payload()) == raw
    if isinstance(typed, UpdateSecurityCredentials):
        assert typed.message_code == code  # CS02b: 0x0100 + mode; CS02g: 0x0125/0x0126


def test_cs02a_reference_values(corpus: list[RtdsVector]) -> None:
    _, command, _ = _vector(corpus, "CS02aMAC_6.24.1_SUCCESS_COMMAND")
    assert ProvideCredentialDetails.from_payload(command) == ProvideCredentialDetails(
        TrustAnchorCell(RemotePartyRole.ACCESS_CONTROL_BROKER, KA_KEY_USAGE), (2, 3)
    )
    _, response, raw = _vector(corpus, "CS02aMAC_6.24.1_SUCCESS_RESPONSE")
    details = CredentialDetails.from_payload(response)
    assert raw[:4] == bytes.fromhex("3082009F")  # the device's 82 00 xx length survives
    supplier = details.for_role(RemotePartyRole.SUPPLIER)
    assert supplier is not None and supplier.status is CredentialStatus.SUCCESS
    assert supplier.current_seq_number == 0
    assert [(c.key_usage.usage, c.cell_usage) for c in supplier.cells or ()] == [
        (KeyUsage.DS, 0),
        (KeyUsage.KA, 0),
        (KeyUsage.KA, 1),  # the prepayment top-up cell
    ]
    network = details.for_role(RemotePartyRole.NETWORK_OPERATOR)
    assert network is not None and network.current_seq_number == 1
    assert network.cells == (
        TrustAnchorCellContents(DS_KEY_USAGE, NO, bytes.fromhex("48CF97FA9F827FB5")),
        TrustAnchorCellContents(KA_KEY_USAGE, NO, bytes.fromhex("4BC9D38D1CB49F2A")),
    )
    _, error, _ = _vector(corpus, "CS02aMAC_6.24.1_ERROR_RESPONSE")
    missing = CredentialDetails.from_payload(error).for_role(RemotePartyRole.NETWORK_OPERATOR)
    assert missing == RemotePartyDetails(
        RemotePartyRole.NETWORK_OPERATOR, CredentialStatus.TRUST_ANCHOR_NOT_FOUND
    )


def test_cs02b_reference_values(corpus: list[RtdsVector]) -> None:
    code, payload, _ = _vector(corpus, "CS02bNOByNO_6.15.1_SUCCESS_COMMAND")
    command = UpdateSecurityCredentials.from_payload(payload)
    assert code == 0x0103 and command.mode is CredentialsReplacementMode(3)
    assert command.control == AuthorisingControl(
        3, 1200, TrustAnchorCell(RemotePartyRole.NETWORK_OPERATOR, DS_KEY_USAGE), new_floor=0
    )
    assert [r.target.key_usage for r in command.replacements] == [DS_KEY_USAGE, KA_KEY_USAGE]
    for replacement in command.replacements:
        cert = x509.load_der_x509_certificate(replacement.certificate)
        assert certificate_party(cert) == (NO, RemotePartyRole.NETWORK_OPERATOR)
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        assert usage.digital_signature == (replacement.target.key_usage.usage is KeyUsage.DS)
    assert len(command.certification_path) == 1 and command.execution_time is None
    _, payload, _ = _vector(corpus, "CS02bNOByNO_6.15.1_SUCCESS_RESPONSE")
    outcome = UpdateCredentialsResponse.from_payload(payload).outcome
    assert outcome is not None and outcome.succeeded
    assert outcome.authorising_seq_number == 1200
    assert outcome.seq_number_changes == (RemotePartySeqNumberChange(3, 0),)
    assert outcome.outcomes[0] == ReplacementOutcome(
        TrustAnchorCell(3, DS_KEY_USAGE),
        CredentialStatus.SUCCESS,
        NO,
        bytes.fromhex("48CF97FA9F827FB5"),
        NO,
        bytes.fromhex("4238D306B6F725A2"),
    )
    # accessControlBrokerByACB: MAC only, so no authorising cell, one KA cell replaced.
    code, payload, _ = _vector(corpus, "CS02bACBByACB_8.5_SUCCESS_COMMAND")
    acb = UpdateSecurityCredentials.from_payload(payload)
    assert code == 0x0104 and acb.control.authorising_cell is None
    assert [r.target for r in acb.replacements] == [TrustAnchorCell(4, KA_KEY_USAGE)]
    # Future dated: accepted with no outcome, which comes in the 0x00CB alert.
    _, payload, _ = _vector(corpus, "CS02bSupplierBySupplier_6.15.1_FUTURE_DATED_SUCCESS_RESPONSE")
    assert UpdateCredentialsResponse.from_payload(payload) == UpdateCredentialsResponse()
    _, payload, _ = _vector(corpus, "CS02bSupplierBySupplier_6.15.1_8F66")
    alert = UpdateCredentialsAlert.from_payload(payload)
    assert alert.alert_code == 0x8F66
    assert alert.execution_time == dt.datetime(2030, 1, 15, tzinfo=dt.UTC)
    assert alert.outcome.seq_number_changes[0].specialist_floors == (SpecialistSeqNumber(0, 0),)
    _, payload, _ = _vector(corpus, "CS02bSupplierBySupplier_6.15.1_IMMEDIATE_ERROR_RESPONSE")
    error = UpdateCredentialsResponse.from_payload(payload).outcome
    assert error is not None and not error.succeeded
    assert [o.status for o in error.outcomes] == [
        CredentialStatus.SUCCESS,
        CredentialStatus.NO_TRUST_ANCHOR,
        CredentialStatus.SUCCESS,
    ]


def test_cs02e_reference_values(corpus: list[RtdsVector]) -> None:
    _, payload, _ = _vector(corpus, "CS02e_6.24.2_SUCCESS_COMMAND")
    assert ProvideDeviceCertificate.from_payload(payload).key_usage.usage is KeyUsage.DS
    _, payload, _ = _vector(corpus, "CS02e_6.24.2_SUCCESS_RESPONSE")
    answer = DeviceCertificate.from_payload(payload)
    assert answer.certificate is not None and answer.response_code is None
    cert = x509.load_der_x509_certificate(answer.certificate)
    assert certificate_party(cert) == (bytes.fromhex("00DB1234567890A0"), None)  # the ESME
    _, payload, _ = _vector(corpus, "CS02e_6.24.2_ERROR_RESPONSE")
    failure = DeviceCertificate.from_payload(payload)
    assert failure.response_code is DeviceCertificateResult.CERTIFICATE_RETRIEVAL_FAILURE


# --- Values -------------------------------------------------------------------------------


def test_key_usage_bits() -> None:
    ds = asn1.encode(ProvideDeviceCertificate(DS_KEY_USAGE).to_payload())
    ka = asn1.encode(ProvideDeviceCertificate(KeyUsageBits.of(KeyUsage.KA)).to_payload())
    assert ds.hex() == "300403020780" and ka.hex() == "300403020308"
    assert KeyUsageBits.DS.usage is KeyUsage.DS and KeyUsageBits.KA.usage is KeyUsage.KA
    assert KeyUsageBits(b"\x20", 3).usage is None  # keyEncipherment
    with pytest.raises(EncodeError):
        KeyUsageBits.of(KeyUsage.PP_KA)
    with pytest.raises(EncodeError):
        KeyUsageBits(b"\x80\x00", 1)  # a whole unused byte


@given(st.binary(min_size=1, max_size=3), st.integers(0, 7))
def test_key_usage_bits_never_change_on_the_wire(value: bytes, unused: int) -> None:
    """Set bits past the length were cleared by the DER encoder: another value, silently."""
    length = 8 * len(value) - unused
    try:
        bits = KeyUsageBits(value, length)
    except EncodeError:
        assert value[-1] & ((1 << unused) - 1)
        return
    wire = asn1.encode(ProvideDeviceCertificate(bits).to_payload())
    back = ProvideDeviceCertificate.from_payload(
        asn1.decode_type("ProvideDeviceCertificateCommand", wire)
    )
    assert back.key_usage == bits


def test_unknown_status_code_is_an_encode_error() -> None:
    cell = TrustAnchorCell(3, DS_KEY_USAGE)
    with pytest.raises(EncodeError, match="255 is not a credentials status code"):
        RemotePartyDetails(2, 255).to_value()  # type: ignore[arg-type]
    with pytest.raises(EncodeError, match="6 is not a credentials status code"):
        ReplacementOutcome(cell, 6, bytes(8), b"", bytes(8), b"").to_value()  # type: ignore[arg-type]


def test_modes_and_message_codes() -> None:
    codes = [m.message_code for m in CredentialsReplacementMode]
    assert codes == [*range(0x0100, 0x010A), 0x0125, 0x0126]
    for mode in CredentialsReplacementMode:
        assert CredentialsReplacementMode.for_message_code(mode.message_code) is mode
    assert CredentialsReplacementMode.for_message_code(0x0008) is None
    mode = CredentialsReplacementMode.NETWORK_OPERATOR_BY_NETWORK_OPERATOR
    assert mode.replaced_role is mode.authorising_role is RemotePartyRole.NETWORK_OPERATOR
    mode = CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
    assert mode.replaced_role is RemotePartyRole.SUPPLIER
    assert mode.authorising_role is RemotePartyRole.TRANSITIONAL_COS
    assert CredentialsReplacementMode.ANY_BY_CONTINGENCY.replaced_role is None


def test_cs02e_choice_arms() -> None:
    wire = asn1.encode(DeviceCertificate(response_code=2).to_payload())
    assert wire == b"\x02\x01\x02"
    back = DeviceCertificate.from_payload(
        asn1.decode_type("ProvideDeviceCertificateResponse", wire)
    )
    assert back.response_code is DeviceCertificateResult.NO_CERTIFICATE_HELD
    unknown = asn1.decode_type("ProvideDeviceCertificateResponse", b"\x02\x01\x09")
    assert DeviceCertificate.from_payload(unknown).response_code == 9


# --- Error paths -----------------------------------------------------------------------


def test_wrong_payload_type_is_refused() -> None:
    payload = DeviceCertificate(response_code=1).to_payload()
    for kind in (CredentialDetails, UpdateSecurityCredentials, ProvideDeviceCertificate):
        with pytest.raises(DecodeError, match="expected"):
            kind.from_payload(payload)


def test_invalid_values_are_refused() -> None:
    with pytest.raises(EncodeError, match="not both"):
        DeviceCertificate()
    with pytest.raises(EncodeError, match="not both"):
        DeviceCertificate(b"\x30\x00", 2)
    with pytest.raises(EncodeError, match="8 bytes"):
        RemotePartyDetails(
            2, CredentialStatus.SUCCESS, 0, (TrustAnchorCellContents(DS_KEY_USAGE, b"1234", b""),)
        ).to_value()
    with pytest.raises(EncodeError, match="not a DER certificate"):
        TrustAnchorReplacement(b"\x30\x03\x02\x01\x00", TrustAnchorCell(3, DS_KEY_USAGE)).to_value()
    with pytest.raises(EncodeError, match="not a replacement mode"):
        _ = UpdateSecurityCredentials(AuthorisingControl(42, 1), ()).message_code
    with pytest.raises(EncodeError):  # SeqNumber is a uint64
        asn1.encode(CredentialDetails((RemotePartyDetails(2, 0, -1, ()),)).to_payload())
    with pytest.raises(DecodeError, match="unknown status"):
        CredentialStatus.from_asn1("splendid")


def test_malformed_bytes_are_refused() -> None:
    good = asn1.encode(ProvideDeviceCertificate(DS_KEY_USAGE).to_payload())
    with pytest.raises(DecodeError):
        asn1.decode(0x000C, 1, good[:-1])
    with pytest.raises(DecodeError):
        asn1.decode(0x000C, 1, good + b"\x00")


# --- Hypothesis round trips ---------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates() -> list[bytes]:
    pki = TestPki.default_cast(3)
    return [
        p.certificate(u).public_bytes(serialization.Encoding.DER)
        for p in pki
        for u in (KeyUsage.KA, KeyUsage.DS)
    ]


ids8 = st.binary(min_size=8, max_size=8)
u64 = st.integers(0, 2**64 - 1)
roles = st.sampled_from(list(RemotePartyRole)) | st.integers(0, 200)
statuses = st.sampled_from(list(CredentialStatus))
usages = st.sampled_from([DS_KEY_USAGE, KA_KEY_USAGE, KeyUsageBits(b"\x20", 3)])
cells = st.builds(TrustAnchorCell, roles, usages, st.integers(0, 1))
cell_contents = st.builds(
    TrustAnchorCellContents, usages, ids8, st.binary(max_size=20), st.integers(0, 1)
)
party_details = st.builds(
    RemotePartyDetails,
    roles,
    statuses,
    st.none() | u64,
    st.none() | st.lists(cell_contents, max_size=3).map(tuple),
)
specialists = st.lists(st.builds(SpecialistSeqNumber, st.just(0), u64), max_size=2).map(tuple)
changes = st.builds(RemotePartySeqNumberChange, roles, u64, st.none() | specialists)
modes = st.sampled_from(list(CredentialsReplacementMode))
controls = st.builds(
    AuthorisingControl,
    modes,
    u64,
    st.none() | cells,
    st.none() | u64,
    st.none() | specialists,
    st.none() | st.lists(changes, max_size=2).map(tuple),
    st.none() | st.binary(max_size=16),
    st.none() | st.integers(0, 1),
)
outcomes = st.builds(
    UpdateOutcome,
    u64,
    modes,
    st.lists(changes, max_size=2).map(tuple),
    st.lists(
        st.builds(ReplacementOutcome, cells, statuses, ids8, st.binary(max_size=8), ids8, ids8),
        max_size=3,
    ).map(tuple),
)
times = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(9999, 12, 31, 23, 59, 59)
).map(lambda t: t.replace(microsecond=0, tzinfo=dt.UTC))


def _roundtrip(typed: object) -> object:
    payload = typed.to_payload()  # type: ignore[attr-defined]
    wire = asn1.encode(payload)
    back = type(typed).from_payload(asn1.decode_type(payload.type_name, wire))  # type: ignore[attr-defined]
    assert asn1.encode(back.to_payload()) == wire
    return back


@given(cell=cells, wanted=st.lists(roles, max_size=5).map(tuple))
def test_cs02a_command_roundtrip(cell: TrustAnchorCell, wanted: tuple[int, ...]) -> None:
    typed = ProvideCredentialDetails(cell, wanted)
    assert _roundtrip(typed) == typed


@given(st.lists(party_details, max_size=4).map(tuple))
def test_cs02a_response_roundtrip(parties: tuple[RemotePartyDetails, ...]) -> None:
    typed = CredentialDetails(parties)
    assert _roundtrip(typed) == typed


@settings(max_examples=50)
@given(data=st.data(), control=controls, when=st.none() | times)
def test_cs02b_command_roundtrip(
    certificates: list[bytes],
    data: st.DataObject,
    control: AuthorisingControl,
    when: dt.datetime | None,
) -> None:
    certs = st.sampled_from(certificates)
    replacements = data.draw(
        st.lists(st.builds(TrustAnchorReplacement, certs, cells), max_size=3).map(tuple)
    )
    path = data.draw(st.lists(certs, max_size=2).map(tuple))
    typed = UpdateSecurityCredentials(control, replacements, path, when)
    assert _roundtrip(typed) == typed


@given(outcome=st.none() | outcomes)
def test_cs02b_response_roundtrip(outcome: UpdateOutcome | None) -> None:
    typed = UpdateCredentialsResponse(outcome)
    assert _roundtrip(typed) == typed


@given(code=st.integers(0, 0xFFFF), when=times, outcome=outcomes)
def test_cs02b_alert_roundtrip(code: int, when: dt.datetime, outcome: UpdateOutcome) -> None:
    typed = UpdateCredentialsAlert(code, when, outcome)
    assert _roundtrip(typed) == typed


@given(data=st.data())
def test_cs02e_roundtrip(certificates: list[bytes], data: st.DataObject) -> None:
    usage = data.draw(usages)
    assert _roundtrip(ProvideDeviceCertificate(usage)) == ProvideDeviceCertificate(usage)
    answer = data.draw(
        st.builds(DeviceCertificate, st.sampled_from(certificates))
        | st.builds(DeviceCertificate, response_code=st.integers(0, 2**31))
    )
    assert _roundtrip(answer) == answer
