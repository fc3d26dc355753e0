"""The air: a simulated IEEE 802.15.4 channel shared by the radios in one place.

A premises, a triage bench or a third site each have their own medium; moving
a meter between them is moving it between rooms. Every frame is recorded as
it would be on the air (the PSDU with its FCS) for the capture, and reaches
the radios it is addressed to on the same channel after its airtime plus
whatever the seeded fault injector decides (loss, duplication, reordering,
delay, receiver power cycle).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from emulators.clock import VirtualClock
from emulators.faults import FaultInjector
from emulators.zigbee.mac import BROADCAST_ADDRESS, BROADCAST_PAN

__all__ = ["Capture", "HanMedium", "Radio", "airtime"]

BYTE_TIME = 32e-6  # 250 kbit/s O-QPSK: 32 µs per byte (802.15.4-2006 6.5.3)
PHY_OVERHEAD = 6  # preamble (4), SFD (1), PHR (1)


def airtime(psdu: bytes) -> float:
    return (len(psdu) + PHY_OVERHEAD) * BYTE_TIME


class Radio(Protocol):
    """What the medium needs of a radio: where it listens and how to hand it a frame."""

    ieee: bytes
    channel: int
    pan_id: int | None
    short_address: int | None
    listening: bool
    power_cyclable: bool  # whether the fault plan's power cycles apply to it (a meter)

    def deliver(self, psdu: bytes) -> None: ...


@dataclass(slots=True)
class Capture:
    """Every frame put on the air, with its simulated time, for the pcap."""

    frames: list[tuple[float, str, bytes]] = field(default_factory=list)  # time, place, psdu
    wan: list[tuple[float, bytes]] = field(default_factory=list)  # GBCS messages on the WAN
    keys: dict[bytes, str] = field(default_factory=dict)  # key -> label, for zigbee_pc_keys

    def record(self, time: float, place: str, psdu: bytes) -> None:
        self.frames.append((time, place, psdu))

    def record_wan(self, time: float, message: bytes) -> None:
        self.wan.append((time, message))

    def add_key(self, key: bytes, label: str) -> None:
        self.keys.setdefault(bytes(key), label)


class HanMedium:
    """One place's radio channel(s): delivery, faults and capture."""

    def __init__(
        self,
        clock: VirtualClock,
        *,
        name: str = "han",
        faults: FaultInjector | None = None,
        capture: Capture | None = None,
    ) -> None:
        self.clock = clock
        self.name = name
        self.faults = faults
        self.capture = capture
        self.radios: list[Radio] = []
        self.on_power_cycle: Callable[[Radio], None] | None = None
        self.frames_sent = 0

    def attach(self, radio: Radio) -> None:
        if radio not in self.radios:
            self.radios.append(radio)

    def detach(self, radio: Radio) -> None:
        if radio in self.radios:
            self.radios.remove(radio)

    def _receivers(
        self, sender: Radio, dst_pan: int | None, dst: int | bytes | None
    ) -> list[Radio]:
        """The radios on the sender's channel that a frame to ``dst`` is for, in attach order.

        One loop per kind of destination, not per-radio branching, and plain loops rather
        than comprehensions (a function call each on Python 3.11): every frame asks.
        """
        channel = sender.channel
        out = []
        if dst is None or dst == BROADCAST_ADDRESS:
            for r in self.radios:
                if r.channel == channel and r is not sender:
                    out.append(r)
        elif isinstance(dst, bytes):
            for r in self.radios:
                if r.ieee == dst and r.channel == channel and r is not sender:
                    out.append(r)
        elif dst_pan == BROADCAST_PAN:
            for r in self.radios:
                if r.short_address == dst and r.channel == channel and r is not sender:
                    out.append(r)
        else:
            for r in self.radios:
                if (
                    r.short_address == dst
                    and r.pan_id == dst_pan
                    and r.channel == channel
                    and r is not sender
                ):
                    out.append(r)
        return out

    def transmit(
        self,
        sender: Radio,
        psdu: bytes,
        *,
        dst_pan: int | None,
        dst: int | bytes | None,
        after: float = 0.0,
    ) -> None:
        """Put a frame on the air from ``sender`` ``after`` seconds from now (a turnaround).

        ``dst`` is its MAC destination; the capture time is when it starts.
        """
        self.send(sender, psdu, dst_pan, dst, after)

    def send(
        self,
        sender: Radio,
        psdu: bytes,
        dst_pan: int | None,
        dst: int | bytes | None,
        after: float = 0.0,
    ) -> None:
        """:meth:`transmit` with positional arguments, for the nodes' per-frame path.

        Raises ValueError for an empty PSDU: a PHY header cannot announce one.
        """
        if not psdu:
            raise ValueError("a radio cannot send an empty PSDU (802.15.4-2006 6.3.3)")
        self.frames_sent += 1
        clock = self.clock
        if self.capture is not None:
            self.capture.record(clock.now + after, self.name, psdu)
        delay = after + (len(psdu) + PHY_OVERHEAD) * BYTE_TIME  # airtime(psdu), inlined
        channel = sender.channel
        arrive = self._arrive
        post = clock.post
        faults = self.faults
        for radio in self._receivers(sender, dst_pan, dst):
            if faults is None:
                post(delay, arrive, radio, channel, psdu)
            else:
                for copy in faults.copies(delay):
                    post(copy, arrive, radio, channel, psdu)

    def _arrive(self, radio: Radio, channel: int, psdu: bytes) -> None:
        if radio.channel != channel or not radio.listening or radio not in self.radios:
            return
        faults = self.faults
        # Drawn only for a radio that can lose power: a hub's frame was dropped and
        # counted as a power cycle that never happened.
        if faults is not None and radio.power_cyclable and faults.power_cycle():
            if self.on_power_cycle is not None:
                self.on_power_cycle(radio)
            return
        radio.deliver(psdu)
