"""One exception family for the whole codec.

A caller can catch :class:`GbcsError` and know it never sees an ``IndexError``
or ``struct.error`` from malformed input: every layer converts those into a
:class:`DecodeError` that names the layer, the field and the byte offset.
"""

from __future__ import annotations


class GbcsError(Exception):
    """Base of every error the kit raises on purpose."""


class DecodeError(GbcsError):
    """Malformed, truncated or trailing bytes.

    ``offset`` is absolute within the outermost buffer handed to the decoder,
    so a lab engineer can find the byte in the hex they pasted.
    """

    def __init__(self, layer: str, field: str, offset: int, reason: str) -> None:
        self.layer = layer
        self.field = field
        self.offset = offset
        self.reason = reason
        super().__init__(f"{layer}: {field} at offset {offset}: {reason}")

    def as_dict(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "field": self.field,
            "offset": self.offset,
            "reason": self.reason,
        }


class EncodeError(GbcsError, ValueError):
    """A value that cannot be put on the wire (out of range, wrong size, ...)."""


class KeyNotFoundError(GbcsError, LookupError):
    """The key store has no key of the requested kind for a party."""

    def __init__(self, party: bytes, kind: str, private: bool) -> None:
        self.party = party
        self.kind = kind
        self.private = private
        what = "private" if private else "public"
        super().__init__(f"no {what} {kind.upper()} key for {party.hex().upper()}")


class VerificationError(GbcsError):
    """A MAC, signature or encrypted-block tag did not verify."""


class GbtError(GbcsError):
    """General Block Transfer reassembly problem (inconsistent or missing blocks)."""

    def __init__(self, reason: str, missing: tuple[int, ...] = ()) -> None:
        self.reason = reason
        self.missing = missing
        super().__init__(reason)
