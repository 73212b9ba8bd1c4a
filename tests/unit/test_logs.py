"""Logs a plant engineer reads in journalctl: priorities, and a device down for hours that does
not flood them."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
from collections.abc import Iterator

import pytest
from pymodbus.logging import Log

from agent.drivers.base import ReadResult
from agent.runtime.poller import ConnectionPoller
from agent.samples import DeviceStatus
from agent.service.logsetup import LibraryThrottle, configure_logging
from agent.throttle import EventThrottle


class Gateway:
    name = "line1-gw"
    endpoint = "127.0.0.1:15021"
    interval_s = 1.0


async def discard(_: ReadResult) -> None:
    return None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_throttle_holds_back_repeats_and_counts_them() -> None:
    clock = FakeClock()
    throttle = EventThrottle(600.0, clock)
    assert throttle.allow("gw") == 0
    allowed = []
    for _ in range(3 * 3600):  # one attempt a second for three hours
        clock.now += 1.0
        held = throttle.allow("gw")
        if held is not None:
            allowed.append(held)
    assert len(allowed) == 18  # one line per 10 minutes
    assert allowed[0] == 599
    throttle.reset("gw")
    assert throttle.allow("gw") == 0  # the next fault after a recovery is news at once


def test_a_device_down_for_hours_logs_when_it_fails_now_and_then_and_when_it_is_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    poller = ConnectionPoller(
        Gateway(),  # type: ignore[arg-type]
        ["grinder-01"],
        deliver=discard,
        clock=clock,
        throttle=EventThrottle(900.0, clock),
    )
    caplog.set_level(logging.INFO, logger="agent.runtime")
    for _ in range(4 * 3600):  # a read a second for four hours, every one failing
        clock.now += 1.0
        poller.observe(ReadResult(statuses=[DeviceStatus("grinder-01", False, clock.now, "timeout")]))
    poller.observe(ReadResult(statuses=[DeviceStatus("grinder-01", True, clock.now + 1, None)]))
    events = [r.getMessage() for r in caplog.records]
    assert len(events) == 4 * 4 + 1  # every 15 minutes for 4 hours, and once when it is back
    assert "event=device_error error='timeout' repeats=0" in events[0]
    assert "event=device_still_failing" in events[1]
    assert "repeats=899" in events[1]
    assert "event=device_back" in events[-1]
    assert poller.health.errors == 4 * 3600


def test_lines_carry_a_syslog_priority_when_stderr_is_the_journal(monkeypatch: pytest.MonkeyPatch) -> None:
    read_end, write_end = os.pipe()
    stream = os.fdopen(write_end, "w")
    stat = os.fstat(write_end)
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")
    try:
        configure_logging("INFO", stream)
        logging.getLogger("agent.test").warning("event=example")
        logging.getLogger("agent.test").info("event=fine")
        stream.flush()
        lines = os.read(read_end, 4096).decode().splitlines()
    finally:
        stream.close()
        os.close(read_end)
        logging.getLogger().handlers.clear()
    assert lines == ["<4>WARNING agent.test event=example", "<6>INFO agent.test event=fine"]


def test_lines_carry_a_timestamp_on_a_terminal() -> None:
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    try:
        logging.getLogger("agent.test").error("event=example")
    finally:
        logging.getLogger().handlers.clear()
    assert buffer.getvalue().split(" ", 2)[2].strip() == "ERROR agent.test event=example"


def fail(message: str) -> None:
    raise ValueError(message)


def test_library_errors_appear_once_then_as_a_count_without_tracebacks() -> None:
    clock = FakeClock()
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    handler = logging.getLogger().handlers[0]
    handler.filters[:] = [LibraryThrottle(600.0, clock)]
    library = logging.getLogger("asyncuagds.validate")  # where asyncua logs it
    try:
        for attempt in range(3 * 60):  # a retry every 10 s for half an hour
            clock.now += 10.0
            try:
                fail(f"verification failed at try {attempt}")
            except ValueError:
                library.exception("Not trusted certificate used: [CN=%s]", f"server-{attempt % 2}")
        logging.getLogger("agent.test").warning("event=own_line")  # the agent's own lines pass as they are
    finally:
        logging.getLogger().handlers.clear()
    lines = buffer.getvalue().splitlines()
    shown = [line for line in lines if "Not trusted certificate used" in line]
    assert len(shown) == 3  # at 0, 10 and 20 minutes: numbers in the text do not make it news
    assert shown[0].endswith("error=ValueError: verification failed at try 0")
    assert "repeats=59" in shown[1]
    assert not any("Traceback" in line for line in lines)
    assert len(lines) == 4
    assert lines[-1].endswith("WARNING agent.test event=own_line")


def test_library_tracebacks_stay_at_debug() -> None:
    buffer = io.StringIO()
    configure_logging("DEBUG", buffer)
    try:
        try:
            fail("why")
        except ValueError:
            logging.getLogger("pymodbus.logging").exception("failed")
    finally:
        logging.getLogger().handlers.clear()
    assert "Traceback" in buffer.getvalue()


class RefusesEveryPacket(asyncio.Protocol):
    """A library protocol that cannot make sense of what a hostile peer sends."""

    def data_received(self, data: bytes) -> None:
        raise ValueError(f"cannot decode {data!r}")


async def hostile_peers(count: int) -> None:
    """`count` connections that each send a packet the server's protocol refuses: asyncio logs
    'protocol.data_received() call failed' for every one, with a traceback."""
    server = await asyncio.get_running_loop().create_server(RefusesEveryPacket, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for index in range(count):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(f"garbage {index}".encode())
            await writer.drain()
            await reader.read()  # the server closes the connection after the failure
            writer.close()
            await writer.wait_closed()


@contextlib.contextmanager
def journal(clock: FakeClock) -> Iterator[io.StringIO]:
    """The agent's logging at INFO into a buffer, its library throttle on the fake clock."""
    buffer = io.StringIO()
    configure_logging("INFO", buffer)
    logging.getLogger().handlers[0].filters[:] = [LibraryThrottle(600.0, clock)]
    try:
        yield buffer
    finally:
        logging.getLogger().handlers.clear()


def test_asyncio_protocol_failures_from_a_hostile_peer_are_one_line_then_a_count() -> None:
    clock = FakeClock()
    with journal(clock) as buffer:
        asyncio.run(hostile_peers(30))
        clock.now += 600.0
        asyncio.run(hostile_peers(1))
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "ERROR asyncio Fatal error: protocol.data_received() call failed." in lines[0]
    assert lines[0].endswith("error=ValueError: cannot decode b'garbage 0'")
    assert lines[1].endswith("error=ValueError: cannot decode b'garbage 0' repeats=29")


def test_pymodbus_packet_dumps_stay_out_of_the_line() -> None:
    # pymodbus keeps the last 20 frames process-wide for its next error line: start from none, or
    # frames kept from the integration tests' simulators run earlier in this process are counted
    Log.get_last_frames()  # type: ignore[no-untyped-call]
    with journal(FakeClock()) as buffer:
        for tid in range(1, 41):  # a peer answering every request with another transaction id
            frame = bytes([0, tid, 0, 0, 0, 5, 1, 3, 2, 0, tid])
            text = f"ERROR: request ask for transaction_id={tid} but got id={tid + 7}, Skipping."
            # pymodbus's own calls, untyped: the frame is kept, then appended to the error
            Log.transport_dump(Log.RECV_DATA, frame, b"")  # type: ignore[no-untyped-call]
            Log.error(text)  # type: ignore[no-untyped-call]
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].endswith(
        "ERROR pymodbus.logging ERROR: request ask for transaction_id=1 but got id=8, Skipping."
        " packets_left_out=1"
    )
