"""Why a connection could not be made, in words that point at the fix, in the plant's language
(the catalogue's `connect.*` messages; English unless a catalogue is given).

pymodbus's connect() answers only True or False; when it says False, a plain TCP connect (or
opening the serial port) to the same place tells refused from unreachable from silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

from agent.config.connections import ConnectionBase, ModbusRtuConnection, TcpEndpoint
from agent.i18n import Catalogue, catalogue

REASONS = {  # errno -> its message in the catalogue
    errno.ECONNREFUSED: "connect.refused",
    errno.EHOSTUNREACH: "connect.no_route",
    errno.ENETUNREACH: "connect.network_unreachable",
    errno.ECONNRESET: "connect.reset",
    errno.EACCES: "connect.permission_denied",
    errno.ENOENT: "connect.no_such_device",
}


def describe_connect_error(error: BaseException, timeout_s: float, words: Catalogue | None = None) -> str:
    words = words or catalogue()
    if isinstance(error, TimeoutError):
        return words("connect.timeout", timeout=f"{timeout_s:g}")
    if isinstance(error, socket.gaierror):
        return words("connect.unresolved", detail=error.strerror or error)
    if isinstance(error, OSError) and error.errno in REASONS:
        return words(REASONS[error.errno])
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def tcp_connect_error(
    host: str, port: int, timeout_s: float, words: Catalogue | None = None
) -> str | None:
    """None if a TCP connection to host:port can be opened now, else why not."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError) as error:
        return describe_connect_error(error, timeout_s, words)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


SERIAL_REASONS = {  # errno -> its message in the catalogue, of a serial port that will not open
    errno.ENOENT: "connect.no_serial_port",
    errno.EACCES: "connect.serial_permission",
    errno.EBUSY: "connect.serial_busy",
}


def serial_open_error(port: str, words: Catalogue | None = None) -> str | None:
    """None if the serial port can be opened now, else why not (missing, busy, no permission)."""
    import serial

    try:
        serial.Serial(port).close()
    except serial.SerialException as error:
        if error.errno in SERIAL_REASONS:
            return (words or catalogue())(SERIAL_REASONS[error.errno], port=port)
        return str(error)
    return None


async def why_not_connected(connection: ConnectionBase, words: Catalogue | None = None) -> str | None:
    """Why a Modbus connection could not be made, found by a plain TCP connect (or by opening the
    serial port): pymodbus's connect() says only that it failed. None: it can be made now (an
    intermittent fault), or the transport's driver says why itself (OPC UA)."""
    if isinstance(connection, ModbusRtuConnection):
        return serial_open_error(connection.serial_port, words)
    if isinstance(connection, TcpEndpoint):
        return await tcp_connect_error(connection.host, connection.port, connection.timeout_s * 2, words)
    return None
