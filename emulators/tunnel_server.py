"""The hub's side of the GBCS tunnel, whatever radio carries it.

GBCS 10.2.2.1 gives the tunnel two shapes. A sleepy GSME opens its own: it asks
for a tunnel (RequestTunnel, protocol GB-HRGP without flow control, as GBCS
10.2.2 fixes them; any other is refused) and the hub, its server, gives it a
tunnel id; then TransferData carries the GBCS tunnel commands: PUT is a message
for the WAN, GET asks for the next message the hub holds for it and is answered
with GET-RESPONSE (with the number still waiting). To an ESME the CHF opens the
tunnel once key establishment is done (the kit: once the ESME is announced): the
hub is the client, sends RequestTunnel (:class:`TunnelAsk` tracks it) and keeps
the tunnel id the ESME allocated; both then PUT. The emulated coordinator and the
zigpy hub radio both run the tunnel with this.

TransferData on a tunnel the device does not hold is answered TransferDataError
"no such tunnel" (ZCL 10.6), so the GSME opens a new one (to an ESME the hub
opens a new one itself); TransferData longer than the 1500 octets advertised,
"data overflow". A device's own TransferDataError (it refused a PUT: a reboot
closed its tunnel) is the radio's to match with the PUT it answers (same ZCL
sequence number), report to the CHF and, for an ESME, re-open the tunnel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from emulators.saved_state import SavedState
from emulators.zigbee.time_cluster import is_time_read, time_response, utc_time
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
from emulators.zigbee.zcl import Direction, ZclFrame, encode_zcl
from gbcs.errors import GbcsError
from gbcs.primitives import slot_builder

__all__ = [
    "TUNNEL_AFTER_ANNOUNCE",
    "TUNNEL_ANSWER_WAIT",
    "TUNNEL_NO_ANSWER_RETRY",
    "TUNNEL_RETRY",
    "EsmeTunnelClient",
    "RecentPuts",
    "SentPut",
    "TunnelAsk",
    "TunnelHub",
    "TunnelIds",
    "TunnelReply",
    "from_hub",
    "may_ask",
    "put",
    "report_hand_over_refusal",
    "report_refusal",
    "saved_ask",
    "serve",
    "take_put",
    "to_hub",
    "transfer_refusal",
    "tunnel_answered",
    "tunnel_refusal",
    "unanswered",
]


class TunnelHub(Protocol):
    """What the tunnel server asks of the CHF."""

    def from_han(self, device: bytes, data: bytes) -> None: ...

    def take_held(self, device: bytes) -> bytes | None: ...

    def held_count(self, device: bytes) -> int: ...

    def tunnel_refused(
        self, device: bytes, data: bytes, status: int, *, may_have_run: bool = False
    ) -> None: ...

    def undelivered(self, device: bytes, data: bytes) -> None: ...


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

    _sent: dict[tuple[bytes, int], tuple[bytes, SentPut | None]] = field(default_factory=dict)

    def sent(
        self, device: bytes, sequence: int, data: bytes, transfer: SentPut | None = None
    ) -> None:
        """Note a PUT, with the HAN transfer carrying it when the hub has one (a refusal
        may answer a copy the HAN sent again of a message the device had taken)."""
        sent = self._sent
        key = (device, sequence)
        sent.pop(key, None)  # a sequence number come round again: the newer message
        sent[key] = (data, transfer)
        if len(sent) > RECENT_PUTS:
            del sent[next(iter(sent))]

    def forget(self, device: bytes, data: bytes) -> None:
        """``data`` to ``device`` is settled another way: a refusal naming it finds nothing."""
        for key in [k for k, (sent, _) in self._sent.items() if k[0] == device and sent == data]:
            del self._sent[key]

    def refused(self, device: bytes, sequence: int) -> tuple[bytes, SentPut | None] | None:
        """The message ``device`` refused and its transfer, once (a duplicate refusal finds
        nothing)."""
        return self._sent.pop((device, sequence), None)


class SentPut(Protocol):
    """What a refusal needs of the HAN transfer that carried a PUT."""

    @property
    def resent_whole(self) -> bool: ...


def report_refusal(
    recent: RecentPuts | None,
    device: bytes,
    refusal: TransferDataError,
    zcl: ZclFrame | None,
    hub: TunnelHub | None,
) -> tuple[bytes, SentPut | None] | None:
    """Tell the CHF which PUT ``device`` refused: the one its ZCL sequence number names;
    that PUT and its transfer. None when it names none of ours (stale, repeated or
    forged): nothing is failed."""
    entry = None if recent is None or zcl is None else recent.refused(device, zcl.sequence)
    if entry is None:
        return None
    if hub is not None:
        data, transfer = entry
        sent_again = transfer is not None and transfer.resent_whole
        hub.tunnel_refused(device, data, refusal.status, may_have_run=sent_again)
    return entry


def report_hand_over_refusal(
    recent: RecentPuts | None, device: bytes, zcl: ZclFrame | None, hub: TunnelHub | None
) -> bytes | None:
    """A GSME refused a GET-RESPONSE (TransferDataError on its sequence number): it came on
    a tunnel the GSME no longer holds (held for its poll while it restarted). The message
    goes back to the CHF, first in line, for its next GET; the held message, or None when
    the refusal names no hand-over of ours."""
    entry = None if recent is None or zcl is None else recent.refused(device, zcl.sequence)
    if entry is None:
        return None
    if hub is not None:
        hub.undelivered(device, entry[0])
    return entry[0]


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
    """A GBCS tunnel command to a device on its tunnel (to a GSME as the tunnel's server,
    to an ESME as its client: the caller picks the ZCL direction)."""
    return TransferData(tunnel_id, encode_gbcs_tunnel(command))


def from_hub(sleepy: bool) -> Direction:
    """The ZCL direction of the hub's frames on a device's tunnel (GBCS 10.2.2.1): to a
    sleepy GSME's client from its server, to an ESME's server from its client."""
    return Direction.TO_CLIENT if sleepy else Direction.TO_SERVER


def to_hub(sleepy: bool) -> Direction:
    """The ZCL direction of a device's frames on its tunnel to the hub."""
    return Direction.TO_SERVER if sleepy else Direction.TO_CLIENT


# -- the hub as an ESME's tunnel client (GBCS 10.2.2.1) ----------------------------------

TUNNEL_AFTER_ANNOUNCE = 0.05
"""Seconds from an ESME's announce to the hub's RequestTunnel: key establishment would come
between (GBCS 10.2.2.1; not modelled), and the ESME's own first frame (its time read) goes
first, so neither radio has to take a frame while sending one."""
TUNNEL_ANSWER_WAIT = 5.0
"""Seconds the hub waits for an ESME's RequestTunnelResponse."""
TUNNEL_NO_ANSWER_RETRY = 60.0
"""Seconds after an unanswered RequestTunnel before the hub asks again (sooner if the ESME
reads the hub's time meanwhile): a lost exchange is not the end of the tunnel."""
TUNNEL_RETRY = 3600.0
"""Seconds after an ESME refused a tunnel before the hub asks it again: no tight loop."""


@dataclass(frozen=True, slots=True)
class TunnelAsk:
    """The hub's RequestTunnel to an ESME: its ZCL sequence number (the response echoes
    it, ZCL 2.4.1.3), answered by ``until``; or, with no sequence number, the next one
    to send at ``until`` (after the announce, no answer, a lost PUT), sooner if the
    ESME shows it is there, unless it ``refused`` the last one."""

    sequence: int | None
    until: float
    refused: bool = False

    def to_json(self) -> dict[str, int | float | bool | None]:
        return {"sequence": self.sequence, "until": self.until, "refused": self.refused}


def saved_ask(child: SavedState) -> TunnelAsk | None:
    """A saved child's ``tunnel_ask`` (absent from states saved before the hub asked)."""
    if "tunnel_ask" not in child:
        return None
    raw = child.optional_member("tunnel_ask")
    if raw is None:
        return None
    sequence = raw.optional_integer("sequence", 0, 0xFF)
    refused = raw.flag("refused")
    if refused and sequence is not None:
        raise GbcsError(f"{raw.where}: a refused request awaits no answer (sequence is set)")
    return TunnelAsk(sequence, raw.seconds("until"), refused)


def may_ask(ask: TunnelAsk | None, now: float) -> bool:
    """Whether the hub may send an ESME a RequestTunnel now: none awaits its answer and
    no refusal holds it back (a request only booked may go early)."""
    if ask is None or ask.until <= now:
        return True
    return ask.sequence is None and not ask.refused


def unanswered(now: float) -> TunnelAsk:
    """What follows a RequestTunnel left unanswered: another, TUNNEL_NO_ANSWER_RETRY on."""
    return TunnelAsk(None, now + TUNNEL_NO_ANSWER_RETRY)


def tunnel_answered(
    ask: TunnelAsk | None, sequence: int, response: RequestTunnelResponse, now: float
) -> tuple[bool, int | None, TunnelAsk | None]:
    """An ESME's RequestTunnelResponse on ``sequence``: whether it answers the hub's
    request, the tunnel id it granted (None if refused), and what the hub then awaits.
    One that answers no request of ours changes nothing (the caller drops it)."""
    if ask is None or ask.sequence != sequence:
        return False, None, ask
    if response.status == TunnelStatus.SUCCESS:
        return True, response.tunnel_id, None
    return True, None, TunnelAsk(None, now + TUNNEL_RETRY, refused=True)


def take_put(
    device: bytes,
    tunnel_id: int | None,
    transfer: TransferData,
    gbcs: GbcsTunnelCommand | None,
    hub: TunnelHub,
) -> TransferDataError | None:
    """TransferData from an ESME (server to client) to the hub holding ``tunnel_id``: its
    PUT goes to the CHF; a refusal (ZCL 10.6) is what to send back when not taken."""
    status = transfer_refusal(transfer, tunnel_id)
    if status is not None:
        return TransferDataError(transfer.tunnel_id, status)
    if isinstance(gbcs, GbcsPut):
        hub.from_han(device, gbcs.message)
    return None


class TunnelChild(Protocol):
    """What the ESME tunnel client needs of a hub radio's child record."""

    ieee: bytes
    sleepy: bool
    tunnel_id: int | None
    tunnel_ask: TunnelAsk | None


class EsmeTunnelClient:
    """The hub as its ESMEs' tunnel client (GBCS 10.2.2.1), for the emulated coordinator
    and the zigpy hub radio alike: when to send RequestTunnel, and what an answer means.
    A radio gives its clock, its children and how it sends RequestTunnel."""

    clock: Any  # the world's VirtualClock

    def _tunnel_child(self, device: bytes) -> TunnelChild | None:
        raise NotImplementedError

    def _send_request_tunnel(self, child: Any) -> int | None:
        """Send ``child`` a RequestTunnel; its ZCL sequence number, None if it cannot go."""
        raise NotImplementedError

    def _may_ask_now(self) -> bool:
        """Whether the radio can ask at all (a lost dongle cannot)."""
        return True

    _log: Callable[[str], None]  # the radio's trace (not defined here: it has its own)

    def _unmatched_answer(self, text: str) -> None:
        self._log(text)

    def _tunnel_hub(self) -> TunnelHub | None:
        """The CHF the ESMEs' PUTs go to."""
        raise NotImplementedError

    def _send_tunnel_refusal(self, child: Any, refusal: TransferDataError, sequence: int) -> None:
        """Send ``child`` the refusal, client to server, on its TransferData's ``sequence``."""
        raise NotImplementedError

    def _esme_tunnel(self, child: Any, app: Any) -> None:
        """A tunnel frame from an ESME, whose client the hub is (GBCS 10.2.2.1): the answer
        to its RequestTunnel, or server-to-client TransferData with the ESME's PUT. A
        TransferData on a tunnel the hub does not hold is refused client to server (ZCL
        10.6) and the hub opens a new one; anything else is not the server's to send."""
        tunnel, zcl = app.tunnel, app.zcl
        device = child.ieee.hex().upper()
        if isinstance(tunnel, RequestTunnelResponse):
            self._tunnel_answered(child, tunnel, zcl.sequence)
            return
        hub = self._tunnel_hub()
        if not isinstance(tunnel, TransferData) or zcl.direction is not Direction.TO_CLIENT:
            self._unmatched_answer(f"{type(tunnel).__name__} from ESME {device}, its server")
            return
        if hub is None:
            return
        refusal = take_put(child.ieee, child.tunnel_id, tunnel, app.gbcs, hub)
        if refusal is None:
            return
        status = TransferDataStatus(refusal.status).name
        self._log(f"TransferData from {device} on tunnel {tunnel.tunnel_id} refused: {status}")
        self._send_tunnel_refusal(child, refusal, zcl.sequence)
        if refusal.status == TransferDataStatus.NO_SUCH_TUNNEL:
            self._open_tunnel(child)

    def _open_tunnel(self, child: Any, *, keep: bool = False) -> None:
        """RequestTunnel to an ESME; not again while one awaits its answer or a refusal's
        back-off holds the next back. A GSME opens its own. ``keep``: the tunnel held
        stays in use until the new one is granted (it is only in doubt)."""
        if child.sleepy or not may_ask(child.tunnel_ask, self.clock.now):
            return
        if not keep:
            child.tunnel_id = None
        sequence = self._send_request_tunnel(child)
        if sequence is not None:
            self._ask_at(child, sequence, self.clock.now + TUNNEL_ANSWER_WAIT)

    def _tunnel_in_doubt(self, child: Any) -> None:
        """A PUT to an ESME went unacknowledged: one lost acknowledgement, or the ESME lost
        power and its tunnel with it. The tunnel is kept (the next command still goes, and
        after a reboot is refused "no such tunnel" at once); the ESME's next time read, at
        once on power-up, has the hub open a new one."""
        if child.sleepy or child.tunnel_id is None:
            return
        child.tunnel_ask = unanswered(self.clock.now)

    def _send_time(self, child: Any, zcl: bytes, sequence: int) -> None:
        """Send ``child`` a Time cluster frame answering its request ``sequence``."""
        raise NotImplementedError

    def _answer_time(self, child: Any, zcl: ZclFrame | None) -> None:
        """A child reads the hub's Time attribute (an ESME's keep-alive): Read Attributes
        Response with the virtual clock's UTCTime, on the request's sequence number (ZCL
        2.4.1.3); an ESME with no tunnel, or one in doubt, is asked again now that it
        shows it is there."""
        if zcl is None or not is_time_read(zcl):
            return
        answer = encode_zcl(time_response(zcl.sequence, utc_time(self.clock.utc)))
        self._send_time(child, answer, zcl.sequence)
        self._esme_heard(child)

    def _esme_heard(self, child: Any) -> None:
        """An ESME read the hub's time (its keep-alive, at once on power-up): it is there.
        Asked for a tunnel if the hub holds none, or holds one in doubt."""
        ask = child.tunnel_ask
        in_doubt = ask is not None and ask.sequence is None and not ask.refused
        if child.tunnel_id is None or in_doubt:
            self._open_tunnel(child, keep=child.tunnel_id is not None)

    def _rebook(self, child: Any) -> None:
        """After a load, book a saved child's next step again. A request that awaited its
        answer is asked again now: frames in flight at a save are lost, its answer too."""
        ask = child.tunnel_ask
        if ask is None:
            return
        if ask.sequence is not None:
            self._ask_at(child, None, self.clock.now)
        else:
            self._ask_at(child, None, ask.until, refused=ask.refused)

    def _ask_at(
        self, child: Any, sequence: int | None, until: float, *, refused: bool = False
    ) -> None:
        """Note the hub's next step for an ESME's tunnel and book it: the answer awaited to
        ``sequence`` by ``until``, or (no sequence) a RequestTunnel then."""
        ask = child.tunnel_ask = TunnelAsk(sequence, until, refused)
        self.clock.call_at(max(until, self.clock.now), self._ask_due, child.ieee, ask)

    def _ask_due(self, device: bytes, ask: TunnelAsk) -> None:
        """A booked step, unless overtaken (answered, re-asked, the child gone, the radio
        lost)."""
        child = self._tunnel_child(device)
        if child is None or child.tunnel_ask is not ask or child.tunnel_id is not None:
            return
        if not self._may_ask_now():
            return
        if ask.sequence is None:
            self._open_tunnel(child)
            return
        self._log(f"RequestTunnel to {device.hex().upper()} unanswered")
        self._ask_at(child, None, unanswered(self.clock.now).until)

    def _tunnel_answered(self, child: Any, response: RequestTunnelResponse, sequence: int) -> None:
        """An ESME's RequestTunnelResponse: taken only as the answer to the hub's request
        (its sequence number, ZCL 2.4.1.3); a refusal holds the next request back."""
        matched, tunnel_id, ask = tunnel_answered(
            child.tunnel_ask, sequence, response, self.clock.now
        )
        device = child.ieee.hex().upper()
        if not matched:
            self._unmatched_answer(
                f"RequestTunnelResponse from {device} answers no request of ours"
            )
            return
        child.tunnel_id = tunnel_id
        if ask is None:
            child.tunnel_ask = None
            self._log(f"tunnel {tunnel_id} to {device} open")
        else:
            self._ask_at(child, None, ask.until, refused=True)
            known = response.status in TunnelStatus._value2member_map_
            status = TunnelStatus(response.status).name if known else f"status {response.status}"
            self._log(f"{device} refused a tunnel ({status})")
