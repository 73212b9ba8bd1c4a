"""Scripted simulator machines: the timeline file checked at its lines, the truth it produces."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from agent.config.compiled import AgentConfig
from agent.config.issues import ConfigError
from agent.config.profile import Table
from agent.drivers.codec import decode
from agent.sim.registers import render_table
from agent.sim.server import WorkshopSimulator
from agent.sim.timeline import ScriptedMachine, load_timeline

ORIGIN = 1_800_000_000.0
TIMELINE = """\
start: 2027-01-15T08:00:00+08:00
machines:
  grinder-01:
    cycle_s: 2.0
    counter_start: 4294967290
    reject_every: 7
    segments:
      - {at: 0, state: idle}
      - {at: 10, state: producing, program: 3}
      - {at: 40, state: fault, alarm: 1203}
      - {at: 50, state: producing}
"""


def timeline_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "timeline.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_scripted_machine_makes_what_its_script_says(tmp_path: Path) -> None:
    timeline = load_timeline(timeline_file(tmp_path, TIMELINE), ["grinder-01"])
    machine = ScriptedMachine("grinder", 1, 2.5, ORIGIN, timeline.machines["grinder-01"])
    assert machine.parts_at(ORIGIN + 10) == 0
    assert machine.parts_at(ORIGIN + 45) == 15  # 30 s producing at 2 s a part, nothing in the fault
    assert machine.parts_at(ORIGIN + 60) == 20
    assert machine.rejects_at(ORIGIN + 60) == 2
    assert machine.kwh_at(ORIGIN + 60) == pytest.approx((10 * 1.9 + 40 * 6.8 + 10 * 1.2) / 3600)
    values = machine.values_at(ORIGIN + 42)
    assert (values["alarm_active"], values["alarm_code"], values["program_no"]) == (True, 1203, 3)
    assert machine.values_at(ORIGIN + 500)["running"] is True  # the last state holds


def test_the_start_of_the_timeline_is_its_origin(tmp_path: Path) -> None:
    timeline = load_timeline(timeline_file(tmp_path, TIMELINE), ["grinder-01"])
    assert timeline.start == dt.datetime(2027, 1, 15, tzinfo=dt.UTC).timestamp()


def test_a_part_counter_past_its_register_wraps_as_the_register_does(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    script = TIMELINE.replace("grinder-01", sample_config.workshop.machines[0].id)
    timeline = load_timeline(timeline_file(tmp_path, script), [m.id for m in sample_config.workshop.machines])
    simulator = WorkshopSimulator(sample_config, lambda: ORIGIN, timeline=timeline)
    device = next(d for d in sample_config.devices() if d.id == sample_config.workshop.machines[0].id)
    model = simulator.machines[device.id]
    assert isinstance(model, ScriptedMachine)
    assert timeline.start is not None
    t = timeline.start + 60
    tag = device.profile.spec.tags["part_count"]
    image = render_table(device.profile, Table.HOLDING, model.values_at(t), 64)
    address = device.profile.wire_address(tag)
    assert decode(tag, image[address : address + tag.width]) == (4294967290 + 20) % 2**32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            TIMELINE.replace("grinder-01:", "grinder-1:"),
            "timeline.yaml:3:3: machines.grinder-1: no machine 'grinder-1' in the workshop; "
            "did you mean 'grinder-01'?",
        ),
        (
            TIMELINE.replace("{at: 40,", "{at: 5,"),
            "timeline.yaml:10:14: machines.grinder-01.segments[2].at: must be later than the segment before",
        ),
        (
            TIMELINE.replace("state: fault", "state: broken"),
            "timeline.yaml:10:25: machines.grinder-01.segments[2].state: 'broken' is not one of",
        ),
        (
            TIMELINE.replace("+08:00", ""),
            "timeline.yaml:1:8: start: give the time zone, e.g. 2026-11-25T08:00:00+08:00",
        ),
        (
            TIMELINE.replace("reject_every", "rejects_every"),
            "timeline.yaml:6:5: machines.grinder-01.rejects_every:",
        ),
    ],
    ids=["unknown-machine", "time-going-back", "unknown-state", "no-time-zone", "unknown-key"],
)
def test_a_bad_timeline_is_reported_at_its_line(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_timeline(timeline_file(tmp_path, text), ["grinder-01", "grinder-02"])
    reported = [str(issue).replace(str(tmp_path) + "/", "") for issue in caught.value.issues]
    assert len(reported) == 1, reported
    assert reported[0].startswith(expected), reported
