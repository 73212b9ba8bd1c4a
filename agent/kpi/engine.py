"""The KPI engine: samples and the time in, records out. Pure: no I/O, no clock of its own.

Time accounting. A machine's derived state holds from the sample that showed it until the
sample that shows another one. Every stretch of machine time is split at shift and break
boundaries (calendar pieces) and lands in exactly one period (a shift instance, or a no-shift
stretch) and one bucket (STATE_BUCKET, overridden by the calendar: breaks and maintenance are
planned stops, time outside shifts is no_shift). A machine with no good sample for
`offline_after_s` is offline from the moment that limit passed. A counter increment is shared
between the periods the interval since the previous reading covers; a meter's kWh between two
readings is split over the buckets the machine spent that time in.

Publication. Each period is published every `publish_interval_s` (final: false) and once more,
final, when it closes; when the production day changes, the day's totals follow (period: day).
Every machine's state is published when it changes and again with each periodic publication.
A period closes once every counter and meter has been read past its end (at the latest
`offline_after_s` after it), so the readings that straddle its end still bring it its share of
parts and kWh; a stop closes it at once. A closed period is
never reopened and never published again: a share of an increment that falls into one (a device
that came back after its end) goes to the open period instead.

Names and crews. Records carry the display names next to the ids (`machine_name`, `line_name`,
`shift_name`, `workshop_name`, `crew_name`; the id where no name is configured), and every shift
record its `crew` (null without a rotation). When a production day closes, each crew's totals of
that day over the whole workshop follow (kinds crew_oee and crew_energy, period: day): sums of
times and counts of the crew's shifts, so a month per crew is the sum of its days.

Gaps. Time nobody observed is offline with a reason that becomes a flag on the periods it
touches: `agent_restart` (the agent was down: see `resume` and `fresh`) and `clock_step` (the
wall clock jumped forward: see `clock_step`). The engine's time never goes backwards: after a
step back it holds until the clock catches up (time already accounted is not accounted twice),
while states, parts and kWh go on being tracked.
"""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import groupby
from operator import attrgetter

from agent.kpi.calendar import CalendarPiece, Period, PeriodKind, ShiftCalendar
from agent.kpi.counters import CounterEvent, CounterTracker, split_whole
from agent.kpi.energy import GBT_2589_KGCE_PER_KWH, CarbonFactor, EnergyTotals, MeterInfo, energy_in_bucket
from agent.kpi.fields import energy_fields, oee_fields, whole
from agent.kpi.oee import OeeTotals, compute_oee, sum_totals
from agent.kpi.rules import RULE_ERROR, UNDETERMINED, StateRules
from agent.kpi.states import STATE_BUCKET, MachineState, TimeBucket
from agent.records import Record, RecordKind, rfc3339_ms
from agent.samples import GOOD, SAMPLE_DEVICE, Sample, TagValue

PRODUCED_OUTSIDE_SHIFT = "produced_outside_shift"
PRODUCED_IN_BREAK = "produced_in_planned_stop"
DATA_GAP = "data_gap"
COUNTER_FLAGS = {
    CounterEvent.RESET: "counter_reset",
    CounterEvent.SPIKE: "counter_spike_ignored",
    CounterEvent.REBASE: "counter_rebased",
    CounterEvent.WRAP: "counter_wrapped",
}
STOP_STATES = frozenset({MachineState.IDLE, MachineState.FAULT})  # what a micro-stop can be made of
STOP_BUCKETS = frozenset({TimeBucket.IDLE_LOSS, TimeBucket.FAULT_LOSS})
SPAN_STATES = frozenset({MachineState.PRODUCING, MachineState.OFFLINE})  # where parts may have been made
MAX_SPANS = 4096  # producing/offline stretches kept per machine while its counters go unread
AGENT_RESTART = "agent_restart"
CLOCK_STEP = "clock_step"
RESTART_REASON = "agent restart"
CLOCK_STEP_REASON = "clock step"
_SAMPLE_TS = attrgetter("ts")  # a sort key in C: the samples of a poll are sorted by time
NO_DATA_REASON = "no data"
REMOVED_REASON = "removed from configuration"
MACHINE_REMOVED = "machine_removed"  # the machine was taken out of the configuration in this period
GAP_FLAGS = {RESTART_REASON: AGENT_RESTART, CLOCK_STEP_REASON: CLOCK_STEP}  # offline reason -> flag
OFFLINE_FLAGS = {**GAP_FLAGS, NO_DATA_REASON: DATA_GAP}  # the flag on the periods such time falls in
METER_FLAG_PREFIX = "meter_"  # the flags about a machine's meter, carried on its energy records too
QUALITY_SOURCE_NO_DATA = "quality_source_no_data"  # quality_from a machine that made nothing then
UNKNOWN_WITHOUT_QUALITY = ("quality", "oee", "nee", "teep")  # the figures a quality goes into
# A metered machine made parts in a closed period while its meter, read, counted 0 kWh: a meter
# not wired, a CT clamp fallen off, a wrong register. Its per-part energy is unknown, not 0.
METER_SILENT = "meter_silent"
PER_PART_ENERGY_KEYS = ("kwh_per_unit", "kwh_per_good", "kgce_per_unit", "kgce_per_good")
CLOSED_KEPT = 64  # periods remembered as published final by key: three weeks of three shifts a day


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
    variant_tag: str | None = None
    ideal_cycle_by_variant: Mapping[str, float] = field(default_factory=dict)
    name: str = ""  # as people call it; the id when empty

    @property
    def display(self) -> str:
        return self.name or self.id

    def ideal_cycle(self, variant: TagValue | None) -> float:
        return self.ideal_cycle_by_variant.get(variant_key(variant), self.ideal_cycle_s)


def variant_key(value: TagValue | None) -> str:
    """Register values are numbers; 3, 3.0 and '3' name the same variant."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass(frozen=True)
class MeterSetup:
    """A kWh counter and what it measures: a meter of its own, or a machine's own PLC (`device`:
    the machine, whose samples carry the registers; counted exactly as a meter on the machine)."""

    id: str
    machine: str | None  # None: the workshop's main meter
    kwh: CounterSetup
    max_kw: float
    power_tag: str | None = None  # real power now, published as `kw`
    info: MeterInfo = field(default_factory=MeterInfo)
    device: str | None = None  # whose samples carry the registers; None: the meter's own (id)

    @property
    def source(self) -> str:
        return self.device or self.id

    @property
    def own_plc(self) -> bool:
        return self.device is not None and self.device == self.machine


@dataclass(frozen=True)
class LineSetup:
    id: str
    constraint: str | None = None  # a serial line's bottleneck machine: its OEE is the line's
    name: str = ""


@dataclass(frozen=True)
class Names:
    """Display names that are not a machine's or a line's: the workshop, shifts and crews by id."""

    workshop: str = ""
    shifts: Mapping[str, str] = field(default_factory=dict)
    crews: Mapping[str, str] = field(default_factory=dict)
    # planned stops by where they start: "<shift id>@HH:MM" for breaks, "YYYY-MM-DDTHH:MM" for
    # maintenance windows (local times)
    stops: Mapping[str, str] = field(default_factory=dict)

    def planned_stop(self, shift_id: str, local_start: dt.datetime) -> str | None:
        return self.stops.get(f"{local_start:%Y-%m-%dT%H:%M}") or self.stops.get(
            f"{shift_id}@{local_start:%H:%M}"
        )

    def shift(self, shift_id: str) -> str:
        return self.shifts.get(shift_id, shift_id)

    def crew(self, crew_id: str | None) -> str | None:
        return None if crew_id is None else self.crews.get(crew_id, crew_id)


@dataclass(frozen=True)
class EngineSetup:
    machines: tuple[MachineSetup, ...]
    meters: tuple[MeterSetup, ...]
    calendar: ShiftCalendar
    publish_interval_s: float = 60.0
    offline_after_s: float = 10.0
    carbon: CarbonFactor | None = None
    kgce_per_kwh: float = GBT_2589_KGCE_PER_KWH
    micro_stop_s: float = 0.0
    micro_stops_lower_performance: bool = False
    lines: tuple[LineSetup, ...] = ()
    names: Names = field(default_factory=Names)


@dataclass
class PeriodTotals:
    times: dict[TimeBucket, float] = field(default_factory=lambda: defaultdict(float))
    micro_stop_s: float = 0.0
    micro_stops: int = 0
    produced: float = 0.0
    good: float = 0.0
    rejected: float = 0.0
    ideal_s: float = 0.0  # of the parts made in observed time only
    produced_unobserved: float = 0.0  # parts made while the machine was offline (in `produced`)
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
            micro_stop_s=self.micro_stop_s,
            micro_stops=self.micro_stops,
            planned_stop_s=t[TimeBucket.PLANNED_STOP],
            no_shift_s=t[TimeBucket.NO_SHIFT],
            offline_s=t[TimeBucket.OFFLINE],
            produced=self.produced,
            good=self.good,
            ideal_s=self.ideal_s,
            ideal_good_s=self.ideal_s * (self.good / self.produced) if self.produced > 0 else 0.0,
            produced_unobserved=self.produced_unobserved,
        )


@dataclass
class MachineTracker:
    setup: MachineSetup
    state: MachineState
    since: float
    reason: str | None = None
    accounted_until: float = 0.0
    last_good: float | None = None
    values: dict[str, TagValue | None] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)  # tags whose latest read failed
    periods: dict[str, PeriodTotals] = field(default_factory=lambda: defaultdict(PeriodTotals))
    energy_window: dict[tuple[str, TimeBucket], float] = field(default_factory=lambda: defaultdict(float))
    counters: dict[str, CounterTracker] = field(default_factory=dict)
    stop_started: float | None = None  # a stop between production, while it may still be a micro-stop
    # producing and offline stretches (start, end, offline) since the oldest counter baseline: how
    # a counter increment read after a gap is shared between observed and unobserved production
    spans: list[tuple[float, float, bool]] = field(default_factory=list)
    stop_pieces: dict[tuple[str, TimeBucket], float] = field(default_factory=lambda: defaultdict(float))


@dataclass
class MachineView:
    """What the live terminal view shows for one machine."""

    id: str
    line: str
    name: str
    line_name: str
    state: MachineState
    since: float
    reason: str | None
    period: str
    totals: OeeTotals
    energy: EnergyTotals


def _meter_silent(totals: OeeTotals, energy: EnergyTotals) -> bool:
    """Parts made while the meter, read, never moved (exactly 0: a still register gives 0 deltas)."""
    return totals.produced > 0 and energy.measured and energy.total_kwh == 0.0


def _per_part_known(energy: EnergyTotals, flags: set[str]) -> bool:
    """Whether kWh per part means anything: not for a silent meter's 0 kWh (a day with other
    shifts' kWh has a figure, its flag says that part of it is missing)."""
    return not (METER_SILENT in flags and energy.total_kwh == 0.0)


def _meter_fields(meter: MeterSetup, day: dt.date) -> dict[str, object]:
    """The meter behind a figure, as GB 17167 asks a plant to keep it; overdue on the record's day."""
    info = meter.info
    return {
        "id": meter.id,
        "own_plc": meter.own_plc,
        "accuracy_class": info.accuracy_class,
        "ct_ratio": info.ct_ratio,
        "calibration_due": None if info.calibration_due is None else info.calibration_due.isoformat(),
        "calibration_overdue": info.overdue_on(day),
    }


def _roll_up_oee_fields(totals: OeeTotals, parts_flags: set[str]) -> dict[str, object]:
    """A roll-up's `good` is a count only when every part in it was counted good or not: when some
    machines take their quality from another one, good is null (so good / produced never reads as a
    quality the scope does not have). `good_counted` and `produced_quality_inferred` say what was
    counted and what was inferred. Its flags are its parts' (a gap on one machine is a gap in the
    line's figures) and its own."""
    fields = oee_fields(totals)
    flags = parts_flags | set(compute_oee(totals).flags)
    fields["flags"] = sorted(flags)
    fields["produced_quality_inferred"] = whole(totals.produced_inferred)
    fields["good_counted"] = fields["good"]
    if totals.produced_inferred > 0:
        fields["good"] = None
    if QUALITY_SOURCE_NO_DATA in flags:
        # some of its parts take their quality from a machine that inspected nothing then: their
        # quality is unknown, so the scope's is too (never 0 %, as on the machine's own record)
        fields.update(dict.fromkeys(UNKNOWN_WITHOUT_QUALITY, None))
    return fields


def _state_record(machine: MachineTracker, line_name: str, ts: float) -> Record:
    fields = {
        "machine": machine.setup.id,
        "machine_name": machine.setup.display,
        "line": machine.setup.line,
        "line_name": line_name,
        "state": machine.state.value,
        "since": rfc3339_ms(machine.since),
        "reason": machine.reason,
    }
    return Record(RecordKind.STATE, ts, fields)


def _bucket(piece: CalendarPiece, state: MachineState) -> TimeBucket:
    if piece.kind is PeriodKind.NO_SHIFT:
        return TimeBucket.NO_SHIFT
    if piece.kind is PeriodKind.BREAK:
        return TimeBucket.PLANNED_STOP
    return STATE_BUCKET[state]


def _has_baseline(machine: MachineTracker) -> bool:
    """Whether a counter increment may still be read against time accounted now."""
    return any(counter.last_value is not None for counter in machine.counters.values())


def _shift_spans(machine: MachineTracker, before: float, step: float) -> None:
    """Stretches recorded on the clock's old timeline move with the counter baselines."""
    machine.spans = [(a + step, b + step, off) if b <= before else (a, b, off) for a, b, off in machine.spans]


def _shift_baseline(counter: CounterTracker, before: float, step: float) -> None:
    """A baseline read on the clock's old timeline moves with it, so the next increment is
    measured (and rate-checked) over the time that really passed."""
    if counter.last_value is not None and counter.last_ts <= before:
        counter.last_ts += step


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
        self.meter_kw: dict[str, float] = {}  # each meter's latest real power reading
        # Machines taken out of the configuration whose figures are still to be published: the
        # tracker stays (offline, never fed) until the period it was removed in closes, its setup
        # and meter until that production day's record is out.
        self.retired: dict[str, MachineSetup] = {}
        self.retired_meters: dict[str, MeterSetup] = {}
        self.constraints = {line.id: line.constraint for line in setup.lines if line.constraint}
        self.index_meters()
        self.line_names = {line.id: line.name for line in setup.lines if line.name}
        self.workshop_kwh: dict[str, float] = {}  # main meter kWh per period; no key: no reading yet
        self.period = self.calendar.period_at(start)
        self.day_totals: dict[str, OeeTotals] = defaultdict(OeeTotals)
        self.day_energy: dict[str, EnergyTotals] = defaultdict(EnergyTotals)
        self.day_flags: dict[str, set[str]] = defaultdict(set)  # each machine's flags of the day's shifts
        self.day_main_kwh: float | None = None
        # each crew's day: its shifts over every machine, and the energy of the measured machines
        # with their own totals (energy per piece is over the parts of machines whose kWh is known)
        self.crew_day_totals: dict[str, OeeTotals] = defaultdict(OeeTotals)
        self.crew_day_energy: dict[str, EnergyTotals] = defaultdict(EnergyTotals)
        self.crew_day_energy_totals: dict[str, OeeTotals] = defaultdict(OeeTotals)
        self.crew_day_flags: dict[str, set[str]] = defaultdict(set)
        self.next_publish = start + setup.publish_interval_s
        self.now = start
        self.resumed_at = start  # the end of the last gap: periods that ended in it settle from here
        self.closed: dict[str, float] = {}  # recently published final periods: key -> when closed
        self.closed_until = -math.inf  # every period that ended by then is closed

    def index_meters(self) -> None:
        self.metered_machines = {m.machine: m for m in self.meters.values() if m.machine is not None}
        for machine_id, meter in self.retired_meters.items():
            self.metered_machines.setdefault(machine_id, meter)
        self.meters_on: dict[str, list[MeterSetup]] = defaultdict(list)  # device -> meters it carries
        for meter in self.meters.values():
            self.meters_on[meter.source].append(meter)

    @classmethod
    def fresh(cls, setup: EngineSetup, now: float) -> tuple[KpiEngine, list[Record]]:
        """An engine without history (a first start, or a checkpoint that could not be used): the
        period so far before `now` was not observed, so it is offline with the flag agent_restart."""
        engine = cls(setup, setup.calendar.period_at(now).start)
        for machine in engine.machines.values():
            machine.reason = RESTART_REASON
        records = engine._move_to(now)
        engine.resumed_at = now
        engine.next_publish = now + setup.publish_interval_s
        return engine, records

    # -- ingestion ---------------------------------------------------------------------------

    def ingest(self, samples: Sequence[Sample]) -> list[Record]:
        records: list[Record] = []
        by_device: dict[str, list[Sample]] = defaultdict(list)
        for device, run in groupby(samples, key=SAMPLE_DEVICE):  # a driver's samples come device by device
            by_device[device] += run
        for device, device_samples in by_device.items():
            device_samples.sort(key=_SAMPLE_TS)
            if device in self.machines and device not in self.retired:
                records += self._ingest_machine(self.machines[device], device_samples)
            for meter in self.meters_on.get(device, ()):  # a meter, or a machine's own kWh counter
                self._ingest_meter(meter, device_samples)
        return records

    def _ingest_machine(self, machine: MachineTracker, samples: list[Sample]) -> list[Record]:
        """A poll's samples. The state is judged only on fresh inputs: while a tag that the rules
        need to decide failed at its latest read (one request of several, an OPC UA node), the
        state holds as for a poll that failed whole, and turns offline (no data) offline_after_s
        after the last poll that decided it. Counters that were read are counted meanwhile."""
        good = [s for s in samples if s.quality is GOOD]
        for sample in samples:  # in time order: the latest read of a tag says whether it is fresh
            if sample.quality is GOOD:
                machine.unreadable.discard(sample.tag)
            else:
                machine.unreadable.add(sample.tag)
        records: list[Record] = []
        variant = self._variant(machine, good)
        # a reason naming a tag whose latest read failed shows '?', not its last value
        unreadable = machine.unreadable
        judged = {**machine.values, **dict.fromkeys(unreadable)} if unreadable else machine.values
        verdict = machine.setup.rules.evaluate(judged, unreadable) if good else UNDETERMINED
        if verdict is not None and not verdict.known:
            if machine.state is MachineState.OFFLINE and machine.reason in GAP_FLAGS:
                # polled again and still not judged: from here it is an outage, not the gap
                records += self._set_state(machine, MachineState.OFFLINE, NO_DATA_REASON, samples[-1].ts)
        else:
            ts = good[-1].ts
            machine.last_good = max(machine.last_good or ts, ts)
            if verdict is not None:
                records += self._set_state(machine, verdict.state, verdict.reason, ts)
                if verdict.error is not None:  # the state is unknown: offline time, flagged
                    machine.periods[self._open_key(self.calendar.period_at(ts))].flags.add(RULE_ERROR)
        if not good:
            return records
        latest = {s.tag: s for s in good}  # the last of each tag (10,000 samples a second)
        self._count(machine, latest, variant)
        if machine.setup.publish_tags:
            values = {tag: s.value for tag, s in latest.items()}
            ident = {"machine": machine.setup.id, "line": machine.setup.line}
            records.append(Record(RecordKind.TAGS, good[-1].ts, {**ident, "values": values}))
        return records

    @staticmethod
    def _variant(machine: MachineTracker, good: list[Sample]) -> TagValue | None:
        """Takes the poll's good values in; returns the variant the parts counted now were made
        under: the one active until now (since the last poll), or the first one known."""
        variant_tag = machine.setup.variant_tag
        variant = machine.values.get(variant_tag) if variant_tag else None
        for sample in good:
            machine.values[sample.tag] = sample.value
        if variant is None and variant_tag:
            variant = machine.values.get(variant_tag)
        return variant

    def _set_state(
        self, machine: MachineTracker, state: MachineState, reason: str | None, ts: float
    ) -> list[Record]:
        ts = max(ts, machine.accounted_until)
        self._account(machine, ts)
        if state is machine.state and reason == machine.reason:
            return []
        self._track_stop(machine, state, reason, ts)
        machine.state, machine.reason, machine.since = state, reason, ts
        return [_state_record(machine, self.line_name(machine.setup.line), ts)]

    def line_name(self, line: str) -> str:
        return self.line_names.get(line, line)

    def live(self) -> list[MachineTracker]:
        """The configured machines: not those removed whose last figures wait to be published."""
        return [m for key, m in self.machines.items() if key not in self.retired]

    def setup_of(self, machine_id: str) -> MachineSetup:
        """A machine's setup: a configured one's, or a removed one's while its figures last."""
        tracker = self.machines.get(machine_id)
        return tracker.setup if tracker is not None else self.retired[machine_id]

    def _track_stop(
        self, machine: MachineTracker, new_state: MachineState, reason: str | None, ts: float
    ) -> None:
        """A stop from production back to production within micro_stop_s is a micro-stop. A stop
        the agent stopped seeing (a restart, a clock step) goes on: it is judged by its start and
        the first reading that shows production again."""
        if self.setup.micro_stop_s <= 0:
            return
        if machine.state is MachineState.PRODUCING and new_state in STOP_STATES:
            machine.stop_started = ts
            machine.stop_pieces.clear()
            return
        if machine.stop_started is None or new_state in STOP_STATES:
            return  # not in a stop, or idle <-> fault inside the same stop
        if new_state is MachineState.OFFLINE and reason in GAP_FLAGS:
            return  # the agent, not the machine, stopped looking
        if new_state is MachineState.PRODUCING and ts - machine.stop_started <= self.setup.micro_stop_s:
            ending = machine.periods[self._open_key(self.calendar.period_at(ts))]
            ending.micro_stops += 1
            for (period_key, bucket), seconds in machine.stop_pieces.items():
                if period_key in self.closed:
                    continue  # the stop began in a period already published final
                totals = machine.periods[period_key]
                totals.micro_stop_s += seconds
                if self.setup.micro_stops_lower_performance:
                    totals.times[bucket] -= seconds
                    totals.times[TimeBucket.ACTUAL_PRODUCTION] += seconds
        machine.stop_started = None
        machine.stop_pieces.clear()

    def _account(self, machine: MachineTracker, until: float) -> None:
        """Attribute [accounted_until, until) to the machine's current state."""
        if until <= machine.accounted_until:
            return
        gap_flag = OFFLINE_FLAGS.get(machine.reason or "") if machine.state is MachineState.OFFLINE else None
        for piece in self.calendar.pieces(machine.accounted_until, until):
            bucket = _bucket(piece, machine.state)
            seconds = piece.end - piece.start
            totals = machine.periods[piece.period.key]
            totals.times[bucket] += seconds
            if gap_flag is not None:
                totals.flags.add(gap_flag)
            machine.energy_window[(piece.period.key, bucket)] += seconds
            if machine.stop_started is not None and bucket in STOP_BUCKETS:
                machine.stop_pieces[(piece.period.key, bucket)] += seconds
        if machine.state in SPAN_STATES and _has_baseline(machine):
            offline = machine.state is MachineState.OFFLINE
            spans = machine.spans
            if spans and spans[-1][1] == machine.accounted_until and spans[-1][2] == offline:
                spans[-1] = (spans[-1][0], until, offline)
            else:
                spans.append((machine.accounted_until, until, offline))
                if len(spans) > MAX_SPANS:  # a counter unread for days: its oldest stretches go
                    del spans[0]
        machine.accounted_until = until

    @staticmethod
    def _span_seconds(machine: MachineTracker, start: float, end: float) -> tuple[float, float]:
        """How much of [start, end) the machine was seen producing, and how much it was offline."""
        spans = list(machine.spans)
        if machine.state in SPAN_STATES and machine.accounted_until < end:  # not yet accounted
            spans.append((machine.accounted_until, end, machine.state is MachineState.OFFLINE))
        seen = unseen = 0.0
        for a, b, offline in spans:
            overlap = max(0.0, min(b, end) - max(a, start))
            if offline:
                unseen += overlap
            else:
                seen += overlap
        return seen, unseen

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

    def _count(self, machine: MachineTracker, latest: Mapping[str, Sample], variant: TagValue | None) -> None:
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
            step = self._counter_step(machine, role, counter, sample)
            if step is not None:
                deltas[role], window = step
        if window is None:
            return
        if setup.good is None and "produced" in deltas:
            # Without a good counter, good = produced - rejected (or everything, without either).
            deltas["good"] = max(0.0, deltas["produced"] - deltas.get("rejected", 0.0))
        if not any(deltas.values()):
            return
        ideal_cycle = setup.ideal_cycle(variant)
        pieces = self._split(*window)
        # Whole parts per period: an increment read across a shift change is shared by time, in
        # whole parts, and its good and rejected parts go with the parts they are among.
        produced_split = split_whole(deltas.get("produced", 0.0), [share for _, share in pieces])
        basis = produced_split if sum(produced_split) > 0 else [share for _, share in pieces]
        good_split = split_whole(deltas.get("good", 0.0), basis)
        rejected_split = split_whole(deltas.get("rejected", 0.0), basis)
        for (piece, _), produced, good, rejected in zip(
            pieces, produced_split, good_split, rejected_split, strict=True
        ):
            key = self._open_key(piece.period)
            totals = machine.periods[key]
            # parts of a period already published final: their time is in that period's APT
            late = key != piece.period.key
            unobserved = produced if late else self._unobserved_parts(machine, piece, produced)
            totals.produced += produced
            totals.produced_unobserved += unobserved
            totals.ideal_s += (produced - unobserved) * ideal_cycle
            totals.good += good
            totals.rejected += rejected
            if unobserved > 0:
                totals.flags.add(DATA_GAP)  # counted, but made while we could not see the machine
            if produced > 0 and piece.kind is PeriodKind.NO_SHIFT:
                totals.flags.add(PRODUCED_OUTSIDE_SHIFT)
            elif produced > 0 and piece.kind is PeriodKind.BREAK:
                totals.flags.add(PRODUCED_IN_BREAK)
        self._forget_spans(machine)

    def _unobserved_parts(self, machine: MachineTracker, piece: CalendarPiece, produced: float) -> float:
        """The whole parts of an increment's piece that were made while the machine was offline:
        shared by time between the time it was seen producing and the time it was not seen (time
        seen in a stop made none)."""
        if produced <= 0 or piece.end <= piece.start:
            return 0.0
        seen, unseen = self._span_seconds(machine, piece.start, piece.end)
        return split_whole(produced, [seen, unseen])[1] if unseen > 0 else 0.0

    def _forget_spans(self, machine: MachineTracker) -> None:
        """Offline stretches before every counter's baseline are never asked about again."""
        baselines = [c.last_ts for c in machine.counters.values() if c.last_value is not None]
        if baselines:
            oldest = min(baselines)
            machine.spans = [span for span in machine.spans if span[1] > oldest]

    def _counter_step(
        self, machine: MachineTracker, role: str, counter: CounterSetup, sample: Sample
    ) -> tuple[float, tuple[float, float]] | None:
        """One counter's increment and the window it was made in; None for an unusable reading."""
        if not isinstance(sample.value, int | float) or not math.isfinite(sample.value):
            return None
        tracker = machine.counters.get(role)
        if tracker is None:
            tracker = machine.counters[role] = CounterTracker(counter.modulus, machine.setup.max_parts_per_s)
        if tracker.last_value is not None and sample.ts < tracker.last_ts:
            return None  # read before its baseline: the clock is behind; counted once it catches up
        previous_ts = tracker.last_ts if tracker.last_value is not None else sample.ts
        step = tracker.update(float(sample.value), sample.ts)
        if step.event is not None:
            flags = machine.periods[self._open_key(self.calendar.period_at(sample.ts))].flags
            flags.add(COUNTER_FLAGS[step.event])
        return step.delta, (previous_ts, sample.ts)

    def _ingest_meter(self, meter: MeterSetup, samples: list[Sample]) -> None:
        """A kWh reading (of a meter, or of a machine's own PLC): the increment since the last one
        is shared over the states the machine was in meanwhile. Every reading against a baseline
        gives its periods energy data, also when it counted 0 kWh (no consumption, not no data)."""
        self._read_power(meter, samples)
        reading = next((s for s in reversed(samples) if s.tag == meter.kwh.tag and s.quality is GOOD), None)
        if reading is None or not isinstance(reading.value, int | float) or not math.isfinite(reading.value):
            return
        counter = self.meter_counters[meter.id]
        if counter.last_value is not None and reading.ts < counter.last_ts:
            return  # read before its baseline: the clock is behind; counted once it catches up
        baseline = counter.last_value is not None
        previous_ts = counter.last_ts if baseline else reading.ts
        step = counter.update(float(reading.value), reading.ts)
        measured = baseline and step.event not in (CounterEvent.SPIKE, CounterEvent.REBASE)
        if meter.machine is None:
            if measured:
                self._main_meter(previous_ts, reading.ts, step.delta)
            return
        machine = self.machines[meter.machine]
        at = max(reading.ts, machine.accounted_until)
        self._account(machine, at)
        now_key = self._open_key(self.calendar.period_at(at))
        window = machine.energy_window
        total_s = sum(window.values())
        if measured:
            if total_s <= 0:
                window = {(now_key, STATE_BUCKET[machine.state]): 1.0}
                total_s = 1.0
            read: set[str] = set()
            for (period_key, bucket), seconds in window.items():
                key = now_key if period_key in self.closed else period_key
                totals = machine.periods[key]
                totals.energy = totals.energy + energy_in_bucket(bucket, step.delta * seconds / total_s)
                if key not in read:
                    read.add(key)
                    totals.energy = totals.energy + EnergyTotals(readings=1)
        if step.event is not None:
            machine.periods[now_key].flags.add(METER_FLAG_PREFIX + COUNTER_FLAGS[step.event])
        machine.energy_window = defaultdict(float)

    def _read_power(self, meter: MeterSetup, samples: list[Sample]) -> None:
        if meter.power_tag is None:
            return
        power = next((s for s in reversed(samples) if s.tag == meter.power_tag), None)
        if power is None:
            return  # not read this poll (a slower request): the latest reading stands
        value = power.value if power.quality is GOOD else None
        if isinstance(value, int | float) and math.isfinite(value):
            self.meter_kw[meter.id] = float(value)
        else:
            self.meter_kw.pop(meter.id, None)  # its latest read failed: the power now is unknown

    def _main_meter(self, start: float, end: float, kwh: float) -> None:
        for piece, share in self._split(start, end):
            key = self._open_key(piece.period)
            self.workshop_kwh[key] = self.workshop_kwh.get(key, 0.0) + kwh * share

    def _open_key(self, period: Period) -> str:
        """Where an increment made in `period` is credited: there, unless it was already published
        final (a device back after the period closed); then in the open period, so nothing is lost."""
        if period.key in self.closed or period.end <= self.closed_until:
            return self.period.key
        return period.key

    # -- time --------------------------------------------------------------------------------

    def advance(self, now: float) -> list[Record]:
        """Move the engine to `now`: offline detection, periodic and final publication."""
        records = self._move_to(now)
        # Not while the period that ended settles: its final comes at its end's timestamp, and an
        # interim at the same millisecond would be the same point to a time-series store.
        if self.now >= self.next_publish and self.now < self.period.end:
            records += self._publish_so_far()
        return records

    def publish_current(self, now: float) -> list[Record]:
        """The current period so far (not final): what a stopping agent leaves as its last word.
        A period that has ended closes now, without waiting for its settle time.

        Exactly one publication of the period so far, even when the periodic one falls due at
        `now`: two records of one series at one millisecond are one point to a time-series store.
        """
        return self._move_to(now, settle=False) + self._publish_so_far()

    def _move_to(self, now: float, *, settle: bool = True) -> list[Record]:
        """Account time up to `now`: machines gone silent turn offline, ended periods close."""
        records: list[Record] = []
        self.now = max(self.now, now)
        for machine in self.machines.values():
            last = machine.last_good if machine.last_good is not None else machine.since
            deadline = last + self.setup.offline_after_s
            if machine.state is not MachineState.OFFLINE and now >= deadline:
                records += self._set_state(machine, MachineState.OFFLINE, NO_DATA_REASON, deadline)
            self._account(machine, now)
        while self._may_close(now, settle=settle):
            closing = self.period
            records += self._publish(closing, final=True, ts=closing.end)
            self.period = self.calendar.period_at(closing.end)
            if self.period.day != closing.day:
                records += self._publish_day(closing, ts=closing.end)
            self.next_publish = closing.end + self.setup.publish_interval_s
        return records

    def _may_close(self, now: float, *, settle: bool) -> bool:
        """The current period closes at its end for a stop. Otherwise once the readings that
        straddle its end (after a gap: the first readings) are in, or offline_after_s after it."""
        end = self.period.end
        if now < end:
            return False
        if not settle:
            return True
        mark = max(end, self.resumed_at)
        return now >= mark + self.setup.offline_after_s or (now >= mark and self._read_past(mark))

    def _read_past(self, mark: float) -> bool:
        """Every counter and meter has a reading at or after `mark`, except on unreachable machines."""
        for machine in self.machines.values():
            if machine.state is MachineState.OFFLINE and machine.reason not in GAP_FLAGS:
                continue
            for counter in machine.counters.values():
                if counter.last_value is not None and counter.last_ts < mark:
                    return False
        return all(c.last_value is None or c.last_ts >= mark for c in self.meter_counters.values())

    def _publish_so_far(self) -> list[Record]:
        self.next_publish = self.now + self.setup.publish_interval_s
        return self._publish(self.period, final=False, ts=self.now) + self._states_now(self.now)

    def _states_now(self, ts: float) -> list[Record]:
        """Every machine's current state again, with the `since` of its last change: a store that
        is asked for the latest state within a time window then sees every machine, however long
        ago it changed. A consumer that wants changes only keeps the first record of each since."""
        return [_state_record(machine, self.line_name(machine.setup.line), ts) for machine in self.live()]

    def resume(self, now: float) -> list[Record]:
        """Continue after the agent was down, from its last checkpoint (the engine's time) to `now`.

        Every machine is offline from the checkpoint until its first reading, flagged
        agent_restart. Its counters and meters kept counting meanwhile: the first readings credit
        those increments by the same rule as any poll gap. Periods that ended while the agent was
        down close offline_after_s after `now`, once those readings brought them their share.
        A wall clock behind the checkpoint is held as after a step back (see clock_step).
        """
        stopped = self.now
        records: list[Record] = []
        for machine in self.live():
            records += self._set_state(machine, MachineState.OFFLINE, RESTART_REASON, stopped)
            flags = machine.periods[self.period.key].flags
            flags.add(AGENT_RESTART)  # also when a clock behind the checkpoint holds its accounting
            if now < stopped:
                flags.add(CLOCK_STEP)
        self.resumed_at = max(now, stopped)
        self.next_publish = max(self.next_publish, self.resumed_at + self.setup.offline_after_s)
        return records + self._move_to(now)

    def clock_step(self, before: float, after: float) -> list[Record]:
        """The wall clock jumped from `before` to `after` (NTP sync on a gateway without a
        real-time clock, a clock set by hand).

        Forward: the stretch between was observed by nobody: offline, flagged clock_step. Parts
        and kWh read after the step are shared over the time that really passed, not over the jump.
        Backward: time already accounted is never accounted again and a closed period never
        reopens, so the engine holds at its time until the clock catches up. States, parts and kWh
        are still tracked meanwhile (increments go to the open period), and it is flagged clock_step.
        """
        step = after - before
        records = self._move_to(before) if step > 0 else []
        for machine in self.machines.values():
            for counter in machine.counters.values():
                _shift_baseline(counter, before, step)
            _shift_spans(machine, before, step)
            if step < 0 and machine.last_good is not None and machine.last_good <= before:
                machine.last_good += step  # offline detection keeps working in real time
            if step > 0 and machine.stop_started is not None and machine.stop_started <= before:
                machine.stop_started += step  # a stop in progress is timed in real time, not the jump
            machine.periods[self.period.key].flags.add(CLOCK_STEP)
        for counter in self.meter_counters.values():
            _shift_baseline(counter, before, step)
        if step <= 0:
            return records
        windows = {key: dict(m.energy_window) for key, m in self.machines.items()}
        for machine in self.live():
            if not (machine.state is MachineState.OFFLINE and machine.reason in GAP_FLAGS):
                records += self._set_state(machine, MachineState.OFFLINE, CLOCK_STEP_REASON, before)
        self.resumed_at = max(self.resumed_at, after)
        spans = {key: list(m.spans) for key, m in self.machines.items()}
        records += self._move_to(after)
        for key, machine in self.machines.items():
            # the jump took no real time: kWh and parts read next are shared over the time that passed
            machine.energy_window = defaultdict(float, windows[key])
            machine.spans = spans[key]
        return records

    def reconfigure(self, setup: EngineSetup, now: float) -> list[Record]:
        """Apply a reloaded configuration without losing the period so far.

        Time up to `now` is accounted under the old setup and the period so far is published.
        Machines and meters that stay keep their state, totals and counter baselines (a counter
        whose tag or rollover changed starts a new baseline); new ones start offline at `now`;
        removed ones are dropped after that publication. A calendar whose period at `now` differs
        from the current one closes the current period at `now` (final), as a changed shift plan
        ends it.
        """
        now = max(now, self.now)  # a clock held after a step back: the engine's time
        records = self.publish_current(now)
        old_machines, old_meters = self.machines, self.meter_counters
        self.machines = {}
        for machine_setup in setup.machines:
            tracker = old_machines.get(machine_setup.id)
            if tracker is None:
                tracker = MachineTracker(machine_setup, MachineState.OFFLINE, now, accounted_until=now)
            else:
                for role in list(tracker.counters):
                    if getattr(tracker.setup, role) != getattr(machine_setup, role):
                        del tracker.counters[role]
                tracker.setup = machine_setup
            self.machines[machine_setup.id] = tracker
            self.retired.pop(machine_setup.id, None)  # back in the configuration
            self.retired_meters.pop(machine_setup.id, None)
        for key, tracker in old_machines.items():
            if key not in self.machines:
                records += self._retire(tracker, setup, now)
                self.machines[key] = tracker
        self.meter_counters = {}
        for meter in setup.meters:
            kept = self.meters.get(meter.id)
            same = kept is not None and (kept.kwh, kept.max_kw, kept.source) == (
                meter.kwh,
                meter.max_kw,
                meter.source,
            )
            self.meter_counters[meter.id] = (
                old_meters[meter.id] if same else CounterTracker(meter.kwh.modulus, meter.max_kw / 3600.0)
            )
        self.meters = {m.id: m for m in setup.meters}
        self.meter_kw = {key: kw for key, kw in self.meter_kw.items() if key in self.meters}
        self.constraints = {line.id: line.constraint for line in setup.lines if line.constraint}
        self.index_meters()
        self.line_names = {line.id: line.name for line in setup.lines if line.name}
        self.setup = setup
        if setup.calendar != self.calendar:
            self.calendar = setup.calendar
            period = self.calendar.period_at(now)
            if period.key != self.period.key:
                closing = self.period
                records += self._publish(closing, final=True, ts=now)
                if period.day != closing.day:
                    records += self._publish_day(closing, ts=now)
            self.period = period  # same key: the same shift, perhaps with a new end
        self.next_publish = now + setup.publish_interval_s
        return records

    def _retire(self, tracker: MachineTracker, setup: EngineSetup, now: float) -> list[Record]:
        """A machine taken out of the configuration: what it made so far stays in the open period
        (published final when it closes) and in the day; from now it is offline, never fed."""
        machine_id = tracker.setup.id
        records: list[Record] = []
        if machine_id not in self.retired:
            self.retired[machine_id] = tracker.setup
            records = self._set_state(tracker, MachineState.OFFLINE, REMOVED_REASON, now)
            tracker.periods[self.period.key].flags.add(MACHINE_REMOVED)
        meter = self.metered_machines.get(machine_id)
        if meter is not None and not any(m.machine == machine_id for m in setup.meters):
            self.retired_meters[machine_id] = meter  # its kWh stays in its figures and roll-ups
        return records

    def _forget_retired(self, *, day_closed: bool) -> None:
        """A removed machine leaves once its last period is published final; its setup (line,
        name, meter) once its production day's record is."""
        for key in self.retired:
            self.machines.pop(key, None)
        if day_closed:
            self.retired.clear()
            self.retired_meters.clear()
            self.index_meters()

    # -- publication -------------------------------------------------------------------------

    def machine_totals(self, machine: MachineTracker, period_key: str) -> OeeTotals:
        """The machine's totals; for one that takes its quality from another machine (a sorter
        downstream), that machine's good share of the same period applied to its parts and ideal
        time, as an estimate (good_inferred) beside no good parts counted."""
        totals = machine.periods[period_key].oee_totals()
        source_id = machine.setup.quality_from
        if source_id is None or source_id not in self.machines:
            return totals
        source = self.machines[source_id].periods[period_key].oee_totals()
        share = source.good / source.produced if source.produced > 0 else 0.0
        return replace(
            totals,
            good=0.0,
            good_inferred=totals.produced * share,
            produced_inferred=totals.produced,
            ideal_good_s=totals.ideal_s * share,
        )

    def _publish(self, period: Period, *, final: bool, ts: float) -> list[Record]:
        names = self.setup.names
        common: dict[str, object] = {
            "period": "shift",
            "shift": period.name,
            "shift_name": names.shift(period.name) if period.is_shift else None,
            "crew": period.crew,
            "crew_name": names.crew(period.crew),
            "shift_start": rfc3339_ms(period.start),
            "day": period.day.isoformat(),
            "final": final,
        }
        machines: dict[str, tuple[OeeTotals, EnergyTotals, set[str]]] = {}
        for machine in self.machines.values():
            period_totals = machine.periods[period.key]
            totals = self.machine_totals(machine, period.key)
            if (
                final
                and machine.setup.id in self.metered_machines
                and _meter_silent(totals, period_totals.energy)
            ):
                period_totals.flags.add(METER_SILENT)  # judged over the whole period, at its close
            machines[machine.setup.id] = (totals, period_totals.energy, period_totals.flags)
        records = self._records(machines, self.workshop_kwh.get(period.key), common, ts, shift=True)
        if final:
            for machine_id, (totals, energy, flags) in machines.items():
                self.day_totals[machine_id] = self.day_totals[machine_id] + totals
                self.day_energy[machine_id] = self.day_energy[machine_id] + energy
                self.day_flags[machine_id] |= flags
            if period.crew is not None:
                self._add_to_crew(period.crew, machines)
            main_kwh = self.workshop_kwh.pop(period.key, None)
            if main_kwh is not None:
                self.day_main_kwh = (self.day_main_kwh or 0.0) + main_kwh
            for machine in self.machines.values():
                machine.periods.pop(period.key, None)
            self._forget_retired(day_closed=False)
            self.closed[period.key] = ts
            self.closed_until = max(self.closed_until, ts)
            while len(self.closed) > CLOSED_KEPT:
                del self.closed[next(iter(self.closed))]
        return records

    def _publish_day(self, closing: Period, ts: float) -> list[Record]:
        common: dict[str, object] = {
            "period": "day",
            "shift": None,
            "shift_name": None,
            "crew": None,
            "crew_name": None,
            "day": closing.day.isoformat(),
            "final": True,
        }
        machines = {
            m: (totals, self.day_energy[m], self.day_flags.get(m, set()))
            for m, totals in self.day_totals.items()
        }
        records = self._records(machines, self.day_main_kwh, common, ts, shift=False)
        records += self._crew_records(common, ts)
        self.day_totals.clear()
        self.day_energy.clear()
        self.day_flags.clear()
        self.day_main_kwh = None
        self._forget_retired(day_closed=True)
        return records

    def _add_to_crew(
        self, crew: str, machines: Mapping[str, tuple[OeeTotals, EnergyTotals, set[str]]]
    ) -> None:
        """A closed shift's totals go to its crew's day; its energy over the measured machines."""
        self.crew_day_totals[crew] = self.crew_day_totals[crew] + sum_totals(
            t for t, _, _ in machines.values()
        )
        for _, _, flags in machines.values():
            self.crew_day_flags[crew] |= flags
        measured = [m for m, (_, e, _) in machines.items() if m in self.metered_machines and e.measured]
        self.crew_day_energy[crew] = self.crew_day_energy[crew] + sum(
            (machines[m][1] for m in measured), EnergyTotals()
        )
        self.crew_day_energy_totals[crew] = self.crew_day_energy_totals[crew] + sum_totals(
            machines[m][0] for m in measured if _per_part_known(*machines[m][1:])
        )

    def _crew_records(self, day: dict[str, object], ts: float) -> list[Record]:
        """Each crew's totals of the day that closes: its shifts over the whole workshop."""
        records: list[Record] = []
        for crew, totals in self.crew_day_totals.items():
            ident = {**day, "crew": crew, "crew_name": self.setup.names.crew(crew)}
            fields = {**ident, **_roll_up_oee_fields(totals, self.crew_day_flags.get(crew, set()))}
            records.append(Record(RecordKind.CREW_OEE, ts, fields))
            if self.meters:
                energy = self.crew_day_energy.get(crew)
                measured = self.crew_day_energy_totals.get(crew, OeeTotals())
                records.append(
                    Record(RecordKind.CREW_ENERGY, ts, {**ident, **self._energy(energy, measured)})
                )
        self.crew_day_totals.clear()
        self.crew_day_energy.clear()
        self.crew_day_energy_totals.clear()
        self.crew_day_flags.clear()
        return records

    def _records(
        self,
        machines: Mapping[str, tuple[OeeTotals, EnergyTotals, set[str]]],
        main_kwh: float | None,
        common: dict[str, object],
        ts: float,
        *,
        shift: bool,
    ) -> list[Record]:
        """Machine records, line and workshop roll-ups (sums of times and counts, never averages).

        Energy records exist for what a meter (or a machine's own PLC) measures: a machine, a
        line with at least one such machine, and the workshop when it has any meter. Their energy
        figures cover the machines whose energy was measured in the period; none: null (no data).
        """
        records: list[Record] = []
        by_line: dict[str, list[str]] = defaultdict(list)
        day = dt.datetime.fromtimestamp(ts, zoneinfo.ZoneInfo(self.calendar.timezone)).date()
        flags: dict[str, set[str]] = {}
        for machine_id in machines:
            by_line[self.setup_of(machine_id).line].append(machine_id)
            flags[machine_id] = self._machine_flags(machine_id, machines)
            records += self._machine_records(
                machine_id, machines, flags[machine_id], common, ts, day, shift=shift
            )
        for line, members in by_line.items():
            line_totals = sum_totals(machines[m][0] for m in members)
            constraint = self.constraints.get(line)
            measured = (
                machines[constraint][0] if constraint is not None and constraint in machines else line_totals
            )
            oee_record = _roll_up_oee_fields(measured, set().union(*(flags[m] for m in members)))
            extra = {"constraint": constraint} if constraint else {}
            line_ident = {"line": line, "line_name": self.line_name(line)}
            records.append(Record(RecordKind.LINE_OEE, ts, {**line_ident, **common, **oee_record, **extra}))
            metered = [m for m in members if m in self.metered_machines]
            if metered:
                energy_record = {**line_ident, **common, **self._measured_energy(machines, metered)}
                records.append(Record(RecordKind.LINE_ENERGY, ts, energy_record))
        workshop = sum_totals(t for t, _, _ in machines.values())
        named = {"workshop_name": self.setup.names.workshop or None, **common}
        oee_record = _roll_up_oee_fields(workshop, set().union(*flags.values()))
        records.append(Record(RecordKind.WORKSHOP_OEE, ts, {**named, **oee_record}))
        if self.meters:
            metered = [m for m in machines if m in self.metered_machines]
            energy_record = {**named, **self._measured_energy(machines, metered)}
            mains = [m for m in self.meters.values() if m.machine is None]
            if mains:
                machines_kwh = energy_record["kwh"] if metered else 0.0  # no machine meters: all unmetered
                energy_record["kwh_main_meter"] = None if main_kwh is None else round(main_kwh, 4)
                unmetered = (
                    max(0.0, main_kwh - machines_kwh) / main_kwh
                    if main_kwh is not None and main_kwh > 0 and isinstance(machines_kwh, float | int)
                    else None
                )
                energy_record["unmetered_share"] = None if unmetered is None else round(unmetered, 4)
                energy_record["main_meters"] = [_meter_fields(m, day) for m in mains]
            records.append(Record(RecordKind.WORKSHOP_ENERGY, ts, energy_record))
        return records

    def _machine_flags(
        self, machine_id: str, machines: Mapping[str, tuple[OeeTotals, EnergyTotals, set[str]]]
    ) -> set[str]:
        """A machine's flags in a period: what happened in it, and what its figures show."""
        totals, _, flags = machines[machine_id]
        all_flags = flags | set(compute_oee(totals).flags)
        source_id = self.setup_of(machine_id).quality_from
        if source_id is not None and totals.produced > 0:
            source = machines.get(source_id)
            if source is None or source[0].produced <= 0:
                all_flags.add(QUALITY_SOURCE_NO_DATA)
        return all_flags

    def _machine_records(
        self,
        machine_id: str,
        machines: Mapping[str, tuple[OeeTotals, EnergyTotals, set[str]]],
        flags: set[str],
        common: dict[str, object],
        ts: float,
        day: dt.date,
        *,
        shift: bool,
    ) -> list[Record]:
        """One machine's oee record, and its energy record when a meter (or its own PLC) measures it."""
        totals, energy, _ = machines[machine_id]
        setup = self.setup_of(machine_id)
        ident = {
            "machine": machine_id,
            "machine_name": setup.display,
            "line": setup.line,
            "line_name": self.line_name(setup.line),
        }
        oee_record = {**ident, **common, **oee_fields(totals)}
        oee_record["quality_source"] = setup.quality_from or machine_id
        if setup.quality_from is not None:
            oee_record["good"] = None  # not counted here: the quality is the source's
        if QUALITY_SOURCE_NO_DATA in flags:  # its source inspected nothing then: quality unknown
            oee_record.update(dict.fromkeys(UNKNOWN_WITHOUT_QUALITY, None))
        oee_record["flags"] = sorted(flags)
        records = [Record(RecordKind.OEE, ts, oee_record)]
        meter = self.metered_machines.get(machine_id)
        if meter is not None:
            fields = {**ident, **common, **self._energy(energy, totals)}
            if not _per_part_known(energy, flags):
                fields.update(dict.fromkeys(self._per_part_keys(), None))
            fields["flags"] = sorted(flag for flag in flags if flag.startswith(METER_FLAG_PREFIX))
            fields["meter"] = _meter_fields(meter, day)
            if shift:
                fields["kw"] = self.meter_kw.get(meter.id)
            records.append(Record(RecordKind.ENERGY, ts, fields))
        return records

    def _energy(self, energy: EnergyTotals | None, totals: OeeTotals) -> dict[str, object]:
        return energy_fields(energy, totals, self.setup.kgce_per_kwh, self.setup.carbon)

    def _measured_energy(
        self, machines: Mapping[str, tuple[OeeTotals, EnergyTotals, set[str]]], members: list[str]
    ) -> dict[str, object]:
        """A roll-up's energy over its members whose energy was measured in the period: their kWh
        over their own parts, so a machine without data never lowers the kWh per piece."""
        measured = [m for m in members if machines[m][1].measured]
        if not measured:
            return self._energy(None, OeeTotals())
        energy = sum((machines[m][1] for m in measured), EnergyTotals())
        # a silent meter's parts would lower the kWh per piece just as a machine without data would
        counted = [m for m in measured if _per_part_known(*machines[m][1:])]
        return self._energy(energy, sum_totals(machines[m][0] for m in counted))

    def _per_part_keys(self) -> list[str]:
        carbon = self.setup.carbon
        return [*PER_PART_ENERGY_KEYS, *([f"{carbon.gas}_kg_per_unit"] if carbon is not None else [])]

    # -- views -------------------------------------------------------------------------------

    def views(self) -> list[MachineView]:
        key = self.period.key
        return [
            MachineView(
                m.setup.id,
                m.setup.line,
                m.setup.display,
                self.line_name(m.setup.line),
                m.state,
                m.since,
                m.reason,
                self.period.name,
                self.machine_totals(m, key),
                m.periods[key].energy,
            )
            for m in self.live()
        ]

    def line_totals(self) -> dict[str, OeeTotals]:
        by_line: dict[str, list[OeeTotals]] = defaultdict(list)
        for view in self.views():
            by_line[view.line].append(view.totals)
        return {line: sum_totals(items) for line, items in by_line.items()}
