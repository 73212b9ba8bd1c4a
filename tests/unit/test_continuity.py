"""What the agent continues from at start, with a real outbox file: its own checkpoint, or any other
set aside with one log line and the KPIs started afresh; when checkpoints are due; clock steps."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ClockStep
from agent.delivery.outbox import AsyncOutbox, Checkpoint, Outbox
from agent.delivery.store import Checkpointer
from agent.kpi.checkpoint import FORMAT
from agent.kpi.engine import AGENT_RESTART, KpiEngine
from agent.kpi.states import TimeBucket
from agent.records import Record, RecordKind
from agent.runtime.continuity import MAX_RESUME_GAP_S, StartedEngine, apply_clock_step, start_engine
from agent.samples import Sample
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup

AGENT = "gw-test"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[tuple[AsyncOutbox, Outbox]]:
    outbox = Outbox(tmp_path / "outbox.db")
    async with AsyncOutbox(outbox) as store:
        await store.open()
        yield store, outbox


def running_engine(until: float) -> KpiEngine:
    engine = KpiEngine(engine_setup(machine_setup("m1"), machine_setup("m2")), local(8))
    t = local(8)
    while t <= until:
        for machine in ("m1", "m2"):
            engine.ingest(
                [Sample(machine, "running", True, t), Sample(machine, "count", (t - local(8)) / 5, t)]
            )
        engine.advance(t)
        t += 10.0
    return engine


def saved(outbox: Outbox, engine: KpiEngine, **change: Any) -> None:
    checkpoint = Checkpointer(AGENT, 5.0).take(engine)
    fields = {**vars(checkpoint), **change}
    outbox.append(AGENT, [], engine.now, Checkpoint(**fields))


def flags_of(started: StartedEngine, machine: str) -> set[str]:
    return started.engine.machines[machine].periods[started.engine.period.key].flags


async def test_its_own_checkpoint_is_continued(store: tuple[AsyncOutbox, Outbox]) -> None:
    async_store, outbox = store
    before = running_engine(local(9))
    saved(outbox, before)
    started = await start_engine(
        async_store, AGENT, engine_setup(machine_setup("m1"), machine_setup("m2")), local(9, 5)
    )
    totals = started.engine.machines["m1"].periods[started.engine.period.key]
    assert totals.times[TimeBucket.ACTUAL_PRODUCTION] == 3600.0  # the shift so far, kept
    assert totals.times[TimeBucket.OFFLINE] == 300.0  # the five minutes down
    assert totals.produced == before.machines["m1"].periods[before.period.key].produced
    assert AGENT_RESTART in totals.flags
    assert [r.fields["reason"] for r in started.records if r.kind is RecordKind.STATE] == [
        "agent restart"
    ] * 2


async def test_a_changed_configuration_is_applied_as_a_reload_applies_it(
    store: tuple[AsyncOutbox, Outbox],
) -> None:
    async_store, outbox = store
    saved(outbox, running_engine(local(9)))
    now_setup = engine_setup(machine_setup("m1"), machine_setup("m3"))
    started = await start_engine(async_store, AGENT, now_setup, local(9, 5))
    assert {m.setup.id for m in started.engine.live()} == {"m1", "m3"}
    removed = [
        r.fields for r in started.records if r.kind is RecordKind.OEE and r.fields.get("machine") == "m2"
    ]
    assert [(f["final"], f["apt_s"]) for f in removed] == [(False, 3600.0)]  # its shift so far, once more
    # and kept (offline, never fed) until its shift closes final, so its parts stay in the shift
    assert started.engine.machines["m2"].reason == "removed from configuration"
    kept = started.engine.machines["m1"].periods[started.engine.period.key]
    assert kept.times[TimeBucket.ACTUAL_PRODUCTION] == 3600.0
    assert started.engine.machines["m3"].accounted_until == local(9, 5)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"agent": "gw-other"}, "checkpoint of agent 'gw-other'; this agent is 'gw-test'"),
        ({"format": 99}, f"checkpoint format 99; this agent reads format {FORMAT}"),
        ({"data": {"format": FORMAT, "now": "late"}}, f"checkpoint does not fit format {FORMAT}"),
        ({"ts": local(9) - MAX_RESUME_GAP_S - 3600}, "days old: too old to continue"),
    ],
    ids=["another-agent", "another-format", "damaged-data", "too-old"],
)
async def test_a_checkpoint_it_cannot_continue_is_set_aside_once_and_the_kpis_start_afresh(
    store: tuple[AsyncOutbox, Outbox],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
    reason: str,
) -> None:
    async_store, outbox = store
    outbox.append(AGENT, [Record(RecordKind.OEE, local(8), {"machine": "m1"})], local(8))
    saved(outbox, running_engine(local(9)), **change)
    with caplog.at_level(logging.INFO):
        started = await start_engine(async_store, AGENT, engine_setup(machine_setup("m1")), local(9, 5))
    [line] = [r.getMessage() for r in caplog.records if "checkpoint_set_aside" in r.getMessage()]
    assert reason in line
    assert len(list(tmp_path.glob("outbox.db.checkpoint-*"))) == 1  # noqa: ASYNC240 - a look at the test dir
    assert outbox.load_checkpoint() is None
    totals = started.engine.machines["m1"].periods[started.engine.period.key]
    assert totals.times[TimeBucket.OFFLINE] == 3900.0  # 08:00 to 09:05: not seen by this start
    assert AGENT_RESTART in totals.flags
    assert outbox.stats().records == 1  # the undelivered record stays


async def test_an_undecodable_checkpoint_is_set_aside(store: tuple[AsyncOutbox, Outbox]) -> None:
    async_store, outbox = store
    saved(outbox, running_engine(local(9)))
    outbox.db.execute("UPDATE checkpoint SET body = x'00ff'")
    started = await start_engine(async_store, AGENT, engine_setup(machine_setup("m1")), local(9, 5))
    assert AGENT_RESTART in flags_of(started, "m1")
    assert outbox.load_checkpoint() is None


async def test_a_clock_behind_the_checkpoint_holds_and_says_so(
    store: tuple[AsyncOutbox, Outbox], caplog: pytest.LogCaptureFixture
) -> None:
    async_store, outbox = store
    saved(outbox, running_engine(local(9)))
    with caplog.at_level(logging.INFO):
        started = await start_engine(
            async_store, AGENT, engine_setup(machine_setup("m1"), machine_setup("m2")), local(8, 30)
        )
    assert any("clock_behind_checkpoint by_s=-1800.000" in r.getMessage() for r in caplog.records)
    assert started.engine.now == local(9)
    assert "clock_step" in flags_of(started, "m1")


def test_a_checkpoint_is_due_by_interval_or_with_a_final_record() -> None:
    checkpoints = Checkpointer(AGENT, 3600.0)
    assert checkpoints.due([])  # never taken yet
    checkpoints.take(running_engine(local(8)))
    assert not checkpoints.due([Record(RecordKind.OEE, 0.0, {"final": False})])
    assert checkpoints.due([Record(RecordKind.OEE, 0.0, {"final": True})])


def test_a_clock_jump_too_far_to_account_starts_the_engine_afresh() -> None:
    engine = running_engine(local(9))
    setup = engine_setup(machine_setup("m1"), machine_setup("m2"))
    later = local(9) + MAX_RESUME_GAP_S * 3
    started = apply_clock_step(engine, ClockStep(local(9), later), setup)
    assert started.engine is not engine
    assert started.engine.now == later
    so_far = [r for r in started.records if r.kind is RecordKind.OEE and r.fields.get("machine") == "m1"]
    assert [(r.ts, r.fields["final"]) for r in so_far] == [(local(9), False)]


def test_a_clock_step_of_an_hour_goes_to_the_same_engine() -> None:
    engine = running_engine(local(9))
    started = apply_clock_step(engine, ClockStep(local(9), local(10)), engine.setup)
    assert started.engine is engine
    assert engine.machines["m1"].state.value == "offline"
