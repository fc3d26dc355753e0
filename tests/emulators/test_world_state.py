"""Device state saves and loads as JSON: an emulated fleet survives a restart."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    reason = "cannot read (No such file or directory)"
    with pytest.raises(GbcsError, match=re.escape(f"{missing}: {reason}")):
        World.load(missing)
    with pytest.raises(GbcsError, match="cannot read"):
        World.load(tmp_path)  # a directory


def test_a_file_not_in_utf8_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "latin1.json"
    bad.write_bytes(b'{"format": "caf\xe9"}')
    with pytest.raises(GbcsError, match=re.escape(f"{bad}: not UTF-8 text")):
        World.load(bad)


def test_json_nested_too_deeply_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "deep.json"
    bad.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    with pytest.raises(GbcsError, match="not JSON"):
        World.load(bad)


@functools.cache
def _saved_fleet() -> str:
    """The fleet's saved state, built once: each mutation parses its own copy."""
    return json.dumps(_fleet()[0].to_json())


# Maps keyed by data (EUI-64s, key usages): their entries may go, the map itself may not.
_DATA_MAPS = {"counters", "device_log", "partners", "join_windows", "held", "certificates"}
_OPTIONAL = {"certificates"}  # written only when a meter holds some
_WRONG: tuple[Any, ...] = ([], {}, "zz", None, -1, 2**70)

KeyPath = tuple[str | int, ...]


def _paths(obj: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Every key and list element under ``obj``; a list's first and last elements only."""
    if isinstance(obj, dict):
        children: list[tuple[str | int, Any]] = list(obj.items())
    elif isinstance(obj, list):
        children = [(i, obj[i]) for i in sorted({0, len(obj) - 1})] if obj else []
    else:
        return
    for key, value in children:
        yield (*path, key)
        yield from _paths(value, (*path, key))


def _is_map(path: KeyPath) -> bool:
    """Whether the object at ``path`` maps data keys to values (a node's counters do not)."""
    return bool(path) and path[-1] in _DATA_MAPS and path[-2:] != ("node", "counters")


def _always_written(path: KeyPath) -> bool:
    """Whether the writers always write this key (a record's field, not a map entry)."""
    *parent, key = path
    return isinstance(key, str) and key not in _OPTIONAL and not _is_map(tuple(parent))


def _shape(path: KeyPath) -> KeyPath:
    """``path`` with list indices and map keys blanked: paths one loader reads alike."""
    return tuple("*" if isinstance(k, int) or _is_map(path[:i]) else k for i, k in enumerate(path))


def _mutated(path: KeyPath, value: Any = ...) -> dict[str, Any]:
    """The saved fleet with ``path`` deleted (no value) or set to ``value``."""
    state = json.loads(_saved_fleet())
    *parent, key = path
    holder = state
    for step in parent:
        holder = holder[step]
    if value is ...:
        del holder[key]
    else:
        holder[key] = value
    return state


def _load(state: dict[str, Any]) -> str | None:
    """None if the state loads, else the GbcsError's message (another exception escapes)."""
    try:
        World.from_json(state, capture=False)
    except GbcsError as e:
        return str(e)
    return None


def test_every_damage_to_a_saved_world_is_a_gbcs_error() -> None:
    """Every key deleted, and each wrong-typed value put in every place (once per shape of
    path, to stay fast): the load succeeds or is a GbcsError, never another exception."""
    paths = list(_paths(json.loads(_saved_fleet())))
    assert len(paths) > 200
    silent: list[KeyPath] = []
    unclear: list[tuple[KeyPath, Any, str]] = []
    shapes: set[KeyPath] = set()
    for path in paths:
        message = _load(_mutated(path))
        if _always_written(path):
            if path == ("format",):
                assert message is not None and "not a gbcs-hil world state" in message
            elif message is None or "damaged" not in message:
                silent.append(path)
        if _shape(path) not in shapes and path != ("format",):
            shapes.add(_shape(path))
            for value in _WRONG:
                message = _load(_mutated(path, value))
                if message is not None and "world state is damaged: " not in message:
                    unclear.append((path, value, message))
    assert not silent, f"deleted but not refused: {silent}"
    assert not unclear, f"refused without saying it is damaged: {unclear}"
    assert len(shapes) > 150


def test_damage_is_named_where_it_is() -> None:
    state = json.loads(_saved_fleet())
    eui = state["hubs"][0]["eui64"]
    state["hubs"][0]["gpf"]["counters"] = []
    with pytest.raises(GbcsError, match=f"damaged: hub {eui} gpf: counters is a list"):
        World.from_json(state)
    state = json.loads(_saved_fleet())
    state["hubs"][0]["eui64"] = "00"
    with pytest.raises(GbcsError, match="damaged: hub 00: eui64 must be 8 bytes"):
        World.from_json(state)
    state = json.loads(_saved_fleet())
    state["headend"]["counters"] = "zz"
    with pytest.raises(GbcsError, match="damaged: headend: counters is a string"):
        World.from_json(state)


def test_a_meter_without_its_counters_is_refused_not_reset() -> None:
    state = json.loads(_saved_fleet())
    meter = state["meters"][0]
    assert meter["device"]["counters"]  # it has accepted commands: replay protection
    del meter["device"]["counters"]
    with pytest.raises(
        GbcsError, match=f"damaged: meter {meter['eui64']} device: counters is missing"
    ):
        World.from_json(state)


def test_damaged_triage_entities_are_refused() -> None:
    world = World.from_json(json.loads(_saved_fleet()))
    rows = world.entities()
    again = World.from_entities(json.loads(json.dumps(rows)))
    assert [h.chf.state() for h in again.hubs.values()] == [
        h.chf.state() for h in world.hubs.values()
    ]
    assert [m.device.state() for m in again.meters.values()] == [
        m.device.state() for m in world.meters.values()
    ]
    hub = next(k for k in rows if k.startswith("hub:"))
    del rows[hub]["node"]["counters"]
    with pytest.raises(GbcsError, match=rf"damaged: hub {hub[4:]} node: counters is missing"):
        World.from_entities(rows)
    with pytest.raises(GbcsError, match="meta entry is not an object"):
        World.from_entities({"meta": []})  # type: ignore[dict-item]


@pytest.mark.parametrize("size", [0, 1, 7, 9])
def test_an_eui64_of_the_wrong_length_is_refused(size: int) -> None:
    world = World()
    eui = bytes(range(size))
    with pytest.raises(GbcsError, match=f"hub EUI-64 .* is {size} bytes, not 8"):
        world.add_hub("p", eui)
    with pytest.raises(GbcsError, match=f"meter EUI-64 .* is {size} bytes, not 8"):
        world.add_meter("p", "esme", eui)
    assert not world.hubs and not world.meters


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
