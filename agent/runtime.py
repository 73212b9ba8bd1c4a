"""The daemon's structure: sinks, then the KPI engine, then one poll task per connection.

Everything runs in one asyncio.TaskGroup with named tasks. A stop request cancels the group;
the exit stack then closes drivers before sinks, after the samples already read have been
turned into records and delivered.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

from agent.config.loader import AgentConfig
from agent.drivers.base import Clock, ReadResult
from agent.drivers.modbus import ModbusTcpDriver
from agent.engine_setup import build_engine_setup
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.records import Record
from agent.samples import DeviceStatus
from agent.sinks.base import Envelope, Sink

log = logging.getLogger(__name__)

QUEUE_BATCHES = 256  # poll results waiting for the engine; beyond this, polling waits


@dataclass
class ConnectionHealth:
    name: str
    endpoint: str
    interval_s: float
    cycles: int = 0
    missed_cycles: int = 0
    requests: int = 0
    last_cycle_s: float = 0.0
    devices: dict[str, DeviceStatus] = field(default_factory=dict)


class _StopRequestedError(Exception):
    pass


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock,
        sinks: Sequence[Sink] = (),
        engine_setup: EngineSetup | None = None,
        poll_interval_s: float | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.sinks = list(sinks)
        self.engine = KpiEngine(engine_setup or build_engine_setup(config), clock())
        self.poll_interval_s = poll_interval_s
        self.health: dict[str, ConnectionHealth] = {}
        self.delivered = 0
        self._seq = 0
        self._queue: asyncio.Queue[ReadResult] = asyncio.Queue(QUEUE_BATCHES)

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            for sink in self.sinks:
                await stack.enter_async_context(sink)
            drivers = []
            for connection in self.config.workshop.connections:
                driver = ModbusTcpDriver(connection, self.config.devices_on(connection), self.clock)
                drivers.append(await stack.enter_async_context(driver))
                self.health[driver.name] = ConnectionHealth(
                    driver.name, driver.endpoint, self.poll_interval_s or driver.interval_s
                )
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(self._process(), name="agent[kpi].process")
                    for driver in drivers:
                        group.create_task(self._poll(driver), name=f"agent[{driver.name}].poll")
                    group.create_task(self._wait_for(stop), name="agent.stop")
            except* _StopRequestedError:
                log.info("event=stopping")
            await self._drain()

    @staticmethod
    async def _wait_for(stop: asyncio.Event) -> None:
        await stop.wait()
        raise _StopRequestedError

    async def _poll(self, driver: ModbusTcpDriver) -> None:
        """Fixed-rate polling: a late cycle does not shift the schedule; skipped ticks are counted."""
        health = self.health[driver.name]
        interval = health.interval_s
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            result = await driver.read()
            health.last_cycle_s = time.perf_counter() - started
            health.cycles += 1
            health.requests += result.requests
            for status in result.statuses:
                health.devices[status.device] = status
            await self._queue.put(result)
            next_tick += interval
            now = loop.time()
            if now > next_tick:
                missed = int((now - next_tick) // interval) + 1
                health.missed_cycles += missed
                next_tick += missed * interval
            await asyncio.sleep(next_tick - now)

    async def _process(self) -> None:
        while True:
            try:
                async with asyncio.timeout(1.0):
                    result = await self._queue.get()
            except TimeoutError:
                result = None
            records = self.engine.ingest(result.samples) if result else []
            records += self.engine.advance(self.clock())
            await self._deliver(records)

    async def _drain(self) -> None:
        """Turn what was read before the stop into records, publish the shift so far, deliver."""
        records: list[Record] = []
        while not self._queue.empty():
            records += self.engine.ingest(self._queue.get_nowait().samples)
        records += self.engine.publish_current(self.clock())
        await self._deliver(records)

    async def _deliver(self, records: list[Record]) -> None:
        if not records:
            return
        batch = []
        for record in records:
            self._seq += 1
            batch.append(Envelope(self.config.workshop.agent.id, self._seq, record))
        for sink in self.sinks:
            await sink.write(batch)
        self.delivered += len(batch)
