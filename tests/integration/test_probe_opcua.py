"""`edge-agent probe opc.tcp://...` against the simulator's server: node ids resolved as the agent
resolves them, missing nodes as failures, and certificates that are never someone else's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.drivers.opcua_pki import Pki
from tests.conftest import free_port
from tests.integration.opcua_workshop import MACHINE_NODE, opcua_workshop
from tests.integration.workshop_run import simulator_for

pytestmark = pytest.mark.integration
NAMESPACE = "urn:shopfloor-edge-agent:simulator"


def probe_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "probe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "250", "XDG_STATE_HOME": str(home)},
    )


async def test_probe_resolves_nsu_ids_fails_on_missing_nodes_and_keeps_the_agents_certificate(
    tmp_path: Path,
) -> None:
    config = opcua_workshop(tmp_path)
    url = config.workshop.connections[0].url  # type: ignore[union-attr]
    agent_pki = tmp_path / "state" / "pki"
    agent_uri = "urn:gateway:edge-agent:gw-test"
    await Pki(agent_pki, agent_uri).ensure_own_certificate()  # as the agent's first start makes it
    certificate = (agent_pki / "own" / "cert.der").read_bytes()
    key = (agent_pki / "own" / "key.pem").read_bytes()
    home = tmp_path / "home"
    secure = ("--policy", "Basic256Sha256", "--pki", str(agent_pki))
    with simulator_for(config.source, tmp_path / "simulator.log"):  # trusts it into the agent's pki
        read = probe_cli(home, url, *secure, "--node", f"nsu={NAMESPACE};s=Machines/grinder-07/Spindle/Load")
        assert read.returncode == 0, read.stdout + read.stderr
        assert f"session as {agent_uri}" in read.stdout
        assert "ns=2;s=Machines/grinder-07/Spindle/Load" in read.stdout  # resolved on this server
        assert "Good" in read.stdout

        missing = probe_cli(home, url, *secure, "--node", f"nsu={NAMESPACE};s=Machines/grinder-99/Load")
        assert missing.returncode == 1
        assert "the node does not exist on this server (BadNodeIdUnknown)" in missing.stdout
        unknown = probe_cli(home, url, *secure, "--node", "nsu=urn:nobody;s=X")
        assert unknown.returncode == 1
        assert "the server has no namespace 'urn:nobody'" in unknown.stdout

        browsed = probe_cli(home, url, *secure, "--browse", MACHINE_NODE, "--depth", "1")
        assert browsed.returncode == 0, browsed.stderr
        assert f"nsu={NAMESPACE};s=Machines/grinder-07/Spindle" in browsed.stdout  # ids to copy into profiles
        gone = probe_cli(home, url, *secure, "--browse", f"nsu={NAMESPACE};s=Machines/grinder-99")
        assert gone.returncode == 1
        assert "cannot browse" in gone.stderr
        assert "does not exist" in gone.stderr

        # without --pki, probe uses a certificate and trust store of its own
        own = probe_cli(home, url, "--policy", "Basic256Sha256", "--browse", "i=85")
        assert own.returncode == 1
        assert "is not trusted" in own.stderr
        assert str(home / "edge-agent" / "probe-pki" / "rejected") in own.stderr
    assert (home / "edge-agent" / "probe-pki" / "own" / "cert.der").exists()
    # the agent's certificate, which a server may have trusted, is the one it had
    assert (agent_pki / "own" / "cert.der").read_bytes() == certificate
    assert (agent_pki / "own" / "key.pem").read_bytes() == key


def test_probe_names_why_it_cannot_connect(tmp_path: Path) -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}"
    refused = probe_cli(tmp_path, url)
    assert refused.returncode == 1
    assert f"probe: cannot connect to {url}: connection refused" in refused.stderr
