"""What `edge-agent plan` shows of a Modbus connection: each device's requests of one cycle, and on
a serial bus how much of the poll interval the bus is busy (agent/drivers/timing.py)."""

from __future__ import annotations

from agent.config.compiled import Device
from agent.config.connections import ModbusConnection, ModbusRtuConnection
from agent.drivers.modbus import plan_device, request_pause
from agent.drivers.timing import cycle_seconds
from agent.i18n import Catalogue
from agent.terminal import Column, FittedTable

BUS_BUSY_WARNING = 0.8  # a bus busy for more of the interval leaves no room for a retry or a slow reply


def plan_table(connection: ModbusConnection, devices: list[Device], words: Catalogue) -> FittedTable:
    plans = [plan_device(d, connection) for d in devices]
    requests = [r for p in plans for r in p.requests]
    budget = ""
    if isinstance(connection, ModbusRtuConnection):
        busy = cycle_seconds(requests, connection, request_pause(connection))
        share = busy / connection.interval_s
        budget = words(
            "plan.budget",
            busy_ms=f"{busy * 1000:.0f}",
            interval_ms=f"{connection.interval_s * 1000:.0f}",
            share=f"{share:.0%}",
        )
        if share > BUS_BUSY_WARNING:
            budget += words("plan.too_slow")
    table = FittedTable(
        words(
            "plan.title",
            connection=connection.id,
            transport=connection.transport,
            endpoint=connection.endpoint,
            interval=f"{connection.interval_s:g}",
            requests=len(requests),
            budget=budget,
        ),
        [
            Column(words("column.device")),
            Column(words("column.unit_id"), numeric=True),
            Column(words("column.fc")),
            Column(words("column.table")),
            Column(words("column.address"), numeric=True),
            Column(words("column.count"), numeric=True),
            Column(words("column.gap_filled"), numeric=True),
            Column(words("column.tags"), wrap=True),
        ],
    )
    for plan in plans:
        for request in plan.requests:
            table.add_row(
                plan.device,
                str(plan.unit),
                f"{request.function_code:02d}",
                request.table.value,
                str(request.address),
                str(request.count),
                str(request.filled),
                ", ".join(t.name for t in request.tags),
            )
    return table
