"""Every data type and byte order, written by the simulator and read back through a real pymodbus
server by the driver; and what a shared gateway does with a unit that does not answer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent.config.compiled import Device
from agent.config.connections import ModbusTcpConnection
from agent.config.loader import load_profile
from agent.config.profile import DataType
from agent.drivers.base import ReadResult
from agent.drivers.modbus import ModbusDriver, plan_device
from agent.samples import Quality
from agent.sim.modbus_server import serve_units
from agent.sim.registers import TagValues
from agent.sim.server import SimulatedUnit
from tests.conftest import CONFIGS, free_port

pytestmark = pytest.mark.integration

PROFILE = Path(__file__).parent / "profiles" / "all-types.yaml"
EXAMPLES = {
    DataType.INT16: -12345,
    DataType.UINT16: 54321,
    DataType.INT32: -123456789,
    DataType.UINT32: 3123456789,
    DataType.INT64: -1234567890123,
    DataType.UINT64: 12345678901234567890,
    DataType.FLOAT32: 1234.5,
    DataType.FLOAT64: -9876.54321,
}


def expected_values(device: Device) -> dict[str, bool | int | float]:
    values: dict[str, bool | int | float] = {}
    for index, (name, tag) in enumerate(device.profile.spec.tags.items()):
        if tag.type is DataType.BOOL:
            values[name] = index % 2 == 0
        elif name == "scaled_temp":
            values[name] = 22.5
        elif name == "status_word":
            values[name] = 0b1000_0000_1000_0001  # bits 0, 7 and 15
        else:
            # a value unique per tag, so a value read into the wrong tag cannot pass
            offset = index if tag.type is not DataType.FLOAT32 else index * 0.5
            values[name] = EXAMPLES[tag.type] + (offset if EXAMPLES[tag.type] < 0 else -offset)
    for bit in (0, 7, 15):
        values[f"status_bit{bit}"] = True
    return values


def device(unit: int = 1) -> Device:
    profile, issues = load_profile(PROFILE)
    assert profile is not None, issues
    return Device(f"dut-{unit}", unit, profile, "plc", None, None)


async def read_once(served: Device, values: TagValues, polled: list[Device]) -> ReadResult:
    """Serve `served` with these values on a free port; one poll cycle of `polled` through the driver."""
    port = free_port()
    server = await serve_units("127.0.0.1", port, [SimulatedUnit(served, lambda _t: values)], time.time)
    try:
        async with ModbusDriver(connection(port), polled, time.time) as driver:
            return await driver.read()
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


def connection(port: int) -> ModbusTcpConnection:
    return ModbusTcpConnection(id="plc", transport="modbus-tcp", host="127.0.0.1", port=port, timeout_s=0.5)


async def test_every_type_and_byte_order_reads_back_as_written() -> None:
    dut = device()
    values = expected_values(dut)
    result = await read_once(served=dut, values=values, polled=[dut])
    read = {s.tag: s.value for s in result.samples}
    assert {s.quality for s in result.samples} == {Quality.GOOD}
    assert set(read) == set(values)
    for name, value in values.items():
        assert read[name] == pytest.approx(value, rel=1e-12), name
    # max_gap 8: all 104 holding registers in one request; coils 5->17, discrete inputs 105->117
    # and input registers 0->10 are further apart than 8, so those tables take two each.
    assert result.requests == len(plan_device(dut, connection(502)).requests) == 7


async def test_unit_nobody_answers_for_is_bad_while_its_neighbour_reads_fine() -> None:
    alive, dead = device(1), device(2)
    values = expected_values(alive)
    result = await read_once(served=alive, values=values, polled=[alive, dead])
    quality = {(s.device, s.quality) for s in result.samples}
    assert quality == {("dut-1", Quality.GOOD), ("dut-2", Quality.BAD)}
    status = {s.device: s for s in result.statuses}
    assert status["dut-1"].connected
    assert status["dut-2"].error is not None
    assert "exception code 11" in status["dut-2"].error  # 0x0B: gateway target failed to respond


async def test_unreachable_endpoint_gives_bad_samples_and_backs_off() -> None:
    dut = device()
    port = free_port()  # nothing listens here
    async with ModbusDriver(connection(port), [dut], time.time) as driver:
        first = await driver.read()
        started = time.perf_counter()
        second = await driver.read()  # inside the backoff window: no new connect attempt
        elapsed = time.perf_counter() - started
    assert {s.quality for s in first.samples + second.samples} == {Quality.BAD}
    assert len(first.samples) == len(dut.profile.spec.tags)
    assert not first.statuses[0].connected
    assert "connect failed" in (first.statuses[0].error or "")
    assert elapsed < 0.05
    assert second.requests == 0


TEXT_AND_BCD = """
name: nameplate
kind: meter
tags:
  model: {table: holding, address: 0, type: string, length: 4}
  serial: {table: holding, address: 4, type: string, length: 5, order: BADC}
  energy: {table: holding, address: 10, type: bcd32, order: CDAB, scale: 0.01}
  mode: {table: holding, address: 12, type: uint16, values: {0: stopped, 1: auto, 2: manual}}
"""


async def test_strings_bcd_and_value_maps_through_a_real_server(tmp_path: Path) -> None:
    path = tmp_path / "nameplate.yaml"
    path.write_text(TEXT_AND_BCD, encoding="utf-8")
    profile, issues = load_profile(path)
    assert profile is not None, issues
    dut = Device("meter", 1, profile, "plc", None, None)
    values: dict[str, float | int | bool | str] = {
        "model": "SDM630",
        "serial": "A12345678",
        "energy": 123456.78,
        "mode": "manual",
    }
    result = await read_once(served=dut, values=values, polled=[dut])
    assert {s.tag: s.value for s in result.samples} == values


async def test_eastron_sdm630_profile_reads_a_meter_laid_out_as_its_manual_says() -> None:
    profile, issues = load_profile(CONFIGS / "devices" / "eastron-sdm630.yaml")
    assert profile is not None, issues
    meter = Device("sdm630", 1, profile, "plc", None, None)
    readings: dict[str, float | int | bool | str] = {
        "voltage_l1_v": 231.5,
        "current_l1_a": 12.25,
        "total_power_kw": 8.5,
        "frequency_hz": 50.0,
        "import_kwh": 12345.5,
        "total_kwh": 12400.25,
    }
    result = await read_once(served=meter, values=readings, polled=[meter])
    read = {s.tag: s.value for s in result.samples}
    for tag, value in readings.items():
        assert read[tag] == pytest.approx(value), tag
    # max_gap 8: 0x00-0x11, 0x34, 0x46-0x4B and 0x156 are four groups; the profile does not widen the
    # gap over the meter's reserved registers, which a meter may refuse with exception 02
    assert result.requests == 4
