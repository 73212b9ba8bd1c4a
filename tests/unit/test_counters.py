"""Cumulative counters: wraps, resets, spikes."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from agent.kpi.counters import CounterEvent, CounterStep, CounterTracker

U32 = float(2**32)


def tracker(modulus: float | None = U32, rate: float = 2.0) -> CounterTracker:
    counter = CounterTracker(modulus, rate)
    counter.update(1000, 0.0)
    return counter


def test_first_reading_is_the_baseline() -> None:
    assert CounterTracker(U32, 1.0).update(123456, 0.0) == CounterStep(0.0)


def test_normal_increase() -> None:
    assert tracker().update(1010, 10.0) == CounterStep(10.0)


def test_wrap_at_two_to_the_32() -> None:
    counter = CounterTracker(U32, 2.0)
    counter.update(U32 - 6, 0.0)
    assert counter.update(5, 10.0) == CounterStep(11.0, CounterEvent.WRAP)


def test_wrap_of_a_scaled_meter_register() -> None:
    modulus = U32 * 0.01  # a uint32 in 0.01 kWh
    counter = CounterTracker(modulus, 500 / 3600)
    counter.update(modulus - 0.05, 0.0)
    step = counter.update(0.10, 60.0)
    assert step.event is CounterEvent.WRAP
    assert abs(step.delta - 0.15) < 1e-6


def test_reset_counts_from_zero_and_never_goes_negative() -> None:
    assert tracker().update(3, 10.0) == CounterStep(3.0, CounterEvent.RESET)


def test_decrease_without_modulus_is_a_reset() -> None:
    assert tracker(modulus=None).update(900, 10.0).event is CounterEvent.RESET


def test_spike_is_not_counted_and_the_baseline_stays() -> None:
    counter = tracker()
    assert counter.update(900_000, 1.0) == CounterStep(0.0, CounterEvent.SPIKE)
    assert counter.update(1004, 2.0) == CounterStep(4.0)


def test_a_new_level_confirmed_three_times_becomes_the_baseline_uncounted() -> None:
    counter = tracker()
    assert counter.update(500_000, 1.0).event is CounterEvent.SPIKE
    assert counter.update(500_001, 2.0).event is CounterEvent.SPIKE
    assert counter.update(500_002, 3.0) == CounterStep(0.0, CounterEvent.REBASE)
    assert counter.update(500_004, 4.0) == CounterStep(2.0)


def test_long_gap_allows_a_large_but_plausible_increase() -> None:
    assert tracker().update(1000 + 7000, 3600.0) == CounterStep(7000.0)


@given(st.lists(st.tuples(st.floats(0.5, 100), st.integers(0, 2**32 - 1)), max_size=60))
def test_increments_are_never_negative_nor_faster_than_possible(readings: list[tuple[float, int]]) -> None:
    """Judged against the last trusted reading: a rejected spike does not move the baseline."""
    counter = CounterTracker(U32, 2.0)
    now = trusted = 0.0
    for elapsed, value in readings:
        now += elapsed
        step = counter.update(float(value), now)
        assert step.delta >= 0.0
        assert step.delta <= 2.0 * max(now - trusted, 2.0) * 1.5 + 1e-6
        if step.event != CounterEvent.SPIKE:
            trusted = now
