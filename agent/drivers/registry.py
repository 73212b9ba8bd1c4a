"""Which driver serves a connection: the one place that knows every driver."""

from __future__ import annotations

import socket
from pathlib import Path

from agent.config.loader import Device
from agent.config.workshop import AgentSection, Connection, OpcUaConnection
from agent.drivers.base import Clock, Driver
from agent.drivers.modbus import ModbusDriver
from agent.drivers.opcua import OpcUaDriver
from agent.drivers.opcua_pki import Pki


def opcua_pki(connection: OpcUaConnection, agent: AgentSection) -> Pki:
    directory = Path(connection.pki_dir) if connection.pki_dir else Path(agent.state_dir) / "pki"
    uri = connection.application_uri or f"urn:{socket.gethostname()}:edge-agent:{agent.id}"
    return Pki(directory, uri)


def build_driver(connection: Connection, devices: list[Device], clock: Clock, agent: AgentSection) -> Driver:
    if isinstance(connection, OpcUaConnection):
        return OpcUaDriver(connection, devices, clock, opcua_pki(connection, agent))
    return ModbusDriver(connection, devices, clock)
