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


@dataclass(frozen=True)
class OeeTotals:
    """Additive quantities over a period; the sum of two machines' totals is the line's."""

    pbt_s: float = 0.0  # planned busy time: shift time minus planned stops (and unknown time)
    apt_s: float = 0.0  # actual production time
    setup_s: float = 0.0
    idle_s: float = 0.0
    fault_s: float = 0.0
    planned_stop_s: float = 0.0
    no_shift_s: float = 0.0
    offline_s: float = 0.0
    produced: float = 0.0
    good: float = 0.0
    ideal_s: float = 0.0  # sum of ideal cycle time x produced
    ideal_good_s: float = 0.0  # sum of ideal cycle time x good

    def __add__(self, other: OeeTotals) -> OeeTotals:
        return OeeTotals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

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


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def compute_oee(t: OeeTotals) -> OeeResult:
    availability = _ratio(t.apt_s, t.pbt_s)
    performance = _ratio(t.ideal_s, t.apt_s)
    quality = _ratio(t.good, t.produced)
    flags: list[str] = []
    if performance is not None and performance > 1.0:
        flags.append(PERFORMANCE_ABOVE_ONE)
    oee: float | None
    if t.pbt_s <= 0:
        oee = None
    elif t.apt_s <= 0 or t.produced <= 0:
        oee = 0.0  # planned to run, made nothing good: Q or P undefined, but no output is 0
    else:
        oee = (t.apt_s / t.pbt_s) * (t.ideal_s / t.apt_s) * (t.good / t.produced)
    nee: float | None = None
    net_time = t.pbt_s - t.setup_s
    if oee is not None and net_time > 0:
        nee = oee * t.pbt_s / net_time
    teep = oee * t.pbt_s / t.calendar_s if oee is not None and t.calendar_s > 0 else None
    known = t.pbt_s + t.offline_s
    coverage = _ratio(t.pbt_s, known)
    return OeeResult(availability, performance, quality, oee, nee, teep, coverage, tuple(flags))
