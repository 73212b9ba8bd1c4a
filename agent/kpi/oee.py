"""OEE per ISO 22400-2 from times and counts: A = APT/PBT, P = ideal time/APT, Q = good/produced.

Undefined stays undefined (None, published as null): PBT = 0 leaves A and OEE undefined;
APT = 0 leaves P undefined and OEE 0 when PBT > 0; nothing produced leaves Q undefined (and
OEE 0 when PBT > 0: Σ ideal x good / PBT is 0).
Roll-ups add times, ideal times and counts and compute again; they never average ratios.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields

PERFORMANCE_ABOVE_ONE = "performance_above_1"  # wrong ideal cycle time, or a double count
TIME_RESOLUTION_S = 1e-3  # times are measured and published to the millisecond


@dataclass(frozen=True)
class OeeTotals:
    """Additive quantities over a period; the sum of two machines' totals is the line's."""

    pbt_s: float = 0.0  # planned busy time: shift time minus planned stops (and unknown time)
    apt_s: float = 0.0  # actual production time
    setup_s: float = 0.0
    idle_s: float = 0.0
    fault_s: float = 0.0
    micro_stop_s: float = 0.0  # short stops, inside idle/fault (or inside APT, as performance loss)
    micro_stops: int = 0
    planned_stop_s: float = 0.0
    no_shift_s: float = 0.0
    offline_s: float = 0.0
    produced: float = 0.0
    good: float = 0.0  # good parts counted: whole, and none for a machine whose quality is inferred
    ideal_s: float = 0.0  # sum of ideal cycle time x produced
    ideal_good_s: float = 0.0  # sum of ideal cycle time x good (inferred good included)
    # Machines that take their quality from another (quality_from): their parts are in `produced`,
    # their estimated good parts only here (an estimate, never published as a count).
    produced_inferred: float = 0.0
    good_inferred: float = 0.0
    # Parts counted after a gap whose production time was offline (in `produced`, not in ideal_s:
    # their time is not in APT, so Performance leaves them out)
    produced_unobserved: float = 0.0

    def __add__(self, other: OeeTotals) -> OeeTotals:
        return OeeTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def good_estimate(self) -> float:
        """Good parts counted plus those inferred: the divisor of per-good-piece figures."""
        return self.good + self.good_inferred

    @property
    def calendar_s(self) -> float:
        """All time of the period: the TEEP denominator."""
        return self.pbt_s + self.planned_stop_s + self.no_shift_s + self.offline_s


def sum_totals(items: Iterable[OeeTotals]) -> OeeTotals:
    total = OeeTotals()
    for item in items:
        total = total + item
    return total


@dataclass(frozen=True)
class OeeResult:
    availability: float | None
    performance: float | None
    quality: float | None
    oee: float | None
    nee: float | None  # setup not counted as loss
    teep: float | None  # over all calendar time
    coverage: float | None  # share of the period with data
    flags: tuple[str, ...]


def _ratio(numerator: float, denominator: float, resolution: float = 0.0) -> float | None:
    return numerator / denominator if denominator > resolution else None


def compute_oee(t: OeeTotals) -> OeeResult:
    availability = _ratio(t.apt_s, t.pbt_s, TIME_RESOLUTION_S)
    performance = _ratio(t.ideal_s, t.apt_s, TIME_RESOLUTION_S)
    # Quality weighted by ideal time: for one machine with one ideal cycle it is good/produced;
    # for a roll-up of machines with different cycle times it keeps OEE = A x P x Q equal to
    # sum(ideal x good) / PBT, where counting unlike pieces (good/produced) would not.
    quality = _ratio(t.ideal_good_s, t.ideal_s) if t.ideal_s > 0 else _ratio(t.good_estimate, t.produced)
    if t.produced <= 0:
        quality = None
    flags: list[str] = []
    if performance is not None and performance > 1.0:
        flags.append(PERFORMANCE_ABOVE_ONE)
    oee: float | None
    if availability is None:
        oee = None
    elif performance is None or quality is None:
        oee = 0.0  # planned to run, made nothing good: Q or P undefined, but no output is 0
    else:
        oee = availability * performance * quality
    nee: float | None = None
    net_time = t.pbt_s - t.setup_s
    if oee is not None and net_time > TIME_RESOLUTION_S:
        nee = oee * t.pbt_s / net_time
    teep = oee * t.pbt_s / t.calendar_s if oee is not None and t.calendar_s > TIME_RESOLUTION_S else None
    known = t.pbt_s + t.offline_s
    coverage = _ratio(t.pbt_s, known)
    return OeeResult(availability, performance, quality, oee, nee, teep, coverage, tuple(flags))
