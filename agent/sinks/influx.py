"""InfluxDB output through influxdb-client's v2 write API (InfluxDB 2.x/3.x, VictoriaMetrics...).

Writes are synchronous batches drained from the outbox, never the client's own background
batching (which loses what it holds on exit). HTTP 204 is the acknowledgement. A 4xx other than
auth/not-found/rate-limit means bad data: the batch is halved until the bad points are isolated,
which are logged and skipped so one bad point never blocks the rest; 5xx, 429, auth and
connection errors raise, and the delivery loop retries from the same cursor with backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Self

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from agent.config.workshop import InfluxOutput
from agent.exceptions import OutputError
from agent.records import Envelope
from agent.sinks.points import to_points
from agent.sinks.topics import TopicRoot

log = logging.getLogger(__name__)

RETRYABLE_4XX = frozenset({401, 403, 404, 408, 429})  # credentials, bucket, or load: not the data's fault


class InfluxSink:
    def __init__(self, config: InfluxOutput, topics: TopicRoot) -> None:
        self.name = "influxdb"
        self.config = config
        self.topics = topics
        self.batch_size = config.batch_size
        self.replay_per_s = config.replay_per_s
        self.rejected_points = 0
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None

    async def __aenter__(self) -> Self:
        token = self.config.token.get_secret_value() if self.config.token else ""
        self._client = InfluxDBClient(
            url=self.config.url,
            token=token,
            org=self.config.org,
            timeout=int(self.config.timeout_s * 1000),
            enable_gzip=self.config.gzip,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await asyncio.to_thread(self._client.close)
        self._client = self._write_api = None

    async def write(self, batch: Sequence[Envelope]) -> None:
        points = [point for envelope in batch for point in to_points(envelope, self.topics)]
        if points:
            await asyncio.to_thread(self._write_isolating_bad_points, points)

    def _post(self, points: Sequence[Point]) -> None:
        if self._write_api is None:
            raise OutputError("influxdb", f"{self.config.url}: written to while not open")
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=list(points),
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant in the library
            )
        except HTTPError as error:
            raise OutputError("influxdb", f"{self.config.url}: {error}") from error

    def _write_isolating_bad_points(self, points: Sequence[Point]) -> None:
        try:
            self._post(points)
        except ApiException as error:
            status = int(error.status or 0)
            if status < 400 or status >= 500 or status in RETRYABLE_4XX:
                raise OutputError(
                    "influxdb", f"{self.config.url}: HTTP {status} {error.reason}: {_body(error)}"
                ) from error
            if len(points) == 1:
                self.rejected_points += 1
                log.error(  # noqa: TRY400 - a rejected point is bad data, not a crash: no traceback
                    "sink=influxdb event=point_rejected status=%d error=%r point=%r",
                    status,
                    _body(error),
                    points[0].to_line_protocol(),
                )
                return
            middle = len(points) // 2
            self._write_isolating_bad_points(points[:middle])
            self._write_isolating_bad_points(points[middle:])


def _body(error: ApiException) -> str:
    body = error.body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return text[:300]
