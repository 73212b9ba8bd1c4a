"""The plant-server compose stack cannot run on CI; what can be checked is that it refers to files
that exist, variables env.example defines, and the provisioned datasource the dashboards use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from agent.config.outputs import InfluxOutput
from agent.i18n import languages
from tests.conftest import REPO

SERVER = REPO / "deploy" / "server"


def test_every_mounted_path_exists_and_every_variable_is_in_env_example() -> None:
    compose_text = (SERVER / "compose.yaml").read_text(encoding="utf-8")
    compose = yaml.safe_load(compose_text)
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (SERVER / source).resolve().exists(), f"{name}: {source} does not exist"
    defined = {
        line.split("=", 1)[0]
        for line in (SERVER / "env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    }
    used = set(re.findall(r"\$\{(\w+)\}", compose_text))
    assert used <= defined, used - defined


def test_grafana_gets_what_the_datasource_file_reads_from_its_environment() -> None:
    grafana = yaml.safe_load((SERVER / "compose.yaml").read_text(encoding="utf-8"))["services"]["grafana"]
    datasource_text = (REPO / "deploy/grafana/provisioning/datasources/edge-influx.yaml").read_text(
        encoding="utf-8"
    )
    needed = set(re.findall(r"\$\{(\w+)\}", datasource_text))
    assert needed <= set(grafana["environment"]), needed - set(grafana["environment"])
    provider = yaml.safe_load(
        (REPO / "deploy/grafana/provisioning/dashboards/edge-agent.yaml").read_text(encoding="utf-8")
    )
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert any(v.endswith(f":{dashboards_path}:ro") for v in grafana["volumes"])
    env = dict(
        line.split("=", 1)
        for line in (SERVER / "env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mounted = home.replace("${DASHBOARD_LANGUAGE}", env["DASHBOARD_LANGUAGE"]).removeprefix(dashboards_path)
    assert (REPO / "deploy/grafana/dashboards" / mounted.lstrip("/")).exists()
    for language in languages():  # any language the agent speaks has its dashboards
        assert (REPO / "deploy/grafana/dashboards" / language / Path(home).name).exists()


def test_grafana_reads_the_database_the_stack_creates_as_the_user_who_may_only_read() -> None:
    services = yaml.safe_load((SERVER / "compose.yaml").read_text(encoding="utf-8"))["services"]
    influxdb, grafana = services["influxdb"]["environment"], services["grafana"]["environment"]
    assert influxdb["INFLUXDB_HTTP_AUTH_ENABLED"] == "true"
    assert grafana["INFLUX_DATABASE"] == influxdb["INFLUXDB_DB"] == "${INFLUX_DATABASE}"
    assert grafana["INFLUX_READ_USER"] == influxdb["INFLUXDB_READ_USER"]
    assert grafana["INFLUX_READ_PASSWORD"] == influxdb["INFLUXDB_READ_USER_PASSWORD"]
    assert grafana["INFLUX_URL"] == "http://influxdb:8086"


def test_the_gateway_example_in_the_readme_is_a_valid_output() -> None:
    """The outputs block deploy/server/README.md tells a plant to use validates as the agent would."""
    readme = (SERVER / "README.md").read_text(encoding="utf-8")
    block = readme.split("```yaml\n", 1)[1].split("```", 1)[0]
    outputs = yaml.safe_load(block.replace("${CREDENTIALS_DIRECTORY}", "/run/credentials"))["outputs"]
    influx = outputs["influxdb"]
    influx["password"] = "from-the-file"
    del influx["password_file"]
    config = InfluxOutput.model_validate(influx)
    assert config.api == "v1"
    env = dict(
        line.split("=", 1)
        for line in (SERVER / "env.example").read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")
    )
    assert (config.database, config.username) == (env["INFLUX_DATABASE"], env["INFLUX_WRITE_USER"])
