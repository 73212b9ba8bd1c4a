"""How long a read plan keeps a serial bus busy: the bytes on the wire at the line's speed.

Modbus over serial line v1.02: a read request is 8 bytes (unit, function, address, count, CRC); the
reply is unit, function, byte count, data and CRC; frames are separated by 3.5 characters of
silence. Device turnaround is not in the formula: it is the device's, and `timeout_s` bounds it.
"""

from __future__ import annotations

from agent.config.connections import ModbusRtuConnection
from agent.drivers.planner import ReadRequest

REQUEST_BYTES = 8
REPLY_OVERHEAD_BYTES = 5  # unit, function, byte count, CRC (2)
RTU_SILENCE_CHARACTERS = 3.5  # Modbus over serial line v1.02, 2.5.1.1: inter-frame silence t3.5
RTU_PAUSE_DEFAULT = 0.0  # the silence is in the formula; request_pause_s adds to it when configured


def reply_bytes(request: ReadRequest) -> int:
    data = -(-request.count // 8) if request.table.is_bit_table else 2 * request.count
    return REPLY_OVERHEAD_BYTES + data


def wire_seconds(request: ReadRequest, line: ModbusRtuConnection, pause_s: float) -> float:
    characters = REQUEST_BYTES + reply_bytes(request) + 2 * RTU_SILENCE_CHARACTERS
    return characters * line.character_s + pause_s


def cycle_seconds(requests: list[ReadRequest], line: ModbusRtuConnection, pause_s: float) -> float:
    return sum(wire_seconds(r, line, pause_s) for r in requests)
