"""Every query of every shipped dashboard, run as Grafana runs it, against what real agents wrote
into a real InfluxDB.

Two gateways poll the same simulated workshop with one shop-floor clock, run 120 times faster than
life, and write through the `api: v1` output into one InfluxDB 1.x database and into their record
files. Both carry the same machine ids: gateway A is the sample workshop, B the same without its
OPC UA grinder. Their shifts cross a shift change at 23:50 (the same production day) and a day
change when the shift that started the day before ends:
- A runs three shifts and works on into its night shift (00:10) until the end, 00:18;
- B has no night shift: after its late shift (ends 00:04) comes time without a shift, and B falls
  silent at 00:08, so at 00:18 its "this shift" panels show the late shift, and its "now" panels
  show nothing rather than states ten minutes old.

Then each dashboard is opened as a manager would open it right after A's last publication (00:18):
its variables are resolved by
their own queries, its macros expanded (tests/integration/grafana.py), and every panel's query
runs, as Grafana's read-only user, for each gateway and, on the machine dashboard, each machine.
Each answer must equal what the records say (tests/integration/dashboard_truth.py), and hold rows
wherever the records have something to show.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.clock import ScaledClock
from agent.commands.demo import on_free_ports
from agent.config.compiled import AgentConfig
from agent.config.connections import OpcUaConnection
from agent.config.engine_setup import build_engine_setup
from agent.config.loader import load_config
from agent.config.outputs import InfluxOutput
from agent.config.workshop import WORKSHOP_SCOPE, CalendarSection
from agent.delivery.outbox import Outbox
from agent.i18n import catalogue
from agent.runtime.agent import Agent
from agent.sim.server import OpcUaSimulation, WorkshopSimulator
from agent.sinks.file import FileSink
from agent.sinks.influx import InfluxSink
from agent.sinks.registry import Output, topic_root
from tests.conftest import SAMPLE_WORKSHOP
from tests.dashboard_files import GRAFANA, dashboards, load_generator
from tests.integration.dashboard_truth import (
    Point,
    View,
    answer_of,
    differences,
    expected,
    stored_points,
)
from tests.integration.dashboard_truth import epoch_ms as epoch_ms_of
from tests.integration.grafana import (
    TimeRange,
    Variable,
    interval_ms,
    panel_interval_ms,
    panel_query,
    resolve_variables,
)
from tests.integration.servers import InfluxDB1
from tests.integration.workshop_run import read_records

pytestmark = pytest.mark.integration

SPEED = 120.0  # shop-floor seconds per second: the 40 minutes take 20 s
POLL_S = 0.25
PUBLISH_S = 120.0  # shop-floor seconds between publications
START, VIEWED = "23:38", "00:18"  # local shop-floor times; the second on the next day
DAY = {
    "id": "day",
    "name": "白班",
    "start": "08:00",
    "end": "23:50",
    "breaks": [{"name": "meal", "start": "12:00", "end": "12:30"}],
}
THREE_SHIFTS = {
    "shifts": [
        DAY,
        {
            "name": "late",
            "start": "23:50",
            "end": "00:10",
            "breaks": [{"name": "tea", "start": "00:00", "end": "00:04"}],
        },
        {"name": "night", "start": "00:10", "end": "08:00"},
    ],
    # A runs two crews, which swap every day; B has none
    "crews": [{"id": "a", "name": "甲班"}, {"id": "b", "name": "乙班"}],
    "rotation": {
        "anchor": "2026-01-01",
        "pattern": [{"day": "a", "late": "b", "night": "a"}, {"day": "b", "late": "a", "night": "b"}],
    },
}
NO_NIGHT_SHIFT = {"shifts": [DAY, {"name": "late", "start": "23:50", "end": "00:04"}]}
DATABASE = "shopfloor"
WRITER = ("gateway", "writer-secret")
READER = ("grafana", "reader-secret")


@dataclass(frozen=True)
class Gateway:
    config: AgentConfig
    records_path: Path
    silent_at: str  # local shop-floor time on the second day when the gateway stops

    @property
    def id(self) -> str:
        return self.config.workshop.agent.id


@dataclass(frozen=True)
class Run:
    server: InfluxDB1
    gateways: tuple[Gateway, ...]
    now_ms: int  # when the manager opens the dashboards (shop-floor time)
    records: dict[str, list[dict[str, Any]]]

    def query(self, statement: str) -> list[dict[str, Any]]:
        return self.server.query(statement, DATABASE, auth=READER)


def gateways(tmp_path: Path) -> tuple[Gateway, Gateway]:
    """A: the sample workshop on free ports, three shifts; B: the same without its OPC UA grinder
    and without a night shift, silent from 00:08."""
    sample = on_free_ports(load_config(SAMPLE_WORKSHOP))

    def gateway(agent_id: str, calendar: dict[str, Any], silent_at: str, *, without_opcua: bool) -> Gateway:
        workshop = sample.workshop
        agent = workshop.agent.model_copy(update={"id": agent_id, "state_dir": str(tmp_path / agent_id)})
        update: dict[str, Any] = {"agent": agent, "calendar": CalendarSection.model_validate(calendar)}
        if without_opcua:
            opcua = {c.id for c in workshop.connections if isinstance(c, OpcUaConnection)}
            machines = tuple(m for m in workshop.machines if m.connection not in opcua)
            kept = {m.id for m in machines} | {WORKSHOP_SCOPE}
            update["connections"] = tuple(c for c in workshop.connections if c.id not in opcua)
            update["machines"] = machines
            update["meters"] = tuple(m for m in workshop.meters if m.measures in kept)
        config = AgentConfig(workshop.model_copy(update=update), sample.profiles, sample.source)
        return Gateway(config, tmp_path / f"{agent_id}.jsonl", silent_at)

    return (
        gateway("gw-grinding-a", THREE_SHIFTS, VIEWED, without_opcua=False),
        gateway("gw-grinding-b", NO_NIGHT_SHIFT, "00:08", without_opcua=True),
    )


def local_instant(config: AgentConfig, day: dt.date, hhmm: str) -> float:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    zone = zoneinfo.ZoneInfo(config.workshop.site.timezone)
    return dt.datetime(day.year, day.month, day.day, hours, minutes, tzinfo=zone).timestamp()


def agent_for(gateway: Gateway, server: InfluxDB1, clock: ScaledClock) -> Agent:
    """The gateway's agent as `edge-agent run` builds it, on the test's clock and poll interval."""
    setup = build_engine_setup(
        gateway.config, offline_after_s=4 * POLL_S * SPEED, publish_interval_s=PUBLISH_S
    )
    output = InfluxOutput(
        url=server.url,
        api="v1",
        database=DATABASE,
        username=WRITER[0],
        password=WRITER[1],
        timeout_s=5,
        reconnect_max_s=0.5,
    )
    outputs = [
        Output(InfluxSink(output, topic_root(gateway.config)), 1000, 50_000.0, 0.5),
        Output(FileSink(str(gateway.records_path)), 1000, 50_000.0, 0.5),
    ]
    outbox = Outbox(Path(gateway.config.workshop.agent.state_dir) / "outbox.db", synchronous="normal")
    return Agent(
        gateway.config,
        clock=clock,
        outputs=outputs,
        engine_setup=setup,
        poll_interval_s=POLL_S,
        outbox=outbox,
    )


async def run_gateways(server: InfluxDB1, pair: tuple[Gateway, ...]) -> None:
    """The gateways against one simulated workshop, each until its silent_at."""
    first = pair[0].config
    yesterday = dt.datetime.now(zoneinfo.ZoneInfo(first.workshop.site.timezone)).date() - dt.timedelta(days=1)
    clock = ScaledClock(local_instant(first, yesterday, START), SPEED)
    agents = [agent_for(gateway, server, clock) for gateway in pair]
    stops = [asyncio.Event() for _ in pair]
    async with WorkshopSimulator(first, clock, seed=7, opcua=OpcUaSimulation(trust_into_agent=True)):
        tasks = [
            asyncio.create_task(agent.run(stop), name=f"test.{gateway.id}")
            for agent, stop, gateway in zip(agents, stops, pair, strict=True)
        ]
        order = sorted(range(len(pair)), key=lambda i: pair[i].silent_at)
        for index in order:
            silent = local_instant(first, yesterday + dt.timedelta(days=1), pair[index].silent_at)
            await asyncio.sleep(max(0.0, (silent - clock()) / SPEED))
            stops[index].set()
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    for agent in agents:
        influx = next(d for d in agent.deliveries if d.sink.name == "influxdb")
        assert influx.stats.backlog_records == 0, influx.stats.last_error  # everything reached InfluxDB
        assert influx.stats.failures == 0, influx.stats.last_error


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    tmp_path = tmp_path_factory.mktemp("dashboards")
    (tmp_path / "influxdb").mkdir()
    server = InfluxDB1(tmp_path / "influxdb")
    server.start()
    try:
        server.execute(f'CREATE DATABASE "{DATABASE}"')
        for (user, password), grant in ((WRITER, "WRITE"), (READER, "READ")):
            server.execute(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
            server.execute(f'GRANT {grant} ON "{DATABASE}" TO "{user}"')
        pair = gateways(tmp_path)
        asyncio.run(run_gateways(server, pair))
        records = {g.id: read_records(g.records_path) for g in pair}
        # right after the last publication: shop-floor time runs 120 times faster than the test,
        # so "the end of the run" would be minutes of shop-floor time after it
        now_ms = max(epoch_ms_of(r["ts"]) for rs in records.values() for r in rs if r["kind"] == "state")
        yield Run(server, pair, now_ms, records)
    finally:
        server.stop()


def min_interval() -> str | None:
    provisioned = yaml.safe_load(
        (GRAFANA / "provisioning/datasources/edge-influx.yaml").read_text(encoding="utf-8")
    )
    interval: str | None = provisioned["datasources"][0]["jsonData"].get("timeInterval")
    return interval


def current_shift_start(records: list[dict[str, Any]]) -> str:
    """The shift the records were last published for (no_shift stretches are no shift)."""
    workshop = [r for r in records if r["kind"] == "workshop_oee" and r["period"] == "shift"]
    return str([r for r in workshop if r["shift"] != "no_shift"][-1]["shift_start"])


def test_the_run_crossed_a_shift_change_and_a_day_change(run: Run) -> None:
    for gateway, after in zip(run.gateways, ("night", "no_shift"), strict=True):
        workshop = [r for r in run.records[gateway.id] if r["kind"] == "workshop_oee"]
        closed = [(r["shift"], r["day"]) for r in workshop if r["final"] and r["period"] == "shift"]
        [(_, first_day), _] = closed  # 23:50 the day shift ends, then the late one
        assert closed == [("day", first_day), ("late", first_day)]
        assert [(r["period"], r["day"]) for r in workshop if r["period"] == "day"] == [("day", first_day)]
        assert (workshop[-1]["shift"], workshop[-1]["final"]) == (after, False)
        assert workshop[-1]["day"] > first_day


def panels_of(board: dict[str, Any]) -> list[tuple[dict[str, Any], Any]]:
    """Each panel with its description in the generator's panel list."""
    words = catalogue()
    shows = {(p.dashboard, words(f"dashboard.panel.{p.title}")): p.show for p in load_generator().PANELS}
    return [(panel, shows[(board["uid"], panel["title"])]) for panel in board["panels"]]


def titled(board: dict[str, Any], key: str) -> dict[str, Any]:
    """The panel the catalogue's dashboard.panel.<key> names."""
    title = catalogue()(f"dashboard.panel.{key}")
    return next(p for p in board["panels"] if p["title"] == title)


def now_panel(show: Any) -> bool:
    """A panel of states "now": empty for a gateway silent longer than STATE_MAX_AGE."""
    return show.select.value in ("state now", "count in state")


def run_panel(run: Run, board: dict[str, Any], panel: dict[str, Any], variables: dict[str, Variable]) -> str:
    [target] = panel["targets"]
    query = panel_query(panel, target, variables, TimeRange.of(board, run.now_ms), min_interval())
    assert "$" not in query.replace("$/", ""), query  # every variable and macro expanded
    return query


def check_dashboard(
    run: Run,
    board: dict[str, Any],
    variables: dict[str, Variable],
    points: list[Point],
    rows_due: Callable[[Any], bool],
) -> list[str]:
    """Run every panel's query: its differences from the truth, and no rows where rows are due."""
    time_range = TimeRange.of(board, run.now_ms)
    values = {name: v.value for name, v in variables.items()}
    problems = []
    for panel, show in panels_of(board):
        query = run_panel(run, board, panel, variables)
        interval = panel_interval_ms(time_range, panel.get("maxDataPoints", 1), min_interval())
        view = View(values, time_range, interval, load_generator().STATE_MAX_AGE)
        got = answer_of(show, run.query(query))  # an InfluxDB error raises here, with its message
        where = f"{board['uid']} / {panel['title']} / {values['agent']} {values.get('machine', '')}"
        problems += [f"{where}: {p}" for p in differences(show, got, expected(show, points, view))]
        if rows_due(show) and not got:
            problems.append(f"{where}: no rows\n  {query}")
    return problems


@pytest.mark.parametrize("name", sorted(dashboards()))
def test_every_panel_answers_with_what_the_records_say(run: Run, name: str) -> None:
    board = dashboards()[name]
    time_range = TimeRange.of(board, run.now_ms)
    problems = []
    for gateway in run.gateways:
        records = run.records[gateway.id]
        variables = resolve_variables(board, run.query, time_range, {"agent": gateway.id})
        assert variables["site"].options == ["plant-1"]
        assert variables["area"].options == ["grinding"]
        assert variables["agent"].options == sorted(g.id for g in run.gateways)
        assert variables["shift_start"].value == current_shift_start(records)
        points = stored_points(records)
        silent = gateway.silent_at != VIEWED
        crews = bool(gateway.config.workshop.calendar.crews)

        def rows_due(
            show: Any, machine_metered: bool = True, silent: bool = silent, crews: bool = crews
        ) -> bool:
            if now_panel(show):
                return not silent
            if show.scope == "crew":
                return crews
            return machine_metered or show.measurement != "energy"

        if "machine" not in variables:
            problems += check_dashboard(run, board, variables, points, rows_due)
            continue
        machines = sorted(m.id for m in gateway.config.workshop.machines)
        assert variables["machine"].options == machines
        metered = {m.measures for m in gateway.config.workshop.meters}
        for machine in machines:
            chosen = resolve_variables(
                board, run.query, time_range, {"agent": gateway.id, "machine": machine}
            )
            due = functools.partial(rows_due, machine_metered=machine in metered)
            problems += check_dashboard(run, board, chosen, points, due)
    assert not problems, "\n".join(problems)


def test_a_silent_gateway_shows_no_state_now_but_keeps_its_timeline(run: Run) -> None:
    """B stopped at 00:08; at 00:18 its machines' states are unknown, not as they were at 00:08."""
    silent = next(g for g in run.gateways if g.silent_at != VIEWED)
    newest = max(epoch_ms_of(r["ts"]) for r in run.records[silent.id] if r["kind"] == "state")
    age_limit = interval_ms(load_generator().STATE_MAX_AGE)
    assert run.now_ms - newest > age_limit, "the machine was too slow: B's last states are still recent"
    for board in dashboards().values():
        time_range = TimeRange.of(board, run.now_ms)
        variables = resolve_variables(board, run.query, time_range, {"agent": silent.id})
        for panel, show in panels_of(board):
            if show.measurement != "machine_state":
                continue
            series = run.query(run_panel(run, board, panel, variables))
            assert (series == []) == now_panel(show), panel["title"]
            if now_panel(show) and show.select.value == "count in state":
                assert panel["fieldConfig"]["defaults"]["noValue"] == "0"


def test_the_workshop_oee_stat_is_the_last_workshop_record_of_the_current_shift(run: Run) -> None:
    board = dashboards()["workshop-overview.json"]
    panel = titled(board, "workshop_oee")
    time_range = TimeRange.of(board, run.now_ms)
    for gateway in run.gateways:
        records = run.records[gateway.id]
        start = current_shift_start(records)
        last = [r for r in records if r["kind"] == "workshop_oee" and r.get("shift_start") == start][-1]
        variables = resolve_variables(board, run.query, time_range, {"agent": gateway.id})
        [series] = run.query(panel_query(panel, panel["targets"][0], variables, time_range, min_interval()))
        assert series["values"][0][1] == last["oee"]
        assert last["oee"] is not None


def test_the_by_day_table_is_the_day_records(run: Run) -> None:
    board = dashboards()["energy-carbon.json"]
    panel = titled(board, "energy_by_day")
    time_range = TimeRange.of(board, run.now_ms)
    for gateway in run.gateways:
        days = [r for r in run.records[gateway.id] if r["kind"] == "energy" and r["period"] == "day"]
        assert days
        variables = resolve_variables(board, run.query, time_range, {"agent": gateway.id})
        series = run.query(panel_query(panel, panel["targets"][0], variables, time_range, min_interval()))
        table = {
            s["tags"]["machine"]: dict(zip(s["columns"], row, strict=True))
            for s in series
            for row in s["values"]
        }
        assert set(table) == {r["machine"] for r in days}
        for record in days:
            row = table[record["machine"]]
            assert row["day"] == record["day"]
            assert (row["kwh"], row["kwh_per_unit"], row["kgce_per_unit"], row["co2_kg_per_unit"]) == (
                record["kwh"],
                record["kwh_per_unit"],
                record["kgce_per_unit"],
                record["co2_kg_per_unit"],
            )
            assert row["co2e_kg_per_unit"] is None  # the sample's factor is CO2-only


def test_the_gateways_did_not_overwrite_each_other(run: Run) -> None:
    """Same machine ids, same times (one clock), one database: each gateway's points are its own."""
    series = run.query(
        'SELECT count("produced") FROM "oee" WHERE "scope" = \'machine\' AND "machine" = \'grinder-01\' '
        'GROUP BY "agent"'
    )
    stored = {s["tags"]["agent"]: s["values"][0][1] for s in series}
    for gateway in run.gateways:
        written = {
            (r["ts"], r["period"], r["shift"])
            for r in run.records[gateway.id]
            if r["kind"] == "oee" and r["machine"] == "grinder-01"
        }
        assert stored[gateway.id] == len(written)


def test_records_file_and_store_hold_the_same_number_of_state_points(run: Run) -> None:
    for gateway in run.gateways:
        points = [p for p in stored_points(run.records[gateway.id]) if p.measurement == "machine_state"]
        [series] = run.query(f'SELECT count("state") FROM "machine_state" WHERE "agent" = \'{gateway.id}\'')
        assert series["values"][0][1] == len(points)
