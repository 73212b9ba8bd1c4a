"""Serve a workshop's simulated devices, each connection by its transport's simulator hook
(agent/drivers/registry.py): Modbus with pymodbus's own server (agent/sim/modbus_server.py), OPC UA
with asyncua's (agent/sim/opcua_server.py). Machines follow the random model of
agent/sim/machines.py, or a script (agent/sim/timeline.py); meters measure them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Self

from agent.config.compiled import AgentConfig, Device
from agent.config.workshop import WORKSHOP_SCOPE, AgentSection
from agent.drivers.registry import driver_entry
from agent.exceptions import AgentError
from agent.sim.machines import MachineModel, MeterModel
from agent.sim.registers import TagValues
from agent.sim.timeline import ScriptedMachine, Timeline

WORKSHOP_BASE_LOAD_KW = 14.0  # lighting, compressed air, chillers: what the main meter sees beyond machines


class NoSimulatorError(AgentError):
    """A connection whose transport has no simulator hook (agent/drivers/registry.py)."""


def stable_seed(seed: int, name: str) -> int:
    return zlib.crc32(f"{seed}:{name}".encode())


@dataclass(frozen=True)
class SimulatedUnit:
    """One simulated device: its configuration, and its values at any moment."""

    device: Device
    values_at: Callable[[float], TagValues]


@dataclass(frozen=True)
class OpcUaSimulation:
    """How simulated OPC UA servers present themselves: certificates, users, trust."""

    pki_dir: Path | None = None  # default <agent.state_dir>/sim-pki
    passwords: Mapping[str, str] = field(default_factory=dict)  # none: anonymous sessions allowed
    user_certificates: tuple[Path, ...] = ()
    trust_into_agent: bool = False  # put the simulator's certificate into the agent's trusted/


@dataclass(frozen=True)
class SimulationContext:
    """What a transport's simulator hook may need besides its connection and units."""

    clock: Callable[[], float]
    agent: AgentSection
    # for RTU connections, the serial port the simulator serves on (the other end of the cable,
    # or of a pty pair, from the agent's `serial_port`)
    serial_ports: Mapping[str, str] = field(default_factory=dict)
    opcua: OpcUaSimulation = OpcUaSimulation()


class SimulatedEndpoint(Protocol):
    """A running simulator of one connection."""

    async def stop(self) -> None: ...


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
        self.context = SimulationContext(
            clock, config.workshop.agent, dict(serial_ports or {}), opcua or OpcUaSimulation()
        )
        self._served: dict[str, SimulatedEndpoint] = {}

    def unmodelled_tags(self) -> dict[str, tuple[list[str], list[str]]]:
        """device id -> (its Modbus tags the simulator has no model for, the names it models).
        Those registers are served as 0 (false), so a profile written for a real machine, with
        its own names, simulates a machine that never runs or counts unless someone is told. A
        register whose bits are tags of their own is served as those bits; OPC UA nodes without a
        value are not served at all, and the OPC UA simulator says so itself."""
        found: dict[str, tuple[list[str], list[str]]] = {}
        now = self.clock()
        for units in self.units.values():
            for unit in units:
                modelled = sorted(unit.values_at(now))
                tags = unit.device.profile.spec.tags
                bits = {(t.table, t.address) for t in tags.values() if t.bit is not None}
                missing = [
                    name
                    for name, tag in tags.items()
                    if name not in modelled and (tag.bit is not None or (tag.table, tag.address) not in bits)
                ]
                if missing:
                    found[unit.device.id] = (missing, modelled)
        return found

    async def __aenter__(self) -> Self:
        for connection in self.config.workshop.connections:
            await self.start(connection.id)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for connection_id in list(self._served):
            await self.stop(connection_id)

    async def start(self, connection_id: str) -> None:
        connection = next(c for c in self.config.workshop.connections if c.id == connection_id)
        entry = driver_entry(connection)
        if entry.simulate is None:
            raise NoSimulatorError(
                f"connection '{connection_id}': transport '{connection.transport}' has no simulator"
            )
        self._served[connection_id] = await entry.simulate(
            connection, self.units[connection_id], self.context
        )

    async def stop(self, connection_id: str) -> None:
        """Take one endpoint off the network, as a powered-down machine or a pulled cable would."""
        served = self._served.pop(connection_id, None)
        if served is not None:
            await served.stop()
