"""JSON Schemas of the records as the isa95 style publishes them (Envelope.payload()).

The figure keys come from the functions that compute them (agent/kpi/fields.py), the envelope
keys from Envelope, the states from MachineState: a new OEE or energy figure, envelope key or
state is in the schema without an edit here. What the engine adds around them (ids, names, the
period) is listed below; every record of a demo run is validated against these schemas with no
unknown key allowed (tests/integration/test_published_schemas.py), so a key added there without
its schema fails a test.
"""

from __future__ import annotations

from typing import Any, get_args

from agent.kpi.energy import CarbonFactor, Gas
from agent.kpi.fields import energy_fields, oee_fields
from agent.kpi.oee import OeeTotals
from agent.kpi.states import MachineState
from agent.records import Envelope, Record, RecordKind

Schema = dict[str, Any]
DRAFT = "https://json-schema.org/draft/2020-12/schema"
RFC3339_MS = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
# An example grid factor: only its gas matters here, as the gas names the carbon fields.
EXAMPLE_FACTOR_KG_PER_KWH = 0.5
EXAMPLE_FACTOR_YEAR = 2023
EXAMPLE_KGCE_PER_KWH = 0.1229


def typed(*types: str, **extra: Any) -> Schema:
    return {"type": types[0] if len(types) == 1 else list(types), **extra}


TEXT = typed("string")
TEXT_OR_NULL = typed("string", "null")
NUMBER_OR_NULL = typed("number", "null")
COUNT = typed("integer", minimum=0)
COUNTS_BY_NAME = typed("object", additionalProperties=COUNT)

ENVELOPE: dict[str, Schema] = {
    "ts": typed("string", pattern=RFC3339_MS, description="the record's time, UTC, RFC 3339 with ms"),
    "agent": typed("string", description="the agent's id: consumers drop duplicates by (agent, seq)"),
    "seq": typed("integer", minimum=0, description="per agent, strictly increasing"),
    "kind": TEXT,
}
MACHINE_IDS: dict[str, Schema] = {
    "machine": TEXT,
    "machine_name": TEXT,
    "line": TEXT,
    "line_name": TEXT,
}
LINE_IDS: dict[str, Schema] = {"line": TEXT, "line_name": TEXT}
WORKSHOP_IDS: dict[str, Schema] = {"workshop_name": TEXT_OR_NULL}
PERIOD: dict[str, Schema] = {
    "period": typed("string", enum=["shift", "day"], description="a shift (or no-shift stretch), or a day"),
    "shift": TEXT_OR_NULL,
    "shift_name": TEXT_OR_NULL,
    "crew": TEXT_OR_NULL,
    "crew_name": TEXT_OR_NULL,
    "day": typed("string", pattern=ISO_DATE, description="the production day, local"),
    "final": typed("boolean", description="false: the period so far; true: its closing figure"),
}
SHIFT_ONLY: dict[str, Schema] = {"shift_start": typed("string", pattern=RFC3339_MS)}
METER: Schema = typed(
    "object",
    properties={
        "id": TEXT,
        "own_plc": typed("boolean"),
        "accuracy_class": TEXT_OR_NULL,
        "ct_ratio": TEXT_OR_NULL,
        "calibration_due": typed("string", "null", pattern=ISO_DATE),
        "calibration_overdue": typed("boolean", "null"),
    },
    additionalProperties=False,
    description="the meter behind the figures (GB 17167)",
)
FLAGS: Schema = typed("array", items=TEXT, description="why a figure is missing or doubtful")
ROLL_UP_OEE: dict[str, Schema] = {
    "flags": FLAGS,  # the flags of its machines (or shifts) and its own
    "produced_quality_inferred": typed("number", minimum=0),
    "good_counted": NUMBER_OR_NULL,
}
MACHINE_OEE: dict[str, Schema] = {
    "quality_source": typed("string", description="the machine whose inspection gives the quality"),
    "flags": FLAGS,
}
SINK: Schema = typed(
    "object",
    properties={
        "sink": TEXT,
        "delivery": TEXT,
        "accept_loss": typed("boolean"),
        "connected": typed("boolean"),
        "delivered": COUNT,
        "delivered_per_s": typed("number"),
        "backlog_records": COUNT,
        "backlog_bytes": COUNT,
        "oldest_undelivered_s": NUMBER_OR_NULL,
        "failures": COUNT,
        "last_error": TEXT_OR_NULL,
    },
    additionalProperties=False,
)
CONNECTION: Schema = typed(
    "object",
    properties={
        "cycles": COUNT,
        "missed_cycles": COUNT,
        "requests": COUNT,
        "devices_up": COUNT,
        "devices": COUNT,
    },
    additionalProperties=False,
)
AGENT: dict[str, Schema] = {
    "sinks": typed("array", items=SINK),
    "connections": typed("object", additionalProperties=CONNECTION),
    "outbox_unwritable": typed("boolean"),
    "waiting_in_memory": COUNT,
    "dropped_in_memory": COUNTS_BY_NAME,
    "refused": COUNTS_BY_NAME,
    "loop_restarts": COUNTS_BY_NAME,
}
TAG_VALUE = typed("number", "string", "boolean", "null")


FIGURES_NOT_RATIOS: dict[str, Schema] = {
    "micro_stops": COUNT,
    "produced": typed("number", "null", minimum=0, description="whole parts"),
    "good": typed("number", "null", minimum=0, description="whole parts"),
    "grid_factor": typed("string", description="the id of the grid emission factor used"),
    "grid_factor_year": typed("integer"),
    "kgce_per_kwh": typed("number", description="the standard coal coefficient used"),
}


def figure_schema(key: str) -> Schema:
    """The type of an OEE or energy figure, by the unit its key names: seconds, counts, and
    ratios and energy figures that are null when undefined (DESIGN: undefined is null, not 0)."""
    if key in FIGURES_NOT_RATIOS:
        return FIGURES_NOT_RATIOS[key]
    if key.endswith("_s"):
        return typed("number", minimum=0, description="seconds")
    return NUMBER_OR_NULL


def oee_figures() -> dict[str, Schema]:
    return {key: figure_schema(key) for key in oee_fields(OeeTotals())}


def energy_figures() -> tuple[dict[str, Schema], dict[str, Schema]]:
    """The energy figures always present, and those of a carbon factor (named by its gas)."""
    plain = energy_fields(None, OeeTotals(), EXAMPLE_KGCE_PER_KWH, None)
    carbon: dict[str, Schema] = {}
    for gas in get_args(Gas):
        factor = CarbonFactor("example", gas, EXAMPLE_FACTOR_KG_PER_KWH, EXAMPLE_FACTOR_YEAR)
        with_factor = energy_fields(None, OeeTotals(), EXAMPLE_KGCE_PER_KWH, factor)
        carbon |= {key: figure_schema(key) for key in with_factor if key not in plain}
    return {key: figure_schema(key) for key in plain}, carbon


def record_schema(
    kind: RecordKind, title: str, required: dict[str, Schema], optional: dict[str, Schema] | None = None
) -> Schema:
    envelope_keys = set(Envelope("agent", 0, Record(kind, 0.0)).payload())
    if envelope_keys != set(ENVELOPE):
        raise RuntimeError(f"Envelope.payload() has keys {sorted(envelope_keys)}; ENVELOPE lists others")
    properties = {**ENVELOPE, "kind": typed("string", const=kind.value), **required, **(optional or {})}
    return {
        "$schema": DRAFT,
        "title": f"{kind.value} record",
        "description": title,
        "type": "object",
        "properties": properties,
        "required": [*ENVELOPE, *required],
        "additionalProperties": False,
    }


def record_schemas() -> dict[RecordKind, Schema]:
    """One schema per record kind, as the isa95 style publishes it."""
    oee = oee_figures()
    energy, carbon = energy_figures()
    period_optional = {**SHIFT_ONLY}
    machine_energy_optional = {**carbon, **SHIFT_ONLY, "kw": NUMBER_OR_NULL}
    workshop_energy_optional = {
        **carbon,
        **SHIFT_ONLY,
        "kwh_main_meter": NUMBER_OR_NULL,
        "unmetered_share": NUMBER_OR_NULL,
        "main_meters": typed("array", items=METER),
    }
    states = [state.value for state in MachineState]
    schemas = {
        RecordKind.STATE: record_schema(
            RecordKind.STATE,
            "a machine's state: on every change and again with each periodic publication",
            {
                **MACHINE_IDS,
                "state": typed("string", enum=states),
                "since": typed("string", pattern=RFC3339_MS, description="when the state began"),
                "reason": TEXT_OR_NULL,
            },
        ),
        RecordKind.OEE: record_schema(
            RecordKind.OEE,
            "a machine's OEE (ISO 22400-2) of a shift so far, a closed shift, or a day",
            {**MACHINE_IDS, **PERIOD, **oee, **MACHINE_OEE},
            period_optional,
        ),
        RecordKind.ENERGY: record_schema(
            RecordKind.ENERGY,
            "a machine's energy, standard coal and carbon of a shift or a day",
            {**MACHINE_IDS, **PERIOD, **energy, "meter": METER},
            machine_energy_optional,
        ),
        RecordKind.TAGS: record_schema(
            RecordKind.TAGS,
            "raw tag values of one poll (publish_tags)",
            {"machine": TEXT, "line": TEXT, "values": typed("object", additionalProperties=TAG_VALUE)},
        ),
        RecordKind.LINE_OEE: record_schema(
            RecordKind.LINE_OEE,
            "a line's OEE: sums of its machines' times and counts (a serial line: its constraint's)",
            {**LINE_IDS, **PERIOD, **oee, **ROLL_UP_OEE},
            {**period_optional, "constraint": TEXT},
        ),
        RecordKind.WORKSHOP_OEE: record_schema(
            RecordKind.WORKSHOP_OEE,
            "the workshop's OEE: sums over every machine",
            {**WORKSHOP_IDS, **PERIOD, **oee, **ROLL_UP_OEE},
            period_optional,
        ),
        RecordKind.LINE_ENERGY: record_schema(
            RecordKind.LINE_ENERGY,
            "a line's energy over its machines whose energy was measured",
            {**LINE_IDS, **PERIOD, **energy},
            {**carbon, **SHIFT_ONLY},
        ),
        RecordKind.WORKSHOP_ENERGY: record_schema(
            RecordKind.WORKSHOP_ENERGY,
            "the workshop's energy, with its main meters where it has them",
            {**WORKSHOP_IDS, **PERIOD, **energy},
            workshop_energy_optional,
        ),
        RecordKind.CREW_OEE: record_schema(
            RecordKind.CREW_OEE,
            "a crew's OEE of a production day over the whole workshop",
            {**PERIOD, "crew": TEXT, **oee, **ROLL_UP_OEE},
        ),
        RecordKind.CREW_ENERGY: record_schema(
            RecordKind.CREW_ENERGY,
            "a crew's energy of a production day over the whole workshop",
            {**PERIOD, "crew": TEXT, **energy},
            carbon,
        ),
        RecordKind.AGENT: record_schema(
            RecordKind.AGENT, "the agent's own health and delivery figures", AGENT
        ),
    }
    event = record_schema(RecordKind.EVENT, "an event of the agent (reserved: none is published yet)", {})
    event["additionalProperties"] = True
    schemas[RecordKind.EVENT] = event
    missing = set(RecordKind) - set(schemas)
    if missing:
        raise RuntimeError(f"record kinds without a schema: {sorted(missing)}")
    return schemas


STATUS_SCHEMA: Schema = {
    "$schema": DRAFT,
    "title": "agent status",
    "description": "plain text, not JSON: the retained `online` birth and the `offline` last will",
    "type": "string",
    "enum": ["online", "offline"],
}
