"""Translate the validated configuration into the KPI engine's plain setup (kpi/ knows no config)."""

from __future__ import annotations

import zoneinfo

from agent.config.holidays import statutory_calendar
from agent.config.loader import AgentConfig, DeviceProfile
from agent.config.workshop import WORKSHOP_SCOPE, CalendarSection, Workshop
from agent.drivers.codec import register_modulus
from agent.kpi.calendar import CrewRotation, ShiftCalendar, ShiftDef
from agent.kpi.engine import CounterSetup, EngineSetup, LineSetup, MachineSetup, MeterSetup, Names


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def build_calendar(calendar: CalendarSection, timezone: str) -> ShiftCalendar:
    zone = zoneinfo.ZoneInfo(timezone)
    maintenance = tuple(
        (w.start.replace(tzinfo=zone).timestamp(), w.end.replace(tzinfo=zone).timestamp())
        for w in calendar.maintenance
    )
    shifts = tuple(
        ShiftDef(
            s.key,
            _minutes(s.start),
            _minutes(s.end),
            tuple((_minutes(b.start), _minutes(b.end)) for b in s.breaks),
        )
        for s in calendar.shifts
    )
    statutory = statutory_calendar(calendar.holidays) if calendar.holidays is not None else None
    rotation = calendar.rotation
    return ShiftCalendar(
        shifts,
        timezone,
        frozenset(calendar.days_off),
        frozenset(calendar.working_weekdays),
        maintenance,
        holidays=statutory.off if statutory else frozenset(),
        workdays=statutory.work if statutory else frozenset(),
        worked=frozenset(calendar.working_days),
        rotation=CrewRotation(rotation.anchor, tuple(tuple(sorted(day.items())) for day in rotation.pattern))
        if rotation is not None
        else None,
    )


def build_names(workshop: Workshop) -> Names:
    """What people call the workshop, its shifts and crews (ids where no name is given)."""
    calendar = workshop.calendar
    return Names(
        workshop=workshop.name or workshop.site.area,
        shifts={s.key: s.display for s in calendar.shifts},
        crews={c.id: c.name or c.id for c in calendar.crews},
        stops={
            **{f"{s.key}@{b.start}": b.name for s in calendar.shifts for b in s.breaks},
            **{f"{w.start:%Y-%m-%dT%H:%M}": w.name for w in calendar.maintenance},
        },
    )


def _counter(profile: DeviceProfile, tag: str | None, rollover: float | None = None) -> CounterSetup | None:
    if tag is None:
        return None
    if rollover is not None:
        return CounterSetup(tag, rollover)
    node = profile.spec.nodes.get(tag)
    if node is not None:  # OPC UA counters are typed by the server; a rollover is whatever the profile says
        return CounterSetup(tag, node.rollover)
    return CounterSetup(tag, register_modulus(profile.spec.tags[tag]))


def build_engine_setup(
    config: AgentConfig,
    *,
    offline_after_s: float | None = None,
    publish_interval_s: float | None = None,
) -> EngineSetup:
    workshop = config.workshop
    machines = []
    for machine in workshop.machines:
        profile = config.profiles[machine.profile]
        counters = profile.spec.counters
        machines.append(
            MachineSetup(
                id=machine.id,
                line=machine.line,
                name=machine.name or machine.id,
                ideal_cycle_s=machine.ideal_cycle_s,
                rules=profile.rules,
                produced=_counter(profile, counters.produced) if counters else None,
                good=_counter(profile, counters.good) if counters else None,
                rejected=_counter(profile, counters.rejected) if counters else None,
                max_parts_per_s=(counters.max_parts_per_minute / 60.0) if counters else 10.0,
                quality_from=machine.quality_from,
                publish_tags=machine.publish_tags,
                variant_tag=profile.spec.variant,
                ideal_cycle_by_variant={str(k): v for k, v in machine.ideal_cycle_by_variant.items()},
            )
        )
    meters = []
    for meter in workshop.meters:
        profile = config.profiles[meter.profile]
        energy = profile.spec.energy
        kwh = _counter(profile, energy.kwh, energy.rollover_kwh) if energy is not None else None
        if energy is None or kwh is None:  # the loader rejects meter profiles without an energy section
            raise ValueError(f"meter {meter.id}: profile {profile.name} has no energy counter")
        meters.append(
            MeterSetup(
                meter.id,
                None if meter.measures == WORKSHOP_SCOPE else meter.measures,
                kwh,
                energy.rated_kw,
            )
        )
    grid = workshop.site.grid
    return EngineSetup(
        machines=tuple(machines),
        meters=tuple(meters),
        calendar=build_calendar(workshop.calendar, workshop.site.timezone),
        publish_interval_s=publish_interval_s or workshop.kpi.publish_interval_s,
        offline_after_s=offline_after_s or workshop.kpi.offline_after_s,
        kg_co2e_per_kwh=grid.kg_co2e_per_kwh if grid else None,
        micro_stop_s=workshop.kpi.micro_stop_s,
        micro_stops_lower_performance=workshop.kpi.micro_stop_loss == "performance",
        lines=build_lines(workshop),
        names=build_names(workshop),
    )


def build_lines(workshop: Workshop) -> tuple[LineSetup, ...]:
    """A serial line's constraint: as configured, else its machine with the longest ideal cycle."""
    lines = []
    for line in workshop.lines:
        constraint = line.constraint
        members = [m for m in workshop.machines if m.line == line.id]
        if line.kind == "serial" and constraint is None and members:
            constraint = max(members, key=lambda m: m.ideal_cycle_s).id
        lines.append(
            LineSetup(line.id, constraint if line.kind == "serial" else None, name=line.name or line.id)
        )
    return tuple(lines)
