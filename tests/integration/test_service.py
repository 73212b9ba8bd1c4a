"""`edge-agent run` as systemd runs it: sd_notify readiness, a watchdog fed only by progress, and
SIGHUP reloads, against the simulated workshop."""

from __future__ import annotations

import itertools
import re
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.commands.status import fetch_health
from tests.integration.workshop_run import (
    read_records,
    simulator_for,
    start_agent,
    without_lines,
    workshop_on_ports,
)

pytestmark = pytest.mark.integration


class NotifySocket:
    """What systemd listens on: a unix datagram socket collecting sd_notify messages with arrival times."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.socket.bind(str(path))
        self.socket.settimeout(0.1)
        self.messages: list[tuple[float, str]] = []

    def collect(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                data = self.socket.recv(4096)
            except TimeoutError:
                continue
            now = time.monotonic()
            self.messages += [(now, line) for line in data.decode().splitlines()]

    def wait_for(self, line: str, seconds: float, since: float = 0.0) -> float:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            found = [t for t, message in self.messages if message == line and t >= since]
            if found:
                return found[0]
            self.collect(0.2)
        raise AssertionError(f"no {line} within {seconds} s; got {self.lines()}")

    def times(self, line: str, start: float, end: float) -> list[float]:
        return [t for t, message in self.messages if message == line and start <= t <= end]

    def lines(self) -> list[str]:
        return [message for _, message in self.messages]


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.socket.close()


def wait_until(
    condition: Callable[[], bool], seconds: float, what: str, agent: subprocess.Popen[str]
) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert agent.poll() is None, f"the agent exited with {agent.returncode} while waiting for {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.2)


def cycles(health_url: str) -> int:
    return sum(c["cycles"] for c in fetch_health(health_url)["connections"].values())


def largest_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def test_ready_after_the_first_cycle_and_a_watchdog_that_stops_while_the_pipeline_is_stuck(
    tmp_path: Path, notify: NotifySocket
) -> None:
    records = tmp_path / "records.jsonl"
    workshop = workshop_on_ports(tmp_path, records)
    # KPI records every second: the KPI loop commits all the time, as a busy workshop's does
    workshop.write_text(
        workshop.read_text(encoding="utf-8").replace("publish_interval_s: 60", "publish_interval_s: 1"),
        encoding="utf-8",
    )
    log = tmp_path / "agent.log"
    with simulator_for(workshop, tmp_path / "simulator.log"):
        agent = start_agent(workshop, log, NOTIFY_SOCKET=str(notify.path), WATCHDOG_USEC="1000000")
        try:
            ready = notify.wait_for("READY=1", 20)
            notify.collect(3)
            healthy = notify.times("WATCHDOG=1", ready, ready + 3)
            assert len(healthy) >= 4, notify.lines()  # one every half period
            assert largest_gap(healthy) < 1.0
            assert any(line.startswith("STATUS=22/22 devices up") for line in notify.lines())

            # A backup tool holding the outbox's write lock: the KPI loop cannot commit, so it
            # stops going round and the watchdog must stop being fed (systemd would restart us).
            outbox = sqlite3.connect(workshop.parent / "var/edge-agent/outbox.db", isolation_level=None)
            outbox.execute("BEGIN IMMEDIATE")
            locked = time.monotonic()
            notify.collect(9)
            outbox.execute("ROLLBACK")
            released = time.monotonic()
            outbox.close()
            during = [locked, *notify.times("WATCHDOG=1", locked, released), released]
            assert largest_gap(during) >= 3.0, during

            resumed = notify.wait_for("WATCHDOG=1", 10, since=released)
            notify.collect(3)
            assert largest_gap(notify.times("WATCHDOG=1", resumed, resumed + 3)) < 1.0
            assert agent.poll() is None
            text = log.read_text()
            assert "event=watchdog_withheld stalled=kpi:process" in text
            assert "event=watchdog_resumed" in text
            assert "event=outbox_unwritable" in text  # records waited in memory meanwhile
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=20)
        assert agent.returncode == 0, log.read_text()
        notify.collect(0.5)
        assert "STOPPING=1" in notify.lines()


def test_sighup_applies_a_changed_config_and_keeps_running_on_a_broken_one(
    tmp_path: Path, notify: NotifySocket
) -> None:
    records = tmp_path / "records.jsonl"
    full = workshop_on_ports(tmp_path, records, name="full.yaml")
    workshop = tmp_path / "workshop.yaml"
    workshop.write_text(without_lines(full, "id: grinder-03", "id: meter-g03"), encoding="utf-8")
    log = tmp_path / "agent.log"
    health_url = "http://127.0.0.1:" + re.findall(r"health:\n  port: (\d+)", full.read_text())[0]

    def machines_seen() -> set[str]:
        return {r["machine"] for r in read_records(records) if r["kind"] == "state"}

    with simulator_for(full, tmp_path / "simulator.log"):  # serves grinder-03 all along
        agent = start_agent(workshop, log, NOTIFY_SOCKET=str(notify.path))
        try:
            wait_until(lambda: "grinder-01" in machines_seen(), 20, "state of grinder-01", agent)
            assert "grinder-03" not in machines_seen()

            workshop.write_text(full.read_text(encoding="utf-8"), encoding="utf-8")
            agent.send_signal(signal.SIGHUP)
            wait_until(lambda: "grinder-03" in machines_seen(), 20, "state of grinder-03 after reload", agent)
            assert "event=config_reloaded" in log.read_text()
            version_after_reload = fetch_health(health_url)["config"]["version"]
            notify.collect(2)
            assert "RELOADING=1" in notify.lines()

            workshop.write_text(
                full.read_text(encoding="utf-8").replace(
                    "profile: sim-grinder, connection: line1-gw, unit: 2",
                    "profile: sim-grindr, connection: line1-gw, unit: 2",
                ),
                encoding="utf-8",
            )
            agent.send_signal(signal.SIGHUP)
            wait_until(lambda: "event=config_reload_rejected" in log.read_text(), 10, "rejection", agent)
            text = log.read_text()
            assert "workshop.yaml:" in text
            assert "sim-grindr" in text
            assert "did you mean 'sim-grinder'" in text
            polled = cycles(health_url)
            time.sleep(3)
            document = fetch_health(health_url)
            assert cycles(health_url) > polled  # the running configuration still polls
            devices = document["connections"]["line1-gw"]["devices"]
            assert devices["grinder-02"]["connected"]
            assert devices["grinder-03"]["connected"]
            assert document["config"]["version"] == version_after_reload
        finally:
            agent.send_signal(signal.SIGTERM)
            agent.wait(timeout=20)
        assert agent.returncode == 0, log.read_text()
