"""A grinder whose PLC counts its own kWh, served by the simulator over Modbus TCP and read by the
agent: the kWh register comes in the same request as the machine's status word and part counter
(no meter, no second connection to the PLC), and it is counted exactly as a meter's kWh are.

Beside it, on the same gateway, a grinder measured by a separate meter: the two paths give figures
of the same form, each equal to what its registers said (the simulator's truth, read back through
the machine's own `tags` records).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from agent.clock import ScaledClock
from agent.config.compiled import AgentConfig
from agent.config.connections import ModbusTcpConnection
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.delivery.outbox import Outbox
from agent.drivers.modbus import plan_device
from agent.runtime.agent import Agent
from agent.sim.server import WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.registry import Output
from tests.conftest import free_port
from tests.integration.workshop_run import read_records

pytestmark = pytest.mark.integration

SPEED = 60.0  # shop-floor seconds per second: ten minutes of the shift in ten seconds
POLL_S = 0.1  # wall seconds: a read every 6 shop-floor seconds
RUN_S = 10.0
REGISTER_KWH = 0.1  # sim-grinder-kwh's energy register counts tenths of a kWh
WORKSHOP = """
agent: {{id: gw-own-energy, state_dir: {state}}}
site: {{enterprise: acme, site: plant-1, area: grinding, grid: cn-mee-2023-east-china}}
connections:
  - {{id: line-gw, transport: modbus-tcp, host: 127.0.0.1, port: {port}, interval_s: 1.0, timeout_s: 0.5}}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: sim-grinder-kwh, connection: line-gw, unit: 1,
     ideal_cycle_s: 5.5, publish_tags: true,
     energy_meter: {{accuracy_class: 1, calibration_due: 2099-12-31}}}}
  - {{id: grinder-02, line: line-1, kind: grinder, profile: sim-grinder, connection: line-gw, unit: 2,
     ideal_cycle_s: 5.5}}
meters:
  - {{id: meter-g02, profile: sim-power-meter, connection: line-gw, unit: 12, measures: grinder-02,
     accuracy_class: 0.5S, ct_ratio: 50/5, calibration_due: 2020-01-31}}
calendar:
  shifts:
    - {{name: all-day, start: "00:00", end: "00:00"}}
outputs:
  file: {{path: {records}}}
"""


def workshop(tmp_path: Path) -> AgentConfig:
    text = WORKSHOP.format(state=tmp_path / "state", port=free_port(), records=tmp_path / "records.jsonl")
    path = tmp_path / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_energy_register_is_read_in_the_machines_own_requests(tmp_path: Path) -> None:
    config = workshop(tmp_path)
    [connection] = config.workshop.connections
    assert isinstance(connection, ModbusTcpConnection)
    devices = {d.id: d for d in config.devices()}
    own = plan_device(devices["grinder-01"], connection)
    plain = plan_device(devices["grinder-02"], connection)
    assert len(own.requests) == len(plain.requests)  # the kWh counter costs no request of its own
    [holding] = [r for r in own.requests if r.table.value == "holding"]
    names = {tag.name for tag in holding.tags}
    assert {"status_word", "part_count", "energy_kwh", "power_kw"} <= names
    assert "grinder-01" not in {d.id for d in devices.values() if d.meter is not None}


async def run_agent(config: AgentConfig, tmp_path: Path) -> WorkshopSimulator:
    zone = zoneinfo.ZoneInfo(config.workshop.site.timezone)
    start = dt.datetime.combine(dt.date.today(), dt.time(10, 0), zone).timestamp()
    clock = ScaledClock(start, SPEED)
    setup = build_engine_setup(config, offline_after_s=10 * POLL_S * SPEED, publish_interval_s=120.0)
    agent = Agent(
        config,
        clock=clock,
        outputs=[Output(FileSink(str(tmp_path / "records.jsonl")), 1000, 50_000.0, 0.5)],
        engine_setup=setup,
        poll_interval_s=POLL_S,
        outbox=Outbox(tmp_path / "outbox.db", synchronous="normal"),
    )
    stop = asyncio.Event()
    simulator = WorkshopSimulator(config, clock, seed=3)
    async with simulator:
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(RUN_S)
        stop.set()
        await asyncio.wait_for(task, 30)
    return simulator


class Collected(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


LOG = Collected()


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], WorkshopSimulator]:
    tmp_path = tmp_path_factory.mktemp("own-energy")
    config = workshop(tmp_path)
    runtime_log = logging.getLogger("agent.runtime")  # the KPI loop warns of overdue meters
    runtime_log.addHandler(LOG)
    try:
        simulator = asyncio.run(run_agent(config, tmp_path))
    finally:
        runtime_log.removeHandler(LOG)
    return read_records(tmp_path / "records.jsonl"), simulator


def latest(records: list[dict[str, Any]], kind: str, **match: object) -> dict[str, Any]:
    found = [r for r in records if r["kind"] == kind and all(r.get(k) == v for k, v in match.items())]
    assert found, (kind, match)
    return found[-1]


def test_a_grinders_own_kwh_register_is_counted_as_its_meter(
    records: tuple[list[dict[str, Any]], WorkshopSimulator],
) -> None:
    found, simulator = records
    readings = [
        r["values"]["energy_kwh"] for r in found if r["kind"] == "tags" and r["machine"] == "grinder-01"
    ]
    assert len(readings) > 20  # the run read the register every poll
    energy = latest(found, "energy", machine="grinder-01")
    # everything between the first reading (the baseline) and the last, as read from the register
    assert energy["kwh"] == pytest.approx(readings[-1] - readings[0], abs=1e-6)
    assert energy["kwh"] > 0.5  # ten minutes of a 1.9-6.8 kW grinder
    model = simulator.machines["grinder-01"]
    stamps = [r["ts"] for r in found if r["kind"] == "tags" and r["machine"] == "grinder-01"]
    for ts, value in ((stamps[0], readings[0]), (stamps[-1], readings[-1])):
        moment = dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC).timestamp()
        truth = model.meter_start_kwh + model.kwh_at(moment)
        assert value == pytest.approx(truth, abs=REGISTER_KWH + 0.01)  # read at about its timestamp
    assert energy["meter"] == {
        "id": "grinder-01",
        "own_plc": True,
        "accuracy_class": "1",
        "ct_ratio": None,
        "calibration_due": "2099-12-31",
        "calibration_overdue": False,
    }
    assert energy["kw"] in {round(kw, 2) for kw in (6.8, 1.9, 2.4, 1.2)}  # the register's 0.01 kW steps
    assert energy["kwh_producing"] + energy["kwh_idle"] + energy["kwh_unattributed"] == pytest.approx(
        energy["kwh"], abs=2e-4
    )
    assert energy["kgce"] == pytest.approx(energy["kwh"] * 0.1229, abs=1e-3)
    assert energy["co2_kg"] == pytest.approx(energy["kwh"] * 0.55, abs=1e-3)
    assert energy["grid_factor"] == "cn-mee-2023-east-china"


def test_both_paths_give_the_same_record_and_the_line_sums_them(
    records: tuple[list[dict[str, Any]], WorkshopSimulator],
) -> None:
    found, _ = records
    own = latest(found, "energy", machine="grinder-01")
    metered = latest(found, "energy", machine="grinder-02")
    assert set(own) == set(metered)
    assert metered["meter"] == {
        "id": "meter-g02",
        "own_plc": False,
        "accuracy_class": "0.5S",
        "ct_ratio": "50/5",
        "calibration_due": "2020-01-31",
        "calibration_overdue": True,
    }
    assert metered["kwh"] > 0.5
    line = latest(found, "line_energy", line="line-1")
    assert line["kwh"] == pytest.approx(own["kwh"] + metered["kwh"], abs=2e-4)
    oee = latest(found, "oee", machine="grinder-01")
    assert isinstance(oee["produced"], int)
    assert isinstance(oee["good"], int)
    if oee["produced"]:
        assert own["kwh_per_unit"] == pytest.approx(own["kwh"] / oee["produced"], rel=1e-3)


def test_an_overdue_meter_is_warned_once_that_day(
    records: tuple[list[dict[str, Any]], WorkshopSimulator],
) -> None:
    warned = [line for line in LOG.lines if "event=calibration_overdue" in line]
    assert len(warned) == 1, warned  # ten minutes of one day: once
    assert warned[0].startswith("meter=meter-g02 event=calibration_overdue due=2020-01-31 overdue_days=")
