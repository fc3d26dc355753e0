"""The kit's end-to-end triage scenarios on the world the plugin prepares.

On the default emulated backend this is the emulated HAN; with
``--han sim://bench`` the same scenarios run with zigpy driving the hubs' radio.
"""

from __future__ import annotations

import pytest

from emulators.scenarios import run_scenario
from emulators.world import World
from hardware.pytest_plugin import HanBackend, ZigpySimBackend


def _check_radios(han: HanBackend, world: World) -> None:
    """On sim:// every hub really ran on zigpy; on the default, on the emulated coordinator."""
    kinds = {type(h.node).__name__ for h in world.hubs.values()}
    assert kinds == ({"ZigpyHubRadio"} if isinstance(han, ZigpySimBackend) else {"CoordinatorNode"})


@pytest.mark.parametrize(
    "name", ["returned-meter", "other-region-meter", "removed-before-disconnect", "fresh-meter"]
)
def test_meter_is_triaged_and_divorced(name: str, han: HanBackend, world: World) -> None:
    run = run_scenario(name, world.seed, world=world)
    report = run.report(world.seed)
    assert report["ok"], [(s.use_case, s.result) for s in run.steps]
    assert run.world is world
    _check_radios(han, world)
    (meter,) = world.meters.values()
    uses = [s.use_case for s in run.steps]
    assert "CS07" in uses and "HAN leave (auto-join)" in uses
    if name == "other-region-meter":
        check = next(s for s in run.steps if s.use_case == "network operator check")
        assert check.result.startswith("OTHER REGION")
    if name == "removed-before-disconnect":
        check = next(s for s in run.steps if s.use_case == "stranded check")
        assert check.result.startswith("STRANDED")
    if name != "fresh-meter":  # ends joined to a third HAN, in that hub's log only
        third = next(h for h in world.hubs.values() if h.place == "site-3")
        assert world.joined_to(meter) == third.eui64
        assert world.logs_holding(meter) == [third.eui64]
    else:  # divorced: off every log, back to auto-join
        assert world.logs_holding(meter) == []


def test_dead_meter_is_reported_faulty(han: HanBackend, world: World) -> None:
    run = run_scenario("dead-meter", world.seed, world=world)
    verdict = run.steps[-1]
    assert verdict.use_case == "triage verdict"
    assert verdict.detail["verdict"].startswith("FAULTY")
    assert run.report(world.seed)["ok"]
    _check_radios(han, world)
