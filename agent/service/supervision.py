"""systemd supervision (sd_notify): READY=1 once the agent works, WATCHDOG=1 only while it makes progress.

The notification protocol is one datagram of newline-separated KEY=VALUE assignments to the unix
socket named by $NOTIFY_SOCKET (sd_notify(3)); it needs no library. The watchdog is not a timer
that pings regardless: a ping is sent only if every poll loop and the KPI loop went round
recently, so a loop stuck on an await that never returns gets the service restarted by systemd.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

from agent.runtime.agent import Agent
from agent.runtime.snapshot import AgentSnapshot

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0  # without a watchdog: how often STATUS= is refreshed


class SystemdNotifier:
    """Sends sd_notify messages; does nothing when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        # '@' names a socket in the abstract namespace, spelled with a leading NUL byte
        self.address = "\0" + address[1:] if address.startswith("@") else address
        self._socket: socket.socket | None = None
        self._failed = False
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def send(self, *assignments: str) -> None:
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(assignments).encode(), self.address)
        except OSError as error:
            if not self._failed:  # systemd gone or socket full: say so once, never stop the agent
                self._failed = True
                log.warning("event=sd_notify_failed address=%r error=%r", self.address, str(error))
            return
        self._failed = False

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def watchdog_period_s(environ: Mapping[str, str] | None = None) -> float | None:
    """WatchdogSec= as systemd passes it (WATCHDOG_USEC, for WATCHDOG_PID if that is set)."""
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC")
    pid = env.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        period = int(usec) / 1e6
    except ValueError:
        log.warning("event=watchdog_ignored WATCHDOG_USEC=%r detail='not a number'", usec)
        return None
    return period if period > 0 else None


def status_line(state: AgentSnapshot) -> str:
    """One line for systemd's STATUS= (`systemctl status edge-agent`)."""
    outputs = ", ".join(
        f"{o.sink} {'ok' if o.connected else 'down'} backlog {o.backlog_records}" for o in state.outputs
    )
    return f"{state.devices_up}/{state.devices} devices up; outputs: {outputs or 'none'}"


async def supervise(agent: Agent, notifier: SystemdNotifier, watchdog_s: float | None) -> None:
    """Runs beside the agent until cancelled."""
    if not notifier.enabled:
        return
    ready = False
    reloads = agent.reloads
    stalled_before: list[str] = []
    last_status = 0.0
    tick = watchdog_s / 2 if watchdog_s else 1.0
    while True:
        await asyncio.sleep(tick)
        messages = []
        if not ready and agent.working:
            ready = True
            messages.append("READY=1")
            log.info("event=ready detail='first poll cycle of every connection processed'")
        if agent.reloads != reloads:
            reloads = agent.reloads
            messages.append("READY=1")  # ends the RELOADING=1 sent when the reload was accepted
        now = time.monotonic()
        if now - last_status >= (watchdog_s or STATUS_EVERY_S):
            last_status = now
            messages.append(f"STATUS={status_line(agent.snapshot())}")
        if watchdog_s is not None:
            stalled = agent.stalled(watchdog_s)
            if not stalled:
                messages.append("WATCHDOG=1")
            if stalled != stalled_before:
                stalled_before = stalled
                if stalled:
                    log.error(
                        "event=watchdog_withheld stalled=%s detail='no progress for %.0f s; systemd "
                        "restarts the agent if this lasts WatchdogSec'",
                        ",".join(stalled),
                        watchdog_s,
                    )
                else:
                    log.warning("event=watchdog_resumed detail='every loop makes progress again'")
        if messages:
            notifier.send(*messages)
