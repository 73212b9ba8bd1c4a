"""Simulated machines as deterministic timelines.

A machine's life is a sequence of state segments drawn from a seeded RNG; counters and energy at
time t are integrals over that timeline. The values at t therefore do not depend on when, or how
often, anyone looked: two runs with the same seed read the same numbers at the same times.
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import dataclass

from agent.kpi.states import MachineState

ALARMS = {
    "grinder": (
        1203,
        1210,
        2101,
        2230,
        3050,
    ),  # spindle overload, wheel wear, gauge, loader, coolant
    "assembly": (4101, 4102, 4210, 4305),  # ball count, rivet force, grease weight, seal missing
    "sorter": (5101, 5120, 5203),  # vibration sensor, noise mic, reject chute full
}
POWER_KW = {  # (producing, idle, setup, fault): a 7.5 kW raceway grinder and smaller cells
    "grinder": (6.8, 1.9, 2.4, 1.2),
    "superfinisher": (3.1, 0.9, 1.2, 0.6),
    "assembly": (2.2, 0.8, 0.9, 0.5),
    "sorter": (1.1, 0.6, 0.6, 0.4),
}


@dataclass(frozen=True)
class Segment:
    start: float
    state: MachineState
    alarm: int
    program: int
    parts_before: float  # producing seconds before this segment divided by cycle time
    kwh_before: float


class MachineModel:
    def __init__(
        self,
        kind: str,
        seed: int,
        ideal_cycle_s: float,
        start: float,
        counter_start: int = 0,
        reject_rate: float | None = None,
    ) -> None:
        self.kind = kind
        self.rng = random.Random(seed)
        self.family = "grinder" if kind in ("grinder", "superfinisher") else kind
        self.cycle_s = ideal_cycle_s * self.rng.uniform(1.04, 1.18)  # real machines run slower than ideal
        self.reject_rate = reject_rate if reject_rate is not None else self.rng.uniform(0.004, 0.02)
        self.counter_start = counter_start
        self.power = POWER_KW.get(kind, POWER_KW["assembly"])
        self.meter_start_kwh = self.rng.uniform(2_000, 90_000)
        self.segments: list[Segment] = []
        self._starts: list[float] = []
        self._append(Segment(start, MachineState.PRODUCING, 0, 1, 0.0, 0.0))
        self._next_end = start + self._duration(MachineState.PRODUCING)

    def _duration(self, state: MachineState) -> float:
        minutes = {
            MachineState.PRODUCING: lambda: min(180.0, 5 + self.rng.expovariate(1 / 40)),
            MachineState.IDLE: lambda: self.rng.uniform(1, 10),
            MachineState.FAULT: lambda: self.rng.uniform(3, 25),
            MachineState.SETUP: lambda: self.rng.choice((self.rng.uniform(3, 8), self.rng.uniform(15, 40))),
        }[state]()
        return minutes * 60.0

    def _append(self, segment: Segment) -> None:
        self.segments.append(segment)
        self._starts.append(segment.start)

    def _power_kw(self, state: MachineState) -> float:
        producing, idle, setup, fault = self.power
        return {
            MachineState.PRODUCING: producing,
            MachineState.IDLE: idle,
            MachineState.SETUP: setup,
            MachineState.FAULT: fault,
        }.get(state, 0.0)

    def _extend_to(self, t: float) -> None:
        while self._next_end <= t:
            last = self.segments[-1]
            length = self._next_end - last.start
            produced = length / self.cycle_s if last.state is MachineState.PRODUCING else 0.0
            kwh = self._power_kw(last.state) * length / 3600.0
            if last.state is MachineState.PRODUCING:
                roll = self.rng.random()
                state = (
                    MachineState.FAULT
                    if roll < 0.2
                    else MachineState.SETUP
                    if roll < 0.4
                    else MachineState.IDLE
                )
            else:
                state = MachineState.PRODUCING
            alarm = (
                self.rng.choice(ALARMS.get(self.family, ALARMS["assembly"]))
                if state is MachineState.FAULT
                else 0
            )
            program = (
                last.program + 1 if state is MachineState.SETUP and self.rng.random() < 0.5 else last.program
            )
            self._append(
                Segment(
                    self._next_end,
                    state,
                    alarm,
                    program,
                    last.parts_before + produced,
                    last.kwh_before + kwh,
                )
            )
            self._next_end += self._duration(state)

    def segment_at(self, t: float) -> Segment:
        self._extend_to(t)
        index = max(0, bisect.bisect_right(self._starts, t) - 1)
        return self.segments[index]

    def state_at(self, t: float) -> MachineState:
        return self.segment_at(t).state

    def parts_at(self, t: float) -> int:
        segment = self.segment_at(t)
        parts = segment.parts_before
        if segment.state is MachineState.PRODUCING:
            parts += max(0.0, t - segment.start) / self.cycle_s
        return math.floor(parts)

    def rejects_at(self, t: float) -> int:
        return math.floor(self.parts_at(t) * self.reject_rate)

    def kwh_at(self, t: float) -> float:
        segment = self.segment_at(t)
        return segment.kwh_before + self._power_kw(segment.state) * max(0.0, t - segment.start) / 3600.0

    def power_kw_at(self, t: float) -> float:
        return self._power_kw(self.state_at(t))

    def values_at(self, t: float) -> dict[str, float | int | bool]:
        """Tag values by the names the simulator profiles use."""
        segment = self.segment_at(t)
        state = segment.state
        producing = state is MachineState.PRODUCING
        parts = self.parts_at(t)
        rejects = self.rejects_at(t)
        wobble = math.sin(t / 7.0)
        return {
            "running": producing,
            "auto_mode": state in (MachineState.PRODUCING, MachineState.IDLE),
            "alarm_active": state is MachineState.FAULT,
            "setup_mode": state is MachineState.SETUP,
            "door_open": state is MachineState.SETUP,
            "starved": state is MachineState.IDLE,
            "alarm_code": segment.alarm,
            "program_no": segment.program,
            "part_count": self.counter_start + parts,
            "gauge_rejects": rejects,
            "inspected": self.counter_start + parts,
            "ok_count": parts - rejects,
            "ng_count": rejects,
            "spindle_load": 62.0 + 18.0 * wobble if producing else 3.0,
            "spindle_rpm": 24_000.0 + 300.0 * wobble if producing else 0.0,
            "cycle_time_s": round(self.cycle_s, 2),
            "coolant_pump": state is not MachineState.FAULT,
            "estop_ok": True,
            # a PLC with built-in energy monitoring (sim-grinder-kwh): its own counter and real power
            "energy_kwh": self.meter_start_kwh + self.kwh_at(t),
            "power_kw": self.power_kw_at(t),
        }


class MeterModel:
    """A three-phase meter on one machine, or the workshop main meter on several plus base load."""

    def __init__(self, machines: list[MachineModel], seed: int, base_load_kw: float = 0.0) -> None:
        rng = random.Random(seed)
        self.machines = machines
        self.base_load_kw = base_load_kw
        self.start_kwh = rng.uniform(10_000, 400_000)
        self.origin = min((m.segments[0].start for m in machines), default=0.0)

    def kwh_at(self, t: float) -> float:
        base = self.base_load_kw * max(0.0, t - self.origin) / 3600.0
        return self.start_kwh + base + sum(m.kwh_at(t) for m in self.machines)

    def values_at(self, t: float) -> dict[str, float | int | bool]:
        kw = self.base_load_kw + sum(m.power_kw_at(t) for m in self.machines)
        kwh = self.kwh_at(t)
        return {
            "energy_kwh": kwh,
            "energy_kwh_x100": kwh,
            "power_kw": kw,
            "voltage_l1": 229.8 + math.sin(t / 31.0),
        }
