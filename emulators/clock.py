"""Simulated time for the emulated HAN.

Nothing in the emulated world sleeps: timers go into a queue and
:meth:`VirtualClock.run` jumps straight to the next one, so a GSME that wakes
every 30 s costs no wall-clock time and a run is reproducible event by event.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_EPOCH", "Timer", "VirtualClock"]

DEFAULT_EPOCH = dt.datetime(2026, 11, 21, 9, 0, 0, tzinfo=dt.UTC)


@dataclass(slots=True, eq=False)
class Timer:
    """A scheduled callback; the queue orders timers by due time, then scheduling order."""

    due: float
    seq: int
    callback: Callable[..., Any]
    args: tuple[Any, ...] = ()
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualClock:
    """A discrete-event clock: ``now`` only moves when :meth:`run` takes the next timer."""

    def __init__(self, epoch: dt.datetime = DEFAULT_EPOCH, start: float = 0.0) -> None:
        if epoch.tzinfo is None:
            raise ValueError("the clock epoch must be timezone-aware (UTC)")
        self.epoch = epoch
        self.now = start
        # (due, seq, timer): tuples compare in C, far faster than dataclass ordering.
        self._queue: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self.events_run = 0

    @property
    def utc(self) -> dt.datetime:
        return self.epoch + dt.timedelta(seconds=self.now)

    def call_at(self, due: float, callback: Callable[..., Any], *args: Any) -> Timer:
        if due < self.now:
            due = self.now
        seq = next(self._seq)
        timer = Timer(due, seq, callback, args)
        heapq.heappush(self._queue, (due, seq, timer))
        return timer

    def call_later(self, delay: float, callback: Callable[..., Any], *args: Any) -> Timer:
        if delay < 0:
            raise ValueError(f"a delay cannot be negative ({delay})")
        return self.call_at(self.now + delay, callback, *args)

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> Timer:
        return self.call_at(self.now, callback, *args)

    def at(self, seconds: float) -> dt.datetime:
        """The UTC time of simulated second ``seconds``."""
        return self.epoch + dt.timedelta(seconds=seconds)

    def pending(self) -> int:
        return sum(1 for _, _, t in self._queue if not t.cancelled)

    def next_due(self) -> float | None:
        queue = self._queue
        while queue and queue[0][2].cancelled:
            heapq.heappop(queue)
        return queue[0][0] if queue else None

    def step(self) -> bool:
        """Run the next timer; False when nothing is scheduled."""
        while self._queue:
            timer = heapq.heappop(self._queue)[2]
            if timer.cancelled:
                continue
            self.now = max(self.now, timer.due)
            self.events_run += 1
            timer.callback(*timer.args)
            return True
        return False

    def run(self, until: float | None = None, *, max_events: int = 10_000_000) -> int:
        """Run timers in order up to ``until`` (absolute seconds), or until none is left.

        Returns how many ran. ``max_events`` stops a runaway feedback loop with
        an error rather than hanging a test.
        """
        ran = 0
        while True:
            due = self.next_due()
            if due is None or (until is not None and due > until):
                break
            if ran >= max_events:
                raise RuntimeError(f"virtual clock ran {ran} events without settling")
            self.step()
            ran += 1
        if until is not None and until > self.now:
            self.now = until
        return ran

    def run_for(self, seconds: float, *, max_events: int = 10_000_000) -> int:
        return self.run(self.now + seconds, max_events=max_events)

    def run_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float,
        max_events: int = 10_000_000,
    ) -> bool:
        """Run until ``condition()`` holds or ``timeout`` simulated seconds pass."""
        deadline = self.now + timeout
        ran = 0
        while not condition():
            due = self.next_due()
            if due is None or due > deadline:
                self.now = max(self.now, deadline)
                return condition()
            if ran >= max_events:
                raise RuntimeError(f"virtual clock ran {ran} events without settling")
            self.step()
            ran += 1
        return True
