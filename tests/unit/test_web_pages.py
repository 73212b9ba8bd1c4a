"""The board and report routes without a browser: who may see them, the headers they carry, the
JSON they serve, and the self-contained report file."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from agent.commands.report import ReportError, write_report
from agent.config.compiled import AgentConfig
from agent.history.store import HistoryStore
from agent.i18n import catalogue
from agent.records import Record, RecordKind
from agent.web.documents import board_document, page_context, target_parts
from agent.web.pages import file_page
from agent.web.routes import WebPages
from agent.web.security import guard, presented_token

TOKEN = "s3cret-token"
NOW = 1_795_500_000.0  # 2026-11-24 17:20 Asia/Shanghai: the day shift of the sample workshop
DAY, SHIFT = "2026-11-24", "day"


def basic(password: str, user: str = "tv") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def with_token(config: AgentConfig, token: str | None) -> AgentConfig:
    w = config.workshop
    return dataclasses.replace(
        config, workshop=w.model_copy(update={"health": w.health.model_copy(update={"token": token})})
    )


def shift_records() -> list[Record]:
    ident = {"machine": "grinder-01", "machine_name": "grinder-01", "line": "line-1", "line_name": "L1"}
    period = {
        "period": "shift",
        "shift": SHIFT,
        "day": DAY,
        "shift_name": "白班",
        "crew": "a",
        "crew_name": "甲班",
    }
    oee = {
        "pbt_s": 3600.0,
        "apt_s": 3000.0,
        "ideal_s": 2750.0,
        "ideal_good_s": 2700.0,
        "produced": 500,
        "good": 491,
    }
    return [
        Record(RecordKind.STATE, NOW - 600, {**ident, "state": "fault", "reason": "alarm 1203"}),
        Record(RecordKind.STATE, NOW - 300, {**ident, "state": "producing", "reason": None}),
        Record(RecordKind.OEE, NOW, {**ident, **period, **oee, "final": False, "oee": 0.75}),
        Record(RecordKind.WORKSHOP_OEE, NOW, {**period, **oee, "final": False, "oee": 0.75}),
    ]


@pytest.fixture
async def history(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    store = HistoryStore(tmp_path / "history.db", days=62, max_bytes=2**24, clock=lambda: NOW).open()
    store.add(shift_records())
    yield store
    store.close()


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def client_for(config: AgentConfig, history: HistoryStore) -> TestClient[web.Request, web.Application]:
    app = web.Application(middlewares=[guard(config.workshop.health.token)])
    WebPages(lambda: config, history, lambda: NOW).add_to(app)
    app.router.add_get("/health", health)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


PAGES = ("/board", "/board/data.json", "/reports", f"/reports/shift/{DAY}/{SHIFT}.json", "/static/board.js")


async def test_with_a_token_every_page_asks_for_it_but_health(
    sample_config: AgentConfig, history: HistoryStore
) -> None:
    client = await client_for(with_token(sample_config, TOKEN), history)
    try:
        for path in PAGES:
            refused = await client.get(path)
            assert refused.status == 401, path
            assert refused.headers["WWW-Authenticate"].startswith('Basic realm="edge-agent"')
            assert (await client.get(path, headers=basic("wrong"))).status == 401, path
            assert (await client.get(path, headers=basic(TOKEN))).status == 200, path
            assert (await client.get(path, headers={"Authorization": f"Bearer {TOKEN}"})).status == 200, path
        assert (await client.get("/health")).status == 200  # edge-agent status and Prometheus read it
    finally:
        await client.close()


async def test_headers_forbid_inline_scripts_and_caching_of_reports(
    sample_config: AgentConfig, history: HistoryStore
) -> None:
    client = await client_for(sample_config, history)  # no token: open, on loopback
    try:
        page = await client.get(f"/reports/shift/{DAY}/{SHIFT}")
        html = await page.text()
        csp = page.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp
        assert "unsafe-inline" not in csp
        assert "default-src 'none'" in csp
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["Cache-Control"] == "no-store"
        assert re.findall(r"<script(?![^>]*\bsrc=)", html) == []  # every script is a file
        data = await client.get(f"/reports/shift/{DAY}/{SHIFT}.json")
        assert data.headers["Cache-Control"] == "no-store"
        static = await client.get("/static/vendor/echarts.min.js")
        assert static.status == 200
        assert static.headers["Cache-Control"].startswith("max-age=")
        assert (await client.post("/board")).status == 405  # read-only
        missing = await client.get(f"/reports/shift/{DAY}/night-owl.json")
        assert missing.status == 404
        assert "has no shift 'night-owl'; its shifts: day, night" in await missing.text()
        assert (await client.get("/reports/day/24-11-2026.json")).status == 404
    finally:
        await client.close()


async def test_the_running_shift_report_shows_its_figures_so_far(
    sample_config: AgentConfig, history: HistoryStore
) -> None:
    client = await client_for(sample_config, history)
    try:
        document = await (await client.get(f"/reports/shift/{DAY}/{SHIFT}.json")).json()
        index = await (await client.get("/reports/index.json")).json()
    finally:
        await client.close()
    report = document["report"]
    assert report["final"] is False
    assert [m["scope"] for m in report["machines"]] == ["grinder-01"]
    assert report["pareto"][0]["reason"] == "alarm 1203: spindle overload"  # the profile's alarm text
    assert document["labels"]["shift_report"] == "Shift report"
    assert index["report"]["shifts"] == []  # closed shifts only: nothing final yet


async def test_the_board_data_is_in_the_sites_language_in_the_configured_order(
    sample_config: AgentConfig, history: HistoryStore
) -> None:
    w = sample_config.workshop
    zh = dataclasses.replace(
        sample_config, workshop=w.model_copy(update={"site": w.site.model_copy(update={"language": "zh-CN"})})
    )
    client = await client_for(zh, history)
    try:
        board = await (await client.get("/board/data.json")).json()
        missing = await (await client.get(f"/reports/shift/{DAY}/early.json")).text()
    finally:
        await client.close()
    assert missing == f"{DAY} 没有班次「early」；当天的班次：day, night"  # the page shows it as it is
    assert board["labels"]["board_title"] == "车间看板"
    assert board["states"]["fault"] == catalogue("zh-CN").state("fault")
    assert [line["id"] for line in board["lines"]] == [line.id for line in w.lines]
    tiles = [t for line in board["lines"] for t in line["machines"]]
    assert [t["id"] for t in tiles] == [m.id for m in w.machines]
    first = tiles[0]
    assert (first["state"], first["oee"], first["produced"]) == ("producing", 0.75, 500)
    assert first["since"] == NOW - 300
    assert first["last_stop"]["reason"] == "alarm 1203: 主轴过载"
    assert first["target"] == 654  # 3600 s planned so far / (2750 s / 500 parts)
    assert board["shift"] == {"id": SHIFT, "name": "白班", "crew": "甲班", "start": None, "day": DAY}
    assert tiles[1]["state"] == "unknown"  # configured, no record yet: still a tile


def test_target_parts_use_the_configured_cycle_before_the_first_part() -> None:
    assert target_parts({"pbt_s": 600.0, "produced": 0, "ideal_s": 0.0}, 5.5) == 109
    assert target_parts({"pbt_s": 600.0, "produced": 10, "ideal_s": 60.0}, 5.5) == 100
    assert target_parts(None, 5.5) is None


def test_tokens_are_read_from_basic_and_bearer_only() -> None:
    assert presented_token("Bearer abc") == "abc"
    assert presented_token("Basic " + base64.b64encode(b"x:p:q").decode()) == "p:q"
    assert presented_token("Basic !!!") is None
    assert presented_token("Digest abc") is None
    assert presented_token(None) is None


def test_the_report_file_carries_everything_and_cannot_be_broken_out_of() -> None:
    words = catalogue("en")
    context = page_context(words, "Asia/Shanghai", "gw")
    hostile = "</script><script>alert(1)</script>"
    document = board_document(
        [Record(RecordKind.STATE, NOW, {"machine": "m1", "line": "l1", "state": "fault", "reason": hostile})],
        {},
        context,
        now=NOW,
        refresh_s=5,
    )
    page = file_page("board", "en", words("web.board_title"), document)
    assert page.lower().count("</script>") == 3  # data, page.js, board.js: the data closes nothing
    assert "<!--" not in page
    data = page.split('id="page-data">')[1].split("</script>")[0]
    assert json.loads(data)["lines"][0]["machines"][0]["reason"] == hostile


def test_the_report_command_says_when_there_is_no_history(sample_config: AgentConfig, tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"no history at .*history\.db: has the agent run"):
        write_report(sample_config, tmp_path / "r.html", shift=(DAY, SHIFT))


def test_the_report_command_writes_one_self_contained_file(
    sample_config: AgentConfig, tmp_path: Path
) -> None:
    history = HistoryStore(
        Path(sample_config.workshop.agent.state_dir) / "history.db", days=62, max_bytes=2**24
    )
    with history.open():
        history.add([dataclasses.replace(r, fields={**r.fields, "final": True}) for r in shift_records()])
    out = write_report(sample_config, tmp_path / "report.html", shift=(DAY, SHIFT), language="zh-CN")
    page = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in page
    assert "<title>班报</title>" in page
    assert "echarts" in page
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.DOTALL)  # the page's own elements
    assert re.search(r'<(script|link|img)[^>]+(src|href)="(?!data:)', markup) is None  # opens anywhere
    month = write_report(sample_config, tmp_path / "month.html", month="2026-11")
    assert '"kind": "month"' in month.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),  # noqa: S104 - a host to classify, not to bind
        ("192.168.1.20", False),
        ("gateway.plant", False),
    ],
)
def test_only_loopback_hosts_keep_the_board_to_this_gateway(host: str, loopback: bool) -> None:
    from agent.service.daemon import is_loopback

    assert is_loopback(host) is loopback


def test_report_without_a_history_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main
    from tests.conftest import SAMPLE_WORKSHOP

    workshop = tmp_path / "workshop.yaml"
    text = SAMPLE_WORKSHOP.read_text(encoding="utf-8").replace(
        "state_dir: var/edge-agent", f"state_dir: {tmp_path}"
    )
    workshop.write_text(text, encoding="utf-8")
    assert main(["report", "-c", str(workshop), "--day", DAY, "-o", str(tmp_path / "r.html")]) == 2
    assert f"report: no history at {tmp_path / 'history.db'}" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_time_between_shifts_is_no_shift_on_the_board() -> None:
    period = {"period": "shift", "shift": "no_shift", "shift_name": None, "day": DAY, "final": False}
    document = board_document(
        [Record(RecordKind.WORKSHOP_OEE, NOW, period)],
        {},
        page_context(catalogue("en"), "UTC", "gw"),
        now=NOW,
        refresh_s=5,
    )
    assert document["shift"] is None  # the page says "No shift now", not the period's id
