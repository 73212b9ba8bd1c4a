"""How a shift's figures carry on across restarts and clock steps: when the KPI engine's state is
checkpointed, what the agent continues from at start, and what a wall-clock step does to it.

- A checkpoint goes into the outbox in the same transaction as the records of the processing
  round that produced it (agent/delivery/store.py): at most every `kpi.checkpoint_s`, always with a
  round that publishes a final record (so a closed period is never published twice), at a reload
  and at a stop.
- At start the agent continues from the checkpoint when it was written by this agent id, in a
  format this version reads, and is not older than MAX_RESUME_GAP_S. The time since is offline
  (`agent_restart`); a changed configuration is applied as a reload would apply it. Any other
  checkpoint is set aside with one log line and the KPIs start afresh: the period so far before
  the start is offline, flagged `agent_restart`. Nothing here deletes a record.
- A clock step is handed to the engine (`KpiEngine.clock_step`) and logged once; a jump forward
  too large to account period by period starts the engine afresh at the new time.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent.clock import ClockStep
from agent.delivery.outbox import AsyncOutbox, Checkpoint, CheckpointUnreadableError
from agent.kpi.checkpoint import FORMAT, CheckpointError, restore
from agent.kpi.engine import EngineSetup, KpiEngine
from agent.records import Record, rfc3339_ms

log = logging.getLogger(__name__)

# A gap longer than this is not accounted period by period: a gateway that was in a cupboard for a
# month, or a clock that jumped years. Matches the outbox's default max_age_h: the records of such
# a gap would be dropped as too old anyway.
MAX_RESUME_GAP_S = 7 * 86_400.0


@dataclass
class StartedEngine:
    engine: KpiEngine
    records: list[Record]


async def start_engine(store: AsyncOutbox, agent_id: str, setup: EngineSetup, now: float) -> StartedEngine:
    """The engine the agent runs with: continued from the outbox's checkpoint, or afresh."""
    try:
        stored = await store.load_checkpoint()
        unreadable = None
    except CheckpointUnreadableError as error:
        stored, unreadable = None, str(error)
    if stored is None and unreadable is None:
        log.info("event=kpi_started_fresh reason='no checkpoint' detail='the period so far is offline'")
        return StartedEngine(*KpiEngine.fresh(setup, now))
    refusal = unreadable
    if stored is not None and refusal is None:
        try:
            return _resume(stored, agent_id, setup, now)
        except CheckpointError as error:
            refusal = str(error)
    aside = await store.set_aside_checkpoint()
    log.error(
        "event=checkpoint_set_aside reason=%r moved_to=%s "
        "detail='KPIs start afresh: the period so far is offline, flagged agent_restart'",
        refusal,
        aside,
    )
    return StartedEngine(*KpiEngine.fresh(setup, now))


def _resume(stored: Checkpoint, agent_id: str, setup: EngineSetup, now: float) -> StartedEngine:
    if stored.agent != agent_id:
        raise CheckpointError(f"checkpoint of agent {stored.agent!r}; this agent is {agent_id!r}")
    if stored.format != FORMAT:
        raise CheckpointError(f"checkpoint format {stored.format}; this agent reads format {FORMAT}")
    if now - stored.ts > MAX_RESUME_GAP_S:
        days = (now - stored.ts) / 86_400.0
        raise CheckpointError(
            f"checkpoint of {rfc3339_ms(stored.ts)} is {days:.0f} days old: too old to continue"
        )
    engine = restore(stored.data, setup)
    records = engine.resume(now)
    if now < stored.ts:
        log.warning(
            "event=clock_behind_checkpoint by_s=%.3f checkpoint=%s "
            "detail='KPI time holds at the checkpoint until the clock passes it: is time sync missing?'",
            now - stored.ts,
            rfc3339_ms(stored.ts),
        )
    if engine.setup != setup:
        records += engine.reconfigure(setup, now)  # what changed while down, as a reload applies it
    log.info(
        "event=kpi_resumed checkpoint=%s gap_s=%.3f machines=%d",
        rfc3339_ms(stored.ts),
        max(0.0, now - stored.ts),
        len(engine.live()),
    )
    return StartedEngine(engine, records)


def apply_clock_step(engine: KpiEngine, step: ClockStep, setup: EngineSetup) -> StartedEngine:
    """Hand a wall-clock step to the engine, logged once; returns the engine to go on with."""
    behind = step.after < engine.now
    if step.after - max(step.before, engine.now) > MAX_RESUME_GAP_S:
        log.error(
            "event=clock_step by_s=%+.3f from=%s to=%s detail='too far ahead to account: KPIs start afresh'",
            step.by_s,
            rfc3339_ms(step.before),
            rfc3339_ms(step.after),
        )
        records = engine.publish_current(max(step.before, engine.now))
        fresh, started = KpiEngine.fresh(setup, step.after)
        return StartedEngine(fresh, records + started)
    log.warning(
        "event=clock_step by_s=%+.3f from=%s to=%s detail=%r",
        step.by_s,
        rfc3339_ms(step.before),
        rfc3339_ms(step.after),
        f"KPI time holds at {rfc3339_ms(engine.now)} until the clock passes it"
        if behind
        else "the time between is offline, flagged clock_step",
    )
    return StartedEngine(engine, engine.clock_step(step.before, step.after))
