"""One snapshot, every view: /health, /metrics, the systemd STATUS line, the delivery record and
the terminal view all say the same of one AgentSnapshot, and it cannot change under them."""

from __future__ import annotations

import dataclasses
import io
import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from rich.console import Console

from agent.commands.view import health_table, outputs_table
from agent.config.compiled import AgentConfig
from agent.delivery.outbox import Outbox
from agent.i18n import catalogue
from agent.runtime.agent import Agent
from agent.runtime.snapshot import (
    AgentSnapshot,
    ConnectionSnapshot,
    DeviceSnapshot,
    LoopSnapshot,
    OutputSnapshot,
    StorageSnapshot,
)
from agent.service.health import AgentCollector, health_document
from agent.service.supervision import status_line
from agent.terminal import UNBOUNDED


def state(*, device_up: bool = False, loop_failed_s_ago: float | None = None) -> AgentSnapshot:
    return AgentSnapshot(
        agent="gw-1",
        language="en",
        config_file="/etc/edge-agent/workshop.yaml",
        config_version="3f2a9c1b7d40",
        at=1_000_000.0,
        connections=(
            ConnectionSnapshot(
                "line1-gw",
                "10.0.1.20:502",
                1.0,
                cycles=100,
                missed_cycles=2,
                requests=300,
                errors=7,
                last_cycle_s=0.0123,
                devices=(
                    DeviceSnapshot("grinder-01", True, None, 0.4),
                    DeviceSnapshot(
                        "grinder-02", device_up, None if device_up else "timeout after 1.0s", None
                    ),
                ),
            ),
        ),
        outputs=(OutputSnapshot("mqtt", False, False, 40, 0.0, 5, 900, 12.5, 3, "connection refused"),),
        storage=StorageSnapshot(60, False, None, 0, {}, {}, 0, 0, ()),
        loops=(LoopSnapshot("poll:line1-gw", 1, "RuntimeError: bug", loop_failed_s_ago),),
    )


def test_every_view_says_the_same_of_one_snapshot() -> None:
    snapshot = state()
    document = health_document(snapshot)
    assert document["ok"] is False
    assert status_line(snapshot) == "1/2 devices up; outputs: mqtt down backlog 5"
    devices = document["connections"]["line1-gw"]["devices"]
    assert [d["connected"] for d in devices.values()] == [True, False]
    assert document["outputs"]["mqtt"]["backlog_records"] == 5

    class Holder:
        def snapshot(self) -> AgentSnapshot:
            return snapshot

    registry = CollectorRegistry()
    registry.register(AgentCollector(Holder()))  # type: ignore[arg-type]
    metrics = generate_latest(registry).decode()
    assert 'edge_agent_device_up{connection="line1-gw",device="grinder-02"} 0.0' in metrics
    assert 'edge_agent_output_backlog_records{output="mqtt"} 5.0' in metrics

    out = io.StringIO()
    console = Console(file=out, width=UNBOUNDED, color_system=None, soft_wrap=True)
    words = catalogue("en")
    console.print(health_table(snapshot.connections, words).render(None))
    console.print(outputs_table(snapshot, words).render(None))
    text = out.getvalue()
    assert "1/2" in text
    assert "grinder-02: timeout after 1.0s" in text
    assert "connection refused" in text


@pytest.mark.parametrize(
    ("device_up", "failed_s_ago", "ok"),
    [(True, None, True), (False, None, False), (True, 10.0, False), (True, 600.0, True)],
)
def test_the_verdict_is_derived_once(device_up: bool, failed_s_ago: float | None, ok: bool) -> None:
    """ok: every device answers, every output delivers or has nothing waiting, and no loop failed
    within the last minute. The sample's output is down with a backlog: never ok; without the
    backlog, the devices and the loops decide."""
    snapshot = state(device_up=device_up, loop_failed_s_ago=failed_s_ago)
    without_backlog = dataclasses.replace(
        snapshot, outputs=(dataclasses.replace(snapshot.outputs[0], backlog_records=0),)
    )
    assert snapshot.ok is False
    assert without_backlog.ok is ok
    assert health_document(without_backlog)["ok"] is ok


def test_a_snapshot_is_frozen() -> None:
    snapshot = state()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.storage.committed = 0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        snapshot.connections[0].devices[0].connected = False  # type: ignore[misc]


def test_the_delivery_record_is_the_snapshot_s(sample_config: AgentConfig, tmp_path: Path) -> None:
    agent = Agent(sample_config, clock=time.time, outbox=Outbox(tmp_path / "outbox.db"))
    snapshot = agent.snapshot()
    fields = agent.agent_record(snapshot.at).fields
    assert fields["sinks"] == [o.fields() for o in snapshot.outputs]
    assert fields["connections"] == {}
    assert fields["outbox_unwritable"] is snapshot.storage.unwritable
