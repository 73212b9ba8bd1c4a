"""A machine taken out of the configuration (by a reload, or while the agent was down and it
restarts from a checkpoint that still has it): what it made before is never lost and never a crash.

Its figures up to the removal stay in the shift it was removed in (published final once more,
offline from the removal, flagged machine_removed) and in that day's record, with its line's and
the workshop's roll-ups; then it is gone.
"""

from __future__ import annotations

from typing import Any

from agent.kpi.checkpoint import restore, snapshot
from agent.kpi.engine import CounterSetup, KpiEngine, MeterSetup
from agent.records import Record, RecordKind, from_json, to_json
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup, replay
from tests.unit.test_engine_reload import STEP, continued, machine

METER = MeterSetup("meter-2", "m2", CounterSetup("kwh", None), max_kw=50.0)
BOTH = engine_setup(machine_setup("m1"), machine_setup("m2"), meters=(METER,))
ONLY_M1 = engine_setup(machine_setup("m1"))
PARTS_PER_HOUR = 3600 / 5.0


def day_record(records: list[Record], kind: RecordKind, **match: str) -> dict[str, Any]:
    [fields] = [
        r.fields
        for r in records
        if r.kind is kind
        and r.fields.get("period") == "day"
        and all(r.fields.get(k) == v for k, v in match.items())
    ]
    return fields


def shift_final(records: list[Record], kind: RecordKind, shift: str, **match: str) -> dict[str, Any]:
    [fields] = [
        r.fields
        for r in records
        if r.kind is kind
        and r.fields.get("period") == "shift"
        and r.fields.get("shift") == shift
        and r.fields.get("final")
        and all(r.fields.get(k) == v for k, v in match.items())
    ]
    return fields


def through_restart(engine: KpiEngine, now: float) -> tuple[KpiEngine, list[Record]]:
    """What agent/runtime/continuity.py does: restore under the current setup, resume, reconfigure."""
    restored = restore(from_json(to_json(snapshot(engine))), ONLY_M1)
    records = restored.resume(now)
    records += restored.reconfigure(ONLY_M1, now)
    return restored, records


def first_hours(until: float) -> tuple[KpiEngine, list[Record]]:
    engine = KpiEngine(BOTH, local(8))
    records = replay(engine, [machine("m1"), machine("m2")], local(8), until, STEP, meter=("m2", "meter-2"))
    return engine, records


def finish_day(engine: KpiEngine, start: float) -> list[Record]:
    """m1 goes on alone to the end of the production day (08:00 next day) and a little past it."""
    return replay(engine, [continued(machine("m1"), start)], start, local(8, 2, day=25), 60.0)


def test_a_machine_removed_while_down_after_its_shift_closed_is_in_the_day_record() -> None:
    engine, records = first_hours(local(21))  # the day shift closed final at 20:00 with m2 in it
    day_m2 = shift_final(records, RecordKind.OEE, "day", machine="m2")
    restored, records_after = through_restart(engine, local(21, 5))
    records_after += finish_day(restored, local(21, 5))  # crashed with KeyError 'm2' at 08:00

    m2_day = day_record(records_after, RecordKind.OEE, machine="m2")
    night_m2 = shift_final(records_after, RecordKind.OEE, "night", machine="m2")
    assert m2_day["produced"] == day_m2["produced"] + night_m2["produced"]
    assert night_m2["produced"] == PARTS_PER_HOUR  # 20:00 to 21:00, before the restart
    assert "machine_removed" in night_m2["flags"]
    assert "machine_removed" in m2_day["flags"]  # a day record carries its shifts' flags
    workshop = day_record(records_after, RecordKind.WORKSHOP_OEE)
    assert {"machine_removed", "agent_restart"} <= set(workshop["flags"])  # and a roll-up its parts'
    assert "machine_removed" not in day_record(records_after, RecordKind.OEE, machine="m1")["flags"]
    m1_day = day_record(records_after, RecordKind.OEE, machine="m1")
    assert workshop["produced"] == m1_day["produced"] + m2_day["produced"]
    m2_energy = day_record(records_after, RecordKind.ENERGY, machine="m2")
    assert m2_energy["kwh"] is not None
    assert m2_energy["kwh"] > 0
    later = [r for r in records_after if r.ts > local(8, 1, day=25) and r.fields.get("machine") == "m2"]
    assert later == [], "after its day closed a removed machine is gone"


def test_a_machine_removed_by_a_reload_keeps_its_parts_in_the_shift_and_the_day() -> None:
    engine, records = first_hours(local(10))
    records += engine.reconfigure(ONLY_M1, local(10))
    records += finish_day(engine, local(10) + STEP)

    m2 = shift_final(records, RecordKind.OEE, "day", machine="m2")
    assert m2["produced"] == 2 * PARTS_PER_HOUR  # 08:00 to 10:00
    assert "machine_removed" in m2["flags"]
    assert m2["apt_s"] == 2 * 3600
    line = shift_final(records, RecordKind.LINE_OEE, "day", line="l1")
    m1 = shift_final(records, RecordKind.OEE, "day", machine="m1")
    assert line["produced"] == m1["produced"] + m2["produced"]
    assert day_record(records, RecordKind.OEE, machine="m2")["produced"] == 2 * PARTS_PER_HOUR
    night = [r for r in records if r.fields.get("shift") == "night" and r.fields.get("machine") == "m2"]
    assert night == [], "a removed machine is not published for the shifts after its removal"


def test_a_checkpoint_taken_after_a_removal_restores_and_keeps_the_removed_machines_day() -> None:
    engine, records = first_hours(local(21))
    records += engine.reconfigure(ONLY_M1, local(21))  # removed by a reload; then a restart
    restored, records_after = through_restart(engine, local(21, 5))
    records_after += finish_day(restored, local(21, 5))
    day_m2 = shift_final(records, RecordKind.OEE, "day", machine="m2")
    night_m2 = shift_final(records_after, RecordKind.OEE, "night", machine="m2")
    assert day_record(records_after, RecordKind.OEE, machine="m2")["produced"] == (
        day_m2["produced"] + night_m2["produced"]
    )


def test_a_checkpoint_whose_day_totals_name_a_machine_it_has_no_setup_for_keeps_them() -> None:
    """What an older agent left after removing a machine by a reload: its day totals without its
    setup. They stay in the day's records (the machine under an unknown line) instead of a crash."""
    engine, _ = first_hours(local(21))
    data = from_json(to_json(snapshot(engine)))
    data["setup"]["machines"] = [m for m in data["setup"]["machines"] if m["id"] != "m2"]
    data["setup"]["meters"] = []
    del data["machines"]["m2"]
    del data["meters"]["meter-2"]
    del data["retired"]
    restored = restore(data, ONLY_M1)
    records = restored.resume(local(21, 5)) + finish_day(restored, local(21, 5))
    m2_day = day_record(records, RecordKind.OEE, machine="m2")
    assert m2_day["produced"] == 12 * PARTS_PER_HOUR
    assert m2_day["line"] == "unknown"
