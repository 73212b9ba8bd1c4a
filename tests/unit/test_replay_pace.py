"""The delivery loop's pace: a burst goes out whole, a lasting backlog at the sink's rate."""

from __future__ import annotations

import pytest

from agent.delivery.drain import ReplayPace


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_of_up_to_a_seconds_worth_goes_without_a_pause() -> None:
    clock = Clock()
    pace = ReplayPace(1000.0, clock)
    assert [pace.pause_after(100) for _ in range(10)] == [0.0] * 10  # six batches 0.1 s apart, before


def test_a_lasting_backlog_goes_at_the_rate() -> None:
    clock = Clock()
    pace = ReplayPace(1000.0, clock)
    start = clock.now
    for _ in range(50):  # 5,000 records, written instantly, each pause slept
        clock.now += pace.pause_after(100)
    assert clock.now - start == pytest.approx(4.0, abs=1e-9)  # the first second's worth free, then 1,000/s


def test_live_traffic_under_the_rate_is_never_paused() -> None:
    clock = Clock()
    pace = ReplayPace(1000.0, clock)
    pauses = []
    for _ in range(600):  # ten minutes of 300 records a second, in batches every 0.5 s
        clock.now += 0.5
        pauses.append(pace.pause_after(150))
    assert max(pauses) == 0.0


def test_an_idle_spell_refills_no_more_than_a_seconds_worth() -> None:
    clock = Clock()
    pace = ReplayPace(1000.0, clock)
    clock.now += 3600.0  # an hour without records
    assert pace.pause_after(1000) == 0.0
    assert pace.pause_after(500) == pytest.approx(0.5, abs=1e-9)
