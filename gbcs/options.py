"""Command-line options taken once: given twice, argparse keeps the last and the first
is silently lost (a ``--keystore`` from a shell alias overridden without a word); and the
seed every command that builds a test PKI or a world takes, read one way by all."""

from __future__ import annotations

import argparse
from typing import Any

from gbcs.errors import GbcsError

__all__ = ["SEED_RANGE", "Once", "OnceFlag", "check_seed", "seed_argument"]

# An emulated world's device keys hash the seed as 8 signed bytes, so a seed is a signed
# 64-bit integer; the test PKI of ``example --seed N`` is the world's of seed N.
SEED_RANGE = range(-(2**63), 2**63)


def check_seed(seed: int) -> int:
    """The seed, if a world can be built from it; a :class:`GbcsError` naming it if not."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise GbcsError(f"seed {seed!r} is not an integer")
    if seed not in SEED_RANGE:
        raise GbcsError(f"seed {seed} is outside the signed 64-bit range -2**63 .. 2**63-1")
    return seed


def seed_argument(text: str) -> int:
    """``--seed``: an integer a world can be built from (signed 64-bit)."""
    try:
        # Decimal as people write it (leading zeros too), or 0x/0o/0b with its prefix.
        prefixed = text.strip().lstrip("+-")[:2].lower() in ("0x", "0o", "0b")
        return check_seed(int(text, 0) if prefixed else int(text, 10))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    except GbcsError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Once(argparse.Action):
    """An option that takes one value; given twice is a usage error (README)."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if getattr(namespace, f"_{self.dest}_given", False):
            parser.error(f"argument {option_string}: given twice")
        setattr(namespace, f"_{self.dest}_given", True)
        setattr(namespace, self.dest, self.const if self.nargs == 0 else values)


class OnceFlag(Once):
    """A flag: given twice is a usage error too, like an option with a value."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, const=True, default=False, **kwargs)
