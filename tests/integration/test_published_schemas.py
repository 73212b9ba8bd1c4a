"""The sample workshop run against real Mosquitto in both topic styles: every message follows its
published schema (and UMH's own in the umh style), a client that subscribes late gets each
machine's, line's and the workshop's current figures at once, and after a broker outage no
retained figure is older than the newest record of its topic."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.outputs import MqttOutput, RetainSettings
from agent.delivery.drain import SinkDelivery
from agent.delivery.outbox import AsyncOutbox, Outbox
from agent.records import Envelope, Record, RecordKind
from agent.runtime.agent import Agent
from agent.schemas.catalogue import shape_of
from agent.schemas.files import load
from agent.sim.server import WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.mqtt import MqttSink
from agent.sinks.registry import Output, topic_root
from agent.sinks.retention import retainable
from tests.integration.mqtt_client import Message, Subscriber
from tests.integration.servers import Mosquitto
from tests.integration.test_delivery_outages import committed

pytestmark = pytest.mark.integration
UMH_FIXTURE = Path(__file__).parents[1] / "fixtures" / "umh" / "historian.schema.json"
ENVELOPE_KEYS = ("ts", "agent", "seq", "kind")
REPLAY_BATCH = 80  # the sample workshop publishes about 30 records every 0.5 s
OUTAGE_S = 5.0
RUN_S = 5.0


@functools.cache
def validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load(name))


@functools.cache
def umh_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(UMH_FIXTURE.read_text(encoding="utf-8")))


async def run_workshop(config: AgentConfig, tmp_path: Path, output: Output, stop: asyncio.Event) -> None:
    """The sample workshop's simulators and the agent, publishing every 0.5 s, until `stop`."""
    truth = Output(FileSink(str(tmp_path / "records.jsonl")), 1000, 10_000.0, 0.5)
    agent = Agent(
        config,
        clock=time.time,
        outputs=[output, truth],
        engine_setup=build_engine_setup(config, publish_interval_s=0.5, offline_after_s=2.0),
        poll_interval_s=0.2,
        outbox=Outbox(tmp_path / "outbox.db"),
    )
    async with WorkshopSimulator(config, time.time):
        await agent.run(stop)


def late_subscriber(port: int, pattern: str) -> list[Message]:
    """What a client that subscribes now receives at once: the retained messages."""
    with Subscriber(port, pattern) as late:
        time.sleep(1.0)
        return late.snapshot()


def retained_once(port: int, pattern: str, at_least: int) -> list[Message]:
    """The retained messages, once there are at least `at_least` (the agent is up and publishing)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        messages = [m for m in late_subscriber(port, pattern) if m.retain]
        if len(messages) >= at_least:
            return messages
    raise AssertionError(f"fewer than {at_least} retained messages after 20 s")


def newest_retainable(path: Path, style_topic: Any) -> dict[str, int]:
    """Per topic, the seq of the newest committed record that may be retained there."""
    newest: dict[str, int] = {}
    for body in committed(path):
        fields = {k: v for k, v in body.items() if k not in ENVELOPE_KEYS}
        record = Record(RecordKind(body["kind"]), 0.0, fields)
        if retainable(record, RetainSettings()):
            topic = style_topic(Envelope(body["agent"], body["seq"], record))
            newest[topic] = max(newest.get(topic, 0), body["seq"])
    return newest


@pytest.mark.parametrize("style", ["isa95", "umh"])
async def test_every_message_follows_its_schema_and_late_subscribers_see_the_present(
    tmp_path: Path, sample_config: AgentConfig, style: str
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    settings = MqttOutput(host="127.0.0.1", port=broker.port, topic_style=style, timeout_s=5)
    sink = MqttSink(settings, topic_root(sample_config))
    try:
        with Subscriber(broker.port, "#") as live:
            await asyncio.sleep(0.3)
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(RUN_S, stop.set)
            await run_workshop(sample_config, tmp_path, Output(sink, 100, 2000.0, 0.5), stop)
            await asyncio.sleep(0.5)
            messages = live.snapshot()
        retained = await asyncio.to_thread(late_subscriber, broker.port, "#")
    finally:
        broker.stop()
    kinds: set[str] = set()
    for message in messages:
        shape = shape_of(style, message.topic)
        assert shape is not None, f"{message.topic}: no published topic shape"
        validator(shape.schema).validate(message.body)
        if "/_historian/" in message.topic:
            umh_validator().validate(message.body)
        kinds.add(shape.kind.value if shape.kind else "status")
    figures = ("state", "oee", "energy", "line_oee", "line_energy", "workshop_oee", "workshop_energy")
    assert kinds >= {*figures, "agent", "status"}
    newest = newest_retainable(tmp_path / "records.jsonl", sink.style.topic)
    state_topics = {t for t in newest if t.endswith("/state")}
    assert len(state_topics) == len(sample_config.workshop.machines)  # each machine's state is current
    by_topic = {m.topic: m for m in retained}
    assert set(by_topic) == {*newest, sink.style.status}
    for topic, seq in newest.items():
        assert by_topic[topic].retain
        assert by_topic[topic].body["seq"] == seq, (
            f"{topic}: retained {by_topic[topic].body['seq']}, newest {seq}"
        )
    assert by_topic[sink.style.status].body == "offline"


async def replay_backlog(config: AgentConfig, outbox_path: Path, sink: MqttSink, batch_size: int) -> int:
    """The MQTT output's backlog delivered by the agent's own delivery loop, and nothing else
    produced meanwhile: what the broker retains then is what the replay left there."""
    outbox = Outbox(outbox_path)
    outbox.open()
    outbox.register([sink.name, "file"])
    async with AsyncOutbox(outbox) as shared:
        delivery = SinkDelivery(
            sink, shared, config.workshop.agent.id, batch_size=batch_size, replay_per_s=1e6
        )
        async with sink:
            task = asyncio.create_task(delivery.run(), name="test.replay")
            async with asyncio.timeout(60):
                while delivery.stats.delivered == 0 or delivery.stats.backlog_records > 0:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return delivery.stats.delivered


async def test_after_a_broker_outage_the_replay_leaves_each_topics_newest_figure_retained(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    """The broker keeps the figures retained before its outage (persistence); the agent goes on
    for OUTAGE_S without it and stops; the broker comes back and only the backlog is replayed, in
    batches of several publications each. Each retained figure must then be its topic's newest
    record: never one the replay overwrote with an older one, never one from before the outage."""
    broker = Mosquitto(tmp_path)
    broker.start()
    live = MqttOutput(host="127.0.0.1", port=broker.port, timeout_s=2, reconnect_max_s=0.5)
    sink = MqttSink(live, topic_root(sample_config))
    root = topic_root(sample_config).root
    try:
        stop = asyncio.Event()
        output = Output(sink, 100, 2000.0, 0.5)
        task = asyncio.create_task(run_workshop(sample_config, tmp_path, output, stop), name="test.run")
        machines = len(sample_config.workshop.machines)
        before = await asyncio.to_thread(retained_once, broker.port, f"{root}/#", machines)
        await asyncio.to_thread(broker.stop)
        await asyncio.sleep(OUTAGE_S)
        stop.set()
        await asyncio.wait_for(task, 30)
        broker.start()
        replay = MqttOutput(host="127.0.0.1", port=broker.port, max_inflight=REPLAY_BATCH, timeout_s=5)
        delivered = await replay_backlog(
            sample_config, tmp_path / "outbox.db", MqttSink(replay, topic_root(sample_config)), REPLAY_BATCH
        )
        retained = await asyncio.to_thread(late_subscriber, broker.port, f"{root}/#")
    finally:
        broker.stop()
    assert delivered > 2 * REPLAY_BATCH  # several batches, each with 2 to 3 publications of each topic
    newest = newest_retainable(tmp_path / "records.jsonl", sink.style.topic)
    by_topic = {m.topic: m.body for m in retained if m.retain and isinstance(m.body, dict)}
    held_before = {m.topic: m.body["seq"] for m in before if m.retain and isinstance(m.body, dict)}
    assert all(held_before[t] < newest[t] for t in held_before)  # the outage made every figure stale
    stale = {
        t: (by_topic.get(t, {}).get("seq"), seq)
        for t, seq in newest.items()
        if by_topic.get(t, {}).get("seq") != seq
    }
    assert not stale, f"retained (seq, newest seq) per topic: {stale}"
