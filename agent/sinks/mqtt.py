"""MQTT output: JSON records (or UMH payloads) over one paho session on the asyncio loop
(agent/sinks/mqtt_link.py, shared with the Sparkplug B output).

write() publishes a batch (at most `max_inflight` records, so that is all a reconnect can
duplicate) and returns when every message is acknowledged (PUBACK for QoS 1, PUBCOMP for QoS 2;
with qos 0 and accept_loss, once written to the socket). The agent's status topic carries a
retained `online` on every connection and `offline` as its will and on a clean close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Self

from agent.config.outputs import MqttOutput
from agent.exceptions import OutputError
from agent.records import Envelope, RecordKind
from agent.sinks.mqtt_link import MqttLink, Will
from agent.sinks.retention import RetainedFigures
from agent.sinks.topics import MqttTopics, TopicRoot
from agent.sinks.umh import UmhTopics

log = logging.getLogger(__name__)

NAME = "mqtt"
CLOSE_TIMEOUT_S = 3.0
STATUS_QOS = 1
ONLINE = b"online"
OFFLINE = b"offline"


class MqttSink:
    def __init__(self, config: MqttOutput, topics: TopicRoot) -> None:
        self.name = NAME
        self.config = config
        self.topics = topics
        self.style: MqttTopics = UmhTopics(topics) if config.topic_style == "umh" else topics
        self.retained = RetainedFigures(config.retain)
        self.link = MqttLink(
            config,
            NAME,
            config.client_id or f"edge-agent-{topics.agent}",
            max_inflight=config.max_inflight,
        )

    @property
    def endpoint(self) -> str:
        return self.link.endpoint

    @property
    def connected(self) -> bool:
        return self.link.connected

    async def __aenter__(self) -> Self:
        self.link.bind()
        return self  # connecting is the first write's job: a broker down at start-up stops nothing

    async def __aexit__(self, *exc: object) -> None:
        if self.link.connected:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT_S):
                    mid = self.link.publish(self.style.status, OFFLINE, STATUS_QOS, retain=True)
                    await self.link.acknowledged([mid])
            except (TimeoutError, OutputError):
                log.warning("sink=mqtt event=offline_status_not_sent")
        self.link.disconnect()

    async def _connect(self) -> None:
        will = Will(self.style.status, OFFLINE, STATUS_QOS, retain=True)
        await self.link.connect(will, ())
        mid = self.link.publish(self.style.status, ONLINE, STATUS_QOS, retain=True)
        await self.link.acknowledged([mid])

    async def write(self, batch: Sequence[Envelope]) -> None:
        if not self.link.connected:
            await self._connect()
        # a record this topic style cannot carry (a tags record without a value UMH can store)
        # is delivered as nothing
        payloads = [(envelope, self.style.payload(envelope)) for envelope in batch]
        messages = [(self.style.topic(envelope), envelope, body) for envelope, body in payloads if body]
        retains = self.retained.flags([(topic, envelope) for topic, envelope, _ in messages])
        mids = [
            self.link.publish(topic, payload, self.config.qos, retain=retain, track_qos0=True)
            for (topic, _, payload), retain in zip(messages, retains, strict=True)
        ]
        await self.link.acknowledged(mids)


__all__ = ["MqttSink", "RecordKind"]
