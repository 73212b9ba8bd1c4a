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
- A corrupt file is salvaged, then moved aside (`*.corrupt-<time>`) and a new one started: every
  record SQLite can still read keeps its sequence number in the new file, with the cursors, the
  sequence head and the drop counters where they are readable. Records that cannot be read are
  counted (as dropped `unknown/corrupt`, and in the log).
- A file that cannot be opened for writing (permissions, a read-only file system, a path that is
  a directory) is not corrupt and is never moved: OutboxUnopenableError says which file, why, and
  what to do; `edge-agent run` exits with EXIT_OUTBOX.
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
import os
import pwd
import sqlite3
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from agent.exceptions import AgentError
from agent.records import Envelope, Record, RecordKind, from_json, to_json

log = logging.getLogger(__name__)

T = TypeVar("T")
P = ParamSpec("P")
SCHEMA_VERSION = 2  # 1: records, cursors, drops; 2: + the KPI engine's checkpoint
CHECKPOINT_ZLIB_LEVEL = 1  # JSON of hundreds of machines shrinks ~5x at a fraction of a millisecond
DROP_FIRST = frozenset({RecordKind.TAGS})  # raw values go before KPI records when space runs out
DROP_CHUNK = 500  # records deleted per round while over a bound
SALVAGE_CHUNK = 1000  # records copied per transaction from a corrupt file
SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26  # primary result codes that mean a damaged file
MAX_SEQ = 2**63 - 1

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


def drop_rank(kind: RecordKind) -> int:
    """The order records go in when space runs out: 0 first (raw tag values), then 1 (KPI records),
    oldest first within each. The outbox stores it with every record (`keep`); the records held in
    memory while the disk is full are dropped in the same order (agent/delivery/store.py)."""
    return 0 if kind in DROP_FIRST else 1


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


class OutboxUnopenableError(OutboxError):
    """The outbox cannot be opened for writing, and moving it aside would not help: a person must
    act. The message is one line: the file, the reason and what to do."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        try:
            user = pwd.getpwuid(os.geteuid()).pw_name
        except KeyError:
            user = str(os.geteuid())
        self.action = (
            f"give user '{user}' write access to {path.parent} and the files in it, make sure the "
            "file system is mounted read-write, or set outbox.path to a writable place"
        )
        super().__init__(f"outbox {path} cannot be opened for writing: {reason}; {self.action}")


class _DamagedError(sqlite3.DatabaseError):
    """A file SQLite opens but finds damaged (a failed integrity check, an unknown schema)."""


def _is_damage(error: sqlite3.DatabaseError) -> bool:
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(error, _DamagedError) or (
        code is not None and code & 0xFF in (SQLITE_CORRUPT, SQLITE_NOTADB)
    )


def _describe(error: sqlite3.Error) -> str:
    name = getattr(error, "sqlite_errorname", None)
    return f"{error} ({name})" if name else str(error)


@dataclass(frozen=True)
class Salvage:
    """What a corrupt outbox gave up: carried over, and lost."""

    aside: Path
    records: int  # carried into the new outbox, with their sequence numbers
    lost: int  # sequence numbers that could not be read back (see _salvage_records)
    more_unknown: bool  # a damaged stretch whose extent is unknown (no cursor or head readable)
    cursors: int
    head: int | None


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
        self.salvage: Salvage | None = None  # set when open() found the file corrupt

    # -- opening -----------------------------------------------------------------------------

    def open(self) -> list[str]:
        """Open (or create) the file; returns the problems found and dealt with, for reporting.
        Raises OutboxUnopenableError when the file cannot be written at all."""
        problems: list[str] = []
        self._check_writable()
        unreadable: str | None = None
        try:
            self._db = self._connect()
        except sqlite3.DatabaseError as error:
            if not _is_damage(error):
                raise OutboxUnopenableError(self.path, _describe(error)) from None
            unreadable = _describe(error)
        if unreadable is not None:
            try:
                aside = self._move_aside()
                self._db = self._connect()
            except (OSError, sqlite3.DatabaseError) as error:
                raise OutboxUnopenableError(self.path, f"corrupt ({unreadable}), and {error}") from None
            try:
                self.salvage = self._salvage(aside)
            except (sqlite3.Error, OutboxError) as error:  # the new outbox works; the old file stays
                log.exception("event=outbox_salvage_failed path=%s aside=%s", self.path, aside)
                self.salvage = Salvage(aside, 0, 0, True, 0, None)
                unreadable += f"; salvage failed: {error}"
            problems.append(self._report_salvage(unreadable, self.salvage))
        row = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM records").fetchone()
        self._bytes = int(row[0])
        return problems

    def _check_writable(self) -> None:
        """What SQLite would report vaguely or late ("attempt to write a readonly database" at the
        first commit), said up front with the file it is about."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutboxUnopenableError(
                self.path, f"cannot create {self.path.parent}: {error.strerror}"
            ) from None
        if self.path.is_dir():
            raise OutboxUnopenableError(self.path, "it is a directory")
        for target in (self.path.parent, *(p for p in self._files() if p.exists())):
            if not os.access(target, os.W_OK):
                raise OutboxUnopenableError(self.path, f"{target} is read-only for this user")

    def _files(self) -> list[Path]:
        return [Path(f"{self.path}{suffix}") for suffix in ("", "-wal", "-shm")]

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
            raise _DamagedError(f"integrity check: {check[0] if check else 'no answer'}")
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
                raise _DamagedError(f"schema version {version[0]}, expected {SCHEMA_VERSION}")

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(Path(f"{aside}{suffix}"))
        return aside

    # -- salvaging a corrupt file ---------------------------------------------------------------

    def _salvage(self, aside: Path) -> Salvage:
        """Carry every record SQLite can still read from the corrupt file (set aside) into the new
        one, with its sequence number; then the cursors, drop counters, sequence head and the KPI
        engine's checkpoint."""
        try:
            old = sqlite3.connect(aside, isolation_level=None, check_same_thread=False)
            # A truncated file is shorter than its header says; SQLite refuses such a file as a
            # whole unless the schema is "writable" (what its own recovery does). Nothing is written.
            old.execute("PRAGMA writable_schema=ON")
        except sqlite3.Error:
            return Salvage(aside, 0, 0, True, 0, None)
        try:
            head = _read_or_none(old, "SELECT seq FROM sqlite_sequence WHERE name = 'records'")
            cursors = _rows_or_empty(old, "SELECT sink, seq FROM cursors")
            drops = _rows_or_empty(old, "SELECT kind, reason, count FROM drops")
            # the engine's state goes along: the shift continues (a body that does not decode is
            # set aside at start like any damaged checkpoint)
            checkpoint = _rows_or_empty(old, "SELECT agent, format, ts, body FROM checkpoint WHERE id = 1")
            head = head if isinstance(head, int) else None
            floor = min((seq for sink, seq in cursors if isinstance(seq, int)), default=None)
            copied, lost, highest, unknown = self._salvage_records(old, head, floor)
        finally:
            old.close()
        kept_cursors = 0
        with transaction(self.db):
            for sink, seq in cursors:
                if isinstance(sink, str) and isinstance(seq, int):
                    self.db.execute("INSERT OR REPLACE INTO cursors (sink, seq) VALUES (?, ?)", (sink, seq))
                    kept_cursors += 1
            for kind, reason, count in drops:
                if isinstance(kind, str) and isinstance(reason, str) and isinstance(count, int):
                    self._count_drop(kind, reason, count)
            if lost:
                self._count_drop("unknown", "corrupt", lost)
            for agent, version, ts, body in checkpoint:
                if isinstance(agent, str) and isinstance(version, int) and isinstance(body, bytes):
                    self.db.execute(
                        "INSERT OR REPLACE INTO checkpoint (id, agent, format, ts, body) "
                        "VALUES (1, ?, ?, ?, ?)",
                        (agent, version, ts, body),
                    )
            self.db.execute(
                "UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = 'records'",
                (max(head or 0, highest),),
            )
        return Salvage(aside, copied, lost, unknown, kept_cursors, head)

    def _salvage_records(
        self, old: sqlite3.Connection, head: int | None, floor: int | None
    ) -> tuple[int, int, int, bool]:
        """(copied, lost, highest sequence seen, more lost than counted). Records are read in
        sequence order from `floor` (the lowest cursor: below it everything was delivered and
        deleted). Where a damaged page stops the read, the next readable sequence number is
        searched for and the numbers skipped are counted lost, as are the numbers between the last
        readable record and the head. That is an upper bound: numbers the size bound had already
        dropped (counted then) fall into a skipped range too. Without a floor, a damaged start is
        not counted (its extent is unknown); without a head, neither is a damaged end."""
        copied = lost = 0
        last = floor if floor is not None else 0
        unknown = False
        batch: list[tuple[int, str, float, int, int, str]] = []
        while True:
            try:
                for row in old.execute(
                    "SELECT seq, kind, ts, keep, body FROM records NOT INDEXED WHERE seq > ? ORDER BY seq",
                    (last,),
                ):
                    last = int(row[0])
                    usable = _usable(row)
                    if usable is None:
                        lost += 1
                        continue
                    batch.append(usable)
                    if len(batch) >= SALVAGE_CHUNK:
                        copied += self._insert_salvaged(batch)
                        batch = []
                break  # read to the end
            except sqlite3.DatabaseError:
                counted = last > 0  # a floor, or a record read: the gap from here is countable
                resume = _next_readable(old, last, head)
                if resume is None:  # nothing readable after `last`
                    if head is None or not counted:
                        unknown = True
                    elif head > last:
                        lost += head - last
                    break
                if counted:
                    lost += resume - last
                else:
                    unknown = True
                last = resume
        copied += self._insert_salvaged(batch)
        return copied, lost, last, unknown

    def _insert_salvaged(self, rows: list[tuple[int, str, float, int, int, str]]) -> int:
        if rows:
            with transaction(self.db):
                self.db.executemany(
                    "INSERT OR IGNORE INTO records (seq, kind, ts, keep, size, body) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
        return len(rows)

    def _report_salvage(self, unreadable: str, salvage: Salvage) -> str:
        lost = f"{salvage.lost}{' or more' if salvage.more_unknown else ''}"
        log.error(
            "event=outbox_corrupt path=%s error=%r moved_to=%s salvaged=%d lost=%s cursors=%d "
            "detail='every readable record kept its sequence number in the new outbox'",
            self.path,
            unreadable,
            salvage.aside,
            salvage.records,
            lost,
            salvage.cursors,
        )
        return (
            f"outbox {self.path} was corrupt ({unreadable}): {salvage.records} records salvaged into a "
            f"new outbox, {lost} lost; the damaged file is kept as {salvage.aside.name}"
        )

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
            rows.append((record.kind.value, record.ts, drop_rank(record.kind), len(body), body))
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
                if cursor.lastrowid is None:  # SQLite always sets it after an INSERT into a rowid table
                    raise OutboxError(f"outbox {self.path}: no sequence number for a stored record")
                envelopes.append(Envelope(agent, cursor.lastrowid, record))
            if state is not None:
                self.db.execute(
                    "INSERT OR REPLACE INTO checkpoint (id, agent, format, ts, body) VALUES (1, ?, ?, ?, ?)",
                    state,
                )
        self._bytes += sum(row[3] for row in rows)
        try:
            self._enforce_bounds(now)
        except (OutboxError, sqlite3.Error) as error:
            # The records are committed: raising now would make the caller store them a second
            # time, under new sequence numbers. The bounds are enforced again at the next append.
            log.warning("event=outbox_bounds_deferred error=%r", str(error))
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


def _read_or_none(db: sqlite3.Connection, query: str) -> Any:
    try:
        row = db.execute(query).fetchone()
    except sqlite3.DatabaseError:
        return None
    return None if row is None else row[0]


def _rows_or_empty(db: sqlite3.Connection, query: str) -> list[tuple[Any, ...]]:
    try:
        return [tuple(row) for row in db.execute(query).fetchall()]
    except sqlite3.DatabaseError:
        return []


def _usable(row: tuple[Any, ...]) -> tuple[int, str, float, int, int, str] | None:
    """A row read from a damaged file, if it is a whole record: its JSON and kind must parse."""
    seq, kind, ts, keep, body = row
    if not (isinstance(seq, int) and isinstance(kind, str) and isinstance(ts, int | float)):
        return None
    try:
        text = body.decode() if isinstance(body, bytes) else body
        data = from_json(text) if isinstance(text, str) else None
        RecordKind(kind)
    except ValueError:  # orjson's decode error and UnicodeDecodeError are ValueErrors too
        return None
    if not isinstance(data, dict) or data.get("kind") != kind or not isinstance(text, str):
        return None
    return seq, kind, float(ts), 1 if keep else 0, len(text), text


def _probe(db: sqlite3.Connection, after: int) -> bool:
    """Whether reading on from sequence number `after` gets past the damaged pages."""
    try:
        db.execute(
            "SELECT seq FROM records NOT INDEXED WHERE seq > ? ORDER BY seq LIMIT 1", (after,)
        ).fetchone()
    except sqlite3.DatabaseError:
        return False
    return True


def _next_readable(db: sqlite3.Connection, last: int, head: object) -> int | None:
    """The sequence number after which reading works again, past a damaged stretch that starts
    after `last`: found by doubling steps, then narrowed by halving. None if nothing after `last`
    can be read up to the head (or the largest sequence number)."""
    limit = int(head) if isinstance(head, int) and head > last else MAX_SEQ
    step = 1
    while not _probe(db, min(last + step, limit)):
        if last + step >= limit:
            return None
        step *= 2
    good, bad = min(last + step, limit), last + step // 2 if step > 1 else last
    while good - bad > 1:
        middle = (good + bad) // 2
        if _probe(db, middle):
            good = middle
        else:
            bad = middle
    return good


class AsyncOutbox:
    """The outbox's face to the event loop: every SQLite call runs on one dedicated thread, so the
    loop never waits on a disk fsync and the connection is never shared between threads. One
    typed method per call the runtime and the delivery loops make."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent[outbox]")

    async def _run(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args, **kwargs))

    @property
    def path(self) -> Path:
        return self.outbox.path

    @property
    def salvage(self) -> Salvage | None:
        return self.outbox.salvage

    async def open(self) -> list[str]:
        return await self._run(self.outbox.open)

    async def register(self, sinks: Sequence[str]) -> None:
        await self._run(self.outbox.register, sinks)

    async def append(
        self, agent: str, records: Sequence[Record], now: float, checkpoint: Checkpoint | None = None
    ) -> list[Envelope]:
        return await self._run(self.outbox.append, agent, records, now, checkpoint)

    async def pending(self, agent: str, sink: str, limit: int) -> list[Envelope]:
        return await self._run(self.outbox.pending, agent, sink, limit)

    async def ack(self, sink: str, seq: int) -> None:
        await self._run(self.outbox.ack, sink, seq)

    async def stats(self, sink: str | None = None) -> OutboxStats:
        return await self._run(self.outbox.stats, sink)

    async def load_checkpoint(self) -> Checkpoint | None:
        return await self._run(self.outbox.load_checkpoint)

    async def set_aside_checkpoint(self) -> Path | None:
        return await self._run(self.outbox.set_aside_checkpoint)

    async def __aenter__(self) -> AsyncOutbox:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._run(self.outbox.close)
        self._executor.shutdown(wait=True)
