"""`edge-agent run`: the agent with what a service needs around it: signals (TERM/INT stop, HUP
reloads), the local health endpoint and systemd supervision."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import ipaddress
import logging
import signal
import zoneinfo
from pathlib import Path

from agent.clock import SteadyClock
from agent.config.compiled import AgentConfig
from agent.config.holidays import missing_years
from agent.config.issues import ConfigError
from agent.config.loader import load_config
from agent.runtime.agent import Agent
from agent.runtime.restarts import LoopHealth, keep_running
from agent.service.health import HealthServer
from agent.service.heap import keep_settled
from agent.service.supervision import SystemdNotifier, supervise, watchdog_period_s
from agent.sinks.registry import build_outputs

log = logging.getLogger("agent")


def log_warnings(config: AgentConfig) -> None:
    """What the file says in a form that still works but should be changed (once per load)."""
    for warning in config.warnings:
        log.warning("event=config_deprecated detail=%r", str(warning))


class Daemon:
    def __init__(self, config: AgentConfig, path: Path) -> None:
        self.path = path
        self.agent = Agent(config, clock=SteadyClock(), outputs=build_outputs(config))
        log_missing_holidays(config)
        self.notifier = SystemdNotifier()
        self.stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._reloading = asyncio.Lock()  # one file load at a time, however many SIGHUPs arrive
        log_warnings(config)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop)
        loop.add_signal_handler(signal.SIGHUP, self._reload_soon)
        try:
            async with contextlib.AsyncExitStack() as stack:
                await self._start_health_endpoint(stack)
                async with asyncio.TaskGroup() as group:
                    supervisor = group.create_task(
                        keep_running(
                            functools.partial(supervise, self.agent, self.notifier, watchdog_period_s()),
                            self.agent.loops.setdefault("systemd", LoopHealth("systemd")),
                        ),
                        name="agent.systemd",
                    )
                    settling = group.create_task(keep_settled(self.agent), name="agent.heap")
                    await self.agent.run(self.stop)
                    supervisor.cancel()
                    settling.cancel()
        finally:
            self.notifier.close()

    def _stop(self) -> None:
        self.notifier.send("STOPPING=1")
        self.stop.set()

    def _reload_soon(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload(), name="agent.config_reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def reload(self) -> None:
        """Load and check the file again; apply it only if it is valid as a whole. Loading runs in
        a thread, bounded in time and memory by the loader, so polling goes on meanwhile; whatever
        goes wrong is logged here and the running configuration stays."""
        async with self._reloading:
            await self._reload()

    async def _reload(self) -> None:
        log.info("event=config_reload_requested file=%s", self.path)
        try:
            config = await asyncio.to_thread(load_config, self.path)
        except ConfigError as error:
            log.error(  # noqa: TRY400 - the issues are the message; a traceback would bury them
                "event=config_reload_rejected file=%s errors=%d first=%r "
                "detail='the running configuration stays'",
                self.path,
                len(error.issues),
                str(error.issues[0]) if error.issues else "",
            )
            for issue in error.issues:
                log.error("event=config_error detail=%r", str(issue))  # noqa: TRY400
            return
        except Exception:  # a loader bug: still a rejection, and the traceback is what fixes it
            log.exception(
                "event=config_reload_rejected file=%s detail='unexpected failure while loading; "
                "the running configuration stays'",
                self.path,
            )
            return
        if config.version == self.agent.config.version:
            log.info("event=config_unchanged version=%s", config.version)
            return
        log_warnings(config)
        self.notifier.send("RELOADING=1")
        log_missing_holidays(config)
        self.agent.request_reload(config)

    async def _start_health_endpoint(self, stack: contextlib.AsyncExitStack) -> None:
        settings = self.agent.config.workshop.health
        if not settings.enabled:
            return
        try:
            server = await stack.enter_async_context(HealthServer(self.agent, settings.host, settings.port))
        except OSError as error:  # a taken port must not stop the agent itself
            log.error(  # noqa: TRY400 - the reason is the message; no traceback
                "event=health_endpoint_failed host=%s port=%d error=%r",
                settings.host,
                settings.port,
                error.strerror or str(error),
            )
            return
        base = f"http://{server.host}:{server.port}"
        log.info("event=health_endpoint url=%s/health board=%s/board reports=%s/reports", base, base, base)
        if settings.token is None and not is_loopback(settings.host):
            log.warning(
                "event=board_unprotected host=%s detail='the board and the reports are open to the network: "
                "set health.token'",
                settings.host,
            )


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: only this gateway can reach the server."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def log_missing_holidays(config: AgentConfig) -> None:
    """Once at start and at each reload: a holiday set that does not know this year (or, in
    December, the next) would have its holidays worked as normal days."""
    chosen = config.workshop.calendar.holidays
    if chosen is None:
        return
    today = dt.datetime.now(zoneinfo.ZoneInfo(config.workshop.site.timezone)).date()
    for year in missing_years(chosen, today):
        log.warning(
            "event=holidays_unknown set=%s year=%d detail='until an update carries this year, write its "
            "holidays into calendar.days_off and its make-up working days into calendar.working_days'",
            chosen,
            year,
        )
