"""KPI engine cost per sample for a 50-machine workshop, against a last-value-per-tag baseline.

Run: `make bench ARGS=engine` (or `.venv/bin/python -m bench engine`). Both loops see the same
samples in the same order in one process, so their ratio is the figure that counts; the
absolute microseconds depend on the machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.config.shipped import example
from agent.kpi.engine import KpiEngine
from agent.samples import Sample
from agent.sim.machines import MachineModel

SAMPLE_WORKSHOP = example("grinding")
MACHINES = 50
POLL_S = 1.0


def workload(cycles: int, start: float) -> tuple[list[list[Sample]], Callable[[], KpiEngine]]:
    """50 grinders with the sample profile's tags, read once a second for `cycles` seconds."""
    config = load_config(SAMPLE_WORKSHOP)
    template = config.workshop.machines[0]
    machines = tuple(
        template.model_copy(update={"id": f"grinder-{n:03d}", "unit": n}) for n in range(1, MACHINES + 1)
    )
    workshop = config.workshop.model_copy(update={"machines": machines, "meters": ()})
    config = type(config)(workshop, config.profiles, config.source)
    setup = build_engine_setup(config, publish_interval_s=60.0)
    tags = list(config.profiles[template.profile].spec.tags)
    models = [MachineModel("grinder", n, template.ideal_cycle_s, start) for n in range(MACHINES)]
    batches = []
    for cycle in range(cycles):
        t = start + cycle * POLL_S
        batch = []
        for machine, model in zip(machines, models, strict=True):
            values = model.values_at(t)
            batch += [Sample(machine.id, tag, values.get(tag, 0), t) for tag in tags]
        batches.append(batch)
    return batches, lambda: KpiEngine(setup, start)


def run_engine(batches: list[list[Sample]], make: Callable[[], KpiEngine]) -> float:
    engine = make()
    began = time.perf_counter()
    for batch in batches:
        engine.ingest(batch)
        engine.advance(batch[0].ts)
    return time.perf_counter() - began


def run_baseline(batches: list[list[Sample]]) -> float:
    latest: dict[tuple[str, str], object] = {}
    began = time.perf_counter()
    for batch in batches:
        for sample in batch:
            latest[(sample.device, sample.tag)] = sample.value
    return time.perf_counter() - began


def main(cycles: int = 600, repeats: int = 5) -> dict[str, float]:
    start = time.time()
    batches, make = workload(cycles, start)
    samples = sum(len(b) for b in batches)
    engine_s = [run_engine(batches, make) for _ in range(repeats)]
    baseline_s = [run_baseline(batches) for _ in range(repeats)]
    per_sample_us = statistics.median(engine_s) / samples * 1e6
    baseline_us = statistics.median(baseline_s) / samples * 1e6
    result = {
        "machines": MACHINES,
        "samples": samples,
        "shop_floor_s": cycles * POLL_S,
        "engine_us_per_sample": round(per_sample_us, 3),
        "engine_us_per_sample_spread": round((max(engine_s) - min(engine_s)) / samples * 1e6, 3),
        "baseline_us_per_sample": round(baseline_us, 3),
        "ratio_to_baseline": round(per_sample_us / baseline_us, 1),
        "share_of_one_core_at_1s_polling": round(statistics.median(engine_s) / (cycles * POLL_S), 5),
    }
    for key, value in result.items():
        print(f"{key:36s} {value}")
    return result
