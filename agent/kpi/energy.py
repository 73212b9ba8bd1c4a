"""Energy per unit and carbon: kWh split by state, per piece, CO2e from the grid factor."""

from __future__ import annotations

from dataclasses import dataclass, fields

from agent.kpi.states import TimeBucket


@dataclass(frozen=True)
class EnergyTotals:
    producing_kwh: float = 0.0
    idle_kwh: float = 0.0  # idle, setup, fault and planned stops: energy without output
    no_shift_kwh: float = 0.0  # standby outside the shift calendar
    unattributed_kwh: float = 0.0  # the machine's state was unknown (offline)

    def __add__(self, other: EnergyTotals) -> EnergyTotals:
        return EnergyTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def total_kwh(self) -> float:
        return self.producing_kwh + self.idle_kwh + self.no_shift_kwh + self.unattributed_kwh


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
    return EnergyTotals(**{ENERGY_FIELD[bucket]: kwh})


@dataclass(frozen=True)
class EnergyKpis:
    kwh: float
    kwh_per_unit: float | None
    kwh_per_good: float | None
    idle_share: float | None
    co2e_kg: float | None
    co2e_kg_per_unit: float | None


def energy_kpis(
    energy: EnergyTotals, produced: float, good: float, kg_co2e_per_kwh: float | None
) -> EnergyKpis:
    kwh = energy.total_kwh
    co2e = kwh * kg_co2e_per_kwh if kg_co2e_per_kwh is not None else None
    return EnergyKpis(
        kwh=kwh,
        kwh_per_unit=kwh / produced if produced > 0 else None,
        kwh_per_good=kwh / good if good > 0 else None,
        idle_share=energy.idle_kwh / kwh if kwh > 0 else None,
        co2e_kg=co2e,
        co2e_kg_per_unit=co2e / produced if co2e is not None and produced > 0 else None,
    )
