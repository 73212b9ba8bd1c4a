"""OPC UA in the workshop file and in profiles: what loads, and what is refused with a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.issues import ConfigError
from agent.config.loader import load_config
from tests.conftest import CONFIGS


def workshop(tmp_path: Path, connection: str, machine: str, profile: str | None = None) -> Path:
    devices = tmp_path / "devices"
    devices.mkdir(exist_ok=True)
    for shipped in ("opc40001-machine.yaml", "sim-grinder.yaml"):
        (devices / shipped).write_text(
            (CONFIGS / "devices" / shipped).read_text(encoding="utf-8"), encoding="utf-8"
        )
    if profile is not None:
        (devices / "custom.yaml").write_text(profile, encoding="utf-8")
    path = tmp_path / "workshop.yaml"
    path.write_text(
        f"""agent: {{id: gw}}
site: {{enterprise: e, site: s, area: a}}
connections:
  - {connection}
lines: [{{id: l1}}]
machines:
  - {machine}
calendar: {{shifts: [{{name: day, start: "08:00", end: "20:00"}}]}}
""",
        encoding="utf-8",
    )
    return path


OPCUA = '{id: cell, transport: opcua, url: "opc.tcp://10.0.0.5:4840"}'
MACHINE = (
    "{id: m1, line: l1, kind: grinder, profile: opc40001-machine, connection: cell, ideal_cycle_s: 5, "
    'node: "nsu=urn:plc;s=Machines/m1"}'
)


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return [str(issue) for issue in caught.value.issues]


def test_an_opcua_machine_loads_secure_by_default(tmp_path: Path) -> None:
    config = load_config(workshop(tmp_path, OPCUA, MACHINE))
    connection = config.workshop.connections[0]
    assert connection.transport == "opcua"
    assert (connection.security_policy, connection.security_mode) == ("Basic256Sha256", "SignAndEncrypt")


def test_a_profile_with_absolute_node_ids_needs_no_root(tmp_path: Path) -> None:
    profile = (
        "name: custom\nkind: other\nsource: test\n"
        'nodes:\n  state: {node: "nsu=urn:plc;s=State"}\n  count: {node: "ns=3;i=1201", mode: poll}\n'
        "state:\n  - when: state == 'Executing'\n    state: producing\n  - state: idle\n"
    )
    machine = "{id: m1, line: l1, kind: grinder, profile: custom, connection: cell, ideal_cycle_s: 5}"
    config = load_config(workshop(tmp_path, OPCUA, machine, profile))
    assert config.profiles["custom"].spec.protocol == "opcua"


def test_browse_paths_need_the_devices_object(tmp_path: Path) -> None:
    machine = (
        "{id: m1, line: l1, kind: grinder, profile: opc40001-machine, connection: cell, ideal_cycle_s: 5}"
    )
    [error] = errors(workshop(tmp_path, OPCUA, machine))
    assert f"{tmp_path / 'workshop.yaml'}:7:" in error
    assert "give the device's object as 'node'" in error


def test_an_unknown_namespace_alias_is_named_with_a_suggestion(tmp_path: Path) -> None:
    profile = (
        "name: custom\nkind: other\nsource: test\n"
        "opcua: {namespaces: {machinery: 'http://opcfoundation.org/UA/Machinery/'}}\n"
        'nodes:\n  state: {path: "machinary:MachineryBuildingBlocks/CurrentState"}\n'
    )
    machine = (
        "{id: m1, line: l1, kind: grinder, profile: custom, connection: cell, ideal_cycle_s: 5, node: 'i=85'}"
    )
    [error] = errors(workshop(tmp_path, OPCUA, machine, profile))
    assert f"{tmp_path / 'devices' / 'custom.yaml'}:6:" in error
    assert "unknown namespace alias 'machinary'" in error
    assert "did you mean 'machinery'" in error


def test_a_modbus_profile_on_an_opcua_connection_is_refused(tmp_path: Path) -> None:
    machine = "{id: m1, line: l1, kind: grinder, profile: sim-grinder, connection: cell, ideal_cycle_s: 5}"
    [error] = errors(workshop(tmp_path, OPCUA, machine))
    assert "'sim-grinder' is a modbus profile, but connection 'cell' is opcua" in error


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("security_policy: None", "None together or not at all"),
        ("security_mode: None", "None together or not at all"),
        ("password: x", "a password needs a username"),
        ("user_certificate: u.der", "user_certificate and user_private_key go together"),
        ('url: "http://10.0.0.5:4840"', "expected opc.tcp://host:port[/path]"),
        ("security_policy: Basic128Rsa15", "'Basic128Rsa15' is not one of"),
    ],
)
def test_inconsistent_security_is_refused(tmp_path: Path, settings: str, message: str) -> None:
    connection = (
        OPCUA.replace("}", f", {settings}}}")
        if "url:" not in settings
        else (f"{{id: cell, transport: opcua, {settings}}}")
    )
    found = errors(workshop(tmp_path, connection, MACHINE))
    assert any(message in e for e in found), found
    assert all(e.startswith(f"{tmp_path / 'workshop.yaml'}:4:") for e in found), found
