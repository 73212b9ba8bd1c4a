"""A configuration reload (SIGHUP) mid-shift: what stays keeps its figures, what is new starts clean."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from agent.kpi.calendar import ShiftCalendar, ShiftDef
from agent.kpi.engine import CounterSetup, EngineSetup, KpiEngine
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind
from tests.unit.kpi_fixtures import DAY_AND_NIGHT, ScriptedMachine, engine_setup, local, machine_setup, replay

STEP = 10.0  # with 5 s cycles every step adds exactly two parts, so a split replay counts the same


def producing(_t: float) -> MachineState:
    return MachineState.PRODUCING


def idle_after_nine(t: float) -> MachineState:
    return MachineState.IDLE if t >= local(9) else MachineState.PRODUCING


def machine(machine_id: str, state_at: Any = producing, start: float = local(8)) -> ScriptedMachine:
    return ScriptedMachine(machine_id, state_at, start, reject_every=10**9)


def continued(script: ScriptedMachine, at: float) -> ScriptedMachine:
    """The same machine, its counter carried on from where it stood at `at`."""
    parts = int(script.producing_seconds(at, STEP) / script.cycle_s)
    return replace(script, counter_start=script.counter_start + parts)


def final_shift(records: list[Record], machine_id: str) -> dict[str, Any]:
    [fields] = [
        r.fields
        for r in records
        if r.kind is RecordKind.OEE
        and r.fields.get("machine") == machine_id
        and r.fields["final"]
        and r.fields["period"] == "shift"
    ]
    return fields


def run_split(
    first: EngineSetup, second: EngineSetup, scripts: list[ScriptedMachine], at: float
) -> list[Record]:
    engine = KpiEngine(first, local(8))
    first_ids = {m.id for m in first.machines}
    records = replay(engine, [s for s in scripts if s.id in first_ids], local(8), at, STEP)
    records += engine.reconfigure(second, at)
    second_ids = {m.id for m in second.machines}
    later = [continued(s, at + STEP) for s in scripts if s.id in second_ids]
    return records + replay(engine, later, at + STEP, local(20, 1), STEP)


def test_a_machine_that_stays_keeps_its_shift_figures_across_a_reload() -> None:
    m1 = machine("m1", idle_after_nine)
    without_reload = replay(KpiEngine(engine_setup(), local(8)), [m1], local(8), local(20, 1), STEP)
    both = engine_setup(machine_setup("m1"), machine_setup("m2"))
    with_reload = run_split(engine_setup(), both, [m1, machine("m2")], local(10))

    expected, got = final_shift(without_reload, "m1"), final_shift(with_reload, "m1")
    for key in ("produced", "good", "pbt_s", "apt_s", "idle_s", "availability", "performance", "oee"):
        assert got[key] == expected[key], key


def test_a_new_machine_starts_offline_at_the_reload_and_counts_only_what_follows() -> None:
    both = engine_setup(machine_setup("m1"), machine_setup("m2"))
    records = run_split(engine_setup(), both, [machine("m1"), machine("m2")], local(10))
    m2 = final_shift(records, "m2")
    # 10:00 to 20:00 less the two half-hour breaks, one step of it offline before the first sample;
    # parts are counted from that first sample, in the breaks too
    assert m2["pbt_s"] == 9 * 3600 - STEP
    assert m2["produced"] == (10 * 3600 - STEP) / 5.0


def test_a_removed_machine_is_published_so_far_then_once_final_then_no_more() -> None:
    both = engine_setup(machine_setup("m1"), machine_setup("m2"))
    engine = KpiEngine(both, local(8))
    records = replay(engine, [machine("m1"), machine("m2")], local(8), local(10), STEP)
    at_reload = engine.reconfigure(engine_setup(), local(10))
    [last_m2] = [r.fields for r in at_reload if r.kind is RecordKind.OEE and r.fields.get("machine") == "m2"]
    assert last_m2["final"] is False
    assert last_m2["produced"] == 2 * 3600 / 5.0
    later = replay(engine, [continued(machine("m1"), local(10) + STEP)], local(10) + STEP, local(20, 1), STEP)
    # its parts stay in the shift it was removed in: one final, offline from the removal, flagged
    [m2_final] = [
        r.fields for r in records + later if r.fields.get("machine") == "m2" and r.fields.get("final")
    ]
    assert m2_final["produced"] == 2 * 3600 / 5.0
    assert m2_final["apt_s"] == 2 * 3600
    assert "machine_removed" in m2_final["flags"]
    states = [r.fields for r in later if r.kind is RecordKind.STATE and r.fields["machine"] == "m2"]
    assert states == [], "a removed machine's state is not published again"
    assert final_shift(later, "m1")["produced"] == 12 * 3600 / 5.0  # the whole day shift, reload or not


def test_a_counter_moved_to_another_register_starts_a_new_baseline_instead_of_a_spike() -> None:
    moved = machine_setup("m1", ideal_cycle_s=4.0)
    moved = replace(moved, produced=CounterSetup("rejects", 2.0**32))  # a counter that stands at 0
    records = run_split(engine_setup(), engine_setup(moved), [machine("m1")], local(10))
    fields = final_shift(records, "m1")
    assert fields["produced"] == 2 * 3600 / 5.0  # what the old counter counted; nothing after
    assert "counter_spike_ignored" not in fields.get("flags", [])
    assert "counter_reset" not in fields.get("flags", [])


def test_a_changed_shift_plan_closes_the_current_shift_at_the_reload() -> None:
    early = (ShiftDef("early", 6 * 60, 18 * 60, ()), ShiftDef("late", 18 * 60, 6 * 60, ()))
    new_plan = EngineSetup(
        (machine_setup(),),
        (),
        ShiftCalendar(early, "Asia/Shanghai"),
        publish_interval_s=3600.0,
        offline_after_s=30.0,
    )
    records = run_split(engine_setup(), new_plan, [machine("m1")], local(10))
    finals = [
        r.fields
        for r in records
        if r.kind is RecordKind.OEE and r.fields.get("machine") == "m1" and r.fields["final"]
    ]
    day = next(f for f in finals if f["shift"] == "day")
    assert day["pbt_s"] == 2 * 3600  # 08:00 to 10:00, closed by the reload
    early_shift = next(f for f in finals if f["shift"] == "early")
    assert early_shift["pbt_s"] == 8 * 3600  # 10:00 to 18:00 under the new plan


def test_an_unchanged_calendar_is_equal_whatever_it_has_cached() -> None:
    used = ShiftCalendar(DAY_AND_NIGHT, "Asia/Shanghai")
    used.period_at(local(9))
    assert used == ShiftCalendar(DAY_AND_NIGHT, "Asia/Shanghai")
