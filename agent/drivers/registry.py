"""Which driver serves a connection: the one place that knows every driver."""

from __future__ import annotations

from agent.config.loader import Device
from agent.config.workshop import Connection
from agent.drivers.base import Clock, Driver
from agent.drivers.modbus import ModbusDriver


def build_driver(connection: Connection, devices: list[Device], clock: Clock) -> Driver:
    return ModbusDriver(connection, devices, clock)
