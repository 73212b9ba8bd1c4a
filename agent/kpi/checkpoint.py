"""The KPI engine's state as plain data (a checkpoint), and an engine rebuilt from it.

A snapshot holds all the engine needs to carry on with the shift after a restart: per machine the
state with its reason and since, how far its time is accounted, its last good reading, the tag
values its state rules and variant read, the open periods' totals (every time bucket,
counts, ideal time, energy split, flags), the energy window since the last meter reading, the
micro-stop in progress and each counter's baseline (last value, its time, readings awaiting
confirmation); per meter its baseline and latest kW; the main meter's kWh per open period (none: no
reading yet); the current period,
the day's totals, the next periodic publication, and which periods were already published final.

Also: per machine the tags whose latest read failed, its producing and offline stretches since its
oldest counter baseline (how parts read after a gap are shared), each machine's and crew's flags of
the day so far, and the machines removed from the configuration whose figures are still to be
published (agent/kpi/engine.py).

It also holds the setup it was made under, except the state rules (compiled expressions, taken
from the current configuration): an engine is rebuilt exactly as it was, and what changed since is
then applied by the same path as a reload (`KpiEngine.reconfigure`).

Later additions (display names, statutory dates, the crew rotation and the crews' day totals) are
optional keys: a checkpoint written before them is read with their defaults, and the configuration's
values arrive by `reconfigure` as for any change.

Plain data: dicts with string keys, lists, strings, numbers, booleans and None, so any JSON
encoder stores it, and floats come back bit for bit. FORMAT changes whenever the layout does;
`restore` refuses any other format with a CheckpointError, as it refuses data it cannot read.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from agent.kpi.calendar import CrewRotation, ShiftCalendar, ShiftDef
from agent.kpi.counters import CounterTracker
from agent.kpi.energy import CarbonFactor, EnergyTotals, MeterInfo
from agent.kpi.engine import (
    CounterSetup,
    EngineSetup,
    KpiEngine,
    LineSetup,
    MachineSetup,
    MachineTracker,
    MeterSetup,
    Names,
    PeriodTotals,
)
from agent.kpi.oee import OeeTotals
from agent.kpi.rules import StateRules
from agent.kpi.states import MachineState, TimeBucket

FORMAT = 2  # 2: energy readings per period (no data vs no consumption), whole counts, meters' kW
NO_RULES = StateRules(())  # a machine no longer configured: published once more, never evaluated
UNKNOWN_LINE = "unknown"  # the line of a removed machine whose setup an old checkpoint lost

Data = dict[str, Any]


class CheckpointError(ValueError):
    """A checkpoint this engine cannot continue from; the message says why."""


# -- snapshot -----------------------------------------------------------------------------------


def snapshot(engine: KpiEngine) -> Data:
    """The engine's whole state as plain data; cheap enough for hundreds of machines every few seconds."""
    return {
        "format": FORMAT,
        "now": engine.now,
        "period": {"key": engine.period.key, "start": engine.period.start},
        "next_publish": engine.next_publish,
        "resumed_at": engine.resumed_at,
        "closed": dict(engine.closed),
        "closed_until": None if math.isinf(engine.closed_until) else engine.closed_until,
        "workshop_kwh": dict(engine.workshop_kwh),
        "day_totals": {key: dict(vars(totals)) for key, totals in engine.day_totals.items()},
        "day_energy": {key: dict(vars(energy)) for key, energy in engine.day_energy.items()},
        "day_main_kwh": engine.day_main_kwh,
        "crew_day_totals": {key: dict(vars(totals)) for key, totals in engine.crew_day_totals.items()},
        "crew_day_energy": {key: dict(vars(energy)) for key, energy in engine.crew_day_energy.items()},
        "crew_day_energy_totals": {
            key: dict(vars(totals)) for key, totals in engine.crew_day_energy_totals.items()
        },
        "day_flags": {key: sorted(flags) for key, flags in engine.day_flags.items()},
        "crew_day_flags": {key: sorted(flags) for key, flags in engine.crew_day_flags.items()},
        "setup": _setup_data(engine.setup),
        "retired": {
            "machines": [_machine_setup_data(m) for m in engine.retired.values()],
            "meters": {key: _meter_setup_data(m) for key, m in engine.retired_meters.items()},
        },
        "machines": {key: _tracker_data(machine) for key, machine in engine.machines.items()},
        "meters": {key: _counter_data(counter) for key, counter in engine.meter_counters.items()},
        "meter_kw": dict(engine.meter_kw),
    }


def _tracker_data(machine: MachineTracker) -> Data:
    return {
        "state": machine.state.value,
        "since": machine.since,
        "reason": machine.reason,
        "accounted_until": machine.accounted_until,
        "last_good": machine.last_good,
        "values": {name: machine.values[name] for name in _read_by(machine.setup) if name in machine.values},
        "periods": {key: _totals_data(totals) for key, totals in machine.periods.items()},
        "energy_window": [[key, bucket.value, s] for (key, bucket), s in machine.energy_window.items()],
        "counters": {role: _counter_data(counter) for role, counter in machine.counters.items()},
        "stop_started": machine.stop_started,
        "stop_pieces": [[key, bucket.value, s] for (key, bucket), s in machine.stop_pieces.items()],
        "spans": [list(span) for span in machine.spans],
        "unreadable": sorted(machine.unreadable),
    }


def _read_by(setup: MachineSetup) -> frozenset[str]:
    """The tags whose last values the engine reads again: the state rules' and the variant's. A
    restarted agent needs them before their next reading (a slow tag's, say); the rest are only
    passed through, and a checkpoint of a workshop's raw values would be many times larger."""
    names = {name for rule in setup.rules.rules for name in rule.names | rule.reason_names}
    if setup.variant_tag is not None:
        names.add(setup.variant_tag)
    return frozenset(names)


def _totals_data(totals: PeriodTotals) -> Data:
    return {
        "times": {bucket.value: seconds for bucket, seconds in totals.times.items()},
        "micro_stop_s": totals.micro_stop_s,
        "micro_stops": totals.micro_stops,
        "produced": totals.produced,
        "good": totals.good,
        "rejected": totals.rejected,
        "ideal_s": totals.ideal_s,
        "produced_unobserved": totals.produced_unobserved,
        "energy": dict(vars(totals.energy)),
        "flags": sorted(totals.flags),
    }


def _counter_data(counter: CounterTracker) -> Data:
    return {
        "modulus": counter.modulus,
        "max_rate_per_s": counter.max_rate_per_s,
        "last_value": counter.last_value,
        "last_ts": counter.last_ts,
        "pending": None if counter.pending is None else list(counter.pending),
    }


def _counter_setup_data(counter: CounterSetup | None) -> list[Any] | None:
    return None if counter is None else [counter.tag, counter.modulus]


def _machine_setup_data(m: MachineSetup) -> Data:
    return {
        "id": m.id,
        "line": m.line,
        "ideal_cycle_s": m.ideal_cycle_s,
        "produced": _counter_setup_data(m.produced),
        "good": _counter_setup_data(m.good),
        "rejected": _counter_setup_data(m.rejected),
        "max_parts_per_s": m.max_parts_per_s,
        "quality_from": m.quality_from,
        "publish_tags": m.publish_tags,
        "variant_tag": m.variant_tag,
        "ideal_cycle_by_variant": dict(m.ideal_cycle_by_variant),
        "name": m.name,
    }


def _meter_setup_data(m: MeterSetup) -> Data:
    return {
        "id": m.id,
        "machine": m.machine,
        "kwh": _counter_setup_data(m.kwh),
        "max_kw": m.max_kw,
        "power_tag": m.power_tag,
        "info": [
            m.info.accuracy_class,
            m.info.ct_ratio,
            None if m.info.calibration_due is None else m.info.calibration_due.isoformat(),
        ],
        "device": m.device,
    }


def _setup_data(setup: EngineSetup) -> Data:
    calendar = setup.calendar
    return {
        "machines": [_machine_setup_data(m) for m in setup.machines],
        "meters": [_meter_setup_data(m) for m in setup.meters],
        "calendar": {
            "shifts": [
                [s.name, s.start_min, s.end_min, [list(b) for b in s.breaks]] for s in calendar.shifts
            ],
            "timezone": calendar.timezone,
            "days_off": sorted(day.isoformat() for day in calendar.days_off),
            "working_weekdays": sorted(calendar.working_weekdays),
            "maintenance": [list(window) for window in calendar.maintenance],
            "holidays": sorted(day.isoformat() for day in calendar.holidays),
            "workdays": sorted(day.isoformat() for day in calendar.workdays),
            "worked": sorted(day.isoformat() for day in calendar.worked),
            "rotation": None
            if calendar.rotation is None
            else {
                "anchor": calendar.rotation.anchor.isoformat(),
                "pattern": [[list(pair) for pair in day] for day in calendar.rotation.pattern],
            },
        },
        "publish_interval_s": setup.publish_interval_s,
        "offline_after_s": setup.offline_after_s,
        "carbon": None if setup.carbon is None else dict(vars(setup.carbon)),
        "kgce_per_kwh": setup.kgce_per_kwh,
        "micro_stop_s": setup.micro_stop_s,
        "micro_stops_lower_performance": setup.micro_stops_lower_performance,
        "lines": [[line.id, line.constraint] for line in setup.lines],
        "line_names": {line.id: line.name for line in setup.lines if line.name},
        "names": {
            "workshop": setup.names.workshop,
            "shifts": dict(setup.names.shifts),
            "crews": dict(setup.names.crews),
            "stops": dict(setup.names.stops),
        },
    }


# -- restore ------------------------------------------------------------------------------------


def restore(data: Mapping[str, Any], current: EngineSetup) -> KpiEngine:
    """The engine exactly as it was when the snapshot was taken, under the setup it had then (with
    the current state rules). The caller continues it (`resume`) and applies the current setup
    (`reconfigure`). Raises CheckpointError for another format or data that does not fit."""
    found = data.get("format") if isinstance(data, Mapping) else None
    if found != FORMAT:
        raise CheckpointError(f"checkpoint format {found!r}; this agent reads format {FORMAT}")
    try:
        return _restore(data, current)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
        raise CheckpointError(
            f"checkpoint does not fit format {FORMAT}: {type(error).__name__}: {error}"
        ) from None


def _restore(data: Mapping[str, Any], current: EngineSetup) -> KpiEngine:
    setup = _setup_from(data["setup"], current)
    retired_data = data.get("retired", {})
    retired = tuple(_machine_setup_from(m, NO_RULES) for m in retired_data.get("machines", []))
    tracked = {str(key) for key in data["machines"]}
    # a removed machine's tracker lives until its period closes; its setup until its day closes
    engine = KpiEngine(
        replace(setup, machines=setup.machines + tuple(m for m in retired if m.id in tracked)),
        float(data["now"]),
    )
    engine.setup = setup
    engine.retired = {m.id: m for m in retired}
    engine.retired_meters = {str(k): _meter_setup_from(m) for k, m in retired_data.get("meters", {}).items()}
    engine.index_meters()  # the engine as it was: its removed machines' meters too
    period = engine.calendar.period_at(float(data["period"]["start"]))
    if period.key != data["period"]["key"]:
        raise CheckpointError(f"period {data['period']['key']!r} is not in the checkpoint's own calendar")
    engine.period = period
    engine.next_publish = float(data["next_publish"])
    engine.resumed_at = float(data["resumed_at"])
    engine.closed = {str(key): float(ts) for key, ts in data["closed"].items()}
    closed_until = data["closed_until"]
    engine.closed_until = -math.inf if closed_until is None else float(closed_until)
    engine.workshop_kwh = {str(k): float(v) for k, v in data["workshop_kwh"].items()}
    engine.day_totals = defaultdict(OeeTotals, {k: OeeTotals(**v) for k, v in data["day_totals"].items()})
    engine.day_energy = defaultdict(
        EnergyTotals, {k: EnergyTotals(**v) for k, v in data["day_energy"].items()}
    )
    engine.day_main_kwh = None if data["day_main_kwh"] is None else float(data["day_main_kwh"])
    for orphan in sorted(set(engine.day_totals) - set(engine.machines) - set(engine.retired)):
        # written before removed machines were kept: its day totals stay, under its current setup
        # if it has one (then a reload adds it back), else as a machine of an unknown line
        engine.retired[orphan] = next(
            (m for m in current.machines if m.id == orphan),
            MachineSetup(orphan, UNKNOWN_LINE, 0.0, NO_RULES),
        )
    engine.crew_day_totals = defaultdict(
        OeeTotals, {k: OeeTotals(**v) for k, v in data.get("crew_day_totals", {}).items()}
    )
    engine.crew_day_energy = defaultdict(
        EnergyTotals, {k: EnergyTotals(**v) for k, v in data.get("crew_day_energy", {}).items()}
    )
    engine.crew_day_energy_totals = defaultdict(
        OeeTotals, {k: OeeTotals(**v) for k, v in data.get("crew_day_energy_totals", {}).items()}
    )
    engine.day_flags = defaultdict(set, {str(k): set(v) for k, v in data.get("day_flags", {}).items()})
    engine.crew_day_flags = defaultdict(
        set, {str(k): set(v) for k, v in data.get("crew_day_flags", {}).items()}
    )
    machines = data["machines"]
    if set(machines) != set(engine.machines):
        raise CheckpointError("the machines' state does not match the checkpoint's own setup")
    for key, machine in engine.machines.items():
        _fill_tracker(machine, machines[key])
    meters = data["meters"]
    if set(meters) != set(engine.meter_counters):
        raise CheckpointError("the meters' state does not match the checkpoint's own setup")
    engine.meter_counters = {key: _counter_from(meters[key]) for key in engine.meter_counters}
    engine.meter_kw = {str(k): float(v) for k, v in data["meter_kw"].items() if k in engine.meters}
    return engine


def _fill_tracker(machine: MachineTracker, data: Mapping[str, Any]) -> None:
    machine.state = MachineState(data["state"])
    machine.since = float(data["since"])
    machine.reason = data["reason"]
    machine.accounted_until = float(data["accounted_until"])
    machine.last_good = None if data["last_good"] is None else float(data["last_good"])
    machine.values = dict(data["values"])
    machine.periods = defaultdict(PeriodTotals, {k: _totals_from(v) for k, v in data["periods"].items()})
    machine.energy_window = defaultdict(float, _pieces_from(data["energy_window"]))
    machine.counters = {role: _counter_from(counter) for role, counter in data["counters"].items()}
    machine.stop_started = None if data["stop_started"] is None else float(data["stop_started"])
    machine.stop_pieces = defaultdict(float, _pieces_from(data["stop_pieces"]))
    machine.spans = [(float(a), float(b), bool(offline)) for a, b, offline in data.get("spans", [])]
    machine.unreadable = {str(tag) for tag in data.get("unreadable", [])}


def _pieces_from(rows: list[list[Any]]) -> dict[tuple[str, TimeBucket], float]:
    return {(str(key), TimeBucket(bucket)): float(seconds) for key, bucket, seconds in rows}


def _totals_from(data: Mapping[str, Any]) -> PeriodTotals:
    totals = PeriodTotals(
        micro_stop_s=float(data["micro_stop_s"]),
        micro_stops=int(data["micro_stops"]),
        produced=float(data["produced"]),
        good=float(data["good"]),
        rejected=float(data["rejected"]),
        ideal_s=float(data["ideal_s"]),
        produced_unobserved=float(data.get("produced_unobserved", 0.0)),
        energy=EnergyTotals(**data["energy"]),
        flags=set(data["flags"]),
    )
    for bucket, seconds in data["times"].items():
        totals.times[TimeBucket(bucket)] = float(seconds)
    return totals


def _counter_from(data: Mapping[str, Any]) -> CounterTracker:
    pending = data["pending"]
    return CounterTracker(
        modulus=None if data["modulus"] is None else float(data["modulus"]),
        max_rate_per_s=float(data["max_rate_per_s"]),
        last_value=None if data["last_value"] is None else float(data["last_value"]),
        last_ts=float(data["last_ts"]),
        pending=None if pending is None else [float(v) for v in pending],
    )


def _counter_setup_from(data: list[Any] | None) -> CounterSetup | None:
    if data is None:
        return None
    tag, modulus = data
    return CounterSetup(str(tag), None if modulus is None else float(modulus))


def _carbon_from(data: Mapping[str, Any]) -> CarbonFactor:
    gas = data["gas"]
    if gas not in ("co2", "co2e"):
        raise CheckpointError(f"grid factor gas {gas!r}")
    return CarbonFactor(str(data["id"]), gas, float(data["kg_per_kwh"]), int(data["year"]))


def _setup_from(data: Mapping[str, Any], current: EngineSetup) -> EngineSetup:
    rules = {m.id: m.rules for m in current.machines}
    machines = tuple(_machine_setup_from(m, rules.get(m["id"], NO_RULES)) for m in data["machines"])
    meters = [_meter_setup_from(m) for m in data["meters"]]
    calendar = data["calendar"]
    line_names = data.get("line_names", {})
    names = data.get("names", {})
    return EngineSetup(
        machines=machines,
        meters=tuple(meters),
        calendar=ShiftCalendar(
            tuple(
                ShiftDef(name, int(start), int(end), tuple((int(a), int(b)) for a, b in breaks))
                for name, start, end, breaks in calendar["shifts"]
            ),
            calendar["timezone"],
            frozenset(dt.date.fromisoformat(day) for day in calendar["days_off"]),
            frozenset(int(day) for day in calendar["working_weekdays"]),
            tuple((float(a), float(b)) for a, b in calendar["maintenance"]),
            holidays=_dates(calendar.get("holidays", [])),
            workdays=_dates(calendar.get("workdays", [])),
            worked=_dates(calendar.get("worked", [])),
            rotation=_rotation_from(calendar.get("rotation")),
        ),
        publish_interval_s=float(data["publish_interval_s"]),
        offline_after_s=float(data["offline_after_s"]),
        carbon=None if data["carbon"] is None else _carbon_from(data["carbon"]),
        kgce_per_kwh=float(data["kgce_per_kwh"]),
        micro_stop_s=float(data["micro_stop_s"]),
        micro_stops_lower_performance=bool(data["micro_stops_lower_performance"]),
        lines=tuple(
            LineSetup(line_id, constraint, name=str(line_names.get(line_id, "")))
            for line_id, constraint in data["lines"]
        ),
        names=Names(
            workshop=str(names.get("workshop", "")),
            shifts={str(k): str(v) for k, v in names.get("shifts", {}).items()},
            crews={str(k): str(v) for k, v in names.get("crews", {}).items()},
            stops={str(k): str(v) for k, v in names.get("stops", {}).items()},
        ),
    )


def _machine_setup_from(m: Mapping[str, Any], rules: StateRules) -> MachineSetup:
    return MachineSetup(
        id=m["id"],
        line=m["line"],
        ideal_cycle_s=float(m["ideal_cycle_s"]),
        rules=rules,
        produced=_counter_setup_from(m["produced"]),
        good=_counter_setup_from(m["good"]),
        rejected=_counter_setup_from(m["rejected"]),
        max_parts_per_s=float(m["max_parts_per_s"]),
        quality_from=m["quality_from"],
        publish_tags=bool(m["publish_tags"]),
        variant_tag=m["variant_tag"],
        ideal_cycle_by_variant={str(k): float(v) for k, v in m["ideal_cycle_by_variant"].items()},
        name=str(m.get("name", "")),
    )


def _meter_setup_from(m: Mapping[str, Any]) -> MeterSetup:
    kwh = _counter_setup_from(m["kwh"])
    if kwh is None:
        raise CheckpointError(f"meter {m['id']!r} has no kWh counter")
    accuracy_class, ct_ratio, due = m["info"]
    return MeterSetup(
        m["id"],
        m["machine"],
        kwh,
        float(m["max_kw"]),
        power_tag=m["power_tag"],
        info=MeterInfo(accuracy_class, ct_ratio, None if due is None else dt.date.fromisoformat(due)),
        device=m["device"],
    )


def _dates(days: list[str]) -> frozenset[dt.date]:
    return frozenset(dt.date.fromisoformat(day) for day in days)


def _rotation_from(data: Mapping[str, Any] | None) -> CrewRotation | None:
    if data is None:
        return None
    return CrewRotation(
        dt.date.fromisoformat(data["anchor"]),
        tuple(tuple((str(shift), str(crew)) for shift, crew in day) for day in data["pattern"]),
    )
