"""`edge-agent run --once -c WORKSHOP`: poll every device once and show what the agent would see.

For commissioning, like Telegraf's `--test`: every tag's decoded value and quality, and each
machine's state as its profile's rules derive it. The drivers are the agent's own, so what this
shows is what the service will read. Nothing is recorded: no outbox, no records, no outputs.
An OPC UA connection with security uses the agent's certificate and trust store
(<state_dir>/pki) exactly as the service does, so a trust problem shows here first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from agent.config.compiled import AgentConfig, Device
from agent.config.connections import Connection
from agent.drivers.base import Clock, ReadResult
from agent.drivers.connect_errors import why_not_connected
from agent.drivers.registry import driver_entry
from agent.i18n import Catalogue, catalogue
from agent.kpi.states import MachineState
from agent.samples import DeviceStatus, Quality, Sample
from agent.terminal import Column, FittedTable, print_table

SETTLE_POLL_S = 0.1
# A connection that fails at the first try gets two more, as the service would retry it: a
# gateway that is slow to accept (or a loop busy with OPC UA's cryptography at start) is not a
# dead device. The pauses outlast the drivers' first two reconnect backoffs (agent/backoff.py:
# at most 1 s, then at most 2 s).
RETRY_PAUSES_S = (1.05, 2.05)
UNKNOWN_STATE = "unknown"
NO_ANSWER = "run_once.no_answer"  # reasons that are the agent's own words, in the catalogue
NO_RULE = "run_once.no_rule"
TROUBLE = frozenset({MachineState.FAULT.value, MachineState.OFFLINE.value, UNKNOWN_STATE})


@dataclass
class DeviceReading:
    device: Device
    endpoint: str
    status: DeviceStatus | None = None
    samples: list[Sample] = field(default_factory=list)
    why_not_connected: str | None = None  # in plain words, when its connection could not be made

    @property
    def answered(self) -> bool:
        return self.status is not None and self.status.connected and self.status.error is None

    @property
    def state(self) -> tuple[str, str | None]:
        """The machine state its profile's rules give for these values (a state id, or `unknown`,
        and the reason as a catalogue key or the rule's own text); meters have none."""
        if self.device.machine is None:
            return "", None
        if self.status is None or not self.status.connected:
            return MachineState.OFFLINE.value, NO_ANSWER
        values = {s.tag: s.value for s in self.samples if s.quality is Quality.GOOD}
        verdict = self.device.profile.rules.evaluate(values)
        if verdict is None:
            return UNKNOWN_STATE, NO_RULE
        return verdict.state.value, verdict.reason


async def poll_once(
    config: AgentConfig, clock: Clock = time.time, words: Catalogue | None = None
) -> list[DeviceReading]:
    """One read of every connection, all connections at once, as the service's poll tasks do; why a
    connection could not be made is said in `words` (default: the workshop's language)."""
    words = words or catalogue(config.workshop.site.language)
    per_connection = await asyncio.gather(
        *(_read_connection(config, connection, clock, words) for connection in config.workshop.connections)
    )
    return [reading for readings in per_connection for reading in readings]


async def _read_connection(
    config: AgentConfig, connection: Connection, clock: Clock, words: Catalogue
) -> list[DeviceReading]:
    devices = config.devices_on(connection)
    if not devices:
        return []
    entry = driver_entry(connection)
    driver = entry.build(connection, devices, clock, config.workshop.agent)
    async with driver:
        result = await driver.read()
        for pause in RETRY_PAUSES_S:
            if all(status.connected for status in result.statuses):
                break
            await asyncio.sleep(pause)
            result = await driver.read()
        settle_s = entry.first_values_s(connection, devices)
        if settle_s > 0:
            result = await _settle(driver.read, result, settle_s)
    readings = {d.id: DeviceReading(d, driver.endpoint) for d in devices}
    for sample in result.samples:
        readings[sample.device].samples.append(sample)
    for status in result.statuses:
        readings[status.device].status = status
    unconnected = [r for r in readings.values() if r.status is None or not r.status.connected]
    if unconnected:
        # the driver knows only that connecting failed (pymodbus says no more); a plain connect says why
        reason = await why_not_connected(connection, words)
        for reading in unconnected:
            reading.why_not_connected = reason
    return list(readings.values())


async def _settle(
    read: Callable[[], Awaitable[ReadResult]], result: ReadResult, settle_s: float
) -> ReadResult:
    """Read again until every value is good, the session is down, or settle_s has passed."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        if all(s.quality is Quality.GOOD for s in result.samples):
            break
        if any(not s.connected for s in result.statuses):
            break  # no session: waiting brings no values
        await asyncio.sleep(SETTLE_POLL_S)
        result = await read()
    return result


def _value_text(sample: Sample) -> str:
    if sample.quality is not Quality.GOOD:
        return ""
    value = sample.value
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def readings_table(readings: list[DeviceReading], words: Catalogue) -> FittedTable:
    """One row per tag, the device and its state on every row: greppable when piped."""
    table = FittedTable(
        words("run_once.title"),
        [
            Column(words("column.device")),
            Column(words("column.connection"), drop=1),
            Column(words("column.state")),
            Column(words("column.reason"), wrap=True, drop=2),
            Column(words("column.tag")),
            Column(words("column.value"), wrap=True),
            Column(words("column.unit"), drop=1),
            Column(words("column.quality")),
        ],
    )
    for reading in readings:
        state, reason = reading.state
        style = "bold red" if state in TROUBLE else ""
        device = reading.device.machine.name if reading.device.machine and reading.device.machine.name else ""
        label = reading.device.id if not device else f"{reading.device.id} {device}"
        if reading.device.machine is None:
            label = words("run_once.meter", device=reading.device.id)
        for index, sample in enumerate(reading.samples):
            table.add_row(
                label,
                reading.device.connection,
                Text(words.state(state) if state else "", style=style),
                _reason(reason, words),
                sample.tag,
                _value_text(sample),
                reading.device.profile.spec.unit_of(sample.tag),
                Text(
                    words(f"quality.{sample.quality.value}"),
                    style="" if sample.quality is Quality.GOOD else "red",
                ),
                end_section=index == len(reading.samples) - 1,
            )
    return table


def _reason(reason: str | None, words: Catalogue) -> str:
    if reason is None:
        return ""
    return words(reason) if reason in (NO_ANSWER, NO_RULE) else reason


def _problem(reading: DeviceReading, words: Catalogue) -> str:
    if reading.why_not_connected is not None:
        return words("run_once.connect_failed", reason=reading.why_not_connected)
    if reading.status is None:
        return words("run_once.no_status")
    return reading.status.error or (words("run_once.no_answer") if not reading.status.connected else "")


def report(readings: list[DeviceReading], console: Console, words: Catalogue) -> bool:
    """Print the table and a summary; True when every device answered every read."""
    print_table(console, readings_table(readings, words))
    failed = [r for r in readings if not r.answered]
    console.print(
        words("run_once.answered", answered=len(readings) - len(failed), total=len(readings)), highlight=False
    )
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for reading in failed:
        key = (reading.device.connection, reading.endpoint, _problem(reading, words))
        grouped.setdefault(key, []).append(reading.device.id)
    for (connection, endpoint, problem), devices in grouped.items():
        console.print(
            f"  {connection} ({endpoint}) {', '.join(devices)}: {problem}", style="red", highlight=False
        )
    return not failed
