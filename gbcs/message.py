"""Whole-message decoding: frame, payload family, checks and decrypted blocks.

This is what the command line and the emulators call: one function from bytes
to an :class:`Inspection`, and the JSON form both ways so a decoded message can
be edited and encoded again.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from gbcs import asn1, axdr, crypto, dlms, gbz
from gbcs.catalogue import CATALOGUE, Catalogue, UseCase
from gbcs.errors import DecodeError, EncodeError, GbcsError, KeyNotFoundError, VerificationError
from gbcs.frame import CraFlag, FrameParts, GbcsMessage, GroupingHeader, OtherInformation
from gbcs.frame import decode_message as decode_frame
from gbcs.primitives import CosemDateTime, hex_field, slot_twin
from gbcs.security import CheckResult, SecurityContext

__all__ = [
    "DecodedPayload",
    "DecryptedBlock",
    "Inspection",
    "decode_payload",
    "encode_payload",
    "inspect",
    "message_from_json",
    "payload_family",
    "to_json",
]

DLMS_TAGS = frozenset({0xD9, 0xDA, 0x0F})


def payload_family(payload: bytes) -> str:
    """CRIB §5: dispatch on the first payload bytes."""
    if payload[:2] == b"\x01\x09":  # ZigBee Smart Energy profile id 0x0109
        return "gbz"
    if payload and payload[0] in DLMS_TAGS:
        return "dlms"
    return "asn1"


@dataclass(frozen=True, slots=True)
class DecodedPayload:
    family: str
    value: Any  # dlms APDU, asn1.Asn1Payload or gbz.GbzPayload


def decode_payload(
    message: GbcsMessage, base: int = 0, catalogue: Catalogue = CATALOGUE
) -> DecodedPayload:
    payload = message.payload
    if not payload:
        raise DecodeError("frame", "content", base, "payload is empty")
    first = payload[0]
    if first == 0x01 and len(payload) > 1 and payload[1] == 0x09:
        family = "gbz"
        value: Any = gbz.decode(payload, message.header.cra_flag is CraFlag.ALERT, base)
    elif first in DLMS_TAGS:
        family = "dlms"
        value = dlms.decode(payload, base)
    else:
        family = "asn1"
        code = message.header.other_information.message_code
        if code == catalogue.disconnect_code:
            name = asn1.DISCONNECT_TYPES.get(message.header.cra_flag)
            if name is None:
                raise DecodeError("asn1", "CRA flag", base, "the disconnect has no alert")
            value = asn1.decode_type(name, payload, base)
        else:
            value = asn1.decode(code, message.header.cra_flag, payload, base)
    decoded = _new(_DecodedPayloadTwin)
    decoded.family = family
    decoded.value = value
    decoded.__class__ = DecodedPayload
    return decoded  # type: ignore[no-any-return]


def encode_payload(payload: DecodedPayload) -> bytes:
    if payload.family == "gbz":
        return gbz.encode(payload.value)
    if payload.family == "dlms":
        return dlms.encode(payload.value)
    return asn1.encode(payload.value)


def payload_to_json(payload: DecodedPayload) -> Any:
    module = {"gbz": gbz, "dlms": dlms, "asn1": asn1}[payload.family]
    return module.to_json(payload.value)


def payload_from_json(family: str, obj: Any) -> DecodedPayload:
    # A family that is not a string (a list or object from edited JSON) names no module.
    module = (
        {"gbz": gbz, "dlms": dlms, "asn1": asn1}.get(family) if isinstance(family, str) else None
    )
    if module is None:
        raise EncodeError(f"payload_family {family!r} is not dlms, asn1 or gbz")
    return DecodedPayload(family, module.from_json(obj))


@dataclass(frozen=True, slots=True)
class DecryptedBlock:
    """One protected block (CRIB §3.5) found in the payload, and what came of it."""

    where: str
    block: bytes
    plaintext: bytes | None
    status: str  # "decrypted", "invalid" (tag failed) or "no-key"
    decoded: Any = None  # the plaintext as A-XDR data, when it parses as such


@dataclass(frozen=True, slots=True)
class Inspection:
    message: GbcsMessage
    parts: FrameParts
    payload: DecodedPayload
    use_case: UseCase | None
    mac: CheckResult
    signature: CheckResult
    decrypted: tuple[DecryptedBlock, ...]


PROTECTED_BLOCK_START = crypto.BLOCK_HEADER  # 31 00000000 (CRIB §3.5)


def protected_blocks(
    payload: DecodedPayload, raw: bytes | None = None
) -> Iterator[tuple[str, bytes]]:
    """Where encrypted content sits: DLMS protected data and GBZ encrypted components.

    ``raw`` (the payload bytes) lets the walk be skipped when no block can be there.
    """
    if raw is not None and PROTECTED_BLOCK_START not in raw:
        return
    if payload.family == "gbz":
        for index, component in enumerate(payload.value.components):
            if isinstance(component.frame, gbz.EncryptedFrame):
                yield f"component[{index}]", component.frame.block
    elif payload.family == "dlms":
        apdu = payload.value
        items = (apdu.body,) if isinstance(apdu, dlms.DataNotification) else apdu.data
        for index, item in enumerate(items):
            yield from _axdr_blocks(item, f"data[{index}]")


def _axdr_blocks(value: axdr.Data, where: str) -> Iterator[tuple[str, bytes]]:
    """IC 30 protected data: structure{array{protection parameters}, octet-string 31...}."""
    if isinstance(value, axdr.Structure):
        items = value.value
        if (
            len(items) >= 2
            and isinstance(items[-2], axdr.Array)
            and isinstance(items[-1], axdr.OctetString)
            and items[-1].value[:5] == PROTECTED_BLOCK_START
        ):
            yield f"{where}[{len(items) - 1}]", items[-1].value
        for index, item in enumerate(items):
            yield from _axdr_blocks(item, f"{where}[{index}]")
    elif isinstance(value, axdr.Array):
        for index, item in enumerate(value.value):
            yield from _axdr_blocks(item, f"{where}[{index}]")


def _decrypt_all(
    header: GroupingHeader, payload: DecodedPayload, raw: bytes, security: SecurityContext | None
) -> tuple[DecryptedBlock, ...]:
    found = []
    for where, block in protected_blocks(payload, raw):
        if security is None:
            found.append(DecryptedBlock(where, block, None, "no-key"))
            continue
        try:
            plaintext = security.decrypt_block(header, block)
        except KeyNotFoundError:
            found.append(DecryptedBlock(where, block, None, "no-key"))
            continue
        except (VerificationError, DecodeError):
            found.append(DecryptedBlock(where, block, None, "invalid"))
            continue
        decoded = None
        if payload.family == "dlms":
            try:
                decoded = axdr.decode(plaintext)
            except DecodeError:
                decoded = None
        found.append(DecryptedBlock(where, block, plaintext, "decrypted", decoded))
    return tuple(found)


def inspect(
    data: bytes, security: SecurityContext | None = None, catalogue: Catalogue = CATALOGUE
) -> Inspection:
    """Decode everything and run every check the keys allow; malformed input raises."""
    message, parts = decode_frame(data)
    payload = decode_payload(message, parts.payload_offset, catalogue)
    if security is None:
        mac = CheckResult.ABSENT if message.mac is None else CheckResult.NO_KEY
        signature = CheckResult.NO_KEY if message.is_signed else CheckResult.ABSENT
    else:
        mac = security.check_mac(message, parts)
        signature = security.check_signature(message, parts)
    decrypted = (
        _decrypt_all(message.header, payload, message.payload, security)
        if PROTECTED_BLOCK_START in message.payload
        else ()
    )
    # Built through a twin: the frozen __init__ is a measurable share of a
    # whole-corpus pass (benchmarks/codec_corpus.py).
    inspection = _new(_InspectionTwin)
    inspection.message = message
    inspection.parts = parts
    inspection.payload = payload
    inspection.use_case = catalogue.get(message.header.other_information.message_code)
    inspection.mac = mac
    inspection.signature = signature
    inspection.decrypted = decrypted
    inspection.__class__ = Inspection
    return inspection  # type: ignore[no-any-return]


_new = object.__new__
_DecodedPayloadTwin = slot_twin(DecodedPayload)
_InspectionTwin = slot_twin(Inspection)


# JSON ------------------------------------------------------------------------------------


def _hex(raw: bytes | None) -> str | None:
    return None if raw is None else raw.hex().upper()


def header_to_json(header: GroupingHeader) -> dict[str, Any]:
    other = header.other_information
    return {
        "cra_flag": header.cra_flag.label,
        "originator_counter": header.originator_counter,
        "originator": _hex(header.business_originator),
        "target": _hex(header.business_target),
        "date_time": None
        if header.date_time is None
        else {"hex": _hex(header.date_time.encode()), "text": str(header.date_time)},
        "other_information": {
            "message_code": other.message_code,
            "supplementary_remote_party": _hex(other.supplementary_remote_party),
            "supplementary_remote_party_counter": other.supplementary_remote_party_counter,
            "supplementary_originator_counter": other.supplementary_originator_counter,
            "certificate": _hex(other.certificate),
        },
    }


def _use_case_json(code: int, use_case: UseCase | None) -> dict[str, Any]:
    """The catalogue's names for a message code, as decode prints them."""
    return {
        "use_case": use_case.use_case if use_case else f"unknown-0x{code:04X}",
        "use_case_name": use_case.name if use_case else None,
        "critical": use_case.critical if use_case else None,
    }


def to_json(inspection: Inspection, *, roundtrip: bool | None = None) -> dict[str, Any]:
    m = inspection.message
    out: dict[str, Any] = {
        "message_code": m.message_code,
        **_use_case_json(m.message_code, inspection.use_case),
    }
    out.update(header_to_json(m.header))
    out.update(
        {
            "mac": inspection.mac.value,
            "signature": inspection.signature.value,
            "mac_bytes": _hex(m.mac),
            "signature_bytes": _hex(m.signature),
            "payload_family": inspection.payload.family,
            "payload": payload_to_json(inspection.payload),
            "payload_hex": _hex(m.payload),
            "decrypted": [
                {
                    "where": d.where,
                    "status": d.status,
                    "block": _hex(d.block),
                    "plaintext": _hex(d.plaintext),
                    "data": None if d.decoded is None else axdr.to_json(d.decoded),
                }
                for d in inspection.decrypted
            ],
        }
    )
    if roundtrip is not None:
        out["roundtrip"] = roundtrip
    return out


def roundtrips(inspection: Inspection, data: bytes) -> bool:
    """Re-encode from the decoded tree (not the kept payload bytes) and compare."""
    payload = encode_payload(inspection.payload)
    return replace(inspection.message, payload=payload).encode() == data


# JSON -> message ----------------------------------------------------------------------------


def _field(obj: dict[str, Any], name: str, path: str) -> Any:
    if name not in obj:
        raise EncodeError(f"{path}.{name} is missing")
    return obj[name]


def _json_bytes(value: Any, path: str, size: int | None = None) -> bytes:
    return hex_field(value, path, size, EncodeError)


def _opt_bytes(value: Any, path: str, size: int | None = None) -> bytes | None:
    return None if value is None else _json_bytes(value, path, size)


def _json_int(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"{path} must be an integer")
    return value


def _opt_int(value: Any, path: str) -> int | None:
    return None if value is None else _json_int(value, path)


# The keys of the ``--json`` form (cli.decode): anything else is a misspelling whose edit
# would be dropped without a word, so it is refused, named.
_MESSAGE_KEYS = frozenset(
    {
        "file",
        "message_code",
        "use_case",
        "use_case_name",
        "critical",
        "cra_flag",
        "originator",
        "target",
        "mac",
        "signature",
        "payload_family",
        "payload",
        "decrypted",
        "originator_counter",
        "date_time",
        "other_information",
        "mac_bytes",
        "signature_bytes",
        "payload_hex",
        "roundtrip",
    }
)
_OTHER_INFORMATION_KEYS = frozenset(
    {
        "message_code",
        "supplementary_remote_party",
        "supplementary_remote_party_counter",
        "supplementary_originator_counter",
        "certificate",
    }
)


def _known_keys(obj: dict[str, Any], known: frozenset[str], path: str) -> None:
    unknown = sorted(set(obj) - known)
    if unknown:
        raise EncodeError(f"{path}: unknown key {unknown[0]!r} (a misspelling would be dropped)")


def message_from_json(obj: Any, catalogue: Catalogue = CATALOGUE) -> GbcsMessage:
    """Rebuild a message from the ``--json`` form.

    Names (``use_case``, ``use_case_name``, ``critical``) may be left out but must be the
    catalogue's for the message code; check results (``mac``, ``signature``,
    ``decrypted``, ``roundtrip``) are decode's findings and are not read.

    The payload comes from the decoded ``payload`` tree when present, else
    ``payload_hex``, so an engineer can edit either. A tree must fit the header: its
    ASN.1 type follows the message code and CRA flag (CRIB §5.2), a GBZ alert header
    the alert flag (§5.3); ``payload_hex`` goes out verbatim, for negative tests.
    ``catalogue`` says which code is the SECMP0013 disconnect.
    """
    if not isinstance(obj, dict):
        raise EncodeError("$ must be a JSON object")
    _known_keys(obj, _MESSAGE_KEYS, "$")
    try:
        cra = CraFlag[str(_field(obj, "cra_flag", "$")).upper()]
    except KeyError:
        raise EncodeError("$.cra_flag must be command, response or alert") from None
    # A header field left out would be dropped from the message: every one is required,
    # null saying it is absent (as decode writes it); null other-information is the
    # message code alone.
    other_obj = _field(obj, "other_information", "$") or {
        "message_code": _field(obj, "message_code", "$"),
        **dict.fromkeys(_OTHER_INFORMATION_KEYS - {"message_code"}),
    }
    if not isinstance(other_obj, dict):
        raise EncodeError("$.other_information must be an object or null")
    p = "$.other_information"
    _known_keys(other_obj, _OTHER_INFORMATION_KEYS, p)
    other = OtherInformation(
        _json_int(_field(other_obj, "message_code", p), p + ".message_code"),
        _opt_bytes(
            _field(other_obj, "supplementary_remote_party", p),
            p + ".supplementary_remote_party",
            8,
        ),
        _opt_int(
            _field(other_obj, "supplementary_remote_party_counter", p),
            p + ".supplementary_remote_party_counter",
        ),
        _opt_int(
            _field(other_obj, "supplementary_originator_counter", p),
            p + ".supplementary_originator_counter",
        ),
        _opt_bytes(_field(other_obj, "certificate", p), p + ".certificate"),
    )
    if (
        "message_code" in obj
        and _json_int(obj["message_code"], "$.message_code") != other.message_code
    ):
        raise EncodeError("$.message_code and $.other_information.message_code differ")
    dt_obj = _field(obj, "date_time", "$")
    date_time = None
    if dt_obj is not None:
        if isinstance(dt_obj, dict):
            _known_keys(dt_obj, frozenset({"hex", "text"}), "$.date_time")
        raw = _json_bytes(
            dt_obj.get("hex") if isinstance(dt_obj, dict) else dt_obj, "$.date_time.hex", 12
        )
        date_time = CosemDateTime.decode(raw)
        text = dt_obj.get("text") if isinstance(dt_obj, dict) else None
        if text is not None and text != str(date_time):  # informational, but not contrary
            raise EncodeError(
                f"$.date_time.text {text!r} disagrees with its hex (it is {str(date_time)!r})"
            )
    header = GroupingHeader(
        cra,
        _json_int(_field(obj, "originator_counter", "$"), "$.originator_counter"),
        _json_bytes(_field(obj, "originator", "$"), "$.originator", 8),
        _json_bytes(_field(obj, "target", "$"), "$.target", 8),
        other,
        date_time,
    )
    tree = obj.get("payload")
    if tree is not None:
        family = _field(obj, "payload_family", "$")
        payload = encode_payload(payload_from_json(family, tree))
    else:
        payload = _json_bytes(_field(obj, "payload_hex", "$"), "$.payload_hex")
    signature = _opt_bytes(_field(obj, "signature_bytes", "$"), "$.signature_bytes")
    if signature is not None and len(signature) not in (0, 64):
        raise EncodeError("$.signature_bytes must be empty (unsigned) or 64 bytes")
    mac = _opt_bytes(_field(obj, "mac_bytes", "$"), "$.mac_bytes", 12)
    message = GbcsMessage(header, payload, signature, mac)
    if tree is not None:
        _check_fits_header(message, family, catalogue)
    names = _use_case_json(other.message_code, catalogue.get(other.message_code))
    for key, value in names.items():  # names may be left out, not contradict the code
        if key in obj and obj[key] != value:
            raise EncodeError(
                f"$.{key} {obj[key]!r} is not message code 0x{other.message_code:04X}'s "
                f"({value!r}); change message_code, and the names follow"
            )
    return message


def _check_fits_header(message: GbcsMessage, family: str, catalogue: Catalogue) -> None:
    """The payload a tree encoded to decodes as that tree's family under the message's
    header: a relabelled CRA flag or message code would otherwise make a message that
    the kit's own decoder refuses."""
    header = message.header
    code = header.other_information.message_code
    where = f"message code 0x{code:04X}, {header.cra_flag.name.lower()}"
    try:
        decoded = decode_payload(message, catalogue=catalogue)
    except DecodeError as exc:
        raise EncodeError(
            f"$.payload does not fit the header ({where}): it would not decode: {exc}"
        ) from None
    if decoded.family != family:
        raise EncodeError(f"$.payload is {family} but would decode as {decoded.family} ({where})")


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_MESSAGE_TAGS_HEX = ("DD", "DF")
"""A GBCS message's first byte in hex (general-ciphering, general-signing); in base64 it is '3'."""
_TYPO_SHARE = 10
"""Text with at most one non-hex character in this many is hex with typos, not base64."""


def parse_input(text: str) -> bytes:
    """Hex (spaces, colons allowed) or base64 text to bytes."""
    cleaned = "".join(text.split()).replace(":", "")
    if cleaned.startswith(("0x", "0X")):
        cleaned = cleaned[2:]
    if not cleaned:
        raise GbcsError("input is empty")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        pass
    # Every hex digit is a base64 character too: hex with a typo (O for 0) whose length is
    # a multiple of 4 would decode as base64 into unrelated bytes. Text that is hex but for
    # a few characters, or starts like a GBCS message in hex, is reported as bad hex.
    bad = [i for i, c in enumerate(cleaned) if c not in _HEX_DIGITS]
    if not bad:
        raise GbcsError(f"input has an odd number of hexadecimal digits ({len(cleaned)})")
    if cleaned[:2].upper() in _MESSAGE_TAGS_HEX or len(bad) * _TYPO_SHARE <= len(cleaned):
        where = bad[0]
        raise GbcsError(
            f"input is not hexadecimal: {cleaned[where]!r} at character {where + 1}"
            f" ({len(bad)} non-hex character{'s' if len(bad) > 1 else ''})"
        )
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise GbcsError("input is neither hexadecimal nor base64") from None
