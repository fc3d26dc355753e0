"""A-XDR ``Data`` values, the typed payload of every DLMS APDU (CRIB §5.1).

Layout per the DLMS UA Blue Book ``Data`` CHOICE: a tag byte, then the
content. Lengths and element counts use the DER-style length form (CRIB §1.1),
minimal forms only, so ``encode(decode(b)) == b`` for every accepted input.

Every value is an immutable dataclass holding exactly what was on the wire:
integers as ``int``, strings as raw ``bytes`` (a visible-string with a stray
byte still round-trips), floats, date, time and date-time as their raw bytes
(a NaN payload survives). Booleans are strict: only ``00`` and ``FF`` decode.

The decoder is the hot path of DLMS decoding (every RTDS payload goes through
it), so it works on ``data``/``pos`` directly, decodes leaves inline, builds
objects without ``__init__``, shares the instances of one-byte values and
unpacks integer-only compact arrays and arrays of same-shape elements with
:mod:`struct`. A fast loop that trusts the input goes first; at the first
oddity the checked loop decodes again from the same position, so errors
still carry exact absolute offsets. Hostile input is bounded: nesting depth
(:data:`MAX_DEPTH`) and the number of values a compact array may expand to.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import CosemDateTime, Reader, encode_length

__all__ = [
    "MAX_DEPTH",
    "Array",
    "Bcd",
    "BitString",
    "Boolean",
    "CompactArray",
    "Data",
    "Date",
    "DateTime",
    "DontCare",
    "DoubleLong",
    "DoubleLongUnsigned",
    "Enum",
    "Float32",
    "Float64",
    "Integer",
    "Long",
    "Long64",
    "Long64Unsigned",
    "LongUnsigned",
    "NullData",
    "OctetString",
    "Structure",
    "Tag",
    "Time",
    "TypeDescription",
    "Unsigned",
    "Utf8String",
    "VisibleString",
    "data_class",
    "decode",
    "encode",
    "from_json",
    "read",
    "read_sequence",
    "to_json",
    "type_from_json",
    "type_to_json",
]

LAYER = "axdr"
MAX_DEPTH = 64
"""Deepest container nesting accepted; keeps hostile input off the recursion limit."""


class Tag(enum.IntEnum):
    """Data CHOICE tags (Blue Book ``Data`` and ``TypeDescription``)."""

    NULL_DATA = 0x00
    ARRAY = 0x01
    STRUCTURE = 0x02
    BOOLEAN = 0x03
    BIT_STRING = 0x04
    DOUBLE_LONG = 0x05
    DOUBLE_LONG_UNSIGNED = 0x06
    OCTET_STRING = 0x09
    VISIBLE_STRING = 0x0A
    UTF8_STRING = 0x0C
    BCD = 0x0D
    INTEGER = 0x0F
    LONG = 0x10
    UNSIGNED = 0x11
    LONG_UNSIGNED = 0x12
    COMPACT_ARRAY = 0x13
    LONG64 = 0x14
    LONG64_UNSIGNED = 0x15
    ENUM = 0x16
    FLOAT32 = 0x17
    FLOAT64 = 0x18
    DATE_TIME = 0x19
    DATE = 0x1A
    TIME = 0x1B
    DONT_CARE = 0xFF


# ---------------------------------------------------------------------------
# Value classes


class Data:
    """Base of every A-XDR value; ``TAG`` and ``TYPE`` name the CHOICE arm."""

    __slots__ = ()
    TAG: int
    TYPE: str

    def encode(self) -> bytes:
        return encode(self)


@dataclass(frozen=True, slots=True)
class NullData(Data):
    TAG = Tag.NULL_DATA
    TYPE = "null-data"


@dataclass(frozen=True, slots=True)
class DontCare(Data):
    """Blue Book ``dont-care [255]``: a tag with no content."""

    TAG = Tag.DONT_CARE
    TYPE = "dont-care"


@dataclass(frozen=True, slots=True)
class Array(Data):
    """SEQUENCE OF Data; DLMS expects one element type, not enforced here."""

    value: tuple[Data, ...] = ()
    TAG = Tag.ARRAY
    TYPE = "array"


@dataclass(frozen=True, slots=True)
class Structure(Data):
    value: tuple[Data, ...] = ()
    TAG = Tag.STRUCTURE
    TYPE = "structure"


@dataclass(frozen=True, slots=True)
class Boolean(Data):
    """Encoded ``FF`` (true) or ``00`` (false); other bytes are refused on decode."""

    value: bool
    TAG = Tag.BOOLEAN
    TYPE = "boolean"


@dataclass(frozen=True, slots=True)
class BitString(Data):
    """``length`` bits, packed MSB first into ``value``; padding bits kept as sent."""

    value: bytes
    length: int
    TAG = Tag.BIT_STRING
    TYPE = "bit-string"

    @classmethod
    def from_bits(cls, bits: str) -> BitString:
        """``"1100"`` -> BitString(b"\\xc0", 4)."""
        if any(c not in "01" for c in bits):
            raise EncodeError(f"bit-string text {bits!r} holds characters other than 0 and 1")
        padded = bits + "0" * (-len(bits) % 8)
        raw = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
        return cls(raw, len(bits))

    @property
    def bits(self) -> str:
        text = "".join(f"{b:08b}" for b in self.value)
        return text[: self.length]


@dataclass(frozen=True, slots=True)
class _Int(Data):
    value: int
    SIZE = 0
    SIGNED = False


class DoubleLong(_Int):
    __slots__ = ()
    TAG = Tag.DOUBLE_LONG
    TYPE = "double-long"
    SIZE = 4
    SIGNED = True


class DoubleLongUnsigned(_Int):
    __slots__ = ()
    TAG = Tag.DOUBLE_LONG_UNSIGNED
    TYPE = "double-long-unsigned"
    SIZE = 4


class Bcd(_Int):
    """Blue Book ``bcd [13] Integer8``: kept as the signed byte value."""

    __slots__ = ()
    TAG = Tag.BCD
    TYPE = "bcd"
    SIZE = 1
    SIGNED = True


class Integer(_Int):
    __slots__ = ()
    TAG = Tag.INTEGER
    TYPE = "integer"
    SIZE = 1
    SIGNED = True


class Long(_Int):
    __slots__ = ()
    TAG = Tag.LONG
    TYPE = "long"
    SIZE = 2
    SIGNED = True


class Unsigned(_Int):
    __slots__ = ()
    TAG = Tag.UNSIGNED
    TYPE = "unsigned"
    SIZE = 1


class LongUnsigned(_Int):
    __slots__ = ()
    TAG = Tag.LONG_UNSIGNED
    TYPE = "long-unsigned"
    SIZE = 2


class Long64(_Int):
    __slots__ = ()
    TAG = Tag.LONG64
    TYPE = "long64"
    SIZE = 8
    SIGNED = True


class Long64Unsigned(_Int):
    __slots__ = ()
    TAG = Tag.LONG64_UNSIGNED
    TYPE = "long64-unsigned"
    SIZE = 8


class Enum(_Int):
    __slots__ = ()
    TAG = Tag.ENUM
    TYPE = "enum"
    SIZE = 1


@dataclass(frozen=True, slots=True)
class _Bytes(Data):
    value: bytes
    SIZE = -1  # variable: a length precedes the bytes


class OctetString(_Bytes):
    __slots__ = ()
    TAG = Tag.OCTET_STRING
    TYPE = "octet-string"


class VisibleString(_Bytes):
    """Raw bytes so any input round-trips; ``text`` decodes them as ASCII."""

    __slots__ = ()
    TAG = Tag.VISIBLE_STRING
    TYPE = "visible-string"

    @classmethod
    def of(cls, text: str) -> VisibleString:
        try:
            return cls(text.encode("ascii"))
        except UnicodeEncodeError:
            raise EncodeError(f"visible-string {text!r} is not ASCII") from None

    @property
    def text(self) -> str | None:
        try:
            return self.value.decode("ascii")
        except UnicodeDecodeError:
            return None


class Utf8String(_Bytes):
    __slots__ = ()
    TAG = Tag.UTF8_STRING
    TYPE = "utf8-string"

    @classmethod
    def of(cls, text: str) -> Utf8String:
        return cls(text.encode("utf-8"))

    @property
    def text(self) -> str | None:
        try:
            return self.value.decode("utf-8")
        except UnicodeDecodeError:
            return None


class Float32(_Bytes):
    """IEEE 754 single, big-endian; raw bytes so NaN payloads round-trip bit-exactly."""

    __slots__ = ()
    TAG = Tag.FLOAT32
    TYPE = "float32"
    SIZE = 4

    @classmethod
    def of(cls, number: float) -> Float32:
        try:
            return cls(struct.pack(">f", number))
        except (OverflowError, struct.error) as exc:
            raise EncodeError(f"float32 {number!r}: {exc}") from None

    @property
    def number(self) -> float:
        return struct.unpack(">f", self.value)[0]


class Float64(_Bytes):
    __slots__ = ()
    TAG = Tag.FLOAT64
    TYPE = "float64"
    SIZE = 8

    @classmethod
    def of(cls, number: float) -> Float64:
        return cls(struct.pack(">d", number))

    @property
    def number(self) -> float:
        return struct.unpack(">d", self.value)[0]


class DateTime(_Bytes):
    """COSEM date-time, 12 bytes (CRIB §1.3)."""

    __slots__ = ()
    TAG = Tag.DATE_TIME
    TYPE = "date-time"
    SIZE = 12

    @classmethod
    def of(cls, value: CosemDateTime) -> DateTime:
        return cls(value.encode())

    @property
    def cosem(self) -> CosemDateTime:
        return CosemDateTime.decode(self.value, LAYER)


class Date(_Bytes):
    """COSEM date: year(2) month day day-of-week."""

    __slots__ = ()
    TAG = Tag.DATE
    TYPE = "date"
    SIZE = 5


class Time(_Bytes):
    """COSEM time: hour minute second hundredths."""

    __slots__ = ()
    TAG = Tag.TIME
    TYPE = "time"
    SIZE = 4


@dataclass(frozen=True, slots=True)
class TypeDescription:
    """Element type of a compact array (Blue Book ``TypeDescription``).

    ``tag`` names the type; an array type has one ``members`` entry (the
    element type) and ``count`` elements; a structure type lists its member
    types. Compact arrays cannot nest, so ``tag`` is never 0x13.
    """

    tag: int
    members: tuple[TypeDescription, ...] = ()
    count: int = 0

    @classmethod
    def array(cls, count: int, element: TypeDescription) -> TypeDescription:
        return cls(Tag.ARRAY, (element,), count)

    @classmethod
    def structure(cls, *members: TypeDescription) -> TypeDescription:
        return cls(Tag.STRUCTURE, members)

    @property
    def type_name(self) -> str:
        cls = _CLASS_BY_TAG.get(self.tag)
        return cls.TYPE if cls is not None else f"0x{self.tag:02X}"


@dataclass(frozen=True, slots=True)
class CompactArray(Data):
    """Blue Book ``compact-array [19]``: elements share ``element_type`` and go untagged.

    Wire form: tag, type description, then an octet-string-style length and
    the concatenated contents of the elements without their tags (an array
    type's count and a structure's member list come from the description).
    """

    element_type: TypeDescription
    value: tuple[Data, ...] = ()
    TAG = Tag.COMPACT_ARRAY
    TYPE = "compact-array"


_CLASSES: tuple[type[Data], ...] = (
    NullData, Array, Structure, Boolean, BitString, DoubleLong, DoubleLongUnsigned,
    OctetString, VisibleString, Utf8String, Bcd, Integer, Long, Unsigned, LongUnsigned,
    CompactArray, Long64, Long64Unsigned, Enum, Float32, Float64, DateTime, Date, Time,
    DontCare,
)  # fmt: skip
_CLASS_BY_TAG: dict[int, type[Data]] = {cls.TAG: cls for cls in _CLASSES}
_CLASS_BY_NAME: dict[str, type[Data]] = {cls.TYPE: cls for cls in _CLASSES}
# The keys to_json writes per type (_KEYS for the rest); from_json refuses any other.
_KEYS = frozenset({"type", "value"})
_KEYS_BY_CLASS: dict[type, frozenset[str]] = {
    NullData: frozenset({"type"}),
    DontCare: frozenset({"type"}),
    BitString: _KEYS | {"length", "bits"},
    CompactArray: _KEYS | {"element_type"},
    VisibleString: _KEYS | {"text"},
    Utf8String: _KEYS | {"text"},
    DateTime: _KEYS | {"text"},
    Float32: _KEYS | {"number"},
    Float64: _KEYS | {"number"},
}


def data_class(tag_or_name: int | str) -> type[Data] | None:
    """The value class for a tag number or a Blue Book type name, or None."""
    if isinstance(tag_or_name, str):
        return _CLASS_BY_NAME.get(tag_or_name)
    return _CLASS_BY_TAG.get(tag_or_name)


# ---------------------------------------------------------------------------
# Decoding
#
# One loop (_read_items) reads n tagged values. Leaves are decoded inline and
# only containers recurse, because on CPython a call costs about as much as
# building the value. One-byte values are shared instances and two-byte
# integers are interned (bounded), so the most common leaves allocate nothing.

_Reader = Callable[[bytes, int, int, int, int], tuple[Data, int]]
_new = object.__new__
_set_array = Array.__dict__["value"].__set__
_set_structure = Structure.__dict__["value"].__set__
_set_bytes = _Bytes.__dict__["value"].__set__
_set_int = _Int.__dict__["value"].__set__
_set_bits_value = BitString.__dict__["value"].__set__
_set_bits_length = BitString.__dict__["length"].__set__

_NULL = NullData()
_DONT_CARE = DontCare()
_TRUE = Boolean(True)
_FALSE = Boolean(False)
_INTERN_LIMIT = 4096
"""Most two-byte integers interned per type; bounds memory on hostile input."""
_OCTET_1 = tuple(OctetString(bytes((b,))) for b in range(256))
"""Every one-byte octet-string, built once."""
_OCTETS_MAX = 16
"""Longest octet-string interned: OBIS codes, dates and date-times repeat (89 % in the RTDS)."""
_OCTETS: dict[bytes, OctetString] = {}
"""Octet-strings of 0 or 2 to :data:`_OCTETS_MAX` bytes seen so far (bounded by _INTERN_LIMIT)."""


def new_octet_string(raw: bytes) -> OctetString:
    """``OctetString(raw)`` without the frozen ``__init__``: for builders on hot paths."""
    obj = _new(OctetString)
    _set_bytes(obj, raw)
    return obj


def new_structure(items: tuple[Data, ...]) -> Structure:
    """``Structure(items)`` without the frozen ``__init__``."""
    obj = _new(Structure)
    _set_structure(obj, items)
    return obj


def new_array(items: tuple[Data, ...]) -> Array:
    """``Array(items)`` without the frozen ``__init__``."""
    obj = _new(Array)
    _set_array(obj, items)
    return obj


def _intern_octets(raw: bytes) -> OctetString:
    obj = _new(OctetString)
    _set_bytes(obj, raw)
    if len(_OCTETS) < _INTERN_LIMIT:
        _OCTETS[raw] = obj
    return obj


def _truncated(field: str, offset: int, need: int, left: int) -> DecodeError:
    unit = "byte" if need == 1 else "bytes"
    return DecodeError(LAYER, field, offset, f"truncated: needs {need} {unit}, {max(left, 0)} left")


def _long_length(data: bytes, pos: int, end: int, base: int, field: str) -> tuple[int, int]:
    """The DER-style length at ``pos`` (any form); same rules as ``Reader.length``."""
    if pos >= end:
        raise _truncated(field, base + pos, 1, 0)
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    n = first & 0x7F
    if n == 0:
        raise DecodeError(LAYER, field, base + pos, "indefinite length (0x80) is not allowed")
    if n > 3:
        raise DecodeError(LAYER, field, base + pos, f"length of length {n} exceeds 3")
    if pos + 1 + n > end:
        raise _truncated(field, base + pos + 1, n, end - pos - 1)
    value = int.from_bytes(data[pos + 1 : pos + 1 + n], "big")
    if value < 0x80 or value >> (8 * (n - 1)) == 0:
        raise DecodeError(LAYER, field, base + pos, f"non-minimal length encoding of {value}")
    return value, pos + 1 + n


def _unknown_tag(tag: int, offset: int) -> DecodeError:
    return DecodeError(LAYER, "tag", offset, f"unknown A-XDR tag 0x{tag:02X}")


def _too_deep(field: str, offset: int) -> DecodeError:
    return DecodeError(LAYER, field, offset, f"nesting deeper than {MAX_DEPTH} levels")


# Per-tag tables, indexed by the tag byte.
_READERS: list[_Reader | None] = [None] * 256
"""Content readers (position just after the tag) for every non-container type."""
_SHARED: list[list[Data] | None] = [None] * 256
"""For one-byte integer types: the 256 possible values, built once."""
_INTERNED: list[dict[int, Data] | None] = [None] * 256
"""For two-byte integer types: values seen so far, keyed by their raw 16 bits."""


def _intern_word(tag: int, raw: int) -> Data:
    cls = _CLASS_BY_TAG[tag]
    obj = _new(cls)
    _set_int(obj, raw - 0x10000 if cls.SIGNED and raw > 0x7FFF else raw)  # type: ignore[attr-defined]
    memo = _INTERNED[tag]
    assert memo is not None
    if len(memo) < _INTERN_LIMIT:
        memo[raw] = obj
    return obj


def _read_items(
    data: bytes, pos: int, end: int, base: int, depth: int, n: int, what: str
) -> tuple[list[Data], int]:
    """``n`` tagged values from ``pos``; ``what`` names them in truncation errors."""
    items: list[Data] = []
    append = items.append
    for _ in range(n):
        if pos >= end:
            raise _truncated(what, base + pos, 1, 0)
        tag = data[pos]
        pos += 1
        if tag == 0x09:
            if pos < end and (size := data[pos]) < 0x80:
                pos += 1
            else:
                size, pos = _long_length(data, pos, end, base, "octet-string length")
            stop = pos + size
            if stop > end:
                raise _truncated("octet-string", base + pos, size, end - pos)
            if size == 1:  # ids and flags: 58 % of the octet-strings in the RTDS
                item: Data = _OCTET_1[data[pos]]
            elif size <= _OCTETS_MAX:
                raw = data[pos:stop]
                item = _OCTETS.get(raw) or _intern_octets(raw)
            else:
                item = _new(OctetString)
                _set_bytes(item, data[pos:stop])
            pos = stop
        elif tag == 0x02 or tag == 0x01:
            if depth >= MAX_DEPTH:
                raise _too_deep("structure" if tag == 0x02 else "array", base + pos - 1)
            if pos < end and (count := data[pos]) < 0x80:
                pos += 1
            else:
                field = "structure count" if tag == 0x02 else "array count"
                count, pos = _long_length(data, pos, end, base, field)
            if tag == 0x02:
                children, pos = _read_items(
                    data, pos, end, base, depth + 1, count, "structure element tag"
                )
                item = _new(Structure)
                _set_structure(item, tuple(children))
            else:
                children, pos = _read_items(
                    data, pos, end, base, depth + 1, count, "array element tag"
                )
                item = _new(Array)
                _set_array(item, tuple(children))
        elif (shared := _SHARED[tag]) is not None:
            if pos >= end:
                raise _truncated(_CLASS_BY_TAG[tag].TYPE, base + pos, 1, 0)
            item = shared[data[pos]]
            pos += 1
        elif tag == 0x00:
            item = _NULL
        elif (memo := _INTERNED[tag]) is not None:
            if pos + 2 > end:
                raise _truncated(_CLASS_BY_TAG[tag].TYPE, base + pos, 2, end - pos)
            raw = (data[pos] << 8) | data[pos + 1]
            pos += 2
            item = memo.get(raw) or _intern_word(tag, raw)
        else:
            reader = _READERS[tag]
            if reader is None:
                raise _unknown_tag(tag, base + pos - 1)
            item, pos = reader(data, pos, end, base, depth)
        append(item)
    return items, pos


class _Retry(Exception):
    """Something :func:`_read_fast` does not handle; the checked loop takes over."""


_RETRY = (_Retry, IndexError, struct.error, DecodeError)
"""What makes the fast loop hand over to :func:`_read_items` (never seen on good input)."""


def _fast_length(data: bytes, pos: int) -> tuple[int, int]:
    """A long-form DER length at ``pos`` that ``_long_length`` would accept, or _Retry."""
    n = data[pos] & 0x7F
    stop = pos + 1 + n
    if not 1 <= n <= 3 or stop > len(data):
        raise _Retry
    value = int.from_bytes(data[pos + 1 : stop], "big")
    if value < 0x80 or value >> (8 * (n - 1)) == 0:
        raise _Retry
    return value, stop


def _read_fast(data: bytes, pos: int, depth: int, n: int) -> tuple[list[Data], int]:
    """``n`` values like :func:`_read_items` for input that decodes cleanly.

    ``data`` ends where the values may end (``len(data)`` is the bound), so a
    byte read past the end raises IndexError instead of being checked first;
    every oddity raises one of :data:`_RETRY`, and the caller then runs the
    checked loop from the same position, which yields the same values or the
    exact error. Leaves come in order of frequency in the RTDS.
    """
    items: list[Any] = [None] * n
    for i in range(n):
        tag = data[pos]
        if tag == 0x09:
            size = data[pos + 1]
            if size == 1:
                items[i] = _OCTET_1[data[pos + 2]]
                pos += 3
                continue
            if size < 0x80:
                pos += 2
            else:
                size, pos = _fast_length(data, pos + 1)
            stop = pos + size
            if stop > len(data):
                raise _Retry
            if size <= _OCTETS_MAX:
                raw = data[pos:stop]
                items[i] = _OCTETS.get(raw) or _intern_octets(raw)
            else:
                item = _new(OctetString)
                _set_bytes(item, data[pos:stop])
                items[i] = item
            pos = stop
        elif tag == 0x02:
            count = data[pos + 1]
            if count < 0x80:
                pos += 2
            else:  # a long count sizes a list: every value takes at least its tag byte
                count, pos = _fast_length(data, pos + 1)
                if count > len(data) - pos:
                    raise _Retry
            if depth >= MAX_DEPTH:
                raise _Retry
            children, pos = _read_fast(data, pos, depth + 1, count)
            item = _new(Structure)
            _set_structure(item, tuple(children))
            items[i] = item
        elif (memo := _INTERNED[tag]) is not None:
            raw = (data[pos + 1] << 8) | data[pos + 2]
            items[i] = memo.get(raw) or _intern_word(tag, raw)
            pos += 3
        elif tag == 0x00:
            items[i] = _NULL
            pos += 1
        elif (shared := _SHARED[tag]) is not None:
            items[i] = shared[data[pos + 1]]
            pos += 2
        elif tag == 0x01:
            count = data[pos + 1]
            if count < 0x80:
                pos += 2
            else:  # a long count sizes a list: every value takes at least its tag byte
                count, pos = _fast_length(data, pos + 1)
                if count > len(data) - pos:
                    raise _Retry
            if depth >= MAX_DEPTH:
                raise _Retry
            if count >= _FAST_ARRAY_MIN and (
                same := _read_same_shape(data, pos, len(data), depth + 1, count)
            ):
                values, pos = same
            else:
                children, pos = _read_fast(data, pos, depth + 1, count)
                values = tuple(children)
            item = _new(Array)
            _set_array(item, values)
            items[i] = item
        elif tag == 0x06:
            item = _new(DoubleLongUnsigned)
            _set_int(item, _U32(data, pos + 1)[0])
            items[i] = item
            pos += 5
        elif tag == 0x04:
            bits = data[pos + 1]
            if bits < 0x80:
                pos += 2
            else:
                bits, pos = _fast_length(data, pos + 1)
            stop = pos + (bits + 7) // 8
            if stop > len(data):
                raise _Retry
            item = _new(BitString)
            _set_bits_value(item, data[pos:stop])
            _set_bits_length(item, bits)
            items[i] = item
            pos = stop
        else:
            reader = _READERS[tag]
            if reader is None:
                raise _Retry
            items[i], pos = reader(data, pos + 1, len(data), 0, depth)
    return items, pos


_U32 = struct.Struct(">I").unpack_from


def _read_values(
    data: bytes, pos: int, end: int, base: int, n: int, what: str
) -> tuple[list[Data], int]:
    """``n`` tagged values at depth 0: the fast loop, else the checked one."""
    if n <= end - pos:  # else truncated for sure; the checked loop says where
        try:
            return _read_fast(data if end == len(data) else data[:end], pos, 0, n)
        except _RETRY:
            pass
    return _read_items(data, pos, end, base, 0, n, what)


def _byte_reader(cls: type[_Int]) -> _Reader:
    shared: list[Data] = []
    for raw in range(256):
        obj = _new(cls)
        _set_int(obj, raw - 256 if cls.SIGNED and raw > 127 else raw)
        shared.append(obj)
    _SHARED[cls.TAG] = shared
    field = cls.TYPE

    def read_byte(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
        if pos >= end:
            raise _truncated(field, base + pos, 1, 0)
        return shared[data[pos]], pos + 1

    return read_byte


def _word_reader(cls: type[_Int]) -> _Reader:
    tag = cls.TAG
    memo: dict[int, Data] = {}
    _INTERNED[tag] = memo
    field = cls.TYPE

    def read_word(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
        if pos + 2 > end:
            raise _truncated(field, base + pos, 2, end - pos)
        raw = (data[pos] << 8) | data[pos + 1]
        return memo.get(raw) or _intern_word(tag, raw), pos + 2

    return read_word


def _int_reader(cls: type[_Int]) -> _Reader:
    size, field = cls.SIZE, cls.TYPE
    unpack = struct.Struct(
        {(4, True): ">i", (4, False): ">I", (8, True): ">q", (8, False): ">Q"}[size, cls.SIGNED]
    ).unpack_from

    def read_int(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
        if pos + size > end:
            raise _truncated(field, base + pos, size, end - pos)
        obj = _new(cls)
        _set_int(obj, unpack(data, pos)[0])
        return obj, pos + size

    return read_int


def _fixed_bytes_reader(cls: type[_Bytes]) -> _Reader:
    size, field = cls.SIZE, cls.TYPE

    def read_fixed(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
        stop = pos + size
        if stop > end:
            raise _truncated(field, base + pos, size, end - pos)
        obj = _new(cls)
        _set_bytes(obj, data[pos:stop])
        return obj, stop

    return read_fixed


def _string_reader(cls: type[_Bytes]) -> _Reader:
    field = cls.TYPE
    length_field = f"{field} length"
    intern = cls is OctetString

    def read_string(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
        if pos < end and (n := data[pos]) < 0x80:
            pos += 1
        else:
            n, pos = _long_length(data, pos, end, base, length_field)
        stop = pos + n
        if stop > end:
            raise _truncated(field, base + pos, n, end - pos)
        if intern and n <= _OCTETS_MAX:
            raw = data[pos:stop]
            return _OCTETS.get(raw) or _intern_octets(raw), stop
        obj = _new(cls)
        _set_bytes(obj, data[pos:stop])
        return obj, stop

    return read_string


def _read_null(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
    return _NULL, pos


def _read_dont_care(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
    return _DONT_CARE, pos


def _read_boolean(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
    """Only 00 and FF are accepted, so every decoded boolean re-encodes to its byte."""
    if pos >= end:
        raise _truncated("boolean", base + pos, 1, 0)
    raw = data[pos]
    if raw == 0xFF:
        return _TRUE, pos + 1
    if raw == 0x00:
        return _FALSE, pos + 1
    raise DecodeError(
        LAYER, "boolean", base + pos, f"0x{raw:02X} is neither 0x00 (false) nor 0xFF (true)"
    )


def _read_bit_string(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
    if pos < end and (bits := data[pos]) < 0x80:
        pos += 1
    else:
        bits, pos = _long_length(data, pos, end, base, "bit-string length")
    stop = pos + (bits + 7) // 8
    if stop > end:
        raise _truncated("bit-string", base + pos, stop - pos, end - pos)
    obj = _new(BitString)
    _set_bits_value(obj, data[pos:stop])
    _set_bits_length(obj, bits)
    return obj, stop


# Arrays of same-shape elements ---------------------------------------------
#
# Most of the values in a big payload sit in arrays whose elements all have
# the same shape (a tariff table: 80 times structure {octet-string(1), long}).
# The first element is walked once to learn that shape: which bytes are fixed
# (tags, counts, lengths) and which hold values. When every element of the
# array repeats the fixed bytes (checked a byte column at a time), the values
# come out of one struct unpack and the objects are built a column at a time
# by C-level maps. Anything else, malformed input included, falls back to the
# general loop, so values and errors are those of the general path.

_FAST_ARRAY_MIN = 8
"""Fewest elements for which learning the shape pays off."""
_BOOL_BYTES = frozenset((0x00, 0xFF))
_BOOL_BY_BYTE = {0x00: _FALSE, 0xFF: _TRUE}

# Shape nodes: (kind, ...) tuples; kinds below.
_K_TABLE = 0  # (kind, table): one byte indexes a table of shared values
_K_WORD = 1  # (kind, tag): interned two-byte integers
_K_NEW = 2  # (kind, cls, setter): a fresh object per value
_K_CONST = 3  # (kind, value): no content (null-data, dont-care)
_K_BOOL = 4  # (kind,): 00 or FF
_K_BITS = 5  # (kind, bit count)
_K_CONTAINER = 6  # (kind, cls, setter, members)
_K_OCTETS = 7  # (kind,): interned octet-strings of up to _OCTETS_MAX bytes

_Shape = tuple[Any, ...]
_FIXED_CODES: list[str | None] = [None] * 256
"""struct codes of the remaining fixed-width types (boolean and dont-care special-cased)."""
for _tag, _code in (
    (Tag.DOUBLE_LONG, "i"), (Tag.DOUBLE_LONG_UNSIGNED, "I"), (Tag.LONG64, "q"),
    (Tag.LONG64_UNSIGNED, "Q"), (Tag.FLOAT32, "4s"), (Tag.FLOAT64, "8s"),
    (Tag.DATE_TIME, "12s"), (Tag.DATE, "5s"), (Tag.TIME, "4s"), (Tag.BOOLEAN, "B"),
    (Tag.DONT_CARE, ""),
):  # fmt: skip
    _FIXED_CODES[_tag] = _code


class _Mismatch(Exception):
    """The elements are not all of the learnt shape; use the general loop."""


def _shape(
    data: bytes, pos: int, end: int, depth: int, start: int, fmt: list[str], fixed: list[int]
) -> tuple[_Shape, int] | None:
    """Learn the shape of the value at ``pos``; None when it has no fixed layout.

    ``fmt`` collects struct codes (``x`` for fixed bytes), ``fixed`` the
    offsets (from ``start``) of the fixed bytes.
    """
    if pos >= end:
        return None
    tag = data[pos]
    fixed.append(pos - start)
    fmt.append("x")
    pos += 1
    if tag == 0x02 or tag == 0x01:
        if depth >= MAX_DEPTH or pos >= end or (count := data[pos]) >= 0x80:
            return None
        fixed.append(pos - start)
        fmt.append("x")
        pos += 1
        members = []
        for _ in range(count):
            found = _shape(data, pos, end, depth + 1, start, fmt, fixed)
            if found is None:
                return None
            member, pos = found
            members.append(member)
        if tag == 0x02:
            return (_K_CONTAINER, Structure, _set_structure, tuple(members)), pos
        return (_K_CONTAINER, Array, _set_array, tuple(members)), pos
    if (shared := _SHARED[tag]) is not None:
        fmt.append("B")
        return (_K_TABLE, shared), pos + 1
    if _INTERNED[tag] is not None:
        fmt.append("H")
        return (_K_WORD, tag), pos + 2
    if tag == 0x00:
        return (_K_CONST, _NULL), pos
    if tag == 0x09 or tag == 0x0A or tag == 0x0C or tag == 0x04:
        if pos >= end or (size := data[pos]) >= 0x80:
            return None
        fixed.append(pos - start)
        fmt.append("x")
        pos += 1
        if tag == 0x04:
            fmt.append(f"{(size + 7) // 8}s")
            return (_K_BITS, size), pos + (size + 7) // 8
        if tag == 0x09 and size == 1:
            fmt.append("B")
            return (_K_TABLE, _OCTET_1), pos + 1
        fmt.append(f"{size}s")
        if tag == 0x09 and size <= _OCTETS_MAX:
            return (_K_OCTETS,), pos + size
        return (_K_NEW, _CLASS_BY_TAG[tag], _set_bytes), pos + size
    code = _FIXED_CODES[tag]
    if code is None:
        return None
    if tag == 0x03:
        fmt.append("B")
        return (_K_BOOL,), pos + 1
    if tag == 0xFF:
        return (_K_CONST, _DONT_CARE), pos
    fmt.append(code)
    cls = _CLASS_BY_TAG[tag]
    return (_K_NEW, cls, _set_int if issubclass(cls, _Int) else _set_bytes), pos + cls.SIZE  # type: ignore[attr-defined]


def _build(shape: _Shape, columns: Iterator[tuple[Any, ...]], n: int) -> list[Data]:
    """The ``n`` values of one shape node, taking its columns in order."""
    kind = shape[0]
    if kind == _K_TABLE:
        return list(map(shape[1].__getitem__, next(columns)))
    if kind == _K_WORD:
        tag = shape[1]
        get = _INTERNED[tag].get  # type: ignore[union-attr]
        return [get(raw) or _intern_word(tag, raw) for raw in next(columns)]
    if kind == _K_NEW:
        objs = list(map(_new, repeat(shape[1], n)))
        any(map(shape[2], objs, next(columns)))
        return objs
    if kind == _K_CONTAINER:
        members = [_build(member, columns, n) for member in shape[3]]
        objs = list(map(_new, repeat(shape[1], n)))
        any(map(shape[2], objs, zip(*members, strict=True) if members else repeat((), n)))
        return objs
    if kind == _K_OCTETS:
        get = _OCTETS.get
        return [get(raw) or _intern_octets(raw) for raw in next(columns)]
    if kind == _K_CONST:
        return [shape[1]] * n
    if kind == _K_BOOL:
        column = next(columns)
        if not _BOOL_BYTES.issuperset(column):
            raise _Mismatch
        return list(map(_BOOL_BY_BYTE.__getitem__, column))
    objs = list(map(_new, repeat(BitString, n)))  # _K_BITS
    any(map(_set_bits_value, objs, next(columns)))
    any(map(_set_bits_length, objs, repeat(shape[1], n)))
    return objs


def _read_same_shape(
    data: bytes, pos: int, end: int, depth: int, n: int
) -> tuple[tuple[Data, ...], int] | None:
    """``n`` elements of one fixed shape from ``pos`` (at ``depth``), or None."""
    fmt = [""]
    fixed: list[int] = []
    found = _shape(data, pos, end, depth, pos, fmt, fixed)
    if found is None:
        return None
    shape, stop = found
    size = stop - pos
    stop = pos + size * n
    if stop > end:
        return None
    region = data[pos:stop]
    for offset in fixed:
        if region[offset::size] != region[offset : offset + 1] * n:
            return None
    flat = struct.unpack(">" + "".join(fmt) * n, region)  # struct keeps the compiled layouts
    width = len(flat) // n
    try:
        values = _build(shape, (flat[j::width] for j in range(width)), n)
    except _Mismatch:
        return None
    return tuple(values), stop


# Compact arrays ------------------------------------------------------------

_SIMPLE_WIDTH: dict[int, int] = {
    Tag.NULL_DATA: 0, Tag.DONT_CARE: 0, Tag.BOOLEAN: 1, Tag.BIT_STRING: 1, Tag.OCTET_STRING: 1,
    Tag.VISIBLE_STRING: 1, Tag.UTF8_STRING: 1, Tag.BCD: 1, Tag.INTEGER: 1, Tag.UNSIGNED: 1,
    Tag.ENUM: 1, Tag.LONG: 2, Tag.LONG_UNSIGNED: 2, Tag.DOUBLE_LONG: 4,
    Tag.DOUBLE_LONG_UNSIGNED: 4, Tag.FLOAT32: 4, Tag.TIME: 4, Tag.DATE: 5, Tag.LONG64: 8,
    Tag.LONG64_UNSIGNED: 8, Tag.FLOAT64: 8, Tag.DATE_TIME: 12,
}  # fmt: skip
"""Smallest content width of each simple type that may describe compact-array elements."""

_EXPANSION_ALLOWANCE = 65536


def _width_and_nodes(td: TypeDescription) -> tuple[int, int]:
    """Minimum content width and number of values of one element of type ``td``."""
    if td.tag == Tag.ARRAY:
        width, nodes = _width_and_nodes(td.members[0])
        return td.count * width, 1 + td.count * nodes
    if td.tag == Tag.STRUCTURE:
        width, nodes = 0, 1
        for member in td.members:
            w, n = _width_and_nodes(member)
            width += w
            nodes += n
        return width, nodes
    return _SIMPLE_WIDTH[td.tag], 1


def _expansion_problem(td: TypeDescription, contents: int, elements: int) -> str | None:
    """Why a compact array of this shape is refused, or None.

    Zero-width elements cannot be counted from the contents, and a tiny
    description can promise billions of values (an array of 65535 arrays of
    nulls); both are refused so a hostile message cannot exhaust memory. At
    most ceil(contents / width) elements are ever started, a truncated one
    included, so that bounds the values built before any error.
    """
    width, nodes = _width_and_nodes(td)
    if width == 0:
        if contents or elements:
            return "elements of zero width cannot be counted from the contents"
        return None
    values = nodes * -(-contents // width)
    if values > 2 * contents + _EXPANSION_ALLOWANCE:
        return f"contents of {contents} bytes could expand to {values} values"
    return None


def _read_type(
    data: bytes, pos: int, end: int, base: int, depth: int
) -> tuple[TypeDescription, int]:
    field = "compact-array type description"
    if pos >= end:
        raise _truncated(field, base + pos, 1, 0)
    tag = data[pos]
    start = pos
    pos += 1
    if tag == Tag.ARRAY or tag == Tag.STRUCTURE:
        if depth >= MAX_DEPTH:
            raise _too_deep(field, base + start)
        if tag == Tag.ARRAY:
            if pos + 2 > end:
                raise _truncated(f"{field} array count", base + pos, 2, end - pos)
            count = (data[pos] << 8) | data[pos + 1]
            element, pos = _read_type(data, pos + 2, end, base, depth + 1)
            return TypeDescription(Tag.ARRAY, (element,), count), pos
        if pos < end and (n := data[pos]) < 0x80:
            pos += 1
        else:
            n, pos = _long_length(data, pos, end, base, f"{field} structure count")
        members = []
        for _ in range(n):
            member, pos = _read_type(data, pos, end, base, depth + 1)
            members.append(member)
        return TypeDescription(Tag.STRUCTURE, tuple(members)), pos
    if tag in _SIMPLE_WIDTH:
        return _SIMPLE_TYPES[tag], pos
    raise DecodeError(
        LAYER, field, base + start, f"tag 0x{tag:02X} cannot describe a compact-array element"
    )


_SIMPLE_TYPES = {tag: TypeDescription(tag) for tag in _SIMPLE_WIDTH}


def _element_reader(td: TypeDescription) -> _Reader:
    """A reader for one untagged element of type ``td``, built once per description.

    Walking the description for every element would cost a call per level
    per element; profile buffers (ECS23b) hold hundreds of them.
    """
    if td.tag == Tag.ARRAY:
        element, count = _element_reader(td.members[0]), td.count

        def read_array(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
            items = []
            for _ in range(count):
                item, pos = element(data, pos, end, base, depth)
                items.append(item)
            obj = _new(Array)
            _set_array(obj, tuple(items))
            return obj, pos

        return read_array
    if td.tag == Tag.STRUCTURE:
        members = tuple(_element_reader(m) for m in td.members)

        def read_structure(
            data: bytes, pos: int, end: int, base: int, depth: int
        ) -> tuple[Data, int]:
            items = []
            for member in members:
                item, pos = member(data, pos, end, base, depth)
                items.append(item)
            obj = _new(Structure)
            _set_structure(obj, tuple(items))
            return obj, pos

        return read_structure
    reader = _READERS[td.tag]
    assert reader is not None  # _read_type admits only tags with a reader
    return reader


_PACK_CODES: dict[int, str] = {
    Tag.BCD: "B", Tag.INTEGER: "B", Tag.UNSIGNED: "B", Tag.ENUM: "B", Tag.LONG: "H",
    Tag.LONG_UNSIGNED: "H", Tag.DOUBLE_LONG: "i", Tag.DOUBLE_LONG_UNSIGNED: "I",
    Tag.LONG64: "q", Tag.LONG64_UNSIGNED: "Q",
}  # fmt: skip
"""struct codes for the integer types; one- and two-byte ones stay raw to index the caches."""


def _int_shape(tag: int) -> _Shape:
    """The shape node building values of an integer type from its struct code's values."""
    if (shared := _SHARED[tag]) is not None:
        return (_K_TABLE, shared)
    if _INTERNED[tag] is not None:
        return (_K_WORD, tag)
    return (_K_NEW, _CLASS_BY_TAG[tag], _set_int)


def _packed_reader(td: TypeDescription) -> tuple[Callable[[bytes], list[Data]], int] | None:
    """A whole-contents reader and the element size when elements are integers only.

    Profile buffers are usually structures of integers; one struct unpack
    for the whole contents and a column at a time object building (as for
    same-shape arrays) replace a reader call per value.
    """
    members = td.members if td.tag == Tag.STRUCTURE else (td,)
    if not members or any(m.tag not in _PACK_CODES for m in members):
        return None
    codes = "".join(_PACK_CODES[m.tag] for m in members)
    size = struct.calcsize(">" + codes)
    shapes = tuple(_int_shape(m.tag) for m in members)
    shape = (
        (_K_CONTAINER, Structure, _set_structure, shapes) if td.tag == Tag.STRUCTURE else shapes[0]
    )
    width = len(members)

    def read_packed(contents: bytes) -> list[Data]:
        n = len(contents) // size
        if not n:
            return []
        flat = struct.unpack(">" + codes * n, contents)
        return _build(shape, (flat[j::width] for j in range(width)), n)

    return read_packed, size


def _read_compact_array(data: bytes, pos: int, end: int, base: int, depth: int) -> tuple[Data, int]:
    if depth >= MAX_DEPTH:
        raise _too_deep("compact-array", base + pos - 1)
    td, pos = _read_type(data, pos, end, base, depth + 1)
    length_pos = pos
    n, pos = _long_length(data, pos, end, base, "compact-array contents length")
    stop = pos + n
    if stop > end:
        raise _truncated("compact-array contents", base + pos, n, end - pos)
    problem = _expansion_problem(td, n, 0)
    if problem is not None:
        raise DecodeError(LAYER, "compact-array contents length", base + length_pos, problem)
    packed = _packed_reader(td)
    if packed is not None and n % packed[1] == 0:  # else the general path reports the rest
        return CompactArray(td, tuple(packed[0](data[pos:stop]))), stop
    read_element = _element_reader(td)
    items = []
    while pos < stop:
        item, pos = read_element(data, pos, stop, base, depth + 1)
        items.append(item)
    return CompactArray(td, tuple(items)), pos


def _install_readers() -> None:
    for cls in (Bcd, Integer, Unsigned, Enum):
        _READERS[cls.TAG] = _byte_reader(cls)
    for cls in (Long, LongUnsigned):
        _READERS[cls.TAG] = _word_reader(cls)
    for cls in (DoubleLong, DoubleLongUnsigned, Long64, Long64Unsigned):
        _READERS[cls.TAG] = _int_reader(cls)
    for cls in (Float32, Float64, DateTime, Date, Time):
        _READERS[cls.TAG] = _fixed_bytes_reader(cls)
    for cls in (OctetString, VisibleString, Utf8String):
        _READERS[cls.TAG] = _string_reader(cls)
    _READERS[Tag.NULL_DATA] = _read_null
    _READERS[Tag.DONT_CARE] = _read_dont_care
    _READERS[Tag.BOOLEAN] = _read_boolean
    _READERS[Tag.BIT_STRING] = _read_bit_string
    _READERS[Tag.COMPACT_ARRAY] = _read_compact_array


_install_readers()


def read(r: Reader) -> Data:
    """Read one tagged value from ``r`` and move past it (errors name layer "axdr")."""
    data = r.data if type(r.data) is bytes else bytes(r.data)
    items, r.pos = _read_values(data, r.pos, r.end, r.base, 1, "tag")
    return items[0]


def read_sequence(r: Reader, count: int, what: str = "data item tag") -> tuple[Data, ...]:
    """Read ``count`` tagged values from ``r`` in one pass (a DLMS list of data)."""
    data = r.data if type(r.data) is bytes else bytes(r.data)
    items, r.pos = _read_values(data, r.pos, r.end, r.base, count, what)
    return tuple(items)


def decode(data: bytes, base: int = 0) -> Data:
    """Exactly one tagged value filling ``data``; ``base`` makes offsets absolute."""
    data = bytes(data)
    items, pos = _read_values(data, 0, len(data), base, 1, "tag")
    if pos != len(data):
        raise DecodeError(
            LAYER, "trailing bytes", base + pos, f"{len(data) - pos} unexpected trailing bytes"
        )
    return items[0]


# ---------------------------------------------------------------------------
# Encoding


class _Bad(Exception):
    """An unencodable value; containers prepend their index to ``path`` on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.path: list[str] = []


def _check_bytes(value: object, what: str, size: int = -1) -> bytes:
    if not isinstance(value, bytes):
        raise _Bad(f"{what} value must be bytes, got {type(value).__name__}")
    if size >= 0 and len(value) != size:
        raise _Bad(f"{what} must be {size} bytes, got {len(value)}")
    return value


def _int_content(value: _Int) -> bytes:
    v = value.value
    if type(v) is not int:
        raise _Bad(f"{value.TYPE} value must be an int, got {type(v).__name__}")
    try:
        return v.to_bytes(value.SIZE, "big", signed=value.SIGNED)
    except OverflowError:
        raise _Bad(f"{value.TYPE} value {v} is out of range") from None


def _length(n: int) -> bytes:
    try:
        return encode_length(n)
    except EncodeError as exc:
        raise _Bad(str(exc)) from None


def _content(value: Data, out: list[bytes], depth: int) -> None:
    """Append the content (no tag) of ``value``."""
    cls = type(value)
    if isinstance(value, _Int):
        out.append(_int_content(value))
    elif isinstance(value, _Bytes):
        raw = _check_bytes(value.value, value.TYPE, value.SIZE)
        if value.SIZE < 0:
            out.append(_length(len(raw)))
        out.append(raw)
    elif cls is Array or cls is Structure:
        items = value.value  # type: ignore[attr-defined]
        if not isinstance(items, tuple):
            raise _Bad(f"{value.TYPE} value must be a tuple, got {type(items).__name__}")
        if depth >= MAX_DEPTH:
            raise _Bad(f"nesting deeper than {MAX_DEPTH} levels")
        out.append(_length(len(items)))
        for index, item in enumerate(items):
            try:
                _put(item, out, depth + 1)
            except _Bad as bad:
                bad.path.append(f".value[{index}]")
                raise
    elif cls is NullData or cls is DontCare:
        pass
    elif cls is Boolean:
        flag = value.value  # type: ignore[attr-defined]
        if type(flag) is not bool:
            raise _Bad(f"boolean value must be a bool, got {type(flag).__name__}")
        out.append(b"\xff" if flag else b"\x00")
    elif cls is BitString:
        assert isinstance(value, BitString)
        raw = _check_bytes(value.value, "bit-string")
        if type(value.length) is not int or value.length < 0:
            raise _Bad(f"bit-string length {value.length!r} is not a non-negative int")
        if len(raw) != (value.length + 7) // 8:
            raise _Bad(
                f"bit-string of {value.length} bits needs {(value.length + 7) // 8} "
                f"bytes, got {len(raw)}"
            )
        out.append(_length(value.length))
        out.append(raw)
    elif cls is CompactArray:
        assert isinstance(value, CompactArray)
        _compact_content(value, out, depth)
    else:
        raise _Bad(f"{cls.__name__} is not an A-XDR Data value")


def _put(value: Data, out: list[bytes], depth: int) -> None:
    tag = _TAG_BYTE.get(type(value))
    if tag is None:
        raise _Bad(f"{type(value).__name__} is not an A-XDR Data value")
    out.append(tag)
    _content(value, out, depth)


_TAG_BYTE: dict[type, bytes] = {cls: bytes((cls.TAG,)) for cls in _CLASSES}


def _check_type(td: object, depth: int) -> None:
    if not isinstance(td, TypeDescription):
        raise _Bad(f"compact-array element type must be a TypeDescription, got {type(td).__name__}")
    if not isinstance(td.members, tuple) or type(td.count) is not int:
        raise _Bad("type description members must be a tuple and count an int")
    if td.tag == Tag.ARRAY or td.tag == Tag.STRUCTURE:
        if depth >= MAX_DEPTH:
            raise _Bad(f"nesting deeper than {MAX_DEPTH} levels")
        if td.tag == Tag.ARRAY:
            if len(td.members) != 1:
                raise _Bad("an array type description needs exactly one element type")
            if not 0 <= td.count <= 0xFFFF:
                raise _Bad(f"array type count {td.count} is not a uint16")
        elif td.count != 0:
            raise _Bad("a structure type description has no count")
        for member in td.members:
            _check_type(member, depth + 1)
    elif td.tag in _SIMPLE_WIDTH:
        if td.members or td.count:
            raise _Bad(f"type {td.type_name} takes no members or count")
    else:
        raise _Bad(f"tag {td.tag!r} cannot describe a compact-array element")


def _put_type(td: TypeDescription, out: list[bytes]) -> None:
    if td.tag == Tag.ARRAY:
        out.append(bytes((Tag.ARRAY, td.count >> 8, td.count & 0xFF)))
        _put_type(td.members[0], out)
    elif td.tag == Tag.STRUCTURE:
        out.append(b"\x02" + _length(len(td.members)))
        for member in td.members:
            _put_type(member, out)
    else:
        out.append(bytes((td.tag,)))


def _put_untagged(td: TypeDescription, value: Data, out: list[bytes], depth: int) -> None:
    cls = _CLASS_BY_TAG[td.tag]
    if type(value) is not cls:
        raise _Bad(f"element is {type(value).__name__}, the type description says {cls.TYPE}")
    if cls is Array or cls is Structure:
        items = value.value  # type: ignore[attr-defined]
        if not isinstance(items, tuple):
            raise _Bad(f"{cls.TYPE} value must be a tuple, got {type(items).__name__}")
        types = (td.members * td.count) if cls is Array else td.members
        if len(items) != len(types):
            raise _Bad(
                f"{cls.TYPE} has {len(items)} elements, the type description says {len(types)}"
            )
        for index, (member, item) in enumerate(zip(types, items, strict=True)):
            try:
                _put_untagged(member, item, out, depth + 1)
            except _Bad as bad:
                bad.path.append(f".value[{index}]")
                raise
    else:
        _content(value, out, depth)


def _compact_content(value: CompactArray, out: list[bytes], depth: int) -> None:
    if depth >= MAX_DEPTH:
        raise _Bad(f"nesting deeper than {MAX_DEPTH} levels")
    td = value.element_type
    _check_type(td, depth + 1)
    items = value.value
    if not isinstance(items, tuple):
        raise _Bad(f"compact-array value must be a tuple, got {type(items).__name__}")
    _put_type(td, out)
    contents: list[bytes] = []
    for index, item in enumerate(items):
        try:
            _put_untagged(td, item, contents, depth + 1)
        except _Bad as bad:
            bad.path.append(f".value[{index}]")
            raise
    raw = b"".join(contents)
    problem = _expansion_problem(td, len(raw), len(items))
    if problem is not None:
        raise _Bad(f"compact-array: {problem}")
    out.append(_length(len(raw)))
    out.append(raw)


def _encode(value: Data, path: str, what: str) -> bytes:
    out: list[bytes] = []
    try:
        _put(value, out, 0)
    except _Bad as bad:
        where = path + "".join(reversed(bad.path))
        raise EncodeError(f"{what} at {where}: {bad.reason}") from None
    return b"".join(out)


# The fast encoder. Devices encode a response or an alert per command, mostly
# structures and arrays of octet-strings and small integers, so those are written
# with prebuilt tag+length heads and one struct call per integer, containers
# recursing and their leaves inline. It trusts nothing: anything it does not
# recognise as plainly valid raises _Slow and the checked encoder above starts
# over, so its output and its errors are the reference's (tested).


class _Slow(Exception):
    """The fast encoder met something it leaves to the checked one."""


_SLOW = _Slow()
_OCTET_HEADS = tuple(bytes((Tag.OCTET_STRING, n)) for n in range(0x80))
_STRUCTURE_HEADS = tuple(bytes((Tag.STRUCTURE, n)) for n in range(0x80))
_ARRAY_HEADS = tuple(bytes((Tag.ARRAY, n)) for n in range(0x80))
_INT_PACKERS: dict[type, Callable[[int, int], bytes]] = {
    cls: struct.Struct(">B" + fmt).pack
    for cls, fmt in (
        (DoubleLong, "i"),
        (DoubleLongUnsigned, "I"),
        (Bcd, "b"),
        (Integer, "b"),
        (Long, "h"),
        (Unsigned, "B"),
        (LongUnsigned, "H"),
        (Long64, "q"),
        (Long64Unsigned, "Q"),
        (Enum, "B"),
    )
}
_BOOLEANS = {True: b"\x03\xff", False: b"\x03\x00"}


def _fast_head(heads: tuple[bytes, ...], n: int) -> bytes:
    """Tag and length for ``n`` (a len(), so never negative) beyond the one-byte form."""
    if n < 0x80:
        return heads[n]
    if n > 0xFFFFFF:
        raise _SLOW  # the checked encoder words the error
    return heads[0][:1] + encode_length(n)


def _fast_put(value: Data, out: list[bytes], depth: int) -> None:
    """Tag and content of ``value`` for the plainly valid case; _Slow otherwise."""
    cls = type(value)
    if cls is Structure or cls is Array:
        items = value.value  # type: ignore[attr-defined]
        if type(items) is not tuple or depth >= MAX_DEPTH:
            raise _SLOW
        out.append(_fast_head(_STRUCTURE_HEADS if cls is Structure else _ARRAY_HEADS, len(items)))
        depth += 1
        for item in items:
            cls = type(item)
            if cls is OctetString:
                raw = item.value  # type: ignore[attr-defined]
                if type(raw) is not bytes:
                    raise _SLOW
                n = len(raw)
                out.append(_OCTET_HEADS[n] if n < 0x80 else _fast_head(_OCTET_HEADS, n))
                out.append(raw)
            elif cls is Structure or cls is Array:
                _fast_put(item, out, depth)
            else:
                pack = _INT_PACKERS.get(cls)
                if pack is None:
                    _fast_put(item, out, depth)
                    continue
                number = item.value  # type: ignore[attr-defined]
                if type(number) is not int:
                    raise _SLOW
                try:
                    out.append(pack(cls.TAG, number))
                except struct.error:
                    raise _SLOW from None
    elif cls is OctetString:
        raw = value.value  # type: ignore[attr-defined]
        if type(raw) is not bytes:
            raise _SLOW
        out.append(_fast_head(_OCTET_HEADS, len(raw)))
        out.append(raw)
    elif cls is NullData:
        out.append(b"\x00")
    elif cls is Boolean:
        flag = value.value  # type: ignore[attr-defined]
        if type(flag) is not bool:
            raise _SLOW
        out.append(_BOOLEANS[flag])
    else:
        pack = _INT_PACKERS.get(cls)
        if pack is not None:
            number = value.value  # type: ignore[attr-defined]
            if type(number) is not int:
                raise _SLOW
            try:
                out.append(pack(cls.TAG, number))
            except struct.error:
                raise _SLOW from None
            return
        # Any other value: the checked encoder's own leaf code, a failure there
        # sending the whole value back to it so the error carries the full path.
        tag = _TAG_BYTE.get(cls)
        if tag is None:
            raise _SLOW
        out.append(tag)
        try:
            _content(value, out, depth)
        except _Bad:
            raise _SLOW from None


def encode(value: Data) -> bytes:
    """Tag and content of ``value``; EncodeError names the path of a bad element."""
    out: list[bytes] = []
    try:
        _fast_put(value, out, 0)
    except _Slow:
        return _encode(value, "$", "axdr value")
    return b"".join(out)


def encode_checked(value: Data) -> bytes:
    """:func:`encode` by the checked encoder alone: the reference for the fast one."""
    return _encode(value, "$", "axdr value")


# ---------------------------------------------------------------------------
# JSON form


def _hex(raw: bytes) -> str:
    return raw.hex().upper()


def type_to_json(td: TypeDescription) -> str | dict[str, Any]:
    """A simple type as its name; arrays and structures as small objects."""
    if td.tag == Tag.ARRAY:
        return {"type": "array", "count": td.count, "element": type_to_json(td.members[0])}
    if td.tag == Tag.STRUCTURE:
        return {"type": "structure", "members": [type_to_json(m) for m in td.members]}
    return _CLASS_BY_TAG[td.tag].TYPE


def _json_number(number: float) -> float | str:
    if math.isfinite(number):
        return number
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def to_json(value: Data) -> dict[str, Any]:
    """JSON-ready form: ``{"type": <Blue Book name>, "value": ...}``, bytes as hex.

    Extra keys (``text``, ``number``, ``bits``) are for humans: :func:`from_json`
    requires them to agree with ``value`` and refuses keys it does not know.
    """
    cls = type(value)
    out: dict[str, Any] = {"type": cls.TYPE}
    if cls is NullData or cls is DontCare:
        return out
    if cls is Array or cls is Structure:
        out["value"] = [to_json(item) for item in value.value]  # type: ignore[attr-defined]
    elif cls is CompactArray:
        assert isinstance(value, CompactArray)
        out["element_type"] = type_to_json(value.element_type)
        out["value"] = [to_json(item) for item in value.value]
    elif cls is BitString:
        assert isinstance(value, BitString)
        out["length"] = value.length
        out["value"] = _hex(value.value)
        out["bits"] = value.bits
    elif isinstance(value, _Bytes):
        out["value"] = _hex(value.value)
        if isinstance(value, VisibleString | Utf8String):
            text = value.text
            if text is not None:
                out["text"] = text
        elif isinstance(value, Float32 | Float64) and len(value.value) == value.SIZE:
            out["number"] = _json_number(value.number)
        elif cls is DateTime and len(value.value) == 12:
            out["text"] = str(CosemDateTime.decode(value.value, LAYER))
    else:
        out["value"] = value.value  # type: ignore[attr-defined]
    return out


def _fail(path: str, reason: str) -> EncodeError:
    return EncodeError(f"axdr JSON at {path}: {reason}")


def _json_hex(obj: Any, path: str) -> bytes:
    if not isinstance(obj, str):
        raise _fail(path, f"expected a hex string, got {type(obj).__name__}")
    try:
        return bytes.fromhex(obj)
    except ValueError:
        raise _fail(path, f"{obj!r} is not hexadecimal") from None


def _json_int(obj: Any, path: str) -> int:
    if type(obj) is not int:
        raise _fail(path, f"expected an integer, got {type(obj).__name__}")
    return obj


def _json_list(obj: Any, path: str) -> list[Any]:
    if not isinstance(obj, list):
        raise _fail(path, f"expected a list, got {type(obj).__name__}")
    return obj


def type_from_json(obj: Any, path: str = "$", depth: int = 0) -> TypeDescription:
    """Inverse of :func:`type_to_json`; EncodeError names the path of a bad part."""
    if depth > MAX_DEPTH:
        raise _fail(path, f"nesting deeper than {MAX_DEPTH} levels")
    if isinstance(obj, str):
        cls = _CLASS_BY_NAME.get(obj)
        if cls is None or cls.TAG not in _SIMPLE_WIDTH:
            raise _fail(path, f"{obj!r} is not a simple compact-array element type")
        return _SIMPLE_TYPES[cls.TAG]
    if not isinstance(obj, dict):
        raise _fail(path, f"expected a type name or object, got {type(obj).__name__}")
    kind = obj.get("type")
    if kind == "array":
        count = _json_int(obj.get("count"), f"{path}.count")
        if not 0 <= count <= 0xFFFF:
            raise _fail(f"{path}.count", f"{count} is not a uint16")
        return TypeDescription.array(
            count, type_from_json(obj.get("element"), f"{path}.element", depth + 1)
        )
    if kind == "structure":
        members = _json_list(obj.get("members"), f"{path}.members")
        return TypeDescription.structure(
            *(type_from_json(m, f"{path}.members[{i}]", depth + 1) for i, m in enumerate(members))
        )
    raise _fail(f"{path}.type", f"{kind!r} is not 'array' or 'structure'")


def from_json(obj: Any, path: str = "$") -> Data:
    """Rebuild a value from :func:`to_json` output; EncodeError names the bad path.

    Shapes are checked while building, ranges and sizes by one encoding pass
    at the end (so nested values are not re-encoded at every level).
    """
    value = _from_json(obj, path, 0)
    _encode(value, path, "axdr JSON")
    return value


_LEAF_EXTRAS = frozenset({"text", "number", "bits"})  # what to_json adds for humans


def _check_keys(obj: dict[str, Any], cls: type, path: str) -> None:
    """Every key is one to_json writes for this type: an unknown one would be dropped."""
    allowed = _KEYS_BY_CLASS.get(cls, _KEYS)
    for key in obj:
        if key not in allowed:
            raise _fail(f"{path}.{key}", f"unknown key for a {cls.TYPE}")


def _check_extras(obj: dict[str, Any], value: Data, path: str) -> None:
    """An informational key must say what the value says: an edit of ``text`` (or
    ``bits``, ``number``) instead of ``value`` would otherwise be silently lost."""
    written = to_json(value)
    for key in _LEAF_EXTRAS.intersection(obj):
        if obj[key] != written.get(key):
            raise _fail(
                f"{path}.{key}",
                f"{obj[key]!r} disagrees with value (edit value, or drop {key})",
            )


def _from_json(obj: Any, path: str, depth: int) -> Data:
    if depth > MAX_DEPTH:
        raise _fail(path, f"nesting deeper than {MAX_DEPTH} levels")
    if not isinstance(obj, dict):
        raise _fail(path, f"expected an object, got {type(obj).__name__}")
    name = obj.get("type")
    cls = _CLASS_BY_NAME.get(name) if isinstance(name, str) else None
    if cls is None:
        raise _fail(f"{path}.type", f"unknown A-XDR type {name!r}")
    if cls is NullData or cls is DontCare:
        if len(obj) > 1:
            _check_keys(obj, cls, path)
        return _NULL if cls is NullData else _DONT_CARE
    if len(obj) > 2 or "value" not in obj:  # the common {"type", "value"} needs no look
        _check_keys(obj, cls, path)
    vpath = f"{path}.value"
    if "value" not in obj:
        raise _fail(vpath, "missing")
    raw = obj["value"]
    if cls is Array or cls is Structure or cls is CompactArray:
        items = tuple(
            _from_json(item, f"{vpath}[{i}]", depth + 1)
            for i, item in enumerate(_json_list(raw, vpath))
        )
        if cls is CompactArray:
            td = type_from_json(obj.get("element_type"), f"{path}.element_type", depth + 1)
            value: Data = CompactArray(td, items)
        else:
            value = cls(items)  # type: ignore[call-arg]
    elif cls is Boolean:
        if type(raw) is not bool:
            raise _fail(vpath, f"expected true or false, got {type(raw).__name__}")
        value = Boolean(raw)
    elif cls is BitString:
        value = BitString(_json_hex(raw, vpath), _json_int(obj.get("length"), f"{path}.length"))
    elif issubclass(cls, _Bytes):
        value = cls(_json_hex(raw, vpath))
    else:
        value = cls(_json_int(raw, vpath))  # type: ignore[call-arg]
    if len(obj) > 2 and not _LEAF_EXTRAS.isdisjoint(obj):
        _check_extras(obj, value, path)
    return value
