"""What probe says about Modbus exceptions, failed connections and 64-bit byte orders."""

from __future__ import annotations

import errno
import socket

import pytest

from agent.commands.probe import ORDER_64_BIT
from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import decode
from agent.drivers.connect_errors import describe_connect_error
from agent.drivers.modbus_exceptions import EXCEPTION_CODES, explain_exception
from agent.i18n import catalogue


@pytest.mark.parametrize("code", range(1, 12))
def test_every_exception_code_from_01_to_0b_is_explained(code: int) -> None:
    text = explain_exception(code)
    assert text.startswith(f"exception {code} (0x{code:02X}")
    if code == 9:  # not assigned by the specification
        assert "not defined by the Modbus specification" in text
    else:
        assert EXCEPTION_CODES[code].name in text
        assert len(text) > 60  # a meaning, not just a name


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "connection refused"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "no route to host"),
        (OSError(errno.ENETUNREACH, "Network is unreachable"), "network unreachable"),
        (TimeoutError(), "timeout: no answer within 2 s"),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "cannot resolve the host name"),
    ],
)
def test_connection_errors_name_their_reason(error: BaseException, words: str) -> None:
    assert describe_connect_error(error, 2.0).startswith(words)


@pytest.mark.parametrize("order", list(ByteOrder))
def test_64_bit_vendor_names_say_where_each_byte_is_on_the_wire(order: ByteOrder) -> None:
    """The byte named A is the value's most significant; the vendor name lists the bytes in the
    order they travel. Decoding those wire bytes with the profile's order gives the value back."""
    value = 0x0102030405060708
    by_letter = {letter: (value >> (8 * (7 - i))) & 0xFF for i, letter in enumerate("ABCDEFGH")}
    wire = [by_letter[letter] for letter in ORDER_64_BIT[order]]
    registers = [(wire[i] << 8) | wire[i + 1] for i in range(0, 8, 2)]
    tag = TagSpec(table=Table.HOLDING, address=0, type=DataType.UINT64, order=order)
    assert decode(tag, registers) == value


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "连接被拒绝：该端口没有服务在监听"),
        (TimeoutError(), "超时：2 秒内无应答"),
    ],
)
def test_connection_errors_are_said_in_the_plant_language(error: BaseException, words: str) -> None:
    """run --once speaks the workshop's language, and so does its reason for a failed connect."""
    assert describe_connect_error(error, 2.0, catalogue("zh-CN")).startswith(words)
