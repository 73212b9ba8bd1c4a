"""`edge-agent probe`: read a few registers once and show them decoded every plausible way, so an
engineer with a meter's manual (or without one) can find the register map in the field.

    edge-agent probe modbus-tcp://10.0.0.5:502 --unit 3 --holding 100 --count 4
    edge-agent probe "modbus-rtu:///dev/ttyUSB0?baudrate=9600&parity=E" --unit 11 --input 0 --count 10
    edge-agent probe modbus-rtu-over-tcp://10.0.0.9:8899 --unit 2 --coil 0 --count 16
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field, TypeAdapter, ValidationError
from pymodbus.exceptions import ModbusException
from rich.console import Console
from rich.table import Table as RichTable

from agent.config.connections import ModbusConnection
from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import DecodeError, decode
from agent.drivers.connect_errors import describe_connect_error, why_not_connected
from agent.drivers.modbus import new_client, read_table, reply_mismatch
from agent.drivers.modbus_exceptions import explain_exception
from agent.drivers.planner import FUNCTION_CODE

SCHEMES = ("modbus-tcp", "modbus-rtu-over-tcp", "modbus-rtu")
CONNECTION: TypeAdapter[ModbusConnection] = TypeAdapter(
    Annotated[ModbusConnection, Field(discriminator="transport")]
)
WIDE_TYPES = (DataType.INT32, DataType.UINT32, DataType.FLOAT32)
LONG_TYPES = (DataType.INT64, DataType.UINT64, DataType.FLOAT64)
# The profile's four orders for 64-bit values, by the names vendor manuals give them (A: the most
# significant byte): ABCD keeps registers and bytes in order, CDAB reverses the registers, BADC
# swaps the bytes inside each register, DCBA does both (fully little-endian).
ORDER_64_BIT = {
    ByteOrder.ABCD: "ABCDEFGH",
    ByteOrder.CDAB: "GHEFCDAB",
    ByteOrder.BADC: "BADCFEHG",
    ByteOrder.DCBA: "HGFEDCBA",
}


class ProbeError(Exception):
    """What went wrong, worded for the person at the machine."""


def _number(text: str) -> int | float | str:
    """Query values are text; baudrate=9600 means the number."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def connection_from_url(url: str, timeout_s: float) -> ModbusConnection:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in SCHEMES:
        raise ProbeError(f"unknown scheme '{parsed.scheme}': use one of {', '.join(SCHEMES)}://")
    options = {key: _number(value) for key, value in urllib.parse.parse_qsl(parsed.query)}
    fields: dict[str, object] = {"id": "probe", "transport": parsed.scheme, "timeout_s": timeout_s, **options}
    if parsed.scheme == "modbus-rtu":
        fields["serial_port"] = parsed.path
    else:
        fields["host"] = parsed.hostname or ""
        if parsed.port is not None:
            fields["port"] = parsed.port
    try:
        connection: ModbusConnection = CONNECTION.validate_python(fields)
    except ValidationError as error:
        problems = "; ".join(f"{e['loc'][-1]}: {e['msg']}" for e in error.errors())
        raise ProbeError(f"{url}: {problems}") from None
    return connection


@dataclass(frozen=True)
class ProbeRequest:
    table: Table
    address: int
    count: int
    unit: int


async def read_once(connection: ModbusConnection, request: ProbeRequest) -> list[int]:
    client = new_client(connection)
    where = f"{connection.endpoint} unit {request.unit}"
    try:
        try:
            async with asyncio.timeout(connection.timeout_s * 2):
                connected = await client.connect()
        except (TimeoutError, OSError) as error:
            raise ProbeError(
                f"cannot connect to {where}: {describe_connect_error(error, connection.timeout_s * 2)}"
            ) from None
        if not connected:
            raise ProbeError(f"cannot connect to {where}: {await _why_not_connected(connection)}")
        async with asyncio.timeout(connection.timeout_s + 1):
            response = await read_table(client, request.table, request.address, request.count, request.unit)
    except TimeoutError:
        raise ProbeError(_no_answer(where, connection)) from None
    except ModbusException as error:
        if "No response" in str(error):  # pymodbus's own timeout, at timeout_s
            raise ProbeError(_no_answer(where, connection)) from None
        raise ProbeError(f"{where}: {error}") from None
    except OSError as error:
        raise ProbeError(f"{where}: {describe_connect_error(error, connection.timeout_s)}") from None
    finally:
        client.close()
    if response.isError():
        code = int(getattr(response, "exception_code", -1))
        raise ProbeError(
            f"{where}: {explain_exception(code)} "
            f"[function {FUNCTION_CODE[request.table]:02d} at {request.address}, count {request.count}]"
        )
    mismatch = reply_mismatch(request.table, request.address, request.count, response)
    if mismatch is not None:
        raise ProbeError(f"{where}: {mismatch}")
    values = response.bits if request.table.is_bit_table else response.registers
    return [int(v) for v in values[: request.count]]


def _no_answer(where: str, connection: ModbusConnection) -> str:
    return (
        f"{where}: no answer within {connection.timeout_s:g} s (a wrong unit id, the device is off, "
        "or on a serial bus the wiring, baud rate or parity is wrong)"
    )


async def _why_not_connected(connection: ModbusConnection) -> str:
    reason = await why_not_connected(connection)
    return reason or "the connection failed, and a second try succeeded: an intermittent fault"


def _decoded(data_type: DataType, order: ByteOrder, words: Sequence[int]) -> str:
    """The agent's own decoder (codec.py), so a column reads exactly as the profile tag would."""
    try:
        value = decode(TagSpec(table=Table.HOLDING, address=0, type=data_type, order=order), list(words))
    except DecodeError as error:
        return str(error).split(" is ")[-1]  # NaN, inf
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _ascii(words: Sequence[int]) -> str:
    text = b"".join(w.to_bytes(2, "big") for w in words)
    return "".join(chr(b) if 32 <= b < 127 else "·" for b in text)


def report(request: ProbeRequest, values: list[int], console: Console) -> None:
    if request.table.is_bit_table:
        table = RichTable(title=f"unit {request.unit} {request.table.value}s {request.address}..")
        table.add_column("address", justify="right")
        table.add_column("value")
        for offset, bit in enumerate(values):
            table.add_row(str(request.address + offset), "1" if bit else "0")
        console.print(table)
        return
    console.print(_registers_table(request, values))
    for width, types in ((2, WIDE_TYPES), (4, LONG_TYPES)):
        if len(values) >= width:
            console.print(_wide_table(request, values, width, types))


def _registers_table(request: ProbeRequest, values: list[int]) -> RichTable:
    last = request.address + len(values) - 1
    table = RichTable(
        title=f"unit {request.unit} {request.table.value} registers {request.address}..{last}",
        caption=f"ASCII: {_ascii(values)!r}; BA: the register's two bytes swapped (profile order BADC)",
    )
    for column in ("address", "hex", "int16", "uint16", "int16 BA", "uint16 BA"):
        table.add_column(column, justify="right")
    for offset, word in enumerate(values):
        table.add_row(
            str(request.address + offset),
            f"0x{word:04X}",
            _decoded(DataType.INT16, ByteOrder.ABCD, [word]),
            str(word),
            _decoded(DataType.INT16, ByteOrder.BADC, [word]),
            _decoded(DataType.UINT16, ByteOrder.BADC, [word]),
        )
    return table


def _wide_table(request: ProbeRequest, values: list[int], width: int, types: Sequence[DataType]) -> RichTable:
    """One row per start address and byte order; `order` is what a profile tag's `order:` takes."""
    bits = 16 * width
    table = RichTable(
        title=f"{bits}-bit values from registers n..n+{width - 1}",
        caption="order: what a profile tag's `order:` takes; A is the most significant byte",
    )
    table.add_column("address", justify="right")
    table.add_column("order", justify="left")
    if width == 4:
        table.add_column("vendor name", justify="left")
    for data_type in types:
        table.add_column(data_type.value, justify="right")
    for offset in range(len(values) - width + 1):
        words = values[offset : offset + width]
        for index, order in enumerate(ByteOrder):
            row = [str(request.address + offset) if index == 0 else "", order.value]
            if width == 4:
                row.append(ORDER_64_BIT[order])
            row += [_decoded(t, order, words) for t in types]
            table.add_row(*row, end_section=index == len(ByteOrder) - 1)
    return table


async def probe(url: str, request: ProbeRequest, timeout_s: float, console: Console) -> None:
    connection = connection_from_url(url, timeout_s)
    values = await read_once(connection, request)
    report(request, values, console)
