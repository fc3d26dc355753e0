"""Bounds-checked little-endian reading shared by the layer decoders.

Every short read becomes a :class:`DecodeError` with the absolute offset, so no
decoder can leak an ``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import struct

from gbcs.errors import DecodeError, EncodeError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


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

    def take(self, n: int, field: str) -> bytes:
        if self.remaining() < n:
            raise self.error(field, f"needs {n} bytes, only {self.remaining()} left")
        chunk = self._data[self._pos : self._pos + n]
        self._pos += n
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return _U16.unpack(self.take(2, field))[0]

    def u24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "little")

    def u32(self, field: str) -> int:
        return _U32.unpack(self.take(4, field))[0]

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


def eui64(value: bytes, field: str) -> bytes:
    """A display-order EUI-64 as the 8 little-endian bytes ZigBee transmits."""
    if len(value) != 8:
        raise EncodeError(f"{field} must be 8 bytes, got {len(value)}")
    return bytes(value[::-1])


def check_range(value: int, bits: int, field: str) -> int:
    if not 0 <= value < (1 << bits):
        raise EncodeError(f"{field}={value} does not fit {bits} bits")
    return value


def u8(value: int, field: str) -> bytes:
    return bytes((check_range(value, 8, field),))


def u16(value: int, field: str) -> bytes:
    return _U16.pack(check_range(value, 16, field))


def u32(value: int, field: str) -> bytes:
    return _U32.pack(check_range(value, 32, field))
