"""The hub's side of the GBCS tunnel, independent of the radio that carries it."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.tunnel_server import TunnelIds, put, serve
from emulators.zigbee.tunnel import (
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    decode_gbcs_tunnel,
    encode_gbcs_tunnel,
)

METER = bytes.fromhex("00DB1234567890A1")


@dataclass
class Hub:
    held: list[bytes] = field(default_factory=list)
    heard: list[tuple[bytes, bytes]] = field(default_factory=list)

    def from_han(self, device: bytes, data: bytes) -> None:
        self.heard.append((device, data))

    def take_held(self, device: bytes) -> bytes | None:
        return self.held.pop(0) if self.held else None

    def held_count(self, device: bytes) -> int:
        return len(self.held)


def test_request_gives_an_id_once_and_round_robin() -> None:
    ids = TunnelIds(0xFFFF)
    first = serve(METER, None, RequestTunnel(), None, Hub(), ids)
    assert first.tunnel_id == 0xFFFF and first.command == RequestTunnelResponse(0xFFFF)
    again = serve(METER, first.tunnel_id, RequestTunnel(), None, Hub(), ids)
    assert again.tunnel_id == 0xFFFF  # the same device keeps its tunnel
    assert ids.allocate() == 1  # wraps, never 0


def test_put_reaches_the_hub_and_get_returns_held_messages() -> None:
    hub = Hub(held=[b"\xdd\x01", b"\xdd\x02"])
    data = TransferData(7, encode_gbcs_tunnel(GbcsPut(b"\xdd\x00")))
    reply = serve(METER, 7, data, GbcsPut(b"\xdd\x00"), hub, TunnelIds())
    assert hub.heard == [(METER, b"\xdd\x00")] and reply.command is None
    get = TransferData(7, encode_gbcs_tunnel(GbcsGet()))
    reply = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert isinstance(reply.command, TransferData) and reply.command.tunnel_id == 7
    assert decode_gbcs_tunnel(reply.command.data) == GbcsGetResponse(1, b"\xdd\x01")
    reply = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert decode_gbcs_tunnel(reply.command.data) == GbcsGetResponse(0, b"\xdd\x02")
    # Nothing held: the CHF still answers, 0x02 || 0x00 (GBCS: the GSME learns it may sleep).
    empty = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert isinstance(empty.command, TransferData) and empty.command.data == b"\x02\x00"
    assert empty.held is None


def test_wrong_tunnel_id_is_ignored() -> None:
    hub = Hub(held=[b"\xdd\x01"])
    reply = serve(METER, 7, TransferData(8, b"\x01"), GbcsGet(), hub, TunnelIds())
    assert reply.command is None and hub.held == [b"\xdd\x01"]
    assert put(3, GbcsPut(b"x")) == TransferData(3, b"\x03x")
