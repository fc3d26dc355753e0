"""``gbcs-hil`` and ``python -m gbcs``: a bad start-up setting is one error line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(*argv: str, code: str | None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GBCS_HIL_DISCONNECT_CODE"}
    if code is not None:
        env["GBCS_HIL_DISCONNECT_CODE"] = code
    return subprocess.run(
        [sys.executable, "-m", "gbcs", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        check=False,
    )


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        ("zz", "GBCS_HIL_DISCONNECT_CODE='zz' is not an integer"),
        ("0x011B", "disconnect message code 0x011B is already GBCS CS02f"),
        ("0x10000", "disconnect message code 65536 is not a uint16"),
    ],
)
def test_a_bad_disconnect_code_stops_every_command_cleanly(code: str, reason: str) -> None:
    done = _run("--help", code=code)
    assert done.returncode == 2
    assert done.stderr == f"gbcs-hil: {reason}\n" and done.stdout == ""


def test_a_good_disconnect_code_is_used(tmp_path: Path) -> None:
    done = _run("example", "disconnect", code="0x7F10", cwd=tmp_path)  # it writes its keys there
    assert done.returncode == 0, done.stderr
    assert "00027F10" in done.stdout  # grouping header: CRA flag, then the message code
