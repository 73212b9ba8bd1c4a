"""A shift cut into runs by agent restarts (checkpoint, stop, start) against the same shift unbroken.

The machine follows a fixed timeline; its part counter and its meter keep counting while the agent
is down, as real ones do. Every restart goes through the checkpoint's plain data, encoded to JSON
and back, as the outbox stores it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.kpi.calendar import ShiftDef
from agent.kpi.checkpoint import FORMAT, CheckpointError, restore, snapshot
from agent.kpi.engine import AGENT_RESTART, CLOCK_STEP, CounterSetup, KpiEngine, MeterSetup
from agent.kpi.states import MachineState, TimeBucket
from agent.records import Record, RecordKind, from_json, to_json
from agent.samples import Quality, Sample
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup

RUN, FAULT, SETUP, IDLE = MachineState.PRODUCING, MachineState.FAULT, MachineState.SETUP, MachineState.IDLE
STEP = 10.0  # one poll every 10 s; a part every 5 s while producing: every poll sees whole parts
CYCLE_S = 5.0
REJECT_EVERY = 17
KW = {RUN: 6.0, FAULT: 1.0, SETUP: 2.5, IDLE: 2.0}
SHIFT = (ShiftDef("a", 8 * 60, 10 * 60, ((9 * 60, 9 * 60 + 10),)),)  # 08:00-10:00, a break 09:00-09:10
SHIFT_S = 7200.0
BREAK_S = 600.0
SETTLE_S = 30.0  # the fixture's offline_after_s: a shift closes this long after its end at the latest
TIMELINE = (
    (local(7, 50), IDLE),
    (local(8, 5), RUN),
    (local(8, 25), FAULT),
    (local(8, 31), IDLE),
    (local(8, 40), RUN),  # through the break
    (local(9, 20), SETUP),
    (local(9, 30), RUN),
    (local(9, 55), IDLE),
)
START, END = local(7, 55), local(10, 2)


@dataclass(frozen=True)
class Timeline:
    """Part counter and meter as integrals over the machine's states, so any poll at t reads the
    same values whoever polls and however often."""

    starts: tuple[float, ...] = tuple(t for t, _ in TIMELINE)
    states: tuple[MachineState, ...] = tuple(s for _, s in TIMELINE)

    def state_at(self, t: float) -> MachineState:
        return self.states[max(0, bisect.bisect_right(self.starts, t) - 1)]

    def _integral(self, t: float, rate: dict[MachineState, float]) -> float:
        total = 0.0
        for i, start in enumerate(self.starts):
            if start >= t:
                break
            end = self.starts[i + 1] if i + 1 < len(self.starts) else t
            total += rate[self.states[i]] * (min(end, t) - start)
        return total

    def parts_at(self, t: float) -> int:
        return int(self._integral(t, {RUN: 1 / CYCLE_S, FAULT: 0, SETUP: 0, IDLE: 0}) + 1e-9)

    def kwh_at(self, t: float) -> float:
        return 5000.0 + self._integral(t, {s: kw / 3600 for s, kw in KW.items()})

    def samples(self, t: float) -> list[Sample]:
        state = self.state_at(t)
        parts = self.parts_at(t)
        return [
            Sample("m1", "running", state is RUN, t),
            Sample("m1", "alarm", state is FAULT, t),
            Sample("m1", "alarm_code", 1203 if state is FAULT else 0, t),
            Sample("m1", "setup", state is SETUP, t),
            Sample("m1", "count", float(parts), t),
            Sample("m1", "rejects", float(parts // REJECT_EVERY), t),
            Sample("meter-1", "kwh", self.kwh_at(t), t),
        ]


TIMELINE_OF = Timeline()
METER = MeterSetup("meter-1", "m1", CounterSetup("kwh", None), max_kw=50.0)


def setup() -> Any:
    return engine_setup(machine_setup("m1", ideal_cycle_s=4.0), meters=(METER,), shifts=SHIFT)


def polls(start: float, end: float) -> Iterator[float]:
    for i in range(round((end - start) / STEP) + 1):
        yield start + i * STEP


def run(engine: KpiEngine, start: float, end: float) -> list[Record]:
    records: list[Record] = []
    for t in polls(start, end):
        records += engine.ingest(TIMELINE_OF.samples(t))
        records += engine.advance(t)
    return records


def through_checkpoint(engine: KpiEngine) -> KpiEngine:
    """What a restart continues from: the snapshot as the outbox stores and returns it."""
    return restore(from_json(to_json(snapshot(engine))), setup())


def finals(records: list[Record], kind: RecordKind = RecordKind.OEE) -> list[dict[str, Any]]:
    return [
        r.fields
        for r in records
        if r.kind is kind and r.fields.get("final") and r.fields.get("shift") == "a" and "machine" in r.fields
    ]


@pytest.fixture(scope="module")
def unbroken() -> tuple[dict[str, Any], dict[str, Any]]:
    records = run(KpiEngine(setup(), START), START, END)
    [oee], [energy] = finals(records), finals(records, RecordKind.ENERGY)
    return oee, energy


def split_run(stops: list[tuple[float, float, bool]]) -> list[Record]:
    """Stop at each (stop_at, restart_at, graceful): a graceful stop publishes the shift so far and
    checkpoints at the stop; a kill loses what followed the last checkpoint (taken at stop_at)."""
    engine = KpiEngine(setup(), START)
    records: list[Record] = []
    cursor = START
    for stop_at, restart_at, graceful in stops:
        records += run(engine, cursor, stop_at)
        if graceful:
            records += engine.publish_current(stop_at)
        engine = through_checkpoint(engine)
        records += engine.resume(restart_at)
        cursor = restart_at
    return records + run(engine, cursor, END)


def working_s(start: float, end: float) -> float:
    """The part of [start, end) inside shift a's working time (not its break)."""
    shift = (local(8), local(10))
    brk = (local(9), local(9, 10))

    def overlap(a: tuple[float, float]) -> float:
        return max(0.0, min(end, a[1]) - max(start, a[0]))

    return overlap(shift) - overlap(brk)


@st.composite
def stop_plans(draw: st.DrawFn) -> list[tuple[float, float, bool]]:
    """Up to five stops inside the shift, on the poll grid, each down for 10 s to 15 min."""
    first, last = round((local(8) - START) / STEP) + 1, round((local(9, 58) - START) / STEP)
    count = draw(st.integers(1, 5))
    stops = []
    cursor = first
    for _ in range(count):
        if cursor >= last - 2:
            break
        stop = draw(st.integers(cursor, last - 2))
        down = draw(st.integers(1, min(90, last - stop)))
        stops.append((START + stop * STEP, START + (stop + down) * STEP, draw(st.booleans())))
        cursor = stop + down + 1
    return stops


@given(stop_plans())
def test_any_split_of_the_shift_equals_the_unbroken_shift_except_the_gaps_are_offline(
    unbroken: tuple[dict[str, Any], dict[str, Any]], plan: list[tuple[float, float, bool]]
) -> None:
    whole, whole_energy = unbroken
    records = split_run(plan)
    [oee], [energy] = finals(records), finals(records, RecordKind.ENERGY)
    gaps = sum(working_s(stop, restart) for stop, restart, _ in plan)

    # parts are counter deltas: made while the agent was down, counted at its first poll back;
    # those made in the gaps are unobserved: not in Performance's ideal time (their time is offline)
    assert (oee["produced"], oee["good"]) == (whole["produced"], whole["good"])
    parts_at = TIMELINE_OF.parts_at
    unseen = sum(parts_at(min(restart, local(10))) - parts_at(stop) for stop, restart, _ in plan)
    assert abs(oee["produced_unobserved"] - unseen) <= len(plan)  # whole parts, shared by time
    assert oee["ideal_s"] == pytest.approx(whole["ideal_s"] - 4.0 * oee["produced_unobserved"])
    assert whole["produced_unobserved"] == 0
    assert energy["kwh"] == pytest.approx(whole_energy["kwh"], abs=1e-4)
    # the gaps are offline and nothing else; every bucket lost at most what the gaps held
    assert oee["offline_s"] == pytest.approx(gaps, abs=1e-3)
    for bucket in ("apt_s", "setup_s", "idle_s", "fault_s"):
        assert 0.0 <= whole[bucket] - oee[bucket] <= gaps + 1e-3, bucket
    lost = sum(whole[b] - oee[b] for b in ("apt_s", "setup_s", "idle_s", "fault_s"))
    assert lost == pytest.approx(gaps, abs=1e-3)
    # the buckets cover the shift exactly
    covered = oee["pbt_s"] + oee["planned_stop_s"] + oee["no_shift_s"] + oee["offline_s"]
    assert covered == pytest.approx(SHIFT_S, abs=1e-3)
    assert oee["planned_stop_s"] == whole["planned_stop_s"] == BREAK_S
    if gaps > 0:
        assert oee["coverage"] < 1.0
    assert AGENT_RESTART in oee["flags"]
    assert AGENT_RESTART not in whole["flags"]


def test_the_unbroken_shift_is_what_the_timeline_says(
    unbroken: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The reference itself, by hand: the property above is only as good as it."""
    oee, energy = unbroken
    assert oee["produced"] == TIMELINE_OF.parts_at(local(10)) - TIMELINE_OF.parts_at(local(8))
    assert oee["good"] == oee["produced"] - (
        TIMELINE_OF.parts_at(local(10)) // REJECT_EVERY - TIMELINE_OF.parts_at(local(8)) // REJECT_EVERY
    )
    assert oee["apt_s"] == (20 + 40 - 10 + 25) * 60.0  # producing, less the 10 min break it ran through
    assert (oee["fault_s"], oee["idle_s"], oee["setup_s"]) == (360.0, 300.0 + 540.0 + 300.0, 600.0)
    assert oee["offline_s"] == 0.0
    assert energy["kwh"] == pytest.approx(
        TIMELINE_OF.kwh_at(local(10)) - TIMELINE_OF.kwh_at(local(8)), abs=1e-4
    )


def test_a_shift_end_passed_while_down_is_published_once_at_the_start_with_its_share() -> None:
    """Down from 09:58 to 10:01 (idle all along): the shift closes after the first poll back,
    once; the gap's two minutes in the shift are offline, the idle kWh of the gap shared by time."""
    engine = KpiEngine(setup(), START)
    before = run(engine, START, local(9, 58))
    before += engine.publish_current(local(9, 58))
    assert finals(before) == []
    engine = through_checkpoint(engine)
    at_start = engine.resume(local(10, 1))
    assert finals(at_start) == []  # not before the first poll has brought the shift its share
    after = run(engine, local(10, 1), local(10, 3))
    [oee], [energy] = finals(at_start + after), finals(at_start + after, RecordKind.ENERGY)
    assert oee["offline_s"] == 120.0
    assert AGENT_RESTART in oee["flags"]
    assert energy["kwh"] == pytest.approx(
        TIMELINE_OF.kwh_at(local(10)) - TIMELINE_OF.kwh_at(local(8)), abs=1e-4
    )
    closing = [r for r in at_start + after if r.fields.get("final") and r.kind is RecordKind.OEE]
    assert all(r.ts == local(10) for r in closing)


def test_a_final_published_before_the_stop_is_never_published_again() -> None:
    engine = KpiEngine(setup(), START)
    before = run(engine, START, local(10, 1))
    assert len(finals(before)) == 1
    engine = through_checkpoint(engine)
    after = engine.resume(local(10, 5)) + run(engine, local(10, 5), local(10, 10))
    assert finals(after) == []


def test_a_snapshot_survives_its_own_restore_unchanged() -> None:
    engine = KpiEngine(setup(), START)
    run(engine, START, local(8, 37))
    data = from_json(to_json(snapshot(engine)))
    assert snapshot(restore(data, setup())) == data


def test_a_fresh_start_mid_shift_reports_the_time_before_it_as_offline() -> None:
    engine, _ = KpiEngine.fresh(setup(), local(9, 30))
    records = run(engine, local(9, 30), END)
    [oee] = finals(records)
    assert oee["offline_s"] == 5400.0 - BREAK_S  # 08:00 to 09:30 less the break, before the agent ran
    assert AGENT_RESTART in oee["flags"]
    assert oee["coverage"] < 1.0


@pytest.mark.parametrize(
    "damage",
    [
        {"format": FORMAT + 1},
        {"format": FORMAT, "now": "yesterday"},
        {"format": FORMAT},
        [],
    ],
    ids=["newer-format", "wrong-type", "missing-keys", "not-a-mapping"],
)
def test_a_checkpoint_that_does_not_fit_is_refused_with_a_reason(damage: Any) -> None:
    with pytest.raises(CheckpointError, match="format"):
        restore(damage, setup())


def test_a_clock_step_forward_is_an_offline_gap_and_counts_follow_real_time() -> None:
    engine = KpiEngine(setup(), START)
    records = run(engine, START, local(8, 30))
    records += engine.clock_step(local(8, 30) + 5, local(9, 30) + 5)
    offset = 3600.0
    for t in polls(local(8, 30) + STEP, local(8, 55)):  # the machine lives on; the clock reads an hour more
        records += engine.ingest(
            [Sample(s.device, s.tag, s.value, s.ts + offset, s.quality) for s in TIMELINE_OF.samples(t)]
        )
        records += engine.advance(t + offset)
    totals = engine.machines["m1"].periods[engine.period.key]
    assert CLOCK_STEP in totals.flags
    assert totals.times[TimeBucket.OFFLINE] == pytest.approx(3600.0 - BREAK_S + 5.0, abs=STEP)
    parts = TIMELINE_OF.parts_at(local(8, 55)) - TIMELINE_OF.parts_at(local(8))
    assert totals.produced == parts  # nothing made during the jump, nothing lost around it


def test_a_clock_step_back_holds_the_engine_and_loses_no_part() -> None:
    engine = KpiEngine(setup(), START)
    run(engine, START, local(8, 30))
    held_at = engine.now
    engine.clock_step(local(8, 30) + 5, local(7, 30) + 5)
    offset = -3600.0
    records: list[Record] = []
    for t in polls(local(8, 30) + STEP, local(9, 40)):
        records += engine.ingest(
            [Sample(s.device, s.tag, s.value, s.ts + offset, s.quality) for s in TIMELINE_OF.samples(t)]
        )
        records += engine.advance(t + offset)
        assert engine.now >= held_at  # never backwards
    totals = engine.machines["m1"].periods[engine.period.key]
    assert CLOCK_STEP in totals.flags
    # 07:55 to 08:40 on the stepped clock: the hour from 07:30 to 08:30 was already accounted
    accounted = sum(totals.times.values())
    assert accounted == pytest.approx(local(8, 40) - local(8), abs=STEP)
    parts = TIMELINE_OF.parts_at(local(9, 40)) - TIMELINE_OF.parts_at(local(8))
    assert totals.produced == parts  # made while the clock was held: counted all the same
    assert not [r for r in records if r.fields.get("final")]


def test_bad_reads_after_a_restart_turn_the_gap_into_an_outage() -> None:
    engine = KpiEngine(setup(), START)
    run(engine, START, local(8, 10))
    engine = through_checkpoint(engine)
    engine.resume(local(8, 20))
    bad = [Sample("m1", tag, None, local(8, 20) + 1, Quality.BAD) for tag in ("running", "count")]
    [state] = [r for r in engine.ingest(bad) if r.kind is RecordKind.STATE]
    assert (state.fields["state"], state.fields["reason"]) == ("offline", "no data")


def test_a_day_that_ended_while_down_gets_its_day_record_once() -> None:
    engine = KpiEngine(setup(), START)
    before = run(engine, START, local(23, 50))
    before += engine.publish_current(local(23, 50))
    engine = through_checkpoint(engine)
    after = engine.resume(local(0, 10, day=25)) + run(engine, local(0, 10, day=25), local(0, 12, day=25))
    days = [r.fields for r in before + after if r.kind is RecordKind.OEE and r.fields["period"] == "day"]
    assert [(d["day"], d["final"]) for d in days] == [("2026-11-24", True)]
    [shift] = finals(before)
    assert days[0]["produced"] == shift["produced"]  # the day is the sum of its periods
    engine = through_checkpoint(engine)
    again = engine.resume(local(0, 20, day=25)) + run(engine, local(0, 20, day=25), local(0, 22, day=25))
    assert not [r for r in again if r.fields.get("period") == "day"]
