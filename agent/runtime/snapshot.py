"""The agent's state at one moment, frozen: what every view of its health shows.

/health (JSON) and /metrics (agent/service/health.py), the agent's delivery record
(agent/runtime/agent.py), the systemd STATUS line (agent/service/supervision.py) and the terminal
view (agent/commands/view.py) all render one AgentSnapshot (Agent.snapshot()), and what they derive
(devices up, the verdict `ok`) is derived here once, so they cannot disagree. Durations are
measured at the snapshot's moment.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from agent.delivery.drain import DeliveryStats
from agent.delivery.store import StorageHealth
from agent.runtime.poller import ConnectionHealth
from agent.runtime.restarts import LoopHealth

LOOP_TROUBLE_S = 60.0  # a loop that failed this recently makes the agent not ok


def seconds_since(then: float | None, now: float) -> float | None:
    """How long ago, to the millisecond; None for never."""
    return None if then is None else round(max(0.0, now - then), 3)


@dataclass(frozen=True)
class DeviceSnapshot:
    id: str
    connected: bool
    error: str | None
    last_good_read_s_ago: float | None  # None: never read well since the agent started


@dataclass(frozen=True)
class ConnectionSnapshot:
    name: str
    endpoint: str
    interval_s: float
    cycles: int
    missed_cycles: int
    requests: int
    errors: int
    last_cycle_s: float
    devices: tuple[DeviceSnapshot, ...]

    @classmethod
    def of(cls, health: ConnectionHealth, now: float) -> Self:
        return cls(
            name=health.name,
            endpoint=health.endpoint,
            interval_s=health.interval_s,
            cycles=health.cycles,
            missed_cycles=health.missed_cycles,
            requests=health.requests,
            errors=health.errors,
            last_cycle_s=health.last_cycle_s,
            devices=tuple(
                DeviceSnapshot(device, s.connected, s.error, seconds_since(health.last_good.get(device), now))
                for device, s in health.devices.items()
            ),
        )

    @property
    def devices_up(self) -> int:
        return sum(1 for d in self.devices if d.connected)


@dataclass(frozen=True)
class OutputSnapshot:
    sink: str
    accept_loss: bool  # at-most-once: delivered once written, not once acknowledged
    connected: bool
    delivered: int
    delivered_per_s: float
    backlog_records: int
    backlog_bytes: int
    oldest_undelivered_s: float | None
    failures: int
    last_error: str | None

    @classmethod
    def of(cls, stats: DeliveryStats, now: float, steady: float) -> Self:
        """now: the agent's clock (records' times); steady: the monotonic clock (delivery rates)."""
        return cls(
            sink=stats.sink,
            accept_loss=stats.accept_loss,
            connected=stats.connected,
            delivered=stats.delivered,
            delivered_per_s=round(stats.delivered_per_s(steady), 2),
            backlog_records=stats.backlog_records,
            backlog_bytes=stats.backlog_bytes,
            oldest_undelivered_s=seconds_since(stats.oldest_undelivered_ts, now),
            failures=stats.failures,
            last_error=stats.last_error,
        )

    @property
    def delivery(self) -> str:
        return "at-most-once (accept_loss)" if self.accept_loss else "at-least-once"

    def fields(self) -> dict[str, Any]:
        """As /health and the delivery record carry it."""
        return {
            "sink": self.sink,
            "delivery": self.delivery,
            "accept_loss": self.accept_loss,
            "connected": self.connected,
            "delivered": self.delivered,
            "delivered_per_s": self.delivered_per_s,
            "backlog_records": self.backlog_records,
            "backlog_bytes": self.backlog_bytes,
            "oldest_undelivered_s": self.oldest_undelivered_s,
            "failures": self.failures,
            "last_error": self.last_error,
        }


@dataclass(frozen=True)
class StorageSnapshot:
    committed: int
    unwritable: bool
    unwritable_reason: str | None
    waiting_in_memory: int
    dropped_in_memory: Mapping[str, int]
    refused: Mapping[str, int]
    salvaged: int
    lost_to_corruption: int
    problems: tuple[str, ...]

    @classmethod
    def of(cls, health: StorageHealth) -> Self:
        return cls(
            committed=health.stored,
            unwritable=health.unwritable,
            unwritable_reason=health.unwritable_reason,
            waiting_in_memory=health.waiting_in_memory,
            dropped_in_memory=dict(health.dropped_in_memory),
            refused=dict(health.refused),
            salvaged=health.salvaged,
            lost_to_corruption=health.lost_to_corruption,
            problems=tuple(health.problems),
        )


@dataclass(frozen=True)
class LoopSnapshot:
    name: str
    restarts: int
    last_error: str | None
    last_failure_s_ago: float | None

    @classmethod
    def of(cls, health: LoopHealth, now: float) -> Self:
        return cls(
            health.name, health.restarts, health.last_error, seconds_since(health.last_failure_ts, now)
        )


@dataclass(frozen=True)
class AgentSnapshot:
    agent: str
    language: str  # what people read the agent's state in (`edge-agent status`)
    config_file: str
    config_version: str
    at: float  # the agent's clock when it was taken
    connections: tuple[ConnectionSnapshot, ...]
    outputs: tuple[OutputSnapshot, ...]
    storage: StorageSnapshot
    loops: tuple[LoopSnapshot, ...]

    def connection(self, name: str) -> ConnectionSnapshot:
        return next(c for c in self.connections if c.name == name)

    def device(self, device: str) -> DeviceSnapshot | None:
        return next((d for c in self.connections for d in c.devices if d.id == device), None)

    @property
    def devices_up(self) -> int:
        return sum(c.devices_up for c in self.connections)

    @property
    def devices(self) -> int:
        return sum(len(c.devices) for c in self.connections)

    @property
    def ok(self) -> bool:
        """Every device answers, every output delivers (or has nothing to deliver), and no loop
        failed within LOOP_TROUBLE_S."""
        return (
            self.devices_up == self.devices
            and all(o.connected or o.backlog_records == 0 for o in self.outputs)
            and not any(
                loop.last_failure_s_ago is not None and loop.last_failure_s_ago < LOOP_TROUBLE_S
                for loop in self.loops
            )
        )


__all__ = [
    "LOOP_TROUBLE_S",
    "AgentSnapshot",
    "ConnectionSnapshot",
    "DeviceSnapshot",
    "LoopSnapshot",
    "OutputSnapshot",
    "StorageSnapshot",
    "seconds_since",
]
