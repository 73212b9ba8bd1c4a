"""Loading: sample configs, ${ENV} substitution, secret files, and the validate command."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import yamlsource
from agent.config.connections import ModbusTcpConnection
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from tests.conftest import CASES, CONFIGS, SAMPLE_WORKSHOP

MINIMAL = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")


def write_workshop(tmp_path: Path, extra: str = "", replace: tuple[str, str] | None = None) -> Path:
    text = MINIMAL.replace("../_devices", str(CASES / "_devices"))
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "workshop.yaml"
    path.write_text(text + textwrap.dedent(extra), encoding="utf-8")
    return path


@pytest.mark.parametrize("workshop", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_sample_workshop_validates(workshop: Path) -> None:
    config = load_config(workshop)
    assert config.workshop.machines


def test_sample_workshop_is_the_realistic_one() -> None:
    workshop = load_config(SAMPLE_WORKSHOP).workshop
    grinders = [m for m in workshop.machines if m.kind == "grinder"]
    assert len(grinders) >= 6
    assert len({m.line for m in grinders}) >= 2
    assert any(m.kind == "sorter" for m in workshop.machines)
    assert any(m.measures == "workshop" for m in workshop.meters)
    # every grinder's energy is measured: by a meter, or by its own PLC (grinder-06)
    own = {m.id for m in workshop.machines if m.energy_meter is not None}
    assert {m.measures for m in workshop.meters} | own >= {m.id for m in grinders}
    assert own
    assert not own & {m.measures for m in workshop.meters}


def test_environment_variables_are_substituted_with_defaults(tmp_path: Path) -> None:
    path = write_workshop(
        tmp_path, replace=("host: 127.0.0.1, port: 15502", 'host: "${PLC_HOST}", port: "${PLC_PORT:-1502}"')
    )
    config = load_config(path, environ={"PLC_HOST": "10.1.2.3"})
    connection = config.workshop.connections[0]
    assert isinstance(connection, ModbusTcpConnection)
    assert (connection.host, connection.port) == ("10.1.2.3", 1502)


def test_secret_comes_from_a_file_and_is_not_printed(tmp_path: Path) -> None:
    (tmp_path / "mqtt.secret").write_text("s3cr3t\n", encoding="utf-8")
    path = write_workshop(
        tmp_path,
        """
        outputs:
          mqtt: {host: broker, username: agent, password_file: mqtt.secret}
    """,
    )
    mqtt = load_config(path, environ={}).workshop.outputs.mqtt
    assert mqtt is not None
    assert mqtt.password is not None
    assert mqtt.password.get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(mqtt)


def test_secret_given_twice_is_an_error_at_the_file_key(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("abc", encoding="utf-8")
    path = write_workshop(
        tmp_path,
        """
        outputs:
          influxdb: {url: "http://db:8086", org: plant, bucket: edge, token: x, token_file: token}
    """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert issue.path == "outputs.influxdb.token_file"
    assert "either 'token' or 'token_file'" in issue.message
    lines = path.read_text(encoding="utf-8").splitlines()
    assert issue.mark.line == next(i for i, text in enumerate(lines, 1) if "token_file" in text)


def test_misspelt_secret_key_is_an_unknown_key(tmp_path: Path) -> None:
    path = write_workshop(
        tmp_path,
        """
        outputs:
          mqtt: {host: broker, pasword_file: x}
    """,
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert "did you mean 'password'?" in str(caught.value)


def test_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("- just\n- a list\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"w.yaml:1:1: <root>: expected a mapping"):
        load_config(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ("\xff\xfe", "not UTF-8"),
    ],
)
def test_unreadable_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "w.yaml"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="No such file"):
        load_config(tmp_path / "absent.yaml")


def test_validate_exits_0_on_the_sample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "-c", str(SAMPLE_WORKSHOP)]) == 0
    assert "OK" in capsys.readouterr().out


def test_validate_exits_2_with_every_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(CASES / "unknown-keys")
    assert main(["validate", "-c", "workshop.yaml"]) == 2
    err = capsys.readouterr().err
    assert (
        err.splitlines()[:-1]
        == (CASES / "unknown-keys" / "error.txt").read_text(encoding="utf-8").splitlines()
    )
    assert err.splitlines()[-1] == "4 error(s) in workshop.yaml"


def test_frozen_after_validation() -> None:
    config = load_config(SAMPLE_WORKSHOP)
    with pytest.raises(Exception, match="frozen"):
        config.workshop.machines[0].ideal_cycle_s = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("profile", sorted((CONFIGS / "devices").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_device_profile_loads(profile: Path) -> None:
    from agent.config.loader import load_profile

    loaded, issues = load_profile(profile)
    assert issues == []
    assert loaded is not None
    assert loaded.spec.source, "a shipped profile says where its register map comes from"


@pytest.mark.parametrize(
    ("influxdb", "message"),
    [
        ('{url: "http://db:8086", org: plant}', "api: v2 needs bucket (api: v1 writes to a database)"),
        (
            '{url: "http://db:8086", org: plant, bucket: edge, database: shopfloor}',
            "database: for api: v1 only; api: v2 takes org, bucket and token",
        ),
        ('{url: "http://db:8086", api: v1}', "api: v1 needs a database"),
        (
            '{url: "http://db:8086", api: v1, database: shopfloor, bucket: edge}',
            "bucket: for api: v2 only; api: v1 takes database and retention_policy",
        ),
        (
            '{url: "http://db:8086", api: v1, database: shopfloor, username: gw}',
            "username and password go together",
        ),
        (
            '{url: "http://db:8086", api: v1, database: shopfloor, username: gw, password: p, token: t}',
            "one credential: username/password or token, not both",
        ),
        ('{url: "http://db:8086", api: v3, database: shopfloor}', "'v2' or 'v1'"),
    ],
    ids=[
        "v2-no-bucket",
        "v2-database",
        "v1-no-database",
        "v1-bucket",
        "v1-user-alone",
        "v1-two-credentials",
        "api",
    ],
)
def test_influxdb_settings_belong_to_their_api(tmp_path: Path, influxdb: str, message: str) -> None:
    path = write_workshop(tmp_path, f"\noutputs:\n  influxdb: {influxdb}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = caught.value.issues
    assert issue.path.startswith("outputs.influxdb")
    assert message in issue.message
    assert issue.mark.line == len(path.read_text(encoding="utf-8").splitlines())


def test_influxdb_v1_with_a_password_file(tmp_path: Path) -> None:
    (tmp_path / "influx.secret").write_text("s3cr3t\n", encoding="utf-8")
    path = write_workshop(
        tmp_path,
        """
        outputs:
          influxdb: {url: "http://db:8086", api: v1, database: shopfloor, retention_policy: year,
                     username: gw-grinding-1, password_file: influx.secret}
    """,
    )
    influx = load_config(path, environ={}).workshop.outputs.influxdb
    assert influx is not None
    assert (influx.api, influx.database, influx.retention_policy) == ("v1", "shopfloor", "year")
    assert influx.password is not None
    assert influx.password.get_secret_value() == "s3cr3t"


def test_merge_keys_give_defaults_that_the_mapping_overrides(tmp_path: Path) -> None:
    path = write_workshop(
        tmp_path,
        replace=(
            "  - {id: plc, transport: modbus-tcp, host: 127.0.0.1, port: 15502}",
            "  - &gateway {id: plc, transport: modbus-tcp, host: 127.0.0.1, port: 15502, timeout_s: 0.7}\n"
            "  - {<<: *gateway, id: plc-2, port: 15503}",
        ),
    )
    config = load_config(path)
    _, second = config.workshop.connections
    assert isinstance(second, ModbusTcpConnection)
    assert (second.id, second.port, second.timeout_s, second.host) == ("plc-2", 15503, 0.7, "127.0.0.1")


HOSTILE_YAML = {
    "alias bomb": (
        'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
        + "".join(
            f"{n}: &{n} [" + ", ".join([f"*{p}"] * 10) + "]\n"
            for p, n in zip("abcdefgh", "bcdefghi", strict=True)
        )
    ),
    "deep nesting": "a: " + "[" * 500 + "]" * 500 + "\n",
    "self reference": "a: &a [1, *a]\n",
    "bad date": "a: [2026-02-30]\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
@pytest.mark.parametrize("parser", ["libyaml", "python"])
def test_both_parsers_bound_the_same_hostile_yaml(
    name: str, parser: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libyaml (a PyYAML built from source) the pure-Python parser keeps every bound."""
    if parser == "python":
        monkeypatch.setattr(yamlsource, "_Loader", yamlsource._PythonLoader)
    path = tmp_path / "w.yaml"
    path.write_text(HOSTILE_YAML[name], encoding="utf-8")
    loaded = yamlsource.load_yaml(path)
    [issue] = loaded.issues
    assert issue.mark.line >= 1
    assert issue.mark.column >= 1
    assert any(
        words in issue.message
        for words in ("values once aliases", "levels deep", "is not valid as a date", "nesting depth")
    ), issue


def test_both_parsers_read_the_sample_workshop_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = yamlsource.load_yaml(SAMPLE_WORKSHOP)
    monkeypatch.setattr(yamlsource, "_Loader", yamlsource._PythonLoader)
    slow = yamlsource.load_yaml(SAMPLE_WORKSHOP)
    assert fast.data == slow.data
    assert fast.value_marks == slow.value_marks
    assert not fast.issues


def test_a_secret_that_yaml_cannot_read_is_never_echoed(tmp_path: Path) -> None:
    path = write_workshop(tmp_path, "outputs:\n  mqtt: {host: broker, username: gw, password: 2026-13-45}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    [issue] = [i for i in caught.value.issues if i.path == "outputs.mqtt.password"]
    assert "2026-13-45" not in str(caught.value)
    assert "quote a secret" in issue.message


def test_a_base_60_number_taken_by_a_number_setting_is_a_warning_at_its_line(tmp_path: Path) -> None:
    path = write_workshop(tmp_path, replace=("ideal_cycle_s: 5.0", "ideal_cycle_s: 1:30"))
    config = load_config(path, environ={})
    assert config.workshop.machines[0].ideal_cycle_s == 90.0  # YAML 1.1's reading, as PyYAML gives it
    [warning] = config.warnings
    assert (warning.mark.line, warning.path) == (9, "machines[0].ideal_cycle_s")
    assert warning.message.startswith("1:30 without quotes is read by YAML 1.1 as the number 90")
    assert warning.message.endswith("if 90 is what you meant, write 90")


def test_yes_no_words_where_a_yes_no_is_taken_say_nothing(tmp_path: Path) -> None:
    path = write_workshop(tmp_path, replace=("ideal_cycle_s: 5.0", "ideal_cycle_s: 5.0, publish_tags: on"))
    config = load_config(path, environ={})
    assert config.workshop.machines[0].publish_tags is True
    assert config.warnings == ()


def test_a_leading_zero_read_as_octal_is_a_warning_that_says_the_number_meant(tmp_path: Path) -> None:
    path = write_workshop(tmp_path, replace=("unit: 1,", "unit: 010,"))
    config = load_config(path, environ={})
    assert config.workshop.machines[0].unit == 8  # YAML 1.1's reading, as PyYAML gives it
    [warning] = config.warnings
    assert warning.path == "machines[0].unit"
    assert warning.message == (
        "010 without quotes is read by YAML 1.1 as the octal number 8 (a leading 0: base 8); "
        "if you meant 10, write 10 (without the leading 0)"
    )
