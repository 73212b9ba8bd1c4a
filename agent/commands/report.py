"""`edge-agent report`: a shift, day or month report from the agent's history, as one
self-contained HTML file (the same page /reports serves; print it to PDF from a browser)."""

from __future__ import annotations

import time
from pathlib import Path

from agent.config.compiled import AgentConfig
from agent.history.store import HistoryReader
from agent.i18n import catalogue
from agent.reports.build import Reports, parse_day
from agent.runtime.agent import default_history
from agent.web.documents import month_document, page_context, report_document
from agent.web.pages import file_page


class ReportError(RuntimeError):
    """Nothing to report from: the message says why."""


def open_history(config: AgentConfig) -> HistoryReader:
    """The history read-only: a running agent goes on writing it, and nothing here deletes."""
    history = default_history(config, time.time)
    if history is None:
        raise ReportError("history.enabled is false in this workshop: the agent keeps no report history")
    if not history.path.exists():
        raise ReportError(f"no history at {history.path}: has the agent run with this workshop file?")
    return history.reader()


def write_report(
    config: AgentConfig,
    output: Path,
    *,
    shift: tuple[str, str] | None = None,
    day: str | None = None,
    month: str | None = None,
    language: str | None = None,
) -> Path:
    """Write the report asked for (one of shift=(day, shift), day, month) to output."""
    w = config.workshop
    words = catalogue(language or w.site.language)
    context = page_context(words, w.site.timezone, w.agent.id)
    with open_history(config) as history:
        reports = Reports.of(config, history)
        if shift is not None:
            document = report_document(reports.shift(parse_day(shift[0]), shift[1]), context)
            kind, title = "shift", words("web.shift_report")
        elif day is not None:
            document = report_document(reports.day(parse_day(day)), context)
            kind, title = "day", words("web.day_report")
        elif month is not None:
            document = month_document(reports.month(month), context)
            kind, title = "month", words("web.month_report")
        else:
            raise ReportError("say which report: --shift DAY SHIFT, --day DAY or --month YYYY-MM")
    output.write_text(file_page(kind, words.language, title, document), encoding="utf-8")
    return output
