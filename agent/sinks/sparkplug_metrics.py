"""The Sparkplug B metric set of a workshop, known before any record exists: a birth certificate
must name every metric with its datatype and alias (Sparkplug 3.0, 6.4.4), so it is derived from
the compiled configuration (machines, lines, meters, tags) and from the same field functions the
KPI engine publishes with (agent/kpi/fields.py).

Each machine, each line and the workshop (its ISA-95 area id) is a device. Its metrics sit in
folders: `state`, `oee/…` and `energy/…` for the current shift (and each closed shift once, with
`oee/final` true), `oee_day/…` and `energy_day/…` for a production day's totals, `tags/…` for raw
values. Names are the record's keys: ASCII and stable, as in the JSON output.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.config.profile import DataType as TagType
from agent.config.profile import NodeSpec, TagSpec
from agent.kpi.fields import energy_fields, oee_fields
from agent.kpi.oee import OeeTotals
from agent.records import Envelope, RecordKind, epoch_ms
from agent.sinks.sparkplug_b import sparkplug_b_pb2 as pb

MetricValue = bool | int | float | str | None

# Record keys a metric would only repeat: the device says who, the folder says which period, and
# names (any language) belong to the JSON output; dicts and lists of dicts have no Sparkplug scalar.
NOT_PUBLISHED = frozenset(
    {
        "machine", "machine_name", "line", "line_name", "workshop_name", "shift_name",
        "crew_name", "period", "meter", "main_meters",
    }
)  # fmt: skip
COMMON = {
    "shift": pb.String,
    "shift_start": pb.DateTime,
    "crew": pb.String,
    "day": pb.String,
    "final": pb.Boolean,
}
COUNTS = frozenset({"micro_stops"})
MACHINE_OEE: dict[str, int] = {"quality_source": pb.String, "flags": pb.String}
ROLL_UP_OEE: dict[str, int] = {"produced_quality_inferred": pb.Double, "good_counted": pb.Double}
LINE_OEE: dict[str, int] = {"constraint": pb.String}
MACHINE_ENERGY: dict[str, int] = {"kw": pb.Double}
MAIN_METER_ENERGY: dict[str, int] = {"kwh_main_meter": pb.Double, "unmetered_share": pb.Double}
STATE: dict[str, int] = {"state": pb.String, "state/since": pb.DateTime, "state/reason": pb.String}
DAY = "day"  # a record's `period` for a production day's totals; any other is a shift's

MACHINE_KINDS = frozenset({RecordKind.STATE, RecordKind.OEE, RecordKind.ENERGY, RecordKind.TAGS})
LINE_KINDS = frozenset({RecordKind.LINE_OEE, RecordKind.LINE_ENERGY})
WORKSHOP_KINDS = frozenset({RecordKind.WORKSHOP_OEE, RecordKind.WORKSHOP_ENERGY})
OEE_KINDS = frozenset({RecordKind.OEE, RecordKind.LINE_OEE, RecordKind.WORKSHOP_OEE})


@dataclass(frozen=True)
class MetricDef:
    name: str
    alias: int  # unique over the edge node's metrics (tck-id-payloads-alias-uniqueness)
    datatype: int  # a Sparkplug DataType


@dataclass(frozen=True)
class DeviceDef:
    id: str
    metrics: Mapping[str, MetricDef]  # by name, in birth order


@dataclass(frozen=True)
class DeviceUpdate:
    """What one record changes: one device's metrics, at the record's time."""

    device: str
    values: tuple[tuple[MetricDef, MetricValue], ...]
    timestamp_ms: int


def _datatype_of(sample: object) -> int:
    if isinstance(sample, bool):
        return pb.Boolean
    if isinstance(sample, str):
        return pb.String
    if isinstance(sample, int):
        return pb.Int64
    return pb.Double  # a figure, or None: a figure not known yet


def _tag_datatype(spec: TagSpec | NodeSpec) -> int:
    """Modbus tags say their type; OPC UA nodes do not (their values are numbers, booleans as 1/0)."""
    if isinstance(spec, NodeSpec):
        return pb.Double
    if spec.type is TagType.BOOL:
        return pb.Boolean
    if spec.type is TagType.STRING or spec.values is not None:  # a value map publishes its names
        return pb.String
    return pb.Double


def _folder(folder: str, keys: Mapping[str, int]) -> dict[str, int]:
    return {f"{folder}/{key}": datatype for key, datatype in keys.items()}


class Catalogue:
    """The devices and their metrics, with aliases numbered over the whole edge node."""

    def __init__(self, config: AgentConfig, *, publish_tags: bool) -> None:
        workshop = config.workshop
        setup = build_engine_setup(config)
        metered = {m.machine for m in setup.meters if m.machine is not None}
        main_meters = any(m.machine is None for m in setup.meters)
        oee = {key: pb.Int64 if key in COUNTS else pb.Double for key in oee_fields(OeeTotals())}
        sample_energy = energy_fields(None, OeeTotals(), setup.kgce_per_kwh, setup.carbon)
        energy = {key: _datatype_of(value) for key, value in sample_energy.items()}
        self.workshop_device = workshop.site.area
        devices: dict[str, dict[str, int]] = {}
        for machine in workshop.machines:
            metrics: dict[str, int] = dict(STATE)
            metrics |= self._periods("oee", COMMON | oee | MACHINE_OEE)
            if machine.id in metered:
                metrics |= self._periods("energy", COMMON | energy | MACHINE_ENERGY)
            if publish_tags and machine.publish_tags:
                tags = config.profiles[machine.profile].spec.tag_specs
                metrics |= _folder("tags", {tag: _tag_datatype(spec) for tag, spec in tags.items()})
            devices[machine.id] = metrics
        for line in workshop.lines:
            metrics = self._periods("oee", COMMON | oee | ROLL_UP_OEE | LINE_OEE)
            if any(m.line == line.id and m.id in metered for m in workshop.machines):
                metrics |= self._periods("energy", COMMON | energy)
            devices[line.id] = metrics
        metrics = self._periods("oee", COMMON | oee | ROLL_UP_OEE)
        if setup.meters:
            metrics |= self._periods("energy", COMMON | energy | (MAIN_METER_ENERGY if main_meters else {}))
        devices[self.workshop_device] = metrics
        aliases = iter(range(1, 1 << 32))  # 0 is left unused: some hosts read it as "no alias"
        self.devices = {
            device: DeviceDef(
                device, {name: MetricDef(name, next(aliases), datatype) for name, datatype in metrics.items()}
            )
            for device, metrics in devices.items()
        }

    @staticmethod
    def _periods(folder: str, keys: Mapping[str, int]) -> dict[str, int]:
        return _folder(folder, keys) | _folder(f"{folder}_{DAY}", keys)

    def __iter__(self) -> Iterator[DeviceDef]:
        return iter(self.devices.values())

    def device_of(self, envelope: Envelope) -> str | None:
        record = envelope.record
        if record.kind in MACHINE_KINDS:
            return record.machine
        if record.kind in LINE_KINDS:
            return record.line
        if record.kind in WORKSHOP_KINDS:
            return self.workshop_device
        return None  # crews, events and the agent's own figures: not equipment, not published here

    def update(self, envelope: Envelope) -> DeviceUpdate | None:
        """The metrics a record sets; None when it is no device's (see device_of) or its device is
        not in this configuration (a backlog stored before a reload)."""
        device_id = self.device_of(envelope)
        device = self.devices.get(device_id) if device_id is not None else None
        if device is None:
            return None
        record = envelope.record
        fields = record.fields
        if record.kind is RecordKind.STATE:
            named: dict[str, object] = {
                "state": fields.get("state"),
                "state/since": fields.get("since"),
                "state/reason": fields.get("reason"),
            }
        elif record.kind is RecordKind.TAGS:
            values = fields.get("values")
            named = {
                f"tags/{tag}": value for tag, value in (values.items() if isinstance(values, dict) else ())
            }
        else:
            folder = "oee" if record.kind in OEE_KINDS else "energy"
            if fields.get("period") == DAY:
                folder = f"{folder}_{DAY}"
            prefix = f"{folder}/"
            # every metric of the folder: a key the record leaves out is null now, not its old value
            named = {
                name: fields.get(name.removeprefix(prefix))
                for name in device.metrics
                if name.startswith(prefix)
            }
        values = tuple(
            (device.metrics[name], coerce(device.metrics[name].datatype, value))
            for name, value in named.items()
            if name in device.metrics
        )
        return DeviceUpdate(device.id, values, epoch_ms(record.ts)) if values else None


def coerce(datatype: int, value: object) -> MetricValue:  # noqa: PLR0911 - one answer per datatype
    """A record's value as its metric's datatype says; None (a null metric) when it has none."""
    if value is None:
        return None
    if datatype == pb.String:
        if isinstance(value, list | tuple):
            return ",".join(str(item) for item in value)
        return str(value)
    if datatype == pb.Boolean:
        return value if isinstance(value, bool) else None
    if datatype == pb.DateTime:
        if isinstance(value, str):
            try:
                return epoch_ms(dt.datetime.fromisoformat(value).timestamp())
            except ValueError:
                return None
        return int(value) if isinstance(value, int | float) else None
    if datatype == pb.Int64:
        return int(value) if isinstance(value, int | float) and float(value).is_integer() else None
    return float(value) if isinstance(value, int | float) else None
