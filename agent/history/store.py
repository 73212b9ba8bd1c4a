"""The report history: a bounded SQLite file of the records the board and the reports are made of.

It is fed the same records the outputs get (agent/delivery/store.py hands every committed batch to
it), but keeps its own retention, independent of delivery: the outbox forgets a record once every
output has it, the history keeps it for `history.days` (62 by default: this month and the last).

What it keeps:
- every machine state record (the timelines of the shift reports);
- every final record of a shift or a day (machine, line, workshop and crew OEE and energy);
- the newest record of every kind and scope (machine, line, crew, workshop), final or not, in a
  table of its own (`latest`): what the board shows now, also right after a restart.

Bounds: records older than `days` are deleted at open and then every PRUNE_EVERY_S; when the data
grows over `max_mb` the oldest records go first (logged with their count), so a flapping machine
can never fill the disk. The file uses WAL with synchronous=NORMAL: a crash loses at most the last
commits, a power cut never corrupts it (the outbox, not the history, is the durable record).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from agent.kpi.calendar import NO_SHIFT
from agent.records import Record, RecordKind, from_json, to_json
from agent.reports.data import STOP_STATES
from agent.throttle import STORAGE_FAULT_LOG_EVERY_S, EventThrottle

log = logging.getLogger(__name__)

DAY_S = 86_400.0
PRUNE_EVERY_S = 600.0  # age-based deletion: at open, then at most this often
SIZE_CHECK_EVERY = 200  # records added between two checks of the size cap
CAP_TARGET = 0.9  # over the cap, delete down to this share of it, so the next records fit
FINAL_KINDS = frozenset(
    {
        RecordKind.OEE,
        RecordKind.ENERGY,
        RecordKind.LINE_OEE,
        RecordKind.LINE_ENERGY,
        RecordKind.WORKSHOP_OEE,
        RecordKind.WORKSHOP_ENERGY,
        RecordKind.CREW_OEE,
        RecordKind.CREW_ENERGY,
    }
)
WRITE_FAULT = "history_unwritable"

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    period TEXT,
    day TEXT,
    shift TEXT,
    scope TEXT NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS records_period ON records (period, day, shift);
CREATE INDEX IF NOT EXISTS records_ts ON records (ts);
CREATE INDEX IF NOT EXISTS records_scope ON records (kind, scope, ts);
CREATE TABLE IF NOT EXISTS latest (
    kind TEXT NOT NULL,
    scope TEXT NOT NULL,
    ts REAL NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (kind, scope)
);
"""


class HistoryError(RuntimeError):
    """The history file cannot be opened; the message names the file."""


def scope_of(record: Record) -> str:
    """What a record is about: a machine, a line, a crew, or the workshop ('')."""
    fields = record.fields
    if record.kind in (RecordKind.CREW_OEE, RecordKind.CREW_ENERGY):
        return str(fields.get("crew") or "")
    return record.machine or record.line or ""


def kept(record: Record) -> bool:
    """Whether a record goes into the history table (every record updates `latest`)."""
    if record.kind is RecordKind.STATE:
        return True
    return record.kind in FINAL_KINDS and record.fields.get("final") is True


@dataclass(frozen=True)
class HistoryStats:
    records: int
    bytes_used: int
    oldest_ts: float | None
    deleted_by_age: int
    deleted_by_size: int


class HistoryReader:
    """The history's queries, on a connection of their own: `HistoryStore.reader()` opens one
    read-only, so a report is built on a worker thread while the agent keeps writing (WAL)."""

    def __init__(self, db: sqlite3.Connection | None = None) -> None:
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise HistoryError("the history is not open")
        return self._db

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------------
    def finals(self, period: str, day: str, shift: str | None = None) -> list[Record]:
        """The final records of one shift (period 'shift', with its id) or one production day."""
        if shift is None:
            rows = self.db.execute(
                "SELECT kind, ts, body FROM records WHERE period = ? AND day = ? ORDER BY id", (period, day)
            )
        else:
            rows = self.db.execute(
                "SELECT kind, ts, body FROM records WHERE period = ? AND day = ? AND shift = ? ORDER BY id",
                (period, day, shift),
            )
        return [_record(kind, ts, body) for kind, ts, body in rows]

    def finals_between(self, period: str, first_day: str, last_day: str) -> list[Record]:
        """Final records of every day from first_day to last_day (ISO dates, inclusive)."""
        rows = self.db.execute(
            "SELECT kind, ts, body FROM records WHERE period = ? AND day >= ? AND day <= ? ORDER BY id",
            (period, first_day, last_day),
        )
        return [_record(kind, ts, body) for kind, ts, body in rows]

    def states(self, start: float, end: float) -> list[Record]:
        """State records in [start, end), and for every machine the last one before start (the
        state it was in when the window opened)."""
        rows = self.db.execute(
            "SELECT kind, ts, body FROM records WHERE kind = 'state' AND ts >= ? AND ts < ? ORDER BY ts, id",
            (start, end),
        ).fetchall()
        # one index seek per machine (records_scope), whatever the history's length; a machine whose
        # state record has aged out of the history opens the window in its newest state (`latest`)
        newest = self.db.execute("SELECT scope, ts, body FROM latest WHERE kind = 'state'").fetchall()
        before = []
        for scope, newest_ts, newest_body in newest:
            row = self.db.execute(
                "SELECT kind, ts, body FROM records WHERE kind = 'state' AND scope = ? AND ts < ? "
                "ORDER BY ts DESC LIMIT 1",
                (scope, start),
            ).fetchone()
            if row is None and newest_ts < start:
                row = ("state", newest_ts, newest_body)
            if row is not None:
                before.append(row)
        return [_record(kind, ts, body) for kind, ts, body in (*before, *rows)]

    def latest(self) -> list[Record]:
        """The newest record of every kind and scope."""
        rows = self.db.execute("SELECT kind, ts, body FROM latest ORDER BY kind, scope")
        return [_record(kind, ts, body) for kind, ts, body in rows]

    def shifts(self) -> list[tuple[str, str]]:
        """(day, shift) of every shift with final records, newest first: the report index (the time
        between shifts is published as a period too, but it is no shift to report)."""
        rows = self.db.execute(
            "SELECT DISTINCT day, shift FROM records WHERE period = 'shift' AND day IS NOT NULL "
            "AND shift != ? ORDER BY day DESC, shift",
            (NO_SHIFT,),
        )
        return [(str(day), str(shift)) for day, shift in rows]


class HistoryStore(HistoryReader):
    """Open with `with` (or open()/close()); add() committed records; query for reports and the board."""

    def __init__(
        self,
        path: Path,
        *,
        days: float,
        max_bytes: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self.keep_s = days * DAY_S
        self.max_bytes = max_bytes
        self.clock = clock
        self.deleted_by_age = 0
        self.deleted_by_size = 0
        self.refused = 0  # records JSON could not carry, left out
        super().__init__()
        self._last_prune = -float("inf")
        self._since_size_check = 0
        self._log = EventThrottle(STORAGE_FAULT_LOG_EVERY_S)
        self._last_stop: dict[str, Record] = {}  # per machine: its newest fault, setup or idle state

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new file: freed pages go back
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise HistoryError(f"history {self.path}: cannot open: {error}") from error
        self._db = db
        self._last_stop = {}
        for (scope,) in db.execute("SELECT scope FROM latest WHERE kind = 'state'").fetchall():
            # newest first through records_scope: a few rows back to the machine's last stop
            for kind, ts, body in db.execute(
                "SELECT kind, ts, body FROM records WHERE kind = 'state' AND scope = ? AND "
                "json_extract(CAST(body AS TEXT), '$.state') IN ('fault', 'setup', 'idle') "
                "ORDER BY ts DESC LIMIT 1",
                (scope,),
            ):
                self._last_stop[scope] = _record(kind, ts, body)
        self.prune()
        self._enforce_cap()
        return self

    def __enter__(self) -> Self:
        return self.open()

    def reader(self) -> HistoryReader:
        """A read-only connection of its own (close it, or use it with `with`)."""
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
        except sqlite3.Error as error:
            raise HistoryError(f"history {self.path}: cannot open to read: {error}") from error
        return HistoryReader(db)

    # -- writing -----------------------------------------------------------------------------
    def add(self, records: Sequence[Record]) -> None:
        """Keep what the reports and the board need of a committed batch. A write that fails
        (full disk) is logged, throttled, and never reaches the caller: the outputs go on."""
        if not records or self._db is None:
            return
        try:
            self._add(records)
        except sqlite3.Error as error:
            if self._log.allow(WRITE_FAULT) is not None:
                log.error("event=history_unwritable file=%s error=%r", self.path, str(error))  # noqa: TRY400
            return
        self._log.reset(WRITE_FAULT)

    def _add(self, records: Sequence[Record]) -> None:
        db = self.db
        rows = []
        latest = []
        for record in records:
            scope = scope_of(record)
            try:
                body = to_json(record.fields)
            except (TypeError, ValueError):  # a value JSON cannot carry: the outbox refuses it too
                self.refused += 1
                continue
            if record.fields.get("period") != "day":  # the board shows the shift so far, not the day
                latest.append((record.kind.value, scope, record.ts, body))
            if record.kind is RecordKind.STATE and record.fields.get("state") in STOP_STATES:
                self._last_stop[scope] = record
            if kept(record):
                f = record.fields
                rows.append(
                    (record.kind.value, record.ts, f.get("period"), f.get("day"), f.get("shift"), scope, body)
                )
        db.execute("BEGIN")
        try:
            db.executemany(
                "INSERT INTO records (kind, ts, period, day, shift, scope, body) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            db.executemany(
                "INSERT INTO latest (kind, scope, ts, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, scope) DO UPDATE SET ts = excluded.ts, body = excluded.body "
                "WHERE excluded.ts >= latest.ts",
                latest,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._since_size_check += len(rows)
        if self._since_size_check >= SIZE_CHECK_EVERY:
            self._enforce_cap()
        if time.monotonic() - self._last_prune >= PRUNE_EVERY_S:
            self.prune()

    def prune(self) -> int:
        """Delete what is older than the retention; the count deleted."""
        self._last_prune = time.monotonic()
        cutoff = self.clock() - self.keep_s
        # `latest` stays: one row per machine, line and crew, and a machine may hold a state for months
        deleted = self.db.execute("DELETE FROM records WHERE ts < ?", (cutoff,)).rowcount
        if deleted:
            self.deleted_by_age += deleted
            self.db.execute("PRAGMA incremental_vacuum")
            log.info("event=history_pruned reason=age records=%d days=%g", deleted, self.keep_s / DAY_S)
        return deleted

    def bytes_used(self) -> int:
        db = self.db
        pages = (
            db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
        )
        return int(pages) * int(db.execute("PRAGMA page_size").fetchone()[0])

    def _enforce_cap(self) -> None:
        self._since_size_check = 0
        used = self.bytes_used()
        if used <= self.max_bytes:
            return
        count, stored = self.db.execute(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM records"
        ).fetchone()
        if count == 0:
            return
        # bytes per record as stored (with its index entries), so one delete reaches the target
        per_record = max(1.0, used / count)
        excess = int((used - self.max_bytes * CAP_TARGET) / per_record) + 1
        deleted = self.db.execute(
            "DELETE FROM records WHERE id IN (SELECT id FROM records ORDER BY id LIMIT ?)", (excess,)
        ).rowcount
        self.db.execute("PRAGMA incremental_vacuum")
        self.deleted_by_size += deleted
        log.warning(
            "event=history_pruned reason=size records=%d max_mb=%g stored_bytes=%d",
            deleted,
            self.max_bytes / 2**20,
            stored,
        )

    def last_stops(self) -> dict[str, Record]:
        """Per machine, the state record of its newest stop (fault, setup, idle): the board's last
        stop reason."""
        return dict(self._last_stop)

    def stats(self) -> HistoryStats:
        count, oldest = self.db.execute("SELECT count(*), min(ts) FROM records").fetchone()
        return HistoryStats(count, self.bytes_used(), oldest, self.deleted_by_age, self.deleted_by_size)


def _record(kind: str, ts: float, body: bytes | str) -> Record:
    return Record(RecordKind(kind), ts, from_json(body))
