"""A connection's poller: it stops when asked, even if the driver swallowed the cancellation; a
poller stuck in a read is named as stalled and the others are not; it polls at a fixed rate and
counts the ticks it missed."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from agent.drivers.base import HandOver, ReadResult
from agent.runtime.poller import ConnectionPoller


class SwallowingDriver:
    """Loses a cancellation as asyncio.wait_for can on Python 3.11 when a reply races it."""

    name = "plc"
    interval_s = 0.001
    endpoint = "127.0.0.1:502"

    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.001)
        return ReadResult()


async def discard(_: ReadResult) -> None:
    await asyncio.sleep(0)


async def test_poll_honours_a_cancellation_its_driver_swallowed() -> None:
    poller = ConnectionPoller(SwallowingDriver(), [], deliver=discard, clock=time.time)  # type: ignore[arg-type]
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)


class Driver:
    """A connection whose reads return at once, or, once `hang` is set, never again."""

    interval_s = 0.01
    endpoint = "127.0.0.1:502"

    def __init__(self, name: str) -> None:
        self.name = name
        self.hang = asyncio.Event()

    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        if self.hang.is_set():
            await asyncio.Event().wait()  # an await that never returns: the bug a watchdog exists for
        await asyncio.sleep(0)
        return ReadResult(requests=1)


async def test_a_poll_loop_stuck_in_a_read_is_named_as_stalled_and_the_others_are_not() -> None:
    queue: asyncio.Queue[ReadResult] = asyncio.Queue(16)
    drivers = [Driver("line1-gw"), Driver("line2-gw")]
    pollers = [ConnectionPoller(d, [], deliver=queue.put, clock=time.time) for d in drivers]  # type: ignore[arg-type]
    consumer = asyncio.create_task(_consume(queue))
    polls = [asyncio.create_task(p.run()) for p in pollers]

    def stalled() -> list[str]:
        return [p.name for p in pollers if p.stalled(0.2)]

    try:
        await asyncio.sleep(0.3)
        assert stalled() == []
        drivers[0].hang.set()
        await asyncio.sleep(0.3)
        assert stalled() == ["line1-gw"]
    finally:
        for task in [*polls, consumer]:
            task.cancel()
        await asyncio.gather(*polls, consumer, return_exceptions=True)


async def test_a_slow_poller_is_stalled_only_after_three_of_its_intervals() -> None:
    driver = Driver("slow-gw")
    driver.interval_s = 10.0
    poller = ConnectionPoller(driver, [], deliver=discard, clock=time.time)  # type: ignore[arg-type]
    poller.last_round = 1000.0
    assert not poller.stalled(1.0, now=1029.0)
    assert poller.stalled(1.0, now=1031.0)


async def test_cycles_that_run_late_are_counted_as_missed() -> None:
    """A read that takes 2.5 intervals costs (at least, on a loaded machine) the two ticks it
    overran: they are counted, not silently shifted."""

    class Late(Driver):
        calls = 0

        async def read(self, hand_over: HandOver | None = None) -> ReadResult:
            self.calls += 1
            if self.calls == 3:
                await asyncio.sleep(0.25)
            return ReadResult(requests=2)

    driver = Late("plc")
    driver.interval_s = 0.1
    poller = ConnectionPoller(driver, [], deliver=discard, clock=time.time)  # type: ignore[arg-type]
    task = asyncio.create_task(poller.run())
    try:
        async with asyncio.timeout(5):
            while poller.health.cycles < 5:  # noqa: ASYNC110 - observing the loop from outside
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert poller.health.missed_cycles >= 2
    assert poller.health.requests == 2 * poller.health.cycles


async def _consume(queue: asyncio.Queue[ReadResult]) -> None:
    while True:
        await queue.get()
