"""What the report history and the board cost at 200 machines (issue 20).

Workload: 200 machines on 10 lines, each changing state every 3 minutes on average (20 state
records an hour, a busy plant: stops, restarts, setups), two 12-hour shifts a day, for DAYS days.
Every state record goes through `HistoryStore.add` in batches as the agent commits them (one
batch per second of shop-floor time); every shift closes with a final oee record per machine and
line and the workshop.

Figures:
- history cost per record, against the baseline of an `executemany` of the same rows into a bare
  SQLite table in the same file mode (WAL, synchronous=normal): the history's own work is the
  ratio;
- the history file's bytes per machine-day (how `history.max_mb` relates to `history.days`);
- one /board/data.json (latest, last stops, the document, JSON) and one shift report (its
  records, timelines, losses, Pareto, JSON), median of REPEAT, at 200 machines and DAYS days
  of history.

`python -m bench board`.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sqlite3
import statistics
import tempfile
import time
import zoneinfo
from pathlib import Path
from typing import Any

from agent.history.store import HistoryStore
from agent.i18n import catalogue
from agent.kpi.calendar import ShiftCalendar, ShiftDef
from agent.records import Record, RecordKind, to_json
from agent.reports.build import Reports
from agent.reports.reasons import ReasonNamer
from agent.web.documents import board_document, page_context, report_document

MACHINES = 200
LINES = 10
DAYS = 3
CHANGES_PER_HOUR = 20
REPEAT = 7
ZONE = "Asia/Shanghai"
SHIFTS = (ShiftDef("day", 8 * 60, 20 * 60, ((12 * 60, 12 * 60 + 30),)), ShiftDef("night", 20 * 60, 8 * 60))
STATES = ("producing", "producing", "producing", "idle", "fault", "setup")


def workload(start: float) -> tuple[list[list[Record]], int]:
    """Batches of records, one per second that has any, and the count of state records."""
    rng = random.Random(20)
    calendar = ShiftCalendar(SHIFTS, ZONE)
    end = start + DAYS * 86_400.0
    by_second: dict[int, list[Record]] = {}
    states = 0
    for index in range(MACHINES):
        machine, line = f"m{index:03d}", f"line-{index % LINES}"
        ident = {"machine": machine, "machine_name": machine, "line": line, "line_name": line}
        t = start
        while t < end:
            state = rng.choice(STATES)
            reason = f"alarm {rng.choice((1203, 1210, 2101, 2230, 3050))}" if state == "fault" else None
            record = Record(RecordKind.STATE, t, {**ident, "state": state, "since": t, "reason": reason})
            by_second.setdefault(int(t), []).append(record)
            states += 1
            t += rng.expovariate(CHANGES_PER_HOUR / 3600.0)
    for shift in calendar.shifts_between(start, end):
        if shift.end > end:
            continue
        period = {"period": "shift", "shift": shift.name, "day": shift.day.isoformat(), "final": True}
        oee = {"pbt_s": 41_400.0, "apt_s": 33_000.0, "setup_s": 2000.0, "idle_s": 3000.0, "fault_s": 3400.0}
        oee |= {"ideal_s": 30_000.0, "ideal_good_s": 29_500.0, "produced": 6000, "good": 5900, "oee": 0.71}
        finals = [
            Record(
                RecordKind.OEE,
                shift.end,
                {"machine": f"m{i:03d}", "line": f"line-{i % LINES}", **period, **oee},
            )
            for i in range(MACHINES)
        ]
        finals += [
            Record(RecordKind.LINE_OEE, shift.end, {"line": f"line-{i}", **period, **oee})
            for i in range(LINES)
        ]
        finals.append(Record(RecordKind.WORKSHOP_OEE, shift.end, {**period, **oee}))
        by_second.setdefault(int(shift.end), []).extend(finals)
    return [by_second[s] for s in sorted(by_second)], states


def baseline(path: Path, batches: list[list[Record]]) -> float:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, kind TEXT, ts REAL, body BLOB)")
    started = time.perf_counter()
    for batch in batches:
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO r (kind, ts, body) VALUES (?, ?, ?)",
            [(r.kind.value, r.ts, to_json(r.fields)) for r in batch],
        )
        db.execute("COMMIT")
    elapsed = time.perf_counter() - started
    db.close()
    return elapsed


def median_s(action: Any) -> float:
    timings = []
    for _ in range(REPEAT):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> dict[str, Any]:
    zone = zoneinfo.ZoneInfo(ZONE)
    first_day = dt.date(2026, 11, 2)
    start = dt.datetime(first_day.year, first_day.month, first_day.day, 8, tzinfo=zone).timestamp()
    batches, states = workload(start)
    records = sum(len(b) for b in batches)
    end = start + DAYS * 86_400.0
    with tempfile.TemporaryDirectory() as folder:
        base_s = baseline(Path(folder) / "baseline.db", batches)
        history = HistoryStore(
            Path(folder) / "history.db", days=62, max_bytes=2**34, clock=lambda: end
        ).open()
        started = time.perf_counter()
        for batch in batches:
            history.add(batch)
        add_s = time.perf_counter() - started
        size = history.stats().bytes_used
        words = catalogue("zh-CN")
        context = page_context(words, ZONE, "bench")
        reports = Reports(history, ShiftCalendar(SHIFTS, ZONE), ReasonNamer({}, "zh-CN"))
        day = first_day + dt.timedelta(days=1)

        def board() -> None:
            json.dumps(
                board_document(history.latest(), history.last_stops(), context, now=end, refresh_s=5.0)
            )

        def shift_report() -> None:
            json.dumps(report_document(reports.shift(day, "day"), context), ensure_ascii=False)

        board_s = median_s(board)
        report_s = median_s(shift_report)
        report = reports.shift(day, "day")
        history.close()
    result = {
        "machines": MACHINES,
        "days": DAYS,
        "state_records": states,
        "records": records,
        "history_add_us_per_record": round(add_s / records * 1e6, 2),
        "baseline_insert_us_per_record": round(base_s / records * 1e6, 2),
        "ratio_history_to_baseline": round(add_s / base_s, 2),
        "history_bytes_per_machine_day": round(size / MACHINES / DAYS),
        "board_data_ms": round(board_s * 1000, 1),
        "shift_report_ms": round(report_s * 1000, 1),
        "shift_report_spans": sum(len(s) for s in report.timelines.values()),
    }
    for key, value in result.items():
        print(f"{key:36} {value}")
    return result
