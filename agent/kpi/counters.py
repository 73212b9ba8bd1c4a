"""Cumulative counters (parts, good, NG, kWh): turning readings into trustworthy increments.

- a decrease by more than half the register's modulus is a wrap (the register rolled over);
- any other decrease is a reset: the new reading counts from zero, never a negative delta;
- an increase faster than the machine can physically go (max rate x elapsed time) is a bad
  read: not counted, and the baseline stays, so the next good reading is measured against the
  last trusted one. A new level confirmed by CONFIRMATIONS_TO_REBASE consecutive readings is
  taken as the new baseline (the counter was preset), still without counting the jump.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
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


def split_whole(total: float, weights: Sequence[float]) -> list[float]:
    """`total` shared in proportion to `weights`: in whole parts when it is whole, so no period
    ever holds a fraction of a part. Largest remainder: each share is its proportional part rounded
    down or up, and the shares add up to `total` exactly; ties go to the later share (the parts
    were counted at the window's end). Given the parts produced per share as weights, the good
    parts of the same window are never more than the parts of any share, when they are no more
    than the parts overall. A total that is not whole is shared proportionally."""
    weight = sum(weights)
    if weight <= 0:
        return [0.0] * (len(weights) - 1) + [total] if weights else []
    exact = [total * w / weight for w in weights]
    if not float(total).is_integer():
        return exact
    shares = [math.floor(x) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (exact[i] - shares[i], i), reverse=True)
    for i in order[: int(total) - sum(shares)]:
        shares[i] += 1
    return [float(share) for share in shares]
