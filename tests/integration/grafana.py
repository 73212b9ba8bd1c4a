"""What Grafana (11.x, InfluxDB datasource in InfluxQL mode, backend queries) does with a
dashboard's queries before InfluxDB sees them, so a test can run them as a browser would make
Grafana run them:

- template variables are resolved in order: each query variable's query runs (with the variables
  before it and the dashboard's time range), its answer becomes the options as Grafana's
  `frameToMetricFindValue` reads them, sorted, and the first option is selected unless a user
  chose another;
- `$var`, `${var}`, `[[var]]` are replaced with the regex format Grafana's InfluxQL datasource
  applies to raw queries (`${var:raw}` keeps the value as is); `${__from}` and `${__to}` are the
  range in epoch milliseconds; unknown names are left alone;
- then the backend replaces `$timeFilter` with `time >= <from>ms and time <= <to>ms`, and
  `$interval`, `$__interval_ms`, `$__interval` with the panel's interval: the range divided by
  its maxDataPoints, rounded to Grafana's nice intervals, at least the datasource's timeInterval.

Sources: grafana/grafana public/app/plugins/datasource/influxdb/datasource.ts (applyVariables,
metricFindQuery), packages/grafana-data/src/datetime/rangeutil.ts (calculateInterval,
roundInterval), pkg/tsdb/influxdb/models/query.go (Build, renderTimeFilter),
pkg/tsdb/influxdb/influxql/buffered/response_parser.go (frames of a variable's answer).
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

MS_PER = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
# rangeutil.roundInterval: (below this many ms, use this interval in ms)
NICE_INTERVALS = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (32400000, 21600000),
    (86400000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
)
YEAR_MS = 31_536_000_000
# Dashboards use the browser's time zone; the managers who open them are at the plant.
VIEWER_ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
# templateSrv's variable syntaxes: $name, [[name]] or [[name:format]], ${name} or ${name:format}
VARIABLE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?::(\w+))?\}")
REGEX_SPECIAL = re.compile(r"[\\^$*+?.()|\[\]{}/]")  # grafana-data escapeRegex


@dataclass(frozen=True)
class TimeRange:
    from_ms: int
    to_ms: int

    @classmethod
    def of(cls, board: Mapping[str, Any], now_ms: int) -> TimeRange:
        """The dashboard's default range ("now-12h" to "now") seen at `now_ms`."""
        return cls(relative_ms(board["time"]["from"], now_ms), relative_ms(board["time"]["to"], now_ms))


def relative_ms(text: str, now_ms: int) -> int:
    if text == "now":
        return now_ms
    if text in ("now/d", "now/M"):  # the start of this day or month, in the viewer's time zone
        now = dt.datetime.fromtimestamp(now_ms / 1000, VIEWER_ZONE)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if text == "now/M":
            start = start.replace(day=1)
        return round(start.timestamp() * 1000)
    match = re.fullmatch(r"now-(\d+)(ms|[smhdw])", text)
    if match is None:
        raise ValueError(f"time {text!r}: only now, now/d, now/M and now-<n><unit> are understood here")
    return now_ms - int(match[1]) * MS_PER[match[2]]


def interval_ms(text: str) -> int:
    match = re.fullmatch(r"(\d+)(ms|[smhdw])", text)
    if match is None:
        raise ValueError(f"interval {text!r}")
    return int(match[1]) * MS_PER[match[2]]


def round_interval(ms: float) -> int:
    return next((nice for below, nice in NICE_INTERVALS if ms < below), YEAR_MS)


def panel_interval_ms(time_range: TimeRange, max_data_points: int, min_interval: str | None) -> int:
    """rangeutil.calculateInterval: round first, then the datasource's lower limit."""
    rounded = round_interval((time_range.to_ms - time_range.from_ms) / max_data_points)
    return max(rounded, interval_ms(min_interval) if min_interval else 1)


def format_interval(ms: int) -> str:
    """gtime.FormatInterval, the backend's text for $__interval."""
    for unit in ("y", "d", "h", "m", "s"):
        size = YEAR_MS if unit == "y" else MS_PER[unit]
        if ms >= size:
            return f"{ms // size}{unit}"
    return f"{max(ms, 1)}ms"


def regex_escape(value: str) -> str:
    return REGEX_SPECIAL.sub(lambda m: "\\" + m[0], value)


def interpolate(query: str, values: Mapping[str, str], time_range: TimeRange) -> str:
    """templateSrv.replace(query, vars, 'regex') as the InfluxDB datasource calls it."""
    known = {**values, "__from": str(time_range.from_ms), "__to": str(time_range.to_ms)}

    def replace(match: re.Match[str]) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[5] or "regex"
        if name not in known:
            return match[0]
        if fmt == "raw":
            return known[name]
        if fmt == "regex":
            return regex_escape(known[name])
        raise ValueError(f"format {fmt!r} of ${{{name}}} is not emulated")

    return VARIABLE.sub(replace, query)


def backend_build(query: str, time_range: TimeRange, interval: int) -> str:
    """models.Query.Build for a raw query: the macros the backend replaces, in its order."""
    text = format_interval(interval)
    query = query.replace("$timeFilter", f"time >= {time_range.from_ms}ms and time <= {time_range.to_ms}ms")
    query = query.replace("$interval", text)
    query = query.replace("$__interval_ms", str(interval))
    return query.replace("$__interval", text)


def metric_find_values(query: str, series: list[dict[str, Any]]) -> list[str]:
    """A variable's options from its query's answer: the backend's frames, of which Grafana reads
    the first (SHOW TAG VALUES: the value column; a SELECT: its first value column)."""
    if not series:
        return []
    first = series[0]
    columns = first["columns"]
    if "time" not in columns:
        index = 1 if "show tag values" in query.lower() and len(columns) > 1 else 0
        return [str(row[index]) for row in first["values"] if row[index] is not None]
    index = next(i for i, c in enumerate(columns) if c != "time")
    return [str(row[index]) for row in first["values"] if row[index] is not None]


Runner = Callable[[str], list[dict[str, Any]]]


@dataclass(frozen=True)
class Variable:
    name: str
    options: list[str]
    value: str


def resolve_variables(
    board: Mapping[str, Any], run: Runner, time_range: TimeRange, chosen: Mapping[str, str] | None = None
) -> dict[str, Variable]:
    """Every template variable of the dashboard, in order, as Grafana resolves them on load."""
    chosen = chosen or {}
    resolved: dict[str, Variable] = {}
    later = {v["name"] for v in board["templating"]["list"]}
    for variable in board["templating"]["list"]:
        name = variable["name"]
        later.discard(name)
        if variable["type"] != "query":
            raise ValueError(f"variable {name}: type {variable['type']!r} is not emulated")
        used = {m[1] or m[2] or m[4] for m in VARIABLE.finditer(variable["query"])}
        if used & (later | {name}):
            raise ValueError(f"variable {name} uses {sorted(used & later)}, resolved after it")
        values = {n: v.value for n, v in resolved.items()}
        query = backend_build(interpolate(variable["query"], values, time_range), time_range, 1)
        options = list(dict.fromkeys(metric_find_values(query, run(query))))
        if variable.get("sort") == 1:
            options.sort()
        if name in chosen:
            if chosen[name] not in options:
                raise ValueError(f"variable {name}: {chosen[name]!r} is not among {options}")
            value = chosen[name]
        else:
            value = options[0] if options else ""
        resolved[name] = Variable(name, options, value)
    return resolved


def panel_query(
    panel: Mapping[str, Any],
    target: Mapping[str, Any],
    variables: Mapping[str, Variable],
    time_range: TimeRange,
    min_interval: str | None,
) -> str:
    """The text InfluxDB receives for one of the panel's targets."""
    query = target["query"]
    if not target.get("rawQuery"):
        raise ValueError(f"panel {panel['title']!r}: not a raw query; Grafana would build its own")
    if "$__interval" in query or "$interval" in query:
        if "maxDataPoints" not in panel:
            raise ValueError(f"panel {panel['title']!r}: $__interval needs maxDataPoints to be known")
        interval = panel_interval_ms(time_range, panel["maxDataPoints"], min_interval)
    else:
        interval = 1
    values = {name: v.value for name, v in variables.items()}
    return backend_build(interpolate(query, values, time_range), time_range, interval)
