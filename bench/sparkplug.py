"""Sparkplug B: how fast a 24-hour backlog of the sample workshop drains to Mosquitto through the
Sparkplug output (QoS 0 with a fence per batch, its default batch of 100 and a batch of 1,000),
against the null sink; and what a birth sequence and the data cost in bytes, against the JSON
output's payloads of the same records.

Run: `make bench ARGS=sparkplug`. Needs mosquitto on 127.0.0.1:1883.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from agent.config.loader import load_config
from agent.config.outputs import SparkplugOutput
from agent.records import Envelope
from agent.sinks.sparkplug import build_sparkplug_sink
from agent.sinks.sparkplug_metrics import Catalogue
from agent.sinks.sparkplug_payloads import device_birth, device_data, node_birth
from bench.replay import SAMPLE_WORKSHOP, NullSink, drain, one_day_of_records


def sizes(records: list[Envelope], catalogue: Catalogue) -> dict[str, int]:
    now = int(time.time() * 1000)
    birth = len(node_birth(0, 0, now, ()))
    birth += sum(len(device_birth(1, now, [(m, None, now) for m in d.metrics.values()])) for d in catalogue)
    data = json = messages = 0
    last: dict[tuple[str, str], object] = {}
    for envelope in records:
        update = catalogue.update(envelope)
        if update is None:
            continue
        json += len(envelope.payload_json())
        changed = [
            (m, v)
            for m, v in update.values
            if (update.device, m.name) not in last or last[update.device, m.name] != v
        ]
        last.update({(update.device, m.name): v for m, v in changed})
        if changed:  # as the output sends them: the changes only
            data += len(device_data(1, now, changed, update.timestamp_ms))
            messages += 1
    return {
        "birth_sequence_bytes": birth,
        "ddata_messages_24h": messages,
        "ddata_bytes_24h": data,
        "json_bytes_same_records": json,
    }


async def measure() -> dict[str, float]:
    records = one_day_of_records()
    config = load_config(SAMPLE_WORKSHOP)
    directory = Path(tempfile.mkdtemp(prefix="bench-sparkplug-"))
    try:
        config = type(config)(
            config.workshop.model_copy(
                update={"agent": config.workshop.agent.model_copy(update={"state_dir": str(directory)})}
            ),
            config.profiles,
            config.source,
        )
        null_s = await drain(NullSink(), records, directory, 1000)
        results: dict[str, float] = {"records_24h": len(records)}
        for batch in (100, 1000):
            settings = SparkplugOutput(host="127.0.0.1", port=1883, group_id="bench", batch_size=batch)
            elapsed = await drain(build_sparkplug_sink(settings, config), records, directory, batch)
            results[f"batch_{batch}_records_per_s"] = round(len(records) / elapsed)
            results[f"batch_{batch}_drain_24h_s"] = round(elapsed, 2)
            results[f"batch_{batch}_ratio_to_null"] = round(elapsed / null_s, 2)
        catalogue = Catalogue(config, publish_tags=False)
        envelopes = [Envelope("bench", i, record) for i, record in enumerate(records)]
        results.update(sizes(envelopes, catalogue))
        results["metrics"] = sum(len(d.metrics) for d in catalogue)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return results


def main() -> dict[str, float]:
    result = asyncio.run(measure())
    for key, value in result.items():
        print(f"{key:32s} {value}")
    return result
