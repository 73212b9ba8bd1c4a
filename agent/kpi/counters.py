"""Cumulative counters (parts, good, NG, kWh): turning readings into trustworthy increments.

- a decrease by more than half the register's modulus is a wrap (the register rolled over);
- any other decrease is a reset: the new reading counts from zero, never a negative delta;
- an increase faster than the machine can physically go (max rate x elapsed time) is a bad
  read: not counted, and the baseline stays, so the next good reading is measured against the
  last trusted one. A new level confirmed by CONFIRMATIONS_TO_REBASE consecutive readings is
  taken as the new baseline (the counter was preset), still without counting the jump.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

CONFIRMATIONS_TO_REBASE = 3
RATE_TOLERANCE = 1.5  # timestamps are taken at read time, not at the device: allow jitter
MIN_WINDOW_S = 2.0  # the rate check never judges a window shorter than this


class CounterEvent(StrEnum):
    WRAP = "wrap"
    RESET = "reset"
    SPIKE = "spike"
    REBASE = "rebase"


@dataclass(frozen=True)
class CounterStep:
    delta: float
    event: CounterEvent | None = None


@dataclass
class CounterTracker:
    modulus: float | None
    max_rate_per_s: float
    last_value: float | None = None
    last_ts: float = 0.0
    pending: list[float] | None = None  # readings past the rate limit, waiting to be confirmed

    def update(self, value: float, ts: float) -> CounterStep:
        if self.last_value is None:
            self.last_value, self.last_ts = value, ts
            return CounterStep(0.0)
        elapsed = max(ts - self.last_ts, MIN_WINDOW_S)
        limit = self.max_rate_per_s * elapsed * RATE_TOLERANCE
        event: CounterEvent | None = None
        if value >= self.last_value:
            delta = value - self.last_value
        elif self.modulus is not None and self.last_value - value > self.modulus / 2:
            delta, event = value + self.modulus - self.last_value, CounterEvent.WRAP
        else:
            delta, event = (value if value <= limit else 0.0), CounterEvent.RESET
        if delta > limit:
            return self._spike(value, ts)
        self.pending = None
        self.last_value, self.last_ts = value, ts
        return CounterStep(delta, event)

    def _spike(self, value: float, ts: float) -> CounterStep:
        pending = self.pending or []
        if pending and abs(value - pending[-1]) > self.max_rate_per_s * MIN_WINDOW_S * RATE_TOLERANCE * len(
            pending
        ):
            pending = []
        pending.append(value)
        if len(pending) >= CONFIRMATIONS_TO_REBASE:
            self.pending = None
            self.last_value, self.last_ts = value, ts
            return CounterStep(0.0, CounterEvent.REBASE)
        self.pending = pending
        return CounterStep(0.0, CounterEvent.SPIKE)
