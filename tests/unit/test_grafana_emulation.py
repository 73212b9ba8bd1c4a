"""The test harness's emulation of Grafana's InfluxQL path (tests/integration/grafana.py) against
what Grafana's sources say it does, so the dashboard test runs the queries Grafana would run."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.grafana import (
    TimeRange,
    backend_build,
    format_interval,
    interpolate,
    metric_find_values,
    panel_interval_ms,
    resolve_variables,
)

HOUR_MS = 3_600_000
RANGE = TimeRange(1_000 * HOUR_MS, 1_012 * HOUR_MS)


@pytest.mark.parametrize(
    ("hours", "points", "minimum", "interval", "text"),
    [
        (12, 500, "1m", 60_000, "1m"),  # 86.4 s rounds to 1 m
        (168, 500, "1m", 1_200_000, "20m"),  # 20.16 min rounds to 20 m
        (1, 500, "1m", 60_000, "1m"),  # 7.2 s rounds to 5 s, below the datasource's minimum
        (1, 500, None, 5_000, "5s"),
        (24 * 30, 100, None, 21_600_000, "6h"),  # 7.2 h
    ],
)
def test_interval_as_grafana_rounds_it(
    hours: int, points: int, minimum: str | None, interval: int, text: str
) -> None:
    time_range = TimeRange(0, hours * HOUR_MS)
    assert panel_interval_ms(time_range, points, minimum) == interval
    assert format_interval(interval) == text


def test_variables_are_regex_escaped_unless_raw() -> None:
    values = {"agent": "gw.1", "shift_start": "2026-11-25T00:00:00.000Z"}
    query = '"agent" =~ /^$agent$/ AND "shift_start" = \'${shift_start:raw}\' AND [[agent]] ${agent}'
    assert interpolate(query, values, RANGE) == (
        '"agent" =~ /^gw\\.1$/ AND "shift_start" = \'2026-11-25T00:00:00.000Z\' AND gw\\.1 gw\\.1'
    )


def test_macros_left_to_the_backend_and_the_range_variables() -> None:
    query = interpolate(
        "time > ${__to}ms - 5m AND $timeFilter GROUP BY time($__interval) $unknown", {}, RANGE
    )
    assert query == f"time > {RANGE.to_ms}ms - 5m AND $timeFilter GROUP BY time($__interval) $unknown"
    built = backend_build(query + " $__interval_ms", RANGE, 120_000)
    assert built == (
        f"time > {RANGE.to_ms}ms - 5m AND time >= {RANGE.from_ms}ms and time <= {RANGE.to_ms}ms "
        "GROUP BY time(2m) $unknown 120000"
    )


def test_a_variables_options_as_grafana_reads_the_answer() -> None:
    tag_values = [
        {"name": "oee", "columns": ["key", "value"], "values": [["agent", "gw-b"], ["agent", "gw-a"]]}
    ]
    assert metric_find_values('SHOW TAG VALUES FROM "oee" WITH KEY = "agent"', tag_values) == ["gw-b", "gw-a"]
    last = [{"name": "oee", "columns": ["time", "last"], "values": [[5, "2026-11-25T00:00:00.000Z"]]}]
    assert metric_find_values('SELECT last("shift_start") FROM "oee"', last) == ["2026-11-25T00:00:00.000Z"]
    assert metric_find_values("SELECT 1", []) == []


def board(*variables: tuple[str, str]) -> dict[str, Any]:
    return {
        "templating": {"list": [{"name": n, "type": "query", "query": q, "sort": 1} for n, q in variables]}
    }


def test_variables_resolve_in_order_sorted_first_value_or_the_chosen_one() -> None:
    answers = {
        'SHOW TAG VALUES WITH KEY = "site"': [
            {"columns": ["key", "value"], "values": [["site", "p2"], ["site", "p1"]]}
        ],
        'SHOW TAG VALUES WITH KEY = "area" WHERE "site" =~ /^p1$/': [
            {"columns": ["key", "value"], "values": [["area", "grinding"]]}
        ],
    }
    dashboard = board(
        ("site", 'SHOW TAG VALUES WITH KEY = "site"'),
        ("area", 'SHOW TAG VALUES WITH KEY = "area" WHERE "site" =~ /^$site$/'),
    )
    resolved = resolve_variables(dashboard, answers.__getitem__, RANGE)
    assert (resolved["site"].options, resolved["site"].value, resolved["area"].value) == (
        ["p1", "p2"],
        "p1",
        "grinding",
    )
    with pytest.raises(ValueError, match="'p3' is not among"):
        resolve_variables(dashboard, answers.__getitem__, RANGE, {"site": "p3"})


def test_a_variable_that_uses_a_later_one_is_refused() -> None:
    dashboard = board(("area", "SHOW TAG VALUES WHERE x =~ /^$site$/"), ("site", "SHOW TAG VALUES"))
    with pytest.raises(ValueError, match="uses \\['site'\\], resolved after it"):
        resolve_variables(dashboard, lambda q: [], RANGE)
