"""Seeded fault injection for the emulated HAN medium.

Every decision comes from one ``random.Random`` seeded from the run's seed,
drawn in the order frames are transmitted, and the virtual clock orders events deterministically,
so a run with faults replays exactly from its seed.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["NO_FAULTS", "FaultInjector", "FaultPlan"]


MAX_FAULT_DELAY = 3600.0  # seconds: an hour of delay or darkness is already no HAN


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """Per-frame probabilities (0..1) and the bounds of injected delays (seconds)."""

    loss: float = 0.0
    duplication: float = 0.0
    reordering: float = 0.0
    delay: float = 0.0  # probability that a frame is held back by up to max_delay
    max_delay: float = 0.5
    power_cycle: float = 0.0  # probability, per frame a device receives, of a power cycle first
    power_off_time: float = 2.0

    def __post_init__(self) -> None:
        for name in ("loss", "duplication", "reordering", "delay", "power_cycle"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"fault probability {name}={value} is outside 0..1")
        for name in ("max_delay", "power_off_time"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_FAULT_DELAY:  # NaN fails this too
                raise ValueError(
                    f"fault setting {name}={value} is outside 0..{MAX_FAULT_DELAY:g} s"
                )

    @property
    def active(self) -> bool:
        return any((self.loss, self.duplication, self.reordering, self.delay, self.power_cycle))

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """``loss=0.1,duplication=0.05`` as a lab engineer types it on the command line."""
        values: dict[str, float] = {}
        known = cls.__dataclass_fields__
        for item in filter(None, (p.strip() for p in text.split(","))):
            name, sep, number = (part.strip() for part in item.partition("="))
            if name not in known:
                raise ValueError(
                    f"unknown fault setting {name!r} (the settings: {', '.join(known)})"
                )
            if not sep:
                raise ValueError(f"fault setting {name} needs =VALUE")
            if name in values:  # the earlier value would be silently lost
                raise ValueError(f"fault setting {name} is given twice")
            # float() also takes 1_0, inf and digits of other scripts: a plain decimal only.
            if _DECIMAL.fullmatch(number) is None:
                raise ValueError(f"fault setting {name} needs a number, got {number!r}")
            values[name] = float(number)
        return cls(**values)


NO_FAULTS = FaultPlan()
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)


class FaultInjector:
    """Draws the fate of each transmitted frame: the delays of its copies (none = lost)."""

    def __init__(self, plan: FaultPlan = NO_FAULTS, seed: int = 0) -> None:
        self.plan = plan
        self.seed = seed
        # A string seed: random.Random(int) ignores an integer's sign (N and -N would draw
        # the same faults); a string is hashed whole, the same in every process.
        self._random = random.Random(f"gbcs-hil faults {seed}")
        self.counts = {"lost": 0, "duplicated": 0, "reordered": 0, "delayed": 0, "power_cycles": 0}

    def state(self) -> dict[str, Any]:
        """The plan, the counts and where the random stream stands, as JSON."""
        version, internal, gauss = self._random.getstate()
        return {
            "plan": asdict(self.plan),
            "counts": dict(self.counts),
            "random": {"version": version, "state": list(internal), "gauss": gauss},
        }

    @classmethod
    def from_state(cls, obj: Any, seed: int) -> FaultInjector:
        """The injector :meth:`state` describes; ValueError or TypeError when damaged."""
        if not isinstance(obj, dict) or set(obj) != {"plan", "counts", "random"}:
            raise ValueError("faults needs exactly plan, counts and random")
        plan_fields = obj["plan"]
        if not isinstance(plan_fields, dict) or set(plan_fields) != set(
            FaultPlan.__dataclass_fields__
        ):
            raise ValueError("faults.plan does not name every fault setting")
        for name, value in plan_fields.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"faults.plan.{name} is not a number")
        injector = cls(FaultPlan(**plan_fields), seed)
        counts = obj["counts"]
        if not isinstance(counts, dict) or set(counts) != set(injector.counts):
            raise ValueError("faults.counts does not name every kind of fault")
        for name, value in counts.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise TypeError(f"faults.counts.{name} is not a count")
        stream = obj["random"]
        if not isinstance(stream, dict) or set(stream) != {"version", "state", "gauss"}:
            raise ValueError("faults.random needs version, state and gauss")
        internal = stream["state"]
        if not isinstance(internal, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in internal
        ):
            raise TypeError("faults.random.state is not a list of integers")
        gauss = stream["gauss"]
        if gauss is not None and (isinstance(gauss, bool) or not isinstance(gauss, int | float)):
            raise TypeError("faults.random.gauss is not a number")
        injector._random.setstate((stream["version"], tuple(internal), gauss))
        injector.counts = dict(counts)
        return injector

    def copies(self, airtime: float) -> list[float]:
        """Delays after which copies of one frame arrive; ``[]`` means the frame is lost."""
        plan = self.plan
        if not plan.active:
            return [airtime]
        r = self._random
        if r.random() < plan.loss:
            self.counts["lost"] += 1
            return []
        delay = airtime
        if r.random() < plan.delay:
            self.counts["delayed"] += 1
            delay += r.uniform(0.0, plan.max_delay)
        if r.random() < plan.reordering:
            # Held back just long enough for a later frame to overtake it.
            self.counts["reordered"] += 1
            delay += airtime * r.uniform(1.5, 4.0)
        copies = [delay]
        if r.random() < plan.duplication:
            self.counts["duplicated"] += 1
            copies.append(delay + airtime * r.uniform(0.5, 2.0))
        return copies

    def power_cycle(self) -> bool:
        """Whether the receiving device loses power before this frame."""
        if not self.plan.power_cycle:
            return False
        hit = self._random.random() < self.plan.power_cycle
        if hit:
            self.counts["power_cycles"] += 1
        return hit
