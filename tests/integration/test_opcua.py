"""The OPC UA driver against real asyncua servers (the simulator's): every security policy and
mode, user identities, an untrusted server, a restarted server, and the OPC 40001 state model."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asyncua.crypto import cert_gen
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.kpi.engine import KpiEngine
from agent.kpi.states import MachineState
from agent.samples import Quality
from tests.conftest import free_port
from tests.integration.opcua_workshop import (
    all_good,
    driver_for,
    opcua_workshop,
    read_until,
    server_for,
    trust,
)
from tests.integration.workshop_run import simulator_for

pytestmark = pytest.mark.integration
POLICIES = ("Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss")
STATES = {"Executing", "NotExecuting", "OutOfService", "NotAvailable"}


@pytest.mark.parametrize("mode", ["Sign", "SignAndEncrypt"])
@pytest.mark.parametrize("policy", POLICIES)
async def test_every_policy_and_mode_reads_the_machine(tmp_path: Path, policy: str, mode: str) -> None:
    config = opcua_workshop(tmp_path, security_policy=policy, security_mode=mode)
    async with server_for(config) as server:
        driver = driver_for(config)
        trust(server, driver)
        async with driver:
            result, _ = await read_until(driver, all_good, 10)
    values = {s.tag: s.value for s in result.samples}
    assert values["item_state"] in STATES
    assert values["operation_mode"] in {"Processing", "Setup"}
    assert isinstance(values["cycle_counter"], int)
    assert driver.connected is False  # closed on exit
    key = driver.pki.private_key
    assert key.stat().st_mode & 0o777 == 0o600


async def test_no_security_works_only_when_written_out_and_is_warned(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = opcua_workshop(tmp_path, security_policy="None", security_mode="None")
    async with server_for(config, allow_none=True):
        async with driver_for(config) as driver:
            await read_until(driver, all_good, 10)
    assert "event=insecure_session" in caplog.text


async def test_username_and_password(tmp_path: Path) -> None:
    secret = tmp_path / "opcua-password"
    secret.write_text("s3cret\n", encoding="utf-8")
    config = opcua_workshop(tmp_path, username="agent", password_file=str(secret))
    async with server_for(config, passwords={"agent": "s3cret"}) as server:
        driver = driver_for(config)
        trust(server, driver)
        async with driver:
            await read_until(driver, all_good, 10)


async def test_a_wrong_password_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    config = opcua_workshop(tmp_path, username="agent", password="guess")
    async with server_for(config, passwords={"agent": "s3cret"}) as server:
        driver = driver_for(config)
        trust(server, driver)
        async with driver:
            result = await driver.read()
    [status] = result.statuses
    assert not status.connected
    assert status.error is not None
    assert "refused the user" in status.error
    assert {s.quality for s in result.samples} == {Quality.BAD}


async def test_a_user_certificate_identity(tmp_path: Path) -> None:
    key = cert_gen.generate_private_key()
    certificate = cert_gen.generate_self_signed_app_certificate(
        key, "urn:operator", {"commonName": "line operator"}, [], extended=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    user_cert, user_key = tmp_path / "user.der", tmp_path / "user-key.pem"
    user_cert.write_bytes(certificate.public_bytes(Encoding.DER))
    user_key.write_bytes(cert_gen.dump_private_key_as_pem(key))
    config = opcua_workshop(tmp_path, user_certificate=str(user_cert), user_private_key=str(user_key))
    async with server_for(config, passwords={"someone": "else"}, user_certificates=(user_cert,)) as server:
        driver = driver_for(config)
        trust(server, driver)
        async with driver:
            await read_until(driver, all_good, 10)


async def test_a_user_key_that_is_not_a_file_is_a_device_status_not_a_hang(tmp_path: Path) -> None:
    """/dev/zero named as the key: asyncua would read it to the end; the agent refuses it by stat."""
    user_cert = tmp_path / "user.der"
    user_cert.write_bytes(b"not read: the key is refused first")
    config = opcua_workshop(tmp_path, user_certificate=str(user_cert), user_private_key="/dev/zero")
    async with server_for(config) as server:
        driver = driver_for(config)
        trust(server, driver)
        async with driver:
            result = await asyncio.wait_for(driver.read(), 10)
    [status] = result.statuses
    assert not status.connected
    assert status.error == (
        "user identity file /dev/zero: a character device, not a regular file: "
        "a certificate or key file must be a file"
    )


async def test_an_untrusted_server_is_refused_kept_in_rejected_and_trusted_by_moving_it(
    tmp_path: Path,
) -> None:
    config = opcua_workshop(tmp_path)
    async with server_for(config) as server:
        async with driver_for(config) as driver:
            result = await driver.read()
            [status] = result.statuses
            assert not status.connected
            assert status.error is not None
            assert "is not trusted" in status.error
            [rejected] = list(driver.pki.rejected.iterdir())
            assert rejected.read_bytes() == server.certificate.read_bytes()
            assert f"mv {rejected} {driver.pki.trusted / rejected.name}" in status.error
            rejected.rename(driver.pki.trusted / rejected.name)  # what the message tells the engineer
            await read_until(driver, all_good, 10)


async def test_a_restarted_server_is_reconnected_and_subscriptions_resume(tmp_path: Path) -> None:
    port = free_port()
    config = opcua_workshop(tmp_path, port=port)
    server = server_for(config)
    await server.start()
    driver = driver_for(config)
    trust(server, driver)
    async with driver:
        try:
            await read_until(driver, all_good, 10)
            await server.stop()
            _, noticed_s = await read_until(driver, lambda r: not r.statuses[0].connected, 10)
            assert noticed_s <= 2 * config.workshop.connections[0].keepalive_s + 1.0  # type: ignore[union-attr]
            server = server_for(config)  # a new process would have new namespaces and sessions
            await server.start()
            result, _ = await read_until(driver, all_good, 15)
            subscribed = [s for s in result.samples if s.tag == "item_state"]
            assert subscribed[0].quality is Quality.GOOD
        finally:
            await server.stop()


async def test_a_missing_browse_path_makes_that_tag_bad_not_the_machine(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = opcua_workshop(tmp_path)
    agents_view = load_config(config.source)  # the agent's copy of the profile has a typo the server lacks
    profile = agents_view.profiles["opc40001-grinder"].spec
    broken = profile.nodes["spindle_load"].model_copy(update={"path": "vendor:Spindle/vendor:Lode"})
    object.__setattr__(profile, "nodes", {**profile.nodes, "spindle_load": broken})
    caplog.set_level(logging.WARNING)
    async with server_for(config) as server:
        driver = driver_for(agents_view)
        trust(server, driver)
        async with driver:
            result, _ = await read_until(
                driver, lambda r: any(s.quality is Quality.GOOD for s in r.samples), 10
            )
    bad = {s.tag for s in result.samples if s.quality is Quality.BAD}
    assert bad == {"spindle_load"}
    [status] = result.statuses
    assert status.connected
    assert status.error is not None
    assert "vendor:Spindle/vendor:Lode not found" in status.error


def test_probe_lists_endpoints_and_browses_a_trusted_server(tmp_path: Path) -> None:
    config = opcua_workshop(tmp_path)
    url = config.workshop.connections[0].url  # type: ignore[union-attr]
    pki = str(tmp_path / "state" / "pki")
    with simulator_for(config.source, tmp_path / "simulator.log"):
        listed = probe_cli(url)
        assert listed.returncode == 0, listed.stderr
        for policy in ("Basic256Sha256", "Aes128_Sha256_RsaOaep", "Aes256_Sha256_RsaPss"):
            assert policy in listed.stdout
        assert "SignAndEncrypt" in listed.stdout
        browsed = probe_cli(
            url, "--policy", "Basic256Sha256", "--pki", pki, "--browse", "i=85", "--depth", "5"
        )
        assert browsed.returncode == 0, browsed.stderr
        assert "MachineryItemState" in browsed.stdout
        stranger = probe_cli(
            url, "--policy", "Basic256Sha256", "--pki", str(tmp_path / "other-pki"), "--browse", "i=85"
        )
        assert stranger.returncode == 1
        assert "is not trusted" in stranger.stderr


def probe_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "250"},
    )


async def test_a_bad_node_that_the_state_rules_read_leaves_the_machine_undecided_not_guessed(
    tmp_path: Path,
) -> None:
    """operation_mode (read by the rules before the one that says producing) cannot be found on
    the server: the machine's other nodes are read good, but its state is not guessed from the
    rules that skip it: it is offline (no data), and its parts are counted."""
    config = opcua_workshop(tmp_path)
    agents_view = load_config(config.source)
    profile = agents_view.profiles["opc40001-grinder"].spec
    broken = profile.nodes["operation_mode"].model_copy(update={"path": "vendor:Mode/vendor:Nope"})
    object.__setattr__(profile, "nodes", {**profile.nodes, "operation_mode": broken})
    setup = build_engine_setup(agents_view, offline_after_s=2.0)
    [machine_id] = [m.id for m in setup.machines]
    async with server_for(config) as server:
        driver = driver_for(agents_view)
        trust(server, driver)
        async with driver:
            result, _ = await read_until(
                driver, lambda r: any(s.quality is Quality.GOOD for s in r.samples), 10
            )
            engine, _ = KpiEngine.fresh(setup, result.samples[0].ts)  # as the agent starts it
            for _ in range(4):
                engine.ingest(result.samples)
                engine.advance(result.samples[0].ts)
                await asyncio.sleep(1.0)
                result = await driver.read()
            engine.ingest(result.samples)
            engine.advance(result.samples[0].ts)
    bad = {s.tag for s in result.samples if s.quality is Quality.BAD}
    assert bad == {"operation_mode"}
    tracker = engine.machines[machine_id]
    assert (tracker.state, tracker.reason) == (MachineState.OFFLINE, "no data")
    assert tracker.counters["produced"].last_value is not None  # the counter node was read
