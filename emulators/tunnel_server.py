"""The hub's side of the GBCS tunnel, whatever radio carries it.

A joined device asks for a tunnel (RequestTunnel, protocol GB-HRGP without flow
control, as GBCS 10.2.2 fixes them; any other is refused) and gets its tunnel
id; then TransferData carries the GBCS tunnel commands: PUT is a message for the
WAN, GET asks for the next message the hub holds for a sleepy device and is
answered with GET-RESPONSE (with the number still waiting). The emulated
coordinator and the zigpy hub radio both serve the tunnel with this.

TransferData on a tunnel the device does not hold is answered TransferDataError
"no such tunnel" (ZCL 10.6), so the device opens a new one; TransferData longer
than the 1500 octets advertised, "data overflow". A device's own
TransferDataError (it refused a PUT: a reboot closed its tunnel) is the radio's to
match with the PUT it answers (same ZCL sequence number) and report to the CHF.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from emulators.zigbee.tunnel import (
    GBCS_MANUFACTURER_CODE,
    GBCS_PROTOCOL_ID,
    MAX_TRANSFER_SIZE,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    GbcsTunnelCommand,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
    TransferDataStatus,
    TunnelCommand,
    TunnelStatus,
    encode_gbcs_tunnel,
)
from emulators.zigbee.zcl import Direction, ZclFrame
from gbcs.errors import GbcsError
from gbcs.primitives import slot_builder

__all__ = [
    "RecentPuts",
    "TunnelHub",
    "TunnelIds",
    "TunnelReply",
    "put",
    "report_refusal",
    "serve",
    "transfer_refusal",
    "tunnel_refusal",
]


class TunnelHub(Protocol):
    """What the tunnel server asks of the CHF."""

    def from_han(self, device: bytes, data: bytes) -> None: ...

    def take_held(self, device: bytes) -> bytes | None: ...

    def held_count(self, device: bytes) -> int: ...

    def tunnel_refused(self, device: bytes, data: bytes, status: int) -> None: ...


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
    # A ZCL response (RequestTunnelResponse, TransferDataError): it carries its request's
    # sequence number (ZCL 2.4.1.3); a TransferData to the client takes the hub's next one.
    answers: bool = False


RECENT_PUTS = 16
"""PUTs a hub remembers for matching a refusal: a device refuses at once, so a few do."""


@dataclass(slots=True)
class RecentPuts:
    """The last messages a hub PUT to always-listening devices, by (device, ZCL sequence
    number). A device that did not take one answers TransferDataError with the same
    sequence number (a response's, ZCL 2.4.1.3), which names the message it refused."""

    _sent: dict[tuple[bytes, int], bytes] = field(default_factory=dict)

    def sent(self, device: bytes, sequence: int, data: bytes) -> None:
        sent = self._sent
        key = (device, sequence)
        sent.pop(key, None)  # a sequence number come round again: the newer message
        sent[key] = data
        if len(sent) > RECENT_PUTS:
            del sent[next(iter(sent))]

    def refused(self, device: bytes, sequence: int) -> bytes | None:
        """The message ``device`` refused, once (a duplicate refusal finds nothing)."""
        return self._sent.pop((device, sequence), None)


def report_refusal(
    recent: RecentPuts | None,
    device: bytes,
    refusal: TransferDataError,
    zcl: ZclFrame | None,
    hub: TunnelHub | None,
) -> bool:
    """Tell the CHF which PUT ``device`` refused: the one its ZCL sequence number names.
    False when it names none of ours (stale, repeated or forged): nothing is failed."""
    data = None if recent is None or zcl is None else recent.refused(device, zcl.sequence)
    if data is None:
        return False
    if hub is not None:
        hub.tunnel_refused(device, data, refusal.status)
    return True


NO_TUNNEL_ID = 0xFFFF
"""The tunnel id a refused RequestTunnelResponse carries (it names no tunnel)."""


def tunnel_refusal(request: RequestTunnel) -> TunnelStatus | None:
    """Why a RequestTunnel is refused; None if granted. GBCS 10.2.2 fixes the protocol
    (GB-HRGP, manufacturer code 0xFFFF) and FlowControlSupport FALSE: a tunnel granted with
    flow control would promise AckTransferData and ReadyData no kit device sends."""
    if (
        request.protocol_id != GBCS_PROTOCOL_ID
        or request.manufacturer_code != GBCS_MANUFACTURER_CODE
    ):
        return TunnelStatus.PROTOCOL_NOT_SUPPORTED
    if request.flow_control:
        return TunnelStatus.FLOW_CONTROL_NOT_SUPPORTED
    return None


def transfer_refusal(transfer: TransferData, tunnel_id: int | None) -> TransferDataStatus | None:
    """Why TransferData is not taken from a peer holding ``tunnel_id``; None if it is:
    not on that tunnel, or longer than the MaximumIncomingTransferSize advertised."""
    if transfer.tunnel_id != tunnel_id:
        return TransferDataStatus.NO_SUCH_TUNNEL
    if len(transfer.data) > MAX_TRANSFER_SIZE:
        return TransferDataStatus.DATA_OVERFLOW
    return None


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
        status = tunnel_refusal(tunnel)
        if status is not None:
            # No tunnel id allocated: the device keeps whatever tunnel it holds.
            refused = RequestTunnelResponse(NO_TUNNEL_ID, status)
            return _reply(tunnel_id, refused, None, None, True)
        if tunnel_id is None:
            tunnel_id = ids.allocate()
        return _reply(tunnel_id, RequestTunnelResponse(tunnel_id), None, None, True)
    if not isinstance(tunnel, TransferData):
        return _reply(tunnel_id, None, None, None, False)
    status = transfer_refusal(tunnel, tunnel_id)
    if status is not None:
        refusal = TransferDataError(tunnel.tunnel_id, status)
        return _reply(tunnel_id, refusal, Direction.TO_CLIENT, None, True)
    if isinstance(gbcs, GbcsPut):
        hub.from_han(device, gbcs.message)
    elif isinstance(gbcs, GbcsGet):
        message = hub.take_held(device)
        if message is None:
            # GBCS: with no message for the GSME the CHF still answers, 0x02 || 0x00.
            nothing = put(tunnel_id, _NOTHING_HELD)
            return _reply(tunnel_id, nothing, Direction.TO_CLIENT, None, False)
        remaining = min(hub.held_count(device), 0xFF)
        response = put(tunnel_id, GbcsGetResponse(remaining, message))
        return _reply(tunnel_id, response, Direction.TO_CLIENT, message, False)
    return _reply(tunnel_id, None, None, None, False)


_NOTHING_HELD = GbcsGetResponse(0, b"")


def put(tunnel_id: int, command: GbcsTunnelCommand) -> TransferData:
    """A GBCS tunnel command to a device (the hub is the tunnel's server)."""
    return TransferData(tunnel_id, encode_gbcs_tunnel(command))
