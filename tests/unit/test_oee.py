"""OEE arithmetic: golden references, undefined values, roll-ups."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.kpi.oee import PERFORMANCE_ABOVE_ONE, TIME_RESOLUTION_S, OeeTotals, compute_oee, sum_totals

MIN = 60.0


def machine(
    pbt_s: float, apt_s: float, ideal_cycle_s: float, produced: float, good: float, **extra: Any
) -> OeeTotals:
    return OeeTotals(
        pbt_s=pbt_s,
        apt_s=apt_s,
        produced=produced,
        good=good,
        ideal_s=produced * ideal_cycle_s,
        ideal_good_s=good * ideal_cycle_s,
        **extra,
    )


def test_vorne_worked_example() -> None:
    totals = machine(
        420 * MIN, 373 * MIN, 1.0, 19_271, 19_271 - 423, fault_s=47 * MIN, planned_stop_s=60 * MIN
    )
    result = compute_oee(totals)
    assert result.availability == pytest.approx(0.8881, abs=5e-5)
    assert result.performance == pytest.approx(0.8611, abs=5e-5)
    assert result.quality == pytest.approx(0.9780, abs=5e-5)
    assert result.oee == pytest.approx(0.7479, abs=5e-5)
    assert result.teep == pytest.approx(0.6544, abs=5e-5)
    assert result.flags == ()


def test_roll_up_sums_times_and_counts_never_averages_percentages() -> None:
    first = machine(120 * MIN, 6400, 2.0, 2880, 2880)  # A 0.889, P 0.9, Q 1 -> 0.80
    second = machine(360 * MIN, 16200, 1.0, 10800, 9720)  # A 0.75, P 0.667, Q 0.9 -> 0.45
    assert compute_oee(first).oee == pytest.approx(0.80)
    assert compute_oee(second).oee == pytest.approx(0.45)
    workshop = compute_oee(sum_totals([first, second]))
    assert workshop.oee == pytest.approx(0.5375)
    assert workshop.oee != pytest.approx((0.80 + 0.45) / 2)


def test_nothing_planned_is_undefined_not_zero() -> None:
    result = compute_oee(OeeTotals(no_shift_s=3600))
    assert (result.availability, result.performance, result.quality, result.oee) == (None, None, None, None)


def test_planned_but_never_running_is_zero_oee_with_undefined_performance() -> None:
    result = compute_oee(OeeTotals(pbt_s=3600, fault_s=3600))
    assert result.availability == 0.0
    assert result.performance is None
    assert result.quality is None
    assert result.oee == 0.0


def test_running_without_output_has_undefined_quality() -> None:
    result = compute_oee(OeeTotals(pbt_s=3600, apt_s=1800))
    assert result.performance == 0.0
    assert result.quality is None
    assert result.oee == 0.0


def test_performance_above_one_is_published_as_measured_and_flagged() -> None:
    result = compute_oee(machine(3600, 3600, 2.0, 2000, 2000))
    assert result.performance == pytest.approx(2000 * 2.0 / 3600)
    assert result.flags == (PERFORMANCE_ABOVE_ONE,)


def test_nee_does_not_count_setup_as_loss() -> None:
    totals = machine(3600, 2700, 1.0, 2700, 2700, setup_s=900)
    result = compute_oee(totals)
    assert result.oee == pytest.approx(0.75)
    assert result.nee == pytest.approx(1.0)


def test_coverage_reports_time_without_data() -> None:
    assert compute_oee(OeeTotals(pbt_s=3000, apt_s=3000, offline_s=600)).coverage == pytest.approx(
        3000 / 3600
    )


totals_strategy = st.builds(
    lambda pbt, apt_share, ideal, produced, good_share, extra: machine(
        pbt, pbt * apt_share, ideal, produced, produced * good_share, planned_stop_s=extra
    ),
    st.floats(0, 86_400),
    st.floats(0, 1),
    st.floats(0.1, 60),
    st.integers(0, 50_000),
    st.floats(0, 1),
    st.floats(0, 7200),
)


@given(totals_strategy)
def test_oee_is_the_product_whenever_defined(totals: OeeTotals) -> None:
    r = compute_oee(totals)
    if r.availability is not None:
        assert 0.0 <= r.availability <= 1.0
    if r.quality is not None:
        assert 0.0 <= r.quality <= 1.0 + 1e-12
    if None not in (r.availability, r.performance, r.quality):
        assert r.oee == pytest.approx(r.availability * r.performance * r.quality)  # type: ignore[operator]


@given(totals_strategy)
def test_roll_up_of_one_machine_is_the_machine(totals: OeeTotals) -> None:
    assert compute_oee(sum_totals([totals])) == compute_oee(totals)


@given(st.lists(totals_strategy, min_size=1, max_size=6))
def test_roll_up_oee_is_ideal_good_time_over_planned_time(items: list[OeeTotals]) -> None:
    total = sum_totals(items)
    result = compute_oee(total)
    if total.pbt_s > TIME_RESOLUTION_S and total.apt_s > TIME_RESOLUTION_S and total.produced > 0:
        assert result.oee == pytest.approx(total.ideal_good_s / total.pbt_s)
