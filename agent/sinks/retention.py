"""Which MQTT messages are retained: the latest current figure of each topic, never an older one.

A retained message is what a subscriber gets the moment it subscribes, so it must be the present:
- Only current figures are retainable: a machine's state, the open shift so far and a closed
  shift's final (its last word until the next shift's first publication). A day's totals share
  the shift's topic in the isa95 style and would displace the current shift there, so they are
  published without the retain flag, which leaves the retained message alone (MQTT 3.1.1 3.3.1.3,
  MQTT 5 3.3.1.3). Crews have topics of their own, holding day totals only.
- Within one write only the last retainable message of a topic carries the flag: a replayed
  backlog sets each topic's retained message once, to its newest record.
- A topic is never given a retained message older (by sequence number) than one this output
  already sent it retained: a batch sent again after a broken connection does not put an older
  figure back, even for a moment.

Across an outage this holds by order: the outbox hands records to the output in sequence order
and a batch is acknowledged as a whole, so the newest record of a topic is always delivered last.
After a restart the first batch starts at the cursor and holds up to `max_inflight` records: all
that the broker may have received unacknowledged, so the second rule covers them too.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.config.outputs import RetainSettings
from agent.records import Envelope, Record, RecordKind

RETAIN_KEYS: dict[RecordKind, str] = {
    RecordKind.STATE: "state",
    RecordKind.OEE: "oee",
    RecordKind.LINE_OEE: "oee",
    RecordKind.WORKSHOP_OEE: "oee",
    RecordKind.ENERGY: "energy",
    RecordKind.LINE_ENERGY: "energy",
    RecordKind.WORKSHOP_ENERGY: "energy",
    RecordKind.TAGS: "tags",
    RecordKind.CREW_OEE: "crew",
    RecordKind.CREW_ENERGY: "crew",
    RecordKind.AGENT: "delivery",
}


def retainable(record: Record, settings: RetainSettings) -> bool:
    key = RETAIN_KEYS.get(record.kind)
    if key is None or not getattr(settings, key):
        return False
    return key == "crew" or record.fields.get("period") != "day"


class RetainedFigures:
    """Per topic, the sequence number of the newest message this output sent retained."""

    def __init__(self, settings: RetainSettings) -> None:
        self.settings = settings
        self.newest: dict[str, int] = {}

    def flags(self, batch: Sequence[tuple[str, Envelope]]) -> list[bool]:
        """The retain flag of each (topic, envelope) of a write, noting those sent retained."""
        last: dict[str, int] = {}
        for index, (topic, envelope) in enumerate(batch):
            if retainable(envelope.record, self.settings):
                last[topic] = index
        flags = [False] * len(batch)
        for topic, index in last.items():
            seq = batch[index][1].seq
            if seq >= self.newest.get(topic, seq):
                flags[index] = True
                self.newest[topic] = seq
        return flags
