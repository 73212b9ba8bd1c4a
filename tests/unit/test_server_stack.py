"""The plant-server compose stack cannot run on CI; what can be checked is that it refers to files
that exist, variables env.example defines, and the provisioned datasource the dashboards use."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

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
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert (REPO / "deploy/grafana/dashboards" / home.name).exists()
