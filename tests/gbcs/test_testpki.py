"""The emulators' test PKI: certificates shaped like the RTDS ones, and readable back."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gbcs.errors import DecodeError, EncodeError, GbcsError
from gbcs.keys import FileKeyStore, KeyUsage
from gbcs.testpki import (
    DEFAULT_DEVICES,
    DEFAULT_ORGANISATIONS,
    DEVICE_POLICY_OID,
    HARDWARE_MODULE_NAME_OID,
    ORGANISATION_POLICY_OID,
    Party,
    RemotePartyRole,
    TestPki,
    certificate_party,
)

USAGES = (KeyUsage.KA, KeyUsage.DS)


@pytest.fixture(scope="module")
def pki() -> TestPki:
    return TestPki.default_cast(seed=20240601)


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _rtds_certificates(rtds_root: Path) -> dict[str, x509.Certificate]:
    out = {}
    for path in sorted((rtds_root / "keystore").glob("*.pem")):
        data = path.read_bytes()
        if b"CERTIFICATE" in data:  # one file is a bare public key
            out[path.name] = x509.load_pem_x509_certificate(data)
    return out


def test_default_cast_mirrors_rtds_identifiers(pki: TestPki) -> None:
    """CRIB §1.2: the emulated world uses the RTDS ids so traces read the same."""
    assert {p.eui64.hex().upper(): p.role for p in pki} == {
        "90B3D51F30000002": RemotePartyRole.ACCESS_CONTROL_BROKER,
        "90B3D51F30010000": RemotePartyRole.SUPPLIER,
        "90B3D51F30020000": RemotePartyRole.NETWORK_OPERATOR,
        "90B3D51F30030000": RemotePartyRole.SUPPLIER,
        "90B3D51F30020001": RemotePartyRole.NETWORK_OPERATOR,  # the kit's second region
        "00DB1234567890A0": None,
        "00DB1234567890A1": None,
        "00DB1234567890A2": None,
        "00DB1234567890A3": None,
    }
    assert pki.party("esme").eui64 == DEFAULT_DEVICES["esme"]
    assert pki.party("90b3d51f30000002").name == "acb"
    assert pki.party(DEFAULT_ORGANISATIONS["supplier"][0]).role is RemotePartyRole.SUPPLIER
    with pytest.raises(GbcsError):
        pki.party("nobody")


def test_certificates_verify_against_the_issuer(pki: TestPki) -> None:
    issuer = pki.issuer_certificate
    issuer.verify_directly_issued_by(issuer)  # self-signed root
    assert issuer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for party in pki:
        for usage in USAGES:
            cert = party.certificate(usage)
            cert.verify_directly_issued_by(issuer)
            issuer.public_key().verify(
                cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(hashes.SHA256())
            )
            assert _point(cert.public_key()) == _point(party.private_key(usage).public_key())


def test_certificate_profile_matches_the_rtds_one(pki: TestPki) -> None:
    """P-256, ECDSA-SHA256, critical KeyUsage, 8-byte SKI, AKI = issuer SKI, policies (§3)."""
    issuer_ski = pki.issuer_certificate.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier
    ).value.digest
    for party in pki:
        for usage in USAGES:
            cert = party.certificate(usage)
            assert cert.version is x509.Version.v3
            assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
            key = cert.public_key()
            assert isinstance(key, ec.EllipticCurvePublicKey)
            assert isinstance(key.curve, ec.SECP256R1)
            ku = cert.extensions.get_extension_for_class(x509.KeyUsage)
            assert ku.critical
            assert ku.value.key_agreement is (usage is KeyUsage.KA)
            assert ku.value.digital_signature is (usage is KeyUsage.DS)
            assert not ku.value.key_cert_sign
            ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            assert len(ski.digest) == 8
            aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
            assert aki.key_identifier == issuer_ski
            policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
            assert policies.critical
            expected = DEVICE_POLICY_OID if party.is_device else ORGANISATION_POLICY_OID
            assert [p.policy_identifier for p in policies.value] == [expected]
            if party.is_device:
                assert len(cert.subject) == 0
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                assert san.critical
                assert [o.type_id for o in san.value] == [HARDWARE_MODULE_NAME_OID]
            else:
                with pytest.raises(x509.ExtensionNotFound):
                    cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)


def test_identity_encoding_is_byte_identical_to_rtds(pki: TestPki, rtds_root: Path) -> None:
    """Subject (OU UTF8String + x500UniqueIdentifier BIT STRING) and hwModuleName SAN."""
    rtds = _rtds_certificates(rtds_root)
    acb = pki.party("acb").ka_cert
    assert acb.subject.public_bytes() == rtds["90b3d51f30000002-ka.pem"].subject.public_bytes()
    assert bytes.fromhex("0309 0090B3D51F30000002") in acb.subject.public_bytes()
    ours = (
        pki.party("esme")
        .ka_cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.public_bytes()
    )
    theirs = (
        rtds["00db1234567890a0-ka.pem"]
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value.public_bytes()
    )
    assert ours == theirs


def test_certificate_party_round_trips(pki: TestPki) -> None:
    for party in pki:
        for usage in USAGES:
            assert certificate_party(party.certificate(usage)) == (party.eui64, party.role)
    extra = TestPki.generate(seed=5)
    lc = extra.add_organisation(
        "90B3D51F30010008", RemotePartyRole.LOAD_CONTROLLER, common_name="TEST LOAD CONTROLLER"
    )
    assert certificate_party(lc.ds_cert) == (
        bytes.fromhex("90B3D51F30010008"),
        RemotePartyRole.LOAD_CONTROLLER,
    )
    with pytest.raises(DecodeError):
        certificate_party(extra.issuer_certificate)  # OU=07 but no party id


def test_certificate_party_reads_rtds_certificates(rtds_root: Path) -> None:
    """Every RTDS certificate names the file's party, except the one CRIB §1.2 warns of."""
    mismatched = {}
    roles = {}
    for name, cert in _rtds_certificates(rtds_root).items():
        party, role = certificate_party(cert)
        if party != bytes.fromhex(name[:16]):
            mismatched[name] = party.hex().upper()
        roles[name[:16]] = role
        assert (role is None) == name.startswith("00db")
    assert mismatched == {"90b3d51f30000007-ka.pem": "90B3D51F30030000"}
    assert roles["90b3d51f30000002"] is RemotePartyRole.ACCESS_CONTROL_BROKER
    assert roles["90b3d51f30010008"] is RemotePartyRole.LOAD_CONTROLLER
    assert roles["90b3d51f30000004"] is RemotePartyRole.TRANSITIONAL_COS
    assert roles["90b3d51f30000001"] is RemotePartyRole.RECOVERY


def _files(folder: Path) -> dict[str, bytes | str]:
    return {p.name: "folder" if p.is_dir() else p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_keystore_that_cannot_be_written_whole_keeps_the_one_before(tmp_path: Path) -> None:
    """A write failing part-way (a folder where one key goes, a full disk) left a store
    half one seed's and half another's, whose signatures and MACs then failed with no
    word why (helper audit): now it is all or nothing."""
    keys = tmp_path / "keys"
    TestPki.default_cast(1).write(keys)
    (keys / "00db1234567890a2-ds.key").unlink()
    (keys / "00db1234567890a2-ds.key").mkdir()
    before = _files(keys)
    with pytest.raises(IsADirectoryError, match=r"00db1234567890a2-ds\.key"):
        TestPki.default_cast(2).write(keys)
    assert _files(keys) == before  # every file still seed 1's, nothing staged left


def test_a_new_keystore_that_cannot_be_written_leaves_no_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("gbcs.testpki.write_together", full_disk)
    (tmp_path / "a").mkdir()
    with pytest.raises(OSError, match="No space left"):
        TestPki.default_cast(1).write(tmp_path / "a" / "b" / "keys")
    assert _files(tmp_path) == {"a": "folder"} and _files(tmp_path / "a") == {}


def test_written_private_keys_are_the_owners_alone_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        written = TestPki.default_cast(1).write(tmp_path / "keys")
    finally:
        os.umask(previous)
    modes = {p.suffix: p.stat().st_mode & 0o777 for p in written}
    assert modes == {".key": 0o600, ".pem": 0o666}


def test_written_folder_reads_back_through_file_keystore(pki: TestPki, tmp_path: Path) -> None:
    written = pki.write(tmp_path / "keys")
    names = {p.name for p in written}
    assert "90b3d51f30010000-ka.pem" in names and "00db1234567890a2-ds.key" in names
    store = FileKeyStore(tmp_path / "keys")
    assert set(store.parties()) == {(p.eui64, u) for p in pki for u in USAGES}
    for party in pki:
        for usage in USAGES:
            assert _point(store.public_key(party.eui64, usage)) == _point(
                party.certificate(usage).public_key()
            )
            assert store.has_private_key(party.eui64, usage)
            assert (
                store.private_key(party.eui64, usage).private_numbers()
                == party.private_key(usage).private_numbers()
            )
            cert = store.certificate(party.eui64, usage)
            assert cert is not None and _der(cert) == _der(party.certificate(usage))
    issuer = x509.load_pem_x509_certificate((tmp_path / "keys/issuing-authority.pem").read_bytes())
    assert _der(issuer) == _der(pki.issuer_certificate)


def test_memory_keystore_holds_every_private_key(pki: TestPki) -> None:
    store = pki.keystore()
    for party in pki:
        for usage in USAGES:
            assert store.private_key(party.eui64, usage) is party.private_key(usage)
            assert store.certificate(party.eui64, usage) is party.certificate(usage)


def _fingerprint(pki: TestPki) -> list[tuple[bytes, int, int]]:
    return [
        (
            p.eui64,
            p.ka_private.private_numbers().private_value,
            p.ds_private.private_numbers().private_value,
        )
        for p in pki
    ]


def test_seed_makes_the_pki_reproducible() -> None:
    a, b = TestPki.default_cast(seed=42), TestPki.default_cast(seed=42)
    assert _fingerprint(a) == _fingerprint(b)
    assert _point(a.issuer_key.public_key()) == _point(b.issuer_key.public_key())
    for pa, pb in zip(a, b, strict=True):
        for usage in USAGES:
            ca, cb = pa.certificate(usage), pb.certificate(usage)
            assert ca.serial_number == cb.serial_number
            assert ca.tbs_certificate_bytes == cb.tbs_certificate_bytes
            if a.byte_identical:
                assert _der(ca) == _der(cb)
    c = TestPki.default_cast(seed=43)
    assert all(x[1] != y[1] for x, y in zip(_fingerprint(a), _fingerprint(c), strict=True))
    unseeded = [TestPki.generate().issuer_key.private_numbers().private_value for _ in range(2)]
    assert unseeded[0] != unseeded[1]


def test_ka_and_ds_keys_differ_within_a_party(pki: TestPki) -> None:
    keys = [k for p in pki for k in (p.ka_private, p.ds_private)]
    assert len({k.private_numbers().private_value for k in keys}) == len(keys)


def test_bad_requests_are_refused() -> None:
    pki = TestPki.generate(seed=1)
    pki.add_device("00DB1234567890A0")
    with pytest.raises(EncodeError):
        pki.add_device(bytes.fromhex("00DB1234567890A0"))  # already certified
    with pytest.raises(EncodeError):
        pki.add_organisation("90B3D51F30000009", RemotePartyRole.ISSUING_AUTHORITY)
    with pytest.raises(EncodeError):
        pki.add_organisation("90B3D51F30000009", 99)
    with pytest.raises(EncodeError):
        pki.add_device("00DB12")
    with pytest.raises(GbcsError):
        pki.party("00DB1234567890A0").private_key(KeyUsage.PP_KA)


def test_party_is_immutable(pki: TestPki) -> None:
    party: Party = pki.party("gsme")
    with pytest.raises(AttributeError):
        party.eui64 = b"\x00" * 8  # type: ignore[misc]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")
def test_openssl_parses_and_verifies_generated_certificates(pki: TestPki, tmp_path: Path) -> None:
    pki.write(tmp_path)

    def openssl(*args: str) -> str:
        proc = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, timeout=30, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    device = openssl("x509", "-noout", "-text", "-in", str(tmp_path / "00db1234567890a0-ka.pem"))
    assert "1.3.6.1.5.5.7.8.4" in device  # otherName hardwareModuleName
    assert "Subject Alternative Name: critical" in device
    assert "Key Agreement" in device
    org = openssl("x509", "-noout", "-text", "-in", str(tmp_path / "90b3d51f30010000-ds.pem"))
    assert "OU = 02, x500UniqueIdentifier = #03090090B3D51F30010000" in org
    assert "Digital Signature" in org
    assert "Issuer: OU = 07, CN = Z1TEST" in org
    out = openssl(
        "verify",
        "-CAfile",
        str(tmp_path / "issuing-authority.pem"),
        str(tmp_path / "00db1234567890a0-ka.pem"),
        str(tmp_path / "90b3d51f30010000-ds.pem"),
    )
    assert out.count(": OK") == 2
