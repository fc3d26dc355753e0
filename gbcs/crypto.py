"""GBCS cryptographic primitives (CRIB §3): KDF, GMAC, ECDSA r||s, block ciphering.

Pure functions over keys and bytes; which keys to use for a message is decided
in :mod:`gbcs.security`.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import warnings

from cryptography.exceptions import InvalidSignature, InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gbcs.errors import DecodeError, EncodeError, VerificationError

__all__ = [
    "ALGORITHM_ID",
    "CRA_ENCRYPTION",
    "MAC_AAD_PREFIX",
    "decrypt_block",
    "ecdh",
    "ecdsa_sign",
    "ecdsa_verify",
    "encrypt_block",
    "gmac",
    "kdf",
]

# CRIB §3.1: the seven AlgorithmID bytes, used literally (the 0x05 OID variant fails).
ALGORITHM_ID = bytes.fromhex("60857406080300")
CRA_ENCRYPTION = 0x04  # CRIB §3.5: KDF transaction-id byte for payload-encryption keys
# CRIB §3.3: SC 0x11 then five zero bytes, NOT the 5-byte on-wire security header.
MAC_AAD_PREFIX = b"\x11\x00\x00\x00\x00\x00"
ENCRYPTION_SC = 0x31  # authentication + encryption, suite 1 (CRIB §3.5)
BLOCK_HEADER = b"\x31\x00\x00\x00\x00"
TAG_LENGTH = 12
_ECDSA = ec.ECDSA(hashes.SHA256())
_ECDSA_DETERMINISTIC = ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
_ZERO4 = b"\x00\x00\x00\x00"


def ecdh(private: ec.EllipticCurvePrivateKey, public: ec.EllipticCurvePublicKey) -> bytes:
    """Static-static ECDH shared secret Z (the x coordinate, 32 bytes)."""
    return private.exchange(ec.ECDH(), public)


def kdf(z: bytes, originator: bytes, cra: int, counter: int, recipient: bytes) -> bytes:
    """SP800-56A concatenation KDF, one SHA-256 round, 128 bits kept (CRIB §3.1)."""
    other_info = (
        ALGORITHM_ID + originator + b"\x09" + bytes((cra,)) + counter.to_bytes(8, "big") + recipient
    )
    return hashlib.sha256(b"\x00\x00\x00\x01" + z + other_info).digest()[:16]


def _check_key_and_originator(key: bytes, originator: bytes) -> None:
    """An AES-128 key and an 8-byte originator (the IV's first part), else a clear error."""
    if len(key) != 16:
        raise EncodeError(f"a GBCS AES key is 16 bytes, not {len(key)}")
    if len(originator) != 8:
        raise EncodeError(f"an originator (IV part) is 8 bytes, not {len(originator)}")


def gmac(key: bytes, originator: bytes, signing_apdu: bytes) -> bytes:
    """The 12-byte GBCS MAC over a General-Signing APDU (CRIB §3.3)."""
    if len(key) != 16 or len(originator) != 8:
        _check_key_and_originator(key, originator)
    tag = AESGCM(key).encrypt(originator + _ZERO4, b"", MAC_AAD_PREFIX + signing_apdu)
    return tag[:TAG_LENGTH]


def gmac_matches(key: bytes, originator: bytes, signing_apdu: bytes, mac: bytes) -> bool:
    return hmac.compare_digest(gmac(key, originator, signing_apdu), mac)


def ecdsa_sign(private: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """Raw ``r || s`` (64 bytes) as GBCS carries it (CRIB §3.4).

    Nonces are derived per RFC 6979 where the OpenSSL build allows it, so an
    emulated run replays byte for byte from its seed; verifiers cannot tell.
    """
    try:
        der = private.sign(data, _ECDSA_DETERMINISTIC)
    except UnsupportedAlgorithm:
        _warn_random_nonces()
        der = private.sign(data, _ECDSA)
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@functools.cache
def _warn_random_nonces() -> None:
    """Once a process: signatures still verify, but runs no longer replay byte for byte."""
    warnings.warn(
        "this OpenSSL build cannot derive ECDSA nonces per RFC 6979: signatures use random "
        "nonces, so signed messages (and a run's pcap) differ from run to run; use the "
        "cryptography wheels (OpenSSL 3.2 or later) for byte-for-byte replay",
        RuntimeWarning,
        stacklevel=3,
    )


def ecdsa_verify(public: ec.EllipticCurvePublicKey, data: bytes, signature: bytes) -> bool:
    if len(signature) != 64:
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if r == 0 or s == 0:
        return False
    try:
        public.verify(encode_dss_signature(r, s), data, _ECDSA)
    except InvalidSignature:
        return False
    return True


def encrypt_block(key: bytes, originator: bytes, plaintext: bytes) -> bytes:
    """``31 00000000 || ciphertext || tag(12)`` with AAD 0x31 (CRIB §3.5)."""
    _check_key_and_originator(key, originator)
    sealed = AESGCM(key).encrypt(originator + _ZERO4, plaintext, BLOCK_HEADER[:1])
    return BLOCK_HEADER + sealed[:-16] + sealed[-16 : -16 + TAG_LENGTH]


def split_block(block: bytes, base: int = 0) -> tuple[bytes, bytes]:
    """Ciphertext and tag of a protected block; the header checked (CRIB §3.5)."""
    if len(block) < len(BLOCK_HEADER) + TAG_LENGTH:
        raise DecodeError(
            "crypto", "protected block", base, f"{len(block)} bytes is shorter than header and tag"
        )
    if block[0] != ENCRYPTION_SC:
        raise DecodeError(
            "crypto", "security control", base, f"expected 0x31, found 0x{block[0]:02X}"
        )
    if block[1:5] != _ZERO4:
        raise DecodeError("crypto", "invocation counter", base + 1, "must be zero in GBCS")
    return block[5:-TAG_LENGTH], block[-TAG_LENGTH:]


def decrypt_block(key: bytes, originator: bytes, block: bytes) -> bytes:
    """Inverse of :func:`encrypt_block`; a wrong key or tampering raises VerificationError."""
    _check_key_and_originator(key, originator)
    ciphertext, tag = split_block(block)
    decryptor = Cipher(
        algorithms.AES(key), modes.GCM(originator + _ZERO4, tag, min_tag_length=TAG_LENGTH)
    ).decryptor()
    decryptor.authenticate_additional_data(BLOCK_HEADER[:1])
    try:
        return decryptor.update(ciphertext) + decryptor.finalize()
    except InvalidTag:
        raise VerificationError("protected block tag does not verify") from None
