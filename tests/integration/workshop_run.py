"""The sample workshop on free ports, its simulator and the agent as subprocesses, as a plant runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import CONFIGS, SAMPLE_WORKSHOP, free_port

EDGE_AGENT = [sys.executable, "-m", "agent"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def workshop_on_ports(tmp_path: Path, records: Path, name: str = "workshop.yaml") -> Path:
    """The sample workshop with every connection and the health endpoint on a free port, writing
    its records to `records`."""
    text = SAMPLE_WORKSHOP.read_text(encoding="utf-8")
    for port in sorted(set(re.findall(r"port: (\d+)", text))):
        text = text.replace(f"port: {port}", f"port: {free_port()}")
    for port in sorted(set(re.findall(r"opc\.tcp://127\.0\.0\.1:(\d+)", text))):
        text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{free_port()}")
    text = text.replace("path: var/edge-agent/records.jsonl", f"path: {records}")
    text += f"profiles_dir: {CONFIGS / 'devices'}\nhealth:\n  port: {free_port()}\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def without_lines(path: Path, *needles: str) -> str:
    """The file's text without the lines that contain any of the needles."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if not any(needle in line for needle in needles))


@contextmanager
def simulator_for(workshop: Path, log: Path, *options: str) -> Iterator[subprocess.Popen[str]]:
    """`edge-agent simulate` serving every connection of the workshop, stopped with SIGINT."""
    with log.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            [*EDGE_AGENT, "simulate", "-c", str(workshop), *options],
            cwd=workshop.parent,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            connections = workshop.read_text(encoding="utf-8").count("transport: ")
            for _ in range(connections):  # one line per served connection
                assert "serving" in process.stdout.readline()
            yield process
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=15)


def start_agent(workshop: Path, stderr: Path, **env: str) -> subprocess.Popen[str]:
    """`edge-agent run` in the workshop's folder (its state_dir is relative), stderr to a file."""
    with stderr.open("w", encoding="utf-8") as log:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [*EDGE_AGENT, "run", "-c", str(workshop)],
            cwd=workshop.parent,
            env={**ENV, **env},
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )
