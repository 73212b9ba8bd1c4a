"""The Grafana dashboards against what the agent writes: every measurement, field and tag a panel
queries exists in agent/sinks/points.py SCHEMA, SCHEMA is what to_point really produces, and the
committed JSON is what deploy/grafana/generate.py writes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import re
import zoneinfo
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import pytest
import yaml

from agent.config.loader import load_config
from agent.records import Envelope
from agent.sim.history import simulated_records
from agent.sinks.points import SCHEMA, to_points
from agent.sinks.registry import topic_root
from tests.conftest import REPO, SAMPLE_WORKSHOP

GRAFANA = REPO / "deploy" / "grafana"
FLUX_COLUMNS = {"_time", "_value", "_field", "_measurement", "_start", "_stop"}
Schema = Mapping[str, Mapping[str, tuple[str, ...]]]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("grafana_generate", GRAFANA / "generate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dashboards() -> dict[str, dict[str, Any]]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8"))
        for p in sorted((GRAFANA / "dashboards").glob("*.json"))
    }


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(panel["title"], target["query"]) for panel in board["panels"] for target in panel["targets"]]
    found += [(f"variable {v['name']}", v["query"]) for v in board["templating"]["list"]]
    return found


def query_problems(where: str, query: str, schema: Schema, variables: set[str]) -> list[str]:
    """What in one Flux query names something the agent does not write."""
    all_tags = {tag for m in schema.values() for tag in m["tags"]}
    problems = [
        f"{where}: tag '{tag}' is written by no measurement"
        for tag in re.findall(r'schema\.tagValues\([^)]*tag: "(\w+)"', query)
        if tag not in all_tags
    ]
    problems += [
        f"{where}: variable ${{{name}}} is not defined"
        for name in re.findall(r"\$\{(\w+)\}", query)
        if name not in variables and not name.startswith("__")
    ]
    measurements = set(re.findall(r'r\._measurement == "(\w+)"', query))
    if "schema.tagValues" in query and not measurements:
        return problems
    if len(measurements) != 1:
        return [*problems, f"{where}: expected one measurement, found {sorted(measurements)}"]
    [measurement] = measurements
    if measurement not in schema:
        return [*problems, f"{where}: measurement '{measurement}' is not written"]
    known_fields, known_tags = set(schema[measurement]["fields"]), set(schema[measurement]["tags"])
    derived = set(re.findall(r"(\w+):\s*r\.", query))  # columns a map() creates
    named_fields = set(re.findall(r'r\._field == "(\w+)"', query))
    for field_set in re.findall(r"contains\(value: r\._field, set: \[([^\]]*)\]\)", query):
        named_fields |= set(re.findall(r'"(\w+)"', field_set))
    problems += [
        f"{where}: field '{n}' is not written to '{measurement}'" for n in sorted(named_fields - known_fields)
    ]
    columns = set(re.findall(r"\br\.(\w+)", query))
    for listed in re.findall(r"(?:columns|rowKey|columnKey): \[([^\]]*)\]", query):
        columns |= set(re.findall(r'"(\w+)"', listed))
    allowed = known_fields | known_tags | FLUX_COLUMNS | derived
    problems += [
        f"{where}: column '{c}' is neither a tag nor a field of '{measurement}'"
        for c in sorted(columns - allowed)
    ]
    return problems


def dashboard_problems(board: dict[str, Any], schema: Schema) -> list[str]:
    variables = {v["name"] for v in board["templating"]["list"]}
    problems = []
    for where, query in queries(board):
        problems += query_problems(f"{board['uid']} / {where}", query, schema, variables)
    return problems


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_query_names_only_what_the_agent_writes(name: str) -> None:
    assert dashboard_problems(dashboards()[name], SCHEMA) == []


def test_a_renamed_field_breaks_the_check() -> None:
    renamed = {m: dict(spec) for m, spec in SCHEMA.items()}
    renamed["energy"]["fields"] = tuple(
        f if f != "kwh_per_unit" else "kwh_per_piece" for f in SCHEMA["energy"]["fields"]
    )
    problems = [p for board in dashboards().values() for p in dashboard_problems(board, renamed)]
    assert any("field 'kwh_per_unit' is not written to 'energy'" in p for p in problems)
    assert any("column 'kwh_per_unit'" in p for p in problems)  # used after a pivot too


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    rendered = load_generator().render()
    committed = {p.name: p.read_text(encoding="utf-8") for p in (GRAFANA / "dashboards").glob("*.json")}
    assert committed == rendered, "run `make dashboards` and commit the result"


def test_dashboards_are_well_formed_and_use_the_provisioned_datasource() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/edge-influx.yaml").read_text(encoding="utf-8")
    )
    [datasource] = provisioned["datasources"]
    assert datasource["jsonData"]["version"] == "Flux"
    assert datasource["secureJsonData"]["token"] == "${INFLUX_TOKEN}"  # from the environment, never in a file
    uids = set()
    for board in dashboards().values():
        uids.add(board["uid"])
        assert board["title"]
        assert board["schemaVersion"] >= 36
        ids = [panel["id"] for panel in board["panels"]]
        assert len(ids) == len(set(ids))
        for panel in board["panels"]:
            grid = panel["gridPos"]
            assert grid["x"] >= 0, panel["title"]
            assert grid["x"] + grid["w"] <= 24, panel["title"]
            assert grid["h"] > 0, panel["title"]
            assert panel["datasource"]["uid"] == datasource["uid"]
            assert all(t["datasource"]["uid"] == datasource["uid"] and t["query"] for t in panel["targets"])
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] == datasource["uid"]
        overlaps = _overlapping(board["panels"])
        assert not overlaps, overlaps
    assert uids == {"edge-overview", "edge-machine", "edge-energy"}


def _overlapping(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        g = panel["gridPos"]
        return {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}

    return [
        (a["title"], b["title"]) for i, a in enumerate(panels) for b in panels[i + 1 :] if cells(a) & cells(b)
    ]


def test_schema_is_exactly_what_the_agent_writes_over_a_shift_change() -> None:
    """Two hours of the sample workshop across the 08:00 shift change, as InfluxDB points."""
    config = load_config(SAMPLE_WORKSHOP)
    start = dt.datetime(2026, 11, 24, 7, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")).timestamp()
    records = simulated_records(config, start, 2 * 3600.0, poll_s=5.0)
    topics = topic_root(config)
    seen: dict[str, dict[str, set[str]]] = {}
    for seq, record in enumerate(records):
        for point in to_points(Envelope("gw", seq, record), topics):
            name = point._name
            if name == "agent":
                continue
            entry = seen.setdefault(name, {"tags": set(), "fields": set()})
            entry["tags"] |= set(point._tags)
            entry["fields"] |= set(point._fields)
    assert set(seen) == set(SCHEMA)
    for measurement, spec in SCHEMA.items():
        assert seen[measurement]["tags"] <= set(spec["tags"]), measurement
        assert seen[measurement]["fields"] <= set(spec["fields"]), measurement
        unwritten = set(spec["fields"]) - seen[measurement]["fields"]
        assert unwritten <= {"reason"}, (measurement, unwritten)  # reason: only when a rule gives one
