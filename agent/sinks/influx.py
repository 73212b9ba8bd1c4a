"""InfluxDB output through influxdb-client: the v2 write API (`api: v2`: InfluxDB 2.x/3.x,
VictoriaMetrics...) or the v1 `/write` endpoint (`api: v1`: InfluxDB 1.x, and the v1 compatibility
API of 2.x and 3.x).

Both build the same points (agent/sinks/points.py, influxdb-client's `Point`) and differ only in
the endpoint, its parameters and its credentials. The client's v2 write API has no /write, so the
v1 mode sends the points' line protocol through the client's own HTTP layer (same TLS, timeout
and error types), gzipped like the v2 mode's.

Writes are synchronous batches drained from the outbox, never the client's own background
batching (which loses what it holds on exit). HTTP 204 is the acknowledgement. A 4xx other than
auth/not-found/rate-limit means bad data: the batch is halved until the bad points are isolated,
which are logged and skipped so one bad point never blocks the rest; 5xx, 429, auth, a missing
database or bucket, and connection errors raise, and the delivery loop retries from the same
cursor with backoff, so those records stay in the outbox.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Sequence
from typing import Self

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write.point import Point
from influxdb_client.client.write_api import SYNCHRONOUS, WriteApi
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from agent.config.outputs import InfluxOutput
from agent.exceptions import OutputError
from agent.records import Envelope
from agent.sinks.points import to_points
from agent.sinks.topics import TopicRoot

log = logging.getLogger(__name__)

RETRYABLE_4XX = frozenset({401, 403, 404, 408, 429})  # credentials, bucket, or load: not the data's fault
V1_WRITE_PATH = "/write"
STATUS_MEANING = {
    401: "the credentials were refused",
    403: "the user may not write there",
    404: "no such database or bucket",
}


class InfluxSink:
    def __init__(self, config: InfluxOutput, topics: TopicRoot) -> None:
        self.name = "influxdb"
        self.config = config
        self.topics = topics
        self.rejected_points = 0
        self._client: InfluxDBClient | None = None
        self._write_api: WriteApi | None = None

    @property
    def target(self) -> str:
        """Where the points go, as the error messages name it."""
        config = self.config
        if config.api == "v1":
            rp = f" rp={config.retention_policy}" if config.retention_policy else ""
            return f"{config.url} api=v1 database={config.database}{rp}"
        return f"{config.url} api=v2 org={config.org} bucket={config.bucket}"

    async def __aenter__(self) -> Self:
        config = self.config
        token = config.token.get_secret_value() if config.token else ""
        password = config.password if config.api == "v1" and config.username is not None else None
        basic = password is not None
        if password is not None:
            # HTTP basic authentication, which every InfluxDB 1.x accepts; the client sends it as is
            token = f"{config.username}:{password.get_secret_value()}"
        self._client = InfluxDBClient(
            url=config.url,
            token=token,
            org=config.org or "-",
            timeout=int(config.timeout_s * 1000),
            enable_gzip=config.gzip,
            auth_basic=basic,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS) if config.api == "v2" else None
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
        try:
            if self.config.api == "v1":
                self._post_v1(points)
            else:
                self._post_v2(points)
        except HTTPError as error:
            raise OutputError("influxdb", f"{self.target}: {error}") from error

    def _post_v2(self, points: Sequence[Point]) -> None:
        config = self.config
        # InfluxOutput requires bucket and org with api: v2; __aenter__ opens the write API
        if self._write_api is None or config.bucket is None or config.org is None:
            raise OutputError("influxdb", f"{self.target}: written to while not open")
        self._write_api.write(
            bucket=config.bucket,
            org=config.org,
            record=list(points),
            write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant in the library
        )

    def _post_v1(self, points: Sequence[Point]) -> None:
        client = self._client
        if client is None:
            raise OutputError("influxdb", f"{self.target}: written to while not open")
        config = self.config
        query = [("db", config.database), ("precision", WritePrecision.MS)]
        if config.retention_policy:
            query.append(("rp", config.retention_policy))
        body = "\n".join(point.to_line_protocol() for point in points).encode("utf-8")
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if config.gzip:
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        client.api_client.call_api(
            V1_WRITE_PATH,
            "POST",
            query_params=query,
            header_params=headers,
            body=body,
            auth_settings=[],
            response_type=None,
            _return_http_data_only=True,
        )

    def _write_isolating_bad_points(self, points: Sequence[Point]) -> None:
        try:
            self._post(points)
        except ApiException as error:
            status = int(error.status or 0)
            if status < 400 or status >= 500 or status in RETRYABLE_4XX:
                meaning = f" ({STATUS_MEANING[status]})" if status in STATUS_MEANING else ""
                raise OutputError(
                    "influxdb", f"{self.target}: HTTP {status} {error.reason}{meaning}: {_body(error)}"
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
