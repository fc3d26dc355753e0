"""A hub's HAN on any zigpy ControllerApplication: the CHF's trust centre and GBCS tunnel.

:class:`ZigpyHubRadio` is a :class:`emulators.world.HubRadio` whose radio is a
zigpy ``ControllerApplication`` (bellows/EZSP on a dongle, or
:class:`hardware.sim_radio.SimControllerApplication` on the emulated HAN in CI).
zigpy does not speak Smart Energy, so the kit does:

* zigpy's Tunneling (0x0704) and Key Establishment clusters are empty stubs and
  its ZCL layer ignores profile 0x0109, so the radio registers a Smart Energy
  endpoint (``additional_endpoints``), takes raw frames from zigpy's
  ``handle_message`` listener event and runs the GBCS tunnel with
  :mod:`emulators.zigbee`: to an ESME as its client, sending RequestTunnel once
  the ESME is announced (GBCS 10.2.2.1), then PUT; for a sleepy GSME as its
  server (RequestTunnel, TransferData with GET / GET-RESPONSE / PUT). It answers
  an ESME's read of its Time cluster (the ESME's keep-alive) with the clock's
  UTCTime.
* Meters are admitted only with ``permit_with_link_key`` for the EUI-64 whose
  CCS01 join window is open, with the link key in the CHF's device log (the
  AES-MMO hash of install code + CRC). ``permit()`` is never called with a
  non-zero time: on bellows it opens the network to every device holding the
  well-known key (and bellows' own ``permit(0)`` does too, for 300 s:
  :mod:`hardware.bellows_radio` is bellows without that).
* The coordinator's key table mirrors the CHF's current device log (zigpy
  ``NetworkInfo.key_table`` + ``write_network_info``), and the network takes the
  log's extended PAN ID: after a CCS03 restore a swapped-out meter's trust-centre
  rejoin succeeds. The CHF tells the radio through its ``on_log_change`` hook.
* Joined meters are described to zigpy as Smart Energy devices as soon as zigpy
  learns of them, so zigpy never interviews them (GBCS meters need not answer ZDO
  discovery, and the emulated ones do not).

Time: the emulated world runs on a :class:`emulators.clock.VirtualClock` and
zigpy on asyncio. :class:`VirtualTimeLoop` is an asyncio loop whose ``time()``
is the virtual clock: every asyncio timer also schedules a clock event, and the
loop is pumped (its ready callbacks run, without ever blocking) when such an
event fires, when the sim radio hands zigpy a frame, and when this radio calls
zigpy. zigpy's timeouts therefore elapse in simulated seconds and a run stays
reproducible. Synchronous calls that must finish (connect, forming) use
:meth:`VirtualTimeLoop.run_until_complete`, which advances the virtual clock
until the coroutine is done. It must not be called from inside a running asyncio
loop (tests are synchronous).

Real time: on a :class:`emulators.clock.WallClock` (a real dongle, or the sim
radio in real time) zigpy runs on the clock's own asyncio loop, an ordinary one
that does real I/O. The clock turns that loop while the world waits
(``run_until`` and friends); synchronous calls run their coroutine with
:meth:`WallClock.complete` (timers keep firing, bounded by ``sync_timeout`` real
seconds), and calls made from the world's handlers become tasks that run in the
clock's next slice. A synchronous call from inside the running loop is refused
(it could only deadlock).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import zigpy.config as zconf
import zigpy.endpoint
import zigpy.exceptions
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t
from zigpy.application import ControllerApplication

from emulators import tunnel_server
from emulators.chf import CommsHub
from emulators.clock import Timer, VirtualClock, WallClock
from emulators.medium import HanMedium
from emulators.node import HUB_ENDPOINT, SavedChildren
from emulators.saved_state import SavedState
from emulators.zigbee import air
from emulators.zigbee.time_cluster import TIME_CLUSTER
from emulators.zigbee.tunnel import (
    SMART_ENERGY_PROFILE,
    TUNNELING_CLUSTER,
    GbcsGet,
    GbcsPut,
    RequestTunnel,
    TransferDataError,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, encode_zcl
from gbcs.errors import GbcsError

__all__ = [
    "PERMIT_MAX",
    "SE_ENDPOINT",
    "WELL_KNOWN_KEY",
    "ForeignRadio",
    "VirtualTimeLoop",
    "WellKnownKeyRefused",
    "ZigpyHubRadio",
    "describe_exception",
    "from_eui64",
    "loop_for_clock",
    "names_another_device",
    "ncp_eui64",
    "se_endpoint_descriptor",
    "to_eui64",
]

LOGGER = logging.getLogger(__name__)

WELL_KNOWN_KEY = b"ZigBeeAlliance09"  # 5A6967426565416C6C69616E63653039: never admits anyone
SE_ENDPOINT = HUB_ENDPOINT  # endpoint 1 is zigpy's Home Automation endpoint
SE_DEVICE_TYPE = 0x0500  # Smart Energy: Energy Service Interface (the hub)
METER_DEVICE_TYPE = 0x0501  # Smart Energy: Metering Device
PERMIT_MAX = 254  # zigpy permits for at most 254 s; longer join windows are renewed
DEVICE_ANNOUNCE = 0x0013


class WellKnownKeyRefused(zigpy.exceptions.ControllerException):
    """Joining with the well-known ZigBee key (or open to everyone) was asked for."""


class ForeignRadio(GbcsError):
    """The radio's own EUI-64 is not the hub's: the kit never rewrites a dongle's."""

    def __init__(self, hub: str, radio_eui: bytes, hub_eui: bytes) -> None:
        self.radio_eui, self.hub_eui = radio_eui, hub_eui
        radio, wanted = radio_eui.hex().upper(), hub_eui.hex().upper()
        super().__init__(
            f"{hub}: the radio's own EUI-64 is {radio}, not the hub's {wanted}, and the kit "
            f"never rewrites a dongle's IEEE address: give the hub the dongle's EUI-64 "
            f"(World.add_hub(place, bytes.fromhex({radio!r})); the pytest plugin's chf "
            "fixture does)"
        )


NWK_ADDR_RSP = 0x8000
IEEE_ADDR_RSP = 0x8001
# ZDO frames that tell where a device is (zigpy moves the device there, whoever sent it):
# cluster -> where the EUI-64 they name sits (ZigBee 2.4.3.1.11, 2.4.4.2.1, 2.4.4.2.2).
_ADDRESS_FRAMES = {DEVICE_ANNOUNCE: 3, NWK_ADDR_RSP: 2, IEEE_ADDR_RSP: 2}


def _named_ieee(zdo: bytes, cluster: int) -> bytes | None:
    """The EUI-64 a ZDO address frame names (Device_annce: TSN, NWK address, IEEE address,
    capability; NWK_addr_rsp / IEEE_addr_rsp: TSN, status, IEEE address, NWK address),
    big-endian as the kit writes it; None if too short or not such a frame."""
    at = _ADDRESS_FRAMES.get(cluster)
    if at is None or len(zdo) < at + 8:
        return None
    return bytes(reversed(zdo[at : at + 8]))


def names_another_device(cluster: int, zdo: bytes, sender: bytes) -> bool:
    """Whether a ZDO frame would place a device other than its sender: any key holder can
    say where anyone is, and zigpy would send that device's traffic there."""
    return cluster in _ADDRESS_FRAMES and _named_ieee(zdo, cluster) != sender


SYNC_TIMEOUT = 600.0  # simulated seconds a synchronous zigpy call may take
REALTIME_SYNC_TIMEOUT = 60.0  # real seconds (an EZSP NCP resets and forms in well under that)


def to_eui64(eui: bytes) -> t.EUI64:
    """zigpy's EUI64 (little-endian list) from the kit's display-order bytes."""
    return t.EUI64(bytes(eui)[::-1])


def from_eui64(eui: t.EUI64) -> bytes:
    """The kit's display-order bytes from zigpy's EUI64 or ExtendedPanId."""
    return bytes(eui)[::-1]


async def ncp_eui64(app: ControllerApplication) -> bytes:
    """The radio's own EUI-64 in display order, read before any network is written.

    zigpy has no call for it (``load_network_info`` raises on a radio with no network
    before it reads it), so the kit's applications have ``ncp_eui64()``.
    """
    read = getattr(app, "ncp_eui64", None)
    if read is None:
        raise GbcsError(
            f"{type(app).__name__} cannot tell its radio's own EUI-64 (no ncp_eui64()): "
            "the kit would not know whether forming rewrites it"
        )
    return from_eui64(await read())


def se_endpoint_descriptor(endpoint: int = SE_ENDPOINT) -> zdo_t.SimpleDescriptor:
    """The hub's Smart Energy endpoint: Tunneling server and client, Time server (profile
    0x0109)."""
    return zdo_t.SimpleDescriptor(
        endpoint=endpoint,
        profile=SMART_ENERGY_PROFILE,
        device_type=SE_DEVICE_TYPE,
        device_version=0,
        input_clusters=[TUNNELING_CLUSTER, TIME_CLUSTER],
        output_clusters=[TUNNELING_CLUSTER],
    )


# -- asyncio on the virtual clock ---------------------------------------------------


class _NoIo:
    """The loop's selector: the emulated world has no file descriptors to wait on."""

    def select(self, timeout: float | None) -> list[Any]:
        if timeout is None or timeout > 0:
            raise RuntimeError(
                "a VirtualTimeLoop never waits in real time: drive it with pump() "
                "or run_until_complete()"
            )
        return []

    def close(self) -> None:
        pass


_LOOPS: weakref.WeakKeyDictionary[VirtualClock, VirtualTimeLoop] = weakref.WeakKeyDictionary()


class VirtualTimeLoop(asyncio.BaseEventLoop):
    """An asyncio loop that lives on a :class:`VirtualClock` and never blocks.

    ``time()`` is the clock's ``now``; each timer (``call_at``/``call_later``)
    also books a clock event that pumps the loop when it is due; :meth:`pump`
    runs everything ready without waiting. Thread-safe wake-ups and executors
    have nothing to wake them: the radios here need neither.
    """

    def __init__(self, clock: VirtualClock, *, sync_timeout: float = SYNC_TIMEOUT) -> None:
        super().__init__()
        self._selector = _NoIo()
        self._clock = weakref.ref(clock)  # weak: the loop is cached per clock
        self._now = clock.now  # the time it stopped at, once the clock is gone
        self.sync_timeout = sync_timeout
        self._wakeups: dict[int, tuple[asyncio.TimerHandle, Timer]] = {}

    @classmethod
    def for_clock(cls, clock: VirtualClock) -> VirtualTimeLoop:
        """The one loop of a clock: every zigpy radio of a world shares it."""
        loop = _LOOPS.get(clock)
        if loop is None or loop.is_closed():
            loop = _LOOPS[clock] = cls(clock)
            weakref.finalize(clock, loop.finish)  # the world is gone: so is its loop
        return loop

    def finish(self) -> None:
        """Cancel what is left (zigpy tasks waiting on meters), let it unwind, close."""
        if self.is_closed() or self.is_running():
            return
        for task in asyncio.all_tasks(self):
            task.cancel()
        self.pump()
        self.close()

    @property
    def clock(self) -> VirtualClock:
        clock = self._clock()
        if clock is None:
            raise RuntimeError("the VirtualTimeLoop's clock is gone")
        return clock

    # BaseEventLoop hooks ----------------------------------------------------------
    def time(self) -> float:
        clock = self._clock()
        if clock is not None:
            self._now = clock.now
        return self._now

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass

    def call_at(
        self, when: float, callback: Callable[..., Any], *args: Any, context: Any = None
    ) -> asyncio.TimerHandle:
        handle = super().call_at(when, callback, *args, context=context)
        clock = self._clock()
        if clock is not None:
            self._wakeups[id(handle)] = (handle, clock.call_at(when, self._wake, id(handle)))
        return handle

    def _timer_handle_cancelled(self, handle: asyncio.TimerHandle) -> None:
        super()._timer_handle_cancelled(handle)  # type: ignore[misc]
        entry = self._wakeups.pop(id(handle), None)
        if entry is not None:
            entry[1].cancel()

    def _wake(self, key: int) -> None:
        self._wakeups.pop(key, None)
        self.pump()

    # Driving -----------------------------------------------------------------------
    def _has_work(self) -> bool:
        if self._ready:  # type: ignore[attr-defined]
            return True
        scheduled = self._scheduled  # type: ignore[attr-defined]
        return bool(scheduled) and scheduled[0].when() <= self.time()

    def pump(self, max_rounds: int = 100_000) -> None:
        """Run every ready callback and due timer, repeatedly, until nothing is left.

        Inside a running pump (a callback that pumps again) it does nothing:
        the outer pump goes on until the loop is idle.
        """
        if self.is_running() or self.is_closed():
            return
        for _ in range(max_rounds):
            if not self._has_work():
                return
            self.call_soon(self.stop)
            self.run_forever()
        raise RuntimeError(f"asyncio callbacks did not settle after {max_rounds} rounds")

    def run_until_complete(self, future: Any) -> Any:
        """Run ``future`` to its end, advancing the virtual clock while it waits."""
        if self.is_running():
            raise RuntimeError("run_until_complete() inside the running VirtualTimeLoop")
        task = asyncio.ensure_future(future, loop=self)
        self.pump()
        if not task.done():
            self.clock.run_until(task.done, timeout=self.sync_timeout)
        if not task.done():
            task.cancel()
            self.pump()
            raise TimeoutError(f"not done within {self.sync_timeout:g} simulated seconds")
        return task.result()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start ``coro`` now and run it as far as it goes without waiting."""
        task = self.create_task(coro)
        self.pump()
        return task


def loop_for_clock(clock: VirtualClock) -> asyncio.AbstractEventLoop:
    """The loop zigpy runs on beside ``clock``: a WallClock's own, else its VirtualTimeLoop."""
    if isinstance(clock, WallClock):
        return clock.loop
    return VirtualTimeLoop.for_clock(clock)


# -- the hub radio ----------------------------------------------------------------------


@dataclass(slots=True)
class _Child:
    """A meter on this hub's network, as the radio has seen it."""

    ieee: bytes
    nwk: int
    sleepy: bool
    endpoint: int = 1
    tunnel_id: int | None = None
    # An ESME's: the hub's RequestTunnel awaiting its answer, or the next one booked.
    tunnel_ask: tunnel_server.TunnelAsk | None = None


@dataclass(eq=False, slots=True)
class _HandOver:
    """A held message in a GET-RESPONSE, until the GSME is known to have it (compared by
    identity: the same message handed out again is another hand-over)."""

    data: bytes


class ZigpyHubRadio(tunnel_server.EsmeTunnelClient):
    """A CHF's HAN port on a zigpy ControllerApplication (see the module docstring)."""

    def __init__(
        self,
        clock: VirtualClock,
        eui: bytes,
        name: str = "",
        *,
        app_factory: Callable[[HanMedium | None], ControllerApplication],
        loop: asyncio.AbstractEventLoop | None = None,
        endpoint: int = SE_ENDPOINT,
        sync_timeout: float | None = None,
    ) -> None:
        if len(eui) != 8:
            raise GbcsError("an EUI-64 is 8 bytes")
        self.clock = clock
        self.ieee = eui
        self.name = name or eui.hex().upper()
        self.app_factory = app_factory
        self.loop = loop if loop is not None else loop_for_clock(clock)
        # Real seconds a synchronous call may take on an ordinary loop (a VirtualTimeLoop
        # has its own bound, in simulated seconds).
        self.sync_timeout = sync_timeout if sync_timeout is not None else REALTIME_SYNC_TIMEOUT
        self.endpoint = endpoint
        self.medium: HanMedium | None = None
        self.trace: Callable[[str], None] | None = None
        self.app: ControllerApplication | None = None
        self._tc: CommsHub | None = None
        self._formed = False
        self._children: dict[bytes, _Child] = {}
        # Per GSME, the held message its last GET-RESPONSE carries, while that may not have
        # arrived (as the emulated coordinator's _held_out).
        self._held_out: dict[bytes, _HandOver] = {}
        self._recent_puts = tunnel_server.RecentPuts()  # for a TransferDataError naming one
        self._recent_hand_overs = tunnel_server.RecentPuts()  # a GSME's, likewise
        self._ids = tunnel_server.TunnelIds()
        self._zcl_sequence = 0
        self._permitted: dict[bytes, tuple[bytes, float]] = {}  # eui -> key, until
        self._sync_pending = False
        self._sync_running = False
        self._renew: Timer | None = None
        self.syncs = 0  # how often the coordinator was brought in line with the CHF
        self.lost: str | None = None  # why the radio went away mid-run, once it did
        self._closing = False  # close() is letting it go: its connection_lost is expected

    # HubRadio: placement and forming ----------------------------------------------------
    @property
    def trust_centre(self) -> CommsHub | None:
        return self._tc

    @trust_centre.setter
    def trust_centre(self, tc: CommsHub | None) -> None:
        self._tc = tc
        if tc is not None:
            tc.on_log_change = self._request_sync
        self._request_sync()

    @property
    def joined(self) -> bool:
        return self._formed

    @property
    def port(self) -> str:
        """Where the radio is: its zigpy device path (a serial port, socket://, sim://)."""
        if self.app is None:
            return "(no radio yet)"
        return str(self.app.config[zconf.CONF_DEVICE][zconf.CONF_DEVICE_PATH])

    def place(self, medium: HanMedium | None) -> None:
        """Where the dongle is; the first placement creates the zigpy application."""
        self.medium = medium
        if self.app is None:
            self.app = self.app_factory(medium)
            descriptors = self.app.config[zconf.CONF_ADDITIONAL_ENDPOINTS]
            if not any(d.endpoint == self.endpoint for d in descriptors):
                descriptors.append(se_endpoint_descriptor(self.endpoint))
        else:
            relocate = getattr(self.app, "relocate", None)
            if relocate is not None:
                relocate(medium)

    def form(
        self, channel: int, pan_id: int, extended_pan_id: bytes, network_key: bytes
    ) -> zigpy.state.NetworkInfo:
        """Connect and form the zigpy network with exactly the hub's settings."""
        if self.app is None:
            self.place(self.medium)
        app = self._app
        if len(extended_pan_id) != 8 or len(network_key) != 16:
            raise GbcsError("an extended PAN ID is 8 bytes and a network key 16")
        network_info = zigpy.state.NetworkInfo(
            source="gbcs-hil",
            extended_pan_id=t.ExtendedPanId(extended_pan_id[::-1]),
            pan_id=t.PanId(pan_id),
            nwk_update_id=0,
            nwk_manager_id=t.NWK(0x0000),
            channel=channel,
            channel_mask=t.Channels.from_channel_list([channel]),
            security_level=5,
            network_key=zigpy.state.Key(key=t.KeyData(network_key), seq=0),
            # The global TC link key is not the well-known key either: a device that
            # only knows "ZigBeeAlliance09" has nothing to join with.
            tc_link_key=zigpy.state.Key(
                key=t.KeyData(_global_key(self.ieee, network_key)),
                partner_ieee=to_eui64(self.ieee),
            ),
            key_table=[],
            children=[],
            nwk_addresses={},
        )
        # An unknown IEEE address: bellows keeps the NCP's own (write_network_info), where
        # another one would rewrite its NV3 token or burn the write-once MFG token.
        node_info = zigpy.state.NodeInfo(
            nwk=t.NWK(0x0000),
            ieee=t.EUI64.UNKNOWN,
            logical_type=zdo_t.LogicalType.Coordinator,
        )

        async def bring_up() -> None:
            await app.connect()
            own = await ncp_eui64(app)
            if own != self.ieee:
                raise ForeignRadio(self.name, own, self.ieee)
            await app.write_network_info(network_info=network_info, node_info=node_info)
            await app.initialize(auto_form=False)

        started = self._seconds()
        try:
            self._run(bring_up())
        except GbcsError:
            self._let_go(app)
            raise
        except RuntimeError:
            raise
        except Exception as e:  # a port that is not there, silent or not an NCP: say which
            self._let_go(app)
            reason = self.bring_up_failure(e, self._seconds() - started)
            raise GbcsError(f"{self.name}: the zigpy radio did not come up: {reason}") from e
        app.add_listener(self)
        self._formed = True
        self._log(f"formed PAN {pan_id:#06x} on channel {channel} through zigpy")
        self._request_sync()
        return app.state.network_info

    def bring_up_failure(self, exc: BaseException, waited: float) -> str:
        """Why bringing the radio up failed, never empty (radio libraries raise bare timeouts).

        ``waited`` is how long it was tried, in the clock's seconds.
        """
        if isinstance(exc, TimeoutError):
            return f"no answer from the radio within {waited:.3g} s"
        return describe_exception(exc)

    def _seconds(self) -> float:
        """The clock's seconds: real ones on a wall clock even in a timer (``now`` is pinned)."""
        clock = self.clock
        return clock.elapsed() if isinstance(clock, WallClock) else clock.now

    def _let_go(self, app: ControllerApplication) -> None:
        """Free the port after a failed bring-up: bellows keeps it when a timeout cancels it."""
        with contextlib.suppress(Exception):
            self._complete(app.disconnect())

    def adopt_extended_pan_id(self, extended_pan_id: bytes) -> None:
        """CCS03 restored a log with another extended PAN ID: the next sync takes it."""
        self._log(f"adopting extended PAN ID {extended_pan_id.hex().upper()}")
        self._request_sync()

    def forget_network(self) -> None:
        raise GbcsError("a Communications Hub does not leave its own network")

    def close(self) -> None:
        """Shut the zigpy application down (the loop stays: other hubs may share it).

        A lost radio is shut down too: bellows' serial thread runs until it is.
        """
        if self._renew is not None:
            self._renew.cancel()
        self._closing = True  # bellows reports connection_lost(None) as the port closes
        if self.app is not None and (self._formed or self.lost is not None):
            shutdown = self.app.shutdown(db=False)
            if self.loop.is_running():  # from a zigpy callback: cannot wait for it here
                self._start(shutdown)
            elif self.lost is not None:
                with contextlib.suppress(Exception):  # a lost port may not close cleanly
                    self._complete(shutdown)
            else:
                self._complete(shutdown)
        self._formed = False

    # zigpy's connection_lost listener event --------------------------------------------
    def connection_lost(self, exc: BaseException | None) -> None:
        """The radio went away: unplugged, NCP failed, or zigpy's watchdog gave up.

        zigpy 2.4 only emits this event (``ControllerApplication.connection_lost``) and
        does not reconnect, so the radio stops here and says why: joined no more, no
        timers, and every later send, sync or state read fails naming the port.
        """
        if self._closing:
            return  # let go on purpose (close): not a loss
        why = describe_exception(exc) if exc is not None else "no reason given"
        self.lost = f"radio lost: {self.port}: {why}"
        LOGGER.error("%s: %s", self.name, self.lost)
        self._log(self.lost)
        self._formed = False
        self._permitted.clear()
        if self._renew is not None:
            self._renew.cancel()
            self._renew = None

    def _alive(self) -> None:
        """Raise the reason when the radio was lost."""
        if self.lost is not None:
            raise GbcsError(f"{self.name}: {self.lost}")

    # Trust centre: keep the coordinator in line with the CHF --------------------------
    def _request_sync(self) -> None:
        """The CHF's whitelist or network changed: sync after the current event."""
        if self._sync_pending or not self._formed or self._tc is None:
            return
        self._sync_pending = True
        self.clock.call_soon(self._start_sync)

    def _start_sync(self) -> None:
        self._sync_pending = False
        if not self._formed:  # lost since it was asked for
            return
        if self._sync_running:  # a slow radio: go again when this one ends
            self._sync_pending = True
            self.clock.call_later(1.0, self._start_sync)
            return
        self._spawn(self._sync())

    async def _sync(self) -> None:
        """Key table and extended PAN ID from the CHF's log; join windows as permits."""
        self._sync_running = True
        try:
            await self._sync_network()
            await self._sync_permits()
            self.syncs += 1
        finally:
            self._sync_running = False

    async def _sync_network(self) -> None:
        app, tc = self._app, self._tc
        log = tc.current_log()
        await app.load_network_info(load_devices=True)
        info = app.state.network_info
        have = {from_eui64(k.partner_ieee): bytes(k.key) for k in info.key_table}
        want = {
            e.device_id: bytes(e.tc_link_key_hash)
            for e in log.entries
            if bytes(e.tc_link_key_hash) != WELL_KNOWN_KEY  # never a key to admit with
        }
        epid = bytes(log.extended_pan_id)
        if have == want and from_eui64(info.extended_pan_id) == epid:
            return
        kept = {from_eui64(k.partner_ieee): k for k in info.key_table}
        key_table = [
            kept[eui]
            if eui in kept and bytes(kept[eui].key) == key
            else zigpy.state.Key(key=t.KeyData(key), partner_ieee=to_eui64(eui))
            for eui, key in want.items()
        ]
        new_info = info.replace(
            extended_pan_id=t.ExtendedPanId(epid[::-1]),
            key_table=key_table,
        )
        await app.write_network_info(network_info=new_info, node_info=app.state.node_info)
        await app.load_network_info(load_devices=False)
        self._permitted.clear()  # rewriting the network drops transient keys on EZSP
        self._log(
            f"coordinator key table {len(key_table)} entries, extended PAN ID {epid.hex().upper()}"
        )

    async def _sync_permits(self) -> None:
        """permit_with_link_key for each open CCS01 window; renewed before it lapses.

        A permit the CHF has since closed or shortened (CCS01 again) is taken back: the
        NCP's permit is closed and the windows still open are permitted again. EZSP's
        permit is one network-wide timer set by the last call, so the longest window is
        permitted last (a short one given last would shut the others out).
        """
        app, tc = self._app, self._tc
        now = self.clock.now
        windows = tc.join_windows
        wanted: dict[bytes, tuple[bytes, float]] = {}
        for entry in tc.current_log().entries:
            eui = entry.device_id
            key = tc.join_key(eui)
            if key is None:
                continue
            if bytes(key) == WELL_KNOWN_KEY:
                self._log(f"refusing to permit {eui.hex().upper()} with the well-known key")
                continue
            closes = windows.get(eui, now + PERMIT_MAX)
            if closes - now < 1:
                continue  # closing now: a permit would outlast the CHF's window
            wanted[eui] = (bytes(key), closes)
        stale = [
            eui
            for eui, (key, until) in self._permitted.items()
            if eui not in wanted or wanted[eui][0] != key or wanted[eui][1] < until - 1
        ]
        if stale:
            await app.permit_ncp(0)  # closes joining and (EZSP) the transient keys with it
            self._permitted.clear()
            self._log(f"permit taken back from {', '.join(e.hex().upper() for e in stale)}")
        renew_at: float | None = None
        for eui, (key, closes) in sorted(wanted.items(), key=lambda item: item[1][1]):
            seconds = min(PERMIT_MAX, int(closes - now))  # never past the window
            until = now + seconds
            held = self._permitted.get(eui)
            if held is None or held[0] != key or held[1] < min(closes, until) - 1:
                await app.permit_with_link_key(to_eui64(eui), t.KeyData(key), time_s=seconds)
                self._permitted[eui] = (key, until)
                self._log(f"permit {eui.hex().upper()} with its link key for {seconds} s")
            if closes > until:
                renew_at = until - 2 if renew_at is None else min(renew_at, until - 2)
        if not wanted and self._permitted:
            await app.permit_ncp(0)  # close joining: no window is open any more
            self._permitted.clear()
        if self._renew is not None:
            self._renew.cancel()
            self._renew = None
        if renew_at is not None:
            self._renew = self.clock.call_at(max(renew_at, now + 1), self._request_sync)

    # zigpy listener events ---------------------------------------------------------------
    def device_joined(self, device: Any) -> None:
        """zigpy learned of a device: describe it so zigpy does not interview it."""
        self._describe(device)

    def device_left(self, device: Any) -> None:
        eui = from_eui64(device.ieee)
        if self._children.pop(eui, None) is not None:
            self._log(f"{eui.hex().upper()} left")

    def handle_message(
        self,
        device: Any,
        profile: int,
        cluster: int,
        src_ep: int,
        dst_ep: int,
        data: bytes,
    ) -> None:
        """Every frame zigpy received from a known device, raw (zigpy drops SE ones)."""
        try:
            self._handle(device, profile, cluster, src_ep, bytes(data))
        except Exception as e:  # zigpy would swallow it silently: say so
            LOGGER.exception("%s: frame from %s not handled", self.name, device)
            self._log(f"frame not handled: {type(e).__name__}: {e}")

    def _handle(self, device: Any, profile: int, cluster: int, src_ep: int, data: bytes) -> None:
        eui = from_eui64(device.ieee)
        if profile == 0 and cluster == DEVICE_ANNOUNCE:
            if names_another_device(cluster, data, eui):
                # Any key holder can announce another device: only its own counts.
                self._log(f"Device_annce from {eui.hex().upper()} not about itself: ignored")
                return
            sleepy = not data[11] & 0x08  # capability: rx on when idle
            self._present(eui, device.nwk, sleepy, announce=True)
            return
        if profile != SMART_ENERGY_PROFILE:
            return
        child = self._present(eui, device.nwk, None)
        if child is None or cluster not in (TUNNELING_CLUSTER, TIME_CLUSTER):
            return
        child.endpoint = src_ep
        try:
            app = air.decode_application(profile, cluster, data)
        except GbcsError as e:
            self._log(f"malformed tunnel frame from {eui.hex().upper()}: {e}")
            return
        if cluster == TIME_CLUSTER:
            self._answer_time(child, app.zcl)
        else:
            self._tunnel(child, app)

    def _describe(self, device: Any) -> None:
        if device.node_desc is None:
            device.node_desc = zdo_t.NodeDescriptor(
                logical_type=zdo_t.LogicalType.EndDevice,
                complex_descriptor_available=0,
                user_descriptor_available=0,
                reserved=0,
                aps_flags=0,
                frequency_band=zdo_t.FrequencyBand.Freq2400MHz,
                mac_capability_flags=zdo_t.MACCapabilityFlags.AllocateAddress,
                manufacturer_code=0,
                maximum_buffer_size=82,
                maximum_incoming_transfer_size=1500,
                server_mask=0,
                maximum_outgoing_transfer_size=1500,
                descriptor_capability_field=zdo_t.DescriptorCapability.NONE,
            )
        if 1 not in device.endpoints:
            ep = device.add_endpoint(1)
            ep.profile_id = SMART_ENERGY_PROFILE
            ep.device_type = METER_DEVICE_TYPE
            ep.add_input_cluster(TUNNELING_CLUSTER)
            ep.add_output_cluster(TUNNELING_CLUSTER)
            ep.status = zigpy.endpoint.Status.ZDO_INIT
        device.model = device.model or "GBCS meter"
        device.manufacturer = device.manufacturer or "gbcs-hil"

    def _present(
        self, eui: bytes, nwk: int, sleepy: bool | None, *, announce: bool = False
    ) -> _Child | None:
        """A NWK-secured frame proves the device holds the network key: it has joined."""
        tc = self._tc
        if tc is None:
            return None
        child = self._children.get(eui)
        if child is not None and not announce:
            child.nwk = nwk
            return child  # the CHF decides whether it still listens to it
        if tc.rejoin_key(eui) is None:
            return child  # not in the CHF's device log: it does not join the CHF
        if sleepy is None:
            info = tc.devices.get(eui)
            sleepy = bool(info is not None and info.sleepy)
        if child is None:
            child = self._children[eui] = _Child(eui, int(nwk), sleepy)
        else:
            # Announced again. At a new address: a rejoin, and the meter opens a new tunnel.
            # Where it was (a rejoin that kept its address, or a re-announce): its tunnel is
            # kept, as a RequestTunnel after a rejoin gets a new one anyway. Either way the
            # CHF hears of it, as from the emulated coordinator.
            if child.nwk != int(nwk):
                child.tunnel_id = None
            child.nwk, child.sleepy = int(nwk), sleepy
        tc.device_joined(eui, sleepy=sleepy)
        self._log(f"{eui.hex().upper()} joined as {int(nwk):#06x}")
        self._request_sync()  # its join window has closed
        if not sleepy:
            # GBCS 10.2.2.1: the CHF opens an ESME's tunnel after key establishment (not
            # modelled); announced again, the ESME has (re)joined and holds none.
            child.tunnel_id = None
            self._ask_at(child, None, self.clock.now + tunnel_server.TUNNEL_AFTER_ANNOUNCE)
        return child

    # Tunnel: an ESME's client (GBCS 10.2.2.1), tunnel_server.EsmeTunnelClient's hooks ------
    def _tunnel_child(self, device: bytes) -> _Child | None:
        return self._children.get(device)

    def _send_request_tunnel(self, child: _Child) -> int | None:
        sequence = self._zcl_sequence
        self._send_zcl(child, RequestTunnel(), None)
        return sequence

    def _may_ask_now(self) -> bool:
        return self.lost is None and self._formed

    def _tunnel_hub(self) -> tunnel_server.TunnelHub | None:
        return self._tc

    def _send_tunnel_refusal(
        self, child: _Child, refusal: TransferDataError, sequence: int
    ) -> None:
        self._send_zcl(child, refusal, tunnel_server.from_hub(False), sequence=sequence)

    def _send_time(self, child: _Child, zcl: bytes, sequence: int) -> None:
        self._send_frame(child, zcl, TIME_CLUSTER, sequence)

    # Tunnel server (a GSME's) -----------------------------------------------------------
    def _tunnel(self, child: _Child, app: air.Application) -> None:
        if isinstance(app.tunnel, TransferDataError) and child.sleepy:
            # A GSME restarted while a GET-RESPONSE was held for its poll: the message is
            # the CHF's again, for its next GET, and counted out only once.
            data = tunnel_server.report_hand_over_refusal(
                self._recent_hand_overs, child.ieee, app.zcl, self._tc
            )
            hand_over = self._held_out.get(child.ieee)
            if data is not None and hand_over is not None and hand_over.data == data:
                del self._held_out[child.ieee]
            device = child.ieee.hex().upper()
            self._log(
                f"{device} refused a GET-RESPONSE: its message is held again"
                if data is not None
                else f"TransferDataError from {device} names no hand-over"
            )
            return
        if isinstance(app.tunnel, TransferDataError):
            # The child did not take a PUT (a reboot closed its tunnel): the CHF fails it,
            # and an ESME's client opens it a new tunnel for the next one.
            device = child.ieee.hex().upper()
            refusal = app.tunnel
            if (
                tunnel_server.report_refusal(
                    self._recent_puts, child.ieee, refusal, app.zcl, self._tc
                )
                is not None
            ):
                self._log(f"{device} refused a PUT on tunnel {refusal.tunnel_id}")
                if not child.sleepy:
                    child.tunnel_ask = None  # re-open at once, whatever was awaited
                    self._open_tunnel(child)
            else:
                self._log(f"TransferDataError from {device} names no PUT")
            return
        if not child.sleepy:
            self._esme_tunnel(child, app)
            return
        if isinstance(app.gbcs, GbcsGet):
            # It polls again: the GET-RESPONSE it was handed arrived, whatever its MAC
            # acknowledgements did (a late failure must not hand the message out twice).
            self._held_out.pop(child.ieee, None)
        assert self._tc is not None  # a child is present only while a CHF is attached
        reply = tunnel_server.serve(
            child.ieee, child.tunnel_id, app.tunnel, app.gbcs, self._tc, self._ids
        )
        child.tunnel_id = reply.tunnel_id
        if reply.command is not None:
            direction = reply.direction
            hand_over = None
            asked = app.zcl.sequence if reply.answers and app.zcl is not None else None
            if reply.held is not None:
                hand_over = self._held_out[child.ieee] = _HandOver(reply.held)
                if asked is None:
                    asked = self._zcl_sequence  # a command's own: the next
                    self._zcl_sequence = (asked + 1) % 256
                self._recent_hand_overs.sent(child.ieee, asked, reply.held)
            self._send_zcl(child, reply.command, direction, hand_over, sequence=asked)

    def _put(self, child: _Child, data: bytes) -> None:
        """PUT on the child's tunnel: to a GSME as its server, to an ESME as its client."""
        assert child.tunnel_id is not None
        command = tunnel_server.put(child.tunnel_id, GbcsPut(data))
        direction = tunnel_server.from_hub(child.sleepy)
        self._send_zcl(child, command, direction, pushed=None if child.sleepy else data)

    def _send_zcl(
        self,
        child: _Child,
        command: Any,
        direction: Direction | None,
        hand_over: _HandOver | None = None,
        *,
        pushed: bytes | None = None,
        sequence: int | None = None,
    ) -> None:
        """``sequence`` is the request's for a ZCL response (ZCL 2.4.1.3); else the next."""
        if sequence is None:
            sequence = self._zcl_sequence
            self._zcl_sequence = (sequence + 1) % 256
        if pushed is not None:
            self._recent_puts.sent(child.ieee, sequence, pushed)
        zcl = encode_zcl(
            tunnel_frame(
                command, sequence=sequence, direction=direction, disable_default_response=True
            )
        )
        self._send_frame(child, zcl, TUNNELING_CLUSTER, sequence, hand_over, pushed)

    def _send_frame(
        self,
        child: _Child,
        zcl: bytes,
        cluster: int,
        sequence: int,
        hand_over: _HandOver | None = None,
        pushed: bytes | None = None,
    ) -> None:
        """One ZCL frame to ``child`` through zigpy, from the Smart Energy endpoint."""
        app = self._app
        packet = t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=app.state.node_info.nwk),
            src_ep=self.endpoint,
            dst=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(child.nwk)),
            dst_ep=child.endpoint,
            # A sleepy child gets its frame only when it polls: bellows otherwise gives up
            # on EZSP's report after 3 s, before EZSP's indirect timeout (7.68 s) ends.
            extended_timeout=child.sleepy,
            tsn=sequence,
            profile_id=SMART_ENERGY_PROFILE,
            cluster_id=cluster,
            data=t.SerializableBytes(zcl),
            tx_options=t.TransmitOptions.NONE,
            radius=0,
        )
        task = self._spawn(self._send(child, packet, hand_over, pushed))
        if task is None:
            if hand_over is not None:
                # Nothing went out (the radio is lost): the message stays the CHF's, first
                # in line, rather than counting as handed over at the GSME's next poll.
                self._undelivered(child.ieee, hand_over)
        else:
            # It waits for the MAC's acknowledgements; a world dropped while a frame is in
            # the air never resumes it, as the clock's own pending events never run.
            task._log_destroy_pending = False  # type: ignore[attr-defined]

    async def _send(
        self,
        child: _Child,
        packet: t.ZigbeePacket,
        hand_over: _HandOver | None,
        pushed: bytes | None = None,
    ) -> None:
        """Send a frame; a hand-over that fails in any way is not delivered, and a message
        pushed to an always-listening child that fails is reported to the CHF.

        bellows reports a failed delivery as DeliveryError, as TimeoutError when EZSP's
        report does not come in time, and as ControllerError when the NCP has stopped.
        """
        try:
            await self._app.send_packet(packet)
        except Exception as e:
            if not isinstance(e, zigpy.exceptions.DeliveryError):
                LOGGER.warning("%s: send_packet failed", self.name, exc_info=e)
            self._log(f"frame to {child.ieee.hex().upper()} not delivered: {describe_exception(e)}")
            if hand_over is not None:
                self._undelivered(child.ieee, hand_over)
            elif pushed is not None and self._tc is not None:
                self._tunnel_in_doubt(child)
                self._tc.push_failed(child.ieee, pushed)
            return
        if hand_over is not None and self._held_out.get(child.ieee) is hand_over:
            del self._held_out[child.ieee]  # acknowledged: delivered

    def _undelivered(self, device: bytes, hand_over: _HandOver) -> None:
        """A GET-RESPONSE the GSME never acknowledged: its message goes back to the CHF,
        first in line, as on the emulated coordinator, unless the GSME has polled since."""
        if self._held_out.get(device) is not hand_over:
            self._log(f"{device.hex().upper()}: that hand-over is settled (polled again or failed)")
            return
        del self._held_out[device]
        self._recent_hand_overs.forget(device, hand_over.data)  # a late refusal is no second
        if self._tc is not None:
            self._log(f"held message for {device.hex().upper()} not delivered")
            self._tc.undelivered(device, hand_over.data)

    def take_hand_over(self, device: bytes) -> bytes | None:
        """The message handed to ``device`` and not yet acknowledged, no longer tracked:
        the CHF fails it (CCS02), so a later delivery failure must not hold it again."""
        hand_over = self._held_out.pop(device, None)
        if hand_over is None:
            return None
        self._recent_hand_overs.forget(device, hand_over.data)
        return hand_over.data

    def handed_out(self) -> dict[bytes, bytes]:
        """Held messages in a GET-RESPONSE the GSME may not have yet (not acknowledged)."""
        return {device: hand_over.data for device, hand_over in self._held_out.items()}

    # HanPort -----------------------------------------------------------------------------
    def child_sleepy(self, device: bytes) -> bool | None:
        """Whether a joined child is a sleepy end device (None: not a child)."""
        child = self._children.get(device)
        return None if child is None else child.sleepy

    def has_child(self, device: bytes) -> bool:
        """Whether ``device`` has joined this network and proved it holds the network key."""
        return device in self._children

    def reachable(self, peer: bytes) -> bool:
        child = self._children.get(peer)
        return self.lost is None and child is not None and child.tunnel_id is not None

    def tunnel_of(self, device: bytes) -> int | None:
        """The tunnel id the hub holds for ``device`` (None: none, or not a child)."""
        child = self._children.get(device)
        return None if child is None else child.tunnel_id

    def send_gbcs(self, peer: bytes, data: bytes) -> None:
        self._alive()
        child = self._children.get(peer)
        if child is None or child.tunnel_id is None:
            raise GbcsError(f"{peer.hex().upper()} has no GBCS tunnel to this hub")
        self._put(child, data)

    # State ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Settings in the emulated coordinator's shape (World.save reads them), plus zigpy's
        (refused once the radio was lost: its network is not known any more)."""
        self._alive()
        app = self._app
        if self._formed and not self.loop.is_running():
            self._run(app.load_network_info(load_devices=False))
        info = app.state.network_info
        settings = None
        if self._formed:
            settings = {
                "channel": int(info.channel),
                "pan_id": int(info.pan_id),
                "extended_pan_id": from_eui64(info.extended_pan_id).hex().upper(),
                "network_key": bytes(info.network_key.key).hex().upper(),
                "key_sequence": int(info.network_key.seq),
                "short_address": 0,
                "trust_centre": self.ieee.hex().upper(),
            }
        return {
            "ieee": self.ieee.hex().upper(),
            "backend": "zigpy",
            "settings": settings,
            "nwk_frame_counter": int(info.network_key.tx_counter),
            "aps_frame_counter": int(info.tc_link_key.tx_counter),
            "children": [
                {
                    "ieee": c.ieee.hex().upper(),
                    "short_address": c.nwk,
                    "sleepy": c.sleepy,
                    "endpoint": c.endpoint,
                    "tunnel_id": c.tunnel_id,
                    "tunnel_ask": None if c.tunnel_ask is None else c.tunnel_ask.to_json(),
                }
                for c in self._children.values()
            ],
            "next_tunnel": self._ids.next_id,
        }

    def load_state(self, obj: dict[str, Any]) -> None:
        """After a restart: frame counters, children and tunnels back (form() ran already).

        Read as strictly as the emulated coordinator's state, and all of it before
        anything changes: a damaged file leaves the radio as it was.
        """
        app = self._app
        saved = SavedState(obj)
        children: list[_Child] = []
        taken = SavedChildren()
        for c in saved.members("children"):
            ieee, short, tunnel = taken.claim(c)
            children.append(
                _Child(
                    ieee,
                    short,
                    c.flag("sleepy"),
                    c.integer("endpoint", 1, 0xF0),
                    tunnel,
                    tunnel_server.saved_ask(c),
                )
            )
        ids = tunnel_server.TunnelIds(saved.integer("next_tunnel", 1, 0xFFFF))
        nwk_counter = saved.integer("nwk_frame_counter", 0, 0xFFFFFFFF)
        aps_counter = saved.integer("aps_frame_counter", 0, 0xFFFFFFFF)

        async def restore() -> None:
            await app.load_network_info(load_devices=True)
            info = app.state.network_info
            new_info = info.replace(
                network_key=info.network_key.replace(
                    tx_counter=max(info.network_key.tx_counter, nwk_counter)
                ),
                tc_link_key=info.tc_link_key.replace(
                    tx_counter=max(info.tc_link_key.tx_counter, aps_counter)
                ),
                children=[to_eui64(c.ieee) for c in children],
                nwk_addresses={to_eui64(c.ieee): t.NWK(c.nwk) for c in children},
            )
            await app.write_network_info(network_info=new_info, node_info=app.state.node_info)
            await app.load_network_info(load_devices=False)
            for c in children:  # zigpy has no database here: tell it who is on the network
                device = app.devices.get(to_eui64(c.ieee)) or app.add_device(
                    to_eui64(c.ieee), t.NWK(c.nwk)
                )
                self._describe(device)
                app.device_initialized(device)

        self._run(restore())
        self._ids = ids
        self._children = {c.ieee: c for c in children}
        for c in children:
            self._rebook(c)
        self._request_sync()

    # Plumbing ---------------------------------------------------------------------------
    @property
    def _app(self) -> ControllerApplication:
        if self.app is None:
            raise GbcsError(f"{self.name}: the zigpy radio has not been placed yet")
        return self.app

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a zigpy call to its end (synchronous callers: forming, saving); refused
        with the reason once the radio was lost."""
        if self.lost is not None:
            coro.close()
            self._alive()
        return self._complete(coro)

    def _complete(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run a coroutine on the radio's loop to its end.

        On a VirtualTimeLoop the virtual clock advances until it is done. On an
        ordinary loop the wall clock turns the loop (timers firing) for at most
        ``sync_timeout`` real seconds; from inside that running loop it would
        deadlock, so it is refused.
        """
        loop = self.loop
        if isinstance(loop, VirtualTimeLoop):
            return loop.run_until_complete(coro)
        if loop.is_running():
            coro.close()
            raise RuntimeError(
                f"{self.name}: a synchronous zigpy call from inside its running event loop "
                "would deadlock; call it from synchronous code"
            )
        clock = self.clock
        if isinstance(clock, WallClock) and clock.loop is loop:
            return clock.complete(coro, timeout=self.sync_timeout)
        # A loop no clock turns: nothing on the clock can happen meanwhile.
        return loop.run_until_complete(asyncio.wait_for(coro, self.sync_timeout))

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[None] | None:
        """Start a zigpy call from the world's event handlers without waiting for it;
        dropped, saying why, once the radio was lost (None then)."""
        if self.lost is not None:
            coro.close()
            self._log(f"zigpy call dropped: {self.lost}")
            return None
        return self._start(coro)

    def _start(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[None] | None:
        """Start a coroutine on the radio's loop.

        On an ordinary loop it is a task: it starts in the wall clock's next slice
        (at once when the loop is running). None when the loop is closed.
        """
        spawn = getattr(self.loop, "spawn", None)
        if spawn is not None:
            return spawn(self._logged(coro))  # type: ignore[no-any-return]
        if self.loop.is_closed():
            coro.close()
            self._log("zigpy call dropped: the event loop is closed")
            return None
        return self.loop.create_task(self._logged(coro))

    async def _logged(self, coro: Coroutine[Any, Any, Any]) -> None:
        try:
            await coro
        except Exception as e:  # a radio error must not stop the world
            LOGGER.warning("%s: zigpy call failed", self.name, exc_info=e)
            self._log(f"zigpy call failed: {type(e).__name__}: {e}")

    def _log(self, text: str) -> None:
        if self.trace is not None:
            self.trace(f"{self.clock.now:10.4f} {self.name}: {text}")


def describe_exception(exc: BaseException) -> str:
    """``Type: message``, or ``Type (no detail given)`` for an exception without a message."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else f"{type(exc).__name__} (no detail given)"


def _global_key(eui: bytes, network_key: bytes) -> bytes:
    """A per-hub global TC link key that no device knows (the well-known one is refused)."""
    key = hashlib.sha256(b"gbcs-hil global tclk" + eui + network_key).digest()[:16]
    return key if key != WELL_KNOWN_KEY else bytes(16)
