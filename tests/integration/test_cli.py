"""The commands as a plant engineer runs them: demo, simulate + run, stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CONFIGS, REPO, SAMPLE_WORKSHOP, free_port

pytestmark = pytest.mark.integration
EDGE_AGENT = [sys.executable, "-m", "agent"]


def read_records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_demo_runs_for_its_duration_and_shows_real_numbers(tmp_path: Path) -> None:
    records_file = tmp_path / "records.jsonl"
    done = subprocess.run(
        [*EDGE_AGENT, "demo", "--duration", "8", "--speed", "600", "--records", str(records_file)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
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
    for record in oee:
        for key in ("availability", "quality", "oee"):
            value = record[key]
            assert value is None or 0.0 <= value <= 1.0
    assert any(r["kind"] == "energy" and r["kwh_per_unit"] for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(r["ts"])) for r in records)


def workshop_on_ports(tmp_path: Path, records: Path) -> Path:
    text = SAMPLE_WORKSHOP.read_text(encoding="utf-8")
    for port in sorted(set(re.findall(r"port: (\d+)", text))):
        text = text.replace(f"port: {port}", f"port: {free_port()}")
    text = text.replace("path: var/edge-agent/records.jsonl", f"path: {records}")
    text += f"profiles_dir: {CONFIGS / 'devices'}\n"
    path = tmp_path / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_run_against_simulate_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    workshop = workshop_on_ports(tmp_path, records)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    simulator_log = (tmp_path / "simulator.log").open("w", encoding="utf-8")
    simulator = subprocess.Popen(
        [*EDGE_AGENT, "simulate", "-c", str(workshop)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=simulator_log,
        text=True,
    )
    try:
        assert simulator.stdout is not None
        for _ in range(4):  # one line per served connection
            assert "serving" in simulator.stdout.readline()
        agent = subprocess.Popen(
            [*EDGE_AGENT, "run", "-c", str(workshop)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 20
        while not (records.exists() and any(r["kind"] == "state" for r in read_records(records))):
            assert time.monotonic() < deadline, "no state record from the agent"
            assert agent.poll() is None, agent.communicate()
            time.sleep(0.2)
        agent.send_signal(signal.SIGTERM)
        _, stderr = agent.communicate(timeout=15)
        assert agent.returncode == 0, stderr
        assert "event=stopped" in stderr
        written = read_records(records)  # every line is whole JSON
        assert any(r["kind"] == "oee" for r in written)  # the drain on stop publishes the shift so far
    finally:
        simulator.send_signal(signal.SIGINT)
        simulator.wait(timeout=15)
        simulator_log.close()
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
