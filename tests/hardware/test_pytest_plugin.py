"""The gbcs_hil pytest plugin: --han backends, fixtures, the hardware marker, JUnit properties."""

from __future__ import annotations

import argparse
import os
import socket
import sys
import types
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from emulators.clock import WallClock
from emulators.world import World
from gbcs.errors import GbcsError
from hardware import labgrid_support
from hardware.dongles import ProbeResult
from hardware.labgrid_support import (
    choose_serial_port,
    resolve_place,
    serial_url,
    url_for_resource,
)
from hardware.pytest_plugin import (
    EmulatedBackend,
    HanSpec,
    RealMeter,
    SerialBackend,
    ZigpySimBackend,
    hardware_skip_reason,
    make_backend,
    parse_han,
    parse_meter,
)
from tests.hardware.fake_ncp import fake_ncp

# Inner pytest runs load the plugin themselves until its pytest11 entry point is installed
# and leave out pytest-asyncio (its unset loop-scope warning would fill their output) and
# labgrid's plugin, which cannot be configured twice in one process.
INSTALLED = any(ep.name == "gbcs_hil" for ep in entry_points(group="pytest11"))
PLUGIN = [
    *("-p", "no:asyncio", "-p", "no:labgrid"),
    *([] if INSTALLED else ["-p", "hardware.pytest_plugin"]),
]

REPO = Path(__file__).resolve().parents[2]
ESME_EUI = "00DB123456780001"
CODE = "83FED3407A939723A5C639B26916D505"
CODE_CRC = CODE + "C3B5"  # the published test vector's CRC-16/X.25


@pytest.fixture
def listener() -> Iterator[str]:
    """A TCP port that accepts connections, standing in for ser2net in raw mode."""
    server = socket.create_server(("127.0.0.1", 0))
    server.listen(4)
    try:
        yield f"socket://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()


@pytest.fixture
def ncp_url() -> Iterator[str]:
    """A serial port (a pty) with a fake EZSP NCP behind it (it answers its version)."""
    if not hasattr(os, "openpty"):
        pytest.skip("needs a pseudo-terminal (POSIX)")
    with fake_ncp("version-only") as path:
        yield path


@pytest.fixture
def probe_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every EZSP probe answers: for tests about something else than the probe."""
    monkeypatch.setattr(
        "hardware.dongles.probe_ezsp",
        lambda *args, **kwargs: ProbeResult("ok", protocol="EZSP v13", firmware=None),
    )


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- --han and --meter parsing --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "kind", "backend"),
    [
        ("emulated", "emulated", EmulatedBackend),
        ("/dev/ttyUSB0", "serial", SerialBackend),
        ("/dev/zigbee/skyconnect-0", "serial", SerialBackend),
        ("socket://bench-pi:3333", "serial", SerialBackend),
        ("rfc2217://10.0.0.5:4001", "serial", SerialBackend),
        ("labgrid:warehouse-1", "labgrid", SerialBackend),
        ("sim://bench", "sim", ZigpySimBackend),
    ],
)
def test_each_han_form_gives_its_backend(value: str, kind: str, backend: type) -> None:
    spec = parse_han(value)
    assert spec.kind == kind
    made = make_backend(spec)
    assert type(made) is backend
    assert made.name == value
    assert made.hardware is (backend is SerialBackend)


@pytest.mark.parametrize(
    "value",
    ["", "zigbee", "ttyUSB0", "/dev/", "socket://host", "socket://:33", "rfc2217://h:x",
     "socket://h:70000", "labgrid:", "sim://", "sim://a b", "tcp://h:1"],
)  # fmt: skip
def test_bad_han_values_are_refused(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_han(value)


@pytest.mark.parametrize("value", ["socket://[::1:3333", "rfc2217://[pi]:4001", "socket://][:1"])
def test_a_bracketed_host_that_is_no_address_says_why(value: str) -> None:
    """urlsplit raises ValueError there, which argparse words as 'invalid parse_han value'."""
    with pytest.raises(argparse.ArgumentTypeError, match=r"needs a host and a TCP port"):
        parse_han(value)


def test_meter_option_forms() -> None:
    meter = parse_meter(f"{ESME_EUI}:{CODE}")
    assert meter == RealMeter(bytes.fromhex(ESME_EUI), bytes.fromhex(CODE), "esme")
    gsme = parse_meter(f"00-DB-12-34-56-78-00-02:{CODE_CRC}:gsme")
    assert gsme.kind == "gsme" and gsme.install_code == bytes.fromhex(CODE)  # CRC checked, dropped
    spaced = parse_meter(f"{ESME_EUI}:83:FE:D3:40:7A:93:97:23:A5:C6:39:B2:69:16:D5:05")
    assert spaced.install_code == bytes.fromhex(CODE)


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (f"{ESME_EUI}", "EUI64:INSTALLCODE"),
        (f"00DB1234567800:{CODE}", "EUI-64"),
        (f"00DB12345678000Z:{CODE}", "EUI-64"),
        (f"{ESME_EUI}:{CODE[:-2]}", "install code"),
        (f"{ESME_EUI}:{CODE[:-1]}X", "install code"),
        (f"{ESME_EUI}:{CODE}0000", "install code"),  # wrong CRC
    ],
)
def test_bad_meter_values_are_refused(value: str, says: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=says):
        parse_meter(value)


# --- Backends ------------------------------------------------------------------------------


def test_emulated_backend_is_usable_and_changes_nothing() -> None:
    backend = EmulatedBackend()
    world = World(0)
    radio = world.hub_radio
    assert backend.available() is None
    backend.prepare(world)
    assert world.hub_radio is radio
    assert backend.describe() == {"han_backend": "emulated"}
    assert "needs a real ZigBee dongle" in (hardware_skip_reason(backend) or "")


def test_serial_backend_on_a_missing_device_says_why() -> None:
    backend = SerialBackend("/dev/gbcs-hil-no-such-dongle")
    reason = backend.available()
    assert reason is not None and "cannot open /dev/gbcs-hil-no-such-dongle" in reason
    assert hardware_skip_reason(backend) is None  # a dongle was named: its absence is no skip
    with pytest.raises(GbcsError, match="cannot open"):
        backend.prepare(World(0))


def test_serial_backend_on_a_port_with_an_ezsp_radio(ncp_url: str) -> None:
    backend = SerialBackend(ncp_url)
    assert backend.available() is None
    assert hardware_skip_reason(backend) is None
    # A radio that answers puts the world on the wall clock, ready for a bellows hub radio.
    world = World(0)
    backend.prepare(world)
    try:
        assert isinstance(world.clock, WallClock)
        assert world.headend.clock is world.clock
    finally:
        backend.release()


RECORDED_DONGLE = """
import pytest
from hardware.zigpy_han import to_eui64
from tests.hardware.recorded_ezsp import Wire, recorded_bellows

@pytest.fixture(scope="session", autouse=True)
def recorded(han):
    wire = Wire(to_eui64(bytes.fromhex("{eui}")))
    han.app_factory = recorded_bellows(wire, serial={serial})
"""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_chf_on_a_dongle_has_the_dongles_own_eui64(pytester: pytest.Pytester) -> None:
    """The probe reads the dongle's EUI-64 and the chf fixture gives it to the hub: the kit
    never asks a dongle to take the hub's. (Bring-up is bellows on a recorded NCP.)"""
    eui = "000D6FFFFEA1B2C3"
    pytester.makeconftest(RECORDED_DONGLE.format(eui=eui, serial=False))
    pytester.makepyfile(
        "def test_c(han, chf):\n"
        f"    assert han.hub_eui() == chf.eui64 == bytes.fromhex({eui!r})\n"
        "    assert chf.node.joined\n"
    )
    with fake_ncp("version-only", eui64=bytes.fromhex(eui)) as path:
        result = pytester.runpytest(*PLUGIN, f"--han={path}")
    result.assert_outcomes(passed=1)


RELEASED = """
import fcntl
import os
import threading

from emulators.world import World

def _bellows():
    return [t.name for t in threading.enumerate() if t.name.startswith("bellows")]

def test_a(chf):
    assert chf.node.joined and _bellows()  # bellows' (non-daemon) serial thread runs

def test_b(han):
    assert not _bellows()  # test_a's world let the dongle go at its teardown
    fd = os.open(han.url, os.O_RDWR | os.O_NOCTTY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # and the port is free
    finally:
        os.close(fd)

def test_c(han):
    world = World(0)
    han.prepare(world)  # no world fixture: only the end of the session lets it go
    assert world.add_hub(han.bench, han.hub_eui()).node.joined and _bellows()
"""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_dongle_is_let_go_after_each_test_and_the_session_ends(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bellows' serial thread is not a daemon: Python waits for it before running atexit
    handlers, so a session whose last world held the dongle never ended. The world fixture
    lets the dongle go at its teardown, and the end of the session lets the last one go.
    (bellows' real serial connection and thread on a fake NCP; then commands recorded.)"""
    eui = "000D6FFFFEA1B2C3"
    pytester.makeconftest(RECORDED_DONGLE.format(eui=eui, serial=True))
    pytester.makepyfile(RELEASED)
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the subprocess runs in pytester's folder
    with fake_ncp("version-only", eui64=bytes.fromhex(eui)) as path:
        result = pytester.runpytest_subprocess(*PLUGIN, f"--han={path}", timeout=60)
    result.assert_outcomes(passed=3)
    assert result.ret == 0


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_dongle_lost_in_a_test_fails_the_later_ones_at_once(pytester: pytest.Pytester) -> None:
    eui = "000D6FFFFEA1B2C3"
    pytester.makeconftest(RECORDED_DONGLE.format(eui=eui, serial=False))
    pytester.makepyfile(
        "def test_a(chf):\n"
        "    chf.node.app.connection_lost(OSError(5, 'Input/output error'))\n\n"
        "def test_b(chf):\n"
        "    pass\n"
    )
    with fake_ncp("version-only", eui64=bytes.fromhex(eui)) as path:
        result = pytester.runpytest(*PLUGIN, f"--han={path}")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*--han {path}: bench CHF: radio lost: {path}: OSError: [[]Errno 5[]] "
            "Input/output error (earlier test; not retried)"
        ]
    )


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_a_silent_dongle_known_at_another_rate_says_which(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The plugin opens every port at 115200 baud unless told: a ZBT-2, which the kit lists
    at 460800, failed with no word of the rate it runs at nor how to give it."""
    import serial.tools.list_ports

    with fake_ncp("mute") as path:
        zbt2 = types.SimpleNamespace(
            device=path, vid=0x303A, pid=0x831A, location=None, serial_number="0123ABCD"
        )
        monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [zbt2])
        reasons = [
            SerialBackend(url, probe_timeout=1.0).available()
            for url in (path, f"{path}?flow_control=hardware", f"{path}?baudrate=460800")
        ]
    silent = (
        "no EZSP answer from {path} at {rate} baud within 1 s (not an EZSP radio, wrong baud "
        "rate, in its bootloader, or in use)"
    )
    hint = f"; {path} is a 303a:831a zbt2, which runs at 460800 or 115200 baud: try --han {path}"
    assert reasons == [
        f"--han {path}: {silent.format(path=path, rate=115200)}{hint}?baudrate=460800",
        f"--han {path}?flow_control=hardware: {silent.format(path=path, rate=115200)}"
        f"{hint}?baudrate=460800&flow_control=hardware",
        f"--han {path}?baudrate=460800: {silent.format(path=path, rate=460800)}",
    ]


def test_the_han_help_says_how_to_set_the_line(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest(*PLUGIN, "--help")
    result.stdout.fnmatch_lines(["*--han=BACKEND*"])
    help_text = " ".join(result.stdout.str().split())
    assert "?baudrate=N (default 115200)" in help_text
    assert "?flow_control=hardware|software" in help_text


def test_serial_backend_on_a_closed_tcp_port() -> None:
    backend = SerialBackend(f"socket://127.0.0.1:{closed_port()}")
    assert "cannot open socket://127.0.0.1" in (backend.available() or "")


def test_serial_backend_on_a_port_that_opens_but_is_silent(listener: str) -> None:
    """The port opens, nothing speaks EZSP: that is the reason, once, and prepare fails on
    it; tests that never built a hub passed against such a port before."""
    backend = SerialBackend(listener, probe_timeout=1.0)
    reason = backend.available()
    assert reason == (
        f"--han {listener}: no EZSP answer from {listener} at 115200 baud within 1 s "
        "(not an EZSP radio, wrong baud rate, in its bootloader, or in use)"
    )
    assert backend.available() is reason  # checked once a session
    with pytest.raises(GbcsError, match="no EZSP answer"):
        backend.prepare(World(0))


def test_labgrid_backend_resolves_lazily(listener: str, probe_passes: None) -> None:
    asked: list[str] = []

    def resolve(place: str) -> str:
        asked.append(place)
        return listener

    backend = SerialBackend(place="bench-1", resolve=resolve)
    assert backend.describe() == {"han_backend": "labgrid:bench-1"}
    assert asked == []  # nothing resolved before it is needed
    assert backend.available() is None
    assert backend.available() is None  # checked once
    assert asked == ["bench-1"]
    assert backend.describe()["han_port"] == listener


def test_labgrid_backend_unresolvable_place_is_the_reason() -> None:
    def resolve(place: str) -> str:
        raise GbcsError(f"place {place} is not acquired")

    backend = SerialBackend(place="bench-2", resolve=resolve)
    assert backend.available() == "--han labgrid:bench-2: place bench-2 is not acquired"


def test_sim_backend_without_sim_radio_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hardware.sim_radio", None)
    backend = ZigpySimBackend("bench")
    reason = backend.available()
    assert reason is not None and "hardware.sim_radio cannot be imported" in reason
    with pytest.raises(GbcsError, match="sim_radio"):
        backend.prepare(World(0))


def test_sim_backend_without_a_factory_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hardware.sim_radio", types.ModuleType("hardware.sim_radio"))
    reason = ZigpySimBackend("bench").available()
    assert reason is not None and "has no sim_hub_radio hub-radio factory" in reason


def test_sim_backend_gives_hubs_the_zigpy_radio() -> None:
    sim_radio = pytest.importorskip("hardware.sim_radio")
    world = World(0)
    backend = ZigpySimBackend("bench")
    assert backend.available() is None
    backend.prepare(world)
    assert world.hub_radio is sim_radio.sim_hub_radio
    assert backend.bench == "bench" and "han_zigpy" in backend.describe()


# --- labgrid: resource to URL, and the coordinator -----------------------------------------


def test_labgrid_protocols_map_to_pyserial_urls() -> None:
    assert serial_url("bench-pi", 3333, "raw") == "socket://bench-pi:3333"
    assert serial_url("bench-pi", 3333, "rfc2217") == "rfc2217://bench-pi:3333"
    assert serial_url("fd00::5", 4001, "raw") == "socket://[fd00::5]:4001"
    params = {"host": "exp-1", "port": 40123, "speed": 115200, "protocol": "raw"}
    assert url_for_resource(params) == "socket://exp-1:40123"
    exported = types.SimpleNamespace(host="exp-1", port=40124, protocol="rfc2217")
    assert url_for_resource(exported) == "rfc2217://exp-1:40124"
    assert url_for_resource({"host": "exp-1", "port": 1}) == "rfc2217://exp-1:1"  # labgrid default


@pytest.mark.parametrize(
    ("host", "port", "protocol", "says"),
    [
        ("h", 1, "telnet", "not supported"),
        ("", 1, "raw", "no host"),
        ("h", None, "raw", "no usable TCP port"),
        ("h", 0, "raw", "no usable TCP port"),
    ],
)
def test_labgrid_bad_resources(host: str, port: Any, protocol: str, says: str) -> None:
    with pytest.raises(GbcsError, match=says):
        serial_url(host, port, protocol)


def test_labgrid_real_network_serial_port_maps() -> None:
    resource_module = pytest.importorskip("labgrid.resource")
    port = resource_module.NetworkSerialPort(None, "han", host="exp", port=5000, protocol="raw")
    assert url_for_resource(port) == "socket://exp:5000"


def test_labgrid_place_with_several_ports_needs_one_named_han() -> None:
    assert choose_serial_port("p", {"dongle": 1}) == ("dongle", 1)
    assert choose_serial_port("p", {"console": 1, "han": 2}) == ("han", 2)
    with pytest.raises(GbcsError, match="several serial ports"):
        choose_serial_port("p", {"console": 1, "dongle": 2})
    with pytest.raises(GbcsError, match="has no NetworkSerialPort"):
        choose_serial_port("p", {})


def test_missing_labgrid_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("labgrid", "labgrid.remote", "labgrid.remote.client"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(
        GbcsError, match=r"labgrid is not installed.*pip install 'gbcs-hil\[labgrid\]'"
    ):
        resolve_place("bench-1")
    reason = SerialBackend(place="bench-1").available()  # says --han labgrid:bench-1 once
    assert (
        reason
        == "--han labgrid:bench-1: labgrid is not installed (pip install 'gbcs-hil[labgrid]')"
    )


class _FakeError(Exception):
    def __str__(self) -> str:
        return f"Error: {self.args[0]}"


class _Entry:
    def __init__(self, params: dict[str, Any], avail: bool = True) -> None:
        self.args = params
        self.avail = avail
        self.extra: dict[str, Any] = {}


class _FakeSession:
    """What resolve_place uses of labgrid's ClientSession."""

    def __init__(self, places: dict[str, Any]) -> None:
        import asyncio

        self.places = places
        self.loop = asyncio.new_event_loop()
        self.stopped = False

    def get_place(self, name: str) -> Any:
        if name not in self.places:
            raise _FakeError(f"place pattern {name} matches nothing")
        return name

    def get_target_resources(self, place: str) -> dict[tuple[str, str], Any]:
        resources = self.places[place]
        if resources is None:
            raise _FakeError(f"place {place} is not acquired")
        return resources

    async def stop(self) -> None:
        self.stopped = True

    async def close(self) -> None:
        pass


@pytest.fixture
def fake_labgrid(monkeypatch: pytest.MonkeyPatch) -> _FakeSession:
    raw = {"host": "exp-1", "port": 40123, "speed": 115200, "protocol": "raw"}
    session = _FakeSession(
        {
            "raw-place": {("han", "NetworkSerialPort"): _Entry(raw)},
            "rfc-place": {
                ("console", "NetworkSerialPort"): _Entry({**raw, "protocol": "rfc2217"}),
                ("han", "NetworkSerialPort"): _Entry({**raw, "port": 40124, "protocol": "rfc2217"}),
                ("power", "NetworkPowerPort"): _Entry({"host": "pdu"}),
            },
            "idle-place": None,
            "empty-place": {("power", "NetworkPowerPort"): _Entry({"host": "pdu"})},
            "unplugged": {("han", "NetworkSerialPort"): _Entry(raw, avail=False)},
        }
    )
    client = types.ModuleType("labgrid.remote.client")
    client.Error = _FakeError  # type: ignore[attr-defined]
    client.start_session = lambda address: session  # type: ignore[attr-defined]
    for name in ("labgrid", "labgrid.remote"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "labgrid.remote.client", client)
    monkeypatch.delenv("LG_PROXY", raising=False)
    yield session
    session.loop.close()


def test_labgrid_place_resolves_through_the_coordinator(fake_labgrid: _FakeSession) -> None:
    assert resolve_place("raw-place") == "socket://exp-1:40123"
    assert fake_labgrid.stopped
    assert resolve_place("rfc-place") == "rfc2217://exp-1:40124"


@pytest.mark.parametrize(
    ("place", "says"),
    [
        ("idle-place", r"idle-place is not acquired \(labgrid-client -p idle-place acquire\)"),
        ("nowhere", "matches nothing"),
        ("empty-place", "has no NetworkSerialPort"),
        ("unplugged", "serial port han is not available"),
    ],
)
def test_labgrid_place_errors(fake_labgrid: _FakeSession, place: str, says: str) -> None:
    with pytest.raises(GbcsError, match=says):
        resolve_place(place)


@pytest.mark.parametrize("place", ["idle-place", "nowhere", "empty-place", "unplugged"])
def test_labgrid_backend_reason_names_the_place_once(
    fake_labgrid: _FakeSession, place: str
) -> None:
    reason = SerialBackend(place=place).available()
    assert reason is not None and reason.startswith(f"--han labgrid:{place}: ")
    assert reason.count("--han") == 1 and "labgrid place" not in reason


def test_labgrid_hint_names_the_extra() -> None:
    assert labgrid_support.LABGRID_HINT == "pip install 'gbcs-hil[labgrid]'"


# --- The plugin in a pytest run ---------------------------------------------------------------


BACKEND_TEST = """
def test_backend(han):
    print("BACKEND", type(han).__name__, han.name)
"""


@pytest.mark.parametrize(
    ("option", "backend"),
    [
        ([], "EmulatedBackend emulated"),
        (["--han", "emulated"], "EmulatedBackend emulated"),
        (["--han", "/dev/ttyUSB0"], "SerialBackend /dev/ttyUSB0"),
        (["--han=socket://bench-pi:3333"], "SerialBackend socket://bench-pi:3333"),
        (["--han", "rfc2217://bench-pi:4001"], "SerialBackend rfc2217://bench-pi:4001"),
        (["--han", "labgrid:warehouse-1"], "SerialBackend labgrid:warehouse-1"),
        (["--han", "sim://bench"], "ZigpySimBackend sim://bench"),
    ],
)
def test_han_option_in_a_run(pytester: pytest.Pytester, option: list[str], backend: str) -> None:
    pytester.makepyfile(BACKEND_TEST)
    result = pytester.runpytest(*PLUGIN, "-s", *option)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"*BACKEND {backend}*"])


@pytest.mark.parametrize(
    ("option", "says"),
    [
        (["--han", "zigbee"], "*argument --han: 'zigbee' is not emulated, a serial device*"),
        (["--meter", f"XYZ:{CODE}"], "*argument --meter: 'XYZ:*EUI-64 'XYZ'*"),
        (["--meter", f"{ESME_EUI}:1234"], "*argument --meter:*install code*length*"),
        (["--han-seed", "many"], "*argument --han-seed*"),
        (["--meter", f"{ESME_EUI}:{CODE}", "--meter", f"{ESME_EUI}:{CODE}"], "*given twice*"),
        # Out of a world's seed range (an error in every test before), and a second meter
        # of one kind (silently unused before).
        (["--han-seed", str(2**63)], "*argument --han-seed: seed * is outside*"),
        (
            ["--meter", f"{ESME_EUI}:{CODE}", "--meter", f"00DB1234567890AA:{CODE}"],
            "*a second ESME*",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    pytester: pytest.Pytester, option: list[str], says: str
) -> None:
    pytester.makepyfile(BACKEND_TEST)
    result = pytester.runpytest(*PLUGIN, *option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([says])


HARDWARE_TEST = """
import pytest

@pytest.mark.hardware
def test_on_a_dongle(han):
    assert han.hardware

def test_anywhere(han):
    pass
"""


def test_hardware_marker_skipped_on_the_emulated_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HARDWARE_TEST)
    result = pytester.runpytest(*PLUGIN, "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs a real ZigBee dongle; --han is emulated*"])


def test_hardware_marker_skipped_on_the_sim_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HARDWARE_TEST)
    result = pytester.runpytest(*PLUGIN, "-rs", "--han", "sim://bench")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*needs a real ZigBee dongle; --han is sim://bench*"])


def test_hardware_marker_fails_when_the_named_dongle_is_absent(pytester: pytest.Pytester) -> None:
    """A dongle asked for with --han that is not there is a failure, not a green run."""
    pytester.makepyfile(HARDWARE_TEST)
    result = pytester.runpytest(*PLUGIN, "--han", "/dev/gbcs-hil-no-such-dongle")
    result.assert_outcomes(passed=1, errors=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["--han /dev/gbcs-hil-no-such-dongle: cannot open /dev/gbcs-hil-no-such-dongle: *"]
    )
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*def test_on_a_dongle*")


def test_hardware_marker_runs_on_a_port_that_answers_ezsp(
    pytester: pytest.Pytester, ncp_url: str
) -> None:
    pytester.makepyfile(HARDWARE_TEST)
    result = pytester.runpytest(*PLUGIN, "--han", ncp_url)
    result.assert_outcomes(passed=2)


def test_hardware_and_world_tests_fail_on_a_silent_port(
    pytester: pytest.Pytester, listener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A port that opens but does not answer EZSP fails a hardware test that builds no hub
    and a world test, not only tests that build a CHF (they passed before)."""
    monkeypatch.setattr(SerialBackend, "PROBE_TIMEOUT", 1.0)
    pytester.makepyfile(HARDWARE_TEST + "\n\ndef test_world(world):\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "--han", listener)
    result.assert_outcomes(passed=1, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"*--han {listener}: no EZSP answer from {listener} *"])
    result.stdout.no_fnmatch_line("*Traceback*")


WORLD_TEST = """
from emulators.scenarios import Run
from emulators.clock import WallClock
from emulators.world import World

def test_join_and_read(han, world, chf, esme):
    assert isinstance(world, World) and world.seed == {seed}
    assert chf.place == "bench" and esme.place == "bench"
    run = Run("plugin", world)
    assert run.add_device(chf, esme).ok
    assert run.wait_joined(esme, chf, "HAN join (install code)").ok
    assert world.joined_to(esme) == chf.eui64
    cs07 = run.join_details(chf, esme)
    assert (cs07.use_case, cs07.result) == ("CS07", "ok")
    print("ESME", esme.eui64.hex().upper())

def test_gsme_too(world, chf, gsme):
    run = Run("plugin", world)
    assert run.add_device(chf, gsme).ok
    assert run.wait_joined(gsme, chf, "HAN join (install code)").ok
"""


def test_fixtures_give_a_working_world(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WORLD_TEST.format(seed=5))
    result = pytester.runpytest(*PLUGIN, "-s", "--han-seed", "5")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["gbcs-hil HAN: emulated (seed 5)"])


def test_meter_option_names_the_emulated_meter(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(WORLD_TEST.format(seed=0))
    result = pytester.runpytest(*PLUGIN, "-s", "--meter", f"{ESME_EUI}:{CODE_CRC}")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"*ESME {ESME_EUI}"])


REAL_METER_TEST = """
from hardware.pytest_plugin import RealMeter

def test_real_meter(esme):
    assert isinstance(esme, RealMeter)
    print("REAL", esme.name, esme.install_code.hex().upper())

def test_no_real_gsme(gsme):
    pass
"""


def test_meter_option_on_a_dongle_is_the_real_meter(
    pytester: pytest.Pytester, listener: str
) -> None:
    pytester.makepyfile(REAL_METER_TEST)
    result = pytester.runpytest(
        *PLUGIN, "-s", "-rs", "--han", listener, "--meter", f"{ESME_EUI}:{CODE}"
    )
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        [f"*REAL ESME {ESME_EUI} {CODE}", "*--meter EUI64:INSTALLCODE:gsme*"]
    )


@pytest.mark.parametrize(
    ("han", "says"),
    [
        ("/dev/gbcs-hil-no-such-dongle", "cannot open /dev/gbcs-hil-no-such-dongle: *"),
        (f"socket://127.0.0.1:{closed_port()}", "cannot open socket://127.0.0.1:*"),
        ("labgrid:place1", "labgrid is not installed (pip install 'gbcs-hil[labgrid]')"),
    ],
    ids=["device", "tcp", "labgrid"],
)
def test_world_and_chf_fail_when_the_named_dongle_is_unusable(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, han: str, says: str
) -> None:
    """Unmarked tests that need the HAN fail too: a dongle named with --han is not optional."""
    for name in ("labgrid", "labgrid.remote", "labgrid.remote.client"):
        monkeypatch.setitem(sys.modules, name, None)  # as if labgrid were not installed
    pytester.makepyfile("def test_w(world):\n    pass\n\ndef test_c(chf):\n    pass\n")
    result = pytester.runpytest(*PLUGIN, f"--han={han}")
    result.assert_outcomes(errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines([f"--han {han}: {says}"] * 2, consecutive=False)
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line(f"*--han {han}*--han {han}*")  # said once


SIM_UNUSABLE = """
import pytest
from hardware.pytest_plugin import ZigpySimBackend

class Broken(ZigpySimBackend):
    def available(self):
        return "--han sim://bench: hardware.sim_radio cannot be imported (test)"

@pytest.fixture
def han():
    return Broken("bench")
"""


def test_world_skips_when_the_sim_backend_is_unusable(pytester: pytest.Pytester) -> None:
    """Not a dongle the user asked for: the emulated backends still skip."""
    pytester.makeconftest(SIM_UNUSABLE)
    pytester.makepyfile("def test_w(world):\n    pass\n")
    result = pytester.runpytest(*PLUGIN, "-rs", "--han", "sim://bench")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*sim_radio cannot be imported (test)*"])


NOT_A_RADIO = """
import pytest
from hardware.pytest_plugin import SerialBackend

@pytest.fixture(scope="session")
def han(request):
    backend = SerialBackend(
        request.config.getoption("han").target, connect_timeout=1.0, probe_timeout=1.0
    )
    yield backend
    backend.release()
"""


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_chf_on_a_port_that_is_no_radio_fails_in_one_line(pytester: pytest.Pytester) -> None:
    """The port opens but nothing speaks EZSP: every test fails with the reason, no traceback."""
    pytester.makeconftest(NOT_A_RADIO)  # the same backend, a short bring-up bound
    pytester.makepyfile("def test_a(chf):\n    pass\n\ndef test_b(chf):\n    pass\n")
    controller, terminal = os.openpty()
    device = os.ttyname(terminal)
    try:
        result = pytester.runpytest(*PLUGIN, f"--han={device}")
    finally:
        os.close(controller)
        os.close(terminal)
    result.assert_outcomes(errors=2)
    why = (
        f"--han {device}: no EZSP answer from {device} at 115200 baud within 1 s "
        "(not an EZSP radio, wrong baud rate, in its bootloader, or in use)"
    )
    result.stdout.fnmatch_lines([why, why])  # found once, when first needed
    result.stdout.no_fnmatch_line("*Traceback*")
    result.stdout.no_fnmatch_line("*GbcsError*")
    result.stdout.no_fnmatch_line("*TimeoutError:")


def _junit_properties(path: Any) -> dict[str, dict[str, str]]:
    root = ET.parse(path).getroot()
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def test_junit_cases_carry_the_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(HARDWARE_TEST)
    result = pytester.runpytest(*PLUGIN, "--junitxml=out.xml")
    result.assert_outcomes(passed=1, skipped=1)
    cases = _junit_properties(pytester.path / "out.xml")
    assert cases == {
        "test_on_a_dongle": {"han_backend": "emulated"},
        "test_anywhere": {"han_backend": "emulated"},
    }


FOREIGN_TEST = """
import pytest

@pytest.fixture
def world():
    return "their own world"

@pytest.mark.hardware
def test_their_own_hardware_marker():
    pass

@pytest.mark.hardware
def test_their_own_world_fixture(world):
    assert world == "their own world"

def test_theirs():
    pass
"""


def test_another_projects_tests_are_left_alone(pytester: pytest.Pytester) -> None:
    """The plugin loads wherever the kit is installed: a project's own ``hardware`` marker
    and JUnit report are not the kit's business when its tests use none of its fixtures."""
    pytester.makepyfile(FOREIGN_TEST)
    result = pytester.runpytest(*PLUGIN, "--junitxml=out.xml", "-rs")
    result.assert_outcomes(passed=3)
    assert _junit_properties(pytester.path / "out.xml") == {
        "test_their_own_hardware_marker": {},
        "test_their_own_world_fixture": {},
        "test_theirs": {},
    }


def test_junit_names_the_dongle(
    pytester: pytest.Pytester, listener: str, probe_passes: None
) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.hardware
        def test_flash(han):
            han.serial_number = "A1B2C3"
            han.firmware = "EmberZNet 7.4.4.0"
        """
    )
    result = pytester.runpytest(*PLUGIN, "--junitxml=out.xml", "--han", listener)
    result.assert_outcomes(passed=1)
    props = _junit_properties(pytester.path / "out.xml")["test_flash"]
    assert props == {
        "han_backend": listener,
        "han_dongle_serial": "A1B2C3",
        "han_firmware": "EmberZNet 7.4.4.0",
    }


def test_spec_default_is_emulated() -> None:
    assert make_backend(HanSpec("emulated")).name == "emulated"


def test_the_dongle_serial_comes_from_the_port_listing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The JUnit serial is read from the same listing `gbcs-hil dongles` uses; a listing
    that fails (a dongle pulled out meanwhile) leaves it unknown, not a traceback."""
    import serial.tools.list_ports

    from hardware.pytest_plugin import _usb_serial_number

    port = types.SimpleNamespace(device="/dev/ttyUSB7", serial_number="A1B2C3")
    monkeypatch.setattr(serial.tools.list_ports, "comports", lambda: [port])
    assert _usb_serial_number("/dev/ttyUSB7") == "A1B2C3"
    assert _usb_serial_number("socket://pi:3333") is None

    def unreadable() -> list[Any]:
        raise OSError("No such file or directory: '/sys/bus/usb/devices/1-1/serial'")

    monkeypatch.setattr(serial.tools.list_ports, "comports", unreadable)
    assert _usb_serial_number("/dev/ttyUSB7") is None
