"""Draining the outbox into one sink: in order, acknowledged, retried, paced, observed.

The cursor moves only after the sink's write returned, and a write returns only once the broker
or store acknowledged (MQTT PUBACK, HTTP 204). A failed write is retried with capped, jittered
backoff from the same cursor: at-least-once, in sequence order. A backlog after an outage is
replayed at the sink's `replay_per_s` (ReplayPace: a burst of up to a second's worth goes at
once, only a backlog that lasts is slowed); records are never reordered to let newer ones overtake,
because consumers rely on order per topic (the retained state of a machine must be its latest).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.backoff import Backoff
from agent.config.outputs import DEFAULT_RETRY_MAX_S
from agent.delivery.outbox import AsyncOutbox, OutboxError
from agent.exceptions import describe
from agent.sinks.base import Sink
from agent.throttle import STORAGE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

WRITE_TIMEOUT_S = 60.0
RATE_WINDOW_S = 10.0
FAILED = "delivery_failed"  # the throttle's key: a sink that is down for hours logs once a minute


@dataclass
class DeliveryStats:
    sink: str
    connected: bool = False
    accept_loss: bool = False  # said in the output's status and /health: at-most-once, not at-least-once
    delivered: int = 0
    failures: int = 0
    last_error: str | None = None
    backlog_records: int = 0
    backlog_bytes: int = 0
    oldest_undelivered_ts: float | None = None
    recent: deque[tuple[float, int]] = field(default_factory=deque)

    def delivered_per_s(self, now: float) -> float:
        while self.recent and self.recent[0][0] < now - RATE_WINDOW_S:
            self.recent.popleft()
        return sum(n for _, n in self.recent) / RATE_WINDOW_S


class ReplayPace:
    """At most `per_s` records a second on average, with up to one second's worth at once (a token
    bucket). A burst, such as a shift's closing records or the first publication after a restart,
    goes out whole; only a backlog that lasts is slowed to the rate. Pausing after every full
    batch instead held live records behind a burst of six batches for half a second."""

    def __init__(self, per_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_s = per_s
        self._clock = clock
        self._allowance = per_s
        self._at = clock()

    def pause_after(self, records: int) -> float:
        """Seconds to wait after sending `records`, so the average stays within the rate."""
        now = self._clock()
        self._allowance = min(self.per_s, self._allowance + (now - self._at) * self.per_s) - records
        self._at = now
        return max(0.0, -self._allowance / self.per_s)


class SinkDelivery:
    def __init__(
        self,
        sink: Sink,
        outbox: AsyncOutbox,
        agent: str,
        *,
        batch_size: int,
        replay_per_s: float,
        retry_max_s: float = DEFAULT_RETRY_MAX_S,
        accept_loss: bool = False,
    ) -> None:
        self.sink = sink
        self.outbox = outbox
        self.agent = agent
        self.batch_size = batch_size
        self.replay_per_s = replay_per_s
        self._pace = ReplayPace(replay_per_s)
        self.stats = DeliveryStats(sink.name, accept_loss=accept_loss)
        self.wake = asyncio.Event()
        self._backoff = Backoff(initial_s=min(0.5, retry_max_s), maximum_s=retry_max_s)
        self._log = EventThrottle(STORAGE_FAULT_LOG_EVERY_S)

    async def run(self) -> None:
        while True:
            batch = await self.outbox.pending(self.agent, self.sink.name, self.batch_size)
            if not batch:
                self.wake.clear()
                await self.refresh_backlog()
                await self.wake.wait()
                continue
            try:
                async with asyncio.timeout(WRITE_TIMEOUT_S):
                    await self.sink.write(batch)
            except Exception as error:  # noqa: BLE001 - any sink failure means: keep the cursor, retry
                self._failed(error)
                await self.refresh_backlog()  # a sink that is down is when the backlog matters
                await asyncio.sleep(self._backoff.next_delay())
                continue
            try:
                await self.outbox.ack(self.sink.name, batch[-1].seq)
            except OutboxError as error:  # delivered, but not recorded: it will be sent again (at-least-once)
                self._failed(error)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            self._backoff.reset()
            self._log.reset(FAILED)
            self.stats.connected = True
            self.stats.delivered += len(batch)
            self.stats.recent.append((time.monotonic(), len(batch)))
            await self.refresh_backlog()
            pause = self._pace.pause_after(len(batch))
            if pause > 0:
                await asyncio.sleep(pause)

    def crashed(self, error: Exception) -> None:
        """The loop failed (it is restarted): the output shows as down, with the reason, until it
        delivers again. Its cursor did not move, so nothing is lost."""
        self.stats.connected = False
        self.stats.failures += 1
        self.stats.last_error = f"delivery loop failed: {describe(error)}"

    async def refresh_backlog(self) -> None:
        stats = await self.outbox.stats(self.sink.name)
        self.stats.backlog_records = stats.records
        self.stats.backlog_bytes = stats.bytes
        self.stats.oldest_undelivered_ts = stats.oldest_ts

    def _failed(self, error: Exception) -> None:
        self.stats.connected = False
        self.stats.failures += 1
        self.stats.last_error = str(error) or type(error).__name__
        if self._log.allow(FAILED) is not None:
            log.warning(
                "sink=%s event=delivery_failed error=%r failures=%d",
                self.sink.name,
                self.stats.last_error,
                self.stats.failures,
            )
