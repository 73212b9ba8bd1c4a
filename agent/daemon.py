"""`edge-agent run`: the agent with what a service needs around it: signals (TERM/INT stop, HUP
reloads), the local health endpoint and systemd supervision."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path

from agent.clock import SteadyClock
from agent.config.issues import ConfigError
from agent.config.loader import AgentConfig, load_config
from agent.health import HealthServer
from agent.runtime import Agent
from agent.sinks.registry import build_outputs
from agent.supervision import SystemdNotifier, supervise, watchdog_period_s

log = logging.getLogger("agent")


class Daemon:
    def __init__(self, config: AgentConfig, path: Path) -> None:
        self.path = path
        self.agent = Agent(config, clock=SteadyClock(), outputs=build_outputs(config))
        self.notifier = SystemdNotifier()
        self.stop = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()

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
                        supervise(self.agent, self.notifier, watchdog_period_s()), name="agent.systemd"
                    )
                    await self.agent.run(self.stop)
                    supervisor.cancel()
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
        """Load and check the file again; apply it only if it is valid as a whole."""
        log.info("event=config_reload_requested file=%s", self.path)
        try:
            config = await asyncio.to_thread(load_config, self.path)
        except ConfigError as error:
            log.error(  # noqa: TRY400 - the issues are the message; a traceback would bury them
                "event=config_reload_rejected file=%s errors=%d detail='the running configuration stays'",
                self.path,
                len(error.issues),
            )
            for issue in error.issues:
                log.error("event=config_error detail=%r", str(issue))  # noqa: TRY400
            return
        if config.version == self.agent.config.version:
            log.info("event=config_unchanged version=%s", config.version)
            return
        self.notifier.send("RELOADING=1")
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
        log.info("event=health_endpoint url=http://%s:%d/health", server.host, server.port)
