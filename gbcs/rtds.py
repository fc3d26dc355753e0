"""Loader for a DCC Reference Test Data Set folder (read-only, never copied).

Layout: ``RTDS-x/<SRV>_<UseCase>/<UseCase>_<SRV>_<SCENARIO>_<KIND>_GBCS.HEX``
plus a ``keystore`` folder beside it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RtdsVector", "find_rtds", "load_corpus"]

KINDS = ("PRECOMMAND", "COMMAND", "RESPONSE", "ALERT")


@dataclass(frozen=True, slots=True)
class RtdsVector:
    path: Path
    folder: str
    kind: str
    data: bytes

    @property
    def name(self) -> str:
        return self.path.name


def find_rtds(repository: Path | None = None) -> Path | None:
    """``$GBCS_RTDS``, else ``../shared/rtds`` beside ``repository`` (default: the current
    folder). Only there: a ``shared`` folder further up belongs to something else, and
    finding it would hide a missing corpus."""
    env = os.environ.get("GBCS_RTDS")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    candidate = (repository or Path.cwd()).resolve().parent / "shared" / "rtds"
    return candidate if candidate.is_dir() else None


def _kind(name: str) -> str:
    stem = name.upper().removesuffix("_GBCS.HEX")
    for kind in KINDS:  # PRECOMMAND before COMMAND: it ends with COMMAND too
        if stem.endswith("_" + kind):
            return kind
    return "UNKNOWN"


def load_corpus(root: Path) -> list[RtdsVector]:
    """Every ``*.HEX`` message under ``root``, sorted by path."""
    vectors = []
    for path in sorted(root.rglob("*.HEX")):
        text = path.read_text().strip()
        vectors.append(RtdsVector(path, path.parent.name, _kind(path.name), bytes.fromhex(text)))
    return vectors
