"""`edge-agent simulate` on a profile written for a real machine: the tags the simulator has no
model for read 0 forever, and simulate says which, with the name it does model when one is close."""

from __future__ import annotations

from pathlib import Path

from agent.cli import unmodelled_tag_warnings
from agent.config.loader import load_config
from agent.i18n import catalogue
from agent.sim.server import WorkshopSimulator
from tests.conftest import CASES

PROFILE = """\
name: plant-grinder
kind: grinder
tags:
  status_word:  {table: holding, address: 0, type: uint16}
  running:      {table: holding, address: 0, type: bool, bit: 0}
  alarm_active: {table: holding, address: 0, type: bool, bit: 2}
  parts_total:  {table: holding, address: 4, type: uint32}
  spindle_lod:  {table: holding, address: 6, type: uint16}
state:
  - {when: alarm_active, state: fault}
  - {when: running, state: producing}
  - {state: idle}
counters:
  produced: parts_total
"""


def test_tags_the_simulator_does_not_model_are_named_once_per_device(tmp_path: Path) -> None:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "plant-grinder.yaml").write_text(PROFILE, encoding="utf-8")
    workshop = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")
    workshop = workshop.replace("../_devices", str(CASES / "_devices")).replace(
        "profile: grinder,", "profile: plant-grinder,"
    )
    (tmp_path / "workshop.yaml").write_text(workshop, encoding="utf-8")
    config = load_config(tmp_path / "workshop.yaml", environ={})
    simulator = WorkshopSimulator(config, lambda: 1_800_000_000.0)
    warnings = unmodelled_tag_warnings(simulator.unmodelled_tags(), config, catalogue("en"))
    # status_word is served as its bits (running, alarm_active); the meter's profile is the simulator's
    assert warnings == [
        "simulate: grinder-01 (profile 'plant-grinder'): the simulator has no values for parts_total "
        "(did you mean part_count?), "
        "spindle_lod (did you mean spindle_load?): they read 0 (false); name them as the simulator's "
        "profiles do (agent/configs/devices/sim-*.yaml) to see them change"
    ]
    zh = unmodelled_tag_warnings(simulator.unmodelled_tags(), config, catalogue("zh-CN"))
    assert zh[0].startswith("simulate：grinder-01（设备模板 'plant-grinder'）：模拟器没有 parts_total")
