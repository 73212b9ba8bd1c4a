"""The InfluxDB output in `api: v1` mode against a real InfluxDB 1.x (Debian's influxd, with
authentication on): what it stores is what the records say, and every refusal (a wrong password, a
user without write permission, a missing database) is an error naming the output while the
records stay in the outbox until the store takes them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from influxdb_client.client.write.point import Point

from agent.config.outputs import InfluxOutput
from agent.delivery.drain import SinkDelivery
from agent.delivery.outbox import AsyncOutbox, Outbox
from agent.exceptions import OutputError
from agent.records import Envelope, Record, RecordKind, epoch_ms
from agent.sinks.influx import InfluxSink
from agent.sinks.topics import TopicRoot
from tests.integration.servers import InfluxDB1

pytestmark = pytest.mark.integration
TS = 1_790_000_000.123
WRITER = ("gateway", "writer-secret")
READER = ("grafana", "reader-secret")


def topics(agent: str) -> TopicRoot:
    return TopicRoot("tianhe-bearing", "plant-1", "grinding", agent)


def records() -> list[Record]:
    ident = {"machine": "grinder-07", "line": "line-1"}
    shift = {
        "shift": "day",
        "period": "shift",
        "shift_start": "2026-09-22T00:00:00.000Z",
        "day": "2026-09-22",
    }
    return [
        Record(RecordKind.STATE, TS, {**ident, "state": "fault", "since": "x", "reason": "alarm 1203"}),
        Record(RecordKind.OEE, TS, {**ident, **shift, "final": False, "apt_s": 2950.5, "produced": 1402}),
        Record(RecordKind.WORKSHOP_OEE, TS, {**shift, "final": True, "oee": 0.6182, "performance": None}),
    ]


def envelopes(agent: str = "gw-a", first_seq: int = 1) -> list[Envelope]:
    return [Envelope(agent, first_seq + i, r) for i, r in enumerate(records())]


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    server = InfluxDB1(tmp_path_factory.mktemp("influxdb"))
    server.start()
    server.execute("CREATE DATABASE shopfloor")
    server.execute('CREATE RETENTION POLICY "year" ON "shopfloor" DURATION 400d REPLICATION 1')
    for (user, password), grant in ((WRITER, "WRITE"), (READER, "READ")):
        server.execute(f"CREATE USER \"{user}\" WITH PASSWORD '{password}'")
        server.execute(f'GRANT {grant} ON "shopfloor" TO "{user}"')
    yield server
    server.stop()


def v1(server: InfluxDB1, **settings: object) -> InfluxOutput:
    """The writer's output to the `shopfloor` database, with `settings` changed."""
    fields: dict[str, object] = {
        "url": server.url,
        "api": "v1",
        "database": "shopfloor",
        "username": WRITER[0],
        "password": WRITER[1],
        "timeout_s": 3,
        **settings,
    }
    return InfluxOutput.model_validate(fields)


@pytest.mark.parametrize("gzip", [True, False])
async def test_points_read_back_with_their_tags_and_text_fields(influx: InfluxDB1, gzip: bool) -> None:
    measurement_agent = f"gw-read-{gzip}"
    async with InfluxSink(v1(influx, gzip=gzip, retention_policy="year"), topics(measurement_agent)) as sink:
        await sink.write(envelopes(measurement_agent))
    where = f"WHERE \"agent\" = '{measurement_agent}'"
    [oee] = influx.query(f'SELECT * FROM "year"."oee" {where} AND "scope" = \'machine\'', "shopfloor")
    row = dict(zip(oee["columns"], oee["values"][0], strict=True))
    assert row["time"] == epoch_ms(TS)
    assert {k: row[k] for k in ("enterprise", "site", "area", "agent", "line", "machine")} == {
        "enterprise": "tianhe-bearing",
        "site": "plant-1",
        "area": "grinding",
        "agent": measurement_agent,
        "line": "line-1",
        "machine": "grinder-07",
    }
    assert (row["shift"], row["period"], row["shift_start"], row["day"]) == (
        "day",
        "shift",
        "2026-09-22T00:00:00.000Z",
        "2026-09-22",
    )
    assert (row["apt_s"], row["produced"], row["final"]) == (2950.5, 1402, 0)
    [workshop] = influx.query(f'SELECT * FROM "year"."oee" {where} AND "scope" = \'workshop\'', "shopfloor")
    row = dict(zip(workshop["columns"], workshop["values"][0], strict=True))
    assert row["oee"] == 0.6182
    assert "performance" not in row  # null is absent, never 0
    [state] = influx.query(f'SELECT "state", "reason" FROM "year"."machine_state" {where}', "shopfloor")
    assert state["values"] == [[epoch_ms(TS), "fault", "alarm 1203"]]


async def test_two_gateways_with_the_same_machine_ids_keep_their_own_series(influx: InfluxDB1) -> None:
    for agent in ("gw-twin-a", "gw-twin-b"):
        async with InfluxSink(v1(influx), topics(agent)) as sink:
            await sink.write(envelopes(agent))
    series = influx.query(
        'SELECT "produced" FROM "oee" WHERE "agent" =~ /^gw-twin-/ AND "machine" = \'grinder-07\' '
        'GROUP BY "agent"',
        "shopfloor",
    )
    assert {s["tags"]["agent"]: s["values"] for s in series} == {
        "gw-twin-a": [[epoch_ms(TS), 1402]],
        "gw-twin-b": [[epoch_ms(TS), 1402]],
    }


@pytest.mark.parametrize(
    ("settings", "status", "meaning"),
    [
        ({"password": "wrong"}, 401, "the credentials were refused"),
        ({"username": READER[0], "password": READER[1]}, 403, "the user may not write there"),
        ({"database": "no_such_db"}, 404, "no such database or bucket"),
    ],
    ids=["wrong-password", "refused-write", "missing-database"],
)
async def test_a_refusal_names_the_output_and_writes_nothing(
    influx: InfluxDB1, settings: dict[str, str], status: int, meaning: str
) -> None:
    agent = f"gw-refused-{status}"
    async with InfluxSink(v1(influx, **settings), topics(agent)) as sink:
        with pytest.raises(OutputError) as raised:
            await sink.write(envelopes(agent))
    message = str(raised.value)
    database = settings.get("database", "shopfloor")
    assert message.startswith(f"output=influxdb {influx.url} api=v1 database={database}: HTTP {status}")
    assert meaning in message
    assert sink.rejected_points == 0  # a refusal is not bad data: nothing is skipped
    assert influx.query(f'SELECT * FROM "oee" WHERE "agent" = \'{agent}\'', "shopfloor") == []


async def test_a_point_the_store_refuses_is_skipped_and_the_rest_written(influx: InfluxDB1) -> None:
    """Bad data (here: a field that already holds text in this shard) is a 400, as on 2.x: the batch
    is halved until the refused point is alone, which is logged and skipped."""
    agent, database = "gw-conflict", "conflicts"
    influx.execute(f'CREATE DATABASE "{database}"')
    influx.execute(f'GRANT WRITE ON "{database}" TO "{WRITER[0]}"')
    conflict = Point("oee").tag("agent", agent)  # type: ignore[no-untyped-call]  # untyped library
    conflict.field("apt_s", "not a number").time(epoch_ms(TS) - 1000, "ms")
    influx.write(conflict.to_line_protocol(), database)
    async with InfluxSink(v1(influx, database=database), topics(agent)) as sink:
        await sink.write(envelopes(agent))
    assert sink.rejected_points == 1
    where = f"WHERE \"agent\" = '{agent}' AND time = {epoch_ms(TS)}ms"
    [state] = influx.query(f'SELECT "state" FROM "machine_state" {where}', database)
    assert state["values"] == [[epoch_ms(TS), "fault"]]
    [oee] = influx.query(f'SELECT "oee", "scope" FROM "oee" {where}', database)
    assert oee["values"] == [[epoch_ms(TS), 0.6182, "workshop"]]  # the machine's point was the bad one


@pytest.mark.parametrize(
    ("status", "before", "fix"),
    [
        (404, [], ['CREATE DATABASE "{db}"', 'GRANT WRITE ON "{db}" TO "{user}"']),
        (
            401,
            ['CREATE DATABASE "{db}"', 'GRANT WRITE ON "{db}" TO "{user}"'],
            ["SET PASSWORD FOR \"{user}\" = 'right'"],
        ),
        (
            403,
            ['CREATE DATABASE "{db}"', 'GRANT READ ON "{db}" TO "{user}"'],
            ['GRANT WRITE ON "{db}" TO "{user}"'],
        ),
    ],
    ids=["missing-database", "wrong-password", "refused-write"],
)
async def test_records_wait_in_the_outbox_until_the_store_takes_them(
    influx: InfluxDB1, tmp_path: Path, status: int, before: list[str], fix: list[str]
) -> None:
    """The delivery loop keeps its cursor while the store refuses, and delivers all once an
    administrator has put the store right: nothing is dropped, nothing written twice."""
    database, user, agent = f"late_{status}", f"late-{status}", f"gw-late-{status}"
    influx.execute(f"CREATE USER \"{user}\" WITH PASSWORD '{'wrong' if status == 401 else 'right'}'")
    for statement in before:
        influx.execute(statement.format(db=database, user=user))
    outbox = Outbox(tmp_path / "outbox.db")
    async with AsyncOutbox(outbox) as store:
        await store.open()
        await store.register(["influxdb"])
        minutes = [replace(r, ts=TS + 60 * i) for i in range(4) for r in records()]
        await store.append(agent, minutes, TS)
        sink = InfluxSink(v1(influx, database=database, username=user, password="right"), topics(agent))
        delivery = SinkDelivery(sink, store, agent, batch_size=5, replay_per_s=1000.0, retry_max_s=0.2)
        async with sink:
            task = asyncio.create_task(delivery.run(), name="test.delivery")
            try:
                async with asyncio.timeout(10):
                    while delivery.stats.failures < 2:  # noqa: ASYNC110 - observing the loop from outside
                        await asyncio.sleep(0.05)
                assert delivery.stats.last_error is not None
                assert f"output=influxdb {influx.url} api=v1 database={database}: HTTP {status}" in (
                    delivery.stats.last_error
                )
                waiting = await store.pending(agent, "influxdb", 100)
                assert len(waiting) == 12  # nothing dropped, nothing acknowledged
                for statement in fix:
                    influx.execute(statement.format(db=database, user=user))
                delivery.wake.set()
                async with asyncio.timeout(10):
                    while delivery.stats.delivered < 12:  # noqa: ASYNC110
                        await asyncio.sleep(0.05)
                assert await store.pending(agent, "influxdb", 100) == []
            finally:
                task.cancel()
    [count] = influx.query('SELECT count("state") FROM "machine_state"', database)
    assert count["values"][0][1] == 4
    assert delivery.stats.delivered == 12
