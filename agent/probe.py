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
from rich.console import Console
from rich.table import Table as RichTable

from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.config.workshop import ModbusConnection
from agent.drivers.codec import DecodeError, decode
from agent.drivers.modbus import new_client, read_table
from agent.drivers.planner import FUNCTION_CODE

SCHEMES = ("modbus-tcp", "modbus-rtu-over-tcp", "modbus-rtu")
CONNECTION: TypeAdapter[ModbusConnection] = TypeAdapter(
    Annotated[ModbusConnection, Field(discriminator="transport")]
)
WIDE_TYPES = (DataType.INT32, DataType.UINT32, DataType.FLOAT32)


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
    try:
        async with asyncio.timeout(connection.timeout_s * 2):
            connected = await client.connect()
        if not connected:
            raise ProbeError(f"cannot connect to {connection.endpoint}")
        async with asyncio.timeout(connection.timeout_s + 1):
            response = await read_table(client, request.table, request.address, request.count, request.unit)
    except TimeoutError:
        raise ProbeError(
            f"{connection.endpoint} unit {request.unit}: no answer within {connection.timeout_s}s"
        ) from None
    except OSError as error:
        raise ProbeError(f"{connection.endpoint}: {error.strerror or error}") from None
    finally:
        client.close()
    if response.isError():
        code = getattr(response, "exception_code", "?")
        raise ProbeError(
            f"{connection.endpoint} unit {request.unit}: exception {code} for function "
            f"{FUNCTION_CODE[request.table]} at {request.address}+{request.count}"
            + (" (illegal data address: the device has no such registers)" if code == 2 else "")
        )
    values = response.bits if request.table.is_bit_table else response.registers
    return [int(v) for v in values[: request.count]]


def _decoded(data_type: DataType, order: ByteOrder, words: Sequence[int]) -> str:
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
    table = RichTable(
        title=f"unit {request.unit} {request.table.value} registers {request.address}.. "
        f"(ASCII: {_ascii(values)!r})"
    )
    for column in ("address", "hex", "int16", "uint16"):
        table.add_column(column, justify="right")
    for data_type in WIDE_TYPES:
        for order in ByteOrder:
            table.add_column(f"{data_type.value} {order.value}", justify="right")
    for offset, word in enumerate(values):
        row = [
            str(request.address + offset),
            f"0x{word:04X}",
            _decoded(DataType.INT16, ByteOrder.ABCD, [word]),
            str(word),
        ]
        pair = values[offset : offset + 2]
        row += [_decoded(t, o, pair) if len(pair) == 2 else "" for t in WIDE_TYPES for o in ByteOrder]
        table.add_row(*row)
    console.print(table)


async def probe(url: str, request: ProbeRequest, timeout_s: float, console: Console) -> None:
    connection = connection_from_url(url, timeout_s)
    values = await read_once(connection, request)
    report(request, values, console)
