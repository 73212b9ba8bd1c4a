"""Serial bus time per request: bytes on the wire at the line's speed."""

from __future__ import annotations

import pytest

from agent.config.connections import ModbusRtuConnection
from agent.config.profile import DataType, Table, TagSpec
from agent.drivers.planner import PlannedTag, ReadRequest
from agent.drivers.timing import cycle_seconds, reply_bytes, wire_seconds

LINE = ModbusRtuConnection(id="bus", transport="modbus-rtu", serial_port="/dev/ttyUSB0", baudrate=9600)


def request(table: Table, count: int) -> ReadRequest:
    tag = TagSpec(table=table, address=0, type=DataType.BOOL if table.is_bit_table else DataType.UINT16)
    return ReadRequest(table, 0, count, (PlannedTag("t", tag, 0),))


def test_character_time_8n1_at_9600() -> None:
    assert LINE.character_s == pytest.approx(10 / 9600)


def test_ten_holding_registers_at_9600() -> None:
    # 8 request bytes + (5 + 20) reply bytes + 2 x 3.5 characters of silence = 40 characters
    assert reply_bytes(request(Table.HOLDING, 10)) == 25
    assert wire_seconds(request(Table.HOLDING, 10), LINE, 0.0) == pytest.approx(40 * 10 / 9600)


def test_bits_are_packed_eight_to_a_byte() -> None:
    assert reply_bytes(request(Table.COIL, 9)) == 5 + 2


def test_pauses_add_per_request() -> None:
    both = [request(Table.HOLDING, 1), request(Table.INPUT, 1)]
    assert cycle_seconds(both, LINE, 0.01) == pytest.approx(2 * (8 + 7 + 7) * 10 / 9600 + 0.02)
