"""OPC UA: subscriptions against polling for 1,000 nodes at 1 s, in one run, for two workloads:
every value changes every second (the worst case for subscriptions), and 5% change per second
(machine states, counters and alarms: the usual case).

The server (bench/opcua_server.py) runs in its own process and stamps changed variables with
its wall-clock time once a second; the agent's OpcUaDriver runs here, so the CPU measured
(getrusage of this process) is the client's alone. Latency is a value's age when the driver has
it: on arrival of the notification (subscribe), or at the Read's answer for values that changed
since the previous Read (poll). Security is None
for both, so the figures compare the two modes, not cryptography.

Run: `make bench ARGS=opcua`.
"""

from __future__ import annotations

import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.config.connections import OpcUaConnection
from agent.config.loader import load_config
from agent.drivers.opcua import OpcUaDriver
from agent.drivers.registry import build_driver
from bench.opcua_server import BENCH_URI, FIRST_ID
from tests.conftest import free_port

NODES = 1000
SECONDS = 20.0
WARM_UP_S = 3.0


def workshop(directory: Path, port: int, mode: str) -> Path:
    devices = directory / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    nodes = "\n".join(f'  v{k:04d}: {{node: "nsu={BENCH_URI};i={FIRST_ID + k}"}}' for k in range(NODES))
    (devices / "bench-node-set.yaml").write_text(
        f"name: bench-node-set\nkind: other\nsource: bench/opcua_server.py\n"
        f"opcua: {{mode: {mode}, publishing_interval_s: 1.0, sampling_interval_s: 1.0, queue_size: 1}}\n"
        f"nodes:\n{nodes}\n",
        encoding="utf-8",
    )
    path = directory / "workshop.yaml"
    path.write_text(
        f"""
agent: {{id: bench, state_dir: {directory / "state"}}}
site: {{enterprise: e, site: s, area: a}}
connections:
  - {{id: cell, transport: opcua, url: "opc.tcp://127.0.0.1:{port}", security_policy: None,
     security_mode: None, interval_s: 1.0, timeout_s: 5.0, keepalive_s: 5.0}}
lines: [{{id: l1}}]
machines:
  - {{id: m1, line: l1, kind: other, profile: bench-node-set, connection: cell, ideal_cycle_s: 5.0}}
calendar: {{shifts: [{{name: all, start: "00:00", end: "23:59"}}]}}
""",
        encoding="utf-8",
    )
    return path


async def measure(path: Path) -> dict[str, float]:
    config = load_config(path)
    connection = config.workshop.connections[0]
    assert isinstance(connection, OpcUaConnection)
    driver = build_driver(connection, config.devices_on(connection), time.time, config.workshop.agent)
    assert isinstance(driver, OpcUaDriver)
    ages: list[float] = []
    on_change = driver.on_change

    def timed_change(node_id: Any, data_value: Any) -> None:
        ages.append(time.time() - float(data_value.Value.Value))
        on_change(node_id, data_value)

    driver.on_change = timed_change  # type: ignore[method-assign]
    values = 0
    async with driver:
        deadline = time.monotonic() + WARM_UP_S
        while time.monotonic() < deadline:
            await driver.read()
            await asyncio.sleep(1.0)
        ages.clear()
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        started = time.monotonic()
        requests = 0
        previous: dict[str, object] = {}
        while time.monotonic() - started < SECONDS:
            result = await driver.read()
            requests += result.requests
            values += len(result.samples)
            if any(t.mode.value == "poll" for t in driver.tags):
                now = time.time()
                for sample in result.samples:
                    changed = sample.tag in previous and previous[sample.tag] != sample.value
                    if changed and isinstance(sample.value, float):
                        ages.append(now - sample.value)
                    previous[sample.tag] = sample.value
            await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started) % 1.0))
        used = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = (used.ru_utime - cpu.ru_utime) + (used.ru_stime - cpu.ru_stime)
    ages.sort()
    return {
        "cpu_s": round(cpu_s, 3),
        "cpu_share_of_one_core": round(cpu_s / SECONDS, 4),
        "cpu_ms_per_1000_values": round(1000 * cpu_s / max(values, 1) * 1000, 3),
        "requests_per_s": round(requests / SECONDS, 2),
        "latency_p50_ms": round(1000 * statistics.median(ages), 1) if ages else -1.0,
        "latency_p99_ms": round(1000 * ages[int(0.99 * (len(ages) - 1))], 1) if ages else -1.0,
        "values": values,
    }


def run_workload(changing: int) -> dict[str, Any]:
    results: dict[str, Any] = {"nodes": NODES, "changing_per_s": changing, "seconds": SECONDS}
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.opcua_server", str(port), str(NODES), str(changing)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        assert "serving" in server.stdout.readline()
        with tempfile.TemporaryDirectory() as directory:
            for mode in ("poll", "subscribe"):
                results[mode] = asyncio.run(measure(workshop(Path(directory) / mode, port, mode)))
                print(f"{changing}/{NODES} changing, {mode}: {results[mode]}", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)
    results["cpu_ratio_subscribe_to_poll"] = round(
        results["subscribe"]["cpu_s"] / results["poll"]["cpu_s"], 3
    )
    print(f"{changing}/{NODES} changing: subscribe / poll CPU = {results['cpu_ratio_subscribe_to_poll']}")
    return results


def main() -> dict[str, Any]:
    return {"all_change": run_workload(NODES), "few_change": run_workload(NODES // 20)}
