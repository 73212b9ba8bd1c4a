"""`edge-agent run` processes through one scripted two-minute shift of the simulator, each treated
as gateways are: left alone (the reference), stopped with SIGTERM, killed with SIGKILL at random
moments, down across the shift's end, and with their wall clock set an hour forward or back
(libfaketime, the monotonic clock untouched) while running and at start. All of them read the
same simulated grinder at the same time, so their figures can be compared with the uninterrupted
run and with the shift's truth, computed by hand from the timeline below.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import shutil
import signal
import subprocess
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.delivery.outbox import Checkpoint, Outbox
from agent.records import Record, RecordKind
from tests.conftest import CONFIGS, free_port
from tests.integration.workshop_run import EDGE_AGENT, ENV, simulator_for

# The shared shift takes about three and a half minutes: a whole minute to wait for, two for the
# shift, and the first test pays for it.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

ZONE = zoneinfo.ZoneInfo("Asia/Shanghai")
LEAD_S = 20.0  # every agent is up and polling before the shift starts
SHIFT_S = 120.0
POLL_S = 0.5
OFFLINE_AFTER_S = 3.0
CHECKPOINT_S = 1.0
TAIL_S = 14.0  # after the shift: restarts across its end come back, finals settle
# The scripted grinder, in seconds from the shift's start (the timeline starts a minute earlier).
SCRIPT = (
    (-60, "idle"),
    (10, "producing"),
    (40, "fault"),
    (50, "producing"),
    (80, "setup"),
    (90, "producing"),
    (110, "idle"),
)
CYCLE_S = 2.0
IDEAL_CYCLE_S = 1.8  # a machine a little slower than ideal: performance stays below 1
REJECT_EVERY = 7
COUNTER_START = 2**32 - 20  # the part counter wraps during the shift
GRINDER_KW = {"producing": 6.8, "idle": 1.9, "setup": 2.4, "fault": 1.2}  # agent/sim/machines.py
TRANSITIONS = 6  # state changes inside the shift: each seen by a poll up to POLL_S late
KILLS = 12
RESTARTED = ("reference", "sigterm", "sigkill", "across-end")
CLOCKED = ("ahead", "back", "behind-at-start", "ahead-at-start")  # under libfaketime
METER_PROFILE = """\
name: meter-f64
kind: meter
description: energy as float64, so kWh compare to 1e-4 without a register's rounding
tags:
  energy_kwh: {table: holding, address: 0, type: float64, unit: kWh}
  power_kw: {table: holding, address: 4, type: float32, unit: kW}
energy:
  kwh: energy_kwh
  power_kw: power_kw
  rated_kw: 50
"""


def truth() -> dict[str, float]:
    """The shift by hand: seconds per state over [0, SHIFT_S), parts at one per CYCLE_S producing."""
    seconds = dict.fromkeys(GRINDER_KW, 0.0)
    for (start, state), (end, _) in zip(SCRIPT, [*SCRIPT[1:], (SHIFT_S, "")], strict=True):
        seconds[state] += max(0.0, min(end, SHIFT_S) - max(start, 0.0))
    produced = seconds["producing"] / CYCLE_S
    return {
        "produced": produced,
        "good": produced - produced // REJECT_EVERY,
        "kwh": sum(GRINDER_KW[s] * t for s, t in seconds.items()) / 3600.0,
        "apt_s": seconds["producing"],
        "idle_s": seconds["idle"],
        "fault_s": seconds["fault"],
        "setup_s": seconds["setup"],
    }


TRUTH = truth()
assert (TRUTH["produced"], TRUTH["good"]) == (40, 35)  # the script says so


def libfaketime() -> str:
    found = sorted(Path("/usr/lib").glob("*/faketime/libfaketime.so.1"))
    if not found:
        pytest.fail("libfaketime is missing: scripts/bootstrap.sh installs it (apt-get install faketime)")
    return str(found[0])


@dataclass
class Run:
    """One agent (its own id, state directory and records file), started and stopped over the shift."""

    name: str
    folder: Path
    workshop: Path
    clock_file: Path | None = None  # libfaketime's offset, read on every clock call
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0
    down_s: float = 0.0  # from each stop to the next start
    stopped_at: float | None = None
    events: list[str] = field(default_factory=list)
    stops: list[float] = field(default_factory=list)  # wall-clock moments of each stop signal
    # and of each exit: the agent's last checkpoint is taken between the two (a busy machine can
    # take a good part of a second to drain)
    exits: list[float] = field(default_factory=list)
    clock_set: list[float] = field(default_factory=list)  # and of each change of its clock

    def start(self) -> None:
        env = dict(ENV)
        if self.clock_file is not None:
            env |= {
                "LD_PRELOAD": libfaketime(),
                "FAKETIME_TIMESTAMP_FILE": str(self.clock_file),
                "FAKETIME_NO_CACHE": "1",
                "DONT_FAKE_MONOTONIC": "1",
            }
        if self.stopped_at is not None:
            self.down_s += time.monotonic() - self.stopped_at
        with (self.folder / "agent.log").open("a", encoding="utf-8") as log:
            self.process = subprocess.Popen(
                [*EDGE_AGENT, "run", "-c", str(self.workshop)],
                cwd=self.folder,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        self.events.append(f"start {time.time():.3f}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        assert self.process is not None
        self.stops.append(time.time())
        self.process.send_signal(sig)
        code = self.process.wait(timeout=30)
        self.exits.append(time.time())
        if sig is signal.SIGTERM:
            assert code == 0, f"{self.name} exited with {code}: {self.log()[-2000:]}"
        else:
            self.kills += 1
        self.stopped_at = time.monotonic()
        self.process = None
        self.events.append(f"{sig.name} {time.time():.3f}")

    def set_clock(self, offset: str) -> None:
        assert self.clock_file is not None
        self.clock_file.write_text(offset, encoding="utf-8")
        self.clock_set.append(time.time())
        self.events.append(f"clock {offset} {time.time():.3f}")

    def log(self) -> str:
        return (self.folder / "agent.log").read_text(encoding="utf-8")

    def records(self) -> list[dict[str, Any]]:
        """Every record delivered, once per sequence number (delivery is at least once). A kill
        during a write can leave a broken last line, which the next start appends to."""
        by_seq: dict[int, dict[str, Any]] = {}
        path = self.folder / "records.jsonl"
        if not path.exists():
            return []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            by_seq[record["seq"]] = record
        return [by_seq[seq] for seq in sorted(by_seq)]


def workshop_text(name: str, port: int, shift_start: dt.datetime) -> str:
    warmup = shift_start - dt.timedelta(minutes=1)
    end = shift_start + dt.timedelta(seconds=SHIFT_S)
    return f"""\
agent: {{id: gw-{name}, state_dir: state}}
site: {{enterprise: acme, site: plant-1, area: grinding, timezone: Asia/Shanghai}}
profiles_dir: ../profiles
connections:
  - {{id: plc, transport: modbus-tcp, host: 127.0.0.1, port: {port}, interval_s: {POLL_S}, timeout_s: 0.5}}
lines: [{{id: line-1}}]
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: sim-grinder, connection: plc, unit: 1,
     ideal_cycle_s: {IDEAL_CYCLE_S}}}
meters:
  - {{id: meter-01, profile: meter-f64, connection: plc, unit: 11, measures: grinder-01}}
calendar:
  shifts:
    - {{name: warmup, start: "{warmup:%H:%M}", end: "{shift_start:%H:%M}"}}
    - {{name: test, start: "{shift_start:%H:%M}", end: "{end:%H:%M}"}}
kpi: {{publish_interval_s: 10, offline_after_s: {OFFLINE_AFTER_S}, checkpoint_s: {CHECKPOINT_S}}}
outputs: {{file: {{path: records.jsonl}}}}
health: {{enabled: false}}
"""


def timeline_text(shift_start: dt.datetime) -> str:
    origin = shift_start + dt.timedelta(seconds=SCRIPT[0][0])
    segments = "\n".join(
        f"      - {{at: {at - SCRIPT[0][0]}, state: {state}, alarm: 1203}}" for at, state in SCRIPT
    )
    return f"""\
start: {origin.isoformat()}
machines:
  grinder-01:
    cycle_s: {CYCLE_S}
    counter_start: {COUNTER_START}
    reject_every: {REJECT_EVERY}
    segments:
{segments}
"""


@dataclass
class Shift:
    start: float  # epoch seconds
    runs: dict[str, Run]
    seed: int

    @property
    def end(self) -> float:
        return self.start + SHIFT_S


def next_shift_start() -> dt.datetime:
    """The first whole minute at least LEAD_S away, local time: shift times are HH:MM."""
    earliest = dt.datetime.now(ZONE) + dt.timedelta(seconds=LEAD_S)
    return earliest.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


def assert_offline_from_the_stop(offline_s: float, run: Run, *, until: float, slack: float = POLL_S) -> None:
    """Offline from the agent's last checkpoint at its first stop until `until`: that checkpoint was
    taken between the stop signal and the exit."""
    assert until - run.exits[0] - slack <= offline_s <= until - run.stops[0] + slack, (
        offline_s,
        until - run.exits[0],
        until - run.stops[0],
    )


def kill_moments(rng: random.Random, first: float, last: float) -> list[float]:
    """KILLS random moments, at least 3 s apart: room for a restart to resume between two kills,
    also on a loaded machine (at 1.8 s, a start that took over 0.3 s was killed before it resumed)."""
    while True:
        moments = sorted(rng.uniform(first, last) for _ in range(KILLS))
        if all(b - a >= 3.0 for a, b in itertools.pairwise(moments)):
            return moments


@pytest.fixture(scope="module")
def shift(tmp_path_factory: pytest.TempPathFactory) -> Shift:
    root = tmp_path_factory.mktemp("restarts")
    profiles = root / "profiles"
    profiles.mkdir()
    shutil.copy(CONFIGS / "devices" / "sim-grinder.yaml", profiles)
    (profiles / "meter-f64.yaml").write_text(METER_PROFILE, encoding="utf-8")
    port = free_port()
    shift_start = next_shift_start()
    start = shift_start.timestamp()
    runs: dict[str, Run] = {}
    for name in (*RESTARTED, *CLOCKED):
        folder = root / name
        folder.mkdir()
        workshop = folder / "workshop.yaml"
        workshop.write_text(workshop_text(name, port, shift_start), encoding="utf-8")
        clock_file = None
        if name in CLOCKED:
            clock_file = folder / "faketime"
            clock_file.write_text("+0", encoding="utf-8")
        runs[name] = Run(name, folder, workshop, clock_file)
    timeline = root / "timeline.yaml"
    timeline.write_text(timeline_text(shift_start), encoding="utf-8")
    seed = int(time.time())
    rng = random.Random(seed)
    schedule: list[tuple[float, Callable[[], None]]] = []

    def at(offset: float, action: Callable[[], None]) -> None:
        schedule.append((start + offset, action))

    r = runs
    at(38, r["sigterm"].stop)  # mid-shift: producing, a fault coming
    at(41, r["sigterm"].start)
    at(SHIFT_S + 8, r["sigterm"].stop)  # its final went out before this stop: never again after
    at(SHIFT_S + 10, r["sigterm"].start)
    for moment in kill_moments(rng, 2.0, SHIFT_S - 16.0):
        at(moment, lambda: r["sigkill"].stop(signal.SIGKILL))
        at(moment + rng.uniform(0.2, 1.5), r["sigkill"].start)
    at(SHIFT_S - 6, r["across-end"].stop)  # idle from 110 s on: the truth does not move meanwhile
    at(SHIFT_S + 5, r["across-end"].start)
    at(45, lambda: r["ahead"].set_clock("+3600"))
    at(45, lambda: r["back"].set_clock("-3600"))
    at(30, r["behind-at-start"].stop)
    at(33, lambda: r["behind-at-start"].set_clock("-3600"))
    at(33.1, r["behind-at-start"].start)
    at(60, lambda: r["behind-at-start"].set_clock("+0"))  # time sync comes
    at(30, r["ahead-at-start"].stop)
    at(33, lambda: r["ahead-at-start"].set_clock("+3600"))
    at(33.1, r["ahead-at-start"].start)
    at(90, lambda: r["ahead-at-start"].set_clock("+0"))  # set right: an hour back while running
    schedule.sort(key=lambda item: item[0])

    with simulator_for(runs["reference"].workshop, root / "simulator.log", "--timeline", str(timeline)):
        try:
            for run in runs.values():
                run.start()
            for moment, action in schedule:
                time.sleep(max(0.0, moment - time.time()))
                action()
            time.sleep(max(0.0, start + SHIFT_S + TAIL_S - time.time()))
            for run in runs.values():
                run.stop()
        finally:
            for run in runs.values():  # a failure or a timeout above leaves no agent behind
                if run.process is not None:
                    run.process.kill()
                    run.process.wait(timeout=30)
    return Shift(start, runs, seed)


def shift_finals(run: Run, kind: str = "oee") -> list[dict[str, Any]]:
    return [
        r
        for r in run.records()
        if r["kind"] == kind and r.get("shift") == "test" and r["final"] and r.get("machine") == "grinder-01"
    ]


def the_final(run: Run, kind: str = "oee") -> dict[str, Any]:
    finals = shift_finals(run, kind)
    assert len(finals) == 1, f"{run.name}: {len(finals)} finals of the shift; events {run.events}"
    return finals[0]


def assert_covers_the_shift(record: dict[str, Any]) -> None:
    for key in (
        "pbt_s",
        "apt_s",
        "setup_s",
        "idle_s",
        "fault_s",
        "offline_s",
        "no_shift_s",
        "planned_stop_s",
    ):
        assert record[key] >= 0.0, key
    covered = record["pbt_s"] + record["planned_stop_s"] + record["no_shift_s"] + record["offline_s"]
    assert covered == pytest.approx(SHIFT_S, abs=0.002)


def test_the_uninterrupted_run_matches_the_hand_computed_shift(shift: Shift) -> None:
    run = shift.runs["reference"]
    oee, energy = the_final(run), the_final(run, "energy")
    assert (oee["produced"], oee["good"]) == (TRUTH["produced"], TRUTH["good"])
    assert energy["kwh"] == pytest.approx(TRUTH["kwh"], abs=1e-4)
    for key in ("apt_s", "idle_s", "fault_s", "setup_s"):
        assert oee[key] == pytest.approx(TRUTH[key], abs=TRANSITIONS * POLL_S), key
    assert oee["offline_s"] == 0.0
    assert oee["flags"] == ["counter_wrapped"]
    assert_covers_the_shift(oee)


@pytest.mark.parametrize("name", ["sigterm", "sigkill", "across-end"])
def test_a_restarted_run_counts_the_same_shift_and_only_its_gaps_are_offline(shift: Shift, name: str) -> None:
    reference, run = shift.runs["reference"], shift.runs[name]
    whole, oee = the_final(reference), the_final(run)
    context = f"{name} (seed {shift.seed}): {run.events}"
    assert (oee["produced"], oee["good"]) == (whole["produced"], whole["good"]), context
    assert the_final(run, "energy")["kwh"] == pytest.approx(the_final(reference, "energy")["kwh"], abs=1e-4)
    assert "agent_restart" in oee["flags"], context
    assert oee["offline_s"] > 0.0, context
    assert oee["coverage"] < 1.0
    assert_covers_the_shift(oee)
    jitter = TRANSITIONS * POLL_S
    lost = 0.0
    for key in ("apt_s", "idle_s", "fault_s", "setup_s"):
        assert -jitter <= whole[key] - oee[key] <= oee["offline_s"] + jitter, (key, context)
        lost += whole[key] - oee[key]
    assert lost == pytest.approx(oee["offline_s"], abs=jitter)
    # the offline time is the time down, plus per start at most one checkpoint interval lost to a
    # kill and the start itself (Python, the outbox, the first poll)
    restarts = len(run.stops)
    assert oee["offline_s"] <= run.down_s + restarts * (CHECKPOINT_S + 3.0), context


def test_ten_kills_and_more_landed_at_random_moments_in_the_shift(shift: Shift) -> None:
    run = shift.runs["sigkill"]
    assert run.kills >= 10
    assert run.log().count("event=kpi_resumed") >= 10  # some kills may land before a start resumed
    assert "checkpoint_set_aside" not in run.log()
    assert "Traceback" not in run.log()


def test_a_shift_that_ended_while_the_agent_was_down_is_published_once_at_its_end(shift: Shift) -> None:
    run = shift.runs["across-end"]
    [final] = shift_finals(run)
    assert final["ts"] == dt.datetime.fromtimestamp(shift.end, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert_offline_from_the_stop(final["offline_s"], run, until=shift.end)


def test_a_final_that_went_out_before_a_stop_is_not_published_again(shift: Shift) -> None:
    run = shift.runs["sigterm"]
    assert run.log().count("event=kpi_resumed") == 2
    the_final(run)


def period_parts(run: Run) -> float:
    """Parts over every machine period the run published: each period's final, else its last word."""
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for record in run.records():
        if record["kind"] == "oee" and record.get("machine") == "grinder-01" and record["period"] == "shift":
            key = (record["shift"], record["shift_start"])
            if key not in last or not last[key]["final"]:
                last[key] = record
    return float(sum(r["produced"] for r in last.values()))


def test_a_clock_set_an_hour_ahead_while_running_ends_the_shift_once_with_the_rest_offline(
    shift: Shift,
) -> None:
    run = shift.runs["ahead"]
    oee = the_final(run)
    assert "clock_step" in oee["flags"]
    # the agent sees the step at its next clock reading: within a poll of the clock being set
    assert oee["offline_s"] == pytest.approx(shift.end - run.clock_set[0], abs=2 * POLL_S)
    assert_covers_the_shift(oee)
    assert period_parts(run) == pytest.approx(TRUTH["produced"], abs=0.01)  # nothing lost, wherever counted
    assert "event=clock_step by_s=+3600" in run.log()


def test_a_clock_set_an_hour_back_while_running_holds_and_never_closes_or_reopens_a_shift(
    shift: Shift,
) -> None:
    run = shift.runs["back"]
    assert shift_finals(run) == []  # the engine holds at 45 s into the shift until the clock is back there
    words = [
        r
        for r in run.records()
        if r["kind"] == "oee" and r.get("shift") == "test" and r.get("machine") == "grinder-01"
    ]
    last = words[-1]
    assert (last["produced"], last["good"]) == (TRUTH["produced"], TRUTH["good"])  # counted while held
    assert "clock_step" in last["flags"]
    assert last["apt_s"] + last["idle_s"] + last["fault_s"] + last["offline_s"] <= 45.0 + POLL_S
    assert "event=clock_step by_s=-3600" in run.log()


def test_a_clock_behind_the_checkpoint_at_start_holds_until_time_sync_then_counts_exactly(
    shift: Shift,
) -> None:
    run = shift.runs["behind-at-start"]
    oee = the_final(run)
    assert (oee["produced"], oee["good"]) == (TRUTH["produced"], TRUTH["good"])
    assert the_final(run, "energy")["kwh"] == pytest.approx(TRUTH["kwh"], abs=1e-4)
    assert {"agent_restart", "clock_step"} <= set(oee["flags"])
    # to the sync, and the first poll after it: on a loaded machine that poll came 0.08 s late
    assert_offline_from_the_stop(oee["offline_s"], run, until=run.clock_set[1], slack=3 * POLL_S)
    assert_covers_the_shift(oee)
    assert "event=clock_behind_checkpoint" in run.log()


def test_a_clock_ahead_at_start_closes_the_shift_once_and_loses_no_part(shift: Shift) -> None:
    run = shift.runs["ahead-at-start"]
    oee = the_final(run)
    assert "agent_restart" in oee["flags"]
    assert_offline_from_the_stop(oee["offline_s"], run, until=shift.end)
    assert_covers_the_shift(oee)
    assert period_parts(run) == pytest.approx(TRUTH["produced"], abs=0.01)  # nothing lost, wherever counted
    assert "event=clock_step by_s=-3600" in run.log()


def test_every_run_left_an_outbox_that_opens(shift: Shift) -> None:
    for run in shift.runs.values():
        assert (run.folder / "state" / "outbox.db").exists()
        assert not list((run.folder / "state").glob("*.corrupt-*")), run.name
        assert (run.folder / "records.jsonl").stat().st_size > 0


def test_a_corrupt_checkpoint_is_set_aside_and_the_agent_starts_afresh_keeping_every_record(
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(CONFIGS / "devices" / "sim-grinder.yaml", profiles)
    (profiles / "meter-f64.yaml").write_text(METER_PROFILE, encoding="utf-8")
    folder = tmp_path / "corrupt"
    (folder / "state").mkdir(parents=True)
    workshop = folder / "workshop.yaml"
    workshop.write_text(workshop_text("corrupt", free_port(), next_shift_start()), encoding="utf-8")
    outbox = Outbox(folder / "state" / "outbox.db")
    outbox.open()
    waiting = [Record(RecordKind.EVENT, time.time(), {"undelivered": n}) for n in range(3)]
    outbox.append("gw-corrupt", waiting, time.time(), Checkpoint("gw-corrupt", 1, time.time(), {"x": 1}))
    outbox.db.execute("UPDATE checkpoint SET body = x'789c0badbeef'")  # a zlib header, then garbage
    outbox.close()
    run = Run("corrupt", folder, workshop)
    with simulator_for(workshop, tmp_path / "simulator.log"):
        run.start()
        try:
            deadline = time.monotonic() + 30
            while not any(r["kind"] == "state" for r in run.records()):
                assert time.monotonic() < deadline, run.log()
                assert run.process is not None
                assert run.process.poll() is None, run.log()
                time.sleep(0.2)
            run.stop()
        finally:
            if run.process is not None:
                run.process.kill()
                run.process.wait(timeout=30)
    assert run.log().count("event=checkpoint_set_aside") == 1
    assert "cannot be decoded" in run.log()
    assert len(list((folder / "state").glob("outbox.db.checkpoint-*"))) == 1
    records = run.records()
    assert [r["undelivered"] for r in records if r["kind"] == "event"] == [0, 1, 2]
    so_far = [r for r in records if r["kind"] == "oee" and r.get("machine") == "grinder-01"]
    assert so_far
    assert "agent_restart" in so_far[-1]["flags"]
