"""Shift calendar: which shift (and whether a planned break) a moment belongs to.

Shift times are local wall-clock times in the workshop's time zone; instants are UTC epoch
seconds. Each shift instance is built from local dates through zoneinfo, so on DST days a shift
is simply an hour shorter or longer, never misplaced. A shift crossing midnight belongs to the
day it starts on; a shift whose start day is a day off does not happen.

Which days are worked, first rule that applies: the plant's own `days_off`, then its own
`worked` days (a holiday worked), then statutory holidays, then statutory make-up working days (a
make-up Saturday has a normal working day's shifts), then the working weekdays. The statutory
dates come in as plain sets (agent/config/holidays.py reads them), so this module reads no files.

A crew rotation names the crew on each shift: a pattern of calendar days repeating from an anchor
date, each day mapping shift ids to crews. A shift's crew is the one of its production day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

MINUTES_PER_DAY = 24 * 60


class PeriodKind(StrEnum):
    WORKING = "working"
    BREAK = "break"
    NO_SHIFT = "no_shift"


@dataclass(frozen=True)
class ShiftDef:
    name: str
    start_min: int  # minutes after local midnight
    end_min: int  # may be <= start_min: the shift ends the next day
    breaks: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class CrewRotation:
    anchor: dt.date
    pattern: tuple[tuple[tuple[str, str], ...], ...]  # per day of the cycle: (shift id, crew id) pairs

    def crew(self, day: dt.date, shift: str) -> str | None:
        if not self.pattern:
            return None
        entry = self.pattern[(day - self.anchor).days % len(self.pattern)]
        return dict(entry).get(shift)


@dataclass(frozen=True)
class ShiftInstance:
    name: str
    day: dt.date  # the production day: the date the shift starts on
    start: float
    end: float
    breaks: tuple[tuple[float, float], ...]
    crew: str | None = None

    @property
    def key(self) -> str:
        return f"{self.day.isoformat()}/{self.name}"


@dataclass(frozen=True)
class Period:
    """A shift, or a stretch without shift (split at local midnight). Periods partition time."""

    key: str
    name: str  # the shift's name, or "no_shift"
    day: dt.date
    start: float
    end: float
    breaks: tuple[tuple[float, float], ...]
    crew: str | None = None

    @property
    def is_shift(self) -> bool:
        return self.name != NO_SHIFT


NO_SHIFT = "no_shift"


@dataclass(frozen=True)
class CalendarPiece:
    start: float
    end: float
    kind: PeriodKind
    period: Period


def merge_intervals(intervals: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """Breaks and maintenance windows that overlap or touch become one planned stop."""
    merged: list[tuple[float, float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return tuple(merged)


@dataclass
class ShiftCalendar:
    shifts: tuple[ShiftDef, ...]
    timezone: str
    days_off: frozenset[dt.date] = frozenset()
    working_weekdays: frozenset[int] = frozenset(range(1, 8))  # ISO: Monday = 1
    maintenance: tuple[tuple[float, float], ...] = ()  # planned maintenance windows (instants)
    holidays: frozenset[dt.date] = frozenset()  # statutory days off
    workdays: frozenset[dt.date] = frozenset()  # statutory make-up working days
    worked: frozenset[dt.date] = frozenset()  # the plant's own: worked whatever else applies
    rotation: CrewRotation | None = None
    # caches: two calendars with the same plan are equal whatever they have looked up
    _by_day: dict[dt.date, tuple[ShiftInstance, ...]] = field(default_factory=dict, repr=False, compare=False)
    _last_period: Period | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._zone = zoneinfo.ZoneInfo(self.timezone)

    def _instant(self, day: dt.date, minute: int) -> float:
        day = day + dt.timedelta(days=minute // MINUTES_PER_DAY)
        minute %= MINUTES_PER_DAY
        local = dt.datetime(day.year, day.month, day.day, minute // 60, minute % 60, tzinfo=self._zone)
        return local.timestamp()

    def is_working_day(self, day: dt.date) -> bool:
        if day in self.days_off:
            return False
        if day in self.worked:
            return True
        if day in self.holidays:
            return False
        if day in self.workdays:
            return True
        return day.isoweekday() in self.working_weekdays

    def crew(self, day: dt.date, shift: str) -> str | None:
        return None if self.rotation is None else self.rotation.crew(day, shift)

    def shifts_starting_on(self, day: dt.date) -> tuple[ShiftInstance, ...]:
        cached = self._by_day.get(day)
        if cached is not None:
            return cached
        instances: list[ShiftInstance] = []
        if self.is_working_day(day):
            for shift in self.shifts:
                length = (shift.end_min - shift.start_min) % MINUTES_PER_DAY or MINUTES_PER_DAY
                breaks = []
                for brk_start, brk_end in shift.breaks:
                    offset = (brk_start - shift.start_min) % MINUTES_PER_DAY
                    brk_length = (brk_end - brk_start) % MINUTES_PER_DAY
                    begin = shift.start_min + offset
                    breaks.append((self._instant(day, begin), self._instant(day, begin + brk_length)))
                start = self._instant(day, shift.start_min)
                end = self._instant(day, shift.start_min + length)
                windows = [(max(a, start), min(b, end)) for a, b in self.maintenance if a < end and b > start]
                instances.append(
                    ShiftInstance(
                        shift.name,
                        day,
                        start,
                        end,
                        merge_intervals([*breaks, *windows]),
                        self.crew(day, shift.name),
                    )
                )
        if len(self._by_day) > 64:  # a gateway runs for months: keep the cache bounded
            self._by_day.clear()
        result = tuple(sorted(instances, key=lambda s: s.start))
        self._by_day[day] = result
        return result

    def _local_day(self, instant: float) -> dt.date:
        return dt.datetime.fromtimestamp(instant, self._zone).date()

    def shifts_between(self, start: float, end: float) -> list[ShiftInstance]:
        first = self._local_day(start) - dt.timedelta(days=1)
        last = self._local_day(end)
        found: list[ShiftInstance] = []
        day = first
        while day <= last:
            found.extend(s for s in self.shifts_starting_on(day) if s.end > start and s.start < end)
            day += dt.timedelta(days=1)
        return found

    def period_at(self, instant: float) -> Period:
        last = self._last_period
        if last is not None and last.start <= instant < last.end:
            return last
        self._last_period = self._find_period(instant)
        return self._last_period

    def _find_period(self, instant: float) -> Period:
        around = self.shifts_between(instant - MINUTES_PER_DAY * 60, instant + MINUTES_PER_DAY * 60)
        previous_end: float | None = None
        next_start: float | None = None
        for shift in around:
            if shift.start <= instant < shift.end:
                return Period(
                    shift.key, shift.name, shift.day, shift.start, shift.end, shift.breaks, shift.crew
                )
            if shift.end <= instant:
                previous_end = shift.end if previous_end is None else max(previous_end, shift.end)
            elif next_start is None or shift.start < next_start:
                next_start = shift.start
        day = self._local_day(instant)
        midnight = self._instant(day, 0)
        next_midnight = self._instant(day, MINUTES_PER_DAY)
        start = max(previous_end, midnight) if previous_end is not None else midnight
        end = min(next_start, next_midnight) if next_start is not None else next_midnight
        key = f"{day.isoformat()}/{NO_SHIFT}@{dt.datetime.fromtimestamp(start, self._zone):%H%M}"
        return Period(key, NO_SHIFT, day, start, end, ())

    def pieces(self, start: float, end: float) -> Iterator[CalendarPiece]:
        """Split [start, end) at every period and break boundary."""
        cursor = start
        while cursor < end:
            period = self.period_at(cursor)
            stop = min(period.end, end)
            kind = PeriodKind.WORKING if period.is_shift else PeriodKind.NO_SHIFT
            for brk_start, brk_end in period.breaks:
                if brk_end <= cursor or brk_start >= stop:
                    continue
                if brk_start > cursor:
                    yield CalendarPiece(cursor, brk_start, kind, period)
                    cursor = brk_start
                brk_stop = min(brk_end, stop)
                yield CalendarPiece(cursor, brk_stop, PeriodKind.BREAK, period)
                cursor = brk_stop
            if stop > cursor:
                yield CalendarPiece(cursor, stop, kind, period)
            cursor = stop
