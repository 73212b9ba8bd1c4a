"""The daemon's structure: outbox and outputs first, then the KPI engine, then one poll task per
connection; stopping goes the other way round.

Two task groups: the outputs' drain tasks outlive the inputs. On a stop request the poll tasks
and the engine are cancelled, what was already read becomes records (and the shift so far is
published), the outputs get FLUSH_TIMEOUT_S to deliver, then everything closes in reverse order.
Records are committed to the outbox before any output sees them; while the disk is full they
wait in memory (bounded, drops counted) and are written when space frees. The KPI engine's
checkpoint rides in the same commits (see agent/runtime/continuity.py): at start the agent continues the
shift from it, and wall-clock steps are handed to the engine before the readings that follow them.

Every poll loop, the KPI loop and every delivery loop runs under agent/runtime/restarts.py: an unexpected
exception in one of them is logged with its traceback, turns the devices (or the output) concerned
bad with the reason, and the loop starts again after a backoff while the others go on. Values the
KPI engine cannot take are refused per device, so one device's bad data never costs the others'
records; records made before a failure are committed with the next round, never dropped.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

from agent.clock import SteadyClock
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.delivery.drain import SinkDelivery
from agent.delivery.outbox import AsyncOutbox, Checkpoint, Outbox, OutboxUnwritableError
from agent.drivers.base import Clock, Driver, ReadResult
from agent.drivers.registry import build_driver
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.kpi.rules import RULE_ERROR_REASON
from agent.records import Envelope, Record, RecordKind
from agent.runtime.calibration import CalibrationReminder
from agent.runtime.continuity import Checkpointer, apply_clock_step, start_engine
from agent.runtime.restarts import LoopHealth, describe, keep_running
from agent.samples import DeviceStatus, Sample
from agent.sinks.registry import Output
from agent.throttle import EventThrottle

log = logging.getLogger(__name__)

QUEUE_BATCHES = 256  # poll results waiting for the engine; beyond this, polling waits
FLUSH_TIMEOUT_S = 5.0
MEMORY_RECORDS = 100_000  # records kept in memory while the disk is full
FULL_LOG_EVERY_S = 60.0
# Sections a reload cannot apply while running: the outbox, its owner id and the outputs'
# connections and cursors stay as they started until the next restart.
RESTART_SECTIONS = ("agent", "outbox", "outputs", "health")
DEVICE_DOWN_LOG_EVERY_S = 900.0
ADVANCE_EVERY_S = 0.25
PROCESS_LOOP = "kpi:process"  # not a valid connection id, so never one of them


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
    unwritable: bool = False
    unwritable_reason: str | None = None
    problems: list[str] = field(default_factory=list)
    # records the outbox refused on their own (a value JSON cannot carry): counted, never retried forever
    refused: Counter[str] = field(default_factory=Counter)
    salvaged: int = 0  # records carried over from a corrupt outbox at start
    lost_to_corruption: int = 0  # and the sequence numbers that could not be read back


class _StopRequestedError(Exception):
    pass


class _ReloadRequestedError(Exception):
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
        self.checkpoints = Checkpointer(self.agent_id, config.workshop.kpi.checkpoint_s)
        self._take_steps = clock.take_steps if isinstance(clock, SteadyClock) else None
        self._next_agent_record = time.monotonic() + self.setup.publish_interval_s
        self._queue: asyncio.Queue[ReadResult] = asyncio.Queue(QUEUE_BATCHES)
        self._reload = asyncio.Event()
        self._pending_config: AgentConfig | None = None
        self.reloads = 0
        self.rounds = 0  # of the KPI processing loop
        self._advanced = 0.0
        self._device_log = EventThrottle(DEVICE_DOWN_LOG_EVERY_S)
        # When each loop last went round (monotonic): the systemd watchdog is fed only while all do.
        self.progress: dict[str, float] = {}
        self.loops: dict[str, LoopHealth] = {}  # restarts and last failure of every supervised loop
        self._connection_of: dict[str, str] = {}  # device -> its connection
        self._devices_on: dict[str, list[str]] = {}  # connection -> its devices
        # Devices whose values the KPI engine refused, with the reason; cleared by the next success.
        self._kpi_errors: dict[str, str] = {}
        self._carried: list[Record] = []  # made by a KPI round that failed before its commit
        self.calibration = CalibrationReminder()  # meters overdue for calibration, warned daily

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            self._store = await stack.enter_async_context(AsyncOutbox(self.outbox))
            self.storage.problems = await self._store.call(self.outbox.open)
            if self.outbox.salvage is not None:
                self.storage.salvaged = self.outbox.salvage.records
                self.storage.lost_to_corruption = self.outbox.salvage.lost
            await self._store.call(self.outbox.register, [o.sink.name for o in self.outputs])
            started = await start_engine(self._store, self.outbox, self.agent_id, self.setup, self.clock())
            self.engine = started.engine
            await self._commit(started.records, checkpoint=True)
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
                        accept_loss=output.accept_loss,
                    )
                )
                if output.accept_loss:
                    log.warning(
                        "sink=%s event=accept_loss detail='QoS 0: a record counts as delivered once "
                        "written to the socket; records in flight when the connection breaks are lost'",
                        output.sink.name,
                    )
            async with asyncio.TaskGroup() as outputs:
                drains = [
                    outputs.create_task(
                        keep_running(
                            d.run,
                            self._loop_health(f"deliver:{d.sink.name}"),
                            on_crash=functools.partial(_delivery_crashed, d),
                            wall_clock=self.clock,
                        ),
                        name=f"agent[{d.sink.name}].drain",
                    )
                    for d in self.deliveries
                ]
                while await self._run_inputs(stop):
                    try:
                        await self._apply_reload()
                    except Exception:
                        log.exception("event=config_reload_failed detail='the running configuration stays'")
                        self.reloads += 1  # the reload is over all the same (systemd: READY=1)
                await self._drain()
                await self._flush()
                for task in drains:
                    task.cancel()
            if self._unstored:
                log.error(
                    "event=records_lost_at_exit count=%d reason='outbox full until the end'",
                    len(self._unstored),
                )

    def request_reload(self, config: AgentConfig) -> None:
        """Apply a new, already validated configuration at the next opportunity (SIGHUP)."""
        self._pending_config = config
        self._reload.set()

    async def _run_inputs(self, stop: asyncio.Event) -> bool:
        """Poll until a stop (returns False) or a reload request (returns True); drivers closed."""
        reload_requested = False
        async with AsyncExitStack() as stack:
            drivers = []
            health = {}
            self._connection_of, self._devices_on = {}, {}
            for connection in self.config.workshop.connections:
                devices = self.config.devices_on(connection)
                self._devices_on[connection.id] = [d.id for d in devices]
                self._connection_of.update((d.id, connection.id) for d in devices)
                driver = await stack.enter_async_context(
                    build_driver(connection, devices, self.clock, self.config.workshop.agent)
                )
                drivers.append(driver)
                kept = self.health.get(driver.name)
                interval = self.poll_interval_s or driver.interval_s
                if kept is not None and (kept.endpoint, kept.interval_s) == (driver.endpoint, interval):
                    health[driver.name] = kept
                else:
                    health[driver.name] = ConnectionHealth(driver.name, driver.endpoint, interval)
            self.health = health
            self.progress = dict.fromkeys([PROCESS_LOOP, *health], time.monotonic())
            try:
                async with asyncio.TaskGroup() as inputs:
                    inputs.create_task(
                        keep_running(
                            self._process,
                            self._loop_health(PROCESS_LOOP),
                            wall_clock=self.clock,
                        ),
                        name="agent[kpi].process",
                    )
                    for driver in drivers:
                        inputs.create_task(
                            keep_running(
                                functools.partial(self._poll, driver),
                                self._loop_health(f"poll:{driver.name}"),
                                on_crash=functools.partial(self._poll_crashed, driver.name),
                                wall_clock=self.clock,
                            ),
                            name=f"agent[{driver.name}].poll",
                        )
                    inputs.create_task(self._wait_for(stop, _StopRequestedError), name="agent.stop")
                    inputs.create_task(
                        self._wait_for(self._reload, _ReloadRequestedError), name="agent.reload"
                    )
            except* _StopRequestedError:
                log.info("event=stopping")
            except* _ReloadRequestedError:
                reload_requested = True
        return reload_requested and not stop.is_set()

    async def _apply_reload(self) -> None:
        self._reload.clear()
        config, self._pending_config = self._pending_config, None
        if config is None:
            return
        setup = build_engine_setup(config)
        now = self.clock()
        records = self._carried  # the same list: what is made here survives a failure below
        records += self._clock_steps()
        while not self._queue.empty():
            records += self._ingest(self._queue.get_nowait())
        records += self.engine.reconfigure(setup, now)
        self._carried = []
        needs_restart = [
            section
            for section in RESTART_SECTIONS
            if getattr(config.workshop, section) != getattr(self.config.workshop, section)
        ]
        self.config, self.setup = config, setup
        self.checkpoints.interval_s = config.workshop.kpi.checkpoint_s
        await self._commit(records, checkpoint=True)
        self.reloads += 1
        w = config.workshop
        log.info(
            "event=config_reloaded version=%s machines=%d meters=%d connections=%d",
            config.version,
            len(w.machines),
            len(w.meters),
            len(w.connections),
        )
        if needs_restart:
            log.warning(
                "event=config_reload_partial restart_needed_for=%s "
                "detail='these sections apply at the next restart; the running ones stay'",
                ",".join(needs_restart),
            )

    @staticmethod
    async def _wait_for(event: asyncio.Event, signal: type[Exception]) -> None:
        await event.wait()
        raise signal

    async def _poll(self, driver: Driver) -> None:
        """Fixed-rate polling: a late cycle does not shift the schedule; skipped ticks are counted."""
        health = self.health[driver.name]
        interval = health.interval_s
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            result = await driver.read()
            if me is not None and me.cancelling():
                # pymodbus awaits replies with asyncio.wait_for, which on Python 3.11 can swallow a
                # cancellation that races a reply (fixed in 3.12). Honour it here, or a stop would
                # leave this task blocked on a full queue that nobody drains any more.
                raise asyncio.CancelledError
            health.last_cycle_s = time.perf_counter() - started
            health.cycles += 1
            self.progress[driver.name] = time.monotonic()
            health.requests += result.requests
            for reported in result.statuses:
                status = self._with_kpi_error(reported)
                self._log_device_change(health, health.devices.get(status.device), status)
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

    def _log_device_change(
        self, health: ConnectionHealth, before: DeviceStatus | None, now: DeviceStatus
    ) -> None:
        """A device going down or coming back is logged once; a device that stays down, every
        DEVICE_DOWN_LOG_EVERY_S; an unchanged good device, never."""
        device = now.device
        if now.error is None:
            if before is not None and before.error is not None:
                down_for = now.ts - health.last_good.get(device, now.ts)
                log.info(
                    "device=%s connection=%s event=device_back down_s=%.0f", device, health.name, down_for
                )
                self._device_log.reset(device)
            return
        held = self._device_log.allow(device)
        if held is None:
            return
        changed = before is None or before.error != now.error
        log.warning(
            "device=%s connection=%s event=%s error=%r repeats=%d",
            device,
            health.name,
            "device_error" if changed else "device_still_failing",
            now.error,
            held,
        )

    async def _process(self) -> None:
        while True:
            try:
                async with asyncio.timeout(1.0):
                    result = await self._queue.get()
            except TimeoutError:
                result = None
            # Records made so far this round are held in self._carried until committed: a failure
            # later in the round (the engine's advance, the commit) restarts the loop, and the next
            # round commits them first.
            now = self.clock()  # before the steps are taken: a step it finds is handled first
            for overdue in self.calibration.due(self.setup, now):
                log.warning(overdue.log_fields())
            records = self._carried
            records += self._clock_steps()
            if result is not None:
                records += self._ingest(result)
            # Advancing accounts time for every machine; with many connections results arrive
            # many times a second, and once per ADVANCE_EVERY_S is precise enough for offline
            # detection and publication. Scheduled by the monotonic clock, as a step would stall it.
            steady = time.monotonic()
            if result is None or steady - self._advanced >= ADVANCE_EVERY_S:
                self._advanced = steady
                records += self.engine.advance(now)
            if steady >= self._next_agent_record:
                self._next_agent_record = steady + self.setup.publish_interval_s
                records.append(self.agent_record(now))
            self._carried = []
            await self._commit(records)
            self.progress[PROCESS_LOOP] = time.monotonic()
            self.rounds += 1

    def _ingest(self, result: ReadResult) -> list[Record]:
        """The engine takes each device's samples on its own: values it cannot process turn that
        device bad (logged once, with the traceback) and cost no other device its records."""
        by_device: dict[str, list[Sample]] = {}
        for sample in result.samples:
            by_device.setdefault(sample.device, []).append(sample)
        records: list[Record] = []
        for device, samples in by_device.items():
            try:
                made = self.engine.ingest(samples)
            except Exception as error:  # noqa: BLE001 - one device's values never stop the engine
                self._kpi_refused(device, error)
                continue
            records += made
            for record in made:
                reason = record.fields.get("reason") if record.kind is RecordKind.STATE else None
                if isinstance(reason, str) and reason.startswith(RULE_ERROR_REASON):
                    # a state record is made on a change only: this logs each failure once
                    log.warning("machine=%s event=rule_error state=unknown detail=%r", device, reason)
            if self._kpi_errors.pop(device, None) is not None:
                log.info("device=%s event=kpi_values_accepted_again", device)
        return records

    def _kpi_refused(self, device: str, error: Exception) -> None:
        reason = f"KPI engine refused its values: {describe(error)}"
        if self._kpi_errors.get(device) != reason:
            log.error("device=%s event=kpi_values_refused error=%r", device, describe(error), exc_info=error)
        self._kpi_errors[device] = reason
        self._set_status(device, connected=True, error=reason)

    def _with_kpi_error(self, status: DeviceStatus) -> DeviceStatus:
        """A device whose values the engine refuses is not well, however well it answers."""
        reason = self._kpi_errors.get(status.device)
        if reason is None or status.error is not None:
            return status
        return DeviceStatus(status.device, status.connected, status.ts, reason)

    def _set_status(self, device: str, *, connected: bool, error: str) -> None:
        health = self.health.get(self._connection_of.get(device, ""))
        if health is None:
            return
        status = DeviceStatus(device, connected, self.clock(), error)
        self._log_device_change(health, health.devices.get(device), status)
        health.devices[device] = status
        health.errors += 1

    def _poll_crashed(self, connection: str, error: Exception) -> None:
        """The poll loop of a connection failed: its devices are bad until it reads them again."""
        for device in self._devices_on.get(connection, []):
            self._set_status(device, connected=False, error=f"poll loop failed: {describe(error)}")

    def _loop_health(self, name: str) -> LoopHealth:
        return self.loops.setdefault(name, LoopHealth(name))

    async def _drain(self) -> None:
        """Turn what was read before the stop into records, publish the shift so far, commit
        with the checkpoint the next start continues from."""
        now = self.clock()
        records, self._carried = self._carried, []
        records += self._clock_steps()
        while not self._queue.empty():
            records += self._ingest(self._queue.get_nowait())
        records += self.engine.publish_current(now)
        records.append(self.agent_record(now))
        await self._commit(records, checkpoint=True)

    def _clock_steps(self) -> list[Record]:
        """Wall-clock steps found since the last round, handed to the engine (and logged) before
        any reading stamped after them is ingested."""
        records: list[Record] = []
        for step in self._take_steps() if self._take_steps else ():
            started = apply_clock_step(self.engine, step, self.setup)
            self.engine = started.engine
            records += started.records
        return records

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

    async def _commit(self, records: list[Record], *, checkpoint: bool = False) -> None:
        """Commit, even if the caller is cancelled meanwhile (a stop): the outbox thread finishes a
        commit regardless, and its bookkeeping must follow, or records held in memory during a full
        disk would be written a second time.

        The engine's checkpoint goes with them when asked, when due, or when they hold a final
        record; it is taken here, before any await, so it is the state that made these records."""
        state = None
        if checkpoint or self.checkpoints.due(records) or self.checkpoints.due(self._unstored):
            state = self.checkpoints.take(self.engine)
        commit = asyncio.ensure_future(self._commit_now(records, state))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await commit
            raise

    async def _commit_now(self, records: list[Record], state: Checkpoint | None) -> None:
        if not records and not self._unstored and state is None:
            return
        store = self._store
        batch = self._unstored + records
        if store is None:  # not open (yet, or any more): records wait in memory as on a full disk
            self._hold_in_memory(batch, f"outbox {self.outbox.path} is not open")
            return
        try:
            envelopes = await store.call(self.outbox.append, self.agent_id, batch, self.clock(), state)
        except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
            self._hold_in_memory(batch, str(error))
            return
        except Exception:  # noqa: BLE001 - a record the outbox cannot take; the others must go in
            each = await self._commit_each(store, batch, state)
            if each is None:
                return
            envelopes = each
        if self.storage.unwritable:
            log.warning("event=outbox_writable_again stored_from_memory=%d", len(self._unstored))
        self._unstored = []
        self.storage.unwritable = False
        self.storage.unwritable_reason = None
        self.storage.waiting_in_memory = 0
        self.storage.stored += len(envelopes)
        for delivery in self.deliveries:
            delivery.wake.set()

    async def _commit_each(
        self, store: AsyncOutbox, batch: list[Record], state: Checkpoint | None
    ) -> list[Envelope] | None:
        """Commit record by record: a record the outbox refuses on its own is logged and counted,
        the others are stored, then the checkpoint of the state that made them. None if storage
        itself failed meanwhile (the rest waits in memory, and the checkpoint goes with it later)."""
        envelopes: list[Envelope] = []
        for index, record in enumerate(batch):
            try:
                envelopes += await store.call(self.outbox.append, self.agent_id, [record], self.clock())
            except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
                self._hold_in_memory(batch[index:], str(error))
                return None
            except Exception as error:  # this record alone: refused, counted, logged with the traceback
                self.storage.refused[record.kind.value] += 1
                log.exception(
                    "event=record_refused kind=%s machine=%s error_type=%s refused=%d",
                    record.kind.value,
                    record.machine,
                    type(error).__name__,
                    sum(self.storage.refused.values()),
                )
        if state is not None:
            try:
                await store.call(self.outbox.append, self.agent_id, [], self.clock(), state)
            except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
                # the records are stored; the next checkpoint that is due carries the state
                log.warning("event=checkpoint_not_stored error=%r", describe(error))
        return envelopes

    def _hold_in_memory(self, batch: list[Record], error: str) -> None:
        overflow = len(batch) - MEMORY_RECORDS
        if overflow > 0:
            # raw tag records go first, as on disk
            ordered = sorted(range(len(batch)), key=lambda i: (batch[i].kind is not RecordKind.TAGS, i))
            dropped = set(ordered[:overflow])
            self.storage.dropped_in_memory.update(batch[i].kind.value for i in dropped)
            batch = [r for i, r in enumerate(batch) if i not in dropped]
        self._unstored = batch
        self.storage.unwritable = True
        self.storage.unwritable_reason = error
        self.storage.waiting_in_memory = len(batch)
        now = time.monotonic()
        if now - self._last_full_log >= FULL_LOG_EVERY_S:
            self._last_full_log = now
            log.error("event=outbox_unwritable error=%r waiting_in_memory=%d", error, len(batch))

    @property
    def working(self) -> bool:
        """Every connection has been polled once and the results processed: what READY=1 means."""
        return self.rounds > 0 and all(h.cycles > 0 for h in self.health.values())

    def stalled(self, limit_s: float) -> list[str]:
        """The loops that have not gone round within limit_s (a poll loop: within 3 intervals, if longer)."""
        now = time.monotonic()
        late = []
        for name, last in self.progress.items():
            health = self.health.get(name)
            allowed = max(limit_s, 3 * health.interval_s) if health is not None else limit_s
            if now - last > allowed:
                late.append(name)
        return late

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
                "outbox_unwritable": self.storage.unwritable,
                "waiting_in_memory": self.storage.waiting_in_memory,
                "dropped_in_memory": dict(self.storage.dropped_in_memory),
                "refused": dict(self.storage.refused),
                "loop_restarts": {name: h.restarts for name, h in self.loops.items() if h.restarts},
            },
        )


def _delivery_crashed(delivery: SinkDelivery, error: Exception) -> None:
    """The drain loop of an output failed: the output shows as down, with the reason, until it
    delivers again. Its cursor did not move, so nothing is lost."""
    delivery.stats.connected = False
    delivery.stats.failures += 1
    delivery.stats.last_error = f"delivery loop failed: {describe(error)}"


def default_outbox(config: AgentConfig) -> Outbox:
    section = config.workshop.outbox
    path = Path(section.path) if section.path else Path(config.workshop.agent.state_dir) / "outbox.db"
    return Outbox(
        path,
        max_bytes=int(section.max_mb * 2**20),
        max_age_s=section.max_age_h * 3600.0,
        synchronous=section.synchronous,
    )
