"""Bounds-checked little-endian reading shared by the layer decoders.

Every short read becomes a :class:`DecodeError` with the absolute offset, so no
decoder can leak an ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from gbcs.errors import DecodeError, EncodeError
from gbcs.primitives import slot_builder

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


builder = slot_builder
"""Positional constructors for the codec's frozen frame classes (see ``slot_builder``)."""


class Reader:
    """A cursor over ``data`` whose offsets are reported relative to the outer buffer."""

    __slots__ = ("_data", "_pos", "base", "layer")

    def __init__(self, data: bytes, layer: str, base: int = 0) -> None:
        self._data = bytes(data)
        self._pos = 0
        self.base = base
        self.layer = layer

    @property
    def offset(self) -> int:
        """Absolute offset of the next unread byte."""
        return self.base + self._pos

    @property
    def position(self) -> int:
        """Offset of the next unread byte within this reader's own data."""
        return self._pos

    def remaining(self) -> int:
        return len(self._data) - self._pos

    def error(self, field: str, reason: str, at: int | None = None) -> DecodeError:
        return DecodeError(self.layer, field, self.offset if at is None else at, reason)

    def _short(self, n: int, field: str) -> DecodeError:
        return self.error(field, f"needs {n} bytes, only {self.remaining()} left")

    def take(self, n: int, field: str) -> bytes:
        pos = self._pos
        end = pos + n
        data = self._data
        if end > len(data):
            raise self._short(n, field)
        self._pos = end
        return data[pos:end]

    def u8(self, field: str) -> int:
        pos = self._pos
        data = self._data
        if pos >= len(data):
            raise self._short(1, field)
        self._pos = pos + 1
        return data[pos]

    def u16(self, field: str) -> int:
        pos = self._pos
        data = self._data
        if pos + 2 > len(data):
            raise self._short(2, field)
        self._pos = pos + 2
        return data[pos] | data[pos + 1] << 8

    def u24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "little")

    def u32(self, field: str) -> int:
        pos = self._pos
        data = self._data
        if pos + 4 > len(data):
            raise self._short(4, field)
        self._pos = pos + 4
        return _U32.unpack_from(data, pos)[0]

    def eui64(self, field: str) -> bytes:
        """An on-air (little-endian) EUI-64, returned in display order."""
        return self.take(8, field)[::-1]

    def rest(self) -> bytes:
        chunk = self._data[self._pos :]
        self._pos = len(self._data)
        return chunk

    def end(self, field: str) -> None:
        """Refuse trailing bytes: nothing is silently dropped (DESIGN §5)."""
        if self.remaining():
            raise self.error(field, f"{self.remaining()} unexpected trailing bytes")


_OCTETS = (bytes, bytearray, memoryview)


def octets(value: bytes, field: str) -> bytes:
    """``value`` as bytes; anything else is an EncodeError (``bytes(5)`` would be 5 zeros)."""
    if not isinstance(value, _OCTETS):
        raise EncodeError(f"{field} must be bytes, got {type(value).__name__}")
    return bytes(value)


def eui64(value: bytes, field: str) -> bytes:
    """A display-order EUI-64 as the 8 little-endian bytes ZigBee transmits."""
    if not isinstance(value, _OCTETS):
        raise EncodeError(f"{field} must be 8 bytes, got {type(value).__name__}")
    if len(value) != 8:
        raise EncodeError(f"{field} must be 8 bytes, got {len(value)}")
    return bytes(value[::-1])


def check_range(value: int, bits: int, field: str) -> int:
    # isinstance first: None or a str would raise TypeError, a float pass to struct.error.
    if not isinstance(value, int) or not 0 <= value < (1 << bits):
        raise EncodeError(f"{field}={value!r} does not fit {bits} bits")
    return value


def u8(value: int, field: str) -> bytes:
    return bytes((check_range(value, 8, field),))


def u16(value: int, field: str) -> bytes:
    return _U16.pack(check_range(value, 16, field))


def u32(value: int, field: str) -> bytes:
    return _U32.pack(check_range(value, 32, field))
