"""What the board and report pages are sent: their figures and every word they show, as JSON.

The pages are static files that render these documents (agent/web/static/); all their words come
from the catalogue's `web` section and the state names, in the site's language, so a page has no
text of its own. Times are epoch seconds; the pages show them in the site's time zone.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.i18n import Catalogue
from agent.kpi.calendar import NO_SHIFT
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind
from agent.reports.data import MonthEnergy, PeriodReport

SECTION = "web."


def labels(words: Catalogue) -> dict[str, str]:
    """Every word of the pages, by its key in the catalogue's `web` section."""
    keys = {k for k in (*words.fallback, *words.messages) if k.startswith(SECTION)}
    return {key.removeprefix(SECTION): words(key) for key in sorted(keys)}


def state_names(words: Catalogue) -> dict[str, str]:
    return {state.value: words.state(state.value) for state in MachineState} | {
        "unknown": words.state("unknown")
    }


def page_context(words: Catalogue, timezone: str, agent: str) -> dict[str, Any]:
    return {
        "language": words.language,
        "timezone": timezone,
        "agent": agent,
        "labels": labels(words),
        "states": state_names(words),
    }


def _finite(value: Any) -> Any:
    """NaN and infinity are not JSON: null, as in the records."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def report_document(report: PeriodReport, context: Mapping[str, Any]) -> dict[str, Any]:
    """The report as JSON. Timeline spans go as [state, start, end, reason]: a busy workshop's
    shift has tens of thousands of them."""
    body: dict[str, Any] = {field.name: getattr(report, field.name) for field in dataclasses.fields(report)}
    body["workshop"] = dataclasses.asdict(report.workshop) if report.workshop is not None else None
    body["machines"] = [dataclasses.asdict(m) for m in report.machines]
    body["lines"] = [dataclasses.asdict(line) for line in report.lines]
    body["pareto"] = [dataclasses.asdict(r) for r in report.pareto]
    body["timelines"] = {
        machine: [[s.state, s.start, s.end, s.reason] for s in spans]
        for machine, spans in report.timelines.items()
    }
    return {**context, "kind": report.period, "report": body}


def month_document(month: MonthEnergy, context: Mapping[str, Any]) -> dict[str, Any]:
    return {**context, "kind": "month", "report": dataclasses.asdict(month)}


def _number(fields: Mapping[str, Any] | None, key: str) -> float | None:
    if fields is None:
        return None
    value = fields.get(key)
    return _finite(float(value)) if isinstance(value, int | float) and not isinstance(value, bool) else None


def target_parts(oee: Mapping[str, Any] | None, ideal_cycle_s: float | None) -> int | None:
    """Parts the planned busy time so far allows at the ideal cycle: the mix's own ideal cycle
    (Σ ideal x produced / produced) once parts are made, the configured one before."""
    pbt = _number(oee, "pbt_s")
    produced, ideal = _number(oee, "produced"), _number(oee, "ideal_s")
    cycle = ideal / produced if produced and ideal else ideal_cycle_s
    if pbt is None or not cycle:
        return None
    return math.floor(pbt / cycle + 1e-9)


def _ratios(oee: Mapping[str, Any] | None) -> dict[str, Any]:
    return {
        key: _number(oee, key)
        for key in ("oee", "availability", "performance", "quality", "produced", "good")
    }


def board_document(
    latest: Sequence[Record],
    last_stops: Mapping[str, Record],
    context: Mapping[str, Any],
    *,
    now: float,
    refresh_s: float,
    lines: Sequence[tuple[str, str]] = (),
    machines: Sequence[tuple[str, str, float | None]] = (),
    workshop_name: str = "",
    reason_text: Callable[[str, str | None], str | None] = lambda _machine, reason: reason,
) -> dict[str, Any]:
    """The board: a tile per machine grouped by line, the lines' and the workshop's totals, the
    current shift and crew. `lines` (id, name) and `machines` (id, line, ideal cycle) give the
    configured machines and their order; without them, every machine the records know, by id."""
    by_kind: dict[RecordKind, dict[str, Mapping[str, Any]]] = {}
    stamp: dict[tuple[RecordKind, str], float] = {}
    for record in latest:
        scope = record.machine or record.line or ""
        if record.kind in (RecordKind.LINE_OEE, RecordKind.LINE_ENERGY):
            scope = record.line or ""
        by_kind.setdefault(record.kind, {})[scope] = record.fields
        stamp[(record.kind, scope)] = record.ts
    states = by_kind.get(RecordKind.STATE, {})
    oee = by_kind.get(RecordKind.OEE, {})
    energy = by_kind.get(RecordKind.ENERGY, {})
    cycles = {m: cycle for m, _line, cycle in machines}
    machine_line = {m: line for m, line, _cycle in machines}
    known = [m for m, _line, _cycle in machines]
    # with the workshop's machines given, only they: a machine taken out of the file has old records
    extra = [] if known else sorted(set(states) | set(oee))
    line_names = dict(lines)
    tiles_by_line: dict[str, list[dict[str, Any]]] = {}
    for machine in [*known, *extra]:
        state = states.get(machine)
        figures = oee.get(machine)
        first = state or figures or {}
        line = machine_line.get(machine) or str(first.get("line") or "")
        if line not in line_names and first.get("line_name"):
            line_names[line] = str(first["line_name"])
        stop = last_stops.get(machine)
        tiles_by_line.setdefault(line, []).append(
            {
                "id": machine,
                "name": str(first.get("machine_name") or machine),
                "state": state.get("state") if state else "unknown",
                "since": stamp.get((RecordKind.STATE, machine)),
                "reason": reason_text(machine, state.get("reason")) if state else None,
                **_ratios(figures),
                "target": target_parts(figures, cycles.get(machine)),
                "kwh_per_unit": _number(energy.get(machine), "kwh_per_unit"),
                "last_stop": (
                    {
                        "state": stop.fields.get("state"),
                        "reason": reason_text(machine, stop.fields.get("reason")),
                        "at": stop.ts,
                    }
                    if stop is not None
                    else None
                ),
            }
        )
    line_oee = by_kind.get(RecordKind.LINE_OEE, {})
    line_energy = by_kind.get(RecordKind.LINE_ENERGY, {})
    order = [line for line, _name in lines] + sorted(set(tiles_by_line) - {line for line, _ in lines})
    workshop = next(iter(by_kind.get(RecordKind.WORKSHOP_OEE, {}).values()), None)
    workshop_energy = next(iter(by_kind.get(RecordKind.WORKSHOP_ENERGY, {}).values()), None)
    return {
        **context,
        "kind": "board",
        "now": now,
        "refresh_s": refresh_s,
        "workshop_name": workshop_name or (workshop or {}).get("workshop_name") or "",
        "shift": (
            {
                "id": workshop.get("shift"),
                "name": workshop.get("shift_name") or workshop.get("shift"),
                "crew": workshop.get("crew_name") or workshop.get("crew"),
                "start": workshop.get("shift_start"),
                "day": workshop.get("day"),
            }
            if workshop is not None
            and workshop.get("period") == "shift"
            and workshop.get("shift") != NO_SHIFT
            else None
        ),
        "workshop": {
            **_ratios(workshop),
            "kwh_per_unit": _number(workshop_energy, "kwh_per_unit"),
            "machines": sum(len(t) for t in tiles_by_line.values()),
        },
        "lines": [
            {
                "id": line,
                "name": line_names.get(line, line),
                **_ratios(line_oee.get(line)),
                "kwh_per_unit": _number(line_energy.get(line), "kwh_per_unit"),
                "machines": tiles_by_line.get(line, []),
            }
            for line in order
            if line in tiles_by_line
        ],
    }


def index_document(shifts: Sequence[tuple[str, str]], context: Mapping[str, Any]) -> dict[str, Any]:
    """The report index: the shifts, days and months the history has, newest first."""
    days = sorted({day for day, _shift in shifts}, reverse=True)
    months = sorted({day[:7] for day in days}, reverse=True)
    return {
        **context,
        "kind": "index",
        "report": {"shifts": [list(s) for s in shifts], "days": days, "months": months},
    }
