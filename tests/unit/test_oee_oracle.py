"""Cross-check against the `oee` package from PyPI, where its definitions match ours.

Where they differ, on purpose:
- `oee` caps Performance at 1 (its `performance_raw` is uncapped); we publish P as measured and
  flag it, so the comparison uses performance_raw and skips OEE when P > 1;
- `oee` raises for planned time 0 or nothing produced; we publish null (tested in test_oee.py);
- `oee` gives P = 0 when the run time is 0; we publish null (undefined, not zero);
- `oee.aggregate` sums each member's capped net run time, so one member above P = 1 changes its
  roll-up; ours sums what was measured. Roll-ups are compared where every member has P <= 1.
"""

from __future__ import annotations

import oee
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from agent.kpi.oee import OeeTotals, compute_oee, sum_totals


@st.composite
def machines(draw: st.DrawFn) -> tuple[OeeTotals, oee.OEEResult]:
    pbt = draw(st.floats(60, 86_400))
    apt = pbt * draw(st.floats(0.05, 1))
    cycle = draw(st.floats(0.5, 30))
    produced = draw(st.integers(1, int(apt / cycle * 1.2) + 1))
    good = draw(st.integers(0, produced))
    planned_stop = draw(st.floats(0, 7200))
    ours = OeeTotals(
        pbt_s=pbt,
        apt_s=apt,
        fault_s=pbt - apt,
        planned_stop_s=planned_stop,
        produced=produced,
        good=good,
        ideal_s=produced * cycle,
        ideal_good_s=good * cycle,
    )
    theirs = oee.oee(
        pbt,
        run_time=apt,
        ideal_cycle_time=cycle,
        total_count=produced,
        good_count=good,
        all_time=pbt + planned_stop,
        planned_downtime=planned_stop,
    )
    return ours, theirs


def assert_same(ours: OeeTotals, theirs: oee.OEEResult) -> None:
    result = compute_oee(ours)
    assert result.availability == pytest.approx(theirs.availability)
    assert result.performance == pytest.approx(theirs.performance_raw)
    assert result.quality == pytest.approx(theirs.quality)
    if result.performance is not None and result.performance <= 1.0:
        assert result.oee == pytest.approx(theirs.oee)
        assert result.teep == pytest.approx(theirs.teep)


@given(machines())
def test_one_machine_agrees_with_the_oee_package(machine: tuple[OeeTotals, oee.OEEResult]) -> None:
    assert_same(*machine)


@given(st.lists(machines(), min_size=2, max_size=5))
def test_roll_up_agrees_with_the_oee_package_aggregate(items: list[tuple[OeeTotals, oee.OEEResult]]) -> None:
    assume(all(theirs.performance_raw <= 1.0 for _, theirs in items))
    assert_same(sum_totals(o for o, _ in items), oee.aggregate([t for _, t in items]))
