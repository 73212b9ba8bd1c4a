"""Translate the validated configuration into the KPI engine's plain setup (kpi/ knows no config)."""

from __future__ import annotations

import zoneinfo

from agent.config.compiled import AgentConfig, DeviceProfile
from agent.config.grid import GridSetting
from agent.config.holidays import statutory_calendar
from agent.config.workshop import WORKSHOP_SCOPE, CalendarSection, MachineSpec, MeterKeeping, Workshop
from agent.kpi.calendar import CrewRotation, ShiftCalendar, ShiftDef
from agent.kpi.energy import CarbonFactor, MeterInfo
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
    return CounterSetup(tag, rollover if rollover is not None else profile.spec.wraps_at(tag))


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
    meters = [_own_meter(config, machine) for machine in workshop.machines]
    meters += [
        _meter(
            config.profiles[meter.profile],
            meter.id,
            None if meter.measures == WORKSHOP_SCOPE else meter.measures,
            meter,
            None,
        )
        for meter in workshop.meters
    ]
    site = workshop.site
    return EngineSetup(
        machines=tuple(machines),
        meters=tuple(m for m in meters if m is not None),
        calendar=build_calendar(workshop.calendar, workshop.site.timezone),
        publish_interval_s=publish_interval_s or workshop.kpi.publish_interval_s,
        offline_after_s=offline_after_s or workshop.kpi.offline_after_s,
        carbon=carbon_factor(site.grid) if site.grid is not None else None,
        kgce_per_kwh=site.standard_coal.kgce_per_kwh,
        micro_stop_s=workshop.kpi.micro_stop_s,
        micro_stops_lower_performance=workshop.kpi.micro_stop_loss == "performance",
        lines=build_lines(workshop),
        names=build_names(workshop),
    )


def _meter(
    profile: DeviceProfile,
    meter_id: str,
    machine: str | None,
    keeping: MeterKeeping | None,
    device: str | None,
) -> MeterSetup:
    energy = profile.spec.energy
    kwh = _counter(profile, energy.kwh, energy.rollover_kwh) if energy is not None else None
    if energy is None or kwh is None:  # the loader rejects meter profiles without an energy section
        raise ValueError(f"meter {meter_id}: profile {profile.name} has no energy counter")
    info = (
        MeterInfo(keeping.accuracy_class, keeping.ct_ratio, keeping.calibration_due)
        if keeping is not None
        else MeterInfo()
    )
    return MeterSetup(meter_id, machine, kwh, energy.rated_kw, energy.power_kw, info, device)


def _own_meter(config: AgentConfig, machine: MachineSpec) -> MeterSetup | None:
    """A machine whose profile has an energy section is its own meter: the kWh register comes with
    its other tags (the machine's samples) and is counted as a meter that measures it would be."""
    profile = config.profiles[machine.profile]
    if profile.spec.energy is None:
        return None
    return _meter(profile, machine.id, machine.id, machine.energy_meter, machine.id)


def carbon_factor(setting: GridSetting) -> CarbonFactor:
    factor_id, factor = setting.resolved()
    return CarbonFactor(factor_id, factor.gas, factor.kg_per_kwh, factor.year)


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
