"""The KPI engine's checkpoint in the outbox: committed with its records or not at all, outboxes of
schema 1 migrated with every record kept, a damaged checkpoint reported and set aside."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest

from agent.delivery.outbox import Checkpoint, CheckpointUnreadableError, Outbox, OutboxFullError
from agent.records import Record, RecordKind, from_json

AGENT = "gw-test"

# An outbox as version 1 of the agent left it on gateways: no checkpoint table.
SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    keep INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX records_keep_seq ON records (keep, seq);
CREATE TABLE cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE drops (kind TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
                    PRIMARY KEY (kind, reason));
"""


def records(count: int, ts: float = 1000.0) -> list[Record]:
    return [Record(RecordKind.OEE, ts + i, {"machine": "m1", "n": i, "pad": "x" * 100}) for i in range(count)]


def state(n: int) -> Checkpoint:
    return Checkpoint(AGENT, 1, 1000.0 + n, {"n": n, "machines": {"m1": {"produced": 12.5 * n}}})


def opened(path: Path, **options: object) -> Outbox:
    outbox = Outbox(path, **options)  # type: ignore[arg-type]
    assert outbox.open() == []
    return outbox


def test_the_checkpoint_is_stored_with_its_records_and_the_latest_one_is_kept(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db")
    assert outbox.load_checkpoint() is None
    outbox.append(AGENT, records(3), now=1000, checkpoint=state(1))
    outbox.append(AGENT, records(2), now=1000)  # rounds between checkpoints leave it as it is
    outbox.append(AGENT, records(1), now=1000, checkpoint=state(2))
    outbox.close()
    assert opened(tmp_path / "o.db").load_checkpoint() == state(2)


def test_a_batch_that_fails_stores_neither_its_records_nor_its_checkpoint(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_pages=40)
    outbox.register(["mqtt"])
    outbox.append(AGENT, records(1), now=1000, checkpoint=state(1))
    with pytest.raises(OutboxFullError):  # noqa: PT012 - the disk fills somewhere in the loop
        for n in range(2, 10_000):
            outbox.append(AGENT, records(20), now=1000, checkpoint=state(n))
    stored = outbox.stats("mqtt").records
    last_ok = (stored - 1) // 20 + 1  # the checkpoint committed with the last stored batch
    assert outbox.load_checkpoint() == state(last_ok)


def test_an_outbox_of_schema_1_is_migrated_with_every_record_cursor_and_drop_kept(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with sqlite3.connect(path) as db:
        db.executescript(SCHEMA_V1)
        db.execute("INSERT INTO meta VALUES ('schema', '1')")
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('records', 1700000000000)")
        for n in range(5):
            body = f'{{"kind": "oee", "ts": {1000 + n}, "fields": {{"machine": "m1", "n": {n}}}}}'
            db.execute(
                "INSERT INTO records (kind, ts, keep, size, body) VALUES ('oee', ?, 1, ?, ?)",
                (1000 + n, len(body), body),
            )
        db.execute("INSERT INTO cursors VALUES ('mqtt', 1700000000002)")
        db.execute("INSERT INTO drops VALUES ('tags', 'size', 7)")
    db.close()
    outbox = opened(path)
    outbox.register(["mqtt"])
    pending = outbox.pending(AGENT, "mqtt", 100)
    assert [e.seq for e in pending] == [1700000000003, 1700000000004, 1700000000005]
    assert [e.record.fields["n"] for e in pending] == [2, 3, 4]
    assert outbox.stats().dropped == {"tags/size": 7}
    [new] = outbox.append(AGENT, records(1), now=1000, checkpoint=state(1))
    assert new.seq == 1700000000006
    assert outbox.load_checkpoint() == state(1)
    outbox.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == ("2",)
    db.close()


@pytest.mark.parametrize(
    "body", [b"\x00garbage", zlib.compress(b"{not json"), b""], ids=["not-zlib", "not-json", "empty"]
)
def test_a_damaged_checkpoint_is_reported_set_aside_and_the_records_stay(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "o.db"
    outbox = opened(path)
    outbox.register(["mqtt"])
    outbox.append(AGENT, records(4), now=1000, checkpoint=state(1))
    outbox.db.execute("UPDATE checkpoint SET body = ? WHERE id = 1", (body,))
    with pytest.raises(CheckpointUnreadableError, match="cannot be decoded"):
        outbox.load_checkpoint()
    aside = outbox.set_aside_checkpoint()
    assert aside is not None
    assert aside.parent == tmp_path
    header, kept = aside.read_bytes().split(b"\n", 1)
    assert from_json(header)["agent"] == AGENT
    assert kept == body
    assert outbox.load_checkpoint() is None
    assert len(outbox.pending(AGENT, "mqtt", 100)) == 4  # undelivered records are never touched
    assert outbox.set_aside_checkpoint() is None
