"""`edge-agent demo`: the bundled workshop simulated and monitored in one process, faster than life."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import urllib.parse
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from rich.console import Console
from rich.live import Live

from agent.clock import ScaledClock
from agent.config.loader import AgentConfig
from agent.config.workshop import Connection, ModbusRtuConnection, OpcUaConnection
from agent.engine_setup import build_engine_setup
from agent.outbox import Outbox
from agent.records import Envelope, Record
from agent.runtime import Agent
from agent.sim.server import OpcUaSimulation, WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.registry import Output
from agent.view import live_view, shift_summary

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "grinding-workshop.yaml"
REFRESH_S = 0.5


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def on_free_ports(config: AgentConfig) -> AgentConfig:
    """The same workshop with every connection moved to a free loopback port."""
    connections = tuple(_on_free_port(c) for c in config.workshop.connections)
    workshop = config.workshop.model_copy(update={"connections": connections})
    return AgentConfig(workshop, config.profiles, config.source)


def _on_free_port(connection: Connection) -> Connection:
    if isinstance(connection, ModbusRtuConnection):
        return connection
    if isinstance(connection, OpcUaConnection):
        path = urllib.parse.urlsplit(connection.url).path
        return connection.model_copy(update={"url": f"opc.tcp://127.0.0.1:{free_port()}{path}"})
    return connection.model_copy(update={"host": "127.0.0.1", "port": free_port()})


@dataclass
class RecordTap:
    """Keeps the final records of closing shifts for the summary table."""

    name: str = "tap"
    closed: list[list[Record]] = field(default_factory=list)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def write(self, batch: Sequence[Envelope]) -> None:
        finals = [e.record for e in batch if e.record.fields.get("final")]
        if finals:
            self.closed.append(finals)


@dataclass(frozen=True)
class DemoOptions:
    speed: float = 120.0
    duration_s: float = 0.0  # 0: until Ctrl-C
    start: str = "07:20"  # local shop-floor time the simulation starts at
    poll_s: float = 0.25
    records: str | None = "var/demo/records.jsonl"
    outbox: str = "var/demo/outbox.db"
    seed: int = 7


def reset_demo_state(options: DemoOptions) -> None:
    """Each demo run starts with an empty outbox: the demo is a story from its first record."""
    outbox = Path(options.outbox)
    for leftover in outbox.parent.glob(f"{outbox.name}*"):
        leftover.unlink()


def demo_start(config: AgentConfig, hhmm: str) -> float:
    zone = zoneinfo.ZoneInfo(config.workshop.site.timezone)
    today = dt.datetime.now(zone).date()
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return dt.datetime(today.year, today.month, today.day, hours, minutes, tzinfo=zone).timestamp()


async def run_demo(config: AgentConfig, options: DemoOptions, console: Console, stop: asyncio.Event) -> Agent:
    config = on_free_ports(config)
    clock = ScaledClock(demo_start(config, options.start), options.speed)
    # Shop-floor time runs `speed` times faster: a device is offline after four missed polls.
    setup = build_engine_setup(
        config,
        offline_after_s=max(config.workshop.kpi.offline_after_s, 4 * options.poll_s * options.speed),
        publish_interval_s=max(60.0, 900.0 * options.speed / 120.0),
    )
    tap = RecordTap()
    outputs = [Output(tap, 1000, 10_000.0)]
    if options.records:
        outputs.append(Output(FileSink(options.records, truncate=True), 1000, 10_000.0))
    outbox = Outbox(Path(options.outbox), max_bytes=64 * 2**20, synchronous="normal")
    agent = Agent(
        config,
        clock=clock,
        outputs=outputs,
        engine_setup=setup,
        poll_interval_s=options.poll_s,
        outbox=outbox,
    )
    timezone = config.workshop.site.timezone
    async with WorkshopSimulator(
        config, clock, seed=options.seed, opcua=OpcUaSimulation(trust_into_agent=True)
    ):
        agent_task = asyncio.create_task(agent.run(stop), name="demo.agent")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.duration_s if options.duration_s > 0 else None
        shown = 0
        with Live(
            live_view(agent, timezone, clock()),
            console=console,
            auto_refresh=False,
        ) as live:
            while not agent_task.done():
                if deadline is not None and loop.time() >= deadline:
                    stop.set()
                while shown < len(tap.closed):
                    summary = shift_summary(tap.closed[shown])
                    shown += 1
                    if summary is not None:
                        live.console.print(summary)
                live.update(live_view(agent, timezone, clock()), refresh=True)
                await asyncio.wait({agent_task}, timeout=REFRESH_S)
        await agent_task
    console.print(
        f"demo: {agent.storage.stored} records produced"
        + (f", written to {options.records}" if options.records else "")
    )
    return agent
