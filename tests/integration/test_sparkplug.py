"""The Sparkplug B output against real Mosquitto, read by an independent host (betterproto2, not the
agent's protobuf runtime): the birth sequence, aliases, DDATA equal to the committed records, a
broker outage with a new session (bdSeq + 1) born before any data, rebirth on NCMD, commands refused,
the primary host's STATE, and the NDEATH will when a real agent process is killed."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from agent.config.compiled import AgentConfig
from agent.config.outputs import SparkplugOutput, TlsSettings
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind
from agent.sinks.registry import Output
from agent.sinks.sparkplug import build_sparkplug_sink
from agent.sinks.sparkplug_metrics import NOT_PUBLISHED
from tests.integration.servers import Credential, Mosquitto
from tests.integration.sparkplug_host import (
    Received,
    Session,
    SparkplugHost,
    bd_seq_of,
    command,
    rebirth_command,
    sessions,
)
from tests.integration.test_delivery_outages import committed, epoch_ms_of, run_with_outage
from tests.integration.test_mqtt import password_file, pki, tls_broker  # noqa: F401 - fixtures
from tests.integration.workshop_run import start_agent, workshop_on_ports
from tests.sparkplug_decoder.org.eclipse.tahu.protobuf import DataType, PayloadMetric
from tests.unit.test_sparkplug import with_tags_of_the_first_machine

pytestmark = pytest.mark.integration
GROUP = "plant-1"
# a host that reconnects after an outage gets what was published meanwhile (QoS 0 included)
QUEUEING = "allow_anonymous true\nqueue_qos0_messages true\nmax_queued_messages 100000\n"
OEE_CHECKED = (
    "availability",
    "performance",
    "quality",
    "oee",
    "pbt_s",
    "apt_s",
    "produced",
    "good",
    "final",
    "shift",
)
ENERGY_CHECKED = ("kwh", "kwh_per_unit", "kgce", "final")


def devices_of(config: AgentConfig) -> set[str]:
    workshop = config.workshop
    return {m.id for m in workshop.machines} | {line.id for line in workshop.lines} | {workshop.site.area}


def expected_metrics(record: dict[str, Any], area: str) -> tuple[str, dict[str, Any]] | None:
    """What a host must read for a record, written from the record alone (not from the agent's
    mapping): its device and metric values. None: no equipment's record (crews, events, agent)."""
    kind = record["kind"]
    if kind == "state":
        since = epoch_ms_of(record["since"])
        return record["machine"], {
            "state": record["state"],
            "state/reason": record["reason"],
            "state/since": since,
        }
    if kind == "tags":
        return record["machine"], {f"tags/{tag}": value for tag, value in record["values"].items()}
    device = {"oee": "machine", "energy": "machine", "line_oee": "line", "line_energy": "line"}.get(kind)
    owner = record[device] if device else area if kind.startswith("workshop_") else None
    if owner is None:
        return None
    oee = kind.endswith("oee")
    folder = ("oee" if oee else "energy") + ("_day" if record["period"] == "day" else "")
    return owner, {f"{folder}/{key}": record.get(key) for key in (OEE_CHECKED if oee else ENERGY_CHECKED)}


def delivered(
    record: dict[str, Any], area: str, points: dict[tuple[str, str], list[tuple[int, Any]]]
) -> bool:
    """DDATA carries changes only: each metric of the record was sent with the record's time, or
    the host's value just before that time already was the record's."""
    expected = expected_metrics(record, area)
    if expected is None:
        return True
    device, values = expected
    ts = epoch_ms_of(record["ts"])
    for name, value in values.items():
        series = points.get((device, name), [])
        earlier = [v for t, v in series if t < ts]
        if (ts, value) not in series and not (earlier and earlier[-1] == value):
            return False
    return True


def known_points(found: list[Session]) -> dict[tuple[str, str], list[tuple[int, Any]]]:
    merged: dict[tuple[str, str], list[tuple[int, Any]]] = {}
    for session in found:
        for key, series in session.points.items():
            merged.setdefault(key, []).extend(series)
    return merged


async def test_a_session_across_a_broker_outage(tmp_path: Path, sample_config: AgentConfig) -> None:
    sample_config = with_tags_of_the_first_machine(sample_config)
    broker = Mosquitto(tmp_path, extra=QUEUEING)
    broker.start()
    settings = SparkplugOutput(
        host="127.0.0.1",
        port=broker.port,
        group_id=GROUP,
        timeout_s=2,
        reconnect_max_s=0.5,
        publish_tags=True,
    )
    sink = build_sparkplug_sink(settings, sample_config)
    area = sample_config.workshop.site.area
    devices = devices_of(sample_config)
    try:
        with SparkplugHost(broker.port, GROUP) as host:
            await run_with_outage(
                sample_config, tmp_path, Output(sink, 20, 2000.0, 0.5), broker.stop, broker.start
            )
            records = committed(tmp_path / "records.jsonl")

            def complete(messages: list[Received]) -> bool:
                points = known_points(sessions(messages))
                return all(delivered(r, area, points) for r in records)

            messages = await asyncio.to_thread(host.wait_for, complete, 20)
    finally:
        broker.stop()
    found = sessions(messages)
    # the outage ended the first session: a new CONNECT, the next bdSeq, births before any data
    assert len(found) >= 2
    assert [s.bd_seq for s in found] == list(range(found[0].bd_seq, found[0].bd_seq + len(found)))
    for session in found:
        assert session.verbs[0] == "NBIRTH"
        assert session.verbs[1 : 1 + len(devices)] == ["DBIRTH"] * len(devices)
        assert "DBIRTH" not in session.verbs[1 + len(devices) :]
        assert set(session.births) == devices
        assert session.seqs == [i % 256 for i in range(len(session.seqs))]  # none lost, none reordered
        aliases = [alias for birth in session.births.values() for alias in birth]
        assert len(aliases) == len(set(aliases)), "aliases are unique over the edge node"
        assert all(
            datatype != DataType.Unknown for b in session.births.values() for _, datatype in b.values()
        )
    assert found[1].data, "data flowed in the session after the outage"
    assert any(r["kind"] == "tags" for r in records), "raw tags were among the records checked"
    nbirth = next(m for m in messages if m.verb == "NBIRTH").payload
    by_name = {m.name: m for m in nbirth.metrics}
    assert by_name["Node Control/Rebirth"].boolean_value is False
    assert by_name["Node Control/Rebirth"].alias == 0
    assert by_name["bdSeq"].datatype == DataType.Int64
    # every key of every published record is a metric, or said on purpose not to be one
    published = {name.rsplit("/", 1)[-1] for s in found for b in s.births.values() for name, _ in b.values()}
    for record in records:
        if expected_metrics(record, area) is not None and record["kind"] != "tags":
            record_keys = set(record) - {"ts", "agent", "seq", "kind", "values"}
            assert record_keys - published - NOT_PUBLISHED - {"since", "reason"} == set(), record["kind"]


def state_record(machine: str, line: str, state: str, ts: float) -> Envelope:
    fields = {
        "machine": machine,
        "line": line,
        "state": state,
        "since": "2026-12-01T00:00:00.000Z",
        "reason": None,
    }
    return Envelope("gw", 1, Record(RecordKind.STATE, ts, fields))


async def test_rebirth_on_request_and_every_other_command_refused(
    tmp_path: Path, sample_config: AgentConfig, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    settings = SparkplugOutput(host="127.0.0.1", port=broker.port, group_id=GROUP, timeout_s=2)
    machine = sample_config.workshop.machines[0]
    node = f"spBv1.0/{GROUP}/NCMD/{sample_config.workshop.agent.id}"
    devices = devices_of(sample_config)
    caplog.set_level(logging.INFO, logger="agent.sinks.sparkplug")
    try:
        with SparkplugHost(broker.port, GROUP, persistent=False) as host:
            async with build_sparkplug_sink(settings, sample_config) as sink:
                await sink.write([state_record(machine.id, machine.line, "producing", time.time())])
                await asyncio.to_thread(host.wait_for, lambda ms: any(m.verb == "DDATA" for m in ms))
                host.publish(node, command([PayloadMetric(name="Node Control/Reboot", boolean_value=True)]))
                host.publish(node, b"\x08not protobuf")
                host.publish(
                    f"spBv1.0/{GROUP}/DCMD/{sample_config.workshop.agent.id}/{machine.id}", command([])
                )
                host.publish(node, rebirth_command())
                await asyncio.to_thread(host.wait_for, lambda ms: [m.verb for m in ms].count("NBIRTH") == 2)
                await asyncio.sleep(0.5)  # time for a wrong rebirth (or more) to show
                unchanged = state_record(machine.id, machine.line, "producing", time.time())
                await sink.write([unchanged])  # no change, no DDATA (report by exception)
                await sink.write([state_record(machine.id, machine.line, "idle", time.time())])
                messages = await asyncio.to_thread(
                    host.wait_for, lambda ms: [m.verb for m in ms].count("DDATA") == 2
                )
    finally:
        broker.stop()
    [first, second] = sessions(messages)
    assert second.bd_seq == first.bd_seq  # a rebirth keeps the will, and its bdSeq
    assert second.verbs == ["NBIRTH", *["DBIRTH"] * len(devices), "DDATA"]
    assert second.seqs == list(range(len(second.verbs)))
    rebirth = [m for m in messages if m.verb == "DBIRTH" and m.device == machine.id][-1].payload
    state = next(m for m in rebirth.metrics if m.name == "state")
    assert state.string_value == "producing"  # the birth carries the last value sent
    assert second.data[0][1]["state"][0] == "idle"
    refused = [r.message for r in caplog.records if "event=command_refused" in r.message]
    assert any("Node Control/Reboot" in line for line in refused)
    assert any("not a Sparkplug B payload" in line for line in refused)
    assert any("DCMD" in line for line in refused)


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_births_wait_for_the_primary_host_and_end_when_it_goes_offline(
    tmp_path: Path, sample_config: AgentConfig, protocol: str
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    settings = SparkplugOutput(
        host="127.0.0.1",
        port=broker.port,
        group_id=GROUP,
        primary_host_id="scada",
        timeout_s=1,
        protocol=protocol,
    )
    state_topic = "spBv1.0/STATE/scada"
    machine = sample_config.workshop.machines[0]

    reasons = itertools.count()

    def record() -> list[Envelope]:  # a change each time (its reason): DDATA carries changes only
        fields = {
            "machine": machine.id,
            "line": machine.line,
            "state": "fault",
            "reason": f"alarm {next(reasons)}",
        }
        return [Envelope("gw", 1, Record(RecordKind.STATE, time.time(), fields))]

    def verbs(messages: list[Received]) -> list[str]:
        return [m.verb for m in messages]

    try:
        with SparkplugHost(broker.port, GROUP, persistent=False) as host:
            host.publish(state_topic, b'{"online": false, "timestamp": 1000}', retain=True, qos=1)
            async with build_sparkplug_sink(settings, sample_config) as sink:
                with pytest.raises(OutputError, match="waiting for the primary host application 'scada'"):
                    await sink.write(record())
                assert "NBIRTH" not in verbs(host.snapshot())
                host.publish(state_topic, b'{"online": true, "timestamp": 2000}', retain=True, qos=1)
                await sink.write(record())
                host.publish(
                    state_topic, b'{"online": false, "timestamp": 1500}', retain=True, qos=1
                )  # stale
                await asyncio.sleep(0.3)
                await sink.write(record())
                host.publish(state_topic, b'{"online": false, "timestamp": 3000}', retain=True, qos=1)
                await asyncio.to_thread(host.wait_for, lambda ms: "NDEATH" in verbs(ms))
                with pytest.raises(OutputError, match="waiting for the primary host"):
                    await sink.write(record())
                host.publish(state_topic, b'{"online": true, "timestamp": 4000}', retain=True, qos=1)
                await sink.write(record())
                messages = await asyncio.to_thread(host.wait_for, lambda ms: verbs(ms).count("DDATA") == 3)
    finally:
        broker.stop()
    first, second = sessions(messages)
    assert len(first.data) == 2  # the stale offline did not end the session
    assert second.bd_seq == first.bd_seq + 1
    [death] = [m for m in messages if m.verb == "NDEATH"]
    assert bd_seq_of(death.payload) == first.bd_seq
    assert verbs(messages).index("NDEATH") < [i for i, m in enumerate(messages) if m.verb == "NBIRTH"][1]


def test_the_will_is_the_death_certificate_when_the_agent_is_killed(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    workshop = workshop_on_ports(tmp_path, tmp_path / "records.jsonl")
    text = workshop.read_text(encoding="utf-8")
    sparkplug = (
        f"outputs:\n  sparkplug:\n    host: 127.0.0.1\n    port: {broker.port}\n    group_id: {GROUP}\n"
    )
    workshop.write_text(text.replace("outputs:\n", sparkplug, 1), encoding="utf-8")

    def births(messages: list[Received]) -> list[int]:
        return [bd_seq_of(m.payload) for m in messages if m.verb == "NBIRTH"]

    def deaths(messages: list[Received]) -> list[int]:
        return [bd_seq_of(m.payload) for m in messages if m.verb == "NDEATH"]

    agent: subprocess.Popen[str] | None = None
    try:
        with SparkplugHost(broker.port, GROUP, persistent=False) as host:
            agent = start_agent(workshop, tmp_path / "agent-1.log")
            host.wait_for(lambda ms: len(births(ms)) == 1, 60)
            agent.send_signal(signal.SIGKILL)
            agent.wait(10)
            host.wait_for(lambda ms: len(deaths(ms)) == 1, 15)
            agent = start_agent(workshop, tmp_path / "agent-2.log")
            host.wait_for(lambda ms: len(births(ms)) == 2, 60)
            agent.send_signal(signal.SIGTERM)  # a clean stop sends its death certificate too
            agent.wait(30)
            messages = host.wait_for(lambda ms: len(deaths(ms)) == 2, 15)
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        broker.stop()
    first, second = births(messages)
    assert deaths(messages) == [first, second]  # each death names its session's birth
    assert second == (first + 1) % 256  # bdSeq persisted across the restart


async def test_a_reload_that_changes_the_metric_set_rebirths(
    tmp_path: Path, sample_config: AgentConfig, caplog: pytest.LogCaptureFixture
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    settings = SparkplugOutput(
        host="127.0.0.1", port=broker.port, group_id=GROUP, timeout_s=2, publish_tags=True
    )
    workshop = sample_config.workshop
    first, removed = workshop.machines[0], workshop.machines[-1]
    reloaded = with_tags_of_the_first_machine(
        dataclasses.replace(
            sample_config, workshop=workshop.model_copy(update={"machines": workshop.machines[:-1]})
        )
    )
    try:
        with SparkplugHost(broker.port, GROUP, persistent=False) as host:
            async with build_sparkplug_sink(settings, sample_config) as sink:
                await sink.write([state_record(first.id, first.line, "producing", time.time())])
                sink.reconfigure(sample_config)  # the same metric set: nothing to say
                sink.reconfigure(reloaded)
                backlog = state_record(
                    removed.id, removed.line, "idle", time.time()
                )  # stored before the reload
                await sink.write([backlog, state_record(first.id, first.line, "idle", time.time())])
                messages = await asyncio.to_thread(
                    host.wait_for, lambda ms: [m.verb for m in ms].count("DDATA") == 2
                )
    finally:
        broker.stop()
    first_session, second_session = sessions(messages)
    assert second_session.bd_seq == first_session.bd_seq
    assert first_session.verbs[-1] == "DDEATH"  # the machine that is gone, before the new births
    assert [m.device for m in messages if m.verb == "DDEATH"] == [removed.id]
    assert set(second_session.births) == devices_of(reloaded)
    assert [device for device, _ in second_session.data] == [first.id]
    assert f"event=record_skipped device={removed.id}" in caplog.text
    assert any(name.startswith("tags/") for name, _ in second_session.births[first.id].values())
    assert first_session.seqs + second_session.seqs == [
        *range(len(first_session.seqs)),
        *range(len(second_session.seqs)),
    ]


async def test_tls_client_certificates_and_passwords_as_for_the_mqtt_output(
    tmp_path: Path,
    sample_config: AgentConfig,
    pki: dict[str, Credential],  # noqa: F811 - the fixture of test_mqtt
    password_file: Path,  # noqa: F811
) -> None:
    machine = sample_config.workshop.machines[0]
    batch = [state_record(machine.id, machine.line, "producing", time.time())]

    async def write(port: int, **settings: Any) -> None:
        output = SparkplugOutput(host="localhost", port=port, group_id=GROUP, timeout_s=5, **settings)
        async with build_sparkplug_sink(output, sample_config) as sink:
            await sink.write(batch)

    broker = tls_broker(tmp_path, pki, "server", client_certs=True)
    broker.start()
    client = pki["client"]
    try:
        with pytest.raises(OutputError, match="certificate was refused"):
            await write(broker.port, tls=TlsSettings(ca_file=str(pki["other_ca"].cert)))
        with pytest.raises(OutputError):  # the broker wants a client certificate
            await write(broker.port, tls=TlsSettings(ca_file=str(pki["ca"].cert)))
        certificate = TlsSettings(
            ca_file=str(pki["ca"].cert), cert_file=str(client.cert), key_file=str(client.key)
        )
        await write(broker.port, tls=certificate)
    finally:
        broker.stop()
    (tmp_path / "second").mkdir()
    broker = Mosquitto(tmp_path / "second", extra=f"allow_anonymous false\npassword_file {password_file}\n")
    broker.start()
    try:
        with pytest.raises(OutputError, match="broker refused the connection"):
            await write(broker.port, username="agent", password="wrong")
        await write(broker.port, username="agent", password="s3cret")
    finally:
        broker.stop()
