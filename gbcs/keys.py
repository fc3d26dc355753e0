"""Key stores: where the codec gets KA and DS keys for a party (CRIB §3).

A key store is looked up by party id (EUI-64) and key usage. The file store
reads the RTDS ``keystore`` layout ``<eui>[-pp]-<ka|ds>.<pem|key>`` so a lab can
drop its own test keys beside the reference ones.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gbcs.errors import GbcsError, KeyNotFoundError

__all__ = [
    "FileKeyStore",
    "KeyStore",
    "KeyUsage",
    "MemoryKeyStore",
    "PartyKeys",
]


class KeyUsage(enum.Enum):
    """Which key pair of a party: key agreement, digital signing, prepayment KA."""

    KA = "ka"
    DS = "ds"
    PP_KA = "pp-ka"


@runtime_checkable
class KeyStore(Protocol):
    """What the codec needs from any key source."""

    def public_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePublicKey: ...

    def private_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePrivateKey: ...

    def has_private_key(self, party: bytes, usage: KeyUsage) -> bool: ...

    def certificate(self, party: bytes, usage: KeyUsage) -> x509.Certificate | None: ...


@dataclass
class PartyKeys:
    """One key pair (or its public half) with its certificate, if any."""

    public: ec.EllipticCurvePublicKey | None = None
    private: ec.EllipticCurvePrivateKey | None = None
    certificate: x509.Certificate | None = None


class MemoryKeyStore:
    """A key store held in memory: the emulators' and the test PKI's."""

    def __init__(self) -> None:
        self._keys: dict[tuple[bytes, KeyUsage], PartyKeys] = {}

    def add(
        self,
        party: bytes,
        usage: KeyUsage,
        *,
        private: ec.EllipticCurvePrivateKey | None = None,
        public: ec.EllipticCurvePublicKey | None = None,
        certificate: x509.Certificate | None = None,
    ) -> None:
        if public is None and certificate is not None:
            cert_key = certificate.public_key()
            if not isinstance(cert_key, ec.EllipticCurvePublicKey):
                raise GbcsError(f"certificate for {party.hex().upper()} is not an EC key")
            public = cert_key
        if public is None and private is not None:
            public = private.public_key()
        if public is None:
            raise GbcsError("a key entry needs a public key, private key or certificate")
        for key in (public, private):
            if key is not None:
                _p256(key, f"{usage.value} key of {bytes(party).hex().upper()}")
        self._keys[(bytes(party), usage)] = PartyKeys(public, private, certificate)

    def parties(self) -> Iterable[tuple[bytes, KeyUsage]]:
        return tuple(self._keys)

    def _entry(self, party: bytes, usage: KeyUsage) -> PartyKeys | None:
        return self._keys.get((bytes(party), usage))

    def public_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        entry = self._entry(party, usage)
        if entry is None or entry.public is None:
            raise KeyNotFoundError(party, usage.value, private=False)
        return entry.public

    def private_key(self, party: bytes, usage: KeyUsage) -> ec.EllipticCurvePrivateKey:
        entry = self._entry(party, usage)
        if entry is None or entry.private is None:
            raise KeyNotFoundError(party, usage.value, private=True)
        return entry.private

    def has_private_key(self, party: bytes, usage: KeyUsage) -> bool:
        entry = self._entry(party, usage)
        return entry is not None and entry.private is not None

    def certificate(self, party: bytes, usage: KeyUsage) -> x509.Certificate | None:
        entry = self._entry(party, usage)
        return None if entry is None else entry.certificate


def _p256(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey, where: object) -> None:
    """GBCS keys are P-256 only; another curve would fail deep in ECDH or signing."""
    if not isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        raise GbcsError(f"{where}: not an elliptic-curve key")
    if not isinstance(key.curve, ec.SECP256R1):
        raise GbcsError(f"{where}: {key.curve.name} key, GBCS needs a P-256 (secp256r1) key")


def _read(path: Path) -> bytes:
    """The file's bytes; anything but a regular file is refused (a FIFO would block)."""
    try:
        if not path.is_file():
            raise GbcsError(f"{path}: not a regular file")
        return path.read_bytes()
    except OSError as exc:
        raise GbcsError(f"{path}: cannot read ({exc.strerror})") from None


def _load_public(
    data: bytes, path: Path
) -> tuple[ec.EllipticCurvePublicKey, x509.Certificate | None]:
    try:
        if b"CERTIFICATE" in data:
            cert = x509.load_pem_x509_certificate(data)
            key = cert.public_key()
            # cryptography parses these lazily: read now, a bad one is this file's error
            # rather than a ValueError wherever the certificate is first looked into.
            cert.extensions  # noqa: B018
            cert.subject  # noqa: B018
        else:
            cert = None
            key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm, x509.DuplicateExtension) as exc:
        raise GbcsError(f"{path}: not a PEM certificate or public key ({exc})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise GbcsError(f"{path}: not an elliptic-curve key")
    _p256(key, path)
    return key, cert


class FileKeyStore(MemoryKeyStore):
    """Reads a folder laid out as the RTDS key store, lazily and once per file.

    File names, not certificate contents, name the party: the RTDS itself has a
    file whose certificate names another party (CRIB §1.2).
    """

    SUFFIXES = {"-pp-ka": KeyUsage.PP_KA, "-ka": KeyUsage.KA, "-ds": KeyUsage.DS}

    def __init__(self, folder: Path | str) -> None:
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            why = "is not a folder" if self.folder.exists() else "does not exist"
            raise GbcsError(f"key store folder {self.folder} {why}")
        self._files: dict[tuple[bytes, KeyUsage], dict[str, Path]] = {}
        self._lock = threading.Lock()
        for path in sorted(self.folder.iterdir()):
            if path.suffix not in (".pem", ".key"):
                continue
            stem = path.stem.lower()
            for suffix, usage in self.SUFFIXES.items():
                if stem.endswith(suffix):
                    try:
                        party = bytes.fromhex(stem[: -len(suffix)])
                    except ValueError:
                        break
                    if len(party) == 8:
                        self._files.setdefault((party, usage), {})[path.suffix] = path
                    break

    def _entry(self, party: bytes, usage: KeyUsage) -> PartyKeys | None:
        key = (bytes(party), usage)
        entry = self._keys.get(key)
        if entry is not None:
            return entry
        files = self._files.get(key)
        if not files:
            return None
        with self._lock:
            entry = PartyKeys()
            if ".key" in files:
                path = files[".key"]
                try:
                    private = serialization.load_pem_private_key(_read(path), None)
                except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
                    raise GbcsError(f"{path}: not a PKCS#8 PEM private key ({exc})") from None
                if not isinstance(private, ec.EllipticCurvePrivateKey):
                    raise GbcsError(f"{path}: not an elliptic-curve key")
                _p256(private, path)
                entry.private = private
                entry.public = private.public_key()
            if ".pem" in files:
                entry.public, entry.certificate = _load_public(_read(files[".pem"]), files[".pem"])
            self._keys[key] = entry
        return entry

    def parties(self) -> Iterable[tuple[bytes, KeyUsage]]:
        return tuple(self._files)
