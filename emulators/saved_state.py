"""Read a saved emulated world strictly: damage is an error naming where it is, never a default.

A key its writer always writes must be there, with a value of the written
type and range; nothing a user saved is silently replaced or dropped.
"""

from __future__ import annotations

from typing import Any

from gbcs.errors import GbcsError
from gbcs.primitives import hex_field

__all__ = [
    "MAX_SECONDS",
    "U64",
    "SavedState",
    "kind_of",
    "saved_hex",
    "saved_int",
    "saved_seconds",
]

U64 = 2**64 - 1  # originator and alert counters are 8 bytes on the wire
# Simulated seconds a saved time may hold: the UTC time of any of them stays a datetime.
MAX_SECONDS = 1e11

_KINDS = {
    dict: "an object",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def kind_of(value: Any) -> str:
    return _KINDS.get(type(value), type(value).__name__)


def saved_hex(value: Any, what: str, size: int | None = None) -> bytes:
    """Bytes saved as hex, ``size`` of them if given."""
    return hex_field(value, what, size)


def saved_int(value: Any, what: str, low: int | None, high: int | None) -> int:
    """An integer in ``low..high`` (None: unbounded); a JSON true/false or 7.0 is not one."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise GbcsError(f"{what} is {kind_of(value)}, not an integer")
    if (low is not None and value < low) or (high is not None and value > high):
        raise GbcsError(f"{what} {value} is outside {low}..{high}")
    return value


def saved_seconds(value: Any, what: str) -> float:
    """A simulated time or duration: finite, 0..MAX_SECONDS."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GbcsError(f"{what} is {kind_of(value)}, not a number of seconds")
    if not 0 <= value <= MAX_SECONDS:  # NaN fails this too
        raise GbcsError(f"{what} {value} is outside 0..{MAX_SECONDS:.0e} seconds")
    return float(value)


class SavedState:
    """One object of a saved state, read strictly; errors name the key's path in it."""

    __slots__ = ("obj", "where")

    def __init__(self, obj: Any, where: str = "") -> None:
        if not isinstance(obj, dict):
            raise GbcsError(f"{where or 'the state'} is {kind_of(obj)}, not an object")
        self.obj: dict[str, Any] = obj
        self.where = where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def __contains__(self, key: str) -> bool:
        return key in self.obj

    def value(self, key: str) -> Any:
        try:
            return self.obj[key]
        except KeyError:
            raise GbcsError(f"{self.path(key)} is missing") from None

    def integer(self, key: str, low: int | None, high: int | None) -> int:
        return saved_int(self.value(key), self.path(key), low, high)

    def seconds(self, key: str) -> float:
        return saved_seconds(self.value(key), self.path(key))

    def optional_integer(self, key: str, low: int | None, high: int | None) -> int | None:
        """An integer in ``low..high`` or null; the key itself is still required."""
        return None if self.value(key) is None else self.integer(key, low, high)

    def optional_seconds(self, key: str) -> float | None:
        """A time in seconds or null; the key itself is still required."""
        return None if self.value(key) is None else self.seconds(key)

    def flag(self, key: str) -> bool:
        value = self.value(key)
        if not isinstance(value, bool):
            raise GbcsError(f"{self.path(key)} is {kind_of(value)}, not true or false")
        return value

    def text(self, key: str) -> str:
        value = self.value(key)
        if not isinstance(value, str):
            raise GbcsError(f"{self.path(key)} is {kind_of(value)}, not a string")
        return value

    def optional_text(self, key: str) -> str | None:
        """A string or null; the key itself is still required."""
        return None if self.value(key) is None else self.text(key)

    def octets(self, key: str, size: int | None = None) -> bytes:
        return saved_hex(self.value(key), self.path(key), size)

    def member(self, key: str) -> SavedState:
        return SavedState(self.value(key), self.path(key))

    def optional_member(self, key: str) -> SavedState | None:
        """An object or null; the key itself is still required."""
        return None if self.value(key) is None else self.member(key)

    def array(self, key: str) -> list[Any]:
        value = self.value(key)
        if not isinstance(value, list):
            raise GbcsError(f"{self.path(key)} is {kind_of(value)}, not a list")
        return value

    def members(self, key: str) -> list[SavedState]:
        path = self.path(key)
        return [SavedState(v, f"{path}[{i}]") for i, v in enumerate(self.array(key))]

    def table(self, key: str, size: int = 8) -> list[tuple[bytes, str, Any]]:
        """A map keyed by hex (EUI-64s by default): (key, its path, value) in saved order.

        Two keys naming the same bytes ("0a", "0A") are refused: one would be lost.
        """
        path = self.path(key)
        value = self.value(key)
        if not isinstance(value, dict):
            raise GbcsError(f"{path} is {kind_of(value)}, not an object")
        out: list[tuple[bytes, str, Any]] = []
        seen: set[bytes] = set()
        for k, v in value.items():
            where = f"{path}.{k}"
            raw = saved_hex(k, f"{where} (key)", size)
            if raw in seen:
                raise GbcsError(f"{path} names {raw.hex().upper()} twice")
            seen.add(raw)
            out.append((raw, where, v))
        return out
