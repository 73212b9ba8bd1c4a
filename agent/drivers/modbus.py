"""Modbus driver: one connection (a PLC over TCP, a serial-to-Ethernet gateway passing RTU frames,
or an RS-485 bus on a serial port) and every unit id behind it, one request at a time.

Faults never escape: a timeout, an exception response or a lost connection turns the affected
tags into quality=bad samples and a device status. A device that times out is skipped for the
rest of the cycle, so it costs at most one timeout per cycle; when no device on the connection
answers, the connection is closed and re-opened. A connection lost in the middle of a cycle
leaves the units not yet asked bad, with the reason. Reconnecting is tried at each of the next
QUICK_RETRIES cycles (a gateway or simulator restart is back within one cycle), then with capped,
jittered backoff until a device answers again.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any, Self

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from agent.backoff import Backoff
from agent.config.compiled import Device
from agent.config.connections import ModbusConnection, ModbusRtuConnection, ModbusRtuOverTcpConnection
from agent.config.profile import Table
from agent.drivers.base import Clock, HandOver, ReadResult
from agent.drivers.codec import DecodeError
from agent.drivers.planner import FUNCTION_CODE, DevicePlan, ReadRequest, plan_reads, split_at_gaps
from agent.drivers.timing import RTU_SILENCE_CHARACTERS
from agent.samples import BAD, GOOD, DeviceStatus, Quality, Sample
from agent.throttle import CONNECTION_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)


def plan_device(device: Device, connection: ModbusConnection) -> DevicePlan:
    spec = device.profile.spec
    requests = plan_reads(
        spec.tags,
        addressing=spec.addressing,
        max_gap=spec.modbus.max_gap if spec.modbus.max_gap is not None else connection.max_gap,
        max_registers=spec.modbus.max_registers_per_request,
        max_bits=spec.modbus.max_bits_per_request,
    )
    return DevicePlan(device.id, device.unit, requests)


@dataclass
class _Outcome:
    ok: bool
    timed_out: bool
    error: str | None


ModbusClient = AsyncModbusTcpClient | AsyncModbusSerialClient
ILLEGAL_DATA_ADDRESS = 2  # Modbus exception 02
# A restarted gateway or PLC program is usually back within a second: the first retries come at
# the poll interval; after these, a dead endpoint costs a connect per backoff delay, not per cycle.
QUICK_RETRIES = 3


def new_client(connection: ModbusConnection) -> ModbusClient:
    """pymodbus's own reconnect is off (reconnect_delay=0): reconnecting is ours, capped, jittered
    and visible in the device status."""
    name = f"agent[{connection.id}]"
    if isinstance(connection, ModbusRtuConnection):
        return AsyncModbusSerialClient(
            connection.serial_port,
            framer=FramerType.RTU,
            baudrate=connection.baudrate,
            parity=connection.parity,
            stopbits=connection.stopbits,
            bytesize=connection.bytesize,
            timeout=connection.timeout_s,
            retries=0,
            reconnect_delay=0,
            name=name,
        )
    framer = FramerType.RTU if isinstance(connection, ModbusRtuOverTcpConnection) else FramerType.SOCKET
    return AsyncModbusTcpClient(
        connection.host,
        port=connection.port,
        framer=framer,
        timeout=connection.timeout_s,
        retries=0,
        reconnect_delay=0,
        name=name,
    )


def request_pause(connection: ModbusConnection) -> float:
    if connection.request_pause_s is not None:
        return connection.request_pause_s
    if isinstance(connection, ModbusRtuConnection):
        return RTU_SILENCE_CHARACTERS * connection.character_s
    return 0.0


class ModbusDriver:
    def __init__(self, connection: ModbusConnection, devices: list[Device], clock: Clock) -> None:
        self.connection = connection
        self.name = connection.id
        self.interval_s = connection.interval_s
        self.plans = [plan_device(device, connection) for device in devices]
        self._clock = clock
        self._client: ModbusClient | None = None
        self._pause_s = request_pause(connection)
        self._next_due: dict[tuple[str, Table, int, int], float] = {}
        self._last_request_end = 0.0
        self._backoff = Backoff(
            initial_s=min(1.0, connection.interval_s), maximum_s=connection.reconnect_max_s
        )
        self._next_attempt = 0.0
        self._failures = 0  # connects failed or connections lost since a device last answered
        self._last_error = "not connected yet"
        self._throttle = EventThrottle(CONNECTION_FAULT_LOG_EVERY_S)

    @property
    def endpoint(self) -> str:
        return self.connection.endpoint

    async def __aenter__(self) -> Self:
        await self._connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close()

    def _close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def _connect(self) -> bool:
        self._close()
        client = new_client(self.connection)
        try:
            async with asyncio.timeout(self.connection.timeout_s * 2):
                connected = await client.connect()
        except (TimeoutError, OSError) as error:
            connected = False
            self._last_error = f"connect failed: {error or type(error).__name__}"
        if not connected:
            client.close()
            delay = self._retry_later()
            if "connect failed" not in self._last_error:
                self._last_error = "connect failed"
            held = self._throttle.allow("connect_failed")
            if held is not None:
                log.warning(
                    "connection=%s endpoint=%s event=connect_failed error=%r retry_in=%.1fs repeats=%d",
                    self.name,
                    self.endpoint,
                    self._last_error,
                    delay,
                    held,
                )
            return False
        self._client = client
        self._throttle.reset("connect_failed")
        log.info("connection=%s endpoint=%s event=connected", self.name, self.endpoint)
        if self.connection.connect_pause_s > 0:
            await asyncio.sleep(self.connection.connect_pause_s)
        return True

    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        result = ReadResult()
        disconnected = self._client is None or not self._client.connected
        if disconnected and (
            asyncio.get_running_loop().time() < self._next_attempt or not await self._connect()
        ):
            for plan in self.plans:
                self._fail_device(plan, result, self._last_error)
            return result
        answered = 0
        for plan in self.plans:
            if self._client is None:
                # the connection was lost earlier in this cycle: the units behind it cannot be
                # asked now; they are bad with the reason, and the reconnect waits for its backoff
                self._fail_device(plan, result, self._last_error)
            elif await self._read_device(plan, result):
                answered += 1
            await result.hand_over(hand_over)
        if answered:
            self._backoff.reset()  # only a device that answers proves the link good again
            self._failures = 0
            self._throttle.reset("no_device_answered")
        if answered == 0 and self.plans:
            held = self._throttle.allow("no_device_answered")
            if held is not None:
                log.warning(
                    "connection=%s endpoint=%s event=no_device_answered action=reconnect repeats=%d",
                    self.name,
                    self.endpoint,
                    held,
                )
            self._close()
        elif self.connection.close_after_cycle:
            self._close()
            self._next_attempt = 0.0  # a planned close, not a failure: reconnect next cycle without backoff
        return result

    def _due(self, plan: DevicePlan) -> list[ReadRequest]:
        """Requests to read this cycle: every-cycle ones, and slower ones whose interval has passed."""
        now = asyncio.get_running_loop().time()
        due = []
        for request in plan.requests:
            if request.interval_s is None:
                due.append(request)
                continue
            key = (plan.device, *request.key)
            if now >= self._next_due.get(key, 0.0):
                self._next_due[key] = now + request.interval_s
                due.append(request)
        return due

    async def _read_device(self, plan: DevicePlan, result: ReadResult) -> bool:
        """Read the device's due requests. True if the device answered at all."""
        errors: list[str] = []
        answered = False
        due = self._due(plan)
        if not due:
            return True  # nothing due this cycle: not a sign of a dead device
        for index, request in enumerate(due):
            outcome = await self._execute(plan, request, result)
            answered = answered or outcome.ok or not outcome.timed_out
            if outcome.error is not None:
                errors.append(outcome.error)
            if outcome.timed_out or self._client is None:
                for skipped in due[index + 1 :]:
                    self._bad_request(plan, skipped, result)
                break
        now = self._clock()
        result.statuses.append(DeviceStatus(plan.device, answered, now, "; ".join(errors) or None))
        return answered

    async def _execute(self, plan: DevicePlan, request: ReadRequest, result: ReadResult) -> _Outcome:
        client = self._client
        if client is None:
            self._bad_request(plan, request, result)
            return _Outcome(False, True, self._last_error)
        if self._pause_s > 0:
            # the bus (or a slow converter) needs silence between one reply and the next request
            wait = self._last_request_end + self._pause_s - asyncio.get_running_loop().time()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            return await self._request(client, plan, request, result)
        finally:
            self._last_request_end = asyncio.get_running_loop().time()

    async def _request(
        self, client: ModbusClient, plan: DevicePlan, request: ReadRequest, result: ReadResult
    ) -> _Outcome:
        result.requests += 1
        try:
            async with asyncio.timeout(self.connection.timeout_s + 0.5):
                response = await read_table(client, request.table, request.address, request.count, plan.unit)
        except TimeoutError:
            self._bad_request(plan, request, result)
            return _Outcome(False, True, f"timeout after {self.connection.timeout_s}s")
        except (ModbusException, OSError) as error:
            self._bad_request(plan, request, result)
            return self._failure(client, error)
        except Exception as error:  # noqa: BLE001 - a reply pymodbus chokes on is a bad read, not a crash
            self._bad_request(plan, request, result)
            return self._failure(client, error)
        if response.isError():
            self._bad_request(plan, request, result)
            code = getattr(response, "exception_code", "?")
            if code == ILLEGAL_DATA_ADDRESS and request.filled > 0:
                self._plan_around_refused_gap(plan, request)
            return _Outcome(
                False,
                False,
                f"exception code {code} for fc{request.function_code} @{request.address}+{request.count}",
            )
        mismatch = _mismatch(request, response)
        if mismatch is not None:
            self._bad_request(plan, request, result)
            return _Outcome(False, False, mismatch)
        return self._decode(
            plan, request, response.bits if request.table.is_bit_table else response.registers, result
        )

    def _decode(self, plan: DevicePlan, request: ReadRequest, values: Any, result: ReadResult) -> _Outcome:
        """Every tag of an answered request as a sample: good, or bad where its registers are not a
        value of its type (NaN, a nibble that is not BCD)."""
        now = self._clock()
        try:
            decoded, errors = request.decode(values)
        except DecodeError as error:
            self._bad_request(plan, request, result)
            return _Outcome(False, False, str(error))
        device = plan.device
        for index, fault in errors:
            log.debug("device=%s tag=%s event=decode_error error=%s", device, request.names[index], fault)
        result.samples += [
            Sample(device, name, value, now, GOOD if value is not None else BAD)
            for name, value in zip(request.names, decoded, strict=True)
        ]
        return _Outcome(True, False, None)

    def _plan_around_refused_gap(self, plan: DevicePlan, request: ReadRequest) -> None:
        """The device refused registers read only to fill a gap: read its tags without the gap from
        now on (learned once, logged once)."""
        runs = split_at_gaps(request)
        index = self.plans.index(plan)
        requests = list(plan.requests)
        position = requests.index(request)
        requests[position : position + 1] = runs
        self.plans[index] = replace(plan, requests=tuple(requests))
        log.warning(
            "device=%s event=gap_refused table=%s address=%d count=%d action=split_into_%d_requests",
            plan.device,
            request.table.value,
            request.address,
            request.count,
            len(runs),
        )

    def _failure(self, client: ModbusClient, error: Exception) -> _Outcome:
        """A request that raised: a lost connection, pymodbus's own timeout, or a bad reply."""
        if not client.connected:
            self._close()
            self._last_error = f"connection lost: {error}"
            # reconnect at the next cycle at the earliest, later if the link keeps failing: a
            # server that accepts and then drops every request must not be hammered
            self._retry_later()
            return _Outcome(False, True, self._last_error)
        if "No response" in str(error):  # pymodbus's own timeout, at timeout_s
            return _Outcome(False, True, f"timeout after {self.connection.timeout_s}s (no response)")
        return _Outcome(False, False, f"{type(error).__name__}: {error}")

    def _retry_later(self) -> float:
        """When to try connecting again: at the next cycle for the first QUICK_RETRIES failures,
        then after a capped, jittered backoff. Returns the delay."""
        self._failures += 1
        delay = 0.0 if self._failures <= QUICK_RETRIES else self._backoff.next_delay()
        self._next_attempt = asyncio.get_running_loop().time() + delay
        return delay

    def _bad_request(self, plan: DevicePlan, request: ReadRequest, result: ReadResult) -> None:
        now = self._clock()
        result.samples.extend(Sample(plan.device, t.name, None, now, Quality.BAD) for t in request.tags)

    def _fail_device(self, plan: DevicePlan, result: ReadResult, error: str) -> None:
        for request in plan.requests:
            self._bad_request(plan, request, result)
        result.statuses.append(DeviceStatus(plan.device, False, self._clock(), error))


def _mismatch(request: ReadRequest, response: Any) -> str | None:
    return reply_mismatch(request.table, request.address, request.count, response)


def reply_mismatch(table: Table, address: int, count: int, response: Any) -> str | None:
    """A reply that does not answer this request (another function, another count) is never decoded:
    its values would be attributed to the wrong registers."""
    function_code = FUNCTION_CODE[table]
    function = getattr(response, "function_code", None)
    if function != function_code:
        return f"reply for function {function} to a function {function_code} request"
    if table.is_bit_table:
        # bits come packed LSB first, padded to whole bytes: exactly ceil(count / 8) bytes. Any
        # other byte count (one the framing accepts, as the frame agrees with it) answers some
        # other question, so none of its bits can be trusted.
        expected = -(-count // 8)
        got = len(response.bits) // 8
        if got != expected:
            return (
                f"reply with {got} data bytes to a request for {count} bits "
                f"(fc{function_code} @{address}; {expected} bytes expected)"
            )
    elif len(response.registers) != count:
        return f"reply with {len(response.registers)} registers to a request for {count}"
    return None


async def read_table(client: ModbusClient, table: Table, address: int, count: int, unit: int) -> Any:
    """One read request of the function code the table needs (01, 02, 03 or 04)."""
    read = {
        Table.COIL: client.read_coils,
        Table.DISCRETE_INPUT: client.read_discrete_inputs,
        Table.HOLDING: client.read_holding_registers,
        Table.INPUT: client.read_input_registers,
    }[table]
    return await read(address, count=count, device_id=unit)
