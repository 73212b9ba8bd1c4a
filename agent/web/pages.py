"""The HTML of the board and the report pages: one shell, filled in by its script from JSON.

Served, a page links its style and scripts from /static and fetches its figures from the URL in
`data-source`, so the Content-Security-Policy can forbid inline scripts. As a file
(`edge-agent report --output report.html`) the same shell carries all of it inline, the figures as
a JSON data block, so it opens anywhere without the agent and prints to PDF from the browser.
"""

from __future__ import annotations

import functools
import html
import json
import re
import string
from pathlib import Path
from typing import Any

from agent.package_data import package_folder

ECHARTS = "vendor/echarts.min.js"
SCRIPTS = {
    "board": ("page.js", "board.js"),
    "shift": (ECHARTS, "page.js", "report.js"),
    "day": (ECHARTS, "page.js", "report.js"),
    "month": (ECHARTS, "page.js", "report.js"),
    "index": ("page.js", "report.js"),
}
STYLE = "style.css"
SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)


def web_dir() -> Path:
    return package_folder("web")


def static_dir() -> Path:
    return web_dir() / "static"


@functools.cache
def _template() -> string.Template:
    return string.Template((web_dir() / "templates" / "page.html").read_text(encoding="utf-8"))


def _static_text(name: str) -> str:
    return (static_dir() / name).read_text(encoding="utf-8")


def served_page(kind: str, language: str, title: str, source: str) -> str:
    """The page as the agent serves it: assets and figures from their own URLs."""
    return _template().substitute(
        language=html.escape(language),
        title=html.escape(title),
        kind=kind,
        source=html.escape(source),
        styles=f'<link rel="stylesheet" href="/static/{STYLE}">',
        data="",
        scripts="\n".join(f'<script src="/static/{name}"></script>' for name in SCRIPTS[kind]),
    )


def _inline(text: str) -> str:
    """Script or JSON text that cannot end its <script> element early."""
    return SCRIPT_END.sub(r"<\\/\1", text)


def file_page(kind: str, language: str, title: str, document: dict[str, Any]) -> str:
    """The page as one self-contained file: style, scripts and figures inline."""
    # every '<' of the data as \u003c: no '</script>' or '<!--' in it can change how HTML parses it
    data = json.dumps(document, ensure_ascii=False, allow_nan=False).replace("<", "\\u003c")
    return _template().substitute(
        language=html.escape(language),
        title=html.escape(title),
        kind=kind,
        source="",
        styles=f"<style>\n{_static_text(STYLE)}\n</style>",
        data=f'<script type="application/json" id="page-data">{data}</script>',
        scripts="\n".join(f"<script>\n{_inline(_static_text(name))}\n</script>" for name in SCRIPTS[kind]),
    )
