"""Command-line options taken once: given twice, argparse keeps the last and the first
is silently lost (a ``--keystore`` from a shell alias overridden without a word)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["Once", "OnceFlag"]


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
