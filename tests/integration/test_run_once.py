"""`edge-agent run --once` against served devices: every tag and state shown, nothing recorded."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.integration.workshop_run import EDGE_AGENT, ENV, simulator_for, workshop_on_ports

pytestmark = pytest.mark.integration
MACHINE_STATES = ("producing", "idle", "setup", "fault")
MODBUS_ONLY = """\
agent: {{id: gw-test, state_dir: state}}
site: {{enterprise: acme, site: plant-1, area: grinding}}
connections:
  - {{id: line1-gw, transport: modbus-tcp, host: 127.0.0.1, port: {port}, timeout_s: 0.5}}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: sim-grinder, connection: line1-gw, unit: 1,
     ideal_cycle_s: 5.5}}
meters:
  - {{id: meter-g01, profile: sim-power-meter, connection: line1-gw, unit: 11, measures: grinder-01}}
calendar:
  shifts:
    - {{name: day, start: "08:00", end: "20:00"}}
outputs:
  file: {{path: state/records.jsonl}}
"""


def run_once(workshop: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EDGE_AGENT, "run", "--once", "-c", str(workshop)],
        cwd=workshop.parent,
        env=ENV,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows_of(stdout: str, device: str) -> list[list[str]]:
    """The table's rows for one device, as cells."""
    rows = []
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if cells and cells[0] == device:
            rows.append(cells)
    return rows


def test_run_once_shows_every_tag_and_state_of_the_sample_and_records_nothing(tmp_path: Path) -> None:
    records = tmp_path / "records.jsonl"
    workshop = workshop_on_ports(tmp_path, records)
    with simulator_for(workshop, tmp_path / "simulator.log"):
        done = run_once(workshop)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "22 of 22 devices answered every read" in done.stdout
    grinder = rows_of(done.stdout, "grinder-01")
    assert len(grinder) == 15  # every tag of the sim-grinder profile
    assert {row[2] for row in grinder} <= set(MACHINE_STATES)
    assert {row[7] for row in grinder} == {"good"}
    opcua = rows_of(done.stdout, "grinder-07")  # subscribed values arrive after the connect
    assert opcua
    assert {row[7] for row in opcua} == {"good"}
    assert {row[2] for row in opcua} <= set(MACHINE_STATES)
    meter = rows_of(done.stdout, "meter-g01 (meter)")
    assert any(row[4] == "energy_kwh" and float(row[5]) > 0 for row in meter)
    own = rows_of(done.stdout, "grinder-06")  # its PLC counts its own kWh: read with its other tags
    assert any(row[4] == "energy_kwh" and float(row[5]) > 0 for row in own)
    assert not records.exists()
    assert not list(tmp_path.rglob("outbox.db*"))


def test_run_once_of_a_modbus_workshop_creates_no_files_and_fails_when_a_device_is_down(
    tmp_path: Path,
) -> None:
    port = free_port()
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(MODBUS_ONLY.format(port=port), encoding="utf-8")
    with simulator_for(workshop, tmp_path / "simulator.log"):
        before = sorted(tmp_path.rglob("*"))
        done = run_once(workshop)
        assert done.returncode == 0, done.stdout + done.stderr
        assert sorted(tmp_path.rglob("*")) == before  # no state folder, outbox or records
    assert "2 of 2 devices answered every read" in done.stdout

    down = run_once(workshop)
    assert down.returncode == 1
    assert "0 of 2 devices answered every read" in down.stdout
    # why, in plain words: nothing listens on the port once the simulator is gone
    assert (
        f"line1-gw (127.0.0.1:{port}) grinder-01, meter-g01: cannot connect: connection refused: nothing "
        "listens on that port" in " ".join(down.stdout.split())
    )
    assert {row[2] for row in rows_of(down.stdout, "grinder-01")} == {"offline"}
