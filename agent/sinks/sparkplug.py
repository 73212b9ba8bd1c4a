"""Sparkplug B output (Eclipse Sparkplug 3.0): the agent is an edge node, each machine, line and the
workshop a device (agent/sinks/sparkplug_metrics.py).

A session: CONNECT with a clean session and NDEATH (bdSeq) as the will; subscribe to NCMD, DCMD
and, if a primary host application is configured, its STATE; once that host says online, NBIRTH
(seq 0) and a DBIRTH per device, every metric with its datatype, alias and last known value;
then a DDATA (by alias) per record. A lost connection ends the session: the next write opens a new
one with the next bdSeq and births again, so a host never gets DDATA it cannot read.

Delivery is at least once, in order: births and data go with QoS 0 as the specification demands,
and write() returns only after the broker answered a later packet of the same connection (fence:
an UNSUBACK), so the outbox cursor moves only past what the broker has read. A broken connection
sends the batch again in a new session.

Commands: `Node Control/Rebirth` true is the only one carried out; every other NCMD or DCMD metric
is refused and logged (throttled), as is a payload that is not Sparkplug B.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

import paho.mqtt.client as mqtt

from agent.config.compiled import AgentConfig
from agent.config.outputs import SparkplugOutput
from agent.exceptions import OutputError
from agent.records import Envelope, epoch_ms
from agent.sinks.mqtt_link import MqttLink, Will
from agent.sinks.sparkplug_bdseq import BdSeqStore
from agent.sinks.sparkplug_metrics import Catalogue, MetricValue
from agent.sinks.sparkplug_payloads import (
    SEQ_MODULUS,
    CommandError,
    EdgeTopics,
    HostState,
    device_birth,
    device_data,
    device_death,
    host_state,
    node_birth,
    node_death,
    rebirth_requested,
    state_topic,
)
from agent.throttle import STORAGE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

NAME = "sparkplug"
BIRTH_QOS = (
    0  # NBIRTH, DBIRTH, DDATA: QoS 0, not retained (tck-id-payloads-nbirth-qos, -dbirth-qos, -ddata-qos)
)
DEATH_QOS = 1  # the NDEATH will (tck-id-payloads-ndeath-will-message-qos)
COMMAND_QOS = 1  # tck-id-message-flow-edge-node-ncmd-subscribe
CLOSE_TIMEOUT_S = 3.0
BDSEQ_FILE = "sparkplug-bdseq.json"


class SparkplugSink:
    def __init__(
        self,
        settings: SparkplugOutput,
        catalogue: Catalogue,
        bd_seq: BdSeqStore,
        edge_node_id: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = NAME
        self.settings = settings
        self.catalogue = catalogue
        self.bd_seq_store = bd_seq
        self.topics = EdgeTopics(settings.group_id, edge_node_id)
        self.clock = clock
        self.link = MqttLink(
            settings,
            NAME,
            settings.client_id or f"edge-agent-{settings.group_id}-{edge_node_id}",
            self._on_message,
            self._on_lost,
        )
        self.bd_seq: int | None = None  # of the current connection's will
        self.born = False
        self._seq = 0
        # Each metric's last value and its time. _confirmed: what the broker has read (fenced);
        # _sent: what this session has told the hosts. Births carry _sent (a host that joins late
        # or asks for a rebirth sees the present, not nulls), DDATA only what differs from it; a
        # new session starts from _confirmed, so a batch sent again repeats its changes.
        self._confirmed: dict[tuple[str, str], tuple[MetricValue, int]] = {}
        self._sent: dict[tuple[str, str], tuple[MetricValue, int]] = {}
        self._host_online = asyncio.Event()
        self._host_timestamp_ms: int | None = None  # of the latest STATE taken (kept across sessions)
        self._log = EventThrottle(STORAGE_FAULT_LOG_EVERY_S)

    @property
    def host_topic(self) -> str | None:
        host = self.settings.primary_host_id
        return state_topic(host) if host is not None else None

    async def __aenter__(self) -> Self:
        self.link.bind()
        return self  # connecting is the first write's job: a broker down at start-up stops nothing

    async def __aexit__(self, *exc: object) -> None:
        if self.link.connected:
            await self._die()
        self.link.drop("closed")

    # -- the session ---------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return epoch_ms(self.clock())

    async def _connect(self) -> None:
        self.born = False
        self._sent = dict(self._confirmed)
        self.bd_seq = await asyncio.to_thread(self.bd_seq_store.next)
        will = Will(
            self.topics.node("NDEATH"), node_death(self.bd_seq, self._now_ms()), DEATH_QOS, retain=False
        )
        subscriptions = [(self.topics.node("NCMD"), COMMAND_QOS), (self.topics.device_commands, COMMAND_QOS)]
        if self.host_topic is not None:
            # a retained STATE arrives right after the subscription: the host's present state
            self._host_online.clear()
            subscriptions.append((self.host_topic, COMMAND_QOS))
        try:
            await self.link.connect(will, subscriptions)
        except OutputError:
            if self.link.connect_not_sent:
                await asyncio.to_thread(self.bd_seq_store.unused, self.bd_seq)
            raise
        log.info(
            "output=sparkplug event=session group=%s edge_node=%s bd_seq=%d",
            self.topics.group_id,
            self.topics.edge_node_id,
            self.bd_seq,
        )

    async def _ready(self) -> None:
        """Connected, the primary host online (if one is configured), and born."""
        if not self.link.connected:
            await self._connect()
        if self.host_topic is not None and not self._host_online.is_set():
            try:
                async with asyncio.timeout(self.settings.timeout_s):
                    await self._host_online.wait()
            except TimeoutError:
                raise OutputError(
                    NAME,
                    f"{self.link.endpoint}: waiting for the primary host application "
                    f"'{self.settings.primary_host_id}' to be online ({self.host_topic})",
                ) from None
        if not self.born:
            self._birth()

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (seq + 1) % SEQ_MODULUS
        return seq

    def _birth(self) -> None:
        """NBIRTH with seq 0 and this connection's bdSeq, then every device's DBIRTH."""
        if self.bd_seq is None:
            return
        now = self._now_ms()
        self._seq = 0
        self.link.publish(
            self.topics.node("NBIRTH"), node_birth(self.bd_seq, self._next_seq(), now, ()), BIRTH_QOS
        )
        for device in self.catalogue:
            metrics = [
                (metric, *self._sent.get((device.id, metric.name), (None, now)))
                for metric in device.metrics.values()
            ]
            payload = device_birth(self._next_seq(), now, metrics)
            self.link.publish(self.topics.device("DBIRTH", device.id), payload, BIRTH_QOS)
        self.born = True
        log.info(
            "output=sparkplug event=birth bd_seq=%d devices=%d", self.bd_seq, len(self.catalogue.devices)
        )

    async def _die(self) -> None:
        """An intentional disconnect publishes the NDEATH first (tck-id-operational-behavior-edge-
        node-intentional-disconnect-ndeath): on MQTT 5 by a DISCONNECT that asks the broker for the
        will, on 3.1.1 by publishing it."""
        self.born = False
        if self.link.mqtt5 or self.bd_seq is None:
            self.link.disconnect(with_will=True)
            return
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                mid = self.link.publish(
                    self.topics.node("NDEATH"), node_death(self.bd_seq, self._now_ms()), DEATH_QOS
                )
                await self.link.acknowledged([mid])
        except (TimeoutError, OutputError):
            log.warning("output=sparkplug event=ndeath_not_sent")
        self.link.disconnect()

    def _on_lost(self, reason: str) -> None:
        self.born = False

    def reconfigure(self, config: AgentConfig) -> None:
        """A reload that changes the machines, lines, meters or tags changes the metric set: the
        hosts learn it by a rebirth (same session, same bdSeq), before any data of the new set."""
        catalogue = Catalogue(config, publish_tags=self.settings.publish_tags)
        if catalogue.devices == self.catalogue.devices:
            return
        gone = [device for device in self.catalogue.devices if device not in catalogue.devices]
        self.catalogue = catalogue
        log.info(
            "output=sparkplug event=metric_set_changed devices=%d removed=%d",
            len(catalogue.devices),
            len(gone),
        )
        if self.born and self.link.connected:
            for device in gone:
                self.link.publish(
                    self.topics.device("DDEATH", device),
                    device_death(self._next_seq(), self._now_ms()),
                    BIRTH_QOS,
                )
            self._birth()

    # -- delivery --------------------------------------------------------------------------------

    async def write(self, batch: Sequence[Envelope]) -> None:
        await self._ready()
        try:
            for envelope in batch:
                self._publish_changes(envelope)
            await self.link.fence()
        except BaseException:
            # the hosts may hold values the broker never confirmed: end the session, and the next
            # one births from what was confirmed and sends the batch again
            self._end_session("write failed")
            raise
        self._confirmed = dict(self._sent)

    def _publish_changes(self, envelope: Envelope) -> None:
        """A DDATA with the metrics the record changes (report by exception); none: no message."""
        update = self.catalogue.update(envelope)
        if update is None:
            self._not_a_device(envelope)
            return
        changed = []
        for metric, value in update.values:
            key = (update.device, metric.name)
            last = self._sent.get(key)
            if last is None or last[0] != value or type(last[0]) is not type(value):
                changed.append((metric, value))
                self._sent[key] = (value, update.timestamp_ms)
        if changed:
            payload = device_data(self._next_seq(), self._now_ms(), changed, update.timestamp_ms)
            self.link.publish(self.topics.device("DDATA", update.device), payload, BIRTH_QOS)

    def _not_a_device(self, envelope: Envelope) -> None:
        """Crews, events and the agent's figures are no device's, on purpose; a machine or line the
        configuration no longer has (a backlog from before a reload) is said, once a minute."""
        device = self.catalogue.device_of(envelope)
        if device is None or device in self.catalogue.devices:
            return
        held = self._log.allow(f"unknown device {device}")
        if held is not None:
            log.warning(
                "output=sparkplug event=record_skipped device=%s seq=%d reason='not in the configuration' "
                "held_back=%d",
                device,
                envelope.seq,
                held,
            )

    # -- what the broker brings: commands and the host's STATE (on the event loop) ---------------

    def _on_message(self, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if topic == self.host_topic:
            self._on_host_state(bytes(message.payload))
        elif topic == self.topics.node("NCMD"):
            self._on_node_command(bytes(message.payload))
        else:
            self._refuse(topic, "device", "device commands are not accepted (DCMD)")

    def _refuse(self, topic: str, problem: str, reason: str) -> None:
        """Logged once a minute per topic and kind of problem: a host that keeps asking is not a flood."""
        held = self._log.allow(f"{problem} {topic}")
        if held is not None:
            log.warning(
                "output=sparkplug event=command_refused topic=%s reason=%r held_back=%d", topic, reason, held
            )

    def _on_node_command(self, raw: bytes) -> None:
        topic = self.topics.node("NCMD")
        try:
            rebirth, refused = rebirth_requested(raw)
        except CommandError as error:
            self._refuse(topic, "undecodable", str(error))
            return
        if refused:
            self._refuse(
                topic, "not accepted", f"only 'Node Control/Rebirth' is accepted, not {', '.join(refused)}"
            )
        if rebirth and self.born and self.link.connected:
            # tck-id-operational-behavior-data-commands-rebirth-action-1..3: no DATA in between
            # (write() publishes without yielding), the same bdSeq, seq from 0
            log.info("output=sparkplug event=rebirth_requested")
            try:
                self._birth()
            except OutputError as error:
                log.warning("output=sparkplug event=rebirth_failed error=%r", str(error))

    def _on_host_state(self, raw: bytes) -> None:
        try:
            state = host_state(raw)
        except CommandError as error:
            self._refuse(self.host_topic or "STATE", "undecodable", str(error))
            return
        if self._host_timestamp_ms is not None and state.timestamp_ms < self._host_timestamp_ms:
            return  # older than what we know (tck-id-...-edge-node-termination-host-offline-timestamp)
        self._host_timestamp_ms = state.timestamp_ms
        if state.online:
            if not self._host_online.is_set():
                log.info("output=sparkplug event=primary_host_online host=%s", self.settings.primary_host_id)
            self._host_online.set()
            return
        self._host_offline(state)

    def _host_offline(self, state: HostState) -> None:
        was_online = self._host_online.is_set()
        self._host_online.clear()
        if not (was_online and self.link.connected):
            return
        # tck-id-operational-behavior-primary-application-state-with-multiple-servers-walk: end the
        # session (NDEATH first); the next write connects again and waits for the host to be online
        log.warning(
            "output=sparkplug event=primary_host_offline host=%s timestamp=%d action=session_ended",
            self.settings.primary_host_id,
            state.timestamp_ms,
        )
        self._end_session("primary host offline")

    def _end_session(self, reason: str) -> None:
        """End the session at once, NDEATH first (on 3.1.1 queued before the DISCONNECT on the same
        connection, on MQTT 5 the broker's will); the next write connects and births again."""
        self.born = False
        if not self.link.connected:
            self.link.drop(reason)
        elif self.link.mqtt5 or self.bd_seq is None:
            self.link.disconnect(with_will=True)
        else:
            try:
                self.link.publish(
                    self.topics.node("NDEATH"), node_death(self.bd_seq, self._now_ms()), DEATH_QOS
                )
            except OutputError:
                log.warning("output=sparkplug event=ndeath_not_sent reason=%r", reason)
            self.link.disconnect()


def build_sparkplug_sink(settings: SparkplugOutput, config: AgentConfig) -> SparkplugSink:
    edge_node_id = settings.edge_node_id or config.workshop.agent.id
    store = BdSeqStore(Path(config.workshop.agent.state_dir) / BDSEQ_FILE, settings.group_id, edge_node_id)
    return SparkplugSink(settings, Catalogue(config, publish_tags=settings.publish_tags), store, edge_node_id)
