"""A one-machine OPC UA workshop for tests: its config, the simulator's server and the agent's driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from agent.config.compiled import AgentConfig
from agent.config.connections import OpcUaConnection
from agent.config.loader import load_config
from agent.drivers.base import ReadResult
from agent.drivers.opcua import OpcUaDriver
from agent.drivers.registry import build_driver
from agent.samples import Quality
from agent.sim.opcua_server import MachineryServer
from agent.sim.server import WorkshopSimulator
from tests.conftest import CONFIGS, free_port

MACHINE_NODE = "nsu=urn:shopfloor-edge-agent:simulator;s=Machines/grinder-07"


def opcua_workshop(directory: Path, *, port: int | None = None, **connection: object) -> AgentConfig:
    """The workshop file, written to `directory`, with these connection settings (security, user...)."""
    settings = {"interval_s": 0.2, "timeout_s": 2.0, "keepalive_s": 1.0, "reconnect_max_s": 1.0, **connection}
    fields = ", ".join(f"{key}: {value}" for key, value in settings.items())
    text = f"""
agent: {{id: gw-test, state_dir: {directory / "state"}}}
site: {{enterprise: e, site: s, area: a}}
connections:
  - {{id: cell, transport: opcua, url: "opc.tcp://127.0.0.1:{port or free_port()}", {fields}}}
lines: [{{id: l1}}]
machines:
  - {{id: grinder-07, line: l1, kind: grinder, profile: opc40001-grinder, connection: cell,
     ideal_cycle_s: 5.0, node: "{MACHINE_NODE}"}}
calendar:
  shifts: [{{name: day, start: "08:00", end: "20:00"}}, {{name: night, start: "20:00", end: "08:00"}}]
profiles_dir: {CONFIGS / "devices"}
"""
    path = directory / "workshop.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def connection_of(config: AgentConfig) -> OpcUaConnection:
    connection = config.workshop.connections[0]
    assert isinstance(connection, OpcUaConnection)
    return connection


def server_for(config: AgentConfig, **options: object) -> MachineryServer:
    """The simulator's OPC UA server for the workshop's one connection (not started)."""
    simulator = WorkshopSimulator(config, time.time)
    connection = connection_of(config)
    units = simulator.units[connection.id]
    pki_dir = Path(config.workshop.agent.state_dir) / "sim-pki"
    return MachineryServer(
        connection,
        [(unit.device, unit.values_at) for unit in units],
        time.time,
        pki_dir,
        **options,  # type: ignore[arg-type]
    )


def trust(server: MachineryServer, driver: OpcUaDriver) -> None:
    driver.pki.trusted.mkdir(parents=True, exist_ok=True)
    (driver.pki.trusted / "simulator.der").write_bytes(server.certificate.read_bytes())


def driver_for(config: AgentConfig) -> OpcUaDriver:
    connection = connection_of(config)
    driver = build_driver(connection, config.devices_on(connection), time.time, config.workshop.agent)
    assert isinstance(driver, OpcUaDriver)
    return driver


def all_good(result: ReadResult) -> bool:
    return bool(result.samples) and all(s.quality is Quality.GOOD for s in result.samples)


async def read_until(
    driver: OpcUaDriver, condition: Callable[[ReadResult], bool], timeout_s: float
) -> tuple[ReadResult, float]:
    """Read every interval until the condition holds; returns the result and the seconds it took."""
    started = time.monotonic()
    while True:
        result = await driver.read()
        if condition(result):
            return result, time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"not within {timeout_s} s; last statuses: {result.statuses}")
        await asyncio.sleep(driver.interval_s)
