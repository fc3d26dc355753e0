"""Assertions shared by the layer tests."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from gbcs.errors import DecodeError


def every_prefix_fails(decode: Callable[[bytes], object], data: bytes) -> None:
    """Each proper prefix of a fixed-layout frame is a DecodeError, never another exception."""
    for cut in range(len(data)):
        try:
            decode(data[:cut])
        except DecodeError as exc:
            assert 0 <= exc.offset <= len(data) + 2, exc  # +2: a wrapper may re-add an FCS
        else:
            raise AssertionError(f"prefix of {cut}/{len(data)} bytes decoded: {data[:cut].hex()}")


def every_prefix_is_handled(decode: Callable[[bytes], object], data: bytes) -> None:
    """Each prefix either decodes or raises DecodeError (a payload may legally be shorter)."""
    for cut in range(len(data)):
        with contextlib.suppress(DecodeError):
            decode(data[:cut])
