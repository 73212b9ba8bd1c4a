"""Nothing in a device profile validates and is then ignored.

Every field of every profile model is classified by who consumes it (a new field must be added
here, with its consumer). Every field the KPI engine consumes is shown to change the engine's
setup, for a machine and, where a meter reads it, for a meter; a driver's field is read by the
drivers. (`energy` in a machine's profile once validated and did nothing: the machine's own kWh
register now is its meter.) What a meter's role does not use is a validation error instead:
tests/cases/energy-roles.
"""

from __future__ import annotations

import copy
import inspect
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

import agent.drivers
from agent.config import profile as profile_models
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.kpi.engine import EngineSetup

ENGINE, DRIVER, LOOKUP, DOCS = "engine", "driver", "lookup", "documentation"
REPORTS = "reports"  # read by the shift and day reports (tests/unit/test_report_data.py)
USE: dict[type[BaseModel], dict[str, str]] = {
    profile_models.Profile: {
        "name": LOOKUP,  # must match the file name: how a workshop finds it
        "kind": LOOKUP,  # a meter profile is refused for a machine and the other way round
        "description": DOCS,
        "source": DOCS,
        "addressing": DRIVER,
        "modbus": DRIVER,
        "tags": DRIVER,
        "opcua": DRIVER,
        "nodes": DRIVER,
        "state": ENGINE,
        "counters": ENGINE,
        "energy": ENGINE,
        "variant": ENGINE,
        "alarms": REPORTS,
    },
    profile_models.TagSpec: {
        "table": DRIVER,
        "address": DRIVER,
        "type": DRIVER,
        "bit": DRIVER,
        "order": DRIVER,
        "scale": DRIVER,
        "offset": DRIVER,
        "unit": DOCS,
        "description": DOCS,
        "length": DRIVER,
        "values": DRIVER,
        "interval_s": DRIVER,
    },
    profile_models.NodeSpec: {
        "node": DRIVER,
        "path": DRIVER,
        "mode": DRIVER,
        "sampling_interval_s": DRIVER,
        "deadband": DRIVER,
        "scale": DRIVER,
        "offset": DRIVER,
        "unit": DOCS,
        "description": DOCS,
        "values": DRIVER,
        "rollover": ENGINE,
    },
    profile_models.OpcUaDefaults: {
        "mode": DRIVER,
        "publishing_interval_s": DRIVER,
        "sampling_interval_s": DRIVER,
        "queue_size": DRIVER,
        "namespaces": DRIVER,
    },
    profile_models.ModbusLimits: {
        "max_registers_per_request": DRIVER,
        "max_bits_per_request": DRIVER,
        "max_gap": DRIVER,
    },
    profile_models.StateRuleSpec: {"when": ENGINE, "state": ENGINE, "reason": ENGINE},
    profile_models.CounterRoles: {
        "produced": ENGINE,
        "good": ENGINE,
        "rejected": ENGINE,
        "max_parts_per_minute": ENGINE,
    },
    profile_models.EnergyRoles: {
        "kwh": ENGINE,
        "power_kw": ENGINE,
        "rated_kw": ENGINE,
        "rollover_kwh": ENGINE,
    },
}


def test_every_profile_field_is_classified_by_its_consumer() -> None:
    models = {
        obj
        for _, obj in inspect.getmembers(profile_models, inspect.isclass)
        if issubclass(obj, BaseModel) and obj.__module__ == profile_models.__name__
    }
    assert models == set(USE)
    for model, fields in USE.items():
        assert set(model.model_fields) == set(fields), model.__name__


def test_every_driver_field_is_read_by_the_drivers() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(agent.drivers.__file__).parent.glob("*.py")
    )
    for fields in USE.values():
        for name, use in fields.items():
            if use == DRIVER:
                assert f".{name}" in source, name


MACHINE: dict[str, Any] = {
    "name": "machine",
    "kind": "grinder",
    "tags": {
        "status": {"table": "holding", "address": 0},
        "running": {"table": "holding", "address": 0, "type": "bool", "bit": 0},
        "count_a": {"table": "holding", "address": 2, "type": "uint32"},
        "count_b": {"table": "holding", "address": 4, "type": "uint32"},
        "count_c": {"table": "holding", "address": 6, "type": "uint32"},
        "kwh_a": {"table": "holding", "address": 8, "type": "uint32", "scale": 0.1},
        "kwh_b": {"table": "holding", "address": 10, "type": "uint32", "scale": 0.1},
        "kw_a": {"table": "holding", "address": 12, "type": "uint16"},
        "kw_b": {"table": "holding", "address": 13, "type": "uint16"},
        "program": {"table": "holding", "address": 14},
        "program_b": {"table": "holding", "address": 15},
    },
    "state": [{"when": "running", "state": "producing", "reason": "cycle"}, {"state": "idle"}],
    "counters": {"produced": "count_a", "good": "count_b", "rejected": "count_c", "max_parts_per_minute": 60},
    "energy": {"kwh": "kwh_a", "power_kw": "kw_a", "rated_kw": 30, "rollover_kwh": 100000},
    "variant": "program",
}
OPCUA_MACHINE: dict[str, Any] = {
    "name": "machine",
    "kind": "grinder",
    "nodes": {
        "running": {"node": "ns=2;s=Running"},
        "count": {"node": "ns=2;s=Count", "rollover": 65536},
    },
    "state": [{"when": "running", "state": "producing"}, {"state": "idle"}],
    "counters": {"produced": "count"},
}
CHANGES = {  # field path -> another valid value
    ("state", 0, "when"): "not running",
    ("state", 0, "state"): "setup",
    ("state", 0, "reason"): "grinding",
    ("counters", "produced"): "count_c",
    ("counters", "good"): None,
    ("counters", "rejected"): "count_b",
    ("counters", "max_parts_per_minute"): 120,
    ("energy", "kwh"): "kwh_b",
    ("energy", "power_kw"): "kw_b",
    ("energy", "rated_kw"): 45,
    ("energy", "rollover_kwh"): None,
    ("variant",): "program_b",
}
METER_READS = {"energy"}  # a meter's profile: what the engine reads of it
WORKSHOP = """
agent: {id: gw-test}
site: {enterprise: acme, site: plant-1, area: grinding}
CONNECTION
lines: [{id: line-1}]
machines:
  - {id: m1, line: line-1, kind: grinder, profile: machine, connection: plc, unit: 1, ideal_cycle_s: 5.0,
     NODE}
METERS
calendar: {shifts: [{name: day, start: "08:00", end: "20:00"}]}
"""
MODBUS = "connections: [{id: plc, transport: modbus-tcp, host: 127.0.0.1}]"
OPCUA = (
    "connections: [{id: plc, transport: opcua, url: 'opc.tcp://127.0.0.1:4840', security_policy: 'None',"
    " security_mode: 'None'}]"
)


def setup_of(
    tmp_path: Path, profile: dict[str, Any], *, meter: bool = False, opcua: bool = False
) -> EngineSetup:
    (tmp_path / "devices").mkdir(parents=True, exist_ok=True)
    (tmp_path / "devices" / "machine.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    plain = {k: v for k, v in profile.items() if k not in ("state", "counters", "variant")}
    (tmp_path / "devices" / "meter.yaml").write_text(
        yaml.safe_dump({**plain, "name": "meter", "kind": "meter"}), encoding="utf-8"
    )
    meters = (
        "meters: [{id: e1, profile: meter, connection: plc, unit: 2, measures: workshop}]" if meter else ""
    )
    text = (
        WORKSHOP.replace("CONNECTION", OPCUA if opcua else MODBUS)
        .replace("NODE", "node: 'ns=2;s=M1'" if opcua else "node: null")
        .replace("METERS", meters)
    )
    path = tmp_path / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return build_engine_setup(load_config(path))


def changed(profile: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    result = copy.deepcopy(profile)
    node: Any = result
    for part in path[:-1]:
        node = node[part]
    if value is None:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return result


@pytest.mark.parametrize("path", list(CHANGES), ids=lambda p: ".".join(map(str, p)))
def test_every_engine_field_of_a_machine_profile_changes_what_the_engine_does(
    tmp_path: Path, path: tuple[str | int, ...]
) -> None:
    before = setup_of(tmp_path / "a", MACHINE)
    after = setup_of(tmp_path / "b", changed(MACHINE, path, CHANGES[path]))
    assert before.machines != after.machines or before.meters != after.meters, path


@pytest.mark.parametrize(
    "path", [p for p in CHANGES if p[0] in METER_READS], ids=lambda p: ".".join(map(str, p))
)
def test_every_energy_field_of_a_meter_profile_changes_what_the_engine_does(
    tmp_path: Path, path: tuple[str | int, ...]
) -> None:
    def meter_of(profile: dict[str, Any], where: Path) -> object:
        return next(m for m in setup_of(where, profile, meter=True).meters if m.id == "e1")

    assert meter_of(MACHINE, tmp_path / "a") != meter_of(
        changed(MACHINE, path, CHANGES[path]), tmp_path / "b"
    )


def test_a_machines_energy_section_makes_the_machine_its_own_meter(tmp_path: Path) -> None:
    setup = setup_of(tmp_path, MACHINE)
    [own] = [m for m in setup.meters if m.machine == "m1"]
    assert (own.id, own.device, own.kwh.tag, own.power_tag, own.max_kw) == ("m1", "m1", "kwh_a", "kw_a", 30)
    without = setup_of(tmp_path / "b", changed(MACHINE, ("energy",), None))
    assert not [m for m in without.meters if m.machine == "m1"]


def test_an_opcua_counters_rollover_is_its_modulus(tmp_path: Path) -> None:
    before = setup_of(tmp_path / "a", OPCUA_MACHINE, opcua=True)
    after = setup_of(tmp_path / "b", changed(OPCUA_MACHINE, ("nodes", "count", "rollover"), 1000), opcua=True)
    assert before.machines[0].produced is not None
    assert after.machines[0].produced is not None
    assert (before.machines[0].produced.modulus, after.machines[0].produced.modulus) == (65536, 1000)


def test_a_setting_that_does_nothing_is_not_accepted(tmp_path: Path) -> None:
    """stale_after_s once validated in a profile and was read by nothing: now an unknown key."""
    from agent.config.issues import ConfigError

    with pytest.raises(ConfigError, match="stale_after_s: unknown key 'stale_after_s'"):
        setup_of(tmp_path, {**MACHINE, "stale_after_s": 30})
