"""The steady clock: durations from the monotonic clock, wall-clock steps followed and reported once."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agent.clock import CLOCK_STEP_S, ClockStep, SteadyClock


@dataclass
class FakeClocks:
    wall: float = 1_800_000_000.0
    mono: float = 500.0

    def run(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def steady(clocks: FakeClocks) -> SteadyClock:
    return SteadyClock(wall=lambda: clocks.wall, monotonic=lambda: clocks.mono)


def test_time_advances_with_the_monotonic_clock_and_small_departures_are_not_steps() -> None:
    clocks = FakeClocks()
    clock = steady(clocks)
    start = clock()
    clocks.run(10.0)
    clocks.wall += CLOCK_STEP_S * 0.9  # a departure NTP would rather slew
    assert clock() == start + 10.0
    assert clock.take_steps() == []


@pytest.mark.parametrize("by_s", [3600.0, -3600.0, 2.5, -1.5])
def test_a_step_is_followed_and_reported_once(by_s: float) -> None:
    clocks = FakeClocks()
    clock = steady(clocks)
    start = clock()
    clocks.run(20.0)
    clocks.wall += by_s
    assert clock() == start + 20.0 + by_s
    assert clock.take_steps() == [ClockStep(start + 20.0, start + 20.0 + by_s)]
    clocks.run(5.0)
    assert clock() == start + 25.0 + by_s  # anchored anew: on from the stepped time
    assert clock.take_steps() == []


def test_steps_are_kept_in_order_until_taken() -> None:
    clocks = FakeClocks()
    clock = steady(clocks)
    clocks.wall += 100.0
    clock()
    clocks.wall -= 40.0
    clock()
    assert [step.by_s for step in clock.take_steps()] == [100.0, -40.0]
