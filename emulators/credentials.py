"""What an emulated device knows about keys: its own pairs and its trust anchors.

A real meter holds its own KA/DS private keys and, as trust anchors, the
public keys of the remote parties that may command it (supplier, network
operator, Access Control Broker; GBCS 4.3.3 and the CS02a/b/e credential
updates). Keys are kept as bytes (scalars and X9.62 points) so that a fleet
saves to JSON and ten thousand meters stay small; key objects are made on
first use and public ones are shared between devices.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from emulators.saved_state import kind_of, saved_hex
from gbcs.errors import GbcsError, KeyNotFoundError
from gbcs.keys import KeyUsage
from gbcs.primitives import eui64
from gbcs.testpki import Party, RemotePartyRole, TestPki

__all__ = [
    "DeviceCredentials",
    "DeviceKeyStore",
    "TrustAnchor",
    "TrustAnchors",
    "public_key",
    "public_point",
]

_CURVE = ec.SECP256R1()
_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@functools.lru_cache(maxsize=4096)
def public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    """One shared key object per public point: every meter trusts the same few anchors."""
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(_CURVE, point)
    except ValueError:
        raise GbcsError(f"{point.hex()[:16]}… is not a P-256 public point") from None


def _private_key(scalar: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(scalar, _CURVE)


def point_key_identifier(point: bytes) -> bytes:
    """The test PKI's key identifier: leftmost 64 bits of SHA-256 of the point (RFC 7093)."""
    return hashlib.sha256(point).digest()[:8]


def certificate_key_identifier(cert: x509.Certificate) -> bytes | None:
    """A certificate's 8-byte SubjectKeyIdentifier, which CS02a/CS02b report for its cell
    (in the RTDS they are these extensions, whatever rule made them); None without one."""
    try:
        digest = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None
    return digest if len(digest) == 8 else None


@dataclass(frozen=True, slots=True)
class TrustAnchor:
    """A remote party a device trusts: its entity id, KA/DS public points and, when its
    certificates carried them, their subject key identifiers."""

    role: RemotePartyRole
    party_id: bytes
    ka_public: bytes
    ds_public: bytes
    ka_ski: bytes | None = None
    ds_ski: bytes | None = None

    @classmethod
    def from_party(cls, party: Party) -> TrustAnchor:
        if party.role is None:
            raise GbcsError(f"{party.eui64.hex().upper()} is a device, not a remote party")
        return cls(
            party.role,
            party.eui64,
            public_point(party.ka_private.public_key()),
            public_point(party.ds_private.public_key()),
            certificate_key_identifier(party.ka_cert),
            certificate_key_identifier(party.ds_cert),
        )

    @classmethod
    def from_certificates(
        cls, role: RemotePartyRole, ka_cert: x509.Certificate, ds_cert: x509.Certificate
    ) -> TrustAnchor:
        """An anchor from a party's two certificates (the RTDS key store's, say)."""
        from gbcs.testpki import certificate_party

        parties = {certificate_party(c)[0] for c in (ka_cert, ds_cert)}
        if len(parties) != 1:
            raise GbcsError("the KA and DS certificates name different parties")
        points = []
        for cert in (ka_cert, ds_cert):
            key = cert.public_key()
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise GbcsError("a trust anchor certificate holds an elliptic-curve key")
            points.append(public_point(key))
        return cls(
            role,
            parties.pop(),
            points[0],
            points[1],
            certificate_key_identifier(ka_cert),
            certificate_key_identifier(ds_cert),
        )

    def ski(self, usage: KeyUsage) -> bytes:
        """The cell's subject key identifier: the certificate's, else the test PKI's rule."""
        if usage is KeyUsage.DS:
            return self.ds_ski or point_key_identifier(self.ds_public)
        return self.ka_ski or point_key_identifier(self.ka_public)

    def to_json(self) -> dict[str, Any]:
        out = {
            "role": self.role.name.lower(),
            "party_id": self.party_id.hex().upper(),
            "ka_public": self.ka_public.hex(),
            "ds_public": self.ds_public.hex(),
        }
        for name in ("ka_ski", "ds_ski"):  # null: computed by the test PKI's rule
            value = getattr(self, name)
            out[name] = None if value is None else value.hex().upper()
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrustAnchor:
        if not isinstance(obj, dict):
            raise GbcsError(f"trust anchor is {kind_of(obj)}, not an object")
        try:
            role_name = obj["role"]
            try:
                role = RemotePartyRole[str(role_name).upper()]
            except KeyError:
                raise GbcsError(f"unknown trust anchor role {role_name!r}") from None
            anchor = cls(
                role,
                saved_hex(obj["party_id"], "trust anchor party_id", 8),
                saved_hex(obj["ka_public"], "trust anchor ka_public", 65),
                saved_hex(obj["ds_public"], "trust anchor ds_public", 65),
                *(
                    None if obj[n] is None else saved_hex(obj[n], f"trust anchor {n}", 8)
                    for n in ("ka_ski", "ds_ski")
                ),
            )
        except KeyError as e:
            raise GbcsError(f"trust anchor is missing {e}") from None
        public_key(anchor.ka_public)
        public_key(anchor.ds_public)
        return anchor


@dataclass(frozen=True, slots=True)
class TrustAnchors:
    """The anchors a meter holds, one per role (GBCS: supplier, network operator, ACB)."""

    acb: TrustAnchor
    supplier: TrustAnchor
    network_operator: TrustAnchor

    @classmethod
    def from_pki(
        cls, pki: TestPki, supplier: str = "supplier", network_operator: str = "network_operator"
    ) -> TrustAnchors:
        return cls(
            TrustAnchor.from_party(pki.party("acb")),
            TrustAnchor.from_party(pki.party(supplier)),
            TrustAnchor.from_party(pki.party(network_operator)),
        )

    def __iter__(self) -> Iterator[TrustAnchor]:
        return iter((self.acb, self.supplier, self.network_operator))

    def for_party(self, party_id: bytes) -> TrustAnchor | None:
        for anchor in (self.acb, self.supplier, self.network_operator):  # no __iter__ call
            if anchor.party_id == party_id:
                return anchor
        return None

    def by_role(self, role: int) -> TrustAnchor | None:
        """The anchor held for a remote-party role (CS02a, CS02b), None for other roles."""
        for anchor in self:
            if anchor.role == role:
                return anchor
        return None

    def with_anchor(self, anchor: TrustAnchor) -> TrustAnchors:
        """The anchors after a credentials update replaced one role's anchor (CS02b)."""
        names = {
            RemotePartyRole.ACCESS_CONTROL_BROKER: "acb",
            RemotePartyRole.SUPPLIER: "supplier",
            RemotePartyRole.NETWORK_OPERATOR: "network_operator",
        }
        name = names.get(anchor.role)
        if name is None:
            raise GbcsError(f"a meter holds no {anchor.role.name} trust anchor")
        return replace(self, **{name: anchor})

    def to_json(self) -> dict[str, Any]:
        return {
            "acb": self.acb.to_json(),
            "supplier": self.supplier.to_json(),
            "network_operator": self.network_operator.to_json(),
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> TrustAnchors:
        if not isinstance(obj, dict):
            raise GbcsError(f"trust anchors are {kind_of(obj)}, not an object")
        held: dict[str, TrustAnchor] = {}
        for name, role in _ANCHOR_ROLES.items():
            if name not in obj:
                raise GbcsError(f"trust anchors are missing {name!r}")
            try:
                anchor = TrustAnchor.from_json(obj[name])
            except GbcsError as e:
                raise GbcsError(f"{name}: {e}") from None
            if anchor.role is not role:
                raise GbcsError(f"{name}: the trust anchor has role {anchor.role.name.lower()}")
            other = next((k for k, a in held.items() if a.party_id == anchor.party_id), None)
            if other is not None:  # CS02b never makes one: only the first would be found
                raise GbcsError(
                    f"{name}: party {anchor.party_id.hex().upper()} is already the {other} anchor"
                )
            held[name] = anchor
        return cls(**held)


_ANCHOR_ROLES = {
    "acb": RemotePartyRole.ACCESS_CONTROL_BROKER,
    "supplier": RemotePartyRole.SUPPLIER,
    "network_operator": RemotePartyRole.NETWORK_OPERATOR,
}


@dataclass(frozen=True, slots=True)
class DeviceCredentials:
    """A device's own key pairs, as private scalars (test keys only, never live ones)."""

    eui64: bytes
    ka_scalar: int
    ds_scalar: int

    def __post_init__(self) -> None:
        for name in ("ka_scalar", "ds_scalar"):
            if not 0 < getattr(self, name) < _ORDER:
                raise GbcsError(f"{name} is not a valid P-256 private scalar")

    @classmethod
    def generate(cls, eui: bytes | str, seed: int = 0) -> DeviceCredentials:
        """Deterministic keys for a device that needs no certificate (fleet benchmarks)."""
        device = eui64(eui)

        def scalar(usage: bytes) -> int:
            digest = hashlib.sha512(
                b"gbcs-hil device key\x00" + seed.to_bytes(8, "big", signed=True) + device + usage
            ).digest()
            return int.from_bytes(digest, "big") % (_ORDER - 1) + 1

        return cls(device, scalar(b"ka"), scalar(b"ds"))

    @classmethod
    def from_party(cls, party: Party) -> DeviceCredentials:
        return cls(
            party.eui64,
            party.ka_private.private_numbers().private_value,
            party.ds_private.private_numbers().private_value,
        )

    def private_key(self, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
        if usage is KeyUsage.KA:
            return _private_key(self.ka_scalar)
        if usage is KeyUsage.DS:
            return _private_key(self.ds_scalar)
        raise KeyNotFoundError(self.eui64, usage.value, private=True)

    def public_point(self, usage: KeyUsage) -> bytes:
        return public_point(self.private_key(usage).public_key())

    def to_json(self) -> dict[str, Any]:
        return {
            "eui64": self.eui64.hex().upper(),
            "ka_private": f"{self.ka_scalar:064x}",
            "ds_private": f"{self.ds_scalar:064x}",
        }

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> DeviceCredentials:
        if not isinstance(obj, dict):
            raise GbcsError(f"device credentials are {kind_of(obj)}, not an object")
        try:
            return cls(
                saved_hex(obj["eui64"], "eui64", 8),
                int.from_bytes(saved_hex(obj["ka_private"], "ka_private", 32), "big"),
                int.from_bytes(saved_hex(obj["ds_private"], "ds_private", 32), "big"),
            )
        except KeyError as e:
            raise GbcsError(f"device credentials are missing {e}") from None


class DeviceKeyStore:
    """The :class:`gbcs.keys.KeyStore` a device's security context reads: itself plus anchors."""

    def __init__(self, credentials: DeviceCredentials, anchors: TrustAnchors) -> None:
        self.credentials = credentials
        self.anchors = anchors
        self._private: dict[KeyUsage, ec.EllipticCurvePrivateKey] = {}

    def private_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
        if party != self.credentials.eui64 or usage not in (KeyUsage.KA, KeyUsage.DS):
            raise KeyNotFoundError(party, usage.value, private=True)
        key = self._private.get(usage)
        if key is None:
            key = self._private[usage] = self.credentials.private_key(usage)
        return key

    def has_private_key(self, party: bytes, usage: KeyUsage) -> bool:
        return party == self.credentials.eui64 and usage in (KeyUsage.KA, KeyUsage.DS)

    def public_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        if party == self.credentials.eui64:
            return self.private_key(party, usage).public_key()
        anchor = self.anchors.for_party(party)
        if anchor is None or usage not in (KeyUsage.KA, KeyUsage.DS):
            raise KeyNotFoundError(party, usage.value, private=False)
        return public_key(anchor.ka_public if usage is KeyUsage.KA else anchor.ds_public)

    def certificate(self, party: bytes, usage: KeyUsage) -> x509.Certificate | None:
        return None
