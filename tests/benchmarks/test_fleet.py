"""The fleet benchmark's cycle and its crypto floor stay honest as the code changes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def modules() -> Iterator[tuple[Any, Any]]:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import crypto_floor
        import fleet

        yield fleet, crypto_floor
    finally:
        sys.path.remove(str(BENCHMARKS))


def small_fleet(fleet: Any) -> tuple[Any, Any, list[Any], list[Any]]:
    from emulators.scenarios import Run
    from emulators.world import World

    world = World(3, capture=False)
    world.headend.capture = None
    run = Run("fleet", world)
    hubs, units = fleet.build_fleet(world, 2, 2)
    fleet.join_all(world, run, hubs, units, 2)
    return world, run, hubs, units


def test_cycle_is_state_two_end_to_end(modules: tuple[Any, Any]) -> None:
    fleet, _ = modules
    world, run, hubs, units = small_fleet(fleet)
    unit = units[0]
    bench, home = fleet.cycle_hubs(world, run, 0)
    run.steps.clear()
    fleet.triage_cycle(world, run, hubs[0], unit, bench, home, 0)
    codes = [s.message_code for s in run.steps]
    # CCS07, CCS03, rejoin, CS07, CS02f, leave, CCS02 x2, CCS01, install-code join
    assert codes[:2] == [0x00FE, 0x0003]
    assert 0x0013 in codes and 0x7F00 in codes and codes.count(0x0002) == 2
    assert codes[-2] == 0x0001 and run.steps[-1].use_case == "install-code join"
    assert all(s.ok for s in run.steps)
    assert unit.node.joins == 2 and unit.node.rejoins == 1
    assert world.logs_holding(unit) == [home.eui64]


def test_floor_records_leaves_only(modules: tuple[Any, Any]) -> None:
    """Every recorded call is a leaf: none runs inside another, so none counts twice."""
    fleet, crypto_floor = modules
    world, run, hubs, units = small_fleet(fleet)
    bench, home = fleet.cycle_hubs(world, run, 0)
    depth = 0
    nested: list[str] = []
    called: set[str] = set()
    saved = []
    for module, name in crypto_floor.CRYPTO_CALLS:
        original = getattr(module, name)
        saved.append((module, name, original))

        def probe(*args: Any, _f: Any = original, _n: str = name, **kwargs: Any) -> Any:
            nonlocal depth
            called.add(_n)
            if depth:
                nested.append(_n)
            depth += 1
            try:
                return _f(*args, **kwargs)
            finally:
                depth -= 1

        setattr(module, name, probe)
    try:
        with crypto_floor.recording() as calls:
            fleet.triage_cycle(world, run, hubs[0], units[0], bench, home, 0)
    finally:
        for module, name, original in saved:
            setattr(module, name, original)
    assert nested == []
    names = called
    assert len(calls) > 50
    # The cycle's whole crypto mix shows up: GBCS, ZigBee CCM* and key derivations.
    for leaf in ("ecdh", "kdf", "gmac", "ecdsa_sign", "ecdsa_verify", "seal", "unseal"):
        assert leaf in names
    assert "aes_mmo_hash" in names  # the install-code key's hash, not its CRC
    assert crypto_floor.replay(calls) > 0


def test_per_step_breakdown_covers_every_step_of_the_cycle(modules: tuple[Any, Any]) -> None:
    fleet, _ = modules
    from emulators.scenarios import Run
    from emulators.world import World

    world = World(5, capture=False)
    world.headend.capture = None
    run = Run("fleet", world)
    hubs, units = fleet.build_fleet(world, 2, 2)
    fleet.join_all(world, run, hubs, units, 2)
    header, *rows = fleet.per_step(world, run, hubs, units, 2, 2)
    assert header.split() == ["step", "ms", "floor", "ms", "ratio", "events"]
    names = [n for n, _ in fleet.cycle_steps(world, run, hubs[0], units[0], hubs[0], hubs[1])]
    assert [r[:22].strip() for r in rows] == names
    by_name = {r[:22].strip(): r[22:].split() for r in rows}
    # The joins run the clock (scan, association, keys); the WAN-side steps do not.
    assert float(by_name["install-code join"][3]) > 10
    assert float(by_name["trust-centre rejoin"][3]) > 10
    assert float(by_name["CCS07 on the old CHF"][3]) == 0
    assert float(by_name["CS02f"][1]) > 0  # signed response: crypto in the floor
    # Every meter used went to its third HAN: none left in two logs.
    assert all(len(world.logs_holding(u)) <= 1 for u in units)
    with pytest.raises(SystemExit, match="needs 4 untouched meters"):
        fleet.per_step(world, run, hubs, units, 2, 2)


def test_fixture_hubs_have_had_their_first_contact(modules: tuple[Any, Any]) -> None:
    """The bench and third hubs are fixtures: their keys and ECDH with the ACB are behind
    them when the cycle starts, so the cycle's floor holds no set-up of theirs."""
    from gbcs import crypto

    fleet, crypto_floor = modules
    world, run, hubs, units = small_fleet(fleet)

    def key_agreements(bench: Any, home: Any, unit: Any) -> int:
        with crypto_floor.recording() as calls:
            fleet.triage_cycle(world, run, hubs[0], unit, bench, home, 0)
        return sum(1 for f, _, _ in calls if f is crypto.ecdh)

    before = list(run.steps)
    warmed = fleet.cycle_hubs(world, run, 0)
    assert run.steps == before  # the warming CCS07s are not cycle steps
    raw = (
        world.add_hub("raw-bench", bytes.fromhex("00DB6000FFFF0000")),
        world.add_hub("raw-home", bytes.fromhex("00DB7000FFFF0000")),
    )
    # Each fresh hub agrees two keys with the ACB on first contact (CCS03 / CCS01).
    assert key_agreements(*raw, units[0]) - key_agreements(*warmed, units[1]) == 4


def test_too_few_meters_for_the_cycles_is_a_clear_exit(modules: tuple[Any, Any]) -> None:
    fleet, _ = modules
    with pytest.raises(SystemExit, match="14 cycles and a warm-up need 15 meters; the fleet has 6"):
        fleet.main(["--hans", "3", "--meters", "2", "--cycles", "14"])


@pytest.mark.parametrize("hans", [1, 3, 2000, 7919, 2 * 7919, 7919 * 7921])
def test_the_cycles_visit_every_han_before_any_twice(modules: tuple[Any, Any], hans: int) -> None:
    fleet, _ = modules
    stride = fleet.han_stride(hans)
    seen = {(i * stride) % hans for i in range(min(hans, 5000))}
    assert len(seen) == min(hans, 5000)
