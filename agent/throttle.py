"""Logging a fault that lasts for hours: when it starts, as a reminder now and then with how many
repeats were held back, and (the caller's part) when it ends. Every throttled log line of the agent
goes through EventThrottle, at one of the intervals below.
"""

from __future__ import annotations

import time
from collections.abc import Callable

# A connection (a gateway, a PLC, an OPC UA server) that cannot be reached: every 10 minutes. Also
# the libraries' own repeated errors (agent/service/logsetup.py), which are about connections.
CONNECTION_FAULT_LOG_EVERY_S = 600.0
# A device that stays down, or a loop that keeps failing the same way: every 15 minutes.
DEVICE_FAULT_LOG_EVERY_S = 900.0
# An output that cannot deliver, or an outbox that cannot be written: records pile up, so once a
# minute.
STORAGE_FAULT_LOG_EVERY_S = 60.0


class EventThrottle:
    """At most one line per key every `every_s`; the next one says how many were held back."""

    def __init__(self, every_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: stay quiet. A number: log now, mentioning that many held back since the last line."""
        now = self._clock()
        last = self._last.get(key)
        if last is not None and now - last < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def reset(self, key: str) -> None:
        """The fault is over: the next occurrence is news and is logged at once."""
        self._last.pop(key, None)
        self._held.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)

    def clear(self) -> None:
        self._last.clear()
        self._held.clear()
