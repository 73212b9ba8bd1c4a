"""Logging: one event per line, key=value fields, friendly to journald and grep.

Under systemd (stderr is the journal stream) lines carry a syslog priority prefix instead of a
timestamp: journald stamps them itself and maps the prefix to its priority, so
`journalctl -p warning -u edge-agent` works. A fault that lasts for hours logs when it starts,
when it ends and as a reminder now and then (agent/throttle.py), not on every poll; the libraries'
own repeated errors go through the same throttle.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import TextIO

from agent.throttle import CONNECTION_FAULT_LOG_EVERY_S, EventThrottle

SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


# asyncua's certificate checks log as "asyncuagds.validate", outside its own "asyncua" tree
LIBRARY_LOGGERS = ("asyncua", "asyncuagds", "pymodbus")
# asyncio logs what a library's protocol raises ("Fatal error: protocol.data_received() call
# failed.", with a traceback) once per bad packet: a hostile or broken peer makes a flood of it.
# Its errors are throttled like the libraries'; its level stays, its own warnings are rare.
THROTTLED_LOGGERS = (*LIBRARY_LOGGERS, "asyncio")
# what pymodbus appends to an error: the last packets, one line each (Log.get_last_frames)
PACKET_DUMP_PREFIX = ">>>>> "
LIBRARY_KEYS_MAX = 1000  # distinct library messages remembered; beyond, the memory starts over
_VARYING = re.compile(r"0x[0-9a-fA-F]+|\d+")


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
    # Libraries log a failure on every retry, some with a traceback: their errors go through the
    # same throttle as the agent's own fault lines, as one line and then a count.
    handler.addFilter(LibraryThrottle(keep_tracebacks=level == "DEBUG"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pymodbus and asyncua log every request at INFO/DEBUG (asyncua the binary of whole endpoint
    # lists), even with the agent at DEBUG that drowns its own lines; our drivers report
    # connections and devices as events of their own. The libraries' errors still show, throttled.
    for library in LIBRARY_LOGGERS:
        logging.getLogger(library).setLevel(logging.ERROR)


def _is_throttled(name: str) -> bool:
    return any(name == library or name.startswith(library + ".") for library in THROTTLED_LOGGERS)


def _event_kind(record: logging.LogRecord, first_line: str) -> str:
    """What makes two library lines the same event: logger, exception type, and the first line of
    the text with its numbers and addresses (transaction ids, ports, object ids) left out."""
    error = record.exc_info[1] if record.exc_info else None
    kind = type(error).__name__ if error is not None else ""
    return f"{record.name} {kind} {_VARYING.sub('#', first_line)[:200]}"


class LibraryThrottle(logging.Filter):
    """A handler filter for the libraries' loggers (and asyncio's): an event that repeats (the same
    first line up to numbers and addresses, the same exception type) is let through once every
    `every_s`, with how many were held back. One event is one line: its traceback is folded into
    it as `error=Type: text`, and what follows its first line (pymodbus's packet dumps, asyncio's
    protocol and transport reprs) is left out; at DEBUG both stay."""

    def __init__(
        self,
        every_s: float = CONNECTION_FAULT_LOG_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
        *,
        keep_tracebacks: bool = False,
    ) -> None:
        super().__init__()
        self._throttle = EventThrottle(every_s, clock)
        self.keep_tracebacks = keep_tracebacks

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_throttled(record.name) or record.levelno < logging.WARNING:
            return True
        message = record.getMessage()
        first_line, *more = message.splitlines() or [""]
        if len(self._throttle) >= LIBRARY_KEYS_MAX:
            self._throttle.clear()
        held = self._throttle.allow(_event_kind(record, first_line))
        if held is None:
            return False
        if not self.keep_tracebacks:
            dumps = sum(1 for line in more if line.startswith(PACKET_DUMP_PREFIX))
            message = first_line + (f" packets_left_out={dumps}" if dumps else "")
            if record.exc_info:
                error = record.exc_info[1]
                if error is not None:
                    message += f" error={type(error).__name__}" + (f": {error}" if str(error) else "")
            record.exc_info = None
            record.exc_text = None
            record.stack_info = None
        record.msg = f"{message} repeats={held}" if held else message
        record.args = None
        return True
