"""``kill -9`` in the middle of ``gbcs-hil triage``, then started again on the same folder."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from emulators.inventory import Inventory


def _triage(workdir: Path, crash_after: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GBCS_HIL_")}
    if crash_after is not None:
        env["GBCS_HIL_CRASH_AFTER"] = str(crash_after)
    return subprocess.run(
        [sys.executable, "-m", "gbcs.cli", "triage", "--workdir", str(workdir), "--quiet"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _outcome(workdir: Path) -> tuple[list, dict, list[str], list[str]]:
    """Meters, inventory, GBCS commands sent, and the keys file beside the capture."""
    report = json.loads((workdir / "report.json").read_text(encoding="utf-8"))
    meters = [
        (
            m["eui64"],
            m["state_found"],
            m["outcome"],
            m["smi_status"],
            [(s["use_case"], s["result"]) for s in m["steps"]],
        )
        for m in report["meters"]
    ]
    inventory = Inventory(workdir / "triage.sqlite")
    try:
        sent = [e.data for e in inventory.audit_log() if e.kind == "gbcs sent"]
        keys = (workdir / "han.pcap.keys").read_text(encoding="utf-8").splitlines()
        return meters, inventory.snapshot(), sent, keys
    finally:
        inventory.close()


@pytest.fixture(scope="module")
def reference(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[list, dict, list[str], list[str]]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    assert _triage(folder).returncode == 0
    return _outcome(folder)


@pytest.mark.parametrize("crash_after", [1, 17, 38, 50])
def test_killed_run_resumes_to_the_same_end(
    tmp_path: Path, crash_after: int, reference: tuple[list, dict, list[str], list[str]]
) -> None:
    killed = _triage(tmp_path, crash_after)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (tmp_path / "report.json").exists()
    resumed = _triage(tmp_path)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resumed the run" in resumed.stdout
    meters, snapshot, sent, keys = _outcome(tmp_path)
    ref_meters, ref_snapshot, ref_sent, ref_keys = reference
    assert meters == ref_meters
    assert snapshot == ref_snapshot
    assert keys == ref_keys  # every network and link key the capture needs
    assert len(sent) == len(ref_sent)
    assert not [d for d, n in collections.Counter(sent).items() if n > 1]
