"""A bellows application whose EZSP commands are recorded instead of sent to an NCP.

bellows' own :class:`bellows.ezsp.EZSP` and its v13 protocol handler run unchanged
(``pre_permit``, ``add_transient_link_key``, the commands' serialisation); only
``ProtocolHandler.command``, the one place a frame goes to the wire, is replaced by a
recorder that answers from a table, as bellows' own tests do. Forming is stubbed at the
application level (``write_network_info`` keeps what it was given, ``load_network_info``
hands it back, ``start_network`` builds the coordinator device): an NCP's network state is
not the point of these tests, what reaches it is.
"""

from __future__ import annotations

import asyncio
import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bellows.types as bt
import zigpy.config as zconf
import zigpy.device
import zigpy.state
import zigpy.types as t
from bellows.config import CONF_USE_THREAD
from bellows.ezsp import EZSP
from zigpy.application import ControllerApplication

from hardware.realtime import SerialSettings, bellows_app

WELL_KNOWN_KEY = b"ZigBeeAlliance09"
EVERY_EUI64 = t.EUI64.convert("ff:ff:ff:ff:ff:ff:ff:ff")


@dataclass(frozen=True, slots=True)
class Command:
    """One EZSP command as the NCP would get it: its arguments by name and its frame."""

    time: float
    name: str
    args: dict[str, Any]
    frame: bytes


@dataclass(frozen=True, slots=True)
class Wire:
    """What reached the NCP, and what the recorded NCP is (its own EUI-64)."""

    ncp_eui64: t.EUI64
    commands: list[Command] = field(default_factory=list)
    written: list[zigpy.state.NodeInfo] = field(default_factory=list)  # write_network_info's
    links: list[str] = field(default_factory=list)  # "connect" and "disconnect", in order

    def named(self, name: str) -> list[Command]:
        return [c for c in self.commands if c.name == name]

    def transient_keys(self) -> list[tuple[t.EUI64, bytes]]:
        """Every transient link key imported (EZSP v13+) or added (older), for whom."""
        keys = []
        for c in self.named("importTransientKey") + self.named("addTransientLinkKey"):
            eui = c.args.get("eui64", c.args.get("partner"))
            key = c.args.get("plaintext_key", c.args.get("transientKey"))
            keys.append((t.EUI64(eui), bytes(key)))
        return keys

    def tc_policies(self) -> list[tuple[float, int]]:
        """Every trust-centre policy set, with when."""
        return [
            (c.time, int(c.args["decisionId"]))
            for c in self.named("setPolicy")
            if c.args["policyId"] == bt.EzspPolicyId.TRUST_CENTER_POLICY
        ]


def _replies(wire: Wire) -> dict[str, list[Any]]:
    return {
        "getEui64": [wire.ncp_eui64],
        "importTransientKey": [bt.sl_Status.OK],
        "setPolicy": [bt.sl_Status.OK],
        "permitJoining": [bt.sl_Status.OK],
    }


def _recorded_ezsp(ezsp: EZSP, wire: Wire) -> EZSP:
    """bellows' EZSP switched to protocol v13, started, its commands going to ``wire``."""
    ezsp._switch_protocol_version(13)
    protocol = ezsp._protocol
    replies = _replies(wire)
    start = asyncio.get_running_loop().time()

    async def command(name: str, *args: Any, **kwargs: Any) -> Any:
        schema = protocol.COMMANDS[name][1]
        named = {**dict(zip(schema, args, strict=False)), **kwargs}
        frame = protocol._ezsp_frame(name, *args, **kwargs)
        now = asyncio.get_running_loop().time() - start
        wire.commands.append(Command(now, name, named, frame))
        return replies.get(name, [bt.sl_Status.OK])

    protocol.command = command  # type: ignore[method-assign]
    ezsp.start_ezsp()
    return ezsp


def record(
    app: ControllerApplication, wire: Wire, *, serial: bool = False
) -> ControllerApplication:
    """``app`` (the kit's bellows application) talking to a recorded NCP.

    ``serial``: connect for real first (bellows' serial port and its thread, to a fake
    NCP that answers the reset and the version), then record the commands.
    """

    async def connect(self: Any) -> None:
        wire.links.append("connect")
        ezsp = EZSP(self.config[zconf.CONF_DEVICE], self)
        if serial:
            await ezsp.connect(use_thread=self.config[CONF_USE_THREAD])
        self._ezsp = _recorded_ezsp(ezsp, wire)

    async def disconnect(self: Any) -> None:
        wire.links.append("disconnect")
        ezsp, self._ezsp = self._ezsp, None
        if ezsp is not None:
            await ezsp.disconnect()  # bellows': closes the port and ends its thread

    async def write_network_info(
        self: Any, *, network_info: zigpy.state.NetworkInfo, node_info: zigpy.state.NodeInfo
    ) -> None:
        wire.written.append(node_info)
        # bellows keeps the NCP's own EUI-64 for an unknown one (write_network_info).
        ieee = wire.ncp_eui64 if node_info.ieee == t.EUI64.UNKNOWN else node_info.ieee
        self._written = (network_info, dataclasses.replace(node_info, ieee=ieee))

    async def load_network_info(self: Any, *, load_devices: bool = False) -> None:
        self.state.network_info, self.state.node_info = self._written

    async def start_network(self: Any) -> None:
        node = self.state.node_info
        device = zigpy.device.Device(self, node.ieee, node.nwk)
        device.add_endpoint(1)  # bellows makes the coordinator's endpoints from the registered
        self.devices[node.ieee] = device
        self.controller_event.set()

    async def send_packet(self: Any, packet: t.ZigbeePacket) -> None:
        """ZDO and Green Power broadcasts: not EZSP commands the NCP keeps."""

    for method in (
        connect,
        disconnect,
        write_network_info,
        load_network_info,
        start_network,
        send_packet,
    ):
        setattr(app, method.__name__, types.MethodType(method, app))
    return app


def recorded_bellows(
    wire: Wire, *, serial: bool = False
) -> Callable[[SerialSettings], ControllerApplication]:
    """A ``DongleRadioFactory`` app factory: the kit's bellows application on ``wire``
    (watchdog off: its EZSP counters are not recorded); ``serial`` as :func:`record`'s."""

    def factory(settings: SerialSettings) -> ControllerApplication:
        app = bellows_app(settings, **{zconf.CONF_WATCHDOG_ENABLED: False})
        return record(app, wire, serial=serial)

    return factory
