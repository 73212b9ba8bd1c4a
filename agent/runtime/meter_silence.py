"""The log line for a silent meter: a metered machine that made parts over a closed shift while
its meter, read all along, counted 0 kWh (a meter not wired, a CT clamp fallen off, a wrong
register). The engine flags the shift's records `meter_silent` (agent/kpi/engine.py); this says
so in the log, once per machine and shift: a shift's closing records are committed once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from agent.kpi.engine import METER_SILENT
from agent.records import Record, RecordKind

log = logging.getLogger(__name__)


def warn_silent_meters(committed: Iterable[Record]) -> None:
    """A warning per closing shift energy record flagged meter_silent among records just committed."""
    for record in committed:
        fields = record.fields
        if (
            record.kind is not RecordKind.ENERGY
            or fields.get("period") != "shift"
            or not fields.get("final")
            or METER_SILENT not in fields.get("flags", ())
        ):
            continue
        meter = fields.get("meter")
        log.warning(
            "machine=%s meter=%s event=meter_silent day=%s shift=%s detail='parts were made while "
            "the meter counted 0 kWh all shift: kWh per part left null; check its wiring, CT clamp "
            "and kwh register'",
            fields.get("machine"),
            meter.get("id") if isinstance(meter, dict) else None,
            fields.get("day"),
            fields.get("shift"),
        )
