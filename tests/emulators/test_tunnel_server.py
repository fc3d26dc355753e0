"""The hub's side of the GBCS tunnel, independent of the radio that carries it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest

from emulators.clock import VirtualClock
from emulators.saved_state import SavedState
from emulators.tunnel_server import (
    NO_TUNNEL_ID,
    RECENT_PUTS,
    TUNNEL_ANSWER_WAIT,
    TUNNEL_NO_ANSWER_RETRY,
    TUNNEL_RETRY,
    EsmeTunnelClient,
    RecentPuts,
    TunnelAsk,
    TunnelIds,
    may_ask,
    put,
    report_hand_over_refusal,
    report_refusal,
    saved_ask,
    serve,
    take_put,
    tunnel_answered,
)
from emulators.zigbee.time_cluster import time_read
from emulators.zigbee.tunnel import (
    MAX_TRANSFER_SIZE,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
    TransferDataStatus,
    TunnelProtocol,
    TunnelStatus,
    decode_gbcs_tunnel,
    encode_gbcs_tunnel,
)
from emulators.zigbee.zcl import Direction, ZclFrame, ZclFrameType
from gbcs.errors import GbcsError

METER = bytes.fromhex("00DB1234567890A1")


@dataclass
class Hub:
    held: list[bytes] = field(default_factory=list)
    heard: list[tuple[bytes, bytes]] = field(default_factory=list)
    refused: list[tuple[bytes, bytes, int, bool]] = field(default_factory=list)

    def from_han(self, device: bytes, data: bytes) -> None:
        self.heard.append((device, data))

    def take_held(self, device: bytes) -> bytes | None:
        return self.held.pop(0) if self.held else None

    def held_count(self, device: bytes) -> int:
        return len(self.held)

    def tunnel_refused(
        self, device: bytes, data: bytes, status: int, *, may_have_run: bool = False
    ) -> None:
        self.refused.append((device, data, status, may_have_run))

    def undelivered(self, device: bytes, data: bytes) -> None:
        self.held.insert(0, data)


def test_request_gives_an_id_once_and_round_robin() -> None:
    ids = TunnelIds(0xFFFF)
    first = serve(METER, None, RequestTunnel(), None, Hub(), ids)
    assert first.tunnel_id == 0xFFFF and first.command == RequestTunnelResponse(0xFFFF)
    again = serve(METER, first.tunnel_id, RequestTunnel(), None, Hub(), ids)
    assert again.tunnel_id == 0xFFFF  # the same device keeps its tunnel
    assert ids.allocate() == 1  # wraps, never 0


@pytest.mark.parametrize(
    ("request_", "status"),
    [
        (RequestTunnel(protocol_id=TunnelProtocol.DLMS_COSEM), TunnelStatus.PROTOCOL_NOT_SUPPORTED),
        (
            RequestTunnel(protocol_id=TunnelProtocol.MANUFACTURER, manufacturer_code=0x1234),
            TunnelStatus.PROTOCOL_NOT_SUPPORTED,
        ),
        (RequestTunnel(manufacturer_code=0x1234), TunnelStatus.PROTOCOL_NOT_SUPPORTED),
        (RequestTunnel(flow_control=True), TunnelStatus.FLOW_CONTROL_NOT_SUPPORTED),
    ],
)
def test_a_tunnel_gbcs_does_not_use_is_refused_without_an_id(
    request_: RequestTunnel, status: TunnelStatus
) -> None:
    """GBCS 10.2.2 fixes protocol GB-HRGP (manufacturer 0xFFFF) and no flow control; every
    RequestTunnel was granted (audit 9, wire M2): a DLMS tunnel's data then read as GBCS."""
    ids = TunnelIds()
    for holds in (None, 5):
        reply = serve(METER, holds, request_, None, Hub(), ids)
        assert reply.command == RequestTunnelResponse(NO_TUNNEL_ID, status)
        assert reply.answers and reply.tunnel_id == holds  # a tunnel held is kept
    assert ids.allocate() == 1  # none was allocated


def test_both_ends_advertise_the_1500_octets_gbcs_fixes() -> None:
    """GBCS 10.2.2: MaximumIncomingTransferSize 1500 in every RequestTunnel and
    RequestTunnelResponse (audit 9, wire M1: the kit advertised 20395)."""
    assert MAX_TRANSFER_SIZE == 1500
    assert RequestTunnel().max_incoming_transfer_size == 1500
    assert RequestTunnelResponse(1).max_incoming_transfer_size == 1500


def test_transfer_data_over_the_advertised_size_is_refused_as_overflow() -> None:
    hub = Hub()
    exact = encode_gbcs_tunnel(GbcsPut(bytes(MAX_TRANSFER_SIZE - 1)))
    reply = serve(METER, 7, TransferData(7, exact), GbcsPut(exact[1:]), hub, TunnelIds())
    assert reply.command is None and hub.heard == [(METER, exact[1:])]
    over = exact + b"\x00"
    reply = serve(METER, 7, TransferData(7, over), GbcsPut(over[1:]), hub, TunnelIds())
    assert reply.command == TransferDataError(7, TransferDataStatus.DATA_OVERFLOW)
    assert reply.direction is Direction.TO_CLIENT and reply.answers
    assert hub.heard == [(METER, exact[1:])]  # the long one went nowhere


def test_put_reaches_the_hub_and_get_returns_held_messages() -> None:
    hub = Hub(held=[b"\xdd\x01", b"\xdd\x02"])
    data = TransferData(7, encode_gbcs_tunnel(GbcsPut(b"\xdd\x00")))
    reply = serve(METER, 7, data, GbcsPut(b"\xdd\x00"), hub, TunnelIds())
    assert hub.heard == [(METER, b"\xdd\x00")] and reply.command is None
    get = TransferData(7, encode_gbcs_tunnel(GbcsGet()))
    reply = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert isinstance(reply.command, TransferData) and reply.command.tunnel_id == 7
    assert decode_gbcs_tunnel(reply.command.data) == GbcsGetResponse(1, b"\xdd\x01")
    assert reply.held == b"\xdd\x01"  # given back to the CHF if the radio cannot deliver it
    reply = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert decode_gbcs_tunnel(reply.command.data) == GbcsGetResponse(0, b"\xdd\x02")
    # Nothing held: the CHF still answers, 0x02 || 0x00 (GBCS: the GSME learns it may sleep).
    empty = serve(METER, 7, get, GbcsGet(), hub, TunnelIds())
    assert isinstance(empty.command, TransferData) and empty.command.data == b"\x02\x00"
    assert empty.held is None


def test_wrong_tunnel_id_is_refused_and_nothing_served() -> None:
    """ZCL 10.6: TransferData on a tunnel the device does not hold is answered
    TransferDataError "no such tunnel" (it was ignored: the device never knew)."""
    hub = Hub(held=[b"\xdd\x01"])
    for holds in (7, None):
        reply = serve(METER, holds, TransferData(8, b"\x01"), GbcsGet(), hub, TunnelIds())
        assert reply.command == TransferDataError(8, TransferDataStatus.NO_SUCH_TUNNEL)
        assert reply.direction is Direction.TO_CLIENT and reply.tunnel_id == holds
        assert hub.held == [b"\xdd\x01"] and reply.held is None
    # A device's own refusal is the radio's to match; the server sends nothing back.
    reply = serve(METER, 7, TransferDataError(7), None, hub, TunnelIds())
    assert reply.command is None and reply.tunnel_id == 7
    assert put(3, GbcsPut(b"x")) == TransferData(3, b"\x03x")


def test_recent_puts_name_the_refused_message_once() -> None:
    recent = RecentPuts()
    recent.sent(METER, 5, b"\xdd\x05")
    recent.sent(METER, 6, b"\xdd\x06")
    other = bytes.fromhex("00DB1234567890A2")
    assert recent.refused(other, 5) is None  # another device's refusal names none of these
    assert recent.refused(METER, 5) == (b"\xdd\x05", None)
    assert recent.refused(METER, 5) is None  # a duplicate refusal finds nothing
    carried = SimpleNamespace(resent_whole=True)
    recent.sent(METER, 6, b"\xdd\x07", carried)  # sequence numbers come round: the newer
    assert recent.refused(METER, 6) == (b"\xdd\x07", carried)
    for n in range(RECENT_PUTS + 1):
        recent.sent(METER, n, bytes([n]))
    assert recent.refused(METER, 0) is None
    assert recent.refused(METER, RECENT_PUTS) == (bytes([RECENT_PUTS]), None)


def test_a_message_sent_again_on_a_reused_sequence_number_is_kept_as_the_newest() -> None:
    """ZCL sequence numbers wrap: a PUT on a number already remembered replaces the older
    message and counts as the newest, so the next evictions take older messages first."""
    recent = RecentPuts()
    for n in range(RECENT_PUTS):
        recent.sent(METER, n, bytes([n]))
    recent.sent(METER, 0, b"\xdd\x00")  # number 0 again: now the newest
    recent.sent(METER, RECENT_PUTS, bytes([RECENT_PUTS]))  # one over: evicts number 1
    assert recent.refused(METER, 1) is None
    assert recent.refused(METER, 0) == (b"\xdd\x00", None)


# -- the hub as an ESME's tunnel client (GBCS 10.2.2.1) ---------------------------------


def test_a_tunnel_response_is_taken_only_on_the_requests_sequence_number() -> None:
    """ZCL 2.4.1.3: the response echoes its request's number; a refusal holds the next
    request back for TUNNEL_RETRY (no tight loop), a grant ends the asking."""
    asked = TunnelAsk(0x10, 5.0)
    granted = RequestTunnelResponse(9)
    assert tunnel_answered(None, 0x10, granted, 1.0) == (False, None, None)
    assert tunnel_answered(asked, 0x11, granted, 1.0) == (False, None, asked)
    assert tunnel_answered(asked, 0x10, granted, 1.0) == (True, 9, None)
    busy = RequestTunnelResponse(NO_TUNNEL_ID, TunnelStatus.BUSY)
    refused = TunnelAsk(None, 1.0 + TUNNEL_RETRY, refused=True)
    assert tunnel_answered(asked, 0x10, busy, 1.0) == (True, None, refused)


def test_when_the_hub_may_ask_an_esme_for_a_tunnel() -> None:
    assert may_ask(None, 0.0)
    assert not may_ask(TunnelAsk(3, 5.0), 4.0)  # an answer is awaited
    assert may_ask(TunnelAsk(3, 5.0), 5.0)  # not any more
    assert may_ask(TunnelAsk(None, 60.0), 4.0)  # only booked: the ESME is here, ask now
    assert not may_ask(TunnelAsk(None, 60.0, refused=True), 4.0)
    assert may_ask(TunnelAsk(None, 60.0, refused=True), 60.0)


def test_an_esmes_put_reaches_the_chf_only_on_the_tunnel_the_hub_holds() -> None:
    hub = Hub()
    data = encode_gbcs_tunnel(GbcsPut(b"\xdd\x01"))
    assert take_put(METER, 4, TransferData(4, data), GbcsPut(b"\xdd\x01"), hub) is None
    assert hub.heard == [(METER, b"\xdd\x01")]
    refusal = take_put(METER, None, TransferData(4, data), GbcsPut(b"\xdd\x01"), hub)
    assert refusal == TransferDataError(4, TransferDataStatus.NO_SUCH_TUNNEL)
    long = TransferData(4, bytes(MAX_TRANSFER_SIZE + 1))
    assert take_put(METER, 4, long, None, hub) == TransferDataError(
        4, TransferDataStatus.DATA_OVERFLOW
    )
    assert len(hub.heard) == 1


def test_a_saved_tunnel_ask_is_read_strictly() -> None:
    assert saved_ask(SavedState({})) is None  # saved before the hub asked
    assert saved_ask(SavedState({"tunnel_ask": None})) is None
    ask = TunnelAsk(7, 12.5)
    assert saved_ask(SavedState({"tunnel_ask": ask.to_json()})) == ask
    refused = {"sequence": 7, "until": 1.0, "refused": True}
    with pytest.raises(GbcsError, match="awaits no answer"):
        saved_ask(SavedState({"tunnel_ask": refused}))


@dataclass
class Child:
    ieee: bytes = METER
    sleepy: bool = False
    tunnel_id: int | None = 7
    tunnel_ask: TunnelAsk | None = None


@dataclass
class App:
    tunnel: object
    zcl: ZclFrame
    gbcs: object = None


class Client(EsmeTunnelClient):
    """The ESME tunnel client with a recording radio under it."""

    def __init__(self) -> None:
        self.clock = VirtualClock()
        self.child = Child()
        self.hub = Hub()
        self.log: list[str] = []
        self.requests: list[bytes] = []
        self.refusals: list[tuple[TransferDataError, int]] = []
        self.times: list[tuple[bytes, int]] = []

    def _log(self, text: str) -> None:
        self.log.append(text)

    def _tunnel_child(self, device: bytes) -> Child | None:
        return self.child if device == self.child.ieee else None

    def _send_request_tunnel(self, child: Child) -> int | None:
        self.requests.append(child.ieee)
        return 0x40 + len(self.requests)

    def _tunnel_hub(self) -> Hub:
        return self.hub

    def _send_tunnel_refusal(self, child: Child, refusal: TransferDataError, sequence: int) -> None:
        self.refusals.append((refusal, sequence))

    def _send_time(self, child: Child, zcl: bytes, sequence: int) -> None:
        self.times.append((zcl, sequence))


def _from_esme(client: Client, transfer: TransferData, direction: Direction) -> None:
    zcl = ZclFrame(ZclFrameType.CLUSTER, direction, 0x21, 0x01, b"")
    client._esme_tunnel(client.child, App(transfer, zcl, decode_gbcs_tunnel(transfer.data)))


def test_an_esmes_transfer_data_goes_server_to_client_only() -> None:
    """The ESME is its tunnel's server (GBCS 10.2.2.1): its TransferData is server to
    client. One sent client to server is not the server's to send and reaches no CHF."""
    client = Client()
    put_ = TransferData(7, encode_gbcs_tunnel(GbcsPut(b"\xdd\x01")))
    _from_esme(client, put_, Direction.TO_SERVER)
    assert client.hub.heard == [] and client.refusals == []
    _from_esme(client, put_, Direction.TO_CLIENT)
    assert client.hub.heard == [(METER, b"\xdd\x01")]


def test_transfer_data_on_a_tunnel_the_hub_does_not_hold_has_it_open_a_new_one() -> None:
    """ZCL 10.6: TransferData on an unknown tunnel is refused "no such tunnel" on the
    request's sequence number; the hub forgets the tunnel it held and asks for a new one,
    and if that goes unanswered asks again."""
    client = Client()
    put_ = TransferData(9, encode_gbcs_tunnel(GbcsPut(b"\xdd\x01")))
    _from_esme(client, put_, Direction.TO_CLIENT)
    assert client.refusals == [(TransferDataError(9, TransferDataStatus.NO_SUCH_TUNNEL), 0x21)]
    assert client.hub.heard == [] and client.requests == [METER]
    assert client.child.tunnel_id is None
    assert client.child.tunnel_ask == TunnelAsk(0x41, TUNNEL_ANSWER_WAIT)
    client.clock.run_for(TUNNEL_ANSWER_WAIT + TUNNEL_NO_ANSWER_RETRY - 1)
    assert client.requests == [METER]  # not asked again at once: a lost exchange waits
    client.clock.run_for(1)
    assert client.requests == [METER, METER]


def test_only_an_esmes_tunnel_falls_in_doubt() -> None:
    """An unacknowledged PUT puts an ESME's tunnel in doubt (the hub re-asks when the ESME
    next reads its time). A GSME opens its own tunnel (GBCS 10.2.2.1): the hub books no
    request for it."""
    client = Client()
    client._tunnel_in_doubt(client.child)
    assert client.child.tunnel_ask == TunnelAsk(None, TUNNEL_NO_ANSWER_RETRY)
    gsme = client.child = Child(sleepy=True)
    client._tunnel_in_doubt(gsme)
    assert gsme.tunnel_ask is None and gsme.tunnel_id == 7


def test_the_hub_answers_only_time_reads_and_asks_only_an_esme_for_a_tunnel() -> None:
    """A time read (the keep-alive) is answered on its sequence number (ZCL 2.4.1.3) and
    has the hub ask an ESME without a tunnel for one; a GSME opens its own tunnel, and
    another ZCL frame is no time read."""
    client = Client()
    esme = client.child = Child(tunnel_id=None)
    client._answer_time(esme, dataclasses.replace(time_read(0x33), manufacturer_code=0x1234))
    assert client.times == [] and client.requests == []
    client._answer_time(esme, time_read(0x33))
    assert [sequence for _, sequence in client.times] == [0x33] and client.requests == [METER]
    gsme = client.child = Child(sleepy=True, tunnel_id=None)
    client._answer_time(gsme, time_read(0x34))
    assert len(client.times) == 2 and client.requests == [METER]
    assert gsme.tunnel_ask is None


def test_only_an_esmes_put_reaches_the_chf() -> None:
    """An ESME PUTs its messages (GBCS 10.2.2.1); a GET or other data on its tunnel carries
    no message for the CHF."""
    hub = Hub()
    for command in (GbcsGet(), GbcsGetResponse(0, b"\xdd\x01"), None):
        data = encode_gbcs_tunnel(command) if command is not None else b"\x09"
        assert take_put(METER, 4, TransferData(4, data), command, hub) is None
    assert hub.heard == []


def test_a_refusal_is_reported_to_the_chf_with_the_message_it_names() -> None:
    """A device's TransferDataError answers the PUT with its ZCL sequence number (ZCL
    2.4.1.3): the CHF is told which message was not taken, and why, once."""
    hub, recent = Hub(), RecentPuts()
    recent.sent(METER, 0x21, b"\xdd\x01")
    refusal = TransferDataError(7, TransferDataStatus.NO_SUCH_TUNNEL)
    zcl = ZclFrame(ZclFrameType.CLUSTER, Direction.TO_SERVER, 0x21, 0x03, b"")
    assert report_refusal(recent, METER, refusal, zcl, hub) == (b"\xdd\x01", None)
    assert hub.refused == [(METER, b"\xdd\x01", TransferDataStatus.NO_SUCH_TUNNEL, False)]
    assert report_refusal(recent, METER, refusal, zcl, hub) is None  # a repeated refusal
    assert report_refusal(None, METER, refusal, zcl, hub) is None
    # a refusal of a copy the HAN sent again whole: the device may have run the message
    recent.sent(METER, 0x22, b"\xdd\x02", SimpleNamespace(resent_whole=True))
    again = dataclasses.replace(zcl, sequence=0x22)
    assert report_refusal(recent, METER, refusal, again, hub) is not None
    assert hub.refused[1:] == [(METER, b"\xdd\x02", TransferDataStatus.NO_SUCH_TUNNEL, True)]


def test_a_refused_hand_over_is_held_again_once() -> None:
    """A GSME's refusal of a GET-RESPONSE gives its message back to the CHF, first in
    line; a second refusal, or one after the message came back another way (its frames
    failed, or CCS02 took it: ``forget``), gives nothing back again."""
    hub = Hub(held=[b"\xdd\x02"])
    recent = RecentPuts()
    recent.sent(METER, 7, b"\xdd\x01")
    zcl = SimpleNamespace(sequence=7)
    assert report_hand_over_refusal(recent, METER, zcl, hub) == b"\xdd\x01"  # type: ignore[arg-type]
    assert hub.held == [b"\xdd\x01", b"\xdd\x02"]
    assert report_hand_over_refusal(recent, METER, zcl, hub) is None  # type: ignore[arg-type]
    recent.sent(METER, 8, b"\xdd\x03")
    recent.sent(METER, 9, b"\xdd\x04")
    recent.forget(METER, b"\xdd\x03")  # given back when its frames failed
    assert report_hand_over_refusal(recent, METER, SimpleNamespace(sequence=8), hub) is None  # type: ignore[arg-type]
    assert recent.refused(METER, 9) == (b"\xdd\x04", None)  # others untouched
    assert hub.held == [b"\xdd\x01", b"\xdd\x02"]
