"""`edge-agent demo`: the bundled workshop simulated and monitored in one process, faster than life."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import socket
import zoneinfo
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from rich.console import Console
from rich.live import Live

from agent.clock import ScaledClock
from agent.commands.view import live_view, shift_summary
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.outputs import LOCAL_BATCH_RECORDS, LOCAL_REPLAY_PER_S
from agent.config.shipped import example
from agent.delivery.outbox import Outbox
from agent.i18n import catalogue
from agent.records import Envelope, Record
from agent.runtime.agent import HISTORY_FILE, Agent
from agent.service.health import HealthServer
from agent.sim.server import OpcUaSimulation, WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.registry import Output
from agent.terminal import print_table, table_width

REFRESH_S = 0.5


def demo_config(name: str = "grinding") -> Path:
    """A sample workshop shipped in the package: the demo runs from any install and folder."""
    return example(name)


def default_state_dir() -> Path:
    """Where the demo keeps its outbox, records and certificates: the user's state folder (XDG),
    never the working directory, which may be anything (/, a read-only checkout)."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "edge-agent" / "demo"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def on_free_ports(config: AgentConfig) -> AgentConfig:
    """The same workshop with every connection moved to a free loopback port."""
    connections = tuple(c.moved_to("127.0.0.1", free_port()) for c in config.workshop.connections)
    workshop = config.workshop.model_copy(update={"connections": connections})
    return AgentConfig(workshop, config.profiles, config.source)


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
    state_dir: Path = field(default_factory=default_state_dir)
    speed: float = 120.0
    duration_s: float = 0.0  # 0: until Ctrl-C
    start: str = "07:20"  # local shop-floor time the simulation starts at
    poll_s: float = 0.25
    records: Path | None = None  # default <state_dir>/records.jsonl
    write_records: bool = True
    seed: int = 7
    language: str | None = None  # default: the workshop's site.language
    board_port: int | None = None  # serve the board and reports on 127.0.0.1 at this port (0: any free)

    @property
    def outbox(self) -> Path:
        return self.state_dir / "outbox.db"

    @property
    def records_file(self) -> Path | None:
        if not self.write_records:
            return None
        return self.records or self.state_dir / "records.jsonl"


def reset_demo_state(options: DemoOptions) -> None:
    """Each demo run starts with an empty outbox and history: the demo is a story from its first
    record (and its shop-floor clock would age an old history by days).
    Raises OSError when the state folder cannot be made."""
    options.state_dir.mkdir(parents=True, exist_ok=True)
    for name in (options.outbox.name, HISTORY_FILE):
        for leftover in options.state_dir.glob(f"{name}*"):
            leftover.unlink()


def in_state_dir(config: AgentConfig, state_dir: Path) -> AgentConfig:
    """The workshop with its state (certificates, trust store) kept in the demo's folder."""
    agent = config.workshop.agent.model_copy(update={"state_dir": str(state_dir)})
    workshop = config.workshop.model_copy(update={"agent": agent})
    return AgentConfig(workshop, config.profiles, config.source)


def demo_start(config: AgentConfig, hhmm: str) -> float:
    zone = zoneinfo.ZoneInfo(config.workshop.site.timezone)
    today = dt.datetime.now(zone).date()
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return dt.datetime(today.year, today.month, today.day, hours, minutes, tzinfo=zone).timestamp()


async def run_demo(config: AgentConfig, options: DemoOptions, console: Console, stop: asyncio.Event) -> Agent:
    config = in_state_dir(on_free_ports(config), options.state_dir)
    clock = ScaledClock(demo_start(config, options.start), options.speed)
    # Shop-floor time runs `speed` times faster: a device is offline after four missed polls.
    setup = build_engine_setup(
        config,
        offline_after_s=max(config.workshop.kpi.offline_after_s, 4 * options.poll_s * options.speed),
        publish_interval_s=max(60.0, 900.0 * options.speed / 120.0),
    )
    tap = RecordTap()
    outputs = [Output(tap, LOCAL_BATCH_RECORDS, LOCAL_REPLAY_PER_S)]
    records = options.records_file
    if records is not None:
        outputs.append(Output(FileSink(str(records), truncate=True), LOCAL_BATCH_RECORDS, LOCAL_REPLAY_PER_S))
    outbox = Outbox(options.outbox, max_bytes=64 * 2**20, synchronous="normal")
    agent = Agent(
        config,
        clock=clock,
        outputs=outputs,
        engine_setup=setup,
        poll_interval_s=options.poll_s,
        outbox=outbox,
    )
    timezone = config.workshop.site.timezone
    words = catalogue(options.language or config.workshop.site.language)
    width = table_width(console)
    async with AsyncExitStack() as stack:
        await stack.enter_async_context(
            WorkshopSimulator(config, clock, seed=options.seed, opcua=OpcUaSimulation(trust_into_agent=True))
        )
        if options.board_port is not None:
            server = await stack.enter_async_context(HealthServer(agent, "127.0.0.1", options.board_port))
            base = f"http://127.0.0.1:{server.port}"
            console.print(words("demo.board", url=f"{base}/board", reports=f"{base}/reports"), soft_wrap=True)
        agent_task = asyncio.create_task(agent.run(stop), name="demo.agent")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.duration_s if options.duration_s > 0 else None
        shown = 0
        with Live(
            live_view(agent, timezone, clock(), words, width),
            console=console,
            auto_refresh=False,
        ) as live:
            while not agent_task.done():
                if deadline is not None and loop.time() >= deadline:
                    stop.set()
                while shown < len(tap.closed):
                    summary = shift_summary(tap.closed[shown], words, timezone)
                    shown += 1
                    if summary is not None:
                        print_table(live.console, summary)
                live.update(live_view(agent, timezone, clock(), words, width), refresh=True)
                await asyncio.wait({agent_task}, timeout=REFRESH_S)
        await agent_task
    console.print(
        words("demo.produced", count=agent.snapshot().storage.committed)
        + (words("demo.written", path=records) if records else ""),
        soft_wrap=True,  # a path to copy stays on one line
        highlight=False,
    )
    return agent
