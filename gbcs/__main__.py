"""``gbcs-hil`` and ``python -m gbcs``: the command line, with start-up errors made readable.

The catalogue reads ``$GBCS_HIL_DISCONNECT_CODE`` when it is imported, so a bad
value is found while :mod:`gbcs.cli` loads; it then ends the command with its
message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Sequence

from gbcs.errors import GbcsError


def _usable(fd: int, writing: bool) -> bool:
    """Whether ``fd`` is open the way its stream needs. Started with one closed, a
    process may find another file on it: a shell script that execs Python (a pyenv shim)
    leaves the script itself, read-only, on the descriptor ``2>&-`` closed."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
    except OSError:
        return False
    return flags == os.O_RDWR or flags == (os.O_WRONLY if writing else os.O_RDONLY)


def _standard_streams() -> None:
    """A standard stream the command was started without (``>&-``, ``<&-``, ``2>&-``)
    is /dev/null: Python would have none (None) or one that cannot be written, and the
    first file the command opens could take its descriptor, so that text meant for
    stderr would land in the inventory."""
    for fd, name, mode in ((0, "stdin", "r"), (1, "stdout", "w"), (2, "stderr", "w")):
        if not _usable(fd, mode == "w"):
            devnull = os.open(os.devnull, os.O_RDWR)
            if devnull != fd:
                os.dup2(devnull, fd)
                os.close(devnull)
        if getattr(sys, name) is None:
            setattr(sys, name, open(fd, mode, closefd=False))  # noqa: SIM115 (for the run)


def main(argv: Sequence[str] | None = None) -> int:
    _standard_streams()
    try:
        from gbcs.cli import main as cli_main
    except GbcsError as e:
        print(f"gbcs-hil: {e}", file=sys.stderr)
        return 2
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
