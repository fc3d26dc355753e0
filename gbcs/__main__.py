"""``gbcs-hil`` and ``python -m gbcs``: the command line, with start-up errors made readable.

The catalogue reads ``$GBCS_HIL_DISCONNECT_CODE`` when it is imported, so a bad
value is found while :mod:`gbcs.cli` loads; it then ends the command with its
message and exit status 2 instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gbcs.errors import GbcsError


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from gbcs.cli import main as cli_main
    except GbcsError as e:
        print(f"gbcs-hil: {e}", file=sys.stderr)
        return 2
    return cli_main(argv)


if __name__ == "__main__":
    sys.exit(main())
