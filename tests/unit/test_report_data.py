"""Shift, day and month report figures against a scripted shift whose truth is computed by hand
(tests/report_shift.py), through the real engine and the real history file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.history.store import HistoryStore
from agent.kpi.calendar import ShiftCalendar
from agent.records import Record, RecordKind
from agent.reports.build import ReportNotFoundError, Reports
from agent.reports.data import PeriodReport, Span, month_energy, pareto, period_report, timeline
from agent.reports.reasons import ReasonNamer, template_pattern
from tests.report_shift import (
    BREAK,
    END,
    PBT_S,
    SHIFT,
    START,
    TRUTH_M1,
    TRUTH_M2,
    TRUTH_PARETO,
    TRUTH_SPANS_M1,
    grinder_profile,
    shift_records,
)
from tests.unit.kpi_fixtures import SHANGHAI


def hhmm(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, SHANGHAI).strftime("%H:%M")


@pytest.fixture(scope="module")
def records() -> list[Record]:
    return shift_records()


def reports(tmp_path: Path, records: list[Record], language: str = "en") -> Reports:
    history = HistoryStore(tmp_path / "history.db", days=62, max_bytes=2**24, clock=lambda: END).open()
    for record in records:  # one batch per record: as a running agent commits them, bit by bit
        history.add([record])
    profile = grinder_profile()
    return Reports(
        history,
        ShiftCalendar((SHIFT,), "Asia/Shanghai"),
        ReasonNamer({"m1": profile, "m2": profile}, language),
    )


def shift_report(tmp_path: Path, records: list[Record], language: str = "en") -> PeriodReport:
    return reports(tmp_path, records, language).shift(dt.date(2026, 11, 24), "day")


def test_the_timeline_is_the_scripted_states(tmp_path: Path, records: list[Record]) -> None:
    report = shift_report(tmp_path, records)
    spans = report.timelines["m1"]
    assert [(s.state, hhmm(s.start), hhmm(s.end)) for s in spans] == TRUTH_SPANS_M1
    assert (report.start, report.end) == (START, END)
    assert report.planned_stops == (BREAK,)


def test_the_loss_breakdown_is_the_hand_computed_one(tmp_path: Path, records: list[Record]) -> None:
    report = shift_report(tmp_path, records)
    by_id = {m.scope: m for m in report.machines}
    m1, m2 = by_id["m1"], by_id["m2"]
    assert m1.losses is not None
    assert m2.losses is not None
    for key in ("apt_s", "fault_s", "setup_s", "idle_s", "speed_s", "quality_s", "valuable_s"):
        assert getattr(m1.losses, key) == pytest.approx(TRUTH_M1[key]), key
    for key in ("apt_s", "fault_s", "setup_s", "idle_s"):
        assert getattr(m2.losses, key) == pytest.approx(TRUTH_M2[key]), key
    parts = m1.losses
    assert (
        parts.setup_s + parts.idle_s + parts.fault_s + parts.speed_s + parts.quality_s + parts.valuable_s
        == (pytest.approx(PBT_S))
    )
    assert (m1.produced, m1.good, m2.produced, m2.good) == (1980, 1961, 2100, 2079)
    assert m1.oee == pytest.approx(7844 / 12600, abs=1e-4)
    assert (m1.kwh, m1.kwh_per_unit) == (TRUTH_M1["kwh"], TRUTH_M1["kwh_per_unit"])
    assert m1.carbon_gas == "co2"
    assert m1.carbon_kg == pytest.approx(19.0 * 0.5366, abs=1e-4)
    assert m2.kwh is None  # no meter: no figure, never 0


def test_the_pareto_is_the_stops_longest_first_without_the_break(
    tmp_path: Path, records: list[Record]
) -> None:
    report = shift_report(tmp_path, records)
    got = [(r.state, r.reason, r.seconds) for r in report.pareto]
    assert [(s, r.split(":")[0] if r else None, sec) for s, r, sec in got] == TRUTH_PARETO
    assert report.pareto[-1].cumulative == pytest.approx(1.0)
    assert report.pareto[0].share == pytest.approx(3600 / 6600)
    assert report.pareto[2].machines == ("m1", "m2")
    assert report.pareto[2].count == 2


@pytest.mark.parametrize(
    ("language", "text"), [("en", "alarm 4001: coolant pressure low"), ("zh-CN", "alarm 4001: 冷却液压力低")]
)
def test_alarm_codes_are_named_by_the_profile_in_the_sites_language(
    tmp_path: Path, records: list[Record], language: str, text: str
) -> None:
    assert shift_report(tmp_path, records, language).pareto[0].reason == text


def test_line_and_workshop_summaries_are_the_engines_roll_ups(tmp_path: Path, records: list[Record]) -> None:
    report = shift_report(tmp_path, records)
    assert [line.scope for line in report.lines] == ["l1"]
    assert report.workshop is not None
    assert report.workshop.losses is not None
    assert report.workshop.losses.pbt_s == pytest.approx(2 * PBT_S)
    assert report.workshop.produced == 1980 + 2100
    assert report.workshop.oee == pytest.approx((7844 + 8316) / (2 * PBT_S), abs=1e-4)  # never an average


def test_a_shift_the_calendar_does_not_have_says_what_there_is(tmp_path: Path, records: list[Record]) -> None:
    with pytest.raises(ReportNotFoundError, match="has no shift 'night'; its shifts: day"):
        reports(tmp_path, records).shift(dt.date(2026, 11, 24), "night")


def test_the_day_report_spans_the_days_shifts(tmp_path: Path, records: list[Record]) -> None:
    report = reports(tmp_path, records).day(dt.date(2026, 11, 24))
    assert (report.start, report.end, report.period) == (START, END, "day")
    assert [(s.state, hhmm(s.start)) for s in report.timelines["m1"]][:2] == [
        ("producing", "08:00"),
        ("fault", "09:00"),
    ]


def test_spans_are_clipped_to_the_window_and_start_in_the_state_before_it() -> None:
    def state(ts: float, value: str) -> Record:
        return Record(RecordKind.STATE, ts, {"machine": "m", "state": value, "reason": None})

    spans = timeline([state(0, "idle"), state(50, "fault"), state(150, "producing")], 100, 200)
    assert spans == {"m": (Span("fault", 100, 150, None), Span("producing", 150, 200, None))}


def test_a_stop_inside_a_planned_stop_is_no_loss() -> None:
    spans = {"m": (Span("idle", 0, 100, None), Span("fault", 100, 160, "alarm 1"))}
    result = pareto(spans, planned_stops=((0, 100), (150, 200)))
    assert [(r.state, r.seconds) for r in result] == [("fault", 50.0)]


def test_reason_templates_find_the_code_again() -> None:
    pattern = template_pattern("alarm {alarm_code:>6} on {axis}")
    assert pattern is not None
    found = pattern.match("alarm   1203 on X")
    assert found is not None
    assert found.groupdict() == {"v0": "1203", "v1": "X"}
    assert template_pattern("dressing/changeover") is None


def energy_day(kind: RecordKind, scope: str, day: str, kwh: float | None, per_unit: float | None) -> Record:
    key = "machine" if kind is RecordKind.ENERGY else "line"
    return Record(kind, 0.0, {key: scope, "line": "l1", "day": day, "kwh": kwh, "kwh_per_unit": per_unit})


def oee_day(kind: RecordKind, scope: str, day: str, produced: int) -> Record:
    key = "machine" if kind is RecordKind.OEE else "line"
    return Record(kind, 0.0, {key: scope, "line": "l1", "day": day, "produced": produced})


def test_the_months_energy_per_unit_is_its_kwh_over_its_parts() -> None:
    records = [
        oee_day(RecordKind.OEE, "m1", "2026-11-01", 1000),
        energy_day(RecordKind.ENERGY, "m1", "2026-11-01", 10.0, 0.01),
        oee_day(RecordKind.OEE, "m1", "2026-11-02", 10),
        energy_day(RecordKind.ENERGY, "m1", "2026-11-02", 2.0, 0.2),
        oee_day(RecordKind.OEE, "m1", "2026-11-03", 500),  # the meter was down: no kWh, parts left out
        energy_day(RecordKind.ENERGY, "m1", "2026-11-03", None, None),
        oee_day(RecordKind.LINE_OEE, "l1", "2026-11-01", 1000),
        energy_day(RecordKind.LINE_ENERGY, "l1", "2026-11-01", 10.0, 0.01),
    ]
    month = month_energy("2026-11", records)
    assert month.days == ("2026-11-01", "2026-11-02", "2026-11-03")
    (m1,) = month.machines
    assert (m1.kwh, m1.produced, m1.kwh_per_unit) == (12.0, 1010, round(12 / 1010, 6))  # not (0.01 + 0.2) / 2
    assert [d.kwh_per_unit for d in m1.days] == [0.01, 0.2, None]
    assert [line.scope for line in month.lines] == ["l1"]


def test_the_month_view_reads_the_days_records_of_that_month(tmp_path: Path, records: list[Record]) -> None:
    source = reports(tmp_path, records)
    history = source.history
    assert isinstance(history, HistoryStore)
    history.add([energy_day(RecordKind.ENERGY, "m1", "2026-11-30", 1.0, 0.5) | _final()])
    history.add([energy_day(RecordKind.ENERGY, "m1", "2026-12-01", 1.0, 0.5) | _final()])
    assert source.month("2026-11").days == ("2026-11-30",)
    with pytest.raises(ReportNotFoundError, match="'2026-13' is not a month"):
        source.month("2026-13")


class _final:  # noqa: N801 - reads as `record | _final()`: the record as a final day record
    def __ror__(self, record: Record) -> Record:
        return Record(record.kind, record.ts or END, {**record.fields, "period": "day", "final": True})


def test_machines_and_lines_follow_the_workshop_files_order() -> None:
    def oee(machine: str, line: str) -> Record:
        return Record(RecordKind.OEE, END, {"machine": machine, "line": line, "final": True, "pbt_s": 1.0})

    finals = [oee("a-first", "l2"), oee("z-second", "l1"), Record(RecordKind.LINE_OEE, END, {"line": "l1"})]
    finals.append(Record(RecordKind.LINE_OEE, END, {"line": "l2"}))
    report = period_report(
        finals, [], period="shift", day="d", shift="s", start=0, end=1, order=("l2", "z-second")
    )
    assert [m.scope for m in report.machines] == ["z-second", "a-first"]  # the unlisted one after
    assert [line.scope for line in report.lines] == ["l2", "l1"]
