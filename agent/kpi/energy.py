"""Energy per unit, standard coal and carbon: kWh split by state, per piece, kgce, CO2 or CO2e.

No data is not no consumption: a scope whose meters delivered no reading for a period has no kWh
(None, published as null), where one whose meters were read and counted nothing has 0 kWh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Literal

from agent.kpi.states import TimeBucket

Gas = Literal["co2", "co2e"]
# GB/T 2589-2020 综合能耗计算通则, Appendix A: electricity at its equivalent value (当量值),
# 3600 kJ/kWh over 29 307.6 kJ/kgce. The equal value (等价值) follows each year's coal use per
# kWh supplied; plants that must report with it configure their own coefficient.
GBT_2589_KGCE_PER_KWH = 0.1229


@dataclass(frozen=True)
class EnergyTotals:
    producing_kwh: float = 0.0
    idle_kwh: float = 0.0  # idle, setup, fault and planned stops: energy without output
    no_shift_kwh: float = 0.0  # standby outside the shift calendar
    unattributed_kwh: float = 0.0  # the machine's state was unknown (offline)
    readings: int = 0  # meter readings that brought this period kWh (or 0 kWh): none, no data

    def __add__(self, other: EnergyTotals) -> EnergyTotals:
        return EnergyTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def total_kwh(self) -> float:
        return self.producing_kwh + self.idle_kwh + self.no_shift_kwh + self.unattributed_kwh

    @property
    def measured(self) -> bool:
        return self.readings > 0


ENERGY_FIELD = {
    TimeBucket.ACTUAL_PRODUCTION: "producing_kwh",
    TimeBucket.SETUP_LOSS: "idle_kwh",
    TimeBucket.IDLE_LOSS: "idle_kwh",
    TimeBucket.FAULT_LOSS: "idle_kwh",
    TimeBucket.PLANNED_STOP: "idle_kwh",
    TimeBucket.NO_SHIFT: "no_shift_kwh",
    TimeBucket.OFFLINE: "unattributed_kwh",
}


def energy_in_bucket(bucket: TimeBucket, kwh: float) -> EnergyTotals:
    split = dict.fromkeys(ENERGY_FIELD.values(), 0.0)
    split[ENERGY_FIELD[bucket]] = kwh
    return EnergyTotals(
        split["producing_kwh"], split["idle_kwh"], split["no_shift_kwh"], split["unattributed_kwh"]
    )


@dataclass(frozen=True)
class CarbonFactor:
    """The grid emission factor in use, as every energy record names it (id, year, value)."""

    id: str
    gas: Gas  # co2: a CO2-only factor (the MEE grid factors); co2e: CO2 equivalent
    kg_per_kwh: float
    year: int


@dataclass(frozen=True)
class MeterInfo:
    """What GB 17167 asks a plant to keep for an energy meter, published with its figures."""

    accuracy_class: str | None = None
    ct_ratio: str | None = None
    calibration_due: dt.date | None = None

    def overdue_on(self, day: dt.date) -> bool:
        """Calibration is due by its date; from the day after, it is overdue."""
        return self.calibration_due is not None and day > self.calibration_due


@dataclass(frozen=True)
class EnergyKpis:
    kwh: float | None
    kwh_per_unit: float | None
    kwh_per_good: float | None
    idle_share: float | None
    kgce: float | None
    kgce_per_unit: float | None
    kgce_per_good: float | None
    carbon_kg: float | None
    carbon_kg_per_unit: float | None


def _per(value: float | None, count: float) -> float | None:
    return value / count if value is not None and count > 0 else None


def energy_kpis(
    energy: EnergyTotals | None,
    produced: float,
    good: float,
    kgce_per_kwh: float,
    carbon: CarbonFactor | None,
) -> EnergyKpis:
    """energy None (or without readings): no data, so every figure is None. `good` may be an
    estimate where quality is inferred from another machine: per good piece is a ratio, not a count."""
    kwh = energy.total_kwh if energy is not None and energy.measured else None
    kgce = kwh * kgce_per_kwh if kwh is not None else None
    carbon_kg = kwh * carbon.kg_per_kwh if kwh is not None and carbon is not None else None
    return EnergyKpis(
        kwh=kwh,
        kwh_per_unit=_per(kwh, produced),
        kwh_per_good=_per(kwh, good),
        idle_share=energy.idle_kwh / kwh if energy is not None and kwh is not None and kwh > 0 else None,
        kgce=kgce,
        kgce_per_unit=_per(kgce, produced),
        kgce_per_good=_per(kgce, good),
        carbon_kg=carbon_kg,
        carbon_kg_per_unit=_per(carbon_kg, produced),
    )
