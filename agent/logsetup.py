"""Logging: one event per line, key=value fields, friendly to journald and grep.

Under systemd (stderr is the journal stream) lines carry a syslog priority prefix instead of a
timestamp: journald stamps them itself and maps the prefix to its priority, so
`journalctl -p warning -u edge-agent` works. A fault that lasts for hours logs when it starts,
when it ends and as a reminder now and then (EventThrottle), not on every poll.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        priority = SYSLOG_PRIORITY.get(record.levelno, 6)
        return f"<{priority}>{super().format(record)}"


def writes_to_journal(stream: TextIO) -> bool:
    """systemd sets JOURNAL_STREAM to the device:inode of the stream it connected to the journal."""
    expected = os.environ.get("JOURNAL_STREAM")
    if not expected:
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return expected == f"{stat.st_dev}:{stat.st_ino}"


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    target = stream or sys.stderr
    handler = logging.StreamHandler(target)
    if writes_to_journal(target):
        handler.setFormatter(JournalFormatter("%(levelname)s %(name)s %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pymodbus logs every transaction failure with a traceback; our drivers report them as
    # device status and rate-limited events instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    # asyncua logs every request at INFO and the binary of whole endpoint lists; our driver
    # reports sessions as events of its own.
    logging.getLogger("asyncua").setLevel(logging.ERROR)


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
