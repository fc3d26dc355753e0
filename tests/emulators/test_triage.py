"""The triage bench end to end: the demo, resuming after a crash at any step, manifests."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from emulators.bench import (
    DB_NAME,
    BenchRun,
    bench_eui,
    results_table,
    run_bench,
    setup,
    split_conflicts,
    write_reports,
)
from emulators.device import Reply, asn1_reply
from emulators.inventory import Inventory
from emulators.mpxn import DummyRange, ProductionProvingPolicy, dummy_mpan, dummy_mprn
from emulators.node import NodeState
from emulators.services import NOT_IN_LOG
from emulators.triage import (
    BENCH_PLACE,
    CAPTURE_KEY,
    Bench,
    ManifestError,
    ManifestRow,
    MeterReport,
    SimulatedCrash,
    demo_rows,
    parse_manifest_eui,
    read_manifest,
)
from emulators.world import World
from emulators.zigbee.install_code import install_code_crc
from gbcs import asn1
from gbcs.catalogue import CATALOGUE
from gbcs.credentials_uc import (
    PROVIDE_CREDENTIAL_DETAILS,
    CredentialDetails,
    CredentialStatus,
    RemotePartyDetails,
)
from gbcs.devicelog import DeviceLog
from gbcs.errors import GbcsError
from gbcs.frame import CraFlag, decode_message
from gbcs.joins import DisconnectResult, JoinDetails, int_response
from gbcs.testpki import RemotePartyRole

STILL_JOINED_ESME = [
    "on bench",
    "8.9",
    "8.16",
    "trust-centre rejoin",
    "8.11 remove (old CHF)",
    "CS07",
    "ECS26m",
    "ECS52",
    "ECS35a",
    "6.24.1",
    "8.15",
    "HAN leave",
    "8.11 remove (bench CHF)",
    "off bench",
]
STILL_JOINED_GSME = [
    "on bench",
    "8.9",
    "8.16",
    "trust-centre rejoin",
    "8.11 remove (old CHF)",
    "CS07",
    "6.24.1",
    "8.15",
    "HAN leave",
    "8.11 remove (bench CHF)",
    "off bench",
]
FRESH_ESME = [
    "on bench",
    "8.11 add (bench CHF)",
    "install-code join",
    "CS07",
    "ECS26m",
    "ECS52",
    "ECS35a",
    "6.24.1",
    "8.15",
    "HAN leave",
    "8.11 remove (bench CHF)",
    "off bench",
]
ALL_OK = "ok"
NO_JOIN = "no join within 300 s"
DEAD_ESME = [
    ("on bench", ALL_OK),
    ("8.9", ALL_OK),
    ("8.16", ALL_OK),
    ("trust-centre rejoin", NO_JOIN),
    ("8.11 remove (bench CHF)", ALL_OK),
    ("8.11 add (bench CHF)", ALL_OK),
    ("install-code join", NO_JOIN),
    ("8.11 remove (bench CHF)", ALL_OK),
    ("8.11 remove (old CHF)", ALL_OK),  # decommissioned: whitelisted nowhere
    ("decommission", ALL_OK),
    ("off bench", ALL_OK),
]
# eui64: (device type, state found, outcome, [(use case, result)])
DEMO: dict[str, tuple[str, str, str, list[tuple[str, str]]]] = {
    "00DB1234567890A0": (
        "ESME",
        "still-joined",
        "PASS",
        [(s, ALL_OK) for s in STILL_JOINED_ESME],
    ),
    "00DB1234567890A1": (
        "GSME",
        "still-joined",
        "PASS",
        [(s, ALL_OK) for s in STILL_JOINED_GSME],
    ),
    "00DB1234567890B1": (
        "ESME",
        "still-joined",
        "PASS",
        [(s, ALL_OK) for s in STILL_JOINED_ESME],
    ),
    "00DB1234567890B2": ("ESME", "fresh", "PASS", [(s, ALL_OK) for s in FRESH_ESME]),
    "00DB1234567890B3": ("ESME", "dead", "FAULTY", DEAD_ESME),
    # Off its old CHF's whitelist before it was collected: restored from the historic log.
    "00DB1234567890B4": (
        "ESME",
        "still-joined",
        "PASS",
        [(s, ALL_OK) for s in STILL_JOINED_ESME if s != "8.11 remove (old CHF)"],
    ),
}
DEMO_STEPS = sum(len(v[3]) for v in DEMO.values())


@pytest.fixture(autouse=True)
def _no_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GBCS_HIL_LAB_ONLY",
        "GBCS_HIL_DUMMY_MPAN_PREFIXES",
        "GBCS_HIL_DUMMY_MPRN_PREFIXES",
    ):
        monkeypatch.delenv(name, raising=False)


def junit_counts(suite: ET.Element) -> dict[str, int]:
    """The suite's count attributes, checked against the test cases it holds."""
    counts = {k: int(suite.get(k, "-1")) for k in ("tests", "failures", "errors", "skipped")}
    cases = suite.findall("testcase")
    assert counts == {
        "tests": len(cases),
        "failures": sum(1 for c in cases if c.find("failure") is not None),
        "errors": sum(1 for c in cases if c.find("error") is not None),
        "skipped": sum(1 for c in cases if c.find("skipped") is not None),
    }
    return counts


def open_inventory(folder: Path) -> Inventory:
    return Inventory(folder / DB_NAME)


def sent(folder: Path) -> list[str]:
    """The data of every 'gbcs sent' audit row, in order."""
    inv = open_inventory(folder)
    try:
        return [e.data for e in inv.audit_log() if e.kind == "gbcs sent"]
    finally:
        inv.close()


def final_state(folder: Path, run: BenchRun) -> tuple[Any, ...]:
    inv = open_inventory(folder)
    try:
        snapshot = inv.snapshot()
        journal = {r.eui64: inv.journal(r.eui64) for r in run.reports}
        kinds = Counter(
            (e.kind, e.srv) for e in inv.audit_log() if e.kind in ("gbcs sent", "request")
        )
    finally:
        inv.close()
    meters = {
        r.eui64: (
            r.state_found,
            r.outcome,
            r.smi_status,
            [(s["use_case"], s["result"]) for s in r.steps],
        )
        for r in run.reports
    }
    return (
        snapshot,
        meters,
        [(n, name, res) for j in journal.values() for n, name, res, _ in j],
        kinds,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, BenchRun]:
    folder = tmp_path_factory.mktemp("demo")
    return folder, run_bench(folder)


# --- The demo, uninterrupted ------------------------------------------------------------


def test_demo_report_has_the_expected_state_and_outcome_per_meter(
    demo: tuple[Path, BenchRun],
) -> None:
    folder, run = demo
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["ok"] is True and run.ok
    assert report["resumed"] is False
    assert report["manifest_errors"] == []
    assert [m["eui64"] for m in report["meters"]] == [r.hex for r in demo_rows()]
    got = {
        m["eui64"]: (
            m["device_type"],
            m["state_found"],
            m["outcome"],
            [(s["use_case"], s["result"]) for s in m["steps"]],
        )
        for m in report["meters"]
    }
    assert got == DEMO


def test_demo_smi_statuses(demo: tuple[Path, BenchRun]) -> None:
    folder, _ = demo
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    inv = open_inventory(folder)
    try:
        for m in report["meters"]:
            device = inv.require(m["eui64"])
            assert m["smi_status"] == device.smi_status.value
            if m["outcome"] == "PASS":
                # Divorced by 8.15: pending, no CHF, MPxN links ended.
                assert (m["smi_status"], device.chf, device.mpxns) == ("pending", None, ())
            if m["outcome"] == "FAULTY":
                # Found dead: decommissioned, its MPxN links ended too.
                assert (m["smi_status"], device.mpxns) == ("decommissioned", ())
            # Every meter ends up in no CHF's device log on the bench.
            assert device.chf is None
    finally:
        inv.close()


def test_demo_step_details(demo: tuple[Path, BenchRun]) -> None:
    _, run = demo
    by_eui = {r.eui64: r for r in run.reports}
    a0 = by_eui["00DB1234567890A0"]
    read = a0.steps[1]
    assert read["use_case"] == "8.9" and set(read["data"]) == {"current", "historic"}
    rejoin = a0.steps[3]
    bench = rejoin["joined_to"]
    assert bench != "00DB1234567890A2"
    added = by_eui["00DB1234567890B2"].steps[1]
    assert added == {"use_case": "8.11 add (bench CHF)", "result": "ok", "held_network": False}
    fresh = by_eui["00DB1234567890B2"].steps[2]
    assert fresh == {
        "use_case": "install-code join",
        "result": "ok",
        "joined_to": bench,
        "by": "association",  # not a late trust-centre rejoin
    }
    identity = next(s for s in a0.steps if s["use_case"] == "ECS26m")
    assert set(identity["data"]) == {"model", "manufacturer"}


THIS_REGION = "90B3D51F30020000"
OTHER_REGION = "90B3D51F30020001"


def test_demo_names_each_meters_network_operator_and_flags_the_other_region(
    demo: tuple[Path, BenchRun],
) -> None:
    """DESIGN §2: a meter restored under another operator's certificates is found out."""
    folder, run = demo
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    found = {m["eui64"]: (m["network_operator"], m["other_region"]) for m in report["meters"]}
    assert found == {
        "00DB1234567890A0": (THIS_REGION, False),
        "00DB1234567890A1": (THIS_REGION, False),
        "00DB1234567890B1": (OTHER_REGION, True),
        "00DB1234567890B2": (THIS_REGION, False),
        "00DB1234567890B3": (None, False),  # dead: never asked
        "00DB1234567890B4": (THIS_REGION, False),
    }
    b1 = next(r for r in run.reports if r.eui64 == "00DB1234567890B1")
    step = next(s for s in b1.steps if s["use_case"] == "6.24.1")
    assert step["data"] == {"supplier": "90B3D51F30010000", "network_operator": OTHER_REGION}
    table = results_table(run)
    line = next(x for x in table.splitlines() if x.startswith("00DB1234567890B1"))
    assert line.split()[-4:] == [OTHER_REGION, "(other", "region)", "PASS"]
    suite = ET.parse(folder / "junit.xml").getroot()
    case = next(c for c in suite.findall("testcase") if c.get("name") == "00DB1234567890B1")
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (props["network_operator"], props["other_region"]) == (OTHER_REGION, "true")


def test_demo_junit(demo: tuple[Path, BenchRun]) -> None:
    folder, _ = demo
    suite = ET.parse(folder / "junit.xml").getroot()
    assert suite.tag == "testsuite"
    assert junit_counts(suite) == {"tests": 6, "failures": 0, "errors": 0, "skipped": 0}
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == list(DEMO)
    assert {c.get("classname") for c in cases} == {"triage"}
    assert suite.findall(".//failure") == [] and suite.findall(".//error") == []
    for case in cases:
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        expected = DEMO[case.get("name")]
        assert (props["device_type"], props["state_found"], props["outcome"]) == expected[:3]


def test_demo_capture(demo: tuple[Path, BenchRun]) -> None:
    folder, _ = demo
    data = (folder / "han.pcap").read_bytes()
    assert data[:4] == bytes.fromhex("0A0D0D0A")  # pcapng section header block
    assert len(data) > 1000
    keys = folder / "han.pcap.keys"
    assert keys.exists() and keys.read_text(encoding="utf-8").strip()


def test_demo_audit_log(demo: tuple[Path, BenchRun]) -> None:
    folder, _ = demo
    inv = open_inventory(folder)
    try:
        log = inv.audit_log()
    finally:
        inv.close()
    kinds = Counter(e.kind for e in log)
    assert kinds["request"] == kinds["response"]
    assert kinds["pre-command"] == 5  # one 8.15 per meter that passed
    assert kinds["alert"] > 0
    data = [e.data for e in log if e.kind == "gbcs sent"]
    assert len(data) == len(set(data))
    assert [e.seq for e in log] == list(range(1, len(log) + 1))


def test_running_again_resumes_and_sends_nothing(
    tmp_path: Path, demo: tuple[Path, BenchRun]
) -> None:
    folder = tmp_path / "again"
    first = run_bench(folder)
    before = sent(folder)
    assert before
    second = run_bench(folder)
    assert second.resumed and second.ok
    assert sent(folder) == before
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["resumed"] is True
    assert [r.to_json() for r in second.reports] == [r.to_json() for r in first.reports]
    # And the same as a run in another folder with the same seed.
    assert final_state(folder, second)[:3] == final_state(demo[0], demo[1])[:3]


# --- Crash and resume ------------------------------------------------------------------


def test_the_crash_hook_counts_steps(tmp_path: Path) -> None:
    with pytest.raises(SimulatedCrash, match=r"00DB1234567890A0 step 2 8\.9"):
        run_bench(tmp_path, crash_after=1)
    inv = open_inventory(tmp_path)
    try:
        # Step 1 was committed, the crashed step 2 was rolled back with its audit rows.
        assert [name for _, name, _, _ in inv.journal("00DB1234567890A0")] == ["on bench"]
        assert inv.get("world:meter:00DB1234567890A0")["place"] == "bench"
        assert not [e for e in inv.audit_log() if e.srv == "8.9"]
        assert inv.get("rows") is not None  # the set-up was committed
    finally:
        inv.close()
    # Past the last step there is nothing left to crash in.
    run = run_bench(tmp_path / "whole", crash_after=DEMO_STEPS)
    assert run.ok


CRASH_POINTS = range(DEMO_STEPS)  # every step: a run is fast enough


@pytest.mark.parametrize("crash_after", CRASH_POINTS)
def test_a_crash_at_any_step_resumes_to_the_same_result(
    tmp_path: Path, demo: tuple[Path, BenchRun], crash_after: int
) -> None:
    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, crash_after=crash_after)
    inv = open_inventory(tmp_path)
    try:
        done = sum(len(inv.journal(r.hex)) for r in demo_rows())
    finally:
        inv.close()
    assert done == crash_after  # every step before the crash was committed, not the one hit
    run = run_bench(tmp_path)
    assert run.resumed and run.ok
    assert final_state(tmp_path, run) == final_state(*demo)
    data = sent(tmp_path)
    assert len(data) == len(set(data)), "a GBCS command was sent twice"
    assert len(data) == len(sent(demo[0]))


def _capture_rows(folder: Path) -> list[tuple[float, str, bytes]]:
    inv = open_inventory(folder)
    try:
        return inv.db.execute("SELECT time, interface, frame FROM capture ORDER BY seq").fetchall()
    finally:
        inv.close()


def test_a_frame_sent_as_the_world_is_rebuilt_is_saved_and_none_twice(tmp_path: Path) -> None:
    """Resumed after a crash at its first step, a meter sends a frame as its state is
    loaded: the saved frames were put after it, so the bench, saving from the saved count
    on, saved the last saved frame a second time and never that one."""
    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, crash_after=1)
    before = _capture_rows(tmp_path)
    rebuild = World.from_entities
    sent_on_load: list[tuple[float, str, bytes]] = []

    def rebuilt(rows: dict[str, Any], **kwargs: Any) -> World:
        world = rebuild(rows, **kwargs)
        assert world.capture is not None
        sent_on_load.extend(world.capture.frames)
        return world

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("emulators.triage.World.from_entities", rebuilt)
        assert run_bench(tmp_path).resumed
    assert sent_on_load  # the case this is about
    after = _capture_rows(tmp_path)
    assert after[: len(before)] == before
    new = after[len(before) :]
    assert [(t, "han:" + place, f) for t, place, f in sent_on_load] == new[: len(sent_on_load)]
    assert before[-1] not in new


def test_crashing_repeatedly_still_finishes(tmp_path: Path, demo: tuple[Path, BenchRun]) -> None:
    crashes = 0
    while True:
        try:
            run = run_bench(tmp_path, crash_after=7)
            break
        except SimulatedCrash:
            crashes += 1
            assert crashes < DEMO_STEPS
    assert crashes == (DEMO_STEPS - 1) // 7  # the last run has 7 steps or fewer left
    assert final_state(tmp_path, run) == final_state(*demo)
    data = sent(tmp_path)
    assert len(data) == len(set(data)) == len(sent(demo[0]))


# --- Manifests ---------------------------------------------------------------------------

GOOD_FRESH = f"00DB1234567890C1,00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(11)}"
GOOD_OLD = (
    f"00DB1234567890C2,0123456789ABCDEF0123456789ABCDEF,esme,00DB1234567890E0,{dummy_mpan(12)}"
)
GOOD_GAS = (
    f"00DB1234567890C3,FFEEDDCCBBAA99887766554433221100,GSME,00DB1234567890E0,{dummy_mprn(13)}"
)
MANIFEST = [
    "eui64,install_code,device_type,old_chf,mpxn",  # 1: header
    GOOD_FRESH,  # 2
    "00DB12345678,00112233445566778899AABBCCDDEE00,ESME,,9900000000015",  # 3: bad EUI
    "# a comment",  # 4
    "00DB1234567890C4,00112233445566778899AABBCCDDEE,ESME,,9900000000024",  # 5: 15 bytes
    GOOD_OLD,  # 6
    "00DB1234567890C5,00112233445566778899AABBCCDDEE01,PPMID,,9900000000033",  # 7: type
    "",  # 8: blank
    "00DB1234567890C6,00112233445566778899AABBCCDDEE02,ESME,,1312345678907",  # 9: real MPAN
    GOOD_FRESH.replace(str(dummy_mpan(11)), str(dummy_mpan(14))),  # 10: duplicated meter
    "00DB1234567890C7,00112233445566778899AABBCCDDEE03,ESME",  # 11: 3 fields
    GOOD_GAS,  # 12
    "00DB1234567890C8,00112233445566778899AABBCCDDEE04,ESME,,9900000000042,extra",  # 13
]
BAD_LINES = [3, 5, 7, 9, 10, 11, 13]


def write_manifest(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_manifest_reports_bad_rows_by_line(tmp_path: Path) -> None:
    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", MANIFEST))
    assert [r.hex for r in rows] == ["00DB1234567890C1", "00DB1234567890C2", "00DB1234567890C3"]
    assert [r.line for r in rows] == [2, 6, 12]
    assert [int(e.split(":")[0].removeprefix("line ")) for e in errors] == BAD_LINES
    text = dict(zip(BAD_LINES, errors, strict=True))
    assert "16 bytes" in text[5] or "length" in text[5]
    assert "'PPMID'" in text[7]
    assert "dummy" in text[9]
    assert "listed twice" in text[10]
    assert "got 3" in text[11] and "got 6" in text[13]
    fresh, old, gas = rows
    assert fresh.old_chf is None and fresh.mpxn == str(dummy_mpan(11))
    assert (old.device_type, old.old_chf) == ("ESME", bytes.fromhex("00DB1234567890E0"))
    assert (gas.device_type, gas.mpxn) == ("GSME", str(dummy_mprn(13)))
    assert fresh.install_code == bytes.fromhex("00112233445566778899AABBCCDDEEFF")


def test_read_manifest_in_lab_only_mode_accepts_a_real_mpan(tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "m.csv", MANIFEST)
    rows, errors = read_manifest(path, ProductionProvingPolicy(lab_only=True))
    assert "00DB1234567890C6" in [r.hex for r in rows]
    assert 9 not in [int(e.split(":")[0].removeprefix("line ")) for e in errors]


def test_a_run_an_older_kit_left_without_its_manifest_errors_takes_them_again(
    tmp_path: Path,
) -> None:
    """An older kit saved them just after set-up: killed between, the run has none, and
    resumed with its own manifest it was refused as another's (helper review). The
    manifest given has them: they are taken, and saved."""
    import sqlite3

    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", MANIFEST))
    folder = tmp_path / "run"
    with pytest.raises(SimulatedCrash):
        run_bench(folder, rows, manifest_errors=errors, crash_after=2)
    db = sqlite3.connect(folder / DB_NAME)
    db.execute("DELETE FROM kv WHERE key = 'manifest_errors'")
    db.commit()
    db.close()
    run = run_bench(folder, rows, manifest_errors=errors)
    assert run.resumed and run.manifest_errors == errors and errors
    inv = open_inventory(folder)
    try:
        assert inv.get("manifest_errors") == errors
    finally:
        inv.close()


def test_a_manifest_run_triages_the_good_rows(tmp_path: Path) -> None:
    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", MANIFEST))
    folder = tmp_path / "run"
    run = run_bench(folder, rows, manifest_errors=errors)
    assert not run.ok  # manifest errors make the run not ok ...
    assert all(r.correct for r in run.reports)  # ... though every meter got its outcome
    got = {r.eui64: (r.state_found, r.outcome) for r in run.reports}
    assert got == {
        "00DB1234567890C1": ("fresh", "PASS"),
        "00DB1234567890C2": ("still-joined", "PASS"),
        "00DB1234567890C3": ("still-joined", "PASS"),
    }
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["ok"] is False and report["manifest_errors"] == errors
    suite = ET.parse(folder / "junit.xml").getroot()
    names = [c.get("name") for c in suite.findall("testcase[@classname='manifest']")]
    assert names == [f"line {n}" for n in BAD_LINES]
    assert junit_counts(suite) == {"tests": 10, "failures": 0, "errors": 7, "skipped": 0}
    # The same manifest again resumes; a different one is refused and changes nothing.
    before = sent(folder)
    again = run_bench(folder, rows, manifest_errors=errors)
    assert again.resumed and again.manifest_errors == errors
    with pytest.raises(GbcsError, match="different run"):
        run_bench(folder, rows[:2])
    with pytest.raises(GbcsError, match="different run"):
        run_bench(folder, demo_rows())
    assert sent(folder) == before


def test_a_different_manifest_on_the_demo_folder_is_refused(tmp_path: Path) -> None:
    run_bench(tmp_path)
    other = [
        ManifestRow(
            bytes.fromhex("00DB1234567890C1"),
            bytes(16),
            "ESME",
            None,
            str(dummy_mpan(11)),
            2,
        )
    ]
    with pytest.raises(GbcsError, match="different run"):
        run_bench(tmp_path, other)
    # No rows: the stored run resumes.
    assert run_bench(tmp_path).resumed


# --- Resuming keeps the capture's keys -------------------------------------------------


def keys_file(folder: Path) -> list[str]:
    return (folder / "han.pcap.keys").read_text(encoding="utf-8").splitlines()


def test_the_demo_keys_file_holds_every_network_and_link_key(
    demo: tuple[Path, BenchRun],
) -> None:
    labels = [line.rsplit(",", 1)[1].strip('"') for line in keys_file(demo[0])]
    links = {f"link {r.hex}" for r in demo_rows()}
    assert set(labels) == {"nwk old CHF 1", "nwk bench CHF"} | links


@pytest.mark.parametrize("crash_after", [3, 20, 50])
def test_a_resumed_run_keeps_the_link_keys_learnt_before_the_crash(
    tmp_path: Path, demo: tuple[Path, BenchRun], crash_after: int
) -> None:
    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, crash_after=crash_after)
    run_bench(tmp_path)
    assert keys_file(tmp_path) == keys_file(demo[0])


def test_running_a_finished_folder_again_keeps_its_keys(tmp_path: Path) -> None:
    run_bench(tmp_path)
    before = keys_file(tmp_path)
    assert run_bench(tmp_path).resumed
    assert keys_file(tmp_path) == before


def test_damaged_capture_keys_are_refused(tmp_path: Path) -> None:
    run_bench(tmp_path)
    inv = open_inventory(tmp_path)
    try:
        inv.put(f"{CAPTURE_KEY}00000001", ["not hex", "link X"])
    finally:
        inv.close()
    with pytest.raises(GbcsError, match="capture keys are damaged"):
        run_bench(tmp_path)


_DEEP = "replace(hex(zeroblob(50000)), '00', '[')"  # SQL for 50,000 '[' characters


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("UPDATE kv SET value='[{' WHERE key='rows'", "rows: the saved value is damaged"),
        ("UPDATE kv SET value='[{\"eui64\": \"00DB\"}]' WHERE key='rows'", r"damaged \(rows"),
        ("UPDATE kv SET value='{}' WHERE key='rows'", r"damaged \(rows: not a list"),
        (
            "UPDATE kv SET value=replace(value, '\"GSME\"', '\"PPMID\"') WHERE key='rows'",
            r"damaged \(rows: a row that is not a meter",
        ),
        ("DELETE FROM kv WHERE key='seed'", r"damaged \(seed\)"),
        ("UPDATE kv SET value='\"one\"' WHERE key='seed'", r"damaged \(seed\)"),
        ("UPDATE kv SET value='{oops' WHERE key LIKE 'world:meter:%'", "world:meter:"),
        ("UPDATE journal SET detail='{oops' WHERE step=2", "journal step 2 of"),
        ("UPDATE kv SET value='[]' WHERE key='policy'", r"damaged \(policy\)"),
        ("UPDATE kv SET value='3' WHERE key='manifest_errors'", r"damaged \(manifest_errors\)"),
        # Nested deeper than the JSON parser recurses: a RecursionError before.
        (f"UPDATE kv SET value={_DEEP} WHERE key='world:meta'", "world:meta: the saved value"),
        (f"UPDATE kv SET value={_DEEP} WHERE key GLOB 'capture_key:*'", "capture keys are dam"),
        # Found by a helper's audit: each ran committed steps again, ran a new run over
        # the old one, or raised a traceback, before or instead of refusing.
        (
            "DELETE FROM journal WHERE rowid = (SELECT max(rowid) FROM journal)",
            r"damaged \(its journal holds \d+ steps, \d+ were committed\)",
        ),
        (
            "UPDATE journal SET step = 50 WHERE step = 5",
            r"damaged \(the journal of \w+ holds \d+ steps numbered 1 to 50, not 1 to \d+\)",
        ),
        ("DROP TABLE journal", r"damaged \(table journal missing\)"),
        ("DELETE FROM kv WHERE key='rows'", r"damaged \(its rows are missing\)"),
        (
            "UPDATE kv SET value = json_insert(value, '$[#]', json_set(json_extract(value, "
            "'$[0]'), '$.eui64', '00DB0000000000AB', '$.mpxn', '1')) WHERE key='rows'",
            r"damaged \(no device state for 00DB0000000000AB\)",
        ),
        ("UPDATE capture SET frame = 'x' WHERE seq = 5", r"damaged \(capture row 5\)"),
        ("UPDATE capture SET time = 'soon' WHERE seq = 5", r"damaged \(capture row 5\)"),
        (
            "DELETE FROM capture WHERE seq = 5",
            r"damaged \(its capture holds \d+ HAN frames, \d+ were saved\)",
        ),
        ("UPDATE kv SET value='\"x\"' WHERE key='capture_frames'", r"damaged \(capture_frames\)"),
        ("UPDATE kv SET value='-1' WHERE key='capture_wan'", r"damaged \(capture_wan\)"),
    ],
)
def test_a_damaged_saved_run_is_refused_naming_what_and_leaves_the_reports(
    demo: tuple[Path, BenchRun], tmp_path: Path, sql: str, message: str
) -> None:
    """Each of these raised a traceback (exit 1); an empty 'rows' ran nothing and
    overwrote the good report with an empty 'ok' one (exit 0)."""
    import shutil
    import sqlite3

    folder = tmp_path / "copy"
    shutil.copytree(demo[0], folder)
    report = (folder / "report.json").read_bytes()
    db = sqlite3.connect(folder / DB_NAME)
    db.execute(sql)
    db.commit()
    db.close()
    with pytest.raises(GbcsError, match=message):
        run_bench(folder)
    assert (folder / "report.json").read_bytes() == report


def _as_written_before_the_tag(folder: Path) -> Path:
    """The finished run's inventory as the kit wrote it before it tagged its files and
    counted its journal's steps."""
    import sqlite3

    path = folder / DB_NAME
    db = sqlite3.connect(path)
    db.execute("PRAGMA application_id = 0")
    db.execute("DELETE FROM kv WHERE key = 'journal_steps'")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path


def test_an_older_inventory_refused_as_damaged_is_left_as_it_was(
    demo: tuple[Path, BenchRun], tmp_path: Path
) -> None:
    """It was tagged as it was opened, before the checks refused it (helper review)."""
    import hashlib
    import shutil
    import sqlite3

    folder = tmp_path / "copy"
    shutil.copytree(demo[0], folder)
    path = _as_written_before_the_tag(folder)
    db = sqlite3.connect(path)
    db.execute("DELETE FROM kv WHERE key = 'rows'")
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(GbcsError, match=r"damaged \(its rows are missing\)"):
        run_bench(folder)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_an_older_inventory_resumed_is_tagged_and_its_steps_counted_from_then(
    tmp_path: Path,
) -> None:
    import sqlite3

    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, crash_after=10)
    path = _as_written_before_the_tag(tmp_path)
    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, crash_after=5)  # resumed, adopted, five more steps
    db = sqlite3.connect(path)
    try:
        (tag,) = db.execute("PRAGMA application_id").fetchone()
        (kept,) = db.execute("SELECT value FROM kv WHERE key = 'journal_steps'").fetchone()
        db.execute("DELETE FROM journal WHERE rowid = (SELECT max(rowid) FROM journal)")
        db.commit()
    finally:
        db.close()
    assert tag == int.from_bytes(b"GBHL", "big") and json.loads(kept) == 15
    with pytest.raises(GbcsError, match=r"journal holds 14 steps, 15 were committed"):
        run_bench(tmp_path)


# --- Resuming with other settings ------------------------------------------------------


def test_resuming_with_another_seed_or_policy_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulatedCrash):
        run_bench(tmp_path, seed=5, crash_after=3)
    before = sent(tmp_path)
    with pytest.raises(GbcsError, match="--seed 5, not 6"):
        run_bench(tmp_path, seed=6)
    with pytest.raises(GbcsError, match="without --lab-only"):
        run_bench(tmp_path, seed=5, policy=ProductionProvingPolicy(lab_only=True))
    other = ProductionProvingPolicy((DummyRange("mpan", "98"), DummyRange("mprn", "999999")))
    with pytest.raises(GbcsError, match="dummy ranges MPAN cores starting 99"):
        run_bench(tmp_path, seed=5, policy=other)
    assert sent(tmp_path) == before  # nothing was sent by the refused runs
    # No seed given: the folder's is used; the same seed resumes too.
    run = run_bench(tmp_path)
    assert run.resumed and run.ok
    inv = open_inventory(tmp_path)
    try:
        assert inv.get("seed") == 5
    finally:
        inv.close()
    assert run_bench(tmp_path, seed=5).resumed


# --- Rows the emulated world cannot hold -------------------------------------------------


def _row(eui: str, old: str | None, line: int, n: int) -> ManifestRow:
    return ManifestRow(
        bytes.fromhex(eui),
        bytes.fromhex("00112233445566778899AABBCCDDEE") + bytes([n]),
        "ESME",
        None if old is None else bytes.fromhex(old),
        str(dummy_mpan(30 + n)),
        line,
    )


def test_split_conflicts_names_the_row_that_cannot_be_built() -> None:
    rows = [
        _row("00DB000000000011", None, 1, 1),
        _row("00DB000000000012", "00DB000000000012", 2, 2),  # its own EUI-64
        _row("00DB000000000013", "00DB000000000014", 3, 3),  # the meter on line 4
        _row("00DB000000000014", None, 4, 4),
        _row("00DB000000000015", "00DB000000000010", 5, 5),  # its GPF is line 1's meter
        _row("00DB000000000016", "00DB000000000020", 6, 6),
        _row("00DB000000000017", "00DB000000000021", 7, 7),  # line 6's hub's GPF
        # With two premises the bench CHF is C004: this row goes, and with one premises
        # left the bench is C002 (its GPF C003), which line 9's meter then is.
        _row("00DB000000000018", "00DB12345678C004", 8, 8),
        _row("00DB12345678C003", None, 9, 9),
        _row("00DB000000000019", "00DB000000000020", 10, 10),  # line 6's premises: fine
    ]
    kept, errors = split_conflicts(rows)
    assert [r.line for r in kept] == [1, 4, 6, 10]
    assert [e.split(":")[0] for e in errors] == [f"line {n}" for n in (2, 3, 5, 7, 8, 9)]
    text = dict(zip((2, 3, 5, 7, 8, 9), errors, strict=True))
    assert "the meter's own EUI-64" in text[2]
    assert "the EUI-64 of the meter on line 4" in text[3]
    assert "GPF would have 00DB000000000011" in text[5] and "line 1" in text[5]
    assert "the GPF of old CHF 00DB000000000020 on line 6" in text[7]
    assert "C004 clashes with the bench CHF's EUI-64 00DB12345678C004" in text[8]
    assert "bench CHF's EUI-64 00DB12345678C002 (or its GPF's, 00DB12345678C003)" in text[9]
    assert bench_eui(1) == bytes.fromhex("00DB12345678C002")
    assert split_conflicts(kept) == (kept, [])  # what it keeps, it keeps


@pytest.mark.parametrize(
    "old",
    [
        "00DB12345678C001",  # its GPF would be C002, the bench CHF with one premises
        "00DB12345678C003",  # it would be the bench CHF's GPF
    ],
)
def test_an_old_chf_whose_hub_overlaps_the_bench_hub_is_refused(old: str) -> None:
    """Not only the old CHF's own EUI-64: its GPF's, and the bench GPF's, must not meet."""
    rows = [_row("00DB000000000015", old, 1, 1), _row("00DB000000000016", None, 2, 2)]
    kept, errors = split_conflicts(rows)
    assert [r.line for r in kept] == [2]
    assert errors == [
        f"line 1: old CHF {old} clashes with the bench CHF's EUI-64 00DB12345678C002 "
        "(or its GPF's, 00DB12345678C003)"
    ]


def test_an_old_chf_holds_no_more_meters_than_its_device_log() -> None:
    """A CHF logs 32 devices (CURRENT_LOG_CAPACITY): a 33rd could not have been joined."""
    old = "00DB0000000000F0"
    rows = [_row(f"00DB0000000001{n:02X}", old, n, n) for n in range(1, 35)]
    rows.insert(5, _row("00DB000000000200", None, 99, 99))  # a fresh meter does not count
    kept, errors = split_conflicts(rows)
    assert len(kept) == 33 and [r.line for r in kept][-1] == 32
    assert errors == [
        f"line {n}: old CHF {old} already has 32 meters on earlier lines, "
        "as many as its device log holds"
        for n in (33, 34)
    ]
    assert split_conflicts(kept) == (kept, [])


def test_the_bench_address_follows_the_premises_left(tmp_path: Path) -> None:
    # One premises would put the bench at C002; without the bad row there is none, C000.
    rows = [
        _row("00DB000000000015", "00DB12345678C002", 1, 1),
        _row("00DB000000000016", None, 2, 2),
    ]
    run = run_bench(tmp_path, rows)
    assert [e.split(":")[0] for e in run.manifest_errors] == ["line 1"]
    assert [(r.eui64, r.outcome) for r in run.reports] == [("00DB000000000016", "PASS")]
    join = next(s for s in run.reports[0].steps if s["use_case"] == "install-code join")
    assert join["joined_to"] == "00DB12345678C000"
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit_counts(suite)["errors"] == 1
    # Resuming with the same rows (the bad one included) is the same run.
    assert run_bench(tmp_path, rows).resumed


def test_rows_that_all_clash_start_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    with pytest.raises(GbcsError, match="no usable row: line 1: old CHF"):
        run_bench(folder, [_row("00DB000000000015", "00DB000000000015", 1, 1)])
    assert not folder.exists()


# --- Manifests: encodings, headers, EUI-64s -----------------------------------------------


def test_a_manifest_with_a_byte_order_mark_and_comments_before_the_header(
    tmp_path: Path,
) -> None:
    path = tmp_path / "excel.csv"
    text = "# exported from the warehouse sheet\n\n" + "\r\n".join(MANIFEST[:3]) + "\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    rows, errors = read_manifest(path)
    assert [r.hex for r in rows] == ["00DB1234567890C1"]
    assert [r.line for r in rows] == [4]
    assert [e.split(":")[0] for e in errors] == ["line 5"]  # the bad EUI-64, not the header
    # A header is only a header before the first row.
    rows, errors = read_manifest(write_manifest(tmp_path / "late.csv", [GOOD_FRESH, MANIFEST[0]]))
    assert len(rows) == 1 and [e.split(":")[0] for e in errors] == ["line 2"]


def test_a_manifest_that_is_not_utf8_is_refused_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(("\n".join([MANIFEST[0], GOOD_FRESH, "# café"]) + "\n").encode("latin-1"))
    with pytest.raises(ManifestError, match=r"latin\.csv: line 3 is not UTF-8 text \(byte 0xE9\)"):
        read_manifest(path)


def test_a_manifest_with_a_quote_left_open_is_refused_as_not_csv(tmp_path: Path) -> None:
    """The open quote swallowed every row after it into one field, reported as a row of
    the wrong length (helper audit): the file's real fault is named now."""
    path = tmp_path / "quote.csv"
    path.write_text("\n".join([MANIFEST[0], '"' + GOOD_FRESH, GOOD_FRESH]) + "\n")
    with pytest.raises(
        ManifestError, match=r"quote\.csv: line 2: not CSV: a quoted field runs on to line 3"
    ):
        read_manifest(path)
    # A quote left open in the last field of the last row takes in only the line end.
    head, mpxn = GOOD_FRESH.rsplit(",", 1)
    path.write_text("\n".join([MANIFEST[0], f'{head},"{mpxn}']) + "\n")
    ((row,), errors) = read_manifest(path)
    assert row.mpxn == mpxn and errors == []
    # A space after a closing quote is no such fault: the field is read as before.
    eui, rest = GOOD_FRESH.split(",", 1)
    path.write_text("\n".join([MANIFEST[0], f'"{eui}" ,{rest}']) + "\n")
    ((row,), errors) = read_manifest(path)
    assert row.hex == eui and errors == []


def test_a_manifest_too_long_to_be_one_is_refused_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--manifest /dev/zero`` read until the process was killed (helper audit)."""
    monkeypatch.setattr("emulators.triage.MAX_MANIFEST_BYTES", 120)
    path = tmp_path / "long.csv"
    path.write_text("\n".join([MANIFEST[0], GOOD_FRESH, "#" * 100]) + "\n")
    with pytest.raises(ManifestError, match=r"long\.csv: longer than 120 bytes: not a manifest"):
        read_manifest(path)
    path.write_text("\n".join([MANIFEST[0], GOOD_FRESH]) + "\n")
    assert len(path.read_bytes()) <= 120 and read_manifest(path)[0]


@pytest.mark.parametrize(
    ("eui", "match"),
    [
        ("FFFFFFFFFFFFFFFF", "broadcast EUI-64"),
        ("ff:ff:ff:ff:ff:ff:ff:ff", "broadcast EUI-64"),
        ("0000000000000000", "null EUI-64"),
        ("00DB00000000001", "has 15 hex digits; an EUI-64 has 16"),
        ("00DB0000000000011", "has 17 hex digits"),
        ("00DB00000000001G", "not hexadecimal"),
        # A DCC party's: the emulated device would have been given its private keys.
        ("90B3D51F30010000", "is the test PKI's supplier (supplier), not a device's"),
        ("90B3D51F30000002", "is the test PKI's acb (access control broker), not a"),
        ("90B3D51F30020001", "network_operator2 (network operator), not a device's"),
    ],
)
def test_manifest_eui64s_that_are_no_device_address(tmp_path: Path, eui: str, match: str) -> None:
    lines = [
        f"{eui},00112233445566778899AABBCCDDEEFF,ESME,,{dummy_mpan(21)}",
        f"00DB000000000016,00112233445566778899AABBCCDDEEF0,ESME,{eui},{dummy_mpan(22)}",
        GOOD_FRESH,
    ]
    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", lines))
    assert [r.line for r in rows] == [3]
    assert [e.split(":")[0] for e in errors] == ["line 1", "line 2"]
    assert match in errors[0] and "EUI-64" in errors[0], errors
    assert match in errors[1] and "old CHF" in errors[1]
    assert parse_manifest_eui("00:DB:12:34:56:78:90:A0") == bytes.fromhex("00DB1234567890A0")


# --- The demo under another dummy range ------------------------------------------------------


def test_the_demo_takes_its_mpxns_from_the_configured_dummy_ranges(tmp_path: Path) -> None:
    policy = ProductionProvingPolicy(
        (DummyRange("mpan", "98"), DummyRange("mprn", first="7000000000", last="7000000099"))
    )
    rows = demo_rows(policy)
    for row in rows:
        policy.check(row.mpxn)
    assert len({r.mpxn for r in rows}) == len(rows)
    # The default ranges give the demo's usual MPxNs.
    assert [r.mpxn for r in demo_rows(ProductionProvingPolicy())] == [
        str(dummy_mpan(1)),
        str(dummy_mprn(1)),
        str(dummy_mpan(2)),
        str(dummy_mpan(3)),
        str(dummy_mpan(4)),
        str(dummy_mpan(5)),
    ]
    run = run_bench(tmp_path, policy=policy)
    assert run.ok
    assert {r.eui64: (r.state_found, r.outcome) for r in run.reports} == {
        k: v[1:3] for k, v in DEMO.items()
    }


def test_a_demo_that_cannot_be_made_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "new" / "run"
    policy = ProductionProvingPolicy((DummyRange("mpan", "98"), DummyRange("mprn", "9999999999")))
    with pytest.raises(GbcsError, match="cannot make its dummy MPxNs"):
        run_bench(folder, policy=policy)
    assert list(tmp_path.iterdir()) == []


def test_a_manifest_mpxn_must_suit_its_meter_and_be_its_own(tmp_path: Path) -> None:
    """An ESME's MPxN is an MPAN, a GSME's an MPRN, and the SMI links each to one meter."""
    lines = [
        GOOD_FRESH,  # 1
        f"00DB1234567890D1,00112233445566778899AABBCCDDEE05,ESME,,{dummy_mprn(20)}",  # 2
        f"00DB1234567890D2,00112233445566778899AABBCCDDEE06,GSME,,{dummy_mpan(21)}",  # 3
        GOOD_FRESH.replace("00DB1234567890C1", "00DB1234567890D3"),  # 4: line 1's MPAN
    ]
    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", lines))
    assert [r.hex for r in rows] == ["00DB1234567890C1"]
    assert [e.split(":")[0] for e in errors] == ["line 2", "line 3", "line 4"]
    assert "an ESME's MPxN is an MPAN" in errors[0]
    assert "a GSME's an MPRN" in errors[1]
    assert f"MPxN {dummy_mpan(11)} is listed twice (first on line 1)" in errors[2]


def test_a_resumed_run_writes_the_same_reports_byte_for_byte(tmp_path: Path) -> None:
    """Step details replayed from the journal come back with their keys sorted; the
    report of a resumed run used to list them in another order than the first run's."""
    run_bench(tmp_path)
    first = {n: (tmp_path / n).read_bytes() for n in ("report.json", "junit.xml")}
    assert run_bench(tmp_path).resumed
    again = {n: (tmp_path / n).read_bytes() for n in ("report.json", "junit.xml")}
    resumed = again["report.json"].replace(b'"resumed": true', b'"resumed": false')
    assert resumed == first["report.json"]
    assert again["junit.xml"] == first["junit.xml"]


OLD_CHF = "00DB0000000000F0"


def _bench_on(tmp_path: Path, dead: bool) -> tuple[Bench, ManifestRow, Inventory]:
    """One still-installed ESME of old CHF OLD_CHF, set up as the bench finds it."""
    row = _row("00DB000000000101", OLD_CHF, 1, 1)
    inventory = Inventory(tmp_path / DB_NAME)
    policy = ProductionProvingPolicy()
    world = setup(inventory, [row], 1, policy, frozenset({row.eui64}) if dead else frozenset())
    return Bench(inventory, world, policy=policy), row, inventory


def test_a_meter_is_dead_only_when_both_attempts_were_made(tmp_path: Path) -> None:
    """DESIGN §2 state 3: an unreadable old CHF means the rejoin was never tried, so a
    meter whose install-code join then fails is not known to be dead (not decommissioned)."""
    bench, row, inventory = _bench_on(tmp_path, dead=True)
    bench.world.hubs[bytes.fromhex(OLD_CHF)].chf.wan_out = None  # it answers nothing
    report = bench.triage(row)
    steps = [(s["use_case"], s["result"]) for s in report.steps]
    assert ("8.9", "failed: NO_RESPONSE: no response within 120 s") in steps
    assert ("install-code join", "no join within 300 s") in steps
    assert "trust-centre rejoin" not in [u for u, _ in steps]
    assert (report.state_found, report.outcome) == ("unknown", "FAIL")
    assert "decommission" not in [u for u, _ in steps]
    # Neither reached nor known to be dead: it may still be on that HAN, so it is not
    # taken off the unread old CHF's whitelist.
    assert "8.11 remove (old CHF)" not in [u for u, _ in steps]
    assert inventory.require(row.hex).smi_status.value != "decommissioned"
    inventory.close()


def test_a_meter_only_in_its_old_chfs_historic_log_is_restored_from_it_and_passes(
    tmp_path: Path,
) -> None:
    """DESIGN §2: taken off its CHF's whitelist before its divorce, the meter is in the
    old CHF's historic log only. The bench restores that entry, and since the 8.9 read
    showed it off the whitelist it does not ask the old CHF to remove it again (which
    the CHF would refuse, failing a good meter)."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    removed = bench.services.submit(
        bench.user, "8.11", chf=OLD_CHF, device=row.hex, action="remove"
    )
    assert removed.result == "ok"
    report = bench.triage(row)
    steps = [(s["use_case"], s["result"]) for s in report.steps]
    expected = [u for u in STILL_JOINED_ESME if u != "8.11 remove (old CHF)"]
    assert steps == [(u, ALL_OK) for u in expected]
    read = next(s for s in report.steps if s["use_case"] == "8.9")
    logs = {k: DeviceLog.from_base64(v) for k, v in read["data"].items()}
    assert logs["current"].entry_for(row.eui64) is None
    assert logs["historic"].entry_for(row.eui64) is not None
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    world = bench.world
    assert world.logs_holding(world.meters[row.eui64]) == []
    inventory.close()


def test_a_meter_not_confirmed_off_its_old_chf_whitelist_does_not_pass(tmp_path: Path) -> None:
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    old = bench.world.hubs[bytes.fromhex(OLD_CHF)]

    def progress(text: str) -> None:
        if text.endswith("8.11 remove (old CHF)"):
            old.chf.wan_out = None  # the old CHF stops answering just then

    bench.progress = progress
    report = bench.triage(row)
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["trust-centre rejoin"] == "ok" and results["8.15"] == "ok"
    assert "NO_RESPONSE" in results["8.11 remove (old CHF)"]
    # Unconfirmed, the meter may still be on the old CHF's whitelist: not a clean PASS.
    assert (report.state_found, report.outcome) == ("still-joined", "FAIL")
    inventory.close()


def test_rows_made_in_code_get_the_production_proving_check(tmp_path: Path) -> None:
    """run_bench(rows=...) linked a real MPAN into the SMI; the manifest reader alone
    checked the range."""
    row = ManifestRow(
        bytes.fromhex("00DB000000000101"), bytes(16), "ESME", None, "1312345678907", 1
    )
    inventory = Inventory(tmp_path / DB_NAME)
    try:
        with pytest.raises(GbcsError, match="00DB000000000101: MPAN 1312345678907 is not in"):
            setup(inventory, [row], 1, ProductionProvingPolicy())
        assert inventory.mpxn_device("1312345678907") is None
    finally:
        inventory.close()


# --- The divorce is what the meter does (from an audit of the bench) ----------------------


def test_a_meter_that_ran_its_cs02f_but_whose_answer_was_lost_is_divorced_in_the_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It left its HAN, so the bench records the divorce, takes it off the bench log and
    passes it; before, it stayed on the bench whitelist (32 of them filled it) and the
    SMI said whitelisted."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    world = bench.world
    meter = world.meters[row.eui64]
    medium = world.place(BENCH_PLACE)
    send = medium.send
    handler = meter.device.handlers[CATALOGUE.disconnect_code]
    lost: list[bool] = []

    def run_then_go_quiet(message: Any) -> Any:
        lost.append(True)  # from now on nothing the meter sends is heard
        return handler(message)

    def maybe_lost(sender: Any, psdu: bytes, *args: Any) -> None:
        if not (lost and sender is meter.node):
            send(sender, psdu, *args)

    meter.device.handlers[CATALOGUE.disconnect_code] = run_then_go_quiet
    monkeypatch.setattr(medium, "send", maybe_lost)
    report = bench.triage(row)
    steps = [(s["use_case"], s["result"]) for s in report.steps]
    failed = next(r for u, r in steps if u == "8.15")
    assert failed.startswith("failed: NO_RESPONSE: ")
    tail = [u for u, _ in steps[steps.index(("8.15", failed)) :]]
    assert tail == [
        "8.15",
        "HAN leave",
        "divorce seen on the HAN",
        "8.11 remove (bench CHF)",
        "off bench",
    ]
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    assert not bench.bench_hub().chf.current
    device = inventory.require(row.hex)
    assert (device.smi_status.value, device.chf, device.mpxns) == ("pending", None, ())
    assert any(e.kind == "reconciliation" for e in inventory.audit_log())
    inventory.close()


def test_a_meter_that_answers_success_but_keeps_its_network_fails_and_stays_reachable(
    tmp_path: Path,
) -> None:
    """Its HAN leave never came: a meter fault. It used to PASS and be taken off the
    bench log, stranded there holding the bench's network."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64]
    meter.device._leave = lambda: None  # type: ignore[method-assign]
    report = bench.triage(row)
    steps = [(s["use_case"], s["result"]) for s in report.steps]
    assert steps[-3:] == [
        ("8.15", ALL_OK),
        ("HAN leave", "meter still holds its network settings"),
        ("off bench", ALL_OK),
    ]
    assert report.outcome == "FAIL"
    assert row.eui64 in bench.bench_hub().chf.current  # the only entry that reaches it
    inventory.close()


def test_a_divorced_meter_still_on_its_old_chfs_whitelist_comes_off_it(tmp_path: Path) -> None:
    """SR 8.15 at the premises divorced it but (as 8.15 does) left the old CHF's log as
    it was; reached by its install code, it passed while still whitelisted there."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    world = bench.world
    meter = world.meters[row.eui64]
    old = world.hubs[bytes.fromhex(OLD_CHF)]
    world.move(meter, old.place)  # back at the premises, where it is divorced
    meter.node.power_on()
    # Its tunnel went with the power: the first command is refused and the old CHF, the
    # tunnel's client (GBCS 10.2.2.1), opens a new one.
    assert world.run_until(lambda: meter.node.state is NodeState.JOINED, 120)
    assert not bench.services.submit(bench.user, "CS07", device=row.hex).ok
    assert world.run_until(lambda: world.joined_to(meter) == old.eui64, 120)
    assert bench.services.submit(bench.user, "8.15", device=row.hex).ok
    meter.node.power_off()  # collected
    world.move(meter, None)
    assert row.eui64 in old.chf.current
    report = bench.triage(row)
    steps = [u for u, _ in [(s["use_case"], s["result"]) for s in report.steps]]
    assert steps[steps.index("install-code join") + 1] == "8.11 remove (old CHF)"
    assert (report.state_found, report.outcome) == ("fresh", "PASS")
    assert world.logs_holding(meter) == []
    inventory.close()


def test_reports_are_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """report.json and junit.xml were written in place: a disk that filled up while the
    report was written left it torn. Now they are staged with the capture and renamed
    together: a failure leaves the previous ones."""
    first = run_bench(tmp_path, seed=5)
    before = (tmp_path / "report.json").read_text(encoding="utf-8")
    inventory = open_inventory(tmp_path)
    world = Bench.load_world(inventory)
    inventory.close()
    assert world is not None
    first.resumed = True  # so the new report differs from the one on disk

    def half_then_full(self: Path, data: Any, *args: Any, **kwargs: Any) -> int:
        raw = data.encode("utf-8") if isinstance(data, str) else data
        with open(self, "wb") as f:
            f.write(raw[: len(raw) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_bytes", half_then_full)
    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        write_reports(first, world)
    monkeypatch.undo()
    assert (tmp_path / "report.json").read_text(encoding="utf-8") == before
    ET.parse(tmp_path / "junit.xml")
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".gbcs-hil-")]


# --- A meter's answers must bear out its verdict (audit 8, triage 1-3) ----------------------


def _reconciliations(inventory: Inventory) -> list[str]:
    return [str(e.detail) for e in inventory.audit_log() if e.kind == "reconciliation"]


def test_a_cs02f_answer_whose_signature_does_not_verify_fails_the_meter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A meter whose DS key does not match its certificate: its signed CS02f answer is
    refused. It left, so the SMI follows, but it does not PASS as if the answer were lost."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64].device
    receive = meter.receive

    def bad_signature(data: bytes, decoded: Any = None) -> bytes | None:
        out = receive(data, decoded)
        if out is not None and decode_message(out)[0].header.message_code == (
            CATALOGUE.disconnect_code
        ):
            out = out[:-1] + bytes([out[-1] ^ 1])  # the signature's last byte
        return out

    monkeypatch.setattr(meter, "receive", bad_signature)
    report = bench.triage(row)
    results = [(s["use_case"], s["result"]) for s in report.steps]
    said = (
        "failed: DEVICE_FAILURE: its response was rejected "
        "(VerificationError: signature does not verify)"
    )
    tail = results[results.index(("8.15", said)) :]
    assert [u for u, _ in tail] == [
        "8.15",
        "HAN leave",
        "divorce seen on the HAN",
        "8.11 remove (bench CHF)",
        "off bench",
    ]
    assert report.outcome == "FAIL"
    assert _reconciliations(inventory) == [
        f"the meter left its HAN, although its CS02f answer was: {said}"
    ]
    assert inventory.require(row.hex).smi_status.value == "pending"  # divorced all the same
    inventory.close()


def test_a_meter_that_answers_cs02f_with_a_failure_fails_and_is_not_asked_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said OTHER_FAILURE: an answer, not a lost one. Whether it then leaves or not,
    its answer contradicts or ends the divorce: FAIL, and no second 8.15."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64].device
    handler = meter.handlers[CATALOGUE.disconnect_code]

    def fail_but_leave(message: Any) -> Reply:
        reply = handler(message)  # decides to leave
        code = int(DisconnectResult.OTHER_FAILURE)
        failure = asn1.encode(int_response("DisconnectFromHanResponse", code))
        return Reply(failure, reply.after, reply.delay)

    meter.handlers[CATALOGUE.disconnect_code] = fail_but_leave
    report = bench.triage(row)
    uses = [s["use_case"] for s in report.steps]
    assert "8.15 (attempt 2)" not in uses
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.15"] == "failed: DEVICE_FAILURE: meter answered OTHER_FAILURE"
    assert results["divorce seen on the HAN"] == ALL_OK
    assert report.outcome == "FAIL"
    assert any("although its CS02f answer was" in r for r in _reconciliations(inventory))
    inventory.close()


def test_a_meter_that_answers_cs02f_with_a_failure_and_stays_is_not_asked_again(
    tmp_path: Path,
) -> None:
    """Its answer is an answer: not retried as a lost one would be, and it FAILs."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64].device
    code = int(DisconnectResult.OTHER_FAILURE)
    failure = asn1.encode(int_response("DisconnectFromHanResponse", code))
    meter.handlers[CATALOGUE.disconnect_code] = lambda message: Reply(failure, executed=False)
    report = bench.triage(row)
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.15"] == "failed: DEVICE_FAILURE: meter answered OTHER_FAILURE"
    assert results["HAN leave"] == "meter still holds its network settings"
    assert "8.15 (attempt 2)" not in results and "divorce seen on the HAN" not in results
    assert report.outcome == "FAIL"
    inventory.close()


def _unread_then(
    tmp_path: Path,
    answers: Callable[[str], bool],
    *,
    removed_first: bool = False,
    crash_at: str | None = None,
) -> tuple[MeterReport, Bench]:
    """The demo's third meter (still joined to old CHF ...A2, as its first two are) while
    that CHF's WAN is down for its SR 8.9; ``answers(step)`` says whether it is up for
    each later step. The bench is on that premises' network by then (the previous
    meter's 8.16), so the meter rejoins it late: within the 8.11 add step. ``crash_at``:
    the run crashes as that step starts, and resumes from the saved state (its old
    CHF's WAN then up throughout)."""
    policy = ProductionProvingPolicy()
    rows = demo_rows(policy)[:3]
    inventory = Inventory(tmp_path / DB_NAME)
    bench = Bench(inventory, setup(inventory, rows, 1, policy), policy=policy)
    old = bench.world.hubs[bytes.fromhex("00DB1234567890A2")].chf
    wan_out = old.wan_out
    for row in rows[:2]:
        assert bench.triage(row).outcome == "PASS"
    if removed_first:  # off the old whitelist already, still holding that HAN's network
        removed = bench.services.submit(
            bench.user, "8.11", chf="00DB1234567890A2", device=rows[2].hex, action="remove"
        )
        assert removed.ok

    def progress(text: str) -> None:
        old.wan_out = None if text.endswith(" 8.9") or not answers(text) else wan_out
        if crash_at is not None and text.endswith(f" {crash_at}"):
            bench.crash_after = 0

    bench.progress = progress
    try:
        report = bench.triage(rows[2])
    except SimulatedCrash:
        inventory.close()
        inventory = Inventory(tmp_path / DB_NAME)
        world = Bench.load_world(inventory)
        assert world is not None
        bench = Bench(inventory, world, policy=policy)
        old = bench.world.hubs[bytes.fromhex("00DB1234567890A2")].chf
        report = bench.triage(rows[2])
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.9"].startswith("failed: NO_RESPONSE")
    assert next(s for s in report.steps if s["use_case"] == "install-code join")["by"] == "rejoin"
    return report, bench


def test_a_meter_reached_although_its_old_chf_was_unread_comes_off_that_whitelist(
    tmp_path: Path,
) -> None:
    """It rejoined late: it was still on that HAN and its whitelist. It passed without
    coming off it, left in two CHF logs."""
    report, bench = _unread_then(tmp_path, lambda step: True)
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.11 remove (old CHF)"] == ALL_OK
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    world = bench.world
    assert world.logs_holding(world.meters[bytes.fromhex(report.eui64)]) == []
    bench.inventory.close()


def test_a_meter_not_confirmed_off_an_unread_old_chf_does_not_pass(tmp_path: Path) -> None:
    report, bench = _unread_then(tmp_path, lambda step: not step.endswith("(old CHF)"))
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.11 remove (old CHF)"].startswith("failed: NO_RESPONSE")
    assert (report.state_found, report.outcome) == ("still-joined", "FAIL")
    bench.inventory.close()


def test_a_rejoin_within_the_8_11_step_is_still_one_after_a_crash_and_resume(
    tmp_path: Path,
) -> None:
    """The meter rejoins while SR 8.11 add settles; the run crashes as the join step
    starts. The resumed run had no count of rejoins from before the step (nor does a
    saved meter keep one) and called it an association: a fresh meter. The 8.11 step
    journals that the meter still held a network, which only a rejoin brings back."""
    report, bench = _unread_then(tmp_path, lambda step: True, crash_at="install-code join")
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    added = next(s for s in report.steps if s["use_case"] == "8.11 add (bench CHF)")
    assert added["held_network"] is True
    bench.inventory.close()


def test_a_meter_the_old_chf_says_it_does_not_log_is_confirmed_off_it(tmp_path: Path) -> None:
    """Unread old CHF, meter reached: the CHF answering 'not in my log' confirms it is off."""
    report, bench = _unread_then(tmp_path, lambda step: True, removed_first=True)
    results = dict((s["use_case"], s["result"]) for s in report.steps)
    assert results["8.11 remove (old CHF)"] == f"failed: DEVICE_FAILURE: {NOT_IN_LOG}"
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    bench.inventory.close()


def test_a_meter_that_holds_no_network_operator_anchor_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said it holds none (CS02a trustAnchorNotFound): read, not 'not read', and a
    meter that can be re-deployed in no region does not pass."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64].device
    handler = meter.handlers[PROVIDE_CREDENTIAL_DETAILS]

    def without_operator(message: Any) -> Reply:
        details = CredentialDetails.from_payload(
            asn1.decode(PROVIDE_CREDENTIAL_DETAILS, CraFlag.RESPONSE, handler(message).payload)
        )
        parties = tuple(
            RemotePartyDetails(p.role, CredentialStatus.TRUST_ANCHOR_NOT_FOUND)
            if p.role == RemotePartyRole.NETWORK_OPERATOR
            else p
            for p in details.parties
        )
        return asn1_reply(CredentialDetails(parties).to_payload())

    meter.handlers[PROVIDE_CREDENTIAL_DETAILS] = without_operator
    report = bench.triage(row)
    read = next(s for s in report.steps if s["use_case"] == "6.24.1")
    assert read["result"] == ALL_OK and read["data"]["network_operator"] is None
    assert read["data"]["supplier"] is not None
    assert (report.network_operator, report.outcome) == (None, "FAIL")
    assert report.other_region is False  # no operator's anchor: of no region, not another
    inventory.close()


def test_a_manifest_install_code_given_with_its_crc_is_refused_on_its_line(
    tmp_path: Path,
) -> None:
    """parse_install_code takes the 18-byte form (code and CRC); the SMI holds the 16-byte
    GBCS code, so such a row is named on its line rather than failing the whole set-up."""
    code = bytes.fromhex("00112233445566778899AABBCCDDEE05")
    with_crc = (code + install_code_crc(code)).hex().upper()
    lines = [GOOD_FRESH, f"00DB1234567890C9,{with_crc},ESME,,{dummy_mpan(15)}"]
    rows, errors = read_manifest(write_manifest(tmp_path / "m.csv", lines))
    assert [r.hex for r in rows] == ["00DB1234567890C1"]
    assert errors == ["line 2: a GBCS install code is 16 bytes (32 hex digits) without its CRC"]


def test_a_journal_step_under_another_name_is_refused_not_replayed(tmp_path: Path) -> None:
    """Resuming replays step N only if the journal's step N is the same step: a journal
    from another flow (or damaged) must not be taken for this one's."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    inventory.journal_step(row.hex, 1, "off bench", "ok", {"place": None})
    with pytest.raises(
        GbcsError, match=f"journal of {row.hex} has step 1 'off bench', not 'on bench'"
    ):
        bench.triage(row)
    inventory.close()


def test_the_saved_old_chf_is_the_one_the_bench_left(demo: tuple[Path, BenchRun]) -> None:
    """The old CHF is one of the devices a meter's steps change (8.9, 8.11 remove): its
    state is saved with each step, or a resumed run would reload it from the set-up,
    still whitelisting meters the SMI says were taken off it."""
    inv = open_inventory(demo[0])
    try:
        world = Bench.load_world(inv)
    finally:
        inv.close()
    assert world is not None
    old = world.hubs[bytes.fromhex("00DB1234567890A2")]
    assert old.place == "premises-1"
    assert not old.chf.current  # each of its meters came off it (DEMO's old-CHF removes)


def test_a_meter_whose_restore_was_refused_is_not_found_dead(tmp_path: Path) -> None:
    """Found in its old CHF's log, the meter is owed a trust-centre rejoin: with the 8.16
    refused, that attempt was never made, so a failed install-code join alone does not
    make it dead (DESIGN §2 state 3): it is not decommissioned, nor taken off its old
    CHF's whitelist."""
    bench, row, inventory = _bench_on(tmp_path, dead=True)
    inventory.db.execute("DELETE FROM chf_suppliers WHERE chf = ?", (OLD_CHF,))
    report = bench.triage(row)
    steps = dict((s["use_case"], s["result"]) for s in report.steps)
    assert steps["8.16"].startswith("rejected: LOG_NOT_FROM_SUPPLIERS_CHF")
    assert steps["install-code join"] == NO_JOIN
    assert "trust-centre rejoin" not in steps and "decommission" not in steps
    # Perhaps alive and still on that HAN: it keeps its place on the old CHF's whitelist.
    assert "8.11 remove (old CHF)" not in steps
    assert row.eui64 in bench.world.hubs[bytes.fromhex(OLD_CHF)].chf.current
    assert (report.state_found, report.outcome) == ("unknown", "FAIL")
    assert inventory.require(row.hex).smi_status.value != "decommissioned"
    inventory.close()


def test_a_meter_that_fails_one_qa_read_fails(tmp_path: Path) -> None:
    """Every QA read must pass, not just one: a CS07 the meter answers with a failure
    fails the meter although its ECS26m, ECS52 and ECS35a reads were fine."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    bench.world.meters[row.eui64].device.handlers[0x0013] = lambda message: asn1_reply(
        JoinDetails(1, None).to_payload()
    )
    report = bench.triage(row)
    steps = dict((s["use_case"], s["result"]) for s in report.steps)
    assert steps["CS07"] == "failed: DEVICE_FAILURE: the meter reported a read failure"
    assert [steps[u] for u in ("ECS26m", "ECS52", "ECS35a")] == [ALL_OK] * 3
    assert (report.state_found, report.outcome) == ("still-joined", "FAIL")
    inventory.close()


def test_a_meter_whose_credentials_cannot_be_read_fails(tmp_path: Path) -> None:
    """6.24.1 failing (an answer that is not a CS02a response) leaves no anchors read:
    the meter cannot be shown re-deployable, so it does not pass."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    meter = bench.world.meters[row.eui64].device
    meter.handlers[PROVIDE_CREDENTIAL_DETAILS] = lambda message: Reply(b"\x05\x00")
    report = bench.triage(row)
    read = next(s for s in report.steps if s["use_case"] == "6.24.1")
    assert read["result"].startswith("failed: DEVICE_FAILURE: response not understood")
    assert [s["result"] for s in report.steps if s["use_case"] in ("CS07", "8.15")] == [
        ALL_OK,
        ALL_OK,
    ]
    assert (report.network_operator, report.outcome) == (None, "FAIL")
    inventory.close()


def test_a_cs02f_that_never_reached_the_meter_is_sent_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No answer and the meter did not leave: the command may never have reached it, so
    the bench tries again (up to DISCONNECT_ATTEMPTS) rather than failing the meter."""
    bench, row, inventory = _bench_on(tmp_path, dead=False)
    world = bench.world
    meter = world.meters[row.eui64]
    medium = world.place(BENCH_PLACE)
    send = medium.send
    submit = bench.services.submit
    deaf: list[bool] = []

    def first_disconnect_unheard(user: Any, srv: str, **params: Any) -> Any:
        if srv == "8.15" and not deaf:
            deaf.append(True)
            try:
                return submit(user, srv, **params)
            finally:
                deaf.append(False)
        return submit(user, srv, **params)

    def maybe_unheard(sender: Any, psdu: bytes, *args: Any) -> None:
        if not (deaf and deaf[-1] and sender is not meter.node):
            send(sender, psdu, *args)

    monkeypatch.setattr(bench.services, "submit", first_disconnect_unheard)
    monkeypatch.setattr(medium, "send", maybe_unheard)
    report = bench.triage(row)
    steps = [(s["use_case"], s["result"]) for s in report.steps]
    first = next(r for u, r in steps if u == "8.15")
    assert first.startswith("failed: NO_RESPONSE: ")
    tail = [u for u, _ in steps[steps.index(("8.15", first)) :]]
    assert tail == [
        "8.15",
        "HAN leave",
        "8.15 (attempt 2)",
        "HAN leave",
        "8.11 remove (bench CHF)",
        "off bench",
    ]
    assert dict(steps)["8.15 (attempt 2)"] == ALL_OK
    assert (report.state_found, report.outcome) == ("still-joined", "PASS")
    inventory.close()


def test_junit_counts_a_meter_without_its_expected_outcome_as_a_failure(
    tmp_path: Path, demo: tuple[Path, BenchRun]
) -> None:
    """The demo has no failing meter, so its junit.xml cannot show that failures are
    counted: here one meter FAILs where PASS was expected and one manifest row was bad."""
    inventory = open_inventory(demo[0])
    try:
        world = Bench.load_world(inventory)
    finally:
        inventory.close()
    assert world is not None
    failing = MeterReport("00DB000000000016", "ESME", "fresh", "FAIL")
    failing.steps = [{"use_case": "CS07", "result": "failed: NO_RESPONSE: none"}]
    passing = MeterReport("00DB000000000017", "ESME", "fresh", "PASS")
    run = BenchRun([failing, passing], ["line 3: bad EUI-64"], tmp_path, False)
    write_reports(run, world)
    suite = ET.parse(tmp_path / "junit.xml").getroot()
    assert junit_counts(suite) == {"tests": 3, "failures": 1, "errors": 1, "skipped": 0}
    case = suite.find("testcase[@name='00DB000000000016']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None and failure.get("message") == "FAIL (fresh)"
    assert failure.text == "CS07: failed: NO_RESPONSE: none"


@pytest.mark.parametrize("name", ["report.json", "junit.xml", "han.pcap", "han.pcap.keys"])
def test_a_folder_where_a_report_goes_is_refused_before_the_run(tmp_path: Path, name: str) -> None:
    """It was found only once every step had run (helper audit): the reports are
    written last, all or none."""
    (tmp_path / name).mkdir()
    with pytest.raises(GbcsError, match=rf"{name} is a folder: the run's {name} cannot be"):
        run_bench(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # no inventory, no step run
