"""pytest plugin: the same tests on the emulated HAN, zigpy's simulated radio or a real dongle.

Registered through the ``pytest11`` entry point ``gbcs_hil`` (before that is
installed: ``pytest -p hardware.pytest_plugin``). ``--han`` picks the backend
that gives every hub its radio:

* ``emulated`` (default): the emulated coordinator of :mod:`emulators.node`;
* ``sim://PLACE``: zigpy driving the emulated radio (:mod:`hardware.sim_radio`),
  the fixtures' bench being PLACE;
* ``/dev/ttyUSB0``, ``/dev/zigbee/...``, ``socket://HOST:PORT``,
  ``rfc2217://HOST:PORT``: a real dongle, local or behind ser2net;
* ``labgrid:PLACE``: the dongle in an acquired labgrid place
  (:mod:`hardware.labgrid_support`).

Fixtures: ``han`` (the backend), ``world`` (an :class:`emulators.world.World`
prepared by it, seeded by ``--han-seed``), ``chf`` (a hub at place "bench";
on a dongle with the dongle's own EUI-64, which the kit never rewrites),
``esme`` and ``gsme`` (emulated meters on the bench; on a real dongle the
meters named with ``--meter EUI64:INSTALLCODE[:esme|:gsme]``). Tests marked
``hardware`` are skipped unless ``--han`` names a real dongle. A dongle named
with ``--han`` that is missing or does not come up fails the tests that need it
(marked ``hardware``, or using ``world`` or ``chf``) with the reason, instead
of skipping them: a hardware run with the dongle unplugged must not pass having
run nothing. Every JUnit test case carries ``han_backend`` (and the dongle's
serial and firmware when known). All of this applies only to tests that use
one of the fixtures: the plugin loads wherever the kit is installed, and
another project's tests (and its own ``hardware`` marker) are left alone.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import pytest

from gbcs.errors import GbcsError

if TYPE_CHECKING:  # the emulators are imported when a fixture needs them, not at every start-up
    from emulators.world import Hub, MeterUnit, World

__all__ = [
    "BENCH",
    "EmulatedBackend",
    "HanBackend",
    "HanSpec",
    "RealMeter",
    "SerialBackend",
    "ZigpySimBackend",
    "make_backend",
    "parse_han",
    "parse_meter",
]

BENCH = "bench"  # the place the chf, esme and gsme fixtures are put
BAUDRATE = 115200  # EZSP dongles' usual rate (the exporter example uses the same)
OPEN_TIMEOUT = 2.0  # seconds to open a port when checking it is there
SIM_RADIO = "hardware.sim_radio"  # zigpy on the emulated radio (imported only for sim://)
SIM_FACTORY = "sim_hub_radio"  # its World.hub_radio factory
HAN_FORMS = (
    "emulated, a serial device (/dev/ttyUSB0, /dev/zigbee/...), socket://HOST:PORT, "
    "rfc2217://HOST:PORT, labgrid:PLACE or sim://PLACE"
)
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")
_WINDOWS_PORT = re.compile(r"COM\d+", re.IGNORECASE)
MARKER = "hardware: needs a physical ZigBee dongle (opt-in)"


# --- Option values --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HanSpec:
    """A parsed ``--han``: ``kind`` emulated, serial, sim or labgrid, and its target."""

    kind: str
    target: str = ""
    text: str = "emulated"


def parse_han(text: str) -> HanSpec:
    """Check a ``--han`` value; raises ``argparse.ArgumentTypeError`` so pytest reports usage."""
    value = text.strip()
    bad = argparse.ArgumentTypeError(f"{text!r} is not {HAN_FORMS}")
    if value == "emulated":
        return HanSpec("emulated", "", value)
    if value.startswith("sim://"):
        place = value.removeprefix("sim://").rstrip("/")
        if not _NAME.fullmatch(place):
            raise argparse.ArgumentTypeError(f"{text!r}: sim:// needs a place name (sim://bench)")
        return HanSpec("sim", place, value)
    if value.startswith("labgrid:"):
        place = value.removeprefix("labgrid:")
        if not place or any(c.isspace() for c in place):
            raise argparse.ArgumentTypeError(f"{text!r}: labgrid: needs a place (labgrid:PLACE)")
        return HanSpec("labgrid", place, value)
    if value.startswith(("socket://", "rfc2217://")):
        try:  # an unclosed or non-address [IPv6] host is a ValueError of urlsplit's
            parts = urlsplit(value)
            host, port = parts.hostname, parts.port
        except ValueError:
            host = port = None
        if not host or port is None or port == 0:
            raise argparse.ArgumentTypeError(f"{text!r}: needs a host and a TCP port (HOST:PORT)")
        return HanSpec("serial", value, value)
    if value.startswith("/dev/") and value != "/dev/":
        return HanSpec("serial", value, value)
    if _WINDOWS_PORT.fullmatch(value):
        return HanSpec("serial", value, value)
    raise bad


@dataclass(frozen=True, slots=True)
class RealMeter:
    """A meter under test given with ``--meter``: the plugin knows only its identity."""

    eui64: bytes
    install_code: bytes  # 16 bytes as GBCS carries it (a CRC given on the command line is checked)
    kind: str = "esme"

    @property
    def name(self) -> str:
        return f"{self.kind.upper()} {self.eui64.hex().upper()}"


def parse_meter(text: str) -> RealMeter:
    """``EUI64:INSTALLCODE`` with an optional ``:esme`` or ``:gsme`` (default esme)."""
    from emulators.zigbee.install_code import INSTALL_CODE_LENGTH, parse_install_code
    from gbcs.primitives import eui64 as parse_eui64

    eui_text, sep, rest = text.strip().partition(":")
    if not sep or not rest:
        raise argparse.ArgumentTypeError(f"{text!r} is not EUI64:INSTALLCODE[:esme|:gsme]")
    kind = "esme"
    head, _, tail = rest.rpartition(":")
    if head and tail.lower() in ("esme", "gsme"):
        rest, kind = head, tail.lower()
    try:
        eui = parse_eui64(eui_text)
    except GbcsError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: EUI-64 {eui_text!r}: {e}") from None
    try:
        code = parse_install_code(rest)
    except GbcsError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: install code: {e}") from None
    return RealMeter(eui, code[:INSTALL_CODE_LENGTH], kind)


# --- Backends ------------------------------------------------------------------------------


class HanBackend:
    """What gives the world's hubs their radio; ``hardware`` when it is a real dongle."""

    name: str = "emulated"
    hardware: bool = False
    bench: str = BENCH  # the place the chf, esme and gsme fixtures are put

    def describe(self) -> dict[str, str]:
        """What a JUnit report should say about the HAN: at least ``han_backend``."""
        return {"han_backend": self.name}

    def available(self) -> str | None:
        """None when the backend can be used, else why not (what tests skip or fail with)."""
        return None

    def prepare(self, world: World) -> None:
        """Set the world up for this backend before any hub is added."""

    def hub_eui(self) -> bytes | None:
        """The EUI-64 the bench hub must have (a dongle's own), or None: any."""
        return None

    def release(self) -> None:
        """Let the radio go after a test and at the end of the session (nothing to let go)."""


class EmulatedBackend(HanBackend):
    """The default: hubs keep the emulated coordinator; nothing to prepare."""

    name = "emulated"


class ZigpySimBackend(HanBackend):
    """``sim://PLACE``: zigpy's application stack driving the emulated radio.

    Every hub of the world gets :mod:`hardware.sim_radio`'s zigpy radio, on
    the medium of its own place (which zigpy knows as ``sim://<place>``);
    PLACE is where the ``chf``, ``esme`` and ``gsme`` fixtures are put.
    """

    def __init__(self, place: str) -> None:
        self.place = place
        self.bench = place
        self.name = f"sim://{place}"

    def _factory(self) -> tuple[Callable[..., Any] | None, str | None]:
        try:
            module = importlib.import_module(SIM_RADIO)
        except ImportError as e:
            return None, f"--han {self.name}: {SIM_RADIO} cannot be imported ({e})"
        factory = getattr(module, SIM_FACTORY, None)
        if not callable(factory):
            return None, f"--han {self.name}: {SIM_RADIO} has no {SIM_FACTORY} hub-radio factory"
        return factory, None

    def describe(self) -> dict[str, str]:
        out = {"han_backend": self.name}
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            out["han_zigpy"] = importlib.metadata.version("zigpy")
        return out

    def available(self) -> str | None:
        return self._factory()[1]

    def prepare(self, world: World) -> None:
        factory, reason = self._factory()
        if factory is None:
            raise GbcsError(reason or f"--han {self.name} is not usable")
        world.hub_radio = factory


def _usb_serial_number(device: str) -> str | None:
    """The USB serial number of a local port (udev symlinks resolved), if pyserial knows it."""
    from hardware.dongles import local_port

    port = local_port(device)
    return None if port is None else port.serial_number or None


def _rate_hint(settings: Any) -> str:
    """For a silent local port the kit knows by its VID:PID at another rate: which to try
    (every port is opened at 115200 baud unless the URL says otherwise)."""
    from hardware.dongles import known_model

    model = known_model(settings.path)
    if model is None or model.baudrates[0] == settings.baudrate:
        return ""
    rates = " or ".join(str(rate) for rate in model.baudrates)
    query = f"?baudrate={model.baudrates[0]}"
    if settings.flow_control is not None:
        query += f"&flow_control={settings.flow_control}"
    return (
        f"; {settings.path} is a {model.vid_pid} {model.family}, which runs at {rates} baud: "
        f"try --han {settings.path}{query}"
    )


class SerialBackend(HanBackend):
    """A real dongle: a serial device, ``socket://``, ``rfc2217://`` or a labgrid place.

    A labgrid place is resolved to its URL on first use, so collecting tests
    never needs the coordinator. :meth:`prepare` puts the world on a wall clock
    and gives its hub the CHF's zigpy radio on bellows (EZSP) for the port
    (:mod:`hardware.realtime`); the line settings come from the arguments or the
    URL's ``?baudrate=N&flow_control=hardware|software``. The dongle is
    checked once, when first needed: the port opens and an EZSP NCP answers its
    version within ``probe_timeout`` seconds. It is connected when the hub is
    added, bounded by ``connect_timeout`` seconds.
    """

    hardware = True
    CONNECT_TIMEOUT = 60.0  # seconds bellows may take to reset the NCP and form the network
    PROBE_TIMEOUT = 10.0  # seconds an EZSP NCP has to answer its version when first checked

    def __init__(
        self,
        url: str | None = None,
        *,
        place: str | None = None,
        resolve: Callable[[str], str] | None = None,
        baudrate: int | None = None,
        flow_control: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        probe_timeout: float | None = None,
    ) -> None:
        if (url is None) == (place is None):
            raise GbcsError("a serial backend needs either a URL or a labgrid place")
        self._url = url
        self.place = place
        self.name = url if place is None else f"labgrid:{place}"
        self._resolve = resolve
        self._checked = False
        self._reason: str | None = None
        self.serial_number: str | None = None
        self.firmware: str | None = None
        self.eui64: bytes | None = None  # the dongle's own, as the probe read it
        self.baudrate = baudrate
        self.flow_control = flow_control
        self.connect_timeout = connect_timeout
        self.probe_timeout = self.PROBE_TIMEOUT if probe_timeout is None else probe_timeout
        self.app_factory: Callable[[Any], Any] | None = None  # the dongle's zigpy app (bellows)
        self._radios: Any = None  # the current world's DongleRadioFactory
        self._clock: Any = None  # and its WallClock
        self._at_exit = False
        self._failure: str | None = None  # the dongle did not come up earlier this session

    @property
    def url(self) -> str:
        """The pyserial URL; raises :class:`GbcsError` when a labgrid place cannot be resolved."""
        if self._url is None:
            assert self.place is not None
            if self._resolve is None:
                from hardware.labgrid_support import resolve_place

                self._resolve = resolve_place
            self._url = self._resolve(self.place)
        return self._url

    def describe(self) -> dict[str, str]:
        out = {"han_backend": self.name}
        if self._url is not None and self._url != self.name:
            out["han_port"] = self._url
        if self.serial_number is None and self._url is not None:
            self.serial_number = _usb_serial_number(self._url.partition("?")[0])
        if self.serial_number:
            out["han_dongle_serial"] = self.serial_number
        if self.firmware is None and self._radios is not None:
            self.firmware = self._radios.firmware()
        if self.firmware:
            out["han_firmware"] = self.firmware
        return out

    def available(self) -> str | None:
        """Why the dongle cannot be used, or None: the port opens and an EZSP NCP answers
        its version on it. Checked once a session (connecting resets the NCP): a silent
        port must fail every test that needs the dongle, not only those that build a hub."""
        if not self._checked:
            self._reason = self._check()
            self._checked = True
        return self._reason

    def _check(self) -> str | None:
        try:
            url = self.url
        except GbcsError as e:
            return f"--han {self.name}: {e}"
        try:
            import serial
        except ImportError as e:  # pragma: no cover - pyserial is a dependency
            return f"--han {self.name}: pyserial is missing ({e})"
        try:
            settings = self.settings()
        except GbcsError as e:
            return f"--han {self.name}: {e}"
        try:
            port = serial.serial_for_url(
                settings.path, do_not_open=True, baudrate=settings.baudrate, timeout=OPEN_TIMEOUT
            )
            port.open()
            port.close()
        except (serial.SerialException, OSError, ValueError) as e:
            return f"--han {self.name}: cannot open {url}: {e}"
        from hardware.dongles import NO_ANSWER, probe_ezsp

        result = probe_ezsp(
            settings.path,
            (settings.baudrate,),
            self.probe_timeout,
            flow_control=settings.flow_control,
        )
        if result.status != "ok":
            silent = (result.reason or "").startswith(NO_ANSWER)
            return f"--han {self.name}: {result.reason}" + (_rate_hint(settings) if silent else "")
        if self.firmware is None:
            self.firmware = result.firmware
        if result.eui64 is not None:
            self.eui64 = bytes.fromhex(result.eui64)
        return None

    def hub_eui(self) -> bytes | None:
        """The dongle's own EUI-64 (None when its probe could not read it): the kit never
        rewrites a dongle's IEEE address, so the hub on it takes that one."""
        return self.eui64

    def settings(self) -> Any:
        """The port's :class:`hardware.realtime.SerialSettings` (arguments, then URL query)."""
        from hardware.realtime import serial_settings

        return serial_settings(
            self.url,
            baudrate=self.baudrate,
            flow_control=self.flow_control,
        )

    def prepare(self, world: World) -> None:
        """Real time and the dongle: a WallClock for the world, zigpy on bellows for its hub.

        The port is checked first (a missing device or a closed TCP port fails
        here at once). The previous world's connection is shut down first: a
        dongle has one host. Once the dongle failed to come up (a silent port,
        not an EZSP NCP), later tests fail at once with that reason.
        """
        reason = self.available()
        if reason is not None:
            raise GbcsError(reason)
        from hardware.realtime import DongleRadioFactory, use_wall_clock

        settings = self.settings()
        self.release()
        if self._failure is not None:  # fail every later test at once, not after a timeout each
            raise GbcsError(f"--han {self.name}: {self._failure} (earlier test; not retried)")
        clock = use_wall_clock(world)
        radios = DongleRadioFactory(settings, sync_timeout=self.connect_timeout)
        if self.app_factory is not None:
            radios.app_factory = self.app_factory
        world.hub_radio = radios
        self._radios, self._clock = radios, clock
        if not self._at_exit:  # a last resort: the world fixture and pytest_unconfigure do it
            import atexit

            atexit.register(self.release)
            self._at_exit = True

    def release(self) -> None:
        """Shut the current world's zigpy application down and close its clock's loop."""
        radios, clock = self._radios, self._clock
        self._radios = self._clock = None
        if radios is not None:
            if self.firmware is None:
                self.firmware = radios.firmware()
            if radios.failure is not None and self._failure is None:
                self._failure = radios.failure
            radios.close()
        if clock is not None:
            with contextlib.suppress(Exception):
                clock.close()


def make_backend(spec: HanSpec) -> HanBackend:
    """The backend for a parsed ``--han``."""
    if spec.kind == "emulated":
        return EmulatedBackend()
    if spec.kind == "sim":
        return ZigpySimBackend(spec.target)
    if spec.kind == "labgrid":
        return SerialBackend(place=spec.target)
    if spec.kind == "serial":
        return SerialBackend(spec.target)
    raise GbcsError(f"unknown HAN backend kind {spec.kind!r}")


# --- pytest hooks -------------------------------------------------------------------------

_BACKEND = pytest.StashKey[HanBackend]()
_METERS = pytest.StashKey[list[RealMeter]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gbcs-hil", "GB smart-metering HAN")
    group.addoption(
        "--han",
        type=parse_han,
        default=HanSpec("emulated"),
        metavar="BACKEND",
        help=f"the HAN the tests run on: {HAN_FORMS} (default emulated); a port takes "
        "?baudrate=N (default 115200) and ?flow_control=hardware|software (default "
        "bellows' software, XON/XOFF), e.g. /dev/zigbee/zbt2-X?baudrate=460800",
    )
    group.addoption(
        "--meter",
        type=parse_meter,
        action="append",
        default=[],
        metavar="EUI64:INSTALLCODE[:esme|:gsme]",
        help="a real meter under test (repeatable; kind esme unless :gsme is given)",
    )
    group.addoption(
        "--han-seed",
        type=_seed,
        default=0,
        metavar="N",
        help="seed of the world the fixtures build (default 0)",
    )


def _seed(text: str) -> int:
    """A ``--han-seed``: an integer a world can be built from (a usage error if not)."""
    from emulators.world import check_seed  # late, as every emulators import here

    try:
        return check_seed(int(text))
    except (ValueError, GbcsError) as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER)
    spec = config.getoption("han", HanSpec("emulated"))
    meters: list[RealMeter] = list(config.getoption("meter", []) or [])
    seen: set[bytes] = set()
    kinds: set[str] = set()
    for meter in meters:
        if meter.eui64 in seen:
            raise pytest.UsageError(f"--meter {meter.eui64.hex().upper()} is given twice")
        if meter.kind in kinds:  # the fixtures use one meter of each kind
            raise pytest.UsageError(
                f"--meter {meter.eui64.hex().upper()}: a second {meter.kind.upper()}; "
                f"the esme and gsme fixtures take one of each kind"
            )
        seen.add(meter.eui64)
        kinds.add(meter.kind)
    config.stash[_BACKEND] = make_backend(spec)
    config.stash[_METERS] = meters


def pytest_unconfigure(config: pytest.Config) -> None:
    """Let the last world's dongle go before Python exits: bellows' serial thread is no
    daemon (bellows/thread.py), and Python waits for such threads before it runs atexit."""
    backend = config.stash.get(_BACKEND, None)
    if backend is not None:
        backend.release()


def backend_of(config: pytest.Config) -> HanBackend:
    """The session's backend (the default one when the plugin was registered late)."""
    if _BACKEND not in config.stash:
        config.stash[_BACKEND] = EmulatedBackend()
    return config.stash[_BACKEND]


def pytest_report_header(config: pytest.Config) -> str:
    backend = backend_of(config)
    seed = config.getoption("han_seed", 0)
    meters = config.stash.get(_METERS, [])
    extra = f", meters {', '.join(m.name for m in meters)}" if meters else ""
    return f"gbcs-hil HAN: {backend.name} (seed {seed}){extra}"


def _record(item: pytest.Item) -> None:
    """Put (or refresh) the backend's description into the test case's JUnit properties."""
    props = backend_of(item.config).describe()
    kept = [(k, v) for k, v in item.user_properties if k not in props]
    item.user_properties[:] = [*kept, *props.items()]


def hardware_skip_reason(backend: HanBackend) -> str | None:
    """Why a ``hardware`` test is skipped on this backend: it is no real dongle (None: it is)."""
    if not backend.hardware:
        return (
            f"needs a real ZigBee dongle; --han is {backend.name} "
            "(give --han /dev/ttyUSB0, socket://HOST:PORT, rfc2217://HOST:PORT or labgrid:PLACE)"
        )
    return None


def unusable(backend: HanBackend, reason: str) -> NoReturn:
    """End a test that needs an unusable backend: fail on a dongle named with --han, else skip.

    The user asked for that dongle, so its absence is a failure: a hardware CI job
    with the dongle unplugged goes red instead of green with everything skipped.
    """
    if backend.hardware:
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


# The kit's fixtures: a test that uses none of them is another project's (the plugin loads
# wherever the kit is installed), and its ``hardware`` marker and report are its own.
KIT_FIXTURES = frozenset({"han", "world", "chf", "esme", "gsme"})


def uses_the_kit(item: pytest.Item) -> bool:
    """Whether the test uses one of this plugin's fixtures: by name, and defined here (a
    project's own ``world`` fixture is its own)."""
    info = getattr(item, "_fixtureinfo", None)
    defs = getattr(info, "name2fixturedefs", {})
    for name in KIT_FIXTURES.intersection(getattr(item, "fixturenames", ())):
        chosen = defs.get(name)
        if chosen and getattr(chosen[-1].func, "__module__", None) == __name__:
            return True
    return False


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not uses_the_kit(item):
        return
    _record(item)
    if item.get_closest_marker("hardware") is not None:
        backend = backend_of(item.config)
        reason = hardware_skip_reason(backend) or backend.available()
        if reason is not None:
            unusable(backend, reason)


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    if uses_the_kit(item):
        _record(item)  # the firmware may have become known during the test


# --- Fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def han(request: pytest.FixtureRequest) -> HanBackend:
    """The HAN backend chosen with ``--han``."""
    return backend_of(request.config)


@pytest.fixture
def world(han: HanBackend, request: pytest.FixtureRequest) -> Iterator[World]:
    """A fresh world seeded by ``--han-seed``, prepared by the backend (see :func:`unusable`);
    its dongle is let go at teardown, so the port is free between tests."""
    from emulators.world import World

    reason = han.available()
    if reason is not None:
        unusable(han, reason)
    created = World(int(request.config.getoption("han_seed", 0)))
    failure = None
    try:
        han.prepare(created)
    except GbcsError as e:
        failure = str(e)
    if failure is not None:
        pytest.fail(failure, pytrace=False)
    try:
        yield created
    finally:
        han.release()


@pytest.fixture
def chf(han: HanBackend, world: World) -> Hub:
    """A Communications Hub at the bench, its radio given by the backend.

    The dongle is brought up here, so a port that opens but is no ZigBee radio
    fails the test with one line saying so, not a traceback (on the emulated
    backends an error is a bug, and keeps its traceback). On a dongle the hub
    has the dongle's own EUI-64.
    """
    try:
        return world.add_hub(han.bench, han.hub_eui(), name="bench CHF")
    except GbcsError as e:
        if not han.hardware:
            raise
        failure = str(e)
    pytest.fail(failure, pytrace=False)


def _meter(request: pytest.FixtureRequest, han: HanBackend, kind: str) -> Any:
    given = [m for m in request.config.stash.get(_METERS, []) if m.kind == kind]
    if han.hardware:  # a real meter: only its identity, no emulated world needed
        if not given:
            pytest.skip(
                f"--han {han.name} is a real dongle: name the real {kind.upper()} with "
                f"--meter EUI64:INSTALLCODE:{kind}"
            )
        return given[0]
    world: World = request.getfixturevalue("world")
    if given:  # an emulated meter with the identity given on the command line
        return world.add_meter(
            han.bench, kind, given[0].eui64, install_code=given[0].install_code, name=kind.upper()
        )
    return world.add_meter(han.bench, kind, world.pki.party(kind).eui64, name=kind.upper())


@pytest.fixture
def esme(request: pytest.FixtureRequest, han: HanBackend) -> MeterUnit | RealMeter:
    """An ESME on the bench: emulated, or the real one named with ``--meter``."""
    return _meter(request, han, "esme")


@pytest.fixture
def gsme(request: pytest.FixtureRequest, han: HanBackend) -> MeterUnit | RealMeter:
    """A GSME on the bench: emulated, or the real one named with ``--meter ...:gsme``."""
    return _meter(request, han, "gsme")
