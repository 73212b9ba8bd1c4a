"""Records: what the KPI engine produces and the outputs deliver."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import orjson


class RecordKind(StrEnum):
    STATE = "state"
    OEE = "oee"
    ENERGY = "energy"
    TAGS = "tags"
    LINE_OEE = "line_oee"
    WORKSHOP_OEE = "workshop_oee"
    LINE_ENERGY = "line_energy"
    WORKSHOP_ENERGY = "workshop_energy"
    CREW_OEE = "crew_oee"  # a crew's totals of a production day, over the workshop
    CREW_ENERGY = "crew_energy"
    EVENT = "event"
    AGENT = "agent"  # the agent's own health and delivery figures


@dataclass(frozen=True)
class Record:
    kind: RecordKind
    ts: float
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def machine(self) -> str | None:
        value = self.fields.get("machine")
        return value if isinstance(value, str) else None

    @property
    def line(self) -> str | None:
        value = self.fields.get("line")
        return value if isinstance(value, str) else None


EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(ts: float) -> int:
    """The one millisecond a record's time is published as, in every output."""
    return round(ts * 1_000_000) // 1000


def rfc3339_ms(ts: float) -> str:
    """UTC, RFC 3339 with milliseconds, as the MQTT contract specifies."""
    moment = EPOCH + dt.timedelta(milliseconds=epoch_ms(ts))
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def to_json(value: Any) -> bytes:
    """JSON as the outbox stores it and every output writes it: UTF-8, and NaN and infinity as
    null (JSON has neither; the record's flags say why a figure is missing)."""
    return orjson.dumps(value, default=str)


def from_json(text: str | bytes) -> Any:
    return orjson.loads(text)


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
        return body

    def payload_json(self) -> bytes:
        return to_json(self.payload())
