"""Records as InfluxDB points: measurement, tags, fields.

Every point carries the gateway's place and name as tags (enterprise, site, area, agent), so
gateways that share one database never write into each other's series, even with the same machine
ids. Fields are numbers with units in their names, plus the few strings a dashboard selects by
(a machine's state, the start of a record's shift, its production day), the grid factor's id an
energy figure was computed with, or shows (the display names). A null figure is no field at all,
never 0. Names are fields, not tags: a tag is part of a series' identity, so renaming a machine
would split its history in two, and a name adds nothing to select by that its id does not have.

This is the schema Grafana dashboards query; SCHEMA below lists it so tests can hold the two
together.
"""

from __future__ import annotations

from influxdb_client.client.write.point import Point
from influxdb_client.domain.write_precision import WritePrecision

from agent.kpi.states import MachineState
from agent.records import Envelope, RecordKind, epoch_ms
from agent.sinks.topics import TopicRoot

MEASUREMENT = {
    RecordKind.STATE: "machine_state",
    RecordKind.OEE: "oee",
    RecordKind.LINE_OEE: "oee",
    RecordKind.WORKSHOP_OEE: "oee",
    RecordKind.ENERGY: "energy",
    RecordKind.LINE_ENERGY: "energy",
    RecordKind.WORKSHOP_ENERGY: "energy",
    RecordKind.CREW_OEE: "oee",
    RecordKind.CREW_ENERGY: "energy",
    RecordKind.TAGS: "tag",
}
SCOPE = {
    RecordKind.OEE: "machine",
    RecordKind.LINE_OEE: "line",
    RecordKind.WORKSHOP_OEE: "workshop",
    RecordKind.CREW_OEE: "crew",
    RecordKind.ENERGY: "machine",
    RecordKind.LINE_ENERGY: "line",
    RecordKind.WORKSHOP_ENERGY: "workshop",
    RecordKind.CREW_ENERGY: "crew",
}
TAG_FIELDS = ("line", "machine", "shift", "period", "crew", "sink")
ORIGIN_TAGS = ("enterprise", "site", "area", "agent")
NAME_FIELDS = frozenset({"machine_name", "line_name", "shift_name", "crew_name", "workshop_name"})
# Text fields, by the measurement they belong to; every other text in a record stays out.
TEXT_FIELDS = {
    RecordKind.STATE: frozenset({"state", "reason", "machine_name", "line_name"}),
    **{kind: frozenset({"shift_start", "day"}) | NAME_FIELDS for kind in SCOPE},
    **{
        kind: frozenset({"shift_start", "day", "grid_factor"}) | NAME_FIELDS
        for kind in (
            RecordKind.ENERGY,
            RecordKind.LINE_ENERGY,
            RecordKind.WORKSHOP_ENERGY,
            RecordKind.CREW_ENERGY,
        )
    },
}
# Carbon fields are named by the site's grid factor: CO2-only (the MEE factors) or CO2e.
CARBON_FIELDS = {
    "co2": ("co2_kg", "co2_kg_per_unit", "kg_co2_per_kwh"),
    "co2e": ("co2e_kg", "co2e_kg_per_unit", "kg_co2e_per_kwh"),
}
STATE_CODE = {state: index for index, state in enumerate(MachineState)}  # for panels that need numbers
SCHEMA = {
    "machine_state": {
        "tags": (*ORIGIN_TAGS, "line", "machine"),
        "fields": ("state", "state_code", "reason", "machine_name", "line_name"),
    },
    "oee": {
        "tags": (*ORIGIN_TAGS, "line", "machine", "shift", "period", "crew", "scope"),
        "fields": (
            "shift_start",
            "day",
            *sorted(NAME_FIELDS),
            "pbt_s",
            "apt_s",
            "setup_s",
            "idle_s",
            "fault_s",
            "micro_stop_s",
            "micro_stops",
            "planned_stop_s",
            "no_shift_s",
            "offline_s",
            "ideal_s",
            "ideal_good_s",
            "produced",
            "good",
            "produced_unobserved",
            "produced_quality_inferred",
            "good_counted",
            "availability",
            "performance",
            "quality",
            "oee",
            "nee",
            "teep",
            "coverage",
            "final",
        ),
    },
    "energy": {
        "tags": (*ORIGIN_TAGS, "line", "machine", "shift", "period", "crew", "scope"),
        "fields": (
            "shift_start",
            "day",
            *sorted(NAME_FIELDS),
            "kwh",
            "kwh_producing",
            "kwh_idle",
            "kwh_no_shift",
            "kwh_unattributed",
            "kwh_per_unit",
            "kwh_per_good",
            "idle_energy_share",
            "kgce",
            "kgce_per_unit",
            "kgce_per_good",
            "kgce_per_kwh",
            *CARBON_FIELDS["co2"],
            *CARBON_FIELDS["co2e"],
            "grid_factor",
            "grid_factor_year",
            "kw",
            "kwh_main_meter",
            "unmetered_share",
            "final",
        ),
    },
}


def to_points(envelope: Envelope, topics: TopicRoot) -> list[Point]:
    """One point per record; the agent's own record becomes one point per sink and connection."""
    record = envelope.record
    if record.kind is not RecordKind.AGENT:
        point = to_point(envelope, topics)
        return [] if point is None else [point]
    points = []
    fields = record.fields
    parts: list[tuple[dict[str, str], dict[str, object]]] = [
        (
            {"part": "outbox"},
            {
                "outbox_unwritable": fields.get("outbox_unwritable"),
                "waiting_in_memory": fields.get("waiting_in_memory"),
            },
        )
    ]
    parts += [({"part": "sink", "sink": str(s["sink"])}, s) for s in fields.get("sinks", [])]
    parts += [
        ({"part": "connection", "connection": name}, c) for name, c in fields.get("connections", {}).items()
    ]
    for tags, values in parts:
        point = origin(Point("agent"), envelope, topics)
        point.time(epoch_ms(record.ts), WritePrecision.MS)
        for tag_key, tag_value in tags.items():
            point.tag(tag_key, tag_value)
        numeric = {k: v for k, v in values.items() if isinstance(v, int | float) and k not in tags}
        for field_key, number in numeric.items():
            point.field(field_key, float(number))
        if numeric:
            points.append(point)
    return points


def to_point(envelope: Envelope, topics: TopicRoot) -> Point | None:
    """None for records without a measurement or without a single numeric value."""
    record = envelope.record
    measurement = MEASUREMENT.get(record.kind)
    if measurement is None:
        return None
    point = origin(Point(measurement), envelope, topics)
    point.time(epoch_ms(record.ts), WritePrecision.MS)
    for tag in TAG_FIELDS:
        tag_value = record.fields.get(tag)
        if isinstance(tag_value, str) and tag_value:
            point.tag(tag, tag_value)
    if record.kind in SCOPE:
        point.tag("scope", SCOPE[record.kind])
    fields = record.fields.get("values") if record.kind is RecordKind.TAGS else record.fields
    text_fields = TEXT_FIELDS.get(record.kind, frozenset())
    has_field = False
    for key, value in (fields or {}).items():
        if key in TAG_FIELDS or value is None:
            continue
        if isinstance(value, bool):
            point.field(key, int(value))
        elif isinstance(value, int | float):
            point.field(
                key, float(value)
            )  # one type per field for ever: an int now and a float later is a 400
        elif key in text_fields and isinstance(value, str):
            point.field(key, value)
        else:
            continue
        has_field = True
    if record.kind is RecordKind.STATE:
        point.field("state_code", STATE_CODE[MachineState(record.fields["state"])])
        has_field = True
    return point if has_field else None


def origin(point: Point, envelope: Envelope, topics: TopicRoot) -> Point:
    """The tags that say which gateway wrote a point, and for which part of which plant."""
    for key, value in zip(
        ORIGIN_TAGS, (topics.enterprise, topics.site, topics.area, envelope.agent), strict=True
    ):
        point.tag(key, value)
    return point
