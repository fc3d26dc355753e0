"""ZigBee nodes on the emulated medium: the hub's trust centre and the meters' stacks.

Every frame is a real PSDU built and parsed with :mod:`emulators.zigbee`, so
what the devices do is exactly what the capture shows. The model (documented
in the README):

* The CHF's node is PAN coordinator and trust centre. It admits a device that
  associates only while the CHF has a CCS01 join window open for its EUI-64,
  and sends it the network key in an APS Transport Key secured with the
  key-transport key of the device's install-code link key. A device with a
  wrong install code cannot decrypt it and never joins.
* A trust-centre rejoin (NWK rejoin request sent unsecured) is answered for any
  device in the CHF's current device log, with the network key secured with
  the logged trust-centre link key: after CCS03 restored a meter's entry onto
  another hub that took over its extended PAN ID, the meter rejoins there.
* Joined meters share a GBCS tunnel (Tunneling cluster 0x0704, protocol
  GB-HRGP) with the hub, opened as GBCS 10.2.2.1 has it: to an ESME by the
  hub (its client) once the ESME is announced (the kit's stand-in for key
  establishment), the ESME allocating the tunnel id; a sleepy GSME opens its
  own, the hub its server. The hub pushes commands to an ESME with PUT; a
  sleepy GSME wakes every 30 s and asks with GET, and the hub answers
  GET-RESPONSE with a message it held. Frames to a joined GSME wait at the
  hub for its MAC Data Request (indirect transmission). Meters answer with
  PUT. Long messages are APS fragmented, each window of blocks acknowledged at
  the APS layer.
* Unicast MAC frames are acknowledged and retried (macMaxFrameRetries 3); NWK
  frame counters drop duplicates. A meter whose keep-alive goes unacknowledged
  (a GSME's GET; an ESME's Read Attributes of the hub's Time cluster, hourly
  and at once on power-up) has lost its parent: it searches for its extended
  PAN ID and tries a trust-centre rejoin, and until then keeps its network
  settings.
* A meter without network settings auto-joins: it scans its channels for a
  beacon that permits joining and associates. Refused there (association
  denied, or no network key it can read), it tries the next such network of
  the same scan, and scans again only when all have failed; an orphaned
  meter's trust-centre rejoin goes through the networks with its extended PAN
  ID the same way.
"""

from __future__ import annotations

import collections
import enum
import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from emulators import tunnel_server
from emulators.clock import Timer, VirtualClock
from emulators.medium import Capture, HanMedium
from emulators.saved_state import SavedState, saved_hex, saved_int
from emulators.tunnel_server import from_hub, to_hub
from emulators.zigbee import air
from emulators.zigbee.air import Keys, NwkSecurity
from emulators.zigbee.aps import (
    AckFragment,
    ApsAck,
    ApsCommand,
    ApsData,
    Fragment,
    FragmentError,
    KeyType,
    TransportKey,
    reassemble,
)
from emulators.zigbee.install_code import link_key_from_install_code
from emulators.zigbee.mac import (
    AssociationRequest,
    AssociationResponse,
    AssociationStatus,
    Beacon,
    BeaconRequest,
    Capability,
    DataRequest,
    MacFrame,
    MacFrameType,
    decode_mac,
    encode_mac,
    fcs,
)
from emulators.zigbee.nwk import Leave, RejoinRequest, RejoinResponse
from emulators.zigbee.security import (
    FRAME_COUNTER_LIMIT,
    EncryptedPayload,
    FrameCounterExhausted,
    KeyId,
)
from emulators.zigbee.time_cluster import TIME_CLUSTER, parse_time_response, time_read
from emulators.zigbee.tunnel import (
    MAX_TRANSFER_SIZE,
    TUNNELING_CLUSTER,
    GbcsGet,
    GbcsGetResponse,
    GbcsPut,
    GbcsTunnelCommand,
    RequestTunnel,
    RequestTunnelResponse,
    TransferData,
    TransferDataError,
    TransferDataStatus,
    encode_gbcs_tunnel,
    tunnel_frame,
)
from emulators.zigbee.zcl import Direction, ZclFrame, encode_zcl
from gbcs.devicelog import RESERVED_EXTENDED_PAN_IDS
from gbcs.errors import GbcsError

__all__ = [
    "ALL_CHANNELS",
    "MAX_GBCS_MESSAGE",
    "CoordinatorNode",
    "MeterNode",
    "NetworkSettings",
    "NodeState",
    "TrustCentre",
    "check_network",
    "checked_channels",
    "saved_channels",
]

ALL_CHANNELS = tuple(range(11, 27))  # 2.4 GHz O-QPSK channels
COORDINATOR = 0x0000
ACK_WAIT = 0.000864  # macAckWaitDuration, 54 symbols
MAX_FRAME_RETRIES = 3  # macMaxFrameRetries
# How many departed devices' NWK frame counters a hub keeps (their replays stay replays).
DEPARTED_MEMORY = 64
# How many unsecured sources (joining or rejoining devices) a node remembers.
UNSECURED_MEMORY = 64
TURNAROUND = 0.000192  # aTurnaroundTime, 12 symbols
SCAN_DWELL = 0.03072  # one channel at scan duration 0: aBaseSuperframeDuration x (2^0 + 1)
RESPONSE_WAIT = 0.5
# A joining device asks for its Association Response this long after the request's
# acknowledgement (macResponseWaitTime: 32 x aBaseSuperframeDuration, 802.15.4-2006 7.5.3.1).
MAC_RESPONSE_WAIT = 32 * 0.01536
JOIN_RETRY = 30.0
NEXT_CANDIDATE = 0.01  # after one network failed, the next from the same scan (its ack is out)
# A network that did not answer an association or a trust-centre rejoin (no response, or no
# network key after it: either may be lost on the air) is asked again this soon, up to
# JOIN_ATTEMPTS times in all, before the next network or a later scan; one that refused is
# not asked again.
JOIN_AGAIN = 0.5
JOIN_ATTEMPTS = 3
# A mains-powered ESME reads the hub's time (its keep-alive) at once on power-up and after
# joining, then hourly: unacknowledged, it is how the meter comes to count its hub lost.
KEEPALIVE = 3600.0
# A meter counts its parent lost only after this many frames to it in a row went
# unacknowledged: as SE stacks do (Silicon Labs' trust-centre keep-alive and end-device
# poll both give up after 3); the ZigBee spec leaves the test to the implementation.
PARENT_FAILURE_LIMIT = 3
KEEPALIVE_RETRY = 1.0  # an ESME whose frame to the hub went unacknowledged reads its time
REJOIN_RETRY = 60.0  # an orphaned meter looks for its network again this often
SLEEPY_POLL = 30.0  # a GSME wakes this often (GBCS: at least every 30 s)
AWAKE_WINDOW = 0.25
SLEEP_RECHECK = 0.05  # a GSME busy at the end of its awake window looks again this soon
# Indirect transmission (802.15.4-2006 7.5.6.3): the hub holds frames for a sleepy child
# until it polls with a MAC Data Request, at most macTransactionPersistenceTime (0x01F4
# unit periods of aBaseSuperframeDuration, 15.36 ms, in a beaconless PAN).
TRANSACTION_PERSISTENCE = 0x01F4 * 0.01536
# How many Association Responses a hub holds at once: its pending-transaction list is
# bounded, and a request it has no room to answer gets none (TRANSACTION_OVERFLOW), so a
# flood of association requests does not grow it.
MAX_HELD_ASSOCIATIONS = 16
FRAME_WAIT = 0.05  # a GSME told a frame is pending stays on this long for it
POLL_BUSY = 0.25  # a GSME awaiting blocks or an acknowledgement polls again this often
FAST_POLL = 0.1  # a GSME awaiting its GET's or RequestTunnel's answer polls this often
REPLY_WAIT = 1.0  # ... for this long
REASSEMBLY_TIMEOUT = 5.0
# How long the trust centre keeps a rejoin it answered open for the device to prove it got
# the network key (its secured Device_annce), counted again from the key it sends (a GSME
# may fetch its response late): the meter waits 4 x RESPONSE_WAIT for the key.
REJOIN_TIMEOUT = 5.0
MIN_PSDU = 5  # the shortest 802.15.4 frame, an ack: control, sequence, FCS (2006: 7.2.2.3)
# APS payload bytes per block: the most a NWK-secured data frame (8-byte NWK header,
# 14-byte auxiliary header with extended nonce, 4-byte MIC, 10-byte APS header with
# fragmentation) carries in a 127-byte PSDU; a test pins it.
MAX_BLOCK = 80
NWK_DEDUP_WINDOW = 64
# APS fragmentation (ZigBee 2.2.8.4.5): every block asks for an APS acknowledgement; the
# receiver acknowledges each window of APS_WINDOW blocks (apsMaxWindowSize, at its most),
# and the sender sends the next window only then. A window not acknowledged within
# APS_ACK_WAIT (apscAckWaitDuration: 0.05 s x 2 x nwkcMaxDepth 15 + 0.1 s for security)
# of its last block's MAC acknowledgement is sent again, at most APS_MAX_RETRIES times
# (apscMaxFrameRetries).
APS_WINDOW = 8
APS_ACK_WAIT = 1.6
APS_MAX_RETRIES = 3
HUB_ENDPOINT = 0x0A  # the hub's Smart Energy endpoint (Tunneling, Time server)
METER_ENDPOINT = 0x01


# The longest GBCS message a tunnel carries: the MaximumIncomingTransferSize (GBCS 10.2.2)
# less the costliest GBCS tunnel header, a GET-RESPONSE's command and remaining count. A
# test pins that a TransferData this long fits in the APS blocks a message may take.
MAX_GBCS_MESSAGE = MAX_TRANSFER_SIZE - len(encode_gbcs_tunnel(GbcsGetResponse(0xFF, b"")))


class NodeState(enum.Enum):
    OFF = "off"
    SCANNING = "scanning"  # auto-join: looking for a network that permits joining
    JOINING = "joining"  # associated, waiting for the network key
    JOINED = "joined"
    ORPHANED = "orphaned"  # holds network settings, lost its parent: trust-centre rejoin
    REJOINING = "rejoining"


# Enum members the per-frame path reads, bound once: reading one off its class costs about
# 100 ns on Python 3.11, a module global a tenth of that.
_JOINED = NodeState.JOINED
_JOINING = NodeState.JOINING
_REJOINING = NodeState.REJOINING
_SCAN_STATES = (NodeState.SCANNING, NodeState.REJOINING)  # when beacons matter
_KEY_STATES = (NodeState.JOINING, NodeState.REJOINING)  # when a Transport Key is awaited
_ACK_FRAME = MacFrameType.ACK
_DATA_FRAME = MacFrameType.DATA
_BEACON_FRAME = MacFrameType.BEACON
_COMMAND_FRAME = MacFrameType.COMMAND


@dataclass(slots=True)
class NetworkSettings:
    """What a device keeps across power cycles once it has joined (NV storage)."""

    channel: int
    pan_id: int
    extended_pan_id: bytes
    network_key: bytes
    key_sequence: int
    short_address: int
    trust_centre: bytes  # the trust centre's EUI-64

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["extended_pan_id"] = self.extended_pan_id.hex().upper()
        d["network_key"] = self.network_key.hex().upper()
        d["trust_centre"] = self.trust_centre.hex().upper()
        return d

    @classmethod
    def from_json(cls, obj: Any, where: str = "settings") -> NetworkSettings:
        """Strict: every key required, each in its on-air range (a GbcsError naming it)."""
        saved = SavedState(obj, where)
        channel = saved.integer("channel", ALL_CHANNELS[0], ALL_CHANNELS[-1])
        return cls(
            channel,
            saved.integer("pan_id", 0, 0xFFFE),
            saved.octets("extended_pan_id", 8),
            saved.octets("network_key", 16),
            saved.integer("key_sequence", 0, 0xFF),
            saved.integer("short_address", 0, 0xFFFF),
            saved.octets("trust_centre", 8),
        )


class TrustCentre(Protocol):
    """The hub logic the coordinator asks (a :class:`emulators.chf.CommsHub`)."""

    def join_key(self, device: bytes) -> bytes | None: ...

    def rejoin_key(self, device: bytes) -> bytes | None: ...

    def logged(self, device: bytes) -> bool:
        """Whether ``device`` is in the log still: a look again, not an admission."""
        ...

    def joining_open(self) -> bool: ...

    def device_joined(self, device: bytes, *, sleepy: bool) -> None: ...

    def logged_sleepy(self, device: bytes) -> bool | None: ...

    def from_han(self, device: bytes, data: bytes) -> None: ...

    def take_held(self, device: bytes) -> bytes | None: ...

    def held_count(self, device: bytes) -> int: ...

    def undelivered(self, device: bytes, data: bytes) -> None: ...

    def push_failed(self, device: bytes, data: bytes, *, unsent: str | None = None) -> None: ...

    def tunnel_refused(
        self, device: bytes, data: bytes, status: int, *, may_have_run: bool = False
    ) -> None: ...


@dataclass(slots=True)
class _Counters:
    mac: int = 0
    beacon: int = 0  # macBSN: beacons have their own sequence (802.15.4-2006 7.2.2.1.2)
    nwk: int = 0
    aps: int = 0
    zcl: int = 0
    zdo: int = 0
    nwk_frame: int = 0
    aps_frame: int = 0

    def next(self, name: str, bits: int = 8) -> int:
        value = getattr(self, name)
        setattr(self, name, (value + 1) % (1 << bits))
        return value

    @classmethod
    def from_json(cls, saved: SavedState) -> _Counters:
        """Every counter required (but ``beacon``, absent from states saved before it was
        kept): sequence numbers 8 bits, frame counters 32."""
        return cls(
            **{
                name: saved.integer(name, 0, 0xFFFFFFFF if name.endswith("_frame") else 0xFF)
                for name in cls.__dataclass_fields__
                if name != "beacon" or name in saved
            }
        )


@dataclass(slots=True)
class _Reassembly:
    parts: dict[int, tuple[Fragment, bytes]] = field(default_factory=dict)
    timer: Timer | None = None


@dataclass(slots=True, eq=False)
class Transfer:
    """One application payload on its way to one neighbour, in one or more APS blocks.

    A block is framed (MAC and NWK sequence numbers, NWK frame counter) only when it is
    sent, so a later window or a block sent again takes the numbers of its moment. A
    single block is delivered when the MAC has its acknowledgement; blocks of a
    fragmented payload when the receiver's APS acknowledgement names them.
    """

    dst: int
    settings: NetworkSettings
    blocks: list[ApsData]
    window: int = 0  # the first block of the window on its way
    acked: int = 0  # one bit per block the receiver acknowledged
    tries: int = 0  # how often the current window was sent again
    timer: Timer | None = None
    in_mac: set[bytes] = field(default_factory=set)  # its PSDUs queued or on the air
    outcome: str | None = None  # why it failed, once it has
    finished: bool = False
    radius: int = 30  # the NWK radius of its frames
    # Its last window was sent again for want of an acknowledgement: the receiver may have
    # had it all before (and acted on it, then lost the memory of it in a restart).
    resent_whole: bool = False
    framed: int = 0  # blocks 0..framed-1 have been on the air (each window goes in order)
    # Why a block of it never went on the air (its sender's frame counter ran out): the
    # receiver cannot hold the whole payload, so it cannot have acted on it.
    unsent: str | None = None

    @property
    def fragmented(self) -> bool:
        return len(self.blocks) > 1

    def window_end(self) -> int:
        return min(self.window + APS_WINDOW, len(self.blocks))


class _Node:
    """What both ends share: the radio, counters, MAC acks and retries, NWK dedup."""

    # Whether the fault plan's power cycles apply: a meter's supply fails; the hub's is
    # not modelled as failing.
    power_cyclable = False
    sleepy = False  # a sleepy end device polls its parent for what it holds

    def __init__(self, clock: VirtualClock, ieee: bytes, *, name: str = "") -> None:
        if len(ieee) != 8:
            raise GbcsError("an EUI-64 is 8 bytes")
        self.clock = clock
        self.ieee = ieee
        self.name = name or ieee.hex().upper()
        self.medium: HanMedium | None = None
        self.channel = ALL_CHANNELS[0]
        self.pan_id: int | None = None
        self.short_address: int | None = None
        self.listening = True
        self.counters = _Counters()
        # (psdu, dst_pan, dst, tries): tries 0 for a frame to be acknowledged, else -1; the
        # entry becomes _tx_current as it is.
        self._tx_queue: collections.deque[tuple[bytes, int | None, int | bytes | None, int]] = (
            collections.deque()
        )
        self._tx_current: tuple[bytes, int | None, int | bytes | None, int] | None = None
        self._tx_timer: Timer | None = None
        # When this radio's last acknowledgement has left the air: it sends one frame at a
        # time, so a frame it sends meanwhile (the answer to what it acknowledged) waits.
        self._ack_until = 0.0
        self._nwk_seen: dict[bytes | int, int] = {}  # secured: last frame counter per source
        self._unsecured_seen: dict[bytes | int, int] = {}  # last NWK sequence per source
        self._reassembly: dict[tuple[int, int], _Reassembly] = {}
        # Fragmented payloads received whole, by (source, APS counter), while a block of
        # theirs may still come again (our acknowledgement lost): their block count.
        self._reassembled: dict[tuple[int, int], int] = {}
        # Outgoing payloads: by each of their PSDUs in the MAC, and the fragmented ones
        # awaiting APS acknowledgements by (destination, APS counter).
        self._in_mac: dict[bytes, Transfer] = {}
        self._transfers: dict[tuple[int, int], Transfer] = {}
        # A hub's frames held for each polling child, by its short address, and its
        # Association Responses, by the joining device's EUI-64: [psdu, timer, until].
        self._indirect: dict[int | bytes, collections.deque[list[Any]]] = {}
        # Held frames handed to their polling child, awaiting its acknowledgement: until
        # when they may be held again.
        self._handed: dict[bytes, float] = {}
        self._ack_pending = False  # the frame pending bit of the last ack heard
        self.frames_dropped = 0
        self.trace: Callable[[str], None] | None = None
        self._keys: tuple[Any, Keys] | None = None  # (what they were built from, keys)
        # A trust centre's answered rejoins, by EUI-64: (the child record it will be, until).
        self._rejoining: dict[bytes, tuple[Child, float]] = {}

    # Radio -------------------------------------------------------------------------
    def place(self, medium: HanMedium | None) -> None:
        """Put the radio somewhere (a premises, a bench) or nowhere (in a van)."""
        if self.medium is not None:
            self.medium.detach(self)
        self.medium = medium
        if medium is not None:
            medium.attach(self)

    def _transmit(self, psdu: bytes, dst_pan: int | None, dst: int | bytes | None) -> None:
        """Queue a frame that needs no acknowledgement (broadcasts, beacons)."""
        self._tx_queue.append((psdu, dst_pan, dst, -1))
        if self._tx_current is None:
            self._tx_next()

    def _send_acked(self, psdu: bytes, dst_pan: int, dst: int | bytes) -> None:
        """Queue a unicast frame with ack request: retried until acknowledged or given up."""
        self._tx_queue.append((psdu, dst_pan, dst, 0))
        if self._tx_current is None:
            self._tx_next()

    def _tx_next(self) -> None:
        """Stop-and-wait MAC: one frame on the air at a time, the next after its ack."""
        queue = self._tx_queue
        if not queue:
            self._tx_current = None
            return
        current = self._tx_current = queue.popleft()
        psdu = current[0]
        after = self._after_own_ack()
        medium = self.medium
        if medium is not None and self.listening:  # _put_on_air, inlined: every frame
            medium.send(self, psdu, current[1], current[2], after)
        wait = after + _airtime(psdu) + (ACK_WAIT if current[3] >= 0 else TURNAROUND)
        self._tx_timer = self.clock.call_later(wait, self._tx_timeout)

    def _after_own_ack(self) -> float:
        """How long a frame waits for this radio's own acknowledgement to leave the air, and
        the turnaround back to transmit (802.15.4 7.5.6.4.2): never two frames at once."""
        after = self._ack_until - self.clock.now
        return after + TURNAROUND if after > 0.0 else 0.0

    def _put_on_air(
        self, psdu: bytes, dst_pan: int | None, dst: int | bytes | None, after: float = 0.0
    ) -> None:
        if self.medium is not None and self.listening:
            self.medium.send(self, psdu, dst_pan, dst, after)

    def _tx_timeout(self) -> None:
        current = self._tx_current
        if current is None:
            return
        psdu, dst_pan, dst, tries = current
        if tries < 0:  # unacknowledged frame: done once it has left
            self._tx_next()
            return
        if tries == _HANDED_OVER:
            # Not retried at once: it waits, with its sequence number, for the child's next
            # Data Request (802.15.4-2006 7.5.6.4.3).
            self._tx_current = None
            self._hold_again(psdu, dst)  # type: ignore[arg-type]
            self._tx_next()
            return
        if tries >= MAX_FRAME_RETRIES:
            # Told before the next frame goes: the failed message's other frames come off
            # the queue.
            self._tx_current = None
            self._mac_failed(psdu, dst, tries)
            if self._tx_current is None:
                self._tx_next()
            return
        self._tx_current = (psdu, dst_pan, dst, tries + 1)
        after = self._after_own_ack()
        self._put_on_air(psdu, dst_pan, dst, after)
        self._tx_timer = self.clock.call_later(after + _airtime(psdu) + ACK_WAIT, self._tx_timeout)

    def _mac_failed(
        self, psdu: bytes, dst: int | bytes | None, tries: int, why: str | None = None
    ) -> None:
        """The MAC gave up on ``psdu``: unacknowledged after its retries, or (``why``)
        never polled for while held for a sleepy child."""
        transfer = self._in_mac.pop(psdu, None) if self._in_mac else None
        if transfer is not None:
            if transfer.finished and transfer.outcome is None:
                # Its APS acknowledgement came first: the receiver has it all.
                transfer.in_mac.discard(psdu)
                return
            to = f"{transfer.dst:#06x}"
            self._block_failed(
                transfer, psdu, why or f"no MAC acknowledgement from {to} after {tries} retries"
            )
        if dst is not None:
            self.delivery_failed(dst, psdu)

    def _acknowledged(self, seq: int) -> None:
        current = self._tx_current
        if current is None or current[3] < 0 or current[0][2] != seq:
            return
        if self._tx_timer is not None:
            self._tx_timer.cancel()
        self._tx_next()
        if self._handed:
            self._handed.pop(current[0], None)
        transfer = self._in_mac.pop(current[0], None) if self._in_mac else None
        if transfer is not None:
            in_mac = transfer.in_mac
            in_mac.discard(current[0])
            if transfer.finished:
                return
            if len(transfer.blocks) == 1:
                self._finish(transfer)
            elif not in_mac:
                self._await_window(transfer)

    def _unqueue(self, psdus: set[bytes]) -> None:
        """Take frames off the transmit queue: the rest of a message whose block failed,
        useless to a receiver that reassembles APS blocks only when it has them all."""
        queue = self._tx_queue
        keep = [entry for entry in queue if entry[0] not in psdus]
        if len(keep) != len(queue):
            queue.clear()
            queue.extend(keep)
        for short, held in list(self._indirect.items()):
            for entry in [e for e in held if e[0] in psdus]:
                entry[1].cancel()
                held.remove(entry)
            if not held:
                del self._indirect[short]

    def _tx_reset(self) -> None:
        if self._tx_timer is not None:
            self._tx_timer.cancel()
        self._tx_queue.clear()
        self._tx_current = None
        self._tx_timer = None
        self._in_mac.clear()

    def delivery_failed(self, dst: int | bytes, psdu: bytes) -> None:
        """The MAC gave up on ``psdu`` to ``dst`` (no acknowledgement)."""

    def transfer_done(self, transfer: Transfer) -> None:
        """``transfer`` was delivered, or failed (its ``outcome`` says why)."""

    # APS transfers (ZigBee 2.2.8.4.5) -----------------------------------------------------
    def _send_block(self, transfer: Transfer, index: int) -> None:
        """Frame block ``index`` of ``transfer`` now and queue it in the MAC."""
        settings = transfer.settings
        try:
            psdu = self._frame(transfer.blocks[index], settings, transfer.dst, transfer.radius)
        except FrameCounterExhausted as e:
            if index >= transfer.framed:
                transfer.unsent = str(e)
            # Failed as a MAC failure is, a moment later: whoever started the transfer
            # learns its outcome the usual way.
            self.clock.call_later(0.0, self._fail, transfer, str(e))
            return
        if index >= transfer.framed:
            transfer.framed = index + 1
        self._in_mac[psdu] = transfer
        transfer.in_mac.add(psdu)
        self._send_acked(psdu, settings.pan_id, transfer.dst)

    def _send_window(self, transfer: Transfer) -> None:
        """The blocks of the current window the receiver has not acknowledged."""
        acked = transfer.acked
        for index in range(transfer.window, transfer.window_end()):
            if not acked >> index & 1:
                self._send_block(transfer, index)

    def _block_failed(self, transfer: Transfer, psdu: bytes, why: str) -> None:
        """The MAC gave up on ``psdu``. A lone frame's transfer fails; a lost block of a
        fragmented one is sent again when its window's acknowledgement does not come
        (2.2.8.4.5.1)."""
        transfer.in_mac.discard(psdu)
        if transfer.finished:
            return
        if len(transfer.blocks) == 1:
            self._fail(transfer, why)
        elif not transfer.in_mac:
            self._await_window(transfer)

    def _await_window(self, transfer: Transfer) -> None:
        """The window is out: its APS acknowledgement is awaited from now."""
        if transfer.timer is not None:
            transfer.timer.cancel()
        transfer.timer = self.clock.call_later(APS_ACK_WAIT, self._window_timeout, transfer)

    def _window_timeout(self, transfer: Transfer) -> None:
        transfer.timer = None
        if transfer.finished:
            return
        if transfer.tries >= APS_MAX_RETRIES:
            to = f"{transfer.dst:#06x}"
            self._fail(transfer, f"no APS acknowledgement from {to} after {transfer.tries} retries")
            return
        transfer.tries += 1
        if transfer.window_end() == len(transfer.blocks):
            transfer.resent_whole = True
        self._send_window(transfer)

    def _aps_acked(self, src: int, ack: ApsAck) -> None:
        """An APS acknowledgement of a window of blocks we sent ``src``."""
        transfer = self._transfers.get((src, ack.counter))
        frag = ack.fragment
        if transfer is None or frag is None or frag.block_number != transfer.window:
            return  # late (a window acknowledged before), or not for anything we await
        end = transfer.window_end()
        bits = frag.ack_bitfield & ((1 << (end - transfer.window)) - 1)
        new = (bits << transfer.window) & ~transfer.acked
        if not new:
            return
        transfer.acked |= new
        transfer.tries = 0
        if transfer.timer is not None:
            transfer.timer.cancel()
            transfer.timer = None
        window = ((1 << end) - 1) & ~((1 << transfer.window) - 1)
        if transfer.acked & window != window:
            self._send_window(transfer)  # the receiver names what it is missing
            return
        if end == len(transfer.blocks):
            self._finish(transfer)
            return
        transfer.window = end
        self._send_window(transfer)

    def _finish(self, transfer: Transfer) -> None:
        transfer.finished = True
        if transfer.in_mac:
            # Delivered: blocks queued to be sent again are not needed. (One on the air
            # stays until its MAC is done with it.)
            current = self._tx_current
            queued = {p for p in transfer.in_mac if current is None or p != current[0]}
            if queued:
                for psdu in queued:
                    self._in_mac.pop(psdu, None)
                self._unqueue(queued)
                transfer.in_mac -= queued
        if transfer.timer is not None:
            transfer.timer.cancel()
            transfer.timer = None
        if transfer.fragmented:
            self._transfers.pop((transfer.dst, transfer.blocks[0].counter), None)
        self.transfer_done(transfer)

    def _fail(self, transfer: Transfer, reason: str) -> None:
        """Give up on ``transfer``: its blocks still queued are not sent."""
        if transfer.finished:
            return
        transfer.outcome = reason
        self._finish(transfer)

    def _drop_transfers(self, reason: str) -> None:
        """Give up on every transfer under way, and on payloads half reassembled: the node
        leaves the network they belong to."""
        # Each once, in the order they were queued (a set's order would vary between runs).
        for transfer in dict.fromkeys([*self._transfers.values(), *self._in_mac.values()]):
            self._fail(transfer, reason)
        self._reassembly.clear()
        self._reassembled.clear()

    def unsent(self, transfer: Transfer) -> bool:
        """Whether a block of ``transfer`` has not been on the air yet."""
        if transfer.finished:
            return False
        if transfer.window_end() < len(transfer.blocks):
            return True
        in_mac = transfer.in_mac
        if any(queued[0] in in_mac for queued in self._tx_queue):
            return True
        held = self._indirect.get(transfer.dst)
        return held is not None and any(entry[0] in in_mac for entry in held)

    def _held_for(self, mac: MacFrame) -> bool:
        """Whether a Data Request's sender has frames held for it (a hub's answer)."""
        return False

    def _hold_again(self, psdu: bytes, dst: int) -> None:
        """A held frame its child did not acknowledge (a hub's)."""

    def _poll_parent(self) -> None:
        """A sleepy end device's MAC Data Request to its parent."""

    def _ack(self, seq: int, pending: bool = False) -> None:
        # Acks go out at the turnaround time, outside the transmit queue (802.15.4 7.5.6.4.2).
        self._ack_until = self.clock.now + TURNAROUND + _ACK_AIRTIME
        self._put_on_air((_ACKS_PENDING if pending else _ACKS)[seq], None, None, TURNAROUND)

    def keys(self) -> Keys:
        return Keys()

    def wants(self, frame_type: int, psdu: bytes) -> bool:
        """A radio's first look at a frame, before any decoding (address filtering)."""
        return True

    def deliver(self, psdu: bytes) -> None:
        if len(psdu) < MIN_PSDU:
            self.frames_dropped += 1  # noise: no 802.15.4 frame is this short
            return
        frame_type = psdu[0] & 0x07
        if frame_type == _ACK_FRAME:
            # 5 bytes: only the sender waiting for this sequence number cares.
            current = self._tx_current
            if (
                current is not None
                and len(psdu) == 5
                and current[0][2] == psdu[2]
                and (psdu in _ACK_SET or fcs(psdu[:3]) == psdu[3:])
            ):
                self._ack_pending = psdu[0] & 0x10 != 0
                self._acknowledged(psdu[2])
            return
        if not self.wants(frame_type, psdu):
            return
        try:
            mac = decode_mac(psdu)
        except GbcsError:
            self.frames_dropped += 1
            return
        if mac.frame_type == _ACK_FRAME:
            self._ack_pending = mac.frame_pending
            self._acknowledged(mac.sequence)
            return
        if mac.ack_request and (
            mac.dst == self.ieee or (mac.dst == self.short_address and mac.dst_pan == self.pan_id)
        ):
            pending = (bool(self._indirect) or bool(self._handed)) and self._held_for(mac)
            self._ack(mac.sequence, pending)
            if mac.frame_pending and self.sleepy:
                self.clock.call_soon(self._poll_parent)  # more is held for it: ask at once
        if mac.frame_type != _DATA_FRAME:
            self.mac_frame(mac)
            return
        try:
            decoded = air.decode_frame(psdu, self.keys(), mac=mac)
        except GbcsError:
            self.frames_dropped += 1
            return
        nwk = decoded.nwk
        if nwk is None:
            return
        for_me = nwk.dst in (self.short_address, 0xFFFF, 0xFFFD, 0xFFFC)
        if not for_me and nwk.dst_ieee != self.ieee:
            return
        if nwk.security is not None:
            if type(nwk.payload) is EncryptedPayload:
                return  # not decrypted (no key, or not ours): nothing to act on or to count
            source: bytes | int = nwk.security.source or nwk.src
            last = self._nwk_seen.get(source)
            counter = nwk.security.frame_counter
            if last is not None and counter <= last:
                return  # a retransmission or a replay (ZigBee 4.3.1.2)
            self._nwk_seen[source] = counter
            if self._rejoining and source in self._rejoining:
                self._rejoin_proved(source, decoded)  # type: ignore[arg-type]
        elif self._duplicate_unsecured(nwk.src_ieee or nwk.src, nwk.sequence):
            return
        self.nwk_frame(decoded)

    def _rejoin_proved(self, device: bytes, decoded: air.Decoded) -> None:
        """A NWK-secured frame from a device whose rejoin is pending (trust centre only)."""

    def _drop(self, why: str) -> None:
        """Count and trace a frame this node will not act on."""
        self.frames_dropped += 1
        if self.trace is not None:
            self._log(f"dropped: {why}")

    def _decode_whole(self, aps: ApsData, whole: bytes) -> air.Application | None:
        """The application frame of a reassembled APS payload; None (dropped) if malformed."""
        try:
            return air.decode_application(aps.profile_id, aps.cluster_id, whole)
        except GbcsError as e:
            self._drop(f"malformed reassembled APS payload ({e})")
            return None

    def _secured_counters(self) -> list[list[Any]]:
        """The last NWK frame counter heard from each secured source, for the saved state:
        a frame replayed after a restart is still a replay (ZigBee 4.3.1.2)."""
        return [
            [k.hex().upper() if isinstance(k, bytes) else k, v] for k, v in self._nwk_seen.items()
        ]

    def _forget_neighbours(self) -> None:
        """A new network (or none): nothing heard on the old one counts any more."""
        self._nwk_seen.clear()
        self._unsecured_seen.clear()

    def _duplicate_unsecured(self, source: bytes | int, sequence: int) -> bool:
        """Whether this unsecured frame repeats the last one from ``source``. The table
        keeps the latest UNSECURED_MEMORY sources (anyone can claim any source)."""
        seen = self._unsecured_seen
        last = seen.pop(source, None)
        seen[source] = sequence
        if len(seen) > UNSECURED_MEMORY:
            del seen[next(iter(seen))]
        return last == sequence

    def mac_frame(self, mac: MacFrame) -> None:
        """Beacons and MAC commands."""

    def nwk_frame(self, decoded: air.Decoded) -> None:
        """NWK data and commands addressed to this node."""

    # APS data ------------------------------------------------------------------------
    def _aps_payload(self, src: int, aps: ApsData) -> bytes | None:
        """The whole APS payload once every block is in (spec 2.2.8.4.5); each window
        of blocks complete is acknowledged when the sender asked."""
        frag = aps.fragment
        if frag is None:
            return aps.payload if isinstance(aps.payload, bytes) else None
        if not isinstance(aps.payload, bytes):
            return None
        key = (src, aps.counter)
        done = self._reassembled.get(key)
        if done is not None:
            # Whole already: the sender missed our acknowledgement and sent again.
            if aps.ack_request and frag.block_number < done:
                self._ack_window(src, aps, _window_of(frag.block_number))
            return None
        entry = self._reassembly.get(key)
        if entry is None:
            entry = self._reassembly[key] = _Reassembly()
            entry.timer = self.clock.call_later(REASSEMBLY_TIMEOUT, self._reassembly.pop, key, None)
        entry.parts[frag.block_number] = (frag, aps.payload)
        if aps.ack_request:
            self._ack_if_complete(src, aps, frag.block_number, entry)
        try:
            whole = reassemble(entry.parts.values())
        except FragmentError:
            return None
        if entry.timer is not None:
            entry.timer.cancel()
        del self._reassembly[key]
        self._reassembled[key] = len(entry.parts)
        self.clock.call_later(REASSEMBLY_TIMEOUT, self._reassembled.pop, key, None)
        return whole

    def _ack_if_complete(self, src: int, aps: ApsData, block: int, entry: _Reassembly) -> None:
        """Acknowledge the window of ``block``, just in, once it holds all its blocks."""
        first = entry.parts.get(0)
        total = None if first is None else first[0].total_blocks
        if total is None or block >= total:
            return  # the first block (which counts them) is not in: window 0 is not whole
        start = _window_of(block)
        parts = entry.parts
        if all(i in parts for i in range(start, min(start + APS_WINDOW, total))):
            self._ack_window(src, aps, start)

    def _ack_window(self, src: int, aps: ApsData, start: int) -> None:
        """An APS acknowledgement of the whole window of ``aps``'s payload from block
        ``start``, to the endpoint it came from (2.2.5.2.3). Every bit is 1: one per block
        held, and those past the payload's end are 1 too, as ZigBee PRO receivers set
        them."""
        settings: NetworkSettings | None = getattr(self, "settings", None)
        if settings is None:
            return
        ack = ApsAck(
            aps.counter,
            dst_endpoint=aps.src_endpoint,
            cluster_id=aps.cluster_id,
            profile_id=aps.profile_id,
            src_endpoint=aps.dst_endpoint,
            fragment=AckFragment(start == 0, start, 0xFF),
        )
        try:
            psdu = self._frame(ack, settings, src)
        except FrameCounterExhausted:
            return  # unacknowledged: the sender gives the payload up, as for a lost ack
        self._send_acked(psdu, settings.pan_id, src)

    def _frame(self, aps: Any, settings: NetworkSettings, dst: int, radius: int = 30) -> bytes:
        """An APS frame to ``dst`` in a NWK-secured data frame, on the next sequence
        numbers and NWK frame counter (FrameCounterExhausted, taking none, if it is used up)."""
        security = self._security(settings)
        counters = self.counters
        mac_sequence, nwk_sequence = counters.mac, counters.nwk
        counters.mac, counters.nwk = (mac_sequence + 1) & 0xFF, (nwk_sequence + 1) & 0xFF
        return air.nwk_data(
            aps,
            mac_sequence=mac_sequence,
            nwk_sequence=nwk_sequence,
            pan_id=settings.pan_id,
            src=settings.short_address,
            dst=dst,
            security=security,
            radius=radius,
        )

    def _security(self, settings: NetworkSettings) -> NwkSecurity:
        """The next outgoing NWK frame counter's security; FrameCounterExhausted when the
        counter is used up (ZigBee 4.3.1.1), leaving it as it is."""
        counters = self.counters
        counter = counters.nwk_frame
        if counter >= FRAME_COUNTER_LIMIT:
            raise self._exhausted("NWK")
        counters.nwk_frame = counter + 1
        return NwkSecurity(settings.network_key, settings.key_sequence, counter, self.ieee)

    def _exhausted(self, layer: str) -> FrameCounterExhausted:
        """The error for a frame not sent for want of a frame counter, traced."""
        clause = "4.3.1.1" if layer == "NWK" else "4.4.1.1"
        text = (
            f"outgoing {layer} frame counter used up ({FRAME_COUNTER_LIMIT:#010x}, ZigBee "
            f"{clause}): no more secured frames until the key changes"
        )
        self._log(f"frame not sent: {text}")
        return FrameCounterExhausted(f"{self.name or self.ieee.hex().upper()}: {text}")

    # Endpoints of the GBCS tunnel: the hub's Smart Energy endpoint (endpoint 1 is the
    # Home Automation one on zigpy coordinators) and the meter's.
    TUNNEL_SRC_ENDPOINT = METER_ENDPOINT
    TUNNEL_DST_ENDPOINT = HUB_ENDPOINT

    def _send_application(
        self, settings: NetworkSettings, dst: int, zcl: bytes, cluster: int = TUNNELING_CLUSTER
    ) -> Transfer:
        """Send ``zcl`` to ``dst`` in as many APS blocks as it takes."""
        counters = self.counters
        aps_counter = counters.aps  # counters.next("aps"), inlined: every frame
        counters.aps = (aps_counter + 1) & 0xFF
        return self._send_payload(
            settings,
            dst,
            air.application_frames(
                zcl,
                cluster_id=cluster,
                counter=aps_counter,
                src_endpoint=self.TUNNEL_SRC_ENDPOINT,
                dst_endpoint=self.TUNNEL_DST_ENDPOINT,
                max_block=MAX_BLOCK,
                ack_request=len(zcl) > MAX_BLOCK,  # fragments are acknowledged (2.2.8.4.5)
            ),
        )

    def _send_payload(
        self, settings: NetworkSettings, dst: int, blocks: list[ApsData], radius: int = 30
    ) -> Transfer:
        """Start a transfer of ``blocks`` (one payload's, unicast) to ``dst``."""
        transfer = Transfer(dst, settings, blocks, radius=radius)
        if len(blocks) > 1:
            key = (dst, blocks[0].counter)
            earlier = self._transfers.get(key)
            if earlier is not None:  # 256 payloads later, the same APS counter
                self._fail(earlier, f"APS counter {key[1]} reused before its acknowledgement")
            self._transfers[key] = transfer
            self._send_window(transfer)
        else:
            self._send_block(transfer, 0)
        return transfer

    def _tunnel_zcl(
        self, command: Any, direction: Direction | None = None, sequence: int | None = None
    ) -> bytes:
        """A tunnel command's ZCL frame, on the next sequence number, or on ``sequence``
        for a response (it carries its command's, ZCL 2.4.1.3)."""
        if sequence is None:
            counters = self.counters
            sequence = counters.zcl  # counters.next("zcl"), inlined
            counters.zcl = (sequence + 1) & 0xFF
        frame = tunnel_frame(
            command,
            sequence=sequence,
            direction=direction,
            disable_default_response=True,
        )
        return encode_zcl(frame)

    def _log(self, text: str) -> None:
        if self.trace is not None:
            self.trace(f"{self.clock.now:10.4f} {self.name}: {text}")


_NO_KEYS = Keys()
_ACKS = tuple(encode_mac(MacFrame(MacFrameType.ACK, seq)) for seq in range(256))
# Acks of a Data Request when a frame is held for the poller (frame pending bit set).
_ACKS_PENDING = tuple(
    encode_mac(MacFrame(MacFrameType.ACK, seq, frame_pending=True)) for seq in range(256)
)
_ACK_SET = frozenset(_ACKS + _ACKS_PENDING)  # acks known to have a good FCS: no CRC each
# A transmit-queue entry's tries for a held frame handed to its polling child: sent once.
_HANDED_OVER = 0x100


def _window_of(block: int) -> int:
    """The first block of the APS window ``block`` is in."""
    return block - block % APS_WINDOW


def _airtime(psdu: bytes) -> float:
    return (len(psdu) + 6) * 32e-6


_ACK_AIRTIME = _airtime(_ACKS[0])


def short_address_for(ieee: bytes, taken: set[int]) -> int:
    """A stochastic-looking but reproducible NWK address (ZigBee 3.6.1.7)."""
    value = int.from_bytes(hashlib.sha256(ieee).digest()[:2], "big") % 0xFFF6 + 1
    while value in taken or value == COORDINATOR:
        value = value % 0xFFF6 + 1
    return value


def _saved_rejoins(
    saved: SavedState, children: dict[bytes, Child]
) -> dict[bytes, tuple[Child, float]]:
    """A saved hub's pending rejoins (absent from states saved before they were): each of
    a child (a rejoin is pending only for a device with a record to lose), once, on an
    address no other device holds."""
    pending: dict[bytes, tuple[Child, float]] = {}
    if "rejoining" not in saved:
        return pending
    for r in saved.members("rejoining"):
        ieee = r.octets("ieee", 8)
        if ieee not in children:
            raise GbcsError(f"{r.where}: {ieee.hex().upper()} is not a child")
        if ieee in pending:
            raise GbcsError(f"{r.where}: {ieee.hex().upper()} is rejoining twice")
        short = r.integer("short_address", 1, 0xFFF7)
        others = [c for c in children.values() if c.ieee != ieee]
        others += [c for c, _ in pending.values()]
        if any(c.short_address == short for c in others):
            raise GbcsError(f"{r.where}: short_address {short:#06x} is taken")
        pending[ieee] = (Child(ieee, short, r.flag("sleepy")), r.seconds("until"))
    return pending


class SavedChildren:
    """A saved hub's children, read one by one: each device once, on an address that is
    neither the coordinator's 0x0000 nor a broadcast one (0xFFF8..), and one device per
    address and per tunnel id the hub gave out (a second would get the first one's
    frames). An ESME allocates its own tunnel ids (GBCS 10.2.2.1): two may hold the same."""

    def __init__(self) -> None:
        self.ieees: set[bytes] = set()
        self.shorts: set[int] = set()
        self.tunnels: set[int] = set()

    def claim(self, child: SavedState) -> tuple[bytes, int, int | None]:
        """The child's ``ieee``, ``short_address`` and ``tunnel_id``, checked."""
        ieee = child.octets("ieee", 8)
        if ieee in self.ieees:
            raise GbcsError(f"{child.where}: {ieee.hex().upper()} is a child twice")
        short = child.integer("short_address", 1, 0xFFF7)
        if short in self.shorts:
            raise GbcsError(f"{child.where}: short_address {short:#06x} is taken")
        tunnel = child.optional_integer("tunnel_id", 1, 0xFFFF)
        served = tunnel is not None and child.flag("sleepy")  # the hub's own tunnel id
        if served and tunnel in self.tunnels:
            raise GbcsError(f"{child.where}: tunnel_id {tunnel} is taken")
        self.ieees.add(ieee)
        self.shorts.add(short)
        if served and tunnel is not None:
            self.tunnels.add(tunnel)
        return ieee, short, tunnel


@dataclass(slots=True)
class Child:
    ieee: bytes
    short_address: int
    sleepy: bool
    tunnel_id: int | None = None
    announced: bool = False
    # An ESME's: the hub's RequestTunnel awaiting its answer, or its refusal's back-off.
    tunnel_ask: tunnel_server.TunnelAsk | None = None


class CoordinatorNode(tunnel_server.EsmeTunnelClient, _Node):
    """The CHF's radio: PAN coordinator and trust centre."""

    TUNNEL_SRC_ENDPOINT = HUB_ENDPOINT
    TUNNEL_DST_ENDPOINT = METER_ENDPOINT
    # Whether this node runs the GBCS tunnel itself (a sim NCP leaves it to its host).
    runs_tunnels = True

    @property
    def lost(self) -> str | None:
        """Why the hub can reach no device: an emulated radio is never unplugged (a zigpy
        dongle may be), but one whose NWK frame counter is used up is mute."""
        if self.counters.nwk_frame < FRAME_COUNTER_LIMIT:
            return None
        return (
            f"the hub's outgoing NWK frame counter is used up ({FRAME_COUNTER_LIMIT:#010x}, "
            "ZigBee 4.3.1.1): it can send no secured frame until its network key changes"
        )

    def __init__(self, clock: VirtualClock, ieee: bytes, *, name: str = "") -> None:
        super().__init__(clock, ieee, name=name)
        self.settings: NetworkSettings | None = None
        self.trust_centre: TrustCentre | None = None
        self.children: dict[bytes, Child] = {}
        self._ids = tunnel_server.TunnelIds()
        self.capture: Capture | None = None
        self._indirect = {}
        # Association Responses held for their devices' Data Requests, admitting them: the
        # child record each makes and the link key its Transport Key goes under, once the
        # device acknowledges it (802.15.4-2006 7.5.3.1).
        self._associating: dict[bytes, tuple[Child, bytes]] = {}
        # Each device's Association Response, admitting or refusing, while it is held or
        # being handed over: one at a time, the latest request's.
        self._responses: dict[bytes, bytes] = {}
        # Rejoin Responses held for sleepy devices, by PSDU: (device, the link key its
        # Transport Key goes under once it acknowledges the response, or None: refused,
        # the address the request came from, the address the response gives).
        self._rejoin_answers: dict[bytes, tuple[bytes, bytes | None, int, int]] = {}
        # The held message each sleepy child was last handed (GET-RESPONSE) and the
        # transfer that carries it, until it polls again: if that fails, the message goes
        # back to the CHF rather than being lost in the air.
        self._held_out: dict[bytes, tuple[bytes, Transfer]] = {}
        # Each transfer of a message pushed to an always-listening child (PUT), until it
        # is delivered: its (device, message).
        self._pushing: dict[Transfer, tuple[bytes, bytes]] = {}
        # The last PUTs to always-listening children, for a TransferDataError naming one;
        # the last GET-RESPONSEs that handed sleepy children a held message, likewise.
        self._recent_puts: tunnel_server.RecentPuts | None = None
        self._recent_hand_overs: tunnel_server.RecentPuts | None = None
        # Devices that left, oldest first: their NWK frame counters are kept while they
        # are among the last DEPARTED_MEMORY, so one of their old frames replayed by
        # someone who associates under their EUI-64 does not "prove" a join.
        self._departed: dict[bytes, None] = {}

    @property
    def joined(self) -> bool:
        return self.settings is not None

    def _forget_neighbour(self, device: bytes) -> None:
        """A departed child's NWK sequence goes; its frame counter is kept among the last
        DEPARTED_MEMORY departed devices' (bounded, so a bench hub that outlives
        thousands of meters keeps no trace of most)."""
        self._unsecured_seen.pop(device, None)
        departed = self._departed
        departed.pop(device, None)
        departed[device] = None
        while len(departed) > DEPARTED_MEMORY:
            oldest = next(iter(departed))
            del departed[oldest]
            self._nwk_seen.pop(oldest, None)

    def form(
        self, channel: int, pan_id: int, extended_pan_id: bytes, network_key: bytes
    ) -> NetworkSettings:
        check_network(channel, pan_id, extended_pan_id, network_key)
        self.settings = NetworkSettings(
            channel, pan_id, extended_pan_id, network_key, 0, COORDINATOR, self.ieee
        )
        self.channel, self.pan_id, self.short_address = channel, pan_id, COORDINATOR
        self._note_keys()
        self._log(f"formed PAN {pan_id:#06x} on channel {channel}")
        return self.settings

    def adopt_extended_pan_id(self, extended_pan_id: bytes) -> None:
        """CCS03 restored a log with another extended PAN ID: take it over (swap-out)."""
        if self.settings is not None:
            self.settings.extended_pan_id = extended_pan_id
            self._log(f"adopted extended PAN ID {extended_pan_id.hex().upper()}")

    def _note_keys(self) -> None:
        capture = self.medium.capture if self.medium is not None else None
        if capture is not None and self.settings is not None:
            capture.add_key(self.settings.network_key, f"nwk {self.name}")

    def place(self, medium: HanMedium | None) -> None:
        super().place(medium)
        self._note_keys()

    def keys(self) -> Keys:
        settings = self.settings
        if settings is None:
            return _NO_KEYS
        # Rebuilt only when the key changes: every received frame asks.
        stamp = (settings.key_sequence, settings.network_key)
        if self._keys is None or self._keys[0] != stamp:
            self._keys = (stamp, Keys(network={stamp[0]: stamp[1]}))
        return self._keys[1]

    # MAC -----------------------------------------------------------------------------
    def _send_acked(self, psdu: bytes, dst_pan: int, dst: int | bytes) -> None:
        """Frames to a joined sleepy child wait for its MAC Data Request (indirect
        transmission, 802.15.4-2006 7.5.6.3); the rest go at once."""
        if type(dst) is int and self._polls(dst):
            self._hold(psdu, dst, self.clock.now + TRANSACTION_PERSISTENCE)
            return
        _Node._send_acked(self, psdu, dst_pan, dst)

    def _hold(self, psdu: bytes, dst: int | bytes, until: float, first: bool = False) -> None:
        entry: list[Any] = [psdu, None, until]
        entry[1] = self.clock.call_at(until, self._unclaimed, dst, entry)
        held = self._indirect.setdefault(dst, collections.deque())
        if first:
            held.appendleft(entry)
        else:
            held.append(entry)

    def _hold_again(self, psdu: bytes, dst: int | bytes) -> None:
        until = self._handed.pop(psdu, None)
        transfer = self._in_mac.get(psdu)
        if transfer is not None and transfer.finished:
            del self._in_mac[psdu]  # its message is settled: nothing to hold it for
            transfer.in_mac.discard(psdu)
        elif until is not None:
            self._hold(psdu, dst, until, first=True)

    def _polls(self, short: int) -> bool:
        """Whether ``short`` is a sleepy child's address, joined, joining or rejoining (it
        polls for its Transport Key)."""
        for child in self.children.values():
            if child.short_address == short:
                return child.sleepy
        for pending, _ in self._rejoining.values():
            if pending.short_address == short:
                return pending.sleepy
        return False

    def _unclaimed(self, dst: int | bytes, entry: list[Any]) -> None:
        """A held frame its child never polled for within the persistence time: the MAC
        gives up on it (802.15.4-2006 7.5.6.3, TRANSACTION_EXPIRED)."""
        if not self._unhold(dst, entry):
            return
        who = dst.hex().upper() if isinstance(dst, bytes) else f"{dst:#06x}"
        self._mac_failed(
            entry[0], dst, 0, f"{who} did not poll for it within macTransactionPersistenceTime"
        )

    def _unhold(self, dst: int | bytes, entry: list[Any]) -> bool:
        """Take ``entry`` out of what is held for ``dst``; False if it is not held."""
        held = self._indirect.get(dst)
        if held is None or entry not in held:
            return False
        held.remove(entry)
        if not held:
            del self._indirect[dst]
        return True

    def _mac_failed(
        self, psdu: bytes, dst: int | bytes | None, tries: int, why: str | None = None
    ) -> None:
        answer = self._rejoin_answers.pop(psdu, None) if self._rejoin_answers else None
        if answer is not None:
            self._log(f"rejoin of {answer[0].hex().upper()} not completed: {why or 'no ack'}")
        if type(dst) is bytes and self._responses.get(dst) == psdu:
            del self._responses[dst]
            if self._associating.pop(psdu, None) is not None:
                eui = dst.hex().upper()
                if self.has_child(dst):
                    self._log(
                        f"association response to {eui} not fetched: {eui} is joined already "
                        "(a late copy of its request?)"
                    )
                else:
                    self._log(f"association of {eui} not completed: {why or 'no ack'}")
        _Node._mac_failed(self, psdu, dst, tries, why)

    def _acknowledged(self, seq: int) -> None:
        current = self._tx_current
        _Node._acknowledged(self, seq)
        if current is None or self._tx_current is current:
            return  # not the frame on the air: nothing was acknowledged
        psdu, dst = current[0], current[2]
        if self._responses and type(dst) is bytes and self._responses.get(dst) == psdu:
            del self._responses[dst]
            joining = self._associating.pop(psdu, None)
            if joining is not None:
                self._associated(*joining)
        if self._rejoin_answers:
            answer = self._rejoin_answers.pop(psdu, None)
            if answer is not None:
                self._rejoin_answered(answer[0], answer[1])

    def _rejoin_answered(self, device: bytes, key: bytes | None) -> None:
        """A sleepy device has its Rejoin Response: its key follows now (as for an
        association: handed to a poll sent again while the response was on the air, it
        would reach a device with no address yet, which drops it)."""
        if key is not None:
            self.clock.call_later(0.01, self._send_rejoin_key, device, key)

    def _send_rejoin_key(self, device: bytes, key: bytes) -> None:
        """The network key for an accepted rejoin, if the trust centre still has the device
        in its log as it goes (a CCS02 may have come since the response)."""
        tc = self.trust_centre
        if tc is None or not tc.logged(device):
            self._log(f"{device.hex().upper()} rejoined but is no longer in the device log")
            return
        self._send_network_key(device, key)

    def _held_for(self, mac: MacFrame) -> bool:
        """Whether a Data Request's sender has a frame pending: held, or handed over and
        not yet acknowledged (the transaction stays pending until then, 802.15.4-2006
        7.5.6.3), so a poll sent again while its frame is on the way is told to wait."""
        src = mac.src
        if not isinstance(mac.payload, DataRequest) or src is None:
            return False
        if self._indirect.get(src):
            return True
        current = self._tx_current
        if current is not None and current[3] == _HANDED_OVER and current[2] == src:
            return True
        return any(entry[3] == _HANDED_OVER and entry[2] == src for entry in self._tx_queue)

    def _hand_over_held(self, short: int | bytes) -> None:
        """A child's Data Request: its first held frame goes now, with the frame pending
        bit set when more are held (the child polls again for them)."""
        held = self._indirect.get(short)
        if not held:
            return
        entry = held.popleft()
        entry[1].cancel()
        psdu = entry[0]
        if held and not psdu[0] & 0x10:
            marked = bytes([psdu[0] | 0x10]) + psdu[1:-2]
            marked += fcs(marked)
            transfer = self._in_mac.pop(psdu, None)
            if transfer is not None:
                transfer.in_mac.discard(psdu)
                transfer.in_mac.add(marked)
                self._in_mac[marked] = transfer
            if self._rejoin_answers and psdu in self._rejoin_answers:
                self._rejoin_answers[marked] = self._rejoin_answers.pop(psdu)
            psdu = marked
        if not held:
            del self._indirect[short]
        settings = self.settings
        assert settings is not None
        self._handed[psdu] = entry[2]
        # Sent next, ahead of frames queued for others: the child stays on only briefly.
        self._tx_queue.appendleft((psdu, settings.pan_id, short, _HANDED_OVER))
        if self._tx_current is None:
            self._tx_next()

    def mac_frame(self, mac: MacFrame) -> None:
        settings, tc = self.settings, self.trust_centre
        if settings is None or tc is None:
            return
        if isinstance(mac.payload, DataRequest):
            if mac.src is not None and mac.dst_pan == settings.pan_id:
                if self._rejoin_answers and type(mac.src) is int:
                    self._rejoin_polled(mac.src)
                self._hand_over_held(mac.src)
            return
        if isinstance(mac.payload, BeaconRequest):
            psdu = air.beacon(
                mac_sequence=self.counters.next("beacon"),
                pan_id=settings.pan_id,
                src=COORDINATOR,
                extended_pan_id=settings.extended_pan_id,
                association_permit=tc.joining_open(),
            )
            self.clock.call_later(TURNAROUND, self._transmit, psdu, None, None)
        elif isinstance(mac.payload, AssociationRequest) and isinstance(mac.src, bytes):
            self.clock.call_later(0.002, self._associate, mac.src, mac.payload.capability)

    def _associate(self, device: bytes, capability: Capability) -> None:
        settings, tc = self.settings, self.trust_centre
        assert settings is not None and tc is not None
        # A response still held or on its way answers this request too (a copy of the
        # request, or the device asking again after losing the response or its key),
        # unless it refused a device now admitted.
        pending = self._responses.get(device)
        if pending is not None and pending in self._associating:
            return
        key = tc.join_key(device)
        if pending is not None and key is None:
            return
        held = self._indirect
        if device not in held and sum(type(k) is bytes for k in held) >= MAX_HELD_ASSOCIATIONS:
            self._log(
                f"association from {device.hex().upper()} not answered: "
                f"{MAX_HELD_ASSOCIATIONS} responses already held (TRANSACTION_OVERFLOW)"
            )
            return
        child = self.children.get(device)
        if key is None:
            status, short = AssociationStatus.PAN_ACCESS_DENIED, 0xFFFF
            if self.trace is not None:
                eui = device.hex().upper()
                joined = f" ({eui} is joined already)" if self.has_child(device) else ""
                self._log(f"association from {eui} denied: no join window{joined}")
        else:
            taken = self._taken(device)
            short = child.short_address if child else short_address_for(device, taken)
            status = AssociationStatus.SUCCESS
        psdu = air.association_response(
            mac_sequence=self.counters.next("mac"),
            pan_id=settings.pan_id,
            device_ieee=device,
            coordinator_ieee=self.ieee,
            short_address=short,
            status=status,
        )
        # Held until the device asks for it with a Data Request (802.15.4-2006 7.5.3.1); a
        # refusal still pending is replaced now that the device is admitted.
        self._drop_association(device)
        self._responses[device] = psdu
        if key is not None:
            sleepy = not capability.rx_on_when_idle
            self._associating[psdu] = (Child(device, short, sleepy), key)
            self._rejoining.pop(device, None)  # joined afresh instead
        self._hold(psdu, device, self.clock.now + TRANSACTION_PERSISTENCE)

    def _drop_association(self, device: bytes) -> None:
        """Forget the Association Response held for ``device``, or being handed over to
        it (if unacknowledged it is not held again, and if acknowledged it admits nobody)."""
        old = self._responses.pop(device, None)
        if old is None:
            return
        self._associating.pop(old, None)
        self._handed.pop(old, None)
        for entry in self._indirect.pop(device, ()):
            entry[1].cancel()

    def _associated(self, child: Child, link_key: bytes) -> None:
        """The device acknowledged its Association Response: it is a child, and its
        network key follows under its link key, if the trust centre still admits it."""
        if not self._admits(child.ieee):
            self._log(f"{child.ieee.hex().upper()} associated but is no longer admitted")
            return
        old = self.children.get(child.ieee)
        if old is not None:  # what was held for its earlier association is not for this one
            self._drop_held(old.short_address, "its device associated again")
        self.children[child.ieee] = child
        self.clock.call_later(0.01, self._send_network_key, child.ieee, link_key)

    def _drop_held(self, short: int, why: str) -> None:
        """Give up now the frames held for ``short``, no longer the child they were for
        (a joining GSME's Transport Key among them)."""
        for entry in self._indirect.pop(short, ()):
            entry[1].cancel()
            self._mac_failed(entry[0], short, 0, why)

    def _admits(self, device: bytes) -> bool:
        """Whether the trust centre still admits ``device``: its join window may have
        closed since the request (a CHF's log changes reach :meth:`whitelist_changed`)."""
        tc = self.trust_centre
        return tc is not None and tc.join_key(device) is not None

    def joining_child(self, device: bytes) -> Child | None:
        """The record a device joins or rejoins under: a pending rejoin's, else its own."""
        rejoining = self._rejoining.get(device)
        return rejoining[0] if rejoining is not None else self.children.get(device)

    def whitelist_changed(self) -> None:
        """The CHF's device log changed (its ``on_log_change``): a join or rejoin still in
        progress for a device no longer in it is forgotten, so it gets no network key and
        no record (the trust centre admits only logged devices). Joined children stay:
        CCS02 does not unjoin a device (README: its CS02f then cannot be routed)."""
        tc = self.trust_centre
        if tc is None:
            return
        for device in [d for d in self._rejoining if not tc.logged(d)]:
            del self._rejoining[device]
            self._log(f"{device.hex().upper()} left the device log while rejoining")
        for psdu, (child, _) in list(self._associating.items()):
            if not tc.logged(child.ieee):
                del self._associating[psdu]  # its response still goes; no record, no key
                self._log(f"{child.ieee.hex().upper()} left the device log while associating")
        for device in [d for d, c in self.children.items() if not c.announced]:
            if not tc.logged(device):
                gone = self.children.pop(device)
                self._drop_held(gone.short_address, "its device left the device log")
                self._forget_neighbour(device)
                self._log(f"{device.hex().upper()} left the device log while joining")

    def _send_network_key(self, device: bytes, link_key: bytes) -> bool:
        """The network key under the device's link key: held for a sleepy device's poll
        (first), else sent at once. False if it was not sent."""
        settings = self.settings
        child = self.joining_child(device)
        if settings is None or child is None:
            return False
        frame_counter = self.counters.aps_frame
        if frame_counter >= FRAME_COUNTER_LIMIT:  # ZigBee 4.4.1.1: no key for the device
            self._exhausted("APS")
            return False
        self.counters.aps_frame += 1
        psdu = air.transport_network_key(
            mac_sequence=self.counters.next("mac"),
            nwk_sequence=self.counters.next("nwk"),
            aps_counter=self.counters.next("aps"),
            aps_frame_counter=frame_counter,
            pan_id=settings.pan_id,
            tc_short=COORDINATOR,
            tc_ieee=self.ieee,
            dst_short=child.short_address,
            dst_ieee=device,
            network_key=settings.network_key,
            key_sequence=settings.key_sequence,
            link_key=link_key,
        )
        if self.medium is not None and self.medium.capture is not None:
            self.medium.capture.add_key(link_key, f"link {device.hex().upper()}")
        short = child.short_address
        now = self.clock.now
        if self._polls(short):  # ahead of what is held there: without it, nothing reads
            self._hold(psdu, short, now + TRANSACTION_PERSISTENCE, first=True)
        else:
            _Node._send_acked(self, psdu, settings.pan_id, short)
        if device in self._rejoining:  # its proof can come only from now on
            self._rejoining[device] = (child, now + self._proof_wait(device, child))
        return True

    def _proof_wait(self, device: bytes, pending: Child) -> float:
        """How long a rejoin whose key was just sent waits for its proof: REJOIN_TIMEOUT,
        and a sleepy device's next wake more if the rejoin moves it to a new address (its
        Device_annce and RequestTunnel lost, the RequestTunnel it sends at that wake is
        the first proof to come; lapsed, the hub would serve it at the old address)."""
        old = self.children.get(device)
        moved = old is not None and old.short_address != pending.short_address
        return REJOIN_TIMEOUT + (SLEEPY_POLL if pending.sleepy and moved else 0.0)

    # NWK ------------------------------------------------------------------------------
    def nwk_frame(self, decoded: air.Decoded) -> None:
        nwk = decoded.nwk
        settings, tc = self.settings, self.trust_centre
        if nwk is None or settings is None or tc is None:
            return
        payload = nwk.payload
        if isinstance(payload, RejoinRequest):
            if nwk.src_ieee is not None:
                self.clock.call_later(0.002, self._rejoin, nwk.src_ieee, nwk.src, payload)
            return
        if isinstance(payload, Leave):
            device = nwk.security.source if nwk.security else None
            child = None if device is None else self.children.get(device)
            if payload.request or (child is not None and nwk.src != child.short_address):
                # A request asks the receiver to leave, and a device leaves from its own
                # address: anyone else holding the network key could cut a child off.
                self._log("NWK Leave not from the child it names: ignored")
                return
            if device is not None:
                self._rejoining.pop(device, None)
            if device is not None and child is not None:
                del self.children[device]
                # Nothing held for it will be polled for now (802.15.4 MCPS-PURGE).
                self._drop_held(child.short_address, f"{device.hex().upper()} left")
                self._forget_neighbour(device)
                self._log(f"{device.hex().upper()} left")
            return
        if nwk.security is None:
            return  # data on a secured network must be NWK-secured
        device = nwk.security.source
        if device is None:
            return
        child = self.children.get(device)
        aps = decoded.aps
        app = decoded.app if isinstance(aps, ApsData) else None
        announce = None if app is None else app.zdo
        if child is not None and not child.announced:
            # Any frame secured with the network key proves the device holds it,
            # even when its broadcast Device_annce was lost; a Device_annce also says,
            # authenticated, whether it sleeps (the association request did not).
            self._announced(device, nwk.src, None if announce is None else announce.capability)
        if isinstance(aps, ApsAck):
            self._aps_acked(nwk.src, aps)
            return
        if isinstance(aps, ApsData):
            if announce is not None:
                return
            whole = self._aps_payload(nwk.src, aps)
            if whole is None:
                return
            if app is None:
                app = self._decode_whole(aps, whole)
                if app is None:
                    return
            if aps.cluster_id == TIME_CLUSTER:
                self._heard_time_read(device, app.zcl)
                return
            self._application(device, app)

    def _heard_time_read(self, device: bytes, zcl: ZclFrame | None) -> None:
        """A child's read of the hub's time: answered for an announced child only."""
        child = self.children.get(device)
        if child is not None and child.announced:
            self._answer_time(child, zcl)

    # The ESME tunnel client's hooks (tunnel_server.EsmeTunnelClient).
    def _tunnel_child(self, device: bytes) -> Child | None:
        return self.children.get(device)

    def _send_request_tunnel(self, child: Child) -> int | None:
        settings = self.settings
        if settings is None:
            return None
        sequence = self.counters.zcl
        self._send_application(settings, child.short_address, self._tunnel_zcl(RequestTunnel()))
        return sequence

    def _unmatched_answer(self, text: str) -> None:
        self._drop(text)

    def _tunnel_hub(self) -> tunnel_server.TunnelHub | None:
        return self.trust_centre

    def _send_tunnel_refusal(self, child: Child, refusal: TransferDataError, sequence: int) -> None:
        self._send_to_child(child, self._tunnel_zcl(refusal, from_hub(False), sequence))

    def _send_time(self, child: Child, zcl: bytes, sequence: int) -> None:
        self._send_to_child(child, zcl, TIME_CLUSTER)

    def _send_to_child(self, child: Child, zcl: bytes, cluster: int = TUNNELING_CLUSTER) -> None:
        settings = self.settings
        if settings is not None:
            self._send_application(settings, child.short_address, zcl, cluster)

    def _announced(self, device: bytes, short: int, capability: Capability | None = None) -> None:
        child = self.children.get(device)
        tc = self.trust_centre
        if child is None or tc is None:
            return
        if not child.announced:
            if capability is not None:
                child.sleepy = not capability.rx_on_when_idle
            else:
                # No Device_annce (lost: it is never repeated): what the device log says of
                # its type, not the association request, which anyone can send.
                logged = tc.logged_sleepy(device)
                if logged is not None:
                    child.sleepy = logged
            child.announced = True
            self._departed.pop(device, None)
            tc.device_joined(device, sleepy=child.sleepy)
            if self.trace is not None:  # not formatted for nobody: every join
                self._log(f"{device.hex().upper()} joined as {short:#06x}")
            if self.runs_tunnels and not child.sleepy:
                # GBCS 10.2.2.1: the CHF opens it after key establishment (not modelled).
                after = self.clock.now + tunnel_server.TUNNEL_AFTER_ANNOUNCE
                self._ask_at(child, None, after)

    def _taken(self, device: bytes) -> set[int]:
        """Short addresses held by other devices, joined or with a rejoin pending."""
        taken = {c.short_address for c in self.children.values() if c.ieee != device}
        taken.update(c.short_address for d, (c, _) in self._rejoining.items() if d != device)
        taken.update(c.short_address for c, _ in self._associating.values() if c.ieee != device)
        return taken

    def _rejoin(self, device: bytes, old_short: int, request: RejoinRequest) -> None:
        """Answer a trust-centre rejoin (ZigBee 3.6.1.4.2).

        The request is unsecured, so anyone can send one naming a joined device: a
        child's record (address, tunnel) stays as it is until the device proves it got
        the network key (:meth:`_rejoin_proved`); a rejoin never completed changes nothing.
        """
        settings, tc = self.settings, self.trust_centre
        assert settings is not None and tc is not None
        key = tc.rejoin_key(device)
        sleepy = not request.capability.rx_on_when_idle
        if sleepy and self._held_rejoin_answer(device, key, old_short):
            return
        now = self.clock.now
        for other, (_, until) in list(self._rejoining.items()):
            if until < now:
                del self._rejoining[other]
        taken = self._taken(device)
        short = (
            old_short
            # A device's address: not the coordinator's nor a broadcast one (ZigBee 3.6.5).
            if old_short not in taken and COORDINATOR < old_short <= 0xFFF7
            else (short_address_for(device, taken))
        )
        status = 0 if key is not None else AssociationStatus.PAN_ACCESS_DENIED
        psdu = air.rejoin_response(
            mac_sequence=self.counters.next("mac"),
            nwk_sequence=self.counters.next("nwk"),
            pan_id=settings.pan_id,
            src=COORDINATOR,
            src_ieee=self.ieee,
            dst=old_short,
            dst_ieee=device,
            network_address=short,
            status=status,
        )
        if sleepy:
            # A sleepy device asks for it with a MAC Data Request from the address its
            # request came from (indirect transmission), ahead of what is held there;
            # its key follows once it acknowledges it.
            self._hold(psdu, old_short, now + TRANSACTION_PERSISTENCE, first=True)
            self._rejoin_answers[psdu] = (device, key, old_short, short)
        else:
            _Node._send_acked(self, psdu, settings.pan_id, old_short)
        if key is None:
            self._log(f"trust-centre rejoin from {device.hex().upper()} denied: not in device log")
            return
        if device in self.children:
            self._rejoining[device] = (Child(device, short, sleepy), now + REJOIN_TIMEOUT)
        else:  # no record to lose
            self._rejoining.pop(device, None)
            self.children[device] = Child(device, short, sleepy)
        if not sleepy:
            self.clock.call_later(0.01, self._send_rejoin_key, device, key)

    def _rejoin_polled(self, short: int) -> None:
        """A poll from the new address a held Rejoin Response gives: the device has that
        response (only its acknowledgement was lost), so the copy held again at its old
        address goes, and its key follows."""
        for psdu, (device, key, old_short, new_short) in list(self._rejoin_answers.items()):
            if new_short == short and old_short != short:
                self._drop_rejoin_answer(psdu)
                self._rejoin_answered(device, key)

    def _held_rejoin_answer(self, device: bytes, key: bytes | None, old_short: int) -> bool:
        """Whether a sleepy device's rejoin request is answered by a Rejoin Response the
        hub holds already (a copy of the request, or the device asking again: same device,
        same address), or gets none: the hub holds at most MAX_HELD_ASSOCIATIONS
        (TRANSACTION_OVERFLOW; anyone can send an unsecured rejoin request). A response
        held there that the log no longer bears out (a refusal for a device now in it, an
        acceptance for one removed) is given up for a new answer."""
        for psdu, (held_for, held_key, held_at, _) in list(self._rejoin_answers.items()):
            if held_for == device and held_at == old_short:
                if (held_key is None) == (key is None):
                    return True
                self._drop_rejoin_answer(psdu)
        if len(self._rejoin_answers) >= MAX_HELD_ASSOCIATIONS:
            self._log(
                f"rejoin from {device.hex().upper()} not answered: {MAX_HELD_ASSOCIATIONS} "
                "responses already held (TRANSACTION_OVERFLOW)"
            )
            return True
        return False

    def _drop_rejoin_answer(self, psdu: bytes) -> None:
        """Give up a held Rejoin Response (replaced, fetched by another way, or a state
        loaded); one on the air now is not held again if unacknowledged."""
        old_short = self._rejoin_answers.pop(psdu)[2]  # where it is held, and held again
        self._handed.pop(psdu, None)
        for entry in self._indirect.get(old_short, ()):
            if entry[0] == psdu:
                entry[1].cancel()
                self._unhold(old_short, entry)
                return

    def _rejoin_proved(self, device: bytes, decoded: air.Decoded) -> None:
        """Complete a pending rejoin once ``device`` shows it holds the network key.

        Proof is a NWK-secured frame from the device at the address the rejoin gave it
        that is its Device_annce (sent on rejoining, ZigBee 2.4.3.1.11) or what it sends
        at once after (in case the broadcast was lost: a GSME's request for a new tunnel,
        an ESME's read of the hub's time), or that comes from a new address. Its other
        traffic does not count: a device that never asked for the rejoin goes on sending
        it from its old address, with its old tunnel (at worst its hourly time read
        falls in the window, and the hub opens the ESME a new tunnel).
        """
        pending, until = self._rejoining[device]
        if self.clock.now > until:
            del self._rejoining[device]
            return
        nwk, app = decoded.nwk, decoded.app
        if nwk is None or nwk.src != pending.short_address:
            return
        old = self.children.get(device)
        announce = app.zdo if app is not None and app.zdo is not None else None
        if announce is not None and announce.ieee != device:
            announce = None
        first = app is not None and (
            isinstance(app.tunnel, RequestTunnel)
            or (isinstance(decoded.aps, ApsData) and decoded.aps.cluster_id == TIME_CLUSTER)
        )
        moved = old is None or old.short_address != pending.short_address
        if announce is None and not first and not moved:
            return
        del self._rejoining[device]
        if announce is not None:  # what the device says of itself, not the unsecured request
            pending.sleepy = not announce.capability.rx_on_when_idle
        elif old is not None:
            pending.sleepy = old.sleepy
        self.children[device] = pending

    # Tunnel ------------------------------------------------------------------------------
    def _application(self, device: bytes, app: air.Application) -> None:
        child = self.children.get(device)
        tc, settings = self.trust_centre, self.settings
        if child is None or tc is None or settings is None or app.tunnel is None:
            return
        if not child.announced:
            return
        if isinstance(app.tunnel, TransferDataError):
            self._transfer_refused(child, app.tunnel, app.zcl)
            return
        if not child.sleepy:
            self._esme_tunnel(child, app)
            return
        if self._held_out and isinstance(app.tunnel, RequestTunnel):
            handed = self._held_out.get(device)
            if handed is not None and not handed[1].finished:
                # Restarted, it asks for a new tunnel: a GET-RESPONSE still held or under
                # way on the old one would reach it on a tunnel it no longer knows.
                self._fail(handed[1], "the GSME asked for a new tunnel")
        if self._held_out and isinstance(app.gbcs, GbcsGet):
            if self._handing_out(device):
                # A keep-alive poll while the last GET-RESPONSE is still going out: that
                # one answers it. Handing out the next would lose track of this one.
                self._log(f"GET from {device.hex().upper()} during its GET-RESPONSE: ignored")
                return
            self._held_out.pop(device, None)  # it polls again: what it was handed arrived
        reply = tunnel_server.serve(device, child.tunnel_id, app.tunnel, app.gbcs, tc, self._ids)
        child.tunnel_id = reply.tunnel_id
        if reply.command is not None:
            asked = app.zcl.sequence if reply.answers and app.zcl is not None else None
            sequence = self.counters.zcl if asked is None else asked
            zcl = self._tunnel_zcl(reply.command, reply.direction, asked)
            transfer = self._send_application(settings, child.short_address, zcl)
            if reply.held is not None:
                if self._recent_hand_overs is None:
                    self._recent_hand_overs = tunnel_server.RecentPuts()
                self._recent_hand_overs.sent(device, sequence, reply.held)
                if not transfer.finished:
                    self._held_out[device] = (reply.held, transfer)

    def _handing_out(self, device: bytes) -> bool:
        """Whether a block of the GET-RESPONSE handed to ``device`` has not been sent yet:
        then a new GET (a keep-alive poll) cannot mean that it arrived. Once every block
        has been on the air a GET can (only the last acknowledgements are awaited)."""
        entry = self._held_out.get(device)
        return entry is not None and self.unsent(entry[1])

    def _handed_to(self, transfer: Transfer) -> bytes | None:
        """The device whose GET-RESPONSE ``transfer`` carries, if it carries one."""
        for device, (_, handed) in self._held_out.items():
            if handed is transfer:
                return device
        return None

    def transfer_done(self, transfer: Transfer) -> None:
        """A PUT to an always-listening child failed: the CHF reports it instead of leaving
        the head end to its timeout. A GET-RESPONSE delivered is the GSME's message (a save
        does not hold it again); one that failed (the GSME slept, moved or lost power) goes
        back to the CHF, first in line, instead of vanishing."""
        pushed = self._pushing.pop(transfer, None) if self._pushing else None
        if pushed is not None:
            if transfer.outcome is not None:
                self._push_failed(pushed, transfer.unsent)
            return
        device = self._handed_to(transfer) if self._held_out else None
        if device is None:
            return
        data, _ = self._held_out.pop(device)
        if transfer.outcome is not None and self.trust_centre is not None:
            self._log(f"held message for {device.hex().upper()} not delivered")
            if self._recent_hand_overs is not None:
                self._recent_hand_overs.forget(device, data)  # a late refusal is no second
            self.trust_centre.undelivered(device, data)

    def _put(self, child: Child, data: bytes) -> None:
        """PUT on the child's tunnel: to a GSME as its server, to an ESME as its client."""
        settings = self.settings
        assert settings is not None and child.tunnel_id is not None
        sequence = self.counters.zcl
        direction = from_hub(child.sleepy)
        zcl = self._tunnel_zcl(tunnel_server.put(child.tunnel_id, GbcsPut(data)), direction)
        transfer = self._send_application(settings, child.short_address, zcl)
        if not child.sleepy:
            if not transfer.finished:
                self._pushing[transfer] = (child.ieee, data)
            if self._recent_puts is None:
                self._recent_puts = tunnel_server.RecentPuts()
            self._recent_puts.sent(child.ieee, sequence, data, transfer)

    def _transfer_refused(
        self, child: Child, refusal: TransferDataError, zcl: ZclFrame | None
    ) -> None:
        """The child did not take a PUT (its tunnel closed in a reboot): the CHF fails it,
        and the hub, an ESME's tunnel client, opens it a new tunnel for the next one."""
        device = child.ieee.hex().upper()
        if child.sleepy:
            self._hand_over_refused(child, zcl)
            return
        recent, tc = self._recent_puts, self.trust_centre
        refused = tunnel_server.report_refusal(recent, child.ieee, refusal, zcl, tc)
        if refused is not None:
            self._log(f"{device} refused a PUT on tunnel {refusal.tunnel_id}")
            transfer = refused[1]
            if isinstance(transfer, Transfer):
                # The refusal is its outcome: a failure of its transfer is not another.
                self._pushing.pop(transfer, None)
                self._fail(transfer, f"{device} refused it")
            if not child.sleepy:
                child.tunnel_ask = None  # re-open at once, whatever was awaited
                self._open_tunnel(child)
        else:
            self._drop(f"TransferDataError from {device} names no PUT of ours")

    def _hand_over_refused(self, child: Child, zcl: ZclFrame | None) -> None:
        """A GSME refused a GET-RESPONSE (it restarted while it was held for its poll): the
        message is the CHF's again, held for its next GET, and counted out only once."""
        device = child.ieee
        handed = self._held_out.get(device)
        data = tunnel_server.report_hand_over_refusal(
            self._recent_hand_overs, device, zcl, self.trust_centre
        )
        if data is None:
            self._drop(f"TransferDataError from {device.hex().upper()} names no hand-over")
            return
        self._log(f"{device.hex().upper()} refused a GET-RESPONSE: its message is held again")
        if handed is not None and handed[0] == data:
            del self._held_out[device]
            self._fail(handed[1], "refused by the GSME")

    def _push_failed(self, pushed: tuple[bytes, bytes], unsent: str | None = None) -> None:
        """A PUT was not delivered (its later blocks are not sent); ``unsent`` says why a
        block of it never went on the air, if one did not (the device cannot have it)."""
        device, data = pushed
        if unsent is not None:
            self._log(f"message to {device.hex().upper()} not sent: {unsent}")
            if self.trust_centre is not None:
                self.trust_centre.push_failed(device, data, unsent=unsent)
            return
        self._log(f"message to {device.hex().upper()} not delivered (no acknowledgement)")
        child = self.children.get(device)
        if child is not None:
            self._tunnel_in_doubt(child)
        if self.trust_centre is not None:
            self.trust_centre.push_failed(device, data)

    # HanPort ------------------------------------------------------------------------------
    def child_sleepy(self, device: bytes) -> bool | None:
        """Whether a joined child is a sleepy end device (None: not a child)."""
        child = self.children.get(device)
        return None if child is None else child.sleepy

    def has_child(self, device: bytes) -> bool:
        """Whether ``device`` has joined (and proved it holds the network key)."""
        child = self.children.get(device)
        return child is not None and child.announced

    def reachable(self, peer: bytes) -> bool:
        """Whether ``peer`` has joined this network and opened its GBCS tunnel."""
        child = self.children.get(peer)
        return child is not None and child.tunnel_id is not None

    def tunnel_of(self, device: bytes) -> int | None:
        """The tunnel id the hub holds for ``device`` (None: none, or not a child)."""
        child = self.children.get(device)
        return None if child is None else child.tunnel_id

    def send_gbcs(self, peer: bytes, data: bytes) -> None:
        child = self.children.get(peer)
        if child is None or child.tunnel_id is None:
            raise GbcsError(f"{peer.hex().upper()} has no GBCS tunnel to this hub")
        self._put(child, data)

    def forget_network(self) -> None:
        raise GbcsError("a Communications Hub does not leave its own network")

    def state(self) -> dict[str, Any]:
        return {
            "ieee": self.ieee.hex().upper(),
            "settings": None if self.settings is None else self.settings.to_json(),
            "counters": asdict(self.counters),
            "children": [
                {
                    "ieee": c.ieee.hex().upper(),
                    "short_address": c.short_address,
                    "sleepy": c.sleepy,
                    "tunnel_id": c.tunnel_id,
                    "announced": c.announced,
                    "tunnel_ask": None if c.tunnel_ask is None else c.tunnel_ask.to_json(),
                }
                for c in self.children.values()
            ],
            "next_tunnel": self._ids.next_id,
            "nwk_frame_counters": self._secured_counters(),
            # Rejoins awaiting their proof: the device may have its key already, and the
            # record moves to its new address only with the proof.
            "rejoining": [
                {
                    "ieee": device.hex().upper(),
                    "short_address": pending.short_address,
                    "sleepy": pending.sleepy,
                    "until": until,
                }
                for device, (pending, until) in self._rejoining.items()
            ],
        }

    def handed_out(self) -> dict[bytes, bytes]:
        """Held messages handed to a GSME whose GET-RESPONSE is not acknowledged yet."""
        return {device: data for device, (data, _) in self._held_out.items()}

    def take_hand_over(self, device: bytes) -> bytes | None:
        """The message handed to ``device`` and not yet acknowledged, no longer tracked:
        the CHF fails it (CCS02), so a later delivery failure must not hold it again."""
        entry = self._held_out.pop(device, None)
        if entry is None:
            return None
        if self._recent_hand_overs is not None:
            self._recent_hand_overs.forget(device, entry[0])
        return entry[0]

    def load_state(self, obj: dict[str, Any]) -> None:
        """Restore :meth:`state`; every key is required (settings may be null: not formed)
        but ``rejoining``, absent from states saved before it was kept."""
        saved = SavedState(obj)
        if saved.octets("ieee", 8) != self.ieee:
            raise GbcsError(f"ieee is not this node's ({self.ieee.hex().upper()})")
        raw = saved.optional_member("settings")
        settings = None if raw is None else NetworkSettings.from_json(raw.obj, raw.where)
        if settings is not None and (
            settings.short_address != COORDINATOR or settings.trust_centre != self.ieee
        ):
            raise GbcsError(
                "settings: a hub is its network's coordinator (0x0000) and trust centre"
            )
        counters = _Counters.from_json(saved.member("counters"))
        children: dict[bytes, Child] = {}
        taken = SavedChildren()
        for c in saved.members("children"):
            ieee, short, tunnel = taken.claim(c)
            children[ieee] = Child(
                ieee,
                short,
                c.flag("sleepy"),
                tunnel,
                c.flag("announced"),
                tunnel_server.saved_ask(c),
            )
        ids = tunnel_server.TunnelIds(saved.integer("next_tunnel", 1, 0xFFFF))
        seen = _saved_secured_counters(saved)
        rejoining = _saved_rejoins(saved, children)
        self.settings = settings
        if settings is not None:
            self.channel, self.pan_id = settings.channel, settings.pan_id
            self.short_address = COORDINATOR
        self.counters = counters
        self.children = children
        self._rejoining = rejoining
        for psdu in list(self._rejoin_answers):
            self._drop_rejoin_answer(psdu)
        for device in list(self._responses):
            self._drop_association(device)
        self._associating = {}
        self._ids = ids
        for child in children.values():
            self._rebook(child)
        self._nwk_seen = seen
        # Sources that are not children any more, in the order saved (oldest first).
        self._departed = {k: None for k in seen if isinstance(k, bytes) and k not in children}


class MeterNode(_Node):
    """A meter's stack: auto-join with its install code, tunnel, keep-alive, rejoin."""

    power_cyclable = True

    def __init__(
        self,
        clock: VirtualClock,
        ieee: bytes,
        *,
        install_code: bytes,
        sleepy: bool,
        channels: tuple[int, ...] = ALL_CHANNELS,
        name: str = "",
    ) -> None:
        super().__init__(clock, ieee, name=name)
        self.install_code = install_code
        self.link_key = link_key_from_install_code(install_code)
        self.sleepy = sleepy
        self.channels = checked_channels(channels)
        self.settings: NetworkSettings | None = None
        self.state = NodeState.OFF
        self.tunnel_id: int | None = None
        self.on_gbcs: Callable[[bytes, bytes], None] | None = None
        self.on_state: Callable[[NodeState], None] | None = None
        self._tunnel_asked = False  # a GSME's RequestTunnel awaits its response
        # A GSME's RequestTunnels in a row still unanswered at its next wake: the hub
        # acknowledges them but answers where the GSME is not (see _keepalive).
        self._tunnel_unanswered = 0
        # An ESME's tunnel ids (it is the tunnel's server, GBCS 10.2.2.1): a new one per
        # RequestTunnel, the next kept across power cycles (a stale PUT names an old one).
        self._tunnel_ids = tunnel_server.TunnelIds()
        self.hub_time: int | None = None  # an ESME's last reading of the hub's UTCTime
        # Told the trust centre of a network the meter has just forgotten (a CS02f or a
        # Leave request from its parent): the meter's event log records leaving the HAN.
        self.on_left: Callable[[bytes], None] | None = None
        self._timer: Timer | None = None
        self._beacons: list[tuple[int, int, bytes, bool]] = []  # channel, pan, epid, permit
        self._target: tuple[int, int, bytes] | None = None
        # The extended address of the coordinator that answered our association or
        # rejoin request: the only trust centre whose Transport Key we take.
        self._answered_by: bytes | None = None
        # The networks of the last scan not tried yet, in scan order: channel, pan, epid.
        self._candidates: list[tuple[int, int, bytes]] = []
        self._pending_short: int | None = None
        # This join attempt's Association Request, and its Data Request for the response.
        self._association_request: bytes | None = None
        self._rejoin_request: bytes | None = None  # a sleepy one polls for its answer
        self._association_poll: bytes | None = None
        self._join_attempts = 0  # (re)join attempts with the current network since the scan
        self._awake_until = 0.0
        self._last_poll: bytes | None = None  # its last MAC Data Request
        self._polled_at = float("-inf")
        self._reply_due = 0.0  # until when a GSME polls fast for its request's answer
        # Its frames to the hub unacknowledged in a row (PARENT_FAILURE_LIMIT: lost).
        self._parent_failures = 0
        self.joins = 0
        self.rejoins = 0
        self.listening = False
        self.powered = False
        self.dead = False
        self.back_on_at: float | None = None  # when a power cycle gives the power back
        # What a loaded state had under way: its open tunnel and when it polls next.
        self._loaded_tunnel: int | None = None
        self._loaded_next: NextStep | None = None

    def wants(self, frame_type: int, psdu: bytes) -> bool:
        if frame_type == _BEACON_FRAME:
            return self.state in _SCAN_STATES
        if frame_type == _COMMAND_FRAME:
            # The only broadcast MAC command is the beacon request: for coordinators.
            return psdu[5:7] != b"\xff\xff"
        return True

    @property
    def capability(self) -> Capability:
        return Capability.sleepy_end_device() if self.sleepy else Capability.router()

    @property
    def joined(self) -> bool:
        return self.state is _JOINED and self.tunnel_id is not None

    @property
    def has_network(self) -> bool:
        return self.settings is not None

    # Life cycle ----------------------------------------------------------------------------
    def power_on(self) -> None:
        self._power_on(None, None)

    def _power_on(self, tunnel_id: int | None, keepalive_at: float | None) -> None:
        if self.dead:
            return  # a dead radio stays silent whatever is done to it
        self.powered = True
        self.listening = True
        self.back_on_at = None
        if self.settings is None:
            self._set_state(NodeState.SCANNING)
            self._schedule(0.1, self._scan)
        else:
            self._resume(tunnel_id, keepalive_at)

    def restart(self, powered: bool) -> None:
        """After a load, carry on as saved: the emulator restarted, the meter did not.

        Powered, it keeps the tunnel it had open (the hub kept its end: a command sent
        at once is not lost while a new one opens); unpowered by a power cycle, the
        power still comes back when it was due.
        """
        tunnel, self._loaded_tunnel = self._loaded_tunnel, None
        resume, self._loaded_next = self._loaded_next, None
        self._restart(powered, tunnel, resume)
        if self.state is not _JOINED:
            self._parent_failures = 0  # a dead radio saved as powered stays off
        elif self.sleepy and self._parent_failures:
            self._poll_parent()  # it was making sure of its hub: the poll in flight was lost

    def _restart(self, powered: bool, tunnel: int | None, resume: NextStep | None) -> None:
        if not powered:
            if self.back_on_at is not None:
                self._power_back_at(self.back_on_at)
            return
        if resume is not None and resume.step != NEXT_KEEPALIVE and not self.dead:
            # Looking for a network, or for its own after losing its parent: it goes on
            # when it would have, a scan part-way through from its next channel.
            self.powered = self.listening = True
            self.back_on_at = None
            delay = max(0.0, resume.at - self.clock.now)
            rejoin = resume.step == NEXT_REJOIN
            scanned = resume.scanned
            if scanned is not None:
                self._beacons = list(scanned.heard)
                self._candidates = []
                self.channel = self.channels[scanned.index - 1]
                self._set_state(NodeState.REJOINING if rejoin else NodeState.SCANNING)
                self._schedule(delay, self._scan, scanned.index, rejoin)
            elif rejoin:
                self.tunnel_id = tunnel  # kept until the rejoin starts, as it was
                self._set_state(NodeState.ORPHANED)
                self._schedule(delay, self._start_rejoin)
            else:
                self._set_state(NodeState.SCANNING)
                self._schedule(delay, self._scan)
            return
        self._power_on(tunnel, None if resume is None else resume.at)

    def power_off(self) -> None:
        self.back_on_at = None  # switched off for good, not a power cycle any more
        self.powered = False
        self.listening = False
        self._cancel()
        self._drop_transfers("the meter lost power")  # RAM: half reassembled ones too
        self._tx_reset()
        self.tunnel_id = None
        self._set_state(NodeState.OFF)

    def power_cycle(self, off_time: float = 2.0) -> None:
        """Lose power: RAM state goes, network settings and counters stay (NV)."""
        if not self.powered:
            return
        self.power_off()
        self._power_back_at(self.clock.now + off_time)

    def _power_back_at(self, at: float) -> None:
        self.back_on_at = at
        self.clock.call_at(max(at, self.clock.now), self._back_on, at)

    def _back_on(self, at: float) -> None:
        if self.back_on_at == at and not self.powered:  # not switched off for good since
            self.power_on()

    def _resume(self, tunnel_id: int | None = None, keepalive_at: float | None = None) -> None:
        """Back on the saved network: a fresh tunnel after a power cut; after a load the
        tunnel kept, polling when it would have, asleep or awake as it was (a sleepy
        GSME's schedule does not move to the load time)."""
        settings = self.settings
        assert settings is not None
        self.channel, self.pan_id = settings.channel, settings.pan_id
        self.short_address = settings.short_address
        self._set_state(NodeState.JOINED)
        if tunnel_id is None:
            self._greet_parent()
            self._schedule_keepalive()
            return
        self.tunnel_id = tunnel_id
        if keepalive_at is None:
            self._schedule_keepalive()
        else:
            self._schedule(max(0.0, keepalive_at - self.clock.now), self._keepalive)
        if self.sleepy and self.clock.now >= self._awake_until:
            self._maybe_sleep()
        elif self.sleepy:
            self.clock.call_at(self._awake_until, self._maybe_sleep)

    def _set_state(self, state: NodeState) -> None:
        if state is not self.state:
            self.state = state
            if state is not _JOINED:
                self._parent_failures = self._tunnel_unanswered = 0  # counted while joined
            if self.trace is not None:  # not formatted for nobody: every state change
                self._log(f"state {state.value}")
            if self.on_state is not None:
                self.on_state(state)

    def _next_step(self) -> NextStep | None:
        """What the meter does next on its own and when, for the saved state: its next
        keep-alive (a sleepy GSME's poll), scan, or trust-centre rejoin. A scan part-way
        through goes on from its next channel with what it has heard; a join or rejoin
        under way (frames in flight) is saved as that cycle starting again then."""
        timer = self._timer
        if timer is None or timer[4]:
            return None
        callback, due = timer[2], float(timer[0])
        if callback == self._keepalive:
            return NextStep(NEXT_KEEPALIVE, due)
        rejoining = self.state is NodeState.ORPHANED or self.state is _REJOINING
        scanned = None
        if callback == self._scan and timer[3] and timer[3][0] > 0:
            scanned = ScanProgress(timer[3][0], tuple(self._beacons))
        if callback in (self._try_rejoin, self._rejoin_failed, self._start_rejoin) or (
            callback == self._scan and rejoining
        ):
            return NextStep(NEXT_REJOIN, due, scanned)
        if callback in (self._scan, self._try_join, self._join_failed, self._join_timed_out):
            return NextStep(NEXT_SCAN, due, scanned)
        return None

    def _schedule(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        timer = self._timer
        if timer is not None:
            timer.cancel()
        self._timer = self.clock.call_later(delay, callback, *args)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def keys(self) -> Keys:
        settings = self.settings
        stamp = (
            None if settings is None else (settings.key_sequence, settings.network_key),
            self.link_key,
        )
        if self._keys is None or self._keys[0] != stamp:
            network = {} if stamp[0] is None else {stamp[0][0]: stamp[0][1]}
            self._keys = (stamp, Keys(network=network, link={b"\x00" * 8: self.link_key}))
        return self._keys[1]

    # Scanning, association and the network key -------------------------------------------
    def _scan(self, index: int = 0, rejoin: bool = False) -> None:
        if index == 0:
            self._beacons = []
            self._candidates = []
        if index >= len(self.channels):
            self._scan_done(rejoin)
            return
        self.channel = self.channels[index]
        counters = self.counters
        sequence = counters.mac  # counters.next("mac"), inlined: 16 channels a scan
        counters.mac = (sequence + 1) & 0xFF
        psdu = air.beacon_request(mac_sequence=sequence)
        if self._tx_current is None and not self._tx_queue:
            # The MLME's active channel scan sends its beacon requests itself, not through
            # the data queue (802.15.4 active scan): no send-complete event per channel.
            self._put_on_air(psdu, None, None)
        else:
            self._transmit(psdu, None, None)
        timer = self._timer  # _schedule, inlined
        if timer is not None:
            timer.cancel()
        self._timer = self.clock.call_later(SCAN_DWELL, self._scan, index + 1, rejoin)

    def mac_frame(self, mac: MacFrame) -> None:
        if isinstance(mac.payload, Beacon) and mac.src_pan is not None:
            beacon = mac.payload
            self._beacons.append(
                (
                    self.channel,
                    mac.src_pan,
                    beacon.payload.extended_pan_id,
                    beacon.association_permit,
                )
            )
        elif (
            isinstance(mac.payload, AssociationResponse)
            and self.state is _JOINING
            and mac.dst_pan == self.pan_id  # not a late one from a network tried before
        ):
            if mac.dst != self.ieee or not isinstance(mac.src, bytes):
                return  # another device's answer (802.15.4 7.3.2: to our extended address)
            if self._pending_short is not None:
                return  # a copy of the response we have (acknowledged all the same)
            if mac.payload.status != AssociationStatus.SUCCESS:
                self._log(f"association refused (status {int(mac.payload.status)})")
                self._join_failed(refused=True)
                return
            self._pending_short = mac.payload.short_address
            self.short_address = mac.payload.short_address
            self._answered_by = mac.src
            self._schedule(RESPONSE_WAIT * 4, self._join_timed_out)
            if self.sleepy:
                self.clock.call_later(FAST_POLL, self._poll_for_key, self._association_request)

    def _aim_at(self, target: tuple[int, int, bytes], state: NodeState) -> int:
        """Tune to the network a beacon announced and enter ``state``; its PAN ID."""
        channel, pan, _ = self._target = target
        self.channel, self.pan_id = channel, pan
        self._answered_by = None
        self._pending_short = None  # no answer yet (none kept from before a power cut)
        self._set_state(state)
        return pan

    def _scan_done(self, rejoin: bool) -> None:
        # Each network once, in the order the scan heard them (a beacon can come twice).
        if rejoin:
            settings = self.settings
            assert settings is not None
            epid = settings.extended_pan_id
            found = dict.fromkeys(b[:3] for b in self._beacons if b[2] == epid)
            if not found:
                self._set_state(NodeState.ORPHANED)
                self._schedule(REJOIN_RETRY, self._start_rejoin)
                return
            self._candidates = list(found)
            self._join_attempts = 0
            self._try_rejoin()
            return
        found = dict.fromkeys(b[:3] for b in self._beacons if b[3])
        if not found:
            self._schedule(JOIN_RETRY, self._scan)
            return
        self._candidates = list(found)
        self._join_attempts = 0
        self._try_join()

    def _try_join(self) -> None:
        """Associate with the next candidate network; the network key must follow."""
        target = self._candidates.pop(0)
        self._join_attempts = self._join_attempts + 1 if target == self._target else 1
        pan = self._aim_at(target, NodeState.JOINING)
        psdu = air.association_request(
            mac_sequence=self.counters.next("mac"),
            pan_id=pan,
            coordinator=COORDINATOR,
            device_ieee=self.ieee,
            capability=self.capability,
        )
        self._association_request = psdu
        self._association_poll = None
        self._send_acked(psdu, pan, COORDINATOR)
        self._schedule(RESPONSE_WAIT * 4, self._join_timed_out)

    def _fetch_association(self, request: bytes) -> None:
        """Ask for the Association Response the coordinator holds (802.15.4-2006 7.5.3.1):
        a Data Request from our extended address, macResponseWaitTime after the request's
        acknowledgement."""
        if (
            self.state is not _JOINING
            or self._association_request is not request
            or self._pending_short is not None
            or self.pan_id is None
        ):
            return
        self._association_poll = self._send_data_request(self.pan_id, self.ieee)

    def _association_polled(self, poll: bytes) -> None:
        """The coordinator acknowledged our Data Request: with the frame pending bit its
        response follows; without, it holds none for us (NO_DATA)."""
        if self._pending_short is not None:
            return
        if self._ack_pending:
            self.clock.call_later(FRAME_WAIT, self._no_association, poll, True)
        else:
            self._no_association(poll)

    def _no_association(self, poll: bytes, pending: bool = False) -> None:
        if (
            self.state is _JOINING
            and self._association_poll is poll
            and self._pending_short is None
        ):
            # NO_DATA either way (802.15.4-2006 7.1.3.1.2); the trace tells the two apart.
            lost = "; the hub said one was pending" if pending else ""
            self._log(f"association failed: no Association Response (NO_DATA{lost})")
            self._join_failed()

    def _poll_for_key(self, request: bytes) -> None:
        """A joining or rejoining GSME's hub holds its Transport Key for its poll, as it
        holds all a sleepy child's frames: it polls every FAST_POLL from the address it
        was given until the key comes or the (re)join gives up."""
        state = self.state
        if (
            not (
                (state is _JOINING and request is self._association_request)
                or (state is _REJOINING and request is self._rejoin_request)
            )
            or self._pending_short is None
            or self.pan_id is None
        ):
            return
        if not self._polling():
            self._last_poll = self._send_data_request(self.pan_id, self._pending_short)
        self.clock.call_later(FAST_POLL, self._poll_for_key, request)

    def _try_rejoin(self) -> None:
        """Trust-centre rejoin on the next candidate network with our extended PAN ID."""
        settings = self.settings
        assert settings is not None
        target = self._candidates.pop(0)
        self._join_attempts = self._join_attempts + 1 if target == self._target else 1
        pan = self._aim_at(target, NodeState.REJOINING)
        psdu = air.rejoin_request(
            mac_sequence=self.counters.next("mac"),
            nwk_sequence=self.counters.next("nwk"),
            pan_id=pan,
            src=settings.short_address,
            dst=COORDINATOR,
            device_ieee=self.ieee,
            capability=self.capability,
        )
        self.short_address = settings.short_address
        self._send_acked(psdu, pan, COORDINATOR)
        self._schedule(RESPONSE_WAIT * 4, self._rejoin_failed)
        self._rejoin_request = psdu
        if self.sleepy:
            self.clock.call_later(FAST_POLL, self._poll_for_rejoin, psdu)

    def _poll_for_rejoin(self, request: bytes) -> None:
        """A sleepy GSME's Rejoin Response is held for its poll: it polls every FAST_POLL,
        from the address it asked with, until the response comes or the rejoin gives up."""
        settings = self.settings
        if (
            self.state is not _REJOINING
            or self._rejoin_request is not request
            or self._pending_short is not None
            or self.pan_id is None
            or settings is None
        ):
            return
        if not self._polling():
            self._last_poll = self._send_data_request(self.pan_id, settings.short_address)
        self.clock.call_later(FAST_POLL, self._poll_for_rejoin, request)

    def _join_timed_out(self) -> None:
        """No network key in time: the trace says which step of the join was missing, as
        an engineer reading it needs, then it goes on as for any failed attempt."""
        if self._pending_short is not None:
            what = "no Transport Key after its Association Response"
        elif self._association_poll is not None:
            what = "no Association Response to its Data Request"
        else:
            what = "its Association Request not acknowledged"
        self._log(f"association failed: {what}")
        self._join_failed()

    def _join_failed(self, refused: bool = False) -> None:
        """Refused, unanswered, or no network key we can read: this network again unless it
        refused (JOIN_ATTEMPTS in all), else the next network heard, else scan later."""
        again = not refused and self._join_attempts < JOIN_ATTEMPTS and self._target is not None
        more = again or bool(self._candidates)
        if again:
            what = "asking this network again"
        else:
            what = "trying the next network" if more else "scanning again later"
        self._log(f"join failed; {what}")
        self.short_address = None
        self.pan_id = None
        self._pending_short = None
        self._association_request = self._association_poll = None
        self._set_state(NodeState.SCANNING)
        if again:
            assert self._target is not None
            self._candidates.insert(0, self._target)
            self._schedule(JOIN_AGAIN, self._try_join)
        elif more:
            self._schedule(NEXT_CANDIDATE, self._try_join)
        else:
            self._schedule(JOIN_RETRY, self._scan)

    def _rejoin_failed(self, refused: bool = False) -> None:
        """Refused, or unanswered (a request, response or key lost on the air): as for a
        join, this network again unless it refused (JOIN_ATTEMPTS in all), else the next
        network heard with our extended PAN ID, else look again REJOIN_RETRY later."""
        again = not refused and self._join_attempts < JOIN_ATTEMPTS and self._target is not None
        if again:
            what = "; asking this network again"
        else:
            what = "; trying the next network" if self._candidates else ""
        if not refused:  # which step was missing, as for a join
            why = "Transport Key" if self._pending_short is not None else "Rejoin Response"
            what = f" (no {why}){what}"
        self._log("trust-centre rejoin failed" + what)
        self._pending_short = None
        self._set_state(NodeState.ORPHANED)
        if again:
            assert self._target is not None
            self._candidates.insert(0, self._target)
            self._schedule(JOIN_AGAIN, self._try_rejoin)
        elif self._candidates:
            self._schedule(NEXT_CANDIDATE, self._try_rejoin)
        else:
            self._schedule(REJOIN_RETRY, self._start_rejoin)

    def _start_rejoin(self) -> None:
        self.tunnel_id = None
        self._set_state(NodeState.REJOINING)
        self._scan(0, True)

    def nwk_frame(self, decoded: air.Decoded) -> None:
        nwk, aps = decoded.nwk, decoded.aps
        if nwk is None:
            return
        if isinstance(nwk.payload, RejoinResponse) and self.state is _REJOINING:
            if nwk.dst_ieee != self.ieee or nwk.src != COORDINATOR or nwk.src_ieee is None:
                return  # not our parent's answer to us (ZigBee 3.6.1.4.2)
            if self._pending_short is not None:
                # A copy of the response we have, or a late or stray refusal (one to an
                # earlier attempt, delayed): this attempt was accepted, its key is coming.
                return
            if nwk.payload.status != 0:
                self._log(f"rejoin refused (status {nwk.payload.status})")
                self._rejoin_failed(refused=True)
                return
            self._pending_short = nwk.payload.network_address
            self.short_address = nwk.payload.network_address
            self._answered_by = nwk.src_ieee
            # As after an Association Response: the key has its own while to come.
            self._schedule(RESPONSE_WAIT * 4, self._rejoin_failed)
            if self.sleepy and self._rejoin_request is not None:
                self.clock.call_later(FAST_POLL, self._poll_for_key, self._rejoin_request)
            return
        if isinstance(aps, ApsCommand):
            command = aps.command
            if (
                isinstance(command, TransportKey)
                and self.state in _KEY_STATES
                and self._pending_short is not None
                and self._target is not None
            ):
                why = self._untrusted_key(aps, command)
                if why is not None:
                    self._drop(f"Transport Key {why}")  # and wait on for the real one
                    return
                self._got_network_key(command)
            return
        if isinstance(nwk.payload, Leave):
            if not nwk.payload.request:
                return
            if nwk.security is None:
                # ZigBee PRO NWK-secures every NWK command but the rejoin exchange (4.3.1);
                # decoding verified a secured one's MIC with our current network key.
                self._drop("unsecured NWK Leave request")
                return
            settings = self.settings
            if (
                settings is None
                or nwk.src != COORDINATOR
                or nwk.security.source != settings.trust_centre
            ):
                # Every HAN device holds the network key: only our parent, the trust
                # centre, may tell us to leave (ZigBee R21 leave-request filtering).
                self._drop("NWK Leave request not from our parent")
                return
            self.forget_network()
            return
        if nwk.security is None or self.settings is None:
            return
        if self._parent_failures and self._from_parent(nwk.src, nwk.security.source):
            self._parent_failures = 0  # the hub is there: only our acknowledgements were lost
        if isinstance(aps, ApsAck):
            self._aps_acked(nwk.src, aps)
            return
        if not isinstance(aps, ApsData):
            return
        whole = self._aps_payload(nwk.src, aps)
        if whole is None:
            return
        app = decoded.app
        if app is None or aps.fragment is not None:
            app = self._decode_whole(aps, whole)
            if app is None:
                return
        if aps.cluster_id == TIME_CLUSTER:
            self._time_answered(app.zcl, nwk.src, nwk.security.source)
            return
        self._application(app, nwk.src, nwk.security.source)

    def _untrusted_key(self, aps: ApsCommand, command: TransportKey) -> str | None:
        """Why a Transport Key is not the trust centre's network key for us; None if it is.

        The trust centre secures it with the key-transport key of our install-code link
        key (ZigBee 4.4.1.1, 4.6.3.2.2); decoding verified the MIC with our only link key.
        """
        if aps.security is None or aps.security.key_id is not KeyId.KEY_TRANSPORT:
            return "not secured with our key-transport key"
        if command.dst_ieee != self.ieee:
            return f"addressed to {command.dst_ieee.hex().upper()}"
        if command.key_type is not KeyType.NETWORK or command.key_sequence is None:
            return "does not carry a network key"
        if command.src_ieee != self._answered_by:
            # A key from another trust centre (one replayed from a HAN joined before)
            # would leave us on this PAN with that network's key, heard by nobody.
            answered = "nobody" if self._answered_by is None else self._answered_by.hex().upper()
            return (
                f"from {command.src_ieee.hex().upper()}, not the coordinator that answered "
                f"our join ({answered})"
            )
        return None

    def _got_network_key(self, command: TransportKey) -> None:
        assert self._target is not None and self._pending_short is not None
        channel, pan, epid = self._target
        rejoin = self.state is NodeState.REJOINING
        self.settings = NetworkSettings(
            channel,
            pan,
            epid,
            command.key,
            command.key_sequence,
            self._pending_short,
            command.src_ieee,
        )
        self.short_address = self._pending_short
        if rejoin:
            self.rejoins += 1
        else:
            self.joins += 1
        self._forget_neighbours()
        if self.trace is not None:
            self._log(
                ("rejoined" if rejoin else "joined")
                + f" PAN {pan:#06x} as {self._pending_short:#06x}"
            )
        self._pending_short = None
        self._set_state(NodeState.JOINED)
        try:
            security = self._security(self.settings)
        except FrameCounterExhausted:
            pass  # traced; what it sends next fails the same way
        else:
            psdu = air.device_announce(
                mac_sequence=self.counters.next("mac"),
                nwk_sequence=self.counters.next("nwk"),
                aps_counter=self.counters.next("aps"),
                zdo_sequence=self.counters.next("zdo"),
                pan_id=pan,
                nwk_address=self.settings.short_address,
                ieee=self.ieee,
                capability=self.capability,
                security=security,
            )
            self._transmit(psdu, pan, 0xFFFF)
        self.clock.call_later(0.01, self._greet_parent)
        self._schedule_keepalive()

    # Tunnel ----------------------------------------------------------------------------
    def _greet_parent(self) -> None:
        """What a meter sends its parent first, after joining or powering up: a GSME asks
        for its tunnel; an ESME, whose tunnel the hub opens (GBCS 10.2.2.1), reads the
        hub's time. Either is a unicast: unacknowledged, the parent is gone."""
        if self.sleepy:
            self._request_tunnel()
        else:
            self._read_hub_time()

    def _request_tunnel(self) -> None:
        """A GSME opens its own tunnel, the hub its server (GBCS 10.2.2.1)."""
        if self.settings is None or self.tunnel_id is not None or not self.powered:
            return  # not powered: booked just before the power went (join, GET-RESPONSE)
        self._tunnel_asked = True
        self._send_application(self.settings, COORDINATOR, self._tunnel_zcl(RequestTunnel()))
        self._stay_awake()
        self._expect_reply()

    def _read_hub_time(self) -> None:
        """An ESME's keep-alive: Read Attributes of the hub's Time cluster (GBCS devices
        take their time from the CHF). The MAC acknowledgement is what it is for."""
        settings = self.settings
        if settings is None or not self.powered:
            return  # not powered: booked just before the power went (a join)
        zcl = encode_zcl(time_read(self.counters.next("zcl")))
        self._send_application(settings, COORDINATOR, zcl, TIME_CLUSTER)

    def _from_parent(self, source: int, secured_by: bytes | None) -> bool:
        """Whether a frame comes from our parent, the hub: its short address and, in the
        NWK security header, its EUI-64 (another device holding the network key does not
        speak for it, whatever short address it claims, as for a Leave request)."""
        settings = self.settings
        return (
            source == COORDINATOR and settings is not None and secured_by == settings.trust_centre
        )

    def _time_answered(self, zcl: ZclFrame | None, source: int, secured_by: bytes | None) -> None:
        utc = parse_time_response(zcl)
        if utc is not None and self._from_parent(source, secured_by):
            self.hub_time = utc

    def _application(self, app: air.Application, source: int, secured_by: bytes | None) -> None:
        tunnel = app.tunnel
        if tunnel is not None and not self._from_parent(source, secured_by):
            self._drop(f"tunnel command from {source:#06x}, not the hub")
            return
        if tunnel is not None and not self.sleepy:
            self._serve_tunnel(app)
            return
        if tunnel is not None and self.sleepy:
            self._replied()
        if isinstance(tunnel, RequestTunnelResponse):
            if not self._tunnel_asked:
                self._drop("RequestTunnelResponse to no request of ours")
                return
            self._tunnel_asked = False
            self._tunnel_unanswered = 0
            if tunnel.status == 0:
                self.tunnel_id = tunnel.tunnel_id
                if self.trace is not None:
                    self._log(f"tunnel {tunnel.tunnel_id} open")
                if self.on_state is not None:
                    self.on_state(self.state)
            return
        if isinstance(tunnel, TransferDataError):
            if (
                tunnel.tunnel_id == self.tunnel_id
                and tunnel.status == TransferDataStatus.NO_SUCH_TUNNEL
            ):
                self._log(f"the hub has no tunnel {tunnel.tunnel_id}: opening a new one")
                self.tunnel_id = None
                self._request_tunnel()
            return
        if not isinstance(tunnel, TransferData):
            return
        if self._refused_transfer(tunnel, app.zcl):
            return
        gbcs = app.gbcs
        message = None
        if isinstance(gbcs, GbcsPut):
            message = gbcs.message
        elif isinstance(gbcs, GbcsGetResponse):
            message = gbcs.message
            if gbcs.remaining:
                self.clock.call_later(0.01, self._poll)
        if message and self.on_gbcs is not None and self.settings is not None:
            self._stay_awake()
            self.on_gbcs(self.settings.trust_centre, message)

    def _serve_tunnel(self, app: air.Application) -> None:
        """An ESME is its tunnel's server (GBCS 10.2.2.1): the hub asks with RequestTunnel
        and PUTs client to server; the hub saying it holds no such tunnel closes ours."""
        tunnel, zcl = app.tunnel, app.zcl
        assert zcl is not None
        if not self.powered:
            return  # booked just before the power went
        if isinstance(tunnel, RequestTunnel):
            self._grant_tunnel(tunnel, zcl.sequence)
        elif isinstance(tunnel, TransferData) and zcl.direction is Direction.TO_SERVER:
            self._take_transfer(tunnel, app.gbcs, zcl)
        elif isinstance(tunnel, TransferDataError) and zcl.direction is Direction.TO_SERVER:
            # Only "no such tunnel" closes ours: "data overflow" refused one message.
            if (
                tunnel.tunnel_id == self.tunnel_id
                and tunnel.status == TransferDataStatus.NO_SUCH_TUNNEL
            ):
                self._log(f"the hub has no tunnel {tunnel.tunnel_id}: closed")
                self.tunnel_id = None
        else:
            self._drop(f"{type(tunnel).__name__} to the ESME, its tunnel's server")

    def _grant_tunnel(self, request: RequestTunnel, sequence: int) -> None:
        """RequestTunnelResponse on the request's sequence number (ZCL 2.4.1.3): a new
        tunnel id, or a refusal as the hub's (GB-HRGP without flow control only), which
        keeps the tunnel held."""
        settings = self.settings
        assert settings is not None
        status = tunnel_server.tunnel_refusal(request)
        if status is None:
            self.tunnel_id = self._tunnel_ids.allocate()
            response = RequestTunnelResponse(self.tunnel_id)
        else:
            self._log(f"RequestTunnel refused: {status.name}")
            response = RequestTunnelResponse(tunnel_server.NO_TUNNEL_ID, status)
        self._send_application(settings, COORDINATOR, self._tunnel_zcl(response, None, sequence))
        if status is None:
            if self.trace is not None:
                self._log(f"tunnel {self.tunnel_id} open")
            if self.on_state is not None:
                self.on_state(self.state)

    def _take_transfer(
        self, transfer: TransferData, gbcs: GbcsTunnelCommand | None, zcl: ZclFrame
    ) -> None:
        """The hub's TransferData: its PUT runs, unless refused (server to client: the hub
        fails the command at once and re-opens the tunnel)."""
        settings = self.settings
        assert settings is not None
        if self._refused_transfer(transfer, zcl):
            return
        if isinstance(gbcs, GbcsPut) and gbcs.message and self.on_gbcs is not None:
            self.on_gbcs(settings.trust_centre, gbcs.message)

    def _refused_transfer(self, transfer: TransferData, zcl: ZclFrame | None) -> bool:
        """Whether the hub's TransferData is not taken: on a tunnel we do not hold (a reboot
        closed it, the new one is not open yet) or over the 1500 octets advertised. Then
        TransferDataError on its sequence number (ZCL 10.6, 2.4.1.3), so the hub fails the
        command at once rather than leaving the head end to its timeout."""
        status = tunnel_server.transfer_refusal(transfer, self.tunnel_id)
        if status is None:
            return False
        self._log(f"TransferData on tunnel {transfer.tunnel_id} refused: {status.name}")
        if self.settings is not None and zcl is not None:
            refusal = TransferDataError(transfer.tunnel_id, status)
            answer = self._tunnel_zcl(refusal, to_hub(self.sleepy), zcl.sequence)
            self._send_application(self.settings, COORDINATOR, answer)
        return True

    def reachable(self, peer: bytes) -> bool:
        return self.joined and self.settings is not None and peer == self.settings.trust_centre

    def send_gbcs(self, peer: bytes, data: bytes) -> None:
        """PUT to the hub: a GSME as its tunnel's client, an ESME as its server."""
        if self.settings is None or self.tunnel_id is None:
            self._log("no tunnel: GBCS message dropped")
            return
        zcl = self._tunnel_zcl(
            TransferData(self.tunnel_id, encode_gbcs_tunnel(GbcsPut(data))), to_hub(self.sleepy)
        )
        self._send_application(self.settings, COORDINATOR, zcl)
        self._stay_awake()

    # Keep-alive, polling and sleep --------------------------------------------------------
    def _schedule_keepalive(self) -> None:
        self._schedule(SLEEPY_POLL if self.sleepy else KEEPALIVE, self._keepalive)

    def _keepalive(self) -> None:
        if self.state is not _JOINED or self.settings is None:
            return
        if not self.sleepy:
            self._read_hub_time()
        elif self.tunnel_id is not None:
            self.listening = True
            self._poll()
        else:
            if self._tunnel_asked:  # its last RequestTunnel: answered by now, if at all
                self._tunnel_unanswered += 1
                if self._tunnel_unanswered >= PARENT_FAILURE_LIMIT:
                    # As an SE keep-alive counts reads its trust centre left unanswered: a
                    # hub that holds its answers for another address (a record it never
                    # moved) acknowledges every frame, and only a rejoin puts that right.
                    self._parent_lost("its RequestTunnel unanswered")
                    return
                if self.trace is not None:
                    self._log(
                        f"no answer to its RequestTunnel "
                        f"({self._tunnel_unanswered} of {PARENT_FAILURE_LIMIT} in a row)"
                    )
            self.listening = True
            self._request_tunnel()
        self._schedule_keepalive()

    def _poll(self) -> None:
        if self.settings is None or self.tunnel_id is None or not self.powered:
            return
        zcl = self._tunnel_zcl(
            TransferData(self.tunnel_id, encode_gbcs_tunnel(GbcsGet())), Direction.TO_SERVER
        )
        self._send_application(self.settings, COORDINATOR, zcl)
        self._stay_awake()
        self._expect_reply()

    def _expect_reply(self) -> None:
        """A GSME awaiting the answer to its GET or RequestTunnel polls for it every
        FAST_POLL, for up to REPLY_WAIT (the hub may take a moment to have it held)."""
        self._reply_due = self.clock.now + REPLY_WAIT
        self.clock.call_later(FAST_POLL, self._fast_poll)

    def _replied(self) -> None:
        self._reply_due = 0.0

    def _fast_poll(self) -> None:
        if not self.sleepy or self.clock.now >= self._reply_due or self.state is not _JOINED:
            return
        self._stay_awake(FAST_POLL * 2)
        self._poll_parent()
        self.clock.call_later(FAST_POLL, self._fast_poll)

    def _stay_awake(self, window: float = AWAKE_WINDOW) -> None:
        if not self.sleepy:
            return
        self.listening = True
        self._awake_until = max(self._awake_until, self.clock.now + window)
        self.clock.call_at(self._awake_until, self._maybe_sleep)

    def _poll_parent(self) -> None:
        """MAC Data Request: what the hub holds for this GSME comes only when it asks
        (802.15.4-2006 7.5.6.3). Sent after each of its own frames to the hub (the answer
        is held by then), again while a frame is said to be pending, and while blocks or
        an acknowledgement are awaited."""
        settings = self.settings
        if (
            not self.sleepy
            or settings is None
            or self.state is not _JOINED
            or not self.powered
            or self._polling()
        ):
            return
        self.listening = True
        self._polled_at = self.clock.now
        self._last_poll = self._send_data_request(settings.pan_id, settings.short_address)

    def _send_data_request(self, pan_id: int, src: int | bytes) -> bytes:
        """A MAC Data Request to the coordinator (a poll, or fetching the association):
        queued, and returned so its acknowledgement can be told apart."""
        psdu = air.data_request(
            mac_sequence=self.counters.next("mac"), pan_id=pan_id, src=src, dst=COORDINATOR
        )
        self._send_acked(psdu, pan_id, COORDINATOR)
        return psdu

    def _polling(self) -> bool:
        """Whether its last Data Request is still queued or on the air."""
        poll = self._last_poll
        if poll is None:
            return False
        current = self._tx_current
        return (current is not None and current[0] is poll) or any(
            entry[0] is poll for entry in self._tx_queue
        )

    def _acknowledged(self, seq: int) -> None:
        current = self._tx_current
        super()._acknowledged(seq)
        if current is None or self._tx_current is current:
            return
        if self.state is _JOINING:
            if current[0] is self._association_request:
                self.clock.call_later(MAC_RESPONSE_WAIT, self._fetch_association, current[0])
            elif current[0] is self._association_poll:
                self._association_polled(current[0])
            return
        if current[2] == COORDINATOR:
            self._parent_failures = 0  # the hub is there
        if not self.sleepy:
            return
        if current[0] is self._last_poll:
            if self._ack_pending:
                self._stay_awake(FRAME_WAIT)  # the held frame follows
        elif current[2] == COORDINATOR and not self._tx_queue:
            self._poll_parent()  # its answer, if any, is held for it by now

    def _maybe_sleep(self) -> None:
        """At the end of its awake window a GSME sleeps, once nothing it sends or receives
        is under way (a frame on the air, blocks being reassembled, a payload awaiting
        its APS acknowledgement): until then it looks again every SLEEP_RECHECK."""
        if not (self.sleepy and self.state is _JOINED and self.clock.now >= self._awake_until):
            return
        if self._tx_current is None and not self._reassembly and not self._transfers:
            self.listening = False
            return
        if (self._reassembly or self._transfers) and self.clock.now >= self._polled_at + POLL_BUSY:
            self._poll_parent()  # blocks or an acknowledgement awaited: ask for them
        self.clock.call_later(SLEEP_RECHECK, self._maybe_sleep)

    def delivery_failed(self, dst: int | bytes, psdu: bytes) -> None:
        if self.state is NodeState.JOINED and dst == COORDINATOR:
            self._parent_failures += 1
            if self._parent_failures < PARENT_FAILURE_LIMIT:
                # A moment's interference, or its frame arrived with every acknowledgement
                # lost: it asks again, and any acknowledgement says the hub is there. A GSME
                # polls at once (its answer may be held for it), an ESME reads the hub's
                # time shortly.
                if self.trace is not None:
                    self._log(
                        f"no acknowledgement from the hub "
                        f"({self._parent_failures} of {PARENT_FAILURE_LIMIT} in a row)"
                    )
                if not self.sleepy:
                    self._schedule(KEEPALIVE_RETRY, self._keepalive)
                    return
                self._poll_parent()
                if self._polling():
                    return
            self._parent_lost("no acknowledgement")

    def _parent_lost(self, why: str) -> None:
        """Orphaned: a trust-centre rejoin follows (SE 1.2b keep-alive: three failures)."""
        self._log(f"parent lost ({why}, {PARENT_FAILURE_LIMIT} in a row)")
        # The tunnel stays until the rejoin starts: a frame the hub still sends on it
        # (an ESME's PUT) is taken, not refused.
        self._set_state(NodeState.ORPHANED)
        self.listening = True
        self._schedule(1.0, self._start_rejoin)

    # SECMP0013 disconnect --------------------------------------------------------------------
    def forget_network(self) -> None:
        """Leave, drop network key, PAN and link key; back to the install-code key, auto-join."""
        settings = self.settings
        if settings is not None and self.powered and self.state is not NodeState.OFF:
            # Joined, or orphaned and rejoining (still holding its network and address):
            # back on its network's channel, it tells the hub, which drops it as a child.
            # A sleepy GSME wakes to send it (its radio sends nothing while asleep).
            self.channel, self.pan_id = settings.channel, settings.pan_id
            self.listening = True
            try:
                security = self._security(settings)
            except FrameCounterExhausted:
                pass  # traced: it leaves without a word, the hub keeps its record
            else:
                psdu = air.leave(
                    mac_sequence=self.counters.next("mac"),
                    nwk_sequence=self.counters.next("nwk"),
                    pan_id=settings.pan_id,
                    src=settings.short_address,
                    dst=0xFFFD,
                    security=security,
                    src_ieee=self.ieee,
                )
                self._transmit(psdu, settings.pan_id, 0xFFFF)
        self.settings = None
        self.tunnel_id = None
        self.short_address = None
        self.pan_id = None
        self.link_key = link_key_from_install_code(self.install_code)
        self._forget_neighbours()
        # Nothing more goes out on the network it left (a window sent again, say).
        self._drop_transfers("the meter left the network")
        if settings is not None and self.on_left is not None:
            self.on_left(settings.trust_centre)
        if not self.powered:
            # Unplugged after answering CS02f: the disconnect is kept (NV), and the radio
            # stays silent until powered, when it auto-joins (power_on with no settings).
            self._log("network forgotten while unpowered")
            return
        self.listening = True
        self._set_state(NodeState.SCANNING)
        self._log("network forgotten; auto-join")
        self._schedule(5.0, self._scan)

    # State -------------------------------------------------------------------------------
    def node_state(self) -> dict[str, Any]:
        return {
            "ieee": self.ieee.hex().upper(),
            "install_code": self.install_code.hex().upper(),
            "sleepy": self.sleepy,
            "channels": list(self.channels),
            "settings": None if self.settings is None else self.settings.to_json(),
            "counters": asdict(self.counters),
            "powered": self.powered,
            "back_on_at": self.back_on_at,
            "tunnel_id": self.tunnel_id,
            "next_tunnel_id": self._tunnel_ids.next_id,
            "hub_time": self.hub_time,
            "parent_failures": self._parent_failures,
            "next": None if (step := self._next_step()) is None else step.to_json(),
            "awake_until": self._awake_until,
            "nwk_frame_counters": self._secured_counters(),
        }

    def load_node_state(self, obj: dict[str, Any]) -> None:
        """Restore :meth:`node_state` (``powered`` is the world's to act on); every key is
        required but those older saves lack (World.from_json), and ``ieee``,
        ``install_code`` and ``sleepy`` must be this node's."""
        saved = SavedState(obj)
        if saved.octets("ieee", 8) != self.ieee:
            raise GbcsError(f"ieee is not this node's ({self.ieee.hex().upper()})")
        if saved.octets("install_code", 16) != self.install_code:
            raise GbcsError("install_code is not this node's")
        if saved.flag("sleepy") is not self.sleepy:
            raise GbcsError(f"sleepy is {not self.sleepy} for a node that is {self.sleepy}")
        channels = saved_channels(saved)
        raw = saved.optional_member("settings")
        settings = None if raw is None else NetworkSettings.from_json(raw.obj, raw.where)
        counters = _Counters.from_json(saved.member("counters"))
        powered = saved.flag("powered")  # the world acts on it after loading (restart)
        back_on_at = saved.optional_seconds("back_on_at")
        tunnel = saved.optional_integer("tunnel_id", 1, 0xFFFF)
        if tunnel is not None and (settings is None or not powered):
            raise GbcsError("tunnel_id is set for a meter without a network or power")
        if back_on_at is not None and powered:
            raise GbcsError("back_on_at is set for a meter that is powered")
        resume = _saved_next_step(saved, settings is not None, len(channels))
        if resume is not None and not powered:
            raise GbcsError(f"next is set for a meter that is not powered ({resume.step})")
        if resume is not None and resume.scanned is not None and tunnel is not None:
            raise GbcsError("tunnel_id is set for a meter part-way through a scan")
        awake_until = saved.seconds("awake_until")
        seen = _saved_secured_counters(saved)
        ids = _saved_tunnel_ids(saved, tunnel)
        hub_time = (
            saved.optional_integer("hub_time", 0, 0xFFFFFFFE) if "hub_time" in saved else None
        )
        failures = (
            saved.integer("parent_failures", 0, PARENT_FAILURE_LIMIT - 1)
            if "parent_failures" in saved
            else 0
        )
        if failures and (settings is None or not powered):
            raise GbcsError("parent_failures is set for a meter without a network or power")
        if failures and resume is not None and resume.step != NEXT_KEEPALIVE:
            # Counted only while joined: an orphaned or scanning meter has none.
            raise GbcsError(
                f"parent_failures is set for a meter that is not joined (next: {resume.step})"
            )
        self.settings = settings
        self._tunnel_ids = ids
        self.hub_time = hub_time
        self._parent_failures = failures
        self.counters = counters
        self.channels = channels
        self.back_on_at = back_on_at
        self._loaded_tunnel = tunnel
        self._loaded_next = resume
        self._awake_until = awake_until
        self._nwk_seen = seen


NEXT_KEEPALIVE, NEXT_SCAN, NEXT_REJOIN = "keepalive", "scan", "rejoin"


@dataclass(frozen=True, slots=True)
class ScanProgress:
    """A scan part-way through: the next channel's index and the beacons heard so far."""

    index: int
    heard: tuple[tuple[int, int, bytes, bool], ...]  # channel, PAN ID, extended PAN ID, permit

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "heard": [[c, p, e.hex().upper(), permit] for c, p, e, permit in self.heard],
        }


@dataclass(frozen=True, slots=True)
class NextStep:
    """What a meter does next on its own, and when (saved, so a load goes on as saved)."""

    step: str  # NEXT_KEEPALIVE, NEXT_SCAN or NEXT_REJOIN
    at: float
    scanned: ScanProgress | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "at": self.at}
        if self.scanned is not None:
            out["scan"] = self.scanned.to_json()
        return out


def _saved_next_step(saved: SavedState, has_network: bool, channels: int) -> NextStep | None:
    """``next``: null or {step, at[, scan]}. A keep-alive or rejoin needs the network
    settings (they are what it keeps or rejoins); a scan for a network to join needs
    none; a scan part-way through names a channel index within the meter's channels."""
    raw = saved.optional_member("next")
    if raw is None:
        return None
    unknown = sorted(set(raw.obj) - {"step", "at", "scan"})
    if unknown:
        raise GbcsError(f"{raw.path(unknown[0])} is not a key of a next step")
    step = raw.text("step")
    if step not in (NEXT_KEEPALIVE, NEXT_SCAN, NEXT_REJOIN):
        raise GbcsError(f"{raw.path('step')} {step!r} is not keepalive, scan or rejoin")
    at = raw.seconds("at")
    if (step == NEXT_SCAN) == has_network:
        needs = "no network settings" if step == NEXT_SCAN else "network settings"
        raise GbcsError(f"{raw.where}: a {step} needs {needs}")
    scan = raw.optional_member("scan") if "scan" in raw else None
    if scan is None:
        return NextStep(step, at)
    if step == NEXT_KEEPALIVE:
        raise GbcsError(f"{scan.where}: a keep-alive is not part of a scan")
    index = scan.integer("index", 1, channels)
    heard = []
    for i, beacon in enumerate(scan.array("heard")):
        where = f"{scan.path('heard')}[{i}]"
        if not isinstance(beacon, list) or len(beacon) != 4 or not isinstance(beacon[3], bool):
            raise GbcsError(f"{where} is not [channel, pan_id, extended_pan_id, permit]")
        heard.append(
            (
                saved_int(beacon[0], f"{where}[0]", ALL_CHANNELS[0], ALL_CHANNELS[-1]),
                saved_int(beacon[1], f"{where}[1]", 0, 0xFFFF),
                saved_hex(beacon[2], f"{where}[2]", 8),
                beacon[3],
            )
        )
    return NextStep(step, at, ScanProgress(index, tuple(heard)))


def _saved_tunnel_ids(saved: SavedState, held: int | None) -> tunnel_server.TunnelIds:
    """An ESME's ``next_tunnel_id``; a state saved before ESMEs allocated tunnel ids has none:
    the one after the tunnel it holds, so the next never repeats it."""
    if "next_tunnel_id" in saved:
        return tunnel_server.TunnelIds(saved.integer("next_tunnel_id", 1, 0xFFFF))
    return tunnel_server.TunnelIds(1 if held is None else held % 0xFFFF + 1)


def _saved_secured_counters(saved: SavedState) -> dict[bytes | int, int]:
    """``nwk_frame_counters``: [source, counter] pairs, a source an EUI-64 or a NWK address."""
    seen: dict[bytes | int, int] = {}
    where = saved.path("nwk_frame_counters")
    for i, pair in enumerate(saved.array("nwk_frame_counters")):
        if not isinstance(pair, list) or len(pair) != 2:
            raise GbcsError(f"{where}[{i}] is not a [source, counter] pair")
        source, counter = pair
        if isinstance(source, str):
            key: bytes | int = saved_hex(source, f"{where}[{i}][0]", 8)
        else:
            key = saved_int(source, f"{where}[{i}][0]", 0, 0xFFFF)
        if key in seen:
            raise GbcsError(f"{where}[{i}]: a source is listed twice")
        seen[key] = saved_int(counter, f"{where}[{i}][1]", 0, 0xFFFFFFFF)
    return seen


def check_network(channel: int, pan_id: int, extended_pan_id: bytes, network_key: bytes) -> None:
    """Settings a hub can form a network with; a GbcsError names the first that is not."""
    if type(channel) is not int or channel not in ALL_CHANNELS:
        raise GbcsError(f"channel {channel} is not a 2.4 GHz ZigBee channel (11-26)")
    if type(pan_id) is not int or not 0 <= pan_id < 0xFFFF:
        raise GbcsError(f"PAN ID {pan_id:#06x} is not usable")
    if not isinstance(extended_pan_id, bytes) or len(extended_pan_id) != 8:
        raise GbcsError("an extended PAN ID is 8 bytes")
    if extended_pan_id in RESERVED_EXTENDED_PAN_IDS:
        raise GbcsError(
            f"extended PAN ID {extended_pan_id.hex().upper()} is reserved: it names no network"
        )
    if not isinstance(network_key, bytes) or len(network_key) != 16:
        raise GbcsError("a network key is 16 bytes")


def checked_channels(channels: Any, what: str = "channels") -> tuple[int, ...]:
    """The channels a meter scans: at least one, each a 2.4 GHz ZigBee channel (11-26).
    A meter with none could never join."""
    if isinstance(channels, str | bytes) or not hasattr(channels, "__iter__"):
        raise GbcsError(f"{what} {channels!r} is not a list of channels")
    out = tuple(channels)
    if not out:
        raise GbcsError(f"{what} is empty: a meter that scans no channel never joins")
    for i, c in enumerate(out):
        saved_int(c, f"{what}[{i}]", ALL_CHANNELS[0], ALL_CHANNELS[-1])
    return out


def saved_channels(saved: SavedState) -> tuple[int, ...]:
    """A meter node's saved ``channels`` (:func:`checked_channels`)."""
    return checked_channels(saved.array("channels"), saved.path("channels"))
