"""Find the ZigBee radios plugged into this machine, and optionally ask them what they run.

Discovery goes by USB VID:PID only, because that is all a serial port tells us before we talk
to it. Several bridges (CP210x, CH340, FTDI) sit in front of many different radios, so a match
means "probably a ZigBee dongle", and the family names only say what is known about that id.
``probe`` then talks to the radio to find its protocol and firmware; only EZSP (bellows) is
implemented, since that is the radio library the project depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from gbcs.errors import GbcsError

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "KNOWN_RADIOS",
    "LINK_DIRS",
    "NO_ANSWER",
    "Dongle",
    "PortInfo",
    "ProbeResult",
    "RadioModel",
    "discover",
    "ezsp_failure_reason",
    "find_links",
    "interface_number",
    "known_model",
    "local_port",
    "match_model",
    "port_in_use",
    "probe",
    "probe_ezsp",
    "system_ports",
]

DEFAULT_PROBE_TIMEOUT = 10.0
"""Seconds for a whole probe; bellows alone retries its reset for longer than a user waits."""

BOARD_INFO_TIMEOUT = 3.0
"""Seconds for the firmware and board names once the version came (answered in ms)."""

RADIO_LOGGERS = ("bellows", "zigpy", "serialx", "serial")
"""The libraries a probe runs, whose log records must not reach stderr unasked."""

LOGGER = logging.getLogger(__name__)

NO_ANSWER = "no EZSP answer"
"""How a failure reason starts when the port opened and nothing answered in time."""

LINK_DIRS = ("dev/zigbee", "dev/serial/by-id")
"""Where udev puts the stable names (ours, then systemd's), relative to the file-system root."""


@dataclass(frozen=True)
class RadioModel:
    """What one USB VID:PID tells us: a family slug (the udev link name) and what is known."""

    vid: int
    pid: int
    family: str
    name: str
    protocol: str | None = None
    """The serial protocol when the id pins it down; None when the bridge is shared."""
    interface: int | None = None
    """Only this USB interface number is the ZigBee radio (multi-radio sticks)."""
    baudrates: tuple[int, ...] = (115200,)
    """Rates to try when probing, most likely first."""
    link_per_interface: bool = False
    """The stick has several serial ports with one serial number, so links need the interface."""

    @property
    def vid_pid(self) -> str:
        return f"{self.vid:04x}:{self.pid:04x}"


KNOWN_RADIOS: tuple[RadioModel, ...] = (
    RadioModel(
        0x10C4,
        0xEA60,
        "cp210x",
        "Silicon Labs CP210x USB-UART bridge: EZSP (e.g. Nabu Casa SkyConnect) "
        "or Z-Stack ZNP (e.g. Sonoff ZBDongle-P) - shared id",
    ),
    RadioModel(
        0x1A86,
        0x55D4,
        "ch9102",
        "WCH CH9102 USB-UART bridge, e.g. Sonoff ZBDongle-E (EFR32MG21, EZSP)",
        protocol="EZSP",
    ),
    RadioModel(
        0x1A86,
        0x7523,
        "ch340",
        "WCH CH340 USB-UART bridge (e.g. TubesZB, ZigStar); radio unknown",
    ),
    RadioModel(
        0x10C4,
        0x8A2A,
        "husbzb1",
        "Nortek HUSBZB-1 ZigBee port (Ember EM35xx, EZSP); interface 00 is its Z-Wave radio",
        protocol="EZSP",
        interface=1,
        baudrates=(57600,),
    ),
    RadioModel(
        0x1CF1,
        0x0030,
        "conbee2",
        "dresden elektronik ConBee II (deCONZ)",
        protocol="deCONZ",
    ),
    RadioModel(
        0x0403,
        0x6015,
        "ftdi-ftx",
        "FTDI FT-X USB-UART bridge, e.g. ZiGate+ V2 or ConBee III; radio unknown",
    ),
    RadioModel(
        0x303A,
        0x4001,
        "espressif",
        "Espressif native USB CDC (an ESP32 running TinyUSB firmware); radio unknown",
    ),
    RadioModel(
        0x303A,
        0x831A,
        "zbt2",
        "Nabu Casa ZBT-2 (EmberZNet, EZSP)",
        protocol="EZSP",
        baudrates=(460800, 115200),
    ),
    RadioModel(
        0x0451,
        0x16A8,
        "cc2531",
        "Texas Instruments CC2531 (Z-Stack ZNP)",
        protocol="ZNP",
    ),
    RadioModel(
        0x0451,
        0xBEF3,
        "xds110",
        "TI XDS110 LaunchPad probe, e.g. CC1352/CC2652 LaunchPad (Z-Stack ZNP); two ports",
        protocol="ZNP",
        link_per_interface=True,
    ),
)


class PortInfo(Protocol):
    """The part of pyserial's ``ListPortInfo`` we read (tests pass their own listing)."""

    device: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    location: str | None
    manufacturer: str | None
    product: str | None


def system_ports() -> list[Any]:
    """The real listing: pyserial's ``comports()``, imported late so tests never touch /sys.

    pyserial raises from inside its listing when one port's USB details cannot be read
    (a dongle pulled out mid-listing): a GbcsError saying so, not a traceback.
    """
    from serial.tools.list_ports import comports

    try:
        return list(comports())
    except Exception as e:
        raise GbcsError(
            f"cannot list the serial ports ({type(e).__name__}: {e}); "
            "a device unplugged while listing? try again"
        ) from None


_UDEV_SAFE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#+-.:=@_")


def udev_encoded(text: str) -> str:
    """A USB string as udev's usb_id puts it in a property: trimmed, each run of
    whitespace one ``_``, and any other character outside ``0-9A-Za-z#+-.:=@_`` (and not
    part of a valid UTF-8 string) ``_``."""
    words = "_".join(text.split())
    return "".join(c if c in _UDEV_SAFE or ord(c) > 0x7F else "_" for c in words)


def interface_number(location: str | None) -> int | None:
    """The USB interface number from a pyserial location such as ``1-1.2:1.1``.

    pyserial puts the sysfs interface name (``bus-ports:config.interface``) in ``location`` only
    for multi-interface devices; its ``interface`` field is the interface's string descriptor,
    not its number. Returns None when the location does not say.
    """
    if not location:
        return None
    _, colon, tail = location.rpartition(":")
    if not colon or "." not in tail:
        return None
    number = tail.rpartition(".")[2]
    return int(number) if number.isascii() and number.isdigit() else None  # not "²"


def match_model(port: PortInfo) -> RadioModel | None:
    """The known radio this port is, or None (unknown id, or the wrong interface of a stick)."""
    for model in KNOWN_RADIOS:
        if (port.vid, port.pid) != (model.vid, model.pid):
            continue
        if model.interface is not None and interface_number(port.location) != model.interface:
            return None  # e.g. the HUSBZB-1's Z-Wave side; unknown interface: not claimed
        return model
    return None


def local_port(device: str, list_ports: Callable[[], Iterable[PortInfo]] = system_ports) -> Any:
    """The listed serial port a local device path names (udev symlinks resolved), or None:
    not a /dev path, not listed, or the listing failed (no pyserial, a dongle pulled out)."""
    if not device.startswith("/dev/"):
        return None
    real = str(Path(device).resolve())
    try:
        ports = list(list_ports())
    except (ImportError, GbcsError):
        return None
    return next((port for port in ports if port.device in (device, real)), None)


def known_model(
    device: str, list_ports: Callable[[], Iterable[PortInfo]] = system_ports
) -> RadioModel | None:
    """The known radio a local port is, by its listed USB VID:PID (None: not known)."""
    port = local_port(device, list_ports)
    return None if port is None else match_model(port)


def _resolve(path: Path, root: Path) -> Path:
    """Follow symlinks treating ``root`` as ``/``, so a fake /dev tree resolves inside itself.

    A link that cannot be followed (a target name too long, unreadable) ends the walk there:
    one odd link in /dev must not hide the others or stop the listing.
    """
    for _ in range(40):
        try:
            if not path.is_symlink():
                break
            target = os.readlink(path)
        except OSError:
            break
        # "//dev/x" is absolute too (POSIX keeps two leading slashes): strip them all
        path = root / target.lstrip("/") if target.startswith("/") else path.parent / target
        path = Path(os.path.normpath(path))
    return path


def find_links(device: str, root: Path = Path("/")) -> tuple[str, ...]:
    """The udev links in ``LINK_DIRS`` that point at ``device``, as absolute paths."""
    target = _resolve(root / device.lstrip("/"), root)
    links: list[str] = []
    for folder in LINK_DIRS:
        with contextlib.suppress(OSError):
            for entry in sorted((root / folder).iterdir()):
                if entry.is_symlink() and _resolve(entry, root) == target:
                    links.append("/" + entry.relative_to(root).as_posix())
    return tuple(links)


@dataclass(frozen=True)
class ProbeResult:
    """What talking to a radio found out; ``text`` is the one line people read."""

    status: Literal["ok", "failed", "skipped"]
    protocol: str | None = None
    firmware: str | None = None
    board: str | None = None
    baudrate: int | None = None
    reason: str | None = None
    eui64: str | None = None
    """The radio's own IEEE address (hex), which a hub on it takes: the kit never rewrites it."""

    @property
    def text(self) -> str:
        if self.status == "failed":
            return f"probe failed: {self.reason}"
        if self.status == "skipped":
            return f"probe skipped: {self.reason}"
        parts = [self.protocol or "?", self.firmware or "firmware unknown"]
        if self.board:
            parts.append(self.board)
        if self.eui64:
            parts.append(f"EUI-64 {self.eui64}")
        return ", ".join(parts) + f" @ {self.baudrate} baud"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.text}


@dataclass(frozen=True)
class Dongle:
    """One serial port that looks like a ZigBee radio."""

    device: str
    vid_pid: str
    family: str
    name: str
    serial_number: str | None
    interface: int | None
    location: str | None
    manufacturer: str | None
    product: str | None
    links: tuple[str, ...]
    model: RadioModel
    probe: ProbeResult | None = None

    @property
    def udev_link(self) -> str | None:
        """The link our udev rules make: by serial number as udev encodes it (its
        ``ID_SERIAL_SHORT``), or for a bridge without one the ``-port-`` link found."""
        if not self.serial_number:
            ports = [k for k in self.links if k.startswith(f"/dev/zigbee/{self.family}-port-")]
            return ports[0] if ports else None
        link = f"/dev/zigbee/{self.family}-{udev_encoded(self.serial_number)}"
        if self.model.link_per_interface and self.interface is not None:
            link += f"-if{self.interface:02x}"
        return link

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "device": self.device,
            "vid_pid": self.vid_pid,
            "family": self.family,
            "name": self.name,
            "protocol": self.model.protocol,
            "serial_number": self.serial_number,
            "interface": self.interface,
            "location": self.location,
            "manufacturer": self.manufacturer,
            "product": self.product,
            "links": list(self.links),
            "udev_link": self.udev_link,
        }
        if self.probe is not None:
            data["probe"] = self.probe.to_json()
        return data


def discover(
    list_ports: Callable[[], Iterable[PortInfo]] = system_ports, root: Path = Path("/")
) -> list[Dongle]:
    """Every listed serial port with a known ZigBee VID:PID, sorted by device path."""
    found: list[Dongle] = []
    for port in list_ports():
        model = match_model(port)
        if model is None:
            continue
        found.append(
            Dongle(
                device=port.device,
                vid_pid=model.vid_pid,
                family=model.family,
                name=model.name,
                serial_number=port.serial_number or None,
                interface=interface_number(port.location),
                location=port.location,
                manufacturer=port.manufacturer,
                product=port.product,
                links=find_links(port.device, root),
                model=model,
            )
        )
    return sorted(found, key=lambda d: d.device)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and those it was raised from or while handling, each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def port_in_use(exc: BaseException) -> bool:
    """Whether another program holds the port: serialx's exclusive open fails with EBUSY,
    which zigpy re-raises as PermissionError("...locked by another application")."""
    return any(
        (isinstance(e, OSError) and e.errno == errno.EBUSY) or "locked by another" in str(e)
        for e in _chain(exc)
    )


def ezsp_failure_reason(exc: BaseException, device: str, baudrate: int, timeout: float) -> str:
    """Turn what bellows/serialx raise into something a bench operator can act on.

    bellows times out with a bare ``TimeoutError()``, so the reason never relies on the
    exception's message. Shared by the probe and the pytest plugin's dongle.
    """
    if port_in_use(exc):
        return f"{device}: in use by another program (ZHA, Zigbee2MQTT, another test run?)"
    if isinstance(exc, TimeoutError):
        return (
            f"{NO_ANSWER} from {device} at {baudrate} baud within {timeout:.3g} s "
            "(not an EZSP radio, wrong baud rate, in its bootloader, or in use)"
        )
    if isinstance(exc, FileNotFoundError):
        return f"{device}: no such device (unplugged?)"
    if isinstance(exc, PermissionError):
        return (
            f"{device}: permission denied (join group dialout, or install the udev rules: "
            "udev/install.sh in the gbcs-hil sources)"
        )
    text = str(exc).strip() or "no detail given"
    return f"{device}: {type(exc).__name__}: {text}"


async def _ezsp_once(
    device: str, baudrate: int, timeout: float, flow_control: str | None = None
) -> ProbeResult:
    """One rate: the version must come within ``timeout``; its EUI-64 and board info only
    add detail.

    A radio that answered the version is an EZSP radio even when it then leaves the
    manufacturing tokens unanswered (bellows waits 10 s for each), so the details have
    their own, shorter bound inside the same deadline.
    """
    import zigpy.config
    from bellows.ezsp import EZSP

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    line: dict[str, Any] = {"path": device, "baudrate": baudrate}
    if flow_control is not None:
        line["flow_control"] = flow_control
    config = zigpy.config.SCHEMA_DEVICE(line)
    ezsp = EZSP(config)
    try:
        async with asyncio.timeout_at(deadline):
            await ezsp.connect(use_thread=False)
        details_until = min(deadline, loop.time() + BOARD_INFO_TIMEOUT)
        board = firmware = eui64 = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout_at(details_until):
                (eui,) = await ezsp.getEui64()
            eui64 = bytes(eui)[::-1].hex().upper()  # EZSP sends it little-endian
        with contextlib.suppress(Exception):  # old firmware may lack the manufacturing tokens
            async with asyncio.timeout_at(details_until):
                manufacturer, board_name, version = await ezsp.get_board_info()
            board = " ".join(part for part in (manufacturer, board_name) if part) or None
            firmware = f"EmberZNet {version}" if version else None
        return ProbeResult(
            "ok",
            protocol=f"EZSP v{ezsp.ezsp_version}",
            firmware=firmware,
            board=board,
            baudrate=baudrate,
            eui64=eui64,
        )
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await ezsp.disconnect()


def _leftover(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An abandoned bellows frame send failing once the probe closed the port: expected.

    asyncio would print it with a traceback, after the result, when the task is collected.
    """
    LOGGER.debug("after the probe: %s", context.get("message"), exc_info=context.get("exception"))


async def _ezsp_all(
    device: str, baudrates: tuple[int, ...], timeout: float, flow_control: str | None = None
) -> ProbeResult:
    asyncio.get_running_loop().set_exception_handler(_leftover)
    share = timeout / max(len(baudrates), 1)
    reasons: list[str] = []
    for baudrate in baudrates:
        try:
            return await _ezsp_once(device, baudrate, share, flow_control)
        except (OSError, TimeoutError) as exc:
            reasons.append(ezsp_failure_reason(exc, device, baudrate, share))
            if not isinstance(exc, TimeoutError):
                break  # the port itself is the problem: another rate will not help
        except Exception as exc:  # bellows and serialx raise their own types
            reasons.append(ezsp_failure_reason(exc, device, baudrate, share))
    return ProbeResult("failed", reason="; ".join(reasons))


@contextlib.contextmanager
def _library_logs_kept_off_stderr() -> Iterator[None]:
    """Keep bellows' and zigpy's log records off stderr while logging is unconfigured.

    Python would print their warnings there, tracebacks and all (a garbled frame is one),
    while the probe's result already says what went wrong. Configured logging still gets
    every record.
    """
    added: list[tuple[logging.Logger, logging.Handler]] = []
    for name in RADIO_LOGGERS:
        logger = logging.getLogger(name)
        if not logger.hasHandlers():
            handler = logging.NullHandler()
            logger.addHandler(handler)
            added.append((logger, handler))
    try:
        yield
    finally:
        for logger, handler in added:
            logger.removeHandler(handler)


def probe_ezsp(
    device: str,
    baudrates: tuple[int, ...] = (115200,),
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    *,
    flow_control: str | None = None,
) -> ProbeResult:
    """Connect with bellows, read the EZSP version and firmware; never raises, never hangs.

    ``timeout`` bounds the whole probe and is shared between the baud rates;
    ``flow_control`` is bellows' (None: its default).
    """
    try:
        import bellows.ezsp  # noqa: F401  (fail here with a clear reason, not mid-probe)
    except ImportError as exc:
        return ProbeResult("failed", reason=f"bellows is not installed ({exc})")
    try:
        with _library_logs_kept_off_stderr():
            return asyncio.run(_ezsp_all(device, baudrates, timeout, flow_control))
    except Exception as exc:
        text = str(exc).strip() or "no detail given"
        return ProbeResult("failed", reason=f"{device}: {type(exc).__name__}: {text}")


def probe(
    dongle: Dongle,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    ezsp: Callable[[str, tuple[int, ...], float], ProbeResult] = probe_ezsp,
) -> Dongle:
    """The dongle with its probe result: EZSP is tried unless the id says another protocol."""
    protocol = dongle.model.protocol
    if protocol not in (None, "EZSP"):
        result = ProbeResult(
            "skipped",
            protocol=protocol,
            reason=f"{protocol} radio: only EZSP probing (bellows) is implemented",
        )
    else:
        result = ezsp(dongle.device, dongle.model.baudrates, timeout)
    return replace(dongle, probe=result)
