"""Durable store-and-forward: every record is committed here before any output sees it.

SQLite in WAL mode. A record gets its sequence number from the `records` table's AUTOINCREMENT
(never reused, survives restarts). Each sink has a cursor and advances it only after its broker
or store acknowledged. Records every sink has delivered are deleted.

- Durability: `synchronous=FULL` (default) makes each committed batch survive power loss; with
  `normal` a crash of the process loses nothing, a power cut may lose the last commits (WAL).
- A new outbox starts its sequence at the current epoch millisecond, so a fresh file (first
  start, a wiped state directory, a corrupt file moved aside) never reuses numbers consumers
  already saw and deduplicate by (agent, seq).
- Bounds: stored record bytes and record age. Past either, the oldest raw tag records are
  dropped first, then the oldest KPI records; every drop is counted by kind, persistently.
- A file SQLite cannot read is moved aside (`*.corrupt-<time>`), reported, and a new one started.
- A full disk raises OutboxFullError; the runtime keeps records in memory until space frees.
- The KPI engine's checkpoint (one row) is written in the same transaction as the records it
  produced, so after any crash the state and the records agree. A checkpoint that cannot be
  decoded is reported, never fatal; setting one aside moves it to a file next to the outbox.
- Schema migrations keep every stored record: outboxes in the field hold undelivered data.

Not thread-safe by design: the runtime calls it from one dedicated thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from agent.exceptions import AgentError
from agent.records import Envelope, Record, RecordKind, from_json, to_json

log = logging.getLogger(__name__)

T = TypeVar("T")
SCHEMA_VERSION = 2  # 1: records, cursors, drops; 2: + the KPI engine's checkpoint
CHECKPOINT_ZLIB_LEVEL = 1  # JSON of hundreds of machines shrinks ~5x at a fraction of a millisecond
DROP_FIRST = frozenset({RecordKind.TAGS})  # raw values go before KPI records when space runs out
DROP_CHUNK = 500  # records deleted per round while over a bound

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    ts REAL NOT NULL,
    keep INTEGER NOT NULL,   -- 0: dropped first when full (raw tags), 1: KPI records
    size INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_keep_seq ON records (keep, seq);
CREATE TABLE IF NOT EXISTS cursors (sink TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS drops (kind TEXT NOT NULL, reason TEXT NOT NULL, count INTEGER NOT NULL,
                                  PRIMARY KEY (kind, reason));
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),   -- one: the latest
    agent TEXT NOT NULL,
    format INTEGER NOT NULL,
    ts REAL NOT NULL,       -- the engine's time when it was taken
    body BLOB NOT NULL      -- zlib-compressed JSON
);
"""


class OutboxError(AgentError):
    pass


class OutboxUnwritableError(OutboxError):
    """Nothing of the batch was stored, for a reason that may pass: the caller keeps the records."""


class OutboxFullError(OutboxUnwritableError):
    """The disk (or the file's page limit) is full."""


class CheckpointUnreadableError(OutboxError):
    """The stored checkpoint cannot be decoded (damaged, or not written by this program)."""


@dataclass(frozen=True)
class Checkpoint:
    """The KPI engine's state as plain data, tagged with who wrote it and in which format."""

    agent: str
    format: int
    ts: float
    data: Any


class OutboxLockedError(OutboxUnwritableError):
    """Another process holds the file's write lock (a backup, someone with the sqlite3 shell)
    for longer than the busy timeout."""


def _unwritable(error: sqlite3.OperationalError) -> Exception:
    message = str(error)
    if "full" in message:
        return OutboxFullError(f"outbox: {message}")
    if "locked" in message or "busy" in message:
        return OutboxLockedError(f"outbox: {message}")
    return error


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any failure, a failed COMMIT included.

    sqlite3's own `with connection:` does not roll back when COMMIT itself fails (SQLite reports
    a full disk at COMMIT): the transaction would stay open and be committed later by the next
    write, storing a batch the caller was told had failed. A full disk or a lock held elsewhere
    becomes an OutboxUnwritableError.
    """
    try:
        db.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as error:
        raise _unwritable(error) from error
    try:
        yield
        db.execute("COMMIT")
    except BaseException as error:
        if db.in_transaction:
            db.execute("ROLLBACK")
        if isinstance(error, sqlite3.OperationalError):
            raise _unwritable(error) from error
        raise


@dataclass(frozen=True)
class OutboxStats:
    records: int
    bytes: int
    oldest_ts: float | None
    head_seq: int
    dropped: dict[str, int]


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 256 * 2**20,
        max_age_s: float = 7 * 86_400.0,
        synchronous: Literal["full", "normal"] = "full",
        max_pages: int | None = None,
    ) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.synchronous = synchronous
        self.max_pages = max_pages  # a page limit makes SQLite report "full": tests use it for a full disk
        self._db: sqlite3.Connection | None = None
        self._bytes = 0
        self._sinks: set[str] = set()
        # Records handed to a sink and not yet acknowledged, per sink: the size bound never drops
        # these (they are being delivered), so every record is either delivered or counted dropped.
        self._in_flight: dict[str, tuple[int, int]] = {}

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> list[str]:
        """Open (or create) the file; returns the problems found and dealt with, for reporting."""
        problems: list[str] = []
        self.path.parent.mkdir(parents=True, exist_ok=True)
        unreadable: str | None = None
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as error:
            unreadable = str(error)
        if unreadable is not None:
            aside = self._move_aside()
            problems.append(
                f"outbox {self.path} could not be read ({unreadable}); moved to {aside.name}, "
                f"started a new one"
            )
            log.error("event=outbox_corrupt path=%s error=%r moved_to=%s", self.path, unreadable, aside)
            self._db = self._connect()
        row = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()
        self._bytes = int(row[0])
        return problems

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            self._prepare(db)
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous.upper()}")
        if self.max_pages is not None:
            db.execute(f"PRAGMA max_page_count={int(self.max_pages)}")
        check = db.execute("PRAGMA quick_check").fetchone()
        if check is None or check[0] != "ok":
            raise sqlite3.DatabaseError(f"integrity check: {check[0] if check else 'no answer'}")
        db.executescript(SCHEMA)
        with transaction(db):
            version = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if version is None:
                db.execute("INSERT INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
                db.execute(
                    "INSERT INTO sqlite_sequence (name, seq) VALUES ('records', ?)",
                    (int(time.time() * 1000),),
                )
            elif int(version[0]) == 1:
                # 1 -> 2 only adds the checkpoint table (created above): every record stays
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (str(SCHEMA_VERSION),))
                log.info(
                    "event=outbox_migrated path=%s from_schema=1 to_schema=%d", self.path, SCHEMA_VERSION
                )
            elif int(version[0]) != SCHEMA_VERSION:
                raise sqlite3.DatabaseError(f"schema version {version[0]}, expected {SCHEMA_VERSION}")

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(Path(f"{aside}{suffix}"))
        return aside

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError(f"outbox {self.path} is not open")
        return self._db

    # -- writing -----------------------------------------------------------------------------

    def append(
        self, agent: str, records: Sequence[Record], now: float, checkpoint: Checkpoint | None = None
    ) -> list[Envelope]:
        """Store records, and the checkpoint of the state that produced them, in one transaction;
        the returned envelopes carry their sequence numbers."""
        rows = []
        for record in records:
            body = to_json({"kind": record.kind.value, "ts": record.ts, "fields": record.fields}).decode()
            rows.append(
                (record.kind.value, record.ts, 0 if record.kind in DROP_FIRST else 1, len(body), body)
            )
        state = None
        if checkpoint is not None:
            blob = zlib.compress(to_json(checkpoint.data), CHECKPOINT_ZLIB_LEVEL)
            state = (checkpoint.agent, checkpoint.format, checkpoint.ts, blob)
        envelopes: list[Envelope] = []
        with transaction(self.db):
            for row, record in zip(rows, records, strict=True):
                cursor = self.db.execute(
                    "INSERT INTO records (kind, ts, keep, size, body) VALUES (?, ?, ?, ?, ?)", row
                )
                assert cursor.lastrowid is not None
                envelopes.append(Envelope(agent, cursor.lastrowid, record))
            if state is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO checkpoint (id, agent, format, ts, body) VALUES (1, ?, ?, ?, ?)",
                    state,
                )
        self._bytes += sum(row[3] for row in rows)
        self._enforce_bounds(now)
        return envelopes

    def _enforce_bounds(self, now: float) -> None:
        oldest_allowed = now - self.max_age_s
        # Records arrive in time order, so the oldest by sequence (a primary-key lookup) tells
        # whether anything has aged out; the scan below runs only then, not on every append.
        oldest = self.db.execute("SELECT ts FROM records ORDER BY seq LIMIT 1").fetchone()
        if oldest is not None and oldest[0] < oldest_allowed:
            self._drop_aged(oldest_allowed)
        while self._bytes > self.max_bytes:
            if not self._drop_oldest():
                break

    def _drop_aged(self, oldest_allowed: float) -> None:
        aged = self.db.execute(
            "SELECT kind, COUNT(*), COALESCE(SUM(size), 0) FROM records WHERE ts < ? GROUP BY kind",
            (oldest_allowed,),
        ).fetchall()
        if aged:
            with transaction(self.db):
                self.db.execute("DELETE FROM records WHERE ts < ?", (oldest_allowed,))
                for kind, count, size in aged:
                    self._count_drop(kind, "age", count)
                    self._bytes -= size

    def _drop_oldest(self) -> bool:
        with transaction(self.db):
            for keep in (0, 1):
                rows = self.db.execute(
                    "SELECT seq, kind, size FROM records WHERE keep = ? ORDER BY seq LIMIT ?",
                    (keep, DROP_CHUNK + self._in_flight_count()),
                ).fetchall()
                rows = [row for row in rows if not self._is_in_flight(row[0])][:DROP_CHUNK]
                if not rows:
                    continue
                excess = self._bytes - self.max_bytes
                chosen = []
                for row in rows:  # just enough to get under the bound
                    chosen.append(row)
                    excess -= row[2]
                    if excess <= 0:
                        break
                self.db.executemany("DELETE FROM records WHERE seq = ?", [(row[0],) for row in chosen])
                by_kind: dict[str, int] = {}
                for _, kind, size in chosen:
                    by_kind[kind] = by_kind.get(kind, 0) + 1
                    self._bytes -= size
                for kind, count in by_kind.items():
                    self._count_drop(kind, "size", count)
                log.warning(
                    "event=outbox_full_dropped records=%d keep=%d bound_bytes=%d",
                    len(chosen),
                    keep,
                    self.max_bytes,
                )
                return True
        return False

    def _is_in_flight(self, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self._in_flight.values())

    def _in_flight_count(self) -> int:
        return sum(last - first + 1 for first, last in self._in_flight.values())

    def _count_drop(self, kind: str, reason: str, count: int) -> None:
        self.db.execute(
            "INSERT INTO drops (kind, reason, count) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, reason) DO UPDATE SET count = count + excluded.count",
            (kind, reason, count),
        )

    # -- the KPI engine's checkpoint --------------------------------------------------------------

    def load_checkpoint(self) -> Checkpoint | None:
        """The latest checkpoint, or None; CheckpointUnreadableError if it cannot be decoded."""
        row = self.db.execute("SELECT agent, format, ts, body FROM checkpoint WHERE id = 1").fetchone()
        if row is None:
            return None
        agent, version, ts, body = row
        try:
            data = from_json(zlib.decompress(body))
        except (zlib.error, TypeError, ValueError) as error:
            raise CheckpointUnreadableError(f"checkpoint in {self.path} cannot be decoded: {error}") from None
        return Checkpoint(str(agent), int(version), float(ts), data)

    def set_aside_checkpoint(self) -> Path | None:
        """Move the stored checkpoint out of the way, into a file next to the outbox (for a look
        later); the next checkpoint starts afresh. Returns the file, None if there was nothing."""
        row = self.db.execute("SELECT agent, format, ts, body FROM checkpoint WHERE id = 1").fetchone()
        if row is None:
            return None
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.checkpoint-{stamp}")
        header = to_json(
            {"agent": row[0], "format": row[1], "ts": row[2], "body": "zlib-compressed JSON follows"}
        )
        aside.write_bytes(header + b"\n" + bytes(row[3]))
        with transaction(self.db):
            self.db.execute("DELETE FROM checkpoint WHERE id = 1")
        return aside

    # -- reading and acknowledging ------------------------------------------------------------

    def register(self, sinks: Sequence[str]) -> None:
        """Sinks new to this outbox start at the oldest stored record: a new output gets the backlog."""
        self._sinks = set(sinks)
        with transaction(self.db):
            oldest = self.db.execute("SELECT COALESCE(MIN(seq), 0) FROM records").fetchone()[0]
            for sink in sinks:
                self.db.execute(
                    "INSERT OR IGNORE INTO cursors (sink, seq) VALUES (?, ?)", (sink, max(0, oldest - 1))
                )

    def pending(self, agent: str, sink: str, limit: int) -> list[Envelope]:
        cursor = self.cursor(sink)
        rows = self.db.execute(
            "SELECT seq, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", (cursor, limit)
        ).fetchall()
        if rows:
            self._in_flight[sink] = (rows[0][0], rows[-1][0])
        envelopes = []
        for seq, body in rows:
            data = from_json(body)
            envelopes.append(
                Envelope(agent, seq, Record(RecordKind(data["kind"]), data["ts"], data["fields"]))
            )
        return envelopes

    def cursor(self, sink: str) -> int:
        row = self.db.execute("SELECT seq FROM cursors WHERE sink = ?", (sink,)).fetchone()
        if row is None:
            raise OutboxError(f"sink '{sink}' is not registered with the outbox")
        return int(row[0])

    def ack(self, sink: str, seq: int) -> None:
        """The sink's broker or store acknowledged everything up to seq; delivered records go."""
        self._in_flight.pop(sink, None)
        with transaction(self.db):
            self.db.execute("UPDATE cursors SET seq = MAX(seq, ?) WHERE sink = ?", (seq, sink))
            placeholders = ",".join("?" * len(self._sinks))
            delivered = self.db.execute(
                f"SELECT MIN(seq) FROM cursors WHERE sink IN ({placeholders})",  # noqa: S608 - only placeholders
                tuple(self._sinks),
            ).fetchone()[0]
            if delivered is not None:
                size = self.db.execute(
                    "SELECT COALESCE(SUM(size), 0) FROM records WHERE seq <= ?", (delivered,)
                ).fetchone()[0]
                self.db.execute("DELETE FROM records WHERE seq <= ?", (delivered,))
                self._bytes -= int(size)

    def stats(self, sink: str | None = None) -> OutboxStats:
        after = self.cursor(sink) if sink is not None else 0
        count, size, oldest = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(ts) FROM records WHERE seq > ?", (after,)
        ).fetchone()
        head = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        dropped = {
            f"{kind}/{reason}": int(n)
            for kind, reason, n in self.db.execute(
                "SELECT kind, reason, count FROM drops ORDER BY kind, reason"
            )
        }
        return OutboxStats(int(count), int(size), oldest, int(head[0]) if head else 0, dropped)


class AsyncOutbox:
    """The outbox's face to the event loop: every SQLite call runs on one dedicated thread, so
    the loop never waits on a disk fsync and the connection is never shared between threads."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent[outbox]")

    async def call(self, function: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def __aenter__(self) -> AsyncOutbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.call(self.outbox.close)
        self._executor.shutdown(wait=True)
