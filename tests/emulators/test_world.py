"""World.add_hub / add_meter refuse what would leave a broken or unloadable world."""

from __future__ import annotations

import re
from typing import Any

import pytest

from emulators.world import World
from gbcs.errors import GbcsError, KeyNotFoundError
from gbcs.keys import KeyUsage

HUB = bytes.fromhex("00DB123456780010")


def _meter_refused(world: World, match: str, place: Any = "bench", **kwargs: Any) -> None:
    before = (dict(world.meters), {k: list(m.radios) for k, m in world.places.items()})
    with pytest.raises(GbcsError, match=match):
        world.add_meter(place, **kwargs)
    assert (dict(world.meters), {k: list(m.radios) for k, m in world.places.items()}) == before


@pytest.mark.parametrize(
    ("channels", "match"),
    [
        ((), "empty: a meter that scans no channel never joins"),
        ((5,), r"channels\[0\] 5 is outside 11\.\.26"),
        ((11, 27), r"channels\[1\] 27 is outside 11\.\.26"),
        ("11", "not a list of channels"),
    ],
)
def test_a_meter_needs_a_channel_to_scan(channels: Any, match: str) -> None:
    world = World(1)
    world.add_hub("bench", HUB)
    _meter_refused(world, match, channels=channels)


def test_a_saved_meter_with_no_channel_is_refused() -> None:
    world = World(1)
    world.add_hub("bench", HUB)
    world.add_meter("bench", "esme")
    state = world.to_json()
    (meter,) = state["meters"]
    meter["node"]["channels"] = []
    with pytest.raises(GbcsError, match="channels is empty"):
        World.from_json(state)


def test_no_device_takes_a_gpfs_eui64() -> None:
    """A hub's GPF is its EUI-64 plus one: a meter there had its CCS01 refused and the
    GPF answered the commands meant for it."""
    world = World(1)
    world.add_hub("bench", HUB)
    gpf = bytes.fromhex("00DB123456780011")
    _meter_refused(world, "is the GPF of hub 00DB123456780010", eui=gpf)
    with pytest.raises(GbcsError, match="is the GPF of hub"):
        world.add_hub("elsewhere", gpf)
    with pytest.raises(GbcsError, match="already in this world"):
        world.add_hub("elsewhere", bytes.fromhex("00DB12345678000F"))  # its GPF is HUB
    assert list(world.hubs) == [HUB] and "elsewhere" not in world.places


@pytest.mark.parametrize(
    ("eui", "party"),
    [
        ("90B3D51F30010000", "supplier (supplier)"),
        ("90B3D51F30000002", "acb (access control broker)"),
        ("90B3D51F30020000", "network_operator (network operator)"),
    ],
)
def test_no_device_takes_a_remote_partys_eui64(eui: str, party: str) -> None:
    """The device would have been given that party's private keys and certificates."""
    world = World(1)
    at = bytes.fromhex(eui)
    _meter_refused(world, re.escape(f"{eui} is the test PKI's {party}, not a device"), eui=at)
    with pytest.raises(GbcsError, match=re.escape(f"is the test PKI's {party}")):
        world.add_hub("bench", at)
    assert world.hubs == {} and world.places == {}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"place": 5}, "place 5 is int, not text"),
        ({"name": 7}, "name 7 is int, not text"),
        ({"kind": None}, "unknown meter kind None"),
        ({"kind": "psme"}, "unknown meter kind 'psme'"),
        ({"eui": b"\xff" * 8}, "FFFFFFFFFFFFFFFF is reserved: it names no device"),
        ({"certificates": {"KA": b"der"}}, "'KA' is not a KeyUsage"),
        ({"certificates": 5}, "is not a mapping of key usage to DER"),
        ({"certificates": {KeyUsage.KA: "der"}}, r"certificates\[KA\] is str, not DER bytes"),
    ],
)
def test_meter_arguments_of_the_wrong_kind_are_refused(kwargs: dict, match: str) -> None:
    world = World(1)
    world.add_hub("bench", HUB)
    place = kwargs.pop("place", "bench")
    _meter_refused(world, match, place, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": 7}, "name 7 is int, not text"),
        ({"extended_pan_id": bytes(8)}, "0000000000000000 is reserved"),
        ({"extended_pan_id": b"\xff" * 8}, "FFFFFFFFFFFFFFFF is reserved"),
        ({"channel": 5}, "channel 5 is not a 2.4 GHz ZigBee channel"),
        ({"channel": 11.0}, "channel 11.0 is not a 2.4 GHz ZigBee channel"),  # would not load
        ({"pan_id": 0xFFFF}, "PAN ID 0xffff is not usable"),
        ({"network_key": b"short"}, "a network key is 16 bytes"),
        ({"extended_pan_id": b"\x01" * 3}, "an extended PAN ID is 8 bytes"),
    ],
)
def test_a_hub_refused_leaves_nothing_behind(kwargs: dict, match: str) -> None:
    """Formerly the radio stayed on the air of a place made for a hub never added."""
    world = World(1)
    with pytest.raises(GbcsError, match=match):
        world.add_hub("bench", HUB, **kwargs)
    assert world.hubs == {} and world.places == {}
    with pytest.raises(KeyNotFoundError):  # the head end trusts no key of a hub never added
        world.headend.keystore.public_key(HUB, KeyUsage.KA)
    other = world.add_hub("bench", bytes.fromhex("00DB123456780020"))
    with pytest.raises(GbcsError, match=match):
        world.add_hub("bench", HUB, **kwargs)  # a place that exists keeps only its radios
    assert world.places["bench"].radios == [other.node]
    world.add_hub("bench", HUB)  # and the EUI-64 is still free
    with pytest.raises(GbcsError, match="place 3 is int"):
        world.add_hub(3)  # type: ignore[arg-type]


def test_channels_may_come_from_any_iterable() -> None:
    world = World(1)
    unit = world.add_meter(None, "esme", channels=(c for c in (15, 20)))  # type: ignore[arg-type]
    assert unit.node.channels == (15, 20)


def test_a_device_refused_late_leaves_no_keys_at_the_head_end() -> None:
    """Its keys were trusted before the device was made: a meter refused for its install
    code, or a hub whose radio would not form, left the head end trusting a device that
    does not exist (audit 8, codec 5)."""
    world = World(1)
    meter = bytes.fromhex("00DB1234567800F1")
    _meter_refused(world, "a GBCS install code is 16 bytes", eui=meter, install_code=b"\x01" * 18)
    with pytest.raises(KeyNotFoundError):
        world.headend.keystore.public_key(meter, KeyUsage.KA)

    class Dead(Exception):
        pass

    make = world.hub_radio

    def radio(clock: Any, eui: bytes, name: str) -> Any:
        node = make(clock, eui, name)

        def form(*args: Any) -> None:
            raise Dead("the radio did not come up")

        node.form = form  # type: ignore[method-assign]
        return node

    world.hub_radio = radio
    with pytest.raises(Dead):
        world.add_hub("bench", HUB)
    for eui in (HUB, bytes.fromhex("00DB123456780011")):  # the hub and its GPF
        with pytest.raises(KeyNotFoundError):
            world.headend.keystore.public_key(eui, KeyUsage.KA)
    world.hub_radio = make
    hub = world.add_hub("bench", HUB)  # made, its keys are trusted
    assert world.headend.keystore.public_key(HUB, KeyUsage.KA) is not None
    unit = world.add_meter("bench", "esme", meter)
    assert world.headend.keystore.public_key(unit.eui64, KeyUsage.KA) is not None
    assert hub.gpf.eui64 == bytes.fromhex("00DB123456780011")


def test_credentials_given_for_a_certified_eui64_are_the_ones_trusted() -> None:
    """The head end trusts the keys a device was given, not the test PKI's for its EUI-64:
    trusting only uncertified EUI-64s (a refactor) left such a meter discarding every
    command as MAC invalid (review F4)."""
    from emulators.credentials import DeviceCredentials, public_point
    from emulators.scenarios import Run

    world = World(1)
    run = Run("given", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64)
    eui = world.pki.party("esme").eui64
    own = DeviceCredentials.generate(eui, 7)
    meter = world.add_meter("premises", "esme", eui, credentials=own)
    ka = world.headend.keystore.public_key(eui, KeyUsage.KA)
    assert public_point(ka) == own.public_point(KeyUsage.KA)
    assert run.add_device(hub, meter).ok and run.wait_joined(meter, hub, "join").ok
    assert run.join_details(hub, meter).ok
