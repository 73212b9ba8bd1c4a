"""What each MQTT QoS means for the outbox cursor is explicit: QoS 0 is refused unless the file
says accept_loss: true, and then every view of the output says it delivers at most once."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import pytest

from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.delivery.outbox import Outbox
from agent.runtime.agent import Agent
from agent.service.health import health_document
from agent.sinks.registry import build_outputs
from tests.conftest import CASES, free_port

MINIMAL = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")


def workshop(tmp_path: Path, mqtt: str) -> Path:
    text = MINIMAL.replace("../_devices", str(CASES / "_devices"))
    path = tmp_path / "workshop.yaml"
    path.write_text(
        text + f"outputs:\n  mqtt: {{host: 127.0.0.1, port: {free_port()}, {mqtt}}}\n", encoding="utf-8"
    )
    return path


@pytest.mark.parametrize(
    ("mqtt", "message"),
    [
        ("qos: 0", "qos 0 has no acknowledgement"),
        ("qos: 0, accept_loss: false", "qos 0 has no acknowledgement"),
        ("qos: 1, accept_loss: true", "accept_loss: true applies to qos 0 only"),
    ],
)
def test_qos_0_without_accept_loss_is_refused_at_its_line(tmp_path: Path, mqtt: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(workshop(tmp_path, mqtt))
    [issue] = caught.value.issues
    assert issue.path == "outputs.mqtt.qos"
    assert message in issue.message
    assert (issue.mark.line, issue.mark.column) != (1, 1)


@pytest.mark.parametrize("mqtt", ["qos: 1", "qos: 2"])
def test_acknowledged_qos_is_at_least_once(tmp_path: Path, mqtt: str) -> None:
    [output] = build_outputs(load_config(workshop(tmp_path, mqtt)))
    assert not output.accept_loss


async def test_accepted_loss_is_said_in_health_and_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(workshop(tmp_path, "qos: 0, accept_loss: true"))
    agent = Agent(config, clock=time.time, outputs=build_outputs(config), outbox=Outbox(tmp_path / "o.db"))
    stop = asyncio.Event()
    with caplog.at_level(logging.WARNING):
        task = asyncio.create_task(agent.run(stop))
        async with asyncio.timeout(10):
            while not agent.deliveries:  # noqa: ASYNC110 - observing the agent from outside
                await asyncio.sleep(0.01)
        document = health_document(agent.snapshot())
        stop.set()
        await asyncio.wait_for(task, 30)
    mqtt = document["outputs"]["mqtt"]
    assert mqtt["accept_loss"] is True
    assert mqtt["delivery"] == "at-most-once (accept_loss)"
    assert any("sink=mqtt event=accept_loss" in r.getMessage() for r in caplog.records)


async def test_a_fifo_named_as_a_tls_file_is_an_output_error_not_a_stalled_agent(tmp_path: Path) -> None:
    """paho reads TLS files on the event loop: a FIFO there would block every loop of the agent."""
    from agent.exceptions import OutputError
    from agent.sinks.mqtt import MqttSink
    from agent.sinks.registry import topic_root

    fifo = tmp_path / "ca.pem"
    os.mkfifo(fifo)
    config = load_config(workshop(tmp_path, f"qos: 1, tls: {{ca_file: {fifo}}}"))
    assert config.workshop.outputs.mqtt is not None
    sink = MqttSink(config.workshop.outputs.mqtt, topic_root(config))
    async with sink:
        with pytest.raises(OutputError, match=r"tls.ca_file .*a named pipe \(FIFO\), not a regular file"):
            await asyncio.wait_for(sink.write([]), 5)
