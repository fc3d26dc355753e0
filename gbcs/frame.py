"""The outer GBCS frame: MAC header (0xDD) and grouping header (0xDF), CRIB §2.

The payload is kept as bytes here; the payload families decode it. That keeps
frame round-trips exact whatever the payload holds, and lets MAC and signature
checks run over the bytes exactly as received.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, replace

from gbcs.errors import EncodeError
from gbcs.primitives import (
    SHORT_LENGTHS,
    CosemDateTime,
    Reader,
    encode_length,
    pack_id8,
    pack_u64,
    slot_builder,
    slot_twin,
)

__all__ = [
    "MAC_LENGTH",
    "SECURITY_CONTROL",
    "SIGNATURE_LENGTH",
    "CraFlag",
    "FrameParts",
    "GbcsMessage",
    "GroupingHeader",
    "OtherInformation",
    "decode_message",
    "new_alert",
    "new_command",
    "response_to",
]

GENERAL_CIPHERING = 0xDD
GENERAL_SIGNING = 0xDF
SECURITY_CONTROL = 0x11  # authentication only, suite 1 (CRIB §2.1)
MAC_LENGTH = 12
SIGNATURE_LENGTH = 64
LAYER = "frame"


class CraFlag(enum.IntEnum):
    """First byte of the transaction id (CRIB §2.2)."""

    COMMAND = 1
    RESPONSE = 2
    ALERT = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class OtherInformation:
    """Message code and the optional supplementary fields (CRIB §2.3).

    Each optional field needs the ones before it; ``certificate`` and
    ``supplementary_originator_counter`` exclude each other.
    """

    message_code: int
    supplementary_remote_party: bytes | None = None
    supplementary_remote_party_counter: int | None = None
    supplementary_originator_counter: int | None = None
    certificate: bytes | None = None

    def encode(self) -> bytes:
        if not 0 <= self.message_code <= 0xFFFF:
            raise EncodeError(f"message code {self.message_code} is not a uint16")
        out = self.message_code.to_bytes(2, "big")
        if self.supplementary_remote_party is None:
            if (
                self.supplementary_remote_party_counter is not None
                or self.supplementary_originator_counter is not None
                or self.certificate is not None
            ):
                raise EncodeError("supplementary fields need a supplementary remote party")
            return out
        out += pack_id8(self.supplementary_remote_party, "supplementary remote party")
        if self.supplementary_remote_party_counter is None:
            if self.supplementary_originator_counter is not None or self.certificate is not None:
                raise EncodeError(
                    "supplementary originator counter or certificate needs "
                    "a supplementary remote party counter"
                )
            return out
        out += pack_u64(
            self.supplementary_remote_party_counter, "supplementary remote party counter"
        )
        if self.supplementary_originator_counter is not None:
            if self.certificate is not None:
                raise EncodeError(
                    "other-information carries a supplementary originator "
                    "counter or a certificate, not both"
                )
            return out + pack_u64(
                self.supplementary_originator_counter, "supplementary originator counter"
            )
        if self.certificate is not None:
            if len(self.certificate) == 8:
                raise EncodeError("an 8-byte certificate would read back as a counter")
            if not self.certificate:
                raise EncodeError("certificate is empty")
            out += self.certificate
        return out

    @classmethod
    def read(cls, r: Reader) -> OtherInformation:
        """Parse per the CRIB §2.3 rule: code, party, counter, then 8 bytes or a cert."""
        code = r.uint(2, "message code")
        party = counter = supp_counter = cert = None
        if r.remaining:
            party = r.take(8, "supplementary remote party")
        if r.remaining:
            counter = r.uint(8, "supplementary remote party counter")
        if r.remaining == 8:
            supp_counter = r.uint(8, "supplementary originator counter")
        elif r.remaining:
            cert = r.take(r.remaining, "certificate")
        return cls(code, party, counter, supp_counter, cert)


@dataclass(frozen=True, slots=True)
class GroupingHeader:
    """The General-Signing header fields before the payload (CRIB §2.2)."""

    cra_flag: CraFlag
    originator_counter: int
    business_originator: bytes
    business_target: bytes
    other_information: OtherInformation
    date_time: CosemDateTime | None = None

    @property
    def message_code(self) -> int:
        return self.other_information.message_code

    @property
    def transaction_id(self) -> bytes:
        return bytes((self.cra_flag,)) + pack_u64(self.originator_counter, "originator counter")

    def encode(self) -> bytes:
        """Header bytes from the 0x09 transaction-id length up to other-information."""
        other = self.other_information.encode()
        dt = b"\x00" if self.date_time is None else b"\x0c" + self.date_time.encode()
        parties = encode_parties(
            self.cra_flag, self.originator_counter, self.business_originator, self.business_target
        )
        n = len(other)
        return b"".join((parties, dt, SHORT_LENGTHS[n] if n < 0x80 else encode_length(n), other))


@dataclass(frozen=True, slots=True)
class FrameParts:
    """Where the authenticated regions lie inside the encoded General-Signing APDU.

    Kept beside a decoded message so crypto never re-encodes what it checks.
    """

    signing_apdu: bytes  # from 0xDF through the signature field
    signed_end: int  # index in signing_apdu just past the last payload byte
    payload_offset: int  # absolute offset of the payload in the whole message


class _EncodedCache:
    """Slot for the wire bytes of a message :mod:`gbcs.security` has just protected.

    Not a dataclass field, so equality, repr and replace() never see it; only the
    code that built the message from these very bytes sets it, and the message is
    immutable, so :meth:`GbcsMessage.encode` can return it as is.
    """

    __slots__ = ("_encoded",)


@dataclass(frozen=True, slots=True)
class GbcsMessage(_EncodedCache):
    """A whole GBCS message.

    ``signature`` is None for a pre-command (no signature field at all), b"" for
    an unsigned message (length byte 0x00) and 64 bytes ``r||s`` when signed.
    ``mac`` is None for the unwrapped form (bare 0xDF) and 12 bytes otherwise.
    """

    header: GroupingHeader
    payload: bytes
    signature: bytes | None = b""
    mac: bytes | None = None

    # Convenience views -------------------------------------------------
    @property
    def cra_flag(self) -> CraFlag:
        return self.header.cra_flag

    @property
    def message_code(self) -> int:
        return self.header.other_information.message_code

    @property
    def is_precommand(self) -> bool:
        return self.signature is None

    @property
    def is_signed(self) -> bool:
        return bool(self.signature)

    @property
    def has_mac(self) -> bool:
        return self.mac is not None

    # Encoding -----------------------------------------------------------
    def encode_apdu(self) -> tuple[bytes, int, int]:
        """The General-Signing APDU, the end of the signed region and the payload start
        within it: the one encoder every other encoding method shares."""
        header = self.header.encode()
        signature = self.signature
        if signature is None:
            if self.mac is not None or self.header.cra_flag is not CraFlag.COMMAND:
                raise EncodeError(
                    "only an unwrapped command may be a pre-command (no signature field)"
                )
        elif len(signature) not in (0, SIGNATURE_LENGTH):
            raise EncodeError(
                f"signature must be empty or {SIGNATURE_LENGTH} bytes, got {len(signature)}"
            )
        payload = self.payload
        n = len(payload)
        if type(payload) is bytes and n < 0x80:
            payload_start = len(header) + 2
            body = b"".join((b"\xdf", header, SHORT_LENGTHS[n], payload))
        else:
            body = b"\xdf" + header + encode_length(n)
            payload_start = len(body)
            body += payload
        signed_end = len(body)
        if signature is not None:
            if type(signature) is bytes:
                body += _SIGNATURE_LENGTH[len(signature)] + signature
            else:
                body += encode_length(len(signature)) + signature
        return body, signed_end, payload_start

    def signing_parts(self) -> FrameParts:
        body, signed_end, payload_start = self.encode_apdu()
        prefix = 0 if self.mac is None else 7 + len(encode_length(len(body) + 17)) + 5
        return FrameParts(body, signed_end, prefix + payload_start)

    def signed_data(self) -> bytes:
        """Bytes the ECDSA signature covers: after 0xDF up to the payload end (CRIB §3.4)."""
        body, signed_end, _ = self.encode_apdu()
        return body[1:signed_end]

    def encode(self) -> bytes:
        encoded: bytes | None = getattr(self, "_encoded", None)
        if encoded is not None:
            return encoded
        apdu = self.encode_apdu()[0]
        if self.mac is None:
            return apdu
        if len(self.mac) != MAC_LENGTH:
            raise EncodeError(f"MAC must be {MAC_LENGTH} bytes, got {len(self.mac)}")
        return mac_header(len(apdu)) + apdu + self.mac

    def with_mac(self, mac: bytes | None) -> GbcsMessage:
        if type(self) is not GbcsMessage:
            return replace(self, mac=mac)
        return build_message(self.header, self.payload, self.signature, mac)

    def with_signature(self, signature: bytes | None) -> GbcsMessage:
        if type(self) is not GbcsMessage:
            return replace(self, signature=signature)
        return build_message(self.header, self.payload, signature, self.mac)


def mac_header(signing_apdu_length: int) -> bytes:
    """General-ciphering header with the five empty fields (CRIB §2.1)."""
    n = 5 + signing_apdu_length + MAC_LENGTH
    if n < 0x80:
        return b"".join((_MAC_PREFIX, SHORT_LENGTHS[n], _SECURITY_HEADER))
    if n <= 0xFF:
        return b"".join((_MAC_HEADER_81, bytes((n,)), _SECURITY_HEADER))
    return (
        b"\xdd\x00\x00\x00\x00\x00\x00"
        + encode_length(n)
        + bytes((SECURITY_CONTROL,))
        + b"\x00\x00\x00\x00"
    )


def wrap_mac(signing_apdu: bytes, mac: bytes) -> bytes:
    """The whole MAC'd message around a General-Signing APDU (CRIB §2.1)."""
    n = len(signing_apdu) + 5 + MAC_LENGTH
    if n < 0x80:
        return b"".join((_MAC_PREFIX, SHORT_LENGTHS[n], _SECURITY_HEADER, signing_apdu, mac))
    if n <= 0xFF:
        return b"".join((_MAC_HEADER_81, bytes((n,)), _SECURITY_HEADER, signing_apdu, mac))
    return mac_header(len(signing_apdu)) + signing_apdu + mac


_MAC_PREFIX = b"\xdd\x00\x00\x00\x00\x00\x00"
_MAC_HEADER_81 = _MAC_PREFIX + b"\x81"
_SECURITY_HEADER = b"\x11\x00\x00\x00\x00"
# Signature length bytes for the two lengths a signature may have (CRIB §2.4).
_SIGNATURE_LENGTH = {0: b"\x00", SIGNATURE_LENGTH: b"\x40"}
_CRA = {1: CraFlag.COMMAND, 2: CraFlag.RESPONSE, 3: CraFlag.ALERT}


_new = object.__new__
_HeaderTwin = slot_twin(GroupingHeader)
_MessageTwin = slot_twin(GbcsMessage)
_PartsTwin = slot_twin(FrameParts)
_other_information = slot_builder(OtherInformation)  # every field, in order


def build_header(
    cra_flag: CraFlag,
    originator_counter: int,
    business_originator: bytes,
    business_target: bytes,
    other_information: OtherInformation,
    date_time: CosemDateTime | None = None,
) -> GroupingHeader:
    """``GroupingHeader(...)`` through its twin: the same object, at a third of the cost."""
    header = _new(_HeaderTwin)
    header.cra_flag = cra_flag
    header.originator_counter = originator_counter
    header.business_originator = business_originator
    header.business_target = business_target
    header.other_information = other_information
    header.date_time = date_time
    header.__class__ = GroupingHeader
    return header  # type: ignore[no-any-return]


def build_message(
    header: GroupingHeader,
    payload: bytes,
    signature: bytes | None = b"",
    mac: bytes | None = None,
    encoded: bytes | None = None,
) -> GbcsMessage:
    """``GbcsMessage(...)`` through its twin; ``encoded``, when given, must be exactly
    what :meth:`GbcsMessage.encode` would return, which it then returns at no cost."""
    message = _new(_MessageTwin)
    message.header = header
    message.payload = payload
    message.signature = signature
    message.mac = mac
    if encoded is not None:
        message._encoded = encoded
    message.__class__ = GbcsMessage
    return message  # type: ignore[no-any-return]


# Other-information values repeat (one per message code and remote party); being
# immutable they are shared, keyed by their exact bytes, up to a bound.
_OTHER_INFORMATION: dict[bytes, OtherInformation] = {}
_OTHER_INFORMATION_LIMIT = 4096


# DF, 09, CRA, counter, 08, originator, 08, target, date-time length (CRIB §2.2).
_GROUPING_FIXED = struct.Struct(">BBBQB8sB8sB")
# 09, CRA, counter, 08, originator, 08, target: what encode_parties() writes.
_PARTIES = struct.Struct(">BBQB8sB8s")


def _fast_length(data: bytes, p: int) -> tuple[int, int]:
    """A minimal DER-style length at ``p``, or (-1, p) for anything unusual."""
    b = data[p]
    if b < 0x80:
        return b, p + 1
    if b == 0x81 and data[p + 1] >= 0x80:
        return data[p + 1], p + 2
    if b == 0x82 and data[p + 1]:
        return data[p + 1] << 8 | data[p + 2], p + 3
    return -1, p


def _fast_decode(data: bytes) -> tuple[GbcsMessage, FrameParts] | None:
    """The common, well-formed case without per-field bookkeeping.

    It declines (returns None) at the first surprise; :func:`decode_message`
    then runs the careful decoder, which names the field and offset. Every
    message this accepts, the careful decoder accepts identically (tested).
    """
    n = len(data)
    try:
        if data[:7] == _MAC_PREFIX:
            length, p = _fast_length(data, 7)
            if length != n - p or length < 18 or data[p : p + 5] != _SECURITY_HEADER:
                return None
            start = p + 5
            end = n - MAC_LENGTH
            mac: bytes | None = data[end:]
        elif n and data[0] == GENERAL_SIGNING:
            start, end, mac = 0, n, None
        else:
            return None
        if end - start < 30:
            return None
        tag, id_len, cra, counter, o_len, originator, t_len, target, dt_len = (
            _GROUPING_FIXED.unpack_from(data, start)
        )
        cra_flag = _CRA.get(cra)
        if tag != GENERAL_SIGNING or id_len != 9 or o_len != 8 or t_len != 8 or cra_flag is None:
            return None
        q = start + 30
        if dt_len == 12:
            if q + 12 > end:
                return None
            date_time: CosemDateTime | None = CosemDateTime.unpack(data[q : q + 12])
            q += 12
        elif dt_len == 0:
            date_time = None
        else:
            return None
        other_len = data[q]
        if other_len < 0x80:  # the short form is all but universal: no call for it
            q += 1
        else:
            other_len, q = _fast_length(data, q)
        if other_len < 2 or q + other_len > end:
            return None
        other_end = q + other_len
        raw_other = data[q:other_end]
        other = _OTHER_INFORMATION.get(raw_other)
        if other is None:
            code = data[q] << 8 | data[q + 1]
            # Through the twin: the 18-byte form's counter makes every one a cache miss.
            if other_len == 2:
                other = _other_information(code, None, None, None, None)
            elif other_len == 10:
                other = _other_information(code, data[q + 2 : q + 10], None, None, None)
            elif other_len == 18:
                other = _other_information(
                    code,
                    data[q + 2 : q + 10],
                    int.from_bytes(data[q + 10 : q + 18], "big"),
                    None,
                    None,
                )
            else:
                return None  # rarer forms: the careful decoder handles them
            if len(_OTHER_INFORMATION) < _OTHER_INFORMATION_LIMIT:
                _OTHER_INFORMATION[raw_other] = other
        payload_len = data[other_end]
        if payload_len < 0x80:
            q = other_end + 1
        else:
            payload_len, q = _fast_length(data, other_end)
            if payload_len < 0:
                return None
        payload_offset = q
        q += payload_len
        if q > end:
            return None
        payload = data[payload_offset:q]
        signed_end = q - start
        if q == end:
            if cra_flag is not CraFlag.COMMAND or mac is not None:
                return None
            signature: bytes | None = None
        elif data[q] == 0 and q + 1 == end:
            signature = b""
        elif data[q] == 0x40 and q + 65 == end:
            signature = data[q + 1 : end]
        else:
            return None
    except IndexError:
        return None
    # Built through the twins rather than the frozen __init__: a third of the cost,
    # and this runs for every message a HAN or a benchmark sees.
    header = _new(_HeaderTwin)
    header.cra_flag = cra_flag
    header.originator_counter = counter
    header.business_originator = originator
    header.business_target = target
    header.other_information = other
    header.date_time = date_time
    header.__class__ = GroupingHeader
    message = _new(_MessageTwin)
    message.header = header
    message.payload = payload
    message.signature = signature
    message.mac = mac
    message.__class__ = GbcsMessage
    parts = _new(_PartsTwin)
    parts.signing_apdu = data[start:end]
    parts.signed_end = signed_end
    parts.payload_offset = payload_offset
    parts.__class__ = FrameParts
    return message, parts


def decode_message(data: bytes) -> tuple[GbcsMessage, FrameParts]:
    """Decode the frame; return the message and the raw authenticated regions."""
    if type(data) is not bytes:
        data = bytes(data)
    return _fast_decode(data) or decode_message_careful(data)


def decode_message_careful(data: bytes) -> tuple[GbcsMessage, FrameParts]:
    """Field-by-field decoder: slower, and names the field and offset of any error."""
    data = bytes(data)
    r = Reader(data, LAYER)
    if not data:
        raise r.error("tag", "empty input")
    tag = data[0]
    if tag == GENERAL_CIPHERING:
        r.pos = 1
        for field in (
            "transaction-id length",
            "originator-system-title length",
            "recipient-system-title length",
            "date-time length",
            "other-information length",
        ):
            pos = r.pos
            if r.u8(field) != 0:
                reason = (
                    (
                        "a populated general-ciphering header is a GBT routing header; "
                        "reassemble the blocks first"
                    )
                    if pos == 1
                    else "must be zero"
                )
                raise r.error(field, reason, pos)
        r.expect(0x00, "key-info")
        length_pos = r.pos
        length = r.length("ciphered-service length")
        if length != r.remaining:
            raise r.error(
                "ciphered-service length",
                f"declares {length} bytes, {r.remaining} follow",
                length_pos,
            )
        if length < 5 + MAC_LENGTH + 1:
            raise r.error("ciphered-service length", f"{length} is too short", length_pos)
        r.expect(SECURITY_CONTROL, "security control")
        pos = r.pos
        if r.uint(4, "invocation counter") != 0:
            raise r.error("invocation counter", "must be zero in GBCS", pos)
        start = r.pos
        sr = Reader(data, LAYER, start, end=len(data) - MAC_LENGTH)
        message, parts = _read_signing(sr, start, data[-MAC_LENGTH:])
        return message, parts
    if tag == GENERAL_SIGNING:
        return _read_signing(r, 0)
    raise r.error(
        "tag", f"0x{tag:02X} is neither general-ciphering (0xDD) nor general-signing (0xDF)"
    )


def encode_parties(cra_flag: int, counter: int, originator: bytes, target: bytes) -> bytes:
    """Transaction id, originator and target: the inverse of :func:`read_parties`."""
    if (
        type(originator) is bytes
        and type(target) is bytes
        and len(originator) == 8
        and len(target) == 8
        and type(counter) is int
    ):
        try:  # one struct call; out-of-range values fall through to the checked path
            return _PARTIES.pack(9, cra_flag, counter, 8, originator, 8, target)
        except struct.error:
            pass
    return _encode_parties_checked(cra_flag, counter, originator, target)


def _encode_parties_checked(cra_flag: int, counter: int, originator: bytes, target: bytes) -> bytes:
    """Field by field: the reference for :func:`encode_parties`, and its error messages."""
    return b"".join(
        (
            b"\x09",
            bytes((int(cra_flag),)),
            pack_u64(counter, "originator counter"),
            b"\x08",
            pack_id8(originator, "business originator"),
            b"\x08",
            pack_id8(target, "business target"),
        )
    )


def read_parties(
    r: Reader,
    originator_length: str = "business originator length",
    target_length: str = "business target length",
) -> tuple[CraFlag, int, bytes, bytes]:
    """Transaction id, originator and target: shared by the grouping and GBT headers."""
    r.expect(0x09, "transaction-id length")
    pos = r.pos
    cra = r.u8("CRA flag")
    try:
        cra_flag = CraFlag(cra)
    except ValueError:
        raise r.error("CRA flag", f"0x{cra:02X} is not 1, 2 or 3", pos) from None
    counter = r.uint(8, "originator counter")
    r.expect(0x08, originator_length)
    originator = r.take(8, "business originator")
    r.expect(0x08, target_length)
    target = r.take(8, "business target")
    return cra_flag, counter, originator, target


def _read_signing(
    r: Reader, start: int, mac: bytes | None = None
) -> tuple[GbcsMessage, FrameParts]:
    r.expect(GENERAL_SIGNING, "general-signing tag")
    cra_flag, counter, originator, target = read_parties(r)
    pos = r.pos
    dt_len = r.u8("date-time length")
    date_time = None
    if dt_len == 12:
        date_time = CosemDateTime.read(r)
    elif dt_len != 0:
        raise r.error("date-time length", f"must be 0 or 12, found {dt_len}", pos)
    pos = r.pos
    other_len = r.length("other-information length")
    if other_len < 2:
        raise r.error("other-information length", "must hold at least the message code", pos)
    other = OtherInformation.read(r.sub(other_len, "other-information"))
    payload_len = r.length("content length")
    payload_offset = r.base + r.pos
    payload = r.take(payload_len, "content")
    signed_end = r.pos - start
    signature: bytes | None
    if r.remaining == 0:
        # Only an unwrapped command can be a pre-command (CRIB §2.4): anything
        # else without a signature-length byte is a truncated message.
        if cra_flag is not CraFlag.COMMAND or start != 0:
            raise r.error(
                "signature length",
                "missing: only an unwrapped command may be a pre-command without a signature field",
            )
        signature = None
    else:
        pos = r.pos
        sig_len = r.length("signature length")
        if sig_len not in (0, SIGNATURE_LENGTH):
            raise r.error(
                "signature length", f"must be 0 or {SIGNATURE_LENGTH}, found {sig_len}", pos
            )
        signature = r.take(sig_len, "signature")
    r.finish()
    header = GroupingHeader(cra_flag, counter, originator, target, other, date_time)
    message = GbcsMessage(header, payload, signature, mac)
    parts = FrameParts(r.data[start : r.end], signed_end, payload_offset)
    return message, parts


def decode(data: bytes) -> GbcsMessage:
    return decode_message(data)[0]


def new_command(
    message_code: int,
    payload: bytes,
    *,
    originator: bytes,
    target: bytes,
    counter: int,
    on_behalf_of: bytes | None = None,
    on_behalf_counter: int | None = None,
    precommand: bool = False,
) -> GbcsMessage:
    """An unprotected command; ``on_behalf_of`` gives the 18-byte other-information
    form the ACB uses for device-log commands (CRIB §2.3). MAC and signature are
    added by :class:`gbcs.security.SecurityContext`."""
    other = _other_information(message_code, on_behalf_of, on_behalf_counter, None, None)
    header = build_header(CraFlag.COMMAND, counter, originator, target, other)
    return build_message(header, payload, None if precommand else b"")


def response_to(
    command: GbcsMessage | GroupingHeader, payload: bytes, *, date_time: CosemDateTime | None = None
) -> GbcsMessage:
    """A response echoing the command's counter and other-information (CRIB §9.6).

    A certificate in the command's other-information is not echoed: the RTDS GCS61
    response answers a 424-byte form with the 18-byte one (CRIB §2.3).
    """
    h = command.header if isinstance(command, GbcsMessage) else command
    other = h.other_information
    if other.certificate is not None:
        other = replace(other, certificate=None)
    header = build_header(
        CraFlag.RESPONSE,
        h.originator_counter,
        h.business_target,
        h.business_originator,
        other,
        date_time,
    )
    return build_message(header, payload)


def new_alert(
    message_code: int, payload: bytes, *, originator: bytes, target: bytes, counter: int
) -> GbcsMessage:
    other = _other_information(message_code, None, None, None, None)
    header = build_header(CraFlag.ALERT, counter, originator, target, other)
    return build_message(header, payload)
