"""Every MQTT topic shape of both topic styles, with the schema its payloads follow.

A placeholder `{name}` in a topic stands for one topic level: an id of the workshop file
(`{line}`, `{machine}`, `{crew}`, `{agent}`, ...) or, in the umh style, that id as UMH allows it
(agent/sinks/umh.py: umh_level), or `{period}`: `shift` or `day`. tests/unit/test_schemas.py
holds this list equal to what agent/sinks/topics.py and agent/sinks/umh.py publish.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from agent.records import RecordKind

ISA95_ROOT = "{enterprise}/{site}/{area}"
UMH_ROOT = "umh/v1/{enterprise}/{site}/{area}"
STATUS = "status"
# An id of the workshop file never starts with `_` (config IDENTIFIER_PATTERN), so `_crew` and
# `_agent` are never a line; as UMH levels, ids keep to UMH's characters.
PLACEHOLDER_PATTERNS = {
    "isa95": r"[a-z0-9][a-z0-9_.-]*",
    "umh": r"[A-Za-z0-9-][A-Za-z0-9_-]*",
}
PERIOD_PATTERN = "(shift|day)"


@dataclass(frozen=True)
class TopicShape:
    style: str  # isa95 | umh
    topic: str
    kind: RecordKind | None  # None: the agent's status (plain text)
    schema: str  # the file in agent/schemas/json/

    def pattern(self) -> re.Pattern[str]:
        return _compiled(self.style, self.topic)


@functools.cache
def _compiled(style: str, topic: str) -> re.Pattern[str]:
    level = PLACEHOLDER_PATTERNS[style]
    parts = re.split(r"(\{[a-z]+\})", topic)
    regex = "".join(
        (PERIOD_PATTERN if part == "{period}" else level) if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(f"^{regex}$")


def record_schema_file(kind: RecordKind) -> str:
    return f"record-{kind.value}.schema.json"


def umh_schema_file(kind: RecordKind) -> str:
    return f"umh-{kind.value}.schema.json"


STATUS_FILE = "status.schema.json"
ISA95_TOPICS: dict[RecordKind, str] = {
    RecordKind.STATE: "{line}/{machine}/state",
    RecordKind.OEE: "{line}/{machine}/oee",
    RecordKind.ENERGY: "{line}/{machine}/energy",
    RecordKind.TAGS: "{line}/{machine}/tags",
    RecordKind.LINE_OEE: "{line}/oee",
    RecordKind.LINE_ENERGY: "{line}/energy",
    RecordKind.WORKSHOP_OEE: "oee",
    RecordKind.WORKSHOP_ENERGY: "energy",
    RecordKind.CREW_OEE: "_crew/{crew}/oee",
    RecordKind.CREW_ENERGY: "_crew/{crew}/energy",
    RecordKind.AGENT: "_agent/{agent}/delivery",
    RecordKind.EVENT: "_agent/{agent}/events",
}
UMH_TOPICS: dict[RecordKind, str] = {
    RecordKind.STATE: "{line}/{machine}/_historian/state",
    RecordKind.OEE: "{line}/{machine}/_historian/{period}/oee",
    RecordKind.ENERGY: "{line}/{machine}/_historian/{period}/energy",
    RecordKind.TAGS: "{line}/{machine}/_historian/tags",
    RecordKind.LINE_OEE: "{line}/_historian/{period}/oee",
    RecordKind.LINE_ENERGY: "{line}/_historian/{period}/energy",
    RecordKind.WORKSHOP_OEE: "_historian/{period}/oee",
    RecordKind.WORKSHOP_ENERGY: "_historian/{period}/energy",
    RecordKind.CREW_OEE: "_historian/crew/{crew}/day/oee",
    RecordKind.CREW_ENERGY: "_historian/crew/{crew}/day/energy",
    RecordKind.AGENT: "_agent/{agent}/delivery",
    RecordKind.EVENT: "_agent/{agent}/events",
}
UMH_OWN_PAYLOADS = frozenset({RecordKind.AGENT, RecordKind.EVENT})  # not historian data


@functools.cache
def topic_shapes() -> tuple[TopicShape, ...]:
    shapes = [
        TopicShape("isa95", f"{ISA95_ROOT}/{suffix}", kind, record_schema_file(kind))
        for kind, suffix in ISA95_TOPICS.items()
    ]
    shapes.append(TopicShape("isa95", f"{ISA95_ROOT}/_agent/{{agent}}/status", None, STATUS_FILE))
    for kind, suffix in UMH_TOPICS.items():
        schema = record_schema_file(kind) if kind in UMH_OWN_PAYLOADS else umh_schema_file(kind)
        shapes.append(TopicShape("umh", f"{UMH_ROOT}/{suffix}", kind, schema))
    shapes.append(TopicShape("umh", f"{UMH_ROOT}/_agent/{{agent}}/status", None, STATUS_FILE))
    return tuple(shapes)


def shape_of(style: str, topic: str) -> TopicShape | None:
    """The shape a published topic has, or None: a topic this catalogue does not know."""
    matches = [s for s in topic_shapes() if s.style == style and s.pattern().match(topic)]
    return matches[0] if len(matches) == 1 else None
