"""The board and report routes on the agent's web server (agent/service/health.py adds them).

/board                              the workshop board; its figures: /board/data.json
/reports                            the report index (newest shifts first)
/reports/shift/<day>/<shift>        a shift report; its figures: the same URL + .json
/reports/day/<day>                  a day report (production day), + .json
/reports/month/<YYYY-MM>            energy per part per machine and line, day by day, + .json
/static/...                         the pages' scripts, style and the vendored chart library
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from agent.config.compiled import AgentConfig
from agent.history.store import HistoryStore
from agent.i18n import catalogue
from agent.reports.build import ReportNotFoundError, Reports, parse_day
from agent.web.documents import (
    board_document,
    index_document,
    month_document,
    page_context,
    report_document,
)
from agent.web.pages import served_page, static_dir


def _json(document: dict[str, Any]) -> web.Response:
    return web.Response(
        text=json.dumps(document, ensure_ascii=False, allow_nan=False), content_type="application/json"
    )


class WebPages:
    """The pages of one agent: its configuration (names, order, language), its history, its clock."""

    def __init__(
        self, config: Callable[[], AgentConfig], history: HistoryStore, clock: Callable[[], float]
    ) -> None:
        self.config = config  # called per request: a reload's names and language show at once
        self.history = history
        self.clock = clock
        self._cached: tuple[str, Reports] | None = None

    def context(self) -> dict[str, Any]:
        w = self.config().workshop
        return page_context(catalogue(w.site.language), w.site.timezone, w.agent.id)

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/board", self.board)
        app.router.add_get("/board/data.json", self.board_data)
        app.router.add_get("/reports", self.index)
        app.router.add_get("/reports/index.json", self.index_data)
        app.router.add_get(r"/reports/shift/{day}/{shift:[^/.]+}", self.shift_page)
        app.router.add_get(r"/reports/shift/{day}/{shift:[^/.]+}.json", self.shift_data)
        app.router.add_get(r"/reports/day/{day:[^/.]+}", self.day_page)
        app.router.add_get(r"/reports/day/{day:[^/.]+}.json", self.day_data)
        app.router.add_get(r"/reports/month/{month:[^/.]+}", self.month_page)
        app.router.add_get(r"/reports/month/{month:[^/.]+}.json", self.month_data)
        app.router.add_static("/static/", static_dir(), follow_symlinks=False, append_version=False)

    def _page(self, kind: str, title_key: str, source: str) -> web.Response:
        words = catalogue(self.config().workshop.site.language)
        body = served_page(kind, words.language, words(title_key), source)
        return web.Response(text=body, content_type="text/html")

    async def board(self, _request: web.Request) -> web.Response:
        return self._page("board", "web.board_title", "/board/data.json")

    async def board_data(self, _request: web.Request) -> web.Response:
        config = self.config()
        w = config.workshop
        return _json(
            board_document(
                self.history.latest(),
                self.history.last_stops(),
                self.context(),
                now=self.clock(),
                refresh_s=w.health.board_refresh_s,
                lines=[(line.id, line.name or line.id) for line in w.lines],
                machines=[(m.id, m.line, m.ideal_cycle_s) for m in w.machines],
                workshop_name=w.name,
                reason_text=self._reports().reasons,
            )
        )

    async def index(self, _request: web.Request) -> web.Response:
        return self._page("index", "web.reports", "/reports/index.json")

    async def index_data(self, _request: web.Request) -> web.Response:
        return _json(index_document(self.history.shifts(), self.context()))

    def _reports(self) -> Reports:
        """Built once per configuration version (its calendar and profiles), again after a reload."""
        config = self.config()
        if self._cached is None or self._cached[0] != config.version:
            self._cached = (config.version, Reports.of(config, self.history))
        return self._cached[1]

    async def shift_page(self, request: web.Request) -> web.Response:
        return self._page("shift", "web.shift_report", request.path + ".json")

    async def day_page(self, request: web.Request) -> web.Response:
        return self._page("day", "web.day_report", request.path + ".json")

    async def month_page(self, request: web.Request) -> web.Response:
        return self._page("month", "web.month_report", request.path + ".json")

    async def _report_json(self, build: Callable[[Reports], dict[str, Any]]) -> web.Response:
        """Build on a worker thread, on a read-only connection of its own: a busy workshop's shift
        takes a second or two, and the agent's loop must not wait for it."""
        reports = self._reports()
        context = self.context()

        def run() -> dict[str, Any]:
            with self.history.reader() as reader:
                return build(reports.on(reader)) | context

        try:
            document = await asyncio.to_thread(run)
        except ReportNotFoundError as error:
            raise web.HTTPNotFound(text=error.text(catalogue(self.config().workshop.site.language))) from None
        return _json(document)

    async def shift_data(self, request: web.Request) -> web.Response:
        day, shift = request.match_info["day"], request.match_info["shift"]
        return await self._report_json(lambda r: report_document(r.shift(parse_day(day), shift), {}))

    async def day_data(self, request: web.Request) -> web.Response:
        day = request.match_info["day"]
        return await self._report_json(lambda r: report_document(r.day(parse_day(day)), {}))

    async def month_data(self, request: web.Request) -> web.Response:
        month = request.match_info["month"]
        return await self._report_json(lambda r: month_document(r.month(month), {}))
