"""A simulator killed with SIGKILL and started again, over and over, at random moments of the poll
cycle, while `edge-agent run` polls it: the agent never dies, the restarted connection's units
are all read again within one cycle of the simulator being back, and the other connection never
notices. One connection speaks Modbus TCP, the other RTU over TCP; each has four units and a
pause between requests, so most kills land between two units of a cycle (the path that used to
end the agent). The driver must cope on its own: a poll loop restarted by the supervisor fails
the test too."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.commands.status import StatusError, fetch_health
from tests.conftest import CASES, free_port
from tests.integration.workshop_run import start_agent

pytestmark = pytest.mark.integration

SIMULATOR = Path(__file__).resolve().parent / "hostile_modbus.py"
INTERVAL_S = 0.25
PAUSE_S = 0.04  # silence between requests, as a slow serial gateway needs: a cycle of four units
# takes 0.16 s of every 0.25 s, so most kills land between two units of a cycle
UNITS = (1, 2, 3, 4)
# The cycle that is running when the simulator comes back may still fail; the next one reads all.
RECOVERY_CYCLES = 2
RECOVERY_LIMIT_S = 10.0  # a recovery not seen by then is a failure whatever the cycle count says

WORKSHOP = """
agent: {{id: gw-restarts, state_dir: {state}}}
site: {{enterprise: acme, site: plant-1, area: grinding}}
profiles_dir: {profiles}
connections:
  - {{id: plc, transport: modbus-tcp, host: 127.0.0.1, port: {tcp}, interval_s: {interval},
     timeout_s: 0.3, reconnect_max_s: 2, request_pause_s: {pause}}}
  - {{id: gateway, transport: modbus-rtu-over-tcp, host: 127.0.0.1, port: {rtu}, interval_s: {interval},
     timeout_s: 0.3, reconnect_max_s: 2, request_pause_s: {pause}}}
lines:
  - {{id: line-1}}
machines:
{machines}
calendar:
  shifts:
    - {{name: day, start: "00:00", end: "12:00"}}
    - {{name: night, start: "12:00", end: "00:00"}}
health: {{port: {health}}}
"""


@dataclass
class Simulator:
    port: int
    framing: str
    process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SIMULATOR), "--port", str(self.port), "--framing", self.framing],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        assert "serving" in self.process.stdout.readline(), f"simulator on {self.port} did not start"

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def workshop(tmp_path: Path, tcp: int, rtu: int, health: int) -> Path:
    machines = "\n".join(
        f"  - {{id: {connection}-{unit}, line: line-1, kind: grinder, profile: grinder, "
        f"connection: {connection}, unit: {unit}, ideal_cycle_s: 5}}"
        for connection in ("plc", "gateway")
        for unit in UNITS
    )
    path = tmp_path / "workshop.yaml"
    path.write_text(
        WORKSHOP.format(
            state=tmp_path / "state",
            profiles=CASES / "_devices",
            tcp=tcp,
            rtu=rtu,
            interval=INTERVAL_S,
            pause=PAUSE_S,
            machines=machines,
            health=health,
        ),
        encoding="utf-8",
    )
    return path


def health(url: str) -> dict[str, Any]:
    for _ in range(50):
        try:
            return fetch_health(url, timeout_s=2.0)
        except StatusError:
            time.sleep(0.05)
    raise AssertionError(f"no answer from {url}")


def all_read_since(document: dict[str, Any], connection: str, seconds: float) -> bool:
    """Every unit of the connection read well within the last `seconds`."""
    devices = document["connections"].get(connection, {}).get("devices", {})
    return len(devices) == len(UNITS) and all(
        d["connected"]
        and d["error"] is None
        and d["last_good_read_s_ago"] is not None
        and d["last_good_read_s_ago"] < seconds
        for d in devices.values()
    )


def restart_rounds(tmp_path: Path, rounds: int, seed: int) -> list[int]:
    """Kill and restart a simulator `rounds` times; returns the cycles each recovery took."""
    rng = random.Random(seed)
    simulators = {"plc": Simulator(free_port(), "socket"), "gateway": Simulator(free_port(), "rtu")}
    health_port = free_port()
    url = f"http://127.0.0.1:{health_port}"
    for simulator in simulators.values():
        simulator.start()
    path = workshop(tmp_path, simulators["plc"].port, simulators["gateway"].port, health_port)
    log = tmp_path / "agent.log"
    agent = start_agent(path, log)
    took: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not all(all_read_since(health(url), c, 1.0) for c in simulators):
            assert agent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the agent never read every unit"
            time.sleep(0.1)
        for round_number in range(rounds):
            name = rng.choice(sorted(simulators))
            other = "gateway" if name == "plc" else "plc"
            time.sleep(rng.uniform(0.0, INTERVAL_S))  # anywhere in the cycle, between units too
            simulators[name].kill()
            time.sleep(rng.uniform(0.0, 0.15))
            simulators[name].start()
            back = time.monotonic()
            cycles_back = health(url)["connections"][name]["cycles"]
            while True:
                assert agent.poll() is None, (
                    f"the agent died in round {round_number}:\n{log.read_text()[-3000:]}"
                )
                document = health(url)
                if all_read_since(document, name, time.monotonic() - back):
                    break
                assert time.monotonic() - back < RECOVERY_LIMIT_S, f"no recovery in round {round_number}"
                time.sleep(0.02)
            took.append(document["connections"][name]["cycles"] - cycles_back)
            assert took[-1] <= RECOVERY_CYCLES, f"round {round_number}: {took[-1]} cycles to recover {name}"
            assert all_read_since(document, other, 2 * INTERVAL_S + 0.5), (
                f"{other} suffered in round {round_number}: {document['connections'][other]}"
            )
        assert agent.poll() is None
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=20)
        for simulator in simulators.values():
            simulator.kill()
    text = log.read_text()
    assert agent.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    assert "event=loop_crashed" not in text  # nothing needed the supervisor: the driver coped
    return took


def test_twenty_simulator_restarts_never_stop_the_agent(tmp_path: Path) -> None:
    took = restart_rounds(tmp_path, 20, seed=12)
    assert len(took) == 20


@pytest.mark.slow
def test_a_hundred_simulator_restarts_never_stop_the_agent(tmp_path: Path) -> None:
    took = restart_rounds(tmp_path, 100, seed=100)
    assert len(took) == 100
