"""Simulated time for the emulated HAN.

Nothing in the emulated world sleeps: timers go into a queue and
:meth:`VirtualClock.run` jumps straight to the next one, so a GSME that wakes
every 30 s costs no wall-clock time and a run is reproducible event by event.

:class:`WallClock` is the same interface on real time, for a world that drives
real radios (zigpy over a serial port): its ``run*`` methods wait, turning an
asyncio event loop meanwhile so the radio's I/O and tasks progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import operator
import time
from collections.abc import Awaitable, Callable
from heapq import heappop, heappush
from typing import Any

__all__ = [
    "DEFAULT_EPOCH",
    "NEAR",
    "WALL_SLICE",
    "Timer",
    "VirtualClock",
    "WallClock",
    "check_duration",
]

DEFAULT_EPOCH = dt.datetime(2026, 11, 21, 9, 0, 0, tzinfo=dt.UTC)
WALL_SLICE = 0.05  # longest a WallClock runs its event loop before looking at its timers again
CANCEL_GRACE = 5.0  # seconds a timed-out coroutine gets to unwind after it is cancelled


NEAR = 1.0  # timers due within this many seconds go into the small heap; the rest wait apart
_INF = float("inf")


def check_duration(seconds: float, what: str) -> None:
    """A run's length or a wait's timeout: finite and not negative. NaN or infinity would
    run the clock until its event limit (minutes of wall time), a negative one nothing."""
    if not 0 <= seconds < _INF:  # NaN fails this too
        raise ValueError(f"{what} must be finite and not negative ({seconds})")


class Timer(list):  # type: ignore[type-arg]
    """A scheduled callback, and its own entry in the clock's queue.

    It is ``[due, seq, callback, args, cancelled]``: lists compare in C item by
    item, so the queue orders timers by due time, then scheduling order (``seq``
    is unique, so the callback is never compared), with no wrapper tuple or
    Python ``__init__`` per event. The clock creates timers; use the attributes.
    """

    __slots__ = ()

    due = property(operator.itemgetter(0))
    seq = property(operator.itemgetter(1))
    callback = property(operator.itemgetter(2))
    args = property(operator.itemgetter(3))
    cancelled = property(operator.itemgetter(4))

    def cancel(self) -> None:
        self[4] = True


class VirtualClock:
    """A discrete-event clock: ``now`` only moves when :meth:`run` takes the next timer.

    The queue is two heaps of :class:`Timer` entries: timers due within
    :data:`NEAR` seconds of their booking (frames, acks, turnarounds: nearly
    every event) and the rest (keep-alives, polls, retries), so the busy heap
    stays a few entries deep. The next timer is the smaller of the two heads,
    which is exactly the order of one queue.
    """

    def __init__(self, epoch: dt.datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        if epoch.tzinfo is None:
            raise ValueError("the clock epoch must be timezone-aware (UTC)")
        self.epoch = epoch
        self.now = start
        self._near: list[list[Any]] = []
        self._far: list[list[Any]] = []
        self._seq = itertools.count()
        self.events_run = 0
        self._utc_at: float | None = None  # the now, epoch and UTC time utc last computed
        self._utc_epoch = epoch
        self._utc_value = epoch

    @property
    def utc(self) -> dt.datetime:
        # Every response and alert stamps the time, often several at one instant.
        now = self.now
        if now == self._utc_at and self._utc_epoch is self.epoch:
            return self._utc_value
        value = self.epoch + dt.timedelta(seconds=now)
        self._utc_at, self._utc_epoch, self._utc_value = now, self.epoch, value
        return value

    def call_at(self, due: float, callback: Callable[..., Any], *args: Any) -> Timer:
        now = self.now
        if not due < _INF:  # NaN too: it would never run, and poison the heap's order
            raise ValueError(f"a due time must be finite ({due})")
        if due < now:
            due = now
        timer = Timer((due, next(self._seq), callback, args, False))
        heappush(self._near if due - now < NEAR else self._far, timer)
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        if not 0 <= delay < _INF:  # NaN fails this too
            raise ValueError(f"a delay must be finite and not negative ({delay})")
        # call_at inlined: every frame books two or three timers.
        timer = Timer((self.now + delay, next(self._seq), callback, args, False))
        heappush(self._near if delay < NEAR else self._far, timer)
        return timer

    def post(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        """:meth:`call_later` for a callback nobody cancels (a frame's arrival): no handle.

        The entry is a plain list, cheaper to make than a :class:`Timer` and
        ordered with them exactly the same.
        """
        if not 0 <= delay < _INF:  # NaN fails this too
            raise ValueError(f"a delay must be finite and not negative ({delay})")
        heappush(
            self._near if delay < NEAR else self._far,
            [self.now + delay, next(self._seq), callback, args, False],
        )

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.now, callback, *args)

    def at(self, seconds: float) -> dt.datetime:
        """The UTC time of simulated second ``seconds``."""
        return self.epoch + dt.timedelta(seconds=seconds)

    def pending(self) -> int:
        return sum(1 for t in self._near if not t[4]) + sum(1 for t in self._far if not t[4])

    def _head(self) -> list[list[Any]] | None:
        """The heap whose first entry is the next live timer (cancelled heads dropped)."""
        near, far = self._near, self._far
        while near and near[0][4]:
            heappop(near)
        while far and far[0][4]:
            heappop(far)
        if near:
            return far if far and far[0] < near[0] else near
        return far if far else None

    def next_due(self) -> float | None:
        queue = self._head()
        return None if queue is None else queue[0][0]

    def step(self) -> bool:
        """Run the next timer; False when nothing is scheduled."""
        queue = self._head()
        if queue is None:
            return False
        timer = heappop(queue)
        if timer[0] > self.now:
            self.now = timer[0]
        self.events_run += 1
        timer[2](*timer[3])
        return True

    def run(self, until: float | None = None, *, max_events: int = 10_000_000) -> int:
        """Run timers in order up to ``until`` (absolute seconds), or until none is left.

        Returns how many ran. ``max_events`` stops a runaway feedback loop with
        an error rather than hanging a test.
        """
        if until is not None and not until < _INF:
            raise ValueError(f"a run must end at a finite time ({until})")
        ran = 0
        while True:
            queue = self._head()
            if queue is None or (until is not None and queue[0][0] > until):
                break
            if ran >= max_events:
                raise RuntimeError(f"virtual clock ran {ran} events without settling")
            timer = heappop(queue)
            if timer[0] > self.now:
                self.now = timer[0]
            self.events_run += 1
            timer[2](*timer[3])
            ran += 1
        if until is not None and until > self.now:
            self.now = until
        return ran

    def run_for(self, seconds: float, *, max_events: int = 10_000_000) -> int:
        check_duration(seconds, "a run's length")
        return self.run(self.now + seconds, max_events=max_events)

    def run_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float,
        max_events: int = 10_000_000,
    ) -> bool:
        """Run until ``condition()`` holds or ``timeout`` simulated seconds pass."""
        check_duration(timeout, "a timeout")
        deadline = self.now + timeout
        ran = 0
        near, far = self._near, self._far
        pop = heappop
        # _head() and step() inlined: this loop runs every event of a scenario.
        while not condition():
            while near and near[0][4]:
                pop(near)
            while far and far[0][4]:
                pop(far)
            if near:
                queue = far if far and far[0] < near[0] else near
            elif far:
                queue = far
            else:
                queue = None
            if queue is None or queue[0][0] > deadline:
                self.now = max(self.now, deadline)
                return condition()
            if ran >= max_events:
                raise RuntimeError(f"virtual clock ran {ran} events without settling")
            timer = pop(queue)
            if timer[0] > self.now:
                self.now = timer[0]
            self.events_run += 1
            timer[2](*timer[3])
            ran += 1
        return True


class WallClock(VirtualClock):
    """Real time: ``now`` is seconds of ``time.monotonic()`` since the clock started.

    Timers fire once real time reaches them. :meth:`run`, :meth:`run_for`,
    :meth:`run_until` and :meth:`step` really wait, running :attr:`loop` (an
    asyncio event loop, its own unless given) in slices of at most
    :data:`WALL_SLICE` seconds, so a zigpy radio's serial I/O and tasks go on
    while the world waits; due timers run between slices. A timer booked from
    inside a slice for before the slice ends stops the loop early.

    While the clock catches up on timers that became due during a slice, each
    runs with ``now`` at its own due time, as on a :class:`VirtualClock`: the
    emulated radios' sub-millisecond MAC timing (turnarounds, ACK waits) then
    holds although Python and the OS wake late. Outside a timer, ``now`` is the
    wall time. ``utc`` is the real UTC time unless another ``epoch`` is given.
    Like :class:`VirtualClock` it is single-threaded: book timers from the
    thread that runs it.
    """

    def __init__(
        self,
        epoch: dt.datetime | None = None,
        start: float = 0.0,
        *,
        loop: asyncio.AbstractEventLoop | None = None,
        slice_seconds: float = WALL_SLICE,
    ) -> None:
        if slice_seconds <= 0:
            raise ValueError(f"a slice must be positive ({slice_seconds})")
        self._origin = time.monotonic() - start
        self._pinned: float | None = None  # the due time of the timer running now
        self._slice_end: float | None = None  # while the loop runs: when this slice ends
        self.slice_seconds = slice_seconds
        self.loop = loop if loop is not None else asyncio.new_event_loop()
        self._owns_loop = loop is None
        super().__init__(epoch if epoch is not None else dt.datetime.now(dt.UTC), start)

    # Time ---------------------------------------------------------------------------
    @property  # type: ignore[override]
    def now(self) -> float:
        pinned = self._pinned
        return pinned if pinned is not None else time.monotonic() - self._origin

    @now.setter
    def now(self, value: float) -> None:
        """Re-reads the wall clock from ``value`` on (a restored world's saved time)."""
        self._origin = time.monotonic() - value
        if self._pinned is not None:
            self._pinned = value

    def elapsed(self) -> float:
        """Wall seconds since the start, even inside a timer (where ``now`` is its due time)."""
        return time.monotonic() - self._origin

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        if not 0 <= delay < _INF:  # NaN fails this too
            raise ValueError(f"a delay must be finite and not negative ({delay})")
        return self.call_at(self.now + delay, callback, *args)

    def post(self, delay: float, callback: Callable[..., Any], *args: Any) -> None:
        """Through :meth:`call_at`, which stops a running slice for an early timer."""
        self.call_later(delay, callback, *args)

    def call_at(self, due: float, callback: Callable[..., Any], *args: Any) -> Timer:
        timer = super().call_at(due, callback, *args)
        end = self._slice_end
        if end is not None and timer[0] < end and self.loop.is_running():
            self.loop.stop()  # booked from inside a slice: fire it on time, not at the slice end
        return timer

    # Running --------------------------------------------------------------------------
    def _fire(self, horizon: float, limit: int) -> int:
        """Run up to ``limit`` timers due by ``horizon``, each with ``now`` at its due time."""
        ran = 0
        outer = self._pinned
        try:
            while ran < limit:
                queue = self._head()
                if queue is None or queue[0][0] > horizon:
                    break
                timer = heappop(queue)
                due = timer[0]
                self._pinned = due if self._pinned is None else max(self._pinned, due)
                self.events_run += 1
                ran += 1
                timer[2](*timer[3])
        finally:
            self._pinned = outer
        return ran

    def _turn(self, seconds: float) -> None:
        """Run the event loop for ``seconds`` (0: one pass over what is ready and I/O)."""
        loop = self.loop
        if loop.is_running():
            raise RuntimeError(
                "a WallClock cannot wait inside its own running event loop "
                "(call run/run_until from synchronous code, not from a coroutine or callback)"
            )
        if loop.is_closed():
            raise RuntimeError("the WallClock's event loop is closed")
        outer = self._pinned
        self._pinned = None  # coroutines see the wall time
        self._slice_end = self.elapsed() + seconds
        handle = loop.call_later(seconds, loop.stop)
        try:
            loop.run_forever()
        finally:
            handle.cancel()
            self._slice_end = None
            self._pinned = outer

    def _drive(
        self,
        condition: Callable[[], bool] | None,
        deadline: float | None,
        max_events: int,
    ) -> tuple[bool, int]:
        """Fire due timers and turn the loop until ``condition``, ``deadline`` or no timers."""
        ran = 0
        while True:
            ran += self._fire(self.elapsed(), max_events - ran)
            if condition is not None and condition():
                return True, ran
            due = self.next_due()
            if due is not None and due <= self.elapsed():
                if ran >= max_events:
                    raise RuntimeError(f"wall clock ran {ran} events without settling")
                self._turn(0.0)  # behind: let I/O in, then catch up
                continue
            now = self.elapsed()
            if deadline is not None and now >= deadline:
                return False, ran
            if condition is None and deadline is None and due is None:
                self._turn(0.0)  # a task may still book a timer
                if self.next_due() is None:
                    return True, ran
                continue
            wait = self.slice_seconds
            if due is not None:
                wait = min(wait, due - now)
            if deadline is not None:
                wait = min(wait, deadline - now)
            self._turn(max(wait, 0.0))

    def step(self) -> bool:
        """Wait for the next timer and run it; False when nothing is scheduled."""
        while True:
            due = self.next_due()
            if due is None:
                return False
            now = self.elapsed()
            if due <= now:
                return self._fire(now, 1) == 1
            self._turn(min(due - now, self.slice_seconds))

    def run(self, until: float | None = None, *, max_events: int = 10_000_000) -> int:
        """Wait until real time reaches ``until`` (None: until no timer is left), firing timers."""
        if until is not None and not until < _INF:
            raise ValueError(f"a run must end at a finite time ({until})")
        return self._drive(None, until, max_events)[1]

    def run_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float,
        max_events: int = 10_000_000,
    ) -> bool:
        """Wait until ``condition()`` holds or ``timeout`` real seconds pass."""
        check_duration(timeout, "a timeout")
        if condition():
            return True
        ok, _ = self._drive(condition, self.elapsed() + timeout, max_events)
        return ok or condition()

    def complete(self, awaitable: Awaitable[Any], *, timeout: float) -> Any:
        """Run a coroutine on :attr:`loop` to its end while timers fire; its result.

        Raises :class:`TimeoutError` (after cancelling it) when it is not done
        within ``timeout`` seconds, so a silent port cannot hang a caller.
        """
        if self.loop.is_running():
            raise RuntimeError("complete() inside the WallClock's running event loop")
        task = asyncio.ensure_future(awaitable, loop=self.loop)
        if not self.run_until(task.done, timeout=timeout):
            task.cancel()
            self.run_until(task.done, timeout=CANCEL_GRACE)
            cause = task.exception() if task.done() and not task.cancelled() else None
            raise TimeoutError(f"not done within {timeout:g} s") from cause
        return task.result()

    def close(self) -> None:
        """Cancel the loop's remaining tasks, let them unwind and close the loop if it is ours."""
        loop = self.loop
        if loop.is_closed() or loop.is_running():
            return
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            gathered = asyncio.gather(*tasks, return_exceptions=True)
            with contextlib.suppress(TimeoutError):  # a task that will not unwind stays behind
                loop.run_until_complete(asyncio.wait_for(gathered, CANCEL_GRACE))
        if self._owns_loop:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
