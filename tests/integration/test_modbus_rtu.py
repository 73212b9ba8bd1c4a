"""Modbus RTU over real serial links (pty pairs from socat) and RTU framing over TCP (serial gateways)."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse

from agent.config.compiled import AgentConfig, Device
from agent.config.connections import ModbusRtuConnection, ModbusRtuOverTcpConnection
from agent.config.loader import load_config, load_profile
from agent.drivers.modbus import ModbusDriver
from agent.samples import Quality
from agent.sim.server import WorkshopSimulator
from tests.conftest import CONFIGS, free_port
from tests.integration.hostile_modbus import value_of

pytestmark = pytest.mark.integration
TIMEOUT_S = 0.3

BUS = """
agent: {{id: gw-test}}
site: {{enterprise: acme, site: plant-1, area: grinding}}
profiles_dir: {profiles}
connections:
  - {connection}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: sim-grinder, connection: bus, unit: 1,
     ideal_cycle_s: 5}}
  - {{id: grinder-02, line: line-1, kind: grinder, profile: sim-grinder, connection: bus, unit: 2,
     ideal_cycle_s: 5}}
{dead}meters:
  - {{id: meter-01, profile: sim-power-meter, connection: bus, unit: 11, measures: grinder-01}}
calendar:
  shifts:
    - {{name: day, start: "08:00", end: "20:00"}}
"""
DEAD = (
    "  - {id: grinder-03, line: line-1, kind: grinder, profile: sim-grinder, connection: bus, unit: 3, "
    "ideal_cycle_s: 5}\n"
)


def bus_config(tmp_path: Path, connection: str, *, with_dead_unit: bool, name: str) -> AgentConfig:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        BUS.format(profiles=CONFIGS / "devices", connection=connection, dead=DEAD if with_dead_unit else ""),
        encoding="utf-8",
    )
    return load_config(path)


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two connected serial ports: the agent's end and the simulator's end of an RS-485 cable."""
    agent_end, simulator_end = tmp_path / "ttyAgent", tmp_path / "ttySim"
    socat = subprocess.Popen(
        ["socat", f"pty,raw,echo=0,link={agent_end}", f"pty,raw,echo=0,link={simulator_end}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (agent_end.exists() and simulator_end.exists()):
        assert time.monotonic() < deadline, "socat made no pty pair"
        time.sleep(0.02)
    yield str(agent_end), str(simulator_end)
    socat.terminate()
    socat.wait(timeout=10)


async def test_rtu_bus_with_a_dead_slave(tmp_path: Path, pty_pair: tuple[str, str]) -> None:
    agent_end, simulator_end = pty_pair
    # 8N2, as the Modbus serial line spec asks of a line without parity (Linux ptys refuse parity bits)
    line = (
        f"{{id: bus, transport: modbus-rtu, serial_port: {agent_end}, baudrate: 19200, parity: N, "
        f"stopbits: 2, timeout_s: {TIMEOUT_S}}}"
    )
    agent_config = bus_config(tmp_path, line, with_dead_unit=True, name="agent")
    simulated = bus_config(tmp_path, line, with_dead_unit=False, name="simulated")  # unit 3 is switched off
    connection = agent_config.workshop.connections[0]
    assert isinstance(connection, ModbusRtuConnection)
    async with WorkshopSimulator(simulated, time.time, serial_ports={"bus": simulator_end}) as simulator:
        async with ModbusDriver(connection, agent_config.devices_on(connection), time.time) as driver:
            await driver.read()  # the first cycle opens the port
            started = time.perf_counter()
            result = await driver.read()
            cycle_s = time.perf_counter() - started
            expected = simulator.machines["grinder-01"].values_at(time.time())
    quality = {(s.device, s.quality) for s in result.samples}
    assert quality == {
        ("grinder-01", Quality.GOOD),
        ("grinder-02", Quality.GOOD),
        ("meter-01", Quality.GOOD),
        ("grinder-03", Quality.BAD),
    }
    status = {s.device: s for s in result.statuses}
    assert not status["grinder-03"].connected
    assert "timeout" in (status["grinder-03"].error or "")
    values = {s.tag: s.value for s in result.samples if s.device == "grinder-01"}
    assert values["program_no"] == expected["program_no"]
    assert values["alarm_code"] == expected["alarm_code"]
    # the dead slave costs one timeout, not one per request (4 requests per grinder)
    assert cycle_s < 2 * TIMEOUT_S + 1.0


async def test_rtu_over_tcp_gateway(tmp_path: Path) -> None:
    line = (
        f"{{id: bus, transport: modbus-rtu-over-tcp, host: 127.0.0.1, port: {free_port()}, timeout_s: 0.5}}"
    )
    config = bus_config(tmp_path, line, with_dead_unit=False, name="gateway")
    connection = config.workshop.connections[0]
    assert isinstance(connection, ModbusRtuOverTcpConnection)
    async with WorkshopSimulator(config, time.time):
        async with ModbusDriver(connection, config.devices_on(connection), time.time) as driver:
            result = await driver.read()
    assert {s.quality for s in result.samples} == {Quality.GOOD}
    assert {s.device for s in result.samples} == {"grinder-01", "grinder-02", "meter-01"}
    assert result.requests == 4 + 4 + 2  # the same plan as over TCP: one request per table


class FaultySlave:
    """The far end of an RS-485 link answering read-holding-registers requests with frames built by
    pymodbus's own RTU framer, then corrupted on purpose: a bad CRC, or half a frame."""

    def __init__(self, port: str) -> None:
        import serial

        self.link = serial.Serial(port, baudrate=19200, stopbits=2, timeout=0.05)
        self.mode = "honest"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="faulty-slave", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        framer = FramerRTU(DecodePDU(True))
        while not self.stopping.is_set():
            request = self.link.read(8)
            if len(request) < 8:
                continue
            unit, address, count = (
                request[0],
                int.from_bytes(request[2:4], "big"),
                int.from_bytes(request[4:6], "big"),
            )
            reply = framer.buildFrame(
                ReadHoldingRegistersResponse(
                    dev_id=unit, registers=[value_of(address + i) for i in range(count)]
                )
            )
            if self.mode == "bad-crc":
                reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
            elif self.mode == "partial":
                reply = reply[: len(reply) // 2]
            self.link.write(reply)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.link.close()


@pytest.mark.parametrize("fault", ["bad-crc", "partial"])
async def test_crc_errors_and_partial_frames_are_bad_reads_and_the_bus_recovers(
    tmp_path: Path, pty_pair: tuple[str, str], fault: str
) -> None:
    agent_end, slave_end = pty_pair
    path = tmp_path / "plain.yaml"
    path.write_text(
        "name: plain\nkind: other\ntags:\n  a: {table: holding, address: 100, type: uint16}\n"
        "  b: {table: holding, address: 101, type: uint16}\n",
        encoding="utf-8",
    )
    profile, issues = load_profile(path)
    assert profile is not None, issues
    connection = ModbusRtuConnection(
        id="bus",
        transport="modbus-rtu",
        serial_port=agent_end,
        baudrate=19200,
        stopbits=2,
        timeout_s=TIMEOUT_S,
    )
    slave = FaultySlave(slave_end)
    try:
        async with ModbusDriver(
            connection, [Device("dev", 1, profile, "bus", None, None)], time.time
        ) as driver:
            assert {s.value for s in (await driver.read()).samples} == {value_of(100), value_of(101)}
            slave.mode = fault
            faulty = await driver.read()
            assert {s.quality for s in faulty.samples} == {Quality.BAD}
            assert faulty.statuses[0].error
            slave.mode = "honest"
            results = [await driver.read() for _ in range(2)]
    finally:
        slave.close()
    assert any({s.quality for s in r.samples} == {Quality.GOOD} for r in results), "no recovery in two cycles"
    for result in results:  # and nothing from the broken frame was taken for a value
        assert all(
            s.value in (value_of(100), value_of(101)) for s in result.samples if s.quality is Quality.GOOD
        )
