"""Simulated Modbus devices, served by pymodbus's own server: over TCP (plain or RTU frames, as a
serial-to-Ethernet gateway passes them) or on a serial port (an RS-485 bus).

One server per configured connection, one unit id per device, as a real serial gateway or a
multi-unit PLC would present them. Over TCP, requests for a unit id nobody answers to get
exception 0x0B (gateway target failed to respond), as gateways do; on a serial bus they get
silence, as from a powered-down slave.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import partial

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from agent.config.connections import ModbusConnection, ModbusRtuConnection, ModbusRtuOverTcpConnection
from agent.config.profile import MODBUS_ADDRESS_SPACE, Table
from agent.sim.registers import render_table, table_sizes
from agent.sim.server import SimulatedUnit, SimulationContext

log = logging.getLogger(__name__)

FUNCTION_TABLE = {
    1: Table.COIL,
    5: Table.COIL,
    15: Table.COIL,
    2: Table.DISCRETE_INPUT,
    3: Table.HOLDING,
    6: Table.HOLDING,
    16: Table.HOLDING,
    4: Table.INPUT,
}
STOP_TIMEOUT_S = 5.0


class ModbusUnit:
    """One simulated device as pymodbus serves it: its four tables, written from the machine's
    current values just before each answer."""

    def __init__(self, unit: SimulatedUnit) -> None:
        self.unit = unit
        self.sizes = table_sizes(unit.device.profile)

    def sim_device(self, clock: Callable[[], float]) -> SimDevice:
        def block(table: Table) -> list[SimData]:
            size = self.sizes[table]
            if table.is_bit_table:
                return [SimData(0, count=size, values=False, datatype=DataType.BITS)]
            return [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(
            self.unit.device.unit,
            simdata=(
                block(Table.COIL),
                block(Table.DISCRETE_INPUT),
                block(Table.HOLDING),
                block(Table.INPUT),
            ),
            action=partial(self._refresh, clock),
        )

    async def _refresh(
        self,
        clock: Callable[[], float],
        function_code: int,
        start: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: object,
    ) -> ExcCodes | None:
        """pymodbus calls this before answering: write the machine's current values into the block."""
        del start, address, count, set_values
        table = FUNCTION_TABLE.get(function_code)
        if table is None:
            return ExcCodes.ILLEGAL_FUNCTION
        profile = self.unit.device.profile
        image = render_table(profile, table, self.unit.values_at(clock()), self.sizes[table])
        if table.is_bit_table:
            image = SimUtils.bitsToRegisters([bool(bit) for bit in image])
        registers[: len(image)] = image
        return None


async def _no_such_unit(*_: object) -> ExcCodes:
    return ExcCodes.GATEWAY_NO_RESPONSE


def _catch_all() -> SimDevice:
    """Unit id 0 answers for every unit nobody simulates, at any address: pymodbus checks the
    address before the action runs, so the block spans the whole address space."""
    block = SimData(0, count=MODBUS_ADDRESS_SPACE - 1, values=0, datatype=DataType.REGISTERS)
    return SimDevice(0, simdata=[block], action=_no_such_unit)


def _devices(units: list[SimulatedUnit], clock: Callable[[], float]) -> list[SimDevice]:
    return [*(ModbusUnit(unit).sim_device(clock) for unit in units), _catch_all()]


async def serve_units(
    host: str,
    port: int,
    units: list[SimulatedUnit],
    clock: Callable[[], float],
    framer: FramerType = FramerType.SOCKET,
) -> ModbusBaseServer:
    """Start a pymodbus TCP server answering for these units (and 0x0B for any other unit id)."""
    server = ModbusTcpServer(_devices(units, clock), address=(host, port), framer=framer)
    await server.serve_forever(background=True)
    return server


async def serve_units_on_serial(
    connection: ModbusRtuConnection, serial_port: str, units: list[SimulatedUnit], clock: Callable[[], float]
) -> ModbusBaseServer:
    """An RS-485 bus: the units answer RTU frames on a serial port. Units nobody simulates stay
    silent, as a powered-down slave does (a serial bus has no gateway to answer 0x0B)."""
    served = frozenset(unit.device.unit for unit in units)

    def silence_for_absent_units(sending: bool, frame: bytes) -> bytes:
        # pymodbus answers an unknown unit with exception 04; on RS-485 an absent slave is silent.
        # An RTU frame starts with the unit id: a reply for a unit nobody simulates is not sent.
        if sending and frame and frame[0] not in served:
            return b""
        return frame

    server = ModbusSerialServer(
        _devices(units, clock),
        framer=FramerType.RTU,
        port=serial_port,
        baudrate=connection.baudrate,
        parity=connection.parity,
        stopbits=connection.stopbits,
        bytesize=connection.bytesize,
        trace_packet=silence_for_absent_units,
    )
    await server.serve_forever(background=True)
    return server


class ServedModbus:
    """A running pymodbus server, stopped within STOP_TIMEOUT_S."""

    def __init__(self, server: ModbusBaseServer) -> None:
        self.server = server

    async def stop(self) -> None:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await self.server.shutdown()  # type: ignore[no-untyped-call]


async def serve_modbus(
    connection: ModbusConnection, units: list[SimulatedUnit], context: SimulationContext
) -> ServedModbus:
    """The simulator hook of the Modbus transports (agent/drivers/registry.py)."""
    if isinstance(connection, ModbusRtuConnection):
        port = context.serial_ports.get(connection.id, connection.serial_port)
        server = await serve_units_on_serial(connection, port, units, context.clock)
    else:
        framer = FramerType.RTU if isinstance(connection, ModbusRtuOverTcpConnection) else FramerType.SOCKET
        server = await serve_units(connection.host, connection.port, units, context.clock, framer)
    log.info(
        "simulator connection=%s endpoint=%s units=%s",
        connection.id,
        connection.endpoint,
        ",".join(str(u.device.unit) for u in units),
    )
    return ServedModbus(server)
