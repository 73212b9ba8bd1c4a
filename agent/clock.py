"""Clocks: the agent's steady wall clock in production, a faster-running one for the demo and simulators."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# The wall and the monotonic clock are slewed alike by NTP, so they drift apart only when the wall
# clock is set (stepped). chrony steps above 1 s by default (makestep 1.0); a smaller departure
# is not worth a gap in the figures and is caught up at the next step.
CLOCK_STEP_S = 1.0


def wall_clock() -> float:
    return time.time()


@dataclass(frozen=True)
class ClockStep:
    """The wall clock was set: time went from `before` (where it was heading) to `after`."""

    before: float
    after: float

    @property
    def by_s(self) -> float:
        return self.after - self.before


class SteadyClock:
    """Wall-clock time that advances with the monotonic clock: durations are never stretched,
    shrunk or reversed by the wall clock being set. When the wall clock departs from it by more
    than CLOCK_STEP_S (an NTP sync on a gateway without a real-time clock, a clock set by hand),
    it follows the wall clock from then on and records the step once, for the runtime to hand to
    the KPI engine (`take_steps`)."""

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        step_s: float = CLOCK_STEP_S,
    ) -> None:
        self._wall = wall
        self._monotonic = monotonic
        self._step_s = step_s
        self._anchor_wall = wall()
        self._anchor_mono = monotonic()
        self._steps: list[ClockStep] = []

    def __call__(self) -> float:
        mono = self._monotonic()
        wall = self._wall()
        now = self._anchor_wall + (mono - self._anchor_mono)
        if abs(wall - now) <= self._step_s:
            return now
        self._steps.append(ClockStep(now, wall))
        self._anchor_wall, self._anchor_mono = wall, mono
        return wall

    def take_steps(self) -> list[ClockStep]:
        """The steps since the last call, oldest first."""
        steps, self._steps = self._steps, []
        return steps


@dataclass
class ScaledClock:
    """Shop-floor time that runs `speed` times faster than real time from `start`."""

    start: float
    speed: float = 1.0
    _real_origin: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._real_origin) * self.speed
