"""The OPC UA session against a frozen server process and against many lost connections."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from pathlib import Path

import pytest

from tests.integration.opcua_workshop import all_good, driver_for, opcua_workshop, read_until
from tests.integration.tcp_proxy import CuttableProxy
from tests.integration.workshop_run import simulator_for

pytestmark = pytest.mark.integration


async def test_a_frozen_server_is_noticed_within_two_keepalives_and_recovered_after_sigcont(
    tmp_path: Path,
) -> None:
    config = opcua_workshop(tmp_path, keepalive_s=1.0, interval_s=0.5)
    with simulator_for(config.source, tmp_path / "simulator.log") as server:
        async with driver_for(config) as driver:
            await read_until(driver, all_good, 20)
            os.kill(server.pid, signal.SIGSTOP)  # TCP stays open, nothing answers
            try:
                result, noticed_s = await read_until(driver, lambda r: not r.statuses[0].connected, 15)
                assert noticed_s <= 2 * 1.0 + 0.5, noticed_s  # two keep-alives, plus a cycle to start
                assert {s.quality.value for s in result.samples} == {"bad"}
            finally:
                os.kill(server.pid, signal.SIGCONT)
            await read_until(driver, all_good, 30)


def open_fds() -> int:
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def rss_kb() -> int:
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def reconnect_cycles(tmp_path: Path, cycles: int) -> None:
    """Cut the connection `cycles` times; after each the driver notices, reconnects and reads.
    Tasks, sockets and memory must not grow with the number of cycles."""
    upstream = opcua_workshop(tmp_path)
    with simulator_for(upstream.source, tmp_path / "simulator.log"):
        upstream_port = int(upstream.workshop.connections[0].url.rsplit(":", 1)[1])  # type: ignore[union-attr]
        async with CuttableProxy(upstream_port) as proxy:
            config = opcua_workshop(tmp_path, port=proxy.port)  # the agent goes through the proxy
            async with driver_for(config) as driver:
                baseline: tuple[int, int, int] | None = None
                for cycle in range(cycles):
                    await read_until(driver, all_good, 20)
                    if cycle == 5:  # after warm-up: caches, lazily imported modules
                        gc.collect()
                        baseline = (len(asyncio.all_tasks()), open_fds(), rss_kb())
                    proxy.cut()
                    await read_until(driver, lambda r: not r.statuses[0].connected, 10)
                await read_until(driver, all_good, 20)
                gc.collect()
                assert baseline is not None
                tasks, fds, rss = len(asyncio.all_tasks()), open_fds(), rss_kb()
                assert tasks <= baseline[0], (baseline, tasks)
                assert fds <= baseline[1], (baseline, fds)
                assert rss - baseline[2] < 20_000, (baseline, rss)  # kB; a leak per cycle would show


async def test_reconnect_cycles_leak_no_tasks_sockets_or_memory(tmp_path: Path) -> None:
    await reconnect_cycles(tmp_path, 25)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_two_hundred_reconnect_cycles_leak_nothing(tmp_path: Path) -> None:
    await reconnect_cycles(tmp_path, 200)
