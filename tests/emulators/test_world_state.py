"""Device state saves and loads as JSON: an emulated fleet survives a restart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.scenarios import Run
from emulators.world import World
from gbcs.errors import GbcsError


def _fleet() -> tuple[World, Run]:
    world = World(seed=21)
    run = Run("state", world)
    hub = world.add_hub("premises", world.pki.party("chf").eui64, name="CHF")
    esme = world.add_meter("premises", "esme", world.pki.party("esme").eui64)
    gsme = world.add_meter("premises", "gsme", world.pki.party("gsme").eui64)
    other = world.add_meter("premises", "esme")  # keys generated, not from the PKI
    for meter in (esme, gsme, other):
        assert run.add_device(hub, meter).ok
        assert run.wait_joined(meter, hub, "join").ok
    assert run.join_details(hub, esme).ok
    assert run.remove_device(hub, other).ok  # something in the historic log
    return world, run


def test_world_round_trips_through_json(tmp_path: Path) -> None:
    world, _ = _fleet()
    path = world.save(tmp_path / "fleet.json")
    loaded = World.load(path)
    before, after = world.to_json(), loaded.to_json()
    assert after["time"] == before["time"]
    assert after["headend"] == before["headend"]
    assert after["hubs"][0]["chf"] == before["hubs"][0]["chf"]
    assert after["hubs"][0]["node"]["children"] == before["hubs"][0]["node"]["children"]
    for b, a in zip(before["meters"], after["meters"], strict=True):
        assert a["device"] == b["device"]
        assert a["node"]["settings"] == b["node"]["settings"]


def test_loaded_fleet_keeps_working(tmp_path: Path) -> None:
    world, _ = _fleet()
    loaded = World.load(world.save(tmp_path / "fleet.json"))
    run = Run("after restart", loaded)
    hub = next(iter(loaded.hubs.values()))
    loaded.run(5)  # meters re-open their tunnels after the restart
    esme = loaded.meters[loaded.pki.party("esme").eui64]
    gsme = loaded.meters[loaded.pki.party("gsme").eui64]
    # The counters survived: a fresh command is accepted, an old one would not be.
    assert run.join_details(hub, esme).ok
    assert run.join_details(hub, gsme).ok  # held until the GSME's next wake
    assert run.disconnect(hub, esme).ok
    assert esme.device.counters == {
        loaded.pki.party("supplier").eui64: loaded.headend.counters[
            loaded.pki.party("supplier").eui64
        ]
        - 1
    }


def test_damaged_state_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(GbcsError, match="not JSON"):
        World.load(bad)
    bad.write_text(json.dumps({"format": "something else"}), encoding="utf-8")
    with pytest.raises(GbcsError, match="not a gbcs-hil world state"):
        World.load(bad)
    world, _ = _fleet()
    state = world.to_json()
    del state["meters"][0]["device"]["install_code"]
    with pytest.raises(GbcsError, match=r"damaged.*install_code"):
        World.from_json(state)


@pytest.mark.parametrize(
    ("seed", "reason"),
    [
        (2**63, "outside the signed 64-bit range"),
        (-(2**63) - 1, "outside"),
        ("7", "not an integer"),
    ],
)
def test_a_seed_outside_64_bits_is_refused(seed: object, reason: str) -> None:
    with pytest.raises(GbcsError, match=reason):
        World(seed)  # type: ignore[arg-type]


def test_the_64_bit_extremes_are_seeds() -> None:
    assert World(2**63 - 1).seed == 2**63 - 1
    low, zero = World(-(2**63)), World(0)
    keys = [w.add_meter("p", "esme").device.credentials for w in (low, zero)]
    assert keys[0].eui64 == keys[1].eui64 and keys[0] != keys[1]  # the seed picks the keys
