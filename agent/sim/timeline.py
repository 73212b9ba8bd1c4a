"""Scripted machines for the simulator: what a machine does, and when, read from a file.

`edge-agent simulate -c WORKSHOP.yaml --timeline TIMELINE.yaml` serves the machines the timeline
names by their script and every other machine by the random model. With a script, a shift has a
truth that can be computed by hand: parts are producing seconds / cycle_s, rejects every
`reject_every`-th part, kWh the machine kind's power per state over time, all as integrals over
the timeline, so they do not depend on when or how often anyone reads them.

```yaml
start: 2026-11-25T08:00:00+08:00   # `at` counts from here; default: when the simulator starts
machines:
  grinder-01:
    cycle_s: 5.0                   # seconds per part while producing; default the ideal cycle
    counter_start: 4294967000      # the part counter at `start`; it wraps as its register does
    reject_every: 35               # every 35th part is NG; default none
    segments:                      # each state holds until the next segment
      - {at: 0, state: idle}
      - {at: 20, state: producing, program: 2}
      - {at: 80, state: fault, alarm: 1203}
      - {at: 95, state: setup}
```
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from agent.config.issues import ConfigError, ConfigIssue
from agent.config.models import PositiveSeconds, StrictModel
from agent.config.schema_errors import validate_model
from agent.config.suggest import did_you_mean
from agent.config.yamlsource import LoadedYaml, load_yaml
from agent.kpi.states import MachineState
from agent.sim.machines import MachineModel, Segment

UINT16_MAX = 65535


class SegmentSpec(StrictModel):
    at: Annotated[float, Field(ge=0, allow_inf_nan=False, description="seconds after the timeline's start")]
    state: Literal["producing", "idle", "setup", "fault"]
    alarm: Annotated[int, Field(ge=0, le=UINT16_MAX)] = Field(0, description="alarm code while in fault")
    program: Annotated[int, Field(ge=0, le=UINT16_MAX)] | None = Field(
        None, description="part program (product variant) from here on; default: unchanged, first 1"
    )


class MachineScript(StrictModel):
    cycle_s: PositiveSeconds | None = None
    counter_start: Annotated[int, Field(ge=0)] = 0
    reject_every: Annotated[int, Field(ge=1)] | None = None
    segments: Annotated[list[SegmentSpec], Field(min_length=1)]


class TimelineFile(StrictModel):
    start: dt.datetime | None = None
    machines: dict[str, MachineScript]


@dataclass(frozen=True)
class Timeline:
    start: float | None  # epoch seconds; None: when the simulator starts
    machines: dict[str, MachineScript]


def load_timeline(path: Path, machine_ids: list[str]) -> Timeline:
    """The timeline file, checked; every problem at its line, as for the workshop file."""
    loaded = load_yaml(path)
    issues = list(loaded.issues)
    spec: TimelineFile | None = None
    if not issues:
        spec, issues = validate_model(TimelineFile, loaded)
    if spec is not None:
        issues += _check(spec, machine_ids, loaded)
    if issues or spec is None:
        raise ConfigError(issues)
    return Timeline(spec.start.timestamp() if spec.start else None, dict(spec.machines))


def _check(spec: TimelineFile, machine_ids: list[str], loaded: LoadedYaml) -> list[ConfigIssue]:
    issues = []
    if spec.start is not None and spec.start.tzinfo is None:
        issues.append(loaded.issue(("start",), "give the time zone, e.g. 2026-11-25T08:00:00+08:00"))
    for machine_id, script in spec.machines.items():
        if machine_id not in machine_ids:
            message = f"no machine {machine_id!r} in the workshop{did_you_mean(machine_id, machine_ids)}"
            issues.append(loaded.issue(("machines", machine_id), message, key=True))
        for index in range(1, len(script.segments)):
            earlier = script.segments[index - 1].at
            if script.segments[index].at <= earlier:
                where = ("machines", machine_id, "segments", index, "at")
                issues.append(loaded.issue(where, f"must be later than the segment before ({earlier:g})"))
    return issues


class ScriptedMachine(MachineModel):
    """A machine that follows its script instead of the random model; power per state, the tag
    layout and everything read from it stay those of its kind."""

    def __init__(
        self, kind: str, seed: int, ideal_cycle_s: float, origin: float, script: MachineScript
    ) -> None:
        super().__init__(kind, seed, ideal_cycle_s, origin, counter_start=script.counter_start)
        self.cycle_s = script.cycle_s or ideal_cycle_s
        self.reject_every = script.reject_every
        self.segments, self._starts = [], []
        parts = kwh = 0.0
        program = 1
        for index, spec in enumerate(script.segments):
            start = origin + spec.at
            if index > 0:
                last = self.segments[-1]
                length = start - last.start
                parts += length / self.cycle_s if last.state is MachineState.PRODUCING else 0.0
                kwh += self._power_kw(last.state) * length / 3600.0
            program = spec.program if spec.program is not None else program
            self._append(Segment(start, MachineState(spec.state), spec.alarm, program, parts, kwh))
        self._next_end = math.inf  # nothing beyond the script: its last state holds

    def rejects_at(self, t: float) -> int:
        return self.parts_at(t) // self.reject_every if self.reject_every else 0
