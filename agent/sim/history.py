"""A stretch of simulated shop-floor history run through the KPI engine at full speed: the
records a workshop produces, for benchmarks, schema checks and filling a dashboard."""

from __future__ import annotations

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.kpi.engine import KpiEngine
from agent.records import Record
from agent.samples import Sample
from agent.sim.server import WorkshopSimulator


def simulated_records(
    config: AgentConfig, start: float, duration_s: float, poll_s: float = 5.0
) -> list[Record]:
    """Every record of [start, start + duration_s), each device read every poll_s."""
    simulator = WorkshopSimulator(config, lambda: start)  # models only: nothing is served
    engine = KpiEngine(build_engine_setup(config), start)
    return feed(config, engine, simulator, start, start + duration_s, poll_s)


def feed(
    config: AgentConfig,
    engine: KpiEngine,
    simulator: WorkshopSimulator,
    start: float,
    end: float,
    poll_s: float = 5.0,
) -> list[Record]:
    """The engine's records of [start, end), each device read every poll_s from the simulator's
    models (one simulator for several calls continues one history, as across a restart)."""
    devices = list(config.devices())
    records: list[Record] = []
    t = start
    while t < end:
        batch = []
        for device in devices:
            model = simulator.machines.get(device.id) or simulator.meters[device.id]
            values = model.values_at(t)
            batch += [Sample(device.id, tag, values.get(tag, 0), t) for tag in device.profile.spec.tag_names]
        records += engine.ingest(batch)
        records += engine.advance(t)
        t += poll_s
    return records
