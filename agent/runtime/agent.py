"""The agent's structure: the outbox and the outputs first, then the KPI loop, then one poller per
connection; stopping goes the other way round.

Two task groups: the outputs' delivery loops outlive the inputs. On a stop request the pollers and
the KPI loop are cancelled, what was already read becomes records (and the shift so far is
published), the outputs get FLUSH_TIMEOUT_S to deliver, then everything closes in reverse order.
A reload (SIGHUP) ends the inputs' group the same way and starts it again with the new
configuration, each machine keeping its shift so far.

The rooms: a ConnectionPoller per connection (agent/runtime/poller.py: its interval, device health,
failure and recovery logs, stall detection), the KpiLoop (agent/runtime/kpi_loop.py: poll results
into records), the RecordStore (agent/delivery/store.py: records committed with the engine's
checkpoint, held in memory while the disk is full), a SinkDelivery per output
(agent/delivery/drain.py). Every loop runs under agent/runtime/restarts.py: an unexpected exception
is logged with its traceback, turns the devices (or the output) concerned bad with the reason, and
the loop starts again after a backoff while the others go on. `snapshot()` is what every view of
the agent's health shows (agent/runtime/snapshot.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from agent.clock import SteadyClock
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.delivery.drain import SinkDelivery
from agent.delivery.outbox import Outbox
from agent.delivery.store import RecordStore
from agent.drivers.base import Clock
from agent.drivers.registry import build_driver
from agent.history.store import HistoryError, HistoryStore
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.records import Record, RecordKind
from agent.runtime.continuity import start_engine
from agent.runtime.kpi_loop import KpiLoop
from agent.runtime.poller import ConnectionPoller
from agent.runtime.restarts import LoopHealth, keep_running
from agent.runtime.snapshot import (
    AgentSnapshot,
    ConnectionSnapshot,
    LoopSnapshot,
    OutputSnapshot,
    StorageSnapshot,
)
from agent.sinks.base import Reconfigurable
from agent.sinks.registry import Output
from agent.throttle import DEVICE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

FLUSH_TIMEOUT_S = 5.0
FLUSH_CHECK_S = 0.05
# Sections a reload cannot apply while running: the outbox, its owner id and the outputs'
# connections and cursors stay as they started until the next restart.
RESTART_SECTIONS = ("agent", "outbox", "outputs", "health", "history")
PROCESS_LOOP = "kpi:process"  # not a valid connection id, so never one of them
HISTORY_FILE = "history.db"  # in agent.state_dir, unless history.path says otherwise


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
        self.poll_interval_s = poll_interval_s
        self.history = default_history(config, clock)
        self.store = RecordStore(
            outbox or default_outbox(config),
            self.agent_id,
            clock,
            config.workshop.kpi.checkpoint_s,
            on_commit=self._wake_deliveries,
            observe=self.history.add if self.history is not None else lambda _records: None,
        )
        setup = engine_setup or build_engine_setup(config)
        self.kpi = KpiLoop(
            KpiEngine(setup, clock()),
            self.store,
            clock,
            agent_record=self.agent_record,
            on_refused=self._refused,
            clock_steps=clock.take_steps if isinstance(clock, SteadyClock) else None,
        )
        self.pollers: dict[str, ConnectionPoller] = {}
        self.deliveries: list[SinkDelivery] = []
        self.loops: dict[str, LoopHealth] = {}  # restarts and last failure of every supervised loop
        self.reloads = 0
        self._reload = asyncio.Event()
        self._pending_config: AgentConfig | None = None
        self._device_log = EventThrottle(DEVICE_FAULT_LOG_EVERY_S)  # one for all pollers, across reloads

    @property
    def engine(self) -> KpiEngine:
        return self.kpi.engine

    async def run(self, stop: asyncio.Event) -> None:
        async with AsyncExitStack() as stack:
            if self.history is not None:
                try:
                    stack.enter_context(self.history)
                except HistoryError as error:  # the board and reports go without; the records do not
                    log.error("event=history_unavailable error=%r", str(error))  # noqa: TRY400 - no traceback
            store = await stack.enter_async_context(self.store)
            await store.open([o.sink.name for o in self.outputs])
            started = await start_engine(store.async_outbox, self.agent_id, self.kpi.setup, self.clock())
            self.kpi.engine = started.engine
            await store.commit(started.records, started.engine, checkpoint=True)
            for output in self.outputs:
                await stack.enter_async_context(output.sink)
                self.deliveries.append(
                    SinkDelivery(
                        output.sink,
                        store.async_outbox,
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
                    self._supervised(
                        outputs, f"deliver:{d.sink.name}", d.run, d.crashed, f"agent[{d.sink.name}].drain"
                    )
                    for d in self.deliveries
                ]
                while await self._run_inputs(stop):
                    try:
                        await self._apply_reload()
                    except Exception:
                        log.exception("event=config_reload_failed detail='the running configuration stays'")
                        self.reloads += 1  # the reload is over all the same (systemd: READY=1)
                await self.kpi.finish()
                await self._flush()
                for task in drains:
                    task.cancel()

    def request_reload(self, config: AgentConfig) -> None:
        """Apply a new, already validated configuration at the next opportunity (SIGHUP)."""
        self._pending_config = config
        self._reload.set()

    async def _run_inputs(self, stop: asyncio.Event) -> bool:
        """Poll until a stop (returns False) or a reload request (returns True); drivers closed."""
        reload_requested = False
        async with AsyncExitStack() as stack:
            pollers: dict[str, ConnectionPoller] = {}
            for connection in self.config.workshop.connections:
                devices = self.config.devices_on(connection)
                driver = await stack.enter_async_context(
                    build_driver(connection, devices, self.clock, self.config.workshop.agent)
                )
                kept = self.pollers.get(driver.name)
                pollers[driver.name] = ConnectionPoller(
                    driver,
                    [d.id for d in devices],
                    deliver=self.kpi.queue.put,
                    clock=self.clock,
                    interval_s=self.poll_interval_s,
                    refused=self.kpi.refused,
                    health=kept.health if kept is not None else None,
                    throttle=self._device_log,
                )
            self.pollers = pollers
            self.kpi.last_round = time.monotonic()
            try:
                async with asyncio.TaskGroup() as inputs:
                    self._supervised(inputs, PROCESS_LOOP, self.kpi.run, None, "agent[kpi].process")
                    for p in pollers.values():
                        self._supervised(inputs, f"poll:{p.name}", p.run, p.crashed, f"agent[{p.name}].poll")
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
        self.kpi.reconfigure(build_engine_setup(config))
        for output in self.outputs:
            if isinstance(output.sink, Reconfigurable):
                output.sink.reconfigure(config)
        needs_restart = [
            section
            for section in RESTART_SECTIONS
            if getattr(config.workshop, section) != getattr(self.config.workshop, section)
        ]
        self.config = config
        self.store.checkpoints.interval_s = config.workshop.kpi.checkpoint_s
        await self.kpi.commit(checkpoint=True)
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

    def _refused(self, device: str, reason: str) -> None:
        """The KPI engine refused a device's values: its poller shows it bad, with the reason."""
        for poller in self.pollers.values():
            if device in poller.devices:
                poller.set_bad(device, connected=True, error=reason)

    def _supervised(
        self,
        group: asyncio.TaskGroup,
        loop: str,
        run: Callable[[], Awaitable[None]],
        on_crash: Callable[[Exception], None] | None,
        task: str,
    ) -> asyncio.Task[None]:
        """A loop in the group, restarted after a failure (agent/runtime/restarts.py); its restarts
        and last failure are kept under `loop` (/health's loops)."""
        health = self.loops.setdefault(loop, LoopHealth(loop))
        return group.create_task(
            keep_running(run, health, on_crash=on_crash, wall_clock=self.clock), name=task
        )

    def _wake_deliveries(self) -> None:
        for delivery in self.deliveries:
            delivery.wake.set()

    async def _flush(self) -> None:
        """Give connected outputs a bounded time to deliver what is committed."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FLUSH_TIMEOUT_S
        self._wake_deliveries()
        while loop.time() < deadline:
            for delivery in self.deliveries:
                await delivery.refresh_backlog()
            if all(d.stats.backlog_records == 0 or not d.stats.connected for d in self.deliveries):
                return
            await asyncio.sleep(FLUSH_CHECK_S)

    @property
    def working(self) -> bool:
        """Every connection has been polled once and the results processed: what READY=1 means."""
        return self.kpi.rounds > 0 and all(p.health.cycles > 0 for p in self.pollers.values())

    def stalled(self, limit_s: float) -> list[str]:
        """The loops that have not gone round within limit_s (a poll loop: within 3 intervals, if longer)."""
        now = time.monotonic()
        late = [PROCESS_LOOP] if self.kpi.stalled(limit_s, now) else []
        return late + [name for name, p in self.pollers.items() if p.stalled(limit_s, now)]

    def snapshot(self) -> AgentSnapshot:
        """The agent's state now, frozen: what /health, /metrics, the delivery record, systemd's
        STATUS line and the terminal view show."""
        now = self.clock()
        steady = time.monotonic()
        return AgentSnapshot(
            agent=self.agent_id,
            language=self.config.workshop.site.language,
            config_file=str(self.config.source),
            config_version=self.config.version,
            at=now,
            connections=tuple(ConnectionSnapshot.of(p.health, now) for p in self.pollers.values()),
            outputs=tuple(OutputSnapshot.of(d.stats, now, steady) for d in self.deliveries),
            storage=StorageSnapshot.of(self.store.health),
            loops=tuple(LoopSnapshot.of(health, now) for health in self.loops.values()),
        )

    def agent_record(self, now: float) -> Record:
        """The agent's own figures, delivered like any record (MQTT `_agent/<id>/delivery`)."""
        state = self.snapshot()
        return Record(
            RecordKind.AGENT,
            now,
            {
                "sinks": [o.fields() for o in state.outputs],
                "connections": {
                    c.name: {
                        "cycles": c.cycles,
                        "missed_cycles": c.missed_cycles,
                        "requests": c.requests,
                        "devices_up": c.devices_up,
                        "devices": len(c.devices),
                    }
                    for c in state.connections
                },
                "outbox_unwritable": state.storage.unwritable,
                "waiting_in_memory": state.storage.waiting_in_memory,
                "dropped_in_memory": dict(state.storage.dropped_in_memory),
                "refused": dict(state.storage.refused),
                "loop_restarts": {loop.name: loop.restarts for loop in state.loops if loop.restarts},
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


def default_history(config: AgentConfig, clock: Clock) -> HistoryStore | None:
    """The report history (agent/history/store.py), or None when `history.enabled` is false."""
    section = config.workshop.history
    if not section.enabled:
        return None
    path = Path(section.path) if section.path else Path(config.workshop.agent.state_dir) / HISTORY_FILE
    return HistoryStore(path, days=section.days, max_bytes=int(section.max_mb * 2**20), clock=clock)
