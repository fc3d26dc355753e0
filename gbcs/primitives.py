"""Byte-level building blocks shared by every layer (CRIB §1).

:class:`Reader` is the single place where bytes are consumed, so every layer
reports truncation and bad lengths the same way, with absolute offsets.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from gbcs.errors import DecodeError, EncodeError, GbcsError

__all__ = [
    "GBZ_EPOCH",
    "CosemDateTime",
    "Reader",
    "decode_length",
    "encode_length",
    "eui64",
    "hex_field",
    "pack_id8",
    "pack_u64",
    "utc_from_gbz",
    "utc_to_gbz",
]

T = TypeVar("T")
GBZ_EPOCH = _dt.datetime(2000, 1, 1, tzinfo=_dt.UTC)
SHORT_LENGTHS: tuple[bytes, ...] = tuple(bytes((n,)) for n in range(0x80))
"""The one-byte length forms, indexed by length, for encoders that inline the short case."""


def encode_length(n: int) -> bytes:
    """DER-style definite length, shortest form (CRIB §1.1)."""
    if type(n) is int and 0 <= n <= 0xFF:  # shared one-byte forms: no allocation
        return SHORT_LENGTHS[n] if n < 0x80 else bytes((0x81, n))
    if n < 0:
        raise EncodeError(f"length {n} is negative")
    if n < 0x80:
        return bytes((n,))
    if n <= 0xFF:
        return bytes((0x81, n))
    if n <= 0xFFFF:
        return bytes((0x82, n >> 8, n & 0xFF))
    if n <= 0xFFFFFF:
        return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))
    raise EncodeError(f"length {n} does not fit in 3 bytes")


class Reader:
    """A cursor over a buffer that raises :class:`DecodeError` on every misuse.

    ``base`` makes offsets absolute when a layer decodes a slice of a larger
    buffer (a payload inside a message).
    """

    __slots__ = ("base", "data", "end", "layer", "pos")

    def __init__(
        self, data: bytes, layer: str, pos: int = 0, base: int = 0, end: int | None = None
    ) -> None:
        self.data = data
        self.layer = layer
        self.pos = pos
        self.base = base
        self.end = len(data) if end is None else end

    @property
    def offset(self) -> int:
        return self.base + self.pos

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def error(self, field: str, reason: str, pos: int | None = None) -> DecodeError:
        return DecodeError(
            self.layer, field, self.base + (self.pos if pos is None else pos), reason
        )

    def take(self, n: int, field: str) -> bytes:
        pos = self.pos
        if n > self.end - pos:
            raise self.error(field, f"truncated: needs {n} bytes, {self.end - pos} left")
        self.pos = pos + n
        return self.data[pos : pos + n]

    def u8(self, field: str) -> int:
        pos = self.pos
        if pos >= self.end:
            raise self.error(field, "truncated: needs 1 byte, 0 left")
        self.pos = pos + 1
        return self.data[pos]

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "big")

    def sint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "big", signed=True)

    def expect(self, value: int, field: str) -> None:
        pos = self.pos
        got = self.u8(field)
        if got != value:
            raise self.error(field, f"expected 0x{value:02X}, found 0x{got:02X}", pos)

    def length(self, field: str) -> int:
        """Read a DER-style length; reject indefinite and non-minimal forms.

        Non-minimal forms are refused so that encode(decode(b)) == b holds for
        every accepted input.
        """
        pos = self.pos
        first = self.u8(field)
        if first < 0x80:
            return first
        n = first & 0x7F
        if n == 0:
            raise self.error(field, "indefinite length (0x80) is not allowed", pos)
        if n > 3:
            raise self.error(field, f"length of length {n} exceeds 3", pos)
        value = self.uint(n, field)
        if value < 0x80 or value >> (8 * (n - 1)) == 0:
            raise self.error(field, f"non-minimal length encoding of {value}", pos)
        return value

    def sub(self, n: int, field: str, layer: str | None = None) -> Reader:
        """A reader over the next ``n`` bytes; this reader moves past them."""
        pos = self.pos
        self.take(n, field)
        return Reader(self.data, layer or self.layer, pos, self.base, pos + n)

    def finish(self, field: str = "trailing bytes") -> None:
        if self.pos != self.end:
            raise self.error(field, f"{self.end - self.pos} unexpected trailing bytes")


def decode_length(data: bytes, pos: int = 0, layer: str = "length") -> tuple[int, int]:
    """Return (length, position after it)."""
    r = Reader(data, layer, pos)
    value = r.length("length")
    return value, r.pos


def pack_id8(value: bytes, what: str) -> bytes:
    """Check and return an 8-byte identifier for the wire."""
    if type(value) is bytes and len(value) == 8:  # the usual case, with no copy to make
        return value
    if not isinstance(value, bytes | bytearray):
        raise EncodeError(f"{what} must be 8 bytes, got {type(value).__name__}")
    if len(value) != 8:
        raise EncodeError(f"{what} must be 8 bytes, got {len(value)}")
    return bytes(value)


def slot_twin(cls: type) -> type[Any]:
    """A plain class laid out exactly like the frozen slotted dataclass ``cls``.

    Hot decoders and builders fill an instance of it with ordinary attribute
    stores, then set ``__class__ = cls``: the very object ``cls(...)`` would make
    (no ``__post_init__`` runs, so only for classes without one), for about half
    the cost of slot-descriptor calls and a third of the frozen ``__init__``'s.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))
    if (
        hasattr(cls, "__post_init__")
        or tuple(vars(cls).get("__slots__", ())) != names
        or "__dict__" in vars(cls)
        or "__weakref__" in vars(cls)
    ):
        raise TypeError(f"{cls.__name__} is not a plain frozen slotted dataclass")
    return type(f"_{cls.__name__}Twin", cls.__bases__, {"__slots__": names})


def slot_builder(cls: type[T]) -> Callable[..., T]:
    """A positional constructor for ``cls`` (every field, in order) through its twin.

    For builders that make a value per message where the call cannot be inlined.
    """
    twin = slot_twin(cls)
    names = [f"a{i}" for i in range(len(twin.__slots__))]
    args = ", ".join(names)
    lines = [f"def build({args}):", "    o = _new(_Twin)"]
    lines += [f"    o.{slot} = {name}" for slot, name in zip(twin.__slots__, names, strict=True)]
    lines += ["    o.__class__ = _cls", "    return o"]
    namespace: dict[str, Any] = {"_new": object.__new__, "_Twin": twin, "_cls": cls}
    exec("\n".join(lines), namespace)
    build: Callable[..., T] = namespace["build"]
    build.__qualname__ = build.__name__ = f"build_{cls.__name__}"
    return build


def pack_u64(value: int, what: str) -> bytes:
    """Check and encode a uint64 counter."""
    if not 0 <= value <= 0xFFFF_FFFF_FFFF_FFFF:
        raise EncodeError(f"{what} {value} is not a uint64")
    return value.to_bytes(8, "big")


def hex_field(
    value: Any, what: str, size: int | None = None, error: type[GbcsError] = GbcsError
) -> bytes:
    """Bytes a JSON document gives as hex (``size`` of them if given); ``error`` names ``what``.

    Shared by the ``decode --json`` form the encoder reads and the saved world state.
    """
    if not isinstance(value, str):
        raise error(f"{what} is not hex: {type(value).__name__}")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise error(f"{what} is not hex: {value[:40]!r}") from None
    if size is not None and len(raw) != size:
        raise error(f"{what} must be {size} bytes, found {len(raw)}")
    return raw


# Not a device's address: the null EUI-64 and the all-ones one (broadcast / "unknown").
RESERVED_EUI64 = {
    bytes(8): "the null EUI-64 (all zeros)",
    b"\xff" * 8: "the broadcast EUI-64 (all ones)",
}


def eui64(value: bytes | str) -> bytes:
    """Normalise an 8-byte identifier given as bytes or 16 hex digits (CRIB §1.2)."""
    if isinstance(value, str):
        text = value.replace("-", "").replace(":", "").replace(" ", "")
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raise EncodeError(f"identifier {value!r} is not hexadecimal") from None
    else:
        raw = bytes(value)
    if len(raw) != 8:
        raise EncodeError(f"identifier must be 8 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True, slots=True)
class CosemDateTime:
    """COSEM date-time, 12 bytes (CRIB §1.3); every field kept as sent.

    0xFF (0xFFFF for the year) means "not specified" and deviation 0x8000
    means "not specified"; those raw values are kept so the bytes round-trip.
    """

    year: int = 0xFFFF
    month: int = 0xFF
    day: int = 0xFF
    day_of_week: int = 0xFF
    hour: int = 0xFF
    minute: int = 0xFF
    second: int = 0xFF
    hundredths: int = 0xFF
    deviation: int = -0x8000
    clock_status: int = 0xFF

    LENGTH = 12

    def encode(self) -> bytes:
        # One struct call for in-range ints; anything odd takes the checked path (which
        # refuses a non-int year or deviation that struct would take through __index__).
        if type(self.year) is int and type(self.deviation) is int:
            try:
                return _DATE_TIME.pack(
                    self.year,
                    self.month,
                    self.day,
                    self.day_of_week,
                    self.hour,
                    self.minute,
                    self.second,
                    self.hundredths,
                    self.deviation,
                    self.clock_status,
                )
            except struct.error:
                pass
        return self._encode_checked()

    def _encode_checked(self) -> bytes:
        """Field by field: the reference for :meth:`encode`, and its error messages."""
        try:
            return (
                self.year.to_bytes(2, "big")
                + bytes(
                    (
                        self.month,
                        self.day,
                        self.day_of_week,
                        self.hour,
                        self.minute,
                        self.second,
                        self.hundredths,
                    )
                )
                + self.deviation.to_bytes(2, "big", signed=True)
                + bytes((self.clock_status,))
            )
        except (OverflowError, ValueError) as exc:
            raise EncodeError(f"COSEM date-time field out of range: {exc}") from None

    @classmethod
    def decode(cls, data: bytes, layer: str = "cosem-date-time", base: int = 0) -> CosemDateTime:
        r = Reader(data, layer, base=base)
        value = cls.read(r)
        r.finish()
        return value

    @classmethod
    def read(cls, r: Reader, field: str = "date-time") -> CosemDateTime:
        return cls.unpack(r.take(12, field))

    @classmethod
    def unpack(cls, raw: bytes) -> CosemDateTime:
        """From exactly 12 bytes; built through the twin (every response carries one)."""
        values = _DATE_TIME.unpack(raw)
        if cls is not CosemDateTime:
            obj = _new(cls)
            for setter, value in zip(_DATE_TIME_SETTERS, values, strict=True):
                setter(obj, value)
            return obj
        twin = _new(_DateTimeTwin)
        (
            twin.year,
            twin.month,
            twin.day,
            twin.day_of_week,
            twin.hour,
            twin.minute,
            twin.second,
            twin.hundredths,
            twin.deviation,
            twin.clock_status,
        ) = values
        twin.__class__ = CosemDateTime
        return twin  # type: ignore[no-any-return]

    @classmethod
    def from_datetime(cls, when: _dt.datetime) -> CosemDateTime:
        """Encode an aware datetime as UTC with deviation 0 (GBCS devices keep UTC)."""
        if when.tzinfo is None:
            raise EncodeError("COSEM date-time needs a timezone-aware datetime")
        utc = when.astimezone(_dt.UTC)
        if cls is not CosemDateTime:  # a subclass may have its own __init__
            return cls(
                utc.year,
                utc.month,
                utc.day,
                utc.isoweekday(),
                utc.hour,
                utc.minute,
                utc.second,
                utc.microsecond // 10000,
                0,
                0,
            )
        # Through the twin, as unpack() does: the frozen __init__ costs three times as much.
        obj = _new(_DateTimeTwin)
        obj.year = utc.year
        obj.month = utc.month
        obj.day = utc.day
        obj.day_of_week = utc.isoweekday()
        obj.hour = utc.hour
        obj.minute = utc.minute
        obj.second = utc.second
        obj.hundredths = utc.microsecond // 10000
        obj.deviation = 0
        obj.clock_status = 0
        obj.__class__ = CosemDateTime
        return obj  # type: ignore[no-any-return]

    def to_datetime(self) -> _dt.datetime | None:
        """The instant, or None when a date or time field is unspecified."""
        fields = (self.month, self.day, self.hour, self.minute, self.second)
        if self.year == 0xFFFF or any(f == 0xFF for f in fields):
            return None
        hundredths = 0 if self.hundredths == 0xFF else self.hundredths
        deviation = 0 if self.deviation == -0x8000 else self.deviation
        try:
            naive = _dt.datetime(
                self.year,
                self.month,
                self.day,
                self.hour,
                self.minute,
                self.second,
                hundredths * 10000,
            )
            # Blue Book (IC 8 clock): deviation is UTC minus local time, in minutes; one of a
            # day or more (the int16 allows +-22 days) is no offset datetime can hold.
            zone = _dt.timezone(_dt.timedelta(minutes=-deviation))
        except ValueError:
            return None
        return naive.replace(tzinfo=zone)

    def __str__(self) -> str:
        def part(v: int, width: int, unspecified: int) -> str:
            return "*" * width if v == unspecified else f"{v:0{width}d}"

        text = (
            f"{part(self.year, 4, 0xFFFF)}-{part(self.month, 2, 0xFF)}-"
            f"{part(self.day, 2, 0xFF)} {part(self.hour, 2, 0xFF)}:"
            f"{part(self.minute, 2, 0xFF)}:{part(self.second, 2, 0xFF)}"
        )
        if self.deviation != -0x8000:
            text += f" dev={self.deviation}"
        return text


_new = object.__new__
_DATE_TIME = struct.Struct(">HBBBBBBBhB")
_DATE_TIME_SETTERS = tuple(
    getattr(CosemDateTime, f.name).__set__ for f in dataclasses.fields(CosemDateTime)
)
_DateTimeTwin = slot_twin(CosemDateTime)


def utc_from_gbz(seconds: int) -> _dt.datetime:
    """GBZ UTCTime: seconds since 2000-01-01 00:00:00 UTC (CRIB §1.4)."""
    return GBZ_EPOCH + _dt.timedelta(seconds=seconds)


def utc_to_gbz(when: _dt.datetime) -> int:
    if when.tzinfo is None:
        raise EncodeError("GBZ UTCTime needs a timezone-aware datetime")
    seconds = int((when - GBZ_EPOCH).total_seconds())
    if not 0 <= seconds <= 0xFFFFFFFF:
        raise EncodeError(f"{when.isoformat()} is outside the GBZ UTCTime range")
    return seconds
