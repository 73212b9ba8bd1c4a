"""Which driver serves a connection: the one place that knows every driver."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import TYPE_CHECKING

from agent.config.compiled import Device
from agent.config.connections import Connection, OpcUaConnection
from agent.config.workshop import AgentSection
from agent.drivers.base import Clock, Driver

if TYPE_CHECKING:
    from agent.drivers.opcua_pki import Pki


def opcua_pki(connection: OpcUaConnection, agent: AgentSection) -> Pki:
    from agent.drivers.opcua_pki import Pki

    directory = Path(connection.pki_dir) if connection.pki_dir else Path(agent.state_dir) / "pki"
    uri = connection.application_uri or f"urn:{socket.gethostname()}:edge-agent:{agent.id}"
    return Pki(directory, uri)


def build_driver(connection: Connection, devices: list[Device], clock: Clock, agent: AgentSection) -> Driver:
    # Drivers are imported when a connection needs them: asyncua and its cryptography cost a
    # Modbus-only gateway about 25 MB of memory for nothing.
    if isinstance(connection, OpcUaConnection):
        from agent.drivers.opcua import OpcUaDriver

        return OpcUaDriver(connection, devices, clock, opcua_pki(connection, agent))
    from agent.drivers.modbus import ModbusDriver

    return ModbusDriver(connection, devices, clock)
