"""The hub's side of the GBCS tunnel, whatever radio carries it.

A joined device asks for a tunnel (RequestTunnel, protocol GB-HRGP) and gets
its tunnel id; then TransferData carries the GBCS tunnel commands: PUT is a
message for the WAN, GET asks for the next message the hub holds for a sleepy
device and is answered with GET-RESPONSE (with the number still waiting). The
emulated coordinator and the zigpy hub radio both serve the tunnel with this.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from emulators.zigbee.tunnel import (
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    GbcsTunnelCommand,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TunnelCommand,
    encode_gbcs_tunnel,
)
from emulators.zigbee.zcl import Direction
from gbcs.errors import GbcsError
from gbcs.primitives import slot_builder

__all__ = ["TunnelHub", "TunnelIds", "TunnelReply", "serve"]


class TunnelHub(Protocol):
    """What the tunnel server asks of the CHF."""

    def from_han(self, device: bytes, data: bytes) -> None: ...

    def take_held(self, device: bytes) -> bytes | None: ...

    def held_count(self, device: bytes) -> int: ...


@dataclass(slots=True)
class TunnelIds:
    """Tunnel ids a hub hands out, 1..0xFFFF round robin."""

    next_id: int = 1

    def __post_init__(self) -> None:
        # Restored from saved state (the emulated coordinator's or zigpy's): 0 is no tunnel id.
        if isinstance(self.next_id, bool) or not isinstance(self.next_id, int):
            raise GbcsError(f"next tunnel id {self.next_id!r} is not an integer")
        if not 1 <= self.next_id <= 0xFFFF:
            raise GbcsError(f"next tunnel id {self.next_id} is outside 1..0xFFFF")

    def allocate(self) -> int:
        value = self.next_id
        self.next_id = value % 0xFFFF + 1
        return value


@dataclass(frozen=True, slots=True)
class TunnelReply:
    """What the hub sends back, and the device's tunnel id from now on."""

    tunnel_id: int | None
    command: TunnelCommand | None = None
    direction: Direction | None = None
    # The held message a GET-RESPONSE hands over: the hub gives it back to the CHF
    # (CommsHub.undelivered) if the radio cannot deliver it.
    held: bytes | None = None


# TunnelReply(...) through its twin: one per tunnel command a hub serves.
_reply = slot_builder(TunnelReply)


def serve(
    device: bytes,
    tunnel_id: int | None,
    tunnel: TunnelCommand | None,
    gbcs: GbcsTunnelCommand | None,
    hub: TunnelHub,
    ids: TunnelIds,
) -> TunnelReply:
    """One tunnel command from ``device`` (holding ``tunnel_id``), served."""
    if isinstance(tunnel, RequestTunnel):
        if tunnel_id is None:
            tunnel_id = ids.allocate()
        return _reply(tunnel_id, RequestTunnelResponse(tunnel_id), None, None)
    if not isinstance(tunnel, TransferData) or tunnel.tunnel_id != tunnel_id:
        return _reply(tunnel_id, None, None, None)
    if isinstance(gbcs, GbcsPut):
        hub.from_han(device, gbcs.message)
    elif isinstance(gbcs, GbcsGet):
        message = hub.take_held(device)
        if message is None:
            # GBCS: with no message for the GSME the CHF still answers, 0x02 || 0x00.
            return _reply(tunnel_id, put(tunnel_id, _NOTHING_HELD), None, None)
        remaining = min(hub.held_count(device), 0xFF)
        response = put(tunnel_id, GbcsGetResponse(remaining, message))
        return _reply(tunnel_id, response, None, message)
    return _reply(tunnel_id, None, None, None)


_NOTHING_HELD = GbcsGetResponse(0, b"")


def put(tunnel_id: int, command: GbcsTunnelCommand) -> TransferData:
    """A GBCS tunnel command to a device (the hub is the tunnel's server)."""
    return TransferData(tunnel_id, encode_gbcs_tunnel(command))
