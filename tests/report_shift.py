"""A scripted shift with its truth computed by hand, for the report tests (unit and browser).

Shift `day`, 2026-11-24 08:00-12:00 Asia/Shanghai, one break 10:00-10:30: planned busy time
210 min = 12,600 s. Both machines make one part per 5 s while producing (ideal cycle 4 s), one
reject in every 100 parts.

m1 (grinder, meter-1 on it: 6 kW producing, 2 kW otherwise):
    08:00 producing, 09:00 fault (alarm 1203), 09:20 producing, 10:00 idle (the break),
    10:30 setup, 10:45 producing, 11:30 idle, 11:40 producing until 12:00.
    APT 60+40+45+20 min = 9,900 s; fault 1,200 s; setup 900 s; idle 600 s (the break's 30 min of
    idle is a planned stop). Parts 9,900 / 5 = 1,980, rejects 19, good 1,961.
    Speed loss 9,900 - 1,980 x 4 = 1,980 s; quality loss 19 x 4 = 76 s; valuable 1,961 x 4 = 7,844 s.
    A = 9,900/12,600 = 0.7857, P = 7,920/9,900 = 0.8, Q = 1,961/1,980 = 0.9904, OEE 7,844/12,600 = 0.6225.
    Energy: 6 kW x 9,900 s + 2 kW x 4,500 s (fault, break, setup, idle) = 16.5 + 2.5 = 19.0 kWh;
    19.0 / 1,980 = 0.009596 kWh per part.
m2: 08:00 producing, 08:30 fault (alarm 4001), 09:30 producing, 11:00 idle, 11:05 producing until 12:00.
    APT 12,600 - 3,600 - 300 = 8,700 s; fault 3,600 s; idle 300 s. It produces through the break:
    those 30 min are a planned stop, not APT, but its 360 parts count: 10,500 s / 5 = 2,100 parts,
    rejects 21, good 2,079.

Stop reasons, longest first: m2 fault alarm 4001 3,600 s; m1 fault alarm 1203 1,200 s; idle 900 s
(m1 600 s, m2 300 s); m1 setup 900 s. All stop time 6,600 s.
"""

from __future__ import annotations

from collections.abc import Callable

from agent.config.profile import Profile
from agent.kpi.calendar import ShiftDef
from agent.kpi.engine import CounterSetup, KpiEngine, MeterSetup
from agent.kpi.states import MachineState
from agent.records import Record
from tests.unit.kpi_fixtures import ScriptedMachine, engine_setup, local, machine_setup, replay

P, F, S, IDLE = MachineState.PRODUCING, MachineState.FAULT, MachineState.SETUP, MachineState.IDLE
DAY = "2026-11-24"
SHIFT = ShiftDef("day", 8 * 60, 12 * 60, ((10 * 60, 10 * 60 + 30),))
START, END = local(8), local(12)
BREAK = (local(10), local(10, 30))
PBT_S = 12_600.0

M1_SCRIPT = (
    (8, 0, P),
    (9, 0, F),
    (9, 20, P),
    (10, 0, IDLE),
    (10, 30, S),
    (10, 45, P),
    (11, 30, IDLE),
    (11, 40, P),
)
M2_SCRIPT = ((8, 0, P), (8, 30, F), (9, 30, P), (11, 0, IDLE), (11, 5, P))

# what the report must show, by hand (see the module's docstring)
TRUTH_M1 = {
    "apt_s": 9_900.0,
    "fault_s": 1_200.0,
    "setup_s": 900.0,
    "idle_s": 600.0,
    "speed_s": 1_980.0,
    "quality_s": 76.0,
    "valuable_s": 7_844.0,
    "produced": 1_980,
    "good": 1_961,
    "kwh": 19.0,
    "kwh_per_unit": 0.009596,
}
TRUTH_M2 = {
    "apt_s": 8_700.0,
    "fault_s": 3_600.0,
    "setup_s": 0.0,
    "idle_s": 300.0,
    "produced": 2_100,
    "good": 2_079,
}
TRUTH_SPANS_M1 = [
    ("producing", "08:00", "09:00"),
    ("fault", "09:00", "09:20"),
    ("producing", "09:20", "10:00"),
    ("idle", "10:00", "10:30"),
    ("setup", "10:30", "10:45"),
    ("producing", "10:45", "11:30"),
    ("idle", "11:30", "11:40"),
    ("producing", "11:40", "12:00"),
]
TRUTH_PARETO = [
    ("fault", "alarm 4001", 3_600.0),
    ("fault", "alarm 1203", 1_200.0),
    ("idle", None, 900.0),  # m1 600 s + m2 300 s; as long as the setup: by state name then
    ("setup", None, 900.0),
]
ALARMS = {
    "1203": {"en": "wheel dressing overdue", "zh-CN": "砂轮修整超期"},
    "4001": {"en": "coolant pressure low", "zh-CN": "冷却液压力低"},
}


def scripted(script: tuple[tuple[int, int, MachineState], ...]) -> Callable[[float], MachineState]:
    changes = [(local(h, m), state) for h, m, state in script]

    def state_at(t: float) -> MachineState:
        current = changes[0][1]
        for at, state in changes:
            if t >= at:
                current = state
        return current

    return state_at


def shift_records() -> list[Record]:
    """Every record the engine publishes over the scripted shift, in order."""
    meter = MeterSetup("meter-1", "m1", CounterSetup("kwh", None), max_kw=50.0)
    setup = engine_setup(
        machine_setup("m1", "l1", 4.0), machine_setup("m2", "l1", 4.0), meters=(meter,), shifts=(SHIFT,)
    )
    engine = KpiEngine(setup, START)
    m1 = ScriptedMachine("m1", scripted(M1_SCRIPT), START, alarm_code=1203)
    m2 = ScriptedMachine("m2", scripted(M2_SCRIPT), START, alarm_code=4001)
    return replay(engine, [m1, m2], START, END + 60, 5.0, meter=("m1", "meter-1"))


def grinder_profile() -> Profile:
    """The profile both machines run: its reason template and its alarm texts."""
    return Profile.model_validate(
        {
            "name": "scripted-grinder",
            "kind": "grinder",
            "tags": {"alarm_code": {"table": "holding", "address": 1, "type": "uint16"}},
            "state": [
                {"when": "alarm_code > 0", "state": "fault", "reason": "alarm {alarm_code}"},
                {"state": "idle"},
            ],
            "alarms": ALARMS,
        }
    )
