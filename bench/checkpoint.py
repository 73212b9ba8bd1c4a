"""What checkpointing the KPI engine costs at the comparison's 200 x 50 workload (issue 13).

1. In process: one checkpoint of the engine as it stands after the workload ran for a while (200
   machines with 50 tag values each): `snapshot()`, JSON, zlib, and the SQLite transaction that
   stores it (synchronous=normal, as the workload's outbox), median of many. Its share of one
   core at one checkpoint per `kpi.checkpoint_s` (5 s by default) follows.
2. End to end: the `compare` agent contender (`edge-agent run`: poll, KPI engine, outbox, MQTT
   QoS 1, a tag record per device and cycle) at 200 x 50, CPU over the window with
   `checkpoint_s: 5` against `checkpoint_s: 3600` (no checkpoint inside the window), the
   repetitions interleaved so that the shared machine's load drifts alike over both.

`python -m bench checkpoint [--window S] [--repetitions N]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.delivery.outbox import CHECKPOINT_ZLIB_LEVEL, Checkpoint, Outbox
from agent.kpi.checkpoint import FORMAT, snapshot
from agent.kpi.engine import KpiEngine
from agent.records import to_json
from agent.samples import Sample
from bench import compare, peers
from bench.workload import Workload, simulator_workshop, variant, write_workload
from tests.integration.workshop_run import simulator_for

WORKLOAD = Workload(200, 50)
DEFAULT_CHECKPOINT_S = 5.0
OFF_CHECKPOINT_S = 3600.0  # the largest allowed: none falls inside a measuring window
ROUNDS = 30  # polls ingested before measuring: open periods, values and baselines all filled
TIMINGS = 50


def in_process(workshop: Path) -> dict[str, Any]:
    config = load_config(workshop)
    setup = build_engine_setup(config)
    start = time.time()
    engine, _ = KpiEngine.fresh(setup, start)
    rng = random.Random(1)
    devices = list(config.devices())
    for round_index in range(ROUNDS):
        t = start + round_index
        batch = [
            Sample(device.id, tag, rng.randint(0, 60_000), t)
            for device in devices
            for tag in device.profile.spec.tag_names
        ]
        engine.ingest(batch)
        engine.advance(t)
    outbox = Outbox(workshop.parent / "bench-outbox.db", synchronous="normal")
    outbox.open()
    parts: dict[str, list[float]] = {"snapshot": [], "json": [], "zlib": [], "store": []}
    size = 0
    compressed = 0
    for _ in range(TIMINGS):
        t0 = time.perf_counter()
        data = snapshot(engine)
        t1 = time.perf_counter()
        text = to_json(data)
        t2 = time.perf_counter()
        blob = zlib.compress(text, CHECKPOINT_ZLIB_LEVEL)
        t3 = time.perf_counter()
        outbox.append("bench", [], engine.now, Checkpoint("bench", FORMAT, engine.now, data))
        t4 = time.perf_counter()
        parts["snapshot"].append(t1 - t0)
        parts["json"].append(t2 - t1)
        parts["zlib"].append(t3 - t2)
        parts["store"].append(t4 - t3)  # encodes again inside, as the agent does: the whole write
        size, compressed = len(text), len(blob)
    outbox.close()
    per_checkpoint = statistics.median(parts["snapshot"]) + statistics.median(parts["store"])
    return {
        "machines": len(engine.machines),
        "json_kb": round(size / 1024, 1),
        "stored_kb": round(compressed / 1024, 1),
        **{f"{name}_ms": round(1000 * statistics.median(times), 3) for name, times in parts.items()},
        "checkpoint_ms": round(1000 * per_checkpoint, 3),
        "core_share_at_default": round(per_checkpoint / DEFAULT_CHECKPOINT_S, 5),
    }


def end_to_end(workshop: Path, window_s: float, repetitions: int) -> dict[str, Any]:
    on = variant(workshop, "checkpoint-on", extra=f"kpi: {{checkpoint_s: {DEFAULT_CHECKPOINT_S:g}}}\n")
    off = variant(workshop, "checkpoint-off", extra=f"kpi: {{checkpoint_s: {OFF_CHECKPOINT_S:g}}}\n")
    runs: dict[str, list[float]] = {"on": [], "off": []}
    served = simulator_workshop(workshop, WORKLOAD, peers.MODBUS4MQTT_BLOCK)
    with simulator_for(served, workshop.parent / "simulator.log"):
        for repetition in range(repetitions):
            order = (("on", on), ("off", off)) if repetition % 2 == 0 else (("off", off), ("on", on))
            for name, path in order:
                figures = compare.run_agent(path, 8.0, window_s)
                runs[name].append(figures["cpu_s"])
                print(name, round(figures["cpu_s"] / window_s, 4), flush=True)
    on_cpu, off_cpu = statistics.median(runs["on"]), statistics.median(runs["off"])
    return {
        "window_s": window_s,
        "repetitions": repetitions,
        "core_share_on": round(on_cpu / window_s, 4),
        "core_share_off": round(off_cpu / window_s, 4),
        "on_to_off_cpu": round(on_cpu / off_cpu, 3),
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench checkpoint")
    parser.add_argument("--window", type=float, default=20.0)
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--in-process-only", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        workshop = write_workload(Path(directory), WORKLOAD)
        results: dict[str, Any] = {"workload": WORKLOAD.name, "in_process": in_process(workshop)}
        print(results["in_process"], flush=True)
        if not args.in_process_only:
            results["end_to_end"] = end_to_end(workshop, args.window, args.repetitions)
            print({k: v for k, v in results["end_to_end"].items() if k != "runs"}, flush=True)
    return results
