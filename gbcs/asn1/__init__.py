"""ASN.1 DER payloads: the CS02/CS03/CS04/CS06-CS09, GCS28/59/62 family (CRIB §5.2).

The types live in ``gbcs.asn`` beside this file and are compiled once, on first
use, with asn1tools' DER codec. asn1tools does the encoding and supplies the
schema. Decoding, which sits on the hot path of every message check, runs
through small decoders generated from that same compiled schema, because
asn1tools' DER decoder does not enforce DER: it accepts indefinite and
non-minimal lengths, non-minimal INTEGERs, SEQUENCE members out of order or
unknown at the end, encoded DEFAULT values, non-zero BIT STRING padding and
trailing bytes. Checking that by re-encoding every payload would double the
cost; the generated decoders check DER as they go and are about twice as fast
as asn1tools' decoder alone, so a value that decodes always re-encodes to the
bytes it came from.

One exception to DER is tolerated because real devices produce it: RTDS device
responses to CS02a/CS02b/CS02g use ``82 00 xx`` lengths for 128-255 bytes. Such
length forms are recorded in :attr:`Asn1Payload.length_forms` and reproduced by
:func:`encode`; ``strict=True`` rejects them instead.

Values are asn1tools' Python values: dict for SEQUENCE, list for SEQUENCE OF,
``(name, value)`` for CHOICE, ``(bytes, bit_count)`` for BIT STRING, a naive
UTC :class:`~datetime.datetime` for GeneralizedTime, the name for ENUMERATED,
and the raw TLV bytes for the open types (the signed part of a certificate).
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import importlib.resources
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asn1tools
from asn1tools.codecs import ber, der

from gbcs.catalogue import SECMP0013_DISCONNECT_DEFAULT_CODE
from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import encode_length

__all__ = [
    "DISCONNECT_TYPES",
    "SECMP0013_DISCONNECT_DEFAULT_CODE",
    "Asn1Payload",
    "LengthForms",
    "build",
    "decode",
    "decode_type",
    "encode",
    "from_json",
    "mapping",
    "register",
    "to_json",
    "type_for",
    "type_names",
]

LAYER = "asn1"
_COMMAND, _RESPONSE, _ALERT = 1, 2, 3  # CraFlag values (CRIB §2.2)

# SECMP0013_DISCONNECT_DEFAULT_CODE (0x7F00, re-exported): the SECMP0013 "CS02f
# Disconnect Smart Meter from HAN" has no message code in any GBCS version (GBCS's
# own CS02f, 0x011B, is a credentials read), so the kit picks one outside every
# code GBCS uses (CRIB §7: up to 0x012B, plus 0x1000/0x1001). The code is
# configurable and owned by the catalogue, so it is not in the table below: the
# message layer decodes it with DISCONNECT_TYPES, or a deployment register()s it.
DISCONNECT_TYPES = {_COMMAND: "DisconnectFromHanCommand", _RESPONSE: "DisconnectFromHanResponse"}


def _default_mapping() -> dict[tuple[int, int], str]:
    """(message code, CRA flag) -> type, for every ASN.1 use case of CRIB §5.2."""
    m: dict[tuple[int, int], str] = {}

    def pair(codes: tuple[int, ...], command: str, response: str) -> None:
        for code in codes:
            m[code, _COMMAND] = command
            m[code, _RESPONSE] = response

    # CS02a and the RTDS "CS02f" (0x011B) share their shapes (CRIB §5.2).
    pair(
        (0x0008, 0x011B),
        "ProvideSecurityCredentialDetailsCommand",
        "ProvideSecurityCredentialDetailsResponse",
    )
    pair((0x000A,), "IssueSecurityCredentialsCommand", "IssueSecurityCredentialsResponse")
    pair((0x000B,), "UpdateDeviceCertificateCommand", "UpdateDeviceCertificateResponse")
    pair((0x000C,), "ProvideDeviceCertificateCommand", "ProvideDeviceCertificateResponse")
    pair((0x000D, 0x000E, 0x00AB, 0x00AF), "JoinDeviceCommand", "JoinDeviceResponse")
    pair((0x000F, 0x0010), "UnjoinDeviceCommand", "UnjoinDeviceResponse")
    pair((0x0012,), "ActivateFirmwareCommand", "ActivateFirmwareResponse")
    pair((0x0013,), "ReadDeviceJoinDetailsCommand", "ReadDeviceJoinDetailsResponse")
    # CS02b 0x0100-0x0109 (one code per replacement mode) and CS02g 0x0125/0x0126.
    pair(
        (*range(0x0100, 0x010A), 0x0125, 0x0126),
        "UpdateSecurityCredentialsCommand",
        "UpdateSecurityCredentialsResponse",
    )
    pair(
        (0x0129,), "ReadPpmidHcalcsFirmwareVersionCommand", "ReadPpmidHcalcsFirmwareVersionResponse"
    )
    pair((0x007F,), "SetTimeCommand", "SetTimeResponse")
    pair((0x008C,), "GpfDeviceLogRestoreCommand", "GpfDeviceLogRestoreResponse")
    m[0x00CA, _ALERT] = "ActivateFirmwareAlert"  # CS06 future-dated outcome
    m[0x00CB, _ALERT] = "UpdateSecurityCredentialsAlert"  # CS02b future-dated outcome
    m[0x0124, _ALERT] = "UpdateSecurityCredentialsAlert"  # CS02g future-dated outcome
    m[0x0128, _ALERT] = "FirmwareTransferAlert"  # CCS08, alert code 0x8F8A
    m[0x012B, _ALERT] = "PpmidHcalcsFirmwareActivationAlert"  # CS09, alert code 0x8F8B
    m[0x00B2, _ALERT] = "GpfDeviceLogBackupAlert"  # GCS62, alert code 0x8071
    return m


_MAPPING = _default_mapping()


# (tlv_index, length_octets) of each TLV whose length was not in its shortest form.
LengthForms = tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class Asn1Payload:
    """A decoded ASN.1 payload.

    ``length_forms`` lists ``(tlv_index, length_octets)`` for every TLV whose
    length was not in its shortest form on the wire (``tlv_index`` counts TLVs
    in pre-order, ``length_octets`` is the number of octets after the ``0x8n``
    byte). It describes the bytes received; clear it when changing ``value``.
    """

    type_name: str
    value: Any
    length_forms: LengthForms = field(default=())


class _PayloadBuilder:
    """Asn1Payload's slots, mutable: filled, then switched to Asn1Payload.

    A frozen dataclass __init__ goes through object.__setattr__ per field;
    decode builds its result this way instead (same layout, so CPython allows
    the class switch, and the result is an ordinary Asn1Payload).
    """

    __slots__ = Asn1Payload.__slots__


def _payload(type_name: str, value: Any, length_forms: tuple[tuple[int, int], ...]) -> Asn1Payload:
    p = object.__new__(_PayloadBuilder)
    p.type_name = type_name
    p.value = value
    p.length_forms = length_forms
    p.__class__ = Asn1Payload
    return p


_payload("", None, ())  # fails at import, not at decode, if the layouts ever differ


# --------------------------------------------------------------------------
# Mapping
# --------------------------------------------------------------------------


def type_for(message_code: int, cra_flag: int) -> str | None:
    """ASN.1 type of the payload for (message code, CRA flag), or None."""
    return _MAPPING.get((message_code, cra_flag))


def mapping() -> dict[tuple[int, int], str]:
    """A copy of the whole (message code, CRA flag) -> type table."""
    return dict(_MAPPING)


def register(message_code: int, cra_flag: int, type_name: str, *, replace: bool = False) -> None:
    """Map an extra (message code, CRA flag) to a type, e.g. to move the disconnect code.

    Re-mapping an existing pair to a different type needs ``replace=True``.
    """
    if not 0 <= message_code <= 0xFFFF:
        raise ValueError(f"message code {message_code} is not a uint16")
    if cra_flag not in (_COMMAND, _RESPONSE, _ALERT):
        raise ValueError(f"CRA flag {cra_flag} is not 1, 2 or 3")
    if type_name not in type_names():
        raise ValueError(f"{type_name!r} is not a type of gbcs.asn")
    key = (int(message_code), int(cra_flag))
    current = _MAPPING.get(key)
    if current is not None and current != type_name and not replace:
        raise ValueError(
            f"message code 0x{message_code:04X} CRA {cra_flag} already maps "
            f"to {current}; pass replace=True"
        )
    _MAPPING[key] = type_name


@functools.cache
def _source() -> str:
    return importlib.resources.files(__name__).joinpath("gbcs.asn").read_text("utf-8")


PARSED_CACHE = "gbcs.asn.parsed"


def parse_source(source: str) -> dict[str, Any]:
    """asn1tools' parse of the module: the slow step of compiling (pyparsing, ~0.1 s)."""
    return asn1tools.parse_string(source)


def _parsed() -> dict[str, Any]:
    """The parsed module from the shipped cache when it matches the source, else parsed now.

    The cache (``gbcs.asn.parsed``: the source's SHA-256, then a pickle of the
    parse) takes a tenth of a second off every process start; a stale or
    missing cache only costs that time back. Regenerate it with
    ``python -m gbcs.asn1``; a test checks it is current.
    """
    source = _source()
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    try:
        raw = importlib.resources.files(__name__).joinpath(PARSED_CACHE).read_bytes()
    except (FileNotFoundError, OSError):
        raw = b""
    if raw[:32] == digest:
        return pickle.loads(raw[32:])  # our own package file, never user input
    return parse_source(source)


def write_parsed_cache(folder: Path | None = None) -> Path:
    source = _source()
    target = (folder or Path(__file__).parent) / PARSED_CACHE
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    target.write_bytes(digest + pickle.dumps(parse_source(source), protocol=4))
    return target


@functools.cache
def type_names() -> frozenset[str]:
    """Every type assigned in gbcs.asn (read off the source: no compile needed)."""
    return frozenset(re.findall(r"^([A-Z][\w-]*)\s*::=", _source(), re.MULTILINE))


# --------------------------------------------------------------------------
# Public codec
# --------------------------------------------------------------------------


def decode(
    message_code: int, cra_flag: int, payload: bytes, base: int = 0, *, strict: bool = False
) -> Asn1Payload:
    """Decode the payload of a message; ``base`` is the payload's absolute offset.

    Raises :class:`DecodeError` (layer ``asn1``) for an unmapped code and for
    any malformed, non-DER, truncated or trailing bytes.
    """
    type_name = _MAPPING.get((message_code, cra_flag))
    if type_name is None:
        raise DecodeError(
            LAYER,
            "message code",
            base,
            f"no ASN.1 payload type for message code 0x{message_code:04X} "
            f"with CRA flag {int(cra_flag)}",
        )
    return decode_type(type_name, payload, base, strict=strict)


def decode_type(type_name: str, data: bytes, base: int = 0, *, strict: bool = False) -> Asn1Payload:
    """Decode ``data`` as the named type (also handy for a bare certificate)."""
    try:
        dec = (_DECODERS or _codec().decoders)[type_name]
    except KeyError:
        raise DecodeError(LAYER, type_name, base, "unknown ASN.1 type") from None
    data = bytes(data)
    loose: list[int] = []
    fast = _FAST.get(type_name)
    if fast is None:
        uses = _USES.get(type_name, 0) + 1
        _USES[type_name] = uses
        if uses > _FAST_AFTER:
            fast = _fast(type_name)
    if data and fast is not None:
        try:
            value, end = fast(data, loose)
        except Exception:  # anything unusual: the checked decoder below says what
            end = -1
        if end == len(data):
            if not loose:
                return _payload(type_name, value, ())
            if not strict:
                return _payload(type_name, value, _nested_length_forms(data, type_name, base))
        loose = []
    try:
        if not data:
            raise _Fail(type_name, 0, "empty payload")
        value, end = dec(data, 0, len(data), loose)
        if end != len(data):
            raise _Fail(type_name, end, f"{len(data) - end} trailing bytes after the value")
    except _Fail as e:
        raise DecodeError(LAYER, e.path, base + e.pos, e.reason) from None
    except Exception as e:  # a decoder bug must still surface as a DecodeError
        raise DecodeError(LAYER, type_name, base, f"{type(e).__name__}: {e}") from e
    if not loose:
        return Asn1Payload(type_name, value)
    if strict:
        raise DecodeError(
            LAYER, type_name, base + loose[0], "not DER: length not in its shortest form"
        )
    return Asn1Payload(type_name, value, _nested_length_forms(data, type_name, base))


def _nested_length_forms(data: bytes, type_name: str, base: int) -> tuple[tuple[int, int], ...]:
    """:func:`_length_forms`, with nesting too deep for the walk (thousands of levels an
    open type's contents may hold) a DecodeError, not a RecursionError."""
    try:
        return _length_forms(data)
    except RecursionError:
        raise DecodeError(LAYER, type_name, base, "TLVs nested too deeply") from None


def build(message_code: int, cra_flag: int, value: Any) -> Asn1Payload:
    """Wrap a value as the payload of (message code, CRA flag)."""
    type_name = _MAPPING.get((message_code, cra_flag))
    if type_name is None:
        raise EncodeError(
            f"no ASN.1 payload type for message code 0x{message_code:04X} "
            f"with CRA flag {int(cra_flag)}"
        )
    return Asn1Payload(type_name, value)


def encode(p: Asn1Payload) -> bytes:
    """DER bytes of a payload (with its recorded non-shortest length forms, if any)."""
    if not p.length_forms:
        fast = _FAST_ENCODERS.get(p.type_name)
        if fast is not None:
            data = fast(p.value)
            if data is not None:
                return data
    return _encode_checked(p)


def _encode_checked(p: Asn1Payload) -> bytes:
    """asn1tools' encoder with type and constraint checks: the reference for the fast ones."""
    codec = _codec()
    if p.type_name not in codec.decoders:
        raise EncodeError(f"unknown ASN.1 type {p.type_name!r}")
    try:
        data = bytes(
            codec.spec.encode(p.type_name, p.value, check_types=True, check_constraints=True)
        )
    except Exception as e:
        raise EncodeError(f"{p.type_name}: {e}") from e
    if p.length_forms:
        try:
            data = _apply_length_forms(data, p.length_forms)
        except RecursionError:
            raise EncodeError(f"{p.type_name}: TLVs nested too deeply") from None
    return data


# Fast DER encoders for the few payloads every triage cycle builds (CS07 and CS02f):
# asn1tools' checked encoder costs tens of microseconds a value. Each accepts only
# the plain shape (exact keys, bytes, small ints) and returns None for anything
# else, which the checked encoder then encodes or refuses; tests pin the output
# to the checked encoder's.
_SMALL_INTEGERS = tuple(b"\x02\x01" + bytes((i,)) for i in range(0x80))


def _der_length(n: int) -> bytes | None:
    """The shortest length form, up to the two-byte one these payloads can need."""
    return encode_length(n) if 0 <= n <= 0xFFFF else None


def _fast_small_integer(value: Any) -> bytes | None:
    if type(value) is int and 0 <= value < 0x80:
        return _SMALL_INTEGERS[value]
    return None


def _fast_entity_sequence(value: Any) -> bytes | None:
    """SEQUENCE { deviceId EntityIdentifier } (DisconnectFromHanCommand)."""
    if type(value) is dict and len(value) == 1:
        device = value.get("deviceId")
        if type(device) is bytes and len(device) == 8:
            return b"\x30\x0a\x04\x08" + device
    return None


def _fast_join_details(value: Any) -> bytes | None:
    """ReadDeviceJoinDetailsResponse: a small response code and plain log entries."""
    if type(value) is not dict:
        return None
    code = _fast_small_integer(value.get("responseCode"))
    if code is None:
        return None
    if len(value) == 1:
        return b"\x30\x03" + code
    entries = value.get("deviceLogEntries")
    if len(value) != 2 or type(entries) is not list:
        return None
    parts = []
    for entry in entries:
        if type(entry) is not dict or len(entry) != 2:
            return None
        device = entry.get("deviceId")
        kind = _fast_small_integer(entry.get("deviceType"))
        if type(device) is not bytes or len(device) != 8 or kind is None:
            return None
        parts.append(b"\x30\x0d\x04\x08" + device + kind)
    body = b"".join(parts)
    inner = _der_length(len(body))
    if inner is None:
        return None
    content = code + b"\x30" + inner + body
    outer = _der_length(len(content))
    return None if outer is None else b"\x30" + outer + content


_FAST_ENCODERS: dict[str, Callable[[Any], bytes | None]] = {
    "DisconnectFromHanCommand": _fast_entity_sequence,
    "DisconnectFromHanResponse": _fast_small_integer,
    "ReadDeviceJoinDetailsResponse": _fast_join_details,
}


def to_json(p: Asn1Payload) -> dict[str, Any]:
    """JSON-able form: bytes as upper-case hex, CHOICE as ``{alternative: value}``,
    BIT STRING as ``{"value": hex, "length": bits}`` (X.697 JER style), times as
    their DER text ``YYYYMMDDhhmmss[.f]Z``."""
    codec = _codec()
    try:
        conv = codec.to_json[p.type_name]
    except KeyError:
        raise EncodeError(f"unknown ASN.1 type {p.type_name!r}") from None
    try:
        value = conv(p.value)
    except EncodeError:
        raise
    except Exception as e:  # a value that does not fit the type
        raise EncodeError(f"{p.type_name}: {type(e).__name__}: {e}") from e
    out: dict[str, Any] = {"type": p.type_name, "value": value}
    if p.length_forms:
        out["lengthForms"] = [list(f) for f in p.length_forms]
    return out


def from_json(obj: dict[str, Any]) -> Asn1Payload:
    """Inverse of :func:`to_json`; raises :class:`EncodeError` on a malformed object."""
    codec = _codec()
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str) or "value" not in obj:
        raise EncodeError('expected {"type": <type name>, "value": ...}')
    for key in obj:
        if key not in ("type", "value", "lengthForms"):  # it would be silently dropped
            raise EncodeError(f"unknown key {key!r} beside type, value and lengthForms")
    type_name = obj["type"]
    try:
        conv = codec.from_json[type_name]
    except KeyError:
        raise EncodeError(f"unknown ASN.1 type {type_name!r}") from None
    forms = obj.get("lengthForms", [])
    if not isinstance(forms, list) or not all(
        isinstance(f, list) and len(f) == 2 and all(_is_int(x) and x >= 0 for x in f) for f in forms
    ):
        raise EncodeError("lengthForms must be a list of [tlv_index, length_octets] pairs")
    return Asn1Payload(type_name, conv(obj["value"]), tuple((f[0], f[1]) for f in forms))


# --------------------------------------------------------------------------
# Compilation (once) and the generated decoders / JSON converters
# --------------------------------------------------------------------------

_Decoder = Callable[[bytes, int, int, list], tuple[Any, int]]
_Conv = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _Codec:
    spec: Any  # asn1tools.compiler.Specification
    decoders: dict[str, _Decoder]
    to_json: dict[str, _Conv]
    from_json: dict[str, _Conv]


@functools.cache
def _codec() -> _Codec:
    """Compile gbcs.asn once (asn1tools compiling is the slow part, ~0.2 s)."""
    spec = asn1tools.compile_dict(_parsed(), "der")
    decoders: dict[str, _Decoder] = {}
    to_j: dict[str, _Conv] = {}
    from_j: dict[str, _Conv] = {}
    for name, compiled in spec.types.items():
        limits = compiled.constraints_checker.type
        decoders[name] = _build_decoder(compiled.type, limits, name)
        to_j[name], from_j[name] = _build_json(compiled.type, limits, name)
    _DECODERS.update(decoders)
    return _Codec(spec, decoders, to_j, from_j)


_DECODERS: dict[str, _Decoder] = {}  # _codec().decoders, reachable without a call
_FAST: dict[str, Callable[[bytes, list], tuple[Any, int]]] = {}  # built once a type is busy
_USES: dict[str, int] = {}
# Generating a straight-line decoder costs up to ~8 ms for the certificate-bearing
# types, far more than a few checked decodes: a one-off decode (a CLI run, a cold
# pass) stays on the checked decoder, and a type that keeps coming gets compiled.
_FAST_AFTER = 16


def _fast(type_name: str) -> Callable[[bytes, list], tuple[Any, int]]:
    """The generated fast decoder of a type (see _build_fast)."""
    compiled = _codec().spec.types[type_name]
    fast = _build_fast(compiled.type, compiled.constraints_checker.type, type_name)
    _FAST[type_name] = fast
    return fast


class _Fail(Exception):
    """Internal, cheap decode failure; turned into DecodeError with ``base`` added."""

    def __init__(self, path: str, pos: int, reason: str) -> None:
        super().__init__(reason)
        self.path = path
        self.pos = pos
        self.reason = reason


def _tag_of(node: Any, path: str) -> int:
    tag = bytes(node.tag)
    if len(tag) != 1:
        raise NotImplementedError(f"{path}: multi-byte tags are not supported")
    return tag[0]


def _tags(node: Any, path: str) -> frozenset[int] | None:
    """Tags that can start ``node``; None for an open type (any tag)."""
    if isinstance(node, ber.Choice):
        tags: set[int] = set()
        for member in node.members:
            sub = _tags(member, path)
            if sub is None:
                raise NotImplementedError(f"{path}: open type inside a CHOICE")
            tags |= sub
        return frozenset(tags)
    if isinstance(node, ber.Any):
        return None
    return frozenset((_tag_of(node, path),))


def _bounds(limits: Any) -> tuple[int | None, int | None]:
    lo = getattr(limits, "minimum", "MIN")
    hi = getattr(limits, "maximum", "MAX")
    return (None if lo == "MIN" else lo), (None if hi == "MAX" else hi)


def _header(data: bytes, pos: int, end: int, path: str, loose: list) -> tuple[int, int]:
    """Content bounds of the TLV whose one-byte tag is at ``pos`` (CRIB §1.1 lengths)."""
    p = pos + 1
    if p >= end:
        raise _Fail(path, p, "truncated: length missing")
    n = data[p]
    p += 1
    if n & 0x80:
        k = n & 0x7F
        if k == 0:
            raise _Fail(path, p - 1, "indefinite length (0x80) is not DER")
        if k > 3:
            raise _Fail(path, p - 1, f"{k} length octets; at most 3 are accepted")
        if p + k > end:
            raise _Fail(path, p, "truncated: length octets missing")
        first = data[p]
        n = int.from_bytes(data[p : p + k], "big")
        if n < 0x80 or first == 0:
            loose.append(pos)
        p += k
    q = p + n
    if q > end:
        raise _Fail(path, pos, f"truncated: declares {n} content bytes, {end - p} available")
    return p, q


def _contents(data: bytes, pos: int, end: int, tag: int, path: str, loose: list) -> tuple[int, int]:
    """Check the tag at ``pos``; return the contents' bounds (short form inline)."""
    if data[pos] != tag:
        raise _mismatch(path, tag, data, pos)
    n = data[pos + 1] if pos + 1 < end else 0x80
    if n < 0x80 and pos + 2 + n <= end:
        return pos + 2, pos + 2 + n
    return _header(data, pos, end, path, loose)


def _mismatch(path: str, tag: int, data: bytes, pos: int) -> _Fail:
    return _Fail(path, pos, f"expected tag 0x{tag:02X}, found 0x{data[pos]:02X}")


def _build_decoder(node: Any, limits: Any, path: str) -> _Decoder:
    """A decoder closure for one node of asn1tools' compiled DER tree."""
    if isinstance(node, ber.Sequence):
        return _sequence_decoder(node, limits, path)
    if isinstance(node, ber.Choice):
        alts: dict[int, tuple[str, _Decoder]] = {}
        for member, mlimits in zip(node.members, limits.members, strict=True):
            mdec = _build_decoder(member, mlimits, f"{path}.{member.name}")
            for t in _tags(member, path) or ():
                alts[t] = (member.name, mdec)
        expected = ", ".join(f"0x{t:02X}" for t in sorted(alts))

        def choice(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
            alt = alts.get(data[pos])
            if alt is None:
                raise _Fail(path, pos, f"expected a tag in ({expected}), found 0x{data[pos]:02X}")
            value, pos = alt[1](data, pos, end, loose)
            return (alt[0], value), pos

        return choice
    if isinstance(node, ber.Any):
        return _any_decoder(path)
    if isinstance(node, der.SequenceOf):
        return _sequence_of_decoder(node, limits, path)
    tag = _tag_of(node, path)
    if isinstance(node, ber.Enumerated):
        return _enumerated_decoder(node, tag, path)
    if isinstance(node, der.Integer):
        return _integer_decoder(tag, *_bounds(limits), path)
    if isinstance(node, der.OctetString):
        return _octets_decoder(tag, *_bounds(limits), path)
    if isinstance(node, der.BitString):
        return _bits_decoder(tag, path)
    if isinstance(node, ber.Null):
        return _null_decoder(tag, path)
    if isinstance(node, ber.ObjectIdentifier):
        return _oid_decoder(tag, path)
    if isinstance(node, der.GeneralizedTime):
        return _time_decoder(tag, path)
    raise NotImplementedError(f"{path}: {type(node).__name__} is not supported")


_MANDATORY, _OPTIONAL, _DEFAULT = "mandatory", "optional", "default"
_ANY_TAG = frozenset(range(256))  # an open-type member matches whatever comes


def _sequence_decoder(node: Any, limits: Any, path: str) -> _Decoder:
    if node.additions:
        raise NotImplementedError(f"{path}: extension additions are not supported")
    tag = _tag_of(node, path)
    members = []
    for member, mlimits in zip(node.root_members, limits.members, strict=True):
        mpath = f"{path}.{member.name}"
        kind = _DEFAULT if member.has_default() else _OPTIONAL if member.optional else _MANDATORY
        members.append(
            (
                member.name,
                _tags(member, mpath) or _ANY_TAG,
                _build_decoder(member, mlimits, mpath),
                kind,
                member.default,
                mpath,
            )
        )

    def sequence(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        out = {}
        for name, tags, mdec, kind, default, mpath in members:
            if p < q and data[p] in tags:
                start = p
                out[name], p = mdec(data, p, q, loose)
                if kind is _DEFAULT and out[name] == default:
                    raise _Fail(mpath, start, "not DER: a DEFAULT value is encoded")
            elif kind is _DEFAULT:
                out[name] = default
            elif kind is _MANDATORY:
                if p >= q:
                    raise _Fail(mpath, p, "missing mandatory member")
                raise _Fail(mpath, p, f"unexpected tag 0x{data[p]:02X}")
        if p != q:
            raise _Fail(path, p, f"unexpected tag 0x{data[p]:02X} after the last member")
        return out, q

    return sequence


def _sequence_of_decoder(node: Any, limits: Any, path: str) -> _Decoder:
    tag = _tag_of(node, path)
    lo, hi = _bounds(limits)
    element = _build_decoder(node.element_type, limits.element_type, path + "[]")

    def sequence_of(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        out = []
        while p < q:
            value, p = element(data, p, q, loose)
            out.append(value)
        if (lo is not None and len(out) < lo) or (hi is not None and len(out) > hi):
            raise _Fail(path, pos, f"{len(out)} elements, expected {lo}..{hi}")
        return out, q

    return sequence_of


def _check_integer(data: bytes, p: int, q: int, path: str, pos: int) -> None:
    if q == p:
        raise _Fail(path, pos, "empty INTEGER")
    if q - p > 1 and (
        (data[p] == 0 and data[p + 1] < 0x80) or (data[p] == 0xFF and data[p + 1] >= 0x80)
    ):
        raise _Fail(path, pos, "not DER: INTEGER not in its shortest form")


def _integer_decoder(tag: int, lo: int | None, hi: int | None, path: str) -> _Decoder:
    def integer(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        _check_integer(data, p, q, path, pos)
        value = int.from_bytes(data[p:q], "big", signed=True)
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise _Fail(path, pos, f"{value} is outside {lo}..{hi}")
        return value, q

    return integer


def _enumerated_decoder(node: Any, tag: int, path: str) -> _Decoder:
    names = dict(node.value_to_data)
    if node.has_extension_marker:
        raise NotImplementedError(f"{path}: extensible ENUMERATED is not supported")

    def enumerated(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        _check_integer(data, p, q, path, pos)
        value = int.from_bytes(data[p:q], "big", signed=True)
        try:
            return names[value], q
        except KeyError:
            raise _Fail(path, pos, f"{value} is not a defined value") from None

    return enumerated


def _octets_decoder(tag: int, lo: int | None, hi: int | None, path: str) -> _Decoder:
    def octets(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        if (lo is not None and q - p < lo) or (hi is not None and q - p > hi):
            size = lo if lo == hi else f"{lo}..{hi}"
            raise _Fail(path, pos, f"{q - p} bytes, expected {size}")
        return data[p:q], q

    return octets


def _bits_decoder(tag: int, path: str) -> _Decoder:
    def bits(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        if q == p:
            raise _Fail(path, pos, "BIT STRING without its unused-bits octet")
        unused = data[p]
        if unused > 7 or (unused and q - p == 1):
            raise _Fail(path, p, f"{unused} unused bits is impossible here")
        if unused and data[q - 1] & ((1 << unused) - 1):
            raise _Fail(path, q - 1, "not DER: unused bits are not zero")
        return (data[p + 1 : q], 8 * (q - p - 1) - unused), q

    return bits


def _null_decoder(tag: int, path: str) -> _Decoder:
    def null(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        if q != p:
            raise _Fail(path, pos, "NULL with contents")
        return None, q

    return null


_OIDS: dict[bytes, str] = {}  # contents -> dotted text; the few OIDs GBCS uses repeat a lot


def _oid_text(contents: bytes) -> str:
    """X.690 8.19 sub-identifiers to dotted text, refusing non-shortest forms."""
    if not contents or contents[-1] & 0x80:
        raise ValueError("OBJECT IDENTIFIER empty or truncated")
    arcs: list[int] = []
    value = 0
    fresh = True
    for b in contents:
        if fresh and b == 0x80:
            raise ValueError("not DER: sub-identifier not in its shortest form")
        value = (value << 7) | (b & 0x7F)
        fresh = not b & 0x80
        if fresh:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, (first, arcs[0] - 40 * first, *arcs[1:])))


def _oid_decoder(tag: int, path: str) -> _Decoder:
    def oid(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        contents = data[p:q]
        text = _OIDS.get(contents)
        if text is None:
            try:
                text = _oid_text(contents)
            except ValueError as e:
                raise _Fail(path, pos, str(e)) from None
            if len(_OIDS) < 256:
                _OIDS[contents] = text
        return text, q

    return oid


_TIME = re.compile(rb"(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(?:\.(\d{0,5}[1-9]))?Z")


def _parse_time(text: bytes) -> _dt.datetime:
    """DER GeneralizedTime ``YYYYMMDDhhmmss[.f]Z`` (CRIB §1.4) as a naive UTC datetime.

    Years before 1000 are refused: asn1tools re-encodes them with 3 digits.
    """
    m = _TIME.fullmatch(text)
    if m is None:
        raise ValueError(f"{text!r} is not a DER GeneralizedTime (YYYYMMDDhhmmss[.f]Z)")
    year, month, day, hour, minute, second, fraction = m.groups()
    if int(year) < 1000:
        raise ValueError(f"year {int(year)} is not supported")
    micro = int(fraction.ljust(6, b"0")) if fraction else 0
    return _dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro)


def _format_time(value: _dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(_dt.UTC).replace(tzinfo=None)
    if value.year < 1000:
        raise EncodeError(f"year {value.year} is not supported")
    text = value.strftime("%Y%m%d%H%M%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}".rstrip("0")
    return text + "Z"


def _time_decoder(tag: int, path: str) -> _Decoder:
    def time(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p, q = _contents(data, pos, end, tag, path, loose)
        try:
            return _parse_time(data[p:q]), q
        except ValueError as e:
            raise _Fail(path, pos, str(e)) from None

    return time


def _any_decoder(path: str) -> _Decoder:
    """Open type: the whole TLV, kept byte for byte (its length form included)."""

    def any_(data: bytes, pos: int, end: int, loose: list) -> tuple[Any, int]:
        p = pos
        if data[p] & 0x1F == 0x1F:  # multi-byte tag number
            p += 1
            while p < end and data[p] & 0x80:
                p += 1
            if p >= end:
                raise _Fail(path, pos, "truncated tag")
        _, q = _header(data, p, end, path, [])
        return data[pos:q], q

    return any_


# --------------------------------------------------------------------------
# Fast decoders: one straight-line Python function per type, generated as source
# --------------------------------------------------------------------------
#
# The checked decoders above cost a few closure calls per TLV. Each type also
# gets one generated function that decodes the whole tree inline (no call per
# TLV, constants baked in, no paths built). It only recognises well-formed
# input: on anything else it raises (_Slow, or IndexError/KeyError/ValueError
# on garbage), and decode_type re-runs the checked decoder, which either
# raises the precise error or returns the value. Both record non-shortest
# length forms in ``loose`` at the same positions, in the same order.


class _Slow(Exception):
    """The fast decoder met something it leaves to the checked decoder."""


def _oid_miss(contents: bytes) -> str:
    """_oid_decoder's cache miss (ValueError for malformed contents)."""
    text = _oid_text(contents)
    if len(_OIDS) < 256:
        _OIDS[contents] = text
    return text


class _FastGen:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.consts: dict[str, Any] = {
            "_Slow": _Slow,
            "_OIDS": _OIDS,
            "_oid_miss": _oid_miss,
            "_parse_time": _parse_time,
        }
        self.count = 0

    def var(self) -> str:
        self.count += 1
        return str(self.count)

    def const(self, value: Any) -> str:
        name = f"_k{len(self.consts)}"
        self.consts[name] = value
        return name

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)

    def header(self, d: int, p: str, q: str, n: str, loose: bool = True) -> tuple[str, str]:
        """Length at p + 1 (tag already checked); sets c<n> and e<n>, the content bounds."""
        c, e, ln = f"c{n}", f"e{n}", f"L{n}"
        self.emit(d, f"{ln} = data[{p} + 1]")
        self.emit(d, f"if {ln} < 0x80:")
        self.emit(d + 1, f"{c} = {p} + 2")
        self.emit(d, f"elif {ln} == 0x81:")
        self.emit(d + 1, f"{ln} = data[{p} + 2]")
        self.emit(d + 1, f"{c} = {p} + 3")
        if loose:
            self.emit(d + 1, f"if {ln} < 0x80:")
            self.emit(d + 2, f"loose.append({p})")
        self.emit(d, f"elif {ln} == 0x82:")
        self.emit(d + 1, f"{ln} = data[{p} + 2] << 8 | data[{p} + 3]")
        self.emit(d + 1, f"{c} = {p} + 4")
        if loose:
            self.emit(d + 1, f"if {ln} < 0x100:")
            self.emit(d + 2, f"loose.append({p})")
        self.emit(d, "else:")
        self.emit(d + 1, "raise _Slow")
        self.emit(d, f"{e} = {c} + {ln}")
        self.emit(d, f"if {e} > {q}:")
        self.emit(d + 1, "raise _Slow")
        return c, e

    def tag_test(self, tags: frozenset[int], p: str) -> str:
        if len(tags) == 1:
            return f"data[{p}] == {next(iter(tags))}"
        return f"data[{p}] in {self.const(tags)}"

    def node(self, node: Any, limits: Any, d: int, p: str, q: str, v: str, checked: bool) -> None:
        """Decode the TLV at ``p`` (p < q holds) into ``v`` and move ``p`` past it."""
        n = self.var()
        if isinstance(node, ber.Choice):
            alts: dict[int, int] = {}
            for i, member in enumerate(node.members):
                for t in _tags(member, "") or ():
                    alts[t] = i
            first = True
            for i, (member, mlimits) in enumerate(zip(node.members, limits.members, strict=True)):
                tags = frozenset(t for t, j in alts.items() if j == i)
                if not tags:
                    continue
                self.emit(d, f"{'if' if first else 'elif'} {self.tag_test(tags, p)}:")
                first = False
                own = _tags(member, "")
                self.node(member, mlimits, d + 1, p, q, f"a{n}", own == tags)
                self.emit(d + 1, f"{v} = ({member.name!r}, a{n})")
            self.emit(d, "else:")
            self.emit(d + 1, "raise _Slow")
            return
        if isinstance(node, ber.Any):
            self.emit(d, f"if data[{p}] & 0x1F == 0x1F:")
            self.emit(d + 1, "raise _Slow")
            _, e = self.header(d, p, q, n, loose=False)
            self.emit(d, f"{v} = data[{p}:{e}]")
            self.emit(d, f"{p} = {e}")
            return
        tag = _tag_of(node, "")
        if not checked:
            self.emit(d, f"if data[{p}] != {tag}:")
            self.emit(d + 1, "raise _Slow")
        c, e = self.header(d, p, q, n)
        if isinstance(node, ber.Sequence):
            self.sequence(node, limits, d, c, e, v, n)
        elif isinstance(node, der.SequenceOf):
            lo, hi = _bounds(limits)
            s = f"s{n}"
            self.emit(d, f"{v} = []")
            self.emit(d, f"{s} = {c}")
            self.emit(d, f"while {s} < {e}:")
            self.node(node.element_type, limits.element_type, d + 1, s, e, f"x{n}", False)
            self.emit(d + 1, f"{v}.append(x{n})")
            if lo is not None:
                self.emit(d, f"if len({v}) < {lo}:")
                self.emit(d + 1, "raise _Slow")
            if hi is not None:
                self.emit(d, f"if len({v}) > {hi}:")
                self.emit(d + 1, "raise _Slow")
        elif isinstance(node, ber.Enumerated | der.Integer):
            self.emit(d, f"if {e} - {c} == 1:")
            self.emit(d + 1, f"{v} = data[{c}]")
            self.emit(d + 1, f"if {v} >= 0x80:")
            self.emit(d + 2, f"{v} -= 0x100")
            self.emit(d, "else:")
            self.emit(d + 1, f"if {e} == {c} or (data[{c}] == 0 and data[{c} + 1] < 0x80) or (")
            self.emit(d + 2, f"data[{c}] == 0xFF and data[{c} + 1] >= 0x80")
            self.emit(d + 1, "):")
            self.emit(d + 2, "raise _Slow")
            self.emit(d + 1, f"{v} = int.from_bytes(data[{c}:{e}], 'big', signed=True)")
            if isinstance(node, ber.Enumerated):
                if node.has_extension_marker:
                    raise NotImplementedError("extensible ENUMERATED is not supported")
                self.emit(d, f"{v} = {self.const(dict(node.value_to_data))}[{v}]")
            else:
                lo, hi = _bounds(limits)
                if lo is not None:
                    self.emit(d, f"if {v} < {lo}:")
                    self.emit(d + 1, "raise _Slow")
                if hi is not None:
                    self.emit(d, f"if {v} > {hi}:")
                    self.emit(d + 1, "raise _Slow")
        elif isinstance(node, der.OctetString):
            lo, hi = _bounds(limits)
            if lo is not None and lo == hi:
                self.emit(d, f"if {e} - {c} != {lo}:")
                self.emit(d + 1, "raise _Slow")
            else:
                if lo is not None:
                    self.emit(d, f"if {e} - {c} < {lo}:")
                    self.emit(d + 1, "raise _Slow")
                if hi is not None:
                    self.emit(d, f"if {e} - {c} > {hi}:")
                    self.emit(d + 1, "raise _Slow")
            self.emit(d, f"{v} = data[{c}:{e}]")
        elif isinstance(node, der.BitString):
            self.emit(d, f"u{n} = data[{c}]")  # IndexError when empty or past the buffer
            self.emit(d, f"if {e} == {c}:")
            self.emit(d + 1, "raise _Slow")
            self.emit(d, f"if u{n} and (u{n} > 7 or {e} - {c} == 1 or ")
            self.emit(d + 1, f"data[{e} - 1] & ((1 << u{n}) - 1)):")
            self.emit(d + 1, "raise _Slow")
            self.emit(d, f"{v} = (data[{c} + 1:{e}], 8 * ({e} - {c} - 1) - u{n})")
        elif isinstance(node, ber.Null):
            self.emit(d, f"if {e} != {c}:")
            self.emit(d + 1, "raise _Slow")
            self.emit(d, f"{v} = None")
        elif isinstance(node, ber.ObjectIdentifier):
            self.emit(d, f"{v} = data[{c}:{e}]")
            self.emit(d, f"{v} = _OIDS.get({v}) or _oid_miss({v})")
        elif isinstance(node, der.GeneralizedTime):
            self.emit(d, f"{v} = _parse_time(data[{c}:{e}])")
        else:
            raise NotImplementedError(f"{type(node).__name__} is not supported")
        self.emit(d, f"{p} = {e}")

    def sequence(self, node: Any, limits: Any, d: int, c: str, e: str, v: str, n: str) -> None:
        if node.additions:
            raise NotImplementedError("extension additions are not supported")
        s = f"s{n}"
        self.emit(d, f"{s} = {c}")
        pending: list[str] = []  # members decoded but not yet in the dict
        made = False
        for i, (member, mlimits) in enumerate(zip(node.root_members, limits.members, strict=True)):
            m = f"m{n}_{i}"
            tags = _tags(member, "")
            test = f"{s} < {e}" if tags is None else f"{s} < {e} and {self.tag_test(tags, s)}"
            checked = tags is not None and len(tags) == 1
            if member.has_default():
                default = self.const(member.default)
                self.emit(d, f"if {test}:")
                self.node(member, mlimits, d + 1, s, e, m, checked)
                self.emit(d + 1, f"if {m} == {default}:")
                self.emit(d + 2, "raise _Slow")
                self.emit(d, "else:")
                self.emit(d + 1, f"{m} = {default}")
            elif member.optional:
                if not made:
                    self.emit(d, f"{v} = {{{', '.join(pending)}}}")
                    pending, made = [], True
                self.emit(d, f"if {test}:")
                self.node(member, mlimits, d + 1, s, e, m, checked)
                self.emit(d + 1, f"{v}[{member.name!r}] = {m}")
                continue
            else:
                self.emit(d, f"if not ({test}):")
                self.emit(d + 1, "raise _Slow")
                self.node(member, mlimits, d, s, e, m, checked)
            if made:
                self.emit(d, f"{v}[{member.name!r}] = {m}")
            else:
                pending.append(f"{member.name!r}: {m}")
        if not made:
            self.emit(d, f"{v} = {{{', '.join(pending)}}}")
        self.emit(d, f"if {s} != {e}:")
        self.emit(d + 1, "raise _Slow")


def _build_fast(node: Any, limits: Any, name: str) -> Callable[[bytes, list], tuple[Any, int]]:
    """The generated fast decoder of one type: ``(data, loose) -> (value, end)``."""
    g = _FastGen()
    g.emit(0, "def fast(data, loose):")
    g.emit(1, "p = 0")
    g.emit(1, "q = len(data)")
    g.node(node, limits, 1, "p", "q", "v", False)
    g.emit(1, "return v, p")
    namespace = dict(g.consts)
    exec(compile("\n".join(g.lines), f"<gbcs.asn1 fast decoder {name}>", "exec"), namespace)
    return namespace["fast"]


# --------------------------------------------------------------------------
# JSON converters, generated from the same tree
# --------------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _hex(x: Any, path: str) -> bytes:
    if not isinstance(x, str):
        raise EncodeError(f"{path}: expected a hex string, got {type(x).__name__}")
    try:
        return bytes.fromhex(x)
    except ValueError:
        raise EncodeError(f"{path}: {x!r} is not hex") from None


def _build_json(node: Any, limits: Any, path: str) -> tuple[_Conv, _Conv]:
    """(to_json, from_json) for one node; mirrors _build_decoder."""
    if isinstance(node, ber.Sequence):
        members = []
        for member, mlimits in zip(node.root_members, limits.members, strict=True):
            to_m, from_m = _build_json(member, mlimits, f"{path}.{member.name}")
            members.append(
                (member.name, to_m, from_m, member.optional, member.has_default(), member.default)
            )
        names = {m[0] for m in members}

        def seq_to(v: Any) -> Any:
            return {name: to_m(v[name]) for name, to_m, *_ in members if name in v}

        def seq_from(x: Any) -> Any:
            if not isinstance(x, dict):
                raise EncodeError(f"{path}: expected an object")
            unknown = set(x) - names
            if unknown:
                raise EncodeError(f"{path}: unknown members {sorted(unknown)}")
            out = {}
            for name, _, from_m, optional, has_default, default in members:
                if name in x:
                    out[name] = from_m(x[name])
                elif has_default:
                    out[name] = default
                elif not optional:
                    raise EncodeError(f"{path}.{name}: missing")
            return out

        return seq_to, seq_from
    if isinstance(node, der.SequenceOf):
        to_e, from_e = _build_json(node.element_type, limits.element_type, path + "[]")

        def list_from(x: Any) -> Any:
            if not isinstance(x, list):
                raise EncodeError(f"{path}: expected a list")
            return [from_e(e) for e in x]

        return (lambda v: [to_e(e) for e in v]), list_from
    if isinstance(node, ber.Choice):
        alts = {
            m.name: _build_json(m, ml, f"{path}.{m.name}")
            for m, ml in zip(node.members, limits.members, strict=True)
        }

        def choice_from(x: Any) -> Any:
            if not isinstance(x, dict) or len(x) != 1 or next(iter(x)) not in alts:
                raise EncodeError(f"{path}: expected one of {sorted(alts)} as a 1-key object")
            ((name, inner),) = x.items()
            return name, alts[name][1](inner)

        return (lambda v: {v[0]: alts[v[0]][0](v[1])}), choice_from
    if isinstance(node, ber.Any):
        one_tlv = _any_decoder(path)

        def open_from(x: Any) -> Any:
            # Emitted verbatim by the encoder: anything but one whole TLV would make a
            # message the decoder refuses (the signed part of a certificate, say).
            value = _hex(x, path)
            if not value:
                raise EncodeError(f"{path}: an open type needs one TLV, not nothing")
            try:
                _, end = one_tlv(value, 0, len(value), [])
            except _Fail as e:
                raise EncodeError(f"{path}: not one TLV: {e.reason} at byte {e.pos}") from None
            if end != len(value):
                raise EncodeError(
                    f"{path}: not one TLV: {len(value) - end} bytes after the first TLV"
                )
            return value

        return (lambda v: bytes(v).hex().upper()), open_from
    if isinstance(node, der.OctetString):

        def bytes_from(x: Any) -> Any:
            return _hex(x, path)

        return (lambda v: bytes(v).hex().upper()), bytes_from
    if isinstance(node, der.BitString):

        def bits_from(x: Any) -> Any:
            if not isinstance(x, dict) or set(x) != {"value", "length"} or not _is_int(x["length"]):
                raise EncodeError(f"{path}: expected {{'value': hex, 'length': bits}}")
            value, length = _hex(x["value"], path), x["length"]
            if not 8 * len(value) - 7 <= length <= 8 * len(value) and (value or length):
                raise EncodeError(f"{path}: {length} bits do not fill {len(value)} bytes")
            unused = 8 * len(value) - length
            if unused and value[-1] & ((1 << unused) - 1):
                # DER needs zero padding; dropping the bits would change the edit silently.
                raise EncodeError(
                    f"{path}: bits beyond the {length} given are set in {x['value']!r}"
                )
            return value, length

        return (lambda v: {"value": bytes(v[0]).hex().upper(), "length": v[1]}), bits_from
    if isinstance(node, der.GeneralizedTime):

        def time_from(x: Any) -> Any:
            if not isinstance(x, str):
                raise EncodeError(f"{path}: expected a YYYYMMDDhhmmssZ string")
            try:
                return _parse_time(x.encode("ascii"))
            except (ValueError, UnicodeEncodeError) as e:
                raise EncodeError(f"{path}: {e}") from None

        return _format_time, time_from
    if isinstance(node, ber.Enumerated):
        allowed = set(node.value_to_data.values())

        def enum_from(x: Any) -> Any:
            if not isinstance(x, str) or x not in allowed:
                raise EncodeError(f"{path}: {x!r} is not one of {sorted(allowed)}")
            return x

        return (lambda v: v), enum_from
    if isinstance(node, ber.Null):

        def null_from(x: Any) -> Any:
            if x is not None:
                raise EncodeError(f"{path}: expected null")
            return None

        return (lambda v: None), null_from
    if isinstance(node, der.Integer):

        def int_from(x: Any) -> Any:
            if not _is_int(x):
                raise EncodeError(f"{path}: expected an integer")
            return x

        return (lambda v: v), int_from
    if isinstance(node, ber.ObjectIdentifier):

        def oid_from(x: Any) -> Any:
            if not isinstance(x, str) or not re.fullmatch(r"\d+(\.\d+)+", x):
                raise EncodeError(f"{path}: expected a dotted OID string")
            first, second = (int(a) for a in x.split(".")[:2])
            if first > 2 or (first < 2 and second > 39):  # X.690 8.19.4: first subidentifier
                raise EncodeError(f"{path}: {x} is not an OID (arcs {first}.{second})")
            return x

        return (lambda v: v), oid_from
    raise NotImplementedError(f"{path}: {type(node).__name__} is not supported")


# --------------------------------------------------------------------------
# Non-shortest length forms (RTDS device responses, see module docstring)
# --------------------------------------------------------------------------

# A parsed TLV: (tag bytes, length octets after 0x8n or 0 for short form,
# content start, content end, children or None when primitive/opaque).
_Tlv = tuple[bytes, int, int, int, "list | None"]


def _parse_tlvs(data: bytes, start: int, end: int) -> list[_Tlv] | None:
    """Every TLV of data[start:end], recursing into constructed ones; None if not TLVs.

    A constructed TLV whose contents are not TLVs (possible inside an open
    type) is kept opaque, so input and re-encoding always yield the same tree.
    """
    out: list[_Tlv] = []
    p = start
    while p < end:
        t = p
        if data[p] & 0x1F == 0x1F:
            p += 1
            while p < end and data[p] & 0x80:
                p += 1
        p += 1
        if p >= end:
            return None
        tag = data[t:p]
        n = data[p]
        p += 1
        k = 0
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or p + k > end:
                return None
            n = int.from_bytes(data[p : p + k], "big")
            p += k
        if p + n > end:
            return None
        children = _parse_tlvs(data, p, p + n) if tag[0] & 0x20 else None
        out.append((tag, k, p, p + n, children))
        p += n
    return out


def _minimal_octets(n: int) -> int:
    return 0 if n < 0x80 else (n.bit_length() + 7) // 8


def _length_forms(data: bytes) -> tuple[tuple[int, int], ...]:
    """(pre-order TLV index, length octets) of every non-shortest length in ``data``.

    Walks exactly as :func:`_parse_tlvs` does (same opaque rule) without
    building the tree: it runs on every decode of such a payload.
    """
    forms: list[tuple[int, int]] = []

    def walk(start: int, end: int, index: int) -> int:
        p = start
        while p < end:
            constructed = data[p] & 0x20
            if data[p] & 0x1F == 0x1F:
                p += 1
                while p < end and data[p] & 0x80:
                    p += 1
            p += 1
            if p >= end:
                return -1
            n = data[p]
            p += 1
            k = 0
            if n & 0x80:
                k = n & 0x7F
                if k == 0 or p + k > end:
                    return -1
                n = int.from_bytes(data[p : p + k], "big")
                p += k
            if p + n > end:
                return -1
            if k != (0 if n < 0x80 else (n.bit_length() + 7) // 8):
                forms.append((index, k))
            index += 1
            if constructed:
                mark = len(forms)
                after = walk(p, p + n, index)
                if after < 0:
                    del forms[mark:]  # not TLVs inside: opaque, like _parse_tlvs
                else:
                    index = after
            p += n
        return index

    return tuple(forms) if walk(0, len(data), 0) >= 0 else ()


def _apply_length_forms(data: bytes, forms: tuple[tuple[int, int], ...]) -> bytes:
    wanted = dict(forms)
    index = 0

    def emit(tlvs: list[_Tlv]) -> bytes:
        nonlocal index
        parts = []
        for tag, _k, start, stop, children in tlvs:
            k = wanted.pop(index, None)
            index += 1
            content = data[start:stop] if children is None else emit(children)
            n = len(content)
            if k is None:
                k = _minimal_octets(n)
            elif k < _minimal_octets(n) or k > 3:
                raise EncodeError(
                    f"length form of TLV {index - 1}: {n} does not fit {k} length octets"
                )
            length = bytes((n,)) if k == 0 else bytes((0x80 | k,)) + n.to_bytes(k, "big")
            parts.append(tag + length + content)
        return b"".join(parts)

    out = emit(_parse_tlvs(data, 0, len(data)) or [])
    if wanted:
        raise EncodeError(f"length forms name TLVs {sorted(wanted)} that the value does not have")
    return out
