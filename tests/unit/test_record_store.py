"""The record store on a real outbox file: records wait in memory while the outbox cannot take
them, overflow drops raw tag values first (oldest first) and counts them by kind, and what waited
is stored first, in order, once it can; the engine's checkpoint goes in with its records."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.delivery import store as store_module
from agent.delivery.outbox import Outbox
from agent.delivery.store import RecordStore
from agent.kpi.engine import KpiEngine
from agent.records import Record, RecordKind, from_json
from tests.unit.kpi_fixtures import engine_setup, local, machine_setup

AGENT = "gw-store"


def record(kind: RecordKind, n: int) -> Record:
    return Record(kind, local(9) + n, {"machine": "m1", "n": n})


def stored(path: Path) -> list[tuple[str, int]]:
    outbox = Outbox(path)
    outbox.open()
    rows = outbox.db.execute("SELECT body FROM records ORDER BY seq").fetchall()
    outbox.close()
    return [(from_json(body)["kind"], from_json(body)["fields"]["n"]) for (body,) in rows]


async def test_what_waits_in_memory_overflows_tags_first_then_is_stored_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MEMORY_RECORDS", 5)
    engine = KpiEngine(engine_setup(machine_setup("m1")), local(9))
    store = RecordStore(Outbox(tmp_path / "outbox.db"), AGENT, lambda: local(9, 1), 5.0)
    batch = [record(RecordKind.TAGS, n) for n in range(4)] + [
        record(RecordKind.STATE, n) for n in range(4, 8)
    ]
    await store.commit(batch, engine)  # not open yet: as on a full disk, the records wait
    assert store.health.unwritable
    assert store.health.unwritable_reason is not None
    assert "is not open" in store.health.unwritable_reason
    assert store.health.waiting_in_memory == 5
    assert store.health.dropped_in_memory == {"tags": 3}
    async with store:
        await store.open(["file"])
        await store.commit([record(RecordKind.OEE, 8)], engine)
    assert not store.health.unwritable
    assert store.health.waiting_in_memory == 0
    assert store.health.stored == 6
    assert stored(tmp_path / "outbox.db") == [
        ("tags", 3),  # the newest raw value survived; the three before it went first
        ("state", 4),
        ("state", 5),
        ("state", 6),
        ("state", 7),
        ("oee", 8),
    ]


async def test_the_checkpoint_goes_in_with_the_records_that_state_made(tmp_path: Path) -> None:
    engine = KpiEngine(engine_setup(machine_setup("m1")), local(9))
    store = RecordStore(Outbox(tmp_path / "outbox.db"), AGENT, lambda: local(9, 1), 3600.0)
    async with store:
        await store.open([])
        await store.commit([record(RecordKind.STATE, 1)], engine)  # the first commit: due at once
        first = await store.async_outbox.load_checkpoint()
        engine.advance(local(9, 30))
        await store.commit([record(RecordKind.STATE, 2)], engine)  # not due for an hour
        assert await store.async_outbox.load_checkpoint() == first
        await store.commit([record(RecordKind.STATE, 3)], engine, checkpoint=True)  # asked for (a stop)
        latest = await store.async_outbox.load_checkpoint()
    assert first is not None
    assert first.agent == AGENT
    assert first.ts == local(9)
    assert latest is not None
    assert latest.ts == local(9, 30)


async def test_the_history_gets_every_batch_whatever_the_outbox_does(tmp_path: Path) -> None:
    from agent.history.store import HistoryStore

    engine = KpiEngine(engine_setup(machine_setup("m1")), local(9))
    history = HistoryStore(
        tmp_path / "history.db", days=62, max_bytes=2**24, clock=lambda: local(9, 1)
    ).open()
    store = RecordStore(Outbox(tmp_path / "outbox.db"), AGENT, lambda: local(9, 1), 5.0, observe=history.add)
    await store.commit([record(RecordKind.STATE, 1)], engine)  # the outbox is not open: held in memory
    async with store:
        await store.open(["file"])
        await store.commit([record(RecordKind.STATE, 2)], engine)
    kept = [r.fields["n"] for r in history.states(0, local(10))]
    history.close()
    assert kept == [1, 2]  # each once, when it was made; the one held in memory was not given twice
