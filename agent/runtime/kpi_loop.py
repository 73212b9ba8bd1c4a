"""The KPI loop: poll results in, records out, committed with the engine's checkpoint.

Each round takes every poll result queued (pollers hand each device's samples over as soon as it
is read; a round comes at most every ROUND_EVERY_S, so the commits per second do not grow with
the devices), or times out after a second, so time is accounted while every connection is silent;
it hands wall-clock steps to the engine before the readings that follow them, ingests each
device's samples on its own, advances the engine and publishes the agent's own record; then
commits all of it in one transaction. Values the engine cannot take turn only their device bad
(logged once, with the traceback), so one device's bad data never costs the others their records.
Records made by a round that fails before its commit are carried into the next round's commit,
never dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from itertools import groupby

from agent.clock import ClockStep
from agent.delivery.store import RecordStore
from agent.drivers.base import ReadResult
from agent.exceptions import describe
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.kpi.rules import RULE_ERROR_REASON
from agent.records import Record, RecordKind
from agent.runtime.calibration import CalibrationReminder
from agent.runtime.continuity import apply_clock_step
from agent.runtime.meter_silence import warn_silent_meters
from agent.samples import SAMPLE_DEVICE, Sample

log = logging.getLogger(__name__)

# Poll results (a device's samples each) waiting for the engine; beyond this, polling waits. About
# ten seconds of a 200-device workshop polled every second.
QUEUE_BATCHES = 2048
WAIT_FOR_RESULTS_S = 1.0  # a round without results comes this often: time goes on without data
# Advancing accounts time for every machine; with many connections results arrive many times a
# second, and once per ADVANCE_EVERY_S is precise enough for offline detection and publication.
ADVANCE_EVERY_S = 0.25
# Results come device by device, hundreds a second: a round (one commit) takes all that came within
# this long, which adds at most this much to a sample's way to the outputs.
ROUND_EVERY_S = 0.05


class KpiLoop:
    def __init__(
        self,
        engine: KpiEngine,
        store: RecordStore,
        clock: Callable[[], float],
        *,
        agent_record: Callable[[float], Record],
        on_refused: Callable[[str, str], None],
        clock_steps: Callable[[], list[ClockStep]] | None = None,
    ) -> None:
        """agent_record: the agent's own record at a moment; on_refused: a device whose values the
        engine refused, with the reason (its poller shows it bad); clock_steps: the wall-clock steps
        found since the last call (agent/clock.py SteadyClock)."""
        self.engine = engine
        self.store = store
        self.clock = clock
        self.queue: asyncio.Queue[ReadResult] = asyncio.Queue(QUEUE_BATCHES)
        self.rounds = 0
        self.last_round = time.monotonic()  # when the loop last went round (stall detection)
        # Devices whose values the engine refused, with the reason; cleared by the next success.
        self.refused: dict[str, str] = {}
        self.calibration = CalibrationReminder()  # meters overdue for calibration, warned daily
        self._agent_record = agent_record
        self._on_refused = on_refused
        self._clock_steps = clock_steps
        self._carried: list[Record] = []  # made by a round that failed before its commit
        self._advanced = 0.0
        self._round_started = 0.0  # monotonic
        self._taken: list[ReadResult] = []  # out of the queue, not yet ingested (a stop may come first)
        self._next_agent_record = time.monotonic() + self.setup.publish_interval_s

    @property
    def setup(self) -> EngineSetup:
        return self.engine.setup

    async def run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(WAIT_FOR_RESULTS_S):
                    self._taken.append(await self.queue.get())
            except TimeoutError:
                pass
            wait = self._round_started + ROUND_EVERY_S - time.monotonic()
            if self._taken and wait > 0:
                await asyncio.sleep(wait)  # the devices read meanwhile join this round
            await self.round(self._queued())

    async def round(self, results: list[ReadResult]) -> None:
        """One round: the results (none: none came), time accounted, records committed."""
        self._round_started = time.monotonic()
        # Records made so far this round are carried until committed: a failure later in the round
        # (the engine's advance, the commit) restarts the loop, and the next round commits them first.
        now = self.clock()  # before the steps are taken: a step it finds is handled first
        for overdue in self.calibration.due(self.setup, now):
            log.warning(overdue.log_fields())
        records = self._carried
        records += self._steps()
        for result in results:
            records += self._ingest(result)
        # Scheduled by the monotonic clock, as a step would stall it.
        steady = time.monotonic()
        if not results or steady - self._advanced >= ADVANCE_EVERY_S:
            self._advanced = steady
            records += self.engine.advance(now)
        if steady >= self._next_agent_record:
            self._next_agent_record = steady + self.setup.publish_interval_s
            records.append(self._agent_record(now))
        self._carried = []
        await self.store.commit(records, self.engine)
        warn_silent_meters(records)
        self.last_round = time.monotonic()
        self.rounds += 1

    def reconfigure(self, setup: EngineSetup) -> None:
        """A reload: what was read so far becomes records under the old setup, then the engine
        takes the new one. The records wait for the next commit (`commit`)."""
        now = self.clock()
        self._carried += self._steps()
        self._carried += self._take_queued()
        self._carried += self.engine.reconfigure(setup, now)

    async def commit(self, *, checkpoint: bool = False) -> None:
        """Commit the records made outside a round (a reload's)."""
        records, self._carried = self._carried, []
        await self.store.commit(records, self.engine, checkpoint=checkpoint)
        warn_silent_meters(records)

    async def finish(self, agent_record: Record | None = None) -> None:
        """At a stop: what was read becomes records, the shift so far is published, and all is
        committed with the checkpoint the next start continues from."""
        now = self.clock()
        records, self._carried = self._carried, []
        records += self._steps()
        records += self._take_queued()
        records += self.engine.publish_current(now)
        records.append(agent_record or self._agent_record(now))
        await self.store.commit(records, self.engine, checkpoint=True)
        warn_silent_meters(records)

    def stalled(self, limit_s: float, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        return now - self.last_round > limit_s

    def _take_queued(self) -> list[Record]:
        records: list[Record] = []
        for result in self._queued():
            records += self._ingest(result)
        return records

    def _queued(self) -> list[ReadResult]:
        results, self._taken = self._taken, []
        while not self.queue.empty():
            results.append(self.queue.get_nowait())
        return results

    def _ingest(self, result: ReadResult) -> list[Record]:
        """The engine takes each device's samples on its own: values it cannot process turn that
        device bad (logged once, with the traceback) and cost no other device its records."""
        by_device: dict[str, list[Sample]] = {}
        for device, run in groupby(result.samples, key=SAMPLE_DEVICE):  # a driver's come device by device
            by_device.setdefault(device, []).extend(run)
        records: list[Record] = []
        for device, samples in by_device.items():
            try:
                made = self.engine.ingest(samples)
            except Exception as error:  # noqa: BLE001 - one device's values never stop the engine
                self._refuse(device, error)
                continue
            records += made
            for record in made:
                reason = record.fields.get("reason") if record.kind is RecordKind.STATE else None
                if isinstance(reason, str) and reason.startswith(RULE_ERROR_REASON):
                    # a state record is made on a change only: this logs each failure once
                    log.warning("machine=%s event=rule_error state=unknown detail=%r", device, reason)
            if self.refused.pop(device, None) is not None:
                log.info("device=%s event=kpi_values_accepted_again", device)
        return records

    def _refuse(self, device: str, error: Exception) -> None:
        reason = f"KPI engine refused its values: {describe(error)}"
        if self.refused.get(device) != reason:
            log.error("device=%s event=kpi_values_refused error=%r", device, describe(error), exc_info=error)
        self.refused[device] = reason
        self._on_refused(device, reason)

    def _steps(self) -> list[Record]:
        """Wall-clock steps found since the last round, handed to the engine (and logged) before
        any reading stamped after them is ingested."""
        records: list[Record] = []
        for step in self._clock_steps() if self._clock_steps else ():
            started = apply_clock_step(self.engine, step, self.setup)
            self.engine = started.engine
            records += started.records
        return records
