"""Every driver by the YAML `transport:` value it serves: the one place that knows them all.

A DriverEntry holds what a transport needs from the rest of the agent: its connection model
(agent/config/connections.py, which also says which profiles its devices take), the driver the
runtime and `run --once` poll with, what `edge-agent plan` prints, how `simulate` and the demo
serve its devices, and how long `run --once` waits for values after the first read. A connection
whose transport has no entry is an UnknownTransportError, never another transport's driver.

Each hook imports its module when called: asyncua and its cryptography cost a Modbus-only gateway
about 25 MB of memory for nothing (bench/README.md), and the simulators are never imported by the
daemon. A new driver is one more entry here (README: "Adding a driver").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from agent.config.compiled import Device
from agent.config.connections import (
    ConnectionBase,
    ModbusConnection,
    ModbusRtuConnection,
    ModbusRtuOverTcpConnection,
    ModbusTcpConnection,
    OpcUaConnection,
)
from agent.config.profile import ProfileProtocol
from agent.config.workshop import AgentSection
from agent.drivers.base import Clock, Driver
from agent.exceptions import AgentError

if TYPE_CHECKING:
    from agent.i18n import Catalogue
    from agent.sim.server import SimulatedEndpoint, SimulatedUnit, SimulationContext
    from agent.terminal import FittedTable

ConnectionT = TypeVar("ConnectionT", bound=ConnectionBase)
Simulate = Callable[[ConnectionT, list["SimulatedUnit"], "SimulationContext"], Awaitable["SimulatedEndpoint"]]
# Subscribed OPC UA values arrive with the subscription's first publish, not with the connect:
# `run --once` waits this many publishing intervals (plus the connection's timeout) for them.
PUBLISHES_TO_WAIT = 2


class UnknownTransportError(AgentError):
    """A connection whose transport no driver serves: a model without its entry in DRIVERS."""


@dataclass(frozen=True)
class DriverEntry(Generic[ConnectionT]):
    connection: type[ConnectionT]
    build: Callable[[ConnectionT, list[Device], Clock, AgentSection], Driver]
    # what `edge-agent plan` prints for the connection: a table, or a line
    plan: Callable[[ConnectionT, list[Device], Catalogue], FittedTable | str]
    # serve simulated devices on the connection's endpoint (`simulate`, the demo, the tests);
    # None: the transport has no simulator, and simulating a workshop that uses it is refused
    simulate: Simulate[ConnectionT] | None = None
    # how long values may take after the first read (subscriptions): `run --once` waits for them
    first_values_s: Callable[[ConnectionT, list[Device]], float] = lambda *_: 0.0  # polled: with the read

    @property
    def protocol(self) -> ProfileProtocol:
        """The profiles its devices take: `tags` (modbus) or `nodes` (opcua)."""
        return self.connection.protocol


def _modbus_driver(
    connection: ModbusConnection, devices: list[Device], clock: Clock, _: AgentSection
) -> Driver:
    from agent.drivers.modbus import ModbusDriver

    return ModbusDriver(connection, devices, clock)


def _modbus_plan(connection: ModbusConnection, devices: list[Device], words: Catalogue) -> FittedTable:
    from agent.drivers.modbus_plan import plan_table

    return plan_table(connection, devices, words)


async def _modbus_simulator(
    connection: ModbusConnection, units: list[SimulatedUnit], context: SimulationContext
) -> SimulatedEndpoint:
    from agent.sim.modbus_server import serve_modbus

    return await serve_modbus(connection, units, context)


def _opcua_driver(
    connection: OpcUaConnection, devices: list[Device], clock: Clock, agent: AgentSection
) -> Driver:
    from agent.drivers.opcua import OpcUaDriver
    from agent.drivers.opcua_pki import agent_pki

    return OpcUaDriver(connection, devices, clock, agent_pki(connection, agent))


def _opcua_plan(connection: OpcUaConnection, devices: list[Device], words: Catalogue) -> str:
    from agent.drivers.opcua_plan import plan_summary

    return plan_summary(connection, devices, words)


async def _opcua_simulator(
    connection: OpcUaConnection, units: list[SimulatedUnit], context: SimulationContext
) -> SimulatedEndpoint:
    from agent.sim.opcua_server import serve_opcua

    return await serve_opcua(connection, units, context)


def _opcua_first_values_s(connection: OpcUaConnection, devices: list[Device]) -> float:
    publishing = max((d.profile.spec.opcua.publishing_interval_s for d in devices), default=0.0)
    return connection.timeout_s + PUBLISHES_TO_WAIT * publishing


def _modbus(model: type[ModbusConnection]) -> DriverEntry[Any]:
    return DriverEntry(model, _modbus_driver, _modbus_plan, _modbus_simulator)


DRIVERS: dict[str, DriverEntry[Any]] = {
    "modbus-tcp": _modbus(ModbusTcpConnection),
    "modbus-rtu-over-tcp": _modbus(ModbusRtuOverTcpConnection),
    "modbus-rtu": _modbus(ModbusRtuConnection),
    "opcua": DriverEntry(
        OpcUaConnection, _opcua_driver, _opcua_plan, _opcua_simulator, _opcua_first_values_s
    ),
}


def driver_entry(connection: ConnectionBase) -> DriverEntry[Any]:
    """The entry of the connection's transport; UnknownTransportError if none serves it."""
    transport = getattr(connection, "transport", None)
    entry = DRIVERS.get(str(transport))
    if entry is None or not isinstance(connection, entry.connection):
        known = ", ".join(DRIVERS)
        raise UnknownTransportError(
            f"connection '{connection.id}': no driver for transport '{transport}' "
            f"({type(connection).__name__}); drivers: {known}"
        )
    return entry


def build_driver(
    connection: ConnectionBase, devices: list[Device], clock: Clock, agent: AgentSection
) -> Driver:
    return driver_entry(connection).build(connection, devices, clock, agent)


__all__ = ["DRIVERS", "DriverEntry", "UnknownTransportError", "build_driver", "driver_entry"]
