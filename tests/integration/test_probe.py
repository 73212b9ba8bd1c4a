"""`edge-agent probe` against a served device: every decoding shown, faults worded for people."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

from agent.cli import main
from agent.config.loader import Device, load_profile
from agent.config.profile import Table
from agent.probe import ProbeError, ProbeRequest, connection_from_url, probe
from agent.sim.server import SimulatedUnit, serve_units
from tests.conftest import CONFIGS, free_port

pytestmark = pytest.mark.integration


def meter() -> Device:
    profile, issues = load_profile(CONFIGS / "devices" / "sim-power-meter.yaml")
    assert profile is not None, issues
    return Device("meter", 11, profile, "gw", None, None)


async def probe_text(url: str, request: ProbeRequest) -> str:
    out = io.StringIO()
    await probe(url, request, 1.0, Console(file=out, width=400))
    return out.getvalue()


async def test_probe_shows_the_meter_decoded_every_way() -> None:
    port = free_port()
    values = {"energy_kwh": 138617.0, "energy_kwh_x100": 138617.1, "power_kw": 6.75}
    server = await serve_units("127.0.0.1", port, [SimulatedUnit(meter(), lambda _t: values)], time.time)
    try:
        text = await probe_text(f"modbus-tcp://127.0.0.1:{port}", ProbeRequest(Table.HOLDING, 0, 6, 11))
        with pytest.raises(ProbeError, match=r"exception 2 .*illegal data address"):
            await probe_text(f"modbus-tcp://127.0.0.1:{port}", ProbeRequest(Table.HOLDING, 500, 2, 11))
        with pytest.raises(ProbeError, match="unit 7: exception 11"):
            await probe_text(f"modbus-tcp://127.0.0.1:{port}", ProbeRequest(Table.HOLDING, 0, 2, 7))
    finally:
        await server.shutdown()  # type: ignore[no-untyped-call]
    assert "float32 ABCD" in text
    assert "138617" in text  # the float32 energy register, read big-endian
    assert "13861710" in text  # the same energy in 0.01 kWh, as uint32 with swapped words (CDAB)
    assert "6.75" in text  # power


def test_urls_become_the_same_connections_the_agent_uses() -> None:
    rtu = connection_from_url("modbus-rtu:///dev/ttyUSB1?baudrate=19200&parity=E", 1.0)
    assert rtu.endpoint == "/dev/ttyUSB1@19200E81"
    gateway = connection_from_url("modbus-rtu-over-tcp://10.0.0.9:8899", 1.0)
    assert gateway.endpoint == "10.0.0.9:8899 (RTU)"
    with pytest.raises(ProbeError, match="baudrate"):
        connection_from_url("modbus-rtu:///dev/ttyUSB1?baudrate=12345", 1.0)


def test_cli_exit_codes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["probe", f"modbus-tcp://127.0.0.1:{free_port()}", "--holding", "0", "--timeout", "0.5"]) == 1
    assert "probe: cannot connect to 127.0.0.1:" in capsys.readouterr().err
    assert main(["probe", "ftp://x", "--coil", "0"]) == 1
    assert "unknown scheme 'ftp'" in capsys.readouterr().err
