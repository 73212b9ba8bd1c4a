"""The agent against the floor (a bare pymodbus loop) and a peer gateway (modbus4mqtt), side by
side in one run, on N simulated Modbus TCP devices x M tags polled every second.

Every run starts `edge-agent simulate` in its own process (10 devices per simulated gateway
port), then one contender, lets it warm up, and measures over the window:
- CPU seconds of the contender's processes (utime + stime from /proc), per 1,000 tag values;
- peak RSS (VmHWM, summed over its processes);
- Modbus requests per cycle and missed cycles, where the contender reports them;
- sample-to-broker latency p50/p99 for the agent (payload `ts` against arrival at a subscriber
  on the local Mosquitto).

Contenders, configured for the same registers, interval and broker:
- agent: `edge-agent run`, every machine with publish_tags (poll, KPI, outbox, MQTT QoS 1);
- bare: bench/bare_loop.py, the agent's own planned requests in a pymodbus loop, nothing else;
- modbus4mqtt 0.7.1 from PyPI in bench/.peers (never in the project's dependencies): one process
  per device (its design: one config per device), update_rate 1 s, every register published
  every cycle (pub_only_on_change: false), its default 100-register read batching. It reads
  integers only, so float32 tags are read as uint32 and bit tags as uint16 (same registers).

`make bench ARGS=compare` runs the whole matrix (N = 10, 50, 200; M = 20, 50, 120; 3 repetitions);
`make bench ARGS="compare --quick"` runs M = 50 only, 2 repetitions. Results:
bench/results/compare.json and bench/results.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.config.loader import load_config
from agent.config.workshop import ModbusTcpConnection
from tests.conftest import free_port
from tests.integration.workshop_run import simulator_for

BENCH = Path(__file__).resolve().parent
PEERS = BENCH / ".peers"
DEVICES_PER_GATEWAY = 10
TYPES = ("uint16", "int16", "uint32", "int32", "float32", "bit")
WIDTH = {"uint16": 1, "int16": 1, "uint32": 2, "int32": 2, "float32": 2, "bit": 1}
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Workload:
    devices: int
    tags: int

    @property
    def name(self) -> str:
        return f"{self.devices}x{self.tags}"


def tag_layout(count: int) -> list[tuple[str, int, str]]:
    """(name, address, type): mixed types, and a gap of 3 registers after every 10 tags."""
    layout = []
    address = 0
    for index in range(count):
        kind = TYPES[index % len(TYPES)]
        layout.append((f"t{index:03d}", address, kind))
        address += WIDTH[kind] + (3 if index % 10 == 9 else 0)
    return layout


def write_workload(directory: Path, workload: Workload) -> Path:
    devices = directory / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, address, kind in tag_layout(workload.tags):
        if kind == "bit":
            lines.append(f"  {name}: {{table: holding, address: {address}, type: bool, bit: 0}}")
        else:
            lines.append(f"  {name}: {{table: holding, address: {address}, type: {kind}}}")
    (devices / "bench-device.yaml").write_text(
        "name: bench-device\nkind: other\nsource: bench/compare.py\ntags:\n" + "\n".join(lines) + "\n",
        encoding="utf-8",
    )
    gateways = math.ceil(workload.devices / DEVICES_PER_GATEWAY)
    ports = [free_port() for _ in range(gateways)]
    connections = "\n".join(
        f"  - {{id: gw{g:02d}, transport: modbus-tcp, host: 127.0.0.1, port: {port}, "
        "interval_s: 1.0, timeout_s: 1.0}"
        for g, port in enumerate(ports)
    )
    machines = "\n".join(
        f"  - {{id: d{n:03d}, line: l1, kind: other, profile: bench-device, "
        f"connection: gw{n // DEVICES_PER_GATEWAY:02d}, unit: {n % DEVICES_PER_GATEWAY + 1}, "
        "ideal_cycle_s: 5, publish_tags: true}"
        for n in range(workload.devices)
    )
    path = directory / "workshop.yaml"
    path.write_text(
        f"""agent: {{id: bench, state_dir: {directory / "state"}}}
site: {{enterprise: bench-e, site: bench-s, area: bench-a}}
connections:
{connections}
lines: [{{id: l1}}]
machines:
{machines}
calendar: {{shifts: [{{name: all, start: "00:00", end: "23:59"}}]}}
outbox: {{synchronous: normal}}
outputs:
  mqtt: {{host: 127.0.0.1, port: 1883}}
health: {{port: {free_port()}}}
""",
        encoding="utf-8",
    )
    return path


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8").rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def peak_rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
    return round(total / 1024, 1)


class LatencyProbe:
    """Subscribes to the agent's tag records; the age of each payload's `ts` on arrival."""

    def __init__(self) -> None:
        self.ages: list[float] = []
        self.recording = False
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_message = self._message
        self.client.connect("127.0.0.1", 1883)
        self.client.subscribe("bench-e/bench-s/bench-a/+/+/tags", qos=1)
        self.client.loop_start()

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if not self.recording:
            return
        ts = json.loads(message.payload)["ts"]
        self.ages.append(time.time() - datetime.fromisoformat(ts).timestamp())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def run_agent(workshop: Path, warm_up_s: float, window_s: float) -> dict[str, Any]:
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "-c", str(workshop)],
        cwd=workshop.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = LatencyProbe()
    try:
        time.sleep(warm_up_s)
        before = health(workshop)
        start = cpu_seconds([process.pid])
        probe.recording = True
        time.sleep(window_s)
        probe.recording = False
        used = cpu_seconds([process.pid]) - start
        after = health(workshop)
        rss = peak_rss_mb([process.pid])
    finally:
        probe.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    cycles = {n: after[n]["cycles"] - before[n]["cycles"] for n in after}
    requests = sum((after[n]["requests"] - before[n]["requests"]) / max(cycles[n], 1) for n in after)
    missed = sum(after[n]["missed_cycles"] - before[n]["missed_cycles"] for n in after)
    ages = sorted(probe.ages)
    return {
        "cpu_s": used,
        "rss_mb": rss,
        "requests_per_cycle": round(requests, 1),
        "missed_cycles": missed,
        "cycles": min(cycles.values()),
        "latency_p50_ms": round(1000 * statistics.median(ages), 1) if ages else None,
        "latency_p99_ms": round(1000 * ages[int(0.99 * (len(ages) - 1))], 1) if ages else None,
    }


def health(workshop: Path) -> dict[str, Any]:
    port = load_config(workshop).workshop.health.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        connections: dict[str, Any] = json.load(answer)["connections"]
    return connections


def run_bare(workshop: Path, warm_up_s: float, window_s: float) -> dict[str, Any]:
    out = workshop.parent / "bare.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "bench.bare_loop", str(workshop), str(out)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert "polling" in process.stdout.readline()
    time.sleep(warm_up_s)
    start = cpu_seconds([process.pid])
    time.sleep(window_s)
    used = cpu_seconds([process.pid]) - start
    rss = peak_rss_mb([process.pid])
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    counts = json.loads(out.read_text(encoding="utf-8"))
    return {
        "cpu_s": used,
        "rss_mb": rss,
        "requests_per_cycle": round(counts["requests"] / max(counts["cycles"], 1) * counts["connections"], 1),
        "missed_cycles": counts["missed"],
        "cycles": counts["cycles"] // counts["connections"],
        "latency_p50_ms": None,
        "latency_p99_ms": None,
    }


def modbus4mqtt_configs(workshop: Path, workload: Workload) -> list[Path]:
    ports = [c.port for c in load_config(workshop).workshop.connections if isinstance(c, ModbusTcpConnection)]
    registers = []
    for name, address, kind in tag_layout(workload.tags):
        peer_type = {"float32": "uint32", "bit": "uint16"}.get(kind, kind)
        registers.append(
            f"  - {{pub_topic: {name}, address: {address}, table: holding, type: {peer_type}, "
            "pub_only_on_change: false}"
        )
    configs = []
    for n in range(workload.devices):
        path = workshop.parent / f"modbus4mqtt-d{n:03d}.yaml"
        path.write_text(
            f"ip: 127.0.0.1\nport: {ports[n // DEVICES_PER_GATEWAY]}\nupdate_rate: 1\naddress_offset: 0\n"
            f"device_address: {n % DEVICES_PER_GATEWAY + 1}\nregisters:\n" + "\n".join(registers) + "\n",
            encoding="utf-8",
        )
        configs.append(path)
    return configs


def modbus4mqtt_requests(workload: Workload) -> int:
    """Its reads per device and cycle, from its algorithm: one per 100-register block touched."""
    blocks = set()
    for _, address, kind in tag_layout(workload.tags):
        for register in range(address, address + WIDTH[kind]):
            blocks.add(register - register % 100)
    return len(blocks) * workload.devices


def run_modbus4mqtt(workshop: Path, workload: Workload, warm_up_s: float, window_s: float) -> dict[str, Any]:
    binary = PEERS / "bin" / "modbus4mqtt"
    processes = [
        subprocess.Popen(
            [
                str(binary),
                "--hostname",
                "127.0.0.1",
                "--config",
                str(config),
                "--mqtt_topic_prefix",
                f"m4m/{config.stem}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for config in modbus4mqtt_configs(workshop, workload)
    ]
    pids = [p.pid for p in processes]
    try:
        time.sleep(warm_up_s + workload.devices * 0.05)  # 200 interpreters take a while to start
        start = cpu_seconds(pids)
        time.sleep(window_s)
        used = cpu_seconds(pids) - start
        rss = peak_rss_mb(pids)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    return {
        "cpu_s": used,
        "rss_mb": rss,
        "requests_per_cycle": modbus4mqtt_requests(workload),
        "missed_cycles": None,
        "cycles": None,
        "latency_p50_ms": None,
        "latency_p99_ms": None,
    }


def ensure_peers() -> bool:
    if (PEERS / "bin" / "modbus4mqtt").exists():
        return True
    try:
        subprocess.run([sys.executable, "-m", "venv", str(PEERS)], check=True)
        subprocess.run([str(PEERS / "bin" / "pip"), "install", "--quiet", "modbus4mqtt==0.7.1"], check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(PEERS, ignore_errors=True)
        return False
    return True


def summarise(runs: list[dict[str, Any]], workload: Workload, window_s: float) -> dict[str, Any]:
    values = workload.devices * workload.tags * window_s
    per_1000 = [1000 * r["cpu_s"] / values for r in runs]
    return {
        "cpu_ms_per_1000_values": round(1000 * statistics.median(per_1000), 3),
        "cpu_spread_ms": round(1000 * (max(per_1000) - min(per_1000)), 3),
        "core_share": round(statistics.median(r["cpu_s"] for r in runs) / window_s, 4),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "requests_per_cycle": runs[0]["requests_per_cycle"],
        "missed_cycles": runs[0]["missed_cycles"],
        "latency_p50_ms": runs[0]["latency_p50_ms"],
        "latency_p99_ms": runs[0]["latency_p99_ms"],
        "runs": runs,
    }


def run_contender(name: str, workshop: Path, workload: Workload, window_s: float) -> dict[str, Any]:
    if name == "agent":
        return run_agent(workshop, 8.0, window_s)
    if name == "bare":
        return run_bare(workshop, 5.0, window_s)
    return run_modbus4mqtt(workshop, workload, 8.0, window_s)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench compare")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--repetitions", type=int)
    args = parser.parse_args(argv)
    tag_counts = (50,) if args.quick else (20, 50, 120)
    repetitions = args.repetitions or (2 if args.quick else 3)
    peers = ensure_peers()
    results: dict[str, Any] = {"window_s": args.window, "repetitions": repetitions, "workloads": {}}
    for devices in (10, 50, 200):
        for tags in tag_counts:
            workload = Workload(devices, tags)
            with tempfile.TemporaryDirectory() as directory:
                workshop = write_workload(Path(directory), workload)
                entry: dict[str, Any] = {}
                with simulator_for(workshop, Path(directory) / "simulator.log"):
                    names = ["agent", "bare"]
                    if peers and devices <= 50:  # one interpreter per device: 200 would swamp 2 cores
                        names.append("modbus4mqtt")
                    for name in names:
                        runs = [
                            run_contender(name, workshop, workload, args.window) for _ in range(repetitions)
                        ]
                        entry[name] = summarise(runs, workload, args.window)
                        print(
                            workload.name,
                            name,
                            {k: v for k, v in entry[name].items() if k != "runs"},
                            flush=True,
                        )
                entry["agent_to_bare_cpu"] = round(
                    entry["agent"]["cpu_ms_per_1000_values"] / entry["bare"]["cpu_ms_per_1000_values"], 2
                )
                results["workloads"][workload.name] = entry
    (BENCH / "results.md").write_text(render(results), encoding="utf-8")
    return results


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Comparison results",
        "",
        f"Written by `make bench ARGS=compare` ({results['repetitions']} repetitions of "
        f"{results['window_s']:g} s; medians; see bench/compare.py for how each contender is configured).",
        "",
        "| workload (devices x tags) | contender | ms CPU / 1000 values | share of one core | peak RSS MB "
        "| requests / cycle | missed cycles | latency p50 / p99 ms | agent / bare CPU |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in results["workloads"].items():
        for contender in ("agent", "bare", "modbus4mqtt"):
            if contender not in entry:
                continue
            r = entry[contender]
            latency = "-" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']} / {r['latency_p99_ms']}"
            ratio = entry["agent_to_bare_cpu"] if contender == "agent" else ""
            missed = "-" if r["missed_cycles"] is None else r["missed_cycles"]
            lines.append(
                f"| {name} | {contender} | {r['cpu_ms_per_1000_values']} (±{r['cpu_spread_ms']}) | "
                f"{100 * r['core_share']:.1f} % | {r['rss_mb']} | {r['requests_per_cycle']} | {missed} | "
                f"{latency} | {ratio} |"
            )
    return "\n".join(lines) + "\n"
