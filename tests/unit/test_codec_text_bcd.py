"""Strings, BCD and value maps: golden register contents, round trips, config errors."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import DecodeError, decode, encode


def tag(data_type: DataType, order: ByteOrder = ByteOrder.ABCD, **extra: object) -> TagSpec:
    return TagSpec(table=Table.HOLDING, address=0, type=data_type, order=order, **extra)


@pytest.mark.parametrize(
    ("order", "registers"),
    [
        (ByteOrder.ABCD, [0x5344, 0x4D36, 0x3330, 0x0000]),  # "SDM630", NUL padded
        (ByteOrder.BADC, [0x4453, 0x364D, 0x3033, 0x0000]),  # bytes swapped inside each register
    ],
)
def test_string_nameplate(order: ByteOrder, registers: list[int]) -> None:
    nameplate = tag(DataType.STRING, order, length=4)
    assert decode(nameplate, registers) == "SDM630"
    assert encode(nameplate, "SDM630") == registers


def test_string_trims_spaces_and_nuls() -> None:
    assert decode(tag(DataType.STRING, length=3), [0x4142, 0x2020, 0x0000]) == "AB"


@pytest.mark.parametrize(
    ("data_type", "order", "registers", "value"),
    [
        (DataType.BCD16, ByteOrder.ABCD, [0x1234], 1234),
        (DataType.BCD32, ByteOrder.ABCD, [0x0012, 0x3456], 123456),
        (DataType.BCD32, ByteOrder.CDAB, [0x3456, 0x0012], 123456),
    ],
)
def test_bcd(data_type: DataType, order: ByteOrder, registers: list[int], value: int) -> None:
    assert decode(tag(data_type, order), registers) == value
    assert encode(tag(data_type, order), value) == registers


def test_bcd_with_scale_as_meters_count_hundredths() -> None:
    assert decode(tag(DataType.BCD32, scale=0.01), [0x0012, 0x3456]) == 1234.56


def test_a_nibble_above_nine_is_not_bcd() -> None:
    with pytest.raises(DecodeError, match="not BCD"):
        decode(tag(DataType.BCD16), [0x12A4])


def test_value_map_names_the_value_and_keeps_unknown_ones_visible() -> None:
    mode = tag(DataType.UINT16, values={0: "stopped", 1: "auto", 2: "manual"})
    assert decode(mode, [2]) == "manual"
    assert decode(mode, [7]) == "unknown 7"
    assert encode(mode, "auto") == [1]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"type": "string"}, "'length'"),
        ({"type": "uint16", "length": 2}, "'length'"),
        ({"type": "float32", "values": {1: "on"}}, "value map"),
    ],
)
def test_config_errors(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TagSpec.model_validate({"table": "holding", "address": 0, **fields})
