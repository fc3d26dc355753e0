"""``gbcs-hil triage`` through the CLI entry point: exit codes, JSON, table, manifests."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulators.inventory import Inventory
from emulators.mpxn import dummy_mpan
from gbcs.cli import main

DEMO = {
    "00DB1234567890A0": ("still-joined", "PASS"),
    "00DB1234567890A1": ("still-joined", "PASS"),
    "00DB1234567890B1": ("still-joined", "PASS"),
    "00DB1234567890B2": ("fresh", "PASS"),
    "00DB1234567890B3": ("dead", "FAULTY"),
    "00DB1234567890B4": ("still-joined", "PASS"),
}


@pytest.fixture(autouse=True)
def _no_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GBCS_HIL_LAB_ONLY",
        "GBCS_HIL_DUMMY_MPAN_PREFIXES",
        "GBCS_HIL_DUMMY_MPRN_PREFIXES",
    ):
        monkeypatch.delenv(name, raising=False)


def test_demo_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["triage", "--workdir", str(tmp_path), "--quiet", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""  # --quiet: no progress bar
    report = json.loads(out)
    assert report["ok"] is True and report["resumed"] is False
    assert {m["eui64"]: (m["state_found"], m["outcome"]) for m in report["meters"]} == DEMO
    assert report == json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    for name in ("junit.xml", "han.pcap", "han.pcap.keys", "triage.sqlite"):
        assert (tmp_path / name).is_file(), name


def test_demo_table_then_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["meter", "type"]
    for eui, (state, outcome) in DEMO.items():
        row = next(line for line in lines if line.startswith(eui))
        assert state in row.split() and row.split()[-1] == outcome
    assert out.count("PASS") == 5 and out.count("FAULTY") == 1
    assert "resumed" not in out
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"resumed the run in {tmp_path}")


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--workdir", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "6/6 done" in err and "00DB1234567890B4" in err


def test_a_manifest_with_a_bad_row_fails_but_reports_the_good_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        "eui64,install_code,device_type,old_chf,mpxn\n"
        f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}\n"
        "00DB1234567890C2,00112233445566778899AABBCCDDEEFF,ESME,,1312345678907\n"
        f"00DB1234567890C3,0123456789ABCDEF0123456789ABCDEF,ESME,00DB1234567890E0,"
        f"{dummy_mpan(22)}\n",
        encoding="utf-8",
    )
    work = tmp_path / "run"
    args = ["triage", "--workdir", str(work), "--manifest", str(manifest), "--quiet"]
    assert main([*args, "--json"]) == 1
    out, err = capsys.readouterr()
    assert f"{manifest}: line 3:" in err and "dummy" in err
    report = json.loads(out)
    assert report["ok"] is False
    assert [e.split(":")[0] for e in report["manifest_errors"]] == ["line 3"]
    assert {m["eui64"]: (m["state_found"], m["outcome"]) for m in report["meters"]} == {
        "00DB1234567890C1": ("fresh", "PASS"),
        "00DB1234567890C3": ("still-joined", "PASS"),
    }
    # The human table says the same, and names the bad line.
    assert main(args) == 1
    out, _ = capsys.readouterr()
    assert out.count("PASS") == 2 and "manifest line 3:" in out


def test_lab_only_accepts_the_real_mpan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        "00DB1234567890C2,00112233445566778899AABBCCDDEEFF,ESME,,1312345678907\n",
        encoding="utf-8",
    )
    args = ["triage", "--workdir", str(tmp_path / "run"), "--manifest", str(manifest)]
    assert main([*args, "--quiet", "--json"]) == 2  # no usable row without lab-only
    assert "no usable row" in capsys.readouterr().err
    assert main([*args, "--quiet", "--json", "--lab-only"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(m["eui64"], m["outcome"]) for m in report["meters"]] == [("00DB1234567890C2", "PASS")]


def test_a_missing_manifest_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.csv"
    code = main(["triage", "--workdir", str(tmp_path / "run"), "--manifest", str(missing)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert f"cannot read {missing}" in err
    assert not (tmp_path / "run").exists()


def test_a_different_manifest_on_a_used_workdir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 0
    capsys.readouterr()
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}\n",
        encoding="utf-8",
    )
    code = main(["triage", "--workdir", str(tmp_path), "--manifest", str(manifest), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert "different run" in err


def test_a_bad_policy_in_the_environment_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GBCS_HIL_LAB_ONLY", "maybe")
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 2
    assert "GBCS_HIL_LAB_ONLY" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["abc", "-1", ""])
def test_a_bad_crash_hook_in_the_environment_exits_2_and_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("GBCS_HIL_CRASH_AFTER", value)
    work = tmp_path / "run"
    assert main(["triage", "--workdir", str(work), "--quiet"]) == 2
    assert f"GBCS_HIL_CRASH_AFTER={value!r}: expected a number of steps" in capsys.readouterr().err
    assert not work.exists()


def test_a_second_run_on_a_busy_work_folder_exits_2_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs on one folder would replay each other's journal with stale devices."""
    work = tmp_path / "run"
    work.mkdir()
    other = os.open(work, os.O_RDONLY)  # another run holds the folder
    try:
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert main(["triage", "--workdir", str(work), "--quiet"]) == 2
        assert "another gbcs-hil triage is running in" in capsys.readouterr().err
        assert list(work.iterdir()) == []
    finally:
        os.close(other)  # the other run ends: the folder is free
    assert main(["triage", "--workdir", str(work), "--quiet"]) == 0


def test_ctrl_c_exits_130_and_the_next_run_carries_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from emulators.triage import Bench

    original = Bench.step
    calls = {"n": 0}

    def interrupted(self: Bench, *args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    workdir = str(tmp_path / "run")
    monkeypatch.setattr(Bench, "step", interrupted)
    assert main(["triage", "--workdir", workdir, "--quiet"]) == 130
    assert f"run it again with --workdir {workdir}" in capsys.readouterr().err
    monkeypatch.setattr(Bench, "step", original)
    assert main(["triage", "--workdir", workdir, "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["resumed"] and report["ok"]
    assert [m["outcome"] for m in report["meters"]] == [v[1] for v in DEMO.values()]


def test_rows_the_world_cannot_hold_are_manifest_errors_by_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        "# returned on Tuesday\n"
        "eui64,install_code,device_type,old_chf,mpxn\n"
        f"00DB000000000012,00112233445566778899AABBCCDDEEFF,ESME,00DB000000000012,"
        f"{dummy_mpan(31)}\n"  # 3: its own EUI-64
        f"00DB000000000013,00112233445566778899AABBCCDDEEF0,ESME,00DB000000000014,"
        f"{dummy_mpan(32)}\n"  # 4: the meter on line 5
        f"00DB000000000014,00112233445566778899AABBCCDDEEF1,ESME,,{dummy_mpan(33)}\n"
        f"00DB000000000015,00112233445566778899AABBCCDDEEF2,ESME,00DB12345678C002,"
        f"{dummy_mpan(34)}\n"  # 6: the bench CHF
        f"FFFFFFFFFFFFFFFF,00112233445566778899AABBCCDDEEF4,ESME,,{dummy_mpan(35)}\n"
        f"0000000000000000,00112233445566778899AABBCCDDEEF5,ESME,,{dummy_mpan(36)}\n",
        encoding="utf-8",
    )
    work = tmp_path / "run"
    args = ["triage", "--workdir", str(work), "--manifest", str(manifest), "--quiet", "--json"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    report = json.loads(out)
    assert [e.split(":")[0] for e in report["manifest_errors"]] == [
        f"line {n}" for n in (3, 4, 6, 7, 8)
    ]
    for n, text in [
        (3, "the meter's own EUI-64"),
        (4, "the meter on line 5"),
        (6, "bench CHF"),
        (7, "broadcast"),
        (8, "null"),
    ]:
        assert f"{manifest}: line {n}: " in err and text in err
    assert [(m["eui64"], m["outcome"]) for m in report["meters"]] == [("00DB000000000014", "PASS")]
    assert "already in this world" not in err
    assert main(args) == 1  # the same manifest again: the same run, resumed
    assert json.loads(capsys.readouterr().out)["resumed"] is True


def test_a_manifest_that_is_not_utf8_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "latin.csv"
    manifest.write_bytes(
        f"00DB000000000001,83FED3407A939723A5C639B26916D505,ESME,,{dummy_mpan(1)}\n"
        "# meter for the caf\xe9\n".encode("latin-1")
    )
    work = tmp_path / "run"
    code = main(["triage", "--workdir", str(work), "--manifest", str(manifest), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert f"{manifest}: line 2 is not UTF-8" in err and "Traceback" not in err
    assert not work.exists()


def test_an_excel_utf8_manifest_reads_normally(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "excel.csv"
    manifest.write_bytes(
        b"\xef\xbb\xbfeui64,install_code,device_type,old_chf,mpxn\r\n"
        + f"00DB000000000001,83FED3407A939723A5C639B26916D505,ESME,,{dummy_mpan(1)}\r\n".encode()
    )
    args = ["triage", "--workdir", str(tmp_path / "run"), "--manifest", str(manifest)]
    assert main([*args, "--quiet", "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    report = json.loads(out)
    assert report["manifest_errors"] == []
    assert [(m["eui64"], m["outcome"]) for m in report["meters"]] == [("00DB000000000001", "PASS")]


def test_a_workdir_that_cannot_be_written_exits_2_and_makes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import emulators.inventory

    def unable(*args: object, **kwargs: object) -> sqlite3.Connection:
        raise sqlite3.OperationalError("unable to open database file")

    work = tmp_path / "new" / "run"
    monkeypatch.setattr(emulators.inventory.sqlite3, "connect", unable)
    assert main(["triage", "--workdir", str(work), "--quiet"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    assert f"cannot open the inventory {work / 'triage.sqlite'}" in err
    assert list(tmp_path.iterdir()) == []  # the folders it made are gone again
    monkeypatch.undo()
    # A folder the bench may not write to is named as such (os.access: root writes anyway).
    monkeypatch.setattr("emulators.bench.os.access", lambda *a, **k: False)
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 2
    assert f"the work folder {tmp_path} is not writable" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_workdir_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = tmp_path / "ro"
    work.mkdir()
    work.chmod(0o555)
    try:
        assert main(["triage", "--workdir", str(work), "--quiet"]) == 2
        assert "not writable" in capsys.readouterr().err
        assert list(work.iterdir()) == []
    finally:
        work.chmod(0o755)


def test_the_demo_under_another_dummy_mpan_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GBCS_HIL_DUMMY_MPAN_PREFIXES", "98")
    assert main(["triage", "--workdir", str(tmp_path), "--quiet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {m["eui64"]: (m["state_found"], m["outcome"]) for m in report["meters"]} == DEMO
    inventory = Inventory(tmp_path / "triage.sqlite")
    try:
        mpans = [
            r[0] for r in inventory.db.execute("SELECT mpxn FROM mpxn_links") if len(r[0]) == 13
        ]
    finally:
        inventory.close()
    assert mpans and all(m.startswith("98") for m in mpans)


def test_resuming_with_another_seed_or_lab_only_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["triage", "--workdir", str(tmp_path), "--quiet", "--json"]
    assert main([*args, "--seed", "7"]) == 0
    capsys.readouterr()
    for extra, text in [
        (["--seed", "8"], "--seed 7, not 8"),
        (["--seed", "1"], "--seed 7, not 1"),
        (["--seed", "7", "--lab-only"], "started without --lab-only"),
    ]:
        assert main([*args, *extra]) == 2, extra
        out, err = capsys.readouterr()
        assert out == "" and text in err
    assert main([*args, "--seed", "7"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"] is True
    assert main(args) == 0  # without --seed a resumed run keeps its own
    assert json.loads(capsys.readouterr().out)["resumed"] is True


def test_junit_counts_match_its_test_cases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}\n"
        "00DB1234567890C2,00112233445566778899AABBCCDDEEFF,ESME,,1312345678907\n"
        "00DB1234567890C3,00112233445566778899AABBCCDDEEFF,ESME\n",
        encoding="utf-8",
    )
    work = tmp_path / "run"
    assert main(["triage", "--workdir", str(work), "--manifest", str(manifest), "--quiet"]) == 1
    capsys.readouterr()
    suite = ET.parse(work / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert len(cases) == 3
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "3",
        "failures": "0",
        "errors": "2",
        "skipped": "0",
    }


def test_a_manifest_that_gained_a_bad_row_is_a_different_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run again on the same folder with a bad row added: the saved run's report would
    not carry the new row's error (the rerun exited 0 without it; helper audit)."""
    good = f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}\n"
    manifest = tmp_path / "meters.csv"
    manifest.write_text(good, encoding="utf-8")
    work = tmp_path / "run"
    args = ["triage", "--workdir", str(work), "--manifest", str(manifest), "--quiet"]
    assert main(args) == 0
    manifest.write_text(
        good + "00DB1234567890C2,00112233445566778899AABBCCDDEEFF,ESME,,1312345678907\n",
        encoding="utf-8",
    )
    capsys.readouterr()
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert f"{manifest}: line 2:" in err and "holds a different run" in err and out == ""
    manifest.write_text(good, encoding="utf-8")  # the run it holds: resumed, as before
    assert main(args) == 0


@pytest.mark.parametrize("option", ["--workdir", "--manifest"])
def test_an_empty_path_is_a_usage_error(
    option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unset variable (``--workdir "$DIR"``) would otherwise run in the current folder."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["triage", option, "", "--quiet"])
    assert stop.value.code == 2
    assert f"argument {option}: an empty path is not a file or folder" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


_KILLED_AS_ERRORS_ARE_SAVED = r"""
import os, signal, sys
from emulators import inventory
put = inventory.Inventory.put
def put_or_die(self, key, value):
    if key == "manifest_errors":
        os.kill(os.getpid(), signal.SIGKILL)
    return put(self, key, value)
inventory.Inventory.put = put_or_die
from gbcs.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_killed_as_its_manifest_errors_are_saved_resumes_with_that_manifest(
    tmp_path: Path,
) -> None:
    """They were saved just after set-up's transaction: killed between the two, the run
    resumed with none, and its own manifest was then refused as another's (its bad rows
    differ; helper review). They are saved in that transaction now."""
    manifest = tmp_path / "meters.csv"
    manifest.write_text(
        f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}\n"
        "not-an-eui,00112233445566778899AABBCCDDEEFF,ESME,,x\n",
        encoding="utf-8",
    )
    args = ["triage", "--workdir", str(tmp_path / "w"), "--manifest", str(manifest), "--quiet"]
    killed = subprocess.run([sys.executable, "-c", _KILLED_AS_ERRORS_ARE_SAVED, *args])
    assert killed.returncode == -signal.SIGKILL
    again = subprocess.run(
        [sys.executable, "-m", "gbcs", "triage", *args[1:], "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 1, again.stderr  # the bad row fails the run; not refused
    assert [e.split(":")[0] for e in json.loads(again.stdout)["manifest_errors"]] == ["line 2"]
