"""Every sink by its key under `outputs:`: the one place that knows them all.

A SinkEntry pairs the output's settings model (agent/config/outputs.py, on OutputBase: replay
pace, retries, batch) with the sink that writes to it, built from those settings and the compiled
configuration (a Sparkplug birth names every machine's metrics before any record exists). The
runtime gets each configured output as an Output: the sink and the settings every delivery loop
shares. An output key without an entry
is an UnknownSinkError, never skipped.

Sinks are imported when configured: influxdb-client and its dependencies cost a gateway that only
publishes MQTT about 15 MB of memory for nothing. A new sink is one more entry here (README:
"Adding an output").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

from agent.config.compiled import AgentConfig
from agent.config.outputs import (
    DEFAULT_RETRY_MAX_S,
    FileOutput,
    InfluxOutput,
    MqttOutput,
    OutputBase,
    SparkplugOutput,
)
from agent.exceptions import AgentError
from agent.sinks.base import Sink
from agent.sinks.topics import TopicRoot

SettingsT = TypeVar("SettingsT", bound=OutputBase)


class UnknownSinkError(AgentError):
    """An output key whose sink is not in SINKS."""


@dataclass(frozen=True)
class Output:
    """A sink as the runtime delivers to it: records per write, replay pace, retry cap."""

    sink: Sink
    batch_size: int
    replay_per_s: float
    retry_max_s: float = DEFAULT_RETRY_MAX_S
    accept_loss: bool = False  # delivered means written, not acknowledged (MQTT QoS 0): at-most-once

    @classmethod
    def of(cls, sink: Sink, settings: OutputBase) -> Self:
        return cls(
            sink,
            settings.batch_records,
            settings.replay_per_s,
            settings.reconnect_max_s,
            settings.at_most_once,
        )


@dataclass(frozen=True)
class SinkEntry(Generic[SettingsT]):
    settings: type[SettingsT]  # the model under outputs.<key>
    build: Callable[[SettingsT, AgentConfig], Sink]


def _file(settings: FileOutput, _: AgentConfig) -> Sink:
    from agent.sinks.file import FileSink

    return FileSink(settings.path)


def _mqtt(settings: MqttOutput, config: AgentConfig) -> Sink:
    from agent.sinks.mqtt import MqttSink

    return MqttSink(settings, topic_root(config))


def _influxdb(settings: InfluxOutput, config: AgentConfig) -> Sink:
    from agent.sinks.influx import InfluxSink

    return InfluxSink(settings, topic_root(config))


def _sparkplug(settings: SparkplugOutput, config: AgentConfig) -> Sink:
    from agent.sinks.sparkplug import build_sparkplug_sink

    return build_sparkplug_sink(settings, config)


# In the order outputs are opened and delivered to; each sink's name is its key (its outbox cursor).
SINKS: dict[str, SinkEntry[Any]] = {
    "file": SinkEntry(FileOutput, _file),
    "mqtt": SinkEntry(MqttOutput, _mqtt),
    "influxdb": SinkEntry(InfluxOutput, _influxdb),
    "sparkplug": SinkEntry(SparkplugOutput, _sparkplug),
}


def topic_root(config: AgentConfig) -> TopicRoot:
    site = config.workshop.site
    return TopicRoot(site.enterprise, site.site, site.area, config.workshop.agent.id)


def sink_entry(key: str, settings: OutputBase) -> SinkEntry[Any]:
    entry = SINKS.get(key)
    if entry is None or not isinstance(settings, entry.settings):
        raise UnknownSinkError(
            f"outputs.{key}: no sink for {type(settings).__name__}; sinks: {', '.join(SINKS)}"
        )
    return entry


def build_outputs(config: AgentConfig) -> list[Output]:
    """The configured outputs, in SINKS order."""
    outputs = config.workshop.outputs
    configured = {key: getattr(outputs, key) for key in type(outputs).model_fields}
    unknown = [key for key in configured if key not in SINKS]
    if unknown:
        raise UnknownSinkError(f"outputs.{unknown[0]}: no sink; sinks: {', '.join(SINKS)}")
    built: list[Output] = []
    for key in SINKS:
        settings = configured.get(key)
        if settings is not None:
            built.append(Output.of(sink_entry(key, settings).build(settings, config), settings))
    return built
