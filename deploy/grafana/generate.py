"""Writes the Grafana dashboards in deploy/grafana/dashboards/<language>/ (run `make dashboards`).

One panel list, one set of dashboards per language of the agent's catalogue (agent/i18n): titles,
variable labels and state names come from the catalogue; the queries are the same in every
language (tests/unit/test_dashboards.py proves it), so running each query once proves them all.
Names people read (machine_name, line_name, crew_name) are columns of the queries, next to the ids.

Every panel is one entry of PANELS: where it sits and what it shows, said in terms of the agent's
records (a `Show`: measurement, selection, columns, grouping). `influxql()` turns a Show into the
panel's query. InfluxQL is the one dialect every InfluxDB serves (1.x natively, 2.x through a DBRP
mapping, 3.x natively), so it is the only one generated: every shipped query is executed in the
tests, and no Flux or SQL server runs there.

tests/unit/test_dashboards.py checks every measurement, field and tag the queries name against
what the agent writes (agent/sinks/points.py SCHEMA). tests/integration/test_dashboard_queries.py
runs every query of every dashboard against a real InfluxDB after a real agent run, with Grafana's
macros and variables expanded, and compares the answers with the agent's records, using each
panel's Show as the recipe for the truth. A new field on a panel is one more name in a tuple here.

Selections:
- this shift: the latest record of the current shift, which the hidden variable `shift_start`
  names (the start of the newest shift published in the time range, so day and night never
  mix and a past time range shows that shift as it stood at the range's end);
- trend: the shift-so-far records, the last one in each $__interval;
- closed shifts and days: the final record of each closed shift, the totals of each day;
- states: a machine's latest state within STATE_MAX_AGE of the range's end (the agent repeats
  every machine's state with each periodic publication), or every state point for a timeline.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.i18n import DEFAULT_LANGUAGE, Catalogue, catalogue, languages

DATASOURCE = {"type": "influxdb", "uid": "edge-influx"}
OUT = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
GRID_COLUMNS = 24  # Grafana's grid width
# Points per trend panel: a minute's resolution over an 8-hour view; Grafana rounds the
# range / this into its nice intervals, never below the datasource's timeInterval (1m).
TREND_MAX_DATA_POINTS = 500
# A machine's state counts as "now" if published within this of the range's end. The agent
# repeats every state with each publication (kpi.publish_interval_s, 60 s by default), so this
# must be longer than that interval; a gateway silent this long shows no states, not stale ones.
STATE_MAX_AGE = "5m"
ORIGIN = '"site" =~ /^$site$/ AND "area" =~ /^$area$/ AND "agent" =~ /^$agent$/'
ONE_MACHINE = '"machine" =~ /^$machine$/'
STATE_COLOURS = {
    "producing": "green",
    "setup": "blue",
    "idle": "yellow",
    "fault": "red",
    "planned_stop": "purple",
    "no_shift": "#8e8e8e",
    "offline": "#4b4b4b",
}
RATIOS = ("availability", "performance", "quality", "oee")
# Text columns: a sum or a ratio of them means nothing, so totals take their last value.
TEXT_COLUMNS = frozenset(
    {"machine_name", "line_name", "shift_name", "crew_name", "workshop_name", "shift_start", "day", "state"}
)
LOSS_FIELDS = ("setup_s", "idle_s", "fault_s", "micro_stop_s", "offline_s")
# Carbon is co2_kg_* with a CO2-only grid factor (the MEE factors) and co2e_kg_* with a CO2e one:
# both are shown, and the one the site's factor does not write stays empty.
CARBON_PER_UNIT = ("co2_kg_per_unit", "co2e_kg_per_unit")
ENERGY_TABLE_FIELDS = (
    "kwh",
    "kwh_per_unit",
    "kwh_per_good",
    "idle_energy_share",
    "kgce",
    "kgce_per_unit",
    "kgce_per_good",
    *CARBON_PER_UNIT,
)


class Select(StrEnum):
    THIS_SHIFT = "this shift"
    TREND = "trend"
    CLOSED_SHIFTS = "closed shifts"
    DAYS = "days"
    STATE_NOW = "state now"
    STATES = "states"
    COUNT_IN_STATE = "count in state"
    DAY_TOTALS = "day totals"  # the day records in the time range, summed per group


AGGREGATED = frozenset({Select.THIS_SHIFT, Select.TREND, Select.STATE_NOW})


@dataclass(frozen=True)
class Column:
    """A field, or the ratio of two fields of the same point (shown only where the divisor > 0)."""

    name: str
    numerator: str | None = None
    denominator: str | None = None


def columns(*names: str) -> tuple[Column, ...]:
    return tuple(Column(name) for name in names)


@dataclass(frozen=True)
class Show:
    """What a panel shows, in terms of the agent's records."""

    measurement: str
    select: Select
    columns: tuple[Column, ...]
    scope: str | None = None  # machine, line or workshop records (oee and energy)
    by: tuple[str, ...] = ()  # tags: one series or row group per value
    one_machine: bool = False  # the machine the dashboard's $machine names
    state: str | None = None  # COUNT_IN_STATE: which state


@dataclass(frozen=True)
class Panel:
    dashboard: str
    type: str
    title: str  # the catalogue's dashboard.panel.<title>
    show: Show
    width: int
    height: int
    table: bool = False  # Grafana's "table" result format: one row per point, tags as columns
    defaults: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    # Grafana transformations; BY_NAME labels a row by its name column instead of its id
    transformations: tuple[Mapping[str, Any], ...] = ()


def quoted(name: str) -> str:
    return f'"{name}"'


def selector(show: Show, column: Column) -> str:
    if show.select is Select.DAY_TOTALS:
        if column.numerator is not None and column.denominator is not None:
            ratio_of_sums = f"sum({quoted(column.numerator)}) / sum({quoted(column.denominator)})"
            return f"{ratio_of_sums} AS {quoted(column.name)}"
        function = "last" if column.name in TEXT_COLUMNS else "sum"
        return f"{function}({quoted(column.name)}) AS {quoted(column.name)}"
    aggregated = show.select in AGGREGATED
    if column.numerator is not None and column.denominator is not None:
        parts = (column.numerator, column.denominator)
        num, den = (f"last({quoted(p)})" if aggregated else quoted(p) for p in parts)
        return f"{num} / {den} AS {quoted(column.name)}"
    if aggregated:
        return f"last({quoted(column.name)}) AS {quoted(column.name)}"
    return quoted(column.name)


def influxql(show: Show) -> str:
    """The panel's query, with Grafana's macros and this project's dashboard variables."""
    where = [ORIGIN]
    if show.scope is not None:
        where.append(f"\"scope\" = '{show.scope}'")
    if show.one_machine:
        where.append(ONE_MACHINE)
    select = show.select
    if select is Select.THIS_SHIFT:
        where += ["\"period\" = 'shift'", "\"shift_start\" = '${shift_start:raw}'"]
    elif select is Select.TREND:
        where.append("\"period\" = 'shift'")
    elif select is Select.CLOSED_SHIFTS:
        where += ["\"period\" = 'shift'", "\"shift\" != 'no_shift'", '"final" = 1']
    elif select in (Select.DAYS, Select.DAY_TOTALS):
        where.append("\"period\" = 'day'")
    elif select in (Select.STATE_NOW, Select.COUNT_IN_STATE):
        where.append(f"time > ${{__to}}ms - {STATE_MAX_AGE}")
    if select is not Select.DAY_TOTALS:  # totals sum every day; a ratio of sums has its divisor
        divisors = dict.fromkeys(c.denominator for c in show.columns if c.denominator is not None)
        where += [f"{quoted(divisor)} > 0" for divisor in divisors]
    where.append("$timeFilter")
    group = [quoted(tag) for tag in show.by]
    if select is Select.TREND:
        group.insert(0, "time($__interval)")
    if select is Select.COUNT_IN_STATE:
        [count] = show.columns
        inner = (
            f'SELECT last("state") AS "state" FROM {quoted(show.measurement)} '
            f'WHERE {" AND ".join(where)} GROUP BY "machine"'
        )
        return (
            f'SELECT count("state") AS {quoted(count.name)} FROM ({inner}) WHERE "state" = \'{show.state}\''
        )
    query = (
        f"SELECT {', '.join(selector(show, c) for c in show.columns)} FROM {quoted(show.measurement)} "
        f"WHERE {' AND '.join(where)}"
    )
    if group:
        query += " GROUP BY " + ", ".join(group)
    if select is Select.TREND:
        query += " fill(none)"
    return query


def ratio(**more: Any) -> dict[str, Any]:
    return {
        "unit": "percentunit",
        "min": 0,
        "max": 1,
        "decimals": 1,
        "thresholds": {
            "mode": "absolute",
            "steps": [
                {"color": "red", "value": None},
                {"color": "orange", "value": 0.6},
                {"color": "green", "value": 0.85},
            ],
        },
        **more,
    }


STATE_NAMES = "state names"  # a panel's mappings: the states' names in the dashboard's language


PARTS = {"unit": "none", "decimals": 0}
PER_UNIT = {"unit": "kwatth", "decimals": 3}
HORIZONTAL = {"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True}


def this_shift(measurement: str, scope: str, *names: str, by: tuple[str, ...] = ()) -> Show:
    return Show(measurement, Select.THIS_SHIFT, columns(*names), scope=scope, by=by)


def by_name(id_column: str) -> tuple[Mapping[str, Any], ...]:
    """A table result shown one bar per row: Grafana names each row by its text columns
    (fieldDisplay's getSmartDisplayNameForRow), so hiding the id leaves the name people read."""
    return ({"id": "organize", "options": {"excludeByName": {id_column: True, "Time": True}}},)


ALL_ROWS = {"reduceOptions": {"values": True, "calcs": [], "fields": ""}}  # a bar per row, not per field


def trend(measurement: str, *cols: Column) -> Show:
    return Show(measurement, Select.TREND, cols, scope="machine", one_machine=True)


OVERVIEW, MACHINE, ENERGY, CREWS = "edge-overview", "edge-machine", "edge-energy", "edge-crews"
# A crew's OEE and its factors over many days: ratios of the sums of its days' times and counts
CREW_OEE = Column("oee", "ideal_good_s", "pbt_s")
CREW_TOTAL_COLUMNS = (
    Column("crew_name"),
    Column("availability", "apt_s", "pbt_s"),
    Column("performance", "ideal_s", "apt_s"),
    Column("quality", "ideal_good_s", "ideal_s"),
    CREW_OEE,
    Column("produced"),
    Column("good_counted"),
    Column("pbt_s"),
)
PANELS: tuple[Panel, ...] = (
    # -- workshop overview --
    Panel(
        OVERVIEW,
        "stat",
        "workshop_oee",
        this_shift("oee", "workshop", "oee"),
        6,
        4,
        defaults=ratio(),
    ),
    Panel(
        OVERVIEW,
        "stat",
        "workshop_produced",
        this_shift("oee", "workshop", "produced"),
        6,
        4,
        defaults=PARTS,
    ),
    Panel(
        OVERVIEW,
        "stat",
        "workshop_good",
        this_shift("oee", "workshop", "good_counted"),
        6,
        4,
        defaults=PARTS,
    ),
    Panel(
        OVERVIEW,
        "stat",
        "producing_now",
        Show("machine_state", Select.COUNT_IN_STATE, columns("machines"), state="producing"),
        6,
        4,
        defaults={"unit": "none", "noValue": "0"},
    ),
    Panel(
        OVERVIEW,
        "bargauge",
        "machine_oee",
        this_shift("oee", "machine", "machine_name", "oee", by=("machine",)),
        12,
        9,
        table=True,
        defaults=ratio(),
        options={**HORIZONTAL, **ALL_ROWS},
        transformations=by_name("machine"),
    ),
    Panel(
        OVERVIEW,
        "table",
        "line_ratios",
        this_shift("oee", "line", "line_name", *RATIOS, by=("line",)),
        12,
        9,
        table=True,
        defaults=ratio(custom={"cellOptions": {"type": "color-background"}}),
    ),
    Panel(
        OVERVIEW,
        "state-timeline",
        "machine_states",
        Show("machine_state", Select.STATES, columns("state"), by=("machine",)),
        24,
        10,
        defaults={"mappings": STATE_NAMES, "displayName": "${__field.labels.machine}"},
        options={"mergeValues": True, "showValue": "never", "rowHeight": 0.8},
    ),
    Panel(
        OVERVIEW,
        "barchart",
        "machine_parts",
        this_shift("oee", "machine", "machine_name", "produced", "good", by=("machine",)),
        12,
        9,
        table=True,
        defaults={"unit": "none"},
        options={"xField": "machine_name", "orientation": "auto"},
    ),
    Panel(
        OVERVIEW,
        "bargauge",
        "workshop_losses",
        this_shift("oee", "workshop", *LOSS_FIELDS),
        12,
        9,
        table=True,  # one bar per column, named by the field
        defaults={"unit": "s"},
        options={"orientation": "horizontal", "displayMode": "basic"},
    ),
    # -- machine detail --
    Panel(
        MACHINE,
        "timeseries",
        "ratio_trend",
        trend("oee", *columns(*RATIOS)),
        16,
        9,
        defaults=ratio(),
    ),
    Panel(
        MACHINE,
        "stat",
        "state_now",
        Show("machine_state", Select.STATE_NOW, columns("state"), one_machine=True),
        8,
        9,
        defaults={"mappings": STATE_NAMES},
        options={"colorMode": "background", "reduceOptions": {"fields": "/.*/", "calcs": ["lastNotNull"]}},
    ),
    Panel(
        MACHINE,
        "state-timeline",
        "states",
        Show("machine_state", Select.STATES, columns("state"), one_machine=True),
        24,
        4,
        defaults={"mappings": STATE_NAMES},
        options={"mergeValues": True, "showValue": "auto"},
    ),
    Panel(
        MACHINE,
        "timeseries",
        "cycle_trend",
        trend(
            "oee",
            Column("actual_cycle_s", "apt_s", "produced"),
            Column("ideal_cycle_s", "ideal_s", "produced"),
        ),
        12,
        8,
        defaults={"unit": "s"},
    ),
    Panel(
        MACHINE,
        "table",
        "machine_losses",
        Show(
            "oee",
            Select.THIS_SHIFT,
            columns(*LOSS_FIELDS, "planned_stop_s", "micro_stops"),
            scope="machine",
            one_machine=True,
        ),
        12,
        8,
        table=True,
        defaults={"unit": "s"},
    ),
    Panel(
        MACHINE,
        "timeseries",
        "energy_trend",
        trend("energy", *columns("kwh_per_unit", "idle_energy_share")),
        24,
        8,
    ),
    # -- energy and carbon --
    Panel(
        ENERGY,
        "bargauge",
        "machine_kwh_per_unit",
        this_shift("energy", "machine", "machine_name", "kwh_per_unit", by=("machine",)),
        12,
        9,
        table=True,
        defaults=PER_UNIT,
        options={**HORIZONTAL, **ALL_ROWS},
        transformations=by_name("machine"),
    ),
    Panel(
        ENERGY,
        "bargauge",
        "line_kwh_per_unit",
        this_shift("energy", "line", "line_name", "kwh_per_unit", by=("line",)),
        12,
        9,
        table=True,
        defaults=PER_UNIT,
        options={**HORIZONTAL, **ALL_ROWS},
        transformations=by_name("line"),
    ),
    Panel(
        ENERGY,
        "bargauge",
        "machine_idle_share",
        this_shift("energy", "machine", "machine_name", "idle_energy_share", by=("machine",)),
        12,
        9,
        table=True,
        defaults={"unit": "percentunit", "min": 0, "max": 1},
        options={**HORIZONTAL, **ALL_ROWS},
        transformations=by_name("machine"),
    ),
    Panel(
        ENERGY,
        "stat",
        "workshop_carbon_per_unit",
        this_shift("energy", "workshop", *CARBON_PER_UNIT),
        4,
        9,
        defaults={"unit": "masskg", "decimals": 4},
    ),
    Panel(
        ENERGY,
        "stat",
        "workshop_kgce_per_unit",
        this_shift("energy", "workshop", "kgce_per_unit"),
        4,
        9,
        defaults={"unit": "masskg", "decimals": 4},
    ),
    Panel(
        ENERGY,
        "stat",
        "main_meter_kwh",
        this_shift("energy", "workshop", "kwh_main_meter"),
        4,
        9,
        defaults={"unit": "kwatth", "decimals": 1},
    ),
    Panel(
        ENERGY,
        "table",
        "energy_by_shift",
        Show(
            "energy",
            Select.CLOSED_SHIFTS,
            columns("shift_start", "machine_name", "shift_name", *ENERGY_TABLE_FIELDS),
            scope="machine",
            by=("machine", "shift"),
        ),
        24,
        10,
        table=True,
        defaults={"decimals": 3},
    ),
    Panel(
        ENERGY,
        "table",
        "energy_by_day",
        Show(
            "energy",
            Select.DAYS,
            columns("day", "machine_name", *ENERGY_TABLE_FIELDS),
            scope="machine",
            by=("machine",),
        ),
        24,
        10,
        table=True,
        defaults={"decimals": 3},
    ),
    # -- crews: their days summed over the time range (this month by default), their days, their shifts --
    Panel(
        CREWS,
        "bargauge",
        "crew_totals",
        Show("oee", Select.DAY_TOTALS, (Column("crew_name"), CREW_OEE), scope="crew", by=("crew",)),
        12,
        10,
        table=True,
        defaults=ratio(),
        options={**HORIZONTAL, **ALL_ROWS},
        transformations=by_name("crew"),
    ),
    Panel(
        CREWS,
        "table",
        "crew_sums",
        Show("oee", Select.DAY_TOTALS, CREW_TOTAL_COLUMNS, scope="crew", by=("crew",)),
        12,
        10,
        table=True,
        defaults={"decimals": 3},
        transformations=by_name("crew"),
    ),
    Panel(
        CREWS,
        "table",
        "crew_days",
        Show(
            "oee",
            Select.DAYS,
            columns("day", "crew_name", *RATIOS, "produced", "good_counted"),
            scope="crew",
            by=("crew",),
        ),
        24,
        10,
        table=True,
        defaults={"decimals": 3},
    ),
    Panel(
        CREWS,
        "table",
        "crew_shifts",
        Show(
            "oee",
            Select.CLOSED_SHIFTS,
            columns("shift_start", "shift_name", "crew_name", *RATIOS, "produced", "good_counted"),
            scope="workshop",
            by=("crew",),
        ),
        24,
        10,
        table=True,
        defaults={"decimals": 3},
    ),
)


@dataclass(frozen=True)
class Dashboard:
    uid: str
    file: str
    machine_variable: bool = False
    time_from: str = "now-12h"  # the default time range's start

    def uid_in(self, language: str) -> str:
        """Unique per language: both sets can be provisioned into one Grafana."""
        return self.uid if language == DEFAULT_LANGUAGE else f"{self.uid}-{language.lower()}"


DASHBOARDS = (
    Dashboard(OVERVIEW, "workshop-overview.json"),
    Dashboard(MACHINE, "machine-detail.json", machine_variable=True),
    Dashboard(ENERGY, "energy-carbon.json"),
    Dashboard(CREWS, "crews.json", time_from="now/M"),  # this month so far
)


def variable(name: str, label: str, query: str, *, hide: int = 0, refresh: int = 1) -> dict[str, Any]:
    """A query variable; Grafana selects the first value (sorted) until a user picks another."""
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": refresh,  # 1: when the dashboard loads; 2: whenever the time range changes
        "sort": 1,
        "hide": hide,  # 2: not shown
        "includeAll": False,
        "multi": False,
        "current": {},
    }


def tag_values(name: str, words: Catalogue, condition: str | None = None) -> dict[str, Any]:
    query = f'SHOW TAG VALUES FROM "oee" WITH KEY = "{name}"'
    label = words(f"dashboard.variable.{name}")
    return variable(name, label, f"{query} WHERE {condition}" if condition else query)


def variables(board: Dashboard, words: Catalogue) -> list[dict[str, Any]]:
    found = [
        tag_values("site", words),
        tag_values("area", words, '"site" =~ /^$site$/'),
        tag_values("agent", words, '"site" =~ /^$site$/ AND "area" =~ /^$area$/'),
        variable(
            "shift_start",
            words("dashboard.variable.shift_start"),
            f'SELECT last("shift_start") FROM "oee" WHERE {ORIGIN} AND "scope" = \'workshop\' AND '
            "\"period\" = 'shift' AND \"shift\" != 'no_shift' AND $timeFilter",
            hide=2,
            refresh=2,
        ),
    ]
    if board.machine_variable:
        found.append(tag_values("machine", words, ORIGIN))
    return found


def state_mappings(words: Catalogue) -> list[dict[str, Any]]:
    options = {
        state: {"color": colour, "index": index, "text": words.state(state)}
        for index, (state, colour) in enumerate(STATE_COLOURS.items())
    }
    return [{"type": "value", "options": options}]


class Layout:
    """Panels placed left to right, wrapping at Grafana's 24 columns; ids in order."""

    def __init__(self, words: Catalogue) -> None:
        self.words = words
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def add(self, panel: Panel) -> None:
        if self.x + panel.width > GRID_COLUMNS:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        target = {
            "refId": "A",
            "datasource": DATASOURCE,
            "rawQuery": True,
            "query": influxql(panel.show),
            "resultFormat": "table" if panel.table else "time_series",
        }
        defaults = dict(panel.defaults)
        if defaults.get("mappings") == STATE_NAMES:
            defaults["mappings"] = state_mappings(self.words)
        rendered: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": panel.type,
            "title": self.words(f"dashboard.panel.{panel.title}"),
            "datasource": DATASOURCE,
            "gridPos": {"x": self.x, "y": self.y, "w": panel.width, "h": panel.height},
            "targets": [target],
            "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": dict(panel.options),
        }
        if panel.transformations:
            rendered["transformations"] = [dict(t) for t in panel.transformations]
        if panel.show.select is Select.TREND:
            rendered["maxDataPoints"] = TREND_MAX_DATA_POINTS
        self.panels.append(rendered)
        self.x += panel.width
        self.row_height = max(self.row_height, panel.height)


def dashboard(board: Dashboard, language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    words = catalogue(language)
    layout = Layout(words)
    for panel in PANELS:
        if panel.dashboard == board.uid:
            layout.add(panel)
    return {
        "uid": board.uid_in(language),
        "title": words(f"dashboard.{board.uid}"),
        "tags": ["shopfloor", "edge-agent", language],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": board.time_from, "to": "now"},
        "templating": {"list": variables(board, words)},
        "annotations": {"list": []},
        # the other dashboards of the same language
        "links": [{"type": "dashboards", "tags": ["edge-agent", language], "asDropdown": False}],
        "panels": layout.panels,
    }


def render() -> dict[str, str]:
    """Every dashboard in every language: <language>/<file> -> JSON text."""
    return {
        f"{language}/{board.file}": json.dumps(dashboard(board, language), indent=2, ensure_ascii=False)
        + "\n"
        for language in languages()
        for board in DASHBOARDS
    }


def main() -> int:
    for name, text in render().items():
        path = OUT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
