"""The MQTT sink against real Mosquitto brokers: topics, payloads, retention, birth and will, TLS, auth."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest

from agent.config.outputs import MqttOutput, TlsSettings
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind
from agent.sinks.mqtt import MqttSink
from agent.sinks.topics import TopicRoot
from tests.integration.mqtt_client import Message, Subscriber
from tests.integration.servers import Credential, Mosquitto, certificate_authority, signed_certificate

pytestmark = pytest.mark.integration
SYSTEM_BROKER = 1883


def topics() -> TopicRoot:
    return TopicRoot(f"t{uuid.uuid4().hex[:8]}", "plant-1", "grinding", "gw-test")


def batch(start: int = 100) -> list[Envelope]:
    ident = {"machine": "grinder-07", "line": "line-1"}
    records = [
        Record(
            RecordKind.STATE,
            1_790_000_000.5,
            {**ident, "state": "fault", "since": "x", "reason": "alarm 1203"},
        ),
        Record(
            RecordKind.OEE,
            1_790_000_001.0,
            {**ident, "shift": "day", "final": False, "oee": 0.6182, "availability": None},
        ),
        Record(RecordKind.ENERGY, 1_790_000_001.0, {**ident, "kwh": 14.2, "co2e_kg": float("nan")}),
        Record(RecordKind.LINE_OEE, 1_790_000_001.0, {"line": "line-1", "oee": 0.7}),
        Record(RecordKind.WORKSHOP_OEE, 1_790_000_001.0, {"oee": 0.65}),
        Record(RecordKind.AGENT, 1_790_000_001.0, {"sinks": []}),
    ]
    return [Envelope("gw-test", start + i, r) for i, r in enumerate(records)]


def data_messages(messages: list[Message]) -> list[Message]:
    return [m for m in messages if not m.topic.endswith("/status")]


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_topics_payloads_and_retained_state(protocol: str) -> None:
    root = topics()
    sink = MqttSink(MqttOutput(host="127.0.0.1", port=SYSTEM_BROKER, protocol=protocol), root)
    with Subscriber(SYSTEM_BROKER, f"{root.root}/#") as live:
        await asyncio.sleep(0.2)
        async with sink:
            await sink.write(batch())
            received = await asyncio.to_thread(live.wait_for, lambda m: len(data_messages(m)) == 6)
        by_topic = {m.topic: m.body for m in data_messages(received)}
        r = root.root
        assert set(by_topic) == {
            f"{r}/line-1/grinder-07/state",
            f"{r}/line-1/grinder-07/oee",
            f"{r}/line-1/grinder-07/energy",
            f"{r}/line-1/oee",
            f"{r}/oee",
            f"{r}/_agent/gw-test/delivery",
        }
        state = by_topic[f"{r}/line-1/grinder-07/state"]
        assert state == {
            "ts": "2026-09-21T14:13:20.500Z",
            "agent": "gw-test",
            "seq": 100,
            "kind": "state",
            "machine": "grinder-07",
            "line": "line-1",
            "state": "fault",
            "since": "x",
            "reason": "alarm 1203",
        }
        assert by_topic[f"{r}/line-1/grinder-07/energy"]["co2e_kg"] is None  # NaN is never sent
        statuses = [
            m.body
            for m in await asyncio.to_thread(
                live.wait_for,
                lambda m: [x.body for x in m if x.topic.endswith("/status")] == ["online", "offline"],
            )
            if m.topic.endswith("/status")
        ]
        assert statuses == ["online", "offline"]
    with Subscriber(SYSTEM_BROKER, f"{root.root}/#") as late:  # a new subscriber learns the present at once
        retained = await asyncio.to_thread(late.wait_for, lambda m: len(m) >= 6)
        r = root.root
        assert {(m.topic, m.retain) for m in retained} == {  # by default: states and current figures
            (f"{r}/line-1/grinder-07/state", True),
            (f"{r}/line-1/grinder-07/oee", True),
            (f"{r}/line-1/grinder-07/energy", True),
            (f"{r}/line-1/oee", True),
            (f"{r}/oee", True),
            (root.status, True),
        }


async def test_unreachable_broker_is_a_clear_error_and_the_next_write_reconnects(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path)
    sink = MqttSink(MqttOutput(host="127.0.0.1", port=broker.port, timeout_s=2), topics())
    async with sink:
        with pytest.raises(OutputError, match=rf"mqtt://127.0.0.1:{broker.port}: .*refused"):
            await sink.write(batch())
        broker.start()
        try:
            await sink.write(batch())
            assert sink.connected
        finally:
            broker.stop()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Credential]:
    directory = tmp_path_factory.mktemp("pki")
    ca = certificate_authority(directory, "plant-ca")
    other_ca = certificate_authority(directory, "other-ca")
    return {
        "ca": ca,
        "other_ca": other_ca,
        "server": signed_certificate(directory, "server", ca),
        "expired": signed_certificate(directory, "expired", ca, expired=True),
        "wrong_host": signed_certificate(directory, "wrong-host", ca, dns="broker.example.org"),
        "client": signed_certificate(directory, "client", ca, dns="gw-test", client=True),
    }


def tls_broker(
    directory: Path, pki: dict[str, Credential], server: str, *, client_certs: bool = False
) -> Mosquitto:
    cred = pki[server]
    return Mosquitto(
        directory,
        extra=f"cafile {pki['ca'].cert}\ncertfile {cred.cert}\nkeyfile {cred.key}\n"
        f"require_certificate {'true' if client_certs else 'false'}\nallow_anonymous true\n",
    )


async def write_over_tls(port: int, tls: TlsSettings) -> None:
    sink = MqttSink(MqttOutput(host="localhost", port=port, tls=tls, timeout_s=5), topics())
    async with sink:
        await sink.write(batch())


async def test_tls_with_the_plant_ca(tmp_path: Path, pki: dict[str, Credential]) -> None:
    broker = tls_broker(tmp_path, pki, "server")
    broker.start()
    try:
        await write_over_tls(broker.port, TlsSettings(ca_file=str(pki["ca"].cert)))
    finally:
        broker.stop()


@pytest.mark.parametrize(
    ("server", "ca", "message"),
    [
        (
            "server",
            "other_ca",
            r"certificate was refused: (unable to get local issuer|self-signed certificate in)",
        ),
        ("expired", "ca", "certificate was refused: certificate has expired"),
        ("wrong_host", "ca", "certificate was refused: Hostname mismatch"),
    ],
)
async def test_tls_refusals_are_clear_and_never_fall_back_to_plain(
    tmp_path: Path, pki: dict[str, Credential], server: str, ca: str, message: str
) -> None:
    broker = tls_broker(tmp_path, pki, server)
    broker.start()
    try:
        with pytest.raises(OutputError, match=message):
            await write_over_tls(broker.port, TlsSettings(ca_file=str(pki[ca].cert)))
        assert "New client connected" not in broker.log()  # nothing was sent in the clear instead
    finally:
        broker.stop()


async def test_client_certificate(tmp_path: Path, pki: dict[str, Credential]) -> None:
    broker = tls_broker(tmp_path, pki, "server", client_certs=True)
    broker.start()
    try:
        with pytest.raises(OutputError):
            await write_over_tls(broker.port, TlsSettings(ca_file=str(pki["ca"].cert)))
        client = pki["client"]
        await write_over_tls(
            broker.port,
            TlsSettings(ca_file=str(pki["ca"].cert), cert_file=str(client.cert), key_file=str(client.key)),
        )
    finally:
        broker.stop()


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    passwords = tmp_path / "passwords"
    passwords.write_text("", encoding="utf-8")
    subprocess.run(["mosquitto_passwd", "-b", str(passwords), "agent", "s3cret"], check=True, timeout=30)
    return passwords


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_password_authentication(tmp_path: Path, password_file: Path, protocol: str) -> None:
    broker = Mosquitto(tmp_path, extra=f"allow_anonymous false\npassword_file {password_file}\n")
    broker.start()
    try:

        def sink(password: str) -> MqttSink:
            config = MqttOutput(
                host="127.0.0.1", port=broker.port, username="agent", password=password, protocol=protocol
            )
            return MqttSink(config, topics())

        async with sink("wrong") as refused:
            with pytest.raises(
                OutputError, match=r"broker refused the connection: (Not authorized|Bad user name)"
            ):
                await refused.write(batch())
        async with sink("s3cret") as accepted:
            await accepted.write(batch())
    finally:
        broker.stop()
