"""What every sink offers the runtime."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, Self, runtime_checkable

from agent.config.compiled import AgentConfig
from agent.records import Envelope


class Sink(Protocol):
    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def write(self, batch: Sequence[Envelope]) -> None:
        """Return only when the batch is stored or acknowledged."""
        ...


@runtime_checkable
class Reconfigurable(Protocol):
    """A sink whose output depends on the workshop (a Sparkplug birth names every machine's
    metrics): told of a configuration reloaded by SIGHUP. Its own settings apply at a restart."""

    def reconfigure(self, config: AgentConfig) -> None: ...


__all__ = ["Envelope", "Reconfigurable", "Sink"]
