"""The agent against the floor (a bare pymodbus loop) and peer gateways, side by side in one run,
on N simulated Modbus TCP devices x M tags polled every second (bench/workload.py).

Every workload starts `edge-agent simulate` in its own process, then each contender in turn; each
warms up and is measured over the window:
- CPU seconds of the contender's processes (utime + stime from /proc), per 1,000 tag values;
- peak RSS (VmHWM, summed over its processes);
- Modbus requests per cycle and missed cycles, where the contender reports them;
- tag values arriving at the local Mosquitto per second, and sample-to-broker latency p50/p99
  (payload timestamp against arrival at a subscriber) where payloads carry a timestamp: the
  median repetition's p50 and the worst repetition's p99.

Contenders, configured for the same registers, interval and broker:
- agent: `edge-agent run`, every machine with publish_tags (poll, KPI, outbox, MQTT QoS 1);
- agent-kpi: the same with publish_tags off: KPI records only (states, OEE, energy);
- bare: bench/bare_loop.py, the agent's own planned requests in a pymodbus loop, nothing else;
- bare+paho: the bare loop decoding each device's values and publishing them, one QoS 1 message
  per device and cycle (the least any gateway that publishes does);
- modbus4mqtt and thingsboard-gateway from PyPI, each in its own venv (bench/peers.py says
  exactly how each is configured). modbus4mqtt runs one interpreter per device, so it runs only
  up to 50 devices: 200 interpreters would swamp two cores before measuring anything.

`make bench ARGS=compare` runs the whole matrix (N = 10, 50, 200; M = 20, 50, 120; 3 repetitions);
`make bench ARGS="compare --quick"` runs M = 50 only, 2 repetitions. Results: bench/results.json
and bench/results.md. `--devices`, `--tags`, `--only` and `--output` run other matrices, such as
the search for the largest workshop one core holds.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config.loader import load_config
from bench import bare_loop, peers
from bench.workload import (
    BrokerProbe,
    Workload,
    measure_window,
    simulator_workshop,
    variant,
    write_workload,
)
from tests.integration.workshop_run import simulator_for

BENCH = Path(__file__).resolve().parent
CONTENDERS = ("agent", "agent-kpi", "bare", "bare+paho", "modbus4mqtt", "thingsboard-gateway")
# (contender, its floor, the key of their CPU ratio in results.json)
RATIOS = (
    ("agent", "bare", "agent_to_bare_cpu"),
    ("agent", "bare+paho", "agent_to_bare_paho_cpu"),
    ("agent-kpi", "bare", "agent_kpi_to_bare_cpu"),
)
ONE_INTERPRETER_PER_DEVICE_UP_TO = 50


def _tag_record_stamps(payload: bytes) -> Iterable[tuple[float | None, int]]:
    record = json.loads(payload)
    return [(datetime.fromisoformat(record["ts"]).timestamp(), len(record["values"]))]


def _bare_stamps(payload: bytes) -> Iterable[tuple[float | None, int]]:
    message = json.loads(payload)
    return [(message["ts"], len(message["values"]))]


def run_agent(
    workshop: Path, warm_up_s: float, window_s: float, *, probe_tags: bool = True
) -> dict[str, Any]:
    """probe_tags: measure the tag records arriving (off for a workshop that publishes none)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "-c", str(workshop)],
        cwd=workshop.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = BrokerProbe("bench-e/bench-s/bench-a/+/+/tags", _tag_record_stamps) if probe_tags else None
    try:
        time.sleep(warm_up_s)
        before = health(workshop)
        figures = measure_window([process.pid], probe, window_s)
        after = health(workshop)
    finally:
        if probe is not None:
            probe.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    cycles = {n: after[n]["cycles"] - before[n]["cycles"] for n in after}
    requests = sum((after[n]["requests"] - before[n]["requests"]) / max(cycles[n], 1) for n in after)
    missed = sum(after[n]["missed_cycles"] - before[n]["missed_cycles"] for n in after)
    return {**figures, "requests_per_cycle": round(requests, 1), "missed_cycles": missed}


def health(workshop: Path) -> dict[str, Any]:
    port = load_config(workshop).workshop.health.port
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
        connections: dict[str, Any] = json.load(answer)["connections"]
    return connections


def run_bare(workshop: Path, warm_up_s: float, window_s: float, *, publish: bool = False) -> dict[str, Any]:
    """publish: bare+paho, else the bare loop that publishes nothing."""
    out = workshop.parent / "bare.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bench.bare_loop",
            str(workshop),
            str(out),
            *(["--publish"] if publish else []),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert "polling" in process.stdout.readline()
    probe = BrokerProbe(f"{bare_loop.TOPIC}/+", _bare_stamps) if publish else None
    try:
        time.sleep(warm_up_s)
        figures = measure_window([process.pid], probe, window_s)
    finally:
        if probe is not None:
            probe.close()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    counts = json.loads(out.read_text(encoding="utf-8"))
    return {
        **figures,
        "requests_per_cycle": round(counts["requests"] / max(counts["cycles"], 1) * counts["connections"], 1),
        "missed_cycles": counts["missed"],
    }


RUNNERS: dict[str, Callable[[Path, Workload, float], dict[str, Any]]] = {
    "agent": lambda workshop, _workload, window_s: run_agent(workshop, 8.0, window_s),
    "agent-kpi": lambda workshop, _workload, window_s: run_agent(
        variant(workshop, "agent-kpi", publish_tags=False), 8.0, window_s, probe_tags=False
    ),
    "bare": lambda workshop, _workload, window_s: run_bare(workshop, 5.0, window_s),
    "bare+paho": lambda workshop, _workload, window_s: run_bare(workshop, 5.0, window_s, publish=True),
    "modbus4mqtt": lambda workshop, workload, window_s: peers.run_modbus4mqtt(
        workshop, workload, 8.0, window_s
    ),
    "thingsboard-gateway": lambda workshop, workload, window_s: peers.run_thingsboard(
        workshop, workload, 10.0, window_s
    ),
}


def summarise(runs: list[dict[str, Any]], workload: Workload, window_s: float) -> dict[str, Any]:
    values = workload.values_per_cycle * window_s
    per_1000 = [1000 * r["cpu_s"] / values for r in runs]
    arrived = [r["values_per_s"] for r in runs if r["values_per_s"] is not None]
    return {
        "cpu_ms_per_1000_values": round(1000 * statistics.median(per_1000), 3),
        "cpu_spread_ms": round(1000 * (max(per_1000) - min(per_1000)), 3),
        "core_share": round(statistics.median(r["cpu_s"] for r in runs) / window_s, 4),
        "rss_mb": max(r["rss_mb"] for r in runs),
        "requests_per_cycle": runs[0]["requests_per_cycle"],
        "missed_cycles": runs[0]["missed_cycles"],
        "delivered_share": round(statistics.median(arrived) / workload.values_per_cycle, 3)
        if arrived
        else None,
        **latency(runs),
        "runs": runs,
    }


def latency(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """The median repetition's p50 and the worst repetition's p99: a tail seen once is a tail."""
    p50 = [r["latency_p50_ms"] for r in runs if r["latency_p50_ms"] is not None]
    p99 = [r["latency_p99_ms"] for r in runs if r["latency_p99_ms"] is not None]
    return {
        "latency_p50_ms": statistics.median(p50) if p50 else None,
        "latency_p99_ms": max(p99) if p99 else None,
    }


def contenders_for(workload: Workload, installed: set[str]) -> list[str]:
    names = ["agent", "agent-kpi", "bare", "bare+paho"]
    if "modbus4mqtt" in installed and workload.devices <= ONE_INTERPRETER_PER_DEVICE_UP_TO:
        names.append("modbus4mqtt")
    if "thingsboard-gateway" in installed:
        names.append("thingsboard-gateway")
    return names


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench compare")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--repetitions", type=int)
    parser.add_argument("--only", choices=CONTENDERS, action="append", help="run these contenders only")
    parser.add_argument("--devices", type=int, nargs="+", default=[10, 50, 200])
    parser.add_argument("--tags", type=int, nargs="+", help="default: 20 50 120 (--quick: 50)")
    parser.add_argument("--output", default="results", help="bench/OUTPUT.md and .json (default: results)")
    parser.add_argument("--render", action="store_true", help="only rewrite bench/OUTPUT.md from its .json")
    args = parser.parse_args(argv)
    if args.render:
        recorded: dict[str, Any] = json.loads((BENCH / f"{args.output}.json").read_text(encoding="utf-8"))
        (BENCH / f"{args.output}.md").write_text(render(recorded), encoding="utf-8")
        return recorded
    tag_counts = args.tags or ((50,) if args.quick else (20, 50, 120))
    repetitions = args.repetitions or (2 if args.quick else 3)
    wanted = set(args.only or CONTENDERS)
    installed = {peer for peer in peers.PACKAGES if peer in wanted and peers.ensure(peer)}
    results: dict[str, Any] = {
        "window_s": args.window,
        "repetitions": repetitions,
        "peers_installed": sorted(installed),
        "workloads": {},
    }
    for devices in args.devices:
        for tags in tag_counts:
            workload = Workload(devices, tags)
            with tempfile.TemporaryDirectory() as directory:
                workshop = write_workload(Path(directory), workload)
                entry: dict[str, Any] = {}
                served = simulator_workshop(workshop, workload, peers.MODBUS4MQTT_BLOCK)
                with simulator_for(served, Path(directory) / "simulator.log"):
                    names = [n for n in contenders_for(workload, installed) if n in wanted]
                    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
                    # Repetitions interleaved (a, b, c, a, b, c): the shared machine's load drifts
                    # alike over every contender, so a ratio compares like with like.
                    for _ in range(repetitions):
                        for name in names:
                            runs[name].append(RUNNERS[name](workshop, workload, args.window))
                    for name in names:
                        entry[name] = summarise(runs[name], workload, args.window)
                        print(
                            workload.name,
                            name,
                            {k: v for k, v in entry[name].items() if k != "runs"},
                            flush=True,
                        )
                # a window too short for a floor to use one /proc clock tick gives no ratio
                for contender, floor, key in RATIOS:
                    if contender in entry and entry.get(floor, {}).get("cpu_ms_per_1000_values"):
                        entry[key] = round(
                            entry[contender]["cpu_ms_per_1000_values"]
                            / entry[floor]["cpu_ms_per_1000_values"],
                            2,
                        )
                results["workloads"][workload.name] = entry
    (BENCH / f"{args.output}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (BENCH / f"{args.output}.md").write_text(render(results), encoding="utf-8")
    return results


def cpu_per_delivered(contender: dict[str, Any], window_s: float) -> float | None:
    """ms of CPU per 1,000 values that reached the broker: a contender that cannot keep up
    polls fewer values, and its CPU per polled value flatters it."""
    per_1000 = [
        1000 * 1000 * r["cpu_s"] / (r["values_per_s"] * window_s)
        for r in contender["runs"]
        if r["values_per_s"]
    ]
    return round(statistics.median(per_1000), 1) if per_1000 else None


def render(results: dict[str, Any]) -> str:
    window_s = results["window_s"]
    lines = [
        "# Comparison results",
        "",
        f"Written by `make bench ARGS=compare` ({results['repetitions']} repetitions of "
        f"{window_s:g} s; medians, CPU spread (max - min) in brackets; bench/peers.py says how each "
        "peer is configured). Delivered: tag values arriving at the broker per second, as a share "
        "of the values the workload offers per second.",
        "",
        *([results["note"], ""] if results.get("note") else []),
        "| workload (devices x tags) | contender | ms CPU / 1000 values offered | ms CPU / 1000 values "
        "delivered | share of one core | peak RSS MB | requests / cycle | missed cycles | delivered "
        "| latency p50 / p99 ms | CPU / the floor's |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, entry in results["workloads"].items():
        for contender in CONTENDERS:
            if contender not in entry:
                continue
            r = entry[contender]
            latency = "-" if r["latency_p50_ms"] is None else f"{r['latency_p50_ms']} / {r['latency_p99_ms']}"
            ratio = ", ".join(
                f"{entry[key]} x {floor}"
                for name_, floor, key in RATIOS
                if name_ == contender and key in entry
            )
            missed = "-" if r["missed_cycles"] is None else r["missed_cycles"]
            delivered = "-" if r["delivered_share"] is None else f"{100 * r['delivered_share']:.0f} %"
            per_delivered = cpu_per_delivered(r, window_s)
            lines.append(
                f"| {name} | {contender} | {r['cpu_ms_per_1000_values']} (±{r['cpu_spread_ms']}) | "
                f"{'-' if per_delivered is None else per_delivered} | "
                f"{100 * r['core_share']:.1f} % | {r['rss_mb']} | {r['requests_per_cycle']} | {missed} | "
                f"{delivered} | {latency} | {ratio} |"
            )
    return "\n".join(lines) + "\n"
