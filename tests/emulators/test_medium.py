"""The HAN medium: who hears a frame, when, and what faults do to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from emulators.clock import VirtualClock
from emulators.faults import FaultInjector, FaultPlan
from emulators.medium import BYTE_TIME, PHY_OVERHEAD, Capture, HanMedium


@dataclass
class Ear:
    """A radio that only listens: what the medium hands it, and when."""

    clock: VirtualClock
    ieee: bytes
    channel: int = 15
    pan_id: int | None = 0x1234
    short_address: int | None = None
    listening: bool = True
    power_cyclable: bool = False
    heard: list[tuple[float, bytes]] = field(default_factory=list)

    def deliver(self, psdu: bytes) -> None:
        self.heard.append((self.clock.now, psdu))


def _medium(faults: FaultInjector | None = None) -> tuple[VirtualClock, HanMedium]:
    clock = VirtualClock()
    return clock, HanMedium(clock, name="bench", faults=faults)


def test_a_broadcast_reaches_the_listening_radios_on_its_channel_after_its_airtime() -> None:
    clock, medium = _medium()
    sender, near, asleep, elsewhere = (
        Ear(clock, bytes([i]) * 8) for i in range(4)
    )  # fmt: skip
    asleep.listening = False  # a sleepy device between polls, or one without power
    elsewhere.channel = 20
    for radio in (sender, near, asleep, elsewhere):
        medium.attach(radio)
    psdu = b"\x03\x08\x01\xff\xff\xff\xff\x00\x00"
    medium.send(sender, psdu, 0xFFFF, 0xFFFF)
    clock.run()
    airtime = (len(psdu) + PHY_OVERHEAD) * BYTE_TIME
    assert near.heard == [(airtime, psdu)]
    assert asleep.heard == [] and elsewhere.heard == [] and sender.heard == []


def test_a_radio_that_stops_listening_before_the_frame_ends_does_not_get_it() -> None:
    clock, medium = _medium()
    sender, ear = Ear(clock, b"\x01" * 8), Ear(clock, b"\x02" * 8)
    medium.attach(sender)
    medium.attach(ear)
    medium.send(sender, b"\x03\x08\x01\xff\xff\xff\xff", 0xFFFF, 0xFFFF)
    ear.listening = False  # falls asleep mid-frame
    clock.run()
    assert ear.heard == []


def test_power_cycles_are_drawn_only_for_radios_that_can_lose_power() -> None:
    faults = FaultInjector(FaultPlan(power_cycle=1.0), seed=1)
    clock, medium = _medium(faults)
    cycled: list[bytes] = []
    medium.on_power_cycle = lambda radio: cycled.append(radio.ieee)
    sender, hub, meter = (Ear(clock, bytes([i]) * 8) for i in range(3))
    meter.power_cyclable = True
    for radio in (sender, hub, meter):
        medium.attach(radio)
    medium.send(sender, b"\x03\x08\x01\xff\xff\xff\xff", 0xFFFF, 0xFFFF)
    clock.run()
    assert len(hub.heard) == 1 and meter.heard == [] and cycled == [meter.ieee]
    assert faults.counts["power_cycles"] == 1


def test_a_radio_detached_before_the_frame_ends_does_not_get_it() -> None:
    """A meter moved to another medium (another room) mid-frame is not on this air any more."""
    clock, medium = _medium()
    sender, ear = Ear(clock, b"\x01" * 8), Ear(clock, b"\x02" * 8)
    medium.attach(sender)
    medium.attach(ear)
    medium.send(sender, b"\x03\x08\x01\xff\xff\xff\xff", 0xFFFF, 0xFFFF)
    medium.detach(ear)
    clock.run()
    assert ear.heard == []
    medium.attach(ear)  # back in the room: hears the frames sent from now on
    medium.send(sender, b"\x03\x08\x02\xff\xff\xff\xff", 0xFFFF, 0xFFFF)
    clock.run()
    assert [psdu[2] for _, psdu in ear.heard] == [2]


def test_a_radio_that_changes_channel_before_the_frame_ends_does_not_get_it() -> None:
    """A joining device scanning channels (802.15.4-2006 7.5.2.1) hears only the channel it
    is on when the frame ends."""
    clock, medium = _medium()
    sender, ear = Ear(clock, b"\x01" * 8), Ear(clock, b"\x02" * 8)
    medium.attach(sender)
    medium.attach(ear)
    medium.send(sender, b"\x03\x08\x01\xff\xff\xff\xff", 0xFFFF, 0xFFFF)
    ear.channel = 20
    clock.run()
    assert ear.heard == []


def test_a_unicast_reaches_the_short_address_on_its_pan_only() -> None:
    """802.15.4-2006 7.5.6.2: a frame's destination is its PAN ID and short address; the
    broadcast PAN 0xFFFF names that short address on any PAN."""
    clock, medium = _medium()
    sender = Ear(clock, b"\x01" * 8)
    ours, theirs = (
        Ear(clock, b"\x02" * 8, short_address=5),
        Ear(clock, b"\x03" * 8, short_address=5),
    )
    theirs.pan_id = 0x9999  # a neighbour's network on the same channel
    for radio in (sender, ours, theirs):
        medium.attach(radio)
    medium.send(sender, b"\x41\x88\x01\x34\x12\x05\x00", 0x1234, 5)
    clock.run()
    assert len(ours.heard) == 1 and theirs.heard == []
    medium.send(sender, b"\x41\x88\x02\xff\xff\x05\x00", 0xFFFF, 5)
    clock.run()
    assert len(ours.heard) == 2 and len(theirs.heard) == 1


def test_the_capture_stamps_a_frame_when_it_starts_after_its_turnaround() -> None:
    clock = VirtualClock()
    capture = Capture()
    medium = HanMedium(clock, name="bench", capture=capture)
    sender, ear = Ear(clock, b"\x01" * 8), Ear(clock, b"\x02" * 8)
    medium.attach(sender)
    medium.attach(ear)
    psdu = b"\x03\x08\x01\xff\xff\xff\xff"
    medium.transmit(sender, psdu, dst_pan=0xFFFF, dst=0xFFFF, after=0.25)
    clock.run()
    assert capture.frames == [(0.25, "bench", psdu)]
    assert ear.heard == [(0.25 + (len(psdu) + PHY_OVERHEAD) * BYTE_TIME, psdu)]
