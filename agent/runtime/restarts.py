"""Keeping one loop alive: a poll loop, the KPI loop or a delivery loop that ends with an
unexpected exception is restarted after a capped, jittered backoff while every other loop goes on.

The first failure of a kind is logged with its traceback (it is a bug, and the traceback is what
fixes it); the same failure again is a one-line reminder, at most every DEVICE_FAULT_LOG_EVERY_S. The
caller's `on_crash` turns the devices or output concerned bad, with the reason, so /health and
the device status say what is wrong. Whether the process as a whole is unhealthy is not decided
here: a loop that keeps failing makes no progress, and the systemd watchdog (agent/service/supervision.py)
stops being fed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.backoff import Backoff
from agent.exceptions import describe
from agent.throttle import DEVICE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

RESTART_INITIAL_S = 1.0  # a crash is restarted within a second or so: a poll cycle is lost, no more
RESTART_MAX_S = 30.0  # half the unit's WatchdogSec: a loop that keeps failing is tried again often
STABLE_AFTER_S = 60.0  # a loop that ran this long before failing starts its backoff afresh


@dataclass
class LoopHealth:
    """What /health and /metrics show of one supervised loop."""

    name: str
    restarts: int = 0
    last_error: str | None = None
    last_failure_ts: float | None = None  # wall clock


async def keep_running(
    loop: Callable[[], Awaitable[None]],
    health: LoopHealth,
    *,
    on_crash: Callable[[Exception], None] | None = None,
    backoff: Backoff | None = None,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> None:
    """Run `loop` until it returns or is cancelled, restarting it after every unexpected exception."""
    backoff = backoff or Backoff(initial_s=RESTART_INITIAL_S, maximum_s=RESTART_MAX_S)
    throttle = EventThrottle(DEVICE_FAULT_LOG_EVERY_S, clock)  # the same failure again: no traceback
    logged: set[str] = set()
    while True:
        started = clock()
        try:
            await loop()
        except Exception as error:  # noqa: BLE001 - the point: nothing one loop does ends the others
            if clock() - started >= STABLE_AFTER_S:
                backoff.reset()
            delay = backoff.next_delay()
            health.last_failure_ts = wall_clock()
            _report(health, error, delay, logged, throttle)
            if on_crash is not None:
                try:
                    on_crash(error)
                except Exception:
                    log.exception("loop=%s event=crash_report_failed", health.name)
            await asyncio.sleep(delay)
            continue
        return


def _report(
    health: LoopHealth, error: Exception, delay: float, logged: set[str], throttle: EventThrottle
) -> None:
    reason = describe(error)
    health.restarts += 1
    health.last_error = reason
    kind = f"{type(error).__qualname__}:{error}"
    if kind not in logged:
        logged.add(kind)
        throttle.reset(kind)
        throttle.allow(kind)
        log.error(
            "loop=%s event=loop_crashed error=%r restart_in=%.1fs restarts=%d",
            health.name,
            reason,
            delay,
            health.restarts,
            exc_info=error,
        )
        return
    held = throttle.allow(kind)
    if held is not None:
        log.error(
            "loop=%s event=loop_crashed_again error=%r restart_in=%.1fs restarts=%d repeats=%d",
            health.name,
            reason,
            delay,
            health.restarts,
            held,
        )
