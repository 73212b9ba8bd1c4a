"""/health and /metrics scraped while a gateway and an output are down show exactly that."""

from __future__ import annotations

import asyncio
import io
import time
import urllib.request
from pathlib import Path

import pytest
from rich.console import Console

from agent.commands.status import fetch_health, print_status
from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.delivery.outbox import Outbox
from agent.i18n import catalogue
from agent.runtime.agent import Agent
from agent.service.health import HealthServer
from agent.sim.server import WorkshopSimulator
from agent.sinks.registry import Output
from tests.integration.test_storage_limits import GatedSink

pytestmark = pytest.mark.integration
DEAD = "line2-gw"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - loopback test server
        return str(answer.read().decode())


async def test_health_and_metrics_show_a_dead_gateway_and_a_dead_output(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    sink = GatedSink()  # an output that is away
    setup = build_engine_setup(sample_config, offline_after_s=1.0)
    agent = Agent(
        sample_config,
        clock=time.time,
        outputs=[Output(sink, 100, 1000.0, 0.2)],
        engine_setup=setup,
        poll_interval_s=0.1,
        outbox=Outbox(tmp_path / "outbox.db"),
    )
    stop = asyncio.Event()
    async with (
        WorkshopSimulator(sample_config, time.time) as simulator,
        HealthServer(agent, "127.0.0.1", 0) as server,
    ):
        await simulator.stop(DEAD)
        task = asyncio.create_task(agent.run(stop))
        await asyncio.sleep(1.5)
        base = f"http://127.0.0.1:{server.port}"
        document = await asyncio.to_thread(fetch_health, base)
        metrics = await asyncio.to_thread(get, base + "/metrics")
        out = io.StringIO()
        print_status(document, Console(file=out, width=200), catalogue())
        stop.set()
        await asyncio.wait_for(task, 30)
    assert document["ok"] is False
    dead = document["connections"][DEAD]["devices"]
    assert dead
    assert not any(d["connected"] for d in dead.values())
    assert all(d["error"] for d in dead.values())
    alive = document["connections"]["line1-gw"]["devices"]
    assert all(d["connected"] and d["last_good_read_s_ago"] is not None for d in alive.values())
    assert document["outputs"]["gated"]["connected"] is False
    assert document["outputs"]["gated"]["backlog_records"] > 0
    assert len(document["config"]["version"]) == 12
    assert f'edge_agent_device_up{{connection="{DEAD}",device="grinder-04"}} 0.0' in metrics
    assert 'edge_agent_device_up{connection="line1-gw",device="grinder-01"} 1.0' in metrics
    assert 'edge_agent_output_connected{output="gated"} 0.0' in metrics
    assert "edge_agent_poll_cycles_total" in metrics
    assert "process_resident_memory_bytes" in metrics
    text = out.getvalue()
    assert "DEGRADED" in text
    assert "grinder-04" in text  # listed among the devices not answering


def test_status_without_a_running_agent_says_so_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    from agent.cli import main
    from tests.conftest import free_port

    port = free_port()
    assert main(["status", "--url", f"http://127.0.0.1:{port}"]) == 2
    assert f"status: no agent answers at http://127.0.0.1:{port}/health" in capsys.readouterr().err
    assert main(["status", "--url", "ftp://127.0.0.1"]) == 2
    assert "give an http:// URL" in capsys.readouterr().err
