"""The daemon's structure: outbox and outputs first, then the KPI engine, then one poll task per
connection; stopping goes the other way round.

Two task groups: the outputs' drain tasks outlive the inputs. On a stop request the poll tasks
and the engine are cancelled, what was already read becomes records (and the shift so far is
published), the outputs get FLUSH_TIMEOUT_S to deliver, then everything closes in reverse order.
Records are committed to the outbox before any output sees them; while the disk is full they
wait in memory (bounded, drops counted) and are written when space frees.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.loader import AgentConfig
from agent.delivery import SinkDelivery
from agent.drivers.base import Clock, Driver, ReadResult
from agent.drivers.modbus import ModbusDriver
from agent.engine_setup import build_engine_setup
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.outbox import AsyncOutbox, Outbox, OutboxFullError
from agent.records import Record, RecordKind
from agent.samples import DeviceStatus
from agent.sinks.registry import Output

log = logging.getLogger(__name__)

QUEUE_BATCHES = 256  # poll results waiting for the engine; beyond this, polling waits
FLUSH_TIMEOUT_S = 5.0
MEMORY_RECORDS = 100_000  # records kept in memory while the disk is full
FULL_LOG_EVERY_S = 60.0


@dataclass
class ConnectionHealth:
    name: str
    endpoint: str
    interval_s: float
    cycles: int = 0
    missed_cycles: int = 0
    requests: int = 0
    last_cycle_s: float = 0.0
    errors: int = 0
    devices: dict[str, DeviceStatus] = field(default_factory=dict)
    last_good: dict[str, float] = field(default_factory=dict)


@dataclass
class StorageHealth:
    stored: int = 0
    waiting_in_memory: int = 0
    dropped_in_memory: Counter[str] = field(default_factory=Counter)
    disk_full: bool = False
    problems: list[str] = field(default_factory=list)


class _StopRequestedError(Exception):
    pass


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        *,
        clock: Clock,
        outputs: Sequence[Output] = (),
        engine_setup: EngineSetup | None = None,
        poll_interval_s: float | None = None,
        outbox: Outbox | None = None,
    ) -> None:
        self.config = config
        self.agent_id = config.workshop.agent.id
        self.clock = clock
        self.outputs = list(outputs)
        self.setup = engine_setup or build_engine_setup(config)
        self.engine = KpiEngine(self.setup, clock())
        self.poll_interval_s = poll_interval_s
        self.outbox = outbox or default_outbox(config)
        self.health: dict[str, ConnectionHealth] = {}
        self.storage = StorageHealth()
        self.deliveries: list[SinkDelivery] = []
        self._store: AsyncOutbox | None = None
        self._unstored: list[Record] = []
        self._last_full_log = 0.0
        self._next_agent_record = clock() + self.setup.publish_interval_s
        self._queue: asyncio.Queue[ReadResult] = asyncio.Queue(QUEUE_BATCHES)

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            self._store = await stack.enter_async_context(AsyncOutbox(self.outbox))
            self.storage.problems = await self._store.call(self.outbox.open)
            await self._store.call(self.outbox.register, [o.sink.name for o in self.outputs])
            for output in self.outputs:
                await stack.enter_async_context(output.sink)
                self.deliveries.append(
                    SinkDelivery(
                        output.sink,
                        self._store,
                        self.agent_id,
                        batch_size=output.batch_size,
                        replay_per_s=output.replay_per_s,
                        retry_max_s=output.retry_max_s,
                    )
                )
            drivers = []
            for connection in self.config.workshop.connections:
                driver = ModbusDriver(connection, self.config.devices_on(connection), self.clock)
                drivers.append(await stack.enter_async_context(driver))
                self.health[driver.name] = ConnectionHealth(
                    driver.name, driver.endpoint, self.poll_interval_s or driver.interval_s
                )
            async with asyncio.TaskGroup() as outputs:
                drains = [
                    outputs.create_task(d.run(), name=f"agent[{d.sink.name}].drain") for d in self.deliveries
                ]
                try:
                    async with asyncio.TaskGroup() as inputs:
                        inputs.create_task(self._process(), name="agent[kpi].process")
                        for driver in drivers:
                            inputs.create_task(self._poll(driver), name=f"agent[{driver.name}].poll")
                        inputs.create_task(self._wait_for(stop), name="agent.stop")
                except* _StopRequestedError:
                    log.info("event=stopping")
                await self._drain()
                await self._flush()
                for task in drains:
                    task.cancel()
            if self._unstored:
                log.error(
                    "event=records_lost_at_exit count=%d reason='outbox full until the end'",
                    len(self._unstored),
                )

    @staticmethod
    async def _wait_for(stop: asyncio.Event) -> None:
        await stop.wait()
        raise _StopRequestedError

    async def _poll(self, driver: Driver) -> None:
        """Fixed-rate polling: a late cycle does not shift the schedule; skipped ticks are counted."""
        health = self.health[driver.name]
        interval = health.interval_s
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        assert me is not None
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            result = await driver.read()
            if me.cancelling():
                # pymodbus awaits replies with asyncio.wait_for, which on Python 3.11 can swallow a
                # cancellation that races a reply (fixed in 3.12). Honour it here, or a stop would
                # leave this task blocked on a full queue that nobody drains any more.
                raise asyncio.CancelledError
            health.last_cycle_s = time.perf_counter() - started
            health.cycles += 1
            health.requests += result.requests
            for status in result.statuses:
                health.devices[status.device] = status
                if status.connected and status.error is None:
                    health.last_good[status.device] = status.ts
                elif status.error is not None:
                    health.errors += 1
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
            now = self.clock()
            records += self.engine.advance(now)
            if now >= self._next_agent_record:
                self._next_agent_record = now + self.setup.publish_interval_s
                records.append(self.agent_record(now))
            await self._commit(records)

    async def _drain(self) -> None:
        """Turn what was read before the stop into records, publish the shift so far, commit."""
        records: list[Record] = []
        while not self._queue.empty():
            records += self.engine.ingest(self._queue.get_nowait().samples)
        records += self.engine.publish_current(self.clock())
        records.append(self.agent_record(self.clock()))
        await self._commit(records)

    async def _flush(self) -> None:
        """Give connected outputs a bounded time to deliver what is committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_TIMEOUT_S
        for delivery in self.deliveries:
            delivery.wake.set()
        while loop.time() < deadline:
            for delivery in self.deliveries:
                await delivery.refresh_backlog()
            if all(d.stats.backlog_records == 0 or not d.stats.connected for d in self.deliveries):
                return
            await asyncio.sleep(0.05)

    async def _commit(self, records: list[Record]) -> None:
        """Commit, even if the caller is cancelled meanwhile (a stop): the outbox thread finishes a
        commit regardless, and its bookkeeping must follow, or records held in memory during a full
        disk would be written a second time."""
        commit = asyncio.ensure_future(self._commit_now(records))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await commit
            raise

    async def _commit_now(self, records: list[Record]) -> None:
        if not records and not self._unstored:
            return
        assert self._store is not None
        batch = self._unstored + records
        try:
            envelopes = await self._store.call(self.outbox.append, self.agent_id, batch, self.clock())
        except OutboxFullError as error:
            self._hold_in_memory(batch, str(error))
            return
        if self.storage.disk_full:
            log.warning("event=outbox_writable_again stored_from_memory=%d", len(self._unstored))
        self._unstored = []
        self.storage.disk_full = False
        self.storage.waiting_in_memory = 0
        self.storage.stored += len(envelopes)
        for delivery in self.deliveries:
            delivery.wake.set()

    def _hold_in_memory(self, batch: list[Record], error: str) -> None:
        overflow = len(batch) - MEMORY_RECORDS
        if overflow > 0:
            # raw tag records go first, as on disk
            ordered = sorted(range(len(batch)), key=lambda i: (batch[i].kind is not RecordKind.TAGS, i))
            dropped = set(ordered[:overflow])
            self.storage.dropped_in_memory.update(batch[i].kind.value for i in dropped)
            batch = [r for i, r in enumerate(batch) if i not in dropped]
        self._unstored = batch
        self.storage.disk_full = True
        self.storage.waiting_in_memory = len(batch)
        now = time.monotonic()
        if now - self._last_full_log >= FULL_LOG_EVERY_S:
            self._last_full_log = now
            log.error("event=outbox_full error=%r waiting_in_memory=%d", error, len(batch))

    def agent_record(self, now: float) -> Record:
        """The agent's own figures, delivered like any record (MQTT `_agent/<id>/delivery`)."""
        connections = {
            name: {
                "cycles": h.cycles,
                "missed_cycles": h.missed_cycles,
                "requests": h.requests,
                "devices_up": sum(1 for s in h.devices.values() if s.connected),
                "devices": len(h.devices),
            }
            for name, h in self.health.items()
        }
        return Record(
            RecordKind.AGENT,
            now,
            {
                "sinks": [d.stats.as_fields(now) for d in self.deliveries],
                "connections": connections,
                "outbox_disk_full": self.storage.disk_full,
                "waiting_in_memory": self.storage.waiting_in_memory,
                "dropped_in_memory": dict(self.storage.dropped_in_memory),
            },
        )


def default_outbox(config: AgentConfig) -> Outbox:
    section = config.workshop.outbox
    path = Path(section.path) if section.path else Path(config.workshop.agent.state_dir) / "outbox.db"
    return Outbox(
        path,
        max_bytes=int(section.max_mb * 2**20),
        max_age_s=section.max_age_h * 3600.0,
        synchronous=section.synchronous,
    )
