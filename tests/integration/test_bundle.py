"""The offline bundle, installed as a gateway without internet installs it, then used the way a
plant engineer first uses it: from an installed copy, in a folder that is not the checkout.

Building the bundle needs PyPI (the wheels come from there, as on the machine that builds bundles
for the plants); installing it may reach nothing: pip gets no index (--no-index), the index it
would fall back on is a closed port, and this machine's own pip configuration is switched off.
Only this machine's architecture and Python are built, to keep the test short (about a minute).
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port

pytestmark = pytest.mark.integration
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def offline_env(home: Path) -> dict[str, str]:
    """No pip configuration of this machine (find-links, extra indexes), no index that answers."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "VIRTUAL_ENV", "PYTHON"))}
    return {
        **env,
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple",  # nothing listens there
        "PIP_RETRIES": "0",
        "HOME": str(home),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "PYTHONUNBUFFERED": "1",
    }


def run(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@contextmanager
def simulating(edge_agent: Path, workshop: Path, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        [str(edge_agent), "simulate", "-c", str(workshop)],
        cwd=workshop.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        for _ in range(workshop.read_text(encoding="utf-8").count("transport: ")):
            assert "serving" in process.stdout.readline()
        yield
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=15)


def on_free_ports(workshop: Path) -> None:
    """The sample's fixed simulator ports moved to free ones (other tests may run meanwhile)."""
    text = workshop.read_text(encoding="utf-8")
    for port in sorted(set(re.findall(r"127\.0\.0\.1(?:, port: |:)(\d+)", text))):
        text = text.replace(f"port: {port}", f"port: {free_port()}").replace(f":{port}", f":{free_port()}")
    workshop.write_text(text, encoding="utf-8")


@pytest.mark.skipif(
    platform.machine() not in ("x86_64", "aarch64"), reason="bundles are for x86-64 and arm64"
)
def test_the_bundle_installs_offline_and_the_installed_copy_works_from_any_folder(tmp_path: Path) -> None:
    arch = platform.machine()
    built = run(
        [
            "bash",
            str(REPO / "deploy" / "bundle.sh"),
            "--arch",
            arch,
            "--python",
            PYTHON,
            "--out",
            str(tmp_path / "dist"),
        ],
        cwd=tmp_path,
        env={**os.environ, "PYTHON_BIN": sys.executable},
    )
    assert built.returncode == 0, built.stderr
    name = f"edge-agent-0.1.0-py{PYTHON}-{arch}"
    tarball = tmp_path / "dist" / f"{name}.tar.gz"
    with tarfile.open(tarball) as archive:
        names = archive.getnames()
    assert f"{name}/install.sh" in names
    wheels = [Path(n).name for n in names if n.endswith(".whl")]
    assert any(w.startswith("shopfloor_edge_agent-0.1.0-") for w in wheels)  # built: nothing to build offline
    assert any(w.startswith("pydantic_core-") and arch in w for w in wheels)
    assert not [n for n in names if n.endswith((".tar.gz", ".zip"))]  # binary wheels only

    # the gateway: the tarball unpacked somewhere, ./install.sh, no network
    gateway = tmp_path / "gateway"
    gateway.mkdir()
    with tarfile.open(tarball) as archive:
        archive.extractall(gateway, filter="data")
    root = tmp_path / "root"
    home = tmp_path / "home"
    home.mkdir()
    env = offline_env(home)
    installed = run(["bash", "./install.sh", "--destdir", str(root)], cwd=gateway / name, env=env)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "not started" in installed.stdout  # the sample workshop still points at its simulators
    assert "is where the 'grinding' sample's simulator listens" in installed.stderr
    assert "sudo -u edge-agent edge-agent run --once -c /etc/edge-agent/workshop.yaml" in installed.stdout
    edge_agent = root / "opt/edge-agent/venv/bin/edge-agent"
    assert (root / "usr/local/bin/edge-agent").readlink() == Path("/opt/edge-agent/venv/bin/edge-agent")
    assert (root / "etc/edge-agent/devices/sim-grinder.yaml").exists()

    # the installed copy, used from a folder that has nothing to do with the checkout
    work = tmp_path / "plant-laptop"
    work.mkdir()
    where = run(
        [str(root / "opt/edge-agent/venv/bin/python"), "-c", "import agent; print(agent.__file__)"], work, env
    )
    assert where.stdout.startswith(str(root / "opt/edge-agent/venv/lib/")), where.stdout + where.stderr

    demo = run([str(edge_agent), "demo", "--duration", "6", "--speed", "600"], work, env, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    records = home / ".local/state/edge-agent/demo/records.jsonl"
    assert f"written to {records}" in demo.stdout
    assert (
        records.read_text(encoding="utf-8").count('"kind": "oee"')
        + records.read_text(encoding="utf-8").count('"kind":"oee"')
        > 0
    )

    init = run([str(edge_agent), "init", "plant"], work, env)
    assert init.returncode == 0, init.stderr
    workshop = work / "plant" / "workshop.yaml"
    on_free_ports(workshop)
    validated = run([str(edge_agent), "validate", "-c", "plant/workshop.yaml"], work, env)
    assert validated.returncode == 0, validated.stderr
    assert f"profiles from {Path('plant') / 'devices'}" in validated.stdout
    with simulating(edge_agent, workshop, env):
        once = run([str(edge_agent), "run", "--once", "-c", "plant/workshop.yaml"], work, env, timeout=120)
    assert once.returncode == 0, once.stdout + once.stderr
    assert "22 of 22 devices answered every read" in once.stdout
    assert not list(work.rglob("outbox.db*"))
