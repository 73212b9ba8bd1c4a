"""The Sparkplug B output's parts without a broker: the metric set derived from the configuration,
values as their datatypes say, the persisted bdSeq, commands and STATE payloads that are refused
(each with the reason a log line will give), and the will's payload read by an independent decoder."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from agent.config.compiled import AgentConfig
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind
from agent.sinks.sparkplug_b import sparkplug_b_pb2 as pb
from agent.sinks.sparkplug_bdseq import BdSeqStore
from agent.sinks.sparkplug_metrics import Catalogue, coerce
from agent.sinks.sparkplug_payloads import CommandError, host_state, node_death, rebirth_requested
from tests.conftest import CASES, free_port
from tests.sparkplug_decoder.org.eclipse.tahu.protobuf import DataType, Payload, PayloadMetric

MINIMAL = (CASES / "valid-minimal" / "workshop.yaml").read_text(encoding="utf-8")


def workshop(tmp_path: Path, sparkplug: str) -> Path:
    text = MINIMAL.replace("../_devices", str(CASES / "_devices"))
    path = tmp_path / "workshop.yaml"
    path.write_text(text + f"outputs:\n  sparkplug: {{host: 127.0.0.1, port: {free_port()}, {sparkplug}}}\n")
    return path


@pytest.mark.parametrize(
    ("sparkplug", "key", "message"),
    [
        ("", "outputs.sparkplug.group_id", "required"),
        ("group_id: a/b", "outputs.sparkplug.group_id", "without '/', '+', '#' or spaces"),
        ("group_id: g, edge_node_id: 'gw+1'", "outputs.sparkplug.edge_node_id", "without '/', '+', '#'"),
        ("group_id: g, primary_host_id: ''", "outputs.sparkplug.primary_host_id", "1 to 64 characters"),
        ("group_id: g, publish_tag: true", "outputs.sparkplug.publish_tag", "did you mean 'publish_tags'"),
        (
            "group_id: g, tls: {cert_file: c.pem}",
            "outputs.sparkplug.tls",
            "cert_file and key_file go together",
        ),
        ("group_id: g, batch_size: 0", "outputs.sparkplug.batch_size", "greater than or equal to 1"),
    ],
)
def test_a_bad_setting_is_named_at_its_line(tmp_path: Path, sparkplug: str, key: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(workshop(tmp_path, sparkplug))
    [issue] = caught.value.issues
    assert issue.path == key
    assert message in issue.message
    assert issue.mark.line == MINIMAL.count("\n") + 2  # the line of outputs.sparkplug's settings


def test_the_edge_node_defaults_to_the_agent_and_its_bdseq_lives_in_the_state_dir(tmp_path: Path) -> None:
    from agent.sinks.registry import build_outputs

    config = load_config(workshop(tmp_path, "group_id: plant-1"))
    [output] = build_outputs(config)
    assert output.sink.name == "sparkplug"
    assert output.sink.topics.node("NBIRTH") == "spBv1.0/plant-1/NBIRTH/gw-test"  # type: ignore[attr-defined]
    assert output.sink.bd_seq_store.path.parent == Path(config.workshop.agent.state_dir)  # type: ignore[attr-defined]
    assert output.batch_size == 100


def with_tags_of_the_first_machine(config: AgentConfig) -> AgentConfig:
    first, *others = config.workshop.machines
    machines = (first.model_copy(update={"publish_tags": True}), *others)
    return dataclasses.replace(config, workshop=config.workshop.model_copy(update={"machines": machines}))


def test_every_device_is_born_with_every_metric_an_alias_and_a_datatype(sample_config: AgentConfig) -> None:
    sample_config = with_tags_of_the_first_machine(sample_config)
    catalogue = Catalogue(sample_config, publish_tags=True)
    workshop = sample_config.workshop
    devices = {device.id: device for device in catalogue}
    assert list(devices) == [
        *(m.id for m in workshop.machines),
        *(line.id for line in workshop.lines),
        workshop.site.area,
    ]
    aliases = [metric.alias for device in catalogue for metric in device.metrics.values()]
    assert len(aliases) == len(set(aliases))
    assert 0 not in aliases
    machine = devices[workshop.machines[0].id].metrics
    assert machine["state"].datatype == pb.String
    assert machine["state/since"].datatype == pb.DateTime
    assert machine["oee/oee"].datatype == pb.Double
    assert machine["oee/final"].datatype == pb.Boolean
    assert machine["oee/micro_stops"].datatype == pb.Int64
    assert machine["oee_day/oee"].datatype == pb.Double
    tagged = [m for m in workshop.machines if m.publish_tags]
    untagged = [m for m in workshop.machines if not m.publish_tags]
    assert tagged
    assert untagged
    assert any(name.startswith("tags/") for name in devices[tagged[0].id].metrics)
    assert not any(name.startswith("tags/") for name in devices[untagged[0].id].metrics)
    assert not any(
        name.startswith("tags/") for d in Catalogue(sample_config, publish_tags=False) for name in d.metrics
    )


def test_energy_metrics_exist_where_energy_is_measured(sample_config: AgentConfig) -> None:
    devices = {device.id: device for device in Catalogue(sample_config, publish_tags=False)}
    workshop = sample_config.workshop
    metered = {meter.measures for meter in workshop.meters} | {
        m.id for m in workshop.machines if m.energy_meter
    }
    for machine in workshop.machines:
        assert ("energy/kwh" in devices[machine.id].metrics) == (machine.id in metered), machine.id
    assert "energy/kwh" in devices[workshop.site.area].metrics


def test_a_record_sets_its_folder_and_a_key_it_leaves_out_is_null(sample_config: AgentConfig) -> None:
    catalogue = Catalogue(sample_config, publish_tags=False)
    machine = sample_config.workshop.machines[0]
    fields = {"machine": machine.id, "line": machine.line, "period": "day", "oee": 0.5, "final": True}
    update = catalogue.update(Envelope("gw", 7, Record(RecordKind.OEE, 1_700_000_000.123, fields)))
    assert update is not None
    values = {metric.name: value for metric, value in update.values}
    assert (update.device, update.timestamp_ms) == (machine.id, 1_700_000_000_123)
    assert values["oee_day/oee"] == 0.5
    assert values["oee_day/final"] is True
    assert values["oee_day/availability"] is None
    assert not any(name.startswith("oee/") for name in values)
    event = Envelope("gw", 8, Record(RecordKind.EVENT, 1.0, {"event": "x"}))
    gone = Envelope("gw", 9, Record(RecordKind.STATE, 1.0, {"machine": "removed-since", "state": "idle"}))
    assert catalogue.update(event) is None
    assert catalogue.update(gone) is None


@pytest.mark.parametrize(
    ("datatype", "value", "expected"),
    [
        (pb.Double, 3, 3.0),
        (pb.Double, True, 1.0),
        (pb.Double, "x", None),
        (pb.Int64, 4.0, 4),
        (pb.Int64, 4.5, None),
        (pb.Boolean, 1, None),
        (pb.String, ["a", "b"], "a,b"),
        (pb.DateTime, "2026-11-25T00:59:52.113Z", 1795568392113),
        (pb.DateTime, "yesterday", None),
    ],
)
def test_values_are_published_as_their_datatype_says(datatype: int, value: object, expected: object) -> None:
    assert coerce(datatype, value) == expected


def test_bdseq_counts_connects_across_restarts_and_wraps(tmp_path: Path) -> None:
    path = tmp_path / "state" / "sparkplug-bdseq.json"
    assert [BdSeqStore(path, "g", "gw").next() for _ in range(3)] == [0, 1, 2]
    store = BdSeqStore(path, "g", "gw")
    store.unused(2)  # that CONNECT never went out
    assert store.next() == 2
    path.write_text(json.dumps({"edge_node": "g/gw", "bd_seq": 255}))
    assert store.next() == 0
    assert BdSeqStore(path, "g", "another-node").next() == 0  # a renamed node starts again


@pytest.mark.parametrize("content", ["{not json", '{"edge_node": "g/gw", "bd_seq": 300}', "[]"])
def test_an_unreadable_bdseq_file_starts_again_at_0_and_says_so(
    tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "sparkplug-bdseq.json"
    path.write_text(content)
    assert BdSeqStore(path, "g", "gw").next() == 0
    assert "event=bdseq_unreadable" in caplog.text


def test_the_will_is_one_bdseq_metric_without_seq() -> None:
    death = Payload.parse(node_death(7, 1_700_000_000_000))
    assert death.seq is None or death.seq == 0
    [metric] = death.metrics
    assert (metric.name, metric.datatype, metric.long_value) == ("bdSeq", DataType.Int64, 7)
    raw = pb.Payload()
    raw.ParseFromString(node_death(7, 1))
    assert not raw.HasField("seq")


def command(*metrics: PayloadMetric) -> bytes:
    return bytes(Payload(timestamp=1, metrics=list(metrics)))


@pytest.mark.parametrize(
    ("raw", "rebirth", "refused"),
    [
        (command(PayloadMetric(name="Node Control/Rebirth", boolean_value=True)), True, []),
        (command(PayloadMetric(name="Node Control/Rebirth", boolean_value=False)), False, []),
        (command(PayloadMetric(name="Node Control/Rebirth", long_value=1)), False, ["Node Control/Rebirth"]),
        (
            command(PayloadMetric(name="Node Control/Reboot", boolean_value=True)),
            False,
            ["Node Control/Reboot"],
        ),
        (command(PayloadMetric(alias=12, double_value=5.0)), False, ["alias 12"]),
        (command(), False, []),
    ],
)
def test_only_a_rebirth_is_carried_out(raw: bytes, rebirth: bool, refused: list[str]) -> None:
    assert rebirth_requested(raw) == (rebirth, refused)


@pytest.mark.parametrize("raw", [b"\x08not protobuf", b"\xff\xff\xff", b"\x12\x05\x0a"])
def test_a_command_that_is_not_sparkplug_is_refused_with_the_reason(raw: bytes) -> None:
    with pytest.raises(CommandError, match="not a Sparkplug B payload"):
        rebirth_requested(raw)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"ONLINE", "not UTF-8 JSON"),  # Sparkplug 2.2's STATE: not read as 3.0's
        (b"\xff", "not UTF-8 JSON"),
        (b"[true]", "not a JSON object"),
        (b'{"online": "yes", "timestamp": 1}', '"online" (true/false)'),
        (b'{"online": true}', '"timestamp"'),
        (b'{"online": true, "timestamp": true}', '"timestamp"'),
    ],
)
def test_a_bad_state_is_refused_with_the_reason(raw: bytes, message: str) -> None:
    with pytest.raises(CommandError, match=message.replace("(", r"\(").replace(")", r"\)")):
        host_state(raw)


def test_a_host_state_is_read() -> None:
    state = host_state(b'{"online": true, "timestamp": 1700000000000}')
    assert (state.online, state.timestamp_ms) == (True, 1_700_000_000_000)


def test_the_sample_workshops_sparkplug_block_is_valid(tmp_path: Path) -> None:
    from agent.config.outputs import SparkplugOutput
    from tests.conftest import SAMPLE_WORKSHOP

    lines = SAMPLE_WORKSHOP.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("  # sparkplug:"))
    block = [start]
    while start + len(block) < len(lines) and lines[start + len(block)].startswith("  #   "):
        block.append(start + len(block))
    text = "\n".join(line.replace("  # ", "  ", 1) if i in block else line for i, line in enumerate(lines))
    (tmp_path / "mqtt-password").write_text("secret")
    text = text.replace("/run/credentials/edge-agent.service/mqtt-password", str(tmp_path / "mqtt-password"))
    text = text.replace("/etc/edge-agent/plant-ca.crt", str(tmp_path / "ca.crt"))
    path = tmp_path / "workshop.yaml"
    path.write_text(
        text.replace("profiles_dir", "#profiles_dir")
        + f"\nprofiles_dir: {SAMPLE_WORKSHOP.parent / 'devices'}\n"
    )
    settings = load_config(path).workshop.outputs.sparkplug
    assert isinstance(settings, SparkplugOutput)
    assert (settings.group_id, settings.primary_host_id, settings.port) == ("plant-1", "ignition", 8883)


class FakeLink:
    """The MQTT session seam of the Sparkplug sink: records what is published; fence() can fail
    once, as a broker that went away before answering."""

    def __init__(self) -> None:
        self.connected = False
        self.mqtt5 = False
        self.endpoint = "mqtt://fake:1883"
        self.connect_not_sent = False
        self.published: list[tuple[str, bytes]] = []
        self.fail_next_fence = False

    def bind(self) -> None:
        return None

    async def connect(self, will: object, subscriptions: object) -> None:
        self.connected = True

    def publish(self, topic: str, payload: bytes, qos: int, *, retain: bool = False) -> int:
        self.published.append((topic, payload))
        return len(self.published)

    async def acknowledged(self, mids: object) -> None:
        return None

    async def fence(self) -> None:
        if self.fail_next_fence:
            self.fail_next_fence = False
            self.connected = False
            raise OutputError("sparkplug", "connection lost")

    def disconnect(self, *, with_will: bool = False) -> None:
        self.connected = False

    def drop(self, reason: str) -> None:
        self.connected = False


async def test_a_batch_the_broker_did_not_confirm_is_sent_again_after_a_birth_of_what_it_did(
    tmp_path: Path, sample_config: AgentConfig
) -> None:
    from agent.config.outputs import SparkplugOutput
    from agent.sinks.sparkplug import SparkplugSink

    settings = SparkplugOutput(host="fake", group_id="g", protocol="3.1.1")
    sink = SparkplugSink(
        settings,
        Catalogue(sample_config, publish_tags=False),
        BdSeqStore(tmp_path / "b.json", "g", "gw"),
        "gw",
    )
    link = FakeLink()
    sink.link = link  # type: ignore[assignment]
    machine = sample_config.workshop.machines[0]

    def state(value: str, ts: float) -> list[Envelope]:
        fields = {"machine": machine.id, "line": machine.line, "state": value, "since": None, "reason": None}
        return [Envelope("gw", 1, Record(RecordKind.STATE, ts, fields))]

    def told(verb: str, start: int) -> list[Payload]:
        return [Payload.parse(p) for t, p in link.published[start:] if f"/{verb}/" in t and machine.id in t]

    async with sink:
        await sink.write(state("producing", 100.0))
        link.fail_next_fence = True
        with pytest.raises(OutputError):
            await sink.write(state("idle", 200.0))
        assert not sink.born  # that session is over: the next write connects and births
        retry_from = len(link.published)
        await sink.write(state("idle", 200.0))  # the delivery loop sends the same batch again
    [birth] = told("DBIRTH", retry_from)
    born = next(m for m in birth.metrics if m.name == "state")
    assert (born.string_value, born.timestamp) == ("producing", 100_000)  # what the broker confirmed
    [again] = told("DDATA", retry_from)
    assert [m.string_value for m in again.metrics] == ["idle"]  # the change, sent again
    assert sink.bd_seq == 1
