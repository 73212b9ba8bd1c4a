"""The garbage collector set for a process that runs for months and makes 10,000 short-lived
objects a second (a sample per tag value).

By default CPython collects its youngest generation every 700 net allocations and, every so often,
walks every object the process holds: at 200 devices x 50 tags that was about 13% of the agent's
CPU, most of it walking the configuration, the profiles and the imported modules over and over.
Once the agent has settled (SETTLE_AFTER_S after a start or a reload), what exists then is moved
out of the collector's reach (gc.freeze: it lives as long as the process, or until the next
reload), and the youngest generation is collected every YOUNG_THRESHOLD net allocations: samples
and records are freed by reference counting long before, so the collector finds little to do.
"""

from __future__ import annotations

import asyncio
import gc
from typing import Protocol

SETTLE_AFTER_S = 10.0
YOUNG_THRESHOLD = 10_000  # CPython's default is 700


class Reloading(Protocol):
    reloads: int


def settle() -> None:
    """What is alive now stays out of the collector's walks. The objects frozen before (a replaced
    configuration) are collected first, so a reload does not keep the old one forever."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)


async def keep_settled(agent: Reloading, after_s: float = SETTLE_AFTER_S) -> None:
    """settle() once the agent has run for after_s, and again after_s after each reload."""
    settled_at = -1
    while True:
        await asyncio.sleep(after_s)
        if agent.reloads != settled_at:
            settled_at = agent.reloads
            settle()
