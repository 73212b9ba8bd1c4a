"""The v1 write request as InfluxDB 2.x and 3.x receive it through their v1 compatibility API:
a token instead of a user, captured by a loopback HTTP server (InfluxDB 1.x on CI has no tokens)."""

from __future__ import annotations

import gzip
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from agent.config.outputs import InfluxOutput
from agent.records import Envelope, Record, RecordKind
from agent.sinks.influx import InfluxSink
from agent.sinks.topics import TopicRoot

Captured = list[tuple[str, dict[str, list[str]], dict[str, str], bytes]]


@pytest.fixture
def capture() -> Iterator[tuple[str, Captured]]:
    seen: Captured = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((url.path, urllib.parse.parse_qs(url.query), dict(self.headers), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


async def test_token_rp_gzip_and_line_protocol(capture: tuple[str, Captured]) -> None:
    url, seen = capture
    config = InfluxOutput(url=url, api="v1", database="shopfloor", retention_policy="autogen", token="t0ken")
    record = Record(RecordKind.WORKSHOP_OEE, 1_790_000_000.5, {"period": "shift", "shift": "day", "oee": 0.5})
    async with InfluxSink(config, TopicRoot("e", "s", "a", "gw")) as sink:
        await sink.write([Envelope("gw", 1, record)])
    [(path, query, headers, body)] = seen
    assert path == "/write"
    assert query == {"db": ["shopfloor"], "rp": ["autogen"], "precision": ["ms"]}
    assert headers["Authorization"] == "Token t0ken"
    assert headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).decode() == (
        "oee,agent=gw,area=a,enterprise=e,period=shift,scope=workshop,shift=day,site=s oee=0.5 1790000000500"
    )


async def test_no_credentials_no_header(capture: tuple[str, Captured]) -> None:
    url, seen = capture
    config = InfluxOutput(url=url, api="v1", database="shopfloor", gzip=False)
    record = Record(RecordKind.STATE, 1.0, {"machine": "m", "line": "l", "state": "idle", "since": "x"})
    async with InfluxSink(config, TopicRoot("e", "s", "a", "gw")) as sink:
        await sink.write([Envelope("gw", 1, record)])
    [(_, query, headers, body)] = seen
    assert "Authorization" not in headers
    assert "Content-Encoding" not in headers
    assert query == {"db": ["shopfloor"], "precision": ["ms"]}
    assert body.startswith(b"machine_state,agent=gw,")
