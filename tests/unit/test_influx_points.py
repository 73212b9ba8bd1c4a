"""Bad points are isolated and skipped; other HTTP errors are retried (a fake write API at the seam)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from influxdb_client.rest import ApiException

from agent.config.outputs import InfluxOutput
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind
from agent.sinks.influx import InfluxSink
from agent.sinks.topics import TopicRoot

TOPICS = TopicRoot("e", "s", "a", "gw")


class FakeWriteApi:
    """Rejects any batch holding a point whose line protocol contains 'bad', as a store would (400)."""

    def __init__(self, status: int = 400) -> None:
        self.status = status
        self.written: list[str] = []
        self.calls = 0

    def write(self, *, record: Sequence[Any], **_: object) -> None:
        self.calls += 1
        lines = [p.to_line_protocol() for p in record]
        if any("bad" in line for line in lines):
            raise ApiException(status=self.status, reason="Bad Request")
        self.written += lines


def batch(bad: set[int]) -> list[Envelope]:
    return [
        Envelope(
            "gw",
            n,
            Record(
                RecordKind.OEE, 1e9 + n, {"machine": "bad" if n in bad else f"m{n}", "line": "l", "oee": 0.5}
            ),
        )
        for n in range(16)
    ]


async def test_a_bad_point_is_isolated_and_the_rest_written() -> None:
    influx = InfluxSink(InfluxOutput(url="http://x", org="o", bucket="b"), TOPICS)
    fake = FakeWriteApi()
    influx._write_api = fake  # type: ignore[assignment]
    await influx.write(batch({3, 11}))
    assert len(fake.written) == 14
    assert influx.rejected_points == 2
    assert fake.calls < 16  # halving, not one request per point


@pytest.mark.parametrize("status", [401, 404, 429, 500, 503])
async def test_other_errors_raise_so_the_batch_is_retried(status: int) -> None:
    influx = InfluxSink(InfluxOutput(url="http://x", org="o", bucket="b"), TOPICS)
    influx._write_api = FakeWriteApi(status)  # type: ignore[assignment]
    with pytest.raises(OutputError, match=f"HTTP {status}"):
        await influx.write(batch({0}))
    assert influx.rejected_points == 0
