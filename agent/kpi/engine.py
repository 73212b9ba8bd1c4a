"""The KPI engine: samples and the time in, records out. Pure: no I/O, no clock of its own.

Time accounting. A machine's derived state holds from the sample that showed it until the
sample that shows another one. Every stretch of machine time is split at shift and break
boundaries (calendar pieces) and lands in exactly one period (a shift instance, or a no-shift
stretch) and one bucket (STATE_BUCKET, overridden by the calendar: breaks are planned stops,
time outside shifts is no_shift). A machine with no good sample for `offline_after_s` is offline
from the moment that limit passed. Parts are attributed to the period their reading fell in;
a meter's kWh between two readings is split over the buckets the machine spent that time in.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from agent.kpi.calendar import CalendarPiece, Period, PeriodKind, ShiftCalendar
from agent.kpi.counters import CounterEvent, CounterTracker
from agent.kpi.energy import EnergyTotals, energy_in_bucket, energy_kpis
from agent.kpi.oee import OeeTotals, compute_oee, sum_totals
from agent.kpi.rules import StateRules, TagValue
from agent.kpi.states import STATE_BUCKET, MachineState, TimeBucket
from agent.records import Record, RecordKind, rfc3339_ms
from agent.samples import Quality, Sample

PRODUCED_OUTSIDE_SHIFT = "produced_outside_shift"
PRODUCED_IN_BREAK = "produced_in_planned_stop"
COUNTER_FLAGS = {
    CounterEvent.RESET: "counter_reset",
    CounterEvent.SPIKE: "counter_spike_ignored",
    CounterEvent.REBASE: "counter_rebased",
    CounterEvent.WRAP: "counter_wrapped",
}
DATA_GAP = "data_gap"
ROUND_S = 3  # published times to the millisecond
ROUND_RATIO = 4


@dataclass(frozen=True)
class CounterSetup:
    tag: str
    modulus: float | None


@dataclass(frozen=True)
class MachineSetup:
    id: str
    line: str
    ideal_cycle_s: float
    rules: StateRules
    produced: CounterSetup | None = None
    good: CounterSetup | None = None
    rejected: CounterSetup | None = None
    max_parts_per_s: float = 10.0
    quality_from: str | None = None
    publish_tags: bool = False


@dataclass(frozen=True)
class MeterSetup:
    id: str
    machine: str | None  # None: the workshop's main meter
    kwh: CounterSetup
    max_kw: float


@dataclass(frozen=True)
class EngineSetup:
    machines: tuple[MachineSetup, ...]
    meters: tuple[MeterSetup, ...]
    calendar: ShiftCalendar
    publish_interval_s: float = 60.0
    offline_after_s: float = 10.0
    kg_co2e_per_kwh: float | None = None


@dataclass
class PeriodTotals:
    times: dict[TimeBucket, float] = field(default_factory=lambda: defaultdict(float))
    produced: float = 0.0
    good: float = 0.0
    rejected: float = 0.0
    ideal_s: float = 0.0
    energy: EnergyTotals = field(default_factory=EnergyTotals)
    flags: set[str] = field(default_factory=set)

    def oee_totals(self) -> OeeTotals:
        t = self.times
        loss = t[TimeBucket.SETUP_LOSS] + t[TimeBucket.IDLE_LOSS] + t[TimeBucket.FAULT_LOSS]
        return OeeTotals(
            pbt_s=t[TimeBucket.ACTUAL_PRODUCTION] + loss,
            apt_s=t[TimeBucket.ACTUAL_PRODUCTION],
            setup_s=t[TimeBucket.SETUP_LOSS],
            idle_s=t[TimeBucket.IDLE_LOSS],
            fault_s=t[TimeBucket.FAULT_LOSS],
            planned_stop_s=t[TimeBucket.PLANNED_STOP],
            no_shift_s=t[TimeBucket.NO_SHIFT],
            offline_s=t[TimeBucket.OFFLINE],
            produced=self.produced,
            good=self.good,
            ideal_s=self.ideal_s,
            ideal_good_s=self.ideal_s * (self.good / self.produced) if self.produced > 0 else 0.0,
        )


@dataclass
class MachineTracker:
    setup: MachineSetup
    state: MachineState
    since: float
    reason: str | None = None
    accounted_until: float = 0.0
    last_good: float | None = None
    values: dict[str, TagValue] = field(default_factory=dict)
    periods: dict[str, PeriodTotals] = field(default_factory=lambda: defaultdict(PeriodTotals))
    energy_window: dict[tuple[str, TimeBucket], float] = field(default_factory=lambda: defaultdict(float))
    counters: dict[str, CounterTracker] = field(default_factory=dict)


@dataclass
class MachineView:
    """What the live terminal view shows for one machine."""

    id: str
    line: str
    state: MachineState
    since: float
    reason: str | None
    period: str
    totals: OeeTotals
    energy: EnergyTotals


def _bucket(piece: CalendarPiece, state: MachineState) -> TimeBucket:
    if piece.kind is PeriodKind.NO_SHIFT:
        return TimeBucket.NO_SHIFT
    if piece.kind is PeriodKind.BREAK:
        return TimeBucket.PLANNED_STOP
    return STATE_BUCKET[state]


class KpiEngine:
    def __init__(self, setup: EngineSetup, start: float) -> None:
        self.setup = setup
        self.calendar = setup.calendar
        self.machines = {
            m.id: MachineTracker(m, MachineState.OFFLINE, start, accounted_until=start)
            for m in setup.machines
        }
        self.meters = {m.id: m for m in setup.meters}
        self.meter_counters = {m.id: CounterTracker(m.kwh.modulus, m.max_kw / 3600.0) for m in setup.meters}
        self.workshop_kwh: dict[str, float] = defaultdict(float)
        self.period = self.calendar.period_at(start)
        self.periods_seen: dict[str, Period] = {self.period.key: self.period}
        self.next_publish = start + setup.publish_interval_s
        self.now = start

    # -- ingestion ---------------------------------------------------------------------------

    def ingest(self, samples: Sequence[Sample]) -> list[Record]:
        records: list[Record] = []
        by_device: dict[str, list[Sample]] = defaultdict(list)
        for sample in samples:
            by_device[sample.device].append(sample)
        for device, device_samples in by_device.items():
            device_samples.sort(key=lambda s: s.ts)
            if device in self.machines:
                records += self._ingest_machine(self.machines[device], device_samples)
            elif device in self.meters:
                self._ingest_meter(self.meters[device], device_samples)
        return records

    def _ingest_machine(self, machine: MachineTracker, samples: list[Sample]) -> list[Record]:
        good = [s for s in samples if s.quality is Quality.GOOD]
        if not good:
            return []
        ts = good[-1].ts
        for sample in good:
            machine.values[sample.tag] = sample.value
        machine.last_good = max(machine.last_good or ts, ts)
        records: list[Record] = []
        verdict = machine.setup.rules.evaluate(machine.values)
        if verdict is not None:
            records += self._set_state(machine, verdict.state, verdict.reason, ts)
        self._count(machine, {s.tag: s for s in good})
        if machine.setup.publish_tags:
            values = {s.tag: s.value for s in good}
            records.append(
                Record(
                    RecordKind.TAGS,
                    ts,
                    {"machine": machine.setup.id, "line": machine.setup.line, "values": values},
                )
            )
        return records

    def _set_state(
        self, machine: MachineTracker, state: MachineState, reason: str | None, ts: float
    ) -> list[Record]:
        ts = max(ts, machine.accounted_until)
        self._account(machine, ts)
        if state is machine.state and reason == machine.reason:
            return []
        machine.state, machine.reason, machine.since = state, reason, ts
        return [
            Record(
                RecordKind.STATE,
                ts,
                {
                    "machine": machine.setup.id,
                    "line": machine.setup.line,
                    "state": state.value,
                    "since": rfc3339_ms(ts),
                    "reason": reason,
                },
            )
        ]

    def _account(self, machine: MachineTracker, until: float) -> None:
        """Attribute [accounted_until, until) to the machine's current state."""
        if until <= machine.accounted_until:
            return
        for piece in self.calendar.pieces(machine.accounted_until, until):
            self.periods_seen.setdefault(piece.period.key, piece.period)
            bucket = _bucket(piece, machine.state)
            seconds = piece.end - piece.start
            machine.periods[piece.period.key].times[bucket] += seconds
            machine.energy_window[(piece.period.key, bucket)] += seconds
        machine.accounted_until = until

    def _split(self, start: float, end: float) -> list[tuple[CalendarPiece, float]]:
        """The calendar pieces of [start, end) with their share of it: how a counter increment
        read at `end` is shared between the periods it was made in."""
        if end <= start:
            period = self.calendar.period_at(end)
            kind = PeriodKind.WORKING if period.is_shift else PeriodKind.NO_SHIFT
            if any(a <= end < b for a, b in period.breaks):
                kind = PeriodKind.BREAK
            return [(CalendarPiece(end, end, kind, period), 1.0)]
        return [
            (piece, (piece.end - piece.start) / (end - start)) for piece in self.calendar.pieces(start, end)
        ]

    def _count(self, machine: MachineTracker, latest: Mapping[str, Sample]) -> None:
        setup = machine.setup
        deltas: dict[str, float] = {}
        window: tuple[float, float] | None = None
        for role, counter in (
            ("produced", setup.produced),
            ("good", setup.good),
            ("rejected", setup.rejected),
        ):
            if counter is None or counter.tag not in latest:
                continue
            sample = latest[counter.tag]
            if not isinstance(sample.value, int | float) or not math.isfinite(sample.value):
                continue
            tracker = machine.counters.get(role)
            if tracker is None:
                tracker = machine.counters[role] = CounterTracker(counter.modulus, setup.max_parts_per_s)
            previous_ts = tracker.last_ts if tracker.last_value is not None else sample.ts
            gap = sample.ts - previous_ts > self.setup.offline_after_s
            step = tracker.update(float(sample.value), sample.ts)
            flags = machine.periods[self.calendar.period_at(sample.ts).key].flags
            if step.event is not None:
                flags.add(COUNTER_FLAGS[step.event])
            if step.delta > 0 and gap:
                flags.add(DATA_GAP)  # counted, but made while we could not see the machine
            deltas[role] = step.delta
            window = (previous_ts, sample.ts)
        if window is None:
            return
        if setup.good is None and "produced" in deltas:
            # Without a good counter, good = produced - rejected (or everything, without either).
            deltas["good"] = max(0.0, deltas["produced"] - deltas.get("rejected", 0.0))
        if not any(deltas.values()):
            return
        for piece, share in self._split(*window):
            self.periods_seen.setdefault(piece.period.key, piece.period)
            totals = machine.periods[piece.period.key]
            produced = deltas.get("produced", 0.0) * share
            totals.produced += produced
            totals.ideal_s += produced * setup.ideal_cycle_s
            totals.good += deltas.get("good", 0.0) * share
            totals.rejected += deltas.get("rejected", 0.0) * share
            if produced > 0 and piece.kind is PeriodKind.NO_SHIFT:
                totals.flags.add(PRODUCED_OUTSIDE_SHIFT)
            elif produced > 0 and piece.kind is PeriodKind.BREAK:
                totals.flags.add(PRODUCED_IN_BREAK)

    def _ingest_meter(self, meter: MeterSetup, samples: list[Sample]) -> None:
        reading = next(
            (s for s in reversed(samples) if s.tag == meter.kwh.tag and s.quality is Quality.GOOD),
            None,
        )
        if reading is None or not isinstance(reading.value, int | float):
            return
        counter = self.meter_counters[meter.id]
        previous_ts = counter.last_ts if counter.last_value is not None else reading.ts
        step = counter.update(float(reading.value), reading.ts)
        if meter.machine is None:
            self._main_meter(previous_ts, reading.ts, step.delta)
            return
        machine = self.machines[meter.machine]
        self._account(machine, max(reading.ts, machine.accounted_until))
        window = machine.energy_window
        total_s = sum(window.values())
        if step.delta > 0:
            if total_s <= 0:
                key = (self.calendar.period_at(reading.ts).key, STATE_BUCKET[machine.state])
                window = {key: 1.0}
                total_s = 1.0
            for (period_key, bucket), seconds in window.items():
                totals = machine.periods[period_key]
                totals.energy = totals.energy + energy_in_bucket(bucket, step.delta * seconds / total_s)
        if step.event is not None:
            machine.periods[self.calendar.period_at(reading.ts).key].flags.add(
                "meter_" + COUNTER_FLAGS[step.event]
            )
        machine.energy_window = defaultdict(float)

    def _main_meter(self, start: float, end: float, kwh: float) -> None:
        if kwh <= 0:
            return
        if end <= start:
            self.workshop_kwh[self.calendar.period_at(end).key] += kwh
            return
        for piece in self.calendar.pieces(start, end):
            self.workshop_kwh[piece.period.key] += kwh * (piece.end - piece.start) / (end - start)

    # -- time --------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Record]:
        """Move the engine to `now`: offline detection, periodic and final publication."""
        records: list[Record] = []
        self.now = max(self.now, now)
        for machine in self.machines.values():
            last = machine.last_good if machine.last_good is not None else machine.since
            deadline = last + self.setup.offline_after_s
            if machine.state is not MachineState.OFFLINE and now >= deadline:
                records += self._set_state(machine, MachineState.OFFLINE, "no data", deadline)
            self._account(machine, now)
        while now >= self.period.end:
            closing = self.period
            records += self._publish(closing, final=True, ts=closing.end)
            self.period = self.calendar.period_at(closing.end)
            self.periods_seen.setdefault(self.period.key, self.period)
            self.next_publish = closing.end + self.setup.publish_interval_s
        if now >= self.next_publish:
            records += self._publish(self.period, final=False, ts=now)
            self.next_publish = now + self.setup.publish_interval_s
        return records

    def publish_current(self, now: float) -> list[Record]:
        """The current period so far (not final): what a stopping agent leaves as its last word."""
        records = self.advance(now)
        return records + self._publish(self.period, final=False, ts=self.now)

    # -- publication -------------------------------------------------------------------------

    def machine_totals(self, machine: MachineTracker, period_key: str) -> OeeTotals:
        totals = machine.periods[period_key].oee_totals()
        source_id = machine.setup.quality_from
        if source_id is None or source_id not in self.machines:
            return totals
        source = self.machines[source_id].periods[period_key].oee_totals()
        if source.produced <= 0:
            return replace(totals, good=0.0, ideal_good_s=0.0) if totals.produced > 0 else totals
        share = source.good / source.produced
        return replace(totals, good=totals.produced * share, ideal_good_s=totals.ideal_s * share)

    def _publish(self, period: Period, *, final: bool, ts: float) -> list[Record]:
        records: list[Record] = []
        common = {"shift": period.name, "shift_start": rfc3339_ms(period.start), "final": final}
        by_line: dict[str, list[tuple[OeeTotals, EnergyTotals]]] = defaultdict(list)
        for machine in self.machines.values():
            totals = self.machine_totals(machine, period.key)
            period_totals = machine.periods[period.key]
            energy = period_totals.energy
            flags = sorted(period_totals.flags | set(compute_oee(totals).flags))
            ident = {"machine": machine.setup.id, "line": machine.setup.line}
            records.append(
                Record(RecordKind.OEE, ts, {**ident, **common, **oee_fields(totals), "flags": flags})
            )
            has_meter = any(m.machine == machine.setup.id for m in self.meters.values())
            if has_meter:
                records.append(
                    Record(
                        RecordKind.ENERGY,
                        ts,
                        {**ident, **common, **self.energy_fields(energy, totals)},
                    )
                )
            by_line[machine.setup.line].append((totals, energy))
        for line, items in by_line.items():
            line_totals = sum_totals(t for t, _ in items)
            line_energy = sum((e for _, e in items), EnergyTotals())
            records.append(
                Record(RecordKind.LINE_OEE, ts, {"line": line, **common, **oee_fields(line_totals)})
            )
            records.append(
                Record(
                    RecordKind.LINE_ENERGY,
                    ts,
                    {"line": line, **common, **self.energy_fields(line_energy, line_totals)},
                )
            )
        workshop = sum_totals(t for items in by_line.values() for t, _ in items)
        metered = sum((e for items in by_line.values() for _, e in items), EnergyTotals())
        records.append(Record(RecordKind.WORKSHOP_OEE, ts, {**common, **oee_fields(workshop)}))
        energy_record = {**common, **self.energy_fields(metered, workshop)}
        if any(m.machine is None for m in self.meters.values()):
            main = self.workshop_kwh.get(period.key, 0.0)
            energy_record["kwh_main_meter"] = round(main, 4)
            energy_record["unmetered_share"] = (
                round(max(0.0, main - metered.total_kwh) / main, ROUND_RATIO) if main > 0 else None
            )
        records.append(Record(RecordKind.WORKSHOP_ENERGY, ts, energy_record))
        if final:
            self._forget(period.key)
        return records

    def energy_fields(self, energy: EnergyTotals, totals: OeeTotals) -> dict[str, object]:
        kpis = energy_kpis(energy, totals.produced, totals.good, self.setup.kg_co2e_per_kwh)
        return {
            "kwh": round(kpis.kwh, 4),
            "kwh_producing": round(energy.producing_kwh, 4),
            "kwh_idle": round(energy.idle_kwh, 4),
            "kwh_no_shift": round(energy.no_shift_kwh, 4),
            "kwh_unattributed": round(energy.unattributed_kwh, 4),
            "kwh_per_unit": _round(kpis.kwh_per_unit, 6),
            "kwh_per_good": _round(kpis.kwh_per_good, 6),
            "idle_energy_share": _round(kpis.idle_share, ROUND_RATIO),
            "co2e_kg": _round(kpis.co2e_kg, 4),
            "co2e_kg_per_unit": _round(kpis.co2e_kg_per_unit, 6),
        }

    def _forget(self, period_key: str) -> None:
        for machine in self.machines.values():
            machine.periods.pop(period_key, None)
        self.workshop_kwh.pop(period_key, None)
        self.periods_seen.pop(period_key, None)

    # -- views -------------------------------------------------------------------------------

    def views(self) -> list[MachineView]:
        key = self.period.key
        return [
            MachineView(
                m.setup.id,
                m.setup.line,
                m.state,
                m.since,
                m.reason,
                self.period.name,
                self.machine_totals(m, key),
                m.periods[key].energy,
            )
            for m in self.machines.values()
        ]

    def line_totals(self) -> dict[str, OeeTotals]:
        by_line: dict[str, list[OeeTotals]] = defaultdict(list)
        for view in self.views():
            by_line[view.line].append(view.totals)
        return {line: sum_totals(items) for line, items in by_line.items()}


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def oee_fields(totals: OeeTotals) -> dict[str, object]:
    result = compute_oee(totals)
    return {
        "pbt_s": round(totals.pbt_s, ROUND_S),
        "apt_s": round(totals.apt_s, ROUND_S),
        "setup_s": round(totals.setup_s, ROUND_S),
        "idle_s": round(totals.idle_s, ROUND_S),
        "fault_s": round(totals.fault_s, ROUND_S),
        "planned_stop_s": round(totals.planned_stop_s, ROUND_S),
        "no_shift_s": round(totals.no_shift_s, ROUND_S),
        "offline_s": round(totals.offline_s, ROUND_S),
        "ideal_s": round(totals.ideal_s, ROUND_S),
        "produced": round(totals.produced, 3),
        "good": round(totals.good, 3),
        "availability": _round(result.availability, ROUND_RATIO),
        "performance": _round(result.performance, ROUND_RATIO),
        "quality": _round(result.quality, ROUND_RATIO),
        "oee": _round(result.oee, ROUND_RATIO),
        "nee": _round(result.nee, ROUND_RATIO),
        "teep": _round(result.teep, ROUND_RATIO),
        "coverage": _round(result.coverage, ROUND_RATIO),
    }


def all_records_of(kind: RecordKind, records: Iterable[Record]) -> list[Record]:
    return [r for r in records if r.kind is kind]
