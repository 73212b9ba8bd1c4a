"""The Grafana dashboards against what the agent writes: every measurement, field and tag a query
names exists in agent/sinks/points.py SCHEMA, SCHEMA is what to_points really produces, and the
committed JSON is what deploy/grafana/generate.py writes. (That each query runs and answers with
the records' values: tests/integration/test_dashboard_queries.py.)"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import zoneinfo
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from agent.config.loader import load_config
from agent.i18n import DEFAULT_LANGUAGE, catalogue, languages
from agent.records import Envelope
from agent.sim.history import simulated_records
from agent.sinks.points import CARBON_FIELDS, SCHEMA, to_points
from agent.sinks.registry import topic_root
from tests.conftest import CONFIGS, SAMPLE_WORKSHOP
from tests.dashboard_files import GRAFANA, dashboards, every_dashboard, load_generator

GLOBAL_VARIABLES = {"timeFilter", "__interval", "__interval_ms", "__to", "__from"}
Schema = Mapping[str, Mapping[str, tuple[str, ...]]]


def queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    found = [(panel["title"], target["query"]) for panel in board["panels"] for target in panel["targets"]]
    found += [(f"variable {v['name']}", v["query"]) for v in board["templating"]["list"]]
    return found


def query_problems(where: str, query: str, schema: Schema, variables: set[str]) -> list[str]:
    """What in one InfluxQL query names something the agent does not write."""
    problems = [
        f"{where}: variable ${name} is not defined"
        for name in re.findall(r"\$\{?(\w+)", query)
        if name not in variables | GLOBAL_VARIABLES
    ]
    if "now()" in query:
        problems.append(f"{where}: now() is the server's clock; a dashboard's now is its range's end")
    measurements = set(re.findall(r'FROM "(\w+)"', query))
    if len(measurements) != 1:
        return [*problems, f"{where}: expected one measurement, found {sorted(measurements)}"]
    [measurement] = measurements
    if measurement not in schema:
        return [*problems, f"{where}: measurement '{measurement}' is not written"]
    fields, tags = set(schema[measurement]["fields"]), set(schema[measurement]["tags"])
    aliases = set(re.findall(r'AS "(\w+)"', query))
    key = re.findall(r'WITH KEY = "(\w+)"', query)
    problems += [f"{where}: '{k}' is not a tag of '{measurement}'" for k in key if k not in tags]
    named = set(re.findall(r'"(\w+)"', query)) - aliases - {measurement, *key}
    problems += [
        f"{where}: '{name}' is neither a tag nor a field of '{measurement}'"
        for name in sorted(named - fields - tags)
    ]
    return problems


def dashboard_problems(board: dict[str, Any], schema: Schema) -> list[str]:
    variables = {v["name"] for v in board["templating"]["list"]}
    problems = []
    for where, query in queries(board):
        problems += query_problems(f"{board['uid']} / {where}", query, schema, variables)
    return problems


@pytest.mark.parametrize("name", sorted(every_dashboard()))
def test_every_query_names_only_what_the_agent_writes(name: str) -> None:
    assert dashboard_problems(every_dashboard()[name], SCHEMA) == []


WORDS = frozenset({"title", "label"})  # what a language changes; "text" of a state's mapping too


def without_words(value: Any) -> Any:
    """A dashboard with every translated text taken out (and the language in its uid and tags)."""
    if isinstance(value, dict):
        kept = {k: without_words(v) for k, v in value.items() if k not in WORDS and k != "uid"}
        if "color" in value and "index" in value:
            kept.pop("text", None)
        if "tags" in value:
            kept["tags"] = [t for t in value["tags"] if t not in languages()]
        return kept
    if isinstance(value, list):
        return [without_words(v) for v in value]
    return value


def test_every_language_has_the_same_dashboards_with_the_same_queries() -> None:
    """Running each query of one language (tests/integration/test_dashboard_queries.py) runs them
    all: the languages differ in their words only, never in a query, a variable or a layout."""
    english = dashboards(DEFAULT_LANGUAGE)
    for language in languages():
        translated = dashboards(language)
        assert set(translated) == set(english), language
        for name, board in translated.items():
            assert without_words(board) == without_words(english[name]), (language, name)
            assert board["uid"].startswith(english[name]["uid"])
    uids = [board["uid"] for board in every_dashboard().values()]
    assert len(uids) == len(set(uids))  # both languages can live in one Grafana


def test_chinese_dashboards_speak_chinese() -> None:
    words = catalogue("zh-CN")
    board = dashboards("zh-CN")["workshop-overview.json"]
    assert board["title"] == words("dashboard.edge-overview") == "车间总览"
    assert {p["title"] for p in board["panels"]} >= {"车间 OEE（本班）", "设备状态"}
    timeline = next(p for p in board["panels"] if p["type"] == "state-timeline")
    [mapping] = timeline["fieldConfig"]["defaults"]["mappings"]
    assert mapping["options"]["fault"]["text"] == "故障"
    assert mapping["options"]["producing"]["text"] == "运行"
    assert [v["label"] for v in board["templating"]["list"]][:3] == ["工厂", "车间", "采集网关"]


def test_a_renamed_field_breaks_the_check() -> None:
    renamed = {m: dict(spec) for m, spec in SCHEMA.items()}
    renamed["energy"]["fields"] = tuple(
        f if f != "kwh_per_unit" else "kwh_per_piece" for f in SCHEMA["energy"]["fields"]
    )
    problems = [p for board in every_dashboard().values() for p in dashboard_problems(board, renamed)]
    assert any("'kwh_per_unit' is neither a tag nor a field of 'energy'" in p for p in problems)


def test_a_dropped_tag_breaks_the_check() -> None:
    dropped = {m: {**s, "tags": tuple(t for t in s["tags"] if t != "agent")} for m, s in SCHEMA.items()}
    problems = [p for board in every_dashboard().values() for p in dashboard_problems(board, dropped)]
    assert any("variable agent: 'agent' is not a tag of 'oee'" in p for p in problems)


def test_the_committed_dashboards_are_what_the_generator_writes() -> None:
    rendered = load_generator().render()
    committed = {
        f"{p.parent.name}/{p.name}": p.read_text(encoding="utf-8")
        for p in (GRAFANA / "dashboards").glob("*/*.json")
    }
    assert committed == rendered, "run `make dashboards` and commit the result"


def test_every_panel_of_the_list_is_in_a_dashboard_once() -> None:
    generator = load_generator()
    titles = [(p.dashboard, p.title) for p in generator.PANELS]
    assert len(titles) == len(set(titles))
    for language in languages():
        words = catalogue(language)
        shown = [
            (board["uid"], panel["title"])
            for board in dashboards(language).values()
            for p in [0]
            for panel in board["panels"]
        ]
        expected = [
            (generator.Dashboard(uid, "").uid_in(language), words(f"dashboard.panel.{title}"))
            for uid, title in titles
        ]
        assert sorted(shown) == sorted(expected), language


def test_dashboards_are_well_formed_and_use_the_provisioned_influxql_datasource() -> None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/edge-influx.yaml").read_text(encoding="utf-8")
    )
    [datasource] = provisioned["datasources"]
    assert datasource["jsonData"].get("version", "InfluxQL") == "InfluxQL"
    assert datasource["jsonData"]["dbName"] == "${INFLUX_DATABASE}"
    assert datasource["secureJsonData"]["password"] == "${INFLUX_READ_PASSWORD}"  # never in a file
    uids = set()
    for board in dashboards().values():  # the other languages: the same but for words (above)
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
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == datasource["uid"]
                assert target["rawQuery"] is True, panel["title"]  # or Grafana builds its own query
                assert target["resultFormat"] in ("time_series", "table")
        for var in board["templating"]["list"]:
            assert var["datasource"]["uid"] == datasource["uid"]
        overlaps = _overlapping(board["panels"])
        assert not overlaps, overlaps
    assert uids == {"edge-overview", "edge-machine", "edge-energy", "edge-crews"}


def _overlapping(panels: list[dict[str, Any]]) -> list[tuple[str, str]]:
    def cells(panel: dict[str, Any]) -> set[tuple[int, int]]:
        g = panel["gridPos"]
        return {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}

    return [
        (a["title"], b["title"]) for i, a in enumerate(panels) for b in panels[i + 1 :] if cells(a) & cells(b)
    ]


def test_schema_is_exactly_what_the_agent_writes_over_a_shift_change() -> None:
    """Two hours of the sample workshop across the 08:00 shift change, and two hours of the
    Chinese sample (names, crews) across midnight, where its crews' day totals are published."""
    seen: dict[str, dict[str, set[str]]] = {}
    for sample, hour in ((SAMPLE_WORKSHOP, 7), (CONFIGS / "grinding-zh-workshop.yaml", 23)):
        config = load_config(sample)
        start = dt.datetime(2026, 11, 24, hour, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Shanghai")).timestamp()
        records = simulated_records(config, start, 2 * 3600.0, poll_s=5.0)
        topics = topic_root(config)
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
        # reason: only when a rule gives one; the sample's grid factor is CO2-only: no co2e fields
        assert unwritten <= {"reason", *CARBON_FIELDS["co2e"]}, (measurement, unwritten)
    for measurement in ("oee", "energy", "machine_state"):
        assert {"enterprise", "site", "area", "agent"} <= seen[measurement]["tags"]


def test_a_new_field_on_a_panel_is_one_more_name_in_the_panel_list() -> None:
    """The energy tables show ENERGY_TABLE_FIELDS; a field added there (kgce, say) is queried, and
    the integration test's truth reads it from the records by the same description."""
    generator = load_generator()
    tables = [p for p in generator.PANELS if p.dashboard == generator.ENERGY and p.type == "table"]
    assert {p.title for p in tables} == {"energy_by_shift", "energy_by_day"}
    for panel in tables:
        assert panel.show.columns[-len(generator.ENERGY_TABLE_FIELDS) :] == generator.columns(
            *generator.ENERGY_TABLE_FIELDS
        )
        wider = dataclasses.replace(panel.show, columns=(*panel.show.columns, generator.Column("kgce")))
        assert '"kgce" FROM "energy"' in generator.influxql(wider)
