"""The United Manufacturing Hub's Unified Namespace (`topic_style: umh`): topics and payloads.

UMH (data model v1, "Data Model (v2)" of its docs) reads MQTT topics
`umh/v1/<enterprise>/<site>/<area>/<productionLine>/<workCell>/<originID>/_<schema>/<tag group>...`
(its Kafka topics spell the same levels with dots: `umh.v1.<enterprise>...`). Levels before the
schema are positional and optional after the enterprise, and may hold only letters, digits, `-`
and `_` (`.`, `+`, `#` and `/` are MQTT or Kafka separators). A `_historian` payload is one JSON
object: `timestamp_ms` (integer, Unix milliseconds) and at least one more key whose value is a
string, a number or a boolean (never null); each key is stored as a tag at that time. Sources: the UMH docs,
docs/datamodel/messages/_index.md and _historian.md (tests/fixtures/umh/, with the versions).

Our mapping: the workshop is the area, a line the productionLine, a machine the workCell. A
figure's kind and period are its tag group (`_historian/shift/oee`, `_historian/day/energy`), so
a shift's figures and a day's totals are two time series, never one that jumps between them. The
agent's own records (delivery, status) are not historian data: they go under the `_agent` schema,
which UMH forwards and does not process, with the isa95 style's payloads.
"""

from __future__ import annotations

import math
import re
from typing import Any

from agent.records import Envelope, RecordKind, epoch_ms, to_json
from agent.sinks.topics import TopicRoot

UMH_PREFIX = "umh/v1"
HISTORIAN = "_historian"
UMH_LEVEL_FORBIDDEN = re.compile(r"[^A-Za-z0-9_-]")  # UMH: letters, digits, - and _ only
FIGURE_GROUPS = {
    RecordKind.OEE: "oee",
    RecordKind.LINE_OEE: "oee",
    RecordKind.WORKSHOP_OEE: "oee",
    RecordKind.CREW_OEE: "oee",
    RecordKind.ENERGY: "energy",
    RecordKind.LINE_ENERGY: "energy",
    RecordKind.WORKSHOP_ENERGY: "energy",
    RecordKind.CREW_ENERGY: "energy",
}
MACHINE_KINDS = frozenset({RecordKind.STATE, RecordKind.OEE, RecordKind.ENERGY, RecordKind.TAGS})
LINE_KINDS = frozenset({RecordKind.LINE_OEE, RecordKind.LINE_ENERGY})
CREW_KINDS = frozenset({RecordKind.CREW_OEE, RecordKind.CREW_ENERGY})
# Carried by the topic, so not repeated as tags in every message; `ts` becomes timestamp_ms.
IN_TOPIC = frozenset({"ts", "kind", "machine", "line"})


def umh_level(identifier: str) -> str:
    """An id as a UMH topic level or tag name: every character UMH does not allow becomes `-`,
    and so does a leading `_` (which would start a schema). Ids of the workshop file are lower-case
    ASCII starting with a letter or digit, so only `.` changes: `line.1` is `line-1`."""
    level = UMH_LEVEL_FORBIDDEN.sub("-", identifier)
    return "-" + level[1:] if level.startswith("_") else level


def _flatten(prefix: str, value: Any, into: dict[str, str | int | float | bool]) -> None:
    """UMH takes strings, numbers and booleans only: null is left out (no value at that time),
    a list of words is joined with commas, a nested object or list of objects becomes
    `<key>_<subkey>` / `<key>_<index>_<subkey>` tags."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return
    if isinstance(value, bool | int | float | str):
        into[prefix] = value
    elif isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}_{umh_level(str(key))}", item, into)
    elif isinstance(value, list | tuple):
        if all(isinstance(item, str) for item in value):
            if value:
                into[prefix] = ",".join(value)
        else:
            for index, item in enumerate(value):
                _flatten(f"{prefix}_{index}", item, into)
    else:
        into[prefix] = str(value)


def historian_payload(envelope: Envelope) -> dict[str, str | int | float | bool]:
    """A record as one `_historian` message: timestamp_ms and its values, scalar and non-null."""
    record = envelope.record
    body: dict[str, str | int | float | bool] = {"timestamp_ms": epoch_ms(record.ts)}
    if record.kind is RecordKind.TAGS:
        values = record.fields.get("values") or {}
        for tag, value in values.items():
            _flatten(umh_level(str(tag)), value, body)
        return body
    body["agent"] = envelope.agent
    body["seq"] = envelope.seq
    for key, value in record.fields.items():
        if key in IN_TOPIC or (key == "crew" and record.kind in CREW_KINDS):
            continue
        _flatten(key, value, body)
    return body


class UmhTopics:
    """Topics and payloads of `topic_style: umh`."""

    def __init__(self, root: TopicRoot) -> None:
        self.agent = root.agent
        self.root = "/".join([UMH_PREFIX, *(umh_level(x) for x in (root.enterprise, root.site, root.area))])

    @property
    def status(self) -> str:
        return f"{self.root}/_agent/{umh_level(self.agent)}/status"

    def topic(self, envelope: Envelope) -> str:
        record = envelope.record
        kind = record.kind
        if kind in MACHINE_KINDS:
            where = f"{self.root}/{umh_level(record.line or '')}/{umh_level(record.machine or '')}"
        elif kind in LINE_KINDS:
            where = f"{self.root}/{umh_level(record.line or '')}"
        elif kind in FIGURE_GROUPS:
            where = self.root
        elif kind is RecordKind.AGENT:
            return f"{self.root}/_agent/{umh_level(self.agent)}/delivery"
        else:
            return f"{self.root}/_agent/{umh_level(self.agent)}/events"
        if kind is RecordKind.STATE:
            return f"{where}/{HISTORIAN}/state"
        if kind is RecordKind.TAGS:
            return f"{where}/{HISTORIAN}/tags"
        period = "day" if record.fields.get("period") == "day" else "shift"
        group = f"{period}/{FIGURE_GROUPS[kind]}"
        if kind in CREW_KINDS:
            group = f"crew/{umh_level(str(record.fields.get('crew')))}/{group}"
        return f"{where}/{HISTORIAN}/{group}"

    def payload(self, envelope: Envelope) -> bytes | None:
        """None: nothing to publish (a tags record without a value UMH could store)."""
        if envelope.record.kind in (RecordKind.AGENT, RecordKind.EVENT):
            return envelope.payload_json()
        body = historian_payload(envelope)
        return to_json(body) if len(body) > 1 else None
