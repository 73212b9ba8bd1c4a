"""Micro-stops, product variants, maintenance windows, serial lines, day roll-ups, the night shift."""

from __future__ import annotations

import pytest

from agent.kpi.calendar import ShiftCalendar
from agent.kpi.engine import CounterSetup, EngineSetup, KpiEngine, LineSetup, MeterSetup
from agent.kpi.states import MachineState
from agent.records import RecordKind
from agent.samples import Sample
from tests.unit.kpi_fixtures import (
    DAY_AND_NIGHT,
    ScriptedMachine,
    engine_setup,
    finals,
    local,
    machine_setup,
    replay,
)

RUN, IDLE, FAULT = MachineState.PRODUCING, MachineState.IDLE, MachineState.FAULT


def with_micro_stops(threshold: float, *, as_performance: bool) -> EngineSetup:
    base = engine_setup()
    return EngineSetup(
        base.machines,
        base.meters,
        base.calendar,
        publish_interval_s=base.publish_interval_s,
        offline_after_s=base.offline_after_s,
        micro_stop_s=threshold,
        micro_stops_lower_performance=as_performance,
    )


def stops(t: float) -> MachineState:
    """Producing, with a 120 s idle stop at 09:00 and a 130 s fault at 10:00."""
    if local(9) <= t < local(9) + 120:
        return IDLE
    if local(10) <= t < local(10) + 130:
        return FAULT
    return RUN


@pytest.mark.parametrize("as_performance", [False, True])
def test_micro_stop_exactly_at_the_threshold_counts_one_second_over_does_not(as_performance: bool) -> None:
    engine = KpiEngine(with_micro_stops(120.0, as_performance=as_performance), local(8))
    records = replay(engine, [ScriptedMachine("m1", stops, local(8))], local(8), local(20), 10.0)
    [oee] = finals(records, RecordKind.OEE, machine="m1")
    assert oee["micro_stops"] == 1
    assert oee["micro_stop_s"] == 120.0
    if as_performance:  # Nakajima: the short stop is running time, a speed loss
        assert (oee["idle_s"], oee["fault_s"]) == (0.0, 130.0)
        assert oee["apt_s"] == 39_600.0 - 130.0
    else:  # ISO 22400: downtime, reported apart
        assert (oee["idle_s"], oee["fault_s"]) == (120.0, 130.0)
        assert oee["apt_s"] == 39_600.0 - 250.0


def test_micro_stops_off_by_default() -> None:
    engine = KpiEngine(engine_setup(), local(8))
    records = replay(engine, [ScriptedMachine("m1", stops, local(8))], local(8), local(12), 10.0)
    engine.advance(local(20))
    assert all(r.fields["micro_stops"] == 0 for r in records if r.kind is RecordKind.OEE)


def test_ideal_cycle_time_follows_the_product_variant() -> None:
    setup = machine_setup(ideal_cycle_s=4.0, variant_tag="program", ideal_cycle_by_variant={"2": 8.0})
    engine = KpiEngine(engine_setup(setup), local(8))
    t = local(8)
    for step in range(121):  # 10 parts per minute; program 1 for the first 10 min, program 2 after
        program = 1 if step < 60 else 2
        engine.ingest(
            [
                Sample("m1", "running", True, t),
                Sample("m1", "program", program, t),
                Sample("m1", "count", step, t),
            ]
        )
        t += 10
    [oee] = finals(engine.advance(local(20)), RecordKind.OEE, machine="m1")
    assert oee["ideal_s"] == 60 * 4.0 + 60 * 8.0  # the part counted at the changeover poll was program 1's


def test_maintenance_window_is_a_planned_stop() -> None:
    calendar = ShiftCalendar(DAY_AND_NIGHT, "Asia/Shanghai", maintenance=((local(14), local(16)),))
    base = engine_setup()
    engine = KpiEngine(EngineSetup(base.machines, (), calendar, offline_after_s=30.0), local(8))
    records = replay(engine, [ScriptedMachine("m1", lambda t: IDLE, local(8))], local(8), local(20), 60.0)
    [oee] = finals(records, RecordKind.OEE, machine="m1")
    assert oee["planned_stop_s"] == 3600.0 + 7200.0
    assert oee["pbt_s"] == 43_200.0 - 10_800.0


def test_serial_line_reports_its_constraint_machine() -> None:
    fast, slow = machine_setup("fast", ideal_cycle_s=2.0), machine_setup("slow", ideal_cycle_s=4.0)
    base = engine_setup(fast, slow)
    setup = EngineSetup(
        base.machines, (), base.calendar, offline_after_s=30.0, lines=(LineSetup("l1", "slow"),)
    )
    engine = KpiEngine(setup, local(8))
    machines = [
        ScriptedMachine("fast", lambda t: RUN if t < local(12) else IDLE, local(8)),
        ScriptedMachine("slow", lambda t: RUN, local(8)),
    ]
    records = replay(engine, machines, local(8), local(20), 60.0)
    [line] = finals(records, RecordKind.LINE_OEE)
    [slow_oee] = finals(records, RecordKind.OEE, machine="slow")
    assert line["constraint"] == "slow"
    assert line["oee"] == slow_oee["oee"]
    assert line["pbt_s"] == slow_oee["pbt_s"]


def test_day_roll_up_sums_its_shifts() -> None:
    engine = KpiEngine(engine_setup(), local(8))
    machine = ScriptedMachine("m1", lambda t: IDLE if local(10) <= t < local(11) else RUN, local(8))
    records = replay(engine, [machine], local(8), local(8, day=25), 60.0)
    shifts = finals(records, RecordKind.OEE, machine="m1")
    [day] = finals(records, RecordKind.OEE, period="day", machine="m1")
    assert [s["shift"] for s in shifts] == ["day", "night"]
    assert day["day"] == "2026-11-24"
    for key in ("pbt_s", "apt_s", "idle_s", "planned_stop_s", "produced", "good"):
        assert day[key] == pytest.approx(sum(s[key] for s in shifts), abs=0.002), key
    assert day["pbt_s"] == 86_400 - 3 * 1800  # three half-hour meal breaks
    [workshop_day] = finals(records, RecordKind.WORKSHOP_OEE, period="day")
    assert workshop_day["oee"] == day["oee"]


def test_night_shift_across_midnight_with_its_break() -> None:
    engine = KpiEngine(engine_setup(), local(20))
    records = replay(
        engine, [ScriptedMachine("m1", lambda t: RUN, local(20))], local(20), local(8, day=25), 30.0
    )
    [night] = finals(records, RecordKind.OEE, machine="m1")
    assert night["shift"] == "night"
    assert night["shift_start"] == "2026-11-24T12:00:00.000Z"
    assert (night["pbt_s"], night["planned_stop_s"]) == (12 * 3600 - 1800, 1800.0)
    assert night["produced"] == 12 * 3600 / 5  # the machine ran through its break: counted, flagged
    assert "produced_in_planned_stop" in night["flags"]


def test_meter_reset_is_flagged_and_no_energy_goes_negative() -> None:
    meter = MeterSetup("meter-1", "m1", CounterSetup("kwh", 2.0**32 * 0.01), max_kw=50.0)
    engine = KpiEngine(engine_setup(meters=(meter,)), local(8))
    t = local(8)
    for kwh in (5000.0, 5001.0, 5002.0, 0.5, 1.5):  # the meter was replaced after the third reading
        engine.ingest([Sample("m1", "running", True, t), Sample("meter-1", "kwh", kwh, t)])
        t += 600
    records = engine.advance(local(20, 1))  # the meter is silent: the shift closes after its settle time
    [energy] = finals(records, RecordKind.ENERGY, machine="m1")
    [oee] = finals(records, RecordKind.OEE, machine="m1")
    assert "meter_counter_reset" in oee["flags"]
    assert energy["kwh"] == pytest.approx(2.0 + 0.5 + 1.0)  # the reading after a reset counts from zero
    assert energy["kwh_producing"] == energy["kwh"]
