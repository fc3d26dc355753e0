"""VirtualClock: a discrete-event queue, ordered by due time then by scheduling order."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from emulators.clock import DEFAULT_EPOCH, NEAR, Timer, VirtualClock


def recorder(clock: VirtualClock) -> tuple[list[tuple[float, object]], object]:
    log: list[tuple[float, object]] = []

    def note(tag: object) -> None:
        log.append((clock.now, tag))

    return log, note


def test_new_clock_starts_at_epoch_with_nothing_queued() -> None:
    clock = VirtualClock()
    assert clock.now == 0.0
    assert clock.utc == DEFAULT_EPOCH == dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)
    assert clock.pending() == 0
    assert clock.next_due() is None
    assert clock.step() is False
    assert clock.run() == 0
    assert clock.events_run == 0


def test_naive_epoch_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(dt.datetime(2026, 1, 1))


def test_start_offset_and_utc() -> None:
    epoch = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    clock = VirtualClock(epoch, start=90.5)
    assert clock.utc == dt.datetime(2030, 1, 1, 0, 1, 30, 500000, tzinfo=dt.UTC)
    assert clock.at(3600) == dt.datetime(2030, 1, 1, 1, 0, tzinfo=dt.UTC)
    assert clock.at(-1) == dt.datetime(2029, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


def test_timers_run_in_due_order_and_time_jumps() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    clock.call_later(5.0, note, "c")
    clock.call_later(1.0, note, "a")
    clock.call_at(2.5, note, "b")
    assert clock.pending() == 3
    assert clock.next_due() == 1.0
    assert clock.run() == 3
    assert log == [(1.0, "a"), (2.5, "b"), (5.0, "c")]
    assert clock.now == 5.0
    assert clock.events_run == 3


def test_same_time_timers_run_first_in_first_out() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    for tag in range(10):
        clock.call_at(3.0, note, tag)
    clock.call_soon(note, "soon")  # now=0: before all of them
    clock.run()
    assert [t for _, t in log] == ["soon", *range(10)]


def test_callback_args_are_passed() -> None:
    clock = VirtualClock()
    got: list[tuple] = []
    clock.call_later(1, lambda *a: got.append(a), 1, "two", b"3")
    clock.run()
    assert got == [(1, "two", b"3")]


def test_timer_scheduled_from_a_callback_runs_after_the_current_time() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)

    def first() -> None:
        note("first")
        clock.call_soon(note, "soon-from-first")
        clock.call_later(1, note, "later-from-first")

    clock.call_at(1, first)
    clock.call_at(1, note, "second")
    clock.run()
    # FIFO at t=1: "second" was queued before "soon-from-first".
    assert log == [(1, "first"), (1, "second"), (1, "soon-from-first"), (2, "later-from-first")]


def test_cancel_skips_a_timer() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    keep = clock.call_later(1, note, "keep")
    drop = clock.call_later(0.5, note, "drop")
    drop.cancel()
    assert drop.cancelled and not keep.cancelled
    assert clock.pending() == 1
    assert clock.next_due() == 1  # the cancelled head is skipped
    assert clock.run() == 1
    assert log == [(1, "keep")]
    assert clock.events_run == 1


def test_cancel_from_another_callback() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    victim = clock.call_at(2, note, "victim")
    clock.call_at(1, victim.cancel)
    clock.run()
    assert log == []
    assert clock.now == 1


def test_cancelling_everything_leaves_an_empty_queue() -> None:
    clock = VirtualClock()
    timers = [clock.call_later(i, lambda: None) for i in range(3)]
    for t in timers:
        t.cancel()
    assert clock.pending() == 0
    assert clock.next_due() is None
    assert clock.step() is False
    assert clock.now == 0


def test_call_at_in_the_past_runs_now_not_back_in_time() -> None:
    clock = VirtualClock()
    clock.run(10)
    log, note = recorder(clock)
    timer = clock.call_at(3, note, "late")
    assert timer.due == 10
    clock.call_at(10, note, "on time")
    clock.run()
    assert log == [(10, "late"), (10, "on time")]
    assert clock.now == 10


@pytest.mark.parametrize("delay", [-0.001, -1, -1e9, float("nan"), float("inf")])
def test_negative_or_unending_delay_is_an_error(delay: float) -> None:
    """NaN and infinity were taken: the timer never ran, and clock.utc overflowed once the
    clock reached it (fault audit 7)."""
    clock = VirtualClock()
    with pytest.raises(ValueError, match="must be finite and not negative"):
        clock.call_later(delay, lambda: None)
    with pytest.raises(ValueError, match="must be finite and not negative"):
        clock.post(delay, lambda: None)
    if delay != delay or delay == float("inf"):
        with pytest.raises(ValueError, match="due time must be finite"):
            clock.call_at(delay, lambda: None)
    assert clock.pending() == 0


def test_zero_delay_is_allowed() -> None:
    clock = VirtualClock()
    ran: list[float] = []
    clock.call_later(0, lambda: ran.append(clock.now))
    clock.run()
    assert ran == [0]


def test_run_until_stops_at_the_limit_and_advances_time() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    for t in (1, 2, 3, 4):
        clock.call_at(t, note, t)
    assert clock.run(until=3) == 3  # an event due exactly at the limit runs
    assert [t for _, t in log] == [1, 2, 3]
    assert clock.now == 3
    assert clock.pending() == 1
    assert clock.run(until=3.5) == 0
    assert clock.now == 3.5
    assert clock.run() == 1
    assert clock.now == 4


def test_run_until_an_earlier_time_does_not_go_back() -> None:
    clock = VirtualClock()
    clock.run(100)
    assert clock.run(50) == 0
    assert clock.now == 100


def test_run_for_is_relative() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    clock.call_at(15, note, "x")
    assert clock.run_for(10) == 0
    assert clock.now == 10
    assert clock.run_for(10) == 1
    assert clock.now == 20
    assert log == [(15, "x")]


def test_run_until_condition_met() -> None:
    clock = VirtualClock()
    state = {"n": 0}

    def tick() -> None:
        state["n"] += 1
        clock.call_later(1, tick)

    clock.call_later(1, tick)
    assert clock.run_until(lambda: state["n"] >= 5, timeout=100)
    assert state["n"] == 5
    assert clock.now == 5  # stops at the event that made it true, not at the timeout


def test_run_until_already_true_runs_nothing() -> None:
    clock = VirtualClock()
    clock.call_later(1, lambda: None)
    assert clock.run_until(lambda: True, timeout=10)
    assert clock.now == 0
    assert clock.pending() == 1


def test_run_until_timeout_returns_false_at_the_deadline() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    clock.call_at(5, note, "in time")
    clock.call_at(50, note, "too late")
    assert clock.run_until(lambda: False, timeout=20) is False
    assert clock.now == 20
    assert log == [(5, "in time")]
    assert clock.pending() == 1


def test_run_until_with_empty_queue_jumps_to_deadline() -> None:
    clock = VirtualClock()
    assert clock.run_until(lambda: False, timeout=7) is False
    assert clock.now == 7


def test_run_until_condition_becoming_true_at_deadline_check() -> None:
    clock = VirtualClock()
    flag = {"v": False}
    clock.call_at(30, flag.update, {"v": True})
    # Nothing due before the deadline, so the final check sees the old value.
    assert clock.run_until(lambda: flag["v"], timeout=10) is False
    assert clock.run_until(lambda: flag["v"], timeout=30) is True
    assert clock.now == 30


def _runaway(clock: VirtualClock) -> None:
    clock.call_soon(_runaway, clock)


def test_max_events_stops_a_runaway_loop_in_run() -> None:
    clock = VirtualClock()
    clock.call_soon(_runaway, clock)
    with pytest.raises(RuntimeError, match="100 events without settling"):
        clock.run(max_events=100)
    assert clock.events_run == 100


def test_max_events_stops_a_runaway_loop_in_run_for_and_run_until() -> None:
    clock = VirtualClock()
    clock.call_soon(_runaway, clock)
    with pytest.raises(RuntimeError, match="without settling"):
        clock.run_for(1, max_events=50)
    with pytest.raises(RuntimeError, match="without settling"):
        clock.run_until(lambda: False, timeout=1, max_events=50)


def test_exactly_max_events_is_not_an_error() -> None:
    clock = VirtualClock()
    for i in range(5):
        clock.call_at(i, lambda: None)
    assert clock.run(max_events=5) == 5


def test_returned_timer_describes_the_schedule() -> None:
    clock = VirtualClock()
    clock.run(2)
    a = clock.call_later(3, print, "x")
    b = clock.call_soon(print)
    assert isinstance(a, Timer)
    assert (a.due, a.args, a.callback) == (5, ("x",), print)
    assert b.due == 2
    assert b.seq > a.seq
    assert not a.cancelled


@given(
    st.lists(
        st.tuples(st.integers(0, 20).map(lambda n: n / 4), st.booleans()), min_size=1, max_size=40
    )
)
def test_property_order_is_stable_sort_of_due_times(items: list[tuple[float, bool]]) -> None:
    clock = VirtualClock()
    ran: list[int] = []
    timers = []
    for i, (due, _) in enumerate(items):
        timers.append(clock.call_at(due, ran.append, i))
    for timer, (_, cancel) in zip(timers, items, strict=True):
        if cancel:
            timer.cancel()
    expected = [i for i, _ in sorted(enumerate(items), key=lambda p: p[1][0]) if not items[i][1]]
    assert clock.pending() == len(expected)
    assert clock.run() == len(expected)
    assert ran == expected
    if expected:
        assert clock.now == max(items[i][0] for i in expected)


@given(st.lists(st.integers(0, 100), max_size=30), st.integers(0, 100))
def test_property_run_until_limit(dues: list[int], limit: int) -> None:
    clock = VirtualClock()
    ran: list[int] = []
    for due in dues:
        clock.call_at(due, ran.append, due)
    assert clock.run(limit) == sum(1 for d in dues if d <= limit)
    assert ran == sorted(d for d in dues if d <= limit)
    assert clock.now == limit


@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.25, NEAR - 0.25, NEAR, NEAR + 0.5, 2 * NEAR, 30.0]),
            st.sampled_from(["call_later", "post", "call_at"]),
            st.booleans(),
            st.booleans(),
        ),
        min_size=1,
        max_size=40,
    )
)
def test_property_near_and_far_timers_run_as_one_queue(
    items: list[tuple[float, str, bool, bool]],
) -> None:
    # Timers due within NEAR and later ones wait in different heaps; booked while others
    # run (time has moved), equal due times from both must still run in booking order.
    clock = VirtualClock()
    ran: list[int] = []
    booked: list[tuple[float, int, bool]] = []  # due, index, cancelled

    def book(i: int) -> None:
        delay, how, cancel, _ = items[i]
        if how == "post":
            clock.post(delay, ran.append, i)
            cancel = False
        elif how == "call_at":
            timer = clock.call_at(clock.now + delay, ran.append, i)
        else:
            timer = clock.call_later(delay, ran.append, i)
        if cancel:
            timer.cancel()
        booked.append((clock.now + delay, i, cancel))

    early = [i for i, item in enumerate(items) if not item[3]]
    late = [i for i, item in enumerate(items) if item[3]]
    for i in early:
        book(i)
    clock.call_at(0.25, lambda: [book(i) for i in late])  # a quarter second in
    clock.run()
    expected = [i for _, i, cancelled in sorted(booked, key=lambda b: b[0]) if not cancelled]
    assert ran == expected
    assert clock.pending() == 0 and clock.next_due() is None


def test_post_books_like_call_later_without_a_handle() -> None:
    clock = VirtualClock()
    log, note = recorder(clock)
    assert clock.post(2 * NEAR, note, "far") is None
    clock.post(0.5, note, "near")
    later = clock.call_later(2 * NEAR, note, "far, booked later")
    assert clock.pending() == 3
    assert clock.next_due() == 0.5
    with pytest.raises(ValueError):
        clock.post(-1, note, "never")
    later.cancel()
    assert clock.run() == 2
    assert log == [(0.5, "near"), (2 * NEAR, "far")]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -5.0])
def test_runs_and_waits_refuse_times_that_never_or_already_end(bad: float) -> None:
    """NaN or infinity ran a world with a polling GSME for minutes, to the event limit; a
    negative length did nothing without a word."""
    clock = VirtualClock()
    fired: list[float] = []
    clock.call_later(1.0, lambda: fired.append(clock.now))
    with pytest.raises(ValueError, match="finite and not negative"):
        clock.run_for(bad)
    with pytest.raises(ValueError, match="finite and not negative"):
        clock.run_until(lambda: False, timeout=bad)
    if bad != -5.0:
        with pytest.raises(ValueError, match="finite time"):
            clock.run(bad)
    assert fired == [] and clock.now == 0.0  # nothing ran
