"""An independent Sparkplug B host for the tests: a plain paho client on its own thread that reads
everything under spBv1.0/ with a different protobuf library (betterproto2, pure Python, generated
from the same official Tahu schema: tests/sparkplug_decoder) than the agent encodes with
(Google's protobuf runtime), and sends commands the way a SCADA would."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt

from tests.integration.mqtt_client import start_client
from tests.sparkplug_decoder.org.eclipse.tahu.protobuf import DataType, Payload, PayloadMetric

NAMESPACE = "spBv1.0"


def value_of(metric: PayloadMetric, datatype: int) -> Any:
    """A metric's value as its (birth) datatype says, read from the field the spec assigns it."""
    if metric.is_null:
        return None
    if datatype == DataType.Boolean:
        return metric.boolean_value
    if datatype in (DataType.String, DataType.Text):
        return metric.string_value
    if datatype in (DataType.Int64, DataType.DateTime, DataType.UInt64):
        return metric.long_value
    if datatype == DataType.Double:
        return metric.double_value
    raise AssertionError(f"unexpected datatype {datatype}")


@dataclass
class Received:
    topic: str
    raw: bytes

    @property
    def verb(self) -> str:
        return self.topic.split("/")[2]

    @property
    def device(self) -> str | None:
        parts = self.topic.split("/")
        return parts[4] if len(parts) > 4 else None

    @property
    def payload(self) -> Payload:
        return Payload.parse(self.raw)


@dataclass
class SparkplugHost:
    port: int
    group_id: str
    client_id: str = "scada"
    persistent: bool = True  # QoS 0 messages queue for it while it reconnects (queue_qos0_messages)
    messages: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> SparkplugHost:
        pattern = f"{NAMESPACE}/{self.group_id}/#"
        self.client = start_client(self.port, pattern, self.client_id, self.persistent, self._on_message)
        time.sleep(0.3)
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(Received(message.topic, bytes(message.payload)))

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.messages)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout_s: float = 15.0
    ) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            messages = self.snapshot()
            if predicate(messages):
                return messages
            time.sleep(0.05)
        verbs = [m.verb for m in self.snapshot()]
        raise AssertionError(f"not received in {timeout_s}s; got {len(verbs)} messages: {verbs[-20:]}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 0) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(5)


def command(metrics: list[PayloadMetric]) -> bytes:
    """An NCMD/DCMD payload as a host sends it: a timestamp, the metrics, no seq."""
    return bytes(Payload(timestamp=int(time.time() * 1000), metrics=metrics))


def rebirth_command() -> bytes:
    return command(
        [PayloadMetric(name="Node Control/Rebirth", datatype=DataType.Boolean, boolean_value=True)]
    )


def bd_seq_of(payload: Payload) -> int:
    """The bdSeq metric of an NBIRTH or NDEATH."""
    value = next(m.long_value for m in payload.metrics if m.name == "bdSeq")
    assert value is not None, "bdSeq without a value"
    return value


@dataclass
class Session:
    """What one edge node session said, as a host reads it: births define the aliases."""

    bd_seq: int
    # device -> alias -> (name, datatype)
    births: dict[str, dict[int, tuple[str, int]]] = field(default_factory=dict)
    # (device, name -> (value, ts)) per DDATA
    data: list[tuple[str, dict[str, tuple[Any, int]]]] = field(default_factory=list)
    # what the host knows of each metric, from births and data: (device, name) -> [(ts, value)]
    points: dict[tuple[str, str], list[tuple[int, Any]]] = field(default_factory=dict)
    seqs: list[int] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)


def sessions(messages: list[Received]) -> list[Session]:
    """The edge node's messages split at each NBIRTH; DDATA decoded by the aliases of its births."""
    found: list[Session] = []
    for message in messages:
        verb = message.verb
        if verb in ("NCMD", "DCMD", "STATE"):
            continue
        payload = message.payload
        if verb == "NDEATH":
            continue
        if verb == "NBIRTH":
            found.append(Session(bd_seq=bd_seq_of(payload)))
        assert found, f"{verb} before any NBIRTH"
        session = found[-1]
        session.seqs.append(payload.seq)
        session.verbs.append(verb)
        if verb == "DBIRTH":
            assert message.device is not None
            session.births[message.device] = {m.alias: (m.name, m.datatype) for m in payload.metrics}
            for metric in payload.metrics:
                point = (metric.timestamp, value_of(metric, metric.datatype))
                session.points.setdefault((message.device, metric.name), []).append(point)
        elif verb == "DDATA":
            assert message.device is not None
            aliases = session.births[message.device]  # a KeyError is DDATA before its DBIRTH
            values = {}
            for metric in payload.metrics:
                assert not metric.name, (
                    "DDATA names a metric: aliases only (tck-id-payloads-alias-data-cmd-requirement)"
                )
                name, datatype = aliases[metric.alias]
                values[name] = (value_of(metric, datatype), metric.timestamp)
                session.points.setdefault((message.device, name), []).append(values[name][::-1])
            session.data.append((message.device, values))
    return found
