"""Sparkplug B 3.0 topics and payloads, through the official Eclipse Tahu schema compiled by protoc
(agent/sinks/sparkplug_b): what the edge node sends (NBIRTH, DBIRTH, DDATA, NDEATH) and reads
(NCMD, DCMD, the primary host's STATE)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from agent.sinks.sparkplug_b import sparkplug_b_pb2 as pb
from agent.sinks.sparkplug_metrics import MetricDef, MetricValue

NAMESPACE = "spBv1.0"  # Sparkplug 3.0, 4.1.1
SEQ_MODULUS = 256  # seq and bdSeq run 0..255 and wrap to 0 (tck-id-payloads-sequence-num-incrementing)
BD_SEQ = "bdSeq"
REBIRTH = "Node Control/Rebirth"


@dataclass(frozen=True)
class EdgeTopics:
    group_id: str
    edge_node_id: str

    def node(self, verb: str) -> str:
        return f"{NAMESPACE}/{self.group_id}/{verb}/{self.edge_node_id}"

    def device(self, verb: str, device_id: str) -> str:
        return f"{self.node(verb)}/{device_id}"

    @property
    def device_commands(self) -> str:
        return self.device("DCMD", "+")


def state_topic(host_id: str) -> str:
    """Where a Sparkplug 3.0 host application publishes its retained STATE (section 4.1.2)."""
    return f"{NAMESPACE}/STATE/{host_id}"


def _set_value(metric: pb.Payload.Metric, datatype: int, value: MetricValue) -> None:
    if value is None:
        metric.is_null = True
    elif datatype == pb.Boolean:
        metric.boolean_value = bool(value)
    elif datatype == pb.String:
        metric.string_value = str(value)
    elif datatype in (pb.Int64, pb.DateTime):
        # proto2 uint64 carries the two's complement of a negative Int64 (Sparkplug 3.0, 6.4.16)
        metric.long_value = int(value) % (1 << 64)
    else:
        metric.double_value = float(value)


def _payload(timestamp_ms: int, seq: int | None) -> pb.Payload:
    payload = pb.Payload(timestamp=timestamp_ms)
    if seq is not None:
        payload.seq = seq
    return payload


def node_death(bd_seq: int, timestamp_ms: int) -> bytes:
    """The will: one metric, bdSeq, and no seq (tck-id-topics-ndeath-payload, -seq)."""
    payload = _payload(timestamp_ms, None)
    metric = payload.metrics.add(name=BD_SEQ, timestamp=timestamp_ms, datatype=pb.Int64)
    _set_value(metric, pb.Int64, bd_seq)
    return payload.SerializeToString()


def node_birth(
    bd_seq: int, seq: int, timestamp_ms: int, metrics: Iterable[tuple[MetricDef, MetricValue, int]]
) -> bytes:
    """bdSeq as in the will of this connection, Node Control/Rebirth false and without an alias
    (tck-id-operational-behavior-data-commands-rebirth-name-aliases), then the node's own metrics."""
    payload = _payload(timestamp_ms, seq)
    bd = payload.metrics.add(name=BD_SEQ, timestamp=timestamp_ms, datatype=pb.Int64)
    _set_value(bd, pb.Int64, bd_seq)
    rebirth = payload.metrics.add(name=REBIRTH, timestamp=timestamp_ms, datatype=pb.Boolean)
    _set_value(rebirth, pb.Boolean, False)
    _add_births(payload, metrics)
    return payload.SerializeToString()


def device_birth(seq: int, timestamp_ms: int, metrics: Iterable[tuple[MetricDef, MetricValue, int]]) -> bytes:
    payload = _payload(timestamp_ms, seq)
    _add_births(payload, metrics)
    return payload.SerializeToString()


def _add_births(payload: pb.Payload, metrics: Iterable[tuple[MetricDef, MetricValue, int]]) -> None:
    """A birth names every metric with its alias and datatype (tck-id-payloads-alias-birth-requirement)."""
    for definition, value, timestamp_ms in metrics:
        metric = payload.metrics.add(
            name=definition.name, alias=definition.alias, timestamp=timestamp_ms, datatype=definition.datatype
        )
        _set_value(metric, definition.datatype, value)


def device_data(
    seq: int, timestamp_ms: int, values: Sequence[tuple[MetricDef, MetricValue]], value_ms: int
) -> bytes:
    """Values by alias only, without name or datatype (tck-id-payloads-alias-data-cmd-requirement),
    each stamped with the time of its record."""
    payload = _payload(timestamp_ms, seq)
    for definition, value in values:
        metric = payload.metrics.add(alias=definition.alias, timestamp=value_ms)
        _set_value(metric, definition.datatype, value)
    return payload.SerializeToString()


def device_death(seq: int, timestamp_ms: int) -> bytes:
    """A device that is gone: a timestamp and the next seq, no metrics (tck-id-payloads-ddeath-seq)."""
    return _payload(timestamp_ms, seq).SerializeToString()


class CommandError(ValueError):
    """An NCMD or DCMD that is not a Sparkplug B payload."""


def rebirth_requested(raw: bytes) -> tuple[bool, list[str]]:
    """(whether the command asks for a rebirth, the names of the metrics it writes that we refuse)."""
    payload = pb.Payload()
    try:
        payload.ParseFromString(raw)
    except DecodeError as error:
        raise CommandError(f"not a Sparkplug B payload: {error}") from None
    rebirth = False
    refused: list[str] = []
    for metric in payload.metrics:
        if metric.name == REBIRTH and metric.WhichOneof("value") == "boolean_value":
            rebirth = rebirth or metric.boolean_value
        else:
            refused.append(metric.name or f"alias {metric.alias}")
    return rebirth, refused


@dataclass(frozen=True)
class HostState:
    online: bool
    timestamp_ms: int


def host_state(raw: bytes) -> HostState:
    """A STATE payload: UTF-8 JSON {"online": bool, "timestamp": ms} (Sparkplug 3.0, 6.4.19)."""
    try:
        body: Any = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CommandError(f"STATE is not UTF-8 JSON: {error}") from None
    if not isinstance(body, dict):
        raise CommandError("STATE is not a JSON object")
    online, timestamp = body.get("online"), body.get("timestamp")
    if not isinstance(online, bool) or isinstance(timestamp, bool) or not isinstance(timestamp, int):
        raise CommandError('STATE needs "online" (true/false) and "timestamp" (ms since the epoch)')
    return HostState(online, timestamp)
