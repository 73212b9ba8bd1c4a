"""What every driver offers the runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, Self

from agent.samples import DeviceStatus, Sample

Clock = Callable[[], float]
# Takes a device's samples as soon as the device is read (the poller: to the KPI loop, waiting
# while it is behind), so a device read first does not wait for the rest of the cycle.
HandOver = Callable[[list[Sample]], Awaitable[None]]


@dataclass
class ReadResult:
    samples: list[Sample] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    requests: int = 0
    handed_over: int = 0  # samples[:handed_over] have gone to a HandOver already

    async def hand_over(self, to: HandOver | None) -> None:
        """The samples added since the last hand-over, to `to` (nothing when there are none)."""
        if to is None or len(self.samples) == self.handed_over:
            return
        fresh = self.samples[self.handed_over :]
        self.handed_over = len(self.samples)
        await to(fresh)


class Driver(Protocol):
    name: str
    interval_s: float

    @property
    def endpoint(self) -> str:
        """Where the connection goes, for people: host:port, a serial port, an OPC UA URL."""
        ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def read(self, hand_over: HandOver | None = None) -> ReadResult:
        """One poll cycle of every device on the connection; never raises for device faults. Every
        sample is in the result; a driver that reads device by device also gives each device's
        samples to hand_over (`ReadResult.hand_over`) as soon as the device is read."""
        ...
