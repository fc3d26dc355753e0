"""Files the kit writes whole or not at all.

Each is staged under a short hidden name beside its final one and renamed into
place once every one of them is written, so a full disk or a kill leaves the
previous files as they were, never a torn one (a report half-written, a
capture without its keys). Each file is replaced in one rename, and the
previous files keep a second hidden name until all the new ones are in place,
to go back if a rename fails.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
from collections.abc import Collection, Iterable
from pathlib import Path

__all__ = ["temporary_name", "write_together"]

_TEMPORARIES = itertools.count()


def temporary_name() -> str:
    """A short hidden name for a staged file, whatever the final name's length."""
    return f".gbcs-hil-{os.getpid()}-{next(_TEMPORARIES)}.tmp"


def _keep(final: Path) -> Path:
    """A second name for ``final``'s previous file, which stays in place meanwhile: a hard
    link, or a copy where the file system has none."""
    previous = final.with_name(temporary_name())
    try:
        os.link(final, previous)
    except OSError:
        shutil.copy2(final, previous)
    return previous


def _stage_private(temporary: Path, data: bytes) -> None:
    """A new file readable by its owner only from the start (a private key is never
    readable by others, not even for a moment), then written."""
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(temporary, 0o600)  # 0600 whatever the umask took away


def write_together(
    contents: Iterable[tuple[Path, bytes]], *, private: Collection[Path] = ()
) -> None:
    """Write every ``(path, data)``; on any failure or interrupt none is left staged or
    half-placed, and the files they would have replaced are as they were. Each file is
    replaced in one rename, so a reader always finds the old file or the new one. The
    ``private`` ones are readable by their owner only (0600)."""
    files = list(contents)
    staged: list[Path] = []
    kept: list[tuple[Path, Path]] = []  # (final, a second name for its previous file)
    placed: list[Path] = []
    try:
        for final, data in files:
            temporary = final.with_name(temporary_name())
            staged.append(temporary)
            if final in private:
                _stage_private(temporary, data)
            else:
                temporary.write_bytes(data)
        for final, _ in files:
            if final.is_dir() and not final.is_symlink():
                raise IsADirectoryError(21, "Is a directory", str(final))
        for final, _ in files:
            if os.path.isfile(final) and not os.path.islink(final):
                kept.append((final, _keep(final)))
        for (final, _), temporary in zip(files, staged, strict=True):
            os.replace(temporary, final)
            placed.append(final)
    except BaseException:
        for leftover in staged:
            with contextlib.suppress(OSError):
                leftover.unlink()
        restored = {final for final, _ in kept}
        for final in placed:
            if final not in restored:
                with contextlib.suppress(OSError):
                    final.unlink()  # new, with no previous file to go back to
        for final, previous in kept:
            with contextlib.suppress(OSError):
                if final in placed:
                    os.replace(previous, final)
                else:  # never replaced; and a rename between two links of one file is a no-op
                    previous.unlink()
        raise
    for _, previous in kept:
        with contextlib.suppress(OSError):
            previous.unlink()
