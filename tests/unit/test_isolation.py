"""One loop's failure never stops the agent: a poll loop, the KPI engine on one device's values,
the KPI loop itself and a delivery loop each fail here on purpose (at the driver, engine, outbox
and sink seams), and the agent goes on, says what failed, and loses no record."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

import pytest

from agent.backoff import Backoff
from agent.config.compiled import AgentConfig, Device
from agent.config.connections import Connection
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.delivery.outbox import Outbox
from agent.drivers.base import HandOver, ReadResult
from agent.kpi.engine import KpiEngine
from agent.records import Envelope, Record, RecordKind, from_json
from agent.runtime import restarts
from agent.runtime.agent import Agent
from agent.runtime.restarts import LoopHealth, keep_running
from agent.samples import DeviceStatus, Sample
from agent.sinks.registry import Output
from tests.conftest import CASES

WORKSHOP = f"""
agent: {{id: gw-test}}
site: {{enterprise: acme, site: plant-1, area: grinding}}
profiles_dir: {CASES / "_devices"}
connections:
  - {{id: plc-a, transport: modbus-tcp, host: 127.0.0.1, port: 1502}}
  - {{id: plc-b, transport: modbus-tcp, host: 127.0.0.1, port: 1503}}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: grinder,
     connection: plc-a, unit: 1,
     ideal_cycle_s: 5}}
  - {{id: grinder-02, line: line-1, kind: grinder, profile: grinder,
     connection: plc-a, unit: 2,
     ideal_cycle_s: 5}}
  - {{id: grinder-03, line: line-1, kind: grinder, profile: grinder,
     connection: plc-b, unit: 1,
     ideal_cycle_s: 5}}
calendar:
  shifts:
    - {{name: day, start: "00:00", end: "12:00"}}
    - {{name: night, start: "12:00", end: "00:00"}}
"""
POLL_S = 0.02


class FakeDriver:
    """A connection whose devices all run and count parts; `fails(cycle)` makes a read raise."""

    fails: dict[str, Callable[[int], bool]] = {}  # noqa: RUF012 - set per test through the fixture

    def __init__(self, connection: Connection, devices: list[Device], *_: object) -> None:
        self.name = connection.id
        self.interval_s = POLL_S
        self.devices = devices
        self.cycle = 0

    @property
    def endpoint(self) -> str:
        return f"fake:{self.name}"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        self.cycle += 1
        await asyncio.sleep(0)
        fails = self.fails.get(self.name)
        if fails is not None and fails(self.cycle):
            raise RuntimeError("driver bug")
        now = time.time()
        result = ReadResult(requests=1)
        for device in self.devices:
            result.samples += [
                Sample(device.id, "running", True, now),
                Sample(device.id, "alarm_active", False, now),
                Sample(device.id, "alarm_code", 0, now),
                Sample(device.id, "part_count", self.cycle, now),
            ]
            result.statuses.append(DeviceStatus(device.id, True, now))
        return result


class ListSink:
    name = "list"

    def __init__(self) -> None:
        self.delivered: list[int] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def write(self, batch: Sequence[Envelope]) -> None:
        self.delivered += [e.seq for e in batch]


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    path = tmp_path / "workshop.yaml"
    path.write_text(WORKSHOP, encoding="utf-8")
    return load_config(path)


@pytest.fixture(autouse=True)
def fast_restarts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(restarts, "RESTART_INITIAL_S", 0.02)
    monkeypatch.setattr(restarts, "RESTART_MAX_S", 0.05)
    monkeypatch.setattr("agent.runtime.agent.build_driver", FakeDriver)
    FakeDriver.fails = {}


def make_agent(config: AgentConfig, tmp_path: Path, sink: ListSink | None = None) -> Agent:
    return Agent(
        config,
        clock=time.time,
        outputs=[Output(sink, 100, 100_000.0, 0.05)] if sink else [],
        engine_setup=build_engine_setup(config, publish_interval_s=0.2, offline_after_s=5.0),
        outbox=Outbox(tmp_path / "outbox.db"),
    )


async def run_until(agent: Agent, condition: Callable[[], bool], within_s: float = 10.0) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(agent.run(stop))
    try:
        async with asyncio.timeout(within_s):
            while not condition():
                assert not task.done(), "the agent stopped"
                await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def cycles(agent: Agent, connection: str) -> int:
    state = agent.snapshot()
    return next((c.cycles for c in state.connections if c.name == connection), 0)


def stored(tmp_path: Path) -> list[dict[str, Any]]:
    outbox = Outbox(tmp_path / "outbox.db")
    outbox.open()
    rows = outbox.db.execute("SELECT body FROM records ORDER BY seq").fetchall()
    outbox.close()
    return [from_json(body) for (body,) in rows]


def state_records(tmp_path: Path) -> dict[str, int]:
    """Changes to producing stored per machine. The periodic repeats of a state carry the `since`
    of its change, so a change is a distinct (state, since); the start state (offline) is repeated
    too, for a machine whose values were refused at first."""
    changes: set[tuple[str, str, str]] = set()
    for record in stored(tmp_path):
        fields = record["fields"]
        if record["kind"] == "state" and fields["state"] == "producing":
            changes.add((fields["machine"], fields["state"], fields["since"]))
    machines: dict[str, int] = {}
    for machine, _, _ in changes:
        machines[machine] = machines.get(machine, 0) + 1
    return machines


async def test_keep_running_restarts_a_failing_loop_and_logs_the_traceback_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0

    async def flaky() -> None:
        nonlocal calls
        calls += 1
        if calls <= 3:
            raise ValueError("boom")

    health = LoopHealth("test")
    with caplog.at_level(logging.ERROR):
        await asyncio.wait_for(keep_running(flaky, health, backoff=Backoff(0.001, 0.002)), 5)
    assert calls == 4
    assert health.restarts == 3
    assert health.last_error == "ValueError: boom"
    crashes = [r for r in caplog.records if "event=loop_crashed" in r.getMessage()]
    assert len(crashes) == 1, "the same failure again is held back, not logged every time"
    assert crashes[0].exc_info is not None


async def test_keep_running_lets_a_cancellation_through() -> None:
    async def forever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(keep_running(forever, LoopHealth("test")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_failing_poll_loop_turns_its_devices_bad_and_the_others_go_on(
    config: AgentConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FakeDriver.fails = {"plc-a": lambda cycle: 5 <= cycle <= 7}
    agent = make_agent(config, tmp_path)
    seen_bad: dict[str, str | None] = {}

    def recovered() -> bool:
        state = agent.snapshot()
        for name in ("grinder-01", "grinder-02"):
            status = state.device(name)
            if status and not status.connected:
                seen_bad[name] = status.error
        loop = agent.loops.get("poll:plc-a")
        return (
            loop is not None
            and loop.restarts == 3
            and cycles(agent, "plc-a") > 0
            and all(d.connected for d in state.connection("plc-a").devices)
            and cycles(agent, "plc-b") > 30
        )

    with caplog.at_level(logging.INFO):
        await run_until(agent, recovered)
    assert set(seen_bad) == {"grinder-01", "grinder-02"}
    assert all("poll loop failed: RuntimeError: driver bug" in (e or "") for e in seen_bad.values())
    assert agent.loops["poll:plc-a"].last_error == "RuntimeError: driver bug"
    assert "poll:plc-b" not in {n for n, h in agent.loops.items() if h.restarts}
    crashes = [r for r in caplog.records if "event=loop_crashed" in r.getMessage()]
    assert len(crashes) == 1
    assert crashes[0].exc_info is not None
    assert "loop=poll:plc-a" in crashes[0].getMessage()


async def test_values_the_engine_refuses_cost_only_that_device(
    config: AgentConfig, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_agent(config, tmp_path)
    ingest = KpiEngine.ingest
    poisoned = {"on": True}

    def picky(engine: KpiEngine, samples: Sequence[Sample]) -> list[Record]:
        if poisoned["on"] and any(s.device == "grinder-02" for s in samples):
            raise ValueError("poison")
        return ingest(engine, samples)

    # on the class: the agent's engine is the one continued from the outbox at start
    monkeypatch.setattr(KpiEngine, "ingest", picky)

    def error(device: str) -> str | None:
        status = agent.snapshot().device(device)
        return "not read yet" if status is None else status.error

    def refused() -> bool:
        reason = error("grinder-02")
        return reason is not None and "KPI engine refused" in reason and cycles(agent, "plc-a") > 10

    with caplog.at_level(logging.INFO):
        await run_until(agent, refused)
        assert error("grinder-01") is None
        poisoned["on"] = False
        await run_until(agent, lambda: error("grinder-02") is None)
    machines = state_records(tmp_path)
    # Two runs: the second continues from the checkpoint, where every machine is offline (agent
    # restart) until read again, so the healthy ones start producing once per run; grinder-02's
    # values were refused all through the first run.
    assert machines == {"grinder-01": 2, "grinder-02": 1, "grinder-03": 2}
    refusals = [r for r in caplog.records if "event=kpi_values_refused" in r.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].exc_info is not None
    assert any("event=kpi_values_accepted_again" in r.getMessage() for r in caplog.records)


async def test_a_kpi_round_that_fails_after_reading_loses_none_of_its_records(
    config: AgentConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("agent.runtime.kpi_loop.ADVANCE_EVERY_S", 0.0)  # every round advances, and may fail
    agent = make_agent(config, tmp_path)
    advance = KpiEngine.advance
    failures = {"left": 1}

    def failing_once(engine: KpiEngine, now: float) -> list[Record]:
        if failures["left"] and engine.machines["grinder-03"].state.value == "producing":
            failures["left"] -= 1
            raise RuntimeError("engine bug")
        return advance(engine, now)

    monkeypatch.setattr(KpiEngine, "advance", failing_once)
    await run_until(
        agent, lambda: agent.loops.get("kpi:process", LoopHealth("")).restarts == 1 and agent.kpi.rounds > 5
    )
    # the state changes were made in the round that failed; they reach the outbox all the same
    assert state_records(tmp_path) == {"grinder-01": 1, "grinder-02": 1, "grinder-03": 1}


async def test_a_failing_delivery_loop_restarts_from_its_cursor_in_order(
    config: AgentConfig, tmp_path: Path
) -> None:
    sink = ListSink()
    agent = make_agent(config, tmp_path, sink)
    pending = agent.store.outbox.pending
    calls = {"n": 0}

    def failing_third_call(agent_id: str, sink_name: str, limit: int) -> list[Envelope]:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("outbox bug")
        return pending(agent_id, sink_name, limit)

    agent.store.outbox.pending = failing_third_call  # type: ignore[method-assign,assignment]
    await run_until(
        agent,
        lambda: agent.loops.get("deliver:list", LoopHealth("")).restarts == 1 and len(sink.delivered) > 20,
    )
    assert sink.delivered == list(range(sink.delivered[0], sink.delivered[0] + len(sink.delivered)))
    assert len(sink.delivered) == agent.snapshot().storage.committed  # the flush at stop delivered the rest


async def test_a_record_the_outbox_cannot_take_is_refused_alone(
    config: AgentConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = make_agent(config, tmp_path)
    advance = KpiEngine.advance
    once = {"left": 1}

    def with_poison(engine: KpiEngine, now: float) -> list[Record]:
        records = advance(engine, now)
        if once["left"]:
            once["left"] -= 1
            records.append(Record(RecordKind.EVENT, now, {"value": 2**70}))  # more than JSON's 64 bits
        return records

    monkeypatch.setattr(KpiEngine, "advance", with_poison)
    await run_until(agent, lambda: agent.kpi.rounds > 5 and agent.snapshot().storage.committed > 3)
    assert agent.snapshot().storage.refused == {"event": 1}
    assert state_records(tmp_path) == {"grinder-01": 1, "grinder-02": 1, "grinder-03": 1}
