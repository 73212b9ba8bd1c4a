"""Register <-> value conversion for Modbus tags.

Decoding is compiled once per planned request (`RequestDecoder`): the request's registers are
packed into bytes once, and every tag of the block comes out of one `struct.unpack_from` per
byte order in use (one for a block of ABCD tags, however many tags it holds). Bit fields, value
maps, BCD digits, text, the NaN/infinity check and scale and offset are applied after, only to
the tags that need them. This is plain `struct` on the bytes of a read that pymodbus framed and
checked; pymodbus's `convert_from_registers` is the oracle it is tested against (every type, byte
order, scale and bit field, tests/unit/test_request_decoder.py). Encoding (simulators, tests) is
pymodbus's `convert_to_registers`, with what pymodbus leaves to the caller: bytes swapped inside
registers (BADC, DCBA), scale and offset.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, cast

from pymodbus.client.mixin import ModbusClientMixin

from agent.config.profile import DataType, Table, TagSpec
from agent.samples import TagValue

_PYMODBUS_TYPE = {
    DataType.INT16: ModbusClientMixin.DATATYPE.INT16,
    DataType.UINT16: ModbusClientMixin.DATATYPE.UINT16,
    DataType.INT32: ModbusClientMixin.DATATYPE.INT32,
    DataType.UINT32: ModbusClientMixin.DATATYPE.UINT32,
    DataType.INT64: ModbusClientMixin.DATATYPE.INT64,
    DataType.UINT64: ModbusClientMixin.DATATYPE.UINT64,
    DataType.FLOAT32: ModbusClientMixin.DATATYPE.FLOAT32,
    DataType.FLOAT64: ModbusClientMixin.DATATYPE.FLOAT64,
}
INTEGER_RANGE = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
# struct's format character for each type's raw number ('>' or '<' standard sizes, no padding)
_STRUCT_CODE = {
    DataType.BOOL: "H",  # a bit field: its whole register
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
    DataType.BCD16: "H",
    DataType.BCD32: "I",
}
FLOAT_TYPES = frozenset({DataType.FLOAT32, DataType.FLOAT64})

SIGNIFICANT_DIGITS = 12


class DecodeError(ValueError):
    """Registers that cannot be a value of the tag's type (wrong length, NaN, infinity)."""


# What turns a tag's raw number (or bytes, for text) as unpacked into its value, or DecodeError.
Finish = Callable[[Any], TagValue]
Unpack = Callable[[bytes], tuple[Any, ...]]
# A request's tag values in the request's tag order (None where the tag could not be decoded), and
# the decode errors by tag position.
Decoded = tuple[list[TagValue | None], list[tuple[int, DecodeError]]]


@dataclass(frozen=True)
class _Slot:
    """One number (or text) unpacked from the request's bytes."""

    swapped_view: bool  # read from the registers with the bytes inside each swapped
    endian: str  # struct's '>' or '<'
    offset: int  # in registers from the request's start
    code: str  # struct format character(s)
    width: int  # registers


class RequestDecoder:
    """Decodes every tag of one planned read from the registers (or bits) of its reply. Compiled
    once per request layout, so a poll does one pack and, per byte order in use, one unpack."""

    def __init__(self, table: Table, count: int, tags: Sequence[tuple[int, TagSpec]]) -> None:
        """tags: (offset of the tag's first register or bit in the request, tag), in request order."""
        self.count = count
        self.width = len(tags)
        self._bits = table.is_bit_table
        self._pick_bits = _picker([offset for offset, _ in tags])
        self._pack_wire = struct.Struct(f">{count}H").pack
        self._pack_swapped = struct.Struct(f"<{count}H").pack
        slots: dict[_Slot, int] = {}
        slot_of_tag: list[int] = []
        finishes: list[tuple[int, Finish]] = []
        if not self._bits:
            for index, (offset, tag) in enumerate(tags):
                slot = _slot(offset, tag)
                slot_of_tag.append(slots.setdefault(slot, len(slots)))
                finish = _finish(tag)
                if finish is not None:
                    finishes.append((index, finish))
        self._layers, order = _layers(list(slots))
        # unpacked values come layer by layer; tags take theirs by slot
        position = {slot_index: n for n, slot_index in enumerate(order)}
        indices = [position[s] for s in slot_of_tag]
        self._in_order = indices == list(range(len(indices)))
        self._pick = _picker(indices)
        self._finishes = finishes
        self._needs_swapped = any(swapped for _, swapped in self._layers)
        self._needs_wire = any(not swapped for _, swapped in self._layers)
        self.unpacks = len(self._layers)  # struct unpacks per reply: one per byte order, unless tags overlap

    def __call__(self, values: Sequence[int] | Sequence[bool]) -> Decoded:
        """The reply's registers (or bits) -> each tag's value. DecodeError if the reply as a whole
        cannot be this request's (too few values, a register beyond 16 bits)."""
        if self._bits:
            if len(values) < self.count:  # bits come padded to whole bytes
                raise DecodeError(f"expected {self.count} bit(s), got {len(values)}")
            return [bool(bit) for bit in self._pick_bits(values)], []
        if len(values) != self.count:
            raise DecodeError(f"expected {self.count} register(s), got {len(values)}")
        try:
            wire = self._pack_wire(*values) if self._needs_wire else b""
            swapped = self._pack_swapped(*values) if self._needs_swapped else b""
        except struct.error as error:
            raise DecodeError(f"registers are 16-bit: {error}") from error
        layers = self._layers
        if len(layers) == 1:
            unpack, from_swapped = layers[0]
            raw = unpack(swapped if from_swapped else wire)
        else:
            raw = ()
            for unpack, from_swapped in layers:
                raw += unpack(swapped if from_swapped else wire)
        decoded: list[TagValue | None] = list(raw) if self._in_order else list(self._pick(raw))
        errors: list[tuple[int, DecodeError]] = []
        for index, finish in self._finishes:
            try:
                decoded[index] = finish(decoded[index])
            except DecodeError as error:
                decoded[index] = None
                errors.append((index, error))
        return decoded, errors


def _picker(indices: list[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """The items at these positions, as a sequence, in one C call (itemgetter returns a bare item
    for one index)."""
    if len(indices) == 1:
        only = indices[0]
        return lambda items: (items[only],)
    if not indices:
        return lambda _items: ()
    return itemgetter(*indices)


def _slot(offset: int, tag: TagSpec) -> _Slot:
    """Where and how a tag's raw number lies in the request's bytes. A 32/64-bit value in order
    ABCD is big-endian on the wire and DCBA little-endian; BADC and CDAB are the same two read from
    the registers with their bytes swapped. A bit field reads its register as it is, whatever the
    order (as the profile's `bit` counts bits of the register's value)."""
    if tag.bit is not None:
        return _Slot(False, ">", offset, "H", 1)
    if tag.type is DataType.STRING:
        width = tag.width
        return _Slot(tag.order.bytes_swapped, ">", offset, f"{2 * width}s", width)
    width = tag.type.registers
    order = tag.order
    words_swapped = order.words_swapped if width > 1 else order.bytes_swapped
    swapped_view = order.bytes_swapped != words_swapped
    return _Slot(swapped_view, "<" if words_swapped else ">", offset, _STRUCT_CODE[tag.type], width)


def _layers(slots: list[_Slot]) -> tuple[list[tuple[Unpack, bool]], list[int]]:
    """Compiled unpackers, and the slot indices in the order their values come out. Slots of one
    byte view and endianness share a struct while they do not overlap (overlapping tags, such as
    a 32-bit value and its halves, go to another layer)."""
    groups: dict[tuple[bool, str], list[list[int]]] = {}
    for index in sorted(range(len(slots)), key=lambda i: (slots[i].offset, -slots[i].width)):
        slot = slots[index]
        layers = groups.setdefault((slot.swapped_view, slot.endian), [])
        for layer in layers:
            last = slots[layer[-1]]
            if last.offset + last.width <= slot.offset:
                layer.append(index)
                break
        else:
            layers.append([index])
    compiled: list[tuple[Unpack, bool]] = []
    order: list[int] = []
    for (swapped_view, endian), layers in groups.items():
        for layer in layers:
            fmt, end = endian, 0
            for index in layer:
                slot = slots[index]
                gap = 2 * (slot.offset - end)
                fmt += (f"{gap}x" if gap else "") + slot.code
                end = slot.offset + slot.width
            compiled.append((struct.Struct(fmt).unpack_from, swapped_view))
            order += layer
    return compiled, order


def _finish(tag: TagSpec) -> Finish | None:
    """What turns the tag's raw number into its value; None when the raw number is the value."""
    bit = tag.bit
    if bit is not None:
        return lambda register: bool((register >> bit) & 1)
    if tag.type is DataType.STRING:
        return lambda raw: raw.decode("latin-1").strip("\x00 ")
    if tag.type in (DataType.BCD16, DataType.BCD32):
        to_value = _to_value(tag)
        digits = 4 * tag.type.registers
        return lambda raw: to_value(_bcd(raw, digits))
    unscaled = tag.values is None and tag.scale == 1.0 and tag.offset == 0.0
    to_value = _to_value(tag)
    if tag.type in FLOAT_TYPES:
        name = tag.type.value

        def finite(raw: float) -> TagValue:
            if not math.isfinite(raw):
                raise DecodeError(f"{name} is {raw}")
            return raw if unscaled else to_value(raw)

        return finite
    return None if unscaled else to_value


def _to_value(tag: TagSpec) -> Finish:
    """A raw number -> the tag's value: named by the value map, else scaled."""
    names = tag.values
    if names is not None:
        return lambda raw: names.get(raw, f"unknown {raw}")
    if tag.scale == 1.0 and tag.offset == 0.0:
        return lambda raw: raw
    scale, offset, name = tag.scale, tag.offset, tag.type.value

    def scaled(raw: int | float) -> TagValue:
        value = raw * scale + offset
        if not math.isfinite(value):  # a huge float64 times a scale can overflow to infinity
            raise DecodeError(f"{name} {raw} x {scale} is out of range")
        # Scaling 2296 by 0.1 gives 229.60000000000002 in binary floating point; no instrument has
        # 12 significant digits, so the representation error is rounded off at that precision.
        return float(f"{value:.{SIGNIFICANT_DIGITS}g}")

    return scaled


def _bcd(raw: int, digits: int) -> int:
    """Binary-coded decimal: each nibble one digit, most significant first."""
    text = f"{raw:0{digits}x}"
    if text.isdigit():
        return int(text)
    position = next(i for i, digit in enumerate(text) if not digit.isdigit())
    word = int(text[position - position % 4 : position - position % 4 + 4], 16)
    raise DecodeError(f"0x{word:04X} is not BCD (nibble {text[position].upper()})")


_SHARED: dict[tuple[Table, int, tuple[tuple[int, int], ...]], tuple[tuple[TagSpec, ...], RequestDecoder]] = {}
SHARED_DECODERS_MAX = 4096


def request_decoder(table: Table, count: int, tags: Sequence[tuple[int, TagSpec]]) -> RequestDecoder:
    """RequestDecoder for a request layout, made once: the devices of one profile share their tag
    specs, so 200 devices of one model share one decoder per request. Bounded, so reloads cannot
    grow it."""
    key = (table, count, tuple((offset, id(spec)) for offset, spec in tags))
    entry = _SHARED.get(key)
    specs = tuple(spec for _, spec in tags)
    if entry is None or any(a is not b for a, b in zip(entry[0], specs, strict=True)):
        if len(_SHARED) >= SHARED_DECODERS_MAX:
            _SHARED.clear()
        entry = _SHARED[key] = (specs, RequestDecoder(table, count, tags))
    return entry[1]


def decode(tag: TagSpec, registers: Sequence[int]) -> TagValue:
    """Registers (or bits, for coil/discrete tables) of one tag as read from the wire -> its
    engineering value (the decoding of a one-tag request)."""
    if len(registers) != tag.width:
        raise DecodeError(f"expected {tag.width} register(s), got {len(registers)}")
    values, errors = RequestDecoder(tag.table, tag.width, [(0, tag)])(registers)
    if errors:
        raise errors[0][1]
    return cast("TagValue", values[0])  # a value that could not be decoded came with its error


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def encode(tag: TagSpec, value: bool | float | str) -> list[int]:
    """Engineering value -> registers; the inverse of decode (simulators and tests use it)."""
    if tag.table.is_bit_table:
        return [int(bool(value))]
    if tag.type is DataType.STRING:
        if tag.length is None:  # the profile schema requires a length for strings
            raise ValueError(f"string tag {tag.type.value} without a length")
        text = str(value).encode("latin-1")[: 2 * tag.length].ljust(2 * tag.length, b"\x00")
        words = [int.from_bytes(text[i : i + 2], "big") for i in range(0, len(text), 2)]
        return _swap_bytes(words) if tag.order.bytes_swapped else words
    if isinstance(value, str):
        if tag.values is None:
            raise ValueError(f"a {tag.type.value} tag takes a number, not {value!r}")
        value = next(number for number, name in tag.values.items() if name == value)
    if tag.type in (DataType.BCD16, DataType.BCD32):
        digits = f"{round((float(value) - tag.offset) / tag.scale):0{4 * tag.type.registers}d}"
        words = [int(digits[i : i + 4], 16) for i in range(0, len(digits), 4)]
        if tag.order.words_swapped:
            words.reverse()
        return _swap_bytes(words) if tag.order.bytes_swapped else words
    if tag.bit is not None:
        raise ValueError("a bit field is encoded as part of its register, see encode_bits")
    unscaled = tag.scale == 1.0 and tag.offset == 0.0
    # 64-bit counters exceed a float's 53-bit mantissa: integers without scaling stay integers.
    raw: float = value if unscaled and isinstance(value, int) else (float(value) - tag.offset) / tag.scale
    if tag.type in INTEGER_RANGE:
        low, high = INTEGER_RANGE[tag.type]
        number = round(raw)
        if tag.type.value.startswith("uint"):
            number %= high + 1  # counters wrap like the register they live in
        number = min(max(number, low), high)
        words = ModbusClientMixin.convert_to_registers(number, _PYMODBUS_TYPE[tag.type])
    else:
        words = ModbusClientMixin.convert_to_registers(raw, _PYMODBUS_TYPE[tag.type])
    if tag.order.words_swapped:
        words = list(reversed(words))
    return _swap_bytes(words) if tag.order.bytes_swapped else list(words)


def encode_bits(register: int, bit: int, value: bool) -> int:
    return register | (1 << bit) if value else register & ~(1 << bit)
