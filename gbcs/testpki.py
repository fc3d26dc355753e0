"""A throw-away PKI for the emulators and tests, shaped like the SMKI test certificates.

Emulated devices and remote parties need KA and DS key pairs with certificates
that look like the ones GBCS carries (CRIB §1.2, §3; the RTDS keystore is the
model): P-256 keys, ECDSA-SHA256 signatures, a critical KeyUsage with exactly
one of keyAgreement / digitalSignature, an 8-byte SubjectKeyIdentifier and an
AuthorityKeyIdentifier pointing at the issuer.

* Organisation certificates name the party in the subject: ``OU`` = the
  two-digit remote-party role and ``x500UniqueIdentifier`` = the EUI-64 as a
  BIT STRING (``03 09 00 <8 bytes>``), exactly as the RTDS encodes it.
* Device certificates have an empty subject and a critical subjectAltName
  holding one otherName ``hardwareModuleName`` (RFC 4108, OID
  1.3.6.1.5.5.7.8.4) = ``SEQUENCE { hwType OID, hwSerialNum OCTET STRING(8) }``
  with the device EUI-64 as serial number.

One self-signed issuing authority (subject ``OU=07, CN=...``, role 7 in CRIB
§5.2) signs everything; the real SMKI splits organisation and device issuing
CAs under a root, which no GBCS message exchange here depends on. These keys
are for emulation only: they must never meet a live device or the DCC.

With a seed, every private key is derived from SHA-256(seed, label) so the
same seed always gives the same parties; serials and dates are fixed too, and
certificate signatures use RFC 6979 deterministic ECDSA where the installed
``cryptography`` supports it (:attr:`TestPki.byte_identical`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import enum
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID, ObjectIdentifier

from gbcs.errors import DecodeError, EncodeError, GbcsError
from gbcs.files import write_together
from gbcs.keys import KeyUsage, MemoryKeyStore
from gbcs.primitives import Reader, encode_length, eui64

__all__ = [
    "DEFAULT_DEVICES",
    "DEFAULT_ORGANISATIONS",
    "DEVICE_POLICY_OID",
    "HARDWARE_MODULE_NAME_OID",
    "HW_TYPE_OID",
    "ORGANISATION_POLICY_OID",
    "ORGANISATION_ROLES",
    "Party",
    "RemotePartyRole",
    "TestPki",
    "certificate_party",
    "hardware_module_name",
]


class RemotePartyRole(enum.IntEnum):
    """GBCS ``RemotePartyRole`` (CRIB §5.2); organisation certificates carry it as OU."""

    ROOT = 0
    RECOVERY = 1
    SUPPLIER = 2
    NETWORK_OPERATOR = 3
    ACCESS_CONTROL_BROKER = 4
    TRANSITIONAL_COS = 5
    WAN_PROVIDER = 6
    ISSUING_AUTHORITY = 7
    LOAD_CONTROLLER = 8
    OTHER = 127

    @property
    def ou(self) -> str:
        """The two-digit OU text of the certificate subject (``02`` for a supplier)."""
        return f"{int(self):02d}"


# Roles that hold organisation KA/DS certificates (the RTDS has each of them).
ORGANISATION_ROLES = frozenset(
    {
        RemotePartyRole.RECOVERY,
        RemotePartyRole.SUPPLIER,
        RemotePartyRole.NETWORK_OPERATOR,
        RemotePartyRole.ACCESS_CONTROL_BROKER,
        RemotePartyRole.TRANSITIONAL_COS,
        RemotePartyRole.WAN_PROVIDER,
        RemotePartyRole.LOAD_CONTROLLER,
    }
)

HARDWARE_MODULE_NAME_OID = ObjectIdentifier("1.3.6.1.5.5.7.8.4")  # RFC 4108 id-on-hwModuleName
# Identifiers as the RTDS test certificates carry them (hwType and the two policies).
HW_TYPE_OID = ObjectIdentifier("1.2.826.0.1.8641679.1.2.2.1")
ORGANISATION_POLICY_OID = ObjectIdentifier("1.2.826.0.1.8641679.1.2.1.4")
DEVICE_POLICY_OID = ObjectIdentifier("1.2.826.0.1.1800000.1.2.1.4")

# The RTDS cast (CRIB §1.2), so emulated traffic uses the familiar identifiers, plus a
# second network operator (not in the RTDS): network operators are regional, and a meter
# from another region holds another operator's anchors (DESIGN §2).
DEFAULT_ORGANISATIONS: dict[str, tuple[bytes, RemotePartyRole]] = {
    "acb": (bytes.fromhex("90B3D51F30000002"), RemotePartyRole.ACCESS_CONTROL_BROKER),
    "supplier": (bytes.fromhex("90B3D51F30010000"), RemotePartyRole.SUPPLIER),
    "network_operator": (bytes.fromhex("90B3D51F30020000"), RemotePartyRole.NETWORK_OPERATOR),
    "supplier2": (bytes.fromhex("90B3D51F30030000"), RemotePartyRole.SUPPLIER),
    "network_operator2": (bytes.fromhex("90B3D51F30020001"), RemotePartyRole.NETWORK_OPERATOR),
}
DEFAULT_DEVICES: dict[str, bytes] = {
    "esme": bytes.fromhex("00DB1234567890A0"),
    "gsme": bytes.fromhex("00DB1234567890A1"),
    "chf": bytes.fromhex("00DB1234567890A2"),
    "gpf": bytes.fromhex("00DB1234567890A3"),
}

NOT_BEFORE = _dt.datetime(2020, 1, 1, tzinfo=_dt.UTC)
# Organisation certificates get a long but finite life; device certificates use
# the RFC 5280 "no well-defined expiration" value, as the RTDS device ones do.
ORGANISATION_NOT_AFTER = _dt.datetime(2119, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)
NO_EXPIRY = _dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=_dt.UTC)

_CURVE = ec.SECP256R1()
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_SEED_DOMAIN = b"gbcs-hil test PKI v1\x00"


# --- Small DER helpers (only what hwModuleName needs) -------------------------


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def _oid_der(oid: ObjectIdentifier) -> bytes:
    arcs = [int(a) for a in oid.dotted_string.split(".")]
    body = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def hardware_module_name(eui: bytes) -> bytes:
    """DER ``HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING }``."""
    return _tlv(0x30, _oid_der(HW_TYPE_OID) + _tlv(0x04, eui64(eui)))


def _read_hardware_module_name(value: bytes) -> bytes:
    r = Reader(value, "certificate")
    r.expect(0x30, "hwModuleName SEQUENCE")
    inner = r.sub(r.length("hwModuleName length"), "hwModuleName")
    r.finish()
    inner.expect(0x06, "hwType")
    inner.take(inner.length("hwType length"), "hwType")
    inner.expect(0x04, "hwSerialNum")
    serial = inner.take(inner.length("hwSerialNum length"), "hwSerialNum")
    inner.finish()
    if len(serial) != 8:
        raise DecodeError(
            "certificate", "hwSerialNum", 0, f"a device id is 8 bytes, found {len(serial)}"
        )
    return serial


# --- Reading a certificate back -----------------------------------------------


def role_label(role: RemotePartyRole | None) -> str:
    """A role as messages name it (``network operator``); ``device`` for None."""
    return "device" if role is None else role.name.lower().replace("_", " ")


def certificate_party(cert: x509.Certificate) -> tuple[bytes, RemotePartyRole | None]:
    """The EUI-64 a GBCS certificate names and its role (None for a device certificate).

    Works on RTDS certificates and on this module's: a device is recognised by
    the hwModuleName otherName, an organisation by the x500UniqueIdentifier.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    except (ValueError, x509.DuplicateExtension) as e:  # extensions are parsed lazily
        raise DecodeError("certificate", "extensions", 0, f"cannot be read ({e})") from None
    if san is not None:
        for other in san.get_values_for_type(x509.OtherName):
            if other.type_id == HARDWARE_MODULE_NAME_OID:
                return _read_hardware_module_name(other.value), None
    ids = cert.subject.get_attributes_for_oid(NameOID.X500_UNIQUE_IDENTIFIER)
    ous = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if len(ids) != 1 or len(ous) != 1:
        raise DecodeError(
            "certificate",
            "subject",
            0,
            "names neither a device (hwModuleName) "
            "nor an organisation (one OU and one x500UniqueIdentifier)",
        )
    raw = ids[0].value
    # BIT STRING content as cryptography returns it: unused-bits byte 0, then the id.
    if not isinstance(raw, bytes) or len(raw) != 9 or raw[0] != 0:
        raise DecodeError(
            "certificate", "x500UniqueIdentifier", 0, "expected a BIT STRING of 64 bits"
        )
    ou = ous[0].value
    try:
        role = RemotePartyRole(int(ou))
    except ValueError:
        raise DecodeError("certificate", "OU", 0, f"{ou!r} is not a remote-party role") from None
    return raw[1:], role


# --- The PKI --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Party:
    """One emulated party: both key pairs and their certificates.

    ``role`` is None for a device. ``name`` is a label for logs and look-ups.
    """

    eui64: bytes
    role: RemotePartyRole | None
    ka_private: ec.EllipticCurvePrivateKey = field(repr=False)
    ds_private: ec.EllipticCurvePrivateKey = field(repr=False)
    ka_cert: x509.Certificate = field(repr=False)
    ds_cert: x509.Certificate = field(repr=False)
    name: str = ""

    @property
    def is_device(self) -> bool:
        return self.role is None

    def private_key(self, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
        if usage is KeyUsage.KA:
            return self.ka_private
        if usage is KeyUsage.DS:
            return self.ds_private
        raise GbcsError(f"the test PKI issues no {usage.value} keys")

    def certificate(self, usage: KeyUsage) -> x509.Certificate:
        if usage is KeyUsage.KA:
            return self.ka_cert
        if usage is KeyUsage.DS:
            return self.ds_cert
        raise GbcsError(f"the test PKI issues no {usage.value} certificates")


def _ski(public: ec.EllipticCurvePublicKey) -> bytes:
    """8-byte key identifier: leftmost 64 bits of SHA-256 of the public point (RFC 7093 §2)."""
    point = public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return hashlib.sha256(point).digest()[:8]


class TestPki:
    """An issuing authority plus the organisations and devices it has certified."""

    __test__ = False  # not a pytest test class, whatever the importing module is called

    def __init__(self, seed: int | None = None, issuer_name: str = "Z1TEST") -> None:
        self.seed = seed
        self._parties: dict[bytes, Party] = {}
        self._deterministic_signing = seed is not None
        self.issuer_key = self._private_key(b"issuing-authority")
        self.issuer_ski = _ski(self.issuer_key.public_key())
        self.issuer_name = x509.Name(
            [
                x509.RelativeDistinguishedName(
                    [
                        x509.NameAttribute(
                            NameOID.ORGANIZATIONAL_UNIT_NAME,
                            RemotePartyRole.ISSUING_AUTHORITY.ou,
                            _ASN1Type.PrintableString,
                        )
                    ]
                ),
                x509.RelativeDistinguishedName(
                    [
                        x509.NameAttribute(
                            NameOID.COMMON_NAME, issuer_name, _ASN1Type.PrintableString
                        )
                    ]
                ),
            ]
        )
        builder = (
            self._builder(
                b"issuing-authority", self.issuer_name, self.issuer_key.public_key(), NO_EXPIRY
            )
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .add_extension(x509.SubjectKeyIdentifier(self.issuer_ski), critical=False)
        )
        self.issuer_certificate = self._sign(builder)

    # Construction ---------------------------------------------------------------
    @classmethod
    def generate(cls, seed: int | None = None, issuer_name: str = "Z1TEST") -> TestPki:
        """A new issuing authority with no parties yet; same seed, same keys."""
        return cls(seed, issuer_name)

    @classmethod
    def default_cast(cls, seed: int | None = None) -> TestPki:
        """The RTDS cast (CRIB §1.2): ACB, two suppliers, network operator, ESME/GSME/CHF/GPF;
        and a second network operator, of another region."""
        pki = cls(seed)
        for name, (eui, role) in DEFAULT_ORGANISATIONS.items():
            pki.add_organisation(eui, role, name=name)
        for name, eui in DEFAULT_DEVICES.items():
            pki.add_device(eui, name=name)
        return pki

    def add_organisation(
        self,
        eui: bytes | str,
        role: RemotePartyRole | int,
        *,
        name: str = "",
        common_name: str | None = None,
    ) -> Party:
        """Issue KA and DS certificates naming ``eui`` with ``role`` (OU) in the subject."""
        party_id = eui64(eui)
        try:
            role = RemotePartyRole(role)
        except ValueError:
            raise EncodeError(f"{role} is not a remote-party role") from None
        if role not in ORGANISATION_ROLES:
            raise EncodeError(f"role {role.name} does not hold organisation certificates")
        rdns = []
        if common_name is not None:
            rdns.append(
                x509.RelativeDistinguishedName(
                    [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
                )
            )
        rdns.append(
            x509.RelativeDistinguishedName(
                [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role.ou)]
            )
        )
        rdns.append(
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(
                        NameOID.X500_UNIQUE_IDENTIFIER, b"\x00" + party_id, _ASN1Type.BitString
                    )
                ]
            )
        )
        return self._add(
            party_id,
            role,
            name,
            x509.Name(rdns),
            None,
            ORGANISATION_POLICY_OID,
            ORGANISATION_NOT_AFTER,
        )

    def add_device(self, eui: bytes | str, *, name: str = "") -> Party:
        """Issue KA and DS device certificates: empty subject, hwModuleName = ``eui``."""
        party_id = eui64(eui)
        san = x509.SubjectAlternativeName(
            [x509.OtherName(HARDWARE_MODULE_NAME_OID, hardware_module_name(party_id))]
        )
        return self._add(party_id, None, name, x509.Name([]), san, DEVICE_POLICY_OID, NO_EXPIRY)

    def _add(
        self,
        party_id: bytes,
        role: RemotePartyRole | None,
        name: str,
        subject: x509.Name,
        san: x509.SubjectAlternativeName | None,
        policy: ObjectIdentifier,
        not_after: _dt.datetime,
    ) -> Party:
        if party_id in self._parties:
            raise EncodeError(f"{party_id.hex().upper()} already has certificates")
        keys: dict[KeyUsage, ec.EllipticCurvePrivateKey] = {}
        certs: dict[KeyUsage, x509.Certificate] = {}
        for usage in (KeyUsage.KA, KeyUsage.DS):
            label = party_id.hex().encode() + b"-" + usage.value.encode()
            private = self._private_key(label)
            public = private.public_key()
            builder = (
                self._builder(label, subject, public, not_after)
                .add_extension(
                    _key_usage(agreement=usage is KeyUsage.KA, signature=usage is KeyUsage.DS),
                    critical=True,
                )
                .add_extension(x509.SubjectKeyIdentifier(_ski(public)), critical=False)
            )
            if san is not None:
                # RFC 5280 §4.2.1.6: with an empty subject the SAN must be critical.
                builder = builder.add_extension(san, critical=True)
            builder = builder.add_extension(
                x509.CertificatePolicies([x509.PolicyInformation(policy, None)]), critical=True
            ).add_extension(
                x509.AuthorityKeyIdentifier(self.issuer_ski, None, None), critical=False
            )
            keys[usage] = private
            certs[usage] = self._sign(builder)
        party = Party(
            party_id,
            role,
            keys[KeyUsage.KA],
            keys[KeyUsage.DS],
            certs[KeyUsage.KA],
            certs[KeyUsage.DS],
            name,
        )
        self._parties[party_id] = party
        return party

    # Look-ups -------------------------------------------------------------------
    @property
    def parties(self) -> tuple[Party, ...]:
        return tuple(self._parties.values())

    def __iter__(self) -> Iterator[Party]:
        return iter(self.parties)

    def __len__(self) -> int:
        return len(self._parties)

    def party(self, ref: bytes | str) -> Party:
        """By EUI-64 (bytes or hex) or by the name given when it was added."""
        if isinstance(ref, str):
            for party in self._parties.values():
                if party.name and party.name == ref:
                    return party
        try:
            return self._parties[eui64(ref)]
        except (KeyError, EncodeError):
            raise GbcsError(f"the test PKI has no party {ref!r}") from None

    @property
    def byte_identical(self) -> bool:
        """True when the same seed reproduces every certificate byte for byte."""
        return self._deterministic_signing

    # Export -----------------------------------------------------------------------
    def keystore(self) -> MemoryKeyStore:
        """Private keys and certificates of every party (emulated devices sign and MAC too)."""
        store = MemoryKeyStore()
        for party in self._parties.values():
            for usage in (KeyUsage.KA, KeyUsage.DS):
                store.add(
                    party.eui64,
                    usage,
                    private=party.private_key(usage),
                    certificate=party.certificate(usage),
                )
        return store

    def write(self, folder: Path | str) -> list[Path]:
        """Write the RTDS keystore layout that :class:`gbcs.keys.FileKeyStore` reads.

        ``<eui>-ka.pem`` / ``-ds.pem`` certificates, ``<eui>-ka.key`` / ``-ds.key``
        unencrypted PKCS#8 PEM keys, and ``issuing-authority.pem`` (a name the
        key store ignores) for chain checks.
        """
        out = Path(folder)
        pem = serialization.Encoding.PEM
        files = [(out / "issuing-authority.pem", self.issuer_certificate.public_bytes(pem))]
        keys = []
        for party in self._parties.values():
            for usage in (KeyUsage.KA, KeyUsage.DS):
                stem = f"{party.eui64.hex()}-{usage.value}"
                key = out / f"{stem}.key"
                private = party.private_key(usage).private_bytes(
                    pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
                certificate = party.certificate(usage).public_bytes(pem)
                files += [(out / f"{stem}.pem", certificate), (key, private)]
                keys.append(key)
        made = [p for p in (out, *out.parents) if not p.exists()]
        out.mkdir(parents=True, exist_ok=True)
        try:
            # All or none: a store half this seed's and half an earlier one's would make
            # signatures and MACs fail with no word why.
            write_together(files, private=keys)
        except BaseException:
            for folder_made in made:  # only those it made, and only if still empty
                with contextlib.suppress(OSError):
                    folder_made.rmdir()
            raise
        return [path for path, _ in files]

    # Internals --------------------------------------------------------------------
    def _digest(self, label: bytes) -> bytes:
        return hashlib.sha256(_SEED_DOMAIN + str(self.seed).encode() + b"\x00" + label).digest()

    def _private_key(self, label: bytes) -> ec.EllipticCurvePrivateKey:
        """SHA-256(seed, label) reduced into [1, n-1]; the bias (< 2^-32) is harmless here."""
        if self.seed is None:
            return ec.generate_private_key(_CURVE)
        scalar = int.from_bytes(self._digest(label + b"/key"), "big") % (_P256_ORDER - 1) + 1
        return ec.derive_private_key(scalar, _CURVE)

    def _serial(self, label: bytes) -> int:
        """A positive 127-bit serial, the size the RTDS certificates use."""
        raw = self._digest(label + b"/serial") if self.seed is not None else os.urandom(16)
        return (int.from_bytes(raw[:16], "big") >> 1) | 1

    def _builder(
        self,
        label: bytes,
        subject: x509.Name,
        public: ec.EllipticCurvePublicKey,
        not_after: _dt.datetime,
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.issuer_name)
            .public_key(public)
            .serial_number(self._serial(label))
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(not_after)
        )

    def _sign(self, builder: x509.CertificateBuilder) -> x509.Certificate:
        if self._deterministic_signing:
            try:
                return builder.sign(self.issuer_key, hashes.SHA256(), ecdsa_deterministic=True)
            except (TypeError, UnsupportedAlgorithm):
                # cryptography < 45 or an OpenSSL without RFC 6979: keys stay seeded,
                # certificate signatures do not.
                self._deterministic_signing = False
        return builder.sign(self.issuer_key, hashes.SHA256())


def _key_usage(
    *, agreement: bool = False, signature: bool = False, cert_sign: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=agreement,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
