"""The event store: one append-only log of events plus the request-key table, on the
eventsourcing 9.5 recorders (SQLite embedded, PostgreSQL in production), chosen by URL.

- Events: `ledger_events` (the recorders' table: stream id, version, topic, state, and a
  notification id that orders the whole log). Appends take the recorders' table lock on
  PostgreSQL, so the log's order is the commit order and readers never skip a late commit.
- Request keys: `ledger_request_keys`, written in the same transaction as the events they
  guard, with a primary key on (key_space, request_id): a retry can never apply twice, even
  when two processes decide it at once.
- Snapshots: `ledger_snapshots`, written in the transaction of the event they end at (a
  snapshot already there is kept); they only shorten a card's load.
- A turn (`EventStore.turn`): the log's write lock held across a whole decision, for the
  engine's slow path after a conflict with another process (PostgreSQL: the recorders' own
  EXCLUSIVE table lock taken first in the transaction; SQLite: BEGIN IMMEDIATE).
"""

from __future__ import annotations

import abc
import contextlib
import json
import math
import os
import select
import socket
import sqlite3
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, NamedTuple, Protocol

import psycopg
import psycopg.errors
from eventsourcing import persistence as es
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
)
from eventsourcing.sqlite import (
    SQLiteAggregateRecorder,
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteCursor,
    SQLiteDatastore,
)
from psycopg.rows import tuple_row
from psycopg.sql import SQL, Identifier, Literal

from ledger import limits
from ledger.codec import REGISTRY_ID

EVENTS_TABLE = "ledger_events"
_new_row = tuple.__new__  # a NamedTuple from a row tuple, in C
SNAPSHOTS_TABLE = "ledger_snapshots"
KEYS_TABLE = "ledger_request_keys"


class StoreError(Exception):
    pass


class Conflict(StoreError):
    """A stream version or a request key was taken by another writer: re-decide."""


class Busy(Conflict):
    """The log's write lock was not granted in time (PostgreSQL lock_timeout, SQLite busy
    timeout): the database is up and nothing was written, others are writing. Decide again
    (it is a Conflict), never report it as an outage."""


class Unavailable(StoreError):
    """The database cannot be reached or failed: nothing of the transaction was applied."""


class ConfigError(StoreError):
    """A database URL that is malformed, unreachable or not initialised (exit status 2)."""


class LogRow(NamedTuple):
    """One row of the log as `EventStore.read_log` returns it: a Notification's fields by
    name (a tuple: built in C, ~10x cheaper than the recorders' frozen dataclass, which a
    projection catching up over millions of rows would build for every one)."""

    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: bytes
    id: int  # the notification id: the row's position in the log


class KeyRow(NamedTuple):
    key_space: str
    request_id: str
    payload_hash: bytes  # b"" marks a request reversed before it was seen
    outcome: bytes


class Append(Protocol):
    """What a turn yields: one append of events, keys and snapshots; returns the events'
    notification ids."""

    def __call__(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                 snapshots: Sequence[StoredEvent] = (),
                 key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]: ...


_Write = Callable[..., list[int]]


class Change(NamedTuple):
    """One log row as seen by a process following others' writes."""

    notification_id: int
    originator_id: uuid.UUID
    originator_version: int
    state: bytes | None  # only for registry events


class Tail(NamedTuple):
    """A stream as a load needs it: its latest snapshot of the topic asked for (version 0 and
    None when there is none) and the states of the events after that snapshot, in order."""

    snapshot_version: int
    snapshot: bytes | None
    events: list[bytes]


def _lock_not_granted(error: BaseException) -> bool:
    """A lock wait that timed out, wherever it sits in the chain of causes."""
    seen: BaseException | None = error
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, psycopg.errors.LockNotAvailable):
            return True
        if isinstance(seen, sqlite3.OperationalError) and (
                "database is locked" in str(seen) or "database is busy" in str(seen)):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class Session:
    """A transaction of the read side: SQL with `?` placeholders on either backend, rows as
    tuples. `dialect` is "sqlite" or "postgres" for the few statements that differ."""

    def __init__(self, cursor: Any, dialect: str) -> None:
        self._cursor = cursor
        self.dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else sql.replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the rows it changed (for UPDATE and DELETE)."""
        self._cursor.execute(self._sql(sql), tuple(params))
        return int(self._cursor.rowcount)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._cursor.execute(self._sql(sql), tuple(params))
        return [tuple(row) for row in self._cursor.fetchall()]

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self._cursor.executemany(self._sql(sql), rows)


def _translate(error: Exception) -> StoreError:
    if isinstance(error, es.IntegrityError):
        return Conflict(str(error))
    if _lock_not_granted(error):
        return Busy(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))
    return Unavailable(str(error).strip().splitlines()[0] if str(error).strip() else repr(error))


def _ms(seconds: float) -> int:
    """A lock wait in whole milliseconds, at least 1 (0 would mean "wait forever")."""
    return max(1, math.ceil(seconds * 1000))


def _once(write: _Write) -> Append:
    """`write`, callable once: a turn commits one decision."""
    used = [False]

    def append(events: Sequence[StoredEvent], keys: Sequence[KeyRow],
               snapshots: Sequence[StoredEvent] = (),
               key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
        assert not used[0], "a turn appends once"
        used[0] = True
        return write(events, keys, snapshots, key_lanes) if key_lanes is not None \
            else write(events, keys, snapshots)

    return append


@contextlib.contextmanager
def _sqlite_errors() -> Iterator[None]:
    """sqlite3's errors as the recorders raise them (so `_translate` applies)."""
    try:
        yield
    except sqlite3.IntegrityError as error:
        raise es.IntegrityError(error) from error
    except sqlite3.Error as error:
        raise es.OperationalError(error) from error


class EventStore(abc.ABC):
    """What the engine needs from a database; one subclass per backend."""

    url: str  # for messages: never includes a password
    # One log (lane 0). The split layout (ledger/partitioned.py) has a lane per card partition
    # besides the global one, each with its own table, lock and notification ids.
    split = False

    def lanes(self) -> list[int]:
        """The log's lanes, each ordered by its own notification ids: [0] for one log; the
        split layout: 0 (the registry) and 1 + p for card partition p."""
        return [0]

    def lane_of(self, stream_id: uuid.UUID) -> int:
        """The lane a stream's events are in."""
        return 0

    def read_lane(self, lane: int, start: int, limit: int) -> Sequence[LogRow]:
        """One lane in its order, from notification id `start` (inclusive)."""
        assert lane == 0, lane
        return self.read_log(start, limit)

    def lane_head(self, lane: int) -> int:
        """The highest notification id committed in a lane (0 when empty)."""
        assert lane == 0, lane
        return self.max_notification_id()

    def lane_changes(self, lane: int, notification_id: int, limit: int) -> list[Change]:
        assert lane == 0, lane
        return self.changes_after(notification_id, limit)

    def heads(self) -> dict[int, int]:
        """Every lane's head: a cut of the log (each lane's position at one moment)."""
        return {lane: self.lane_head(lane) for lane in self.lanes()}

    @abc.abstractmethod
    def create_schema(self) -> None: ...

    @abc.abstractmethod
    def check_schema(self) -> None:
        """Raise ConfigError when `init` has not been run on this database."""

    @abc.abstractmethod
    def _append(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                snapshots: Sequence[StoredEvent],
                key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]: ...

    def append(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
               snapshots: Sequence[StoredEvent] = (),
               key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
        """One transaction: all events, keys and snapshots, or nothing. Returns the events'
        notification ids. `key_lanes` (the split layout only): for each key, the lanes its
        request wrote to (ledger/partitioned.py: where the key goes)."""
        try:
            return self._append(events, keys, snapshots, key_lanes)
        except es.PersistenceError as error:
            raise _translate(error) from error

    @abc.abstractmethod
    def _turn(self, wait_s: float) -> contextlib.AbstractContextManager[Append]: ...

    @contextlib.contextmanager
    def turn(self, wait_s: float) -> Iterator[Append]:
        """This process's turn at the log: the log's write lock, taken on entry (waiting at
        most `wait_s`, else Busy) and held until exit, when the transaction commits (rolls
        back on an exception). Meanwhile no other writer commits an event, so the log read on
        any connection is the whole log, and events decided from it cannot conflict on a
        stream version; only a request key recorded without events by another process can
        still conflict. Yields `append(events, keys, snapshots)`, to be called at most once,
        inside the turn; its ids are final once the block exits without an error."""
        try:
            with self._turn(wait_s) as append:
                yield append
        except es.PersistenceError as error:
            raise _translate(error) from error

    @abc.abstractmethod
    def _stream(self, originator_id: uuid.UUID, gt: int | None, lte: int | None,
                limit: int | None) -> Sequence[StoredEvent]: ...

    def stream(self, originator_id: uuid.UUID, *, gt: int | None = None, lte: int | None = None,
               limit: int | None = None) -> Sequence[StoredEvent]:
        try:
            return self._stream(originator_id, gt, lte, limit)
        except es.PersistenceError as error:
            raise _translate(error) from error

    @abc.abstractmethod
    def _latest_snapshot(self, originator_id: uuid.UUID) -> StoredEvent | None: ...

    def latest_snapshot(self, originator_id: uuid.UUID) -> StoredEvent | None:
        try:
            return self._latest_snapshot(originator_id)
        except es.PersistenceError as error:
            raise _translate(error) from error

    def load_tails(self, ids: Sequence[uuid.UUID], snapshot_topic: str | None
                   ) -> Iterator[tuple[int, Tail]]:
        """For each stream: its position in `ids` and its tail, the latest snapshot whose
        topic is `snapshot_topic` (any topic when None) and the states of the events after
        it, in order. One query for all of them (a batch's cold cards load together, not one
        round trip each), whose rows PostgreSQL streams: the caller folds one card while the
        server reads the next ones. A snapshot of another topic is passed over, so the events
        are read from the start: a new snapshot topic makes older snapshots harmless.
        Every position comes once, in no particular order; read it to the end."""
        if not ids:
            return
        try:
            yield from self._load_tails(ids, snapshot_topic)
        except es.PersistenceError as error:
            raise _translate(error) from error
        except (psycopg.Error, sqlite3.Error) as error:
            raise Unavailable(str(error).strip().splitlines()[0] if str(error) else "") \
                from error

    @abc.abstractmethod
    def _load_tails(self, ids: Sequence[uuid.UUID], snapshot_topic: str | None
                    ) -> Iterator[tuple[int, Tail]]: ...

    def existing_streams(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Which of these streams have any event: one query for all of them (a batch of
        issues asks whether its card numbers are taken without loading any card)."""
        if not ids:
            return set()
        try:
            return self._existing_streams(ids)
        except es.PersistenceError as error:
            raise _translate(error) from error
        except (psycopg.Error, sqlite3.Error) as error:
            raise Unavailable(str(error).strip().splitlines()[0] if str(error) else "") \
                from error

    @abc.abstractmethod
    def _existing_streams(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]: ...

    @abc.abstractmethod
    def _save_snapshot(self, snapshot: StoredEvent) -> None: ...

    def save_snapshot(self, snapshot: StoredEvent) -> None:
        """Best effort: a snapshot another process already wrote is fine."""
        try:
            self._save_snapshot(snapshot)
        except es.IntegrityError:
            pass
        except es.PersistenceError as error:
            raise _translate(error) from error

    @abc.abstractmethod
    def _find_keys(self, pairs: Sequence[tuple[str, str]]) -> list[KeyRow]: ...

    def find_keys(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], KeyRow]:
        unique = sorted(set(pairs))
        try:
            rows = self._find_keys(unique) if unique else []
        except es.PersistenceError as error:
            raise _translate(error) from error
        return {(row.key_space, row.request_id): row for row in rows}

    @abc.abstractmethod
    def _prune_keys(self, cutoff_us: int, limit: int) -> int: ...

    def prune_keys(self, cutoff_us: int, limit: int) -> int:
        """Delete at most `limit` request keys recorded before `cutoff_us` (microseconds since
        the epoch, by the database's clock); returns how many. Any process may run it at any
        time: a key is only ever deleted, and the writer never waits for it (PostgreSQL: row
        locks only; SQLite: one short write transaction per chunk)."""
        try:
            return self._prune_keys(cutoff_us, limit)
        except es.PersistenceError as error:
            raise _translate(error) from error
        except psycopg.Error as error:
            raise Unavailable(str(error).strip().splitlines()[0] if str(error) else "") \
                from error

    @abc.abstractmethod
    def _changes_after(self, notification_id: int, limit: int) -> list[Change]: ...

    def changes_after(self, notification_id: int, limit: int) -> list[Change]:
        try:
            return self._changes_after(notification_id, limit)
        except es.PersistenceError as error:
            raise _translate(error) from error
        except Exception as error:  # driver errors outside the recorders' own wrapping
            raise Unavailable(str(error)) from error

    @abc.abstractmethod
    def _max_notification_id(self) -> int: ...

    def max_notification_id(self) -> int:
        try:
            return self._max_notification_id() or 0
        except es.PersistenceError as error:
            raise _translate(error) from error

    def position_of(self, originator_id: uuid.UUID, version: int) -> int:
        """The log position (notification id) of one event; 0 if there is none."""
        with self.session(commit=False) as session:
            if session.dialect == "sqlite":
                rows = session.query(f"SELECT rowid FROM {EVENTS_TABLE} WHERE originator_id = ?"
                                     " AND originator_version = ?", (originator_id.hex, version))
            else:
                rows = session.query(f"SELECT notification_id FROM {EVENTS_TABLE} WHERE "
                                     "originator_id = ? AND originator_version = ?",
                                     (originator_id, version))
        return int(rows[0][0]) if rows else 0

    @abc.abstractmethod
    def _read_log(self, start: int, limit: int) -> Sequence[LogRow]: ...

    def read_log(self, start: int, limit: int) -> Sequence[LogRow]:
        """The log in its global order, from notification id `start` (inclusive)."""
        try:
            return self._read_log(start, limit)
        except es.PersistenceError as error:
            raise _translate(error) from error

    @abc.abstractmethod
    def _session(self, commit: bool) -> contextlib.AbstractContextManager[Session]: ...

    @contextlib.contextmanager
    def session(self, *, commit: bool) -> Iterator[Session]:
        """One transaction for the read side (projections' own tables): committed on exit
        when `commit`, rolled back otherwise or on any exception. Statements use `?`
        placeholders on both backends."""
        try:
            with self._session(commit) as session:
                yield session
        except es.PersistenceError as error:
            raise _translate(error) from error
        except (psycopg.Error, sqlite3.Error) as error:
            raise _translate(error) from error

    @property
    def connect_params(self) -> dict[str, Any] | None:
        """psycopg.connect() arguments for a connection of one's own; None on SQLite."""
        return None

    def others_may_have_written(self) -> bool:
        """False only when it is certain that no other writer committed since the last call
        (then the writer need not read the log before its next batch). The base answer,
        always True, is right for any backend."""
        return True

    def foreign_lanes(self) -> set[int] | None:
        """The lanes other writers may have committed to since the last call: None for any
        (the answer of a store that cannot tell lanes apart), an empty set for none."""
        return None if self.others_may_have_written() else set()

    @abc.abstractmethod
    def close(self) -> None: ...


# ------------------------------------------------------------------------------ PostgreSQL


class LogWatch:
    """Listens for the NOTIFY that every commit sends, with its writer's token as payload,
    and remembers whether one came from another writer.

    It answers "maybe" whenever it cannot be sure: before its first LISTEN, and from any
    break of its connection until the next LISTEN (notifications in between are lost).
    A notification can still arrive after the writer decided against older state; the
    commit then conflicts and the writer reads the log before deciding again."""

    def __init__(self, connect: dict[str, Any], channel: str, token: str) -> None:
        self._connect = connect
        self._listen = SQL("LISTEN {0}").format(Identifier(channel))
        self._token = token
        self._foreign = threading.Event()
        self._foreign.set()
        # The split log's lanes other writers named ("TOKEN:1,5"); None: any lane (a payload
        # without lanes, or a break in listening).
        self._lanes: set[int] | None = None
        self._lanes_lock = threading.Lock()
        self._listening = False
        self.notes_seen = 0  # for tests: how many notifications arrived, ours included
        self._stop = threading.Event()
        # close() writes a byte here: the watcher waits on its connection and on this socket,
        # so it stops at once instead of at the end of a polling interval.
        self._wake_recv, self._wake_send = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="ledger-log-watch", daemon=True)
        self._thread.start()

    def others_wrote(self) -> bool:
        """True, and reset, when another writer may have committed since the last call."""
        if not self._listening:
            return True
        if self._foreign.is_set():
            self._foreign.clear()
            return True
        return False

    def foreign_lanes(self) -> set[int] | None:
        """The lanes other writers committed to since the last call (and reset): None when
        any may have changed, an empty set when none did."""
        with self._lanes_lock:
            if not self._listening:
                self._foreign.clear()
                return None
            if not self._foreign.is_set():
                return set()
            self._foreign.clear()
            lanes, self._lanes = self._lanes, set()
            return lanes

    def _heard(self, payload: str) -> None:
        token, _, lanes = payload.partition(":")
        if token == self._token:
            return
        with self._lanes_lock:
            if self._lanes is not None:
                if lanes:
                    self._lanes.update(map(int, lanes.split(",")))
                else:
                    self._lanes = None
            self._foreign.set()

    def _any(self) -> None:
        with self._lanes_lock:
            self._lanes = None
            self._foreign.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(**self._connect, autocommit=True) as conn:
                    conn.execute(self._listen)
                    self._listening = True
                    self._any()  # whatever was committed before LISTEN
                    while not self._stop.is_set():
                        readable, _, _ = select.select([conn.fileno(), self._wake_recv], [],
                                                       [], 0.5)
                        if self._wake_recv in readable:
                            break
                        # timeout=0: what has arrived, including what psycopg kept aside
                        for note in conn.notifies(timeout=0):
                            self._heard(note.payload)
                            self.notes_seen += 1
            except (psycopg.Error, OSError):
                pass  # the database is away: answer "maybe" until it is back
            finally:
                self._listening = False
                self._any()
            self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()
        self._wake_send.send(b"x")
        self._thread.join(timeout=5)
        self._wake_send.close()
        self._wake_recv.close()


class _DurablePostgresDatastore(PostgresDatastore):
    shares_pool = False  # its pool is another datastore's: never closed from here

    def close(self) -> None:
        if not self.shares_pool:
            super().close()

    def after_connect_func(self) -> Any:
        base = super().after_connect_func()

        def after_connect(conn: Any) -> None:
            base(conn)
            # Explicit, whatever the server's default: an acknowledged commit is flushed.
            conn.execute("SET synchronous_commit = on")
            # Every statement here is short and planned for thousands of index lookups at
            # most; the planner's cost of a batch's card load (1,000 cards) passes
            # jit_above_cost, and compiling it took 8-30 ms of a 20 ms query (EXPLAIN ANALYZE).
            conn.execute("SET jit = off")

        return after_connect


class _Statements(NamedTuple):
    prelude: tuple[bytes, ...]  # lock_timeout, the table lock, NOTIFY
    notify: bytes  # in a turn, the lock is held already
    insert_events: bytes
    insert_keys: bytes
    insert_snapshots: bytes
    prune_snapshots: bytes


class _PostgresEvents(PostgresApplicationRecorder):
    def __init__(self, datastore: PostgresDatastore, tables: Tables) -> None:
        super().__init__(datastore, events_table_name=EVENTS_TABLE)  # in datastore.schema
        self._statements: _Statements | None = None
        self.sql_create_statements.append(SQL(
            f"CREATE TABLE IF NOT EXISTS {tables.keys} ("
            "key_space text NOT NULL, request_id text NOT NULL, payload_hash bytea NOT NULL, "
            "outcome bytea NOT NULL, recorded_at timestamptz NOT NULL DEFAULT now(), "
            "PRIMARY KEY (key_space, request_id))"))
        # Keys are pruned by age (ledger/retention.py): the index keeps each chunk a range scan.
        self.sql_create_statements.append(SQL(
            f"CREATE INDEX IF NOT EXISTS {KEYS_TABLE}_recorded_at ON {tables.keys} (recorded_at)"))
        # The recorder's own statement sends one array of a composite type, which psycopg
        # dumps as text with a regex per field; four plain arrays dumped in binary carry the
        # same rows at a third of the CPU (measured on the writer's profile).
        self.insert_columns = SQL(
            f"INSERT INTO {tables.events} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id")
        self.insert_keys = SQL(
            f"INSERT INTO {tables.keys} (key_space, request_id, payload_hash, outcome) "
            "SELECT * FROM unnest(%b::text[], %b::text[], %b::bytea[], %b::bytea[])")
        self.insert_snapshots = SQL(
            f"INSERT INTO {tables.snapshots} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "ON CONFLICT DO NOTHING")
        # One current snapshot per card: the older ones go in the same transaction, so
        # snapshot storage grows with the number of cards, not with the square of history
        # (events are never deleted: a reader that saw an older snapshot still finds every
        # event after it).
        self.prune_snapshots = SQL(
            f"DELETE FROM {tables.snapshots} AS s USING unnest(%b::uuid[], %b::bigint[]) "
            "AS n(id, version) WHERE s.originator_id = n.id AND s.originator_version < n.version")

    def set_writer(self, token: str) -> None:
        """NOTIFY with this writer's token as payload, so a listener can tell its own
        commits from other processes' (see LogWatch)."""
        self.notify = SQL("NOTIFY {0}, {1}").format(Identifier(self.channel_name),
                                                    Literal(token))
        self._statements = None

    def _rendered(self, conn: Any) -> _Statements:
        """The write path's statements as bytes, rendered once: psycopg would otherwise
        compose them again on every commit (a measurable share of a small commit's CPU)."""
        if self._statements is None:
            self._statements = _Statements(
                prelude=tuple(q.as_bytes(conn) for q in (*self.lock_table_statements,
                                                         self.notify)),
                notify=self.notify.as_bytes(conn),
                insert_events=self.insert_columns.as_bytes(conn),
                insert_keys=self.insert_keys.as_bytes(conn),
                insert_snapshots=self.insert_snapshots.as_bytes(conn),
                prune_snapshots=self.prune_snapshots.as_bytes(conn))
        return self._statements

    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """The recorder's insert (table lock, NOTIFY, unnest INSERT ... RETURNING) plus the
        request keys, in one pipelined transaction, without the recorder's retry decorator:
        its ten retries would hold a POS request for seconds and can turn a commit that
        succeeded into a false conflict. Conflicts on events or keys raise IntegrityError."""
        with self.datastore.get_connection() as conn:
            return self.write(conn, stored_events, kwargs.get("keys", ()),
                              kwargs.get("snapshots", ()), in_turn=False)

    def write(self, conn: Any, stored_events: Sequence[StoredEvent], keys: Sequence[KeyRow],
              snapshots: Sequence[StoredEvent], *, in_turn: bool) -> list[int]:
        """The inserts, pipelined: in a transaction of their own that takes the table lock
        first (in_turn False), or inside the caller's transaction that holds it already (a
        turn: only the NOTIFY is added; the caller commits).

        One round trip to the server for the whole commit: BEGIN, the statements and COMMIT
        go out in one pipeline segment, ended by the single Sync that leaving the pipeline
        sends. (psycopg's `conn.transaction()` inside a pipeline nests two more pipelines,
        each synced on entry or exit: five Syncs, each a round trip and its Python, per commit,
        9-12 % of the server's samples under unary load; README "Where a call's time goes".)
        The connections are in autocommit mode, so BEGIN and COMMIT are plain statements."""
        ids: list[int] = []
        sql = self._rendered(conn)
        with conn.cursor(row_factory=tuple_row) as events, conn.cursor() as others:
            with conn.pipeline() as pipeline:
                try:
                    self._send(events, others, sql, stored_events, keys, snapshots,
                               in_turn=in_turn)
                except Exception:
                    # The error surfaced while the statements were still being sent (psycopg
                    # reads results opportunistically): end the aborted segment now, so
                    # leaving the pipeline does not report it a second time.
                    with contextlib.suppress(psycopg.Error):
                        pipeline.sync()
                    raise
            # A failed statement (raised above or on leaving the pipeline) makes the server
            # skip the rest of the segment, COMMIT included, and leaves the transaction
            # aborted: the pool's connection context rolls it back as the error passes (a
            # turn's caller rolls back its own transaction).
            if stored_events:
                ids = [row[0] for row in events.fetchall()]
        return ids

    @staticmethod
    def _send(events: Any, others: Any, sql: _Statements, stored_events: Sequence[StoredEvent],
              keys: Sequence[KeyRow], snapshots: Sequence[StoredEvent], *,
              in_turn: bool) -> None:
        if not in_turn:
            others.execute(b"BEGIN")
        _PostgresEvents.send_lane(events, others, sql, stored_events, keys, snapshots,
                                  locked=in_turn)
        if not in_turn:
            others.execute(b"COMMIT")

    @staticmethod
    def send_lane(events: Any, others: Any, sql: _Statements,
                  stored_events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                  snapshots: Sequence[StoredEvent], *, locked: bool,
                  notify: bool = True) -> None:
        """One log's inserts inside the caller's transaction: the table lock first unless
        `locked` (a turn holds it already), then NOTIFY (unless another lane of the same
        transaction sends it: they share the channel) and the rows."""
        if stored_events:
            if locked:
                statements: tuple[bytes, ...] = (sql.notify,) if notify else ()
            else:
                statements = sql.prelude if notify else sql.prelude[:-1]
            for statement in statements:
                events.execute(statement)
            events.execute(sql.insert_events, _event_columns(stored_events), prepare=True)
        if keys:
            columns = [list(column) for column in zip(*keys, strict=True)]
            others.execute(sql.insert_keys, columns, prepare=True)
        if snapshots:
            columns = _event_columns(snapshots)
            others.execute(sql.insert_snapshots, columns, prepare=True)
            others.execute(sql.prune_snapshots, columns[:2], prepare=True)


def _event_columns(stored_events: Sequence[StoredEvent]) -> list[list[Any]]:
    return [[e.originator_id for e in stored_events],
            [e.originator_version for e in stored_events],
            [e.topic for e in stored_events],
            [e.state for e in stored_events]]


class Tables(NamedTuple):
    """The log's table names, qualified by a schema for a partition of the split layout."""

    events: str
    snapshots: str
    keys: str

    @classmethod
    def of(cls, schema: str) -> Tables:
        if not schema:
            return cls(EVENTS_TABLE, SNAPSHOTS_TABLE, KEYS_TABLE)
        return cls(f"{schema}.{EVENTS_TABLE}", f"{schema}.{SNAPSHOTS_TABLE}",
                   f"{schema}.{KEYS_TABLE}")


class PostgresStore(EventStore):
    def __init__(self, url: str, *, pool_size: int = 4, schema: str = "",
                 shared: PostgresStore | None = None) -> None:
        """`schema`: the log's tables in that schema (a partition of the split layout);
        `shared`: a store on the same database whose connection pool this one uses."""
        self.url = redact(url)
        try:
            parts = urllib.parse.urlsplit(url)
            port = parts.port or 5432
        except ValueError as error:
            raise ConfigError(f"malformed database URL {self.url}: {error}") from None
        dbname = parts.path.lstrip("/")
        if not parts.hostname or not dbname:
            raise ConfigError(f"malformed database URL {self.url}: needs a host and a database")
        self.datastore = _DurablePostgresDatastore(
            dbname=urllib.parse.unquote(dbname), host=parts.hostname, port=port,
            user=urllib.parse.unquote(parts.username or "postgres"),
            password=urllib.parse.unquote(parts.password or ""),
            connect_timeout=limits.DB_CONNECT_TIMEOUT_S, pool_size=pool_size, max_overflow=4,
            pool_open_timeout=limits.DB_CONNECT_TIMEOUT_S,
            idle_in_transaction_session_timeout=5, lock_timeout=5,
            originator_id_type="uuid", enable_db_functions=False, schema=schema)
        self.schema = schema
        self.tables = tables = Tables.of(schema)
        self._owns_pool = shared is None
        if shared is not None:
            self.datastore.pool = shared.datastore.pool  # its own was never opened
            self.datastore.shares_pool = True
        else:
            try:
                self.datastore.pool.open(wait=True, timeout=limits.DB_CONNECT_TIMEOUT_S)
            except Exception as error:
                self.datastore.close()
                raise ConfigError(
                    f"cannot reach database {self.url}: "
                    f"{str(error).strip().splitlines()[0] if str(error) else error!r}"
                    ) from None
        # The datastore calls pool.open(wait=...) on every connection; waiting there from two
        # threads at once trips an assertion in psycopg_pool, and the pool is open by now.
        self.datastore.pool_open_timeout = None
        self.events = _PostgresEvents(self.datastore, tables)
        self.writer_token = uuid.uuid4().hex
        self.events.set_writer(self.writer_token)
        self._connect = {
            "host": parts.hostname, "port": port, "dbname": urllib.parse.unquote(dbname),
            "user": urllib.parse.unquote(parts.username or "postgres"),
            "password": urllib.parse.unquote(parts.password or ""),
            "connect_timeout": limits.DB_CONNECT_TIMEOUT_S}
        self._watch: LogWatch | None = None
        self.snapshots = PostgresAggregateRecorder(self.datastore,
                                                   events_table_name=SNAPSHOTS_TABLE)
        self._log_sql = SQL(f"SELECT originator_id, originator_version, topic, state, "
                            f"notification_id FROM {tables.events} WHERE notification_id >= %s "
                            "ORDER BY notification_id LIMIT %s")
        self._changes_sql = SQL(
            "SELECT notification_id, originator_id, originator_version, "
            f"CASE WHEN originator_id = %s THEN state END AS state FROM {tables.events} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s")
        # A batch's cold cards in one query: per stream (numbered, so no id comes back to be
        # parsed), its latest snapshot of the topic asked for and the array of its later
        # events' states, an index range scan each.
        self._tails_sql = SQL(
            "SELECT n.i, s.originator_version, s.state, ARRAY("
            f"SELECT e.state FROM {tables.events} e WHERE e.originator_id = n.id "
            "AND e.originator_version > coalesce(s.originator_version, 0) "
            "ORDER BY e.originator_version) "
            "FROM unnest(%b::uuid[]) WITH ORDINALITY AS n(id, i) LEFT JOIN LATERAL ("
            f"SELECT originator_version, state FROM {tables.snapshots} "
            "WHERE originator_id = n.id AND (topic = %b::text OR %b::text IS NULL) "
            "ORDER BY originator_version DESC LIMIT 1) s ON true")
        self._keys_sql = SQL(
            f"SELECT key_space, request_id, payload_hash, outcome FROM {tables.keys} "
            "WHERE (key_space, request_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")

    def create_schema(self) -> None:
        try:
            if self.schema:
                with self.datastore.get_connection() as conn:
                    conn.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(
                        Identifier(self.schema)))
            self.events.create_table()
            self.snapshots.create_table()
        except (es.PersistenceError, psycopg.Error) as error:
            raise ConfigError(f"cannot create the schema in {self.url}: {error}") from None

    def check_schema(self) -> None:
        with self.datastore.get_connection() as conn:
            row = conn.execute("SELECT to_regclass(%s) AS t, to_regclass(%s) AS k",
                               (self.tables.events, self.tables.keys)).fetchone()
        if row is None or row["t"] is None or row["k"] is None:
            where = f" (schema {self.schema})" if self.schema else ""
            raise ConfigError(f"database {self.url}{where} has no ledger schema: run "
                              "`loyalty-ledger init` first")
        if not self.schema:  # a partition's store never uses the composite type
            self.datastore.db_type_names.add(self.events.stored_event_type_name)
            self.datastore.register_type_adapters()

    def _append(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                snapshots: Sequence[StoredEvent],
                key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
        return list(self.events.insert_events(events, keys=keys, snapshots=snapshots) or ())

    @contextlib.contextmanager
    def _turn(self, wait_s: float) -> Iterator[Append]:
        """A transaction on a connection of its own that starts with the recorders' EXCLUSIVE
        lock on the events table (every event insert needs it), waiting `wait_s` at most.
        Reads on the other connections of the pool see everything committed before."""
        wait = SQL("SET LOCAL lock_timeout = {0}").format(Literal(f"{_ms(wait_s)}ms"))
        with self.datastore.get_connection() as conn, conn.transaction():
            conn.execute(wait)
            conn.execute(self.events.lock_table_statements[-1])  # LOCK TABLE ... EXCLUSIVE
            yield _once(lambda events, keys, snapshots: self.events.write(
                conn, events, keys, snapshots, in_turn=True))

    def _stream(self, originator_id: uuid.UUID, gt: int | None, lte: int | None,
                limit: int | None) -> Sequence[StoredEvent]:
        return self.events.select_events.__wrapped__(  # type: ignore[attr-defined]
            self.events, originator_id, gt=gt, lte=lte, limit=limit)

    def _latest_snapshot(self, originator_id: uuid.UUID) -> StoredEvent | None:
        rows = self.snapshots.select_events.__wrapped__(  # type: ignore[attr-defined]
            self.snapshots, originator_id, desc=True, limit=1)
        return rows[0] if rows else None

    def _load_tails(self, ids: Sequence[uuid.UUID], snapshot_topic: str | None
                    ) -> Iterator[tuple[int, Tail]]:
        # Rows one at a time as the server makes them (a row is a whole card), binary (bytea
        # arrays arrive as lists of bytes, nothing to unescape).
        with (self.datastore.get_connection() as conn,
              conn.cursor(row_factory=tuple_row, binary=True) as c):
            for position, version, snapshot, events in c.stream(
                    self._tails_sql, (list(ids), snapshot_topic, snapshot_topic)):
                yield position - 1, Tail(version or 0, snapshot, events)

    def _existing_streams(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        # Every stream starts at version 1 and events are never deleted: the primary key's
        # index answers for all the ids in one probe each.
        with self.datastore.get_connection() as conn, conn.cursor(row_factory=tuple_row) as c:
            c.execute(f"SELECT originator_id FROM {self.tables.events} WHERE originator_id = "
                      "ANY(%b::uuid[]) AND originator_version = 1", (list(ids),), prepare=True)
            return {row[0] for row in c.fetchall()}

    def _save_snapshot(self, snapshot: StoredEvent) -> None:
        if self.schema:  # plain arrays: the recorders' composite type is one per schema, and
            with self.datastore.get_connection() as conn:  # a shared pool knows one of them
                conn.execute(self.events.insert_snapshots, _event_columns([snapshot]))
            return
        self.snapshots.insert_events.__wrapped__(self.snapshots, [snapshot])  # type: ignore[attr-defined]

    def _find_keys(self, pairs: Sequence[tuple[str, str]]) -> list[KeyRow]:
        spaces, ids = zip(*pairs, strict=True)
        with self.datastore.get_connection() as conn:
            rows = conn.execute(self._keys_sql, (list(spaces), list(ids))).fetchall()
        return [KeyRow(r["key_space"], r["request_id"], bytes(r["payload_hash"]),
                       bytes(r["outcome"])) for r in rows]

    def _prune_keys(self, cutoff_us: int, limit: int) -> int:
        with self.datastore.get_connection() as conn, conn.transaction():
            cursor = conn.execute(
                f"DELETE FROM {self.tables.keys} WHERE (key_space, request_id) IN ("
                f"SELECT key_space, request_id FROM {self.tables.keys} "
                "WHERE recorded_at < to_timestamp(%s::float8 / 1e6) LIMIT %s)",
                (cutoff_us, limit))
            return cursor.rowcount

    def _changes_after(self, notification_id: int, limit: int) -> list[Change]:
        with self.datastore.get_connection() as conn:
            rows = conn.execute(self._changes_sql, (REGISTRY_ID, notification_id, limit),
                                prepare=True).fetchall()
        return [Change(r["notification_id"], r["originator_id"], r["originator_version"],
                       bytes(r["state"]) if r["state"] is not None else None) for r in rows]

    def _max_notification_id(self) -> int:
        return self.events.max_notification_id.__wrapped__(self.events) or 0  # type: ignore[attr-defined]

    def _read_log(self, start: int, limit: int) -> Sequence[LogRow]:
        # Binary rows as plain tuples (the recorders' select_notifications reads text, builds
        # a dict and a frozen dataclass per row: ~7x the cost of the read itself).
        with (self.datastore.get_connection() as conn,
              conn.cursor(row_factory=tuple_row, binary=True) as c):
            c.execute(self._log_sql, (start, limit), prepare=True)
            return [_new_row(LogRow, row) for row in c.fetchall()]

    @contextlib.contextmanager
    def _session(self, commit: bool) -> Iterator[Session]:
        with (self.datastore.get_connection() as conn,
              conn.transaction(force_rollback=not commit),
              conn.cursor(row_factory=tuple_row) as cursor):
            yield Session(cursor, "postgres")

    @property
    def connect_params(self) -> dict[str, Any] | None:
        """psycopg.connect() arguments for a connection of one's own (the partition leases)."""
        return dict(self._connect)

    def others_may_have_written(self) -> bool:
        return self.watch().others_wrote()

    def watch(self) -> LogWatch:
        if self._watch is None:  # started on first use: `init` and tools never need it
            self._watch = LogWatch(self._connect, self.events.channel_name, self.writer_token)
        return self._watch

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        if self._owns_pool:
            self.datastore.close()


def redact(url: str) -> str:
    """The URL with any password replaced by ***, however malformed the URL is: everything
    between the user's ":" and the LAST "@" (a password may hold ":", "@" or "/")."""
    if "@" not in url:
        return url
    userinfo, host = url.rsplit("@", 1)
    start = userinfo.find(":/")
    start = 0 if start == -1 else len(userinfo) - len(userinfo[start + 1:].lstrip("/"))
    colon = userinfo.find(":", start)
    return url if colon == -1 else f"{userinfo[:colon]}:***@{host}"


# ------------------------------------------------------------------------------ SQLite


class _DurableSQLitePool(SQLiteConnectionPool):
    def _create_connection(self) -> SQLiteConnection:
        connection = super()._create_connection()
        # WAL with synchronous=FULL: a commit is on disk (fsync) before it is acknowledged.
        connection._sqlite_conn.execute("PRAGMA synchronous=FULL")
        return connection


SQLITE_LOCK_TIMEOUT_S = 10  # how long a write waits for another process's write lock


class _DurableSQLiteDatastore(SQLiteDatastore):
    def __init__(self, db_name: str) -> None:
        super().__init__(db_name, lock_timeout=SQLITE_LOCK_TIMEOUT_S)
        self.pool.close()
        self.pool = _DurableSQLitePool(db_name=db_name, lock_timeout=SQLITE_LOCK_TIMEOUT_S)


class _SQLiteEvents(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_space TEXT NOT NULL, "
                "request_id TEXT NOT NULL, payload_hash BLOB NOT NULL, outcome BLOB NOT NULL, "
                "recorded_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (key_space, request_id)) WITHOUT ROWID",
                f"CREATE INDEX IF NOT EXISTS {KEYS_TABLE}_recorded_at ON {KEYS_TABLE} "
                "(recorded_at)"]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        keys: Sequence[KeyRow] = kwargs.get("keys", ())
        if keys:
            c.executemany(f"INSERT INTO {KEYS_TABLE} (key_space, request_id, payload_hash, "
                          "outcome) VALUES (?,?,?,?)", keys)
        snapshots: Sequence[StoredEvent] = kwargs.get("snapshots", ())
        if snapshots:
            c.executemany(f"INSERT OR IGNORE INTO {SNAPSHOTS_TABLE} (originator_id, "
                          "originator_version, topic, state) VALUES (?,?,?,?)",
                          [(s.originator_id.hex, s.originator_version, s.topic, s.state)
                           for s in snapshots])
            # One current snapshot per card (see the PostgreSQL store).
            c.executemany(f"DELETE FROM {SNAPSHOTS_TABLE} WHERE originator_id = ? "
                          "AND originator_version < ?",
                          [(s.originator_id.hex, s.originator_version) for s in snapshots])
        return super()._insert_events(c, stored_events)


# Ids in one IN list (SQLite allows 32,766 parameters; smaller lists plan as fast). Card
# loads pass their ids as one JSON array instead (see SQLiteStore._load_tails).
_SQLITE_IN_MAX = 500


class SQLiteStore(EventStore):
    def __init__(self, url: str) -> None:
        self.url = url
        path = url.removeprefix("sqlite:///")
        if not path or path == url:
            raise ConfigError(f"malformed database URL {url}: expected sqlite:///path/to/file.db")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise ConfigError(f"cannot reach database {url}: no directory {directory}")
        self.path = path
        try:
            sqlite3.connect(path).close()
        except sqlite3.Error as error:
            raise ConfigError(f"cannot open database {url}: {error}") from None
        self.datastore = _DurableSQLiteDatastore(path)
        self.events = _SQLiteEvents(self.datastore, events_table_name=EVENTS_TABLE)
        self.snapshots = SQLiteAggregateRecorder(self.datastore, SNAPSHOTS_TABLE)
        self._snapshots_sql = (
            f"SELECT n.key, s.originator_version, s.state FROM json_each(?) n "
            f"JOIN {SNAPSHOTS_TABLE} s ON s.originator_id = n.value "
            "AND s.originator_version = (SELECT max(originator_version) "
            f"FROM {SNAPSHOTS_TABLE} WHERE originator_id = n.value "
            "AND (topic = ? OR ? IS NULL))")
        self._events_sql = (
            f"SELECT n.key, e.state FROM json_each(?) n JOIN {EVENTS_TABLE} e "
            "ON e.originator_id = json_extract(n.value, '$[0]') "
            "AND e.originator_version > json_extract(n.value, '$[1]') "
            "ORDER BY n.key, e.originator_version")

    def create_schema(self) -> None:
        self.events.create_table()
        self.snapshots.create_table()

    def check_schema(self) -> None:
        with self.datastore.transaction(commit=False) as c:
            c.execute("SELECT count(*) FROM sqlite_master WHERE name IN (?, ?)",
                      (EVENTS_TABLE, KEYS_TABLE))
            found = c.fetchone()[0]
        if found != 2:
            raise ConfigError(f"database {self.url} has no ledger schema: run "
                              "`loyalty-ledger init` first")

    def _append(self, events: Sequence[StoredEvent], keys: Sequence[KeyRow],
                snapshots: Sequence[StoredEvent],
                key_lanes: Sequence[tuple[int, ...]] | None = None) -> list[int]:
        return list(self.events.insert_events(events, keys=keys, snapshots=snapshots) or ())

    @contextlib.contextmanager
    def _turn(self, wait_s: float) -> Iterator[Append]:
        """BEGIN IMMEDIATE on the process's writer connection: SQLite's one write lock on
        the file, taken at once (waiting `wait_s` at most) and held until COMMIT. Readers
        (WAL) go on reading on the other connections."""
        with self.datastore.get_connection(commit=True) as conn:
            raw: sqlite3.Connection = conn._sqlite_conn
            try:
                with _sqlite_errors():
                    raw.execute(f"PRAGMA busy_timeout = {_ms(wait_s)}")
                    raw.execute("BEGIN IMMEDIATE")
                try:
                    yield _once(lambda events, keys, snapshots: self._write_in_turn(
                        raw, events, keys, snapshots))
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        raw.rollback()
                    raise
                with _sqlite_errors():
                    raw.commit()
            finally:
                with contextlib.suppress(sqlite3.Error):
                    if raw.in_transaction:
                        raw.rollback()
                    raw.execute(f"PRAGMA busy_timeout = {_ms(SQLITE_LOCK_TIMEOUT_S)}")

    def _write_in_turn(self, raw: sqlite3.Connection, events: Sequence[StoredEvent],
                       keys: Sequence[KeyRow], snapshots: Sequence[StoredEvent]) -> list[int]:
        with _sqlite_errors():
            return list(self.events._insert_events(SQLiteCursor(raw.cursor()), events,
                                                   keys=keys, snapshots=snapshots) or ())

    def _stream(self, originator_id: uuid.UUID, gt: int | None, lte: int | None,
                limit: int | None) -> Sequence[StoredEvent]:
        return self.events.select_events(originator_id, gt=gt, lte=lte, limit=limit)

    def _latest_snapshot(self, originator_id: uuid.UUID) -> StoredEvent | None:
        rows = self.snapshots.select_events(originator_id, desc=True, limit=1)
        return rows[0] if rows else None

    def _save_snapshot(self, snapshot: StoredEvent) -> None:
        self.snapshots.insert_events([snapshot])

    def _existing_streams(self, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        by_hex = {i.hex: i for i in ids}
        hexes = list(by_hex)
        found: set[uuid.UUID] = set()
        with self.datastore.transaction(commit=False) as c:
            for start in range(0, len(hexes), _SQLITE_IN_MAX):
                chunk = hexes[start:start + _SQLITE_IN_MAX]
                c.execute(f"SELECT originator_id FROM {EVENTS_TABLE} WHERE originator_version "
                          f"= 1 AND originator_id IN ({','.join('?' * len(chunk))})", chunk)
                found.update(by_hex[row[0]] for row in c.fetchall())
        return found

    def _find_keys(self, pairs: Sequence[tuple[str, str]]) -> list[KeyRow]:
        found: list[KeyRow] = []
        with self.datastore.transaction(commit=False) as c:
            for key_space, request_id in pairs:
                c.execute(f"SELECT key_space, request_id, payload_hash, outcome FROM {KEYS_TABLE}"
                          " WHERE key_space=? AND request_id=?", (key_space, request_id))
                row = c.fetchone()
                if row is not None:
                    found.append(KeyRow(row[0], row[1], bytes(row[2]), bytes(row[3])))
        return found

    def _prune_keys(self, cutoff_us: int, limit: int) -> int:
        # recorded_at is SQLite's CURRENT_TIMESTAMP text, "YYYY-MM-DD HH:MM:SS" in UTC, which
        # sorts as time does.
        cutoff = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(cutoff_us // 1_000_000))
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"DELETE FROM {KEYS_TABLE} WHERE (key_space, request_id) IN ("
                      f"SELECT key_space, request_id FROM {KEYS_TABLE} WHERE recorded_at < ? "
                      "LIMIT ?)", (cutoff, limit))
            c.execute("SELECT changes()")
            return int(c.fetchone()[0])

    def _load_tails(self, ids: Sequence[uuid.UUID], snapshot_topic: str | None
                    ) -> Iterator[tuple[int, Tail]]:
        # One read transaction (the recorders' own reads open one per call, which cost more
        # than the reads), two statements whose text never changes: the streams come as one
        # JSON array, numbered by json_each, so the connection's statement cache holds two
        # statements, not one per count of cards (a statement with 500 VALUES rows kept
        # ~190 kB; the cache keeps 128 per connection). Rows carry the stream's position,
        # not its id, and only the columns a load needs.
        versions = [0] * len(ids)
        snapshots: list[bytes | None] = [None] * len(ids)
        events: list[list[bytes]] = [[] for _ in ids]
        with self.datastore.transaction(commit=False) as c:
            c.execute(self._snapshots_sql, (json.dumps([i.hex for i in ids]), snapshot_topic,
                                            snapshot_topic))
            for position, version, state in c.fetchall():
                versions[position], snapshots[position] = version, bytes(state)
            # Only the events after each stream's snapshot (a long history stays unread).
            c.execute(self._events_sql, (json.dumps(
                [[i.hex, version] for i, version in zip(ids, versions, strict=True)]),))
            for position, state in c.fetchall():
                events[position].append(bytes(state))
        for position, tail in enumerate(zip(versions, snapshots, events, strict=True)):
            yield position, Tail(*tail)

    def _changes_after(self, notification_id: int, limit: int) -> list[Change]:
        registry = REGISTRY_ID.hex
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT rowid, originator_id, originator_version, CASE WHEN "
                      f"originator_id = ? THEN state END FROM {EVENTS_TABLE} WHERE rowid > ? "
                      "ORDER BY rowid LIMIT ?", (registry, notification_id, limit))
            rows = c.fetchall()
        return [Change(r[0], uuid.UUID(r[1]), r[2], bytes(r[3]) if r[3] is not None else None)
                for r in rows]

    def _max_notification_id(self) -> int:
        return self.events.max_notification_id() or 0

    def _read_log(self, start: int, limit: int) -> Sequence[LogRow]:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT originator_id, originator_version, topic, state, rowid FROM "
                      f"{EVENTS_TABLE} WHERE rowid >= ? ORDER BY rowid LIMIT ?", (start, limit))
            rows = c.fetchall()
        return [LogRow(uuid.UUID(r[0]), r[1], r[2], r[3], r[4]) for r in rows]

    @contextlib.contextmanager
    def _session(self, commit: bool) -> Iterator[Session]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield Session(cursor.sqlite_cursor, "sqlite")

    def close(self) -> None:
        self.datastore.close()


def open_store(url: str) -> EventStore:
    """The store a database URL names. ConfigError (one line, no password) if it cannot."""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        return SQLiteStore(url)
    if scheme in ("postgresql", "postgres"):
        store = PostgresStore(url)
        from ledger import partitioned  # the split layout builds on this module
        return partitioned.open_split(store) or store
    raise ConfigError(f"malformed database URL {redact(url)}: use sqlite:///path/to/file.db or "
                      "postgresql://user@host:port/dbname")
