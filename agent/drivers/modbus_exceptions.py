"""Modbus exception codes, explained for the person at the machine.

Names and meanings: Modbus Application Protocol Specification V1.1b3, section 7 (MODBUS
Exception Responses). The advice after each meaning is what the code usually means when a
gateway or a meter answers a read in the field.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ExceptionCode:
    name: str
    meaning: str


EXCEPTION_CODES: dict[int, ExceptionCode] = {
    0x01: ExceptionCode(
        "illegal function",
        "the device does not support this function code (no such table: try --holding for "
        "--input, or --input for --holding)",
    ),
    0x02: ExceptionCode(
        "illegal data address",
        "the device has no such registers: the start address or start + count lies outside its "
        "map (a manual that counts from 1 means address - 1 on the wire)",
    ),
    0x03: ExceptionCode(
        "illegal data value",
        "the device refuses this request's count: read fewer registers at once, or start at the "
        "first register of a multi-register value",
    ),
    0x04: ExceptionCode(
        "server device failure",
        "the device failed while reading; an internal fault: check the device's own diagnostics",
    ),
    0x05: ExceptionCode(
        "acknowledge",
        "the device accepted the request but needs long to carry it out; read again later",
    ),
    0x06: ExceptionCode(
        "server device busy",
        "the device is busy with a long command; read again later, or poll it less often",
    ),
    0x07: ExceptionCode(
        "negative acknowledge",
        "the device cannot carry out this program function (legacy code, not used for reads)",
    ),
    0x08: ExceptionCode(
        "memory parity error",
        "the device found a parity error reading its memory (file records): the device needs service",
    ),
    0x0A: ExceptionCode(
        "gateway path unavailable",
        "the gateway has no path to this unit id: it is not configured for it, or it is overloaded",
    ),
    0x0B: ExceptionCode(
        "gateway target device failed to respond",
        "the gateway got no answer from this unit id: a wrong unit id, the device is off, or the "
        "serial side's wiring, baud rate or parity is wrong",
    ),
}


def explain_exception(code: int) -> str:
    """'exception 11 (0x0B, gateway target device failed to respond): the gateway got...'"""
    known = EXCEPTION_CODES.get(code)
    if known is None:
        return (
            f"exception {code} (0x{code:02X}): not defined by the Modbus specification; "
            "a vendor-specific code, see the device's manual"
        )
    return f"exception {code} (0x{code:02X}, {known.name}): {known.meaning}"
