"""The `_historian` payloads of `topic_style: umh`, as JSON Schemas derived from the record schemas.

Each one is stricter than UMH's published schema and within it: `timestamp_ms` an integer, at
least one more key, every value a string, number or boolean. The keys are the record's (as
agent/sinks/umh.py flattens them): null values are left out, a list of words is one
comma-separated string, a nested object becomes `<key>_<subkey>` keys.
"""

from __future__ import annotations

import re
from typing import Any

from agent.records import RecordKind
from agent.schemas.records import DRAFT, Schema, record_schemas, typed
from agent.sinks.umh import CREW_KINDS, IN_TOPIC

SCALAR_TYPES = ("string", "number", "integer", "boolean")
SCALAR = typed("string", "number", "boolean")
UMH_HISTORIAN_RULES: Schema = {
    "type": "object",
    "required": ["timestamp_ms"],
    "minProperties": 2,
}


def _types(schema: Schema) -> list[str]:
    declared = schema["type"]
    return [t for t in ([declared] if isinstance(declared, str) else declared) if t != "null"]


def _without_null(schema: Schema) -> Schema:
    kept = {key: value for key, value in schema.items() if key not in ("type", "description")}
    types = _types(schema)
    return {"type": types[0] if len(types) == 1 else types, **kept}


def _add(key: str, schema: Schema, properties: dict[str, Schema], patterns: dict[str, Schema]) -> None:
    types = _types(schema)
    if types == ["object"] and "properties" in schema:
        for sub, sub_schema in schema["properties"].items():
            _add(f"{key}_{sub}", sub_schema, properties, patterns)
    elif types == ["object"]:
        patterns[f"^{re.escape(key)}_.+$"] = SCALAR
    elif types == ["array"] and _types(schema["items"]) == ["string"]:
        properties[key] = typed("string", description="comma-separated")
    elif types == ["array"]:
        for sub, sub_schema in schema["items"]["properties"].items():
            patterns[f"^{re.escape(key)}_[0-9]+_{re.escape(sub)}$"] = _without_null(sub_schema)
    else:
        properties[key] = _without_null(schema)


def historian_schema(kind: RecordKind, record: Schema) -> Schema:
    title = f"{kind.value} as a UMH _historian message"
    if kind is RecordKind.TAGS:
        return {
            "$schema": DRAFT,
            "title": title,
            **UMH_HISTORIAN_RULES,
            "properties": {"timestamp_ms": typed("integer")},
            "additionalProperties": SCALAR,
        }
    properties: dict[str, Schema] = {"timestamp_ms": typed("integer", description="Unix milliseconds")}
    patterns: dict[str, Schema] = {}
    skipped = IN_TOPIC | ({"crew"} if kind in CREW_KINDS else set())
    for key, schema in record["properties"].items():
        if key not in skipped:
            _add(key, schema, properties, patterns)
    result: dict[str, Any] = {
        "$schema": DRAFT,
        "title": title,
        "description": record["description"],
        **UMH_HISTORIAN_RULES,
        "properties": properties,
        "additionalProperties": False,
    }
    if patterns:
        result["patternProperties"] = patterns
    return result


HISTORIAN_KINDS = tuple(k for k in RecordKind if k not in (RecordKind.AGENT, RecordKind.EVENT))


def historian_schemas() -> dict[RecordKind, Schema]:
    records = record_schemas()
    return {kind: historian_schema(kind, records[kind]) for kind in HISTORIAN_KINDS}
