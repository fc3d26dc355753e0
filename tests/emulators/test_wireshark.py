"""What the emulated HAN puts on the air, read back by Wireshark with the captured keys."""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from emulators.scenarios import run_scenario
from emulators.wireshark import (
    capture_bytes,
    check_capture_path,
    keys_lines,
    uat_options,
    write_capture,
)
from gbcs.catalogue import CATALOGUE

TSHARK = shutil.which("tshark")
needs_tshark = pytest.mark.skipif(
    TSHARK is None, reason="tshark is not installed (CI installs it with apt-get)"
)
FIELDS = (
    "frame.interface_name",
    "_ws.malformed",
    "_ws.expert.severity",
    "wpan.fcs_ok",
    "zbee_nwk.security",
    "zbee_aps.cmd.key",
    "zbee_zcl_se.tun.protocol_id",
    "gbcs_message.grouping_header.message_code",
)


@functools.cache
def _returned_meter(tmp: str) -> tuple[Path, Path, list[str]]:
    run = run_scenario("returned-meter", seed=9)
    assert run.report(9)["ok"]
    pcap, keys = write_capture(run.world.capture, Path(tmp) / "returned-meter.pcapng")
    return pcap, keys, uat_options(run.world.capture)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    return _returned_meter(str(tmp_path_factory.mktemp("wireshark")))


def _tshark(path: Path, options: list[str]) -> list[list[str]]:
    assert TSHARK is not None
    args = [TSHARK, "-r", str(path), *options, "-T", "fields", "-E", "separator=|"]
    for f in FIELDS:
        args += ["-e", f]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return [line.split("|") for line in out.splitlines()]


def test_keys_file_has_zigbee_pc_keys_lines(capture: tuple[Path, Path, list[str]]) -> None:
    _, keys, _ = capture
    lines = keys.read_text().splitlines()
    assert lines and all(
        re.fullmatch(r'"[0-9A-F]{32}","Normal","(nwk|link) [^"]+"', line) for line in lines
    )
    assert sum(line.endswith('"nwk premises CHF"') for line in lines) == 1
    assert any('"link ' in line for line in lines)


def test_capture_starts_with_a_pcapng_section() -> None:
    run = run_scenario("fresh-meter", seed=1)
    data = capture_bytes(run.world.capture)
    assert data[:4] == b"\x0a\x0d\x0d\x0a" and data[8:12] == bytes.fromhex("4d3c2b1a")
    assert keys_lines(run.world.capture)


@needs_tshark
def test_every_frame_decodes_and_the_scenario_codes_are_seen(
    capture: tuple[Path, Path, list[str]],
) -> None:
    pcap, keys, options = capture
    rows = _tshark(pcap, options)
    assert len(rows) > 100
    for row in rows:
        interface, malformed, severity = row[0], row[1], row[2]
        assert not malformed, row
        assert "error" not in severity.lower() and "warn" not in severity.lower(), row
        if interface.startswith("han:"):
            assert row[3] in ("1", "True"), row  # FCS correct
    codes = {int(c, 16) for row in rows for c in row[7].split(",") if c}
    expected = {0x0001, 0x00FE, 0x0003, 0x0002, 0x0013, CATALOGUE.disconnect_code}
    assert expected <= codes
    on_air = {
        int(c, 16) for row in rows if row[0].startswith("han:") for c in row[7].split(",") if c
    }
    assert {0x0013, CATALOGUE.disconnect_code} <= on_air  # commands to the meter cross the HAN
    # Every Transport Key decrypts (with the link key) to a network key of the capture.
    transported = {row[5].upper() for row in rows if row[5]}
    network_keys = {
        line.split(",")[0].strip('"') for line in keys.read_text().splitlines() if '"nwk ' in line
    }
    assert transported == network_keys and len(network_keys) == 3
    tunnels = {row[6] for row in rows if row[6]}
    assert {int(t, 0) for t in tunnels} == {6}  # GB-HRGP


@needs_tshark
def test_without_the_network_key_nothing_above_nwk_is_readable(
    capture: tuple[Path, Path, list[str]],
) -> None:
    pcap, _, _ = capture
    rows = _tshark(pcap, [])
    on_air = [row for row in rows if row[0].startswith("han:")]
    assert on_air
    assert not any(row[7] for row in on_air)  # no GBCS message readable on the air
    assert not any(row[6] for row in on_air)


def test_a_failed_write_leaves_neither_file(tmp_path: Path) -> None:
    run = run_scenario("fresh-meter", seed=1)
    target = tmp_path / "x.pcapng"
    (tmp_path / "x.pcapng.keys").mkdir()  # the keys cannot be written there
    with pytest.raises(IsADirectoryError):
        check_capture_path(target)
    with pytest.raises(OSError):
        write_capture(run.world.capture, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pcapng.keys"]  # no pcap, no temp
    with pytest.raises(NotADirectoryError, match="no such folder"):
        check_capture_path(tmp_path / "missing" / "y.pcapng")
    check_capture_path(tmp_path / "y.pcapng")  # a writable place: no error


def _readme_wireshark_lines() -> list[str]:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    start = readme.index("    gbcs-hil emulate scenario returned-meter --pcap")
    block = readme[start:].split("\n\n", 1)[0]
    return [line.strip() for line in block.splitlines()]


@needs_tshark
def test_the_readme_wireshark_lines_decrypt_every_frame(tmp_path: Path) -> None:
    """The README's commands, run as written (wireshark swapped for tshark), load every key."""
    emulate, *shell = _readme_wireshark_lines()
    assert shell[-1].startswith("wireshark ")
    script = "\n".join(
        [
            emulate.replace("gbcs-hil emulate", "python -m gbcs emulate") + " > /dev/null",
            *shell[:-1],
            shell[-1].replace("wireshark ", f"{TSHARK} ", 1) + " -T fields -e frame.protocols",
        ]
    )
    done = subprocess.run(
        ["bash", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    nwk = [p for p in done.stdout.splitlines() if "zbee_nwk" in p]
    assert len(nwk) > 20
    # A frame whose key Wireshark lacks stops at the NWK header with its payload as data.
    assert not [p for p in nwk if p.endswith("zbee_nwk:data")]
    assert any("gbcs_message" in p for p in nwk)
    # The check can fail: with the first key alone (the premises HAN's) it does.
    partial = subprocess.run(
        ["bash", "-c", script.replace("mapfile -t keys <", "mapfile -t -n 1 keys <")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert [p for p in partial.stdout.splitlines() if p.endswith("zbee_nwk:data")]


@needs_tshark
def test_the_other_region_meters_cs02a_crosses_the_han_and_decodes(tmp_path: Path) -> None:
    run = run_scenario("other-region-meter", seed=9)
    assert run.report(9)["ok"]
    pcap, _ = write_capture(run.world.capture, tmp_path / "other-region.pcapng")
    rows = _tshark(pcap, uat_options(run.world.capture))
    assert rows and not any(row[1] for row in rows)  # nothing malformed
    on_air = [c for row in rows if row[0].startswith("han:") for c in row[7].split(",") if c]
    # CS02a command and response, each once through the tunnel (the PUT and its answer).
    assert sum(int(c, 16) == 0x0008 for c in on_air) == 2


@needs_tshark
def test_the_unroutable_cs02f_never_reaches_the_air(tmp_path: Path) -> None:
    """removed-before-disconnect: the CS02f the old CHF could not route is on the WAN
    only; the one through the bench CHF crosses the HAN, command and response."""
    run = run_scenario("removed-before-disconnect", seed=9)
    assert run.report(9)["ok"]
    pcap, _ = write_capture(run.world.capture, tmp_path / "removed.pcapng")
    rows = _tshark(pcap, uat_options(run.world.capture))
    assert rows and not any(row[1] for row in rows)  # nothing malformed
    codes = [(row[0].split(":")[0], int(c, 16)) for row in rows for c in row[7].split(",") if c]
    cs02f = CATALOGUE.disconnect_code
    assert sum(code == cs02f for where, code in codes if where == "han") == 2
    # On the WAN: the unroutable command (the CHF answers nothing to it on the air of
    # either side), then the bench's command and the meter's signed response.
    assert sum(code == cs02f for where, code in codes if where == "wan") == 3
    first = codes.index(("wan", cs02f))
    assert ("han", cs02f) not in codes[:first] and codes[first + 1] != ("han", cs02f)


def test_same_instant_records_put_the_wan_message_before_the_frames_it_causes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A command and the first HAN fragment the hub forwards share a time; the previous
    response too. Wireshark must show response, command, then fragments."""
    from emulators import wireshark
    from emulators.medium import Capture

    capture = Capture()
    capture.record(1.0, "bench", b"fragment-1")  # recorded first: the hub forwards at once
    capture.record(0.5, "bench", b"earlier")
    capture.record_wan(1.0, b"response")
    capture.record_wan(1.0, b"command")
    capture.record(1.0, "bench", b"fragment-2")
    written: list[Any] = []
    monkeypatch.setattr(wireshark, "pcapng_file", lambda _i, packets: written.extend(packets))
    wireshark.capture_bytes(capture)
    assert [data for _, _, data in written][:1] == [b"earlier"]
    order = [b"response", b"command", b"fragment-1", b"fragment-2"]
    assert [data[-len(o) :] for (_, _, data), o in zip(written[1:], order, strict=True)] == order
