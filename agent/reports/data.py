"""Report figures from records: pure functions, no I/O, no language.

- timeline(): each machine's state spans over a window, from its state records (the record that
  opened the window's state included), clipped to the window.
- losses(): the ISO 22400 loss breakdown of one oee record. Its parts add up: planned busy time =
  setup + idle + fault + speed loss + quality loss + valuable time (Σ ideal cycle x good). Micro-stops
  are a part of idle and fault (or of the speed loss, with kpi.micro_stop_loss: performance), so
  they are shown beside the breakdown, never added to it.
- pareto(): the stop reasons over the spans, longest first, with their cumulative share.
- shift_report() / day_report(): a period's machines, lines and workshop from its final records.
- month_energy(): energy per unit per machine and per line, day by day, from the days' records.

Roll-ups are read from the engine's own line and workshop records (sums of times and counts,
never averages of ratios); nothing here computes OEE again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.records import Record, RecordKind

STOP_STATES = ("fault", "setup", "idle")  # what a stop reason can be given for
PARETO_LIMIT = 10
SPAN_RESOLUTION_S = 1e-3


@dataclass(frozen=True, slots=True)
class Span:
    state: str
    start: float
    end: float
    reason: str | None

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Losses:
    """Seconds of one scope over a period (ISO 22400-2 times)."""

    pbt_s: float
    apt_s: float
    setup_s: float
    idle_s: float
    fault_s: float
    speed_s: float  # APT - Σ ideal cycle x produced: running slower than the ideal cycle
    quality_s: float  # Σ ideal cycle x (produced - good): time spent on parts that were scrapped
    valuable_s: float  # Σ ideal cycle x good
    micro_stop_s: float  # inside idle and fault (or speed), never added to the others
    micro_stops: int
    planned_stop_s: float
    offline_s: float


@dataclass(frozen=True)
class StopReason:
    state: str
    reason: str | None
    machines: tuple[str, ...]
    seconds: float
    count: int
    share: float  # of all stop time in the scope
    cumulative: float


@dataclass(frozen=True)
class Figures:
    """What a report shows of one scope (a machine, a line, the workshop) over a period."""

    scope: str  # machine or line id; '' for the workshop
    name: str
    line: str | None
    line_name: str | None
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    produced: float | None
    good: float | None
    losses: Losses | None
    kwh: float | None = None
    kwh_per_unit: float | None = None
    kwh_per_good: float | None = None
    kgce: float | None = None
    kgce_per_unit: float | None = None
    carbon_kg: float | None = None
    carbon_kg_per_unit: float | None = None
    carbon_gas: str | None = None  # co2 or co2e: what the site's grid factor counts
    flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PeriodReport:
    period: str  # 'shift' or 'day'
    day: str
    shift: str | None
    shift_name: str | None
    crew: str | None
    crew_name: str | None
    start: float
    end: float
    machines: tuple[Figures, ...]
    lines: tuple[Figures, ...]
    workshop: Figures | None
    timelines: Mapping[str, tuple[Span, ...]]
    pareto: tuple[StopReason, ...]
    planned_stops: tuple[tuple[float, float], ...] = ()
    final: bool = True  # False: a shift still running, its figures so far


@dataclass(frozen=True)
class EnergyDay:
    day: str
    kwh: float | None
    produced: float | None
    kwh_per_unit: float | None


@dataclass(frozen=True)
class EnergySeries:
    scope: str
    name: str
    line: str | None
    days: tuple[EnergyDay, ...]
    kwh: float | None  # the month's
    produced: float | None
    kwh_per_unit: float | None  # the month's kWh over the month's parts, never an average of days


@dataclass(frozen=True)
class MonthEnergy:
    month: str  # YYYY-MM
    days: tuple[str, ...]
    machines: tuple[EnergySeries, ...]
    lines: tuple[EnergySeries, ...] = field(default=())


def timeline(states: Iterable[Record], start: float, end: float) -> dict[str, tuple[Span, ...]]:
    """Each machine's state spans within [start, end). A machine's first record at or before
    start gives the state the window opens in; time before its first record is not shown."""
    by_machine: dict[str, list[Record]] = defaultdict(list)
    for record in states:
        if record.kind is RecordKind.STATE and record.machine is not None:
            by_machine[record.machine].append(record)
    result: dict[str, tuple[Span, ...]] = {}
    for machine, records in by_machine.items():
        records.sort(key=lambda r: r.ts)
        spans: list[Span] = []
        for record, following in zip(records, [*records[1:], None], strict=True):
            span_start = max(record.ts, start)
            span_end = min(following.ts if following is not None else end, end)
            if span_end - span_start < SPAN_RESOLUTION_S:
                continue
            state, reason = str(record.fields.get("state")), record.fields.get("reason")
            if (
                spans
                and spans[-1].state == state
                and spans[-1].reason == reason
                and spans[-1].end == span_start
            ):
                spans[-1] = Span(state, spans[-1].start, span_end, reason)
            else:
                spans.append(Span(state, span_start, span_end, reason))
        result[machine] = tuple(spans)
    return result


def losses(fields: Mapping[str, Any]) -> Losses:
    """The loss breakdown of an oee record (machine, line or workshop)."""

    def seconds(key: str) -> float:
        value = fields.get(key)
        return float(value) if isinstance(value, int | float) else 0.0

    apt, ideal, ideal_good = seconds("apt_s"), seconds("ideal_s"), seconds("ideal_good_s")
    return Losses(
        pbt_s=seconds("pbt_s"),
        apt_s=apt,
        setup_s=seconds("setup_s"),
        idle_s=seconds("idle_s"),
        fault_s=seconds("fault_s"),
        speed_s=max(0.0, apt - ideal),
        quality_s=max(0.0, ideal - ideal_good),
        valuable_s=ideal_good,
        micro_stop_s=seconds("micro_stop_s"),
        micro_stops=int(seconds("micro_stops")),
        planned_stop_s=seconds("planned_stop_s"),
        offline_s=seconds("offline_s"),
    )


def pareto(
    timelines: Mapping[str, Sequence[Span]],
    *,
    limit: int = PARETO_LIMIT,
    key: Callable[[str, Span], str | None] = lambda _machine, span: span.reason,
    planned_stops: Sequence[tuple[float, float]] = (),
) -> tuple[StopReason, ...]:
    """Stop reasons (fault, setup, idle) by their time over all the given machines, longest first.
    `key` names a span's reason (e.g. an alarm code's text); spans with the same state and
    reason are one entry. The shares are of all stop time, so the cumulative line ends at 1 when
    every reason is shown. Time inside planned stops (breaks, planned maintenance) is no loss and
    is left out."""
    seconds: dict[tuple[str, str | None], float] = defaultdict(float)
    counts: dict[tuple[str, str | None], int] = defaultdict(int)
    machines: dict[tuple[str, str | None], set[str]] = defaultdict(set)
    for machine, spans in timelines.items():
        for span in spans:
            if span.state not in STOP_STATES:
                continue
            lost = span.seconds - sum(
                max(0.0, min(span.end, stop_end) - max(span.start, stop_start))
                for stop_start, stop_end in planned_stops
            )
            if lost < SPAN_RESOLUTION_S:
                continue
            entry = (span.state, key(machine, span))
            seconds[entry] += lost
            counts[entry] += 1
            machines[entry].add(machine)
    total = sum(seconds.values())
    ordered = sorted(seconds, key=lambda e: (-seconds[e], e[0], e[1] or ""))[:limit]
    result: list[StopReason] = []
    running = 0.0
    for entry in ordered:
        running += seconds[entry]
        result.append(
            StopReason(
                state=entry[0],
                reason=entry[1],
                machines=tuple(sorted(machines[entry])),
                seconds=round(seconds[entry], 3),
                count=counts[entry],
                share=seconds[entry] / total if total else 0.0,
                cumulative=running / total if total else 0.0,
            )
        )
    return tuple(result)


def _number(fields: Mapping[str, Any] | None, key: str) -> float | None:
    if fields is None:
        return None
    value = fields.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _carbon_gas(energy: Mapping[str, Any] | None) -> str | None:
    if energy is None:
        return None
    return next((gas for gas in ("co2e", "co2") if f"{gas}_kg" in energy), None)


def figures(
    scope: str,
    oee: Mapping[str, Any] | None,
    energy: Mapping[str, Any] | None,
    *,
    name: str | None = None,
) -> Figures:
    """One scope's figures from its oee record and its energy record (either may be missing)."""
    first = oee or energy or {}
    gas = _carbon_gas(energy)
    flags = first.get("flags")
    return Figures(
        scope=scope,
        name=name or str(first.get("machine_name") or first.get("line_name") or scope),
        line=first.get("line"),
        line_name=first.get("line_name"),
        availability=_number(oee, "availability"),
        performance=_number(oee, "performance"),
        quality=_number(oee, "quality"),
        oee=_number(oee, "oee"),
        produced=_number(oee, "produced"),
        good=_number(oee, "good"),
        losses=losses(oee) if oee is not None else None,
        kwh=_number(energy, "kwh"),
        kwh_per_unit=_number(energy, "kwh_per_unit"),
        kwh_per_good=_number(energy, "kwh_per_good"),
        kgce=_number(energy, "kgce"),
        kgce_per_unit=_number(energy, "kgce_per_unit"),
        carbon_kg=_number(energy, f"{gas}_kg") if gas else None,
        carbon_kg_per_unit=_number(energy, f"{gas}_kg_per_unit") if gas else None,
        carbon_gas=gas,
        flags=tuple(str(f) for f in flags) if isinstance(flags, list) else (),
    )


def _by_scope(records: Iterable[Record], kind: RecordKind, scope_key: str) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    for record in records:
        if record.kind is kind:
            found[str(record.fields.get(scope_key) or "")] = record.fields
    return found


def period_report(
    finals: Sequence[Record],
    states: Iterable[Record],
    *,
    period: str,
    day: str,
    shift: str | None,
    start: float,
    end: float,
    planned_stops: tuple[tuple[float, float], ...] = (),
    reason_text: Callable[[str, str | None], str | None] = lambda _machine, reason: reason,
    order: Sequence[str] = (),
) -> PeriodReport:
    """A shift's or a day's report from its final records and the machines' state records.
    reason_text(machine, reason) names a stop reason as the machine's profile does; `order` lists
    machine and line ids as the workshop file does (others follow, by id)."""
    machine_oee = _by_scope(finals, RecordKind.OEE, "machine")
    machine_energy = _by_scope(finals, RecordKind.ENERGY, "machine")
    line_oee = _by_scope(finals, RecordKind.LINE_OEE, "line")
    line_energy = _by_scope(finals, RecordKind.LINE_ENERGY, "line")
    workshop_oee = next((r.fields for r in finals if r.kind is RecordKind.WORKSHOP_OEE), None)
    workshop_energy = next((r.fields for r in finals if r.kind is RecordKind.WORKSHOP_ENERGY), None)
    spans = timeline(states, start, end)
    rank = {scope: index for index, scope in enumerate(order)}

    def ordered(ids: set[str]) -> list[str]:
        return sorted(ids, key=lambda scope: (rank.get(scope, len(rank)), scope))

    machine_ids = ordered(set(machine_oee) | set(machine_energy) | set(spans))
    machines = tuple(figures(m, machine_oee.get(m), machine_energy.get(m)) for m in machine_ids)
    lines = tuple(figures(line, line_oee.get(line), line_energy.get(line)) for line in ordered(set(line_oee)))
    first = next((r.fields for r in finals), {})
    workshop = None
    if workshop_oee is not None or workshop_energy is not None:
        named = (workshop_oee or workshop_energy or {}).get("workshop_name")
        workshop = figures("", workshop_oee, workshop_energy, name=str(named or ""))
    return PeriodReport(
        period=period,
        day=day,
        shift=shift,
        shift_name=first.get("shift_name") if shift is not None else None,
        crew=first.get("crew") if shift is not None else None,
        crew_name=first.get("crew_name") if shift is not None else None,
        start=start,
        end=end,
        machines=machines,
        lines=lines,
        workshop=workshop,
        timelines=spans,
        pareto=pareto(
            spans, key=lambda machine, span: reason_text(machine, span.reason), planned_stops=planned_stops
        ),
        planned_stops=planned_stops,
        final=bool(finals) and all(r.fields.get("final") is True for r in finals),
    )


def month_energy(month: str, day_finals: Sequence[Record]) -> MonthEnergy:
    """Energy per unit per machine and per line over a month's day records (period 'day'). The
    month's figure is its kWh over its parts, so a day with few parts weighs as little as it should."""
    days = sorted({str(r.fields.get("day")) for r in day_finals if r.fields.get("day")})
    produced: dict[tuple[str, str], float] = {}
    for record in day_finals:
        if record.kind in (RecordKind.OEE, RecordKind.LINE_OEE):
            scope = record.machine if record.kind is RecordKind.OEE else record.line
            count = _number(record.fields, "produced")
            if scope is not None and count is not None:
                produced[(scope, str(record.fields.get("day")))] = count

    def series(kind: RecordKind, scope_key: str) -> tuple[EnergySeries, ...]:
        per_scope: dict[str, list[Record]] = defaultdict(list)
        for record in day_finals:
            if record.kind is kind:
                per_scope[str(record.fields.get(scope_key))].append(record)
        result = []
        for scope, records in sorted(per_scope.items()):
            by_day = {str(r.fields.get("day")): r.fields for r in records}
            entries = tuple(
                EnergyDay(
                    d,
                    _number(by_day.get(d), "kwh"),
                    produced.get((scope, d)),
                    _number(by_day.get(d), "kwh_per_unit"),
                )
                for d in days
            )
            kwh_days = [e for e in entries if e.kwh is not None]
            kwh = sum(e.kwh for e in kwh_days if e.kwh is not None) if kwh_days else None
            # parts over the days whose energy was measured, so kWh and parts cover the same time
            parts = sum(e.produced for e in kwh_days if e.produced is not None) if kwh_days else None
            latest = records[-1].fields
            result.append(
                EnergySeries(
                    scope=scope,
                    name=str(latest.get("machine_name") or latest.get("line_name") or scope),
                    line=latest.get("line"),
                    days=entries,
                    kwh=None if kwh is None else round(kwh, 4),
                    produced=parts,
                    kwh_per_unit=round(kwh / parts, 6) if kwh is not None and parts else None,
                )
            )
        return tuple(result)

    return MonthEnergy(
        month, tuple(days), series(RecordKind.ENERGY, "machine"), series(RecordKind.LINE_ENERGY, "line")
    )
