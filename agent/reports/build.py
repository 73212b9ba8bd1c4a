"""Reports from the history: the window of a shift or a day from the shift calendar, the records
from agent/history/store.py, the figures from agent/reports/data.py."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_calendar
from agent.history.store import HistoryReader
from agent.i18n import Catalogue, catalogue
from agent.kpi.calendar import ShiftCalendar, ShiftInstance
from agent.reports.data import MonthEnergy, PeriodReport, month_energy, period_report
from agent.reports.reasons import ReasonNamer


class ReportNotFoundError(LookupError):
    """A day or shift the calendar does not have; the message says what there is, in English
    (str) or in the site's language (`text(words)`: the report page shows it)."""

    def __init__(self, key: str, **values: object) -> None:
        self.key = key
        self.values = values
        super().__init__(self.text(catalogue()))

    def text(self, words: Catalogue) -> str:
        return words(self.key, **self.values)


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ReportNotFoundError("web.not_a_date", text=text) from None


def parse_month(text: str) -> tuple[dt.date, dt.date]:
    """'2026-11' -> its first and last day."""
    try:
        first = dt.date.fromisoformat(f"{text}-01")
    except ValueError:
        raise ReportNotFoundError("web.not_a_month", text=text) from None
    following = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return first, following - dt.timedelta(days=1)


class Reports:
    def __init__(
        self,
        history: HistoryReader,
        calendar: ShiftCalendar,
        reasons: ReasonNamer,
        order: tuple[str, ...] = (),
    ) -> None:
        self.history = history
        self.calendar = calendar
        self.reasons = reasons
        self.order = order  # the workshop file's lines and machines

    @classmethod
    def of(cls, config: AgentConfig, history: HistoryReader) -> Reports:
        w = config.workshop
        profiles = {m.id: config.profiles[m.profile].spec for m in w.machines if m.profile in config.profiles}
        return cls(
            history, build_calendar(w.calendar, w.site.timezone), ReasonNamer(profiles, w.site.language)
        )

    def on(self, history: HistoryReader) -> Reports:
        """The same calendar, names and order over another connection to the history."""
        return Reports(history, self.calendar, self.reasons, self.order)

    def shift_instance(self, day: dt.date, shift: str) -> ShiftInstance:
        shifts = self.calendar.shifts_starting_on(day)
        found = next((s for s in shifts if s.name == shift), None)
        if found is None and not shifts:
            raise ReportNotFoundError("web.not_a_working_day", day=day.isoformat(), shift=shift)
        if found is None:
            there = ", ".join(s.name for s in shifts)
            raise ReportNotFoundError("web.no_such_shift", day=day.isoformat(), shift=shift, shifts=there)
        return found

    def shift(self, day: dt.date, shift: str) -> PeriodReport:
        """A closed shift from its final records; the running one from its figures so far."""
        instance = self.shift_instance(day, shift)
        records = self.history.finals("shift", day.isoformat(), shift) or [
            r
            for r in self.history.latest()
            if r.fields.get("period") == "shift"
            and r.fields.get("day") == day.isoformat()
            and r.fields.get("shift") == shift
        ]
        return period_report(
            records,
            self.history.states(instance.start, instance.end),
            period="shift",
            day=day.isoformat(),
            shift=shift,
            start=instance.start,
            end=instance.end,
            planned_stops=instance.breaks,
            reason_text=self.reasons,
            order=self.order,
        )

    def day(self, day: dt.date) -> PeriodReport:
        shifts = self.calendar.shifts_starting_on(day)
        if shifts:
            start, end = shifts[0].start, max(s.end for s in shifts)
        else:  # a day off: its local calendar day, where any work done shows
            zone = zoneinfo.ZoneInfo(self.calendar.timezone)
            start = dt.datetime(day.year, day.month, day.day, tzinfo=zone).timestamp()
            end = start + 86_400.0
        return period_report(
            self.history.finals("day", day.isoformat()),
            self.history.states(start, end),
            period="day",
            day=day.isoformat(),
            shift=None,
            start=start,
            end=end,
            planned_stops=tuple(b for s in shifts for b in s.breaks),
            reason_text=self.reasons,
            order=self.order,
        )

    def month(self, month: str) -> MonthEnergy:
        first, last = parse_month(month)
        return month_energy(month, self.history.finals_between("day", first.isoformat(), last.isoformat()))
