"""``gbcs-hil triage`` through the CLI entry point: exit codes, JSON, table, manifests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.mpxn import dummy_mpan
from gbcs.cli import main

DEMO = {
    "00DB1234567890A0": ("still-joined", "PASS"),
    "00DB1234567890A1": ("still-joined", "PASS"),
    "00DB1234567890B1": ("still-joined", "PASS"),
    "00DB1234567890B2": ("fresh", "PASS"),
    "00DB1234567890B3": ("dead", "FAULTY"),
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
    assert out.count("PASS") == 4 and out.count("FAULTY") == 1
    assert "resumed" not in out
    assert main(["triage", "--workdir", str(tmp_path), "--quiet"]) == 0
    out, _ = capsys.readouterr()
    assert out.startswith(f"resumed the run in {tmp_path}")


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["triage", "--workdir", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    json.loads(out)
    assert "5/5 done" in err and "00DB1234567890B3" in err


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
    assert [m["outcome"] for m in report["meters"]] == ["PASS", "PASS", "PASS", "PASS", "FAULTY"]
