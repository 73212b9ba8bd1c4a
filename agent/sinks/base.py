"""What every sink offers the runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self

from agent.records import Envelope


class Sink(Protocol):
    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def write(self, batch: Sequence[Envelope]) -> None:
        """Return only when the batch is stored or acknowledged."""
        ...


__all__ = ["Envelope", "Sink"]
