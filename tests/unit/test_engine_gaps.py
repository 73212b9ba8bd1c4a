"""What the engine makes of time it did not see: parts counted after a gap, a state whose inputs
could not be read, a stop that an agent restart cut in two, and the flags that say so on the
periods (and the roll-ups) where it happened.

- Parts counted across a gap (a counter increment read after offline time) are shared over the
  window by time: the share of the offline time is `produced_unobserved`. They are parts (in
  `produced`, `good`, energy per part), but their production time is not in APT, so they are not
  in the Performance's ideal time: P = sum(ideal x observed parts) / APT.
- A machine whose state inputs (the tags its rules read) failed in a poll while others were read
  is not judged on the stale values: its state holds as for a poll that failed whole, and it is
  offline (no data) offline_after_s after its last complete read.
- A stop in progress when the agent is killed goes on after the restart: it is a micro-stop when
  production resumes within micro_stop_s of its start, a long stop otherwise.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.kpi.checkpoint import restore, snapshot
from agent.kpi.engine import DATA_GAP, EngineSetup, KpiEngine
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind, from_json, to_json
from agent.samples import Quality, Sample
from tests.unit.kpi_fixtures import ScriptedMachine, engine_setup, finals, local, machine_setup, replay
from tests.unit.test_engine_reload import continued

RUN, IDLE, FAULT = MachineState.PRODUCING, MachineState.IDLE, MachineState.FAULT
STEP = 10.0
CYCLE_S = 5.0  # the machine makes a part every 5 s while producing ...
EXACT = engine_setup(machine_setup("m1", ideal_cycle_s=CYCLE_S))  # ... exactly its ideal cycle
DAY_SHIFT_S = 12 * 3600.0
DAY_BREAKS = ((local(11, 30), local(12)), (local(17), local(17, 30)))  # the fixture's day shift
WORKING_S = DAY_SHIFT_S - 3600.0


def producing(t: float) -> MachineState:
    """Producing, idle in the breaks (a part made in a break is another matter: see test_engine)."""
    return IDLE if any(a <= t < b for a, b in DAY_BREAKS) else RUN


def day_shift(
    outage: tuple[float, float] | None, state_at: Any = producing, step: float = STEP, end: float = local(21)
) -> list[Record]:
    engine = KpiEngine(EXACT, local(8))
    machine = ScriptedMachine("m1", state_at, local(8), cycle_s=CYCLE_S, reject_every=10**9)
    return replay(engine, [machine], local(8), end, step, outage=outage) + engine.publish_current(end)


def last(records: list[Record], kind: RecordKind, shift: str, **match: object) -> dict[str, Any]:
    return [
        r.fields
        for r in records
        if r.kind is kind
        and r.fields.get("shift") == shift
        and all(r.fields.get(k) == v for k, v in match.items())
    ][-1]


# -- parts counted across a gap -------------------------------------------------------------------


def test_parts_made_while_offline_are_counted_but_not_in_performance() -> None:
    records = day_shift((local(9), local(9, 10)))
    [oee] = finals(records, RecordKind.OEE, shift="day", machine="m1")
    # 09:00:30 (offline_after_s after the last read) to 09:10 is offline: 570 s, 114 parts
    assert oee["offline_s"] == 570.0
    assert oee["produced"] == WORKING_S / CYCLE_S  # every part made
    assert oee["produced_unobserved"] == 114
    assert oee["performance"] == 1.0  # was 1.0046: 114 parts' ideal time without their time
    assert "performance_above_1" not in oee["flags"]
    assert DATA_GAP in oee["flags"]


def test_data_gap_is_flagged_on_the_period_the_gap_was_in_and_on_its_roll_ups() -> None:
    # unreachable 19:40:30 to 20:00:20: the day shift closes at its end (its machine unreachable)
    # and the parts made meanwhile, read at 20:00:20, go to the night shift, which is open
    records = day_shift((local(19, 40), local(20) + 20))
    [day] = finals(records, RecordKind.OEE, shift="day", machine="m1")
    night = last(records, RecordKind.OEE, "night", machine="m1")
    assert day["offline_s"] == 1170.0
    assert DATA_GAP in day["flags"]  # the gap was here
    # 234 made unseen, 6 in the day's APT (19:40 to 19:40:30) but the day is closed, 4 in the night
    assert night["produced_unobserved"] == 244
    assert DATA_GAP in night["flags"]  # parts made unseen were counted here
    assert night["performance"] <= 1.0
    for kind in (RecordKind.LINE_OEE, RecordKind.WORKSHOP_OEE):
        [rolled] = finals(records, kind, shift="day")
        assert DATA_GAP in rolled["flags"], kind


def test_parts_made_in_a_restart_gap_across_a_shift_end_go_with_their_flag_to_both_shifts() -> None:
    """Down 19:50 to 20:00:10: the day shift waits for the first reads after the start, and the
    parts read then are shared by time: 19:50 to 20:00 to the day shift, with data_gap there."""
    machine = ScriptedMachine("m1", producing, local(8), cycle_s=CYCLE_S, reject_every=10**9)
    engine = KpiEngine(EXACT, local(8))
    records = replay(engine, [machine], local(8), local(19, 50), STEP)
    engine = killed_and_restored(engine, EXACT, local(20) + 10)
    records += replay(engine, [continued(machine, local(20) + 10)], local(20) + 10, local(21), STEP)
    records += engine.publish_current(local(21))
    [day] = finals(records, RecordKind.OEE, shift="day", machine="m1")
    night = last(records, RecordKind.OEE, "night", machine="m1")
    assert day["produced_unobserved"] == 120
    assert day["produced"] == WORKING_S / CYCLE_S
    assert DATA_GAP in day["flags"]
    assert day["performance"] == 1.0
    assert night["produced_unobserved"] == 2
    [workshop_day] = finals(records, RecordKind.WORKSHOP_OEE, shift="day")
    assert {DATA_GAP, "agent_restart"} <= set(workshop_day["flags"])
    assert workshop_day["produced_unobserved"] == 120


def test_a_slow_counter_read_while_the_machine_is_seen_is_no_data_gap() -> None:
    """A counter read every 2 minutes (its request's interval) while the state tags are read every
    poll: its increments were made in observed time."""
    engine = KpiEngine(EXACT, local(8))
    machine = ScriptedMachine("m1", producing, local(8), cycle_s=CYCLE_S, reject_every=10**9)
    records: list[Record] = []
    for i in range(round(3 * 3600 / STEP) + 1):
        t = local(8) + i * STEP
        batch = machine.samples(t, (t - local(8)) // CYCLE_S)
        if i % 12:
            batch = [s for s in batch if s.tag not in ("count", "rejects")]
        records += engine.ingest(batch)
        records += engine.advance(t)
    records += engine.publish_current(local(11))
    oee = [r.fields for r in records if r.kind is RecordKind.OEE][-1]
    assert DATA_GAP not in oee["flags"]
    assert oee["produced_unobserved"] == 0
    assert oee["performance"] == 1.0


@settings(max_examples=20, deadline=None)
@given(
    start_min=st.integers(0, 12 * 60 - 1),
    length_min=st.integers(1, 240),
    stop_min=st.integers(0, 12 * 60 - 1),
    stop_length_min=st.integers(0, 90),
)
def test_oee_components_stay_in_0_1_and_times_partition_the_shift_whatever_the_outage(
    start_min: int, length_min: int, stop_min: int, stop_length_min: int
) -> None:
    outage = (local(8) + 60 * start_min, local(8) + 60 * (start_min + length_min))
    stop = (local(8) + 60 * stop_min, local(8) + 60 * (stop_min + stop_length_min))

    def state_at(t: float) -> MachineState:
        return IDLE if stop[0] <= t < stop[1] else producing(t)

    records = day_shift(outage, state_at, step=60.0, end=local(20, 1))
    [oee] = finals(records, RecordKind.OEE, shift="day", machine="m1")
    for key in ("availability", "quality", "oee", "coverage"):
        assert oee[key] is None or 0.0 <= oee[key] <= 1.0, (key, oee[key])
    # whole parts: one part's ideal time of rounding at most
    assert oee["performance"] is None or oee["performance"] <= 1.0 + CYCLE_S / oee["apt_s"]
    assert 0 <= oee["produced_unobserved"] <= oee["produced"]
    parts = oee["pbt_s"] + oee["planned_stop_s"] + oee["offline_s"] + oee["no_shift_s"]
    assert parts == DAY_SHIFT_S
    assert oee["pbt_s"] + oee["planned_stop_s"] + oee["offline_s"] <= DAY_SHIFT_S
    assert (
        oee["planned_stop_s"] + sum(oee[k] for k in ("apt_s", "setup_s", "idle_s", "fault_s", "offline_s"))
        == DAY_SHIFT_S
    )


# -- state inputs that could not be read ------------------------------------------------------------


def test_a_state_is_never_derived_from_stale_values_of_tags_that_failed() -> None:
    """From 09:00 the request holding running/alarm fails while the counter's succeeds; the
    machine really went to fault at 09:00. Its state is not producing from the stale values."""
    engine = KpiEngine(EXACT, local(8))
    machine = ScriptedMachine("m1", lambda t: FAULT if t >= local(9) else RUN, local(8), cycle_s=CYCLE_S)
    records: list[Record] = []
    for i in range(round(2 * 3600 / STEP) + 1):
        t = local(8) + i * STEP
        batch = machine.samples(t, min(t, local(9)) // CYCLE_S - (local(8) // CYCLE_S))
        if t >= local(9):
            failed = {"running", "alarm", "alarm_code", "setup"}
            batch = [Sample(s.device, s.tag, None, t, Quality.BAD) if s.tag in failed else s for s in batch]
        records += engine.ingest(batch)
        records += engine.advance(t)
    states = [r.fields for r in records if r.kind is RecordKind.STATE and r.ts <= local(10)]
    assert states[-1]["state"] == "offline"
    assert states[-1]["reason"] == "no data"
    # 09:00:20 Shanghai: offline_after_s after the last complete read, at 08:59:50
    assert states[-1]["since"].endswith("01:00:20.000Z")
    records += engine.publish_current(local(10))
    oee = [r.fields for r in records if r.kind is RecordKind.OEE][-1]
    assert oee["apt_s"] == 3600.0 + 20.0  # not two hours of production
    assert oee["offline_s"] == 3600.0 - 20.0


def test_a_tag_read_again_makes_the_state_known_again() -> None:
    engine = KpiEngine(EXACT, local(8))
    machine = ScriptedMachine("m1", lambda _t: RUN, local(8), cycle_s=CYCLE_S)
    for i in range(round(3600 / STEP) + 1):
        t = local(8) + i * STEP
        batch = machine.samples(t, (t - local(8)) // CYCLE_S)
        if local(8, 20) <= t < local(8, 30):
            batch = [
                Sample(s.device, s.tag, None, t, Quality.BAD) if s.tag == "running" else s for s in batch
            ]
        engine.ingest(batch)
        engine.advance(t)
    tracker = engine.machines["m1"]
    assert tracker.state is RUN
    totals = engine.machine_totals(tracker, engine.period.key)
    assert totals.offline_s == 600.0 - 20.0  # from 08:20:20: 30 s after the last complete read


# -- a stop cut by a restart --------------------------------------------------------------------------


def micro_setup(threshold: float) -> EngineSetup:
    return replace(EXACT, micro_stop_s=threshold)


def killed_and_restored(engine: KpiEngine, setup: EngineSetup, now: float) -> KpiEngine:
    """SIGKILL: what is left is the last checkpoint; the next start restores and resumes it."""
    restored = restore(from_json(to_json(snapshot(engine))), setup)
    restored.resume(now)
    return restored


def stop_across_a_restart(threshold: float, back_at: float, state_back: MachineState = RUN) -> dict[str, Any]:
    """Producing from 08:00; idle from 09:00:00; the agent checkpointed at 09:00:10 and was killed;
    it starts again at `back_at`, when the machine is in `state_back`; producing 30 s later."""
    setup = micro_setup(threshold)
    stop_at, resumed_at = local(9), back_at

    def state_at(t: float) -> MachineState:
        if t < stop_at:
            return RUN
        if t < resumed_at:
            return IDLE
        return state_back if t < resumed_at + 30 else RUN

    machine = ScriptedMachine("m1", state_at, local(8), cycle_s=CYCLE_S, reject_every=10**9)
    engine = KpiEngine(setup, local(8))
    replay(engine, [machine], local(8), stop_at + 10, STEP)
    engine = killed_and_restored(engine, setup, back_at)
    later = replay(engine, [continued(machine, back_at)], back_at, local(11), STEP)
    later += engine.publish_current(local(11))
    return [r.fields for r in later if r.kind is RecordKind.OEE and r.fields.get("machine") == "m1"][-1]


def test_a_micro_stop_in_progress_at_a_kill_is_a_micro_stop_after_the_restart() -> None:
    oee = stop_across_a_restart(120.0, local(9) + 40)
    assert oee["micro_stops"] == 1  # 09:00:00 to 09:00:40 (first read, producing) is under 120 s
    assert oee["micro_stop_s"] == 10.0  # the idle time seen before the kill


def test_a_stop_going_on_after_the_restart_is_a_micro_stop_if_it_ends_in_time() -> None:
    oee = stop_across_a_restart(120.0, local(9) + 40, state_back=IDLE)  # producing at 09:01:10
    assert oee["micro_stops"] == 1
    assert oee["micro_stop_s"] == 10.0 + 30.0


def test_a_stop_longer_than_the_threshold_across_a_restart_is_no_micro_stop() -> None:
    assert stop_across_a_restart(120.0, local(9) + 300)["micro_stops"] == 0
    assert stop_across_a_restart(120.0, local(9) + 100, state_back=IDLE)["micro_stops"] == 0


def test_a_stop_cut_by_a_clock_step_forward_is_timed_in_real_time() -> None:
    """Idle from 09:00:00; at 09:00:20 the wall clock jumps an hour ahead (NTP); production is back
    20 s of real time later (10 s offline for the jump, 10 s idle): a micro-stop, not an hour's stop."""
    setup = micro_setup(120.0)
    script = ScriptedMachine("m1", lambda t: IDLE if t >= local(9) else RUN, local(8), cycle_s=CYCLE_S)
    engine = KpiEngine(setup, local(8))
    replay(engine, [script], local(8), local(9) + 20, STEP)
    jump = 3600.0
    engine.clock_step(local(9) + 20, local(9) + 20 + jump)
    parts = 3600 // CYCLE_S
    for k in range(1, 30):
        t = local(9) + 20 + jump + k * STEP
        batch = [
            Sample("m1", "running", k >= 2, t),
            Sample("m1", "alarm", False, t),
            Sample("m1", "setup", False, t),
            Sample("m1", "count", float(parts), t),
            Sample("m1", "rejects", 0.0, t),
        ]
        engine.ingest(batch)
        engine.advance(t)
        if k >= 2:
            parts += STEP / CYCLE_S
    totals = engine.machine_totals(engine.machines["m1"], engine.period.key)
    assert totals.micro_stops == 1
    assert totals.micro_stop_s == 30.0  # the idle time seen: 20 s before the jump, 10 s after


def test_an_outage_that_a_restart_cuts_in_two_is_unobserved_as_a_whole() -> None:
    """Unreachable from 09:00; the agent is killed at 09:20 and back at 09:25; the machine answers
    again at 09:30. The parts read then were made unseen from 09:00:30 on, across the checkpoint."""
    machine = ScriptedMachine("m1", producing, local(8), cycle_s=CYCLE_S, reject_every=10**9)
    engine = KpiEngine(EXACT, local(8))
    outage = (local(9), local(9, 30))
    replay(engine, [machine], local(8), local(9, 20), STEP, outage=outage)
    engine = killed_and_restored(engine, EXACT, local(9, 25))
    records = replay(engine, [continued(machine, local(9, 25))], local(9, 25), local(10), STEP, outage=outage)
    records += engine.publish_current(local(10))
    oee = [r.fields for r in records if r.kind is RecordKind.OEE][-1]
    assert oee["produced_unobserved"] == (1800 - 30) / CYCLE_S
    assert oee["performance"] == 1.0


def test_a_reason_naming_a_tag_whose_read_failed_shows_a_question_mark_not_its_old_value() -> None:
    engine = KpiEngine(EXACT, local(8))
    t = local(8)
    engine.ingest([Sample("m1", "alarm", True, t), Sample("m1", "alarm_code", 1203, t)])
    records = engine.ingest(
        [Sample("m1", "alarm", False, t + 10), Sample("m1", "alarm_code", None, t + 10, Quality.BAD)]
    )
    records += engine.ingest(
        [Sample("m1", "alarm", True, t + 20), Sample("m1", "alarm_code", None, t + 20, Quality.BAD)]
    )
    reasons = [r.fields["reason"] for r in records if r.kind is RecordKind.STATE]
    assert reasons == [None, "alarm ?"]  # idle, then a fault whose code could not be read


def test_a_state_decided_by_fresh_rules_before_the_stale_one_is_known() -> None:
    """First match wins: a fault (alarm read good) is a fault whatever the failed `running` said;
    an alarm that could not be read leaves the state undecided whatever `running` says."""
    engine = KpiEngine(EXACT, local(8))
    t = local(8)
    engine.ingest(
        [Sample("m1", "alarm", False, t), Sample("m1", "setup", False, t), Sample("m1", "running", True, t)]
    )
    fault = engine.ingest(
        [
            Sample("m1", "alarm", True, t + 10),
            Sample("m1", "alarm_code", 7, t + 10),
            Sample("m1", "running", None, t + 10, Quality.BAD),
        ]
    )
    assert [(r.fields["state"], r.fields["reason"]) for r in fault] == [("fault", "alarm 7")]
    undecided = engine.ingest(
        [Sample("m1", "alarm", None, t + 20, Quality.BAD), Sample("m1", "running", True, t + 20)]
    )
    assert undecided == []  # held: fault until offline_after_s after t + 10, then no data
    engine.advance(t + 45)
    assert (engine.machines["m1"].state, engine.machines["m1"].reason) == (MachineState.OFFLINE, "no data")
    assert engine.machines["m1"].since == t + 10 + 30
