"""Writes the Grafana dashboards in deploy/grafana/dashboards/ (run `make dashboards`).

The queries are written here by hand, in Flux; tests/unit/test_dashboards.py checks every
measurement, field and tag they name against the schema the agent writes
(agent/sinks/points.py SCHEMA), so a rename on either side fails the tests.

"This shift" panels take each series' latest point of the last 13 hours: the agent publishes the
current shift every minute, so the latest point is the shift so far (shifts are at most 12 h).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

DATASOURCE = {"type": "influxdb", "uid": "edge-influx"}
OUT = Path(__file__).resolve().parent / "dashboards"
SCHEMA_VERSION = 39
SCOPE_FILTER = 'r.site == "${site}" and r.area == "${area}"'
STATE_COLOURS = {
    "producing": "green",
    "setup": "blue",
    "idle": "yellow",
    "fault": "red",
    "planned_stop": "purple",
    "no_shift": "#8e8e8e",
    "offline": "#4b4b4b",
}
LOSS_FIELDS = ("setup_s", "idle_s", "fault_s", "micro_stop_s", "offline_s")


def flux(measurement: str, condition: str, *steps: str, start: str = "v.timeRangeStart") -> str:
    lines = [
        "from(bucket: v.defaultBucket)",
        f"  |> range(start: {start}, stop: v.timeRangeStop)",
        f'  |> filter(fn: (r) => r._measurement == "{measurement}" and {SCOPE_FILTER} and {condition})',
    ]
    return "\n".join(lines + [f"  |> {step}" for step in steps])


def this_shift(measurement: str, condition: str, *steps: str) -> str:
    return flux(measurement, f'r.period == "shift" and {condition}', *steps, start="-13h")


def fields(*names: str) -> str:
    return "contains(value: r._field, set: [" + ", ".join(f'"{n}"' for n in names) + "])"


class Layout:
    """Panels placed left to right, wrapping at Grafana's 24 columns; ids in order."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.row_height = 0

    def add(self, panel_type: str, title: str, query: str, width: int, height: int, **extra: Any) -> None:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel: dict[str, Any] = {
            "id": len(self.panels) + 1,
            "type": panel_type,
            "title": title,
            "datasource": DATASOURCE,
            "gridPos": {"x": self.x, "y": self.y, "w": width, "h": height},
            "targets": [{"refId": "A", "datasource": DATASOURCE, "query": query}],
            "fieldConfig": {"defaults": extra.pop("defaults", {}), "overrides": []},
            "options": extra.pop("options", {}),
        }
        panel.update(extra)
        self.panels.append(panel)
        self.x += width
        self.row_height = max(self.row_height, height)


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


def state_mappings() -> list[dict[str, Any]]:
    options = {
        state: {"color": colour, "index": index, "text": state.replace("_", " ")}
        for index, (state, colour) in enumerate(STATE_COLOURS.items())
    }
    return [{"type": "value", "options": options}]


def variable(name: str, label: str, tag: str, predicate: str | None = None) -> dict[str, Any]:
    query = f'import "influxdata/influxdb/schema"\nschema.tagValues(bucket: v.defaultBucket, tag: "{tag}"'
    query += f", predicate: (r) => {predicate})" if predicate else ")"
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": query,
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "includeAll": False,
        "multi": False,
    }


def dashboard(
    uid: str, title: str, layout: Layout, variables: list[dict[str, Any]], links: bool = True
) -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "tags": ["shopfloor", "edge-agent"],
        "timezone": "browser",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": False,
        "refresh": "1m",
        "time": {"from": "now-12h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"type": "dashboards", "tags": ["edge-agent"], "asDropdown": False}] if links else [],
        "panels": layout.panels,
    }


def site_variables() -> list[dict[str, Any]]:
    return [
        variable("site", "Site", "site"),
        variable("area", "Workshop", "area", 'r.site == "${site}"'),
    ]


def overview() -> dict[str, Any]:
    layout = Layout()
    workshop = 'r.scope == "workshop"'
    layout.add(
        "stat",
        "Workshop OEE (this shift)",
        this_shift("oee", f'{workshop} and r._field == "oee"', "last()"),
        6,
        4,
        defaults=ratio(),
    )
    layout.add(
        "stat",
        "Parts made (this shift)",
        this_shift("oee", f'{workshop} and r._field == "produced"', "last()"),
        6,
        4,
        defaults={"unit": "none", "decimals": 0},
    )
    layout.add(
        "stat",
        "Good parts (this shift)",
        this_shift("oee", f'{workshop} and r._field == "good"', "last()"),
        6,
        4,
        defaults={"unit": "none", "decimals": 0},
    )
    layout.add(
        "stat",
        "Machines producing now",
        flux(
            "machine_state",
            'r._field == "state"',
            'group(columns: ["machine"])',
            "last()",
            "group()",
            'filter(fn: (r) => r._value == "producing")',
            "count()",
            start="-1d",
        ),
        6,
        4,
        defaults={"unit": "none"},
    )
    layout.add(
        "bargauge",
        "OEE per machine (this shift)",
        this_shift(
            "oee", 'r.scope == "machine" and r._field == "oee"', 'group(columns: ["machine"])', "last()"
        ),
        12,
        9,
        defaults=ratio(displayName="${__field.labels.machine}"),
        options={"orientation": "horizontal", "displayMode": "gradient", "showUnfilled": True},
    )
    layout.add(
        "table",
        "Lines (this shift): availability, performance, quality, OEE",
        this_shift(
            "oee",
            'r.scope == "line" and ' + fields("availability", "performance", "quality", "oee"),
            'group(columns: ["line", "_field"])',
            "last()",
            "group()",
            'pivot(rowKey: ["line"], columnKey: ["_field"], valueColumn: "_value")',
            'keep(columns: ["line", "availability", "performance", "quality", "oee"])',
        ),
        12,
        9,
        defaults=ratio(custom={"cellOptions": {"type": "color-background"}}),
    )
    layout.add(
        "state-timeline",
        "Machine states",
        flux(
            "machine_state",
            'r._field == "state"',
            'group(columns: ["machine"])',
            'keep(columns: ["_time", "_value", "machine"])',
        ),
        24,
        10,
        defaults={"mappings": state_mappings(), "displayName": "${__field.labels.machine}"},
        options={"mergeValues": True, "showValue": "never", "rowHeight": 0.8},
    )
    layout.add(
        "barchart",
        "Parts per machine (this shift)",
        this_shift(
            "oee",
            'r.scope == "machine" and ' + fields("produced", "good"),
            'group(columns: ["machine", "_field"])',
            "last()",
            "group()",
            'pivot(rowKey: ["machine"], columnKey: ["_field"], valueColumn: "_value")',
            'keep(columns: ["machine", "produced", "good"])',
        ),
        12,
        9,
        defaults={"unit": "none"},
        options={"xField": "machine", "orientation": "auto"},
    )
    layout.add(
        "bargauge",
        "Top losses (this shift, all machines)",
        this_shift(
            "oee",
            'r.scope == "machine" and ' + fields(*LOSS_FIELDS),
            'group(columns: ["machine", "_field"])',
            "last()",
            'group(columns: ["_field"])',
            "sum()",
            "group()",
            'sort(columns: ["_value"], desc: true)',
        ),
        12,
        9,
        defaults={"unit": "s", "displayName": "${__field.labels._field}"},
        options={
            "orientation": "horizontal",
            "displayMode": "basic",
            "reduceOptions": {"values": True, "calcs": ["lastNotNull"]},
        },
    )
    return dashboard("edge-overview", "Workshop overview", layout, site_variables())


def machine_detail() -> dict[str, Any]:
    layout = Layout()
    machine = 'r.machine == "${machine}"'
    layout.add(
        "timeseries",
        "Availability, performance, quality, OEE (shift so far)",
        flux(
            "oee",
            f'{machine} and r.scope == "machine" and r.period == "shift" and '
            + fields("availability", "performance", "quality", "oee"),
            'keep(columns: ["_time", "_value", "_field"])',
        ),
        16,
        9,
        defaults=ratio(displayName="${__field.labels._field}"),
    )
    layout.add(
        "stat",
        "State now",
        flux("machine_state", f'{machine} and r._field == "state"', "last()", start="-1d"),
        8,
        9,
        defaults={"mappings": state_mappings()},
        options={"colorMode": "background", "reduceOptions": {"fields": "/.*/", "calcs": ["lastNotNull"]}},
    )
    layout.add(
        "state-timeline",
        "States",
        flux("machine_state", f'{machine} and r._field == "state"', 'keep(columns: ["_time", "_value"])'),
        24,
        4,
        defaults={"mappings": state_mappings()},
        options={"mergeValues": True, "showValue": "auto"},
    )
    layout.add(
        "timeseries",
        "Cycle time: actual against ideal (shift so far)",
        flux(
            "oee",
            f'{machine} and r.scope == "machine" and r.period == "shift" and '
            + fields("apt_s", "ideal_s", "produced"),
            'pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")',
            "filter(fn: (r) => r.produced > 0.0)",
            "map(fn: (r) => ({_time: r._time, actual_cycle_s: r.apt_s / r.produced, "
            "ideal_cycle_s: r.ideal_s / r.produced}))",
        ),
        12,
        8,
        defaults={"unit": "s"},
    )
    layout.add(
        "table",
        "Losses (this shift)",
        this_shift(
            "oee",
            f'{machine} and r.scope == "machine" and '
            + fields(*LOSS_FIELDS, "planned_stop_s", "micro_stops"),
            'group(columns: ["_field"])',
            "last()",
            "group()",
            'keep(columns: ["_field", "_value"])',
        ),
        12,
        8,
        defaults={"unit": "s"},
    )
    layout.add(
        "timeseries",
        "Energy per piece and idle share (shift so far)",
        flux(
            "energy",
            f'{machine} and r.scope == "machine" and r.period == "shift" and '
            + fields("kwh_per_unit", "idle_energy_share"),
            'keep(columns: ["_time", "_value", "_field"])',
        ),
        24,
        8,
        defaults={"displayName": "${__field.labels._field}"},
    )
    variables = [
        *site_variables(),
        variable("machine", "Machine", "machine", 'r._measurement == "oee" and r.area == "${area}"'),
    ]
    return dashboard("edge-machine", "Machine detail", layout, variables)


def energy() -> dict[str, Any]:
    layout = Layout()
    per_unit = {"unit": "kwatth", "decimals": 3}
    for scope, group, width in (("machine", "machine", 12), ("line", "line", 12)):
        layout.add(
            "bargauge",
            f"kWh per piece per {scope} (this shift)",
            this_shift(
                "energy",
                f'r.scope == "{scope}" and r._field == "kwh_per_unit"',
                f'group(columns: ["{group}"])',
                "last()",
            ),
            width,
            9,
            defaults={**per_unit, "displayName": "${__field.labels." + group + "}"},
            options={"orientation": "horizontal", "displayMode": "gradient"},
        )
    layout.add(
        "bargauge",
        "Idle energy share per machine (this shift)",
        this_shift(
            "energy",
            'r.scope == "machine" and r._field == "idle_energy_share"',
            'group(columns: ["machine"])',
            "last()",
        ),
        12,
        9,
        defaults={"unit": "percentunit", "min": 0, "max": 1, "displayName": "${__field.labels.machine}"},
        options={"orientation": "horizontal", "displayMode": "gradient"},
    )
    layout.add(
        "stat",
        "CO2e per piece, workshop (this shift)",
        this_shift("energy", 'r.scope == "workshop" and r._field == "co2e_kg_per_unit"', "last()"),
        6,
        9,
        defaults={"unit": "masskg", "decimals": 4},
    )
    layout.add(
        "stat",
        "Main meter kWh (this shift)",
        this_shift("energy", 'r.scope == "workshop" and r._field == "kwh_main_meter"', "last()"),
        6,
        9,
        defaults={"unit": "kwatth", "decimals": 1},
    )
    for period, title in (("shift", "By shift (closed shifts)"), ("day", "By day")):
        layout.add(
            "table",
            title,
            flux(
                "energy",
                f'r.scope == "machine" and r.period == "{period}" and '
                + fields(
                    "kwh", "kwh_per_unit", "kwh_per_good", "idle_energy_share", "co2e_kg_per_unit", "final"
                ),
                'pivot(rowKey: ["_time", "machine", "shift"], columnKey: ["_field"], valueColumn: "_value")',
                "filter(fn: (r) => r.final == 1)",
                "group()",
                'keep(columns: ["_time", "machine", "shift", "kwh", "kwh_per_unit", "kwh_per_good", '
                '"idle_energy_share", "co2e_kg_per_unit"])',
                'sort(columns: ["_time"], desc: true)',
            ),
            24,
            10,
            defaults={"decimals": 3},
        )
    return dashboard("edge-energy", "Energy and carbon", layout, site_variables())


DASHBOARDS = {
    "workshop-overview.json": overview,
    "machine-detail.json": machine_detail,
    "energy-carbon.json": energy,
}


def render() -> dict[str, str]:
    return {
        name: json.dumps(build(), indent=2, ensure_ascii=False) + "\n" for name, build in DASHBOARDS.items()
    }


def main() -> int:
    OUT.mkdir(exist_ok=True)
    for name, text in render().items():
        (OUT / name).write_text(text, encoding="utf-8")
        print(f"wrote {OUT / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
