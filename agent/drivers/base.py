"""What every driver offers the runtime."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, Self

from agent.samples import DeviceStatus, Sample

Clock = Callable[[], float]


@dataclass
class ReadResult:
    samples: list[Sample] = field(default_factory=list)
    statuses: list[DeviceStatus] = field(default_factory=list)
    requests: int = 0


class Driver(Protocol):
    name: str
    interval_s: float

    @property
    def endpoint(self) -> str:
        """Where the connection goes, for people: host:port, a serial port, an OPC UA URL."""
        ...

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def read(self) -> ReadResult:
        """One poll cycle of every device on the connection; never raises for device faults."""
        ...
