"""A gateway taken off the network mid-run: the others keep their rate, it recovers when back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.kpi.states import MachineState
from agent.runtime.agent import Agent
from agent.sim.server import OpcUaSimulation, WorkshopSimulator

pytestmark = pytest.mark.integration

POLL_S = 0.1
DEAD = "line2-gw"


async def wait_for(condition: Callable[[], bool], within_s: float) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - observing the agent from outside, as a user would
            await asyncio.sleep(0.05)


async def test_dead_gateway_costs_the_others_nothing_and_recovers(sample_config: AgentConfig) -> None:
    setup = build_engine_setup(sample_config, offline_after_s=0.5)
    agent = Agent(sample_config, clock=time.time, engine_setup=setup, poll_interval_s=POLL_S)
    stop = asyncio.Event()
    dead_machines = [d.id for d in sample_config.devices() if d.connection == DEAD]
    # the agent trusts the simulated OPC UA server (its state folder is the test's own, and new)
    async with WorkshopSimulator(
        sample_config, time.time, opcua=OpcUaSimulation(trust_into_agent=True)
    ) as simulator:
        task = asyncio.create_task(agent.run(stop), name="test.agent")
        connections = {c.id for c in sample_config.workshop.connections}
        await wait_for(
            lambda: (
                {c.name for c in agent.snapshot().connections} == connections
                and all(c.cycles >= 3 for c in agent.snapshot().connections)
            ),
            5,
        )
        assert agent.snapshot().devices_up == agent.snapshot().devices

        await simulator.stop(DEAD)
        before = {c.name: (c.cycles, c.missed_cycles) for c in agent.snapshot().connections}
        await asyncio.sleep(2.0)
        state = agent.snapshot()
        for health in state.connections:
            if health.name == DEAD:
                continue
            cycles = health.cycles - before[health.name][0]
            missed = health.missed_cycles - before[health.name][1]
            assert cycles + missed >= 18, health.name  # 2 s at 0.1 s: the schedule held
            assert missed <= 2, health.name
            assert health.devices_up == len(health.devices), health.name
        dead = state.connection(DEAD).devices
        assert not any(device.connected for device in dead)
        assert all(device.error for device in dead)
        states = {v.id: v.state for v in agent.engine.views()}
        assert {states[m] for m in dead_machines} == {MachineState.OFFLINE}
        assert MachineState.OFFLINE not in {s for m, s in states.items() if m not in dead_machines}

        await simulator.start(DEAD)
        await wait_for(lambda: all(d.connected for d in agent.snapshot().connection(DEAD).devices), 10)
        await wait_for(
            lambda: (
                MachineState.OFFLINE not in {v.state for v in agent.engine.views() if v.id in dead_machines}
            ),
            5,
        )
        stop.set()
        await asyncio.wait_for(task, 10)
