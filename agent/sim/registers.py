"""Lay a device's tag values out into Modbus tables, through the profile's own tag map."""

from __future__ import annotations

from collections.abc import Mapping

from agent.config.compiled import DeviceProfile
from agent.config.profile import Table
from agent.drivers.codec import encode, encode_bits
from agent.samples import TagValue

TagValues = Mapping[str, TagValue]


def table_sizes(profile: DeviceProfile) -> dict[Table, int]:
    """Registers (bits) each table needs, at least one, rounded up to 16 bits for bit tables."""
    sizes = dict.fromkeys(Table, 1)
    for tag in profile.spec.tags.values():
        end = profile.wire_address(tag) + tag.width
        sizes[tag.table] = max(sizes[tag.table], end)
    for table in (Table.COIL, Table.DISCRETE_INPUT):
        sizes[table] = -(-sizes[table] // 16) * 16
    return sizes


def render_table(profile: DeviceProfile, table: Table, values: TagValues, size: int) -> list[int]:
    """The table's contents: registers, or 0/1 per bit for coil and discrete-input tables."""
    image = [0] * size
    for name, tag in profile.spec.tags.items():
        if tag.table is not table:
            continue
        address = profile.wire_address(tag)
        value = values.get(name, 0)
        modulus = tag.wraps_at
        if modulus is not None and isinstance(value, int | float) and not isinstance(value, bool):
            value %= modulus if isinstance(value, float) else int(modulus)  # counters wrap as registers do
        if tag.bit is not None:
            image[address] = encode_bits(image[address], tag.bit, bool(value))
        else:
            image[address : address + tag.width] = encode(tag, value)
    return image
