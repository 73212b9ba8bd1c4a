"""Outages of the broker and of the time-series store while the whole workshop runs: nothing
committed is lost, order per topic holds, duplicates stay within the in-flight window."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.outputs import InfluxOutput, MqttOutput
from agent.delivery.outbox import Outbox
from agent.records import rfc3339_ms
from agent.runtime.agent import Agent
from agent.sim.server import WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.influx import InfluxSink
from agent.sinks.mqtt import MqttSink
from agent.sinks.registry import Output, topic_root
from tests.integration.mqtt_client import Subscriber
from tests.integration.servers import Mosquitto, VictoriaMetrics

pytestmark = pytest.mark.integration
IN_FLIGHT = 20


def epoch_ms_of(rfc3339: str) -> int:
    moment = dt.datetime.strptime(rfc3339, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000 + 0.5)


def still_in_outbox(path: Path, sink: str) -> list[dict[str, Any]]:
    """Records committed but not yet acknowledged by `sink`: they go out at the next start."""
    outbox = Outbox(path)
    outbox.open()
    outbox.register([sink, "file"])
    pending = outbox.pending("gw", sink, 100_000)
    outbox.close()
    return [{"kind": e.record.kind.value, "ts": rfc3339_ms(e.record.ts)} for e in pending]


def committed(path: Path) -> list[dict[str, Any]]:
    """The file output receives every committed record: the ground truth."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def run_with_outage(
    config: AgentConfig, tmp_path: Path, output: Output, stop_server: Any, start_server: Any
) -> Agent:
    ground_truth = Output(FileSink(str(tmp_path / "records.jsonl")), 1000, 10_000.0, 0.5)
    setup = build_engine_setup(config, publish_interval_s=0.5, offline_after_s=2.0)
    agent = Agent(
        config,
        clock=time.time,
        outputs=[output, ground_truth],
        engine_setup=setup,
        poll_interval_s=0.2,
        outbox=Outbox(tmp_path / "outbox.db"),
    )
    stop = asyncio.Event()
    delivery_of = {d.sink.name: d for d in agent.deliveries}
    async with WorkshopSimulator(config, time.time):
        task = asyncio.create_task(agent.run(stop), name="test.agent")
        await asyncio.sleep(2.0)
        await asyncio.to_thread(stop_server)
        await asyncio.sleep(3.0)
        assert agent.deliveries[0].stats.backlog_records > 0 or not agent.deliveries[0].stats.connected
        await asyncio.to_thread(start_server)
        delivery_of = {d.sink.name: d for d in agent.deliveries}
        async with asyncio.timeout(30):
            while not (  # noqa: ASYNC110 - observing the agent from outside
                delivery_of[output.sink.name].stats.connected
                and delivery_of[output.sink.name].stats.backlog_records == 0
            ):
                await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.wait_for(task, 30)
    assert delivery_of[output.sink.name].stats.failures > 0  # the outage was seen
    return agent


async def test_broker_outage_loses_nothing_and_keeps_order(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    config = MqttOutput(
        host="127.0.0.1", port=broker.port, max_inflight=IN_FLIGHT, timeout_s=2, reconnect_max_s=0.5
    )
    mqtt = MqttSink(config, topic_root(sample_config))
    root = topic_root(sample_config).root
    try:
        with Subscriber(broker.port, f"{root}/#", client_id="checker", persistent=True) as subscriber:
            await asyncio.sleep(0.3)
            await run_with_outage(
                sample_config, tmp_path, Output(mqtt, IN_FLIGHT, 2000.0, 0.5), broker.stop, broker.start
            )
            expected = {r["seq"] for r in committed(tmp_path / "records.jsonl")}
            messages = await asyncio.to_thread(
                subscriber.wait_for,
                lambda ms: {m.body["seq"] for m in ms if isinstance(m.body, dict)} >= expected,
                20,
            )
    finally:
        broker.stop()
    # The subscriber subscribes again when the broker is back, and the broker then sends it every
    # retained figure once more (flagged retained): that is retention, not a repeat by the agent.
    received = [(m.topic, m.body["seq"]) for m in messages if isinstance(m.body, dict) and not m.retain]
    assert {seq for _, seq in received} == expected  # every committed record, nothing else
    duplicates = len(received) - len(expected)
    assert duplicates <= 2 * IN_FLIGHT
    highest: dict[str, int] = defaultdict(int)
    seen: set[int] = set()
    for topic, seq in received:
        if seq <= highest[topic]:
            assert seq in seen, f"{topic}: seq {seq} arrived after {highest[topic]} for the first time"
            assert highest[topic] - seq < 2 * IN_FLIGHT * 10, "a repeat from outside the in-flight window"
        highest[topic] = max(highest[topic], seq)
        seen.add(seq)


async def test_store_outage_loses_nothing(tmp_path: Path, sample_config: AgentConfig) -> None:
    store = VictoriaMetrics(tmp_path / "vm")
    store.start()
    influx = InfluxSink(
        InfluxOutput(url=store.url, org="plant", bucket="edge", token="x", timeout_s=2, reconnect_max_s=0.5),
        topic_root(sample_config),
    )
    try:
        await run_with_outage(
            sample_config, tmp_path, Output(influx, 500, 5000.0, 0.5), store.stop, store.start
        )
        oee_kinds = ("oee", "line_oee", "workshop_oee")
        oee = [r for r in committed(tmp_path / "records.jsonl") if r["kind"] in oee_kinds]
        waiting = [r for r in still_in_outbox(tmp_path / "outbox.db", "influxdb") if r["kind"] in oee_kinds]
        series = await asyncio.to_thread(store.export_when, '{__name__="oee_pbt_s"}', len(oee) - len(waiting))
    finally:
        store.stop()
    stored = {(json.dumps(s["metric"], sort_keys=True), ts) for s in series for ts in s["timestamps"]}
    assert len(stored) + len(waiting) == len(oee)  # every committed record: in the store, or queued for it
    published = {epoch_ms_of(r["ts"]) for r in oee} - {epoch_ms_of(r["ts"]) for r in waiting}
    assert {ts for _, ts in stored} == published  # the same millisecond as the MQTT payload's ts
    by_machine = {(s["metric"].get("machine"), s["metric"]["scope"]) for s in series}
    assert ("grinder-01", "machine") in by_machine
    assert (None, "workshop") in by_machine
