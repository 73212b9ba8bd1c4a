"""China's statutory holidays and make-up working days: the shipped dates, the calendar that uses
them across 2026's Spring Festival and National Day, plant overrides, and that any calendar with
overrides still partitions time."""

from __future__ import annotations

import datetime as dt
import itertools
import zoneinfo

import chinese_calendar
import pytest
from chinese_calendar.constants import holidays as reference_holidays
from chinese_calendar.constants import workdays as reference_workdays
from hypothesis import given
from hypothesis import strategies as st

from agent.config.holidays import HolidayDataError, statutory_calendar
from agent.kpi.calendar import NO_SHIFT, PeriodKind, ShiftCalendar, ShiftDef

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
CN = statutory_calendar("cn")
TWO_SHIFTS = (
    ShiftDef("day", 8 * 60, 20 * 60, ((12 * 60, 12 * 60 + 30),)),
    ShiftDef("night", 20 * 60, 8 * 60),
)
MONDAY_TO_FRIDAY = frozenset(range(1, 6))


def calendar(
    days_off: frozenset[dt.date] = frozenset(), worked: frozenset[dt.date] = frozenset()
) -> ShiftCalendar:
    """Two shifts on weekdays, with China's holidays and make-up days, as `calendar.holidays: cn`."""
    return ShiftCalendar(
        TWO_SHIFTS,
        "Asia/Shanghai",
        days_off=days_off,
        working_weekdays=MONDAY_TO_FRIDAY,
        holidays=CN.off,
        workdays=CN.work,
        worked=worked,
    )


def worked(cal: ShiftCalendar, first: dt.date, last: dt.date) -> dict[dt.date, tuple[str, ...]]:
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    return {day: tuple(s.name for s in cal.shifts_starting_on(day)) for day in days}


def day(month: int, date: int) -> dt.date:
    return dt.date(2026, month, date)


@pytest.mark.parametrize("year", CN.years)
def test_the_shipped_dates_agree_with_the_chinese_calendar_package(year: int) -> None:
    """Two sources kept apart: the shipped file, written from the State Council's notice, and the
    chinese-calendar package (maintained on its own); a year both know must match day by day."""
    known = {d.year for d in reference_holidays}
    if year not in known:  # a year newer than the package: checked once its release has it
        pytest.skip(f"chinese-calendar {chinese_calendar.__version__} does not know {year}")
    off = {d for d in reference_holidays if d.year == year}
    work = {d for d in reference_workdays if d.year == year}
    assert {d for d in CN.off if d.year == year} == off
    assert {d for d in CN.work if d.year == year} == work


def test_the_shipped_years_have_their_notice_and_cover_this_agents_years() -> None:
    assert {2025, 2026} <= set(CN.years)
    for year in CN.years:
        assert f"{year}年部分节假日安排的通知" in CN.sources[year]
        assert "gov.cn" in CN.sources[year]


def test_spring_festival_2026() -> None:
    """Off 15-23 February; Saturday the 14th and Saturday the 28th are worked (调休)."""
    days = worked(calendar(), day(2, 13), day(3, 1))
    both = ("day", "night")
    assert days[day(2, 13)] == both  # Friday
    assert days[day(2, 14)] == both  # Saturday, a make-up working day: a normal day's shifts
    assert all(days[day(2, d)] == () for d in range(15, 24))
    assert days[day(2, 24)] == both  # Tuesday, back at work
    assert days[day(2, 21)] == ()  # a Saturday inside the holiday
    assert days[day(2, 28)] == both  # Saturday, make-up
    assert days[day(3, 1)] == ()  # Sunday


def test_national_day_2026() -> None:
    """Off 1-7 October; Sunday 20 September and Saturday 10 October are worked."""
    cal = calendar()
    assert worked(cal, day(9, 19), day(9, 21)) == {
        day(9, 19): (),
        day(9, 20): ("day", "night"),
        day(9, 21): ("day", "night"),
    }
    days = worked(cal, day(9, 30), day(10, 11))
    assert days[day(9, 30)] == ("day", "night")
    assert all(days[day(10, d)] == () for d in range(1, 8))
    assert days[day(10, 8)] == ("day", "night")
    assert days[day(10, 10)] == ("day", "night")
    assert days[day(10, 11)] == ()


def test_the_night_before_a_holiday_runs_into_it_and_the_holiday_is_outside_shifts() -> None:
    cal = calendar()
    eve = dt.datetime(2026, 2, 15, 3, 0, tzinfo=SHANGHAI).timestamp()
    period = cal.period_at(eve)
    assert (period.name, period.day) == ("night", day(2, 14))  # the make-up Saturday's night shift
    holiday = cal.period_at(dt.datetime(2026, 2, 16, 10, 0, tzinfo=SHANGHAI).timestamp())
    assert holiday.name == NO_SHIFT


def test_a_plant_overrides_single_dates() -> None:
    """It works 6 October (a holiday) and not the make-up Saturday 14 February; its own days off
    and worked days win over the statutory dates."""
    cal = calendar(days_off=frozenset({day(2, 14)}), worked=frozenset({day(10, 6)}))
    assert worked(cal, day(2, 14), day(2, 14)) == {day(2, 14): ()}
    assert worked(cal, day(10, 5), day(10, 7)) == {
        day(10, 5): (),
        day(10, 6): ("day", "night"),
        day(10, 7): (),
    }
    assert worked(cal, day(2, 28), day(2, 28)) == {day(2, 28): ("day", "night")}  # the other make-up day


def test_a_seven_day_plant_stops_only_for_the_holidays() -> None:
    cal = ShiftCalendar(TWO_SHIFTS, "Asia/Shanghai", holidays=CN.off, workdays=CN.work)
    days = worked(cal, day(10, 1), day(10, 11))
    assert [d.day for d, shifts in days.items() if shifts] == [8, 9, 10, 11]


def test_a_missing_holiday_set_names_the_shipped_ones() -> None:
    with pytest.raises(HolidayDataError, match="no holiday set 'xx'; there are: cn"):
        statutory_calendar("xx")


DAYS = st.dates(min_value=dt.date(2026, 1, 20), max_value=dt.date(2026, 3, 10))
MINUTE = st.integers(min_value=0, max_value=24 * 60 - 1)


@st.composite
def calendars(draw: st.DrawFn) -> ShiftCalendar:
    """Up to three shifts that do not overlap, each maybe with a break, weekdays and dates of
    every kind: statutory holidays and make-up days, the plant's days off and worked days."""
    count = draw(st.integers(min_value=1, max_value=3))
    starts = sorted(draw(st.lists(MINUTE, min_size=count, max_size=count, unique=True)))
    shifts = []
    for index, start in enumerate(starts):
        room = (starts[(index + 1) % count] - start) % (24 * 60) or 24 * 60
        length = draw(st.integers(min_value=1, max_value=room))
        breaks: tuple[tuple[int, int], ...] = ()
        if length > 2 and draw(st.booleans()):
            offset = draw(st.integers(min_value=0, max_value=length - 2))
            brk = draw(st.integers(min_value=1, max_value=length - offset - 1))
            breaks = (((start + offset) % 1440, (start + offset + brk) % 1440),)
        shifts.append(ShiftDef(f"s{index}", start, (start + length) % (24 * 60), breaks))
    dates = st.frozensets(DAYS, max_size=10)
    return ShiftCalendar(
        tuple(shifts),
        draw(st.sampled_from(["Asia/Shanghai", "Europe/Berlin"])),
        days_off=draw(dates),
        working_weekdays=draw(st.frozensets(st.integers(min_value=1, max_value=7))),
        holidays=draw(dates),
        workdays=draw(dates),
        worked=draw(dates),
    )


@given(
    cal=calendars(),
    start=st.floats(min_value=1769900000.0, max_value=1772300000.0),
    hours=st.floats(min_value=0.01, max_value=96.0),
)
def test_any_calendar_with_overrides_still_partitions_time(
    cal: ShiftCalendar, start: float, hours: float
) -> None:
    """Whatever the days off, holidays, make-up and worked days: the pieces of a stretch follow
    each other without gap or overlap, each lies inside its period, a shift's only on a working
    day, and a period is one stretch of time (one key, one start and end)."""
    end = start + hours * 3600
    pieces = list(cal.pieces(start, end))
    assert pieces[0].start == start
    assert pieces[-1].end == end
    seen: dict[str, tuple[float, float]] = {}
    for previous, piece in itertools.pairwise(pieces):
        assert previous.end == piece.start
    for piece in pieces:
        assert piece.start < piece.end
        period = piece.period
        assert period.start <= piece.start
        assert piece.end <= period.end
        assert seen.setdefault(period.key, (period.start, period.end)) == (period.start, period.end)
        if period.is_shift:
            assert cal.is_working_day(period.day)
        else:
            assert piece.kind is PeriodKind.NO_SHIFT
    total = sum(p.end - p.start for p in pieces)
    assert abs(total - (end - start)) < 1e-6


def test_a_year_the_set_does_not_know_is_named_this_year_and_in_december_the_next() -> None:
    from agent.config.holidays import missing_years

    assert missing_years("cn", dt.date(2026, 6, 1)) == []
    assert missing_years("cn", dt.date(2026, 12, 1)) == [2027]  # published in November: ask for it
    assert missing_years("cn", dt.date(2028, 3, 1)) == [2028]
