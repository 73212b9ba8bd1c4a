"""Capped exponential backoff with jitter, so a hundred gateways do not reconnect in lockstep."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    initial_s: float = 0.5
    maximum_s: float = 30.0
    attempts: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        """Full-range upper bound doubles per failure; the delay is drawn in [bound/2, bound]."""
        bound = min(self.maximum_s, self.initial_s * 2**self.attempts)
        self.attempts += 1
        return self.rng.uniform(bound / 2, bound)

    def reset(self) -> None:
        self.attempts = 0
