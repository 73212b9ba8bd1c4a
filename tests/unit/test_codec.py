"""Decoding against known byte strings, and encode/decode round trips for every type and order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import INTEGER_RANGE, DecodeError, decode, encode


def spec(data_type: DataType, order: ByteOrder = ByteOrder.ABCD, **extra: float) -> TagSpec:
    return TagSpec(table=Table.HOLDING, address=0, type=data_type, order=order, **extra)


def words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


# 123.456 as IEEE 754 float32 is 0x42F6E979: the example used in meter manuals for byte orders.
@pytest.mark.parametrize(
    ("order", "wire"),
    [
        (ByteOrder.ABCD, bytes.fromhex("42F6E979")),
        (ByteOrder.CDAB, bytes.fromhex("E97942F6")),
        (ByteOrder.BADC, bytes.fromhex("F64279E9")),
        (ByteOrder.DCBA, bytes.fromhex("79E9F642")),
    ],
)
def test_float32_in_every_byte_order(order: ByteOrder, wire: bytes) -> None:
    assert decode(spec(DataType.FLOAT32, order), words(wire)) == pytest.approx(123.456, abs=1e-4)
    assert encode(spec(DataType.FLOAT32, order), 123.456) == words(wire)


@pytest.mark.parametrize(
    ("data_type", "wire", "value"),
    [
        (DataType.INT16, "FF85", -123),
        (DataType.UINT16, "FF85", 65413),
        (DataType.INT32, "FFFE1DC0", -123456),
        (DataType.UINT32, "0001E240", 123456),
        (DataType.INT64, "FFFFFFFFFFFFFF85", -123),
        (DataType.UINT64, "00000002540BE400", 10_000_000_000),
        (DataType.FLOAT64, "405EDD2F1A9FBE77", 123.456),
    ],
)
def test_integer_and_double_golden_values(data_type: DataType, wire: str, value: float) -> None:
    assert decode(spec(data_type), words(bytes.fromhex(wire))) == pytest.approx(value)


def test_word_swapped_uint32_energy_register_with_scale() -> None:
    # 1234567.89 kWh in 0.01 kWh units = 123456789 = 0x075BCD15, low word first (CDAB)
    tag = spec(DataType.UINT32, ByteOrder.CDAB, scale=0.01)
    assert decode(tag, [0xCD15, 0x075B]) == 1234567.89
    assert tag.wraps_at == pytest.approx(2**32 * 0.01)


def test_scale_and_offset() -> None:
    assert decode(spec(DataType.INT16, scale=0.1, offset=-40.0), [0x0271]) == pytest.approx(22.5)


def test_bits_of_a_status_word() -> None:
    status = TagSpec(table=Table.HOLDING, address=0, type=DataType.BOOL, bit=3)
    assert decode(status, [0b1000]) is True
    assert decode(status, [0b0111]) is False


def test_nan_and_infinity_are_decode_errors_not_values() -> None:
    for value in (math.nan, math.inf):
        with pytest.raises(DecodeError):
            decode(spec(DataType.FLOAT32), words(struct.pack(">f", value)))


def test_wrong_register_count_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="expected 2"):
        decode(spec(DataType.UINT32), [1])


@given(st.sampled_from(sorted(INTEGER_RANGE)), st.sampled_from(list(ByteOrder)), st.data())
def test_integer_round_trip(data_type: DataType, order: ByteOrder, data: st.DataObject) -> None:
    low, high = INTEGER_RANGE[data_type]
    value = data.draw(st.integers(low, high))
    tag = spec(data_type, order)
    assert decode(tag, encode(tag, value)) == value


@given(st.sampled_from(list(ByteOrder)), st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_float32_round_trip(order: ByteOrder, value: float) -> None:
    tag = spec(DataType.FLOAT32, order)
    assert decode(tag, encode(tag, value)) == value
