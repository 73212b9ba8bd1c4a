"""Committing records to the outbox, with the KPI engine's checkpoint; holding them in memory while
the outbox cannot be written.

- A commit is one transaction: the records and, when one is due, the checkpoint of the engine state
  that made them (agent/runtime/continuity.py says what a start does with it). A checkpoint is due
  every `kpi.checkpoint_s`, with a round that publishes a final record (so a closed period is never
  published twice after a crash), at a reload and at a stop.
- A commit finishes even if its caller is cancelled (a stop): the outbox thread finishes it
  regardless, and the bookkeeping follows, or records held in memory would be written twice.
- While the outbox cannot be written (a full disk, a lock held elsewhere, a file that is not open),
  records wait in memory, at most MEMORY_RECORDS; beyond that they are dropped in the outbox's own
  order (raw tag values first, agent/delivery/outbox.py), counted by kind. They are written, before
  the newer ones, once the outbox takes writes again.
- A record the outbox refuses on its own (a value JSON cannot carry) is logged and counted; the
  records around it are committed one by one, never lost with it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Self

from agent.delivery.outbox import AsyncOutbox, Checkpoint, Outbox, OutboxUnwritableError, drop_rank
from agent.exceptions import describe
from agent.kpi.checkpoint import FORMAT, snapshot
from agent.kpi.engine import KpiEngine
from agent.records import Envelope, Record
from agent.throttle import STORAGE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

MEMORY_RECORDS = 100_000  # records kept in memory while the disk is full
UNWRITABLE = "unwritable"  # the throttle's key for the one fault this store logs


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


class Checkpointer:
    """Decides when the engine's state goes into the outbox with a round's records."""

    def __init__(self, agent_id: str, interval_s: float) -> None:
        self.agent_id = agent_id
        self.interval_s = interval_s
        self._last = -math.inf  # monotonic: a clock step never delays or hurries a checkpoint

    def due(self, records: Sequence[Record]) -> bool:
        if time.monotonic() - self._last >= self.interval_s:
            return True
        return any(r.fields.get("final") is True for r in records)

    def take(self, engine: KpiEngine) -> Checkpoint:
        self._last = time.monotonic()
        return Checkpoint(self.agent_id, FORMAT, engine.now, snapshot(engine))


class RecordStore:
    """The agent's records on their way into the outbox. Open it with `async with`, then `open()`
    the file for the outputs' cursors; `commit()` from then on."""

    def __init__(
        self,
        outbox: Outbox,
        agent_id: str,
        clock: Callable[[], float],
        checkpoint_s: float,
        *,
        on_commit: Callable[[], None] = lambda: None,
        observe: Callable[[Sequence[Record]], None] = lambda _records: None,
    ) -> None:
        self.outbox = outbox
        self.agent_id = agent_id
        self.clock = clock
        self.checkpoints = Checkpointer(agent_id, checkpoint_s)
        self.health = StorageHealth()
        self.on_commit = on_commit  # records were stored: the delivery loops have something new
        # every new batch, whatever the outbox does with it: the report history keeps its own copy
        self.observe = observe
        self._async: AsyncOutbox | None = None
        self._unstored: list[Record] = []
        self._log = EventThrottle(STORAGE_FAULT_LOG_EVERY_S)

    @property
    def async_outbox(self) -> AsyncOutbox:
        """The outbox on its own thread, for the delivery loops and the start from a checkpoint."""
        if self._async is None:
            raise RuntimeError(f"outbox {self.outbox.path} is not open")
        return self._async

    async def __aenter__(self) -> Self:
        self._async = await AsyncOutbox(self.outbox).__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        store, self._async = self._async, None
        if store is not None:
            await store.__aexit__(*exc)
        if self._unstored:
            log.error(
                "event=records_lost_at_exit count=%d reason='outbox full until the end'", len(self._unstored)
            )

    async def open(self, sinks: Sequence[str]) -> None:
        """Open (or create, or salvage) the file and register the outputs' cursors.
        OutboxUnopenableError when it cannot be written at all."""
        store = self.async_outbox
        self.health.problems = await store.open()
        if store.salvage is not None:
            self.health.salvaged = store.salvage.records
            self.health.lost_to_corruption = store.salvage.lost
        await store.register(sinks)

    async def commit(self, records: list[Record], engine: KpiEngine, *, checkpoint: bool = False) -> None:
        """Commit the records, with the engine's checkpoint when asked, when due, or when they hold
        a final record. The checkpoint is taken here, before any await, so it is the state that
        made these records."""
        if records:
            self.observe(records)
        state = None
        if checkpoint or self.checkpoints.due(records) or self.checkpoints.due(self._unstored):
            state = self.checkpoints.take(engine)
        commit = asyncio.ensure_future(self._commit(records, state))
        try:
            await asyncio.shield(commit)
        except asyncio.CancelledError:
            await commit
            raise

    async def _commit(self, records: list[Record], state: Checkpoint | None) -> None:
        if not records and not self._unstored and state is None:
            return
        store = self._async
        batch = self._unstored + records
        if store is None:  # not open (yet, or any more): records wait in memory as on a full disk
            self._hold_in_memory(batch, f"outbox {self.outbox.path} is not open")
            return
        try:
            envelopes = await store.append(self.agent_id, batch, self.clock(), state)
        except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
            self._hold_in_memory(batch, str(error))
            return
        except Exception:  # noqa: BLE001 - a record the outbox cannot take; the others must go in
            each = await self._commit_each(store, batch, state)
            if each is None:
                return
            envelopes = each
        if self.health.unwritable:
            log.warning("event=outbox_writable_again stored_from_memory=%d", len(self._unstored))
            self._log.reset(UNWRITABLE)
        self._unstored = []
        self.health.unwritable = False
        self.health.unwritable_reason = None
        self.health.waiting_in_memory = 0
        self.health.stored += len(envelopes)
        self.on_commit()

    async def _commit_each(
        self, store: AsyncOutbox, batch: list[Record], state: Checkpoint | None
    ) -> list[Envelope] | None:
        """Commit record by record: a record the outbox refuses on its own is logged and counted,
        the others are stored, then the checkpoint of the state that made them. None if storage
        itself failed meanwhile (the rest waits in memory, and the checkpoint goes with it later)."""
        envelopes: list[Envelope] = []
        for index, record in enumerate(batch):
            try:
                envelopes += await store.append(self.agent_id, [record], self.clock())
            except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
                self._hold_in_memory(batch[index:], str(error))
                return None
            except Exception as error:  # this record alone: refused, counted, logged with the traceback
                self.health.refused[record.kind.value] += 1
                log.exception(
                    "event=record_refused kind=%s machine=%s error_type=%s refused=%d",
                    record.kind.value,
                    record.machine,
                    type(error).__name__,
                    sum(self.health.refused.values()),
                )
        if state is not None:
            try:
                await store.append(self.agent_id, [], self.clock(), state)
            except (OutboxUnwritableError, sqlite3.DatabaseError) as error:
                # the records are stored; the next checkpoint that is due carries the state
                log.warning("event=checkpoint_not_stored error=%r", describe(error))
        return envelopes

    def _hold_in_memory(self, batch: list[Record], error: str) -> None:
        overflow = len(batch) - MEMORY_RECORDS
        if overflow > 0:
            ordered = sorted(range(len(batch)), key=lambda i: (drop_rank(batch[i].kind), i))
            dropped = set(ordered[:overflow])
            self.health.dropped_in_memory.update(batch[i].kind.value for i in dropped)
            batch = [r for i, r in enumerate(batch) if i not in dropped]
        self._unstored = batch
        self.health.unwritable = True
        self.health.unwritable_reason = error
        self.health.waiting_in_memory = len(batch)
        if self._log.allow(UNWRITABLE) is not None:
            log.error("event=outbox_unwritable error=%r waiting_in_memory=%d", error, len(batch))
