"""The request decoder (struct, one unpack per byte order and request) against pymodbus's
convert_from_registers, tag by tag, for every type, byte order, scale, offset, value map and bit
field, on whole planned requests: contiguous, with gaps, and with tags that overlap."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.client.mixin import ModbusClientMixin

from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import DecodeError, RequestDecoder, decode
from agent.drivers.planner import plan_reads
from agent.samples import TagValue

FLOAT_FORMAT = {DataType.FLOAT32: ">f", DataType.FLOAT64: ">d"}
SCALES = (1.0, 0.1, 0.01, 10.0, -2.5, 1e300)
OFFSETS = (0.0, -40.0, 273.15)


def swap_bytes(registers: list[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def oracle(tag: TagSpec, registers: list[int]) -> TagValue:
    """One tag decoded the way the agent decoded before the request decoder: pymodbus's conversion
    of the registers put in ABCD order, then the value map or scale and offset."""
    if tag.bit is not None:
        return bool((registers[0] >> tag.bit) & 1)
    words = swap_bytes(registers) if tag.order.bytes_swapped else list(registers)
    if tag.type is DataType.STRING:
        return b"".join(w.to_bytes(2, "big") for w in words).decode("latin-1").strip("\x00 ")
    if tag.type in (DataType.BCD16, DataType.BCD32):
        number = 0
        for word in reversed(words) if tag.order.words_swapped else words:
            for shift in (12, 8, 4, 0):
                digit = (word >> shift) & 0xF
                if digit > 9:
                    raise DecodeError(f"0x{word:04X} is not BCD (nibble {digit:X})")
                number = number * 10 + digit
        raw: int | float = number
    else:
        order: Literal["big", "little"] = "little" if tag.order.words_swapped else "big"
        converted = ModbusClientMixin.convert_from_registers(
            words, ModbusClientMixin.DATATYPE[tag.type.name], word_order=order
        )
        assert isinstance(converted, int | float)
        raw = converted
    if isinstance(raw, float) and not math.isfinite(raw):
        raise DecodeError(f"{tag.type.value} is {raw}")
    if tag.values is not None:
        return tag.values.get(int(raw), f"unknown {raw}")
    if tag.scale == 1.0 and tag.offset == 0.0:
        return raw
    scaled = raw * tag.scale + tag.offset
    if not math.isfinite(scaled):
        raise DecodeError(f"{tag.type.value} {raw} x {tag.scale} is out of range")
    return float(f"{scaled:.12g}")


def outcome(tag: TagSpec, registers: list[int]) -> tuple[type, TagValue] | str:
    try:
        value = oracle(tag, registers)
    except DecodeError as error:
        return str(error)
    return (type(value), value)


@st.composite
def tags(draw: st.DrawFn) -> TagSpec:
    data_type = draw(st.sampled_from(list(DataType)))
    order = draw(st.sampled_from(list(ByteOrder)))
    extra: dict[str, object] = {}
    if data_type is DataType.BOOL:
        extra["bit"] = draw(st.integers(0, 15))
    elif data_type is DataType.STRING:
        extra["length"] = draw(st.integers(1, 4))
    else:
        extra["scale"] = draw(st.sampled_from(SCALES))
        extra["offset"] = draw(st.sampled_from(OFFSETS))
        if data_type not in FLOAT_FORMAT and draw(st.booleans()):
            extra["values"] = {0: "stopped", 1: "running", 3: "fault"}
    return TagSpec(table=Table.HOLDING, address=0, type=data_type, order=order, **extra)


def registers_of(data_type: DataType, order: ByteOrder, value: float) -> list[int]:
    """A float's registers in the tag's byte order, for NaN, infinity and ordinary floats alike."""
    data = struct.pack(FLOAT_FORMAT[data_type], value)
    words = [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]
    if order.words_swapped:
        words.reverse()
    return swap_bytes(words) if order.bytes_swapped else words


@dataclass
class Block:
    tags: list[tuple[int, TagSpec]]
    registers: list[int]


@st.composite
def blocks(draw: st.DrawFn) -> Block:
    """A request's tags at offsets that follow on, leave gaps or overlap, and its registers: random,
    with some floats written as drawn (NaN, infinities, subnormals, huge)."""
    placed: list[tuple[int, TagSpec]] = []
    end = 0
    for _ in range(draw(st.integers(1, 8))):
        tag = draw(tags())
        step = draw(st.sampled_from(["follow", "gap", "overlap"]))
        if step == "overlap" and end > 0:
            offset = draw(st.integers(0, end - 1))
        else:
            offset = end + (draw(st.integers(1, 3)) if step == "gap" else 0)
        placed.append((offset, tag))
        end = max(end, offset + tag.width)
    registers = draw(st.lists(st.integers(0, 0xFFFF), min_size=end, max_size=end))
    for offset, tag in placed:
        if tag.type in FLOAT_FORMAT and draw(st.booleans()):
            value = draw(st.floats(width=32 if tag.type is DataType.FLOAT32 else 64))
            registers[offset : offset + tag.width] = registers_of(tag.type, tag.order, value)
    placed.sort(key=lambda item: item[0])  # the planner's order: by address
    return Block(placed, registers)


@given(blocks())
def test_every_tag_decodes_as_pymodbus_converts_it(block: Block) -> None:
    decoder = RequestDecoder(Table.HOLDING, len(block.registers), block.tags)
    values, errors = decoder(block.registers)
    failed = dict(errors)
    assert len(values) == len(block.tags)
    for index, (offset, tag) in enumerate(block.tags):
        expected = outcome(tag, block.registers[offset : offset + tag.width])
        if isinstance(expected, str):
            assert values[index] is None
            assert str(failed[index]) == expected
        else:
            assert index not in failed
            assert (type(values[index]), values[index]) == expected, (tag, offset)


@given(st.lists(st.booleans(), min_size=1, max_size=40), st.data())
def test_coils_and_discrete_inputs_are_their_bits(bits: list[bool], data: st.DataObject) -> None:
    offsets = sorted(data.draw(st.sets(st.integers(0, len(bits) - 1), min_size=1)))
    table = data.draw(st.sampled_from([Table.COIL, Table.DISCRETE_INPUT]))
    tag = TagSpec(table=table, address=0, type=DataType.BOOL)
    padded = bits + [False] * (-len(bits) % 8)  # pymodbus pads bits to whole bytes
    values, errors = RequestDecoder(table, len(bits), [(o, tag) for o in offsets])(padded)
    assert values == [bits[o] for o in offsets]
    assert errors == []


def test_a_planned_block_of_one_byte_order_is_one_unpack() -> None:
    specs = {
        f"t{n}": TagSpec(table=Table.HOLDING, address=address, type=kind, **extra)  # type: ignore[arg-type]
        for n, (address, kind, extra) in enumerate(
            [
                (0, DataType.UINT16, {}),
                (1, DataType.INT16, {}),
                (2, DataType.UINT32, {}),
                (4, DataType.FLOAT32, {"scale": 0.1}),
                (6, DataType.BOOL, {"bit": 3}),
                (10, DataType.FLOAT64, {}),  # after a 3-register gap
            ]
        )
    }
    (request,) = plan_reads(specs, addressing=0, max_gap=8, max_registers=125, max_bits=2000)
    assert request.decode.unpacks == 1


UINT32 = TagSpec(table=Table.HOLDING, address=0, type=DataType.UINT32)
STATUS = TagSpec(table=Table.HOLDING, address=0, type=DataType.UINT16)


@pytest.mark.parametrize(
    ("first", "second", "unpacks"),
    [
        (UINT32, TagSpec(table=Table.HOLDING, address=2, type=DataType.UINT32, order=ByteOrder.CDAB), 2),
        (UINT32, TagSpec(table=Table.HOLDING, address=1, type=DataType.UINT16), 2),  # inside the first
        (STATUS, TagSpec(table=Table.HOLDING, address=0, type=DataType.BOOL, bit=5), 1),  # the register, once
    ],
)
def test_orders_and_overlaps_take_an_unpack_each(first: TagSpec, second: TagSpec, unpacks: int) -> None:
    specs = {"first": first, "second": second}
    (request,) = plan_reads(specs, addressing=0, max_gap=8, max_registers=125, max_bits=2000)
    assert request.decode.unpacks == unpacks


def test_a_reply_of_the_wrong_size_or_with_registers_over_16_bits_is_refused_whole() -> None:
    decoder = RequestDecoder(
        Table.HOLDING, 2, [(0, TagSpec(table=Table.HOLDING, address=0, type=DataType.UINT32))]
    )
    with pytest.raises(DecodeError, match="expected 2 register"):
        decoder([1])
    with pytest.raises(DecodeError, match="16-bit"):
        decoder([1, 70000])
    with pytest.raises(DecodeError, match="expected 2 register"):
        decode(TagSpec(table=Table.HOLDING, address=0, type=DataType.UINT32), [1, 2, 3])
