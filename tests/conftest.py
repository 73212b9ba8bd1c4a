"""Shared fixtures: paths, free ports, configs moved onto free ports, a hypothesis profile."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from hypothesis import settings

from agent.commands.demo import in_state_dir, on_free_ports
from agent.config.compiled import AgentConfig
from agent.config.loader import load_config

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "agent" / "configs"
SAMPLE_WORKSHOP = CONFIGS / "grinding-workshop.yaml"
CASES = Path(__file__).resolve().parent / "cases"

settings.register_profile("ci", max_examples=200, deadline=None)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def sample_config(tmp_path: Path) -> AgentConfig:
    """The bundled sample workshop, every connection on a free loopback port, its state (outbox,
    certificates) in the test's own folder: never next to the sample inside the package."""
    return in_state_dir(on_free_ports(load_config(SAMPLE_WORKSHOP)), tmp_path / "state")
