"""What each dashboard panel must show, computed from the agent's records (its file output) by the
panel's description in deploy/grafana/generate.py, never from the store: the truth a query's
answer is held against.

The records first become what a time-series store holds after receiving them: one point per series
(measurement and tags) and millisecond, a later write's fields over an earlier one's, nulls absent.
Each selection then reads those points as its description says (see generate.py's docstring).
Answers are normalised the same way on both sides: {group tags: [row, ...]}, a row being
{column: value}, with the time column only where it means something (raw points and trend buckets).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.integration.grafana import TimeRange, interval_ms

# record kind -> (measurement, scope)
MEASUREMENT_OF = {
    "state": ("machine_state", None),
    "oee": ("oee", "machine"),
    "line_oee": ("oee", "line"),
    "workshop_oee": ("oee", "workshop"),
    "energy": ("energy", "machine"),
    "line_energy": ("energy", "line"),
    "workshop_energy": ("energy", "workshop"),
    "crew_oee": ("oee", "crew"),
    "crew_energy": ("energy", "crew"),
}
TAG_KEYS = ("machine", "line", "shift", "period", "crew")
TEXT_COLUMNS = {"machine_name", "line_name", "shift_name", "crew_name", "workshop_name", "shift_start", "day"}
Row = dict[str, Any]
Answer = dict[tuple[tuple[str, str], ...], list[Row]]


@dataclass
class Point:
    measurement: str
    tags: dict[str, str]
    ms: int
    fields: dict[str, Any] = field(default_factory=dict)


def epoch_ms(rfc3339: str) -> int:
    moment = dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return round(moment.timestamp() * 1000)


def stored_points(records: Iterable[Mapping[str, Any]]) -> list[Point]:
    """The records as points, merged per series and millisecond in sequence order."""
    points: dict[tuple[str, tuple[tuple[str, str], ...], int], Point] = {}
    for record in sorted(records, key=lambda r: r["seq"]):
        if record["kind"] not in MEASUREMENT_OF:
            continue
        measurement, scope = MEASUREMENT_OF[record["kind"]]
        tags = {k: record[k] for k in TAG_KEYS if isinstance(record.get(k), str) and record[k]}
        if scope is not None:
            tags["scope"] = scope
        ms = epoch_ms(record["ts"])
        key = (measurement, tuple(sorted(tags.items())), ms)
        point = points.setdefault(key, Point(measurement, tags, ms))
        for name, value in record.items():
            if name in (*TAG_KEYS, "ts", "agent", "seq", "kind") or value is None:
                continue
            point.fields[name] = int(value) if isinstance(value, bool) else value
    return sorted(points.values(), key=lambda p: p.ms)


@dataclass(frozen=True)
class View:
    """What the dashboard is looking at: the variables' values and the time range."""

    values: Mapping[str, str]
    time_range: TimeRange
    interval: int = 1  # the panel's $__interval in ms (trend panels)
    state_max_age: str = "5m"


def _recent(point: Point, view: View) -> bool:
    return point.ms > view.time_range.to_ms - interval_ms(view.state_max_age)


# Which points each selection reads, beyond measurement, scope, machine and time range.
SELECTED: dict[str, Callable[[Point, View], bool]] = {
    "this shift": lambda p, v: (
        p.tags.get("period") == "shift" and p.fields.get("shift_start") == v.values["shift_start"]
    ),
    "trend": lambda p, v: p.tags.get("period") == "shift",
    "closed shifts": lambda p, v: (
        p.tags.get("period") == "shift" and p.tags.get("shift") != "no_shift" and p.fields.get("final") == 1
    ),
    "days": lambda p, v: p.tags.get("period") == "day",
    "day totals": lambda p, v: p.tags.get("period") == "day",
    "states": lambda p, v: True,
    "state now": _recent,
    "count in state": _recent,
}


def expected(show: Any, points: list[Point], view: View) -> Answer:
    """The answer the panel's query must give, by its Show (generate.py)."""
    select = show.select.value
    chosen = [p for p in points if _matches(show, p, view) and SELECTED[select](p, view)]
    if select in ("closed shifts", "days", "states"):
        return _raw(show, chosen)
    if select == "count in state":
        return _count(show, chosen)
    if select == "day totals":
        return _totals(show, chosen)
    return _aggregate(show, chosen, timed=select == "trend", interval=view.interval)


def _count(show: Any, points: list[Point]) -> Answer:
    """How many machines' latest state is the panel's; no row at all for none, as InfluxDB answers."""
    latest = {point.tags["machine"]: point for point in points}
    count = sum(1 for p in latest.values() if p.fields.get("state") == show.state)
    [column] = show.columns
    return {(): [{column.name: count}]} if count else {}


def _matches(show: Any, point: Point, view: View) -> bool:
    if point.measurement != show.measurement:
        return False
    if not view.time_range.from_ms <= point.ms <= view.time_range.to_ms:
        return False
    if show.scope is not None and point.tags.get("scope") != show.scope:
        return False
    if show.one_machine and point.tags.get("machine") != view.values["machine"]:
        return False
    return all(point.fields.get(c.denominator, 0) > 0 for c in show.columns if c.denominator is not None)


def _groups(show: Any, points: list[Point]) -> dict[tuple[tuple[str, str], ...], list[Point]]:
    groups: dict[tuple[tuple[str, str], ...], list[Point]] = defaultdict(list)
    for point in points:
        groups[tuple((tag, point.tags.get(tag, "")) for tag in sorted(show.by))].append(point)
    return groups


def _last(points: list[Point], name: str) -> Any:
    return next((p.fields[name] for p in reversed(points) if name in p.fields), None)


def _aggregate(show: Any, points: list[Point], *, timed: bool, interval: int = 1) -> Answer:
    """last() of every column per group (and per time bucket); rows of nothing but nulls vanish."""
    answer: Answer = {}
    for group, members in _groups(show, points).items():
        buckets: dict[int, list[Point]] = defaultdict(list)
        for point in members:
            buckets[point.ms // interval * interval if timed else 0].append(point)
        rows = []
        for start, inside in sorted(buckets.items()):
            row: Row = {}
            for column in show.columns:
                if column.denominator is None:
                    row[column.name] = _last(inside, column.name)
                else:
                    numerator, denominator = (
                        _last(inside, column.numerator),
                        _last(inside, column.denominator),
                    )
                    row[column.name] = None if numerator is None else numerator / denominator
            if any(v is not None for v in row.values()):
                rows.append({"time": start, **row} if timed else row)
        if rows:
            answer[group] = rows
    return answer


def _totals(show: Any, points: list[Point]) -> Answer:
    """Per group: text columns' last value, sums of the rest, ratios as a ratio of sums."""
    answer: Answer = {}
    for group, members in _groups(show, points).items():
        row: Row = {}
        for column in show.columns:
            if column.denominator is not None:
                numerator = sum(p.fields.get(column.numerator, 0) for p in members)
                denominator = sum(p.fields.get(column.denominator, 0) for p in members)
                row[column.name] = numerator / denominator if denominator else None
            elif column.name in TEXT_COLUMNS:
                row[column.name] = _last(members, column.name)
            else:
                row[column.name] = sum(p.fields.get(column.name, 0) for p in members)
        answer[group] = [row]
    return answer


def _raw(show: Any, points: list[Point]) -> Answer:
    answer: Answer = {}
    for group, members in _groups(show, points).items():
        rows = [{"time": p.ms, **{c.name: p.fields.get(c.name) for c in show.columns}} for p in members]
        rows = [r for r in rows if any(r[c.name] is not None for c in show.columns)]
        if rows:
            answer[group] = rows
    return answer


def answer_of(show: Any, series: list[dict[str, Any]]) -> Answer:
    """InfluxDB's answer in the same shape (the time column dropped where it only echoes the range)."""
    timed = show.select.value in ("trend", "closed shifts", "days", "states")
    answer: Answer = {}
    for one in series:
        group = tuple(sorted((one.get("tags") or {}).items()))
        rows = [dict(zip(one["columns"], values, strict=True)) for values in one["values"]]
        if not timed:
            rows = [{k: v for k, v in row.items() if k != "time"} for row in rows]
        answer[group] = rows
    return answer


def differences(show: Any, got: Answer, want: Answer) -> list[str]:
    """Where two answers differ; ratios of two fields compare to 12 significant digits."""
    ratios = {c.name for c in show.columns if c.denominator is not None}
    problems = [f"group {g}: missing" for g in want if g not in got]
    problems += [f"group {g}: not expected" for g in got if g not in want]
    for group in set(got) & set(want):
        if len(got[group]) != len(want[group]):
            problems.append(f"group {group}: {len(got[group])} rows, expected {len(want[group])}")
            continue
        for got_row, want_row in zip(got[group], want[group], strict=True):
            if got_row.keys() != want_row.keys():
                problems.append(f"group {group}: columns {sorted(got_row)}, expected {sorted(want_row)}")
                continue
            for name, value in want_row.items():
                if not _same(got_row[name], value, name in ratios):
                    problems.append(
                        f"group {group} time {want_row.get('time')}: {name} {got_row[name]!r} != {value!r}"
                    )
    return problems


def _same(got: Any, want: Any, ratio: bool) -> bool:
    if ratio and isinstance(got, float) and isinstance(want, float):
        return math.isclose(got, want, rel_tol=1e-12)
    return bool(got == want)
