"""The live terminal view and the shift summary: machines, states, OEE with A/P/Q, energy per unit.

Words come from the catalogue (agent/i18n) in the workshop's language; machines and lines are
shown by their names (their ids where none is configured). Tables are laid out by
agent/terminal.py: at a narrow terminal the least needed columns go first (A/P/Q, since, reason,
line), and nothing is cut inside a word.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Mapping
from typing import Any

from rich.console import Group
from rich.text import Text

from agent.i18n import Catalogue
from agent.kpi.calendar import NO_SHIFT
from agent.kpi.engine import KpiEngine
from agent.kpi.oee import OeeTotals, compute_oee
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind
from agent.runtime.agent import Agent
from agent.runtime.snapshot import AgentSnapshot, ConnectionSnapshot
from agent.terminal import Column, FittedTable

STATE_STYLE = {
    MachineState.PRODUCING: "bold green",
    MachineState.IDLE: "yellow",
    MachineState.SETUP: "cyan",
    MachineState.FAULT: "bold red",
    MachineState.PLANNED_STOP: "blue",
    MachineState.NO_SHIFT: "dim",
    MachineState.OFFLINE: "bold magenta",
}
# Which columns a narrow terminal gives up first (agent/terminal.py): higher goes earlier.
REASON, PER_UNIT, DETAIL, RATIO, CONTEXT = 5, 4, 3, 2, 1
SUMMARY_TIMES = ("pbt_s", "apt_s", "fault_s", "setup_s")


def live_columns(words: Catalogue) -> list[Column]:
    return [
        Column(words("column.machine")),
        Column(words("column.line"), drop=CONTEXT),
        Column(words("column.state")),
        Column(words("column.since"), drop=DETAIL),
        Column(words("column.reason"), wrap=True, drop=REASON),
        *count_and_ratio_columns(words),
        Column(words("column.kwh_per_unit"), numeric=True, drop=PER_UNIT),
    ]


def count_and_ratio_columns(words: Catalogue) -> list[Column]:
    """Parts, good parts, A, P, Q and OEE: the live view's and the summary's."""
    return [
        Column(words("column.produced"), numeric=True),
        Column(words("column.good"), numeric=True),
        Column(words("column.availability"), numeric=True, drop=RATIO),
        Column(words("column.performance"), numeric=True, drop=RATIO),
        Column(words("column.quality"), numeric=True, drop=RATIO),
        Column(words("column.oee"), numeric=True),
    ]


def percent(value: float | None, words: Catalogue) -> str:
    return words("word.none") if value is None else f"{value * 100:5.1f}%"


def _local(ts: float, zone: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S")


def _oee_cells(totals: OeeTotals, words: Catalogue) -> list[str]:
    result = compute_oee(totals)
    return [
        percent(result.availability, words),
        percent(result.performance, words),
        percent(result.quality, words),
        percent(result.oee, words),
    ]


def _good(totals: OeeTotals, none: str) -> str:
    """Good parts are a count only where every part was counted: a machine whose quality comes
    from another one, or a line or workshop with such machines, shows none (as its records)."""
    return none if totals.produced_inferred > 0 else f"{totals.good:.0f}"


def view_title(engine: KpiEngine, timezone: str, now: float, words: Catalogue) -> str:
    zone = zoneinfo.ZoneInfo(timezone)
    period = engine.period
    names = engine.setup.names
    common = {
        "now": f"{dt.datetime.fromtimestamp(now, zone):%Y-%m-%d %H:%M:%S}",
        "timezone": timezone,
        "separator": words("word.separator"),
        "start": _local(period.start, zone)[:5],
    }
    if not period.is_shift:
        title = words("view.title_no_shift", **common)
    elif period.crew is not None:
        title = words(
            "view.title_crew", shift=names.shift(period.name), crew=names.crew(period.crew), **common
        )
    else:
        title = words("view.title", shift=names.shift(period.name), **common)
    stop = next(((a, b) for a, b in period.breaks if a <= now < b), None)
    if stop is not None:
        title += words(
            "view.planned_stop",
            name=names.planned_stop(period.name, dt.datetime.fromtimestamp(stop[0], zone))
            or words("state.planned_stop"),
            end=_local(stop[1], zone)[:5],
            separator=words("word.separator"),
        )
    return title


def machine_table(engine: KpiEngine, timezone: str, now: float, words: Catalogue) -> FittedTable:
    zone = zoneinfo.ZoneInfo(timezone)
    table = FittedTable(view_title(engine, timezone, now, words), live_columns(words))
    none = words("word.none")
    for view in engine.views():
        energy = view.energy.total_kwh
        measured = view.energy.measured and view.totals.produced > 0
        per_unit = f"{energy / view.totals.produced:.4f}" if measured else none
        table.add_row(
            view.name,
            view.line_name,
            Text(words.state(view.state.value), style=STATE_STYLE[view.state]),
            _local(view.since, zone),
            view.reason or "",
            f"{view.totals.produced:.0f}",
            _good(view.totals, none),
            *_oee_cells(view.totals, words),
            per_unit,
        )
    line_totals = engine.line_totals()
    table.add_section()
    for line, totals in line_totals.items():
        table.add_row(
            Text(engine.line_name(line), style="bold"),
            words("word.line"),
            "",
            "",
            "",
            f"{totals.produced:.0f}",
            _good(totals, none),
            *_oee_cells(totals, words),
            "",
        )
    workshop = OeeTotals()
    for totals in line_totals.values():
        workshop = workshop + totals
    table.add_row(
        Text(engine.setup.names.workshop or words("word.workshop"), style="bold"),
        words("word.workshop"),
        "",
        "",
        "",
        f"{workshop.produced:.0f}",
        _good(workshop, none),
        *_oee_cells(workshop, words),
        "",
    )
    return table


def health_table(connections: Iterable[ConnectionSnapshot], words: Catalogue) -> FittedTable:
    table = FittedTable(
        words("view.connections"),
        [
            Column(words("column.connection")),
            Column(words("column.endpoint"), drop=CONTEXT),
            Column(words("column.cycles"), numeric=True, drop=DETAIL),
            Column(words("column.missed"), numeric=True),
            Column(words("column.cycle_ms"), numeric=True, drop=DETAIL),
            Column(words("column.devices_up"), numeric=True),
            Column(words("column.last_error"), wrap=True, drop=RATIO),
        ],
    )
    for item in connections:
        errors = [f"{d.id}: {d.error}" for d in item.devices if d.error]
        table.add_row(
            item.name,
            item.endpoint,
            str(item.cycles),
            str(item.missed_cycles),
            f"{item.last_cycle_s * 1000:.1f}",
            f"{item.devices_up}/{len(item.devices)}",
            errors[0] if errors else "",
        )
    return table


def outputs_table(state: AgentSnapshot, words: Catalogue) -> FittedTable:
    storage = state.storage
    waiting = (
        words("view.waiting", count=storage.waiting_in_memory, reason=storage.unwritable_reason)
        if storage.unwritable
        else ""
    )
    table = FittedTable(
        words("view.outputs", stored=storage.committed, waiting=waiting, separator=words("word.separator")),
        [
            Column(words("column.output")),
            Column(words("column.connected")),
            Column(words("column.backlog"), numeric=True),
            Column(words("column.oldest_s"), numeric=True, drop=DETAIL),
            Column(words("column.delivered_per_s"), numeric=True, drop=DETAIL),
            Column(words("column.delivered"), numeric=True, drop=CONTEXT),
            Column(words("column.failures"), numeric=True),
            Column(words("column.last_error"), wrap=True, drop=RATIO),
        ],
    )
    for output in state.outputs:
        oldest = output.oldest_undelivered_s
        table.add_row(
            output.sink,
            words("word.yes") if output.connected else words("word.no"),
            str(output.backlog_records),
            words("word.none") if oldest is None else f"{oldest:.0f}",
            f"{output.delivered_per_s:.1f}",
            str(output.delivered),
            str(output.failures),
            output.last_error or "",
        )
    return table


def live_view(agent: Agent, timezone: str, now: float, words: Catalogue, width: int | None) -> Group:
    state = agent.snapshot()
    return Group(
        machine_table(agent.engine, timezone, now, words).render(width),
        health_table(state.connections, words).render(width),
        outputs_table(state, words).render(width),
    )


SUMMARY_KINDS = (RecordKind.OEE, RecordKind.LINE_OEE, RecordKind.WORKSHOP_OEE)


def shift_summary(records: Iterable[Record], words: Catalogue, timezone: str) -> FittedTable | None:
    """The closing numbers of a shift, from its final records (no-shift stretches have none)."""
    finals = [
        r
        for r in records
        if r.fields.get("final")
        and r.kind in SUMMARY_KINDS
        and r.fields.get("period") == "shift"
        and r.fields.get("shift") != NO_SHIFT
    ]
    if not finals:
        return None
    return summary_table(finals, words, timezone)


def summary_table(finals: list[Record], words: Catalogue, timezone: str) -> FittedTable:
    first = finals[0].fields
    shift = first.get("shift_name") or first["shift"]
    started = dt.datetime.strptime(str(first["shift_start"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    start = f"{started.astimezone(zoneinfo.ZoneInfo(timezone)):%Y-%m-%d %H:%M}"
    if first.get("crew_name"):
        title = words("summary.title_crew", shift=shift, crew=first["crew_name"], start=start)
    else:
        title = words("summary.title", shift=shift, start=start)
    columns = [
        Column(words("column.scope")),
        *(Column(words(f"column.{key[:-2]}_h"), numeric=True, drop=DETAIL) for key in SUMMARY_TIMES),
        *count_and_ratio_columns(words),
    ]
    table = FittedTable(title, columns)
    for record in finals:
        f = record.fields
        table.add_row(
            _scope(record.kind, f, words),
            *(f"{f[key] / 3600:.2f}" for key in SUMMARY_TIMES),
            f"{f['produced']:.0f}",
            words("word.none") if f["good"] is None else f"{f['good']:.0f}",
            percent(f["availability"], words),
            percent(f["performance"], words),
            percent(f["quality"], words),
            percent(f["oee"], words),
        )
    return table


def _scope(kind: RecordKind, fields: Mapping[str, Any], words: Catalogue) -> str:
    if kind is RecordKind.OEE:
        return str(fields.get("machine_name") or fields["machine"])
    if kind is RecordKind.LINE_OEE:
        return words("summary.line", line=fields.get("line_name") or fields["line"])
    return str(fields.get("workshop_name") or words("word.workshop"))
