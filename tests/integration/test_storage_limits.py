"""The outbox at its limits while the workshop runs: a full disk, and a size cap during an outage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.delivery.outbox import Outbox
from agent.records import Envelope
from agent.runtime.agent import Agent
from agent.sim.server import WorkshopSimulator
from agent.sinks.registry import Output

pytestmark = pytest.mark.integration


class GatedSink:
    """An output that fails until opened: a broker that is away. Counts what it acknowledged."""

    def __init__(self) -> None:
        self.name = "gated"
        self.open = False
        self.delivered: list[int] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def write(self, batch: Sequence[Envelope]) -> None:
        if not self.open:
            raise ConnectionError("away")
        self.delivered += [e.seq for e in batch]


def agent_with(config: AgentConfig, outbox: Outbox, sink: GatedSink) -> Agent:
    setup = build_engine_setup(config, publish_interval_s=0.3, offline_after_s=2.0)
    return Agent(
        config,
        clock=time.time,
        outputs=[Output(sink, 200, 100_000.0, 0.2)],
        engine_setup=setup,
        poll_interval_s=0.1,
        outbox=outbox,
    )


def accounted_s(agent: Agent) -> float:
    """All the time the engine has accounted for the first machine, whatever the bucket: the test
    may run in a planned break or outside shifts, where planned busy time does not grow."""
    totals = agent.engine.views()[0].totals
    return totals.pbt_s + totals.planned_stop_s + totals.no_shift_s + totals.offline_s


async def test_full_disk_degrades_keeps_polling_and_recovers(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    sink = GatedSink()
    outbox = Outbox(tmp_path / "outbox.db", max_pages=60)  # SQLite: "disk is full"
    agent = agent_with(sample_config, outbox, sink)
    stop = asyncio.Event()
    async with WorkshopSimulator(sample_config, time.time):
        task = asyncio.create_task(agent.run(stop))
        async with asyncio.timeout(30):
            while not agent.snapshot().storage.unwritable:  # noqa: ASYNC110 - observing the agent from outside
                await asyncio.sleep(0.1)
        cycles = agent.snapshot().connection("line1-gw").cycles
        before = accounted_s(agent)
        await asyncio.sleep(1.0)
        state = agent.snapshot()
        assert state.connection("line1-gw").cycles >= cycles + 8  # polling goes on while the disk is full
        assert state.storage.waiting_in_memory > 0  # KPI records are held, not lost
        assert accounted_s(agent) > before + 0.5  # the KPIs go on: time is accounted meanwhile
        sink.open = True  # deliveries free pages: space is back
        async with asyncio.timeout(30):
            while agent.snapshot().storage.unwritable:  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 30)
    state = agent.snapshot()
    assert state.storage.waiting_in_memory == 0
    assert sink.delivered == list(range(sink.delivered[0], sink.delivered[0] + len(sink.delivered)))
    assert len(sink.delivered) == state.storage.committed  # all that was held in memory got stored, then sent


async def test_tiny_cap_during_an_outage_drops_by_policy_and_counts_exactly(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    sink = GatedSink()
    outbox = Outbox(tmp_path / "outbox.db", max_bytes=40_000)
    agent = agent_with(sample_config, outbox, sink)
    stop = asyncio.Event()
    async with WorkshopSimulator(sample_config, time.time):
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(4.0)  # the output is away; the cap fills and overflows
        sink.open = True
        await asyncio.sleep(2.0)
        stop.set()
        await asyncio.wait_for(task, 30)
    fresh = Outbox(tmp_path / "outbox.db")
    fresh.open()
    stats = fresh.stats()
    fresh.close()
    dropped = sum(stats.dropped.values())
    assert dropped > 0
    assert set(stats.dropped) <= {
        "oee/size",
        "line_oee/size",
        "workshop_oee/size",
        "energy/size",
        "line_energy/size",
        "workshop_energy/size",
        "state/size",
        "agent/size",
    }
    assert dropped == agent.snapshot().storage.committed - len(
        sink.delivered
    )  # dropped = produced - delivered
    assert stats.records == 0
