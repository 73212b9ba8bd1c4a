"""What people read in the terminal, in English and in Chinese, at 80 columns and piped: golden
views and shift summaries, and `plan`, `validate`, `status` and `run --once` checked so that nothing
is wider than the terminal, no word is cut, and a piped row is one line.

Golden files are tests/golden/*.txt; after a deliberate change, write them anew with
UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import zoneinfo
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len
from rich.console import Console

from agent.cli import cmd_plan
from agent.commands.run_once import DeviceReading, readings_table
from agent.commands.status import print_status
from agent.commands.view import machine_table, shift_summary
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.i18n import Catalogue, catalogue
from agent.kpi.engine import KpiEngine
from agent.records import Record
from agent.samples import DeviceStatus, Quality, Sample
from agent.terminal import UNBOUNDED, Column, FittedTable, plain, print_lines, wrap_words
from tests.conftest import CONFIGS, SAMPLE_WORKSHOP
from tests.unit.test_chinese_workshop import run, simulator

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
SAMPLES = {"en": SAMPLE_WORKSHOP, "zh-CN": CONFIGS / "grinding-zh-workshop.yaml"}
WIDTHS = {"80": 80, "piped": None}


def at(hour: int, minute: int = 0) -> float:
    return dt.datetime(2026, 11, 24, hour, minute, tzinfo=SHANGHAI).timestamp()


def rendered(table: FittedTable, width: int | None) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width or UNBOUNDED, color_system=None, soft_wrap=width is None)
    console.print(table.render(width))
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path}: UPDATE_GOLDEN=1 writes it anew"


def assert_whole(text: str, table: FittedTable, width: int | None) -> None:
    """No line wider than the terminal; every word of every shown cell on one line; piped, every
    row's cells on one line."""
    lines = text.splitlines()
    if width is not None:
        assert max(cell_len(line) for line in lines) <= width
    indexes = table.shown(width)
    for row in table.rows:
        cells = [plain(row.cells[i]) for i in indexes]
        for cell in cells:
            for word in cell.split():
                assert any(word in line for line in lines), (word, cell)
        if width is None:
            assert any(all(cell in line for cell in cells) for line in lines), cells


class Shift:
    """A sample workshop run by the KPI engine from 07:00 to 08:30: the night shift closes at 08:00."""

    def __init__(self, language: str) -> None:
        self.config = load_config(SAMPLES[language])
        self.words = catalogue(language)
        self.engine = KpiEngine(build_engine_setup(self.config), at(7))
        models = simulator(self.config, at(7))
        self.records: list[Record] = run(self.config, self.engine, at(7), at(8, 30), models)


@pytest.fixture(scope="module", params=list(SAMPLES))
def shift(request: pytest.FixtureRequest) -> Shift:
    return Shift(request.param)


@pytest.mark.parametrize("where", list(WIDTHS))
def test_the_live_view_golden(shift: Shift, where: str) -> None:
    width = WIDTHS[where]
    table = machine_table(shift.engine, "Asia/Shanghai", at(8, 30), shift.words)
    text = rendered(table, width)
    check_golden(f"view-{shift.words.language}-{where}", text)
    assert_whole(text, table, width)


@pytest.mark.parametrize("where", list(WIDTHS))
def test_the_shift_summary_golden(shift: Shift, where: str) -> None:
    width = WIDTHS[where]
    summary = shift_summary(shift.records, shift.words, "Asia/Shanghai")
    assert summary is not None
    text = rendered(summary, width)
    check_golden(f"summary-{shift.words.language}-{where}", text)
    assert_whole(text, summary, width)
    if shift.words.language == "zh-CN":
        assert "夜班（丁班）已结束（2026-11-24 00:00 开始）" in text  # the night shift's crew that day
        assert "1号内沟磨床" in text
        assert "磨加工车间" in text


def test_the_chinese_view_names_states_and_shift_in_chinese() -> None:
    shift = Shift("zh-CN")
    text = rendered(machine_table(shift.engine, "Asia/Shanghai", at(8, 30), shift.words), None)
    assert "早班（甲班），08:00 起" in text
    assert "1号内沟磨床" in text
    assert "内圈沟道磨削线" in text
    assert any(state in text for state in ("运行", "待机", "故障", "换型调整"))
    for english in ("producing", "idle", "fault", "shift"):
        assert english not in text


@pytest.mark.parametrize("language", list(SAMPLES))
@pytest.mark.parametrize("where", list(WIDTHS))
def test_plan_at_80_columns_and_piped(language: str, where: str) -> None:
    """Piped, `plan` printed one or two characters of the tag list per line: every request's row
    is now one line, and at 80 columns the tags wrap between names."""
    width = WIDTHS[where]
    out = io.StringIO()
    console = Console(file=out, width=width or UNBOUNDED, color_system=None, soft_wrap=width is None)
    args = argparse.Namespace(config=SAMPLES[language], language=None)
    assert cmd_plan(args, console) == 0
    text = out.getvalue()
    lines = text.splitlines()
    if width is not None:
        assert max(cell_len(line) for line in lines) <= width
    for tags in ("alarm_active", "cycle_time_s", "spindle_rpm", "gauge_rejects"):
        assert any(tags in line for line in lines)
    if width is None:
        every = "alarm_active, auto_mode, door_open, running, setup_mode, status_word, alarm_code"
        assert any(every in line and "grinder-01" in line for line in lines)
    if language == "zh-CN":
        assert "每周期 16 次请求" in text
        assert "站号" in text


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_validate_errors_wrap_between_words_at_a_terminal_and_stay_whole_when_piped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = (
        "tests/cases/chinese-calendar/workshop.yaml:13:7: calendar.shifts[0]: the shift name '早班' is "
        "not an id: add an ASCII id for records and InfluxDB (lower-case letters, digits, '-', '_' or "
        "'.'), e.g. {id: early, name: 早班}"
    )
    monkeypatch.setenv("COLUMNS", "80")
    terminal = Terminal()
    print_lines(message, terminal)
    lines = terminal.getvalue().splitlines()
    assert len(lines) > 1
    assert all(cell_len(line) <= 80 for line in lines)
    assert " ".join(line.strip() for line in lines) == message  # only cut between words
    piped = io.StringIO()
    print_lines(message, piped)
    assert piped.getvalue() == message + "\n"


def test_a_word_longer_than_the_line_stays_whole() -> None:
    assert wrap_words("a " + "x" * 30 + " b", 10) == ["a", "    " + "x" * 30, "    b"]


def health_document() -> dict[str, Any]:
    device = {"connected": True, "error": None, "last_good_read_s_ago": 0.4}
    return {
        "agent": "gw-grinding-zh",
        "language": "zh-CN",
        "ok": False,
        "config": {"file": "/etc/edge-agent/workshop.yaml", "version": "3f2a9c1b7d40"},
        "connections": {
            "line1-gw": {
                "endpoint": "10.0.1.20:502",
                "cycles": 86400,
                "missed_cycles": 2,
                "errors": 5,
                "last_cycle_ms": 41.2,
                "devices": {
                    "grinder-01": device,
                    "grinder-02": {
                        "connected": False,
                        "error": "no answer within 0.5 s (a wrong unit id, a device that is off, "
                        "serial wiring)",
                        "last_good_read_s_ago": 312.0,
                    },
                },
            }
        },
        "outputs": {
            "mqtt": {
                "connected": False,
                "backlog_records": 1520,
                "oldest_undelivered_s": 640,
                "delivered": 120400,
                "failures": 3,
                "last_error": "connection refused by broker.plant.local:8883",
            }
        },
        "outbox": {"committed": 121920, "unwritable": False, "salvaged": 0, "lost_to_corruption": 0},
        "loops": {},
    }


@pytest.mark.parametrize("language", list(SAMPLES))
@pytest.mark.parametrize("where", list(WIDTHS))
def test_status_golden(language: str, where: str) -> None:
    width = WIDTHS[where]
    out = io.StringIO()
    console = Console(file=out, width=width or UNBOUNDED, color_system=None, soft_wrap=width is None)
    print_status(health_document(), console, catalogue(language))
    text = "\n".join(line.rstrip() for line in out.getvalue().splitlines()) + "\n"
    check_golden(f"status-{language}-{where}", text)
    if width is not None:
        assert max(cell_len(line) for line in text.splitlines()) <= width
    for word in ("refused", "broker.plant.local:8883", "wiring)", "grinder-02"):
        assert word in text


def readings(config: AgentConfig) -> list[DeviceReading]:
    found = []
    for index, device in enumerate(config.devices()):
        if index > 3:
            break
        reading = DeviceReading(device, "10.0.1.20:502")
        answered = index != 2
        reading.status = DeviceStatus(device.id, answered, 0.0, None if answered else "timeout")
        quality = Quality.GOOD if answered else Quality.BAD
        reading.samples = [Sample(device.id, tag, 1, 0.0, quality) for tag in device.profile.spec.tag_names]
        found.append(reading)
    return found


@pytest.mark.parametrize("language", list(SAMPLES))
@pytest.mark.parametrize("where", list(WIDTHS))
def test_run_once_table_whole(language: str, where: str) -> None:
    config = load_config(SAMPLES[language])
    words: Catalogue = catalogue(language)
    table = readings_table(readings(config), words)
    width = WIDTHS[where]
    text = rendered(table, width)
    assert_whole(text, table, width)
    if language == "zh-CN":
        assert "grinder-01 1号内沟磨床" in text
        assert "离线" in text
        assert "无应答" in text or width is not None  # the reason column goes first at 80


def test_the_least_needed_columns_go_first_and_none_is_cut() -> None:
    """Columns with the highest `drop` go first; what stays is laid out whole."""
    columns: Sequence[Column] = [
        Column("machine"),
        Column("reason", wrap=True, drop=2),
        Column("OEE", numeric=True),
        Column("detail", drop=1),
    ]
    table = FittedTable("t", columns)
    table.add_row("grinder-01", "alarm 1203 spindle overload", "81.0%", "x" * 40)
    assert table.shown(40) == [0, 2]
    assert table.shown(70) == [0, 2, 3]
    assert table.shown(90) == [0, 1, 2, 3]
    assert "reason" not in rendered(table, 70)
    for width in (40, 70, 90):
        assert_whole(rendered(table, width), table, width)
