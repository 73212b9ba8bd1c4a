"""The commands as a plant engineer runs them: demo, simulate + run, stopped with SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from agent.commands.demo import demo_start
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from tests.conftest import CONFIGS, SAMPLE_WORKSHOP
from tests.integration.workshop_run import (
    EDGE_AGENT,
    read_records,
    simulator_for,
    start_agent,
    workshop_on_ports,
)

pytestmark = pytest.mark.integration


def demo(tmp_path: Path, *more: str) -> subprocess.CompletedProcess[str]:
    """`edge-agent demo` for 8 s at 600x: 07:20 to 08:40 of shop-floor time."""
    return subprocess.run(
        [
            *EDGE_AGENT,
            *("demo", *more, "--duration", "8", "--speed", "600"),
            *("--state-dir", str(tmp_path / "demo"), "--records", str(tmp_path / "records.jsonl")),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_runs_for_its_duration_and_shows_real_numbers(tmp_path: Path) -> None:
    records_file = tmp_path / "records.jsonl"
    done = demo(tmp_path)
    assert done.returncode == 0, done.stderr
    assert "shift night closed" in done.stdout  # 07:20 + 8 s x 600 passes the 08:00 shift change
    records = read_records(records_file)
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(records)))  # consecutive, no gap, no repeat
    states = {r["state"] for r in records if r["kind"] == "state"}
    assert {"producing"} < states  # states change: more than one state was seen
    oee = [r for r in records if r["kind"] == "oee"]
    produced = {r["machine"]: r["produced"] for r in oee}
    assert sum(1 for count in produced.values() if count > 0) >= 10
    assert produced.get("grinder-07", 0) > 0  # the OPC UA grinder, over a signed and encrypted session
    for record in oee:
        for key in ("availability", "quality", "oee"):
            value = record[key]
            assert value is None or 0.0 <= value <= 1.0
    assert any(r["kind"] == "energy" and r["kwh_per_unit"] for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(r["ts"])) for r in records)


def test_the_chinese_demo_speaks_chinese_and_names_everything(tmp_path: Path) -> None:
    """`demo --example grinding-zh`: the view and the shift summary in Chinese, with the shift's and
    crew's names; records carry the names and the crew, with ASCII ids and keys."""
    records_file = tmp_path / "records.jsonl"
    done = demo(tmp_path, "--example", "grinding-zh")
    assert done.returncode == 0, done.stderr
    config = load_config(CONFIGS / "grinding-zh-workshop.yaml")
    calendar = build_engine_setup(config).calendar
    night = calendar.period_at(demo_start(config, "07:20"))
    if night.is_shift:  # not on a statutory holiday: the night shift closes at 08:00
        assert f"夜班（{config_crew(config, night.crew)}）已结束" in done.stdout
    assert "演示：共产生" in done.stdout
    records = read_records(records_file)
    machines = {r["machine_name"] for r in records if r["kind"] == "oee"}
    assert "1号内沟磨床" in machines
    assert all(r["crew"] is not None for r in records if r["kind"] == "oee" and r["shift"] != "no_shift")
    assert all(key.isascii() for r in records for key in r)


def config_crew(config: AgentConfig, crew: str | None) -> str:
    return next(c.name for c in config.workshop.calendar.crews if c.id == crew)


def test_run_against_simulate_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    workshop = workshop_on_ports(tmp_path, records)
    with simulator_for(workshop, tmp_path / "simulator.log") as simulator:
        agent = start_agent(workshop, tmp_path / "agent.log")
        deadline = time.monotonic() + 20
        while not any(r["kind"] == "state" for r in read_records(records)):
            assert time.monotonic() < deadline, "no state record from the agent"
            assert agent.poll() is None, (tmp_path / "agent.log").read_text()
            time.sleep(0.2)
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=15)
        stderr = (tmp_path / "agent.log").read_text()
        assert agent.returncode == 0, stderr
        assert "event=stopped" in stderr
        written = read_records(records)  # every line is whole JSON
        assert any(r["kind"] == "oee" for r in written)  # the drain on stop publishes the shift so far
    assert simulator.returncode == 0


def test_plan_prints_requests_per_connection() -> None:
    done = subprocess.run(
        [*EDGE_AGENT, "plan", "-c", str(SAMPLE_WORKSHOP)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "line1-gw" in done.stdout
    assert "16 requests per cycle" in done.stdout  # 4 grinders x (coil, discrete, holding, input)
