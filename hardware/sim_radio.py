"""A zigpy radio library backed by the emulated HAN: ``sim://<place>`` in CI.

:class:`SimControllerApplication` is a zigpy ``ControllerApplication`` like
bellows' (config ``{"device": {"path": "sim://bench"}}``), whose "NCP"
(:class:`SimNcp`) is a coordinator on an :class:`emulators.medium.HanMedium`:
it reuses :class:`emulators.node.CoordinatorNode`'s MAC, NWK and APS machinery,
so every frame is a real PSDU in the capture. Unlike the emulated coordinator
it does not ask a CHF whom to admit: the radio's own state, written by zigpy,
decides, as on an EZSP NCP:

* **Joins** are admitted only for an EUI-64 that zigpy gave a link key with
  ``permit_with_link_key(ieee, key, time_s)``, while that window is open; the
  network key goes in a Transport Key under the key-transport key of that link
  key, so a device with a wrong install code never gets it. The key then moves
  into the key table (as EZSP keeps a joined device's link key).
* **The well-known key is never used**: ``permit_with_link_key`` with
  "ZigBeeAlliance09" raises :class:`WellKnownKeyRefused`, and so do
  ``permit_ncp(t)`` and ``permit(t)`` for ``t > 0`` (on a real NCP they open
  joining to every device holding that key). ``permit(0)`` / ``permit_ncp(0)``
  close every open window. A key-table entry holding it is ignored.
  :attr:`SimNcp.admitted` records every key a device was admitted with.
* **Trust-centre rejoins** are answered for devices in the key table that zigpy
  wrote with ``write_network_info`` (``NetworkInfo.key_table``: the device's
  hashed TC link key as partner), with the network key under that key; the
  network takes the extended PAN ID written there.
* **Its EUI-64 is its own** (``ieee=``; :func:`sim_hub_radio` makes the hub's dongle
  with the hub's): as a stick that cannot rewrite it, ``write_network_info`` refuses
  another one (the hub radio never asks, and refuses a hub of another EUI-64).
* Every NWK-secured APS data frame (reassembled when fragmented) goes to zigpy
  as a ``ZigbeePacket`` through ``packet_received``; ``send_packet`` sends
  zigpy's packets NWK-secured, APS-fragmented when longer than a block, and
  holds those for a joined sleepy child until it polls, as an EZSP NCP does. A
  device's admission is reported with ``handle_join`` (EZSP's trust-centre join
  handler) and its NWK leave with ``handle_leave``.

The application must run on the loop of the medium's clock
(:func:`hardware.zigpy_han.loop_for_clock`): the clock's
:class:`hardware.zigpy_han.VirtualTimeLoop` for simulated time, or a
:class:`emulators.clock.WallClock`'s own asyncio loop for real time (the same
radio then shows the real-time path in CI). Places are found by name:
:func:`register_place` (which :func:`sim_hub_radio` calls) makes
``sim://<name>`` point at a medium.
``send_packet`` returns when a unicast is delivered (the MAC acknowledgement of a
single frame, the APS acknowledgement of a fragmented payload's last window), and
raises ``DeliveryError`` when the MAC or the APS layer gave up after its retries,
as bellows does on EZSP's messageSentHandler; a broadcast returns once queued
(nothing acknowledges it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import zigpy.application
import zigpy.config as zconf
import zigpy.device
import zigpy.endpoint
import zigpy.exceptions
import zigpy.state
import zigpy.types as t
import zigpy.zdo.types as zdo_t

from emulators.clock import VirtualClock
from emulators.medium import HanMedium
from emulators.node import COORDINATOR, MAX_BLOCK, CoordinatorNode, NetworkSettings, Transfer
from emulators.zigbee import air
from emulators.zigbee.aps import ApsData, DeliveryMode
from emulators.zigbee.nwk import Leave, NwkFrame, RejoinRequest
from emulators.zigbee.security import FrameCounterExhausted
from gbcs.errors import GbcsError
from hardware.zigpy_han import (
    WELL_KNOWN_KEY,
    VirtualTimeLoop,
    WellKnownKeyRefused,
    ZigpyHubRadio,
    from_eui64,
    loop_for_clock,
    names_another_device,
    to_eui64,
)

__all__ = [
    "SCHEME",
    "Admission",
    "SimControllerApplication",
    "SimNcp",
    "WellKnownKeyRefused",
    "register_place",
    "sim_config",
    "sim_hub_radio",
]

LOGGER = logging.getLogger(__name__)
SCHEME = "sim"
_BROADCAST_FLOOR = 0xFFF8

_PLACES: weakref.WeakValueDictionary[str, HanMedium] = weakref.WeakValueDictionary()


def register_place(medium: HanMedium) -> str:
    """Make ``sim://<medium.name>`` name this medium; returns that path."""
    _PLACES[medium.name] = medium
    return f"{SCHEME}://{medium.name}"


def sim_config(path: str, **extra: Any) -> dict[str, Any]:
    """A zigpy config for a sim radio with zigpy's periodic background work off.

    Watchdog, backups, topology scans and OTA would each keep a timer on the
    virtual clock for ever (and OTA would go to the internet).
    """
    return {
        zconf.CONF_DEVICE: {zconf.CONF_DEVICE_PATH: path},
        zconf.CONF_WATCHDOG_ENABLED: False,
        zconf.CONF_NWK_BACKUP_ENABLED: False,
        zconf.CONF_TOPO_SCAN_ENABLED: False,
        zconf.CONF_OTA: {zconf.CONF_OTA_ENABLED: False},
        **extra,
    }


@dataclass(frozen=True, slots=True)
class Admission:
    """A device the NCP let in, and with which link key."""

    time: float
    ieee: bytes
    key: bytes
    how: str  # "join" or "rejoin"


class _NcpTrustCentre:
    """What :class:`CoordinatorNode` asks, answered from the NCP's own key state."""

    def __init__(self, ncp: SimNcp) -> None:
        self.ncp = ncp

    def join_key(self, device: bytes) -> bytes | None:
        ncp = self.ncp
        entry = ncp.transient.get(device)
        if entry is None or ncp.clock.now > entry[1] or entry[0] == WELL_KNOWN_KEY:
            ncp.refused.append((ncp.clock.now, device, "join"))
            return None
        ncp.admitted.append(Admission(ncp.clock.now, device, entry[0], "join"))
        return entry[0]

    def rejoin_key(self, device: bytes) -> bytes | None:
        ncp = self.ncp
        key = ncp.key_table.get(device)
        if key is None or key == WELL_KNOWN_KEY:
            ncp.refused.append((ncp.clock.now, device, "rejoin"))
            return None
        ncp.admitted.append(Admission(ncp.clock.now, device, key, "rejoin"))
        return key

    def logged(self, device: bytes) -> bool:
        """Looked at again, not admitted: nothing recorded."""
        return self.ncp.key_table.get(device) not in (None, WELL_KNOWN_KEY)

    def joining_open(self) -> bool:
        now = self.ncp.clock.now
        return any(now <= until for _, until in self.ncp.transient.values())

    def device_joined(self, device: bytes, *, sleepy: bool) -> None:
        """The device proved it holds the network key: keep its link key (EZSP does)."""
        entry = self.ncp.transient.pop(device, None)
        if entry is not None:
            self.ncp.key_table[device] = entry[0]

    def logged_sleepy(self, device: bytes) -> bool | None:  # an NCP keeps no device types
        return None

    def from_han(self, device: bytes, data: bytes) -> None:  # the host runs the tunnel
        pass

    def take_held(self, device: bytes) -> bytes | None:
        return None

    def held_count(self, device: bytes) -> int:
        return 0

    def undelivered(self, device: bytes, data: bytes) -> None:  # it never hands any out
        pass

    def push_failed(  # nor pushes any itself
        self, device: bytes, data: bytes, *, unsent: str | None = None
    ) -> None:
        pass

    def tunnel_refused(  # nor its PUTs
        self, device: bytes, data: bytes, status: int, *, may_have_run: bool = False
    ) -> None:
        pass


class SimNcp(CoordinatorNode):
    """The sim dongle: PAN coordinator and trust centre, admitting what zigpy allowed."""

    runs_tunnels = False  # the host (ZigpyHubRadio) opens an ESME's tunnel

    def __init__(self, clock: VirtualClock, ieee: bytes, *, name: str = "") -> None:
        super().__init__(clock, ieee, name=name)
        self.trust_centre = _NcpTrustCentre(self)
        self.transient: dict[bytes, tuple[bytes, float]] = {}  # eui -> link key, open until
        self.key_table: dict[bytes, bytes] = {}  # eui -> TC link key (rejoins)
        self.tc_link_key: bytes = bytes(16)
        self.admitted: list[Admission] = []
        self.refused: list[tuple[float, bytes, str]] = []
        self.on_join: Callable[[bytes, int], None] | None = None
        self.on_leave: Callable[[bytes, int], None] | None = None
        self.on_packet: Callable[[bytes | None, NwkFrame, ApsData, bytes], None] | None = None
        # Unicast transfers the host waits on -> told None when delivered, else why not.
        self._awaiting: dict[Transfer, Callable[[str | None], None]] = {}

    # Joins ------------------------------------------------------------------------------
    def _admits(self, device: bytes) -> bool:
        """Whether zigpy's permit for ``device`` still stands now its association is
        acknowledged: a permit it closed meanwhile (or a reset) admits nobody."""
        entry = self.transient.get(device)
        return entry is not None and self.clock.now <= entry[1] and entry[0] != WELL_KNOWN_KEY

    def _send_network_key(self, device: bytes, link_key: bytes) -> bool:
        if not super()._send_network_key(device, link_key):
            return False  # no key went: zigpy is not told of a join
        child = self.joining_child(device)  # a rejoin's new address, not the old record's
        if child is not None and self.on_join is not None:
            self.on_join(device, child.short_address)
        return True

    # Frames up to the host ------------------------------------------------------------
    def nwk_frame(self, decoded: air.Decoded) -> None:
        nwk, aps = decoded.nwk, decoded.aps
        if nwk is None or self.settings is None:
            return
        if isinstance(nwk.payload, Leave):
            device = nwk.security.source if nwk.security else None
            known = device is not None and device in self.children
            super().nwk_frame(decoded)
            # Told only of a leave the coordinator took (not a spoofed one, not a request).
            gone = known and device not in self.children
            if gone and device is not None and self.on_leave is not None:
                self.on_leave(device, nwk.src)
            return
        if (
            isinstance(nwk.payload, RejoinRequest)
            or nwk.security is None
            or not isinstance(aps, ApsData)
        ):
            super().nwk_frame(decoded)
            return
        device = nwk.security.source
        child = self.children.get(device) if device is not None else None
        if child is not None and not child.announced:
            self._announced(device, nwk.src)  # type: ignore[arg-type]
        whole = self._aps_payload(nwk.src, aps)
        if whole is None:
            return
        if aps.dst_endpoint == 0 and names_another_device(aps.cluster_id, whole, device):
            # zigpy takes any frame to endpoint 0 as ZDO, whatever its profile, and moves a
            # device to wherever a Device_annce or address response puts it: as the emulated
            # coordinator, the sim NCP takes those only about the device that secured them.
            self._drop(f"ZDO 0x{aps.cluster_id:04X} about another device than its sender")
            return
        if self.on_packet is not None:
            self.on_packet(device, nwk, aps, whole)

    # Frames down from the host ------------------------------------------------------------
    def send_aps(
        self,
        *,
        dst: int,
        profile: int,
        cluster: int,
        src_ep: int,
        dst_ep: int,
        data: bytes,
        radius: int = 0,
    ) -> Transfer | None:
        """One APS payload, NWK-secured, in blocks of MAX_BLOCK when it is longer (those
        acknowledged at the APS layer, a window at a time, as the emulated nodes do).

        Returns the transfer to await, or None for a broadcast (nothing acknowledges it).
        """
        settings = self.settings
        if settings is None:
            raise zigpy.exceptions.DeliveryError("the network is not formed")
        broadcast = dst >= _BROADCAST_FLOOR
        if broadcast and len(data) > MAX_BLOCK:
            raise zigpy.exceptions.DeliveryError("broadcasts cannot be APS-fragmented")
        if broadcast and self.lost is not None:  # its NWK frame counter is used up
            # Refused before an APS counter is taken for it (a unicast fails as undelivered).
            raise zigpy.exceptions.DeliveryError(str(self._exhausted("NWK")))
        frames = air.application_frames(
            data,
            cluster_id=cluster,
            counter=self.counters.next("aps"),
            src_endpoint=src_ep,
            dst_endpoint=dst_ep,
            profile_id=profile,
            max_block=MAX_BLOCK,
            ack_request=len(data) > MAX_BLOCK,
        )
        if not broadcast:
            return self._send_payload(settings, dst, frames, radius or 30)
        (aps,) = frames
        broadcast_aps = dataclasses.replace(aps, delivery_mode=DeliveryMode.BROADCAST)
        psdu = self._frame(broadcast_aps, settings, dst, radius or 30)
        self._transmit(psdu, settings.pan_id, 0xFFFF)
        return None

    def await_delivery(self, transfer: Transfer, outcome: Callable[[str | None], None]) -> None:
        """Call ``outcome(None)`` once ``transfer`` is delivered, else with the reason."""
        if transfer.finished:
            outcome(transfer.outcome)
        else:
            self._awaiting[transfer] = outcome

    def transfer_done(self, transfer: Transfer) -> None:
        super().transfer_done(transfer)
        outcome = self._awaiting.pop(transfer, None) if self._awaiting else None
        if outcome is not None:
            outcome(transfer.outcome)

    def ask_to_leave(self, device: bytes) -> None:
        """NWK leave request to a child (what ``force_remove`` does on an NCP)."""
        settings = self.settings
        child = self.children.pop(device, None)
        self.key_table.pop(device, None)
        if settings is None or child is None:
            return
        self._drop_held(child.short_address, "zigpy removed its device")
        try:
            security = self._security(settings)
        except FrameCounterExhausted:
            return  # traced: removed here, but not told to leave
        psdu = air.leave(
            mac_sequence=self.counters.next("mac"),
            nwk_sequence=self.counters.next("nwk"),
            pan_id=settings.pan_id,
            src=COORDINATOR,
            dst=child.short_address,
            security=security,
            request=True,
            src_ieee=self.ieee,
        )
        self._send_acked(psdu, settings.pan_id, child.short_address)


def _network_of(settings: NetworkSettings) -> tuple[int, int, bytes, bytes]:
    """What a frame under way belongs to: written again the same, it stays under way."""
    return settings.channel, settings.pan_id, settings.extended_pan_id, settings.network_key


def _settle(future: asyncio.Future[str | None], reason: str | None) -> None:
    """The first outcome of a packet's blocks decides it (a failure, or the last ack)."""
    if not future.done():
        future.set_result(reason)


def _parse_path(path: str) -> str:
    parts = urlsplit(path)
    if parts.scheme != SCHEME or not parts.netloc:
        raise ConnectionRefusedError(f"{path!r} is not a {SCHEME}://<place> path")
    return parts.netloc


def _default_ieee(path: str) -> bytes:
    """A stable EUI-64 for a sim dongle made without one."""
    return b"\x00\xdb\x5e" + hashlib.sha256(path.encode()).digest()[:5]


class SimControllerApplication(zigpy.application.ControllerApplication):
    """zigpy on the emulated HAN (see the module docstring)."""

    DISPLAY_NAME = "gbcs-hil emulated HAN"
    DESCRIPTION = "A simulated NCP on the gbcs-hil emulated 802.15.4 medium"

    def __init__(self, config: dict[str, Any], *, ieee: bytes | None = None) -> None:
        """``ieee``: the sim dongle's own EUI-64 (None: one derived from its path)."""
        super().__init__(config)
        if ieee is not None and len(ieee) != 8:
            raise GbcsError(f"a sim dongle's EUI-64 is 8 bytes, not {ieee.hex().upper()!r}")
        self._ieee = ieee
        self._ncp: SimNcp | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._descriptors: dict[int, zdo_t.SimpleDescriptor] = {}

    @property
    def ncp(self) -> SimNcp:
        if self._ncp is None:
            raise zigpy.exceptions.ControllerException("not connected")
        return self._ncp

    # Connection -------------------------------------------------------------------------
    async def connect(self) -> None:
        path = self.config[zconf.CONF_DEVICE][zconf.CONF_DEVICE_PATH]
        place = _parse_path(path)
        medium = _PLACES.get(place)
        if medium is None:
            raise ConnectionRefusedError(f"no emulated place {place!r} (register_place)")
        loop = asyncio.get_running_loop()
        if loop is not loop_for_clock(medium.clock):
            raise zigpy.exceptions.ControllerException(
                "a sim:// radio runs on the loop of its medium's clock "
                "(its VirtualTimeLoop, or a WallClock's own loop)"
            )
        self._loop = loop
        if self._ncp is None or self._ncp.clock is not medium.clock:
            ieee = self._ieee if self._ieee is not None else _default_ieee(path)
            self._ncp = SimNcp(medium.clock, ieee, name=path)
        ncp = self._ncp
        ncp.on_join = self._ncp_join
        ncp.on_leave = self._ncp_leave
        ncp.on_packet = self._ncp_packet
        ncp.place(medium)
        self._descriptors.clear()
        await self.register_endpoints()

    def relocate(self, medium: HanMedium | None) -> None:
        """The dongle was carried somewhere else (or unplugged: None)."""
        if self._ncp is not None:
            self._ncp.place(medium)

    async def disconnect(self) -> None:
        if self._ncp is not None:
            self._ncp.place(None)

    async def ncp_eui64(self) -> t.EUI64:
        """The sim dongle's own EUI-64, as EZSP's getEui64 gives it."""
        return to_eui64(self.ncp.ieee)

    async def add_endpoint(self, descriptor: zdo_t.SimpleDescriptor) -> None:
        self._descriptors[descriptor.endpoint] = descriptor

    # Network settings -----------------------------------------------------------------------
    async def start_network(self) -> None:
        await self.load_network_info(load_devices=False)
        ieee = self.state.node_info.ieee
        device = zigpy.device.Device(self, ieee, self.state.node_info.nwk)
        device.node_desc = zdo_t.NodeDescriptor(
            logical_type=zdo_t.LogicalType.Coordinator,
            complex_descriptor_available=0,
            user_descriptor_available=0,
            reserved=0,
            aps_flags=0,
            frequency_band=zdo_t.FrequencyBand.Freq2400MHz,
            mac_capability_flags=(
                zdo_t.MACCapabilityFlags.AlternatePanCoordinator
                | zdo_t.MACCapabilityFlags.FullFunctionDevice
                | zdo_t.MACCapabilityFlags.MainsPowered
                | zdo_t.MACCapabilityFlags.RxOnWhenIdle
                | zdo_t.MACCapabilityFlags.AllocateAddress
            ),
            manufacturer_code=0,
            maximum_buffer_size=82,
            maximum_incoming_transfer_size=1500,
            server_mask=0,
            maximum_outgoing_transfer_size=1500,
            descriptor_capability_field=zdo_t.DescriptorCapability.NONE,
        )
        for descriptor in self._descriptors.values():
            ep = zigpy.endpoint.Endpoint(device, descriptor.endpoint)
            ep.profile_id = descriptor.profile
            ep.device_type = descriptor.device_type
            for cluster in descriptor.input_clusters:
                ep.add_input_cluster(cluster)
            for cluster in descriptor.output_clusters:
                ep.add_output_cluster(cluster)
            ep.status = zigpy.endpoint.Status.ZDO_INIT
            device.endpoints[descriptor.endpoint] = ep
        device.model = "sim NCP"
        device.manufacturer = "gbcs-hil"
        self.devices[ieee] = device

    async def load_network_info(self, *, load_devices: bool = False) -> None:
        ncp = self.ncp
        settings = ncp.settings
        if settings is None:
            raise zigpy.exceptions.NetworkNotFormed("the sim NCP has no network")
        self.state.node_info = zigpy.state.NodeInfo(
            nwk=t.NWK(COORDINATOR),
            ieee=to_eui64(ncp.ieee),
            logical_type=zdo_t.LogicalType.Coordinator,
            manufacturer="gbcs-hil",
            model="sim NCP",
            version="1",
        )
        info = zigpy.state.NetworkInfo(
            source="gbcs-hil-sim",
            extended_pan_id=t.ExtendedPanId(settings.extended_pan_id[::-1]),
            pan_id=t.PanId(settings.pan_id),
            nwk_update_id=0,
            nwk_manager_id=t.NWK(COORDINATOR),
            channel=settings.channel,
            channel_mask=t.Channels.from_channel_list([settings.channel]),
            security_level=5,
            network_key=zigpy.state.Key(
                key=t.KeyData(settings.network_key),
                tx_counter=ncp.counters.nwk_frame,
                seq=settings.key_sequence,
            ),
            tc_link_key=zigpy.state.Key(
                key=t.KeyData(ncp.tc_link_key),
                tx_counter=ncp.counters.aps_frame,
                partner_ieee=to_eui64(ncp.ieee),
            ),
            key_table=[],
            children=[],
            nwk_addresses={},
        )
        if load_devices:
            info.key_table = [
                zigpy.state.Key(key=t.KeyData(key), partner_ieee=to_eui64(eui))
                for eui, key in ncp.key_table.items()
            ]
            info.children = [to_eui64(eui) for eui in ncp.children]
            info.nwk_addresses = {
                to_eui64(eui): t.NWK(c.short_address) for eui, c in ncp.children.items()
            }
        self.state.network_info = info

    async def write_network_info(
        self, *, network_info: zigpy.state.NetworkInfo, node_info: zigpy.state.NodeInfo
    ) -> None:
        """Form (or re-form) the network from zigpy's settings, keeping listed children.

        As a stick that cannot rewrite its IEEE address, it refuses another one (bellows
        raises CannotWriteNetworkSettings or DestructiveWriteNetworkSettings there).
        """
        ncp = self.ncp
        if node_info.ieee not in (t.EUI64.UNKNOWN, to_eui64(ncp.ieee)):
            raise zigpy.exceptions.CannotWriteNetworkSettings(
                f"the sim dongle's EUI-64 is {ncp.ieee.hex().upper()}: it is not rewritten "
                f"to {from_eui64(node_info.ieee).hex().upper()}"
            )
        keep = {from_eui64(e) for e in network_info.children}
        before = None if ncp.settings is None else _network_of(ncp.settings)
        try:
            ncp.form(
                int(network_info.channel),
                int(network_info.pan_id),
                from_eui64(network_info.extended_pan_id),
                bytes(network_info.network_key.key),
            )
        except GbcsError as e:
            raise zigpy.exceptions.FormationFailure(str(e)) from e
        assert ncp.settings is not None
        ncp.settings.key_sequence = int(network_info.network_key.seq)
        ncp.settings.trust_centre = ncp.ieee
        ncp.counters.nwk_frame = max(ncp.counters.nwk_frame, network_info.network_key.tx_counter)
        ncp.counters.aps_frame = max(ncp.counters.aps_frame, network_info.tc_link_key.tx_counter)
        ncp.tc_link_key = bytes(network_info.tc_link_key.key)
        if before is not None and before != _network_of(ncp.settings):
            ncp._drop_transfers("the network was written anew")
        ncp.children = {eui: c for eui, c in ncp.children.items() if eui in keep}
        ncp.transient.clear()
        ncp.key_table = {}
        for key in network_info.key_table:
            if bytes(key.key) == WELL_KNOWN_KEY:
                LOGGER.warning("ignoring a key-table entry with the well-known key")
                continue
            ncp.key_table[from_eui64(key.partner_ieee)] = bytes(key.key)

    async def reset_network_info(self) -> None:
        ncp = self.ncp
        ncp._drop_transfers("the network was reset")
        ncp.settings = None
        ncp.pan_id = ncp.short_address = None
        ncp.children.clear()
        ncp.transient.clear()
        ncp.key_table.clear()

    # Joining ------------------------------------------------------------------------------
    async def permit(self, time_s: int = 60, node: t.EUI64 | str | None = None) -> None:
        """Only closing is allowed: opening would admit any device with the well-known key."""
        if time_s > 0:
            raise WellKnownKeyRefused(
                "the sim NCP does not open joining to every device: use permit_with_link_key"
            )
        await super().permit(0, node)

    async def permit_ncp(self, time_s: int = 60) -> None:
        if time_s > 0:
            raise WellKnownKeyRefused(
                "the sim NCP does not open joining to every device: use permit_with_link_key"
            )
        self.ncp.transient.clear()

    async def permit_with_link_key(
        self, node: t.EUI64, link_key: t.KeyData, time_s: int = 60
    ) -> None:
        key = bytes(link_key)
        if key == WELL_KNOWN_KEY:
            raise WellKnownKeyRefused("a device is never admitted with the well-known key")
        ncp = self.ncp
        eui = from_eui64(node)
        if time_s <= 0:
            ncp.transient.pop(eui, None)
            return
        ncp.transient[eui] = (key, ncp.clock.now + time_s)

    async def force_remove(self, dev: zigpy.device.Device) -> None:
        self.ncp.ask_to_leave(from_eui64(dev.ieee))

    # Data ------------------------------------------------------------------------------------
    async def send_packet(self, packet: t.ZigbeePacket) -> None:
        ncp = self.ncp
        dst = packet.dst
        if dst is None:
            raise zigpy.exceptions.DeliveryError("no destination")
        if dst.addr_mode == t.AddrMode.NWK or dst.addr_mode == t.AddrMode.Broadcast:
            address = int(dst.address)
        elif dst.addr_mode == t.AddrMode.IEEE:
            child = ncp.children.get(from_eui64(dst.address))
            if child is None:
                raise zigpy.exceptions.DeliveryError(f"{dst.address} is not a child")
            address = child.short_address
        else:
            raise zigpy.exceptions.DeliveryError("group addressing is not supported")
        if address == COORDINATOR:
            return  # to ourselves: the NCP's own ZDO is not emulated
        transfer = ncp.send_aps(
            dst=address,
            profile=int(packet.profile_id),
            cluster=int(packet.cluster_id),
            src_ep=int(packet.src_ep or 0),
            dst_ep=int(packet.dst_ep or 0),
            data=packet.data.serialize(),
            radius=int(packet.radius),
        )
        if transfer is None:
            return
        sent = asyncio.get_running_loop().create_future()
        ncp.await_delivery(transfer, lambda reason: self._in_loop(_settle, sent, reason))
        reason = await sent
        if reason is not None:
            raise zigpy.exceptions.DeliveryError(f"{dst.address}: {reason}")

    # NCP callbacks (on the virtual clock): into zigpy, inside the loop ----------------------
    def _in_loop(self, callback: Callable[..., Any], *args: Any) -> None:
        """Hand zigpy an NCP event: at once in virtual time, in the next slice in real time."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon(callback, *args)
        if isinstance(loop, VirtualTimeLoop):
            loop.pump()

    def _ncp_join(self, ieee: bytes, nwk: int) -> None:
        self._in_loop(self.handle_join, t.NWK(nwk), to_eui64(ieee), t.NWK(COORDINATOR))

    def _ncp_leave(self, ieee: bytes, nwk: int) -> None:
        self._in_loop(self.handle_leave, t.NWK(nwk), to_eui64(ieee))

    def _ncp_packet(self, ieee: bytes | None, nwk: NwkFrame, aps: ApsData, data: bytes) -> None:
        broadcast = nwk.dst >= _BROADCAST_FLOOR
        packet = t.ZigbeePacket(
            src=t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(nwk.src)),
            src_ep=aps.src_endpoint,
            dst=(
                t.AddrModeAddress(addr_mode=t.AddrMode.Broadcast, address=nwk.dst)
                if broadcast
                else t.AddrModeAddress(addr_mode=t.AddrMode.NWK, address=t.NWK(COORDINATOR))
            ),
            dst_ep=aps.dst_endpoint if aps.dst_endpoint is not None else 0,
            tsn=aps.counter,
            profile_id=aps.profile_id,
            cluster_id=aps.cluster_id,
            data=t.SerializableBytes(data),
            lqi=255,
            rssi=-40,
        )
        self._in_loop(self._deliver, ieee, packet)

    def _deliver(self, ieee: bytes | None, packet: t.ZigbeePacket) -> None:
        """As EZSP does for an unknown sender, name it from the NCP's tables first."""
        nwk = packet.src.address if packet.src is not None else None
        if ieee is not None and nwk is not None:
            try:
                self.get_device(nwk=nwk)
            except KeyError:
                self.handle_join(nwk, to_eui64(ieee), t.NWK(COORDINATOR), handle_rejoin=False)
        self.packet_received(packet)


def sim_hub_radio(clock: VirtualClock, eui: bytes, name: str) -> ZigpyHubRadio:
    """A ``World.hub_radio`` factory: the CHF on zigpy on a sim NCP at the hub's place."""

    def app_factory(medium: HanMedium | None) -> SimControllerApplication:
        if medium is None:
            raise GbcsError("a sim:// radio needs a place")
        # The hub's dongle: the kit gives a hub its dongle's EUI-64, never the other way.
        return SimControllerApplication(sim_config(f"{register_place(medium)}"), ieee=eui)

    return ZigpyHubRadio(clock, eui, name, app_factory=app_factory)
