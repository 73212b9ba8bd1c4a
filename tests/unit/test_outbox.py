"""The outbox: sequence numbers, cursors, bounds and drop counts, corrupt files, a full disk."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from agent.delivery.outbox import Checkpoint, Outbox, OutboxFullError, OutboxUnopenableError, transaction
from agent.records import Record, RecordKind

AGENT = "gw-test"


def records(count: int, kind: RecordKind = RecordKind.OEE, ts: float = 1000.0) -> list[Record]:
    return [Record(kind, ts + i, {"machine": "m1", "n": i, "pad": "x" * 100}) for i in range(count)]


def opened(path: Path, **options: object) -> Outbox:
    outbox = Outbox(path, **options)  # type: ignore[arg-type]
    assert outbox.open() == []
    return outbox


def test_sequence_numbers_increase_and_survive_a_restart(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db")
    first = [e.seq for e in outbox.append(AGENT, records(3), now=1000)]
    outbox.close()
    outbox = opened(tmp_path / "o.db")
    second = [e.seq for e in outbox.append(AGENT, records(2), now=1000)]
    assert first == sorted(first)
    assert second[0] == first[-1] + 1
    assert first[0] > 1_700_000_000_000  # a new outbox starts at the epoch millisecond


def test_each_sink_has_its_own_cursor_and_delivered_records_are_deleted(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db")
    outbox.register(["mqtt", "influxdb"])
    stored = outbox.append(AGENT, records(5), now=1000)
    batch = outbox.pending(AGENT, "mqtt", 3)
    assert [e.seq for e in batch] == [e.seq for e in stored[:3]]
    assert batch[0].record == stored[0].record
    outbox.ack("mqtt", batch[-1].seq)
    assert [e.seq for e in outbox.pending(AGENT, "mqtt", 10)] == [e.seq for e in stored[3:]]
    assert outbox.stats().records == 5  # influxdb has delivered nothing yet
    outbox.ack("influxdb", stored[-1].seq)
    assert outbox.stats().records == 2  # both delivered the first three
    assert outbox.stats("influxdb").records == 0


def test_a_new_output_receives_the_backlog(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db")
    stored = outbox.append(AGENT, records(4), now=1000)  # no output configured yet: records wait
    outbox.register(["mqtt"])
    assert [e.seq for e in outbox.pending(AGENT, "mqtt", 10)] == [e.seq for e in stored]


def test_full_drops_raw_tags_first_and_counts_exactly(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_bytes=20_000)
    outbox.register(["mqtt"])
    produced = 0
    for _ in range(20):
        produced += len(outbox.append(AGENT, records(10, RecordKind.TAGS) + records(5), now=1000))
    stats = outbox.stats("mqtt")
    assert stats.bytes <= 20_000
    assert set(stats.dropped) == {"tags/size"}  # KPI records kept while tags could go
    kinds = {e.record.kind for e in outbox.pending(AGENT, "mqtt", 10_000)}
    assert RecordKind.OEE in kinds
    delivered = len(outbox.pending(AGENT, "mqtt", 10_000))
    assert sum(stats.dropped.values()) == produced - delivered


def test_kpi_records_go_only_when_no_tags_are_left(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_bytes=5_000)
    for _ in range(10):
        outbox.append(AGENT, records(10), now=1000)
    assert set(outbox.stats().dropped) == {"oee/size"}
    assert outbox.stats().bytes <= 5_000


def test_records_older_than_the_age_bound_are_dropped_and_counted(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_age_s=3600)
    outbox.append(AGENT, records(3, ts=0.0), now=10.0)
    outbox.append(AGENT, records(2, ts=7200.0), now=7200.0)
    stats = outbox.stats()
    assert stats.records == 2
    assert stats.dropped == {"oee/age": 3}


def test_drop_counts_survive_a_restart(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_bytes=2_000)
    outbox.append(AGENT, records(40), now=1000)
    dropped = outbox.stats().dropped
    outbox.close()
    assert opened(tmp_path / "o.db", max_bytes=2_000).stats().dropped == dropped


def damaged_outbox(path: Path, damage: str, count: int = 400) -> tuple[list[int], list[int]]:
    """An outbox holding `count` records, 50 of them delivered to 'mqtt' and a few dropped by the
    size bound, then damaged. Returns (every sequence number stored, those still undelivered)."""
    outbox = opened(path, max_bytes=150_000)
    outbox.register(["mqtt"])
    stored = []
    for start in range(0, count, 20):
        stored += [e.seq for e in outbox.append(AGENT, records(20, ts=1000.0 + start), now=1000)]
    outbox.ack("mqtt", stored[49])
    undelivered = [e.seq for e in outbox.pending(AGENT, "mqtt", 10_000)]
    outbox.close()
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "random-bytes":
        path.write_bytes(os.urandom(len(data)))
    else:
        path.write_bytes(b"not a database" + data[14:])
    return stored, undelivered


@pytest.mark.parametrize("damage", ["truncated", "random-bytes", "garbage-header"])
def test_a_corrupt_file_is_salvaged_moved_aside_reported_and_replaced(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "o.db"
    stored, undelivered = damaged_outbox(path, damage)
    reopened_ms = int(time.time() * 1000)
    fresh = Outbox(path)
    problems = fresh.open()
    assert len(problems) == 1
    assert "kept as o.db.corrupt-" in problems[0]
    assert list(tmp_path.glob("o.db.corrupt-*"))
    salvage = fresh.salvage
    assert salvage is not None
    fresh.register(["mqtt"])
    carried = [e.seq for e in fresh.pending(AGENT, "mqtt", 10_000)]
    [new] = fresh.append(AGENT, records(1), now=1000)
    if damage == "truncated":
        assert new.seq > max(stored)  # the old head was read: its numbers are never reused
    else:  # no head to read: the new outbox starts at the epoch millisecond, as a new one does
        assert new.seq > reopened_ms
    if damage == "truncated":  # most of the file is readable: what can be read is carried over
        assert carried, "a half-truncated outbox still holds readable records"
        assert set(carried) <= set(undelivered)
        assert carried == sorted(carried)
        assert salvage.records + salvage.lost == len(undelivered)  # every undelivered record accounted for
        assert f"{salvage.lost}" in problems[0]
        assert fresh.stats().dropped["unknown/corrupt"] == salvage.lost
    else:  # nothing SQLite can read: nothing to carry, and the extent of the loss is unknown
        assert (carried, salvage.records) == ([], 0)
        assert salvage.more_unknown
        assert "or more" in problems[0]
    assert [e.seq for e in fresh.pending(AGENT, "mqtt", 10_000)] == [*carried, new.seq]


def test_a_salvaged_outbox_keeps_records_cursors_head_drop_counts_and_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    outbox = opened(path, max_bytes=60_000)
    outbox.register(["mqtt", "influxdb"])
    stored = []
    state = Checkpoint(AGENT, 1, 1599.0, {"machines": {"grinder-07": {"state": "producing"}}})
    for start in range(0, 600, 20):
        stored += outbox.append(AGENT, records(20, ts=1000.0 + start), now=1000, checkpoint=state)
    outbox.ack("mqtt", stored[-100].seq)
    before = {sink: outbox.cursor(sink) for sink in ("mqtt", "influxdb")}
    bodies = {e.seq: e.record for e in outbox.pending(AGENT, "influxdb", 10_000)}
    dropped = outbox.stats().dropped
    assert dropped  # the size bound dropped some: those counts must survive too
    outbox.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])  # the last page is gone
    fresh = Outbox(path, max_bytes=60_000)
    fresh.open()
    fresh.register(["mqtt", "influxdb"])
    assert {sink: fresh.cursor(sink) for sink in ("mqtt", "influxdb")} == before
    carried = fresh.pending(AGENT, "influxdb", 10_000)
    assert carried
    assert all(bodies[e.seq] == e.record for e in carried)  # the same records, the same numbers
    salvage = fresh.salvage
    assert salvage is not None
    assert salvage.head == stored[-1].seq
    assert salvage.records + salvage.lost == len(bodies)
    after = fresh.stats().dropped
    assert {k: v for k, v in after.items() if k != "unknown/corrupt"} == dropped
    assert fresh.load_checkpoint() == state  # the shift continues from the salvaged file
    assert fresh.append(AGENT, records(1), now=1000)[0].seq == stored[-1].seq + 1


def test_an_outbox_that_cannot_be_written_is_named_and_left_alone(tmp_path: Path) -> None:
    directory = tmp_path / "outbox.db"
    directory.mkdir()
    with pytest.raises(OutboxUnopenableError) as caught:
        Outbox(directory).open()
    message = str(caught.value)
    assert str(directory) in message
    assert "it is a directory" in message
    assert "set outbox.path" in message
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be", encoding="utf-8")
    with pytest.raises(OutboxUnopenableError, match="cannot create"):
        Outbox(blocker / "outbox.db").open()
    assert directory.is_dir()
    assert not list(tmp_path.glob("*.corrupt-*"))  # nothing was taken for corruption and moved


def test_an_empty_file_is_a_new_outbox(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(b"")
    assert opened(path).stats().records == 0


def fill_until_full(outbox: Outbox) -> tuple[int, OutboxFullError]:
    stored = 0
    for batch_number in range(1000):
        batch = [Record(RecordKind.OEE, 1000.0, {"batch": batch_number, "pad": "x" * 100}) for _ in range(20)]
        try:
            stored += len(outbox.append(AGENT, batch, now=1000))
        except OutboxFullError as error:
            return stored, error
    raise AssertionError("the outbox never filled up")


def test_a_full_disk_stores_nothing_of_the_batch_and_recovers(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db", max_pages=40)  # SQLite reports 'database or disk is full'
    outbox.register(["mqtt"])
    stored, error = fill_until_full(outbox)
    assert "full" in str(error)
    failed_batch = stored // 20
    assert outbox.stats("mqtt").records == stored
    pending = outbox.pending(AGENT, "mqtt", 10_000)
    outbox.ack("mqtt", pending[-1].seq)  # delivery frees pages
    after = outbox.append(AGENT, records(20), now=1000)
    assert len(after) == 20
    assert after[0].seq == pending[-1].seq + 1  # the failed batch took no sequence numbers
    rest = outbox.pending(AGENT, "mqtt", 10_000)
    assert [e.seq for e in rest] == [e.seq for e in after]  # and was not committed later by this write
    assert all(e.record.fields.get("batch") != failed_batch for e in rest)


def test_a_file_of_another_schema_version_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    opened(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    problems = Outbox(path).open()
    assert "schema version 99" in problems[0]


def test_a_transaction_whose_commit_fails_is_rolled_back_not_left_open() -> None:
    """SQLite can fail at COMMIT (a full disk during the WAL checkpoint; here a deferred foreign key,
    which SQLite also checks only at COMMIT). The batch must be gone, not committed by the next write."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    db.execute(
        "CREATE TABLE child (id INTEGER, parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    with pytest.raises(sqlite3.IntegrityError), transaction(db):
        db.execute("INSERT INTO child VALUES (1, 99)")  # accepted now, refused at COMMIT
    assert not db.in_transaction
    with transaction(db):
        db.execute("INSERT INTO parent VALUES (1)")
    assert db.execute("SELECT COUNT(*) FROM child").fetchone() == (0,)


def test_records_being_delivered_are_never_dropped_so_every_record_is_delivered_or_dropped(
    tmp_path: Path,
) -> None:
    outbox = opened(tmp_path / "o.db", max_bytes=5_000)
    outbox.register(["mqtt"])
    produced = len(outbox.append(AGENT, records(10), now=1000))
    in_flight = outbox.pending(AGENT, "mqtt", 5)  # handed to the sink, not yet acknowledged
    produced += sum(len(outbox.append(AGENT, records(10), now=1000)) for _ in range(10))  # the cap overflows
    stored = {e.seq for e in outbox.pending(AGENT, "mqtt", 10_000)}
    assert {e.seq for e in in_flight} <= stored  # the batch being delivered was kept
    outbox.ack("mqtt", in_flight[-1].seq)
    delivered = len(in_flight)
    rest = outbox.pending(AGENT, "mqtt", 10_000)
    outbox.ack("mqtt", rest[-1].seq)
    delivered += len(rest)
    assert sum(outbox.stats().dropped.values()) == produced - delivered


def test_a_nan_or_infinite_figure_is_stored_as_null_and_the_rest_of_the_record_kept(tmp_path: Path) -> None:
    outbox = opened(tmp_path / "o.db")
    outbox.register(["mqtt"])
    figures = {"machine": "m1", "kwh": 14.2, "co2e_kg": float("nan"), "kwh_per_piece": float("inf")}
    outbox.append(AGENT, [Record(RecordKind.ENERGY, 1000.0, figures)], now=1000)
    [stored] = outbox.pending(AGENT, "mqtt", 10)
    assert stored.record.fields == {"machine": "m1", "kwh": 14.2, "co2e_kg": None, "kwh_per_piece": None}
    assert b'"co2e_kg":null' in stored.payload_json()


def test_a_bound_that_cannot_be_enforced_after_a_commit_does_not_undo_the_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dropping old records can itself hit a full disk after the batch was committed: the caller
    must not be told the batch failed, or it would store it again under new sequence numbers."""
    outbox = opened(tmp_path / "o.db")

    def full(_now: float) -> None:
        raise OutboxFullError("outbox: database or disk is full")

    monkeypatch.setattr(outbox, "_enforce_bounds", full)
    stored = outbox.append(AGENT, records(3), now=1000)
    assert len(stored) == 3
    assert outbox.stats().records == 3
