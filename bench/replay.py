"""Backlog replay: how fast a 24-hour backlog of the sample workshop drains to Mosquitto and to
VictoriaMetrics after an outage, against a null sink draining the same outbox (the outbox's own
cost), in one run.

Run: `make bench ARGS=replay`. Needs mosquitto on 127.0.0.1:1883 and the victoria-metrics binary.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

from agent.config.loader import load_config
from agent.config.outputs import InfluxOutput, MqttOutput
from agent.config.shipped import example
from agent.delivery.drain import SinkDelivery
from agent.delivery.outbox import AsyncOutbox, Outbox
from agent.records import Envelope, Record
from agent.sim.history import simulated_records
from agent.sinks.base import Sink
from agent.sinks.influx import InfluxSink
from agent.sinks.mqtt import MqttSink
from agent.sinks.registry import topic_root
from tests.integration.servers import VictoriaMetrics

SAMPLE_WORKSHOP = example("grinding")
DAY_S = 86_400.0
POLL_S = 5.0  # a day of shop-floor time, read every 5 s: state changes are seen as in production


class NullSink:
    name = "null"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def write(self, batch: Sequence[Envelope]) -> None:
        return None


def one_day_of_records() -> list[Record]:
    """The records the sample workshop produces in 24 hours (60 s publication, as configured)."""
    return simulated_records(load_config(SAMPLE_WORKSHOP), time.time() - DAY_S, DAY_S, POLL_S)


async def drain(sink: Sink, records: list[Record], directory: Path, batch_size: int) -> float:
    """Seconds to deliver the whole backlog through the real delivery loop, unpaced."""
    outbox = Outbox(directory / f"{sink.name}.db", synchronous="normal")
    outbox.open()
    outbox.register([sink.name])
    outbox.append("bench", records, now=records[-1].ts)
    async with AsyncOutbox(outbox) as store, sink:
        delivery = SinkDelivery(
            sink, store, "bench", batch_size=batch_size, replay_per_s=1e9, retry_max_s=1.0
        )
        started = time.perf_counter()
        task = asyncio.create_task(delivery.run())
        while delivery.stats.delivered < len(records):  # noqa: ASYNC110 - the bench watches from outside
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        task.cancel()
    return elapsed


async def measure() -> dict[str, float]:
    records = one_day_of_records()
    config = load_config(SAMPLE_WORKSHOP)
    topics = topic_root(config)
    directory = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    store = VictoriaMetrics(directory / "vm")
    store.start()
    try:
        null_s = await drain(NullSink(), records, directory, 1000)
        mqtt_s = await drain(
            MqttSink(MqttOutput(host="127.0.0.1", port=1883, max_inflight=1000), topics),
            records,
            directory,
            1000,
        )
        influx_s = await drain(
            InfluxSink(InfluxOutput(url=store.url, org="bench", bucket="bench"), topics),
            records,
            directory,
            5000,
        )
    finally:
        store.stop()
        shutil.rmtree(directory, ignore_errors=True)
    count = len(records)
    return {
        "records_24h": count,
        "null_records_per_s": round(count / null_s),
        "mqtt_records_per_s": round(count / mqtt_s),
        "mqtt_drain_24h_s": round(mqtt_s, 2),
        "mqtt_ratio_to_null": round(mqtt_s / null_s, 2),
        "influx_records_per_s": round(count / influx_s),
        "influx_drain_24h_s": round(influx_s, 2),
        "influx_ratio_to_null": round(influx_s / null_s, 2),
    }


def main() -> dict[str, float]:
    result = asyncio.run(measure())
    for key, value in result.items():
        print(f"{key:28s} {value}")
    return result
