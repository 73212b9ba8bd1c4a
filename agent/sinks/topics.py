"""Where each record goes: MQTT topics (Unified Namespace) and InfluxDB measurements and tags."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from agent.records import Envelope, RecordKind

MACHINE_TOPICS = {
    RecordKind.STATE: "state",
    RecordKind.OEE: "oee",
    RecordKind.ENERGY: "energy",
    RecordKind.TAGS: "tags",
}
LINE_TOPICS = {RecordKind.LINE_OEE: "oee", RecordKind.LINE_ENERGY: "energy"}
WORKSHOP_TOPICS = {RecordKind.WORKSHOP_OEE: "oee", RecordKind.WORKSHOP_ENERGY: "energy"}
# A crew is no ISA-95 equipment level: its day totals go under `_crew`, which no line id can be
# (ids start with a letter or digit).
CREW_TOPICS = {RecordKind.CREW_OEE: "oee", RecordKind.CREW_ENERGY: "energy"}
AGENT_TOPICS = {RecordKind.AGENT: "delivery", RecordKind.EVENT: "events"}


class MqttTopics(Protocol):
    """A topic style of the MQTT output: where each record goes and how it is written."""

    @property
    def status(self) -> str: ...
    def topic(self, envelope: Envelope) -> str: ...
    def payload(self, envelope: Envelope) -> bytes | None: ...


@dataclass(frozen=True)
class TopicRoot:
    enterprise: str
    site: str
    area: str
    agent: str

    @property
    def root(self) -> str:
        return f"{self.enterprise}/{self.site}/{self.area}"

    @property
    def status(self) -> str:
        """Retained `online` birth and `offline` last will."""
        return f"{self.root}/_agent/{self.agent}/status"

    def topic(self, envelope: Envelope) -> str:
        record = envelope.record
        if record.kind in MACHINE_TOPICS:
            return f"{self.root}/{record.line}/{record.machine}/{MACHINE_TOPICS[record.kind]}"
        if record.kind in LINE_TOPICS:
            return f"{self.root}/{record.line}/{LINE_TOPICS[record.kind]}"
        if record.kind in WORKSHOP_TOPICS:
            return f"{self.root}/{WORKSHOP_TOPICS[record.kind]}"
        if record.kind in CREW_TOPICS:
            return f"{self.root}/_crew/{record.fields['crew']}/{CREW_TOPICS[record.kind]}"
        return f"{self.root}/_agent/{self.agent}/{AGENT_TOPICS[record.kind]}"

    def payload(self, envelope: Envelope) -> bytes | None:
        return envelope.payload_json()
