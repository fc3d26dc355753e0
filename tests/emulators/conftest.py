"""Shared fixtures for the emulator tests: one test PKI, its anchors, fresh clocks and devices."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from emulators.chf import CommsHub
from emulators.clock import VirtualClock
from emulators.credentials import DeviceCredentials, TrustAnchors
from emulators.device import GbcsDevice
from emulators.gpf import Gpf
from emulators.headend import HeadEnd
from emulators.meters import Esme, Gsme
from emulators.node import COORDINATOR, PARENT_FAILURE_LIMIT, MeterNode
from emulators.scenarios import Run
from emulators.world import Hub, MeterUnit, World
from gbcs import dlms
from gbcs.frame import GbcsMessage, decode_message, new_command
from gbcs.testpki import TestPki

PKI_SEED = 7
INSTALL_CODE = bytes.fromhex("83FED3407A939723A5C639B26916D505")
LINK_KEY = bytes.fromhex("66B6900981E1EE3CA4206B6B861C02BB")
EPID = bytes.fromhex("00DB1234567800E1")


@pytest.fixture(scope="session")
def pki() -> TestPki:
    return TestPki.default_cast(PKI_SEED)


@pytest.fixture(scope="session")
def anchors(pki: TestPki) -> TrustAnchors:
    return TrustAnchors.from_pki(pki)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def headend(pki: TestPki, clock: VirtualClock) -> HeadEnd:
    return HeadEnd(pki, clock)


@pytest.fixture(scope="session")
def eui(pki: TestPki) -> Callable[[str], bytes]:
    """EUI-64 of a party of the default cast by name."""
    return lambda name: pki.party(name).eui64


@dataclass
class FakeHan:
    """A HanPort double: records what the device asks of its HAN."""

    joined: bool = True
    sent: list[tuple[bytes, bytes]] = field(default_factory=list)
    forgotten: int = 0

    def send_gbcs(self, peer: bytes, data: bytes) -> None:
        self.sent.append((peer, data))

    def reachable(self, peer: bytes) -> bool:
        return self.joined

    @property
    def has_network(self) -> bool:
        return self.joined  # the double has no orphaned state

    def forget_network(self) -> None:
        self.forgotten += 1
        self.joined = False

    # What a hub's radio also answers (emulators.chf.HubPort): no children, nothing handed.
    lost: str | None = None

    def child_sleepy(self, device: bytes) -> bool | None:
        return None

    def take_hand_over(self, device: bytes) -> bytes | None:
        return None


@pytest.fixture
def fake_han() -> FakeHan:
    return FakeHan()


@pytest.fixture
def make_esme(pki: TestPki, anchors: TrustAnchors, clock: VirtualClock) -> Callable[..., Esme]:
    def make(**kwargs: Any) -> Esme:
        kwargs.setdefault("install_code", INSTALL_CODE)
        return Esme(DeviceCredentials.from_party(pki.party("esme")), anchors, clock, **kwargs)

    return make


@pytest.fixture
def esme(make_esme: Callable[..., Esme]) -> Esme:
    return make_esme()


@pytest.fixture
def gsme(pki: TestPki, anchors: TrustAnchors, clock: VirtualClock) -> Gsme:
    return Gsme(
        DeviceCredentials.from_party(pki.party("gsme")), anchors, clock, install_code=INSTALL_CODE
    )


@pytest.fixture
def make_hub(pki: TestPki, anchors: TrustAnchors, clock: VirtualClock) -> Callable[..., CommsHub]:
    def make(**kwargs: Any) -> CommsHub:
        kwargs.setdefault("extended_pan_id", EPID)
        return CommsHub(DeviceCredentials.from_party(pki.party("chf")), anchors, clock, **kwargs)

    return make


@pytest.fixture
def gpf(pki: TestPki, anchors: TrustAnchors, clock: VirtualClock) -> Gpf:
    return Gpf(DeviceCredentials.from_party(pki.party("gpf")), anchors, clock)


def device_log_message(headend: HeadEnd, command: Any, code: int, hub: bytes) -> GbcsMessage:
    """A CCS0x command as the DCC sends it: ACB on behalf of the supplier, MAC only."""
    counter = headend.next_counter(headend.acb)
    request = command.to_request(dlms.invoke_id_for_counter(counter))
    return headend.command(
        code,
        dlms.encode(request),
        hub,
        originator="acb",
        on_behalf_of="supplier",
        sign=False,
        counter=counter,
    )


def verified(headend: HeadEnd, data: bytes) -> GbcsMessage:
    """Decode a device's output and require its MAC (and signature, if any) to verify."""
    message, parts = decode_message(data)
    headend.security.require_valid(message, parts)
    return message


def executed(device: GbcsDevice) -> list[str]:
    """The use cases ``device`` logged as executed, oldest first (refusals are not)."""
    return [e.detail for e in device.event_log if e.event == "command executed"]


def lose_parent(node: MeterNode) -> None:
    """Its frames to the hub go unacknowledged, enough in a row for it to count the hub
    lost and start a trust-centre rejoin."""
    for _ in range(PARENT_FAILURE_LIMIT):
        node.delivery_failed(COORDINATOR, b"")


def known_at_another_address(kind: str, seed: int = 1) -> tuple[World, Run, Hub, MeterUnit, int]:
    """A meter joined to its hub, the hub's record of it at one address while the meter
    holds another (it joined elsewhere since): on losing its parent it rejoins, and the
    rejoin moves it. Returns that other address too."""
    world = World(seed)
    run = Run("moved", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    meter = world.add_meter("premises", kind, world.pki.party(kind).eui64)
    assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    if kind == "gsme":
        assert world.run_until(lambda: not meter.node.listening, 60)
    settings = meter.node.settings
    assert settings is not None
    recorded = hub.node.children[meter.eui64].short_address
    elsewhere = next(s for s in range(0x0100, 0xFFF7) if s != recorded)
    settings.short_address = meter.node.short_address = elsewhere
    return world, run, hub, meter, elsewhere


def command_of_size(headend: HeadEnd, target: bytes, size: int) -> GbcsMessage:
    """An unprotected CS07-coded command to ``target`` whose encoding is exactly ``size`` bytes.

    A hub routes it without checking it, so it probes the HAN tunnel's size limit.
    """
    supplier = headend.party("supplier")
    counter = headend.next_counter(supplier)
    padding = size
    for _ in range(8):  # the length fields grow with the payload: converge
        message = new_command(
            0x0013, bytes(padding), originator=supplier, target=target, counter=counter
        )
        padding += size - len(message.encode())
    assert len(message.encode()) == size
    return message
