"""The hub radio on bellows' real application and EZSP classes, the NCP's commands recorded.

No dongle: :mod:`tests.hardware.recorded_ezsp` records what would go over the wire. These
are the things the sim radio cannot show, because they live in bellows: what reaches the
NCP when the hub comes up and when a CCS01 window opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import bellows.types as bt
import pytest
import zigpy.types as t

from emulators.clock import WallClock
from emulators.scenarios import Run
from emulators.world import Hub, World
from emulators.zigbee.install_code import link_key_from_install_code
from gbcs.errors import GbcsError
from hardware.realtime import DongleRadioFactory, SerialSettings, use_wall_clock
from hardware.zigpy_han import ForeignRadio, WellKnownKeyRefused, ZigpyHubRadio, to_eui64
from tests.hardware.recorded_ezsp import EVERY_EUI64, WELL_KNOWN_KEY, Wire, recorded_bellows

SEED = 7
HUB_EUI = bytes.fromhex("00DB12345678C000")  # World.add_hub's first derived EUI-64
STICK_EUI = bytes.fromhex("000D6FFFFEA1B2C3")  # a stock stick's own (Silicon Labs OUI)
INSTALL_CODE_ONLY = bt.EzspDecisionBitmask.ALLOW_JOINS | (
    bt.EzspDecisionBitmask.JOINS_USE_INSTALL_CODE_KEY
)


Bench = tuple[World, WallClock, DongleRadioFactory, Wire]


@contextmanager
def recorded_bench(ncp_eui: bytes) -> Iterator[Bench]:
    """A world on real time whose hub radio is bellows on a recorded NCP of that EUI-64."""
    world = World(SEED)
    clock = use_wall_clock(world)
    wire = Wire(to_eui64(ncp_eui))
    radios = DongleRadioFactory(SerialSettings("/dev/ttyUSB0"), app_factory=recorded_bellows(wire))
    world.hub_radio = radios
    try:
        yield world, clock, radios, wire
    finally:
        radios.close()
        clock.close()


@pytest.fixture
def bench() -> Iterator[Bench]:
    """The recorded NCP has the EUI-64 World.add_hub gives its first hub."""
    with recorded_bench(HUB_EUI) as made:
        yield made


def _radio(hub: Hub) -> ZigpyHubRadio:
    assert isinstance(hub.node, ZigpyHubRadio) and hub.node.app is not None
    return hub.node


def test_bring_up_and_a_ccs01_permit_never_offer_the_well_known_key(
    bench: Bench,
) -> None:
    """bellows' permit() runs pre_permit even for the permit(0) that zigpy's initialize()
    ends with: a transient key "ZigBeeAlliance09" for every EUI-64 (FF..FF), and for 2 s
    the policy ALLOW_JOINS | ALLOW_UNSECURED_REJOINS. The kit's application never does."""
    world, clock, _, wire = bench
    hub = world.add_hub("bench", name="bench CHF")
    meter = world.add_meter("bench", "esme", name="ESME")
    assert Run("test", world).add_device(hub, meter).ok  # CCS01: the meter's join window
    clock.run_for(3)  # past the end of a pre_permit(0), had one run

    assert not [c.name for c in wire.commands if WELL_KNOWN_KEY in c.frame]
    key = link_key_from_install_code(meter.device.install_code)
    assert wire.transient_keys() == [(to_eui64(meter.eui64), key)]
    assert EVERY_EUI64 not in dict(wire.transient_keys())
    # The CCS01 permit's install-code-only policy is the only one set, and stays.
    assert [decision for _, decision in wire.tc_policies()] == [INSTALL_CODE_ONLY]
    durations = [int(c.args["duration"]) for c in wire.named("permitJoining")]
    assert durations[0] == 0 and durations[-1] > 0  # closed at start-up, then the window


def test_opening_the_network_to_every_device_is_refused(
    bench: Bench,
) -> None:
    world, _, _, wire = bench
    radio = _radio(world.add_hub("bench", name="bench CHF"))
    app = radio.app
    assert app is not None
    before = len(wire.commands)
    with pytest.raises(WellKnownKeyRefused):
        radio._run(app.permit(60))
    radio._run(app.permit(0))  # closing, as zigpy does at start-up: no pre_permit either
    after = wire.commands[before:]
    assert [(c.name, int(c.args["duration"])) for c in after] == [("permitJoining", 0)]
    assert t.EUI64(wire.ncp_eui64) == app.state.node_info.ieee


def test_a_dongle_is_never_given_another_ieee_address() -> None:
    """A hub of another EUI-64 than the NCP's is refused before anything is written (bellows
    would rewrite the NCP's NV3 token, or burn its write-once one, or fail with "upgrade
    your adapter firmware"), the port is let go and no half-made hub is left. A hub of the
    NCP's own EUI-64 comes up, and nothing ever asks for another IEEE address."""
    with recorded_bench(STICK_EUI) as (world, _, radios, wire):
        with pytest.raises(ForeignRadio) as refused:
            world.add_hub("bench", name="bench CHF")
        assert str(refused.value) == (
            "bench CHF: the radio's own EUI-64 is 000D6FFFFEA1B2C3, not the hub's "
            "00DB12345678C000, and the kit never rewrites a dongle's IEEE address: give the "
            "hub the dongle's EUI-64 (World.add_hub(place, bytes.fromhex('000D6FFFFEA1B2C3')); "
            "the pytest plugin's chf fixture does)"
        )
        assert isinstance(refused.value, GbcsError)
        assert not wire.written and wire.links == ["connect", "disconnect"]
        assert not world.hubs and "bench" not in world.places
        assert radios.failure is None  # the dongle is fine: the next hub may use it

        hub = world.add_hub("bench", STICK_EUI, name="bench CHF")
        assert hub.eui64 == STICK_EUI and _radio(hub).joined
        assert wire.written and all(
            node.ieee in (t.EUI64.UNKNOWN, to_eui64(STICK_EUI)) for node in wire.written
        )


def test_a_dongle_lost_mid_run_is_its_factorys_failure(bench: Bench) -> None:
    """bellows reports a lost port or a failed NCP with connection_lost: the dongle is not
    used again (the plugin fails later tests at once with that reason), and closing still
    shuts bellows down (its serial thread runs until then)."""
    world, _, radios, wire = bench
    radio = _radio(world.add_hub("bench", name="bench CHF"))
    assert radio.app is not None
    radio.app.connection_lost(OSError(5, "Input/output error"))
    assert radios.failure == (
        "bench CHF: radio lost: /dev/ttyUSB0: OSError: [Errno 5] Input/output error"
    )
    radios.close()
    assert wire.links == ["connect", "disconnect"]
