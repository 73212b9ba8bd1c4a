"""Logging: one event per line, key=value fields, friendly to journald and grep."""

from __future__ import annotations

import logging
import sys


def configure_logging(level: str = "INFO", stream: object = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)  # type: ignore[arg-type]
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # pymodbus logs every transaction failure with a traceback; our drivers report them as
    # device status and rate-limited events instead.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
