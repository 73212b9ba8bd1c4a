"""Outputs by their YAML key under `outputs:`, each with its batch size and replay pace."""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.compiled import AgentConfig
from agent.sinks.base import Sink
from agent.sinks.topics import TopicRoot

FILE_BATCH = 1000
FILE_REPLAY_PER_S = 10_000.0


@dataclass(frozen=True)
class Output:
    sink: Sink
    batch_size: int
    replay_per_s: float
    retry_max_s: float = 30.0
    accept_loss: bool = False  # MQTT QoS 0: delivered means written to the socket (at-most-once)


def topic_root(config: AgentConfig) -> TopicRoot:
    site = config.workshop.site
    return TopicRoot(site.enterprise, site.site, site.area, config.workshop.agent.id)


def build_outputs(config: AgentConfig) -> list[Output]:
    # Sinks are imported when configured: influxdb-client and its dependencies cost a gateway
    # that only publishes MQTT about 15 MB of memory for nothing.
    outputs = config.workshop.outputs
    topics = topic_root(config)
    built: list[Output] = []
    if outputs.file is not None:
        from agent.sinks.file import FileSink

        built.append(Output(FileSink(outputs.file.path), FILE_BATCH, FILE_REPLAY_PER_S))
    if outputs.mqtt is not None:
        from agent.sinks.mqtt import MqttSink

        mqtt = MqttSink(outputs.mqtt, topics)
        built.append(
            Output(
                mqtt,
                mqtt.batch_size,
                mqtt.replay_per_s,
                outputs.mqtt.reconnect_max_s,
                accept_loss=outputs.mqtt.accept_loss,
            )
        )
    if outputs.influxdb is not None:
        from agent.sinks.influx import InfluxSink

        influx = InfluxSink(outputs.influxdb, topics)
        built.append(Output(influx, influx.batch_size, influx.replay_per_s, outputs.influxdb.reconnect_max_s))
    return built
