"""Which keys protect which message, and the checks a receiver makes (CRIB §3.2-§3.5).

:class:`SecurityContext` caches static-static ECDH secrets per key pair: the
scalar multiplication dominates the cost of a MAC check otherwise, and the
pair never changes while the key store does not.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from cryptography.hazmat.primitives.asymmetric import ec

from gbcs import crypto
from gbcs.errors import EncodeError, GbcsError, KeyNotFoundError, VerificationError
from gbcs.frame import (
    MAC_LENGTH,
    SIGNATURE_LENGTH,
    CraFlag,
    FrameParts,
    GbcsMessage,
    GroupingHeader,
    build_message,
    wrap_mac,
)
from gbcs.keys import KeyStore, KeyUsage

__all__ = [
    "DEFAULT_ACB",
    "DEVICE_ORIGINATED_COMMANDS",
    "CheckResult",
    "SecurityContext",
]

# RTDS Access Control Broker (KA certificate with role OU=04), CRIB §1.2.
DEFAULT_ACB = bytes.fromhex("90B3D51F30000002")
# Commands a HAN device sends to another device: MAC'd device to device (CRIB §3.2).
DEVICE_ORIGINATED_COMMANDS = frozenset({0x009B, 0x0090, 0x0116, 0x0117, 0x0118, 0x0119})


class CheckResult(enum.Enum):
    """Outcome of one MAC or signature check, as the CLI reports it."""

    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"
    NO_KEY = "no-key"


@dataclass(frozen=True, slots=True)
class BlockParties:
    """The KDF inputs for a protected block (CRIB §3.5)."""

    originator: bytes
    far_party: bytes
    counter: int


class SecurityContext:
    """Keys plus the deployment fact of who the Access Control Broker is."""

    def __init__(self, keystore: KeyStore, acb: bytes = DEFAULT_ACB) -> None:
        self.keystore = keystore
        self.acb = acb
        self._secrets: dict[tuple[bytes, bytes], bytes] = {}
        self._ds_keys: dict[bytes, ec.EllipticCurvePublicKey] = {}

    # Key agreement ----------------------------------------------------------
    def shared_secret(self, a: bytes, b: bytes) -> bytes:
        """Z for the KA pair (a, b), from whichever side holds a private key."""
        key = (a, b) if a <= b else (b, a)
        z = self._secrets.get(key)
        if z is None:
            ks = self.keystore
            if ks.has_private_key(a, KeyUsage.KA):
                z = crypto.ecdh(ks.private_key(a, KeyUsage.KA), ks.public_key(b, KeyUsage.KA))
            elif ks.has_private_key(b, KeyUsage.KA):
                z = crypto.ecdh(ks.private_key(b, KeyUsage.KA), ks.public_key(a, KeyUsage.KA))
            else:
                raise KeyNotFoundError(a, KeyUsage.KA.value, private=True)
            self._secrets[key] = z
        return z

    def mac_pair(self, header: GroupingHeader) -> tuple[bytes, bytes]:
        """Whose KA keys make the MAC key (CRIB §3.2)."""
        if header.cra_flag is CraFlag.COMMAND and not self._device_originated(header):
            return self.acb, header.business_target
        return header.business_originator, header.business_target

    def _device_originated(self, header: GroupingHeader) -> bool:
        """A command a HAN device sends another (its own KA key MACs it): one of those
        use cases, from an originator that is no remote party. A remote party's command
        is always the ACB's to MAC (CRIB §3.2), whatever its message code says."""
        if header.other_information.message_code not in DEVICE_ORIGINATED_COMMANDS:
            return False
        originator = header.business_originator
        if originator == self.acb:
            return False
        certificate = self.keystore.certificate(originator, KeyUsage.KA)
        if certificate is None:
            return True  # nothing says otherwise
        from gbcs.testpki import certificate_party  # late: it builds on this module

        try:
            return certificate_party(certificate)[1] is None  # a device's certificate
        except GbcsError:
            return False

    def mac_key(self, header: GroupingHeader) -> bytes:
        # mac_pair() and the cache hit of shared_secret(), inline: two calls per MAC saved.
        b = header.business_target
        if header.cra_flag is CraFlag.COMMAND and (
            header.other_information.message_code not in DEVICE_ORIGINATED_COMMANDS
            or not self._device_originated(header)
        ):
            a = self.acb
        else:
            a = header.business_originator
        z = self._secrets.get((a, b) if a <= b else (b, a))
        if z is None:
            z = self.shared_secret(a, b)
        return crypto.kdf(
            z,
            header.business_originator,
            header.cra_flag,  # an IntEnum is an int: no .value lookup on the hot path
            header.originator_counter,
            header.business_target,
        )

    # MAC ----------------------------------------------------------------------
    def compute_mac(self, message: GbcsMessage) -> bytes:
        apdu = message.encode_apdu()[0]
        return crypto.gmac(self.mac_key(message.header), message.header.business_originator, apdu)

    def add_mac(self, message: GbcsMessage) -> GbcsMessage:
        return self._add_mac(message, message.encode_apdu()[0])

    def _add_mac(self, message: GbcsMessage, apdu: bytes) -> GbcsMessage:
        """MAC ``message``, whose General-Signing APDU is ``apdu``, and keep the wire bytes.

        The APDU is encoded once for the MAC and the message's encoding alike.
        """
        header = message.header
        mac = crypto.gmac(self.mac_key(header), header.business_originator, apdu)
        if type(message) is not GbcsMessage:
            return replace(message, mac=mac)
        # Only what encode() would return unchanged is kept: not a pre-command (which
        # encode() refuses once MAC'd), nor a MAC of a size encode() would refuse, nor
        # anything built from a mutable buffer.
        encoded = (
            wrap_mac(apdu, mac)
            if type(message.signature) is bytes
            and type(message.payload) is bytes
            and type(mac) is bytes
            and len(mac) == MAC_LENGTH
            else None
        )
        return build_message(header, message.payload, message.signature, mac, encoded)

    def check_mac(self, message: GbcsMessage, parts: FrameParts | None = None) -> CheckResult:
        mac = message.mac
        if mac is None:
            return CheckResult.ABSENT
        header = message.header
        try:
            key = self.mac_key(header)
        except KeyNotFoundError:
            return CheckResult.NO_KEY
        apdu = (parts if parts is not None else message.signing_parts()).signing_apdu
        ok = crypto.gmac_matches(key, header.business_originator, apdu, mac)
        return CheckResult.VALID if ok else CheckResult.INVALID

    # Signature ----------------------------------------------------------------
    def sign(self, message: GbcsMessage) -> GbcsMessage:
        """Sign as the Business Originator; a pre-command becomes a signed command."""
        return self._sign(message)[0]

    def _sign(self, message: GbcsMessage) -> tuple[GbcsMessage, bytes | None]:
        """The signed message and, when it has a 64-byte signature, its General-Signing
        APDU (MAC aside), made from the one encoding the signature covers."""
        header = message.header
        private = self.keystore.private_key(header.business_originator, KeyUsage.DS)
        unsigned = build_message(header, message.payload)
        body, signed_end, _ = unsigned.encode_apdu()
        signature = crypto.ecdsa_sign(private, body[1:signed_end])
        if type(message) is not GbcsMessage:
            return replace(message, signature=signature), None
        signed = build_message(header, message.payload, signature, message.mac)
        if type(signature) is not bytes or len(signature) != SIGNATURE_LENGTH:
            return signed, None  # left to encode_apdu() to refuse or encode
        # The unsigned APDU ends in the empty signature field (0x00): swap in the signature.
        return signed, body[:signed_end] + b"\x40" + signature

    def check_signature(self, message: GbcsMessage, parts: FrameParts | None = None) -> CheckResult:
        if not message.signature:
            return CheckResult.ABSENT
        originator = message.header.business_originator
        public = self._ds_keys.get(originator)
        if public is None:
            try:
                public = self.keystore.public_key(originator, KeyUsage.DS)
            except KeyNotFoundError:
                return CheckResult.NO_KEY
            self._ds_keys[originator] = public
        data = message.signed_data() if parts is None else parts.signing_apdu[1 : parts.signed_end]
        ok = crypto.ecdsa_verify(public, data, message.signature)
        return CheckResult.VALID if ok else CheckResult.INVALID

    # Protected blocks -----------------------------------------------------------
    @staticmethod
    def block_parties(header: GroupingHeader) -> BlockParties:
        other = header.other_information
        far = other.supplementary_remote_party or header.business_target
        counter = (
            other.supplementary_originator_counter
            if other.supplementary_originator_counter is not None
            else header.originator_counter
        )
        return BlockParties(header.business_originator, far, counter)

    def block_key(self, header: GroupingHeader) -> bytes:
        p = self.block_parties(header)
        z = self.shared_secret(p.originator, p.far_party)
        return crypto.kdf(z, p.originator, crypto.CRA_ENCRYPTION, p.counter, p.far_party)

    def decrypt_block(self, header: GroupingHeader, block: bytes) -> bytes:
        return crypto.decrypt_block(self.block_key(header), header.business_originator, block)

    def encrypt_block(self, header: GroupingHeader, plaintext: bytes) -> bytes:
        return crypto.encrypt_block(self.block_key(header), header.business_originator, plaintext)

    # Whole-message protection -----------------------------------------------------
    def protect(self, message: GbcsMessage, *, sign: bool = False, mac: bool = True) -> GbcsMessage:
        """Sign (when asked) and MAC a message as its originator would send it."""
        apdu = None
        if sign:
            message, apdu = self._sign(message)
        elif message.signature is None and mac:
            raise EncodeError("a pre-command must be signed before it can be MAC'd")
        if not mac:
            return message.with_mac(None)
        return self._add_mac(message, message.encode_apdu()[0] if apdu is None else apdu)

    def require_valid(self, message: GbcsMessage, parts: FrameParts | None = None) -> None:
        """Raise unless the message is protected and every MAC and signature on it verifies.

        Receivers use this: a message with neither a MAC nor a signature (a pre-command,
        or an unsigned General Signing frame) authenticates nothing (CRIB §2.4).
        """
        if not (message.has_mac or message.signature):
            raise VerificationError("neither MAC'd nor signed")
        for what, result in (
            ("MAC", self.check_mac(message, parts)),
            ("signature", self.check_signature(message, parts)),
        ):
            if result is CheckResult.INVALID:
                raise VerificationError(f"{what} does not verify")
            if result is CheckResult.NO_KEY:
                raise VerificationError(f"no key to check the {what}")


def public_key_bytes(key: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
