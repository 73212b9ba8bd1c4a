"""Record fields: totals and ratios as published, rounded, with units in the key names."""

from __future__ import annotations

from agent.kpi.energy import CarbonFactor, EnergyTotals, energy_kpis
from agent.kpi.oee import OeeTotals, compute_oee

ROUND_S = 3  # times to the millisecond
ROUND_RATIO = 4
ROUND_KWH = 4
ROUND_PER_UNIT = 6


def rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def whole(count: float) -> int | float:
    """Part counts as whole numbers; a counter scaled to fractions (not a part count) as read."""
    return int(count) if float(count).is_integer() else round(count, 3)


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
        "produced": whole(totals.produced),
        "good": whole(totals.good),
        "produced_unobserved": whole(totals.produced_unobserved),
        **{key: rounded(value, ROUND_RATIO) for key, value in ratios.items()},
    }


def energy_fields(
    energy: EnergyTotals | None,
    totals: OeeTotals,
    kgce_per_kwh: float,
    carbon: CarbonFactor | None,
) -> dict[str, object]:
    """The energy figures of a scope over the machines whose energy was measured (`totals` are
    theirs). energy None or without readings: no data, every figure null. Carbon fields are named
    by the factor's gas (co2_kg for a CO2-only factor, co2e_kg for a CO2e one), with its id, year
    and value; without a factor configured there are none."""
    kpis = energy_kpis(energy, totals.produced, totals.good_estimate, kgce_per_kwh, carbon)
    measured = energy if energy is not None and energy.measured else None
    fields: dict[str, object] = {
        "kwh": rounded(kpis.kwh, ROUND_KWH),
        "kwh_producing": rounded(measured.producing_kwh if measured else None, ROUND_KWH),
        "kwh_idle": rounded(measured.idle_kwh if measured else None, ROUND_KWH),
        "kwh_no_shift": rounded(measured.no_shift_kwh if measured else None, ROUND_KWH),
        "kwh_unattributed": rounded(measured.unattributed_kwh if measured else None, ROUND_KWH),
        "kwh_per_unit": rounded(kpis.kwh_per_unit, ROUND_PER_UNIT),
        "kwh_per_good": rounded(kpis.kwh_per_good, ROUND_PER_UNIT),
        "idle_energy_share": rounded(kpis.idle_share, ROUND_RATIO),
        "kgce": rounded(kpis.kgce, ROUND_KWH),
        "kgce_per_unit": rounded(kpis.kgce_per_unit, ROUND_PER_UNIT),
        "kgce_per_good": rounded(kpis.kgce_per_good, ROUND_PER_UNIT),
        "kgce_per_kwh": kgce_per_kwh,
    }
    if carbon is not None:
        fields[f"{carbon.gas}_kg"] = rounded(kpis.carbon_kg, ROUND_KWH)
        fields[f"{carbon.gas}_kg_per_unit"] = rounded(kpis.carbon_kg_per_unit, ROUND_PER_UNIT)
        fields["grid_factor"] = carbon.id
        fields["grid_factor_year"] = carbon.year
        fields[f"kg_{carbon.gas}_per_kwh"] = carbon.kg_per_kwh
    return fields
