# ruff: noqa: E501 - the JavaScript the tests run in the page reads best on one line each
"""The board and the reports in a real browser: Debian's headless Chromium, driven by Selenium
through the system chromedriver. Screenshots go to test-artifacts/browser/."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime as dt
import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from agent.config.compiled import AgentConfig
from agent.config.engine_setup import build_engine_setup
from agent.delivery.outbox import Outbox
from agent.history.store import HistoryStore
from agent.i18n import catalogue
from agent.kpi.calendar import ShiftCalendar
from agent.records import Record, RecordKind
from agent.reports.build import Reports
from agent.reports.data import month_energy
from agent.reports.reasons import ReasonNamer
from agent.runtime.agent import Agent
from agent.service.health import HealthServer
from agent.sim.server import WorkshopSimulator
from agent.sim.timeline import load_timeline
from agent.web.documents import board_document, month_document, page_context, report_document
from agent.web.pages import file_page
from tests.conftest import REPO
from tests.report_shift import (
    END,
    SHIFT,
    TRUTH_M1,
    TRUTH_PARETO,
    TRUTH_SPANS_M1,
    grinder_profile,
    shift_records,
)
from tests.unit.kpi_fixtures import SHANGHAI

webdriver = pytest.importorskip("selenium.webdriver")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("chromedriver") is None, reason="needs chromium-driver (scripts/bootstrap.sh)"
    ),
]
ARTIFACTS = REPO / "test-artifacts" / "browser"
TOKEN = "board-token-1"
DEAD = "line2-gw"
SCRIPTED = "grinder-01"  # on line 1, whose gateway stays up
FAULT_AT_S = 3600  # far enough that the first look always finds the grinder producing
WAIT_S = 15.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd("Network.enable", {})
    yield driver
    driver.quit()


def fresh_logs(driver: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Console entries and the URLs of every request since the last call."""
    console = driver.get_log("browser")
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return console, urls


def assert_clean(driver: Any) -> list[str]:
    """No console error, and every request went to the gateway (or is the page itself, inline)."""
    console, urls = fresh_logs(driver)
    errors = [e for e in console if e["level"] == "SEVERE"]
    assert errors == []
    hosts = {urlparse(u).hostname for u in urls if urlparse(u).scheme in ("http", "https", "ws", "wss")}
    assert hosts <= {"127.0.0.1"}, hosts
    return urls


def wait_for(driver: Any, script: str, timeout_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    shown = driver.execute_script("return document.body ? document.body.innerText.slice(0, 300) : ''")
    raise AssertionError(
        f"not true within {timeout_s} s at {driver.current_url}: {script}; the page shows: {shown}"
    )


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def with_site(config: AgentConfig, *, language: str) -> AgentConfig:
    w = config.workshop
    site = w.site.model_copy(update={"language": language})
    health = w.health.model_copy(update={"token": TOKEN, "board_refresh_s": 1.0})
    return dataclasses.replace(config, workshop=w.model_copy(update={"site": site, "health": health}))


def status(url: str, headers: dict[str, str] | None = None) -> int:
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback test server
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


async def test_the_board_shows_the_simulated_workshop_live_in_chinese(
    browser: Any, tmp_path: Path, sample_config: AgentConfig
) -> None:
    config = with_site(sample_config, language="zh-CN")
    agent = Agent(
        config,
        clock=time.time,
        engine_setup=build_engine_setup(config, offline_after_s=1.0, publish_interval_s=1.0),
        poll_interval_s=0.2,
        outbox=Outbox(tmp_path / "outbox.db"),
    )
    scripted = tmp_path / "timeline.yaml"  # grinder-01 produces, then stops on its spindle alarm
    scripted.write_text(
        f"machines:\n  {SCRIPTED}:\n    segments:\n"
        f"      - {{at: 0, state: producing}}\n      - {{at: {FAULT_AT_S}, state: fault, alarm: 1203}}\n",
        encoding="utf-8",
    )
    timeline = load_timeline(scripted, [m.id for m in config.workshop.machines])
    ahead = [0.0]  # the simulator's clock runs ahead by this: its script moves on when the test says

    def simulator_clock() -> float:
        return time.time() + ahead[0]

    stop = asyncio.Event()
    async with (
        WorkshopSimulator(config, simulator_clock, timeline=timeline) as simulator,
        HealthServer(agent, "127.0.0.1", 0) as server,
    ):
        task = asyncio.create_task(agent.run(stop))
        base = f"http://127.0.0.1:{server.port}"
        auth = "Basic " + base64.b64encode(f"plant:{TOKEN}".encode()).decode()
        try:
            assert await asyncio.to_thread(status, base + "/board") == 401
            assert (
                await asyncio.to_thread(status, base + "/board/data.json", {"Authorization": "Bearer wrong"})
                == 401
            )
            assert await asyncio.to_thread(status, base + "/board/data.json", {"Authorization": auth}) == 200
            assert await asyncio.to_thread(status, base + "/health") == 200  # edge-agent status reads it
            assert await asyncio.to_thread(status, base + "/board", {"Authorization": auth}) == 200

            def look() -> dict[str, Any]:
                browser.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": auth}})
                fresh_logs(browser)
                browser.get(base + "/board")
                machines = [m.id for m in config.workshop.machines]
                wait_for(
                    browser,
                    "return [...document.querySelectorAll('.tile')].filter(t => t.dataset.state !== 'unknown').length"
                    f" === {len(machines)}",
                )
                tiles = browser.execute_script(
                    "return [...document.querySelectorAll('.tile')].map(t => [t.dataset.machine, t.dataset.state,"
                    " t.querySelector('.state-name').textContent])"
                )
                shot = screenshot(browser, "board-zh-CN-1080p.png")
                return {"tiles": tiles, "shot": shot, "machines": machines}

            seen = await asyncio.to_thread(look)
            assert sorted(t[0] for t in seen["tiles"]) == sorted(seen["machines"])
            words = catalogue("zh-CN")
            assert all(t[2] == words.state(t[1]) for t in seen["tiles"])  # state names in Chinese
            assert {t[0]: t[1] for t in seen["tiles"]}[SCRIPTED] == "producing"
            tile = f"document.querySelector(`.tile[data-machine='{SCRIPTED}']`)"
            ahead[0] = FAULT_AT_S  # the script reaches the spindle alarm now
            await asyncio.to_thread(wait_for, browser, f"return {tile}.dataset.state === 'fault'")
            reason = await asyncio.to_thread(
                browser.execute_script, f"return {tile}.querySelector('.reason').textContent"
            )
            assert reason == "alarm 1203: 主轴过载"  # the code, named by the profile in the site's language
            await simulator.stop(DEAD)  # the line-2 gateway goes away: its machines go offline
            dead = [
                d.id for d in config.devices_on(next(c for c in config.workshop.connections if c.id == DEAD))
            ]
            script = (
                "return " + json.dumps([d for d in dead if d in seen["machines"]]) + ".every(m => "
                "document.querySelector(`.tile[data-machine='${m}']`).dataset.state === 'offline')"
            )
            await asyncio.to_thread(wait_for, browser, script)
            await asyncio.to_thread(screenshot, browser, "board-zh-CN-offline.png")
            await asyncio.to_thread(browser.set_window_size, 412, 915)  # a phone
            await asyncio.to_thread(screenshot, browser, "board-zh-CN-phone.png")
            await asyncio.to_thread(browser.set_window_size, 1920, 1080)
            urls = await asyncio.to_thread(assert_clean, browser)
            assert any(u.endswith("/board/data.json") for u in urls)
            today = dt.datetime.now(SHANGHAI).date().isoformat()

            def report_page() -> None:
                for path in (f"/reports/day/{today}", f"/reports/month/{today[:7]}", "/reports"):
                    browser.get(base + path)
                    wait_for(browser, "return document.getElementById('page').dataset.ready === '1'")
                    assert_clean(browser)  # ECharts under the CSP, no inline script, nothing from elsewhere
                browser.get(f"{base}/reports/shift/{today}/lunch")  # no such shift: said on the page
                wait_for(browser, "return document.getElementById('page').dataset.ready === 'error'")
                said = browser.execute_script("return document.getElementById('page').textContent")
                assert said.startswith(f"{today} 没有班次「lunch」")
                fresh_logs(browser)  # the 404 itself is logged by the browser: expected here

            await asyncio.to_thread(report_page)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


def scripted_report_file(tmp_path: Path, language: str) -> Path:
    history = HistoryStore(
        tmp_path / f"history-{language}.db", days=62, max_bytes=2**24, clock=lambda: END
    ).open()
    for record in shift_records():
        history.add([record])
    profile = grinder_profile()
    reports = Reports(
        history,
        ShiftCalendar((SHIFT,), "Asia/Shanghai"),
        ReasonNamer({"m1": profile, "m2": profile}, language),
    )
    report = reports.shift(dt.date(2026, 11, 24), "day")
    words = catalogue(language)
    page = file_page(
        "shift",
        language,
        words("web.shift_report"),
        report_document(report, page_context(words, "Asia/Shanghai", "gw-test")),
    )
    path = tmp_path / f"report-{language}.html"
    path.write_text(page, encoding="utf-8")
    history.close()
    return path


@pytest.mark.parametrize("language", ["en", "zh-CN"])
def test_a_shift_report_shows_the_scripted_shift(browser: Any, tmp_path: Path, language: str) -> None:
    path = scripted_report_file(tmp_path, language)
    fresh_logs(browser)
    browser.get(path.as_uri())
    wait_for(browser, "return document.getElementById('page').dataset.ready === '1'")
    spans = browser.execute_script(
        "const o = echarts.getInstanceByDom(document.getElementById('timeline')).getOption();"
        "const names = o.yAxis[0].data; return o.series[0].data.map(d => [names[d.value[0]] ?? 'plan', d.value[3], d.value[1], d.value[2]]);"
    )

    def hhmm(ms: float) -> str:
        return dt.datetime.fromtimestamp(ms / 1000, SHANGHAI).strftime("%H:%M")

    assert [(state, hhmm(a), hhmm(b)) for name, state, a, b in spans if name == "m1"] == TRUTH_SPANS_M1
    losses = browser.execute_script(
        "const row = document.querySelector('#losses-table tr[data-scope=\"m1\"]');"
        "return Object.fromEntries([...row.querySelectorAll('td[data-key]')].map(td => [td.dataset.key, td.textContent]));"
    )
    for key in ("setup_s", "idle_s", "fault_s", "speed_s", "quality_s", "valuable_s"):
        assert float(losses[key]) == pytest.approx(TRUTH_M1[key] / 60, abs=0.05), key
    pareto = browser.execute_script(
        "return [...document.querySelectorAll('#pareto-table tbody tr')].map(tr => [tr.dataset.state,"
        " tr.querySelector('[data-key=reason]').textContent, tr.querySelector('[data-key=minutes]').textContent])"
    )
    assert [(state, float(minutes) * 60) for state, _reason, minutes in pareto] == [
        (state, seconds) for state, _reason, seconds in TRUTH_PARETO
    ]
    alarm = {"en": "alarm 4001: coolant pressure low", "zh-CN": "alarm 4001: 冷却液压力低"}[language]
    assert pareto[0][1] == alarm
    summary = browser.execute_script(
        "const row = document.querySelector('#summary tr[data-scope=\"m1\"]');"
        "return [row.querySelector('[data-key=produced]').textContent, row.querySelector('[data-key=kwh_per_unit]').textContent]"
    )
    assert summary == [str(TRUTH_M1["produced"]), str(TRUTH_M1["kwh_per_unit"])]
    title = browser.execute_script("return document.querySelector('h1').textContent")
    assert title.startswith(catalogue(language)("web.shift_report"))
    screenshot(browser, f"shift-report-{language}.png")
    printed = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": True, "preferCSSPageSize": True})
    pdf = base64.b64decode(printed["data"])
    assert pdf.startswith(b"%PDF-")  # what the browser's print menu makes of it
    (ARTIFACTS / f"shift-report-{language}.pdf").write_bytes(pdf)
    urls = assert_clean(browser)
    assert all(u.startswith("file://") for u in urls)  # the file needs nothing from anywhere


def test_the_board_stays_responsive_with_200_machines(browser: Any, tmp_path: Path) -> None:
    now = time.time()
    records = []
    states = ("producing", "idle", "fault", "setup", "offline")
    for index in range(200):
        machine, line = f"m{index:03d}", f"line-{index // 20}"
        ident = {"machine": machine, "machine_name": machine, "line": line, "line_name": line}
        records.append(
            Record(RecordKind.STATE, now - index, {**ident, "state": states[index % 5], "reason": None})
        )
        oee = {
            "period": "shift",
            "pbt_s": 3600.0,
            "apt_s": 3000.0,
            "ideal_s": 2800.0,
            "produced": 700,
            "good": 690,
        }
        records.append(
            Record(
                RecordKind.OEE,
                now,
                {**ident, **oee, "oee": 0.77, "availability": 0.83, "performance": 0.93, "quality": 0.98},
            )
        )
    words = catalogue("zh-CN")
    document = board_document(
        records, {}, page_context(words, "Asia/Shanghai", "gw-test"), now=now, refresh_s=5.0
    )
    path = tmp_path / "board-200.html"
    path.write_text(file_page("board", "zh-CN", words("web.board_title"), document), encoding="utf-8")
    fresh_logs(browser)
    started = time.perf_counter()
    browser.get(path.as_uri())
    wait_for(browser, "return document.querySelectorAll('.tile').length === 200")
    load_s = time.perf_counter() - started
    render_ms = float(browser.execute_script("return document.getElementById('page').dataset.renderMs"))
    # a tick (the once-a-second update of every tile's duration) must leave the page free
    tick_ms = browser.execute_script(
        "const t0 = performance.now(); document.querySelectorAll('.since').forEach(n => n.textContent = n.textContent);"
        "return performance.now() - t0;"
    )
    screenshot(browser, "board-200-machines.png")
    assert_clean(browser)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "board-200-machines.json").write_text(
        json.dumps(
            {"machines": 200, "page_load_s": round(load_s, 3), "render_ms": render_ms, "tick_ms": tick_ms}
        )
    )


def test_the_month_view_shows_each_machines_kwh_per_part_for_the_month_and_each_day(
    browser: Any, tmp_path: Path
) -> None:
    records = []
    for day, parts, kwh in (("2026-11-01", 1000, 10.0), ("2026-11-02", 10, 2.0)):
        ident = {"machine": "m1", "machine_name": "磨床1", "line": "l1", "day": day}
        records.append(Record(RecordKind.OEE, 0.0, {**ident, "produced": parts}))
        records.append(
            Record(RecordKind.ENERGY, 0.0, {**ident, "kwh": kwh, "kwh_per_unit": round(kwh / parts, 6)})
        )
    words = catalogue("zh-CN")
    document = month_document(
        month_energy("2026-11", records), page_context(words, "Asia/Shanghai", "gw-test")
    )
    path = tmp_path / "month.html"
    path.write_text(file_page("month", "zh-CN", words("web.month_report"), document), encoding="utf-8")
    fresh_logs(browser)
    browser.get(path.as_uri())
    wait_for(browser, "return document.getElementById('page').dataset.ready === '1'")
    month = browser.execute_script(
        "return document.querySelector('#month-table tr[data-scope=m1] [data-key=kwh_per_unit]').textContent"
    )
    days = browser.execute_script(
        "return [...document.querySelectorAll('#month-days tbody tr')].map(tr => [tr.dataset.day,"
        " tr.querySelector('[data-key=m1]').textContent])"
    )
    assert month == str(round(12.0 / 1010, 6))  # the month's kWh over its parts, not the days' average
    assert days == [["2026-11-01", "0.01"], ["2026-11-02", "0.2"]]
    screenshot(browser, "month-zh-CN.png")
    assert_clean(browser)
