"""Where device profiles come from: the workshop's devices/, then profiles_dir, then the shipped set."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.cli import main
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.config.shipped import examples, shipped_profiles_dir
from tests.conftest import CASES

MINIMAL = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")
README_WORKSHOP = """\
agent: {id: gw-grinding-1}
site: {enterprise: tianhe-bearing, site: plant-1, area: grinding}
connections:
  - {id: line1-gw, transport: modbus-tcp, host: 10.0.1.20, port: 502}
lines:
  - {id: line-1}
machines:
  - {id: grinder-01, line: line-1, kind: grinder, profile: sim-grinder, connection: line1-gw, unit: 1,
     ideal_cycle_s: 5.5}
meters:
  - {id: meter-g01, profile: sim-power-meter, connection: line1-gw, unit: 11, measures: grinder-01}
calendar:
  shifts:
    - {name: day, start: "08:00", end: "20:00"}
"""


def test_a_workshop_written_from_the_readme_finds_the_shipped_profiles(tmp_path: Path) -> None:
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(README_WORKSHOP, encoding="utf-8")
    config = load_config(workshop, environ={})
    assert config.profiles["sim-grinder"].file == shipped_profiles_dir() / "sim-grinder.yaml"


def test_the_workshops_devices_folder_comes_first_then_profiles_dir_then_shipped(tmp_path: Path) -> None:
    local, extra = tmp_path / "devices", tmp_path / "vendor"
    local.mkdir()
    extra.mkdir()
    shipped = shipped_profiles_dir()
    # the same name in all three places: the workshop's own folder wins
    for folder in (local, extra):
        (folder / "sim-grinder.yaml").write_text(
            (shipped / "sim-grinder.yaml").read_text(encoding="utf-8"), encoding="utf-8"
        )
    (extra / "sim-power-meter.yaml").write_text(
        (shipped / "sim-power-meter.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(README_WORKSHOP + "profiles_dir: vendor\n", encoding="utf-8")
    config = load_config(workshop, environ={})
    assert config.profiles["sim-grinder"].file == local / "sim-grinder.yaml"
    assert config.profiles["sim-power-meter"].file == extra / "sim-power-meter.yaml"

    (local / "sim-power-meter.yaml").write_text("name: sim-power-meter\nkind: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"/devices/sim-power-meter.yaml:3:1: <yaml>: YAML syntax"):
        load_config(workshop, environ={})  # a broken local copy is an error, not skipped for another


def test_an_unknown_profile_names_every_folder_searched(tmp_path: Path) -> None:
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(
        README_WORKSHOP.replace("profile: sim-grinder", "profile: sim-grindr") + "profiles_dir: vendor\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(workshop, environ={})
    (issue,) = caught.value.issues
    count = len(list(shipped_profiles_dir().glob("*.yaml")))
    assert issue.message == (
        f"unknown profile 'sim-grindr'; searched {tmp_path}/devices (no such folder), "
        f"{tmp_path}/vendor (no such folder) and the {count} profiles shipped with edge-agent; "
        "did you mean 'sim-grinder'?"
    )


def test_validate_says_where_each_profile_came_from(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "sim-grinder.yaml").write_text(
        (shipped_profiles_dir() / "sim-grinder.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(README_WORKSHOP, encoding="utf-8")
    assert main(["validate", "-c", str(workshop)]) == 0
    out = capsys.readouterr().out
    assert f"profiles from {tmp_path / 'devices'}: sim-grinder" in out
    assert "profiles shipped with edge-agent: sim-power-meter" in out


def test_every_shipped_example_validates_from_the_package() -> None:
    assert "grinding" in examples()
    for path in examples().values():
        assert load_config(path).workshop.machines
