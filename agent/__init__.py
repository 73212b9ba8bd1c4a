"""Shopfloor edge agent: Modbus/OPC UA polling, ISO 22400 OEE, energy and CO2e per unit."""

__version__ = "0.1.0"
