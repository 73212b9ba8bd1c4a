"""A workshop full of Chinese names (the shipped grinding-zh sample): it validates, runs, and its
names, shifts and crews are in every record, on MQTT and in InfluxDB, while ids and keys stay
ASCII; crews' day totals are the sums of their shifts and survive a checkpoint."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.kpi.checkpoint import restore, snapshot
from agent.kpi.engine import KpiEngine
from agent.records import Envelope, Record, RecordKind, from_json, to_json
from agent.sim.history import feed
from agent.sim.server import WorkshopSimulator
from agent.sinks.points import to_points
from agent.sinks.registry import topic_root
from tests.conftest import CONFIGS

ZH_SAMPLE = CONFIGS / "grinding-zh-workshop.yaml"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
POLL_S = 10.0
SUM_FIELDS = ("pbt_s", "apt_s", "setup_s", "idle_s", "fault_s", "ideal_s", "ideal_good_s", "produced", "good")


def at(day: int, hour: int) -> float:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=SHANGHAI).timestamp()


@pytest.fixture(scope="module")
def config() -> AgentConfig:
    return load_config(ZH_SAMPLE)


def simulator(config: AgentConfig, start: float | None = None) -> WorkshopSimulator:
    """The workshop's models from `start`, 22:00 by default (nothing is served): one history for
    every run that shares them."""
    began = at(24, 22) if start is None else start
    return WorkshopSimulator(config, lambda: began)


def run(
    config: AgentConfig, engine: KpiEngine, start: float, end: float, models: WorkshopSimulator | None = None
) -> list[Record]:
    """Every device read every POLL_S from start to end, as the simulator's models say."""
    return feed(config, engine, models or simulator(config), start, end, POLL_S)


@pytest.fixture(scope="module")
def records(config: AgentConfig) -> list[Record]:
    """22:00 on Tuesday 24 November to 02:00: the middle shift closes at midnight, so does the day."""
    engine = KpiEngine(build_engine_setup(config), at(24, 22))
    return run(config, engine, at(24, 22), at(25, 2))


def test_the_chinese_sample_validates_in_chinese(config: AgentConfig) -> None:
    workshop = config.workshop
    assert workshop.site.language == "zh-CN"
    assert workshop.name == "磨加工车间"
    assert [(s.key, s.display) for s in workshop.calendar.shifts] == [
        ("early", "早班"),
        ("middle", "中班"),
        ("night", "夜班"),
    ]
    assert [c.name for c in workshop.calendar.crews] == ["甲班", "乙班", "丙班", "丁班"]


def test_names_are_carried_in_records_next_to_ascii_ids(records: list[Record]) -> None:
    state = next(r for r in records if r.kind is RecordKind.STATE and r.fields["machine"] == "grinder-01")
    assert (state.fields["machine_name"], state.fields["line_name"]) == ("1号内沟磨床", "内圈沟道磨削线")
    middle = [r for r in records if r.kind is RecordKind.OEE and r.fields["shift"] == "middle"]
    assert middle
    for record in middle:
        assert record.fields["shift_name"] == "中班"
        assert (record.fields["crew"], record.fields["crew_name"]) == ("b", "乙班")  # day 3 of the cycle
    workshop = next(r for r in records if r.kind is RecordKind.WORKSHOP_OEE)
    assert workshop.fields["workshop_name"] == "磨加工车间"
    night = [r for r in records if r.fields.get("shift") == "night"]
    assert night
    assert {r.fields["crew_name"] for r in night} == {"甲班"}  # 25 November: day 4 of the cycle
    for record in records:
        for key, value in record.fields.items():
            assert key.isascii(), key
            if key in ("machine", "line", "shift", "crew", "period", "state", "kind"):
                assert value is None or str(value).isascii(), (key, value)


def test_a_crews_day_is_the_sum_of_its_shifts(records: list[Record]) -> None:
    """At midnight the day closes: crew b's totals are its middle shift's over the workshop (the
    agent started at 22:00, so the shifts before are no crew's here)."""
    crews = [r for r in records if r.kind is RecordKind.CREW_OEE]
    assert [(r.fields["crew"], r.fields["crew_name"], r.fields["day"]) for r in crews] == [
        ("b", "乙班", "2026-11-24")
    ]
    [shift] = [
        r
        for r in records
        if r.kind is RecordKind.WORKSHOP_OEE and r.fields["final"] and r.fields["shift"] == "middle"
    ]
    for name in SUM_FIELDS:
        assert crews[0].fields[name] == pytest.approx(shift.fields[name], abs=1e-3), name
    assert crews[0].fields["period"] == "day"
    energy = [r for r in records if r.kind is RecordKind.CREW_ENERGY]
    assert [r.fields["crew"] for r in energy] == ["b"]
    assert energy[0].fields["kwh"] > 0


def test_names_are_influx_fields_and_the_crew_a_tag(records: list[Record], config: AgentConfig) -> None:
    topics = topic_root(config)
    record = next(r for r in records if r.kind is RecordKind.OEE and r.fields["final"])
    [point] = to_points(Envelope("gw", 1, record), topics)
    assert point._tags["crew"] == "b"
    assert point._fields["machine_name"] == "1号内沟磨床"
    assert point._fields["shift_name"] == "中班"
    assert "machine_name" not in point._tags
    line = point.to_line_protocol()  # type: ignore[no-untyped-call]
    assert 'machine_name="1号内沟磨床"' in line
    crew = next(r for r in records if r.kind is RecordKind.CREW_OEE)
    [crew_point] = to_points(Envelope("gw", 2, crew), topics)
    assert (crew_point._tags["scope"], crew_point._tags["crew"]) == ("crew", "b")


def test_crew_records_have_their_own_topic_and_names_travel_as_utf8_json(
    records: list[Record], config: AgentConfig
) -> None:
    topics = topic_root(config)
    crew = next(r for r in records if r.kind is RecordKind.CREW_OEE)
    assert topics.topic(Envelope("gw", 1, crew)) == "tianhe-bearing/plant-1/grinding/_crew/b/oee"
    payload = Envelope("gw", 1, crew).payload_json()
    assert "乙班".encode() in payload  # UTF-8, not \\u escapes
    assert from_json(payload)["crew_name"] == "乙班"


def test_crew_totals_of_the_day_survive_a_checkpoint(config: AgentConfig, records: list[Record]) -> None:
    """Stopped at 23:59 mid-day and restored: the day closes with the same crew totals."""
    setup = build_engine_setup(config)
    engine = KpiEngine(setup, at(24, 22))
    models = simulator(config)
    first = run(config, engine, at(24, 22), at(25, 0) - 60, models)
    data: dict[str, Any] = from_json(to_json(snapshot(engine)))
    restored = restore(data, setup)
    assert restored.setup == setup
    rest = run(config, restored, at(25, 0) - 60, at(25, 2), models)
    crews = [r.fields for r in first + rest if r.kind in (RecordKind.CREW_OEE, RecordKind.CREW_ENERGY)]
    want = [r.fields for r in records if r.kind in (RecordKind.CREW_OEE, RecordKind.CREW_ENERGY)]
    assert crews == want


def test_a_checkpoint_from_before_names_and_crews_is_still_read(config: AgentConfig) -> None:
    """An agent upgraded across this change continues its shift: the new keys take defaults."""
    setup = build_engine_setup(config)
    engine = KpiEngine(setup, at(24, 22))
    run(config, engine, at(24, 22), at(24, 23))
    data = from_json(to_json(snapshot(engine)))
    for key in ("crew_day_totals", "crew_day_energy"):
        del data[key]
    for key in ("line_names", "names"):
        del data["setup"][key]
    for key in ("holidays", "workdays", "worked", "rotation"):
        del data["setup"]["calendar"][key]
    for machine in data["setup"]["machines"]:
        del machine["name"]
    restored = restore(data, setup)
    assert restored.setup.names.workshop == ""
    assert restored.setup.calendar.rotation is None
    records = restored.reconfigure(setup, at(24, 23) + 1)
    assert restored.setup == setup
    assert all(r.fields.get("machine_name") != "" for r in records)
