"""``gbcs-hil emulate scenario``: the JSON a lab engineer's script reads, and the capture."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from emulators.cli import _table
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
    assert "\nok: every step but the findings succeeded\n" in out


def test_the_table_marks_findings_and_says_what_failed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A probe's failure is what the scenario is after: the table must not make it look
    like the run failed, and a run that did fail says which step first."""
    assert main(["emulate", "scenario", "removed-before-disconnect", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "[finding] device " in out and "[finding] STRANDED: " in out
    assert "\nok: every step but the findings succeeded\n" in out
    code = main(["emulate", "scenario", "returned-meter", "--seed", "6", "--faults", "loss=0.9"])
    out = capsys.readouterr().out
    assert code == 1 and re.search(r"\nFAILED: \d+ step\(s\), first [^:]+: .+\n", out)


def test_bad_faults_and_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["emulate", "scenario", "fresh-meter", "--faults", "loss=2"]) == 2
    assert "outside 0..1" in capsys.readouterr().err
    assert main(["emulate", "scenario", "fresh-meter", "--faults", "gremlins=1"]) == 2
    assert "unknown fault setting 'gremlins' (the settings: loss," in capsys.readouterr().err
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


@pytest.mark.parametrize(
    "argv",
    [
        ["emulate", "scenario", "fresh-meter", "--faults", "loss=0.1", "--faults", "delay=0.1"],
        ["emulate", "scenario", "fresh-meter", "--seed", "1", "--seed", "2"],
        ["emulate", "scenario", "fresh-meter", "--pcap", "a.pcap", "--pcap", "b.pcap"],
        ["triage", "--seed", "1", "--seed", "2"],
        ["triage", "--workdir", "a", "--workdir", "b"],
        ["triage", "--manifest", "a.csv", "--manifest", "b.csv"],
        # Flags too, as the README says of any option (audit 8, services F6).
        ["emulate", "scenario", "fresh-meter", "--json", "--json"],
        ["triage", "--quiet", "--quiet"],
        ["triage", "--json", "--json"],
        ["triage", "--lab-only", "--lab-only"],
        # Every command's, not only these two (audit 9, readme L3).
        ["decode", "--keystore", "a", "--keystore", "b", "DF"],
        ["decode", "--acb", "90B3D51F30000002", "--acb", "90B3D51F30000002", "DF"],
        ["decode", "--disconnect-code", "0x7F00", "--disconnect-code", "0x7F01", "DF"],
        ["decode", "--json", "--json", "DF"],
        ["decode", "--roundtrip", "--roundtrip", "DF"],
        ["encode", "--sign", "--sign"],
        ["encode", "--mac", "--mac"],
        ["encode", "--no-mac", "--no-mac"],
        ["encode", "--resign", "--resign"],
        ["example", "--seed", "1", "--seed", "2"],
        ["example", "--keys", "a", "--keys", "b"],
        ["example", "--list", "--list"],
        ["dongles", "--timeout", "1", "--timeout", "2"],
        ["dongles", "--probe", "--probe"],
        ["dongles", "--json", "--json"],
    ],
)
def test_an_option_given_twice_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """argparse keeps the last and the first is silently lost (fault audit 6)."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    given = next(a for a in argv[::-1] if a.startswith("--") and argv.count(a) == 2)
    assert stop.value.code == 2 and f"argument {given}: given twice" in err


@pytest.mark.parametrize("seed", ["-0x1", "-1", "-0b101"])
def test_a_negative_seed_may_follow_its_option_as_a_separate_word(
    capsys: pytest.CaptureFixture[str], seed: str
) -> None:
    """argparse took "-0x1" for an option ("expected one argument")."""
    code, report = _json(capsys, "fresh-meter", "--seed", seed)
    assert code == 0 and report["seed"] == int(seed, 0)


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


@pytest.mark.parametrize(
    ("pcap", "message"),
    [
        (".", "names a folder, not a capture file"),
        ("./", "names a folder, not a capture file"),
        ("", "names a folder, not a capture file"),
        ("out/", "names a folder, not a capture file"),
        ("/proc/x.pcapng", "/proc: cannot write there"),
    ],
)
def test_a_capture_path_that_cannot_be_a_file_is_refused_before_the_run(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pcap: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # relative names land here, should a check ever fail
    assert main(["emulate", "scenario", "fresh-meter", "--pcap", pcap]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.out == ""
    assert "Traceback" not in captured.err


def test_a_capture_never_replaces_a_link_or_a_pipe(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "elsewhere").write_text("keep me")
    (tmp_path / "link.pcapng").symlink_to(tmp_path / "elsewhere")
    os.mkfifo(tmp_path / "pipe.pcapng")
    for name in ("link.pcapng", "pipe.pcapng"):
        assert main(["emulate", "scenario", "fresh-meter", "--pcap", str(tmp_path / name)]) == 2
        assert "exists and is not a regular file" in capsys.readouterr().err
    assert (tmp_path / "link.pcapng").is_symlink() and (tmp_path / "pipe.pcapng").is_fifo()
    assert (tmp_path / "elsewhere").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "link.pcapng", "pipe.pcapng"]


def test_a_long_capture_name_is_written(tmp_path: Path) -> None:
    name = "b" * 240  # with ".keys" 245: a legal name; the temporary files must be too
    assert main(["emulate", "scenario", "fresh-meter", "--pcap", str(tmp_path / name)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [name, name + ".keys"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("delay=0.05,max_delay=nan", "fault setting max_delay needs a number, got 'nan'"),
        ("power_off_time=inf", "fault setting power_off_time needs a number, got 'inf'"),
    ],
)
def test_fault_delays_that_never_end_are_refused(
    capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert main(["emulate", "scenario", "fresh-meter", "--faults", spec]) == 2
    assert message in capsys.readouterr().err


def test_spaces_around_a_fault_setting_are_allowed(capsys: pytest.CaptureFixture[str]) -> None:
    code, report = _json(capsys, "fresh-meter", "--faults", " loss = 0.0 , delay = 0.0 ")
    assert code == 0 and report["ok"]


@pytest.mark.parametrize(("text", "seed"), [("010", 10), ("-007", -7), ("0x10", 16)])
def test_seeds_are_read_as_people_write_them(
    capsys: pytest.CaptureFixture[str], text: str, seed: int
) -> None:
    _, report = _json(capsys, "fresh-meter", "--seed", text)
    assert report["seed"] == seed


def test_a_report_that_cannot_be_written_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk behind ``> file`` is exit 2 with a line, not a traceback and exit 1."""

    class FullDisk(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["emulate", "scenario", "fresh-meter", "--json"]) == 2
    assert "cannot write the report: No space left on device" in capsys.readouterr().err


@pytest.mark.parametrize("option", ["--se", "--see"])
def test_a_negative_seed_follows_an_abbreviated_option_too(
    capsys: pytest.CaptureFixture[str], option: str
) -> None:
    """argparse takes '--see' for '--seed'; '--see -0x1' failed as 'expected one argument'."""
    code = main(["emulate", "scenario", "fresh-meter", option, "-0x1", "--json"])
    assert code == 0 and json.loads(capsys.readouterr().out)["seed"] == -1


def test_the_table_shows_a_steps_evidence() -> None:
    """A step that says how its outcome was seen (a divorce seen on the HAN, its CS02f
    answer lost) shows it in the table, not only in --json."""
    report = {
        "scenario": "fresh-meter",
        "seed": 1,
        "ok": False,
        "steps": [
            {
                "use_case": "HAN leave (auto-join)",
                "message_code": 0,
                "from": "00DB1234567890A0",
                "to": "00DB12345678C000",
                "result": "ok",
                "time": 151.5,
                "detail": {"evidence": "the meter left its HAN; its CS02f answer was lost"},
            },
            {
                "use_case": "CS07",
                "message_code": 0x13,
                "from": "90B3D51F30010000",
                "to": "00DB1234567890A0",
                "result": "no response within 120 s",
                "time": 30.0,
                "detail": {},
            },
        ],
        "meters": {},
    }
    lines = _table(report).splitlines()
    (leave,) = [line for line in lines if "HAN leave" in line]
    assert leave.endswith("ok (the meter left its HAN; its CS02f answer was lost)")
    (cs07,) = [line for line in lines if "  CS07  " in line]
    assert cs07.endswith("no response within 120 s")
