"""`edge-agent probe` against a served device: every decoding shown, faults worded for people."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli import main
from agent.commands.probe import ORDER_64_BIT, ProbeError, ProbeRequest, connection_from_url, probe
from agent.config.compiled import Device
from agent.config.loader import load_profile
from agent.config.profile import ByteOrder, Table
from agent.sim.modbus_server import serve_units
from agent.sim.registers import TagValues
from agent.sim.server import SimulatedUnit
from tests.conftest import CONFIGS, free_port
from tests.integration.hostile_modbus import HostileServer

pytestmark = pytest.mark.integration
WIDE_PROFILE = """\
name: wide
kind: meter
tags:
  {tags}
energy: {{kwh: abcd}}
"""
COUNTER = 0x0123_4567_89AB_CDEF  # every byte different: a wrong order cannot give the same number


def meter() -> Device:
    profile, issues = load_profile(CONFIGS / "devices" / "sim-power-meter.yaml")
    assert profile is not None, issues
    return Device("meter", 11, profile, "gw", None, None)


@asynccontextmanager
async def served(*units: SimulatedUnit) -> AsyncIterator[str]:
    port = free_port()
    server = await serve_units("127.0.0.1", port, list(units), time.time)
    try:
        yield f"modbus-tcp://127.0.0.1:{port}"
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]


async def probe_text(url: str, request: ProbeRequest) -> str:
    out = io.StringIO()
    await probe(url, request, 1.0, Console(file=out, width=400))
    return out.getvalue()


def row_cells(text: str, *first: str) -> list[str]:
    """The cells of the first table row whose leading cells are `first`."""
    for line in text.splitlines():
        inner = line.strip()
        if not inner.startswith("│"):
            continue
        cells = [c.strip() for c in inner.strip("│").split("│")]
        if cells[: len(first)] == list(first):
            return cells
    raise AssertionError(f"no row starting {first} in:\n{text}")


async def test_probe_shows_the_meter_decoded_every_way() -> None:
    values = {"energy_kwh": 138617.0, "energy_kwh_x100": 138617.1, "power_kw": 6.75}
    async with served(SimulatedUnit(meter(), lambda _t: values)) as url:
        text = await probe_text(url, ProbeRequest(Table.HOLDING, 0, 6, 11))
    assert "138617" in row_cells(text, "0", "ABCD")[4]  # the float32 energy register, big-endian
    assert row_cells(text, "", "CDAB")  # four orders per start address
    assert "13861710" in text  # the same energy in 0.01 kWh, as uint32 with swapped words (CDAB)
    assert row_cells(text, "4", "ABCD")[4] == "6.75"  # power
    # every 16-bit register also with its two bytes swapped
    _, hex_text, _, uint16, _, uint16_ba = row_cells(text, "5")
    word = int(hex_text, 16)
    assert int(uint16) == word
    assert int(uint16_ba) == ((word & 0xFF) << 8) | (word >> 8)
    assert "64-bit values" in text  # six registers hold three 64-bit candidates


@pytest.mark.parametrize("order", list(ByteOrder))
async def test_64_bit_columns_agree_with_the_agents_decoder_in_every_order(
    order: ByteOrder, tmp_path: Path
) -> None:
    """A tag written in one order by the agent's own encoder is found by probe in that order's row,
    under the documented vendor name."""
    tags = (
        f"abcd: {{table: holding, address: 0, type: uint64, order: {order.value}}}\n"
        f"  real: {{table: holding, address: 4, type: float64, order: {order.value}}}"
    )
    path = tmp_path / "wide.yaml"
    path.write_text(WIDE_PROFILE.format(tags=tags), encoding="utf-8")
    profile, issues = load_profile(path)
    assert profile is not None, issues
    values: TagValues = {"abcd": COUNTER, "real": 138617.125}
    unit = SimulatedUnit(Device("wide", 3, profile, "gw", None, None), lambda _t: values)
    async with served(unit) as url:
        text = await probe_text(url, ProbeRequest(Table.HOLDING, 0, 8, 3))
    first = row_cells(text, "0", "ABCD", "ABCDEFGH")
    rows = {order.value: first}
    for other in list(ByteOrder)[1:]:
        rows[other.value] = row_cells(text, "", other.value, ORDER_64_BIT[other])
    assert rows[order.value][4] == str(COUNTER)  # uint64 column
    assert [o for o, cells in rows.items() if cells[4] == str(COUNTER)] == [order.value]
    real = row_cells(text, "4", "ABCD", "ABCDEFGH") if order is ByteOrder.ABCD else None
    if real is not None:
        assert real[5] == "138617"  # float64 shown to 6 significant digits


async def test_exception_codes_are_explained() -> None:
    async with served(SimulatedUnit(meter(), lambda _t: {})) as url:
        with pytest.raises(ProbeError) as missing:
            await probe_text(url, ProbeRequest(Table.HOLDING, 500, 2, 11))
        with pytest.raises(ProbeError) as nobody:
            await probe_text(url, ProbeRequest(Table.HOLDING, 0, 2, 7))
    assert str(missing.value).startswith(f"{url.removeprefix('modbus-tcp://')} unit 11: exception 2 (0x02, ")
    assert "the device has no such registers" in str(missing.value)
    assert "[function 03 at 500, count 2]" in str(missing.value)
    assert "unit 7: exception 11 (0x0B, gateway target device failed to respond)" in str(nobody.value)
    assert "a wrong unit id" in str(nobody.value)


async def test_a_device_that_accepts_but_never_answers_is_a_timeout_naming_the_unit() -> None:
    port = free_port()
    connections: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", port)
    try:
        request = ProbeRequest(Table.HOLDING, 0, 2, 4)
        with pytest.raises(ProbeError, match=rf"127\.0\.0\.1:{port} unit 4: no answer within 0\.5 s"):
            await probe(f"modbus-tcp://127.0.0.1:{port}", request, 0.5, Console(file=io.StringIO()))
    finally:
        server.close()
        for writer in connections:
            writer.close()


def test_urls_become_the_same_connections_the_agent_uses() -> None:
    rtu = connection_from_url("modbus-rtu:///dev/ttyUSB1?baudrate=19200&parity=E", 1.0)
    assert rtu.endpoint == "/dev/ttyUSB1@19200E81"
    gateway = connection_from_url("modbus-rtu-over-tcp://10.0.0.9:8899", 1.0)
    assert gateway.endpoint == "10.0.0.9:8899 (RTU)"
    with pytest.raises(ProbeError, match="baudrate"):
        connection_from_url("modbus-rtu:///dev/ttyUSB1?baudrate=12345", 1.0)


def test_cli_exit_codes_and_connection_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert (
        main(["probe", f"modbus-tcp://127.0.0.1:{port}", "--unit", "3", "--holding", "0", "--timeout", "0.5"])
        == 1
    )
    assert f"probe: cannot connect to 127.0.0.1:{port} unit 3: connection refused" in capsys.readouterr().err
    assert main(["probe", "modbus-rtu:///dev/ttyNOPE9?baudrate=9600", "--unit", "2", "--input", "0"]) == 1
    err = capsys.readouterr().err
    assert "probe: cannot connect to /dev/ttyNOPE9@9600N81 unit 2: no serial port /dev/ttyNOPE9" in err
    assert main(["probe", "ftp://x", "--coil", "0"]) == 1
    assert "unknown scheme 'ftp'" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["bits-extra-byte", "bits-as-registers", "bits-short"])
async def test_a_coil_reply_of_the_wrong_byte_count_is_refused_not_shown(mode: str) -> None:
    """Commissioning reads what the device says; a reply that answers another bit count would show
    bits that are not the ones asked for."""
    server = HostileServer(mode=mode)
    await server.start()
    try:
        url = f"modbus-tcp://127.0.0.1:{server.port}"
        with pytest.raises(ProbeError, match=r"unit 3: reply with \d+ data bytes to a request for 10 bits"):
            await probe(url, ProbeRequest(Table.COIL, 10, 10, 3), 0.5, Console(file=io.StringIO()))
    finally:
        await server.stop()
