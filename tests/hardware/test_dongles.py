"""Dongle discovery on faked port listings and /dev trees, the CLI's output, and probe failures."""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from gbcs.errors import GbcsError
from hardware import cli
from hardware.dongles import (
    BOARD_INFO_TIMEOUT,
    KNOWN_RADIOS,
    Dongle,
    ProbeResult,
    RadioModel,
    discover,
    ezsp_failure_reason,
    find_links,
    interface_number,
    match_model,
    probe,
    probe_ezsp,
)
from tests.hardware.fake_ncp import fake_ncp

REPO = Path(__file__).resolve().parents[2]


def port(
    device: str,
    vid: int | None,
    pid: int | None,
    serial: str | None = "SN1",
    location: str | None = "1-1.2:1.0",
) -> ListPortInfo:
    """A pyserial port record as comports() would give it, without touching /sys."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number, info.location = vid, pid, serial, location
    info.manufacturer, info.product = "Maker", "Stick"
    return info


def listing(*ports: ListPortInfo):
    return lambda: list(ports)


def model(family: str) -> RadioModel:
    (found,) = (m for m in KNOWN_RADIOS if m.family == family)
    return found


@pytest.mark.parametrize("radio", KNOWN_RADIOS, ids=lambda m: f"{m.vid_pid}-{m.family}")
def test_each_known_id_is_found(radio: RadioModel, tmp_path: Path) -> None:
    location = f"1-1.4:1.{radio.interface or 0}"
    (dongle,) = discover(
        listing(port("/dev/ttyUSB3", radio.vid, radio.pid, "ABC", location)), tmp_path
    )
    assert dongle.device == "/dev/ttyUSB3"
    assert dongle.vid_pid == radio.vid_pid and dongle.family == radio.family
    assert dongle.serial_number == "ABC" and dongle.links == ()
    assert dongle.name == radio.name


def test_the_table_has_every_id_from_the_brief_once() -> None:
    ids = [m.vid_pid for m in KNOWN_RADIOS]
    assert sorted(ids) == sorted(
        [
            "10c4:ea60",
            "1a86:55d4",
            "1a86:7523",
            "10c4:8a2a",
            "1cf1:0030",
            "0403:6015",
            "303a:4001",
            "303a:831a",
            "0451:16a8",
            "0451:bef3",
        ]
    )
    assert len({m.family for m in KNOWN_RADIOS}) == len(KNOWN_RADIOS)


@pytest.mark.parametrize(
    ("location", "found"),
    [("1-1.2:1.1", True), ("1-1.2:1.0", False), ("1-1.2", False), (None, False)],
)
def test_husbzb1_only_interface_01(location: str | None, found: bool, tmp_path: Path) -> None:
    """Interface 00 is the stick's Z-Wave radio; without an interface number we cannot tell."""
    dongles = discover(listing(port("/dev/ttyUSB0", 0x10C4, 0x8A2A, location=location)), tmp_path)
    assert [d.family for d in dongles] == (["husbzb1"] if found else [])
    if found:
        assert dongles[0].interface == 1


def test_unknown_and_non_usb_ports_are_ignored(tmp_path: Path) -> None:
    ports = [
        port("/dev/ttyACM0", 0x0658, 0x0200),  # a Z-Wave stick
        port("/dev/ttyACM1", 0x2341, 0x0043),  # an Arduino
        port("/dev/ttyS0", None, None, serial=None, location=None),
        port("/dev/ttyUSB1", 0x10C4, 0xEA61),  # right vendor, other product
    ]
    assert discover(listing(*ports), tmp_path) == []


def test_results_sorted_by_device(tmp_path: Path) -> None:
    ports = [port("/dev/ttyUSB1", 0x10C4, 0xEA60), port("/dev/ttyACM0", 0x1CF1, 0x0030)]
    assert [d.device for d in discover(listing(*ports), tmp_path)] == [
        "/dev/ttyACM0",
        "/dev/ttyUSB1",
    ]


@pytest.mark.parametrize(
    ("location", "number"),
    [
        ("1-1.2:1.1", 1),
        ("3-1.2.2:1.3", 3),
        ("1-1.2:1.10", 10),
        ("1-1.2", None),
        ("", None),
        (None, None),
        ("1-1:x.1", 1),
        ("1-1:1.", None),
        ("1-1:1.\u00b2", None),  # a superscript two is a digit to str.isdigit, not to int()
    ],
)
def test_interface_number(location: str | None, number: int | None) -> None:
    assert interface_number(location) == number


def _fake_dev(root: Path) -> None:
    """A /dev like udev leaves it: relative links, plus a hand-made absolute one."""
    dev = root / "dev"
    (dev / "zigbee").mkdir(parents=True)
    (dev / "serial" / "by-id").mkdir(parents=True)
    for name in ("ttyUSB0", "ttyUSB1", "ttyACM0"):
        (dev / name).touch()
    (dev / "zigbee" / "cp210x-0001").symlink_to("../ttyUSB0")
    (dev / "zigbee" / "by-hand").symlink_to("/dev/ttyUSB0")
    (dev / "zigbee" / "dangling").symlink_to("../ttyUSB9")
    by_id = dev / "serial" / "by-id"
    (by_id / "usb-Silicon_Labs_CP2102N_0001-if00-port0").symlink_to("../../ttyUSB0")
    (by_id / "usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2_0002-if00-port0").symlink_to(
        "../../ttyUSB1"
    )
    (by_id / "chained").symlink_to("../../zigbee/cp210x-0001")


def test_links_resolve_inside_the_fake_root(tmp_path: Path) -> None:
    _fake_dev(tmp_path)
    assert find_links("/dev/ttyUSB0", tmp_path) == (
        "/dev/zigbee/by-hand",
        "/dev/zigbee/cp210x-0001",
        "/dev/serial/by-id/chained",
        "/dev/serial/by-id/usb-Silicon_Labs_CP2102N_0001-if00-port0",
    )
    assert find_links("/dev/ttyUSB1", tmp_path) == (
        "/dev/serial/by-id/usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2_0002-if00-port0",
    )
    assert find_links("/dev/ttyACM0", tmp_path) == ()


def test_odd_links_neither_stop_the_listing_nor_hide_the_others(tmp_path: Path) -> None:
    """Hand-made links: two leading slashes (still absolute), a target no file system holds."""
    _fake_dev(tmp_path)
    zigbee = tmp_path / "dev" / "zigbee"
    (zigbee / "two-slashes").symlink_to("//dev/ttyUSB1")
    (zigbee / "a-name-too-long").symlink_to("x" * 300)  # listed first in its folder
    assert find_links("/dev/ttyUSB1", tmp_path) == (
        "/dev/zigbee/two-slashes",
        "/dev/serial/by-id/usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2_0002-if00-port0",
    )
    assert find_links("/dev/ttyUSB0", tmp_path)[:2] == (
        "/dev/zigbee/by-hand",
        "/dev/zigbee/cp210x-0001",
    )
    ports = [port("/dev/ttyUSB1", 0x1A86, 0x55D4), port("/dev/" + "z" * 300, 0x1A86, 0x55D4)]
    assert [len(d.links) for d in discover(listing(*ports), tmp_path)] == [2, 0]


def test_links_when_the_folders_do_not_exist(tmp_path: Path) -> None:
    assert find_links("/dev/ttyUSB0", tmp_path) == ()


def test_discover_fills_in_links(tmp_path: Path) -> None:
    _fake_dev(tmp_path)
    ports = [port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001"), port("/dev/ttyUSB1", 0x1A86, 0x55D4)]
    first, second = discover(listing(*ports), tmp_path)
    assert "/dev/zigbee/cp210x-0001" in first.links and len(first.links) == 4
    assert second.links == (
        "/dev/serial/by-id/usb-ITEAD_SONOFF_Zigbee_3.0_USB_Dongle_Plus_V2_0002-if00-port0",
    )


def test_udev_link_matches_the_rules_naming(tmp_path: Path) -> None:
    ports = [
        port("/dev/ttyACM0", 0x0451, 0xBEF3, "L1100H86", "3-1.2.2:1.3"),
        port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1"),
        port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "1-2"),
    ]
    links = [d.udev_link for d in discover(listing(*ports), tmp_path)]
    assert links == ["/dev/zigbee/xds110-L1100H86-if03", "/dev/zigbee/cp210x-0001", None]


def test_udev_link_encodes_the_serial_as_udev_does_and_finds_a_port_link(
    tmp_path: Path,
) -> None:
    """A serial number with spaces or odd characters is sanitised by udev (usb_id) in
    the link; a bridge without one gets the -port- link the rules make."""
    dev = tmp_path / "dev"
    (dev / "zigbee").mkdir(parents=True)
    (dev / "ttyUSB1").touch()
    (dev / "zigbee" / "ch340-port-pci-0000_00_14_0-usb-0_2_1_0").symlink_to("../ttyUSB1")
    ports = [
        port("/dev/ttyUSB0", 0x10C4, 0xEA60, " Sky Connect  0001/x ", "1-1"),
        port("/dev/ttyUSB1", 0x1A86, 0x7523, None, "1-2"),
    ]
    links = [d.udev_link for d in discover(listing(*ports), tmp_path)]
    assert links == [
        "/dev/zigbee/cp210x-Sky_Connect_0001_x",
        "/dev/zigbee/ch340-port-pci-0000_00_14_0-usb-0_2_1_0",
    ]


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gbcs-hil")
    cli.add_commands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["dongles", *argv])


def _run(tmp_path: Path, *argv: str, **kwargs) -> tuple[int, str]:
    out = io.StringIO()
    _fake_dev(tmp_path)
    ports = listing(
        port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "1-1.1"),
        port("/dev/ttyUSB1", 0x10C4, 0x8A2A, "C0F003D3", "1-1.3:1.1"),
        port("/dev/ttyUSB2", 0x10C4, 0x8A2A, "C0F003D3", "1-1.3:1.0"),
        port("/dev/ttyACM0", 0x0451, 0x16A8, "__0X00124B0018E1F0B5", "1-1.2:1.0"),
        port("/dev/ttyS0", None, None, None, None),
    )
    args = _parse(*argv)
    code = args.func(args, list_ports=ports, root=tmp_path, out=out, **kwargs)
    return code, out.getvalue()


def test_cli_json_is_one_array_of_dongles(tmp_path: Path) -> None:
    code, text = _run(tmp_path, "--json")
    assert code == 0
    rows = json.loads(text)
    assert [r["device"] for r in rows] == ["/dev/ttyACM0", "/dev/ttyUSB0", "/dev/ttyUSB1"]
    cc2531, cp210x, husbzb = rows
    assert cc2531["family"] == "cc2531" and cc2531["protocol"] == "ZNP"
    assert cp210x["vid_pid"] == "10c4:ea60" and cp210x["serial_number"] == "0001"
    assert "/dev/zigbee/cp210x-0001" in cp210x["links"]
    assert cp210x["udev_link"] == "/dev/zigbee/cp210x-0001"
    assert husbzb["interface"] == 1 and husbzb["location"] == "1-1.3:1.1"
    assert all("probe" not in r for r in rows)


def test_cli_table(tmp_path: Path) -> None:
    code, text = _run(tmp_path)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].split() == ["device", "VID:PID", "family", "serial", "links"]
    assert lines[1].startswith("/dev/ttyACM0") and "cc2531" in lines[1]
    assert lines[2].strip() == model("cc2531").name


def test_cli_with_nothing_attached(tmp_path: Path) -> None:
    out = io.StringIO()
    args = _parse()
    assert args.func(args, list_ports=listing(), root=tmp_path, out=out) == 0
    assert out.getvalue().startswith("no ZigBee dongle found")
    args = _parse("--json")
    out = io.StringIO()
    assert args.func(args, list_ports=listing(), root=tmp_path, out=out) == 0
    assert json.loads(out.getvalue()) == []  # still a JSON document, not empty output


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "-inf", "soon"])
def test_cli_timeout_must_be_a_positive_finite_number(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        _parse("--probe", f"--timeout={value}")
    assert exited.value.code == 2
    assert f"argument --timeout: {value!r} is not a" in capsys.readouterr().err


def test_cli_timeout_takes_fractions() -> None:
    assert _parse("--timeout", "0.25").timeout == 0.25
    assert _parse().timeout == 10.0


def test_cli_probe_failure_sets_exit_code(tmp_path: Path) -> None:
    seen: list[tuple[str, float]] = []

    def ezsp(device: str, baudrates: tuple[int, ...], timeout: float) -> ProbeResult:
        seen.append((device, timeout))
        return ProbeResult("failed", reason=f"{device}: nothing answered")

    def prober(dongle: Dongle, timeout: float) -> Dongle:
        return probe(dongle, timeout, ezsp=ezsp)

    code, text = _run(tmp_path, "--probe", "--json", "--timeout", "0.5", prober=prober)
    assert code == 1
    rows = {r["device"]: r["probe"] for r in json.loads(text)}
    assert rows["/dev/ttyUSB0"]["text"] == "probe failed: /dev/ttyUSB0: nothing answered"
    assert rows["/dev/ttyACM0"]["status"] == "skipped"  # ZNP: not asked over EZSP
    assert seen == [("/dev/ttyUSB0", 0.5), ("/dev/ttyUSB1", 0.5)]

    code, text = _run(tmp_path / "again", "--probe", prober=prober)
    assert code == 1
    assert text.splitlines()[0].split()[-1] == "radio"
    assert "probe failed: /dev/ttyUSB0: nothing answered" in text


def test_probe_uses_the_models_baud_rates(tmp_path: Path) -> None:
    calls: list[tuple[int, ...]] = []

    def ezsp(device: str, baudrates: tuple[int, ...], timeout: float) -> ProbeResult:
        calls.append(baudrates)
        return ProbeResult("ok", "EZSP v13", "EmberZNet 7.4.4.0 build 0", "Nabu Casa ZBT-2", 460800)

    (dongle,) = discover(listing(port("/dev/ttyACM0", 0x303A, 0x831A)), tmp_path)
    probed = probe(dongle, 3.0, ezsp=ezsp)
    assert calls == [(460800, 115200)]
    assert probed.probe is not None and dongle.probe is None
    assert probed.probe.text == "EZSP v13, EmberZNet 7.4.4.0 build 0, Nabu Casa ZBT-2 @ 460800 baud"
    assert probed.to_json()["probe"]["status"] == "ok"


def test_probe_skips_protocols_without_a_prober(tmp_path: Path) -> None:
    def ezsp(*_: object) -> ProbeResult:
        raise AssertionError("a deCONZ radio must not be sent EZSP frames")

    (dongle,) = discover(listing(port("/dev/ttyACM0", 0x1CF1, 0x0030)), tmp_path)
    result = probe(dongle, ezsp=ezsp).probe
    assert result is not None and result.status == "skipped"
    assert result.text == "probe skipped: deCONZ radio: only EZSP probing (bellows) is implemented"


def _quick(device: str, timeout: float = 5.0, baudrates: tuple[int, ...] = (115200,)):
    start = time.monotonic()
    result = probe_ezsp(device, baudrates, timeout)
    return result, time.monotonic() - start


def test_probe_missing_device_fails_fast_and_clearly(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB-gone")
    result, took = _quick(missing)
    assert result.status == "failed" and took < 3
    assert result.text == f"probe failed: {missing}: no such device (unplugged?)"


def test_probe_loop_url_fails_fast_and_clearly() -> None:
    """bellows opens ports with serialx, which has no pyserial-style ``loop://`` handler."""
    result, took = _quick("loop://")
    assert result.status == "failed" and took < 3
    assert result.text.startswith("probe failed: loop://: ") and "loop://" in result.reason


def test_probe_not_a_serial_port(tmp_path: Path) -> None:
    plain = tmp_path / "plain-file"
    plain.touch()
    result, took = _quick(str(plain))
    assert result.status == "failed" and took < 3
    assert result.text.startswith(f"probe failed: {plain}: ")


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_probe_silent_port_times_out() -> None:
    """A port nobody answers on (a pty) is the bootloader / wrong-baud case: bounded by timeout."""
    controller, terminal = os.openpty()
    try:
        result, took = _quick(os.ttyname(terminal), 0.6, (115200, 57600))
    finally:
        os.close(controller)
        os.close(terminal)
    assert result.status == "failed"
    assert 0.5 < took < 3
    assert result.reason is not None and result.reason.count("no EZSP answer") == 2
    assert "at 57600 baud within 0.3 s" in result.reason


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_radio_that_answers_the_version_but_not_its_tokens_is_found() -> None:
    """bellows waits 10 s for each unanswered token: the probe keeps the version it read."""
    with fake_ncp("version-only") as path:
        result, took = _quick(path, 8.0)
    assert result.status == "ok", result.text
    assert (result.protocol, result.firmware, result.board) == ("EZSP v4", None, None)
    assert result.text == "EZSP v4, firmware unknown @ 115200 baud"
    assert took < BOARD_INFO_TIMEOUT + 2


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_probe_reads_the_radios_own_eui64() -> None:
    """The IEEE address a hub on the dongle takes (the kit never rewrites it)."""
    with fake_ncp("version-only", eui64=bytes.fromhex("000D6FFFFEA1B2C3")) as path:
        result, _ = _quick(path, 8.0)
    assert result.status == "ok" and result.eui64 == "000D6FFFFEA1B2C3"
    assert result.text == "EZSP v4, firmware unknown, EUI-64 000D6FFFFEA1B2C3 @ 115200 baud"
    assert result.to_json()["eui64"] == "000D6FFFFEA1B2C3"


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
@pytest.mark.parametrize("mode", ["mute", "garbled"])
def test_a_failed_probe_prints_only_its_result(mode: str) -> None:
    """With logging unconfigured (as in ``gbcs-hil dongles``), nothing of bellows reaches
    stderr: not its frame-parse warnings with their tracebacks, nor its abandoned frame
    send failing as "Task exception was never retrieved" when the process ends."""
    code = (
        "from tests.hardware.fake_ncp import fake_ncp\n"
        "from hardware.dongles import probe_ezsp\n"
        f"with fake_ncp({mode!r}) as path:\n"
        "    print(probe_ezsp(path, (115200,), 0.8).status)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "failed\n", "")


def test_match_model_needs_both_ids() -> None:
    assert match_model(port("/dev/x", 0x1CF1, 0x0030)) == model("conbee2")
    assert match_model(port("/dev/x", 0x0030, 0x1CF1)) is None


def test_a_port_listing_that_fails_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyserial raises TypeError from its listing when one port's idVendor cannot be read
    (a dongle pulled out mid-listing): `gbcs-hil dongles` printed a traceback."""
    import serial.tools.list_ports

    from hardware.dongles import system_ports

    def unreadable() -> list[object]:
        raise TypeError("int() can't convert non-string with explicit base")

    monkeypatch.setattr(serial.tools.list_ports, "comports", unreadable)
    with pytest.raises(GbcsError, match=r"cannot list the serial ports \(TypeError"):
        system_ports()


IN_USE = "in use by another program (ZHA, Zigbee2MQTT, another test run?)"
HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.read()\n"
)


@contextlib.contextmanager
def held_by_another_program(path: str) -> Iterator[None]:
    """Another process holds ``path`` locked as zigpy's serial layer (serialx), ZHA and
    Zigbee2MQTT do: flock(LOCK_EX | LOCK_NB), until its standard input closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield
    finally:
        holder.communicate(timeout=10)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_port_another_program_holds_is_said_to_be_in_use() -> None:
    """zigpy turns serialx's EBUSY into PermissionError: that was reported as a missing
    dialout group, which no group change fixes."""
    from hardware.pytest_plugin import SerialBackend

    with fake_ncp("version-only") as path, held_by_another_program(path):
        result, took = _quick(path, 5.0)
        reason = SerialBackend(path, probe_timeout=5.0).available()
    assert result.status == "failed" and took < 3
    assert result.reason == f"{path}: {IN_USE}"
    assert reason == f"--han {path}: {path}: {IN_USE}"


def _raised_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "exc",
    [
        OSError(errno.EBUSY, "Device or resource busy"),
        _raised_from(PermissionError(13, "denied"), OSError(errno.EBUSY, "busy")),
        PermissionError("The serial port is locked by another application"),  # zigpy's
    ],
)
def test_a_lock_is_found_in_the_exception_or_its_cause(exc: BaseException) -> None:
    assert ezsp_failure_reason(exc, "/dev/ttyACM0", 115200, 10) == f"/dev/ttyACM0: {IN_USE}"


def test_a_permission_failure_says_where_the_udev_rules_are() -> None:
    """A wheel has no udev/ folder: the reason names the sources that do."""
    reason = ezsp_failure_reason(PermissionError(13, "denied"), "/dev/ttyACM0", 115200, 10)
    assert reason == (
        "/dev/ttyACM0: permission denied (join group dialout, or install the udev rules: "
        "udev/install.sh in the gbcs-hil sources)"
    )
