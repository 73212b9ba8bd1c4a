"""Statutory holidays and make-up working days shipped with the agent (agent/configs/holidays/).

    agent/configs/holidays/<name>.yaml    e.g. cn.yaml: per year, each holiday's days off and
                                           its make-up working days, with the notice it comes from

A workshop names one set (`calendar.holidays: cn`); its own `days_off` and `working_days` override
single dates. The KPI calendar gets plain sets of dates from here (agent/config/engine_setup.py), so it
stays free of files. Adding a country or region is adding a file.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Self

import yaml
from pydantic import Field, ValidationError, model_validator

from agent.config.models import StrictModel
from agent.config.shipped import shipped_dir

SUFFIX = ".yaml"


class HolidayDataError(ValueError):
    """A shipped holiday file that cannot be used (a packaging fault); the message says where."""


class HolidaySpec(StrictModel):
    name: str = Field(min_length=1)
    days_off: Annotated[tuple[dt.date, dt.date], Field(description="first and last day off")]
    working_days: tuple[dt.date, ...] = Field((), description="make-up working days")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        first, last = self.days_off
        if last < first:
            raise ValueError(f"{self.name}: the last day off {last} is before the first {first}")
        clash = [day for day in self.working_days if first <= day <= last]
        if clash:
            raise ValueError(f"{self.name}: {clash[0]} is both off and a make-up working day")
        return self

    def every_day_off(self) -> list[dt.date]:
        first, last = self.days_off
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


class HolidayYear(StrictModel):
    source: str = Field(min_length=1, description="the notice the dates come from")
    holidays: tuple[HolidaySpec, ...] = Field(min_length=1)


class HolidayFile(StrictModel):
    name: str = Field(min_length=1)
    years: dict[int, HolidayYear] = Field(min_length=1)


@dataclass(frozen=True)
class StatutoryCalendar:
    """One shipped set: every day off and every make-up working day of the years it covers."""

    id: str
    name: str
    off: frozenset[dt.date]
    work: frozenset[dt.date]
    years: tuple[int, ...]
    sources: dict[int, str]

    def covers(self, year: int) -> bool:
        return year in self.years


def holidays_dir() -> Path:
    return shipped_dir() / "holidays"


def holiday_sets() -> list[str]:
    return sorted(p.name.removesuffix(SUFFIX) for p in holidays_dir().glob(f"*{SUFFIX}"))


@functools.cache
def statutory_calendar(set_id: str) -> StatutoryCalendar:
    """The shipped set of that name; HolidayDataError for a missing or broken file."""
    path = holidays_dir() / f"{set_id}{SUFFIX}"
    try:
        data = HolidayFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise HolidayDataError(f"no holiday set '{set_id}'; there are: {', '.join(holiday_sets())}") from None
    except (yaml.YAMLError, ValidationError) as error:
        raise HolidayDataError(f"{path}: {error}") from None
    off: set[dt.date] = set()
    work: set[dt.date] = set()
    for year in data.years.values():
        for holiday in year.holidays:
            off.update(holiday.every_day_off())
            work.update(holiday.working_days)
    clash = sorted(off & work)
    if clash:
        raise HolidayDataError(f"{path}: {clash[0]} is both a day off and a make-up working day")
    return StatutoryCalendar(
        set_id,
        data.name,
        frozenset(off),
        frozenset(work),
        tuple(sorted(data.years)),
        {year: spec.source for year, spec in data.years.items()},
    )


DECEMBER = 12  # the State Council publishes the next year's dates in the autumn; by December, ask


def missing_years(set_id: str, today: dt.date) -> list[int]:
    """This year, and in December the next, when the set does not know them: their holidays would
    be worked as normal days until an update (or the plant's own dates) brings them."""
    known = statutory_calendar(set_id)
    wanted = [today.year] + ([today.year + 1] if today.month == DECEMBER else [])
    return [year for year in wanted if not known.covers(year)]
