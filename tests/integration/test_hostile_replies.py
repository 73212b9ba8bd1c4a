"""Every hostile reply becomes bad samples and a device status; the poll loop survives, recovers
within two cycles, and a late reply is never taken for the next request's answer. On a connection
with several units (a serial gateway, a PLC with sub-units), a reply that costs the connection
leaves the units not yet asked bad with the reason, and the next cycles read them all again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config.compiled import Device
from agent.config.connections import ModbusRtuOverTcpConnection, ModbusTcpConnection
from agent.config.loader import load_profile
from agent.drivers.base import ReadResult
from agent.drivers.modbus import ModbusDriver
from agent.samples import Quality
from tests.conftest import free_port
from tests.integration.hostile_modbus import HostileServer, bit_of, value_of

pytestmark = pytest.mark.integration
TIMEOUT_S = 0.3


def profile_device(tmp_path: Path, name: str, tags: str, unit: int = 1) -> Device:
    """A device whose profile holds `tags` (YAML lines under `tags:`)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"name: {name}\nkind: other\ntags:\n{tags}", encoding="utf-8")
    profile, issues = load_profile(path)
    assert profile is not None, issues
    return Device(name, unit, profile, "plc", None, None)


def device(tmp_path: Path, name: str, unit: int, base: int) -> Device:
    return profile_device(
        tmp_path,
        name,
        f"  a: {{table: holding, address: {base}, type: uint16}}\n"
        f"  b: {{table: holding, address: {base + 1}, type: uint16}}\n",
        unit,
    )


def to(server: HostileServer, **settings: Any) -> ModbusTcpConnection | ModbusRtuOverTcpConnection:
    """A connection to the hostile server in its framing: short timeout, quick reconnects."""
    defaults: dict[str, Any] = {"timeout_s": TIMEOUT_S, "reconnect_max_s": 0.2}
    if server.framing == "rtu":
        return ModbusRtuOverTcpConnection(
            id="plc",
            transport="modbus-rtu-over-tcp",
            host="127.0.0.1",
            port=server.port,
            **(defaults | settings),
        )
    return ModbusTcpConnection(
        id="plc", transport="modbus-tcp", host="127.0.0.1", port=server.port, **(defaults | settings)
    )


def assert_honest(result: ReadResult, devices: list[Device]) -> None:
    """Every good value is the one its own register holds: nothing from another request."""
    for sample in result.samples:
        if sample.quality is Quality.GOOD:
            spec = next(d for d in devices if d.id == sample.device).profile.spec.tags[sample.tag]
            assert sample.value == value_of(spec.address), (sample.device, sample.tag, sample.value)


MODES = [
    "exception-1",
    "exception-2",
    "exception-3",
    "exception-4",
    "exception-6",
    "exception-11",
    "wrong-byte-count",
    "short",
    "wrong-function",
    "wrong-unit",
    "garbage",
    "close",
    "reset",
    "odd-byte-count",
    "huge-byte-count",
    "short-mbap",
]


@pytest.mark.parametrize("mode", MODES)
async def test_hostile_reply_is_bad_quality_then_recovers(tmp_path: Path, mode: str) -> None:
    server = HostileServer()
    await server.start()
    devices = [device(tmp_path, "dev-a", 1, 100)]
    connection = to(server)
    try:
        async with ModbusDriver(connection, devices, time.time) as driver:
            assert {s.quality for s in (await driver.read()).samples} == {Quality.GOOD}
            server.mode = mode
            hostile = await driver.read()
            assert {s.quality for s in hostile.samples} == {Quality.BAD}
            assert hostile.statuses[0].error, "a hostile reply must leave a reason in the device status"
            assert_honest(hostile, devices)
            server.mode = "honest"
            recovered = False
            for _ in range(2):  # recovery within two cycles (a reconnect may need the first)
                result = await driver.read()
                assert_honest(result, devices)
                if {s.quality for s in result.samples} == {Quality.GOOD}:
                    recovered = True
                    break
                await asyncio.sleep(0.25)  # the reconnect backoff after a reset is capped at 0.2 s here
            assert recovered, f"no recovery within two cycles after {mode}"
    finally:
        await server.stop()


# Replies that cost the connection (or may, depending on how pymodbus takes them), and replies
# that only spoil one answer, on both framings a gateway speaks.
MULTI_UNIT_CASES = [
    *(
        ("socket", mode)
        for mode in (
            "close",
            "reset",
            "odd-byte-count",
            "huge-byte-count",
            "short-mbap",
            "wrong-byte-count",
            "short",
            "garbage",
            "wrong-unit",
            "exception-4",
        )
    ),
    *(
        ("rtu", mode)
        for mode in (
            "close",
            "reset",
            "odd-byte-count",
            "huge-byte-count",
            "bad-crc",
            "wrong-byte-count",
            "short",
            "garbage",
            "wrong-unit",
            "exception-4",
        )
    ),
]
UNITS = (1, 2, 3, 4)
HOSTILE_UNIT = 2  # mid-cycle: unit 1 was read before it, units 3 and 4 come after


@pytest.mark.parametrize(("framing", "mode"), MULTI_UNIT_CASES)
async def test_a_hostile_unit_mid_cycle_never_ends_the_cycle(tmp_path: Path, framing: str, mode: str) -> None:
    server = HostileServer(
        framing="rtu" if framing == "rtu" else "socket", hostile_units=frozenset({HOSTILE_UNIT})
    )
    await server.start()
    devices = [device(tmp_path, f"dev-{unit}", unit, 100 * unit) for unit in UNITS]
    try:
        async with ModbusDriver(to(server), devices, time.time) as driver:
            assert {s.quality for s in (await driver.read()).samples} == {Quality.GOOD}
            server.mode = mode
            hostile = await driver.read()  # returns, whatever the reply did to the connection
            assert_honest(hostile, devices)
            statuses = {s.device: s for s in hostile.statuses}
            assert set(statuses) == {d.id for d in devices}, "every unit gets a status every cycle"
            assert statuses[f"dev-{HOSTILE_UNIT}"].error, f"{mode}: the hostile unit's status must say why"
            assert {s.quality for s in hostile.samples if s.device == "dev-1"} == {Quality.GOOD}
            assert {s.quality for s in hostile.samples if s.device == f"dev-{HOSTILE_UNIT}"} == {Quality.BAD}
            for later in ("dev-3", "dev-4"):  # asked on the same connection, or failed with the reason
                qualities = {s.quality for s in hostile.samples if s.device == later}
                assert qualities in ({Quality.GOOD}, {Quality.BAD}), (later, qualities)
                if qualities == {Quality.BAD}:
                    assert statuses[later].error, f"{later} is bad without a reason after {mode}"
            server.mode = "honest"
            recovered = False
            for _ in range(3):  # the cycle after the fault may still be in the reconnect backoff
                await asyncio.sleep(0.25)  # the backoff is capped at 0.2 s here
                result = await driver.read()
                assert_honest(result, devices)
                if {s.quality for s in result.samples} == {Quality.GOOD}:
                    recovered = True
                    break
            assert recovered, f"no recovery within three cycles after {mode} over {framing}"
    finally:
        await server.stop()


async def test_a_late_reply_is_never_taken_for_the_next_answer(tmp_path: Path) -> None:
    server = HostileServer()
    await server.start()
    devices = [device(tmp_path, "dev-a", 1, 100), device(tmp_path, "dev-b", 2, 200)]
    connection = to(server)
    try:
        async with ModbusDriver(connection, devices, time.time) as driver:
            for cycle in range(6):
                if cycle in (1, 3):
                    server.late_by_s = TIMEOUT_S + 0.1  # dev-a's first reply arrives while dev-b is asked
                result = await driver.read()
                assert_honest(result, devices)
            final = await driver.read()
            assert {s.quality for s in final.samples} == {Quality.GOOD}
            assert_honest(final, devices)
    finally:
        await server.stop()


async def test_a_refused_gap_is_learned_and_planned_around(tmp_path: Path) -> None:
    """Tags at 100 and 101 and at 104: the planner fills 102-103, which this device refuses."""
    gappy = profile_device(
        tmp_path,
        "gappy",
        "  a: {table: holding, address: 100, type: uint32}\n"
        "  b: {table: holding, address: 104, type: uint16}\n",
    )
    server = HostileServer(refused=frozenset({102, 103}))
    await server.start()
    connection = ModbusTcpConnection(
        id="plc", transport="modbus-tcp", host="127.0.0.1", port=server.port, timeout_s=TIMEOUT_S
    )
    try:
        async with ModbusDriver(connection, [gappy], time.time) as driver:
            first = await driver.read()
            assert {s.quality for s in first.samples} == {Quality.BAD}
            assert "exception code 2" in (first.statuses[0].error or "")
            second = await driver.read()
            third = await driver.read()
    finally:
        await server.stop()
    for result in (second, third):
        assert {s.quality for s in result.samples} == {Quality.GOOD}
        assert result.requests == 2
    assert server.seen[0] == (100, 5)  # the first plan filled the gap
    assert all(not ({102, 103} & set(range(a, a + n))) for a, n in server.seen[1:])  # never again


def open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


async def test_forty_resets_leak_no_file_descriptors(tmp_path: Path) -> None:
    """pymodbus does not fail a pending request when the peer resets: each reset costs one timeout."""
    server = HostileServer(mode="reset")
    await server.start()
    connection = ModbusTcpConnection(
        id="plc",
        transport="modbus-tcp",
        host="127.0.0.1",
        port=server.port,
        timeout_s=0.1,
        reconnect_max_s=0.001,
    )
    try:
        async with ModbusDriver(connection, [device(tmp_path, "dev-a", 1, 100)], time.time) as driver:
            await driver.read()
            before = open_descriptors()
            for _ in range(40):
                result = await driver.read()
                assert {s.quality for s in result.samples} == {Quality.BAD}
                await asyncio.sleep(0.002)  # past the (tiny) reconnect backoff
            await asyncio.sleep(0.1)
            after = open_descriptors()
    finally:
        await server.stop()
    assert server.connections >= 20  # it really reconnected, again and again
    assert after - before <= 2


async def test_slow_tags_are_read_at_their_own_interval(tmp_path: Path) -> None:
    mixed = profile_device(
        tmp_path,
        "mixed",
        "  state: {table: holding, address: 100, type: uint16}\n"
        "  kwh: {table: holding, address: 101, type: uint16, interval_s: 0.5}\n",
    )
    server = HostileServer()
    await server.start()
    connection = ModbusTcpConnection(id="plc", transport="modbus-tcp", host="127.0.0.1", port=server.port)
    try:
        async with ModbusDriver(connection, [mixed], time.time) as driver:
            first = [await driver.read() for _ in range(5)]
            await asyncio.sleep(0.6)
            later = await driver.read()
    finally:
        await server.stop()
    kwh_reads = [sum(1 for s in r.samples if s.tag == "kwh") for r in first]
    assert kwh_reads == [1, 0, 0, 0, 0]  # the slow counter is read once in five fast cycles
    assert all(any(s.tag == "state" for s in r.samples) for r in first)
    assert {s.tag for s in later.samples} == {"state", "kwh"}
    assert server.seen.count((101, 1)) == 2


async def test_close_after_cycle_reconnects_every_cycle_without_backoff(tmp_path: Path) -> None:
    server = HostileServer()
    await server.start()
    connection = ModbusTcpConnection(
        id="plc",
        transport="modbus-tcp",
        host="127.0.0.1",
        port=server.port,
        close_after_cycle=True,
        connect_pause_s=0.01,
    )
    try:
        async with ModbusDriver(connection, [device(tmp_path, "dev-a", 1, 100)], time.time) as driver:
            results = [await driver.read() for _ in range(3)]
    finally:
        await server.stop()
    assert all({s.quality for s in r.samples} == {Quality.GOOD} for r in results)
    assert server.connections == 3  # one connection per cycle, as the device wants


async def test_a_dead_endpoint_costs_almost_no_cpu(tmp_path: Path) -> None:
    """While a device is down for hours, backoff keeps the agent idle: no busy reconnect loop."""
    connection = ModbusTcpConnection(
        id="plc",
        transport="modbus-tcp",
        host="127.0.0.1",
        port=free_port(),
        timeout_s=0.2,
        reconnect_max_s=0.5,
    )
    async with ModbusDriver(connection, [device(tmp_path, "dev-a", 1, 100)], time.time) as driver:
        started_cpu, started = time.process_time(), time.monotonic()
        while time.monotonic() - started < 2.0:
            await driver.read()  # a 50 Hz poll loop, far faster than any real configuration
            await asyncio.sleep(0.02)
        cpu = time.process_time() - started_cpu
    assert cpu < 0.25, f"{cpu:.2f} s of CPU in 2 s against a dead endpoint"


def bit_device(tmp_path: Path, table: str, count: int) -> Device:
    tags = "".join(f"  b{i}: {{table: {table}, address: {10 + i}, type: bool}}\n" for i in range(count))
    return profile_device(tmp_path, "bits", tags)


@pytest.mark.parametrize("mode", ["bits-extra-byte", "bits-as-registers", "bits-short"])
@pytest.mark.parametrize(("table", "count"), [("coil", 10), ("discrete_input", 10), ("coil", 8)])
async def test_a_bit_reply_whose_byte_count_does_not_fit_the_bits_asked_is_rejected(
    tmp_path: Path, mode: str, table: str, count: int
) -> None:
    """A coil or discrete-input reply carries ceil(bits / 8) bytes; any other count (consistent
    with its frame, so the framing cannot tell) answers some other question: bad, with the reason
    in the device's status, never values."""
    server = HostileServer()
    await server.start()
    bits = bit_device(tmp_path, table, count)
    try:
        async with ModbusDriver(to(server), [bits], time.time) as driver:
            honest = await driver.read()
            assert {s.quality for s in honest.samples} == {Quality.GOOD}
            assert {s.tag: s.value for s in honest.samples} == {f"b{i}": bit_of(10 + i) for i in range(count)}
            server.mode = mode
            hostile = await driver.read()
            assert {s.quality for s in hostile.samples} == {Quality.BAD}, mode
            status = hostile.statuses[0]
            assert status.device == "bits"
            assert status.error is not None
            assert "data bytes to a request for" in status.error, status.error
    finally:
        await server.stop()
