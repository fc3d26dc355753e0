"""Files the kit writes whole or not at all.

Each is staged under a short hidden name beside its final one and renamed into
place once every one of them is written, so a full disk or a kill leaves the
previous files as they were, never a torn one (a report half-written, a
capture without its keys). The previous files wait under hidden names until
all the new ones are in place, and go back if a rename fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["temporary_name", "write_together"]

_TEMPORARIES = itertools.count()


def temporary_name() -> str:
    """A short hidden name for a staged file, whatever the final name's length."""
    return f".gbcs-hil-{os.getpid()}-{next(_TEMPORARIES)}.tmp"


def write_together(contents: Iterable[tuple[Path, bytes]]) -> None:
    """Write every ``(path, data)``; on an OSError none is left staged or half-placed,
    and the files they would have replaced are as they were."""
    files = list(contents)
    staged: list[Path] = []
    aside: list[tuple[Path, Path]] = []  # (final, where its previous file waits)
    placed: list[Path] = []
    try:
        for final, data in files:
            temporary = final.with_name(temporary_name())
            staged.append(temporary)
            temporary.write_bytes(data)
        for final, _ in files:
            if final.is_dir() and not final.is_symlink():
                raise IsADirectoryError(21, "Is a directory", str(final))
        for final, _ in files:
            if os.path.lexists(final):
                previous = final.with_name(temporary_name())
                os.replace(final, previous)
                aside.append((final, previous))
        for (final, _), temporary in zip(files, staged, strict=True):
            os.replace(temporary, final)
            placed.append(final)
    except OSError:
        for leftover in staged + placed:
            with contextlib.suppress(OSError):
                leftover.unlink()
        for final, previous in aside:
            with contextlib.suppress(OSError):
                os.replace(previous, final)
        raise
    for _, previous in aside:
        with contextlib.suppress(OSError):
            previous.unlink()
