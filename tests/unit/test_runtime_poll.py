"""The poll loop stops when asked, even if the driver swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from agent.config.compiled import AgentConfig
from agent.drivers.base import ReadResult
from agent.runtime.agent import Agent, ConnectionHealth


class SwallowingDriver:
    """Loses a cancellation as asyncio.wait_for can on Python 3.11 when a reply races it."""

    name = "plc"
    interval_s = 0.001

    async def read(self) -> ReadResult:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.001)
        return ReadResult()


async def test_poll_honours_a_cancellation_its_driver_swallowed(sample_config: AgentConfig) -> None:
    agent = Agent(sample_config, clock=time.time)
    agent.health["plc"] = ConnectionHealth("plc", "127.0.0.1:502", 0.001)
    task = asyncio.create_task(agent._poll(SwallowingDriver()))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2.0)


class Driver:
    """A connection whose reads return at once, or, once `hang` is set, never again."""

    interval_s = 0.01

    def __init__(self, name: str) -> None:
        self.name = name
        self.hang = asyncio.Event()

    async def read(self) -> ReadResult:
        if self.hang.is_set():
            await asyncio.Event().wait()  # an await that never returns: the bug a watchdog exists for
        await asyncio.sleep(0)
        return ReadResult()


async def test_a_poll_loop_stuck_in_a_read_is_named_as_stalled_and_the_others_are_not(
    sample_config: AgentConfig,
) -> None:
    agent = Agent(sample_config, clock=time.time)
    drivers = [Driver("line1-gw"), Driver("line2-gw")]
    for driver in drivers:
        agent.health[driver.name] = ConnectionHealth(driver.name, "127.0.0.1:502", driver.interval_s)
        agent.progress[driver.name] = time.monotonic()
    consumer = asyncio.create_task(_consume(agent))
    polls = [asyncio.create_task(agent._poll(d)) for d in drivers]  # type: ignore[arg-type]
    try:
        await asyncio.sleep(0.3)
        assert agent.stalled(0.2) == []
        drivers[0].hang.set()
        await asyncio.sleep(0.3)
        assert agent.stalled(0.2) == ["line1-gw"]
    finally:
        for task in [*polls, consumer]:
            task.cancel()
        await asyncio.gather(*polls, consumer, return_exceptions=True)


async def _consume(agent: Agent) -> None:
    while True:
        await agent._queue.get()
