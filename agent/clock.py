"""Clocks: the wall clock in production, a faster-running one for the demo and simulators."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def wall_clock() -> float:
    return time.time()


@dataclass
class ScaledClock:
    """Shop-floor time that runs `speed` times faster than real time from `start`."""

    start: float
    speed: float = 1.0
    _real_origin: float = field(default_factory=time.monotonic)

    def __call__(self) -> float:
        return self.start + (time.monotonic() - self._real_origin) * self.speed
