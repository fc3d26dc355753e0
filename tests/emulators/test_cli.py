"""``gbcs-hil emulate scenario``: the JSON a lab engineer's script reads, and the capture."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from gbcs.cli import main


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(["emulate", "scenario", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_returned_meter_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pcap = tmp_path / "rm.pcapng"
    code, report = _json(capsys, "returned-meter", "--seed", "3", "--pcap", str(pcap))
    assert code == 0
    assert report["scenario"] == "returned-meter" and report["seed"] == 3
    for step in report["steps"]:
        assert {"use_case", "message_code", "from", "to", "result"} <= set(step)
        assert isinstance(step["message_code"], int)
        assert step["result"] == "ok"
    codes = [s["message_code"] for s in report["steps"]]
    assert codes.index(0x00FE) < codes.index(0x0003) < codes.index(0x7F00)
    (meter,) = report["meters"].values()
    assert meter["state"] == "joined" and len(meter["joined_to"]) == 16
    assert pcap.stat().st_size > 1000 and Path(str(pcap) + ".keys").read_text().count("\n") >= 3


def test_dead_meter_and_fresh_meter(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _json(capsys, "dead-meter")
    assert code == 0
    (meter,) = report["meters"].values()
    assert meter["joined_to"] is None
    assert report["steps"][-1]["result"].startswith("FAULTY")
    code, report = _json(capsys, "fresh-meter", "--seed", "8")
    assert code == 0
    (meter,) = report["meters"].values()
    assert meter == {
        "kind": "ESME",
        "joined_to": None,
        "state": "scanning",
        "in_device_logs": [],
        "network_operator": "90B3D51F30020000",
    }


def test_human_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "scenario", "fresh-meter"]) == 0
    out = capsys.readouterr().out
    assert "CS02f-SECMP0013" in out and "0x7F00" in out and "meters:" in out


def test_bad_faults_and_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "scenario", "fresh-meter", "--faults", "loss=2"]) == 2
    assert "outside 0..1" in capsys.readouterr().err
    assert main(["emulate", "scenario", "fresh-meter", "--faults", "gremlins=1"]) == 2
    assert "unknown fault setting 'gremlins=1'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["emulate", "scenario", "no-such"])


def test_faults_replay_from_the_seed(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("returned-meter", "--seed", "5", "--faults", "loss=0.1,duplication=0.05")
    first = _json(capsys, *args)[1]
    second = _json(capsys, *args)[1]
    assert first == second


def test_unwritable_capture_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "no-such-folder" / "x.pcapng"
    assert main(["emulate", "scenario", "fresh-meter", "--pcap", str(target)]) == 2
    assert "cannot write the capture" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["emulate", "scenario", "fresh-meter"], ["triage"]])
@pytest.mark.parametrize(
    ("seed", "reason"),
    [
        ("9223372036854775808", "outside the signed 64-bit range"),
        ("-9223372036854775809", "outside the signed 64-bit range"),
        ("seven", "'seven' is not an integer"),
    ],
)
def test_a_seed_a_world_cannot_take_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], command: list[str], seed: str, reason: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main([*command, "--seed", seed])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert reason in err and "Traceback" not in err


def test_the_largest_seed_runs(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _json(capsys, "fresh-meter", "--seed", str(2**63 - 1))
    assert code == 0 and report["seed"] == 2**63 - 1


def test_table_names_the_wireshark_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pcap = tmp_path / "f.pcapng"
    assert main(["emulate", "scenario", "fresh-meter", "--pcap", str(pcap)]) == 0
    out = capsys.readouterr().out
    command = shlex.split(out.rsplit("every key loaded:\n", 1)[1])
    keys = (tmp_path / "f.pcapng.keys").read_text().splitlines()
    assert command == [
        "wireshark",
        *[arg for line in keys for arg in ("-o", f"uat:zigbee_pc_keys:{line}")],
        "-r",
        str(pcap),
    ]


def test_a_capture_that_cannot_be_written_fails_before_the_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "x.pcapng.keys").mkdir()
    assert main(["emulate", "scenario", "fresh-meter", "--pcap", str(tmp_path / "x.pcapng")]) == 2
    captured = capsys.readouterr()
    assert "x.pcapng.keys: is a folder" in captured.err and captured.out == ""
    assert not (tmp_path / "x.pcapng").exists()
