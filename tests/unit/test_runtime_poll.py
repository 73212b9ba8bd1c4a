"""The poll loop stops when asked, even if the driver swallowed the cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from agent.config.loader import AgentConfig
from agent.drivers.base import ReadResult
from agent.runtime import Agent, ConnectionHealth


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
