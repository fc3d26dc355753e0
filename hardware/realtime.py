"""Real time: a world on a :class:`emulators.clock.WallClock`, its CHF on a real EZSP dongle.

On a real dongle zigpy does serial I/O, so the world must follow wall-clock
time instead of jumping from event to event. :func:`use_wall_clock` gives a
fresh world a wall clock (``World`` builds its own virtual clock and has no
parameter for another). :class:`DongleRadioFactory` is a ``World.hub_radio``
factory: the hub's :class:`hardware.zigpy_han.ZigpyHubRadio` on a bellows
``ControllerApplication`` for a serial port, ``socket://HOST:PORT`` (ser2net in
raw mode) or ``rfc2217://HOST:PORT``, running on the wall clock's event loop.

A port URL may carry the line settings as query parameters, taken off before
the URL goes to the serial library: ``/dev/ttyUSB0?baudrate=460800`` and
``?flow_control=hardware`` (bellows' default is software flow control,
XON/XOFF, as EZSP's ASH expects on most sticks).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

import zigpy.config as zconf
from zigpy.application import ControllerApplication

from emulators.clock import VirtualClock, WallClock
from emulators.medium import HanMedium
from gbcs.errors import GbcsError
from hardware.dongles import ezsp_failure_reason
from hardware.zigpy_han import REALTIME_SYNC_TIMEOUT, ForeignRadio, ZigpyHubRadio

if TYPE_CHECKING:
    from emulators.world import World

__all__ = [
    "BAUDRATE",
    "FLOW_CONTROLS",
    "DongleRadioFactory",
    "SerialSettings",
    "bellows_app",
    "bellows_config",
    "serial_settings",
    "use_wall_clock",
]

BAUDRATE = 115200  # EZSP sticks' usual rate
FLOW_CONTROLS = ("hardware", "software")  # None: bellows' default (software, XON/XOFF)


@dataclass(frozen=True, slots=True)
class SerialSettings:
    """Where the dongle is and how its line is set: what bellows' ``device`` config holds."""

    path: str
    baudrate: int = BAUDRATE
    flow_control: str | None = None


def serial_settings(
    url: str, *, baudrate: int | None = None, flow_control: str | None = None
) -> SerialSettings:
    """A port URL's settings; ``baudrate=`` / ``flow_control=`` in its query override the rest."""
    base, sep, query = url.partition("?")
    rest: list[tuple[str, str]] = []
    for key, value in parse_qsl(query, keep_blank_values=True) if sep else []:
        if key == "baudrate":
            try:
                baudrate = int(value)
            except ValueError:
                raise GbcsError(f"{url}: baudrate {value!r} is not a number") from None
        elif key == "flow_control":
            flow_control = value.lower()
        else:
            rest.append((key, value))  # the serial library's own options (socket:// logging...)
    rate = BAUDRATE if baudrate is None else baudrate
    if not 0 < rate < 2**31:  # a serial driver takes a C int
        raise GbcsError(f"{url}: baudrate {rate} is not a positive rate below 2**31")
    if flow_control is not None and flow_control not in FLOW_CONTROLS:
        raise GbcsError(
            f"{url}: flow_control {flow_control!r} is not one of {', '.join(FLOW_CONTROLS)}"
        )
    path = base + ("?" + urlencode(rest) if rest else "")
    if not base:
        raise GbcsError(f"{url!r} names no port")
    return SerialSettings(path, rate, flow_control)


def bellows_config(settings: SerialSettings, **extra: Any) -> dict[str, Any]:
    """bellows' config for a hub's dongle: zigpy's background work the kit does not want off.

    The watchdog stays on (it notices a stick that stopped answering). No
    network backups (the CHF's device log is the record, and there is no zigpy
    database), no topology scans (GBCS meters need not answer Mgmt_Lqi) and no
    OTA (it would go to the internet).
    """
    return {
        zconf.CONF_DEVICE: {
            zconf.CONF_DEVICE_PATH: settings.path,
            zconf.CONF_DEVICE_BAUDRATE: settings.baudrate,
            zconf.CONF_DEVICE_FLOW_CONTROL: settings.flow_control,
        },
        zconf.CONF_WATCHDOG_ENABLED: True,
        zconf.CONF_NWK_BACKUP_ENABLED: False,
        zconf.CONF_TOPO_SCAN_ENABLED: False,
        zconf.CONF_OTA: {zconf.CONF_OTA_ENABLED: False},
        **extra,
    }


def bellows_app(settings: SerialSettings, **extra: Any) -> ControllerApplication:
    """An unconnected bellows application for the dongle, as the kit runs it
    (:mod:`hardware.bellows_radio`: no well-known key at start-up; bellows imported here)."""
    try:
        from hardware.bellows_radio import KitBellowsApplication
    except ImportError as e:  # pragma: no cover - bellows is a dependency of the hardware extra
        raise GbcsError(f"bellows is needed for an EZSP dongle ({e})") from None
    return KitBellowsApplication(bellows_config(settings, **extra))


def use_wall_clock(world: World, clock: WallClock | None = None) -> WallClock:
    """Put a fresh world on real time (before any place, hub or meter exists).

    ``World`` makes its own :class:`VirtualClock` and hands it to its head end;
    both are rebound here.
    """
    if world.places or world.hubs or world.meters or world.clock.pending():
        raise GbcsError("a world goes on a wall clock only before anything is added to it")
    wall = clock if clock is not None else WallClock()
    world.clock = wall
    world.headend.clock = wall
    return wall


class DongleRadioFactory:
    """``World.hub_radio`` for one real dongle: one dongle gives one hub its radio."""

    def __init__(
        self,
        settings: SerialSettings,
        *,
        sync_timeout: float = REALTIME_SYNC_TIMEOUT,
        app_factory: Callable[[SerialSettings], ControllerApplication] = bellows_app,
    ) -> None:
        self.settings = settings
        self.sync_timeout = sync_timeout
        self.app_factory = app_factory
        self.radio: ZigpyHubRadio | None = None
        self.failure: str | None = None  # why the dongle did not come up, once it did not

    def __call__(self, clock: VirtualClock, eui: bytes, name: str) -> ZigpyHubRadio:
        if not isinstance(clock, WallClock):
            raise GbcsError(
                f"{self.settings.path}: a real dongle needs a world on a WallClock (use_wall_clock)"
            )
        if self.radio is not None and self.radio.joined:
            raise GbcsError(
                f"{self.settings.path} is already the HAN of {self.radio.name}: "
                "one dongle gives one hub its radio"
            )
        self.close()  # a radio that never came up leaves the dongle to the next hub

        def app_factory(medium: HanMedium | None) -> ControllerApplication:
            return self.app_factory(self.settings)  # the dongle is where it is: no medium

        self.radio = _DongleRadio(
            self, clock, eui, name, app_factory=app_factory, sync_timeout=self.sync_timeout
        )
        return self.radio

    def firmware(self) -> str | None:
        """The NCP's firmware as zigpy read it (once the hub's network is up)."""
        radio = self.radio
        if radio is None or radio.app is None or not radio.joined:
            return None
        node = radio.app.state.node_info
        parts = [p for p in (node.manufacturer, node.model, node.version) if p]
        return " ".join(str(p) for p in parts) or None

    def close(self) -> None:
        """Shut zigpy down and let the port go (a failed shutdown is not worth a test error)."""
        radio, self.radio = self.radio, None
        if radio is not None:
            with contextlib.suppress(Exception):
                radio.close()


class _DongleRadio(ZigpyHubRadio):
    """The hub radio on the dongle; tells its factory when bringing the dongle up failed."""

    def __init__(self, factory: DongleRadioFactory, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._factory = factory

    def bring_up_failure(self, exc: BaseException, waited: float) -> str:
        """Worded as the dongle probe words it: which port, which rate, what it may mean."""
        settings = self._factory.settings
        return ezsp_failure_reason(exc, settings.path, settings.baudrate, waited)

    def connection_lost(self, exc: BaseException | None) -> None:
        """As the hub radio's, and the dongle is not used again this session."""
        super().connection_lost(exc)
        if self.lost is not None:  # not when it was let go on purpose
            self._factory.failure = f"{self.name}: {self.lost}"

    def form(self, channel: int, pan_id: int, extended_pan_id: bytes, network_key: bytes) -> Any:
        try:
            return super().form(channel, pan_id, extended_pan_id, network_key)
        except ForeignRadio:
            raise  # the hub asked for, not the dongle: another hub may still use it
        except GbcsError as e:
            self._factory.failure = str(e)
            raise
