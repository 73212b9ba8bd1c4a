"""Meters whose calibration is overdue, warned once a day per meter.

GB 17167 asks a plant to keep its energy meters calibrated. A meter (or a machine's own energy
measurement) may state its calibration due date; from the day after it, its figures carry
`calibration_overdue: true` in every energy record, and the log says so once per local day.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field

from agent.kpi.engine import EngineSetup


@dataclass(frozen=True)
class Overdue:
    meter: str
    due: dt.date
    days: int  # days past the due date

    def log_fields(self) -> str:
        return (
            f"meter={self.meter} event=calibration_overdue due={self.due.isoformat()} "
            f"overdue_days={self.days} "
            "detail='its figures are flagged calibration_overdue until calibration_due is updated'"
        )


@dataclass
class CalibrationReminder:
    warned: dict[str, dt.date] = field(default_factory=dict)  # meter -> the local day it was last warned

    def due(self, setup: EngineSetup, now: float) -> list[Overdue]:
        """The meters overdue today not yet warned today (at most once per meter and local day)."""
        today = dt.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(setup.calendar.timezone)).date()
        found = []
        for meter in setup.meters:
            due = meter.info.calibration_due
            if due is None or not meter.info.overdue_on(today) or self.warned.get(meter.id) == today:
                continue
            self.warned[meter.id] = today
            found.append(Overdue(meter.id, due, (today - due).days))
        return found
