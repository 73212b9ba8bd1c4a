"""Serve a workshop's simulated devices: Modbus with pymodbus's own server, OPC UA with asyncua's.

One server per configured connection (host:port), one unit id per device, as a real serial
gateway or a multi-unit PLC would present them. Requests for a unit id nobody answers to get
exception 0x0B (gateway target failed to respond), as gateways do.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Self

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusBaseServer, ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simutils import SimUtils

from agent.config.compiled import AgentConfig, Device
from agent.config.connections import ModbusRtuConnection, ModbusRtuOverTcpConnection, OpcUaConnection
from agent.config.profile import MODBUS_ADDRESS_SPACE, Table
from agent.config.workshop import WORKSHOP_SCOPE
from agent.drivers.registry import opcua_pki
from agent.sim.machines import MachineModel, MeterModel
from agent.sim.opcua_server import MachineryServer
from agent.sim.registers import TagValues, render_table, table_sizes
from agent.sim.timeline import ScriptedMachine, Timeline

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
WORKSHOP_BASE_LOAD_KW = 14.0  # lighting, compressed air, chillers: what the main meter sees beyond machines


def stable_seed(seed: int, name: str) -> int:
    return zlib.crc32(f"{seed}:{name}".encode())


@dataclass
class SimulatedUnit:
    device: Device
    values_at: Callable[[float], TagValues]
    sizes: dict[Table, int] = field(init=False)

    def __post_init__(self) -> None:
        self.sizes = table_sizes(self.device.profile)

    def sim_device(self, clock: Callable[[], float]) -> SimDevice:
        def block(table: Table) -> list[SimData]:
            size = self.sizes[table]
            if table.is_bit_table:
                return [SimData(0, count=size, values=False, datatype=DataType.BITS)]
            return [SimData(0, count=size, values=0, datatype=DataType.REGISTERS)]

        return SimDevice(
            self.device.unit,
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
        image = render_table(self.device.profile, table, self.values_at(clock()), self.sizes[table])
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
    return [*(unit.sim_device(clock) for unit in units), _catch_all()]


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
    devices = [unit.sim_device(clock) for unit in units]
    served = frozenset(unit.device.unit for unit in units)

    def silence_for_absent_units(sending: bool, frame: bytes) -> bytes:
        # pymodbus answers an unknown unit with exception 04; on RS-485 an absent slave is silent.
        # An RTU frame starts with the unit id: a reply for a unit nobody simulates is not sent.
        if sending and frame and frame[0] not in served:
            return b""
        return frame

    server = ModbusSerialServer(
        [*devices, _catch_all()],
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


@dataclass(frozen=True)
class OpcUaSimulation:
    """How simulated OPC UA servers present themselves: certificates, users, trust."""

    pki_dir: Path | None = None  # default <agent.state_dir>/sim-pki
    passwords: Mapping[str, str] = field(default_factory=dict)  # none: anonymous sessions allowed
    user_certificates: tuple[Path, ...] = ()
    trust_into_agent: bool = False  # put the simulator's certificate into the agent's trusted/


class WorkshopSimulator:
    """Every machine and meter of a workshop, served on the endpoints its config names."""

    def __init__(
        self,
        config: AgentConfig,
        clock: Callable[[], float],
        seed: int = 1,
        serial_ports: Mapping[str, str] | None = None,
        opcua: OpcUaSimulation | None = None,
        timeline: Timeline | None = None,
    ) -> None:
        """serial_ports: for RTU connections, the serial port the simulator serves on (the other end
        of the cable, or of a pty pair, from the agent's `serial_port`). timeline: machines that
        follow a script instead of the random model."""
        self.config = config
        self.clock = clock
        start = clock()
        scripts = timeline.machines if timeline else {}
        origin = timeline.start if timeline and timeline.start is not None else start
        self.machines: dict[str, MachineModel] = {}
        for m in config.workshop.machines:
            script = scripts.get(m.id)
            self.machines[m.id] = (
                ScriptedMachine(m.kind, stable_seed(seed, m.id), m.ideal_cycle_s, origin, script)
                if script is not None
                else MachineModel(
                    m.kind,
                    stable_seed(seed, m.id),
                    m.ideal_cycle_s,
                    start,
                    counter_start=stable_seed(seed, m.id + "/counter") % 500_000,
                )
            )
        self.meters: dict[str, MeterModel] = {}
        for meter in config.workshop.meters:
            if meter.measures == WORKSHOP_SCOPE:
                self.meters[meter.id] = MeterModel(
                    list(self.machines.values()),
                    stable_seed(seed, meter.id),
                    base_load_kw=WORKSHOP_BASE_LOAD_KW,
                )
            else:
                self.meters[meter.id] = MeterModel(
                    [self.machines[meter.measures]], stable_seed(seed, meter.id)
                )
        self.units: dict[str, list[SimulatedUnit]] = {c.id: [] for c in config.workshop.connections}
        for device in config.devices():
            model = self.machines.get(device.id) or self.meters[device.id]
            self.units[device.connection].append(SimulatedUnit(device, model.values_at))
        self._servers: dict[str, ModbusBaseServer] = {}
        self._opcua_servers: dict[str, MachineryServer] = {}
        self.serial_ports = dict(serial_ports or {})
        self.opcua = opcua or OpcUaSimulation()

    async def __aenter__(self) -> Self:
        for connection in self.config.workshop.connections:
            await self.start(connection.id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for connection_id in [*self._servers, *self._opcua_servers]:
            await self.stop(connection_id)

    async def start(self, connection_id: str) -> None:
        connection = next(c for c in self.config.workshop.connections if c.id == connection_id)
        units = self.units[connection_id]
        if isinstance(connection, OpcUaConnection):
            await self._start_opcua(connection, units)
            return
        if isinstance(connection, ModbusRtuConnection):
            port = self.serial_ports.get(connection_id, connection.serial_port)
            server = await serve_units_on_serial(connection, port, units, self.clock)
        else:
            framer = (
                FramerType.RTU if isinstance(connection, ModbusRtuOverTcpConnection) else FramerType.SOCKET
            )
            server = await serve_units(connection.host, connection.port, units, self.clock, framer)
        self._servers[connection_id] = server
        log.info(
            "simulator connection=%s endpoint=%s units=%s",
            connection_id,
            connection.endpoint,
            ",".join(str(u.device.unit) for u in units),
        )

    async def _start_opcua(self, connection: OpcUaConnection, units: list[SimulatedUnit]) -> None:
        server = MachineryServer(
            connection,
            [(unit.device, unit.values_at) for unit in units],
            self.clock,
            self.opcua.pki_dir or Path(self.config.workshop.agent.state_dir) / "sim-pki",
            passwords=self.opcua.passwords,
            user_certificates=self.opcua.user_certificates,
        )
        await server.start()
        self._opcua_servers[connection.id] = server
        if self.opcua.trust_into_agent:
            # simulation only: the agent on this machine trusts the simulator without a manual step
            trusted = opcua_pki(connection, self.config.workshop.agent).trusted
            trusted.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(server.certificate, trusted / f"simulator-{connection.id}.der")
        log.info(
            "simulator connection=%s endpoint=%s opcua devices=%d", connection.id, connection.url, len(units)
        )

    async def stop(self, connection_id: str) -> None:
        """Take one endpoint off the network, as a powered-down machine or a pulled cable would."""
        opcua = self._opcua_servers.pop(connection_id, None)
        if opcua is not None:
            await opcua.stop()
        server = self._servers.pop(connection_id, None)
        if server is not None:
            async with asyncio.timeout(5):
                await server.shutdown()  # type: ignore[no-untyped-call]
