"""FaultPlan validation and parsing; FaultInjector decisions are reproducible from the seed."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.faults import NO_FAULTS, FaultInjector, FaultPlan

AIRTIME = 0.004

probabilities = st.floats(0.0, 1.0, allow_nan=False)
plans = st.builds(
    FaultPlan,
    loss=probabilities,
    duplication=probabilities,
    reordering=probabilities,
    delay=probabilities,
    max_delay=st.floats(0.0, 5.0, allow_nan=False),
    power_cycle=probabilities,
)


# FaultPlan ---------------------------------------------------------------------------


def test_default_plan_is_inactive() -> None:
    assert FaultPlan() == NO_FAULTS
    assert not NO_FAULTS.active
    assert NO_FAULTS.max_delay == 0.5
    assert NO_FAULTS.power_off_time == 2.0


@pytest.mark.parametrize("name", ["loss", "duplication", "reordering", "delay", "power_cycle"])
def test_each_probability_makes_the_plan_active(name: str) -> None:
    assert FaultPlan(**{name: 0.01}).active


def test_max_delay_alone_is_not_active() -> None:
    assert not FaultPlan(max_delay=3.0, power_off_time=9.0).active


@pytest.mark.parametrize("name", ["loss", "duplication", "reordering", "delay", "power_cycle"])
@pytest.mark.parametrize("value", [-0.01, 1.01, 2.0, float("inf")])
def test_probability_outside_0_1_is_refused(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=rf"fault probability {name}=.* outside 0\.\.1"):
        FaultPlan(**{name: value})


@pytest.mark.parametrize("name", ["loss", "power_cycle"])
def test_nan_probability_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        FaultPlan(**{name: float("nan")})


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_probability_bounds_are_inclusive(value: float) -> None:
    assert FaultPlan(loss=value, duplication=value).loss == value


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_delay": -0.1},
        {"power_off_time": -1},
        {"max_delay": float("nan")},
        {"power_off_time": float("inf")},
        {"max_delay": 3600.5},
    ],
)
def test_delays_outside_an_hour_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError, match=r"is outside 0\.\.3600 s"):
        FaultPlan(**kwargs)


def test_plan_is_frozen() -> None:
    plan = FaultPlan(loss=0.1)
    with pytest.raises(AttributeError):
        plan.loss = 0.2  # type: ignore[misc]


def test_parse_as_typed_on_the_command_line() -> None:
    plan = FaultPlan.parse("loss=0.1,duplication=0.05")
    assert plan == FaultPlan(loss=0.1, duplication=0.05)


def test_parse_all_fields_with_spaces_and_empty_items() -> None:
    plan = FaultPlan.parse(
        " loss=0.1 , , duplication=0.2,reordering=0.3,delay=0.4,max_delay=1.5,"
        "power_cycle=0.01,power_off_time=3,"
    )
    assert plan == FaultPlan(0.1, 0.2, 0.3, 0.4, 1.5, 0.01, 3.0)


@pytest.mark.parametrize("text", ["", " ", ",,"])
def test_parse_nothing_is_no_faults(text: str) -> None:
    assert FaultPlan.parse(text) == NO_FAULTS


def test_parse_refuses_a_setting_given_twice() -> None:
    """Nothing the user typed is silently dropped: which of two values was meant?"""
    with pytest.raises(ValueError, match="fault setting loss is given twice"):
        FaultPlan.parse("loss=0.1,loss=0.3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("drop=0.1", "unknown fault setting 'drop' (the settings: {NAMES})"),
        ("loss", "fault setting loss needs =VALUE"),
        ("loss:0.1", "unknown fault setting 'loss:0.1' (the settings: {NAMES})"),
        ("Loss=0.1", "unknown fault setting 'Loss' (the settings: {NAMES})"),
        ("loss=lots", "fault setting loss needs a number, got 'lots'"),
        ("loss=", "fault setting loss needs a number, got ''"),
        # float() takes these; a lab engineer typing them meant something else.
        ("loss=1_0", "fault setting loss needs a number, got '1_0'"),
        ("loss=\u0661", "fault setting loss needs a number, got '\u0661'"),
        ("max_delay=inf", "fault setting max_delay needs a number, got 'inf'"),
        ("loss=nan", "fault setting loss needs a number, got 'nan'"),
        ("loss=1.5", "fault probability loss=1.5 is outside 0..1"),
        ("max_delay=-2", "fault setting max_delay=-2.0 is outside 0..3600 s"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        FaultPlan.parse(text)
    assert str(info.value) == message.replace("{NAMES}", NAMES)


NAMES = "loss, duplication, reordering, delay, max_delay, power_cycle, power_off_time"


@pytest.mark.parametrize("text", ["loss=.5", "loss=+0.5", "loss=5e-1", "max_delay=1E2"])
def test_parse_plain_decimals(text: str) -> None:
    assert FaultPlan.parse(text) != FaultPlan()


@given(plans)
def test_property_parse_round_trips_repr_of_fields(plan: FaultPlan) -> None:
    text = ",".join(f"{name}={getattr(plan, name)!r}" for name in FaultPlan.__dataclass_fields__)
    assert FaultPlan.parse(text) == plan


# FaultInjector -------------------------------------------------------------------------


def draws(injector: FaultInjector, n: int) -> list[tuple[list[float], bool]]:
    return [(injector.copies(AIRTIME), injector.power_cycle()) for _ in range(n)]


def test_no_faults_passes_every_frame_once_at_its_airtime() -> None:
    injector = FaultInjector()
    assert [injector.copies(AIRTIME) for _ in range(100)] == [[AIRTIME]] * 100
    assert not any(injector.power_cycle() for _ in range(100))
    assert set(injector.counts.values()) == {0}
    # Nothing was drawn, so the generator is where a fresh one would be.
    assert injector._random.random() == FaultInjector(seed=0)._random.random()


@given(plans, st.integers(-(2**63), 2**63), st.integers(1, 60))
def test_property_same_seed_same_decisions(plan: FaultPlan, seed: int, n: int) -> None:
    a, b = FaultInjector(plan, seed), FaultInjector(plan, seed)
    assert draws(a, n) == draws(b, n)
    assert a.counts == b.counts


def test_different_seeds_decide_differently() -> None:
    plan = FaultPlan(loss=0.5, duplication=0.5, delay=0.5, reordering=0.5, power_cycle=0.5)
    assert draws(FaultInjector(plan, 1), 50) != draws(FaultInjector(plan, 2), 50)


def test_a_seed_and_its_negation_decide_differently() -> None:
    """random.Random(int) ignores the sign: seeds N and -N drew the same faults."""
    plan = FaultPlan(loss=0.5, duplication=0.5, delay=0.5, reordering=0.5, power_cycle=0.5)
    for seed in (1, 7, 2**63 - 1):
        assert draws(FaultInjector(plan, seed), 50) != draws(FaultInjector(plan, -seed), 50)


def test_seed_is_kept() -> None:
    assert FaultInjector(FaultPlan(loss=0.5), seed=42).seed == 42


def test_loss_one_loses_everything() -> None:
    injector = FaultInjector(FaultPlan(loss=1.0, duplication=1.0), seed=3)
    assert all(injector.copies(AIRTIME) == [] for _ in range(200))
    assert injector.counts == {
        "lost": 200,
        "duplicated": 0,
        "reordered": 0,
        "delayed": 0,
        "power_cycles": 0,
    }


def test_duplication_one_gives_two_copies() -> None:
    injector = FaultInjector(FaultPlan(duplication=1.0), seed=5)
    for _ in range(200):
        first, second = injector.copies(AIRTIME)
        assert first == AIRTIME
        assert AIRTIME + 0.5 * AIRTIME <= second <= AIRTIME + 2.0 * AIRTIME
    assert injector.counts["duplicated"] == 200
    assert injector.counts["lost"] == 0


def test_delay_one_holds_every_frame_within_max_delay() -> None:
    injector = FaultInjector(FaultPlan(delay=1.0, max_delay=0.25), seed=9)
    delays = [injector.copies(AIRTIME) for _ in range(300)]
    assert all(len(d) == 1 and AIRTIME <= d[0] <= AIRTIME + 0.25 for d in delays)
    assert len({d[0] for d in delays}) > 250  # actually random, not one fixed delay
    assert injector.counts["delayed"] == 300


def test_reordering_one_holds_each_frame_past_a_later_one() -> None:
    injector = FaultInjector(FaultPlan(reordering=1.0), seed=11)
    for _ in range(200):
        (delay,) = injector.copies(AIRTIME)
        assert AIRTIME * 2.5 <= delay <= AIRTIME * 5.0
    assert injector.counts["reordered"] == 200


def test_partial_loss_rate_is_roughly_the_plan() -> None:
    injector = FaultInjector(FaultPlan(loss=0.3), seed=1)
    lost = sum(1 for _ in range(5000) if not injector.copies(AIRTIME))
    assert lost == injector.counts["lost"]
    assert 1300 < lost < 1700


def test_power_cycle_probability_extremes() -> None:
    never = FaultInjector(FaultPlan(loss=0.5), seed=1)
    assert not any(never.power_cycle() for _ in range(100))
    assert never.counts["power_cycles"] == 0
    always = FaultInjector(FaultPlan(power_cycle=1.0), seed=1)
    assert all(always.power_cycle() for _ in range(100))
    assert always.counts["power_cycles"] == 100


@given(plans, st.integers(0, 2**32))
def test_property_copies_shape(plan: FaultPlan, seed: int) -> None:
    injector = FaultInjector(plan, seed)
    total = 0
    for _ in range(30):
        copies = injector.copies(AIRTIME)
        total += len(copies)
        assert len(copies) <= 2
        assert all(c >= AIRTIME for c in copies)
        assert copies == sorted(copies)
    counts = injector.counts
    if plan.active:
        assert total == 30 - counts["lost"] + counts["duplicated"]


def test_a_saved_injector_goes_on_drawing_where_it_stood() -> None:
    """A world saved mid-run and loaded again replays the same faults from there on (the
    module's promise: a run with faults replays exactly from its seed), with its counts."""
    plan = FaultPlan(loss=0.3, duplication=0.3, delay=0.3, reordering=0.3, power_cycle=0.3)
    running = FaultInjector(plan, seed=7)
    draws(running, 40)
    saved = json.loads(json.dumps(running.state()))
    loaded = FaultInjector.from_state(saved, seed=7)
    assert loaded.counts == running.counts and sum(loaded.counts.values()) > 0
    assert draws(loaded, 40) == draws(running, 40)
    assert loaded.counts == running.counts
