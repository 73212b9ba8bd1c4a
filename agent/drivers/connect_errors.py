"""Why a connection could not be made, in words that point at the fix.

pymodbus's connect() answers only True or False; when it says False, a plain TCP connect (or
opening the serial port) to the same place tells refused from unreachable from silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket

from agent.config.connections import ConnectionBase, ModbusRtuConnection, TcpEndpoint

REASONS = {
    errno.ECONNREFUSED: "connection refused: nothing listens on that port (a wrong port, or the "
    "device's server is switched off)",
    errno.EHOSTUNREACH: "no route to host: nothing answers at that address (the device is off, or "
    "the address or subnet is wrong)",
    errno.ENETUNREACH: "network unreachable: this machine has no route to that network (check its "
    "own address, netmask and gateway)",
    errno.ECONNRESET: "connection reset by the device (it may allow one client at a time, or not "
    "this machine's address)",
    errno.EACCES: "permission denied",
    errno.ENOENT: "no such device",
}


def describe_connect_error(error: BaseException, timeout_s: float) -> str:
    if isinstance(error, TimeoutError):
        return (
            f"timeout: no answer within {timeout_s:g} s (the device is off, the address is wrong, or "
            "a firewall drops the connection)"
        )
    if isinstance(error, socket.gaierror):
        return f"cannot resolve the host name ({error.strerror or error})"
    if isinstance(error, OSError) and error.errno in REASONS:
        return REASONS[error.errno]
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


async def tcp_connect_error(host: str, port: int, timeout_s: float) -> str | None:
    """None if a TCP connection to host:port can be opened now, else why not."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError) as error:
        return describe_connect_error(error, timeout_s)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return None


def serial_open_error(port: str) -> str | None:
    """None if the serial port can be opened now, else why not (missing, busy, no permission)."""
    import serial

    try:
        serial.Serial(port).close()
    except serial.SerialException as error:
        if error.errno == errno.ENOENT:
            return f"no serial port {port} (is the USB adapter plugged in? see ls /dev/serial/by-id/)"
        if error.errno == errno.EACCES:
            return f"no permission to open {port} (add the user to the dialout group)"
        if error.errno == errno.EBUSY:
            return f"{port} is in use by another program"
        return str(error)
    return None


async def why_not_connected(connection: ConnectionBase) -> str | None:
    """Why a Modbus connection could not be made, found by a plain TCP connect (or by opening the
    serial port): pymodbus's connect() says only that it failed. None: it can be made now (an
    intermittent fault), or the transport's driver says why itself (OPC UA)."""
    if isinstance(connection, ModbusRtuConnection):
        return serial_open_error(connection.serial_port)
    if isinstance(connection, TcpEndpoint):
        return await tcp_connect_error(connection.host, connection.port, connection.timeout_s * 2)
    return None
