"""Register <-> value conversion for Modbus tags.

The numeric conversion itself is pymodbus's (convert_from_registers / convert_to_registers);
this module adds what pymodbus leaves to the caller: bytes swapped inside registers (BADC,
DCBA), bit fields, scale and offset.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Literal

from pymodbus.client.mixin import ModbusClientMixin

from agent.config.profile import DataType, TagSpec
from agent.samples import TagValue

Decoder = Callable[[Sequence[int]], TagValue]

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


SIGNIFICANT_DIGITS = 12


class DecodeError(ValueError):
    """Registers that cannot be a value of the tag's type (wrong length, NaN, infinity)."""


def _swap_bytes(registers: Sequence[int]) -> list[int]:
    return [((r & 0xFF) << 8) | (r >> 8) for r in registers]


def _words(tag: TagSpec, registers: Sequence[int]) -> list[int]:
    """Registers in ABCD order: bytes inside registers and then the registers themselves put right."""
    words = _swap_bytes(registers) if tag.order.bytes_swapped else list(registers)
    return list(reversed(words)) if tag.order.words_swapped else words


def _bcd(words: Sequence[int]) -> int:
    value = 0
    for word in words:
        for shift in (12, 8, 4, 0):
            digit = (word >> shift) & 0xF
            if digit > 9:
                raise DecodeError(f"0x{word:04X} is not BCD (nibble {digit:X})")
            value = value * 10 + digit
    return value


def _text(tag: TagSpec, registers: Sequence[int]) -> str:
    words = _swap_bytes(registers) if tag.order.bytes_swapped else list(registers)
    raw = b"".join(w.to_bytes(2, "big") for w in words)
    return raw.decode("latin-1").strip("\x00 ")


def decode(tag: TagSpec, registers: Sequence[int]) -> TagValue:
    """Registers (or bits, for coil/discrete tables) as read from the wire -> engineering value."""
    return decoder(tag)(registers)


def decoder(tag: TagSpec) -> Decoder:
    """decode() for one tag, with everything about the tag looked up once: the planner compiles
    one per planned tag, so the poll loop does no per-read property lookups."""
    width = tag.width
    convert = _converter(tag)

    def decode_registers(registers: Sequence[int]) -> TagValue:
        if len(registers) != width:
            raise DecodeError(f"expected {width} register(s), got {len(registers)}")
        return convert(registers)

    return decode_registers


_SHARED: dict[int, tuple[TagSpec, Decoder]] = {}
SHARED_DECODERS_MAX = 8192


def shared_decoder(tag: TagSpec) -> Decoder:
    """decoder(tag), made once per tag spec: the devices of one profile share their specs, so 200
    devices of one model need 50 decoders, not 10,000. Bounded, so reloads cannot grow it."""
    entry = _SHARED.get(id(tag))
    if entry is None or entry[0] is not tag:
        if len(_SHARED) >= SHARED_DECODERS_MAX:
            _SHARED.clear()
        entry = _SHARED[id(tag)] = (tag, decoder(tag))
    return entry[1]


def _converter(tag: TagSpec) -> Decoder:
    if tag.table.is_bit_table:
        return lambda registers: bool(registers[0])
    bit = tag.bit
    if bit is not None:
        return lambda registers: bool((registers[0] >> bit) & 1)
    if tag.type is DataType.STRING:
        return partial(_text, tag)
    if tag.type in (DataType.BCD16, DataType.BCD32):

        def bcd(registers: Sequence[int]) -> TagValue:
            number = _bcd(_words(tag, registers))
            return _mapped(tag, number) if tag.values is not None else _scaled(tag, number)

        return bcd
    bytes_swapped = tag.order.bytes_swapped
    word_order: Literal["big", "little"] = "little" if tag.order.words_swapped else "big"
    data_type = _PYMODBUS_TYPE[tag.type]
    mapped = tag.values is not None

    def number(registers: Sequence[int]) -> TagValue:
        words = _swap_bytes(registers) if bytes_swapped else list(registers)
        raw = ModbusClientMixin.convert_from_registers(words, data_type, word_order=word_order)
        if not isinstance(raw, int | float):
            raise DecodeError(f"{tag.type.value} decoded to {type(raw).__name__}, not a number")
        if isinstance(raw, float) and not math.isfinite(raw):
            raise DecodeError(f"{tag.type.value} is {raw}")
        if mapped and isinstance(raw, int):
            return _mapped(tag, raw)
        return _scaled(tag, raw)

    return number


def _mapped(tag: TagSpec, raw: int) -> str:
    return (tag.values or {}).get(raw, f"unknown {raw}")


def _scaled(tag: TagSpec, raw: int | float) -> int | float:
    if tag.scale == 1.0 and tag.offset == 0.0:
        return raw
    # Scaling 2296 by 0.1 gives 229.60000000000002 in binary floating point; no instrument has
    # 12 significant digits, so the representation error is rounded off at that precision.
    scaled = raw * tag.scale + tag.offset
    if not math.isfinite(scaled):  # a huge float64 times a scale can overflow to infinity
        raise DecodeError(f"{tag.type.value} {raw} x {tag.scale} is out of range")
    return float(f"{scaled:.{SIGNIFICANT_DIGITS}g}")


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
