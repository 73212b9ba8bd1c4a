"""Read planning: the fewest requests for the gap setting, never over the size limits."""

from __future__ import annotations

import itertools
from functools import cache

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.loader import load_profile
from agent.config.profile import DataType, Table, TagSpec
from agent.drivers.planner import plan_reads
from tests.conftest import CONFIGS


def tag(address: int, data_type: DataType = DataType.UINT16, table: Table = Table.HOLDING) -> TagSpec:
    return TagSpec(table=table, address=address, type=data_type)


def brute_force_minimum(spans: list[tuple[int, int]], max_gap: int, limit: int) -> int:
    """Fewest groups of consecutive spans (sorted) meeting the gap and size limits, by DP."""
    spans = sorted(spans)

    @cache
    def best(i: int) -> int:
        if i == len(spans):
            return 0
        result = len(spans) + 1
        end = spans[i][1]
        for j in range(i, len(spans)):
            if j > i and spans[j][0] - end > max_gap:
                break
            end = max(end, spans[j][1])
            if end - spans[i][0] > limit:
                break
            result = min(result, 1 + best(j + 1))
        return result

    return best(0)


@given(
    st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from([DataType.UINT16, DataType.FLOAT32, DataType.UINT64])),
        min_size=1,
        max_size=25,
        unique_by=lambda t: t[0],
    ),
    st.integers(0, 20),
    st.integers(4, 125),
)
def test_greedy_plan_is_minimal_and_within_limits(
    tags: list[tuple[int, DataType]], max_gap: int, limit: int
) -> None:
    specs = {f"t{address}": tag(address, data_type) for address, data_type in tags}
    requests = plan_reads(specs, addressing=0, max_gap=max_gap, max_registers=limit, max_bits=2000)
    spans = [(address, address + data_type.registers) for address, data_type in tags]
    assert len(requests) == brute_force_minimum(spans, max_gap, limit)
    covered = {t.name for r in requests for t in r.tags}
    assert covered == set(specs)
    for request in requests:
        assert request.count <= limit
        for planned in request.tags:
            assert request.address + planned.offset == planned.spec.address


def test_sample_grinder_profile_needs_one_request_per_table() -> None:
    profile, issues = load_profile(CONFIGS / "devices" / "sim-grinder.yaml")
    assert profile is not None, issues
    requests = plan_reads(profile.spec.tags, addressing=0, max_gap=8, max_registers=125, max_bits=2000)
    assert [(r.table, r.address, r.count) for r in requests] == [
        (Table.COIL, 0, 1),
        (Table.DISCRETE_INPUT, 0, 1),
        (Table.HOLDING, 0, 12),
        (Table.INPUT, 0, 2),
    ]
    holding = requests[2]
    assert holding.filled == 3  # registers 3, 8, 9 read only to save two requests


@pytest.mark.parametrize(("max_gap", "expected"), [(0, 5), (1, 3), (2, 3), (3, 2), (8, 2), (50, 1)])
def test_gap_setting_trades_requests_for_filled_registers(max_gap: int, expected: int) -> None:
    specs = {"a": tag(0), "b": tag(2, DataType.UINT32), "c": tag(5), "d": tag(9), "e": tag(50)}
    assert len(plan_reads(specs, addressing=0, max_gap=max_gap, max_registers=125, max_bits=2000)) == expected


def test_requests_never_exceed_125_registers_or_2000_bits() -> None:
    registers = {f"r{i}": tag(i) for i in range(300)}
    bits = {f"c{i}": tag(i, DataType.BOOL, Table.COIL) for i in range(4500)}
    requests = plan_reads({**registers, **bits}, addressing=0, max_gap=8, max_registers=125, max_bits=2000)
    counts = [(r.table, r.count) for r in requests]
    assert counts == [
        (Table.COIL, 2000),
        (Table.COIL, 2000),
        (Table.COIL, 500),
        (Table.HOLDING, 125),
        (Table.HOLDING, 125),
        (Table.HOLDING, 50),
    ]


def test_one_based_addressing_is_shifted_to_the_wire() -> None:
    [request] = plan_reads({"a": tag(40)}, addressing=1, max_gap=0, max_registers=125, max_bits=2000)
    assert request.address == 39


def test_a_word_and_its_bit_fields_are_read_once() -> None:
    specs = {
        "word": tag(10),
        **{f"b{n}": TagSpec(table=Table.HOLDING, address=10, type=DataType.BOOL, bit=n) for n in range(16)},
    }
    [request] = plan_reads(specs, addressing=0, max_gap=0, max_registers=125, max_bits=2000)
    assert (request.address, request.count, len(request.tags)) == (10, 1, 17)


def test_devices_limited_to_one_tag_per_request() -> None:
    specs = {f"t{i}": tag(i * 2, DataType.UINT32) for i in range(5)}
    assert len(plan_reads(specs, addressing=0, max_gap=8, max_registers=2, max_bits=2000)) == 5
    assert (
        len(
            list(itertools.chain(plan_reads(specs, addressing=0, max_gap=8, max_registers=10, max_bits=2000)))
        )
        == 1
    )


def test_slow_tags_are_planned_apart_with_their_interval() -> None:
    specs = {
        "status": tag(0),
        "count": tag(2, DataType.UINT32),
        "kwh": TagSpec(table=Table.HOLDING, address=4, type=DataType.FLOAT32, interval_s=10.0),
    }
    requests = plan_reads(specs, addressing=0, max_gap=8, max_registers=125, max_bits=2000)
    assert [(r.address, r.count, r.interval_s) for r in requests] == [(0, 4, None), (4, 2, 10.0)]
