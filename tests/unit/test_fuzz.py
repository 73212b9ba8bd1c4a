"""Fuzzing what arrives from the wire: 10^5 inputs each through pymodbus's client-side framers (as
the driver receives them) and through our value conversion. Marked slow: `make test ARGS="-m slow"`.
The quick variants run in every `make test`."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU, FramerSocket
from pymodbus.pdu import DecodePDU

from agent.config.profile import ByteOrder, DataType, Table, TagSpec
from agent.drivers.codec import DecodeError, decode

FRAMERS = {"socket": FramerSocket, "rtu": FramerRTU}
NUMERIC = [t for t in DataType if t is not DataType.BOOL]
FUZZ = settings(max_examples=100_000, deadline=None, suppress_health_check=list(HealthCheck))

frames = st.one_of(
    st.binary(max_size=300),
    # plausible MBAP headers with hostile bodies: the interesting part of the input space
    st.builds(
        lambda tid, unit, fc, body: struct.pack(">HHHBB", tid, 0, len(body) + 2, unit, fc) + body,
        st.integers(0, 65535),
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=260),
    ),
)


def frame_survives(kind: str, data: bytes) -> None:
    framer = FRAMERS[kind](DecodePDU(False))
    try:
        used, pdu = framer.handleFrame(data, 0, 0)
    except ModbusException:
        return  # rejected with pymodbus's own error: the driver turns it into a bad read
    assert 0 <= used <= len(data)
    if pdu is not None:
        assert isinstance(pdu.function_code, int)


def value_survives(data_type: DataType, order: ByteOrder, registers: list[int], scale: float) -> None:
    length = max(1, len(registers)) if data_type is DataType.STRING else None
    tag = TagSpec(table=Table.HOLDING, address=0, type=data_type, order=order, scale=scale, length=length)
    try:
        value = decode(tag, registers)
    except DecodeError:
        return
    if data_type is DataType.STRING:
        assert isinstance(value, str)
        return
    assert isinstance(value, int | float)
    assert math.isfinite(value)


@given(st.sampled_from(sorted(FRAMERS)), frames)
def test_frames_quick(kind: str, data: bytes) -> None:
    frame_survives(kind, data)


@given(
    st.sampled_from(NUMERIC),
    st.sampled_from(list(ByteOrder)),
    st.lists(st.integers(0, 65535), max_size=5),
    st.floats(1e-6, 1e6),
)
def test_values_quick(data_type: DataType, order: ByteOrder, registers: list[int], scale: float) -> None:
    value_survives(data_type, order, registers, scale)


@pytest.mark.slow
@FUZZ
@given(st.sampled_from(sorted(FRAMERS)), frames)
def test_frames_fuzz(kind: str, data: bytes) -> None:
    frame_survives(kind, data)


@pytest.mark.slow
@FUZZ
@given(
    st.sampled_from(NUMERIC),
    st.sampled_from(list(ByteOrder)),
    st.lists(st.integers(0, 65535), max_size=5),
    st.floats(1e-6, 1e6),
)
def test_values_fuzz(data_type: DataType, order: ByteOrder, registers: list[int], scale: float) -> None:
    value_survives(data_type, order, registers, scale)
