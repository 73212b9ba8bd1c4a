"""The local health endpoint: `/health` (JSON for people and `edge-agent status`) and `/metrics`
(Prometheus text format, written by prometheus_client from the agent's live figures at scrape time);
the same server carries the workshop board and the reports (agent/web/routes.py) and sends every
page with the headers of agent/web/security.py.

Loopback only by default: it tells what is connected, not a control surface.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Self

from aiohttp import web
from prometheus_client import CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from agent.runtime.agent import Agent
from agent.runtime.snapshot import AgentSnapshot
from agent.web.routes import WebPages
from agent.web.security import guard


def health_document(state: AgentSnapshot) -> dict[str, Any]:
    """/health: JSON for people and for `edge-agent status`."""
    storage = state.storage
    return {
        "agent": state.agent,
        "language": state.language,  # what `edge-agent status` prints in
        "config": {"file": state.config_file, "version": state.config_version},
        "connections": {
            c.name: {
                "endpoint": c.endpoint,
                "cycles": c.cycles,
                "missed_cycles": c.missed_cycles,
                "requests": c.requests,
                "errors": c.errors,
                "last_cycle_ms": round(c.last_cycle_s * 1000, 2),
                "devices": {
                    d.id: {
                        "connected": d.connected,
                        "error": d.error,
                        "last_good_read_s_ago": d.last_good_read_s_ago,
                    }
                    for d in c.devices
                },
            }
            for c in state.connections
        },
        "outputs": {o.sink: o.fields() for o in state.outputs},
        "outbox": {
            "committed": storage.committed,
            "unwritable": storage.unwritable,
            "unwritable_reason": storage.unwritable_reason,
            "waiting_in_memory": storage.waiting_in_memory,
            "refused": dict(storage.refused),
            "salvaged": storage.salvaged,
            "lost_to_corruption": storage.lost_to_corruption,
            "problems": list(storage.problems),
        },
        "loops": {
            loop.name: {
                "restarts": loop.restarts,
                "last_error": loop.last_error,
                "last_failure_s_ago": loop.last_failure_s_ago,
            }
            for loop in state.loops
        },
        "ok": state.ok,
    }


class AgentCollector(Collector):
    """The agent's figures for Prometheus, from one snapshot per scrape."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[Any]:
        state = self.agent.snapshot()
        cycle = GaugeMetricFamily(
            "edge_agent_poll_cycle_seconds", "Duration of the last poll cycle", labels=["connection"]
        )
        cycles = CounterMetricFamily("edge_agent_poll_cycles", "Poll cycles run", labels=["connection"])
        missed = CounterMetricFamily(
            "edge_agent_missed_cycles", "Poll cycles skipped because one ran late", labels=["connection"]
        )
        requests = CounterMetricFamily("edge_agent_requests", "Modbus requests sent", labels=["connection"])
        errors = CounterMetricFamily(
            "edge_agent_device_errors", "Device reads that failed", labels=["connection"]
        )
        up = GaugeMetricFamily(
            "edge_agent_device_up", "1 if the device answered its last poll", labels=["connection", "device"]
        )
        for c in state.connections:
            cycle.add_metric([c.name], c.last_cycle_s)
            cycles.add_metric([c.name], c.cycles)
            missed.add_metric([c.name], c.missed_cycles)
            requests.add_metric([c.name], c.requests)
            errors.add_metric([c.name], c.errors)
            for device in c.devices:
                up.add_metric([c.name, device.id], 1.0 if device.connected else 0.0)
        yield from (cycle, cycles, missed, requests, errors, up)
        connected = GaugeMetricFamily(
            "edge_agent_output_connected", "1 if the output's last write was acknowledged", labels=["output"]
        )
        backlog = GaugeMetricFamily(
            "edge_agent_output_backlog_records", "Records waiting for the output", labels=["output"]
        )
        backlog_bytes = GaugeMetricFamily(
            "edge_agent_output_backlog_bytes", "Bytes waiting for the output", labels=["output"]
        )
        delivered = CounterMetricFamily(
            "edge_agent_output_delivered_records", "Records acknowledged", labels=["output"]
        )
        accept_loss = GaugeMetricFamily(
            "edge_agent_output_accept_loss",
            "1 if the output delivers at most once (MQTT QoS 0 with accept_loss)",
            labels=["output"],
        )
        for o in state.outputs:
            connected.add_metric([o.sink], 1.0 if o.connected else 0.0)
            backlog.add_metric([o.sink], o.backlog_records)
            backlog_bytes.add_metric([o.sink], o.backlog_bytes)
            delivered.add_metric([o.sink], o.delivered)
            accept_loss.add_metric([o.sink], 1.0 if o.accept_loss else 0.0)
        yield from (connected, backlog, backlog_bytes, delivered)
        storage = state.storage
        committed = CounterMetricFamily("edge_agent_records_committed", "Records committed to the outbox")
        committed.add_metric([], storage.committed)
        dropped = CounterMetricFamily(
            "edge_agent_records_dropped",
            "Records dropped while memory held them (disk full)",
            labels=["kind"],
        )
        for kind, count in storage.dropped_in_memory.items():
            dropped.add_metric([kind], count)
        full = GaugeMetricFamily(
            "edge_agent_outbox_unwritable", "1 while the outbox cannot be written (disk full, locked)"
        )
        full.add_metric([], 1.0 if storage.unwritable else 0.0)
        yield from (committed, dropped, full)
        refused = CounterMetricFamily(
            "edge_agent_records_refused", "Records the outbox could not store (logged)", labels=["kind"]
        )
        for kind, count in storage.refused.items():
            refused.add_metric([kind], count)
        salvaged = GaugeMetricFamily(
            "edge_agent_outbox_salvaged_records", "Records carried over from a corrupt outbox at start"
        )
        salvaged.add_metric([], storage.salvaged)
        lost = GaugeMetricFamily(
            "edge_agent_outbox_corrupt_lost_records",
            "Records of a corrupt outbox that could not be read back at start",
        )
        lost.add_metric([], storage.lost_to_corruption)
        restarts = CounterMetricFamily(
            "edge_agent_loop_restarts", "Restarts of a loop after an unexpected failure", labels=["loop"]
        )
        for loop in state.loops:
            restarts.add_metric([loop.name], loop.restarts)
        yield from (refused, salvaged, lost, accept_loss, restarts)


class HealthServer:
    def __init__(self, agent: Agent, host: str, port: int) -> None:
        self.agent = agent
        self.host = host
        self.port = port
        self.registry = CollectorRegistry()
        self.registry.register(AgentCollector(agent))
        self.registry.register(ProcessCollector(registry=None))
        self._runner: web.AppRunner | None = None
        self.started = time.monotonic()

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response(health_document(self.agent.snapshot()))

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.registry), content_type="text/plain", charset="utf-8")

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[guard(self.agent.config.workshop.health.token)])
        if self.agent.history is not None:
            WebPages(lambda: self.agent.config, self.agent.history, self.agent.clock).add_to(app)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the real port when 0 was asked for
        if sockets:
            self.port = sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
