"""A metered machine that made parts while its meter, read all along, counted 0 kWh over a whole
shift (a meter not wired, a CT clamp fallen off, a wrong register): its kWh per part is unknown,
not 0, and its shift's OEE and energy records say why (`meter_silent`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from agent.kpi.engine import METER_SILENT, CounterSetup, KpiEngine, MeterSetup
from agent.records import Record, RecordKind
from agent.runtime.meter_silence import warn_silent_meters
from agent.samples import Sample
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup

KWH = CounterSetup("kwh", None)
PER_PART = ("kwh_per_unit", "kwh_per_good", "kgce_per_unit", "kgce_per_good", "co2_kg_per_unit")


def day_shift(*, parts_per_minute: int, kwh_at: Callable[[int], float]) -> list[Record]:
    """m1 (metered by meter-1) polled every minute from 08:00 to 20:01: the day shift closes."""
    meters = (MeterSetup("meter-1", "m1", KWH, max_kw=50.0), MeterSetup("meter-2", "m2", KWH, max_kw=50.0))
    setup = engine_setup(machine_setup("m1"), machine_setup("m2"), meters=meters, offline_after_s=300.0)
    engine = KpiEngine(setup, local(8))
    records: list[Record] = []
    for minute in range(12 * 60 + 2):
        t = local(8) + minute * 60.0
        batch = [Sample("meter-1", "kwh", kwh_at(minute), t), Sample("meter-2", "kwh", 100.0 + minute, t)]
        for machine, per_minute in (("m1", parts_per_minute), ("m2", 1)):
            batch += [
                Sample(machine, "running", per_minute > 0, t),
                Sample(machine, "count", float(minute * per_minute), t),
                Sample(machine, "rejects", 0.0, t),
            ]
        records += engine.ingest(batch) + engine.advance(t)
    return records


def closed(records: list[Record], kind: RecordKind, **match: object) -> dict[str, Any]:
    [fields] = [
        r.fields
        for r in records
        if r.kind is kind
        and r.fields.get("final")
        and r.fields.get("period") == "shift"
        and r.fields.get("shift") == "day"
        and all(r.fields.get(k) == v for k, v in match.items())
    ]
    return fields


def test_parts_made_while_the_meter_never_moved_flag_the_shift_and_leave_per_part_energy_null() -> None:
    records = day_shift(parts_per_minute=1, kwh_at=lambda minute: 5000.0)
    oee = closed(records, RecordKind.OEE, machine="m1")
    energy = closed(records, RecordKind.ENERGY, machine="m1")
    assert oee["produced"] > 600
    assert METER_SILENT in oee["flags"]
    assert energy["flags"] == [METER_SILENT]
    assert energy["kwh"] == 0.0  # what the meter said, kept for the audit
    for key in PER_PART:
        assert energy[key] is None, key
    # the line's kWh per part is m2's alone: m1's parts without energy do not dilute it
    line = closed(records, RecordKind.LINE_ENERGY)
    m2 = closed(records, RecordKind.ENERGY, machine="m2")
    assert line["kwh"] == pytest.approx(m2["kwh"])
    assert line["kwh_per_unit"] == pytest.approx(m2["kwh_per_unit"])
    assert METER_SILENT in closed(records, RecordKind.LINE_OEE)["flags"]
    # m2's meter moved: nothing said about it
    assert METER_SILENT not in closed(records, RecordKind.OEE, machine="m2")["flags"]
    assert m2["flags"] == []


def test_a_meter_that_moves_gives_per_part_energy_and_no_flag() -> None:
    records = day_shift(parts_per_minute=1, kwh_at=lambda minute: 5000.0 + minute * 0.1)
    oee = closed(records, RecordKind.OEE, machine="m1")
    energy = closed(records, RecordKind.ENERGY, machine="m1")
    assert METER_SILENT not in oee["flags"]
    assert energy["flags"] == []
    assert energy["kwh"] == pytest.approx(72.0, abs=0.2)
    assert energy["kwh_per_unit"] == pytest.approx(energy["kwh"] / oee["produced"])


def test_no_parts_and_a_still_meter_is_a_machine_at_rest_not_a_silent_meter() -> None:
    records = day_shift(parts_per_minute=0, kwh_at=lambda minute: 5000.0)
    oee = closed(records, RecordKind.OEE, machine="m1")
    energy = closed(records, RecordKind.ENERGY, machine="m1")
    assert oee["produced"] == 0
    assert METER_SILENT not in oee["flags"]
    assert energy["flags"] == []
    assert energy["kwh"] == 0.0


def test_the_flag_waits_for_the_shift_to_close() -> None:
    records = day_shift(parts_per_minute=1, kwh_at=lambda minute: 5000.0)
    running = [r.fields for r in records if r.kind is RecordKind.OEE and not r.fields["final"]]
    assert running
    assert all(METER_SILENT not in fields["flags"] for fields in running)


def test_a_silent_meter_is_logged_once_per_machine_and_shift(caplog: pytest.LogCaptureFixture) -> None:
    records = day_shift(parts_per_minute=1, kwh_at=lambda minute: 5000.0)
    with caplog.at_level(logging.WARNING):
        warn_silent_meters(records)
    lines = [r.getMessage() for r in caplog.records if "event=meter_silent" in r.getMessage()]
    assert len(lines) == 1
    assert "machine=m1" in lines[0]
    assert "meter=meter-1" in lines[0]
    assert "shift=day" in lines[0]
