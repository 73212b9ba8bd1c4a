"""The collector settings of a running agent: what exists once it has settled is frozen out of the
collector's walks, the young generation is collected less often, and a reload settles again with
the replaced configuration collected, not frozen forever."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agent.service import heap
from agent.service.heap import YOUNG_THRESHOLD, keep_settled, settle


@pytest.fixture(autouse=True)
def restore_collector() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


class Config:
    """Stands for a configuration: objects that refer to each other (a cycle)."""

    def __init__(self) -> None:
        self.me = self


def test_settle_freezes_what_lives_and_collects_young_objects_less_often() -> None:
    settle()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_a_replaced_configuration_is_collected_at_the_next_settle() -> None:
    config = Config()
    gone = weakref.ref(config)
    settle()  # frozen with everything else
    del config
    gc.collect()
    assert gone() is not None  # out of the collector's reach while frozen
    settle()
    assert gone() is None


@dataclass
class Agent:
    reloads: int = 0


async def test_the_agent_settles_after_start_and_after_each_reload(monkeypatch: pytest.MonkeyPatch) -> None:
    settled = asyncio.Event()
    settles: list[int] = []
    agent = Agent()

    def counted() -> None:
        settles.append(agent.reloads)
        settled.set()

    monkeypatch.setattr(heap, "settle", counted)
    task = asyncio.create_task(keep_settled(agent, after_s=0.01))
    try:
        await asyncio.wait_for(settled.wait(), 5.0)
        settled.clear()
        await asyncio.sleep(0.1)  # ten rounds of the loop
        assert settles == [0]  # no second settle without a reload
        agent.reloads += 1
        await asyncio.wait_for(settled.wait(), 5.0)
        assert settles == [0, 1]
    finally:
        task.cancel()
