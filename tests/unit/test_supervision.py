"""sd_notify plumbing: bad or missing systemd environment never stops the agent."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
from pathlib import Path

import pytest

from agent.service.supervision import SystemdNotifier, watchdog_period_s
from tests.conftest import REPO


def test_no_notify_socket_means_nothing_is_sent() -> None:
    notifier = SystemdNotifier({})
    assert not notifier.enabled
    notifier.send("READY=1")  # a no-op, not an error


def test_a_vanished_notify_socket_is_logged_once_and_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            notifier.send("WATCHDOG=1")
    notifier.close()
    assert caplog.text.count("event=sd_notify_failed") == 1


def test_messages_reach_an_abstract_socket() -> None:
    name = f"edge-agent-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as listener:
        listener.bind("\0" + name)
        notifier = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        notifier.send("READY=1", "STATUS=polling")
        assert listener.recv(100) == b"READY=1\nSTATUS=polling"
        notifier.close()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_period_from_the_environment(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_period_s(environ) == expected


def test_install_script_refuses_an_unknown_option_with_its_usage() -> None:
    done = subprocess.run(
        ["bash", str(REPO / "deploy" / "install.sh"), "--destdir", "/nonexistent", "--frobnicate"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "unknown option '--frobnicate'" in done.stderr
    assert "--uninstall" in done.stderr  # the usage, so the engineer sees what exists
