"""The live terminal view: machines, states, OEE with A/P/Q, energy per unit."""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Iterable

from rich.console import Group
from rich.table import Table
from rich.text import Text

from agent.kpi.engine import KpiEngine
from agent.kpi.oee import OeeTotals, compute_oee
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind
from agent.runtime import Agent, ConnectionHealth

STATE_STYLE = {
    MachineState.PRODUCING: "bold green",
    MachineState.IDLE: "yellow",
    MachineState.SETUP: "cyan",
    MachineState.FAULT: "bold red",
    MachineState.PLANNED_STOP: "blue",
    MachineState.NO_SHIFT: "dim",
    MachineState.OFFLINE: "bold magenta",
}


LIVE_COLUMNS = (
    "machine",
    "line",
    "state",
    "since",
    "reason",
    "produced",
    "good",
    "A",
    "P",
    "Q",
    "OEE",
    "kWh/unit",
)
SUMMARY_COLUMNS = ("scope", "PBT h", "APT h", "fault h", "setup h", "produced", "good", "A", "P", "Q", "OEE")
HEALTH_COLUMNS = ("connection", "endpoint", "cycles", "missed", "cycle ms", "devices up", "last error")
OUTPUT_COLUMNS = (
    "output",
    "connected",
    "backlog",
    "oldest s",
    "delivered/s",
    "delivered",
    "failures",
    "last error",
)
TEXT_COLUMNS = frozenset(
    {
        "machine",
        "line",
        "state",
        "since",
        "reason",
        "scope",
        "connection",
        "endpoint",
        "last error",
        "output",
        "connected",
    }
)


def new_table(title: str, columns: tuple[str, ...]) -> Table:
    """Numbers right-aligned, text left-aligned."""
    table = Table(title=title, expand=False)
    for column in columns:
        table.add_column(column, justify="left" if column in TEXT_COLUMNS else "right")
    return table


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:5.1f}%"


def _local(ts: float, zone: zoneinfo.ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(ts, zone).strftime("%H:%M:%S")


def _oee_cells(totals: OeeTotals) -> list[str]:
    result = compute_oee(totals)
    return [
        percent(result.availability),
        percent(result.performance),
        percent(result.quality),
        percent(result.oee),
    ]


def _good(totals: OeeTotals) -> str:
    """A machine whose quality comes from another one counts no good parts of its own."""
    inferred = totals.produced > 0 and totals.produced_inferred == totals.produced
    return "—" if inferred else f"{totals.good:.0f}"


def machine_table(engine: KpiEngine, timezone: str, now: float) -> Table:
    zone = zoneinfo.ZoneInfo(timezone)
    period = engine.period
    title = (
        f"{dt.datetime.fromtimestamp(now, zone):%Y-%m-%d %H:%M:%S} {timezone} · "
        f"shift {period.name} since {_local(period.start, zone)}"
    )
    table = new_table(title, LIVE_COLUMNS)
    for view in engine.views():
        energy = view.energy.total_kwh
        measured = view.energy.measured and view.totals.produced > 0
        per_unit = f"{energy / view.totals.produced:.4f}" if measured else "—"
        table.add_row(
            view.id,
            view.line,
            Text(view.state.value, style=STATE_STYLE[view.state]),
            _local(view.since, zone),
            view.reason or "",
            f"{view.totals.produced:.0f}",
            _good(view.totals),
            *_oee_cells(view.totals),
            per_unit,
        )
    line_totals = engine.line_totals()
    table.add_section()
    for line, totals in line_totals.items():
        table.add_row(
            f"[b]{line}[/b]",
            "line",
            "",
            "",
            "",
            f"{totals.produced:.0f}",
            f"{totals.good:.0f}",
            *_oee_cells(totals),
            "",
        )
    workshop = OeeTotals()
    for totals in line_totals.values():
        workshop = workshop + totals
    table.add_row(
        "[b]workshop[/b]",
        "",
        "",
        "",
        "",
        f"{workshop.produced:.0f}",
        f"{workshop.good:.0f}",
        *_oee_cells(workshop),
        "",
    )
    return table


def health_table(health: Iterable[ConnectionHealth]) -> Table:
    table = new_table("connections", HEALTH_COLUMNS)
    for item in health:
        up = sum(1 for s in item.devices.values() if s.connected)
        errors = [f"{d}: {s.error}" for d, s in item.devices.items() if s.error]
        table.add_row(
            item.name,
            item.endpoint,
            str(item.cycles),
            str(item.missed_cycles),
            f"{item.last_cycle_s * 1000:.1f}",
            f"{up}/{len(item.devices)}",
            errors[0] if errors else "",
        )
    return table


def outputs_table(agent: Agent, now: float) -> Table:
    storage = agent.storage
    waiting = (
        f", {storage.waiting_in_memory} waiting in memory ({storage.unwritable_reason})"
        if storage.unwritable
        else ""
    )
    table = new_table(f"outputs · outbox: {storage.stored} records committed{waiting}", OUTPUT_COLUMNS)
    for delivery in agent.deliveries:
        stats = delivery.stats
        oldest = stats.oldest_undelivered_ts
        table.add_row(
            stats.sink,
            "yes" if stats.connected else "no",
            str(stats.backlog_records),
            "—" if oldest is None else f"{max(0.0, now - oldest):.0f}",
            f"{stats.delivered_per_s(time.monotonic()):.1f}",
            str(stats.delivered),
            str(stats.failures),
            stats.last_error or "",
        )
    return table


def live_view(agent: Agent, timezone: str, now: float) -> Group:
    return Group(
        machine_table(agent.engine, timezone, now),
        health_table(agent.health.values()),
        outputs_table(agent, now),
    )


def shift_summary(records: Iterable[Record]) -> Table | None:
    """The closing numbers of a shift, from its final records."""
    finals = [
        r
        for r in records
        if r.fields.get("final") and r.kind in (RecordKind.OEE, RecordKind.LINE_OEE, RecordKind.WORKSHOP_OEE)
    ]
    if not finals:
        return None
    first = finals[0].fields
    table = new_table(f"shift {first['shift']} closed (started {first['shift_start']})", SUMMARY_COLUMNS)
    for record in finals:
        f = record.fields
        scope = f.get("machine") or (f"line {f['line']}" if "line" in f else "workshop")
        table.add_row(
            str(scope),
            f"{f['pbt_s'] / 3600:.2f}",
            f"{f['apt_s'] / 3600:.2f}",
            f"{f['fault_s'] / 3600:.2f}",
            f"{f['setup_s'] / 3600:.2f}",
            f"{f['produced']:.0f}",
            "—" if f["good"] is None else f"{f['good']:.0f}",
            percent(f["availability"]),
            percent(f["performance"]),
            percent(f["quality"]),
            percent(f["oee"]),
        )
    return table
