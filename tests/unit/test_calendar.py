"""Shift calendar: midnight-crossing shifts, breaks, days off, DST."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo
from collections import defaultdict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.kpi.calendar import NO_SHIFT, PeriodKind, ShiftCalendar, ShiftDef

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
TWO_SHIFTS = (
    ShiftDef("day", 8 * 60, 20 * 60, ((11 * 60 + 30, 12 * 60), (17 * 60, 17 * 60 + 30))),
    ShiftDef("night", 20 * 60, 8 * 60, ((0, 30),)),
)


def at(day: int, hour: int, minute: int = 0, zone: zoneinfo.ZoneInfo = SHANGHAI, month: int = 11) -> float:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=zone).timestamp()


def seconds_by_kind(calendar: ShiftCalendar, start: float, end: float) -> dict[tuple[str, PeriodKind], float]:
    totals: dict[tuple[str, PeriodKind], float] = defaultdict(float)
    for piece in calendar.pieces(start, end):
        totals[(piece.period.key, piece.kind)] += piece.end - piece.start
    return dict(totals)


def test_a_day_of_two_shifts_with_breaks() -> None:
    calendar = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai")
    totals = seconds_by_kind(calendar, at(24, 8), at(25, 8))
    assert totals == {
        ("2026-11-24/day", PeriodKind.WORKING): 11 * 3600.0,
        ("2026-11-24/day", PeriodKind.BREAK): 3600.0,
        ("2026-11-24/night", PeriodKind.WORKING): 11.5 * 3600.0,
        ("2026-11-24/night", PeriodKind.BREAK): 1800.0,
    }


def test_night_shift_after_midnight_belongs_to_the_day_it_started() -> None:
    calendar = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai")
    period = calendar.period_at(at(25, 0, 15))
    assert period.key == "2026-11-24/night"
    assert (period.start, period.end) == (at(24, 20), at(25, 8))
    [piece] = list(calendar.pieces(at(25, 0, 10), at(25, 0, 20)))
    assert piece.kind is PeriodKind.BREAK


def test_time_outside_shifts_is_no_shift_and_split_at_local_midnight() -> None:
    calendar = ShiftCalendar((ShiftDef("day", 8 * 60, 16 * 60),), "Asia/Shanghai")
    pieces = list(calendar.pieces(at(24, 16), at(25, 8)))
    assert [(p.kind, p.period.name) for p in pieces] == [(PeriodKind.NO_SHIFT, NO_SHIFT)] * 2
    assert pieces[0].end == at(25, 0)
    assert pieces[0].period.key != pieces[1].period.key


def test_day_off_has_no_shift_but_the_night_before_still_ends() -> None:
    calendar = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai", days_off=frozenset({dt.date(2026, 10, 1)}))
    assert calendar.period_at(at(1, 3, month=10)).key == "2026-09-30/night"
    assert calendar.period_at(at(1, 10, month=10)).name == NO_SHIFT
    assert calendar.period_at(at(1, 21, month=10)).name == NO_SHIFT
    assert calendar.period_at(at(2, 9, month=10)).key == "2026-10-02/day"


def test_working_weekdays() -> None:
    calendar = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai", working_weekdays=frozenset(range(1, 6)))
    assert calendar.period_at(at(28, 9)).name == NO_SHIFT  # Saturday 2026-11-28
    assert calendar.period_at(at(27, 9)).name == "day"


@pytest.mark.parametrize(("day", "month", "hours"), [(28, 3, 7.0), (24, 10, 9.0)])
def test_dst_changes_the_length_of_the_night_not_its_clock_times(day: int, month: int, hours: float) -> None:
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    calendar = ShiftCalendar((ShiftDef("night", 22 * 60, 6 * 60),), "Europe/Berlin")
    period = calendar.period_at(at(day, 23, zone=berlin, month=month))
    assert period.end - period.start == hours * 3600
    assert dt.datetime.fromtimestamp(period.end, berlin).hour == 6


@given(st.floats(0, 14 * 86_400), st.floats(1, 3 * 86_400))
def test_pieces_partition_time(offset: float, length: float) -> None:
    calendar = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai", days_off=frozenset({dt.date(2026, 11, 28)}))
    start = at(20, 5) + offset
    pieces = list(calendar.pieces(start, start + length))
    assert pieces[0].start == start
    assert pieces[-1].end == start + length
    for first, second in itertools.pairwise(pieces):
        assert first.end == second.start
    for piece in pieces:
        assert piece.period.start <= piece.start < piece.end <= piece.period.end
