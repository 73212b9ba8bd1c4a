"""One connection's poll loop, after Home Assistant's DataUpdateCoordinator: it owns the interval,
the health of the connection and of every device behind it, the logging of a failure and of the
recovery, and whether it still goes round (stall detection for the systemd watchdog).

Polling is fixed-rate: a late cycle does not shift the schedule, and skipped ticks are counted as
missed cycles. Each device's samples go to the KPI loop as soon as the device is read (a driver
that reads all devices at once: at the end of the cycle), so the first device of a connection
does not wait for the last; when the KPI loop cannot keep up, the queue is full and polling waits.
The connection's health (cycles, requests, device statuses) is accounted once per cycle. A device
that goes down is logged once, then every DEVICE_FAULT_LOG_EVERY_S with how many repeats were held
back, and once when it is back with how long it was down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from agent.drivers.base import Driver, ReadResult
from agent.exceptions import describe
from agent.samples import DeviceStatus, Sample
from agent.throttle import DEVICE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

STALL_INTERVALS = 3  # a poll loop slower than its watchdog limit is stalled only after 3 intervals


@dataclass
class ConnectionHealth:
    """What the agent knows of a connection and its devices; kept across a reload that leaves
    the connection's endpoint and interval as they were."""

    name: str
    endpoint: str
    interval_s: float
    cycles: int = 0
    missed_cycles: int = 0
    requests: int = 0
    last_cycle_s: float = 0.0
    errors: int = 0
    devices: dict[str, DeviceStatus] = field(default_factory=dict)
    last_good: dict[str, float] = field(default_factory=dict)


class ConnectionPoller:
    def __init__(
        self,
        driver: Driver,
        devices: list[str],
        *,
        deliver: Callable[[ReadResult], Awaitable[None]],
        clock: Callable[[], float],
        interval_s: float | None = None,
        refused: Mapping[str, str] | None = None,
        health: ConnectionHealth | None = None,
        throttle: EventThrottle | None = None,
    ) -> None:
        """deliver: hands samples to the KPI loop (waits while it is behind). refused:
        devices whose values the KPI engine refuses, with the reason (shown as their error however
        well they answer). health: the connection's health from before a reload, kept if its
        endpoint and interval are unchanged. throttle: shared by the pollers, so a device that
        stays down through a reload is not logged again at once."""
        self.driver = driver
        self.name = driver.name
        self.devices = devices
        self._deliver = deliver
        self._clock = clock
        interval = interval_s or driver.interval_s
        if health is not None and (health.endpoint, health.interval_s) == (driver.endpoint, interval):
            self.health = health
        else:
            self.health = ConnectionHealth(driver.name, driver.endpoint, interval)
        self._refused = refused if refused is not None else {}
        self._log = throttle if throttle is not None else EventThrottle(DEVICE_FAULT_LOG_EVERY_S)
        self.last_round = time.monotonic()  # when the loop last went round

    async def run(self) -> None:
        """Fixed-rate polling until cancelled: a late cycle does not shift the schedule."""
        health = self.health
        interval = health.interval_s
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        next_tick = loop.time()
        while True:
            started = time.perf_counter()
            result = await self.driver.read(self._hand_over)
            if me is not None and me.cancelling():
                # pymodbus awaits replies with asyncio.wait_for, which on Python 3.11 can swallow a
                # cancellation that races a reply (fixed in 3.12). Honour it here, or a stop would
                # leave this task blocked on a full queue that nobody drains any more.
                raise asyncio.CancelledError
            health.last_cycle_s = time.perf_counter() - started
            self.observe(result)
            await result.hand_over(self._hand_over)  # what the driver did not hand over itself
            next_tick += interval
            now = loop.time()
            if now > next_tick:
                missed = int((now - next_tick) // interval) + 1
                health.missed_cycles += missed
                next_tick += missed * interval
            await asyncio.sleep(next_tick - now)

    async def _hand_over(self, samples: list[Sample]) -> None:
        await self._deliver(ReadResult(samples))

    def observe(self, result: ReadResult) -> None:
        """Account one cycle: its requests, and each device's status (logged when it changes)."""
        health = self.health
        health.cycles += 1
        health.requests += result.requests
        self.last_round = time.monotonic()
        for reported in result.statuses:
            status = self._with_refusal(reported)
            self._log_change(health.devices.get(status.device), status)
            health.devices[status.device] = status
            if status.connected and status.error is None:
                health.last_good[status.device] = status.ts
            elif status.error is not None:
                health.errors += 1

    def set_bad(self, device: str, *, connected: bool, error: str) -> None:
        """A device is not well, for a reason found outside its reads (the KPI engine refused its
        values, the loop failed): logged as a read failure would be, shown until it reads well."""
        status = DeviceStatus(device, connected, self._clock(), error)
        self._log_change(self.health.devices.get(device), status)
        self.health.devices[device] = status
        self.health.errors += 1

    def crashed(self, error: Exception) -> None:
        """The loop failed (it is restarted): its devices are bad until it reads them again."""
        for device in self.devices:
            self.set_bad(device, connected=False, error=f"poll loop failed: {describe(error)}")

    def stalled(self, limit_s: float, now: float | None = None) -> bool:
        """Not gone round within limit_s, or within 3 intervals where that is longer."""
        now = time.monotonic() if now is None else now
        return now - self.last_round > max(limit_s, STALL_INTERVALS * self.health.interval_s)

    def _with_refusal(self, status: DeviceStatus) -> DeviceStatus:
        """A device whose values the engine refuses is not well, however well it answers."""
        reason = self._refused.get(status.device)
        if reason is None or status.error is not None:
            return status
        return DeviceStatus(status.device, status.connected, status.ts, reason)

    def _log_change(self, before: DeviceStatus | None, now: DeviceStatus) -> None:
        """A device going down or coming back is logged once; a device that stays down, every
        DEVICE_FAULT_LOG_EVERY_S; an unchanged good device, never."""
        device = now.device
        if now.error is None:
            if before is not None and before.error is not None:
                down_for = now.ts - self.health.last_good.get(device, now.ts)
                log.info("device=%s connection=%s event=device_back down_s=%.0f", device, self.name, down_for)
                self._log.reset(device)
            return
        held = self._log.allow(device)
        if held is None:
            return
        changed = before is None or before.error != now.error
        log.warning(
            "device=%s connection=%s event=%s error=%r repeats=%d",
            device,
            self.name,
            "device_error" if changed else "device_still_failing",
            now.error,
            held,
        )
