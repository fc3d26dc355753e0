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


def find_rtds(start: Path | None = None) -> Path | None:
    """``$GBCS_RTDS`` or the first ``shared/rtds`` beside an ancestor of ``start``."""
    env = os.environ.get("GBCS_RTDS")
    if env:
        path = Path(env)
        return path if path.is_dir() else None
    here = (start or Path.cwd()).resolve()
    for parent in (here, *here.parents):
        candidate = parent.parent / "shared" / "rtds"
        if candidate.is_dir():
            return candidate
    return None


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
