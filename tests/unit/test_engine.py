"""The KPI engine over hours of shop-floor time, checked against hand-computed shifts."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.kpi.counters import CounterEvent
from agent.kpi.engine import COUNTER_FLAGS, DATA_GAP, PRODUCED_IN_BREAK, CounterSetup, KpiEngine, MeterSetup
from agent.kpi.states import MachineState
from agent.records import Record, RecordKind, rfc3339_ms
from agent.samples import Sample
from tests.unit.kpi_fixtures import (
    U32,
    ScriptedMachine,
    engine_setup,
    local,
    machine_setup,
    replay,
)

RUN, FAULT, SETUP, IDLE = MachineState.PRODUCING, MachineState.FAULT, MachineState.SETUP, MachineState.IDLE


def day_script(t: float) -> MachineState:
    """08-10 producing, 10-10:30 fault, 10:30-11:30 setup, 11:30-12 idle (lunch break),
    12-17 producing, 17-17:30 producing through the dinner break, 17:30-19 producing, 19-20 idle."""
    for until, state in (
        (local(10), RUN),
        (local(10, 30), FAULT),
        (local(11, 30), SETUP),
        (local(12), IDLE),
        (local(19), RUN),
        (local(20), IDLE),
    ):
        if t < until:
            return state
    return IDLE


def final(records: list[Record], kind: RecordKind, **match: object) -> dict[str, Any]:
    wanted = {"period": "shift", **match}
    found = [
        r.fields
        for r in records
        if r.kind is kind and r.fields.get("final") and all(r.fields.get(k) == v for k, v in wanted.items())
    ]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture(scope="module")
def day_records() -> list[Record]:
    meter = MeterSetup("meter-1", "m1", CounterSetup("kwh", None), max_kw=50.0)
    engine = KpiEngine(engine_setup(meters=(meter,)), local(8))
    machine = ScriptedMachine("m1", day_script, local(8))
    return replay(engine, [machine], local(8), local(20), 10.0, meter=("m1", "meter-1"))


def test_day_shift_times_to_the_second(day_records: list[Record]) -> None:
    oee = final(day_records, RecordKind.OEE, machine="m1")
    assert oee["shift"] == "day"
    assert oee["shift_start"] == "2026-11-24T00:00:00.000Z"
    assert oee["planned_stop_s"] == 3600.0
    assert oee["pbt_s"] == 39_600.0
    assert oee["apt_s"] == 30_600.0
    assert (oee["fault_s"], oee["setup_s"], oee["idle_s"]) == (1800.0, 3600.0, 3600.0)
    assert oee["offline_s"] == 0.0
    assert oee["no_shift_s"] == 0.0


def test_day_shift_counts_and_oee(day_records: list[Record]) -> None:
    oee = final(day_records, RecordKind.OEE, machine="m1")
    assert oee["produced"] == 6480  # 2 + 5 + 0.5 (in the break) + 1.5 hours at one part per 5 s
    assert oee["good"] == 6480 - 64
    assert oee["availability"] == round(30_600 / 39_600, 4)
    assert oee["performance"] == round(6480 * 4 / 30_600, 4)
    assert oee["quality"] == round(6416 / 6480, 4)
    assert oee["oee"] == round(6416 * 4 / 39_600, 4)
    assert PRODUCED_IN_BREAK in oee["flags"]


def test_day_shift_energy_split_by_state(day_records: list[Record]) -> None:
    energy = final(day_records, RecordKind.ENERGY, machine="m1")
    assert energy["kwh_producing"] == pytest.approx(6.0 * 30_600 / 3600)
    # fault, setup, idle and both breaks (one of them spent producing at 6 kW) are energy without output
    assert energy["kwh_idle"] == pytest.approx(2.0 * (1800 + 3600 + 3600 + 1800) / 3600 + 6.0 * 1800 / 3600)
    assert energy["kwh"] == pytest.approx(60.0)
    assert energy["kwh_per_unit"] == pytest.approx(60.0 / 6480, abs=1e-6)
    assert energy["co2_kg"] == pytest.approx(60.0 * 0.5366)  # a CO2-only factor: co2_kg, never co2e_kg
    assert "co2e_kg" not in energy
    assert (energy["grid_factor"], energy["grid_factor_year"], energy["kg_co2_per_kwh"]) == (
        "cn-mee-2022-national",
        2022,
        0.5366,
    )
    assert energy["kgce"] == pytest.approx(60.0 * 0.1229)  # GB/T 2589-2020 equivalent value
    assert energy["kgce_per_unit"] == pytest.approx(60.0 * 0.1229 / 6480, abs=1e-6)


def test_state_changes_are_published_with_reasons(day_records: list[Record]) -> None:
    states = [r.fields for r in day_records if r.kind is RecordKind.STATE]
    # each change once: the repeats with every publication carry the since of their change
    changes = list(dict.fromkeys((f["since"], f["state"], f["reason"]) for f in states))
    assert changes == [
        (rfc3339_ms(local(8)), "producing", None),
        (rfc3339_ms(local(10)), "fault", "alarm 1203"),
        (rfc3339_ms(local(10, 30)), "setup", None),
        (rfc3339_ms(local(11, 30)), "idle", None),
        (rfc3339_ms(local(12)), "producing", None),
        (rfc3339_ms(local(19)), "idle", None),
    ]
    first_seen: dict[str, float] = {}
    for record in day_records:
        if record.kind is RecordKind.STATE:
            first_seen.setdefault(record.fields["since"], record.ts)
    assert all(rfc3339_ms(ts) == since for since, ts in first_seen.items())  # published at the change


def test_every_state_is_repeated_with_each_publication_since_its_change(day_records: list[Record]) -> None:
    """A store asked for the latest state within the last minutes sees every machine."""
    publications = sorted({r.ts for r in day_records if r.kind is RecordKind.OEE and not r.fields["final"]})
    states = [r for r in day_records if r.kind is RecordKind.STATE]
    repeats = {r.ts: (r.fields["state"], r.fields["since"], r.fields["reason"]) for r in states}
    assert set(publications) <= set(repeats)
    assert repeats[local(9)] == ("producing", rfc3339_ms(local(8)), None)
    assert repeats[local(11)] == ("setup", rfc3339_ms(local(10, 30)), None)
    assert repeats[local(18)] == ("producing", rfc3339_ms(local(12)), None)


def test_periodic_publication_is_not_final(day_records: list[Record]) -> None:
    interim = [r for r in day_records if r.kind is RecordKind.OEE and not r.fields["final"]]
    assert len(interim) == 11  # hourly, 09:00 to 19:00; the 20:00 one is the final
    assert all(r.fields["shift"] == "day" for r in interim)


@pytest.mark.parametrize(
    ("polled_until", "stop_at"),
    [(local(8, 59), local(9)), (local(9, 10), local(9, 30))],
    ids=["periodic-due-at-the-stop", "between-publications"],
)
def test_a_stop_publishes_the_period_so_far_once(polled_until: float, stop_at: float) -> None:
    """Two records of one series at one millisecond would be one point in the store: one of them lost."""
    engine = KpiEngine(engine_setup(), local(8))
    replay(engine, [ScriptedMachine("m1", day_script, local(8))], local(8), polled_until, 10.0)
    last_word = engine.publish_current(stop_at)
    oee = [r for r in last_word if r.kind is RecordKind.OEE]
    assert [(r.ts, r.fields["final"]) for r in oee] == [(stop_at, False)]
    assert engine.advance(stop_at + 1.0) == []  # the periodic clock restarts from the last word


def test_line_and_workshop_roll_ups_of_one_machine_equal_the_machine(day_records: list[Record]) -> None:
    machine = final(day_records, RecordKind.OEE, machine="m1")
    for kind in (RecordKind.LINE_OEE, RecordKind.WORKSHOP_OEE):
        rolled = final(day_records, kind)
        for key in ("pbt_s", "apt_s", "produced", "good", "availability", "performance", "quality", "oee"):
            assert rolled[key] == machine[key], key


def test_outage_is_offline_time_and_counts_across_it_are_flagged() -> None:
    engine = KpiEngine(engine_setup(), local(8))
    machine = ScriptedMachine("m1", lambda t: RUN, local(8))
    records = replay(engine, [machine], local(8), local(20), 10.0, outage=(local(14), local(15)))
    oee = final(records, RecordKind.OEE, machine="m1")
    assert oee["offline_s"] == 3600.0 - 30.0  # offline 30 s after the last good read
    assert oee["pbt_s"] == 39_600.0 - 3570.0
    assert oee["produced"] == 43_200 / 5  # nothing lost: made during the outage (and breaks), counted after
    assert DATA_GAP in oee["flags"]
    states = [(r.ts, r.fields["state"]) for r in records if r.kind is RecordKind.STATE]
    assert (local(14) + 30, "offline") in states
    assert (local(15), "producing") in states


def test_counter_wrap_at_two_to_the_32_loses_no_part() -> None:
    engine = KpiEngine(engine_setup(), local(8))
    machine = ScriptedMachine("m1", lambda t: RUN, local(8), counter_start=U32 - 100)
    records = replay(engine, [machine], local(8), local(9), 10.0)
    oee = [r.fields for r in records if r.kind is RecordKind.OEE][-1]
    assert oee["produced"] == 720
    assert COUNTER_FLAGS[CounterEvent.WRAP] in oee["flags"]


def test_reset_and_spike_are_flagged_and_not_counted_as_parts() -> None:
    engine = KpiEngine(engine_setup(), local(8))
    t = local(8)
    for count in (100, 110, 9_000_000, 120, 5, 15):  # a spike read, then a counter reset to 0
        engine.ingest([Sample("m1", "running", True, t), Sample("m1", "count", count, t)])
        t += 10
    oee = final(engine.advance(local(20)), RecordKind.OEE, machine="m1")
    assert oee["produced"] == 10 + 10 + 5 + 10  # 100->110, 110->120 past the spike, reset to 5, 5->15
    assert {COUNTER_FLAGS[CounterEvent.SPIKE], COUNTER_FLAGS[CounterEvent.RESET]} <= set(oee["flags"])


def test_quality_from_a_downstream_sorter() -> None:
    assembler = machine_setup("asm", line="a1", ideal_cycle_s=2.0, quality_from="sorter")
    sorter = machine_setup("sorter", line="a1", ideal_cycle_s=2.0)
    engine = KpiEngine(engine_setup(assembler, sorter), local(8))
    machines = [
        ScriptedMachine("asm", lambda t: RUN, local(8), cycle_s=2.5, reject_every=10**9),
        ScriptedMachine("sorter", lambda t: RUN, local(8), cycle_s=2.5, reject_every=20),
    ]
    records = replay(engine, machines, local(8), local(9), 10.0)
    last = {r.fields["machine"]: r.fields for r in records if r.kind is RecordKind.OEE}
    assert last["sorter"]["quality"] == round(1 - 72 / 1440, 4)
    assert last["asm"]["quality"] == last["sorter"]["quality"]


def test_producing_outside_the_calendar_is_counted_and_flagged() -> None:
    from agent.kpi.calendar import ShiftDef

    engine = KpiEngine(engine_setup(shifts=(ShiftDef("day", 8 * 60, 16 * 60),)), local(16))
    machine = ScriptedMachine("m1", lambda t: RUN, local(16))
    records = replay(engine, [machine], local(16), local(18), 10.0)
    engine.advance(local(23, 59))
    no_shift = [r.fields for r in records if r.kind is RecordKind.OEE][-1]
    assert no_shift["shift"] == "no_shift"
    assert no_shift["produced"] == 7200 / 5
    assert no_shift["no_shift_s"] == 7200.0
    assert no_shift["pbt_s"] == 0.0
    assert no_shift["oee"] is None


# --- invariants over random event streams ------------------------------------------------------

segment = st.tuples(st.integers(1, 360), st.sampled_from([RUN, FAULT, SETUP, IDLE]))


@settings(max_examples=40)
@given(st.lists(segment, min_size=1, max_size=30), st.integers(0, 2**16), st.booleans())
def test_invariants_over_random_streams(
    segments: list[tuple[int, MachineState]], seed: int, outage: bool
) -> None:
    """Times add up to the wall time; A and Q within [0, 1]; energy never negative."""
    start = local(6) + (seed % 86_400)
    bounds = []
    t = start
    for minutes, state in segments:
        t += minutes * 60
        bounds.append((t, state))

    def script(now: float) -> MachineState:
        return next((state for until, state in bounds if now < until), IDLE)

    meter = MeterSetup("meter-1", "m1", CounterSetup("kwh", None), max_kw=50.0)
    engine = KpiEngine(engine_setup(meters=(meter,)), start)
    end = bounds[-1][0]
    window = (start + (end - start) / 3, start + (end - start) / 2) if outage else None
    records = replay(
        engine,
        [ScriptedMachine("m1", script, start)],
        start,
        end,
        60.0,
        outage=window,
        meter=("m1", "meter-1"),
    )
    finals = [
        r.fields
        for r in records
        if r.kind is RecordKind.OEE and r.fields["final"] and r.fields["period"] == "shift"
    ]
    open_totals = engine.machine_totals(engine.machines["m1"], engine.period.key)
    accounted = sum(f["pbt_s"] + f["planned_stop_s"] + f["no_shift_s"] + f["offline_s"] for f in finals)
    accounted += open_totals.calendar_s
    assert accounted == pytest.approx(end - start, abs=0.001 * (len(finals) + 1) * 4)
    for record in records:
        fields = record.fields
        for key in ("availability", "quality"):
            if fields.get(key) is not None:
                assert 0.0 <= fields[key] <= 1.0
        if record.kind is RecordKind.ENERGY:
            assert all(fields[k] >= 0 for k in ("kwh", "kwh_producing", "kwh_idle", "kwh_no_shift"))


@given(st.randoms(use_true_random=False))
def test_order_of_identical_timestamp_samples_does_not_change_totals(rng: random.Random) -> None:
    machines = [machine_setup("a"), machine_setup("b")]
    meter = MeterSetup("meter-a", "a", CounterSetup("kwh", None), max_kw=50.0)

    def run(shuffle: bool) -> list[tuple[object, ...]]:
        engine = KpiEngine(engine_setup(*machines, meters=(meter,)), local(9))
        for step in range(120):
            t = local(9) + step * 30
            batch = [Sample(m, "running", step % 7 != 0, t) for m in ("a", "b")]
            batch += [Sample(m, "count", step * 5, t) for m in ("a", "b")]
            batch.append(Sample("meter-a", "kwh", 100 + step * 0.05, t))
            if shuffle:
                rng.shuffle(batch)
            engine.ingest(batch)
            engine.advance(t)
        return [(v.id, v.state, v.totals, v.energy) for v in engine.views()]

    assert run(False) == run(True)
