"""The published schemas: the shipped files are what the code generates, every record of a
simulated night (shift finals, a day's and a crew's totals, raw tags) follows its schema in both
topic styles, every topic is in the catalogue, and UMH payloads pass UMH's own schema."""

from __future__ import annotations

import datetime as dt
import functools
import json
import zoneinfo
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.kpi.engine import KpiEngine
from agent.records import Envelope, Record, RecordKind, from_json
from agent.schemas.catalogue import shape_of, topic_shapes
from agent.schemas.files import generated, load, render, schemas_dir
from agent.sim.history import feed
from agent.sim.server import WorkshopSimulator
from agent.sinks.registry import topic_root
from agent.sinks.topics import TopicRoot
from agent.sinks.umh import UmhTopics, historian_payload, umh_level
from tests.conftest import CONFIGS

UMH_FIXTURE = Path(__file__).parents[1] / "fixtures" / "umh" / "historian.schema.json"
SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")


def at(day: int, hour: int) -> float:
    return dt.datetime(2026, 11, day, hour, 0, tzinfo=SHANGHAI).timestamp()


@functools.cache
def umh_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(UMH_FIXTURE.read_text(encoding="utf-8")))


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    schema = load(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> tuple[TopicRoot, list[Envelope]]:
    """The Chinese sample (crews, names) with raw tags of one machine, 23:00 to 00:30: the middle
    shift closes at midnight, and so does the day with its crews' totals."""
    text = (CONFIGS / "grinding-zh-workshop.yaml").read_text(encoding="utf-8")
    text = text.replace("unit: 1, ideal_cycle_s: 5.5}", "unit: 1, ideal_cycle_s: 5.5, publish_tags: true}", 1)
    path = tmp_path_factory.mktemp("night") / "workshop.yaml"
    path.write_text(text + f"profiles_dir: {CONFIGS / 'devices'}\n", encoding="utf-8")
    config = load_config(path)
    start, end = at(24, 23), at(25, 0) + 1800
    engine = KpiEngine(build_engine_setup(config, publish_interval_s=300.0), start)
    records = feed(config, engine, WorkshopSimulator(config, lambda: start), start, end, 30.0)
    return topic_root(config), [Envelope("gw-zh", seq, r) for seq, r in enumerate(records, 1)]


def test_the_shipped_files_are_what_the_code_generates() -> None:
    """`python -m agent.schemas` regenerates them after a change of a record's fields."""
    expected = generated()
    shipped = {path.name: path.read_text(encoding="utf-8") for path in schemas_dir().glob("*.json")}
    assert set(shipped) == set(expected)
    for name, document in expected.items():
        assert shipped[name] == render(document), f"{name} is stale: run python -m agent.schemas"


def test_every_kind_of_a_night_follows_its_schema_in_both_styles(
    night: tuple[TopicRoot, list[Envelope]],
) -> None:
    root, envelopes = night
    umh = UmhTopics(root)
    historian = umh_validator()
    seen: set[tuple[str, str]] = set()
    for envelope in envelopes:
        for style, topics in (("isa95", root), ("umh", umh)):
            topic = topics.topic(envelope)
            shape = shape_of(style, topic)
            assert shape is not None, f"{style} topic {topic} is in no catalogue entry"
            assert shape.kind is envelope.record.kind
            payload = topics.payload(envelope)
            assert payload is not None
            body = from_json(payload)
            validator(shape.schema).validate(body)
            if style == "umh":
                historian.validate(body)
            seen.add((envelope.record.kind.value, str(envelope.record.fields.get("period"))))
    assert seen >= {
        ("state", "None"),
        ("tags", "None"),
        *((kind, p) for kind in ("oee", "energy", "line_oee", "workshop_oee") for p in ("shift", "day")),
        ("crew_oee", "day"),
        ("crew_energy", "day"),
    }


@pytest.mark.parametrize(
    ("record", "key", "message"),
    [
        (Record(RecordKind.STATE, 1.0, {"machine": "m", "line": "l", "state": "running"}), "state", "enum"),
        (Record(RecordKind.OEE, 1.0, {"machine": "m", "line": "l"}), "period", "required"),
    ],
)
def test_a_record_off_its_schema_is_refused_naming_the_key(record: Record, key: str, message: str) -> None:
    schema = validator(f"record-{record.kind.value}.schema.json")
    errors = list(schema.iter_errors(Envelope("a", 1, record).payload()))
    assert any(key in str(error.message) or key in list(error.path) for error in errors), errors
    assert any(error.validator == message for error in errors)


def test_a_new_key_is_refused_so_the_schemas_cannot_fall_behind(
    night: tuple[TopicRoot, list[Envelope]],
) -> None:
    _, envelopes = night
    oee = next(e for e in envelopes if e.record.kind is RecordKind.OEE)
    body: dict[str, Any] = {**oee.payload(), "oee_pct": 61.8}
    with pytest.raises(jsonschema.ValidationError, match="oee_pct"):
        validator("record-oee.schema.json").validate(body)


def test_umh_levels_and_payloads_keep_to_umh_rules() -> None:
    assert umh_level("line.1") == "line-1"
    assert umh_level("_x+y#z/w") == "-x-y-z-w"
    root = TopicRoot("tianhe.bearing", "plant-1", "grinding", "gw.1")
    umh = UmhTopics(root)
    energy = Record(
        RecordKind.ENERGY,
        1_790_000_000.2504,
        {
            "machine": "grinder.07",
            "line": "line.1",
            "period": "shift",
            "kwh": 14.2,
            "kwh_per_unit": None,
            "co2_kg": float("nan"),
            "meter": {"id": "m-1", "own_plc": False, "ct_ratio": None},
        },
    )
    envelope = Envelope("gw.1", 7, energy)
    root_topic = "umh/v1/tianhe-bearing/plant-1/grinding"
    assert umh.topic(envelope) == f"{root_topic}/line-1/grinder-07/_historian/shift/energy"
    assert historian_payload(envelope) == {
        "timestamp_ms": 1_790_000_000_250,
        "agent": "gw.1",
        "seq": 7,
        "period": "shift",
        "kwh": 14.2,
        "meter_id": "m-1",
        "meter_own_plc": False,
    }
    assert umh.status == "umh/v1/tianhe-bearing/plant-1/grinding/_agent/gw-1/status"
    flagged = Record(RecordKind.OEE, 1.0, {"machine": "m", "line": "l", "period": "day", "flags": ["a", "b"]})
    assert historian_payload(Envelope("a", 1, flagged))["flags"] == "a,b"
    assert umh.topic(Envelope("a", 1, flagged)) == f"{root_topic}/l/m/_historian/day/oee"


def test_a_tags_record_without_a_storable_value_is_not_published() -> None:
    umh = UmhTopics(TopicRoot("e", "s", "a", "gw"))
    empty = Record(RecordKind.TAGS, 1.0, {"machine": "m", "line": "l", "values": {"x": None}})
    assert umh.payload(Envelope("gw", 1, empty)) is None


def test_every_catalogue_entry_has_a_shipped_valid_schema() -> None:
    index = load("topics.json")
    assert [(t["style"], t["topic"], t["schema"]) for t in index["topics"]] == [
        (s.style, s.topic, s.schema) for s in topic_shapes()
    ]
    for shape in topic_shapes():
        jsonschema.Draft202012Validator.check_schema(load(shape.schema))
    validator("status.schema.json").validate("online")
    with pytest.raises(jsonschema.ValidationError):
        validator("status.schema.json").validate("on-line")


def test_edge_agent_schemas_lists_each_topic_with_its_file_and_copies_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    assert main(["--language", "en", "schemas", "--style", "umh"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].startswith(f"JSON Schemas of every published payload, in {schemas_dir()}")
    assert "umh/v1/{enterprise}/{site}/{area}/{line}/{machine}/_historian/{period}/oee" in listed[2]
    assert listed[2].endswith("umh-oee.schema.json")
    assert all(line.startswith("umh ") for line in listed[1:])
    assert len(listed) == 1 + len([s for s in topic_shapes() if s.style == "umh"])
    assert main(["--language", "zh-CN", "schemas", "--out", str(tmp_path / "out")]) == 0
    assert "已写入" in capsys.readouterr().out
    copied = {p.name: p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()}
    assert copied == {p.name: p.read_text(encoding="utf-8") for p in schemas_dir().glob("*.json")}
