"""The InfluxDB sink: what VictoriaMetrics stores through the v2 write API is what the records say."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config.outputs import InfluxOutput
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind, epoch_ms
from agent.sinks.influx import InfluxSink
from agent.sinks.topics import TopicRoot
from tests.conftest import free_port
from tests.integration.servers import VictoriaMetrics

pytestmark = pytest.mark.integration
TOPICS = TopicRoot("tianhe-bearing", "plant-1", "grinding", "gw-test")
TS = 1_790_000_000.123


def envelopes() -> list[Envelope]:
    ident = {"machine": "grinder-07", "line": "line-1"}
    shift = {"shift": "day", "period": "shift", "final": True}
    return [
        Envelope("gw-test", 10 + i, r)
        for i, r in enumerate(
            [
                Record(
                    RecordKind.STATE, TS, {**ident, "state": "fault", "since": "x", "reason": "alarm 1203"}
                ),
                Record(
                    RecordKind.OEE,
                    TS,
                    {
                        **ident,
                        **shift,
                        "pbt_s": 3600.0,
                        "apt_s": 2950.5,
                        "produced": 1402,
                        "availability": 0.8196,
                        "performance": None,
                        "flags": ["x"],
                    },
                ),
                Record(RecordKind.ENERGY, TS, {**ident, **shift, "kwh": 14.2, "kwh_per_unit": 0.01013}),
                Record(RecordKind.WORKSHOP_OEE, TS, {**shift, "oee": 0.6182}),
                Record(
                    RecordKind.AGENT,
                    TS,
                    {
                        "sinks": [{"sink": "mqtt", "delivered": 5, "connected": True}],
                        "connections": {"line1-gw": {"cycles": 7}},
                        "outbox_unwritable": False,
                    },
                ),
            ]
        )
    ]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    server = VictoriaMetrics(tmp_path)
    server.start()
    yield server
    server.stop()


def sink(url: str) -> InfluxSink:
    return InfluxSink(InfluxOutput(url=url, org="plant", bucket="edge", token="t", timeout_s=3), TOPICS)


async def test_values_tags_and_timestamps_read_back(store: VictoriaMetrics) -> None:
    async with sink(store.url) as influx:
        await influx.write(envelopes())
    exported = await asyncio.to_thread(
        store.export_when, '{__name__=~"(oee|energy|machine_state|agent)_.*"}', 11
    )
    samples = {
        (s["metric"]["__name__"], s["metric"].get("scope", ""), s["metric"].get("part", "")): (
            s["metric"],
            s["values"],
            s["timestamps"],
        )
        for s in exported
    }
    labels, values, stamps = samples[("oee_apt_s", "machine", "")]
    assert values == [2950.5]
    assert stamps == [epoch_ms(TS)]
    assert {k: labels[k] for k in ("site", "area", "line", "machine", "shift", "period")} == {
        "site": "plant-1",
        "area": "grinding",
        "line": "line-1",
        "machine": "grinder-07",
        "shift": "day",
        "period": "shift",
    }
    assert samples[("oee_produced", "machine", "")][1] == [1402]
    assert ("oee_performance", "machine", "") not in samples  # null is absent, not zero
    assert samples[("oee_oee", "workshop", "")][1] == [0.6182]
    assert "machine" not in samples[("oee_oee", "workshop", "")][0]
    assert samples[("energy_kwh_per_unit", "machine", "")][1] == [0.01013]
    assert samples[("machine_state_state_code", "", "")][1] == [3.0]  # fault
    assert samples[("agent_delivered", "", "sink")][0]["sink"] == "mqtt"
    assert samples[("agent_cycles", "", "connection")][1] == [7]


async def test_unreachable_store_is_an_error_to_retry() -> None:
    async with sink(f"http://127.0.0.1:{free_port()}") as influx:
        with pytest.raises(OutputError, match=r"influxdb http://127.0.0.1:.*(refused|Failed to establish)"):
            await influx.write(envelopes())
