"""Building blocks for KPI engine tests: a machine whose signals follow a scripted timeline."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from agent.kpi.calendar import ShiftCalendar, ShiftDef
from agent.kpi.energy import CarbonFactor
from agent.kpi.engine import CounterSetup, EngineSetup, KpiEngine, MachineSetup, MeterSetup
from agent.kpi.rules import StateRules, compile_rule
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind
from agent.samples import Quality, Sample

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
TAGS = frozenset({"running", "alarm", "alarm_code", "setup", "count", "rejects"})
U32 = float(2**32)
POWER_KW = {MachineState.PRODUCING: 6.0}
DEFAULT_KW = 2.0
NATIONAL_2022 = CarbonFactor("cn-mee-2022-national", "co2", 0.5366, 2022)

RULES = StateRules(
    (
        compile_rule(MachineState.FAULT, "alarm", "alarm {alarm_code}", TAGS),
        compile_rule(MachineState.SETUP, "setup", None, TAGS),
        compile_rule(MachineState.PRODUCING, "running", None, TAGS),
        compile_rule(MachineState.IDLE, None, None, TAGS),
    )
)

DAY_AND_NIGHT = (
    ShiftDef("day", 8 * 60, 20 * 60, ((11 * 60 + 30, 12 * 60), (17 * 60, 17 * 60 + 30))),
    ShiftDef("night", 20 * 60, 8 * 60, ((0, 30),)),
)


def local(hour: int, minute: int = 0, day: int = 24) -> float:
    return dt.datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).timestamp()


def machine_setup(
    machine_id: str = "m1", line: str = "l1", ideal_cycle_s: float = 4.0, **extra: object
) -> MachineSetup:
    return MachineSetup(
        id=machine_id,
        line=line,
        ideal_cycle_s=ideal_cycle_s,
        rules=RULES,
        produced=CounterSetup("count", U32),
        rejected=CounterSetup("rejects", U32),
        max_parts_per_s=1.0,
        **extra,  # type: ignore[arg-type]
    )


def engine_setup(
    *machines: MachineSetup,
    meters: tuple[MeterSetup, ...] = (),
    offline_after_s: float = 30.0,
    publish_interval_s: float = 3600.0,
    shifts: tuple[ShiftDef, ...] = DAY_AND_NIGHT,
) -> EngineSetup:
    return EngineSetup(
        machines or (machine_setup(),),
        meters,
        ShiftCalendar(shifts, "Asia/Shanghai"),
        publish_interval_s=publish_interval_s,
        offline_after_s=offline_after_s,
        carbon=NATIONAL_2022,
    )


@dataclass
class ScriptedMachine:
    """state_at(t) gives the state; the part counter advances one part per `cycle_s` of producing."""

    id: str
    state_at: Callable[[float], MachineState]
    origin: float
    cycle_s: float = 5.0
    counter_start: float = 0.0
    reject_every: int = 100
    alarm_code: int = 1203

    def producing_seconds(self, t: float, step: float) -> float:
        # exact for timelines whose changes fall on multiples of `step`
        total = 0.0
        cursor = self.origin
        while cursor < t:
            if self.state_at(cursor) is MachineState.PRODUCING:
                total += min(step, t - cursor)
            cursor += step
        return total

    def samples(self, t: float, produced: float) -> list[Sample]:
        state = self.state_at(t)
        count = (self.counter_start + produced) % U32
        return [
            Sample(self.id, "running", state is MachineState.PRODUCING, t),
            Sample(self.id, "alarm", state is MachineState.FAULT, t),
            Sample(self.id, "alarm_code", self.alarm_code if state is MachineState.FAULT else 0, t),
            Sample(self.id, "setup", state is MachineState.SETUP, t),
            Sample(self.id, "count", count, t),
            Sample(self.id, "rejects", float(int(produced) // self.reject_every), t),
        ]


def bad_samples(machine_id: str, t: float) -> list[Sample]:
    return [Sample(machine_id, tag, None, t, Quality.BAD) for tag in sorted(TAGS)]


def replay(
    engine: KpiEngine,
    machines: list[ScriptedMachine],
    start: float,
    end: float,
    step: float,
    *,
    outage: tuple[float, float] | None = None,
    meter: tuple[str, str] | None = None,
    meter_every: float = 60.0,
) -> list[Record]:
    """Feed the engine one sample set per `step` from start to end inclusive; returns every record."""
    records: list[Record] = []
    produced = {m.id: 0.0 for m in machines}
    kwh = 1000.0
    t = start
    last_t = start
    for t in _times(start, end, step):
        batch: list[Sample] = []
        for m in machines:
            if t > start and m.state_at(last_t) is MachineState.PRODUCING:
                produced[m.id] += (t - last_t) / m.cycle_s
            if outage and outage[0] < t < outage[1]:
                batch += bad_samples(m.id, t)
            else:
                batch += m.samples(t, float(int(produced[m.id] + 1e-9)))
        if meter:
            machine_id, meter_id = meter
            state = next(m for m in machines if m.id == machine_id).state_at(last_t)
            kwh += POWER_KW.get(state, DEFAULT_KW) * (t - last_t) / 3600
            if (t - start) % meter_every == 0:  # the first reading, at start, is the baseline
                batch.append(Sample(meter_id, "kwh", kwh, t))
        last_t = t
        records += engine.ingest(batch)
        records += engine.advance(t)
    return records


def _times(start: float, end: float, step: float) -> Iterator[float]:
    count = round((end - start) / step)
    for index in range(count + 1):
        yield start + index * step


def finals(
    records: list[Record], kind: RecordKind, period: str = "shift", **match: object
) -> list[dict[str, Any]]:
    return [
        r.fields
        for r in records
        if r.kind is kind
        and r.fields.get("final")
        and r.fields["period"] == period
        and all(r.fields.get(k) == v for k, v in match.items())
    ]
