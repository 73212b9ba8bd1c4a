"""The registries: every transport the workshop file accepts has its driver, every output its sink,
both keyed by the YAML value; an unknown one fails loudly; and a gateway imports only the drivers
and sinks its workshop names."""

from __future__ import annotations

import subprocess
import sys
import typing
from pathlib import Path
from typing import Literal

import pytest

from agent.config.connections import Connection, ConnectionBase, ModbusConnectionBase
from agent.config.loader import load_config
from agent.drivers.registry import DRIVERS, UnknownTransportError, build_driver, driver_entry
from tests.conftest import CASES, REPO, SAMPLE_WORKSHOP

MODBUS_ONLY = f"""
agent: {{id: gw-modbus}}
site: {{enterprise: acme, site: plant-1, area: grinding}}
profiles_dir: {CASES / "_devices"}
connections:
  - {{id: plc-a, transport: modbus-tcp, host: 127.0.0.1, port: 1502}}
  - {{id: bus, transport: modbus-rtu, serial_port: /dev/ttyUSB9}}
lines:
  - {{id: line-1}}
machines:
  - {{id: grinder-01, line: line-1, kind: grinder, profile: grinder, connection: plc-a, unit: 1,
     ideal_cycle_s: 5}}
meters:
  - {{id: meter-01, profile: meter, connection: bus, unit: 11, measures: grinder-01}}
calendar:
  shifts:
    - {{name: day, start: "00:00", end: "12:00"}}
outputs:
  mqtt: {{host: 127.0.0.1}}
"""


def connection_models() -> dict[str, type[ConnectionBase]]:
    """Each model of the `Connection` union by its `transport:` literal."""
    union = typing.get_args(Connection)[0]
    models: dict[str, type[ConnectionBase]] = {}
    for model in typing.get_args(union):
        annotation = model.model_fields["transport"].annotation
        assert typing.get_origin(annotation) is Literal
        [transport] = typing.get_args(annotation)
        models[transport] = model
    return models


def test_every_transport_of_the_workshop_file_has_its_driver_and_no_other() -> None:
    models = connection_models()
    assert set(models) == set(DRIVERS)
    for transport, entry in DRIVERS.items():
        assert entry.connection is models[transport]
        assert entry.protocol == ("modbus" if issubclass(entry.connection, ModbusConnectionBase) else "opcua")


class FieldbusConnection(ConnectionBase):
    """A transport the workshop file does not know: a model added without its registry entry."""

    transport: Literal["fieldbus"] = "fieldbus"


def test_a_connection_without_a_driver_fails_loudly_and_names_itself() -> None:
    connection = FieldbusConnection(id="press-gw")
    with pytest.raises(
        UnknownTransportError, match=r"connection 'press-gw': no driver for transport 'fieldbus'"
    ):
        build_driver(connection, [], lambda: 0.0, None)  # type: ignore[arg-type]
    with pytest.raises(
        UnknownTransportError, match="drivers: modbus-tcp, modbus-rtu-over-tcp, modbus-rtu, opcua"
    ):
        driver_entry(connection)


def test_a_model_under_another_transport_s_name_is_refused() -> None:
    """An entry serves its own model only: a model that claims an existing transport's value
    is not quietly driven by that transport's driver."""

    class Impostor(ConnectionBase):
        transport: Literal["modbus-tcp"] = "modbus-tcp"

    with pytest.raises(UnknownTransportError, match="Impostor"):
        driver_entry(Impostor(id="fake"))


def test_a_modbus_only_gateway_imports_neither_asyncua_nor_the_influxdb_client(tmp_path: Path) -> None:
    """The daemon's modules, the drivers and outputs its workshop names, and the agent built:
    asyncua (and its cryptography) and influxdb-client stay out of memory (bench/README.md)."""
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(MODBUS_ONLY, encoding="utf-8")
    script = f"""
import sys, time
from pathlib import Path
from agent.config.loader import load_config
from agent.service.daemon import Daemon
from agent.drivers.registry import build_driver
config = load_config(Path({str(workshop)!r}))
daemon = Daemon(config, Path({str(workshop)!r}))
for connection in config.workshop.connections:
    build_driver(connection, config.devices_on(connection), time.time, config.workshop.agent)
loaded = sorted({{name.split(".")[0] for name in sys.modules}} & {{"asyncua", "influxdb_client", "pymodbus"}})
print(" ".join(loaded))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["pymodbus"]  # the Modbus driver is built; nothing else


def test_the_sample_workshop_has_a_plan_for_every_connection() -> None:
    from agent.i18n import catalogue

    config = load_config(SAMPLE_WORKSHOP)
    for connection in config.workshop.connections:
        shown = driver_entry(connection).plan(connection, config.devices_on(connection), catalogue())
        assert shown


def test_every_output_of_the_workshop_file_has_its_sink_named_by_its_key() -> None:
    from agent.config.outputs import OutputsSection
    from agent.sinks.registry import SINKS

    fields = OutputsSection.model_fields
    assert list(fields) == list(SINKS)
    config = load_config(SAMPLE_WORKSHOP)
    examples = {
        "file": {"path": "-"},
        "mqtt": {"host": "127.0.0.1"},
        "influxdb": {"url": "http://x", "org": "o", "bucket": "b"},
        "sparkplug": {"host": "127.0.0.1", "group_id": "plant-1"},
    }
    for key, entry in SINKS.items():
        assert typing.get_args(fields[key].annotation)[0] is entry.settings
        sink = entry.build(entry.settings.model_validate(examples[key]), config)
        assert sink.name == key  # the outbox keeps each output's cursor under this name


def test_an_output_without_a_sink_fails_loudly() -> None:
    from agent.config.outputs import OutputBase
    from agent.sinks.registry import UnknownSinkError, sink_entry

    class Historian(OutputBase):
        @property
        def batch_records(self) -> int:
            return 1

    with pytest.raises(
        UnknownSinkError,
        match=r"outputs.historian: no sink for Historian; sinks: file, mqtt, influxdb, sparkplug",
    ):
        sink_entry("historian", Historian())


def test_an_output_gets_its_settings_shared_pace_and_retries() -> None:
    from agent.config.outputs import InfluxOutput, MqttOutput
    from agent.sinks.registry import Output

    mqtt = MqttOutput(
        host="h", max_inflight=250, replay_per_s=300.0, reconnect_max_s=5.0, qos=0, accept_loss=True
    )
    sink = object()
    assert Output.of(sink, mqtt) == Output(sink, 250, 300.0, 5.0, accept_loss=True)  # type: ignore[arg-type]
    influx = InfluxOutput(url="http://x", org="o", bucket="b", batch_size=700)
    assert Output.of(sink, influx) == Output(sink, 700, 5000.0, 30.0)  # type: ignore[arg-type]


async def test_a_transport_without_a_simulator_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses
    import time

    from agent.sim.server import NoSimulatorError, WorkshopSimulator

    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(MODBUS_ONLY, encoding="utf-8")
    config = load_config(workshop)
    monkeypatch.setitem(DRIVERS, "modbus-tcp", dataclasses.replace(DRIVERS["modbus-tcp"], simulate=None))
    with pytest.raises(NoSimulatorError, match="connection 'plc-a': transport 'modbus-tcp' has no simulator"):
        await WorkshopSimulator(config, time.time).start("plc-a")
