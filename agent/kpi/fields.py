"""Record fields: totals and ratios as published, rounded, with units in the key names."""

from __future__ import annotations

from agent.kpi.energy import EnergyTotals, energy_kpis
from agent.kpi.oee import OeeTotals, compute_oee

ROUND_S = 3  # times to the millisecond
ROUND_RATIO = 4
ROUND_KWH = 4


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def oee_fields(totals: OeeTotals) -> dict[str, object]:
    result = compute_oee(totals)
    times = {
        "pbt_s": totals.pbt_s,
        "apt_s": totals.apt_s,
        "setup_s": totals.setup_s,
        "idle_s": totals.idle_s,
        "fault_s": totals.fault_s,
        "micro_stop_s": totals.micro_stop_s,
        "planned_stop_s": totals.planned_stop_s,
        "no_shift_s": totals.no_shift_s,
        "offline_s": totals.offline_s,
        "ideal_s": totals.ideal_s,
        # Σ(ideal cycle x good): OEE = ideal_good_s / pbt_s, so a store sums both over any records
        # (a crew's month, a plant's gateways) for an exact OEE, never an average of percentages
        "ideal_good_s": totals.ideal_good_s,
    }
    ratios = {
        "availability": result.availability,
        "performance": result.performance,
        "quality": result.quality,
        "oee": result.oee,
        "nee": result.nee,
        "teep": result.teep,
        "coverage": result.coverage,
    }
    return {
        **{key: round(value, ROUND_S) for key, value in times.items()},
        "micro_stops": totals.micro_stops,
        "produced": round(totals.produced, 3),
        "good": round(totals.good, 3),
        **{key: rounded(value, ROUND_RATIO) for key, value in ratios.items()},
    }


def energy_fields(
    energy: EnergyTotals, totals: OeeTotals, kg_co2e_per_kwh: float | None
) -> dict[str, object]:
    kpis = energy_kpis(energy, totals.produced, totals.good, kg_co2e_per_kwh)
    return {
        "kwh": round(kpis.kwh, ROUND_KWH),
        "kwh_producing": round(energy.producing_kwh, ROUND_KWH),
        "kwh_idle": round(energy.idle_kwh, ROUND_KWH),
        "kwh_no_shift": round(energy.no_shift_kwh, ROUND_KWH),
        "kwh_unattributed": round(energy.unattributed_kwh, ROUND_KWH),
        "kwh_per_unit": rounded(kpis.kwh_per_unit, 6),
        "kwh_per_good": rounded(kpis.kwh_per_good, 6),
        "idle_energy_share": rounded(kpis.idle_share, ROUND_RATIO),
        "co2e_kg": rounded(kpis.co2e_kg, ROUND_KWH),
        "co2e_kg_per_unit": rounded(kpis.co2e_kg_per_unit, 6),
    }
