"""What every sink offers the runtime, and the envelope every record is delivered in."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

from agent.records import Record, json_safe, rfc3339_ms


@dataclass(frozen=True)
class Envelope:
    """A record as delivered: stamped with the agent's id and its sequence number."""

    agent: str
    seq: int
    record: Record

    def payload(self) -> dict[str, Any]:
        body = {
            "ts": rfc3339_ms(self.record.ts),
            "agent": self.agent,
            "seq": self.seq,
            "kind": self.record.kind.value,
        }
        body.update(self.record.fields)
        return dict(json_safe(body))


class Sink(Protocol):
    name: str

    async def __aenter__(self) -> Self: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def write(self, batch: Sequence[Envelope]) -> None:
        """Return only when the batch is stored or acknowledged."""
        ...
